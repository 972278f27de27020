"""The chance level of the largest R-hat (bayesarena.diagnostics.rhat_chance_level)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import arviz_stats as azs
import numpy as np
import xarray as xr
from scipy import stats

from bayesarena.diagnostics import (
    RHAT_MAX,
    compute_diagnostics,
    draws_for_rhat,
    rhat_chance_level,
)


def _load_rhat_noise():
    """``benchmarks/rhat_noise.py``, whose stationary AR(1) chains (``ar1_chains``) sample
    their target perfectly with ESS per draw about ``(1 - rho) / (1 + rho)``."""
    spec = importlib.util.spec_from_file_location(
        "bayesarena_rhat_noise", Path(__file__).resolve().parents[1] / "benchmarks"
        / "rhat_noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ar1 = _load_rhat_noise().ar1_chains


def test_chance_level_is_the_median_of_the_largest_rhat():
    """In replicate sets of well-mixed chains, the largest R-hat falls below the level computed
    from that replicate's ESS about half the time: 30 replicates, 300 AR(1) parameters with ESS
    a third of the draws, 4 chains x 400 draws. The count below is Binomial(30, 1/2) if the
    level is the median; the bounds are its central 99.9% (in 40 replicates of 500 parameters
    the share was 0.65). Without the split halves (sequences = chains) the count fell to 2 of
    30; counting one test per parameter instead of two only moves it towards 0.7, inside."""
    rng = np.random.default_rng(7)
    below = 0
    for _ in range(30):
        x = xr.Dataset({"x": (("chain", "draw", "p"), _ar1(rng, 4, 400, 300, 0.5))})
        rhat = azs.rhat(x)["x"].values
        ess = azs.ess(x, method="bulk")["x"].values
        below += int(rhat.max() <= rhat_chance_level(ess, chains=4, draws=400))
    lo, hi = stats.binom.ppf([0.0005, 0.9995], 30, 0.5)
    assert lo <= below <= hi, below


def test_chance_level_falls_with_draws_and_rises_with_parameters():
    ess_per_draw = 4 / 3  # 4 chains, ESS a third of each chain's draws
    level = {(k, d): rhat_chance_level(np.full(k, ess_per_draw * d), 4, d)
             for k in (100, 7361) for d in (500, 1000, 2000)}
    assert level[7361, 500] > level[7361, 1000] > level[7361, 2000] > 1
    assert level[7361, 1000] > level[100, 1000]
    # the full-size arena's case (benchmarks/rhat_noise.py simulated 1.029, 1.012, 1.007)
    assert level[7361, 500] > RHAT_MAX > level[7361, 2000]
    needed = draws_for_rhat(np.full(7361, ess_per_draw * 500), 4, 500)
    assert 500 < needed < 2000
    at_needed = rhat_chance_level(np.full(7361, ess_per_draw * needed), 4, needed)
    assert abs(at_needed - RHAT_MAX) < 1e-4
    assert draws_for_rhat(np.full(10, 4000.0), 4, 1000) == 1000  # already below
    # variables that mix more slowly than the rest raise the level above one median for all
    fast, slow = np.full(5000, 3000.0), np.full(2000, 300.0)
    grouped = rhat_chance_level([fast, slow], 4, 1000)
    assert grouped > rhat_chance_level(np.concatenate([fast, slow]), 4, 1000)
    slow_alone = rhat_chance_level(slow, 4, 1000)
    all_slow = rhat_chance_level(np.full(7000, 300.0), 4, 1000)
    assert slow_alone - 1e-6 <= grouped < all_slow
    # chains of almost no information: no level to give
    assert rhat_chance_level(np.full(50, 0.05), 4, 100) == np.inf
    assert draws_for_rhat(np.full(50, 0.05), 4, 100) == 0


def test_rhat_problem_names_the_chance_level():
    """A fit whose worst R-hat is high says what noise alone would give and how many draws
    bring that under the threshold."""
    rng = np.random.default_rng(3)
    x = _ar1(rng, 4, 200, 3000, 0.5)
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"theta": (("chain", "draw", "p"), x)})})
    tree.attrs["method"] = "nuts"
    diag = compute_diagnostics(tree)
    assert diag.max_rhat > RHAT_MAX and diag.rhat_chance > RHAT_MAX
    assert diag.draws_for_rhat > 200
    message = next(p for p in diag.problems if p.startswith("R-hat"))
    assert f"{diag.rhat_chance:.3f}" in message and f"{diag.draws_for_rhat:,}" in message
