"""Style-control features from LMArena's ``conv_metadata`` (length, headers, lists, bold).

LMArena's style control (lmsys.org blog "Does style matter?", August 2024) explains part of
a vote by how the two answers look. Per vote, each answer has a count ``s`` per feature:

==========  ===================================================================================
feature     count ``s_a`` (``_b`` for model B) read from ``conv_metadata``
==========  ===================================================================================
length      ``sum_assistant_a_tokens``
header      ``header_count_a``: sum of ``h1`` .. ``h6``
list        ``list_count_a``: ``ordered`` + ``unordered``
bold        ``bold_count_a``: ``"**"`` + ``"__"``
==========  ===================================================================================

and the raw feature, oriented A minus B, is::

    raw_f = (s_a - s_b) / (s_a + s_b + 1)

z-scored over the votes used: ``z_f = (raw_f - mean_f) / sd_f`` with the population sd
(``ddof = 0``), as :class:`StyleScaling` records.

Sources (key names and formula checked against the code, not copied):

* lm-sys/FastChat ``fastchat/serve/monitor/rating_systems.py`` (commit e208d56, 2024-09):
  ``STYLE_CONTROL_ELEMENTS_V1 = ["sum_assistant_a_tokens", "header_count_a", "list_count_a",
  "bold_count_a", "sum_assistant_b_tokens", "header_count_b", "list_count_b",
  "bold_count_b"]``; ``preprocess_for_style`` takes an int value as is and a dict as
  ``sum(val.values())``, divides the A - B difference by the sum + 1 (``add_one=True``) and
  z-scores with ``np.mean``/``np.std`` (ddof 0).
* lm-sys/FastChat ``fastchat/serve/monitor/add_markdown_info.py``
  (``count_markdown_elements``): inner keys ``header_count{h1..h6}``,
  ``list_count{ordered, unordered}``, ``bold_count{"**", "__"}``, counted on the assistant
  turns with fenced code removed.
* lmarena/arena-rank ``examples/example_utils.py`` (``extract_metadata_features``,
  ``add_style_feature_cols``): the same keys; that example divides by the sum with 0 -> 1
  instead of + 1 and z-scores with the sample sd (pandas, ddof 1). We follow FastChat and
  the model definition (+ 1, ddof 0). The two differ most for small counts (1 header vs 0
  gives 1/2 here, 1 there), so raw features are not interchangeable with that example's.
* Hugging Face ``lmarena-ai/arena-human-preference-100k`` declares ``conv_metadata`` as
  ``string`` in its card; public code reading ``arena-human-preference-140k`` accesses it
  as a struct, with more keys (``sum_user_tokens``, ``turns``, ``context_a_tokens``, ...),
  which are ignored here.

Layouts accepted for the ``conv_metadata`` column (DuckDB's type decides, see
:func:`style_features_sql`): a STRUCT (Parquet, JSON/JSONL files, a pandas column of dicts
with the same keys), a MAP, or text holding a JSON object (CSV, a pandas column of strings,
or DuckDB's ``JSON`` type). Text that is not JSON but a Python ``dict`` printed with
``repr`` (what DuckDB makes of a pandas column of dicts whose keys differ between rows or
whose values are numpy scalars) is read too: quotes, ``None``/``True``/``False`` and
``np.int64(...)`` wrappers are rewritten to JSON first.

Rules: a markdown key may hold an object of counts (documented inner keys summed; an inner
key that is absent or null counts as 0, other inner keys are ignored) or a single number
(taken as the total, as FastChat does). Every count must be a non-negative finite number
(JSON booleans and strings are not numbers). A NULL ``conv_metadata`` or a missing top-level
key is an error (:func:`check_style_metadata`), never a 0.

Cost: a STRUCT is read field by field (about 1 s per million Parquet rows here). JSON text is
parsed once per feature by the expressions of :func:`style_features_sql` and once per feature
per scan in :func:`style_matrix` (about 6 s per million CSV rows here). A pandas column of
dicts is slow whatever the SQL: DuckDB converts the Python objects on every scan (about 15 s
per million rows here); write such data to Parquet first for large runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bayesarena.errors import (
    MAX_ROWS_SHOWN,
    InputError,
    MissingColumnError,
    MissingValueError,
    format_rows,
)
from bayesarena.validation import sql_identifier, sql_literal
from bayesarena.votes import Votes

#: Style features, in the order of every feature axis here.
STYLE_FEATURES: tuple[str, ...] = ("length", "header", "list", "bold")

#: Feature -> (``conv_metadata`` key for model A, key for model B).
METADATA_KEYS: Mapping[str, tuple[str, str]] = {
    "length": ("sum_assistant_a_tokens", "sum_assistant_b_tokens"),
    "header": ("header_count_a", "header_count_b"),
    "list": ("list_count_a", "list_count_b"),
    "bold": ("bold_count_a", "bold_count_b"),
}

#: Feature -> inner keys summed into the count (empty: the key holds the count itself).
INNER_KEYS: Mapping[str, tuple[str, ...]] = {
    "length": (),
    "header": ("h1", "h2", "h3", "h4", "h5", "h6"),
    "list": ("ordered", "unordered"),
    "bold": ("**", "__"),
}

_MIN_SD = 1e-12  # raw features lie in (-1, 1); a smaller sd means a constant feature
_INTEGER_TYPES = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "hugeint"}
    | {"utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"}
)
_REAL_TYPES = frozenset({"float", "double", "decimal"})
_NUMBER_TYPES = _INTEGER_TYPES | _REAL_TYPES
_NULL_DOUBLE = "CAST(NULL AS DOUBLE)"
#: RE2 rewrites (applied in order) from a Python dict ``repr`` to JSON: ``np.int64(3)`` -> ``3``;
#: ``'key'`` -> ``"key"`` (quoted text without quotes or backslashes); ``None``, ``True``,
#: ``False`` -> ``null``, ``true``, ``false``.
_REPR_REWRITES: tuple[tuple[str, str], ...] = (
    (r"np\.[A-Za-z0-9_]+\(([^()]*)\)", r"\1"),
    (r"'([^'\"\\]*)'", r'"\1"'),
    (r"\bNone\b", "null"),
    (r"\bTrue\b", "true"),
    (r"\bFalse\b", "false"),
)


# --------------------------------------------------------------------------------------------
# SQL
# --------------------------------------------------------------------------------------------


class _Side(NamedTuple):
    """SQL for one side's count of one feature."""

    present: str  # boolean: the top-level key is there and not null (may be NULL: coalesce)
    total: str  # DOUBLE: the count; NULL when missing or not a non-negative number


