"""Queries over a small known data set: wildcards, WHERE, ORDER BY, LIMIT,
ALIGN BY DEVICE, aggregates, GROUP BY, SELECT LAST, DELETE.

Every query test runs against three servers holding the same data: all in
the memtable, all flushed to Parquet, and half flushed / half in memory."""

import pandas as pd
import pytest
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from conftest import ServerFactory
from helpers import columns, norm, query_df, query_rows

T = TSDataType

TIMES = list(range(1, 11))
D1_S1 = [10, 20, 30, 40, None, 60, 70, 80, 90, 100]                      # INT32
D1_S2 = [1.5, -7.25, 3.0, None, 2.5, -1.0, None, 4.75, 0.0, -0.5]        # DOUBLE
D1_S3 = [None if t == 3 else f"v{t}" for t in TIMES]                      # TEXT
D2_TIMES = [2, 4, 6, 8, 20]
D2_S1 = [5, -3, 7, 1, 9]                                                  # INT32 (aligned)
D2_S2 = [0.5, 1.5, None, -2.5, 3.5]                                       # DOUBLE (aligned)

ALL_TIMES = sorted(set(TIMES) | set(D2_TIMES))


def d1_rows(lo, hi):
    return [[a, b, c] for t, a, b, c in zip(TIMES, D1_S1, D1_S2, D1_S3) if lo <= t < hi]


def write_dataset(session, flush_between):
    session.execute_non_query_statement("CREATE DATABASE root.q")
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.q.d1.s1 WITH DATATYPE=INT32, ENCODING=RLE")
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.q.d1.s2 WITH DATATYPE=DOUBLE")
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.q.d1.s3 WITH DATATYPE=TEXT")
    session.execute_non_query_statement(
        "CREATE ALIGNED TIMESERIES root.q.d2(s1 INT32, s2 DOUBLE)")
    names, types = ["s1", "s2", "s3"], [T.INT32, T.DOUBLE, T.TEXT]
    session.insert_tablet(Tablet("root.q.d1", names, types, d1_rows(1, 6), TIMES[:5]))
    session.insert_aligned_tablet(Tablet("root.q.d2", ["s1", "s2"], [T.INT32, T.DOUBLE],
                                         [[a, b] for a, b in zip(D2_S1[:2], D2_S2[:2])],
                                         D2_TIMES[:2]))
    if flush_between:
        session.execute_non_query_statement("FLUSH")
    session.insert_tablet(Tablet("root.q.d1", names, types, d1_rows(6, 11), TIMES[5:]))
    session.insert_aligned_tablet(Tablet("root.q.d2", ["s1", "s2"], [T.INT32, T.DOUBLE],
                                         [[a, b] for a, b in zip(D2_S1[2:], D2_S2[2:])],
                                         D2_TIMES[2:]))


@pytest.fixture(scope="module", params=["memtable", "flushed", "mixed"])
def qs(request, tmp_path_factory):
    factory = ServerFactory(tmp_path_factory.mktemp(f"q_{request.param}"))
    srv = factory("q")
    s = srv.session()
    write_dataset(s, flush_between=request.param == "mixed")
    if request.param == "flushed":
        s.execute_non_query_statement("FLUSH")
    yield s
    s.close()
    factory.close()


def pick(values, times, wanted):
    m = dict(zip(times, values))
    return [m.get(t) for t in wanted]


# --------------------------------------------------------------------------
# raw queries
# --------------------------------------------------------------------------

def test_select_star_one_device(qs):
    df = query_df(qs, "select * from root.q.d1")
    assert sorted(df.columns) == ["Time", "root.q.d1.s1", "root.q.d1.s2", "root.q.d1.s3"]
    assert columns(df) == {"Time": TIMES, "root.q.d1.s1": D1_S1,
                           "root.q.d1.s2": D1_S2, "root.q.d1.s3": D1_S3}
    assert df["root.q.d1.s1"].dtype == "Int32"


