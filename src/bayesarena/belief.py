"""A Gaussian summary of the strengths posterior, the state that active sampling works on.

``GaussianBelief`` holds the posterior mean ``mu`` and covariance ``Sigma`` of the sum-to-zero
strengths ``theta`` (from posterior draws by moment matching, or from the streaming Laplace
update of :mod:`bayesarena.online`), point values of the tie and both-bad parameters, and the
votes each pair has had. Pairs are indexed in ``numpy.triu_indices(n, 1)`` order.

Under the belief, a pair's gap ``d = theta_a - theta_b`` and mean ``m = (theta_a + theta_b) / 2``
are jointly Gaussian with ``var d = S_aa + S_bb - 2 S_ab``, ``var m = (S_aa + S_bb + 2 S_ab) / 4``
and ``cov(d, m) = (S_aa - S_bb) / 2``.

The Fisher information a vote carries about ``d`` is
``F(d) = sum_y p_y'(d)^2 / p_y(d)`` over the outcomes (a, b, tie, both bad), with the
derivative taken by JAX; :func:`expected_fisher` averages it over ``d ~ N(mu_d, var d)`` by
Gauss-Hermite quadrature. A vote then acts like a Gaussian observation of ``d`` with noise
variance ``1 / F``: the linear-Gaussian proxy behind the closed forms in
:mod:`bayesarena.information` and the batch updates in :mod:`bayesarena.policies`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from bayesarena.likelihood import OutcomeParams, outcome_probs

if TYPE_CHECKING:
    from bayesarena.posterior import Posterior
    from bayesarena.spec import LikelihoodSpec

#: Gauss-Hermite nodes for expectations over one Gaussian pair gap.
QUADRATURE_NODES = 12


class GaussianBelief(NamedTuple):
    """Gaussian posterior of the strengths plus what active sampling needs beside it."""

    models: tuple[str, ...]
    mean: np.ndarray  # (n,) posterior mean of theta (sums to zero)
    cov: np.ndarray  # (n, n) posterior covariance of theta
    outcome: OutcomeParams  # point values (floats) of the tie / both-bad parameters
    likelihood: LikelihoodSpec  # link, ties, both_bad of the fitted spec
    pair_votes: np.ndarray  # (n_pairs,) votes each pair has had, triu order

    @property
    def n_models(self) -> int:
        return len(self.models)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Index arrays ``(i, j)``, ``i < j``, of every pair in triu order."""
        return pair_indices(self.n_models)

    def pair_moments(self) -> PairMoments:
        """Means and (co)variances of every pair's gap ``d`` and mean strength ``m``."""
        i, j = self.pairs()
        c = self.cov
        cii, cjj, cij = c[i, i], c[j, j], c[i, j]
        return PairMoments(
            mean_d=self.mean[i] - self.mean[j],
            var_d=np.maximum(cii + cjj - 2.0 * cij, 0.0),
            mean_m=0.5 * (self.mean[i] + self.mean[j]),
            var_m=np.maximum(0.25 * (cii + cjj + 2.0 * cij), 0.0),
            cov_dm=0.5 * (cii - cjj),
        )

    def sample(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """``n_draws`` strength draws ``(n_draws, n_models)`` from ``N(mean, cov)``."""
        vals, vecs = np.linalg.eigh(self.cov)
        factor = vecs * np.sqrt(np.clip(vals, 0.0, None))
        return self.mean + rng.standard_normal((n_draws, self.n_models)) @ factor.T


class PairMoments(NamedTuple):
    mean_d: np.ndarray
    var_d: np.ndarray
    mean_m: np.ndarray
    var_m: np.ndarray
    cov_dm: np.ndarray


def pair_indices(n_models: int) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.triu_indices(n_models, 1)``: the pair order used throughout active sampling."""
    return np.triu_indices(n_models, k=1)


def pair_position(i: np.ndarray, j: np.ndarray, n_models: int) -> np.ndarray:
    """Position in triu order of the unordered pairs ``{i, j}`` (``i != j``)."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * n_models - lo * (lo + 1) // 2 + (hi - lo - 1)


def point_outcome(params: OutcomeParams) -> OutcomeParams:
    """Posterior means of the outcome parameters (``None`` stays ``None``)."""
    return OutcomeParams(*(None if p is None else float(np.mean(p)) for p in params))


def belief_from_draws(
    models: tuple[str, ...],
    theta: np.ndarray,
    outcome: OutcomeParams,
    likelihood: LikelihoodSpec,
    pair_votes: np.ndarray | None = None,
) -> GaussianBelief:
    """Moment-matched belief from strength draws ``(n_draws, n_models)``."""
    n = len(models)
    votes = np.zeros(n * (n - 1) // 2) if pair_votes is None else np.asarray(pair_votes, float)
    return GaussianBelief(tuple(models), theta.mean(axis=0), np.cov(theta, rowvar=False),
                          point_outcome(outcome), likelihood, votes)


def belief_from_posterior(posterior: Posterior, category: str | None = None) -> GaussianBelief:
    """Moment-matched belief from a posterior's draws (a category's strengths if given)."""
    models = posterior.models
    cells = posterior.cells()
    votes = np.zeros(len(models) * (len(models) - 1) // 2)
    np.add.at(votes, pair_position(cells.model_i, cells.model_j, len(models)),
              cells.counts.sum(axis=1))
    return belief_from_draws(models, posterior.strength_draws(category),
                             posterior.outcome_param_draws(), posterior.spec.likelihood, votes)


@functools.partial(jax.jit, static_argnames=("ties", "both_bad", "link"))
def _fisher(d, m, params, *, ties, both_bad, link):
    def probs(x):
        return outcome_probs(x, m, ties=ties, both_bad=both_bad, params=params, link=link)

    p, dp = jax.jvp(probs, (d,), (jnp.ones_like(d),))
    return jnp.sum(jnp.where(p > 0, dp**2 / jnp.where(p > 0, p, 1.0), 0.0), axis=-1)


def fisher_information(
    d: np.ndarray, m: np.ndarray, likelihood: LikelihoodSpec, outcome: OutcomeParams
) -> np.ndarray:
    """Fisher information about the gap ``d`` of one vote, ``sum_y p_y'(d)^2 / p_y(d)``."""
    d = jnp.asarray(d, dtype=float)
    m = jnp.broadcast_to(jnp.asarray(m, dtype=float), d.shape)
    return np.asarray(_fisher(d, m, outcome, ties=likelihood.ties,
                              both_bad=likelihood.both_bad, link=likelihood.link))


def expected_fisher(belief: GaussianBelief, moments: PairMoments | None = None) -> np.ndarray:
    """``E F(d)`` over ``d ~ N(mean_d, var_d)`` for every pair (Gauss-Hermite, 12 nodes),
    with the mean strength held at its mean (it moves only the tie / both-bad split)."""
    d, m, w = gap_quadrature(belief.pair_moments() if moments is None else moments)
    return fisher_information(d, m, belief.likelihood, belief.outcome) @ w


def gap_quadrature(moments: PairMoments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes of every pair's gap ``d ~ N(mean_d, var d)``
    (``QUADRATURE_NODES``), the mean strength held at its mean: ``(d, m, weights)`` with
    ``d, m`` of shape ``(n_pairs, nodes)``; ``f(d, m) @ weights`` is ``E f``."""
    nodes, w = hermegauss(QUADRATURE_NODES)
    d = moments.mean_d[:, None] + np.sqrt(moments.var_d)[:, None] * nodes
    return d, np.broadcast_to(moments.mean_m[:, None], d.shape), w / w.sum()
