//! The parser's rules for IoTDB tree-model data statements (databases, timeseries, INSERT, DELETE, FLUSH,
//! SELECT) and WHERE expressions, following `grammar/duet.ebnf`.

use sqlparser::tokenizer::Token;

use super::Parser;
use crate::data::{
    is_reserved, BinaryOp, ColumnDef, DataTypeName, DurationLiteral, Expr, Fill, FillMethod,
    GroupByTime, InsertRow, InsertTime, Keep, Literal, Path, PathNode, Select, SelectItem,
    TimeShift, TimeValue, UnaryOp, ATTRIBUTES_PREFIX, TAGS_PREFIX,
};
use crate::error::ParseError;
use crate::scan;
use crate::time;
use crate::Statement;

/// The deepest expression accepted, in parentheses, operators or nodes of the tree: deeper input is a
/// syntax error rather than a stack overflow (here or when the AST is printed or dropped).
pub(super) const MAX_DEPTH: usize = 200;

const DATA_TYPES: &str =
    "a data type (BOOLEAN, INT32, INT64, FLOAT, DOUBLE, TEXT, STRING, BLOB, DATE, TIMESTAMP)";
const TIME_VALUE: &str = "a time (an integer, a datetime or NOW())";
const DURATION: &str = "a duration (such as 1ms, 10s, 1h30m, 1mo, or an integer)";
const VALUE: &str = "a value (a number, a string, TRUE, FALSE, NULL or X'…')";
const PATH: &str = "a path starting with 'root'";

/// An expression and the depth of its tree.
type Node = (Expr, usize);

/// Binding strengths used by the parser (see [`BinaryOp::precedence`] for the binary ones).
const NOT: u8 = 3;
const COMPARISON: u8 = 4;
const ADDITIVE: u8 = 5;
const NEG: u8 = 7;

/// An operator after an operand.
#[derive(Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    /// BETWEEN, IN, LIKE, REGEXP or IS, possibly after NOT.
    Postfix,
}

impl Parser {
    /// An Unsupported error at the current token.
    pub(super) fn unsupported_here(&self, what: &str) -> ParseError {
        let at = self.tokens.location();
        ParseError::unsupported(at.line, at.column, format!("{what} is not supported yet"))
    }

    fn syntax_here(&self, message: String) -> ParseError {
        let at = self.tokens.location();
        ParseError::syntax(at.line, at.column, message)
    }

    fn is_token(&self, n: usize, token: &Token) -> bool {
        self.tokens.peek_nth(n) == Some(token)
    }

    // ---- paths -------------------------------------------------------------------------------------

    /// An absolute path (`root.…`, wildcards allowed); the first node is normalized to `root`.
    pub(super) fn path(&mut self) -> Result<Path, ParseError> {
        if !self.tokens.is_keyword("ROOT") {
            return Err(self.tokens.expected(PATH));
        }
        let mut path = self.scan_path()?;
        if let Some(first) = path.0.first_mut() {
            *first = PathNode::Name("root".into());
        }
        Ok(path)
    }

    /// An absolute path without wildcards.
    pub(super) fn concrete_path(&mut self, what: &str) -> Result<Path, ParseError> {
        let at = self.tokens.location();
        let path = self.path()?;
        if path.is_pattern() {
            return Err(ParseError::syntax(
                at.line,
                at.column,
                format!("expected {what} without wildcards but found '{path}'"),
            ));
        }
        Ok(path)
    }

    /// `path { "," path }`
    fn path_list(&mut self) -> Result<Vec<Path>, ParseError> {
        let mut paths = vec![self.path()?];
        while self.tokens.eat_token(&Token::Comma) {
            paths.push(self.path()?);
        }
        Ok(paths)
    }

    /// A path relative to the FROM paths (`s1`, `d1.s1`, `*.s1`), or an absolute one in WHERE. It may not
    /// start with an unquoted reserved word.
    fn relative_path(&mut self, what: &str) -> Result<Path, ParseError> {
        let root = self.tokens.is_keyword("ROOT");
        let starts_path = match self.tokens.peek() {
            Some(Token::Word(word)) => word.quote_style.is_some() || !is_reserved(&word.value),
            Some(Token::Mul) => true,
            _ => false,
        };
        if !starts_path {
            return Err(self.tokens.expected(what));
        }
        let mut path = self.scan_path()?;
        if root {
            if let Some(first) = path.0.first_mut() {
                *first = PathNode::Name("root".into());
            }
        }
        Ok(path)
    }

    /// A path read from the source text at the current token.
    fn scan_path(&mut self) -> Result<Path, ParseError> {
        let at = self.tokens.location();
        let Some((start, text)) = self.tokens.rest() else {
            return Err(self.tokens.expected("a path"));
        };
        match scan::path(text) {
            Ok((nodes, len)) => {
                self.tokens.skip_to(start + len, "the path")?;
                Ok(Path(nodes))
            }
            Err(error) => {
                // Where the offending node starts inside a token (`.12`), point at it from the
                // path's start.
                let before = text[..error.offset].to_owned();
                if self
                    .tokens
                    .skip_to(start + error.offset, "the path")
                    .is_ok()
                {
                    return Err(self.tokens.expected(error.message));
                }
                let (line, column) = match before.rfind('\n') {
                    Some(newline) => (
                        at.line + before.matches('\n').count() as u64,
                        before[newline + 1..].chars().count() as u64 + 1,
                    ),
                    None => (at.line, at.column + before.chars().count() as u64),
                };
                Err(ParseError::syntax(
                    line,
                    column,
                    format!("expected {}", error.message),
                ))
            }
        }
    }

