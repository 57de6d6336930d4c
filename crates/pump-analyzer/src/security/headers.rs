//! Response hygiene headers on every response (SPEC §2.7), and the rate-limit headers of SPEC §2.4.

use http::{HeaderMap, HeaderValue, header};

use super::rate_limit::Decision;

/// Adds `nosniff`, a referrer policy and frame denial (to every response, from the edge layer).
pub fn hygiene(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Writes the seed's `X-RateLimit-*` headers, the IETF draft `RateLimit-Policy` / `RateLimit`
/// headers, and on refusal `Retry-After`.
pub fn write_rate_limit(headers: &mut HeaderMap, decision: &Decision, window_secs: u64) {
    let num = |n: u64| HeaderValue::from(n);
    headers.insert("x-ratelimit-limit", num(decision.limit.into()));
    headers.insert("x-ratelimit-remaining", num(decision.remaining.into()));
    headers.insert("x-ratelimit-reset", num(decision.reset_unix));
    let policy = format!("\"ingest\";q={};w={window_secs}", decision.limit);
    let state = format!("\"ingest\";r={};t={}", decision.remaining, decision.reset_in);
    if let Ok(v) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&state) {
        headers.insert("ratelimit", v);
    }
    if !decision.allowed {
        headers.insert(header::RETRY_AFTER, num(decision.retry_after));
    }
}
