"""The audit report: what a careful reader of a public leaderboard asks of its votes.

:func:`audit` answers five questions, each with numbers that come from the data or from a fit,
and renders them as Markdown or JSON (:class:`AuditReport`):

1. **Coverage.** Is the comparison graph (one node per model, an edge per pair with a vote)
   connected, and how evenly are the votes spread? The Gini coefficient of a vector ``x`` of
   ``n`` non-negative counts is the mean absolute difference over the mean, halved,

       G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x)),

   0 when every entry is equal and ``(n - 1) / n`` when one entry holds everything (Gini 1912).
   It is reported for the votes per model, the votes per pair over the pairs that have votes,
   and the votes per pair over all ``n (n - 1) / 2`` possible pairs (zeros included).
2. **Position bias.** The share of decisive votes won by the side shown first (``model_a``
   unless a ``position`` column says otherwise), with Wilson's (1927) score interval and an
   exact two-sided binomial test against 1/2. That share is confounded when the order is not
   random (MT-Bench lists ``llama-13b`` as ``model_a`` in every vote), so the report also gives
   each model's share of first positions (binomial test against 1/2, Bonferroni over models)
   and a strength-free estimate from the pairs shown in both orders: the Mantel-Haenszel
   (1959) common odds ratio over pairs of "model i wins" between "i shown first" and "i shown
   second", ``OR = exp(2 gamma)`` for a logit position effect ``gamma``, reported as
   ``P(first wins | equal strengths) = sigmoid(gamma) = sqrt(OR) / (1 + sqrt(OR))``, with the
   Robins, Breslow & Greenland (1986) variance of ``log OR`` and the Cochran-Mantel-Haenszel
   test.
3. **Intransitivity.** In the majority-preference tournament (an arc ``i -> j`` when ``i`` won
   more than half of the decisive votes between them; a pair split evenly or without decisive
   votes has no arc) a cyclic triad is ``i -> j -> k -> i``; their number is ``tr(D^3) / 3`` for
   the arc matrix ``D`` (Kendall & Babington Smith 1940). A fitted Bradley-Terry-type model
   predicts cycles too, among nearly tied models, so the count is compared with its posterior
   predictive distribution (Gelman, Meng & Stern 1996): for each of ``replicates`` posterior
   draws, each pair's decisive votes are re-drawn, ``w_i ~ Binomial(n_ij, P(i | decisive))``
   with the observed number ``n_ij`` of decisive votes, and the statistic recomputed;
   ``p = P(T_rep >= T_obs)``. Because a count cannot tell a strong cycle from a cycle of
   near-ties (three equal models form a cycle a quarter of the time), the report also gives
   the *cycle strength* ``sum over cyclic triads of min(margin on its three arcs)``, a margin
   being ``|win share - 1/2|``, with the same predictive check.
4. **Heavy voters** (a ``judge``/``voter`` column). For each of the heaviest voters, the
   posterior is refitted without their votes (Laplace) and compared with the full fit: did
   the top-``top`` set or order change, and the largest shift of a posterior mean rating (Elo;
   ratings re-centred over the models in both fits). Each voter's *agreement* is the share of
   their decisive votes that went to the model the full fit rates higher.
5. **Sensitivity of #1.** How many votes would have to flip (a win turned into a loss) or be
   dropped to change who is ranked first by posterior mean. Two search orders: *greedy*, the
   #1 model's wins against #2 first, then against #3, #4, ... (the full fit's order); and
   *influence*, decisive votes ordered by their first-order effect on the gap between #1 and
   #2 (the Bayesian infinitesimal jackknife, see :func:`top1_sensitivity`). For each, the
   number is found by doubling and then bisection, each step a Laplace refit, so with the
   first ``k`` votes changed the #1 model changed and with ``k - 1`` it did not. Either is an
   upper bound on the smallest such set (Huang, Shen, Wei & Broderick 2025, "Dropping Just a
   Handful of Preferences Can Change Top Large Language Model Rankings", arXiv:2508.11847,
   approximate the worst case by influence functions and found 2 of 57k Chatbot Arena votes).

Every refit is ``fit(..., method="laplace")`` with the audit's seed, so a refit's ranking is
a deterministic function of the cells. Only pairwise specs (no categories, voters, style or
position components) are audited: the refits work on the pair cells.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayesarena.aggregate import aggregate
from bayesarena.errors import BayesArenaError, DisconnectedGraphError
from bayesarena.fit import fit
from bayesarena.io import read_votes
from bayesarena.likelihood import OutcomeParams
from bayesarena.posterior import Posterior
from bayesarena.scale import ELO_PER_LOGIT
from bayesarena.spec import ModelSpec, load_spec
from bayesarena.validation import check_connected, sql_identifier, sql_literal
from bayesarena.votes import Cells, Votes

#: Significance level of the report's flags (position, first-position shares, intransitivity).
ALPHA = 0.05
#: Level of the report's intervals.
LEVEL = 0.95
#: Posterior predictive replicates of the intransitivity check.
DEFAULT_REPLICATES = 500
#: Heaviest voters refitted without their votes.
DEFAULT_HEAVY_VOTERS = 10
#: Cyclic triads listed in the report (strongest first).
MAX_TRIADS_SHOWN = 10
#: Rows of flipped / dropped votes kept in the report.
MAX_ROWS_KEPT = 1000
#: Models listed in the coverage table of the Markdown report.
MAX_MODELS_SHOWN = 40

_OUTCOME_COLUMNS = ("win_a", "win_b", "tie", "tie_bothbad")

# --------------------------------------------------------------------------------------------
# Small statistics
# --------------------------------------------------------------------------------------------


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient ``sum_ij |x_i - x_j| / (2 n^2 mean(x))`` of non-negative values.

    Computed from the sorted values as ``sum_i (2 i - n - 1) x_(i) / (n sum(x))`` (``i`` from
    1), which equals the double sum. 0 for equal values (and for a single value); NaN when
    every value is 0.
    """
    x = np.sort(np.asarray(values, dtype=float).ravel())
    n = x.size
    if n == 0 or x.sum() == 0:
        return float("nan")
    if np.any(x < 0):
        raise BayesArenaError("the Gini coefficient needs non-negative values")
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * x.sum()))


