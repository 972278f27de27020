"""Simulated arenas with a known truth, for the demo, tests and benchmarks.

Votes are drawn from the same outcome model that ``models/bt-davidson.toml`` fits
(:mod:`bayesarena.likelihood`): Bradley-Terry wins, Davidson ties and a both-bad share that
falls as the pair's mean strength rises. Pairs are shown uniformly at random and either model
may sit in position a. Defaults are chosen to look like a public LLM arena: a rating spread
(standard deviation) of 100 Elo, 30% of votes ties of which half "both bad" (LMArena's public
2023-24 vote releases have roughly 15% ties and 15% both-bad). Issue-driven refinements (voters,
categories, a crowded top, calibration to published boards) extend this module.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from bayesarena.likelihood import (
    OutcomeParams,
    bothbad_split,
    davidson_log_probs,
    decisive_log_probs,
    direction_log_probs,
    outcome_probs,
)
from bayesarena.scale import DEFAULT_BASE, ELO_PER_LOGIT

#: Winner labels written for each outcome, in LMArena's public format.
WINNER_LABELS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"], dtype=object)


class ArenaTruth(NamedTuple):
    """The parameters votes were simulated from."""

    models: tuple[str, ...]
    theta: np.ndarray  # (n_models,), sums to zero
    log_nu: float
    bothbad_intercept: float
    bothbad_slope: float

    def ratings(self, base: float = DEFAULT_BASE) -> pd.Series:
        """True ratings on the Elo scale (mean ``base``)."""
        return pd.Series(base + ELO_PER_LOGIT * self.theta, index=list(self.models), name="rating")


def model_names(n_models: int) -> tuple[str, ...]:
    width = len(str(n_models - 1))
    return tuple(f"model-{k:0{width}d}" for k in range(n_models))


def simulate_arena(
    n_models: int = 30,
    n_votes: int = 20_000,
    *,
    rating_sd: float = 100.0,
    tie_rate: float = 0.30,
    bothbad_share: float = 0.5,
    bothbad_slope: float = -1.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, ArenaTruth]:
    """Simulate ``n_votes`` votes among ``n_models`` models.

    Strengths are ``theta ~ N(0, (rating_sd / ELO_PER_LOGIT)^2)``, centred to sum to zero.
    The Davidson ``nu`` is solved so that the expected tie rate (both-bad included) over
    uniformly chosen pairs equals ``tie_rate``, and the both-bad intercept so that the expected
    share of both-bad among ties equals ``bothbad_share``.

    Returns the votes as a DataFrame in LMArena's format (``model_a, model_b, winner``) and the
    :class:`ArenaTruth`.
    """
    if n_models < 2:
        raise ValueError("simulate_arena needs at least 2 models")
    if not 0 < tie_rate < 1 or not 0 < bothbad_share < 1:
        raise ValueError("tie_rate and bothbad_share must be in (0, 1)")
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, rating_sd / ELO_PER_LOGIT, size=n_models)
    theta -= theta.mean()

    iu, ju = np.triu_indices(n_models, k=1)
    d_all, m_all = theta[iu] - theta[ju], 0.5 * (theta[iu] + theta[ju])

    def tie_probs(log_nu: float) -> np.ndarray:
        return np.exp(np.asarray(davidson_log_probs(d_all, log_nu)[2]))

    log_nu = brentq(lambda v: float(np.mean(tie_probs(v))) - tie_rate, -20.0, 20.0)
    p_tie = tie_probs(log_nu)
    intercept = brentq(
        lambda a: float(np.average(expit(a + bothbad_slope * m_all), weights=p_tie)
                        - bothbad_share),
        -30.0, 30.0,
    )
    truth = ArenaTruth(model_names(n_models), theta, float(log_nu), float(intercept),
                       float(bothbad_slope))
    return simulate_votes(truth, n_votes, rng=rng), truth


def simulate_votes(
    truth: ArenaTruth,
    n_votes: int,
    *,
    rng: np.random.Generator,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Draw votes from ``truth``: uniform random pairs (or the given ``(a, b)`` index arrays)."""
    n = len(truth.models)
    if pairs is None:
        a = rng.integers(0, n, size=n_votes)
        b = (a + rng.integers(1, n, size=n_votes)) % n  # uniform over the other models
    else:
        a, b = pairs
    probs = np.asarray(outcome_probs(
        truth.theta[a] - truth.theta[b], 0.5 * (truth.theta[a] + truth.theta[b]),
        ties="davidson", both_bad="modelled",
        params=OutcomeParams(truth.log_nu, truth.bothbad_intercept, truth.bothbad_slope),
    ), dtype=float)
    u = rng.random(len(a))[:, None]
    outcome = (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=3)
    names = np.asarray(truth.models, dtype=object)
    return pd.DataFrame({
        "model_a": names[a],
        "model_b": names[b],
        "winner": WINNER_LABELS[outcome],
    })


# --- The arena model: designs, truths and votes --------------------------------------------
#
# ``simulate_design`` draws everything about the votes that does not depend on the true
# parameters (pairs, tags, voters, answer styles); ``draw_truth`` / ``draw_prior_truth`` draw the
# parameters; ``simulate_outcomes`` draws the winners. Simulation-based calibration keeps one
# design and draws many truths from the prior.

