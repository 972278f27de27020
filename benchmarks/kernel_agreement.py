"""Do NUTS and jittered (or split) HMC sample the same arena posterior?

Simulates an arena (default 50 models x 10 categories x 100k votes, 10k voters, style,
multi-tag votes: ``benchmarks/arena_size.py``), fits ``models/arena.toml`` twice on the same
votes with the same seed, once with ``kernel = "nuts"`` and once with ``"jittered_hmc"``
(:mod:`bayesarena.jittered_hmc`; or the kernels ``--kernels`` names, e.g. ``nuts split_hmc``,
:mod:`bayesarena.split_hmc`; every other setting the spec's), and compares every
posterior mean (strengths, category deviations and scales, voters' discrimination and scale,
style coefficients, position, ties):

    z = (mean_a - mean_b) / sqrt(mcse_a^2 + mcse_b^2)

with ArviZ's Monte Carlo standard errors. If both chains sample the posterior, each ``z`` is
about standard normal: the record holds the sd of the ``z``, the shares beyond 2 and 3 (4.6%
and 0.27% expected) and the largest ``|z|`` against the median of the largest of ``K``
independent ``|N(0, 1)|`` (``K`` the number of elements), with each fit's time and diagnostics.

    .venv/bin/python benchmarks/kernel_agreement.py [--models 50 --votes 100000 --seed 1]
        [--kernels nuts split_hmc --out split]

Writes ``benchmarks/results/kernel_agreement.json`` (``kernel_agreement_{out}.json`` with
``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py
from arviz_stats import mcse
from scipy import stats

import bayesarena as ba
from bayesarena.spec import KERNELS

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.set_defaults(models=50, votes=100_000, voters=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kernels", nargs=2, choices=KERNELS, default=["nuts", "jittered_hmc"])
    parser.add_argument("--out", default="", help="results file suffix")
    args = parser.parse_args(argv)
    frame, _ = simulate(args, seed=args.seed)
    spec = ba.load_spec("arena")
    fits, result = {}, {"config": vars(args), "fits": {}}
    for kernel in args.kernels:
        t0 = time.perf_counter()
        post = ba.fit(frame, spec.with_sampler(kernel=kernel), seed=args.seed, warn=False)
        result["fits"][kernel] = {
            "fit_s": round(time.perf_counter() - t0, 2),
            "sampling_s": post.tree.attrs.get("nuts_s"),
            "mean_leapfrog_steps": float(post.tree["sample_stats"]["n_steps"].mean()),
            "step_size": float(post.tree["sample_stats"]["step_size"].median()),
            "diagnostics": post.diagnostics.to_dict()}
        fits[kernel] = post.tree["posterior"]
    a, b = (fits[k] for k in args.kernels)
    names = [n for n in a.data_vars if not n.endswith(("_z", "_centred"))]
    z = {n: ((a[n].mean(("chain", "draw")) - b[n].mean(("chain", "draw")))
             / np.hypot(mcse(a[n]), mcse(b[n]))).values.ravel() for n in names}
    every = np.concatenate(list(z.values()))
    k = every.size
    # median of the largest of k |N(0,1)|: P(|Z| <= m)^k = 1/2
    expected_max = float(stats.norm.ppf(0.5 + 0.5 * 0.5 ** (1.0 / k)))
    result["agreement"] = {
        "elements": int(k), "sd_z": float(every.std()),
        "share_abs_z_over_2": float(np.mean(np.abs(every) > 2)),
        "share_abs_z_over_3": float(np.mean(np.abs(every) > 3)),
        "max_abs_z": float(np.abs(every).max()), "expected_max_abs_z": expected_max,
        "max_abs_z_by_variable": {n: float(np.abs(v).max()) for n, v in z.items()}}
    print(json.dumps(result, indent=2, default=float))
    RESULTS.mkdir(exist_ok=True)
    suffix = f"_{args.out}" if args.out else ""
    (RESULTS / f"kernel_agreement{suffix}.json").write_text(
        json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
