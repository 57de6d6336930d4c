//! The dashboard (SPEC §7): HTML pages and static files embedded in the binary at build time.
//!
//! Pages share paths with the JSON API (`/runs`, `/runs/{id}`, `/verify`): a browser navigating
//! (`Accept: text/html`) gets the page, which then calls the same path for JSON.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use rust_embed::RustEmbed;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::query::PathId;
use crate::http::session_layer::is_page;

#[derive(RustEmbed)]
#[folder = "assets/static/"]
struct Static;

#[derive(RustEmbed)]
#[folder = "assets/pages/"]
struct Pages;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Files and pages are not part of the JSON API.
        .route("/static/{*path}", get(static_file))
        .route("/", get(|| async { page("index.html") }))
        .routes(routes!(config))
}

/// What the dashboard needs to explain the setup (never the token itself).
#[derive(Serialize, ToSchema)]
struct Config {
    /// Always `success`.
    status: &'static str,
    /// Where Antebot posts bets.
    ingest_path: &'static str,
    /// An INGEST_TOKEN is set: the bot must send it as X-Ingest-Token.
    token_required: bool,
    /// Ingest requests per minute per client (0: no limit).
    rate_limit_per_minute: u32,
    /// The tier list, one source for every page that colours or counts by tier.
    tiers: [f64; 5],
    password_required: bool,
    session_timeout_seconds: u64,
    engine_version: &'static str,
    version: &'static str,
}

#[utoipa::path(get, path = "/api/config", summary = "What the dashboard needs to explain the setup",
    responses((status = 200, body = Config)))]
async fn config(axum::extract::State(state): axum::extract::State<AppState>) -> axum::Json<Config> {
    axum::Json(Config {
        status: "success",
        ingest_path: "/live/ingest",
        token_required: state.tokens.required(),
        rate_limit_per_minute: state.settings.ingest_rate_limit,
        tiers: super::streams::DEFAULT_TIERS,
        password_required: state.login.is_some(),
        session_timeout_seconds: state.settings.session_timeout,
        engine_version: pump_engine::ENGINE_VERSION,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Pages only load scripts and styles from this origin; nothing may frame them.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Dashboard pages: the fragment inside `<main>`, its title and its script. They share
/// `layout.html` (head, navigation); the login page stands alone.
const PAGES: &[(&str, &str, &str)] = &[
    ("index.html", "Live streams", "streams.js"),
    ("stream.html", "Stream", "stream.js"),
    ("runs.html", "Runs", "runs.js"),
    ("run_new.html", "New run", "run_new.js"),
    ("run.html", "Run", "run.js"),
    ("verify.html", "Verify", "verify.js"),
    ("simulate.html", "Simulate", "simulate.js"),
    ("simulation.html", "Simulation", "simulation.js"),
];

fn render(name: &str) -> Option<String> {
    let text = |file: &str| Pages::get(file).map(|f| String::from_utf8_lossy(&f.data).into_owned());
    match PAGES.iter().find(|(file, _, _)| *file == name) {
        Some((file, title, script)) => Some(
            text("layout.html")?
                .replace("{{title}}", title)
                .replace("{{script}}", script)
                .replace("{{body}}", &text(file)?),
        ),
        None => text(name),
    }
}

pub fn page(name: &str) -> Response {
    match render(name) {
        Some(html) => {
            let mut response = Response::new(Body::from(html));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => (StatusCode::NOT_FOUND, "page not found").into_response(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

async fn static_file(PathId(path): PathId) -> Response {
    match Static::get(&path) {
        Some(file) => {
            let mut response = Response::new(Body::from(file.data.into_owned()));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..8]));
            if let Ok(value) = HeaderValue::from_str(&etag) {
                headers.insert(header::ETAG, value);
            }
            response
        }
        None => super::error::AppError::NotFound(format!("No static file {path}")).into_response(),
    }
}

/// The page a browser navigation to `path` shows, if any.
fn page_for(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match parts.as_slice() {
        [] | [""] => Some("index.html"),
        ["streams", _] => Some("stream.html"),
        ["runs"] => Some("runs.html"),
        ["runs", "new"] => Some("run_new.html"),
        ["runs", _] => Some("run.html"),
        ["verify"] => Some("verify.html"),
        ["simulate"] => Some("simulate.html"),
        ["simulations", _] => Some("simulation.html"),
        _ => None,
    }
}

/// Serves pages to browser navigations; everything else goes on to the API.
pub async fn layer(request: Request, next: Next) -> Response {
    if is_page(&request)
        && let Some(name) = page_for(request.uri().path())
    {
        return page(name);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_script_is_embedded() {
        for name in [
            "index.html",
            "stream.html",
            "runs.html",
            "run_new.html",
            "run.html",
            "verify.html",
            "simulate.html",
            "simulation.html",
            "login.html",
        ] {
            assert!(Pages::get(name).is_some(), "{name}");
        }
        for name in ["js/session-manager.js", "js/app.js", "app.css"] {
            assert!(Static::get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn navigations_map_to_pages() {
        assert_eq!(page_for("/"), Some("index.html"));
        assert_eq!(page_for("/streams/abc"), Some("stream.html"));
        assert_eq!(page_for("/runs/new"), Some("run_new.html"));
        assert_eq!(page_for("/runs/abc"), Some("run.html"));
        assert_eq!(page_for("/runs/abc/hits"), None);
        assert_eq!(page_for("/live/streams"), None);
        assert_eq!(page_for("/simulate"), Some("simulate.html"));
        assert_eq!(page_for("/simulations/abc"), Some("simulation.html"));
    }
}
