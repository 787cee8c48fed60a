"""The client RPCs beyond SQL that the official Python client exposes (issue 9's
"whole client RPC surface"): executeRawDataQueryV2, executeLastDataQueryV2 and
the testInsert* calls. The device-template calls are in test_templates.py."""

import pytest
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from helpers import query_rows

T = TSDataType


@pytest.fixture(scope="module")
def data(server):
    s = server.session()
    s.execute_non_query_statement("CREATE DATABASE root.rpc")
    tablet = Tablet(
        "root.rpc.d1", ["s1", "s2"], [T.INT64, T.TEXT],
        [[1, "a"], [2, None], [3, "c"], [4, "d"]], [10, 20, 30, 40])
    s.insert_tablet(tablet)
    s.insert_record("root.rpc.d2", 25, ["s1"], [T.DOUBLE], [2.5])
    s.close()
    return server


def rows(ds):
    out = []
    with ds:
        while ds.has_next():
            r = ds.next()
            out.append((r.get_timestamp(), [str(f) for f in r.get_fields()]))
    return out


def test_raw_data_query_is_half_open_and_aligned_by_time(data):
    s = data.session()
    try:
        ds = s.execute_raw_data_query(["root.rpc.d1.s1", "root.rpc.d2.s1", "root.rpc.d1.s2"], 20, 40)
        assert ds.get_column_names() == ["Time", "root.rpc.d1.s1", "root.rpc.d2.s1", "root.rpc.d1.s2"]
        assert rows(ds) == [
            (20, ["2", "None", "None"]),
            (25, ["None", "2.5", "None"]),
            (30, ["3", "None", "c"]),
        ]
    finally:
        s.close()


def test_raw_data_query_pages_through_fetch_results(data):
    s = data.session()
    try:
        s.execute_non_query_statement("CREATE TIMESERIES root.rpc.big.s WITH DATATYPE=INT32")
        times = list(range(0, 12000))
        s.insert_tablet(Tablet("root.rpc.big", ["s"], [T.INT32], [[t % 7] for t in times], times))
        got = rows(s.execute_raw_data_query(["root.rpc.big.s"], 100, 11000))
        assert [t for t, _ in got] == list(range(100, 11000))
        assert got[5] == (105, [str(105 % 7)])
    finally:
        s.close()


def test_last_data_query_keeps_series_at_or_after_the_time(data):
    s = data.session()
    try:
        ds = s.execute_last_data_query(["root.rpc.d1.s1", "root.rpc.d1.s2", "root.rpc.d2.s1"], 30)
        got = rows(ds)
        assert got == [
            (40, ["root.rpc.d1.s1", "4", "INT64"]),
            (40, ["root.rpc.d1.s2", "d", "TEXT"]),
        ]
        everything = rows(s.execute_last_data_query(["root.rpc.d2.s1"], 0))
        assert everything == [(25, ["root.rpc.d2.s1", "2.5", "DOUBLE"])]
    finally:
        s.close()


def test_raw_data_query_with_a_bad_path_is_an_error_not_a_lost_connection(data):
    s = data.session()
    try:
        with pytest.raises(StatementExecutionException) as ei:
            s.execute_raw_data_query(["rpc.d1.s1"], 0, 10)
        assert str(ei.value).startswith("509: ")
        # The connection goes on.
        assert query_rows(s, "SELECT s1 FROM root.rpc.d2")[0]["root.rpc.d2.s1"] == 2.5
    finally:
        s.close()


def test_test_inserts_succeed_and_write_nothing(data):
    s = data.session()
    try:
        s.test_insert_tablet(Tablet("root.rpc.t", ["s"], [T.INT32], [[1]], [1]))
        s.test_insert_tablets([Tablet("root.rpc.t", ["s"], [T.INT32], [[2]], [2])])
        s.test_insert_record("root.rpc.t", 3, ["s"], [T.INT32], [3])
        s.test_insert_records(["root.rpc.t"], [4], [["s"]], [[T.INT32]], [[4]])
        assert query_rows(s, "SHOW TIMESERIES root.rpc.t.**") == []
    finally:
        s.close()
