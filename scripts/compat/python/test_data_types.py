"""Every tree-model data type, with nulls, written through each write path
of the official client and read back through todf() and next()/Field.

Each test writes to its own device so the module can share one server."""

import datetime
import math

import numpy as np
import pandas as pd
import pytest
from iotdb.utils.BitMap import BitMap
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.rpc_utils import convert_to_timestamp
from iotdb.utils.Tablet import Tablet

from helpers import query_df, query_rows

T = TSDataType
D = datetime.date

# measurement name, type, values for times 1..5 (None = null)
COLUMNS = [
    ("c_bool", T.BOOLEAN, [True, None, False, True, None]),
    ("c_i32", T.INT32, [1, -2147483648, None, 2147483647, 0]),
    ("c_i64", T.INT64, [None, 9223372036854775807, -9223372036854775808, 42, -1]),
    ("c_float", T.FLOAT, [1.5, None, -0.25, 3.4028234e38, None]),
    ("c_double", T.DOUBLE, [None, 2.718281828459045, -1e300, 0.1, 5e-324]),
    ("c_text", T.TEXT, ["hello", "", None, "héllo wörld ✓", "a,b'c\"d"]),
    ("c_string", T.STRING, [None, "s1", "s2", None, "unicode ✓ 中文"]),
    ("c_blob", T.BLOB, [b"\x00\x01\x02", None, b"", b"\x7f~ok" * 3, None]),
    ("c_date", T.DATE, [D(2024, 1, 2), D(1970, 1, 1), None, D(9999, 12, 31), D(1000, 1, 1)]),
    ("c_ts", T.TIMESTAMP, [0, None, 1700000000123, -1000, None]),
]
TIMES = [1, 2, 3, 4, 5]
NAMES = [c[0] for c in COLUMNS]
TYPES = [c[1] for c in COLUMNS]
ROWS = [[c[2][r] for c in COLUMNS] for r in range(len(TIMES))]

SQL_TYPE = {
    T.BOOLEAN: "BOOLEAN", T.INT32: "INT32", T.INT64: "INT64", T.FLOAT: "FLOAT",
    T.DOUBLE: "DOUBLE", T.TEXT: "TEXT", T.STRING: "STRING", T.BLOB: "BLOB",
    T.DATE: "DATE", T.TIMESTAMP: "TIMESTAMP",
}

# todf() dtypes as produced by apache-iotdb 2.0.11: (without nulls, with nulls).
# A BOOLEAN column without nulls is cast to "boolean" by _build_dataframe;
# with nulls it is a "boolean" Series per block that _build_dataframe then
# np.concatenate()s into object.
EXPECTED_DTYPE = {
    T.BOOLEAN: ("boolean", object), T.INT32: (np.int32, "Int32"),
    T.INT64: (np.int64, "Int64"), T.FLOAT: (np.float32, np.float32),
    T.DOUBLE: (np.float64, np.float64),
}


def ts_expected(session, v):
    # The client's own conversion: pd.Timestamp(v, unit=precision, tz=zone).
    return convert_to_timestamp(v, "ms", session.get_time_zone())


def create_schema(session, device, aligned=False):
    if aligned:
        session.create_aligned_time_series(
            device, NAMES, TYPES, [TSEncoding.PLAIN] * len(NAMES),
            [Compressor.UNCOMPRESSED] * len(NAMES),
        )
    else:
        for name, dt, _ in COLUMNS:
            session.create_time_series(
                f"{device}.{name}", dt, TSEncoding.PLAIN, Compressor.UNCOMPRESSED
            )


def select_sql(device, names=NAMES):
    return f"select {', '.join(names)} from {device}"


def check_value(session, dt, got, want, where):
    if want is None:
        # None (objects), pd.NA (Int32/Int64/boolean), NaN (floats), NaT
        # (TIMESTAMP columns become datetime64 under pandas 3).
        assert got is None or got is pd.NA or got is pd.NaT or (
            isinstance(got, float) and math.isnan(got)), \
            f"{where}: expected null, got {got!r}"
        return
    assert got is not None and got is not pd.NA, f"{where}: expected {want!r}, got null"
    if dt == T.FLOAT:
        assert float(got) == pytest.approx(want, rel=1e-6), where
    elif dt == T.DOUBLE:
        assert float(got) == want, where
    elif dt == T.TIMESTAMP:
        assert isinstance(got, pd.Timestamp), f"{where}: {type(got)}"
        assert got == ts_expected(session, want), f"{where}: {got!r}"
    elif dt == T.DATE:
        assert type(got) is datetime.date and got == want, f"{where}: {got!r}"
    elif dt == T.BLOB:
        assert isinstance(got, bytes) and got == want, f"{where}: {got!r}"
    elif dt in (T.TEXT, T.STRING):
        assert isinstance(got, str) and got == want, f"{where}: {got!r}"
    elif dt == T.BOOLEAN:
        assert bool(got) is want, f"{where}: {got!r}"
    else:
        assert int(got) == want, f"{where}: {got!r}"


