"""Benchmark: bayesarena side by side with the tools people use today, on the same votes.

Methods (each in its own fresh process, so that memory and start-up are per method):

- ``bayesarena-nuts``: ``bayesarena.fit(cells, "bt-davidson")``, NUTS with the spec's defaults
  (4 parallel chains x (500 warm-up + 1000 draws)); posterior means and 95% credible intervals.
- ``bayesarena-laplace``: the same spec, ``method="laplace"``.
- ``bayesarena-ties-half``: ``bt-ties-half`` with NUTS, ties as half wins: parity with the two
  LMArena methods below.
- ``arena-rank-sandwich`` / ``arena-rank-bootstrap``: LMArena's ``arena-rank`` package (PyPI;
  Bradley-Terry MLE with sandwich intervals, or with 100 multinomial bootstrap refits; ties as
  half wins), installed into its own throwaway environment (``benchmarks/.anchors/``, ignored by
  git: it pins old jax/numpy) and run through ``anchors/arena_rank_driver.py``.
- ``bootstrap-bt``: the method LMArena used before arena-rank (Chiang et al. 2024; FastChat's
  ``compute_mle_elo`` + ``get_bootstrap_result``): logistic-regression MLE with ties as half wins,
  100 multinomial bootstrap refits, written from its description in ``anchors/bootstrap_bt.py``.
- ``choix-ep`` (expectation propagation posterior) and ``choix-ilsr`` (the MLE by iterative Luce
  spectral ranking) from ``choix``; ties dropped (choix has no tie model).
- ``openskill``: ``openskill.models.BradleyTerryFull``, online updates vote by vote, ties as
  draws; its ``mu`` is on its own scale, so only its ranking and its scale-aligned error count.

What is measured, per method and data set: ``import_s`` (importing the method's library),
``cold_s`` (the first fit in a fresh process, from the votes in a pandas frame to ratings and
intervals: the method's own counting/aggregation and any JAX compilation included, with an empty
JAX compilation cache), ``warm_s`` (the same fit again in that process; for methods with no
compile step it is repeated only when the cold fit took under ``--warm-under`` seconds), peak
resident memory (the process's own high-water mark ``VmHWM``, or the resident memory of its
whole process tree sampled every 0.2 s when that is larger, as for arena-rank's bootstrap pool;
not ``ru_maxrss``, which a child inherits from its parent across fork and exec) and, against
the simulated truth (Elo scale, ``1000 + 400/ln(10) * theta``, every estimate centred to mean
1000): rating RMSE and largest error, the slope of the estimate on the truth (``< 1``: a
compressed scale, which ties-as-half methods show under the simulator's Davidson ties), RMSE
after dividing out that slope, the coverage and mean width of the 95% intervals, and Spearman /
Kendall rank correlations. On real data (no truth) the reference is ``bayesarena-nuts``. Ratios
``bayesarena / anchor`` come from the same run, so the load of other work on the machine
affects both sides.

Every worker runs with one BLAS thread (``--blas-threads``): OpenBLAS's thread pool on
150 x 150 matrices on this loaded 2-core machine made the bootstrap method 30x slower.

    .venv/bin/python benchmarks/compare_anchors.py           # default: 50x100k, 150x1M, real data
    .venv/bin/python benchmarks/compare_anchors.py --full    # 50/150/300 models x 100k/1M/10M votes
    .venv/bin/python benchmarks/compare_anchors.py --quick   # a smoke run (20 models, 5k votes)
    .venv/bin/python benchmarks/compare_anchors.py --arena   # + arena.toml NUTS at 100k votes
    .venv/bin/python benchmarks/compare_anchors.py --arena-only --arena-models 150 \
        --arena-votes 1000000 --seed 0   # arena.toml (NUTS, Laplace) vs the bootstrap boards
        # add --arena-methods bayesarena-arena-laplace,bootstrap-style for those two alone

Results: ``benchmarks/results/compare_anchors.{json,md,png}`` (``--out NAME`` changes the stem).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
ANCHOR_ENV = HERE / ".anchors" / "arena-rank-venv"
ARENA_RANK_REQUIREMENT = "arena-rank==0.1.1"
DRIVER = HERE / "anchors" / "arena_rank_driver.py"
TIE_RATE = 0.25

#: The methods: which runner, its keyword arguments, whether it compiles (then warm is always
#: measured), and what a reader needs to know about it.
METHODS: dict[str, dict] = {
    "bayesarena-nuts": {"runner": "bayesarena", "kwargs": {"spec": "bt-davidson",
                                                             "method": "nuts"},
                        "jit": True, "ties": "Davidson", "intervals": "95% CrI, NUTS"},
    "bayesarena-laplace": {"runner": "bayesarena", "kwargs": {"spec": "bt-davidson",
                                                                "method": "laplace"},
                           "jit": True, "ties": "Davidson", "intervals": "95% CrI, Laplace"},
    "bayesarena-ties-half": {"runner": "bayesarena", "kwargs": {"spec": "bt-ties-half",
                                                                  "method": "nuts"},
                             "jit": True, "ties": "half wins", "intervals": "95% CrI, NUTS"},
    "arena-rank-sandwich": {"runner": "arena-rank", "kwargs": {"ci": "sandwich"}, "jit": True,
                            "ties": "half wins", "intervals": "sandwich"},
    "arena-rank-bootstrap": {"runner": "arena-rank", "kwargs": {"ci": "bootstrap"},
                             "jit": False, "ties": "half wins", "intervals": "100 bootstraps"},
    "bootstrap-bt": {"runner": "bootstrap_bt", "kwargs": {"n_boot": 100}, "jit": False,
                     "ties": "half wins", "intervals": "100 bootstraps"},
    "choix-ep": {"runner": "choix_ep", "kwargs": {"alpha": 1.0}, "jit": False,
                 "ties": "dropped", "intervals": "EP posterior"},
    "choix-ilsr": {"runner": "choix_ilsr", "kwargs": {}, "jit": False, "ties": "dropped",
                   "intervals": "none"},
    "openskill": {"runner": "openskill", "kwargs": {}, "jit": False, "ties": "draws",
                  "intervals": "mu +- 1.96 sigma (own scale)"},
}
BAYESARENA = ("bayesarena-nuts", "bayesarena-laplace")
REFERENCE = "bayesarena-nuts"

DEFAULT_GRID = ((50, 100_000), (150, 1_000_000))
FULL_GRID = tuple((m, v) for m in (50, 150, 300) for v in (100_000, 1_000_000, 10_000_000))
QUICK_GRID = ((20, 5_000),)


# ---- the worker: one method on one data set, in its own process ---------------------------
def worker(cfg: dict) -> None:
    """Import the method, load the votes, fit cold and (maybe) warm, write the result JSON."""
    sys.path.insert(0, str(HERE))
    t0 = time.perf_counter()
    if cfg["runner"] == "bayesarena":
        import bayesarena  # noqa: F401  (before JAX: it asks for the host devices)
    from anchors import runners

    lib = {"choix_ep": "choix", "choix_ilsr": "choix", "openskill": "openskill.models",
           "bootstrap_bt": "anchors.bootstrap_bt"}.get(cfg["runner"])
    if lib:
        __import__(lib)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    votes = pd.read_parquet(cfg["votes"])
    load_s = time.perf_counter() - t0
    run = runners.RUNNERS[cfg["runner"]]
    t0 = time.perf_counter()
    fitted = run(votes, **cfg["kwargs"])
    cold_s = time.perf_counter() - t0
    warm_s = None
    if cfg["jit"] or cold_s < cfg["warm_under"]:
        t0 = time.perf_counter()
        fitted = run(votes, **cfg["kwargs"])
        warm_s = time.perf_counter() - t0
    out = {"models": fitted.models, "rating": np.asarray(fitted.rating).tolist(),
           "lower": None if fitted.lower is None else np.asarray(fitted.lower).tolist(),
           "upper": None if fitted.upper is None else np.asarray(fitted.upper).tolist(),
           "scale": fitted.scale, "extra": fitted.extra or {}, "import_s": import_s,
           "load_s": load_s, "cold_s": cold_s, "warm_s": warm_s, "vm_hwm_mb": vm_hwm_mb()}
    Path(cfg["out"]).write_text(json.dumps(out))


def vm_hwm_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``; reset by ``exec``, unlike
    ``ru_maxrss``, which a child inherits from the parent that forked it), in MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and all its descendants, in MB."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def _wait(proc: subprocess.Popen, timeout: float) -> tuple[int | None, float]:
    """Wait for ``proc``; return (exit status, or None on timeout; the largest resident memory
    of its process tree, summed over processes, sampled every 0.2 s, in MB)."""
    deadline = time.monotonic() + timeout
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return None, peak
        time.sleep(0.2)
    return proc.returncode, peak


def run_method(name: str, votes: Path, work: Path, args: argparse.Namespace) -> dict:
    """Run one method on one votes file in a fresh process; return timings, memory, result."""
    spec = METHODS[name]
    out = work / f"{name}.json"
    cache = Path(tempfile.mkdtemp(prefix="jax-cache-", dir=work))  # a cold compilation cache
    threads = str(args.blas_threads)
    env = {**os.environ, "BAYESARENA_JAX_CACHE": str(cache), "PYTHONUNBUFFERED": "1",
           "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads}
    if spec["runner"] == "arena-rank":
        python = ANCHOR_ENV / "bin" / "python"
        cmd = [str(python), str(DRIVER), str(votes), str(out), "--ci", spec["kwargs"]["ci"],
               "--seed", str(args.seed)]
        if not spec["jit"]:
            cmd.append("--no-warm")  # arena-rank's bootstrap: one run (see _repeat_bootstrap)
    else:
        cfg = {"runner": spec["runner"], "kwargs": spec["kwargs"], "jit": spec["jit"],
               "warm_under": args.warm_under, "votes": str(votes), "out": str(out)}
        if spec["runner"] == "bayesarena":
            cfg["kwargs"] = {**spec["kwargs"], "seed": args.seed}
        cmd = [sys.executable, __file__, "--worker", json.dumps(cfg)]
    log = work / f"{name}.log"
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        code, peak_mb = _wait(proc, args.timeout)
    wall = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    row: dict = {"process_s": wall, "peak_tree_sampled_mb": peak_mb}
    if code is None:
        return {**row, "peak_mb": peak_mb, "error": f"timed out after {args.timeout:.0f} s"}
    if code != 0 or not out.exists():
        tail = log.read_text()[-1500:].strip().splitlines()
        return {**row, "peak_mb": peak_mb, "error": f"exit {code}: " + " | ".join(tail[-6:])}
    res = {"scale": "elo", **row, **json.loads(out.read_text())}
    # the exact high-water mark of the main process, or the sampled sum over its process tree
    # (arena-rank's bootstrap pool) when that is larger
    res["peak_mb"] = max(res.get("vm_hwm_mb") or 0.0, peak_mb)
    return res


# ---- the arena-rank environment -----------------------------------------------------------
def ensure_arena_rank(reinstall: bool = False) -> dict:
    """Create the throwaway environment for arena-rank if needed; say what it has or why not.

    It is built from the interpreter this project's venv was made from (Python >= 3.12;
    arena-rank 0.1.1 needs >= 3.11 and pins jax 0.8.1 and numpy 2.3.3).
    """
    python = ANCHOR_ENV / "bin" / "python"
    check = [str(python), "-c", "import arena_rank, jax, numpy; "
             "print(jax.__version__, numpy.__version__)"]
    if reinstall and ANCHOR_ENV.exists():
        shutil.rmtree(ANCHOR_ENV)
    if python.exists():
        ok = subprocess.run(check, capture_output=True, text=True, check=False)
        if ok.returncode == 0:
            return {"available": True, "env": str(ANCHOR_ENV.relative_to(ROOT)),
                    "jax_numpy": ok.stdout.strip()}
    ANCHOR_ENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", "--clear", str(ANCHOR_ENV)],
             [str(python), "-m", "pip", "install", "-q", ARENA_RANK_REQUIREMENT], check]
    for step in steps:
        res = subprocess.run(step, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            why = (res.stderr or res.stdout).strip().splitlines()[-3:]
            return {"available": False, "reason": f"{' '.join(step[:4])} failed: "
                    + " | ".join(why)}
    return {"available": True, "env": str(ANCHOR_ENV.relative_to(ROOT)),
            "jax_numpy": res.stdout.strip()}


# ---- data sets ----------------------------------------------------------------------------
def simulated(n_models: int, n_votes: int, seed: int, work: Path) -> dict:
    from bayesarena.simulate import simulate_arena

    df, truth = simulate_arena(n_models, n_votes, tie_rate=TIE_RATE, seed=seed)
    path = work / f"sim-{n_models}x{n_votes}.parquet"
    df.to_parquet(path, index=False)
    ties = float(np.mean(~df["winner"].isin(["model_a", "model_b"])))
    del df
    return {"name": f"sim {n_models} models x {n_votes:,} votes", "path": path,
            "truth": truth.ratings(), "n_models": n_models, "n_votes": n_votes,
            "tie_share": ties, "source": f"simulate_arena(tie_rate={TIE_RATE}, seed={seed})"}


def real_data(work: Path) -> list[dict]:
    """MT-Bench human votes and Premier League matches 2008-2013 (home team as model_a)."""
    out = []
    mt = SHARED_DATA / "mt_bench_human" / "mt_bench_human_votes_subset.csv"
    if mt.exists():
        df = pd.read_csv(mt)[["model_a", "model_b", "winner"]]
        out.append(("mt-bench human votes", "mt_bench", df, str(mt.relative_to(ROOT.parent))))
    epl = SHARED_DATA / "sports_and_surveys" / "BT2_football_EPL_2008_2013.csv"
    if epl.exists():
        raw = pd.read_csv(epl)
        winner = raw["result"].map({1: "model_a", -1: "model_b", 0: "tie"})
        df = pd.DataFrame({"model_a": raw["home"], "model_b": raw["away"], "winner": winner})
        out.append(("EPL football 2008-13", "epl", df, str(epl.relative_to(ROOT.parent))))
    sets = []
    for name, stem, df, source in out:
        path = work / f"{stem}.parquet"
        df.to_parquet(path, index=False)
        models = pd.unique(pd.concat([df["model_a"], df["model_b"]]))
        sets.append({"name": name, "path": path, "truth": None, "n_models": len(models),
                     "n_votes": len(df), "source": source,
                     "tie_share": float(np.mean(~df["winner"].isin(["model_a", "model_b"])))})
    return sets


# ---- accuracy -----------------------------------------------------------------------------
def accuracy(res: dict, truth: pd.Series) -> dict:
    """Compare a method's ratings with ``truth`` (both centred to mean 1000 Elo)."""
    from scipy.stats import kendalltau, spearmanr

    est = pd.Series(res["rating"], index=res["models"])
    t = truth.reindex(est.index).to_numpy(dtype=float)
    r = est.to_numpy(dtype=float)
    shift = r.mean() - 1000.0
    rc, tc = r - r.mean(), t - t.mean()
    slope = float(rc @ tc / (tc @ tc))  # estimate ~ slope * truth: < 1 is a compressed scale
    out = {"spearman": float(spearmanr(r, t).statistic),
           "kendall": float(kendalltau(r, t).statistic),
           "scale_slope": slope,
           "rmse_aligned": float(np.sqrt(np.mean((rc / slope - tc) ** 2))),
           "top1_correct": bool(np.argmax(r) == np.argmax(t))}
    if res.get("scale") == "elo":
        err = (r - shift) - t
        out.update(rmse=float(np.sqrt(np.mean(err ** 2))), max_abs_err=float(np.abs(err).max()))
        if res.get("lower") is not None:
            lo = np.asarray(res["lower"]) - shift
            hi = np.asarray(res["upper"]) - shift
            out.update(coverage=float(np.mean((lo <= t) & (t <= hi))),
                       mean_width=float(np.mean(hi - lo)))
    elif res.get("lower") is not None:  # openskill: widths in its own units, scaled by slope
        out["mean_width_aligned"] = float(np.mean((np.asarray(res["upper"])
                                                   - np.asarray(res["lower"])) / slope))
    return out


