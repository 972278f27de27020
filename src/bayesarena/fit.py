"""Fitting: MCMC (NumPyro's NUTS, or HMC with a jittered integration time and a split
integrator for large posteriors) or a Laplace approximation, from cells to a
:class:`Posterior`.

``fit(data, spec)`` accepts :class:`~bayesarena.votes.Cells`, :class:`~bayesarena.votes.Votes`,
a DataFrame or a path, reads and aggregates what it must, removes the outcomes the spec does not
model (recording how many votes that was), and samples.

NUTS defaults (4 chains, ``chain_method = "auto"``: parallel over virtual host devices when
JAX has at least one per chain, else sequential; ``benchmarks/fit_scaling.py`` holds the
measurement behind that choice) start each chain from an
independent draw of the Laplace approximation, inflated 1.5x so the chains start overdispersed
(R-hat needs that), and seed the diagonal mass matrix with the Laplace marginal variances, which
lets warmup converge in fewer iterations. For hierarchical specs that Laplace approximation is
taken in the coordinates NUTS samples, with every group scale at its marginal maximum-likelihood
value (:func:`_refine_in_sampling_coordinates`). Hoffman & Gelman (2014) for NUTS; Phan,
Pradhan & Jankowiak (2019) for NumPyro.

The spec's ``[sampler] kernel`` picks the transition kernel (``method="nuts"`` names MCMC
with any): NUTS, :class:`~bayesarena.jittered_hmc.JitteredHMC`, or
:class:`~bayesarena.split_hmc.SplitHMC`, which ``"auto"`` (in ``models/arena.toml``) chooses
for posteriors of :data:`LARGE_POSTERIOR_FROM` parameters or more (:func:`resolve_kernel`);
step size and mass matrix are adapted the same way (Stan's schedule, NumPyro's adapter) for
all three. The spec's ``[sampler] metric`` picks the mass matrix: ``"diagonal"``, adapted in
warmup, or ``"laplace"``, which ``"auto"`` (in ``models/arena.toml``) chooses where split HMC
samples a hierarchical arena (:func:`resolve_metric`): the chains move in the coordinates the
exact blocked Laplace approximation makes round (:mod:`bayesarena.whitening`), a dense mass
matrix fixed from the start, so warmup only tunes the step size (:func:`resolve_warmup`).
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import ZeroSumTransform
from numpyro.infer import MCMC, NUTS
from numpyro.infer.initialization import init_to_median

from bayesarena.adaptation import pool_adaptation
from bayesarena.arena_data import ArenaCells, arena_cells
from bayesarena.arena_hessian import arena_blocked_hessian
from bayesarena.arena_model import (
    arena_model,
    centre_elements,
    centre_group,
    default_category_centring,
    group_spread,
    log_spread_information,
    model_arguments,
    prior_median,
    splits_category_means,
    theta_pinned,
)
from bayesarena.diagnostics import compute_diagnostics, warn_if_unhealthy
from bayesarena.errors import BayesArenaError, SamplingWarning
from bayesarena.jittered_hmc import JitteredHMC
from bayesarena.laplace import (
    LaplaceResult,
    constrained_draws,
    laplace_approximation,
    model_functions,
    sample_unconstrained,
    with_site_precisions,
)
from bayesarena.numpyro_model import bucket_size, pad_rows, pairwise_model
from bayesarena.posterior import Posterior, build_tree
from bayesarena.precision import sampling_data
from bayesarena.spec import ModelSpec, load_spec
from bayesarena.split_hmc import SplitHMC
from bayesarena.validation import check_connected
from bayesarena.votes import Cells, Votes
from bayesarena.whitening import SITE, Whitening, unwhitened_draws, whitened_model, whitening

Method = Literal["nuts", "laplace"]
DEFAULT_SPEC = "bt-davidson"
INIT_INFLATE = 1.5
#: Sample all-centred category deviations as per-model means and contrasts when theta goes
#: through its category mean (:func:`~bayesarena.arena_model.split_model_means_deviations`);
#: ``benchmarks/arena_scaling.py --no-split`` measures without.
SPLIT_CATEGORY_MEANS = True
#: Posteriors of this many parameters or more count as large: ``kernel = "auto"`` samples
#: them with split HMC (:func:`resolve_kernel`), ``max_tree_depth = "auto"`` caps NUTS's
#: trees at 15 leapfrog steps (depth 4; NumPyro's 1,023 below, :func:`resolve_max_tree_depth`).
LARGE_POSTERIOR_FROM = 3000


def as_votes(data: Votes | pd.DataFrame | str | Path) -> Votes:
    """Read whatever was given into :class:`Votes` (hierarchical specs need the votes, not
    the cells: voters, style and tag sets are per-vote)."""
    if isinstance(data, Votes):
        return data
    if isinstance(data, Cells):
        raise BayesArenaError(
            "hierarchical specs (categories, voters, style, position) need the votes, not "
            "aggregated Cells: pass the votes (a DataFrame, a path or read_votes(...))"
        )
    from bayesarena.io import read_votes

    return read_votes(data)


def as_cells(data: Cells | Votes | pd.DataFrame | str | Path) -> Cells:
    """Read and aggregate whatever was given, down to :class:`Cells`."""
    if isinstance(data, Cells):
        return data
    from bayesarena.aggregate import aggregate

    if isinstance(data, Votes):
        return aggregate(data)
    from bayesarena.io import read_votes

    return aggregate(read_votes(data))


def cells_for_spec(cells: Cells, spec: ModelSpec) -> tuple[Cells, dict[str, int]]:
    """Zero the outcomes the spec does not model, drop emptied cells, re-check connectivity.

    Returns the cells to fit and the number of votes left out per outcome (for example the
    tie votes under plain Bradley-Terry), which the posterior records.
    """
    counts = cells.counts.copy()
    dropped: dict[str, int] = {}
    if spec.likelihood.ties == "drop":
        dropped["tie"] = int(counts[:, 2].sum())
        counts[:, 2] = 0
    if spec.likelihood.both_bad == "drop":
        dropped["tie_bothbad"] = int(counts[:, 3].sum())
        counts[:, 3] = 0
    dropped = {k: v for k, v in dropped.items() if v}
    if not dropped:
        return cells, {}
    keep = counts.sum(axis=1) > 0
    out = Cells(models=cells.models, categories=cells.categories, model_i=cells.model_i[keep],
                model_j=cells.model_j[keep], category=cells.category[keep], counts=counts[keep],
                summary=cells.summary)
    check_connected(out)
    return out, dropped


def arena_for_spec(votes: Votes, spec: ModelSpec) -> tuple[ArenaCells, dict[str, int]]:
    """:func:`~bayesarena.arena_data.arena_cells` with the outcomes the spec does not model
    zeroed in the cells (the direction rows hold decisive votes only), and their counts."""
    arena = arena_cells(votes, spec)
    counts = arena.cells.counts.copy()
    dropped: dict[str, int] = {}
    for column, name, drop in ((2, "tie", spec.likelihood.ties == "drop"),
                               (3, "tie_bothbad", spec.likelihood.both_bad == "drop")):
        if drop and counts[:, column].sum():
            dropped[name] = int(counts[:, column].sum())
            counts[:, column] = 0
    if not dropped:
        return arena, {}
    cells = replace(arena.cells, counts=counts)
    keep = counts.sum(axis=1) > 0
    check_connected(replace(cells, model_i=cells.model_i[keep], model_j=cells.model_j[keep],
                            category=cells.category[keep], counts=counts[keep]))
    return replace(arena, cells=cells), dropped


def pad_cells(cells: Cells) -> dict[str, jax.Array]:
    """Model arguments with the cell axis padded to :func:`bucket_size` by zero-count cells."""
    size = bucket_size(cells.n_cells)
    return {"model_i": jnp.asarray(pad_rows(cells.model_i, size)),
            "model_j": jnp.asarray(pad_rows(cells.model_j, size, fill=1)),
            "counts": jnp.asarray(pad_rows(cells.counts.astype(np.float64), size))}


def fit(
    data: Cells | Votes | pd.DataFrame | str | Path,
    spec: str | Path | ModelSpec = DEFAULT_SPEC,
    *,
    method: Method = "nuts",
    seed: int = 0,
    chains: int | None = None,
    warmup: int | None = None,
    draws: int | None = None,
    chain_method: str | None = None,
    target_accept: float | None = None,
    laplace_draws: int = 4000,
    progress: bool = True,
    warn: bool = True,
) -> Posterior:
    """Fit ``spec`` to the votes and return the :class:`Posterior`.

    ``method="nuts"`` samples with NUTS (defaults from the spec's ``[sampler]`` table, which the
    keyword arguments override); ``method="laplace"`` returns ``laplace_draws`` independent draws
    of the Gaussian approximation at the mode. Diagnostics are computed after every fit and a
    :class:`~bayesarena.errors.SamplingWarning` names every failed threshold.

    A hierarchical spec's Laplace approximation is the one NUTS starts from: each group scale
    at its marginal maximum-likelihood estimate (empirical Bayes: the joint mode overstates
    every scale, :func:`_marginal_scales`), the other parameters at their mode given the scales,
    in the coordinates NUTS would sample, with the exact Hessian there taken in blocks
    (:class:`~bayesarena.laplace.BlockedPrecision`: voters interact with no other voter).
    """
    spec = load_spec(spec).with_sampler(chains=chains, warmup=warmup, draws=draws,
                                        chain_method=chain_method, target_accept=target_accept)
    if method not in ("nuts", "laplace"):
        raise BayesArenaError(f"unknown method {method!r}: use 'nuts' or 'laplace'")
    # a hierarchical spec's Laplace fit is staged as NUTS's start is (see the docstring)
    staged = (method == "nuts" and spec.sampler.init == "laplace") or (
        method == "laplace" and spec.hierarchical)
    if spec.strength.parametrization == "auto" and not staged:
        spec = _with_strengths(spec, "centered")  # no non-centred Laplace step to decide from
    # The Laplace step for NUTS starts runs non-centred: in centred coordinates the joint
    # density is unbounded as a scale -> 0 (the funnel's neck), so with little information about
    # a spread its "mode" would sit there and freeze the chains (seen in benchmarks/sbc.py). Its
    # mode and curvature then decide what to centre, and the start is mapped to those
    # coordinates (_centre_strengths, _to_sampling_coordinates).
    lap_spec = (_noncentred_strengths(spec) if staged
                and spec.strength.parametrization != "noncentered" else spec)
    arena = None
    if spec.hierarchical:
        arena, not_modelled = arena_for_spec(as_votes(data), spec)
        cells = arena.cells
        lap_model, lap_kwargs = _arena_model(arena, lap_spec, centring="none")
    else:
        cells, not_modelled = cells_for_spec(as_cells(data), spec)
        kwargs = lap_kwargs = pad_cells(cells)
        lap_model = functools.partial(pairwise_model, n_models=cells.n_models, spec=lap_spec)
    key_laplace, key_init, key_nuts = jax.random.split(jax.random.PRNGKey(seed), 3)
    attrs: dict[str, Any] = {"votes_not_modelled": json.dumps(not_modelled, sort_keys=True)}

    lap = centring = None
    if method == "laplace" or spec.sampler.init == "laplace":
        t0 = time.perf_counter()
        options = (dict(precondition=True, **_scales_at_prior_median(spec, lap_kwargs))
                   if arena is not None  # see _scales_at_prior_median
                   else dict(hessian="full" if method == "laplace" else "auto"))
        lap = laplace_approximation(lap_model, lap_kwargs, key_laplace, **options)
        attrs.update(laplace_s=round(time.perf_counter() - t0, 4),
                     laplace_converged=int(lap.converged), laplace_grad_norm=lap.grad_norm)
        mode = lap.unravel(jnp.asarray(lap.mode))
        curvature = lap.unravel(jnp.asarray(lap.curvature))
        centring = (mode, curvature)
        if staged and spec.strength.parametrization == "auto":
            centred = centre_group(np.asarray(mode["theta_z"]), float(np.exp(mode["sigma"])),
                                   np.asarray(curvature["theta_z"]), cells.n_models)
            spec = _with_strengths(spec, "centered" if centred else "noncentered")
        if warn and method == "laplace" and arena is None and not lap.converged:
            _warn_not_converged(lap)
    if arena is not None:  # centre where the data say so
        model, kwargs = _arena_model(arena, spec, centring=centring)
    else:
        model = functools.partial(pairwise_model, n_models=cells.n_models, spec=spec)

    start = mode = refined = None
    # unconstrained parameters (the same count in every parametrisation the steps use)
    n_parameters = None if lap is None else int(lap.mode.size)
    metric = "diagonal"
    if method == "nuts":
        metric = resolve_metric(spec, hierarchical=arena is not None,
                                n_parameters=n_parameters)
    if lap is not None and arena is not None:
        t0 = time.perf_counter()
        refined = _refine_in_sampling_coordinates(
            lap, model, kwargs, spec, key_laplace,
            hessian="blocked" if method == "laplace" or metric == "laplace" else "auto",
            progress=progress)
        attrs.update(refine_s=round(time.perf_counter() - t0, 4),
                     refine_converged=int(refined.converged), refine_grad_norm=refined.grad_norm)
        if warn and method == "laplace" and not refined.converged:
            _warn_not_converged(refined)

    if method == "laplace":
        final = lap if refined is None else refined
        flat = sample_unconstrained(final, key_nuts, laplace_draws)
        samples = {k: v[None] for k, v in constrained_draws(final, flat).items()}
        return Posterior(build_tree(samples, cells=cells, spec=spec, method="laplace",
                                    seed=seed, attrs=attrs, arena=arena))

    if refined is not None and metric == "diagonal":  # (the Laplace metric's: _whitened)
        start = _laplace_start(refined, key_init, spec.sampler.chains)
        mode = refined.unravel(jnp.asarray(refined.mode))  # split HMC's first centre
    elif refined is None and lap is not None:
        start = _laplace_start(lap, key_init, spec.sampler.chains)
        if "theta_z" in start[0] and spec.strength.parametrization != "noncentered":
            start = _centre_strengths(*start)
    # the Laplace steps above ran in float64; NUTS evaluates the likelihood as the spec says
    model = functools.partial(model, precision=spec.sampler.precision)
    kwargs = sampling_data(kwargs, spec.sampler.precision)
    spec = spec.with_sampler(  # "auto" resolved
        kernel=resolve_kernel(spec.sampler.kernel, n_parameters),
        max_tree_depth=resolve_max_tree_depth(spec.sampler.max_tree_depth, n_parameters),
        warmup=resolve_warmup(spec.sampler.warmup, metric))
    attrs["kernel"] = spec.sampler.kernel
    if spec.sampler.kernel == "nuts":
        attrs["max_tree_depth"] = spec.sampler.max_tree_depth
    else:
        attrs["trajectory_length"] = spec.sampler.trajectory_length
        attrs["trajectory_jitter"] = spec.sampler.trajectory_jitter
        attrs["warmup_trajectory_scale"] = spec.sampler.warmup_trajectory_scale
    attrs["metric"] = metric
    white = None
    if metric == "laplace":
        white = whitening(refined.precision_blocks, refined.mode,
                          dtype=np.float32 if spec.sampler.precision == "mixed" else np.float64)
        attrs["metric_coupling_rank"] = int(white.coupling_right.shape[0])
        model, kwargs, start, mode = _whitened(model, kwargs, white, refined.unravel, key_init,
                                               spec.sampler.chains)
    samples, stats, attrs["nuts_s"] = _run_mcmc(model, kwargs, spec, start, key_nuts, progress,
                                                centre=mode, adapt_mass=white is None)
    if white is not None:  # back to the model's own sites
        flat = unwhitened_draws(white, samples.pop(SITE))
        shape = flat.shape[:2]
        samples = {k: np.reshape(v, shape + v.shape[1:]) for k, v in
                   constrained_draws(refined, np.reshape(flat, (-1, flat.shape[-1]))).items()}
    tree = build_tree(samples, cells=cells, spec=spec, method="nuts", seed=seed,
                      sample_stats=stats, attrs=attrs, arena=arena)
    diag = compute_diagnostics(tree)
    tree.attrs["diagnostics"] = json.dumps(diag.to_dict(), sort_keys=True, default=float)
    if warn:
        warn_if_unhealthy(diag)
    return Posterior(tree, diagnostics=diag)


def _whitened(model: Callable[..., None], kwargs: dict, white: Whitening,
              unravel: Callable[[jax.Array], dict], key: jax.Array, chains: int
              ) -> tuple[Callable[..., None], dict, Start, dict]:
    """The whitened model (:func:`~bayesarena.whitening.whitened_model`) with its arguments,
    chain starts ``x = INIT_INFLATE eps`` (overdispersed draws of the whitened Laplace
    approximation, the standard normal), unit mass-matrix variances, and split HMC's first
    centre, 0 (the mode). ``key`` draws the starts; of the model itself only the potential
    is kept."""
    info = model_functions(model, kwargs, key, init_strategy=None)
    n = int(white.mode.shape[0])
    x0 = INIT_INFLATE * jax.random.normal(key, (chains, n))
    start = ({SITE: x0}, {SITE: jnp.ones(n)})
    return (functools.partial(whitened_model, info.potential_fn, unravel),
            dict(kwargs, whitening=white), start, {SITE: jnp.zeros(n)})


def _warn_not_converged(lap: LaplaceResult) -> None:
    warnings.warn(f"Laplace optimisation did not converge (max |gradient| {lap.grad_norm:.2g})",
                  SamplingWarning, stacklevel=3)


def _arena_model(arena: ArenaCells, spec: ModelSpec, centring: str | tuple | None = None
                 ) -> tuple[Callable[..., None], dict]:
    """The arena model and its arguments. ``centring``: ``None`` (the default rules of
    :mod:`bayesarena.arena_model`), ``"none"`` (everything non-centred: the Laplace step), or
    the Laplace ``(mode, curvature)`` per unconstrained site
    (:func:`~bayesarena.arena_model.centre_group` a category at a time,
    :func:`~bayesarena.arena_model.centre_elements` a heavy voter at a time; a spec's explicit
    centred/noncentered choice for categories always wins)."""
    category = voter = None
    via_category_mean = False
    if centring == "none":
        category = np.zeros(max(len(arena.tags), 1), dtype=bool)
        voter = np.zeros(len(arena.voters), dtype=bool)
    elif isinstance(centring, tuple):
        mode, curvature = ({k: np.asarray(v) for k, v in d.items()} for d in centring)
        if "category_deviation_z" in mode and spec.categories.parametrization == "auto":
            tau = np.exp(mode["category_scale"])  # a category at a time
            category = np.array([
                centre_group(mode["category_deviation_z"][c], tau[c],
                             curvature["category_deviation_z"][c], arena.cells.n_models)
                for c in range(len(tau))])
        if "voter_discrimination_z" in mode:  # each heavy voter by its own information
            voter = centre_elements(
                mode["voter_discrimination_z"], np.exp(mode["voter_discrimination_scale"]),
                curvature["voter_discrimination_z"], len(arena.voters))
        # theta through its category mean psi (arena_model.theta_via_category_mean) only where
        # the votes pin theta itself: where every vote carries one tag, theta = psi - mean delta
        # rests on its prior and its centred prior let the chains fall into the sigma -> 0
        # spike (benchmarks/pooling.py)
        via_category_mean = bool(
            spec.categories.enabled and spec.strength.parametrization != "noncentered"
            and "theta_z" in mode and theta_pinned(arena, group_spread(
                mode["theta_z"], np.exp(mode["sigma"]), curvature["theta_z"]).spread))
    if category is None:
        category = default_category_centring(arena, spec)
    model = functools.partial(
        arena_model, n_models=arena.cells.n_models, spec=spec,
        theta_from_category_mean=via_category_mean,
        split_category_means=SPLIT_CATEGORY_MEANS and splits_category_means(via_category_mean,
                                                                            category))
    return model, model_arguments(arena, spec, category_centred=category, voter_centred=voter)


Start = tuple[dict[str, jax.Array], dict[str, jax.Array]]


def _laplace_start(lap: LaplaceResult, key: jax.Array, chains: int) -> Start:
    """Chain starts (overdispersed Laplace draws, leading axis = chain) and the Laplace
    marginal variances, both as dicts of unconstrained sites."""
    flat = sample_unconstrained(lap, key, chains, inflate=INIT_INFLATE)
    init = jax.vmap(lap.unravel)(jnp.asarray(flat))
    return init, lap.unravel(jnp.asarray(lap.marginal_variances))


def _noncentred_strengths(spec: ModelSpec) -> ModelSpec:
    return _with_strengths(spec, "noncentered")


def _with_strengths(spec: ModelSpec, parametrization: str) -> ModelSpec:
    return replace(spec, strength=replace(spec.strength, parametrization=parametrization))


def _centre_strengths(init: dict, variances: dict) -> Start:
    """Map a non-centred start (``theta_z``) to centred ``theta = sigma z``; the zero-sum
    transform is linear, so the unconstrained coordinates scale by ``sigma`` too."""
    init, variances = dict(init), dict(variances)
    sigma = jnp.exp(init["sigma"])[..., None]  # positive prior: unconstrained = log
    z, var_z = init.pop("theta_z"), variances.pop("theta_z")
    init["theta"] = sigma * z
    variances["theta"] = jnp.mean(sigma, axis=0) ** 2 * var_z
    return init, variances


def _to_sampling_coordinates(point: dict[str, np.ndarray], kwargs: dict,
                             centred_strengths: bool, via_category_mean: bool = False,
                             split_category_means: bool = False) -> dict[str, np.ndarray]:
    """Map a point of the all-non-centred arena model (sites ``theta_z``,
    ``category_deviation_z`` for every category, ``voter_discrimination_z`` for every heavy
    voter) to the sampled parametrisation: ``x = loc + scale z`` for the centred elements,
    ``z`` for the others; ``via_category_mean``: ``theta`` as its category mean ``psi = theta
    + mean_c delta[:, c]`` (site ``theta_category_mean``); ``split_category_means``: the
    (all centred) deviations as per-model means and contrasts
    (:func:`~bayesarena.arena_model.split_model_means_deviations`). Scale sites are positive,
    so their unconstrained value is the log; the zero-sum transform is linear, so the
    unconstrained coordinates of ``tau_c z`` are ``tau_c`` times those of ``z`` and means
    commute with it."""
    out = dict(point)
    if "theta_z" in out and centred_strengths:
        out["theta"] = np.exp(out["sigma"]) * out.pop("theta_z")
        if via_category_mean:
            delta = np.exp(out["category_scale"])[:, None] * out["category_deviation_z"]
            out["theta_category_mean"] = out.pop("theta") + delta.mean(axis=0)
    # (site, model-argument prefix, loc): a category's deviations are one element (a row)
    for name, key, loc in (("category_deviation", "category", 0.0),
                           ("voter_discrimination", "voter", 1.0)):
        if f"{name}_z" not in out:
            continue
        z = out.pop(f"{name}_z")
        scale = np.exp(out[dict(GROUPS)[f"{name}_z"]])
        scale = np.broadcast_to(np.reshape(scale, np.shape(scale) + (1,) * (z.ndim - 1)),
                                z.shape)
        centred, noncentred = (np.asarray(kwargs[f"{key}_{k}"]) for k in ("centred", "noncentred"))
        if centred.size:
            out[f"{name}_centred"] = loc + scale[centred] * z[centred]
        if noncentred.size:
            out[f"{name}_z"] = z[noncentred]
    if split_category_means:
        out.update(_split_model_means(out.pop("category_deviation_centred")))
    return out


def _split_model_means(centred: np.ndarray) -> dict[str, np.ndarray]:
    """Unconstrained ``(C, M - 1)`` deviations (every category centred) to the unconstrained
    sites of :func:`~bayesarena.arena_model.split_model_means_deviations`."""
    per_model, both = ZeroSumTransform(1), ZeroSumTransform(2)
    delta = per_model(jnp.asarray(centred))  # (C, M), zero-sum over models
    mean = delta.mean(axis=0)
    return {"category_deviation_model_mean": np.asarray(per_model.inv(mean)),
            "category_deviation_contrast": np.asarray(both.inv(delta - mean))}


#: The hierarchical groups of the Laplace step's all-non-centred arena model: the site of the
#: standardised elements ``z`` and the site of their scale (one per row of ``z`` when the scale
#: is a vector: a category at a time).
GROUPS = (("theta_z", "sigma"), ("category_deviation_z", "category_scale"),
          ("voter_discrimination_z", "voter_discrimination_scale"))
#: The heavy voters' discriminations: each enters only its own voter's rows, so no two
#: interact (the blocked Hessian's local sites).
VOTER_SITES = ("voter_discrimination_centred", "voter_discrimination_z")


def _scales_at_prior_median(spec: ModelSpec, kwargs: dict) -> dict[str, Any]:
    """``init_values`` and ``fixed`` for the first Laplace step of a hierarchical fit: every
    group scale held at its prior median. The step only has to locate the elements and their
    curvatures, from which :func:`~bayesarena.arena_model.group_spread` estimates each scale
    whatever scale they were taken at; left free, the scales drift towards the edge of their
    priors (the joint mode in non-centred coordinates), which took L-BFGS 942 iterations at 150
    models x 1M votes."""
    values = {"sigma": prior_median(spec.priors["sigma"])}
    if spec.categories.enabled:
        values["category_scale"] = np.full(kwargs["tagsets"].shape[1],
                                           prior_median(spec.priors["category_scale"]))
    if spec.voters.enabled:
        values["voter_discrimination_scale"] = prior_median(
            spec.priors["voter_discrimination_scale"])
    return {"init_values": values, "fixed": tuple(values)}


def _marginal_scales(mode: dict[str, np.ndarray], curvature: dict[str, np.ndarray]
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Move each group's scale to its marginal maximum-likelihood estimate
    (:func:`~bayesarena.arena_model.group_spread`; floored at half the elements' typical noise
    sd when the data show no spread), rescaling ``z`` so that every element ``x = scale z``
    stays where the data put it. Neither joint mode estimates a scale: the non-centred one
    overstates every scale the data inform (at 150 models x 1M votes: sigma 2.8 for a true
    0.58, category scales 1.3 for 0.23, the voters' 5.3 for 0.3; chains started there spent
    their first hundred warmup iterations at up to 1,023 leapfrog steps,
    ``results/arena_warmup.json``), the centred one does not exist (the density is unbounded
    as a scale and its elements go to 0 together).

    Returns the moved point and, per scale site, the information about each ``log scale``
    there (:func:`~bayesarena.arena_model.log_spread_information`)."""
    out, information = dict(mode), {}
    for z_site, scale_site in GROUPS:
        if z_site not in mode:
            continue
        z = np.atleast_2d(mode[z_site])
        old = np.atleast_1d(np.exp(mode[scale_site]))
        new, info = np.empty_like(old), np.empty_like(old)
        for row in range(len(old)):
            g = group_spread(z[row], old[row], np.atleast_2d(curvature[z_site])[row])
            new[row] = max(g.spread, 0.5 * g.noise)
            info[row] = log_spread_information(g.precision, new[row])
        out[z_site] = np.reshape(z * (old / new)[:, None], np.shape(mode[z_site]))
        out[scale_site] = np.reshape(np.log(new), np.shape(mode[scale_site]))
        information[scale_site] = np.reshape(info, np.shape(mode[scale_site]))
    return out, information


