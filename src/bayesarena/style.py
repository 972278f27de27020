"""Style-control features from LMArena's ``conv_metadata`` (length, headers, lists, bold).

LMArena's style control (Chiang et al., blog "Does style matter?", 2024) explains part of a
vote by how the two answers look. Per vote, each answer has a count ``s`` per feature:

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
  the model definition (+ 1, ddof 0); on Arena-sized data the two differ negligibly.
* Hugging Face ``lmarena-ai/arena-human-preference-100k`` card declares ``conv_metadata``
  as ``string``; the Parquet releases hold a struct. Releases carry more keys (e.g.
  ``sum_user_tokens``, ``turns``), which are ignored here.

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
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
_JSON_NUMBERS = "('UBIGINT', 'BIGINT', 'UHUGEINT', 'HUGEINT', 'DOUBLE')"
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

    present: str  # boolean: the top-level key is there and not null (NULL-safe where used)
    total: str  # DOUBLE: the count; NULL when missing or not a non-negative number


class _Layout(NamedTuple):
    """How to read the metadata column, decided from its DuckDB type."""

    meta: str  # SQL: the metadata as a STRUCT (the column itself, or the parsed text)
    fields: dict[str, object]  # that STRUCT's fields: key -> DuckDB type, or _JSON
    null: str  # boolean, never NULL: the column is NULL
    invalid: str  # boolean, never NULL: not NULL but not an object (unparsable text)

    @property
    def parsed(self) -> bool:
        """True when ``meta`` parses text (worth computing once per row)."""
        return self.fields is not None and all(t is _JSON for t in self.fields.values())


_JSON = object()  # field type marker: a JSON value (DuckDB's JSON type)
_META = "__bayesarena_style__"  # column / lambda parameter holding the parsed metadata


def style_features_sql(relation: object, column: str = "conv_metadata") -> dict[str, str]:
    """SQL expressions of the raw style features, one per :data:`STYLE_FEATURES`, in order.

    Each expression is ``(s_a - s_b) / (s_a + s_b + 1)`` as DOUBLE (A minus B; the caller
    flips the sign for its own orientation), reading ``column`` of ``relation`` unqualified,
    so it belongs in ``SELECT ... FROM <relation>``. It is NULL on a row whose metadata is
    missing or invalid; run :func:`check_style_metadata` first to turn those into an error.

    The SQL depends on the column's DuckDB type (``relation.types``): a STRUCT is read with
    ``struct_extract`` (a key absent from the struct type reads as missing; an inner key
    absent from it as 0). Text (VARCHAR or JSON) and MAP columns are parsed once per
    expression with ``json_transform`` into a STRUCT of the needed keys (bound through a
    one-element ``list_transform`` lambda), whose JSON values are then read with
    ``json_extract``. Other types raise :class:`InputError`; an absent column raises
    :class:`MissingColumnError`.
    """
    layout = _layout(relation, column)
    if not layout.parsed:
        return _features(_sides(layout, layout.meta))
    features = _features(_sides(layout, _META))
    return {
        f: f"(list_transform([{layout.meta}], lambda {_META}: {sql})[1])"
        for f, sql in features.items()
    }


def _features(sides: Mapping[str, tuple[_Side, _Side]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for feature in STYLE_FEATURES:
        side_a, side_b = sides[feature]
        a, b = f"({side_a.total})", f"({side_b.total})"
        out[feature] = f"(({a} - {b}) / ({a} + {b} + 1.0))"
    return out


def _sides(layout: _Layout, meta: str) -> dict[str, tuple[_Side, _Side]]:
    """Per feature, the (A, B) count SQL over ``meta``, a STRUCT with ``layout.fields``."""
    return {
        feature: (
            _struct_side(meta, keys[0], layout.fields, INNER_KEYS[feature]),
            _struct_side(meta, keys[1], layout.fields, INNER_KEYS[feature]),
        )
        for feature, keys in METADATA_KEYS.items()
    }


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
    if col_type.id == "struct":
        return _Layout(ident, dict(col_type.children), null, "false")
    if col_type.id in ("varchar", "map"):
        doc = _parse_text(ident) if col_type.id == "varchar" else f"to_json({ident})"
        spec = json.dumps(dict.fromkeys(_all_keys(), "JSON"))
        meta = f"json_transform({doc}, {sql_literal(spec)})"
        invalid = f"({ident} IS NOT NULL AND coalesce(json_type({doc}) <> 'OBJECT', true))"
        return _Layout(meta, dict.fromkeys(_all_keys(), _JSON), null, invalid)
    raise InputError(
        f"column {column!r} has type {col_type}; expected LMArena's conv_metadata as a "
        "STRUCT or MAP (Parquet, JSON/JSONL, a DataFrame column of dicts) or as JSON text",
        column=column,
    )


def _parse_text(text: str) -> str:
    """JSON value of a text column: the text if it is JSON, else its Python-repr rewrite."""
    return (
        f"(CASE WHEN json_valid({text}) THEN CAST({text} AS JSON) "
        f"ELSE TRY_CAST({_python_repr_to_json(text)} AS JSON) END)"
    )


def _python_repr_to_json(text: str) -> str:
    """Rewrite a Python ``repr`` of a dict of numbers toward JSON (SQL string expression).

    See :data:`_REPR_REWRITES`. Anything this does not cover stays invalid JSON and is
    reported by :func:`check_style_metadata`.
    """
    out = text
    for pattern, replacement in _REPR_REWRITES:
        out = f"regexp_replace({out}, {sql_literal(pattern)}, {sql_literal(replacement)}, 'g')"
    return out


def _kind(field_type: object) -> str:
    """``"json"`` for a JSON value, else the DuckDB type id (``"struct"``, ``"bigint"``...)."""
    if field_type is _JSON or str(field_type) == "JSON":
        return "json"
    return field_type.id  # type: ignore[attr-defined]


def _struct_number(value: str, kind: str) -> str:
    """DOUBLE of a struct leaf if it is a non-negative finite number, else NULL."""
    if kind in _INTEGER_TYPES:
        return f"(CASE WHEN {value} >= 0 THEN CAST({value} AS DOUBLE) END)"
    if kind in _REAL_TYPES:
        as_double = f"CAST({value} AS DOUBLE)"
        return f"(CASE WHEN isfinite({as_double}) AND {as_double} >= 0 THEN {as_double} END)"
    if kind == "json":
        return _json_number(value)
    return _NULL_DOUBLE


def _struct_side(meta: str, key: str, fields: Mapping, inner: Sequence[str]) -> _Side:
    """One side's count from the STRUCT ``meta`` (field types known, so the SQL is static)."""
    if key not in fields:
        return _Side("false", _NULL_DOUBLE)
    field = f"struct_extract({meta}, {sql_literal(key)})"
    present = f"({field} IS NOT NULL)"
    kind = _kind(fields[key])
    if kind in _INTEGER_TYPES | _REAL_TYPES or not inner:
        if kind == "varchar":  # text nested in a struct: parse it
            return _Side(present, _json_total(_parse_text(field), inner))
        return _Side(present, _struct_number(field, kind))
    if kind == "struct":
        inner_types = dict(fields[key].children)  # type: ignore[attr-defined]
        terms = []
        for name in inner:
            if name in inner_types:
                leaf = f"struct_extract({field}, {sql_literal(name)})"
                number = _struct_number(leaf, _kind(inner_types[name]))
                terms.append(f"(CASE WHEN {leaf} IS NULL THEN 0.0 ELSE {number} END)")
        total = " + ".join(terms) if terms else "0.0"
        return _Side(present, f"(CASE WHEN {field} IS NOT NULL THEN {total} END)")
    if kind == "json":
        return _Side(present, _json_total(field, inner))
    if kind == "map":
        return _Side(present, _json_total(f"to_json({field})", inner))
    if kind == "varchar":
        return _Side(present, _json_total(_parse_text(field), inner))
    return _Side(present, _NULL_DOUBLE)


