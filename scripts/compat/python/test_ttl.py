"""TTL through the official client: a rule hides expired points from
queries, refuses expired writes from every insert RPC with 606, and SHOW
ALL TTL lists the rules as IoTDB 2.0 does."""

import time

import pytest
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.exception import StatementExecutionException

from helpers import query_rows


def test_a_ttl_hides_old_points_and_refuses_old_writes(session):
    now_ms = int(time.time() * 1000)
    session.execute_non_query_statement("create database root.pyttl")
    session.insert_record("root.pyttl.d", 1000, ["s"], [TSDataType.INT64], [1])
    session.insert_record("root.pyttl.d", now_ms, ["s"], [TSDataType.INT64], [2])
    session.execute_non_query_statement("set ttl to root.pyttl.** 600000")

    assert query_rows(session, "show all ttl") == [
        {"Device": "root.pyttl.**", "TTL(ms)": "600000"}]
    rows = query_rows(session, "select s from root.pyttl.d")
    assert [r["root.pyttl.d.s"] for r in rows] == [2]

    with pytest.raises(StatementExecutionException) as refused:
        session.insert_record("root.pyttl.d", 2000, ["s"], [TSDataType.INT64], [3])
    assert str(refused.value).startswith("606")
    with pytest.raises(StatementExecutionException) as refused:
        session.insert_str_record("root.pyttl.d", 3000, ["s"], ["4"])
    assert "606" in str(refused.value)

    session.execute_non_query_statement("unset ttl from root.pyttl.**")
    rows = query_rows(session, "select s from root.pyttl.d")
    assert [r["root.pyttl.d.s"] for r in rows] == [1, 2]
