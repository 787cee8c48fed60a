"""Session lifecycle, statements and result sets through the official
`iotdb.Session.Session` client (apache-iotdb 2.0.11)."""

import subprocess

import numpy as np
import pytest
from iotdb.Session import Session
from iotdb.utils.exception import IoTDBConnectionException, StatementExecutionException
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.SessionDataSet import SessionDataSet
from iotdb.utils.Tablet import Tablet

from conftest import duetd_bin
from helpers import count_fetches, expect_error, query_df, query_rows

CLUSTER_COLUMNS = [
    "NodeID", "NodeType", "Status", "InternalAddress", "InternalPort", "Version", "BuildInfo",
]

# Step 2 of the seed: the source clause lacks its closing ')'.
BROKEN_SEED = """create pipe AB
with source (
  'source.mode.double-living' ='true'
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='iotdb-2',
  'sink.port'='6667'
)"""


def server_version():
    # `duetd -V` prints "duetd <version> (<build>)"
    out = subprocess.run([str(duetd_bin()), "-V"], capture_output=True, text=True, check=True)
    parts = out.stdout.split()
    assert parts[0] == "duetd", out.stdout
    return parts[1]


# --------------------------------------------------------------------------
# open / close
# --------------------------------------------------------------------------

@pytest.mark.parametrize("compact", [False, True], ids=["binary", "compact"])
def test_open_query_close(server, compact):
    s = Session(server.host, server.port, "root", "root")
    s.open(enable_rpc_compression=compact)
    try:
        assert s.is_open()
        rows = query_rows(s, "SHOW VERSION")
        assert len(rows) == 1 and rows[0]["Version"] == server_version()
        assert s.execute_non_query_statement("SHOW CLUSTERID") == 0
    finally:
        s.close()
    assert not s.is_open()
    # A closed session cannot be used any more.
    with pytest.raises(IoTDBConnectionException):
        s.execute_query_statement("SHOW VERSION")


def test_many_sessions_and_reopen(server):
    sessions = [server.session(compact=bool(i % 2)) for i in range(4)]
    try:
        ids = {query_rows(s, "SHOW CLUSTERID")[0]["ClusterId"] for s in sessions}
        assert len(ids) == 1 and next(iter(ids))
    finally:
        for s in sessions:
            s.close()
    s = server.session()
    try:
        assert query_rows(s, "SHOW CLUSTERID")[0]["ClusterId"] in ids
    finally:
        s.close()


def test_wrong_password_801(server):
    s = Session(server.host, server.port, "root", "not-the-password")
    with pytest.raises(StatementExecutionException) as ei:
        s.open(False)
    assert str(ei.value) == "801: Authentication failed."
    assert not s.is_open()


def test_unknown_user_answers_as_a_wrong_password(server):
    # One answer for both, so a login reveals no user names (issue 13).
    s = Session(server.host, server.port, "nobody_here", "whatever")
    with pytest.raises(StatementExecutionException) as ei:
        s.open(False)
    assert str(ei.value) == "801: Authentication failed."


def test_wrong_password_compact_801(server):
    s = Session(server.host, server.port, "root", "nope")
    with pytest.raises(StatementExecutionException) as ei:
        s.open(True)
    assert str(ei.value).startswith("801: ")


# --------------------------------------------------------------------------
# SHOW statements and result sets
# --------------------------------------------------------------------------

def test_show_version(session):
    with session.execute_query_statement("SHOW VERSION") as ds:
        # SHOW statements carry ignoreTimeStamp=true: no Time column.
        assert ds.get_column_names() == ["Version", "BuildInfo"]
        assert ds.get_column_types() == [TSDataType.TEXT, TSDataType.TEXT]
        df = ds.todf()
    assert list(df.columns) == ["Version", "BuildInfo"]
    assert len(df) == 1
    assert df["Version"][0] == server_version()
    assert df["BuildInfo"][0]


def test_show_version_rows_via_next(session):
    with session.execute_query_statement("SHOW VERSION") as ds:
        assert ds.has_next()
        rec = ds.next()
        fields = [str(f) for f in rec.get_fields()]
        assert fields[0] == server_version()
        assert not ds.has_next()


def test_show_cluster(server, session):
    with session.execute_query_statement("SHOW CLUSTER") as ds:
        assert ds.get_column_names() == CLUSTER_COLUMNS
        types = ds.get_column_types()
        df = ds.todf()
    assert types[0] == TSDataType.INT32 and types[4] == TSDataType.INT32
    assert list(df.columns) == CLUSTER_COLUMNS
    assert df["NodeID"].dtype == np.int32
    assert df["InternalPort"].dtype == np.int32
    rows = df.to_dict("records")
    assert [r["NodeType"] for r in rows] == ["ConfigNode", "DataNode"]
    assert all(r["Status"] == "Running" for r in rows)
    assert all(r["InternalAddress"] == server.internal_address for r in rows)
    assert all(r["InternalPort"] > 0 for r in rows)
    assert all(r["Version"] == server_version() for r in rows)
    assert len(set(df["NodeID"])) == 2


