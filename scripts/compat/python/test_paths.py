"""IoTDB's tree-model path rules through the official client: a measurement
directly under a database (the database node is also a device) on every write
RPC, wildcards inside a node, back-quoted nodes, illegal paths (509 on the
session API, 700 with a position in SQL), and the schema-navigation
statements with IoTDB's column names."""

import numpy as np
import pytest
from iotdb.dbapi import connect
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.Tablet import Tablet

from helpers import expect_error, query_df, query_rows

T = TSDataType


def raises(fn, *args):
    with pytest.raises(StatementExecutionException) as ei:
        fn(*args)
    return str(ei.value)


def test_measurement_under_database_on_every_write_rpc(session):
    session.set_storage_group("root.pwt1")
    # createTimeseries and createMultiTimeseries with a series right under the database.
    session.create_time_series("root.pwt1.temperature", T.DOUBLE, TSEncoding.GORILLA, Compressor.LZ4)
    session.create_multi_time_series(
        ["root.pwt1.humidity", "root.pwt1.status"],
        [T.FLOAT, T.BOOLEAN],
        [TSEncoding.GORILLA, TSEncoding.RLE],
        [Compressor.LZ4, Compressor.LZ4],
    )
    # insertRecord, insertStringRecord, insertTablet (and a numpy tablet) on device root.pwt1.
    session.insert_record("root.pwt1", 1, ["temperature", "humidity"], [T.DOUBLE, T.FLOAT], [20.5, 0.5])
    session.insert_str_record("root.pwt1", 2, ["temperature", "status"], ["21.5", "true"])
    session.insert_tablet(
        Tablet("root.pwt1", ["temperature", "humidity"], [T.DOUBLE, T.FLOAT], [[22.5, 0.25], [23.5, 0.75]], [3, 4])
    )
    session.insert_tablet(
        NumpyTablet(
            "root.pwt1",
            ["temperature"],
            [T.DOUBLE],
            [np.array([24.5], dtype=">f8")],
            np.array([5], dtype=">i8"),
        )
    )
    # insertRecords with the database device beside an ordinary one.
    session.insert_records(
        ["root.pwt1", "root.pwt1.d1"], [6, 6], [["temperature"], ["s1"]], [[T.DOUBLE], [T.INT64]], [[25.5], [7]]
    )

    df = query_df(session, "SELECT temperature, humidity, status FROM root.pwt1")
    assert list(df.columns) == ["Time", "root.pwt1.temperature", "root.pwt1.humidity", "root.pwt1.status"]
    assert df["Time"].tolist() == [1, 2, 3, 4, 5, 6]
    assert df["root.pwt1.temperature"].tolist() == [20.5, 21.5, 22.5, 23.5, 24.5, 25.5]

    series = {r["Timeseries"]: r["Database"] for r in query_rows(session, "SHOW TIMESERIES root.pwt1.**")}
    assert series == {
        "root.pwt1.temperature": "root.pwt1",
        "root.pwt1.humidity": "root.pwt1",
        "root.pwt1.status": "root.pwt1",
        "root.pwt1.d1.s1": "root.pwt1",
    }
    devices = [r["Device"] for r in query_rows(session, "SHOW DEVICES root.pwt1")]
    assert devices == ["root.pwt1"]

    # deleteData and deleteTimeseries on a series under the database.
    session.delete_data(["root.pwt1.temperature"], 3)
    df = query_df(session, "SELECT temperature FROM root.pwt1")
    assert df["Time"].tolist() == [4, 5, 6]
    session.delete_time_series(["root.pwt1.status"])
    assert "root.pwt1.status" not in {r["Timeseries"] for r in query_rows(session, "SHOW TIMESERIES root.pwt1.*")}


