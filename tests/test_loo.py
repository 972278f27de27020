"""PSIS-LOO with one vote per observation (bayesarena.loo).

The per-vote log-likelihood is cross-checked against both likelihood code paths (the cell
model and the arena model's factor), the atom weighting against ArviZ on the expanded votes,
and the comparison against a simulated truth; then the CLI."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import warnings

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpyro import handlers
from numpyro.infer import Predictive

import bayesarena as ba
from bayesarena import loo as L
from bayesarena.errors import InputError
from bayesarena.fit import arena_for_spec, cells_for_spec, pad_cells
from bayesarena.likelihood import OutcomeParams, cell_log_likelihood
from bayesarena.numpyro_model import cell_log_probs, pairwise_model
from bayesarena.posterior import Posterior, build_tree
from bayesarena.simulate import simulate_hierarchical_arena
from bayesarena.spec import load_spec, parse_spec

SAMPLER = {"chains": 2, "warmup": 200, "draws": 300}


def quiet_fit(data, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ba.fit(data, spec, progress=False, warn=False, **kwargs)


def prior_posterior(votes, spec, n_draws=4, seed=0):
    """A Posterior holding prior draws (every site, internal ones included), the model
    function and its arguments: enough to evaluate both likelihood paths at the same draw."""
    if spec.hierarchical:
        arena, _ = arena_for_spec(votes, spec)
        cells = arena.cells
        model, kwargs = arena_model_and_arguments(arena, spec)
    else:
        arena = None
        cells, _ = cells_for_spec(ba.aggregate(votes), spec)
        model = functools.partial(pairwise_model, n_models=cells.n_models, spec=spec)
        kwargs = pad_cells(cells)
    samples = Predictive(model, num_samples=n_draws)(jax.random.PRNGKey(seed), **kwargs)
    samples = {k: np.asarray(v) for k, v in samples.items()}
    tree = build_tree({k: v[None] for k, v in samples.items()}, cells=cells, spec=spec,
                      method="prior", seed=seed, arena=arena)
    return Posterior(tree), samples, model, kwargs, cells


def arena_model_and_arguments(arena, spec):
    """The arena model function and its arguments, built as ``fit`` builds them."""
    from bayesarena.fit import _arena_model

    return _arena_model(arena, spec)


def factor_value(model, kwargs, values):
    """The model's ``votes`` factor with every site substituted."""
    substituted = handlers.substitute(handlers.seed(model, 0),
                                      data={k: jnp.asarray(v) for k, v in values.items()})
    site = handlers.trace(substituted).get_trace(**kwargs)["votes"]
    return float(site["fn"].log_prob(site["value"]))


def per_vote_totals(post, votes):
    """Sum over the votes the spec models of the per-vote log-likelihood, one value per draw
    (plain ``bt``-style specs have no tie probability: their likelihood is over the decisive
    votes only, where ``log P(winner | decisive)`` is the whole vote's log-likelihood)."""
    classes = L.outcome_classes(post.spec)
    decisive_only = classes["tie"] is None
    da, atoms = L.log_likelihood(post, votes, decisive_only=decisive_only)
    modelled = np.array([classes[o] is not None for o in ba.votes.CELL_OUTCOMES])
    weights = atoms["n"].to_numpy(np.float64) * modelled[atoms["outcome"].to_numpy()]
    return da.values.reshape(-1, da.sizes["atom"]) @ weights


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def votes():
    df, _ = ba.simulate_arena(10, 3000, seed=5)
    return ba.read_votes(df)


@pytest.fixture(scope="module")
def davidson(votes):
    return quiet_fit(votes, "bt-davidson", seed=1, **SAMPLER)


@pytest.fixture(scope="module")
def hier_votes():
    """Every arena component: tag lists, voters (some light), style, a position column."""
    df, _ = simulate_hierarchical_arena(8, 1500, categories=3, n_voters=40, seed=3)
    df["position"] = np.random.default_rng(0).choice(["a", "b"], size=len(df))
    return ba.read_votes(df)


