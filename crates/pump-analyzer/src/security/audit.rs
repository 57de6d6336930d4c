//! Security-event log lines (SPEC §2.6): one line per event with the status code and reason, the
//! client IP and the path, so `grep -E "(401|429|CORS)"` on the log finds them.

use std::net::IpAddr;

/// Logs one security event at WARN under the `security` target.
pub fn event(status: u16, reason: &str, ip: IpAddr, path: &str) {
    tracing::warn!(target: "security", "{status} {reason} ip={ip} path={path}");
}
