"""The arena model's blocked Hessian assembled from its cells' and rows' own second
derivatives (bayesarena.arena_hessian) against the same blocks from Hessian-vector products
of the whole potential (bayesarena.laplace.blocked_curvature), both in float64, for every
component the spec can switch and every parametrisation fit can choose."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import initialize_model

import bayesarena as ba
from bayesarena.arena_data import arena_cells
from bayesarena.arena_hessian import arena_blocked_hessian, vote_terms
from bayesarena.arena_model import arena_model, model_arguments
from bayesarena.fit import VOTER_SITES, _arena_model
from bayesarena.laplace import (
    _hessian_vector_products,
    blocked_curvature,
    in_chunks,
    site_mask,
)
from bayesarena.simulate import simulate_hierarchical_arena
from bayesarena.spec import parse_spec


@pytest.fixture(scope="module")
def frame():
    frame, _ = simulate_hierarchical_arena(7, 2500, categories=3, n_voters=60, seed=11)
    frame["position"] = np.random.default_rng(1).choice(["a", "b"], size=len(frame))
    return frame


def _spec(likelihood: dict | None = None, **components) -> ba.ModelSpec:
    raw: dict = {"name": "hessian-test", "likelihood": likelihood or {}}
    for name, options in components.items():
        raw[name] = {"enabled": True, **options}
    return parse_spec(raw)


def _both_routes(model, kwargs, seed: int = 0):
    """The blocks from products and from the cells' structure at a random point."""
    info = initialize_model(jax.random.PRNGKey(seed), model, model_kwargs=kwargs,
                            dynamic_args=True, init_strategy=init_to_uniform)
    x, unravel = ravel_pytree(info.param_info.z)
    local = site_mask(info.param_info.z, VOTER_SITES)
    products = _hessian_vector_products(info.potential_fn, unravel)
    key = jax.random.PRNGKey(3)
    exact = blocked_curvature(
        lambda p: in_chunks(lambda b: products(x, kwargs, jnp.asarray(b)), p), local, key)
    structured = arena_blocked_hessian(model, kwargs, key, VOTER_SITES)(
        np.asarray(x), unravel, local)
    return exact, structured, info


SPECS = {
    "arena.toml": lambda: ba.load_spec("arena"),
    "categories only": lambda: _spec(categories={}),
    "voters and style, ties dropped": lambda: _spec(
        {"ties": "drop", "both_bad": "drop"}, voters={"min_votes": 20}, style={}),
    "position": lambda: _spec(position={"source": "column"}),
    "categories and voters, both bad as ties": lambda: _spec(
        {"both_bad": "as_tie"}, categories={}, voters={"min_votes": 20}),
}


@pytest.mark.parametrize(("name", "centring"), [("arena.toml", "none")]
                         + [(name, None) for name in SPECS])
def test_structured_blocks_equal_the_products(frame, name, centring):
    """``centring="none"``: every group non-centred (the first Laplace step's model); ``None``:
    the default rules, which centre the categories and voters the votes pin."""
    spec = SPECS[name]()
    data = arena_cells(ba.read_votes(frame), spec)
    model, kwargs = _arena_model(data, spec, centring=centring)
    (a0, b0, d0), (a1, b1, d1), _ = _both_routes(model, kwargs)
    scale = np.abs(a0).max()
    np.testing.assert_allclose(a1, a0, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(d1, d0, rtol=1e-11, atol=1e-11 * scale)
    if spec.voters.enabled:
        assert d0.size > 0


def test_structured_blocks_with_theta_through_category_means(frame):
    """Every category centred, theta through its category mean and the deviations split into
    model means and contrasts: the map from the sites to the terms is then linear but
    dense, and held scales enter it."""
    spec = ba.load_spec("arena")
    data = arena_cells(ba.read_votes(frame), spec)
    kwargs = model_arguments(data, spec, category_centred=np.ones(3, dtype=bool))
    for split in (False, True):
        model = functools.partial(arena_model, n_models=data.cells.n_models, spec=spec,
                                  theta_from_category_mean=True, split_category_means=split)
        (a0, b0, d0), (a1, b1, d1), info = _both_routes(model, kwargs, seed=2)
        scale = np.abs(a0).max()
        np.testing.assert_allclose(a1, a0, rtol=0, atol=1e-11 * scale)
        np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-11 * scale)
        np.testing.assert_allclose(d1, d0, rtol=1e-11, atol=1e-11 * scale)
    assert "category_deviation_contrast" in info.param_info.z


def test_vote_terms_are_what_the_likelihood_reads(frame):
    """The terms captured from the model at a point give the model's own log density there
    (the votes' factor is a function of them alone)."""
    from numpyro.infer.util import log_density

    from bayesarena.arena_model import votes_log_likelihood

    spec = ba.load_spec("arena")
    data = arena_cells(ba.read_votes(frame), spec)
    model, kwargs = _arena_model(data, spec)
    info = initialize_model(jax.random.PRNGKey(4), model, model_kwargs=kwargs,
                            dynamic_args=True, init_strategy=init_to_uniform)
    terms = vote_terms(model, kwargs, info.param_info.z)
    assert terms.discrimination.shape == (len(data.voters) + 1,)
    assert terms.deviation.shape == (data.cells.n_models, len(data.tags))
    values = info.postprocess_fn(**kwargs)(info.param_info.z)
    whole, _ = log_density(model, (), kwargs, values)
    prior_only, _ = log_density(functools.partial(model, vote_likelihood=lambda t: 0.0), (),
                                kwargs, values)
    lik = votes_log_likelihood(terms, spec=spec, **kwargs)
    assert abs(float(lik)) > 100.0  # thousands of votes
    np.testing.assert_allclose(float(whole), float(prior_only + lik), rtol=1e-12)
