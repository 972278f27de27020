"""The NumPyro model built from a :class:`~bayesarena.spec.ModelSpec` (a plain function of data).

Generative model for ``M`` models and cells ``k = 1..K`` holding pair ``(i_k, j_k)``:

    sigma ~ prior_sigma                                   (spread of strengths)
    theta ~ ZeroSumNormal(sigma, shape=(M,))              (sum_m theta_m = 0: identified)
    [log_nu ~ prior_log_nu]                               (Davidson ties)
    [a ~ prior_bothbad_intercept, b ~ prior_bothbad_slope] (both-bad share)
    counts_k ~ Multinomial(n_k, p(theta_{i_k} - theta_{j_k}, (theta_{i_k} + theta_{j_k}) / 2))

with ``p`` from :mod:`bayesarena.likelihood`. Only the cells' counts enter the likelihood, so
the cost grows with cells, not votes. ``parametrization = "noncentered"`` samples
``z ~ ZeroSumNormal(1)`` and sets ``theta = sigma z`` (better when most models have few votes;
the centred form is better when each model has many, as in public arenas).
"""

from __future__ import annotations

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesarena.gather import take
from bayesarena.likelihood import OutcomeParams, cell_log_likelihood, log_outcome_probs
from bayesarena.precision import lower, term_dtype, total
from bayesarena.spec import ModelSpec, Prior


def prior_distribution(prior: Prior) -> dist.Distribution:
    """The NumPyro distribution of a spec prior."""
    p = prior.params
    match prior.family:
        case "normal":
            return dist.Normal(p["loc"], p["scale"])
        case "half_normal":
            return dist.HalfNormal(p["scale"])
        case "half_cauchy":
            return dist.HalfCauchy(p["scale"])
        case "exponential":
            return dist.Exponential(p["rate"])
        case "student_t":
            return dist.StudentT(p["df"], p["loc"], p["scale"])
    raise ValueError(f"unknown prior family {prior.family!r}")  # unreachable: spec validated


def strengths(n_models: int, spec: ModelSpec) -> jax.Array:
    """Sample ``sigma`` and the sum-to-zero strengths ``theta`` (shape ``(n_models,)``)."""
    sigma = numpyro.sample("sigma", prior_distribution(spec.priors["sigma"]))
    if spec.strength.parametrization != "noncentered":  # "auto" is resolved by fit: centred
        return numpyro.sample("theta", dist.ZeroSumNormal(sigma, event_shape=(n_models,)))
    z = numpyro.sample("theta_z", dist.ZeroSumNormal(1.0, event_shape=(n_models,)))
    return numpyro.deterministic("theta", sigma * z)


def outcome_params(spec: ModelSpec) -> OutcomeParams:
    """Sample the tie and both-bad parameters the spec's likelihood uses."""
    lik = spec.likelihood
    log_nu = a = b = threshold = None
    if lik.ties == "davidson":
        log_nu = numpyro.sample("log_nu", prior_distribution(spec.priors["log_nu"]))
    if lik.ties == "rao_kupper":
        threshold = numpyro.sample("tie_threshold",
                                   prior_distribution(spec.priors["tie_threshold"]))
    if lik.both_bad == "modelled":
        a = numpyro.sample("bothbad_intercept",
                           prior_distribution(spec.priors["bothbad_intercept"]))
        b = numpyro.sample("bothbad_slope", prior_distribution(spec.priors["bothbad_slope"]))
    return OutcomeParams(log_nu=log_nu, bothbad_intercept=a, bothbad_slope=b,
                         tie_threshold=threshold)


def cell_log_probs(
    theta: jax.Array, model_i: jax.Array, model_j: jax.Array, spec: ModelSpec,
    params: OutcomeParams,
) -> jax.Array:
    """Per-cell outcome log-probabilities, shape ``(n_cells, 4)``."""
    ti, tj = take(theta, model_i), take(theta, model_j)
    return log_outcome_probs(
        ti - tj, 0.5 * (ti + tj), ties=spec.likelihood.ties,
        both_bad=spec.likelihood.both_bad, params=params, link=spec.likelihood.link,
    )


def pairwise_model(
    model_i: jax.Array,
    model_j: jax.Array,
    counts: jax.Array,
    *,
    n_models: int,
    spec: ModelSpec,
    precision: str = "double",
) -> None:
    """Bradley-Terry family model over aggregated cells (see the module docstring).
    ``precision = "mixed"``: per-cell terms in float32, their sum in float64
    (:mod:`bayesarena.precision`)."""
    low = term_dtype(precision)
    theta = lower(strengths(n_models, spec), low)
    params = lower(outcome_params(spec), low)
    log_probs = cell_log_probs(theta, model_i, model_j, spec, params)
    numpyro.factor("votes", total(cell_log_likelihood(lower(counts, low), log_probs)))


def bucket_size(n: int) -> int:
    """Round ``n`` up to 4 significant bits (at most 12.5% padding), so that refits on a few
    more cells hit the compilation cache instead of recompiling."""
    if n <= 16:
        return n
    shift = n.bit_length() - 4
    return -(-n // (1 << shift)) << shift


def pad_rows(x: np.ndarray, size: int, fill: float = 0) -> np.ndarray:
    """``x`` with its first axis padded to ``size`` by ``fill``."""
    out = np.full((size, *x.shape[1:]), fill, dtype=x.dtype)
    out[: x.shape[0]] = x
    return out
