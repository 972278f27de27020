"""bayesarena.distributed.aggregate_dask: the same cells, summaries and errors as the DuckDB path.

Every comparison is against ``aggregate(read_votes(...))`` on the same files. The files are
named so that sorted path order (DuckDB's, hence read_votes' row numbering) differs from a
"natural" sort (``part-9`` before ``part-10``), so row numbers in errors check the file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesarena import aggregate, read_votes, simulate_arena
from bayesarena.distributed import aggregate_dask  # imports Dask only when called
from bayesarena.errors import (
    InputError,
    MissingValueError,
    SelfBattleError,
    UnknownLabelError,
)
from bayesarena.votes import Cells

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

FILE_NAMES = ("part-9.parquet", "part-10.parquet", "part-11.parquet", "part-100.parquet")
CATEGORIES = ("coding", "math", "writing")


def assert_same_cells(got: Cells, expected: Cells) -> None:
    assert got.models == expected.models
    assert got.categories == expected.categories
    np.testing.assert_array_equal(got.model_i, expected.model_i)
    np.testing.assert_array_equal(got.model_j, expected.model_j)
    np.testing.assert_array_equal(got.category, expected.category)
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert got.counts.dtype == expected.counts.dtype
    assert got.summary == expected.summary


def votes_frame(seed: int = 5) -> pd.DataFrame:
    """3,000 simulated votes among 8 models with ties, both-bad ties and 3 categories."""
    frame, _ = simulate_arena(8, 3000, seed=seed)
    rng = np.random.default_rng(seed)
    frame["category"] = rng.choice(CATEGORIES, len(frame))
    return frame.astype(object)


def write_parts(frame: pd.DataFrame, directory: Path) -> str:
    """Write ``frame`` in reading order over :data:`FILE_NAMES` (sorted by path); the glob."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), len(FILE_NAMES) + 1).astype(int)
    for name, lo, hi in zip(sorted(FILE_NAMES), bounds[:-1], bounds[1:], strict=True):
        frame.iloc[lo:hi].to_parquet(directory / name, index=False)
    return str(directory / "*.parquet")


def errors_of(call) -> tuple[type, str, str | None, list[int]]:
    with pytest.raises(InputError) as info:
        call()
    return type(info.value), str(info.value), info.value.column, info.value.rows


@pytest.fixture(scope="module")
def client():
    """One in-process dask.distributed cluster (1 worker, 1 thread) for the module."""
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def clean_glob(tmp_path_factory) -> str:
    return write_parts(votes_frame(), tmp_path_factory.mktemp("clean"))


@pytest.mark.parametrize("by_category", [False, True])
def test_cells_equal_the_duckdb_path(clean_glob: str, by_category: bool) -> None:
    expected = aggregate(read_votes(clean_glob), by_category=by_category)
    got = aggregate_dask(clean_glob, scheduler="synchronous", by_category=by_category)
    assert_same_cells(got, expected)
    assert got.counts[:, 2:].sum() > 0 and got.counts[:, 3].sum() > 0  # ties and both-bad
    assert len(got.categories) == (len(CATEGORIES) if by_category else 1)


def test_through_a_distributed_client(clean_glob: str, client) -> None:
    expected = aggregate(read_votes(clean_glob), by_category=True)
    assert_same_cells(aggregate_dask(clean_glob, scheduler=client, by_category=True), expected)
    # the same cluster reached by its address, as a real cluster would be
    address = client.scheduler.address
    assert_same_cells(aggregate_dask(clean_glob, scheduler=address, by_category=True), expected)
    assert client.status == "running"  # a client passed in is left open


def test_default_local_cluster(clean_glob: str) -> None:
    options = {"n_workers": 1, "threads_per_worker": 1, "processes": False}
    got = aggregate_dask(clean_glob, cluster_options=options)
    assert_same_cells(got, aggregate(read_votes(clean_glob)))


def test_small_batches_and_a_list_of_files(clean_glob: str) -> None:
    files = sorted(Path(clean_glob).parent.glob("*.parquet"), reverse=True)
    expected = aggregate(read_votes(clean_glob), by_category=True)
    got = aggregate_dask(files, scheduler="synchronous", by_category=True, batch_rows=97)
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert got.summary.rows_read == expected.summary.rows_read == 3000
    assert got.summary.dropped == expected.summary.dropped == {}


def test_selection_equals_the_duckdb_path(clean_glob: str) -> None:
    models = ["model-0", "model-1", "model-2", "model-3", "model-4"]
    categories = ["coding", "math"]
    for by_category in (False, True):
        expected = aggregate(
            read_votes(clean_glob), by_category=by_category, models=models, categories=categories
        )
        got = aggregate_dask(
            clean_glob, scheduler="synchronous", by_category=by_category, models=models,
            categories=categories,
        )
        assert_same_cells(got, expected)
        assert got.summary.dropped["model not selected"] > 0
        assert got.summary.dropped["category not selected"] > 0


# --- invalid rows ----------------------------------------------------------------------------


