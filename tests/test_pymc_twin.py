"""The PyMC twin (:mod:`bayesarena.pymc_model`) against the NumPyro models.

The twin is an independent implementation of the same mathematics (PyTensor, written from the
formulas; only data preparation and spec parsing are shared), so agreement here is evidence
that neither likelihood has a bug. Two kinds of check:

* **Log densities** at the same parameter values (mapped to each model's parametrisation):
  the likelihood term (PyMC ``Potential("votes")`` vs NumPyro ``factor("votes")``) and the
  whole joint density without Jacobians must change by the same amount between points, to
  1e-8. This is the sharpest guard against a likelihood bug; it needs no sampling.
* **Posteriors**: ``bayesarena.fit`` and :func:`~bayesarena.pymc_model.sample_pymc` on the
  same small simulated data. For every element of every parameter, the posterior means must
  agree within Monte Carlo error, ``|mean_a - mean_b| <= z sqrt(mcse_a^2 + mcse_b^2)``, and
  the posterior sds within ``z sqrt(mcse_sd_a^2 + mcse_sd_b^2)`` where ``mcse_sd`` is ArviZ's
  MCSE of the sd (``sd / sqrt(2 ESS)`` for a normal posterior, with the ESS of the squared
  deviations, widened by the kurtosis otherwise). ``z`` is Bonferroni-corrected: with ``n``
  comparisons in a test (means and sds), ``z = Phi^{-1}(1 - FAMILY_ALPHA / (2 n))`` with
  ``FAMILY_ALPHA = 0.01 / 7``, so a correct implementation fails one of the seven posterior
  tests with probability at most 1% per run of this file, as far as the MCSE estimates are
  accurate (z is about 3.9 for the 18-24 comparisons of a pairwise spec, 4.3 for the ~110 of
  the arena spec; a real discrepancy shows as tens of MCSEs).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

pytest.importorskip("pymc")
pytest.importorskip("arviz_stats")

import pytensor
from arviz_stats import mcse, rhat
from numpyro.infer.util import log_density

from bayesarena import aggregate, fit, load_spec, read_votes, simulate_arena
from bayesarena.arena_model import arena_model, model_arguments
from bayesarena.fit import (
    arena_for_spec,
    as_votes,
    cells_for_spec,
    pad_cells,
)
from bayesarena.numpyro_model import pairwise_model
from bayesarena.pymc_model import build_pymc_model, sample_pymc
from bayesarena.spec import parse_spec

PAIRWISE_SPECS = ("bt", "bt-davidson", "bt-ties-half", "rao-kupper", "thurstone")
#: Parameters compared (as stored by both; parametrisation-internal sites are not).
PARAMETERS = ("theta", "sigma", "log_nu", "tie_threshold", "bothbad_intercept", "bothbad_slope",
              "category_scale", "category_deviation", "position", "style_coef",
              "voter_discrimination_scale", "voter_discrimination")
#: Probability that a posterior test of a correct implementation fails (Bonferroni over its
#: comparisons): 1% for the file's seven posterior tests together.
FAMILY_ALPHA = 0.01 / 7
CATEGORIES = ("coding", "math", "writing")
N_MODELS = 8


# --- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair_cells():
    df, _ = simulate_arena(N_MODELS, 2000, seed=21)
    return aggregate(read_votes(df))


def _simulator():
    """``bayesarena.simulate.simulate_hierarchical_arena`` when it exists, else ``None``."""
    try:
        from bayesarena.simulate import simulate_hierarchical_arena
    except ImportError:
        return None
    return simulate_hierarchical_arena


def _hierarchical_votes(n_votes: int, *, style: bool, seed: int) -> pd.DataFrame:
    """Votes with category tags (some votes carry two), judge ids (a few heavy voters, many
    light ones) and, with ``style``, ``conv_metadata``."""
    simulate_hierarchical_arena = _simulator()
    if simulate_hierarchical_arena is not None:
        df, _ = simulate_hierarchical_arena(
            N_MODELS, n_votes, categories=CATEGORIES, n_voters=n_votes // 30, style=style,
            multi_tag=True, seed=seed, category_sd=80.0)
        return df
    if style:
        pytest.skip("style data need bayesarena.simulate.simulate_hierarchical_arena")
    # fallback: tags and judges drawn independently of the outcomes
    df, _ = simulate_arena(N_MODELS, n_votes, seed=seed)
    rng = np.random.default_rng(seed)
    primary = rng.integers(0, len(CATEGORIES), n_votes)
    second = (primary + rng.integers(1, len(CATEGORIES), n_votes)) % len(CATEGORIES)
    two = rng.random(n_votes) < 0.2
    df["category"] = [[CATEGORIES[p], CATEGORIES[s]] if t else [CATEGORIES[p]]
                      for p, s, t in zip(primary, second, two, strict=True)]
    weights = np.exp(2.0 * rng.standard_normal(n_votes // 30))
    df["judge"] = [f"judge-{v}" for v in rng.choice(len(weights), n_votes,
                                                     p=weights / weights.sum())]
    return df


@pytest.fixture(scope="module")
def hier_votes():
    df = _hierarchical_votes(3000, style=False, seed=5)
    tagged = df["category"].map(lambda c: isinstance(c, list | np.ndarray) and len(c) >= 2)
    assert tagged.any(), "the hierarchical test data should hold multi-tag votes"
    return df


@pytest.fixture(scope="module")
def style_votes():
    try:
        import bayesarena.style  # noqa: F401
    except Exception as exc:  # the style module is not ready
        pytest.skip(f"style control unavailable (bayesarena.style: {exc!r})")
    df = _hierarchical_votes(2500, style=True, seed=6)
    try:  # check the style pipeline works on these votes before sampling
        arena_for_spec(as_votes(df), STYLE_SPEC)
    except Exception as exc:
        pytest.skip(f"style control not working yet: {exc!r}")
    return df


def _spec(name: str, **sections) -> object:
    return parse_spec({"name": name, **sections})


#: categories + position + voters: the arena model without style
ARENA_SPEC = _spec("twin-arena", categories={"enabled": True}, voters={"enabled": True},
                   position={"enabled": True})
#: style control (with position)
STYLE_SPEC = _spec("twin-style", style={"enabled": True}, position={"enabled": True})

#: log-density variants (cheap: no sampling), covering the component/option combinations
LOGP_HIERARCHICAL = {
    "categories-voters-position": ARENA_SPEC,
    "all-centred-column-position-as-tie": _spec(
        "v2", categories={"enabled": True, "parametrization": "centered"},
        voters={"enabled": True, "min_votes": 10}, style={"enabled": True},
        position={"enabled": True, "source": "column"},
        likelihood={"both_bad": "as_tie"}),
    "noncentred-categories-and-strengths": _spec(
        "v3", categories={"enabled": True, "parametrization": "noncentered"},
        strength={"parametrization": "noncentered"}),
    "style-position-ties-dropped": _spec(
        "v4", style={"enabled": True}, position={"enabled": True},
        likelihood={"ties": "drop", "both_bad": "drop"}),
    "voters-both-bad-dropped": _spec("v5", voters={"enabled": True},
                                     likelihood={"both_bad": "drop"}),
}


# --- log densities -------------------------------------------------------------------------


def _pymc_point_fn(model):
    """A function: constrained values by RV name -> PyMC's input point (the transformed value
    variables), compiled once per model."""
    inputs, outputs, names = [], [], []
    for rv in model.free_RVs:
        x = rv.type()
        transform = model.rvs_to_transforms.get(rv)
        inputs.append(x)
        outputs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
        names.append((rv.name, model.rvs_to_values[rv].name))
    fn = pytensor.function(inputs, outputs, mode="FAST_COMPILE", on_unused_input="ignore")

    def point(constrained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = fn(*[np.asarray(constrained[rv], dtype=float) for rv, _ in names])
        return {value: np.asarray(v) for (_, value), v in zip(names, values, strict=True)}

    return point


def _random_point(rng: np.random.Generator, n_models: int, n_tags: int, n_voters: int,
                  n_style: int) -> dict[str, np.ndarray]:
    """Constrained values of every parameter any spec uses (not prior draws: just spread)."""
    theta = rng.normal(0.0, 0.6, n_models)
    sigma = 0.2 + abs(rng.normal())
    tau = 0.05 + np.abs(rng.normal(0.0, 0.5, n_tags))
    delta = rng.normal(0.0, 1.0, (n_models, n_tags)) * tau
    return {
        "sigma": sigma, "theta": theta - theta.mean(), "log_nu": rng.normal(-0.5, 0.5),
        "tie_threshold": 0.1 + abs(rng.normal(0.0, 0.5)), "bothbad_intercept": rng.normal(),
        "bothbad_slope": rng.normal(), "category_scale": tau,
        "category_deviation": delta - delta.mean(axis=0), "position": rng.normal(0.0, 0.3),
        "style_coef": rng.normal(0.0, 0.3, n_style),
        "voter_discrimination_scale": 0.1 + abs(rng.normal(0.0, 0.5)),
        "voter_discrimination": rng.normal(1.0, 0.5, n_voters),
    }


def _numpyro_log_density(model, kwargs):
    """A jitted ``params -> (log joint without Jacobians, the "votes" factor)``."""

    def at(params):
        joint, trace = log_density(model, (), kwargs, params)
        site = trace["votes"]
        return joint, site["fn"].log_prob(site["value"]).sum()

    fn = jax.jit(at)

    def call(params):
        joint, votes = fn({k: jnp.asarray(v, dtype=float) for k, v in params.items()})
        return float(joint), float(votes)

    return call


def _check_log_densities(numpyro_at, pymc_model, points, correction=None) -> None:
    """NumPyro's and PyMC's likelihood terms and joint densities (no Jacobians) change by the
    same amount between points. ``numpyro_at(point)`` returns ``(log joint, votes factor)``;
    ``correction(point)`` is the known difference of the joint densities' parametrisations."""
    logp = pymc_model.compile_logp(jacobian=False, mode="JAX")  # compiles fastest
    votes = [f for f in pymc_model.potentials if f.name == "votes"]
    logp_votes = pymc_model.compile_logp(vars=votes, jacobian=False, mode="JAX")
    to_point = _pymc_point_fn(pymc_model)
    rows = []
    for p in points:
        joint, votes = numpyro_at(p)
        q = to_point(_pymc_values(pymc_model, p))
        rows.append((joint - (correction(p) if correction else 0.0), votes,
                     float(logp(q)), float(logp_votes(q))))
    r = np.array(rows)
    d = r[1:] - r[:1]  # changes from the first point
    assert np.all(np.abs(d[:, 1]) > 1.0), "the points should differ in likelihood"
    np.testing.assert_allclose(d[:, 1], d[:, 3], rtol=0, atol=1e-8,
                               err_msg="likelihood terms (NumPyro factor vs PyMC Potential)")
    np.testing.assert_allclose(d[:, 0], d[:, 2], rtol=0, atol=1e-8,
                               err_msg="joint log densities (priors included)")


