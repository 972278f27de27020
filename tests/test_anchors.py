"""The benchmark's re-implementation of LMArena's style-controlled bootstrap
(``benchmarks/anchors/bootstrap_style.py``): its MLE against an independent fit, and its
bootstrap's reproducibility."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from anchors.bootstrap_style import (
    bootstrap_style,
    fit_style_mle,
    style_boards,
    style_rows,
)

from bayesarena.simulate import simulate_hierarchical_arena


def _contextual_votes(n: int = 6000, seed: int = 0, tie_share: float = 0.25):
    """Votes from ``P(a beats b) = sigmoid(theta_a - theta_b + beta . x)``, ``tie_share`` of
    them turned into ties at random."""
    rng = np.random.default_rng(seed)
    theta = np.array([0.8, 0.3, 0.0, -0.2, -0.9])
    beta = np.array([0.5, -0.3])
    a = rng.integers(0, 5, n)
    b = (a + rng.integers(1, 5, n)) % 5
    raw = rng.normal(size=(n, 2))
    x = (raw - raw.mean(0)) / raw.std(0)
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + x @ beta)))
    won = rng.random(n) < p
    winner = np.where(rng.random(n) < tie_share, "tie", np.where(won, "model_a", "model_b"))
    return style_rows(tuple("abcde"), a, b, raw, winner), theta, beta


def test_style_mle_equals_an_independent_fit():
    """Newton on the bincount Hessian reaches the optimum BFGS finds on a dense one-hot
    design with ties as half wins; without ties the fitted coefficients are near the truth
    (within 4 of their standard errors from the inverse Fisher information of the dense
    design; random ties would pull them towards 0)."""
    rows, _, _ = _contextual_votes()
    params, _ = fit_style_mle(rows)
    n, m = len(rows.y), rows.n_models
    design = np.zeros((n, m))
    design[np.arange(n), rows.a] += 1.0
    design[np.arange(n), rows.b] -= 1.0
    design = np.hstack([design[:, 1:], rows.x])  # model 0 as the anchor: identified

    def nll(w):
        e = design @ w
        return -np.mean(rows.y * log_expit(e) + (1 - rows.y) * log_expit(-e))

    ref = minimize(nll, np.zeros(design.shape[1]), method="BFGS", options={"gtol": 1e-10}).x
    ref_theta = np.concatenate([[0.0], ref[: m - 1]])
    np.testing.assert_allclose(params[:m], ref_theta - ref_theta.mean(), atol=1e-5)
    np.testing.assert_allclose(params[m:], ref[m - 1:], atol=1e-5)

    rows, _, beta = _contextual_votes(tie_share=0.0)
    params, _ = fit_style_mle(rows)
    design[:, m - 1:] = rows.x
    ref = np.concatenate([params[1:m] - params[0], params[m:]])  # in the anchored design
    e = design @ ref
    p = 1.0 / (1.0 + np.exp(-e))
    info = design.T @ (design * (p * (1 - p))[:, None])
    se = np.sqrt(np.diag(np.linalg.inv(info)))[m - 1:]
    assert np.all(np.abs(params[m:] - beta) < 4 * se)


def test_bootstrap_is_reproducible_across_worker_counts():
    """Each refit draws from its own seed, so one worker or two give the same board, and the
    interval brackets the full-data estimate."""
    rows, _, _ = _contextual_votes(n=3000, seed=1)
    one = bootstrap_style(rows, n_boot=12, seed=3, workers=1)
    two = bootstrap_style(rows, n_boot=12, seed=3, workers=2)
    np.testing.assert_array_equal(one.lower, two.lower)
    np.testing.assert_array_equal(one.style_upper, two.style_upper)
    assert np.all(one.lower <= one.rating) and np.all(one.rating <= one.upper)
    assert np.all(one.lower < one.upper)


def test_style_boards_read_the_arena_layout():
    """From LMArena's layout (conv_metadata, multi-tag categories): one board per tag over
    the models with votes in it, boards that rank the models as the simulation does
    (Spearman > 0.9 over 8 models and 20,000 votes), and a positive coefficient for length,
    the simulation's largest. (Its size is not checked: ties counted as half wins and the
    simulated random and adversarial voters pull it towards 0.)"""
    frame, truth = simulate_hierarchical_arena(8, 20_000, categories=3, n_voters=500, seed=4)
    overall, boards = style_boards(frame, n_boot=4, workers=1)
    assert set(boards) == set(truth.categories)
    true = truth.ratings()
    assert spearmanr(overall.rating, true.reindex(overall.models))[0] > 0.9
    by_category = truth.category_ratings()
    for tag, board in boards.items():
        assert spearmanr(board.rating, by_category[tag].reindex(board.models))[0] > 0.9
    assert overall.style_coef[0] > 0 and truth.style_coef[0] == max(truth.style_coef)
