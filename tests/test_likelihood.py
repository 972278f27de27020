import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesarena.likelihood import (
    OutcomeParams,
    davidson_log_normaliser,
    davidson_log_probs,
    log_outcome_probs,
    multinomial_log_coefficient,
    outcome_probs,
)

D = jnp.linspace(-40.0, 40.0, 801)


def test_davidson_closed_form_matches_logsumexp():
    for log_nu in (-3.0, -0.5, 0.0, 2.0):
        ref = jnp.logaddexp(jnp.logaddexp(D / 2, -D / 2), log_nu)
        np.testing.assert_allclose(davidson_log_normaliser(D, log_nu), ref, rtol=1e-12, atol=1e-12)


def test_davidson_matches_definition():
    # pi = exp(theta); P(i) = pi_i / (pi_i + pi_j + nu sqrt(pi_i pi_j))
    ti, tj, nu = 0.7, -0.2, 0.8
    pi_i, pi_j = np.exp(ti), np.exp(tj)
    den = pi_i + pi_j + nu * np.sqrt(pi_i * pi_j)
    lp = np.exp(np.array(davidson_log_probs(jnp.array(ti - tj), np.log(nu))))
    np.testing.assert_allclose(lp, [pi_i / den, pi_j / den, nu * np.sqrt(pi_i * pi_j) / den])


def test_davidson_gradient_smooth_at_zero():
    g = jax.grad(lambda d: davidson_log_normaliser(d, -0.3))
    assert float(g(0.0)) == pytest.approx(0.0, abs=1e-12)
    # one-sided finite differences agree with the gradient near zero
    h = 1e-6
    fd = (davidson_log_normaliser(h, -0.3) - davidson_log_normaliser(-h, -0.3)) / (2 * h)
    assert float(fd) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("both_bad", ["modelled", "as_tie", "drop"])
def test_outcome_probs_sum_to_one(both_bad):
    params = OutcomeParams(log_nu=-0.4, bothbad_intercept=0.3, bothbad_slope=-1.2)
    m = jnp.linspace(-2, 2, D.size)
    p = outcome_probs(D, m, ties="davidson", both_bad=both_bad, params=params)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)
    assert bool(jnp.all(p >= 0))


def test_both_bad_share_follows_mean_strength():
    params = OutcomeParams(log_nu=0.0, bothbad_intercept=0.0, bothbad_slope=-1.0)
    lp = log_outcome_probs(jnp.zeros(2), jnp.array([-1.0, 1.0]), ties="davidson",
                           both_bad="modelled", params=params)
    share = jnp.exp(lp[:, 3]) / (jnp.exp(lp[:, 2]) + jnp.exp(lp[:, 3]))
    np.testing.assert_allclose(share, jax.nn.sigmoid(jnp.array([1.0, -1.0])), rtol=1e-12)


def test_half_ties_is_half_win_each_side():
    lp = log_outcome_probs(D, 0 * D, ties="half", both_bad="as_tie", params=OutcomeParams())
    half = 0.5 * (jax.nn.log_sigmoid(D) + jax.nn.log_sigmoid(-D))
    np.testing.assert_allclose(lp[:, 2], half)
    np.testing.assert_allclose(lp[:, 3], half)


def test_logprobs_finite_at_extremes():
    for ties, bb in [("davidson", "modelled"), ("half", "as_tie"), ("drop", "drop")]:
        lp = log_outcome_probs(D * 10, D, ties=ties, both_bad=bb,
                               params=OutcomeParams(-0.5, 0.0, -1.0))
        assert bool(jnp.all(jnp.isfinite(lp)))


def test_multinomial_coefficient():
    counts = jnp.array([[2.0, 1.0, 0.0, 1.0]])
    # 4! / (2! 1! 0! 1!) = 12
    np.testing.assert_allclose(jnp.exp(multinomial_log_coefficient(counts)), [12.0])


# --- Rao-Kupper ties, Thurstone-Mosteller (probit) link and Glenn-David ties ---------------

import bayesarena  # noqa: E402, F401  (turns on jax x64)
from bayesarena.likelihood import (  # noqa: E402
    glenn_david_log_probs,
    log_ndtr,
    rao_kupper_log_probs,
)