def agreement(res: dict, ref: dict) -> dict:
    """Agreement with the reference method on real data (no truth)."""
    from scipy.stats import kendalltau, spearmanr

    est = pd.Series(res["rating"], index=res["models"])
    base = pd.Series(ref["rating"], index=ref["models"]).reindex(est.index).to_numpy()
    r = est.to_numpy()
    out = {"spearman_vs_ref": float(spearmanr(r, base).statistic),
           "kendall_vs_ref": float(kendalltau(r, base).statistic)}
    if res.get("scale") == "elo":
        out["rmse_vs_ref"] = float(np.sqrt(np.mean(((r - r.mean()) - (base - base.mean())) ** 2)))
        if res.get("lower") is not None:
            out["mean_width"] = float(np.mean(np.asarray(res["upper"])
                                              - np.asarray(res["lower"])))
    return out


def ratios(methods: dict) -> dict:
    """``bayesarena / anchor`` for time, memory and (where both have it) rating RMSE."""
    out: dict = {}
    keys = (("cold_s", "cold"), ("warm_s", "warm"), ("peak_mb", "peak_mb"), ("rmse", "rmse"),
            ("mean_width", "mean_width"))
    for num in BAYESARENA:
        a = methods.get(num, {})
        if "error" in a or "skipped" in a or not a:
            continue
        for name, b in methods.items():
            if name in BAYESARENA or "error" in b or "skipped" in b:
                continue
            row = {}
            for key, label in keys:
                x, y = (r.get(key, r.get("accuracy", r.get("agreement", {})).get(key))
                        for r in (a, b))
                if x is not None and y:
                    row[label] = x / y
            out.setdefault(num, {})[name] = row
    return out


