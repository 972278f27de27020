import numpy as np
import pytest

from bayesarena.ranking import (
    joint_rank_intervals,
    marginal_intervals,
    prob_stronger,
    rank_draws,
    rank_probabilities,
    rank_upper_bound,
)


def test_rank_draws():
    theta = np.array([[0.3, -1.0, 2.0], [0.0, 0.5, -0.5]])
    np.testing.assert_array_equal(rank_draws(theta), [[2, 3, 1], [2, 1, 3]])


def test_rank_probabilities_rows_and_columns_sum_to_one():
    rng = np.random.default_rng(0)
    ranks = rank_draws(rng.normal(size=(500, 6)) + np.arange(6) * 0.3)
    p = rank_probabilities(ranks)
    np.testing.assert_allclose(p.sum(0), 1.0)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[5, 0] > p[0, 0]  # the strongest model is most often first


def test_joint_intervals_hold_jointly_and_contain_marginal():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(4000, 12)) * 0.5 + np.linspace(0, 2, 12)
    ranks = rank_draws(theta)
    lo, hi, cov = joint_rank_intervals(ranks, 0.95)
    inside = np.all((ranks >= lo) & (ranks <= hi), axis=1).mean()
    assert inside == pytest.approx(cov)
    assert cov >= 0.95
    mlo, mhi = marginal_intervals(ranks, 0.95)
    assert np.all(lo <= np.floor(mlo)) and np.all(hi >= np.ceil(mhi) - 1e-9)
    # marginal intervals at the same level do NOT hold jointly here (that is the point)
    joint_marginal = np.all((ranks >= mlo) & (ranks <= mhi), axis=1).mean()
    assert joint_marginal < 0.95


def test_joint_intervals_degenerate_when_certain():
    theta = np.tile(np.arange(5.0), (100, 1))
    lo, hi, cov = joint_rank_intervals(rank_draws(theta), 0.95)
    np.testing.assert_array_equal(lo, hi)
    np.testing.assert_array_equal(lo, [5, 4, 3, 2, 1])
    assert cov == 1.0


def test_rank_upper_bound_by_hand():
    # A: [10, 20], B: [15, 25], C: [30, 40] -> C is above A and B; A and B overlap
    lower, upper = np.array([10, 15, 30]), np.array([20, 25, 40])
    np.testing.assert_array_equal(rank_upper_bound(lower, upper), [2, 2, 1])


def test_prob_stronger_is_complementary():
    rng = np.random.default_rng(2)
    p = prob_stronger(rng.normal(size=(1000, 4)))
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose((p + p.T)[off], 1.0)
