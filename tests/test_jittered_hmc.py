"""Jittered HMC (bayesarena.jittered_hmc): the integration time it draws, that it samples the
right distribution, that a seed reproduces it, and that ``fit`` runs it to the same posterior
as NUTS."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from arviz_stats import mcse
from numpyro.infer import MCMC

import bayesarena as ba
from bayesarena.diagnostics import format_diagnostics
from bayesarena.fit import LARGE_POSTERIOR_FROM, resolve_kernel
from bayesarena.jittered_hmc import (
    MAX_STEPS,
    JitteredHMC,
    jittered_state,
    short_warmup_iterations,
)
from bayesarena.spec import SpecError

#: A correlated 3-d Gaussian: sds 1, 2 and 0.5, correlation 0.6 between the first two.
COVARIANCE = np.array([[1.0, 1.2, 0.0], [1.2, 4.0, 0.0], [0.0, 0.0, 0.25]])
PRECISION = jnp.asarray(np.linalg.inv(COVARIANCE))


def _potential(z: dict) -> jax.Array:
    return 0.5 * z["x"] @ PRECISION @ z["x"]


def _sample(seed: int, *, step_size: float | None = None, jitter: float = 0.5,
            draws: int = 2000) -> MCMC:
    adapt = step_size is None
    kernel = JitteredHMC(potential_fn=_potential, trajectory_length=1.6, jitter=jitter,
                         step_size=1.0 if adapt else step_size, adapt_step_size=adapt,
                         adapt_mass_matrix=adapt)
    mcmc = MCMC(kernel, num_warmup=500 if adapt else 0, num_samples=draws, num_chains=2,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), init_params={"x": jnp.ones((2, 3))},
             extra_fields=("num_steps",))
    return mcmc


def test_integration_time_is_drawn_within_its_bounds():
    """With a fixed step size ``eps`` each iteration takes ``ceil(T / eps)`` leapfrog steps for
    ``T`` uniform on ``[(1 - j) T0, (1 + j) T0]``: here ``T / eps`` in (4, 12], so 5 to 12
    steps, each with probability 1/8 (every count turns up in 800 iterations but with
    probability 8 (7/8)^800 ~ 1e-45); without jitter always 8."""
    eps = 0.2
    steps = np.asarray(_sample(0, step_size=eps, draws=400).get_extra_fields()["num_steps"])
    assert set(steps.tolist()) == set(range(5, 13))
    fixed = _sample(0, step_size=eps, jitter=0.0, draws=50).get_extra_fields()["num_steps"]
    assert np.all(np.asarray(fixed) == 8)


def test_samples_a_correlated_gaussian():
    """Means within 4 Monte Carlo standard errors of 0 and variances within 4 of their true
    values, per coordinate (ArviZ's mcse of the mean and of the sd; 6 two-sided 4-sd checks:
    a false alarm with probability 4e-4)."""
    mcmc = _sample(1)
    x = xr.DataArray(np.asarray(mcmc.get_samples(group_by_chain=True)["x"]),
                     dims=("chain", "draw", "dim"))
    mean = x.mean(("chain", "draw"))
    assert np.all(np.abs(mean.values) <= 4 * mcse(x).values)
    sd = x.std(("chain", "draw"))
    assert np.all(np.abs(sd.values - np.sqrt(np.diag(COVARIANCE)))
                  <= 4 * mcse(x, method="sd").values)


def test_warmup_windows_run_at_the_shortened_time():
    """``warmup_scale = 0.5``: before warmup's terminal buffer (the first 150 of 200
    iterations in NumPyro's schedule) the time is halved, ``T / eps`` in (2, 6], so 3 to 6
    steps; the buffer's 50 iterations and the draws take the full 5 to 12."""
    kernel = JitteredHMC(potential_fn=_potential, trajectory_length=1.6, jitter=0.5,
                         warmup_scale=0.5, step_size=0.2, adapt_step_size=False,
                         adapt_mass_matrix=False)
    mcmc = MCMC(kernel, num_warmup=200, num_samples=300, num_chains=1, progress_bar=False)
    mcmc.warmup(jax.random.PRNGKey(0), init_params={"x": jnp.ones(3)}, collect_warmup=True,
                extra_fields=("num_steps",))
    warmup = np.asarray(mcmc.get_extra_fields()["num_steps"])
    assert short_warmup_iterations(200) == 150
    assert set(warmup[:150].tolist()) == set(range(3, 7))
    assert set(warmup[150:].tolist()) <= set(range(5, 13)) and warmup[150:].max() > 6
    mcmc.run(jax.random.PRNGKey(1), extra_fields=("num_steps",))
    assert set(np.asarray(mcmc.get_extra_fields()["num_steps"]).tolist()) == set(range(5, 13))


