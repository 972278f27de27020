"""The paper's generated inputs (``paper/generated/*.tex``) are in sync with the results files.

``paper/generate.py`` writes every table and every number the paper quotes from
``benchmarks/results/*.json`` and ``models/*.toml``. These tests regenerate them in a temporary
directory (tables and macros only, no figures, no fitting) and compare with the committed copies,
check some macros against the JSON they come from, and check that a missing results file gives
a placeholder rather than a number.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "paper"
RESULTS = REPO / "benchmarks" / "results"
COMMITTED = PAPER / "generated"


def _load_generator():
    spec = importlib.util.spec_from_file_location("paper_generate", PAPER / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_generate"] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def macros(path: Path) -> dict[str, str]:
    """``{name: value}`` of the ``\\newcommand`` lines of a generated macros file."""
    found = re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$",
                       path.read_text(encoding="utf-8"), flags=re.M)
    return dict(found)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    gen.generate(RESULTS, REPO / "models", out, figures=False)
    return out


def test_generated_tex_in_sync_with_results(regenerated):
    fresh = {p.name: p.read_text(encoding="utf-8") for p in regenerated.glob("*.tex")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.tex")}
    hint = "run `make paper` (or `.venv/bin/python paper/generate.py`) and commit paper/generated"
    assert sorted(fresh) == sorted(committed), f"generated files differ: {hint}"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date with benchmarks/results: {stale}; {hint}"


def test_macros_equal_the_json(regenerated):
    m = macros(regenerated / "macros.tex")
    sbc = json.loads((RESULTS / "sbc.json").read_text())
    assert gen.parse_number(m["SBCbtDavidsonSims"]) == sbc["specs"]["bt-davidson"]["n_sims"]
    assert gen.parse_number(m["SBCbtDavidsonDivergentSims"]) == (
        sbc["specs"]["bt-davidson"]["sampler"]["sims_with_divergences"])
    flagged = [q for q in sbc["specs"]["bt-ties-half"]["quantities"] if q["verdict"] != "ok"]
    assert gen.parse_number(m["SBCbtTiesHalfFlagged"]) == len(flagged)

    pooling = json.loads((RESULTS / "pooling.json").read_text())["summary"]
    for method in ("pooled", "separate"):
        value = gen.parse_number(m[f"Pooling{method.capitalize()}SparseRMSE"])
        assert value == pytest.approx(pooling[f"{method}_rmse_sparse"], abs=0.05)  # 1 decimal

    loo = json.loads((RESULTS / "mt_bench_loo.json").read_text())
    row = next(s for s in loo["specs"] if s["spec"] == "bt-davidson")
    assert gen.parse_number(m["MTBenchbtDavidsonDiff"]) == pytest.approx(-row["elpd_diff"],
                                                                         abs=0.05)
    assert gen.parse_number(m["MTBenchbtDavidsonElpd"]) == pytest.approx(row["elpd_loo"],
                                                                         abs=0.05)

    if (RESULTS / "sports.json").exists():
        sports = json.loads((RESULTS / "sports.json").read_text())["datasets"]["football"]
        assert gen.parse_number(m["SportsFootballHomeElo"]) == pytest.approx(
            sports["home_advantage_elo"]["mean"], abs=0.5)
        assert gen.parse_number(m["SportsFootballDrawRate"]) == pytest.approx(
            sports["draw_rate"], abs=5e-4)  # a percentage with one decimal


def test_number_formatting_round_trips():
    for x, digits in ((-1514.148, 1), (1_000_000, 0), (0.0049, 2), (12.5, 0)):
        assert gen.parse_number(gen.num(x, digits)) == pytest.approx(round(x, digits))
    assert gen.num(-0.004, 2) == "0.00"  # no negative zero
    assert gen.parse_number(gen.pct(0.266)) == pytest.approx(0.266)
    assert gen.camel("bt-davidson+categories+voters") == "btDavidsonCategoriesVoters"
    assert gen.tex("a_b & 50%") == r"a\_b \& 50\%"


def test_missing_results_give_placeholders_not_numbers(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("sbc.json", "pooling.json"):
        shutil.copy(RESULTS / name, results / name)
    out = gen.generate(results, REPO / "models", tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "tab_sports.tex").read_text()
    assert r"\missingresults{benchmarks/sports.py}" in text
    assert "sports.json" in out.missing and "sbc.json" not in out.missing
    m = macros(tmp_path / "out" / "macros.tex")
    assert not [k for k in m if k.startswith(("Sports", "MTBench"))
                and not k.endswith("Command")]
    flags = (tmp_path / "out" / "macros.tex").read_text()
    assert r"\Sportsavailablefalse" in flags and r"\SBCavailabletrue" in flags


def _paper_macros_by_prefix() -> dict[str, set[str]]:
    used = set(re.findall(r"\\([A-Za-z]+)", (PAPER / "paper.tex").read_text()))
    prefixes = {"SBC": "sbc.json", "Pooling": "pooling.json", "MTBench": "mt_bench_loo.json",
                "Audit": "audit_mt_bench.json", "Sports": "sports.json", "Perf": "fit_scaling.json",
                "ArenaMid": "arena_scaling_mid.json", "Grad": "arena_gradient.json",
                "Agg": "parquet_aggregation.json", "ASFifty": "active_sampling_50.json",
                "ASTwoHundred": "active_sampling_200.json", "Lat": "recommend_latency.json",
                "ASScoreMix": "active_sampling_50_scoremix.json",
                "ASHighCap": "active_sampling_50_crowded.json",
                "TreeDepth": "tree_depth.json", "ArenaCapped": "arena_scaling_depth4.json",
                "ArenaLong": "arena_scaling_accept065_draws1000.json"}
    out: dict[str, set[str]] = {}
    for name in used:
        for prefix, filename in prefixes.items():
            if name.startswith(prefix) and not name.endswith("Command"):
                out.setdefault(filename, set()).add(name)
    return out


def test_every_number_the_paper_quotes_is_generated(regenerated):
    """Each results-dependent macro in paper.tex is defined whenever its results file exists
    (otherwise the text around it sits in a false ``\\if...available`` branch)."""
    defined = set(macros(regenerated / "macros.tex"))
    for filename, names in _paper_macros_by_prefix().items():
        if (RESULTS / filename).exists():
            assert names <= defined, f"{filename}: undefined {sorted(names - defined)}"


def test_active_sampling_layout_is_understood(tmp_path):
    """A results file in the layout of benchmarks/active_sampling.py (its own ``summarise`` on
    small synthetic runs) defines every macro the paper's active-sampling text uses."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import active_sampling
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    runs = []
    for scenario in ("normal", "crowded"):
        for seed in range(2):
            for policy in active_sampling.POLICIES:
                speed = rng.uniform(0.8, 1.2)
                traj = [{"votes": v, "p_top5": min(1.0, speed * v / 4000),
                         "tau": min(1.0, v / 3000), "tau_bottom": 0.8,
                         "width": 100 * 1000 / (v + 1000), "min_votes": v // 50}
                        for v in range(500, 6001, 500)]
                runs.append({"policy": policy, "seed": seed, "n_models": 50, "scenario": scenario,
                             "batch": 500, "cap": 6000, "floor": 0.0, "seconds": 1.0,
                             "trajectory": traj, "needed": active_sampling.votes_needed(traj)})
    for seed in range(2):
        for policy in ("uniform", "arena", "topk"):
            traj = [{"votes": 500, "p_top5": 0.1, "tau": 0.5, "tau_bottom": 0.5, "width": 90.0,
                     "min_votes": 2, "late_votes": 10}]
            runs.append({"policy": policy, "seed": seed, "n_models": 50, "scenario": "normal",
                         "cap": 6000, "seconds": 1.0, "trajectory": traj, "late_after": 200,
                         "late_total_votes_needed": int(rng.integers(100, 900))})
    result = {"config": {"seeds": 2, "batch": [500], "cap": [6000],
                         "thresholds": active_sampling.THRESHOLDS},
              "fisher_bound": {"50 models, normal": {"ratio": 0.6}},
              "summary": active_sampling.summarise(runs), "runs": runs}
    results = tmp_path / "results"
    results.mkdir()
    (results / "active_sampling_50.json").write_text(json.dumps(result))
    gen.generate(results, REPO / "models", tmp_path / "out", figures=False)
    defined = set(macros(tmp_path / "out" / "macros.tex"))
    used = _paper_macros_by_prefix().get("active_sampling_50.json", set())
    assert used and used <= defined, sorted(used - defined)
    table = (tmp_path / "out" / "tab_active_50.tex").read_text()
    assert r"\begin{tabular}" in table and "50 models, crowded" in table
    uniform = result["summary"]["50 models, normal"]["uniform"]["top5"]["median"]
    m = macros(tmp_path / "out" / "macros.tex")
    assert gen.parse_number(m["ASFiftyNormalTopFiveUniformVotes"]) == uniform


def test_results_numbers_only_inside_their_availability_branch():
    """A results-dependent macro outside every ``\\if...available`` branch would break the
    build while its results file is missing: none may appear there."""
    text = (PAPER / "paper.tex").read_text()
    prefixes = tuple(p for p in ("SBC", "Pooling", "MTBench", "Audit", "Sports", "Perf",
                                 "ArenaMid", "Grad", "Agg", "ASFifty", "ASTwoHundred", "Lat",
                                 "TreeDepth", "ArenaCapped", "ArenaLong"))
    depth, outside = 0, []
    for m in re.finditer(r"\\(if[A-Za-z]+available|fi)(?![A-Za-z])|\\([A-Za-z]+)", text):
        if m.group(1):
            depth += 1 if m.group(1).startswith("if") else -1
        elif depth == 0 and m.group(2).startswith(prefixes) and not m.group(2).endswith(
                "Command"):
            outside.append(m.group(2))
    assert depth == 0
    assert not outside, f"outside an availability branch: {sorted(set(outside))}"