class _Reader(NamedTuple):
    """How to read one feature's two counts.

    ``bind`` is SQL computed once per row and referred to by ``sides(ref)`` through ``ref``
    (a column or a lambda parameter); None when ``sides`` reads the column directly.
    """

    bind: str | None
    sides: Callable[[str], tuple[_Side, _Side]]


class _Layout(NamedTuple):
    """How to read the metadata column, decided from its DuckDB type."""

    null: str  # boolean, never NULL: the column is NULL (or the JSON text ``null``)
    invalid: str  # boolean, never NULL: not NULL but not an object (e.g. unparsable text)
    readers: dict[str, _Reader]  # feature -> reader


# Codes of a JSON value in the per-row code lists (counts themselves are >= 0).
_ABSENT, _OBJECT, _INVALID = -1.0, -2.0, -3.0
_CODES = "bayesarena_codes"  # lambda parameter: a feature's code list
_VALUE = "bayesarena_value"  # lambda parameter: one JSON value


def style_features_sql(relation: object, column: str = "conv_metadata") -> dict[str, str]:
    """SQL expressions of the raw style features, one per :data:`STYLE_FEATURES`, in order.

    Each expression is ``(s_a - s_b) / (s_a + s_b + 1)`` as DOUBLE (A minus B; the caller
    flips the sign for its own orientation), reading ``column`` of ``relation`` unqualified,
    so it belongs in ``SELECT ... FROM <relation>``. It is NULL on a row whose metadata is
    missing or invalid; run :func:`check_style_metadata` first to turn those into an error.

    The SQL depends on the column's DuckDB type (``relation.types``). A STRUCT whose needed
    fields are numbers or STRUCTs of numbers is read with ``struct_extract`` (a key absent
    from the struct type reads as missing, an inner key absent from it as 0). Text (VARCHAR
    or JSON), a MAP, or a STRUCT holding other field types is read as JSON: per feature, one
    ``json_extract`` with a list of paths parses the row once into a list of codes (a count,
    or a marker for absent/null, object, invalid), bound through a one-element
    ``list_transform`` lambda. Other types raise :class:`InputError`; an absent column
    raises :class:`MissingColumnError`.
    """
    layout = _layout(relation, column)
    out: dict[str, str] = {}
    for feature, reader in layout.readers.items():
        if reader.bind is None:
            out[feature] = _formula(*reader.sides(""))
        else:
            body = _formula(*reader.sides(_CODES))
            out[feature] = f"(list_transform([{reader.bind}], lambda {_CODES}: {body})[1])"
    return out


