"""The data contract: outcome vocabulary, validated votes, the read summary and aggregated cells.

Data flows one way (see DESIGN.md)::

    file / DataFrame --read_votes--> Votes --aggregate--> Cells --fit--> Posterior

``Votes`` is a validated, canonical view of the input held as a DuckDB relation, so a
10-million-row Parquet log is never materialised as a pandas frame. ``Cells`` holds the
sufficient statistics of the pairwise likelihoods: outcome counts per (unordered pair,
category) cell, with model and category names kept as coordinates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

#: Canonical outcomes of one vote, as seen from the (model_a, model_b) orientation.
OUTCOMES: tuple[str, ...] = ("win_a", "win_b", "tie", "tie_bothbad")

#: Canonical outcomes of a cell, as seen from the (model_i, model_j) orientation with i < j.
CELL_OUTCOMES: tuple[str, ...] = ("win_i", "win_j", "tie", "tie_bothbad")

#: Documented ``winner`` labels. LMArena's public format first, then aliases used by arenakit,
#: FastChat and MT-Bench. Anything else is refused by name unless the user maps it explicitly;
#: we never turn an unknown label into a tie.
WINNER_ALIASES: Mapping[str, str] = {
    "model_a": "win_a",
    "a": "win_a",
    "A": "win_a",
    "model_b": "win_b",
    "b": "win_b",
    "B": "win_b",
    "tie": "tie",
    "draw": "tie",
    "tie (bothbad)": "tie_bothbad",
    "tie_bothbad": "tie_bothbad",
    "both_bad": "tie_bothbad",
    "bothbad": "tie_bothbad",
}

#: Optional per-vote columns carried through for the hierarchical models, with the accepted
#: source names for each canonical name (first match wins).
OPTIONAL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "category": ("category",),
    "voter": ("voter", "judge"),
    "tstamp": ("tstamp",),
    "language": ("language",),
    "position": ("position",),
    "conv_metadata": ("conv_metadata",),
}

#: Columns of the aggregated-count input form.
COUNT_COLUMNS: tuple[str, ...] = ("wins_a", "wins_b", "ties", "ties_bothbad")

InputKind = Literal["votes", "counts"]


@dataclass(frozen=True)
class ReadSummary:
    """What happened to every row read: used, or dropped with a reason.

    ``rows_read == rows_used + sum(dropped.values())`` always holds. ``votes_used`` is the
    number of votes the used rows stand for (equal to ``rows_used`` for per-vote input, the sum
    of the counts for aggregated input).
    """

    source: str
    kind: InputKind
    rows_read: int
    rows_used: int
    votes_used: int
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_used + sum(self.dropped.values()):
            raise AssertionError(f"row accounting does not add up: {self}")

    def with_dropped(self, reason: str, rows: int, votes: int) -> ReadSummary:
        """A copy with ``rows`` more rows (``votes`` votes) dropped for ``reason``."""
        if rows == 0:
            return self
        dropped = dict(self.dropped)
        dropped[reason] = dropped.get(reason, 0) + rows
        return ReadSummary(
            source=self.source,
            kind=self.kind,
            rows_read=self.rows_read,
            rows_used=self.rows_used - rows,
            votes_used=self.votes_used - votes,
            dropped=dropped,
        )

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "votes_used": self.votes_used,
            "dropped": dict(self.dropped),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping) -> ReadSummary:
        return cls(**{**d, "dropped": dict(d.get("dropped", {}))})

    def __str__(self) -> str:
        lines = [
            f"read {self.rows_read:,} rows from {self.source} ({self.kind} form)",
            f"used {self.rows_used:,} rows = {self.votes_used:,} votes",
        ]
        for reason, n in sorted(self.dropped.items()):
            lines.append(f"dropped {n:,} rows: {reason}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class Votes:
    """Validated votes in canonical form.

    Attributes
    ----------
    relation:
        DuckDB relation with canonical columns. Per-vote form: ``row`` (BIGINT, zero-based
        reading order), ``model_a``, ``model_b``, ``outcome`` (one of :data:`OUTCOMES`), then
        any carried optional columns under their canonical names (:data:`OPTIONAL_COLUMNS`).
        Counts form: ``row``, ``model_a``, ``model_b``, ``wins_a``, ``wins_b``, ``ties``,
        ``ties_bothbad`` (BIGINT), plus ``category`` when present.
    kind:
        ``"votes"`` or ``"counts"``.
    models:
        Sorted model names appearing in the used rows.
    optional_columns:
        Canonical names of the optional columns present in ``relation``.
    summary:
        Row accounting (:class:`ReadSummary`).
    """

    relation: object  # duckdb.DuckDBPyRelation (kept untyped so this module needs no duckdb)
    kind: InputKind
    models: tuple[str, ...]
    optional_columns: tuple[str, ...]
    summary: ReadSummary

    def to_pandas(self) -> pd.DataFrame:
        """Materialise the canonical table (for small data and tests)."""
        return self.relation.order("row").df()  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class Cells:
    """Outcome counts per (unordered pair, category) cell: the likelihood's sufficient statistics.

    For cell ``k`` the pair is ``(models[model_i[k]], models[model_j[k]])`` with
    ``model_i[k] < model_j[k]`` and ``counts[k] = (win_i, win_j, tie, tie_bothbad)``
    (:data:`CELL_OUTCOMES`). ``categories`` is ``("all",)`` when the data were not split by
    category. Every cell has at least one vote.
    """

    models: tuple[str, ...]
    categories: tuple[str, ...]
    model_i: np.ndarray  # int32 (n_cells,)
    model_j: np.ndarray  # int32 (n_cells,)
    category: np.ndarray  # int32 (n_cells,)
    counts: np.ndarray  # int64 (n_cells, 4)
    summary: ReadSummary

    @property
    def n_cells(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_votes(self) -> int:
        return int(self.counts.sum())

    def votes_per_model(self) -> np.ndarray:
        """Number of votes each model took part in, aligned with ``models``."""
        per_cell = self.counts.sum(axis=1)
        out = np.zeros(self.n_models, dtype=np.int64)
        np.add.at(out, self.model_i, per_cell)
        np.add.at(out, self.model_j, per_cell)
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per cell with names instead of indices."""
        models = np.asarray(self.models, dtype=object)
        cats = np.asarray(self.categories, dtype=object)
        df = pd.DataFrame(
            {
                "model_i": models[self.model_i],
                "model_j": models[self.model_j],
                "category": cats[self.category],
            }
        )
        for k, name in enumerate(CELL_OUTCOMES):
            df[name] = self.counts[:, k]
        return df

    def to_dataset(self) -> xr.Dataset:
        """The cells as an xarray Dataset with dims ``cell`` and ``outcome``."""
        return xr.Dataset(
            {
                "counts": (("cell", "outcome"), self.counts),
                "model_i": ("cell", np.asarray(self.models, dtype=object)[self.model_i]),
                "model_j": ("cell", np.asarray(self.models, dtype=object)[self.model_j]),
                "category": ("cell", np.asarray(self.categories, dtype=object)[self.category]),
            },
            coords={"cell": np.arange(self.n_cells), "outcome": list(CELL_OUTCOMES)},
        )
