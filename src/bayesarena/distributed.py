"""Aggregation of vote logs too large for one machine, on Dask.

:func:`aggregate_dask` is the distributed twin of ``aggregate(read_votes(path))`` for per-vote
Parquet logs: same validation rules, same row accounting, same :class:`~bayesarena.votes.Cells`
(cell for cell, count for count). Each Parquet file is one Dask task that streams the file in
record batches of at most ``batch_rows`` rows (``pyarrow.parquet.ParquetFile.iter_batches``), so
a worker holds one batch of the four needed columns at a time whatever the size of the file.
For each batch the task

1. takes ``model_a``, ``model_b``, ``winner`` (and ``category``) as dictionary arrays (text
   columns straight from Parquet's dictionary pages, ``read_dictionary``; other types through
   ``pyarrow.compute.dictionary_encode``) and judges the few distinct values, not the rows: a
   name is missing when it is NULL, NaN, empty or whitespace-only (``str.isspace``, what
   read_votes' blank-name check tests); a label is mapped through the alias table
   (:func:`~bayesarena.validation.check_winner_map`, i.e. :data:`~bayesarena.votes.WINNER_ALIASES`
   plus the user's ``winner_map``); values are compared as text, as DuckDB's ``CAST(x AS
   VARCHAR)`` renders them;
2. gives each row its first failing check, in the order of
   :func:`~bayesarena.validation.vote_checks` (missing model name, missing winner, unknown
   winner label, self-battle), and counts rows per reason;
3. orients every used vote to its unordered pair ``(i, j)``, ``i`` the smaller name in
   code-point order (the order :func:`~bayesarena.aggregate.aggregate` uses: DuckDB's
   ``least``/``greatest`` under the binary collation), so ``win_i`` counts ``model_a`` wins when
   ``model_a < model_b`` and ``model_b`` wins otherwise, and counts the four outcomes per
   (category, i, j) cell.

The per-file partial cells form a ``dask.dataframe`` (``dd.from_delayed``) reduced by
``groupby([category, model_i, model_j]).sum()`` (a tree reduction across workers); the small
per-file reports (row counts per reason, the first offending rows and example values) are
merged on the client. Rows are numbered as :func:`~bayesarena.io.read_votes` numbers them:
files in sorted path order, then the stored order within each file, so an error names the same
rows, and with ``on_invalid="drop"`` the :class:`~bayesarena.votes.ReadSummary` holds the same
per-reason counts. The final cells are indexed and sorted by
:func:`bayesarena.aggregate.cells_from_rows`, the same code as the DuckDB path.

Why not ``dask.dataframe.read_parquet``: it orders files by a "natural" sort (``part-2`` before
``part-10``) where DuckDB sorts by path, and its partitions carry no file identity (in Dask
2026.8, the version tested, ``include_path_column`` is silently ignored for Parquet), so the
reading-order row numbers that every error message names could not be recovered; it would also
hold a whole file (or row group) per partition, with every string materialised, rather than
one bounded batch of dictionary codes.

Scope: the per-vote form (``model_a, model_b, winner`` and optional ``category``). Aggregated
count files are small by nature: read them with :func:`~bayesarena.io.read_votes`.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bayesarena.aggregate import cells_from_rows
from bayesarena.errors import (
    MAX_ROWS_SHOWN,
    EmptyDataError,
    InputError,
    MissingColumnError,
    MissingValueError,
    format_rows,
)
from bayesarena.io import _first_line, _optional_sources, _resolve_path
from bayesarena.validation import (
    CATEGORY_NOT_SELECTED,
    MISSING_MODEL,
    MISSING_WINNER,
    MODEL_NOT_SELECTED,
    SELF_BATTLE,
    UNKNOWN_LABEL,
    _dropped_text,
    _n_rows,
    _names,
    check_categories,
    check_connected,
    check_models,
    check_winner_map,
    detect_kind,
    vote_checks,
)
from bayesarena.votes import CELL_OUTCOMES, OUTCOMES, Cells, ReadSummary

if TYPE_CHECKING:
    import pyarrow as pa
    from distributed import Client

OnInvalid = Literal["raise", "drop"]

#: Rows per record batch a task reads at a time (bounds a worker's memory per task).
DEFAULT_BATCH_ROWS = 1 << 18

#: Names of Dask's own single-machine schedulers accepted for ``scheduler=``.
LOCAL_SCHEDULERS = ("synchronous", "sync", "threads", "processes")

_ALL = "all"
_TEXT = "string[pyarrow]"
_KEYS = ("category", "model_i", "model_j")
#: Reasons of the per-vote checks, in check order, with their codes in the per-row reason array.
_REASONS = (MISSING_MODEL, MISSING_WINNER, UNKNOWN_LABEL, SELF_BATTLE)
_SELECTION_REASONS = (CATEGORY_NOT_SELECTED, MODEL_NOT_SELECTED)
#: Outcome codes: index into OUTCOMES; these two mark a NULL and an unknown label.
_NULL, _UNKNOWN = -1, -2
#: Examples of offending values kept per column (the messages show three).
_EXAMPLES = 3


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------


def aggregate_dask(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    scheduler: str | Client | None = None,
    by_category: bool = False,
    models: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    winner_map: Mapping[str, str] | None = None,
    on_invalid: OnInvalid = "raise",
    check_graph: bool = True,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    cluster_options: Mapping[str, Any] | None = None,
) -> Cells:
    """Count outcomes per (unordered pair, category) cell of per-vote Parquet logs, on Dask.

    Equal to ``aggregate(read_votes(source, winner_map=..., on_invalid=...), by_category=...,
    models=..., categories=..., check_graph=...)`` (the same models, cells, counts, categories
    and summary counts; the same error classes and messages), computed file by file on a Dask
    cluster, so the log never has to fit on one machine. See the module docstring for the
    method.

    Parameters
    ----------
    source:
        A Parquet file, a glob (``logs/*.parquet``), a directory (all ``*.parquet`` files under
        it, recursively) or a sequence of these; ``s3://``-style URLs are expanded with fsspec.
        Files are read in sorted path order. On a real cluster every worker must see the paths
        (a shared file system or an object store) and have ``bayesarena`` installed.
    scheduler:
        None (default): start a ``dask.distributed.LocalCluster`` (``cluster_options`` are
        passed to it; its HTTP server on a free local port) and close it afterwards. A string with
        ``://`` (``"tcp://host:8786"``): connect a ``Client`` to that scheduler. A
        ``distributed.Client``: use it as is (it is left open). ``"synchronous"``,
        ``"threads"`` or ``"processes"``: Dask's single-machine schedulers, no cluster.
    by_category, models, categories, check_graph:
        As in :func:`~bayesarena.aggregate.aggregate`.
    winner_map, on_invalid:
        As in :func:`~bayesarena.io.read_votes`.
    batch_rows:
        Rows per record batch a task holds at a time.
    cluster_options:
        Keyword arguments of ``LocalCluster`` when ``scheduler`` is None (e.g.
        ``{"n_workers": 4, "threads_per_worker": 1, "processes": True}``).

    Raises
    ------
    InputError and subclasses
        As :func:`~bayesarena.io.read_votes` and :func:`~bayesarena.aggregate.aggregate` raise
        them; also :class:`InputError` for a source that is not Parquet or is in the
        aggregated-counts form (read those with :func:`~bayesarena.io.read_votes`).
    """
    if on_invalid not in ("raise", "drop"):
        raise InputError(f"on_invalid must be 'raise' or 'drop', found {on_invalid!r}")
    if int(batch_rows) < 1:
        raise InputError(f"batch_rows must be a positive integer, found {batch_rows!r}")
    aliases = check_winner_map(winner_map)
    if isinstance(models, str):  # refuse before reading anything
        check_models(models, ())
    if isinstance(categories, str):
        check_categories(categories, ())
    files, label = _resolve_files(source)
    columns = _check_schema(files[0], by_category=by_category, categories=categories)
    options = _ScanOptions(
        columns=columns,
        aliases=tuple(aliases.items()),
        by_category=by_category,
        models=None if models is None else tuple(dict.fromkeys(models)),
        categories=None if categories is None else tuple(dict.fromkeys(categories)),
        batch_rows=int(batch_rows),
    )
    with _scheduler(scheduler, cluster_options) as get:
        totals, reports = _compute(files, options, get)
    summary, report = _account(reports, label, tuple(aliases), on_invalid)
    if models is not None:
        check_models(models, report.models)
    if categories is not None:
        check_categories(categories, report.categories)
    elif by_category:
        _check_no_null_category(report)
    for reason in _SELECTION_REASONS:
        if report.reasons.get(reason, 0):
            n = report.reasons[reason]
            summary = summary.with_dropped(reason, n, n)
    if totals.empty:
        raise EmptyDataError(
            "no votes left to aggregate after the selection: expected at least one vote between "
            f"two selected models, found none ({summary.rows_read:,} rows read; "
            + ", ".join(f"{n:,} dropped: {r}" for r, n in summary.dropped.items())
            + ")"
        )
    arrays = [totals[k].to_numpy(dtype=object) for k in _KEYS]  # str: fast to iterate
    arrays += [totals[c].to_numpy(dtype=np.int64).tolist() for c in CELL_OUTCOMES]
    rows = list(zip(*arrays, strict=True))
    cells = cells_from_rows(rows, by_category, summary)
    if check_graph:
        check_connected(cells)
    return cells


# --------------------------------------------------------------------------------------------
# Sources, schema, scheduler
# --------------------------------------------------------------------------------------------


def _resolve_files(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> tuple[list[str], str]:
    """The Parquet files to read, in sorted path order, and a label for messages."""
    if isinstance(source, (str, os.PathLike)):
        items, label = [os.fspath(source)], os.fspath(source)
    elif isinstance(source, Sequence) and source and all(
        isinstance(s, (str, os.PathLike)) for s in source
    ):
        items = [os.fspath(s) for s in source]
        label = ", ".join(items[:3]) + (f" (and {len(items) - 3} more)" if len(items) > 3 else "")
    else:
        raise InputError(
            "source must be a path (str or Path) to a Parquet file, glob or directory, or a "
            f"non-empty sequence of them, found {type(source).__name__}"
        )
    files: set[str] = set()
    for text in items:
        files.update(_expand_remote(text) if "://" in text else _expand_local(text))
    return sorted(files), label


def _expand_local(text: str) -> list[str]:
    """Files of one local path, glob or directory (the checks and messages of read_votes)."""
    pattern, fmt, several = _resolve_path(text, None)
    if fmt != "parquet":
        raise InputError(
            f"aggregate_dask reads Parquet files; {text} looks like {fmt}: convert it to "
            "Parquet or read it with read_votes"
        )
    if not several:
        return [pattern]
    return [p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p)]


def _expand_remote(text: str) -> list[str]:
    """Files of one URL (``s3://bucket/logs/*.parquet``, a prefix, or one object), via fsspec."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(text)
    if any(ch in path for ch in "*?["):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = [p for p in fs.find(path) if p.endswith(".parquet")]
    else:
        found = [path]
    if not found:
        raise InputError(f"no files match the pattern {text}")
    return [fs.unstrip_protocol(p) for p in found]


@contextlib.contextmanager
def _opened(path: str) -> Iterator[Any]:
    """What pyarrow opens: the path itself when local, an fsspec file object for a URL."""
    if "://" not in path:
        yield path
        return
    import fsspec

    with fsspec.open(path, "rb") as handle:
        yield handle


#: DuckDB's type ids for the Arrow types read_votes refuses as names.
def _refused_type_id(arrow_type: pa.DataType) -> str | None:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return _refused_type_id(arrow_type.value_type)
    if t.is_fixed_size_list(arrow_type):
        return "array"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_list_view(arrow_type):
        return "list"
    if t.is_struct(arrow_type):
        return "struct"
    if t.is_map(arrow_type):
        return "map"
    if t.is_union(arrow_type):
        return "union"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(
        arrow_type
    ):
        return "blob"
    return None


def _check_schema(
    path: str, *, by_category: bool, categories: Sequence[str] | None
) -> tuple[str, ...]:
    """Columns to read, after the form and type checks of read_votes (first file's schema)."""
    import pyarrow.parquet as pq

    try:
        with _opened(path) as handle:
            schema = pq.read_schema(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read {path} as parquet: {_first_line(exc)}") from exc
    names = list(schema.names)
    kind = detect_kind(names)
    if kind != "votes":
        raise InputError(
            f"{path} holds aggregated counts (columns 'wins_a', 'wins_b', 'ties'); aggregate_dask "
            "reads per-vote logs (model_a, model_b, winner): read counts with read_votes, they "
            "are small"
        )
    for column in ("model_a", "model_b", "winner"):
        type_id = _refused_type_id(schema.field(column).type)
        if type_id is not None:
            raise InputError(
                f"column {column!r} has type {type_id.upper()}; expected text (or numbers)",
                column=column,
            )
    wanted = by_category or categories is not None
    if wanted and "category" not in names:
        option = "by_category=True" if by_category else "categories="
        canonical = ("row", "model_a", "model_b", "outcome", *_optional_sources(names, kind))
        found = ", ".join(repr(c) for c in canonical)
        raise MissingColumnError(
            f"{option} needs a 'category' column; found columns {found}", column="category"
        )
    if wanted:
        category_type = _refused_type_id(schema.field("category").type)
        if category_type in ("list", "array"):
            raise InputError(
                "column 'category' holds lists of category tags; expected one category per row "
                "(tag lists are not supported yet: explode them to one row per tag first)",
                column="category",
            )
        if category_type is not None:
            raise InputError(
                f"column 'category' has type {category_type.upper()}; expected text (or numbers)",
                column="category",
            )
        return ("model_a", "model_b", "winner", "category")
    return ("model_a", "model_b", "winner")


@contextlib.contextmanager
def _scheduler(
    scheduler: str | Client | None, cluster_options: Mapping[str, Any] | None
) -> Iterator[Any]:
    """Yield the ``scheduler=`` value for ``dask.compute``; close what this call started."""
    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        yield scheduler
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise InputError(
            "aggregate_dask needs dask.distributed: pip install 'bayesarena[dask]'"
        ) from exc
    if scheduler is None:
        # the scheduler serves HTTP (health, metrics; the dashboard if bokeh is installed) even
        # without a dashboard: on a free local port, not 8787, so concurrent calls never clash
        options = {"dashboard_address": "127.0.0.1:0", **dict(cluster_options or {})}
        with LocalCluster(**options) as cluster, Client(cluster) as client:
            yield client
    elif isinstance(scheduler, str):
        if "://" not in scheduler:
            raise InputError(
                f"scheduler must be None, a scheduler address such as 'tcp://host:8786', a "
                f"distributed.Client or one of {_names(LOCAL_SCHEDULERS)}, found {scheduler!r}"
            )
        with Client(scheduler) as client:
            yield client
    elif isinstance(scheduler, Client):
        yield scheduler
    else:
        raise InputError(
            "scheduler must be None, a scheduler address, a distributed.Client or one of "
            f"{_names(LOCAL_SCHEDULERS)}, found {type(scheduler).__name__}"
        )


def _compute(
    files: Sequence[str], options: _ScanOptions, get: Any
) -> tuple[pd.DataFrame, list[_Report]]:
    """One task per file; partial cells summed by a Dask groupby, reports gathered as they are.

    Both outputs come from the same scan tasks (one ``dask.compute`` call, shared keys), so
    each file is read once.
    """
    import dask
    import dask.dataframe as dd
    from dask import delayed

    token = uuid.uuid4().hex  # fresh keys: a shared cluster must not serve an earlier call's
    with dask.config.set({"dataframe.convert-string": False}):
        scans = [
            delayed(_scan_file)(path, options, dask_key_name=f"bayesarena-scan-{token}-{k}")
            for k, path in enumerate(files)
        ]
        partial = dd.from_delayed(
            [s[0] for s in scans], meta=_no_cells(), verify_meta=False
        )
        # one output partition: a tree reduction (the cells are few), no shuffle
        summed = partial.groupby(list(_KEYS), sort=False).sum(split_out=1)
        (total,) = summed.to_delayed()
        totals, reports = dask.compute(total, [s[1] for s in scans], scheduler=get)
    return totals.reset_index(), list(reports)


# --------------------------------------------------------------------------------------------
# The scan of one file (runs on a worker)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ScanOptions:
    columns: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    by_category: bool
    models: tuple[str, ...] | None
    categories: tuple[str, ...] | None
    batch_rows: int


@dataclass
class _Report:
    """What one file (or batch, or the whole input) holds, in its own row numbering.

    ``reasons`` counts rows by their first failing check and by selection reason;
    ``first_rows`` keeps the first offending rows per check reason; ``blank`` counts missing
    names per column; the example lists hold ``(value, first row)`` of the first distinct
    offending values; ``labels`` maps each unknown label to ``[rows, first row]``; ``models`` and
    ``categories`` are the names on used rows; ``null_category`` the used rows without one.
    """

    path: str = ""
    rows: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    first_rows: dict[str, list[int]] = field(default_factory=dict)
    blank: dict[str, int] = field(default_factory=dict)
    blank_examples: dict[str, list[tuple[str | None, int]]] = field(default_factory=dict)
    self_examples: list[tuple[str, int]] = field(default_factory=list)
    labels: dict[str, list[int]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    null_category: int = 0
    null_category_rows: list[int] = field(default_factory=list)

    def add(self, other: _Report, offset: int) -> None:
        """Merge ``other``, whose rows start at ``offset`` in this report's numbering."""
        self.rows += other.rows
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        for reason, rows in other.first_rows.items():
            mine = self.first_rows.setdefault(reason, [])
            mine[:] = sorted(mine + [r + offset for r in rows])[:MAX_ROWS_SHOWN]
        for column, n in other.blank.items():
            self.blank[column] = self.blank.get(column, 0) + n
        for column, examples in other.blank_examples.items():
            mine_ex = self.blank_examples.get(column, [])
            self.blank_examples[column] = _first_distinct(mine_ex, examples, offset)
        self.self_examples = _first_distinct(self.self_examples, other.self_examples, offset)
        for value, (n, first) in other.labels.items():
            if value in self.labels:
                self.labels[value][0] += n
                self.labels[value][1] = min(self.labels[value][1], first + offset)
            else:
                self.labels[value] = [n, first + offset]
        self.models |= other.models
        self.categories |= other.categories
        self.null_category += other.null_category
        self.null_category_rows = sorted(
            self.null_category_rows + [r + offset for r in other.null_category_rows]
        )[:MAX_ROWS_SHOWN]


def _first_distinct(
    mine: list[tuple[Any, int]], other: list[tuple[Any, int]], offset: int
) -> list[tuple[Any, int]]:
    """The first :data:`_EXAMPLES` distinct values by first row, of two example lists."""
    first: dict[Any, int] = {}
    for value, row in [*mine, *((v, r + offset) for v, r in other)]:
        first[value] = min(first.get(value, row), row)
    return sorted(first.items(), key=lambda item: item[1])[:_EXAMPLES]


def _cells_frame(
    category: np.ndarray, model_i: np.ndarray, model_j: np.ndarray, counts: np.ndarray
) -> pd.DataFrame:
    """Partial cells: ``category, model_i, model_j`` (Arrow strings) and the four counts."""
    frame = pd.DataFrame({
        key: pd.array(values, dtype=_TEXT)
        for key, values in zip(_KEYS, (category, model_i, model_j), strict=True)
    })
    for k, name in enumerate(CELL_OUTCOMES):
        frame[name] = np.asarray(counts[:, k], dtype=np.int64)
    return frame


def _no_cells() -> pd.DataFrame:
    empty = np.array([], dtype=object)
    return _cells_frame(empty, empty, empty, np.zeros((0, len(CELL_OUTCOMES)), np.int64))


class _FileCells:
    """Outcome counts of one file, accumulated batch by batch over file-wide name indices.

    Names are indexed in order of first appearance in the file; a vote counts in cell
    ``(c, i, j)`` under outcome ``o`` (win_i, win_j, tie, tie_bothbad) with ``i`` the smaller
    name (the batch oriented it). The counts live in a dense array ``[c, i, j, o]`` while it
    has at most :attr:`DENSE_LIMIT` entries (150 models x 10 categories: 0.9M), else as sorted
    keys ``((c * B + i) * B + j) * 4 + o``, ``B = 2**21``, with their counts. Memory: bounded by
    the names, whatever the number of rows.
    """

    DENSE_LIMIT = 1 << 22
    BASE = 1 << 21

    def __init__(self) -> None:
        self.models: dict[str, int] = {}
        self.cats: dict[str, int] = {}
        self.dense = np.zeros((0, 0, 0, 4), np.int64)
        self.keys: np.ndarray | None = None  # the sparse form, once the dense one is too big
        self.counts = np.zeros(0, np.int64)

    def add(self, batch: _BatchCells) -> None:
        if batch.i.size == 0:
            return
        model_id = np.array([self.models.setdefault(m, len(self.models)) for m in batch.names])
        cat_id = np.array([self.cats.setdefault(c, len(self.cats)) for c in batch.cats])
        n_models, n_cats = len(self.models), len(self.cats)
        if n_models >= self.BASE or n_cats >= 1 << 19:
            raise InputError(
                f"too many distinct names in one file: {n_models:,} models, {n_cats:,} "
                f"categories; expected fewer than {self.BASE:,} and {1 << 19:,}: split the file"
            )
        c, i, j, o = cat_id[batch.cat], model_id[batch.i], model_id[batch.j], batch.outcome
        if self.keys is None and n_cats * n_models * n_models * 4 <= self.DENSE_LIMIT:
            if self.dense.shape[:3] != (n_cats, n_models, n_models):
                grown = np.zeros((n_cats, n_models, n_models, 4), np.int64)
                cc, mm = self.dense.shape[0], self.dense.shape[1]
                grown[:cc, :mm, :mm] = self.dense
                self.dense = grown
            flat = ((c * n_models + i) * n_models + j) * 4 + o
            self.dense += np.bincount(flat, minlength=self.dense.size).reshape(self.dense.shape)
            return
        if self.keys is None:  # leave the dense form for good
            cc, ii, jj, oo = np.nonzero(self.dense)
            self.keys = ((cc * self.BASE + ii) * self.BASE + jj) * 4 + oo
            self.counts = self.dense[cc, ii, jj, oo]
            self.dense = np.zeros((0, 0, 0, 4), np.int64)
        keys = ((c * self.BASE + i) * self.BASE + j) * 4 + o
        merged, where = np.unique(np.concatenate([self.keys, keys]), return_inverse=True)
        counts = np.zeros(merged.size, np.int64)
        np.add.at(counts, where, np.concatenate([self.counts, np.ones(keys.size, np.int64)]))
        self.keys, self.counts = merged, counts

    def frame(self) -> pd.DataFrame:
        """One row per cell with at least one vote: names and the four counts."""
        models = np.array(list(self.models), dtype=object)
        cats = np.array(list(self.cats), dtype=object)
        if self.keys is None:
            c, i, j = np.nonzero(self.dense.sum(axis=3))
            return _cells_frame(cats[c], models[i], models[j], self.dense[c, i, j])
        cell, outcome = np.divmod(self.keys, 4)
        cells, where = np.unique(cell, return_inverse=True)
        matrix = np.zeros((cells.size, len(CELL_OUTCOMES)), np.int64)
        np.add.at(matrix, (where, outcome), self.counts)
        rest, j = np.divmod(cells, self.BASE)
        c, i = np.divmod(rest, self.BASE)
        return _cells_frame(cats[c], models[i], models[j], matrix)


@dataclass(frozen=True)
class _BatchCells:
    """The counted votes of one batch, one entry per vote: cell ``(cat, i, j)`` as indices
    into the batch's ``cats`` and sorted ``names`` (``i < j``), and the oriented outcome."""

    names: list[str]
    cats: list[str]
    cat: np.ndarray
    i: np.ndarray
    j: np.ndarray
    outcome: np.ndarray


def _scan_file(path: str, options: _ScanOptions) -> tuple[pd.DataFrame, _Report]:
    """Partial cells and the report of one Parquet file, read one record batch at a time.

    Memory: one batch of the needed columns plus the counts (one entry per cell and outcome).
    """
    report = _Report(path=path)
    cells = _FileCells()
    for batch in _batches(path, options):
        part_cells, part = _scan_batch(batch, options)
        report.add(part, offset=report.rows)
        cells.add(part_cells)
    return cells.frame(), report


def _batches(path: str, options: _ScanOptions) -> Iterator[pa.RecordBatch]:
    """The needed columns of ``path`` in stored order, ``options.batch_rows`` rows at a time."""
    import pyarrow.parquet as pq

    try:
        with _opened(path) as handle:
            # text columns come as dictionary arrays straight from Parquet's dictionary pages:
            # the names are judged once per distinct value, never materialised per row
            schema = pq.read_schema(handle)
            text = [c for c in options.columns if c in schema.names and _is_text(schema, c)]
            parquet = pq.ParquetFile(handle, read_dictionary=text)
            yield from parquet.iter_batches(
                batch_size=options.batch_rows, columns=list(options.columns)
            )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"could not read {path} as parquet: {_first_line(exc)}") from exc


def _is_text(schema: pa.Schema, column: str) -> bool:
    import pyarrow as pa

    kind = schema.field(column).type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _text(value: object) -> str | None:
    """A value as the text DuckDB's ``CAST(x AS VARCHAR)`` gives (None for NULL and NaN)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _encode(column: pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """Dictionary codes (-1 for NULL) and the dictionary as text (None for NULL/NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    texts = [_text(v) for v in encoded.dictionary.to_pylist()]
    return codes, texts


def _lookup(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[codes]`` with code -1 (NULL) mapped to -1."""
    return np.append(table, -1)[codes]


def _scan_batch(batch: pa.RecordBatch, options: _ScanOptions) -> tuple[pd.DataFrame, _Report]:
    """Validate, account for and count one record batch (rows numbered from 0)."""
    n = batch.num_rows
    report = _Report(rows=n)
    code_a, text_a = _encode(batch.column("model_a"))
    code_b, text_b = _encode(batch.column("model_b"))
    code_w, text_w = _encode(batch.column("winner"))

    # model names: one code space for both sides, sorted in code-point order; -1 = missing
    names = sorted({t for t in (*text_a, *text_b) if t is not None and not _blank(t)})
    index = {name: k for k, name in enumerate(names)}
    a = _lookup(code_a, np.array([index.get(t, -1) if t else -1 for t in text_a], np.int64))
    b = _lookup(code_b, np.array([index.get(t, -1) if t else -1 for t in text_b], np.int64))
    # winner: outcome code (0..3), _NULL or _UNKNOWN
    outcome_of = {label: OUTCOMES.index(outcome) for label, outcome in options.aliases}
    w_table = np.array(
        [_NULL if t is None else outcome_of.get(t, _UNKNOWN) for t in text_w], np.int64
    )
    outcome = np.append(w_table, _NULL)[code_w]

    # first failing check per row: 0 = none, k = _REASONS[k - 1]
    blank_a, blank_b = a < 0, b < 0
    reason = np.zeros(n, np.int8)
    reason[a == b] = 4
    reason[outcome == _UNKNOWN] = 3
    reason[outcome == _NULL] = 2
    reason[blank_a | blank_b] = 1
    counts = np.bincount(reason, minlength=len(_REASONS) + 1)
    for k, name in enumerate(_REASONS, start=1):
        if counts[k]:
            report.reasons[name] = int(counts[k])
            report.first_rows[name] = np.flatnonzero(reason == k)[:MAX_ROWS_SHOWN].tolist()
    if counts[1]:
        for column, blank, codes, texts in (
            ("model_a", blank_a, code_a, text_a),
            ("model_b", blank_b, code_b, text_b),
        ):
            report.blank[column] = int(blank.sum())
            report.blank_examples[column] = _examples(codes, texts, blank)
    if counts[3]:
        rows = np.flatnonzero(reason == 3)
        found, first, tally = np.unique(code_w[rows], return_index=True, return_counts=True)
        for code, at, k in zip(found, first, tally, strict=True):
            label = text_w[code]
            assert label is not None
            n_label, row = report.labels.get(label, [0, int(rows[at])])
            report.labels[label] = [n_label + int(k), min(row, int(rows[at]))]
    if counts[4]:
        report.self_examples = _examples(code_a, text_a, reason == 4)

    used = reason == 0
    if options.by_category or options.categories is not None:
        code_c, text_c = _encode(batch.column("category"))
        cats = sorted({t for t in text_c if t is not None})
        c_index = {c: k for k, c in enumerate(cats)}
        cat = _lookup(code_c, np.array([c_index.get(t, -1) if t is not None else -1
                                        for t in text_c], np.int64))
        present = np.flatnonzero(np.bincount(cat[used & (cat >= 0)], minlength=len(cats)))
        report.categories = {cats[k] for k in present}
        null_rows = np.flatnonzero(used & (cat < 0))
        report.null_category = int(null_rows.size)
        report.null_category_rows = null_rows[:MAX_ROWS_SHOWN].tolist()
    seen = np.bincount(a[used], minlength=len(names)) + np.bincount(b[used], minlength=len(names))
    report.models = {names[k] for k in np.flatnonzero(seen)}

    keep = used
    if options.categories is not None:
        wanted = np.array([c in set(options.categories) for c in cats] + [False])
        outside = used & ~wanted[cat]  # cat -1 (NULL) picks the trailing False
        if outside.any():
            report.reasons[CATEGORY_NOT_SELECTED] = int(outside.sum())
        keep = keep & ~outside
    if options.models is not None:
        chosen = np.array([m in set(options.models) for m in names] + [False])
        outside = keep & ~(chosen[a] & chosen[b])
        if outside.any():
            report.reasons[MODEL_NOT_SELECTED] = int(outside.sum())
        keep = keep & ~outside
    if options.by_category:
        keep = keep & (cat >= 0)  # a used row without a category is an error (raised later)
    else:  # one cell per pair, whatever the category selection read
        cats, cat = [_ALL], np.zeros(n, np.int64)
    return _count_cells(a[keep], b[keep], outcome[keep], cat[keep], names, cats), report


def _blank(text: str) -> bool:
    """Empty or whitespace-only (``str.isspace``: what read_votes' blank-name check tests)."""
    return not text.strip()


def _examples(codes: np.ndarray, texts: list[str | None], mask: np.ndarray) -> list:
    """``(value, first row)`` of the first distinct values of ``codes`` where ``mask`` holds."""
    rows = np.flatnonzero(mask)
    found, first = np.unique(codes[rows], return_index=True)
    pairs = sorted(
        ((None if c < 0 else texts[c], int(rows[at])) for c, at in zip(found, first, strict=True)),
        key=lambda item: item[1],
    )
    merged: dict[str | None, int] = {}
    for value, row in pairs:  # NULL and NaN (two codes) are both None
        merged.setdefault(value, row)
    return list(merged.items())[:_EXAMPLES]


def _count_cells(
    a: np.ndarray,
    b: np.ndarray,
    outcome: np.ndarray,
    cat: np.ndarray,
    names: list[str],
    cats: list[str],
) -> _BatchCells:
    """Orient the kept votes to their cells ``(cat, i, j)``, ``i < j`` by name, as aggregate().

    ``a``, ``b`` index the sorted ``names``, so ``a < b`` is ``model_a < model_b`` in
    code-point order. With ``a_first = a < b``: win_i = (win_a and a_first) or (win_b and not
    a_first), and symmetrically for win_j; ties and both-bad ties keep their code.
    """
    oriented = np.where((a > b) & (outcome < 2), 1 - outcome, outcome)
    return _BatchCells(names, cats, cat, np.minimum(a, b), np.maximum(a, b), oriented)


# --------------------------------------------------------------------------------------------
# The client side: row accounting and the errors of read_votes / aggregate
# --------------------------------------------------------------------------------------------


def _account(
    reports: Sequence[_Report], label: str, accepted: Sequence[str], on_invalid: OnInvalid
) -> tuple[ReadSummary, _Report]:
    """Merge the per-file reports in reading order; raise or count as validate_rows does."""
    total = _Report(path=label)
    for report in reports:  # files are in sorted path order: the reading order of read_votes
        total.add(report, offset=total.rows)
    if total.rows == 0:
        raise EmptyDataError(f"no rows in {label}: expected at least one vote, found 0 rows")
    dropped: dict[str, int] = {}
    for check in vote_checks(tuple(accepted)):
        n = total.reasons.get(check.reason, 0)
        if n == 0:
            continue
        if on_invalid == "raise":
            raise _row_error(total, check.reason, check.error, n, accepted)
        dropped[check.reason] = n
    selected_out = sum(total.reasons.get(r, 0) for r in _SELECTION_REASONS)
    rows_used = total.rows - sum(dropped.values())
    if rows_used == 0:
        raise EmptyDataError(
            f"no usable rows in {label}: read {total.rows:,} rows, dropped all of them "
            f"({_dropped_text(dropped)})"
        )
    assert rows_used >= selected_out
    summary = ReadSummary(
        source=label,
        kind="votes",
        rows_read=total.rows,
        rows_used=rows_used,
        votes_used=rows_used,
        dropped=dropped,
    )
    return summary, total


def _row_error(
    report: _Report, reason: str, error: Any, total: int, accepted: Sequence[str]
) -> InputError:
    """The error :func:`bayesarena.validation.row_check_error` builds, from the merged report.

    Raised for the first check (in order) that any row fails, so no row fails an earlier one:
    counting rows by first failing check is then counting them by this check's predicate.
    """
    rows = report.first_rows[reason]
    at = format_rows(rows, total)
    if reason == MISSING_MODEL:
        offending = [(c, report.blank.get(c, 0)) for c in ("model_a", "model_b")]
        offending = [(c, n) for c, n in offending if n]
        if len(offending) == 1:
            where = f"column {offending[0][0]!r}"
        else:
            where = "columns " + ", ".join(f"{c!r} ({_n_rows(n)})" for c, n in offending)
        found: list[str | None] = []
        for column in ("model_a", "model_b"):
            for value, _ in report.blank_examples.get(column, []):
                if value not in found:
                    found.append(value)
        message = (
            f"{MISSING_MODEL} in {where} at {at}: expected a model name (not NULL, NaN, empty or "
            "whitespace-only), found " + ", ".join(_show(v) for v in found[:3])
        )
        column = offending[0][0]
    elif reason == MISSING_WINNER:
        message = (
            f"{MISSING_WINNER} in column 'winner' at {at}: expected one of {_names(accepted)}, "
            "found NULL/NaN"
        )
        column = "winner"
    elif reason == UNKNOWN_LABEL:
        labels = sorted(report.labels.items(), key=lambda item: (-item[1][0], item[1][1]))
        shown = ", ".join(
            f"{label!r} ({_n_rows(n)})" for label, (n, _) in labels[:MAX_ROWS_SHOWN]
        )
        if len(labels) > MAX_ROWS_SHOWN:
            shown += f" and {len(labels) - MAX_ROWS_SHOWN} more label(s)"
        message = (
            f"unknown winner label(s) {shown} in column 'winner' at {at}; accepted: "
            f"{_names(accepted, limit=None)} or pass winner_map= (e.g. "
            "winner_map={'1': 'model_a', '-1': 'model_b', '0': 'tie'})"
        )
        column = "winner"
    else:
        names = [value for value, _ in report.self_examples]
        message = (
            f"{SELF_BATTLE} in columns 'model_a' and 'model_b' at {at}: expected two different "
            "models, found the same model on both sides (" + ", ".join(_show(v) for v in names)
            + ")"
        )
        column = "model_b"
    return error(message, column=column, rows=rows)


def _check_no_null_category(report: _Report) -> None:
    """The MissingValueError aggregate(by_category=True) raises for a NULL category."""
    if report.null_category:
        rows = report.null_category_rows
        raise MissingValueError(
            f"missing category in column 'category' at {format_rows(rows, report.null_category)}"
            ": expected a category on every row with by_category=True, found NULL; drop or fill "
            "those rows, or select categories with categories=",
            column="category",
            rows=rows,
        )


def _show(value: object) -> str:
    return "NULL" if value is None else repr(value)
