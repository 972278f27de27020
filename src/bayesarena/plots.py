"""Figures for papers and reports: one small function per figure, each returning a matplotlib
:class:`~matplotlib.figure.Figure`.

* :func:`plot_forest`: posterior mean rating per model with its 50% and 95% equal-tailed
  credible intervals on the Elo scale (``rating = 1000 + 400 / ln(10) * theta``), sorted as the
  leaderboard, the style-inclusive rating beside it when the fit has style control, and the
  joint (simultaneous) rank interval of Besag et al. (1995) on the right;
* :func:`plot_rank_heatmap`: ``P(rank_m = k)`` estimated from the joint posterior draws as the
  share of draws in which model ``m`` has rank ``k`` (:mod:`bayesarena.ranking`);
* :func:`plot_win_matrix`: ``P(i wins a vote against j)``, the posterior mean of the spec's
  outcome probability (a tie is not a win, so an even pair sits below 0.5 when ties happen);
* :func:`plot_category_shifts`: each model's category rating minus its overall rating,
  ``400 / ln(10) * delta[m, c]``, with its credible interval (the partially pooled deviations of
  a fit with a categories component);
* :func:`plot_ppc`: the posterior predictive check figure of :mod:`bayesarena.ppc`;
* :func:`plot_active_sampling`: the votes-versus-accuracy curves of
  ``benchmarks/active_sampling.py`` (median over seeds per policy) and its trade-off panel.

Colours are colour-blind safe: the Okabe & Ito (2008) palette for categorical lines and points,
``cividis`` (Nuñez, Anderton & Renslow 2018) for sequential maps and ColorBrewer's ``PuOr`` for
diverging ones (Harrower & Brewer 2003, marked colour-blind safe there). Sizes suit a paper:
single-column figures are 3.4 in wide, double-column ones 7 in, with 7-8 pt text; :func:`save`
writes at 200 dpi. Figures are built on :class:`~matplotlib.figure.Figure` directly (no pyplot
state, nothing to close) except the PPC figure, which :mod:`bayesarena.ppc` draws; the library
never selects a backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bayesarena.errors import BayesArenaError
from bayesarena.ranking import marginal_intervals, rank_draws, rank_probabilities
from bayesarena.scale import ELO_PER_LOGIT, to_elo

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesarena.posterior import Posterior
    from bayesarena.ppc import PPCResult
    from bayesarena.votes import Votes

#: Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, vermillion,
#: reddish purple, sky blue, black, yellow (last: too light for thin lines on white).
OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                              "#000000", "#F0E442")
#: Line and marker colours: Okabe-Ito without the yellow; combined with :data:`LINESTYLES` and
#: :data:`MARKERS` so more series than colours stay distinguishable (also in greyscale).
LINE_COLOURS: tuple[str, ...] = OKABE_ITO[:7]
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")
MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
SEQUENTIAL_CMAP = "cividis"
DIVERGING_CMAP = "PuOr"
#: Resolution of :func:`save` (dots per inch).
DPI = 200
#: Cells are annotated with their values up to this many models.
ANNOTATE_MAX = 15
#: Figure widths in inches.
SINGLE_COLUMN, DOUBLE_COLUMN = 3.4, 7.0
_FONT, _SMALL = 8, 7

KINDS: tuple[str, ...] = ("forest", "rank-heatmap", "win-matrix", "category-shifts", "ppc",
                          "active-sampling")

_RC = {
    "font.size": _FONT, "axes.titlesize": _FONT, "axes.labelsize": _FONT,
    "xtick.labelsize": _SMALL, "ytick.labelsize": _SMALL, "legend.fontsize": _SMALL,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "xtick.major.size": 2.5, "ytick.major.size": 2.5, "lines.linewidth": 1.2,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
}


@contextmanager
def _style() -> Iterator[None]:
    """The paper style, for the artists created inside (matplotlib's settings are restored)."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        yield


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return _root(ax.figure), ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _root(fig: Any) -> Figure:
    """The top-level figure of a (sub)figure."""
    return getattr(fig, "figure", None) or fig


def _tidy(ax: Axes) -> None:
    ax.tick_params(labelsize=_SMALL, width=0.6, length=2.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _check_top(top: int | None) -> None:
    if top is not None and top < 1:
        raise BayesArenaError(f"top must be a positive number of models, got {top}")


def _board(post: Posterior, category: str | None, prob: float, top: int | None
           ) -> pd.DataFrame:
    _check_top(top)
    board = post.leaderboard(category=category, prob=prob)
    return board if top is None else board.head(top)


def _category_label(category: str | None) -> str:
    return "" if category is None else f" in category {category!r}"


def _text_colour(rgba: Sequence[float]) -> str:
    """Black on light cells, white on dark ones (relative luminance, ITU-R BT.709)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _short(p: float) -> str:
    """A probability in two digits without the leading zero (``.37``; ``1`` for 1)."""
    if p >= 0.995:
        return "1"
    return f"{p:.2f}".lstrip("0")


def _annotate(ax: Axes, values: np.ndarray, image: Any, fmt: Any, *, fontsize: float,
              skip_below: float | None = None) -> None:
    for (r, c), v in np.ndenumerate(values):
        if not np.isfinite(v) or (skip_below is not None and abs(v) < skip_below):
            continue
        ax.text(c, r, fmt(v), ha="center", va="center", fontsize=fontsize,
                color=_text_colour(image.cmap(image.norm(v))))


def _square_size(n: int, extra: float) -> tuple[float, float]:
    side = min(max(1.0 + 0.2 * n, 2.5), DOUBLE_COLUMN - 1.0)
    return (side + extra, side)


# --------------------------------------------------------------------------------------------
# Posterior figures
# --------------------------------------------------------------------------------------------


def plot_forest(post: Posterior, *, category: str | None = None, top: int | None = None,
                prob: float = 0.95, inner: float = 0.5, ax: Axes | None = None,
                figsize: tuple[float, float] | None = None) -> Figure:
    """Forest plot of the leaderboard: one row per model, best at the top.

    For each model the posterior mean rating (dot), the equal-tailed ``inner`` (thick) and
    ``prob`` (thin) credible intervals of ``rating = 1000 + 400 / ln(10) * theta``, and with a
    style component the style-inclusive rating ``theta + beta . xbar`` (open diamond, LMArena's
    default board) beside the style-controlled one. The right axis gives the joint ``prob``
    rank interval (Besag, Green, Higdon & Mengersen 1995, Sec. 6): all models' ranks lie in
    their intervals at once with that posterior probability. ``category`` draws that
    category's board from a pooled fit; ``top`` keeps the ``top`` best models (ranks and
    intervals still come from the whole board).
    """
    if not 0 < inner < prob < 1:
        raise BayesArenaError(f"need 0 < inner < prob < 1, got inner={inner}, prob={prob}")
    board = _board(post, category, prob, top)
    n = len(board)
    ratings = to_elo(post.strength_draws(category), post.models)
    lo_in, hi_in = marginal_intervals(ratings, inner)
    where = [post.models.index(m) for m in board["model"]]
    y = np.arange(n)
    pct, pct_in = f"{100 * prob:g}%", f"{100 * inner:g}%"
    with _style():
        fig, ax = _new_axes(ax, figsize or (SINGLE_COLUMN, 1.0 + 0.2 * n))
        blue, orange = OKABE_ITO[0], OKABE_ITO[1]
        ax.hlines(y, board["rating_lower"], board["rating_upper"], color=blue, lw=0.9,
                  label=f"{pct} CrI")
        ax.hlines(y, lo_in[where], hi_in[where], color=blue, lw=2.8, label=f"{pct_in} CrI")
        ax.plot(board["rating"], y, "o", ms=3.0, mfc="white", mec=blue, mew=0.8, ls="none",
                label="posterior mean", zorder=3)
        if "rating_with_style" in board:
            ax.plot(board["rating_with_style"], y + 0.28, "D", ms=3.0, mfc="none", mec=orange,
                    mew=0.9, ls="none", label="mean with style", zorder=3)
        ax.set_yticks(y, [str(m) for m in board["model"]])
        ax.set_ylim(n - 0.5, -0.7)
        ax.set_xlabel(f"rating (Elo scale){_category_label(category)}", fontsize=_FONT)
        ax.grid(axis="x", color="0.9", lw=0.5)
        ax.set_axisbelow(True)
        ranks = ax.secondary_yaxis("right")
        ranks.set_yticks(y, [f"{lo}\u2013{hi}" if lo != hi else f"{lo}" for lo, hi in
                             zip(board["rank_lower"], board["rank_upper"], strict=True)])
        ranks.tick_params(labelsize=_SMALL, length=0)
        ranks.spines["right"].set_visible(False)
        ax.annotate(f"rank\n({pct} joint)", xy=(1.0, 1.0), xycoords="axes fraction",
                    xytext=(3, 2), textcoords="offset points", ha="left", va="bottom",
                    fontsize=_SMALL - 1, linespacing=1.0)
        _tidy(ax)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0),
                  ncol=2 if "rating_with_style" in board else 3, fontsize=_SMALL - 0.5,
                  handlelength=1.4, borderaxespad=0.1, columnspacing=1.0)
    return fig


def rank_probability_table(post: Posterior, *, category: str | None = None,
                           top: int | None = None) -> pd.DataFrame:
    """``P(rank = k)`` per model (rows, leaderboard order) and rank ``k`` (columns ``1..n``),
    the share of joint posterior draws in which the model has rank ``k``; with ``top`` the
    ``top`` best models and ranks ``1..top`` only."""
    _check_top(top)
    board = post.leaderboard(category=category)
    probs = rank_probabilities(rank_draws(post.strength_draws(category)))
    table = pd.DataFrame(probs, index=pd.Index(post.models, name="model"),
                         columns=pd.Index(np.arange(1, len(post.models) + 1), name="rank"))
    table = table.loc[board["model"]]
    return table if top is None else table.iloc[:top, :top]


def plot_rank_heatmap(post: Posterior, *, category: str | None = None, top: int | None = None,
                      annotate: bool | None = None, cmap: str = SEQUENTIAL_CMAP,
                      ax: Axes | None = None, figsize: tuple[float, float] | None = None
                      ) -> Figure:
    """Heatmap of ``P(rank = k)`` (:func:`rank_probability_table`): models in leaderboard order
    down, ranks across. ``annotate`` writes the probabilities in the cells (default: up to
    :data:`ANNOTATE_MAX` models; values below 0.005 are left blank)."""
    table = rank_probability_table(post, category=category, top=top)
    n, k = table.shape
    annotate = n <= ANNOTATE_MAX if annotate is None else annotate
    with _style():
        fig, ax = _new_axes(ax, figsize or _square_size(max(n, k), 0.9))
        image = ax.imshow(table.to_numpy(), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                          interpolation="nearest")
        ax.set_yticks(np.arange(n), [str(m) for m in table.index])
        step = 1 if k <= 20 else int(np.ceil(k / 15))
        ticks = np.arange(0, k, step)
        ax.set_xticks(ticks, [str(r) for r in table.columns[ticks]])
        ax.set_xlabel(f"rank{_category_label(category)}", fontsize=_FONT)
        if annotate:
            _annotate(ax, table.to_numpy(), image, _short, fontsize=_SMALL - 1.5,
                      skip_below=0.005)
        _heatmap_colorbar(fig, ax, image, "P(rank = k)")
    return fig


def _heatmap_colorbar(fig: Figure, ax: Axes, image: Any, label: str) -> Any:
    """The shared look of a heatmap: a slim labelled colour bar, no frame, no tick marks."""
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, aspect=30)
    bar.set_label(label, fontsize=_SMALL)
    bar.ax.tick_params(labelsize=_SMALL - 0.5, width=0.6, length=2)
    bar.outline.set_linewidth(0.5)
    ax.tick_params(labelsize=_SMALL, length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return bar


def win_matrix_table(post: Posterior, *, category: str | None = None,
                     top: int | None = None) -> pd.DataFrame:
    """``P(row model wins a vote against the column model)``, both in leaderboard order: the
    posterior mean of the spec's win probability (``post.win_matrix()``; for a ``category`` the
    same from that category's strengths). Diagonal NaN."""
    board = _board(post, category, 0.95, top)
    if category is None:
        matrix = post.win_matrix().to_pandas()
    else:
        theta = post.strength_draws(category)
        values = np.stack([post.outcome_probs_from_draws(theta[:, [i]], theta)[..., 0]
                           .mean(axis=0) for i in range(theta.shape[1])])
        np.fill_diagonal(values, np.nan)
        matrix = pd.DataFrame(values, index=list(post.models), columns=list(post.models))
    order = list(board["model"])
    out = matrix.loc[order, order]
    out.index.name, out.columns.name = "model", "opponent"
    return out


def even_match_win_probability(post: Posterior) -> float:
    """``P(win)`` of a model against an equal opponent under the fitted likelihood, the
    posterior mean of ``P(a wins | theta_a = theta_b)``: 0.5 without ties, ``1 / (2 + nu)``
    under Davidson (1970) ties (``P(tie | d = 0) = nu / (2 + nu)``), ``1 / (1 + e^eta)``
    under Rao & Kupper (1967) with threshold ``eta``. Tie probabilities at ``d = 0`` do not
    depend on the pair's mean strength, so this is the same for every pair."""
    zero = np.zeros(post.theta_draws().shape[0])
    return float(post.outcome_probs_from_draws(zero, zero)[..., 0].mean())


def plot_win_matrix(post: Posterior, *, category: str | None = None, top: int | None = None,
                    annotate: bool | None = None, center: float | None = None,
                    cmap: str = DIVERGING_CMAP, ax: Axes | None = None,
                    figsize: tuple[float, float] | None = None) -> Figure:
    """``P(row wins a vote against column)`` (:func:`win_matrix_table`) on a diverging scale,
    models in leaderboard order. A tie is not a win, so with ties two equal models sit below
    0.5; the scale is therefore centred (white) at ``center``, by default the even-match value
    :func:`even_match_win_probability` (0.5 for a spec without ties). ``annotate`` writes the
    values in the cells (default: up to :data:`ANNOTATE_MAX` models)."""
    import matplotlib as mpl

    table = win_matrix_table(post, category=category, top=top)
    n = len(table)
    annotate = n <= ANNOTATE_MAX if annotate is None else annotate
    values = table.to_numpy()
    center = even_match_win_probability(post) if center is None else float(center)
    if not 0 < center < 1:
        raise BayesArenaError(f"center must be in (0, 1), got {center}")
    with _style():
        fig, ax = _new_axes(ax, figsize or _square_size(n, 0.9))
        colours = mpl.colormaps[cmap].with_extremes(bad="0.92")
        norm = mpl.colors.TwoSlopeNorm(vcenter=center, vmin=0.0, vmax=1.0)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, norm=norm,
                          aspect="auto", interpolation="nearest")
        labels = [str(m) for m in table.index]
        ax.set_yticks(np.arange(n), labels)
        ax.set_xticks(np.arange(n), labels, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel("model", fontsize=_FONT)
        ax.set_xlabel(f"opponent{_category_label(category)}", fontsize=_FONT)
        if annotate:
            _annotate(ax, values, image, _short, fontsize=_SMALL - 1.5)
        bar = _heatmap_colorbar(fig, ax, image, "P(model wins a vote against opponent)")
        ticks = [t for t in (0.0, 0.25, 0.5, 0.75, 1.0) if abs(t - center) > 0.07]
        bar.set_ticks(sorted([*ticks, center]),
                      labels=[f"{t:.2f} even" if t == center else f"{t:g}"
                              for t in sorted([*ticks, center])])
    return fig


def category_shift_table(post: Posterior, *, categories: Sequence[str] | None = None,
                         top: int | None = None, prob: float = 0.95) -> pd.DataFrame:
    """Each model's rating in each category minus its overall rating, in Elo:
    ``400 / ln(10) * (s_mc - theta_m) = 400 / ln(10) * delta[m, c]`` per draw, summarised by the
    posterior mean and the equal-tailed ``prob`` interval. One row per (category, model), models
    in overall leaderboard order; ``excludes_zero`` marks intervals without 0."""
    if not post.categories:
        raise BayesArenaError(f"no category shifts: spec {post.spec.name!r} has no categories "
                              "component (fit a spec with categories enabled, e.g. 'arena')")
    if isinstance(categories, str):
        categories = [categories]
    chosen = list(post.categories if categories is None else categories)
    board = _board(post, None, prob, top)
    where = [post.models.index(m) for m in board["model"]]
    theta = post.theta_draws()
    rows = []
    for c in chosen:
        shift = ELO_PER_LOGIT * (post.strength_draws(c) - theta)[:, where]
        lo, hi = marginal_intervals(shift, prob)
        rows.append(pd.DataFrame({"category": c, "model": board["model"].to_numpy(),
                                  "shift": shift.mean(axis=0), "lower": lo, "upper": hi}))
    table = pd.concat(rows, ignore_index=True)
    table["excludes_zero"] = (table["lower"] > 0) | (table["upper"] < 0)
    table.attrs["prob"] = prob
    return table


def plot_category_shifts(post: Posterior, *, categories: Sequence[str] | str | None = None,
                         top: int | None = None, prob: float = 0.95,
                         style: Literal["auto", "dots", "heatmap"] = "auto",
                         ax: Axes | None = None, figsize: tuple[float, float] | None = None
                         ) -> Figure:
    """Per-category shifts (:func:`category_shift_table`) of a fit with categories.

    ``style="dots"``: one row per model (overall leaderboard order), one marker per category
    at the mean shift with its ``prob`` interval; ``"heatmap"``: models x categories, mean shift
    on a diverging scale centred at 0, a dot where the interval excludes 0. ``"auto"`` draws
    dots for up to 6 categories and 30 models, else the heatmap.
    """
    table = category_shift_table(post, categories=categories, top=top, prob=prob)
    cats = list(dict.fromkeys(table["category"]))
    models = list(dict.fromkeys(table["model"]))
    n, k = len(models), len(cats)
    if style == "auto":
        style = "dots" if k <= 6 and n <= 30 else "heatmap"
    if style not in ("dots", "heatmap"):
        raise BayesArenaError(f"unknown style {style!r}: use 'auto', 'dots' or 'heatmap'")
    pct = f"{100 * prob:g}%"
    with _style():
        if style == "dots":
            fig, ax = _new_axes(ax, figsize or (SINGLE_COLUMN, 0.95 + n * (0.12 + 0.05 * k)))
            offsets = (np.linspace(-0.32, 0.32, k) if k > 1 else np.zeros(1))
            y = np.arange(n)
            for j, c in enumerate(cats):
                part = table[table["category"] == c]
                colour = LINE_COLOURS[j % len(LINE_COLOURS)]
                yy = y + offsets[j]
                ax.hlines(yy, part["lower"], part["upper"], color=colour, lw=0.8)
                ax.plot(part["shift"], yy, MARKERS[j % len(MARKERS)], color=colour, ms=3.0,
                        ls="none", label=c)
            ax.axvline(0.0, color="0.4", lw=0.7, zorder=0)
            for r in y[1::2]:
                ax.axhspan(r - 0.5, r + 0.5, color="0.95", lw=0, zorder=-1)
            ax.set_yticks(y, models)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_xlabel(f"category rating \u2212 overall rating (Elo), mean and {pct} CrI",
                          fontsize=_FONT)
            _tidy(ax)
            ax.tick_params(axis="y", length=0)
            ax.spines["left"].set_visible(False)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0),
                      ncol=k if k <= 3 else int(np.ceil(k / 2)),
                      fontsize=_SMALL, handletextpad=0.2, columnspacing=0.9,
                      borderaxespad=0.1)
        else:
            import matplotlib as mpl

            values = np.array([table.loc[table["category"] == c, "shift"].to_numpy()
                               for c in cats]).T
            marks = np.array([table.loc[table["category"] == c, "excludes_zero"].to_numpy()
                              for c in cats]).T
            fig, ax = _new_axes(ax, figsize or (min(1.9 + 0.32 * k, DOUBLE_COLUMN),
                                                0.9 + 0.17 * n))
            limit = float(np.nanmax(np.abs(values))) or 1.0
            norm = mpl.colors.Normalize(-limit, limit)
            image = ax.imshow(values, cmap=DIVERGING_CMAP, norm=norm, aspect="auto",
                              interpolation="nearest")
            for (r, c), v in np.ndenumerate(values):
                colour = _text_colour(image.cmap(norm(v)))
                if n <= 2 * ANNOTATE_MAX and k <= 12:
                    ax.text(c, r, f"{v:+.0f}".replace("-", "\u2212"), ha="center",
                            va="center", fontsize=_SMALL - 1.5, color=colour,
                            fontweight="bold" if marks[r, c] else "normal")
                elif marks[r, c]:
                    ax.plot(c, r, ".", ms=3.0, color=colour)
            ax.set_yticks(np.arange(n), models)
            ax.set_xticks(np.arange(k), cats, rotation=45, ha="right", rotation_mode="anchor")
            ax.set_title(f"{'bold' if n <= 2 * ANNOTATE_MAX and k <= 12 else 'dot'}: "
                         f"{pct} CrI excludes 0", fontsize=_SMALL - 1, loc="left")
            _heatmap_colorbar(fig, ax, image, "category \u2212 overall rating (Elo)")
    return fig