def test_measurement_under_database_through_the_cursor(server, session):
    session.execute_non_query_statement("CREATE DATABASE root.pcur")
    conn = connect(server.host, server.port, "root", "root")
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO root.pcur(time, speed) VALUES (1, 3), (2, 4)")
        cur.execute("SELECT speed FROM root.pcur")
        assert [d[0] for d in cur.description] == ["Time", "root.pcur.speed"]
        assert [tuple(r) for r in cur.fetchall()] == [(1, 3), (2, 4)]
        cur.close()
    finally:
        conn.close()


def test_illegal_paths_on_the_session_api(session):
    # IoTDB refuses a path it cannot read (509), and keeps serving.
    assert raises(session.insert_record, "root.pbad.d-1", 1, ["s1"], [T.INT32], [1]).startswith("509: ")
    assert raises(session.set_storage_group, "root").startswith("509: ")
    assert raises(
        session.create_time_series, "root.pbad.12.s1", T.INT32, TSEncoding.RLE, Compressor.LZ4
    ).startswith("509: ")
    # A quoted node is legal, and names the same device as SQL does.
    session.insert_record("root.pbad.`d-1`", 1, ["s1"], [T.INT32], [1])
    rows = query_rows(session, "SELECT s1 FROM root.pbad.`d-1`")
    assert rows == [{"Time": 1, "root.pbad.`d-1`.s1": 1}]


def test_sql_path_errors_carry_a_position(session):
    message = expect_error(session, "SELECT * FROM root.sg.12", 700)
    assert message.startswith("line 1:23: ")
    message = expect_error(session, "SHOW TIMESERIES root.sg.*a*b", 700)
    assert message.startswith("line 1:25: ")
    # The session goes on.
    assert query_df(session, "SHOW VERSION").shape[0] == 1


def test_wildcards_inside_nodes_and_navigation(session):
    session.insert_records(
        ["root.pnav.device1", "root.pnav.device2", "root.pnav.other"],
        [1, 1, 1],
        [["temperature", "tilt"], ["temperature"], ["temperature"]],
        [[T.DOUBLE, T.INT64], [T.DOUBLE], [T.DOUBLE]],
        [[1.5, 2], [2.5], [3.5]],
    )
    df = query_df(session, "SELECT temperature FROM root.pnav.d*")
    assert list(df.columns) == ["Time", "root.pnav.device1.temperature", "root.pnav.device2.temperature"]
    df = query_df(session, "SELECT t* FROM root.pnav.device1")
    assert list(df.columns) == ["Time", "root.pnav.device1.temperature", "root.pnav.device1.tilt"]

    df = query_df(session, "SHOW CHILD PATHS root.pnav")
    assert list(df.columns) == ["ChildPaths", "NodeTypes"]
    assert df.to_dict("records") == [
        {"ChildPaths": "root.pnav.device1", "NodeTypes": "DEVICE"},
        {"ChildPaths": "root.pnav.device2", "NodeTypes": "DEVICE"},
        {"ChildPaths": "root.pnav.other", "NodeTypes": "DEVICE"},
    ]
    df = query_df(session, "SHOW CHILD NODES root.pnav.d*")
    assert list(df.columns) == ["ChildNodes"]
    assert df["ChildNodes"].tolist() == ["temperature", "tilt"]

    df = query_df(session, "COUNT NODES root.pnav.** LEVEL=2")
    assert list(df.columns) == ["count(nodes)"]
    assert df.iloc[0, 0] == 3
    df = query_df(session, "COUNT TIMESERIES root.pnav.** GROUP BY LEVEL=2")
    assert list(df.columns) == ["Column", "count(timeseries)"]
    assert df.to_dict("records") == [
        {"Column": "root.pnav.device1", "count(timeseries)": 2},
        {"Column": "root.pnav.device2", "count(timeseries)": 1},
        {"Column": "root.pnav.other", "count(timeseries)": 1},
    ]
    df = query_df(session, "COUNT DATABASES root.pnav")
    assert list(df.columns) == ["count(database)"]
    assert df.iloc[0, 0] == 1
