"""The bootstrap Bradley-Terry method LMArena used before ``arena-rank``, written from its
description.

Source: the Chatbot Arena paper (Chiang et al. 2024, "Chatbot Arena: An Open Platform for
Evaluating LLMs by Human Preference", ICML, Sec. 5-6) and LMArena's public analysis notebook /
FastChat ``fastchat/serve/monitor/elo_analysis.py`` (``compute_mle_elo`` and
``get_bootstrap_result``). The method, as described there:

1. Point estimate: the maximum-likelihood Bradley-Terry fit by an unpenalised logistic
   regression on the pair table, a tie (both-bad included) counting as half a win for each side
   (FastChat counts every win twice and every tie once on each side, which is the same
   likelihood up to a factor 2). With ``d = theta_i - theta_j`` the log-likelihood is

       l(theta) = sum_pairs (w_i + t/2) log sigmoid(d) + (w_j + t/2) log sigmoid(-d).

   Ratings are reported as ``1000 + 400/ln(10) * theta`` (FastChat's ``SCALE = 400, BASE = 10,
   INIT_RATING = 1000``); here the strengths sum to zero (FastChat shifted them so that one
   reference model had a fixed rating, which moves every rating by the same constant).
2. Intervals: 100 bootstrap replicates. Each resamples the votes with replacement, which for
   this model is a multinomial draw of the (pair, outcome) counts with the total fixed, refits
   the MLE, and the 2.5% and 97.5% quantiles of each model's bootstrap ratings are its 95%
   interval.

The fit here works on the (pair, outcome) cells, never on per-vote rows: cost grows with the
number of pairs, not votes. Each fit is Newton's method (analytic gradient and Hessian, a
Cholesky solve with ``scipy.linalg``, step halving; the log-likelihood is concave); the
sum-to-zero gauge is fixed by adding ``(sum theta)^2 / 2`` to the objective, which leaves
the MLE unchanged (the likelihood is flat along ``theta + c``) and makes the Hessian positive
definite. Bootstrap refits start from the full-data MLE.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit, log_expit

#: Ratings are ``BASE_RATING + ELO_PER_LOGIT * theta`` (FastChat: 400 / ln 10, 1000).
ELO_PER_LOGIT = 400.0 / np.log(10.0)
BASE_RATING = 1000.0

_WIN_A = "model_a"
_WIN_B = "model_b"


class PairTable(NamedTuple):
    """Outcome counts per unordered pair ``(i, j)``, ``i < j`` (ties include both-bad)."""

    models: tuple[str, ...]
    i: np.ndarray  # int64 (n_pairs,)
    j: np.ndarray  # int64 (n_pairs,)
    counts: np.ndarray  # float64 (n_pairs, 3): wins_i, wins_j, ties

    @property
    def n_models(self) -> int:
        return len(self.models)


class BootstrapBT(NamedTuple):
    """Ratings (Elo scale) and bootstrap intervals, aligned with ``models``."""

    models: tuple[str, ...]
    rating: np.ndarray  # the full-data MLE
    lower: np.ndarray
    upper: np.ndarray
    boot_ratings: np.ndarray  # (n_boot, n_models)
    iterations: int  # Newton iterations summed over all fits


def pair_table(votes: pd.DataFrame) -> PairTable:
    """Count ``model_a, model_b, winner`` votes per unordered pair.

    ``winner`` is ``model_a`` / ``model_b``; anything else (``tie``, ``tie (bothbad)``) is a tie.
    """
    codes, uniques = pd.factorize(pd.concat([votes["model_a"], votes["model_b"]],
                                            ignore_index=True), sort=True)
    n_votes, n_models = len(votes), len(uniques)
    a, b = codes[:n_votes].astype(np.int64), codes[n_votes:].astype(np.int64)
    winner = votes["winner"].to_numpy()
    outcome = np.full(n_votes, 2, dtype=np.int64)  # 0: a won, 1: b won, 2: tie
    outcome[winner == _WIN_A] = 0
    outcome[winner == _WIN_B] = 1
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # orient to (lo, hi): a win for a is a win for lo when a < b
    swapped = a > b
    oriented = np.where(swapped & (outcome < 2), 1 - outcome, outcome)
    key = (lo * n_models + hi) * 3 + oriented
    flat = np.bincount(key, minlength=n_models * n_models * 3).reshape(-1, 3)
    pairs = np.flatnonzero(flat.sum(axis=1))
    return PairTable(tuple(str(m) for m in uniques), pairs // n_models, pairs % n_models,
                     flat[pairs].astype(np.float64))


def fit_mle(table: PairTable, counts: np.ndarray | None = None, init: np.ndarray | None = None,
            *, gtol: float = 1e-10, max_iter: int = 100) -> tuple[np.ndarray, int]:
    """Maximum-likelihood strengths (logit scale, sum zero) with ties as half wins.

    ``counts`` replaces ``table.counts`` (a bootstrap replicate); ``init`` is the starting
    point. Newton's method with step halving on the objective scaled by the number of votes;
    stops when the largest gradient entry is below ``gtol``. Returns ``(theta, iterations)``.
    """
    counts = table.counts if counts is None else counts
    i, j, n = table.i, table.j, table.n_models
    s_i = counts[:, 0] + 0.5 * counts[:, 2]  # "wins" of i, ties as half
    n_pair = counts.sum(axis=1)
    total = n_pair.sum()

    # flat indices of the Hessian entries each pair touches: (i,i), (j,j), (i,j), (j,i)
    diag_i, diag_j, off_ij, off_ji = i * n + i, j * n + j, i * n + j, j * n + i

    def objective(theta: np.ndarray) -> float:
        d = theta[i] - theta[j]
        nll = -(s_i @ log_expit(d) + (n_pair - s_i) @ log_expit(-d))
        return nll / total + 0.5 * theta.sum() ** 2

    def gradient_hessian(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = expit(theta[i] - theta[j])
        g_d = (n_pair * p - s_i) / total  # d(-l / total) / d(theta_i - theta_j), per pair
        grad = np.bincount(i, g_d, minlength=n) - np.bincount(j, g_d, minlength=n)
        w = n_pair * p * (1.0 - p) / total
        h = (np.bincount(diag_i, w, minlength=n * n) + np.bincount(diag_j, w, minlength=n * n)
             - np.bincount(off_ij, w, minlength=n * n) - np.bincount(off_ji, w, minlength=n * n))
        return grad + theta.sum(), h.reshape(n, n) + 1.0  # + the gauge term's derivatives

    theta = np.zeros(n) if init is None else np.array(init, dtype=float)
    f, iterations = objective(theta), 0
    while iterations < max_iter:
        iterations += 1
        grad, hess = gradient_hessian(theta)
        step = cho_solve(cho_factor(hess), grad)
        t = 1.0  # Newton step, halved until the (convex) objective decreases
        while (f_new := objective(theta - t * step)) > f and t > 1e-10:
            t *= 0.5
        theta, f_old, f = theta - t * step, f, f_new
        if np.max(np.abs(grad)) < gtol or f_old - f < 1e-15:
            break
    return theta - theta.mean(), iterations


def bootstrap_bt(votes: pd.DataFrame | PairTable, *, n_boot: int = 100, level: float = 0.95,
                 seed: int = 0) -> BootstrapBT:
    """Bradley-Terry MLE with ``n_boot`` multinomial-bootstrap refits (see the module docstring).

    ``votes`` is a per-vote frame (``model_a, model_b, winner``) or a :class:`PairTable`.
    The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the bootstrap
    ratings; the point estimate is the full-data MLE.
    """
    table = votes if isinstance(votes, PairTable) else pair_table(votes)
    theta, iters = fit_mle(table)
    rng = np.random.default_rng(seed)
    flat = table.counts.ravel()
    total = int(flat.sum())
    boot = np.empty((n_boot, table.n_models))
    for r in range(n_boot):
        counts = rng.multinomial(total, flat / total).reshape(table.counts.shape)
        boot[r], nit = fit_mle(table, counts.astype(np.float64), init=theta)
        iters += nit
    q = (1.0 - level) / 2.0
    elo = BASE_RATING + ELO_PER_LOGIT * boot
    return BootstrapBT(
        table.models, BASE_RATING + ELO_PER_LOGIT * theta,
        np.quantile(elo, q, axis=0), np.quantile(elo, 1.0 - q, axis=0), elo, iters,
    )