def plot_ppc(posterior: Posterior | PPCResult | str | Path,
             votes: Votes | pd.DataFrame | str | Path | None = None, *, draws: int = 500,
             pairs: int = 20, seed: int = 0, categories: int = 24,
             figsize: tuple[float, float] | None = None) -> Figure:
    """The posterior predictive check figure of :meth:`bayesarena.ppc.PPCResult.figure`
    (overall rates, per-pair and per-category win rates, observed against replicated): runs
    :func:`bayesarena.ppc.ppc` on ``posterior`` and ``votes`` unless given its result. Drawn
    by :func:`bayesarena.ppc.plot_ppc` through pyplot; close it with ``plt.close(fig)``."""
    from bayesarena import ppc as ppc_module

    if isinstance(posterior, ppc_module.PPCResult):
        result = posterior
    else:
        result = ppc_module.ppc(posterior, votes, draws=draws, pairs=pairs, seed=seed)
    fig = ppc_module.plot_ppc(result, categories=categories)
    if figsize is not None:
        fig.set_size_inches(*figsize)
    return fig


# --------------------------------------------------------------------------------------------
# The active-sampling benchmark
# --------------------------------------------------------------------------------------------

#: The benchmark's stopping thresholds, used when a results file does not record them.
ACTIVE_THRESHOLDS = {"p_top5": 0.95, "tau": 0.9, "width": 52.0}
_CURVES = (("p_top5", "P(top-5 set correct)"), ("tau", "Kendall \u03c4"),
           ("width", "mean 95% CrI width (Elo)"))


