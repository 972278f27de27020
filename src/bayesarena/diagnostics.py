"""Sampling diagnostics after every fit: R-hat, bulk and tail ESS, divergences.

Thresholds follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC": rank-normalised
split R-hat <= 1.01 and bulk/tail ESS >= 400 (100 per chain for 4 chains). Any divergent
transition is reported, since it means the sampler missed part of the posterior. Computed by
:mod:`bayesarena.convergence` (the same formulas as ``arviz_stats``, over all parameters at once;
tail ESS at the paper's 5% and 95% quantiles).

With thousands of parameters the largest R-hat exceeds 1.01 by Monte Carlo noise alone at
a few hundred draws (the full arena model has 7,361). The R-hat problem therefore says where
noise alone would put the largest value (:func:`rhat_chance_level`) and how many draws per
chain bring that under 1.01 (:func:`draws_for_rhat`): a worst R-hat near that level asks for
more draws; one far above it asks for a look at the chains.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr
from scipy import optimize, stats

from bayesarena.convergence import convergence
from bayesarena.errors import SamplingWarning

RHAT_MAX = 1.01
ESS_MIN = 400.0


@dataclass(frozen=True)
class Diagnostics:
    """Summary of one fit's sampling health (worst values over every parameter)."""

    method: str
    chains: int
    draws: int
    max_rhat: float = float("nan")
    worst_rhat: str = ""
    min_ess_bulk: float = float("nan")
    worst_ess_bulk: str = ""
    min_ess_tail: float = float("nan")
    worst_ess_tail: str = ""
    divergences: int = 0
    # the largest R-hat that Monte Carlo noise alone gives (median over replicate fits) for
    # these parameters at their ESS, and the draws per chain that bring it to RHAT_MAX
    rhat_chance: float = float("nan")
    draws_for_rhat: int = 0
    problems: list[str] = field(default_factory=list)
    kernel: str = "nuts"  # the MCMC kernel: "nuts", "jittered_hmc" or "split_hmc"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return asdict(self)


def _worst(ds: xr.Dataset, pick: str) -> tuple[float, str]:
    """Worst value over all variables and coordinates, with a readable label."""
    best_val, best_label = (-np.inf if pick == "max" else np.inf), ""
    for name, da in ds.data_vars.items():
        values = np.asarray(da.values, dtype=float)
        if values.size == 0 or np.all(np.isnan(values)):
            continue
        flat = np.nanargmax(values) if pick == "max" else np.nanargmin(values)
        val = float(values.reshape(-1)[flat])
        if (pick == "max" and val > best_val) or (pick == "min" and val < best_val):
            label = str(name)
            if da.ndim:
                idx = np.unravel_index(flat, values.shape)
                coords = [str(da[dim].values[i]) for dim, i in zip(da.dims, idx, strict=True)]
                label += "[" + ", ".join(coords) + "]"
            best_val, best_label = val, label
    return best_val, best_label


def rhat_chance_level(ess_bulk: np.ndarray | Sequence[np.ndarray], chains: int, draws: int,
                      quantile: float = 0.5) -> float:
    """The value the largest R-hat of many parameters reaches by Monte Carlo noise alone.

    Split R-hat (Vehtari et al. 2021) cuts each chain in two: ``M = 2 chains`` sequences of
    ``N = draws / 2``. With ``W`` the mean within-sequence variance and ``B / N`` the variance
    of the sequence means, ``R^2 = (N - 1) / N + B / (N W)``; for chains that sample the
    posterior (stationary, no trend) the sequence means are independent with variance
    ``sigma^2 / n``, ``n = ESS / M``, so ``B / (N W) ~ chi2_{M-1} / ((M - 1) n)``. ArviZ's
    R-hat is the larger of the rank-normalised bulk and folded values: two nearly independent
    tests per parameter. The largest of the parameters' R-hats then stays at or below ``r``
    with probability ``prod_k (1 - P_k(R > r))^2``; this returns the ``r`` at which that is
    ``quantile`` (the median by default), treating parameters as independent.

    ``ess_bulk``: the bulk ESS of every parameter, as one array or as one array per group (a
    posterior's variables). Each parameter is given its group's median ESS: a single estimate
    is noisy, and the smallest are small partly by chance, so per-parameter values put the
    level too high (in 83% of simulated replicates the largest R-hat stayed below it, against
    65% with the median; 40 replicates of 4 chains x 400 draws of 500 AR(1) series with ESS a
    third of the draws), while one median for all would ignore that some variables mix more
    slowly than others. Checked in ``tests/test_diagnostics.py``; for 7,361 parameters with ESS
    a third of the draws it gives 1.025 at 500 draws per chain and 1.012 at 1,000, against
    1.029 and 1.012 simulated (``benchmarks/rhat_noise.py``).
    """
    groups = _ess_groups(ess_bulk)
    if not groups or chains < 1 or draws < 4:
        return float("nan")
    return _chance_level(groups, chains, draws, quantile)