D30 = jnp.linspace(-30.0, 30.0, 601)
THRESHOLDS = (0.05, 0.5, 2.0)
# (ties, link) of the new variants that have a tie probability, and those that do not
TIE_VARIANTS = [("rao_kupper", "logit"), ("rao_kupper", "probit")]
NEW_VARIANTS = [*TIE_VARIANTS, ("drop", "probit"), ("half", "probit")]


def _log_ndtr_ref(x):
    """``log Phi(x)`` through scipy's erfcx (independent of JAX), exact for x << 0 too."""
    from scipy.special import erfcx
    from scipy.special import log_ndtr as scipy_log_ndtr

    x = np.asarray(x, dtype=np.float64)
    left = np.log(0.5 * erfcx(-np.minimum(x, 0.0) / np.sqrt(2.0))) - 0.5 * np.minimum(x, 0.0) ** 2
    return np.where(x < 0, left, scipy_log_ndtr(x))


def _glenn_david_tie_ref(d, t):
    """``log(Phi(t - d) - Phi(-t - d))`` in float64 numpy, at ``|d|`` (P(tie) is even in d)."""
    a = np.abs(np.asarray(d, dtype=np.float64))
    log_u, log_l = _log_ndtr_ref(t - a), _log_ndtr_ref(-t - a)
    return log_u + np.log(-np.expm1(log_l - log_u))


@pytest.mark.parametrize("both_bad", ["modelled", "as_tie", "drop"])
@pytest.mark.parametrize(("ties", "link"), NEW_VARIANTS)
@pytest.mark.parametrize("t", THRESHOLDS)
def test_new_variants_sum_to_one(ties, link, both_bad, t):
    params = OutcomeParams(log_nu=None, bothbad_intercept=0.3, bothbad_slope=-1.2,
                           tie_threshold=t)
    m = jnp.linspace(-2, 2, D30.size)
    p = outcome_probs(D30, m, ties=ties, both_bad=both_bad, params=params, link=link)
    assert p.shape == (D30.size, 4)
    assert bool(jnp.all(p >= 0))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)
    if both_bad != "modelled":
        assert bool(jnp.all(p[:, 3] == 0))
    if (ties, link) in TIE_VARIANTS:
        # the log-probabilities agree with the predictive probabilities and are finite
        lp = log_outcome_probs(D30, m, ties=ties, both_bad=both_bad, params=params, link=link)
        assert bool(jnp.all(jnp.isfinite(lp)))
        keep = 4 if both_bad == "modelled" else 3
        np.testing.assert_allclose(jnp.exp(lp[:, :keep]), p[:, :keep], rtol=1e-12)
    else:
        assert bool(jnp.all(p[:, 2:] == 0))


@pytest.mark.parametrize(("ties", "link"), TIE_VARIANTS)
def test_new_tie_models_both_bad_share(ties, link):
    t = 0.4
    params = OutcomeParams(bothbad_intercept=0.2, bothbad_slope=-0.8, tie_threshold=t)
    m = jnp.linspace(-3, 3, D30.size)
    lp = log_outcome_probs(D30, m, ties=ties, both_bad="modelled", params=params, link=link)
    plain = log_outcome_probs(D30, m, ties=ties, both_bad="drop", params=params, link=link)
    # the two tie kinds share the model's tie mass, the both-bad share is sigmoid(a + b m)
    np.testing.assert_allclose(jnp.logaddexp(lp[:, 2], lp[:, 3]), plain[:, 2], rtol=1e-12)
    np.testing.assert_allclose(lp[:, :2], plain[:, :2], rtol=0, atol=0)
    share = jnp.exp(lp[:, 3] - jnp.logaddexp(lp[:, 2], lp[:, 3]))
    np.testing.assert_allclose(share, jax.nn.sigmoid(0.2 - 0.8 * m), rtol=1e-12)