# ---- the run ------------------------------------------------------------------------------
def run_dataset(ds: dict, names: list[str], args: argparse.Namespace, work: Path,
                arena_rank: dict) -> dict:
    methods: dict = {}
    decisive = ds["n_votes"] * (1 - ds["tie_share"])
    for name in names:
        if METHODS[name]["runner"] == "arena-rank" and not arena_rank["available"]:
            methods[name] = {"skipped": "arena-rank not installed: " + arena_rank["reason"]}
            continue
        if name == "choix-ep" and decisive > args.ep_max_votes:
            methods[name] = {"skipped": f"{decisive:,.0f} decisive votes > --ep-max-votes "
                             f"{args.ep_max_votes:,}: choix's EP is a Python loop over votes "
                             "with an O(n_models^2) covariance update each"}
            continue
        if name == "openskill" and ds["n_votes"] > args.openskill_max_votes:
            methods[name] = {"skipped": f"{ds['n_votes']:,} votes > --openskill-max-votes "
                             f"{args.openskill_max_votes:,}"}
            continue
        res = run_method(name, ds["path"], work, args)
        if "error" not in res:
            if ds["truth"] is not None:
                res["accuracy"] = accuracy(res, ds["truth"])
            elif name == REFERENCE:
                res["agreement"] = {"mean_width": _width(res)}
            elif REFERENCE in methods and "error" not in methods[REFERENCE]:
                res["agreement"] = agreement(res, methods[REFERENCE])
        methods[name] = res
        brief = {k: res.get(k) for k in ("cold_s", "warm_s", "peak_mb", "error")}
        print(f"  {name}: {json.dumps(brief, default=float)} {res.get('accuracy', '')}",
              flush=True)
    keep_ratings = ds["truth"] is None  # real data: keep the per-model estimates (small)
    for res in methods.values():
        if not keep_ratings:
            for key in ("models", "rating", "lower", "upper"):
                res.pop(key, None)
    return methods


