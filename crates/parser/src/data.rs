//! The AST of IoTDB tree-model data statements (databases, timeseries, INSERT, DELETE, SELECT) and their
//! canonical SQL (`Display`), which parses back to an equal AST.

use std::fmt;

/// A path: `root.sg.d1.s1`, a pattern such as `root.**.s1`, or (in SELECT items and WHERE) a suffix relative
/// to the FROM paths such as `d1.s1` or `*.s1`. An absolute path's first node is `Name("root")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<PathNode>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathNode {
    /// A plain node (`d1`, `12`) or a back-quoted one (`` `d.1` ``), without quotes.
    Name(String),
    /// `*`: exactly one level.
    One,
    /// `**`: one or more levels.
    Many,
    /// A node with wildcards inside (`d*`, `*temp*`, `*12`): each `*` stands for any characters within
    /// this one node. The fixed part never contains `*` itself.
    Glob(String),
}

impl Path {
    /// Whether the path has a wildcard node.
    pub fn is_pattern(&self) -> bool {
        self.0.iter().any(|node| !matches!(node, PathNode::Name(_)))
    }
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Null,
    Boolean(bool),
    /// As written (digits with an optional leading `-`), so the engine picks INT32/INT64 or reports overflow.
    Integer(String),
    /// As written: `1.5`, `-2e3`, `.5`, `1E-3`.
    Float(String),
    /// `'…'` or `"…"`, unquoted.
    String(String),
    /// `X'0a0b'`.
    Blob(Vec<u8>),
}

/// A data type keyword (any case): IoTDB's `TSDataType`, the one type the wire protocol and the
/// TsFile reader use too.
pub use duet_types::DataType as DataTypeName;

/// One measurement of `CREATE ALIGNED TIMESERIES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: DataTypeName,
    /// As in [`crate::Statement::CreateTimeseries`]: `("ENCODING", "RLE")`, `("TAGS.k", "v")`, ….
    pub attributes: Vec<(String, String)>,
}

/// One row of `INSERT … VALUES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertRow {
    pub time: InsertTime,
    /// One per column, in the order of the column list.
    pub values: Vec<Literal>,
}

/// The timestamp of an inserted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertTime {
    Value(i64),
    /// `NOW()`, or no time column at all.
    Now,
    /// An ISO-8601 datetime as written (quotes removed); the engine converts it with the session's zone.
    DateTime(String),
    /// A datetime or `NOW()` plus or minus durations: `NOW() - 1d`.
    Shifted {
        base: Box<InsertTime>,
        shifts: Vec<TimeShift>,
    },
}

/// A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    /// `SELECT LAST …`
    pub last: bool,
    pub items: Vec<SelectItem>,
    /// Prefix paths; the items are suffixes relative to each of them.
    pub from: Vec<Path>,
    pub condition: Option<Expr>,
    pub group_by: Option<GroupByTime>,
    /// `GROUP BY LEVEL = n[, m…]` (alone, or after the time windows: `GROUP BY ([…), 1ms), LEVEL = 1`).
    pub group_by_level: Option<Vec<u32>>,
    /// `HAVING expr`, whose aggregates are [`Expr::Aggregate`]s.
    pub having: Option<Expr>,
    /// `ORDER BY TIME DESC`
    pub order_by_time_desc: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    /// `FILL(…)`, printed after ORDER BY.
    pub fill: Option<Fill>,
    /// `ALIGN BY DEVICE` (`ALIGN BY TIME` is the default).
    pub align_by_device: bool,
}

impl Select {
    /// `SELECT items FROM from` and no clause.
    pub fn new(items: Vec<SelectItem>, from: Vec<Path>) -> Select {
        Select {
            last: false,
            items,
            from,
            condition: None,
            group_by: None,
            group_by_level: None,
            having: None,
            order_by_time_desc: false,
            limit: None,
            offset: None,
            slimit: None,
            soffset: None,
            fill: None,
            align_by_device: false,
        }
    }
}