def test_rao_kupper_matches_definition():
    # pi = exp(theta), kappa = exp(t): P(i) = pi_i / (pi_i + kappa pi_j),
    # P(tie) = (kappa^2 - 1) pi_i pi_j / ((pi_i + kappa pi_j)(kappa pi_i + pi_j))
    for ti, tj in [(0.7, -0.2), (-1.3, 2.1), (0.0, 0.0), (4.0, -3.5)]:
        for t in (0.01, *THRESHOLDS):
            pi_i, pi_j, kappa = np.exp(ti), np.exp(tj), np.exp(t)
            den_i, den_j = pi_i + kappa * pi_j, kappa * pi_i + pi_j
            ref = [pi_i / den_i, pi_j / den_j, np.expm1(2 * t) * pi_i * pi_j / (den_i * den_j)]
            lp = rao_kupper_log_probs(jnp.array(ti - tj), t)
            np.testing.assert_allclose(np.exp(np.array(lp)), ref, rtol=1e-10)
            # the tie is exactly the mass the two wins leave
            np.testing.assert_allclose(ref[2], 1.0 - ref[0] - ref[1], rtol=1e-10)


def test_rao_kupper_tie_identity():
    # log P(tie) = log(expm1(2t)) + log sigmoid(d - t) + log sigmoid(-d - t) = log(1 - P(i) - P(j))
    d = np.linspace(-5.0, 5.0, 101)
    for t in THRESHOLDS:
        lp_i, lp_j, lp_tie = rao_kupper_log_probs(jnp.asarray(d), t)
        s_i = 1.0 / (1.0 + np.exp(-(d - t)))
        s_j = 1.0 / (1.0 + np.exp(-(-d - t)))
        np.testing.assert_allclose(lp_tie, np.log1p(-(s_i + s_j)), rtol=1e-10)
        np.testing.assert_allclose(lp_i, np.log(s_i), rtol=1e-10)
        np.testing.assert_allclose(lp_j, np.log(s_j), rtol=1e-10)


def test_glenn_david_matches_normal_cdf():
    from scipy.stats import norm

    d = np.linspace(-3.0, 3.0, 121)
    for t in THRESHOLDS:
        lp = np.exp(np.array(glenn_david_log_probs(jnp.asarray(d), t)))
        np.testing.assert_allclose(lp[0], norm.cdf(d - t), rtol=1e-10)
        np.testing.assert_allclose(lp[1], norm.cdf(-d - t), rtol=1e-10)
        np.testing.assert_allclose(lp[2], norm.cdf(t - d) - norm.cdf(-t - d), rtol=1e-10)
    # further out, the plain difference cancels for d < 0; P(tie) is even in d
    d = np.linspace(-8.0, 8.0, 161)
    for t in THRESHOLDS:
        lp_tie = np.exp(np.array(glenn_david_log_probs(jnp.asarray(d), t)[2]))
        a = np.abs(d)
        np.testing.assert_allclose(lp_tie, norm.cdf(t - a) - norm.cdf(-t - a), rtol=1e-10)


@pytest.mark.parametrize("d", [-30.0, -25.0, -20.0, 20.0, 30.0])
def test_glenn_david_accurate_far_in_the_tail(d):
    for t in (0.01, *THRESHOLDS):
        lp = np.array(glenn_david_log_probs(jnp.array(d), t))
        assert np.all(np.isfinite(lp))
        np.testing.assert_allclose(lp[0], _log_ndtr_ref(d - t), rtol=1e-12)
        np.testing.assert_allclose(lp[1], _log_ndtr_ref(-d - t), rtol=1e-12)
        np.testing.assert_allclose(lp[2], _glenn_david_tie_ref(d, t), rtol=1e-12)


def test_log_ndtr_accurate_in_the_tail():
    from scipy.special import erfcx

    x = np.array([-45.0, -38.0, -30.0, -20.01, -20.0, -19.99, -10.0, -1.0, 0.0, 1e-3, 3.0, 5.0,
                  7.9, 8.1, 12.0, 30.0])
    np.testing.assert_allclose(log_ndtr(jnp.asarray(x)), _log_ndtr_ref(x), rtol=1e-14)
    # d/dx log Phi(x) = phi(x) / Phi(x) = sqrt(2 / pi) / erfcx(-x / sqrt(2))
    grad = jax.vmap(jax.grad(log_ndtr))(jnp.asarray(x))
    np.testing.assert_allclose(grad, np.sqrt(2 / np.pi) / erfcx(-x / np.sqrt(2)), rtol=1e-12)


