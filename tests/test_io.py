"""Tests of bayesarena.io.read_votes and the row-level checks in bayesarena.validation."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesarena.errors import (
    BayesArenaError,
    EmptyDataError,
    InputError,
    InvalidCountError,
    MissingColumnError,
    MissingValueError,
    SelfBattleError,
    UnknownLabelError,
)
from bayesarena.io import read_votes
from bayesarena.validation import check_winner_map, sql_identifier, sql_literal
from bayesarena.votes import OUTCOMES, WINNER_ALIASES

MT_BENCH = SHARED_DATA / "mt_bench_human" / "mt_bench_human_votes_subset.csv"

FILE_FORMATS = ("csv", "json", "jsonl", "parquet")


def write(frame: pd.DataFrame, directory: Path, fmt: str, name: str = "votes") -> Path:
    """Write ``frame`` to ``directory/name.<fmt>`` in one of the accepted formats."""
    path = directory / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:  # pragma: no cover
        raise ValueError(fmt)
    return path


def source_of(frame: pd.DataFrame, kind: str, tmp_path: Path) -> pd.DataFrame | Path:
    """The frame itself (``kind="frame"``) or the frame written to a file of format ``kind``."""
    return frame if kind == "frame" else write(frame, tmp_path, kind)


def votes_frame(n: int = 6) -> pd.DataFrame:
    models = ["alpha", "beta", "gamma"]
    winners = ["model_a", "model_b", "tie", "tie (bothbad)"]
    return pd.DataFrame(
        {
            "model_a": [models[i % 3] for i in range(n)],
            "model_b": [models[(i + 1) % 3] for i in range(n)],
            "winner": [winners[i % 4] for i in range(n)],
        }
    )


# --------------------------------------------------------------------------------------------
# The canonical relation
# --------------------------------------------------------------------------------------------


def test_dataframe_is_read_to_canonical_columns() -> None:
    frame = votes_frame().assign(judge=[f"j{i}" for i in range(6)], category="c", extra=1)
    votes = read_votes(frame)
    out = votes.to_pandas()
    assert list(out.columns) == ["row", "model_a", "model_b", "outcome", "category", "voter"]
    assert out["row"].tolist() == list(range(6))
    assert out["outcome"].tolist() == ["win_a", "win_b", "tie", "tie_bothbad", "win_a", "win_b"]
    assert out["voter"].tolist() == [f"j{i}" for i in range(6)]
    assert votes.kind == "votes"
    assert votes.models == ("alpha", "beta", "gamma")
    assert votes.optional_columns == ("category", "voter")
    s = votes.summary
    assert (s.source, s.kind, s.rows_read, s.rows_used, s.votes_used, s.dropped) == (
        "DataFrame",
        "votes",
        6,
        6,
        6,
        {},
    )


def test_all_optional_columns_are_carried_and_voter_beats_judge() -> None:
    frame = votes_frame(2).assign(
        voter=["v0", "v1"],
        judge=["j0", "j1"],
        tstamp=[1.5, 2.5],
        language=["en", "de"],
        position=[0, 1],
        conv_metadata=['{"a": 1}', '{"a": 2}'],
    )
    votes = read_votes(frame)
    assert votes.optional_columns == (
        "voter",
        "tstamp",
        "language",
        "position",
        "conv_metadata",
    )
    out = votes.to_pandas()
    assert out["voter"].tolist() == ["v0", "v1"]
    assert out["tstamp"].tolist() == [1.5, 2.5]


def test_relation_outlives_the_call_and_its_default_connection() -> None:
    votes = read_votes(votes_frame())
    gc.collect()
    assert len(votes.to_pandas()) == 6
    again = votes.relation.query("v", "SELECT count(*) FROM v").fetchall()
    assert again == [(6,)]


def test_relation_outlives_a_file_read(tmp_path: Path) -> None:
    path = write(votes_frame(), tmp_path, "parquet")
    votes = read_votes(path)
    gc.collect()
    assert votes.to_pandas()["row"].tolist() == list(range(6))


def test_given_connection_is_used() -> None:
    con = duckdb.connect()
    votes = read_votes(votes_frame(), connection=con)
    other = read_votes(votes_frame(3), connection=con)
    assert len(votes.to_pandas()) == 6
    assert len(other.to_pandas()) == 3


def test_dataframe_is_not_modified_and_index_is_ignored() -> None:
    frame = votes_frame().set_axis([10, 3, 7, 1, 2, 0])
    before = frame.copy()
    votes = read_votes(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert votes.to_pandas()["row"].tolist() == list(range(6))


def test_numeric_looking_names_stay_text_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("model_a,model_b,winner,judge\n007,1,model_a,01\n1,007,tie,02\n")
    votes = read_votes(path)
    assert votes.models == ("007", "1")
    assert votes.to_pandas()["voter"].tolist() == ["01", "02"]


def test_pandas_categorical_and_string_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "model_a": pd.Categorical(["x", "y"]),
            "model_b": pd.array(["y", "z"], dtype="string"),
            "winner": pd.Categorical(["a", "b"]),
            "category": pd.Categorical(["c1", "c2"]),
        }
    )
    out = read_votes(frame).to_pandas()
    assert out["outcome"].tolist() == ["win_a", "win_b"]
    assert out["category"].tolist() == ["c1", "c2"]


# --------------------------------------------------------------------------------------------
# Sources and formats
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_each_format_reads_like_the_dataframe(fmt: str, tmp_path: Path) -> None:
    judges = [f"j{i % 5}" for i in range(12)]
    frame = votes_frame(12).assign(category=["x", "y", "z"] * 4, judge=judges)
    expected = read_votes(frame).to_pandas()
    votes = read_votes(write(frame, tmp_path, fmt))
    pd.testing.assert_frame_equal(votes.to_pandas(), expected, check_dtype=False)
    assert votes.summary.rows_read == 12
    assert votes.summary.source == str(tmp_path / f"votes.{fmt}")


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_format_keyword_overrides_the_suffix(fmt: str, tmp_path: Path) -> None:
    path = write(votes_frame(), tmp_path, fmt)
    renamed = path.rename(tmp_path / "votes.data")
    assert len(read_votes(renamed, format=fmt).to_pandas()) == 6


def test_ndjson_and_gzip_suffixes(tmp_path: Path) -> None:
    frame = votes_frame()
    ndjson = tmp_path / "v.ndjson"
    frame.to_json(ndjson, orient="records", lines=True)
    gz = tmp_path / "v.csv.gz"
    frame.to_csv(gz, index=False, compression="gzip")
    assert read_votes(ndjson).summary.rows_used == 6
    assert read_votes(gz).summary.rows_used == 6


def test_unsupported_suffix_names_the_accepted_formats(tmp_path: Path) -> None:
    path = tmp_path / "votes.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match=r"votes\.xlsx.*'\.csv'.*'\.parquet'.*format="):
        read_votes(path)
    with pytest.raises(InputError, match=r"unknown format 'excel'.*'csv', 'json', 'jsonl'"):
        read_votes(path, format="excel")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError, match="file not found") as info:
        read_votes(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(InputError, match="no files match"):
        read_votes(tmp_path / "nope*.parquet")
    with pytest.raises(InputError, match=r"no \*\.parquet files under directory"):
        read_votes(tmp_path)


def test_csv_needs_insertion_order(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.sql("SET preserve_insertion_order = false")
    path = write(votes_frame(), tmp_path, "csv")
    with pytest.raises(InputError, match="preserve_insertion_order"):
        read_votes(path, connection=con)
    assert read_votes(write(votes_frame(), tmp_path, "parquet"), connection=con).summary.rows_used


def test_bad_source_type() -> None:
    with pytest.raises(InputError, match="DataFrame or a path"):
        read_votes([{"model_a": "a"}])  # type: ignore[arg-type]


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("not parquet at all")
    with pytest.raises(InputError, match=r"could not read .*broken\.parquet as parquet"):
        read_votes(path)


def test_glob_and_directory_of_parquet_files_number_rows_in_path_order(tmp_path: Path) -> None:
    part = tmp_path / "parts"
    part.mkdir()
    first = votes_frame(3)
    second = votes_frame(4).assign(winner=["model_a", "model_b", "x", "tie"])
    # Written in reverse order: reading order is sorted path order, not creation order.
    second.to_parquet(part / "b.parquet")
    first.to_parquet(part / "a.parquet")
    for source in (part, str(part / "*.parquet")):
        with pytest.raises(UnknownLabelError) as info:
            read_votes(source)
        assert info.value.rows == [5]  # row 2 of b.parquet, after the 3 rows of a.parquet
        votes = read_votes(source, on_invalid="drop")
        assert votes.to_pandas()["row"].tolist() == [0, 1, 2, 3, 4, 6]
        assert votes.summary.dropped == {"unknown winner label": 1}


def test_hive_partitioned_directory_gives_categories(tmp_path: Path) -> None:
    for cat in ("code", "math"):
        (tmp_path / f"category={cat}").mkdir()
        votes_frame(3).to_parquet(tmp_path / f"category={cat}" / "part.parquet")
    votes = read_votes(tmp_path)
    assert "category" in votes.optional_columns
    out = votes.to_pandas()
    assert out["category"].tolist() == ["code"] * 3 + ["math"] * 3


# --------------------------------------------------------------------------------------------
# Columns and empty input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frame", "csv"])
def test_missing_columns_are_named_with_the_columns_found(kind: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "result": [1]})
    with pytest.raises(MissingColumnError) as info:
        read_votes(source_of(frame, kind, tmp_path))
    message = str(info.value)
    assert "'winner'" in message
    assert "found 'model_a', 'model_b', 'result'" in message
    assert info.value.column == "winner"


def test_missing_count_columns_report_the_counts_form() -> None:
    frame = pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "wins_a": [1], "wins_b": [1]})
    with pytest.raises(MissingColumnError, match=r"'ties' for the aggregated counts form"):
        read_votes(frame)


def test_both_forms_at_once_is_ambiguous() -> None:
    frame = votes_frame(1).assign(wins_a=1, wins_b=0, ties=0)
    with pytest.raises(InputError, match="ambiguous"):
        read_votes(frame)


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
def test_empty_input_raises_even_with_drop(on_invalid: str, tmp_path: Path) -> None:
    empty = votes_frame(0)
    with pytest.raises(EmptyDataError, match="found 0 rows"):
        read_votes(empty, on_invalid=on_invalid)  # type: ignore[arg-type]
    header_only = tmp_path / "h.csv"
    header_only.write_text("model_a,model_b,winner\n")
    with pytest.raises(EmptyDataError):
        read_votes(header_only, on_invalid=on_invalid)  # type: ignore[arg-type]
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(EmptyDataError):
        read_votes(blank, on_invalid=on_invalid)  # type: ignore[arg-type]


def test_bad_on_invalid() -> None:
    with pytest.raises(InputError, match="on_invalid"):
        read_votes(votes_frame(), on_invalid="ignore")  # type: ignore[arg-type]


def test_nested_model_column_is_refused() -> None:
    frame = pd.DataFrame({"model_a": [["a"]], "model_b": ["b"], "winner": ["a"]})
    with pytest.raises(InputError, match=r"column 'model_a' has type LIST"):
        read_votes(frame)


# --------------------------------------------------------------------------------------------
# Row-level checks
# --------------------------------------------------------------------------------------------

# (defect name, column, value, expected error, reason in the message)
DEFECTS = [
    ("null model_a", "model_a", None, MissingValueError, "missing model name"),
    ("empty model_b", "model_b", "", MissingValueError, "missing model name"),
    ("blank model_a", "model_a", "  \t", MissingValueError, "missing model name"),
    ("null winner", "winner", None, MissingValueError, "missing winner"),
    ("unknown label", "winner", "tie(bothbad)", UnknownLabelError, "unknown winner label"),
    ("self-battle", "model_b", "SAME", SelfBattleError, "self-battle"),
]


def with_defect(frame: pd.DataFrame, column: str, value: object, rows: list[int]) -> pd.DataFrame:
    frame = frame.copy()
    for r in rows:
        frame.loc[r, column] = frame.loc[r, "model_a"] if value == "SAME" else value
    return frame


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet", "jsonl"])
@pytest.mark.parametrize(("name", "column", "value", "error", "reason"), DEFECTS)
def test_each_check_names_column_and_first_rows(
    kind: str, name: str, column: str, value: object, error: type, reason: str, tmp_path: Path
) -> None:
    bad_rows = [2, 5, 6, 8, 11, 14, 17]
    frame = with_defect(votes_frame(20), column, value, bad_rows)
    with pytest.raises(error) as info:
        read_votes(source_of(frame, kind, tmp_path))
    exc = info.value
    message = str(exc)
    assert reason in message
    assert exc.rows == bad_rows[:5]
    assert "rows 2, 5, 6, 8, 11 (and 2 more)" in message
    assert f"'{column}'" in message
    assert exc.column == column
    assert isinstance(exc, BayesArenaError)


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet"])
@pytest.mark.parametrize(("name", "column", "value", "error", "reason"), DEFECTS)
def test_each_check_with_drop_counts_the_rows(
    kind: str, name: str, column: str, value: object, error: type, reason: str, tmp_path: Path
) -> None:
    bad_rows = [0, 3, 19]
    frame = with_defect(votes_frame(20), column, value, bad_rows)
    votes = read_votes(source_of(frame, kind, tmp_path), on_invalid="drop")
    assert votes.summary.dropped == {reason: 3}
    assert votes.summary.rows_read == 20
    assert votes.summary.rows_used == votes.summary.votes_used == 17
    assert sorted(set(range(20)) - set(votes.to_pandas()["row"])) == bad_rows


def test_csv_error_rows_are_reading_order_in_a_large_file(tmp_path: Path) -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "model_a": rng.choice(["a", "b"], n),
            "model_b": "c",
            "winner": rng.choice(["model_a", "model_b", "tie"], n),
        }
    )
    bad = [1_234, 77_777, 150_001, 199_999]
    frame.loc[bad, "winner"] = "oops"
    path = write(frame, tmp_path, "csv")
    with pytest.raises(UnknownLabelError) as info:
        read_votes(path)
    assert info.value.rows == bad
    votes = read_votes(path, on_invalid="drop")
    assert votes.summary.rows_used == n - len(bad)
    rows = votes.relation.query("v", 'SELECT min("row"), max("row"), count(*) FROM v').fetchall()
    assert rows == [(0, n - 2, n - len(bad))]


def test_unknown_label_message_lists_labels_counts_and_accepted() -> None:
    frame = votes_frame(14)
    frame.loc[[4, 9, 11], "winner"] = "tie(bothbad)"
    frame.loc[[13], "winner"] = "x"
    with pytest.raises(UnknownLabelError) as info:
        read_votes(frame)
    message = str(info.value)
    assert message.startswith(
        "unknown winner label(s) 'tie(bothbad)' (3 rows), 'x' (1 row) in column 'winner' at "
        "rows 4, 9, 11, 13;"
    )
    assert "accepted: 'model_a', 'a', 'A', 'model_b'" in message
    assert "'tie (bothbad)'" in message
    assert "winner_map=" in message
    assert info.value.rows == [4, 9, 11, 13]


def test_many_unknown_labels_are_truncated() -> None:
    frame = votes_frame(8)
    frame["winner"] = [f"label{i}" for i in range(8)]
    with pytest.raises(UnknownLabelError, match=r"and 3 more label\(s\)"):
        read_votes(frame)


def test_labels_match_exactly() -> None:
    for label in ("Model_A", " tie", "tie ", "TIE", "model-a"):
        frame = votes_frame(2).assign(winner=["model_a", label])
        with pytest.raises(UnknownLabelError) as info:
            read_votes(frame)
        assert repr(label) in str(info.value)
        assert info.value.rows == [1]


def test_every_documented_alias_is_accepted() -> None:
    labels = list(WINNER_ALIASES)
    frame = pd.DataFrame(
        {"model_a": "a", "model_b": "b", "winner": labels}, index=range(len(labels))
    )
    out = read_votes(frame).to_pandas()
    assert out["outcome"].tolist() == [WINNER_ALIASES[k] for k in labels]


def test_first_failing_check_wins_and_counts_once() -> None:
    frame = pd.DataFrame(
        {
            "model_a": [None, "a", "a", "a", "a"],
            "model_b": ["b", "a", "b", "b", "a"],
            "winner": ["nonsense", "nonsense", None, "tie", "tie"],
        }
    )
    # Row 0 fails "missing model name" and "unknown label"; row 1 "unknown label" and
    # "self-battle"; row 4 only "self-battle".
    with pytest.raises(MissingValueError) as info:
        read_votes(frame)
    assert info.value.rows == [0]
    votes = read_votes(frame, on_invalid="drop")
    assert votes.summary.dropped == {
        "missing model name": 1,
        "unknown winner label": 1,
        "missing winner": 1,
        "self-battle": 1,
    }
    assert votes.to_pandas()["row"].tolist() == [3]


def test_drop_everything_raises_empty_naming_reasons() -> None:
    frame = votes_frame(3).assign(winner=["?", "?", None])
    expected = r"dropped all of them \(1 row: missing winner, 2 rows: unknown winner label\)"
    with pytest.raises(EmptyDataError, match=expected):
        read_votes(frame, on_invalid="drop")


def test_missing_names_in_both_columns_are_reported_per_column() -> None:
    frame = votes_frame(6)
    frame.loc[[1, 4], "model_a"] = ""
    frame.loc[[2], "model_b"] = None
    with pytest.raises(MissingValueError) as info:
        read_votes(frame)
    assert "columns 'model_a' (2 rows), 'model_b' (1 row) at rows 1, 2, 4" in str(info.value)
    assert info.value.column == "model_a"


def test_nan_model_and_winner_in_parquet_float_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"model_a": [1.0, np.nan, 3.0], "model_b": [2.0, 3.0, 1.0], "winner": [1.0, 0.0, np.nan]}
    )
    path = write(frame, tmp_path, "parquet")
    with pytest.raises(MissingValueError) as info:
        read_votes(path, winner_map={"1.0": "model_a", "0.0": "tie"})
    assert info.value.rows == [1]
    votes = read_votes(path, winner_map={"1.0": "model_a", "0.0": "tie"}, on_invalid="drop")
    assert votes.summary.dropped == {"missing model name": 1, "missing winner": 1}
    assert votes.models == ("1.0", "2.0")


def test_quotes_in_names_and_labels_are_safe() -> None:
    frame = pd.DataFrame(
        {
            "model_a": ["it's", 'say "hi"', "x'); DROP TABLE t; --"],
            "model_b": ['say "hi"', "it's", "it's"],
            "winner": ["o'clock", "model_a", "tie"],
        }
    )
    votes = read_votes(frame, winner_map={"o'clock": "model_b"})
    assert votes.to_pandas()["outcome"].tolist() == ["win_b", "win_a", "tie"]
    assert votes.models == tuple(sorted(["it's", 'say "hi"', "x'); DROP TABLE t; --"]))


# --------------------------------------------------------------------------------------------
# winner_map
# --------------------------------------------------------------------------------------------

SPORTS_MAP = {"1": "model_a", "-1": "model_b", "0": "tie"}


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet", "json"])
def test_sports_style_integer_winner_map(kind: str, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"model_a": ["a", "b", "c", "a"], "model_b": ["b", "c", "a", "c"], "winner": [1, -1, 0, 1]}
    )
    votes = read_votes(source_of(frame, kind, tmp_path), winner_map=SPORTS_MAP)
    assert votes.to_pandas()["outcome"].tolist() == ["win_a", "win_b", "tie", "win_a"]


def test_unknown_label_refused_even_with_a_map() -> None:
    frame = pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "c"], "winner": [1, 2]})
    with pytest.raises(UnknownLabelError) as info:
        read_votes(frame, winner_map=SPORTS_MAP)
    assert "'2' (1 row)" in str(info.value)
    assert "'-1'" in str(info.value)  # the user's labels are listed as accepted
    assert info.value.rows == [1]


def test_winner_map_values_may_be_outcomes_or_aliases() -> None:
    table = check_winner_map({"W": "win_a", "L": "b", "BB": "tie (bothbad)", "a": "win_b"})
    assert table["W"] == "win_a"
    assert table["L"] == "win_b"
    assert table["BB"] == "tie_bothbad"
    assert table["a"] == "win_b"  # a user entry overrides a documented alias
    assert set(table.values()) <= set(OUTCOMES)


def test_invalid_winner_map_is_refused() -> None:
    with pytest.raises(InputError, match=r"winner_map value 'home' \(for label '1'\)"):
        read_votes(votes_frame(), winner_map={"1": "home"})
    with pytest.raises(InputError, match=r"winner_map key 1 is a int.*use '1'"):
        read_votes(votes_frame(), winner_map={1: "model_a"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="mapping"):
        read_votes(votes_frame(), winner_map=[("1", "a")])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Counts form
# --------------------------------------------------------------------------------------------


def counts_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_a": ["a", "b", "c", "a"],
            "model_b": ["b", "c", "a", "c"],
            "wins_a": [3, 0, 1, 0],
            "wins_b": [1, 2, 0, 0],
            "ties": [0, 1, 0, 0],
            "category": ["x", "y", "x", "y"],
            "judge": ["j", "j", "j", "j"],
        }
    )


@pytest.mark.parametrize("kind", ["frame", "csv", "json", "parquet"])
def test_counts_form_without_ties_bothbad(kind: str, tmp_path: Path) -> None:
    votes = read_votes(source_of(counts_frame(), kind, tmp_path))
    assert votes.kind == "counts"
    out = votes.to_pandas()
    assert list(out.columns) == [
        "row",
        "model_a",
        "model_b",
        "wins_a",
        "wins_b",
        "ties",
        "ties_bothbad",
        "category",
    ]
    assert out["ties_bothbad"].tolist() == [0, 0, 0]
    assert votes.optional_columns == ("category",)  # the counts form carries category only
    # Row 3 has no votes: dropped, not an error, even with on_invalid="raise".
    s = votes.summary
    assert (s.rows_read, s.rows_used, s.votes_used, s.dropped) == (4, 3, 8, {"no votes in row": 1})
    assert out["row"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet"])
@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("wins_a", -1, "-1"),
        ("wins_b", 1.5, "1.5"),
        ("ties", np.nan, "NULL"),
        ("ties_bothbad", None, "NULL"),
        ("ties", np.inf, "inf"),
    ],
)
def test_invalid_counts(kind: str, column: str, value: object, shown: str, tmp_path: Path) -> None:
    frame = counts_frame().assign(ties_bothbad=[0, 0, 1, 0])
    frame[column] = frame[column].astype(float)
    frame.loc[[1, 3], column] = value
    source = source_of(frame, kind, tmp_path)
    with pytest.raises(InvalidCountError) as info:
        read_votes(source)
    exc = info.value
    assert exc.column == column
    assert exc.rows == [1, 3]
    assert f"invalid count in column '{column}' at rows 1, 3" in str(exc)
    assert shown.lower() in str(exc).lower()
    votes = read_votes(source, on_invalid="drop")
    s = votes.summary
    assert s.dropped == {"invalid count": 2}
    assert (s.rows_used, s.votes_used) == (2, 4 + 2)


def test_text_count_column_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("model_a,model_b,wins_a,wins_b,ties\na,b,1,2,0\nb,c,abc,1,0\nc,a,1,0,2\n")
    with pytest.raises(InvalidCountError, match=r"column 'wins_a' at row 1: .*found abc"):
        read_votes(path)


def test_boolean_counts_are_invalid() -> None:
    frame = counts_frame().assign(ties=[True, False, True, False])
    with pytest.raises(InvalidCountError) as info:
        read_votes(frame)
    assert info.value.rows == [0, 1, 2, 3]


def test_counts_with_missing_model_and_self_battle() -> None:
    frame = counts_frame()
    frame.loc[0, "model_a"] = None
    frame.loc[2, "model_b"] = "c"
    with pytest.raises(MissingValueError):
        read_votes(frame)
    votes = read_votes(frame, on_invalid="drop")
    assert votes.summary.dropped == {
        "missing model name": 1,
        "self-battle": 1,
        "no votes in row": 1,
    }
    assert votes.summary.votes_used == 3


# --------------------------------------------------------------------------------------------
# SQL quoting helpers
# --------------------------------------------------------------------------------------------


def test_sql_quoting_round_trips() -> None:
    con = duckdb.connect()
    for text in ["plain", "it's", 'dq"x', "''", "é 模型 🚀", "back\\slash"]:
        got = con.sql(f"SELECT {sql_literal(text)} AS {sql_identifier(text)}")
        assert got.columns == [text]
        assert got.fetchall() == [(text,)]


# --------------------------------------------------------------------------------------------
# Property-based: malformed tables
# --------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["gpt-4", "claude 3", "o'brien", 'say "x"', "模型", "ünï"])
OUTCOME_LABELS = st.sampled_from(["model_a", "model_b", "tie", "tie (bothbad)", "a", "B", "draw"])
SHARED = duckdb.connect()


@st.composite
def valid_rows(draw: st.DrawFn) -> list[dict[str, object]]:
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        a = draw(NAMES)
        b = draw(NAMES.filter(lambda x, a=a: x != a))
        rows.append({"model_a": a, "model_b": b, "winner": draw(OUTCOME_LABELS)})
    return rows


DEFECT_KINDS = {
    "unknown": (UnknownLabelError, "unknown winner label"),
    "self": (SelfBattleError, "self-battle"),
    "nan_model": (MissingValueError, "missing model name"),
    "empty_model": (MissingValueError, "missing model name"),
    "null_winner": (MissingValueError, "missing winner"),
}


def inject(row: dict[str, object], defect: str, label: str, blank: str) -> None:
    if defect == "unknown":
        row["winner"] = label
    elif defect == "self":
        row["model_b"] = row["model_a"]
    elif defect == "nan_model":
        row["model_a"] = np.nan
    elif defect == "empty_model":
        row["model_b"] = blank
    else:
        row["winner"] = None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=valid_rows(),
    defect=st.sampled_from(sorted(DEFECT_KINDS)),
    data=st.data(),
    label=st.text(min_size=0, max_size=6).filter(lambda s: s not in WINNER_ALIASES),
    blank=st.sampled_from(["", " ", "\t", "\u00a0", " \n "]),
)
def test_malformed_tables_raise_the_right_error_and_drop_exactly(
    rows: list[dict[str, object]], defect: str, data: st.DataObject, label: str, blank: str
) -> None:
    bad = sorted(data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1), label="bad"))
    for r in bad:
        inject(rows[r], defect, label, blank)
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    error, reason = DEFECT_KINDS[defect]
    with pytest.raises(error) as info:
        read_votes(frame, connection=SHARED)
    assert info.value.rows == bad[:5]
    assert reason in str(info.value)
    if len(bad) == len(rows):
        with pytest.raises(EmptyDataError, match=reason):
            read_votes(frame, on_invalid="drop", connection=SHARED)
        return
    votes = read_votes(frame, on_invalid="drop", connection=SHARED)
    s = votes.summary
    assert s.dropped == {reason: len(bad)}
    assert s.rows_read == len(rows) == s.rows_used + sum(s.dropped.values())
    assert s.votes_used == s.rows_used
    assert votes.to_pandas()["row"].tolist() == [i for i in range(len(rows)) if i not in bad]


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not MT_BENCH.exists(), reason="shared MT-Bench data not present")
def test_real_mt_bench_votes() -> None:
    votes = read_votes(MT_BENCH)
    s = votes.summary
    assert (s.rows_read, s.rows_used, s.votes_used, s.dropped) == (1751, 1751, 1751, {})
    assert len(votes.models) == 6
    assert votes.optional_columns == ("category", "voter")
    out = votes.to_pandas()
    assert out["category"].nunique() == 8
    assert out["voter"].str.match(r"^(expert|author)_\d+$").all()
    assert out["voter"].nunique() == 65
    assert set(out["outcome"]) == {"win_a", "win_b", "tie"}
    # Row numbers are the CSV line order: compare with pandas' own reading.
    expected = pd.read_csv(MT_BENCH)
    assert out["model_a"].tolist() == expected["model_a"].tolist()
    assert out["voter"].tolist() == expected["judge"].tolist()


def test_json_records_with_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(
        json.dumps(
            [
                {"model_a": "a", "model_b": "b", "winner": "model_a"},
                {"model_a": "b", "model_b": "c"},
            ]
        )
    )
    with pytest.raises(MissingValueError) as info:
        read_votes(path)
    assert info.value.rows == [1]