ARENA_RUN = ("bayesarena-arena", "bayesarena-arena-laplace", "bootstrap-bt", "bootstrap-style")


def arena_target(args: argparse.Namespace, work: Path) -> dict:
    """``--arena``: arena.toml (NUTS, and its Laplace approximation) beside the old methods on
    the same hierarchical votes:
    ``bootstrap-bt`` (one board, pair counts) and ``bootstrap-style`` (what LMArena computed
    for the boards arena.toml gives: the style-controlled board and one per category, each with
    100 bootstrap refits of the contextual Bradley-Terry MLE). Accuracy: Spearman's rank
    correlation of each board with the truth (overall ``theta``; per category ``theta +
    delta``, the strength on votes with that tag alone), and the share of the overall board's
    95% intervals that hold the true rating (both centred to the truth's mean)."""
    from scipy.stats import spearmanr

    from bayesarena.simulate import simulate_hierarchical_arena

    n_models, n_votes = args.arena_models, args.arena_votes
    df, truth = simulate_hierarchical_arena(n_models, n_votes, categories=10,
                                            n_voters=n_votes // 10, seed=args.seed)
    path = work / "arena.parquet"
    df.to_parquet(path, index=False)
    del df
    out = {"n_models": n_models, "n_votes": n_votes, "categories": 10,
           "voters": n_votes // 10, "seed": args.seed}
    METHODS["bayesarena-arena"] = {"runner": "bayesarena", "kwargs": {"spec": "arena",
                                                                       "method": "nuts"},
                                   "jit": False, "ties": "Davidson", "intervals": "95% CrI"}
    METHODS["bayesarena-arena-laplace"] = {
        "runner": "bayesarena", "kwargs": {"spec": "arena", "method": "laplace"}, "jit": False,
        "ties": "Davidson", "intervals": "95% CrI, Laplace (empirical-Bayes scales)"}
    METHODS["bootstrap-style"] = {"runner": "bootstrap_style", "kwargs": {"n_boot": 100},
                                  "jit": False, "ties": "half wins",
                                  "intervals": "100 bootstraps per board"}
    args_once = argparse.Namespace(**{**vars(args), "warm_under": 0.0})  # one fit: minutes
    theta = truth.ratings()
    by_category = truth.category_ratings()
    chosen = [m.strip() for m in args.arena_methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(ARENA_RUN))
    if unknown:
        raise SystemExit(f"unknown arena methods {unknown}; choose from {list(ARENA_RUN)}")
    for name in (m for m in ARENA_RUN if m in chosen):
        res = run_method(name, path, work, args if name == "bootstrap-bt" else args_once)
        row = {k: res.get(k) for k in ("cold_s", "warm_s", "peak_mb", "error")}
        extra = dict(res.get("extra") or {})
        categories = extra.pop("category_ratings", None)
        row["extra"] = extra
        if "rating" in res:
            est = pd.Series(res["rating"], index=res["models"])
            true = theta.reindex(est.index).to_numpy()
            row["spearman_overall"] = float(spearmanr(est, true)[0])
            if res.get("lower") is not None:  # intervals centred as the truth is
                shift = est.mean() - true.mean()
                lo, hi = np.asarray(res["lower"]) - shift, np.asarray(res["upper"]) - shift
                row["coverage_overall"] = float(np.mean((lo <= true) & (true <= hi)))
                row["width_overall"] = float(np.mean(hi - lo))
        if categories:
            rho = {}
            for tag, r in categories.items():
                pair = pd.DataFrame({"est": r, "true": by_category[tag].reindex(res["models"])
                                     .to_numpy()}).dropna()  # a board may lack a model
                rho[tag] = float(spearmanr(pair["est"], pair["true"])[0])
            row["spearman_by_category"] = rho
            row["spearman_category_mean"] = float(np.mean(list(rho.values())))
        out[name] = row
        print(f"  {name}: {row}", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="50/150/300 models x 100k/1M/10M")
    size.add_argument("--quick", action="store_true", help="a smoke run: 20 models x 5k votes")
    size.add_argument("--grid", help="comma-separated MODELSxVOTES, e.g. 50x100000,150x1000000")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--no-real", action="store_true", help="skip the real data sets")
    parser.add_argument("--arena", action="store_true",
                        help="also fit arena.toml (NUTS and Laplace) beside bootstrap-bt and "
                        "bootstrap-style on hierarchical votes")
    parser.add_argument("--arena-only", action="store_true",
                        help="run only the --arena comparison (no grid, no real data)")
    parser.add_argument("--arena-methods", default=",".join(ARENA_RUN),
                        help=f"comma-separated subset of {', '.join(ARENA_RUN)} for the arena "
                        "comparison (a rerun of the Laplace fit and the old method alone takes "
                        "two minutes; the MCMC fit five)")
    parser.add_argument("--arena-models", type=int, default=50)
    parser.add_argument("--arena-votes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warm-under", type=float, default=30.0,
                        help="repeat a method with no compile step only if its cold fit took "
                             "fewer seconds")
    parser.add_argument("--ep-max-votes", type=int, default=200_000)
    parser.add_argument("--openskill-max-votes", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per method and data set")
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--reinstall-arena-rank", action="store_true")
    parser.add_argument("--out", default="compare_anchors", help="results file stem")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the .md and .png from results/OUT.json (and its target note, "
                        "which reads the arena results files); run nothing")
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return {}
    if args.report_only:
        payload = json.loads((RESULTS / f"{args.out}.json").read_text())
        # the target note reads other results files (the arena runs): bring it up to date
        payload["target_arena_vs_bootstrap"] = target_note(
            payload["datasets"], payload["target_arena_vs_bootstrap"].get("arena_run"))
        (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=1, default=float))
        (RESULTS / f"{args.out}.md").write_text(report(payload))
        figure(payload, RESULTS / f"{args.out}.png")
        return payload

    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if REFERENCE in names:  # the reference first: real data compares with it
        names = [REFERENCE] + [n for n in names if n != REFERENCE]
    if args.grid:
        grid = tuple(tuple(int(x) for x in g.lower().split("x")) for g in args.grid.split(","))
    else:
        grid = FULL_GRID if args.full else QUICK_GRID if args.quick else DEFAULT_GRID
    if args.arena_only:
        grid, args.no_real, args.arena = (), True, True

    started = time.time()
    load_start = os.getloadavg()
    arena_rank = ({"available": False, "reason": "not requested"}
                  if not any(METHODS[n]["runner"] == "arena-rank" for n in names)
                  else ensure_arena_rank(args.reinstall_arena_rank))
    print(f"arena-rank: {arena_rank}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bayesarena-anchors-"))
    datasets = []
    try:
        sets = [lambda m=m, v=v: simulated(m, v, args.seed, work) for m, v in grid]
        if not args.no_real:
            sets.append(lambda: real_data(work))
        for make in sets:
            made = make()
            for ds in made if isinstance(made, list) else [made]:
                print(f"{ds['name']}", flush=True)
                methods = run_dataset(ds, names, args, work, arena_rank)
                datasets.append({**{k: v for k, v in ds.items() if k not in ("path", "truth")},
                                 "has_truth": ds["truth"] is not None, "methods": methods,
                                 "ratios": ratios(methods)})
                with contextlib.suppress(OSError):
                    ds["path"].unlink()
        arena = arena_target(args, work) if args.arena else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    payload = {
        "benchmark": "compare_anchors",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["benchmarks/compare_anchors.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "config": {"grid": [list(g) for g in grid], "tie_rate": TIE_RATE, "seed": args.seed,
                   "methods": {n: METHODS[n] for n in names}, "warm_under_s": args.warm_under,
                   "ep_max_votes": args.ep_max_votes, "blas_threads": args.blas_threads,
                   "openskill_max_votes": args.openskill_max_votes},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_start": load_start, "load_average_end": os.getloadavg(),
                    "wall_s": time.time() - started},
        "arena_rank": arena_rank,
        "versions": _versions(),
        "datasets": datasets,
        "target_arena_vs_bootstrap": target_note(datasets, arena),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=1, default=float))
    (RESULTS / f"{args.out}.md").write_text(report(payload))
    figure(payload, RESULTS / f"{args.out}.png")
    print(f"wrote {RESULTS / args.out}.{{json,md,png}}")
    return payload


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bayesarena", "jax", "numpyro", "numpy", "scipy", "choix", "openskill"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def target_note(datasets: list[dict], arena: dict | None) -> dict:
    """The issue's target: the hierarchical arena.toml fit on 1M votes faster than 100
    bootstrap refits of the old method. Not run at 1M here (minutes; see
    ``benchmarks/PERFORMANCE.md``); the bootstrap side is measured, the arena side read from
    ``benchmarks/arena_scaling.py``'s results."""
    boot = {}
    for ds in datasets:
        if ds.get("n_votes") == 1_000_000 and ds["has_truth"]:
            for name in ("bootstrap-bt", "arena-rank-bootstrap"):
                m = ds["methods"].get(name, {})
                if "cold_s" in m:
                    boot[f"{name} ({ds['n_models']} models)"] = {"cold_s": m["cold_s"],
                                                                 "warm_s": m.get("warm_s")}
    earlier = {}
    for stem in ("arena_scaling", "arena_scaling_mid"):
        path = RESULTS / f"{stem}.json"
        if path.exists():
            d = json.loads(path.read_text())
            earlier[stem] = {"config": {k: d.get("config", {}).get(k)
                                        for k in ("models", "votes", "categories", "voters")},
                             "fit_s": d.get("fit_s")}
    gradient = RESULTS / "arena_gradient.json"
    ms = None
    if gradient.exists():
        g = json.loads(gradient.read_text())
        ms = (g.get("parallel_chains_ms_per_gradient") or g.get("gradient_ms_median") or {}).get(
            "mixed")
    full = earlier.get("arena_scaling", {}).get("fit_s")
    fastest_boot = min((v["warm_s"] or v["cold_s"] for v in boot.values()), default=None)
    met = bool(full < fastest_boot) if full is not None and fastest_boot is not None else None
    style = (arena or {}).get("bootstrap-style", {}).get("cold_s")
    if style:  # the like-for-like run: each arena.toml fit against the old method, both cold
        met = {name: bool(run["cold_s"] < style) for name in ("bayesarena-arena",
                                                              "bayesarena-arena-laplace")
               if (run := arena.get(name)) and run.get("cold_s")}
    return {
        "bootstrap_at_1m": boot,
        "arena_toml_1m": "not run here: `benchmarks/arena_scaling.py` fits it (4 chains, the "
                         "spec's settings); `benchmarks/arena_gradient.py` measures "
                         f"{ms if ms is not None else '?'} ms of wall time per gradient with 4 "
                         "chains in parallel on 150 models x 1M votes",
        "arena_toml_earlier_results": earlier,
        "arena_run": arena,
        "met": met,
    }