def _ess_groups(ess_bulk: np.ndarray | Sequence[np.ndarray]) -> list[tuple[float, int]]:
    """``(median ESS, number of parameters)`` per group, finite positive values only."""
    arrays = [ess_bulk] if isinstance(ess_bulk, np.ndarray) else list(ess_bulk)
    groups = []
    for values in arrays:
        values = np.asarray(values, dtype=float).ravel()
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            groups.append((float(np.median(values)), int(values.size)))
    return groups


def _chance_level(groups: list[tuple[float, int]], chains: int, draws: float,
                  quantile: float = 0.5) -> float:
    """:func:`rhat_chance_level` for groups of ``(ESS, count)`` parameters (``draws`` may be
    fractional, for :func:`draws_for_rhat`'s root search): ``m = 2 chains`` split sequences of
    ``n = draws / 2``."""
    m, n = 2 * chains, draws / 2

    def log_all_below(r: float) -> float:
        total = 0.0
        for ess, k in groups:
            tail = stats.chi2.logsf((m - 1) * ess / m * (r * r - (n - 1) / n), m - 1)
            total += 2 * k * float(np.log1p(-np.exp(min(tail, -1e-300))))
        return total - np.log(quantile)

    if log_all_below(10.0) < 0:  # ESS of a few draws: no useful level
        return float("inf")
    return float(optimize.brentq(log_all_below, 1.0, 10.0, xtol=1e-6))


def draws_for_rhat(ess_bulk: np.ndarray | Sequence[np.ndarray], chains: int, draws: int,
                   target: float = RHAT_MAX) -> int:
    """Draws per chain at which :func:`rhat_chance_level` falls to ``target``, with every
    parameter's ESS growing in proportion to the draws (``draws`` if it is there already; 0
    when the ESS is too small to say)."""
    groups = _ess_groups(ess_bulk)
    if not groups or chains < 1 or draws < 4:
        return 0
    return _draws_for(groups, chains, draws, _chance_level(groups, chains, draws), target)


def _draws_for(groups: list[tuple[float, int]], chains: int, draws: int, level: float,
               target: float = RHAT_MAX) -> int:
    """:func:`draws_for_rhat` given the chance ``level`` at ``draws``."""
    if not np.isfinite(level):
        return 0
    if level <= target:
        return int(draws)
    grow = optimize.brentq(
        lambda g: _chance_level([(e * g, k) for e, k in groups], chains, g * draws) - target,
        1.0, 1e4, xtol=1e-4)
    return int(np.ceil(draws * grow))


def diagnosed_variables(post: xr.Dataset) -> list[str]:
    """The posterior variables the health check covers: all but the non-centred ``*_z``
    sites, whose scaled versions are diagnosed instead."""
    return [v for v in post.data_vars if not v.endswith("_z")]


def per_parameter(post: xr.Dataset, var_names: Sequence[str]
                  ) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """R-hat, bulk ESS and tail ESS of every element of ``var_names``, one Dataset each (the
    variables' own dims and coordinates), from one pass of :func:`convergence` over all of
    them stacked as columns."""
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    arrays = [post[v].transpose("chain", "draw", ...) for v in var_names]
    if not arrays:
        return xr.Dataset(), xr.Dataset(), xr.Dataset()
    stacked = np.concatenate([np.asarray(a.values, dtype=float).reshape(chains, draws, -1)
                              for a in arrays], axis=2)
    result = convergence(stacked)
    out: tuple[dict, dict, dict] = ({}, {}, {})
    start = 0
    for name, a in zip(var_names, arrays, strict=True):
        dims, shape = a.dims[2:], a.shape[2:]
        size = int(np.prod(shape, dtype=int))
        coords = {d: a.coords[d] for d in dims if d in a.coords}
        for target, values in zip(out, result, strict=True):
            target[name] = xr.DataArray(values[start:start + size].reshape(shape), dims=dims,
                                        coords=coords)
        start += size
    return tuple(xr.Dataset(d) for d in out)


