"""Real data: the audit report (``bayesarena audit``) of the MT-Bench expert votes.

The 1,751 expert votes of ``../shared/data/mt_bench_human/`` (6 models, 65 judges; ties but no
both-bad) are audited with ``models/bt-davidson.toml``: coverage and Gini coefficients,
position bias (the subset lists every pair in one fixed order: llama-13b is always model_a,
claude-v1 never), intransitive triads against posterior predictive replicates,
leave-one-judge-out refits of the 10 heaviest judges, and the votes to flip or drop before the
#1 model changes. Every refit is a Laplace approximation (``fit(..., method="laplace")``).

    .venv/bin/python benchmarks/audit_mt_bench.py

The same report from the command line:

    bayesarena audit ../shared/data/mt_bench_human/mt_bench_human_votes_subset.csv \\
        -o benchmarks/results/audit_mt_bench.md

Writes ``benchmarks/results/audit_mt_bench.md`` and ``.json`` (with the wall time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bayesarena.audit import audit

DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "mt_bench_human"
        / "mt_bench_human_votes_subset.csv")
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> dict:
    t0 = time.perf_counter()
    report = audit(DATA, spec="bt-davidson", top=3, heavy_voters=10, seed=0)
    seconds = time.perf_counter() - t0
    report.source = DATA.name  # no machine-specific path in the results
    report.read_summary["source"] = DATA.name
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_mt_bench.md").write_text(
        report.to_markdown()
        + f"\nWall time of the audit: {seconds:.0f} s (shared 2-core machine).\n",
        encoding="utf-8")
    payload = {**report.to_dict(), "wall_time_s": round(seconds, 1)}
    (RESULTS / "audit_mt_bench.json").write_text(json.dumps(payload, indent=2) + "\n",
                                                 encoding="utf-8")
    return payload


if __name__ == "__main__":
    out = main()
    s = out["sensitivity"]
    print(f"audit written to {RESULTS}/audit_mt_bench.{{md,json}} in {out['wall_time_s']} s; "
          f"#1 {s['top1']}: {s['min_flips']} flips / {s['min_drops']} drops of "
          f"{s['n_votes']} votes change it")
