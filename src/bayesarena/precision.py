"""Mixed precision for the likelihood: per-vote terms in float32, their sums in float64.

``[sampler] precision = "mixed"`` evaluates the elementwise work of a likelihood (the gathers
of strengths into cells and rows, the ``log1p``/``exp`` of each outcome probability and their
gradients) in float32 and accumulates every sum over cells or rows in float64; the parameters,
the priors and the sampler's state stay float64. ``"double"`` does everything in float64.

Why it is safe. Each operation on a term rounds to float32's unit roundoff ``u = 2^-24 =
6e-8`` of its result, so a term that passes through ``k`` operations (gathers, differences,
``exp``, ``log1p``, products; ``k <= 16`` here) is off by at most about ``k u |term|``, and the
float64 sum adds those errors: the log density moves by at most ``k u sum |term|`` (0.6 nats
on 1M votes at 0.6 nats a vote; 0.004 measured in ``benchmarks/arena_gradient.py``, the
errors being of both signs), and its differences between nearby points, which the sampler's
accept step reads, by far less. Summing the terms in float32 would not do: the total
is of order 1e6 and float32 keeps only about 0.1 of it (see :mod:`bayesarena.jaxconfig`). Nor
does NUTS need the gradient to be exact: leapfrog steps with any deterministic function of the
position as the force are volume preserving and reversible, so the chain targets exactly the
density it evaluates (Neal 2011; an inexact gradient only lowers the acceptance).
A linear map whose transpose sums over rows (the style features times their coefficients) is
kept in float64: its gradient is a sum over every row and lost 2e-4 of itself in float32.
The counts go to float32 once, before sampling (:func:`sampling_data`), not inside every
gradient: XLA cannot hoist a cast of an argument out of the compiled program, so float64
counts were read and converted at each leapfrog step.

Why it pays. On CPU, XLA vectorises float32 transcendentals over twice the lanes of float64,
and the gathers and scatters move half the bytes. With four chains in parallel on two cores,
each gradient of the full arena model (150 models x 10 categories x 1M votes) cost 9.9 ms of
wall time in float64 and 5.6 ms mixed (medians of three fresh processes each,
``benchmarks/results/arena_gradient.json``); the 4-chain fit went from 1,437 s to 910 s.

The Laplace steps that start the chains always run in float64: Newton's method stops on a
gradient norm that float32 terms would leave as noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bayesarena.spec import PRECISIONS


def term_dtype(precision: str) -> jnp.dtype:
    """The dtype of per-vote likelihood terms under ``precision`` (``"double"`` or
    ``"mixed"``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return jnp.dtype(jnp.float32 if precision == "mixed" else jnp.float64)


def lower[T](tree: T, dtype: jnp.dtype) -> T:
    """Cast every floating array (or number) of ``tree`` to ``dtype``; ``None`` and integer
    leaves (index arrays) pass through."""
    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)


def total(terms: jax.Array) -> jax.Array:
    """``sum(terms)`` accumulated in float64, whatever the terms' dtype."""
    return jnp.sum(terms, dtype=jnp.float64)


#: Whole numbers up to this are exact in float32 (its 24-bit significand).
FLOAT32_EXACT_INTEGERS = 2**24


def sampling_data[T](data: T, precision: str) -> T:
    """The model's data for a likelihood in ``precision``, cast once before sampling: under
    ``"mixed"`` every floating array of whole numbers (counts, positions, tag indicators) to
    float32, exact below 2^24 (an array with a larger entry keeps float64). Other floating
    data (the style features) stay float64: their product with the coefficients has a
    transpose that sums over every row, the coefficients' gradient, which a float32 dot
    product computed with a relative error of 2e-4 on the full arena. ``"double"``: unchanged.
    """
    low = term_dtype(precision)

    def cast(x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype == low:
            return x
        if not bool(jnp.all(x == jnp.round(x))):
            return x
        if x.size and float(jnp.max(jnp.abs(x))) > FLOAT32_EXACT_INTEGERS:
            return x
        return x.astype(low)

    return jax.tree.map(cast, data)
