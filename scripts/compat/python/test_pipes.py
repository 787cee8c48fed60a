"""Pipe statements: CREATE / ALTER / START / STOP / DROP PIPE and SHOW PIPES,
single-instance and the two-instance (double-living) scenario of the seed."""

import time
import socket

import pytest
from iotdb.utils.exception import StatementExecutionException

from helpers import PIPE_COLUMNS, expect_error, pipes, query_df, query_rows

NOOP_SINK = "WITH SINK ('sink'='do-nothing-sink')"


def seed_pipe_sql(name, port, ip="127.0.0.1"):
    """Step 3 of the seed with the peer address substituted."""
    return f"""create pipe {name}
with source (
'source.mode.double-living' ='true'
)
with sink (
  'sink'='iotdb-thrift-sink',
  'sink.ip'='{ip}',
  'sink.port'='{port}'
)"""


def expected_sink(port):
    return f"{{sink=iotdb-thrift-sink, sink.ip=127.0.0.1, sink.port={port}}}"


def free_port():
    """A port on which nothing listens (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# single instance
# --------------------------------------------------------------------------

def test_show_pipes_columns_without_time(session):
    with session.execute_query_statement("SHOW PIPES") as ds:
        assert ds.get_column_names() == PIPE_COLUMNS
        assert "Time" not in ds.get_column_names()


def test_noop_pipe_lifecycle(session):
    assert session.execute_non_query_statement(f"CREATE PIPE p_noop {NOOP_SINK}") == 0
    try:
        with session.execute_query_statement("SHOW PIPE p_noop") as ds:
            df = ds.todf()
        assert list(df.columns) == PIPE_COLUMNS
        assert len(df) == 1
        row = df.to_dict("records")[0]
        assert row["ID"] == "p_noop"
        assert row["State"] == "RUNNING"
        # The source as given, plus what the pipe synchronises (IoTDB's default: inserts).
        assert row["PipeSource"] == "{inclusion.effective=data.insert}"
        assert row["PipeProcessor"] == "{}"
        assert row["PipeSink"] == "{sink=do-nothing-sink}"
        assert row["CreationTime"]
        # Every SHOW PIPES column is TEXT.
        assert all(isinstance(row[c], str) for c in PIPE_COLUMNS)

        assert session.execute_non_query_statement("STOP PIPE p_noop") == 0
        assert pipes(session)["p_noop"]["State"] == "STOPPED"
        assert session.execute_non_query_statement("START PIPE p_noop") == 0
        assert pipes(session)["p_noop"]["State"] == "RUNNING"
    finally:
        assert session.execute_non_query_statement("DROP PIPE p_noop") == 0
    assert "p_noop" not in pipes(session)
    assert query_df(session, "SHOW PIPE p_noop").empty


def test_show_pipe_filters_by_name(session):
    session.execute_non_query_statement(f"CREATE PIPE p_one {NOOP_SINK}")
    session.execute_non_query_statement(f"CREATE PIPE p_two {NOOP_SINK}")
    try:
        assert [r["ID"] for r in query_rows(session, "SHOW PIPE p_two")] == ["p_two"]
        assert {"p_one", "p_two"} <= set(pipes(session))
    finally:
        session.execute_non_query_statement("DROP PIPE p_one")
        session.execute_non_query_statement("DROP PIPE p_two")


def test_parameters_are_sorted_and_password_masked(session):
    session.execute_non_query_statement(
        "CREATE PIPE p_mask WITH SINK ('sink'='do-nothing-sink', 'sink.user'='root', "
        "'sink.password'='s3cr3t', 'sink.batch.enable'='false')"
    )
    try:
        sink = pipes(session)["p_mask"]["PipeSink"]
        assert "s3cr3t" not in sink
        assert sink == ("{sink=do-nothing-sink, sink.batch.enable=false, "
                        "sink.password=******, sink.user=root}")
    finally:
        session.execute_non_query_statement("DROP PIPE p_mask")


def test_alter_pipe_modify_and_replace(session):
    session.execute_non_query_statement(
        "CREATE PIPE p_alter WITH SINK ('sink'='do-nothing-sink', 'sink.user'='root')")
    try:
        session.execute_non_query_statement(
            "ALTER PIPE p_alter MODIFY SINK ('sink.batch.enable'='false')")
        assert pipes(session)["p_alter"]["PipeSink"] == (
            "{sink=do-nothing-sink, sink.batch.enable=false, sink.user=root}")
        session.execute_non_query_statement(
            "ALTER PIPE p_alter REPLACE SINK ('sink'='do-nothing-sink')")
        assert pipes(session)["p_alter"]["PipeSink"] == "{sink=do-nothing-sink}"
    finally:
        session.execute_non_query_statement("DROP PIPE p_alter")
    msg = expect_error(session, f"ALTER PIPE p_alter MODIFY SINK ('sink.user'='x')", 1806)
    assert "p_alter" in msg


def test_duplicate_create_1107(session):
    session.execute_non_query_statement(f"CREATE PIPE p_dup {NOOP_SINK}")
    try:
        msg = expect_error(session, f"CREATE PIPE p_dup {NOOP_SINK}", 1107)
        assert "the pipe with the same name has been created" in msg
        assert list(pipes(session)).count("p_dup") == 1
    finally:
        session.execute_non_query_statement("DROP PIPE p_dup")


@pytest.mark.parametrize("verb", ["START", "STOP", "DROP"])
def test_missing_pipe_1806(session, verb):
    msg = expect_error(session, f"{verb} PIPE no_such_pipe", 1806)
    assert "no_such_pipe" in msg


def test_unreachable_sink_1107_leaves_no_pipe(session):
    port = free_port()
    msg = expect_error(session, seed_pipe_sql("p_dead", port), 1107)
    assert f"127.0.0.1:{port}" in msg
    assert "p_dead" not in pipes(session)


def test_sink_to_itself_fails(server, session):
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(seed_pipe_sql("p_self", server.port))
    assert "same cluster" in str(ei.value)
    assert "p_self" not in pipes(session)


def test_non_root_cannot_create_pipe_803(server, session):
    session.execute_non_query_statement("CREATE USER alice 'secret12'")
    try:
        alice = server.session("alice", "secret12")
        try:
            expect_error(alice, f"CREATE PIPE p_alice {NOOP_SINK}", 803)
        finally:
            alice.close()
        assert "p_alice" not in pipes(session)
    finally:
        session.execute_non_query_statement("DROP USER alice")


def test_pipe_statements_over_compact_protocol(server):
    s = server.session(compact=True)
    try:
        s.execute_non_query_statement(f"CREATE PIPE p_compact {NOOP_SINK}")
        assert pipes(s)["p_compact"]["State"] == "RUNNING"
        s.execute_non_query_statement("DROP PIPE p_compact")
        assert "p_compact" not in pipes(s)
    finally:
        s.close()


# --------------------------------------------------------------------------
# two instances: A (iotdb-1) <-> B (iotdb-2)
# --------------------------------------------------------------------------

def _check_pair(sa, sb, a, b, state="RUNNING"):
    pa, pb = pipes(sa), pipes(sb)
    assert list(pa) == ["AB"]
    assert list(pb) == ["BA"]
    for row, peer in ((pa["AB"], b), (pb["BA"], a)):
        assert row["State"] == state
        assert (
            row["PipeSource"]
            == "{inclusion.effective=data.insert, source.mode.double-living=true}"
        )
        assert row["PipeProcessor"] == "{}"
        assert row["PipeSink"] == expected_sink(peer.port)
    return pa, pb


def test_double_living_pair(two_servers):
    a, b = two_servers
    sa, sb = a.session(), b.session(compact=True)
    try:
        assert sa.execute_non_query_statement(seed_pipe_sql("AB", b.port)) == 0
        assert sb.execute_non_query_statement(seed_pipe_sql("BA", a.port)) == 0
        _check_pair(sa, sb, a, b)

        msg = expect_error(sa, seed_pipe_sql("AB", b.port), 1107)
        assert "the pipe with the same name has been created" in msg

        assert sa.execute_non_query_statement("STOP PIPE AB") == 0
        assert pipes(sa)["AB"]["State"] == "STOPPED"
        assert pipes(sb)["BA"]["State"] == "RUNNING"  # B's pipe is independent
        assert sa.execute_non_query_statement("START PIPE AB") == 0
        assert pipes(sa)["AB"]["State"] == "RUNNING"

        for s in (sa, sb):
            for verb in ("START", "STOP", "DROP"):
                expect_error(s, f"{verb} PIPE missing_pipe", 1806)

        assert sb.execute_non_query_statement("DROP PIPE BA") == 0
        assert pipes(sb) == {}
        assert list(pipes(sa)) == ["AB"]
    finally:
        sa.close()
        sb.close()


def test_double_living_pair_survives_restart(two_servers):
    a, b = two_servers
    sa, sb = a.session(), b.session()
    sa.execute_non_query_statement(seed_pipe_sql("AB", b.port))
    sb.execute_non_query_statement(seed_pipe_sql("BA", a.port))
    sb.execute_non_query_statement("STOP PIPE BA")
    before_a, before_b = pipes(sa), pipes(sb)
    assert before_b["BA"]["State"] == "STOPPED"
    cid_a = query_rows(sa, "SHOW CLUSTERID")[0]["ClusterId"]
    sa.close()
    sb.close()

    port_a, port_b = a.port, b.port
    a.restart()
    b.restart()
    assert (a.port, b.port) == (port_a, port_b)

    sa, sb = a.session(), b.session()
    try:
        # A's pipe may have met B while B restarted: the exception it shows then clears at its next
        # successful send, so poll for the state from before the restart rather than read it once.
        deadline = time.monotonic() + 30
        after_a = pipes(sa)
        while after_a != before_a and time.monotonic() < deadline:
            time.sleep(0.1)
            after_a = pipes(sa)
        after_b = pipes(sb)
        assert after_a == before_a
        assert after_b == before_b
        assert after_a["AB"]["State"] == "RUNNING"
        assert after_b["BA"]["State"] == "STOPPED"
        assert query_rows(sa, "SHOW CLUSTERID")[0]["ClusterId"] == cid_a
        assert [r["InternalAddress"] for r in query_rows(sb, "SHOW CLUSTER")] == ["iotdb-2"] * 2

        # Still fully operational after the restart.
        assert sb.execute_non_query_statement("START PIPE BA") == 0
        _check_pair(sa, sb, a, b, state="RUNNING")
        assert sa.execute_non_query_statement("DROP PIPE AB") == 0
        assert pipes(sa) == {}
    finally:
        sa.close()
        sb.close()


def test_create_towards_stopped_peer_1107(two_servers):
    a, b = two_servers
    port_b = b.port
    assert b.stop() == 0
    sa = a.session()
    try:
        msg = expect_error(sa, seed_pipe_sql("AB", port_b), 1107)
        assert f"127.0.0.1:{port_b}" in msg
        assert pipes(sa) == {}
        b.start(port=port_b)
        assert sa.execute_non_query_statement(seed_pipe_sql("AB", port_b)) == 0
        assert pipes(sa)["AB"]["State"] == "RUNNING"
    finally:
        sa.close()