def _json_total(value: str, inner: Sequence[str]) -> str:
    """DOUBLE count of a JSON value: a number, or (with ``inner``) an object of counts."""
    if not inner:
        return _json_number(value)
    terms = []
    for name in inner:
        leaf = f"json_extract({value}, {_json_path(name)})"
        terms.append(
            f"(CASE WHEN coalesce(json_type({leaf}), 'NULL') = 'NULL' THEN 0.0 "
            f"ELSE {_json_number(leaf)} END)"
        )
    return (
        f"(CASE WHEN json_type({value}) = 'OBJECT' THEN {' + '.join(terms)} "
        f"ELSE {_json_number(value)} END)"
    )


def _json_number(value: str) -> str:
    """DOUBLE of a JSON value if it is a non-negative number, else NULL."""
    as_double = f"TRY_CAST({value} AS DOUBLE)"
    return (
        f"(CASE WHEN json_type({value}) IN {_JSON_NUMBERS} AND {as_double} >= 0 "
        f"THEN {as_double} END)"
    )


def _json_path(key: str) -> str:
    """SQL literal of the JSONPath ``$."key"`` (our keys hold no double quote)."""
    if '"' in key or "\\" in key:
        raise AssertionError(f"unsupported key {key!r}")
    return sql_literal(f'$."{key}"')


def _with_meta(layout: _Layout) -> str:
    """SQL of ``votes`` plus the metadata STRUCT computed once per row as :data:`_META`."""
    return f"(SELECT *, {layout.meta} AS {sql_identifier(_META)} FROM votes)"


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
    sides = _sides(layout, sql_identifier(_META))
    source = _with_meta(layout)
    ok = f"(NOT {layout.null} AND NOT {layout.invalid})"
    problems: list[tuple[str, str, bool]] = [(f"{column} is NULL", layout.null, True)]
    if layout.invalid != "false":
        problems.append((f"{column} is not a JSON object", layout.invalid, False))
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
    ``StyleScaling.fit(raw)``. Checks the metadata first (:func:`check_style_metadata`).
    Needs per-vote input: the aggregated-counts form carries no metadata.
    """
    if votes.kind != "votes":
        raise InputError(
            "style control needs per-vote input with a conv_metadata column; found the "
            "aggregated-counts form",
            column=column,
        )
    relation = votes.relation
    check_style_metadata(relation, column)
    layout = _layout(relation, column)
    exprs = _features(_sides(layout, sql_identifier(_META)))
    select = ", ".join(f"{sql} AS {sql_identifier(f)}" for f, sql in exprs.items())
    query = f"SELECT {select} FROM {_with_meta(layout)} ORDER BY {sql_identifier('row')}"
    arrays = relation.query("votes", query).fetchnumpy()  # type: ignore[attr-defined]
    raw = np.column_stack([np.asarray(arrays[f], dtype=np.float64) for f in STYLE_FEATURES])
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
