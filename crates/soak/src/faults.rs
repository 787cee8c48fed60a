//! The faults: a plan drawn from the seed up front (so a seed names one sequence of faults and gaps),
//! and their injection into the running pair — SIGKILL and SIGTERM with restarts, partitions (refused
//! connections or a black hole) and slow links through the proxies, a full disk when the data
//! directories are size-limited mounts, and failed fsyncs through duetd's fault hook.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use duet_testkit::proxy::LinkState;

use crate::cluster::Cluster;
use crate::history::{secs, FaultRecord, History, Side};
use crate::rng::Rng;

/// Which pipe links a network fault affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The link from A's pipe to B.
    AtoB,
    BtoA,
    Both,
}

impl Links {
    /// The sides whose incoming proxy the fault affects.
    fn into_sides(self) -> Vec<Side> {
        match self {
            Links::AtoB => vec![Side::B],
            Links::BtoA => vec![Side::A],
            Links::Both => vec![Side::A, Side::B],
        }
    }
}

impl fmt::Display for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Links::AtoB => "pipe AB",
            Links::BtoA => "pipe BA",
            Links::Both => "both pipes",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, then a restart after `down`.
    Kill { side: Side, down: Duration },
    /// SIGTERM (graceful stop), then a restart at once.
    Term { side: Side },
    /// Connections refused and cut (`blackhole` false) or held without a byte moving (true).
    Partition {
        links: Links,
        blackhole: bool,
        lasting: Duration,
    },
    Slow {
        links: Links,
        delay: Duration,
        bytes_per_second: u64,
        lasting: Duration,
    },
    /// The side's file system filled up (a balloon file), then freed.
    DiskFull { side: Side, lasting: Duration },
    /// The side's next change-log fsync fails (its records read back as zeros) through duetd's
    /// fault hook. With `rewrite_fails` the rewrite of those records fails too, which poisons the
    /// log: the side refuses writes until it is restarted (gracefully) after `restart_after`.
    Fsync {
        side: Side,
        rewrite_fails: bool,
        restart_after: Duration,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { side, down } => {
                write!(f, "SIGKILL {side}, restart after {}", secs(*down))
            }
            Fault::Term { side } => write!(f, "SIGTERM {side} and restart"),
            Fault::Partition {
                links,
                blackhole,
                lasting,
            } => write!(
                f,
                "partition {links} for {} ({})",
                secs(*lasting),
                if *blackhole {
                    "black hole"
                } else {
                    "connections refused and cut"
                }
            ),
            Fault::Slow {
                links,
                delay,
                bytes_per_second,
                lasting,
            } => write!(
                f,
                "slow {links} for {}: {} ms per chunk, {} KiB/s",
                secs(*lasting),
                delay.as_millis(),
                bytes_per_second / 1024
            ),
            Fault::DiskFull { side, lasting } => {
                write!(f, "disk full on {side} for {}", secs(*lasting))
            }
            Fault::Fsync {
                side,
                rewrite_fails: false,
                ..
            } => write!(f, "failed fsync on {side} (rewritten)"),
            Fault::Fsync {
                side,
                rewrite_fails: true,
                restart_after,
            } => write!(
                f,
                "failed fsync and rewrite on {side} (log poisoned), SIGTERM and restart after {}",
                secs(*restart_after)
            ),
        }
    }
}

/// One planned fault and the quiet time before it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub gap: Duration,
    pub fault: Fault,
}

/// What the plan may contain.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub faults: usize,
    /// Quiet time before each fault, uniform in this range of milliseconds.
    pub gap_ms: (u64, u64),
    /// Relative weights of SIGKILL, SIGTERM, partition, slow link, disk full and failed fsync.
    pub weights: [u64; 6],
}

/// The default mix: kills and partitions most, graceful restarts, slow links and failed fsyncs
/// less; disk full only when asked for.
pub const DEFAULT_WEIGHTS: [u64; 6] = [30, 20, 30, 15, 0, 10];
/// The weight of disk-full faults when they are enabled without explicit weights.
pub const DISK_FULL_WEIGHT: u64 = 10;