    /// A measurement name: one path node without wildcards (reserved words are fine here).
    pub(super) fn node_name(&mut self, what: &str) -> Result<String, ParseError> {
        let at = self.tokens.location();
        if !matches!(self.tokens.peek(), Some(Token::Word(_) | Token::Number(..))) {
            return Err(self.tokens.expected(what));
        }
        let Path(mut nodes) = self.scan_path()?;
        match (nodes.pop(), nodes.is_empty()) {
            (Some(PathNode::Name(name)), true) => Ok(name),
            _ => Err(ParseError::syntax(
                at.line,
                at.column,
                format!("expected {what} (a single name, without '.' or wildcards)"),
            )),
        }
    }

    // ---- databases and timeseries ---------------------------------------------------------------------

    /// After `CREATE DATABASE`, `CREATE STORAGE GROUP` or `SET STORAGE GROUP TO`.
    pub(super) fn create_database(&mut self) -> Result<Statement, ParseError> {
        let path = self.concrete_path("a database path")?;
        if self.tokens.is_keyword("WITH") {
            return Err(self.unsupported_here("CREATE DATABASE … WITH"));
        }
        Ok(Statement::CreateDatabase { path })
    }

    /// The optional path of SHOW/COUNT statements; clauses that IoTDB allows after it are Unsupported.
    pub(super) fn optional_path(&mut self, statement: &str) -> Result<Option<Path>, ParseError> {
        const CLAUSES: [&str; 8] = [
            "WHERE",
            "LIMIT",
            "OFFSET",
            "GROUP",
            "WITH",
            "DETAILS",
            "ORDER",
            "TIMECONDITION",
        ];
        let path = match self.tokens.peek() {
            None | Some(Token::SemiColon) => None,
            Some(_) if CLAUSES.iter().any(|clause| self.tokens.is_keyword(clause)) => None,
            Some(_) => Some(self.path()?),
        };
        if let Some(clause) = CLAUSES.iter().find(|clause| self.tokens.is_keyword(clause)) {
            return Err(self.unsupported_here(&format!("{clause} in {statement}")));
        }
        Ok(path)
    }

    /// After `COUNT TIMESERIES`: `[path] [GROUP BY LEVEL = n]`.
    pub(super) fn count_timeseries(&mut self) -> Result<Statement, ParseError> {
        let path = match self.tokens.peek() {
            Some(Token::Word(_)) if self.tokens.is_keyword("ROOT") => Some(self.path()?),
            _ => None,
        };
        if self.tokens.eat_keyword("GROUP") {
            self.tokens.expect_keyword("BY")?;
            let level = self.level()?;
            return Ok(Statement::CountTimeseriesByLevel { path, level });
        }
        let rest = self.optional_path("COUNT TIMESERIES")?;
        match (path, rest) {
            (Some(_), Some(_)) => Err(self
                .tokens
                .expected("GROUP BY LEVEL or the end of the statement")),
            (path, rest) => Ok(Statement::CountTimeseries {
                path: path.or(rest),
            }),
        }
    }

    /// After `COUNT NODES`: `path LEVEL = n`.
    pub(super) fn count_nodes(&mut self) -> Result<Statement, ParseError> {
        let path = self.path()?;
        let level = self.level()?;
        Ok(Statement::CountNodes { path, level })
    }

    /// `LEVEL = n` with `n` a non-negative integer.
    fn level(&mut self) -> Result<u32, ParseError> {
        self.tokens.expect_keyword("LEVEL")?;
        self.tokens.expect_token(&Token::Eq, "'='")?;
        let value = self.tokens.next_if_map(|token| match token {
            Token::Number(number, _) => number.parse::<u32>().ok(),
            _ => None,
        });
        value.ok_or_else(|| self.tokens.expected("a level (a non-negative integer)"))
    }

    /// After `CREATE TIMESERIES`.
    pub(super) fn create_timeseries(&mut self) -> Result<Statement, ParseError> {
        let path = self.concrete_path("a timeseries path")?;
        if self.is_token(0, &Token::LParen) {
            return Err(self.unsupported_here("a measurement alias"));
        }
        let (data_type, attributes) = self.timeseries_attributes()?;
        Ok(Statement::CreateTimeseries {
            path,
            data_type,
            attributes,
        })
    }

    /// After `CREATE ALIGNED TIMESERIES`.
    pub(super) fn create_aligned_timeseries(&mut self) -> Result<Statement, ParseError> {
        let device = self.concrete_path("a device path")?;
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let mut columns = Vec::new();
        loop {
            let name = self.node_name("a measurement name")?;
            let (data_type, attributes) = self.timeseries_attributes()?;
            columns.push(ColumnDef {
                name,
                data_type,
                attributes,
            });
            if !self.tokens.eat_token(&Token::Comma) {
                self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                return Ok(Statement::CreateAlignedTimeseries { device, columns });
            }
        }
    }

    /// `[WITH] [DATATYPE =] type { [","] KEY = value } [TAGS (…)] [ATTRIBUTES (…)]`
    pub(super) fn timeseries_attributes(
        &mut self,
    ) -> Result<(DataTypeName, Vec<(String, String)>), ParseError> {
        self.tokens.eat_keyword("WITH");
        if self.tokens.is_keyword("DATATYPE") && self.is_token(1, &Token::Eq) {
            self.tokens.advance();
            self.tokens.advance();
        }
        let data_type = self.data_type()?;
        let mut attributes = Vec::new();
        loop {
            let skip = usize::from(self.is_token(0, &Token::Comma));
            let key = match self.tokens.peek_nth(skip) {
                Some(Token::Word(word))
                    if word.quote_style.is_none() && self.is_token(skip + 1, &Token::Eq) =>
                {
                    word.value.to_uppercase()
                }
                _ => break,
            };
            for _ in 0..skip + 2 {
                self.tokens.advance();
            }
            attributes.push((key, self.attribute_value()?));
        }
        for (clause, prefix) in [("TAGS", TAGS_PREFIX), ("ATTRIBUTES", ATTRIBUTES_PREFIX)] {
            if !(self.tokens.is_keyword(clause) && self.is_token(1, &Token::LParen)) {
                continue;
            }
            self.tokens.advance();
            self.tokens.advance();
            loop {
                let key = self.attribute_text("a key")?;
                self.tokens.expect_token(&Token::Eq, "'='")?;
                attributes.push((format!("{prefix}{key}"), self.attribute_value()?));
                if !self.tokens.eat_token(&Token::Comma) {
                    self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                    break;
                }
            }
        }
        Ok((data_type, attributes))
    }

