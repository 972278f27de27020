"""A small simulation-based calibration (benchmarks/sbc.py) and a negative control showing the
check has power. The full runs (1,000 simulations of each pairwise spec, 200 of the arena
spec: benchmarks/results/sbc.md) are the benchmark's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SBC_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "sbc.py"


def _load_sbc():
    if "bayesarena_sbc" in sys.modules:
        return sys.modules["bayesarena_sbc"]
    spec = importlib.util.spec_from_file_location("bayesarena_sbc", SBC_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bayesarena_sbc"] = module
    spec.loader.exec_module(module)
    return module


sbc = _load_sbc()

N_SIMS = 30
#: 5 models, 40 votes a pair, one chain, L = 19 draws (ranks 0..19), 5 bins.
CONFIG = sbc.TEST_CONFIG
GROSS = 0.001  # family-wise level, Bonferroni over a spec's quantities


@pytest.fixture(scope="module")
def calibrated():
    return {name: sbc.run_sbc(name, N_SIMS, CONFIG, seed=0, progress=False)
            for name in ("bt-davidson", "bt")}


@pytest.mark.parametrize("name", ["bt-davidson", "bt"])
def test_no_quantity_grossly_non_uniform(calibrated, name):
    result = calibrated[name]
    assert result.ranks.shape == (N_SIMS, len(result.quantities))
    assert result.ranks.min() >= 0 and result.ranks.max() <= CONFIG.n_draws
    outcome = {"log_nu", "bothbad_intercept", "bothbad_slope"} if name == "bt-davidson" else set()
    assert {"sigma", "loglik", *outcome} <= set(result.quantities)
    assert not {"tie_threshold"} & set(result.quantities)
    assert sum(q.startswith("rank[") for q in result.quantities) == CONFIG.n_models
    threshold = GROSS / len(result.quantities)
    p = {q: sbc.chi2_pvalue(result.ranks[:, k], CONFIG.n_ranks, CONFIG.bins)
         for k, q in enumerate(result.quantities)}
    bad = {q: v for q, v in p.items() if v <= threshold}
    assert not bad, f"{name}: grossly non-uniform ranks {bad} (threshold {threshold:.2g})"


def test_negative_control_wider_prior_is_detected(calibrated):
    """Truths drawn with sigma ~ HalfNormal(3) but fitted with the spec's HalfNormal(1): the
    posterior of sigma is pulled below the truth, so its ranks pile up at the top. At 30
    simulations the ECDF test detects it (p < 0.001 for each of 12 seeds tried); the 5-bin
    chi-square is weaker (p < 0.001 for 8 of those 12), so it only has to reach 0.05."""
    wrong = sbc.run_sbc("bt-davidson", N_SIMS, CONFIG, seed=0, progress=False,
                        truth_spec=sbc.scaled_prior("bt-davidson", "sigma", 3.0))
    sigma = wrong.ranks[:, wrong.quantities.index("sigma")]
    p_ecdf, deviation = sbc.ecdf_test(sigma, CONFIG.n_ranks)
    assert p_ecdf < GROSS, f"wider truth prior not detected: ECDF p = {p_ecdf:.3g}"
    assert deviation > 0.25
    assert sbc.chi2_pvalue(sigma, CONFIG.n_ranks, CONFIG.bins) < 0.05
    assert sigma.mean() > 0.6 * CONFIG.n_draws
    # the same seeds under the right prior pass (the control differs only in the prior)
    right = calibrated["bt-davidson"]
    right_sigma = right.ranks[:, right.quantities.index("sigma")]
    assert sbc.ecdf_test(right_sigma, CONFIG.n_ranks)[0] > 0.01
    assert sbc.chi2_pvalue(right_sigma, CONFIG.n_ranks, CONFIG.bins) > 0.01


def test_rank_statistic_breaks_ties_uniformly():
    rng = np.random.default_rng(0)
    draws = np.array([1, 2, 2, 2, 3])  # truth 2: 1 below, 3 equal -> ranks 1..4
    ranks = np.array([sbc.rank_statistic(2, draws, rng) for _ in range(4000)])
    assert set(np.unique(ranks)) == {1, 2, 3, 4}
    assert np.allclose(np.bincount(ranks, minlength=5)[1:] / 4000, 0.25, atol=0.03)
    assert sbc.rank_statistic(0.5, np.array([1.0, 2.0]), rng) == 0
    assert sbc.rank_statistic(9.0, np.array([1.0, 2.0]), rng) == 2


def test_model_ranks():
    theta = np.array([[0.3, -1.0, 0.7], [0.0, 0.2, -0.2]])
    assert sbc.model_ranks(theta).tolist() == [[2, 3, 1], [2, 1, 3]]


def test_uniformity_tests_accept_uniform_and_reject_skewed_ranks():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 100, size=200)
    assert sbc.chi2_pvalue(uniform, 100, 10) > 0.01
    p_ecdf, dev = sbc.ecdf_test(uniform, 100)
    assert p_ecdf > 0.01 and dev < 0.15
    skewed = np.minimum(rng.integers(0, 100, size=200), rng.integers(0, 100, size=200))
    assert sbc.chi2_pvalue(skewed, 100, 10) < 1e-6
    p_ecdf, dev = sbc.ecdf_test(skewed, 100)
    assert p_ecdf < 0.001 and dev > 0.15
    # too narrow a posterior: ranks at both ends (a U shape)
    u_shape = np.where(rng.random(200) < 0.5, rng.integers(0, 15, size=200),
                       rng.integers(85, 100, size=200))
    assert sbc.chi2_pvalue(u_shape, 100, 10) < 1e-6
    assert sbc.ecdf_test(u_shape, 100)[0] < 0.001
