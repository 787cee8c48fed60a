//! A minimal blocking HTTP/1.1 GET (enough for a test to read a server's `/metrics`, its dashboard
//! and its JSON) and a reader of the Prometheus text format's samples.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// GETs `path` from `addr` (`host:port`) with `Connection: close`; returns the status and body.
pub fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers in the answer: {text}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("no status in {head}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok((status, dechunk(body)?));
    }
    Ok((status, body.to_string()))
}

fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let Some(chunk) = rest.get(..size) else {
            bail!("short chunk");
        };
        out.push_str(chunk);
        body = rest.get(size + 2..).unwrap_or_default();
    }
}

/// The samples of one scrape: `name{labels} value` lines (comments skipped).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_sample)
            .collect();
        Metrics { samples }
    }

    /// The value of the sample `name` whose labels include every one of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
    }

    /// Like [`Metrics::value`], failing with the names present when the sample is missing.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        self.value(name, labels).ok_or_else(|| {
            anyhow!(
                "no sample {name}{labels:?} among {:?}",
                self.samples
                    .iter()
                    .filter(|s| s.name.starts_with(name.split('_').next().unwrap_or(name)))
                    .map(|s| (&s.name, &s.labels))
                    .collect::<Vec<_>>()
            )
        })
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in values.
fn parse_labels(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        labels.push((key.trim_start_matches(',').to_string(), value));
        s = rest.get(end + 1..)?.trim_start_matches(',');
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_labels_are_read() {
        let m = Metrics::parse(
            "# HELP x y\nduet_points_written_total{origin=\"local\"} 12\nup 1\nh_bucket{name=\"a\\\"b\",le=\"+Inf\"} 3\n",
        );
        assert_eq!(
            m.value("duet_points_written_total", &[("origin", "local")]),
            Some(12.0)
        );
        assert_eq!(m.value("up", &[]), Some(1.0));
        assert_eq!(
            m.value("h_bucket", &[("name", "a\"b"), ("le", "+Inf")]),
            Some(3.0)
        );
        assert_eq!(
            m.value("duet_points_written_total", &[("origin", "pipe")]),
            None
        );
    }
}
