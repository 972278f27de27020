"""Active sampling: information estimators, policies, streaming updates, the arena simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare, spearmanr

import bayesarena as ba
from bayesarena import online
from bayesarena.arena_sim import ArenaConfig, ArenaSimulator, common_uniforms
from bayesarena.belief import GaussianBelief, belief_from_posterior, fisher_information
from bayesarena.errors import BayesArenaError, UnknownModelError
from bayesarena.information import (
    binary_target_information,
    eig_from_draws,
    eig_gaussian,
    rank_information,
    topk_information,
    topk_membership,
)
from bayesarena.likelihood import OutcomeParams, outcome_probs
from bayesarena.policies import arena_rule_weights, select_batch, win_probability_variance
from bayesarena.recommend import recommend_pairs
from bayesarena.scale import ELO_PER_LOGIT
from bayesarena.spec import load_spec

LIK = load_spec("bt-davidson").likelihood
OUTCOME = OutcomeParams(log_nu=-0.3, bothbad_intercept=0.0, bothbad_slope=-1.0)


@pytest.fixture(scope="module")
def belief() -> GaussianBelief:
    """Six models, a posterior about as wide as a few hundred votes per model leave."""
    rng = np.random.default_rng(0)
    n = 6
    mu = np.array([0.6, 0.5, 0.45, 0.0, -0.6, -0.95])
    a = rng.normal(size=(n, n)) * 0.05
    proj = np.eye(n) - 1.0 / n
    cov = proj @ (a @ a.T + np.diag(np.full(n, 0.02))) @ proj
    return GaussianBelief(tuple("abcdef"), mu - mu.mean(), cov, OUTCOME, LIK,
                          np.arange(15, dtype=float))


def _batch_means_se(values: np.ndarray, n_batches: int = 20) -> np.ndarray:
    """Standard error of a mean over axis 0 from batch means."""
    means = np.stack([b.mean(axis=0) for b in np.array_split(values, n_batches)])
    return means.std(axis=0, ddof=1) / np.sqrt(n_batches)


def test_gaussian_eig_equals_monte_carlo(belief):
    """Quadrature EIG == the draw average over 200,000 Gaussian draws, within 4 MC SE."""
    i, j = belief.pairs()
    theta = belief.sample(200_000, np.random.default_rng(1))
    p = np.asarray(outcome_probs(theta[:, i] - theta[:, j], 0.5 * (theta[:, i] + theta[:, j]),
                                 ties=LIK.ties, both_bad=LIK.both_bad, params=OUTCOME))
    # I = E[sum_y p log p] - sum_y pbar log pbar; the first term is a plain mean
    plogp = np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
    pbar = p.mean(axis=0)
    reference = plogp.mean(axis=0) - (pbar * np.log(pbar)).sum(axis=-1)
    se = _batch_means_se(plogp)  # the plug-in entropy's bias is ~1e-8 nats at this size
    assert np.all(np.abs(eig_gaussian(belief) - reference) < 4 * se + 1e-6)


def test_bias_correction_removes_small_sample_bias(belief):
    """From 20 draws of a wide posterior the corrected EIG is unbiased for the 200,000-draw
    value, while the plug-in (the entropy of a mean of draws) is biased low. Bias measured
    over 1,000 independent 20-draw estimates (4 MC SE)."""
    belief = belief._replace(cov=10.0 * belief.cov)
    i, j = belief.pairs()
    pairs = (i[:3], j[:3])
    big = eig_from_draws(belief.sample(200_000, np.random.default_rng(2)), OUTCOME, pairs, LIK)
    rng = np.random.default_rng(3)
    est = {True: [], False: []}
    for _ in range(1000):
        draws = belief.sample(20, rng)
        for corr in (True, False):
            est[corr].append(eig_from_draws(draws, OUTCOME, pairs, LIK, bias_correction=corr))
    for corr in (True, False):
        e = np.array(est[corr])
        bias, se = e.mean(axis=0) - big, e.std(axis=0, ddof=1) / np.sqrt(len(e))
        if corr:
            assert np.all(np.abs(bias) < 4 * se)
        else:  # the plug-in entropy of a mean is biased low (sum over the three pairs)
            assert bias.sum() < -4 * se.sum()


def test_closed_form_targets_match_monte_carlo(belief):
    """rank / topk closed forms against large-sample MC sums of binary-target MIs.

    The closed forms are first order in rho, the share of a target's variance one vote
    resolves (here below 0.1), and treat the vote as a Gaussian observation of the gap: we
    accept 20% relative error and require the same ordering of pairs (what selection uses).
    """
    i, j = belief.pairs()
    theta = belief.sample(200_000, np.random.default_rng(4))
    p = np.asarray(outcome_probs(theta[:, i] - theta[:, j], 0.5 * (theta[:, i] + theta[:, j]),
                                 ties=LIK.ties, both_bad=LIK.both_bad, params=OUTCOME))
    rank_mc = sum(binary_target_information(p, theta[:, a] > theta[:, c])
                  for a, c in zip(i, j, strict=True))
    closed = rank_information(belief)
    assert np.all(np.abs(closed - rank_mc) <= 0.2 * rank_mc + 2e-4)
    assert spearmanr(closed, rank_mc).statistic > 0.95
    # top-2: orders that straddle the boundary, weighted by the chance they decide membership
    member = topk_membership(belief, 2)
    rel = member[i] * (1 - member[j]) + member[j] * (1 - member[i])
    topk_mc = sum(r * binary_target_information(p, theta[:, a] > theta[:, c])
                  for a, c, r in zip(i, j, rel, strict=True))
    closed = topk_information(belief, 2)
    assert np.all(np.abs(closed - topk_mc) <= 0.2 * topk_mc + 2e-4)
    assert spearmanr(closed, topk_mc).statistic > 0.95


def test_topk_targets_the_boundary(belief):
    """With k = 2 the best pair straddles the top-2 boundary (models a/b vs c)."""
    i, j = belief.pairs()
    best = int(np.argmax(topk_information(belief, 2)))
    assert {int(i[best]), int(j[best])} & {0, 1} and {int(i[best]), int(j[best])} & {2}


def test_arena_rule_hand_computation():
    """Chiang et al. (2024) Eq. 9 on three pairs, by hand."""
    s = np.array([0.04, 0.01, 0.09])
    n = np.array([4.0, 1.0, 9.0])
    expected = np.array([0.1 - np.sqrt(0.04 / 5), 0.1 - np.sqrt(0.01 / 2), 0.1 - 0.3 / np.sqrt(10)])
    assert np.allclose(arena_rule_weights(s, n), expected, rtol=1e-12)
    # pairs never shown come first, in proportion to sqrt(S)
    w = arena_rule_weights(s, np.array([0.0, 3.0, 0.0]))
    assert np.allclose(w, [0.2, 0.0, 0.3])


def test_win_probability_variance_matches_draws(belief):
    theta = belief.sample(200_000, np.random.default_rng(5))
    i, j = belief.pairs()
    p = np.asarray(outcome_probs(theta[:, i] - theta[:, j], 0.5 * (theta[:, i] + theta[:, j]),
                                 ties=LIK.ties, both_bad=LIK.both_bad, params=OUTCOME))
    win = p[..., 0] + 0.5 * (p[..., 2] + p[..., 3])
    ref = win.var(axis=0)
    # the quadrature holds the mean strength fixed; it moves only the tie split (< 2%)
    assert np.allclose(win_probability_variance(belief), ref, rtol=0.05)


@pytest.mark.parametrize("objective", ["eig", "rank", "topk", "thompson", "arena", "uniform",
                                       {"topk": 0.5, "eig": 0.5}])
def test_batches_respect_exclusions_and_budgets(belief, objective):
    rng = np.random.default_rng(6)
    exclude = np.array([False, True, False, False, False, False])
    budget = np.array([3, 10, 10, 10, 10, 10])
    batch = select_batch(belief, 12, objective=objective, rng=rng, exclude=exclude,
                         budget=budget, top_k=2, floor=0.2)
    used = np.concatenate([batch.model_a, batch.model_b])
    assert not np.isin(1, used)
    assert np.sum(used == 0) <= 3
    assert np.all(batch.model_a < batch.model_b)


def test_exploration_floor(belief):
    """Floor picks: Binomial(n, floor) of them, uniform over the allowed pairs."""
    rng = np.random.default_rng(7)
    exclude = np.array([False, False, False, False, False, True])
    n, floor = 6000, 0.3
    batch = select_batch(belief, n, objective="topk", rng=rng, floor=floor, top_k=2,
                         exclude=exclude)
    is_floor = batch.source == "floor"
    sd = np.sqrt(n * floor * (1 - floor))
    assert abs(is_floor.sum() - n * floor) < 4 * sd
    counts = np.bincount(batch.pair[is_floor], minlength=15)
    i, j = belief.pairs()
    allowed = ~exclude[i] & ~exclude[j]
    assert np.all(counts[~allowed] == 0)
    assert chisquare(counts[allowed]).pvalue > 1e-4  # uniform over the 10 allowed pairs
    # without the floor the targeted policy never shows some allowed pairs
    plain = select_batch(belief, 2000, objective="topk", rng=rng, top_k=2, exclude=exclude)
    assert len(np.unique(plain.pair)) < allowed.sum()


def test_greedy_batch_is_not_redundant(belief):
    """After a pick the chosen pair's score falls, so a batch spreads over pairs."""
    batch = select_batch(belief, 40, objective="eig", rng=np.random.default_rng(8))
    assert np.all(np.diff(batch.score) <= 1e-15)  # greedy picks: scores only fall
    assert len(np.unique(batch.pair)) > 1  # not 40 copies of the best pair
    first = select_batch(belief, 1, objective="eig", rng=np.random.default_rng(8))
    assert first.pair[0] == int(np.argmax(eig_gaussian(belief)))


