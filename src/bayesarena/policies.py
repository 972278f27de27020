"""Pair-selection policies: which pairs the next ``n`` votes should go to.

A policy turns a :class:`~bayesarena.belief.GaussianBelief` into a batch of pairs.

Score-based (greedy) objectives -- ``eig``, ``rank``, ``topk`` (:mod:`bayesarena.information`):
    each slot takes the allowed pair with the highest score, then the belief's covariance gets
    the rank-one update a vote on that pair would make under the linear-Gaussian proxy
    (``Sigma <- Sigma - k k' / c``, ``k = Sigma u``, ``c = u' Sigma u + 1 / F``; the outcome
    does not enter, so no outcome has to be imagined). Pairs that share what was just bought
    lose score, which keeps a batch from being ``k`` copies of one pair (the greedy
    conditional-variance rule of sequential optimal design; Krause & Guestrin 2005 for its
    near-optimality under submodular objectives). ``rank`` and ``topk`` scores are updated
    exactly through that covariance (with their target weights held for the batch); ``eig``
    scores are rescaled by ``log(1 + F var d') / log(1 + F var d)``, the ratio of the
    linear-Gaussian information before and after.

Randomised objectives:
    ``thompson`` -- double Thompson sampling for finding the best (Wu & Liu 2016): ``a`` is the
    best model in one posterior draw, ``b`` the best other model in a second draw.
    ``arena`` -- the Chatbot Arena rule (Chiang et al. 2024, Eq. 9):
    ``P(pair) prop. to sqrt(S / n) - sqrt(S / (n + 1))``, ``S`` the variance of the pair's win
    probability and ``n`` its votes (the batch's own picks included). Pairs with no vote yet
    are taken first, in proportion to ``sqrt(S)`` (the formula's limit as ``n -> 0`` puts them
    above every shown pair).
    ``uniform`` -- every allowed pair equally likely.

Mixtures (``{"topk": 0.7, "eig": 0.3}``) draw each slot's objective with those probabilities;
every slot, whatever chose it, updates the shared covariance. With ``combine="scores"`` a
mixture of greedy objectives is instead one objective, the weighted sum of their scores
(``eig + 2 topk``: nats about the strengths plus twice the nats about top-k membership, a
weighted information utility), so every slot prefers pairs that serve both.

The exploration ``floor`` sends a share of the slots to uniformly drawn pairs, so every
allowed pair has probability at least ``floor / n_allowed_pairs`` of any vote: estimates
stay auditable, and no pair is starved by the policy's own beliefs. ``exclude`` removes
models; ``budget`` caps how many of the batch's votes a model may take; ``weights`` multiply
pair scores (and the randomised policies' probabilities) by ``w_a w_b``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from bayesarena.belief import GaussianBelief, expected_fisher, gap_quadrature, pair_position
from bayesarena.information import (
    eig_gaussian,
    pair_quadratic,
    rank_target,
    topk_target,
)
from bayesarena.likelihood import outcome_probs

GREEDY = ("eig", "rank", "topk")
RANDOMISED = ("thompson", "arena", "uniform")
OBJECTIVES = GREEDY + RANDOMISED
#: Draws used by Thompson sampling when only a Gaussian belief is given.
THOMPSON_DRAWS = 1000


class Batch(NamedTuple):
    """A batch of pair choices, in the order they were made."""

    pair: np.ndarray  # (n,) index into the belief's triu pair order
    model_a: np.ndarray  # (n,) model index
    model_b: np.ndarray  # (n,) model index
    source: np.ndarray  # (n,) objective that chose the slot, or "floor"
    score: np.ndarray  # (n,) the chosen pair's score when chosen (nan for randomised picks)


def objective_weights(objective: str | Mapping[str, float]) -> dict[str, float]:
    """Normalised mixture weights from an objective name or a ``{name: weight}`` mapping."""
    mix = {objective: 1.0} if isinstance(objective, str) else dict(objective)
    unknown = [k for k in mix if k not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}: choose from {list(OBJECTIVES)}")
    if not mix or any(not np.isfinite(w) or w < 0 for w in mix.values()) or not sum(
            mix.values()) > 0:
        raise ValueError(f"objective weights must be >= 0 with a positive sum, got {mix}")
    total = sum(mix.values())
    return {k: w / total for k, w in mix.items() if w > 0}


class _Greedy:
    """Scores of the greedy objectives and their updates as the batch fills."""

    def __init__(self, belief: GaussianBelief, names: list[str], top_k: int,
                 eig: np.ndarray | None):
        self.i, self.j = belief.pairs()
        mom = belief.pair_moments()
        self._belief, self._moments, self._fisher = belief, mom, None
        self._inv_fisher = self._eig_per_log = None
        self.picks = 0
        self.cov = belief.cov.copy()
        self.var_d = mom.var_d.copy()
        self.targets: dict[str, np.ndarray] = {}
        self.quads: dict[str, np.ndarray] = {}
        for name in names:
            if name == "eig":
                self.eig0 = eig_gaussian(belief, mom) if eig is None else np.asarray(eig)
                self.var0 = mom.var_d.copy()
            else:
                target = rank_target(belief) if name == "rank" else topk_target(belief, top_k)
                self.targets[name] = target
                self.quads[name] = pair_quadratic(self.cov @ target @ self.cov,
                                                  (self.i, self.j))

    @property
    def fisher(self) -> np.ndarray:
        """Expected Fisher information per pair, computed on first use (a one-pick ``eig``
        recommendation never needs it)."""
        if self._fisher is None:
            self._fisher = expected_fisher(self._belief, self._moments)
        return self._fisher

    @property
    def inv_fisher(self) -> np.ndarray:
        """``1 / F`` per pair (``inf`` where a vote carries no information)."""
        if self._inv_fisher is None:
            f = self.fisher
            with np.errstate(divide="ignore"):
                self._inv_fisher = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)
        return self._inv_fisher

    def scores(self, name: str) -> np.ndarray:
        """Current scores; the same values as :func:`~bayesarena.information.per_vote_gain`
        and the ``eig`` rescaling of the module docstring, with the batch's constants
        (``1 / F``, ``eig0 / log(1 + F var0)``) computed once: this runs once per slot."""
        if name == "eig":
            if self.picks == 0:
                return self.eig0
            if self._eig_per_log is None:
                log0 = np.log1p(self.fisher * self.var0)
                self._eig_per_log = np.divide(self.eig0, log0, out=np.zeros_like(log0),
                                              where=log0 > 0)
            return self._eig_per_log * np.log1p(self.fisher * self.var_d)
        # numerator / (var d + 1 / F); 0 where F = 0 (division by inf)
        return np.maximum(self.quads[name], 0.0) / (self.var_d + self.inv_fisher)

    def observe(self, pair: int, a: int, b: int) -> None:
        """Rank-one update of the covariance for one vote on ``(a, b)``."""
        self.picks += 1
        if not self.fisher[pair] > 0:
            return
        k = self.cov[:, a] - self.cov[:, b]
        c = self.var_d[pair] + self.inv_fisher[pair]
        dk = k[self.i] - k[self.j]
        for name, target in self.targets.items():
            tk = target @ k
            g = self.cov @ tk
            # quad' = quad - 2 / c dg dk + (k' T k) / c^2 dk^2, in place
            self.quads[name] += dk * ((-2.0 / c) * (g[self.i] - g[self.j])
                                      + (float(k @ tk) / c**2) * dk)
        self.cov -= np.multiply.outer(k, k / c)
        self.var_d -= dk * dk / c
        np.maximum(self.var_d, 0.0, out=self.var_d)


def arena_rule_weights(
    win_var: np.ndarray, votes: np.ndarray
) -> np.ndarray:
    """Chatbot Arena Eq. 9 weights ``sqrt(S / n) - sqrt(S / (n + 1))`` (unnormalised), with
    unvoted pairs (``n = 0``) taken first in proportion to ``sqrt(S)``: see the module doc."""
    win_var = np.maximum(np.asarray(win_var, float), 0.0)
    votes = np.asarray(votes, float)
    fresh = votes == 0
    if fresh.any():
        return np.where(fresh, np.sqrt(win_var), 0.0)
    return np.sqrt(win_var / votes) - np.sqrt(win_var / (votes + 1.0))


def win_probability_variance(belief: GaussianBelief) -> np.ndarray:
    """``Var[P(a beats b | theta)]`` per pair under the belief (Gauss-Hermite over the gap)."""
    d, m, w = gap_quadrature(belief.pair_moments())
    lik = belief.likelihood
    p = np.asarray(outcome_probs(d, m, ties=lik.ties, both_bad=lik.both_bad,
                                 params=belief.outcome, link=lik.link))
    win = p[..., 0] + 0.5 * (p[..., 2] + p[..., 3])  # a tie counts half, as in the arena
    return np.maximum(win**2 @ w - (win @ w) ** 2, 0.0)


def select_batch(
    belief: GaussianBelief,
    n: int,
    *,
    objective: str | Mapping[str, float] = "eig",
    rng: np.random.Generator,
    floor: float = 0.0,
    top_k: int = 5,
    exclude: np.ndarray | None = None,
    budget: np.ndarray | None = None,
    model_weights: np.ndarray | None = None,
    distinct: bool = False,
    draws: np.ndarray | None = None,
    eig: np.ndarray | None = None,
    combine: str = "slots",
) -> Batch:
    """Choose ``n`` pairs for the next votes (see the module docstring).

    ``exclude``: boolean mask of models never to use; ``budget``: votes each model may take in
    this batch (``None``: unlimited); ``model_weights``: per-model score multipliers;
    ``distinct``: no pair twice (a recommendation list) rather than an allocation of votes;
    ``draws``: strength draws for Thompson sampling (default: draws from the belief); ``eig``:
    precomputed EIG per pair (e.g. from posterior draws) to use instead of the quadrature;
    ``combine``: ``"slots"`` (each slot draws one objective of the mixture) or ``"scores"``
    (greedy objectives only: every slot maximises the weighted sum of their scores).
    """
    mix = objective_weights(objective)
    if combine not in ("slots", "scores"):
        raise ValueError(f"combine must be 'slots' or 'scores', got {combine!r}")
    summed = combine == "scores" and len(mix) > 1
    if summed and not set(mix) <= set(GREEDY):
        raise ValueError(f"combine='scores' sums greedy objectives {list(GREEDY)} only, got "
                         f"{list(mix)}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    nm = belief.n_models
    i, j = belief.pairs()
    excluded = np.zeros(nm, bool) if exclude is None else np.asarray(exclude, bool)
    left = np.full(nm, np.inf) if budget is None else np.asarray(budget, float).copy()
    pair_w = (np.ones(len(i)) if model_weights is None
              else np.asarray(model_weights, float)[i] * np.asarray(model_weights, float)[j])
    allowed = ~excluded[i] & ~excluded[j] & (left[i] > 0) & (left[j] > 0) & (pair_w > 0)
    greedy_names = [k for k in mix if k in GREEDY]
    state = _Greedy(belief, greedy_names, top_k, eig) if greedy_names else None
    if "thompson" in mix and draws is None:
        draws = belief.sample(THOMPSON_DRAWS, rng)
    if "arena" in mix:
        win_var = win_probability_variance(belief)
        votes = belief.pair_votes.astype(float).copy()
    names, probs = list(mix), np.array(list(mix.values()))
    out_pair = np.empty(n, np.int64)
    out_src = np.empty(n, object)
    out_score = np.full(n, np.nan)
    # each slot's objective: "floor" with probability `floor`, else drawn from the mixture
    if summed:
        label = "+".join(f"{w:.3g}*{k}" for k, w in mix.items())
        sources = np.full(n, label, dtype=object)
    else:
        sources = np.asarray(names, dtype=object)[rng.choice(len(names), size=n, p=probs)]
    if floor > 0:
        sources[rng.random(n) < floor] = "floor"
    if budget is None and not distinct and set(sources) <= {"uniform", "floor"}:
        return _independent_batch(sources, allowed, pair_w, i, j, rng)
    for slot in range(n):
        if not allowed.any():
            raise ValueError(f"no allowed pair left after {slot} of {n} picks (exclusions, "
                             "budgets or distinct pairs exhausted the candidates)")
        src = sources[slot]
        if src in GREEDY or (summed and src != "floor"):
            score = (sum(w * state.scores(k) for k, w in mix.items()) if summed
                     else state.scores(src)) * pair_w
            pick = int(np.argmax(np.where(allowed, score, -np.inf)))
            out_score[slot] = score[pick]
        elif src == "thompson":
            pick = _thompson_pick(draws, allowed, i, j, nm, rng)
        else:
            if src == "arena":  # the rule among the allowed pairs only
                weights = arena_rule_weights(win_var, np.where(allowed, votes, np.inf)) * pair_w
            else:  # uniform or the floor
                weights = pair_w if src == "uniform" else np.ones(len(i))
            weights = np.where(allowed, weights, 0.0)
            if not weights.sum() > 0:
                weights = allowed.astype(float)
            pick = int(rng.choice(len(i), p=weights / weights.sum()))
        a, b = int(i[pick]), int(j[pick])
        out_pair[slot], out_src[slot] = pick, src
        if state is not None and slot < n - 1:
            state.observe(pick, a, b)
        if "arena" in mix:
            votes[pick] += 1
        left[a] -= 1
        left[b] -= 1
        if left[a] <= 0 or left[b] <= 0:
            allowed &= (left[i] > 0) & (left[j] > 0)
        if distinct:
            allowed[pick] = False
    return Batch(out_pair, i[out_pair], j[out_pair], out_src, out_score)


def _independent_batch(sources: np.ndarray, allowed: np.ndarray, pair_w: np.ndarray,
                       i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> Batch:
    """All slots at once when every slot is an independent uniform or floor draw (no budget,
    no distinct pairs): the same distribution as the slot-by-slot loop, without the loop."""
    if not allowed.any():
        raise ValueError("no allowed pair left after 0 picks (exclusions or budgets exhausted "
                         "the candidates)")
    pick = np.empty(len(sources), np.int64)
    for src in ("uniform", "floor"):
        rows = np.flatnonzero(sources == src)
        w = np.where(allowed, pair_w if src == "uniform" else 1.0, 0.0)
        if not w.sum() > 0:
            w = allowed.astype(float)
        pick[rows] = rng.choice(len(i), size=len(rows), p=w / w.sum())
    return Batch(pick, i[pick], j[pick], sources, np.full(len(sources), np.nan))


def _thompson_pick(draws: np.ndarray, allowed: np.ndarray, i: np.ndarray, j: np.ndarray,
                   n_models: int, rng: np.random.Generator) -> int:
    """Double Thompson sampling among allowed pairs: best in one draw, best partner in another."""
    usable = np.zeros(n_models, bool)
    usable[i[allowed]] = usable[j[allowed]] = True
    first, second = draws[rng.integers(len(draws))], draws[rng.integers(len(draws))]
    a = int(np.argmax(np.where(usable, first, -np.inf)))
    partner = np.zeros(n_models, bool)
    partner[j[allowed & (i == a)]] = True
    partner[i[allowed & (j == a)]] = True
    b = int(np.argmax(np.where(partner, second, -np.inf)))
    return int(pair_position(np.array(a), np.array(b), n_models))