/// Parses `kill=30,term=20,partition=30,slow=15,disk=10,fsync=10` (names may be omitted: 0).
pub fn parse_weights(text: &str) -> Result<[u64; 6]> {
    const NAMES: [&str; 6] = ["kill", "term", "partition", "slow", "disk", "fsync"];
    let mut weights = [0u64; 6];
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("weight `{item}` is not name=number"))?;
        let index = NAMES
            .iter()
            .position(|n| *n == name.trim())
            .ok_or_else(|| anyhow::anyhow!("unknown fault `{name}`: one of {NAMES:?}"))?;
        weights[index] = value
            .trim()
            .parse()
            .with_context(|| format!("weight of {name}"))?;
    }
    if weights.iter().all(|w| *w == 0) {
        anyhow::bail!("every fault weight is 0");
    }
    Ok(weights)
}

/// Draws the whole fault sequence from the seed.
pub fn plan(seed: u64, options: &PlanOptions) -> Vec<Planned> {
    let mut rng = Rng::fork(seed, 1);
    let side = |rng: &mut Rng| if rng.chance(50) { Side::A } else { Side::B };
    let links = |rng: &mut Rng| match rng.range(0, 2) {
        0 => Links::AtoB,
        1 => Links::BtoA,
        _ => Links::Both,
    };
    let weights = options.weights;
    (0..options.faults)
        .map(|_| {
            let gap = rng.millis(options.gap_ms.0, options.gap_ms.1);
            let fault = match rng.weighted(&weights) {
                0 => Fault::Kill {
                    side: side(&mut rng),
                    down: rng.millis(0, 2_000),
                },
                1 => Fault::Term {
                    side: side(&mut rng),
                },
                2 => Fault::Partition {
                    links: links(&mut rng),
                    blackhole: rng.chance(50),
                    lasting: rng.millis(1_000, 5_000),
                },
                3 => Fault::Slow {
                    links: links(&mut rng),
                    delay: rng.millis(5, 100),
                    bytes_per_second: rng.range(64, 1024) * 1024,
                    lasting: rng.millis(1_000, 5_000),
                },
                4 => Fault::DiskFull {
                    side: side(&mut rng),
                    lasting: rng.millis(1_000, 5_000),
                },
                _ => Fault::Fsync {
                    side: side(&mut rng),
                    rewrite_fails: rng.chance(30),
                    restart_after: rng.millis(200, 2_000),
                },
            };
            Planned { gap, fault }
        })
        .collect()
}

/// A problem a fault revealed in the server itself (not a network or workload effect): the soak fails.
#[derive(Debug, Clone)]
pub struct Incident {
    pub fault: usize,
    pub message: String,
}

/// Injects one fault and undoes it (restart, heal, free); returns an incident when the server did not
/// stop as it must, and how long a graceful stop took. An `Err` (a server that does not start again)
/// means the soak cannot go on.
pub fn inject(
    cluster: &mut Cluster,
    history: &History,
    index: usize,
    fault: &Fault,
    stop_timeout: Duration,
) -> Result<(Option<Incident>, Option<Duration>)> {
    let started = history.now();
    let mut incident = None;
    let mut graceful_stop = None;
    match fault {
        Fault::Kill { side, down } => {
            cluster.server(*side).kill()?;
            history.process_died(*side);
            std::thread::sleep(*down);
            restart(cluster, *side, index)?;
        }
        Fault::Term { side } => {
            let stop = (*side, stop_timeout, index);
            (graceful_stop, incident) = stop_and_restart(cluster, history, stop, "")?;
        }
        Fault::Partition {
            links,
            blackhole,
            lasting,
        } => {
            let state = if *blackhole {
                LinkState::Blackhole
            } else {
                LinkState::Refuse
            };
            for side in links.into_sides() {
                cluster.proxy_into(side).set(state);
            }
            std::thread::sleep(*lasting);
            for side in links.into_sides() {
                cluster.proxy_into(side).heal();
            }
        }
        Fault::Slow {
            links,
            delay,
            bytes_per_second,
            lasting,
        } => {
            for side in links.into_sides() {
                cluster.proxy_into(side).set(LinkState::Slow {
                    delay: *delay,
                    bytes_per_second: *bytes_per_second,
                });
            }
            std::thread::sleep(*lasting);
            for side in links.into_sides() {
                cluster.proxy_into(side).heal();
            }
        }
        Fault::DiskFull { side, lasting } => {
            let balloon = cluster.data_dir(*side).join("soak-balloon");
            fill(&balloon)?;
            std::thread::sleep(*lasting);
            std::fs::remove_file(&balloon)
                .with_context(|| format!("removing {}", balloon.display()))?;
        }
        Fault::Fsync {
            side,
            rewrite_fails,
            restart_after,
        } => {
            let signal = if *rewrite_fails { "USR2" } else { "USR1" };
            cluster.server(*side).send_signal(signal)?;
            if *rewrite_fails {
                // A poisoned log refuses writes until the operator restarts the server.
                std::thread::sleep(*restart_after);
                let stop = (*side, stop_timeout, index);
                let what = " with a poisoned log";
                (graceful_stop, incident) = stop_and_restart(cluster, history, stop, what)?;
            }
        }
    }
    let description = match graceful_stop {
        Some(took) => format!("{fault} (stopped in {})", secs(took)),
        None => fault.to_string(),
    };
    history.record_fault(FaultRecord {
        index,
        description,
        started,
        ended: history.now(),
    });
    Ok((incident, graceful_stop))
}

