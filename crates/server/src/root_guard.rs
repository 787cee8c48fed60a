//! The default-password policy (issue 13): while `root` still has the default password, a root
//! login (session or pipe handshake) from a non-loopback client address is refused, so a server
//! reachable from the network is never administrable with `root`/`root`. Logins from this machine
//! still work, to change the password. `allow_remote_default_root_login = true` lifts the refusal;
//! start-up warns on the terminal and `/api/status` lists the condition either way.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use duet_proto::status::{self, StatusCode};
use duet_proto::t;

use crate::instance::Instance;

/// Tests only: with this variable set to `1`, every client address counts as remote (a test cannot
/// connect from a non-loopback address on a machine without a network).
pub const TREAT_PEERS_AS_REMOTE_ENV: &str = "DUET_TEST_PEERS_ARE_REMOTE";

fn peers_forced_remote() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var(TREAT_PEERS_AS_REMOTE_ENV).as_deref() == Ok("1"))
}

/// Whether a client address (`ip:port`) is another machine's.
pub fn peer_is_remote(peer: &str) -> bool {
    if peers_forced_remote() {
        return true;
    }
    match peer.parse::<SocketAddr>().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => !ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            !(ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        // Not an address (a Unix socket, say): local.
        Err(_) => false,
    }
}

/// The message of a refused remote root login.
pub const REFUSAL: &str = "root still has the default password: root logins from other machines are refused until it is changed (from this machine: ALTER USER root SET PASSWORD '<new password>'), or allow_remote_default_root_login = true";

/// Checks an authenticated login of `user` from `peer` against the policy.
pub fn check_login(instance: &Instance, user: &str, peer: &str) -> Result<(), t::TSStatus> {
    if user != duet_catalog::ROOT_USER
        || instance.config.allow_remote_default_root_login
        || !peer_is_remote(peer)
    {
        return Ok(());
    }
    match instance
        .catalog
        .user_has_default_password(duet_catalog::ROOT_USER)
    {
        Ok(false) => Ok(()),
        // A catalog that cannot say refuses too: the check fails closed.
        Ok(true) | Err(_) => Err(status::failure(StatusCode::NoPermission, REFUSAL)),
    }
}

/// The warning status pages show while root has the default password on a server others can
/// reach.
pub fn default_password_warning(instance: &Instance) -> Option<String> {
    if instance.config.is_loopback_only() {
        return None;
    }
    match instance
        .catalog
        .user_has_default_password(duet_catalog::ROOT_USER)
    {
        Ok(true) => Some(format!(
            "root has the default password and the server listens on {}: {}",
            instance.config.rpc_address,
            if instance.config.allow_remote_default_root_login {
                "remote root logins are ALLOWED (allow_remote_default_root_login); change it with ALTER USER root SET PASSWORD"
            } else {
                "remote root logins are refused until it is changed with ALTER USER root SET PASSWORD"
            }
        )),
        _ => None,
    }
}
