"""Reading votes: a DataFrame or a CSV/JSON/JSONL/Parquet file -> validated :class:`Votes`.

Every input goes through DuckDB: a DataFrame is scanned where it lives (one with Python-object
columns, such as dicts of style metadata, after a single conversion to Arrow), files are read with
``read_csv``/``read_json``/``read_parquet`` (globs and directories of Parquet files included),
and both validation and the canonical projection are SQL over a lazy relation. Only counts and
the first offending rows come back to Python, so a 10-million-row Parquet log is never
materialised in pandas. The returned :class:`Votes` holds the canonical relation, which keeps
its connection (and, for a DataFrame, the frame or its Arrow table) alive after
:func:`read_votes` returns.

Reading happens in three SQL layers, each a lazy relation over the one before:

``raw``
    The source as read, plus a private zero-based reading-order column.
``staged``
    Source columns renamed to canonical names; model names and ``winner`` as text (NaN ->
    NULL); ``outcome``: the winner label mapped through the alias table (NULL if unknown).
``canonical``
    :attr:`Votes.relation`: the used rows only (see :mod:`bayesarena.validation` for the
    checks), with the columns documented on :class:`~bayesarena.votes.Votes`.

The relation is lazy: it re-reads the source whenever it is queried, so a file must not change
between :func:`read_votes` and :func:`~bayesarena.aggregate.aggregate`.
"""

from __future__ import annotations

import errno
import glob as globlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from bayesarena.errors import EmptyDataError, InputError, MissingColumnError
from bayesarena.validation import (
    check_winner_map,
    count_checks,
    count_value_sql,
    detect_kind,
    sql_identifier,
    sql_literal,
    validate_rows,
    vote_checks,
)
from bayesarena.votes import COUNT_COLUMNS, OPTIONAL_COLUMNS, InputKind, Votes

#: Formats :func:`read_votes` reads, for ``format=``.
FORMATS: tuple[str, ...] = ("csv", "json", "jsonl", "parquet")

#: File suffix -> format (a trailing ``.gz``/``.zst`` compression suffix is ignored).
SUFFIX_FORMATS: Mapping[str, str] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
_COMPRESSION_SUFFIXES = (".gz", ".zst")
_FORMAT_GLOBS = {"csv": "*.csv", "json": "*.json", "jsonl": "*.jsonl", "parquet": "*.parquet"}

#: Private column holding the zero-based reading order in the ``raw`` layer.
_ROW = "__bayesarena_row__"
_NESTED_TYPES = frozenset({"list", "struct", "map", "array", "union"})
_FLOAT_TYPES = frozenset({"float", "double"})
#: Optional columns read as text (names that become coordinates downstream).
_TEXT_OPTIONAL = ("category", "voter", "language")
#: Optional columns carried by the counts form.
_COUNT_OPTIONAL = ("category",)


