"""FILL, GROUP BY LEVEL and HAVING through the official client's
execute_query_statement(...).todf(): values, column names and types as
IoTDB prints them."""

from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from helpers import columns, expect_error, query_df

T = TSDataType


def write(session):
    session.execute_non_query_statement("CREATE DATABASE root.f")
    # root.f.d1: s1 DOUBLE with gaps, s2 INT64 with gaps (written as one tablet with nulls).
    session.insert_tablet(Tablet(
        "root.f.d1", ["s1", "s2"], [T.DOUBLE, T.INT64],
        [[1.0, 10], [None, None], [None, 30], [4.0, None], [None, 50]],
        [1, 2, 3, 4, 5]))
    # Level data: root.f.<dev>.s3 INT32 under two groups of devices.
    for device, rows in {"root.f.g1": [(1, 1), (2, 2)],
                         "root.f.g2": [(1, 10), (3, 30)]}.items():
        session.insert_tablet(Tablet(device, ["s3"], [T.INT32],
                                     [[v] for _, v in rows], [t for t, _ in rows]))


def test_fill_previous_and_linear_raw_and_grouped(session):
    write(session)
    df = query_df(session, "select s1, s2 from root.f.d1 where time >= 2 fill(previous)")
    # The row at time 1 is outside the WHERE range: nothing fills time 2.
    assert columns(df) == {"Time": [3, 4, 5], "root.f.d1.s1": [None, 4.0, 4.0],
                           "root.f.d1.s2": [30, 30, 50]}
    df = query_df(session, "select s1, s2 from root.f.d1 fill(linear)")
    assert columns(df) == {"Time": [1, 3, 4, 5], "root.f.d1.s1": [1.0, 3.0, 4.0, None],
                           "root.f.d1.s2": [10, 30, 40, 50]}
    assert df["root.f.d1.s2"].dtype.kind == "i"  # interpolated INT64 stays an integer
    df = query_df(session,
                  "select avg(s1) from root.f.d1 group by ([1, 6), 1ms) fill(linear)")
    assert list(df.columns) == ["Time", "avg(root.f.d1.s1)"]
    assert columns(df)["avg(root.f.d1.s1)"] == [1.0, 2.0, 3.0, 4.0, None]
    df = query_df(session,
                  "select avg(s1) from root.f.d1 group by ([1, 6), 1ms) fill(previous, 1ms)")
    assert columns(df)["avg(root.f.d1.s1)"] == [1.0, 1.0, None, 4.0, 4.0]


def test_group_by_level_names_and_values(session):
    df = query_df(session, "select count(s3), sum(s3) from root.f.* group by level = 1")
    assert list(df.columns) == ["count(root.f.*.s3)", "sum(root.f.*.s3)"]
    assert columns(df) == {"count(root.f.*.s3)": [4], "sum(root.f.*.s3)": [43.0]}
    df = query_df(session, "select avg(s3) from root.** group by ([1, 4), 1ms), level = 0")
    assert list(df.columns) == ["Time", "avg(root.*.*.s3)"]
    assert columns(df)["avg(root.*.*.s3)"] == [5.5, 2.0, 30.0]
    df = query_df(session, "select count(*) from root.f.* group by level = 2")
    assert list(df.columns) == ["count(root.*.d1.*)", "count(root.*.g1.*)",
                                "count(root.*.g2.*)"]
    assert columns(df) == {"count(root.*.d1.*)": [5], "count(root.*.g1.*)": [2],
                           "count(root.*.g2.*)": [2]}


def test_having_filters_windows(session):
    df = query_df(session, "select count(s3) from root.f.* group by ([1, 4), 1ms), "
                           "level = 1 having count(s3) > 1")
    assert columns(df) == {"Time": [1], "count(root.f.*.s3)": [2]}
    expect_error(session, "select s3 from root.f.g1 having count(s3) > 1", 701)
    expect_error(session, "select s3 from root.f.* group by level = 1", 701)
