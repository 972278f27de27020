"""Reading and aggregating a 10M-row Parquet vote log: time and peak memory, DuckDB and Dask.

The issue's targets: ``aggregate(read_votes(path))`` on a 10,000,000-row Parquet vote log in
under 3 s on a 2-core machine, with memory that does not grow with the number of rows beyond
the reader's buffers; and the Dask path (:func:`bayesarena.distributed.aggregate_dask`) over
the same data split into many files, producing the same cells.

The log is simulated in LMArena's public layout (``model_a, model_b, winner, category, judge,
tstamp``) with numpy and written with pyarrow one 1M-row chunk (one row group) at a time, so
generation itself never holds more than a chunk. Outcomes follow Davidson's tie model
(P(tie) = nu sqrt(pi_a pi_b) / (pi_a + pi_b + nu sqrt(pi_a pi_b)), Davidson 1970) with
nu = 2/3, about a quarter ties at equal strength, and a both-bad share of ties that falls as the
pair's mean strength rises. Chunk ``k`` is drawn from ``SeedSequence([seed, k])``, so the
single-file log and the split-into-files log hold the same rows in the same order.

Every measurement runs in a fresh Python process (``python parquet_aggregation.py --child
...``) so "cold" means cold: no imported modules, no DuckDB state (the operating system's page
cache is not dropped; the files were just written, so reads come from memory, as on any machine
with RAM to spare). The child reports the seconds of each call and its peak resident set size
(``VmHWM``, see :func:`_peak_mib`) and the resident size after imports, before
reading, so the growth due to the data is ``peak - baseline``.

    .venv/bin/python benchmarks/parquet_aggregation.py            # 1M, 3M, 10M rows + Dask
    .venv/bin/python benchmarks/parquet_aggregation.py --rows 1000000 --out quick

The data go to ``benchmarks/data/`` (git-ignored; ``--keep`` keeps them for a rerun) and the
results to ``benchmarks/results/parquet_aggregation[_OUT].{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE / "data"

CHUNK = 1_000_000
MODES = ("pair", "category")
CATEGORIES = (
    "coding", "math", "creative_writing", "hard_prompts", "instruction_following",
    "multiturn", "long_user", "english", "chinese", "refusal",
)
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
NU = 2.0 / 3.0  # Davidson's tie parameter: nu / (2 + nu) = 1/4 ties at equal strength
RATING_SD_LOGIT = 100.0 / (400.0 / np.log(10.0))  # 100 Elo


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def model_names(n_models: int) -> list[str]:
    """Names shaped like arena model names (vendor-family-size-date), distinct, 20-30 chars."""
    vendors = ("openai", "anthropic", "google", "meta", "mistral", "qwen", "deepseek", "xai")
    return [
        f"{vendors[k % len(vendors)]}-model-{k:03d}-2024-{1 + k % 12:02d}-{1 + k % 28:02d}"
        for k in range(n_models)
    ]


def theta_of(n_models: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 10**6]))
    theta = rng.normal(0.0, RATING_SD_LOGIT, n_models)
    return theta - theta.mean()


def chunk_table(k: int, n: int, *, n_models: int, n_voters: int, seed: int):
    """Rows ``k * CHUNK ...`` of the log as a pyarrow Table (plain string columns)."""
    import pyarrow as pa

    rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
    theta = theta_of(n_models, seed)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    pa_, pb_ = np.exp(theta[a]), np.exp(theta[b])
    tie = NU * np.sqrt(pa_ * pb_)
    total = pa_ + pb_ + tie
    u = rng.random(n) * total
    outcome = np.where(u < pa_, 0, np.where(u < pa_ + pb_, 1, 2))
    # both-bad share among ties: logistic in the pair's mean strength (falls as it rises)
    p_bothbad = 1.0 / (1.0 + np.exp(1.5 * 0.5 * (theta[a] + theta[b])))
    outcome = np.where((outcome == 2) & (rng.random(n) < p_bothbad), 3, outcome)
    category = rng.integers(0, len(CATEGORIES), n)
    judge = rng.zipf(1.6, n) % n_voters
    tstamp = 1.7e9 + (k * CHUNK + np.arange(n)) * 0.5 + rng.random(n)

    names = pa.array(model_names(n_models))
    voters = pa.array([f"arena_user_{v}" for v in range(n_voters)])

    def text(dictionary: pa.Array, idx: np.ndarray) -> pa.Array:
        return dictionary.take(pa.array(idx.astype(np.int32)))

    return pa.table({
        "model_a": text(names, a),
        "model_b": text(names, b),
        "winner": text(pa.array(WINNERS), outcome),
        "category": text(pa.array(CATEGORIES), category),
        "judge": text(voters, judge),
        "tstamp": tstamp,
    })


def write_log(
    rows: int, *, files: int, directory: Path, n_models: int, n_voters: int, seed: int
) -> list[Path]:
    """Write ``rows`` votes as ``files`` Parquet files (chunks dealt out in order)."""
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-rows // CHUNK)
    per_file = -(-n_chunks // files)
    paths: list[Path] = []
    for f in range(files):
        ks = range(f * per_file, min(n_chunks, (f + 1) * per_file))
        if not ks:
            break
        path = directory / f"votes-{f:03d}.parquet"
        writer = None
        for k in ks:
            n = min(CHUNK, rows - k * CHUNK)
            table = chunk_table(k, n, n_models=n_models, n_voters=n_voters, seed=seed)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=CHUNK)
        assert writer is not None
        writer.close()
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# One measurement, in a fresh process
# --------------------------------------------------------------------------------------------


def _rss_mib() -> float:
    """Current resident set size (MiB), from /proc (Linux); NaN elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def _peak_mib() -> float:
    """This process's peak resident set size (MiB): ``VmHWM`` from /proc on Linux, which
    ``exec`` resets. Not ``ru_maxrss``: a child started by ``subprocess`` (vfork + exec) or a
    Dask nanny inherits its parent's high-water mark through it, so a child of a parent that
    had just generated 10M rows reported the parent's ~560 MiB as its own peak. Self-contained
    (no import from ``compare_anchors``, which has the same reader): Dask runs it on workers."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def child(args: argparse.Namespace) -> None:
    """Run one engine on one input ``--repeat`` times and print a JSON line."""
    t0 = time.perf_counter()
    import bayesarena as ba

    out: dict = {"import_s": time.perf_counter() - t0}
    if args.engine == "dask":
        from dask.distributed import Client, LocalCluster

        from bayesarena.distributed import aggregate_dask

        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=args.threads, processes=True,
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
        out["cluster_start_s"] = time.perf_counter() - t0
        # each worker imports bayesarena (and with it JAX) once; a task that needs it pays that
        # on first use; do it here, timed apart, as the DuckDB child's import is
        t0 = time.perf_counter()
        client.run(importlib.import_module, "bayesarena.distributed")
        out["worker_import_s"] = time.perf_counter() - t0
        out["worker_rss_before_mib"] = sorted(client.run(_rss_mib).values())
    out["rss_before_mib"] = _rss_mib()
    times, cpu, read_s = [], [], []
    cells = None
    for _ in range(args.repeat):
        if args.engine == "dask":
            w0 = client.run(time.process_time)
        t0, c0 = time.perf_counter(), time.process_time()
        if args.engine == "duckdb":
            votes = ba.read_votes(args.path)
            read_s.append(time.perf_counter() - t0)
            cells = ba.aggregate(votes, by_category=args.by_category)
        else:
            cells = aggregate_dask(args.path, scheduler=client, by_category=args.by_category)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if args.engine == "dask":  # the workers' CPU time too (the client's alone is small)
            w1 = client.run(time.process_time)
            cpu[-1] += sum(w1[w] - w0[w] for w in w1)
    assert cells is not None
    out.update(
        times_s=times,
        cpu_s=cpu,
        read_votes_s=read_s,
        peak_rss_mib=_peak_mib(),
        n_cells=cells.n_cells,
        n_votes=cells.n_votes,
        rows_read=cells.summary.rows_read,
        counts_sum=int(cells.counts.sum()),
        checksum=int((cells.counts * np.arange(1, 5)).sum() + cells.model_i.sum() * 7
                     + cells.model_j.sum() * 13),
    )
    if args.engine == "dask":
        worker_peaks = client.run(_peak_mib)
        out["worker_peak_rss_mib"] = sorted(worker_peaks.values())
        client.close()
        cluster.close()
    print("RESULT " + json.dumps(out))


def measure(engine: str, path: Path | str, args: argparse.Namespace, by_category: bool) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", "--engine", engine,
        "--path", str(path), "--repeat", str(args.repeat),
        "--workers", str(args.workers), "--threads", str(args.threads),
    ]
    if by_category:
        cmd.append("--by-category")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    times = result["times_s"]
    warm = min(range(1, len(times)), key=times.__getitem__) if len(times) > 1 else 0
    result["cold_s"] = times[0]
    result["warm_s"] = times[warm]
    result["warm_cpu_s"] = result["cpu_s"][warm]
    result["warm_read_votes_s"] = result["read_votes_s"][warm] if result["read_votes_s"] else None
    result["data_growth_mib"] = result["peak_rss_mib"] - result["rss_before_mib"]
    return result


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--voters", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10, help="files for the Dask input")
    parser.add_argument("--repeat", type=int, default=3, help="calls per process (1 cold)")
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES),
        help="cells per pair and/or per (pair, category)",
    )
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/data/")
    parser.add_argument("--out", default="")
    # the child process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("duckdb", "dask"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
    parser.add_argument("--by-category", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return {}

    import duckdb
    import pyarrow

    result: dict = {
        "config": {
            "rows": args.rows, "models": args.models, "voters": args.voters,
            "categories": len(CATEGORIES), "dask_files": args.files, "repeat": args.repeat,
            "modes": args.modes, "seed": args.seed, "row_group_rows": CHUNK,
            "dask_workers": args.workers, "dask_threads_per_worker": args.threads,
        },
        "machine": {
            "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__, "load_avg_at_start": os.getloadavg(),
        },
        "runs": [],
    }
    try:
        import dask

        result["machine"]["dask"] = dask.__version__
    except ImportError:
        args.no_dask = True
    for rows in args.rows:
        root = DATA / f"votes_{rows}"
        single = root / "single"
        split = root / "split"
        if not (single / "votes-000.parquet").exists():
            t0 = time.perf_counter()
            write_log(rows, files=1, directory=single, n_models=args.models,
                      n_voters=args.voters, seed=args.seed)
            print(f"wrote {rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        path = single / "votes-000.parquet"
        for mode in args.modes:
            run: dict = {"rows": rows, "mode": mode, "file_mib": path.stat().st_size / 2**20}
            r = run["duckdb"] = measure("duckdb", path, args, by_category=mode == "category")
            print(f"{rows:>11,} rows {mode:>8}  duckdb cold {r['cold_s']:.2f} s  warm "
                  f"{r['warm_s']:.2f} s ({r['warm_cpu_s']:.2f} CPU s)  peak "
                  f"{r['peak_rss_mib']:.0f} MiB (+{r['data_growth_mib']:.0f})", flush=True)
            if not args.no_dask and rows == max(args.rows):
                if not split.exists():
                    write_log(rows, files=args.files, directory=split, n_models=args.models,
                              n_voters=args.voters, seed=args.seed)
                d = run["dask"] = measure(
                    "dask", str(split / "*.parquet"), args, by_category=mode == "category"
                )
                run["dask_files"] = len(list(split.glob("*.parquet")))
                same = d["checksum"] == r["checksum"] and d["n_cells"] == r["n_cells"]
                run["dask_equals_duckdb"] = bool(same)
                print(f"{rows:>11,} rows {mode:>8}  dask   cold {d['cold_s']:.2f} s  warm "
                      f"{d['warm_s']:.2f} s  same cells: {same}", flush=True)
            result["runs"].append(run)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    stem = "parquet_aggregation" + (f"_{args.out}" if args.out else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(f"wrote {RESULTS / stem}.json and .md")
    return result


def markdown(result: dict) -> str:
    cfg, machine = result["config"], result["machine"]
    lines = [
        "# Reading and aggregating a Parquet vote log",
        "",
        f"{cfg['models']} models, {cfg['categories']} categories, ~25% ties (both-bad "
        f"included), {cfg['voters']:,} judges; DuckDB reads one Parquet file (row groups of "
        f"{cfg['row_group_rows']:,} rows), Dask the same rows split into {cfg['dask_files']} "
        f"files on a LocalCluster of {cfg['dask_workers']} worker process(es) x "
        f"{cfg['dask_threads_per_worker']} thread(s). Machine: {machine['cpus']} CPUs, Python "
        f"{machine['python']}, DuckDB {machine['duckdb']}, pyarrow {machine['pyarrow']}"
        + (f", Dask {machine['dask']}" if "dask" in machine else "")
        + f". Load average (1 min) at start {machine['load_avg_at_start'][0]:.2f}, at end "
        f"{machine['load_avg_at_end'][0]:.2f}: other jobs share the CPUs, so wall times are "
        "upper bounds; CPU seconds are less sensitive to that load.",
        "",
        "Each row is a fresh process. `cold` = its first `aggregate(read_votes(path))` call "
        "(`aggregate_dask(glob)` for Dask), `warm` = the best of the later calls (CPU s: the "
        "CPU time of that call, both DuckDB threads together; for Dask, the client's plus the "
        "workers'); `read s` = the `read_votes` part of the warm call; peak RSS of the "
        "process and its growth over the resident size after imports (the Dask client; worker "
        "peaks below). `pair` = one cell per model pair, `category` = per (pair, category).",
        "",
        "| rows | cells | engine | file MiB | cold s | warm s | warm CPU s | read s | "
        "peak RSS MiB | growth MiB | n cells |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        for engine in ("duckdb", "dask"):
            if engine not in run:
                continue
            r = run[engine]
            label = engine if engine == "duckdb" else f"dask ({run['dask_files']} files)"
            read = f"{r['warm_read_votes_s']:.2f}" if r["warm_read_votes_s"] is not None else "-"
            lines.append(
                f"| {run['rows']:,} | {run['mode']} | {label} | {run['file_mib']:.0f} | "
                f"{r['cold_s']:.2f} | {r['warm_s']:.2f} | {r['warm_cpu_s']:.2f} | {read} | "
                f"{r['peak_rss_mib']:.0f} | {r['data_growth_mib']:.0f} | {r['n_cells']:,} |"
            )
    for run in result["runs"]:
        if "dask" in run:
            r = run["dask"]
            lines += [
                "",
                f"Dask, {run['rows']:,} rows, {run['mode']}: cluster started in "
                f"{r['cluster_start_s']:.1f} s and workers imported bayesarena in "
                f"{r['worker_import_s']:.1f} s (neither is in the times above); worker RSS "
                "after imports "
                + ", ".join(f"{m:.0f}" for m in r["worker_rss_before_mib"])
                + " MiB, peak "
                + ", ".join(f"{m:.0f}" for m in r["worker_peak_rss_mib"])
                + f" MiB; cells equal to DuckDB's: {run['dask_equals_duckdb']}.",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