    fn data_type(&mut self) -> Result<DataTypeName, ParseError> {
        self.tokens
            .next_if_map(|token| match token {
                Token::Word(word) if word.quote_style.is_none() => {
                    DataTypeName::from_name(&word.value)
                }
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected(DATA_TYPES))
    }

    /// An attribute value: a word, a (possibly negative) number or a string, as written without quotes.
    fn attribute_value(&mut self) -> Result<String, ParseError> {
        if self.is_token(0, &Token::Minus) {
            if let Some(Token::Number(number, _)) = self.tokens.peek_nth(1) {
                let value = format!("-{number}");
                self.tokens.advance();
                self.tokens.advance();
                return Ok(value);
            }
        }
        if let Some(Token::Number(number, _)) = self.tokens.peek() {
            let value = number.clone();
            self.tokens.advance();
            return Ok(value);
        }
        self.attribute_text("a value")
    }

    /// A word (any quoting) or a string.
    fn attribute_text(&mut self, what: &str) -> Result<String, ParseError> {
        self.tokens
            .next_if_map(|token| match token {
                Token::Word(word) if !word.value.is_empty() => Some(word.value.clone()),
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected(what))
    }

    // ---- INSERT, DELETE, FLUSH ---------------------------------------------------------------------------

    /// After `INSERT INTO`.
    pub(super) fn insert(&mut self) -> Result<Statement, ParseError> {
        let device = self.concrete_path("a device path")?;
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let has_time = self.tokens.eat_keyword("TIME") || self.tokens.eat_keyword("TIMESTAMP");
        if has_time {
            self.tokens.expect_token(&Token::Comma, "','")?;
        }
        let mut columns = Vec::new();
        loop {
            columns.push(self.node_name("a measurement name")?);
            if !self.tokens.eat_token(&Token::Comma) {
                self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                break;
            }
        }
        let aligned = self.tokens.eat_keyword("ALIGNED");
        self.tokens.expect_keyword("VALUES")?;
        let mut rows = Vec::new();
        loop {
            let at = self.tokens.location();
            self.tokens.expect_token(&Token::LParen, "'('")?;
            let time = if has_time {
                let time = self.time_value("a timestamp (an integer, a datetime or NOW())")?;
                self.tokens.expect_token(&Token::Comma, "','")?;
                insert_time(time)
            } else {
                InsertTime::Now
            };
            let mut values = vec![self.literal()?];
            while self.tokens.eat_token(&Token::Comma) {
                values.push(self.literal()?);
            }
            self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
            if values.len() != columns.len() {
                return Err(ParseError::syntax(
                    at.line,
                    at.column,
                    format!(
                        "expected {} values in the row (one per measurement) but found {}",
                        columns.len(),
                        values.len()
                    ),
                ));
            }
            rows.push(InsertRow { time, values });
            if !self.tokens.eat_token(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Insert {
            device,
            aligned,
            columns,
            rows,
        })
    }

    /// After `DELETE FROM`.
    pub(super) fn delete_data(&mut self) -> Result<Statement, ParseError> {
        let paths = self.path_list()?;
        let condition = if self.tokens.eat_keyword("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Statement::DeleteData { paths, condition })
    }

    /// After `DROP DATABASE` and its synonyms.
    pub(super) fn drop_database(&mut self) -> Result<Statement, ParseError> {
        Ok(Statement::DropDatabase {
            paths: self.path_list()?,
        })
    }

    /// After `DELETE TIMESERIES` / `DROP TIMESERIES`.
    pub(super) fn delete_timeseries(&mut self) -> Result<Statement, ParseError> {
        Ok(Statement::DeleteTimeseries {
            paths: self.path_list()?,
        })
    }

    /// After `FLUSH`: `[path {, path}] [TRUE | FALSE] [ON (LOCAL | CLUSTER)]`, the flags dropped.
    pub(super) fn flush(&mut self) -> Result<Statement, ParseError> {
        let paths = if self.tokens.is_keyword("ROOT") {
            self.path_list()?
        } else {
            Vec::new()
        };
        let _sequence = self.tokens.eat_keyword("TRUE") || self.tokens.eat_keyword("FALSE");
        if self.tokens.eat_keyword("ON")
            && !self.tokens.eat_keyword("LOCAL")
            && !self.tokens.eat_keyword("CLUSTER")
        {
            return Err(self.tokens.expected("LOCAL or CLUSTER"));
        }
        Ok(Statement::Flush { paths })
    }

    // ---- literals and times ------------------------------------------------------------------------------

    /// A constant: number (optionally negative), string, `X'…'`, TRUE, FALSE or NULL.
    fn literal(&mut self) -> Result<Literal, ParseError> {
        if self.is_token(0, &Token::Minus) {
            if let Some(Token::Number(number, _)) = self.tokens.peek_nth(1) {
                let literal = number_literal(format!("-{number}"));
                self.tokens.advance();
                self.tokens.advance();
                return Ok(literal);
            }
        }
        let literal = match self.tokens.peek() {
            Some(Token::Number(number, _)) => number_literal(number.clone()),
            Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => {
                Literal::String(s.clone())
            }
            Some(Token::HexStringLiteral(hex)) => match hex::decode(hex) {
                Ok(bytes) => Literal::Blob(bytes),
                Err(_) => {
                    return Err(self.syntax_here(format!(
                        "expected an even number of hexadecimal digits in X'{hex}'"
                    )))
                }
            },
            Some(Token::Word(word)) if word.quote_style.is_none() => {
                match word.value.to_ascii_uppercase().as_str() {
                    "TRUE" => Literal::Boolean(true),
                    "FALSE" => Literal::Boolean(false),
                    "NULL" => Literal::Null,
                    _ => return Err(self.tokens.expected(VALUE)),
                }
            }
            _ => return Err(self.tokens.expected(VALUE)),
        };
        self.tokens.advance();
        Ok(literal)
    }

    /// A bare datetime at the current token, consumed; one that names no real time (a month 13) is an
    /// error at its position.
    fn bare_datetime(&mut self) -> Result<Option<String>, ParseError> {
        if !matches!(self.tokens.peek(), Some(Token::Number(..))) {
            return Ok(None);
        }
        let Some((start, text)) = self.tokens.rest() else {
            return Ok(None);
        };
        let Some(len) = scan::datetime(text) else {
            return Ok(None);
        };
        let datetime = text[..len].to_owned();
        self.check_datetime(&datetime)?;
        self.tokens.skip_to(start + len, "the datetime")?;
        Ok(Some(datetime))
    }

    /// An error at the current token unless `text` is a valid datetime.
    fn check_datetime(&self, text: &str) -> Result<(), ParseError> {
        time::parse_datetime(text)
            .map(|_| ())
            .map_err(|why| self.syntax_here(why))
    }

    /// A time value, and after a datetime or `NOW()` any `+ duration` / `- duration` (IoTDB's date
    /// expression).
    fn time_value(&mut self, what: &str) -> Result<TimeValue, ParseError> {
        let base = self.plain_time_value(what)?;
        if !matches!(base, TimeValue::DateTime(_) | TimeValue::Now) {
            return Ok(base);
        }
        let mut shifts = Vec::new();
        while let Some(shift) = self.time_shift()? {
            shifts.push(shift);
        }
        if shifts.is_empty() {
            Ok(base)
        } else {
            Ok(TimeValue::Shifted {
                base: Box::new(base),
                shifts,
            })
        }
    }

    /// `+ duration` or `- duration` at the current token, consumed; `None` (nothing consumed) when the
    /// tokens are not an operator and a duration with a unit.
    fn time_shift(&mut self) -> Result<Option<TimeShift>, ParseError> {
        let subtract = match self.tokens.peek() {
            Some(Token::Plus) => false,
            Some(Token::Minus) => true,
            _ => return Ok(None),
        };
        let is_duration = matches!(self.tokens.peek_nth(1), Some(Token::Word(word))
            if word.quote_style.is_none()
                && word.value.starts_with(|c: char| c.is_ascii_digit())
                && scan::is_duration(&word.value));
        if !is_duration {
            return Ok(None);
        }
        self.tokens.advance();
        let duration = self.duration()?;
        Ok(Some(TimeShift { subtract, duration }))
    }

    /// An integer (optionally negative), a bare or quoted datetime, or `NOW()`.
    fn plain_time_value(&mut self, what: &str) -> Result<TimeValue, ParseError> {
        if self.tokens.is_keyword("NOW") && self.is_token(1, &Token::LParen) {
            self.tokens.advance();
            self.tokens.advance();
            self.tokens.expect_token(&Token::RParen, "')'")?;
            return Ok(TimeValue::Now);
        }
        if let Some(datetime) = self.bare_datetime()? {
            return Ok(TimeValue::DateTime(datetime));
        }
        let negative = self.is_token(0, &Token::Minus)
            && matches!(self.tokens.peek_nth(1), Some(Token::Number(..)));
        if negative {
            self.tokens.advance();
        }
        let value = match self.tokens.peek() {
            Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s))
                if !negative && scan::is_datetime(s) =>
            {
                self.check_datetime(s)?;
                TimeValue::DateTime(s.clone())
            }
            Some(Token::Number(number, _)) if number.bytes().all(|b| b.is_ascii_digit()) => {
                let text = if negative {
                    format!("-{number}")
                } else {
                    number.clone()
                };
                match text.parse::<i64>() {
                    Ok(value) => TimeValue::Value(value),
                    Err(_) => {
                        return Err(self.syntax_here(format!(
                            "expected a time within the 64-bit range but found {text}"
                        )))
                    }
                }
            }
            _ => return Err(self.tokens.expected(what)),
        };
        self.tokens.advance();
        Ok(value)
    }

    /// A duration; one whose value does not fit in 64 bits is an error at its position.
    fn duration(&mut self) -> Result<DurationLiteral, ParseError> {
        let text = match self.tokens.peek() {
            Some(Token::Word(word))
                if word.quote_style.is_none() && scan::is_duration(&word.value) =>
            {
                word.value.clone()
            }
            Some(Token::Number(number, _)) if scan::is_duration(number) => number.clone(),
            _ => return Err(self.tokens.expected(DURATION)),
        };
        time::parse_duration(&text).map_err(|why| self.syntax_here(why))?;
        self.tokens.advance();
        Ok(DurationLiteral { text })
    }

    // ---- SELECT --------------------------------------------------------------------------------------------

    /// After `SELECT`.
    pub(super) fn select(&mut self) -> Result<Statement, ParseError> {
        let last = self.tokens.is_keyword("LAST") && !self.is_token(1, &Token::LParen);
        if last {
            self.tokens.advance();
        }
        let mut items = vec![self.select_item()?];
        while self.tokens.eat_token(&Token::Comma) {
            items.push(self.select_item()?);
        }
        self.unsupported_clause()?;
        if !self.tokens.eat_keyword("FROM") {
            return Err(self.tokens.expected("',' or FROM"));
        }
        let from = self.path_list()?;
        let mut select = Select {
            last,
            ..Select::new(items, from)
        };
        self.unsupported_clause()?;
        if self.tokens.eat_keyword("WHERE") {
            select.condition = Some(self.expr()?);
        }
        self.unsupported_clause()?;
        if self.tokens.is_keyword("GROUP") && self.tokens.is_keyword_at(1, "BY") {
            self.tokens.advance();
            self.tokens.advance();
            self.group_by(&mut select)?;
        }
        self.unsupported_clause()?;
        if self.tokens.eat_keyword("HAVING") {
            self.aggregates = true;
            let having = self.expr();
            self.aggregates = false;
            select.having = Some(having?);
        }
        // ORDER BY and FILL, in either order.
        for _ in 0..2 {
            self.unsupported_clause()?;
            if select.fill.is_none() && self.tokens.is_keyword("FILL") {
                self.tokens.advance();
                select.fill = Some(self.fill()?);
            } else if !select.order_by_time_desc && self.tokens.eat_keywords(&["ORDER", "BY"]) {
                if !(self.tokens.eat_keyword("TIME") || self.tokens.eat_keyword("TIMESTAMP")) {
                    return Err(self.unsupported_here("ORDER BY other than TIME"));
                }
                select.order_by_time_desc = self.tokens.eat_keyword("DESC");
                if !select.order_by_time_desc {
                    self.tokens.eat_keyword("ASC");
                }
            }
        }
        self.unsupported_clause()?;
        loop {
            let slot = if self.tokens.is_keyword("LIMIT") {
                &mut select.limit
            } else if self.tokens.is_keyword("OFFSET") {
                &mut select.offset
            } else if self.tokens.is_keyword("SLIMIT") {
                &mut select.slimit
            } else if self.tokens.is_keyword("SOFFSET") {
                &mut select.soffset
            } else {
                break;
            };
            if slot.is_some() {
                break;
            }
            self.tokens.advance();
            let value = self.tokens.next_if_map(|token| match token {
                Token::Number(number, _) => number.parse::<u64>().ok(),
                _ => None,
            });
            match value {
                Some(value) => *slot = Some(value),
                None => return Err(self.tokens.expected("a non-negative integer")),
            }
        }
        self.unsupported_clause()?;
        if self.tokens.eat_keyword("ALIGN") {
            self.tokens.expect_keyword("BY")?;
            if self.tokens.eat_keyword("DEVICE") {
                select.align_by_device = true;
            } else if !self.tokens.eat_keyword("TIME") {
                return Err(self.tokens.expected("DEVICE or TIME"));
            }
        }
        self.unsupported_clause()?;
        Ok(Statement::Select(Box::new(select)))
    }

    /// IoTDB query clauses Duet does not implement, as Unsupported errors at the clause.
    fn unsupported_clause(&self) -> Result<(), ParseError> {
        const CLAUSES: [(&str, &str); 3] = [
            ("INTO", "SELECT … INTO"),
            ("DISABLE", "DISABLE ALIGN"),
            ("WITHOUT", "WITHOUT NULL"),
        ];
        match CLAUSES
            .iter()
            .find(|(keyword, _)| self.tokens.is_keyword(keyword))
        {
            Some((_, what)) => Err(self.unsupported_here(what)),
            None => Ok(()),
        }
    }

    fn select_item(&mut self) -> Result<SelectItem, ParseError> {
        const ITEM: &str = "a select item (a series path, * or an aggregate such as COUNT(s1))";
        let function = match self.tokens.peek() {
            Some(Token::Word(word))
                if word.quote_style.is_none() && self.is_token(1, &Token::LParen) =>
            {
                // As written: IoTDB's column header echoes the function's spelling (`AVG(root.d.s)`).
                Some(word.value.clone())
            }
            _ => None,
        };
        let item = match function {
            Some(function) if function.eq_ignore_ascii_case("COUNT_IF") => {
                self.tokens.advance();
                self.tokens.advance();
                self.count_if(function)?
            }
            Some(function) => {
                let path = self.aggregate_argument()?;
                SelectItem::Aggregate {
                    function,
                    path,
                    alias: self.alias()?,
                }
            }
            None => {
                let path = self.relative_path(ITEM)?;
                let alias = self.alias()?;
                if alias.is_none() && path.0 == [PathNode::One] {
                    SelectItem::Wildcard
                } else {
                    SelectItem::Path { path, alias }
                }
            }
        };
        if matches!(
            self.tokens.peek(),
            Some(Token::Plus | Token::Minus | Token::Mul | Token::Div | Token::Mod)
        ) {
            return Err(self.unsupported_here("an expression in the SELECT list"));
        }
        Ok(item)
    }

    /// The one series path an aggregate takes, from its name (the next token) to its `)`.
    fn aggregate_argument(&mut self) -> Result<Path, ParseError> {
        self.tokens.advance();
        self.tokens.advance();
        let path = self.relative_path("a series path or *")?;
        if self.is_token(0, &Token::Comma) {
            return Err(self.unsupported_here("a function with several arguments"));
        }
        self.tokens.expect_token(&Token::RParen, "')'")?;
        Ok(path)
    }

    /// The arguments of `COUNT_IF(` up to its `)`, and its alias.
    fn count_if(&mut self, function: String) -> Result<SelectItem, ParseError> {
        let predicate = self.expr()?;
        self.tokens
            .expect_token(&Token::Comma, "',' and COUNT_IF's keep condition")?;
        let op = if self.tokens.eat_keyword("KEEP") {
            match self.infix() {
                Some(Infix::Binary(op)) if op.precedence() == BinaryOp::Eq.precedence() => {
                    self.tokens.advance();
                    Some(op)
                }
                _ => return Err(self.tokens.expected("a comparison after KEEP")),
            }
        } else {
            None
        };
        let threshold = self
            .tokens
            .next_if_map(|token| match token {
                Token::Number(number, _) => number.parse::<u64>().ok(),
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected("a non-negative integer threshold"))?;
        let mut ignore_null = None;
        if self
            .tokens
            .next_if_map(|t| (*t == Token::Comma).then_some(()))
            .is_some()
        {
            let quoted = |parser: &Self| match parser.tokens.peek() {
                Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => {
                    Some(s.clone())
                }
                _ => None,
            };
            match quoted(self) {
                Some(key) if key.eq_ignore_ascii_case("ignoreNull") => self.tokens.advance(),
                Some(key) => {
                    return Err(self.syntax_here(format!(
                        "COUNT_IF has one attribute, 'ignoreNull', not '{key}'"
                    )))
                }
                None => return Err(self.tokens.expected("the attribute 'ignoreNull'")),
            }
            self.tokens.expect_token(&Token::Eq, "'='")?;
            let value = quoted(self).unwrap_or_default();
            ignore_null = Some(match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(self
                        .syntax_here(format!("'ignoreNull' is 'true' or 'false', not '{value}'")))
                }
            });
            self.tokens.advance();
        }
        self.tokens.expect_token(&Token::RParen, "')'")?;
        Ok(SelectItem::CountIf {
            function,
            predicate,
            keep: Keep { op, threshold },
            ignore_null,
            alias: self.alias()?,
        })
    }

    fn alias(&mut self) -> Result<Option<String>, ParseError> {
        if self.tokens.eat_keyword("AS") {
            Ok(Some(self.name("an alias")?))
        } else {
            Ok(None)
        }
    }

    /// After `GROUP BY`: time windows, `LEVEL = n {, n}`, or both (each at most once, either first).
    fn group_by(&mut self, select: &mut Select) -> Result<(), ParseError> {
        loop {
            if self.is_token(0, &Token::LParen) {
                if select.group_by.is_some() {
                    return Err(self.syntax_here("expected one GROUP BY time clause".into()));
                }
                select.group_by = Some(self.group_by_time()?);
            } else if self.tokens.is_keyword("LEVEL") {
                if select.group_by_level.is_some() {
                    return Err(self.syntax_here("expected one GROUP BY LEVEL clause".into()));
                }
                self.tokens.advance();
                self.tokens.expect_token(&Token::Eq, "'='")?;
                let mut levels = vec![self.level_number()?];
                while self.is_token(0, &Token::Comma)
                    && matches!(self.tokens.peek_nth(1), Some(Token::Number(..)))
                {
                    self.tokens.advance();
                    levels.push(self.level_number()?);
                }
                select.group_by_level = Some(levels);
            } else {
                return Err(match self.tokens.peek() {
                    Some(Token::Word(word)) if word.quote_style.is_none() => {
                        let what = format!("GROUP BY {}", word.value.to_uppercase());
                        self.unsupported_here(&what)
                    }
                    _ => self.tokens.expected("'(' or LEVEL"),
                });
            }
            if !self.tokens.eat_token(&Token::Comma) {
                return Ok(());
            }
        }
    }

    /// A GROUP BY LEVEL level: a non-negative integer.
    fn level_number(&mut self) -> Result<u32, ParseError> {
        self.tokens
            .next_if_map(|token| match token {
                Token::Number(number, _) => number.parse::<u32>().ok(),
                _ => None,
            })
            .ok_or_else(|| self.tokens.expected("a level (a non-negative integer)"))
    }

    /// After `FILL`: `( (PREVIOUS | LINEAR | constant) [, duration] )`.
    fn fill(&mut self) -> Result<Fill, ParseError> {
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let method = if self.tokens.eat_keyword("PREVIOUS") {
            FillMethod::Previous
        } else if self.tokens.eat_keyword("LINEAR") {
            FillMethod::Linear
        } else {
            let at = self.tokens.location();
            match self.literal() {
                Ok(Literal::Null) => {
                    return Err(ParseError::syntax(
                        at.line,
                        at.column,
                        "expected PREVIOUS, LINEAR or a constant to fill with, not NULL",
                    ))
                }
                Ok(Literal::Blob(_)) => {
                    return Err(ParseError::syntax(
                        at.line,
                        at.column,
                        "expected PREVIOUS, LINEAR or a number, string or boolean to fill with",
                    ))
                }
                Ok(value) => FillMethod::Constant(value),
                Err(_) => {
                    return Err(self.tokens.expected(
                        "PREVIOUS, LINEAR or a constant (a number, a string, TRUE or FALSE)",
                    ))
                }
            }
        };
        // Only PREVIOUS takes a bound; the engine says so (a semantic error, as IoTDB's).
        let bound = if self.tokens.eat_token(&Token::Comma) {
            Some(self.duration()?)
        } else {
            None
        };
        self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
        Ok(Fill { method, bound })
    }

    /// After `GROUP BY`: `( ("[" start "," end ")" | "(" start "," end "]") "," interval ["," step] )`.
    fn group_by_time(&mut self) -> Result<GroupByTime, ParseError> {
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let left_open = if self.tokens.eat_token(&Token::LParen) {
            true
        } else if self.tokens.eat_token(&Token::LBracket) {
            false
        } else if matches!(self.tokens.peek(), Some(Token::Word(_) | Token::Number(..))) {
            return Err(self.unsupported_here("GROUP BY without a time range"));
        } else {
            return Err(self.tokens.expected("'[' or '('"));
        };
        let start = self.time_value(TIME_VALUE)?;
        self.tokens.expect_token(&Token::Comma, "','")?;
        let end = self.time_value(TIME_VALUE)?;
        if left_open {
            self.tokens.expect_token(&Token::RBracket, "']'")?;
        } else {
            self.tokens.expect_token(&Token::RParen, "')'")?;
        }
        self.tokens.expect_token(&Token::Comma, "','")?;
        let interval = self.duration()?;
        let step = if self.tokens.eat_token(&Token::Comma) {
            Some(self.duration()?)
        } else {
            None
        };
        self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
        Ok(GroupByTime {
            start,
            end,
            left_open,
            interval,
            step,
        })
    }

    // ---- expressions --------------------------------------------------------------------------------------

    /// A WHERE condition.
    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
        Ok(self.nested(|parser| parser.climb(0))?.0)
    }

