//! The soak's series and the values written to them. Every value names the operation that wrote it
//! (`l = op × 10⁷ + time mod 10⁷`, `d = l + 0.5`, `x = "op@time"`), so the checker can tell which write
//! a stored point comes from, and a stale or resurrected value cannot pass for a current one.

use duet_proto::types::DataType;

use crate::compare::Value;
use crate::history::Side;

/// The first timestamp written (ms, November 2023): realistic times, several days of partitions away
/// from the epoch.
pub const BASE_TIME: i64 = 1_700_000_000_000;

const OP_FACTOR: i64 = 10_000_000;

/// The measurements of every device, with their types (created up front on both sides, so string
/// records and SQL literals convert instead of inferring).
pub const MEASUREMENTS: [(&str, DataType); 3] = [
    ("l", DataType::Int64),
    ("d", DataType::Double),
    ("x", DataType::Text),
];

/// Who writes a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Only this writer of this side (its own rows, overwrites and deletes).
    Writer(Side, usize),
    /// Every writer of both sides, at overlapping times: conflicts resolved by version.
    Shared,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub path: String,
    pub owner: Owner,
}

/// All devices of one soak.
#[derive(Debug, Clone)]
pub struct Schema {
    pub devices: Vec<Device>,
}

/// Devices each writer owns.
pub const OWN_DEVICES: usize = 2;
/// Devices every writer shares.
pub const SHARED_DEVICES: usize = 2;

impl Schema {
    pub fn new(writers_per_side: usize) -> Schema {
        let mut devices = Vec::new();
        for side in Side::BOTH {
            for writer in 0..writers_per_side {
                for k in 0..OWN_DEVICES {
                    devices.push(Device {
                        path: format!("root.soak.{}.w{writer}d{k}", side.lower()),
                        owner: Owner::Writer(side, writer),
                    });
                }
            }
        }
        for k in 0..SHARED_DEVICES {
            devices.push(Device {
                path: format!("root.soak.s.d{k}"),
                owner: Owner::Shared,
            });
        }
        Schema { devices }
    }

    /// The devices a writer may write: its own, then the shared ones.
    pub fn devices_of(&self, side: Side, writer: usize) -> (Vec<usize>, Vec<usize>) {
        let own = self
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.owner == Owner::Writer(side, writer))
            .map(|(i, _)| i)
            .collect();
        let shared = self
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.owner == Owner::Shared)
            .map(|(i, _)| i)
            .collect();
        (own, shared)
    }

    pub fn series(&self, device: usize, measurement: usize) -> String {
        format!(
            "{}.{}",
            self.devices[device].path, MEASUREMENTS[measurement].0
        )
    }

    /// Every series as (device, measurement, path), in path order.
    pub fn all_series(&self) -> Vec<(usize, usize, String)> {
        let mut out: Vec<(usize, usize, String)> = (0..self.devices.len())
            .flat_map(|d| (0..MEASUREMENTS.len()).map(move |m| (d, m)))
            .map(|(d, m)| (d, m, self.series(d, m)))
            .collect();
        out.sort_by(|x, y| x.2.cmp(&y.2));
        out
    }
}

/// The INT64 value op `op` writes at `time`.
pub fn long_value(op: u64, time: i64) -> i64 {
    i64::try_from(op)
        .unwrap_or(i64::MAX / OP_FACTOR)
        .saturating_mul(OP_FACTOR)
        .saturating_add((time - BASE_TIME).rem_euclid(OP_FACTOR))
}

/// The DOUBLE value (exact: below 2⁵³ for any realistic op count).
pub fn double_value(op: u64, time: i64) -> f64 {
    long_value(op, time) as f64 + 0.5
}

pub fn text_value(op: u64, time: i64) -> String {
    format!("{op}@{time}")
}

/// The value op `op` writes at `time` into measurement `measurement`.
pub fn value(op: u64, time: i64, measurement: usize) -> Value {
    match measurement {
        0 => Value::Int64(long_value(op, time)),
        1 => Value::Double(double_value(op, time)),
        _ => Value::Binary(DataType::Text, text_value(op, time).into_bytes()),
    }
}

/// The value as a string record or SQL literal spells it.
pub fn value_text(op: u64, time: i64, measurement: usize) -> String {
    match measurement {
        0 => long_value(op, time).to_string(),
        1 => double_value(op, time).to_string(),
        _ => text_value(op, time),
    }
}

/// The operation that wrote a stored value, when it is one of ours.
pub fn writer_of(value: &Value) -> Option<u64> {
    match value {
        Value::Int64(v) => u64::try_from(v / OP_FACTOR).ok(),
        Value::Double(v) => u64::try_from((*v as i64) / OP_FACTOR).ok(),
        Value::Binary(_, bytes) => std::str::from_utf8(bytes)
            .ok()?
            .split_once('@')?
            .0
            .parse()
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn values_name_their_operation_and_differ_between_operations() {
        let t = BASE_TIME + 12_345;
        for m in 0..MEASUREMENTS.len() {
            assert_eq!(writer_of(&value(4321, t, m)), Some(4321));
            assert_ne!(value(4321, t, m), value(4322, t, m));
            assert_ne!(value(4321, t, m), value(4321, t + 1, m));
        }
        assert_eq!(
            value_text(7, t, 1).parse::<f64>().unwrap(),
            double_value(7, t)
        );
        let schema = Schema::new(2);
        assert_eq!(schema.devices.len(), 2 * 2 * OWN_DEVICES + SHARED_DEVICES);
        let (own, shared) = schema.devices_of(Side::B, 1);
        assert_eq!(own.len(), OWN_DEVICES);
        assert_eq!(shared.len(), SHARED_DEVICES);
        assert!(schema.devices[own[0]].path.starts_with("root.soak.b.w1"));
    }
}