def load_results(result: dict | str | Path) -> dict:
    """A benchmark results dict, read from a JSON file when given a path."""
    if isinstance(result, dict):
        return result
    path = Path(result)
    if not path.exists():
        raise BayesArenaError(f"no benchmark results file at {path}")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BayesArenaError(f"{path} is not a JSON results file of "
                              "benchmarks/active_sampling.py") from None
    if not isinstance(loaded, dict) or "runs" not in loaded:
        raise BayesArenaError(f"{path} is not an active-sampling results file "
                              "(expected keys 'config', 'summary', 'runs')")
    return loaded


def median_curve(runs: Sequence[dict], key: str, grid: np.ndarray) -> np.ndarray:
    """Median over runs of trajectory value ``key`` at each vote count of ``grid`` (each run's
    last recorded value carried forward; NaN before a run's first record)."""
    curves = []
    for r in runs:
        votes = np.array([t["votes"] for t in r["trajectory"]])
        vals = np.array([t[key] for t in r["trajectory"]], dtype=float)
        idx = np.clip(np.searchsorted(votes, grid, side="right") - 1, 0, len(votes) - 1)
        curve = vals[idx]
        curve[grid < votes[0]] = np.nan
        curves.append(curve)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first vote
        return np.nanmedian(np.array(curves), axis=0)


