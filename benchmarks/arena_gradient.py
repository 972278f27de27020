"""Cost of one log-density gradient of the arena model at LMArena scale (what NUTS pays per
leapfrog step), and the sizes of its likelihood layout.

The gradient is timed in both likelihood precisions (``double``; ``mixed``: float32 terms,
float64 sums, :mod:`bayesarena.precision`) in the same process, alternating, and the largest
differences between the two (value, gradient component) are recorded.

    .venv/bin/python benchmarks/arena_gradient.py [--votes 1000000 --models 150]

Writes ``benchmarks/results/arena_gradient.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

import bayesarena as ba
from bayesarena.fit import _arena_model, arena_for_spec
from bayesarena.spec import PRECISIONS

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--spec", default="arena")
    args = parser.parse_args(argv)
    frame, _ = simulate(args, seed=0)
    t0 = time.perf_counter()
    spec = ba.load_spec(args.spec)
    arena, _ = arena_for_spec(ba.read_votes(frame), spec)
    aggregate_s = time.perf_counter() - t0
    model, kwargs = _arena_model(arena, spec)
    z = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs,
                         dynamic_args=True).param_info.z
    grads, times = {}, {p: [] for p in PRECISIONS}
    for precision in PRECISIONS:
        m = functools.partial(model, precision=precision)
        potential = initialize_model(jax.random.PRNGKey(0), m, model_kwargs=kwargs,
                                     dynamic_args=True).potential_fn(**kwargs)
        grads[precision] = jax.jit(jax.value_and_grad(potential))
        jax.block_until_ready(grads[precision](z))
    for _ in range(20):  # alternate, so that both see the same machine state
        for precision in PRECISIONS:
            t0 = time.perf_counter()
            jax.block_until_ready(grads[precision](z))
            times[precision].append(time.perf_counter() - t0)
    (v64, g64), (v32, g32) = (grads[p](z) for p in PRECISIONS)
    g64, g32 = ravel_pytree(g64)[0], ravel_pytree(g32)[0]
    n_params = sum(int(np.size(v)) for v in jax.tree.leaves(z))
    result = {
        "config": vars(args), "aggregate_from_frame_s": round(aggregate_s, 2),
        "cells": arena.cells.n_cells, "direction_rows": arena.n_rows,
        "heavy_voters": len(arena.voters), "tag_sets": len(arena.cells.categories),
        "parameters": n_params,
        "gradient_ms_median": {p: round(1e3 * float(np.median(times[p])), 2)
                               for p in PRECISIONS},
        "mixed_over_double": round(float(np.median(times["mixed"]) / np.median(times["double"])),
                                   3),
        "mixed_minus_double_value": float(v32 - v64),
        "mixed_max_gradient_error_relative": float(jnp.max(jnp.abs(g32 - g64))
                                                   / jnp.max(jnp.abs(g64))),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "arena_gradient.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