def verify_df(session, device, columns=COLUMNS, times=TIMES):
    names = [c[0] for c in columns]
    with session.execute_query_statement(select_sql(device, names)) as ds:
        assert ds.get_column_names() == ["Time"] + [f"{device}.{n}" for n in names]
        assert ds.get_column_types() == [T.INT64] + [c[1] for c in columns]
        df = ds.todf()
    assert list(df.columns) == ["Time"] + [f"{device}.{n}" for n in names]
    assert list(df["Time"]) == times
    for name, dt, values in columns:
        col = df[f"{device}.{name}"]
        if dt in EXPECTED_DTYPE:
            want_dtype = EXPECTED_DTYPE[dt][any(v is None for v in values)]
            assert col.dtype == want_dtype, f"{name}: dtype {col.dtype}, want {want_dtype}"
        got = col.tolist()
        assert len(got) == len(values)
        for r, (g, w) in enumerate(zip(got, values)):
            check_value(session, dt, g, w, f"{device}.{name} row {r}")


def verify_next(session, device, columns=COLUMNS, times=TIMES):
    names = [c[0] for c in columns]
    with session.execute_query_statement(select_sql(device, names)) as ds:
        r = 0
        while ds.has_next():
            rec = ds.next()
            assert rec.get_timestamp() == times[r]
            fields = rec.get_fields()
            assert len(fields) == len(columns)
            for f, (name, dt, values) in zip(fields, columns):
                want = values[r]
                where = f"next() {device}.{name} row {r}"
                if want is None:
                    assert f.is_null() or f.get_object_value(f.get_data_type()) is None, where
                    assert str(f) == "None", where
                    continue
                assert f.get_data_type() == dt, where
                check_value(session, dt, f.get_object_value(dt), want, where)
                if dt == T.BLOB:
                    assert f.get_binary_value() == want
                    assert str(f) == hex(int.from_bytes(want, "big")), where
                elif dt == T.DATE:
                    assert f.get_date_value() == want and str(f) == str(want), where
                elif dt == T.TIMESTAMP:
                    assert f.get_timestamp_value() == ts_expected(session, want), where
                elif dt in (T.TEXT, T.STRING):
                    assert str(f) == want, where
                elif dt == T.INT32:
                    assert f.get_int_value() == want, where
                elif dt == T.INT64:
                    assert f.get_long_value() == want, where
            r += 1
    assert r == len(times)


def verify(session, device, columns=COLUMNS, times=TIMES):
    verify_df(session, device, columns, times)
    verify_next(session, device, columns, times)


def make_numpy_tablet(device):
    values, bitmaps = [], []
    for name, dt, vals in COLUMNS:
        bm = BitMap(len(TIMES))
        filled = []
        for r, v in enumerate(vals):
            if v is None:
                bm.mark(r)
                v = {T.TEXT: "", T.STRING: "", T.BLOB: b"", T.DATE: D(1970, 1, 1),
                     T.BOOLEAN: False}.get(dt, 0)
            filled.append(v)
        if dt in (T.TEXT, T.STRING, T.BLOB, T.DATE):
            arr = np.array(filled, dtype=object)
        else:
            arr = np.array(filled, dtype=dt.np_dtype())
        values.append(arr)
        bitmaps.append(bm)
    return NumpyTablet(device, NAMES, TYPES, values,
                       np.array(TIMES, dtype=">i8"), bitmaps)


def str_value(dt, v):
    """A value as the string-record write paths send it (no BLOB there)."""
    if dt == T.BOOLEAN:
        return "true" if v else "false"
    if dt == T.DATE:
        return v.isoformat()
    if dt == T.FLOAT:
        return repr(float(np.float32(v)))
    return str(v)


def sql_literal(dt, v):
    if v is None:
        return "null"
    if dt in (T.TEXT, T.STRING):
        return "'" + v.replace("'", "''") + "'"
    if dt == T.BLOB:
        return "X'" + v.hex() + "'"
    if dt == T.DATE:
        return f"'{str_value(dt, v)}'"
    return str_value(dt, v)


# --------------------------------------------------------------------------
# write paths
# --------------------------------------------------------------------------

