"""Real data with draws and a home advantage: Premier League football and NCAA ice hockey.

Two classic paired-comparison sets from the R package BradleyTerry2 (``../shared/data/
sports_and_surveys/``), fitted with Bradley-Terry-Davidson ties (Davidson 1970) with and
without a home-advantage effect, which is the arena model's position component
(``[position] enabled = true, source = "model_a"``: the side listed as ``model_a`` gets
``gamma`` added to its gap). Categories, voters and style are off; there are no both-bad
outcomes, so ``both_bad = "as_tie"``.

* ``BT2_football_EPL_2008_2013.csv``: 1,900 matches, seasons 2008-9 to 2012-13, columns
  ``season, home, away, result`` (1 home win, 0 draw, -1 away win): ``model_a = home``,
  ``model_b = away``, winner ``model_a | tie | model_b``. One strength per club over the five
  seasons (a static model: form within and between seasons is not modelled).
* ``BT2_icehockey_NCAA_2009_10.csv``: 1,083 games of the 2009-10 season, columns ``date,
  visitor, v_goals, opponent, o_goals, conference, result, home.ice`` with ``result`` from the
  visitor's side (1 visitor won, 0.5 tie, 0 visitor lost; it agrees with the goals on every
  row) and ``home.ice`` true when ``opponent`` played at home. ``model_a = opponent`` (the home
  side), ``model_b = visitor``. The position component has no "neutral" value (the
  ``position`` column takes ``a`` or ``b``), so the neutral-site games (``home.ice`` false)
  are left out of both fits and counted in the results.

Per data set: the draw rate; Davidson's ``nu`` (posterior mean and 95% CrI, and the draw
probability ``nu / (2 + nu)`` of two equal teams at a neutral venue); the home advantage
``gamma`` (logit, Elo = ``400 / ln 10 * gamma``, the home side's probability of winning a
decisive game ``sigmoid(gamma)`` and of winning outright ``e^{gamma/2} / (e^{gamma/2} +
e^{-gamma/2} + nu)``, both at equal strength); the top teams (Elo rating, 95% CrI, joint 95%
rank interval); sampling diagnostics (R-hat, bulk/tail ESS, divergences); and PSIS-LOO with
one game as the unit (:func:`bayesarena.loo.compare_posteriors`), with and without home
advantage.

NUTS, 4 chains x 500 draws after 500 warmup, seed 0. About 1.5 minutes per data set on 2 busy
cores (two fits and a LOO comparison each).

    .venv/bin/python benchmarks/sports.py

Writes ``benchmarks/results/sports.json`` and ``sports.md``.
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesarena as ba
from bayesarena.errors import SamplingWarning
from bayesarena.loo import compare_posteriors
from bayesarena.scale import ELO_PER_LOGIT
from bayesarena.spec import parse_spec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sports_and_surveys"
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLER = {"chains": 4, "warmup": 500, "draws": 500}
SEED = 0
TOP = 5


def specs() -> tuple[ba.ModelSpec, ba.ModelSpec]:
    """Davidson ties without and with a home-advantage (position) effect; default priors
    (``sigma ~ HalfNormal(1)``, ``log nu ~ N(-0.5, 1)``, ``gamma ~ N(0, 0.5)``)."""
    base = {"likelihood": {"link": "logit", "ties": "davidson", "both_bad": "as_tie"}}
    plain = parse_spec({"name": "davidson", **base}, where="sports: davidson")
    home = parse_spec({"name": "davidson+home", **base,
                       "position": {"enabled": True, "source": "model_a"}},
                      where="sports: davidson+home")
    return plain, home


def football() -> tuple[pd.DataFrame, dict]:
    """EPL matches as votes: model_a = home, model_b = away."""
    raw = pd.read_csv(DATA / "BT2_football_EPL_2008_2013.csv")
    winner = raw["result"].map({1: "model_a", 0: "tie", -1: "model_b"})
    votes = pd.DataFrame({"model_a": raw["home"], "model_b": raw["away"], "winner": winner})
    info = {"file": "BT2_football_EPL_2008_2013.csv", "rows": len(raw),
            "seasons": sorted(raw["season"].unique().tolist()), "left_out": 0,
            "left_out_reason": ""}
    return votes, info


def hockey() -> tuple[pd.DataFrame, dict]:
    """NCAA games on home ice as votes: model_a = home side (``opponent``), model_b = visitor;
    ``result`` is the visitor's (1 win, 0.5 tie, 0 loss)."""
    raw = pd.read_csv(DATA / "BT2_icehockey_NCAA_2009_10.csv")
    home_ice = raw["home.ice"].astype(bool)
    kept = raw[home_ice]
    winner = kept["result"].map({1.0: "model_b", 0.5: "tie", 0.0: "model_a"})
    votes = pd.DataFrame({"model_a": kept["opponent"], "model_b": kept["visitor"],
                          "winner": winner}).reset_index(drop=True)
    info = {"file": "BT2_icehockey_NCAA_2009_10.csv", "rows": len(raw),
            "seasons": ["2009-10"], "left_out": int((~home_ice).sum()),
            "left_out_reason": "neutral site (home.ice false): the position component has no "
                               "neutral value"}
    return votes, info


