"""Sampling diagnostics after every fit: R-hat, bulk and tail ESS, divergences.

Thresholds follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC": rank-normalised
split R-hat <= 1.01 and bulk/tail ESS >= 400 (100 per chain for 4 chains). Any divergent
transition is reported, since it means the sampler missed part of the posterior. Computed with
ArviZ (arviz-stats) on the posterior DataTree.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import arviz_stats as azs
import numpy as np
import xarray as xr

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
    problems: list[str] = field(default_factory=list)

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


def _as_dataset(result: xr.Dataset | xr.DataTree) -> xr.Dataset:
    """ArviZ returns a DataTree for DataTree input: take its Dataset."""
    return result.to_dataset() if isinstance(result, xr.DataTree) else result


def compute_diagnostics(tree: xr.DataTree, var_names: list[str] | None = None) -> Diagnostics:
    """R-hat, bulk/tail ESS and divergences of a NUTS posterior; a Laplace posterior (independent
    draws from a Gaussian) reports its draw count only."""
    post = tree["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    method = str(tree.attrs.get("method", "nuts"))
    if method != "nuts":
        return Diagnostics(method=method, chains=chains, draws=draws)
    if var_names is None:
        var_names = [v for v in post.data_vars if not v.endswith("_z")]
    rhat = _as_dataset(azs.rhat(tree, var_names=var_names))
    ess_bulk = _as_dataset(azs.ess(tree, var_names=var_names, method="bulk"))
    ess_tail = _as_dataset(azs.ess(tree, var_names=var_names, method="tail"))
    max_rhat, worst_rhat = _worst(rhat, "max")
    min_bulk, worst_bulk = _worst(ess_bulk, "min")
    min_tail, worst_tail = _worst(ess_tail, "min")
    divergences = 0
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].data_vars:
        divergences = int(np.asarray(tree["sample_stats"]["diverging"].values).sum())
    problems = []
    if chains > 1 and max_rhat > RHAT_MAX:
        problems.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX} ({worst_rhat})")
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
        divergences=divergences, problems=problems,
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


def format_diagnostics(diag: Diagnostics) -> str:
    """One-paragraph text report."""
    if diag.method != "nuts":
        return (f"{diag.method}: {diag.draws} independent draws from the approximation "
                "(no MCMC diagnostics apply)")
    status = "OK" if diag.ok else "PROBLEMS: " + "; ".join(diag.problems)
    return (
        f"NUTS {diag.chains} chains x {diag.draws} draws | max R-hat {diag.max_rhat:.4f} "
        f"({diag.worst_rhat}) | min bulk ESS {diag.min_ess_bulk:.0f} ({diag.worst_ess_bulk}) | "
        f"min tail ESS {diag.min_ess_tail:.0f} ({diag.worst_ess_tail}) | divergences "
        f"{diag.divergences} | {status}"
    )
