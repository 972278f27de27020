import json

import numpy as np
import pandas as pd
import pytest

from bayesarena.errors import UnknownModelError
from bayesarena.leaderboard import export, render
from bayesarena.recommend import recommend_pairs


def test_leaderboard_columns_and_order(small_posterior, small_arena):
    _, truth = small_arena
    table = small_posterior.leaderboard()
    assert list(table["rank"]) == list(range(1, len(truth.models) + 1))
    assert table["rating"].is_monotonic_decreasing
    assert set(table["model"]) == set(truth.models)
    assert (table["rating_lower"] < table["rating"]).all()
    assert (table["rating"] < table["rating_upper"]).all()
    assert table["rating"].mean() == pytest.approx(1000.0, abs=1e-6)  # sum-to-zero -> base
    assert table["p_top1"].sum() == pytest.approx(1.0)
    assert (table["rank_lower"] <= table["rank_median"]).all()
    assert (table["rank_median"] <= table["rank_upper"]).all()
    assert table["votes"].sum() == 2 * small_posterior.cells().counts.sum()
    # the true best model is inside the best model's joint rank interval
    best = truth.ratings().idxmax()
    row = table.set_index("model").loc[best]
    assert row["rank_lower"] == 1


def test_anchor_pins_model(small_posterior):
    model = small_posterior.models[3]
    table = small_posterior.leaderboard(anchor=model, base=1200.0).set_index("model")
    assert table.loc[model, "rating"] == pytest.approx(1200.0)
    assert table.loc[model, "rating_lower"] == pytest.approx(1200.0)
    plain = small_posterior.leaderboard().set_index("model")
    gaps = table["rating"] - plain["rating"]
    np.testing.assert_allclose(gaps, gaps.iloc[0])  # a shift: gaps between models unchanged
    with pytest.raises(UnknownModelError, match="no-such"):
        small_posterior.leaderboard(anchor="no-such")


def test_exports(small_posterior, tmp_path):
    table = small_posterior.leaderboard()
    csv = pd.read_csv(export(table, tmp_path / "lb.csv"))
    assert list(csv["model"]) == list(table["model"])
    payload = json.loads(export(table, tmp_path / "lb.json").read_text())
    assert payload["settings"]["prob"] == 0.95
    assert [r["model"] for r in payload["models"]] == list(table["model"])
    md = render(table, "md").splitlines()
    assert md[0].startswith("| Rank | Model | Rating")
    assert len(md) == 2 + len(table)


def test_win_probabilities(small_posterior):
    m = small_posterior.win_matrix()
    a, b = small_posterior.models[0], small_posterior.models[1]
    assert m.sel(model=a, opponent=b) == pytest.approx(small_posterior.win_probability(a, b))
    probs = small_posterior.outcome_probabilities(a, b)
    assert probs.sum() == pytest.approx(1.0)
    # with ties, P(a beats b) + P(b beats a) < 1
    assert float(m.sel(model=a, opponent=b) + m.sel(model=b, opponent=a)) < 1.0
    strong = small_posterior.prob_stronger_matrix()
    assert strong.sel(model=a, opponent=b) + strong.sel(model=b, opponent=a) == pytest.approx(1)
    with pytest.raises(UnknownModelError):
        small_posterior.win_probability(a, "nope")


def test_recommend_excludes_and_ranks(small_posterior):
    excluded = list(small_posterior.models[:3])
    pairs = recommend_pairs(small_posterior, 5, exclude=excluded)
    assert len(pairs) == 5
    assert not set(pairs["model_a"]) & set(excluded)
    assert not set(pairs["model_b"]) & set(excluded)
    assert pairs["score"].is_monotonic_decreasing  # greedy: each pick's score only falls
    assert (pairs["score"] > 0).all()
    assert len(set(zip(pairs["model_a"], pairs["model_b"], strict=True))) == 5
    with pytest.raises(UnknownModelError):
        recommend_pairs(small_posterior, 2, exclude=["nope"])


def test_eig_matches_monte_carlo(small_posterior):
    """EIG from the closed expectation equals a simulation estimate of I(y; theta)."""
    from bayesarena.recommend import expected_information_gain

    theta = small_posterior.theta_draws()
    params = small_posterior.outcome_param_draws()
    pair = np.array([[0, 1]])
    eig = expected_information_gain(small_posterior, pair, max_draws=theta.shape[0])[0]
    p = small_posterior.outcome_probs_from_draws(theta[:, [0]], theta[:, [1]], params)[:, 0, :]
    rng = np.random.default_rng(0)
    y = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(1).clip(max=3)
    # I = E[log p(y|theta) - log p(y)], estimated from simulated (theta, y)
    mc = np.log(p[np.arange(len(p)), y]) - np.log(p.mean(0)[y])
    se = mc.std() / np.sqrt(len(mc))
    assert abs(mc.mean() - eig) < 4 * se