# --- the per-vote log-likelihood against the two likelihood code paths --------------------


def test_vote_loglik_sums_to_cell_loglik_at_posterior_draws(votes, davidson):
    spec = davidson.spec
    totals = per_vote_totals(davidson, votes)
    d = L.Draws.from_posterior(davidson)
    cells = davidson.cells()
    for s in (0, 137, d.n_draws - 1):
        params = OutcomeParams(*(None if v is None else v[s] for v in d.params))
        lp = cell_log_probs(jnp.asarray(d.theta[s]), cells.model_i, cells.model_j, spec, params)
        expected = float(jnp.sum(cell_log_likelihood(cells.counts, lp)))
        assert totals[s] == pytest.approx(expected, rel=1e-12, abs=1e-8)


@pytest.mark.parametrize("name", ["bt", "bt-ties-half", "rao-kupper", "thurstone"])
def test_vote_loglik_sums_to_cell_loglik_every_shipped_spec(votes, name):
    spec = load_spec(name)
    post, samples, model, kwargs, _ = prior_posterior(votes, spec)
    totals = per_vote_totals(post, votes)
    for s in range(len(totals)):
        expected = factor_value(model, kwargs, {k: v[s] for k, v in samples.items()})
        assert totals[s] == pytest.approx(expected, rel=1e-12, abs=1e-8)


ARENA_VARIANTS = {
    "arena": {},
    "as-tie-column-position": {"likelihood": {"ties": "davidson", "both_bad": "as_tie"},
                               "position": {"enabled": True, "source": "column"}},
    "ties-dropped": {"likelihood": {"ties": "drop", "both_bad": "drop"}},
    "bothbad-dropped-noncentred": {"likelihood": {"ties": "davidson", "both_bad": "drop"},
                                   "categories": {"enabled": True,
                                                  "parametrization": "noncentered"}},
}


def arena_variant(name):
    raw = {"name": f"arena-{name}", "likelihood": {"ties": "davidson", "both_bad": "modelled"},
           "categories": {"enabled": True}, "voters": {"enabled": True, "min_votes": 10},
           "style": {"enabled": True}, "position": {"enabled": True, "source": "model_a"}}
    raw.update(ARENA_VARIANTS[name])
    return parse_spec(raw)


@pytest.mark.parametrize("name", list(ARENA_VARIANTS))
def test_arena_vote_loglik_equals_model_factor(hier_votes, name):
    spec = arena_variant(name)
    post, samples, model, kwargs, _ = prior_posterior(hier_votes, spec, seed=2)
    assert len(post.tree["posterior"]["voter"]) > 1  # heavy voters and the pooled group
    totals = per_vote_totals(post, hier_votes)
    for s in range(len(totals)):
        expected = factor_value(model, kwargs, {k: v[s] for k, v in samples.items()})
        assert totals[s] == pytest.approx(expected, rel=1e-11)


def test_arena_vote_loglik_at_fitted_draws(hier_votes):
    """The same identity at draws of a real (Laplace) fit of the shipped arena spec, where
    category deviations come back from the stored ``category_deviation`` only."""
    post = quiet_fit(hier_votes, "arena", method="laplace", laplace_draws=30, seed=4)
    spec = post.spec
    arena, _ = arena_for_spec(hier_votes, spec)
    model, kwargs = arena_model_and_arguments(arena, spec)
    totals = per_vote_totals(post, hier_votes)
    tree = post.tree["posterior"]
    for s in (0, 29):
        values = {k: tree[k].values.reshape(-1, *tree[k].shape[2:])[s] for k in tree.data_vars}
        assert totals[s] == pytest.approx(factor_value(model, kwargs, values), rel=1e-11)


# --- weighted atoms = expanded votes ---------------------------------------------------------