def _formula(side_a: _Side, side_b: _Side) -> str:
    """SQL of ``(s_a - s_b) / (s_a + s_b + 1)``."""
    a, b = f"({side_a.total})", f"({side_b.total})"
    return f"(({a} - {b}) / ({a} + {b} + 1.0))"


def _layout(relation: object, column: str) -> _Layout:
    """Decide how to read ``column`` from its DuckDB type."""
    columns = list(relation.columns)  # type: ignore[attr-defined]
    types = dict(zip(columns, relation.types, strict=True))  # type: ignore[attr-defined]
    if column not in types:
        raise MissingColumnError(
            f"missing column {column!r} needed for style control; expected LMArena's "
            f"conv_metadata (keys {', '.join(repr(k) for k in _all_keys())}); found columns "
            + ", ".join(repr(c) for c in columns),
            column=column,
        )
    col_type = types[column]
    ident = sql_identifier(column)
    null = f"({ident} IS NULL)"
    if col_type.id == "struct" and _struct_readable(dict(col_type.children)):
        fields = dict(col_type.children)
        readers = {
            feature: _Reader(None, partial(_struct_sides, ident, fields, feature))
            for feature in STYLE_FEATURES
        }
        return _Layout(null, "false", readers)
    if col_type.id == "varchar":
        doc = (
            f"coalesce(TRY_CAST({ident} AS JSON), TRY_CAST({_python_repr_to_json(ident)} AS JSON))"
        )
    elif col_type.id in ("struct", "map"):
        doc = f"to_json({ident})"
    else:
        raise InputError(
            f"column {column!r} has type {col_type}; expected LMArena's conv_metadata as a "
            "STRUCT or MAP (Parquet, JSON/JSONL, a DataFrame column of dicts) or as JSON text",
            column=column,
        )
    null = f"({ident} IS NULL OR coalesce(json_type({doc}) = 'NULL', false))"
    invalid = f"(NOT {null} AND coalesce(json_type({doc}) <> 'OBJECT', true))"
    readers = {
        feature: _Reader(_json_codes(doc, feature), partial(_json_sides, feature=feature))
        for feature in STYLE_FEATURES
    }
    return _Layout(null, invalid, readers)


def _python_repr_to_json(text: str) -> str:
    """Rewrite a Python ``repr`` of a dict of numbers toward JSON (SQL string expression).

    See :data:`_REPR_REWRITES`. Anything this does not cover stays invalid JSON and is
    reported by :func:`check_style_metadata`.
    """
    out = text
    for pattern, replacement in _REPR_REWRITES:
        out = f"regexp_replace({out}, {sql_literal(pattern)}, {sql_literal(replacement)}, 'g')"
    return out


# --- STRUCT columns -------------------------------------------------------------------------


