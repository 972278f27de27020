"""Every check on input data, in one place (scikit-learn ``utils/validation.py`` style).

Row-level checks are SQL predicates evaluated by DuckDB over a *staged* relation (see
:func:`bayesarena.io.read_votes`), so a 10-million-row file is checked without materialising it
in Python: only the per-reason counts and the first offending rows come back. Each check raises
a typed error from :mod:`bayesarena.errors` whose message names the problem, the column, what
was expected and what was found, and the first offending rows (zero-based reading order).

The row-level checks run in this order; with ``on_invalid="drop"`` a row failing several is
counted once, under the first reason:

1. empty input (no rows at all) -> :class:`~bayesarena.errors.EmptyDataError`, always;
2. missing model name (NULL, NaN, empty or whitespace-only ``model_a``/``model_b``)
   -> :class:`~bayesarena.errors.MissingValueError`;
3. missing winner (NULL/NaN ``winner``) -> :class:`~bayesarena.errors.MissingValueError`;
4. unknown winner label -> :class:`~bayesarena.errors.UnknownLabelError`;
5. self-battle (``model_a == model_b``) -> :class:`~bayesarena.errors.SelfBattleError`;
6. counts form only: invalid count (NULL, NaN, infinite, negative or non-integer)
   -> :class:`~bayesarena.errors.InvalidCountError`; rows whose counts are all zero are not an
   error: they are dropped (reason ``"no votes in row"``) under either policy.

Graph and name checks (:func:`check_connected`, :func:`check_models`,
:func:`check_categories`) work on the small aggregated data in numpy.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from bayesarena.errors import (
    MAX_ROWS_SHOWN,
    DisconnectedGraphError,
    EmptyDataError,
    InputError,
    InvalidCountError,
    MissingColumnError,
    MissingValueError,
    SelfBattleError,
    UnknownCategoryError,
    UnknownLabelError,
    UnknownModelError,
    format_rows,
)
from bayesarena.votes import COUNT_COLUMNS, OUTCOMES, WINNER_ALIASES, InputKind, ReadSummary

if TYPE_CHECKING:
    from bayesarena.votes import Cells

OnInvalid = Literal["raise", "drop"]

#: Required columns of the per-vote form.
VOTE_COLUMNS: tuple[str, ...] = ("model_a", "model_b", "winner")
#: Required columns of the aggregated-counts form (``ties_bothbad`` is optional, 0 when absent).
REQUIRED_COUNT_COLUMNS: tuple[str, ...] = ("model_a", "model_b", "wins_a", "wins_b", "ties")

# Reasons, as they appear in ``ReadSummary.dropped``.
MISSING_MODEL = "missing model name"
MISSING_WINNER = "missing winner"
UNKNOWN_LABEL = "unknown winner label"
SELF_BATTLE = "self-battle"
INVALID_COUNT = "invalid count"
NO_VOTES = "no votes in row"
MODEL_NOT_SELECTED = "model not selected"
CATEGORY_NOT_SELECTED = "category not selected"

#: Whitespace as Python's ``str.isspace`` sees it (RE2 ``\s`` lacks \v, \x1c-\x1f and \x85).
_BLANK_RE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]*"

_INTEGER_TYPES = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "hugeint"}
    | {"utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"}
)
_NUMBER_OR_TEXT_TYPES = frozenset({"float", "double", "decimal", "varchar"})
_MAX_EXACT_COUNT = 2.0**62  # counts at or above this cannot round-trip through DOUBLE -> BIGINT
_MAX_NAMES_SHOWN = 8


# --------------------------------------------------------------------------------------------
# SQL text helpers
# --------------------------------------------------------------------------------------------


def sql_identifier(name: str) -> str:
    """Quote ``name`` as a SQL identifier: wrap in double quotes, double any inner ones."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """Quote ``value`` as a SQL string literal: wrap in single quotes, double any inner ones.

    DuckDB string literals have no backslash escapes, so this is the whole escaping rule.
    """
    return "'" + value.replace("'", "''") + "'"


def sql_in_list(column_sql: str, values: Iterable[str]) -> str:
    """``column IN ('v1', 'v2', ...)`` with escaped literals; ``false`` for an empty list."""
    items = ", ".join(sql_literal(v) for v in values)
    return f"({column_sql} IN ({items}))" if items else "false"


def count_value_sql(column_sql: str, type_id: str) -> str:
    """BIGINT value of a count column, NULL where the count is invalid (never an error).

    Integer columns are cast exactly; other types go through DOUBLE (text is parsed, so a CSV
    column holding ``"3"`` reads as 3) and are accepted only if finite, non-negative and whole.
    """
    if type_id in _INTEGER_TYPES:
        return f"TRY_CAST({column_sql} AS BIGINT)"
    if type_id in _NUMBER_OR_TEXT_TYPES:
        return f"TRY_CAST(TRY_CAST({column_sql} AS DOUBLE) AS BIGINT)"
    return "CAST(NULL AS BIGINT)"


def invalid_count_sql(column_sql: str, type_id: str) -> str:
    """Predicate, never NULL: true where a count is NULL, NaN, infinite, negative or not whole.

    Columns of a type that cannot hold counts (boolean, date, nested, ...) are invalid on
    every row, so the error names them instead of silently reading ``true`` as 1.
    """
    if type_id in _INTEGER_TYPES:
        value = f"TRY_CAST({column_sql} AS BIGINT)"
        return f"coalesce({value} < 0, true)"
    if type_id in _NUMBER_OR_TEXT_TYPES:
        num = f"TRY_CAST({column_sql} AS DOUBLE)"
        ok = (
            f"isfinite({num}) AND {num} >= 0 AND {num} = floor({num}) "
            f"AND {num} < {_MAX_EXACT_COUNT}"
        )
        return f"coalesce(NOT ({ok}), true)"
    return "true"


def blank_name_sql(column_sql: str) -> str:
    """Predicate, never NULL: true where a (VARCHAR) name is NULL, empty or whitespace-only."""
    return f"({column_sql} IS NULL OR regexp_full_match({column_sql}, {sql_literal(_BLANK_RE)}))"


# --------------------------------------------------------------------------------------------
# Columns and the winner map
# --------------------------------------------------------------------------------------------


def detect_kind(columns: Sequence[str]) -> InputKind:
    """Tell the input form from the column names (exact, case-sensitive match).

    Per-vote form needs ``model_a, model_b, winner``; counts form needs ``model_a, model_b,
    wins_a, wins_b, ties`` (``ties_bothbad`` optional). Raises :class:`MissingColumnError`
    naming the missing columns and the columns found when neither set is complete, and
    :class:`InputError` when both are (the input is ambiguous).
    """
    present = set(columns)
    missing_votes = [c for c in VOTE_COLUMNS if c not in present]
    missing_counts = [c for c in REQUIRED_COUNT_COLUMNS if c not in present]
    if not missing_votes and not missing_counts:
        raise InputError(
            "ambiguous input: found both the per-vote column 'winner' and the count columns "
            f"{_names(REQUIRED_COUNT_COLUMNS[2:])}; expected one form; drop the other's columns",
            column="winner",
        )
    if not missing_votes:
        return "votes"
    if not missing_counts:
        return "counts"
    # Report against the counts form if it has any count column and no winner, else per-vote.
    if "winner" not in present and present & set(COUNT_COLUMNS):
        form, missing = "aggregated counts", missing_counts
    else:
        form, missing = "per-vote", missing_votes
    raise MissingColumnError(
        f"missing column(s) {_names(missing)} for the {form} form; expected per-vote columns "
        f"{_names(VOTE_COLUMNS)} or count columns {_names(REQUIRED_COUNT_COLUMNS)} "
        f"(+ optional 'ties_bothbad'); found {_names(columns) if columns else 'no columns'}",
        column=missing[0],
    )


def check_winner_map(winner_map: Mapping[str, str] | None) -> dict[str, str]:
    """The effective label table: :data:`WINNER_ALIASES` updated with the user's ``winner_map``.

    Keys must be strings (the ``winner`` column is matched as text, exactly: no case folding
    or stripping; an integer column holding 1 matches the key ``"1"``). Values must be a
    canonical outcome (:data:`OUTCOMES`) or a documented alias such as ``"model_a"``; anything
    else raises :class:`InputError` naming it.
    """
    table = dict(WINNER_ALIASES)
    if winner_map is None:
        return table
    if not isinstance(winner_map, Mapping):
        raise InputError(
            f"winner_map must be a mapping of label -> outcome, found {type(winner_map).__name__}"
        )
    accepted_values = (*OUTCOMES, *WINNER_ALIASES)
    for key, value in winner_map.items():
        if not isinstance(key, str):
            raise InputError(
                f"winner_map key {key!r} is a {type(key).__name__}; expected a string, because "
                f"the winner column is matched as text (use {str(key)!r})",
                column="winner",
            )
        if isinstance(value, str) and value in OUTCOMES:
            table[key] = value
        elif isinstance(value, str) and value in WINNER_ALIASES:
            table[key] = WINNER_ALIASES[value]
        else:
            raise InputError(
                f"winner_map value {value!r} (for label {key!r}) is not an outcome; expected one "
                f"of {_names(accepted_values)}",
                column="winner",
            )
    return table


# --------------------------------------------------------------------------------------------
# Row-level checks
# --------------------------------------------------------------------------------------------

Describe = Callable[[object, "RowCheck", str, str], str]


@dataclass(frozen=True)
class RowCheck:
    """One row-level check over a staged relation.

    ``predicates[k]`` is a SQL boolean, never NULL, true on the rows where ``columns[k]``
    offends; a row fails the check if any predicate holds. ``error`` is None for a reason
    that is not an error (rows are dropped under either policy). ``describe(staged, check,
    where, at)`` returns the message, given where the problem is (``"column 'winner'"``) and
    at which rows (``"rows 3, 7"``); it may query the relation for example values.
    """

    reason: str
    error: type[InputError] | None
    columns: tuple[str, ...]
    predicates: tuple[str, ...]
    describe: Describe

    @property
    def predicate(self) -> str:
        """SQL boolean, never NULL: the row fails this check."""
        return "(" + " OR ".join(f"({p})" for p in self.predicates) + ")"


def reason_sql(checks: Sequence[RowCheck]) -> str:
    """``CASE WHEN p1 THEN 'reason1' WHEN p2 ... END``: the first failing check, NULL if none."""
    if not checks:
        return "CAST(NULL AS VARCHAR)"
    whens = " ".join(f"WHEN {c.predicate} THEN {sql_literal(c.reason)}" for c in checks)
    return f"(CASE {whens} END)"


def vote_checks(accepted_labels: Sequence[str]) -> tuple[RowCheck, ...]:
    """Checks of the per-vote form, in order, over a staged relation with VARCHAR columns
    ``model_a, model_b, winner`` and ``outcome`` (NULL where ``winner`` is not a known label).
    """
    w = sql_identifier("winner")
    outcome = sql_identifier("outcome")
    return (
        _missing_model_check(),
        RowCheck(
            MISSING_WINNER,
            MissingValueError,
            ("winner",),
            (f"{w} IS NULL",),
            partial(_describe_missing_winner, accepted=tuple(accepted_labels)),
        ),
        RowCheck(
            UNKNOWN_LABEL,
            UnknownLabelError,
            ("winner",),
            (f"{w} IS NOT NULL AND {outcome} IS NULL",),
            partial(_describe_unknown_label, accepted=tuple(accepted_labels)),
        ),
        _self_battle_check(),
    )


def _self_battle_check() -> RowCheck:
    """Rows comparing a model with itself (``model_a = model_b``)."""
    a, b = sql_identifier("model_a"), sql_identifier("model_b")
    return RowCheck(
        SELF_BATTLE, SelfBattleError, ("model_b",), (f"coalesce({a} = {b}, false)",),
        _describe_self_battle,
    )


def count_checks(types: Mapping[str, str]) -> tuple[RowCheck, ...]:
    """Checks of the counts form, in order, over a staged relation with VARCHAR ``model_a,
    model_b`` and the raw count columns :data:`COUNT_COLUMNS` (``types`` maps each to its
    DuckDB type id, e.g. ``"bigint"``, ``"double"``, ``"varchar"``).
    """
    cols = {c: sql_identifier(c) for c in COUNT_COLUMNS}
    invalid = tuple(invalid_count_sql(cols[c], types[c]) for c in COUNT_COLUMNS)
    values = [count_value_sql(cols[c], types[c]) for c in COUNT_COLUMNS]
    all_zero = "coalesce(" + " AND ".join(f"{v} = 0" for v in values) + ", false)"
    return (
        _missing_model_check(),
        _self_battle_check(),
        RowCheck(INVALID_COUNT, InvalidCountError, COUNT_COLUMNS, invalid, _describe_counts),
        RowCheck(NO_VOTES, None, COUNT_COLUMNS, (all_zero,), _describe_no_votes),
    )


def _missing_model_check() -> RowCheck:
    a, b = sql_identifier("model_a"), sql_identifier("model_b")
    return RowCheck(
        MISSING_MODEL,
        MissingValueError,
        ("model_a", "model_b"),
        (blank_name_sql(a), blank_name_sql(b)),
        _describe_missing_model,
    )


def validate_rows(
    staged: object,
    checks: Sequence[RowCheck],
    *,
    source: str,
    kind: InputKind,
    on_invalid: OnInvalid,
    votes_sql: str,
) -> tuple[ReadSummary, str | None]:
    """Run ``checks`` over ``staged`` (a DuckDB relation) in one GROUP BY pass.

    SQL: ``SELECT reason, count(*), sum(votes) FROM (SELECT <first failing check> AS reason,
    <votes_sql> AS votes FROM staged) GROUP BY reason``. Raises :class:`EmptyDataError` if
    there are no rows; with ``on_invalid="raise"`` raises the error of the first check (in
    order) that any row fails, with the first offending rows; with ``"drop"`` counts those
    rows per reason. Raises :class:`EmptyDataError` if no row is left.

    Returns the :class:`ReadSummary` and a SQL filter that keeps only the used rows (None when
    no row is dropped).
    """
    if on_invalid not in ("raise", "drop"):
        raise InputError(f"on_invalid must be 'raise' or 'drop', found {on_invalid!r}")
    reason = reason_sql(checks)
    query = (
        "SELECT reason, count(*) AS n, sum(votes) FILTER (WHERE reason IS NULL) AS v "
        f"FROM (SELECT {reason} AS reason, {votes_sql} AS votes FROM staged) GROUP BY reason"
    )
    found = {r: (int(n), int(v or 0)) for r, n, v in _query(staged, "staged", query).fetchall()}
    rows_read = sum(n for n, _ in found.values())
    if rows_read == 0:
        raise EmptyDataError(f"no rows in {source}: expected at least one vote, found 0 rows")
    dropped: dict[str, int] = {}
    for check in checks:
        n = found.get(check.reason, (0, 0))[0]
        if n == 0:
            continue
        if check.error is not None and on_invalid == "raise":
            raise row_check_error(staged, check, n)
        dropped[check.reason] = n
    rows_used, votes_used = found.get(None, (0, 0))
    if rows_used == 0:
        raise EmptyDataError(
            f"no usable rows in {source}: read {rows_read:,} rows, dropped all of them "
            f"({_dropped_text(dropped)})"
        )
    summary = ReadSummary(
        source=source,
        kind=kind,
        rows_read=rows_read,
        rows_used=rows_used,
        votes_used=votes_used,
        dropped=dropped,
    )
    return summary, (f"{reason} IS NULL" if dropped else None)


def row_check_error(staged: object, check: RowCheck, total: int) -> InputError:
    """Build ``check``'s error: which columns, the first offending rows, expected vs found."""
    assert check.error is not None
    per_column = ", ".join(f"count(*) FILTER (WHERE {p})" for p in check.predicates)
    counts = _query(staged, "staged", f"SELECT {per_column} FROM staged").fetchall()[0]
    rows = _first_rows(staged, check.predicate)
    offending = [(c, int(n)) for c, n in zip(check.columns, counts, strict=True) if n]
    if check.reason == SELF_BATTLE:
        where = "columns 'model_a' and 'model_b'"
    elif len(offending) == 1:
        where = f"column {offending[0][0]!r}"
    else:
        where = "columns " + ", ".join(f"{c!r} ({_n_rows(n)})" for c, n in offending)
    message = check.describe(staged, check, where, format_rows(rows, total))
    return check.error(
        message, column=offending[0][0] if offending else check.columns[0], rows=rows
    )


