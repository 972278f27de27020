"""The audit report (bayesarena.audit): coverage and Gini by hand, position bias planted and
absent, a planted preference cycle against Bradley-Terry data, an adversarial heavy voter
against an honest one, and the votes that decide #1, each count verified by refitting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import bayesarena as ba
from bayesarena.audit import (
    AuditReport,
    audit,
    coverage,
    cyclic_triads,
    gini,
    intransitivity,
    position_bias,
    refit,
    top1_sensitivity,
    tournament,
    vote_table,
    voter_influence,
    wilson_interval,
)
from bayesarena.cli import app
from bayesarena.errors import BayesArenaError
from bayesarena.spec import load_spec

SPEC = load_spec("bt-davidson")


def votes_from_counts(rows: list[tuple[str, str, int, int]], **extra) -> pd.DataFrame:
    """Per-vote rows: ``(a, b, wins_a, wins_b)`` -> that many ``model_a`` / ``model_b`` votes."""
    out = []
    for a, b, wa, wb in rows:
        out += [(a, b, "model_a")] * wa + [(a, b, "model_b")] * wb
    df = pd.DataFrame(out, columns=["model_a", "model_b", "winner"])
    return df.assign(**extra)


def bt_votes(theta: np.ndarray, n: int, rng: np.random.Generator, *, first_advantage=0.0,
             names=None) -> pd.DataFrame:
    """Decisive Bradley-Terry votes on uniformly drawn pairs in random order; the side in
    position a wins with probability ``sigmoid(theta_a - theta_b + first_advantage)``."""
    m = len(theta)
    names = np.asarray(names or [f"m{k}" for k in range(m)], dtype=object)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    a_wins = rng.random(n) < expit(theta[a] - theta[b] + first_advantage)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b],
                         "winner": np.where(a_wins, "model_a", "model_b")})


def top1(df: pd.DataFrame, seed: int = 0) -> str:
    """#1 by posterior mean of the Laplace fit, the way the audit ranks."""
    return str(ba.fit(df, SPEC, method="laplace", seed=seed, warn=False)
               .leaderboard()["model"].iloc[0])


# --------------------------------------------------------------------------------------------
# 1. coverage
# --------------------------------------------------------------------------------------------


def test_gini_against_hand_computation():
    # x = (1, 2, 3, 6): mean 3, sum over ordered pairs of |x_i - x_j| = 2 * (1+2+5+1+4+3) = 32,
    # G = 32 / (2 * 4^2 * 3) = 1/3
    assert gini([6, 1, 3, 2]) == pytest.approx(1 / 3)
    assert gini([5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 7]) == pytest.approx(3 / 4)  # (n - 1) / n: one holds everything


def test_coverage_numbers_by_hand():
    # A-B 3 votes, A-C 1 vote, B-C never compared
    votes = ba.read_votes(votes_from_counts([("A", "B", 2, 1), ("C", "A", 1, 0)]))
    cov = coverage(ba.aggregate(votes))
    assert cov.connected and cov.components == [["A", "B", "C"]]
    assert cov.votes_per_model == {"A": 4, "B": 3, "C": 1}
    assert (cov.n_pairs, cov.n_possible_pairs) == (2, 3)
    # per model (4, 3, 1): mean 8/3, ordered |diffs| sum 2 * (1 + 3 + 2) = 12 -> 12 / 48
    assert cov.gini_models == pytest.approx(12 / (2 * 9 * 8 / 3))
    # pairs with votes (3, 1): 4 / (2 * 4 * 2); all pairs (3, 1, 0): 12 / (2 * 9 * 4/3)
    assert cov.gini_pairs_observed == pytest.approx(0.25)
    assert cov.gini_pairs_possible == pytest.approx(0.5)


