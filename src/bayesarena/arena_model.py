"""The hierarchical arena model (``models/arena.toml``) as a NumPyro function of data.

Generative model (``M`` models, ``C`` category tags, ``V`` heavy voters, ``F`` style features;
each component switched on in the spec)::

    sigma ~ prior_sigma;            theta ~ ZeroSumNormal(sigma, (M,))          overall strength
    tau_c ~ prior_category_scale;   delta[:, c] ~ ZeroSumNormal(tau_c, (M,))    category deviation
    gamma ~ prior_position                                                      shown-first bonus
    beta_f ~ prior_style_coef                                                   style coefficients
    mu_u ~ prior_voter_logit_mean;  s_u ~ prior_voter_logit_scale
    u_v = mu_u + s_u z_v, z_v ~ N(0, 1), v = 1..V+1 (the last: all light voters, pooled)
    log_nu, a, b as in models/bt-davidson.toml

A vote on pair ``(i, j)`` with tag set ``T``, position sign ``p`` (+1 when ``i`` was shown
first), style features ``x`` (``i`` minus ``j``) by voter ``v`` has

    s_m = theta_m + sum_{c in T} delta[m, c],   d = s_i - s_j + gamma p,   m = (s_i + s_j) / 2
    P(decisive) = 2 cosh(d/2) / (2 cosh(d/2) + nu),   P(both bad | tie) = sigmoid(a + b m)
    P(i wins | decisive) = eta_v sigmoid(d + beta.x) + (1 - eta_v) sigmoid(-(d + beta.x))

with ``eta_v = sigmoid(u_v)`` (Crowd-BT, Chen et al. 2013). See :mod:`bayesarena.likelihood`
for why the factorisation is exact for Davidson's model and cheap to evaluate, and
:mod:`bayesarena.arena_data` for the cells and direction rows it is evaluated on.

Parametrisations. ``theta`` follows ``[strength] parametrization``. The category deviations
are built as ``delta[:, c] = r_c - mean(r_c)`` from an i.i.d. ``N(0, tau_c^2)`` vector ``r_c``,
whose zero-sum projection is exactly ``ZeroSumNormal(tau_c)``; each element of ``r`` is
sampled centred (``r ~ N(0, tau)``) or non-centred (``r = tau z``) as
``[categories] parametrization`` says, per (model, category) under ``auto`` (centred where
the model has many votes in the category: Papaspiliopoulos, Roberts & Skold 2007; Betancourt
& Girolami 2015). Voter logits are non-centred (few votes per voter).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesarena.arena_data import ArenaCells
from bayesarena.likelihood import bothbad_split, decisive_log_probs, direction_log_probs
from bayesarena.numpyro_model import (
    bucket_size,
    outcome_params,
    pad_rows,
    prior_distribution,
    strengths,
)
from bayesarena.spec import ModelSpec


def category_deviations(
    n_models: int, n_tags: int, centred_index: jax.Array, noncentred_index: jax.Array,
    spec: ModelSpec,
) -> jax.Array:
    """Sample ``tau`` and the zero-sum category deviations ``delta``, shape ``(M, C)``.

    ``centred_index`` / ``noncentred_index`` are flat indices ``c * M + m`` of the elements
    sampled centred / non-centred (together, every element once).
    """
    tau = numpyro.sample(
        "category_scale",
        prior_distribution(spec.priors["category_scale"]).expand([n_tags]).to_event(1),
    )
    raw = jnp.zeros(n_tags * n_models)
    if centred_index.shape[0]:
        r = numpyro.sample("category_raw", dist.Normal(0.0, tau[centred_index // n_models])
                           .to_event(1))
        raw = raw.at[centred_index].set(r)
    if noncentred_index.shape[0]:
        z = numpyro.sample("category_z", dist.Normal(0.0, 1.0)
                           .expand([noncentred_index.shape[0]]).to_event(1))
        raw = raw.at[noncentred_index].set(tau[noncentred_index // n_models] * z)
    raw = raw.reshape(n_tags, n_models)
    return numpyro.deterministic("category_deviation",
                                 (raw - raw.mean(axis=1, keepdims=True)).T)


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


def voter_reliability(n_voter_params: int, spec: ModelSpec) -> jax.Array:
    """Sample the voter hierarchy; returns ``r_v = 2 eta_v - 1 = tanh(u_v / 2)``."""
    mu = numpyro.sample("voter_logit_mean", prior_distribution(spec.priors["voter_logit_mean"]))
    scale = numpyro.sample("voter_logit_scale",
                           prior_distribution(spec.priors["voter_logit_scale"]))
    z = numpyro.sample("voter_z", dist.Normal(0.0, 1.0).expand([n_voter_params]).to_event(1))
    return jnp.tanh(0.5 * (mu + scale * z))


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
    centred_index: jax.Array,
    noncentred_index: jax.Array,
    *,
    n_models: int,
    n_voter_params: int,
    spec: ModelSpec,
    theta_from_category_mean: bool = False,
) -> None:
    """The arena model over cells and direction rows (see the module docstring and
    :func:`model_arguments` for the arrays).

    ``theta_from_category_mean``: sample ``psi_m = theta_m + mean_c delta[m, c]`` instead of
    ``theta`` (same posterior, see :func:`theta_via_category_mean`); use it when most votes
    carry a category tag.
    """
    if spec.categories.enabled:
        delta = category_deviations(n_models, tagsets.shape[1], centred_index,
                                    noncentred_index, spec)
        theta = (theta_via_category_mean(delta, spec) if theta_from_category_mean
                 else strengths(n_models, spec))
        strength = theta[None, :] + tagsets @ delta.T  # (tag sets, models)
    else:
        strength = strengths(n_models, spec)[None, :]
    params = outcome_params(spec)
    flat = strength.reshape(-1)
    s_i, s_j = flat[flat_i], flat[flat_j]
    d = s_i - s_j
    if spec.position.enabled:
        d = d + numpyro.sample("position", prior_distribution(spec.priors["position"])) * position
    log_lik = 0.0
    if spec.likelihood.ties == "davidson":
        lp_decisive, lp_tie = decisive_log_probs(d, params.log_nu)
        lp_bothbad = lp_tie
        if spec.likelihood.both_bad == "modelled":
            lp_tie, lp_bothbad = bothbad_split(lp_tie, 0.5 * (s_i + s_j), params)
        log_lik = jnp.sum((counts[:, 0] + counts[:, 1]) * lp_decisive + counts[:, 2] * lp_tie
                          + counts[:, 3] * lp_bothbad)
    y = d[row_cell]
    if spec.style.enabled:
        beta = numpyro.sample(
            "style_coef", prior_distribution(spec.priors["style_coef"])
            .expand([row_style.shape[1]]).to_event(1))
        y = y + row_style @ beta
    reliability = None
    if spec.voters.enabled:
        reliability = voter_reliability(n_voter_params, spec)[row_voter]
    lp_i, lp_j = direction_log_probs(y, reliability)
    numpyro.factor("votes", log_lik + jnp.sum(row_counts[:, 0] * lp_i + row_counts[:, 1] * lp_j))


#: Fisher information of one vote about the gap near d = 0 (sigmoid'(0) = 0.25, less the tie
#: share): the scale of the likelihood's precision per vote in the centring rule.
INFORMATION_PER_VOTE = 0.2


def centred_mask(data: ArenaCells, spec: ModelSpec,
                 category_scale: np.ndarray | None = None) -> np.ndarray:
    """Which (category, model) deviations to sample centred, shape ``(C, M)``.

    Under ``parametrization = "auto"``: centred where the likelihood's precision
    ``n_mc * INFORMATION_PER_VOTE`` is at least the prior's ``1 / tau_c^2``, with ``tau_c`` the
    given estimate (the Laplace mode) or, without one, the prior's median.
    """
    n_tags, m = max(len(data.tags), 1), data.cells.n_models
    mode = spec.categories.parametrization
    if not spec.categories.enabled or mode == "noncentered":
        return np.zeros((n_tags, m), dtype=bool)
    if mode == "centered":
        return np.ones((n_tags, m), dtype=bool)
    if category_scale is None:
        category_scale = np.full(n_tags, _prior_median_scale(spec))
    precision_ratio = (data.model_tag_votes().T * INFORMATION_PER_VOTE
                       * np.asarray(category_scale)[:, None] ** 2)
    return precision_ratio >= 1.0


def _prior_median_scale(spec: ModelSpec) -> float:
    prior = spec.priors["category_scale"]
    median = {"half_normal": 0.6745, "half_cauchy": 1.0, "exponential": np.log(2.0)}
    if prior.family == "exponential":
        return median["exponential"] / prior.params["rate"]
    return median.get(prior.family, 1.0) * prior.params.get("scale", 1.0)


def model_arguments(data: ArenaCells, spec: ModelSpec,
                    category_scale: np.ndarray | None = None) -> dict[str, jax.Array]:
    """The arrays :func:`arena_model` takes, cells and rows padded to :func:`bucket_size` with
    zero-count entries (padding changes no likelihood term); ``category_scale`` feeds the
    centring rule (:func:`centred_mask`)."""
    c = data.cells
    m = c.n_models
    k, r = bucket_size(c.n_cells), bucket_size(data.n_rows)
    tagsets = data.tagsets.astype(float) if data.tags else np.zeros((len(c.categories), 1))
    flat_centred = centred_mask(data, spec, category_scale).reshape(-1)
    return {
        "flat_i": jnp.asarray(pad_rows(c.category.astype(np.int64) * m + c.model_i, k)),
        "flat_j": jnp.asarray(pad_rows(c.category.astype(np.int64) * m + c.model_j, k, fill=1)),
        "position": jnp.asarray(pad_rows(data.position.astype(float), k)),
        "counts": jnp.asarray(pad_rows(c.counts.astype(float), k)),
        "row_cell": jnp.asarray(pad_rows(data.row_cell, r)),
        "row_voter": jnp.asarray(pad_rows(data.row_voter, r)),
        "row_style": jnp.asarray(pad_rows(data.row_style, r)),
        "row_counts": jnp.asarray(pad_rows(data.row_counts.astype(float), r)),
        "tagsets": jnp.asarray(tagsets),
        "centred_index": jnp.asarray(np.nonzero(flat_centred)[0]),
        "noncentred_index": jnp.asarray(np.nonzero(~flat_centred)[0]),
    }