@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_tablet_all_types_with_nulls(session, aligned):
    dev = f"root.dt.tablet_{'al' if aligned else 'na'}"
    create_schema(session, dev, aligned)
    # Rows given out of order: the client sorts them.
    order = [3, 0, 4, 1, 2]
    tablet = Tablet(dev, NAMES, TYPES, [ROWS[i] for i in order], [TIMES[i] for i in order])
    (session.insert_aligned_tablet if aligned else session.insert_tablet)(tablet)
    verify(session, dev)


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_tablet_auto_create_all_types(session, aligned):
    # No schema beforehand: the tablet's declared types create the series.
    dev = f"root.dtauto.tablet_{'al' if aligned else 'na'}"
    tablet = Tablet(dev, NAMES, TYPES, ROWS, TIMES)
    (session.insert_aligned_tablet if aligned else session.insert_tablet)(tablet)
    verify(session, dev)
    rows = {r["Timeseries"]: r for r in query_rows(session, f"SHOW TIMESERIES {dev}.**")}
    assert sorted(rows) == sorted(f"{dev}.{n}" for n in NAMES)
    for name, dt, _ in COLUMNS:
        assert rows[f"{dev}.{name}"]["DataType"] == SQL_TYPE[dt]
    dev_rows = query_rows(session, f"SHOW DEVICES {dev}")
    assert [(r["Device"], r["IsAligned"]) for r in dev_rows] == [
        (dev, "true" if aligned else "false")]


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_numpy_tablet_with_bitmaps(session, aligned):
    dev = f"root.dt.np_{'al' if aligned else 'na'}"
    create_schema(session, dev, aligned)
    tablet = make_numpy_tablet(dev)
    (session.insert_aligned_tablet if aligned else session.insert_tablet)(tablet)
    verify(session, dev)


def test_insert_tablets_all_types(session):
    devs = ["root.dt.multi_a", "root.dt.multi_b"]
    tablets = [Tablet(devs[0], NAMES, TYPES, ROWS, TIMES), make_numpy_tablet(devs[1])]
    session.insert_tablets(tablets)
    for d in devs:
        verify(session, d)


def non_null_cells():
    """Per row of ROWS, the (measurements, types, values) of its non-null cells."""
    meas, types, vals = [], [], []
    for row in ROWS:
        keep = [i for i, v in enumerate(row) if v is not None]
        meas.append([NAMES[i] for i in keep])
        types.append([TYPES[i] for i in keep])
        vals.append([row[i] for i in keep])
    return meas, types, vals


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_insert_records_all_types(session, aligned):
    dev = f"root.dt.records_{'al' if aligned else 'na'}"
    create_schema(session, dev, aligned)
    # insert_records does not drop None itself: send only the non-null cells.
    meas, types, vals = non_null_cells()
    fn = session.insert_aligned_records if aligned else session.insert_records
    fn([dev] * len(TIMES), TIMES, meas, types, vals)
    verify(session, dev)


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_insert_record_all_types(session, aligned):
    dev = f"root.dt.record_{'al' if aligned else 'na'}"
    create_schema(session, dev, aligned)
    fn = session.insert_aligned_record if aligned else session.insert_record
    for t, row in zip(TIMES, ROWS):
        # insert_record drops None values before sending.
        fn(dev, t, NAMES, TYPES, row)
    verify(session, dev)


def test_insert_records_of_one_device_all_types(session):
    dev = "root.dt.one_device"
    meas, types, vals = non_null_cells()
    # Unsorted input: the client sorts by time.
    order = [4, 2, 0, 3, 1]
    session.insert_records_of_one_device(
        dev, [TIMES[i] for i in order], [meas[i] for i in order],
        [types[i] for i in order], [vals[i] for i in order])
    verify(session, dev)


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_insert_str_record_existing_schema(session, aligned):
    """String values are converted to the registered type of each series."""
    dev = f"root.dt.str_{'al' if aligned else 'na'}"
    cols = [c for c in COLUMNS if c[1] != T.BLOB]
    create_schema(session, dev, aligned)
    fn = session.insert_aligned_str_record if aligned else session.insert_str_record
    for r, t in enumerate(TIMES):
        keep = [c for c in cols if c[2][r] is not None]
        fn(dev, t, [c[0] for c in keep], [str_value(c[1], c[2][r]) for c in keep])
    verify(session, dev, cols)


def test_insert_str_record_blob_hex_literal(session):
    dev = "root.dt.str_blob"
    session.create_time_series(f"{dev}.b", T.BLOB, TSEncoding.PLAIN, Compressor.UNCOMPRESSED)
    session.insert_str_record(dev, 1, ["b"], ["X'cafe01'"])
    session.insert_str_record(dev, 2, ["b"], ["X''"])
    # Java: CommonUtils.parseValue(BLOB) -> parseBlobStringToByteArray("X'..'")
    verify(session, dev, [("b", T.BLOB, [b"\xca\xfe\x01", b""])], [1, 2])


