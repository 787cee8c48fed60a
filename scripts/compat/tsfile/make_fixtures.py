#!/usr/bin/env python3
"""Writes TsFile fixtures with Apache's own `tsfile` package (PyPI 2.5.0) and, beside each, a JSON
sidecar with the content the script wrote, computed here (not read back), so crates/tsfile's tests
compare the Rust reader against an independent writer.

usage: make_fixtures.py OUTDIR [--large]

Small files (a few KB, also committed under crates/tsfile/tests/fixtures/):
  tree_plain       tree model, non-aligned, PLAIN/UNCOMPRESSED, every data type, gaps, 2 devices,
                   several chunk groups (flushes)
  table_defaults   table model (aligned), the writer's default encodings (TS_2DIFF, GORILLA, PLAIN)
                   and compressor (LZ4), every data type, nulls, 3 devices, several chunk groups
  tree_encodings   tree model, every encoding the writer offers per type, pages of 20 points
                   (multi-page chunks, statistics in page headers)
  tree_compressors tree model, every compressor the writer offers, pages of 20 points
  table_pages      table model, pages of 20 points, a column null for whole pages (empty pages)
--large adds (kept out of git):
  large_table      1,000,000 rows x 6 fields, defaults (many pages and chunks)
  large_tree       1,000,000 points in each of 3 non-aligned series, defaults
Floats are their IEEE bits in hex (big-endian). Large sidecars hold per-series aggregates and every 9973rd point instead of every point.
"""

import json
import os
import random
import struct
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import tsfile
from tsfile import (
    ColumnCategory,
    ColumnSchema,
    Compressor,
    Field,
    RowRecord,
    TableSchema,
    Tablet,
    TimeseriesSchema,
    TsFileTableWriter,
    TsFileWriter,
    TSDataType as T,
    TSEncoding as E,
)

ALL_TYPES = [T.BOOLEAN, T.INT32, T.INT64, T.FLOAT, T.DOUBLE, T.TEXT, T.TIMESTAMP, T.DATE, T.BLOB, T.STRING]
DEFAULT_CONFIG = {}  # the writer's configuration once initialised (see main)
SAMPLE_EVERY = 9973


def f32(x):
    return float(np.float32(x))


def gen_value(t, rng, i):
    """A value of type t: varied enough to exercise the encodings (runs, jumps, negatives)."""
    if t == T.BOOLEAN:
        return (i // 7) % 2 == 0 if rng.random() < 0.8 else rng.random() < 0.5
    if t == T.INT32:
        return rng.choice([i * 3 - 1000, rng.randint(-(2**31), 2**31 - 1), 42, -7])
    if t in (T.INT64, T.TIMESTAMP):
        return rng.choice([i * 1000 + 17, rng.randint(-(2**63), 2**63 - 1), 0, -1])
    if t == T.FLOAT:
        return f32(rng.choice([i * 0.25, rng.uniform(-1e6, 1e6), 3.5, -0.0]))
    if t == T.DOUBLE:
        return rng.choice([i * 0.1, rng.uniform(-1e12, 1e12), 2.5, 1e-300])
    if t in (T.TEXT, T.STRING):
        return rng.choice(["", "a", "héllo", "中文", "x" * rng.randint(1, 40), f"v{i % 5}"])
    if t == T.DATE:
        return date(1970, 1, 1) + timedelta(days=rng.randint(0, 40000))
    if t == T.BLOB:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 12)))
    raise ValueError(t)


def lossy_float(t, rng, i):
    """Values the scaled-integer float encodings (TS_2DIFF, RLE, RLBE: two decimals by default)
    store exactly: quarters, integers too large to scale, and (for the raw-bits form) huge ones."""
    v = rng.choice([rng.randint(-4_000_000, 4_000_000) / 4, float(rng.randint(-2**40, 2**40)) * 1024,
                    i / 4, 3.0e38 if t == T.FLOAT else 1.0e300, -2.75])
    return f32(v) if t == T.FLOAT else v


def value_for(t, enc, rng, i):
    if t in (T.FLOAT, T.DOUBLE) and enc in (E.TS_2DIFF, E.RLE, E.RLBE):
        return lossy_float(t, rng, i)
    return gen_value(t, rng, i)


def to_json(t, v):
    if v is None:
        return None
    if t == T.DATE:
        return v.year * 10000 + v.month * 100 + v.day
    if t == T.BLOB:
        return v.hex()
    if t == T.FLOAT:
        return struct.pack(">f", v).hex()  # exact bits: JSON number parsing may round
    if t == T.DOUBLE:
        return struct.pack(">d", v).hex()
    return v


