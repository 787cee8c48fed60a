"""Bounded queries through the official client: rows larger than a page's
share of the frame limit are still readable (a reply above 16,384,000 bytes
makes the client fail), and a GROUP BY whose window count would overflow is
refused while the server keeps serving."""

import pytest
from iotdb.Session import Session
from iotdb.utils.exception import StatementExecutionException

from helpers import query_rows

MB = 1 << 20


def test_twenty_one_megabyte_text_rows_are_readable(server):
    s = server.session()
    try:
        for i in range(20):
            text = chr(ord("a") + i) * MB
            s.execute_non_query_statement(
                f"insert into root.big.d(time, v) values ({i}, '{text}')")
    finally:
        s.close()

    s = Session(server.host, server.port, "root", "root", fetch_size=5000)
    s.open(False)
    read = False
    try:
        rows = []
        with s.execute_query_statement("select v from root.big.d") as ds:
            while ds.has_next():
                record = ds.next()
                rows.append((record.get_timestamp(),
                             record.get_fields()[0].get_string_value()))
        assert [t for t, _ in rows] == list(range(20))
        for i, (_, v) in enumerate(rows):
            assert len(v) == MB and v == chr(ord("a") + i) * MB, f"row {i}"
        read = True
    finally:
        # After an oversized reply the connection is broken and closing fails
        # too; report the read's error, not the close's.
        if read:
            s.close()


def test_group_by_over_the_whole_time_range_is_refused(server):
    s = server.session()
    try:
        s.execute_non_query_statement(
            "insert into root.x.d(time, s) values (5, 1), (9999990, 2)")
        with pytest.raises(StatementExecutionException) as ei:
            with s.execute_query_statement(
                    "select count(s) from root.x.d group by "
                    "([-9223372036854775808, 9223372036854775807), 1ms)"):
                pass
        assert str(ei.value).startswith("701: "), str(ei.value)
        assert "windows" in str(ei.value)
        assert query_rows(s, "select count(s) from root.x.d") == [
            {"count(root.x.d.s)": 2}]
    finally:
        s.close()