def _first_rows(staged: object, predicate: str) -> list[int]:
    row = sql_identifier("row")
    query = f"SELECT {row} FROM staged WHERE {predicate} ORDER BY {row} LIMIT {MAX_ROWS_SHOWN}"
    return [int(r) for (r,) in _query(staged, "staged", query).fetchall()]


def _examples(staged: object, expr: str, predicate: str, limit: int = 3) -> list[object]:
    """Up to ``limit`` distinct values of ``expr`` on offending rows, in reading order."""
    row = sql_identifier("row")
    query = (
        f"SELECT v FROM (SELECT {expr} AS v, min({row}) AS first FROM staged WHERE {predicate} "
        f"GROUP BY v) ORDER BY first LIMIT {limit}"
    )
    return [v for (v,) in _query(staged, "staged", query).fetchall()]


def _show(value: object) -> str:
    return "NULL" if value is None else repr(value)


def _describe_missing_model(staged: object, check: RowCheck, where: str, at: str) -> str:
    found: list[object] = []
    for col, pred in zip(check.columns, check.predicates, strict=True):
        for v in _examples(staged, sql_identifier(col), pred):
            if v not in found:
                found.append(v)
    return (
        f"{MISSING_MODEL} in {where} at {at}: expected a model name (not NULL, NaN, empty or "
        "whitespace-only), found " + ", ".join(_show(v) for v in found[:3])
    )