def test_show_cluster_details(server, session):
    df = query_df(session, "SHOW CLUSTER DETAILS")
    cols = list(df.columns)
    assert cols[:5] == CLUSTER_COLUMNS[:5]
    assert cols[-2:] == ["Version", "BuildInfo"]
    assert "RpcAddress" in cols and "RpcPort" in cols
    assert df["NodeID"].dtype == np.int32
    assert list(df["NodeType"]) == ["ConfigNode", "DataNode"]
    assert list(df["InternalAddress"]) == [server.internal_address] * 2
    datanode = df[df["NodeType"] == "DataNode"].iloc[0]
    assert datanode["RpcAddress"] == "127.0.0.1"
    assert str(datanode["RpcPort"]) == str(server.port)


def test_show_clusterid_is_stable(server, session):
    df = query_df(session, "SHOW CLUSTERID")
    assert list(df.columns) == ["ClusterId"]
    assert len(df) == 1
    cid = df["ClusterId"][0]
    assert isinstance(cid, str) and cid
    other = server.session(compact=True)
    try:
        assert query_rows(other, "SHOW CLUSTERID") == [{"ClusterId": cid}]
    finally:
        other.close()


def test_statements_are_case_insensitive(session):
    assert query_rows(session, "show version")[0]["Version"] == server_version()
    assert list(query_df(session, "Show Cluster").columns) == CLUSTER_COLUMNS


# --------------------------------------------------------------------------
# execute_statement (executeStatementV2)
# --------------------------------------------------------------------------

def test_execute_statement_query_returns_dataset(session):
    ds = session.execute_statement("SHOW VERSION")
    assert isinstance(ds, SessionDataSet)
    try:
        df = ds.todf()
    finally:
        ds.close_operation_handle()
    assert list(df.columns) == ["Version", "BuildInfo"]
    assert df["Version"][0] == server_version()


def test_execute_statement_non_query_returns_none(session):
    assert session.execute_statement("CREATE USER es_user 'es_pass1'") is None
    try:
        users = [r["User"] for r in query_rows(session, "LIST USER")]
        assert "es_user" in users
    finally:
        assert session.execute_statement("DROP USER es_user") is None
    assert "es_user" not in [r["User"] for r in query_rows(session, "LIST USER")]


def test_execute_statement_error_raises(session):
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_statement("SHOW NONSENSE")
    assert str(ei.value).startswith("700: line 1:")


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

def test_syntax_error_700(session):
    msg = expect_error(session, "this is not sql", 700)
    assert msg.startswith("line 1:")


def test_syntax_error_in_query_path_700(session):
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_query_statement("SHOW PIPEZ")
    assert str(ei.value).startswith("700: line 1:")


def test_seed_missing_paren_700_points_at_line_4(session):
    msg = expect_error(session, BROKEN_SEED, 700)
    assert msg.startswith("line 4:"), msg
    assert ")" in msg, msg
    # Nothing was created.
    assert "AB" not in [r["ID"] for r in query_rows(session, "SHOW PIPES")]


def test_session_survives_errors(session):
    expect_error(session, "garbage", 700)
    expect_error(session, "DROP PIPE does_not_exist", 1806)
    with pytest.raises(StatementExecutionException):
        session.execute_query_statement("SHOW GARBAGE")
    # Same session still works for queries and non-queries.
    assert query_rows(session, "SHOW VERSION")[0]["Version"] == server_version()
    assert session.execute_non_query_statement("CREATE USER survivor 'survive1'") == 0
    assert session.execute_non_query_statement("DROP USER survivor") == 0


# --------------------------------------------------------------------------
# paging through fetchResultsV2
# --------------------------------------------------------------------------

def test_paged_list_user(server, monkeypatch):
    names = [f"pager_{i:02d}" for i in range(25)]
    admin = server.session()
    try:
        for n in names:
            admin.execute_non_query_statement(f"CREATE USER {n} 'pw_{n}'")

        calls = count_fetches(monkeypatch)

        for compact in (False, True):
            calls.clear()
            s = Session(server.host, server.port, "root", "root", fetch_size=2)
            s.open(compact)
            try:
                with s.execute_query_statement("LIST USER") as ds:
                    assert ds.get_column_names() == ["User"]
                    got = []
                    while ds.has_next():
                        got.append(str(ds.next().get_fields()[0]))
            finally:
                s.close()
            expected = sorted(names + ["root"])
            assert got == expected
            assert len(got) == 26
            # 2 rows per page: the first page comes with the execute reply,
            # the remaining 24 rows need at least 12 fetchResultsV2 calls.
            assert len(calls) >= 12, calls
            assert all(c == 2 for c in calls)

        # todf() over a paged result also sees every row.
        s = Session(server.host, server.port, "root", "root", fetch_size=3)
        s.open(False)
        try:
            df = query_df(s, "LIST USER")
        finally:
            s.close()
        assert list(df["User"]) == sorted(names + ["root"])
    finally:
        for n in names:
            try:
                admin.execute_non_query_statement(f"DROP USER {n}")
            except StatementExecutionException:
                pass
        admin.close()