def test_select_measurement_across_devices(qs):
    df = query_df(qs, "select s1 from root.q.*")
    assert sorted(df.columns) == ["Time", "root.q.d1.s1", "root.q.d2.s1"]
    # t=5: both selected series are null there, so there is no row.
    times = [t for t in ALL_TIMES if t != 5]
    assert columns(df) == {
        "Time": times,
        "root.q.d1.s1": pick(D1_S1, TIMES, times),
        "root.q.d2.s1": pick(D2_S1, D2_TIMES, times),
    }


def test_select_double_star(qs):
    df = query_df(qs, "select ** from root")
    assert sorted(df.columns) == ["Time", "root.q.d1.s1", "root.q.d1.s2", "root.q.d1.s3",
                                  "root.q.d2.s1", "root.q.d2.s2"]
    got = columns(df)
    assert got["Time"] == ALL_TIMES
    assert got["root.q.d1.s3"] == pick(D1_S3, TIMES, ALL_TIMES)
    assert got["root.q.d2.s2"] == pick(D2_S2, D2_TIMES, ALL_TIMES)


def test_select_nonexistent_series_is_empty(qs):
    df = query_df(qs, "select nope from root.q.d1")
    assert len(df) == 0


def test_where_time_range(qs):
    df = query_df(qs, "select s1, s2 from root.q.d1 where time >= 3 and time < 7")
    assert list(df.columns) == ["Time", "root.q.d1.s1", "root.q.d1.s2"]
    assert columns(df) == {"Time": [3, 4, 5, 6], "root.q.d1.s1": [30, 40, None, 60],
                           "root.q.d1.s2": [3.0, None, 2.5, -1.0]}


def test_where_value_predicates(qs):
    df = query_df(qs, "select s1 from root.q.d1 where s1 > 50")
    assert columns(df) == {"Time": [6, 7, 8, 9, 10], "root.q.d1.s1": [60, 70, 80, 90, 100]}
    df = query_df(qs, "select s1, s2 from root.q.d1 where s2 < 0")
    assert columns(df) == {"Time": [2, 6, 10], "root.q.d1.s1": [20, 60, 100],
                           "root.q.d1.s2": [-7.25, -1.0, -0.5]}
    df = query_df(qs, "select s1 from root.q.d1 where s1 >= 20 and s1 <= 40 or time = 10")
    assert columns(df)["Time"] == [2, 3, 4, 10]
    df = query_df(qs, "select s3 from root.q.d1 where s3 = 'v7'")
    assert columns(df) == {"Time": [7], "root.q.d1.s3": ["v7"]}


def test_order_by_time_desc(qs):
    df = query_df(qs, "select s1, s3 from root.q.d1 order by time desc")
    assert columns(df) == {"Time": TIMES[::-1], "root.q.d1.s1": D1_S1[::-1],
                           "root.q.d1.s3": D1_S3[::-1]}


def test_limit_offset(qs):
    # t=5 has no s1 value, so it is not a row of this query.
    df = query_df(qs, "select s1 from root.q.d1 limit 3 offset 2")
    assert columns(df) == {"Time": [3, 4, 6], "root.q.d1.s1": [30, 40, 60]}
    df = query_df(qs, "select s1, s2 from root.q.d1 limit 3 offset 2")
    assert columns(df) == {"Time": [3, 4, 5], "root.q.d1.s1": [30, 40, None],
                           "root.q.d1.s2": [3.0, None, 2.5]}
    df = query_df(qs, "select s1 from root.q.d1 order by time desc limit 2")
    assert columns(df) == {"Time": [10, 9], "root.q.d1.s1": [100, 90]}
    df = query_df(qs, "select s1 from root.q.d1 limit 5 offset 100")
    assert len(df) == 0
    df = query_df(qs, "select s1 from root.q.d1 where time > 4 limit 2")
    assert columns(df) == {"Time": [6, 7], "root.q.d1.s1": [60, 70]}


