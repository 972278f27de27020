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

The jitter keeps the chain ergodic and robust where the posterior is not quite round: a
direction whose scale in the mass matrix's units is ``s`` turns at ``T / s``, and with a
fixed ``T`` one direction may be sent back to where it started (``T / s = pi``) every time;
drawing ``T`` spreads those angles. ``j = 0.5`` is the spread used here.

On a 7,361-dimensional standard normal at the step size the arena fit adapts to
(``benchmarks/tree_depth.py``, ``benchmarks/results/tree_depth.json``) the smallest bulk or
tail ESS per gradient is about 1.6 times NUTS's with trees cut at 15. The fixed integration
time is not adaptive: on a small or strongly non-Gaussian posterior (funnels of a few
hundred parameters) NUTS's U-turn rule is what finds the trajectory a draw needs, so
``kernel = "auto"`` keeps NUTS below :data:`bayesarena.fit.JITTERED_HMC_FROM` parameters.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import random
from numpyro.infer import HMC

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
                 **kwargs: Any) -> None:
        if not trajectory_length > 0:
            raise ValueError(f"trajectory_length must be positive, got {trajectory_length}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        super().__init__(model, trajectory_length=trajectory_length, **kwargs)
        self._base_length = float(trajectory_length)
        self._jitter = float(jitter)

    @property
    def jitter(self) -> float:
        """Half-width of the integration time's jitter, relative to ``trajectory_length``."""
        return self._jitter

    def sample(self, state: Any, model_args: tuple, model_kwargs: dict) -> Any:
        state = jittered_state(state, self._base_length, self._jitter)
        return super().sample(state, model_args, model_kwargs)


def jittered_state(state: Any, trajectory_length: float, jitter: float) -> Any:
    """An HMC state (NumPyro's ``HMCState``) carrying this iteration's integration time
    ``min(trajectory_length u, MAX_STEPS eps)``, ``u ~ Uniform(1 - jitter, 1 + jitter)``,
    drawn with a key split from the state's own (which the state then carries on)."""
    key, key_length = random.split(state.rng_key)
    u = random.uniform(key_length, minval=1.0 - jitter, maxval=1.0 + jitter)
    length = jnp.minimum(trajectory_length * u, MAX_STEPS * state.adapt_state.step_size)
    return state._replace(rng_key=key, trajectory_length=length)
