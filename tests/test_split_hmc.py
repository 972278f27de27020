"""Split HMC (bayesarena.split_hmc): the integrator is exact on its Gaussian part and
reversible, the kernel samples the right distribution and centres its Gaussian on the warmup's
last slow window, its helpers follow NumPyro's layouts, and ``fit`` runs it to the posterior
NUTS finds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from arviz_stats import mcse
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC
from numpyro.infer.hmc_util import build_adaptation_schedule
from scipy.special import digamma, polygamma

import bayesarena as ba
from bayesarena import split_hmc
from bayesarena.adaptation import pool_adaptation
from bayesarena.diagnostics import format_diagnostics
from bayesarena.split_hmc import Phase, SplitHMC, flat_blocks, split_step

#: A correlated 3-d Gaussian (sds 1, 2 and 0.5, correlation 0.6 between the first two) and,
#: independent of it, g = log G with G ~ Gamma(2, 1): skewed, so the Gaussian the kernel
#: splits off is only an approximation of the target.
COVARIANCE = np.array([[1.0, 1.2, 0.0], [1.2, 4.0, 0.0], [0.0, 0.0, 0.25]])
PRECISION = jnp.asarray(np.linalg.inv(COVARIANCE))


def _potential(z: dict) -> jax.Array:
    return 0.5 * z["x"] @ PRECISION @ z["x"] - (2.0 * z["g"] - jnp.exp(z["g"]))


def _sample(seed: int, draws: int, *, warmup: int = 400, centre=None,
            collect_warmup: bool = False) -> MCMC:
    kernel = SplitHMC(potential_fn=_potential, trajectory_length=1.6, jitter=0.5,
                      centre=centre)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=2,
                chain_method="sequential", progress_bar=False,
                postprocess_fn=(lambda z: z) if collect_warmup else None)
    init = {"x": jnp.ones((2, 3)), "g": jnp.zeros(2)}
    if collect_warmup:
        mcmc.warmup(jax.random.PRNGKey(seed), init_params=init, collect_warmup=True)
    else:
        mcmc.run(jax.random.PRNGKey(seed), init_params=init,
                 extra_fields=("num_steps", "accept_prob", "adapt_state.step_size"))
    return mcmc


def _gaussian_phase(seed: int = 0):
    """A 5-d Gaussian target whose Gaussian part is the target itself."""
    key = jax.random.PRNGKey(seed)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    inverse_mass = jnp.exp(jax.random.normal(k1, (5,)))
    centre = jax.random.normal(k2, (5,))

    def value_and_grad(q):
        return jax.value_and_grad(
            lambda x: 0.5 * jnp.sum((x - centre) ** 2 / inverse_mass))(q)

    q = centre + jnp.sqrt(inverse_mass) * jax.random.normal(k3, (5,))
    p = jax.random.normal(k4, (5,)) / jnp.sqrt(inverse_mass)
    return value_and_grad, centre, inverse_mass, Phase(q, p, *value_and_grad(q))


def test_split_step_is_exact_on_a_gaussian_it_splits_off_whole():
    """When the target is the Gaussian part itself the residual's force is zero and every
    step is the exact rotation: the energy stays constant (to rounding) at any step size, and
    a quarter turn in one step maps ``y = q - mu`` to ``M^-1 p``."""
    for step_size, n_steps in [(0.3, 7), (1.2, 4), (np.pi / 2, 1)]:
        value_and_grad, centre, inverse_mass, start = _gaussian_phase()
        end = start
        for _ in range(n_steps):
            end = split_step(value_and_grad, step_size, centre, inverse_mass, end)
        energy = [ph.potential + split_hmc.kinetic_energy(inverse_mass, ph.p)
                  for ph in (start, end)]
        assert abs(float(energy[1] - energy[0])) < 1e-10 * float(energy[0])
    np.testing.assert_allclose(end.q - centre, inverse_mass * start.p, rtol=1e-10, atol=1e-12)


def test_split_step_is_reversible_on_a_non_gaussian_target():
    """Integrate forward, flip the momentum, integrate as long again: back at the start (to
    rounding), the property the Metropolis step relies on."""
    def value_and_grad(q):
        return jax.value_and_grad(lambda x: _potential({"x": x[:3], "g": x[3]}))(q)

    centre, inverse_mass = jnp.array([0.3, -0.2, 0.1, 0.5]), jnp.array([1.1, 3.5, 0.3, 0.7])
    q = jnp.array([0.5, 1.0, -0.4, 1.2])
    start = Phase(q, jnp.array([0.3, -1.0, 0.7, 0.2]), *value_and_grad(q))
    phase = start
    for _ in range(9):
        phase = split_step(value_and_grad, 0.4, centre, inverse_mass, phase)
    phase = phase._replace(p=-phase.p)
    for _ in range(9):
        phase = split_step(value_and_grad, 0.4, centre, inverse_mass, phase)
    np.testing.assert_allclose(phase.q, start.q, atol=1e-12)
    np.testing.assert_allclose(-phase.p, start.p, atol=1e-12)


def test_samples_a_correlated_gaussian_and_a_skewed_coordinate():
    """Means and sds of ``x`` and of ``g = log G`` (``E g = digamma(2)``, ``var g =
    trigamma(2)``) within 4 Monte Carlo standard errors of the truth (ArviZ's mcse; 8
    two-sided 4-sd checks: a false alarm with probability 5e-4)."""
    mcmc = _sample(1, 4000)
    samples = mcmc.get_samples(group_by_chain=True)
    x = xr.DataArray(np.asarray(samples["x"]), dims=("chain", "draw", "dim"))
    assert np.all(np.abs(x.mean(("chain", "draw")).values) <= 4 * mcse(x).values)
    sd = x.std(("chain", "draw")).values
    assert np.all(np.abs(sd - np.sqrt(np.diag(COVARIANCE)))
                  <= 4 * mcse(x, method="sd").values)
    g = xr.DataArray(np.asarray(samples["g"]), dims=("chain", "draw"))
    assert abs(float(g.mean()) - digamma(2.0)) <= 4 * float(mcse(g))
    assert abs(float(g.std()) - np.sqrt(polygamma(1, 2.0))) <= 4 * float(mcse(g, method="sd"))
    # the kernel moved
    assert 0.5 < float(np.mean(mcmc.get_extra_fields()["accept_prob"])) < 1.0


def test_the_centre_is_the_last_slow_windows_mean():
    """After warmup each chain's ``mu`` is the mean of its draws in the last slow window
    (NumPyro's schedule for 400 iterations: 150 to 349; the Welford state is read before the
    window's last draw enters it)."""
    mcmc = _sample(2, 1, collect_warmup=True)
    draws = mcmc.get_samples(group_by_chain=True)
    start, end = build_adaptation_schedule(400)[-2]
    for chain in range(2):
        window = {k: np.asarray(v)[chain, start:end] for k, v in draws.items()}
        expected = ravel_pytree({k: v.mean(axis=0) for k, v in window.items()})[0]
        np.testing.assert_allclose(np.asarray(mcmc.post_warmup_state.centre)[chain], expected,
                                   rtol=1e-10, atol=1e-12)


def test_pooled_adaptation_gives_every_chain_the_chains_mean_centre():
    state = _sample(3, 1, collect_warmup=True).post_warmup_state
    pooled = pool_adaptation(state)
    np.testing.assert_allclose(np.asarray(pooled.centre),
                               np.broadcast_to(np.asarray(state.centre).mean(axis=0),
                                               np.shape(state.centre)))


def test_a_seed_reproduces_the_chain():
    a, b = (np.asarray(_sample(3, 50, warmup=150).get_samples()["x"]) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_flat_blocks_follow_ravel_pytree_order():
    """Blocks in any order and sites of any shape come out in ``ravel_pytree``'s order (sorted
    site names, each raveled); a single vector is already in it."""
    z = {"b": np.zeros((2, 2)), "a": np.zeros(3), "c": np.zeros(())}
    blocks = {("c", "b"): np.array([9.0, 5.0, 6.0, 7.0, 8.0]), ("a",): np.array([1., 2., 3.])}
    np.testing.assert_array_equal(flat_blocks(blocks, z), [1, 2, 3, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(flat_blocks(np.arange(8.0), z), np.arange(8.0))
    with pytest.raises(ValueError, match="diagonal mass matrix"):
        flat_blocks({("a",): np.eye(3)}, {"a": np.zeros(3)})


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="diagonal mass matrix"):
        SplitHMC(potential_fn=_potential, trajectory_length=1.6, jitter=0.5, dense_mass=True)
    with pytest.raises(ValueError, match="centre has 2 values"):
        _sample(0, 10, warmup=10, centre=np.zeros(2))
    for bad in [dict(trajectory_length=0.0), dict(jitter=1.0)]:
        settings = dict(trajectory_length=1.6, jitter=0.5) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            SplitHMC(potential_fn=_potential, **settings)


def test_fit_with_split_hmc_matches_nuts(small_cells, tmp_path):
    """``fit`` with ``kernel = "split_hmc"`` targets the posterior NUTS does: the posterior
    means of the strengths and log nu agree within 4 Monte Carlo standard errors of their
    difference (11 elements; a false alarm with probability 7e-4). The posterior records the
    kernel, also once saved and read back, and the report names it."""
    kw = dict(seed=4, progress=False, chains=2, warmup=300, draws=1000, warn=False)
    spec = ba.load_spec("bt-davidson")
    nuts = ba.fit(small_cells, spec, **kw)
    split = ba.fit(small_cells, spec.with_sampler(kernel="split_hmc"), **kw)
    assert split.tree.attrs["kernel"] == "split_hmc"
    assert split.diagnostics.divergences == 0
    loaded = ba.Posterior.load(split.save(tmp_path / "split.nc"))
    assert loaded.diagnostics.kernel == "split_hmc"
    assert format_diagnostics(loaded.diagnostics).startswith("split HMC 2 chains x 1000")
    for name in ("theta", "log_nu"):
        x, y = nuts.tree["posterior"][name], split.tree["posterior"][name]
        difference = (x.mean(("chain", "draw")) - y.mean(("chain", "draw"))).values
        assert np.all(np.abs(difference) <= 4 * np.hypot(mcse(x).values, mcse(y).values)), name
