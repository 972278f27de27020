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
A posterior of a million votes is close to Gaussian, so the step can be several times larger
for the same acceptance, each step still one gradient.

How a fit uses it (:func:`bayesarena.fit.resolve_kernel`, ``kernel = "split_hmc"``):

1. warmup as for jittered HMC (:class:`bayesarena.jittered_hmc.JitteredHMC`, leapfrog),
   all of it at the shortened warmup time: it adapts ``M^-1`` (its leapfrog step size only
   seeds step 2), and its last :data:`CENTRE_DRAWS` iterations of every chain give ``mu``
   (:func:`warmup_centre`);
2. :data:`TUNING_ITERATIONS` iterations of this kernel (``MCMC``'s warmup of it) adapt its
   own step size by dual averaging (Hoffman & Gelman 2014, sec. 3.2; NumPyro's scheme),
   each chain on its own, starting from the leapfrog step size;
3. the draws, with ``mu``, ``M^-1`` and the step size fixed, and the integration time
   jittered as in :mod:`bayesarena.jittered_hmc` (``T = T0 u``, ``u ~ U(1 - j, 1 + j)``).

Only diagonal mass matrices are supported (a dense block would need the rotation in its
eigenbasis).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import dual_averaging
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from bayesarena.jittered_hmc import MAX_STEPS

#: Warmup iterations per chain (the last ones) whose positions are averaged into ``mu``.
CENTRE_DRAWS = 100
#: Iterations of the split kernel that tune its step size before the draws.
TUNING_ITERATIONS = 100
#: An energy error above this marks the iteration divergent (NumPyro's ``max_delta_energy``).
MAX_DELTA_ENERGY = 1000.0


class SplitHMCState(NamedTuple):
    """One chain's state. The field names NumPyro's ``MCMC`` reads (``z``, ``diverging``,
    ``num_steps``, ``accept_prob``, ``energy``, ``potential_energy``,
    ``adapt_state.step_size``, ``rng_key``) are those of its ``HMCState``; ``adapt_state``
    is the warmup's ``HMCAdaptState`` carried on, with ``step_size`` and the dual-averaging
    state ``ss_state`` this kernel's own. ``centre`` and ``inverse_mass`` are the flat
    ``mu`` and diagonal ``M^-1`` in the order of ``ravel_pytree(z)``."""

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
    inverse_mass: jax.Array


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


class SplitHMC(MCMCKernel):
    """The split-HMC transition (module docstring) for NumPyro's ``MCMC``, started from a
    warmed-up chain: ``MCMC(SplitHMC(...), num_warmup=TUNING_ITERATIONS, ...)`` run with
    ``init_params=start_state(...)``. Its own warmup iterations tune the step size by dual
    averaging towards ``target_accept`` and end at the averaged step (Hoffman & Gelman 2014's
    final value); the draws keep it.

    ``base``: the kernel that ran the first warmup (an initialised
    :class:`~numpyro.infer.HMC` or subclass); its potential and its map to constrained values
    are reused. ``trajectory_length``, ``jitter``: the integration time ``T0 u``,
    ``u ~ U(1 - j, 1 + j)``.
    """

    def __init__(self, base: Any, *, trajectory_length: float, jitter: float,
                 target_accept: float) -> None:
        if not trajectory_length > 0:
            raise ValueError(f"trajectory_length must be positive, got {trajectory_length}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        if not 0 < target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
        self._base = base
        self._length = float(trajectory_length)
        self._jitter = float(jitter)
        self._target = float(target_accept)
        self._tuning = 0  # iterations that tune the step size (MCMC's num_warmup; set by init)

    @property
    def sample_field(self) -> str:
        return "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    def init(self, rng_key: Any, num_warmup: int, init_params: Any, model_args: tuple = (),
             model_kwargs: dict | None = None) -> SplitHMCState:
        """``init_params``: one chain's :class:`SplitHMCState` (:func:`start_state`, which
        ``MCMC`` hands over a chain at a time); ``num_warmup`` iterations then tune the step
        size."""
        if not isinstance(init_params, SplitHMCState):
            raise TypeError(
                "SplitHMC continues a warmed-up chain: run MCMC with "
                "init_params=bayesarena.split_hmc.start_state(...), not from scratch")
        self._tuning = int(num_warmup)
        return init_params._replace(rng_key=rng_key)

    def postprocess_fn(self, model_args: tuple, model_kwargs: dict) -> Any:
        return self._base.postprocess_fn(model_args, model_kwargs)

    def get_diagnostics_str(self, state: SplitHMCState) -> str:
        return (f"{state.num_steps} steps of size {state.adapt_state.step_size:.2e}. "
                f"acc. prob={state.mean_accept_prob:.2f}")

    def sample(self, state: SplitHMCState, model_args: tuple, model_kwargs: dict) -> Any:
        potential_fn = self._base.get_potential_fn(model_args, model_kwargs)

        def one(s: SplitHMCState) -> SplitHMCState:
            return split_transition(s, potential_fn, self._length, self._jitter,
                                    self._target, self._tuning)

        # chain_method="vectorized" hands over the chains' states stacked
        return one(state) if is_prng_key(state.rng_key) else jax.vmap(one)(state)


def split_transition(state: SplitHMCState, potential_fn: Any, trajectory_length: float,
                     jitter: float, target_accept: float, tuning: int) -> SplitHMCState:
    """One iteration: fresh momenta ``p ~ N(0, M)``, ``L = ceil(T / eps)`` split steps of size
    ``T / L`` with ``T = T0 u`` (at most :data:`MAX_STEPS`), Metropolis accept on the full
    energy. In the first ``tuning`` iterations the step size takes a dual-averaging update
    towards ``target_accept`` (NumPyro's scheme, restarted by :func:`start_state`), and at the
    last of them settles at its average."""
    key, key_momentum, key_length, key_accept = random.split(state.rng_key, 4)
    q0, unravel = ravel_pytree(state.z)
    grad0 = ravel_pytree(state.z_grad)[0]
    inverse_mass, centre = state.inverse_mass, state.centre

    def value_and_grad(q: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.value_and_grad(lambda x: potential_fn(unravel(x)))(q)

    step_size = state.adapt_state.step_size
    u = random.uniform(key_length, minval=1.0 - jitter, maxval=1.0 + jitter)
    n_steps = jnp.clip(jnp.ceil(trajectory_length * u / step_size), 1, MAX_STEPS)
    n_steps = n_steps.astype(jnp.result_type(int))
    eps = trajectory_length * u / n_steps
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
    adapt = state.adapt_state
    if tuning > 0:
        _, update = dual_averaging()
        tuned = update(target_accept - accept_prob, adapt.ss_state)
        tuned_step = jnp.exp(jnp.where(state.i == tuning - 1, tuned[1], tuned[0]))
        is_tuning = state.i < tuning
        adapt = adapt._replace(
            ss_state=jax.tree.map(lambda new, old: jnp.where(is_tuning, new, old), tuned,
                                  adapt.ss_state),
            step_size=jnp.where(is_tuning, tuned_step, step_size))
    i = state.i + 1
    n = jnp.where(i > tuning, i - tuning, i)  # mean acceptance of the tuning, then of the draws
    return state._replace(
        i=i, z=unravel(jnp.where(accepted, end.q, q0)),
        z_grad=unravel(jnp.where(accepted, end.grad, grad0)),
        potential_energy=jnp.where(accepted, end.potential, state.potential_energy),
        energy=jnp.where(accepted, energy1, energy0), num_steps=n_steps,
        accept_prob=accept_prob,
        mean_accept_prob=state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / n,
        diverging=delta > MAX_DELTA_ENERGY, adapt_state=adapt, rng_key=key)


def flat_inverse_mass(inverse_mass_matrix: Any, z: dict) -> np.ndarray:
    """One chain's diagonal inverse mass matrix (NumPyro's: an array, or a dict from blocks of
    site names to arrays) as one flat array in the order of ``ravel_pytree(z)`` (``z``: the
    chain's position). Dense blocks raise ``ValueError``."""
    blocks = (inverse_mass_matrix if isinstance(inverse_mass_matrix, dict)
              else {tuple(sorted(z)): inverse_mass_matrix})
    per_site: dict[str, np.ndarray] = {}
    for names, values in blocks.items():
        values = np.asarray(values)
        if values.ndim != 1:
            raise ValueError("split HMC needs a diagonal mass matrix; the block of "
                             f"{list(names)} is dense, shape {values.shape}")
        offsets = np.cumsum([0] + [int(np.size(z[k])) for k in names])
        for k, a, b in zip(names, offsets[:-1], offsets[1:], strict=True):
            per_site[k] = values[a:b]
    return np.concatenate([per_site[k] for k in sorted(per_site)])


def warmup_centre(z_draws: dict[str, np.ndarray], last: int = CENTRE_DRAWS) -> np.ndarray:
    """``mu``: the mean of the last ``last`` warmup positions over all chains, flat in the order
    of ``ravel_pytree`` (``z_draws``: site -> ``(chain, iteration, ...)`` unconstrained
    values)."""
    means = {k: np.asarray(v)[:, -last:].mean(axis=(0, 1)) for k, v in z_draws.items()}
    return np.concatenate([np.ravel(means[k]) for k in sorted(means)])


def start_state(hmc_state: Any, centre: np.ndarray) -> SplitHMCState:
    """The split kernel's starting state from a post-warmup HMC state with a leading chain axis
    (``MCMC.post_warmup_state``, adaptation pooled over the chains) and the flat centre ``mu``:
    positions and keys carried on, ``M^-1`` flattened, the dual averaging restarted from the
    warmup's step size (prox centre ``log(10 eps)``, as NumPyro restarts it per window)."""
    adapt = hmc_state.adapt_state
    n_chains = np.shape(adapt.step_size)[0]
    def first(tree: Any) -> Any:
        return jax.tree.map(lambda x: np.asarray(x)[0], tree)

    inverse_mass = flat_inverse_mass(first(adapt.inverse_mass_matrix), first(hmc_state.z))
    init, _ = dual_averaging()
    step = np.asarray(adapt.step_size)
    ss_state = jax.tree.map(
        lambda x: np.broadcast_to(np.asarray(x), (n_chains, *np.shape(x))).copy(),
        init(0.0))
    ss_state = (*ss_state[:-1], np.log(10.0 * step))

    def per_chain(x: Any) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x), (n_chains, *np.shape(x))))

    return SplitHMCState(
        i=np.zeros(n_chains, dtype=np.asarray(hmc_state.i).dtype), z=hmc_state.z,
        z_grad=hmc_state.z_grad, potential_energy=hmc_state.potential_energy,
        energy=hmc_state.energy, num_steps=hmc_state.num_steps,
        accept_prob=hmc_state.accept_prob,
        mean_accept_prob=np.zeros(n_chains), diverging=hmc_state.diverging,
        adapt_state=adapt._replace(ss_state=ss_state), rng_key=hmc_state.rng_key,
        centre=per_chain(centre), inverse_mass=per_chain(inverse_mass))
