"""Posterior predictive checks (bayesarena.ppc): calibrated on a well-specified fit, honest
about outcomes a spec does not model, sensitive to a missing position or category effect."""

from __future__ import annotations

import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

import bayesarena as ba
from bayesarena.fit import arena_for_spec
from bayesarena.posterior import Posterior, build_tree
from bayesarena.ppc import PPCResult, ppc
from bayesarena.simulate import simulate_hierarchical_arena
from bayesarena.spec import load_spec

SAMPLER = {"chains": 2, "warmup": 200, "draws": 300}


def quiet_fit(data, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ba.fit(data, spec, progress=False, warn=False, **kwargs)


@pytest.fixture(scope="module")
def votes():
    df, _ = ba.simulate_arena(10, 3000, seed=21)  # bt-davidson truth, 30% ties
    return ba.read_votes(df)


@pytest.fixture(scope="module")
def davidson(votes):
    return quiet_fit(votes, "bt-davidson", seed=1, **SAMPLER)


@pytest.mark.parametrize("with_votes", [True, False])
def test_well_specified_fit_passes(votes, davidson, with_votes):
    r = ppc(davidson, votes if with_votes else None, draws=400, seed=1)
    assert isinstance(r, PPCResult) and r.n_draws == 400
    assert r.units == ("votes" if with_votes else "cells")
    overall = r.overall.set_index("statistic")
    for stat in ("tie_rate", "bothbad_rate"):
        row = overall.loc[stat]
        assert row["lower"] <= row["observed"] <= row["upper"], row
        assert not row["flag"]
    assert ("first_shown_win_rate" in overall.index) == with_votes
    assert len(r.pairs) == 20 and r.pairs["votes"].is_monotonic_decreasing
    assert (r.pairs["p_value"] < 0.05).mean() <= 0.2
    assert (r.pairs["p_value"] >= 0).all() and (r.pairs["p_value"] <= 1).all()
    assert r.categories.empty  # no category column
    assert not r.flagged.shape[0] or r.flagged.shape[0] <= 1


def test_ties_not_modelled_are_reported(votes):
    bt = quiet_fit(votes, "bt", method="laplace", laplace_draws=300, seed=2)
    for data in (votes, None):
        r = ppc(bt, data, draws=200)
        assert any("ties were not modelled by spec 'bt'" in n for n in r.notes)
        tie = r.overall.set_index("statistic").loc["tie_rate"]
        assert np.isnan(tie["mean"]) and np.isnan(tie["p_value"]) and not tie["flag"]
        assert tie["note"] == "not modelled by this spec"
        assert tie["observed"] == pytest.approx(0.15, abs=0.03)  # ties without both-bad
        assert not r.pairs.empty  # decisive votes are still replicated


def test_half_win_ties_are_reported(votes):
    half = quiet_fit(votes, "bt-ties-half", method="laplace", laplace_draws=200, seed=2)
    r = ppc(half, votes, draws=200)
    assert any("half a win" in n for n in r.notes)
    assert np.isnan(r.overall.set_index("statistic").loc["tie_rate", "mean"])


def test_missing_position_effect_is_flagged():
    df, _ = simulate_hierarchical_arena(10, 3000, categories=0, n_voters=0, style=False,
                                        position=0.8, seed=5)
    votes = ba.read_votes(df)
    post = quiet_fit(votes, "bt-davidson", seed=3, **SAMPLER)
    r = ppc(post, votes, draws=400)
    row = r.overall.set_index("statistic").loc["first_shown_win_rate"]
    assert row["observed"] > row["upper"]
    assert row["p_value"] < 0.005 and row["flag"]
    assert "first_shown_win_rate" in set(r.flagged["statistic"])


def test_missing_category_effect_is_flagged():
    df, _ = simulate_hierarchical_arena(10, 3000, categories=3, n_voters=0, style=False,
                                        multi_tag=False, position=0.0, category_sd=250.0,
                                        seed=8)
    votes = ba.read_votes(df)
    post = quiet_fit(votes, "bt-davidson", method="laplace", laplace_draws=400, seed=3)
    r = ppc(post, votes, draws=400)
    assert len(r.categories) == 30  # 10 models x 3 categories
    assert r.categories["p_value"].is_monotonic_increasing
    assert r.categories["flag"].sum() >= 5
    assert (r.flagged["table"] == "categories").sum() == r.categories["flag"].sum()


def prior_posterior(votes, spec, n_draws=50, seed=0):
    """A Posterior of prior draws of a hierarchical spec: exercises the code paths cheaply."""
    from bayesarena.fit import _arena_model  # the model as fit builds it

    arena, _ = arena_for_spec(votes, spec)
    model, kwargs = _arena_model(arena, spec)
    samples = Predictive(model, num_samples=n_draws)(jax.random.PRNGKey(seed), **kwargs)
    tree = build_tree({k: np.asarray(v)[None] for k, v in samples.items()}, cells=arena.cells,
                      spec=spec, method="prior", seed=seed, arena=arena)
    return Posterior(tree)


def test_hierarchical_posterior_per_vote_and_per_cell():
    df, _ = simulate_hierarchical_arena(8, 1200, categories=3, n_voters=30, seed=4)
    votes = ba.read_votes(df)
    post = prior_posterior(votes, load_spec("arena"))
    per_vote = ppc(post, votes, draws=50, pairs=5)
    assert per_vote.units == "votes" and not per_vote.notes
    assert set(per_vote.overall["statistic"]) == {"tie_rate", "bothbad_rate",
                                                  "first_shown_win_rate"}
    assert set(per_vote.categories["category"]) == {"coding", "math", "creative_writing"}
    per_cell = ppc(post, draws=50, pairs=5)
    assert per_cell.units == "cells"
    assert any("discrimination kappa = 1" in n for n in per_cell.notes)
    assert set(per_cell.categories["category"]) == {"coding", "math", "creative_writing"}
    # tie and both-bad counts do not depend on voters or style: both routes agree in law
    a = per_vote.overall.set_index("statistic").loc["tie_rate", "mean"]
    b = per_cell.overall.set_index("statistic").loc["tie_rate", "mean"]
    assert a == pytest.approx(b, abs=0.02)


def test_figure_is_written(votes, davidson, tmp_path):
    r = ppc(davidson, votes, draws=200)
    fig = r.figure(tmp_path / "out" / "ppc.png")
    path = tmp_path / "out" / "ppc.png"
    assert path.exists() and path.stat().st_size > 10_000
    assert len(fig.axes) == 3
    import json

    json.dumps(r.to_dict())


def test_cli_ppc(votes, davidson, tmp_path):
    davidson.save(tmp_path / "post.nc")
    votes.to_pandas()[["model_a", "model_b", "outcome"]].replace(
        {"outcome": {"win_a": "model_a", "win_b": "model_b", "tie_bothbad": "tie (bothbad)"}}
    ).rename(columns={"outcome": "winner"}).to_csv(tmp_path / "votes.csv", index=False)
    r = subprocess.run([sys.executable, "-m", "bayesarena.cli", "ppc", "post.nc", "--data",
                        "votes.csv", "--figure", "out/ppc.png", "--draws", "200", "--pairs",
                        "5"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "tie_rate" in r.stdout and "first_shown_win_rate" in r.stdout
    assert (tmp_path / "out" / "ppc.png").stat().st_size > 10_000
    r = subprocess.run([sys.executable, "-m", "bayesarena.cli", "ppc", "missing.nc"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
