"""Cost of one log-density gradient of the arena model at LMArena scale (what NUTS pays per
leapfrog step), and the sizes of its likelihood layout.

The gradient is timed in both likelihood precisions (``double``; ``mixed``: float32 terms,
float64 sums, :mod:`bayesarena.precision`), and in ``mixed`` once more with
:func:`bayesarena.gather.take`'s input left fusable (``mixed_fused_gather_input``, the
baseline of that barrier). Each variant is timed in a fresh process, three rounds, alternating
(timed together in one process, the variants' programs disturbed each other: one gradient
of the same program measured anywhere from 12 to 28 ms). The data go in as arguments of the
compiled function, as the sampler passes them (``jit_model_args``; closed over as constants,
XLA folds the count sums and casts into the program and one gradient is about 14% cheaper
than any fit sees). Two figures per variant, medians over its processes:

- ``gradient_ms_median``: one gradient alone, on both cores;
- ``parallel_chains_ms_per_gradient``: four chains on the four virtual devices (as
  ``chain_method="parallel"`` runs them), ten gradient steps each in a loop: wall time per
  gradient, i.e. what a leapfrog step costs a 4-chain fit on this machine.

The largest differences between the precisions (value, gradient component) are recorded too.

    .venv/bin/python benchmarks/arena_gradient.py [--votes 1000000 --models 150]

Writes ``benchmarks/results/arena_gradient.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

import bayesarena as ba
from bayesarena import arena_model
from bayesarena.fit import _arena_model, arena_for_spec
from bayesarena.precision import sampling_data
from bayesarena.spec import PRECISIONS

RESULTS = Path(__file__).resolve().parent / "results"


#: (name, precision, gather): both precisions with the package's gather, and mixed with the
#: gather's input left fusable (bayesarena.gather before its input barrier), that change's
#: baseline
VARIANTS = ("double", "mixed", "mixed_fused_gather_input")
ROUNDS = 3
N_CHAINS, N_STEPS = 4, 10


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--spec", default="arena")
    parser.add_argument("--time-variant", choices=VARIANTS, default=None,
                        help=argparse.SUPPRESS)  # internal: one variant, in a child process
    parser.add_argument("--arena", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_variant is not None:
        with open(args.arena, "rb") as f:
            arena = pickle.load(f)
        print(json.dumps(time_variant(arena, ba.load_spec(args.spec), args.time_variant)))
        return {}
    frame, _ = simulate(args, seed=0)
    t0 = time.perf_counter()
    spec = ba.load_spec(args.spec)
    arena, _ = arena_for_spec(ba.read_votes(frame), spec)
    aggregate_s = time.perf_counter() - t0
    del frame
    times: dict[str, list] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arena.pkl"  # transient hand-over to the child processes
        with open(path, "wb") as f:
            pickle.dump(arena, f)
        for _ in range(ROUNDS):  # alternate, so that all see the same machine state
            for name in VARIANTS:
                out = subprocess.run(
                    [sys.executable, __file__, "--spec", args.spec, "--time-variant", name,
                     "--arena", str(path)], capture_output=True, text=True, check=True)
                times[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    model, kwargs = _arena_model(arena, spec)
    z = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs,
                         dynamic_args=True).param_info.z
    (v64, g64), (v32, g32) = (value_and_gradient(model, kwargs, p)(
        z, sampling_data(kwargs, p)) for p in PRECISIONS)
    g64, g32 = ravel_pytree(g64)[0], ravel_pytree(g32)[0]
    n_params = sum(int(np.size(v)) for v in jax.tree.leaves(z))

    def median(name: str, key: str) -> float | None:
        values = [t[key] for t in times[name] if t[key] is not None]
        return round(float(np.median(values)), 2) if values else None

    result = {
        "config": vars(args) | {"rounds": ROUNDS}, "aggregate_from_frame_s": round(aggregate_s, 2),
        "cells": arena.cells.n_cells, "direction_rows": arena.n_rows,
        "heavy_voters": len(arena.voters), "tag_sets": len(arena.cells.categories),
        "parameters": n_params,
        "gradient_ms_median": {name: median(name, "gradient_ms") for name in VARIANTS},
        "parallel_chains_ms_per_gradient": {name: median(name, "parallel_ms")
                                            for name in VARIANTS},
        "per_process": times,
        "mixed_over_double": round(median("mixed", "gradient_ms")
                                   / median("double", "gradient_ms"), 3),
        "mixed_minus_double_value": float(v32 - v64),
        "mixed_max_gradient_error_relative": float(jnp.max(jnp.abs(g32 - g64))
                                                   / jnp.max(jnp.abs(g64))),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "arena_gradient.json").write_text(json.dumps(result, indent=2))
    return result


def value_and_gradient(model, kwargs: dict, precision: str):
    """``(z, data) -> (potential, gradient)`` of the arena model, compiled with the data as
    arguments (as the sampler's ``jit_model_args`` passes them)."""
    potential_fn = initialize_model(jax.random.PRNGKey(0),
                                    functools.partial(model, precision=precision),
                                    model_kwargs=kwargs, dynamic_args=True).potential_fn
    return jax.jit(lambda z, data: jax.value_and_grad(potential_fn(**data))(z))


def time_variant(arena, spec, name: str) -> dict:
    """Median wall time of one gradient (20 calls) and, with four chains on the four virtual
    devices, of each gradient (20 calls of 10 steps per chain), for one variant, in this
    (fresh) process."""
    precision = "double" if name == "double" else "mixed"
    if name == "mixed_fused_gather_input":
        arena_model.take = take_fusing_its_input  # before tracing: compiled in
    model, kwargs = _arena_model(arena, spec)
    kwargs = sampling_data(kwargs, precision)  # as fit hands them to the sampler
    z = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs,
                         dynamic_args=True).param_info.z
    one = value_and_gradient(model, kwargs, precision)
    jax.block_until_ready(one(z, kwargs))
    single = []
    for _ in range(20):
        t0 = time.perf_counter()
        jax.block_until_ready(one(z, kwargs))
        single.append(time.perf_counter() - t0)
    parallel = []
    if jax.local_device_count() >= N_CHAINS:
        potential_fn = initialize_model(jax.random.PRNGKey(0),
                                        functools.partial(model, precision=precision),
                                        model_kwargs=kwargs, dynamic_args=True).potential_fn
        chains = jax.pmap(functools.partial(gradient_steps, potential_fn, N_STEPS),
                          in_axes=(0, None))
        z_chains = jax.tree.map(lambda a: jnp.stack([a] * N_CHAINS), z)
        jax.block_until_ready(chains(z_chains, kwargs))
        for _ in range(20):
            t0 = time.perf_counter()
            jax.block_until_ready(chains(z_chains, kwargs))
            parallel.append((time.perf_counter() - t0) / (N_CHAINS * N_STEPS))
    return {"gradient_ms": 1e3 * float(np.median(single)),
            "parallel_ms": 1e3 * float(np.median(parallel)) if parallel else None}


@jax.custom_jvp
def take_fusing_its_input(x: jax.Array, index: jax.Array) -> jax.Array:
    """:func:`bayesarena.gather.take` without the barrier on its input (the baseline)."""
    return jax.lax.optimization_barrier(x[..., index])


@take_fusing_its_input.defjvp
def _take_fusing_its_input_jvp(primals, tangents):
    x, index = primals
    return (take_fusing_its_input(x, index),
            jax.lax.optimization_barrier(tangents[0][..., index]))


def gradient_steps(potential_fn, n_steps: int, z, data):
    """``n_steps`` gradient evaluations in a loop, each moving ``z`` a negligible step along
    the gradient (so that no evaluation can be skipped): one chain's share of the parallel
    timing."""
    potential = potential_fn(**data)

    def step(_, position):
        _, grad = jax.value_and_grad(potential)(position)
        return jax.tree.map(lambda a, g: a - 1e-9 * g, position, grad)

    return jax.lax.fori_loop(0, n_steps, step, z)


if __name__ == "__main__":
    main()