    /// Runs a rule one level deeper in the recursion, failing past [`MAX_DEPTH`].
    fn nested(
        &mut self,
        rule: impl FnOnce(&mut Self) -> Result<Node, ParseError>,
    ) -> Result<Node, ParseError> {
        if self.nesting >= MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.nesting += 1;
        let node = rule(self);
        self.nesting -= 1;
        node
    }

    fn too_deep(&self) -> ParseError {
        self.syntax_here(format!(
            "expression nested too deeply (more than {MAX_DEPTH} levels)"
        ))
    }

    /// `expr` as a node `depth` deep, unless that is too deep.
    fn node(&self, expr: Expr, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            Err(self.too_deep())
        } else {
            Ok((expr, depth))
        }
    }

    fn binary(&self, left: Node, op: BinaryOp, right: Node) -> Result<Node, ParseError> {
        let depth = left.1.max(right.1) + 1;
        let (left, right) = if op.precedence() == BinaryOp::Eq.precedence() {
            let left_is_time = left.0 == Expr::Time;
            let left = time_operand(&right.0, left.0);
            let right = if left_is_time {
                time_operand(&Expr::Time, right.0)
            } else {
                right.0
            };
            (left, right)
        } else {
            (left.0, right.0)
        };
        self.node(
            Expr::Binary {
                left: Box::new(left),
                op,
                right: Box::new(right),
            },
            depth,
        )
    }

    /// Precedence climbing: a prefix operand, then every infix or postfix operator binding at least as
    /// tightly as `min` (OR 1 < AND 2 < NOT 3 < comparisons 4 < + - 5 < * / % 6 < unary minus 7). One loop
    /// instead of a rule per level keeps the recursion (and the stack) shallow.
    fn climb(&mut self, min: u8) -> Result<Node, ParseError> {
        let mut left = self.prefix(min)?;
        loop {
            let Some(op) = self.infix() else {
                return Ok(left);
            };
            let precedence = match op {
                Infix::Binary(op) => op.precedence(),
                Infix::Postfix => COMPARISON,
            };
            if precedence < min {
                return Ok(left);
            }
            if let Infix::Binary(op @ (BinaryOp::Plus | BinaryOp::Minus)) = op {
                if left.0.is_date_expression() {
                    if let Some(shift) = self.time_shift()? {
                        let (expr, depth) = left;
                        let shifted = Expr::Binary {
                            left: Box::new(expr),
                            op,
                            right: Box::new(Expr::Duration(shift.duration)),
                        };
                        left = self.node(shifted, depth + 1)?;
                        continue;
                    }
                }
            }
            left = match op {
                Infix::Binary(op) => {
                    self.tokens.advance();
                    let right = self.climb(precedence + 1)?;
                    self.binary(left, op, right)?
                }
                Infix::Postfix => self.postfix(left)?,
            };
        }
    }

    /// The operator at the current token, not consumed.
    fn infix(&self) -> Option<Infix> {
        let op = match self.tokens.peek()? {
            Token::Eq | Token::DoubleEq => BinaryOp::Eq,
            Token::Neq => BinaryOp::NotEq,
            Token::Lt => BinaryOp::Lt,
            Token::LtEq => BinaryOp::LtEq,
            Token::Gt => BinaryOp::Gt,
            Token::GtEq => BinaryOp::GtEq,
            Token::Plus => BinaryOp::Plus,
            Token::Minus => BinaryOp::Minus,
            Token::Mul => BinaryOp::Mul,
            Token::Div => BinaryOp::Div,
            Token::Mod => BinaryOp::Mod,
            Token::Overlap | Token::Ampersand => BinaryOp::And,
            Token::StringConcat | Token::Pipe => BinaryOp::Or,
            Token::Word(word) if word.quote_style.is_none() => {
                let keyword = |k: &str| word.value.eq_ignore_ascii_case(k);
                if keyword("AND") {
                    BinaryOp::And
                } else if keyword("OR") {
                    BinaryOp::Or
                } else if ["BETWEEN", "IN", "LIKE", "REGEXP", "IS"]
                    .iter()
                    .any(|k| keyword(k))
                    || (keyword("NOT")
                        && ["BETWEEN", "IN", "LIKE", "REGEXP"]
                            .iter()
                            .any(|k| self.tokens.is_keyword_at(1, k)))
                {
                    return Some(Infix::Postfix);
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        Some(Infix::Binary(op))
    }

    /// `NOT` (where a NOT-level operand may stand), unary minus, or a primary.
    fn prefix(&mut self, min: u8) -> Result<Node, ParseError> {
        if min <= NOT
            && (self.tokens.is_keyword("NOT") || self.is_token(0, &Token::ExclamationMark))
        {
            // Checked before the operator is consumed, so a too-deep error points at it.
            let (expr, depth) = self.nested(|parser| {
                parser.tokens.advance();
                parser.climb(NOT)
            })?;
            let not = Expr::Unary {
                op: UnaryOp::Not,
                expr: Box::new(expr),
            };
            return self.node(not, depth + 1);
        }
        if !self.is_token(0, &Token::Minus) {
            return self.primary();
        }
        // `-` before a number is part of the literal (`-5`); before anything else it negates.
        if let Some(Token::Number(number, _)) = self.tokens.peek_nth(1) {
            let number = number.clone();
            self.tokens.advance();
            let at_datetime = self
                .tokens
                .rest()
                .is_some_and(|(_, text)| scan::datetime(text).is_some());
            if !at_datetime {
                self.tokens.advance();
                return Ok((Expr::Literal(number_literal(format!("-{number}"))), 1));
            }
            let (expr, depth) = self.nested(|parser| parser.climb(NEG))?;
            let neg = Expr::Unary {
                op: UnaryOp::Neg,
                expr: Box::new(expr),
            };
            return self.node(neg, depth + 1);
        }
        let (expr, depth) = self.nested(|parser| {
            parser.tokens.advance();
            parser.climb(NEG)
        })?;
        let neg = Expr::Unary {
            op: UnaryOp::Neg,
            expr: Box::new(expr),
        };
        self.node(neg, depth + 1)
    }

    /// `[NOT] BETWEEN low AND high`, `[NOT] IN (…)`, `[NOT] LIKE 'pattern'` or `IS [NOT] NULL` after `left`.
    fn postfix(&mut self, left: Node) -> Result<Node, ParseError> {
        let (expr, depth) = left;
        let negated = self.tokens.eat_keyword("NOT");
        if self.tokens.eat_keyword("BETWEEN") {
            let (low, low_depth) = self.climb(ADDITIVE)?;
            self.tokens.expect_keyword("AND")?;
            let (high, high_depth) = self.climb(ADDITIVE)?;
            let between = Expr::Between {
                low: Box::new(time_operand(&expr, low)),
                high: Box::new(time_operand(&expr, high)),
                expr: Box::new(expr),
                negated,
            };
            self.node(between, depth.max(low_depth).max(high_depth) + 1)
        } else if self.tokens.eat_keyword("IN") {
            self.tokens.expect_token(&Token::LParen, "'('")?;
            let mut list = Vec::new();
            let mut max_depth = depth;
            loop {
                let (item, item_depth) = self.nested(|parser| parser.climb(0))?;
                list.push(time_operand(&expr, item));
                max_depth = max_depth.max(item_depth);
                if !self.tokens.eat_token(&Token::Comma) {
                    self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                    break;
                }
            }
            let in_list = Expr::InList {
                expr: Box::new(expr),
                list,
                negated,
            };
            self.node(in_list, max_depth + 1)
        } else if self.tokens.eat_keyword("LIKE") {
            let pattern = self.string("a pattern string")?;
            let like = Expr::Like {
                expr: Box::new(expr),
                pattern,
                negated,
            };
            self.node(like, depth + 1)
        } else if self.tokens.is_keyword("REGEXP") {
            Err(self.unsupported_here("REGEXP"))
        } else {
            self.tokens.expect_keyword("IS")?;
            let negated = self.tokens.eat_keyword("NOT");
            self.tokens.expect_keyword("NULL")?;
            let is_null = Expr::IsNull {
                expr: Box::new(expr),
                negated,
            };
            self.node(is_null, depth + 1)
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        const EXPRESSION: &str = "an expression";
        if self.is_token(0, &Token::LParen) {
            let inner = self.nested(|parser| {
                parser.tokens.advance();
                parser.climb(0)
            })?;
            self.tokens.expect_token(&Token::RParen, "')'")?;
            return Ok(inner);
        }
        if let Some(datetime) = self.bare_datetime()? {
            return Ok((Expr::DateTime(datetime), 1));
        }
        let word = match self.tokens.peek() {
            Some(Token::Word(word)) if word.quote_style.is_none() => word.value.to_uppercase(),
            Some(Token::Word(_)) => return Ok((Expr::Path(self.relative_path(EXPRESSION)?), 1)),
            Some(
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::HexStringLiteral(_),
            ) => return Ok((Expr::Literal(self.literal()?), 1)),
            _ => return Err(self.tokens.expected(EXPRESSION)),
        };
        match word.as_str() {
            "TIME" | "TIMESTAMP" => {
                self.tokens.advance();
                Ok((Expr::Time, 1))
            }
            "TRUE" | "FALSE" | "NULL" => Ok((Expr::Literal(self.literal()?), 1)),
            "NOW" if self.is_token(1, &Token::LParen) => {
                self.plain_time_value(EXPRESSION)?;
                Ok((Expr::Now, 1))
            }
            _ if self.is_token(1, &Token::LParen) && self.aggregates => {
                let function = word;
                let path = self.aggregate_argument()?;
                Ok((Expr::Aggregate { function, path }, 1))
            }
            _ if self.is_token(1, &Token::LParen) => {
                Err(self.unsupported_here("a function call in WHERE"))
            }
            _ if word.starts_with(|c: char| c.is_ascii_digit()) && scan::is_duration(&word) => {
                Err(self.syntax_here(format!(
                    "expected an expression but found the duration '{}' (a duration may only be added to or subtracted from a datetime or now(), as in now() - 1d)",
                    word.to_lowercase()
                )))
            }
            _ => Ok((Expr::Path(self.relative_path(EXPRESSION)?), 1)),
        }
    }
}

/// A quoted datetime compared with `time` is a datetime, not a string.
fn time_operand(other: &Expr, expr: Expr) -> Expr {
    match expr {
        Expr::Literal(Literal::String(text))
            if *other == Expr::Time && scan::is_datetime(&text) =>
        {
            Expr::DateTime(text)
        }
        expr => expr,
    }
}

/// A time value where an INSERT row's time stands.
fn insert_time(time: TimeValue) -> InsertTime {
    match time {
        TimeValue::Value(value) => InsertTime::Value(value),
        TimeValue::DateTime(text) => InsertTime::DateTime(text),
        TimeValue::Now => InsertTime::Now,
        TimeValue::Shifted { base, shifts } => InsertTime::Shifted {
            base: Box::new(insert_time(*base)),
            shifts,
        },
    }
}

/// An integer or float literal from a number as written.
fn number_literal(text: String) -> Literal {
    if text.contains(['.', 'e', 'E']) {
        Literal::Float(text)
    } else {
        Literal::Integer(text)
    }
}
