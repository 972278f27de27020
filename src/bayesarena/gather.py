"""Index gathers that XLA may not fuse into their consumers: :func:`take`.

Every likelihood here reads per-model (or per-voter, per-cell) parameters through an index
array, ``theta[model_i]``, and its gradient scatters the cells' cotangents back,
``zeros(M).at[model_i].add(g)``. On CPU, XLA fuses a gather into each elementwise consumer
and a scatter-add with the elementwise code that produces its updates. Both fusions are
costly here: the gather is recomputed at every use of ``theta_i - theta_j`` inside the fused
loop, and the transcendental functions of the cotangent run inside the scatter's serial loop
instead of a vectorised one. On 11,264 cells of 150 models (``models/bt-davidson.toml``), one
value-and-gradient of the likelihood took 372 us with fused gathers, 331 us with :func:`take`
alone, 317 us with the column sums of
:func:`~bayesarena.likelihood.cell_log_likelihood` alone and 181 us with both (the two
fusions feed each other), with the same values to the last bit; the whole model's potential
went from 545 to 282 us with the log-sigmoid change too.

The gathered array is put behind a barrier too, so it is computed once before the loop that
reads it. Without that XLA fused the code producing a small array into the gather: in the
full arena model (``models/arena.toml``, 150 models x 1M votes), the voters'
discrimination vector was built (a concatenation with the light voters' 1 and a cast to float32)
inside the loop over the 720,896 direction rows, once per row: 2.0 ms of a 13.9 ms gradient
on one core in JAX's profiler. With the barrier one gradient took 12.23 ms against 12.91, and
four chains' gradients in parallel on two cores 5.63 ms each against 6.25 (medians of three
fresh processes per variant, which vary by up to 20%; ``benchmarks/arena_gradient.py``,
``mixed_fused_gather_input`` is the gather without it).

:func:`take` is a ``custom_jvp`` whose primal and tangent gathers sit behind
``lax.optimization_barrier``. The barrier is linear, so JAX transposes the tangent rule into
the gradient as ``scatter_add(barrier(cotangent))``: the cotangent is materialised by its own
vectorised loop before the scatter reads it. Forward mode stays available (the Laplace step
takes ``jax.hessian`` and Hessian-vector products of the same model), and so does ``vmap``.

The gathers promise in-bounds, non-negative indices (``mode="promise_in_bounds"``,
``wrap_negative_indices=False``): every index array here is built in bounds, padding
included, and NumPy's ``x[index]`` otherwise adds a select over the whole index array to each
gather (negative indices wrap), computed again at every call: on the full arena up to 720,896
indices per select, several per gradient. Without them the four chains' parallel gradients
took 8.3-9.0 ms against 9.7-9.8 ms (medians of 15 calls in alternating fresh processes), with the
same values to the last bit.
"""

from __future__ import annotations

import jax


@jax.custom_jvp
def take(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x[..., index]``, computed as its own XLA loop (see the module docstring)."""
    return jax.lax.optimization_barrier(_gather(jax.lax.optimization_barrier(x), index))


def _gather(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x[..., index]`` for in-bounds, non-negative ``index`` (the caller's promise; an index
    out of bounds reads an undefined value): no wrapping of negative indices or clamping, each
    a select over the whole index array (module docstring)."""
    return x.at[..., index].get(mode="promise_in_bounds", wrap_negative_indices=False)


@take.defjvp
def _take_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple) -> tuple:
    x, index = primals
    x_dot = tangents[0]
    return take(x, index), jax.lax.optimization_barrier(
        _gather(jax.lax.optimization_barrier(x_dot), index))