def corrupted(frame: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with invalid rows of the given kinds, spread over the files."""
    bad = frame.copy()
    if "label" in kinds:
        bad.loc[[40, 1800, 2950], "winner"] = "a_wins"
        bad.loc[2100, "winner"] = "1"
    if "self" in kinds:
        bad.loc[[7, 2990], "model_b"] = bad.loc[[7, 2990], "model_a"].to_numpy()
    if "winner" in kinds:
        bad.loc[[1200], "winner"] = None
    if "model" in kinds:
        bad.loc[2500, "model_a"] = "   "
        bad.loc[[760, 2600], "model_b"] = [None, ""]
    if "category" in kinds:
        bad.loc[[15, 2222], "category"] = None
    return bad


ALL_KINDS = ("label", "self", "winner", "model", "category")


def test_drop_counts_every_reason_like_read_votes(tmp_path: Path, client) -> None:
    pattern = write_parts(corrupted(votes_frame(), ALL_KINDS), tmp_path)
    votes = read_votes(pattern, on_invalid="drop")
    expected = aggregate(votes)
    got = aggregate_dask(pattern, scheduler=client, on_invalid="drop")
    assert_same_cells(got, expected)
    assert got.summary.dropped == {
        "missing model name": 3,
        "missing winner": 1,
        "unknown winner label": 4,
        "self-battle": 2,
    }
    assert got.summary.rows_used == 3000 - 10
    # a NULL category among the used rows is refused with by_category, as aggregate() does
    expected_error = errors_of(lambda: aggregate(votes, by_category=True))
    got_error = errors_of(
        lambda: aggregate_dask(pattern, scheduler=client, on_invalid="drop", by_category=True)
    )
    assert got_error == expected_error
    assert got_error[0] is MissingValueError


@pytest.mark.parametrize(
    ("kinds", "error"),
    [
        (("label",), UnknownLabelError),
        (("label", "self"), UnknownLabelError),
        (("self",), SelfBattleError),
        (("winner", "label"), MissingValueError),
        (("model", "self", "label"), MissingValueError),
    ],
)
def test_raise_gives_the_error_of_read_votes(tmp_path: Path, kinds, error) -> None:
    pattern = write_parts(corrupted(votes_frame(), kinds), tmp_path)
    expected = errors_of(lambda: read_votes(pattern))
    got = errors_of(lambda: aggregate_dask(pattern, scheduler="synchronous", batch_rows=500))
    assert got == expected
    assert got[0] is error


def test_unknown_label_is_named(tmp_path: Path, client) -> None:
    pattern = write_parts(corrupted(votes_frame(), ("label",)), tmp_path)
    with pytest.raises(UnknownLabelError, match=r"'a_wins' \(3 rows\), '1' \(1 row\)") as info:
        aggregate_dask(pattern, scheduler=client)
    assert info.value.rows == [40, 1800, 2100, 2950]
    assert info.value.column == "winner"
    # the user's mapping makes the labels known
    cells = aggregate_dask(
        pattern, scheduler=client, winner_map={"a_wins": "model_a", "1": "model_a"}
    )
    expected = aggregate(read_votes(pattern, winner_map={"a_wins": "model_a", "1": "model_a"}))
    assert_same_cells(cells, expected)


def test_integer_winner_column_with_a_map(tmp_path: Path) -> None:
    frame = votes_frame()
    codes = {"model_a": 1, "model_b": -1, "tie": 0, "tie (bothbad)": 2}
    frame["winner"] = frame["winner"].map(codes).astype("int64")
    pattern = write_parts(frame, tmp_path)
    mapping = {"1": "model_a", "-1": "model_b", "0": "tie", "2": "tie_bothbad"}
    expected = aggregate(read_votes(pattern, winner_map=mapping))
    assert_same_cells(aggregate_dask(pattern, scheduler="sync", winner_map=mapping), expected)
    assert errors_of(lambda: aggregate_dask(pattern, scheduler="sync")) == errors_of(
        lambda: read_votes(pattern)
    )


def test_refuses_what_it_does_not_read(tmp_path: Path) -> None:
    csv = tmp_path / "votes.csv"
    votes_frame().to_csv(csv, index=False)
    with pytest.raises(InputError, match="reads Parquet"):
        aggregate_dask(csv, scheduler="sync")
    counts = pd.DataFrame(
        {"model_a": ["x"], "model_b": ["y"], "wins_a": [1], "wins_b": [2], "ties": [0]}
    )
    counts.to_parquet(tmp_path / "counts.parquet", index=False)
    with pytest.raises(InputError, match="aggregated counts"):
        aggregate_dask(tmp_path / "counts.parquet", scheduler="sync")
    with pytest.raises(InputError, match="no files match"):
        aggregate_dask(str(tmp_path / "nothing-*.parquet"), scheduler="sync")
    votes_frame().to_parquet(tmp_path / "votes.parquet", index=False)
    with pytest.raises(InputError, match="scheduler must be"):
        aggregate_dask(tmp_path / "votes.parquet", scheduler="fast")


@pytest.mark.parametrize("dense_limit", [None, 64])
def test_names_first_seen_in_later_row_groups(tmp_path: Path, monkeypatch, dense_limit) -> None:
    """Counts held densely (growing as new names appear) or, past the limit, as sorted keys."""
    import bayesarena.distributed as distributed_module

    if dense_limit is not None:
        monkeypatch.setattr(distributed_module._FileCells, "DENSE_LIMIT", dense_limit)
    frame = votes_frame()
    # rows ordered by the pair's later model: each new row group brings models not seen before
    later = np.maximum(frame["model_a"].str[6:].astype(int), frame["model_b"].str[6:].astype(int))
    frame = frame.iloc[np.argsort(later.to_numpy(), kind="stable")]
    path = tmp_path / "sorted.parquet"
    frame.to_parquet(path, index=False, row_group_size=200)
    import pyarrow.parquet as pq

    first_group = pq.ParquetFile(path).read_row_group(0).to_pandas()
    assert len(set(first_group["model_a"]) | set(first_group["model_b"])) <= 3  # of 8
    for by_category in (False, True):
        expected = aggregate(read_votes(path), by_category=by_category)
        got = aggregate_dask(path, scheduler="sync", by_category=by_category, batch_rows=150)
        assert_same_cells(got, expected)
