"""LMArena's style-controlled leaderboard and its category boards as computed before
``arena-rank``: the old method for what ``models/arena.toml`` publishes, written from its
description.

Source: LMArena's blog post "Does style matter? Disentangling style and substance in Chatbot
Arena" (August 2024) and FastChat ``fastchat/serve/monitor/elo_analysis.py``
(``construct_style_matrices``, ``fit_mle_elo``, ``get_bootstrap_result_style_control``;
checked against the code, not copied). The method:

1. Features: per vote, for length, headers, lists and bold, ``(s_a - s_b) / (s_a + s_b + 1)``
   (:func:`bayesarena.style.style_matrix`, the same reader the package uses), z-scored over
   the votes being fitted (``ddof = 0``).
2. Point estimate: the contextual Bradley-Terry model
   ``P(a beats b) = sigmoid(theta_a - theta_b + beta . x)``, fitted by maximum likelihood
   with a tie (both-bad included) counted as half a win for each side (FastChat duplicates
   every vote and counts a tie as one win each way: the same likelihood up to a factor 2).
3. Intervals: 100 bootstrap refits, each on the votes resampled with replacement; the 2.5% and
   97.5% quantiles of each model's bootstrap ratings are its 95% interval.
4. Category boards: the same three steps on the votes that carry the category's tag (features
   z-scored again over them), one board per tag.

Ratings are ``1000 + 400/ln(10) * theta`` with the strengths summing to zero, as in
:mod:`anchors.bootstrap_bt`.

Written to be fast, so that the comparison is with the method and not with a slow
implementation: FastChat fits with scikit-learn's ``LogisticRegression`` (L-BFGS, with its
default ridge ``C = 1``, negligible at these counts) on a dense design of one column per
model; here each fit is Newton's method with the analytic gradient and Hessian built by
``np.bincount`` over the rows (no dense design), a Cholesky solve and step halving, and each
bootstrap refit starts from the full-data MLE. A resample is drawn as per-vote weights (how
often each vote was drawn), which is the same likelihood as the resampled rows. The refits
of every board run in one pool of spawned worker processes, one per core, started once (a
later FastChat version used a ``multiprocessing`` pool as well).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import NamedTuple

import numpy as np
import pandas as pd
from anchors.bootstrap_bt import BASE_RATING, ELO_PER_LOGIT
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit, log_expit


class StyleRows(NamedTuple):
    """One row per vote: model codes, z-scored style features (A minus B) and A's score
    (1 win, 0 loss, 0.5 tie)."""

    models: tuple[str, ...]
    a: np.ndarray  # int64 (n,)
    b: np.ndarray  # int64 (n,)
    x: np.ndarray  # float64 (n, F)
    y: np.ndarray  # float64 (n,)

    @property
    def n_models(self) -> int:
        return len(self.models)


class StyleBoard(NamedTuple):
    """Style-controlled ratings (Elo scale) with bootstrap intervals, aligned with ``models``,
    and the style coefficients (full-data MLE and bootstrap quantiles)."""

    models: tuple[str, ...]
    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    style_coef: np.ndarray
    style_lower: np.ndarray
    style_upper: np.ndarray
    iterations: int  # Newton iterations summed over all fits


def style_rows(models: tuple[str, ...], a: np.ndarray, b: np.ndarray, raw: np.ndarray,
               winner: np.ndarray) -> StyleRows:
    """:class:`StyleRows` from model codes into ``models``, raw features and the winner
    labels (``model_a``, ``model_b``; anything else is a tie), z-scoring the features over
    these votes."""
    sd = raw.std(axis=0)
    x = (raw - raw.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    y = np.where(winner == "model_a", 1.0, np.where(winner == "model_b", 0.0, 0.5))
    return StyleRows(models, a.astype(np.int64), b.astype(np.int64), x, y)


def fit_style_mle(rows: StyleRows, weights: np.ndarray | None = None,
                  init: np.ndarray | None = None, *, gtol: float = 1e-9,
                  max_iter: int = 100) -> tuple[np.ndarray, int]:
    """Maximum-likelihood ``(theta, beta)`` concatenated (``theta`` sums to zero), and the
    number of Newton iterations.

    Minimises ``-sum_r w_r [y_r log s(e_r) + (1 - y_r) log s(-e_r)] / sum(w) + (sum theta)^2
    / 2`` with ``e_r = theta_a - theta_b + beta . x_r``; the gauge term leaves the MLE
    unchanged (the likelihood is flat along ``theta + c``) and makes the Hessian positive
    definite. Stops when the largest gradient entry is below ``gtol``.
    """
    m, f = rows.n_models, rows.x.shape[1]
    w = np.ones(len(rows.y)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    a, b, x, y = rows.a, rows.b, rows.x, rows.y
    pair = a * m + b

    def objective(params: np.ndarray) -> float:
        e = params[a] - params[b] + x @ params[m:]
        nll = -(w @ (y * log_expit(e) + (1.0 - y) * log_expit(-e)))
        return float(nll + 0.5 * params[:m].sum() ** 2)

    def gradient_hessian(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = expit(params[a] - params[b] + x @ params[m:])
        g = w * (p - y)
        h = w * p * (1.0 - p)
        grad = np.concatenate([np.bincount(a, g, minlength=m) - np.bincount(b, g, minlength=m)
                               + params[:m].sum(), x.T @ g])
        by_pair = np.bincount(pair, h, minlength=m * m).reshape(m, m)
        h_tt = np.diag(by_pair.sum(axis=1) + by_pair.sum(axis=0)) - by_pair - by_pair.T + 1.0
        hx = h[:, None] * x
        h_tb = np.stack([np.bincount(a, hx[:, k], minlength=m)
                         - np.bincount(b, hx[:, k], minlength=m) for k in range(f)], axis=1)
        hess = np.block([[h_tt, h_tb], [h_tb.T, x.T @ hx]])
        return grad, hess

    params = np.zeros(m + f) if init is None else np.array(init, dtype=float)
    value, iterations = objective(params), 0
    while iterations < max_iter:
        iterations += 1
        grad, hess = gradient_hessian(params)
        if np.max(np.abs(grad)) < gtol:
            break
        step = cho_solve(cho_factor(hess), grad)
        t = 1.0  # Newton step, halved until the (convex) objective decreases
        while (new := objective(params - t * step)) > value and t > 1e-10:
            t *= 0.5
        params, old, value = params - t * step, value, new
        if old - value < 1e-15:
            break
    params[:m] -= params[:m].mean()
    return params, iterations


_BOARDS: Sequence[StyleRows] = ()  # the votes of every board, in each worker process


def _set_boards(boards: Sequence[StyleRows]) -> None:
    global _BOARDS
    _BOARDS = boards


def _refit(task: tuple[int, int, np.ndarray]) -> tuple[np.ndarray, int]:
    """One bootstrap refit in a worker: board ``k``'s votes resampled with ``seed``, Newton
    started at ``init``."""
    k, seed, init = task
    rows = _BOARDS[k]
    n = len(rows.y)
    weights = np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n)
    return fit_style_mle(rows, weights.astype(np.float64), init)


def bootstrap_boards(boards: Sequence[StyleRows], *, n_boot: int = 100, level: float = 0.95,
                     seed: int = 0, workers: int | None = None) -> list[StyleBoard]:
    """Style-controlled Bradley-Terry MLE with ``n_boot`` bootstrap refits for each board
    (module docstring); board ``k`` draws its resamples from ``seed + k``. The refits of all
    boards share one pool of ``workers`` processes (default: one per core), started once."""
    fits = [fit_style_mle(rows) for rows in boards]
    tasks = [(k, int(s), fits[k][0]) for k in range(len(boards))
             for s in np.random.SeedSequence(seed + k).generate_state(n_boot)]
    workers = workers or len(os.sched_getaffinity(0))
    if workers > 1:  # spawned, not forked: the parent may run JAX's threads
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                 initializer=_set_boards, initargs=(tuple(boards),)) as pool:
            results = list(pool.map(_refit, tasks,
                                    chunksize=max(1, len(tasks) // (4 * workers))))
    else:
        _set_boards(tuple(boards))
        try:
            results = [_refit(t) for t in tasks]
        finally:
            _set_boards(())
    out, q = [], (1.0 - level) / 2.0
    for k, rows in enumerate(boards):
        mine = results[k * n_boot:(k + 1) * n_boot]
        boot = np.stack([r[0] for r in mine])
        params, m = fits[k][0], rows.n_models
        elo = BASE_RATING + ELO_PER_LOGIT * boot[:, :m]
        out.append(StyleBoard(
            rows.models, BASE_RATING + ELO_PER_LOGIT * params[:m],
            np.quantile(elo, q, axis=0), np.quantile(elo, 1.0 - q, axis=0), params[m:],
            np.quantile(boot[:, m:], q, axis=0), np.quantile(boot[:, m:], 1.0 - q, axis=0),
            fits[k][1] + sum(r[1] for r in mine)))
    return out


def bootstrap_style(rows: StyleRows, *, n_boot: int = 100, level: float = 0.95, seed: int = 0,
                    workers: int | None = None) -> StyleBoard:
    """:func:`bootstrap_boards` for one board."""
    return bootstrap_boards([rows], n_boot=n_boot, level=level, seed=seed, workers=workers)[0]


def style_boards(votes: pd.DataFrame, *, n_boot: int = 100, seed: int = 0,
                 workers: int | None = None) -> tuple[StyleBoard, dict[str, StyleBoard]]:
    """The overall style-controlled board and one per category tag, from a per-vote frame
    (``model_a, model_b, winner, conv_metadata`` and, for category boards, ``category``: a
    tag or a list of tags per vote). A category whose votes leave a model out rates only the
    models it has."""
    import bayesarena as ba
    from bayesarena.style import style_matrix

    raw, _ = style_matrix(ba.read_votes(votes[["model_a", "model_b", "winner",
                                               "conv_metadata"]]))
    codes, uniques = pd.factorize(pd.concat([votes["model_a"], votes["model_b"]],
                                            ignore_index=True), sort=True)
    n = len(votes)
    a, b = codes[:n], codes[n:]
    winner = votes["winner"].to_numpy()
    models = tuple(str(u) for u in uniques)
    boards = [style_rows(models, a, b, raw, winner)]
    tags_of_board = []
    if "category" in votes.columns:
        tags = (votes["category"].reset_index(drop=True)
                .map(lambda t: [t] if isinstance(t, str) else list(t)).explode().dropna())
        for tag in sorted(tags.unique()):
            keep = np.zeros(n, dtype=bool)
            keep[tags.index[tags.to_numpy() == tag]] = True  # row positions
            present = np.unique(np.concatenate([a[keep], b[keep]]))
            recode = np.full(len(models), -1)
            recode[present] = np.arange(len(present))
            boards.append(style_rows(tuple(models[i] for i in present), recode[a[keep]],
                                     recode[b[keep]], raw[keep], winner[keep]))
            tags_of_board.append(str(tag))
    overall, *by_tag = bootstrap_boards(boards, n_boot=n_boot, seed=seed, workers=workers)
    return overall, dict(zip(tags_of_board, by_tag, strict=True))
