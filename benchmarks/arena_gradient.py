"""Cost of one log-density gradient of the arena model at LMArena scale (what NUTS pays per
leapfrog step), and the sizes of its likelihood layout.

    .venv/bin/python benchmarks/arena_gradient.py [--votes 1000000 --models 150]

Writes ``benchmarks/results/arena_gradient.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py
from numpyro.infer.util import initialize_model

import bayesarena as ba
from bayesarena.fit import _arena_model, arena_for_spec

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
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs,
                            dynamic_args=True)
    potential = info.potential_fn(**kwargs)
    grad = jax.jit(jax.value_and_grad(potential))
    z = info.param_info.z
    jax.block_until_ready(grad(z))
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        jax.block_until_ready(grad(z))
        times.append(time.perf_counter() - t0)
    n_params = sum(int(np.size(v)) for v in jax.tree.leaves(z))
    result = {
        "config": vars(args), "aggregate_from_frame_s": round(aggregate_s, 2),
        "cells": arena.cells.n_cells, "direction_rows": arena.n_rows,
        "heavy_voters": len(arena.voters), "tag_sets": len(arena.cells.categories),
        "parameters": n_params, "gradient_ms_median": round(1e3 * float(np.median(times)), 2),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "arena_gradient.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
