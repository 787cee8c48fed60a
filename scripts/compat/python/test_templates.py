"""Device templates through the official Python client: its template API (`Template`,
`MeasurementNode`, `create_schema_template` … `drop_schema_template`), the raw
`createTimeseriesUsingSchemaTemplate` call (the 2.0.11 client has no wrapper for it), writes through
insert_record / insert_tablet to devices under a template (activation by the write, the template's
types), the SQL template statements, and template series replicated between two instances."""

import warnings

import pytest
from iotdb.template.MeasurementNode import MeasurementNode
from iotdb.template.Template import Template
from iotdb.thrift.rpc.ttypes import TCreateTimeseriesUsingSchemaTemplateReq
from iotdb.utils.IoTDBConstants import Compressor, TSDataType as T, TSEncoding
from iotdb.utils.Tablet import Tablet
from iotdb.utils.exception import StatementExecutionException

from helpers import expect_error, query_rows
from test_pipes import seed_pipe_sql
from test_sync import poll, rows

# The client marks its template API deprecated; the warnings are expected here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def template(name, aligned=False, **measurements):
    """A flat template: measurement name -> (type, encoding, compressor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t = Template(name=name, share_time=aligned)
        for m, (data_type, encoding, compressor) in measurements.items():
            t.add_template(MeasurementNode(m, data_type, encoding, compressor))
    return t


def activate(session, *devices):
    """createTimeseriesUsingSchemaTemplate through the client's own Thrift stub; returns the status."""
    client = session._Session__client
    req = TCreateTimeseriesUsingSchemaTemplateReq(session._Session__session_id, list(devices))
    return client.createTimeseriesUsingSchemaTemplate(req)


def raises(code, fn, *args):
    with pytest.raises(StatementExecutionException) as ei:
        fn(*args)
    assert str(ei.value).startswith(f"{code}: "), str(ei.value)
    return str(ei.value)


def test_the_clients_template_api(session):
    s = session
    s.create_schema_template(template(
        "py_t1",
        s1=(T.INT64, TSEncoding.RLE, Compressor.SNAPPY),
        s2=(T.DOUBLE, TSEncoding.GORILLA, Compressor.LZ4),
        s3=(T.TEXT, TSEncoding.PLAIN, Compressor.UNCOMPRESSED),
    ))
    s.create_schema_template(template(
        "py_t2", aligned=True,
        lat=(T.FLOAT, TSEncoding.GORILLA, Compressor.SNAPPY),
        lon=(T.FLOAT, TSEncoding.GORILLA, Compressor.SNAPPY),
    ))
    raises(507, s.create_schema_template, template("py_t1", x=(T.INT32, TSEncoding.RLE, Compressor.LZ4)))
    raises(510, s.create_schema_template,
           template("py_bad", x=(T.TEXT, TSEncoding.GORILLA, Compressor.LZ4)))

    assert s.show_all_templates() == ["py_t1", "py_t2"]
    assert sorted(s.show_measurements_in_template("py_t1")) == ["s1", "s2", "s3"]
    assert s.count_measurements_in_template("py_t1") == 3
    assert s.is_measurement_in_template("py_t1", "s1") is True
    assert s.is_path_exist_in_template("py_t1", "s4") is False
    raises(512, s.show_measurements_in_template, "nope")

    # The SQL forms see what the RPCs created, with the encodings and compressors sent.
    assert query_rows(s, "show nodes in device template py_t1") == [
        {"ChildNodes": "s1", "DataType": "INT64", "Encoding": "RLE", "Compression": "SNAPPY"},
        {"ChildNodes": "s2", "DataType": "DOUBLE", "Encoding": "GORILLA", "Compression": "LZ4"},
        {"ChildNodes": "s3", "DataType": "TEXT", "Encoding": "PLAIN", "Compression": "UNCOMPRESSED"},
    ]

    # append / prune (IoTDB 2.0 refuses both; Duet serves them).
    s.add_measurements_in_template("py_t1", ["s4"], [T.BOOLEAN], [TSEncoding.RLE], [Compressor.LZ4])
    assert s.count_measurements_in_template("py_t1") == 4
    raises(527, s.add_measurements_in_template, "py_t1", ["s4"], [T.BOOLEAN], [TSEncoding.RLE],
           [Compressor.LZ4])
    raises(507, s.add_measurements_in_template, "py_t2", ["alt"], [T.FLOAT], [TSEncoding.GORILLA],
           [Compressor.LZ4])  # is_aligned defaults to False; py_t2 is aligned
    s.delete_node_in_template("py_t1", "s4")
    assert s.is_measurement_in_template("py_t1", "s4") is False

    # set, activate (explicitly and by writes), show where.
    s.set_schema_template("py_t1", "root.pytpl.d")
    s.set_schema_template("py_t2", "root.pytpl.gps")
    raises(507, s.set_schema_template, "py_t2", "root.pytpl.d.x")
    raises(509, s.set_schema_template, "py_t1", "root.pytpl.*")
    assert s.show_paths_template_set_on("py_t1") == ["root.pytpl.d"]
    assert activate(s, "root.pytpl.d.a", "root.pytpl.d.b").code == 200
    assert activate(s, "root.pytpl.d.a").code == 515
    assert activate(s, "root.pytpl.elsewhere").code == 513
    raises(515, s.delete_node_in_template, "py_t1", "s3")

    # insert_record: the template's types, not inference (1 would be read as INT64 already, but
    # an INT64 sent for a DOUBLE measurement is converted like for any series).
    s.insert_record("root.pytpl.d.a", 1, ["s1", "s2"], [T.INT64, T.DOUBLE], [7, 1.5])
    s.insert_str_record("root.pytpl.d.c", 2, ["s1", "s3"], ["8", "x"])
    # insert_tablet to an aligned template's device activates it.
    s.insert_aligned_tablet(Tablet("root.pytpl.gps.car", ["lat", "lon"], [T.FLOAT, T.FLOAT],
                                   [[1.5, 2.5], [3.5, 4.5]], [10, 11]))
    assert sorted(s.show_paths_template_using_on("py_t1")) == [
        "root.pytpl.d.a", "root.pytpl.d.b", "root.pytpl.d.c"]
    assert s.show_paths_template_using_on("py_t2") == ["root.pytpl.gps.car"]
    series = {r["Timeseries"]: r["DataType"] for r in query_rows(s, "show timeseries root.pytpl.d.c.*")}
    assert series == {"root.pytpl.d.c.s1": "INT64", "root.pytpl.d.c.s2": "DOUBLE",
                      "root.pytpl.d.c.s3": "TEXT"}
    assert rows(s, "select s1, s2 from root.pytpl.d.a") == [("1", "7", "1.5")]
    assert rows(s, "select s1, s3 from root.pytpl.d.c") == [("2", "8", "x")]
    assert rows(s, "select lat, lon from root.pytpl.gps.car") == [
        ("10", "1.5", "2.5"), ("11", "3.5", "4.5")]
    devices = {r["Device"]: r["Template"] for r in query_rows(s, "show devices root.pytpl.**")}
    assert devices["root.pytpl.gps.car"] == "py_t2" and devices["root.pytpl.d.b"] == "py_t1"

    # unset / drop: refused while in use, as the SQL forms are.
    raises(515, s.unset_schema_template, "py_t1", "root.pytpl.d")
    raises(507, s.drop_schema_template, "py_t1")
    raises(513, s.unset_schema_template, "py_t1", "root.pytpl.gps")
    s.execute_non_query_statement("deactivate device template py_t1 from root.pytpl.d.*")
    s.unset_schema_template("py_t1", "root.pytpl.d")
    s.drop_schema_template("py_t1")
    raises(512, s.drop_schema_template, "py_t1")
    assert s.show_all_templates() == ["py_t2"]
    assert query_rows(s, "show timeseries root.pytpl.d.**") == []


