//! `duet-check`: compares the full contents of two Duet (or IoTDB) instances — the set of time series
//! with their data types, then every (time, value) point of every series — and prints either
//! `consistent: N series, M points` (exit 0) or the first difference (exit 1); exit 2 on usage or
//! connection errors.
//!
//! The comparison lives in [`compare`] so that integration tests can include this file with
//! `#[path]` and call it directly.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use duet_proto::client::ClientOptions;

/// The comparison of two instances, usable without the command line.
pub mod compare {
    use std::cmp::Ordering;
    use std::collections::BTreeMap;
    use std::fmt;

    use duet_proto::client::{Client, ClientError, ClientOptions, Outcome, ResultSet};
    use duet_proto::tsblock::TsBlock;
    use duet_proto::types::{Column, ColumnValues, DataType};

    /// One stored value, compared exactly (floats by their bits).
    #[derive(Debug, Clone)]
    pub enum Value {
        Boolean(bool),
        Int32(i32),
        Int64(i64),
        Float(f32),
        Double(f64),
        Binary(DataType, Vec<u8>),
    }

    impl PartialEq for Value {
        fn eq(&self, other: &Value) -> bool {
            match (self, other) {
                (Value::Boolean(a), Value::Boolean(b)) => a == b,
                (Value::Int32(a), Value::Int32(b)) => a == b,
                (Value::Int64(a), Value::Int64(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
                (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
                (Value::Binary(_, a), Value::Binary(_, b)) => a == b,
                _ => false,
            }
        }
    }

    impl fmt::Display for Value {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Value::Boolean(v) => write!(f, "{v}"),
                Value::Int32(v) => write!(f, "{v}"),
                Value::Int64(v) => write!(f, "{v}"),
                Value::Float(v) => write!(f, "{v}"),
                Value::Double(v) => write!(f, "{v}"),
                Value::Binary(DataType::Blob, bytes) => {
                    f.write_str("0x")?;
                    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
                }
                Value::Binary(_, bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }

    /// The value of `column` at `row`, `None` when the cell is null.
    pub fn cell(column: &Column, row: usize) -> Option<Value> {
        if column.is_null(row) {
            return None;
        }
        Some(match &column.values {
            ColumnValues::Boolean(v) => Value::Boolean(*v.get(row)?),
            ColumnValues::Int32(v) => Value::Int32(*v.get(row)?),
            ColumnValues::Int64(v) => Value::Int64(*v.get(row)?),
            ColumnValues::Float(v) => Value::Float(*v.get(row)?),
            ColumnValues::Double(v) => Value::Double(*v.get(row)?),
            ColumnValues::Binary(v) => Value::Binary(column.data_type, v.get(row)?.clone()),
        })
    }

    /// A cell as text (`null` for a null), for result rows read by tests and messages.
    pub fn cell_text(column: &Column, row: usize) -> String {
        match cell(column, row) {
            None => "null".to_string(),
            Some(Value::Binary(t, bytes)) if t != DataType::Blob => {
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Some(v) => v.to_string(),
        }
    }

    /// Which instance a message speaks of.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Side {
        A,
        B,
    }

    impl fmt::Display for Side {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Side::A => "A",
                Side::B => "B",
            })
        }
    }

    /// The first difference found, in series path order and then time order.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Difference {
        /// The series exists on one side only.
        OnlyOn { series: String, side: Side },
        TypeDiffers {
            series: String,
            a: DataType,
            b: DataType,
        },
        /// A point differs; `None` means that side has no point at that time.
        Point {
            series: String,
            time: i64,
            a: Option<Value>,
            b: Option<Value>,
        },
    }