def _describe_missing_winner(
    staged: object, check: RowCheck, where: str, at: str, *, accepted: Sequence[str]
) -> str:
    return (
        f"{MISSING_WINNER} in {where} at {at}: expected one of {_names(accepted)}, found NULL/NaN"
    )


def _describe_unknown_label(
    staged: object, check: RowCheck, where: str, at: str, *, accepted: Sequence[str]
) -> str:
    w = sql_identifier("winner")
    row = sql_identifier("row")
    query = (
        f"SELECT {w}, count(*) AS n, min({row}) AS first FROM staged WHERE {check.predicate} "
        f"GROUP BY {w} ORDER BY n DESC, first"
    )
    labels = _query(staged, "staged", query).fetchall()
    shown = ", ".join(f"{label!r} ({_n_rows(n)})" for label, n, _ in labels[:MAX_ROWS_SHOWN])
    if len(labels) > MAX_ROWS_SHOWN:
        shown += f" and {len(labels) - MAX_ROWS_SHOWN} more label(s)"
    return (
        f"unknown winner label(s) {shown} in {where} at {at}; accepted: "
        f"{_names(accepted, limit=None)} or pass winner_map= (e.g. "
        "winner_map={'1': 'model_a', '-1': 'model_b', '0': 'tie'})"
    )