def _policy_styles(policies: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {p: {"color": LINE_COLOURS[k % len(LINE_COLOURS)],
                "ls": LINESTYLES[k % 3], "marker": MARKERS[k % len(MARKERS)]}
            for k, p in enumerate(policies)}


def _trade_off(cell: dict | None) -> tuple[float, float] | None:
    """(cost on (ii)/(iii) vs uniform, saving on (i) vs the arena rule) of one summary row."""
    if not cell or not cell.get("top5") or not cell["top5"].get("ratio_to_uniform"):
        return None
    to_arena = cell["top5"].get("ratio_to_arena")
    costs = [cell[c]["ratio_to_uniform"]["median"] for c in ("tau", "width")
             if cell.get(c) and cell[c].get("ratio_to_uniform")]
    if not to_arena or not costs:
        return None
    return max(costs) - 1.0, 1.0 - to_arena["median"]


def plot_active_sampling(result: dict | str | Path, *,
                         figsize: tuple[float, float] | None = None) -> Figure:
    """The active-sampling benchmark (``benchmarks/active_sampling.py``), one row per
    (models, scenario): votes against (a) ``P(top-5 set correct)``, (b) Kendall's tau with the
    true order and (c) the mean 95% interval width (log scale), each the median over seeds per
    policy with the benchmark's threshold as a grey line; (d) the trade-off per policy: the
    cost on (ii)/(iii) against uniform pairing (median paired ratio of votes needed, minus 1;
    the dashed line is a 10% cost) and the saving on (i) against the Chatbot Arena rule
    (1 minus the median paired ratio). Late-entrant runs are not drawn. ``result`` is the
    results dict or its JSON file."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    result = load_results(result)
    config = result.get("config", {})
    thresholds = {**ACTIVE_THRESHOLDS, **config.get("thresholds", {})}
    groups: dict[str, list[dict]] = {}
    for r in result["runs"]:
        if "late_after" not in r:
            groups.setdefault(f"{r['n_models']} models, {r['scenario']}", []).append(r)
    if not groups:
        raise BayesArenaError("no active-sampling runs to plot (only late-entrant runs, or none)")
    seen = list(dict.fromkeys(r["policy"] for rs in groups.values() for r in rs))
    known = list(config.get("policies", []))
    styles = _policy_styles(known + [p for p in seen if p not in known])  # stable per policy
    policies = [p for p in styles if p in seen]
    rows = sorted(groups.items(), key=lambda kv: (kv[1][0]["n_models"], kv[1][0]["scenario"]))
    thousands = FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0")
    with _style():
        fig = Figure(figsize=figsize or (DOUBLE_COLUMN, 0.7 + 1.75 * len(rows)),
                     layout="constrained")
        subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
        for sub, (label, runs) in zip(subfigs, rows, strict=True):
            axes = sub.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.05]})
            seeds = len({r["seed"] for r in runs})
            sub.suptitle(f"{label} ({seeds} seed{'s' if seeds != 1 else ''})",
                         fontsize=_FONT, x=0.01, ha="left")
            cap = max(r["cap"] for r in runs)
            grid = np.linspace(0, cap, 300)
            for ax, (key, name) in zip(axes[:3], _CURVES, strict=True):
                for k, policy in enumerate(policies):
                    mine = [r for r in runs if r["policy"] == policy]
                    if mine:
                        st = styles[policy]
                        every = len(grid) // 6  # a few markers per line, staggered by policy
                        ax.plot(grid, median_curve(mine, key, grid), color=st["color"],
                                ls=st["ls"], lw=1.0, marker=st["marker"], ms=2.6,
                                markevery=(k * every // max(len(policies), 1), every),
                                mec="white", mew=0.3)
                ax.axhline(thresholds[key], color="0.55", lw=0.7, zorder=0)
                ax.set_title(name, fontsize=_SMALL, loc="left")
                ax.set_xlabel("votes", fontsize=_SMALL)
                ax.xaxis.set_major_formatter(thousands)
                ax.xaxis.set_major_locator(_votes_locator())
                ax.set_xlim(0, cap)
                if key == "width":
                    ax.set_yscale("log")
                    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                    ax.yaxis.set_minor_formatter(NullFormatter())
                _tidy(ax)
            ax = axes[3]
            table = result.get("summary", {}).get(label, {})
            points = {p: _trade_off(table.get(p)) for p in policies}
            for policy, point in points.items():
                if point is not None:
                    st = styles[policy]
                    ax.plot(*point, st["marker"], color=st["color"], ms=4.0, mec="white",
                            mew=0.4, ls="none")
            if all(point is None for point in points.values()):
                ax.text(0.5, 0.5, "no paired ratios\nin the summary", transform=ax.transAxes,
                        ha="center", va="center", fontsize=_SMALL - 1, color="0.4")
            ax.axvline(0.10, color="0.55", lw=0.7, ls="--", zorder=0)
            ax.axhline(0.0, color="0.55", lw=0.7, zorder=0)
            ax.set_title("trade-off", fontsize=_SMALL, loc="left")
            ax.set_xlabel("cost on (ii)/(iii) vs uniform", fontsize=_SMALL)
            ax.set_ylabel("saving on (i) vs arena", fontsize=_SMALL)
            _tidy(ax)
        handles = [Line2D([], [], color=styles[p]["color"], ls=styles[p]["ls"], lw=1.0,
                          marker=styles[p]["marker"], ms=3.5, mec="white", mew=0.4)
                   for p in policies]
        fig.legend(handles, policies, loc="outside lower center",
                   ncol=min(len(policies), 5 if len(policies) > 6 else 6), fontsize=_SMALL,
                   handlelength=2.6, columnspacing=1.2)
    return fig


def _votes_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10])


# --------------------------------------------------------------------------------------------
# One entry point for the CLI
# --------------------------------------------------------------------------------------------


def plot(source: Posterior | dict | str | Path, kind: str, *, category: str | None = None,
         top: int | None = None, data: Votes | pd.DataFrame | str | Path | None = None,
         prob: float = 0.95, figsize: tuple[float, float] | None = None) -> Figure:
    """Draw figure ``kind`` (one of :data:`KINDS`) of a posterior (a :class:`Posterior` or its
    file), or for ``active-sampling`` of a benchmark results dict or JSON file. ``category``
    selects a category board (forest, rank-heatmap, win-matrix) or the categories shown
    (category-shifts); ``data`` are the votes for ``ppc`` (required there)."""
    if kind not in KINDS:
        raise BayesArenaError(f"unknown figure kind {kind!r}: use one of {', '.join(KINDS)}")
    _check_top(top)
    if kind == "ppc" and data is None:
        raise BayesArenaError("the ppc figure needs the votes the posterior was fitted to "
                              "(--data VOTES)")
    if data is not None and kind != "ppc":
        raise BayesArenaError(f"--data is only used by the ppc figure, not {kind!r}")
    if category is not None and kind in ("ppc", "active-sampling"):
        raise BayesArenaError(f"--category is not used by the {kind} figure")
    if top is not None and kind in ("ppc", "active-sampling"):
        raise BayesArenaError(f"--top is not used by the {kind} figure")
    if kind == "active-sampling":
        return plot_active_sampling(source if isinstance(source, dict) else Path(source),
                                    figsize=figsize)
    from bayesarena.posterior import Posterior

    post = source if isinstance(source, Posterior) else Posterior.load(source)
    if category is not None:
        post.strength_draws(category)  # an unknown category fails here, naming the known ones
    if kind == "forest":
        return plot_forest(post, category=category, top=top, prob=prob, figsize=figsize)
    if kind == "rank-heatmap":
        return plot_rank_heatmap(post, category=category, top=top, figsize=figsize)
    if kind == "win-matrix":
        return plot_win_matrix(post, category=category, top=top, figsize=figsize)
    if kind == "category-shifts":
        return plot_category_shifts(post, categories=None if category is None else [category],
                                    top=top, prob=prob, figsize=figsize)
    if kind == "ppc":
        return plot_ppc(post, data, figsize=figsize)
    raise AssertionError(kind)  # pragma: no cover - KINDS is checked above


def save(fig: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix: png, pdf, svg, ...) at ``dpi``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.03)
    except ValueError as exc:  # matplotlib: "Format 'xyz' is not supported ..."
        raise BayesArenaError(f"cannot write figure {path}: {exc}") from None
    return path