    impl fmt::Display for Difference {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let show = |v: &Option<Value>| match v {
                Some(v) => v.to_string(),
                None => "nothing".to_string(),
            };
            match self {
                Difference::OnlyOn { series, side } => write!(f, "series {series}: only on {side}"),
                Difference::TypeDiffers { series, a, b } => {
                    write!(f, "series {series}: type differs: A has {a}, B has {b}")
                }
                Difference::Point { series, time, a, b } => write!(
                    f,
                    "{series} at time {time}: A has {}, B has {}",
                    show(a),
                    show(b)
                ),
            }
        }
    }

    /// The outcome of a comparison.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Verdict {
        /// Same series with the same types and the same points; `points` counts one side's points.
        Consistent {
            series: usize,
            points: u64,
        },
        Differs(Difference),
    }

    impl fmt::Display for Verdict {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Verdict::Consistent { series, points } => {
                    write!(f, "consistent: {series} series, {points} points")
                }
                Verdict::Differs(d) => write!(f, "{d}"),
            }
        }
    }

    /// Runs a query and returns its header (without Time) and every block, paging through the client.
    pub async fn query(
        client: &mut Client,
        sql: &str,
    ) -> Result<(ResultSet, Vec<TsBlock>), ClientError> {
        match client.execute(sql).await? {
            Outcome::Rows(rs) => client.collect(rs).await,
            Outcome::Done(_) => Err(ClientError::Unexpected(format!(
                "`{sql}` returned no result set"
            ))),
        }
    }

    /// The time series matching `pattern`, with their data types.
    pub async fn series(
        client: &mut Client,
        pattern: &str,
    ) -> Result<BTreeMap<String, DataType>, ClientError> {
        let (rs, blocks) = query(client, &format!("show timeseries {pattern}")).await?;
        let index = |name: &str| {
            rs.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    ClientError::Unexpected(format!("SHOW TIMESERIES has no {name} column"))
                })
        };
        let (path_col, type_col) = (index("Timeseries")?, index("DataType")?);
        let mut out = BTreeMap::new();
        for block in &blocks {
            for row in 0..block.n_rows() {
                let path = cell_text(&block.columns[path_col], row);
                let name = cell_text(&block.columns[type_col], row);
                let data_type = DataType::from_name(&name).ok_or_else(|| {
                    ClientError::Unexpected(format!("series {path} has unknown data type {name}"))
                })?;
                out.insert(path, data_type);
            }
        }
        Ok(out)
    }

    /// The non-null points of one series, read block by block in time order.
    struct Points<'c> {
        client: &'c mut Client,
        rs: ResultSet,
        block: Option<TsBlock>,
        row: usize,
        done: bool,
    }

    impl<'c> Points<'c> {
        async fn open(client: &'c mut Client, series: &str) -> Result<Points<'c>, ClientError> {
            let (device, measurement) = series.rsplit_once('.').ok_or_else(|| {
                ClientError::Unexpected(format!("series path {series} has no device"))
            })?;
            let sql = format!("select {measurement} from {device}");
            match client.execute(&sql).await? {
                Outcome::Rows(rs) => Ok(Points {
                    client,
                    rs,
                    block: None,
                    row: 0,
                    done: false,
                }),
                Outcome::Done(_) => Err(ClientError::Unexpected(format!(
                    "`{sql}` returned no result set"
                ))),
            }
        }

        async fn next(&mut self) -> Result<Option<(i64, Value)>, ClientError> {
            // Bounded: each iteration either returns or consumes a row or a block.
            loop {
                if self.done {
                    return Ok(None);
                }
                if let Some(block) = &self.block {
                    if self.row < block.n_rows() {
                        let row = self.row;
                        self.row += 1;
                        let Some(column) = block.columns.first() else {
                            return Err(ClientError::Unexpected(
                                "a result block without columns".into(),
                            ));
                        };
                        match cell(column, row) {
                            Some(value) => return Ok(Some((block.times[row], value))),
                            None => continue,
                        }
                    }
                }
                match self.client.next_block(&mut self.rs).await? {
                    Some(block) => {
                        self.block = Some(block);
                        self.row = 0;
                    }
                    None => {
                        self.done = true;
                        self.client.close_result(&self.rs).await?;
                    }
                }
            }
        }
    }

    /// Compares one series present on both sides; returns its point count or the first difference.
    async fn compare_points(
        a: &mut Client,
        b: &mut Client,
        series: &str,
    ) -> Result<Result<u64, Difference>, ClientError> {
        let mut pa = Points::open(a, series).await?;
        let mut pb = Points::open(b, series).await?;
        let (mut next_a, mut next_b) = (pa.next().await?, pb.next().await?);
        let mut count = 0u64;
        let mut last_time: Option<i64> = None;
        loop {
            let (time, a_value, b_value) = match (&next_a, &next_b) {
                (None, None) => return Ok(Ok(count)),
                (Some((ta, va)), Some((tb, vb))) => match ta.cmp(tb) {
                    Ordering::Equal if va == vb => {
                        count += 1;
                        if last_time.is_some_and(|l| l >= *ta) {
                            return Err(ClientError::Unexpected(format!(
                                "{series}: times are not strictly increasing at {ta}"
                            )));
                        }
                        last_time = Some(*ta);
                        next_a = pa.next().await?;
                        next_b = pb.next().await?;
                        continue;
                    }
                    Ordering::Equal => (*ta, Some(va.clone()), Some(vb.clone())),
                    Ordering::Less => (*ta, Some(va.clone()), None),
                    Ordering::Greater => (*tb, None, Some(vb.clone())),
                },
                (Some((ta, va)), None) => (*ta, Some(va.clone()), None),
                (None, Some((tb, vb))) => (*tb, None, Some(vb.clone())),
            };
            // Release the open result sets before reporting.
            if !pa.done {
                pa.client.close_result(&pa.rs).await?;
            }
            if !pb.done {
                pb.client.close_result(&pb.rs).await?;
            }
            return Ok(Err(Difference::Point {
                series: series.to_string(),
                time,
                a: a_value,
                b: b_value,
            }));
        }
    }

    /// Compares two connected instances over the series matching `pattern`.
    pub async fn compare_clients(
        a: &mut Client,
        b: &mut Client,
        pattern: &str,
    ) -> Result<Verdict, ClientError> {
        let series_a = series(a, pattern).await?;
        let series_b = series(b, pattern).await?;
        let mut names: Vec<&String> = series_a.keys().chain(series_b.keys()).collect();
        names.sort();
        names.dedup();
        let mut points = 0u64;
        for name in &names {
            match (series_a.get(*name), series_b.get(*name)) {
                (Some(_), None) => {
                    return Ok(Verdict::Differs(Difference::OnlyOn {
                        series: name.to_string(),
                        side: Side::A,
                    }))
                }
                (None, Some(_)) => {
                    return Ok(Verdict::Differs(Difference::OnlyOn {
                        series: name.to_string(),
                        side: Side::B,
                    }))
                }
                (Some(ta), Some(tb)) if ta != tb => {
                    return Ok(Verdict::Differs(Difference::TypeDiffers {
                        series: name.to_string(),
                        a: *ta,
                        b: *tb,
                    }))
                }
                _ => {}
            }
            match compare_points(a, b, name).await? {
                Ok(n) => points += n,
                Err(d) => return Ok(Verdict::Differs(d)),
            }
        }
        Ok(Verdict::Consistent {
            series: names.len(),
            points,
        })
    }

    /// Connects to both instances and compares them.
    pub async fn compare(
        a: &ClientOptions,
        b: &ClientOptions,
        pattern: &str,
    ) -> Result<Verdict, ClientError> {
        let mut ca = Client::connect(a).await?;
        let mut cb = Client::connect(b).await?;
        let verdict = compare_clients(&mut ca, &mut cb, pattern).await?;
        let _ = ca.close().await;
        let _ = cb.close().await;
        Ok(verdict)
    }
}

