"""A self-contained static leaderboard site from one posterior (``bayesarena publish``).

:func:`publish` writes ``index.html`` with every style sheet, script and datum inline (no CDN,
no network, nothing fetched at view time), plus each board's ``leaderboard*.csv`` and
``leaderboard*.json`` as downloads. A publisher can put the folder online as it is.

What the page shows, per board (the overall board first, then one per category of a pooled
fit, each from the same joint draws):

- the leaderboard (:func:`bayesarena.leaderboard.leaderboard`), sortable, with the equal-tailed
  credible interval drawn as a bar, the *joint* rank interval (Besag, Green, Higdon &
  Mengersen 1995: all models' ranks lie in their intervals at once with the stated
  probability), ``P(top-1)``, votes and, with style control, ``rating_with_style`` beside the
  style-controlled rating;
- ``P(i beats j)`` in one vote, the posterior mean of the likelihood's win probability
  (:meth:`bayesarena.posterior.Posterior.win_matrix`; per category from the category
  strengths ``theta + delta[:, c]``);
- ``P(rank of m = k)`` from the rank of each model in each joint draw
  (:func:`bayesarena.ranking.rank_probabilities`);

and, in the footer, how to read it, the model spec, the sampling diagnostics and the data
summary.

Safety: every user-supplied string (model, category, spec and source names, the title) reaches
the page either through ``html.escape`` or as JSON in a ``<script type="application/json">``
block with ``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026`` (so no
string can close the block), which the page's script turns into DOM nodes with
``textContent`` only. A Content-Security-Policy admits the page's own inline script and style
by their SHA-256 hashes and nothing else (no other script, no network requests).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesarena.errors import InputError
from bayesarena.leaderboard import export
from bayesarena.posterior import Posterior
from bayesarena.ranking import rank_draws, rank_probabilities

#: Leaderboard columns carried into the page (the ``rating_with_style*`` ones when present).
ROW_COLUMNS = ("rank", "model", "votes", "rating", "rating_lower", "rating_upper", "p_top1",
               "rank_median", "rank_lower", "rank_upper", "rank_ub", "rating_with_style",
               "rating_with_style_lower", "rating_with_style_upper")
#: Decimals kept for the heatmap probabilities (the page shows at most three).
MATRIX_DECIMALS = 4


def publish(
    posterior: Posterior | str | Path,
    out_dir: str | Path,
    *,
    title: str | None = None,
    prob: float = 0.95,
) -> Path:
    """Write the leaderboard site for ``posterior`` (a :class:`Posterior` or a saved file) into
    ``out_dir`` and return the path of its ``index.html``.

    Files: ``index.html`` (self-contained), ``leaderboard.csv`` / ``leaderboard.json`` for the
    overall board and ``leaderboard-<category>.csv`` / ``.json`` for each category board
    (category names reduced to ``[a-z0-9-]`` for the file names). ``prob`` is the level of
    the credible and joint rank intervals.
    """
    post = posterior if isinstance(posterior, Posterior) else Posterior.load(posterior)
    tables = _tables(post, prob)
    data = _site_data(post, tables, title=title, prob=prob)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for board, table in zip(data["boards"], tables, strict=True):
        export(table, out / board["files"]["csv"], "csv")
        export(table, out / board["files"]["json"], "json")
    index = out / "index.html"
    index.write_text(render_html(post, data), encoding="utf-8")
    return index


def site_data(post: Posterior, *, title: str | None = None, prob: float = 0.95) -> dict:
    """Everything the page's script draws, as JSON-ready Python: one entry per board
    (``overall`` first) with the leaderboard rows in rank order, ``win[i][j] = P(row i beats
    row j)`` and ``rank_probs[i][k] = P(rank of row i = k + 1)`` (rows in the board's rank
    order; ``None`` on the win matrix's diagonal)."""
    return _site_data(post, _tables(post, prob), title=title, prob=prob)


def _tables(post: Posterior, prob: float) -> list[pd.DataFrame]:
    """The leaderboard of every board: overall first, then each category."""
    if not 0 < prob < 1:
        raise InputError(f"prob must be in (0, 1), got {prob}")
    return [post.leaderboard(prob=prob, category=c) for c in (None, *post.categories)]


def _site_data(post: Posterior, tables: list[pd.DataFrame], *, title: str | None,
               prob: float) -> dict:
    boards = []
    slugs: set[str] = set()
    for table in tables:
        category = table.attrs["category"]
        order = [post.models.index(m) for m in table["model"]]
        theta = post.strength_draws(category)[:, order]
        win = _win_matrix(post, theta)
        slug = "overall" if category is None else _unique_slug(category, slugs)
        slugs.add(slug)
        stem = "leaderboard" if category is None else f"leaderboard-{slug}"
        boards.append({
            "key": slug,
            "category": category,
            "label": "Overall" if category is None else str(category),
            "files": {"csv": f"{stem}.csv", "json": f"{stem}.json"},
            "has_style": "rating_with_style" in table.columns,
            "rows": _records(table),
            "win": _matrix(win),
            "rank_probs": _matrix(rank_probabilities(rank_draws(theta))),
        })
    summary = post.data_summary
    return {
        "title": title or "Model leaderboard",
        "prob": prob,
        "spec": post.spec.name,
        "method": post.method,
        "n_models": len(post.models),
        "votes_used": summary.votes_used,
        "boards": boards,
    }


def render_html(post: Posterior, data: dict) -> str:
    """The page: static parts rendered here (escaped), the boards drawn by the inline script
    from ``data``, embedded as JSON."""
    css = _asset("publish.css")
    js = _asset("publish.js")
    csp = "; ".join([
        "default-src 'none'",
        f"script-src '{_sha256(js)}'",
        f"style-src '{_sha256(css)}'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    level = _level(data["prob"])
    esc = html.escape
    method = ("NUTS" if data["method"] == "nuts" else
              "Laplace approximation" if data["method"] == "laplace" else data["method"])
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    from bayesarena import __version__

    subtitle = " · ".join([
        f"{data['n_models']:,} models",
        f"{data['votes_used']:,} votes",
        f"model <code>{esc(data['spec'])}</code>",
        esc(method),
        f"{level} credible level",
    ])
    downloads = " ".join(
        f'<a href="{esc(b["files"][fmt])}">{esc(b["label"])} ({fmt.upper()})</a>'
        for b in data["boards"] for fmt in ("csv", "json"))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<meta name="generator" content="bayesarena {esc(__version__)}">
<link rel="icon" href="data:,">
<title>{esc(data["title"])}</title>
<style>{css}</style>
</head>
<body>
<header class="masthead">
<div class="wrap">
<h1>{esc(data["title"])}</h1>
<p class="subtitle">{subtitle}</p>
</div>
</header>
<main class="wrap" id="app">
<noscript><p class="note">This page draws its tables with JavaScript. The same leaderboards
are in the downloads: {downloads}</p></noscript>
<nav class="tabs" id="tabs" role="tablist" aria-label="Leaderboards" hidden></nav>
<div id="boards"></div>
</main>
<footer class="wrap footer">
{_how_to_read(post, data, level)}
<div class="footer-grid">
{_model_section(post, method)}
{_diagnostics_section(post)}
{_data_section(post)}
</div>
<p class="made">Generated {esc(generated)} by bayesarena {esc(__version__)}.
Every number on this page comes from one posterior; the downloads hold the same tables.</p>
</footer>
<script type="application/json" id="site-data">{json_for_html(data)}</script>
<script>{js}</script>
</body>
</html>
"""


def json_for_html(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ``<``, ``>``, ``&`` (and the line
    separators U+2028/9, via ``ensure_ascii``) are ``\\u`` escapes, so no string in it can end
    the element or open a comment. NaN and infinities are refused (JSON has none)."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---- footer sections ----------------------------------------------------------------------
def _how_to_read(post: Posterior, data: dict, level: str) -> str:
    style = any(b["has_style"] for b in data["boards"])
    items = [
        ("Rating",
         "Elo-scale strength, 1000 + 400/ln(10) &times; &theta;, with the mean over all models "
         "at 1000. A gap of 100 points means the stronger model wins about 64% of the votes "
         "that are not ties."),
        (f"{level} credible interval (the bar)",
         f"Given the model and the votes, the rating lies inside the bar with probability "
         f"{level}; the dot is the posterior mean. Overlapping bars do not mean two models are "
         "tied: the pairwise heatmap gives the probability that one beats the other."),
        (f"Rank range ({level} joint)",
         f"With probability {level}, <em>every</em> model's rank lies inside its interval at "
         "the same time (Besag et al. 1995). Joint intervals are wider than one-at-a-time "
         "intervals and can be read together: a model whose interval is 1&ndash;1 is first."),
        ("P(top-1)",
         "The posterior probability that the model is ranked first: the share of joint "
         "posterior draws in which it has the highest strength."),
        ("P(row beats column)",
         "The probability that the row model wins one vote against the column model. Ties "
         "are not wins, so P(A beats B) + P(B beats A) is below 1 when the model has ties."),
        ("P(rank = k)",
         "The probability that a model holds rank k. A bright cell far from the diagonal "
         "means the ranking there is uncertain."),
    ]
    if style:
        items.append(("Rating with style",
                      "The rating with each model's usual style advantage (answer length and "
                      "markdown) left in, as an arena without style control would rank it. "
                      "The main rating is style-controlled."))
    if post.categories:
        items.append(("Category boards",
                      "All boards come from one pooled fit: a model's strength in a category "
                      "is its overall strength plus a category deviation shrunk towards zero, "
                      "so a model with few votes in a category borrows strength from its "
                      "overall rating. Votes are the votes in that category."))
    body = "\n".join(f"<dt>{term}</dt><dd>{text}</dd>" for term, text in items)
    return f"""<section class="card how" id="how-to-read">
<h2>How to read this</h2>
<dl>{body}</dl>
</section>"""


def _model_section(post: Posterior, method: str) -> str:
    esc = html.escape
    spec = post.spec
    lik = spec.likelihood
    components = [name for name in ("categories", "voters", "style", "position")
                  if getattr(spec, name).enabled]
    rows = [
        ("Spec", f"<code>{esc(spec.name)}</code>"),
        ("Description", esc(spec.description) or "&mdash;"),
        ("Likelihood", esc(f"{lik.link} link, {lik.ties} ties, both-bad {lik.both_bad}")),
        ("Components", esc(", ".join(components)) or "strengths only"),
        ("Fitted with", esc(method)),
    ]
    if post.categories:
        rows.append(("Categories", esc(", ".join(post.categories))))
    return f"""<section class="card" id="model-spec">
<h2>Model</h2>
{_dl(rows)}
<details><summary>Spec file (TOML)</summary><pre>{esc(spec.to_toml())}</pre></details>
</section>"""


def _diagnostics_section(post: Posterior) -> str:
    from bayesarena.diagnostics import ESS_MIN, RHAT_MAX

    esc = html.escape
    diag = post.diagnostics
    if diag.method != "nuts":
        body = (f"<p>{esc(diag.method.capitalize())} approximation at the posterior mode: "
                f"{diag.draws:,} independent draws from a Gaussian. R-hat, effective sample "
                "sizes and divergences apply to MCMC only; refit with NUTS for the final "
                "board.</p>")
        status = '<span class="badge warn">approximate</span>'
    else:
        def worst(value: float, where: str, fmt: str) -> str:
            if not math.isfinite(value):
                return "&mdash;"
            return f"{value:{fmt}} <span class='muted'>({esc(where)})</span>"

        body = _dl([
            ("Chains &times; draws", f"{diag.chains} &times; {diag.draws:,}"),
            (f"Max R-hat (&le; {RHAT_MAX})", worst(diag.max_rhat, diag.worst_rhat, ".4f")),
            (f"Min bulk ESS (&ge; {ESS_MIN:.0f})",
             worst(diag.min_ess_bulk, diag.worst_ess_bulk, ",.0f")),
            (f"Min tail ESS (&ge; {ESS_MIN:.0f})",
             worst(diag.min_ess_tail, diag.worst_ess_tail, ",.0f")),
            ("Divergent transitions", f"{diag.divergences:,}"),
        ])
        if diag.ok:
            status = '<span class="badge ok">all checks passed</span>'
        else:
            status = '<span class="badge bad">problems</span>'
            body += "<ul class='problems'>" + "".join(
                f"<li>{esc(p)}</li>" for p in diag.problems) + "</ul>"
        body += ("<p class='muted'>Thresholds: Vehtari et al. (2021), rank-normalised split "
                 "R-hat and bulk/tail effective sample size.</p>")
    return f"""<section class="card" id="diagnostics">
<h2>Sampling diagnostics {status}</h2>
{body}
</section>"""


def _data_section(post: Posterior) -> str:
    esc = html.escape
    s = post.data_summary
    rows = [
        ("Source", f"<code>{esc(s.source)}</code> <span class='muted'>({esc(s.kind)} "
                   "form)</span>"),
        ("Rows read", f"{s.rows_read:,}"),
        ("Rows used", f"{s.rows_used:,} <span class='muted'>= {s.votes_used:,} votes</span>"),
    ]
    dropped = sum(s.dropped.values())
    rows.append(("Rows dropped", f"{dropped:,}" if dropped else "none"))
    rows += [(f"&nbsp;&nbsp;{esc(reason)}", f"{n:,}") for reason, n in sorted(s.dropped.items())]
    for outcome, n in post.votes_not_modelled.items():
        rows.append((f"Not modelled: {esc(outcome)}",
                     f"{n:,} <span class='muted'>(counted, not used by this spec)</span>"))
    return f"""<section class="card" id="data-summary">
<h2>Data</h2>
{_dl(rows)}
</section>"""


def _dl(rows: list[tuple[str, str]]) -> str:
    """A two-column definition list; both parts are already-escaped HTML."""
    return "<dl class='facts'>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


# ---- helpers ------------------------------------------------------------------------------
def _win_matrix(post: Posterior, theta: np.ndarray, block: int = 4_000_000) -> np.ndarray:
    """``P[i, j]``: posterior mean probability that i wins one vote against j, from strength
    draws ``theta (draws, models)`` and the fitted tie/both-bad parameters of the same draws
    (:func:`bayesarena.likelihood.outcome_probs`, as :meth:`Posterior.win_matrix` computes it
    for the overall strengths; here for any strengths, a category's too). Compiled once per
    shape and evaluated a block of rows at a time (about ``block`` draw x pair values per
    call): 150 models x 4,000 draws is 90 million values per board."""
    n_draws, n = theta.shape
    rows = min(n, max(1, block // (n_draws * n)))
    n_blocks = -(-n // rows)
    lik = post.spec.likelihood
    fn = _mean_win_prob(lik.ties, lik.both_bad, lik.link)
    params = post.outcome_param_draws()
    padded = np.concatenate([theta, np.zeros((n_draws, n_blocks * rows - n))], axis=1)
    out = np.concatenate([
        np.asarray(fn(padded[:, k * rows:(k + 1) * rows], theta, params))
        for k in range(n_blocks)])[:n]
    np.fill_diagonal(out, np.nan)
    return out


@functools.cache
def _mean_win_prob(ties: str, both_bad: str, link: str) -> Callable:
    import jax

    from bayesarena.likelihood import OutcomeParams, outcome_probs

    def mean_win(theta_i, theta_j, params):
        params = OutcomeParams(*(None if p is None else p[:, None, None] for p in params))
        ti, tj = theta_i[:, :, None], theta_j[:, None, :]
        probs = outcome_probs(ti - tj, 0.5 * (ti + tj), ties=ties, both_bad=both_bad,
                              params=params, link=link)
        return probs[..., 0].mean(axis=0)

    return jax.jit(mean_win)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in ROW_COLUMNS if c in table.columns]
    return [{c: _plain(v) for c, v in zip(cols, row, strict=True)}
            for row in table[cols].itertuples(index=False)]


def _plain(value: Any) -> Any:
    """numpy scalars to Python; NaN to ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _matrix(values: np.ndarray) -> list[list[float | None]]:
    rounded = np.round(np.asarray(values, dtype=float), MATRIX_DECIMALS)
    return [[None if not math.isfinite(v) else (0 if v == 0 else float(v)) for v in row]
            for row in rounded.tolist()]


def _unique_slug(name: str, taken: set[str]) -> str:
    """A file-name-safe ``[a-z0-9-]`` form of ``name`` not in ``taken``."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")[:60] or "category"
    if slug == "overall":
        slug = "category-overall"
    candidate, k = slug, 2
    while candidate in taken:
        candidate, k = f"{slug}-{k}", k + 1
    return candidate


def _level(prob: float) -> str:
    return f"{100 * prob:g}%"


def _asset(name: str) -> str:
    return resources.files("bayesarena").joinpath("assets", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