def test_score_mixture_maximises_the_weighted_sum(belief):
    """combine="scores": the first pick is the argmax of w_eig eig + w_topk topk (by hand from
    the two closed forms), the limits are the pure objectives, and randomised objectives
    are refused."""
    from bayesarena.information import topk_information

    w = {"eig": 1.0, "topk": 3.0}
    first = select_batch(belief, 1, objective=w, rng=np.random.default_rng(0), top_k=2,
                         combine="scores")
    by_hand = 0.25 * eig_gaussian(belief) + 0.75 * topk_information(belief, 2)
    assert first.pair[0] == int(np.argmax(by_hand))
    assert np.isclose(first.score[0], by_hand.max(), rtol=1e-10)
    assert first.source[0] == "0.25*eig+0.75*topk"
    batch = select_batch(belief, 30, objective=w, rng=np.random.default_rng(0), top_k=2,
                         combine="scores")
    assert np.all(np.diff(batch.score) <= 1e-15)  # still greedy: scores only fall
    for name in ("eig", "topk"):
        alone = select_batch(belief, 30, objective=name, rng=np.random.default_rng(0),
                             top_k=2)
        limit = select_batch(belief, 30, objective={name: 1.0, **{
            k: 1e-9 for k in ("eig", "topk") if k != name}}, rng=np.random.default_rng(0),
            top_k=2, combine="scores")
        assert np.array_equal(alone.pair, limit.pair)
    with pytest.raises(ValueError, match="greedy objectives"):
        select_batch(belief, 2, objective={"eig": 1, "arena": 1}, combine="scores",
                     rng=np.random.default_rng(0))


