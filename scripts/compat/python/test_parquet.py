"""After FLUSH the data is in Apache Parquet files under
<data-dir>/storage/data/**/*.parquet; read them with pyarrow and compare
with what was written."""

import datetime

import pyarrow.parquet as pq
import pytest
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

T = TSDataType
D = datetime.date

VALUE_COLUMNS = ["v_boolean", "v_int32", "v_int64", "v_float", "v_double", "v_binary"]
COLUMN_OF = {
    T.BOOLEAN: "v_boolean", T.INT32: "v_int32", T.INT64: "v_int64", T.FLOAT: "v_float",
    T.DOUBLE: "v_double", T.TEXT: "v_binary", T.STRING: "v_binary", T.BLOB: "v_binary",
    T.DATE: "v_int32", T.TIMESTAMP: "v_int64",
}

# name, type, {time: value}
SERIES = [
    ("b", T.BOOLEAN, {1: True, 2: False}),
    ("i32", T.INT32, {1: -5, 3: 2147483647}),
    ("i64", T.INT64, {2: -9223372036854775808, 3: 123456789012}),
    ("f", T.FLOAT, {1: 1.25, 2: -0.5}),
    ("d", T.DOUBLE, {1: 3.141592653589793, 3: -1e-300}),
    ("t", T.TEXT, {1: "héllo", 2: ""}),
    ("s", T.STRING, {2: "str ✓", 3: "x"}),
    ("bl", T.BLOB, {1: b"\x00\x01", 3: b"\xff\xfe\x80\x00"}),
    ("dt", T.DATE, {1: D(2024, 2, 29), 2: D(1970, 1, 1)}),
    ("ts", T.TIMESTAMP, {2: 1700000000123, 3: -1}),
]
TIMES = [1, 2, 3]
DEV = "root.pq.d1"


def stored(dt, v):
    """How a value is expected to appear in its v_* column."""
    if dt in (T.TEXT, T.STRING):
        return v.encode("utf-8")
    if dt == T.DATE:
        return v.year * 10000 + v.month * 100 + v.day
    return v


def read_parquet_rows(data_dir):
    files = sorted((data_dir / "storage" / "data").rglob("*.parquet"))
    rows = []
    for f in files:
        table = pq.read_table(f)
        names = table.schema.names
        for col in ["series", "time", "version_hlc", "version_instance", "data_type"] + VALUE_COLUMNS:
            assert col in names, f"{f}: column {col} missing ({names})"
        rows.extend(table.to_pylist())
    return files, rows


@pytest.fixture
def flushed(duetd_factory):
    srv = duetd_factory("pq")
    s = srv.session()
    try:
        names = [n for n, _, _ in SERIES]
        types = [t for _, t, _ in SERIES]
        values = [[vals.get(t) for _, _, vals in SERIES] for t in TIMES]
        s.insert_tablet(Tablet(DEV, names, types, values, TIMES))
        # A second device through another write path, aligned.
        s.insert_aligned_record("root.pq.d2", 7, ["x", "y"], [T.INT64, T.TEXT], [70, "seven"])
        assert s.execute_non_query_statement("FLUSH") == 0
    finally:
        s.close()
    return srv


def test_flushed_rows_match_written(flushed):
    files, rows = read_parquet_rows(flushed.data_dir)
    assert files, "FLUSH produced no .parquet file"
    by_key = {}
    for r in rows:
        key = (r["series"], r["time"])
        assert key not in by_key, f"duplicate row for {key}"
        by_key[key] = r

    expected = {}
    for name, dt, vals in SERIES:
        for t, v in vals.items():
            expected[(f"{DEV}.{name}", t)] = (dt, v)
    expected[("root.pq.d2.x", 7)] = (T.INT64, 70)
    expected[("root.pq.d2.y", 7)] = (T.TEXT, "seven")

    # Nulls are not stored as rows; nothing else is there.
    assert sorted(by_key) == sorted(expected)
    for key, (dt, v) in expected.items():
        r = by_key[key]
        assert r["data_type"] == int(dt), f"{key}: data_type {r['data_type']}"
        col = COLUMN_OF[dt]
        got = r[col]
        want = stored(dt, v)
        if dt == T.FLOAT:
            assert got == pytest.approx(want), key
        else:
            assert got == want, f"{key}: {col} = {got!r}, expected {want!r}"
        others = {c: r[c] for c in VALUE_COLUMNS if c != col and r[c] is not None}
        assert not others, f"{key}: other value columns set: {others}"
        assert r["version_hlc"] > 0


def test_parquet_survives_restart_and_queries_agree(flushed):
    from helpers import query_df
    _, before = read_parquet_rows(flushed.data_dir)
    flushed.restart()
    s = flushed.session()
    try:
        df = query_df(s, f"select i64, t from {DEV}")
        assert list(df["Time"]) == [1, 2, 3]
        assert df[f"{DEV}.i64"].tolist()[1:] == [-9223372036854775808, 123456789012]
        assert df[f"{DEV}.t"].tolist()[:2] == ["héllo", ""]
    finally:
        s.close()
    _, after = read_parquet_rows(flushed.data_dir)
    key = lambda r: (r["series"], r["time"])
    assert sorted(map(key, before)) == sorted(map(key, after))