class Expected:
    """What a file holds: per (device, measurement) the non-null points and, for aligned devices,
    the rows."""

    def __init__(self, name, large=False):
        self.name = name
        self.large = large
        self.series = {}
        self.rows = {}

    def add(self, device, measurement, t, aligned, encoding, compressor, time, value):
        key = (device, measurement)
        s = self.series.setdefault(
            key,
            dict(device=device, measurement=measurement, type=t.name, aligned=aligned,
                 encoding=encoding.name, compression=compressor.name, points=[]),
        )
        if value is not None:
            s["points"].append([time, to_json(t, value)])

    def add_row(self, device, time):
        self.rows.setdefault(device, []).append(time)

    def write(self, outdir):
        series = []
        for s in self.series.values():
            s = dict(s)
            s["points"].sort(key=lambda p: p[0])
            if self.large:
                pts = s.pop("points")
                s["count"] = len(pts)
                s["min_time"] = pts[0][0] if pts else None
                s["max_time"] = pts[-1][0] if pts else None
                if s["type"] in ("FLOAT", "DOUBLE"):
                    fmt = ">f" if s["type"] == "FLOAT" else ">d"
                    total = 0.0
                    for _, v in pts:
                        total += struct.unpack(fmt, bytes.fromhex(v))[0]
                    s["sum"] = struct.pack(">d", total).hex()
                elif s["type"] in ("INT32", "INT64", "TIMESTAMP", "DATE"):
                    s["sum"] = sum(v for _, v in pts)
                elif s["type"] == "BOOLEAN":
                    s["sum"] = sum(1 for _, v in pts if v)
                s["samples"] = pts[::SAMPLE_EVERY]
            series.append(s)
        series.sort(key=lambda s: (s["device"], s["measurement"]))
        doc = dict(file=self.name + ".tsfile", writer="tsfile " + tsfile_version(), large=self.large,
                   series=series, rows={d: sorted(r) for d, r in sorted(self.rows.items())})
        with open(os.path.join(outdir, self.name + ".json"), "w") as f:
            json.dump(doc, f, indent=None, separators=(",", ":"), ensure_ascii=False)
            f.write("\n")


def tsfile_version():
    try:
        from importlib.metadata import version
        return version("tsfile")
    except Exception:
        return "unknown"


def set_config(**kw):
    """Sets the page size (the only knob changed here) back to the default or to kw's."""
    key = "page_writer_max_point_num_"
    tsfile.set_tsfile_config({key: kw.get(key, DEFAULT_CONFIG[key])})


def path(outdir, name):
    p = os.path.join(outdir, name + ".tsfile")
    if os.path.exists(p):
        os.remove(p)
    return p


def tree_file(outdir, name, devices, rows, rng, flush_every, chooser):
    """Non-aligned tree-model file. devices: {device: [(measurement, type, encoding, compressor)]};
    a point is left out with probability 0.2 (a gap); chooser picks values."""
    exp = Expected(name)
    w = TsFileWriter(path(outdir, name))
    for dev, ms in devices.items():
        for m, t, enc, comp in ms:
            w.register_timeseries(dev, TimeseriesSchema(m, t, enc, comp))
    for r in range(rows):
        time = 1_700_000_000_000 + r * 1000
        for dev, ms in devices.items():
            fields = []
            for m, t, enc, comp in ms:
                if rng.random() < 0.2:
                    continue
                v = chooser(t, enc, rng, r)
                fields.append(Field(m, v, t))
                exp.add(dev, m, t, False, enc, comp, time, v)
            if fields:
                w.write_row_record(RowRecord(dev, time, fields))
        if flush_every and (r + 1) % flush_every == 0:
            w.flush()
    w.close()
    exp.write(outdir)


def table_file(outdir, name, fields, devices, rows, rng, flush_every, null_rate, encodings):
    """Table model (aligned). fields: [(name, type)]; devices: tag values; rows per device."""
    schema = TableSchema("t1", [ColumnSchema("tag1", T.STRING, ColumnCategory.TAG)]
                         + [ColumnSchema(n, t, ColumnCategory.FIELD) for n, t in fields])
    exp = Expected(name)
    with TsFileTableWriter(path(outdir, name), schema) as w:
        batch = flush_every or rows
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            for dev in devices:
                device = "t1." + dev
                tab = Tablet(["tag1"] + [f for f, _ in fields], [T.STRING] + [t for _, t in fields], n)
                for i in range(n):
                    r = start + i
                    time = r * 10 + (5 if dev.endswith("2") else 0)
                    tab.add_timestamp(i, time)
                    tab.add_value_by_name("tag1", i, dev)
                    exp.add_row(device, time)
                    for f, t in fields:
                        v = None if null_rate(f, r) else gen_value(t, rng, r)
                        if v is not None:
                            tab.add_value_by_name(f, i, v)
                        enc, comp = encodings(t)
                        exp.add(device, f, t, True, enc, comp, time, v)
                w.write_table(tab)
            if flush_every:
                w.flush()
    exp.write(outdir)


