"""Sampling in coordinates the Laplace approximation makes round: a linear change of variables.

With the Laplace approximation ``N(m, H^-1)`` of the posterior of the unconstrained
parameters ``q``, write ``q = m + T x`` with ``T T' ~ H^-1``. In ``x`` the approximation is
the standard normal, and the potential ``U_x(x) = U(m + T x)`` (a linear map: its Jacobian is
a constant) is what the sampler moves in: HMC there is HMC in ``q`` with the mass matrix
``M = (T T')^-1``, the Laplace precision, dense (Neal 2011, "MCMC using Hamiltonian dynamics",
sec. 4.1, on linear transformations; Girolami & Calderhead 2011 on metrics). The posterior is
sampled exactly whatever ``T`` is; ``T`` only decides the step size the sampler can take.

``T`` comes from the blocked precision of a large hierarchical arena
(:class:`~bayesarena.laplace.BlockedPrecision`: ``H = [[A, B], [B', D]]``, ``D`` diagonal over
the heavy voters' discriminations, the Schur complement ``S = A - B D^-1 B' = L_S L_S'``):

    q_g = m_g + L_S^-T x_g,
    q_l = m_l + D^-1/2 (x_l - C x_g),    C = D^-1/2 B' L_S^-T,

which is exact (``T T' = H^-1``; :meth:`BlockedPrecision.offsets`). Two parts of it are
thinned, which changes only how round ``T`` makes the posterior, never what is sampled.
``L_S^-T`` is nearly sparse: its entries below :data:`MIN_FACTOR_ENTRY` of their column's
largest are dropped (a sparse product touches a few MB where the dense factor streamed 11 MB
per product through memory that four parallel chains share). ``C`` holds the
correlations between the voters' and the globals' coordinates in whitened units (its singular
values are canonical correlations, in ``[0, 1)``), dense in the unconstrained coordinates
(the zero-sum transform spreads a model over all of them). It is kept to its singular
directions above :data:`MIN_COUPLING`: at 150 models x 10 categories x 1M votes one
correlation is 0.975 (the strengths' common scale against the voters' discriminations, which
multiply it) and the next 0.23, so ``T`` keeps rank one of ``C`` and the sampler sees the
rest (correlations up to 0.23 in about a thousand directions) as a departure from round.
Applied in full (5,691 x 1,659), ``C`` raised the adapted step size from 0.40 to 0.60 (3.1
steps per draw against 4.6) and cost as much in each step: sampling took 200 s against 202 s
(``benchmarks/results/arena_scaling_metric_laplace_w150_exact.json`` against ``_w150.json``,
both with the dense factor).

Why here and not NumPyro's ``dense_mass``: that estimates the dense matrix from warmup
draws (thousands of draws for 1,659 globals) and leapfrog would still integrate the Gaussian
part; here the exact Hessian is already at hand and split HMC (:mod:`bayesarena.split_hmc`)
integrates the standard normal exactly, leaving its steps only the non-Gaussian residual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from bayesarena.laplace import BlockedPrecision

#: Singular values of the whitened voter-global coupling ``C`` kept in ``T`` (module
#: docstring): correlations this strong would otherwise bound the sampler's step size.
MIN_COUPLING = 0.5
#: Entries of ``L_S^-T`` kept in ``T``, relative to the largest of their column: at 150
#: models x 1M votes the factor's 1,659 columns keep 12.5% of its entries, and the kept
#: ``T`` whitens the globals' marginal to eigenvalues within [0.889, 1.111] (the exact one:
#: 1; 1e-2 kept 0.6% and left 29 directions outside [0.9, 1.1]). Read from memory, the dense
#: factor cost the four parallel chains 21% more per step than the plain gradient, the
#: sparse one 6%.
MIN_FACTOR_ENTRY = 1e-3
#: The sample site of the whitened model.
SITE = "whitened"


class Whitening(NamedTuple):
    """The map ``q = mode + T x`` (module docstring); arrays, so it travels as a model argument
    (traced, not compiled in as constants). ``L_S^-T`` is kept sparse, as its entries
    ``factor_values`` at ``(factor_rows, factor_cols)`` (rows sorted);
    ``coupling_left @ coupling_right`` is the kept part of ``C``."""

    mode: jax.Array  # (n,)
    global_index: jax.Array  # (n_g,) ints
    local_index: jax.Array  # (n_l,) ints
    factor_rows: jax.Array  # (nnz,) ints
    factor_cols: jax.Array  # (nnz,) ints
    factor_values: jax.Array  # (nnz,)
    local_scale: jax.Array  # D^-1/2, (n_l,)
    coupling_left: jax.Array  # (n_l, k): U_k diag(s_k)
    coupling_right: jax.Array  # (k, n_g): V_k'


def whitening(blocks: BlockedPrecision, mode: np.ndarray, min_coupling: float | None = None,
              min_factor_entry: float | None = None, dtype: Any = np.float64) -> Whitening:
    """The whitening of a blocked Laplace approximation at ``mode``, keeping the singular
    directions of ``C`` whose correlation is at least ``min_coupling`` (default
    :data:`MIN_COUPLING`) and the entries of ``L_S^-T`` of at least ``min_factor_entry``
    (default :data:`MIN_FACTOR_ENTRY`) times the largest of their column; 0 and 0: the exact
    ``T``. ``dtype``: of ``T``'s entries (the mode stays float64; in float32 the map is within
    6e-7 of float64 relative to the largest offset, and stays a fixed linear map, so the
    sampler stays exact)."""
    min_coupling = MIN_COUPLING if min_coupling is None else min_coupling
    min_entry = MIN_FACTOR_ENTRY if min_factor_entry is None else min_factor_entry
    factor = blocks.schur_inverse_factor().T  # L_S^-T
    local_scale = 1.0 / np.sqrt(blocks.d)
    # C'C = L_S^-1 B D^-1 B' L_S^-T = L_S^-1 A L_S^-T - I (as S = A - B D^-1 B'): the
    # singular directions of C from n_g x n_g products, without forming C (n_l x n_g)
    gram = factor.T @ blocks.a @ factor - np.eye(len(factor))
    squares, v = np.linalg.eigh(0.5 * (gram + gram.T))
    keep = np.sqrt(np.clip(squares, 0.0, None)) >= min_coupling
    right = v[:, keep].T  # V_k'
    left = local_scale[:, None] * (blocks.b.T @ (factor @ v[:, keep]))  # C V_k = U_k S_k
    column_max = np.abs(factor).max(axis=0, keepdims=True)
    rows, cols = np.nonzero((factor != 0) & (np.abs(factor) >= min_entry * column_max))
    return Whitening(jnp.asarray(mode, dtype=float), jnp.asarray(blocks.global_index),
                     jnp.asarray(blocks.local_index), jnp.asarray(rows, dtype=jnp.int32),
                     jnp.asarray(cols, dtype=jnp.int32),
                     jnp.asarray(factor[rows, cols], dtype=dtype),
                     jnp.asarray(local_scale, dtype=dtype), jnp.asarray(left, dtype=dtype),
                     jnp.asarray(right, dtype=dtype))


def unwhiten(w: Whitening, x: jax.Array) -> jax.Array:
    """``q = mode + T x`` for one flat ``x`` (differentiable; its transpose gives the
    gradient in ``x``)."""
    dtype = w.factor_values.dtype
    x_g, x_l = x[w.global_index].astype(dtype), x[w.local_index].astype(dtype)
    q_g = jax.ops.segment_sum(w.factor_values * x_g[w.factor_cols], w.factor_rows,
                              num_segments=w.global_index.shape[0], indices_are_sorted=True)
    q_l = w.local_scale * (x_l - w.coupling_left @ (w.coupling_right @ x_g))
    return (w.mode.at[w.global_index].add(q_g.astype(w.mode.dtype))
            .at[w.local_index].add(q_l.astype(w.mode.dtype)))


def whitened_model(potential_gen: Callable[..., Callable[[dict], jax.Array]],
                   unravel: Callable[[jax.Array], dict], whitening: Whitening,
                   **kwargs: Any) -> None:
    """A NumPyro model with one improper flat site ``x`` (:data:`SITE`) and density
    ``exp(-U(m + T x))``: ``potential_gen(**kwargs)`` is the original model's potential
    (:func:`bayesarena.laplace.model_functions`'s ``potential_fn``), evaluated
    inside ``handlers.block`` so that its sites stay out of this model's trace."""
    x = numpyro.sample(SITE, dist.ImproperUniform(dist.constraints.real_vector, (),
                                                  (whitening.mode.shape[0],)))
    with handlers.block():
        potential = potential_gen(**kwargs)(unravel(unwhiten(whitening, x)))
    numpyro.factor("potential", -potential)


def unwhitened_draws(w: Whitening, x: np.ndarray) -> np.ndarray:
    """Rows ``x`` mapped to ``q = mode + T x`` (``(..., n)`` in, same shape out), in numpy
    with the factor made dense: one matrix product for all draws (at full size 1-3 s for
    3,200 draws, where the jitted :func:`unwhiten` mapped over them took 4.9 s)."""
    flat = np.reshape(np.asarray(x, dtype=float), (-1, x.shape[-1]))
    g, loc = np.asarray(w.global_index), np.asarray(w.local_index)
    factor = np.zeros((g.size, g.size))
    factor[np.asarray(w.factor_rows), np.asarray(w.factor_cols)] = np.asarray(w.factor_values)
    x_g = flat[:, g]
    q = np.repeat(np.asarray(w.mode)[None, :], len(flat), axis=0)
    q[:, g] += x_g @ factor.T
    coupled = (x_g @ np.asarray(w.coupling_right, dtype=float).T) @ np.asarray(
        w.coupling_left, dtype=float).T
    q[:, loc] += np.asarray(w.local_scale, dtype=float) * (flat[:, loc] - coupled)
    return np.reshape(q, x.shape)
