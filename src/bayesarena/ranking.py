"""Ranks from joint posterior draws: rank probabilities, marginal and joint rank intervals.

All functions take strength draws ``theta`` of shape ``(n_draws, n_models)`` (chains stacked)
and return numpy arrays aligned with the model axis. Rank 1 is the strongest model.

Joint (simultaneous) rank intervals follow Besag, Green, Higdon & Mengersen (1995),
"Bayesian computation and stochastic systems", Statistical Science 10(1), Sec. 6: take for every
model the interval between its k-th smallest and k-th largest sampled rank, and choose the
largest k for which at least ``prob`` of the draws have *every* model's rank inside its
interval. Such intervals hold jointly: with posterior probability ``prob`` all models' ranks
lie in their intervals at once, which marginal intervals do not promise.
"""

from __future__ import annotations

import numpy as np


def rank_draws(theta: np.ndarray) -> np.ndarray:
    """Rank of each model in each draw (1 = strongest), shape ``(n_draws, n_models)``."""
    order = np.argsort(-np.asarray(theta), axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, order.shape[-1] + 1), axis=-1)
    return ranks


def rank_probabilities(ranks: np.ndarray) -> np.ndarray:
    """``P[m, k-1] = P(rank of model m == k)``, shape ``(n_models, n_models)``."""
    n_draws, n_models = ranks.shape
    out = np.zeros((n_models, n_models))
    np.add.at(out, (np.tile(np.arange(n_models), n_draws), ranks.reshape(-1) - 1), 1.0)
    return out / n_draws


def marginal_intervals(x: np.ndarray, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval of each column of ``x`` (draws on axis 0)."""
    tail = (1.0 - prob) / 2.0
    lo, hi = np.quantile(x, [tail, 1.0 - tail], axis=0)
    return lo, hi


def joint_rank_intervals(
    ranks: np.ndarray, prob: float = 0.95
) -> tuple[np.ndarray, np.ndarray, float]:
    """Simultaneous rank intervals (Besag et al. 1995); returns ``(lower, upper, coverage)``.

    ``coverage`` is the achieved share of draws whose whole rank vector lies inside the
    intervals (``>= prob``; it can exceed ``prob`` because ranks are discrete).
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    n_draws = ranks.shape[0]
    sorted_ranks = np.sort(ranks, axis=0)

    def bounds(k: int) -> tuple[np.ndarray, np.ndarray]:
        return sorted_ranks[k, :], sorted_ranks[n_draws - 1 - k, :]

    def coverage(k: int) -> float:
        lo, hi = bounds(k)
        return float(np.mean(np.all((ranks >= lo) & (ranks <= hi), axis=1)))

    # coverage(k) is non-increasing in k; coverage(0) == 1. Find the largest k with >= prob.
    lo_k, hi_k = 0, (n_draws - 1) // 2
    while lo_k < hi_k:
        mid = (lo_k + hi_k + 1) // 2
        if coverage(mid) >= prob:
            lo_k = mid
        else:
            hi_k = mid - 1
    lower, upper = bounds(lo_k)
    return lower.copy(), upper.copy(), coverage(lo_k)


def rank_upper_bound(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """LMArena's "Rank (UB)": ``1 + #{j : lower_j > upper_i}``, the number of models whose whole
    rating interval lies above model i's interval, plus one (FastChat ``elo_analysis``)."""
    lower, upper = np.asarray(lower), np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def prob_stronger(theta: np.ndarray) -> np.ndarray:
    """``P[i, j] = P(theta_i > theta_j)`` from joint draws (diagonal NaN)."""
    theta = np.asarray(theta)
    out = np.stack([(theta[:, [i]] > theta).mean(axis=0) for i in range(theta.shape[1])])
    np.fill_diagonal(out, np.nan)
    return out