def _refine_in_sampling_coordinates(
    lap: LaplaceResult, model: functools.partial, kwargs: dict, spec: ModelSpec,
    key: jax.Array, hessian: str = "auto", progress: bool = False,
) -> LaplaceResult:
    """The Laplace approximation of the arena model as it will be sampled (partially
    centred), to start the chains and seed the mass matrix, or (``hessian="blocked"``, the
    exact Hessian) as ``fit(method="laplace")``'s posterior.

    The first Laplace step runs with every group non-centred (in centred coordinates the
    density is unbounded where a scale meets 0) and decides the centring. Its mode is mapped
    to the sampled coordinates with each scale at its marginal maximum-likelihood estimate
    (:func:`_marginal_scales`); the other parameters are then optimised with the scales held
    there (a conditional mode, as empirical Bayes takes them: Kass & Steffey 1989), and the
    curvature taken at that point, in the coordinates NUTS moves in. A held scale's curvature
    there is not its posterior precision (its elements are held too); its entry becomes the
    larger of that curvature and the information the marginal likelihood gives about it.
    """
    mode = {k: np.asarray(v) for k, v in lap.unravel(jnp.asarray(lap.mode)).items()}
    curvature = {k: np.asarray(v) for k, v in lap.unravel(jnp.asarray(lap.curvature)).items()}
    point, information = _marginal_scales(mode, curvature)
    start = _to_sampling_coordinates(point, kwargs,
                                     spec.strength.parametrization != "noncentered",
                                     model.keywords["theta_from_category_mean"],
                                     model.keywords["split_category_means"])
    scales = tuple(scale for _, scale in GROUPS if scale in start)
    structured = (arena_blocked_hessian(model, kwargs, key, VOTER_SITES)
                  if hessian == "blocked" else None)
    refined = laplace_approximation(model, kwargs, key, start=start, fixed=scales,
                                    precondition=True, hessian=hessian, local_sites=VOTER_SITES,
                                    blocked_hessian=structured, progress=progress)
    return with_site_precisions(refined, information)