def test_disconnected_graph_is_reported_not_fatal():
    df = votes_from_counts([("A", "B", 12, 10), ("B", "C", 14, 6), ("A", "C", 15, 5),
                            ("D", "E", 9, 3)])
    report = audit(df, top=2, heavy_voters=0, replicates=50)
    cov = report.coverage
    assert not cov.connected
    assert cov.components == [["A", "B", "C"], ["D", "E"]]
    assert cov.fitted_models == ["A", "B", "C"]
    assert cov.n_votes == len(df) and cov.n_pairs == 4 and cov.n_possible_pairs == 10
    assert any("2 components" in note for note in report.notes)
    assert {row["model"] for row in report.leaderboard} <= {"A", "B", "C"}
    assert report.sensitivity.n_votes == len(df) - 12  # the fitted component only
    md = report.to_markdown()
    assert "Not connected: 2 components" in md and "component 2 (2 models): D, E" in md
    assert not report.voters.available  # no voter column
    json.loads(report.to_json())  # NaNs became nulls


def test_hierarchical_spec_is_refused():
    df = votes_from_counts([("A", "B", 3, 2)])
    with pytest.raises(BayesArenaError, match="pairwise spec"):
        audit(df, spec="arena")


# --------------------------------------------------------------------------------------------
# 2. position bias
# --------------------------------------------------------------------------------------------


def test_wilson_interval_matches_the_formula():
    lo, hi = wilson_interval(30, 100)
    z = 1.959963984540054
    centre = (0.3 + z**2 / 200) / (1 + z**2 / 100)
    half = z * np.sqrt(0.3 * 0.7 / 100 + z**2 / 40000) / (1 + z**2 / 100)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))


def test_planted_first_position_advantage_is_detected():
    rng = np.random.default_rng(5)
    gamma = 0.5
    theta = rng.normal(0, 0.6, 8)
    pb = position_bias(ba.read_votes(bt_votes(theta, 4000, rng, first_advantage=gamma)))
    assert pb.available and pb.flagged and pb.p_value < 1e-6
    assert pb.lower > 0.5
    # within pairs, the Mantel-Haenszel estimate targets sigmoid(gamma) itself
    assert pb.mh_lower <= expit(gamma) <= pb.mh_upper
    assert pb.mh_lower > 0.5 and pb.mh_p_value < 1e-6
    assert pb.pairs_both_orders == 28 and not pb.order_not_random


def test_neutral_simulation_is_not_flagged():
    df, _ = ba.simulate_arena(8, 4000, seed=7)  # either model may sit in position a
    pb = position_bias(ba.read_votes(df))
    assert not pb.flagged and pb.p_value >= 0.05
    assert pb.lower <= 0.5 <= pb.upper and pb.mh_lower <= 0.5 <= pb.mh_upper
    assert not pb.order_not_random


def test_position_column_and_non_random_order():
    rng = np.random.default_rng(6)
    df = bt_votes(np.array([0.5, 0.0, -0.5]), 1500, rng, first_advantage=0.6)
    # the same votes written the other way round, with a column saying b was shown first
    swapped = pd.DataFrame({"model_a": df["model_b"], "model_b": df["model_a"],
                            "winner": df["winner"].map({"model_a": "model_b",
                                                        "model_b": "model_a"}),
                            "position": "b"})
    plain, moved = (position_bias(ba.read_votes(d)) for d in (df, swapped))
    assert moved.source.startswith("the position column")
    assert (moved.first_wins, moved.decisive) == (plain.first_wins, plain.decisive)
    assert moved.flagged
    # "m0" always listed first: its order is not random, and the report says so
    fixed = df.copy()
    swap = fixed["model_b"] == "m0"
    fixed.loc[swap, ["model_a", "model_b"]] = fixed.loc[swap, ["model_b", "model_a"]].values
    pb = position_bias(ba.read_votes(fixed))
    assert "m0" in pb.order_not_random
    row = next(r for r in pb.per_model if r["model"] == "m0")
    assert row["share_first"] == 1.0
    assert any("not random" in note for note in pb.notes)


# --------------------------------------------------------------------------------------------
# 3. intransitivity
# --------------------------------------------------------------------------------------------


