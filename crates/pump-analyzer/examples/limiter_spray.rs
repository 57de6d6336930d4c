//! The rate limiter under an address spray: 1,000,000 distinct client IPs (what a client behind a
//! trusted proxy could fake in `X-Forwarded-For` if the cap did not exist), then the keys held and
//! the process's resident memory growth.
//!
//! `cargo run --release --example limiter_spray`

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use pump_analyzer::security::rate_limit::{DEFAULT_MAX_KEYS, RateLimiter};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let before = rss_kib();
    let limiter = RateLimiter::new(60, Duration::from_secs(60), DEFAULT_MAX_KEYS);
    let started = Instant::now();
    for n in 0..1_000_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        limiter.check(ip);
    }
    let elapsed = started.elapsed();
    println!(
        "1,000,000 distinct addresses in {:.2} s: {} keys held (cap {}), RSS +{:.1} MiB",
        elapsed.as_secs_f64(),
        limiter.len(),
        DEFAULT_MAX_KEYS,
        (rss_kib().saturating_sub(before)) as f64 / 1024.0
    );
}