#: Largest dense mass-matrix block: its covariance is estimated from the warmup windows.
DENSE_BLOCK_MAX = 256


def _global_block(variances: dict[str, jax.Array]) -> tuple[str, ...]:
    """Sites sharing a dense mass-matrix block under ``dense_globals``: every site of at most
    :data:`DENSE_BLOCK_MAX` elements that is not an internal per-element coordinate of a
    partially centred vector, in sorted order, stopping before the block would outgrow the
    limit (smallest sites first). These are the strengths and the hyper-parameters, whose
    posterior correlations (the common scale of the strengths against the voters' mean
    reliability, the scale hyper-parameters against each other) a diagonal mass matrix
    cannot express."""
    sizes = {k: int(np.size(v)) for k, v in variances.items()
             if not k.endswith(("_z", "_centred")) or k == "theta_z"}
    chosen, total = [], 0
    for name in sorted(sizes, key=lambda k: (sizes[k], k)):
        if total + sizes[name] > DENSE_BLOCK_MAX:
            break
        chosen.append(name)
        total += sizes[name]
    return tuple(sorted(chosen))


def resolve_chain_method(chain_method: str, chains: int) -> str:
    """``"auto"``: ``parallel`` when there is a device per chain (the 4 virtual CPU devices
    requested on import, or several GPUs); on a single accelerator ``vectorized`` (the chains
    share one GPU's cores; NumPyro's recommendation there); otherwise ``sequential``."""
    if chain_method != "auto":
        return chain_method
    if jax.local_device_count() >= chains:
        return "parallel"
    return "vectorized" if jax.default_backend() != "cpu" else "sequential"