def test_insert_str_record_inference(session):
    dev = "root.dtinfer.d1"
    session.insert_str_record(dev, 10, ["i", "f", "b", "s", "n"],
                              ["123", "1.25", "true", "hello", "-7"])
    session.insert_str_record(dev, 11, ["i", "b", "s"], ["-5", "false", "world"])
    types = {r["Timeseries"]: r["DataType"]
             for r in query_rows(session, f"SHOW TIMESERIES {dev}.*")}
    assert types == {f"{dev}.i": "INT64", f"{dev}.f": "DOUBLE", f"{dev}.b": "BOOLEAN",
                     f"{dev}.s": "TEXT", f"{dev}.n": "INT64"}
    verify(session, dev, [
        ("i", T.INT64, [123, -5]), ("f", T.DOUBLE, [1.25, None]),
        ("b", T.BOOLEAN, [True, False]), ("s", T.TEXT, ["hello", "world"]),
        ("n", T.INT64, [-7, None]),
    ], [10, 11])


@pytest.mark.parametrize("aligned", [False, True], ids=["nonaligned", "aligned"])
def test_sql_insert_all_types(session, aligned):
    dev = f"root.dt.sql_{'al' if aligned else 'na'}"
    if aligned:
        session.execute_non_query_statement(
            f"CREATE ALIGNED TIMESERIES {dev}("
            + ", ".join(f"{n} {SQL_TYPE[t]}" for n, t, _ in COLUMNS) + ")")
    else:
        for n, t, _ in COLUMNS:
            session.execute_non_query_statement(
                f"CREATE TIMESERIES {dev}.{n} WITH DATATYPE={SQL_TYPE[t]}")
    # One statement per row so that nulls are simply omitted columns...
    for r in (0, 1):
        keep = [c for c in COLUMNS if c[2][r] is not None]
        session.execute_non_query_statement(
            f"INSERT INTO {dev}(timestamp, {', '.join(c[0] for c in keep)})"
            f"{' ALIGNED' if aligned else ''} VALUES "
            f"({TIMES[r]}, {', '.join(sql_literal(c[1], c[2][r]) for c in keep)})")
    # ... and a multi-row statement with explicit null literals.
    values = ", ".join(
        "(" + ", ".join([str(TIMES[r])] + [sql_literal(t, v[r]) for _, t, v in COLUMNS]) + ")"
        for r in (2, 3, 4))
    session.execute_non_query_statement(
        f"INSERT INTO {dev}(timestamp, {', '.join(NAMES)})"
        f"{' ALIGNED' if aligned else ''} VALUES {values}")
    verify(session, dev)


def test_all_null_column_rows_absent(session):
    """A row whose only measurement is null is not a row at all."""
    dev = "root.dt.allnull"
    tablet = Tablet(dev, ["a", "b"], [T.INT32, T.TEXT],
                    [[1, None], [None, None], [None, "x"]], [1, 2, 3])
    session.insert_tablet(tablet)
    df = query_df(session, f"select a, b from {dev}")
    assert list(df["Time"]) == [1, 3]
    assert df[f"{dev}.a"].tolist()[0] == 1 and df[f"{dev}.a"].isna().tolist() == [False, True]
    assert df[f"{dev}.b"].tolist()[1] == "x" and df[f"{dev}.b"].isna().tolist() == [True, False]


ALL_BYTES = bytes(range(256))


@pytest.mark.parametrize("path", ["tablet", "numpy_tablet", "record", "records", "sql"])
def test_blob_arbitrary_bytes(session, path):
    """BLOB is raw bytes: non-UTF-8 content must round-trip unchanged."""
    dev = f"root.dtblob.{path}"
    vals = [ALL_BYTES, b"\xff\xfe\x80", b"\xc3\x28"]
    times = [1, 2, 3]
    if path == "tablet":
        session.insert_tablet(Tablet(dev, ["b"], [T.BLOB], [[v] for v in vals], times))
    elif path == "numpy_tablet":
        session.insert_tablet(NumpyTablet(dev, ["b"], [T.BLOB], [np.array(vals, dtype=object)],
                                          np.array(times, dtype=">i8")))
    elif path == "record":
        for t, v in zip(times, vals):
            session.insert_record(dev, t, ["b"], [T.BLOB], [v])
    elif path == "records":
        session.insert_records([dev] * 3, times, [["b"]] * 3, [[T.BLOB]] * 3, [[v] for v in vals])
    else:
        session.execute_non_query_statement(f"CREATE TIMESERIES {dev}.b WITH DATATYPE=BLOB")
        session.execute_non_query_statement(
            f"INSERT INTO {dev}(timestamp, b) VALUES "
            + ", ".join(f"({t}, X'{v.hex()}')" for t, v in zip(times, vals)))
    verify(session, dev, [("b", T.BLOB, vals)], times)