# ---- report -------------------------------------------------------------------------------
def _f(x, fmt: str = "{:.2f}") -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else fmt.format(x)


def report(p: dict) -> str:
    m = p["machine"]
    lines = [
        "# bayesarena beside the anchors",
        "",
        f"`{p['command']}` on {p['date']}: {m['cpus']} CPUs, load average "
        f"{m['load_average_start'][0]:.1f} at the start and {m['load_average_end'][0]:.1f} at "
        f"the end (other work shared the cores: absolute seconds are inflated, the ratios were "
        f"measured in the same run). Total {m['wall_s'] / 60:.1f} min. Simulated arenas: "
        f"`simulate_arena(tie_rate={p['config']['tie_rate']})` (Davidson ties, half both-bad); "
        f"every method in a fresh process; cold = first fit in that process (empty JAX cache), "
        f"warm = the same fit again; peak = the process's resident high-water mark (its process "
        f"tree's, sampled, for arena-rank's bootstrap pool); one BLAS thread.",
        "",
        "Ratings are on the Elo scale `1000 + 400/ln(10) theta`, centred to mean 1000. "
        "*slope*: estimate regressed on truth (ties-as-half methods compress the scale when ties "
        "are Davidson's); *RMSE al.*: RMSE after dividing out the slope; *cov*: share of models "
        "whose 95% interval holds the truth. openskill's `mu` has its own scale: only its ranks "
        "and aligned RMSE count.",
        "",
    ]
    if not p["arena_rank"]["available"]:
        lines += [f"**arena-rank could not run**: {p['arena_rank']['reason']}", ""]
    else:
        lines += [f"arena-rank from its own environment `{p['arena_rank']['env']}` "
                  f"(jax, numpy: {p['arena_rank'].get('jax_numpy', '?')}); its bootstrap pool "
                  f"runs with the `spawn` start method (`fork` deadlocks after JAX starts).", ""]
    for ds in p["datasets"]:
        lines += [f"## {ds['name']}", "",
                  f"{ds['n_models']} models, {ds['n_votes']:,} votes, ties "
                  f"{100 * ds['tie_share']:.0f}%; {ds['source']}.", ""]
        if ds["has_truth"]:
            lines += ["| method | ties | cold s | warm s | peak MB | RMSE | max err | slope | "
                      "RMSE al. | cov | width | Spearman | Kendall |",
                      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        else:
            lines += ["| method | ties | cold s | warm s | peak MB | RMSE vs NUTS | width | "
                      "Spearman vs NUTS | Kendall vs NUTS |",
                      "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        notes = []
        for name, r in ds["methods"].items():
            ties = p["config"]["methods"][name]["ties"]
            if "skipped" in r or "error" in r:
                lines.append(f"| {name} | {ties} | " + " | ".join(
                    ["—"] * (11 if ds["has_truth"] else 7)) + " |")
                notes.append(f"- {name}: {r.get('skipped') or r.get('error')}")
                continue
            head = (f"| {name} | {ties} | {_f(r['cold_s'])} | {_f(r.get('warm_s'))} | "
                    f"{_f(r['peak_mb'], '{:.0f}')} | ")
            if ds["has_truth"]:
                a = r["accuracy"]
                lines.append(head + " | ".join([
                    _f(a.get("rmse"), "{:.1f}"), _f(a.get("max_abs_err"), "{:.1f}"),
                    _f(a["scale_slope"]), _f(a["rmse_aligned"], "{:.1f}"),
                    _f(a.get("coverage")), _f(a.get("mean_width"), "{:.1f}"),
                    _f(a["spearman"], "{:.4f}"), _f(a["kendall"], "{:.4f}")]) + " |")
            else:
                g = r.get("agreement", {})
                ref = name == REFERENCE
                lines.append(head + " | ".join([
                    "ref" if ref else _f(g.get("rmse_vs_ref"), "{:.1f}"),
                    _f(g.get("mean_width", _width(r)), "{:.1f}"),
                    "ref" if ref else _f(g.get("spearman_vs_ref"), "{:.3f}"),
                    "ref" if ref else _f(g.get("kendall_vs_ref"), "{:.3f}")]) + " |")
            extra = r.get("extra") or {}
            if "max_rhat" in extra:
                notes.append(f"- {name}: max R-hat {extra['max_rhat']:.3f}, min bulk ESS "
                             f"{extra['min_ess_bulk']:.0f}, divergences {extra['divergences']}")
        lines += ["", *notes, ""]
        for num, rows in ds["ratios"].items():
            lines += [f"Ratios {num} / anchor (< 1: bayesarena faster, smaller, more accurate):",
                      "", "| anchor | cold | warm | peak memory | RMSE | interval width |",
                      "|---|---:|---:|---:|---:|---:|"]
            for name, q in rows.items():
                lines.append(f"| {name} | {_f(q.get('cold'))} | {_f(q.get('warm'))} | "
                             f"{_f(q.get('peak_mb'))} | {_f(q.get('rmse'))} | "
                             f"{_f(q.get('mean_width'))} |")
            lines.append("")
    t = p["target_arena_vs_bootstrap"]
    lines += ["## Target: hierarchical `arena.toml` on 1M votes vs 100 bootstrap refits", "",
              "Bootstrap method, 100 refits, 1M votes (measured here): "
              + ("; ".join(f"{k}: cold {_f(v['cold_s'], '{:.1f}')} s, warm "
                           f"{_f(v['warm_s'], '{:.1f}')} s"
                           for k, v in t["bootstrap_at_1m"].items()) or "not run") + ".",
              f"`arena.toml` at 1M: {t['arena_toml_1m']}."]
    for stem, e in t["arena_toml_earlier_results"].items():
        lines.append(f"Earlier `benchmarks/arena_scaling.py` result (`results/{stem}.json`): "
                     f"{e['config']} -> fit {_f(e['fit_s'], '{:.0f}')} s.")
    if t["arena_run"]:
        a = t["arena_run"]
        ran = [n for n in ARENA_RUN if n in a]
        lines.append(f"This run (`--arena`, {a['n_models']} models x {a['n_votes']:,} votes, "
                     f"{a['categories']} categories): {', '.join(ran)}.")
        if "bootstrap-style" in a:
            lines += ["", "| method | cold (s) | Spearman, overall board | mean Spearman, "
                      "category boards | 95% coverage, overall | mean width (Elo) |",
                      "|---|---:|---:|---:|---:|---:|"]
            for name in [n for n in ARENA_RUN if n in a]:
                r = a[name]
                lines.append(f"| {name} | {_f(r.get('cold_s'), '{:.1f}')} | "
                             f"{_f(r.get('spearman_overall'), '{:.4f}')} | "
                             f"{_f(r.get('spearman_category_mean'), '{:.4f}')} | "
                             f"{_f(r.get('coverage_overall'), '{:.2f}')} | "
                             f"{_f(r.get('width_overall'), '{:.1f}')} |")
            style_s = a["bootstrap-style"].get("cold_s")
            for name, what in (("bayesarena-arena", "arena.toml's MCMC fit"),
                               ("bayesarena-arena-laplace", "its Laplace approximation")):
                arena_s = a.get(name, {}).get("cold_s")
                if arena_s and style_s:
                    lines += ["", f"Against the old method for the same boards "
                              "(`bootstrap-style`: the style-controlled board and one per "
                              f"category, 100 bootstrap refits each), {what} took "
                              f"{arena_s / style_s:.2f}x its time in this run."]
    if isinstance(t["met"], dict):  # this run compared the fits with the old method
        for name, ok in t["met"].items():
            lines.append(f"Target **met** by `{name}` in this run: faster than the old "
                         "method's boards (cold, both)." if ok else
                         f"Target **not met** by `{name}` in this run.")
    elif t["met"] is not None:
        boot = t["bootstrap_at_1m"]
        fast = min(v["warm_s"] or v["cold_s"] for v in boot.values())
        slow = max(v["cold_s"] for v in boot.values())
        full = t["arena_toml_earlier_results"]["arena_scaling"]["fit_s"]
        lines.append(f"Target **{'met' if t['met'] else 'not met'}**: 100 bootstrap refits at "
                     f"1M votes take {fast:.1f} s with the old method on pair counts and up to "
                     f"{slow:.0f} s as arena-rank ships them (a JAX L-BFGS per refit in a "
                     "process pool), and the hierarchical MCMC fit at 1M votes "
                     f"{full:.0f} s ({full / fast:.1f}x the former, {full / slow:.2f}x the "
                     "latter; `results/arena_scaling.json`, another run, on a machine "
                     "whose speed has varied by 1.7x between sessions, so the ratio is "
                     "approximate). The flat "
                     "`bt-davidson` NUTS fit is in the tables above.")
        same = next((RESULTS / f"{stem}.json" for stem in ("arena_vs_bootstrap_structured",
                                                            "arena_vs_bootstrap_laplace",
                                                            "arena_vs_bootstrap")
                     if (RESULTS / f"{stem}.json").exists()), None)
        if same is not None:
            run = json.loads(same.read_text())["target_arena_vs_bootstrap"]["arena_run"]
            arena_s, style_s = (run[n]["cold_s"] for n in ("bayesarena-arena",
                                                           "bootstrap-style"))
            lines.append(f"Measured in one run against the old method for the same boards "
                         f"(`results/{same.stem}.md`: style-controlled and per-category "
                         f"bootstrap boards): {arena_s:.0f} s against {style_s:.0f} s, "
                         f"{arena_s / style_s:.1f}x.")
            laplace_s = run.get("bayesarena-arena-laplace", {}).get("cold_s")
            if laplace_s:
                lines.append(f"The same model's Laplace fit (`method=\"laplace\"`) took "
                             f"{laplace_s:.0f} s, {laplace_s / style_s:.2f}x.")
        gpu_path = RESULTS / "arena_scaling_gpu.json"
        if gpu_path.exists():
            gpu = json.loads(gpu_path.read_text())
            refit = gpu.get("refit_s") or gpu["fit_s"]
            lines.append(f"On one GPU ({gpu['machine']['device']}, `results/arena_scaling_gpu."
                         f"json`, `benchmarks/gpu.sh`) the same fit took {gpu['fit_s']:.0f} s "
                         f"first in a process and {refit:.0f} s as a refit, {refit / slow:.2f}x "
                         "arena-rank's bootstrap on the 2 CPU cores: different machines, and "
                         "not the 2-core target.")
    return "\n".join(lines) + "\n"


def _width(r: dict) -> float | None:
    if r.get("lower") is None or r.get("scale") != "elo":
        return None
    return float(np.mean(np.asarray(r["upper"]) - np.asarray(r["lower"])))


def figure(p: dict, path: Path) -> None:
    """Accuracy against fit time (warm, or cold where there was no warm run), one column per
    simulated set: rating RMSE, Kendall's tau and the coverage of the 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sims = [d for d in p["datasets"] if d["has_truth"]]
    if not sims:
        return
    rows = (("rmse", "rating RMSE vs truth (Elo)"), ("kendall", "Kendall tau vs truth"),
            ("coverage", "coverage of 95% intervals"))
    fig, axes = plt.subplots(len(rows), len(sims), figsize=(max(4.8 * len(sims), 9.0), 11.0),
                             squeeze=False)
    colours = dict(zip(METHODS, plt.get_cmap("tab10").colors, strict=False))
    for col, ds in enumerate(sims):
        for name, r in ds["methods"].items():
            if "accuracy" not in r:
                continue
            t = r.get("warm_s") or r["cold_s"]
            a = r["accuracy"]
            marker = "o" if name.startswith("bayesarena") else "s"
            for row, (key, _) in enumerate(rows):
                y = a.get(key)
                hollow = key == "rmse" and y is None and "rmse_aligned" in a
                if hollow:  # openskill: its own scale, so the slope-aligned RMSE
                    y = a["rmse_aligned"]
                if y is None:
                    continue
                axes[row, col].scatter(t, y, marker=marker, s=55, color=colours.get(name),
                                       facecolors="none" if hollow else colours.get(name),
                                       label=name + (" (aligned RMSE)" if hollow else ""))
        for row, (key, ylab) in enumerate(rows):
            ax = axes[row, col]
            ax.set_xscale("log")
            ax.set_xlabel("fit time, s (warm; cold where not repeated)")
            ax.set_ylabel(ylab)
            ax.grid(alpha=0.3)
            if key == "coverage":
                ax.axhline(0.95, color="grey", ls="--", lw=1)
                ax.set_ylim(-0.02, 1.02)
        axes[0, col].set_title(ds["name"], fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.ravel()[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("bayesarena vs anchors on simulated arenas (Davidson ties; same run, same "
                 "votes)\nties-as-half methods: compressed scale, so high RMSE and low coverage")
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
