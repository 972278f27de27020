"""Speed of the full arena model (models/arena.toml) at LMArena scale.

Simulates 150 models x 10 categories x 1,000,000 votes with 100,000 voters (heavy-tailed votes
per voter), style features in LMArena's conv_metadata layout and multi-tag votes, writes them
to Parquet, reads them back, fits ``arena.toml`` with its sampler settings (4 chains; the
kernel the spec's ``"auto"`` picks, split HMC at this size, or ``--kernel``) and records: time
per stage, the sizes of the likelihood layout (cells, direction rows, parameters), diagnostics
(R-hat, bulk/tail ESS, divergences, leapfrog steps, acceptance, step size) and recovery
against the truth (coverage of strengths, category deviations and style coefficients, with a
joint check of the style coefficients). ``--refit`` fits a second time in the same process
(what a long-lived service pays once the programs are compiled); the machine block names the
JAX backend and device, so the same script measures a GPU (``benchmarks/gpu.sh``).

    .venv/bin/python benchmarks/arena_scaling.py                  # the full-size run
    .venv/bin/python benchmarks/arena_scaling.py --votes 100000 --models 50 --out small

Results go to ``benchmarks/results/arena_scaling[_OUT].json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py
from scipy import stats

import bayesarena as ba
from bayesarena.arena_data import arena_cells
from bayesarena.fit import resolve_chain_method
from bayesarena.spec import CHAIN_METHODS, KERNELS, METRICS

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--spec", default="arena")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--target-accept", type=float, default=None)
    parser.add_argument("--max-tree-depth", type=int, default=None,
                        help="NUTS's cap on tree doublings (default: the spec's)")
    parser.add_argument("--kernel", choices=KERNELS, default=None,
                        help="MCMC kernel in place of the spec's")
    parser.add_argument("--trajectory-length", type=float, default=None,
                        help="jittered HMC's integration time in place of the spec's")
    parser.add_argument("--trajectory-jitter", type=float, default=None,
                        help="jittered and split HMC's jitter j (T = T0 u, u ~ U(1 - j, 1 + j)) "
                             "in place of the spec's")
    parser.add_argument("--warmup-trajectory-scale", type=float, default=None,
                        help="jittered HMC's warmup integration time share in place of the spec's")
    parser.add_argument("--no-pool", action="store_true",
                        help="each chain keeps its own warmup adaptation (NumPyro's default)")
    parser.add_argument("--precision", choices=["double", "mixed"], default=None,
                        help="likelihood arithmetic during NUTS (default: the spec's)")
    parser.add_argument("--init-inflate", type=float, default=None,
                        help="scale of the chains' starting draws around the Laplace "
                             "approximation (bayesarena.fit.INIT_INFLATE, default 1.5)")
    parser.add_argument("--no-split", action="store_true",
                        help="sample the category deviations themselves, not per-model means "
                             "and contrasts (bayesarena.fit.SPLIT_CATEGORY_MEANS)")
    parser.add_argument("--chain-method", choices=CHAIN_METHODS, default=None,
                        help="how the chains run, in place of the spec's (auto: parallel on "
                             "the 4 virtual CPU devices, vectorized on one GPU)")
    parser.add_argument("--refit", action="store_true",
                        help="fit a second time in the same process (compiled programs in "
                             "memory) and record its time as refit_s")
    parser.add_argument("--metric", choices=METRICS, default=None,
                        help="mass matrix in place of the spec's (laplace: split HMC in the "
                             "coordinates the blocked Laplace approximation makes round)")
    parser.add_argument("--min-coupling", type=float, default=None,
                        help="smallest voter-global correlation the whitening keeps "
                             "(bayesarena.whitening.MIN_COUPLING; 0: all, the exact map)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    if args.init_inflate is not None:
        importlib.import_module("bayesarena.fit").INIT_INFLATE = args.init_inflate
    if args.min_coupling is not None:
        importlib.import_module("bayesarena.whitening").MIN_COUPLING = args.min_coupling
    if args.no_split:
        importlib.import_module("bayesarena.fit").SPLIT_CATEGORY_MEANS = False

    result: dict = {"config": vars(args), "machine": {
        "cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
        "bayesarena": ba.__version__, "jax": jax.__version__,
        "jax_backend": jax.default_backend(), "device": jax.devices()[0].device_kind}}
    t0 = time.perf_counter()
    frame, truth = simulate(args, seed=args.seed)
    result["simulate_s"] = round(time.perf_counter() - t0, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "votes.parquet"
        frame.to_parquet(path)
        del frame
        t0 = time.perf_counter()
        votes = ba.read_votes(path)
        spec = ba.load_spec(args.spec)
        spec = spec.with_sampler(pool_adaptation=not args.no_pool,
                                 precision=args.precision, max_tree_depth=args.max_tree_depth,
                                 kernel=args.kernel, trajectory_length=args.trajectory_length,
                                 trajectory_jitter=args.trajectory_jitter,
                                 warmup_trajectory_scale=args.warmup_trajectory_scale,
                                 metric=args.metric)
        arena = arena_cells(votes, spec)
        result["read_aggregate_s"] = round(time.perf_counter() - t0, 2)
        result["precision"] = spec.sampler.precision
        result["layout"] = {"cells": arena.cells.n_cells, "direction_rows": arena.n_rows,
                            "heavy_voters": len(arena.voters),
                            "tag_sets": len(arena.cells.categories)}
        result["chain_method"] = resolve_chain_method(args.chain_method or
                                                      spec.sampler.chain_method,
                                                      spec.sampler.chains)
        for key in ("fit_s", "refit_s") if args.refit else ("fit_s",):
            t0 = time.perf_counter()
            post = ba.fit(votes, spec, seed=args.seed, warmup=args.warmup, draws=args.draws,
                          target_accept=args.target_accept, chain_method=args.chain_method)
            result[key] = round(time.perf_counter() - t0, 2)
    tree = post.tree
    result["laplace_s"] = tree.attrs.get("laplace_s")
    result["refine_s"] = tree.attrs.get("refine_s")
    result["nuts_s"] = tree.attrs.get("nuts_s")
    result["diagnostics"] = post.diagnostics.to_dict()
    result["per_variable"] = per_variable_convergence(tree)
    result["kernel"] = tree.attrs.get("kernel", "nuts")
    result["metric"] = tree.attrs.get("metric", "diagonal")
    result["metric_coupling_rank"] = tree.attrs.get("metric_coupling_rank")
    steps = tree["sample_stats"]["n_steps"].values
    result["mean_leapfrog_steps"] = float(steps.mean())
    result["mean_leapfrog_steps_per_chain"] = [float(x) for x in steps.mean(axis=1)]
    result["mean_acceptance"] = float(tree["sample_stats"]["acceptance_rate"].mean())
    result["step_size_per_chain"] = [float(x) for x in
                                     tree["sample_stats"]["step_size"].values[:, 0]]
    result["parameters"] = int(sum(v.size // (v.shape[0] * v.shape[1])
                                   for v in (tree["posterior"][k].values
                                             for k in tree["posterior"].data_vars)))
    result["recovery"] = recovery(post, truth)
    print(json.dumps(result, indent=2, default=float))
    suffix = f"_{args.out}" if args.out else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"arena_scaling{suffix}.json").write_text(json.dumps(result, indent=2,
                                                                    default=float))
    return result


def per_variable_convergence(tree) -> dict:
    """Per posterior variable: its number of elements, median and minimum bulk ESS, and
    largest R-hat. The median ESS of each variable sets the R-hat chance level
    (:func:`bayesarena.diagnostics.rhat_chance_level`), so this shows which variables bind."""
    from bayesarena.diagnostics import diagnosed_variables, per_parameter

    post = tree["posterior"].to_dataset()
    names = diagnosed_variables(post)
    rhat, bulk, _ = per_parameter(post, names)
    return {v: {"size": int(bulk[v].size), "ess_bulk_median": float(np.median(bulk[v].values)),
                "ess_bulk_min": float(np.min(bulk[v].values)),
                "rhat_max": float(np.max(rhat[v].values))}
            for v in names if bulk[v].size and np.all(np.isfinite(bulk[v].values))}


def recovery(post: ba.Posterior, truth) -> dict:
    """Share of true values inside the 95% intervals, and rating error in Elo points."""
    def cover(draws: np.ndarray, true: np.ndarray) -> float:
        lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
        return float(np.mean((lo <= true) & (true <= hi)))

    theta = post.theta_draws()
    out = {"theta_coverage": cover(theta, truth.theta),
           "theta_rmse_elo": float(np.sqrt(np.mean((theta.mean(0) - truth.theta) ** 2))
                                   * ba.scale.ELO_PER_LOGIT)}
    p = post.tree["posterior"]
    if "category_deviation" in p.data_vars:
        order = [list(truth.categories).index(c) for c in post.categories]
        d = p["category_deviation"].transpose("chain", "draw", "model", "category").values
        out["delta_coverage"] = cover(d.reshape(-1, *d.shape[2:]), truth.delta[:, order])
    if "style_coef" in p.data_vars:
        b = p["style_coef"].values.reshape(-1, p["style_coef"].shape[-1])
        true = np.asarray(truth.style_coef)
        out["style_coef_coverage"] = cover(b, true)
        # posterior mean minus truth in posterior sds, per feature: a bias shows as a pattern
        out["style_coef_z"] = [float(z) for z in (b.mean(0) - true) / b.std(0)]
        out["style_coef_mean"] = [float(m) for m in b.mean(0)]
        out["style_coef_true"] = [float(t) for t in true]
        # the joint check: the coefficients' posteriors correlate (longer answers carry more
        # markdown), so misses come in pairs; (mean - truth)' Cov^-1 (mean - truth) is about
        # chi^2 with one degree of freedom per feature when the intervals are calibrated
        gap = b.mean(0) - true
        distance = float(gap @ np.linalg.solve(np.atleast_2d(np.cov(b.T)), gap))
        out["style_coef_mahalanobis2"] = distance
        out["style_coef_joint_p"] = float(stats.chi2.sf(distance, len(true)))
    return out


if __name__ == "__main__":
    main()