def compute_diagnostics(tree: xr.DataTree, var_names: list[str] | None = None) -> Diagnostics:
    """R-hat, bulk/tail ESS and divergences of an MCMC posterior (NUTS, jittered or split HMC;
    the method is called ``"nuts"`` with any); a Laplace posterior (independent draws from a
    Gaussian) reports its draw count only."""
    post = tree["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    method = str(tree.attrs.get("method", "nuts"))
    if method != "nuts":
        return Diagnostics(method=method, chains=chains, draws=draws)
    if var_names is None:
        var_names = diagnosed_variables(post)
    rhat, ess_bulk, ess_tail = per_parameter(post, var_names)
    max_rhat, worst_rhat = _worst(rhat, "max")
    min_bulk, worst_bulk = _worst(ess_bulk, "min")
    min_tail, worst_tail = _worst(ess_tail, "min")
    divergences = 0
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].data_vars:
        divergences = int(np.asarray(tree["sample_stats"]["diverging"].values).sum())
    problems = []
    # the R-hat chance level from each variable's bulk ESS, computed once for both figures
    groups = _ess_groups([np.asarray(v.values) for v in ess_bulk.data_vars.values()])
    chance = (_chance_level(groups, chains, draws) if groups and chains > 1 and draws >= 4
              else float("nan"))
    needed = _draws_for(groups, chains, draws, chance) if chance > RHAT_MAX else draws
    if chains > 1 and max_rhat > RHAT_MAX:
        noise = ""
        if np.isfinite(chance):
            n_params = sum(k for _, k in groups)
            noise = (f"; Monte Carlo noise alone would put the largest of these "
                     f"{n_params:,} R-hats near {chance:.3f}")
            if needed > draws:
                noise += f", under {RHAT_MAX} from about {needed:,} draws per chain"
        problems.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX} ({worst_rhat}{noise})")
    if min_bulk < ESS_MIN:
        problems.append(f"bulk ESS {min_bulk:.0f} < {ESS_MIN:.0f} ({worst_bulk})")
    if min_tail < ESS_MIN:
        problems.append(f"tail ESS {min_tail:.0f} < {ESS_MIN:.0f} ({worst_tail})")
    if divergences:
        problems.append(f"{divergences} divergent transition(s)")
    return Diagnostics(
        method=method, chains=chains, draws=draws,
        max_rhat=max_rhat, worst_rhat=worst_rhat,
        min_ess_bulk=min_bulk, worst_ess_bulk=worst_bulk,
        min_ess_tail=min_tail, worst_ess_tail=worst_tail,
        divergences=divergences, rhat_chance=chance, draws_for_rhat=needed,
        problems=problems, kernel=str(tree.attrs.get("kernel", "nuts")),
    )


def warn_if_unhealthy(diag: Diagnostics) -> None:
    """Emit a loud :class:`SamplingWarning` naming every failed threshold."""
    if diag.problems:
        warnings.warn(
            "SAMPLING PROBLEMS: " + "; ".join(diag.problems)
            + ". Do not trust these results: run longer (more warmup/draws), raise "
            "target_accept, or reparametrise.",
            SamplingWarning,
            stacklevel=3,
        )


#: How reports name the MCMC kernels.
KERNEL_NAMES = {"nuts": "NUTS", "jittered_hmc": "jittered HMC", "split_hmc": "split HMC"}


def format_diagnostics(diag: Diagnostics) -> str:
    """One-paragraph text report."""
    if diag.method != "nuts":
        return (f"{diag.method}: {diag.draws} independent draws from the approximation "
                "(no MCMC diagnostics apply)")
    status = "OK" if diag.ok else "PROBLEMS: " + "; ".join(diag.problems)
    return (
        f"{KERNEL_NAMES.get(diag.kernel, diag.kernel)} {diag.chains} chains x {diag.draws} "
        f"draws | max R-hat {diag.max_rhat:.4f} "
        f"({diag.worst_rhat}) | min bulk ESS {diag.min_ess_bulk:.0f} ({diag.worst_ess_bulk}) | "
        f"min tail ESS {diag.min_ess_tail:.0f} ({diag.worst_ess_tail}) | divergences "
        f"{diag.divergences} | {status}"
    )