def _describe_self_battle(staged: object, check: RowCheck, where: str, at: str) -> str:
    names = _examples(staged, sql_identifier("model_a"), check.predicate)
    return (
        f"{SELF_BATTLE} in {where} at {at}: expected two different models, found the same model "
        "on both sides (" + ", ".join(_show(v) for v in names) + ")"
    )


def _describe_counts(staged: object, check: RowCheck, where: str, at: str) -> str:
    found: list[str] = []
    for col, pred in zip(check.columns, check.predicates, strict=True):
        for v in _examples(staged, f"CAST({sql_identifier(col)} AS VARCHAR)", pred):
            shown = "NULL" if v is None else str(v)
            if shown not in found:
                found.append(shown)
    return (
        f"{INVALID_COUNT} in {where} at {at}: expected a non-negative whole number, found "
        + ", ".join(found[:4])
    )


def _describe_no_votes(staged: object, check: RowCheck, where: str, at: str) -> str:
    return f"{NO_VOTES} in {where} at {at}: expected at least one vote, found all counts zero"


# --------------------------------------------------------------------------------------------
# Graph and name checks
# --------------------------------------------------------------------------------------------


def check_connected(cells: Cells) -> None:
    """Raise :class:`DisconnectedGraphError` if the comparison graph is disconnected.

    The graph has one node per model and an edge between ``i`` and ``j`` if any cell (in any
    category) holds votes on the pair; components come from
    ``scipy.sparse.csgraph.connected_components``. Strengths in different components are not
    comparable, so we refuse. ``.components`` holds every component's sorted model names,
    largest first (ties broken by first name).
    """
    n = cells.n_models
    if n <= 1:
        return
    adjacency = sp.coo_matrix(
        (np.ones(cells.n_cells, dtype=np.int8), (cells.model_i, cells.model_j)), shape=(n, n)
    ).tocsr()
    n_components, labels = connected_components(adjacency, directed=False)
    if n_components <= 1:
        return
    groups: list[list[str]] = [[] for _ in range(n_components)]
    for model, label in zip(cells.models, labels, strict=True):
        groups[int(label)].append(model)
    components = sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))
    shown = "; ".join(
        f"component {k + 1} ({len(g)} model{'s' if len(g) != 1 else ''}): "
        f"{_names(g, limit=_MAX_NAMES_SHOWN)}"
        for k, g in enumerate(components[:MAX_ROWS_SHOWN])
    )
    if len(components) > MAX_ROWS_SHOWN:
        shown += f"; and {len(components) - MAX_ROWS_SHOWN} more components"
    raise DisconnectedGraphError(
        f"the comparison graph is disconnected: expected one connected component, found "
        f"{n_components} with no votes between them: {shown}. Ratings in different components "
        "are not comparable; fit each component separately (aggregate(votes, models=[...])) or "
        "collect votes that link them",
        components=components,
    )