/// `FILL(PREVIOUS | LINEAR | constant[, duration])`: how nulls of the result are filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub method: FillMethod,
    /// `FILL(PREVIOUS, 1m)`: fill only when the previous value is at most this far away in time.
    pub bound: Option<DurationLiteral>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillMethod {
    Previous,
    Linear,
    /// A number, string or boolean (never NULL).
    Constant(Literal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`
    Wildcard,
    /// A suffix path such as `s1`, `d1.s1`, `*.s1`, `**` (`[AS alias]`).
    Path { path: Path, alias: Option<String> },
    /// `COUNT(s1)`; the function name as written (column headers echo it), any name is accepted.
    Aggregate {
        function: String,
        path: Path,
        alias: Option<String>,
    },
    /// `COUNT_IF(predicate, [KEEP op] threshold[, 'ignoreNull'='true'|'false'])`: the number of runs
    /// of consecutive rows where `predicate` holds whose length meets `keep`.
    CountIf {
        /// `COUNT_IF` as written (column headers echo it, as IoTDB's do: `Count_if(...)`).
        function: String,
        predicate: Expr,
        keep: Keep,
        /// The `'ignoreNull'` attribute as written (`None` when absent: nulls are ignored).
        ignore_null: Option<bool>,
        alias: Option<String>,
    },
}

/// COUNT_IF's condition on a run's length: `3` alone (meaning `keep >= 3`) or `keep op 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// `None` for a bare threshold; otherwise one of `=`, `!=`, `<`, `<=`, `>`, `>=`.
    pub op: Option<BinaryOp>,
    pub threshold: u64,
}

impl Keep {
    /// Whether a run of `length` rows counts.
    pub fn holds(&self, length: u64) -> bool {
        let t = self.threshold;
        match self.op {
            None | Some(BinaryOp::GtEq) => length >= t,
            Some(BinaryOp::Gt) => length > t,
            Some(BinaryOp::Eq) => length == t,
            Some(BinaryOp::NotEq) => length != t,
            Some(BinaryOp::Lt) => length < t,
            Some(BinaryOp::LtEq) => length <= t,
            Some(_) => false,
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            None => write!(f, "{}", self.threshold),
            Some(op) => write!(f, "keep {} {}", op.symbol(), self.threshold),
        }
    }
}

/// `GROUP BY ([start, end), interval[, step])`, or `((start, end], …)` when `left_open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupByTime {
    pub start: TimeValue,
    pub end: TimeValue,
    pub left_open: bool,
    pub interval: DurationLiteral,
    pub step: Option<DurationLiteral>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeValue {
    Value(i64),
    /// An ISO-8601 datetime as written (quotes removed).
    DateTime(String),
    Now,
    /// A datetime or `NOW()` plus or minus durations (IoTDB's date expression): `2017-11-01 + 1mo`.
    Shifted {
        base: Box<TimeValue>,
        shifts: Vec<TimeShift>,
    },
}

/// An IoTDB duration as written: `1ms`, `10s`, `1h30m`, `1mo`, or a bare integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationLiteral {
    pub text: String,
}

impl DurationLiteral {
    /// Its `value unit` parts (the parser accepts only durations that have them).
    pub fn parts(&self) -> Result<Vec<crate::time::DurationPart>, String> {
        crate::time::parse_duration(&self.text)
    }
}

/// `+ duration` or `- duration` after a datetime or `NOW()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeShift {
    pub subtract: bool,
    pub duration: DurationLiteral,
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `time` / `timestamp`
    Time,
    /// A series: relative (`s1`, `d1.s1`) or absolute (`root.sg.d1.s1`).
    Path(Path),
    Literal(Literal),
    /// A bare datetime, or a quoted one compared with `time` (`time > '2017-11-01'`).
    DateTime(String),
    /// `now()`
    Now,
    /// A duration: only as the right operand of `+` or `-` whose left operand is a datetime, `now()`, or
    /// such a sum (IoTDB's date expression, `now() - 1d`).
    Duration(DurationLiteral),
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        left: Box<Expr>,
        op: BinaryOp,
        right: Box<Expr>,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: String,
        negated: bool,
    },
    /// `count(s1)`: an aggregate of a series, only in HAVING; the function name is upper-cased.
    Aggregate {
        function: String,
        path: Path,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Plus,
    Minus,
    Mul,
    Div,
    Mod,
}

impl BinaryOp {
    /// The operator as written in SQL (`=`, `AND`, `+`, …).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
        }
    }

    /// Binding strength, as in the parser: OR < AND < NOT < comparison < + - < * / % < unary minus.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq => COMPARISON,
            BinaryOp::Plus | BinaryOp::Minus => ADDITIVE,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 6,
        }
    }
}

const NOT: u8 = 3;
const COMPARISON: u8 = 4;
const ADDITIVE: u8 = 5;
const NEG: u8 = 7;
const PRIMARY: u8 = 8;