def default_encoding(t):
    key = {T.BOOLEAN: "boolean", T.INT32: "int32", T.DATE: "int32", T.INT64: "int64", T.TIMESTAMP: "int64",
           T.FLOAT: "float", T.DOUBLE: "double"}.get(t, "string")
    return DEFAULT_CONFIG[key + "_encoding_type_"], DEFAULT_CONFIG["default_compression_type_"]


def small(outdir):
    rng = random.Random(20240601)
    set_config()
    # 1. tree, PLAIN, every type.
    plain = [(f"s_{t.name.lower()}", t, E.PLAIN, Compressor.UNCOMPRESSED) for t in ALL_TYPES]
    tree_file(outdir, "tree_plain", {"root.sg1.d1": plain, "root.sg1.d2.x": plain[:4]}, 40, rng, 15, value_for)

    # 2. table, defaults, every type, nulls, several chunk groups.
    fields = [(f"f_{t.name.lower()}", t) for t in ALL_TYPES]
    table_file(outdir, "table_defaults", fields, ["dev1", "dev2", "dev3"], 60, rng, 25,
               lambda f, r: (r * 7 + len(f)) % 5 == 0, default_encoding)

    # 3. tree, every encoding per type the writer accepts (tsfile 2.5.0 `set_datatype_encoding`),
    #    small pages.
    set_config(page_writer_max_point_num_=20)
    offered = {
        T.BOOLEAN: [E.PLAIN],
        T.INT32: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.ZIGZAG, E.RLE, E.SPRINTZ, E.CHIMP, E.RLBE],
        T.INT64: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.ZIGZAG, E.RLE, E.SPRINTZ, E.CHIMP, E.RLBE],
        T.DATE: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.ZIGZAG, E.RLE, E.SPRINTZ, E.CHIMP, E.RLBE],
        T.TIMESTAMP: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.ZIGZAG, E.RLE, E.SPRINTZ, E.CHIMP, E.RLBE],
        T.FLOAT: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.SPRINTZ, E.CHIMP, E.RLBE],
        T.DOUBLE: [E.PLAIN, E.TS_2DIFF, E.GORILLA, E.SPRINTZ, E.CHIMP, E.RLBE, E.CAMEL],
        T.TEXT: [E.PLAIN, E.DICTIONARY],
        T.STRING: [E.PLAIN, E.DICTIONARY],
        T.BLOB: [E.PLAIN, E.DICTIONARY],
    }
    series = [(f"{t.name.lower()}_{e.name.lower()}", t, e, Compressor.UNCOMPRESSED)
              for t, es in offered.items() for e in es]
    write_what_works(outdir, "tree_encodings", series, 50, rng)

    # 4. tree, every compressor.
    comps = [Compressor.UNCOMPRESSED, Compressor.SNAPPY, Compressor.GZIP, Compressor.LZ4, Compressor.ZSTD,
             Compressor.LZMA2]
    series = [(f"{t.name.lower()}_{c.name.lower()}", t, e, c) for c in comps
              for t, e in [(T.INT64, E.TS_2DIFF), (T.DOUBLE, E.GORILLA), (T.TEXT, E.PLAIN), (T.BOOLEAN, E.PLAIN)]]
    write_what_works(outdir, "tree_compressors", series, 50, rng)

    # 5. table, small pages, a column null for whole pages.
    fields = [("a", T.INT64), ("b", T.DOUBLE), ("c", T.STRING), ("d", T.BOOLEAN)]
    table_file(outdir, "table_pages", fields, ["dev1"], 180, rng, 0,
               lambda f, r: (f == "c" and 50 <= r < 100) or (f == "d" and r % 3 == 0), default_encoding)
    set_config()


