"""Benchmark: fit 150 models / 1,000,000 simulated votes with NUTS and with Laplace.

Each configuration runs in a fresh Python process (JAX's host device count and the compilation
cache are per process), twice: "cold" with an empty persistent compilation cache, then "warm"
with the cache the cold run filled; inside each process the fit is repeated once ("refit"), which
is what a long-lived process sees. Compile time is estimated as cold - warm first-fit time.
Records wall time, ESS per second, the worst R-hat and divergences per configuration in
``benchmarks/results/fit_scaling.json`` and a Markdown table beside it.

    python benchmarks/fit_scaling.py            # full: 150 models, 1M votes
    python benchmarks/fit_scaling.py --quick    # 30 models, 20k votes (a smoke run)
    python benchmarks/fit_scaling.py --chain-methods parallel --precisions double,mixed \
        --out precision                          # float64 against float32 terms, same run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def worker(cfg: dict) -> dict:
    """Run one fit in this process and return its measurements."""
    if cfg.get("chain_method") == "parallel":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    import numpy as np

    from bayesarena import aggregate, fit, load_spec, read_votes

    t0 = time.perf_counter()
    cells = aggregate(read_votes(cfg["votes"]))
    t_read = time.perf_counter() - t0
    walls = []
    for _ in range(2):  # the second fit in the same process: what a long-lived service sees
        t0 = time.perf_counter()
        spec = load_spec(cfg["spec"]).with_sampler(precision=cfg.get("precision"))
        post = fit(cells, spec, method=cfg["method"], seed=cfg["seed"],
                   chain_method=cfg.get("chain_method"), warmup=cfg.get("warmup"),
                   draws=cfg.get("draws"), progress=False, warn=False)
        walls.append(time.perf_counter() - t0)
    wall = walls[0]
    precision = spec.sampler.precision if cfg["method"] == "nuts" else "double"  # Laplace: f64
    out = {**cfg, "precision": precision, "n_cells": cells.n_cells,
           "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
           "n_votes": cells.n_votes, "read_aggregate_s": t_read,
           "fit_s": wall, "refit_in_process_s": walls[1],
           "laplace_s": float(post.tree.attrs["laplace_s"])}
    if cfg["method"] == "nuts":
        d = post.diagnostics
        out.update({
            "nuts_s": float(post.tree.attrs["nuts_s"]), "max_rhat": d.max_rhat,
            "min_ess_bulk": d.min_ess_bulk, "min_ess_tail": d.min_ess_tail,
            "divergences": d.divergences, "ess_bulk_per_s": d.min_ess_bulk / wall,
            "mean_steps": float(np.mean(post.tree["sample_stats"]["n_steps"].values)),
        })
    return out


def run_config(cfg: dict, cache: Path) -> dict:
    env = {**os.environ, "BAYESARENA_JAX_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed for {cfg}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker")
    parser.add_argument("--chain-methods", default="sequential,vectorized,parallel")
    parser.add_argument("--precisions", default="",
                        help="comma-separated likelihood precisions for NUTS (bayesarena."
                             "precision); default: the spec's own")
    parser.add_argument("--out", default="", help="suffix of the results files")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker)), default=float))
        return

    from bayesarena import simulate_arena

    n_models, n_votes = (30, 20_000) if args.quick else (150, 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bayesarena-bench-"))
    df, _ = simulate_arena(n_models, n_votes, seed=1)
    votes_path = tmp / "votes.parquet"
    df.to_parquet(votes_path, index=False)
    base = {"votes": str(votes_path), "spec": "bt-davidson", "seed": 0}
    configs = [{**base, "method": "laplace"}]
    precisions = args.precisions.split(",") if args.precisions else [None]
    configs += [{**base, "method": "nuts", "chain_method": m, "precision": p}
                for m in args.chain_methods.split(",") for p in precisions]
    rows = []
    for cfg in configs:
        cache = tmp / "cache-{}-{}-{}".format(cfg["method"], cfg.get("chain_method", ""),
                                              cfg.get("precision"))
        for phase in ("cold", "warm"):
            res = run_config(cfg, cache)
            res["phase"] = phase
            rows.append(res)
            print(json.dumps({k: res[k] for k in res if k != "votes"}, default=float),
                  flush=True)
    for cold, warm in zip(rows[::2], rows[1::2], strict=True):
        warm["compile_s_estimate"] = cold["fit_s"] - warm["fit_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = ("fit_scaling_quick" if args.quick else "fit_scaling") + (
        f"_{args.out}" if args.out else "")
    payload = {
        "benchmark": "fit_scaling", "n_models": n_models, "n_votes": n_votes,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"), "results": rows,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    nan = float("nan")
    lines = ["| method | chains | precision | cache | 1st fit s | refit s | NUTS s | Laplace s | "
             "min bulk ESS | ESS/s | max R-hat | divergences |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r.get('chain_method', '-')} | {r.get('precision', '-')} | "
            f"{r['phase']} | {r['fit_s']:.1f} | "
            f"{r['refit_in_process_s']:.1f} | {r.get('nuts_s', nan):.1f} | "
            f"{r['laplace_s']:.2f} | {r.get('min_ess_bulk', nan):.0f} | "
            f"{r.get('ess_bulk_per_s', nan):.0f} | {r.get('max_rhat', nan):.4f} | "
            f"{r.get('divergences', '-')} |")
    (RESULTS / f"{name}.md").write_text(
        f"{n_models} models, {n_votes:,} votes ({rows[0]['n_cells']:,} cells), "
        f"{os.cpu_count()} CPUs\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