def test_probit_without_ties_is_normal_cdf():
    from scipy.special import log_ndtr as scipy_log_ndtr
    from scipy.stats import norm

    d = np.asarray(D30)
    for ties in ("drop", "half"):
        p = outcome_probs(D30, 0 * D30, ties=ties, both_bad="drop", params=OutcomeParams(),
                          link="probit")
        np.testing.assert_allclose(p[:, 0], norm.cdf(d), rtol=1e-10)
        np.testing.assert_allclose(p[:, 1], norm.cdf(-d), rtol=1e-10)
        lp = log_outcome_probs(D30, 0 * D30, ties=ties, both_bad="as_tie",
                               params=OutcomeParams(), link="probit")
        np.testing.assert_allclose(lp[:, 0], scipy_log_ndtr(d), rtol=1e-12)
        np.testing.assert_allclose(lp[:, 1], scipy_log_ndtr(-d), rtol=1e-12)
        half = 0.5 * (scipy_log_ndtr(d) + scipy_log_ndtr(-d))
        np.testing.assert_allclose(lp[:, 2], half if ties == "half" else 0.0, rtol=1e-12)


def test_default_link_is_logit():
    params = OutcomeParams(-0.4, 0.3, -1.2)
    for ties in ("drop", "davidson", "half"):
        a = log_outcome_probs(D30, D30, ties=ties, both_bad="modelled", params=params)
        b = log_outcome_probs(D30, D30, ties=ties, both_bad="modelled", params=params,
                              link="logit")
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("ties", "link"), NEW_VARIANTS)
@pytest.mark.parametrize("d", [0.0, 1e-8, -1e-8, 30.0, -30.0, 100.0, -100.0])
def test_new_variants_gradients_finite(ties, link, d):
    counts = jnp.array([1.0, 2.0, 3.0, 4.0])

    def loglik(x, t):
        params = OutcomeParams(bothbad_intercept=0.3, bothbad_slope=-1.2, tie_threshold=t)
        both_bad = "modelled" if ties == "rao_kupper" else "as_tie"
        lp = log_outcome_probs(x, 0.5 * x, ties=ties, both_bad=both_bad, params=params,
                               link=link)
        return jnp.sum(counts * lp)

    for t in THRESHOLDS:
        g_d, g_t = jax.grad(loglik, argnums=(0, 1))(jnp.array(d), jnp.array(t))
        assert np.isfinite(float(g_d)) and np.isfinite(float(g_t))


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_threshold_tie_flat_at_zero(link):
    # P(tie) is even in d, so its slope vanishes at d = 0 (the |d| in Glenn-David included)
    params = OutcomeParams(tie_threshold=0.7)

    def lp_tie(x):
        return log_outcome_probs(x, x, ties="rao_kupper", both_bad="drop", params=params,
                                 link=link)[2]

    assert float(jax.grad(lp_tie)(0.0)) == pytest.approx(0.0, abs=1e-12)
    h = 1e-5
    g = jax.grad(lp_tie)
    assert float(g(h)) == pytest.approx(-float(g(-h)), rel=1e-9)
    fd = (lp_tie(h) - lp_tie(-h)) / (2 * h)
    assert float(fd) == pytest.approx(0.0, abs=1e-8)


def test_mode_errors():
    params = OutcomeParams(log_nu=0.0, tie_threshold=0.5)
    with pytest.raises(ValueError, match="davidson"):
        log_outcome_probs(D30, D30, ties="davidson", both_bad="drop", params=params,
                          link="probit")
    with pytest.raises(ValueError, match="davidson"):
        outcome_probs(D30, D30, ties="davidson", both_bad="drop", params=params, link="probit")
    with pytest.raises(ValueError, match="link"):
        log_outcome_probs(D30, D30, ties="drop", both_bad="drop", params=params, link="cauchit")
    with pytest.raises(ValueError, match="tie_threshold"):
        log_outcome_probs(D30, D30, ties="rao_kupper", both_bad="drop", params=OutcomeParams())
    with pytest.raises(ValueError, match="ties"):
        outcome_probs(D30, D30, ties="glenn_david", both_bad="drop", params=params)


