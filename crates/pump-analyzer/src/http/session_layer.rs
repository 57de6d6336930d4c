//! The session and CSRF layer. It wraps the whole router, so every route — including ones added
//! later — gets the protection by default; only the paths in [`exempt`] opt out.
//!
//! For each request:
//! 1. Exempt machine paths (`/live/ingest`, `/healthz`, `/static/…`) pass untouched.
//! 2. The session cookie is verified (MAC) and looked up; an expired session is deleted.
//! 3. Writes (POST/PUT/PATCH/DELETE) made with a session cookie need that session alive (401
//!    `SESSION_EXPIRED`) and its CSRF token from the `X-CSRF-Token` header, else the form field or
//!    JSON field `csrf_token` (403 `CSRF_INVALID`). A browser write without a session (it carries
//!    `Origin` / `Sec-Fetch-Site`), and any cookie-less write to `/api/*`, is 401
//!    `SESSION_REQUIRED`. Cookie-less machine clients (no `Origin`: scripts, bots, curl) are served
//!    — unless `DASHBOARD_PASSWORD` is set: then every write needs a logged-in session, and the
//!    ingest token authorises `/live/ingest` alone.
//!    `POST /api/session/validate-csrf` is the checker and is exempt from the check.
//! 4. `/api/*` and dashboard pages create a session when there is none; on `/api/*` a dead
//!    session is a 401 `SESSION_EXPIRED` (the cookie is cleared so the next page load starts
//!    fresh).
//! 5. With `DASHBOARD_PASSWORD` set, everything but the login page, the session endpoints and the
//!    exempt paths needs a logged-in session.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::Value;

use crate::http::extract::read_limited;
use crate::http::{AppState, pages};
use crate::security::audit;
use crate::security::client_ip::{ClientIp, ForwardedHttps};
use crate::session::{Sessions, cookie_value, csrf_matches};
use crate::store::model::SessionRecord;

/// The live session of a request, for handlers.
#[derive(Clone, Debug)]
pub struct CurrentSession(pub Arc<SessionRecord>);

/// Paths that never use a browser session.
pub fn exempt(path: &str) -> bool {
    path == "/live/ingest"
        || path == "/healthz"
        || path == "/metrics"
        || path == "/openapi.json"
        || path.starts_with("/static/")
        || path == "/favicon.ico"
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// A browser asking for a dashboard page.
pub fn is_page(request: &Request) -> bool {
    let path = request.uri().path();
    request.method() == Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/live/")
        && !path.ends_with(".csv")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// Seed 004's error shape, for session and CSRF refusals.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = SessionError)]
pub struct Refusal<'a> {
    /// Always `error`.
    #[schema(value_type = String, pattern = "^error$")]
    pub status: &'static str,
    /// `SESSION_EXPIRED`, `SESSION_REQUIRED`, `LOGIN_REQUIRED`, `CSRF_INVALID`, …
    pub code: &'a str,
    pub message: &'a str,
}

pub fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(Refusal { status: "error", code, message })).into_response()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

enum Lookup {
    Missing,
    Dead,
    Live(SessionRecord),
}

async fn lookup(state: &AppState, sessions: &Sessions, cookie: Option<String>) -> Result<Lookup, Response> {
    let Some(value) = cookie else { return Ok(Lookup::Missing) };
    let Some(hash) = sessions.verify_cookie(&value) else { return Ok(Lookup::Dead) };
    match state.store.session(hash.clone()).await {
        Ok(Some(record)) if sessions.timing(&record, now()).is_active => {
            sessions.unclaimed.claimed(&hash);
            Ok(Lookup::Live(record))
        }
        Ok(Some(_)) => {
            let _ = state.store.delete_session(hash).await;
            Ok(Lookup::Dead)
        }
        Ok(None) => Ok(Lookup::Dead),
        Err(e) => Err(crate::http::error::AppError::from(e).into_response()),
    }
}