def _connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection (the default when the caller passes none).

    The progress bar is off: a library call should not draw on the terminal.
    """
    con = duckdb.connect(":memory:")
    con.sql("SET enable_progress_bar = false")
    return con


def read_votes(
    source: pd.DataFrame | str | os.PathLike[str],
    *,
    format: str | None = None,
    winner_map: Mapping[str, str] | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Votes:
    """Read and validate pairwise votes from a DataFrame or a file.

    Parameters
    ----------
    source:
        A pandas DataFrame, or a path to a CSV, JSON (array of records), JSONL/NDJSON or
        Parquet file. A path may be a glob (``logs/*.parquet``) or a directory, read as all
        ``*.parquet`` files under it (recursively, Hive partitions such as ``category=x/``
        becoming columns).
    format:
        ``"csv"``, ``"json"``, ``"jsonl"`` or ``"parquet"``; inferred from the suffix when
        None (``.csv``, ``.json``, ``.jsonl``/``.ndjson``, ``.parquet``, optionally followed
        by ``.gz``/``.zst``).
    winner_map:
        Extra ``winner`` labels, e.g. ``{"1": "model_a", "-1": "model_b", "0": "tie"}`` for
        an integer column. Values are outcomes (:data:`~bayesarena.votes.OUTCOMES`) or
        documented aliases; labels are matched exactly as text. Unknown labels are refused.
    on_invalid:
        ``"raise"`` (default): the first failing check raises its typed error. ``"drop"``:
        offending rows are left out and counted per reason in ``Votes.summary.dropped``.
    connection:
        DuckDB connection to use; a fresh in-memory one by default.

    The input form is told from the columns: per-vote (``model_a, model_b, winner``) or
    aggregated counts (``model_a, model_b, wins_a, wins_b, ties`` and optional
    ``ties_bothbad``, taken as 0 when absent). Optional columns
    (:data:`~bayesarena.votes.OPTIONAL_COLUMNS`: ``category``, ``voter`` from ``voter`` or
    ``judge``, ``tstamp``, ``language``, ``position``, ``conv_metadata``) are carried under
    their canonical names; ``category``, ``voter`` and ``language`` as text unless they hold
    lists. The counts form carries ``category`` only.

    The canonical ``row`` column is the zero-based reading order: the DataFrame's position,
    the line order of a CSV/JSON file, the stored order of a Parquet file; for several files,
    files in sorted path order.

    Raises
    ------
    InputError
        Unreadable source (missing file, unknown format, a column of a nested type).
    MissingColumnError, EmptyDataError, MissingValueError, UnknownLabelError, SelfBattleError,
    InvalidCountError
        See :mod:`bayesarena.validation`.
    """
    if on_invalid not in ("raise", "drop"):
        raise InputError(f"on_invalid must be 'raise' or 'drop', found {on_invalid!r}")
    aliases = check_winner_map(winner_map)
    con = connection if connection is not None else _connect()
    raw, label, fmt = _load(con, source, format)
    try:
        return _read(raw, label, aliases, on_invalid)
    except duckdb.Error as exc:
        raise InputError(f"could not read {label} as {fmt}: {_first_line(exc)}") from exc


def _read(
    raw: duckdb.DuckDBPyRelation,
    label: str,
    aliases: Mapping[str, str],
    on_invalid: Literal["raise", "drop"],
) -> Votes:
    """Detect the form, stage, validate and project ``raw`` to the canonical relation."""
    columns = [c for c in raw.columns if c != _ROW]
    types = {c: t.id for c, t in zip(raw.columns, raw.types, strict=True)}
    try:
        kind = detect_kind(columns)
    except MissingColumnError:
        if _count_rows(raw) == 0:  # an empty file has no header to speak of: say it is empty
            raise EmptyDataError(
                f"no rows in {label}: expected at least one vote, found 0 rows"
            ) from None
        raise
    optional = _optional_sources(columns, kind)
    if kind == "votes":
        staged = _stage_votes(raw, types, optional, aliases)
        checks = vote_checks(tuple(aliases))
        votes_sql = "1"
    else:
        staged = _stage_counts(raw, types, optional)
        staged_types = {c: t.id for c, t in zip(staged.columns, staged.types, strict=True)}
        checks = count_checks({c: staged_types[c] for c in COUNT_COLUMNS})
        votes_sql = " + ".join(
            count_value_sql(sql_identifier(c), staged_types[c]) for c in COUNT_COLUMNS
        )
    summary, keep = validate_rows(
        staged, checks, source=label, kind=kind, on_invalid=on_invalid, votes_sql=votes_sql
    )
    canonical = _canonical(staged, kind, tuple(optional), keep)
    return Votes(
        relation=canonical,
        kind=kind,
        models=_models(canonical),
        optional_columns=tuple(optional),
        summary=summary,
    )


# --------------------------------------------------------------------------------------------
# Loading: source -> raw relation with a reading-order column
# --------------------------------------------------------------------------------------------


def _load(
    con: duckdb.DuckDBPyConnection, source: object, format: str | None
) -> tuple[duckdb.DuckDBPyRelation, str, str]:
    """The ``raw`` relation (source columns + :data:`_ROW`), a label for messages, the format."""
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected one of {_quoted(FORMATS)}")
    if isinstance(source, pd.DataFrame):
        return _load_frame(con, source), "DataFrame", "DataFrame"
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            "source must be a pandas DataFrame or a path (str or Path) to a CSV, JSON, JSONL or "
            f"Parquet file, found {type(source).__name__}"
        )
    text = os.fspath(source)
    pattern, fmt, several = _resolve_path(text, format)
    try:
        return _load_file(con, pattern, fmt, several), text, fmt
    except duckdb.Error as exc:
        raise InputError(f"could not read {text} as {fmt}: {_first_line(exc)}") from exc


def _load_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> duckdb.DuckDBPyRelation:
    """Register a copy of ``frame`` with its position as :data:`_ROW` (SQL: a scan of it)."""
    if _ROW in frame.columns:
        raise InputError(f"column name {_ROW!r} is reserved")
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InputError(f"column names must be strings, found {bad[:5]!r}")
    numbered = frame.assign(**{_ROW: np.arange(len(frame), dtype=np.int64)})
    if any(pd.api.types.is_object_dtype(dtype) for dtype in numbered.dtypes):
        # Python objects (conv_metadata dicts, lists of category tags): DuckDB's pandas scan
        # converts them row by row in Python on every query (at 1M votes 55 s over the
        # queries that build the arena cells); Arrow converts them once, in C++ (5 s). A
        # frame with a column Arrow cannot type (mixed objects) keeps DuckDB's own scan.
        try:
            return con.from_arrow(pa.Table.from_pandas(numbered, preserve_index=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    return con.from_df(numbered)


def _resolve_path(text: str, format: str | None) -> tuple[str, str, bool]:
    """Check a path exists and pick its format: (pattern for DuckDB, format, several files?).

    A directory becomes the recursive glob ``dir/**/*.parquet`` (or the given format's
    suffix); a glob must match at least one file. Remote URLs are passed through unchecked.
    """
    remote = "://" in text
    path = Path(text).expanduser()
    if not remote and path.is_dir():
        fmt = format or "parquet"
        pattern = os.path.join(str(path), "**", _FORMAT_GLOBS[fmt])
        if not globlib.glob(pattern, recursive=True):
            raise InputError(f"no {_FORMAT_GLOBS[fmt]} files under directory {text}")
        return pattern, fmt, True
    several = any(ch in text for ch in "*?[")
    if not remote:
        if several and not globlib.glob(str(path), recursive=True):
            raise InputError(f"no files match the pattern {text}")
        if not several and not path.exists():
            raise InputError(f"file not found: {text}") from FileNotFoundError(
                errno.ENOENT, os.strerror(errno.ENOENT), text
            )
    fmt = format or _infer_format(text)
    return (text if remote else str(path)), fmt, several


def _infer_format(text: str) -> str:
    """Format from the file suffix, ignoring a trailing compression suffix."""
    name = Path(text).name.lower()
    for comp in _COMPRESSION_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
    suffix = Path(name).suffix
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    raise InputError(
        f"cannot tell the format of {text} from its suffix {suffix or '(none)'!r}; accepted "
        f"suffixes: {_quoted(SUFFIX_FORMATS)} (optionally + .gz/.zst), or pass format= one of "
        f"{_quoted(FORMATS)}"
    )


def _load_file(
    con: duckdb.DuckDBPyConnection, pattern: str, fmt: str, several: bool
) -> duckdb.DuckDBPyRelation:
    """The ``raw`` relation of a file (or files), the path passed as a query parameter.

    Reading order: Parquet's ``file_row_number`` (plus the row counts of the files before, in
    sorted path order, when there are several); CSV and JSON readers have no row number, so
    ``row_number() OVER () - 1`` over the scan, whose order DuckDB preserves
    (``preserve_insertion_order``, on by default).
    """
    row = sql_identifier(_ROW)
    if fmt == "parquet":
        if not several:
            query = (
                f"SELECT * EXCLUDE (file_row_number), file_row_number AS {row} "
                "FROM read_parquet($1, file_row_number = true)"
            )
        else:
            query = (
                "WITH src AS (SELECT * FROM read_parquet($1, file_row_number = true, "
                "filename = true)), "
                "files AS (SELECT filename AS __file, "
                "sum(count(*)) OVER (ORDER BY filename) - count(*) AS __offset "
                "FROM src GROUP BY filename) "
                f"SELECT src.* EXCLUDE (file_row_number, filename), "
                f"CAST(files.__offset + src.file_row_number AS BIGINT) AS {row} "
                "FROM src JOIN files ON src.filename = files.__file"
            )
        return con.sql(query, params=[pattern])
    ordered = con.sql("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    if not ordered:
        raise InputError(
            f"cannot number the rows of a {fmt} file in reading order: the connection has "
            "preserve_insertion_order = false; expected true (the default)"
        )
    if fmt == "csv":
        sniffed = con.sql("SELECT * FROM read_csv($1)", params=[pattern]).columns
        text_columns = [c for c in sniffed if c in _csv_text_columns()]
        types = ", ".join(f"{sql_literal(c)}: 'VARCHAR'" for c in text_columns)
        reader = f"read_csv($1, types = {{{types}}})" if text_columns else "read_csv($1)"
    else:
        layout = "array" if fmt == "json" else "newline_delimited"
        reader = f"read_json($1, format = '{layout}')"
    return con.sql(f"SELECT *, row_number() OVER () - 1 AS {row} FROM {reader}", params=[pattern])


def _csv_text_columns() -> frozenset[str]:
    """CSV columns read as VARCHAR, so ``007`` stays ``007`` and labels are matched as typed."""
    names = {"model_a", "model_b", "winner"}
    for canonical in _TEXT_OPTIONAL:
        names.update(OPTIONAL_COLUMNS[canonical])
    return frozenset(names)


# --------------------------------------------------------------------------------------------
# Staging and the canonical projection
# --------------------------------------------------------------------------------------------


def _optional_sources(columns: Sequence[str], kind: InputKind) -> dict[str, str]:
    """Canonical optional column -> the source column it comes from (first accepted name)."""
    allowed = OPTIONAL_COLUMNS if kind == "votes" else _COUNT_OPTIONAL
    present = set(columns)
    found: dict[str, str] = {}
    for canonical in allowed:
        for name in OPTIONAL_COLUMNS[canonical]:
            if name in present:
                found[canonical] = name
                break
    return found


def _text_sql(column: str, type_id: str) -> str:
    """SQL text of a name-like column: ``CAST(x AS VARCHAR)``, NaN -> NULL for floats.

    Nested and binary columns are refused: casting them would invent names.
    """
    ident = sql_identifier(column)
    if type_id in _NESTED_TYPES or type_id == "blob":
        raise InputError(
            f"column {column!r} has type {type_id.upper()}; expected text (or numbers)",
            column=column,
        )
    if type_id in _FLOAT_TYPES:
        return f"CASE WHEN isnan({ident}) THEN NULL ELSE CAST({ident} AS VARCHAR) END"
    return f"CAST({ident} AS VARCHAR)"


def _optional_sql(canonical: str, source: str, type_id: str) -> str:
    """Projection of an optional column under its canonical name (text where name-like)."""
    if canonical in _TEXT_OPTIONAL and type_id not in _NESTED_TYPES and type_id != "blob":
        expr = _text_sql(source, type_id)
    else:
        expr = sql_identifier(source)
    return f"{expr} AS {sql_identifier(canonical)}"


def _stage_votes(
    raw: duckdb.DuckDBPyRelation,
    types: Mapping[str, str],
    optional: Mapping[str, str],
    aliases: Mapping[str, str],
) -> duckdb.DuckDBPyRelation:
    """Per-vote staging: ``row, model_a, model_b, winner`` as text, ``outcome`` from the labels.

    SQL: ``CASE winner WHEN 'model_a' THEN 'win_a' ... END`` (exact text match; NULL for an
    unknown label or a NULL winner).
    """
    ident = sql_identifier
    projections = [
        f"CAST({ident(_ROW)} AS BIGINT) AS {ident('row')}",
        *(f"{_text_sql(c, types[c])} AS {ident(c)}" for c in ("model_a", "model_b", "winner")),
        *(_optional_sql(c, s, types[s]) for c, s in optional.items()),
    ]
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in aliases.items())
    query = (
        f"SELECT s.*, CASE s.{ident('winner')} {whens} END AS {ident('outcome')} "
        f"FROM (SELECT {', '.join(projections)} FROM raw) AS s"
    )
    return raw.query("raw", query)


def _stage_counts(
    raw: duckdb.DuckDBPyRelation,
    types: Mapping[str, str],
    optional: Mapping[str, str],
) -> duckdb.DuckDBPyRelation:
    """Counts staging: names as text, count columns as read (``ties_bothbad`` 0 if absent)."""
    ident = sql_identifier
    projections = [
        f"CAST({ident(_ROW)} AS BIGINT) AS {ident('row')}",
        *(f"{_text_sql(c, types[c])} AS {ident(c)}" for c in ("model_a", "model_b")),
        *(
            f"{ident(c)} AS {ident(c)}" if c in types else f"CAST(0 AS BIGINT) AS {ident(c)}"
            for c in COUNT_COLUMNS
        ),
        *(_optional_sql(c, s, types[s]) for c, s in optional.items()),
    ]
    return raw.query("raw", f"SELECT {', '.join(projections)} FROM raw")


def _canonical(
    staged: duckdb.DuckDBPyRelation,
    kind: InputKind,
    optional: Sequence[str],
    keep: str | None,
) -> duckdb.DuckDBPyRelation:
    """The canonical relation (see :class:`Votes`): used rows only when ``keep`` is given.

    Counts become BIGINT here (validation guarantees they are whole and non-negative).
    """
    ident = sql_identifier
    if kind == "votes":
        values = [ident("outcome")]
    else:
        staged_types = {c: t.id for c, t in zip(staged.columns, staged.types, strict=True)}
        values = [
            f"{count_value_sql(ident(c), staged_types[c])} AS {ident(c)}" for c in COUNT_COLUMNS
        ]
    columns = [ident("row"), ident("model_a"), ident("model_b"), *values]
    columns += [ident(c) for c in optional]
    where = f" WHERE {keep}" if keep else ""
    return staged.query("staged", f"SELECT {', '.join(columns)} FROM staged{where}")


def _models(canonical: duckdb.DuckDBPyRelation) -> tuple[str, ...]:
    """Sorted distinct model names of the used rows (Python code-point order)."""
    a, b = sql_identifier("model_a"), sql_identifier("model_b")
    query = f"SELECT {a} FROM votes UNION SELECT {b} FROM votes"
    return tuple(sorted(m for (m,) in canonical.query("votes", query).fetchall()))


def _count_rows(relation: duckdb.DuckDBPyRelation) -> int:
    return int(relation.query("r", "SELECT count(*) FROM r").fetchall()[0][0])


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _quoted(names: Sequence[str] | Mapping[str, str]) -> str:
    return ", ".join(repr(n) for n in names)