def _pymc_values(model, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``p`` plus the PyMC model's parametrisation-internal sites."""
    out = dict(p, theta_z=p["theta"] / p["sigma"])
    coords = model.coords
    if "category_deviation" in model.named_vars:
        raw = p["category_deviation"].T  # (C, M)
        centred = _in_coord(model, "category", "category_centred")
        out["category_raw"] = raw[centred]
        out["category_z"] = (raw / p["category_scale"][:, None])[~centred]
        out["theta_category_mean"] = p["theta"] + raw.mean(axis=0)
    if "voter" in coords:
        centred = _in_coord(model, "voter", "voter_centred")
        kappa = p["voter_discrimination"]
        out["voter_discrimination_centred"] = kappa[centred]
        out["voter_discrimination_z"] = ((kappa - 1.0)
                                         / p["voter_discrimination_scale"])[~centred]
    return out


def _in_coord(model, full: str, subset: str) -> np.ndarray:
    """Which entries of coordinate ``full`` are in coordinate ``subset``."""
    chosen = set(model.coords.get(subset, ()))
    return np.array([c in chosen for c in model.coords[full]])


@pytest.mark.parametrize("name", PAIRWISE_SPECS)
def test_log_density_matches_numpyro_pairwise(name, pair_cells):
    spec = load_spec(name)
    cells, _ = cells_for_spec(pair_cells, spec)
    model = functools.partial(pairwise_model, n_models=cells.n_models, spec=spec)
    kwargs = pad_cells(cells)
    pymc_model = build_pymc_model(pair_cells, spec)
    free = {rv.name for rv in pymc_model.free_RVs}

    density = _numpyro_log_density(model, kwargs)

    def numpyro_at(p):
        return density({k: v for k, v in p.items() if k in free})

    rng = np.random.default_rng(1)
    points = [_random_point(rng, cells.n_models, 0, 0, 0) for _ in range(3)]
    _check_log_densities(numpyro_at, pymc_model, points)


@pytest.fixture(scope="module")
def logp_votes():
    """Votes with every optional column (tags, judges, style, a ``position`` column)."""
    df = _hierarchical_votes(1500, style=_simulator() is not None, seed=8)
    df["position"] = np.where(np.random.default_rng(8).random(len(df)) < 0.5, "a", "b")
    return df


@pytest.mark.parametrize("theta_from_category_mean", [False, True])
@pytest.mark.parametrize("variant", list(LOGP_HIERARCHICAL))
def test_log_density_matches_numpyro_hierarchical(variant, theta_from_category_mean, logp_votes):
    spec = LOGP_HIERARCHICAL[variant]
    if theta_from_category_mean and not spec.categories.enabled:
        pytest.skip("theta is sampled through its category mean only with categories")
    if spec.style.enabled and "conv_metadata" not in logp_votes:
        pytest.skip("no style data")
    arena, _ = arena_for_spec(as_votes(logp_votes), spec)
    m, n_tags, n_voters = arena.cells.n_models, len(arena.tags), len(arena.voters)
    kwargs = model_arguments(arena, spec)
    model = functools.partial(arena_model, n_models=m, spec=spec,
                              theta_from_category_mean=theta_from_category_mean)
    pymc_model = build_pymc_model(arena, spec, theta_from_category_mean=theta_from_category_mean)
    index = {k: np.asarray(v) for k, v in kwargs.items() if k.endswith("centred")}

    def numpyro_values(p):
        out = {k: p[k] for k in ("sigma", "log_nu", "bothbad_intercept", "bothbad_slope",
                                 "category_scale", "position", "style_coef",
                                 "voter_discrimination_scale")}
        if spec.categories.enabled and theta_from_category_mean:
            out["theta_category_mean"] = p["theta"] + p["category_deviation"].mean(axis=1)
        elif spec.strength.parametrization != "noncentered":
            out["theta"] = p["theta"]
        else:
            out["theta_z"] = p["theta"] / p["sigma"]
        if spec.categories.enabled:  # per category: delta_c, or z_c = delta_c / tau_c
            delta = p["category_deviation"].T
            out["category_deviation_centred"] = delta[index["category_centred"]]
            nc = index["category_noncentred"]
            out["category_deviation_z"] = delta[nc] / p["category_scale"][nc, None]
        if spec.voters.enabled:
            kappa, nc = p["voter_discrimination"], index["voter_noncentred"]
            out["voter_discrimination_centred"] = kappa[index["voter_centred"]]
            out["voter_discrimination_z"] = (kappa[nc] - 1.0) / p["voter_discrimination_scale"]
        return out

    density = _numpyro_log_density(model, kwargs)

    def numpyro_at(p):
        return density(numpyro_values(p))

    def correction(p):
        # Both joints are densities of each model's own sampled coordinates, which may differ
        # per category or voter: both use ZeroSumNormal's M - 1 free coordinates, and a
        # category sampled non-centred (z_c = delta_c / tau_c) adds (M - 1) log tau_c to the
        # density of delta_c; a non-centred voter discrimination adds log s_kappa.
        out = 0.0
        if spec.categories.enabled:
            numpyro_nc = np.isin(np.arange(n_tags), index["category_noncentred"])
            pymc_nc = ~_in_coord(pymc_model, "category", "category_centred")
            out += np.sum((m - 1) * (numpyro_nc.astype(int) - pymc_nc)
                          * np.log(p["category_scale"]))
        if spec.voters.enabled:
            pymc_nc = ~_in_coord(pymc_model, "voter", "voter_centred")
            out += ((len(index["voter_noncentred"]) - pymc_nc.sum())
                    * np.log(p["voter_discrimination_scale"]))
        return float(out)

    rng = np.random.default_rng(2)
    points = [_random_point(rng, m, n_tags, n_voters, len(arena.style_features))
              for _ in range(3)]
    _check_log_densities(numpyro_at, pymc_model, points, correction)


# --- posteriors ----------------------------------------------------------------------------


def _compare_posteriors(numpyro_tree, pymc_tree) -> tuple[float, str]:
    """Largest |z| over the means and sds of every shared parameter element, against the
    Bonferroni threshold; returns ``(max |z| / threshold, report)``."""
    a, b = numpyro_tree["posterior"], pymc_tree["posterior"]
    names = [v for v in PARAMETERS if v in a.data_vars]
    missing = [v for v in names if v not in b.data_vars]
    assert not missing, f"PyMC twin lacks {missing}"
    z_all, lines = [], []
    for v in names:
        x, y = a[v], b[v].transpose(*a[v].dims)
        for dim in x.dims[2:]:  # same coordinates (names) in the same order
            assert list(map(str, x[dim].values)) == list(map(str, y[dim].values)), (v, dim)
        stat = ("chain", "draw")
        z_mean = ((x.mean(stat) - y.mean(stat)).values
                  / np.hypot(mcse(x).values, mcse(y).values))
        z_sd = ((x.std(stat) - y.std(stat)).values
                / np.hypot(mcse(x, method="sd").values, mcse(y, method="sd").values))
        z_all += [np.ravel(z_mean), np.ravel(z_sd)]
        r = max(float(np.max(rhat(x).values)), float(np.max(rhat(y).values)))
        lines.append(f"{v}: max |z| mean {np.max(np.abs(z_mean)):.2f}, sd "
                     f"{np.max(np.abs(z_sd)):.2f} (max R-hat {r:.3f})")
    z = np.abs(np.concatenate(z_all))
    threshold = norm.isf(FAMILY_ALPHA / (2 * z.size))
    report = (f"{z.size} comparisons, Bonferroni z = {threshold:.2f}, max |z| = {z.max():.2f}\n"
              + "\n".join(lines))
    print(report)
    return float(z.max() / threshold), report


#: Chains long enough for the MCSE estimates themselves to be trusted: with 500 draws per chain
#: the MCSE of a hierarchical scale's mean and sd (sigma, skewed, its tail explored slowly) came
#: out 30-60% too small over repeated runs, which would make the Bonferroni bound fail often.
PAIRWISE_SAMPLER = {"chains": 4, "warmup": 500, "draws": 2000}
ARENA_SAMPLER = {"chains": 4, "warmup": 500, "draws": 1000}


def _fit_both(data, spec, seed: int, sampler: dict, target_accept: float = 0.8):
    posterior = fit(data, spec, seed=seed, progress=False, warn=False,
                    target_accept=target_accept, **sampler)
    twin = sample_pymc(data, spec, draws=sampler["draws"], tune=sampler["warmup"],
                       chains=sampler["chains"], seed=seed + 1, target_accept=target_accept)
    return posterior.tree, twin


@pytest.mark.parametrize("name", PAIRWISE_SPECS)
def test_posterior_matches_numpyro_pairwise(name, pair_cells):
    tree, twin = _fit_both(pair_cells, load_spec(name), seed=3, sampler=PAIRWISE_SAMPLER)
    ratio, report = _compare_posteriors(tree, twin)
    assert ratio <= 1.0, report


def test_posterior_matches_numpyro_categories_voters_position(hier_votes):
    tree, twin = _fit_both(hier_votes, ARENA_SPEC, seed=4, sampler=ARENA_SAMPLER,
                           target_accept=0.9)
    assert set(twin["posterior"]["voter"].values) == set(tree["posterior"]["voter"].values)
    ratio, report = _compare_posteriors(tree, twin)
    assert ratio <= 1.0, report


def test_posterior_matches_numpyro_style(style_votes):
    tree, twin = _fit_both(style_votes, STYLE_SPEC, seed=5, sampler=ARENA_SAMPLER,
                           target_accept=0.9)
    ratio, report = _compare_posteriors(tree, twin)
    assert ratio <= 1.0, report


def test_build_pymc_model_names_and_dims(hier_votes):
    """Same parameter names and named dims as the NumPyro model."""
    model = build_pymc_model(hier_votes, ARENA_SPEC)
    arena, _ = arena_for_spec(as_votes(hier_votes), ARENA_SPEC)
    assert list(model.coords["model"]) == list(arena.cells.models)
    assert list(model.coords["category"]) == list(arena.tags)
    assert model.named_vars_to_dims["category_deviation"] == ("model", "category")
    assert model.named_vars_to_dims["voter_discrimination"] == ("voter",)
    assert list(model.coords["voter"]) == list(arena.voters)  # heavy voters only
    expected = {"theta", "sigma", "log_nu", "bothbad_intercept", "bothbad_slope",
                "category_scale", "category_deviation", "position",
                "voter_discrimination_scale", "voter_discrimination"}
    assert expected <= set(model.named_vars)
    # centred and non-centred categories (voters): each sampled exactly once
    for full in ("category", "voter"):
        parts = [*model.coords.get(f"{full}_centred", ()),
                 *model.coords.get(f"{full}_noncentred", ())]
        assert sorted(parts) == sorted(model.coords[full])
