//! The pair under test: two real `duetd` processes, A and B, each in its own data directory under the
//! soak's root, with pipes AB and BA (double-living, deletes included) whose sinks point at a
//! [`FaultProxy`] per direction instead of at the peer, and the administrative queries the soak needs
//! (`SHOW PIPES`, full scans).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use duet_proto::client::{Client, Outcome};
use duet_proto::types::DataType;
use duet_testkit::proxy::FaultProxy;
use duet_testkit::{Duetd, DuetdOptions};

use crate::compare::{self, Value};
use crate::history::Side;
use crate::schema::{Schema, MEASUREMENTS};
use crate::workload::client_options;

/// Server settings that make the soak reach the storage paths it means to exercise.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Small, so memtables are frozen and flushed many times while pipes apply entries.
    pub memtable_bytes: u64,
    /// Small, so log segments are released while faults happen.
    pub wal_segment_bytes: u64,
}

/// The contents of one side: series path → time → value.
pub type Snapshot = BTreeMap<String, BTreeMap<i64, Value>>;

pub struct Cluster {
    servers: [Duetd; 2],
    /// `proxies[i]` carries the pipe INTO side i (index 0: BA's link to A, index 1: AB's to B).
    proxies: [FaultProxy; 2],
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

impl Cluster {
    /// Starts A and B in `root/a` and `root/b` (logging to `duetd.test.log` inside, or to `root/a.log`
    /// and `root/b.log` when `logs_outside`), creates the schema on both, the proxies and the pipes.
    pub async fn start(
        root: &Path,
        settings: &ServerSettings,
        schema: &Schema,
        logs_outside: bool,
    ) -> Result<Cluster> {
        let mut servers = Vec::new();
        for side in Side::BOTH {
            let dir = root.join(side.lower());
            std::fs::create_dir_all(&dir)?;
            let config = root.join(format!("{}.toml", side.lower()));
            std::fs::write(
                &config,
                format!(
                    "memtable_bytes = {}\nwal_segment_bytes = {}\n",
                    settings.memtable_bytes, settings.wal_segment_bytes
                ),
            )?;
            let options = DuetdOptions {
                args: vec!["--config".into(), config.display().to_string()],
                // Lets the soak make the server's own fsyncs fail (see duetd's fault_hooks).
                env: vec![("DUET_FAULT_HOOKS".into(), "1".into())],
                ..DuetdOptions::default()
            };
            let log_file = if logs_outside {
                root.join(format!("{}.log", side.lower()))
            } else {
                dir.join("duetd.test.log")
            };
            let server = Duetd::start_in_logging_to(&dir, &log_file, options)
                .with_context(|| format!("starting {side} in {}", dir.display()))?;
            servers.push(server);
        }
        let [a, b]: [Duetd; 2] = servers
            .try_into()
            .map_err(|_| anyhow!("expected two servers"))?;
        let upstream = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let proxies = [
            FaultProxy::start(upstream(a.port()))?,
            FaultProxy::start(upstream(b.port()))?,
        ];
        let cluster = Cluster {
            servers: [a, b],
            proxies,
        };
        for side in Side::BOTH {
            let port = cluster.port(side);
            for (device, measurement, series) in schema.all_series() {
                let _ = device;
                exec(
                    port,
                    &format!(
                        "create timeseries {series} with datatype={}",
                        MEASUREMENTS[measurement].1.name()
                    ),
                )
                .await?;
            }
        }
        for side in Side::BOTH {
            let (name, peer_proxy) = match side {
                Side::A => ("AB", cluster.proxy_into(Side::B).port()),
                Side::B => ("BA", cluster.proxy_into(Side::A).port()),
            };
            exec(
                cluster.port(side),
                &format!(
                    "create pipe {name} with source ('source.mode.double-living'='true', \
                     'source.inclusion'='data') with sink ('sink'='iotdb-thrift-sink', \
                     'sink.ip'='127.0.0.1', 'sink.port'='{peer_proxy}')"
                ),
            )
            .await?;
        }
        Ok(cluster)
    }

    pub fn server(&mut self, side: Side) -> &mut Duetd {
        &mut self.servers[side.index()]
    }

    pub fn port(&self, side: Side) -> u16 {
        self.servers[side.index()].port()
    }

    pub fn data_dir(&self, side: Side) -> PathBuf {
        self.servers[side.index()].data_dir().to_path_buf()
    }

    pub fn log_file(&self, side: Side) -> PathBuf {
        self.servers[side.index()].log_file().to_path_buf()
    }

    /// The proxy in front of `side`: the link its peer's pipe sends through.
    pub fn proxy_into(&self, side: Side) -> &FaultProxy {
        &self.proxies[side.index()]
    }