def resolve_max_tree_depth(setting: int | str, n_parameters: int | None) -> int:
    """The tree depth NUTS runs with: ``setting`` itself, or for ``"auto"`` 4 (at most 15
    leapfrog steps) when the posterior has at least :data:`LARGE_POSTERIOR_FROM` parameters and
    10 otherwise (or when the count is unknown).

    Why the size: after warmup the step size that keeps the acceptance at the target shrinks
    as ``d^-1/4`` (Beskos et al. 2013), so on a posterior the mass matrix makes round, half an
    orbit takes about ``pi / eps`` steps: about 20 at 7,361 parameters (``eps`` 0.16 at 0.8),
    which tree doubling rounds up to 31, and under 15 below about 3,000. Capped at 15 there,
    a trajectory covers three quarters of a half-period, for half the gradients
    (``benchmarks/results/tree_depth.json``; the full-size NUTS fit 324 s, min bulk ESS 428,
    ``arena_scaling_nuts.json``). Below, the cap can only cut trajectories a posterior that is
    not round needs: on the 8-model arena of ``benchmarks/sbc.py`` (funnels, a few hundred
    parameters) it halved the median smallest ESS and 81 of 200 simulations ended with a split
    R-hat above 1.05, against 22 uncapped (``benchmarks/results/sbc_arena_depth4.md``).
    """
    if setting != "auto":
        return int(setting)
    return 4 if _large(n_parameters) else 10


