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
say that the pair is weak in absolute terms, information that a plain tie does not carry. The
split works the same on top of any tie model that has a tie probability (Davidson, Rao-Kupper,
Glenn-David).

Threshold ties and the probit link
----------------------------------
``ties = "rao_kupper"`` is the threshold tie model: a vote is decisive only when the perceived
gap clears a threshold ``t = OutcomeParams.tie_threshold > 0``. Its meaning depends on ``link``:

Rao & Kupper (1967) ties (``link = "logit"``), with kappa = e^t >= 1:
    P(i) = pi_i / (pi_i + kappa pi_j) = sigmoid(d - t), P(j) = sigmoid(-d - t),
    P(tie) = 1 - P(i) - P(j) = (kappa^2 - 1) pi_i pi_j / ((pi_i + kappa pi_j)(kappa pi_i + pi_j)),
    so log P(tie) = log(expm1(2t)) + log sigmoid(d - t) + log sigmoid(-d - t), with
    log(expm1(2t)) = 2t + log(1 - e^{-2t}). Every term is stable for any d.

Thurstone-Mosteller (Thurstone 1927, Mosteller 1951; ``link = "probit"``, ``ties = "drop"``):
    P(i) = Phi(d), P(j) = Phi(-d), as ``log_ndtr(+-d)``. ``ties = "half"`` counts a tie as half a
    win each side, as under the logit link.

