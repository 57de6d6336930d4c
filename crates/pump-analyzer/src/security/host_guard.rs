//! DNS-rebinding defence (SPEC §2.3): a server bound to loopback answers only requests whose
//! `Host` names this machine (`localhost`, `127.0.0.1`, `[::1]`, any port) or an `ALLOWED_HOSTS`
//! entry. A rebinding page reaches 127.0.0.1 under its own host name, so it is refused here.

use axum::extract::Request;

use super::audit;
use super::client_ip::ClientIp;
use crate::config::Settings;

/// The host name of a `Host` header value without its port, lower-cased.
pub fn host_name(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    if value.starts_with('[') {
        return value.split(']').next().map(|h| format!("{h}]")).unwrap_or(value);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => value,
    }
}

/// Whether a `Host` header value may be served by a loopback-bound server.
pub fn allowed(value: &str, extra: &[String]) -> bool {
    let name = host_name(value);
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]") || extra.iter().any(|h| host_name(h) == name)
}

/// The `Host` this server does not serve (DNS rebinding, SPEC §2.3), logged as a security
/// event, or `None` to let the request through. The HTTP layer answers 421.
pub fn refused_host(settings: &Settings, request: &Request) -> Option<String> {
    let must_check = settings.is_loopback() || !settings.allowed_hosts.is_empty();
    if !must_check {
        return None;
    }
    let host = request.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()).map(str::to_string);
    let host = host.or_else(|| request.uri().authority().map(|a| a.to_string()));
    let host = host.filter(|h| !allowed(h, &settings.allowed_hosts))?;
    let ip = ClientIp::of(request, settings.host);
    audit::event(421, &format!("host not allowed: {host}"), ip, request.uri().path());
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_any_port_are_allowed() {
        for host in ["localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:8000", "[::1]", "LOCALHOST:80"] {
            assert!(allowed(host, &[]), "{host}");
        }
    }

    #[test]
    fn other_names_are_refused_unless_listed() {
        for host in ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "192.168.1.5:8000", "[::2]:80"] {
            assert!(!allowed(host, &[]), "{host}");
        }
        assert!(allowed("pump.lan:8000", &["pump.lan".into()]));
    }
}
