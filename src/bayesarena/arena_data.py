"""Votes -> the arrays the arena model's two likelihood factors need (:class:`ArenaCells`).

The arena likelihood (:mod:`bayesarena.likelihood`, ``models/arena.toml``) factorises each
vote into *is it decisive?* (a function of the models' gap, so its counts aggregate over
voters and styles into cells) and *who wins a decisive vote?* (which also depends on the
voter's reliability and the answers' style). So the votes become

* **cells**, one per (unordered pair, tag set, position sign), with outcome counts
  ``(win_i, win_j, tie, tie_bothbad)``: :class:`~bayesarena.votes.Cells` whose
  ``categories`` are the tag-set labels (``"coding+hard"``);
* **direction rows**, one per distinct (cell, voter parameter, style vector) among the decisive
  votes, with counts ``(win_i, win_j)``. Without voters and style there is one row per cell;
  with style features (continuous, per vote) there is about one row per decisive vote.

Everything is one DuckDB ``GROUP BY`` over the votes relation:

.. code-block:: sql

    SELECT least(model_a, model_b) AS model_i, greatest(model_a, model_b) AS model_j,
           array_to_string(list_sort(list_distinct(category)), chr(31)) AS tags,  -- tag set
           <+1 when model_i was shown first, -1 when model_j was, 0 when unknown> AS pos,
           CASE WHEN voter_votes >= min_votes THEN voter END AS voter,  -- NULL: pooled group
           CASE WHEN model_a < model_b THEN 1 ELSE -1 END AS sign,  -- with style only
           <raw style features, a minus b>, <outcome counts oriented to (i, j)>
    FROM (SELECT *, count(*) OVER (PARTITION BY voter) AS voter_votes FROM votes)
    GROUP BY ALL ORDER BY ALL  -- a fixed row order: same data, same sums, same numbers

Voters are pooled by their number of votes only, never by their outcomes (grouping voters by
how they vote would bias the very estimates being fitted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bayesarena.errors import InputError, MissingColumnError, MissingValueError, format_rows
from bayesarena.spec import ModelSpec
from bayesarena.validation import check_connected, sql_identifier
from bayesarena.votes import CELL_OUTCOMES, Cells, Votes

#: Separator of tags inside a tag-set key (ASCII unit separator: never in a category name).
_TAG_SEP = "\x1f"
#: Label of the tag set of a vote without category tags.
NO_TAGS = "(untagged)"


@dataclass(frozen=True, eq=False)
class ArenaCells:
    """Sufficient statistics of the arena model (see the module docstring).

    ``cells.categories`` are tag-set labels (tags joined by ``+``), ``tagsets[g, c]`` says
    whether tag set ``g`` carries tag ``tags[c]``; ``position[k]`` is +1 when ``model_i`` of
    cell ``k`` was shown first, -1 when ``model_j`` was, 0 when unknown. Direction row ``r``
    belongs to cell ``row_cell[r]`` and voter parameter ``row_voter[r]`` (an index into
    ``voters``; ``len(voters)`` is the pooled group of light voters and votes without a voter
    id), has style features ``row_style[r]`` (oriented ``i`` minus ``j``, z-scored with
    ``style_mean`` and ``style_sd``) and decisive counts ``row_counts[r] = (win_i, win_j)``.
    """

    cells: Cells
    tags: tuple[str, ...]
    tagsets: np.ndarray  # bool (n_tagsets, n_tags)
    position: np.ndarray  # int8 (n_cells,)
    row_cell: np.ndarray  # int32 (n_rows,)
    row_voter: np.ndarray  # int32 (n_rows,)
    row_style: np.ndarray  # float64 (n_rows, n_features)
    row_counts: np.ndarray  # int64 (n_rows, 2)
    voters: tuple[str, ...]
    voter_votes: np.ndarray  # int64 (len(voters) + 1,): the last entry is the pooled group
    style_features: tuple[str, ...] = ()
    style_mean: np.ndarray | None = None
    style_sd: np.ndarray | None = None
    model_style: np.ndarray | None = None  # (n_models, n_features) mean z-scored style of
    # each model's answers relative to its opponents' (over all its votes, ties included)

    @property
    def n_rows(self) -> int:
        return int(self.row_cell.shape[0])

    def model_tag_votes(self) -> np.ndarray:
        """Votes each model took part in per tag, shape ``(n_models, n_tags)`` (a vote with two
        tags counts for both)."""
        c = self.cells
        per_cell = c.counts.sum(axis=1)[:, None] * self.tagsets[c.category]
        out = np.zeros((c.n_models, len(self.tags)), dtype=np.int64)
        np.add.at(out, c.model_i, per_cell)
        np.add.at(out, c.model_j, per_cell)
        return out


def arena_cells(votes: Votes, spec: ModelSpec, *, check_graph: bool = True) -> ArenaCells:
    """Aggregate validated votes for a hierarchical spec (see the module docstring).

    Raises :class:`~bayesarena.errors.MissingColumnError` when a component's column is absent
    (``category`` for categories, ``voter``/``judge`` for voters, ``conv_metadata`` for
    style, ``position`` for ``position.source = "column"``), and
    :class:`~bayesarena.errors.MissingValueError` / :class:`~bayesarena.errors.InputError`
    naming the rows whose values cannot be used.
    """
    relation = votes.relation
    cols = set(votes.optional_columns)
    ident = sql_identifier
    a, b = ident("model_a"), ident("model_b")
    a_first = f"{a} < {b}"

    def need(column: str, component: str) -> None:
        if column not in cols:
            raise MissingColumnError(
                f"{component} needs a {column!r} column; found columns "
                f"{', '.join(repr(c) for c in relation.columns)}",  # type: ignore[attr-defined]
                column=column,
            )

    def per_vote(component: str) -> None:
        if votes.kind != "votes":
            raise InputError(f"{component} needs one row per vote; the input is in the "
                             "aggregated-count form")

    keys = {}
    if spec.categories.enabled:
        need("category", "categories")
        keys["tags"] = tags_sql(relation)
        check_no_null(relation, "category", "a category tag (or an empty list) on every row")
    else:
        keys["tags"] = "''"
    if spec.position.enabled and spec.position.source == "column":
        need("position", "position.source = 'column'")
        per_vote("position.source = 'column'")
        shown_a = position_sql(relation)
        keys["pos"] = f"CASE WHEN ({shown_a}) = ({a_first}) THEN 1 ELSE -1 END"
    elif spec.position.enabled:
        keys["pos"] = f"CASE WHEN {a_first} THEN 1 ELSE -1 END"
    else:
        keys["pos"] = "0"
    source = "votes"
    if spec.voters.enabled:
        need("voter", "voters")
        per_vote("voters")
        voter = ident("voter")
        source = (f"(SELECT *, count(*) OVER (PARTITION BY {voter}) AS __voter_votes "
                  "FROM votes)")
        keys["voter"] = (f"CASE WHEN {voter} IS NOT NULL AND __voter_votes >= "
                         f"{int(spec.voters.min_votes)} THEN {voter} END")
    else:
        keys["voter"] = "CAST(NULL AS VARCHAR)"
    features: tuple[str, ...] = ()
    if spec.style.enabled:
        from bayesarena.style import STYLE_FEATURES, check_style_metadata, style_features_sql

        need("conv_metadata", "style")
        per_vote("style")
        check_style_metadata(relation)
        features = tuple(STYLE_FEATURES)
        keys["sign"] = f"CASE WHEN {a_first} THEN 1 ELSE -1 END"
        for name, expr in style_features_sql(relation).items():
            keys[f"style_{name}"] = expr
    else:
        keys["sign"] = "1"

    counts = _count_sql(votes.kind, a_first)
    select = ", ".join([f"least({a}, {b}) AS model_i", f"greatest({a}, {b}) AS model_j"]
                       + [f"{expr} AS {ident(k)}" for k, expr in keys.items()] + counts)
    # ORDER BY ALL: a parallel GROUP BY returns its groups in an order that varies from run to
    # run; the direction rows keep that order within a cell, so sums over them (the style
    # z-scores, the gradient's scatter into cells) differed in the last bits between processes
    query = f"SELECT {select} FROM {source} AS v GROUP BY ALL ORDER BY ALL"
    # as Arrow, not pandas: at 1M votes (about a group per vote, with style) the strings'
    # conversion to Python objects cost 0.9 s of 3.2 s, and the codes below take 0.1 s
    table = relation.query("votes", query).arrow().read_all()  # type: ignore[attr-defined]
    return _build(table, votes, features, check_graph)


def _sorted_codes(column: pa.ChunkedArray, keys: list[str] | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Codes of a string column into ``keys`` (default: its distinct non-null values in
    sorted order, as ``pandas.factorize(sort=True)`` gives them); null -> -1."""
    column = column.cast(pa.string())
    if keys is None:
        keys = sorted(v for v in pc.unique(column).to_pylist() if v is not None)
    codes = pc.index_in(column, value_set=pa.array(keys, type=pa.string()))
    return pc.fill_null(codes, -1).to_numpy().astype(np.int64), keys


