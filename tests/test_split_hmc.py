"""Split HMC (bayesarena.split_hmc): the integrator is exact on its Gaussian part and
reversible, the kernel samples the right distribution from a warmed-up state, its helpers
follow NumPyro's layouts, and ``fit`` runs it to the posterior NUTS finds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from arviz_stats import mcse
from numpyro.infer import MCMC
from scipy.special import digamma, polygamma

import bayesarena as ba
from bayesarena import split_hmc
from bayesarena.adaptation import pool_adaptation
from bayesarena.diagnostics import format_diagnostics
from bayesarena.jittered_hmc import JitteredHMC
from bayesarena.split_hmc import Phase, SplitHMC, flat_inverse_mass, split_step

#: A correlated 3-d Gaussian (sds 1, 2 and 0.5, correlation 0.6 between the first two) and,
#: independent of it, g = log G with G ~ Gamma(2, 1): skewed, so the Gaussian the kernel
#: splits off is only an approximation of the target.
COVARIANCE = np.array([[1.0, 1.2, 0.0], [1.2, 4.0, 0.0], [0.0, 0.0, 0.25]])
PRECISION = jnp.asarray(np.linalg.inv(COVARIANCE))


def _potential(z: dict) -> jax.Array:
    return 0.5 * z["x"] @ PRECISION @ z["x"] - (2.0 * z["g"] - jnp.exp(z["g"]))


def _warmed_up(seed: int, chains: int = 2) -> tuple[JitteredHMC, split_hmc.SplitHMCState]:
    """Jittered-HMC warmup of the target, its last positions' mean as the centre."""
    base = JitteredHMC(potential_fn=_potential, trajectory_length=1.6, jitter=0.5)
    warm = MCMC(base, num_warmup=400, num_samples=1, num_chains=chains,
                chain_method="sequential", progress_bar=False, postprocess_fn=lambda z: z)
    warm.warmup(jax.random.PRNGKey(seed), collect_warmup=True,
                init_params={"x": jnp.ones((chains, 3)), "g": jnp.zeros(chains)})
    centre = split_hmc.warmup_centre(warm.get_samples(group_by_chain=True))
    return base, split_hmc.start_state(pool_adaptation(warm.post_warmup_state), centre)


def _run(base: JitteredHMC, state: split_hmc.SplitHMCState, n: int, tuning: int = 100) -> MCMC:
    """``tuning`` iterations of the split kernel tuning its step size, then ``n`` draws."""
    kernel = SplitHMC(base, trajectory_length=1.6, jitter=0.5, target_accept=0.8)
    mcmc = MCMC(kernel, num_warmup=tuning, num_samples=n, num_chains=np.shape(state.i)[0],
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(7), init_params=state,
             extra_fields=("num_steps", "accept_prob", "adapt_state.step_size"))
    return mcmc


def _sampled(seed: int, draws: int) -> MCMC:
    return _run(*_warmed_up(seed), draws)


def _gaussian_phase(step_size: float, n_steps: int, seed: int = 0):
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
        value_and_grad, centre, inverse_mass, start = _gaussian_phase(step_size, n_steps)
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
    mcmc = _sampled(1, 4000)
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


def test_tuning_ends_at_the_averaged_step_and_keeps_it():
    """Dual averaging over the tuning iterations moves each chain's step size away from the
    leapfrog one it starts from, ends it at the average of its log step sizes
    (``exp(x_avg)``), and the draws keep it."""
    base, state = _warmed_up(2)
    mcmc = _run(base, state, 20)
    last = mcmc.last_state
    step = np.asarray(last.adapt_state.step_size)
    assert np.all(step != np.asarray(state.adapt_state.step_size))
    np.testing.assert_allclose(step, np.exp(np.asarray(last.adapt_state.ss_state[1])))
    per_draw = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["adapt_state.step_size"])
    np.testing.assert_array_equal(per_draw, np.broadcast_to(step[:, None], per_draw.shape))