def interval(x: np.ndarray) -> dict[str, float]:
    """Posterior mean and equal-tailed 95% interval."""
    lo, hi = np.quantile(x, [0.025, 0.975])
    return {"mean": float(np.mean(x)), "lower": float(lo), "upper": float(hi)}


def analyse(name: str, frame: pd.DataFrame, info: dict) -> dict:
    votes = ba.read_votes(frame)
    outcomes = frame["winner"].value_counts()
    n = len(frame)
    plain_spec, home_spec = specs()
    posteriors, seconds = {}, {}
    for spec in (plain_spec, home_spec):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)  # recorded in the diagnostics
            posteriors[spec.name] = ba.fit(votes, spec, seed=SEED, progress=False, **SAMPLER)
        seconds[spec.name] = time.perf_counter() - t0
    home = posteriors[home_spec.name]
    p = home.tree["posterior"]
    gamma = p["position"].values.ravel()
    log_nu = p["log_nu"].values.ravel()
    nu = np.exp(log_nu)
    eh = np.exp(gamma / 2)
    board = home.leaderboard()
    top = [{"rank": int(r["rank"]), "team": str(r["model"]), "rating": float(r["rating"]),
            "lower": float(r["rating_lower"]), "upper": float(r["rating_upper"]),
            "rank_lower": int(r["rank_lower"]), "rank_upper": int(r["rank_upper"]),
            "p_top1": float(r["p_top1"]), "games": int(r["votes"])}
           for _, r in board.head(TOP).iterrows()]
    comparison = compare_posteriors(posteriors, votes)
    plain_nu = np.exp(posteriors[plain_spec.name].tree["posterior"]["log_nu"].values.ravel())
    return {
        "data": info,
        "games": n,
        "teams": len(home.models),
        "outcomes": {"home_win": int(outcomes.get("model_a", 0)),
                     "draw": int(outcomes.get("tie", 0)),
                     "away_win": int(outcomes.get("model_b", 0))},
        "draw_rate": float(outcomes.get("tie", 0) / n),
        "home_win_rate": float(outcomes.get("model_a", 0) / n),
        "away_win_rate": float(outcomes.get("model_b", 0) / n),
        "nu": interval(nu),
        "nu_without_home": interval(plain_nu),
        "draw_prob_equal_neutral": interval(nu / (2 + nu)),
        "home_advantage_logit": interval(gamma),
        "home_advantage_elo": interval(ELO_PER_LOGIT * gamma),
        "home_win_prob_decisive_equal": interval(1 / (1 + np.exp(-gamma))),
        "home_win_prob_equal": interval(eh / (eh + 1 / eh + nu)),
        "p_home_advantage_positive": float(np.mean(gamma > 0)),
        "rating_spread_sd_elo": interval(ELO_PER_LOGIT * p["sigma"].values.ravel()),
        "top": top,
        "diagnostics": {k: v.diagnostics.to_dict() for k, v in posteriors.items()},
        "fit_seconds": seconds,
        "loo": comparison.to_dict(),
    }