#: Style features, in the order of ``x`` and ``style_coef``.
STYLE_FEATURES = ("length", "header", "list", "bold")

#: Keys of LMArena's ``conv_metadata`` counts (per side, suffixed ``_a`` / ``_b``).
HEADER_KEYS = ("h1", "h2", "h3", "h4", "h5", "h6")
LIST_KEYS = ("ordered", "unordered")
BOLD_KEYS = ("**", "__")

#: How header, list and bold totals split over their keys (illustrative shares).
_HEADER_SPLIT = (0.05, 0.35, 0.40, 0.15, 0.03, 0.02)
_LIST_SPLIT = (0.4, 0.6)
_BOLD_SPLIT = (0.95, 0.05)

#: Category names used when ``categories`` is a count (in the style of LMArena's categories).
DEFAULT_CATEGORY_NAMES = (
    "coding", "math", "creative_writing", "hard_prompts", "instruction_following",
    "multiturn", "long_user", "english", "chinese", "refusal",
)

#: Style coefficients ``beta`` for (length, header, list, bold) on the z-scored features:
#: LMArena's published "control both" values (Li, Angelopoulos & Chiang, "Does style matter?
#: Disentangling style and substance in Chatbot Arena", LMSYS blog, 2024-08-29: length 0.249,
#: markdown list 0.031, header 0.024, bold 0.019). LMArena's regression uses the same feature,
#: ``(s_a - s_b) / (s_a + s_b + 1)`` z-scored (ddof 0) over the battles, in a logistic regression
#: whose style term enters the natural logit (model columns carry +-ln 10), so the numbers are
#: on this model's scale; LMArena counts ties as half wins, a slightly different likelihood.
DEFAULT_STYLE_COEF = (0.249, 0.024, 0.031, 0.019)

#: Discriminations of the planted voter kinds: random (``kappa = 0``, every decisive vote a coin
#: flip) and adversarial (``kappa = -1``, prefers the weaker answer as firmly as the crowd
#: prefers the stronger).
RANDOM_KAPPA = 0.0
ADVERSARIAL_KAPPA = -1.0
#: ``HierarchicalTruth.voter_kind`` codes.
VOTER_KINDS = ("drawn", "random", "adversarial")

#: Default spread of the log voter weights and where the normal is cut (see ``simulate_design``).
DEFAULT_VOTER_VOTES_TAIL = 3.0
_VOTER_Z_MAX = 3.0

#: At most this many votes are used to solve ``log_nu`` and the both-bad intercept.
_SOLVE_VOTES = 200_000


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small containers: the
    allocations trigger it again and again and each pass rescans them all (it doubles the
    time); lists and dicts of ints and strings cannot form cycles, so nothing is missed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class StyleProfile(NamedTuple):
    """Each model's answer style, from which per-vote style counts are drawn.

    ``log_tokens[m]`` is the mean log answer length; ``header_rate``, ``list_rate`` and
    ``bold_rate`` are the expected counts of each markdown element in a 500-token answer.
    """

    log_tokens: np.ndarray  # (M,)
    header_rate: np.ndarray  # (M,)
    list_rate: np.ndarray  # (M,)
    bold_rate: np.ndarray  # (M,)


