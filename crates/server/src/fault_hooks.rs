//! Fault injection for soak tests: with `DUET_FAULT_HOOKS=1` in its environment, duetd lets a
//! signal make its own change-log fsyncs fail, a fault no test can cause from outside the process.
//!
//! - `SIGUSR1`: the next fsync fails (its records read back as zeros); the log writer writes them
//!   again and goes on, so nothing is refused.
//! - `SIGUSR2`: the next two fsyncs fail, so the rewrite fails too and the log is poisoned: writes
//!   are refused until a restart recovers it.
//!
//! Without the variable nothing is installed and the signals keep their default action.

use duet_storage::Storage;
use tokio::signal::unix::{signal, SignalKind};
use tracing::warn;

/// The environment variable that enables the hooks.
pub const ENV: &str = "DUET_FAULT_HOOKS";

/// Installs the hooks if [`ENV`] is `1`; they live as long as the runtime.
pub fn install(storage: &Storage) {
    if std::env::var(ENV).as_deref() != Ok("1") {
        return;
    }
    let (mut usr1, mut usr2) = match (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) {
        (Ok(usr1), Ok(usr2)) => (usr1, usr2),
        (Err(e), _) | (_, Err(e)) => {
            warn!("{ENV}=1 but the fault signal handlers cannot be installed: {e}");
            return;
        }
    };
    warn!("{ENV}=1: fault hooks enabled (SIGUSR1 fails the next log fsync, SIGUSR2 the next two); never set this in production");
    let storage = storage.clone();
    tokio::spawn(async move {
        loop {
            let failing = tokio::select! {
                Some(()) = usr1.recv() => 1,
                Some(()) = usr2.recv() => 2,
                else => return,
            };
            warn!(failing, "fault hook: the next log fsyncs fail");
            storage.fail_next_syncs(failing);
        }
    });
}