def test_outcome_params_field_order_unchanged():
    assert OutcomeParams._fields == (
        "log_nu", "bothbad_intercept", "bothbad_slope", "tie_threshold"
    )
    assert OutcomeParams(-0.5, 0.0, -1.0).tie_threshold is None


@pytest.mark.parametrize(("ties", "link"), NEW_VARIANTS)
def test_new_variants_gradients_match_finite_differences(ties, link):
    params = OutcomeParams(bothbad_intercept=0.3, bothbad_slope=-1.2, tie_threshold=0.6)
    both_bad = "modelled" if ties == "rao_kupper" else "as_tie"
    h = 1e-6
    for k in range(4 if ties == "rao_kupper" else 2):
        def f(x, k=k):
            return log_outcome_probs(x, 0.5 * x, ties=ties, both_bad=both_bad, params=params,
                                     link=link)[k]

        for d in (0.0, 0.3, -1.7, 6.0, -12.0, 25.0):
            fd = (f(d + h) - f(d - h)) / (2 * h)
            assert float(jax.grad(f)(d)) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)


def test_new_variants_jit():
    params = OutcomeParams(bothbad_intercept=0.3, bothbad_slope=-1.2, tie_threshold=0.6)
    for ties, link in NEW_VARIANTS:
        def f(x, p, ties=ties, link=link):
            return log_outcome_probs(x, x, ties=ties, both_bad="modelled", params=p, link=link)

        np.testing.assert_allclose(jax.jit(f)(D30, params), f(D30, params), rtol=1e-13)


def test_log_sigmoid_pair_matches_reference_in_both_tails():
    from bayesarena.likelihood import log_sigmoid_pair

    x = jnp.concatenate([jnp.linspace(-800.0, 800.0, 1601), jnp.array([0.0, 1e-12, -1e-12])])
    lp, lm = log_sigmoid_pair(x)
    np.testing.assert_allclose(lp, jax.nn.log_sigmoid(x), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(lm, jax.nn.log_sigmoid(-x), rtol=1e-14, atol=1e-300)
    # the slope at 0 is sigmoid(0) = 1/2 on both sides despite |x| inside
    for sign, out in ((1.0, 0), (-1.0, 1)):
        g = jax.grad(lambda v, o=out: log_sigmoid_pair(v)[o])(0.0)
        assert float(g) == pytest.approx(0.5 * sign, abs=1e-15)
    # the slope elsewhere, to rounding of the O(1) terms it is summed from (absolute error
    # ~1e-16, harmless beside the O(1) slopes of the other cells it is added to)
    gx = jax.vmap(jax.grad(lambda v: log_sigmoid_pair(v)[0]))(x[:-3])
    np.testing.assert_allclose(gx, jax.nn.sigmoid(-x[:-3]), rtol=1e-12, atol=4e-16)


def test_unfused_take_has_the_values_and_derivatives_of_indexing():
    """gather.take: plain indexing's values, gradient, Hessian (forward over reverse, as the
    Laplace step takes it) and vmap behaviour, with repeated indices (scatter-add)."""
    from bayesarena.gather import take

    rng = np.random.default_rng(3)
    theta = jnp.asarray(rng.normal(size=7))
    i = jnp.asarray(rng.integers(0, 7, 40))
    j = jnp.asarray(rng.integers(0, 7, 40))
    w = jnp.asarray(rng.normal(size=40))

    def f(t, gather):
        d = gather(t, i) - gather(t, j)
        return jnp.sum(w * jnp.log1p(jnp.exp(d)) + jnp.sin(gather(t, i)))

    plain = lambda t, idx: t[..., idx]  # noqa: E731
    np.testing.assert_array_equal(take(theta, i), theta[i])
    np.testing.assert_allclose(jax.grad(f)(theta, take), jax.grad(f)(theta, plain), rtol=1e-14)
    np.testing.assert_allclose(jax.hessian(f)(theta, take), jax.hessian(f)(theta, plain),
                               rtol=1e-13, atol=1e-14)
    batch = jnp.stack([theta, 2 * theta])
    np.testing.assert_allclose(jax.vmap(lambda t: f(t, take))(batch),
                               jax.vmap(lambda t: f(t, plain))(batch), rtol=1e-14)
    np.testing.assert_array_equal(take(batch, i), batch[:, i])  # leading axes kept
