"""The arena-model simulator: designs, truths and outcomes against the model's own formulas.

Monte Carlo checks compare a realised frequency with its expectation within ``Z`` binomial
standard errors (fixed seeds, so they are deterministic; ``Z = 4.5`` makes a false alarm about
1 in 150,000 per comparison were the seed to change).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayesarena import read_votes
from bayesarena.likelihood import OutcomeParams, outcome_probs
from bayesarena.simulate import (
    ADVERSARIAL_KAPPA,
    DEFAULT_STYLE_COEF,
    RANDOM_KAPPA,
    WINNER_LABELS,
    ArenaDesign,
    HierarchicalTruth,
    arena_frame,
    draw_prior_truth,
    draw_truth,
    simulate_arena,
    simulate_design,
    simulate_hierarchical_arena,
    simulate_outcomes,
    vote_probs,
)

Z = 4.5
NO_STYLE = (0.0, 0.0, 0.0, 0.0)


def assert_rate(hits: np.ndarray, expected: float | np.ndarray) -> None:
    """Mean of 0/1 ``hits`` equals the mean of ``expected`` within ``Z`` standard errors."""
    hits = np.asarray(hits, dtype=float)
    p = np.broadcast_to(np.asarray(expected, dtype=float), hits.shape)
    se = np.sqrt(np.sum(p * (1 - p))) / len(hits)
    assert abs(hits.mean() - p.mean()) < Z * se, (hits.mean(), p.mean(), se)


def reference_probs(
    truth: HierarchicalTruth, design: ArenaDesign, kappa: np.ndarray
) -> np.ndarray:
    """The arena likelihood written out from the model note in plain numpy (not the JAX code)."""
    s_a = truth.theta[design.model_a] + (design.tags * truth.delta[design.model_a]).sum(1)
    s_b = truth.theta[design.model_b] + (design.tags * truth.delta[design.model_b]).sum(1)
    d = s_a - s_b + truth.position
    m = (s_a + s_b) / 2
    e = design.x @ truth.style_coef if design.x.shape[1] else 0.0
    num = np.exp(d / 2) + np.exp(-d / 2)
    p_dec = num / (num + np.exp(truth.log_nu))
    p_a = expit(kappa * (d + e))
    share = expit(truth.bothbad_intercept + truth.bothbad_slope * m)
    return np.stack([p_dec * p_a, p_dec * (1 - p_a), (1 - p_dec) * (1 - share),
                     (1 - p_dec) * share], axis=1)


def two_model_truth(design, theta, **options) -> HierarchicalTruth:
    options = {"position": 0.0, "style_coef": NO_STYLE} | options
    truth = draw_truth(design, rng=1, **options)
    return truth._replace(theta=np.asarray(theta, dtype=float))


@pytest.mark.parametrize("tie_rate", [0.15, 0.30])
def test_realised_tie_rate_matches_configured(tie_rate):
    df, truth = simulate_hierarchical_arena(20, 60_000, tie_rate=tie_rate, bothbad_share=0.5,
                                            metadata=False, seed=5)
    ties = df["winner"].isin(["tie", "tie (bothbad)"]).to_numpy()
    assert_rate(ties, tie_rate)
    assert_rate(df.loc[ties, "winner"].eq("tie (bothbad)").to_numpy(), 0.5)
    assert truth.bothbad_slope == -1.0


def test_plain_votes_follow_bradley_terry_davidson():
    """No voters (kappa = 1), beta = 0, gamma = 0, no categories: exactly BT-Davidson with
    both-bad."""
    design = simulate_design(3, 90_000, rng=2)
    truth = two_model_truth(design, [0.8, -0.2, -0.6])
    params = OutcomeParams(log_nu=truth.log_nu, bothbad_intercept=truth.bothbad_intercept,
                           bothbad_slope=truth.bothbad_slope)
    d = truth.theta[design.model_a] - truth.theta[design.model_b]
    m = (truth.theta[design.model_a] + truth.theta[design.model_b]) / 2
    expected = np.asarray(outcome_probs(d, m, ties="davidson", both_bad="modelled",
                                        params=params))
    np.testing.assert_allclose(vote_probs(truth, design), expected, rtol=1e-12, atol=1e-15)

    outcome = simulate_outcomes(truth, design, 3)
    for a, b in [(0, 1), (1, 0), (2, 0)]:
        cell = (design.model_a == a) & (design.model_b == b)
        for k in range(4):
            assert_rate(outcome[cell] == k, expected[cell][0, k])


def test_vote_probs_is_the_arena_likelihood_with_categories_style_and_voters():
    design = simulate_design(6, 4000, categories=3, n_voters=300, style=True, rng=4)
    truth = draw_truth(design, rng=5, position=0.3, style_coef=(0.6, -0.2, 0.3, 0.1),
                       category_sd=150.0, random_voter_share=0.1, adversarial_voter_share=0.1)
    kappa = truth.vote_kappa(design)
    assert (kappa < 0).any() and (kappa == 0).any()  # adversarial and random voters present
    probs = vote_probs(truth, design)
    np.testing.assert_allclose(probs, reference_probs(truth, design, kappa), rtol=1e-10)
    pooled = truth.vote_kappa(design, min_votes=20)
    np.testing.assert_allclose(vote_probs(truth, design, kappa=pooled),
                               reference_probs(truth, design, pooled), rtol=1e-10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)
    # the categories and the style really move the probabilities
    plain = truth._replace(delta=np.zeros_like(truth.delta), style_coef=np.zeros(4))
    assert np.abs(vote_probs(truth, design) - vote_probs(plain, design)).max() > 0.1


def test_outcomes_follow_vote_probs_within_groups():
    """Decisive wins of a split by the sign of the length feature: observed = predicted."""
    design = simulate_design(4, 60_000, categories=2, style=True, rng=6)
    truth = two_model_truth(design, [0.3, 0.1, -0.1, -0.3], style_coef=(0.8, 0, 0, 0),
                            position=0.1)
    probs = vote_probs(truth, design)
    outcome = simulate_outcomes(truth, design, 7)
    decisive = outcome <= 1
    p_a_given_decisive = probs[:, 0] / (probs[:, 0] + probs[:, 1])
    longer_a = design.x[:, 0] > 0
    for group in (longer_a, ~longer_a):
        sel = group & decisive
        assert_rate(outcome[sel] == 0, p_a_given_decisive[sel])
    gap = (outcome[longer_a & decisive] == 0).mean() - (outcome[~longer_a & decisive] == 0).mean()
    assert gap > 0.2  # length helps with beta = 0.8


def test_random_and_adversarial_voters():
    """Gap 3 logits: random voters (kappa 0) pick the stronger model half the time,
    adversarial ones (kappa -1) the weaker one mostly, drawn ones (kappa ~ 1) the stronger."""
    design = simulate_design(2, 60_000, n_voters=400, rng=8)
    truth = two_model_truth(design, [1.5, -1.5], random_voter_share=0.25,
                            adversarial_voter_share=0.1)
    assert (truth.voter_kappa[truth.voter_kind == 1] == RANDOM_KAPPA).all()
    assert (truth.voter_kappa[truth.voter_kind == 2] == ADVERSARIAL_KAPPA).all()
    outcome = simulate_outcomes(truth, design, 9)
    decisive = outcome <= 1
    stronger_wins = np.where(design.model_a == 0, outcome == 0, outcome == 1)
    kind = truth.voter_kind[design.voter]
    expected = expit(3.0 * truth.voter_kappa[design.voter])
    for k in (0, 1, 2):
        sel = decisive & (kind == k)
        assert_rate(stronger_wins[sel], expected[sel])
    assert_rate(stronger_wins[decisive & (kind == 1)], 0.5)
    assert_rate(stronger_wins[decisive & (kind == 2)], expit(-3.0))
    drawn = stronger_wins[decisive & (kind == 0)].mean()
    assert drawn > 0.85 > stronger_wins[decisive & (kind == 1)].mean() + 0.3
    assert stronger_wins[decisive & (kind == 2)].mean() < 0.1


def test_position_effect_raises_model_a_win_rate():
    design = simulate_design(2, 60_000, rng=10)
    gamma = 0.4
    truth = two_model_truth(design, [0.0, 0.0], position=gamma)
    outcome = simulate_outcomes(truth, design, 11)
    decisive = outcome <= 1
    assert_rate(outcome[decisive] == 0, expit(gamma))
    nu = np.exp(truth.log_nu)
    p_decisive = 2 * np.cosh(gamma / 2) / (2 * np.cosh(gamma / 2) + nu)
    assert_rate(outcome == 0, p_decisive * expit(gamma))
    se = 0.5 / np.sqrt(decisive.sum())
    assert (outcome[decisive] == 0).mean() > 0.5 + 10 * se


def test_features_are_zscored_and_reproduced_from_conv_metadata():
    design = simulate_design(8, 5000, categories=2, n_voters=100, style=True, rng=12)
    np.testing.assert_allclose(design.x.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(design.x.std(0), 1.0, rtol=1e-12)
    assert design.x.shape == (5000, 4)
    assert (np.abs(design.x) > 0.5).mean(0).min() > 0.2  # real spread, not a constant

    df = arena_frame(design, np.zeros(design.n_votes, dtype=int))
    meta = df["conv_metadata"]
    assert set(meta.iloc[0]) == {
        "sum_assistant_a_tokens", "sum_assistant_b_tokens", "header_count_a",
        "header_count_b", "list_count_a", "list_count_b", "bold_count_a", "bold_count_b"}
    assert list(meta.iloc[0]["header_count_a"]) == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert list(meta.iloc[0]["list_count_b"]) == ["ordered", "unordered"]
    assert list(meta.iloc[0]["bold_count_a"]) == ["**", "__"]

    def side(s):
        return np.array([[md[f"sum_assistant_{s}_tokens"],
                          sum(md[f"header_count_{s}"].values()),
                          sum(md[f"list_count_{s}"].values()),
                          sum(md[f"bold_count_{s}"].values())] for md in meta], dtype=float)

    s_a, s_b = side("a"), side("b")
    raw = (s_a - s_b) / (s_a + s_b + 1)
    x = (raw - raw.mean(0)) / raw.std(0)
    np.testing.assert_allclose(x, design.x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(raw.mean(0), design.x_mean, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(raw.std(0), design.x_sd, rtol=1e-10)


def test_tags_primary_plus_extra():
    design = simulate_design(5, 40_000, categories=["coding", "math", "hard"],
                             multi_tag_rate=0.2, rng=13)
    n_tags = design.tags.sum(1)
    assert set(np.unique(n_tags)) == {1, 2}
    assert_rate(n_tags == 2, 0.2)
    for c in range(3):  # each tag: 1/3 primary + 0.2 * 2/3 * 1/2 extra
        assert_rate(design.tags[:, c], 1 / 3 + 0.2 / 3)
    labels = design.category_labels()
    assert all(isinstance(v, list) for v in labels)
    assert {tuple(v) for v in labels if len(v) == 2} >= {("coding", "hard"), ("coding", "math")}
    single = simulate_design(5, 100, categories=2, multi_tag_rate=0.0, rng=13)
    assert set(single.category_labels()) == {"coding", "math"}


def test_heavy_tailed_voters_documented_shares():
    """100,000 voters, 1,000,000 votes: ~5.7% have 20+ votes and cast ~80% of them."""
    design = simulate_design(10, 1_000_000, n_voters=100_000, rng=14)
    counts = design.voter_counts()
    assert counts.sum() == 1_000_000 and counts.min() >= 1
    heavy = counts >= 20
    assert abs(heavy.mean() - 0.057) < 0.004
    assert abs(counts[heavy].sum() / 1_000_000 - 0.80) < 0.02
    assert abs((counts == 1).mean() - 0.65) < 0.02
    assert counts.max() < 0.003 * 1_000_000  # the cut at +3 sd bounds the busiest voter


def test_anonymous_votes_and_pooling():
    design = simulate_design(4, 20_000, n_voters=1000, anonymous_rate=0.1, rng=15)
    anonymous = design.voter < 0
    assert_rate(anonymous, 0.1)
    truth = draw_truth(design, rng=16)
    kappa = truth.vote_kappa(design)
    assert (kappa[anonymous] == 1.0).all()
    np.testing.assert_array_equal(kappa[~anonymous],
                                  truth.voter_kappa[design.voter[~anonymous]])
    assert (kappa[~anonymous] != 1.0).all()  # drawn from N(1, 0.3^2)
    pooled = truth.vote_kappa(design, min_votes=20)
    light = np.append(design.voter_counts() < 20, True)[design.voter]  # -1 -> True
    assert (light & ~anonymous).any() and (~light).any()
    assert (pooled[light] == 1.0).all()
    np.testing.assert_array_equal(pooled[~light], kappa[~light])


def test_prior_truth_pools_light_voters_and_is_finite():
    design = simulate_design(5, 5000, categories=2, n_voters=500, style=True, rng=17)
    truth = draw_prior_truth(design, rng=18)
    light = design.voter_counts() < 20
    assert light.any() and (~light).any()
    assert (truth.voter_kappa[light] == 1.0).all()
    assert (truth.voter_kappa[~light] != 1.0).all()
    assert truth.voter_discrimination_scale > 0
    np.testing.assert_array_equal(truth.vote_kappa(design),
                                  truth.vote_kappa(design, min_votes=20))
    np.testing.assert_allclose(truth.theta.sum(), 0.0, atol=1e-12)
    np.testing.assert_allclose(truth.delta.sum(0), 0.0, atol=1e-12)
    probs = vote_probs(truth, design)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)


def test_draw_truth_defaults():
    design = simulate_design(40, 2000, categories=4, n_voters=200, rng=19)
    truth = draw_truth(design, rng=20)
    np.testing.assert_array_equal(truth.style_coef, DEFAULT_STYLE_COEF)
    assert truth.position == 0.05
    np.testing.assert_allclose(truth.theta.sum(), 0.0, atol=1e-12)
    np.testing.assert_allclose(truth.delta.sum(0), 0.0, atol=1e-12)
    assert 50 < truth.ratings().std() < 150  # rating_sd = 100 Elo
    assert truth.category_ratings().shape == (40, 4)
    kappa = truth.voter_kappa
    assert kappa.shape == (200,) and (truth.voter_kind == 0).all()
    assert truth.voter_discrimination_scale == 0.3
    # mean within Z standard errors; sd within Z of its standard error sd / sqrt(2 (n - 1))
    assert abs(kappa.mean() - 1.0) < Z * 0.3 / np.sqrt(200)
    assert abs(kappa.std(ddof=1) - 0.3) < Z * 0.3 / np.sqrt(2 * 199)


def test_same_seed_same_output():
    df1, t1 = simulate_hierarchical_arena(8, 3000, seed=4)
    df2, t2 = simulate_hierarchical_arena(8, 3000, seed=4)
    df3, _ = simulate_hierarchical_arena(8, 3000, seed=5)
    pd.testing.assert_frame_equal(df1, df2)
    for a, b in zip(t1, t2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not df1["winner"].equals(df3["winner"])


@pytest.mark.parametrize("min_votes", [20, None])
def test_hierarchical_arena_light_voters_vote_like_the_crowd(min_votes):
    """The winners use ``kappa = truth.vote_kappa(design, min_votes=min_votes)``: rebuilt from
    the documented steps with one generator, the frame is the same."""
    options = {"adversarial_voter_share": 0.3, "random_voter_share": 0.2}
    df, truth = simulate_hierarchical_arena(6, 3000, min_votes=min_votes, metadata=False,
                                            seed=23, **options)
    rng = np.random.default_rng(23)
    design = simulate_design(6, 3000, categories=("coding", "math", "creative_writing",
                                                  "hard_prompts"),
                             multi_tag_rate=0.2, n_voters=300, style=True, rng=rng)
    rebuilt = draw_truth(design, rng=rng, **options)
    np.testing.assert_array_equal(rebuilt.voter_kappa, truth.voter_kappa)
    kappa = truth.vote_kappa(design, min_votes=min_votes)
    light = design.voter_counts()[design.voter] < 20
    assert light.any() and (truth.voter_kappa[design.voter[light]] != 1.0).any()
    if min_votes is not None:
        assert (kappa[light] == 1.0).all()
    outcome = simulate_outcomes(truth, design, rng, kappa=kappa)
    pd.testing.assert_frame_equal(df, arena_frame(design, outcome, metadata=False))


def test_frame_format():
    df, truth = simulate_hierarchical_arena(12, 2000, seed=21)
    assert list(df.columns) == ["model_a", "model_b", "winner", "category", "judge",
                                "conv_metadata"]
    assert set(df["winner"]) <= set(WINNER_LABELS)
    assert (df["model_a"] != df["model_b"]).all()
    assert set(df["model_a"]) | set(df["model_b"]) == set(truth.models)
    assert isinstance(df["category"].iloc[0], list)
    assert all(re.fullmatch(r"voter-\d{5}", j) for j in df["judge"])
    assert isinstance(df["conv_metadata"].iloc[0], dict)

    plain, _ = simulate_hierarchical_arena(12, 2000, n_voters=0, style=False, multi_tag=False,
                                           seed=21)
    assert list(plain.columns) == ["model_a", "model_b", "winner", "category"]
    assert isinstance(plain["category"].iloc[0], str)
    lean, _ = simulate_hierarchical_arena(12, 2000, metadata=False, categories=0, seed=21)
    assert list(lean.columns) == ["model_a", "model_b", "winner", "judge"]


def test_frame_reads_back():
    df, _ = simulate_hierarchical_arena(6, 500, multi_tag=False, seed=22)
    votes = read_votes(df)
    assert len(votes.models) == 6
    assert {"category", "voter", "conv_metadata"} <= set(votes.optional_columns)


def test_simulate_arena_unchanged():
    """The original simulator draws what it drew before the arena model was added (values
    pinned from that version)."""
    df, truth = simulate_arena(5, 2000, seed=3)
    assert list(df.columns) == ["model_a", "model_b", "winner"]
    np.testing.assert_allclose(truth.theta, [1.303454, -1.342552, 0.369284, -0.198227,
                                             -0.131959], atol=1e-6)
    assert df["winner"].value_counts().to_dict() == {
        "model_a": 707, "model_b": 672, "tie": 311, "tie (bothbad)": 310}