def resolve_kernel(setting: str, n_parameters: int | None) -> str:
    """The MCMC kernel a fit runs: ``setting`` itself, or for ``"auto"`` ``"split_hmc"``
    (:mod:`bayesarena.split_hmc`) when the posterior has at least
    :data:`LARGE_POSTERIOR_FROM` parameters and ``"nuts"`` otherwise (or when the count is
    unknown).

    Why the size: on a large posterior the mass matrix makes nearly round, the leapfrog step
    is small (it shrinks as ``d^-1/4``, Beskos et al. 2013) and NUTS pays for trees of 15 or
    31 steps where a quarter period, about ``1.6 / eps`` steps, already gives nearly
    independent draws (:mod:`bayesarena.jittered_hmc`); a posterior of a million votes is
    also close to Gaussian, which split HMC integrates exactly, leaving its steps only the
    residual to follow. At 150 models x 10 categories x 1M votes (7,361 parameters; 4 chains,
    400 + 800 iterations, in one session on this machine) split HMC took 414 s at step size
    0.20 (8.5 steps per draw), jittered HMC 533 s at 0.14 (11.6 steps), both meeting every
    threshold but jittered HMC's R-hat (1.0068 against 1.0102;
    ``benchmarks/results/arena_scaling_split_mode.json``, ``arena_scaling_jittered_now.json``);
    NUTS with 500 draws had taken 324 s to jittered HMC's 316 s in an earlier session, when
    the machine ran about 1.5x faster, and missed R-hat (``arena_scaling_nuts.json``). Small
    posteriors keep NUTS: on the 8-model arena of ``benchmarks/sbc.py`` (funnels, a few hundred
    parameters) jittered HMC left 74 of 200 simulations with R-hat above 1.05 and split HMC
    142, against NUTS's 22 (``sbc_arena_jittered.md``, ``sbc_arena_split.md``): a fixed
    integration time cannot follow funnels the way NUTS's U-turn rule does, nor a Gaussian
    split fit them.
    """
    if setting != "auto":
        return setting
    return "split_hmc" if _large(n_parameters) else "nuts"