def wilson_interval(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's (1927) score interval for a binomial proportion:
    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``; NaNs for no trials."""
    if trials == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p(successes: int, trials: int) -> float:
    """Exact two-sided binomial test of ``P(success) = 1/2`` (NaN for no trials)."""
    if trials == 0:
        return float("nan")
    return float(stats.binomtest(int(successes), int(trials), 0.5).pvalue)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """Connectivity and balance of the comparison graph (all votes read)."""

    n_votes: int
    n_models: int
    n_pairs: int
    n_possible_pairs: int
    connected: bool
    components: list[list[str]]
    fitted_models: list[str]
    votes_per_model: dict[str, int]
    votes_per_pair: list[tuple[str, str, int]]
    gini_models: float
    gini_pairs_observed: float
    gini_pairs_possible: float

    @property
    def pair_coverage(self) -> float:
        return self.n_pairs / self.n_possible_pairs if self.n_possible_pairs else float("nan")


@dataclass
class PositionBias:
    """How often the side shown first wins, and whether the order was random."""

    available: bool
    source: str
    decisive: int = 0
    first_wins: int = 0
    share: float = float("nan")
    lower: float = float("nan")
    upper: float = float("nan")
    p_value: float = float("nan")
    flagged: bool = False
    per_model: list[dict[str, Any]] = field(default_factory=list)
    order_not_random: list[str] = field(default_factory=list)
    pairs_one_order: int = 0
    pairs_both_orders: int = 0
    mh_decisive: int = 0
    mh_odds_ratio: float = float("nan")
    mh_share: float = float("nan")
    mh_lower: float = float("nan")
    mh_upper: float = float("nan")
    mh_p_value: float = float("nan")
    notes: list[str] = field(default_factory=list)


@dataclass
class Intransitivity:
    """Cyclic triads of the majority-preference tournament against the model's prediction."""

    replicates: int
    pairs_with_majority: int
    complete_triads: int
    observed: int
    predicted_mean: float
    predicted_lower: float
    predicted_upper: float
    p_value: float
    strength_observed: float
    strength_mean: float
    strength_lower: float
    strength_upper: float
    strength_p_value: float
    flagged: bool
    cycles: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class VoterInfluence:
    """Leave-one-voter-out refits of the heaviest voters."""

    available: bool
    note: str = ""
    n_voters: int = 0
    top: list[str] = field(default_factory=list)
    voters: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TopChange:
    """Votes to flip (or drop), in one search order, before the posterior-mean #1 changes.

    ``needed``: the number found (None when the #1 model never changed); ``candidates``: votes
    available to that order; ``votes_used``: ``"winner > loser"`` -> votes changed;
    ``rows``: their rows in reading order (per-vote input), in the order they were taken.
    """

    kind: str  # "flip" or "drop"
    strategy: str  # "greedy" or "influence"
    needed: int | None
    share: float
    candidates: int
    new_top1: str | None
    refits: int
    rows: list[int] = field(default_factory=list)
    votes_used: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass
class Sensitivity:
    """Votes that decide the #1 rank: flips and drops, each by both search orders."""

    top1: str
    runner_up: str
    n_votes: int
    flips: list[TopChange]
    drops: list[TopChange]

    @property
    def min_flips(self) -> int | None:
        found = [c.needed for c in self.flips if c.needed is not None]
        return min(found) if found else None

    @property
    def min_drops(self) -> int | None:
        found = [c.needed for c in self.drops if c.needed is not None]
        return min(found) if found else None


@dataclass
class AuditReport:
    """The audit's numbers; :meth:`to_markdown`, :meth:`to_dict`, :meth:`to_json`."""

    source: str
    spec: str
    seed: int
    top: int
    n_votes: int
    n_models: int
    read_summary: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    coverage: Coverage
    position: PositionBias
    intransitivity: Intransitivity
    voters: VoterInfluence
    sensitivity: Sensitivity
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready (NaN as None); ``sensitivity`` also carries
        ``min_flips`` and ``min_drops``."""
        d = _clean(asdict(self))
        d["sensitivity"].update(min_flips=self.sensitivity.min_flips,
                                min_drops=self.sensitivity.min_drops)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditReport:
        """The report back from :meth:`to_dict` (or its JSON), e.g. to render it again."""
        sens = {k: v for k, v in d["sensitivity"].items() if k not in ("min_flips",
                                                                          "min_drops")}
        sens["flips"] = [_build(TopChange, c) for c in sens["flips"]]
        sens["drops"] = [_build(TopChange, c) for c in sens["drops"]]
        parts = {"coverage": _build(Coverage, d["coverage"]),
                 "position": _build(PositionBias, d["position"]),
                 "intransitivity": _build(Intransitivity, d["intransitivity"]),
                 "voters": _build(VoterInfluence, d["voters"]),
                 "sensitivity": _build(Sensitivity, sens)}
        return _build(cls, {**d, **parts})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        return _markdown(self)

    def write(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the report as Markdown (``md``) or JSON (``json``; default from the suffix)."""
        path = Path(path)
        fmt = fmt or ("json" if path.suffix.lower() == ".json" else "md")
        text = render(self, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def _build(cls: type, d: dict[str, Any]) -> Any:
    """``cls(**d)`` with None turned back into NaN for float fields (JSON has no NaN)."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        kwargs[f.name] = float("nan") if value is None and f.type == "float" else value
    return cls(**kwargs)


def render(report: AuditReport, fmt: str) -> str:
    """The report as text: ``md`` or ``json``."""
    if fmt == "md":
        return report.to_markdown()
    if fmt == "json":
        return report.to_json() + "\n"
    raise BayesArenaError(f"unknown audit format {fmt!r}: use 'md' or 'json'")


# --------------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------------


def audit(
    votes: Votes | pd.DataFrame | str | Path,
    *,
    spec: str | Path | ModelSpec = "bt-davidson",
    top: int = 3,
    heavy_voters: int = DEFAULT_HEAVY_VOTERS,
    seed: int = 0,
    replicates: int = DEFAULT_REPLICATES,
) -> AuditReport:
    """Audit a vote set (see the module docstring for every number and its definition).

    ``votes``: :class:`Votes` or anything :func:`~bayesarena.io.read_votes` reads. ``spec``: a
    pairwise spec (the refits work on pair cells). ``top``: the number of top ranks whose
    stability under leave-one-voter-out refits is reported. ``heavy_voters``: how many of the
    heaviest voters to refit without. ``replicates``: posterior predictive replicates of the
    intransitivity check. A disconnected comparison graph is reported, and the fit-based
    sections use its largest component.
    """
    spec = load_spec(spec)
    if spec.hierarchical:
        raise BayesArenaError(
            f"audit refits pair cells, so it needs a pairwise spec; spec {spec.name!r} has "
            "hierarchical components (categories, voters, style or position): use bt, "
            "bt-davidson, bt-ties-half, rao-kupper or thurstone")
    if top < 1:
        raise BayesArenaError(f"top must be at least 1, got {top}")
    if heavy_voters < 0 or replicates < 1:
        raise BayesArenaError("heavy_voters must be >= 0 and replicates >= 1")
    if not isinstance(votes, Votes):
        votes = read_votes(votes)
    table = vote_table(votes)
    all_cells = aggregate(votes, check_graph=False)
    cov = coverage(all_cells)
    notes: list[str] = []
    cells = all_cells
    if not cov.connected:
        cells = restrict_cells(all_cells, cov.fitted_models)
        notes.append(
            f"the comparison graph has {len(cov.components)} components; ratings are only "
            f"comparable within one, so sections 3-5 use the largest ({len(cov.fitted_models)} "
            f"of {cov.n_models} models, {cells.n_votes:,} of {all_cells.n_votes:,} votes)")
    post = refit(cells, spec, seed)
    board = post.leaderboard()
    order = list(board["model"])
    top = min(top, len(order))
    report = AuditReport(
        source=votes.summary.source,
        spec=spec.name,
        seed=seed,
        top=top,
        n_votes=all_cells.n_votes,
        n_models=all_cells.n_models,
        read_summary=votes.summary.to_dict(),
        leaderboard=[
            {"rank": int(r.rank), "model": str(r.model), "rating": float(r.rating),
             "rating_lower": float(r.rating_lower), "rating_upper": float(r.rating_upper),
             "p_top1": float(r.p_top1), "votes": int(r.votes)}
            for r in board.head(max(top, 2)).itertuples()],
        coverage=cov,
        position=position_bias(votes, table),
        intransitivity=intransitivity(post, replicates=replicates, seed=seed),
        voters=voter_influence(table, cells, post, spec, top=top, heavy_voters=heavy_voters,
                               seed=seed),
        sensitivity=top1_sensitivity(cells, post, spec, seed=seed, votes=votes),
        notes=notes,
    )
    if post.votes_not_modelled:
        report.notes.append(
            f"spec {spec.name!r} does not model " + ", ".join(
                f"{n:,} {k} votes" for k, n in post.votes_not_modelled.items())
            + "; they are left out of the fits")
    return report


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def vote_table(votes: Votes) -> pd.DataFrame:
    """Outcome counts per (``model_a``, ``model_b``, ``voter``, ``a_first``) group.

    Columns ``model_a, model_b, voter`` (None without a voter column), ``a_first`` (``model_a``
    was shown first: from the ``position`` column when there is one, else True; None for
    aggregated input, which carries no display order) and the counts ``win_a, win_b, tie,
    tie_bothbad``. One DuckDB ``GROUP BY``: only the groups come back to pandas.
    """
    ident = sql_identifier
    rel = votes.relation
    if votes.kind == "counts":
        sums = ", ".join(f"sum({ident(s)})::BIGINT AS {ident(c)}" for s, c in
                         zip(("wins_a", "wins_b", "ties", "ties_bothbad"), _OUTCOME_COLUMNS,
                             strict=True))
        sql = (f"SELECT model_a, model_b, NULL::VARCHAR AS voter, NULL::BOOLEAN AS a_first, "
               f"{sums} FROM votes GROUP BY 1, 2")
    else:
        voter = "NULL::VARCHAR"
        if "voter" in votes.optional_columns and _is_scalar(rel, "voter"):
            voter = f"CAST({ident('voter')} AS VARCHAR)"
        first = "true"
        if "position" in votes.optional_columns:
            from bayesarena.arena_data import position_sql

            first = position_sql(rel)
        o = ident("outcome")
        counts = ", ".join(
            f"count(*) FILTER (WHERE {o} = '{name}')::BIGINT AS {ident(col)}"
            for name, col in zip(("win_a", "win_b", "tie", "tie_bothbad"), _OUTCOME_COLUMNS,
                                 strict=True))
        sql = (f"SELECT model_a, model_b, {voter} AS voter, {first} AS a_first, {counts} "
               "FROM votes GROUP BY 1, 2, 3, 4")
    df = rel.query("votes", sql).df()  # type: ignore[attr-defined]
    for c in ("model_a", "model_b", "voter"):
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    for c in _OUTCOME_COLUMNS:
        df[c] = df[c].astype(np.int64)
    return df


def _is_scalar(relation: object, column: str) -> bool:
    types = dict(zip(relation.columns, relation.types, strict=True))  # type: ignore[attr-defined]
    return types[column].id not in ("list", "array", "struct", "map")


def coverage(cells: Cells) -> Coverage:
    """Connectivity and balance of the comparison graph of ``cells`` (any categories merged)."""
    pair_counts = pd.Series(cells.counts.sum(axis=1)).groupby(
        [cells.model_i, cells.model_j]).sum()
    per_model = cells.votes_per_model()
    n = cells.n_models
    possible = n * (n - 1) // 2
    try:
        check_connected(cells)
        components = [list(cells.models)]
    except DisconnectedGraphError as exc:
        components = [list(c) for c in exc.components]
    observed = pair_counts.to_numpy()
    with_zeros = np.concatenate([observed, np.zeros(possible - observed.size)])
    names = cells.models
    pairs = sorted(((names[i], names[j], int(v)) for (i, j), v in pair_counts.items()),
                   key=lambda t: (-t[2], t[0], t[1]))
    return Coverage(
        n_votes=cells.n_votes, n_models=n, n_pairs=int(observed.size), n_possible_pairs=possible,
        connected=len(components) == 1, components=components, fitted_models=components[0],
        votes_per_model={m: int(v) for m, v in sorted(zip(names, per_model, strict=True),
                                                       key=lambda t: (-t[1], t[0]))},
        votes_per_pair=pairs,
        gini_models=gini(per_model), gini_pairs_observed=gini(observed),
        gini_pairs_possible=gini(with_zeros) if possible else float("nan"))


def restrict_cells(cells: Cells, models: Sequence[str]) -> Cells:
    """The cells between two of ``models`` (re-indexed to the models that keep votes)."""
    keep = set(models)
    inside = np.array([cells.models[i] in keep and cells.models[j] in keep
                       for i, j in zip(cells.model_i, cells.model_j, strict=True)])
    return with_counts(cells, np.where(inside[:, None], cells.counts, 0))


def with_counts(cells: Cells, counts: np.ndarray) -> Cells:
    """``cells`` with new counts: empty cells dropped, models left without votes dropped and
    the rest re-indexed (order kept). Raises :class:`DisconnectedGraphError` if the graph
    falls apart."""
    counts = np.asarray(counts, dtype=np.int64)
    if np.any(counts < 0):
        raise BayesArenaError("internal: negative cell counts")
    keep = counts.sum(axis=1) > 0
    used = np.unique(np.concatenate([cells.model_i[keep], cells.model_j[keep]]))
    new_index = np.full(cells.n_models, -1, dtype=np.int32)
    new_index[used] = np.arange(used.size, dtype=np.int32)
    out = Cells(models=tuple(cells.models[k] for k in used), categories=cells.categories,
                model_i=new_index[cells.model_i[keep]], model_j=new_index[cells.model_j[keep]],
                category=cells.category[keep], counts=counts[keep], summary=cells.summary)
    check_connected(out)
    return out


def refit(cells: Cells, spec: ModelSpec, seed: int) -> Posterior:
    """The Laplace fit every number of sections 3-5 comes from."""
    return fit(cells, spec, method="laplace", seed=seed, warn=False)


def mean_ratings(post: Posterior) -> pd.Series:
    """Posterior mean Elo ratings (mean 1000 over the fitted models), best first."""
    theta = post.theta_draws().mean(axis=0)
    order = np.argsort(-theta, kind="stable")
    models = np.asarray(post.models, dtype=object)[order]
    return pd.Series(1000.0 + ELO_PER_LOGIT * theta[order], index=list(models), name="rating")


def _cell_index(cells: Cells) -> dict[tuple[str, str], int]:
    """(model_i name, model_j name) -> cell row (cells of one category)."""
    return {(cells.models[i], cells.models[j]): k
            for k, (i, j) in enumerate(zip(cells.model_i, cells.model_j, strict=True))}


def _table_counts(table: pd.DataFrame, cells: Cells) -> np.ndarray:
    """The counts of ``table``'s rows summed onto ``cells`` (rows outside them are ignored)."""
    index = _cell_index(cells)
    out = np.zeros_like(cells.counts)
    for r in table.itertuples(index=False):
        a, b = r.model_a, r.model_b
        k = index.get((a, b) if a < b else (b, a))
        if k is None:
            continue
        wins = (r.win_a, r.win_b) if a < b else (r.win_b, r.win_a)
        out[k] += (wins[0], wins[1], r.tie, r.tie_bothbad)
    return out


# --------------------------------------------------------------------------------------------
# 2. Position bias
# --------------------------------------------------------------------------------------------


def position_bias(votes: Votes, table: pd.DataFrame | None = None, *,
                  level: float = LEVEL, alpha: float = ALPHA) -> PositionBias:
    """Share of decisive votes won by the side shown first, per-model first-position shares
    and the Mantel-Haenszel estimate over pairs shown in both orders (module docstring)."""
    if votes.kind == "counts":
        return PositionBias(available=False, source="aggregated counts",
                            notes=["aggregated counts carry no display order: position bias "
                                   "needs per-vote rows"])
    table = vote_table(votes) if table is None else table
    has_column = "position" in votes.optional_columns
    source = ("the position column" if has_column
              else "model_a (assumed shown first: there is no position column)")
    first = table["a_first"].astype(bool).to_numpy()
    win_a, win_b = table["win_a"].to_numpy(), table["win_b"].to_numpy()
    decisive = int((win_a + win_b).sum())
    first_wins = int(np.where(first, win_a, win_b).sum())
    share = first_wins / decisive if decisive else float("nan")
    lower, upper = wilson_interval(first_wins, decisive, level)
    p = binomial_p(first_wins, decisive)
    out = PositionBias(available=True, source=source, decisive=decisive, first_wins=first_wins,
                       share=share, lower=lower, upper=upper, p_value=p,
                       flagged=bool(p < alpha))

    # who was shown first, per model
    n_all = table[list(_OUTCOME_COLUMNS)].sum(axis=1).to_numpy()
    first_model = np.where(first, table["model_a"], table["model_b"])
    appear = pd.concat([pd.Series(n_all, index=table["model_a"]),
                        pd.Series(n_all, index=table["model_b"])]).groupby(level=0).sum()
    shown = pd.Series(n_all, index=first_model).groupby(level=0).sum()
    shown = shown.reindex(appear.index, fill_value=0)
    threshold = alpha / max(len(appear), 1)  # Bonferroni over models
    for m in sorted(appear.index, key=lambda m: (-abs(shown[m] / appear[m] - 0.5), m)):
        pm = binomial_p(int(shown[m]), int(appear[m]))
        flag = bool(pm < threshold)
        out.per_model.append({"model": m, "votes": int(appear[m]), "shown_first": int(shown[m]),
                              "share_first": float(shown[m] / appear[m]), "p_value": pm,
                              "flagged": flag})
        if flag:
            out.order_not_random.append(m)

    # pairs shown in both orders: Mantel-Haenszel over pairs
    names_a = table["model_a"].to_numpy().astype(str)
    names_b = table["model_b"].to_numpy().astype(str)
    a_is_i = names_a < names_b
    lo = np.where(a_is_i, names_a, names_b)
    i_first = np.where(a_is_i, first, ~first)
    frame = pd.DataFrame({
        "i": lo, "j": np.where(a_is_i, table["model_b"], table["model_a"]).astype(str),
        "i_first": i_first, "win_i": np.where(a_is_i, win_a, win_b),
        "win_j": np.where(a_is_i, win_b, win_a)})
    grouped = frame.groupby(["i", "j", "i_first"])[["win_i", "win_j"]].sum().unstack(
        "i_first", fill_value=0)
    both = pd.DataFrame(index=grouped.index)
    for col in ("win_i", "win_j"):
        for flag in (True, False):
            both[f"{col}_{flag}"] = (grouped[(col, flag)] if (col, flag) in grouped.columns
                                     else 0)
    n_first_i = both["win_i_True"] + both["win_j_True"]
    n_first_j = both["win_i_False"] + both["win_j_False"]
    order_sides = frame.groupby(["i", "j"])["i_first"].nunique()
    out.pairs_both_orders = int((order_sides == 2).sum())
    out.pairs_one_order = int((order_sides == 1).sum())
    strata = both[(n_first_i > 0) & (n_first_j > 0)]
    out.mh_decisive = int(strata.to_numpy().sum())
    if len(strata):
        a, b = strata["win_i_True"].to_numpy(float), strata["win_j_True"].to_numpy(float)
        c, d = strata["win_i_False"].to_numpy(float), strata["win_j_False"].to_numpy(float)
        _mantel_haenszel(out, a, b, c, d, level)
    if out.order_not_random:
        out.notes.append(
            "the order is not random: " + "; ".join(
                f"{r['model']} shown first in {r['shown_first']:,} of {r['votes']:,} votes"
                for r in out.per_model if r["flagged"])
            + ". The raw share then mixes position with strength; the Mantel-Haenszel "
            "estimate, within pairs, does not")
    if out.pairs_both_orders == 0:
        out.notes.append("no pair was shown in both orders: the position effect cannot be "
                         "separated from the models' strengths")
    return out


def _mantel_haenszel(out: PositionBias, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                     d: np.ndarray, level: float) -> None:
    """Fill the Mantel-Haenszel fields from per-pair 2x2 tables (rows: i first / j first;
    columns: i wins / j wins): ``OR = sum(a d / n) / sum(b c / n)``, Robins-Breslow-Greenland
    variance of ``log OR``, and the continuity-corrected Cochran-Mantel-Haenszel test."""
    n = a + b + c + d
    ok = n > 1
    a, b, c, d, n = a[ok], b[ok], c[ok], d[ok], n[ok]
    if not n.size:
        return
    r_k, s_k = a * d / n, b * c / n
    p_k, q_k = (a + d) / n, (b + c) / n
    r, s = r_k.sum(), s_k.sum()
    expected = (a + b) * (a + c) / n
    variance = (a + b) * (c + d) * (a + c) * (b + d) / (n**2 * (n - 1))
    if variance.sum() > 0:
        chi2 = (abs((a - expected).sum()) - 0.5) ** 2 / variance.sum()
        out.mh_p_value = float(stats.chi2.sf(max(chi2, 0.0), df=1))
    if r <= 0 or s <= 0:
        return
    odds = r / s
    var_log = ((p_k * r_k).sum() / (2 * r**2) + (p_k * s_k + q_k * r_k).sum() / (2 * r * s)
               + (q_k * s_k).sum() / (2 * s**2))
    z = float(stats.norm.ppf(0.5 + level / 2))
    half = z * math.sqrt(var_log)

    def share(log_or: float) -> float:
        return float(1.0 / (1.0 + math.exp(-log_or / 2)))

    out.mh_odds_ratio = float(odds)
    out.mh_share = share(math.log(odds))
    out.mh_lower, out.mh_upper = share(math.log(odds) - half), share(math.log(odds) + half)


# --------------------------------------------------------------------------------------------
# 3. Intransitivity
# --------------------------------------------------------------------------------------------


def tournament(win_i: np.ndarray, win_j: np.ndarray, model_i: np.ndarray,
               model_j: np.ndarray, n_models: int) -> np.ndarray:
    """Margin matrices ``W[..., x, y] = share of decisive votes x won - 1/2`` where ``x`` won
    the majority of the decisive votes between ``x`` and ``y`` (0 elsewhere: ``y`` won, a
    split, or no decisive vote). ``win_i, win_j``: decisive wins per cell (leading axes are
    replicates); a pair spread over several cells is summed first."""
    shape = np.broadcast_shapes(win_i.shape, win_j.shape)
    lead = shape[:-1]
    wi = np.zeros((*lead, n_models, n_models))
    wj = np.zeros((*lead, n_models, n_models))
    np.add.at(wi, (..., model_i, model_j), np.broadcast_to(win_i, shape))
    np.add.at(wj, (..., model_i, model_j), np.broadcast_to(win_j, shape))
    total = wi + wj
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.where(total > 0, wi / np.where(total > 0, total, 1) - 0.5, 0.0)
    w = np.zeros_like(margin)
    w += np.where(margin > 0, margin, 0.0)
    w += np.swapaxes(np.where(margin < 0, -margin, 0.0), -1, -2)
    return w


def cyclic_triads(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(count, strength) of the cyclic triads of margin matrices ``w`` (leading axes kept):
    count = ``tr(D^3) / 3`` with ``D = [w > 0]``; strength = the sum over cyclic triads of
    the smallest margin on the cycle's three arcs."""
    d = (w > 0).astype(float)
    count = np.rint(np.einsum("...ij,...jk,...ki->...", d, d, d) / 3).astype(np.int64)
    strength = np.zeros(w.shape[:-2])
    n = w.shape[-1]
    for i in range(n):  # cycles through i: i -> j -> k -> i; every cycle is seen 3 times
        first = w[..., i, :, None]  # i -> j
        middle = w  # j -> k
        last = w[..., :, i][..., None, :]  # k -> i
        strength += np.minimum(np.minimum(first, middle), last).sum(axis=(-1, -2))
    return count, strength / 3


def intransitivity(post: Posterior, *, replicates: int = DEFAULT_REPLICATES, seed: int = 0,
                   level: float = LEVEL, alpha: float = ALPHA) -> Intransitivity:
    """Observed cyclic triads (count and strength) of the majority-preference tournament of
    the fitted cells, against ``replicates`` posterior predictive replicates that re-draw each
    pair's decisive votes (their observed number kept) from one posterior draw each."""
    cells = post.cells()
    n = cells.n_models
    wi, wj = cells.counts[:, 0], cells.counts[:, 1]
    w_obs = tournament(wi, wj, cells.model_i, cells.model_j, n)
    count_obs, strength_obs = (float(x) for x in cyclic_triads(w_obs))

    rng = np.random.default_rng(seed)
    theta = post.theta_draws()
    idx = rng.choice(theta.shape[0], size=replicates, replace=replicates > theta.shape[0])
    params = OutcomeParams(*(None if p is None else p[idx]
                             for p in post.outcome_param_draws()))
    th = theta[idx]
    decisive = (wi + wj)[None, :]
    counts, strengths = [], []
    for chunk in range(0, replicates, 100):  # bounded memory: 100 replicates at a time
        sl = slice(chunk, chunk + 100)
        chunk_params = OutcomeParams(*(None if p is None else p[sl] for p in params))
        probs = post.outcome_probs_from_draws(th[sl][:, cells.model_i], th[sl][:, cells.model_j],
                                              chunk_params)
        q = probs[..., 0] / (probs[..., 0] + probs[..., 1])
        rep_i = rng.binomial(np.broadcast_to(decisive, q.shape), q)
        w_rep = tournament(rep_i, decisive - rep_i, cells.model_i, cells.model_j, n)
        c, s = cyclic_triads(w_rep)
        counts.append(c)
        strengths.append(s)
    count_rep, strength_rep = np.concatenate(counts), np.concatenate(strengths)
    tail = (1 - level) / 2
    arcs = w_obs > 0
    complete = _complete_triads(arcs | arcs.T)
    p_count = float(np.mean(count_rep >= count_obs))
    p_strength = float(np.mean(strength_rep >= strength_obs))
    return Intransitivity(
        replicates=replicates, pairs_with_majority=int(arcs.sum()), complete_triads=complete,
        observed=int(count_obs), predicted_mean=float(count_rep.mean()),
        predicted_lower=float(np.quantile(count_rep, tail)),
        predicted_upper=float(np.quantile(count_rep, 1 - tail)), p_value=p_count,
        strength_observed=strength_obs, strength_mean=float(strength_rep.mean()),
        strength_lower=float(np.quantile(strength_rep, tail)),
        strength_upper=float(np.quantile(strength_rep, 1 - tail)),
        strength_p_value=p_strength,
        flagged=bool(count_obs > 0 and min(p_count, p_strength) < alpha),
        cycles=_list_cycles(w_obs, cells.models))


def _complete_triads(adjacent: np.ndarray) -> int:
    """Triads whose three pairs all have an arc: ``tr(A^3) / 6`` for the symmetric ``A``."""
    a = adjacent.astype(float)
    return int(np.rint(np.trace(a @ a @ a) / 6))


def _list_cycles(w: np.ndarray, models: Sequence[str]) -> list[dict[str, Any]]:
    """The observed cyclic triads, strongest first (at most :data:`MAX_TRIADS_SHOWN`)."""
    n = w.shape[0]
    found = []
    for i in range(n):
        m = np.minimum(np.minimum(w[i, :, None], w), w[:, i][None, :])
        js, ks = np.nonzero(m > 0)
        for j, k in zip(js, ks, strict=True):
            if i < j and i < k:  # each cycle once, from its smallest index
                found.append((float(m[j, k]), i, int(j), int(k)))
    found.sort(key=lambda t: -t[0])
    return [{"cycle": [models[i], models[j], models[k]],
             "win_shares": [float(0.5 + w[i, j]), float(0.5 + w[j, k]), float(0.5 + w[k, i])],
             "strength": s}
            for s, i, j, k in found[:MAX_TRIADS_SHOWN]]


# --------------------------------------------------------------------------------------------
# 4. Heavy voters
# --------------------------------------------------------------------------------------------


def voter_influence(table: pd.DataFrame, cells: Cells, post: Posterior, spec: ModelSpec, *,
                    top: int = 3, heavy_voters: int = DEFAULT_HEAVY_VOTERS,
                    seed: int = 0) -> VoterInfluence:
    """Leave-one-voter-out Laplace refits for the ``heavy_voters`` voters with most votes:
    the top-``top`` ranks after removal, the largest shift of a posterior mean rating (Elo,
    re-centred over the models of both fits) and the voter's agreement with the full fit."""
    if table["voter"].isna().all():
        return VoterInfluence(available=False,
                              note="no judge/voter column: voter influence not assessed")
    table = table[table["voter"].notna()]
    votes = table[list(_OUTCOME_COLUMNS)].sum(axis=1)
    per_voter = votes.groupby(table["voter"]).sum()
    ranked = sorted(per_voter.items(), key=lambda t: (-t[1], str(t[0])))[:heavy_voters]
    base = mean_ratings(post)
    base_top = list(base.index[:top])
    out = VoterInfluence(available=True, n_voters=int(per_voter.size), top=base_top)
    total = cells.n_votes
    for voter, n in ranked:
        mine = table[table["voter"] == voter]
        own = _table_counts(mine, cells)
        row: dict[str, Any] = {"voter": str(voter), "votes": int(n),
                               "share": float(own.sum() / total) if total else float("nan"),
                               "agreement": _agreement(mine, base)}
        try:
            sub = with_counts(cells, cells.counts - own)
        except DisconnectedGraphError as exc:
            row.update(note=f"without this voter the graph splits into {len(exc.components)} "
                            "components: not refitted")
            out.voters.append(row)
            continue
        after = mean_ratings(refit(sub, spec, seed))
        common = [m for m in base.index if m in after.index]
        shift = ((after[common] - after[common].mean()) - (base[common] - base[common].mean()))
        new_top = list(after.index[:top])
        row.update(
            top_after=new_top, top1_after=new_top[0],
            top1_changed=new_top[0] != base_top[0],
            top_set_changed=set(new_top) != set(base_top),
            top_order_changed=new_top != base_top,
            max_shift_elo=float(shift.abs().max()),
            max_shift_model=str(shift.abs().idxmax()),
            models_lost=[m for m in base.index if m not in after.index])
        out.voters.append(row)
    return out


def _agreement(rows: pd.DataFrame, ratings: pd.Series) -> float:
    """Share of the decisive votes in ``rows`` won by the model with the higher rating."""
    agree = decisive = 0
    for r in rows.itertuples(index=False):
        if r.model_a not in ratings.index or r.model_b not in ratings.index:
            continue
        a_higher = ratings[r.model_a] > ratings[r.model_b]
        agree += r.win_a if a_higher else r.win_b
        decisive += r.win_a + r.win_b
    return agree / decisive if decisive else float("nan")


# --------------------------------------------------------------------------------------------
# 5. Sensitivity of the #1 rank
# --------------------------------------------------------------------------------------------


def top1_sensitivity(cells: Cells, post: Posterior, spec: ModelSpec, *, seed: int = 0,
                     votes: Votes | None = None,
                     strategies: Sequence[str] = ("greedy", "influence")) -> Sensitivity:
    """Votes to flip, and votes to drop, before the posterior-mean #1 changes.

    ``post`` is the Laplace fit of ``cells``. Search orders (``strategies``):

    - ``"greedy"``: the #1 model's wins, against #2 first, then #3, #4, ... (``post``'s order);
    - ``"influence"``: decisive votes ordered by their linear-response effect on the gap
      ``g = theta_1 - theta_2`` between #1 and #2: by the Bayesian infinitesimal jackknife
      (Giordano, Broderick & Jordan 2018), up-weighting the votes of type ``(pair, winner)`` by
      ``dw`` moves the posterior mean of ``g`` by ``Cov(g, log p(vote | theta)) dw``, so
      dropping one moves it by about ``-Cov(g, log p_win)`` and flipping one by
      ``Cov(g, log p_loss - log p_win)``, covariances over the posterior draws. Vote types that
      would narrow the gap are taken, the largest effect first (the idea behind Huang et al.'s
      2025 approximate worst case).

    For each, ``k`` is found by doubling and then bisection, one Laplace refit a step, so the
    first ``k`` votes changed #1 and the first ``k - 1`` did not (the smallest such ``k`` when
    the effect grows with ``k``, as it does along these orders). With
    ``votes`` (per-vote form) the rows of those ``k`` votes are reported.
    """
    order = list(mean_ratings(post).index)
    top1 = order[0]
    runner_up = order[1] if len(order) > 1 else top1
    out = Sensitivity(top1=top1, runner_up=runner_up, n_votes=cells.n_votes, flips=[],
                      drops=[])
    for strategy in strategies:
        for kind, found in (("flip", out.flips), ("drop", out.drops)):
            if strategy == "greedy":
                plan = _greedy_plan(cells, top1, order[1:])
            elif strategy == "influence":
                plan = _influence_plan(cells, post, top1, runner_up, kind)
            else:
                raise BayesArenaError(f"unknown search order {strategy!r}: use 'greedy' or "
                                      "'influence'")
            change = _search(cells, plan, spec, seed, top1, kind=kind, strategy=strategy)
            if votes is not None and votes.kind == "votes" and change.needed:
                change.rows = plan_rows(votes, plan, min(change.needed, MAX_ROWS_KEPT))
            found.append(change)
    return out


@dataclass(frozen=True)
class Step:
    """A block of exchangeable votes: ``count`` wins of ``winner`` over ``loser``, held in
    column ``col`` (0: ``win_i``, 1: ``win_j``) of cell ``row``."""

    winner: str
    loser: str
    row: int
    col: int
    count: int


def _greedy_plan(cells: Cells, winner: str, opponents: Sequence[str]) -> list[Step]:
    """``winner``'s wins over each opponent in turn."""
    index = _cell_index(cells)
    plan = []
    for opp in opponents:
        k = index.get((winner, opp) if winner < opp else (opp, winner))
        if k is None:
            continue
        col = 0 if winner < opp else 1
        if cells.counts[k, col]:
            plan.append(Step(winner, opp, k, col, int(cells.counts[k, col])))
    return plan


def _influence_plan(cells: Cells, post: Posterior, top1: str, runner_up: str,
                    kind: str) -> list[Step]:
    """Decisive vote types that narrow the gap between ``top1`` and ``runner_up`` to first
    order, largest effect first (see :func:`top1_sensitivity`)."""
    if top1 == runner_up:
        return []
    index = {m: k for k, m in enumerate(post.models)}
    theta = post.theta_draws()
    mi = np.array([index[cells.models[i]] for i in cells.model_i])
    mj = np.array([index[cells.models[j]] for j in cells.model_j])
    gap = theta[:, index[top1]] - theta[:, index[runner_up]]
    gap = gap - gap.mean()
    effect = np.empty((cells.n_cells, 2))
    step = max(1, 2_000_000 // theta.shape[0])  # bounded memory: cells at a time
    for start in range(0, cells.n_cells, step):
        sl = slice(start, start + step)
        probs = post.outcome_probs_from_draws(theta[:, mi[sl]], theta[:, mj[sl]])
        with np.errstate(divide="ignore"):
            log_win = np.log(probs[..., :2])  # (draws, cells, 2): log P(i wins), log P(j wins)
        change = -log_win if kind == "drop" else log_win[..., ::-1] - log_win
        change = change - change.mean(axis=0)
        effect[sl] = np.einsum("s,skc->kc", gap, change) / (len(gap) - 1)
    steps = []
    for k, col in zip(*np.nonzero((effect < 0) & (cells.counts[:, :2] > 0)), strict=True):
        i, j = cells.models[cells.model_i[k]], cells.models[cells.model_j[k]]
        winner, loser = (i, j) if col == 0 else (j, i)
        steps.append((float(effect[k, col]), Step(winner, loser, int(k), int(col),
                                                  int(cells.counts[k, col]))))
    steps.sort(key=lambda t: (t[0], t[1].winner, t[1].loser))
    return [step for _, step in steps]


def _changed_counts(cells: Cells, plan: Sequence[Step], k: int, kind: str
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """Counts after flipping (or dropping) the first ``k`` votes of ``plan``."""
    counts = cells.counts.copy()
    used: dict[str, int] = {}
    left = k
    for step in plan:
        if left <= 0:
            break
        take = min(step.count, left)
        counts[step.row, step.col] -= take
        if kind == "flip":
            counts[step.row, 1 - step.col] += take
        used[f"{step.winner} > {step.loser}"] = take
        left -= take
    return counts, used


def _search(cells: Cells, plan: Sequence[Step], spec: ModelSpec, seed: int, top1: str, *,
            kind: str, strategy: str) -> TopChange:
    """``k`` (doubling, then bisection) whose first ``k`` votes of ``plan``, flipped or
    dropped, give a different posterior-mean #1 while the first ``k - 1`` do not."""
    candidates = sum(step.count for step in plan)
    results: dict[int, str | None] = {0: top1}
    stop: list[str] = []
    verb = "flipping" if kind == "flip" else "dropping"

    def changed(k: int) -> bool | None:
        """Did #1 change with the first ``k`` votes changed? None: the graph fell apart."""
        if k not in results:
            counts, _ = _changed_counts(cells, plan, k, kind)
            try:
                sub = with_counts(cells, counts)
            except DisconnectedGraphError:
                stop.append(f"{verb} {k:,} votes disconnects the comparison graph")
                results[k] = None
            else:
                results[k] = str(mean_ratings(refit(sub, spec, seed)).index[0])
        return None if results[k] is None else results[k] != top1

    lo, hi = 0, None
    k = 1
    while k <= candidates and hi is None:
        c = changed(k)
        if c is None:
            break
        if c:
            hi = k
        else:
            lo, k = k, 2 * k
    if hi is None and not stop and lo < candidates:
        c = changed(candidates)
        if c:
            hi = candidates
        elif c is False:
            lo = candidates
    while hi is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        c = changed(mid)
        if c is None:  # disconnected inside the bracket: keep the verified upper end
            break
        if c:
            hi = mid
        else:
            lo = mid
    common = dict(kind=kind, strategy=strategy, candidates=candidates,
                  refits=sum(1 for key in results if key))
    if hi is None:
        note = stop[0] if stop else (
            f"#1 unchanged with all {candidates:,} candidate votes "
            f"{'flipped' if kind == 'flip' else 'dropped'}")
        return TopChange(needed=None, share=float("nan"), new_top1=None, note=note, **common)
    _, used = _changed_counts(cells, plan, hi, kind)
    note = "" if hi - lo == 1 else (f"{stop[0]}; {lo:,} < k <= {hi:,}" if stop else "")
    return TopChange(needed=hi, share=hi / cells.n_votes, new_top1=results[hi],
                     votes_used=used, note=note, **common)


def plan_rows(votes: Votes, plan: Sequence[Step], k: int) -> list[int]:
    """Row numbers (reading order) of the first ``k`` votes of ``plan``: within a step, the
    earliest rows where ``winner`` beat ``loser``."""
    ident = sql_identifier
    o, a, b = ident("outcome"), ident("model_a"), ident("model_b")
    rows: list[int] = []
    for step in plan:
        take = min(step.count, k - len(rows))
        if take <= 0:
            break
        w, lo = sql_literal(step.winner), sql_literal(step.loser)
        sql = (f"SELECT row FROM votes WHERE ({a} = {w} AND {b} = {lo} AND {o} = 'win_a') "
               f"OR ({a} = {lo} AND {b} = {w} AND {o} = 'win_b') ORDER BY row LIMIT {take}")
        rows.extend(int(r) for (r,) in votes.relation.query("votes", sql).fetchall())
    return rows


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _f(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}"


def _p(p: float, replicates: int | None = None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    if replicates is not None and p == 0:
        return f"< {1 / replicates:.3g}"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def _pct(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.3g}%"


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(r: AuditReport) -> str:
    c, pb, it, vi, s = r.coverage, r.position, r.intransitivity, r.voters, r.sensitivity
    out: list[str] = []
    add = out.append
    add(f"# Audit of {r.source}\n")
    add(f"Spec `{r.spec}`; every refit is a Laplace approximation at the posterior mode "
        f"(`fit(..., method=\"laplace\")`, seed {r.seed}); ranks are by posterior mean rating "
        "(Elo scale, mean 1000). Flags use the 5% level, intervals are 95%.\n")
    add(f"- **{r.n_votes:,}** votes among **{r.n_models}** models "
        f"({r.read_summary['rows_read']:,} rows read, {r.read_summary['rows_used']:,} used).")
    for reason, n in sorted(r.read_summary.get("dropped", {}).items()):
        add(f"- {n:,} rows dropped: {reason}.")
    for note in r.notes:
        add(f"- Note: {note}.")
    add("")
    add("Top of the board (Laplace fit):\n")
    add("| Rank | Model | Rating | 95% CrI | P(rank 1) | Votes |")
    add("|---:|:---|---:|---:|---:|---:|")
    for row in r.leaderboard:
        add(f"| {row['rank']} | {_md(row['model'])} | {row['rating']:.0f} | "
            f"{row['rating_lower']:.0f} – {row['rating_upper']:.0f} | {row['p_top1']:.3f} | "
            f"{row['votes']:,} |")
    add("")

    add("## 1. Coverage of the comparison graph\n")
    if c.connected:
        add(f"- **Connected**: one component holds all {c.n_models} models, so every rating is "
            "comparable with every other.")
    else:
        add(f"- **Not connected: {len(c.components)} components** with no vote between them; "
            "ratings in different components are not comparable:")
        for k, comp in enumerate(c.components, 1):
            add(f"  - component {k} ({len(comp)} models): {', '.join(comp)}")
    add(f"- **{c.n_pairs:,} of {c.n_possible_pairs:,}** possible pairs "
        f"({_pct(c.pair_coverage)}) have at least one vote.")
    add(f"- Gini of votes per model: **{_f(c.gini_models)}** — 0 if every model is in the "
        "same number of votes, near 1 if a few models take nearly all.")
    add(f"- Gini of votes per pair, pairs with votes: **{_f(c.gini_pairs_observed)}** — how "
        "unevenly the votes are spread over the pairs that were compared.")
    add(f"- Gini of votes per pair, all possible pairs: **{_f(c.gini_pairs_possible)}** — the "
        "same with never-compared pairs counted as 0.")
    counts = [v for *_, v in c.votes_per_pair]
    if counts:
        add(f"- Votes per compared pair: min {min(counts):,}, median "
            f"{float(np.median(counts)):g}, max {max(counts):,}.")
    add("")
    add("| Model | Votes | Share of all votes |")
    add("|:---|---:|---:|")
    for m, v in list(c.votes_per_model.items())[:MAX_MODELS_SHOWN]:
        add(f"| {_md(m)} | {v:,} | {_pct(v / c.n_votes)} |")
    if len(c.votes_per_model) > MAX_MODELS_SHOWN:
        add(f"| … {len(c.votes_per_model) - MAX_MODELS_SHOWN} more | | |")
    add("\nShare of all votes: the share of votes in which the model took part (each vote has "
        "two models, so the column sums to 200%).\n")

    add("## 2. Position bias\n")
    if not pb.available:
        add(f"- Not assessed: {'; '.join(pb.notes)}.\n")
    else:
        add(f"- Side shown first: {pb.source}.")
        add(f"- The side shown first won **{pb.first_wins:,} of {pb.decisive:,}** decisive "
            f"votes: **{_pct(pb.share)}** (95% Wilson interval {_pct(pb.lower)} – "
            f"{_pct(pb.upper)}) — 50% if position does not matter.")
        add(f"- Exact binomial test against 50%: p = **{_p(pb.p_value)}** "
            f"({'flagged' if pb.flagged else 'not flagged'} at the 5% level).")
        add(f"- Pairs shown in both orders: **{pb.pairs_both_orders}**; in one order only: "
            f"{pb.pairs_one_order} — only the former separate position from strength.")
        if math.isfinite(pb.mh_share):
            add(f"- Within pairs shown in both orders ({pb.mh_decisive:,} decisive votes), "
                f"Mantel-Haenszel: P(first-shown side wins | equal strengths) = "
                f"**{_pct(pb.mh_share)}** (95% interval {_pct(pb.mh_lower)} – "
                f"{_pct(pb.mh_upper)}; odds ratio first vs second {pb.mh_odds_ratio:.3f}; "
                f"CMH test p = {_p(pb.mh_p_value)}) — the position effect net of who was shown.")
        for note in pb.notes:
            add(f"- Note: {note}.")
        shown = [m for m in pb.per_model if m["flagged"]] or pb.per_model[:5]
        if shown:
            add("\nShare of each model's votes in which it was shown first (50% if the order "
                "is random; flagged: binomial p below 5% / number of models):\n")
            add("| Model | Votes | Shown first | Share | p | Flagged |")
            add("|:---|---:|---:|---:|---:|:---|")
            for m in shown:
                add(f"| {_md(m['model'])} | {m['votes']:,} | {m['shown_first']:,} | "
                    f"{_pct(m['share_first'])} | {_p(m['p_value'])} | "
                    f"{'yes' if m['flagged'] else ''} |")
        add("")

    add("## 3. Intransitive preferences\n")
    add(f"- Pairs with a strict majority among their decisive votes: **{it.pairs_with_majority}**"
        f"; triads whose three pairs all have one: **{it.complete_triads}**.")
    add(f"- Cyclic triads (a beats b, b beats c, c beats a by majority): observed "
        f"**{it.observed}**; predicted by the fitted model **{_f(it.predicted_mean, 2)}** "
        f"(95% predictive interval {it.predicted_lower:g} – {it.predicted_upper:g}); "
        f"p = P(replicated >= observed) = **{_p(it.p_value, it.replicates)}**.")
    add(f"- Cycle strength (sum over cyclic triads of the smallest margin |win share − 50%| on "
        f"the cycle): observed **{_f(it.strength_observed)}**; predicted "
        f"**{_f(it.strength_mean)}** ({_f(it.strength_lower)} – {_f(it.strength_upper)}); "
        f"p = **{_p(it.strength_p_value, it.replicates)}** — cycles among near-ties are "
        "expected, strong cycles are not.")
    add(f"- {'Flagged' if it.flagged else 'Not flagged'}: "
        + ("the votes hold more intransitivity than the fitted model predicts (p < 5% for "
           "the count or the strength)." if it.flagged
           else "no more intransitivity than the fitted model predicts (p >= 5% for both)."
           if it.observed else "no cyclic triad in the votes."))
    add(f"- Replicates: {it.replicates} posterior draws, each pair's decisive votes re-drawn "
        "with their observed number.")
    if it.cycles:
        add("\n| Cycle | Win shares on its arcs | Strength |")
        add("|:---|:---|---:|")
        for cy in it.cycles:
            a, b, cc = (_md(x) for x in cy["cycle"])
            add(f"| {a} > {b} > {cc} > {a} | "
                + ", ".join(_pct(x) for x in cy["win_shares"]) + f" | {cy['strength']:.3f} |")
    add("")

    add("## 4. Influence of heavy voters\n")
    if not vi.available:
        add(f"- Not assessed: {vi.note}.\n")
    else:
        add(f"- {vi.n_voters} voters; the {len(vi.voters)} with most votes were each left out "
            f"and the model refitted. Full-data top {r.top}: {', '.join(vi.top)}.")
        changed = [v for v in vi.voters if v.get("top_set_changed") or v.get("top_order_changed")]
        add(f"- Leaving out one voter changed the top-{r.top} set or order for "
            f"**{len(changed)} of {len(vi.voters)}** voters; the #1 model for "
            f"**{sum(bool(v.get('top1_changed')) for v in vi.voters)}**.")
        shifts = [v["max_shift_elo"] for v in vi.voters if "max_shift_elo" in v]
        if shifts:
            add(f"- Largest rating shift from leaving out a single voter: "
                f"**{max(shifts):.1f} Elo**.")
        add("\nAgreement: share of the voter's decisive votes won by the model the full fit "
            "rates higher. Max shift: the largest change of a posterior mean rating (Elo, "
            "re-centred on the common models) when the voter is left out.\n")
        add(f"| Voter | Votes | Share | Agreement | Top {r.top} without | Set changed | "
            "Order changed | Max shift (Elo) |")
        add("|:---|---:|---:|---:|:---|:---|:---|---:|")
        for v in vi.voters:
            if "top_after" not in v:
                add(f"| {_md(v['voter'])} | {v['votes']:,} | {_pct(v['share'])} | "
                    f"{_pct(v['agreement'])} | {v.get('note', '')} | | | |")
                continue
            add(f"| {_md(v['voter'])} | {v['votes']:,} | {_pct(v['share'])} | "
                f"{_pct(v['agreement'])} | {_md(', '.join(v['top_after']))} | "
                f"{'yes' if v['top_set_changed'] else 'no'} | "
                f"{'yes' if v['top_order_changed'] else 'no'} | "
                f"{v['max_shift_elo']:.1f} ({_md(v['max_shift_model'])}) |")
        add("")

    add("## 5. How many votes decide #1\n")
    add(f"Posterior-mean #1: **{_md(s.top1)}**, #2: {_md(s.runner_up)}. Each number k is "
        "found by doubling then bisection, one Laplace refit a step: changing the first k "
        "votes of the search order changed the #1 model, the first k − 1 did not. "
        "Search orders: *greedy*, the #1 model's wins against #2 first, then #3, #4, …; "
        "*influence*, decisive votes ordered by their first-order effect on the gap between "
        "#1 and #2 (posterior covariance, the infinitesimal jackknife). Either gives an upper "
        "bound on the smallest set (Huang et al. 2025 found 2 of 57k Chatbot Arena votes "
        "whose removal changes #1).\n")
    add("- Fewest votes to flip (a win recorded as a loss) that change #1: "
        + (f"**{s.min_flips:,}** of {s.n_votes:,} (**{_pct(s.min_flips / s.n_votes)}**)."
           if s.min_flips is not None else "not reached."))
    add("- Fewest votes to drop (remove) that change #1: "
        + (f"**{s.min_drops:,}** of {s.n_votes:,} (**{_pct(s.min_drops / s.n_votes)}**)."
           if s.min_drops is not None else "not reached."))
    add("")
    add("| Change | Search order | Votes needed | Share of votes | New #1 | Votes changed | "
        "Refits |")
    add("|:---|:---|---:|---:|:---|:---|---:|")
    for ch in [*s.flips, *s.drops]:
        used = "; ".join(f"{n:,} × {_md(w)}" for w, n in ch.votes_used.items())
        if len(used) > 300:
            used = used[:300] + " …"
        needed = f"{ch.needed:,}" if ch.needed is not None else f"> {ch.candidates:,}"
        add(f"| {ch.kind} | {ch.strategy} | {needed} | {_pct(ch.share)} | "
            f"{_md(ch.new_top1 or '—')} | {used or _md(ch.note)} | {ch.refits} |")
    rows = [ch for ch in [*s.flips, *s.drops] if ch.rows]
    if rows:
        add("\nRows of those votes (zero-based reading order; all of them in the JSON):\n")
        for ch in rows:
            more = f" … ({len(ch.rows):,} rows)" if len(ch.rows) > 20 else ""
            add(f"- {ch.kind}, {ch.strategy}: " + ", ".join(str(x) for x in ch.rows[:20])
                + more)
    notes = [f"{ch.kind}, {ch.strategy}: {ch.note}" for ch in [*s.flips, *s.drops]
             if ch.note and ch.needed is not None]
    for note in notes:
        add(f"- Note: {note}.")
    add("")
    return "\n".join(out)


__all__ = [
    "AuditReport",
    "Coverage",
    "Intransitivity",
    "PositionBias",
    "Sensitivity",
    "TopChange",
    "VoterInfluence",
    "audit",
    "coverage",
    "cyclic_triads",
    "gini",
    "intransitivity",
    "position_bias",
    "render",
    "top1_sensitivity",
    "tournament",
    "voter_influence",
    "wilson_interval",
]
