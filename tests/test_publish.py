"""The static leaderboard site (`bayesarena publish`): files, embedded data, escaping, and the
page itself in a real headless Chromium (skipped, with the reason, where there is none)."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesarena import fit, read_votes, simulate_arena
from bayesarena.cli import app
from bayesarena.errors import InputError
from bayesarena.publish import _unique_slug, json_for_html, publish
from bayesarena.simulate import simulate_hierarchical_arena

REPO = Path(__file__).resolve().parents[1]
XSS_MODEL = "<img src=x onerror=alert(1)>"
XSS_CATEGORY = "</script><script>alert(2)</script>"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def arena_post():
    """8 models, two categories (one named like a script injection), style control, one model
    named like an image-tag injection; Laplace keeps it fast."""
    df, _ = simulate_hierarchical_arena(8, 3000, categories=("coding", "math"), n_voters=50,
                                        seed=1)
    victim = sorted(set(df["model_a"]))[3]
    df = df.replace({"model_a": {victim: XSS_MODEL}, "model_b": {victim: XSS_MODEL}})
    df["category"] = [[XSS_CATEGORY if t == "math" else t for t in tags]
                      for tags in df["category"]]
    return fit(df, "arena", method="laplace", seed=0, laplace_draws=2000, progress=False)


@pytest.fixture(scope="module")
def site(arena_post, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    index = publish(arena_post, out, title="Arena <b>board</b> & co")
    return out, index, index.read_text(encoding="utf-8")


def embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="site-data">(.*?)</script>', page,
                      re.DOTALL)
    assert match is not None
    return json.loads(match.group(1))


# ---- files and data -----------------------------------------------------------------------
def test_files_match_leaderboards(arena_post, site):
    out, index, _ = site
    assert index == out / "index.html"
    boards = [None, *arena_post.categories]
    data = embedded_data(site[2])
    assert [b["category"] for b in data["boards"]] == boards
    for board in data["boards"]:
        expected = arena_post.leaderboard(category=board["category"])
        csv = pd.read_csv(out / board["files"]["csv"])
        assert csv["model"].tolist() == expected["model"].tolist()
        np.testing.assert_allclose(csv["rating"], expected["rating"], rtol=1e-12)
        payload = json.loads((out / board["files"]["json"]).read_text())
        assert [m["model"] for m in payload["models"]] == expected["model"].tolist()
        assert payload["settings"]["category"] == board["category"]
    names = [b["files"]["csv"] for b in data["boards"]]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"leaderboard(-[a-z0-9-]+)?\.csv", n) for n in names)


def test_embedded_data_equals_leaderboard(arena_post, site):
    data = embedded_data(site[2])
    assert data["boards"][0]["key"] == "overall"
    for board in data["boards"]:
        table = arena_post.leaderboard(category=board["category"])
        rows = pd.DataFrame(board["rows"])
        assert rows["model"].tolist() == table["model"].tolist()
        for col in ("rank", "votes", "rank_lower", "rank_upper"):
            assert rows[col].tolist() == table[col].tolist()
        for col in ("rating", "rating_lower", "rating_upper", "p_top1"):
            np.testing.assert_allclose(rows[col], table[col], rtol=1e-12)
        # style control: the overall board carries rating_with_style beside the rating
        assert board["has_style"] == (board["category"] is None)
        assert ("rating_with_style" in rows) == board["has_style"]
        # rank probabilities: rows sum to one, first column is P(top-1) (4-decimal rounding)
        rp = np.array(board["rank_probs"], dtype=float)
        n = len(rows)
        np.testing.assert_allclose(rp.sum(axis=1), 1.0, atol=n * 5e-5)
        np.testing.assert_allclose(rp[:, 0], table["p_top1"], atol=5e-5)
    overall = data["boards"][0]
    order = list(overall["rows"][k]["model"] for k in range(len(overall["rows"])))
    win = np.array([[np.nan if v is None else v for v in r] for r in overall["win"]])
    expected = arena_post.win_matrix().sel(model=order, opponent=order).values
    np.testing.assert_allclose(win, expected, atol=5e-5)
    assert np.isnan(np.diag(win)).all()


def test_category_win_matrix_uses_category_strengths(arena_post, site):
    board = embedded_data(site[2])["boards"][1]
    models = [r["model"] for r in board["rows"]]
    a, b = models[0], models[-1]
    theta = arena_post.strength_draws(board["category"])
    ia, ib = arena_post.models.index(a), arena_post.models.index(b)
    p = arena_post.outcome_probs_from_draws(theta[:, ia], theta[:, ib])[:, 0].mean()
    assert board["win"][0][len(models) - 1] == pytest.approx(p, abs=5e-5)
    overall = arena_post.win_matrix().sel(model=a, opponent=b).item()
    assert abs(p - overall) > 1e-4  # a category board is not the overall board relabelled


def test_user_strings_are_escaped(site):
    _, _, page = site
    assert "<img" not in page.lower()
    assert XSS_CATEGORY not in page
    assert page.lower().count("<script") == 2  # the JSON block and the page's own script
    assert page.count("</script>") == 2
    assert "Arena &lt;b&gt;board&lt;/b&gt; &amp; co" in page
    data = embedded_data(page)
    assert XSS_MODEL in [r["model"] for r in data["boards"][0]["rows"]]
    assert XSS_CATEGORY in [b["label"] for b in data["boards"]]
    assert json_for_html({"s": "</script>&<!--"}) == (
        '{"s":"\\u003c/script\\u003e\\u0026\\u003c!--"}')


def test_self_contained_with_strict_csp(site):
    _, _, page = site
    assert re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page) is None
    assert "@import" not in page and "url(" not in page
    assert all(href.startswith("data:") for href in re.findall(r'<link[^>]*href="([^"]*)"', page))
    assert page.count("<link") == len(re.findall(r'<link[^>]*href="data:', page))
    csp = html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1))
    assert "default-src 'none'" in csp
    script = re.search(r"<script>(.*?)</script>", page, re.DOTALL).group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    for text, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp


def test_footer_has_spec_diagnostics_and_data(arena_post, site):
    _, _, page = site
    assert 'id="how-to-read"' in page and "joint" in page
    assert html.escape(arena_post.spec.to_toml()) in page
    summary = arena_post.data_summary
    assert f"{summary.rows_read:,}" in page
    assert "approximation at the posterior mode" in page  # Laplace: no MCMC diagnostics


def test_nuts_posterior_without_categories(tmp_path):
    df, _ = simulate_arena(6, 800, seed=2)
    df.loc[:9, "winner"] = "not-a-label"  # ten rows dropped and counted
    votes = read_votes(df, on_invalid="drop")
    post = fit(votes, "bt-davidson", chains=2, warmup=100, draws=100, seed=1,
               progress=False, warn=False)
    page = publish(post, tmp_path).read_text()
    data = embedded_data(page)
    assert [b["key"] for b in data["boards"]] == ["overall"]
    assert not data["boards"][0]["has_style"]
    diag = post.diagnostics
    assert f"{diag.max_rhat:.4f}" in page and f"{diag.divergences:,}" in page
    assert "Max R-hat" in page
    reason, n = next(iter(post.data_summary.dropped.items()))
    assert n == 10 and html.escape(reason) in page
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.html", "leaderboard.csv", "leaderboard.json"]


def test_bad_level_is_refused(arena_post, tmp_path):
    with pytest.raises(InputError, match="prob"):
        publish(arena_post, tmp_path, prob=1.5)


def test_slugs_are_safe_and_unique():
    taken: set[str] = set()
    for name in ["Hard Prompts", "hard-prompts", "", "overall", "日本語", "../x"]:
        slug = _unique_slug(name, taken)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) and slug not in taken
        assert slug != "overall"
        taken.add(slug)


def test_cli_publish(arena_post, tmp_path):
    path = arena_post.save(tmp_path / "post.nc")
    runner = CliRunner()
    result = runner.invoke(app, ["publish", str(path), "-o", str(tmp_path / "site"),
                                 "--title", "My board"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<title>My board</title>" in page
    missing = runner.invoke(app, ["publish", str(tmp_path / "nope.nc")])
    assert missing.exit_code == 2 and "no posterior file" in missing.output


# ---- the page in a headless Chromium ------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def served(site):
    """The site over HTTP from localhost, as a publisher would host it."""
    handler = functools.partial(_QuietHandler, directory=str(site[0]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.problems, tab.dialogs, tab.requests = [], [], []
    tab.on("console", lambda m: m.type in ("error", "warning") and tab.problems.append(
        f"{m.type}: {m.text}"))
    tab.on("pageerror", lambda e: tab.problems.append(f"pageerror: {e}"))
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("request", lambda r: tab.requests.append(r.url))
    tab.goto(served)
    tab.wait_for_selector("table.board")
    yield tab
    context.close()


def visible_models(page) -> list[str]:
    return page.locator("table.board:visible tbody tr").evaluate_all(
        "rows => rows.map(r => r.querySelector('td.model').textContent)")


def test_page_loads_clean_in_rank_order(page, arena_post, served):
    expected = arena_post.leaderboard()["model"].tolist()
    assert visible_models(page) == expected
    assert page.locator("table.board:visible").get_attribute("data-board") == "overall"
    assert page.problems == []
    # nothing fetched from anywhere but the site's own server (no CDN, no fonts)
    assert page.requests[0] == served
    assert all(url.startswith((served, "data:")) for url in page.requests)
    page.screenshot(path=str(_screenshot_path()), full_page=True)


def test_rating_header_sorts(page, arena_post):
    expected = arena_post.leaderboard()["model"].tolist()
    header = page.locator("table.board:visible th[data-key='rating']")
    assert header.get_attribute("aria-sort") == "descending"
    header.locator("button").click()
    assert visible_models(page) == expected[::-1]
    assert header.get_attribute("aria-sort") == "ascending"
    header.locator("button").click()
    assert visible_models(page) == expected
    page.locator("table.board:visible th[data-key='votes'] button").click()
    votes = arena_post.leaderboard().set_index("model")["votes"]
    shown = [votes[m] for m in visible_models(page)]
    assert shown == sorted(shown, reverse=True)
    assert page.problems == []


def test_tabs_switch_to_category_boards(page, arena_post):
    for category in arena_post.categories:
        page.get_by_role("tab", name=category, exact=True).click()
        table = page.locator("table.board:visible")
        assert table.count() == 1
        board = arena_post.leaderboard(category=category)
        assert visible_models(page) == board["model"].tolist()
        votes = table.locator("td.votes").all_text_contents()
        assert votes == [f"{v:,}" for v in board["votes"]]
        assert page.get_by_role("tab", name=category, exact=True).get_attribute(
            "aria-selected") == "true"
        # this board's heatmaps are drawn: some pixels painted on both canvases
        painted = page.locator(".board-panel:visible canvas").evaluate_all(
            """cs => cs.map(c => c.getContext('2d').getImageData(0, 0, c.width, c.height)
                   .data.some((v, i) => i % 4 === 3 && v > 0))""")
        assert painted == [True, True]
    page.get_by_role("tab", name="Overall").click()
    assert "rating_with_style" in arena_post.leaderboard().columns
    assert page.locator("table.board:visible th[data-key='rating_with_style']").count() == 1
    assert page.problems == []


def test_injected_names_render_as_text(page):
    assert page.locator("img").count() == 0
    assert page.dialogs == []
    cell = page.locator("table.board:visible td.model", has_text="onerror")
    assert cell.text_content() == XSS_MODEL
    tab = page.get_by_role("tab", name=XSS_CATEGORY, exact=True)
    assert tab.text_content() == XSS_CATEGORY
    tab.click()
    assert page.locator("img").count() == 0 and page.dialogs == []
    assert page.problems == []


def _screenshot_path() -> Path:
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    return out / "publish_screenshot.png"
