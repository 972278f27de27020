"""The whitening map q = m + T x of bayesarena.whitening, on a posterior that is exactly
Gaussian (so the blocked Laplace approximation is the posterior itself)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer.util import initialize_model, potential_energy

from bayesarena.laplace import laplace_approximation
from bayesarena.whitening import SITE, unwhiten, unwhitened_draws, whitened_model, whitening


def _gaussian_model(y, u, w):
    """Globals ``g`` (3), locals ``v`` (20) each seen in its own observations only: a linear
    Gaussian model, so the posterior is N(mode, H^-1) exactly and the voters' block of H is
    diagonal, as in the arena."""
    g = numpyro.sample("g", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    v = numpyro.sample("v", dist.Normal(0.0, 1.0).expand([20]).to_event(1))
    numpyro.sample("y", dist.Normal(v + g[jnp.arange(20) % 3], 0.7).to_event(1), obs=y)
    numpyro.sample("u", dist.Normal(v, 0.5).to_event(1), obs=u)
    numpyro.sample("w", dist.Normal(g.sum(), 0.3), obs=w)


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    data = {"y": jnp.asarray(rng.normal(size=20)), "u": jnp.asarray(rng.normal(size=20)),
            "w": jnp.asarray(0.5)}
    key = jax.random.PRNGKey(0)
    lap = laplace_approximation(_gaussian_model, data, key, hessian="blocked",
                                local_sites=("v",), gtol=1e-10)
    full = laplace_approximation(_gaussian_model, data, key, hessian="full", gtol=1e-10)
    info = initialize_model(key, _gaussian_model, model_kwargs=data, dynamic_args=True)
    potential = info.potential_fn(**data)

    def u_flat(q):
        return potential(lap.unravel(q))

    h = full.precision_chol @ full.precision_chol.T
    return lap, h, u_flat, info, data


def _matrix(w, n):
    """``T`` column by column (``unwhiten(e_k) - m``)."""
    return np.stack([np.asarray(unwhiten(w, jnp.eye(n)[k]) - w.mode) for k in range(n)], axis=1)


def test_exact_whitening_makes_the_gaussian_round(gaussian):
    """With every coupling kept, ``T T' = H^-1`` and ``U(m + T x) = U(m) + grad U(m)' T x +
    |x|^2 / 2`` (the gradient term because the mode is found to a tolerance)."""
    lap, h, u_flat, _, _ = gaussian
    w = whitening(lap.precision_blocks, lap.mode, min_coupling=0.0, min_factor_entry=0.0)
    n = lap.mode.size
    t = _matrix(w, n)
    np.testing.assert_allclose(t @ t.T, np.linalg.inv(h), atol=1e-10)
    x = jnp.asarray(np.random.default_rng(1).normal(size=n))
    offset = unwhiten(w, x) - w.mode
    rise = float(u_flat(w.mode + offset) - u_flat(w.mode) - jax.grad(u_flat)(w.mode) @ offset)
    np.testing.assert_allclose(rise, 0.5 * float(x @ x), rtol=1e-8)
    # the same map as the Laplace approximation's own draws
    np.testing.assert_allclose(np.asarray(unwhiten(w, x)) - lap.mode,
                               lap.precision_blocks.offsets(np.asarray(x)[None])[0], atol=1e-10)


def test_truncated_coupling_keeps_the_strong_correlations(gaussian):
    """The kept rank is the number of canonical correlations at or above ``min_coupling``;
    with none kept, the globals and locals are whitened apart and the Gaussian is no longer
    round (so the coupling is doing work in the exact map)."""
    lap, h = gaussian[:2]
    blocks = lap.precision_blocks
    exact = whitening(blocks, lap.mode, min_coupling=0.0, min_factor_entry=0.0)
    s = np.linalg.svd(np.asarray(exact.coupling_left), compute_uv=False)
    assert s.max() < 1.0
    cut = 0.5 * float(s.max() + s.min())  # between singular values, away from rounding
    kept = whitening(blocks, lap.mode, min_coupling=cut, min_factor_entry=0.0)
    assert 0 < kept.coupling_right.shape[0] == int(np.sum(s >= cut)) < s.size
    none = whitening(blocks, lap.mode, min_coupling=1.0, min_factor_entry=0.0)
    assert none.coupling_right.shape[0] == 0
    n = lap.mode.size
    cov = {name: _matrix(w, n) @ _matrix(w, n).T for name, w in
           (("exact", exact), ("kept", kept), ("none", none))}
    # T^T H T: identity for the exact map, further from it the fewer couplings are kept
    errors = {name: np.linalg.norm(np.linalg.solve(c, np.linalg.inv(h)) - np.eye(n))
              for name, c in cov.items()}
    assert errors["exact"] < 1e-8 < errors["kept"] < errors["none"]


def test_sparse_factor_keeps_each_columns_large_entries(gaussian):
    """``L_S^-T`` keeps the entries of at least ``min_factor_entry`` times their column's
    largest: all of the upper triangle at 0, one per column at 1; the kept entries are the
    factor's own, so a map keeping every entry is the exact one."""
    lap, h = gaussian[:2]
    blocks = lap.precision_blocks
    n_g = blocks.global_index.size
    exact = whitening(blocks, lap.mode, min_coupling=0.0, min_factor_entry=0.0)
    assert exact.factor_values.size == n_g * (n_g + 1) // 2
    assert np.all(np.asarray(exact.factor_rows) <= np.asarray(exact.factor_cols))
    assert np.all(np.diff(np.asarray(exact.factor_rows)) >= 0)  # sorted for segment_sum
    largest = whitening(blocks, lap.mode, min_coupling=0.0, min_factor_entry=1.0)
    assert largest.factor_values.size == n_g
    assert sorted(np.asarray(largest.factor_cols).tolist()) == list(range(n_g))
    n = lap.mode.size
    t = _matrix(largest, n)
    assert np.linalg.norm(np.linalg.solve(t @ t.T, np.linalg.inv(h)) - np.eye(n)) > 1e-3