def test_cyclic_triads_by_hand():
    # 0 beats 1 (8-2), 1 beats 2 (7-3), 2 beats 0 (6-4): one cycle, weakest margin 0.1
    w = tournament(np.array([8, 4, 7]), np.array([2, 6, 3]), np.array([0, 0, 1]),
                   np.array([1, 2, 2]), 3)
    count, strength = cyclic_triads(w)
    assert count == 1 and strength == pytest.approx(0.1)
    # 2 now loses to 0: transitive, no cycle
    w = tournament(np.array([8, 6, 7]), np.array([2, 4, 3]), np.array([0, 0, 1]),
                   np.array([1, 2, 2]), 3)
    assert cyclic_triads(w)[0] == 0


def test_planted_cycle_is_detected():
    # rock > paper > scissors > rock, each 80% of 150 decisive votes
    df = votes_from_counts([("rock", "paper", 120, 30), ("paper", "scissors", 120, 30),
                            ("scissors", "rock", 120, 30)])
    post = refit(ba.aggregate(ba.read_votes(df)), SPEC, seed=0)
    it = intransitivity(post, replicates=200, seed=1)
    assert it.observed == 1 and it.flagged
    assert it.strength_observed == pytest.approx(0.3)
    assert it.strength_p_value < 0.01
    # the count alone cannot flag it: three near-equal models cycle a quarter of the time
    assert it.p_value > it.strength_p_value
    assert it.cycles[0]["strength"] == pytest.approx(0.3)


def test_bradley_terry_data_are_not_flagged():
    # a crowded board (25 Elo spread): near-ties make majority cycles happen by chance
    df, _ = ba.simulate_arena(8, 3000, rating_sd=25, seed=3)
    post = refit(ba.aggregate(ba.read_votes(df)), SPEC, seed=0)
    it = intransitivity(post, replicates=200, seed=1)
    assert it.observed > 0 and not it.flagged
    assert it.p_value >= 0.05 and it.strength_p_value >= 0.05
    assert it.predicted_lower <= it.observed <= it.predicted_upper


# --------------------------------------------------------------------------------------------
# 4. heavy voters
# --------------------------------------------------------------------------------------------


def test_adversarial_heavy_voter_moves_the_ranking_more_than_an_honest_one():
    rng = np.random.default_rng(8)
    theta = np.array([1.2, 0.7, 0.3, 0.0, -0.4, -0.9])
    crowd = bt_votes(theta, 1500, rng).assign(judge=rng.integers(0, 50, 1500).astype(str))
    honest = bt_votes(theta, 300, rng).assign(judge="honest")
    adversary = bt_votes(theta, 300, rng).assign(judge="adversary")
    weaker_is_a = theta[adversary["model_a"].str[1:].astype(int)] < theta[
        adversary["model_b"].str[1:].astype(int)]
    adversary["winner"] = np.where(weaker_is_a, "model_a", "model_b")  # always the weaker
    votes = ba.read_votes(pd.concat([crowd, honest, adversary], ignore_index=True))
    cells = ba.aggregate(votes)
    post = refit(cells, SPEC, seed=0)
    vi = voter_influence(vote_table(votes), cells, post, SPEC, top=3, heavy_voters=2, seed=0)
    assert vi.available and vi.n_voters == 52
    rows = {r["voter"]: r for r in vi.voters}
    assert set(rows) == {"honest", "adversary"}
    assert rows["adversary"]["agreement"] < 0.1 < 0.6 < rows["honest"]["agreement"]
    assert rows["adversary"]["max_shift_elo"] > 2 * rows["honest"]["max_shift_elo"]
    assert rows["adversary"]["share"] == pytest.approx(300 / 2100)


# --------------------------------------------------------------------------------------------
# 5. votes that decide #1
# --------------------------------------------------------------------------------------------


def _others(a: int, b: int) -> list[tuple[str, str, int, int]]:
    """A and B with ``a``-``b`` head to head and nearly the same records against three others
    (B has one more win over C, so no count of flips or drops lands on an exact tie)."""
    rows = [("A", "C", 30, 10), ("A", "D", 33, 7), ("A", "E", 36, 4),
            ("B", "C", 31, 10), ("B", "D", 33, 7), ("B", "E", 36, 4),
            ("C", "D", 22, 18), ("C", "E", 25, 15), ("D", "E", 23, 17)]
    return [("A", "B", a, b), *rows]


