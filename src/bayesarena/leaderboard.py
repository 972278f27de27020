"""The leaderboard table and its exports (CSV, JSON, Markdown).

Columns, one row per model, sorted by posterior mean rating:

- ``rank``: position by posterior mean; ``model``; ``votes``;
- ``rating`` (posterior mean), ``rating_median``, ``rating_lower`` / ``rating_upper``: the
  equal-tailed ``prob`` credible interval on the Elo scale;
- ``p_top1``: posterior probability of being ranked first;
- ``rank_median``; ``rank_lower`` / ``rank_upper``: joint (simultaneous) rank intervals at level
  ``prob`` (:func:`bayesarena.ranking.joint_rank_intervals`);
- ``rank_ub``: LMArena's "Rank (UB)" from the marginal rating intervals, for comparison;
- with a style component (overall board only): ``rating_with_style`` and its interval, the
  rating with each model's usual style advantage left in (LMArena's "default" board), beside
  the style-controlled ``rating``.

``category="coding"`` gives that category's board from the same pooled fit (strengths
``theta + delta[:, c]``, votes in the category).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesarena.errors import BayesArenaError
from bayesarena.ranking import (
    joint_rank_intervals,
    marginal_intervals,
    rank_draws,
    rank_probabilities,
    rank_upper_bound,
)
from bayesarena.scale import DEFAULT_BASE, to_elo

if TYPE_CHECKING:
    from bayesarena.posterior import Posterior

FORMATS = ("md", "csv", "json")


def leaderboard(
    posterior: Posterior,
    *,
    prob: float = 0.95,
    base: float = DEFAULT_BASE,
    anchor: str | None = None,
    category: str | None = None,
) -> pd.DataFrame:
    """Build the leaderboard (see the module docstring). ``anchor`` pins that model at
    ``base``; otherwise the mean rating is ``base``."""
    theta = posterior.strength_draws(category)
    models = posterior.models
    votes = (posterior.votes_per_model if category is None
             else posterior.category_votes(category))
    ratings = to_elo(theta, models, base=base, anchor=anchor)
    lower, upper = marginal_intervals(ratings, prob)
    ranks = rank_draws(theta)
    rank_lo, rank_hi, _ = joint_rank_intervals(ranks, prob)
    table = pd.DataFrame({
        "model": list(models),
        "votes": votes.reindex(list(models)).to_numpy(),
        "rating": ratings.mean(axis=0),
        "rating_median": np.median(ratings, axis=0),
        "rating_lower": lower,
        "rating_upper": upper,
        "p_top1": rank_probabilities(ranks)[:, 0],
        "rank_median": np.median(ranks, axis=0),
        "rank_lower": rank_lo,
        "rank_upper": rank_hi,
        "rank_ub": rank_upper_bound(lower, upper),
    })
    styled = posterior.style_inclusive_draws() if category is None else None
    if styled is not None:
        styled_elo = to_elo(styled, models, base=base, anchor=anchor)
        table["rating_with_style"] = styled_elo.mean(axis=0)
        table["rating_with_style_lower"], table["rating_with_style_upper"] = (
            marginal_intervals(styled_elo, prob))
    table = table.sort_values("rating", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs.update({"prob": prob, "base": base, "anchor": anchor, "category": category,
                        "spec": posterior.spec.name, "method": posterior.method})
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (written here to avoid a dependency on tabulate)."""
    prob = table.attrs.get("prob", 0.95)
    pct = f"{100 * prob:g}%"
    view = pd.DataFrame({
        "Rank": table["rank"],
        "Model": table["model"].map(_md_escape),
        "Rating": table["rating"].map("{:.0f}".format),
        f"{pct} CrI": [f"{lo:.0f} – {hi:.0f}" for lo, hi in
                       zip(table["rating_lower"], table["rating_upper"], strict=True)],
        "Votes": table["votes"].map("{:,}".format),
        "P(top 1)": table["p_top1"].map("{:.3f}".format),
        f"Rank ({pct} joint)": [f"{lo}–{hi}" for lo, hi in
                                zip(table["rank_lower"], table["rank_upper"], strict=True)],
        "Rank (UB)": table["rank_ub"],
    })
    header = "| " + " | ".join(view.columns) + " |"
    align = "|" + "|".join("---:" if c not in ("Model",) else ":---" for c in view.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in view.itertuples(index=False)]
    return "\n".join([header, align, *rows]) + "\n"


def to_json(table: pd.DataFrame) -> str:
    """JSON with the settings (``prob``, ``base``, ``anchor``, spec) and one record per model."""
    payload = {"settings": {k: v for k, v in table.attrs.items()},
               "models": json.loads(table.to_json(orient="records"))}
    return json.dumps(payload, indent=2)


def export(table: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write the table as CSV, JSON or Markdown (from ``fmt`` or the file suffix)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").replace("markdown", "md")
    text = render(table, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as text in ``fmt`` (``md``, ``csv`` or ``json``)."""
    if fmt == "md":
        return to_markdown(table)
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return to_json(table)
    raise BayesArenaError(f"unknown leaderboard format {fmt!r}: use one of {list(FORMATS)}")


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