def test_a_seed_reproduces_the_chain():
    a, b = (np.asarray(_sampled(3, 50).get_samples()["x"]) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_flat_inverse_mass_follows_ravel_pytree_order():
    """Blocks in any order and sites of any shape come out in ``ravel_pytree``'s order (sorted
    site names, each raveled)."""
    z = {"b": np.zeros((2, 2)), "a": np.zeros(3), "c": np.zeros(())}
    blocks = {("c", "b"): np.array([9.0, 5.0, 6.0, 7.0, 8.0]), ("a",): np.array([1., 2., 3.])}
    flat = flat_inverse_mass(blocks, z)
    np.testing.assert_array_equal(flat, [1, 2, 3, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(
        flat_inverse_mass(np.arange(8.0), z), np.arange(8.0))
    with pytest.raises(ValueError, match="diagonal mass matrix"):
        flat_inverse_mass({("a",): np.eye(3)}, {"a": np.zeros(3)})


def test_warmup_centre_averages_the_last_draws_of_all_chains():
    draws = {"y": np.arange(2 * 10 * 2, dtype=float).reshape(2, 10, 2),
             "a": np.zeros((2, 10))}
    centre = split_hmc.warmup_centre(draws, last=4)
    # "a" first (sorted); y: chain 0 draws 6..9 and chain 1 draws 16..19, two coordinates
    np.testing.assert_allclose(centre, [0.0, 25.0, 26.0])


def test_the_kernel_only_continues_a_warmed_up_chain():
    kernel = SplitHMC(None, trajectory_length=1.6, jitter=0.5, target_accept=0.8)
    with pytest.raises(TypeError, match="start_state"):
        kernel.init(jax.random.PRNGKey(0), 0, {"x": jnp.zeros(3)})
    for bad in [dict(trajectory_length=0.0), dict(jitter=1.0), dict(target_accept=1.0)]:
        settings = dict(trajectory_length=1.6, jitter=0.5, target_accept=0.8) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            SplitHMC(None, **settings)


def test_fit_with_split_hmc_matches_nuts(small_cells, tmp_path):
    """``fit`` with ``kernel = "split_hmc"`` targets the posterior NUTS does: the posterior
    means of the strengths and log nu agree within 4 Monte Carlo standard errors of their
    difference (11 elements; a false alarm with probability 7e-4). The posterior records the
    kernel, its step sizes and the tuning, also once saved and read back, and the report
    names it."""
    kw = dict(seed=4, progress=False, chains=2, warmup=300, draws=1000, warn=False)
    spec = ba.load_spec("bt-davidson")
    nuts = ba.fit(small_cells, spec, **kw)
    split = ba.fit(small_cells, spec.with_sampler(kernel="split_hmc"), **kw)
    attrs = split.tree.attrs
    assert attrs["kernel"] == "split_hmc"
    assert attrs["split_tuning_iterations"] == split_hmc.TUNING_ITERATIONS
    assert attrs["split_step_size"] > attrs["leapfrog_step_size"]
    loaded = ba.Posterior.load(split.save(tmp_path / "split.nc"))
    assert loaded.diagnostics.kernel == "split_hmc"
    assert format_diagnostics(loaded.diagnostics).startswith("split HMC 2 chains x 1000")
    for name in ("theta", "log_nu"):
        x, y = nuts.tree["posterior"][name], split.tree["posterior"][name]
        difference = (x.mean(("chain", "draw")) - y.mean(("chain", "draw"))).values
        assert np.all(np.abs(difference) <= 4 * np.hypot(mcse(x).values, mcse(y).values)), name


def test_fit_refuses_split_hmc_with_a_short_warmup(small_cells):
    spec = ba.load_spec("bt-davidson").with_sampler(kernel="split_hmc")
    with pytest.raises(ValueError, match="warmup >= 100"):
        ba.fit(small_cells, spec, seed=0, progress=False, chains=2, warmup=50, draws=50)