impl Expr {
    /// Whether this is IoTDB's date expression: a datetime, `now()`, or one of them plus or minus
    /// durations.
    pub fn is_date_expression(&self) -> bool {
        match self {
            Expr::DateTime(_) | Expr::Now => true,
            Expr::Binary {
                left,
                op: BinaryOp::Plus | BinaryOp::Minus,
                right,
            } => matches!(**right, Expr::Duration(_)) && left.is_date_expression(),
            _ => false,
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Binary { op, .. } => op.precedence(),
            Expr::Unary {
                op: UnaryOp::Not, ..
            } => NOT,
            Expr::Unary {
                op: UnaryOp::Neg, ..
            } => NEG,
            Expr::Between { .. }
            | Expr::InList { .. }
            | Expr::IsNull { .. }
            | Expr::Like { .. } => COMPARISON,
            _ => PRIMARY,
        }
    }
}

/// Words the parser reads as keywords where a path node or name may stand; such names print back-quoted.
const RESERVED: &[&str] = &[
    "ALIGN",
    "ALIGNED",
    "AND",
    "AS",
    "ATTRIBUTES",
    "BETWEEN",
    "BY",
    "DATATYPE",
    "DISABLE",
    "FALSE",
    "FILL",
    "FROM",
    "GROUP",
    "HAVING",
    "IN",
    "INTO",
    "IS",
    "LAST",
    "LIKE",
    "LIMIT",
    "NOT",
    "NOW",
    "NULL",
    "OFFSET",
    "OR",
    "ORDER",
    "REGEXP",
    "SLIMIT",
    "SOFFSET",
    "TAGS",
    "TIME",
    "TIMESTAMP",
    "TRUE",
    "VALUES",
    "WHERE",
    "WITH",
];

pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// A path node or measurement name: plain when IoTDB reads it as one identifier (its characters are
/// letters, digits, `_`, `:`, `@`, `#`, `$`, `{`, `}` or CJK, and it is not a number such as `12` or
/// `0e38`), it is not reserved and (for a first node, which the parser could take for a number) it does
/// not start with a digit; back-quoted otherwise.
struct Node<'a> {
    name: &'a str,
    first: bool,
}

/// Whether `name` can be written without back-quotes as a path node.
pub(crate) fn is_plain_node(name: &str, first: bool) -> bool {
    let reads_as_number = crate::scan::reads_as_number(name)
        || (first && name.starts_with(|c: char| c.is_ascii_digit()));
    !name.is_empty()
        && name.chars().all(crate::scan::is_node_char)
        && !reads_as_number
        && !is_reserved(name)
}

impl fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_node(self.name, self.first) {
            f.write_str(self.name)
        } else {
            write!(f, "`{}`", self.name.replace('`', "``"))
        }
    }
}

/// A wildcard node (`d*`, `*12*`): its stars, and its fixed part plain where it can be (digits alone are
/// a legal fixed part) and back-quoted otherwise.
struct GlobNode<'a> {
    pattern: &'a str,
    first: bool,
}

impl fmt::Display for GlobNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fixed = self.pattern.trim_matches('*');
        let leading = self.pattern.len() - self.pattern.trim_start_matches('*').len();
        let trailing = self.pattern.len() - self.pattern.trim_end_matches('*').len();
        f.write_str(&self.pattern[..leading])?;
        let first = self.first && leading == 0;
        let digits = !fixed.is_empty() && fixed.bytes().all(|b| b.is_ascii_digit());
        if (digits && !first) || is_plain_node(fixed, first) {
            f.write_str(fixed)?;
        } else {
            write!(f, "`{}`", fixed.replace('`', "``"))?;
        }
        f.write_str(&self.pattern[self.pattern.len() - trailing..])
    }
}

/// A name printed like a single path node (measurements, aliases).
pub(crate) fn name(name: &str) -> impl fmt::Display + '_ {
    Node { name, first: true }
}

/// A single-quoted string.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

/// `items` separated by `", "`.
fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

pub(crate) fn paths(f: &mut fmt::Formatter<'_>, paths: &[Path]) -> fmt::Result {
    list(f, paths)
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, node) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            match node {
                PathNode::Name(name) => Node {
                    name,
                    first: index == 0,
                }
                .fmt(f)?,
                PathNode::One => f.write_str("*")?,
                PathNode::Many => f.write_str("**")?,
                PathNode::Glob(pattern) => GlobNode {
                    pattern,
                    first: index == 0,
                }
                .fmt(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Boolean(true) => f.write_str("TRUE"),
            Literal::Boolean(false) => f.write_str("FALSE"),
            Literal::Integer(text) | Literal::Float(text) => f.write_str(text),
            Literal::String(text) => Quoted(text).fmt(f),
            Literal::Blob(bytes) => {
                f.write_str("X'")?;
                for byte in bytes {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
        }
    }
}

/// An attribute key or value: bare when it reads back as the same word or number, quoted otherwise.
struct AttributeText<'a>(&'a str);

