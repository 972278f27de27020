"""Run LMArena's ``arena-rank`` on a votes file and write its ratings and intervals as JSON.

This script runs inside the throwaway environment that ``benchmarks/compare_anchors.py``
creates for ``arena-rank`` (it pins old ``jax``/``numpy`` versions, so it is never a
dependency of bayesarena); it imports nothing from bayesarena. It uses only arena-rank's
public API as its README shows it: ``PairDataset.from_pandas(df)`` (ties and both-bad votes
count as half a win for each side: its default outcome map), ``BradleyTerry(n_competitors)``
and ``compute_ratings_and_cis(dataset, significance_level=0.05, ci_method=...)`` with
``ci_method="sandwich"`` (the Bradley-Terry MLE by L-BFGS with sandwich / robust standard
errors) or ``"bootstrap"`` (``num_bootstrap`` multinomial resamples of the pair counts, each
refitted, fitted in a ``multiprocessing`` pool).

arena-rank's bootstrap pool uses Python's default start method, ``fork`` on Linux before
Python 3.14; forking a process in which JAX has started its threads deadlocks (seen here: the
pool workers sat at 0% CPU for 10 minutes on 100,000 votes), so this driver sets the start
method to ``spawn`` (``--start-method``) before it calls arena-rank.

    python arena_rank_driver.py VOTES.parquet OUT.json --ci sandwich [--no-warm]

Timings in the output: ``import_s`` (importing arena-rank and JAX), ``load_s`` (reading the
votes into pandas, not part of the fit), ``cold_s`` (the first fit in this fresh process, from
the DataFrame to ratings and intervals, JAX compilation included) and ``warm_s`` (the same
again in this process, on a new model object).
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version


def vm_hwm_mb() -> float | None:
    """This process's peak resident memory (``VmHWM`` in /proc/self/status), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("votes", help="Parquet or CSV with model_a, model_b, winner")
    parser.add_argument("out", help="where to write the JSON result")
    parser.add_argument("--ci", choices=("sandwich", "bootstrap"), default="sandwich")
    parser.add_argument("--num-bootstrap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=-1, help="bootstrap pool size (-1: all)")
    parser.add_argument("--start-method", default="spawn",
                        choices=("spawn", "forkserver", "fork"),
                        help="multiprocessing start method for the bootstrap pool")
    parser.add_argument("--no-warm", action="store_true", help="skip the second, warm fit")
    args = parser.parse_args()

    import multiprocessing as mp

    mp.set_start_method(args.start_method, force=True)
    t0 = time.perf_counter()
    import pandas as pd
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    read = pd.read_parquet if args.votes.endswith(".parquet") else pd.read_csv
    votes = read(args.votes, columns=["model_a", "model_b", "winner"])
    load_s = time.perf_counter() - t0

    def run() -> dict:
        dataset = PairDataset.from_pandas(votes)
        model = BradleyTerry(n_competitors=len(dataset.competitors))
        kwargs = {"num_bootstrap": args.num_bootstrap, "seed": args.seed,
                  "n_jobs": args.n_jobs} if args.ci == "bootstrap" else {}
        return model.compute_ratings_and_cis(dataset, significance_level=0.05,
                                             ci_method=args.ci, **kwargs)

    t0 = time.perf_counter()
    res = run()
    cold_s = time.perf_counter() - t0
    warm_s = None
    if not args.no_warm:
        t0 = time.perf_counter()
        res = run()
        warm_s = time.perf_counter() - t0

    out = {
        "models": [str(m) for m in res["competitors"]],
        "rating": [float(x) for x in res["ratings"]],
        "lower": [float(x) for x in res["rating_lower"]],
        "upper": [float(x) for x in res["rating_upper"]],
        "import_s": import_s, "load_s": load_s, "cold_s": cold_s, "warm_s": warm_s,
        "start_method": args.start_method, "vm_hwm_mb": vm_hwm_mb(),
        "versions": {p: version(p) for p in ("arena-rank", "jax", "numpy", "pandas")},
    }
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
