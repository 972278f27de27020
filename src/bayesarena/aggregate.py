"""Aggregation: validated :class:`Votes` -> :class:`Cells`, outcome counts per pair cell.

The likelihood only needs counts per (unordered pair, category) cell, so we aggregate before
sampling: one DuckDB ``GROUP BY`` over the votes relation, and only the (small) cells come back
to numpy. Each vote is oriented to its unordered pair ``(i, j)`` with ``i`` the smaller name
(code-point order, the order of the sorted model list):

.. code-block:: sql

    SELECT category, least(model_a, model_b) AS model_i, greatest(model_a, model_b) AS model_j,
           count(*) FILTER (WHERE outcome = 'win_a' AND model_a < model_b
                               OR outcome = 'win_b' AND model_a > model_b) AS win_i,
           count(*) FILTER (WHERE outcome = 'win_b' AND model_a < model_b
                               OR outcome = 'win_a' AND model_a > model_b) AS win_j,
           count(*) FILTER (WHERE outcome = 'tie') AS tie,
           count(*) FILTER (WHERE outcome = 'tie_bothbad') AS tie_bothbad
    FROM votes WHERE <selection> GROUP BY ALL

For the counts form the count columns are summed the same way (``wins_a`` goes to ``win_i``
when ``model_a`` is the smaller name, to ``win_j`` otherwise). The per-vote form is computed in
two steps with the same result: counts per (category, model_a, model_b) and outcome first, then
that counts form is oriented (see :func:`_cells_sql`).

The string order assumed is DuckDB's default binary collation, which is Python's code-point
order; do not pass :func:`~bayesarena.io.read_votes` a connection with ``default_collation``
set (``nocase`` would merge names); an order mismatch is detected and refused.

TODO: category *tags* given as a list column (a vote in several categories) are not
aggregated yet; such a column raises :class:`~bayesarena.errors.InputError` when categories
are used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayesarena.errors import (
    EmptyDataError,
    InputError,
    MissingColumnError,
    MissingValueError,
    format_rows,
)
from bayesarena.validation import (
    CATEGORY_NOT_SELECTED,
    MODEL_NOT_SELECTED,
    check_categories,
    check_connected,
    check_models,
    sql_identifier,
    sql_in_list,
    sql_literal,
)
from bayesarena.votes import CELL_OUTCOMES, COUNT_COLUMNS, OUTCOMES, Cells, ReadSummary, Votes

_ALL = "all"


def aggregate(
    votes: Votes,
    *,
    by_category: bool = False,
    models: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    check_graph: bool = True,
) -> Cells:
    """Count outcomes per (unordered pair, category) cell.

    Parameters
    ----------
    votes:
        Validated votes from :func:`~bayesarena.io.read_votes` (per-vote or counts form).
    by_category:
        Split cells by the ``category`` column (``Cells.categories`` = its sorted distinct
        values); otherwise every cell is in the single category ``"all"``. A NULL category is
        then an error (:class:`MissingValueError` naming the rows).
    models:
        Keep only votes between two of these models; the other rows are counted in
        ``summary.dropped["model not selected"]``. Unknown names raise
        :class:`UnknownModelError` with close matches.
    categories:
        Keep only votes in these categories (rows with another or a NULL category are counted
        in ``summary.dropped["category not selected"]``; a row outside both selections counts
        under the category reason). Unknown names raise :class:`UnknownCategoryError`.
    check_graph:
        Run :func:`~bayesarena.validation.check_connected` on the result (default True).

    Returns
    -------
    Cells
        ``models`` = sorted names present after selection, ``model_i < model_j`` (int32),
        ``category`` (int32), ``counts`` (int64, columns :data:`CELL_OUTCOMES`), cells sorted
        by (category, i, j); ``summary`` = the votes' summary updated with the selection.
    """
    relation = votes.relation
    has_category = "category" in votes.optional_columns
    if (by_category or categories is not None) and not has_category:
        wanted = "by_category=True" if by_category else "categories="
        raise MissingColumnError(
            f"{wanted} needs a 'category' column; found columns "
            f"{', '.join(repr(c) for c in relation.columns)}",  # type: ignore[attr-defined]
            column="category",
        )
    if has_category and (by_category or categories is not None):
        _check_category_type(relation)
    if models is not None:
        check_models(models, votes.models)
    if categories is not None:
        check_categories(categories, _categories(relation))
    elif by_category:
        _check_no_null_category(relation)

    summary = _account_selection(votes, models, categories)
    selected = _selection_sql(models, categories)
    rows = _query(relation, _cells_sql(votes.kind, by_category, selected)).fetchall()
    if not rows:
        raise EmptyDataError(
            "no votes left to aggregate after the selection: expected at least one vote between "
            f"two selected models, found none ({summary.rows_read:,} rows read; "
            + ", ".join(f"{n:,} dropped: {r}" for r, n in summary.dropped.items())
            + ")"
        )
    cells = cells_from_rows(rows, by_category, summary)
    if check_graph:
        check_connected(cells)
    return cells


def _query(relation: object, sql: str):
    """Run ``sql`` with the votes relation visible as ``votes``."""
    return relation.query("votes", sql)  # type: ignore[attr-defined]


def _votes_sql(kind: str) -> str:
    """Votes a row stands for: 1 per vote, the sum of the counts for the counts form."""
    if kind == "votes":
        return "1"
    return " + ".join(sql_identifier(c) for c in COUNT_COLUMNS)


def _selection_sql(models: Sequence[str] | None, categories: Sequence[str] | None) -> str:
    """SQL predicate of the selected rows (``true`` when nothing is selected)."""
    parts = []
    if categories is not None:
        parts.append(sql_in_list(sql_identifier("category"), categories))
    if models is not None:
        parts.append(sql_in_list(sql_identifier("model_a"), models))
        parts.append(sql_in_list(sql_identifier("model_b"), models))
    return "(" + " AND ".join(parts) + ")" if parts else "true"


def _account_selection(
    votes: Votes, models: Sequence[str] | None, categories: Sequence[str] | None
) -> ReadSummary:
    """Count the rows (and votes) outside the selection, category reason first.

    SQL: ``SELECT CASE WHEN NOT <category selected> THEN 'category not selected' WHEN NOT
    <models selected> THEN 'model not selected' END AS reason, count(*), sum(votes) ...
    GROUP BY reason``; a NULL category is outside any category selection.
    """
    summary = votes.summary
    whens = []
    if categories is not None:
        inside = sql_in_list(sql_identifier("category"), categories)
        reason = sql_literal(CATEGORY_NOT_SELECTED)
        whens.append(f"WHEN NOT coalesce({inside}, false) THEN {reason}")
    if models is not None:
        inside = (
            f"{sql_in_list(sql_identifier('model_a'), models)} AND "
            f"{sql_in_list(sql_identifier('model_b'), models)}"
        )
        whens.append(f"WHEN NOT ({inside}) THEN {sql_literal(MODEL_NOT_SELECTED)}")
    if not whens:
        return summary
    query = (
        f"SELECT reason, count(*), sum(v) FROM (SELECT CASE {' '.join(whens)} END AS reason, "
        f"{_votes_sql(votes.kind)} AS v FROM votes) WHERE reason IS NOT NULL GROUP BY reason"
    )
    found = {r: (int(n), int(v)) for r, n, v in _query(votes.relation, query).fetchall()}
    for reason in (CATEGORY_NOT_SELECTED, MODEL_NOT_SELECTED):
        if reason in found:
            summary = summary.with_dropped(reason, *found[reason])
    return summary


def _cells_sql(kind: str, by_category: bool, selected: str) -> str:
    """The GROUP BY that orients each row to its unordered pair and counts outcomes.

    The per-vote form goes through the counts form: votes are first counted per (category,
    model_a, model_b), one ``count(*) FILTER (WHERE outcome = ...)`` per outcome (the ordered
    pair as shown, so no per-row name comparison), and those few groups are then oriented and
    summed as aggregated counts are. Orienting every row instead (``least``/``greatest`` and
    ``model_a < model_b`` per row) cost about twice the CPU for cells per pair and a third more
    per (pair, category) on a 10M-row log (benchmarks/parquet_aggregation.py); same counts.
    """
    ident = sql_identifier
    a, b = ident("model_a"), ident("model_b")
    a_first = f"{a} < {b}"
    category = ident("category") if by_category else "CAST(NULL AS VARCHAR)"
    source = "votes"
    if kind == "votes":
        o = ident("outcome")
        per_outcome = ", ".join(
            f"count(*) FILTER (WHERE {o} = {sql_literal(outcome)}) AS {ident(column)}"
            for outcome, column in zip(OUTCOMES, COUNT_COLUMNS, strict=True)
        )
        source = (
            f"(SELECT {category} AS {ident('category')}, {a}, {b}, {per_outcome} "
            f"FROM votes WHERE {selected} GROUP BY 1, 2, 3)"
        )
        category, selected = ident("category"), "true"
    wa, wb = ident("wins_a"), ident("wins_b")
    win_i = f"sum(CASE WHEN {a_first} THEN {wa} ELSE {wb} END)"
    win_j = f"sum(CASE WHEN {a_first} THEN {wb} ELSE {wa} END)"
    tie = f"sum({ident('ties')})"
    tie_bothbad = f"sum({ident('ties_bothbad')})"
    counts = ", ".join(
        f"CAST({expr} AS BIGINT) AS {ident(name)}"
        for expr, name in zip((win_i, win_j, tie, tie_bothbad), CELL_OUTCOMES, strict=True)
    )
    return (
        f"SELECT {category} AS {ident('category')}, least({a}, {b}) AS {ident('model_i')}, "
        f"greatest({a}, {b}) AS {ident('model_j')}, {counts} "
        f"FROM {source} WHERE {selected} GROUP BY 1, 2, 3"
    )


def cells_from_rows(rows: list[tuple], by_category: bool, summary: ReadSummary) -> Cells:
    """Index cell rows by sorted model / category names and sort by (category, i, j).

    ``rows`` are ``(category, model_i, model_j, win_i, win_j, tie, tie_bothbad)`` tuples with
    ``model_i < model_j`` in code-point order, one per cell (the category is ignored unless
    ``by_category``). Shared by the DuckDB path and :mod:`bayesarena.distributed`, so both
    index and order cells the same way.
    """
    models = tuple(sorted({r[1] for r in rows} | {r[2] for r in rows}))
    categories = tuple(sorted({r[0] for r in rows})) if by_category else (_ALL,)
    model_index = {m: k for k, m in enumerate(models)}
    category_index = {c: k for k, c in enumerate(categories)}
    model_i = np.fromiter((model_index[r[1]] for r in rows), dtype=np.int32, count=len(rows))
    model_j = np.fromiter((model_index[r[2]] for r in rows), dtype=np.int32, count=len(rows))
    category = np.fromiter(
        (category_index[r[0]] if by_category else 0 for r in rows), dtype=np.int32, count=len(rows)
    )
    counts = np.array([r[3:] for r in rows], dtype=np.int64).reshape(len(rows), len(CELL_OUTCOMES))
    if np.any(model_i >= model_j):
        raise InputError(
            "model names compare differently in DuckDB than in Python: expected the default "
            "binary collation, found another (is default_collation set on the connection?)"
        )
    order = np.lexsort((model_j, model_i, category))
    return Cells(
        models=models,
        categories=categories,
        model_i=model_i[order],
        model_j=model_j[order],
        category=category[order],
        counts=counts[order],
        summary=summary,
    )


def _categories(relation: object) -> list[str]:
    """Distinct non-NULL categories of the votes."""
    c = sql_identifier("category")
    query = f"SELECT DISTINCT {c} FROM votes WHERE {c} IS NOT NULL"
    return [v for (v,) in _query(relation, query).fetchall()]


def _check_category_type(relation: object) -> None:
    """Refuse list-valued category tags (TODO: aggregate a vote into each of its tags)."""
    types = dict(zip(relation.columns, relation.types, strict=True))  # type: ignore[attr-defined]
    type_id = types["category"].id
    if type_id in ("list", "array"):
        raise InputError(
            "column 'category' holds lists of category tags; expected one category per row "
            "(tag lists are not supported yet: explode them to one row per tag first)",
            column="category",
        )


def _check_no_null_category(relation: object) -> None:
    """Raise :class:`MissingValueError` naming the rows whose category is NULL."""
    c, row = sql_identifier("category"), sql_identifier("row")
    query = f"SELECT {row}, count(*) OVER () FROM votes WHERE {c} IS NULL ORDER BY {row} LIMIT 5"
    found = _query(relation, query).fetchall()
    if found:
        rows = [int(r) for r, _ in found]
        raise MissingValueError(
            f"missing category in column 'category' at {format_rows(rows, int(found[0][1]))}: "
            "expected a category on every row with by_category=True, found NULL; drop or fill "
            "those rows, or select categories with categories=",
            column="category",
            rows=rows,
        )
