"""IoTDB's cluster-information and query-management statements through the
official client: SHOW VARIABLES / DATANODES / CONFIGNODES / REGIONS with
IoTDB's columns, and SHOW QUERIES / KILL QUERY on a query whose result is
still being fetched."""

import pytest
from iotdb.Session import Session
from iotdb.utils.exception import StatementExecutionException

from helpers import expect_error, query_df, query_rows


def test_show_variables_datanodes_confignodes_regions(session):
    variables = {r["Variable"]: r["Value"] for r in query_rows(session, "show variables")}
    assert variables["TimestampPrecision"] == "ms"
    assert variables["DataReplicationFactor"] == "1"
    assert variables["ClusterName"].startswith("duet-")

    session.execute_non_query_statement("create database root.regions1")
    datanodes = query_df(session, "show datanodes")
    assert list(datanodes.columns) == [
        "NodeID", "Status", "RpcAddress", "RpcPort", "DataRegionNum", "SchemaRegionNum"]
    row = datanodes.to_dict("records")[0]
    assert row["NodeID"] == 1 and row["Status"] == "Running"
    assert row["RpcPort"] == session._Session__default_endpoint.port
    assert row["DataRegionNum"] >= 1

    confignodes = query_rows(session, "show confignodes")
    assert confignodes[0]["NodeID"] == 0 and confignodes[0]["Role"] == "Leader"

    regions = query_rows(session, "show data regions of database root.regions1")
    assert [(r["Type"], r["Database"]) for r in regions] == [("DataRegion", "root.regions1")]


def test_show_queries_lists_a_query_being_fetched_and_kill_query_stops_it(server):
    writer = server.session()
    try:
        writer.execute_non_query_statement(
            "insert into root.kq.d(time, v) values " + ", ".join(f"({t}, {t})" for t in range(1, 201)))
    finally:
        writer.close()

    reader = Session(server.host, server.port, "root", "root", fetch_size=10)
    reader.open(False)
    admin = server.session()
    try:
        ds = reader.execute_query_statement("select v from root.kq.d")
        assert ds.has_next()
        ds.next()

        running = [r for r in query_rows(admin, "show queries")
                   if "root.kq.d" in r["Statement"]]
        assert len(running) == 1, running
        query_id = running[0]["QueryId"]
        assert running[0]["DataNodeId"] == 1
        assert running[0]["ElapsedTime"] >= 0

        expect_error(admin, "kill query 'no_such_query'", 714)
        admin.execute_non_query_statement(f"kill query '{query_id}'")

        with pytest.raises(StatementExecutionException) as killed:
            while ds.has_next():
                ds.next()
        assert "715" in str(killed.value) and "killed" in str(killed.value)
        ds.close_operation_handle()
        # Closed: no longer listed.
        assert not [r for r in query_rows(admin, "show queries")
                    if "root.kq.d" in r["Statement"]]
        # The reader's session still works.
        assert len(query_rows(reader, "select count(v) from root.kq.d")) == 1
    finally:
        reader.close()
        admin.close()


def test_a_user_sees_and_kills_only_their_own_queries(server):
    admin = server.session()
    try:
        admin.execute_non_query_statement("create user kq_alice 'alice123'")
        admin.execute_non_query_statement(
            "insert into root.kq2.d(time, v) values " + ", ".join(f"({t}, {t})" for t in range(1, 101)))
        root_reader = Session(server.host, server.port, "root", "root", fetch_size=5)
        root_reader.open(False)
        alice = Session(server.host, server.port, "kq_alice", "alice123", fetch_size=5)
        alice.open(False)
        try:
            ds = root_reader.execute_query_statement("select v from root.kq2.d")
            ds.next()
            root_query = [r["QueryId"] for r in query_rows(admin, "show queries")
                          if "root.kq2.d" in r["Statement"]][0]
            # alice does not see root's query and may not kill it.
            assert not [r for r in query_rows(alice, "show queries")
                        if "root.kq2.d" in r["Statement"]]
            expect_error(alice, f"kill query '{root_query}'", 803)
            # KILL ALL QUERIES by alice leaves root's query running.
            alice.execute_non_query_statement("kill all queries")
            while ds.has_next():
                ds.next()
            ds.close_operation_handle()
        finally:
            alice.close()
            root_reader.close()
    finally:
        admin.close()