Glenn & David (1960) ties (``link = "probit"``, ``ties = "rao_kupper"``):
    P(i) = Phi(d - t), P(j) = Phi(-d - t), P(tie) = Phi(t - d) - Phi(-t - d).
    P(tie) is even in d, so it is computed at a = |d| where both bounds u = t - a > l = -t - a
    sit at or left of the bulk: log P(tie) = log_ndtr(u) + log(1 - exp(log_ndtr(l) -
    log_ndtr(u))), which keeps full relative accuracy far into the tail (|d| = 30 and beyond)
    and has zero slope at d = 0, so the kink of |d| does not reach the gradient. ``log_ndtr``
    here is :func:`log_ndtr` (JAX's with a 10-term tail series, accurate to rounding).

Davidson ties have no probit counterpart here: ``ties = "davidson"`` with ``link = "probit"``
raises ``ValueError``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, ndtr
from jax.scipy.special import log_ndtr as _jax_log_ndtr

LINKS = ("logit", "probit")
TIES_BY_LINK = {
    "logit": ("drop", "davidson", "half", "rao_kupper"),
    "probit": ("drop", "half", "rao_kupper"),
}


class OutcomeParams(NamedTuple):
    """Parameters of the outcome model beyond the strengths (``None`` when unused)."""

    log_nu: jax.Array | float | None = None
    bothbad_intercept: jax.Array | float | None = None
    bothbad_slope: jax.Array | float | None = None
    tie_threshold: jax.Array | float | None = None  # t > 0 of the threshold (Rao-Kupper) ties


def log_sigmoid_pair(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(log sigmoid(x), log sigmoid(-x))`` from one ``log1p(e^{-|x|})``.

    ``log sigmoid(+-x) = (+-x - |x|) / 2 - log1p(e^{-|x|})``: exact for any ``x`` (no overflow,
    full relative accuracy in both tails), with the right slope ``1/2`` at ``x = 0`` (JAX
    differentiates ``|x|`` to ``sign(0) = 0`` there). Why not ``jax.nn.log_sigmoid``: it goes
    through ``logaddexp``, whose infinity handling made it the costliest operation of a
    likelihood gradient on CPU (about 90 us per 11k cells in float64, against 20 us here, and
    it is evaluated twice per pair).
    """
    a = jnp.abs(x)
    base = -jnp.log1p(jnp.exp(-a))
    return 0.5 * (x - a) + base, -0.5 * (x + a) + base


def bt_log_probs(d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Bradley-Terry: ``(log P(i), log P(j)) = (log sigmoid(d), log sigmoid(-d))``."""
    return log_sigmoid_pair(d)


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


def log1mexp(a: jax.Array) -> jax.Array:
    """``log(1 - e^{-a})`` for ``a >= 0``, accurate for small and large ``a`` (Maechler 2012)."""
    return jnp.where(a < jnp.log(2.0), jnp.log(-jnp.expm1(-a)), jnp.log1p(-jnp.exp(-a)))


def rao_kupper_log_probs(
    d: jax.Array, tie_threshold: jax.Array | float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Rao & Kupper (1967): ``(log P(i), log P(j), log P(tie))`` with threshold ``t = log kappa``.

    ``log sigmoid(+-d - t)`` for the wins; ``log P(tie) = log(expm1(2t)) + log P(i) + log P(j)``.
    """
    t = tie_threshold
    lp_i, lp_j = log_sigmoid_pair(d - t)[0], log_sigmoid_pair(-d - t)[0]
    return lp_i, lp_j, 2.0 * t + log1mexp(2.0 * t) + lp_i + lp_j


def log_ndtr(x: jax.Array) -> jax.Array:
    """``log Phi(x)`` to full relative float64 accuracy everywhere.

    ``jax.scipy.special.log_ndtr``'s default 3-term asymptotic series (used for ``x < -20``) is
    off by ~2e-11 relative at ``x = -20``; 10 terms bring it (and its gradient) to rounding.
    For ``x > 0`` JAX takes ``log(Phi(x))``, which is only absolutely accurate where ``Phi(x)``
    is near 1; ``log1p(-Phi(-x))`` is relatively accurate. Both branches get clamped inputs so
    the unused one never puts a NaN into the gradient.
    """
    x = jnp.asarray(x)
    pos = x > 0
    # clamp with where, not minimum/maximum: those split the gradient in half at x = 0
    left = _jax_log_ndtr(jnp.where(pos, 0.0, x), series_order=10)
    right = jnp.log1p(-ndtr(-jnp.where(pos, x, 0.0)))
    return jnp.where(pos, right, left)


def probit_log_probs(d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Thurstone-Mosteller: ``(log P(i), log P(j)) = (log Phi(d), log Phi(-d))``."""
    return log_ndtr(d), log_ndtr(-d)


def glenn_david_log_probs(
    d: jax.Array, tie_threshold: jax.Array | float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Glenn & David (1960): ``(log P(i), log P(j), log P(tie))`` with threshold ``t > 0``.

    ``P(i) = Phi(d - t)``, ``P(j) = Phi(-d - t)``, ``P(tie) = Phi(t - |d|) - Phi(-t - |d|)``,
    the difference taken in log space as ``log_ndtr(u) + log1mexp(log_ndtr(u) - log_ndtr(l))``.
    """
    t = tie_threshold
    a = jnp.abs(d)
    log_u, log_l = log_ndtr(t - a), log_ndtr(-t - a)
    lp_tie = log_u + log1mexp(log_u - log_l)
    return log_ndtr(d - t), log_ndtr(-d - t), lp_tie


def _check_modes(ties: str, link: str) -> None:
    if link not in TIES_BY_LINK:
        raise ValueError(f"unknown link {link!r}; expected one of {LINKS}")
    if ties not in TIES_BY_LINK[link]:
        if ties == "davidson":
            raise ValueError(
                "ties = 'davidson' has no probit version; with link = 'probit' use ties = "
                "'rao_kupper' (the Glenn-David threshold model), 'half' or 'drop'"
            )
        raise ValueError(
            f"unknown ties mode {ties!r} for link {link!r}; expected one of {TIES_BY_LINK[link]}"
        )


def _win_tie_log_probs(
    d: jax.Array, ties: str, link: str, params: OutcomeParams
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log P(i), log P(j), log P(tie))`` before the both-bad split (tie 0 when dropped)."""
    _check_modes(ties, link)
    if ties == "davidson":
        return davidson_log_probs(d, params.log_nu)
    if ties == "rao_kupper":
        if params.tie_threshold is None:
            raise ValueError("ties = 'rao_kupper' needs OutcomeParams.tie_threshold (t > 0)")
        if link == "probit":
            return glenn_david_log_probs(d, params.tie_threshold)
        return rao_kupper_log_probs(d, params.tie_threshold)
    lp_i, lp_j = probit_log_probs(d) if link == "probit" else bt_log_probs(d)
    lp_tie = 0.5 * (lp_i + lp_j) if ties == "half" else jnp.zeros_like(d)
    return lp_i, lp_j, lp_tie


def log_outcome_probs(
    d: jax.Array,
    mean_strength: jax.Array,
    *,
    ties: str,
    both_bad: str,
    params: OutcomeParams,
    link: str = "logit",
) -> jax.Array:
    """Log-probability of each outcome ``(win_i, win_j, tie, tie_bothbad)``; shape ``(..., 4)``.

    ``ties`` is ``"drop" | "davidson" | "half" | "rao_kupper"``; ``both_bad`` is ``"drop" |
    "as_tie" | "modelled"``; ``link`` is ``"logit"`` (Bradley-Terry) or ``"probit"``
    (Thurstone-Mosteller, where ``"rao_kupper"`` means Glenn-David ties and ``"davidson"`` is
    not available). See the module docstring for the formulas. Outcomes a spec drops get log
    weight 0: their counts are removed from the data before fitting, so the value never
    matters; it is kept finite so ``counts * log_probs`` never produces ``0 * inf``.
    """
    lp_i, lp_j, lp_tie = _win_tie_log_probs(d, ties, link, params)
    if both_bad == "modelled":
        lp_tie, lp_bothbad = bothbad_split(lp_tie, mean_strength, params)
    elif both_bad == "as_tie":
        lp_bothbad = lp_tie
    else:
        lp_bothbad = jnp.zeros_like(d)
    return jnp.stack([lp_i, lp_j, lp_tie, lp_bothbad], axis=-1)


def cell_log_likelihood(counts: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Unnormalised log-likelihood of each cell: ``sum_k counts[..., k] * log_probs[..., k]``.

    Written as a sum of column products rather than ``sum(counts * log_probs, axis=-1)``:
    fused with the ``stack`` that builds ``log_probs``, the latter made XLA's CPU code evaluate
    every outcome's expression for every column (see :mod:`bayesarena.gather` for the
    measurements).
    """
    return sum(counts[..., k] * log_probs[..., k] for k in range(log_probs.shape[-1]))


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
    link: str = "logit",
) -> jax.Array:
    """Probabilities of ``(win_i, win_j, tie, tie_bothbad)`` for prediction.

    For ``ties = "half"`` (a pseudo-likelihood with no tie probability) and for dropped
    outcomes, the returned vector is the link's win probabilities (``sigmoid(+-d)`` or
    ``Phi(+-d)``) with zero tie mass. For the tie models (``"davidson"``, ``"rao_kupper"``) the
    four probabilities sum to one; the both-bad entry is zero unless ``both_bad = "modelled"``.
    """
    _check_modes(ties, link)
    if ties in ("davidson", "rao_kupper"):
        return jnp.exp(log_outcome_probs(d, mean_strength, ties=ties,
                                         both_bad="drop" if both_bad == "as_tie" else both_bad,
                                         params=params, link=link)
                       ) * _keep_mask(both_bad)
    zeros = jnp.zeros_like(d)
    if link == "probit":
        return jnp.stack([ndtr(d), ndtr(-d), zeros, zeros], axis=-1)
    p_i = jax.nn.sigmoid(d)
    return jnp.stack([p_i, 1.0 - p_i, zeros, zeros], axis=-1)


def _keep_mask(both_bad: str) -> jax.Array:
    return jnp.array([1.0, 1.0, 1.0, 0.0 if both_bad != "modelled" else 1.0])


# --- The arena model's factorised likelihood ----------------------------------------------
#
# Davidson's model factorises exactly into "is the vote decisive?" and "who wins a decisive
# vote?":  P(i) = P(decisive | d) sigmoid(d), P(j) = P(decisive | d) sigmoid(-d), with
# P(decisive | d) = 2 cosh(d/2) / (2 cosh(d/2) + nu).  The arena model (``models/arena.toml``)
# keeps the first factor at the *models'* gap d (strengths, category deviations, position) and
# lets the answer's style and the voter's discrimination act on the second:
#
#     P(i wins | decisive) = sigmoid(kappa_v (d + e)),
#
# with e = beta . x the style offset of this vote and kappa_v the voter's discrimination
# relative to the crowd of light voters (kappa = 1): kappa > 1 a more discerning voter,
# 0 < kappa < 1 a noisier one, kappa = 0 a coin flip, kappa < 0 an adversarial voter (a
# Bradley-Terry-Luce choice with a voter-specific temperature; cf. Crowd-BT, Chen et al. 2013,
# whose lapse mixture eta sigmoid(y) + (1 - eta) sigmoid(-y) has the same slope at y = 0 for
# kappa = 2 eta - 1). With kappa = 1 and e = 0 it is Davidson's model exactly. The payoff is
# computational: the first factor depends on the cell only, so it aggregates over voters and
# styles, and only the decisive votes of voters with their own parameter (or with style
# features) need a row of their own in the second, which costs one log-sigmoid a row.


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
    y: jax.Array, discrimination: jax.Array | float | None = None
) -> tuple[jax.Array, jax.Array]:
    """``(log P(i wins | decisive), log P(j wins | decisive))`` at gap ``y = d + e``:
    ``log sigmoid(+-kappa y)``, with ``kappa = 1`` when ``discrimination`` is ``None``."""
    if discrimination is not None:
        y = discrimination * y
    return log_sigmoid_pair(y)


def bothbad_split(
    lp_tie: jax.Array, mean_strength: jax.Array, params: OutcomeParams
) -> tuple[jax.Array, jax.Array]:
    """Split ``log P(tie)`` into ``(log P(ordinary tie), log P(both bad))`` with the both-bad
    share ``sigmoid(a + b m)``."""
    share_logit = params.bothbad_intercept + params.bothbad_slope * mean_strength
    share, other = log_sigmoid_pair(share_logit)
    return lp_tie + other, lp_tie + share
