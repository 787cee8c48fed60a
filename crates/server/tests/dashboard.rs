//! The dashboard page in a real browser (headless Chromium, Debian's `chromium`) against a real pair
//! A ⇄ B with writes flowing: it renders both instances with their pipes, its charts move, a stopped
//! peer shows as down and its pipe's exception shows, and after the peer's return both run again.
//! Screenshots are kept under `target/tmp/dashboard/`.
//!
//! Chromium runs with virtual time (`--virtual-time-budget`): the page's one-second polls follow each
//! other as fast as the real answers come, so a few seconds of the page's life take about a second.
//! Without Chromium the test says so and passes, unless `DUET_REQUIRE_BROWSER=1` (scripts/test.sh
//! installs Chromium and sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use duet_testkit::{wait_for, Duetd};

const WAIT: Duration = Duration::from_secs(60);

fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("DUET_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Loads `url` for `virtual_ms` of the page's (virtual) time; returns the DOM then, and writes a
/// screenshot of the same moment's page to `screenshot` (a second load).
fn load(browser: &Path, url: &str, virtual_ms: u64, screenshot: &Path) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let run = |mode: &[String]| -> Result<String> {
        let mut child = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                "--window-size=1500,1150",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--virtual-time-budget={virtual_ms}"))
            .args(mode)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let status = wait_for("chromium to finish", WAIT, || {
            child.try_wait().ok().flatten()
        });
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut out)?;
        }
        if !status.success() {
            bail!("chromium exited with {status}");
        }
        Ok(out)
    };
    let dom = run(&["--dump-dom".to_string()])?;
    run(&[format!("--screenshot={}", screenshot.display())])?;
    Ok(dom)
}

/// The attribute values of every `<div class="chart" …>` titled `title` in the DOM.
fn chart_max(dom: &str, title: &str) -> Option<f64> {
    let marker = format!("data-title=\"{title}\" data-max=\"");
    let start = dom.find(&marker)? + marker.len();
    dom.get(start..)?.split('"').next()?.parse().ok()
}

/// The `<section>` of the card whose `data-base` is `base`.
fn card<'a>(dom: &'a str, base: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-base=\"{base}\""))?;
    let rest = dom.get(start..)?;
    Some(rest.find("</section>").map_or(rest, |end| &rest[..end]))
}

fn exec(rt: &tokio::runtime::Runtime, port: u16, sql: &str) -> Result<()> {
    rt.block_on(duet_testkit::query::execute_update(port, sql))
}

