"""Pairwise outcome likelihoods as small pure JAX functions.

Every function takes the strength difference ``d = theta_i - theta_j`` (and, for the
both-bad share, the pair's mean strength ``m = (theta_i + theta_j) / 2``) and returns the
log-probabilities of one vote's outcome in the order of :data:`bayesarena.votes.CELL_OUTCOMES`
``(win_i, win_j, tie, tie_bothbad)`` along the last axis. A cell's log-likelihood is then
``sum(counts * log_probs)`` (the multinomial coefficient is constant in the parameters and is
added only where a normalised value is needed, see :func:`multinomial_log_coefficient`).

Models
------
Bradley-Terry (Bradley & Terry 1952):
    P(i) = sigmoid(d), P(j) = sigmoid(-d).

Davidson (1970) ties, with pi = exp(theta) and D = pi_i + pi_j + nu sqrt(pi_i pi_j):
    P(i) = pi_i / D, P(j) = pi_j / D, P(tie) = nu sqrt(pi_i pi_j) / D.
    Dividing through by sqrt(pi_i pi_j): log D' = log(e^{d/2} + e^{-d/2} + nu), computed in the
    closed form |d|/2 + log1p(e^{-|d|} + nu e^{-|d|/2}), which is stable for any d and about
    twice as fast as a three-term logaddexp. The closed form is smooth at d = 0 (both one-sided
    derivatives vanish), so the kink of |d| does not reach the gradient.

Ties as half wins (LMArena's published convention; pseudo-likelihood):
    a tie contributes 1/2 log sigmoid(d) + 1/2 log sigmoid(-d).

Both bad, as its own outcome: among ties, the share that is "both bad" is
    s = sigmoid(a + b m),
so P(tie_bothbad) = P(tie) s and P(ordinary tie) = P(tie) (1 - s). With b < 0 both-bad votes
say that the pair is weak in absolute terms, information that a plain tie does not carry.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln


class OutcomeParams(NamedTuple):
    """Parameters of the outcome model beyond the strengths (``None`` when unused)."""

    log_nu: jax.Array | float | None = None
    bothbad_intercept: jax.Array | float | None = None
    bothbad_slope: jax.Array | float | None = None


def bt_log_probs(d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Bradley-Terry: ``(log P(i), log P(j)) = (log sigmoid(d), log sigmoid(-d))``."""
    return jax.nn.log_sigmoid(d), jax.nn.log_sigmoid(-d)


def davidson_log_normaliser(d: jax.Array, log_nu: jax.Array | float) -> jax.Array:
    """``log(e^{d/2} + e^{-d/2} + nu)``, as ``|d|/2 + log1p(e^{-|d|} + nu e^{-|d|/2})``."""
    a = jnp.abs(d)
    return 0.5 * a + jnp.log1p(jnp.exp(-a) + jnp.exp(log_nu - 0.5 * a))