def _numbers(table: pa.Table, columns: list[str], dtype: type) -> np.ndarray:
    """Columns of ``table`` as one ``(rows, len(columns))`` NumPy array, column-major as
    pandas gives a frame's block (reductions over rows then sum in the same order)."""
    out = np.empty((table.num_rows, len(columns)), dtype=dtype, order="F")
    for k, name in enumerate(columns):
        out[:, k] = table.column(name).to_numpy()
    return out


def _build(table: pa.Table, votes: Votes, features: tuple[str, ...],
           check_graph: bool) -> ArenaCells:
    models = tuple(sorted({m for c in ("model_i", "model_j")
                           for m in pc.unique(table.column(c).cast(pa.string())).to_pylist()}))
    mi = _sorted_codes(table.column("model_i"), list(models))[0]
    mj = _sorted_codes(table.column("model_j"), list(models))[0]
    if np.any(mi >= mj):
        raise InputError("model names compare differently in DuckDB than in Python: expected "
                         "the default binary collation (is default_collation set?)")
    tag_codes, tag_keys = _sorted_codes(table.column("tags"))
    tag_lists = [[t for t in str(k).split(_TAG_SEP) if t] for k in tag_keys]
    tags = tuple(sorted({t for ts in tag_lists for t in ts}))
    tagsets = np.zeros((len(tag_lists), len(tags)), dtype=bool)
    tag_index = {t: c for c, t in enumerate(tags)}
    for g, ts in enumerate(tag_lists):
        tagsets[g, [tag_index[t] for t in ts]] = True
    labels = tuple("+".join(ts) if ts else NO_TAGS for ts in tag_lists)
    pos = _numbers(table, ["pos"], np.int64)[:, 0]
    all_counts = _numbers(table, list(CELL_OUTCOMES), np.int64)

    # cells: unique (i, j, tag set, position)
    n_m, n_g = len(models), len(tag_lists)
    cell_key = ((mi * n_m + mj) * n_g + tag_codes) * 3 + (pos + 1)
    uniq, cell_of_row = np.unique(cell_key, return_inverse=True)
    n_cells = len(uniq)
    counts = np.zeros((n_cells, 4), dtype=np.int64)
    np.add.at(counts, cell_of_row, all_counts)
    u_pos = uniq % 3 - 1
    u_tag = (uniq // 3) % n_g
    u_pair = uniq // 3 // n_g
    cells = Cells(models=models, categories=labels,
                  model_i=(u_pair // n_m).astype(np.int32), model_j=(u_pair % n_m).astype(np.int32),
                  category=u_tag.astype(np.int32), counts=counts, summary=votes.summary)
    if check_graph:
        check_connected(cells)

    # voters: named ones first (sorted), the pooled group last
    voter_codes, voter_names = _sorted_codes(table.column("voter"))  # NULL -> -1
    voters = tuple(str(v) for v in voter_names)
    pooled = len(voters)
    row_voter = np.where(voter_codes < 0, pooled, voter_codes).astype(np.int32)
    voter_votes = np.bincount(row_voter, weights=all_counts.sum(axis=1),
                              minlength=pooled + 1).astype(np.int64)

    # style: z-score the a-minus-b features over the votes, then orient to i minus j
    decisive = all_counts[:, :2]
    style = np.zeros((table.num_rows, len(features)))
    mean = sd = model_style = None
    if features:
        raw = _numbers(table, [f"style_{f}" for f in features], float)
        n = all_counts.sum(axis=1).astype(float)
        mean = np.average(raw, axis=0, weights=n)
        sd = np.sqrt(np.average((raw - mean) ** 2, axis=0, weights=n))
        constant = [f for f, s in zip(features, sd, strict=True) if not s > 0]
        if constant:
            raise InputError(f"style feature(s) {constant} are constant over the votes: a "
                             "coefficient cannot be estimated; disable style control")
        style = _numbers(table, ["sign"], float) * (raw - mean) / sd
        weighted = style * n[:, None]
        model_style = np.zeros((len(models), len(features)))
        np.add.at(model_style, mi, weighted)
        np.add.at(model_style, mj, -weighted)
        model_style /= np.maximum(cells.votes_per_model(), 1)[:, None]

    keep = decisive.sum(axis=1) > 0
    if features or voters:
        row_cell, row_voter, row_style = cell_of_row[keep], row_voter[keep], style[keep]
        row_counts = decisive[keep]
        # rows differing only in the a/b orientation of the same (cell, voter) with no style
        # features stay separate rows; that is exact, just not minimal
    else:  # one row per cell, pooled voter, no style
        row_counts = counts[:, :2]
        has = row_counts.sum(axis=1) > 0
        row_cell = np.nonzero(has)[0]
        row_counts = row_counts[has]
        row_voter = np.full(len(row_cell), pooled, dtype=np.int32)
        row_style = np.zeros((len(row_cell), 0))
    order = np.argsort(row_cell, kind="stable")
    return ArenaCells(
        cells=cells, tags=tags, tagsets=tagsets, position=u_pos.astype(np.int8),
        row_cell=row_cell[order].astype(np.int32), row_voter=row_voter[order].astype(np.int32),
        row_style=row_style[order], row_counts=row_counts[order].astype(np.int64),
        voters=voters, voter_votes=voter_votes, style_features=features,
        style_mean=mean, style_sd=sd, model_style=model_style,
    )


def _count_sql(kind: str, a_first: str) -> list[str]:
    ident = sql_identifier
    if kind == "votes":
        o = ident("outcome")
        exprs = (
            f"count(*) FILTER (WHERE ({o} = 'win_a') = ({a_first}) AND {o} IN ('win_a', 'win_b'))",
            f"count(*) FILTER (WHERE ({o} = 'win_b') = ({a_first}) AND {o} IN ('win_a', 'win_b'))",
            f"count(*) FILTER (WHERE {o} = 'tie')",
            f"count(*) FILTER (WHERE {o} = 'tie_bothbad')",
        )
    else:
        wa, wb = ident("wins_a"), ident("wins_b")
        exprs = (f"sum(CASE WHEN {a_first} THEN {wa} ELSE {wb} END)",
                 f"sum(CASE WHEN {a_first} THEN {wb} ELSE {wa} END)",
                 f"sum({ident('ties')})", f"sum({ident('ties_bothbad')})")
    return [f"CAST({e} AS BIGINT) AS {ident(n)}" for e, n in zip(exprs, CELL_OUTCOMES, strict=True)]


def _column_type(relation: object, column: str) -> str:
    types = dict(zip(relation.columns, relation.types, strict=True))  # type: ignore[attr-defined]
    return types[column].id


def _offending_rows(relation: object, predicate: str, *columns: str
                    ) -> tuple[list[int], list[tuple], int]:
    """The first five rows where ``predicate`` holds: their ``row`` numbers, the values of
    ``columns`` there, and how many rows hold it in all."""
    select = ", ".join([sql_identifier("row"), *columns, "count(*) OVER ()"])
    found = relation.query(  # type: ignore[attr-defined]
        "votes", f"SELECT {select} FROM votes WHERE {predicate} ORDER BY 1 LIMIT 5").fetchall()
    return [int(r[0]) for r in found], [r[1:-1] for r in found], (
        int(found[0][-1]) if found else 0)


def tags_sql(relation: object) -> str:
    """Tag-set key of each vote: its sorted distinct tags joined by :data:`_TAG_SEP`."""
    c = sql_identifier("category")
    if _column_type(relation, "category") in ("list", "array"):
        rows, _, total = _offending_rows(relation, f"list_count({c}) < len({c})")
        if rows:
            raise MissingValueError(
                f"NULL tag inside the category list at {format_rows(rows, total)}: "
                "expected tag names only", column="category", rows=rows)
        return f"array_to_string(list_sort(list_distinct({c})), chr(31))"
    return f"CAST({c} AS VARCHAR)"


def position_sql(relation: object) -> str:
    """SQL boolean: model_a was shown first (``position`` in ``a``/``model_a``,
    ``b``/``model_b``, case-insensitive); other values are refused with their rows."""
    p = f"lower(trim(CAST({sql_identifier('position')} AS VARCHAR)))"
    rows, values, total = _offending_rows(
        relation, f"{p} IS NULL OR {p} NOT IN ('a', 'b', 'model_a', 'model_b')", p)
    if rows:
        raise MissingValueError(
            f"position column: expected 'a' or 'b' (the side shown first), found "
            f"{sorted({str(v[0]) for v in values})} at {format_rows(rows, total)}",
            column="position", rows=rows)
    return f"{p} IN ('a', 'model_a')"


def check_no_null(relation: object, column: str, expected: str) -> None:
    """Raise :class:`MissingValueError` naming the rows where ``column`` is NULL."""
    rows, _, total = _offending_rows(relation, f"{sql_identifier(column)} IS NULL")
    if rows:
        raise MissingValueError(
            f"missing value in column {column!r} at {format_rows(rows, total)}: "
            f"expected {expected}", column=column, rows=rows)
