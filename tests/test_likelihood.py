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
