"""Figures (`bayesarena.plots`, `bayesarena plot`): each figure shows the numbers it claims to
show, in leaderboard order, and the CLI writes every kind or fails in one line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from typer.testing import CliRunner

from bayesarena import fit, plots, simulate_arena
from bayesarena.cli import app
from bayesarena.errors import BayesArenaError
from bayesarena.ppc import ppc
from bayesarena.scale import ELO_PER_LOGIT
from bayesarena.simulate import simulate_hierarchical_arena

matplotlib.use("Agg")  # pyplot picks its backend lazily: this holds for every figure below

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def post():
    """10 models, 3,000 votes, Davidson ties; Laplace keeps it fast."""
    df, _ = simulate_arena(10, 3000, seed=5)
    return fit(df, "bt-davidson", method="laplace", seed=0, laplace_draws=1000, progress=False)


@pytest.fixture(scope="module")
def arena():
    """8 models, categories coding and math, voters and style (as in test_publish)."""
    df, _ = simulate_hierarchical_arena(8, 3000, categories=("coding", "math"), n_voters=50,
                                        seed=1)
    post = fit(df, "arena", method="laplace", seed=0, laplace_draws=2000, progress=False)
    return post, df


def labels(ticklabels) -> list[str]:
    return [t.get_text() for t in ticklabels]


# ---- forest ---------------------------------------------------------------------------------
def test_forest_rows_and_intervals_follow_the_leaderboard(post):
    board = post.leaderboard()
    fig = plots.plot_forest(post)
    ax = fig.axes[0]
    assert labels(ax.get_yticklabels()) == board["model"].tolist()
    outer, inner = ax.collections[0].get_segments(), ax.collections[1].get_segments()
    np.testing.assert_allclose([s[0][0] for s in outer], board["rating_lower"])
    np.testing.assert_allclose([s[1][0] for s in outer], board["rating_upper"])
    draws = 1000 + ELO_PER_LOGIT * post.theta_draws()
    order = [post.models.index(m) for m in board["model"]]
    q25, q75 = np.quantile(draws[:, order], [0.25, 0.75], axis=0)
    np.testing.assert_allclose([s[0][0] for s in inner], q25)
    np.testing.assert_allclose([s[1][0] for s in inner], q75)
    assert len(ax.lines) == 1  # the means; no style marker without a style component
    np.testing.assert_allclose(ax.lines[0].get_xdata(), board["rating"])
    ranks = labels(ax.child_axes[0].get_yticklabels())
    expected = [f"{lo}\u2013{hi}" if lo != hi else str(lo)
                for lo, hi in zip(board["rank_lower"], board["rank_upper"], strict=True)]
    assert ranks == expected


def test_forest_style_marker_top_and_category(arena):
    post, _ = arena
    board = post.leaderboard()
    ax = plots.plot_forest(post, top=3).axes[0]
    assert labels(ax.get_yticklabels()) == board["model"].head(3).tolist()
    style = [line for line in ax.lines if line.get_label() == "mean with style"]
    assert len(style) == 1
    np.testing.assert_allclose(style[0].get_xdata(), board["rating_with_style"].head(3))
    coding = post.leaderboard(category="coding")
    ax = plots.plot_forest(post, category="coding").axes[0]
    assert labels(ax.get_yticklabels()) == coding["model"].tolist()
    np.testing.assert_allclose(ax.lines[0].get_xdata(), coding["rating"])
    assert "coding" in ax.get_xlabel()
    with pytest.raises(BayesArenaError):
        plots.plot_forest(post, top=0)


def test_forest_draws_into_a_given_axes(post):
    fig, ax = plt.subplots(figsize=(4, 3))
    try:
        assert plots.plot_forest(post, ax=ax) is fig
        assert labels(ax.get_yticklabels()) == post.leaderboard()["model"].tolist()
    finally:
        plt.close(fig)


# ---- rank probabilities ---------------------------------------------------------------------
def test_rank_heatmap_shows_rank_probabilities(post):
    board = post.leaderboard()
    fig = plots.plot_rank_heatmap(post)
    ax = fig.axes[0]
    image = np.asarray(ax.images[0].get_array())
    theta = post.theta_draws()
    order = [post.models.index(m) for m in board["model"]]
    ranks = 1 + (theta[:, :, None] < theta[:, None, :]).sum(axis=2)  # independent of ranking.py
    expected = np.stack([(ranks[:, order] == k).mean(axis=0) for k in range(1, 11)], axis=1)
    np.testing.assert_allclose(image, expected)
    np.testing.assert_allclose(image.sum(axis=1), 1.0)
    assert labels(ax.get_yticklabels()) == board["model"].tolist()
    assert len(ax.texts) == int((expected >= 0.005).sum())  # annotated: 10 <= 15 models
    assert len(fig.axes) == 2  # heatmap and colour bar
    top = plots.plot_rank_heatmap(post, top=4).axes[0]
    np.testing.assert_allclose(np.asarray(top.images[0].get_array()), expected[:4, :4])


# ---- win matrix -----------------------------------------------------------------------------
def test_win_matrix_shows_win_probabilities_in_leaderboard_order(post):
    order = post.leaderboard()["model"].tolist()
    fig = plots.plot_win_matrix(post)
    ax = fig.axes[0]
    image = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    expected = post.win_matrix().sel(model=order, opponent=order).values
    np.testing.assert_allclose(image, expected)
    assert np.isnan(np.diag(image)).all()
    assert labels(ax.get_yticklabels()) == order and labels(ax.get_xticklabels()) == order
    assert len(ax.texts) == 10 * 9
    # the colour scale is centred at an even match: 1 / (2 + nu) under Davidson ties
    nu = np.exp(post.outcome_param_draws().log_nu)
    centre = ax.images[0].norm.vcenter
    np.testing.assert_allclose(centre, np.mean(1.0 / (2.0 + nu)), rtol=1e-10)
    assert centre == pytest.approx(plots.even_match_win_probability(post))


def test_category_win_matrix_uses_category_strengths(arena):
    post, _ = arena
    table = plots.win_matrix_table(post, category="math")
    assert table.index.tolist() == post.leaderboard(category="math")["model"].tolist()
    theta = post.strength_draws("math")
    a, b = table.index[0], table.index[-1]
    i, j = post.models.index(a), post.models.index(b)
    p = post.outcome_probs_from_draws(theta[:, i], theta[:, j])[:, 0].mean()
    assert table.loc[a, b] == pytest.approx(p, rel=1e-12)
    assert table.loc[a, b] > table.loc[b, a]


# ---- category shifts ------------------------------------------------------------------------
def test_category_shifts_are_the_deviations_in_elo(arena):
    post, _ = arena
    table = plots.category_shift_table(post)
    deviation = post.tree["posterior"]["category_deviation"]
    for _, row in table.sample(6, random_state=0).iterrows():
        draws = ELO_PER_LOGIT * deviation.sel(category=row["category"], model=row["model"])
        assert row["shift"] == pytest.approx(float(draws.mean()), rel=1e-9, abs=1e-9)
        lo, hi = np.quantile(draws.values.reshape(-1), [0.025, 0.975])
        assert (row["lower"], row["upper"]) == pytest.approx((lo, hi), abs=1e-9)
    order = post.leaderboard()["model"].tolist()
    fig = plots.plot_category_shifts(post, style="dots")
    ax = fig.axes[0]
    assert labels(ax.get_yticklabels()) == order
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(post.categories)
    points = [line for line in ax.lines if line.get_label() in post.categories]
    for line, c in zip(points, post.categories, strict=True):
        np.testing.assert_allclose(line.get_xdata(),
                                   table.loc[table["category"] == c, "shift"])
    heat = plots.plot_category_shifts(post, categories=["math"], style="heatmap").axes[0]
    np.testing.assert_allclose(np.asarray(heat.images[0].get_array())[:, 0],
                               table.loc[table["category"] == "math", "shift"])
    assert labels(heat.get_xticklabels()) == ["math"]


def test_category_shifts_need_categories(post):
    with pytest.raises(BayesArenaError, match="no categories component"):
        plots.plot_category_shifts(post)


# ---- posterior predictive checks ------------------------------------------------------------
def test_ppc_figure_comes_from_ppc_module(arena):
    post, df = arena
    result = ppc(post, df, draws=100, seed=0)
    fig = plots.plot_ppc(result, figsize=(7.0, 2.6))
    try:
        assert len(fig.axes) == 3
        assert tuple(fig.get_size_inches()) == pytest.approx((7.0, 2.6))
        panel = fig.axes[1]  # per pair: observed share on x
        xs = np.concatenate([c.get_offsets()[:, 0] for c in panel.collections
                             if isinstance(c, PathCollection)])  # the scatter, not the bars
        np.testing.assert_allclose(np.sort(xs), np.sort(result.pairs["observed"]))
    finally:
        plt.close(fig)


# ---- active sampling ------------------------------------------------------------------------
def _run(policy: str, seed: int, scenario: str, values: list[float]) -> dict:
    trajectory = [{"votes": v, "p_top5": p, "tau": 0.5 + p / 2, "width": 200 * (1 - p) + 40,
                   "tau_bottom": 0.5, "min_votes": 3}
                  for v, p in zip((100, 200, 300, 400), values, strict=True)]
    return {"policy": policy, "seed": seed, "n_models": 8, "scenario": scenario, "cap": 400,
            "batch": 100, "trajectory": trajectory}


def synthetic_result() -> dict:
    runs = [_run(policy, seed, scenario, [0.1 * (k + 1) + 0.05 * seed + 0.2 * (policy == "eig")
                                          for k in range(4)])
            for scenario in ("normal", "crowded") for policy in ("uniform", "eig")
            for seed in (0, 1)]
    runs.append({**_run("eig", 0, "normal", [0.1, 0.2, 0.3, 0.4]), "late_after": 50})
    ratio = {"median": 0.8, "q10": 0.7, "q90": 0.9, "n": 2}
    cell = {"top5": {"ratio_to_uniform": ratio, "ratio_to_arena": {**ratio, "median": 0.6}},
            "tau": {"ratio_to_uniform": {**ratio, "median": 1.05}},
            "width": {"ratio_to_uniform": {**ratio, "median": 1.2}}}
    return {"config": {"thresholds": {"p_top5": 0.95, "tau": 0.9, "width": 52.0},
                       "policies": {"uniform": "uniform", "arena": "arena", "eig": "eig"}},
            "summary": {"8 models, normal": {"eig": cell}}, "runs": runs}


def test_active_sampling_curves_and_trade_off():
    result = synthetic_result()
    fig = plots.plot_active_sampling(result)
    assert len(fig.axes) == 8  # two scenarios (the late-entrant run is left out) x four panels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["uniform", "eig"]
    normal = [sf for sf in fig.subfigs if sf._suptitle.get_text().startswith("8 models, normal")]
    assert len(normal) == 1
    p_top5 = normal[0].axes[0]
    eig = p_top5.lines[1]  # uniform first, then eig, then the threshold line
    x, y = np.asarray(eig.get_xdata()), np.asarray(eig.get_ydata())
    step = np.floor(x / 100).astype(int)  # records at 100, 200, 300, 400 votes
    expected = np.mean([[np.nan if k == 0 else 0.1 * k + 0.05 * seed + 0.2 for k in step]
                        for seed in (0, 1)], axis=0)  # the median of two runs is their mean
    np.testing.assert_allclose(y, expected)
    assert np.isnan(y[x < 100]).all() and np.isfinite(y[x >= 100]).all()
    assert p_top5.lines[-1].get_ydata()[0] == pytest.approx(0.95)
    trade = normal[0].axes[3]
    points = [line for line in trade.lines if len(line.get_xdata()) == 1
              and line.get_linestyle() == "None"]
    assert len(points) == 1
    assert (points[0].get_xdata()[0], points[0].get_ydata()[0]) == pytest.approx((0.2, 0.4))


def test_active_sampling_from_the_benchmark(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "active_sampling_bench", REPO / "benchmarks" / "active_sampling.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = [bench.run_one(policy, 0, 6, "normal", batch=60, cap=300)
            for policy in ("uniform", "arena", "eig")]
    result = {"config": {"thresholds": bench.THRESHOLDS, "policies": bench.POLICIES},
              "summary": bench.summarise(runs), "runs": runs}
    fig = plots.plot_active_sampling(result)
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["uniform", "arena", "eig"]
    bench.plot(result, tmp_path / "bench.png")  # the benchmark draws through bayesarena.plots
    assert (tmp_path / "bench.png").read_bytes()[:8] == PNG_MAGIC


def test_active_sampling_refuses_bad_input(tmp_path):
    with pytest.raises(BayesArenaError, match="no benchmark results file"):
        plots.plot_active_sampling(tmp_path / "nope.json")
    only_late = {"config": {}, "summary": {}, "runs": [synthetic_result()["runs"][-1]]}
    with pytest.raises(BayesArenaError, match="no active-sampling runs"):
        plots.plot_active_sampling(only_late)


# ---- the CLI --------------------------------------------------------------------------------
def test_cli_writes_every_kind(arena, tmp_path):
    post, df = arena
    path = post.save(tmp_path / "arena.nc")
    votes = tmp_path / "votes.parquet"
    df.to_parquet(votes)
    results = tmp_path / "active.json"
    results.write_text(json.dumps(synthetic_result()))
    runner = CliRunner()
    for kind in plots.KINDS:
        source = results if kind == "active-sampling" else path
        out = tmp_path / f"{kind}.png"
        args = ["plot", str(source), kind, "-o", str(out)]
        if kind == "ppc":
            args += ["--data", str(votes)]
        if kind in ("forest", "rank-heatmap"):
            args += ["--category", "coding", "--top", "5"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (kind, result.output)
        data = out.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, kind
    plt.close("all")


def test_cli_errors_are_one_line(arena, post, tmp_path):
    arena_path = arena[0].save(tmp_path / "arena.nc")
    plain_path = post.save(tmp_path / "plain.nc")
    runner = CliRunner()
    cases = [
        ([str(arena_path), "bogus"], "unknown figure kind 'bogus'"),
        ([str(arena_path), "ppc"], "--data"),
        ([str(arena_path), "forest", "--category", "cooking"], "cooking"),
        ([str(plain_path), "category-shifts"], "no categories component"),
        ([str(arena_path), "forest", "--top", "0"], "top must be"),
        ([str(tmp_path / "missing.nc"), "forest"], "no posterior file"),
    ]
    for args, message in cases:
        out = tmp_path / "x.png"
        result = runner.invoke(app, ["plot", *args, "-o", str(out)])
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert message in lines[0], (message, lines[0])
        assert "Traceback" not in result.output and not out.exists()