impl fmt::Display for AttributeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let word = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !is_reserved(text);
        let number = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if word || number {
            f.write_str(text)
        } else {
            Quoted(text).fmt(f)
        }
    }
}

pub(crate) const TAGS_PREFIX: &str = "TAGS.";
pub(crate) const ATTRIBUTES_PREFIX: &str = "ATTRIBUTES.";

/// The attributes after the data type: plain pairs (`separator` before each), then `TAGS(…)` and
/// `ATTRIBUTES(…)` from the keys with those prefixes.
pub(crate) fn attributes(
    f: &mut fmt::Formatter<'_>,
    attributes: &[(String, String)],
    separator: &str,
) -> fmt::Result {
    let prefixed = |prefix: &'static str| {
        attributes
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    };
    for (key, value) in attributes {
        if !key.starts_with(TAGS_PREFIX) && !key.starts_with(ATTRIBUTES_PREFIX) {
            write!(f, "{separator}{key}={}", AttributeText(value))?;
        }
    }
    for (clause, prefix) in [("TAGS", TAGS_PREFIX), ("ATTRIBUTES", ATTRIBUTES_PREFIX)] {
        let pairs: Vec<_> = prefixed(prefix).collect();
        if !pairs.is_empty() {
            write!(f, " {clause}(")?;
            for (index, (key, value)) in pairs.into_iter().enumerate() {
                if index > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}={}", AttributeText(key), AttributeText(value))?;
            }
            f.write_str(")")?;
        }
    }
    Ok(())
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", name(&self.name), self.data_type)?;
        attributes(f, &self.attributes, " ")
    }
}

impl fmt::Display for InsertTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertTime::Value(value) => write!(f, "{value}"),
            InsertTime::Now => f.write_str("NOW()"),
            InsertTime::DateTime(text) => f.write_str(text),
            InsertTime::Shifted { base, shifts } => {
                base.fmt(f)?;
                shifts.iter().try_for_each(|shift| shift.fmt(f))
            }
        }
    }
}

impl fmt::Display for InsertRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}", self.time)?;
        for value in &self.values {
            write!(f, ", {value}")?;
        }
        f.write_str(")")
    }
}

/// `INSERT INTO device(timestamp, c…)[ ALIGNED] VALUES (…), …`: the time column is always printed, a row
/// without one reads `NOW()`.
pub(crate) fn insert(
    f: &mut fmt::Formatter<'_>,
    device: &Path,
    aligned: bool,
    columns: &[String],
    rows: &[InsertRow],
) -> fmt::Result {
    write!(f, "INSERT INTO {device}(timestamp")?;
    for column in columns {
        write!(f, ", {}", name(column))?;
    }
    f.write_str(")")?;
    if aligned {
        f.write_str(" ALIGNED")?;
    }
    f.write_str(" VALUES ")?;
    list(f, rows)
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeValue::Value(value) => write!(f, "{value}"),
            TimeValue::DateTime(text) => f.write_str(text),
            TimeValue::Now => f.write_str("NOW()"),
            TimeValue::Shifted { base, shifts } => {
                base.fmt(f)?;
                shifts.iter().try_for_each(|shift| shift.fmt(f))
            }
        }
    }
}

impl fmt::Display for TimeShift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.subtract { '-' } else { '+' };
        write!(f, " {sign} {}", self.duration)
    }
}

impl fmt::Display for DurationLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for GroupByTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (open, close) = if self.left_open {
            ("(", "]")
        } else {
            ("[", ")")
        };
        write!(
            f,
            "GROUP BY ({open}{}, {}{close}, {}",
            self.start, self.end, self.interval
        )?;
        if let Some(step) = &self.step {
            write!(f, ", {step}")?;
        }
        f.write_str(")")
    }
}

fn alias(f: &mut fmt::Formatter<'_>, alias: &Option<String>) -> fmt::Result {
    match alias {
        Some(alias) => write!(f, " AS {}", name(alias)),
        None => Ok(()),
    }
}