def davidson_log_probs(
    d: jax.Array, log_nu: jax.Array | float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Davidson (1970): ``(log P(i), log P(j), log P(tie))`` for strength gap ``d``."""
    log_z = davidson_log_normaliser(d, log_nu)
    return 0.5 * d - log_z, -0.5 * d - log_z, log_nu - log_z


def log_outcome_probs(
    d: jax.Array,
    mean_strength: jax.Array,
    *,
    ties: str,
    both_bad: str,
    params: OutcomeParams,
) -> jax.Array:
    """Log-probability of each outcome ``(win_i, win_j, tie, tie_bothbad)``; shape ``(..., 4)``.

    ``ties`` is ``"drop" | "davidson" | "half"``; ``both_bad`` is ``"drop" | "as_tie" |
    "modelled"`` (see the module docstring for the formulas). Outcomes a spec drops get log
    weight 0: their counts are removed from the data before fitting, so the value never
    matters; it is kept finite so ``counts * log_probs`` never produces ``0 * inf``.
    """
    if ties == "davidson":
        lp_i, lp_j, lp_tie = davidson_log_probs(d, params.log_nu)
    else:
        lp_i, lp_j = bt_log_probs(d)
        lp_tie = 0.5 * (lp_i + lp_j) if ties == "half" else jnp.zeros_like(d)
    if both_bad == "modelled":
        share_logit = params.bothbad_intercept + params.bothbad_slope * mean_strength
        lp_bothbad = lp_tie + jax.nn.log_sigmoid(share_logit)
        lp_tie = lp_tie + jax.nn.log_sigmoid(-share_logit)
    elif both_bad == "as_tie":
        lp_bothbad = lp_tie
    else:
        lp_bothbad = jnp.zeros_like(d)
    return jnp.stack([lp_i, lp_j, lp_tie, lp_bothbad], axis=-1)


def cell_log_likelihood(counts: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Unnormalised log-likelihood of each cell: ``sum_k counts[..., k] * log_probs[..., k]``."""
    return jnp.sum(counts * log_probs, axis=-1)


def multinomial_log_coefficient(counts: jax.Array) -> jax.Array:
    """``log( n! / prod_k counts_k! )`` per cell: turns the cell log-likelihood into a log pmf."""
    n = jnp.sum(counts, axis=-1)
    return gammaln(n + 1.0) - jnp.sum(gammaln(counts + 1.0), axis=-1)


def outcome_probs(
    d: jax.Array,
    mean_strength: jax.Array,
    *,
    ties: str,
    both_bad: str,
    params: OutcomeParams,
) -> jax.Array:
    """Probabilities of ``(win_i, win_j, tie, tie_bothbad)`` for prediction.

    For ``ties = "half"`` (a pseudo-likelihood with no tie probability) and for dropped
    outcomes, the returned vector is the Bradley-Terry win probabilities with zero tie mass.
    """
    if ties == "davidson":
        return jnp.exp(log_outcome_probs(d, mean_strength, ties=ties,
                                         both_bad="drop" if both_bad == "as_tie" else both_bad,
                                         params=params)
                       ) * _keep_mask(both_bad)
    p_i = jax.nn.sigmoid(d)
    zeros = jnp.zeros_like(d)
    return jnp.stack([p_i, 1.0 - p_i, zeros, zeros], axis=-1)


def _keep_mask(both_bad: str) -> jax.Array:
    return jnp.array([1.0, 1.0, 1.0, 0.0 if both_bad != "modelled" else 1.0])


# --- The arena model's factorised likelihood ----------------------------------------------
#
# Davidson's model factorises exactly into "is the vote decisive?" and "who wins a decisive
# vote?":  P(i) = P(decisive | d) sigmoid(d), P(j) = P(decisive | d) sigmoid(-d), with
# P(decisive | d) = 2 cosh(d/2) / (2 cosh(d/2) + nu).  The arena model (``models/arena.toml``)
# keeps the first factor at the *models'* gap d (strengths, category deviations, position) and
# lets the answer's style and the voter's reliability act on the second:
#
#     P(i wins | decisive) = eta_v sigmoid(d + e) + (1 - eta_v) sigmoid(-(d + e)),
#
# with e = beta . x the style offset of this vote and eta_v the voter's probability of voting
# their true preference (Crowd-BT, Chen et al. 2013: eta = 1/2 is a random voter, eta < 1/2 an
# adversarial one). With eta = 1 and e = 0 it is Davidson's model exactly. The payoff is
# computational: the first factor depends on the cell only, so it aggregates over voters and
# styles, and only the decisive votes of voters with their own parameter (or with style
# features) need a row of their own in the second, which costs one tanh and one log1p a row.


def decisive_log_probs(
    d: jax.Array, log_nu: jax.Array | float
) -> tuple[jax.Array, jax.Array]:
    """Davidson's ``(log P(decisive | d), log P(tie | d))``.

    ``P(decisive) = (e^{d/2} + e^{-d/2}) / (e^{d/2} + e^{-d/2} + nu)``; the log numerator is
    ``|d|/2 + log1p(e^{-|d|})``, computed stably like the normaliser.
    """
    log_z = davidson_log_normaliser(d, log_nu)
    a = jnp.abs(d)
    return 0.5 * a + jnp.log1p(jnp.exp(-a)) - log_z, log_nu - log_z


def direction_log_probs(
    y: jax.Array, reliability: jax.Array | float | None = None
) -> tuple[jax.Array, jax.Array]:
    """``(log P(i wins | decisive), log P(j wins | decisive))`` at gap ``y = d + e``.

    Without a voter model (``reliability is None``) these are ``log sigmoid(+-y)``. With a
    reliability ``r = 2 eta - 1`` in ``(-1, 1)``, ``eta sigmoid(y) + (1 - eta) sigmoid(-y) =
    (1 + r tanh(y/2)) / 2``, so the log-probabilities are ``log1p(+-r tanh(y/2)) - log 2``.
    """
    if reliability is None:
        return jax.nn.log_sigmoid(y), jax.nn.log_sigmoid(-y)
    rt = reliability * jnp.tanh(0.5 * y)
    return jnp.log1p(rt) - jnp.log(2.0), jnp.log1p(-rt) - jnp.log(2.0)


def bothbad_split(
    lp_tie: jax.Array, mean_strength: jax.Array, params: OutcomeParams
) -> tuple[jax.Array, jax.Array]:
    """Split ``log P(tie)`` into ``(log P(ordinary tie), log P(both bad))`` with the both-bad
    share ``sigmoid(a + b m)``."""
    share_logit = params.bothbad_intercept + params.bothbad_slope * mean_strength
    return lp_tie + jax.nn.log_sigmoid(-share_logit), lp_tie + jax.nn.log_sigmoid(share_logit)