def write_what_works(outdir, name, series, rows, rng):
    """Writes the series the writer accepts (it refuses some type/encoding pairs at write time);
    reports the refused ones."""
    ok = []
    for s in series:
        probe = os.path.join(outdir, ".probe.tsfile")
        try:
            w = TsFileWriter(probe)
            w.register_timeseries("root.probe.d", TimeseriesSchema(s[0], s[1], s[2], s[3]))
            w.write_row_record(RowRecord("root.probe.d", 1, [Field(s[0], gen_value(s[1], rng, 1), s[1])]))
            w.close()
            ok.append(s)
        except Exception as e:  # noqa: BLE001 - the writer's refusal is what we report
            print(f"{name}: the writer refuses {s[1].name} {s[2].name} {s[3].name}: {e}", file=sys.stderr)
        finally:
            if os.path.exists(probe):
                os.remove(probe)
    tree_file(outdir, name, {"root.enc.d1": ok}, rows, rng, 0, value_for)


def large(outdir):
    set_config()
    rows = 1_000_000
    rng = np.random.default_rng(7)
    times = np.arange(rows, dtype=np.int64) * 1000 + 1_600_000_000_000
    cols = {
        "v_int64": np.cumsum(rng.integers(-5, 50, rows)).astype(np.int64),
        "v_double": np.round(rng.normal(20.0, 5.0, rows), 3),
        "v_int32": rng.integers(-(2**31), 2**31 - 1, rows, dtype=np.int64).astype(np.int32),
        "v_float": rng.normal(0, 1, rows).astype(np.float32),
        "v_bool": rng.random(rows) < 0.3,
        "v_text": np.array([f"s{i % 1000}" for i in range(rows)], dtype=object),
    }
    types = {"v_int64": T.INT64, "v_double": T.DOUBLE, "v_int32": T.INT32, "v_float": T.FLOAT,
             "v_bool": T.BOOLEAN, "v_text": T.STRING}
    # Table: one device, nulls in v_double every 11th row.
    schema = TableSchema("big", [ColumnSchema("tag1", T.STRING, ColumnCategory.TAG)]
                         + [ColumnSchema(n, t, ColumnCategory.FIELD) for n, t in types.items()])
    exp = Expected("large_table", large=True)
    df = pd.DataFrame({"time": times, "tag1": ["d1"] * rows})
    null_mask = (np.arange(rows) % 11) == 0
    for n, v in cols.items():
        if n == "v_double":
            df[n] = pd.array(np.where(null_mask, np.nan, v), dtype="Float64")
            df.loc[null_mask, n] = pd.NA
        else:
            df[n] = v
    with TsFileTableWriter(path(outdir, "large_table"), schema) as w:
        w.write_dataframe(df)
    for n, t in types.items():
        enc, comp = default_encoding(t)
        vals = cols[n]
        for i in range(rows):
            v = None if (n == "v_double" and null_mask[i]) else vals[i]
            v = None if v is None else (bool(v) if t == T.BOOLEAN else float(v) if t in (T.FLOAT, T.DOUBLE)
                                        else str(v) if t == T.STRING else int(v))
            exp.add("big.d1", n, t, True, enc, comp, int(times[i]), v)
    exp.write(outdir)

    # Tree: three non-aligned series of one device, through tablets.
    exp = Expected("large_tree", large=True)
    w = TsFileWriter(path(outdir, "large_tree"))
    names = ["v_int64", "v_double", "v_float"]
    for n in names:
        enc, comp = default_encoding(types[n])
        w.register_timeseries("root.big.d1", TimeseriesSchema(n, types[n], enc, comp))
    batch = 100_000
    for start in range(0, rows, batch):
        tab = Tablet(names, [types[n] for n in names], batch)
        tab.set_table_name("root.big.d1")
        tab.set_timestamp_list([int(x) for x in times[start:start + batch]])
        for ci, n in enumerate(names):
            conv = int if types[n] == T.INT64 else float
            tab.data_list[ci] = [conv(x) for x in cols[n][start:start + batch]]
        w.write_tablet(tab)
    w.close()
    for n in names:
        enc, comp = default_encoding(types[n])
        conv = int if types[n] == T.INT64 else float
        for i in range(rows):
            exp.add("root.big.d1", n, types[n], False, enc, comp, int(times[i]), conv(cols[n][i]))
    exp.write(outdir)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    # The library initialises its configuration with the first writer.
    probe = os.path.join(outdir, ".init.tsfile")
    TsFileWriter(probe).close()
    os.remove(probe)
    DEFAULT_CONFIG.update(tsfile.get_tsfile_config())
    small(outdir)
    if "--large" in sys.argv[2:]:
        large(outdir)


if __name__ == "__main__":
    main()