/// Starts `side` again on its data directory and port; a failed start is fatal to the soak (the
/// server could not recover its own data).
/// Stops `side` with SIGTERM within `stop_timeout` and starts it again (fault `index`): how long the
/// graceful stop took, or the incident of a stop that was not graceful (`what` describes the side).
fn stop_and_restart(
    cluster: &mut Cluster,
    history: &History,
    (side, stop_timeout, index): (Side, Duration, usize),
    what: &str,
) -> Result<(Option<Duration>, Option<Incident>)> {
    let stopped = cluster.server(side).stop_within(stop_timeout);
    history.process_died(side);
    let outcome = match stopped {
        Ok(took) => (Some(took), None),
        Err(e) => {
            let message = format!("{side}{what} did not stop gracefully on SIGTERM: {e:#}");
            (
                None,
                Some(Incident {
                    fault: index,
                    message,
                }),
            )
        }
    };
    restart(cluster, side, index)?;
    Ok(outcome)
}

fn restart(cluster: &mut Cluster, side: Side, index: usize) -> Result<()> {
    cluster
        .server(side)
        .restart()
        .with_context(|| format!("fault {index}: {side} did not start again"))
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) -> Result<()> {
    use std::io::Write;
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0u8; 1 << 20];
    let mut size = chunk.len();
    // Halve the chunk at each refusal down to one block, so the file system is left with no room.
    while size >= 4096 {
        match file.write(&chunk[..size]) {
            Ok(n) if n > 0 => {}
            _ => size /= 2,
        }
    }
    let _ = file.sync_all();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn options(weights: [u64; 6]) -> PlanOptions {
        PlanOptions {
            faults: 200,
            gap_ms: (500, 3000),
            weights,
        }
    }

    #[test]
    fn a_seed_names_one_plan_within_the_documented_bounds() {
        let plan = plan(42, &options(DEFAULT_WEIGHTS));
        assert_eq!(
            format!("{plan:?}"),
            format!("{:?}", super::plan(42, &options(DEFAULT_WEIGHTS)))
        );
        assert_ne!(
            format!("{plan:?}"),
            format!("{:?}", super::plan(43, &options(DEFAULT_WEIGHTS)))
        );
        let mut kinds = [0usize; 6];
        for p in &plan {
            assert!((500..=3000).contains(&p.gap.as_millis()));
            let kind = match &p.fault {
                Fault::Kill { down, .. } => {
                    assert!(down.as_millis() <= 2000);
                    0
                }
                Fault::Term { .. } => 1,
                Fault::Partition { lasting, .. } => {
                    assert!((1000..=5000).contains(&lasting.as_millis()));
                    2
                }
                Fault::Slow { lasting, .. } => {
                    assert!((1000..=5000).contains(&lasting.as_millis()));
                    3
                }
                Fault::DiskFull { .. } => 4,
                Fault::Fsync { restart_after, .. } => {
                    assert!((200..=2000).contains(&restart_after.as_millis()));
                    5
                }
            };
            kinds[kind] += 1;
        }
        assert!(kinds[..4].iter().all(|n| *n > 0), "{kinds:?}");
        assert!(kinds[5] > 0, "{kinds:?}");
        assert_eq!(kinds[4], 0, "disk full without being asked for");
    }

    #[test]
    fn weights_parse_by_name() {
        assert_eq!(
            parse_weights("kill=60, partition=40").unwrap(),
            [60, 0, 40, 0, 0, 0]
        );
        assert!(parse_weights("kill=x").is_err());
        assert!(parse_weights("crash=1").is_err());
        assert!(parse_weights("kill=0").is_err());
        let only_kills = plan(1, &options([1, 0, 0, 0, 0, 0]));
        assert!(only_kills
            .iter()
            .all(|p| matches!(p.fault, Fault::Kill { .. })));
    }
}