const AFTER_HELP: &str = "\
Exit status:
  0 consistent, 1 a difference was found (the first one is printed),
  2 usage error, or an instance could not be reached or queried.";

/// Command-line options, spelled like `start-cli.sh` for instance A.
#[derive(Debug, Parser)]
#[command(
    name = "duet-check",
    version,
    about = "Compares the time series and every point of two Duet/IoTDB instances",
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = AFTER_HELP
)]
struct Args {
    /// Host of instance A
    #[arg(short = 'h', value_name = "HOST_A", default_value = "127.0.0.1")]
    host: String,
    /// Port of instance A
    #[arg(short = 'p', value_name = "PORT_A", default_value_t = 6667)]
    port: u16,
    /// User (both instances unless --peer-user is given)
    #[arg(short = 'u', value_name = "USER", default_value = "root")]
    user: String,
    /// Password (IoTDB spelling: -pw; both instances unless --peer-pw is given)
    #[arg(long = "pw", value_name = "PASSWORD", default_value = "root")]
    password: String,
    /// Host of instance B
    #[arg(long, value_name = "HOST_B", default_value = "127.0.0.1")]
    peer_host: String,
    /// Port of instance B
    #[arg(long, value_name = "PORT_B")]
    peer_port: u16,
    /// User on instance B
    #[arg(long, value_name = "USER")]
    peer_user: Option<String>,
    /// Password on instance B
    #[arg(long = "peer-pw", value_name = "PASSWORD")]
    peer_password: Option<String>,
    /// Path pattern of the series to compare
    #[arg(long, value_name = "PATTERN", default_value = "root.**")]
    path: String,
    /// Connect to both instances over TLS (their certificates verified against --ca, else the
    /// system's CAs)
    #[arg(long = "use-ssl")]
    use_ssl: bool,
    /// PEM CA file the instances' certificates must chain to (implies --use-ssl)
    #[arg(long = "ca", value_name = "PEM")]
    ca: Option<std::path::PathBuf>,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Print version
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,
}

