//! Failed logins: slowed down, and locked out after repeated failures, as IoTDB 2.0's
//! `LoginLockManager` does (its keys and defaults: `failed_login_attempts` = 5 failures of one user
//! from one client address, `failed_login_attempts_per_user` = 1000 from anywhere, within a sliding
//! window of `password_lock_time_minutes` = 10; root from the local machine is never locked, so an
//! operator cannot be shut out). Duet adds `failed_login_delay_ms`: every refused login is answered
//! only after that delay.
//!
//! Failures are counted by user *name*, whether or not the user exists, so a lock (status 822)
//! says nothing about which names exist; the number of names tracked is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use duet_catalog::ROOT_USER;

use crate::config::Config;

/// The most user names whose failures are kept; past it, the names whose failures all expired go
/// first, then the one failed longest ago.
const MAX_TRACKED_USERS: usize = 10_000;

/// IoTDB's message for a locked account (status 822, `USER_LOGIN_LOCKED`).
pub const LOCKED_MESSAGE: &str = "Account is blocked due to consecutive failed logins.";

#[derive(Default)]
struct Failures {
    /// Every failure of the name within the window, oldest first.
    all: VecDeque<Instant>,
    /// The same, per client address.
    by_address: HashMap<String, VecDeque<Instant>>,
}

/// The lockout state of the instance's logins (client sessions and pipe handshakes).
pub struct LoginGuard {
    per_address: Option<usize>,
    per_user: Option<usize>,
    window: Duration,
    delay: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginGuard {
    /// The guard `config` describes, with IoTDB's rules for values out of range (logged).
    pub fn new(config: &Config) -> LoginGuard {
        let per_address = usize::try_from(config.failed_login_attempts)
            .ok()
            .filter(|n| *n > 0);
        let per_user = match usize::try_from(config.failed_login_attempts_per_user)
            .ok()
            .filter(|n| *n > 0)
        {
            Some(n) => Some(n),
            // As IoTDB: with the per-address limit on (above 1), the per-user one stays on at 1000.
            None if per_address.is_some_and(|n| n > 1) => Some(1000),
            None => None,
        };
        let minutes = if config.password_lock_time_minutes >= 1 {
            config.password_lock_time_minutes
        } else {
            tracing::warn!(
                configured = config.password_lock_time_minutes,
                "password_lock_time_minutes must be at least 1; using 10"
            );
            10
        };
        let show = |n: Option<usize>| n.map_or_else(|| "disabled".to_string(), |n| n.to_string());
        tracing::info!(
            failed_login_attempts = %show(per_address),
            failed_login_attempts_per_user = %show(per_user),
            password_lock_time_minutes = minutes,
            failed_login_delay_ms = config.failed_login_delay_ms,
            "login lockout configured"
        );
        LoginGuard {
            per_address,
            per_user,
            window: Duration::from_secs(minutes.saturating_mul(60)),
            delay: Duration::from_millis(config.failed_login_delay_ms),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long a refused login waits before it is answered.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Whether `user` may not log in from `peer` now.
    pub fn locked(&self, user: &str, peer: &str) -> bool {
        let address = address_of(peer);
        if exempt(user, &address) {
            return false;
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = failures.get_mut(user) else {
            return false;
        };
        let cutoff = now.checked_sub(self.window);
        expire(&mut entry.all, cutoff);
        if self.per_user.is_some_and(|n| entry.all.len() >= n) {
            return true;
        }
        match entry.by_address.get_mut(&address) {
            Some(times) => {
                expire(times, cutoff);
                self.per_address.is_some_and(|n| times.len() >= n)
            }
            None => false,
        }
    }

    /// Records a refused login of `user` from `peer`, logging when it locks the name.
    pub fn failed(&self, user: &str, peer: &str) {
        let address = address_of(peer);
        if exempt(user, &address) || (self.per_address.is_none() && self.per_user.is_none()) {
            return;
        }
        let now = Instant::now();
        let cutoff = now.checked_sub(self.window);
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failures.contains_key(user) && failures.len() >= MAX_TRACKED_USERS {
            make_room(&mut failures, cutoff);
        }
        let entry = failures.entry(user.to_string()).or_default();
        expire(&mut entry.all, cutoff);
        entry.all.push_back(now);
        let times = entry.by_address.entry(address.clone()).or_default();
        expire(times, cutoff);
        times.push_back(now);
        let minutes = self.window.as_secs() / 60;
        if self.per_address == Some(times.len()) {
            tracing::warn!(
                user,
                address,
                failures = times.len(),
                minutes,
                "login locked for this user from this address after repeated failures"
            );
        }
        if self.per_user == Some(entry.all.len()) {
            tracing::warn!(
                user,
                failures = entry.all.len(),
                minutes,
                "login locked for this user from every address after repeated failures"
            );
        }
    }

    /// Forgets the failures of `user` after a successful login.
    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }
}

/// The address part of `ip:port` (the whole text when it is not one).
fn address_of(peer: &str) -> String {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| peer.to_string())
}

/// Root logging in from this machine is never locked out (IoTDB exempts it from localhost too).
fn exempt(user: &str, address: &str) -> bool {
    user == ROOT_USER && address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn expire(times: &mut VecDeque<Instant>, cutoff: Option<Instant>) {
    if let Some(cutoff) = cutoff {
        while times.front().is_some_and(|t| *t < cutoff) {
            times.pop_front();
        }
    }
}

/// Drops the names whose failures all expired, then, if still full, the one failed longest ago.
fn make_room(failures: &mut HashMap<String, Failures>, cutoff: Option<Instant>) {
    failures.retain(|_, f| {
        expire(&mut f.all, cutoff);
        !f.all.is_empty()
    });
    if failures.len() >= MAX_TRACKED_USERS {
        let oldest = failures
            .iter()
            .min_by_key(|(_, f)| f.all.back().copied())
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            failures.remove(&name);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn guard(per_address: i64, per_user: i64) -> LoginGuard {
        LoginGuard::new(&Config {
            failed_login_attempts: per_address,
            failed_login_attempts_per_user: per_user,
            ..Config::default()
        })
    }

    #[test]
    fn locks_per_address_then_per_user() {
        let g = guard(3, 5);
        for _ in 0..2 {
            g.failed("alice", "10.0.0.1:5000");
        }
        assert!(!g.locked("alice", "10.0.0.1:5001"));
        g.failed("alice", "10.0.0.1:5002");
        assert!(g.locked("alice", "10.0.0.1:5003"));
        assert!(!g.locked("alice", "10.0.0.2:5000"));
        // Unknown names lock the same way.
        for _ in 0..3 {
            g.failed("nobody", "10.0.0.1:1");
        }
        assert!(g.locked("nobody", "10.0.0.1:1"));
        g.failed("alice", "10.0.0.2:1");
        g.failed("alice", "10.0.0.3:1");
        assert!(g.locked("alice", "10.0.0.4:1"), "5 failures from anywhere");
        g.succeeded("alice");
        assert!(!g.locked("alice", "10.0.0.1:1"));
    }

    #[test]
    fn local_root_is_never_locked_and_zero_disables() {
        let g = guard(1, 1);
        g.failed("root", "127.0.0.1:1");
        assert!(!g.locked("root", "127.0.0.1:1"));
        g.failed("root", "10.0.0.1:1");
        assert!(g.locked("root", "10.0.0.1:1"));
        let off = guard(0, 0);
        off.failed("alice", "10.0.0.1:1");
        assert!(!off.locked("alice", "10.0.0.1:1"));
    }
}
