"""The seed's dual-active walkthrough driven entirely by the official Python client: pipes AB and BA
created with the seed's statements, data written on either instance through every write path read
back on the other, conflicting writes converging, and Step 5's shutdown."""

import time

from iotdb.utils.IoTDBConstants import TSDataType as T
from iotdb.utils.Tablet import Tablet

from helpers import pipes, query_rows
from test_pipes import seed_pipe_sql

TIMEOUT = 20.0


def poll(what, fn, timeout=TIMEOUT):
    """Polls `fn` until it returns a truthy value; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def rows(session, sql):
    """Rows as tuples of text, nulls (None, NaN, pd.NA) as "None"."""
    def text(v):
        return "None" if v is None or v != v or str(v) == "<NA>" else str(v)
    return [tuple(text(v) for v in r.values()) for r in query_rows(session, sql)]


def test_seed_walkthrough_with_the_python_client(two_servers):
    a, b = two_servers
    sa, sb = a.session(), b.session()
    try:
        # Steps 2 and 3 (the seed's text with the peers' real address).
        sa.execute_non_query_statement(seed_pipe_sql("AB", b.port))
        sb.execute_non_query_statement(seed_pipe_sql("BA", a.port))
        # Step 4.
        assert pipes(sa)["AB"]["State"] == "RUNNING"
        assert pipes(sb)["BA"]["State"] == "RUNNING"

        # Writes on A through the client's write paths...
        sa.insert_tablet(Tablet("root.seed.a", ["s1", "s2"], [T.INT64, T.TEXT],
                                [[1, "x"], [2, None]], [1, 2]))
        sa.insert_record("root.seed.a", 3, ["s1"], [T.INT64], [3])
        sa.insert_str_record("root.seed.a", 4, ["s1"], ["4"])
        sa.execute_non_query_statement("insert into root.seed.a(timestamp, s1) values (5, 5)")
        # ...and on B.
        sb.insert_records(["root.seed.b", "root.seed.b"], [10, 11], [["f"], ["f"]],
                          [[T.DOUBLE], [T.DOUBLE]], [[1.5], [2.5]])

        want_a = [("1", "1", "x"), ("2", "2", "None"), ("3", "3", "None"), ("4", "4", "None"),
                  ("5", "5", "None")]
        poll("A's rows on B", lambda: rows(sb, "select s1, s2 from root.seed.a") == want_a)
        poll("B's rows on A", lambda: rows(sa, "select f from root.seed.b") == [("10", "1.5"), ("11", "2.5")])

        # The same point written on both: after quiescence both hold the same value.
        sa.execute_non_query_statement("insert into root.seed.c(timestamp, v) values (1, 100)")
        sb.execute_non_query_statement("insert into root.seed.c(timestamp, v) values (1, 200)")
        poll("the conflict to converge",
             lambda: rows(sa, "select v from root.seed.c") == rows(sb, "select v from root.seed.c")
             and len(rows(sa, "select v from root.seed.c")) == 1)
        # Both pipes drained: nothing loops.
        poll("AB to drain", lambda: pipes(sa)["AB"]["RemainingEventCount"] == "0")
        poll("BA to drain", lambda: pipes(sb)["BA"]["RemainingEventCount"] == "0")

        # Step 5: stop the pipes, then the services.
        sa.execute_non_query_statement("stop pipe AB")
        sb.execute_non_query_statement("stop pipe BA")
        assert pipes(sa)["AB"]["State"] == "STOPPED"
        assert pipes(sb)["BA"]["State"] == "STOPPED"
    finally:
        sa.close()
        sb.close()
    assert a.stop() == 0
    assert b.stop() == 0