def _flip(df: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = df.copy()
    out.loc[rows, "winner"] = out.loc[rows, "winner"].map({"model_a": "model_b",
                                                           "model_b": "model_a"})
    return out


def _check_by_refit(df: pd.DataFrame, change, first: str) -> None:
    """Changing the reported rows changes #1; one row fewer does not."""
    assert change.needed is not None and len(change.rows) == change.needed
    apply = _flip if change.kind == "flip" else (lambda d, r: d.drop(index=r))
    after = top1(apply(df, change.rows))
    assert after != first and after == change.new_top1
    assert top1(apply(df, change.rows[:-1])) == first


def test_near_tie_at_the_top_needs_few_flips():
    df = votes_from_counts(_others(41, 40))
    votes = ba.read_votes(df)
    cells = ba.aggregate(votes)
    post = refit(cells, SPEC, seed=0)
    s = top1_sensitivity(cells, post, SPEC, seed=0, votes=votes)
    assert (s.top1, s.runner_up) == ("A", "B")
    assert s.min_flips is not None and s.min_flips <= 2
    assert s.min_drops is not None and s.min_drops <= 3
    for change in (*s.flips, *s.drops):
        _check_by_refit(df, change, "A")
        assert change.share == pytest.approx(change.needed / len(df))


def test_dominant_top_model_needs_many_flips():
    df = votes_from_counts(_others(70, 10))
    votes = ba.read_votes(df)
    cells = ba.aggregate(votes)
    post = refit(cells, SPEC, seed=0)
    s = top1_sensitivity(cells, post, SPEC, seed=0, votes=votes, strategies=("greedy",))
    flips, drops = s.flips[0], s.drops[0]
    assert s.top1 == "A" and flips.new_top1 == "B"
    # 70-10 -> the lead over B goes only when about half the margin is flipped
    assert 20 <= flips.needed <= 40
    assert drops.needed > flips.needed
    assert list(flips.votes_used) == ["A > B"]  # the greedy order takes wins over #2 first
    _check_by_refit(df, flips, "A")
    _check_by_refit(df, drops, "A")


# --------------------------------------------------------------------------------------------
# the whole report, and the CLI
# --------------------------------------------------------------------------------------------


def test_audit_report_through_the_cli(tmp_path):
    rng = np.random.default_rng(9)
    df = bt_votes(np.array([0.4, 0.3, 0.0, -0.7]), 600, rng).assign(
        judge=rng.choice(["j1", "j2", "j3", "j4", "j5"], 600, p=[0.4, 0.3, 0.1, 0.1, 0.1]))
    path = tmp_path / "votes.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(app, ["audit", str(path), "--format", "json", "-o", str(out),
                                      "--top", "2", "--heavy-voters", "2", "--replicates",
                                      "100"])
    assert result.exit_code == 0, result.output
    d = json.loads(out.read_text())
    heaviest = df["judge"].value_counts().index[:2].tolist()
    assert [v["voter"] for v in d["voters"]["voters"]] == heaviest
    assert d["n_votes"] == 600 and d["coverage"]["n_pairs"] == 6 and d["top"] == 2
    assert d["position"]["decisive"] == 600 and d["coverage"]["connected"]
    flips = d["sensitivity"]["flips"]
    assert {f["strategy"] for f in flips} == {"greedy", "influence"}
    assert d["sensitivity"]["min_flips"] == min(f["needed"] for f in flips)
    report = AuditReport.from_dict(d)
    md = report.to_markdown()
    for heading in ("## 1. Coverage", "## 2. Position bias", "## 3. Intransitive",
                    "## 4. Influence of heavy voters", "## 5. How many votes decide #1"):
        assert heading in md
    bad = CliRunner().invoke(app, ["audit", str(path), "--format", "html"])
    assert bad.exit_code == 2 and "md" in bad.output
