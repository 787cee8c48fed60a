//! A real Prometheus server (Debian's `prometheus`) scrapes a real pair A ⇄ B every second, and
//! PromQL over its HTTP API sees what an operator's alerts would: both targets up, the pipe's backlog
//! and lag rising while B is stopped, and falling back to 0 once B is back; acknowledgement lag as a
//! histogram quantile. Without Prometheus the test says so and passes, unless
//! `DUET_REQUIRE_PROMETHEUS=1` (scripts/test.sh installs it and sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use duet_testkit::{http, wait_for, Duetd, DuetdOptions};

const WAIT: Duration = Duration::from_secs(60);

fn prometheus_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("DUET_PROMETHEUS") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The Prometheus process, killed with the test.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    fn start(binary: &PathBuf, targets: &[String]) -> Result<Prometheus> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: duet\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )?;
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        wait_for("Prometheus to be ready", WAIT, || {
            http::get(&prometheus.addr, "/-/ready")
                .ok()
                .filter(|(status, _)| *status == 200)
        })?;
        Ok(prometheus)
    }

    /// An instant PromQL query: each result's labels and value.
    fn query(&self, promql: &str) -> Result<Vec<(serde_json::Value, f64)>> {
        let (status, body) = http::get(
            &self.addr,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        if status != 200 {
            bail!("{promql}: HTTP {status}: {body}");
        }
        let json: serde_json::Value = serde_json::from_str(&body)?;
        let results = json["data"]["result"]
            .as_array()
            .ok_or_else(|| anyhow!("{promql}: no result in {body}"))?;
        Ok(results
            .iter()
            .filter_map(|r| {
                let value = r["value"][1].as_str()?.parse::<f64>().ok()?;
                Some((r["metric"].clone(), value))
            })
            .collect())
    }

    /// The single value of `promql`, if it has exactly one result.
    fn value(&self, promql: &str) -> Option<f64> {
        let results = self.query(promql).ok()?;
        match results.as_slice() {
            [(_, v)] => Some(*v),
            _ => None,
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn exec(rt: &tokio::runtime::Runtime, port: u16, sql: &str) -> Result<()> {
    rt.block_on(duet_testkit::query::execute_update(port, sql))
}

#[test]
fn prometheus_sees_the_backlog_and_lag_move() -> Result<()> {
    let Some(binary) = prometheus_binary() else {
        if std::env::var("DUET_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1") {
            bail!("DUET_REQUIRE_PROMETHEUS=1 but no prometheus was found (set DUET_PROMETHEUS)");
        }
        eprintln!("SKIPPED: no prometheus on this machine (scripts/test.sh installs it)");
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let a = Duetd::start()?;
    // B keeps its metrics port across its restart, so Prometheus finds it again.
    let mut b = Duetd::start_with(DuetdOptions {
        args: vec!["--metrics-port".into(), free_port().to_string()],
        ..Default::default()
    })?;
    exec(
        &rt,
        a.port(),
        &format!(
            "create pipe AB with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{}')",
            b.port()
        ),
    )?;
    let prometheus = Prometheus::start(&binary, &[a.metrics_addr()?, b.metrics_addr()?])?;
    wait_for("both targets up", WAIT, || {
        (prometheus.value("sum(up{job=\"duet\"})")? == 2.0).then_some(())
    })?;
    exec(
        &rt,
        a.port(),
        "insert into root.prom.d(timestamp, s1) values (1, 1), (2, 2), (3, 3)",
    )?;
    wait_for("A's written points in Prometheus", WAIT, || {
        let v = prometheus.value(&format!(
            "duet_points_written_total{{origin=\"local\",instance=\"{}\"}}",
            a.metrics_addr().ok()?
        ))?;
        (v == 3.0).then_some(())
    })?;
    wait_for("an acknowledgement lag quantile", WAIT, || {
        prometheus
            .value("histogram_quantile(0.99, sum by (le) (rate(pipe_replication_lag_seconds_bucket{name=\"AB\"}[1m])))")
            .filter(|v| v.is_finite() && *v > 0.0)
    })?;

    // B stops: the backlog and its age rise in Prometheus, B's target goes down.
    b.stop()?;
    for t in 10..20 {
        exec(
            &rt,
            a.port(),
            &format!("insert into root.prom.d(timestamp, s1) values ({t}, {t})"),
        )?;
    }
    wait_for("the backlog in Prometheus", WAIT, || {
        (prometheus.value("pipe_datanode_remaining_event_count{name=\"AB\"}")? >= 10.0)
            .then_some(())
    })?;
    wait_for("the lag (oldest unsent) rising in Prometheus", WAIT, || {
        (prometheus.value("pipe_backlog_age_seconds{name=\"AB\"}")? >= 1.0).then_some(())
    })?;
    wait_for("B's target down", WAIT, || {
        (prometheus.value("sum(up{job=\"duet\"})")? == 1.0).then_some(())
    })?;

    // B is back: both up, the backlog and lag back to 0, the pipe running.
    b.restart()?;
    wait_for("the backlog to drain in Prometheus", WAIT, || {
        (prometheus.value("sum(up{job=\"duet\"})")? == 2.0
            && prometheus.value("pipe_datanode_remaining_event_count{name=\"AB\"}")? == 0.0
            && prometheus.value("pipe_backlog_age_seconds{name=\"AB\"}")? == 0.0
            && prometheus.value("pipe_task_status{name=\"AB\"}")? == 0.0)
            .then_some(())
    })?;
    // Every query of the Grafana dashboard in the repository is valid PromQL over names duetd serves.
    let grafana: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../grafana/duet-dashboard.json"),
    )?)?;
    let served = a.http_get("/metrics")?.1;
    let mut checked = 0;
    for panel in grafana["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap().replace("$instance", ".*");
            prometheus
                .query(&expr)
                .map_err(|e| anyhow!("panel {}: {e}", panel["title"]))?;
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| {
                    ["pipe_", "duet_", "process_"]
                        .iter()
                        .any(|p| w.starts_with(p))
                })
            {
                // A histogram's series are its family's name plus a suffix.
                let served_as = |family: &str| served.contains(&format!("# TYPE {family} "));
                assert!(
                    served_as(name)
                        || ["_bucket", "_count", "_sum"]
                            .iter()
                            .any(|suffix| name.strip_suffix(suffix).is_some_and(served_as)),
                    "the dashboard's panel {} uses {name}, which /metrics does not serve",
                    panel["title"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} queries");

    // The outage is in the range queries an alert would use.
    let peak = prometheus
        .value("max_over_time(pipe_datanode_remaining_event_count{name=\"AB\"}[5m])")
        .ok_or_else(|| anyhow!("no max_over_time"))?;
    assert!(peak >= 10.0, "{peak}");
    Ok(())
}
