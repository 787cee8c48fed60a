//! Runs every `sql-tests/**/*.slt` file against real `duetd` processes: the executable spec of the SQL
//! surface.
//!
//! Each file gets fresh servers in temporary data directories. Connection names choose the instance and
//! the login: `connection b` runs on instance `b` as root, `connection b.alice/secret12` on instance `b`
//! in a separate session of user `alice` with password `secret12`; records without a connection run on
//! instance `a` as root. Instances named like hosts
//! (`iotdb-1`) listen at the address that name resolves to (see `scripts/setup-test-hosts.sh`), all on
//! one port, `${seed_port}`: 6667, the seed's own, when it is free at every such address, else a free
//! port of the harness's, so that a server the user left running on 6667 (the README's quick start
//! binds 0.0.0.0:6667) neither fails the tests nor receives their pipes' data. `${seed_port}` is
//! substituted in statements (`control substitution on`) and in expected results. Other instances
//! get ephemeral ports on 127.0.0.1, exposed as `${a_port}`, `${b_port}`, … . Harness commands are `system`
//! records starting with `duetd`: `duetd restart a b`, `duetd stop b`, `duetd start b`, `duetd kill a`.
//! A comment line `# instance b: --timestamp-precision us` gives instance `b` extra `duetd` flags. A file
//! whose name starts with `_` is parked.
//!
//! Complete mode (`cargo test -p duet-server --test sqllogictest -- --complete [filter]`, or
//! `DUET_SLT_COMPLETE=1`) runs the files and writes each one back with the expected output of this
//! run: what matched stays as written, what differed (a result, an error, a statement that now
//! fails) is replaced, so a new query is written with `----` and no rows and completed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::BTreeMap;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use duet_proto::client::{Client, ClientError, ClientOptions, Outcome};
use duet_proto::types::DataType;
use duet_testkit::{Duetd, DuetdOptions};
use libtest_mimic::{Arguments, Trial};
use sqllogictest::{AsyncDB, Connection, DBOutput, DefaultColumnType, Record, Runner};

/// One session on one instance.
struct DuetDb {
    client: Client,
}

