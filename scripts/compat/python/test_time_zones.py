"""Session time zones with the official client: a session opened with
`zone_id` (or switched with set_time_zone) reads datetime literals without an
offset in that zone — in WHERE, INSERT and GROUP BY windows — as IoTDB does;
an unknown zone is refused with 703."""

from datetime import datetime, timedelta, timezone

import pytest
from iotdb.Session import Session
from iotdb.thrift.rpc.IClientRPCService import TSSetTimeZoneReq
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from helpers import query_df

PLUS_8 = timezone(timedelta(hours=8))  # Asia/Shanghai has kept +08:00 since 1991


def epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# 2023-11-15 06:13:25 UTC is 14:13:25 in Shanghai.
T0 = epoch_ms(datetime(2023, 11, 15, 6, 13, 25, tzinfo=timezone.utc))
HOUR = 3_600_000


def write(session, device, times, values):
    session.insert_tablet(
        Tablet(device, ["v"], [TSDataType.INT64], [[v] for v in values], times))


def times_of(session, sql):
    return [int(t) for t in query_df(session, sql)["Time"]]


@pytest.fixture(scope="module")
def data(server):
    s = server.session(zone_id="UTC")
    # One second before T0, T0, and 8 hours after T0 (what a UTC reading of the
    # Shanghai literal would hit).
    write(s, "root.tz.d1", [T0 - 1000, T0, T0 + 8 * HOUR], [1, 2, 3])
    # Either side of midnight, Feb 1 2024, in Shanghai.
    feb1 = epoch_ms(datetime(2024, 2, 1, tzinfo=PLUS_8))
    write(s, "root.tz.m", [feb1 - 1, feb1], [1, 2])
    s.close()
    return server


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "+08:00", "GMT+08:00"])
def test_where_literals_are_read_in_the_session_zone(data, zone):
    s = data.session(zone_id=zone)
    try:
        sql = ("select v from root.tz.d1 where time >= 2023-11-15T14:13:25 "
               "and time < 2023-11-15 14:13:26")
        assert times_of(s, sql) == [T0]
        # A literal with its own offset (or Z) keeps it.
        assert times_of(s, "select v from root.tz.d1 "
                           "where time = 2023-11-15T06:13:25Z") == [T0]
        assert times_of(s, "select v from root.tz.d1 "
                           "where time = '2023-11-15T07:13:25+01:00'") == [T0]
        # A date alone is local midnight (Nov 14, 16:00 UTC): 20 hours later is
        # before T0 + 8h.
        assert times_of(s, "select v from root.tz.d1 where time >= 2023-11-15 "
                           "and time < 2023-11-15 + 20h") == [T0 - 1000, T0]
    finally:
        s.close()


def test_insert_and_delete_literals_in_the_session_zone(data):
    s = data.session(zone_id="Asia/Shanghai")
    u = data.session(zone_id="UTC")
    try:
        s.execute_non_query_statement(
            "insert into root.tz.ins(time, v) values "
            "(2023-11-15 14:13:25, 1), (2023-11-15T06:13:26Z, 2), "
            "(2023-11-15T14:13:25 + 1h, 3)")
        rows = query_df(u, f"select v from root.tz.ins where time >= {T0}")
        assert [int(t) for t in rows["Time"]] == [T0, T0 + 1000, T0 + HOUR]
        assert list(rows["root.tz.ins.v"]) == [1, 2, 3]
        s.execute_non_query_statement(
            "delete from root.tz.ins.v where time <= 2023-11-15T14:13:26")
        assert times_of(u, "select v from root.tz.ins") == [T0 + HOUR]
    finally:
        s.close()
        u.close()


def test_group_by_windows_follow_the_session_zone(data):
    s = data.session(zone_id="Asia/Shanghai")
    try:
        # Months and days start at local midnight, so the two points either side
        # of Shanghai's Feb 1 fall in different windows.
        df = query_df(s, "select count(v) from root.tz.m "
                         "group by ([2024-01-01, 2024-03-01), 1mo)")
        assert [int(t) for t in df["Time"]] == [
            epoch_ms(datetime(2024, 1, 1, tzinfo=PLUS_8)),
            epoch_ms(datetime(2024, 2, 1, tzinfo=PLUS_8)),
        ]
        assert list(df["count(root.tz.m.v)"]) == [1, 1]
        df = query_df(s, "select count(v) from root.tz.m "
                         "group by ([2024-01-31, 2024-02-02), 1d)")
        assert list(df["count(root.tz.m.v)"]) == [1, 1]
        # From Jan 31 (local), a month later is Feb 29 (leap year), then Mar 31.
        df = query_df(s, "select count(v) from root.tz.m "
                         "group by ([2024-01-31, 2024-04-30), 1mo)")
        assert [int(t) for t in df["Time"]] == [
            epoch_ms(datetime(2024, 1, 31, tzinfo=PLUS_8)),
            epoch_ms(datetime(2024, 2, 29, tzinfo=PLUS_8)),
            epoch_ms(datetime(2024, 3, 31, tzinfo=PLUS_8)),
        ]
        assert list(df["count(root.tz.m.v)"]) == [2, 0, 0]
        # Sliding: 2-month windows every month.
        df = query_df(s, "select count(v) from root.tz.m "
                         "group by ([2023-12-01, 2024-02-01), 2mo, 1mo)")
        assert list(df["count(root.tz.m.v)"]) == [1, 1]
    finally:
        s.close()


def raw_set_time_zone(session, zone):
    client = session._Session__client
    return client.setTimeZone(TSSetTimeZoneReq(session._Session__session_id, zone))


def test_set_time_zone_mid_session(data):
    s = data.session(zone_id="UTC")
    try:
        sql = ("select v from root.tz.d1 where time >= 2023-11-15T14:13:25 "
               "and time < 2023-11-15 14:13:26")
        assert times_of(s, sql) == [T0 + 8 * HOUR]
        s.set_time_zone("Asia/Shanghai")
        assert times_of(s, sql) == [T0]
        # An unknown zone is an error (IoTDB's SET_TIME_ZONE_ERROR) and the
        # session keeps the zone it had.
        status = raw_set_time_zone(s, "Mars/Olympus")
        assert status.code == 703, status
        assert "Mars/Olympus" in status.message
        assert times_of(s, sql) == [T0]
        assert raw_set_time_zone(s, "-05:30").code == 200
        assert times_of(s, "select v from root.tz.d1 "
                           "where time = 2023-11-15T00:43:25") == [T0]
        resp = s._Session__client.getTimeZone(s._Session__session_id)
        assert resp.timeZone == "-05:30"
    finally:
        s.close()


def test_open_session_with_an_unknown_zone_is_refused(data):
    session = Session(data.host, data.port, "root", "root", zone_id="Mars/Olympus")
    with pytest.raises(Exception) as ei:
        session.open(False)
    assert "703" in str(ei.value), str(ei.value)
    # The server keeps serving.
    s = data.session(zone_id="Asia/Shanghai")
    s.close()


def test_now_with_durations(data):
    s = data.session(zone_id="Asia/Shanghai")
    try:
        s.execute_non_query_statement(
            "insert into root.tz.now(time, v) values (now(), 1), (now() - 2d, 2)")
        df = query_df(s, "select count(v) from root.tz.now where time > now() - 1d")
        assert list(df["count(root.tz.now.v)"]) == [1]
        df = query_df(s, "select count(v) from root.tz.now where time > now() - 1w")
        assert list(df["count(root.tz.now.v)"]) == [2]
    finally:
        s.close()
