"""Benchmark: how the time of each method grows with the number of votes and of models.

Two axes of simulated arenas (``simulate_arena(n_models, n_votes, tie_rate=0.25, seed=0)``):
votes in {10k, 30k, 100k, 300k, 1M, 3M, 10M} at 100 models, and models in {20, 50, 100, 200,
500} at 300k votes (the 100-model point is shared by both axes and measured once). Logs larger
than one 1M-vote chunk are simulated chunk by chunk from the same truth
(``simulate_votes(truth, 1_000_000, rng=default_rng(SeedSequence([seed, k])))`` for chunk
``k >= 1``; chunk 0 is ``simulate_arena``'s own) and written to Parquet one chunk at a time.

Methods, each timed on what it takes as input:

- ``read+aggregate``: ``bayesarena.aggregate(bayesarena.read_votes(parquet_path))``, the
  Parquet log to cells (DuckDB);
- ``bayesarena-laplace``: ``bayesarena.fit(cells, "bt-davidson", method="laplace")``;
- ``bayesarena-nuts``: ``bayesarena.fit(cells, "bt-davidson")``, the spec's NUTS defaults
  (4 chains x (500 warm-up + 1000 draws), parallel over the virtual host devices); only where one
  fit takes under ``--nuts-max-s`` (90 s), see below;
- the anchors, through ``benchmarks/anchors/runners.py`` (the same functions as
  ``compare_anchors.py``), each given the votes as the pandas frame ``pd.read_parquet`` returns
  and doing its own counting: ``bootstrap-bt`` (the method LMArena used before arena-rank: the
  Bradley-Terry MLE with ties as half wins plus 100 multinomial-bootstrap refits),
  ``choix-ilsr`` (iterative Luce spectral ranking, the Bradley-Terry MLE, ties dropped) and
  ``openskill`` (``BradleyTerryFull``, one ``rate`` call per vote: a Python loop, so not run
  above ``--openskill-max-votes``, 1M).

arena-rank is not timed here: it runs in its own throwaway environment, one subprocess per fit,
so its times would be dominated by process start-up and JAX compilation;
``compare_anchors.py`` times it beside bayesarena at 100k-10M votes.

Timing: all in one process, one BLAS thread (as ``compare_anchors.py``'s workers: OpenBLAS's
thread pool on a loaded 2-core machine slows the small dense solves badly). Each method first
makes one warm-up call on the same data (for JAX: the compilation; for everything else: imports,
allocator and page cache), then is timed: the median of ``--repeat`` (3) calls when the warm-up
took under ``--fast-s`` (5 s), otherwise one call. For NUTS an earlier fit in this process of
the same compiled shape (the same number of models and padded cell count,
``numpyro_model.bucket_size``; at 100 models every vote count from 30k up pads to the same
5,120 cells) counts as the warm-up, which saves a full fit per size. NUTS skips a size when the time
extrapolated from the two previous sizes on the axis (local log-log slope), times
``--nuts-margin`` (1.5), exceeds ``--nuts-max-s``, when an earlier size on the axis was too slow,
or when its warm-up fit itself took longer than ``--nuts-max-s``; such sizes are recorded as
``skipped: too slow`` with the reason.

Growth: per method and axis, the least-squares slope of ``log time`` on ``log size`` over the
sizes that ran (``time ~ votes^a``, ``time ~ models^b``), and the same over the three largest
sizes that ran (the asymptotic regime: small sizes carry fixed per-call overheads). Outputs
``benchmarks/results/cost_growth.{json,md,png}`` (``--quick``: a smoke run on tiny sizes with
short NUTS chains, written to ``cost_growth_quick.*``).

    .venv/bin/python benchmarks/cost_growth.py            # the full grid, about 8 min on 2 cores
    .venv/bin/python benchmarks/cost_growth.py --quick    # a smoke run, well under a minute
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy is imported (see the module docstring).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))  # for ``anchors``

TIE_RATE = 0.25
CHUNK = 1_000_000
SPEC = "bt-davidson"

VOTES_AXIS = (10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000)
VOTES_AXIS_MODELS = 100
MODELS_AXIS = (20, 50, 100, 200, 500)
MODELS_AXIS_VOTES = 300_000
QUICK_VOTES_AXIS = (2_000, 5_000, 10_000)
QUICK_VOTES_AXIS_MODELS = 10
QUICK_MODELS_AXIS = (6, 10, 20)
QUICK_MODELS_AXIS_VOTES = 5_000

#: name -> what is timed (for the reader) and its plot colour (Okabe & Ito 2008,
#: "Color Universal Design", the colour-blind-safe palette)
METHODS: dict[str, dict[str, str]] = {
    "read+aggregate": {"what": "aggregate(read_votes(parquet_path)): Parquet -> cells",
                       "colour": "#009E73"},
    "bayesarena-laplace": {"what": 'fit(cells, "bt-davidson", method="laplace")',
                           "colour": "#0072B2"},
    "bayesarena-nuts": {"what": 'fit(cells, "bt-davidson"): NUTS, 4 chains x 1000 draws',
                        "colour": "#D55E00"},
    "bootstrap-bt": {"what": "anchors.runners.bootstrap_bt(frame, n_boot=100): MLE + 100 "
                             "bootstrap refits", "colour": "#E69F00"},
    "choix-ilsr": {"what": "anchors.runners.choix_ilsr(frame): Bradley-Terry MLE by ILSR",
                   "colour": "#56B4E9"},
    "openskill": {"what": "anchors.runners.openskill(frame): one rate() per vote",
                  "colour": "#CC79A7"},
}


# ---- data ---------------------------------------------------------------------------------
class Point:
    """One simulated arena: its Parquet log, the frame the anchors get and (later) the cells."""

    def __init__(self, n_models: int, n_votes: int, size: int, seed: int, work: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from bayesarena.simulate import simulate_arena, simulate_votes

        self.n_models, self.n_votes, self.size = n_models, n_votes, size
        self.path = work / f"sim-{n_models}x{n_votes}.parquet"
        t0 = time.perf_counter()
        first, truth = simulate_arena(n_models, min(n_votes, CHUNK), tie_rate=TIE_RATE,
                                      seed=seed)
        writer = None
        for k, start in enumerate(range(0, n_votes, CHUNK)):
            n = min(CHUNK, n_votes - start)
            df = first if k == 0 else simulate_votes(
                truth, n, rng=np.random.default_rng(np.random.SeedSequence([seed, k])))
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(self.path, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=CHUNK)
        assert writer is not None
        writer.close()
        del first, df
        self.simulate_s = time.perf_counter() - t0
        self.frame = pd.read_parquet(self.path)
        self.cells: Any = None

    def drop(self) -> None:
        self.frame = self.cells = None
        with contextlib.suppress(OSError):
            self.path.unlink()


# ---- the methods --------------------------------------------------------------------------
def make_calls(args: argparse.Namespace) -> dict[str, Callable[[Point], Any]]:
    from anchors import runners

    import bayesarena as ba

    nuts_kw: dict[str, int] = {}
    if args.quick:
        nuts_kw = {"warmup": 100, "draws": 100}

    def read_aggregate(p: Point) -> Any:
        return ba.aggregate(ba.read_votes(p.path))

    def laplace(p: Point) -> Any:
        return ba.fit(p.cells, SPEC, method="laplace", seed=args.seed, progress=False,
                      warn=False)

    def nuts(p: Point) -> Any:
        return ba.fit(p.cells, SPEC, seed=args.seed, progress=False, warn=False, **nuts_kw)

    return {
        "read+aggregate": read_aggregate,
        "bayesarena-laplace": laplace,
        "bayesarena-nuts": nuts,
        "bootstrap-bt": lambda p: runners.bootstrap_bt(p.frame, n_boot=100, seed=args.seed),
        "choix-ilsr": lambda p: runners.choix_ilsr(p.frame),
        "openskill": lambda p: runners.openskill(p.frame),
    }


def _timed(call: Callable[[Point], Any], p: Point) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = call(p)
    return time.perf_counter() - t0, out


def nuts_shape(p: Point) -> tuple[int, int]:
    from bayesarena.numpyro_model import bucket_size

    return p.cells.n_models, bucket_size(p.cells.n_cells)


def predict(done: list[tuple[int, float]], size: int) -> float | None:
    """Time at ``size`` extrapolated on the log-log line through the last two sizes that ran."""
    if len(done) < 2:
        return None
    (s0, t0), (s1, t1) = done[-2], done[-1]
    slope = np.log(t1 / t0) / np.log(s1 / s0)
    return float(t1 * (size / s1) ** max(slope, 0.0))


def nuts_skip(history: list[dict], size: int, args: argparse.Namespace) -> str | None:
    """Why NUTS should not run at ``size`` given the earlier sizes on this axis, or None."""
    if any("skipped" in h or h.get("over_limit") for h in history):
        return "skipped: too slow (a smaller size on this axis was already too slow)"
    done = [(h["size"], h["time_s"]) for h in history if "time_s" in h]
    guess = predict(done, size)
    if guess is not None and guess * args.nuts_margin > args.nuts_max_s:
        return (f"skipped: too slow (extrapolated {guess:.0f} s from the two previous sizes; "
                f"x {args.nuts_margin} margin > {args.nuts_max_s:.0f} s)")
    return None


def measure(name: str, call: Callable[[Point], Any], p: Point, args: argparse.Namespace,
            warm_shapes: set) -> dict:
    """Warm up, then time ``call`` on ``p`` (see the module docstring)."""
    row: dict[str, Any] = {}
    shape = nuts_shape(p) if name == "bayesarena-nuts" else None
    if shape is not None and shape in warm_shapes:
        row["warmup_s"] = None
        row["warmup"] = f"an earlier fit of the same shape {shape} in this process"
    else:
        row["warmup_s"], out = _timed(call, p)
        if shape is not None:
            warm_shapes.add(shape)
        if name == "read+aggregate":
            p.cells = out
        if name == "bayesarena-nuts" and row["warmup_s"] > args.nuts_max_s:
            return {**row, "skipped": f"skipped: too slow (the warm-up fit took "
                    f"{row['warmup_s']:.0f} s > {args.nuts_max_s:.0f} s)"}
    fast = row["warmup_s"] is not None and row["warmup_s"] < args.fast_s
    if name == "bayesarena-nuts":  # NUTS is never "fast": one timed fit
        fast = False
    times = []
    for _ in range(args.repeat if fast else 1):
        t, out = _timed(call, p)
        times.append(t)
    row.update(times_s=times, time_s=statistics.median(times))
    if name == "read+aggregate":
        p.cells = out
        row["n_cells"] = int(out.n_cells)
    if name == "bayesarena-nuts":
        d = out.diagnostics
        steps = np.asarray(out.tree["sample_stats"]["n_steps"].values)
        row.update(max_rhat=float(d.max_rhat), min_ess_bulk=float(d.min_ess_bulk),
                   divergences=int(d.divergences), mean_leapfrog_steps=float(steps.mean()),
                   laplace_init_s=float(out.tree.attrs.get("laplace_s", np.nan)),
                   sampler_s=float(out.tree.attrs.get("nuts_s", np.nan)))
        if row["time_s"] > args.nuts_max_s:
            row["over_limit"] = True
    return row


def run_point(p: Point, calls: dict, args: argparse.Namespace, warm_shapes: set,
              nuts_history: list[dict]) -> dict:
    """Every method on one point, read+aggregate first (it makes the cells the fits take)."""
    rows: dict[str, dict] = {}
    for name, call in calls.items():
        if name == "openskill" and p.n_votes > args.openskill_max_votes:
            rows[name] = {"skipped": f"skipped: per-vote Python loop, not run above "
                                     f"{args.openskill_max_votes:,} votes"}
        elif name == "bayesarena-nuts" and (why := nuts_skip(nuts_history, p.size, args)):
            rows[name] = {"skipped": why}
        else:
            rows[name] = measure(name, call, p, args, warm_shapes)
        r = rows[name]
        if name == "bayesarena-nuts":
            nuts_history.append({"size": p.size, **r})
        shown = r.get("skipped") or (f"{r['time_s']:.3f} s (warm-up "
                                     + ("shared" if r["warmup_s"] is None
                                        else f"{r['warmup_s']:.2f} s") + ")")
        print(f"  {name:<20} {shown}", flush=True)
    return rows


# ---- growth -------------------------------------------------------------------------------
def loglog_slope(sizes: list[int], times: list[float]) -> float | None:
    """Least-squares slope of log(time) on log(size); None with fewer than two sizes."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def growth(axis: list[dict]) -> dict[str, dict]:
    out = {}
    for name in METHODS:
        ran = [(pt["size"], pt["methods"][name]["time_s"]) for pt in axis
               if "time_s" in pt["methods"].get(name, {})]
        sizes, times = [s for s, _ in ran], [t for _, t in ran]
        out[name] = {"sizes_run": sizes, "slope": loglog_slope(sizes, times),
                     "slope_top3": loglog_slope(sizes[-3:], times[-3:]) if len(ran) > 3
                     else None}
    return out


