"""HMC split around a Gaussian: the sampling kernel for large, nearly Gaussian posteriors.

With a diagonal inverse mass matrix ``M^-1`` (the posterior variances estimated in warmup)
the Hamiltonian is ``H(q, p) = U(q) + p' M^-1 p / 2``. Write the potential as a Gaussian part
and the rest,

    U(q) = U0(q) + R(q),    U0(q) = (q - mu)' M (q - mu) / 2,

with ``mu`` an estimate of the posterior mean. Under ``H0 = U0 + p' M^-1 p / 2`` every
coordinate turns with its momentum at unit frequency, a flow solved exactly:

    q(t) - mu = (q - mu) cos t + M^-1 p sin t,    p(t) = p cos t - M (q - mu) sin t.

One step of size ``eps`` is Strang's splitting of ``H = H0 + R``: half a kick with
``-grad R = -(grad U - M (q - mu))``, the exact rotation by ``eps``, half a kick (Shahbaba,
Lan, Johnson & Neal 2014, "Split Hamiltonian Monte Carlo", Statistics and Computing 24,
339-349; Neal 2011, "MCMC using Hamiltonian dynamics", sec. 5.5.1). Like a leapfrog step it
costs one gradient of ``U``, preserves volume and is reversible (a composition of symmetric
shears and a rotation); the end of the trajectory is accepted with ``min(1, exp(-dH))`` on the
full ``H``. So the chain targets the posterior exactly whatever ``mu`` and ``M`` are: they
only decide how large a step is accepted.

Why it pays. Leapfrog integrates the Gaussian part too, with an energy error of order
``eps^2`` in each of ``d`` coordinates, so at a fixed acceptance its step shrinks as
``d^-1/4`` (Beskos et al. 2013): at the full LMArena scale (``models/arena.toml``, 7,361
parameters) about 0.14 in the mass matrix's units, 12 steps for a quarter period. The split
step's energy error comes from the residual ``R`` alone, of order ``eps^2 a`` per coordinate
where ``a`` is how far the posterior's curvature in that direction is from the Gaussian's.
A posterior of a million votes is close to Gaussian, so the step can be larger for the same
acceptance, each step still one gradient. At the full LMArena scale (150 models x 10
categories x 1M votes, 4 chains x 800 draws, ``benchmarks/arena_scaling.py``) the adapted step
came out at 0.20-0.21 against jittered HMC's 0.14: 8.1-8.5 steps per draw against 11.6, and the
fit took 402-414 s against 533 s in the same session, with max R-hat 1.0068 against 1.0102
(``benchmarks/results/arena_scaling_split.json``, ``_split_mode.json``,
``_jittered_now.json``). What limits the step is how far the posterior is from the diagonal
Gaussian: its correlations, its skew, and the noise in the variances and the mean estimated
in warmup. The adapted step is on the safe side: the draws accepted 0.92 on average against
the 0.8 dual averaging aims at, as warmup ends at the average step of its 50-iteration
terminal buffer, each chain with its own mass matrix (a 100-iteration tuning with the pooled
one found 0.265; ``_split_two_stage.json``).

How it adapts. ``SplitHMC`` is a NumPyro kernel like :class:`~numpyro.infer.HMC` and runs
Stan's warmup schedule through NumPyro's own adapter (``warmup_adapter``): dual averaging of
the step size (Hoffman & Gelman 2014, sec. 3.2) towards ``target_accept_prob``, the
diagonal ``M^-1`` from the variances of each slow window's draws. The Gaussian follows the
adaptation: ``mu`` starts at ``centre`` (the fit passes the Laplace mode, else the mean of
the chains' starts; by default each chain's own start) and at the end of each slow window
becomes the
mean of that window's draws, estimated by the same Welford pass as their variances; after a
window NumPyro's heuristic step-size search is skipped, as it would take leapfrog steps (dual
averaging restarts from ``10 eps`` all the same). After warmup
:func:`bayesarena.adaptation.pool_adaptation` gives every chain the
chains' mean ``M^-1`` and ``mu`` and their median step size. Each iteration integrates for
``T = T0 u``, ``u ~ U(1 - j, 1 + j)``, as :class:`bayesarena.jittered_hmc.JitteredHMC` does
(with the same shortened time in warmup's adaptation windows).

Only diagonal mass matrices are supported (a dense block would need the rotation in its
eigenbasis). A dense one comes as a linear change of variables instead: under ``[sampler]
metric = "laplace"`` the kernel samples ``x`` with ``q = m + T x`` and ``T T'`` the
Laplace covariance (:mod:`bayesarena.whitening`), unit mass and centre 0 held fixed, so the
Gaussian it splits off is the Laplace approximation with every correlation it knows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import IntegratorState, build_adaptation_schedule, warmup_adapter
from numpyro.util import is_prng_key

from bayesarena.jittered_hmc import JitteredHMC, integration_time

#: An energy error above this marks the iteration divergent (NumPyro's ``max_delta_energy``).
MAX_DELTA_ENERGY = 1000.0


class SplitHMCState(NamedTuple):
    """One chain's state: NumPyro's ``HMCState`` fields that ``MCMC`` reads (``z``,
    ``diverging``, ``num_steps``, ``accept_prob``, ``energy``, ``potential_energy``,
    ``adapt_state``, ``rng_key``; ``adapt_state`` is NumPyro's ``HMCAdaptState``) and the
    Gaussian's ``centre`` ``mu``, flat in the order of ``ravel_pytree(z)``."""

    i: jax.Array
    z: dict
    z_grad: dict
    potential_energy: jax.Array
    energy: jax.Array
    num_steps: jax.Array
    accept_prob: jax.Array
    mean_accept_prob: jax.Array
    diverging: jax.Array
    adapt_state: Any
    rng_key: jax.Array
    centre: jax.Array


class Phase(NamedTuple):
    """Position, momentum, potential and its gradient (flat arrays) along a trajectory."""

    q: jax.Array
    p: jax.Array
    potential: jax.Array
    grad: jax.Array


def split_step(value_and_grad: Any, step_size: jax.Array, centre: jax.Array,
               inverse_mass: jax.Array, phase: Phase) -> Phase:
    """One step of the split integrator (module docstring): half a kick with the residual's
    force ``-(grad U - M (q - mu))``, the exact rotation of ``H0`` by ``step_size``, half a
    kick."""
    def kick(p: jax.Array, q: jax.Array, grad: jax.Array) -> jax.Array:
        return p - 0.5 * step_size * (grad - (q - centre) / inverse_mass)

    p = kick(phase.p, phase.q, phase.grad)
    y = phase.q - centre
    cos, sin = jnp.cos(step_size), jnp.sin(step_size)
    q = centre + y * cos + inverse_mass * p * sin
    p = p * cos - y / inverse_mass * sin
    potential, grad = value_and_grad(q)
    return Phase(q, kick(p, q, grad), potential, grad)


def kinetic_energy(inverse_mass: jax.Array, p: jax.Array) -> jax.Array:
    """``p' M^-1 p / 2`` for a diagonal ``M^-1``."""
    return 0.5 * jnp.sum(inverse_mass * p * p)


class SplitHMC(JitteredHMC):
    """HMC with the split integrator (module docstring), a NumPyro kernel.

    ``trajectory_length`` (``T0``), ``jitter`` (``j``) and ``warmup_scale`` are
    :class:`~bayesarena.jittered_hmc.JitteredHMC`'s; ``centre``: the Gaussian's centre until
    the first slow window ends (a dict of unconstrained sites, or flat in ``ravel_pytree``'s
    order; default each chain's start). The other arguments are
    :class:`~numpyro.infer.HMC`'s; ``dense_mass`` must stay off.
    """

    def __init__(self, model: Any = None, *, trajectory_length: float, jitter: float,
                 warmup_scale: float = 1.0, centre: Any = None, **kwargs: Any) -> None:
        if kwargs.get("dense_mass"):
            raise ValueError("split HMC needs a diagonal mass matrix (dense_mass=False)")
        super().__init__(model, trajectory_length=trajectory_length, jitter=jitter,
                         warmup_scale=warmup_scale, **kwargs)
        self._centre = centre
        self._num_warmup = 0
        self._schedule = np.zeros((0, 2), dtype=int)
        self._adapt: Any = None

    def init(self, rng_key: Any, num_warmup: int, init_params: Any = None,
             model_args: tuple = (), model_kwargs: dict | None = None) -> SplitHMCState:
        state = super().init(rng_key, num_warmup, init_params, model_args, model_kwargs)
        self._num_warmup = int(num_warmup)
        if num_warmup > 0:
            self._schedule = np.asarray(build_adaptation_schedule(num_warmup), dtype=int)
            # after a window's mass-matrix update NumPyro searches a reasonable step size
            # with a leapfrog step; the split step differs, so dual averaging restarts from
            # the current one instead
            self._adapt = warmup_adapter(
                num_warmup, find_reasonable_step_size=lambda step_size, *_: step_size,
                adapt_step_size=self._adapt_step_size,
                adapt_mass_matrix=self._adapt_mass_matrix, dense_mass=False,
                target_accept_prob=self._target_accept_prob,
                regularize_mass_matrix=self._regularize_mass_matrix)[1]
        centre = self._centre

        def split_state(s: Any) -> SplitHMCState:
            flat, _ = ravel_pytree(s.z)
            mu = flat if centre is None else (
                ravel_pytree(centre)[0] if isinstance(centre, dict) else jnp.asarray(centre))
            if mu.shape != flat.shape:
                raise ValueError(f"centre has {mu.shape[0]} values; the model has "
                                 f"{flat.shape[0]} unconstrained parameters")
            return SplitHMCState(s.i, s.z, s.z_grad, s.potential_energy, s.energy,
                                 s.num_steps, s.accept_prob, s.mean_accept_prob, s.diverging,
                                 s.adapt_state, s.rng_key, mu.astype(flat.dtype))

        return split_state(state) if is_prng_key(state.rng_key) else jax.vmap(split_state)(state)

    def sample(self, state: SplitHMCState, model_args: tuple, model_kwargs: dict) -> Any:
        potential_fn = self.get_potential_fn(model_args, model_kwargs)

        def one(s: SplitHMCState) -> SplitHMCState:
            scale = jnp.where(s.i < self._short_until, self._warmup_scale, 1.0)
            new, accept_prob = split_transition(s, potential_fn, scale * self._base_length,
                                                self._jitter)
            if self._num_warmup > 0:
                new = jax.lax.cond(s.i < self._num_warmup,
                                   lambda n: self._adapted(s, n, accept_prob),
                                   lambda n: n, new)
            n = jnp.where(s.i < self._num_warmup, new.i, new.i - self._num_warmup)
            return new._replace(mean_accept_prob=s.mean_accept_prob
                                + (accept_prob - s.mean_accept_prob) / n)

        # chain_method="vectorized" hands over the chains' states stacked
        return one(state) if is_prng_key(state.rng_key) else jax.vmap(one)(state)

    def _adapted(self, old: SplitHMCState, new: SplitHMCState,
                 accept_prob: jax.Array) -> SplitHMCState:
        """NumPyro's warmup update of step size and ``M^-1`` after iteration ``old.i``, and
        ``mu`` set to the window's mean where a slow window ends (read before the update
        restarts the window's Welford state)."""
        adapt = old.adapt_state
        window = adapt.window_idx
        ends = jnp.asarray(self._schedule[:, 1])
        slow_window_ends = ((old.i == ends[window]) & (window > 0)
                            & (window < len(self._schedule) - 1))
        updated = self._adapt(old.i, accept_prob,
                              IntegratorState(new.z, None, new.potential_energy, new.z_grad),
                              adapt)
        centre = new.centre
        if self._adapt_mass_matrix:
            means = jax.tree.map(lambda block: block[0], adapt.mm_state,
                                 is_leaf=lambda x: isinstance(x, tuple))
            centre = jnp.where(slow_window_ends, flat_blocks(means, new.z), centre)
        return new._replace(adapt_state=updated, centre=centre)


def split_transition(state: SplitHMCState, potential_fn: Any, trajectory_length: jax.Array,
                     jitter: float) -> tuple[SplitHMCState, jax.Array]:
    """One iteration without adaptation: fresh momenta ``p ~ N(0, M)``, ``L = ceil(T / eps)``
    split steps of size ``T / L`` with ``T = min(T0 u, MAX_STEPS eps)``, Metropolis
    accept on the full energy. Returns the new state (``mean_accept_prob`` not yet updated)
    and the acceptance probability."""
    key, key_momentum, key_length, key_accept = random.split(state.rng_key, 4)
    q0, unravel = ravel_pytree(state.z)
    grad0 = ravel_pytree(state.z_grad)[0]
    adapt = state.adapt_state
    inverse_mass, centre = flat_blocks(adapt.inverse_mass_matrix, state.z), state.centre

    def value_and_grad(q: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.value_and_grad(lambda x: potential_fn(unravel(x)))(q)

    length = integration_time(key_length, trajectory_length, jitter, adapt.step_size)
    n_steps = jnp.maximum(jnp.ceil(length / adapt.step_size), 1)
    n_steps = n_steps.astype(jnp.result_type(int))
    eps = length / n_steps
    p0 = random.normal(key_momentum, q0.shape) / jnp.sqrt(inverse_mass)
    start = Phase(q0, p0, state.potential_energy, grad0)
    end = jax.lax.fori_loop(
        0, n_steps, lambda _, phase: split_step(value_and_grad, eps, centre, inverse_mass,
                                                phase), start)
    energy0 = state.potential_energy + kinetic_energy(inverse_mass, p0)
    energy1 = end.potential + kinetic_energy(inverse_mass, end.p)
    delta = energy1 - energy0
    delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
    accept_prob = jnp.clip(jnp.exp(-delta), None, 1.0)
    accepted = random.bernoulli(key_accept, accept_prob)
    return state._replace(
        i=state.i + 1, z=unravel(jnp.where(accepted, end.q, q0)),
        z_grad=unravel(jnp.where(accepted, end.grad, grad0)),
        potential_energy=jnp.where(accepted, end.potential, state.potential_energy),
        energy=jnp.where(accepted, energy1, energy0), num_steps=n_steps,
        accept_prob=accept_prob, diverging=delta > MAX_DELTA_ENERGY, rng_key=key), accept_prob


def flat_blocks(blocks: Any, z: dict) -> jax.Array:
    """Per-block vectors in NumPyro's mass-matrix layout (a dict from tuples of site names to
    vectors, each the block's sites raveled in that order; or one vector over all sites in
    ``ravel_pytree(z)``'s order) as one vector in the order of ``ravel_pytree(z)`` (sorted
    site names). Dense (2-d) blocks raise ``ValueError``."""
    if not isinstance(blocks, dict):
        blocks = {tuple(sorted(z)): blocks}
    per_site = {}
    for names, values in blocks.items():
        if jnp.ndim(values) != 1:
            raise ValueError("split HMC needs a diagonal mass matrix; the block of "
                             f"{list(names)} is dense, shape {jnp.shape(values)}")
        offset = 0
        for name in names:
            size = int(np.prod(jnp.shape(z[name]), dtype=int))
            per_site[name] = values[offset:offset + size]
            offset += size
    return jnp.concatenate([jnp.asarray(per_site[k]) for k in sorted(per_site)])