def test_objective_validation(belief):
    with pytest.raises(ValueError, match="unknown objective"):
        select_batch(belief, 1, objective="best", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive sum"):
        select_batch(belief, 1, objective={"eig": 0.0}, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="no allowed pair"):
        select_batch(belief, 16, objective="uniform", rng=np.random.default_rng(0),
                     distinct=True)


# ---- streaming updates ------------------------------------------------------------------

@pytest.fixture(scope="module")
def arena_votes():
    frame, truth = ba.simulate_arena(8, 3000, seed=11)
    return frame, truth


def test_online_update_equals_batch_solve(arena_votes):
    """Adding votes in three batches ends at the same mode and covariance as one solve of
    all the counts from zero with the same prior scale."""
    frame, truth = arena_votes
    idx = {m: k for k, m in enumerate(truth.models)}
    a = frame.model_a.map(idx).to_numpy()
    b = frame.model_b.map(idx).to_numpy()
    code = {"model_a": 0, "model_b": 1, "tie": 2, "tie (bothbad)": 3}
    y = frame.winner.map(code).to_numpy()
    state = online.init(truth.models)
    for part in np.array_split(np.arange(len(a)), 3):
        state = online.add_votes(state, a[part], b[part], y[part])
    one = online.solve(state.counts, np.zeros_like(state.x), state.sigma, truth.models,
                       load_spec("bt-davidson"))
    assert np.allclose(state.belief.mean, one.belief.mean, atol=1e-7)
    assert np.allclose(state.belief.cov, one.belief.cov, atol=1e-8)
    assert abs(state.belief.mean.sum()) < 1e-9
    assert np.allclose(state.belief.cov.sum(axis=0), 0.0, atol=1e-10)  # sum-to-zero subspace


def test_online_matches_laplace_fit(arena_votes):
    """The streaming belief (EM sigma) agrees with fit(method='laplace') (sigma integrated):
    means within 4 MC SE of the fit's 4,000 draws plus 10% of a posterior sd."""
    frame, _ = arena_votes
    cells = ba.aggregate(ba.read_votes(frame))
    state = online.from_counts(cells.models, cells.model_i, cells.model_j, cells.counts)
    post = ba.fit(cells, "bt-davidson", method="laplace", seed=0)
    draws = post.theta_draws()
    sd = draws.std(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - state.belief.mean)
                  < 4 * sd / np.sqrt(len(draws)) + 0.1 * sd)
    assert np.allclose(np.sqrt(np.diag(state.belief.cov)), sd, rtol=0.1)
    assert state.belief.outcome.log_nu == pytest.approx(
        post.outcome_param_draws().log_nu.mean(), abs=0.05)


