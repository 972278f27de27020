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

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from bayesarena.likelihood import OutcomeParams, davidson_log_probs, outcome_probs
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