class ArenaDesign(NamedTuple):
    """Everything about ``n`` votes except their outcomes (one row per vote).

    Model ``model_a`` is shown first. ``tags[v, c]`` says vote ``v`` carries category ``c``;
    ``voter[v]`` is the voter's index or -1. The style fields are ``None`` without style; with
    style, ``tokens_*`` are answer lengths, ``headers_*`` ``(n, 6)`` counts of h1..h6,
    ``lists_*`` ``(n, 2)`` (ordered, unordered) and ``bold_*`` ``(n, 2)`` (``**``, ``__``), and
    ``x`` ``(n, 4)`` the z-scored features (``(n, 0)`` without style), ``x = (raw - x_mean) /
    x_sd`` with ``raw_f = (s_a - s_b) / (s_a + s_b + 1)`` (see :meth:`raw_features`).
    """

    models: tuple[str, ...]
    categories: tuple[str, ...]
    n_voters: int
    model_a: np.ndarray  # int64 (n,)
    model_b: np.ndarray  # int64 (n,)
    tags: np.ndarray  # bool (n, C)
    voter: np.ndarray  # int64 (n,), -1 for none
    x: np.ndarray  # float64 (n, 4), or (n, 0) without style
    x_mean: np.ndarray | None = None  # (4,)
    x_sd: np.ndarray | None = None  # (4,)
    tokens_a: np.ndarray | None = None
    tokens_b: np.ndarray | None = None
    headers_a: np.ndarray | None = None
    headers_b: np.ndarray | None = None
    lists_a: np.ndarray | None = None
    lists_b: np.ndarray | None = None
    bold_a: np.ndarray | None = None
    bold_b: np.ndarray | None = None
    style_profile: StyleProfile | None = None

    @property
    def n_votes(self) -> int:
        return len(self.model_a)

    @property
    def has_style(self) -> bool:
        return self.tokens_a is not None

    def voter_counts(self) -> np.ndarray:
        """Votes cast by each voter, shape ``(n_voters,)`` (votes with voter -1 not counted)."""
        return np.bincount(self.voter[self.voter >= 0], minlength=self.n_voters)

    def style_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """``(s_a, s_b)``, each ``(n, 4)``: tokens and the header, list and bold totals."""
        if not self.has_style:
            raise ValueError("this design has no style")

        def side(tokens, headers, lists, bold):
            return np.stack([tokens, headers.sum(1), lists.sum(1), bold.sum(1)], axis=1)

        return (side(self.tokens_a, self.headers_a, self.lists_a, self.bold_a),
                side(self.tokens_b, self.headers_b, self.lists_b, self.bold_b))

    def raw_features(self) -> np.ndarray:
        """``(s_a - s_b) / (s_a + s_b + 1)`` per feature, shape ``(n, 4)`` (before z-scoring)."""
        s_a, s_b = self.style_totals()
        return (s_a - s_b) / (s_a + s_b + 1.0)

    def conv_metadata(self) -> list[dict]:
        """LMArena ``conv_metadata`` dicts, one per vote (about 3 s per million votes)."""
        if not self.has_style:
            raise ValueError("this design has no style")
        rows = np.column_stack([self.tokens_a, self.tokens_b, self.headers_a, self.headers_b,
                                self.lists_a, self.lists_b, self.bold_a, self.bold_b]).tolist()
        with _gc_paused():
            return [
                {
                    "sum_assistant_a_tokens": r[0],
                    "sum_assistant_b_tokens": r[1],
                    "header_count_a": {"h1": r[2], "h2": r[3], "h3": r[4], "h4": r[5],
                                       "h5": r[6], "h6": r[7]},
                    "header_count_b": {"h1": r[8], "h2": r[9], "h3": r[10], "h4": r[11],
                                       "h5": r[12], "h6": r[13]},
                    "list_count_a": {"ordered": r[14], "unordered": r[15]},
                    "list_count_b": {"ordered": r[16], "unordered": r[17]},
                    "bold_count_a": {"**": r[18], "__": r[19]},
                    "bold_count_b": {"**": r[20], "__": r[21]},
                }
                for r in rows
            ]

    def category_labels(self) -> list:
        """Per-vote category: a list of tag names if any vote has 2+ tags, else the name."""
        names = np.asarray(self.categories, dtype=object)
        if self.tags.shape[1] == 0:
            return [None] * self.n_votes
        if not (self.tags.sum(1) >= 2).any():
            return names[self.tags.argmax(1)].tolist()
        n_cat = self.tags.shape[1]
        if n_cat <= 62:  # one integer code per tag set: a fast 1-d unique
            codes = self.tags.astype(np.int64) @ (1 << np.arange(n_cat, dtype=np.int64))
            _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        else:
            _, first, inverse = np.unique(np.packbits(self.tags, axis=1), axis=0,
                                          return_index=True, return_inverse=True)
        lists = [names[self.tags[i]].tolist() for i in first]
        with _gc_paused():
            return [lists[k].copy() for k in inverse.reshape(-1).tolist()]


def _category_names(categories: Sequence[str] | int) -> tuple[str, ...]:
    if isinstance(categories, int | np.integer):
        if categories < 0:
            raise ValueError("categories must be a count >= 0 or a sequence of names")
        if categories <= len(DEFAULT_CATEGORY_NAMES):
            return DEFAULT_CATEGORY_NAMES[:categories]
        width = len(str(categories - 1))
        return tuple(f"category-{k:0{width}d}" for k in range(categories))
    names = tuple(str(c) for c in categories)
    if len(set(names)) != len(names):
        raise ValueError("category names must be distinct")
    return names


