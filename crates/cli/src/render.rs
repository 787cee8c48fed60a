//! Prints result sets the way IoTDB's CLI does (bordered, right-aligned tables) or as RFC 4180 CSV,
//! streaming: CSV row by row, tables in pages of a bounded number of rows.

use std::borrow::Cow;
use std::io::{self, Write};

use duet_proto::tsblock::TsBlock;

use crate::args::Format;

/// The cells of a block, row by row; `with_time` prepends the time column as a raw integer.
pub fn block_rows(block: &TsBlock, with_time: bool) -> impl Iterator<Item = Vec<String>> + '_ {
    (0..block.n_rows()).map(move |row| {
        let mut cells = Vec::with_capacity(block.columns.len() + usize::from(with_time));
        if with_time {
            cells.push(block.times.get(row).map(i64::to_string).unwrap_or_default());
        }
        cells.extend(block.columns.iter().map(|c| c.render(row)));
        cells
    })
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn border(out: &mut dyn Write, widths: &[usize]) -> io::Result<()> {
    let mut line = String::from("+");
    for w in widths {
        line.extend(std::iter::repeat_n('-', *w));
        line.push('+');
    }
    writeln!(out, "{line}")
}

fn table_row(out: &mut dyn Write, widths: &[usize], cells: &[String]) -> io::Result<()> {
    let mut line = String::from("|");
    for (i, w) in widths.iter().enumerate() {
        let cell = cells.get(i).map(String::as_str).unwrap_or("");
        line.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
        line.push_str(cell);
        line.push('|');
    }
    writeln!(out, "{line}")
}

/// Writes one bordered table: each column as wide as its widest cell or header (in chars), cells
/// right-aligned. With no rows it is IoTDB's empty table: header, then two borders.
pub fn write_table(out: &mut dyn Write, header: &[String], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    border(out, &widths)?;
    table_row(out, &widths, header)?;
    border(out, &widths)?;
    for row in rows {
        table_row(out, &widths, row)?;
    }
    border(out, &widths)
}

/// A CSV field, quoted (with doubled quotes) when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Writes one CSV record with a `\n` line end.
pub fn write_csv_record(out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&csv_field(cell));
    }
    writeln!(out, "{line}")
}

/// Prints one result set as its rows arrive.
pub struct RowPrinter<'a> {
    out: &'a mut dyn Write,
    format: Format,
    header: Vec<String>,
    page: Vec<Vec<String>>,
    page_rows: usize,
    total: u64,
}

impl<'a> RowPrinter<'a> {
    /// Starts a result set; CSV writes its header line at once. `page_rows` (at least 1) bounds how
    /// many rows a table page buffers.
    pub fn new(
        out: &'a mut dyn Write,
        format: Format,
        header: Vec<String>,
        page_rows: usize,
    ) -> io::Result<Self> {
        if format == Format::Csv {
            write_csv_record(out, &header)?;
        }
        Ok(RowPrinter {
            out,
            format,
            header,
            page: Vec::new(),
            page_rows: page_rows.max(1),
            total: 0,
        })
    }

    pub fn push(&mut self, row: Vec<String>) -> io::Result<()> {
        self.total += 1;
        match self.format {
            Format::Csv => write_csv_record(self.out, &row),
            Format::Table => {
                self.page.push(row);
                if self.page.len() >= self.page_rows {
                    write_table(self.out, &self.header, &self.page)?;
                    self.page.clear();
                }
                Ok(())
            }
        }
    }