def markdown(result: dict) -> str:
    lines = ["# Sports data: draws and home advantage", "",
             f"Command: `.venv/bin/python benchmarks/sports.py` ({result['generated']}, "
             f"{result['machine']}). NUTS {SAMPLER['chains']} chains x {SAMPLER['draws']} "
             f"draws after {SAMPLER['warmup']} warmup, seed {SEED}; Davidson ties, default "
             "priors; home advantage = the position component (model_a = home side).", ""]
    for key, r in result["datasets"].items():
        d = r["data"]
        ha, hw = r["home_advantage_elo"], r["home_win_prob_equal"]
        lines += [f"## {key}: `{d['file']}`", "",
                  f"- {r['games']:,} games, {r['teams']} teams"
                  + (f"; {d['left_out']} games left out ({d['left_out_reason']})"
                     if d["left_out"] else "")
                  + f". Home wins {r['home_win_rate']:.1%}, draws {r['draw_rate']:.1%}, "
                  f"away wins {r['away_win_rate']:.1%}.",
                  f"- Davidson nu: {r['nu']['mean']:.3f} [{r['nu']['lower']:.3f}, "
                  f"{r['nu']['upper']:.3f}]; draw probability of two equal teams at a neutral "
                  f"venue {r['draw_prob_equal_neutral']['mean']:.1%}.",
                  f"- Home advantage: {ha['mean']:.0f} Elo [{ha['lower']:.0f}, "
                  f"{ha['upper']:.0f}] ({r['home_advantage_logit']['mean']:.3f} logit); at "
                  f"equal strength the home side wins {hw['mean']:.1%} [{hw['lower']:.1%}, "
                  f"{hw['upper']:.1%}] of games and "
                  f"{r['home_win_prob_decisive_equal']['mean']:.1%} of decisive ones.",
                  "", "| rank | team | rating | 95% CrI | joint rank interval | P(top 1) | games |",
                  "|---:|---|---:|---|---|---:|---:|"]
        for t in r["top"]:
            lines.append(f"| {t['rank']} | {t['team']} | {t['rating']:.0f} | {t['lower']:.0f}"
                         f"-{t['upper']:.0f} | {t['rank_lower']}-{t['rank_upper']} | "
                         f"{t['p_top1']:.2f} | {t['games']} |")
        lines += ["", "| spec | max R-hat | min bulk ESS | min tail ESS | divergences | fit (s) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, g in r["diagnostics"].items():
            lines.append(f"| {name} | {g['max_rhat']:.3f} | {g['min_ess_bulk']:.0f} | "
                         f"{g['min_ess_tail']:.0f} | {g['divergences']} | "
                         f"{r['fit_seconds'][name]:.1f} |")
        lines += ["", "| spec | elpd_loo | SE | elpd_diff | SE diff | p_loo | max Pareto k |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s in r["loo"]["specs"]:
            lines.append(f"| {s['spec']} | {s['elpd_loo']:.1f} | {s['se']:.1f} | "
                         f"{s['elpd_diff']:.1f} | {s['se_diff']:.1f} | {s['p_loo']:.1f} | "
                         f"{s['max_k']:.2f} |")
        lines += [""] + [f"{s}." for s in r["loo"]["summary"]] + [""]
    return "\n".join(lines)


def main() -> dict:
    result = {"generated": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()}, Python {platform.python_version()}",
              "sampler": {**SAMPLER, "seed": SEED}, "datasets": {}}
    for key, loader in (("football", football), ("hockey", hockey)):
        frame, info = loader()
        result["datasets"][key] = analyse(key, frame, info)
        print(f"{key}: done")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sports.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "sports.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
