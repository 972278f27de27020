"""Style-control features from LMArena's conv_metadata (bayesarena.style)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bayesarena.errors import InputError, MissingColumnError, MissingValueError
from bayesarena.io import read_votes
from bayesarena.style import (
    INNER_KEYS,
    STYLE_FEATURES,
    StyleScaling,
    check_style_metadata,
    make_conv_metadata,
    style_features_from_counts,
    style_features_sql,
    style_matrix,
)


def lm(tokens, header=({}, {}), lists=({}, {}), bold=({}, {}), **extra) -> dict:
    """An LMArena conv_metadata dict; inner keys not given are 0 (so every dict has them all)."""

    def full(feature, counts):
        return {k: counts.get(k, 0) for k in INNER_KEYS[feature]}

    return {
        "sum_assistant_a_tokens": tokens[0],
        "sum_assistant_b_tokens": tokens[1],
        "header_count_a": full("header", header[0]),
        "header_count_b": full("header", header[1]),
        "list_count_a": full("list", lists[0]),
        "list_count_b": full("list", lists[1]),
        "bold_count_a": full("bold", bold[0]),
        "bold_count_b": full("bold", bold[1]),
        **extra,
    }


# Three votes and their features computed by hand: (s_a - s_b) / (s_a + s_b + 1).
METADATA = [
    lm(
        (100, 50),
        header=({"h1": 1, "h2": 2}, {}),
        lists=({"ordered": 2, "unordered": 3}, {"unordered": 1}),
        bold=({"**": 4}, {"**": 1, "__": 1}),
        sum_user_tokens=12,
        turns=1,
    ),
    lm(
        (20, 80),
        header=({}, {"h3": 1, "h6": 1}),
        bold=({}, {"__": 3}),
        sum_user_tokens=7,
        turns=2,
    ),
    lm(
        (0, 0),
        header=({"h2": 1}, {"h2": 1}),
        lists=({"ordered": 1}, {}),
        sum_user_tokens=3,
        turns=1,
    ),
]
EXPECTED = np.array(
    [
        [50 / 151, 3 / 4, 4 / 7, 2 / 7],
        [-60 / 101, -2 / 3, 0.0, -3 / 4],
        [0.0, 0.0, 1 / 2, 0.0],
    ]
)


def frame(metadata) -> pd.DataFrame:
    n = len(metadata)
    pairs = [("alpha", "beta"), ("beta", "gamma"), ("gamma", "alpha")]
    return pd.DataFrame(
        {
            "model_a": [pairs[i % 3][0] for i in range(n)],
            "model_b": [pairs[i % 3][1] for i in range(n)],
            "winner": [("model_a", "model_b", "tie")[i % 3] for i in range(n)],
            "conv_metadata": metadata,
        }
    )


def dumps(metadata) -> list:
    """JSON text per vote; None stays None (a NULL cell)."""
    return [None if m is None else json.dumps(m) for m in metadata]


def test_features_match_hand_computation():
    raw, _ = style_matrix(read_votes(frame(METADATA)))
    assert raw.shape == (3, len(STYLE_FEATURES))
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


def write_parquet(df: pd.DataFrame, tmp_path):
    path = tmp_path / "votes.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


def write_jsonl(df: pd.DataFrame, tmp_path):
    path = tmp_path / "votes.jsonl"
    df.to_json(path, orient="records", lines=True)
    return path


def write_csv(df: pd.DataFrame, tmp_path):
    path = tmp_path / "votes.csv"
    df.assign(conv_metadata=dumps(df["conv_metadata"])).to_csv(path, index=False)
    return path


SOURCES = {
    "dataframe of dicts": lambda df, tmp_path: df,
    "dataframe of JSON strings": lambda df, tmp_path: df.assign(
        conv_metadata=dumps(df["conv_metadata"])
    ),
    "parquet": write_parquet,
    "jsonl": write_jsonl,
    "csv": write_csv,
}


@pytest.mark.parametrize("source", SOURCES)
def test_same_features_from_every_layout(source, tmp_path):
    votes = read_votes(SOURCES[source](frame(METADATA), tmp_path))
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("source", ["dataframe of dicts", "parquet", "jsonl", "csv"])
def test_layouts_have_the_expected_duckdb_types(source, tmp_path):
    """Both SQL routes are exercised: STRUCT for nested input, text for CSV."""
    relation = read_votes(SOURCES[source](frame(METADATA), tmp_path)).relation
    types = dict(zip(relation.columns, relation.types, strict=True))
    assert types["conv_metadata"].id == ("varchar" if source == "csv" else "struct")


@pytest.mark.parametrize("source", ["dataframe of dicts", "csv"])
def test_public_sql_expressions_give_the_same_features(source, tmp_path):
    """The self-contained expressions aggregation code embeds agree with style_matrix."""
    relation = read_votes(SOURCES[source](frame(METADATA), tmp_path)).relation
    exprs = style_features_sql(relation)
    assert list(exprs) == list(STYLE_FEATURES)
    select = ", ".join(exprs.values())
    rows = relation.query("votes", f"SELECT {select} FROM votes ORDER BY row").fetchall()
    np.testing.assert_allclose(np.array(rows, dtype=float), EXPECTED, rtol=0, atol=1e-12)


def test_dicts_with_differing_extra_keys_are_read():
    """A frame's Python objects go to DuckDB through Arrow, which types dicts with differing
    keys as one STRUCT over all the keys (absent ones NULL); it reads."""
    metadata = [dict(m) for m in METADATA]
    metadata[1]["context_a_tokens"] = 5
    del metadata[2]["turns"]
    votes = read_votes(frame(metadata))
    types = dict(zip(votes.relation.columns, votes.relation.types, strict=True))
    assert types["conv_metadata"].id == "struct"
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


def test_numpy_scalars_in_dicts_are_read(tmp_path):
    """Dicts holding numpy scalars read as plain numbers."""
    metadata = [
        {k: (np.int64(v) if isinstance(v, int) else v) for k, v in m.items()} for m in METADATA
    ]
    votes = read_votes(frame(metadata))
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


def test_mixed_objects_keep_duckdbs_own_scan():
    """A column Arrow cannot type (dicts beside JSON text) is scanned by DuckDB itself, as
    Python-repr text, and still reads."""
    import json

    metadata: list = [dict(m) for m in METADATA]
    metadata[1] = json.dumps(metadata[1])
    votes = read_votes(frame(metadata))
    types = dict(zip(votes.relation.columns, votes.relation.types, strict=True))
    assert types["conv_metadata"].id == "varchar"
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("source", ["dataframe of dicts", "jsonl", "csv"])
def test_missing_inner_key_counts_as_zero_when_the_inner_dict_exists(source, tmp_path):
    metadata = [dict(m) for m in METADATA]
    metadata[0] = {**metadata[0], "header_count_a": {"h1": 1, "h2": 2}}  # h3..h6 absent
    metadata[1] = {**metadata[1], "bold_count_b": {"__": 3}}  # "**" absent
    votes = read_votes(SOURCES[source](frame(metadata), tmp_path))
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


def test_parquet_with_map_fields_is_read(tmp_path):
    """Markdown counts stored as Parquet MAPs (not structs) are read through JSON."""
    metadata = [dict(m) for m in METADATA]
    metadata[0] = {**metadata[0], "header_count_a": {"h1": 1, "h2": 2}}  # keys differ by row
    counts = pa.map_(pa.string(), pa.int64())
    conv = pa.struct(
        [
            ("sum_assistant_a_tokens", pa.int64()),
            ("sum_assistant_b_tokens", pa.int64()),
            *[(key, counts) for key in ("header_count_a", "header_count_b")],
            *[(key, counts) for key in ("list_count_a", "list_count_b")],
            *[(key, counts) for key in ("bold_count_a", "bold_count_b")],
        ]
    )
    rows = [
        {
            k: (list(v.items()) if isinstance(v, dict) else v)
            for k, v in m.items()
            if k in conv.names
        }
        for m in metadata
    ]
    df = frame(metadata)
    table = pa.table(
        {
            "model_a": df["model_a"],
            "model_b": df["model_b"],
            "winner": df["winner"],
            "conv_metadata": pa.array(rows, type=conv),
        }
    )
    path = tmp_path / "maps.parquet"
    pq.write_table(table, path)
    votes = read_votes(path)
    conv_type = dict(zip(votes.relation.columns, votes.relation.types, strict=True))
    assert dict(conv_type["conv_metadata"].children)["header_count_a"].id == "map"
    raw, _ = style_matrix(votes)
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


def test_a_number_for_a_markdown_key_is_its_total(tmp_path):
    """FastChat's extractor takes an int as is and sums a dict's values."""
    metadata = [dict(m) for m in METADATA]
    metadata[0] = {**metadata[0], "header_count_a": 3}
    raw, _ = style_matrix(read_votes(SOURCES["csv"](frame(metadata), tmp_path)))
    np.testing.assert_allclose(raw, EXPECTED, rtol=0, atol=1e-12)


@pytest.mark.parametrize("source", list(SOURCES))
def test_null_conv_metadata_names_the_row(source, tmp_path):
    metadata = [*METADATA[:1], None, *METADATA[2:]]
    votes = read_votes(SOURCES[source](frame(metadata), tmp_path))
    with pytest.raises(MissingValueError, match=r"conv_metadata is NULL at row 1\b") as info:
        style_matrix(votes)
    assert info.value.rows == [1]
    assert info.value.column == "conv_metadata"


@pytest.mark.parametrize("source", ["dataframe of dicts", "parquet", "jsonl", "csv"])
def test_missing_top_level_key_names_the_rows(source, tmp_path):
    metadata = [dict(m) for m in METADATA]
    del metadata[2]["bold_count_b"]
    del metadata[0]["sum_assistant_a_tokens"]
    votes = read_votes(SOURCES[source](frame(metadata), tmp_path))
    with pytest.raises(MissingValueError) as info:
        check_style_metadata(votes.relation)
    message = str(info.value)
    assert "key 'bold_count_b' is missing at row 2" in message
    assert "key 'sum_assistant_a_tokens' is missing at row 0" in message
    assert "at rows 0, 2:" in message
    assert info.value.rows == [0, 2]


def test_missing_inner_dict_is_an_error_not_zero():
    metadata = [dict(m) for m in METADATA]
    metadata[1] = {**metadata[1], "list_count_a": None}
    with pytest.raises(MissingValueError, match=r"key 'list_count_a' is missing at row 1\b"):
        style_matrix(read_votes(frame(metadata)))


@pytest.mark.parametrize("source", ["dataframe of JSON strings", "jsonl"])
def test_invalid_counts_are_reported(source, tmp_path):
    metadata = [dict(m) for m in METADATA]
    metadata[0] = {**metadata[0], "header_count_b": {"h1": -1, "h2": 3}}
    metadata[2] = {**metadata[2], "sum_assistant_b_tokens": "many"}
    votes = read_votes(SOURCES[source](frame(metadata), tmp_path))
    with pytest.raises(InputError) as info:
        style_matrix(votes)
    assert not isinstance(info.value, MissingValueError)
    message = str(info.value)
    assert "key 'header_count_b' is not a non-negative count or an object of counts at row 0" in (
        message
    )
    assert "key 'sum_assistant_b_tokens' is not a non-negative count at row 2" in message
    assert info.value.rows == [0, 2]


def test_json_null_text_counts_as_missing_metadata():
    df = frame(METADATA).assign(conv_metadata=[json.dumps(METADATA[0]), "null", None])
    with pytest.raises(MissingValueError, match=r"conv_metadata is NULL at rows 1, 2"):
        style_matrix(read_votes(df))


def test_text_that_is_not_a_json_object_is_reported():
    df = frame(METADATA).assign(conv_metadata=[json.dumps(METADATA[0]), "{oops", "[1, 2]"])
    with pytest.raises(InputError, match=r"conv_metadata is not a JSON object at rows 1, 2"):
        style_matrix(read_votes(df))


def test_valid_metadata_passes_the_check():
    assert check_style_metadata(read_votes(frame(METADATA)).relation) is None


def test_missing_column_raises_missing_column_error():
    votes = read_votes(frame(METADATA).drop(columns="conv_metadata"))
    with pytest.raises(MissingColumnError, match="conv_metadata"):
        style_matrix(votes)
    with pytest.raises(MissingColumnError):
        style_features_sql(votes.relation)


def test_column_of_the_wrong_type_is_refused():
    votes = read_votes(frame(METADATA).assign(conv_metadata=[1, 2, 3]))
    with pytest.raises(InputError, match=r"has type (INTEGER|BIGINT)"):
        style_features_sql(votes.relation)


def test_counts_form_is_refused():
    counts = pd.DataFrame(
        {"model_a": ["a"], "model_b": ["b"], "wins_a": [1], "wins_b": [2], "ties": [0]}
    )
    with pytest.raises(InputError, match="per-vote input"):
        style_matrix(read_votes(counts))


def test_zscores_have_mean_zero_and_sd_one():
    raw, scaling = style_matrix(read_votes(frame(METADATA)))
    np.testing.assert_allclose(scaling.mean, EXPECTED.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(scaling.sd, EXPECTED.std(axis=0), atol=1e-12)
    z = scaling.apply(raw)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-12)
    recorded = scaling.to_dict()
    assert list(recorded) == list(STYLE_FEATURES)
    assert recorded["bold"]["sd"] == pytest.approx(EXPECTED[:, 3].std())


def test_constant_feature_cannot_be_scaled():
    raw = EXPECTED.copy()
    raw[:, 3] = 0.25
    with pytest.raises(InputError, match=r"'bold' constant over the 3 votes"):
        StyleScaling.fit(raw)


def test_constant_feature_in_votes_raises_naming_it():
    metadata = [dict(m, bold_count_a={"**": 0, "__": 0}) for m in METADATA]
    metadata = [dict(m, bold_count_b={"**": 0, "__": 0}) for m in metadata]
    with pytest.raises(InputError, match="'bold'"):
        style_matrix(read_votes(frame(metadata)))


def test_features_from_counts_formula():
    a = {"length": [100, 20, 0], "header": [3, 0, 1], "list": [5, 0, 1], "bold": [4, 0, 0]}
    b = {"length": [50, 80, 0], "header": [0, 2, 1], "list": [1, 0, 0], "bold": [2, 3, 0]}
    np.testing.assert_allclose(style_features_from_counts(a, b), EXPECTED, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="non-negative"):
        style_features_from_counts({**a, "bold": [-1, 0, 0]}, b)
    with pytest.raises(InputError, match="missing"):
        style_features_from_counts({k: v for k, v in a.items() if k != "list"}, b)


def test_make_conv_metadata_round_trips_through_read_votes(tmp_path):
    rng = np.random.default_rng(5)
    n = 40
    a = {
        "length": rng.integers(0, 900, n),
        "header": rng.integers(0, 4, (n, 6)),  # split over h1..h6
        "list": rng.integers(0, 6, n),  # totals: all on "ordered"
        "bold": rng.integers(0, 5, (n, 2)),
    }
    b = {
        "length": rng.integers(0, 900, n),
        "header": rng.integers(0, 9, n),
        "list": rng.integers(0, 6, (n, 2)),
        "bold": rng.integers(0, 5, n),
    }
    metadata = make_conv_metadata(a, b, extra={"turns": np.ones(n, dtype=np.int64)})
    first = metadata[0]
    assert set(first) == {
        "sum_assistant_a_tokens",
        "sum_assistant_b_tokens",
        "header_count_a",
        "header_count_b",
        "list_count_a",
        "list_count_b",
        "bold_count_a",
        "bold_count_b",
        "turns",
    }
    assert list(first["header_count_a"]) == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert first["list_count_a"] == {"ordered": int(a["list"][0]), "unordered": 0}
    assert list(first["bold_count_b"]) == ["**", "__"]
    assert type(first["sum_assistant_a_tokens"]) is int
    assert type(first["turns"]) is int

    def totals(counts):
        return {f: (v.sum(axis=1) if v.ndim == 2 else v) for f, v in counts.items()}

    expected = style_features_from_counts(totals(a), totals(b))
    df = frame(metadata)
    for source in ("dataframe of dicts", "parquet", "csv"):
        votes = read_votes(SOURCES[source](df, tmp_path))
        raw, _ = style_matrix(votes)
        np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-12, err_msg=source)


def test_make_conv_metadata_refuses_bad_counts():
    good = {"length": [1, 2], "header": [0, 1], "list": [0, 0], "bold": [1, 0]}
    with pytest.raises(InputError, match="whole numbers"):
        make_conv_metadata({**good, "length": [1.5, 2]}, good)
    with pytest.raises(InputError, match=r"shape \(n,\) or \(n, 6\)"):
        make_conv_metadata({**good, "header": np.zeros((2, 3))}, good)
    with pytest.raises(InputError, match="same votes"):
        make_conv_metadata(good, {k: v[:1] for k, v in good.items()})
