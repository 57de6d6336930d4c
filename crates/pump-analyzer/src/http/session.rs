//! Seed 004's session endpoints (SPEC §5) plus the optional login. Bodies and errors use the
//! seed's shape: `{"status": "success", …}` / `{"status": "error", "code", "message"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::http::session_layer::{CurrentSession, Refusal, refusal};
use crate::security::client_ip::{ClientIp, ForwardedHttps};
use crate::security::headers::write_rate_limit;
use crate::session::{SessionInfo, csrf_matches};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(csrf_token))
        .routes(routes!(extend))
        .routes(routes!(clear))
        .routes(routes!(validate_csrf))
        .routes(routes!(login))
        .routes(routes!(logout))
        // The login page is HTML, not part of the JSON API.
        .route("/login", get(login_page))
}

/// Seed 004's `"status": "success"`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Success {
    Success,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SessionInfo)]
struct SessionAnswer {
    status: Success,
    session: SessionInfo,
}

#[derive(Serialize, ToSchema)]
struct CsrfToken<'a> {
    status: Success,
    csrf_token: &'a str,
}

#[derive(Serialize, ToSchema)]
struct SessionExtended {
    status: Success,
    message: &'static str,
    session: SessionInfo,
}

#[derive(Serialize, ToSchema)]
struct SessionMessage {
    status: Success,
    message: &'static str,
}

/// The body of `POST /api/session/validate-csrf`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; the handler reads it to name each problem exactly")]
struct CsrfCheck {
    csrf_token: String,
}

#[derive(Serialize, ToSchema)]
struct CsrfValid {
    status: Success,
    valid: bool,
}

/// The body of `POST /api/session/login`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; `read_password` reads it")]
struct Login {
    password: String,
}

/// A login or logout: the session was replaced by a new one, with a new CSRF token.
#[derive(Serialize, ToSchema)]
struct LoggedIn<'a> {
    status: Success,
    message: &'static str,
    csrf_token: &'a str,
    session: SessionInfo,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn https(request: &Request) -> bool {
    request.extensions().get::<ForwardedHttps>().is_some_and(|h| h.0)
}

/// Handlers below run behind the session layer, which guarantees a live session on
/// `/api/session/*`; this is the fallback should that ever not hold.
fn missing() -> Response {
    refusal(StatusCode::UNAUTHORIZED, "SESSION_EXPIRED", "No active session")
}

#[utoipa::path(get, path = "/api/session/info", summary = "Session status (not counted as activity)",
    responses((status = 200, body = SessionAnswer), (status = 401, description = "The session has expired", body = Refusal)))]
async fn info(State(state): State<AppState>, session: Option<Extension<CurrentSession>>) -> Response {
    let Some(Extension(CurrentSession(record))) = session else { return missing() };
    Json(SessionAnswer { status: Success::Success, session: state.sessions.info(&record, now()) }).into_response()
}

#[utoipa::path(get, path = "/api/session/csrf-token", summary = "The session's CSRF token",
    responses((status = 200, body = CsrfToken), (status = 401, description = "The session has expired", body = Refusal)))]
async fn csrf_token(session: Option<Extension<CurrentSession>>) -> Response {
    let Some(Extension(CurrentSession(record))) = session else { return missing() };
    Json(CsrfToken { status: Success::Success, csrf_token: &record.csrf_token }).into_response()
}

#[utoipa::path(post, path = "/api/session/extend", summary = "Reset the idle timer",
    responses((status = 200, body = SessionExtended), (status = 401, description = "The session has expired", body = Refusal),
              (status = 403, description = "The CSRF token is missing or wrong", body = Refusal)))]
async fn extend(State(state): State<AppState>, session: Option<Extension<CurrentSession>>) -> Response {
    let Some(Extension(CurrentSession(record))) = session else { return missing() };
    // The layer recorded this write as activity already; answer with the fresh state.
    let record = match state.store.session(record.secret_hash.clone()).await {
        Ok(Some(r)) => Arc::new(r),
        Ok(None) => return missing(),
        Err(e) => return super::error::AppError::from(e).into_response(),
    };
    Json(SessionExtended {
        status: Success::Success,
        message: "Session extended",
        session: state.sessions.info(&record, now()),
    })
    .into_response()
}

#[utoipa::path(post, path = "/api/session/clear", summary = "End the session",
    responses((status = 200, body = SessionMessage), (status = 401, description = "The session has expired", body = Refusal),
              (status = 403, description = "The CSRF token is missing or wrong", body = Refusal)))]
async fn clear(State(state): State<AppState>, request: Request) -> Response {
    let over_https = https(&request);
    let Some(CurrentSession(record)) = request.extensions().get::<CurrentSession>().cloned() else { return missing() };
    if let Err(e) = state.store.delete_session(record.secret_hash.clone()).await {
        return super::error::AppError::from(e).into_response();
    }
    let mut response = Json(SessionMessage { status: Success::Success, message: "Session cleared" }).into_response();
    response.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie(over_https));
    response
}

fn bad_request(message: &str) -> Response {
    refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// The JSON object of a session-route body, or the 400 that explains what is wrong with it.
fn json_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, &'static str> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("Request body is required: send a JSON object");
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("Request body must be a JSON object"),
        Err(_) => Err("Request body is not valid JSON"),
    }
}

#[utoipa::path(post, path = "/api/session/validate-csrf", summary = "Check a CSRF token (changes nothing)",
    request_body = CsrfCheck,
    responses((status = 200, body = CsrfValid), (status = 400, description = "The body or the token cannot be read", body = Refusal),
              (status = 401, description = "The session has expired", body = Refusal),
              (status = 413, description = "The body is over 1 MiB", body = Refusal)))]