def test_sql_template_statements_through_the_client(session):
    s = session
    s.execute_non_query_statement("create device template sql_t (v INT32, w BOOLEAN encoding=RLE)")
    s.execute_non_query_statement("set device template sql_t to root.pysql")
    assert "sql_t" in s.show_all_templates()
    assert s.show_paths_template_set_on("sql_t") == ["root.pysql"]
    s.execute_non_query_statement("create timeseries using device template on root.pysql.d1")
    expect_error(s, "create timeseries using device template on root.pysql.d1", 515)
    expect_error(s, "create timeseries root.pysql.d2.x INT32", 516)
    s.insert_tablet(Tablet("root.pysql.d2", ["v"], [T.INT32], [[5], [6]], [1, 2]))
    assert query_rows(s, "show paths using device template sql_t") == [
        {"ChildPaths": "root.pysql.d1"}, {"ChildPaths": "root.pysql.d2"}]
    assert rows(s, "select v from root.pysql.d2") == [("1", "5"), ("2", "6")]
    # A write of a measurement the template lacks extends it (IoTDB's auto-extension).
    s.insert_record("root.pysql.d1", 3, ["z"], [T.INT64], [9])
    assert sorted(s.show_measurements_in_template("sql_t")) == ["v", "w", "z"]
    assert query_rows(s, "count timeseries root.pysql.**") == [{"count(timeseries)": 6}]


def test_template_series_replicate_between_instances(two_servers):
    a, b = two_servers
    sa, sb = a.session(), b.session(compact=True)
    try:
        for s in (sa, sb):
            s.create_schema_template(template(
                "rep_t",
                temp=(T.FLOAT, TSEncoding.GORILLA, Compressor.LZ4),
                count=(T.INT64, TSEncoding.TS_2DIFF, Compressor.LZ4),
            ))
        sa.set_schema_template("rep_t", "root.rep.a")
        sb.set_schema_template("rep_t", "root.rep.b")
        sa.execute_non_query_statement(seed_pipe_sql("AB", b.port))
        sb.execute_non_query_statement(seed_pipe_sql("BA", a.port))

        assert activate(sa, "root.rep.a.d1").code == 200
        sa.insert_tablet(Tablet("root.rep.a.d1", ["temp", "count"], [T.FLOAT, T.INT64],
                                [[20.5, 1], [21.5, 2]], [1, 2]))
        sa.insert_record("root.rep.a.d2", 3, ["count"], [T.INT64], [3])
        sb.insert_str_record("root.rep.b.d1", 4, ["temp", "count"], ["22.5", "4"])

        everything = "select temp, count from root.rep.** align by device"
        expected = [("1", "root.rep.a.d1", "20.5", "1"), ("2", "root.rep.a.d1", "21.5", "2"),
                    ("3", "root.rep.a.d2", "None", "3"), ("4", "root.rep.b.d1", "22.5", "4")]
        assert poll("A's template series on B", lambda: rows(sb, everything) == expected)
        assert poll("B's template series on A", lambda: rows(sa, everything) == expected)
        # The peer's series carry the template's types (the string record's "4" is INT64 by the
        # template, not inferred).
        for s in (sa, sb):
            types = {r["Timeseries"]: r["DataType"]
                     for r in query_rows(s, "show timeseries root.rep.**")}
            assert types["root.rep.a.d1.temp"] == "FLOAT"
            assert types["root.rep.a.d2.count"] == "INT64"
            assert types["root.rep.b.d1.count"] == "INT64"
            assert types["root.rep.b.d1.temp"] == "FLOAT"
    finally:
        sa.close()
        sb.close()
