"""bayesarena.convergence: the vectorised R-hat and ESS agree with arviz_stats's per-parameter
loop (the reference implementation of Vehtari et al. 2021) on every kind of column."""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesarena.convergence import TAIL_PROBS, average_ranks, convergence
from bayesarena.diagnostics import compute_diagnostics


def ar1(rng: np.random.Generator, chains: int, draws: int, phis: np.ndarray) -> np.ndarray:
    """AR(1) chains ``x_t = phi x_{t-1} + e_t``, one column per ``phi``."""
    x = np.empty((chains, draws, len(phis)))
    x[:, 0] = rng.normal(size=(chains, len(phis)))
    for t in range(1, draws):
        x[:, t] = phis * x[:, t - 1] + rng.normal(size=(chains, len(phis)))
    return x


def awkward_columns(rng: np.random.Generator, chains: int, draws: int) -> np.ndarray:
    """Columns that take every branch of Geyer's sequences and of the rank transform:
    independent, positively and negatively autocorrelated (the initial positive sequence
    stops at once), near-random-walk (it runs to the end), constant, tied values, chains
    stuck at different levels."""
    x = ar1(rng, chains, draws, np.array([0.0, 0.5, 0.9, 0.99, -0.5, -0.9]))
    return np.concatenate([x, np.ones((chains, draws, 1)), np.round(x[:, :, :1]),
                           x[:, :, :1] + np.arange(chains)[:, None, None]], axis=2)


def reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    da = xr.DataArray(x, dims=("chain", "draw", "p"))
    rhat = (azs.rhat(da).values if x.shape[0] > 1 else np.full(x.shape[2], np.nan))
    return (rhat, azs.ess(da, method="bulk").values,
            azs.ess(da, method="tail", prob=TAIL_PROBS).values)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # arviz_stats on the constant column
@pytest.mark.parametrize(("chains", "draws"),
                         [(4, 400), (4, 401), (2, 10), (4, 4), (4, 5), (1, 50), (3, 7)])
def test_matches_arviz_stats(chains, draws):
    x = awkward_columns(np.random.default_rng(chains * 1000 + draws), chains, draws)
    ours = convergence(x)
    for name, got, want in zip(("rhat", "ess_bulk", "ess_tail"), ours, reference(x),
                               strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True, err_msg=name)
    if chains > 1:
        assert np.isfinite(ours.rhat[:6]).all()  # the non-constant columns have an R-hat


def test_nan_and_too_few_draws():
    x = np.random.default_rng(0).normal(size=(4, 50, 3))
    x[1, 7, 1] = np.nan
    out = convergence(x)
    assert np.isnan([out.rhat[1], out.ess_bulk[1], out.ess_tail[1]]).all()
    assert np.isfinite([out.rhat[0], out.ess_bulk[2]]).all()
    short = convergence(x[:, :3])
    assert np.isnan(short.rhat).all() and np.isnan(short.ess_bulk).all()
    with pytest.raises(ValueError, match="chain, draw, parameter"):
        convergence(x[0])


def test_blocks_and_threads_change_nothing(monkeypatch):
    """Columns are split into blocks that run in threads: the result is the same as one
    block's."""
    x = ar1(np.random.default_rng(3), 4, 200, np.linspace(-0.5, 0.95, 11))
    whole = convergence(x)
    monkeypatch.setattr("bayesarena.convergence.BLOCK", 3)
    for a, b in zip(whole, convergence(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_average_ranks_match_scipy():
    y = np.round(np.random.default_rng(1).normal(size=(20, 300)), 1)  # many ties
    np.testing.assert_array_equal(average_ranks(y), stats.rankdata(y, axis=1))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_compute_diagnostics_names_the_worst_parameter():
    """On a posterior with labelled coordinates, the worst R-hat and ESS are those of
    arviz_stats and carry the parameter's label."""
    rng = np.random.default_rng(4)
    theta = ar1(rng, 4, 300, np.array([0.2, 0.3, 0.97]))
    theta[1] += np.array([0.0, 0.0, 2.0])  # chain 1 of model c stuck elsewhere
    sigma = np.exp(ar1(rng, 4, 300, np.array([0.6]))[:, :, 0])
    post = xr.Dataset({"theta": (("chain", "draw", "model"), theta),
                       "sigma": (("chain", "draw"), sigma)},
                      coords={"model": ["a", "b", "c"]})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs["method"] = "nuts"
    diag = compute_diagnostics(tree)
    ref_rhat = azs.rhat(post["theta"]).values
    assert diag.worst_rhat == "theta[c]"
    assert diag.max_rhat == pytest.approx(ref_rhat.max(), rel=1e-9)
    bulk = np.append(azs.ess(post["theta"], method="bulk").values,
                     azs.ess(post["sigma"], method="bulk").values)
    assert diag.min_ess_bulk == pytest.approx(bulk.min(), rel=1e-9)
    assert diag.worst_ess_bulk == "theta[c]"
    assert any("R-hat" in p for p in diag.problems)
