"""Mixed precision (bayesarena.precision): float32 per-vote terms, float64 sums."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from arviz_stats import mcse
from jax.flatten_util import ravel_pytree
from numpyro.handlers import substitute, trace
from numpyro.infer.util import initialize_model

import bayesarena as ba
from bayesarena.errors import SpecError
from bayesarena.fit import _arena_model, arena_for_spec, pad_cells
from bayesarena.numpyro_model import pairwise_model
from bayesarena.precision import FLOAT32_EXACT_INTEGERS, lower, sampling_data, term_dtype, total
from bayesarena.simulate import simulate_hierarchical_arena

EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff 2^-24
#: Roundings one likelihood term passes through (gathers, differences, exp, log1p, products),
#: counted generously: every operation's error is at most one unit roundoff of its result.
ROUNDINGS = 16


def test_dtypes_and_casts():
    assert term_dtype("mixed") == jnp.float32 and term_dtype("double") == jnp.float64
    with pytest.raises(ValueError, match="precision"):
        term_dtype("half")
    with pytest.raises(SpecError, match="precision"):
        ba.load_spec("arena").with_sampler(precision="single")
    tree = lower({"x": jnp.ones(3), "i": jnp.arange(3), "none": None, "s": 2.0}, jnp.float32)
    assert tree["x"].dtype == jnp.float32 and tree["s"].dtype == jnp.float32
    assert tree["i"].dtype == jnp.arange(3).dtype and tree["none"] is None
    # float32 terms, float64 sum: 2^24 + 1 ones is exact in float64, not in float32
    ones = jnp.ones(2**24 + 1, dtype=jnp.float32)
    assert total(ones).dtype == jnp.float64 and int(total(ones)) == 2**24 + 1


def _potentials(model: functools.partial, kwargs: dict):
    """Value-and-gradient of the potential in double and mixed precision, and the
    likelihood factor's value (in double) at the model's initial point."""
    info = initialize_model(jax.random.PRNGKey(1), model, model_kwargs=kwargs,
                            dynamic_args=True)
    z = info.param_info.z
    out = {}
    for precision in ("double", "mixed"):
        m = functools.partial(model, precision=precision)
        potential = initialize_model(jax.random.PRNGKey(1), m, model_kwargs=kwargs,
                                     dynamic_args=True).potential_fn(**kwargs)
        value, grad = jax.value_and_grad(potential)(z)
        out[precision] = (float(value), ravel_pytree(grad)[0])
    constrained = info.postprocess_fn(**kwargs)(z)
    factors = {}
    for precision in ("double", "mixed"):
        m = functools.partial(model, precision=precision)
        site = trace(substitute(m, constrained)).get_trace(**kwargs)["votes"]
        factors[precision] = site["fn"].log_prob(site["value"])
    assert factors["mixed"].dtype == jnp.float64  # the terms were summed in float64
    return out, float(factors["double"])


@pytest.fixture(scope="module")
def arena_setup():
    frame, _ = simulate_hierarchical_arena(8, 4000, categories=3, n_voters=60, seed=5)
    spec = ba.load_spec("arena")
    arena, _ = arena_for_spec(ba.read_votes(frame), spec)
    return _arena_model(arena, spec)


def _check_agreement(out: dict, votes: float) -> None:
    """The log density moves by at most ROUNDINGS unit roundoffs of the sum of the terms'
    magnitudes (every term is a non-positive log-probability times a count, so that sum is
    ``|votes|``); each gradient component by at most 2^-16 of the largest one (measured at
    150 models x 1M votes: 4e-8 of it in arena_gradient.json, 2e-4 with the style product in
    float32)."""
    (v64, g64), (v32, g32) = out["double"], out["mixed"]
    assert votes < 0
    assert abs(v32 - v64) <= ROUNDINGS * EPS32 * abs(votes)
    assert g32.dtype == jnp.float64
    scale = float(jnp.max(jnp.abs(g64)))
    assert float(jnp.max(jnp.abs(g32 - g64))) <= 2.0**-16 * scale


def test_arena_model_mixed_matches_double(arena_setup):
    model, kwargs = arena_setup
    out, votes = _potentials(model, kwargs)
    _check_agreement(out, votes)
    assert out["double"][0] != out["mixed"][0]  # the float32 path was taken


def test_sampling_data_casts_only_what_stays_exact(arena_setup):
    """Whole-number float data go to float32 under "mixed" (counts, positions), other floats
    (style features) and numbers float32 cannot hold stay float64, integers are untouched;
    the mixed potential and gradient are the same with the data cast before or inside."""
    data = {"counts": jnp.array([[3.0, 0.0], [1.0, 2.0]]), "style": jnp.array([0.25, -1.1]),
            "huge": jnp.array([0.0, FLOAT32_EXACT_INTEGERS + 1.0]), "index": jnp.arange(2)}
    mixed = sampling_data(data, "mixed")
    assert mixed["counts"].dtype == jnp.float32
    np.testing.assert_array_equal(mixed["counts"], data["counts"])
    assert mixed["style"].dtype == jnp.float64 and mixed["huge"].dtype == jnp.float64
    assert mixed["index"].dtype == data["index"].dtype
    assert all(v.dtype == data[k].dtype for k, v in sampling_data(data, "double").items())

    model, kwargs = arena_setup
    cast = sampling_data(kwargs, "mixed")
    assert cast["counts"].dtype == jnp.float32 and cast["row_style"].dtype == jnp.float64
    m = functools.partial(model, precision="mixed")
    info = initialize_model(jax.random.PRNGKey(1), m, model_kwargs=kwargs, dynamic_args=True)
    z = info.param_info.z
    inside, before = (jax.value_and_grad(info.potential_fn(**k))(z) for k in (kwargs, cast))
    np.testing.assert_allclose(float(before[0]), float(inside[0]), rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(before[1])[0], ravel_pytree(inside[1])[0],
                               rtol=1e-6, atol=1e-9)


def test_pairwise_model_mixed_matches_double(small_cells):
    model = functools.partial(pairwise_model, n_models=small_cells.n_models,
                              spec=ba.load_spec("bt-davidson"))
    out, votes = _potentials(model, pad_cells(small_cells))
    _check_agreement(out, votes)
    assert out["double"][0] != out["mixed"][0]


def test_mixed_precision_samples_the_same_posterior(small_cells):
    """NUTS on the mixed-precision density targets the double one up to a factor within
    exp(+-|Delta U|) (``test_*_mixed_matches_double``), far below Monte Carlo error: the
    posterior means of the strengths and of log nu agree within 4 Monte Carlo standard errors
    of their difference (ArviZ's mcse of each fit), for every element (11 of them; two-sided
    4 sd: a false alarm with probability 7e-4)."""
    kw = dict(seed=4, progress=False, chains=2, warmup=300, draws=600, warn=False)
    spec = ba.load_spec("bt-davidson")
    assert spec.sampler.precision == "mixed"  # the default
    double, mixed = (ba.fit(small_cells, spec.with_sampler(precision=p), **kw).tree["posterior"]
                     for p in ("double", "mixed"))
    for name in ("theta", "log_nu"):
        x, y = double[name], mixed[name]
        difference = (x.mean(("chain", "draw")) - y.mean(("chain", "draw"))).values
        assert np.all(difference != 0), name  # different arithmetic, different chains
        assert np.all(np.abs(difference) <= 4 * np.hypot(mcse(x).values, mcse(y).values)), name
