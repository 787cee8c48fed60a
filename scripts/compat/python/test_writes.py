"""Schema statements (SQL and RPC), SHOW/COUNT contents, write errors and
partial batch failures."""

import pytest
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.Tablet import Tablet

from helpers import query_df, query_rows

T = TSDataType
TIMESERIES_COLUMNS = [
    "Timeseries", "Alias", "Database", "DataType", "Encoding", "Compression",
    "Tags", "Attributes", "Deadband", "DeadbandParameters", "ViewType",
]


def ts_types(session, pattern):
    rows = query_rows(session, f"SHOW TIMESERIES {pattern}")
    return {r["Timeseries"]: r["DataType"] for r in rows}


def databases(session):
    return sorted(r["Database"] for r in query_rows(session, "SHOW DATABASES"))


def count(session, sql):
    df = query_df(session, sql)
    assert len(df) == 1 and len(df.columns) == 1
    return int(df.iloc[0, 0])


def raises(fn, *args):
    with pytest.raises(StatementExecutionException) as ei:
        fn(*args)
    return str(ei.value)


# --------------------------------------------------------------------------
# schema via SQL
# --------------------------------------------------------------------------

def test_sql_schema_lifecycle(session):
    x = session.execute_non_query_statement
    assert x("CREATE DATABASE root.wsql") == 0
    assert "root.wsql" in databases(session)
    x("CREATE TIMESERIES root.wsql.d1.s1 WITH DATATYPE=INT32, ENCODING=RLE")
    x("CREATE TIMESERIES root.wsql.d1.s2 WITH DATATYPE=DOUBLE")
    x("CREATE ALIGNED TIMESERIES root.wsql.d2(s1 INT32, s2 FLOAT, s3 TEXT)")

    with session.execute_query_statement("SHOW TIMESERIES root.wsql.**") as ds:
        assert "Time" not in ds.get_column_names()
        df = ds.todf()
    assert list(df.columns) == TIMESERIES_COLUMNS
    rows = {r["Timeseries"]: r for r in df.to_dict("records")}
    assert sorted(rows) == ["root.wsql.d1.s1", "root.wsql.d1.s2", "root.wsql.d2.s1",
                            "root.wsql.d2.s2", "root.wsql.d2.s3"]
    assert rows["root.wsql.d1.s1"]["DataType"] == "INT32"
    assert rows["root.wsql.d1.s1"]["Encoding"] == "RLE"
    assert rows["root.wsql.d1.s2"]["DataType"] == "DOUBLE"
    assert rows["root.wsql.d2.s2"]["DataType"] == "FLOAT"
    assert rows["root.wsql.d2.s3"]["DataType"] == "TEXT"
    assert all(r["Database"] == "root.wsql" for r in rows.values())

    devs = {r["Device"]: r["IsAligned"] for r in query_rows(session, "SHOW DEVICES root.wsql.**")}
    assert devs == {"root.wsql.d1": "false", "root.wsql.d2": "true"}
    assert count(session, "COUNT TIMESERIES root.wsql.**") == 5
    assert count(session, "COUNT DEVICES root.wsql.**") == 2
    # path-scoped SHOW TIMESERIES
    assert sorted(ts_types(session, "root.wsql.d1.*")) == ["root.wsql.d1.s1", "root.wsql.d1.s2"]

    x("DELETE TIMESERIES root.wsql.d1.s2")
    assert sorted(ts_types(session, "root.wsql.**")) == [
        "root.wsql.d1.s1", "root.wsql.d2.s1", "root.wsql.d2.s2", "root.wsql.d2.s3"]
    assert count(session, "COUNT TIMESERIES root.wsql.**") == 4

    x("INSERT INTO root.wsql.d1(timestamp, s1) VALUES (1, 10)")
    x("DROP DATABASE root.wsql")
    assert "root.wsql" not in databases(session)
    assert ts_types(session, "root.wsql.**") == {}
    assert count(session, "COUNT DEVICES root.wsql.**") == 0
    # Data went with the database: re-creating the series yields no old rows.
    x("CREATE TIMESERIES root.wsql.d1.s1 WITH DATATYPE=INT32")
    assert len(query_df(session, "select s1 from root.wsql.d1")) == 0
    x("DROP DATABASE root.wsql")


def test_show_databases_lists_all(session):
    for db in ("root.wshow_a", "root.wshow_b"):
        session.execute_non_query_statement(f"CREATE DATABASE {db}")
    df = query_df(session, "SHOW DATABASES")
    assert list(df.columns)[0] == "Database"
    assert {"root.wshow_a", "root.wshow_b"} <= set(df["Database"])
    assert len(df["Database"]) == len(set(df["Database"]))


