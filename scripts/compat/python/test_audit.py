"""The audit log through the official client (issue 13): with enable_audit_log, a
failed and a successful login, the session API's schema RPCs and SQL DDL are read
back with IoTDB's query of root.__system.audit._<user>."""

from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding

from helpers import query_rows


def test_audit_series_through_the_official_client(duetd_factory, tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text('enable_audit_log = true\naudit_log_operation = "DDL"\n')
    srv = duetd_factory("audited", extra_args=["--config", str(config)])
    bad = Session(srv.host, srv.port, "root", "not-the-password")
    try:
        bad.open(False)
    except Exception:
        pass
    s = srv.session()
    try:
        s.set_storage_group("root.audit_py")
        s.create_time_series("root.audit_py.d.s", TSDataType.INT64, TSEncoding.PLAIN,
                             Compressor.SNAPPY)
        s.execute_non_query_statement("create database root.audit_sql")
        rows = query_rows(s, "select username, address, log, result "
                             "from root.__system.audit._root order by time")
        logs = [(r["root.__system.audit._root.log"], r["root.__system.audit._root.result"])
                for r in rows]
        assert ("login (session)", logs[0][1]) == logs[0] and logs[0][1].startswith("failure")
        assert ("login (session)", "success") in logs
        assert ("RPC setStorageGroup root.audit_py", "success") in logs
        assert ("RPC createTimeseries root.audit_py.d.s", "success") in logs
        assert ("CREATE DATABASE root.audit_sql", "success") in logs
        assert all(r["root.__system.audit._root.address"].startswith("127.0.0.1:") for r in rows)
    finally:
        s.close()