#: ``warmup = "auto"`` per metric (:func:`resolve_warmup`).
AUTO_WARMUP = {"diagonal": 400, "laplace": 150}


def resolve_warmup(setting: int | str, metric: str) -> int:
    """Warmup iterations: ``setting`` itself, or for ``"auto"`` :data:`AUTO_WARMUP` of the
    metric. With a diagonal mass matrix warmup estimates 7,361 variances and the split
    Gaussian's centre in Stan's windows (400 iterations at full size: 400 + 800 met every
    threshold, ``benchmarks/results/arena_scaling_split_mode.json``); under the Laplace metric
    the mass matrix is the Laplace precision and stays fixed, so warmup only brings the chains
    from their overdispersed starts and tunes the step size: 150 iterations gave the same
    step size as 400 (0.396) and met every threshold (``arena_scaling_metric_laplace_w150.json``
    against ``_metric_laplace_fixed.json``)."""
    if setting != "auto":
        return int(setting)
    return AUTO_WARMUP[metric]


def resolve_metric(spec: ModelSpec, hierarchical: bool, n_parameters: int | None) -> str:
    """The mass matrix MCMC runs with: ``spec.sampler.metric`` itself, or for ``"auto"``
    ``"laplace"`` (:mod:`bayesarena.whitening`) when a hierarchical spec is sampled with split
    HMC from its Laplace approximation, else ``"diagonal"``. ``"laplace"`` needs both: the
    whitening comes from the blocked Hessian of a hierarchical arena."""
    s = spec.sampler
    kernel = resolve_kernel(s.kernel, n_parameters)
    usable = hierarchical and s.init == "laplace" and kernel == "split_hmc"
    if s.metric == "auto":
        return "laplace" if usable else "diagonal"
    if s.metric == "laplace" and not usable:
        raise BayesArenaError(
            "metric = 'laplace' whitens with the blocked Laplace approximation of a "
            "hierarchical spec sampled by split HMC from it (kernel 'split_hmc' and init "
            f"'laplace'); this fit has kernel {kernel!r}, init {s.init!r} and "
            f"{'a hierarchical' if hierarchical else 'a plain'} spec")
    return s.metric


