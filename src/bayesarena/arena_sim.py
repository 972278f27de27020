"""A realistic arena with a pairing policy in the loop, calibrated to public LMArena figures.

:class:`ArenaSimulator` holds a known truth and answers "show pair (a, b) to the next voters"
with votes. Every default below is a public figure or the issue's brief, with its source:

======================  =========  ==========================================================
setting                 default    source
======================  =========  ==========================================================
``rating_sd``           140 Elo    sd of the 282 ratings of LMArena's overall text board,
                                   late 2025 (``../shared/data/arena_category_boards``:
                                   139.9); the published boards run from about 1000 to 1490
``category_sd``         22 Elo     median over its 28 category boards of the sd of
                                   (category rating - overall rating), centred per board
                                   (coding 29.6, math 23.4, creative writing 21.1, hard
                                   prompts 20.8; languages 22-44)
``tie_rate``            0.25       the brief's "about 20-30% ties"; LMArena's 2023-24 public
                                   vote releases have about 15% ties + 15% both-bad
``bothbad_share``       0.5        same releases: both-bad about half of all ties
``crowded_top``         0 (off)    on: the top ``K`` are ``crowded_gap`` = 8 Elo apart (the
                                   brief; the real top 10 span 49 Elo, about 5 apart)
``voter_votes_tail``    3.0        heavy-tailed votes per voter, see
                                   :func:`~bayesarena.simulate.simulate_design`
``voter_kappa_sd``      0.3        voters' discrimination around the crowd's
======================  =========  ==========================================================

Common random numbers: the ``k``-th vote ever cast on pair ``{a, b}`` draws its outcome from
the uniform ``U(seed, pair, k)`` (SplitMix64 of the three integers; Steele, Lea & Flood 2014),
whichever policy asked for it and whenever. Two policies that show the same pair the same
number of times see the same outcomes, so differences between policies are not noise from the
outcome stream (the paired design of simulation studies; Law 2015, ch. 11). The extras of a vote
(its category tags, voter and answer styles) come from the simulator's own generator.

Late entrants: ``late_models`` models (drawn among the true top ``late_top`` when it is set,
like a new frontier model; among all models otherwise) exist in the truth from the start but are
unavailable until ``late_after`` votes have been cast (:meth:`ArenaSimulator.available`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from bayesarena.belief import pair_position
from bayesarena.simulate import (
    ArenaDesign,
    HierarchicalTruth,
    _draw_side,
    arena_frame,
    draw_truth,
    simulate_design,
    vote_probs,
)

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014) on uint64 arrays."""
    with np.errstate(over="ignore"):
        z = (np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def common_uniforms(seed: int, pair: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) that depend only on ``(seed, pair, k)``."""
    with np.errstate(over="ignore"):
        h = splitmix64(np.uint64(seed) * np.uint64(0x100000001B3))
        h = splitmix64(h ^ np.asarray(pair, np.uint64))
        h = splitmix64(h ^ (np.asarray(k, np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class ArenaConfig:
    """What the simulated arena looks like (see the module docstring for each default)."""

    n_models: int = 50
    rating_sd: float = 140.0
    crowded_top: int = 0
    crowded_gap: float = 8.0
    tie_rate: float = 0.25
    bothbad_share: float = 0.5
    categories: tuple[str, ...] = ()
    category_sd: float = 22.0
    multi_tag_rate: float = 0.2
    n_voters: int = 0
    voter_votes_tail: float = 3.0
    voter_kappa_sd: float = 0.3
    random_voter_share: float = 0.0
    adversarial_voter_share: float = 0.0
    style: bool = False
    position: float = 0.0
    late_models: int = 0
    late_after: int = 0
    late_top: int = 0
    extra: dict = field(default_factory=dict)


def calibration_from_boards(path: str) -> dict[str, float]:
    """The figures behind the defaults, recomputed from LMArena's published category boards
    (a CSV with ``category, model, rating, rating_q025, rating_q975``; the project reads it
    from ``../shared/data/arena_category_boards/leaderboard-text_long.csv``):

    * ``rating_sd``: sd of the overall (``full``) board's ratings;
    * ``category_sd``: median over the other boards of the sd of ``category rating - overall
      rating`` over the models on both, centred per board (a board fixes only differences);
    * ``top10_span``: rating gap between the overall board's 1st and 10th model;
    * ``median_ci_width``: median width of the overall board's 95% intervals.
    """
    boards = pd.read_csv(path)
    overall = boards[boards["category"] == "full"].set_index("model")["rating"]
    shifts = []
    for category, board in boards.groupby("category"):
        if category == "full":
            continue
        rating = board.set_index("model")["rating"]
        common = rating.index.intersection(overall.index)
        d = rating[common] - overall[common]
        shifts.append(float((d - d.mean()).std()))
    full = boards[boards["category"] == "full"]
    top = np.sort(overall.to_numpy())[::-1]
    return {"rating_sd": float(overall.std()), "category_sd": float(np.median(shifts)),
            "top10_span": float(top[0] - top[9]),
            "median_ci_width": float((full["rating_q975"] - full["rating_q025"]).median())}


class CastVotes(NamedTuple):
    """One batch of simulated votes (indices into the simulator's models)."""

    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray  # 0 a wins, 1 b wins, 2 tie, 3 both bad
    design: ArenaDesign


class ArenaSimulator:
    """A simulated arena: a known truth, votes on request, common random numbers per pair."""

    def __init__(self, config: ArenaConfig | None = None, *, seed: int = 0):
        self.config = config = config or ArenaConfig()
        if config.n_models < 2:
            raise ValueError("an arena needs at least 2 models")
        if not 0 <= config.late_models < config.n_models - 1:
            raise ValueError("late_models must leave at least 2 models from the start")
        self.seed = seed
        self.rng = np.random.default_rng([seed, 1])
        # a uniform design fixes the truth's tie calibration (log nu solved on its votes)
        calib = simulate_design(config.n_models, 20_000, categories=config.categories,
                                multi_tag_rate=config.multi_tag_rate, n_voters=config.n_voters,
                                voter_votes_tail=config.voter_votes_tail, style=config.style,
                                rng=self.rng)
        self.truth: HierarchicalTruth = draw_truth(
            calib, rng=self.rng, rating_sd=config.rating_sd, category_sd=config.category_sd,
            tie_rate=config.tie_rate, bothbad_share=config.bothbad_share,
            position=config.position, voter_discrimination_sd=config.voter_kappa_sd,
            random_voter_share=config.random_voter_share,
            adversarial_voter_share=config.adversarial_voter_share,
            crowded_top=config.crowded_top, crowded_gap=config.crowded_gap, **config.extra)
        self._calibration = calib
        n = config.n_models
        pool = (np.argsort(-self.truth.theta, kind="stable")[:config.late_top]
                if config.late_top else np.arange(n))
        if config.late_models > len(pool):
            raise ValueError("late_top must be at least late_models")
        self.late = np.sort(self.rng.choice(pool, config.late_models, replace=False))
        self.pair_votes = np.zeros(n * (n - 1) // 2, np.int64)
        self.n_votes = 0
        self._log: list[CastVotes] = []

    @property
    def models(self) -> tuple[str, ...]:
        return self.truth.models

    @property
    def theta(self) -> np.ndarray:
        return self.truth.theta

    def true_ranks(self) -> np.ndarray:
        """Rank of every model (1 = strongest) under the truth's overall strengths."""
        return np.argsort(np.argsort(-self.theta, kind="stable"), kind="stable") + 1

    def available(self) -> np.ndarray:
        """Which models may be shown now (late entrants wait for ``late_after`` votes)."""
        ok = np.ones(self.config.n_models, bool)
        if self.n_votes < self.config.late_after:
            ok[self.late] = False
        return ok

    def vote(self, model_a: np.ndarray, model_b: np.ndarray) -> CastVotes:
        """Cast one vote per ``(model_a[v], model_b[v])``, ``model_a`` shown first."""
        a, b = np.asarray(model_a, np.int64), np.asarray(model_b, np.int64)
        n = self.config.n_models
        if np.any(a == b) or np.any((a < 0) | (a >= n) | (b < 0) | (b >= n)):
            raise ValueError("each vote needs two different model indices in range")
        pair = pair_position(a, b, n)
        # k-th vote on each pair: running count before this batch + position within the batch
        order = np.argsort(pair, kind="stable")
        sorted_pair = pair[order]
        first = np.searchsorted(sorted_pair, sorted_pair, side="left")
        within = np.empty(len(pair), np.int64)
        within[order] = np.arange(len(pair)) - first
        k = self.pair_votes[pair] + within
        np.add.at(self.pair_votes, pair, 1)
        design = self._design(a, b)
        probs = vote_probs(self.truth, design, kappa=self.truth.vote_kappa(design,
                                                                           min_votes=None))
        # draw in the pair's canonical orientation (lower index first) so that the k-th vote
        # on a pair has the same winner whichever side each policy showed first
        swap = a > b
        probs[swap] = probs[swap][:, [1, 0, 2, 3]]
        u = common_uniforms(self.seed, pair, k)[:, None]
        outcome = (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=3).astype(np.int8)
        outcome[swap & (outcome < 2)] ^= 1
        self.n_votes += len(a)
        batch = CastVotes(a, b, outcome, design)
        self._log.append(batch)
        return batch

    def _design(self, a: np.ndarray, b: np.ndarray) -> ArenaDesign:
        """Tags, voters and styles for these pairs, from the simulator's generator."""
        cfg = self.config
        if not (cfg.categories or cfg.n_voters or cfg.style):
            return ArenaDesign(self.models, (), 0, a, b, np.zeros((len(a), 0), bool),
                               np.full(len(a), -1, np.int64), np.zeros((len(a), 0)))
        extras = simulate_design(cfg.n_models, len(a), categories=cfg.categories,
                                 multi_tag_rate=cfg.multi_tag_rate, n_voters=cfg.n_voters,
                                 voter_votes_tail=cfg.voter_votes_tail, style=False,
                                 rng=self.rng)._replace(model_a=a, model_b=b)
        if not cfg.style:
            return extras
        # answer styles from the models' profiles in the truth's calibration design, z-scored
        # with that design's mean and sd so the true style coefficients keep their meaning
        calib = self._calibration
        prompt = self.rng.normal(0.0, 0.6, size=len(a))
        side_a = _draw_side(calib.style_profile, a, prompt, self.rng)
        side_b = _draw_side(calib.style_profile, b, prompt, self.rng)
        design = extras._replace(
            tokens_a=side_a[0], tokens_b=side_b[0], headers_a=side_a[1], headers_b=side_b[1],
            lists_a=side_a[2], lists_b=side_b[2], bold_a=side_a[3], bold_b=side_b[3],
            style_profile=calib.style_profile, x_mean=calib.x_mean, x_sd=calib.x_sd)
        return design._replace(x=(design.raw_features() - calib.x_mean) / calib.x_sd)

    def frame(self) -> pd.DataFrame:
        """Every vote cast so far, in LMArena's public format (``model_a, model_b, winner``
        and, when configured, ``category``, ``judge``)."""
        if not self._log:
            return pd.DataFrame(columns=["model_a", "model_b", "winner"])
        parts = [arena_frame(v.design, v.outcome, metadata=self.config.style)
                 for v in self._log]
        return pd.concat(parts, ignore_index=True)