def test_align_by_device(qs):
    df = query_df(qs, "select s1, s2 from root.q.* align by device")
    assert list(df.columns) == ["Time", "Device", "s1", "s2"]
    assert columns(df) == {
        "Time": TIMES + D2_TIMES,
        "Device": ["root.q.d1"] * 10 + ["root.q.d2"] * 5,
        "s1": D1_S1 + D2_S1,
        "s2": D1_S2 + D2_S2,
    }


def test_align_by_device_with_time_filter(qs):
    df = query_df(qs, "select s1 from root.q.* where time >= 8 align by device")
    assert columns(df) == {"Time": [8, 9, 10, 8, 20],
                           "Device": ["root.q.d1"] * 3 + ["root.q.d2"] * 2,
                           "s1": [80, 90, 100, 1, 9]}


# --------------------------------------------------------------------------
# aggregates
# --------------------------------------------------------------------------

AGGS = ["count", "sum", "avg", "min_value", "max_value", "first_value", "last_value",
        "min_time", "max_time", "extreme"]

EXPECTED_AGG = {
    "root.q.d1.s1": {"count": 9, "sum": 500.0, "avg": 500.0 / 9, "min_value": 10,
                     "max_value": 100, "first_value": 10, "last_value": 100,
                     "min_time": 1, "max_time": 10, "extreme": 100},
    "root.q.d1.s2": {"count": 8, "sum": 3.0, "avg": 0.375, "min_value": -7.25,
                     "max_value": 4.75, "first_value": 1.5, "last_value": -0.5,
                     "min_time": 1, "max_time": 10, "extreme": -7.25},
    "root.q.d2.s1": {"count": 5, "sum": 19.0, "avg": 3.8, "min_value": -3,
                     "max_value": 9, "first_value": 5, "last_value": 9,
                     "min_time": 2, "max_time": 20, "extreme": 9},
}
AGG_TYPE = {"count": T.INT64, "sum": T.DOUBLE, "avg": T.DOUBLE, "min_time": T.INT64,
            "max_time": T.INT64}


@pytest.mark.parametrize("series", sorted(EXPECTED_AGG))
def test_aggregates(qs, series):
    dev, _, m = series.rpartition(".")
    sql = f"select {', '.join(f'{a}({m})' for a in AGGS)} from {dev}"
    with qs.execute_query_statement(sql) as ds:
        names = ds.get_column_names()
        types = ds.get_column_types()
        df = ds.todf()
    want_names = [f"{a}({series})" for a in AGGS]
    # Aggregation results carry no time column.
    assert names == want_names
    assert len(df) == 1
    src_type = T.DOUBLE if series.endswith("s2") else T.INT32
    for a, name, ty in zip(AGGS, names, types):
        assert ty == AGG_TYPE.get(a, src_type), f"{name}: {ty}"
        got = norm(df[name][0])
        want = EXPECTED_AGG[series][a]
        if isinstance(want, float):
            assert got == pytest.approx(want), f"{name}: {got}"
        else:
            assert got == want, f"{name}: {got}"


def test_aggregate_with_time_filter_and_wildcard(qs):
    df = query_df(qs, "select count(s1), sum(s1) from root.q.* where time <= 4")
    got = {c: norm(df[c][0]) for c in df.columns}
    assert got == {"count(root.q.d1.s1)": 4, "count(root.q.d2.s1)": 2,
                   "sum(root.q.d1.s1)": 100.0, "sum(root.q.d2.s1)": 2.0}


def test_aggregate_on_empty_range(qs):
    df = query_df(qs, "select count(s1), sum(s1), max_value(s1), first_value(s1) "
                      "from root.q.d1 where time > 1000")
    got = {c: norm(df[c][0]) for c in df.columns}
    assert got == {"count(root.q.d1.s1)": 0, "sum(root.q.d1.s1)": None,
                   "max_value(root.q.d1.s1)": None, "first_value(root.q.d1.s1)": None}