def _large(n_parameters: int | None) -> bool:
    """Whether a posterior of ``n_parameters`` (``None``: unknown) counts as large."""
    return n_parameters is not None and n_parameters >= LARGE_POSTERIOR_FROM


def _run_mcmc(
    model: Callable[..., None], kwargs: dict[str, jax.Array], spec: ModelSpec,
    start: Start | None, key_nuts: jax.Array, progress: bool, centre: dict | None = None,
    adapt_mass: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """Run the spec's kernel (NUTS, jittered or split HMC, ``"auto"`` already resolved);
    returns ``(chain, draw, ...)`` samples, sample stats and the seconds taken. ``start``:
    chain starts and mass-matrix variances (``init = "laplace"``); ``centre``: split HMC's
    first Gaussian centre (the Laplace mode; default the mean of the chains' starts);
    ``adapt_mass``: false keeps the mass matrix (and split HMC's centre) as given, the
    whitened model's (adapting the unit variances there only added noise: at full size the
    step size came out at 0.225 adapted against 0.396 fixed,
    ``benchmarks/results/arena_scaling_metric_laplace.json`` and ``_fixed.json``)."""
    s = spec.sampler
    init_params = inverse_mass = None
    dense: bool | list[tuple[str, ...]] = s.dense_mass
    if start is not None:
        init_params, variances = start
        if s.chains == 1:
            init_params = jax.tree.map(lambda x: x[0], init_params)
        if s.dense_globals:
            block = _global_block(variances)
            rest = tuple(sorted(set(variances) - set(block)))
            dense = [block]
            inverse_mass = {block: ravel_pytree([variances[k] for k in block])[0]}
            if rest:
                inverse_mass[rest] = ravel_pytree([variances[k] for k in rest])[0]
        elif not s.dense_mass:
            inverse_mass = ravel_pytree(variances)[0]
    chain_method = resolve_chain_method(s.chain_method, s.chains)
    options = dict(target_accept_prob=s.target_accept, dense_mass=dense,
                   adapt_mass_matrix=adapt_mass,
                   inverse_mass_matrix=inverse_mass,
                   init_strategy=init_to_median(num_samples=15))  # used without init_params
    if s.kernel == "jittered_hmc":
        kernel = JitteredHMC(model, trajectory_length=s.trajectory_length,
                             jitter=s.trajectory_jitter,
                             warmup_scale=s.warmup_trajectory_scale, **options)
    elif s.kernel == "split_hmc":
        # the Gaussian's first centre (each slow window's mean replaces it): the Laplace mode,
        # else the mean of the chains' starts (overdispersed draws around it)
        if centre is None and init_params is not None and s.chains > 1:
            centre = jax.tree.map(lambda x: jnp.mean(jnp.asarray(x), axis=0), init_params)
        kernel = SplitHMC(model, trajectory_length=s.trajectory_length,
                          jitter=s.trajectory_jitter, warmup_scale=s.warmup_trajectory_scale,
                          centre=centre, **options)
    else:
        kernel = NUTS(model, max_tree_depth=s.max_tree_depth, **options)

    fields = ("diverging", "num_steps", "accept_prob", "energy", "potential_energy",
              "adapt_state.step_size")
    mcmc = MCMC(kernel, num_warmup=s.warmup, num_samples=s.draws, num_chains=s.chains,
                chain_method=chain_method, progress_bar=progress, jit_model_args=True)
    t0 = time.perf_counter()
    if s.pool_adaptation and s.chains > 1 and s.warmup > 0:
        mcmc.warmup(key_nuts, init_params=init_params, **kwargs)
        mcmc.post_warmup_state = pool_adaptation(mcmc.post_warmup_state)
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=fields, **kwargs)
    else:
        mcmc.run(key_nuts, init_params=init_params, extra_fields=fields, **kwargs)
    # np.asarray blocks until JAX's asynchronous dispatch has finished: time after it
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    elapsed = time.perf_counter() - t0
    stats = {
        "diverging": extra["diverging"],
        "n_steps": extra["num_steps"],
        "acceptance_rate": extra["accept_prob"],
        "energy": extra["energy"],
        "lp": -extra["potential_energy"],
        "step_size": extra["adapt_state.step_size"],
    }
    return samples, stats, round(elapsed, 4)