def test_recommend_from_streaming_state(arena_votes):
    frame, truth = arena_votes
    cells = ba.aggregate(ba.read_votes(frame))
    state = online.from_counts(cells.models, cells.model_i, cells.model_j, cells.counts)
    table = recommend_pairs(state, 4, objective="rank", exclude=[truth.models[0]])
    assert list(table.columns) == ["model_a", "model_b", "objective", "score"]
    assert len(table) == 4 and truth.models[0] not in set(table.model_a) | set(table.model_b)
    with pytest.raises(UnknownModelError):
        recommend_pairs(state, 2, budget={"nope": 1})
    with pytest.raises(BayesArenaError, match="no categories"):
        recommend_pairs(state, 2, category="coding")


def test_recommend_objectives_on_posterior(small_posterior):
    models = small_posterior.models
    for objective in ("eig", "rank", "topk", "thompson", "arena", "uniform"):
        table = recommend_pairs(small_posterior, 3, objective=objective, top_k=2,
                                weights={models[0]: 0.0})
        assert len(table) == 3
        assert models[0] not in set(table.model_a) | set(table.model_b)
    with pytest.raises(BayesArenaError, match="unknown objective"):
        recommend_pairs(small_posterior, 2, objective="nope")
    with pytest.raises(BayesArenaError, match=">= 0"):
        recommend_pairs(small_posterior, 2, weights={models[0]: -1.0})


def test_belief_from_posterior_moments(small_posterior):
    b = belief_from_posterior(small_posterior)
    theta = small_posterior.theta_draws()
    assert np.allclose(b.mean, theta.mean(axis=0))
    assert b.pair_votes.sum() == small_posterior.cells().counts.sum()


def test_fisher_information_is_largest_at_zero_gap():
    d = np.linspace(-4, 4, 81)
    f = fisher_information(d, np.zeros_like(d), LIK, OUTCOME)
    assert np.argmax(f) == 40 and np.all(f > 0)
    # numerical check of sum_y p'^2 / p against finite differences
    h = 1e-5
    p = lambda x: np.asarray(outcome_probs(np.array([x]), np.array([0.0]), ties=LIK.ties,  # noqa: E731
                                           both_bad=LIK.both_bad, params=OUTCOME))[0]
    dp = (p(0.7 + h) - p(0.7 - h)) / (2 * h)
    assert fisher_information(np.array([0.7]), np.array([0.0]), LIK, OUTCOME)[0] == \
        pytest.approx(np.sum(dp**2 / p(0.7)), rel=1e-6)


# ---- the simulator ----------------------------------------------------------------------