def test_count_text_series(qs):
    df = query_df(qs, "select count(s3), first_value(s3), last_value(s3) from root.q.d1")
    assert {c: norm(df[c][0]) for c in df.columns} == {
        "count(root.q.d1.s3)": 9, "first_value(root.q.d1.s3)": "v1",
        "last_value(root.q.d1.s3)": "v10"}


# --------------------------------------------------------------------------
# GROUP BY
# --------------------------------------------------------------------------

def test_group_by_time_windows(qs):
    df = query_df(qs, "select count(s1), sum(s1), avg(s1), max_value(s1), first_value(s1), "
                      "last_value(s1) from root.q.d1 group by ([-9, 16), 5ms)")
    got = columns(df)
    assert got["Time"] == [-9, -4, 1, 6, 11]
    assert got["count(root.q.d1.s1)"] == [0, 0, 4, 5, 0]
    assert got["sum(root.q.d1.s1)"] == [None, None, 100.0, 400.0, None]
    assert got["avg(root.q.d1.s1)"] == [None, None, 25.0, 80.0, None]
    assert got["max_value(root.q.d1.s1)"] == [None, None, 40, 100, None]
    assert got["first_value(root.q.d1.s1)"] == [None, None, 10, 60, None]
    assert got["last_value(root.q.d1.s1)"] == [None, None, 40, 100, None]
    assert df["count(root.q.d1.s1)"].dtype == "int64"


def test_group_by_interior_empty_windows_aligned(qs):
    df = query_df(qs, "select count(s1), min_value(s1), max_time(s2), sum(s2) "
                      "from root.q.d2 group by ([0, 25), 5ms)")
    got = columns(df)
    assert got["Time"] == [0, 5, 10, 15, 20]
    assert got["count(root.q.d2.s1)"] == [2, 2, 0, 0, 1]
    assert got["min_value(root.q.d2.s1)"] == [-3, 1, None, None, 9]
    assert got["max_time(root.q.d2.s2)"] == [4, 8, None, None, 20]
    assert got["sum(root.q.d2.s2)"] == [2.0, -2.5, None, None, 3.5]


# --------------------------------------------------------------------------
# SELECT LAST
# --------------------------------------------------------------------------

def test_select_last(qs):
    with qs.execute_query_statement("select last s1, s2, s3 from root.q.d1") as ds:
        assert ds.get_column_names() == ["Time", "Timeseries", "Value", "DataType"]
        df = ds.todf()
    rows = sorted(df.to_dict("records"), key=lambda r: r["Timeseries"])
    assert rows == [
        {"Time": 10, "Timeseries": "root.q.d1.s1", "Value": "100", "DataType": "INT32"},
        {"Time": 10, "Timeseries": "root.q.d1.s2", "Value": "-0.5", "DataType": "DOUBLE"},
        {"Time": 10, "Timeseries": "root.q.d1.s3", "Value": "v10", "DataType": "TEXT"},
    ]


def test_select_last_skips_trailing_nulls_and_wildcards(qs):
    rows = query_rows(qs, "select last * from root.q.d2")
    got = sorted((r["Timeseries"], r["Time"], r["Value"], r["DataType"]) for r in rows)
    assert got == [("root.q.d2.s1", 20, "9", "INT32"), ("root.q.d2.s2", 20, "3.5", "DOUBLE")]
    rows = query_rows(qs, "select last s1 from root.q.* where time < 5")
    got = sorted((r["Timeseries"], r["Time"], r["Value"]) for r in rows)
    assert got == [("root.q.d1.s1", 4, "40"), ("root.q.d2.s1", 4, "-3")]


# --------------------------------------------------------------------------
# DELETE, FLUSH
# --------------------------------------------------------------------------

