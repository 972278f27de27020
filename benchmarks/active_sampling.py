"""Does active pair selection save votes? Policies in the loop of a simulated arena.

Each run: an :class:`~bayesarena.arena_sim.ArenaSimulator` (LMArena-calibrated defaults, Davidson
ties at 25% with half of them both-bad) and one policy. Every policy starts from the same
warm-up votes (each model in two random pairs, so the comparison graph is connected), then
asks :func:`~bayesarena.policies.select_batch` for the next ``batch`` votes, which the
simulator casts with common random numbers (the ``k``-th vote on a pair has the same outcome
under every policy); the belief is refitted after every batch by the streaming Laplace update
(:mod:`bayesarena.online`, spec ``bt-davidson``). After each refit we record

* ``p_top5``: the posterior probability that the top-5 set is the true top 5 (1,000 draws);
* ``tau``: Kendall's tau between posterior-mean ranking and truth, and on the true bottom half;
* ``width``: the mean 95% interval width in Elo;
* ``min_votes``: the fewest votes any model has had (who is starved).

Votes needed: (i) the first refit with ``p_top5 >= 0.95``; (ii) the refit from which ``tau``
stays >= 0.9 to the end of the run; (iii) the first refit with ``width <= 52``. A run ends 25%
after all three are met or at the cap. Late entrant runs: one model is held back until
``late_after`` votes, then we count its votes-since-entry until the posterior puts it within one
rank of its true rank with probability >= 0.95.

The bound on (ii)-(iii): a vote on a pair with true gap ``d`` adds ``F(d) u u'`` to the
precision of theta, whose trace is ``2 F(d) <= 2 F(0)``, so with ``N`` votes
``mean var >= (n - 1)^2 / (n (prior + 2 N F(0)))`` (AM-HM on the ``n - 1`` identified
directions). Uniform pairing earns ``2 E_pairs F(d)`` per vote instead of the best ``2 F(0)``:
the ratio ``E F / F(0)`` is the most any policy can save on interval width (it needs at least
that fraction of uniform's votes). Reported per scenario.

Scale-out: runs are independent tasks on Dask (``--scheduler ADDRESS`` for a running cluster;
default a ``LocalCluster`` with one single-threaded worker per core); the results file records
the configuration and cluster.

    .venv/bin/python benchmarks/active_sampling.py --quick          # a smoke run
    .venv/bin/python benchmarks/active_sampling.py --seeds 20        # the full study
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = "bt-davidson"
THRESHOLDS = {"p_top5": 0.95, "tau": 0.9, "width": 52.0}
MAX_STORED_ROWS = 100
SCENARIOS = {
    "normal": {"crowded_top": 0},
    "crowded": {"crowded_top": 10, "crowded_gap": 8.0},
}
POLICIES: dict[str, str | dict[str, float]] = {
    "uniform": "uniform",
    "arena": "arena",
    "eig": "eig",
    "rank": "rank",
    "topk": "topk",
    "thompson": "thompson",
    "topk75+eig25": {"topk": 0.75, "eig": 0.25},
    "topk50+eig50": {"topk": 0.5, "eig": 0.5},
    "topk25+eig75": {"topk": 0.25, "eig": 0.75},
    # a finer sweep of the trade-off curve between the targeted and whole-ranking objectives
    "topk35+eig65": {"topk": 0.35, "eig": 0.65},
    "topk15+eig85": {"topk": 0.15, "eig": 0.85},
    "topk10+eig90": {"topk": 0.10, "eig": 0.90},
}
#: Score-level mixtures (``select_batch(combine="scores")``): every slot maximises
#: ``eig + w topk`` (nats about the strengths plus ``w`` times nats about the top-5 set)
#: instead of drawing one objective per slot as the mixtures above do.
SCORE_MIXTURES = {f"eig+{w:g}topk": {"eig": 1.0, "topk": w} for w in (0.5, 1, 2, 4)}
POLICIES.update(SCORE_MIXTURES)


#: Each worker runs one simulation on one core: XLA's and BLAS's own thread pools would
#: otherwise spin on every core from every worker. Measured on 2 cores with 2 workers (two
#: 200-model topk runs of 15 batches): 39-40 s per run without these settings, 7.5 s with
#: them. The malloc settings undo Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``: setting
#: it switches off glibc's dynamic mmap threshold, so every temporary array above 128 KiB (a
#: score vector over 19,900 pairs is 156 KiB) was mmapped, page-faulted and unmapped again;
#: a 200-model eig run then spent 3x its user time in the kernel (204 s instead of ~40 s).
#: ``bayesarena`` now raises the same thresholds itself when imported (:mod:`bayesarena.malloc`);
#: the variables here also cover what the worker allocates before that import.
#: Start the workers of an external cluster (``--scheduler``) with the same variables.
WORKER_ENV = {
    "XLA_FLAGS": ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 "
                  "--xla_force_host_platform_device_count=1"),
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(64 * 2**20),
}


def metrics(belief, theta_true: np.ndarray, rng: np.random.Generator, *, n_draws: int = 1000,
            late: int | None = None) -> dict[str, float]:
    """Accuracy of the belief against the truth (see the module docstring)."""
    from bayesarena.scale import ELO_PER_LOGIT

    draws = belief.sample(n_draws, rng)
    n = len(theta_true)
    true_top = np.sort(np.argsort(-theta_true)[:5])
    top = np.sort(np.argpartition(-draws, 5, axis=1)[:, :5], axis=1)
    bottom = np.argsort(-theta_true)[n // 2:]
    out = {
        "p_top5": float(np.all(top == true_top, axis=1).mean()),
        "tau": float(kendalltau(belief.mean, theta_true).statistic),
        "tau_bottom": float(kendalltau(belief.mean[bottom], theta_true[bottom]).statistic),
        "width": float(np.mean(2 * 1.959964 * np.sqrt(np.clip(np.diag(belief.cov), 0, None)))
                       * ELO_PER_LOGIT),
    }
    if late is not None:
        true_rank = int(np.sum(theta_true > theta_true[late])) + 1
        ranks = 1 + np.sum(draws > draws[:, [late]], axis=1)
        out["p_late_placed"] = float(np.mean(np.abs(ranks - true_rank) <= 1))
    return out


def run_one(policy: str, seed: int, n_models: int, scenario: str, *, batch: int, cap: int,
            floor: float = 0.0, late_after: int | None = None) -> dict:
    """One policy on one simulated arena; returns the trajectory and the votes needed."""
    import warnings

    from bayesarena import online
    from bayesarena.arena_sim import ArenaConfig, ArenaSimulator
    from bayesarena.policies import select_batch

    warnings.filterwarnings("ignore")
    late = late_after is not None
    cfg = ArenaConfig(n_models=n_models, late_models=1 if late else 0,
                      late_after=late_after or 0, late_top=10 if late else 0,
                      **SCENARIOS[scenario])
    sim = ArenaSimulator(cfg, seed=seed)
    theta = sim.theta
    warm = np.random.default_rng([seed, 11])  # the same warm-up for every policy
    avail = np.flatnonzero(sim.available())
    perm = warm.permutation(avail)
    a = np.concatenate([perm, warm.permutation(avail)])
    b = np.concatenate([np.roll(perm, 1), warm.permutation(avail)])
    keep = a != b
    votes = sim.vote(a[keep], b[keep])
    state = online.add_votes(online.init(sim.models, SPEC), votes.model_a, votes.model_b,
                             votes.outcome)
    rng = np.random.default_rng([seed, 23, sum(map(ord, policy))])
    metric_rng = np.random.default_rng([seed, 29])
    trajectory: list[dict] = []
    done_at: int | None = None
    entered_at = None
    t0 = time.perf_counter()
    while sim.n_votes < cap:
        available = sim.available()
        if late and entered_at is None and available[sim.late[0]]:
            entered_at = sim.n_votes
        chosen = select_batch(state.belief, batch, objective=POLICIES[policy], rng=rng,
                              floor=floor, top_k=5, exclude=~available,
                              combine="scores" if policy in SCORE_MIXTURES else "slots")
        votes = sim.vote(chosen.model_a, chosen.model_b)
        state = online.add_votes(state, votes.model_a, votes.model_b, votes.outcome)
        row = {"votes": sim.n_votes, "newton": state.newton_steps,
               **metrics(state.belief, theta, metric_rng, late=sim.late[0] if late else None)}
        per_model = np.zeros(n_models)
        i, j = state.belief.pairs()
        np.add.at(per_model, i, state.belief.pair_votes)
        np.add.at(per_model, j, state.belief.pair_votes)
        row["min_votes"] = int(per_model[available].min())
        if late:
            row["late_votes"] = int(per_model[sim.late[0]])
        trajectory.append(row)
        if late:
            if entered_at is not None and row["p_late_placed"] >= 0.95:
                break
            continue
        needed = votes_needed(trajectory)
        if done_at is None and all(v is not None for v in needed.values()):
            done_at = sim.n_votes
        if done_at is not None and sim.n_votes >= 1.25 * done_at:
            break
    out = {"policy": policy, "seed": seed, "n_models": n_models, "scenario": scenario,
           "batch": batch, "cap": cap, "floor": floor, "seconds": time.perf_counter() - t0,
           "trajectory": trajectory}
    if late:
        placed = [r for r in trajectory if r.get("p_late_placed", 0) >= 0.95
                  and entered_at is not None and r["votes"] > entered_at]
        out["late_after"] = late_after
        out["late_true_rank"] = int(np.sum(theta > theta[sim.late[0]]) + 1)
        out["late_votes_needed"] = placed[0]["late_votes"] if placed else None
        out["late_total_votes_needed"] = placed[0]["votes"] - entered_at if placed else None
    else:
        out["needed"] = votes_needed(trajectory)
    return out


def _run_key(run: dict) -> tuple:
    return (run["policy"], run["seed"], run["n_models"], run["scenario"], "late_after" in run)


def _load_for_extension(path: Path, args: argparse.Namespace) -> dict:
    """The stored results that ``--extend`` adds to, checked before any run starts: new runs
    are only paired with stored ones if they share the batch size and the cap."""
    if not path.exists():
        raise SystemExit(f"--extend: no results file {path} to extend")
    stored = json.loads(path.read_text())
    for n_models, batch, cap in zip(args.models, args.batch, args.cap, strict=True):
        for run in stored["runs"]:
            if run["n_models"] == n_models and (run["batch"], run["cap"]) != (batch, cap):
                raise SystemExit(
                    f"--extend: {path.name} ran {n_models} models with batch {run['batch']} "
                    f"and cap {run['cap']}, not {batch} and {cap}: the runs would not pair")
    return stored


def _extended(stored: dict, runs: list[dict], extension: dict) -> dict:
    """``stored`` with ``runs`` added; a new run replaces a stored run with the same key. The
    summary is recomputed by the caller from the stored votes-needed and final rows."""
    new_keys = {_run_key(r) for r in runs}
    kept = [r for r in stored["runs"] if _run_key(r) not in new_keys]
    result = {**stored, "runs": kept + runs,
              "wall_seconds": stored["wall_seconds"] + extension["wall_seconds"]}
    result["config"] = {**stored["config"],
                        "extensions": [*stored["config"].get("extensions", []), extension]}
    return result


def votes_needed(trajectory: list[dict]) -> dict[str, int | None]:
    """Votes at which each criterion is met (``None``: not within the run)."""
    def first(ok):
        hits = [r["votes"] for r in trajectory if ok(r)]
        return hits[0] if hits else None

    tau_ok = [r["tau"] >= THRESHOLDS["tau"] for r in trajectory]
    stays = None
    if tau_ok and tau_ok[-1]:
        k = len(tau_ok) - 1
        while k > 0 and tau_ok[k - 1]:
            k -= 1
        stays = trajectory[k]["votes"]
    return {"top5": first(lambda r: r["p_top5"] >= THRESHOLDS["p_top5"]),
            "tau": stays,
            "width": first(lambda r: r["width"] <= THRESHOLDS["width"])}


def fisher_bound(n_models: int, scenario: str, seed: int) -> dict[str, float]:
    """``E_pairs F(d) / F(0)`` for the simulated truth: the share of uniform's votes that
    the best conceivable policy still needs for the interval-width criterion."""
    from bayesarena.arena_sim import ArenaConfig, ArenaSimulator
    from bayesarena.belief import fisher_information, pair_indices
    from bayesarena.likelihood import OutcomeParams
    from bayesarena.scale import ELO_PER_LOGIT
    from bayesarena.spec import load_spec

    sim = ArenaSimulator(ArenaConfig(n_models=n_models, **SCENARIOS[scenario]), seed=seed)
    tr = sim.truth
    params = OutcomeParams(log_nu=tr.log_nu, bothbad_intercept=tr.bothbad_intercept,
                           bothbad_slope=tr.bothbad_slope)
    lik = load_spec(SPEC).likelihood
    i, j = pair_indices(n_models)
    d, m = tr.theta[i] - tr.theta[j], 0.5 * (tr.theta[i] + tr.theta[j])
    f_pairs = fisher_information(d, m, lik, params)
    f_best = float(fisher_information(np.zeros(1), m[:1] * 0, lik, params)[0])
    target_var = (THRESHOLDS["width"] / (2 * 1.959964 * ELO_PER_LOGIT)) ** 2
    n = n_models
    return {"mean_fisher_uniform": float(f_pairs.mean()), "fisher_max": f_best,
            "ratio": float(f_pairs.mean() / f_best),
            "min_votes_any_policy_width": float((n - 1) ** 2 / (n * target_var) / (2 * f_best)),
            "min_votes_uniform_width": float((n - 1) ** 2 / (n * target_var)
                                             / (2 * f_pairs.mean()))}


def summarise(runs: list[dict]) -> dict:
    """Median and 10-90% range of votes needed per policy, and paired per-seed ratios (seeds
    where neither policy met the criterion are left out of the ratio)."""
    out: dict = {}
    keys = sorted({(r["n_models"], r["scenario"], "late_after" in r) for r in runs})
    for n_models, scenario, late in keys:
        group = [r for r in runs if r["n_models"] == n_models and r["scenario"] == scenario
                 and ("late_after" in r) == late]
        label = f"{n_models} models, {scenario}{', late entrant' if late else ''}"
        crits = ["late"] if late else ["top5", "tau", "width"]
        table: dict = {}
        by = {(r["policy"], r["seed"]): r for r in group}
        for policy in POLICIES:
            seeds = sorted(s for p, s in by if p == policy)
            if not seeds:
                continue
            row: dict = {"seeds": len(seeds)}
            for c in crits:
                # a criterion not met within a run counts as met at the cap (censored): this
                # understates the advantage of a policy whose baseline did not get there
                vals = [_needed(by[(policy, s)], c) for s in seeds]
                capped = [by[(policy, s)]["cap"] if v is None else v
                          for s, v in zip(seeds, vals, strict=True)]
                row[c] = {"median": float(np.median(capped)),
                          "q10": float(np.percentile(capped, 10)),
                          "q90": float(np.percentile(capped, 90)),
                          "reached": sum(v is not None for v in vals)}
                for base in ("uniform", "arena"):
                    ratios = []
                    for s, mine in zip(seeds, capped, strict=True):
                        if (base, s) not in by:
                            continue
                        ref = _needed(by[(base, s)], c)
                        ref = by[(base, s)]["cap"] if ref is None else ref
                        if vals[seeds.index(s)] is None and _needed(by[(base, s)], c) is None:
                            continue  # neither got there: no information
                        ratios.append(mine / ref)
                    row[c][f"ratio_to_{base}"] = (
                        {"median": float(np.median(ratios)),
                         "q10": float(np.percentile(ratios, 10)),
                         "q90": float(np.percentile(ratios, 90)), "n": len(ratios)}
                        if ratios else None)
            final = [by[(policy, s)]["trajectory"][-1] for s in seeds]
            row["final_tau_bottom"] = float(np.median([f["tau_bottom"] for f in final]))
            row["final_min_votes"] = float(np.median([f["min_votes"] for f in final]))
            row["seconds"] = float(np.median([by[(policy, s)]["seconds"] for s in seeds]))
            table[policy] = row
        out[label] = table
    return out


def _needed(run: dict, crit: str) -> int | None:
    if not run:
        return None
    if crit == "late":
        return run.get("late_total_votes_needed")
    return run["needed"][crit]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _ratio(cell: dict | None) -> str:
    if not cell:
        return "-"
    return f"{cell['median']:.2f} ({cell['q10']:.2f}-{cell['q90']:.2f})"


def report(result: dict) -> str:
    """The results as Markdown: per scenario, votes needed and paired ratios per policy."""
    crit_names = {"top5": "(i) top-5 set, P >= 0.95", "tau": "(ii) Kendall tau stays >= 0.9",
                  "width": "(iii) mean 95% CrI <= 52 Elo", "late": "late entrant placed "
                  "within one rank, P >= 0.95 (votes since entry)"}
    cfg = result["config"]
    lines = ["# Active sampling benchmark", "",
             f"Generated by `benchmarks/active_sampling.py` ({len(result['runs'])} runs, "
             f"{result['wall_seconds']:.0f} s wall on {cfg['cluster']}); spec `{cfg['spec']}`, "
             "streaming Laplace refit after every batch. Votes needed: median over seeds "
             "(10th-90th percentile); a run that never met a criterion counts at its cap. "
             "Ratios are per seed, paired on the same truth and outcome stream, against "
             "uniform and the Chatbot Arena rule (Eq. 9); a ratio below 1 saves votes.", ""]
    for ext in cfg.get("extensions", []):
        studies = ([] if ext["no_main"] else [f"policies {', '.join(ext['policies_run'])}"]) + (
            [f"late entrant {', '.join(ext['late_policies'])}"] if ext["late"] else [])
        lines.append(f"- Extended at commit {(ext.get('commit') or '?')[:7]} with "
                     f"{ext['runs_added']} runs ({ext['wall_seconds']:.0f} s wall): "
                     f"{'; '.join(studies)}; same seeds, batch and cap, so every run stays "
                     "paired.")
    for label, bound in result.get("fisher_bound", {}).items():
        lines.append(f"- Fisher bound, {label}: uniform pairing earns "
                     f"{bound['ratio']:.0%} of the best possible information per vote, so "
                     f"no policy can need less than {bound['ratio']:.2f} x uniform's votes for "
                     f"(iii) (closed form: any policy >= {bound['min_votes_any_policy_width']:,.0f}"
                     f" votes, uniform ~ {bound['min_votes_uniform_width']:,.0f}).")
    for label, table in result["summary"].items():
        crits = ["late"] if "late" in label else ["top5", "tau", "width"]
        for c in crits:
            lines += ["", f"## {label}: {crit_names[c]}", "",
                      "| policy | votes needed | reached | / uniform | / arena |",
                      "|---|---:|---:|---:|---:|"]
            for policy, row in table.items():
                cell = row[c]
                lines.append(f"| {policy} | {_fmt(cell['median'])} ({_fmt(cell['q10'])}-"
                             f"{_fmt(cell['q90'])}) | {cell['reached']}/{row['seeds']} | "
                             f"{_ratio(cell['ratio_to_uniform'])} | "
                             f"{_ratio(cell['ratio_to_arena'])} |")
        lines += ["", f"## {label}: at the end of each run (medians)", "",
                  "| policy | tau, bottom half | fewest votes of any model | s per run |",
                  "|---|---:|---:|---:|"]
        for policy, row in table.items():
            lines.append(f"| {policy} | {row['final_tau_bottom']:.3f} | "
                         f"{row['final_min_votes']:,.0f} | {row['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    """Votes vs accuracy per policy (median over seeds) and the targeted/whole-ranking
    trade-off, one row per scenario."""
    from bayesarena.plots import plot_active_sampling, save

    save(plot_active_sampling(result), path)


def _git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--models", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--batch", type=int, nargs="+", default=[500, 2000],
                    help="votes per refit, one per --models entry")
    ap.add_argument("--cap", type=int, nargs="+", default=[60_000, 300_000],
                    help="vote cap per run, one per --models entry")
    ap.add_argument("--late", action="store_true", help="also run the late-entrant study")
    ap.add_argument("--late-seeds", type=int, default=None)
    ap.add_argument("--late-policies", nargs="+",
                    default=["uniform", "arena", "eig", "topk", "topk50+eig50"])
    ap.add_argument("--no-main", action="store_true", help="only the late-entrant study")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a "
                    "LocalCluster on this machine)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 30 models: a smoke run")
    ap.add_argument("--out", default="active_sampling")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the .md and .png from an existing results file")
    ap.add_argument("--extend", action="store_true",
                    help="add these runs to the existing results file --out (same seeds, "
                    "batch and cap: the runs stay paired); a run with the same policy, seed, "
                    "size, scenario and study replaces the stored one")
    args = ap.parse_args()
    if args.report_only:
        result = json.loads((RESULTS / f"{args.out}.json").read_text())
        (RESULTS / f"{args.out}.md").write_text(report(result))
        plot(result, RESULTS / f"{args.out}.png")
        return
    if args.quick:
        args.seeds, args.models, args.batch, args.cap = 3, [30], [300], [30_000]
    path = RESULTS / f"{args.out}.json"
    stored = _load_for_extension(path, args) if args.extend else None
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        client, cluster_desc = Client(args.scheduler), {"scheduler": args.scheduler}
    else:
        import dask

        # pre-spawn: glibc reads the malloc variables when the process starts, so they must be
        # in the environment the worker is spawned with (``env=`` is applied after start)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENV}):
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
        client = Client(cluster)
        cluster_desc = {"local_cluster": True, "workers": args.workers,
                        "threads_per_worker": 1, "worker_env": WORKER_ENV}
    tasks = []
    for n_models, batch, cap in zip(args.models, args.batch, args.cap, strict=True):
        for scenario in [] if args.no_main else args.scenarios:
            for seed in range(args.seeds):
                for policy in args.policies:
                    tasks.append(client.submit(run_one, policy, seed, n_models, scenario,
                                               batch=batch, cap=cap, pure=False))
        if args.late:
            for seed in range(args.late_seeds or args.seeds):
                for policy in args.late_policies:
                    tasks.append(client.submit(run_one, policy, seed, n_models, "normal",
                                               batch=batch, cap=cap,
                                               late_after=4 * n_models * 10, pure=False))
    t0 = time.perf_counter()
    from dask.distributed import as_completed
    from tqdm import tqdm

    runs = [f.result() for f in tqdm(as_completed(tasks), total=len(tasks), desc="runs")]
    wall = time.perf_counter() - t0
    config = {**{k: v for k, v in vars(args).items() if k != "quick"},
              # "policies": every definition (the plots' colours follow its order)
              "policies_run": args.policies, "thresholds": THRESHOLDS, "policies": POLICIES,
              "spec": SPEC,
              "cluster": cluster_desc, "commit": _git_commit(),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    for run in runs:  # the file keeps at most MAX_STORED_ROWS refits per run (and the last),
        # to 5 significant digits; the votes needed are computed from every refit first
        rows = run["trajectory"]
        stride = -(-len(rows) // MAX_STORED_ROWS)
        kept = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
        run["trajectory"] = [{k: float(f"{v:.5g}") if isinstance(v, float) else v
                              for k, v in row.items() if k != "newton"} for row in kept]
    bounds = {f"{n} models, {s}": fisher_bound(n, s, 0) for n in args.models
              for s in args.scenarios}
    if stored is not None:
        result = _extended(stored, runs, {**config, "wall_seconds": wall,
                                          "runs_added": len(runs)})
        result["fisher_bound"] = {**bounds, **stored.get("fisher_bound", {})}
    else:
        result = {"config": config, "wall_seconds": wall, "fisher_bound": bounds, "runs": runs}
        result["config"]["stored_trajectory"] = (
            f"at most {MAX_STORED_ROWS} refits per run and the last; the votes needed were "
            "computed from every refit")
    result["summary"] = summarise(result["runs"])
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, separators=(",", ":")))
    (RESULTS / f"{args.out}.md").write_text(report(result))
    plot(result, RESULTS / f"{args.out}.png")
    print(f"wrote {path} ({len(runs)} runs, {wall:.0f} s)")
    client.close()


if __name__ == "__main__":
    main()
