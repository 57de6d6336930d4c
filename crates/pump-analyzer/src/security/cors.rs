//! CORS (SPEC §2.5): origins from `API_CORS_ORIGINS` plus the server's own origin, the headers the
//! dashboard and bots need, rate-limit headers exposed, preflight cached 600 s. Credentials are
//! never allowed: an origin on the list uses the public API like any script, but cannot ride the
//! user's dashboard session or read its CSRF token; the dashboard itself is same-origin and needs
//! no CORS at all.
//! A request from any other origin gets no CORS headers and a `CORS` log line.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::audit;
use super::client_ip::{ClientIp, ForwardedHttps};
use crate::config::Settings;

/// Whether `origin` may use the API: listed in `API_CORS_ORIGINS`, or the origin this very
/// request is addressed to (same-origin pages of the dashboard).
pub fn origin_allowed(origin: &str, headers: &HeaderMap, https: bool, settings: &Settings) -> bool {
    let origin = origin.trim_end_matches('/');
    if settings.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let scheme = if https { "https" } else { "http" };
    let own = format!("{scheme}://{host}");
    own.eq_ignore_ascii_case(origin)
}

/// The tower-http CORS layer configured from the settings.
pub fn layer(settings: Arc<Settings>) -> CorsLayer {
    let predicate = move |origin: &HeaderValue, parts: &http::request::Parts| {
        let https = parts.extensions.get::<ForwardedHttps>().is_some_and(|f| f.0);
        origin.to_str().is_ok_and(|o| origin_allowed(o, &parts.headers, https, &settings))
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(predicate))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("x-ingest-token"),
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Logs a `CORS` security event for requests whose `Origin` is not allowed. The CORS layer then
/// answers them without CORS headers, so the browser blocks the response.
pub fn audit(settings: &Settings, request: &Request) {
    if let Some(origin) = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let https = request.extensions().get::<ForwardedHttps>().is_some_and(|f| f.0);
        if !origin_allowed(origin, request.headers(), https, settings) {
            let ip = ClientIp::of(request, settings.host);
            let preflight = if request.method() == Method::OPTIONS { " (preflight)" } else { "" };
            audit::event(403, &format!("CORS origin not allowed{preflight}: {origin}"), ip, request.uri().path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn listed_and_same_origin_requests_are_allowed() {
        let vars = [("API_CORS_ORIGINS".to_string(), "http://localhost:5173".to_string())].into_iter().collect();
        let settings = Settings::from_vars(&vars, &Overrides::default()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8000"));
        assert!(origin_allowed("http://localhost:5173", &headers, false, &settings));
        assert!(origin_allowed("http://127.0.0.1:8000", &headers, false, &settings));
        assert!(!origin_allowed("https://127.0.0.1:8000", &headers, false, &settings));
        assert!(!origin_allowed("http://evil.example", &headers, false, &settings));
    }
}
