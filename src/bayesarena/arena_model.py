"""The hierarchical arena model (``models/arena.toml``) as a NumPyro function of data.

Generative model (``M`` models, ``C`` category tags, ``V`` heavy voters, ``F`` style features;
each component switched on in the spec)::

    sigma ~ prior_sigma;            theta ~ ZeroSumNormal(sigma, (M,))          overall strength
    tau_c ~ prior_category_scale;   delta[:, c] ~ ZeroSumNormal(tau_c, (M,))    category deviation
    gamma ~ prior_position                                                      shown-first bonus
    beta_f ~ prior_style_coef                                                   style coefficients
    s_kappa ~ prior_voter_discrimination_scale
    kappa_v ~ N(1, s_kappa), v = 1..V (heavy voters); kappa = 1 for all light voters (pooled)
    log_nu, a, b as in models/bt-davidson.toml

A vote on pair ``(i, j)`` with tag set ``T``, position sign ``p`` (+1 when ``i`` was shown
first), style features ``x`` (``i`` minus ``j``) by voter ``v`` has

    s_m = theta_m + sum_{c in T} delta[m, c],   d = s_i - s_j + gamma p,   m = (s_i + s_j) / 2
    P(decisive) = 2 cosh(d/2) / (2 cosh(d/2) + nu),   P(both bad | tie) = sigmoid(a + b m)
    P(i wins | decisive) = sigmoid(kappa_v (d + beta.x))

with ``kappa_v`` the voter's discrimination relative to the crowd (negative: adversarial;
near 0: random). See :mod:`bayesarena.likelihood`
for why the factorisation is exact for Davidson's model and cheap to evaluate, and
:mod:`bayesarena.arena_data` for the cells and direction rows it is evaluated on.

Parametrisations. ``theta`` follows ``[strength] parametrization`` (or is sampled through its
mean over categories, :func:`theta_via_category_mean`). Each category's deviations are
sampled centred or non-centred (:func:`category_deviations`) as ``[categories]
parametrization`` says, decided per category under ``auto``; each heavy voter's
discrimination likewise (:func:`partially_centred_normal`). ``fit`` decides from the curvature
at the Laplace mode: centred where the likelihood dominates the prior (Papaspiliopoulos,
Roberts & Skold 2007; Betancourt & Girolami 2015). With ``theta`` through its category mean and
every category centred, the deviations are sampled as per-model means and contrasts
(:func:`split_model_means_deviations`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesarena.arena_data import ArenaCells
from bayesarena.gather import take
from bayesarena.likelihood import (
    OutcomeParams,
    bothbad_split,
    decisive_log_probs,
    direction_log_probs,
)
from bayesarena.numpyro_model import (
    bucket_size,
    outcome_params,
    pad_rows,
    prior_distribution,
    strengths,
)
from bayesarena.precision import lower, term_dtype, total
from bayesarena.spec import ModelSpec, Prior


def partially_centred_normal(
    name: str, loc: jax.Array, scale: jax.Array, centred_index: jax.Array,
    noncentred_index: jax.Array,
) -> jax.Array:
    """``x ~ Normal(loc, scale)`` elementwise, each element centred or non-centred.

    Elements at ``centred_index`` are sampled as they are (site ``{name}_centred``), the others
    as ``loc + scale z`` with ``z ~ N(0, 1)`` (site ``{name}_z``); ``loc`` and ``scale`` are
    per element (broadcast to the full length). Same distribution either way; the geometry
    differs: centred suits elements the likelihood pins tightly, non-centred those the prior
    dominates (Papaspiliopoulos, Roberts & Skold 2007).
    """
    size = centred_index.shape[0] + noncentred_index.shape[0]
    loc, scale = jnp.broadcast_to(loc, (size,)), jnp.broadcast_to(scale, (size,))
    x = jnp.zeros(size)
    if centred_index.shape[0]:
        x = x.at[centred_index].set(numpyro.sample(
            f"{name}_centred",
            dist.Normal(loc[centred_index], scale[centred_index]).to_event(1)))
    if noncentred_index.shape[0]:
        z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0)
                           .expand([noncentred_index.shape[0]]).to_event(1))
        x = x.at[noncentred_index].set(loc[noncentred_index] + scale[noncentred_index] * z)
    return x


def category_deviations(
    n_models: int, n_tags: int, centred_tags: jax.Array, noncentred_tags: jax.Array,
    spec: ModelSpec, split_model_means: bool = False,
) -> jax.Array:
    """Sample ``tau`` and the deviations ``delta[:, c] ~ ZeroSumNormal(tau_c)``, ``(M, C)``.

    Categories in ``centred_tags`` sample ``delta[:, c]`` itself (site
    ``category_deviation_centred``: a ``ZeroSumNormal(1)`` base measure reweighted to
    ``ZeroSumNormal(tau_c)`` by the factor ``category_deviation_prior``), those in
    ``noncentred_tags`` sample ``z ~ ZeroSumNormal(1)`` and set ``delta = tau_c z``. Either way
    the zero-sum constraint is exact (``M - 1`` free coordinates), so no direction of
    ``delta`` is left to its prior alone (which, centred, would make a funnel with ``tau_c``).

    ``split_model_means`` (every category centred, at least two): sample each model's mean
    deviation over the categories ``mu_m = mean_c delta[m, c]`` and the contrasts
    ``e[m, c] = delta[m, c] - mu_m`` (zero-sum over models and over categories) in place of
    the deviations themselves (:func:`split_model_means_deviations`).
    """
    tau = numpyro.sample(
        "category_scale",
        prior_distribution(spec.priors["category_scale"]).expand([n_tags]).to_event(1),
    )
    unit = dist.ZeroSumNormal(1.0, event_shape=(n_models,))
    if split_model_means:
        if noncentred_tags.shape[0] or n_tags < 2:
            raise ValueError("split_model_means needs every category centred, and two or more")
        return numpyro.deterministic("category_deviation", split_model_means_deviations(
            n_models, n_tags, tau, unit).T)
    delta = jnp.zeros((n_tags, n_models))
    if centred_tags.shape[0]:
        scale = tau[centred_tags][:, None]
        d = numpyro.sample("category_deviation_centred",
                           unit.expand([centred_tags.shape[0]]).to_event(1))
        numpyro.factor("category_deviation_prior", jnp.sum(
            unit.log_prob(d / scale) - (n_models - 1) * jnp.log(scale[:, 0]) - unit.log_prob(d)))
        delta = delta.at[centred_tags].set(d)
    if noncentred_tags.shape[0]:
        z = numpyro.sample("category_deviation_z",
                           unit.expand([noncentred_tags.shape[0]]).to_event(1))
        delta = delta.at[noncentred_tags].set(tau[noncentred_tags][:, None] * z)
    return numpyro.deterministic("category_deviation", delta.T)


def split_model_means_deviations(n_models: int, n_tags: int, tau: jax.Array,
                                 unit: dist.ZeroSumNormal) -> jax.Array:
    """Centred deviations ``delta[:, c] ~ ZeroSumNormal(tau_c)``, ``(C, M)``, sampled as each
    model's mean over the categories and the contrasts around it.

    Sites: ``category_deviation_model_mean`` ``mu`` (``(M,)``, zero-sum) and
    ``category_deviation_contrast`` ``e`` (``(C, M)``, zero-sum over both axes), with
    ``delta[c, m] = mu_m + e[c, m]``. The map from their ``(M - 1) + (M - 1)(C - 1)`` free
    coordinates to the ``C (M - 1)`` of the deviations is linear and invertible (``mu`` is
    the mean over categories, ``e`` the rest), so with both sampled from a unit base measure
    and the factor ``category_deviation_prior`` exchanging the base densities for
    ``prod_c ZeroSumNormal(delta[c]; tau_c)``, the posterior is exactly that of the deviations.

    Why: a vote with one tag sees ``theta_m + delta[m, c]`` (``psi_m + e[m, c]`` when theta
    goes through its category mean, :func:`theta_via_category_mean`), never ``mu_m`` alone;
    only the priors and the votes with no tag or several hold ``mu_m``, to a variance of about
    ``tau^2 / C``, while the votes hold each contrast to some ``v_e``. An element's marginal
    variance is the sum of the two, and in those units (a diagonal mass matrix's) the
    direction ``delta[m, :] + t`` has variance ``C (tau^2 / C) / (tau^2 / C + v_e)``: up to
    ``C`` times that of the others, one such direction per model, which NUTS crosses at
    ``sqrt(C)`` times the others' trajectory length. At 150 models x 10 categories x 1M votes
    ``theta = psi - mu`` had the smallest bulk ESS of all 7,361 parameters (872 at 31
    leapfrog steps per draw, 75 with the trajectories cut at 15;
    ``benchmarks/results/arena_scaling_depth4.json``). Sampled on its own, ``mu`` gets its
    own mass-matrix entries.
    """
    mean = numpyro.sample("category_deviation_model_mean", unit)
    contrast_unit = dist.ZeroSumNormal(1.0, event_shape=(n_tags, n_models))
    contrast = numpyro.sample("category_deviation_contrast", contrast_unit)
    delta = mean[None, :] + contrast
    numpyro.factor("category_deviation_prior", jnp.sum(
        unit.log_prob(delta / tau[:, None]) - (n_models - 1) * jnp.log(tau))
        - unit.log_prob(mean) - contrast_unit.log_prob(contrast))
    return delta


def splits_category_means(theta_from_category_mean: bool, category_centred: np.ndarray) -> bool:
    """Whether :func:`arena_model` samples the deviations as per-model means and contrasts
    (:func:`split_model_means_deviations`): when ``theta`` goes through its category mean and
    every category, two or more, is centred (``category_centred``, ``(C,)``). Not with
    ``theta`` sampled directly: where only ``theta + delta`` is pinned, ``theta`` and the means
    would form a ridge of their own."""
    centred = np.asarray(category_centred, dtype=bool)
    return bool(theta_from_category_mean and centred.size >= 2 and centred.all())


def theta_via_category_mean(delta: jax.Array, spec: ModelSpec) -> jax.Array:
    """Sample ``theta`` through ``psi = theta + mean_c delta[:, c]``, its average over categories.

    When every vote carries a tag, the votes pin ``theta_m + delta[m, c]`` for each category but
    not ``theta_m`` itself: moving ``theta_m`` up and all of model ``m``'s deviations down leaves
    the likelihood unchanged, so ``theta`` and ``delta`` are strongly correlated a posteriori and
    NUTS needs long trajectories. ``psi`` is pinned by the votes directly. The map
    ``(psi, delta) -> (theta, delta)`` is linear with unit Jacobian, so sampling ``psi`` (sum to
    zero, like ``theta``) and adding the log density ``ZeroSumNormal(sigma)`` at ``theta = psi -
    mean_c delta`` in place of the one at ``psi`` leaves the posterior exactly as specified.
    """
    sigma = numpyro.sample("sigma", prior_distribution(spec.priors["sigma"]))
    n_models = delta.shape[0]
    prior = dist.ZeroSumNormal(sigma, event_shape=(n_models,))
    psi = numpyro.sample("theta_category_mean", prior)
    theta = psi - delta.mean(axis=1)
    numpyro.factor("theta_prior", prior.log_prob(theta) - prior.log_prob(psi))
    return numpyro.deterministic("theta", theta)


def voter_discrimination(centred_index: jax.Array, noncentred_index: jax.Array,
                         spec: ModelSpec) -> jax.Array:
    """Sample ``kappa_v ~ N(1, s_kappa)`` for the heavy voters and append the light voters'
    reference ``kappa = 1`` (the crowd defines the unit of the strengths: with a free pooled
    value the strengths' scale and the voters' discrimination would trade off along a ridge
    that only ties weakly identify)."""
    scale = numpyro.sample("voter_discrimination_scale",
                           prior_distribution(spec.priors["voter_discrimination_scale"]))
    kappa = partially_centred_normal("voter_discrimination", 1.0, scale, centred_index,
                                     noncentred_index)
    return jnp.append(numpyro.deterministic("voter_discrimination", kappa), 1.0)


class VoteTerms(NamedTuple):
    """The parameters the votes' likelihood reads, as :func:`arena_model` computes them from
    its sites (``None``: the spec leaves the component out)."""

    theta: jax.Array  # (M,) overall strengths
    deviation: jax.Array | None  # (M, C) category deviations
    position: jax.Array | None  # gamma, the shown-first bonus
    style: jax.Array | None  # beta, (F,)
    outcome: OutcomeParams  # log nu and the both-bad share's intercept and slope
    discrimination: jax.Array | None  # kappa, (V + 1,): the heavy voters', then the crowd's 1


def arena_model(
    flat_i: jax.Array,
    flat_j: jax.Array,
    position: jax.Array,
    counts: jax.Array,
    row_cell: jax.Array,
    row_voter: jax.Array,
    row_style: jax.Array,
    row_counts: jax.Array,
    tagsets: jax.Array,
    category_centred: jax.Array,
    category_noncentred: jax.Array,
    voter_centred: jax.Array,
    voter_noncentred: jax.Array,
    *,
    n_models: int,
    spec: ModelSpec,
    theta_from_category_mean: bool = False,
    split_category_means: bool = False,
    precision: str = "double",
    vote_likelihood: Callable[[VoteTerms], jax.Array] | None = None,
) -> None:
    """The arena model over cells and direction rows (see the module docstring and
    :func:`model_arguments` for the arrays).

    ``theta_from_category_mean``: sample ``psi_m = theta_m + mean_c delta[m, c]`` instead of
    ``theta`` (same posterior, see :func:`theta_via_category_mean`); use it when most votes
    carry a category tag. ``split_category_means``: sample the deviations as their mean over
    the categories per model and the contrasts around it (every category centred; same
    posterior, see :func:`split_model_means_deviations`). ``precision``: ``"mixed"`` evaluates
    the per-cell and per-row terms in float32 and sums them in float64
    (:mod:`bayesarena.precision`). ``vote_likelihood``: the log-likelihood of the votes as a
    function of the :class:`VoteTerms` in place of :func:`votes_log_likelihood` (the blocked
    Hessian of :mod:`bayesarena.arena_hessian` reads the terms and replaces the likelihood
    by its linearisation).
    """
    delta = None
    if spec.categories.enabled:
        delta = category_deviations(n_models, tagsets.shape[1], category_centred,
                                    category_noncentred, spec, split_category_means)
        theta = (theta_via_category_mean(delta, spec) if theta_from_category_mean
                 else strengths(n_models, spec))
    else:
        theta = strengths(n_models, spec)
    params = outcome_params(spec)
    gamma = beta = kappa = None
    if spec.position.enabled:
        gamma = numpyro.sample("position", prior_distribution(spec.priors["position"]))
    if spec.style.enabled:
        beta = numpyro.sample(
            "style_coef", prior_distribution(spec.priors["style_coef"])
            .expand([row_style.shape[1]]).to_event(1))
    if spec.voters.enabled:
        kappa = voter_discrimination(voter_centred, voter_noncentred, spec)
    terms = VoteTerms(theta, delta, gamma, beta, params, kappa)
    if vote_likelihood is None:
        vote_likelihood = functools.partial(
            votes_log_likelihood, flat_i=flat_i, flat_j=flat_j, position=position,
            counts=counts, row_cell=row_cell, row_voter=row_voter, row_style=row_style,
            row_counts=row_counts, tagsets=tagsets, spec=spec, precision=precision)
    numpyro.factor("votes", vote_likelihood(terms))


def flat_strengths(terms: VoteTerms, tagsets: jax.Array) -> jax.Array:
    """``s[T, m] = theta_m + sum_{c in T} delta[m, c]`` for every tag set ``T`` (the rows of
    ``tagsets``), flattened to ``T * M + m``: the index of the cells' ``flat_i, flat_j``."""
    strength = terms.theta[None, :]
    if terms.deviation is not None:
        strength = strength + tagsets @ terms.deviation.T  # (tag sets, models)
    return strength.reshape(-1)


def cell_log_likelihood(d: jax.Array, mean_strength: jax.Array, params: OutcomeParams,
                        counts: jax.Array, spec: ModelSpec) -> jax.Array:
    """Each cell's log-likelihood of its decisive votes, ordinary ties and both-bad votes
    (``counts``, ``(3, cells)``) at gap ``d`` and mean strength ``(s_i + s_j) / 2``, under
    Davidson's ties (the direction of the decisive votes is the rows' part)."""
    lp_decisive, lp_tie = decisive_log_probs(d, params.log_nu)
    lp_bothbad = lp_tie
    if spec.likelihood.both_bad == "modelled":
        lp_tie, lp_bothbad = bothbad_split(lp_tie, mean_strength, params)
    return counts[0] * lp_decisive + counts[1] * lp_tie + counts[2] * lp_bothbad


def row_log_likelihood(y: jax.Array, kappa: jax.Array | None, row_counts: jax.Array
                       ) -> jax.Array:
    """Each direction row's log-likelihood of its decisive votes each way (``row_counts``,
    ``(2, rows)``) at gap ``y`` and the voter's discrimination ``kappa``."""
    lp_i, lp_j = direction_log_probs(y, kappa)
    return row_counts[0] * lp_i + row_counts[1] * lp_j


def votes_log_likelihood(
    terms: VoteTerms, *, flat_i: jax.Array, flat_j: jax.Array, position: jax.Array,
    counts: jax.Array, row_cell: jax.Array, row_voter: jax.Array, row_style: jax.Array,
    row_counts: jax.Array, tagsets: jax.Array, spec: ModelSpec, precision: str = "double",
    **_: jax.Array,
) -> jax.Array:
    """``log p(votes | terms)``: the cells' terms (:func:`cell_log_likelihood`, Davidson's
    ties only) and the direction rows' (:func:`row_log_likelihood`) at ``d = s_i - s_j +
    gamma p``, ``y = d + beta . x``, summed in float64 (terms in float32 under
    ``precision="mixed"``). Other keyword arrays of :func:`model_arguments` are ignored."""
    low = term_dtype(precision)
    flat = lower(flat_strengths(terms, tagsets), low)
    s_i, s_j = take(flat, flat_i), take(flat, flat_j)
    d = s_i - s_j
    if terms.position is not None:
        d = d + lower(terms.position * position, low)
    log_lik = 0.0
    if spec.likelihood.ties == "davidson":
        log_lik = total(cell_log_likelihood(d, 0.5 * (s_i + s_j), lower(terms.outcome, low),
                                            lower(counts, low), spec))
    y = take(d, row_cell)
    if terms.style is not None:
        y = y + lower(row_style @ terms.style, low)  # float64 product: see bayesarena.precision
    kappa = None
    if terms.discrimination is not None:
        kappa = take(lower(terms.discrimination, low), row_voter)
    return log_lik + total(row_log_likelihood(y, kappa, lower(row_counts, low)))


#: Fallback centring rule without a Laplace fit: a category's deviations are centred at
#: ``n_mc * 0.2 * tau_c^2 >= 1`` for the median model (0.2: about the Fisher information of
#: one vote near an even gap; tau_c: the prior median), a voter's discrimination at 400
#: decisive votes (about 0.01 nats of information about kappa per vote at a typical gap
#: |d| ~ 0.6, prior scale 0.5).
INFORMATION_PER_VOTE = 0.2
VOTER_CENTRED_MIN_VOTES = 400


class GroupSpread(NamedTuple):
    """What a Laplace fit in non-centred coordinates says about a group ``x_k ~ N(0, s^2)``:
    the likelihood's precision for each ``x_k`` and the spread ``s`` that maximises the
    marginal likelihood."""

    precision: np.ndarray  # L_k, per element
    spread: float  # marginal maximum-likelihood estimate of s
    noise: float  # sqrt(median(1 / L_k)): the typical sd of an element's own estimate


#: EM iterations for the spread (each a few array operations on the group).
SPREAD_EM_ITERATIONS = 500


def group_spread(z_mode: np.ndarray, scale_mode: float, curvature_z: np.ndarray) -> GroupSpread:
    """Estimate a group's spread from a Laplace fit in non-centred coordinates (``x = s0 z``).

    With ``s0`` the scale the fit was taken at, element ``k``'s likelihood has precision
    ``L_k = (d2U/dz_k^2 - 1) / s0^2`` (the prior contributes the 1) and, read as a normal
    likelihood with mean ``y_k``, the conditional mode is ``x_k = y_k L_k s0^2 / (1 + L_k
    s0^2)``. The marginal likelihood of ``s`` is then that of ``y_k ~ N(0, s^2 + 1 / L_k)``;
    its maximum is found by EM (Dempster, Laird & Rubin 1977): ``s^2 <- mean(m_k^2 + v_k)``
    with ``m_k, v_k`` the mean and variance of ``x_k`` given ``y_k`` at the current ``s``.
    This is what a hierarchical scale is estimated as by empirical Bayes (type-II maximum
    likelihood); the joint mode is not: in non-centred coordinates the prior term
    ``sum z_k^2 / 2 = sum x_k^2 / (2 s^2)`` falls as ``s`` grows with the ``x_k`` held by the
    data, so the joint mode sits where the scale's own prior stops it (at 150 models x 1M votes:
    ``sigma`` 2.8 for a true 0.58, the category scales 1.3 for 0.23).
    """
    z_mode, curvature_z = np.ravel(z_mode), np.ravel(curvature_z)
    s0 = max(float(scale_mode), 1e-12)
    info = np.maximum(curvature_z - 1.0, 1e-12)  # L_k s0^2
    precision = info / s0**2
    # m_k(s) = y_k L s^2 / (1 + L s^2) = x_k (1 + L s0^2) / (L s0^2) * L s^2 / (1 + L s^2),
    # written without dividing by L (finite as L -> 0)
    x = s0 * z_mode
    s2 = float(np.mean(x**2)) + 1e-12
    for _ in range(SPREAD_EM_ITERATIONS):
        gain = (1.0 + info) * s2 / (s0**2 + info * s2)  # m_k / x_k
        s2 = float(np.mean((gain * x) ** 2 + s2 / (1.0 + precision * s2)))
    return GroupSpread(precision, float(np.sqrt(s2)), float(np.sqrt(np.median(1.0 / precision))))


def log_spread_information(precision: np.ndarray, spread: float) -> float:
    """Fisher information about ``log s`` in the marginal model ``y_k ~ N(0, s^2 + 1/L_k)``
    of :func:`group_spread`: ``2 sum_k r_k^2`` with ``r_k = s^2 L_k / (1 + s^2 L_k)``, the share
    of element ``k``'s variance that is spread rather than noise (each element the data pin
    tells about 2 units; one they do not, nothing). Its inverse approximates the posterior
    variance of ``log s`` with the elements integrated out, which is what a mass matrix needs
    for the scale; the curvature at any one point with the elements held is not (in
    non-centred coordinates, elements with ``s^2 L_k < 1`` add negative curvature, which at 50
    models x 100k votes left the voters' scale a seeded variance 500 times its posterior one).
    """
    r = spread**2 * precision / (1.0 + spread**2 * precision)
    return float(2.0 * np.sum(r**2))


def _shrink(n_members: int) -> float:
    """About two posterior sds below a spread estimated from ``n`` members, as a share."""
    return max(0.0, 1.0 - 2.0 / np.sqrt(2.0 * max(n_members - 1, 1)))


def centre_group(z_mode: np.ndarray, scale_mode: float, curvature_z: np.ndarray,
                 n_members: int) -> bool:
    """Whether to sample a group of exchangeable elements ``x_k ~ N(0, scale^2)`` centred,
    from a Laplace fit in non-centred coordinates (``x = scale z``).

    With ``L_k`` and the spread ``s`` of :func:`group_spread`: centred when
    ``median(L) (s shrink)^2 >= 1``, i.e. the likelihood dominates the prior even at
    ``s shrink``, about two posterior sds below ``s`` when the spread is estimated from ``n``
    members (``shrink = 1 - 2 / sqrt(2 (n - 1))``): a centred element has a funnel when the
    scale can be small (Papaspiliopoulos, Roberts & Skold 2007; Betancourt & Girolami 2015).
    """
    g = group_spread(z_mode, scale_mode, curvature_z)
    return bool(np.median(g.precision) * (g.spread * _shrink(n_members)) ** 2 >= 1.0)


def centre_elements(z_mode: np.ndarray, scale_mode: float, curvature_z: np.ndarray,
                    n_members: int) -> np.ndarray:
    """:func:`centre_group`'s rule element by element: centre ``x_k`` where its own
    ``L_k (s shrink)^2 >= 1``. For groups whose members differ widely in information (heavy
    voters cast from 20 to over a thousand votes), so each is sampled in the coordinates that
    suit it."""
    g = group_spread(z_mode, scale_mode, curvature_z)
    return g.precision * (g.spread * _shrink(n_members)) ** 2 >= 1.0


def theta_pinned(data: ArenaCells, sigma: float) -> bool:
    """Whether the votes pin ``theta`` itself rather than only ``theta + sum_{c in T}
    delta[:, c]`` per tag set ``T``.

    A vote with one tag sees ``theta_m + delta_mc``; only votes whose tag set has no tag or
    several separate ``theta_m`` from the deviations. Pinned when the median model's such votes
    carry ``n * INFORMATION_PER_VOTE * sigma^2 >= 1`` (the rule of
    :func:`default_category_centring`), ``sigma`` the strengths' spread. The Hessian's diagonal
    cannot tell: it counts every vote's curvature on ``theta_m``, while the direction
    ``theta_m`` up and ``delta_m`` down is seen by none of the one-tag votes.
    """
    c = data.cells
    sizes = (data.tagsets.sum(axis=1) if data.tags
             else np.zeros(len(c.categories), dtype=np.int64))
    separating = np.where(sizes[c.category] != 1, c.counts.sum(axis=1), 0)
    per_model = (np.bincount(c.model_i, separating, minlength=c.n_models)
                 + np.bincount(c.model_j, separating, minlength=c.n_models))
    return bool(np.median(per_model) * INFORMATION_PER_VOTE * sigma**2 >= 1.0)


def default_category_centring(data: ArenaCells, spec: ModelSpec) -> np.ndarray:
    """Which categories to sample centred, shape ``(C,)``, without a Laplace fit: where the
    median model has ``n_mc * INFORMATION_PER_VOTE * tau^2 >= 1`` (``tau`` the prior median);
    ``parametrization`` centred/noncentered overrides the rule."""
    n_tags = max(len(data.tags), 1)
    mode = spec.categories.parametrization
    if not spec.categories.enabled:
        return np.zeros(n_tags, dtype=bool)
    if mode != "auto":
        return np.full(n_tags, mode == "centered")
    tau = prior_median(spec.priors["category_scale"])
    return np.median(data.model_tag_votes(), axis=0) * INFORMATION_PER_VOTE * tau**2 >= 1.0


def default_voter_centring(data: ArenaCells) -> np.ndarray:
    """Heavy voters whose discrimination to sample centred without a Laplace fit."""
    decisive = np.bincount(data.row_voter, weights=data.row_counts.sum(axis=1),
                           minlength=len(data.voters) + 1)
    return decisive[: len(data.voters)] >= VOTER_CENTRED_MIN_VOTES


def prior_median(prior: Prior) -> float:
    """Median of a positive scale prior (half-normal, half-Cauchy or exponential)."""
    if prior.family == "exponential":
        return float(np.log(2.0) / prior.params["rate"])
    median = {"half_normal": 0.6745, "half_cauchy": 1.0}
    return median.get(prior.family, 1.0) * prior.params.get("scale", 1.0)


def model_arguments(data: ArenaCells, spec: ModelSpec, *,
                    category_centred: np.ndarray | None = None,
                    voter_centred: np.ndarray | None = None) -> dict[str, jax.Array]:
    """The arrays :func:`arena_model` takes, cells and rows padded to :func:`bucket_size` with
    zero-count entries (padding changes no likelihood term). ``category_centred`` (``(C,)``)
    and ``voter_centred`` (``(V,)``, heavy voters) say which elements to sample centred (defaults:
    :func:`default_category_centring`, :func:`default_voter_centring`).

    Counts are laid out one outcome per row, so that each is read as a contiguous vector:
    ``counts`` is ``(3, cells)`` (decisive, ordinary tie, both bad), ``row_counts`` ``(2,
    rows)`` (``i`` won, ``j`` won). Index arrays are int32. Floats are float64;
    :func:`bayesarena.precision.sampling_data` lowers them for a float32 likelihood."""
    c = data.cells
    m = c.n_models
    k, r = bucket_size(c.n_cells), bucket_size(data.n_rows)
    cell_counts = np.stack([c.counts[:, 0] + c.counts[:, 1], c.counts[:, 2], c.counts[:, 3]])
    tagsets = data.tagsets.astype(float) if data.tags else np.zeros((len(c.categories), 1))
    if category_centred is None:
        category_centred = default_category_centring(data, spec)
    if voter_centred is None:
        voter_centred = default_voter_centring(data)
    category_centred = np.asarray(category_centred, dtype=bool)
    voter_centred = np.asarray(voter_centred, dtype=bool)
    return {
        "flat_i": jnp.asarray(pad_rows(_int32(c.category.astype(np.int64) * m + c.model_i), k)),
        "flat_j": jnp.asarray(pad_rows(_int32(c.category.astype(np.int64) * m + c.model_j), k,
                                       fill=1)),
        "position": jnp.asarray(pad_rows(data.position.astype(float), k)),
        "counts": jnp.asarray(pad_rows(cell_counts.T.astype(float), k).T),
        "row_cell": jnp.asarray(pad_rows(_int32(data.row_cell), r)),
        "row_voter": jnp.asarray(pad_rows(_int32(data.row_voter), r)),
        "row_style": jnp.asarray(pad_rows(data.row_style, r)),
        "row_counts": jnp.asarray(pad_rows(data.row_counts.astype(float), r).T),
        "tagsets": jnp.asarray(tagsets),
        "category_centred": jnp.asarray(np.nonzero(category_centred)[0]),
        "category_noncentred": jnp.asarray(np.nonzero(~category_centred)[0]),
        "voter_centred": jnp.asarray(np.nonzero(voter_centred)[0]),
        "voter_noncentred": jnp.asarray(np.nonzero(~voter_centred)[0]),
    }


def _int32(index: np.ndarray) -> np.ndarray:
    """An index array as int32 (half the bytes of int64 for every gather and scatter)."""
    if index.size and int(index.max()) >= 2**31:
        raise ValueError(f"index {int(index.max())} does not fit int32")
    return index.astype(np.int32)
