"""The hierarchical arena model: its data layout, its exactness against Bradley-Terry-Davidson,
clear errors for missing columns, and recovery of every component from simulated votes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arviz_stats import mcse
from numpyro.handlers import substitute, trace
from scipy import stats

import bayesarena as ba
from bayesarena.arena_data import NO_TAGS, arena_cells
from bayesarena.arena_model import (
    arena_model,
    centre_group,
    default_category_centring,
    default_voter_centring,
    model_arguments,
)
from bayesarena.errors import MissingColumnError, MissingValueError
from bayesarena.fit import pad_cells
from bayesarena.numpyro_model import pairwise_model
from bayesarena.simulate import simulate_hierarchical_arena, voter_names
from bayesarena.spec import parse_spec


def arena_spec(**components) -> ba.ModelSpec:
    raw = {"name": "test-arena"}
    for name, options in components.items():
        raw[name] = {"enabled": True, **options}
    return parse_spec(raw)


# ---- data layout ----------------------------------------------------------------------------
def test_multi_tag_votes_form_tag_sets():
    df = pd.DataFrame({
        "model_a": ["x", "y", "x", "z", "x"],
        "model_b": ["y", "x", "z", "y", "y"],
        "winner": ["model_a", "model_a", "tie", "model_b", "model_b"],
        "category": [["coding", "hard"], ["hard", "coding", "hard"], ["math"], [], ["coding"]],
    })
    data = arena_cells(ba.read_votes(df), arena_spec(categories={}))
    assert data.tags == ("coding", "hard", "math")
    labels = dict(zip(data.cells.categories, data.tagsets.tolist(), strict=True))
    assert labels["coding+hard"] == [True, True, False]
    assert labels[NO_TAGS] == [False, False, False]
    frame = data.cells.to_dataframe()
    # votes 0 and 1 are the same pair and tag set (order and duplicates of tags do not matter)
    # and each model won once: x beat y, then y beat x
    both = frame[frame.category == "coding+hard"]
    assert both[["win_i", "win_j", "tie"]].values.tolist() == [[1, 1, 0]]
    # a two-tag vote counts in both tags for each model
    votes = pd.DataFrame(data.model_tag_votes(), index=data.cells.models, columns=data.tags)
    assert votes.loc["x", "coding"] == 3 and votes.loc["x", "hard"] == 2
    assert votes.loc["z", "math"] == 1 and votes.loc["z", "coding"] == 0


def test_voters_pooled_by_vote_count_only():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({
        "model_a": rng.choice(["a", "b", "c"], n),
        "winner": rng.choice(["model_a", "model_b", "tie"], n),
        "judge": np.where(np.arange(n) < 120, "heavy-1", np.where(
            np.arange(n) < 200, "heavy-2", [f"light-{k}" for k in range(n)])),
    })
    df["model_b"] = np.where(df.model_a == "a", "b", np.where(df.model_a == "b", "c", "a"))
    data = arena_cells(ba.read_votes(df), arena_spec(voters={"min_votes": 50}))
    assert data.voters == ("heavy-1", "heavy-2")
    assert data.voter_votes.tolist() == [120, 80, 100]  # the pooled group last
    decisive = (df.winner != "tie").to_numpy()
    per_voter = np.bincount(data.row_voter, weights=data.row_counts.sum(axis=1), minlength=3)
    assert per_voter.tolist() == [decisive[:120].sum(), decisive[120:200].sum(),
                                  decisive[200:].sum()]
    assert data.cells.n_votes == n


def test_position_column_orients_the_effect():
    df = pd.DataFrame({"model_a": ["a", "b", "a"], "model_b": ["b", "a", "b"],
                       "winner": ["model_a", "model_a", "model_b"],
                       "position": ["b", "A", "model_a"]})
    data = arena_cells(ba.read_votes(df), arena_spec(position={"source": "column"}))
    # pair (a, b): vote 0 shows b first (-1), votes 1 (b shown first) -> -1, vote 2 -> +1
    frame = data.cells.to_dataframe().assign(position=data.position)
    assert sorted(frame.position.tolist()) == [-1, 1]
    first_b = frame[frame.position == -1].iloc[0]
    assert (first_b.win_i, first_b.win_j) == (1, 1)
    df.loc[1, "position"] = "left"
    with pytest.raises(MissingValueError, match=r"'left'.*row 1"):
        arena_cells(ba.read_votes(df), arena_spec(position={"source": "column"}))


@pytest.mark.parametrize(("component", "column"), [
    ("categories", "category"), ("voters", "voter"), ("style", "conv_metadata"),
])
def test_missing_component_column_is_named(component, column):
    df, _ = ba.simulate_arena(4, 50, seed=0)
    with pytest.raises(MissingColumnError, match=repr(column)):
        ba.fit(df, arena_spec(**{component: {}}), progress=False)


def test_null_category_rows_are_named():
    df, _ = ba.simulate_arena(4, 20, seed=0)
    df["category"] = ["coding"] * 20
    df.loc[[3, 7], "category"] = None
    with pytest.raises(MissingValueError, match=r"rows 3, 7"):
        arena_cells(ba.read_votes(df), arena_spec(categories={}))


# ---- the likelihood is Davidson's, factorised ------------------------------------------------
def test_arena_factorisation_equals_bt_davidson():
    """With no categories, no voters, no style and gamma = 0, the arena model's likelihood
    (decisive factor on cells + direction factor on rows) equals the Bradley-Terry-Davidson
    cell likelihood exactly, at arbitrary parameter values."""
    df, _ = ba.simulate_arena(7, 800, seed=4)
    spec = arena_spec(position={})
    data = arena_cells(ba.read_votes(df), spec)
    plain = ba.aggregate(ba.read_votes(df))
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 0.8, 7)
    theta -= theta.mean()
    values = {"theta": theta, "sigma": 1.0, "log_nu": -0.3, "bothbad_intercept": 0.2,
              "bothbad_slope": -0.7, "position": 0.0}

    def factor(model, kwargs, **static):
        with substitute(data=values):
            tr = trace(model).get_trace(**kwargs, **static)
        return float(tr["votes"]["fn"].log_factor)

    arena = factor(arena_model, model_arguments(data, spec), n_models=7, spec=spec)
    bt = factor(pairwise_model, pad_cells(plain), n_models=7, spec=ba.load_spec("bt-davidson"))
    assert arena == pytest.approx(bt, rel=1e-12)
    values["position"] = 0.3  # and the position term does change it
    moved = factor(arena_model, model_arguments(data, spec), n_models=7, spec=spec)
    assert moved != pytest.approx(bt, rel=1e-6)


def test_layout_is_the_same_whatever_the_row_order():
    """The cells and direction rows (with style z-scores, whose sums depend on the row order)
    are bitwise identical when the votes come in another order: DuckDB's parallel GROUP BY
    returns groups in a varying order, which once made gradients differ between processes."""
    frame, _ = simulate_hierarchical_arena(8, 4000, categories=3, n_voters=60, seed=5)
    spec = ba.load_spec("arena")
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    first, second = (arena_cells(ba.read_votes(f), spec) for f in (frame, shuffled))
    assert first.n_rows > first.cells.n_cells  # style: rows per vote, several per cell
    for name in ("row_cell", "row_voter", "row_style", "row_counts", "position", "tagsets"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert np.array_equal(first.cells.counts, second.cells.counts)


def test_centring_rules():
    """Without a Laplace fit: a category centred where n_mc * 0.2 * tau^2 >= 1 for its median
    model (tau the prior median), heavy voters at 400 decisive votes; with one: where the
    likelihood's curvature in non-centred coordinates is at least the prior's."""
    frame, _ = simulate_hierarchical_arena(6, 3000, categories=3, n_voters=50, style=False,
                                           seed=2)
    spec = arena_spec(categories={}, voters={"min_votes": 30})
    data = arena_cells(ba.read_votes(frame), spec)
    tau = 0.6745 * 0.5  # half_normal(0.5) median
    np.testing.assert_array_equal(default_category_centring(data, spec),
                                  np.median(data.model_tag_votes(), axis=0) * 0.2 * tau**2 >= 1)
    decisive = np.bincount(data.row_voter, weights=data.row_counts.sum(axis=1))
    np.testing.assert_array_equal(default_voter_centring(data), decisive[:-1] >= 400)
    pooled_only = arena_cells(ba.read_votes(frame), arena_spec(voters={"min_votes": 10**6}))
    assert pooled_only.voters == () and default_voter_centring(pooled_only).size == 0
    # strong data: estimates spread well beyond their noise -> centred; weak data: the spread
    # is mostly noise -> non-centred, whatever the joint mode's scale says
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    assert centre_group(z, 0.5, np.full(200, 1 + 0.25 * 400.0), 200)  # L = 400, sd 0.05
    # L = 4 (noise sd 0.5) and estimates that are pure noise, as a fit at scale 0.5 gives
    # them (the conditional mode shrinks them by L s0^2 / (1 + L s0^2) = 1/2)
    noise = rng.normal(0.0, 0.5, size=200)
    assert not centre_group(0.5 * noise / 0.5, 0.5, np.full(200, 1 + 4.0 * 0.25), 200)
    assert not centre_group(z, 0.5, np.full(200, 1 + 0.25 * 400.0), 3)  # 3 members: tau unsure
    forced = arena_spec(categories={"parametrization": "noncentered"})
    assert not default_category_centring(data, forced).any()


# ---- recovery ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recovered():
    """One fit of the full arena model (categories with multi-tag votes, heavy and light
    voters incl. adversarial ones, style, position) on 12 models x 9,000 votes."""
    frame, truth = simulate_hierarchical_arena(
        12, 9000, categories=3, n_voters=150, seed=21, position=0.15,
        adversarial_voter_share=0.1, category_sd=60.0)
    post = ba.fit(frame, "arena", seed=5, progress=False, chains=4, warmup=300, draws=400)
    return post, truth, frame


def _covered(draws: np.ndarray, true: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return (lo <= true) & (true <= hi)


def test_arena_fit_is_healthy(recovered):
    post, _, _ = recovered
    assert post.diagnostics.divergences == 0
    assert post.diagnostics.max_rhat < 1.02, post.diagnostics.problems
    # arena.toml's kernel and max_tree_depth "auto": a few hundred parameters keep NUTS and
    # its long trees
    assert post.tree.attrs["kernel"] == "nuts"
    assert post.tree.attrs["max_tree_depth"] == 10


def test_components_recovered_at_nominal_rate(recovered):
    """Strengths, category deviations, style coefficients, the position effect and heavy
    voters' discriminations: the share of true values inside their 95% intervals is inside the
    central 99.8% of Binomial(n, 0.95) (intervals of one fit are correlated, which widens the
    spread a little: generous, but an over-confident fit at 70% of the right width fails)."""
    post, truth, _ = recovered
    _assert_nominal_coverage(post, truth)


@pytest.fixture(scope="module")
def recovered_laplace(recovered):
    _, truth, frame = recovered
    return ba.fit(frame, "arena", method="laplace", seed=5, progress=False), truth


def test_laplace_fit_recovers_at_nominal_rate(recovered_laplace):
    """The hierarchical Laplace fit (empirical-Bayes scales, exact Hessian in blocks) covers
    the true components at the nominal rate too, by the same test as the MCMC fit."""
    post, truth = recovered_laplace
    assert post.tree.attrs["method"] == "laplace"
    _assert_nominal_coverage(post, truth)


def test_laplace_fit_is_close_to_mcmc(recovered, recovered_laplace):
    """On 9,000 votes the Laplace posterior of the strengths and category deviations is near
    the MCMC one, within what a Gaussian at a mode can do with 150 voters of ~60 votes each.

    Measured here: means up to 0.64 MCMC posterior sds away and sds 10-16% narrower. The
    strengths' scale trades off against the voters' discriminations and the tie parameter:
    at the mode the discriminations are ~4% higher and every strength ~8% smaller than the
    posterior means. The bounds (1 sd; sd ratios in [0.7, 1.15]) are loose on purpose: they
    catch gross failures such as a Laplace fit at the joint mode, whose scales sit at the edge
    of their priors (at 150 models x 1M votes: sigma 2.8 for a true 0.58). The MCMC moments'
    own Monte Carlo error is ~0.03 sd at their ESS of ~1,000."""
    nuts, laplace = recovered[0].tree["posterior"], recovered_laplace[0].tree["posterior"]
    for name in ("theta", "category_deviation"):
        ref, approx = nuts[name], laplace[name]
        sd = ref.std(("chain", "draw"))
        gap = np.abs(approx.mean(("chain", "draw")) - ref.mean(("chain", "draw"))) / sd
        assert float(gap.max()) < 1.0, (name, float(gap.max()))
        ratio = approx.std(("chain", "draw")) / sd
        assert 0.7 < float(ratio.min()) and float(ratio.max()) < 1.15, (
            name, float(ratio.min()), float(ratio.max()))


def test_laplace_metric_samples_the_posterior_nuts_does(recovered, tmp_path):
    """Split HMC in the coordinates the blocked Laplace approximation makes round
    (``metric = "laplace"``, :mod:`bayesarena.whitening`) targets the posterior NUTS does,
    and its draws come back as the model's own sites: on the ``recovered`` arena the posterior
    means of the strengths, style coefficients and position effect agree within 4 Monte Carlo
    standard errors of their difference (17 elements; a false alarm with probability about
    1e-3). The posterior records the metric, also once saved and read back."""
    post, _, frame = recovered
    spec = ba.load_spec("arena").with_sampler(kernel="split_hmc", metric="laplace")
    white = ba.fit(frame, spec, seed=5, progress=False, chains=4, warmup=150, draws=400,
                   warn=False)
    assert white.tree.attrs["metric"] == "laplace"
    assert white.tree.attrs["metric_coupling_rank"] >= 0
    assert white.diagnostics.divergences == 0
    assert set(white.tree["posterior"].data_vars) == set(post.tree["posterior"].data_vars)
    loaded = ba.Posterior.load(white.save(tmp_path / "white.nc"))
    assert loaded.tree.attrs["metric"] == "laplace"
    for name in ("theta", "style_coef", "position"):
        x, y = post.tree["posterior"][name], white.tree["posterior"][name]
        assert x.shape == y.shape, name
        difference = (x.mean(("chain", "draw")) - y.mean(("chain", "draw"))).values
        bound = 4 * np.hypot(mcse(x).values, mcse(y).values)
        assert np.all(np.abs(difference) <= bound), (name, difference / bound * 4)


def test_blocked_hessian_on_the_arena_model():
    """The arena model's heavy voters interact with no other voter: the refined Laplace step
    with the Hessian in blocks equals the one with the full Hessian (the blocked path checks
    locality with a probe and would raise)."""
    import jax

    from bayesarena.fit import _arena_model, _refine_in_sampling_coordinates, _with_strengths

    frame, _ = simulate_hierarchical_arena(8, 1500, categories=3, n_voters=40, seed=3)
    frame["position"] = np.random.default_rng(0).choice(["a", "b"], size=len(frame))
    spec = ba.load_spec("arena")
    data = arena_cells(ba.read_votes(frame), spec)
    lap, centring = _first_laplace_step(data, spec)
    model, kwargs = _arena_model(data, _with_strengths(spec, "centered"), centring=centring)
    full, blocked = (_refine_in_sampling_coordinates(lap, model, kwargs, spec,
                                                     jax.random.PRNGKey(0), hessian=h)
                     for h in ("full", "blocked"))
    assert blocked.precision_blocks.local_index.size == len(data.voters)
    assert full.converged and blocked.converged
    np.testing.assert_array_equal(blocked.mode, full.mode)
    # the blocks come from the cells' own second derivatives (bayesarena.arena_hessian), in
    # float64 like the full Hessian: the same to rounding
    np.testing.assert_allclose(blocked.curvature, full.curvature, rtol=1e-9)
    np.testing.assert_allclose(blocked.marginal_variances, full.marginal_variances, rtol=1e-9)


def _first_laplace_step(data, spec: ba.ModelSpec) -> tuple:
    """``fit``'s first Laplace step on arena cells (every group non-centred, the scales held
    at their prior medians): the result and the ``(mode, curvature)`` that decide centring."""
    import jax
    import jax.numpy as jnp

    from bayesarena.fit import _arena_model, _noncentred_strengths, _scales_at_prior_median
    from bayesarena.laplace import laplace_approximation

    model, kwargs = _arena_model(data, _noncentred_strengths(spec), centring="none")
    lap = laplace_approximation(model, kwargs, jax.random.PRNGKey(0), precondition=True,
                                **_scales_at_prior_median(spec, kwargs))
    return lap, (lap.unravel(jnp.asarray(lap.mode)), lap.unravel(jnp.asarray(lap.curvature)))


def _assert_nominal_coverage(post: ba.Posterior, truth) -> None:
    p = post.tree["posterior"]
    order = [list(truth.categories).index(c) for c in post.categories]
    delta = p["category_deviation"].transpose("chain", "draw", "model", "category").values
    beta = p["style_coef"].values.reshape(-1, 4)
    gamma = p["position"].values.reshape(-1, 1)
    names = list(voter_names(len(truth.voter_kappa)))
    voters = [str(v) for v in post.tree["posterior"]["voter"].values]
    heavy = [names.index(v) for v in voters]
    table = post.voter_reliability().set_index("voter")
    kappa_lo = table.loc[voters, "kappa_lower"].to_numpy()
    kappa_hi = table.loc[voters, "kappa_upper"].to_numpy()
    true_kappa = np.asarray(truth.voter_kappa)[heavy]
    parts = {
        "theta": _covered(post.theta_draws(), truth.theta),
        "delta": _covered(delta.reshape(-1, *delta.shape[2:]), truth.delta[:, order]).ravel(),
        "style": _covered(beta, np.asarray(truth.style_coef)),
        "position": _covered(gamma, np.array([truth.position])),
        "kappa": (kappa_lo <= true_kappa) & (true_kappa <= kappa_hi),
    }
    covered = sum(int(v.sum()) for v in parts.values())
    total = sum(v.size for v in parts.values())
    lo_ok, hi_ok = stats.binom.ppf([0.001, 0.999], total, 0.95)
    summary = {k: f"{int(v.sum())}/{v.size}" for k, v in parts.items()}
    assert lo_ok <= covered <= hi_ok, summary
    assert parts["style"][0], "the length coefficient must be recovered"


def test_adversarial_voters_flagged(recovered):
    post, truth, _ = recovered
    table = post.voter_reliability().set_index("voter")
    names = np.asarray(voter_names(len(truth.voter_kappa)))
    adversarial = set(names[np.asarray(truth.voter_kind) == 2]) & set(table.index)
    reliable = set(names[np.asarray(truth.voter_kind) == 0]) & set(table.index)
    assert adversarial, "the simulation should give some heavy adversarial voters"
    flagged = set(table.index[table.flag == "adversarial"])
    # most adversarial heavy voters are caught; no reliable one is called adversarial
    assert len(flagged & adversarial) >= len(adversarial) / 2
    assert not flagged & reliable


def test_category_boards_from_one_fit(recovered):
    post, truth, _ = recovered
    for category in post.categories:
        board = post.leaderboard(category=category)
        assert len(board) == 12
        true = pd.Series(truth.category_ratings()[category], index=list(truth.models))
        rho = stats.spearmanr(board.rating, true.reindex(board.model)).statistic
        assert rho > 0.8, (category, rho)
        assert board.votes.sum() > 0
    with pytest.raises(ba.BayesArenaError, match="cooking"):
        post.leaderboard(category="cooking")


def test_style_controlled_and_raw_ratings_side_by_side(recovered):
    post, _, _ = recovered
    board = post.leaderboard()
    assert {"rating_with_style", "rating_with_style_lower", "rating_with_style_upper"} <= set(
        board.columns)
    # verbose models gain from style: the style-inclusive rating minus the controlled one
    # follows the model's mean length feature times the length coefficient
    xbar = post.tree["constant_data"]["model_style"].sel(style_feature="length").to_series()
    shift = (board.set_index("model").rating_with_style
             - board.set_index("model").rating).reindex(xbar.index)
    assert stats.spearmanr(shift, xbar).statistic > 0.7


def test_save_load_keeps_hierarchy(recovered, tmp_path):
    post, _, _ = recovered
    path = post.save(tmp_path / "arena.nc")
    back = ba.Posterior.load(path)
    assert back.categories == post.categories
    pd.testing.assert_frame_equal(back.voter_reliability(), post.voter_reliability())
    pd.testing.assert_frame_equal(back.style_coefficients(), post.style_coefficients())


def test_group_spread_is_the_marginal_likelihood_estimate():
    """Normal-normal: x_k ~ N(0, s^2), estimates y_k = x_k + e_k with e_k ~ N(0, 1 / L). Given
    as a non-centred Laplace fit at scale s0 (z = conditional mode / s0, curvature 1 + s0^2 L),
    the spread comes back as s whatever s0 was: the estimator's sd is about
    sqrt(2 / n) (s^2 + 1 / L) / (2 s) = 0.0053 here; allow 4 of them."""
    from bayesarena.arena_model import group_spread

    rng = np.random.default_rng(1)
    n, s, precision = 5000, 0.3, 100.0
    y = rng.normal(0.0, s, n) + rng.normal(0.0, precision**-0.5, n)  # each element's estimate
    tolerance = 4 * np.sqrt(2 / n) * (s**2 + 1 / precision) / (2 * s)
    # the fit's scale s0 barely shrinks (5.0) or halves (0.1: L s0^2 = 1) the estimates
    for scale in (5.0, 0.1):
        info = precision * scale**2
        x_mode = y * info / (1 + info)  # the conditional mode at s0
        g = group_spread(x_mode / scale, scale, np.full(n, 1 + info))
        np.testing.assert_allclose(g.precision, precision)
        assert abs(g.noise - 0.1) < 1e-12
        assert abs(g.spread - s) < tolerance, (scale, g.spread)
    # estimates that are all noise: no spread (EM's fixed point is 0; allow its slow approach)
    pure_noise = rng.normal(0, 0.1, n) * 0.5
    assert group_spread(pure_noise / 0.1, 0.1, np.full(n, 2.0)).spread < 0.03


def test_centre_elements_per_voter():
    """Each element by its own precision: with spread s = 0.3 (n large, shrink ~ 1), elements
    with L s^2 >= 1 (L >= 11.1) are centred, the others not."""
    from bayesarena.arena_model import centre_elements

    rng = np.random.default_rng(2)
    n, s = 4000, 0.3
    precision = np.where(np.arange(n) % 2 == 0, 50.0, 2.0)
    x_hat = rng.normal(0.0, s, n) + rng.normal(0.0, 1.0, n) / np.sqrt(precision)
    centred = centre_elements(x_hat, 1.0, 1.0 + precision, n)
    np.testing.assert_array_equal(centred, precision == 50.0)


def test_marginal_scales_keep_every_element():
    """The scales move to their marginal maximum-likelihood estimates and z is rescaled so
    that x = scale z is unchanged (a category at a time for a vector of scales); each scale
    comes with the information about it."""
    from bayesarena.fit import _marginal_scales

    rng = np.random.default_rng(3)
    z = rng.normal(0, 0.05, size=(3, 99))
    mode = {"category_deviation_z": z, "category_scale": np.log([2.0, 3.0, 4.0]),
            "sigma": np.array(0.0), "log_nu": np.array(0.1)}
    curvature = {"category_deviation_z": np.full_like(z, 1 + 4.0 * 400)}  # L = 400 / scale^2
    out, information = _marginal_scales(mode, curvature)
    np.testing.assert_allclose(np.exp(out["category_scale"])[:, None] * out["category_deviation_z"],
                               np.exp(mode["category_scale"])[:, None] * z)
    assert not np.allclose(out["category_scale"], mode["category_scale"])
    assert out["log_nu"] is mode["log_nu"] and out["sigma"] is mode["sigma"]  # no theta_z
    assert set(information) == {"category_scale"} and information["category_scale"].shape == (3,)
    assert np.all(information["category_scale"] <= 2 * 99)  # at most 2 per element


def test_log_spread_information_is_the_estimates_precision():
    """The variance of the marginal maximum-likelihood ``log s`` over replicate groups matches
    ``1 / log_spread_information`` (the inverse Fisher information; 400 elements with unequal
    precisions, so the asymptotics hold to a few percent). 1,000 replicates estimate the
    variance to a relative sd of sqrt(2 / 999) = 4.5%; we allow 4 of those."""
    from bayesarena.arena_model import group_spread, log_spread_information

    rng = np.random.default_rng(11)
    s, s0, n, reps = 0.3, 0.5, 400, 1000
    precision = rng.uniform(2.0, 40.0, size=n)  # r_k from 0.15 to 0.78
    info = log_spread_information(precision, s)
    estimates = []
    for _ in range(reps):
        y = rng.normal(0.0, np.sqrt(s**2 + 1.0 / precision))
        x = y * precision * s0**2 / (1.0 + precision * s0**2)  # conditional mode at s0
        estimates.append(group_spread(x / s0, s0, 1.0 + precision * s0**2).spread)
    ratio = np.var(np.log(estimates), ddof=1) * info
    assert abs(ratio - 1.0) < 4 * np.sqrt(2.0 / (reps - 1)), ratio


@pytest.mark.parametrize("multi_tag", [True, False])
def test_theta_through_category_mean_only_where_votes_pin_it(multi_tag):
    """``fit`` samples theta through its category mean psi when the votes pin theta itself
    (some votes carry two tags, so theta_m + delta_mc and theta_m + delta_mc + delta_mc' are
    both seen), and not when every vote carries one tag: then only theta_m + delta_mc is
    pinned and theta itself rests on its prior (the funnel the psi coordinates would
    create with sigma). Decided from the first Laplace step, as ``fit`` does."""
    from bayesarena.fit import _arena_model

    frame, _ = simulate_hierarchical_arena(8, 6000, categories=3, n_voters=0, style=False,
                                           multi_tag=multi_tag, seed=4)
    spec = arena_spec(categories={})
    data = arena_cells(ba.read_votes(frame), spec)
    _, centring = _first_laplace_step(data, spec)
    sampled, kwargs = _arena_model(data, spec, centring=centring)
    assert sampled.keywords["theta_from_category_mean"] is multi_tag
    all_centred = kwargs["category_noncentred"].shape[0] == 0
    assert sampled.keywords["split_category_means"] is (multi_tag and all_centred)


def test_split_model_means_is_a_change_of_coordinates():
    """Category deviations sampled as per-model means and contrasts
    (arena_model.split_model_means_deviations) have the same log density as the deviations
    sampled directly at every pair of corresponding points (fit._split_model_means maps
    one to the other) and give the same deviations there, with as many free coordinates:
    (M - 1) + (C - 1)(M - 1) = C (M - 1)."""
    import functools

    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    from bayesarena.fit import _split_model_means

    frame, _ = simulate_hierarchical_arena(8, 4000, categories=3, n_voters=60, seed=5)
    spec = ba.load_spec("arena")
    data = arena_cells(ba.read_votes(frame), spec)
    kwargs = model_arguments(data, spec, category_centred=np.ones(3, dtype=bool))

    def sampled(split):
        model = functools.partial(arena_model, n_models=8, spec=spec,
                                  theta_from_category_mean=True, split_category_means=split)
        info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
        return info.potential_fn, info.postprocess_fn, info.param_info.z

    (direct, post_direct, z), (split, post_split, z_split) = sampled(False), sampled(True)
    assert z_split["category_deviation_model_mean"].shape == (7,)  # M - 1 free coordinates
    assert z_split["category_deviation_contrast"].shape == (2, 7)  # (C - 1)(M - 1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: jnp.asarray(rng.normal(0.0, 0.3, np.shape(v))) for k, v in z.items()}
        moved = dict(point)
        moved.update(_split_model_means(np.asarray(moved.pop("category_deviation_centred"))))
        assert float(split(moved)) == pytest.approx(float(direct(point)), rel=1e-12)
        np.testing.assert_allclose(post_split(moved)["category_deviation"],
                                   post_direct(point)["category_deviation"], atol=1e-12)
        moved["category_deviation_contrast"] = moved["category_deviation_contrast"] + 0.01
        assert float(split(moved)) != pytest.approx(float(direct(point)), rel=1e-6)
