"""Crash consistency: SIGKILL duetd while four sessions write tablets, restart
on the same data dir and port, and check that every acknowledged tablet is
fully present and no tablet is half visible. Three kill/restart cycles."""

import threading
import time

import numpy as np
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from helpers import query_df

WRITERS = 4
ROWS = 100
CYCLES = 3
ACKS_BEFORE_KILL = 60        # acknowledged tablets (all writers) per cycle
MIN_ACKS_PER_WRITER = 3
T = TSDataType


def device(w):
    return f"root.crash.w{w}"


def row_values(w, t):
    return [t * 10 + w, t / 4, f"w{w}t{t}"]


def tablet(w, k):
    times = list(range(k * ROWS, (k + 1) * ROWS))
    return Tablet(device(w), ["s1", "s2", "s3"], [T.INT64, T.DOUBLE, T.TEXT],
                  [row_values(w, t) for t in times], times)


class Writer(threading.Thread):
    def __init__(self, srv, w, first_k, stop, progress):
        super().__init__(daemon=True)
        self.srv, self.w, self.k = srv, w, first_k
        self.stop, self.progress = stop, progress
        self.acked, self.unacked = [], []
        self.error = None

    def run(self):
        try:
            s = self.srv.session()
        except Exception as e:  # pragma: no cover - server must be up here
            self.error = e
            return
        try:
            while not self.stop.is_set():
                tab = tablet(self.w, self.k)
                try:
                    s.insert_tablet(tab)
                except Exception:
                    self.unacked.append(self.k)
                    self.k += 1
                    return
                self.acked.append(self.k)
                self.k += 1
                with self.progress:
                    self.progress.notify_all()
        finally:
            try:
                s.close()
            except Exception:
                pass


def read_device(s, w):
    df = query_df(s, f"select s1, s2, s3 from {device(w)}")
    if len(df) == 0:
        return {}
    return {int(t): (int(a), float(b), c) for t, a, b, c in zip(
        df["Time"], df[f"{device(w)}.s1"], df[f"{device(w)}.s2"], df[f"{device(w)}.s3"])}


def test_sigkill_during_writes_three_cycles(duetd_factory):
    srv = duetd_factory("crash")
    port = srv.port
    acked = {w: set() for w in range(WRITERS)}
    unacked = {w: set() for w in range(WRITERS)}
    next_k = {w: 0 for w in range(WRITERS)}

    for cycle in range(CYCLES):
        stop = threading.Event()
        progress = threading.Condition()
        writers = [Writer(srv, w, next_k[w], stop, progress) for w in range(WRITERS)]
        for wr in writers:
            wr.start()

        def ready():
            return (sum(len(wr.acked) for wr in writers) >= ACKS_BEFORE_KILL
                    and all(len(wr.acked) >= MIN_ACKS_PER_WRITER for wr in writers))

        deadline = time.monotonic() + 60
        with progress:
            while not ready():
                assert time.monotonic() < deadline, (
                    f"cycle {cycle}: writers too slow: {[len(wr.acked) for wr in writers]}, "
                    f"errors {[wr.error for wr in writers]}")
                progress.wait(0.05)
        # Writers are still running: kill while tablets are in flight.
        srv.proc.kill()
        srv.proc.wait()
        stop.set()
        for wr in writers:
            wr.join(60)
            assert not wr.is_alive(), "writer hung after the server was killed"
            assert wr.error is None, wr.error
        srv.kill()  # closes the log handle
        for wr in writers:
            acked[wr.w].update(wr.acked)
            unacked[wr.w].update(wr.unacked)
            next_k[wr.w] = wr.k
        in_flight = sum(len(wr.unacked) for wr in writers)

        srv.start(port=port)
        s = srv.session()
        try:
            total_rows = 0
            for w in range(WRITERS):
                data = read_device(s, w)
                for k in sorted(acked[w]):
                    times = range(k * ROWS, (k + 1) * ROWS)
                    missing = [t for t in times if t not in data]
                    assert not missing, (
                        f"cycle {cycle}: writer {w} acknowledged tablet {k} lost "
                        f"{len(missing)} rows (first {missing[:5]})")
                    for t in times:
                        assert data[t] == tuple(row_values(w, t)), (w, t, data[t])
                for k in sorted(unacked[w]):
                    times = range(k * ROWS, (k + 1) * ROWS)
                    present = [t for t in times if t in data]
                    assert len(present) in (0, ROWS), (
                        f"cycle {cycle}: writer {w} unacknowledged tablet {k} is half "
                        f"visible: {len(present)}/{ROWS} rows")
                    for t in present:
                        assert data[t] == tuple(row_values(w, t)), (w, t, data[t])
                known = {t for k in acked[w] | unacked[w]
                         for t in range(k * ROWS, (k + 1) * ROWS)}
                stray = sorted(set(data) - known)
                assert not stray, f"writer {w}: rows never written: {stray[:5]}"
                total_rows += len(data)
                # Aggregates agree with the raw rows.
                agg = query_df(s, f"select count(s1), count(s3), sum(s1) from {device(w)}")
                assert int(agg[f"count({device(w)}.s1)"][0]) == len(data)
                assert int(agg[f"count({device(w)}.s3)"][0]) == len(data)
                if data:
                    assert float(agg[f"sum({device(w)}.s1)"][0]) == float(
                        sum(v[0] for v in data.values()))
            cnt = query_df(s, "select count(s1) from root.crash.*")
            assert sum(int(cnt[c][0]) for c in cnt.columns) == total_rows
            assert total_rows >= sum(len(a) for a in acked.values()) * ROWS
            print(f"cycle {cycle}: acked {sum(len(a) for a in acked.values())} tablets, "
                  f"{in_flight} in flight at kill, {total_rows} rows after restart")
        finally:
            s.close()