def test_create_existing_series_error_names_path(session):
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.wdup.d1.s1 WITH DATATYPE=INT64")
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(
            "CREATE TIMESERIES root.wdup.d1.s1 WITH DATATYPE=INT64")
    msg = str(ei.value)
    assert msg.startswith("503: "), msg
    assert "root.wdup.d1.s1" in msg
    # The RPC path gives the same status.
    msg = raises(session.create_time_series, "root.wdup.d1.s1", T.INT64,
                 TSEncoding.PLAIN, Compressor.SNAPPY)
    assert msg.startswith("503: ") and "root.wdup.d1.s1" in msg, msg
    # The original series is untouched.
    assert ts_types(session, "root.wdup.**") == {"root.wdup.d1.s1": "INT64"}


def test_create_existing_database_error(session):
    session.execute_non_query_statement("CREATE DATABASE root.wdupdb")
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement("CREATE DATABASE root.wdupdb")
    msg = str(ei.value)
    assert not msg.startswith("200"), msg
    assert "root.wdupdb" in msg, msg
    msg = raises(session.set_storage_group, "root.wdupdb")
    assert "root.wdupdb" in msg, msg


# --------------------------------------------------------------------------
# schema via RPC
# --------------------------------------------------------------------------

def test_rpc_schema_lifecycle(session):
    session.set_storage_group("root.wrpc")
    assert "root.wrpc" in databases(session)
    session.create_time_series("root.wrpc.d1.s1", T.INT32, TSEncoding.RLE, Compressor.SNAPPY)
    session.create_aligned_time_series(
        "root.wrpc.d2", ["a", "b"], [T.FLOAT, T.TEXT],
        [TSEncoding.GORILLA, TSEncoding.PLAIN], [Compressor.SNAPPY, Compressor.SNAPPY])
    session.create_multi_time_series(
        ["root.wrpc.d3.m1", "root.wrpc.d3.m2", "root.wrpc.d4.m1"],
        [T.INT64, T.BOOLEAN, T.DOUBLE],
        [TSEncoding.PLAIN] * 3, [Compressor.SNAPPY] * 3)
    assert ts_types(session, "root.wrpc.**") == {
        "root.wrpc.d1.s1": "INT32", "root.wrpc.d2.a": "FLOAT", "root.wrpc.d2.b": "TEXT",
        "root.wrpc.d3.m1": "INT64", "root.wrpc.d3.m2": "BOOLEAN", "root.wrpc.d4.m1": "DOUBLE",
    }
    devs = {r["Device"]: r["IsAligned"] for r in query_rows(session, "SHOW DEVICES root.wrpc.**")}
    assert devs == {"root.wrpc.d1": "false", "root.wrpc.d2": "true",
                    "root.wrpc.d3": "false", "root.wrpc.d4": "false"}

    session.insert_record("root.wrpc.d3", 5, ["m1"], [T.INT64], [7])
    session.insert_record("root.wrpc.d3", 6, ["m1"], [T.INT64], [8])
    session.delete_data(["root.wrpc.d3.m1"], 5)
    assert list(query_df(session, "select m1 from root.wrpc.d3")["Time"]) == [6]
    session.insert_record("root.wrpc.d3", 7, ["m1"], [T.INT64], [9])
    session.delete_data_in_range(["root.wrpc.d3.m1"], 7, 7)
    assert list(query_df(session, "select m1 from root.wrpc.d3")["Time"]) == [6]

    session.delete_time_series(["root.wrpc.d3.m2", "root.wrpc.d4.m1"])
    assert sorted(ts_types(session, "root.wrpc.**")) == [
        "root.wrpc.d1.s1", "root.wrpc.d2.a", "root.wrpc.d2.b", "root.wrpc.d3.m1"]
    session.delete_storage_group("root.wrpc")
    assert "root.wrpc" not in databases(session)
    assert ts_types(session, "root.wrpc.**") == {}


def test_delete_missing_series_is_error(session):
    msg = raises(session.delete_time_series, ["root.wnone.d1.s1"])
    assert "root.wnone.d1.s1" in msg, msg


# --------------------------------------------------------------------------
# type mismatch and batch failures
# --------------------------------------------------------------------------