def expanded_arviz_loo(post, votes, reff):
    da, atoms = L.log_likelihood(post, votes)
    rep = np.repeat(np.arange(len(atoms)), atoms["n"].to_numpy())
    ll = da.isel(atom=rep).rename(atom="vote").drop_vars("vote")
    n_chains, n_draws = post.tree["posterior"].sizes["chain"], post.tree["posterior"].sizes["draw"]
    idx = L.thin_indices(n_chains, n_draws, L.DEFAULT_DRAWS)
    posterior = (post.tree["posterior"].to_dataset().isel(draw=idx)
                 .assign_coords(draw=np.arange(len(idx))))
    tree = xr.DataTree.from_dict({"posterior": posterior,
                                  "log_likelihood": xr.Dataset({"votes": ll})})
    return arviz_stats.loo(tree, pointwise=True, reff=reff)


def test_weighted_atoms_equal_expanded_votes(votes, davidson):
    res = L.loo(davidson, votes)
    assert res.n_votes == 3000 and res.n_atoms < 300  # 45 pairs x 4 outcomes at most
    assert res.r_eff != 1.0  # the chains' relative efficiency is used, as ArviZ does
    ref = expanded_arviz_loo(davidson, votes, res.r_eff)
    assert res.elpd == pytest.approx(ref.elpd, abs=1e-8)
    assert res.se == pytest.approx(ref.se, abs=1e-8)
    assert res.p_loo == pytest.approx(ref.p, abs=1e-8)
    rep = np.repeat(np.arange(res.n_atoms), res.pointwise["n"].to_numpy())
    np.testing.assert_allclose(res.pointwise["pareto_k"].to_numpy()[rep],
                               ref.pareto_k.values, atol=1e-10)
    assert res.good_k == pytest.approx(ref.good_k)


