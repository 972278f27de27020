"""What partial pooling buys: per-category ratings from one pooled fit vs separate fits.

LMArena publishes a category board by refitting Bradley-Terry on the votes of that category
alone. With few votes for a model in a category that board is noisy. The arena model's
categories component (``theta + delta[:, c]``, ``delta[:, c] ~ ZeroSumNormal(tau_c)``) lets a
sparse (model, category) borrow strength from the model's overall rating.

Design per seed: 30 models, 6 categories (one tag per vote), 30,000 votes, rating spread 100
Elo, category deviations 40 Elo; then for 30% of the (model, category) pairs only 10% of the
votes involving that model in that category are kept (the "sparse" cells). Both methods see the
same votes:

* pooled: one NUTS fit of Davidson ties + both-bad + categories (``models/bt-davidson.toml``
  plus ``[categories] enabled = true``);
* separate: one ``bt-davidson`` NUTS fit per category on that category's votes.

Per category, ratings are centred over models (a board fixes only differences) and compared
with the true centred category ratings ``theta + delta[:, c]``: RMSE in Elo points, over all
(model, category) pairs and over the sparse and the dense ones, and 95% interval coverage.

    .venv/bin/python benchmarks/pooling.py              # 5 seeds
    .venv/bin/python benchmarks/pooling.py --seeds 2    # quicker

Writes ``benchmarks/results/pooling.json`` and ``pooling.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesarena as ba
from bayesarena.errors import SamplingWarning
from bayesarena.scale import ELO_PER_LOGIT
from bayesarena.simulate import simulate_hierarchical_arena
from bayesarena.spec import load_spec, parse_spec

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLER = {"chains": 4, "warmup": 400, "draws": 500}


def sparse_arena(seed: int, n_models: int, n_categories: int, n_votes: int,
                 sparse_share: float, keep: float) -> tuple[pd.DataFrame, object, np.ndarray]:
    """Votes with some (model, category) pairs thinned; returns votes, truth, sparse mask."""
    frame, truth = simulate_hierarchical_arena(
        n_models, n_votes, categories=n_categories, n_voters=0, style=False, multi_tag=False,
        seed=seed, category_sd=40.0, position=0.0)
    rng = np.random.default_rng(10_000 + seed)
    sparse = rng.random((n_models, n_categories)) < sparse_share
    model_index = {m: k for k, m in enumerate(truth.models)}
    cat_index = {c: k for k, c in enumerate(truth.categories)}
    a = frame.model_a.map(model_index).to_numpy()
    b = frame.model_b.map(model_index).to_numpy()
    c = frame.category.map(cat_index).to_numpy()
    thinned = sparse[a, c] | sparse[b, c]
    kept = ~thinned | (rng.random(len(frame)) < keep)
    return frame[kept].reset_index(drop=True), truth, sparse


def centred_category_draws(post: ba.Posterior, category: str | None, models) -> np.ndarray:
    draws = post.strength_draws(category)
    order = [post.models.index(m) for m in models]
    draws = draws[:, order]
    return (draws - draws.mean(axis=1, keepdims=True)) * ELO_PER_LOGIT


def evaluate(draws: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared error of the posterior mean and interval coverage per model."""
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return (draws.mean(axis=0) - true) ** 2, (lo <= true) & (true <= hi)


def run_seed(seed: int, args: argparse.Namespace) -> dict:
    frame, truth, sparse = sparse_arena(seed, args.models, args.categories, args.votes,
                                        args.sparse_share, args.keep)
    models, categories = list(truth.models), list(truth.categories)
    true = truth.theta[:, None] + truth.delta
    true = (true - true.mean(axis=0)) * ELO_PER_LOGIT  # centred per category, Elo
    base = load_spec("bt-davidson")
    pooled_spec = parse_spec({"name": "bt-davidson-categories",
                              "likelihood": {"ties": "davidson", "both_bad": "modelled"},
                              "categories": {"enabled": True}})
    out = {"seed": seed, "votes": len(frame), "sparse_pairs": int(sparse.sum())}
    errors = {"pooled": np.zeros_like(true), "separate": np.full_like(true, np.nan)}
    covers = {"pooled": np.zeros(true.shape, bool), "separate": np.zeros(true.shape, bool)}
    t0 = time.perf_counter()
    pooled = ba.fit(frame, pooled_spec, seed=seed, progress=False, **SAMPLER)
    out["pooled_s"] = round(time.perf_counter() - t0, 1)
    out["pooled_diagnostics_ok"] = pooled.diagnostics.ok
    for c, name in enumerate(categories):
        errors["pooled"][:, c], covers["pooled"][:, c] = evaluate(
            centred_category_draws(pooled, name, models), true[:, c])
    t0 = time.perf_counter()
    separate_ok = True
    for c, name in enumerate(categories):
        sub = frame[frame.category == name]
        post = ba.fit(sub, base, seed=seed, progress=False, **SAMPLER)
        separate_ok &= post.diagnostics.ok
        present = [m for m in models if m in post.models]
        idx = [models.index(m) for m in present]
        draws = centred_category_draws(post, None, present)
        # a model absent from a category's votes has no rating on that board
        true_c = true[idx, c] - true[idx, c].mean()
        errors["separate"][idx, c], covers["separate"][idx, c] = evaluate(draws, true_c)
    out["separate_s"] = round(time.perf_counter() - t0, 1)
    out["separate_diagnostics_ok"] = bool(separate_ok)
    for method in ("pooled", "separate"):
        err, cov = errors[method], covers[method]
        for label, mask in (("all", np.ones_like(sparse)), ("sparse", sparse),
                            ("dense", ~sparse)):
            out[f"{method}_rmse_{label}"] = float(np.sqrt(np.nanmean(err[mask])))
            out[f"{method}_coverage_{label}"] = float(cov[mask].mean())
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--votes", type=int, default=30_000)
    parser.add_argument("--sparse-share", type=float, default=0.3)
    parser.add_argument("--keep", type=float, default=0.1)
    args = parser.parse_args(argv)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # recorded per fit instead
        for seed in range(args.seeds):
            rows.append(run_seed(seed, args))
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    summary = {k: float(table[k].median()) for k in table.columns
               if "rmse" in k or "coverage" in k}
    ratio = (table.pooled_rmse_sparse / table.separate_rmse_sparse)
    summary["sparse_rmse_ratio_pooled_over_separate_median"] = float(ratio.median())
    summary["sparse_rmse_ratio_min_max"] = [float(ratio.min()), float(ratio.max())]
    result = {"config": vars(args), "sampler": SAMPLER, "seeds": rows, "summary": summary}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pooling.json").write_text(json.dumps(result, indent=2))
    lines = ["| ratings (Elo RMSE, median over seeds) | pooled fit | separate fits |",
             "|---|---:|---:|"]
    for label in ("all", "sparse", "dense"):
        lines.append(f"| {label} (model, category) pairs | {summary[f'pooled_rmse_{label}']:.1f} "
                     f"| {summary[f'separate_rmse_{label}']:.1f} |")
    for label in ("all", "sparse", "dense"):
        lines.append(f"| 95% coverage, {label} | {summary[f'pooled_coverage_{label}']:.2f} | "
                     f"{summary[f'separate_coverage_{label}']:.2f} |")
    (RESULTS / "pooling.md").write_text(
        f"Command: `.venv/bin/python benchmarks/pooling.py --seeds {args.seeds}`\n\n"
        + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
