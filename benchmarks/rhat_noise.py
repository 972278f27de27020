"""How large the largest R-hat gets by chance alone when thousands of parameters are checked.

Every NUTS fit warns when any parameter's (rank-normalised split) R-hat exceeds 1.01. With
thousands of parameters the largest value is an extreme of Monte Carlo noise even when every
chain mixes perfectly: this draws 4 chains of independent AR(1) series (autocorrelation
``rho``, so ESS per draw is about ``(1 - rho) / (1 + rho)``), computes ArviZ's R-hat for each
of ``--params`` series and reports the largest value and how many exceed 1.01, for several
chain lengths. The full-size arena fit has 7,361 parameters and ESS per draw of about 0.37 on
its worst parameter (``results/arena_scaling.json``); ``rho = 0.5`` gives 0.33.

    .venv/bin/python benchmarks/rhat_noise.py          # 7,361 parameters, rho 0 and 0.5

Writes ``benchmarks/results/rhat_noise.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import arviz_stats as azs
import numpy as np
import xarray as xr

RESULTS = Path(__file__).resolve().parent / "results"


def ar1_chains(rng: np.random.Generator, chains: int, draws: int, params: int,
               rho: float) -> np.ndarray:
    """Stationary AR(1) series with unit variance, shape ``(chains, draws, params)``."""
    noise = rng.normal(size=(chains, draws, params))
    out = np.empty_like(noise)
    out[:, 0] = noise[:, 0]
    for t in range(1, draws):
        out[:, t] = rho * out[:, t - 1] + np.sqrt(1.0 - rho**2) * noise[:, t]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=7361)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--rho", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    runs = []
    for rho in args.rho:
        for draws in args.draws:
            x = ar1_chains(rng, args.chains, draws, args.params, rho)
            rhat = azs.rhat(xr.DataArray(x, dims=("chain", "draw", "param"))).values
            runs.append({"rho": rho, "draws": draws, "max_rhat": float(rhat.max()),
                         "share_above_1.01": float(np.mean(rhat > 1.01)),
                         "n_above_1.01": int(np.sum(rhat > 1.01)),
                         "q99_9": float(np.quantile(rhat, 0.999))})
            print(json.dumps(runs[-1]))
    result = {"config": vars(args), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rhat_noise.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