async fn validate_csrf(session: Option<Extension<CurrentSession>>, request: Request) -> Response {
    let Some(Extension(CurrentSession(record))) = session else { return missing() };
    let body = match crate::http::extract::read_limited(request.into_body()).await {
        Ok(body) => body,
        Err(_) => return refusal(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "Request body exceeds 1 MiB"),
    };
    let fields = match json_object(&body) {
        Ok(fields) => fields,
        Err(message) => return bad_request(message),
    };
    let token = match fields.get("csrf_token") {
        Some(Value::String(t)) if !t.is_empty() => t,
        Some(Value::String(_)) | None | Some(Value::Null) => return bad_request("CSRF token required"),
        Some(_) => return bad_request("CSRF token must be a string"),
    };
    if !token.is_ascii() {
        return bad_request("CSRF token must be ASCII (hex characters)");
    }
    Json(CsrfValid { status: Success::Success, valid: csrf_matches(&record.csrf_token, token) }).into_response()
}

/// Replaces the request's session with a fresh one (new cookie, id and CSRF token): used on login
/// and logout so a session id seen before either is worthless after.
async fn rotate(
    state: &AppState,
    old: &CurrentSession,
    authenticated: bool,
    over_https: bool,
) -> Result<Response, Response> {
    let (cookie, mut record) = state.sessions.mint(now());
    record.authenticated = authenticated;
    let store = |e| super::error::AppError::from(e).into_response();
    state.store.delete_session(old.0.secret_hash.clone()).await.map_err(store)?;
    state.store.create_session(record.clone()).await.map_err(store)?;
    let mut response = Json(LoggedIn {
        status: Success::Success,
        message: if authenticated { "Logged in" } else { "Logged out" },
        csrf_token: &record.csrf_token,
        session: state.sessions.info(&record, now()),
    })
    .into_response();
    response.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&cookie, over_https));
    Ok(response)
}

#[utoipa::path(post, path = "/api/session/login", summary = "Log in with DASHBOARD_PASSWORD (the session id rotates)",
    request_body = Login,
    responses((status = 200, body = LoggedIn), (status = 400, description = "The body cannot be read", body = Refusal),
              (status = 401, description = "Wrong password, or the session has expired", body = Refusal),
              (status = 403, description = "The CSRF token is missing or wrong", body = Refusal),
              (status = 404, description = "No DASHBOARD_PASSWORD is set", body = Refusal),
              (status = 429, description = "Too many failed attempts from this address", body = Refusal),
              (status = 503, description = "Attempts cannot be counted (Redis is unreachable)", body = Refusal)))]
async fn login(State(state): State<AppState>, request: Request) -> Response {
    let over_https = https(&request);
    let ip = ClientIp::of(&request, state.settings.host);
    let Some(session) = request.extensions().get::<CurrentSession>().cloned() else { return missing() };
    let Some(login) = state.login.clone() else {
        return refusal(
            StatusCode::NOT_FOUND,
            "LOGIN_DISABLED",
            "No DASHBOARD_PASSWORD is set; there is nothing to log in to",
        );
    };
    // The attempt is counted before the password is checked, so that simultaneous guesses cannot
    // all pass the gate before any of them is counted (SPEC §2.4); a success gives it back.
    let Ok(gate) = login.attempts.check(ip).await else { return login_limiter_unavailable() };
    if !gate.allowed {
        crate::security::audit::event(429, "too many login attempts", ip, "/api/session/login");
        let mut response =
            refusal(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many failed login attempts; wait a minute");
        write_rate_limit(response.headers_mut(), &gate, 60);
        return response;
    }
    let password = match read_password(request).await {
        Ok(password) => password,
        Err(response) => {
            // Not a guess at the password: the attempt does not count.
            let _ = login.attempts.refund(ip).await;
            return response;
        }
    };
    if !login.verify(password).await {
        crate::security::audit::event(401, "wrong dashboard password", ip, "/api/session/login");
        let mut response = refusal(StatusCode::UNAUTHORIZED, "LOGIN_FAILED", "Wrong password");
        write_rate_limit(response.headers_mut(), &gate, 60);
        return response;
    }
    if login.attempts.refund(ip).await.is_err() {
        tracing::warn!("could not give back a successful login attempt (Redis unreachable)");
    }
    rotate(&state, &session, true, over_https).await.unwrap_or_else(|r| r)
}

/// The `password` field of a login body, or the 4xx that says what is wrong with the body.
async fn read_password(request: Request) -> Result<String, Response> {
    let body = crate::http::extract::read_limited(request.into_body()).await.map_err(IntoResponse::into_response)?;
    let fields = json_object(&body).map_err(bad_request)?;
    match fields.get("password") {
        Some(Value::String(password)) => Ok(password.clone()),
        _ => Err(bad_request("password is required")),
    }
}

/// Failed logins cannot be counted (Redis unreachable): refuse rather than allow unlimited guesses.
fn login_limiter_unavailable() -> Response {
    refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "Login attempts cannot be counted right now (Redis is unreachable); retry shortly",
    )
}

#[utoipa::path(post, path = "/api/session/logout", summary = "Log out (the session id rotates)",
    responses((status = 200, body = LoggedIn), (status = 401, description = "The session has expired", body = Refusal),
              (status = 403, description = "The CSRF token is missing or wrong", body = Refusal)))]
async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let over_https = https(&request);
    let Some(session) = request.extensions().get::<CurrentSession>().cloned() else { return missing() };
    rotate(&state, &session, false, over_https).await.unwrap_or_else(|r| r)
}

async fn login_page(State(state): State<AppState>) -> Response {
    if state.login.is_none() {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    }
    super::pages::page("login.html")
}
