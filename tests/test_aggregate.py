"""Tests of bayesarena.aggregate.aggregate and the graph/name checks in bayesarena.validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesarena.aggregate import aggregate
from bayesarena.errors import (
    DisconnectedGraphError,
    EmptyDataError,
    InputError,
    MissingColumnError,
    MissingValueError,
    UnknownCategoryError,
    UnknownModelError,
)
from bayesarena.io import read_votes
from bayesarena.validation import check_categories, check_connected, check_models
from bayesarena.votes import CELL_OUTCOMES, WINNER_ALIASES, Cells, ReadSummary

MT_BENCH = SHARED_DATA / "mt_bench_human" / "mt_bench_human_votes_subset.csv"

OUTCOME_INDEX = {"win_a": 0, "win_b": 1, "tie": 2, "tie_bothbad": 3}


def naive_cells(frame: pd.DataFrame, by_category: bool = False) -> dict[tuple, list[int]]:
    """Pure-Python reference: {(category, model_i, model_j): [win_i, win_j, tie, tie_bothbad]}."""
    counter: Counter[tuple] = Counter()
    for rec in frame.to_dict("records"):
        a, b = rec["model_a"], rec["model_b"]
        outcome = WINNER_ALIASES[rec["winner"]]
        k = OUTCOME_INDEX[outcome]
        if a > b:  # orient to (smaller, larger): a's win is j's win
            a, b = b, a
            k = {0: 1, 1: 0}.get(k, k)
        category = rec["category"] if by_category else "all"
        counter[(category, a, b, k)] += 1
    cells: dict[tuple, list[int]] = {}
    for (category, i, j, k), n in counter.items():
        cells.setdefault((category, i, j), [0, 0, 0, 0])[k] += n
    return cells


def cells_as_dict(cells: Cells) -> dict[tuple, list[int]]:
    return {
        (cells.categories[c], cells.models[i], cells.models[j]): counts.tolist()
        for c, i, j, counts in zip(
            cells.category, cells.model_i, cells.model_j, cells.counts, strict=True
        )
    }


def frame_of(rows: list[tuple[str, str, str]], categories: list[str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    if categories is not None:
        frame["category"] = categories
    return frame


# --------------------------------------------------------------------------------------------
# Orientation, counts, layout
# --------------------------------------------------------------------------------------------


def test_votes_are_oriented_to_the_sorted_pair() -> None:
    frame = frame_of(
        [
            ("b", "a", "model_a"),  # b beats a -> win_j for (a, b)
            ("a", "b", "model_a"),  # a beats b -> win_i
            ("b", "a", "model_b"),  # a beats b -> win_i
            ("a", "b", "tie"),
            ("b", "a", "tie (bothbad)"),
            ("c", "a", "model_a"),  # c beats a -> win_j for (a, c)
        ]
    )
    cells = aggregate(read_votes(frame))
    assert cells.models == ("a", "b", "c")
    assert cells.categories == ("all",)
    assert cells.model_i.tolist() == [0, 0]
    assert cells.model_j.tolist() == [1, 2]
    assert cells.counts.tolist() == [[2, 1, 1, 1], [0, 1, 0, 0]]
    assert cells.model_i.dtype == np.int32
    assert cells.model_j.dtype == np.int32
    assert cells.category.dtype == np.int32
    assert cells.counts.dtype == np.int64
    assert cells.n_votes == 6
    assert cells.summary == read_votes(frame).summary


def test_cells_are_sorted_by_category_then_pair() -> None:
    frame = frame_of(
        [("c", "b", "a"), ("b", "a", "a"), ("c", "a", "b"), ("a", "b", "a"), ("a", "c", "tie")],
        categories=["y", "y", "x", "x", "y"],
    )
    cells = aggregate(read_votes(frame), by_category=True)
    assert cells.categories == ("x", "y")
    keys = list(zip(cells.category, cells.model_i, cells.model_j, strict=True))
    assert keys == sorted(keys)
    assert cells_as_dict(cells) == naive_cells(frame, by_category=True)


def test_counts_form_matches_per_vote_form() -> None:
    votes = frame_of(
        [("a", "b", "model_a")] * 3
        + [("b", "a", "model_a")] * 2
        + [("a", "b", "tie")]
        + [("b", "c", "model_b"), ("c", "b", "tie (bothbad)")]
    )
    counts = pd.DataFrame(
        {
            "model_a": ["a", "b", "b", "c"],
            "model_b": ["b", "a", "c", "b"],
            "wins_a": [3, 2, 0, 0],
            "wins_b": [0, 0, 1, 0],
            "ties": [1, 0, 0, 0],
            "ties_bothbad": [0, 0, 0, 1],
        }
    )
    from_votes = aggregate(read_votes(votes))
    from_counts = aggregate(read_votes(counts))
    assert from_counts.models == from_votes.models
    np.testing.assert_array_equal(from_counts.counts, from_votes.counts)
    np.testing.assert_array_equal(from_counts.model_i, from_votes.model_i)
    assert from_counts.summary.votes_used == 8
    assert from_counts.summary.rows_used == 4


def test_to_dataframe_uses_cell_outcome_names() -> None:
    frame = frame_of([("a", "b", "model_a"), ("b", "a", "model_a")])
    df = aggregate(read_votes(frame)).to_dataframe()
    assert list(df.columns) == ["model_i", "model_j", "category", *CELL_OUTCOMES]
    assert df.iloc[0].tolist() == ["a", "b", "all", 1, 1, 0, 0]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_every_format_gives_the_same_cells(fmt: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    models = ["m1", "m 2", "m'3", "m4"]
    a = rng.choice(4, 300)
    b = (a + rng.integers(1, 4, 300)) % 4
    frame = pd.DataFrame(
        {
            "model_a": [models[i] for i in a],
            "model_b": [models[i] for i in b],
            "winner": rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], 300),
            "category": rng.choice(["x", "y"], 300),
        }
    )
    path = tmp_path / f"v.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=fmt == "jsonl")
    expected = aggregate(read_votes(frame), by_category=True)
    got = aggregate(read_votes(path), by_category=True)
    pd.testing.assert_frame_equal(got.to_dataframe(), expected.to_dataframe())
    assert cells_as_dict(got) == naive_cells(frame, by_category=True)


# --------------------------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------------------------


def test_by_category_without_category_column() -> None:
    votes = read_votes(frame_of([("a", "b", "a")]))
    with pytest.raises(MissingColumnError, match="by_category=True needs a 'category' column"):
        aggregate(votes, by_category=True)
    with pytest.raises(MissingColumnError, match="categories="):
        aggregate(votes, categories=["x"])


def test_null_category_is_an_error_with_rows() -> None:
    frame = frame_of(
        [("a", "b", "a")] * 4 + [("b", "c", "a")] * 3,
        categories=["x", None, "y", "x", None, "x", "y"],
    )
    votes = read_votes(frame)
    with pytest.raises(MissingValueError) as info:
        aggregate(votes, by_category=True)
    assert info.value.rows == [1, 4]
    assert info.value.column == "category"
    assert "missing category in column 'category' at rows 1, 4" in str(info.value)
    # Without by_category the category is not used, so NULLs are fine.
    assert aggregate(votes).n_votes == 7


def test_list_category_tags_are_not_supported_yet() -> None:
    frame = frame_of([("a", "b", "a")], categories=[["x", "y"]])
    votes = read_votes(frame)
    with pytest.raises(InputError, match="lists of category tags"):
        aggregate(votes, by_category=True)
    assert aggregate(votes).n_votes == 1


def test_category_subset_accounting() -> None:
    frame = frame_of(
        [("a", "b", "a"), ("a", "b", "b"), ("b", "c", "a"), ("a", "c", "tie"), ("a", "c", "a")],
        categories=["x", "y", "x", None, "z"],
    )
    votes = read_votes(frame)
    cells = aggregate(votes, categories=["x", "y"], by_category=True)
    assert cells.categories == ("x", "y")
    s = cells.summary
    assert s.dropped == {"category not selected": 2}
    assert (s.rows_read, s.rows_used, s.votes_used) == (5, 3, 3)
    assert cells.n_votes == 3
    # Without by_category the selected rows are pooled into "all".
    pooled = aggregate(votes, categories=["x", "y"])
    assert pooled.categories == ("all",)
    assert pooled.n_votes == 3


def test_unknown_category_suggests_close_matches() -> None:
    frame = frame_of([("a", "b", "a"), ("a", "b", "b")], categories=["coding", "math"])
    with pytest.raises(UnknownCategoryError, match=r"'codign' \(did you mean 'coding'\?\)") as info:
        aggregate(read_votes(frame), categories=["codign", "math"])
    assert isinstance(info.value, KeyError)


# --------------------------------------------------------------------------------------------
# Model subsets
# --------------------------------------------------------------------------------------------


def test_model_subset_accounting() -> None:
    frame = frame_of(
        [("a", "b", "a"), ("b", "c", "a"), ("c", "d", "a"), ("a", "c", "tie"), ("d", "a", "b")]
    )
    cells = aggregate(read_votes(frame), models=["a", "b", "c"])
    assert cells.models == ("a", "b", "c")
    s = cells.summary
    assert s.dropped == {"model not selected": 2}
    assert (s.rows_read, s.rows_used, s.votes_used) == (5, 3, 3)
    assert s.rows_read == s.rows_used + sum(s.dropped.values())


def test_model_subset_counts_votes_of_the_counts_form() -> None:
    frame = pd.DataFrame(
        {
            "model_a": ["a", "b", "c"],
            "model_b": ["b", "c", "a"],
            "wins_a": [5, 1, 2],
            "wins_b": [1, 1, 0],
            "ties": [0, 4, 1],
            "category": ["x", "y", "x"],
        }
    )
    votes = read_votes(frame)
    cells = aggregate(votes, models=["a", "b"])
    assert cells.summary.dropped == {"model not selected": 2}
    assert cells.summary.votes_used == 6
    assert cells.n_votes == 6
    both = aggregate(votes, models=["b", "c"], categories=["y"])
    # Row 0 is outside both selections: counted once, under the category reason.
    assert both.summary.dropped == {"category not selected": 2}
    assert (both.summary.rows_used, both.summary.votes_used) == (1, 6)
    assert both.counts.tolist() == [[1, 1, 4, 0]]


def test_selection_leaving_nothing_is_empty() -> None:
    frame = frame_of([("a", "b", "a"), ("c", "d", "a"), ("a", "c", "a")])
    with pytest.raises(EmptyDataError, match="3 dropped: model not selected"):
        aggregate(read_votes(frame), models=["a"])
    with pytest.raises(EmptyDataError):
        aggregate(read_votes(frame), models=["b", "d"])


def test_unknown_model_suggests_close_matches() -> None:
    frame = frame_of([("gpt-4", "claude-v1", "a"), ("gpt-4", "llama-13b", "b")])
    votes = read_votes(frame)
    with pytest.raises(UnknownModelError) as info:
        aggregate(votes, models=["gpt4", "claude-v1", "vicuna"])
    message = str(info.value)
    assert "'gpt4' (did you mean 'gpt-4'?)" in message
    assert "'vicuna'" in message
    assert "'claude-v1'," not in message.split(";")[0]
    assert isinstance(info.value, KeyError)
    with pytest.raises(InputError, match=r"found the string 'gpt-4'"):
        aggregate(votes, models="gpt-4")


def test_check_models_and_categories_directly() -> None:
    check_models(["a"], ["a", "b"])
    check_categories([], ["x"])
    with pytest.raises(UnknownModelError, match=r"unknown model\(s\) 'z'"):
        check_models(["z"], ["a"])
    with pytest.raises(UnknownCategoryError, match=r"unknown category\(s\) 'z'.*1 categories"):
        check_categories(["z"], ["x"])


# --------------------------------------------------------------------------------------------
# Connectivity
# --------------------------------------------------------------------------------------------


def test_disconnected_graph_names_both_components() -> None:
    frame = frame_of(
        [("a", "b", "a"), ("b", "c", "tie"), ("x", "y", "b"), ("c", "a", "a"), ("c", "d", "a")]
    )
    votes = read_votes(frame)
    with pytest.raises(DisconnectedGraphError) as info:
        aggregate(votes)
    exc = info.value
    assert exc.components == [["a", "b", "c", "d"], ["x", "y"]]
    message = str(exc)
    assert "component 1 (4 models): 'a', 'b', 'c', 'd'" in message
    assert "component 2 (2 models): 'x', 'y'" in message
    assert "separately" in message
    cells = aggregate(votes, check_graph=False)
    assert cells.n_models == 6
    # Fitting one component is fine.
    assert aggregate(votes, models=exc.components[0]).n_models == 4


def test_long_components_are_truncated_in_the_message() -> None:
    rows = [(f"m{i:02d}", f"m{i + 1:02d}", "a") for i in range(20)]
    rows += [(f"z{i}", f"z{i + 1}", "a") for i in range(3)]
    with pytest.raises(DisconnectedGraphError) as info:
        aggregate(read_votes(frame_of(rows)))
    assert "(and 13 more)" in str(info.value)
    assert len(info.value.components[0]) == 21


def test_connectivity_pools_categories() -> None:
    # Each category alone is disconnected; pooled they are one component.
    frame = frame_of([("a", "b", "a"), ("b", "c", "a")], categories=["x", "y"])
    cells = aggregate(read_votes(frame), by_category=True)
    assert cells.n_cells == 2


def test_check_connected_on_hand_built_cells() -> None:
    summary = ReadSummary(source="t", kind="votes", rows_read=2, rows_used=2, votes_used=2)
    cells = Cells(
        models=("a", "b", "c", "d"),
        categories=("all",),
        model_i=np.array([0, 2], dtype=np.int32),
        model_j=np.array([1, 3], dtype=np.int32),
        category=np.zeros(2, dtype=np.int32),
        counts=np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.int64),
        summary=summary,
    )
    with pytest.raises(DisconnectedGraphError) as info:
        check_connected(cells)
    assert info.value.components == [["a", "b"], ["c", "d"]]


# --------------------------------------------------------------------------------------------
# Property-based: aggregation equals a naive count
# --------------------------------------------------------------------------------------------

NAMES = ["gpt-4", "gpt-4 ", "claude 3", "o'brien", 'say "x"', "模型", "Ünï", "a", "B", "b"]
LABELS = list(WINNER_ALIASES)
SHARED = duckdb.connect()


@st.composite
def vote_tables(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    n = draw(st.integers(1, 40))
    rows = []
    for _ in range(n):
        a = draw(st.sampled_from(names))
        b = draw(st.sampled_from([m for m in names if m != a]))
        rows.append((a, b, draw(st.sampled_from(LABELS))))
    frame = frame_of(rows)
    if draw(st.booleans()):  # the category column is optional
        cats = st.sampled_from(["x", "y", "z é", "it's"])
        frame["category"] = draw(st.lists(cats, min_size=n, max_size=n))
    return frame


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=vote_tables(), by_category=st.booleans())
def test_aggregate_equals_naive_counter(frame: pd.DataFrame, by_category: bool) -> None:
    votes = read_votes(frame, connection=SHARED)
    by_category = by_category and "category" in frame.columns
    cells = aggregate(votes, by_category=by_category, check_graph=False)
    expected = naive_cells(frame, by_category=by_category)
    assert cells_as_dict(cells) == expected
    present = {m for key in expected for m in key[1:]}
    assert cells.models == tuple(sorted(present))
    assert bool(np.all(cells.model_i < cells.model_j))
    assert cells.n_votes == len(frame) == cells.summary.votes_used
    keys = list(zip(cells.category, cells.model_i, cells.model_j, strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=vote_tables(), data=st.data())
def test_model_selection_accounting_is_exact(frame: pd.DataFrame, data: st.DataObject) -> None:
    votes = read_votes(frame, connection=SHARED)
    chosen = data.draw(st.lists(st.sampled_from(list(votes.models)), min_size=2, unique=True))
    inside = frame["model_a"].isin(chosen) & frame["model_b"].isin(chosen)
    if not inside.any():
        with pytest.raises(EmptyDataError):
            aggregate(votes, models=chosen, check_graph=False)
        return
    cells = aggregate(votes, models=chosen, check_graph=False)
    s = cells.summary
    assert s.rows_used == int(inside.sum()) == cells.n_votes
    assert s.dropped.get("model not selected", 0) == int((~inside).sum())
    assert s.rows_read == s.rows_used + sum(s.dropped.values())
    assert cells_as_dict(cells) == naive_cells(frame[inside])


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not MT_BENCH.exists(), reason="shared MT-Bench data not present")
def test_real_mt_bench_cells() -> None:
    votes = read_votes(MT_BENCH)
    cells = aggregate(votes, by_category=True)
    assert cells.n_models == 6
    assert len(cells.categories) == 8
    assert cells.n_votes == 1751
    raw = pd.read_csv(MT_BENCH)
    assert cells_as_dict(cells) == naive_cells(raw, by_category=True)
    pooled = aggregate(votes)
    assert pooled.n_cells == 15  # every pair of the 6 models was compared
    assert pooled.votes_per_model().sum() == 2 * 1751