/// The CSRF token a write presents: header, else form field, else JSON field. Reads (and puts
/// back) the body only when the header is absent.
async fn presented_token(request: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(v) = request.headers().get("x-csrf-token") {
        return Ok((v.to_str().ok().map(|s| s.trim().to_string()), request));
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_limited(body).await {
        Ok(bytes) => bytes,
        Err(e) => return Err(e.into_response()),
    };
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let token = if form {
        url_form_field(&bytes, "csrf_token")
    } else {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("csrf_token").and_then(Value::as_str).map(str::to_string))
    };
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The first value of `name` in a form-encoded body.
fn url_form_field(bytes: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(bytes).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if exempt(&path) {
        return pages::layer(request, next).await;
    }
    let sessions = state.sessions.clone();
    let https = request.extensions().get::<ForwardedHttps>().is_some_and(|h| h.0);
    let ip = ClientIp::of(&request, std::net::Ipv4Addr::UNSPECIFIED.into());
    let write = is_write(request.method());
    let api = path.starts_with("/api/");
    let checker = path == "/api/session/validate-csrf";
    let page = is_page(&request);

    let cookie = cookie_value(request.headers());
    let found = match lookup(&state, &sessions, cookie).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut request = request;
    let mut fresh_cookie: Option<String> = None;

    let record = match found {
        Lookup::Live(record) => Some(record),
        Lookup::Dead if write || api => {
            audit::event(401, "session expired", ip, &path);
            let mut response = refusal(
                StatusCode::UNAUTHORIZED,
                "SESSION_EXPIRED",
                "Your session has expired; reload the page to start a new one",
            );
            response.headers_mut().append(header::SET_COOKIE, sessions.clear_cookie(https));
            return response;
        }
        Lookup::Missing if write && !checker => {
            let headers = request.headers();
            // Browsers mark every POST/PUT/PATCH/DELETE with Origin (and Sec-Fetch-Site); scripts,
            // bots and the CLI send neither.
            let from_browser = headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site");
            if !from_browser && !api {
                // SPEC §5 checks CSRF on writes made with a session cookie. A cookie-less
                // non-browser client cannot be the victim of a forged request (a forged request
                // comes from a browser, which always sends Origin), so it is served as before,
                // unless a dashboard password protects everything. The ingest token does not
                // open this door: it sits in plain text in the bot's script and authorises
                // `/live/ingest` alone (SPEC §5).
                if state.login.is_some() {
                    audit::event(401, "write without login", ip, &path);
                    return refusal(
                        StatusCode::UNAUTHORIZED,
                        "LOGIN_REQUIRED",
                        "DASHBOARD_PASSWORD is set: log in first (POST /api/session/login); \
                         the ingest token authorises /live/ingest only",
                    );
                }
                return pages::layer(request, next).await;
            }
            audit::event(401, "write without a session", ip, &path);
            return refusal(
                StatusCode::UNAUTHORIZED,
                "SESSION_REQUIRED",
                "This request needs a session: load the dashboard (or GET /api/session/csrf-token) first, \
                 then send the X-CSRF-Token header",
            );
        }
        _ if api || page || checker => {
            let (cookie, record) = sessions.mint(now());
            for evicted in sessions.unclaimed.minted(ip, &record.secret_hash) {
                if let Err(e) = state.store.delete_session(evicted).await {
                    return crate::http::error::AppError::from(e).into_response();
                }
            }
            if let Err(e) = state.store.create_session(record.clone()).await {
                return crate::http::error::AppError::from(e).into_response();
            }
            fresh_cookie = Some(cookie);
            Some(record)
        }
        _ => None,
    };

    if let Some(record) = &record {
        if write && !checker {
            let (token, rebuilt) = match presented_token(request).await {
                Ok(pair) => pair,
                Err(response) => return response,
            };
            request = rebuilt;
            if !token.as_deref().is_some_and(|t| csrf_matches(&record.csrf_token, t)) {
                audit::event(403, "CSRF token missing or invalid", ip, &path);
                return refusal(
                    StatusCode::FORBIDDEN,
                    "CSRF_INVALID",
                    "CSRF token missing or invalid: send the session's token in the X-CSRF-Token header",
                );
            }
        }
        // Writes and page loads are activity; polling the session status is not.
        if (write || page) && fresh_cookie.is_none() {
            let _ = state.store.touch_session(record.secret_hash.clone(), now()).await;
        }
        if let Some(password) = &state.login
            && !record.authenticated
            && !password.open_path(&path)
        {
            if page {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
            }
            return refusal(StatusCode::UNAUTHORIZED, "LOGIN_REQUIRED", "Log in to the dashboard first");
        }
        request.extensions_mut().insert(CurrentSession(Arc::new(record.clone())));
    } else if let Some(password) = &state.login
        && !password.open_path(&path)
    {
        return refusal(StatusCode::UNAUTHORIZED, "LOGIN_REQUIRED", "Log in to the dashboard first");
    }

    let mut response = pages::layer(request, next).await;
    if let Some(cookie) = fresh_cookie
        && !response.headers().contains_key(header::SET_COOKIE)
    {
        response.headers_mut().append(header::SET_COOKIE, sessions.set_cookie(&cookie, https));
    }
    response
}