def _struct_readable(fields: Mapping[str, object]) -> bool:
    """Whether every needed field is a number (or all-NULL), or a STRUCT for markdown keys."""
    for feature, keys in METADATA_KEYS.items():
        for key in keys:
            if key not in fields:
                continue
            type_id = fields[key].id  # type: ignore[attr-defined]
            scalar = type_id in _NUMBER_TYPES or type_id == "null"
            if not (scalar or (INNER_KEYS[feature] and type_id == "struct")):
                return False
    return True


def _struct_sides(
    ident: str, fields: Mapping[str, object], feature: str, _ref: str
) -> tuple[_Side, _Side]:
    key_a, key_b = METADATA_KEYS[feature]
    inner = INNER_KEYS[feature]
    return _struct_side(ident, key_a, fields, inner), _struct_side(ident, key_b, fields, inner)


def _struct_side(ident: str, key: str, fields: Mapping[str, object], inner: Sequence[str]) -> _Side:
    """One side's count from a STRUCT column (field types known, so the SQL is static)."""
    if key not in fields:
        return _Side("false", _NULL_DOUBLE)
    field = f"struct_extract({ident}, {sql_literal(key)})"
    present = f"({field} IS NOT NULL)"
    field_type = fields[key]
    if field_type.id != "struct":  # type: ignore[attr-defined]
        return _Side(present, _struct_number(field, field_type.id))  # type: ignore[attr-defined]
    inner_types = dict(field_type.children)  # type: ignore[attr-defined]
    terms = []
    for name in inner:
        if name in inner_types:
            leaf = f"struct_extract({field}, {sql_literal(name)})"
            number = _struct_number(leaf, inner_types[name].id)
            terms.append(f"(CASE WHEN {leaf} IS NULL THEN 0.0 ELSE {number} END)")
    total = " + ".join(terms) if terms else "0.0"
    return _Side(present, f"(CASE WHEN {field} IS NOT NULL THEN {total} END)")


def _struct_number(value: str, type_id: str) -> str:
    """DOUBLE of a struct leaf if it is a non-negative finite number, else NULL."""
    if type_id in _INTEGER_TYPES:
        return f"(CASE WHEN {value} >= 0 THEN CAST({value} AS DOUBLE) END)"
    if type_id in _REAL_TYPES:
        as_double = f"CAST({value} AS DOUBLE)"
        return f"(CASE WHEN isfinite({as_double}) AND {as_double} >= 0 THEN {as_double} END)"
    return _NULL_DOUBLE


# --- JSON (text, MAP, other STRUCTs) --------------------------------------------------------


def _json_codes(doc: str, feature: str) -> str:
    """SQL LIST(DOUBLE): codes of the feature's values in the JSON document ``doc``.

    Order: key A, its inner keys (:data:`INNER_KEYS`), key B, its inner keys. Each value is
    coded as its count if it is a number >= 0 (finite), else ``-1`` absent or null, ``-2``
    an object, ``-3`` anything else (string, boolean, array, negative number). A JSON value's
    text is cast as is, so ``"3"`` (a string) is not a count. ``doc`` is parsed once.
    """
    paths = []
    for key in METADATA_KEYS[feature]:
        paths.append(_json_path(key))
        paths.extend(_json_path(key, name) for name in INNER_KEYS[feature])
    text = f"CAST({_VALUE} AS VARCHAR)"
    number = f"TRY_CAST({text} AS DOUBLE)"
    code = (
        f"CASE WHEN {_VALUE} IS NULL OR {text} = 'null' THEN {_ABSENT} "
        f"WHEN starts_with({text}, '{{') THEN {_OBJECT} "
        f"WHEN isfinite({number}) AND {number} >= 0 THEN {number} ELSE {_INVALID} END"
    )
    return f"list_transform(json_extract({doc}, [{', '.join(paths)}]), lambda {_VALUE}: {code})"


def _json_sides(ref: str, *, feature: str) -> tuple[_Side, _Side]:
    """(A, B) counts from the code list ``ref`` of :func:`_json_codes`."""
    k = len(INNER_KEYS[feature])
    return _json_side(ref, 1, k), _json_side(ref, 2 + k, k)