def test_simulator_reproduces_tie_rate_and_spread():
    """Tie rate within 4 binomial SE of the configured one; rating sd within 4 SE
    (relative SE of a sample sd ~ 1 / sqrt(2 (n - 1)))."""
    cfg = ArenaConfig(n_models=400, rating_sd=140.0, tie_rate=0.25, bothbad_share=0.5)
    sim = ArenaSimulator(cfg, seed=3)
    sd = sim.theta.std(ddof=1) * ELO_PER_LOGIT
    assert abs(sd / 140.0 - 1) < 4 / np.sqrt(2 * 399)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 400, 60_000)
    b = (a + rng.integers(1, 400, 60_000)) % 400
    y = sim.vote(a, b).outcome
    ties = np.isin(y, [2, 3])
    se = np.sqrt(0.25 * 0.75 / len(y))
    assert abs(ties.mean() - 0.25) < 4 * se + 0.002  # + calibration on a 20k-vote design
    share = (y == 3).sum() / ties.sum()
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / ties.sum()) + 0.01


def test_simulator_crowded_top_and_late_entrants():
    sim = ArenaSimulator(ArenaConfig(n_models=30, crowded_top=10, crowded_gap=8.0,
                                     late_models=1, late_after=100, late_top=5), seed=1)
    top = np.sort(sim.theta)[::-1][:10] * ELO_PER_LOGIT
    assert np.allclose(-np.diff(top), 8.0)
    assert sim.true_ranks()[sim.late[0]] <= 5
    assert not sim.available()[sim.late[0]]
    sim.vote(np.zeros(100, int), np.ones(100, int))
    assert sim.available().all()
    assert len(sim.frame()) == 100


def test_common_random_numbers_across_orders():
    """The k-th vote on a pair has the same winner whatever else was shown, and whichever
    model was shown first."""
    cfg = ArenaConfig(n_models=6)
    s1, s2 = ArenaSimulator(cfg, seed=4), ArenaSimulator(cfg, seed=4)
    v1 = s1.vote(np.array([0, 0, 2, 0]), np.array([1, 1, 3, 1]))
    s2.vote(np.array([4, 5]), np.array([5, 3]))
    v2 = s2.vote(np.array([1, 2, 0, 1]), np.array([0, 3, 1, 0]))
    winners1 = [v1.model_a[k] if v1.outcome[k] == 0 else v1.model_b[k] if v1.outcome[k] == 1
                else -v1.outcome[k] for k in (0, 1, 3)]
    winners2 = [v2.model_a[k] if v2.outcome[k] == 0 else v2.model_b[k] if v2.outcome[k] == 1
                else -v2.outcome[k] for k in (0, 2, 3)]
    assert winners1 == winners2
    u = common_uniforms(4, np.array([3, 3]), np.array([0, 1]))
    assert u[0] != u[1] and np.all((u >= 0) & (u < 1))


def test_policy_in_the_loop_beats_uniform_on_the_top():
    """Tiny arena, fixed seed: after the same number of votes the top-k policy is surer of
    the true top 2 than uniform pairing (same truth, same outcome stream per pair)."""
    n, k = 8, 2
    results = {}
    for objective in ("uniform", "topk"):
        sim = ArenaSimulator(ArenaConfig(n_models=n, rating_sd=80.0), seed=5)
        rng = np.random.default_rng(0)
        warm_a = np.arange(n)
        state = online.add_votes(online.init(sim.models), warm_a, (warm_a + 1) % n,
                                 sim.vote(warm_a, (warm_a + 1) % n).outcome)
        for _ in range(15):
            batch = select_batch(state.belief, 100, objective=objective, rng=rng, top_k=k)
            v = sim.vote(batch.model_a, batch.model_b)
            state = online.add_votes(state, v.model_a, v.model_b, v.outcome)
        draws = state.belief.sample(4000, np.random.default_rng(1))
        true_top = set(np.argsort(-sim.theta)[:k])
        results[objective] = np.mean([set(np.argsort(-d)[:k]) == true_top for d in draws])
    assert results["topk"] > results["uniform"] + 0.05, results


def test_simulator_frame_reads_back():
    sim = ArenaSimulator(ArenaConfig(n_models=5, categories=("coding", "math"), n_voters=20),
                         seed=2)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 300)
    b = (a + rng.integers(1, 5, 300)) % 5
    sim.vote(a, b)
    frame = sim.frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 300
    votes = ba.read_votes(frame)
    assert votes.summary.rows_used == 300