/// `-pw` is not a clap short flag: rewrite it (and `-pw=x`) to `--pw`, leaving flag values alone.
fn rewrite(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    const TAKES_VALUE: &[&str] = &[
        "-h",
        "-p",
        "-u",
        "--pw",
        "--peer-host",
        "--peer-port",
        "--peer-user",
        "--peer-pw",
        "--path",
        "--ca",
    ];
    let mut out = Vec::new();
    let mut value_next = false;
    for (i, arg) in argv.into_iter().enumerate() {
        if i == 0 || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let text = arg.to_string_lossy().into_owned();
        let rewritten = if text == "-pw" {
            "--pw".to_string()
        } else if let Some(v) = text.strip_prefix("-pw=") {
            format!("--pw={v}")
        } else {
            text.clone()
        };
        value_next = TAKES_VALUE.contains(&rewritten.as_str());
        if rewritten == text {
            out.push(arg);
        } else {
            out.push(OsString::from(rewritten));
        }
    }
    out
}

/// Exit status for usage and connection errors.
const TROUBLE: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::try_parse_from(rewrite(std::env::args_os())) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(TROUBLE));
        }
    };
    let tls = if args.use_ssl || args.ca.is_some() {
        match duet_proto::tls::client_config(&duet_proto::tls::ClientTlsFiles {
            ca: args.ca.clone(),
            ..Default::default()
        }) {
            Ok(config) => Some(duet_proto::tls::ClientTls {
                config,
                server_name: None,
            }),
            Err(e) => {
                let _ = writeln!(io::stderr(), "duet-check: {e}");
                return ExitCode::from(TROUBLE);
            }
        }
    } else {
        None
    };
    let a = ClientOptions {
        host: args.host.clone(),
        port: args.port,
        user: args.user.clone(),
        password: args.password.clone(),
        tls: tls.clone(),
        ..ClientOptions::default()
    };
    let b = ClientOptions {
        host: args.peer_host.clone(),
        port: args.peer_port,
        user: args.peer_user.clone().unwrap_or_else(|| args.user.clone()),
        password: args
            .peer_password
            .clone()
            .unwrap_or_else(|| args.password.clone()),
        tls,
        ..ClientOptions::default()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(io::stderr(), "duet-check: cannot start the runtime: {e}");
            return ExitCode::from(TROUBLE);
        }
    };
    match runtime.block_on(compare::compare(&a, &b, &args.path)) {
        Ok(verdict) => {
            let _ = writeln!(io::stdout().lock(), "{verdict}");
            match verdict {
                compare::Verdict::Consistent { .. } => ExitCode::SUCCESS,
                compare::Verdict::Differs(_) => ExitCode::from(1),
            }
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "duet-check: A {}:{}, B {}:{}: {e}",
                a.host,
                a.port,
                b.host,
                b.port
            );
            ExitCode::from(TROUBLE)
        }
    }
}