def _json_side(ref: str, at: int, k: int) -> _Side:
    """One side's count from the code list ``ref``: key code at ``at`` (1-based), ``k`` inner."""
    code = f"{ref}[{at}]"
    present = f"({code} <> {_ABSENT})"
    if not k:
        return _Side(present, f"(CASE WHEN {code} >= 0 THEN {code} END)")
    terms = []
    for j in range(at + 1, at + 1 + k):
        leaf = f"{ref}[{j}]"
        terms.append(f"(CASE WHEN {leaf} = {_ABSENT} THEN 0.0 WHEN {leaf} >= 0 THEN {leaf} END)")
    total = (
        f"(CASE WHEN {code} = {_OBJECT} THEN ({' + '.join(terms)}) "
        f"WHEN {code} >= 0 THEN {code} END)"
    )
    return _Side(present, total)


def _json_path(*keys: str) -> str:
    """SQL literal of the JSONPath ``$."k1"."k2"`` (our keys hold no double quote)."""
    for key in keys:
        if '"' in key or "\\" in key:
            raise AssertionError(f"unsupported key {key!r}")
    return sql_literal("$" + "".join(f'."{key}"' for key in keys))


def _bound(layout: _Layout, *, flags: bool = False) -> tuple[str, dict[str, tuple[_Side, _Side]]]:
    """``votes`` with each reader's ``bind`` computed once as a column, and the sides on it.

    Returns the SQL of that source (a subquery) and feature -> (A, B) sides. With ``flags``,
    the source also has the boolean columns :data:`_NULL_FLAG` and :data:`_INVALID_FLAG`.
    """
    columns = []
    if flags:
        columns += [f"{layout.null} AS {_NULL_FLAG}", f"{layout.invalid} AS {_INVALID_FLAG}"]
    sides = {}
    for feature, reader in layout.readers.items():
        if reader.bind is None:
            sides[feature] = reader.sides("")
        else:
            name = sql_identifier(f"__bayesarena_style_{feature}__")
            columns.append(f"{reader.bind} AS {name}")
            sides[feature] = reader.sides(name)
    extra = "".join(f", {c}" for c in columns)
    return f"(SELECT *{extra} FROM votes)", sides


_NULL_FLAG = sql_identifier("__bayesarena_style_null__")
_INVALID_FLAG = sql_identifier("__bayesarena_style_invalid__")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_style_metadata(relation: object, column: str = "conv_metadata") -> None:
    """Raise if any row's style metadata is missing or invalid, naming the first rows.

    ``relation`` is a DuckDB relation with the canonical ``row`` column (e.g.
    ``Votes.relation``). One pass counts, per problem, the rows where ``column`` is NULL or
    not a JSON object, where a needed key (:data:`METADATA_KEYS`) is missing or null, and
    where a key holds something other than a non-negative count (or, for the markdown keys,
    an object of such counts). Raises :class:`MissingValueError` when something is missing,
    :class:`InputError` when everything is there but some value is invalid, and
    :class:`MissingColumnError` when the column is absent. The message lists every problem
    with its first rows (zero-based reading order); ``error.rows`` holds the first offending
    rows overall.
    """
    layout = _layout(relation, column)
    source, sides = _bound(layout, flags=True)
    ok = f"(NOT {_NULL_FLAG} AND NOT {_INVALID_FLAG})"
    problems: list[tuple[str, str, bool]] = [(f"{column} is NULL", _NULL_FLAG, True)]
    if layout.invalid != "false":
        problems.append((f"{column} is not a JSON object", _INVALID_FLAG, False))
    for feature in STYLE_FEATURES:
        expected = "a non-negative count"
        if INNER_KEYS[feature]:
            expected += " or an object of counts"
        for key, side in zip(METADATA_KEYS[feature], sides[feature], strict=True):
            present = f"coalesce({side.present}, false)"
            problems.append((f"key {key!r} is missing", f"({ok} AND NOT {present})", True))
            problems.append(
                (
                    f"key {key!r} is not {expected}",
                    f"({ok} AND {present} AND ({side.total}) IS NULL)",
                    False,
                )
            )
    any_bad = " OR ".join(p for _, p, _ in problems)
    counts_sql = ", ".join(f"count(*) FILTER (WHERE {p})" for _, p, _ in problems)
    query = f"SELECT count(*) FILTER (WHERE {any_bad}), {counts_sql} FROM {source}"
    total, *counts = _query(relation, query)[0]
    if not total:
        return
    parts = []
    missing = False
    for (what, predicate, is_missing), n in zip(problems, counts, strict=True):
        if n:
            missing = missing or is_missing
            first = _first_rows(relation, source, predicate)
            parts.append(f"{what} at {format_rows(first, int(n))}")
    rows = _first_rows(relation, source, f"({any_bad})")
    error = MissingValueError if missing else InputError
    raise error(
        f"invalid style metadata in column {column!r} at {format_rows(rows, int(total))}: "
        + "; ".join(parts)
        + ". Expected LMArena's conv_metadata: an object with "
        + ", ".join(repr(k) for k in _all_keys())
        + " (token counts as numbers; header/list/bold counts as objects such as "
        "{'h1': 0, ..., 'h6': 2}, {'ordered': 1, 'unordered': 3}, {'**': 2, '__': 0})",
        column=column,
        rows=rows,
    )


