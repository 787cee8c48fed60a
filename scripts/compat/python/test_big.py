"""One million rows written in 10,000-row tablets and read back through
fetchResultsV2 paging."""

import numpy as np
import pytest
from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.NumpyTablet import NumpyTablet

from helpers import count_fetches

N_ROWS = 1_000_000
BATCH = 10_000
FETCH = 5000


def value_of(t):
    # Distinct per row, mixes signs, fits int64 sums easily.
    return t * 3 - 1_000_000


def test_million_rows_paged(server, monkeypatch):
    s = server.session()
    try:
        for start in range(0, N_ROWS, BATCH):
            ts = np.arange(start, start + BATCH, dtype=">i8")
            s.insert_tablet(NumpyTablet("root.big.d1", ["s1"], [TSDataType.INT64],
                                        [(ts * 3 - 1_000_000).astype(">i8")], ts))
    finally:
        s.close()

    calls = count_fetches(monkeypatch)

    s = Session(server.host, server.port, "root", "root", fetch_size=FETCH)
    s.open(False)
    try:
        with s.execute_query_statement("select s1 from root.big.d1") as ds:
            assert ds.get_column_names() == ["Time", "root.big.d1.s1"]
            count = 0
            total = 0
            prev = -1
            ordered = True
            while ds.has_next_df():
                df = ds.next_df()
                t = df["Time"].to_numpy()
                v = df["root.big.d1.s1"].to_numpy()
                if len(t):
                    ordered &= bool(t[0] > prev) and bool(np.all(np.diff(t) > 0))
                    prev = t[-1]
                    assert np.array_equal(v, t * 3 - 1_000_000), "value/time mismatch"
                count += len(t)
                total += int(v.sum())
        assert count == N_ROWS
        assert ordered
        assert total == sum(value_of(t) for t in range(N_ROWS))
        # The first page comes with the execute reply; every further page is
        # a fetchResultsV2 call of fetch_size rows at most.
        assert len(calls) >= N_ROWS // FETCH - 1, len(calls)
        assert all(c == FETCH for c in calls)

        # Row-by-row iteration over a slice still pages and stays ordered.
        calls.clear()
        with s.execute_query_statement(
                "select s1 from root.big.d1 where time >= 100000 and time < 120000") as ds:
            n, last = 0, 99_999
            while ds.has_next():
                rec = ds.next()
                t = rec.get_timestamp()
                assert t == last + 1
                assert rec.get_fields()[0].get_long_value() == value_of(t)
                last = t
                n += 1
        assert n == 20_000
        assert len(calls) >= 3, calls

        agg = s.execute_query_statement("select count(s1), sum(s1) from root.big.d1")
        df = agg.todf()
        agg.close_operation_handle()
        assert int(df["count(root.big.d1.s1)"][0]) == N_ROWS
        assert float(df["sum(root.big.d1.s1)"][0]) == pytest.approx(float(total))
    finally:
        s.close()
