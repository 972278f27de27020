"""How fast is one recommendation, and one streaming update, beside live traffic?

Arena: 200 models (19,900 candidate pairs), 100,000 uniformly paired simulated votes, belief
from the streaming Laplace solve (:func:`bayesarena.online.from_counts`). Timed warm (after one
call that compiles), median and 90th percentile over ``--repeats`` calls:

* ``recommend_pairs(state, k=1, objective=...)`` for every objective (the live path);
* ``recommend_pairs(state, k=10)``: a non-redundant list of ten;
* ``online.add_votes`` with 500 new votes (the update between recommendations);
* the baselines measured in the same run: a full ``fit(method="laplace")`` refit on the same
  votes, and the draw-based EIG over all pairs from that fit's posterior
  (``recommend_pairs(posterior, k=1)``), reported as ratios.

    .venv/bin/python benchmarks/recommend_latency.py

Writes ``benchmarks/results/recommend_latency.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import bayesarena as ba
from bayesarena import online
from bayesarena.recommend import recommend_pairs

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, repeats: int) -> dict[str, float]:
    fn()  # compile / warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * float(np.median(times)),
            "p90_ms": 1e3 * float(np.percentile(times, 90)), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--votes", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    frame, _ = ba.simulate_arena(args.models, args.votes, seed=0)
    cells = ba.aggregate(ba.read_votes(frame))
    state = online.from_counts(cells.models, cells.model_i, cells.model_j, cells.counts)
    rows: dict[str, dict] = {}
    for objective in ("eig", "rank", "topk", "thompson", "arena", "uniform"):
        rows[f"recommend k=1 {objective}"] = timed(
            lambda o=objective: recommend_pairs(state, 1, objective=o), args.repeats)
    rows["recommend k=10 eig"] = timed(lambda: recommend_pairs(state, 10), args.repeats)
    rows["recommend k=10 topk50+eig50"] = timed(
        lambda: recommend_pairs(state, 10, objective={"topk": 0.5, "eig": 0.5}), args.repeats)
    rng = np.random.default_rng(1)
    a = rng.integers(0, args.models, 500)
    b = (a + rng.integers(1, args.models, 500)) % args.models
    y = rng.integers(0, 4, 500)
    rows["online update, 500 votes"] = timed(lambda: online.add_votes(state, a, b, y),
                                             args.repeats)
    base = max(3, args.repeats // 10)
    rows["baseline: fit(method='laplace')"] = timed(
        lambda: ba.fit(cells, "bt-davidson", method="laplace"), base)
    post = ba.fit(cells, "bt-davidson", method="laplace")
    rows["baseline: recommend k=1 eig from posterior draws"] = timed(
        lambda: recommend_pairs(post, 1), base)
    live = rows["recommend k=1 eig"]["median_ms"]
    update = rows["online update, 500 votes"]["median_ms"]
    ratios = {
        "online update / full Laplace refit":
            update / rows["baseline: fit(method='laplace')"]["median_ms"],
        "live eig (quadrature) / draw-based eig":
            live / rows["baseline: recommend k=1 eig from posterior draws"]["median_ms"],
    }
    result = {"config": vars(args) | {"pairs": args.models * (args.models - 1) // 2,
                                      "cpus": os.cpu_count(),
                                      "python": platform.python_version()},
              "timings": rows, "ratios": ratios}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recommend_latency.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Recommendation latency: {args.models} models "
             f"({result['config']['pairs']:,} pairs), {os.cpu_count()} CPUs", "",
             "| call | median (ms) | p90 (ms) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['median_ms']:.1f} | {v['p90_ms']:.1f} |" for k, v in rows.items()]
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in ratios.items()]
    (RESULTS / "recommend_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