    /// The pipe that sends from `side`.
    pub fn pipe_of(side: Side) -> &'static str {
        match side {
            Side::A => "AB",
            Side::B => "BA",
        }
    }

    /// Kills both servers (their directories stay).
    pub fn shut_down(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
        }
    }
}

pub async fn connect(port: u16) -> Result<Client> {
    Client::connect(&client_options(port, ADMIN_TIMEOUT))
        .await
        .map_err(|e| anyhow!("connecting to port {port}: {e}"))
}

/// Executes one statement that returns no rows.
pub async fn exec(port: u16, sql: &str) -> Result<()> {
    let mut c = connect(port).await?;
    c.execute_update(sql)
        .await
        .map_err(|e| anyhow!("port {port}: `{sql}`: {e}"))?;
    let _ = c.close().await;
    Ok(())
}

/// `SHOW PIPES`, one map per pipe keyed by column name.
pub async fn show_pipes(port: u16) -> Result<Vec<BTreeMap<String, String>>> {
    let mut c = connect(port).await?;
    let (rs, blocks) = compare::query(&mut c, "show pipes")
        .await
        .map_err(|e| anyhow!("port {port}: show pipes: {e}"))?;
    let _ = c.close().await;
    let mut out = Vec::new();
    for block in &blocks {
        for row in 0..block.n_rows() {
            out.push(
                rs.columns
                    .iter()
                    .zip(&block.columns)
                    .map(|(name, column)| (name.clone(), compare::cell_text(column, row)))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Every series under `root.**` with its type.
pub async fn series(port: u16) -> Result<BTreeMap<String, DataType>> {
    let mut c = connect(port).await?;
    let out = compare::series(&mut c, "root.**")
        .await
        .map_err(|e| anyhow!("port {port}: show timeseries: {e}"))?;
    let _ = c.close().await;
    Ok(out)
}

/// Reads every point of the series `measurements` of `device` (absent series read as empty).
pub async fn scan_device(
    c: &mut Client,
    device: &str,
    measurements: &[String],
) -> Result<Snapshot> {
    let mut out = Snapshot::new();
    for m in measurements {
        out.insert(format!("{device}.{m}"), BTreeMap::new());
    }
    let sql = format!("select {} from {device}", measurements.join(", "));
    let rs = match c.execute(&sql).await {
        Ok(Outcome::Rows(rs)) => rs,
        Ok(Outcome::Done(_)) => bail!("`{sql}` returned no rows"),
        Err(e) => bail!("`{sql}`: {e}"),
    };
    let columns = rs.columns.clone();
    let (_, blocks) = c.collect(rs).await.map_err(|e| anyhow!("`{sql}`: {e}"))?;
    for block in &blocks {
        for (name, column) in columns.iter().zip(&block.columns) {
            let points = out.entry(name.clone()).or_default();
            for (row, time) in block.times.iter().enumerate() {
                if let Some(value) = compare::cell(column, row) {
                    points.insert(*time, value);
                }
            }
        }
    }
    Ok(out)
}

/// A cheap summary of one series' contents: its point count and an order-free hash of its points.
pub type Fingerprint = BTreeMap<String, (usize, u64)>;

fn point_hash(time: i64, value: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    time.hash(&mut h);
    match value {
        Value::Boolean(v) => v.hash(&mut h),
        Value::Int32(v) => v.hash(&mut h),
        Value::Int64(v) => v.hash(&mut h),
        Value::Float(v) => v.to_bits().hash(&mut h),
        Value::Double(v) => v.to_bits().hash(&mut h),
        Value::Binary(_, v) => v.hash(&mut h),
    }
    h.finish()
}

/// Fingerprints every series of `devices` (device path → measurement names), one series in memory at
/// a time.
pub async fn fingerprint(
    port: u16,
    devices: &BTreeMap<String, Vec<String>>,
) -> Result<Fingerprint> {
    let mut c = connect(port).await?;
    let mut out = Fingerprint::new();
    // One series at a time: a long soak's device can hold millions of points.
    for (device, measurements) in devices {
        for m in measurements {
            let snapshot = scan_device(&mut c, device, std::slice::from_ref(m))
                .await
                .map_err(|e| anyhow!("port {port}: {e}"))?;
            for (series, points) in snapshot {
                let hash = points
                    .iter()
                    .fold(0u64, |acc, (t, v)| acc.wrapping_add(point_hash(*t, v)));
                out.insert(series, (points.len(), hash));
            }
        }
    }
    let _ = c.close().await;
    Ok(out)
}