#[test]
fn the_dashboard_shows_the_pair_its_moving_charts_and_a_stopped_peer() -> Result<()> {
    let Some(browser) = chromium() else {
        if std::env::var("DUET_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            bail!("DUET_REQUIRE_BROWSER=1 but no chromium was found (set DUET_CHROMIUM)");
        }
        eprintln!("SKIPPED: no chromium on this machine (scripts/test.sh installs it)");
        return Ok(());
    };
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&artifacts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let a = Duetd::start()?;
    let mut b = Duetd::start()?;
    let (a_port, b_port) = (a.port(), b.port());
    for (on, name, peer) in [(a_port, "AB", b_port), (b_port, "BA", a_port)] {
        exec(
            &rt,
            on,
            &format!(
                "create pipe {name} with source ('source.mode.double-living'='true') with sink ('sink'='iotdb-thrift-sink', 'sink.ip'='127.0.0.1', 'sink.port'='{peer}')"
            ),
        )?;
    }
    // Writers on both sides until the test ends (B's fail while it is down).
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(a_port, "root.dash.a"), (b_port, "root.dash.b")]
        .into_iter()
        .map(|(port, device)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut t = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let rows: Vec<String> =
                        (0..20).map(|i| format!("({}, {i})", t * 20 + i)).collect();
                    let _ = exec(
                        &rt,
                        port,
                        &format!(
                            "insert into {device}(timestamp, s1) values {}",
                            rows.join(", ")
                        ),
                    );
                    t += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();
    let result = (|| -> Result<()> {
        let a_url = format!("http://{}/", a.metrics_addr()?);
        let b_base = format!("http://{}/", b.metrics_addr()?);
        wait_for("both pipes to have sent something", WAIT, || {
            let sent = |s: &Duetd, pipe: &str| {
                s.metrics()
                    .ok()?
                    .value("pipe_connector_tablet_transfer_total", &[("name", pipe)])
            };
            (sent(&a, "AB")? > 0.0 && sent(&b, "BA")? > 0.0).then_some(())
        })?;

        // Both instances, both pipes running, charts that moved.
        let dom = load(&browser, &a_url, 12_000, &artifacts.join("1-running.png"))?;
        let local = card(&dom, "local").ok_or_else(|| anyhow!("no card for A:\n{dom}"))?;
        let peer =
            card(&dom, &b_base).ok_or_else(|| anyhow!("no card for B ({b_base}):\n{dom}"))?;
        assert!(local.contains("data-state=\"up\""), "{local}");
        assert!(peer.contains("data-state=\"up\""), "{peer}");
        assert!(
            local.contains(&format!(":{a_port}")) && local.contains(">AB<"),
            "{local}"
        );
        assert!(
            peer.contains(&format!(":{b_port}")) && peer.contains(">BA<"),
            "{peer}"
        );
        assert!(local.contains("state RUNNING") && peer.contains("state RUNNING"));
        assert!(
            local.contains(&format!("href=\"{b_base}\"")),
            "A links to B: {local}"
        );
        assert!(
            chart_max(local, "points written /s").is_some_and(|v| v > 0.0),
            "A's write chart is flat: {local}"
        );
        assert!(
            chart_max(peer, "points written /s").is_some_and(|v| v > 0.0),
            "B's write chart is flat: {peer}"
        );
        assert!(
            chart_max(local, "AB: sent").is_some_and(|v| v > 0.0),
            "AB's rate chart is flat: {local}"
        );

        // B stops: its card is down, A's pipe shows the failure and a backlog.
        b.stop()?;
        wait_for("AB to show its exception", WAIT, || {
            let m = a.metrics().ok()?;
            (m.value("pipe_exception", &[("name", "AB")])? == 1.0
                && m.value("pipe_datanode_remaining_event_count", &[("name", "AB")])? > 0.0)
                .then_some(())
        })?;
        let dom = load(&browser, &a_url, 6_000, &artifacts.join("2-peer-down.png"))?;
        let local = card(&dom, "local").ok_or_else(|| anyhow!("no card for A:\n{dom}"))?;
        let peer = card(&dom, &b_base).ok_or_else(|| anyhow!("no card for B:\n{dom}"))?;
        assert!(
            peer.contains("data-state=\"down\"") && peer.contains("DOWN"),
            "{peer}"
        );
        assert!(local.contains("class=\"exception\""), "{local}");
        assert!(
            chart_max(local, "AB: backlog (entries)").is_some_and(|v| v > 0.0),
            "{local}"
        );

        // B is back: both run again and the backlog drains.
        b.restart()?;
        wait_for("AB to drain", WAIT, || {
            let m = a.metrics().ok()?;
            (m.value("pipe_exception", &[("name", "AB")])? == 0.0
                && m.value("pipe_datanode_remaining_event_count", &[("name", "AB")])? < 5.0)
                .then_some(())
        })?;
        let b_base = format!("http://{}/", b.metrics_addr()?);
        let dom = load(&browser, &a_url, 6_000, &artifacts.join("3-recovered.png"))?;
        let peer = card(&dom, &b_base).ok_or_else(|| anyhow!("no card for B:\n{dom}"))?;
        assert!(peer.contains("data-state=\"up\""), "{peer}");
        eprintln!("screenshots in {}", artifacts.display());
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    result
}
