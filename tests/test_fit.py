"""Fitting: recovery, parity with maximum likelihood, reproducibility, storage, diagnostics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import TEST_SAMPLER
from scipy import stats
from scipy.optimize import minimize
from scipy.special import log_expit

from bayesarena import Posterior, SamplingWarning, aggregate, fit, read_votes, simulate_arena
from bayesarena.fit import bucket_size, cells_for_spec
from bayesarena.spec import load_spec


def test_recovery_coverage_over_seeds():
    """True strengths fall inside the 95% intervals at about the nominal rate.

    4 seeds x 12 models = 48 intervals. Under correct calibration the number covered is
    Binomial(48, 0.95) if intervals were independent; we accept the central 99.8% of that
    distribution (intervals within a fit are positively correlated through sum-to-zero, which
    only widens the spread a little, so this is a generous but not vacuous band: a model that
    is over-confident by 30% in scale covers ~87%, i.e. ~42/48, and fails).
    """
    covered, total = 0, 0
    for seed in range(4):
        df, truth = simulate_arena(12, 3000, seed=100 + seed)
        post = fit(aggregate(read_votes(df)), "bt-davidson", seed=seed, progress=False,
                   **TEST_SAMPLER)
        assert post.diagnostics.ok, post.diagnostics.problems
        lo, hi = np.quantile(post.theta_draws(), [0.025, 0.975], axis=0)
        order = [post.models.index(m) for m in truth.models]
        covered += int(np.sum((truth.theta >= lo[order]) & (truth.theta <= hi[order])))
        total += len(truth.theta)
    lo_ok, hi_ok = stats.binom.ppf([0.001, 0.999], total, 0.95)
    assert lo_ok <= covered <= hi_ok, f"{covered}/{total} covered"


def test_tie_parameters_recovered(small_arena, small_posterior):
    _, truth = small_arena
    post = small_posterior.tree["posterior"]
    for name in ("log_nu", "bothbad_intercept", "bothbad_slope"):
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.0005, 0.9995])  # 99.9% interval: rare false alarms
        assert lo <= getattr(truth, name) <= hi, name


def _bt_mle(cells) -> np.ndarray:
    """Plain maximum likelihood for Bradley-Terry with ties as half wins (scipy, sum-to-zero)."""
    w_i = cells.counts[:, 0] + 0.5 * (cells.counts[:, 2] + cells.counts[:, 3])
    w_j = cells.counts[:, 1] + 0.5 * (cells.counts[:, 2] + cells.counts[:, 3])
    m = cells.n_models

    def negll(free):
        theta = np.append(free, -free.sum())
        d = theta[cells.model_i] - theta[cells.model_j]
        return -np.sum(w_i * log_expit(d) + w_j * log_expit(-d))

    res = minimize(negll, np.zeros(m - 1), method="BFGS", options={"gtol": 1e-9})
    return np.append(res.x, -res.x.sum())


def test_ties_half_matches_maximum_likelihood():
    """Posterior mean of bt-ties-half == scipy ML fit, within MC error plus prior shrinkage.

    To first order the prior theta ~ ZeroSumNormal(sigma) moves the posterior mean from the MLE
    by -v_m theta_m E[1/sigma^2] n/(n-1) (v_m: the likelihood's variance of theta_m); we allow
    twice that (for higher-order terms) plus 4 Monte Carlo standard errors sd/sqrt(ESS). With
    40,000 votes on 8 models (28 cells: the fit costs no more than with 4,000), both terms are
    ~1e-3, against strengths spread over ~2 logits, so the comparison is tight.
    """
    df, _ = simulate_arena(8, 40_000, rating_sd=170.0, seed=7)
    cells = aggregate(read_votes(df))
    mle = _bt_mle(cells)
    post = fit(cells, "bt-ties-half", seed=1, progress=False, **TEST_SAMPLER)
    draws = post.theta_draws()
    mean, var = draws.mean(0), draws.var(0)
    n = cells.n_models
    inv_sigma2 = float(np.mean(post.tree["posterior"]["sigma"].values ** -2.0))
    ess = np.asarray(__import__("arviz_stats").ess(post.tree, var_names=["theta"])["theta"])
    shrinkage = np.abs(mle) * var * inv_sigma2 * n / (n - 1)
    tol = 2 * shrinkage + 4 * np.sqrt(var / ess)
    assert np.all(np.abs(mean - mle) <= tol), (mean - mle, tol)
    assert tol.max() < 0.01 * np.ptp(mle)  # and the comparison is not vacuous


def test_laplace_close_to_nuts(small_cells, small_posterior):
    lap = fit(small_cells, "bt-davidson", method="laplace", seed=3, laplace_draws=4000)
    assert lap.method == "laplace"
    n, l_ = small_posterior.theta_draws(), lap.theta_draws()
    # means agree to a fraction of a posterior sd (Gaussian vs exact posterior + MC error)
    assert np.all(np.abs(n.mean(0) - l_.mean(0)) < 0.2 * n.std(0))
    np.testing.assert_allclose(l_.std(0), n.std(0), rtol=0.15)


def test_same_seed_same_numbers(small_cells):
    a = fit(small_cells, "bt", seed=5, progress=False, chains=2, warmup=100, draws=100,
            warn=False)
    b = fit(small_cells, "bt", seed=5, progress=False, chains=2, warmup=100, draws=100,
            warn=False)
    c = fit(small_cells, "bt", seed=6, progress=False, chains=2, warmup=100, draws=100,
            warn=False)
    np.testing.assert_array_equal(a.theta_draws(), b.theta_draws())
    assert not np.array_equal(a.theta_draws(), c.theta_draws())


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_load_roundtrip(small_posterior, tmp_path, suffix):
    path = small_posterior.save(tmp_path / f"post{suffix}")
    back = Posterior.load(path)
    np.testing.assert_array_equal(back.theta_draws(), small_posterior.theta_draws())
    assert back.models == small_posterior.models
    assert back.spec == small_posterior.spec
    assert back.data_summary == small_posterior.data_summary
    assert back.method == "nuts"
    np.testing.assert_array_equal(back.cells().counts, small_posterior.cells().counts)
    assert back.diagnostics.max_rhat == pytest.approx(small_posterior.diagnostics.max_rhat)
    assert not list(tmp_path.rglob("*.pkl"))


def test_plain_bt_drops_ties_and_says_so(small_cells):
    cells, dropped = cells_for_spec(small_cells, load_spec("bt"))
    assert dropped["tie"] == int(small_cells.counts[:, 2].sum())
    assert dropped["tie_bothbad"] == int(small_cells.counts[:, 3].sum())
    assert cells.counts[:, 2:].sum() == 0
    assert cells.counts[:, :2].sum() == small_cells.counts[:, :2].sum()


def test_unhealthy_sampling_warns(small_cells):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = fit(small_cells, "bt-davidson", seed=0, progress=False, chains=2, warmup=20,
                   draws=30)
    assert not post.diagnostics.ok
    assert any(issubclass(w.category, SamplingWarning) and "ESS" in str(w.message)
               for w in caught)


def test_bucket_size_bounds_padding():
    for n in [1, 7, 16, 17, 100, 435, 11_175, 43_327, 580_000]:
        b = bucket_size(n)
        assert n <= b <= max(16, n * 1.125)


def test_prior_median_init_skips_laplace(small_cells, small_posterior):
    """init = "prior_median" starts NUTS from the prior median and computes no Laplace fit."""
    spec = load_spec("bt-davidson").with_sampler(init="prior_median")
    post = fit(small_cells, spec, seed=3, progress=False, **TEST_SAMPLER)
    assert "laplace_s" not in post.tree.attrs
    assert post.diagnostics.ok, post.diagnostics.problems
    ref = small_posterior.theta_draws()
    # same posterior as the Laplace-initialised fit: 4 standard errors of a difference of two
    # means, each with ESS >= 1000 (sd * sqrt(2 / 1000) = sd / sqrt(500))
    assert np.all(np.abs(post.theta_draws().mean(0) - ref.mean(0)) < 4 * ref.std(0) / np.sqrt(500))


def test_chain_method_auto(monkeypatch):
    """auto: parallel with a device per chain, vectorized on one accelerator, else sequential."""
    import jax

    from bayesarena.fit import resolve_chain_method

    assert resolve_chain_method("sequential", 4) == "sequential"
    monkeypatch.setattr(jax, "local_device_count", lambda: 4)
    assert resolve_chain_method("auto", 4) == "parallel"
    monkeypatch.setattr(jax, "local_device_count", lambda: 1)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert resolve_chain_method("auto", 4) == "vectorized"
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert resolve_chain_method("auto", 4) == "sequential"


def test_laplace_start_and_fixed_sites():
    """``start`` sets where L-BFGS begins and ``fixed`` holds sites there: the optimum is then
    the conditional mode of the others. Model: mu ~ N(0, 10), log s free (s ~ LogNormal(0, 1)),
    y_k ~ N(mu, s): with s held, mu's conditional mode is the precision-weighted mean
    sum(y) / (n + s^2 / 100) in closed form."""
    import jax
    import numpyro
    import numpyro.distributions as dist

    from bayesarena.laplace import laplace_approximation

    y = np.random.default_rng(0).normal(1.5, 2.0, size=30)

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        s = numpyro.sample("s", dist.LogNormal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu, s), obs=y)

    held = np.log(3.0)
    lap = laplace_approximation(model, {"y": np.asarray(y)}, jax.random.PRNGKey(0),
                                start={"mu": 0.0, "s": held}, fixed=("s",))
    point = lap.unravel(lap.mode)
    assert float(point["s"]) == held  # held exactly
    expected = y.sum() / (len(y) + 9.0 / 100.0)
    assert abs(float(point["mu"]) - expected) < 1e-5
    free = laplace_approximation(model, {"y": np.asarray(y)}, jax.random.PRNGKey(0))
    assert abs(float(free.unravel(free.mode)["s"]) - held) > 0.2  # the free mode moves s
    with pytest.raises(ValueError, match="every site"):
        laplace_approximation(model, {"y": np.asarray(y)}, jax.random.PRNGKey(0),
                              start={"mu": 0.0})


def test_site_probes_give_exact_diagonal_blocks():
    """The Hessian diagonal is probed a site at a time: a site whose block is diagonal (here
    ``a``: each a_k meets only its own b_k) comes out exact although it is coupled to another
    site as strongly as to its own prior; probing both sites at once would add noise of about
    sqrt(1 / K) per entry. Model: a, b ~ N(0, 1) (100 each), y_k ~ N(a_k + b_k, 1),
    w ~ N(mean(b), 0.1): diag = 2 for a, 2 + 1 / (100^2 0.1^2) = 2.01 for b."""
    import jax
    import numpyro
    import numpyro.distributions as dist

    from bayesarena.laplace import laplace_approximation, site_probes

    def model(y, w):
        a = numpyro.sample("a", dist.Normal(0.0, 1.0).expand([100]).to_event(1))
        b = numpyro.sample("b", dist.Normal(0.0, 1.0).expand([100]).to_event(1))
        numpyro.sample("y", dist.Normal(a + b, 1.0).to_event(1), obs=y)
        numpyro.sample("w", dist.Normal(b.mean(), 0.1), obs=w)

    data = {"y": np.random.default_rng(0).normal(size=100), "w": np.array(0.3)}
    lap = laplace_approximation(model, data, jax.random.PRNGKey(0), hessian="diagonal")
    diag = lap.unravel(lap.precision_diag)
    np.testing.assert_allclose(diag["a"], 2.0, rtol=1e-10)
    # b's off-diagonal terms are 0.01 each: Hutchinson noise sd ~ 0.01 sqrt(99 / 32) = 0.018
    np.testing.assert_allclose(diag["b"], 2.01, atol=5 * 0.018)
    probes = site_probes({"a": np.zeros(100), "b": np.zeros(100), "c": np.zeros(3)},
                         jax.random.PRNGKey(1))
    assert probes.shape == (32 + 32 + 3, 203)
    assert np.all(probes[:32, 100:] == 0) and np.all(probes[32:64, :100] == 0)
    np.testing.assert_array_equal(probes[64:, 200:], np.eye(3))


def test_mass_matrix_factors_follow_numpyro():
    """The factors built for a pooled mass matrix are the ones NumPyro builds itself."""
    from numpyro.infer.hmc_util import _initialize_mass_matrix

    from bayesarena.adaptation import mass_matrix_factors

    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    dense, diag = a @ a.T + 5 * np.eye(5), rng.uniform(0.5, 2.0, size=5)
    z = {"x": np.zeros(5)}
    for inverse_mass, is_dense in ((dense, True), (diag, False)):
        _, sqrt, sqrt_inv = _initialize_mass_matrix(z, inverse_mass, is_dense)
        ours = mass_matrix_factors(inverse_mass)
        np.testing.assert_allclose(ours[0], sqrt, rtol=1e-12)
        np.testing.assert_allclose(ours[1], sqrt_inv, rtol=1e-12)


def test_pooled_adaptation_gives_every_chain_one_kernel(small_cells):
    """With pooling every chain samples at the median of the step sizes the chains adapted on
    their own (the same warmup, same seed, without pooling); without it they differ."""
    kw = dict(seed=2, progress=False, chains=4, warmup=150, draws=50, warn=False)
    assert not load_spec("bt-davidson").sampler.pool_adaptation  # plain specs: NumPyro's way
    own = fit(small_cells, "bt-davidson", **kw)
    pooled = fit(small_cells, load_spec("bt-davidson").with_sampler(pool_adaptation=True), **kw)
    own_steps = own.tree["sample_stats"]["step_size"].values
    pooled_steps = pooled.tree["sample_stats"]["step_size"].values
    assert np.all(own_steps == own_steps[:, :1])  # fixed during sampling
    assert len(np.unique(own_steps[:, 0])) == 4
    np.testing.assert_allclose(pooled_steps, np.median(own_steps[:, 0]), rtol=1e-9)


@pytest.mark.parametrize("form", ["full", "diagonal", "blocked"])
def test_with_site_precisions_sets_a_sites_variance(form):
    """A site's precision is raised to the given value (never lowered), its couplings are
    removed, and the other sites' conditional precisions stay as they were."""
    from jax.flatten_util import ravel_pytree

    from bayesarena.laplace import LaplaceResult, blocked_precision, with_site_precisions

    _, unravel = ravel_pytree({"a": np.zeros(2), "s": np.zeros(1)})
    h = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 0.1]])
    common = dict(mode=np.zeros(3), unravel=unravel, postprocess=None, converged=True,
                  iterations=1, grad_norm=0.0, potential=0.0)
    if form == "full":
        result = LaplaceResult(precision_chol=np.linalg.cholesky(h), **common)
    elif form == "diagonal":
        result = LaplaceResult(precision_chol=None, precision_diag=np.diag(h).copy(), **common)
    else:  # "s" as the one local element
        blocks = blocked_precision(h[:2, :2], h[:2, 2:], h[2, 2:], np.arange(2), np.array([2]))
        result = LaplaceResult(precision_chol=None, precision_blocks=blocks, **common)
    out = with_site_precisions(result, {"s": np.array([50.0])})
    np.testing.assert_allclose(out.marginal_variances[2], 1 / 50.0)
    np.testing.assert_allclose(out.curvature, [4.0, 3.0, 50.0])
    lower = with_site_precisions(result, {"s": np.array([0.01])})
    np.testing.assert_allclose(lower.curvature[2], 0.1)  # raised only, never lowered
    if form == "full":
        np.testing.assert_allclose((out.precision_chol @ out.precision_chol.T)[:2, :2], h[:2, :2])
    if form == "blocked":
        np.testing.assert_allclose(out.precision_blocks.a, h[:2, :2])
        np.testing.assert_array_equal(out.precision_blocks.b, 0.0)
        np.testing.assert_allclose(out.marginal_variances[:2], np.diag(np.linalg.inv(h[:2, :2])))