def _draw_voters(
    n_votes: int, n_voters: int, tail: float, anonymous_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Voter index per vote (-1 for anonymous), heavy-tailed votes per voter."""
    if n_voters == 0:
        return np.full(n_votes, -1, dtype=np.int64)
    n_named = n_votes - int(rng.binomial(n_votes, anonymous_rate)) if anonymous_rate else n_votes
    z = np.minimum(rng.standard_normal(n_voters), _VOTER_Z_MAX)
    w = np.exp(tail * (z - z.max()))
    if n_named >= n_voters:
        counts = 1 + rng.multinomial(n_named - n_voters, w / w.sum())
    else:  # fewer votes than voters: some voters cast none
        counts = rng.multinomial(n_named, w / w.sum())
    voter = np.concatenate([np.repeat(np.arange(n_voters, dtype=np.int64), counts),
                            np.full(n_votes - n_named, -1, dtype=np.int64)])
    return rng.permutation(voter)


def _draw_style_profile(n_models: int, rng: np.random.Generator) -> StyleProfile:
    return StyleProfile(
        log_tokens=rng.normal(np.log(400.0), 0.35, size=n_models),
        header_rate=rng.lognormal(np.log(1.0), 1.0, size=n_models),
        list_rate=rng.lognormal(np.log(4.0), 0.8, size=n_models),
        bold_rate=rng.lognormal(np.log(3.0), 1.0, size=n_models),
    )


def _draw_side(
    profile: StyleProfile, model: np.ndarray, prompt: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """One side's (tokens, headers (n,6), lists (n,2), bold (n,2)) for the given models."""
    n = len(model)
    log_tok = profile.log_tokens[model] + prompt + rng.normal(0.0, 0.5, size=n)
    tokens = np.maximum(1, np.rint(np.exp(log_tok))).astype(np.int64)
    per_500 = tokens / 500.0
    out = [tokens]
    for rate, split in ((profile.header_rate, _HEADER_SPLIT), (profile.list_rate, _LIST_SPLIT),
                        (profile.bold_rate, _BOLD_SPLIT)):
        total = rng.poisson(rate[model] * per_500)
        out.append(rng.multinomial(total, split))
    return tuple(out)


def _zscore(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``((raw - mean) / sd, mean, sd)`` per column, ``sd`` the population (ddof 0) standard
    deviation as in LMArena's style control; a constant column keeps ``sd = 1``."""
    mean = raw.mean(axis=0)
    sd = raw.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (raw - mean) / sd, mean, sd


def simulate_design(
    n_models: int,
    n_votes: int,
    *,
    categories: Sequence[str] | int = 0,
    multi_tag_rate: float = 0.2,
    n_voters: int = 0,
    voter_votes_tail: float = DEFAULT_VOTER_VOTES_TAIL,
    anonymous_rate: float = 0.0,
    style: bool = False,
    rng: np.random.Generator | int,
) -> ArenaDesign:
    """Draw the design of ``n_votes`` votes: who meets whom, on what, by whom, in what style.

    * Pairs: ``a`` uniform over models, ``b`` uniform over the others (either order, ``a``
      shown first).
    * Tags: one primary category uniform over ``C``; with probability ``multi_tag_rate`` one
      extra distinct category, uniform over the other ``C - 1``.
    * Voters: each of ``n_voters`` voters gets weight ``w_v = exp(voter_votes_tail *
      min(z_v, 3))``, ``z_v ~ N(0, 1)`` (a log-normal, cut at +3 sd so that in large arenas no
      single voter dominates), and votes per voter are ``1 + Multinomial(N - V, w / sum w)``:
      every voter votes at least once and the total is exactly the number of named votes
      ``N`` (``Binomial(n_votes, 1 - anonymous_rate)``; the others get voter -1). The shape is
      set by the mean ``N / V``. With the default tail 3.0 and 10 votes per voter (``V =
      100,000``, ``N = 1,000,000``): about 5.7% of voters have 20+ votes and they cast about
      80% of the votes, about 65% of voters vote once, and the busiest voter casts about 1,400
      votes (0.14%); at ``V = 2,000``, ``N = 20,000`` the shares are the same but the busiest
      voter casts about 6% of the votes (the cut rarely binds among few voters). If ``N < V``
      the counts are ``Multinomial(N, w / sum w)`` and some voters cast none.
    * Style (``style=True``): each model ``m`` has a verbosity ``mu_m ~ N(log 400, 0.35^2)``
      and markdown rates per 500 tokens ``header ~ LogNormal(log 1, 1)``, ``list ~
      LogNormal(log 4, 0.8)``, ``bold ~ LogNormal(log 3, 1)``. A vote's prompt has a length
      factor ``p ~ N(0, 0.6^2)`` shared by both answers; an answer from ``m`` has ``tokens =
      round(exp(mu_m + p + N(0, 0.5^2)))`` (at least 1) and each markdown total is
      ``Poisson(rate_m * tokens / 500)``, split over its keys by a multinomial (h1..h6 with
      shares .05/.35/.40/.15/.03/.02, lists .4 ordered/.6 unordered, bold .95 ``**``/.05
      ``__``). The features ``raw_f = (s_a - s_b) / (s_a + s_b + 1)`` for length (tokens) and
      the header, list and bold totals are z-scored with these votes' mean and (ddof 0)
      standard deviation, exactly as the fit does, so a true ``beta`` is on the fitted scale.

    ``rng`` is a Generator or a seed. Style profiles are illustrative, not fitted to LMArena.
    """
    if n_models < 2:
        raise ValueError("simulate_design needs at least 2 models")
    if n_votes < 1:
        raise ValueError("n_votes must be >= 1")
    if n_voters < 0:
        raise ValueError("n_voters must be >= 0")
    if not 0 <= multi_tag_rate <= 1 or not 0 <= anonymous_rate <= 1:
        raise ValueError("multi_tag_rate and anonymous_rate must be in [0, 1]")
    rng = np.random.default_rng(rng)
    names = _category_names(categories)
    n_cat = len(names)

    a = rng.integers(0, n_models, size=n_votes)
    b = (a + rng.integers(1, n_models, size=n_votes)) % n_models

    tags = np.zeros((n_votes, n_cat), dtype=bool)
    if n_cat:
        rows = np.arange(n_votes)
        primary = rng.integers(0, n_cat, size=n_votes)
        tags[rows, primary] = True
        if n_cat >= 2 and multi_tag_rate > 0:
            extra = rng.random(n_votes) < multi_tag_rate
            second = (primary + rng.integers(1, n_cat, size=n_votes)) % n_cat
            tags[rows[extra], second[extra]] = True

    voter = _draw_voters(n_votes, n_voters, voter_votes_tail, anonymous_rate, rng)

    if not style:
        return ArenaDesign(model_names(n_models), names, n_voters, a, b, tags, voter,
                           np.zeros((n_votes, 0)))
    profile = _draw_style_profile(n_models, rng)
    prompt = rng.normal(0.0, 0.6, size=n_votes)
    side_a = _draw_side(profile, a, prompt, rng)
    side_b = _draw_side(profile, b, prompt, rng)
    design = ArenaDesign(
        model_names(n_models), names, n_voters, a, b, tags, voter, np.zeros((n_votes, 0)),
        tokens_a=side_a[0], tokens_b=side_b[0], headers_a=side_a[1], headers_b=side_b[1],
        lists_a=side_a[2], lists_b=side_b[2], bold_a=side_a[3], bold_b=side_b[3],
        style_profile=profile,
    )
    x, mean, sd = _zscore(design.raw_features())
    return design._replace(x=x, x_mean=mean, x_sd=sd)


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only array, safe to share as a NamedTuple default."""
    a.flags.writeable = False
    return a


class HierarchicalTruth(NamedTuple):
    """Parameters of the arena model (``models/arena.toml``) that votes are drawn from.

    Strength of model ``m`` on a vote with tag set ``T``: ``s_m(T) = theta[m] + sum_{c in T}
    delta[m, c]``. ``position`` is ``gamma``; ``style_coef`` is ``beta`` for (length, header,
    list, bold); ``voter_kappa[v]`` is voter ``v``'s discrimination relative to the crowd: a
    decisive vote by ``v`` goes to ``a`` with probability ``sigmoid(kappa_v (d + beta . x))``
    (``kappa = 1``: votes like the crowd; near 0: random; negative: adversarial).
    ``voter_kind`` says how each ``kappa_v`` was set: 0 drawn from ``N(1, s_kappa^2)``,
    1 random (:data:`RANDOM_KAPPA`), 2 adversarial (:data:`ADVERSARIAL_KAPPA`). Votes with no
    voter have ``kappa = 1`` (the crowd is the reference). ``sigma``, ``category_scale`` and
    ``voter_discrimination_scale`` (``s_kappa``) are the hyperparameters the truth was drawn
    with.
    """

    models: tuple[str, ...]
    categories: tuple[str, ...]
    theta: np.ndarray  # (M,), sums to zero
    delta: np.ndarray  # (M, C), each column sums to zero
    log_nu: float
    bothbad_intercept: float
    bothbad_slope: float
    position: float = 0.0
    style_coef: np.ndarray = _frozen(np.zeros(len(STYLE_FEATURES)))
    voter_kappa: np.ndarray = _frozen(np.ones(0))
    voter_kind: np.ndarray = _frozen(np.zeros(0, dtype=np.int8))
    sigma: float = float("nan")
    category_scale: np.ndarray = _frozen(np.zeros(0))
    voter_discrimination_scale: float = float("nan")

    @property
    def outcome_params(self) -> OutcomeParams:
        return OutcomeParams(log_nu=self.log_nu, bothbad_intercept=self.bothbad_intercept,
                             bothbad_slope=self.bothbad_slope)

    def ratings(self, base: float = DEFAULT_BASE) -> pd.Series:
        """Overall ratings ``base + ELO_PER_LOGIT * theta``."""
        return pd.Series(base + ELO_PER_LOGIT * self.theta, index=list(self.models),
                         name="rating")

    def category_ratings(self, base: float = DEFAULT_BASE) -> pd.DataFrame:
        """Ratings on votes tagged with one category only: ``base + ELO_PER_LOGIT *
        (theta + delta[:, c])`` (models x categories)."""
        return pd.DataFrame(base + ELO_PER_LOGIT * (self.theta[:, None] + self.delta),
                            index=list(self.models), columns=list(self.categories))

    def strengths(self, model: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """``s_m(T) = theta[m] + sum_c tags[v, c] delta[m, c]`` per vote."""
        s = self.theta[model]
        if tags.shape[1]:
            s = s + np.einsum("vc,vc->v", tags, self.delta[model])
        return s

    def vote_kappa(self, design: ArenaDesign, *, min_votes: int | None = None) -> np.ndarray:
        """Discrimination of each vote: the voter's own ``kappa``, 1 for votes with no voter
        and, when ``min_votes`` is given, 1 for voters with fewer votes than that (the fitted
        model's light voters, who vote like the crowd)."""
        kappa = np.ones(design.n_votes)
        named = design.voter >= 0
        if named.any():
            own = np.asarray(self.voter_kappa, dtype=float)
            if min_votes is not None:
                own = np.where(design.voter_counts() >= min_votes, own, 1.0)
            kappa[named] = own[design.voter[named]]
        return kappa


def _vote_gaps(truth: HierarchicalTruth, design: ArenaDesign) -> tuple[np.ndarray, np.ndarray]:
    """``d = s_a(T) - s_b(T) + gamma`` and ``m = (s_a(T) + s_b(T)) / 2`` per vote."""
    s_a = truth.strengths(design.model_a, design.tags)
    s_b = truth.strengths(design.model_b, design.tags)
    return s_a - s_b + truth.position, 0.5 * (s_a + s_b)


@jax.jit
def _mean_tie_prob(d: jax.Array, log_nu: jax.Array) -> jax.Array:
    return jnp.mean(jnp.exp(decisive_log_probs(d, log_nu)[1]))


@jax.jit
def _vote_log_probs(
    d: jax.Array, m: jax.Array, y: jax.Array, kappa: jax.Array, params: OutcomeParams
) -> jax.Array:
    """``log P(win_a, win_b, tie, tie_bothbad)`` per vote from the arena likelihood factors."""
    lp_dec, lp_tie = decisive_log_probs(d, params.log_nu)
    lp_a, lp_b = direction_log_probs(y, kappa)
    lp_t, lp_bb = bothbad_split(lp_tie, m, params)
    return jnp.stack([lp_dec + lp_a, lp_dec + lp_b, lp_t, lp_bb], axis=1)


def _solve_ties(
    d: np.ndarray, m: np.ndarray, tie_rate: float, bothbad_share: float, slope: float
) -> tuple[float, float]:
    """``log_nu`` with mean ``P(tie incl. both bad)`` = ``tie_rate`` over the votes, and the
    both-bad intercept with ``P(tie)``-weighted mean ``sigmoid(a + b m)`` = ``bothbad_share``."""
    d, m = d[:_SOLVE_VOTES], m[:_SOLVE_VOTES]
    d_jax = jnp.asarray(d)
    log_nu = brentq(lambda v: float(_mean_tie_prob(d_jax, v)) - tie_rate, -20.0, 20.0)
    weights = np.exp(np.asarray(decisive_log_probs(d_jax, log_nu)[1]))
    intercept = brentq(
        lambda a: float(np.average(expit(a + slope * m), weights=weights)) - bothbad_share,
        -30.0, 30.0,
    )
    return float(log_nu), float(intercept)


def _draw_voter_kappa(
    n_voters: int, sd: float, random_share: float, adversarial_share: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``kappa_v ~ N(1, sd^2)``, then the random and adversarial shares planted at random."""
    kappa = rng.normal(1.0, sd, size=n_voters)
    kind = np.zeros(n_voters, dtype=np.int8)
    n_random = round(random_share * n_voters)
    n_adv = round(adversarial_share * n_voters)
    if n_random + n_adv > n_voters:
        raise ValueError("random_voter_share + adversarial_voter_share must be <= 1")
    planted = rng.permutation(n_voters)[: n_random + n_adv]
    kind[planted[:n_random]], kappa[planted[:n_random]] = 1, RANDOM_KAPPA
    kind[planted[n_random:]], kappa[planted[n_random:]] = 2, ADVERSARIAL_KAPPA
    return kappa, kind


def _centred_normal(scale: np.ndarray | float, shape: tuple[int, ...],
                    rng: np.random.Generator) -> np.ndarray:
    """ZeroSumNormal(scale) over the first axis: ``N(0, scale^2)`` draws minus their mean."""
    z = rng.normal(0.0, 1.0, size=shape) * scale
    return z - z.mean(axis=0)


def draw_truth(
    design: ArenaDesign,
    *,
    rng: np.random.Generator | int,
    rating_sd: float = 100.0,
    category_sd: float | Sequence[float] = 40.0,
    tie_rate: float = 0.30,
    bothbad_share: float = 0.5,
    bothbad_slope: float = -1.0,
    position: float = 0.05,
    style_coef: Sequence[float] = DEFAULT_STYLE_COEF,
    voter_discrimination_sd: float = 0.3,
    random_voter_share: float = 0.0,
    adversarial_voter_share: float = 0.0,
    crowded_top: int = 0,
    crowded_gap: float = 8.0,
) -> HierarchicalTruth:
    """A realistic truth for ``design`` (ratings and category spreads in Elo points).

    * ``theta ~ N(0, (rating_sd / ELO_PER_LOGIT)^2)``, centred to sum to zero; with
      ``crowded_top = K`` the ``K`` best models are then squeezed below the best one at
      ``crowded_gap`` Elo steps (a crowded top: at LMArena the text board's top 10 spanned
      49 Elo in late 2025, about 5 Elo apart), and theta is centred again;
    * ``delta[:, c] ~ N(0, tau_c^2)``, centred per category, ``tau_c = category_sd_c /
      ELO_PER_LOGIT`` (one value or one per category);
    * ``gamma = position``, ``beta = style_coef`` (default: LMArena's published
      coefficients, :data:`DEFAULT_STYLE_COEF`);
    * ``log_nu`` solved so that the mean over this design's votes of ``P(tie incl. both bad |
      d)`` equals ``tie_rate``, with ``d = s_a(T) - s_b(T) + gamma`` (the realised tie rate then
      matches in expectation, whatever the voters and styles), and the both-bad intercept so
      that the ``P(tie)``-weighted mean of ``sigmoid(a + b m)`` equals ``bothbad_share``;
    * every voter's discrimination ``kappa_v ~ N(1, voter_discrimination_sd^2)`` (light voters
      included), then a random ``random_voter_share`` of voters set to ``kappa = 0``
      (:data:`RANDOM_KAPPA`) and ``adversarial_voter_share`` to ``kappa = -1``
      (:data:`ADVERSARIAL_KAPPA`); votes with no voter have ``kappa = 1``.
    """
    if not 0 < tie_rate < 1 or not 0 < bothbad_share < 1:
        raise ValueError("tie_rate and bothbad_share must be in (0, 1)")
    rng = np.random.default_rng(rng)
    n_models, n_cat = len(design.models), len(design.categories)
    style_coef = np.asarray(style_coef, dtype=float)
    if style_coef.shape != (len(STYLE_FEATURES),):
        raise ValueError(f"style_coef needs {len(STYLE_FEATURES)} values {STYLE_FEATURES}")
    sigma = rating_sd / ELO_PER_LOGIT
    theta = crowd_top(_centred_normal(sigma, (n_models,), rng), crowded_top, crowded_gap)
    tau = np.broadcast_to(np.asarray(category_sd, dtype=float) / ELO_PER_LOGIT, (n_cat,)).copy()
    delta = _centred_normal(tau, (n_models, n_cat), rng)
    kappa, kind = _draw_voter_kappa(design.n_voters, voter_discrimination_sd,
                                    random_voter_share, adversarial_voter_share, rng)
    truth = HierarchicalTruth(
        design.models, design.categories, theta, delta, 0.0, 0.0, float(bothbad_slope),
        float(position), style_coef, kappa, kind, float(sigma), tau,
        float(voter_discrimination_sd),
    )
    d, m = _vote_gaps(truth, design)
    log_nu, intercept = _solve_ties(d, m, tie_rate, bothbad_share, bothbad_slope)
    return truth._replace(log_nu=log_nu, bothbad_intercept=intercept)


def crowd_top(theta: np.ndarray, k: int, gap: float) -> np.ndarray:
    """Squeeze the ``k`` strongest of ``theta`` to ``gap`` Elo steps below the best, then
    centre (``k <= 1`` leaves theta as it is)."""
    if k <= 1:
        return theta
    if k > len(theta):
        raise ValueError(f"crowded_top = {k} exceeds the {len(theta)} models")
    theta = theta.copy()
    order = np.argsort(-theta, kind="stable")[:k]
    theta[order] = theta[order[0]] - gap / ELO_PER_LOGIT * np.arange(k)
    return theta - theta.mean()


def draw_prior_truth(
    design: ArenaDesign, *, rng: np.random.Generator | int, min_votes: int = 20
) -> HierarchicalTruth:
    """A truth drawn from the arena model's default priors, for simulation-based calibration.

    ``sigma ~ HalfNormal(1)``, ``theta ~ ZeroSumNormal(sigma)``; ``tau_c ~ HalfNormal(0.5)``,
    ``delta[:, c] ~ ZeroSumNormal(tau_c)``; ``gamma ~ N(0, 0.5)``; ``log_nu ~ N(-0.5, 1)``;
    both-bad ``a ~ N(0, 1.5)``, ``b ~ N(0, 1)``; ``beta_f ~ N(0, 0.5)``; ``s_kappa ~
    HalfNormal(0.5)`` (``voter_discrimination_scale``), ``kappa_v = 1 + s_kappa z_v`` for voters
    with at least ``min_votes`` votes in ``design`` and exactly 1 for lighter voters (as for
    votes with no voter), so :meth:`~HierarchicalTruth.vote_kappa` without ``min_votes``
    already pools. These are the defaults of ``models/arena.toml``; a spec with other priors
    must draw its own truth (construct :class:`HierarchicalTruth` directly).
    """
    rng = np.random.default_rng(rng)
    n_models, n_cat = len(design.models), len(design.categories)
    sigma = abs(rng.normal(0.0, 1.0))
    theta = _centred_normal(sigma, (n_models,), rng)
    tau = np.abs(rng.normal(0.0, 0.5, size=n_cat))
    delta = _centred_normal(tau, (n_models, n_cat), rng)
    position = rng.normal(0.0, 0.5)
    log_nu = rng.normal(-0.5, 1.0)
    intercept, slope = rng.normal(0.0, 1.5), rng.normal(0.0, 1.0)
    beta = rng.normal(0.0, 0.5, size=len(STYLE_FEATURES))
    s_kappa = abs(rng.normal(0.0, 0.5))
    z = rng.standard_normal(design.n_voters)
    heavy = design.voter_counts() >= min_votes
    kappa = np.where(heavy, 1.0 + s_kappa * z, 1.0)
    return HierarchicalTruth(
        design.models, design.categories, theta, delta, float(log_nu), float(intercept),
        float(slope), float(position), beta, kappa, np.zeros(design.n_voters, dtype=np.int8),
        float(sigma), tau, float(s_kappa),
    )


def vote_probs(
    truth: HierarchicalTruth, design: ArenaDesign, *, kappa: np.ndarray | None = None
) -> np.ndarray:
    """Probabilities of ``(win_a, win_b, tie, tie_bothbad)`` per vote, shape ``(n, 4)``.

    With ``d = s_a(T) - s_b(T) + gamma`` (model a shown first), ``m = (s_a(T) + s_b(T)) / 2``,
    ``e = beta . x`` and discrimination ``kappa`` (default
    :meth:`HierarchicalTruth.vote_kappa`): ``P(decisive) = 2 cosh(d/2) / (2 cosh(d/2) + nu)``;
    ``P(a | decisive) = sigmoid(kappa (d + e))``;
    ``P(tie) = (1 - P(decisive)) (1 - sigmoid(a + b m))``;
    ``P(tie_bothbad) = (1 - P(decisive)) sigmoid(a + b m)``. Computed with
    :func:`~bayesarena.likelihood.decisive_log_probs`, :func:`~bayesarena.likelihood.
    direction_log_probs` and :func:`~bayesarena.likelihood.bothbad_split`, the fitted model's
    own likelihood.
    """
    d, m = _vote_gaps(truth, design)
    e = design.x @ np.asarray(truth.style_coef, dtype=float) if design.x.shape[1] else 0.0
    if kappa is None:
        kappa = truth.vote_kappa(design)
    kappa = np.broadcast_to(np.asarray(kappa, dtype=float), d.shape)
    return np.exp(np.asarray(_vote_log_probs(d, m, d + e, kappa, truth.outcome_params)))


def simulate_outcomes(
    truth: HierarchicalTruth,
    design: ArenaDesign,
    rng: np.random.Generator | int,
    *,
    kappa: np.ndarray | None = None,
) -> np.ndarray:
    """Outcome codes (int8) per vote: 0 win_a, 1 win_b, 2 tie, 3 tie_bothbad.

    Drawn from :func:`vote_probs`; pass ``kappa`` (per vote) to control the voters'
    discriminations (default: every voter's own, ``truth.vote_kappa(design)``), e.g.
    ``truth.vote_kappa(design, min_votes=20)`` to let light voters vote like the crowd as the
    fitted model assumes.
    """
    rng = np.random.default_rng(rng)
    probs = vote_probs(truth, design, kappa=kappa)
    u = rng.random(len(probs))[:, None]
    return (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=3).astype(np.int8)


def voter_names(n_voters: int) -> np.ndarray:
    """``voter-00000``, ... (at least five digits), as an object array."""
    width = max(5, len(str(max(n_voters - 1, 0))))
    return np.array([f"voter-{k:0{width}d}" for k in range(n_voters)], dtype=object)


def arena_frame(
    design: ArenaDesign, outcome: np.ndarray, *, metadata: bool = True
) -> pd.DataFrame:
    """The votes in LMArena's public format.

    Columns ``model_a, model_b, winner`` and, when present in the design: ``category`` (a list
    of tag names per row when any vote has 2+ tags, else a string), ``judge`` (voter name, None
    for votes with no voter) and ``conv_metadata`` (a dict per row; only with
    ``metadata=True``, as building the dicts is the slow part: about 3 s per million votes).
    """
    names = np.asarray(design.models, dtype=object)
    frame = {
        "model_a": names[design.model_a],
        "model_b": names[design.model_b],
        "winner": WINNER_LABELS[np.asarray(outcome)],
    }
    if design.categories:
        frame["category"] = design.category_labels()
    if design.n_voters:
        judges = np.append(voter_names(design.n_voters), None)
        frame["judge"] = judges[design.voter]  # -1 picks the trailing None
    if metadata and design.has_style:
        frame["conv_metadata"] = design.conv_metadata()
    return pd.DataFrame(frame)


def simulate_hierarchical_arena(
    n_models: int = 30,
    n_votes: int = 20_000,
    *,
    categories: Sequence[str] | int = ("coding", "math", "creative_writing", "hard_prompts"),
    n_voters: int | None = None,
    style: bool = True,
    multi_tag: bool = True,
    metadata: bool = True,
    min_votes: int | None = 20,
    seed: int = 0,
    **truth_options,
) -> tuple[pd.DataFrame, HierarchicalTruth]:
    """Simulate votes from the full arena model, in LMArena's public format.

    The design is :func:`simulate_design` (``multi_tag_rate`` 0.2 if ``multi_tag`` else 0;
    ``n_voters`` defaults to ``n_votes // 10``), the truth :func:`draw_truth` with
    ``truth_options`` (e.g. ``rating_sd``, ``tie_rate``, ``position``, ``style_coef``,
    ``voter_discrimination_sd``, ``random_voter_share``), the winners :func:`simulate_outcomes`
    with ``kappa = truth.vote_kappa(design, min_votes=min_votes)``: voters with fewer than
    ``min_votes`` votes (and votes with no voter) have ``kappa = 1`` and vote like the crowd,
    exactly as the fitted model (default ``min_votes`` 20) assumes, while ``truth.voter_kappa``
    still holds every voter's drawn value; ``min_votes=None`` uses every voter's own ``kappa``.
    The frame is :func:`arena_frame` (``metadata=False`` leaves out the ``conv_metadata``
    dicts). One generator seeded with ``seed`` draws all three in turn.
    """
    rng = np.random.default_rng(seed)
    design = simulate_design(
        n_models, n_votes, categories=categories, multi_tag_rate=0.2 if multi_tag else 0.0,
        n_voters=n_votes // 10 if n_voters is None else n_voters, style=style, rng=rng,
    )
    truth = draw_truth(design, rng=rng, **truth_options)
    outcome = simulate_outcomes(truth, design, rng,
                                kappa=truth.vote_kappa(design, min_votes=min_votes))
    return arena_frame(design, outcome, metadata=metadata), truth