# ---- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on tiny sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls for fast methods")
    parser.add_argument("--fast-s", type=float, default=5.0,
                        help="a method whose warm-up took less is timed --repeat times")
    parser.add_argument("--nuts-max-s", type=float, default=90.0)
    parser.add_argument("--nuts-margin", type=float, default=1.5)
    parser.add_argument("--openskill-max-votes", type=int, default=1_000_000)
    parser.add_argument("--out", default=None, help="results stem (default cost_growth)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the .md and .png from the existing .json, run nothing")
    args = parser.parse_args(argv)
    out = args.out or ("cost_growth_quick" if args.quick else "cost_growth")
    if args.report_only:
        payload = json.loads((RESULTS / f"{out}.json").read_text())
        (RESULTS / f"{out}.md").write_text(report(payload))
        figure(payload, RESULTS / f"{out}.png")
        print(f"rewrote {RESULTS / out}.{{md,png}}")
        return payload
    votes_axis = QUICK_VOTES_AXIS if args.quick else VOTES_AXIS
    votes_models = QUICK_VOTES_AXIS_MODELS if args.quick else VOTES_AXIS_MODELS
    models_axis = QUICK_MODELS_AXIS if args.quick else MODELS_AXIS
    models_votes = QUICK_MODELS_AXIS_VOTES if args.quick else MODELS_AXIS_VOTES

    started, load_start = time.time(), os.getloadavg()
    calls = make_calls(args)
    warm_shapes: set = set()
    axes: dict[str, list[dict]] = {"votes": [], "models": []}
    nuts_history: dict[str, list[dict]] = {"votes": [], "models": []}
    shared: dict[tuple[int, int], dict] = {}
    plan = ([("votes", votes_models, v) for v in votes_axis]
            + [("models", m, models_votes) for m in models_axis])
    work = Path(tempfile.mkdtemp(prefix="bayesarena-cost-growth-"))
    try:
        for axis, n_models, n_votes in plan:
            size = n_votes if axis == "votes" else n_models
            if (n_models, n_votes) in shared:  # measured on the other axis
                entry = shared[(n_models, n_votes)]
                print(f"{n_models} models x {n_votes:,} votes: measured on the votes axis",
                      flush=True)
                nuts = entry["methods"]["bayesarena-nuts"]
                nuts_history[axis].append({"size": size, **nuts})
                axes[axis].append({**entry, "size": size})
                continue
            p = Point(n_models, n_votes, size, args.seed, work)
            print(f"{n_models} models x {n_votes:,} votes (simulated and written in "
                  f"{p.simulate_s:.1f} s)", flush=True)
            methods = run_point(p, calls, args, warm_shapes, nuts_history[axis])
            entry = {"n_models": n_models, "n_votes": n_votes, "n_cells": p.cells.n_cells,
                     "simulate_s": p.simulate_s, "methods": methods}
            shared[(n_models, n_votes)] = entry
            axes[axis].append({**entry, "size": size})
            p.drop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    payload = {
        "benchmark": "cost_growth",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["benchmarks/cost_growth.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "config": {"votes_axis": {"n_models": votes_models, "n_votes": list(votes_axis)},
                   "models_axis": {"n_votes": models_votes, "n_models": list(models_axis)},
                   "tie_rate": TIE_RATE, "seed": args.seed, "spec": SPEC,
                   "repeat": args.repeat, "fast_s": args.fast_s,
                   "nuts_max_s": args.nuts_max_s, "nuts_margin": args.nuts_margin,
                   "nuts_draws": "warmup 100, draws 100" if args.quick else "spec defaults",
                   "openskill_max_votes": args.openskill_max_votes,
                   "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                   "methods": {k: v["what"] for k, v in METHODS.items()},
                   "not_run": {"arena-rank": "its own throwaway venv, one subprocess per fit; "
                                             "compare_anchors.py times it"}},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_start": load_start,
                    "load_average_end": os.getloadavg(), "wall_s": time.time() - started},
        "versions": _versions(),
        "axes": axes,
        "growth": {axis: growth(pts) for axis, pts in axes.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(payload, indent=1, default=float) + "\n")
    (RESULTS / f"{out}.md").write_text(report(payload))
    figure(payload, RESULTS / f"{out}.png")
    print(report(payload))
    print(f"wrote {RESULTS / out}.{{json,md,png}}")
    return payload


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bayesarena", "jax", "numpyro", "numpy", "pandas", "duckdb", "choix",
                "openskill"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