def _globals_and_locals(coupled: bool):
    """A model with globals ``g`` (3) and ``log_s`` (the noise scale of ``y``) and 20 locals
    ``v``, each seen in its own observations only, unless ``coupled`` (an observation of their
    mean)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    def model(y, u, w, m):
        g = numpyro.sample("g", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
        log_s = numpyro.sample("log_s", dist.Normal(0.0, 1.0))
        v = numpyro.sample("v", dist.Normal(0.0, 1.0).expand([20]).to_event(1))
        numpyro.sample("y", dist.Normal(v + g[jnp.arange(20) % 3], jnp.exp(log_s))
                       .to_event(1), obs=y)
        numpyro.sample("u", dist.Normal(v, 0.5).to_event(1), obs=u)
        numpyro.sample("w", dist.Normal(g.sum(), 0.3), obs=w)
        if coupled:
            numpyro.sample("m", dist.Normal(v.mean(), 0.1), obs=m)

    rng = np.random.default_rng(0)
    data = {"y": rng.normal(size=20), "u": rng.normal(size=20), "w": np.array(0.5),
            "m": np.array(0.2)}
    return model, data


@pytest.mark.parametrize(("fixed", "chunk"), [((), 128), (("log_s",), 128), ((), 4)])
def test_blocked_hessian_is_the_full_hessian(fixed, chunk, monkeypatch):
    """``hessian="blocked"`` (one product per global element, two more for the locals) gives
    the full Hessian's Gaussian to rounding: the same curvature, marginal variances and
    covariance of the draws' map (``offsets(I)^T offsets(I) = H^-1``), with a held site
    decoupled the same way in both, and whether its 6 products run in one chunk or in chunks
    of 4 (the last padded); and it refuses local sites whose elements interact."""
    import jax

    import bayesarena.laplace
    from bayesarena.laplace import laplace_approximation

    monkeypatch.setattr(bayesarena.laplace, "HVP_CHUNK", chunk)

    model, data = _globals_and_locals(coupled=False)
    kw = dict(start={"g": np.zeros(3), "log_s": np.array(-0.3), "v": np.zeros(20)},
              fixed=fixed) if fixed else {}
    full = laplace_approximation(model, data, jax.random.PRNGKey(0), hessian="full", **kw)
    blocked = laplace_approximation(model, data, jax.random.PRNGKey(0), hessian="blocked",
                                    local_sites=("v",), **kw)
    assert full.converged and blocked.converged
    assert blocked.precision_blocks.local_index.size == 20
    np.testing.assert_allclose(blocked.curvature, full.curvature, rtol=1e-10)
    np.testing.assert_allclose(blocked.marginal_variances, full.marginal_variances, rtol=1e-10)
    h = full.precision_chol @ full.precision_chol.T
    x = blocked.precision_blocks.offsets(np.eye(h.shape[0]))  # row k: the map of e_k
    np.testing.assert_allclose(x.T @ x, np.linalg.inv(h), rtol=1e-9, atol=1e-12)

    model, data = _globals_and_locals(coupled=True)
    with pytest.raises(ValueError, match=r"\['v'\] are not local"):
        laplace_approximation(model, data, jax.random.PRNGKey(0), hessian="blocked",
                              local_sites=("v",))