impl fmt::Display for SelectItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectItem::Wildcard => f.write_str("*"),
            SelectItem::Path { path, alias: a } => {
                path.fmt(f)?;
                alias(f, a)
            }
            SelectItem::Aggregate {
                function,
                path,
                alias: a,
            } => {
                write!(f, "{function}({path})")?;
                alias(f, a)
            }
            SelectItem::CountIf {
                function,
                predicate,
                keep,
                ignore_null,
                alias: a,
            } => {
                write!(f, "{function}({predicate}, {keep}")?;
                if let Some(ignore) = ignore_null {
                    write!(f, ", 'ignoreNull'='{ignore}'")?;
                }
                f.write_str(")")?;
                alias(f, a)
            }
        }
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        if self.last {
            f.write_str("LAST ")?;
        }
        list(f, &self.items)?;
        f.write_str(" FROM ")?;
        list(f, &self.from)?;
        if let Some(condition) = &self.condition {
            write!(f, " WHERE {condition}")?;
        }
        match (&self.group_by, &self.group_by_level) {
            (Some(group_by), Some(levels)) => write!(f, " {group_by}, {}", Levels(levels))?,
            (Some(group_by), None) => write!(f, " {group_by}")?,
            (None, Some(levels)) => write!(f, " GROUP BY {}", Levels(levels))?,
            (None, None) => {}
        }
        if let Some(having) = &self.having {
            write!(f, " HAVING {having}")?;
        }
        if self.order_by_time_desc {
            f.write_str(" ORDER BY TIME DESC")?;
        }
        if let Some(fill) = &self.fill {
            write!(f, " {fill}")?;
        }
        let pagination = [
            ("LIMIT", self.limit),
            ("OFFSET", self.offset),
            ("SLIMIT", self.slimit),
            ("SOFFSET", self.soffset),
        ];
        for (keyword, value) in pagination {
            if let Some(value) = value {
                write!(f, " {keyword} {value}")?;
            }
        }
        if self.align_by_device {
            f.write_str(" ALIGN BY DEVICE")?;
        }
        Ok(())
    }
}

/// `LEVEL = 1, 2`
struct Levels<'a>(&'a [u32]);

impl fmt::Display for Levels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LEVEL = ")?;
        list(f, self.0)
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FILL(")?;
        match &self.method {
            FillMethod::Previous => f.write_str("PREVIOUS")?,
            FillMethod::Linear => f.write_str("LINEAR")?,
            FillMethod::Constant(value) => value.fmt(f)?,
        }
        if let Some(bound) = &self.bound {
            write!(f, ", {bound}")?;
        }
        f.write_str(")")
    }
}

/// `expr`, parenthesized when it binds less tightly than `min`.
struct Operand<'a>(&'a Expr, u8);

impl fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.precedence() < self.1 {
            write!(f, "({})", self.0)
        } else {
            self.0.fmt(f)
        }
    }
}

fn not(negated: bool) -> &'static str {
    if negated {
        "NOT "
    } else {
        ""
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Time => f.write_str("time"),
            Expr::Path(path) => path.fmt(f),
            Expr::Literal(literal) => literal.fmt(f),
            Expr::DateTime(text) => f.write_str(text),
            Expr::Now => f.write_str("now()"),
            Expr::Duration(duration) => duration.fmt(f),
            Expr::Unary {
                op: UnaryOp::Not,
                expr,
            } => write!(f, "NOT {}", Operand(expr, NOT)),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
            } => match &**expr {
                // `-5` would read back as the literal -5.
                Expr::Literal(Literal::Integer(text) | Literal::Float(text))
                    if !text.starts_with('-') =>
                {
                    write!(f, "-({expr})")
                }
                // A space, or `--` would start a comment.
                Expr::Literal(Literal::Integer(_) | Literal::Float(_))
                | Expr::Unary {
                    op: UnaryOp::Neg, ..
                } => write!(f, "- {expr}"),
                _ => write!(f, "-{}", Operand(expr, NEG)),
            },
            Expr::Binary { left, op, right } => {
                let precedence = op.precedence();
                write!(
                    f,
                    "{} {} {}",
                    Operand(left, precedence),
                    op.symbol(),
                    Operand(right, precedence + 1)
                )
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "{} {}BETWEEN {} AND {}",
                Operand(expr, COMPARISON),
                not(*negated),
                Operand(low, ADDITIVE),
                Operand(high, ADDITIVE)
            ),
            Expr::InList {
                expr,
                list: items,
                negated,
            } => {
                write!(f, "{} {}IN (", Operand(expr, COMPARISON), not(*negated))?;
                list(f, items)?;
                f.write_str(")")
            }
            Expr::IsNull { expr, negated } => {
                write!(f, "{} IS {}NULL", Operand(expr, COMPARISON), not(*negated))
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => write!(
                f,
                "{} {}LIKE {}",
                Operand(expr, COMPARISON),
                not(*negated),
                Quoted(pattern)
            ),
            Expr::Aggregate { function, path } => write!(f, "{function}({path})"),
        }
    }
}
