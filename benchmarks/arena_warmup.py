"""What NUTS's warmup does on the full arena model: leapfrog steps, step size, acceptance and
divergences for every warmup iteration of one chain.

At 150 models x 1M votes this shows where a fit's warmup time goes (``arena_warmup.json``:
the old start at the non-centred joint mode; ``arena_warmup_start.json``: the start of
``fit._refine_in_sampling_coordinates``; ``arena_warmup_seeds.json``: the same with the
scales' mass-matrix entries from ``arena_model.log_spread_information``). NumPyro keeps
the initial (Laplace-seeded) diagonal mass matrix until its first adaptation window closes;
with ``--warmup 40`` its short schedule (initial buffer 6, one slow window of 30, final
buffer 4) adapts the matrix once, after iteration 36, so the run shows the trees before and
after one update.

    .venv/bin/python benchmarks/arena_warmup.py --out start        # 150 models, 1M votes
    .venv/bin/python benchmarks/arena_warmup.py --init prior_median --out prior_median

Writes ``benchmarks/results/arena_warmup[_OUT].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import numpyro
from arena_size import add_size_arguments, simulate  # benchmarks/arena_size.py

import bayesarena as ba

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ("num_steps", "adapt_state.step_size", "accept_prob", "diverging")


class _WarmupOnly(Exception):
    """Raised after the warmup to stop ``fit`` before it samples."""


def record_warmup(store: dict) -> None:
    """Make ``MCMC.run`` run the warmup only, collecting :data:`FIELDS` per iteration into
    ``store`` (``fit`` calls ``MCMC.run``; ``MCMC.warmup`` itself calls ``run`` again)."""
    original = numpyro.infer.MCMC.run

    def run(self, rng_key, *args, init_params=None, extra_fields=(), **kwargs):
        if getattr(self, "_bayesarena_in_warmup", False):
            return original(self, rng_key, *args, init_params=init_params,
                            extra_fields=extra_fields, **kwargs)
        self._bayesarena_in_warmup = True
        t0 = time.perf_counter()
        self.warmup(rng_key, *args, init_params=init_params, collect_warmup=True,
                    extra_fields=FIELDS, **kwargs)
        extra = self.get_extra_fields()
        store["warmup_s"] = round(time.perf_counter() - t0, 1)
        store["iterations"] = [
            {"num_steps": int(s), "step_size": float(e), "accept_prob": float(a),
             "diverging": bool(d)}
            for s, e, a, d in zip(*(np.asarray(extra[f]).ravel() for f in FIELDS), strict=True)]
        raise _WarmupOnly

    numpyro.infer.MCMC.run = run


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--init", default="laplace", choices=("laplace", "prior_median"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    frame, _ = simulate(args, seed=args.seed)
    votes = ba.read_votes(frame)
    spec = ba.load_spec("arena").with_sampler(init=args.init)
    store: dict = {}
    record_warmup(store)
    t0 = time.perf_counter()
    try:
        ba.fit(votes, spec, seed=args.seed, chains=1, warmup=args.warmup, draws=1,
               chain_method="sequential", progress=False, warn=False)
    except _WarmupOnly:
        pass
    steps = np.array([it["num_steps"] for it in store["iterations"]])
    result = {
        "config": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "load_avg_at_end": os.getloadavg()},
        "setup_and_warmup_s": round(time.perf_counter() - t0, 1),
        "warmup_s": store["warmup_s"],
        "mean_steps": float(steps.mean()),
        "max_depth_iterations": int(np.sum(steps >= 1023)),
        "divergent_iterations": int(sum(it["diverging"] for it in store["iterations"])),
        "iterations": store["iterations"],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "iterations"}, indent=2,
                     default=float))
    RESULTS.mkdir(exist_ok=True)
    suffix = f"_{args.out}" if args.out else ""
    (RESULTS / f"arena_warmup{suffix}.json").write_text(json.dumps(result, indent=1,
                                                                   default=float))
    return result


if __name__ == "__main__":
    main()
