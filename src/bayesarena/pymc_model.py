"""A PyMC twin of the NumPyro models, written independently from the formulas.

Why a twin. ``bayesarena``'s posteriors come from the NumPyro models in
:mod:`bayesarena.numpyro_model` (non-hierarchical specs) and :mod:`bayesarena.arena_model`
(hierarchical specs), whose likelihoods live in :mod:`bayesarena.likelihood`. This module
writes the same mathematics a second time, in PyTensor, from the formulas below and **without
importing any of the JAX likelihood code**: only data preparation (cells, :class:`ArenaCells`)
and spec parsing are shared. ``tests/test_pymc_twin.py`` checks that the two log densities
agree at the same parameter values and that the two posteriors agree within Monte Carlo error,
so a bug in either implementation shows up as a disagreement. The parametrisations may differ
(here: PyMC's :class:`pymc.ZeroSumNormal` for every sum-to-zero vector); the posteriors must
not.

Parameters (names, dims and priors as in the NumPyro models; priors from ``spec.priors``)::

    sigma ~ prior_sigma;   theta ~ ZeroSumNormal(sigma), dims (model,)
        (non-centred: theta_z ~ ZeroSumNormal(1), theta = sigma theta_z)
    log_nu ~ prior_log_nu                              Davidson ties
    tie_threshold ~ prior_tie_threshold                Rao-Kupper / Glenn-David ties, t > 0
    bothbad_intercept ~ ..., bothbad_slope ~ ...       both-bad share
    category_scale ~ prior_category_scale, dims (category,)
    category_deviation[:, c] ~ ZeroSumNormal(category_scale[c]), dims (model, category)
        (sampled per category as a ZeroSumNormal over the model axis: centred,
        ``category_raw``, or non-centred, ``category_scale[c] * category_z``)
    position ~ prior_position;   style_coef ~ prior_style_coef, dims (style_feature,)
    voter_discrimination_scale ~ prior_voter_discrimination_scale  (s_kappa)
    voter_discrimination_v = kappa_v ~ N(1, s_kappa^2), dims (voter,): the heavy voters (at
        least ``[voters] min_votes`` votes); light voters and votes without a voter id have
        the crowd's reference kappa = 1. Sampled centred (``voter_discrimination_centred``)
        for voters with many decisive votes, else non-centred (``kappa = 1 + s_kappa
        voter_discrimination_z``).

With categories, when at least half of the votes carry a tag, ``theta`` is sampled through
its average over categories ``psi = theta + mean_c category_deviation[:, c]``
(``theta_category_mean ~ ZeroSumNormal(sigma)`` plus a ``Potential`` that swaps its prior
density for ``ZeroSumNormal(sigma)`` at ``theta``): a linear map with unit Jacobian, so the
posterior is unchanged; it only removes the ridge along which ``theta`` and the deviations
trade off when every vote is tagged.

Likelihood of one vote on the pair (i, j), gap ``d = theta_i - theta_j`` and mean strength
``m = (theta_i + theta_j) / 2`` (outcomes win_i, win_j, tie, tie_bothbad)::

    Bradley-Terry (logit):      P(i) = sigmoid(d),  P(j) = sigmoid(-d)
    Thurstone (probit):         P(i) = Phi(d),      P(j) = Phi(-d)
    Davidson ties (logit):      with pi = e^theta, D = pi_i + pi_j + nu sqrt(pi_i pi_j),
                                P(i) = pi_i / D, P(j) = pi_j / D, P(tie) = nu sqrt(pi_i pi_j) / D
                                (log D - (theta_i + theta_j)/2 = logsumexp(d/2, -d/2, log nu))
    Rao-Kupper ties (logit):    kappa = e^t, P(i) = pi_i / (pi_i + kappa pi_j),
                                P(j) = pi_j / (kappa pi_i + pi_j),
                                P(tie) = (kappa^2 - 1) pi_i pi_j / ((pi_i + kappa pi_j)
                                                                    (kappa pi_i + pi_j))
    Glenn-David ties (probit):  P(i) = Phi(d - t), P(j) = Phi(-d - t),
                                P(tie) = Phi(t - d) - Phi(-t - d)
    half-win ties:              a tie adds (log P(i) + log P(j)) / 2 (a pseudo-likelihood)
    both bad, modelled:         share s = sigmoid(a + b m); P(tie_bothbad) = P(tie) s,
                                P(ordinary tie) = P(tie) (1 - s);  as_tie: P(tie_bothbad) =
                                P(tie);  drop: both-bad votes are removed from the data.

Hierarchical (arena) specs: model ``m`` on a vote with tag set ``T`` has strength
``s_m = theta_m + sum_{c in T} category_deviation[m, c]``; with position sign ``p`` (+1 when
``i`` was shown first, -1 when ``j`` was), style features ``x`` (``i`` minus ``j``) and voter
``v``::

    d = s_i - s_j + position p,   m = (s_i + s_j) / 2,   y = d + style_coef . x
    P(decisive) = (e^{d/2} + e^{-d/2}) / (e^{d/2} + e^{-d/2} + nu)      (ties = davidson)
    P(tie incl. both bad) = nu / (e^{d/2} + e^{-d/2} + nu), split by the both-bad share
    P(i wins | decisive) = sigmoid(kappa_v y)
    P(win_i) = P(decisive) P(i wins | decisive),  P(win_j) = P(decisive) (1 - P(i | decisive))

(with ``ties = "drop"``, ``P(decisive) = 1``; without voters, and for light voters,
``kappa = 1``; without style ``x = 0``). Log-probabilities are weighted by the vote counts of
the cells (and direction rows) and enter the model as one :func:`pymc.Potential` named
``votes``, like NumPyro's ``numpyro.factor("votes", ...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayesarena.arena_data import ArenaCells
from bayesarena.fit import arena_for_spec, as_cells, as_votes, cells_for_spec
from bayesarena.spec import ModelSpec, Prior, load_spec
from bayesarena.votes import Cells, Votes

Data = Cells | Votes | pd.DataFrame | str | Path | ArenaCells


# --- priors --------------------------------------------------------------------------------


def prior_rv(name: str, prior: Prior, **kwargs: Any) -> pt.TensorVariable:
    """A PyMC random variable ``name`` with the spec prior (inside a model context)."""
    p = prior.params
    match prior.family:
        case "normal":
            return pm.Normal(name, mu=p["loc"], sigma=p["scale"], **kwargs)
        case "half_normal":
            return pm.HalfNormal(name, sigma=p["scale"], **kwargs)
        case "half_cauchy":
            return pm.HalfCauchy(name, beta=p["scale"], **kwargs)
        case "exponential":
            return pm.Exponential(name, lam=p["rate"], **kwargs)
        case "student_t":
            return pm.StudentT(name, nu=p["df"], mu=p["loc"], sigma=p["scale"], **kwargs)
    raise ValueError(f"unknown prior family {prior.family!r}")


# --- elementary log-probabilities (PyTensor) -----------------------------------------------


def log_sigmoid(x: pt.TensorVariable) -> pt.TensorVariable:
    """``log sigmoid(x) = -log(1 + e^{-x})``."""
    return -pt.softplus(-x)


def log_phi(x: pt.TensorVariable) -> pt.TensorVariable:
    """``log Phi(x)``, the standard normal log CDF: ``log(erfcx(-x/sqrt2)/2) - x^2/2`` below
    ``x = -1`` (no underflow in the tail), ``log1p(-erfc(x/sqrt2)/2)`` above. Each branch gets
    an input clamped to its own range so the unused one never puts a NaN into the gradient."""
    r2 = np.sqrt(2.0)
    lo = pt.minimum(x, -1.0)
    hi = pt.maximum(x, -1.0)
    left = pt.log(0.5 * pt.erfcx(-lo / r2)) - 0.5 * lo**2
    right = pt.log1p(-0.5 * pt.erfc(hi / r2))
    return pt.switch(x < -1.0, left, right)


def log_sub_exp(a: pt.TensorVariable, b: pt.TensorVariable) -> pt.TensorVariable:
    """``log(e^a - e^b)`` for ``a > b``."""
    return a + pt.log(-pt.expm1(b - a))


def win_tie_log_probs(
    d: pt.TensorVariable, spec: ModelSpec, params: dict[str, pt.TensorVariable]
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    """``(log P(win_i), log P(win_j), log P(tie))`` before the both-bad split (see the module
    docstring); the tie term is 0 under ``ties = "drop"`` (those counts are removed)."""
    ties, link = spec.likelihood.ties, spec.likelihood.link
    if ties == "davidson":  # logit only (the spec refuses probit + davidson)
        log_nu = params["log_nu"]
        # log(D / sqrt(pi_i pi_j)) = log(e^{d/2} + e^{-d/2} + nu)
        log_norm = pt.logsumexp(pt.stack([0.5 * d, -0.5 * d, log_nu + pt.zeros_like(d)]),
                                axis=0)
        return 0.5 * d - log_norm, -0.5 * d - log_norm, log_nu - log_norm
    if ties == "rao_kupper":
        t = params["tie_threshold"]
        if link == "probit":  # Glenn & David (1960); P(tie) is even in d
            a = pt.abs(d)
            lp_tie = log_sub_exp(log_phi(t - a), log_phi(-t - a))
            return log_phi(d - t), log_phi(-d - t), lp_tie
        # Rao & Kupper (1967), divided through by pi_j and pi_i: P(i) = e^d / (e^d + e^t),
        # P(j) = 1 / (1 + e^{t + d}); P(tie) = (kappa^2 - 1) P(i) P(j)
        lp_i = d - pt.logaddexp(d, t)
        lp_j = -pt.softplus(t + d)
        return lp_i, lp_j, pt.log(pt.expm1(2.0 * t)) + lp_i + lp_j
    if link == "probit":
        lp_i, lp_j = log_phi(d), log_phi(-d)
    else:
        lp_i, lp_j = log_sigmoid(d), log_sigmoid(-d)
    lp_tie = 0.5 * (lp_i + lp_j) if ties == "half" else pt.zeros_like(d)
    return lp_i, lp_j, lp_tie


def split_both_bad(
    lp_tie: pt.TensorVariable, m: pt.TensorVariable, spec: ModelSpec,
    params: dict[str, pt.TensorVariable],
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """``(log P(ordinary tie), log P(tie_bothbad))`` from ``log P(tie)`` and the pair's mean
    strength ``m``: ``modelled`` splits with the share ``sigmoid(a + b m)``, ``as_tie`` counts a
    both-bad vote as a tie, ``drop`` gives 0 (no such votes are left)."""
    mode = spec.likelihood.both_bad
    if mode == "modelled":
        logit = params["bothbad_intercept"] + params["bothbad_slope"] * m
        return lp_tie + log_sigmoid(-logit), lp_tie + log_sigmoid(logit)
    if mode == "as_tie":
        return lp_tie, lp_tie
    return lp_tie, pt.zeros_like(lp_tie)


# --- parameters ----------------------------------------------------------------------------


def _strengths(spec: ModelSpec) -> pt.TensorVariable:
    sigma = prior_rv("sigma", spec.priors["sigma"])
    if spec.strength.parametrization != "noncentered":  # "auto": centred (fit resolves it)
        return pm.ZeroSumNormal("theta", sigma=sigma, n_zerosum_axes=1, dims="model")
    z = pm.ZeroSumNormal("theta_z", sigma=1.0, n_zerosum_axes=1, dims="model")
    return pm.Deterministic("theta", sigma * z, dims="model")


def _outcome_params(spec: ModelSpec) -> dict[str, pt.TensorVariable]:
    params = {}
    names = []
    if spec.likelihood.ties == "davidson":
        names.append("log_nu")
    if spec.likelihood.ties == "rao_kupper":
        names.append("tie_threshold")
    if spec.likelihood.both_bad == "modelled":
        names += ["bothbad_intercept", "bothbad_slope"]
    for name in names:
        params[name] = prior_rv(name, spec.priors[name])
    return params


#: A category is sampled centred when its median model has at least this many votes per unit
#: of prior precision: ``n_mc * 0.2 * tau^2 >= 1`` (0.2 about the Fisher information of one
#: vote about a gap near 0, ``tau`` the prior median of ``category_scale``).
INFORMATION_PER_VOTE = 0.2
#: A voter's discrimination is sampled centred from this many decisive votes on (the likelihood
#: then pins it more tightly than the N(0, 1) prior of its non-centred coordinate).
VOTER_CENTRED_MIN_VOTES = 400


def _prior_median(prior: Prior) -> float:
    p = prior.params
    match prior.family:
        case "half_normal":
            return 0.6744897501960817 * p["scale"]
        case "half_cauchy":
            return p["scale"]
        case "exponential":
            return float(np.log(2.0)) / p["rate"]
    return abs(p.get("loc", 0.0)) + p.get("scale", 1.0)


def _category_deviations(arena: ArenaCells, spec: ModelSpec, model: pm.Model
                         ) -> pt.TensorVariable:
    """``tau`` and the deviations, returned with shape ``(C, M)`` (``category_deviation`` is
    stored as ``(model, category)``). A category is sampled centred (``category_raw``) or
    non-centred (``category_z``) as a whole, since the zero-sum constraint couples its models:
    ``[categories] parametrization`` decides, under ``auto`` by :data:`INFORMATION_PER_VOTE`.
    The choice changes the geometry only, never the posterior."""
    n_tags, n_models = len(arena.tags), arena.cells.n_models
    tau = prior_rv("category_scale", spec.priors["category_scale"], dims="category")
    mode = spec.categories.parametrization
    if mode == "auto":
        tau_med = _prior_median(spec.priors["category_scale"])
        votes = np.median(arena.model_tag_votes(), axis=0)  # (C,)
        centred = votes * INFORMATION_PER_VOTE * tau_med**2 >= 1.0
    else:
        centred = np.full(n_tags, mode == "centered")
    c_idx, n_idx = np.nonzero(centred)[0], np.nonzero(~centred)[0]
    out = pt.zeros((n_tags, n_models))
    if len(c_idx):
        model.add_coord("category_centred", [arena.tags[c] for c in c_idx])
        raw = pm.ZeroSumNormal("category_raw", sigma=tau[c_idx][:, None], n_zerosum_axes=1,
                               dims=("category_centred", "model"))
        out = pt.set_subtensor(out[c_idx], raw)
    if len(n_idx):
        model.add_coord("category_noncentred", [arena.tags[c] for c in n_idx])
        z = pm.ZeroSumNormal("category_z", sigma=1.0, n_zerosum_axes=1,
                             dims=("category_noncentred", "model"))
        out = pt.set_subtensor(out[n_idx], tau[n_idx][:, None] * z)
    pm.Deterministic("category_deviation", out.T, dims=("model", "category"))
    return out


def _theta_via_category_mean(delta: pt.TensorVariable, spec: ModelSpec) -> pt.TensorVariable:
    """``theta`` sampled through ``psi = theta + mean_c delta[:, c]`` (see the module
    docstring); ``delta`` has shape ``(C, M)``."""
    sigma = prior_rv("sigma", spec.priors["sigma"])
    psi = pm.ZeroSumNormal("theta_category_mean", sigma=sigma, n_zerosum_axes=1, dims="model")
    theta = pm.Deterministic("theta", psi - delta.mean(axis=0), dims="model")
    n_models = len(pm.modelcontext(None).coords["model"])
    prior = pm.ZeroSumNormal.dist(sigma=sigma, shape=(n_models,))
    pm.Potential("theta_prior", pm.logp(prior, theta) - pm.logp(prior, psi))
    return theta


def _voter_discrimination(arena: ArenaCells, spec: ModelSpec, model: pm.Model
                          ) -> pt.TensorVariable:
    """``kappa`` for every voter parameter index of the direction rows: the heavy voters'
    ``voter_discrimination ~ N(1, s_kappa^2)`` (dims voter; centred from
    :data:`VOTER_CENTRED_MIN_VOTES` decisive votes on, else non-centred), then 1 for the
    pooled light voters (the last index)."""
    scale = prior_rv("voter_discrimination_scale", spec.priors["voter_discrimination_scale"])
    n_heavy = len(arena.voters)
    if n_heavy == 0:
        return pt.ones(1)
    decisive = np.zeros(n_heavy + 1)
    np.add.at(decisive, arena.row_voter, arena.row_counts.sum(axis=1))
    centred = decisive[:n_heavy] >= VOTER_CENTRED_MIN_VOTES
    c_idx, n_idx = np.nonzero(centred)[0], np.nonzero(~centred)[0]
    kappa = pt.zeros(n_heavy)
    if len(c_idx):
        model.add_coord("voter_centred", [arena.voters[v] for v in c_idx])
        kappa = pt.set_subtensor(kappa[c_idx], pm.Normal(
            "voter_discrimination_centred", 1.0, scale, dims="voter_centred"))
    if len(n_idx):
        model.add_coord("voter_noncentred", [arena.voters[v] for v in n_idx])
        z = pm.Normal("voter_discrimination_z", 0.0, 1.0, dims="voter_noncentred")
        kappa = pt.set_subtensor(kappa[n_idx], 1.0 + scale * z)
    kappa = pm.Deterministic("voter_discrimination", kappa, dims="voter")
    return pt.concatenate([kappa, pt.ones(1)])


# --- models --------------------------------------------------------------------------------


def build_pymc_model(data: Data, spec: str | Path | ModelSpec, *,
                     theta_from_category_mean: bool | None = None) -> pm.Model:
    """The PyMC model of ``spec`` on ``data`` (see the module docstring for the formulas).

    ``data`` is what :func:`bayesarena.fit` accepts: :class:`~bayesarena.votes.Cells` (or votes)
    for non-hierarchical specs, votes (a DataFrame, a path, :class:`~bayesarena.votes.Votes`)
    or prepared :class:`~bayesarena.arena_data.ArenaCells` for hierarchical ones. The outcomes
    the spec does not model are removed exactly as :func:`bayesarena.fit` removes them.
    ``theta_from_category_mean`` (categories only): sample ``theta`` through its category
    average (default: when at least half of the votes carry a tag); same posterior.
    """
    spec = load_spec(spec)
    if spec.hierarchical:
        arena = data if isinstance(data, ArenaCells) else arena_for_spec(as_votes(data), spec)[0]
        return _arena_pymc_model(arena, spec, theta_from_category_mean)
    cells, _ = cells_for_spec(as_cells(data), spec)
    return _pairwise_pymc_model(cells, spec)


def _pairwise_pymc_model(cells: Cells, spec: ModelSpec) -> pm.Model:
    with pm.Model(coords={"model": list(cells.models)}) as model:
        theta = _strengths(spec)
        params = _outcome_params(spec)
        ti, tj = theta[cells.model_i], theta[cells.model_j]
        d, m = ti - tj, 0.5 * (ti + tj)
        lp_i, lp_j, lp_tie = win_tie_log_probs(d, spec, params)
        lp_tie, lp_bb = split_both_bad(lp_tie, m, spec, params)
        c = cells.counts.astype(np.float64)
        pm.Potential("votes", pt.sum(c[:, 0] * lp_i + c[:, 1] * lp_j + c[:, 2] * lp_tie
                                     + c[:, 3] * lp_bb))
    return model


def _arena_pymc_model(arena: ArenaCells, spec: ModelSpec,
                      theta_from_category_mean: bool | None = None) -> pm.Model:
    cells = arena.cells
    coords = {"model": list(cells.models)}
    if spec.categories.enabled:
        coords["category"] = list(arena.tags)
    if spec.voters.enabled:
        coords["voter"] = list(arena.voters)  # heavy voters; the light ones share kappa = 1
    if spec.style.enabled:
        coords["style_feature"] = list(arena.style_features)
    if theta_from_category_mean is None:  # most votes tagged
        n = cells.counts.sum(axis=1)
        tagged = arena.tagsets[cells.category].any(axis=1) if arena.tags else n < 0
        theta_from_category_mean = bool(n[tagged].sum() >= 0.5 * n.sum())
    with pm.Model(coords=coords) as model:
        cat = cells.category
        if spec.categories.enabled and arena.tags:
            delta = _category_deviations(arena, spec, model)  # (C, M)
            theta = (_theta_via_category_mean(delta, spec) if theta_from_category_mean
                     else _strengths(spec))
            # strength of every model under every tag set: (G, M)
            strength = theta[None, :] + pt.dot(arena.tagsets.astype(np.float64), delta)
            s_i = strength[cat, cells.model_i]
            s_j = strength[cat, cells.model_j]
        else:
            theta = _strengths(spec)
            s_i, s_j = theta[cells.model_i], theta[cells.model_j]
        params = _outcome_params(spec)
        d = s_i - s_j
        if spec.position.enabled:
            gamma = prior_rv("position", spec.priors["position"])
            d = d + gamma * arena.position.astype(np.float64)
        c = cells.counts.astype(np.float64)
        log_lik = pt.constant(0.0)
        if spec.likelihood.ties == "davidson":
            log_nu = params["log_nu"]
            half = pt.stack([0.5 * d, -0.5 * d])
            log_norm = pt.logsumexp(pt.concatenate([half, log_nu + pt.zeros_like(d)[None]]),
                                    axis=0)
            lp_decisive = pt.logsumexp(half, axis=0) - log_norm
            lp_tie, lp_bb = split_both_bad(log_nu - log_norm, 0.5 * (s_i + s_j), spec, params)
            log_lik = pt.sum((c[:, 0] + c[:, 1]) * lp_decisive + c[:, 2] * lp_tie
                             + c[:, 3] * lp_bb)
        # who wins a decisive vote: one term per direction row
        y = d[arena.row_cell]
        if spec.style.enabled:
            beta = prior_rv("style_coef", spec.priors["style_coef"], dims="style_feature")
            y = y + pt.dot(arena.row_style.astype(np.float64), beta)
        if spec.voters.enabled:  # a voter-specific slope of the decisive-vote logit
            y = _voter_discrimination(arena, spec, model)[arena.row_voter] * y
        dir_i, dir_j = log_sigmoid(y), log_sigmoid(-y)
        r = arena.row_counts.astype(np.float64)
        pm.Potential("votes", log_lik + pt.sum(r[:, 0] * dir_i + r[:, 1] * dir_j))
    return model


# --- sampling ------------------------------------------------------------------------------


def sample_pymc(
    data: Data,
    spec: str | Path | ModelSpec,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.8,
    chain_method: str | None = None,
    progressbar: bool = False,
) -> Any:
    """Sample :func:`build_pymc_model` with PyMC's JAX backend (NumPyro's NUTS), returning
    PyMC's ArviZ 1.x :class:`xarray.DataTree` (``posterior``, ``sample_stats``).

    ``chain_method``: ``"parallel"`` (over JAX host devices; bayesarena asks XLA for 4 of
    them on import) when there are at least ``chains`` devices, else ``"vectorized"``.
    """
    import jax

    model = build_pymc_model(data, spec)
    if chain_method is None:
        chain_method = "parallel" if jax.local_device_count() >= chains else "vectorized"
    if int(pm.__version__.split(".")[0]) >= 6:  # NUTS options go in ``nuts={...}``
        options: dict[str, Any] = {
            "nuts": {"target_accept": target_accept, "chain_method": chain_method}}
    else:  # PyMC 5: sampler-driver options in ``nuts_sampler_kwargs``
        options = {"target_accept": target_accept,
                   "nuts_sampler_kwargs": {"chain_method": chain_method}}
    with model:
        return pm.sample(
            draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler="numpyro",
            progressbar=progressbar, compute_convergence_checks=False, **options,
        )