def check_models(requested: Iterable[str], available: Collection[str]) -> None:
    """Raise :class:`UnknownModelError` naming requested models absent from ``available``,
    with close matches (``difflib.get_close_matches``) as suggestions.
    """
    _check_names(requested, available, "model", UnknownModelError)


def check_categories(requested: Iterable[str], available: Collection[str]) -> None:
    """Raise :class:`UnknownCategoryError` naming requested categories absent from
    ``available``, with close matches as suggestions.
    """
    _check_names(requested, available, "category", UnknownCategoryError)


def _check_names(
    requested: Iterable[str],
    available: Collection[str],
    what: str,
    error: type[UnknownModelError],
) -> None:
    if isinstance(requested, str):
        raise InputError(f"expected a sequence of {what} names, found the string {requested!r}")
    known = set(available)
    unknown = [r for r in dict.fromkeys(requested) if r not in known]
    if not unknown:
        return
    choices = sorted(known)
    parts = []
    for name in unknown[:MAX_ROWS_SHOWN]:
        close = difflib.get_close_matches(str(name), choices, n=3) if isinstance(name, str) else []
        hint = f" (did you mean {_names(close)}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    if len(unknown) > MAX_ROWS_SHOWN:
        parts.append(f"and {len(unknown) - MAX_ROWS_SHOWN} more")
    plural = "categories" if what == "category" else f"{what}s"
    raise error(
        f"unknown {what}(s) {', '.join(parts)}; expected names present in the data, which has "
        f"{len(choices)} {plural}: {_names(choices, limit=_MAX_NAMES_SHOWN)}"
    )


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _query(relation: object, name: str, sql: str):
    """Run ``sql`` with ``relation`` visible under ``name`` (a lazy DuckDB relation)."""
    return relation.query(name, sql)  # type: ignore[attr-defined]


def _names(names: Iterable[object], limit: int | None = 12) -> str:
    """``'a', 'b', 'c'`` (repr-quoted), truncated to ``limit`` with ``(and N more)``."""
    names = list(names)
    shown = names if limit is None else names[:limit]
    text = ", ".join(repr(n) for n in shown)
    if len(names) > len(shown):
        text += f" (and {len(names) - len(shown)} more)"
    return text


def _n_rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _dropped_text(dropped: Mapping[str, int]) -> str:
    return ", ".join(f"{_n_rows(n)}: {reason}" for reason, n in dropped.items()) or "nothing"
