"""NUTS's tree-depth cap, and jittered HMC, on a round posterior: draws per gradient at 15
leapfrog steps against NUTS's own choice and against HMC with a jittered integration time, on
a standard normal of the full arena model's dimension.

After the mass matrix, the full arena posterior (``models/arena.toml``, 150 models x 10
categories x 1M votes: 7,361 parameters) is nearly a standard normal: warmup settles on a
step size of 0.156 for an acceptance of 0.8, and a standard normal of that dimension allows
about 0.19 (leapfrog's energy error grows as ``d eps^4``; at 0.156 NumPyro's acceptance
statistic on it is 0.87). This script samples that standard normal with the same step
size, 4 chains in parallel, with NUTS's default cap (1,023 steps; it takes 31, since the
half-period ``pi / eps`` is about 20 steps and trees double) and with the cap at 15
(``max_tree_depth = 4``, three quarters of a half-period), and records steps per draw,
acceptance, and the bulk ESS of ``x`` and of ``x^2`` and the tail ESS of ``x`` (medians and
minima over the first 1,000 coordinates). The same step size then drives
:class:`bayesarena.jittered_hmc.JitteredHMC` (integration time ``T0 u``, ``u ~ U(0.5, 1.5)``)
for ``T0`` = 1.2, 1.6 (the specs' default, about a quarter period) and 2.0.

    .venv/bin/python benchmarks/tree_depth.py [--dim 7361 --step-size 0.156]

Writes ``benchmarks/results/tree_depth.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import arviz_stats as azs
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpyro.infer import MCMC, NUTS

import bayesarena  # noqa: F401  (x64 and the 4 virtual host devices)
from bayesarena.jittered_hmc import JitteredHMC

RESULTS = Path(__file__).resolve().parent / "results"


def run(dim: int, step_size: float, max_tree_depth: int | None, draws: int, seed: int,
        trajectory_length: float | None = None) -> dict:
    """Sample ``N(0, I_dim)`` with a fixed step size and identity mass matrix: NUTS with
    ``max_tree_depth``, or jittered HMC with ``trajectory_length`` (jitter 0.5)."""
    def potential(z):
        return 0.5 * jnp.sum(z["x"] ** 2)

    fixed = dict(potential_fn=potential, step_size=step_size, adapt_step_size=False,
                 adapt_mass_matrix=False)
    if trajectory_length is None:
        kernel = NUTS(max_tree_depth=max_tree_depth, **fixed)
    else:
        kernel = JitteredHMC(trajectory_length=trajectory_length, jitter=0.5, **fixed)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=draws, num_chains=4,
                chain_method="parallel", progress_bar=False)
    init = {"x": jnp.asarray(np.random.default_rng(seed).normal(size=(4, dim)))}
    mcmc.run(jax.random.PRNGKey(seed), init_params=init,
             extra_fields=("num_steps", "accept_prob"))
    extra = mcmc.get_extra_fields()
    x = xr.DataArray(np.asarray(mcmc.get_samples(group_by_chain=True)["x"])[:, :, :1000],
                     dims=("chain", "draw", "coordinate"))
    ess = {name: np.asarray(azs.ess(values, method="bulk", sample_dims=["chain", "draw"]))
           for name, values in (("x", x), ("x_squared", x**2))}
    tail = np.asarray(azs.ess(x, method="tail", sample_dims=["chain", "draw"]))
    max_rhat = float(np.max(np.asarray(azs.rhat(x, sample_dims=["chain", "draw"]))))
    steps = float(np.asarray(extra["num_steps"]).mean())
    smallest = min(np.min(ess["x"]), np.min(ess["x_squared"]), np.min(tail))
    return {"kernel": "nuts" if trajectory_length is None else "jittered_hmc",
            "max_tree_depth": max_tree_depth, "trajectory_length": trajectory_length,
            "mean_steps": steps,
            "mean_accept": float(np.asarray(extra["accept_prob"]).mean()),
            "draws": 4 * draws,
            **{f"ess_bulk_{k}_median": float(np.median(v)) for k, v in ess.items()},
            **{f"ess_bulk_{k}_min": float(np.min(v)) for k, v in ess.items()},
            "ess_tail_x_median": float(np.median(tail)), "ess_tail_x_min": float(np.min(tail)),
            "max_rhat": max_rhat,
            "ess_x_squared_min_per_1000_gradients": float(
                1000 * np.min(ess["x_squared"]) / (steps * 4 * draws)),
            "ess_smallest_per_1000_gradients": float(1000 * smallest / (steps * 4 * draws))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=7361)
    parser.add_argument("--step-size", type=float, default=0.156)
    parser.add_argument("--draws", type=int, default=400, help="per chain")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = {"config": vars(args),
              "runs": [run(args.dim, args.step_size, depth, args.draws, args.seed)
                       for depth in (10, 4)]
              + [run(args.dim, args.step_size, None, args.draws, args.seed, length)
                 for length in (1.2, 1.6, 2.0)]}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tree_depth.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
