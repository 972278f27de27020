"""Pool NUTS's warmup adaptation across chains, so that every chain samples with one kernel.

NumPyro adapts each chain on its own: the step size by dual averaging (Hoffman & Gelman 2014,
sec. 3.2) and a diagonal (or dense) mass matrix from windowed variance estimates of the
chain's own warmup draws (Stan's schedule). The chains' estimates differ by noise, and NUTS's
cost is quantised: a trajectory doubles until it turns, so a chain whose step size came out a
little smaller than the others' can need twice the leapfrog steps per iteration. Measured on
the 50-model, 100k-vote arena (``benchmarks/arena_scaling.py --models 50 --votes 100000``):
one chain ended warmup at step size 0.205 and took 49 steps per draw, the other three at
0.22-0.26 took 15; parallel chains wait for the slowest.

:func:`pool_adaptation` replaces each chain's adapted kernel, once warmup is over, by one
shared by all chains:

* inverse mass matrix ``M^-1 = (1/K) sum_k M_k^-1`` over the ``K`` chains: each ``M_k^-1`` is
  a (regularised) variance estimate from the same number of draws of the same posterior, so
  their mean is the estimate from all ``K`` chains' draws (``K`` times the draws; for a dense
  block it ignores the spread between the chains' means, which after warmup is within Monte
  Carlo error);
* step size ``eps = median_k eps_k``, robust to one chain whose dual averaging ended off;
* split HMC's Gaussian centre (:mod:`bayesarena.split_hmc`, a state with a ``centre``)
  ``mu = (1/K) sum_k mu_k``: each ``mu_k`` is the mean of the chain's last slow window, so
  theirs is the mean of all ``K`` windows.

Tuning from all chains at once is established practice (cross-chain adaptation: ChEES,
Hoffman, Radul & Sountsov 2021; MEADS, Hoffman & Sountsov 2022). The kernel is fixed during
sampling, so every chain remains a Markov chain that leaves the posterior invariant; and with
one kernel the chains differ only by their randomness, which is what R-hat compares.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular


def mass_matrix_factors(inverse_mass: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(M^{1/2}, M^{-1/2})`` of an inverse mass matrix in NumPyro's convention.

    Diagonal (1-d): ``M^{-1/2} = sqrt(M^-1)`` and ``M^{1/2} = 1 / M^{-1/2}``. Dense (2-d, on
    the last two axes): ``M^{-1/2}`` is the upper factor ``U`` with ``U^T U = M^-1`` from the
    Cholesky factor of the index-reversed matrix, and ``M^{1/2}`` solves ``U X = I`` as a lower
    system (``numpyro.infer.hmc_util``, which builds them the same way from the adapted
    ``M^-1``).
    """
    if inverse_mass.ndim == 1:
        sqrt_inv = jnp.sqrt(inverse_mass)
        return jnp.reciprocal(sqrt_inv), sqrt_inv
    sqrt_inv = jnp.swapaxes(
        jnp.linalg.cholesky(inverse_mass[..., ::-1, ::-1])[..., ::-1, ::-1], -2, -1)
    identity = jnp.identity(inverse_mass.shape[-1])
    return solve_triangular(sqrt_inv, identity, lower=True), sqrt_inv


def pool_adaptation(state: Any) -> Any:
    """Give every chain of a post-warmup state (``MCMC.post_warmup_state`` of NUTS, jittered
    or split HMC, leaves with a leading chain axis) the mean inverse mass matrix, the median
    step size and, for split HMC, the mean centre over the chains (see the module docstring).
    Positions, momenta and random keys are untouched."""
    adapt = state.adapt_state
    n_chains = jnp.shape(adapt.step_size)[0]

    def shared(x: jax.Array) -> np.ndarray:
        # a host array: the parallel sampler shards it over its devices along the chain axis
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x), (n_chains, *x.shape)))

    inverse_mass, sqrt, sqrt_inv = {}, {}, {}
    blocks = adapt.inverse_mass_matrix  # one array when the kernel has a potential_fn
    for block, per_chain in (blocks.items() if isinstance(blocks, dict) else [(None, blocks)]):
        pooled = jnp.mean(jnp.asarray(per_chain), axis=0)
        factor, factor_inv = mass_matrix_factors(pooled)
        inverse_mass[block] = shared(pooled)
        sqrt[block], sqrt_inv[block] = shared(factor), shared(factor_inv)
    if not isinstance(blocks, dict):
        inverse_mass, sqrt, sqrt_inv = inverse_mass[None], sqrt[None], sqrt_inv[None]
    step_size = shared(jnp.median(jnp.asarray(adapt.step_size)))
    state = state._replace(adapt_state=adapt._replace(
        step_size=step_size, inverse_mass_matrix=inverse_mass, mass_matrix_sqrt=sqrt,
        mass_matrix_sqrt_inv=sqrt_inv))
    if hasattr(state, "centre"):  # split HMC's Gaussian centre, flat per chain
        state = state._replace(centre=shared(jnp.mean(jnp.asarray(state.centre), axis=0)))
    return state
