"""PEP 249 layer (`iotdb.dbapi`), which goes through executeStatementV2 with
fetchSize=0 and closeOperation."""

from iotdb.dbapi import connect

from helpers import query_rows


def test_dbapi_show_version(server):
    conn = connect(server.host, server.port, "root", "root")
    try:
        cur = conn.cursor()
        cur.execute("show version")
        assert cur.rowcount == 1
        row = cur.fetchone()
        assert row is not None
        names = [d[0] for d in cur.description]
        assert names == ["Version", "BuildInfo"]
        assert row[0] and row[1]
        assert cur.fetchone() is None
        cur.close()
    finally:
        conn.close()


def test_dbapi_show_cluster_rows(server):
    conn = connect(server.host, server.port, "root", "root", enable_rpc_compression=True)
    try:
        cur = conn.cursor()
        cur.execute("show cluster")
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
        assert names[:3] == ["NodeID", "NodeType", "Status"]
        assert [r[1] for r in rows] == ["ConfigNode", "DataNode"]
        cur.close()
    finally:
        conn.close()


def test_dbapi_non_query_and_error(server, session):
    conn = connect(server.host, server.port, "root", "root")
    try:
        cur = conn.cursor()
        cur.execute("CREATE USER dbapi_u 'dbapi_pw1'")
        assert cur.rowcount == 0
        assert "dbapi_u" in [r["User"] for r in query_rows(session, "LIST USER")]
        # DB-API swallows server errors and reports rowcount -1.
        cur.execute("definitely not sql")
        assert cur.rowcount == -1
        cur.execute("DROP USER dbapi_u")
        assert cur.rowcount == 0
        cur.close()
    finally:
        conn.close()
    assert "dbapi_u" not in [r["User"] for r in query_rows(session, "LIST USER")]