#[async_trait::async_trait]
impl AsyncDB for DuetDb {
    type Error = ClientError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, ClientError> {
        match self.client.execute(sql).await? {
            Outcome::Done(_) => Ok(DBOutput::StatementComplete(0)),
            Outcome::Rows(rs) => {
                let (rs, blocks) = self.client.collect(rs).await?;
                let mut types = Vec::new();
                if !rs.ignore_time_stamp {
                    types.push(DefaultColumnType::Integer);
                }
                types.extend(rs.data_types.iter().map(|t| match t {
                    DataType::Int32 | DataType::Int64 | DataType::Timestamp => {
                        DefaultColumnType::Integer
                    }
                    DataType::Float | DataType::Double => DefaultColumnType::FloatingPoint,
                    _ => DefaultColumnType::Text,
                }));
                let mut rows = Vec::new();
                for block in &blocks {
                    for r in 0..block.n_rows() {
                        let mut row = Vec::new();
                        if !rs.ignore_time_stamp {
                            row.push(block.times[r].to_string());
                        }
                        for column in &block.columns {
                            row.push(if column.is_null(r) {
                                "NULL".to_string()
                            } else {
                                let cell = column.render(r);
                                if cell.is_empty() {
                                    "(empty)".to_string()
                                } else {
                                    cell
                                }
                            });
                        }
                        rows.push(row);
                    }
                }
                Ok(DBOutput::Rows { types, rows })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "duet"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// The instance a connection runs on, and the session key `instance[.user/password]`.
fn instance_of(connection: &Connection) -> (String, String) {
    match connection {
        Connection::Default => ("a".to_string(), "a".to_string()),
        Connection::Named(name) => match name.split_once('.') {
            Some((instance, _)) => (instance.to_string(), name.clone()),
            None => (name.clone(), name.clone()),
        },
    }
}

/// The seed's port, which host-named instances take when it is free.
const SEED_PORT: u16 = 6667;

/// The port host-named instances listen on in the file running now, for the result validator (a
/// plain `fn`, so it reads it from here). Only one file names hosts, so files never share it.
static SEED_PORT_IN_USE: Mutex<u16> = Mutex::new(SEED_PORT);

/// The port every host-named instance of a file takes: 6667 if it is free at all their addresses,
/// else one that is (a local server holding 6667 on the wildcard address blocks every loopback
/// address).
fn seed_port(addresses: &[String]) -> Result<u16> {
    let free_everywhere = |port: u16| {
        addresses
            .iter()
            .all(|a| TcpListener::bind((a.as_str(), port)).is_ok())
    };
    if free_everywhere(SEED_PORT) {
        return Ok(SEED_PORT);
    }
    for _ in 0..50 {
        let port = TcpListener::bind((addresses[0].as_str(), 0))?
            .local_addr()?
            .port();
        if free_everywhere(port) {
            eprintln!(
                "port {SEED_PORT} is in use at {addresses:?} (a local duetd?): the host-named instances take port {port}"
            );
            return Ok(port);
        }
    }
    bail!("no port is free at every address of {addresses:?}")
}

/// Compares results as sqllogictest does, after putting the seed port in the expected lines.
fn validate_with_seed_port(
    normalizer: sqllogictest::Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    let port = SEED_PORT_IN_USE
        .lock()
        .map_or(SEED_PORT, |p| *p)
        .to_string();
    let expected: Vec<String> = expected
        .iter()
        .map(|line| line.replace("${seed_port}", &port))
        .collect();
    sqllogictest::default_validator(normalizer, actual, &expected)
}

/// A host-like instance name (`iotdb-1`) is bound where it resolves, on the seed port.
fn fixed_address(name: &str) -> Result<Option<String>> {
    if !name.contains('-') {
        return Ok(None);
    }
    let addr = (name, SEED_PORT)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow!("host {name} does not resolve; run scripts/setup-test-hosts.sh (as root) to map iotdb-1/iotdb-2 to loopback addresses"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "host {name} resolves to {}, which is not a loopback address; tests only use loopback",
            addr.ip()
        );
    }
    Ok(Some(addr.ip().to_string()))
}

/// A future that opens one session.
type Connect = std::pin::Pin<Box<dyn std::future::Future<Output = Result<DuetDb, ClientError>>>>;
type MakeSession = Box<dyn FnMut() -> Connect>;
type DuetRunner = Runner<DuetDb, MakeSession>;

struct Instances {
    servers: BTreeMap<String, Duetd>,
    runners: BTreeMap<String, DuetRunner>,
    /// Control records seen so far, replayed into runners created after a restart.
    controls: Vec<Record<DefaultColumnType>>,
}

impl Instances {
    fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .servers
            .iter()
            .flat_map(|(name, s)| {
                [
                    (format!("{name}_port"), s.port().to_string()),
                    (format!("{name}_host"), s.host()),
                ]
            })
            .collect();
        if let Some(seed) = self.servers.iter().find(|(name, _)| name.contains('-')) {
            vars.push(("seed_port".to_string(), seed.1.port().to_string()));
        }
        vars
    }

    fn new_runner(&self, key: &str) -> Result<DuetRunner> {
        let (name, login) = match key.split_once('.') {
            Some((name, login)) => (name, Some(login)),
            None => (key, None),
        };
        let server = self
            .servers
            .get(name)
            .ok_or_else(|| anyhow!("no instance {name}"))?;
        let mut options = ClientOptions {
            host: server.host(),
            port: server.port(),
            fetch_size: 1000,
            ..ClientOptions::default()
        };
        if let Some(login) = login {
            let (user, password) = login
                .split_once('/')
                .ok_or_else(|| anyhow!("connection {key}: expected instance.user/password"))?;
            options.user = user.to_string();
            options.password = password.to_string();
        }
        let make: MakeSession = Box::new(move || {
            let options = options.clone();
            Box::pin(async move {
                Ok(DuetDb {
                    client: Client::connect(&options).await?,
                })
            })
        });
        let mut runner = Runner::new(make);
        runner.with_validator(validate_with_seed_port);
        for (k, v) in self.vars() {
            runner.set_var(k, v);
        }
        Ok(runner)
    }

    /// The runner of a session, created (with the file's control settings) on first use.
    async fn runner(&mut self, key: &str) -> Result<&mut DuetRunner> {
        if !self.runners.contains_key(key) {
            let mut runner = self.new_runner(key)?;
            for control in self.controls.clone() {
                runner
                    .run_async(control)
                    .await
                    .map_err(|e| anyhow!("{}", e.display(false)))?;
            }
            self.runners.insert(key.to_string(), runner);
        }
        self.runners
            .get_mut(key)
            .ok_or_else(|| anyhow!("no runner {key}"))
    }

    /// Forgets the sessions of an instance (after it restarted, its connections are gone).
    fn drop_sessions(&mut self, name: &str) {
        self.runners
            .retain(|key, _| key.split('.').next() != Some(name));
    }

    /// Executes a `duetd <verb> <instances…>` harness command.
    async fn command(&mut self, command: &str) -> Result<()> {
        let mut words = command.split_whitespace().skip(1);
        let verb = words
            .next()
            .ok_or_else(|| anyhow!("duetd command without a verb"))?;
        let names: Vec<String> = words.map(String::from).collect();
        for name in &names {
            let server = self
                .servers
                .get_mut(name)
                .ok_or_else(|| anyhow!("no instance {name}"))?;
            match verb {
                "stop" => server.stop()?,
                "kill" => server.kill()?,
                // `stop` first: a restart must not see its own previous process.
                "restart" => server.restart()?,
                "start" => server.restart()?,
                other => bail!("unknown harness command duetd {other}"),
            }
        }
        for name in &names {
            self.drop_sessions(name);
        }
        Ok(())
    }
}

async fn run_file(path: &Path, complete: bool) -> Result<()> {
    let records =
        sqllogictest::parse_file::<DefaultColumnType>(path).map_err(|e| anyhow!("{e}"))?;
    let mut names: Vec<String> = vec!["a".to_string()];
    for record in &records {
        if let Record::Statement { connection, .. } | Record::Query { connection, .. } = record {
            let (name, _) = instance_of(connection);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let text = std::fs::read_to_string(path)?;
    let mut extra_args: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some((name, args)) = line
            .strip_prefix("# instance ")
            .and_then(|rest| rest.split_once(':'))
        {
            let name = name.trim().to_string();
            extra_args
                .entry(name.clone())
                .or_default()
                .extend(args.split_whitespace().map(String::from));
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut instances = Instances {
        servers: BTreeMap::new(),
        runners: BTreeMap::new(),
        controls: Vec::new(),
    };
    let mut addresses = BTreeMap::new();
    for name in &names {
        if let Some(address) = fixed_address(name)? {
            addresses.insert(name.clone(), address);
        }
    }
    let host_port = if addresses.is_empty() {
        SEED_PORT
    } else {
        let port = seed_port(&addresses.values().cloned().collect::<Vec<_>>())?;
        if let Ok(mut in_use) = SEED_PORT_IN_USE.lock() {
            *in_use = port;
        }
        port
    };
    for name in &names {
        let address = addresses.get(name).cloned();
        let mut args = vec!["--internal-address".to_string(), name.clone()];
        args.extend(extra_args.get(name).cloned().unwrap_or_default());
        let options = DuetdOptions {
            args,
            port: if address.is_some() { host_port } else { 0 },
            address,
            ..DuetdOptions::default()
        };
        let server =
            Duetd::start_with(options).with_context(|| format!("starting instance {name}"))?;
        instances.servers.insert(name.clone(), server);
    }
    // Complete mode: every record as it will be written back, expected output from this run.
    let mut completed: Vec<Record<DefaultColumnType>> = Vec::new();
    let mut records = records.into_iter();
    while let Some(record) = records.next() {
        let result = match record {
            record @ (Record::Statement { .. } | Record::Query { .. }) if complete => {
                let (connection, on_default) = take_connection(record.clone());
                let (_, key) = instance_of(&connection);
                let runner = instances.runner(&key).await?;
                completed.push(complete_record(runner, record, on_default).await);
                Ok(())
            }
            record @ (Record::Statement { .. } | Record::Query { .. }) => {
                let (connection, on_default) = take_connection(record);
                let (_, key) = instance_of(&connection);
                let runner = instances.runner(&key).await?;
                runner.run_async(on_default).await.map(|_| ())
            }
            Record::System {
                ref command,
                ref loc,
                ..
            } if command.trim_start().starts_with("duetd ") => {
                let command = command.clone();
                let loc = loc.clone();
                instances
                    .command(&command)
                    .await
                    .with_context(|| format!("at {loc}"))?;
                completed.push(record.clone());
                Ok(())
            }
            record @ (Record::Control(_) | Record::HashThreshold { .. } | Record::Condition(_)) => {
                completed.push(record.clone());
                instances.controls.push(record.clone());
                let mut result = Ok(());
                for runner in instances.runners.values_mut() {
                    if let Err(e) = runner.run_async(record.clone()).await {
                        result = Err(e);
                    }
                }
                result
            }
            record @ Record::Halt { .. } => {
                // What follows a halt is not run; complete mode keeps it as written.
                completed.push(record);
                completed.extend(records.by_ref());
                break;
            }
            other if complete => {
                let (_, on_default) = take_connection(other.clone());
                let runner = instances.runner("a").await?;
                completed.push(complete_record(runner, other, on_default).await);
                Ok(())
            }
            other => instances
                .runner("a")
                .await?
                .run_async(other)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            let logs: String = instances
                .servers
                .iter()
                .map(|(n, s)| format!("\n--- log of instance {n} ---\n{}", s.log()))
                .collect();
            bail!("{}{logs}", e.display(false));
        }
    }
    for (_, server) in instances.servers.iter_mut() {
        server.stop()?;
    }
    if complete {
        write_completed(path, &completed)?;
    }
    Ok(())
}

/// The record with its connection replaced by the default one (each session has a runner of its
/// own), and the connection it named.
fn take_connection(
    mut record: Record<DefaultColumnType>,
) -> (Connection, Record<DefaultColumnType>) {
    let connection = match &mut record {
        Record::Statement { connection, .. } | Record::Query { connection, .. } => {
            std::mem::replace(connection, Connection::Default)
        }
        _ => Connection::Default,
    };
    (connection, record)
}

/// Runs a record and returns it with the output of this run as its expectation (sqllogictest's own
/// rules: a matching result or error is kept as written, so `${seed_port}`, `<slt:ignore>` and
/// error patterns survive). A record with `retry` runs until it matches or its attempts are spent,
/// as the runner would.
async fn complete_record(
    runner: &mut DuetRunner,
    original: Record<DefaultColumnType>,
    on_default: Record<DefaultColumnType>,
) -> Record<DefaultColumnType> {
    let retry = match &original {
        Record::Statement { retry, .. } | Record::Query { retry, .. } => retry.clone(),
        _ => None,
    };
    let (attempts, backoff) = retry.map_or((1, std::time::Duration::ZERO), |r| {
        (r.attempts.max(1), r.backoff)
    });
    let mut updated = original.clone();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff).await;
        }
        let output = runner.apply_record(on_default.clone()).await;
        updated = sqllogictest::update_record_with_output(
            &original,
            &output,
            " ",
            validate_with_seed_port,
            sqllogictest::default_normalizer,
            sqllogictest::default_column_validator,
        )
        .unwrap_or_else(|| original.clone());
        if updated.to_string() == original.to_string() {
            break;
        }
    }
    updated
}

/// Writes the completed records over the file (through a temporary file and a rename).
fn write_completed(path: &Path, records: &[Record<DefaultColumnType>]) -> Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.to_string());
        text.push('\n');
    }
    let text = format!("{}\n", text.trim_end_matches('\n'));
    let temporary = path.with_extension("slt.complete");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "slt")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        {
            out.push(path);
        }
    }
}

/// The flag (after `--`) or environment variable that turns on complete mode.
const COMPLETE_FLAG: &str = "--complete";
const COMPLETE_ENV: &str = "DUET_SLT_COMPLETE";

fn main() {
    // `--complete` is ours, not libtest's: taken out before libtest-mimic reads the rest.
    let mut complete = std::env::var(COMPLETE_ENV).is_ok_and(|v| v == "1");
    let args = Arguments::from_iter(std::env::args().filter(|arg| {
        let ours = arg == COMPLETE_FLAG;
        complete |= ours;
        !ours
    }));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql-tests");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            Trial::test(name, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(run_file(&path, complete))
                    .map_err(|e| format!("{e:#}").into())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