def test_type_mismatch_names_series_session_usable(session):
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.wmis.d1.s1 WITH DATATYPE=INT64")
    session.execute_non_query_statement("INSERT INTO root.wmis.d1(timestamp, s1) VALUES (1, 1)")
    # SQL
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(
            "INSERT INTO root.wmis.d1(timestamp, s1) VALUES (2, 'not a number')")
    assert "root.wmis.d1.s1" in str(ei.value), str(ei.value)
    # insert_str_record: a non-numeric string for an INT64 series
    msg = raises(session.insert_str_record, "root.wmis.d1", 3, ["s1"], ["abc"])
    assert "root.wmis.d1.s1" in msg, msg
    # insert_record with a declared TEXT type
    msg = raises(session.insert_record, "root.wmis.d1", 4, ["s1"], [T.TEXT], ["abc"])
    assert "root.wmis.d1.s1" in msg, msg
    # insert_tablet with a TEXT column
    msg = raises(session.insert_tablet,
                 Tablet("root.wmis.d1", ["s1"], [T.TEXT], [["x"]], [5]))
    assert "root.wmis.d1.s1" in msg, msg
    # Nothing of the failed writes landed; the session keeps working.
    session.execute_non_query_statement("INSERT INTO root.wmis.d1(timestamp, s1) VALUES (6, 6)")
    df = query_df(session, "select s1 from root.wmis.d1")
    assert list(df["Time"]) == [1, 6]
    assert list(df["root.wmis.d1.s1"]) == [1, 6]
    assert ts_types(session, "root.wmis.**") == {"root.wmis.d1.s1": "INT64"}


def test_insert_tablets_partial_failure_keeps_good_device(session):
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.wpart.bad.s1 WITH DATATYPE=INT64")
    good = Tablet("root.wpart.good", ["s1"], [T.INT64], [[10], [20], [30]], [1, 2, 3])
    bad = Tablet("root.wpart.bad", ["s1"], [T.TEXT], [["x"], ["y"]], [1, 2])
    with pytest.raises(StatementExecutionException) as ei:
        session.insert_tablets([good, bad])
    msg = str(ei.value)
    assert msg.startswith("302: "), msg
    assert "root.wpart.bad" in msg, msg
    assert "root.wpart.good" not in msg, msg
    df = query_df(session, "select s1 from root.wpart.good")
    assert list(df["Time"]) == [1, 2, 3]
    assert list(df["root.wpart.good.s1"]) == [10, 20, 30]
    assert len(query_df(session, "select s1 from root.wpart.bad")) == 0
    # session still usable
    session.insert_tablets([Tablet("root.wpart.bad", ["s1"], [T.INT64], [[5]], [9])])
    assert list(query_df(session, "select s1 from root.wpart.bad")["root.wpart.bad.s1"]) == [5]


def test_insert_records_partial_failure_keeps_good_device(session):
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.wpr.bad.s1 WITH DATATYPE=BOOLEAN")
    with pytest.raises(StatementExecutionException) as ei:
        session.insert_records(
            ["root.wpr.good", "root.wpr.bad", "root.wpr.good"], [1, 1, 2],
            [["s1"], ["s1"], ["s1"]], [[T.DOUBLE], [T.DOUBLE], [T.DOUBLE]],
            [[1.5], [2.5], [3.5]])
    msg = str(ei.value)
    assert msg.startswith("302: ") and "root.wpr.bad" in msg, msg
    df = query_df(session, "select s1 from root.wpr.good")
    assert list(df["Time"]) == [1, 2]
    assert list(df["root.wpr.good.s1"]) == [1.5, 3.5]
    assert len(query_df(session, "select s1 from root.wpr.bad")) == 0


def test_auto_create_inference_via_sql(session):
    session.execute_non_query_statement(
        "INSERT INTO root.winf.d1(timestamp, i, f, b, t) VALUES (1, 42, 1.5, true, 'txt')")
    assert ts_types(session, "root.winf.**") == {
        "root.winf.d1.i": "INT64", "root.winf.d1.f": "DOUBLE",
        "root.winf.d1.b": "BOOLEAN", "root.winf.d1.t": "TEXT"}
    assert "root.winf" in databases(session)
    rows = query_rows(session, "select i, f, b, t from root.winf.d1")
    assert rows == [{"Time": 1, "root.winf.d1.i": 42, "root.winf.d1.f": 1.5,
                     "root.winf.d1.b": True, "root.winf.d1.t": "txt"}]


def test_aligned_insert_into_nonaligned_device_rejected(session):
    """IoTDB refuses aligned writes to a non-aligned device (and vice versa)."""
    session.execute_non_query_statement(
        "CREATE TIMESERIES root.walign.na.s1 WITH DATATYPE=INT64")
    session.execute_non_query_statement(
        "CREATE ALIGNED TIMESERIES root.walign.al(s1 INT64)")
    problems = []
    for fn, dev in [(session.insert_aligned_record, "root.walign.na"),
                    (session.insert_record, "root.walign.al")]:
        try:
            fn(dev, 1, ["s1"], [T.INT64], [1])
            problems.append(f"{fn.__name__}({dev}) accepted")
        except StatementExecutionException as e:
            if dev not in str(e):
                problems.append(f"{fn.__name__}({dev}): message lacks the device: {e}")
    assert not problems, problems