def _first_rows(relation: object, source: str, predicate: str) -> list[int]:
    row = sql_identifier("row")
    query = f"SELECT {row} FROM {source} WHERE {predicate} ORDER BY {row} LIMIT {MAX_ROWS_SHOWN}"
    return [int(r) for (r,) in _query(relation, query)]


def _query(relation: object, sql: str) -> list[tuple]:
    return relation.query("votes", sql).fetchall()  # type: ignore[attr-defined]


def _all_keys() -> list[str]:
    return [key for keys in METADATA_KEYS.values() for key in keys]


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------


class StyleScaling(NamedTuple):
    """Per-feature mean and sd of the raw style features over the votes used.

    ``z = (raw - mean) / sd`` (:meth:`apply`); ``sd`` is the population sd (``ddof=0``), as
    in FastChat's ``preprocess_for_style``. Both arrays are aligned with
    :data:`STYLE_FEATURES`.
    """

    mean: np.ndarray  # float64 (F,)
    sd: np.ndarray  # float64 (F,)

    @classmethod
    def fit(cls, raw: ArrayLike) -> StyleScaling:
        """Mean and sd of ``raw`` (n, F) over votes.

        Raises :class:`InputError` if ``raw`` is not a finite (n, F) array with n >= 1, or if a
        feature is constant (sd below 1e-12): its coefficient could not be estimated.
        """
        x = _feature_array(raw, "raw")
        if x.shape[0] == 0:
            raise InputError("no votes to compute the style scaling from: expected n >= 1")
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
        constant = [f for f, s in zip(STYLE_FEATURES, sd, strict=True) if not s >= _MIN_SD]
        if constant:
            values = ", ".join(f"{f!r} = {mean[STYLE_FEATURES.index(f)]:.6g}" for f in constant)
            raise InputError(
                f"style feature(s) {', '.join(repr(f) for f in constant)} constant over the "
                f"{x.shape[0]:,} votes ({values} on every vote): expected some variation; a "
                "constant feature's coefficient cannot be estimated"
            )
        return cls(mean=mean, sd=sd)

    def apply(self, raw: ArrayLike) -> np.ndarray:
        """z-scores ``(raw - mean) / sd`` of ``raw`` (n, F), as float64."""
        return (_feature_array(raw, "raw") - self.mean) / self.sd

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{feature: {"mean": ..., "sd": ...}}`` for recording with a fit."""
        return {
            f: {"mean": float(m), "sd": float(s)}
            for f, m, s in zip(STYLE_FEATURES, self.mean, self.sd, strict=True)
        }


def style_matrix(votes: Votes, column: str = "conv_metadata") -> tuple[np.ndarray, StyleScaling]:
    """Raw style features of every used vote, in ``row`` order, and their scaling.

    Returns ``raw`` (n, 4) float64, A minus B, columns :data:`STYLE_FEATURES`, each
    ``(s_a - s_b) / (s_a + s_b + 1)`` (:func:`style_features_sql`), and
    ``StyleScaling.fit(raw)``. Missing or invalid metadata raises the error of
    :func:`check_style_metadata` (run only then, so the source is scanned once).
    Needs per-vote input: the aggregated-counts form carries no metadata.
    """
    if votes.kind != "votes":
        raise InputError(
            "style control needs per-vote input with a conv_metadata column; found the "
            "aggregated-counts form",
            column=column,
        )
    relation = votes.relation
    source, sides = _bound(_layout(relation, column))
    # NULL (missing or invalid metadata) comes back as NaN, which no valid row can produce.
    select = ", ".join(
        f"coalesce({_formula(*sides[f])}, 'NaN'::DOUBLE) AS {sql_identifier(f)}"
        for f in STYLE_FEATURES
    )
    query = f"SELECT {select} FROM {source} ORDER BY {sql_identifier('row')}"
    arrays = relation.query("votes", query).fetchnumpy()  # type: ignore[attr-defined]
    raw = np.column_stack([np.asarray(arrays[f], dtype=np.float64) for f in STYLE_FEATURES])
    if np.isnan(raw).any():
        check_style_metadata(relation, column)  # raises, naming the rows
        raise AssertionError("style features are NULL on rows that pass the metadata check")
    return raw, StyleScaling.fit(raw)


def style_features_from_counts(
    a_counts: Mapping[str, ArrayLike], b_counts: Mapping[str, ArrayLike]
) -> np.ndarray:
    """Raw style features (n, 4) from per-side counts, ``(s_a - s_b) / (s_a + s_b + 1)``.

    ``a_counts[f]`` and ``b_counts[f]`` are the per-vote totals of feature ``f`` (tokens;
    headers h1..h6 summed; list items; bold spans) for every ``f`` in
    :data:`STYLE_FEATURES`, 1-D arrays of one length n, non-negative and finite. The same
    formula as :func:`style_features_sql`, for simulators and tests.
    """
    a = _count_columns(a_counts, "a_counts")
    b = _count_columns(b_counts, "b_counts")
    if a.shape != b.shape:
        raise InputError(
            f"a_counts and b_counts must cover the same votes: found {a.shape[0]} and "
            f"{b.shape[0]} votes"
        )
    return (a - b) / (a + b + 1.0)


def make_conv_metadata(
    a_counts: Mapping[str, ArrayLike],
    b_counts: Mapping[str, ArrayLike],
    *,
    extra: Mapping[str, ArrayLike] | None = None,
) -> list[dict]:
    """LMArena-shaped ``conv_metadata`` dicts, one per vote, from count arrays.

    ``a_counts[f]`` for ``f`` in :data:`STYLE_FEATURES`: ``"length"`` a 1-D array (n,) of
    token counts; ``"header"``, ``"list"``, ``"bold"`` either 1-D totals, put on the first
    inner key (``h1``, ``ordered``, ``"**"``) with the others 0, or 2-D (n, k) counts per inner
    key in :data:`INNER_KEYS` order. Counts must be non-negative whole numbers. ``extra`` adds
    top-level per-vote keys (e.g. ``sum_user_tokens``, ``turns``).

    Values are plain Python ints (numpy scalars would make DuckDB read a DataFrame column of
    these dicts as text), so ``pd.DataFrame({"conv_metadata": make_conv_metadata(...)})``
    reads as a STRUCT. Feeding the result through :func:`style_matrix` gives
    :func:`style_features_from_counts` of the totals.
    """
    sides = {"a": _split_counts(a_counts, "a_counts"), "b": _split_counts(b_counts, "b_counts")}
    n = len(sides["a"]["length"])
    if len(sides["b"]["length"]) != n:
        raise InputError(
            f"a_counts and b_counts must cover the same votes: found {n} and "
            f"{len(sides['b']['length'])} votes"
        )
    extras: dict[str, list] = {}
    for key, values in (extra or {}).items():
        if key in _all_keys():
            raise InputError(f"extra key {key!r} would overwrite a style key")
        column = np.asarray(values)
        if column.shape != (n,):
            raise InputError(f"extra[{key!r}] must have shape ({n},), found {column.shape}")
        extras[key] = column.tolist()
    keys: list[str] = []
    inners: list[tuple[str, ...]] = []
    values: list[list] = []
    for feature, side_index in [("length", 0), ("length", 1)] + [
        (f, i) for i in (0, 1) for f in STYLE_FEATURES[1:]
    ]:
        keys.append(METADATA_KEYS[feature][side_index])
        inners.append(INNER_KEYS[feature])
        values.append(sides["ab"[side_index]][feature])
    keys += list(extras)
    inners += [()] * len(extras)
    values += list(extras.values())
    return [
        {
            key: dict(zip(inner, value, strict=True)) if inner else value
            for key, inner, value in zip(keys, inners, row, strict=True)
        }
        for row in zip(*values, strict=True)
    ]


def _feature_array(raw: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(raw, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(STYLE_FEATURES):
        raise InputError(
            f"{name} must have shape (n, {len(STYLE_FEATURES)}) with columns "
            f"{STYLE_FEATURES}, found shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} holds non-finite values; expected finite style features")
    return x


def _checked_keys(counts: Mapping[str, ArrayLike], name: str) -> None:
    missing = [f for f in STYLE_FEATURES if f not in counts]
    unknown = [k for k in counts if k not in STYLE_FEATURES]
    if missing or unknown:
        raise InputError(
            f"{name} must have exactly the keys {STYLE_FEATURES}; missing {missing}, "
            f"unknown {unknown}"
        )


def _nonnegative(values: ArrayLike, where: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise InputError(f"{where} must hold non-negative finite counts")
    return x


def _count_columns(counts: Mapping[str, ArrayLike], name: str) -> np.ndarray:
    """(n, 4) float64 totals from a feature -> 1-D counts mapping."""
    _checked_keys(counts, name)
    columns = [_nonnegative(counts[f], f"{name}[{f!r}]") for f in STYLE_FEATURES]
    shapes = {c.shape for c in columns}
    if len(shapes) != 1 or columns[0].ndim != 1:
        raise InputError(
            f"{name} values must be 1-D arrays of one length, found shapes "
            + ", ".join(f"{f}: {c.shape}" for f, c in zip(STYLE_FEATURES, columns, strict=True))
        )
    return np.column_stack(columns)


def _split_counts(counts: Mapping[str, ArrayLike], name: str) -> dict[str, list]:
    """Feature -> per-vote Python ints (length) or lists of ints per inner key."""
    _checked_keys(counts, name)
    out: dict[str, list] = {}
    n: int | None = None
    for feature in STYLE_FEATURES:
        x = _nonnegative(counts[feature], f"{name}[{feature!r}]")
        if np.any(x != np.floor(x)):
            raise InputError(f"{name}[{feature!r}] must hold whole numbers")
        k = len(INNER_KEYS[feature])
        if feature == "length":
            if x.ndim != 1:
                raise InputError(f"{name}['length'] must be 1-D, found shape {x.shape}")
            out[feature] = x.astype(np.int64).tolist()
        elif x.ndim == 1:
            split = np.zeros((x.shape[0], k), dtype=np.int64)
            split[:, 0] = x
            out[feature] = split.tolist()
        elif x.ndim == 2 and x.shape[1] == k:
            out[feature] = x.astype(np.int64).tolist()
        else:
            raise InputError(
                f"{name}[{feature!r}] must have shape (n,) or (n, {k}) for inner keys "
                f"{INNER_KEYS[feature]}, found {x.shape}"
            )
        if n is None:
            n = len(out[feature])
        elif len(out[feature]) != n:
            raise InputError(f"{name} arrays must all have the same number of votes")
    return out