def test_vectorized_chains_draw_their_own_times():
    """``chain_method="vectorized"`` (the default on a single GPU) hands the kernel the chains'
    states stacked: each chain still draws its own integration time (the chains' step counts
    differ at the same iteration) and samples the Gaussian (means within 4 MCSE)."""
    kernel = JitteredHMC(potential_fn=_potential, trajectory_length=1.6, jitter=0.5,
                         step_size=0.2, adapt_step_size=False, adapt_mass_matrix=False)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=1000, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(2), init_params={"x": jnp.ones((2, 3))},
             extra_fields=("num_steps",))
    steps = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"])
    assert np.mean(steps[0] != steps[1]) > 0.5
    assert set(steps.ravel().tolist()) == set(range(5, 13))
    x = xr.DataArray(np.asarray(mcmc.get_samples(group_by_chain=True)["x"]),
                     dims=("chain", "draw", "dim"))
    assert np.all(np.abs(x.mean(("chain", "draw")).values) <= 4 * mcse(x).values)


def test_a_seed_reproduces_the_chain():
    a, b, c = (np.asarray(_sample(seed, step_size=0.3, draws=100).get_samples()["x"])
               for seed in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_steps_are_capped_when_the_step_size_is_tiny():
    mcmc = _sample(0, step_size=0.3, draws=1)
    state = jax.tree.map(lambda a: a[0], mcmc.last_state)  # the first chain's
    tiny = state._replace(adapt_state=state.adapt_state._replace(step_size=1e-6))
    assert float(jittered_state(tiny, 1.6, 0.5).trajectory_length) == pytest.approx(
        MAX_STEPS * 1e-6)
    length = float(jittered_state(state, 1.6, 0.5).trajectory_length)
    assert 0.8 <= length <= 2.4


@pytest.mark.parametrize("options", [dict(trajectory_length=0.0, jitter=0.5),
                                     dict(trajectory_length=1.6, jitter=1.0),
                                     dict(trajectory_length=1.6, jitter=0.5, warmup_scale=0.0)])
def test_rejects_bad_settings(options):
    with pytest.raises(ValueError, match=r"trajectory_length|jitter|warmup_scale"):
        JitteredHMC(potential_fn=_potential, **options)


def test_spec_settings_are_validated():
    spec = ba.load_spec("bt-davidson")
    assert spec.with_sampler(kernel="jittered_hmc").sampler.kernel == "jittered_hmc"
    for bad in (dict(kernel="mala"), dict(trajectory_length=-1.0),
                dict(trajectory_jitter=1.5), dict(warmup_trajectory_scale=1.5)):
        with pytest.raises(SpecError, match=next(iter(bad))):
            spec.with_sampler(**bad)


def test_auto_kernel_is_split_hmc_for_large_posteriors_only():
    assert resolve_kernel("auto", LARGE_POSTERIOR_FROM) == "split_hmc"
    assert resolve_kernel("auto", LARGE_POSTERIOR_FROM - 1) == "nuts"
    assert resolve_kernel("auto", None) == "nuts"
    assert resolve_kernel("nuts", 10**6) == "nuts"
    assert resolve_kernel("jittered_hmc", 10) == "jittered_hmc"


def test_fit_with_jittered_hmc_matches_nuts(small_cells, tmp_path):
    """``fit`` with ``kernel = "jittered_hmc"`` targets the posterior NUTS does: the posterior
    means of the strengths and log nu agree within 4 Monte Carlo standard errors of their
    difference (11 elements; a false alarm with probability 7e-4). The posterior records the
    kernel and its settings, also once saved and read back, and the report names it."""
    kw = dict(seed=4, progress=False, chains=2, warmup=300, draws=600, warn=False)
    spec = ba.load_spec("bt-davidson")
    nuts = ba.fit(small_cells, spec, **kw)
    hmc = ba.fit(small_cells, spec.with_sampler(kernel="jittered_hmc"), **kw)
    assert nuts.tree.attrs["kernel"] == "nuts"
    assert hmc.tree.attrs["kernel"] == "jittered_hmc"
    assert hmc.tree.attrs["trajectory_length"] == spec.sampler.trajectory_length
    assert hmc.diagnostics.divergences == 0
    loaded = ba.Posterior.load(hmc.save(tmp_path / "hmc.nc"))
    assert loaded.diagnostics.kernel == "jittered_hmc"
    assert format_diagnostics(loaded.diagnostics).startswith("jittered HMC 2 chains x 600")
    assert format_diagnostics(nuts.diagnostics).startswith("NUTS 2 chains")
    for name in ("theta", "log_nu"):
        x, y = nuts.tree["posterior"][name], hmc.tree["posterior"][name]
        difference = (x.mean(("chain", "draw")) - y.mean(("chain", "draw"))).values
        assert np.all(np.abs(difference) <= 4 * np.hypot(mcse(x).values, mcse(y).values)), name
