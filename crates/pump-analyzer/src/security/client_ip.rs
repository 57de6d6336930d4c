//! Which client a request comes from (SPEC §2.4): the socket peer, or — only when that peer is a
//! trusted proxy — the right-most `X-Forwarded-For` address that is not itself a trusted proxy.
//! Trusting the header blindly would let any client pick its own rate-limit key.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use http::request::Parts;
use ipnet::IpNet;

use crate::config::Settings;

/// The client address as decided by [`resolve`]; put in the request extensions by [`tag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client IP that [`tag`] recorded for `request`, or `fallback` where it did not run.
    pub fn of(request: &Request, fallback: IpAddr) -> IpAddr {
        request.extensions().get::<ClientIp>().map(|c| c.0).unwrap_or(fallback)
    }
}

/// Whether the original request came over HTTPS (directly, or per a trusted proxy's
/// `X-Forwarded-Proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedHttps(pub bool);

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 peers (`::ffff:1.2.3.4` on a dual-stack socket) count as their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key under which `ip` is rate-limited (SPEC §2.4): the whole loopback range (127.0.0.0/8,
/// `::1`) is one client, since any local program can bind any of its addresses, and an IPv6
/// client is its /64, which one subscriber usually holds whole.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        ip if ip.is_loopback() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Decides the client IP from the socket peer and the `X-Forwarded-For` values.
pub fn resolve(peer: IpAddr, forwarded_for: &[&str], proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(proxies, peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|item| parse_hop(item.trim()))
        .map(canonical)
        .collect();
    hops.iter().rev().copied().find(|ip| !trusted(proxies, *ip)).or_else(|| hops.first().copied()).unwrap_or(peer)
}

fn parse_hop(item: &str) -> Option<IpAddr> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = item.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    item.strip_prefix('[').and_then(|r| r.split(']').next()).and_then(|s| s.parse().ok())
}

/// Computes [`ClientIp`] and [`ForwardedHttps`] once per request (from the edge layer) and
/// puts them in its extensions.
pub fn tag(settings: &Settings, request: &mut Request) {
    let extensions = request.extensions();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let proxies = &settings.trusted_proxies;
    let headers = request.headers();
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let ip = resolve(peer, &forwarded, proxies);
    let https = settings.tls_enabled()
        || (trusted(proxies, peer)
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').next().unwrap_or_default().trim().eq_ignore_ascii_case("https")));
    request.extensions_mut().insert(ClientIp(ip));
    request.extensions_mut().insert(ForwardedHttps(https));
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIp>().copied().unwrap_or(ClientIp(IpAddr::from([127, 0, 0, 1]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        assert_eq!(resolve(ip("203.0.113.9"), &["1.2.3.4"], &[]), ip("203.0.113.9"));
        let proxies = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("203.0.113.9"), &["1.2.3.4"], &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn loopback_addresses_are_one_client_and_ipv6_clients_their_64() {
        for local in ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "::ffff:127.0.0.3"] {
            assert_eq!(limit_key(ip(local)), ip("127.0.0.1"), "{local}");
        }
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff:1:2:3")), ip("2001:db8:1:2::"));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("203.0.113.9")), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        // A client that prepends its own fake address cannot choose its key.
        assert_eq!(resolve(ip("127.0.0.1"), &["6.6.6.6, 198.51.100.7, 10.1.1.1"], &proxies), ip("198.51.100.7"));
        assert_eq!(resolve(ip("::ffff:127.0.0.1"), &["198.51.100.7"], &proxies), ip("198.51.100.7"));
        assert_eq!(resolve(ip("127.0.0.1"), &["garbage"], &proxies), ip("127.0.0.1"));
        assert_eq!(resolve(ip("127.0.0.1"), &["[2001:db8::1]:443"], &proxies), ip("2001:db8::1"));
    }
}
