//! The query benchmark's raw fetch through Duet's own Rust client (issue 11 asks for ≥ 10 M points/s
//! to a Rust client): runs one query REPEATS times after a warm-up, reads every block, and prints
//! the median, min and max in ms and the points per second as one JSON line for `bench.py`.
//!
//! `cargo run --release -p duet-cli --example raw_fetch -- <port> <sql> [repeats]`

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use duet_proto::client::{Client, ClientOptions, Outcome};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(sql)) = (args.get(1), args.get(2)) else {
        bail!("usage: raw_fetch <port> <sql> [repeats]");
    };
    let repeats: usize = args.get(3).map_or(Ok(5), |r| r.parse())?;
    let options = ClientOptions {
        port: port.parse().context("port")?,
        fetch_size: 100_000,
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&options).await?;
    let mut samples = Vec::with_capacity(repeats);
    let mut points = 0usize;
    for run in 0..=repeats {
        let started = Instant::now();
        let Outcome::Rows(mut rs) = client.execute(sql).await? else {
            bail!("{sql} returned no rows");
        };
        points = 0;
        while let Some(block) = client.next_block(&mut rs).await? {
            points += block.times.len() * block.columns.len().max(1);
        }
        client.close_result(&rs).await?;
        if run > 0 {
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(f64::total_cmp);
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0.0);
    let (min, max) = (
        samples.first().copied().unwrap_or(0.0),
        samples.last().copied().unwrap_or(0.0),
    );
    writeln!(
        std::io::stdout(),
        "{{\"median_ms\": {median:.3}, \"min_ms\": {min:.3}, \"max_ms\": {max:.3}, \"points\": {points}, \"points_per_s\": {:.0}}}",
        points as f64 / (median / 1000.0)
    )?;
    client.close().await?;
    Ok(())
}