def test_float32_whitening_is_close_to_float64(gaussian):
    lap = gaussian[0]
    x = jnp.asarray(np.random.default_rng(2).normal(size=lap.mode.size))
    w64 = whitening(lap.precision_blocks, lap.mode, min_coupling=0.0)
    w32 = whitening(lap.precision_blocks, lap.mode, min_coupling=0.0, dtype=np.float32)
    assert w32.factor_values.dtype == jnp.float32 and w32.mode.dtype == jnp.float64
    offset = np.asarray(unwhiten(w64, x)) - lap.mode
    np.testing.assert_allclose(np.asarray(unwhiten(w32, x)) - lap.mode, offset,
                               atol=1e-6 * np.abs(offset).max())


def test_whitened_model_has_one_site_and_the_models_density(gaussian):
    """The whitened model's only latent site is ``x``; its potential is ``U(m + T x)``, and
    draws map back through :func:`unwhitened_draws` row by row."""
    lap, _, u_flat, info, data = gaussian
    w = whitening(lap.precision_blocks, lap.mode)
    model = functools.partial(whitened_model, info.potential_fn, lap.unravel)
    kwargs = dict(data, whitening=w)
    x = jnp.asarray(np.random.default_rng(3).normal(size=lap.mode.size))
    trace = handlers.trace(handlers.seed(handlers.substitute(model, {SITE: x}), 0)).get_trace(
        **kwargs)
    assert [k for k, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"]] == [SITE]
    np.testing.assert_allclose(float(potential_energy(model, (), kwargs, {SITE: x})),
                               float(u_flat(unwhiten(w, x))), rtol=1e-10)
    rows = np.random.default_rng(4).normal(size=(2, 3, lap.mode.size))
    mapped = unwhitened_draws(w, rows)
    assert mapped.shape == rows.shape
    np.testing.assert_allclose(mapped[1, 2], np.asarray(unwhiten(w, jnp.asarray(rows[1, 2]))))
    assert ravel_pytree(lap.unravel(jnp.asarray(mapped[0, 0])))[0].shape == lap.mode.shape
