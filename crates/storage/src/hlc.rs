//! The hybrid logical clock that versions local writes and follows the versions of received ones.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the HLC value holding the logical counter below the physical milliseconds.
const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock: never goes backwards, stays close to wall-clock time, and after observing a
/// version always issues larger ones (so a local overwrite beats whatever it overwrites).
#[derive(Debug, Default)]
pub(crate) struct Hlc {
    last: u64,
}

impl Hlc {
    /// A fresh value, greater than every value issued or observed so far.
    pub(crate) fn next(&mut self) -> u64 {
        let physical = wall_clock_ms() << LOGICAL_BITS;
        self.last = physical.max(self.last.saturating_add(1));
        self.last
    }

    /// The largest value issued or observed so far.
    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// The HLC receive rule: later values issued here are greater than `hlc`.
    pub(crate) fn observe(&mut self, hlc: u64) {
        self.last = self.last.max(hlc);
    }
}

/// The wall clock as an HLC value (no logical part).
pub(crate) fn wall_clock_hlc() -> u64 {
    wall_clock_ms() << LOGICAL_BITS
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> LOGICAL_BITS))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_strictly_increasing_and_passes_observed_values() {
        let mut hlc = Hlc::default();
        let a = hlc.next();
        let b = hlc.next();
        assert!(b > a);
        let far_future = (wall_clock_ms() + 1_000_000) << LOGICAL_BITS;
        hlc.observe(far_future);
        assert!(hlc.next() > far_future);
        hlc.observe(1);
        assert!(hlc.next() > far_future);
    }
}
