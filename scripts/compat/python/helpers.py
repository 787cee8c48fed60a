"""Small helpers shared by the test modules (kept out of conftest.py so they
can be imported normally)."""

import math

import pandas as pd
import pytest
from iotdb.thrift.rpc import IClientRPCService
from iotdb.utils.exception import StatementExecutionException

PIPE_COLUMNS = [
    "ID", "CreationTime", "State", "PipeSource", "PipeProcessor", "PipeSink",
    "ExceptionMessage", "RemainingEventCount", "EstimatedRemainingSeconds",
]


def query_df(session, sql):
    """Run a query through executeQueryStatementV2 and return its DataFrame
    (closeOperation is sent when the `with` block exits)."""
    with session.execute_query_statement(sql) as ds:
        return ds.todf()


def norm(v):
    """A DataFrame cell as a plain Python value; None for a null or NaN."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def columns(df):
    """A DataFrame as {column: [plain values]}."""
    return {c: [norm(v) for v in df[c].tolist()] for c in df.columns}


def count_fetches(monkeypatch):
    """The fetch sizes of every fetchResultsV2 the client sends from now on, in a list that grows."""
    calls = []
    orig = IClientRPCService.Client.fetchResultsV2

    def counting(self, req):
        calls.append(req.fetchSize)
        return orig(self, req)

    monkeypatch.setattr(IClientRPCService.Client, "fetchResultsV2", counting)
    return calls


def query_rows(session, sql):
    return query_df(session, sql).to_dict("records")


def expect_error(session, sql, code):
    """Run `sql` as a non-query, expect StatementExecutionException("<code>: ...")
    and return the message after the code."""
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(sql)
    msg = str(ei.value)
    assert msg.startswith(f"{code}: "), f"expected status {code}, got: {msg}"
    return msg[len(f"{code}: "):]


def pipes(session):
    """SHOW PIPES as {pipe id: row dict}."""
    df = query_df(session, "SHOW PIPES")
    assert list(df.columns) == PIPE_COLUMNS
    return {r["ID"]: r for r in df.to_dict("records")}
