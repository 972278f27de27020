"""Simulation-based calibration (SBC) of every shipped spec.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference algorithms
with simulation-based calibration"; Modrak, Moon, Kim, Buerkner, Huurre, Faltejskova, Gelman &
Vehtari (2023), "Simulation-based calibration checking for Bayesian computation: the choice of
test quantities shapes sensitivity" (the data log-likelihood as a test quantity); Sailynoja,
Buerkner & Vehtari (2022), "Graphical test for discrete uniformity and its applications in
goodness-of-fit evaluation and multiple sample comparison" (the ECDF envelope).

For simulation ``s`` of a spec:

1. draw the truth from the spec's prior: ``Predictive`` on the spec's own NumPyro model
   (:func:`bayesarena.numpyro_model.pairwise_model` with zero counts, so no data factor) for
   the pairwise specs; :func:`bayesarena.simulate.draw_prior_truth` for the arena spec (it
   draws from ``models/arena.toml``'s priors, which is checked);
2. simulate votes on a fixed design from that truth with the spec's own likelihood
   (:func:`bayesarena.likelihood.outcome_probs` with the spec's link and tie model; for the
   arena spec :func:`bayesarena.simulate.simulate_outcomes`, whose votes then go through
   ``read_votes`` and the arena aggregation exactly as a user's would);
3. fit with NUTS on the spec's model (seeded; ``chains`` chains, thinned to ``L`` draws);
4. record the rank of the true value among the ``L`` draws (``0..L``; ties, as for the model
   ranks, broken uniformly at random as in Talts et al.) for every strength, ``sigma``, the
   tie / both-bad / threshold parameters, category scales and some deviations, the voter
   hierarchy, style coefficients, position, each model's rank (1 = strongest) and the
   log-likelihood of the simulated data under the fitted spec.

Under a correct model, simulator and sampler every rank is uniform on ``0..L``. Each quantity
gets a chi-square test on ``bins`` bins and the simultaneous ECDF test of Sailynoja et al.;
a quantity is flagged when either p-value is below ``alpha / Q`` (Bonferroni over the ``Q``
quantities of the spec).

``bt-ties-half`` is a pseudo-likelihood (a tie counts as half a win each side): it has no
generative model, so SBC is not defined for it. It is run as a known-miscalibrated baseline:
truths from its prior plus Davidson ties (``log_nu ~ N(-0.5, 1)``, both-bad counted as ties),
fitted with the half-win pseudo-likelihood.

Fitting path. ``bayesarena.fit.fit`` builds a new ``MCMC`` object per call, so every call
re-traces and re-compiles the sampler (measured: 4-8 s per refit of an 8-model spec on 2 busy
cores); even one reused ``MCMC`` object recompiles its sampling loop on every ``run`` (about
0.7 s, and the compiled programs pile up until LLVM cannot map more memory, after a few
hundred runs). So the default ``fitter = "reuse"`` runs the spec's kernel (NumPyro's
``NUTS`` class, or bayesarena's jittered or split HMC, through their ``init``/``sample``;
windowed adaptation, the spec's target acceptance and tree depth, chains started by
``init_to_median``) on the package's own model functions (``pairwise_model`` over
``bayesarena.fit.pad_cells``; ``arena_model`` over ``model_arguments``) as one jitted function
of the data (:func:`_runner`), on a fixed design whose padded shapes never change (the arena's
direction rows are padded to ``bucket_size(n_votes)``): it compiles once per spec and process,
after which an 8-model pairwise fit takes about 0.05 s. ``fitter = "package"`` calls
``bayesarena.fit.fit`` itself (Laplace start and mass matrix; pairwise specs only): the whole
user path, at about 40 times the cost (4-5 s a fit).

Usage::

    .venv/bin/python benchmarks/sbc.py --sims 200 --spec all --workers 2   # every spec
    .venv/bin/python benchmarks/sbc.py --sims 20 --spec bt,bt-davidson     # a quick look
    .venv/bin/python benchmarks/sbc.py --sims 200 --spec arena --merge     # add to sbc.json
    .venv/bin/python benchmarks/sbc.py --report-only                       # re-render .md/.png

The committed results: ``--sims 1000 --spec bt,bt-davidson,bt-ties-half,rao-kupper,thurstone
--workers 2`` (about 10 minutes on 2 cores), ``--sims 200 --spec arena --workers 2 --merge``
(about 7 minutes) and the diagnostic variant ``--sims 1000 --spec bt-davidson,thurstone
--strength noncentered --workers 2 --merge`` (same truths and votes, non-centred strengths).

Writes ``benchmarks/results/sbc.json`` (per-quantity p-values, ECDF deviations and verdicts,
every rank, per-simulation time and sampler diagnostics), ``sbc.md`` and ``sbc.png`` (rank
histograms).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "sbc"

# The pairwise specs' parameters beyond the strengths, in the order they are reported.
OUTCOME_SITES = ("log_nu", "tie_threshold", "bothbad_intercept", "bothbad_slope")
# Arena sites whose truth and draws are compared (besides sigma, theta and the outcome sites).
ARENA_SITES = ("category_scale", "category_deviation", "position", "style_coef",
               "voter_discrimination_scale", "voter_discrimination")


@dataclass(frozen=True)
class SBCConfig:
    """Design and sampler settings of one SBC run (the defaults are the committed run's).

    Pairwise specs: ``n_models`` models, every pair shown ``votes_per_pair`` times (8 models,
    24 votes a pair: 672 votes). Arena spec: ``arena_votes`` votes among ``n_models`` models
    on ``arena_categories`` categories (a second tag with probability ``multi_tag_rate``), by
    ``arena_voters`` voters (heavy-tailed; those with at least ``voters.min_votes`` votes get
    their own discrimination ``kappa``), with LMArena style features, model_a shown first.
    The design is drawn once from ``design_seed`` and kept for every simulation.

    ``arena_category_parametrization`` is fixed for every simulation: the spec's ``auto``
    decides per fit from the Laplace estimate of the category scales, which would change the
    compiled shapes from one simulation to the next; ``auto`` at the prior median scale centres
    every deviation of this design, which mixed poorly when checked (smallest ESS 7-50 of 400
    draws, divergences when a category scale is small), so the default samples them
    non-centred (what ``auto`` picks for small scales). The joint model is the same either way.
    Likewise ``arena_voter_centring``: the package centres a heavy voter's discrimination at
    400 decisive votes (an outcome, so shapes would change); centring by all votes (``"votes"``)
    puts the heaviest voter of this design (621 votes) centred: in a check 7 of 8 simulations
    had divergent transitions (one 200, with a stuck chain at R-hat 2.1); with every voter
    non-centred 4 of 12 did, the most where ``sigma`` was small (the centred strengths'
    funnel).

    NUTS: ``chains`` chains of ``warmup`` + ``thin * ceil(L / chains)`` iterations; every
    ``thin``-th draw is kept and the first ``L = n_ranks - 1`` of those are the posterior
    sample the truth is ranked in (ranks ``0..L``).
    """

    n_models: int = 8
    votes_per_pair: int = 24
    arena_votes: int = 1000
    arena_categories: int = 3
    arena_voters: int = 40
    multi_tag_rate: float = 0.3
    arena_category_parametrization: str = "noncentered"
    arena_voter_centring: str = "noncentered"
    n_ranks: int = 100
    bins: int = 10
    chains: int = 2
    warmup: int = 300
    thin: int = 4
    chain_method: str = "vectorized"  # or "sequential"
    fitter: str = "reuse"  # "reuse" | "package"
    design_seed: int = 20_240_601
    alpha: float = 0.05  # family-wise level per spec (Bonferroni over its quantities)

    @property
    def n_draws(self) -> int:
        """``L``: posterior draws each truth is ranked among."""
        return self.n_ranks - 1

    @property
    def draws_per_chain(self) -> int:
        return self.thin * math.ceil(self.n_draws / self.chains)


TEST_CONFIG = SBCConfig(n_models=5, votes_per_pair=40, n_ranks=20, bins=5, chains=1,
                        warmup=200, thin=2)


# --- specs ----------------------------------------------------------------------------------


def _load(spec: Any) -> Any:
    from bayesarena.spec import load_spec

    return load_spec(spec)


def _default_prior(name: str) -> Any:
    from bayesarena.spec import DEFAULT_PRIORS, Prior

    raw = DEFAULT_PRIORS[name]
    return Prior(family=raw["family"], params={k: float(v) for k, v in raw.items()
                                               if k != "family"})


def generating_spec(spec: Any) -> tuple[Any, str]:
    """The spec the truths and votes are drawn from, and a note when it is not ``spec``.

    A ``ties = "half"`` spec is a pseudo-likelihood with no generative model: its votes are
    drawn with Davidson ties (``log_nu`` from the default prior, both-bad counted as ties).
    """
    spec = _load(spec)
    if spec.likelihood.ties != "half":
        return spec, ""
    lik = replace(spec.likelihood, ties="davidson", both_bad="as_tie")
    gen = replace(spec, name=f"{spec.name} (generator)", likelihood=lik,
                  priors={**spec.priors, "log_nu": _default_prior("log_nu")})
    return gen, ("pseudo-likelihood (ties as half wins): SBC is not defined; truths from its "
                 "prior, votes with Davidson ties (log_nu ~ N(-0.5, 1), both-bad as ties); a "
                 "known-miscalibrated baseline")


def scaled_prior(spec: Any, name: str, factor: float) -> Any:
    """``spec`` with prior ``name``'s scale multiplied by ``factor`` (negative controls)."""
    spec = _load(spec)
    prior = spec.priors[name]
    if "scale" not in prior.params:
        raise ValueError(f"prior {name!r} ({prior.describe()}) has no scale")
    params = {**prior.params, "scale": prior.params["scale"] * factor}
    return replace(spec, name=f"{spec.name} ({name} prior x{factor:g})",
                   priors={**spec.priors, name: replace(prior, params=params)})


# --- designs --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PairwiseDesign:
    """Every unordered pair ``(i < j)`` of ``models`` gets ``votes_per_pair`` votes."""

    models: tuple[str, ...]
    model_i: np.ndarray
    model_j: np.ndarray
    votes_per_pair: int

    @property
    def n_votes(self) -> int:
        return len(self.model_i) * self.votes_per_pair


def fitted_spec(spec: Any, config: SBCConfig) -> Any:
    """The spec as fitted: ``spec`` with the arena category parametrisation of ``config``."""
    spec = _load(spec)
    if spec.categories.enabled and config.arena_category_parametrization != "auto":
        spec = replace(spec, categories=replace(
            spec.categories, parametrization=config.arena_category_parametrization))
    return spec


def make_design(spec: Any, config: SBCConfig) -> Any:
    """The fixed design: a :class:`PairwiseDesign`, or for a hierarchical spec a
    :class:`bayesarena.simulate.ArenaDesign`."""
    from bayesarena.simulate import model_names, simulate_design

    spec = _load(spec)
    if not spec.hierarchical:
        iu, ju = np.triu_indices(config.n_models, k=1)
        return PairwiseDesign(model_names(config.n_models), iu.astype(np.int32),
                              ju.astype(np.int32), config.votes_per_pair)
    return simulate_design(
        config.n_models, config.arena_votes,
        categories=config.arena_categories if spec.categories.enabled else 0,
        multi_tag_rate=config.multi_tag_rate, n_voters=config.arena_voters if
        spec.voters.enabled else 0, style=spec.style.enabled, rng=config.design_seed,
    )


# --- per-process compiled pieces ------------------------------------------------------------

_CACHE: dict[Any, Any] = {}


def _cached(key: Any, build: Callable[[], Any]) -> Any:
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def _spec_key(spec: Any) -> str:
    return spec.to_toml() + repr(sorted((k, v.family, tuple(v.params.items()))
                                        for k, v in spec.priors.items()))


def _pairwise_fn(spec: Any, n_models: int) -> Callable[..., None]:
    from bayesarena.numpyro_model import pairwise_model

    return _cached(("pairwise_fn", _spec_key(spec), n_models),
                   lambda: functools.partial(pairwise_model, n_models=n_models, spec=spec))


def _arena_fn(spec: Any, arena: Any) -> Callable[..., None]:
    """``arena_model`` bound to the spec, as ``bayesarena.fit`` binds it (the keyword
    arguments it accepts: ``n_voter_params`` in older versions; ``theta_from_category_mean``
    when at least half the votes carry a tag, the fit's rule; ``split_category_means`` with
    it when every category is centred)."""
    import inspect

    from bayesarena.arena_model import arena_model

    accepted = inspect.signature(arena_model).parameters
    bound: dict[str, Any] = {"n_models": arena.cells.n_models}
    if "n_voter_params" in accepted:
        bound["n_voter_params"] = len(arena.voters) + 1
    if "theta_from_category_mean" in accepted:
        counts = arena.cells.counts.sum(axis=1)
        tagged = (arena.tagsets[arena.cells.category].any(axis=1) if arena.tags
                  else np.zeros(len(counts), dtype=bool))
        bound["theta_from_category_mean"] = bool(counts[tagged].sum() >= 0.5 * counts.sum())
    if "split_category_means" in accepted:  # as bayesarena.fit decides it
        from bayesarena.arena_model import default_category_centring, splits_category_means

        bound["split_category_means"] = splits_category_means(
            bound.get("theta_from_category_mean", False), default_category_centring(arena, spec))
    return _cached(("arena_fn", _spec_key(spec), tuple(sorted(bound.items()))),
                   lambda: functools.partial(arena_model, spec=spec, **bound))


def _arena_arguments(arena: Any, spec: Any, n_votes: int, voter_centring: str) -> dict:
    """``model_arguments`` with shapes fixed by the design: direction rows padded to
    ``bucket_size(n_votes)``; heavy voters' discrimination all non-centred
    (``voter_centring = "noncentered"``) or centred by their number of votes (``"votes"``, a
    design property, where the package's default counts their decisive votes, an outcome that
    would change the compiled shapes; same threshold ``VOTER_CENTRED_MIN_VOTES``)."""
    import inspect

    from bayesarena import arena_model as am
    from bayesarena.numpyro_model import bucket_size, pad_rows

    extra = {}
    if "voter_centred" in inspect.signature(am.model_arguments).parameters:
        votes = np.asarray(arena.voter_votes)[: len(arena.voters)]
        extra["voter_centred"] = (votes >= getattr(am, "VOTER_CENTRED_MIN_VOTES", 400)
                                  if voter_centring == "votes" else np.zeros(len(votes), bool))
    kwargs = dict(am.model_arguments(arena, spec, **extra))
    rows = bucket_size(n_votes)
    for name in ("row_cell", "row_voter", "row_style"):
        kwargs[name] = np.asarray(pad_rows(np.asarray(kwargs[name]), rows))
    kwargs["row_counts"] = np.asarray(pad_rows(np.asarray(kwargs["row_counts"]).T, rows).T)
    return kwargs


def _runner(model: Callable[..., None], spec: Any, config: SBCConfig) -> Callable[..., Any]:
    """``(key, model kwargs) -> (samples (chain, draw, ...), diverging (chain, draw))``: the
    spec's kernel as :func:`bayesarena.fit` builds it (NumPyro's ``NUTS``,
    :class:`~bayesarena.jittered_hmc.JitteredHMC` or :class:`~bayesarena.split_hmc.SplitHMC`,
    the spec's sampler settings, windowed warmup adaptation of step size and diagonal mass
    matrix; each chain adapts alone, split HMC centring its own Gaussian) driven by its
    ``init``/``sample`` in a ``lax.scan``, written as one jitted function of the data, so it
    compiles once per model and shapes.

    ``numpyro.infer.MCMC.run`` cannot be reused this way: with ``progress_bar=False`` it wraps
    its loop body in a new ``jit`` object on every call and passes it as a static argument, so
    every run recompiles the sampling loop (measured: ~0.7 s per run for an 8-model spec) and
    the compiled programs pile up in memory until LLVM cannot map more sections.
    """
    import jax
    from numpyro.infer import NUTS
    from numpyro.infer.initialization import init_to_median
    from numpyro.infer.util import initialize_model

    from bayesarena.jittered_hmc import JitteredHMC
    from bayesarena.split_hmc import SplitHMC

    s = spec.sampler
    warmup, draws = config.warmup, config.draws_per_chain
    # NUTS evaluates the likelihood in the spec's precision, as bayesarena.fit does
    precision = getattr(s, "precision", "double")
    sampled = (functools.partial(model, precision=precision) if precision != "double"
               else model)

    def one_chain(key: Any, kwargs: dict) -> tuple[dict, Any]:
        key_init, key_run = jax.random.split(key)
        init, potential_gen, postprocess_gen, _ = initialize_model(
            key_init, sampled, init_strategy=init_to_median(num_samples=15), dynamic_args=True,
            model_kwargs=kwargs, validate_grad=False)
        n_parameters = sum(int(np.size(v)) for v in jax.tree.leaves(init.z))
        kernel, depth = getattr(s, "kernel", "nuts"), s.max_tree_depth
        if "auto" in (kernel, depth):  # as bayesarena.fit resolves them, from the size
            from bayesarena.fit import resolve_kernel, resolve_max_tree_depth

            kernel = resolve_kernel(kernel, n_parameters)
            depth = resolve_max_tree_depth(depth, n_parameters)
        # the kernels bayesarena.fit runs, on this trace's data
        options = dict(potential_fn=potential_gen(**kwargs), dense_mass=s.dense_mass,
                       target_accept_prob=s.target_accept)
        if kernel == "nuts":
            sampler = NUTS(max_tree_depth=depth, **options)
        else:
            sampler = (SplitHMC if kernel == "split_hmc" else JitteredHMC)(
                trajectory_length=s.trajectory_length, jitter=s.trajectory_jitter,
                warmup_scale=s.warmup_trajectory_scale, **options)
        state = sampler.init(key_run, warmup, init.z)

        def step(state: Any, _: Any) -> tuple[Any, Any]:
            state = sampler.sample(state, (), {})
            return state, (state.z, state.diverging)

        state, _ = jax.lax.scan(step, state, None, length=warmup)
        state, (z, diverging) = jax.lax.scan(step, state, None, length=draws)
        return jax.vmap(postprocess_gen(**kwargs))(z), diverging

    def run(key: Any, kwargs: dict) -> tuple[dict, Any]:
        keys = jax.random.split(key, config.chains)
        if config.chain_method == "vectorized":
            return jax.vmap(one_chain, in_axes=(0, None))(keys, kwargs)
        return jax.lax.map(lambda k: one_chain(k, kwargs), keys)  # sequential

    return _cached(("runner", id(model), precision, warmup, draws, config.chains,
                    config.chain_method, s.max_tree_depth,
                    *(getattr(s, k, None) for k in ("kernel", "trajectory_length",
                                                    "trajectory_jitter",
                                                    "warmup_trajectory_scale"))),
                   lambda: jax.jit(run))


def _loglik_fn(model: Callable[..., None]) -> Callable[..., Any]:
    """``(params with a leading draw axis, model kwargs) -> log-likelihood per draw``: the
    value of the model's ``votes`` factor with the parameters substituted (deterministic sites
    such as ``theta`` or ``category_deviation`` included)."""
    import jax
    from numpyro import handlers

    def one(params: dict, kwargs: dict) -> Any:
        tr = handlers.trace(handlers.seed(handlers.substitute(model, data=params), 0)
                            ).get_trace(**kwargs)
        site = tr["votes"]
        return site["fn"].log_prob(site["value"])

    return _cached(("loglik", id(model)),
                   lambda: jax.jit(jax.vmap(one, in_axes=(0, None))))


def _prior_draw_fn(spec: Any, design: PairwiseDesign) -> Callable[[Any], dict]:
    """A jitted draw of every site of the spec's model with no data (zero counts)."""
    import jax
    from numpyro.infer import Predictive

    model = _pairwise_fn(spec, len(design.models))
    kwargs = {"model_i": design.model_i, "model_j": design.model_j,
              "counts": np.zeros((len(design.model_i), 4))}

    def draw(key: Any) -> dict:
        out = Predictive(model, num_samples=1)(key, **kwargs)
        return {k: v[0] for k, v in out.items() if k != "votes"}

    return _cached(("prior", _spec_key(spec), len(design.models)), lambda: jax.jit(draw))


# --- one simulation -------------------------------------------------------------------------


@dataclass
class SimResult:
    """Ranks (``0..L``) of one simulation, keyed by quantity, and what it cost."""

    index: int
    ranks: dict[str, int]
    seconds: float
    fit_seconds: float
    divergences: int
    max_rhat: float
    min_ess: float
    truth_sigma: float
    pid: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def sim_seeds(seed: int, spec_name: str, index: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences (truth and votes, sampler, tie-breaking) of simulation
    ``index``: the same whatever the number of simulations or workers."""
    return np.random.SeedSequence([seed, zlib.crc32(spec_name.encode()), index]).spawn(3)


def model_ranks(theta: np.ndarray) -> np.ndarray:
    """Rank of each model (1 = strongest) along the last axis."""
    order = np.argsort(-theta, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, theta.shape[-1] + 1), axis=-1)
    return ranks


def rank_statistic(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """``#{draws < truth}`` plus a uniform share of the ties (``0..#{draws == truth}``), as
    Talts et al. do for discrete quantities; in ``0..len(draws)``."""
    below = int(np.sum(draws < truth))
    equal = int(np.sum(draws == truth))
    return below + int(rng.integers(0, equal + 1))


def quantities(params: Mapping[str, np.ndarray], names: Mapping[str, Sequence[str]],
               spec: Any) -> dict[str, np.ndarray]:
    """The scalar test quantities of a parameter set (the truth, or draws along a leading
    axis), in a stable order. ``names`` gives the model, category, style
    feature and voter-parameter names."""
    out: dict[str, np.ndarray] = {}
    theta = np.asarray(params["theta"])
    models = names["models"]
    for m, name in enumerate(models):
        out[f"theta[{name}]"] = theta[..., m]
    out["sigma"] = np.asarray(params["sigma"])
    for site in OUTCOME_SITES:
        if site in spec_sites(spec):
            out[site] = np.asarray(params[site])
    if spec.categories.enabled:
        tau = np.asarray(params["category_scale"])
        delta = np.asarray(params["category_deviation"])
        for c, tag in enumerate(names["tags"]):
            out[f"category_scale[{tag}]"] = tau[..., c]
        for m in range(min(2, len(models))):
            for c, tag in enumerate(names["tags"]):
                out[f"category_deviation[{models[m]}, {tag}]"] = delta[..., m, c]
    if spec.position.enabled:
        out["position"] = np.asarray(params["position"])
    if spec.style.enabled:
        beta = np.asarray(params["style_coef"])
        for f, feature in enumerate(names["features"]):
            out[f"style_coef[{feature}]"] = beta[..., f]
    if spec.voters.enabled:
        out["voter_discrimination_scale"] = np.asarray(params["voter_discrimination_scale"])
        kappa = np.asarray(params["voter_discrimination"])  # (..., V): heavy voters
        for v in range(min(2, kappa.shape[-1])):
            out[f"voter_discrimination[{names['voters'][v]}]"] = kappa[..., v]
    ranks = model_ranks(theta)
    for m, name in enumerate(models):
        out[f"rank[{name}]"] = ranks[..., m]
    return out


def spec_sites(spec: Any) -> tuple[str, ...]:
    """Sample sites of the fitted spec compared with the truth."""
    sites = ["sigma", "theta"]
    lik = spec.likelihood
    if lik.ties == "davidson":
        sites.append("log_nu")
    if lik.ties == "rao_kupper":
        sites.append("tie_threshold")
    if lik.both_bad == "modelled":
        sites += ["bothbad_intercept", "bothbad_slope"]
    if spec.categories.enabled:
        sites += ["category_scale", "category_deviation"]
    if spec.position.enabled:
        sites.append("position")
    if spec.style.enabled:
        sites.append("style_coef")
    if spec.voters.enabled:
        sites += ["voter_discrimination_scale", "voter_discrimination"]
    return tuple(sites)


def _pairwise_data(spec: Any, truth_spec: Any, design: PairwiseDesign, rng: np.random.Generator,
                   key: Any) -> tuple[dict, dict, Mapping[str, Sequence[str]]]:
    """Draw a truth from ``truth_spec``'s prior, votes from its likelihood; returns the truth,
    the model kwargs of ``spec`` and the names."""
    from bayesarena.fit import cells_for_spec, pad_cells
    from bayesarena.likelihood import OutcomeParams, outcome_probs
    from bayesarena.votes import Cells, ReadSummary

    truth = {k: np.asarray(v) for k, v in _prior_draw_fn(truth_spec, design)(key).items()}
    theta = truth["theta"]
    ti, tj = theta[design.model_i], theta[design.model_j]
    params = OutcomeParams(*(truth.get(n) for n in OutcomeParams._fields))
    lik = truth_spec.likelihood
    probs = np.asarray(outcome_probs(ti - tj, 0.5 * (ti + tj), ties=lik.ties,
                                     both_bad=lik.both_bad, params=params, link=lik.link))
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    counts = np.stack([rng.multinomial(design.votes_per_pair, p) for p in probs])
    k = len(design.model_i)
    cells = Cells(models=design.models, categories=("all",), model_i=design.model_i,
                  model_j=design.model_j, category=np.zeros(k, dtype=np.int32),
                  counts=counts.astype(np.int64),
                  summary=ReadSummary("sbc", "counts", k, k, int(counts.sum())))
    cells, _ = cells_for_spec(cells, spec)
    if cells.n_cells != k:  # shapes must stay fixed for the compiled sampler
        raise RuntimeError(f"simulated data left {cells.n_cells} of {k} cells")
    return truth, pad_cells(cells), {"models": design.models}


def _check_arena_priors(spec: Any) -> None:
    """``draw_prior_truth`` draws from ``models/arena.toml``'s default priors."""
    from bayesarena.spec import DEFAULT_PRIORS

    for name, prior in spec.priors.items():
        raw = DEFAULT_PRIORS[name]
        default = {k: float(v) for k, v in raw.items() if k != "family"}
        if prior.family != raw["family"] or dict(prior.params) != default:
            raise NotImplementedError(
                f"SBC of a hierarchical spec draws truths with simulate.draw_prior_truth, "
                f"which uses the default priors; {spec.name} has {name} = {prior.describe()}")


def _arena_data(spec: Any, design: Any, rng: np.random.Generator, config: SBCConfig
                ) -> tuple[dict, dict, Mapping[str, Sequence[str]], Any]:
    """Truth from the arena priors, votes through ``read_votes`` and the arena aggregation;
    returns the truth in the model's sites, the fixed-shape model kwargs, the names and the
    aggregated votes (:class:`bayesarena.arena_data.ArenaCells`)."""

    from bayesarena.fit import arena_for_spec
    from bayesarena.io import read_votes
    from bayesarena.simulate import (
        STYLE_FEATURES,
        arena_frame,
        draw_prior_truth,
        simulate_outcomes,
        voter_names,
    )

    _check_arena_priors(spec)
    min_votes = spec.voters.min_votes
    truth = draw_prior_truth(design, rng=rng, min_votes=min_votes)
    outcome = simulate_outcomes(truth, design, rng)
    arena, _ = arena_for_spec(read_votes(arena_frame(design, outcome)), spec)
    kwargs = _arena_arguments(arena, spec, design.n_votes, config.arena_voter_centring)
    if tuple(arena.cells.models) != tuple(design.models):
        raise RuntimeError("models of the aggregated votes differ from the design's")
    tag_index = [design.categories.index(t) for t in arena.tags]
    params: dict[str, Any] = {
        "theta": truth.theta, "sigma": truth.sigma, "log_nu": truth.log_nu,
        "bothbad_intercept": truth.bothbad_intercept, "bothbad_slope": truth.bothbad_slope,
    }
    names: dict[str, Sequence[str]] = {"models": design.models, "tags": arena.tags,
                                       "features": arena.style_features,
                                       "voters": list(arena.voters)}
    if spec.categories.enabled:
        params["category_scale"] = np.asarray(truth.category_scale)[tag_index]
        params["category_deviation"] = np.asarray(truth.delta)[:, tag_index]
    if spec.position.enabled:
        params["position"] = truth.position
    if spec.style.enabled:
        feature_index = [STYLE_FEATURES.index(f) for f in arena.style_features]
        params["style_coef"] = np.asarray(truth.style_coef)[feature_index]
    if spec.voters.enabled:  # heavy voters' own kappa; light voters have kappa = 1
        heavy = design.voter_counts() >= min_votes
        all_names = list(voter_names(design.n_voters))
        index = [all_names.index(v) for v in arena.voters]
        if sorted(index) != np.nonzero(heavy)[0].tolist():
            raise RuntimeError("heavy voters of the aggregation differ from the design's")
        params["voter_discrimination_scale"] = truth.voter_discrimination_scale
        params["voter_discrimination"] = np.asarray(truth.voter_kappa, dtype=float)[index]
    return params, kwargs, names, arena


def _diagnostics(samples: Mapping[str, np.ndarray], sites: Sequence[str]) -> tuple[float, float]:
    """Worst split R-hat and smallest ESS over the compared sites (all kept draws)."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    rhat, ess = [], []
    for site in sites:
        x = np.asarray(samples[site], dtype=float)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        keep = np.nanstd(x, axis=(0, 1)) > 0  # e.g. a zero-sum direction stored exactly
        if not keep.any():
            continue
        rhat.append(np.nanmax(split_gelman_rubin(x[..., keep])))
        ess.append(np.nanmin(effective_sample_size(x[..., keep])))
    return float(max(rhat)), float(min(ess))


def simulate_once(spec: Any, index: int, config: SBCConfig = SBCConfig(), *, seed: int = 0,
                  truth_spec: Any = None, design: Any = None) -> SimResult:
    """One SBC simulation of ``spec``: truth, votes, NUTS fit, ranks.

    ``truth_spec`` (default :func:`generating_spec`) is the spec the truth and votes are drawn
    from; give another one for a negative control (e.g. :func:`scaled_prior`). ``design``
    defaults to :func:`make_design`.
    """
    import jax

    t_start = time.perf_counter()
    spec = _load(spec)
    truth_spec = generating_spec(spec)[0] if truth_spec is None else _load(truth_spec)
    if spec.hierarchical and _spec_key(truth_spec) != _spec_key(spec):
        raise NotImplementedError("hierarchical specs: truths come from the spec itself")
    spec = fitted_spec(spec, config)
    design = make_design(spec, config) if design is None else design
    s_data, s_fit, s_tie = sim_seeds(seed, spec.name, index)
    rng = np.random.default_rng(s_data)
    key_fit = jax.random.PRNGKey(int(s_fit.generate_state(1)[0]))
    if spec.hierarchical:
        truth, kwargs, names, arena = _arena_data(spec, design, rng, config)
        model = _arena_fn(spec, arena)
    else:
        key_truth = jax.random.PRNGKey(int(rng.integers(2**31)))
        truth, kwargs, names = _pairwise_data(spec, truth_spec, design, rng, key_truth)
        model = _pairwise_fn(spec, len(design.models))
    sites = spec_sites(spec)
    if config.fitter == "package":
        samples, divergences, fit_s = _fit_package(spec, truth_spec, design, kwargs, config,
                                                   index, seed)
    else:
        t_fit = time.perf_counter()
        out, diverging = _runner(model, spec, config)(key_fit, kwargs)
        samples = {k: np.asarray(v) for k, v in out.items()}
        divergences = int(np.asarray(diverging).sum())
        fit_s = time.perf_counter() - t_fit
    max_rhat, min_ess = _diagnostics(samples, sites)
    kept = {k: v[:, ::config.thin].reshape(-1, *v.shape[2:])[: config.n_draws]
            for k, v in samples.items()}
    if next(iter(kept.values())).shape[0] != config.n_draws:
        raise RuntimeError("fewer kept draws than L")
    thinned = {k: kept[k] for k in sites}
    truth_sites = {k: np.asarray(truth[k], dtype=float) for k in sites}
    # the log-likelihood: the model's votes factor with every site substituted
    loglik = _loglik_fn(model)
    truth_loglik = np.asarray(loglik({k: np.asarray(v, dtype=float)[None]
                                      for k, v in truth.items()}, kwargs))[0]
    draws_loglik = np.asarray(loglik(kept, kwargs))
    q_truth = quantities(truth_sites, names, spec)
    q_draws = quantities(thinned, names, spec)
    q_truth["loglik"], q_draws["loglik"] = truth_loglik, draws_loglik
    tie_rng = np.random.default_rng(s_tie)
    ranks = {name: rank_statistic(float(q_truth[name]), np.asarray(q_draws[name]), tie_rng)
             for name in q_truth}
    return SimResult(index=index, ranks=ranks, seconds=time.perf_counter() - t_start,
                     fit_seconds=fit_s, divergences=divergences, max_rhat=max_rhat,
                     min_ess=min_ess, truth_sigma=float(truth_sites["sigma"]), pid=os.getpid())


def _fit_package(spec: Any, truth_spec: Any, design: Any, kwargs: dict, config: SBCConfig,
                 index: int, seed: int) -> tuple[dict, int, float]:
    """Fit with ``bayesarena.fit.fit`` (the full user path, Laplace start included). Only for
    pairwise specs: the cells are rebuilt from the padded kwargs."""
    from bayesarena.fit import fit
    from bayesarena.votes import Cells, ReadSummary

    if spec.hierarchical:
        raise NotImplementedError("fitter='package' is implemented for pairwise specs only")
    counts = np.asarray(kwargs["counts"])[: len(design.model_i)].astype(np.int64)
    k = len(design.model_i)
    cells = Cells(models=design.models, categories=("all",), model_i=design.model_i,
                  model_j=design.model_j, category=np.zeros(k, dtype=np.int32), counts=counts,
                  summary=ReadSummary("sbc", "counts", k, k, int(counts.sum())))
    t0 = time.perf_counter()
    post = fit(cells, spec, seed=seed * 100_003 + index, chains=config.chains,
               warmup=config.warmup, draws=config.draws_per_chain, progress=False, warn=False)
    fit_s = time.perf_counter() - t0
    tree = post.tree["posterior"]
    samples = {k: np.asarray(tree[k].values) for k in spec_sites(spec)}
    divergences = int(post.tree["sample_stats"]["diverging"].values.sum())
    return samples, divergences, fit_s


# --- many simulations -----------------------------------------------------------------------


@dataclass
class SpecSBC:
    """All simulations of one spec: ranks ``(n_sims, Q)`` in ``quantity`` order."""

    spec: str
    quantities: list[str]
    ranks: np.ndarray
    sims: list[SimResult]
    config: SBCConfig
    note: str = ""
    truth_spec: str = ""
    wall_seconds: float = 0.0

    @property
    def n_sims(self) -> int:
        return int(self.ranks.shape[0])


def _worker(args: tuple) -> SimResult:
    spec, index, config, seed, truth_spec = args
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return simulate_once(spec, index, config, seed=seed, truth_spec=truth_spec)


def run_sbc(spec: Any, n_sims: int, config: SBCConfig = SBCConfig(), *, seed: int = 0,
            truth_spec: Any = None, workers: int = 1, progress: bool = True,
            label: str | None = None) -> SpecSBC:
    """``n_sims`` simulations of ``spec`` (see :func:`simulate_once`), in ``workers``
    processes (spawned; each compiles its sampler once). Results do not depend on
    ``workers``."""
    spec = _load(spec)
    gen, note = generating_spec(spec)
    truth_spec = gen if truth_spec is None else _load(truth_spec)
    if _spec_key(truth_spec) != _spec_key(gen) and not note:
        note = f"truths from {truth_spec.name!r}: a negative control"
    label = label or spec.name
    t0 = time.perf_counter()
    results: list[SimResult] = []

    def report(done: int) -> None:
        if not progress or not (done in (1, n_sims) or done % max(1, n_sims // 20) == 0):
            return
        elapsed = time.perf_counter() - t0
        eta = elapsed / done * (n_sims - done)
        print(f"[{label}] {done}/{n_sims} sims, {elapsed:.0f} s elapsed, "
              f"~{eta:.0f} s left", flush=True)

    if workers <= 1:
        design = make_design(spec, config)
        for i in range(n_sims):
            results.append(simulate_once(spec, i, config, seed=seed, truth_spec=truth_spec,
                                         design=design))
            report(len(results))
    else:
        tasks = [(spec, i, config, seed, truth_spec) for i in range(n_sims)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_worker, t) for t in tasks]
            for future in as_completed(futures):
                results.append(future.result())
                report(len(results))
    results.sort(key=lambda r: r.index)
    names = list(results[0].ranks)
    ranks = np.array([[r.ranks[q] for q in names] for r in results], dtype=np.int64)
    return SpecSBC(spec=label, quantities=names, ranks=ranks, sims=results, config=config,
                   note=note, truth_spec=truth_spec.name,
                   wall_seconds=time.perf_counter() - t0)


# --- uniformity -----------------------------------------------------------------------------


def chi2_pvalue(ranks: np.ndarray, n_ranks: int, bins: int) -> float:
    """Chi-square test of uniformity of ranks ``0..n_ranks-1`` on ``bins`` equal bins."""
    from scipy.stats import chisquare

    if n_ranks % bins:
        raise ValueError(f"n_ranks = {n_ranks} is not a multiple of bins = {bins}")
    counts = np.bincount(np.asarray(ranks) * bins // n_ranks, minlength=bins)
    return float(chisquare(counts).pvalue)


def _ecdf_tail(ranks: np.ndarray, n_ranks: int) -> tuple[np.ndarray, np.ndarray]:
    """For rank sets ``(..., n)``: the smallest two-sided pointwise binomial tail probability
    of the ECDF over ``z_j = j / n_ranks`` (``j = 1..n_ranks - 1``), and the largest
    ``|ECDF(z_j) - z_j|``."""
    from scipy.stats import binom

    ranks = np.asarray(ranks)
    lead, n = ranks.shape[:-1], ranks.shape[-1]
    flat = ranks.reshape(-1, n)
    offset = (np.arange(flat.shape[0]) * n_ranks)[:, None]
    hist = np.bincount((flat + offset).ravel(), minlength=flat.shape[0] * n_ranks)
    below = np.cumsum(hist.reshape(flat.shape[0], n_ranks), axis=1)[:, :-1]  # #ranks < j
    z = np.arange(1, n_ranks) / n_ranks
    lower = binom.cdf(below, n, z)
    upper = binom.sf(below - 1, n, z)
    tail = np.minimum(1.0, 2.0 * np.minimum(lower, upper)).min(axis=1)
    dev = np.abs(below / n - z).max(axis=1)
    return tail.reshape(lead), dev.reshape(lead)


@functools.cache
def _ecdf_null(n: int, n_ranks: int, reps: int = 4000) -> np.ndarray:
    """Null distribution of the smallest pointwise tail probability (uniform ranks)."""
    rng = np.random.default_rng(12345)
    return np.sort(_ecdf_tail(rng.integers(0, n_ranks, size=(reps, n)), n_ranks)[0])


def ecdf_test(ranks: np.ndarray, n_ranks: int) -> tuple[float, float]:
    """Simultaneous ECDF test of Sailynoja, Buerkner & Vehtari (2022): ``(p-value, largest
    ECDF deviation)``. The statistic is the smallest pointwise binomial tail probability of
    the ECDF; its null distribution is simulated (their Algorithm 1), so the band
    ``gamma = quantile(null, alpha)`` is simultaneous at level ``1 - alpha``, and the p-value
    is the rank of the observed statistic in the null."""
    tail, dev = _ecdf_tail(np.asarray(ranks)[None], n_ranks)
    null = _ecdf_null(len(ranks), n_ranks)
    p = (1 + np.searchsorted(null, tail[0], side="right")) / (1 + len(null))
    return float(min(p, 1.0)), float(dev[0])


def uniformity(result: SpecSBC, alpha: float | None = None) -> list[dict]:
    """Per-quantity chi-square p-value, ECDF test p-value and deviation, and verdict
    (``"non-uniform"`` when either p-value is below ``alpha / Q``)."""
    cfg = result.config
    alpha = cfg.alpha if alpha is None else alpha
    threshold = alpha / len(result.quantities)
    rows = []
    for q, name in enumerate(result.quantities):
        r = result.ranks[:, q]
        p_chi2 = chi2_pvalue(r, cfg.n_ranks, cfg.bins)
        p_ecdf, dev = ecdf_test(r, cfg.n_ranks)
        bad = p_chi2 < threshold or p_ecdf < threshold
        rows.append({"spec": result.spec, "quantity": name, "n_sims": result.n_sims,
                     "chi2_p": p_chi2, "ecdf_p": p_ecdf, "ecdf_max_dev": dev,
                     "verdict": "non-uniform" if bad else "ok"})
    return rows


def spec_verdict(rows: Sequence[dict], note: str = "") -> str:
    bad = [r["quantity"] for r in rows if r["verdict"] != "ok"]
    if note.startswith("pseudo"):
        return ("baseline (pseudo-likelihood): " + (f"{len(bad)} non-uniform" if bad
                                                     else "no quantity flagged"))
    return "calibrated" if not bad else f"miscalibrated: {len(bad)} of {len(rows)} flagged"


# --- reporting ------------------------------------------------------------------------------


def timing(result: SpecSBC) -> dict:
    """Seconds per simulation: the first simulation of each process includes compilation."""
    by_pid: dict[int, list[SimResult]] = {}
    for s in sorted(result.sims, key=lambda s: s.index):
        by_pid.setdefault(s.pid, []).append(s)
    first = {id(v[0]) for v in by_pid.values()}
    warm = [s.seconds for s in result.sims if id(s) not in first] or [s.seconds for s in
                                                                       result.sims]
    cold = [v[0].seconds for v in by_pid.values()]
    return {"median_s_per_sim": float(np.median(warm)), "mean_s_per_sim": float(np.mean(warm)),
            "p90_s_per_sim": float(np.quantile(warm, 0.9)),
            "median_fit_s": float(np.median([s.fit_seconds for s in result.sims])),
            "first_sim_s": float(np.mean(cold)), "wall_s": result.wall_seconds,
            "processes": len(by_pid)}


def summary(result: SpecSBC) -> dict:
    rows = uniformity(result)
    sims = result.sims
    div = np.array([s.divergences for s in sims])
    return {
        "spec": result.spec, "truth_spec": result.truth_spec, "note": result.note,
        "n_sims": result.n_sims, "L": result.config.n_draws, "bins": result.config.bins,
        "verdict": spec_verdict(rows, result.note),
        "bonferroni_threshold": result.config.alpha / len(rows),
        "timing": timing(result),
        "sampler": {
            "sims_with_divergences": int((div > 0).sum()),
            "total_divergences": int(div.sum()),
            "sims_rhat_over_1.05": int(sum(s.max_rhat > 1.05 for s in sims)),
            "median_min_ess": float(np.median([s.min_ess for s in sims])),
            "min_ess_below_L": int(sum(s.min_ess < result.config.n_draws for s in sims)),
        },
        "quantities": rows,
        "ranks": {q: result.ranks[:, k].tolist() for k, q in enumerate(result.quantities)},
        "sims": {  # one column per field, a row per simulation
            "index": [s.index for s in sims],
            "seconds": [round(s.seconds, 3) for s in sims],
            "fit_seconds": [round(s.fit_seconds, 3) for s in sims],
            "divergences": [s.divergences for s in sims],
            "max_rhat": [round(s.max_rhat, 3) for s in sims],
            "min_ess": [round(s.min_ess, 1) for s in sims],
            "truth_sigma": [round(s.truth_sigma, 5) for s in sims],
        },
    }


def write_markdown(doc: dict, path: Path) -> None:
    cfg = doc["config"]
    commands = list(dict.fromkeys(s.get("command", doc["command"]) for s in
                                  doc["specs"].values()))
    lines = [
        "# Simulation-based calibration of the shipped specs",
        "",
        "Commands: " + "; ".join(f"`{c}`" for c in commands)
        + f" ({doc['generated']}, {doc['machine']}); per-spec commands and package state under "
        "Provenance.",
        "Talts et al. (2018); test quantities after Modrak et al. (2023), including the "
        "log-likelihood of the simulated votes; ECDF test after Sailynoja et al. (2022). "
        "Method and caveats: `benchmarks/sbc.py`.",
        "",
        f"Design: pairwise specs {cfg['n_models']} models, every pair x {cfg['votes_per_pair']}"
        f" votes; arena {cfg['n_models']} models, {cfg['arena_votes']} votes, "
        f"{cfg['arena_categories']} categories (multi-tag rate {cfg['multi_tag_rate']}), "
        f"{cfg['arena_voters']} voters, style, position. NUTS: {cfg['chains']} chains, "
        f"warmup {cfg['warmup']}, {cfg['thin']}x thinned to L = {cfg['n_ranks'] - 1} draws "
        f"(ranks 0..{cfg['n_ranks'] - 1}); chi-square on {cfg['bins']} bins; a quantity is "
        f"flagged when the chi-square or the ECDF p-value is below {cfg['alpha']} / Q "
        "(Bonferroni over the spec's Q quantities). Fitter: "
        f"`{cfg['fitter']}`.",
        "",
        "## Verdicts and cost",
        "",
        "s / sim: median seconds of one simulation in one process (truth, votes, fit, ranks) "
        "after the first, which includes compilation; wall / sim: the run's wall time over its "
        "simulations (with its worker processes). Sampler columns: simulations with any "
        "divergent transition, with a split R-hat above 1.05, and the median over simulations "
        "of the smallest ESS (of all draws before thinning) over the compared parameters.",
        "",
        "| spec | sims | Q | verdict | s / sim | wall / sim | first sim (compile) | sims with "
        "divergences | R-hat > 1.05 | median min ESS |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in doc["specs"].values():
        t, smp = s["timing"], s["sampler"]
        lines.append(
            f"| {s['spec']} | {s['n_sims']} | {len(s['quantities'])} | {s['verdict']} | "
            f"{t['median_s_per_sim']:.2f} | {t['wall_s'] / s['n_sims']:.2f} | "
            f"{t['first_sim_s']:.1f} | {smp['sims_with_divergences']} | "
            f"{smp['sims_rhat_over_1.05']} | {smp['median_min_ess']:.0f} |")
    notes = [(s["spec"], s["note"] or _variant_note(s["spec"])) for s in doc["specs"].values()]
    if any(note for _, note in notes):
        lines += [""] + [f"- **{name}**: {note}." for name, note in notes if note]
    lines += ["", "## Small spreads: where the sampler struggles", "",
              "Simulations with divergent transitions by the true spread of the strengths, and "
              "how often the true sigma ranks 0 (below every draw) against the "
              "n_sims / (L + 1) expected.", "",
              "| spec | divergent, sigma < 0.2 | divergent, sigma >= 0.2 | sigma rank 0 | "
              "expected |", "|---|---:|---:|---:|---:|"]
    for s in doc["specs"].values():
        sigma = np.asarray(s["sims"]["truth_sigma"])
        div = np.asarray(s["sims"]["divergences"]) > 0
        small = sigma < 0.2
        rank0 = int(np.sum(np.asarray(s["ranks"]["sigma"]) == 0))
        lines.append(f"| {s['spec']} | {div[small].sum()} of {small.sum()} | "
                     f"{div[~small].sum()} of {(~small).sum()} | {rank0} | "
                     f"{s['n_sims'] / (s['L'] + 1):.0f} |")
    lines += ["", "## Flagged quantities", ""]
    flagged = [r for s in doc["specs"].values() for r in s["quantities"] if r["verdict"] != "ok"]
    if flagged:
        lines += ["| spec | quantity | chi2 p | ECDF p | max ECDF dev |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {r['spec']} | {r['quantity']} | {r['chi2_p']:.2g} | {r['ecdf_p']:.2g} | "
                  f"{r['ecdf_max_dev']:.3f} |" for r in flagged]
    else:
        lines.append("None.")
    lines += ["", "## Provenance", "", "| spec | command | package |", "|---|---|---|"]
    lines += [f"| {s['spec']} | `{s.get('command', doc['command'])}` | "
              f"{s.get('package', 'unknown')} |" for s in doc["specs"].values()]
    lines += ["", "## Every quantity", "",
              "| spec | quantity | n_sims | chi2 p | ECDF p | max ECDF dev | verdict |",
              "|---|---|---:|---:|---:|---:|---|"]
    for s in doc["specs"].values():
        for r in s["quantities"]:
            lines.append(f"| {r['spec']} | {r['quantity']} | {r['n_sims']} | {r['chi2_p']:.3f} "
                         f"| {r['ecdf_p']:.3f} | {r['ecdf_max_dev']:.3f} | {r['verdict']} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _variant_note(label: str) -> str:
    if "[strength " not in label:
        return ""
    base, variant = label.split(" [strength ")
    return (f"the truths and votes of {base} (same seeds), strengths sampled "
            f"{variant.rstrip(']')} instead of as the spec says: a diagnostic variant")


def _panel_quantities(spec_doc: dict, k: int = 8) -> list[str]:
    rows = spec_doc["quantities"]
    names = [r["quantity"] for r in rows]
    first = [n for n in ("sigma", names[0], f"rank[{names[0][6:-1]}]", "loglik") if n in names]
    rest = sorted((r for r in rows if r["quantity"] not in first),
                  key=lambda r: min(r["chi2_p"], r["ecdf_p"]))
    return (first + [r["quantity"] for r in rest])[:k]


def plot(doc: dict, path: Path) -> None:
    """Rank histograms: a row per spec (sigma, a strength, its model rank, the log-likelihood
    and the four lowest-p other quantities), with the 99% band of a bin count under
    uniformity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    specs = list(doc["specs"].values())
    ncol = 8
    fig, axes = plt.subplots(len(specs), ncol, figsize=(2.1 * ncol, 1.9 * len(specs)),
                             squeeze=False)
    for row, s in enumerate(specs):
        bins, n_ranks, n = s["bins"], s["L"] + 1, s["n_sims"]
        lo, hi = binom.ppf([0.005, 0.995], n, 1 / bins)
        by_name = {r["quantity"]: r for r in s["quantities"]}
        panels = _panel_quantities(s, ncol)
        for col in range(ncol):
            ax = axes[row, col]
            if col >= len(panels):
                ax.axis("off")
                continue
            q = panels[col]
            counts = np.bincount(np.asarray(s["ranks"][q]) * bins // n_ranks, minlength=bins)
            ax.axhspan(lo, hi, color="0.85", zorder=0)
            ax.axhline(n / bins, color="0.5", lw=0.8, zorder=1)
            bad = by_name[q]["verdict"] != "ok"
            ax.bar(np.arange(bins), counts, width=0.9, color="tab:red" if bad else "tab:blue",
                   zorder=2)
            ax.set_title(f"{q}\np={min(by_name[q]['chi2_p'], by_name[q]['ecdf_p']):.2g}",
                         fontsize=7)
            ax.set_xticks([])
            ax.tick_params(labelsize=6)
            if col == 0:
                ax.set_ylabel(s["spec"].replace(" [", "\n["), fontsize=7)
    fig.suptitle(f"SBC rank histograms ({bins} bins; grey: 99% band of a bin under "
                 "uniformity; red: flagged)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dump_json(doc: dict) -> str:
    """JSON with one line per list of numbers (the ranks and per-simulation columns)."""
    import re

    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s+([-\d.eE,\s]+?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _package_state() -> str:
    """The checkout's commit, and whether src/ or models/ differ from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "models"],
                               cwd=root, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes in src/ or models/" if dirty.strip() else "")


def write_results(results: Sequence[SpecSBC], out: Path, *, command: str,
                  merge: bool = False) -> dict:
    """Write ``out.json``, ``out.md`` and ``out.png``; with ``merge`` keep the specs of an
    existing ``out.json`` that were not run now."""
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    specs: dict[str, dict] = {}
    if merge and json_path.exists():
        specs = json.loads(json_path.read_text(encoding="utf-8"))["specs"]
    state = _package_state()
    for r in results:
        specs[r.spec] = {**summary(r), "command": command, "package": state,
                         "config": asdict(r.config)}
    from bayesarena.spec import available_specs

    order = {name: k for k, name in enumerate(available_specs())}
    specs = dict(sorted(specs.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
    config = asdict(results[0].config) if results else {}
    doc = {"command": command, "generated": time.strftime("%Y-%m-%d %H:%M"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                      f"{platform.python_version()}",
           "config": config, "specs": specs}
    json_path.write_text(dump_json(doc), encoding="utf-8")
    write_markdown(doc, out.with_suffix(".md"))
    plot(doc, out.with_suffix(".png"))
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    from bayesarena.spec import KERNELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=200, help="simulations per spec (200)")
    parser.add_argument("--spec", default="all",
                        help="'all' or comma-separated shipped spec names or paths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes running simulations in parallel (1)")
    parser.add_argument("--fitter", choices=("reuse", "package"), default="reuse")
    parser.add_argument("--kernel", choices=KERNELS, default=None,
                        help="sample with this kernel instead of the spec's (a diagnostic)")
    parser.add_argument("--max-tree-depth", type=int, default=None,
                        help="NUTS's tree-depth cap in place of the spec's (a diagnostic "
                             "variant, labelled as such)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output prefix (.json, .md, .png); default benchmarks/results/sbc")
    parser.add_argument("--strength", choices=("spec", "centered", "noncentered"),
                        default="spec", help="strength parametrisation: the spec's (default) "
                        "or another, reported as 'NAME [strength X]' (same truths and votes)")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-render OUT.md and OUT.png from OUT.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other specs of an existing OUT.json")
    args = parser.parse_args(argv)
    if args.report_only:
        doc = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        write_markdown(doc, args.out.with_suffix(".md"))
        plot(doc, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.md')}, .png")
        return 0

    from bayesarena.spec import available_specs

    names = available_specs() if args.spec == "all" else [s.strip() for s in
                                                           args.spec.split(",")]
    # pairwise specs first: the arena spec is the slow one
    names = sorted(names, key=lambda n: _load(n).hierarchical)
    config = replace(SBCConfig(), fitter=args.fitter,
                     **{k: v for k, v in (("warmup", args.warmup), ("chains", args.chains))
                        if v is not None})
    command = "python benchmarks/sbc.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = []
    failed = []
    for name in names:
        spec, label = _load(name), name
        if args.strength != "spec":
            spec = replace(spec, strength=replace(spec.strength, parametrization=args.strength))
            label = f"{name} [strength {args.strength}]"
        if args.kernel is not None:
            spec = spec.with_sampler(kernel=args.kernel)
            label = f"{label} [kernel {args.kernel}]"
        if args.max_tree_depth is not None:
            spec = spec.with_sampler(max_tree_depth=args.max_tree_depth)
            label = f"{label} [tree depth {args.max_tree_depth}]"
        try:
            r = run_sbc(spec, args.sims, config, seed=args.seed, workers=args.workers,
                        label=label)
        except Exception as exc:  # report it and go on with the other specs
            import traceback

            traceback.print_exc()
            print(f"[{label}] FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        rows = uniformity(r)
        t = timing(r)
        print(f"[{label}] {spec_verdict(rows, r.note)}; {t['median_s_per_sim']:.2f} s/sim "
              f"(first {t['first_sim_s']:.1f} s); wall {r.wall_seconds:.0f} s", flush=True)
        for row in rows:
            if row["verdict"] != "ok":
                print(f"    {row['quantity']}: chi2 p = {row['chi2_p']:.2g}, ECDF p = "
                      f"{row['ecdf_p']:.2g}", flush=True)
        results.append(r)
        write_results(results, args.out, command=command, merge=args.merge or len(results) > 1)
    print(f"wrote {args.out.with_suffix('.json')}, .md, .png")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