    /// Ends the result set: the last table page and `Total line number = N` (or `Empty set.`).
    /// Returns the number of rows.
    pub fn finish(self) -> io::Result<u64> {
        if self.format == Format::Table {
            if !self.page.is_empty() || self.total == 0 {
                write_table(self.out, &self.header, &self.page)?;
            }
            if self.total == 0 {
                writeln!(self.out, "Empty set.")?;
            } else {
                writeln!(self.out, "Total line number = {}", self.total)?;
            }
        }
        Ok(self.total)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use duet_proto::types::{Column, ColumnValues, DataType};

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn text(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn table_right_aligns_to_widest_cell_or_header() {
        let out = text(|o| {
            write_table(
                o,
                &s(&["ID", "State"]),
                &[s(&["AB", "RUNNING"]), s(&["ABCD", "x"])],
            )
        });
        assert_eq!(
            out,
            "+----+-------+\n\
             |  ID|  State|\n\
             +----+-------+\n\
             |  AB|RUNNING|\n\
             |ABCD|      x|\n\
             +----+-------+\n"
        );
    }

    #[test]
    fn table_widths_count_chars_not_bytes() {
        let out = text(|o| write_table(o, &s(&["名前", "v"]), &[s(&["é", "ü🙂"])]));
        assert_eq!(out, "+--+--+\n|名前| v|\n+--+--+\n| é|ü🙂|\n+--+--+\n");
    }

    #[test]
    fn empty_table_is_header_only() {
        let out = text(|o| write_table(o, &s(&["Time", "v"]), &[]));
        assert_eq!(out, "+----+-+\n|Time|v|\n+----+-+\n+----+-+\n");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_field(""), "");
        let out = text(|o| write_csv_record(o, &s(&["a", "b,c", "", "d\"e"])));
        assert_eq!(out, "a,\"b,c\",,\"d\"\"e\"\n");
    }

    #[test]
    fn printer_table_pages_and_total() {
        let out = text(|o| {
            let mut p = RowPrinter::new(o, Format::Table, s(&["k"]), 2)?;
            for k in ["1", "22", "333"] {
                p.push(s(&[k]))?;
            }
            assert_eq!(p.finish()?, 3);
            Ok(())
        });
        assert_eq!(out, "+--+\n| k|\n+--+\n| 1|\n|22|\n+--+\n+---+\n|  k|\n+---+\n|333|\n+---+\nTotal line number = 3\n");
    }

    #[test]
    fn printer_table_exact_page_has_no_trailing_empty_table() {
        let out = text(|o| {
            let mut p = RowPrinter::new(o, Format::Table, s(&["k"]), 1)?;
            p.push(s(&["1"]))?;
            p.finish().map(|_| ())
        });
        assert_eq!(out, "+-+\n|k|\n+-+\n|1|\n+-+\nTotal line number = 1\n");
    }

    #[test]
    fn printer_table_empty_set() {
        let out = text(|o| {
            RowPrinter::new(o, Format::Table, s(&["a"]), 10)?
                .finish()
                .map(|_| ())
        });
        assert_eq!(out, "+-+\n|a|\n+-+\n+-+\nEmpty set.\n");
    }

    #[test]
    fn printer_csv_streams_without_footer() {
        let out = text(|o| {
            let mut p = RowPrinter::new(o, Format::Csv, s(&["Time", "v"]), 1)?;
            p.push(s(&["1", "x,y"]))?;
            p.push(s(&["2", "null"]))?;
            p.finish().map(|_| ())
        });
        assert_eq!(out, "Time,v\n1,\"x,y\"\n2,null\n");
        let out = text(|o| {
            RowPrinter::new(o, Format::Csv, s(&["a"]), 1)?
                .finish()
                .map(|_| ())
        });
        assert_eq!(out, "a\n");
    }

    #[test]
    fn block_rows_prepend_raw_time() {
        let block = TsBlock {
            times: vec![1_700_000_000_000, -5],
            columns: vec![Column {
                data_type: DataType::Int32,
                values: ColumnValues::Int32(vec![7, 0]),
                nulls: Some(vec![false, true]),
            }],
        };
        let rows: Vec<_> = block_rows(&block, true).collect();
        assert_eq!(rows, vec![s(&["1700000000000", "7"]), s(&["-5", "null"])]);
        let rows: Vec<_> = block_rows(&block, false).collect();
        assert_eq!(rows, vec![s(&["7"]), s(&["null"])]);
    }
}
