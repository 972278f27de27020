"""Hamiltonian Monte Carlo with a jittered integration time: :class:`JitteredHMC`.

Each iteration draws fresh momenta ``p ~ N(0, M)``, integrates Hamilton's equations with
``L = ceil(T / eps)`` leapfrog steps of size ``T / L`` for an integration time

    T = T0 u,    u ~ Uniform(1 - j, 1 + j)    (drawn afresh every iteration),

and accepts the end point with probability ``min(1, exp(-dH))`` (Duane et al. 1987; Neal
2011, "MCMC using Hamiltonian dynamics", sec. 5.4.5 on randomising the trajectory length;
Mackenzie 1989 on randomising the step). The step size and the mass matrix are adapted
during warmup exactly as for NUTS (NumPyro's dual averaging and windowed variances).

Why, and for what. On a Gaussian that the mass matrix makes round, Hamilton's flow is a
rotation of every coordinate with its momentum, ``x(T) = x cos T + p sin T``: after a
quarter period (``T = pi/2``) the new ``x`` is the fresh momentum, independent of the old
``x`` and of ``x^2`` alike. NUTS does not stop there: it doubles its trajectory until it
turns back (about half a period, ``pi / eps`` steps, rounded up to a power of two) and picks
a point along it, so each draw costs two to four times the quarter period. With thousands of
parameters that difference is the cost of a fit: at the full LMArena scale (7,361 parameters,
``models/arena.toml``) NUTS's step size is about 0.16, half a period 20 steps and trees are
cut at 15 (``max_tree_depth = "auto"``), while ``T0 = 1.6`` takes 11.

Warmup's draws only feed the step size's dual averaging and the mass matrix's variance
windows, so ``warmup_scale < 1`` runs them at a shorter time, up to the terminal buffer: the
buffer tunes the step size last, and at a shorter time the same step size is accepted more
often, so it runs at the time the draws use (:func:`short_warmup_iterations`). At full size
``warmup_scale = 0.5`` (``models/arena.toml``) halved warmup, 150 s to 78 s.

The jitter keeps the chain ergodic and robust where the posterior is not quite round: a
direction whose scale in the mass matrix's units is ``s`` turns at ``T / s``, and with a
fixed ``T`` one direction may be sent back to where it started (``T / s = pi``) every time;
drawing ``T`` spreads those angles. ``j = 0.5`` is the spread used here.

On a 7,361-dimensional standard normal at step size 0.156 (``benchmarks/tree_depth.py``,
``benchmarks/results/tree_depth.json``; smallest of the bulk ESS of ``x`` and ``x^2`` and the
tail ESS of ``x`` over 1,000 coordinates, per 1,000 gradients): 27.8 with ``T0 = 1.6`` (10.6
steps per draw) against 20.3 for NUTS with trees cut at 15 and 7.0 uncapped (31 steps).

The fixed integration time is not adaptive: on a small or strongly non-Gaussian posterior
NUTS's U-turn rule is what finds the trajectory a draw needs. On the 8-model arena of
``benchmarks/sbc.py`` (funnels, a few hundred parameters; ``--kernel jittered_hmc``,
``benchmarks/results/sbc_arena_jittered.md``) jittered HMC left 74 of 200 simulations with a
split R-hat above 1.05 against NUTS's 22, the median smallest ESS 57 against 107, and one of
38 quantities flagged. So ``kernel = "auto"`` keeps NUTS below
:data:`bayesarena.fit.LARGE_POSTERIOR_FROM` parameters.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import random
from numpyro.infer import HMC
from numpyro.infer.hmc_util import build_adaptation_schedule
from numpyro.util import is_prng_key

#: Most leapfrog steps one iteration may take (NUTS's default cap, ``2^10 - 1``): early in
#: warmup dual averaging may try a tiny step size, and ``T / eps`` steps would be unbounded.
MAX_STEPS = 1023


class JitteredHMC(HMC):
    """NumPyro's :class:`~numpyro.infer.HMC` with integration time ``T0 u``,
    ``u ~ Uniform(1 - jitter, 1 + jitter)`` drawn each iteration (module docstring).

    ``trajectory_length`` is ``T0`` (the specs' default, ``[sampler] trajectory_length``, is
    1.6, about a quarter period ``pi / 2``), ``jitter`` is ``j``; the other arguments are
    :class:`~numpyro.infer.HMC`'s. The jitter's random numbers come from the chain's own
    key, so a seed reproduces the chain. The number of leapfrog steps is capped at
    :data:`MAX_STEPS` (the time is shortened to ``MAX_STEPS eps`` when the step size is
    tiny).
    """

    def __init__(self, model: Any = None, *, trajectory_length: float, jitter: float,
                 warmup_scale: float = 1.0, **kwargs: Any) -> None:
        if not trajectory_length > 0:
            raise ValueError(f"trajectory_length must be positive, got {trajectory_length}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        if not 0 < warmup_scale <= 1:
            raise ValueError(f"warmup_scale must be in (0, 1], got {warmup_scale}")
        super().__init__(model, trajectory_length=trajectory_length, **kwargs)
        self._base_length = float(trajectory_length)
        self._warmup_scale = float(warmup_scale)
        self._jitter = float(jitter)
        self._short_until = 0  # iterations run at the shortened time (set by init)

    def init(self, rng_key: Any, num_warmup: int, *args: Any, **kwargs: Any) -> Any:
        self._short_until = short_warmup_iterations(num_warmup)
        return super().init(rng_key, num_warmup, *args, **kwargs)

    def sample(self, state: Any, model_args: tuple, model_kwargs: dict) -> Any:
        def draw(one: Any) -> Any:
            return jittered_state(one, self._base_length, self._jitter,
                                  warmup_scale=self._warmup_scale,
                                  short_until=self._short_until)

        # chain_method="vectorized" hands over the chains' states stacked, and HMC then vmaps
        # its own sampler (decided by the same test, numpyro.util.is_prng_key): draw each
        # chain's time from its own key
        state = draw(state) if is_prng_key(state.rng_key) else jax.vmap(draw)(state)
        return super().sample(state, model_args, model_kwargs)


def short_warmup_iterations(num_warmup: int) -> int:
    """Warmup iterations before the terminal buffer of NumPyro's (Stan's) adaptation schedule:
    those :class:`JitteredHMC` may run at ``warmup_scale`` times the integration time. The
    buffer (the last 50 iterations, or a tenth of a short warmup) tunes the step size once
    more after the last mass-matrix update, so it runs at the full time the draws use."""
    if num_warmup <= 0:
        return 0
    return build_adaptation_schedule(num_warmup)[-1].start


def jittered_state(state: Any, trajectory_length: float, jitter: float, *,
                   warmup_scale: float = 1.0, short_until: int = 0) -> Any:
    """An HMC state (NumPyro's ``HMCState``) carrying this iteration's integration time
    ``min(a T0 u, MAX_STEPS eps)``: ``T0 = trajectory_length``, ``u ~ Uniform(1 - jitter,
    1 + jitter)`` drawn with a key split from the state's own (which the state then carries
    on), ``a = warmup_scale`` for iterations ``i < short_until`` and 1 after
    (:func:`short_warmup_iterations`)."""
    key, key_length = random.split(state.rng_key)
    scale = jnp.where(state.i < short_until, warmup_scale, 1.0)
    length = integration_time(key_length, scale * trajectory_length, jitter,
                              state.adapt_state.step_size)
    return state._replace(rng_key=key, trajectory_length=length)


def integration_time(key: jax.Array, trajectory_length: jax.Array | float, jitter: float,
                     step_size: jax.Array) -> jax.Array:
    """``min(T0 u, MAX_STEPS eps)`` with ``u ~ Uniform(1 - jitter, 1 + jitter)`` drawn from
    ``key``: one iteration's integration time, capped at :data:`MAX_STEPS` steps of size
    ``eps``."""
    u = random.uniform(key, minval=1.0 - jitter, maxval=1.0 + jitter)
    return jnp.minimum(trajectory_length * u, MAX_STEPS * step_size)