def test_paired_difference_matches_arviz_compare(votes, davidson):
    rk = quiet_fit(votes, "rao-kupper", method="laplace", laplace_draws=600, seed=2)
    comp = L.compare_posteriors([davidson, rk], votes)
    ref = arviz_stats.compare({
        "bt-davidson": expanded_arviz_loo(davidson, votes, comp.results["bt-davidson"].r_eff),
        "rao-kupper": expanded_arviz_loo(rk, votes, comp.results["rao-kupper"].r_eff),
    }, round_to="none")
    worse = comp.table.index[1]
    assert comp.table.index[0] == ref.index[0]
    assert comp.table.loc[worse, "elpd_diff"] == pytest.approx(ref.loc[worse, "elpd_diff"],
                                                               abs=1e-8)
    assert comp.table.loc[worse, "se_diff"] == pytest.approx(ref.loc[worse, "dse"], abs=1e-8)
    assert comp.table["weight"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(comp.table["weight"], ref.loc[comp.table.index, "weight"],
                               atol=0.02)  # stacking weights, each optimised to tolerance
    json.dumps(comp.to_dict())  # JSON-serialisable


# --- outcome sets ----------------------------------------------------------------------------


def test_incompatible_outcome_sets_are_refused(votes, davidson):
    bt = quiet_fit(votes, "bt", method="laplace", laplace_draws=400, seed=2)
    with pytest.raises(InputError, match=r"spec 'bt' does not model the .* tie votes"):
        L.compare_posteriors([davidson, bt], votes)
    comp = L.compare_posteriors([davidson, bt], votes, decisive_only=True)
    n_decisive = int(L.outcome_totals(L.vote_atoms(votes, L.AtomKeys()))["win_i"]
                     + L.outcome_totals(L.vote_atoms(votes, L.AtomKeys()))["win_j"])
    assert comp.n_votes == n_decisive and set(comp.table.index) == {"bt", "bt-davidson"}
    # the conditional predictive of a Davidson fit: log P(winner | decisive) <= 0, and close
    # to Bradley-Terry's on the same votes
    assert abs(comp.table["elpd_loo"].diff().iloc[-1]) < 10


def test_check_comparable_names_the_outcome_difference():
    totals = {"win_i": 10, "win_j": 10, "tie": 5, "tie_bothbad": 3}
    specs = {"bt-davidson": load_spec("bt-davidson"),
             "as-tie": parse_spec({"name": "as-tie",
                                   "likelihood": {"ties": "davidson", "both_bad": "as_tie"}})}
    with pytest.raises(InputError, match="tie or tie_bothbad"):
        L.check_comparable(specs, totals)
    with pytest.raises(InputError, match="half a win"):
        L.check_comparable({"h": load_spec("bt-ties-half"), **specs}, totals)
    L.check_comparable(specs, {**totals, "tie_bothbad": 0})  # no both-bad votes: comparable
    L.check_comparable(specs, totals, decisive_only=True)


def test_votes_must_be_the_fitted_votes(davidson):
    df, _ = ba.simulate_arena(10, 500, seed=9)
    with pytest.raises(InputError, match="fitted to 3,000 votes"):
        L.loo(davidson, ba.read_votes(df))


# --- the comparison finds the true structure ----------------------------------------------


def test_true_structure_wins_on_strong_category_effect():
    df, _ = simulate_hierarchical_arena(10, 3000, categories=3, n_voters=0, style=False,
                                        multi_tag=False, position=0.0, category_sd=250.0,
                                        seed=7)
    categories = parse_spec({"name": "bt-davidson-categories",
                             "categories": {"enabled": True}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = L.compare(df, ["bt-davidson", categories], seed=3, warn=False, **{
            "chains": 2, "warmup": 200, "sampler_draws": 300})
    assert comp.best == "bt-davidson-categories"
    row = comp.table.loc["bt-davidson"]
    assert -row["elpd_diff"] > 2 * row["se_diff"]
    assert comp.sentences()[0].startswith("bt-davidson-categories is better than bt-davidson by")


# --- the CLI ---------------------------------------------------------------------------------


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bayesarena.cli", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def votes_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "votes.csv"
    df, _ = ba.simulate_arena(6, 1500, seed=2)
    df.to_csv(path, index=False)
    return path


def test_cli_compare_prints_both_specs(votes_csv):
    r = run("compare", votes_csv.name, "--spec", "bt-davidson", "--spec", "rao-kupper",
            "--method", "laplace", cwd=votes_csv.parent)
    assert r.returncode == 0, r.stderr
    assert "bt-davidson" in r.stdout and "rao-kupper" in r.stdout
    assert "elpd_loo" in r.stdout and "is better than" in r.stdout
    r = run("compare", votes_csv.name, "-s", "bt", "-s", "bt-ties-half", "--decisive-only",
            "--method", "laplace", "--draws", "300", "--json", cwd=votes_csv.parent)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["decisive_only"] and {s["spec"] for s in out["specs"]} == {"bt", "bt-ties-half"}
    assert all(s["n_draws"] <= 300 for s in out["specs"])


@pytest.mark.parametrize(("specs", "message"), [
    (("bt-davidson", "no-such-spec"), "no-such-spec"),
    (("bt-davidson", "bt"), "spec 'bt' does not model"),
    (("bt-davidson",), "at least two specs"),
])
def test_cli_compare_errors(votes_csv, specs, message):
    args = [a for s in specs for a in ("--spec", s)]
    r = run("compare", votes_csv.name, *args, cwd=votes_csv.parent)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("error:")


def test_atoms_of_counts_form_match_votes_form(votes):
    """Aggregated-count input gives the same atoms as the votes it came from."""
    df = votes.to_pandas()
    counts = (df.assign(wins_a=df.outcome.eq("win_a"), wins_b=df.outcome.eq("win_b"),
                        ties=df.outcome.eq("tie"), ties_bothbad=df.outcome.eq("tie_bothbad"))
              .groupby(["model_a", "model_b"], as_index=False)
              [["wins_a", "wins_b", "ties", "ties_bothbad"]].sum())
    a = L.vote_atoms(votes, L.AtomKeys())
    b = L.vote_atoms(ba.read_votes(counts), L.AtomKeys())
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