def test_category_aware_recommendation():
    """For a category the belief is built from that category's strengths theta + delta_c."""
    from bayesarena.simulate import simulate_hierarchical_arena
    from bayesarena.spec import parse_spec

    frame, _ = simulate_hierarchical_arena(6, 1500, categories=("coding", "math"),
                                           n_voters=0, style=False, multi_tag=False, seed=3)
    spec = parse_spec({"name": "categories", "categories": {"enabled": True}})
    post = ba.fit(frame, spec, method="laplace", seed=0)
    for category in ("coding", "math"):
        b = belief_from_posterior(post, category)
        assert np.allclose(b.mean, post.strength_draws(category).mean(axis=0))
        table = recommend_pairs(post, 2, category=category, objective="topk", top_k=2)
        assert len(table) == 2
    overall = belief_from_posterior(post)
    assert not np.allclose(overall.mean, belief_from_posterior(post, "coding").mean)
    with pytest.raises(BayesArenaError):
        recommend_pairs(post, 2, category="poetry")


BOARDS = "../shared/data/arena_category_boards/leaderboard-text_long.csv"


@pytest.mark.skipif(not __import__("pathlib").Path(BOARDS).exists(),
                    reason="the shared LMArena boards are not on this machine")
def test_simulator_defaults_match_the_published_boards():
    """The documented defaults are the boards' figures (rounded as documented)."""
    from bayesarena.arena_sim import calibration_from_boards

    figures = calibration_from_boards(BOARDS)
    defaults = ArenaConfig()
    assert round(figures["rating_sd"]) == defaults.rating_sd
    assert round(figures["category_sd"]) == defaults.category_sd
    # the brief's 8 Elo steps are a little wider than the real top 10's (about 5.4 Elo apart)
    assert 4 < figures["top10_span"] / 9 < defaults.crowded_gap


@pytest.mark.parametrize("spec_name", ["bt", "bt-davidson", "bt-ties-half", "rao-kupper",
                                       "thurstone"])
def test_streaming_hessian_equals_autodiff(spec_name):
    """The per-pair assembled Hessian equals JAX's dense Hessian of the same objective."""
    import jax
    import jax.numpy as jnp

    spec = load_spec(spec_name)
    frame, _ = ba.simulate_arena(7, 500, seed=1)
    cells = ba.aggregate(ba.read_votes(frame))
    counts = np.zeros((21, 4))
    np.add.at(counts, online.pair_position(cells.model_i, cells.model_j, 7), cells.counts)
    value_and_grad, hessian = online._objective(spec, 7)
    x = np.random.default_rng(0).normal(size=7 + len(spec.outcome_parameters)) * 0.3
    reference = jax.hessian(lambda z: value_and_grad(z, jnp.asarray(counts), 0.7)[0])(
        jnp.asarray(x))
    assert np.allclose(hessian(jnp.asarray(x), jnp.asarray(counts), 0.7), reference,
                       atol=1e-10)


def test_arena_rule_among_allowed_pairs(belief):
    """Unvoted pairs come first only if they may be shown: with every unvoted pair excluded
    the rule falls back to Eq. 9 over the voted ones, not to uniform."""
    votes = np.full(15, 20_000.0)  # so that the batch's own picks barely move n
    votes[:5] = 0.0  # pairs (0, 1..5) never shown
    proj = np.eye(6) - 1.0 / 6
    wide = proj @ (belief.cov + np.diag([0, 0, 0, 0, 0, 0.5])) @ proj  # model f uncertain
    b = belief._replace(pair_votes=votes, cov=wide)
    exclude = np.array([True, False, False, False, False, False])
    batch = select_batch(b, 4000, objective="arena", rng=np.random.default_rng(9),
                         exclude=exclude)
    assert not np.isin(0, np.concatenate([batch.model_a, batch.model_b]))
    counts = np.bincount(batch.pair, minlength=15)[5:]
    expected = arena_rule_weights(win_probability_variance(b)[5:], votes[5:])
    expected = expected / expected.sum() * 4000
    assert expected.max() > 2 * expected.min()  # far from uniform: the check can fail
    # Eq. 9 over the allowed pairs (n grows by at most ~4% in the batch: 10% besides 4 SE)
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected) + 0.10 * expected)