# ---- report -------------------------------------------------------------------------------
def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if x is None or not np.isfinite(x) else fmt.format(x)


def _t(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _size(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


def report(p: dict) -> str:
    m, c = p["machine"], p["config"]
    lines = [
        "# Cost growth: time against votes and against models",
        "",
        f"`{p['command']}` on {p['date']}: {m['cpus']} CPUs, load average "
        f"{m['load_average_start'][0]:.1f} at the start and {m['load_average_end'][0]:.1f} at "
        f"the end (other work shares the cores); total {m['wall_s'] / 60:.1f} min. "
        f"`simulate_arena(n_models, n_votes, tie_rate={c['tie_rate']}, seed={c['seed']})`, "
        f"logs over 1M votes simulated in 1M-vote chunks from the same truth. All methods in one "
        f"process, one BLAS thread; each timed warm: after one warm-up call on the same data "
        f"(for NUTS, an earlier fit of the same compiled shape counts), the median of "
        f"{c['repeat']} calls when the warm-up took under {c['fast_s']:.0f} s, else one call. "
        "Seconds per call:",
        "",
    ]
    for name, what in c["methods"].items():
        if name == "bayesarena-nuts" and c["nuts_draws"] != "spec defaults":
            what = f"{what.split(':')[0]}: NUTS, 4 chains, {c['nuts_draws']} (--quick)"
        lines.append(f"- `{name}`: `{what}`")
    lines += [
        "",
        "The bayesarena fits start from cells (the `read+aggregate` row is that step); the "
        "anchors start from the votes as a pandas frame and count them themselves. "
        "arena-rank is not timed here (" + c["not_run"]["arena-rank"] + "). "
        "Slope: least-squares slope of log time on log size over the sizes that ran "
        "(`time ~ size^slope`); *top 3*: the same over the three largest sizes that ran.",
        "",
    ]
    notes: list[str] = []
    for axis, label, fixed in (("votes", "votes", f"{c['votes_axis']['n_models']} models"),
                               ("models", "models", f"{c['models_axis']['n_votes']:,} votes")):
        pts = p["axes"][axis]
        lines += [f"## Time (s) against {label}, {fixed}", "",
                  f"| method | {' | '.join(_size(pt['size']) for pt in pts)} | slope | "
                  "slope top 3 |",
                  "|---|" + "---:|" * (len(pts) + 2)]
        lines.append("| *cells* | " + " | ".join(f"{pt['n_cells']:,}" for pt in pts)
                     + " | | |")
        for name in METHODS:
            cells = []
            for pt in pts:
                r = pt["methods"].get(name, {})
                cells.append(_t(r["time_s"]) if "time_s" in r else "skipped")
                why = r.get("skipped") or (r.get("over_limit") and (
                    f"ran, but took {r['time_s']:.0f} s > {c['nuts_max_s']:.0f} s: larger "
                    "sizes skipped"))
                if why:
                    note = f"- {name}, {_size(pt['size'])} {label}: {why}"
                    if note not in notes:
                        notes.append(note)
            g = p["growth"][axis][name]
            lines.append(f"| {name} | {' | '.join(cells)} | {_f(g['slope'])} | "
                         f"{_f(g['slope_top3'])} |")
        lines.append("")
    nuts = [(pt, pt["methods"]["bayesarena-nuts"]) for axis in ("votes", "models")
            for pt in p["axes"][axis] if "time_s" in pt["methods"].get("bayesarena-nuts", {})]
    seen: set = set()
    diag = []
    for pt, r in nuts:
        key = (pt["n_models"], pt["n_votes"])
        if key not in seen:
            seen.add(key)
            diag.append(f"| {pt['n_models']} | {_size(pt['n_votes'])} | {_t(r['time_s'])} | "
                        f"{_f(r.get('sampler_s'), '{:.1f}')} | "
                        f"{_f(r.get('mean_leapfrog_steps'), '{:.1f}')} | {r['max_rhat']:.3f} | "
                        f"{r['min_ess_bulk']:.0f} | {r['divergences']} |")
    lines += ["Skipped:", "", *(notes or ["- none"]), "",
              "NUTS fits: *sampler s* = NumPyro's run alone (warm-up and draws; the rest of "
              "the fit is the Laplace start and building the posterior); *steps* = mean "
              "leapfrog steps (gradient evaluations) per draw; worst R-hat, least bulk ESS, "
              "divergences. The likelihood is a sum over cells, so once every pair is filled "
              "one gradient costs the same at any number of votes: compare the fit times "
              "along the votes axis with the steps.",
              "", "| models | votes | fit s | sampler s | steps | R-hat | ESS | div |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|", *diag, ""]
    return "\n".join(lines)


def figure(p: dict, path: Path) -> None:
    """Two log-log panels (time vs votes, time vs models), one line per method, slopes in the
    legends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    c = p["config"]
    fig, axes = plt.subplots(1, 2, figsize=(12.0, 6.2))
    panels = (("votes", "votes", f"{c['votes_axis']['n_models']} models"),
              ("models", "models", f"{c['models_axis']['n_votes']:,} votes"))
    for ax, (axis, label, fixed) in zip(axes, panels, strict=True):
        for name, meta in METHODS.items():
            ran = [(pt["size"], pt["methods"][name]["time_s"]) for pt in p["axes"][axis]
                   if "time_s" in pt["methods"].get(name, {})]
            if not ran:
                continue
            slope = p["growth"][axis][name]["slope"]
            skipped = [_size(pt["size"]) for pt in p["axes"][axis]
                       if "skipped" in pt["methods"].get(name, {})]
            legend = f"{name} (slope {_f(slope)}" + (
                f"; not run at {', '.join(skipped)})" if skipped else ")")
            ax.plot(*zip(*ran, strict=True), marker="o", color=meta["colour"], lw=1.8,
                    label=legend)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = [pt["size"] for pt in p["axes"][axis]]
        ax.set_xticks(sizes, [_size(s) for s in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_ylabel("warm time per call, s (log scale)")
        ax.set_title(f"time vs {label}, {fixed}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)
    fig.suptitle("Cost growth per method (log-log; slope = exponent of time ~ size^slope)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
