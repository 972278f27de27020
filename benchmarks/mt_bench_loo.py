"""Real data: which components do the MT-Bench expert votes support? PSIS-LOO per vote.

The 1,751 expert votes of ``../shared/data/mt_bench_human/`` (6 models, 65 judges, 8
categories; ties but no both-bad) are fitted with Bradley-Terry-Davidson and with the arena
model's voter and category components switched on one at a time and together (no style: there
is no conv_metadata; no position: in this subset llama-13b is always model_a, so position is
confounded). Every fit is NUTS, 4 chains x 1000 draws (diagnostics recorded beside each
row); the comparison is PSIS-LOO with one vote
as the unit (``bayesarena.loo``). Voters need 20 votes for their own discrimination.

    .venv/bin/python benchmarks/mt_bench_loo.py

Writes ``benchmarks/results/mt_bench_loo.json`` and ``.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import bayesarena as ba
from bayesarena.loo import compare_posteriors
from bayesarena.spec import parse_spec

DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "mt_bench_human"
        / "mt_bench_human_votes_subset.csv")
RESULTS = Path(__file__).resolve().parent / "results"


def specs() -> list[ba.ModelSpec]:
    def spec(name: str, **components) -> ba.ModelSpec:
        return parse_spec({"name": name, **{k: {"enabled": True, **v}
                                            for k, v in components.items()}})

    return [
        ba.load_spec("bt-davidson"),
        spec("bt-davidson+voters", voters={"min_votes": 20}),
        spec("bt-davidson+categories", categories={}),
        spec("bt-davidson+categories+voters", categories={}, voters={"min_votes": 20}),
        ba.load_spec("rao-kupper"),
        ba.load_spec("thurstone"),
    ]


def markdown(table) -> str:
    """A Markdown table (pandas' to_markdown needs tabulate, not a dependency)."""
    cols = [table.index.name or "spec", *table.columns]
    rows = [[str(i), *(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r)]
            for i, r in zip(table.index, table.itertuples(index=False), strict=True)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> dict:
    votes = ba.read_votes(DATA)
    posteriors = {s.name: ba.fit(votes, s, seed=0, chains=4, warmup=500, draws=1000,
                                 progress=False) for s in specs()}
    diagnostics = {name: p.diagnostics.to_dict() for name, p in posteriors.items()}
    result = compare_posteriors(posteriors, votes)
    table = result.table.copy()
    table["max_rhat"] = [diagnostics[n]["max_rhat"] for n in table.index]
    table["min_ess_bulk"] = [diagnostics[n]["min_ess_bulk"] for n in table.index]
    table["divergences"] = [diagnostics[n]["divergences"] for n in table.index]
    print(table.to_string())
    for sentence in result.sentences():
        print(sentence)
    out = {"data": str(DATA.name), "votes": votes.summary.votes_used, **result.to_dict(),
           "diagnostics": diagnostics}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mt_bench_loo.json").write_text(json.dumps(out, indent=2, default=float))
    (RESULTS / "mt_bench_loo.md").write_text(
        "Command: `.venv/bin/python benchmarks/mt_bench_loo.py`\n\n"
        + markdown(table) + "\n\n" + "\n".join(result.sentences()) + "\n")
    return out


if __name__ == "__main__":
    main()