def test_delete_range_then_query(qs):
    dev = "root.qdel.d1"
    qs.insert_tablet(Tablet(dev, ["s1", "s2"], [T.INT64, T.INT64],
                            [[t, t * 2] for t in range(1, 11)], list(range(1, 11))))
    qs.execute_non_query_statement(f"DELETE FROM {dev}.s1 WHERE time >= 3 AND time <= 5")
    df = query_df(qs, f"select s1, s2 from {dev}")
    got = columns(df)
    assert got["Time"] == list(range(1, 11))
    assert got[f"{dev}.s1"] == [1, 2, None, None, None, 6, 7, 8, 9, 10]
    assert got[f"{dev}.s2"] == [t * 2 for t in range(1, 11)]
    assert norm(query_df(qs, f"select count(s1) from {dev}")[f"count({dev}.s1)"][0]) == 7
    qs.execute_non_query_statement("FLUSH")
    assert columns(query_df(qs, f"select s1, s2 from {dev}")) == got
    # Rewriting a deleted point makes it visible again.
    qs.insert_record(dev, 4, ["s1"], [T.INT64], [400])
    assert columns(query_df(qs, f"select s1 from {dev} where time >= 3 and time <= 5")) == {
        "Time": [4], f"{dev}.s1": [400]}
    # DELETE without WHERE removes every point of the series.
    qs.execute_non_query_statement(f"DELETE FROM {dev}.s2")
    assert len(query_df(qs, f"select s2 from {dev}")) == 0
    assert columns(query_df(qs, f"select s1 from {dev}"))[f"{dev}.s1"] == [1, 2, 400, 6, 7, 8, 9, 10]


def test_overwrite_same_timestamp_last_write_wins(qs):
    dev = "root.qover.d1"
    qs.insert_record(dev, 1, ["s1"], [T.INT64], [1])
    qs.execute_non_query_statement("FLUSH")
    qs.insert_record(dev, 1, ["s1"], [T.INT64], [2])
    assert columns(query_df(qs, f"select s1 from {dev}")) == {"Time": [1], f"{dev}.s1": [2]}
    qs.execute_non_query_statement("FLUSH")
    assert columns(query_df(qs, f"select s1 from {dev}")) == {"Time": [1], f"{dev}.s1": [2]}
    assert norm(query_df(qs, f"select count(s1) from {dev}")[f"count({dev}.s1)"][0]) == 1


FLUSH_QUERIES = [
    "select * from root.q.d1",
    "select s1 from root.q.*",
    "select ** from root.q",
    "select s1, s2 from root.q.d1 where time >= 3 and time < 7",
    "select s1 from root.q.d1 where s1 > 50",
    "select s1, s3 from root.q.d1 order by time desc",
    "select s1 from root.q.d1 limit 3 offset 2",
    "select s1, s2 from root.q.* align by device",
    "select count(s1), sum(s2), avg(s1), extreme(s2), min_time(s1) from root.q.d1",
    "select count(s1), sum(s1) from root.q.d1 group by ([-9, 16), 5ms)",
    "select last * from root.q.*",
]


def test_flush_then_identical_results(tmp_path):
    factory = ServerFactory(tmp_path)
    srv = factory("f")
    s = srv.session()
    try:
        write_dataset(s, flush_between=False)
        before = [query_df(s, q) for q in FLUSH_QUERIES]
        assert all(len(df) > 0 for df in before)
        s.execute_non_query_statement("FLUSH")
        after = [query_df(s, q) for q in FLUSH_QUERIES]
        for q, a, b in zip(FLUSH_QUERIES, before, after):
            pd.testing.assert_frame_equal(a, b, obj=q)
        # ... and again after a clean restart (data read back from Parquet).
        s.close()
        srv.restart()
        s = srv.session()
        restarted = [query_df(s, q) for q in FLUSH_QUERIES]
        for q, a, b in zip(FLUSH_QUERIES, before, restarted):
            pd.testing.assert_frame_equal(a, b, obj=q)
    finally:
        s.close()
        factory.close()
