//! `GET /openapi.json`: the OpenAPI 3.1 description of the API, generated.
//!
//! Each handler carries its own `#[utoipa::path]` and answers with types that derive
//! `ToSchema`. Each resource registers its routes through `utoipa_axum`'s `routes!`, which collects
//! that documentation as it adds the route, so a route cannot be added there undocumented, and a
//! field added to an answer's type appears in its schema. What no type says is added here: who may
//! call what, and the schemes that say how. The API tests (`tests/api/openapi.rs`) call every
//! operation and validate each answer against this document.

use axum::Router;
use axum::body::Bytes;
use axum::routing::get;
use http::header;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{self, ComponentsBuilder, RefOr};
use utoipa::{IntoParams, IntoResponses, OpenApi};

use super::AppState;
use super::error::ErrorBody;
use super::session_layer::Refusal;

/// The parts of the document that belong to no single handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pump Analyzer",
        description = "Live Stake Pump bet ingest, streams, provably-fair engine, runs, simulations and browser \
            sessions. Writes from a browser need its session and X-CSRF-Token; cookie-less scripts are served directly \
            unless DASHBOARD_PASSWORD is set, then they log in. /live/ingest uses X-Ingest-Token, which authorises \
            nothing else.",
    ),
    components(schemas(ErrorBody, Refusal))
)]
struct Base;

/// What the session layer answers a write it refuses, on every write route (SPEC §5).
#[derive(IntoResponses)]
pub enum WriteRefused {
    /// A session is required (a dashboard password is set, or the session has expired)
    #[response(status = 401)]
    SessionRequired(Refusal<'static>),
    /// The CSRF token is missing or wrong
    #[response(status = 403)]
    CsrfRefused(Refusal<'static>),
}

/// A JSON body that cannot be read, on every route that takes one.
#[derive(IntoResponses)]
#[response(status = 400, description = "The body is not JSON")]
#[expect(dead_code, reason = "documents an answer of `AppError`; never built")]
pub struct NotJson(ErrorBody<'static>);

/// A query parameter that cannot be read.
#[derive(IntoResponses)]
#[response(status = 400, description = "A parameter cannot be read")]
#[expect(dead_code, reason = "documents an answer of `AppError`; never built")]
pub struct Unreadable(ErrorBody<'static>);

/// The answers of a route whose path names a stream, run, simulation or demo by its UUID.
#[derive(IntoResponses)]
pub enum ById {
    /// Nothing has this id
    #[response(status = 404)]
    NotFound(ErrorBody<'static>),
    /// The id is not a UUID, or a parameter is invalid
    #[response(status = 422)]
    Invalid(ErrorBody<'static>),
}

/// The `{id}` of a path: the UUID of the stream, run, simulation or demo it names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "documents the path parameter `PathId` reads; never built")]
pub struct IdPath {
    /// The UUID of the stream, run, simulation or demo
    id: String,
}

/// The document the resource routers are merged into.
pub fn base() -> openapi::OpenApi {
    Base::openapi()
}

/// Serves the finished document, serialized once.
pub fn router(mut document: openapi::OpenApi) -> Router<AppState> {
    finish(&mut document);
    let json = Bytes::from(document.to_json().expect("the OpenAPI document serializes"));
    Router::new().route(
        "/openapi.json",
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json) }
        }),
    )
}

/// Adds the security schemes, and to every operation that does not name its own, who may call
/// it: reads are open unless a dashboard password is set, then they need a logged-in session;
/// writes need the session and its CSRF token, except from cookie-less scripts while no
/// dashboard password is set (the rule `session_layer` applies by method).
fn finish(document: &mut openapi::OpenApi) {
    let header = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, description)))
    };
    let components = document.components.get_or_insert_with(|| ComponentsBuilder::new().build());
    components.add_security_scheme(
        "ingestToken",
        header("X-Ingest-Token", "INGEST_TOKEN; authorises POST /live/ingest and nothing else"),
    );
    components.add_security_scheme(
        "sessionCookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::session::COOKIE,
            "the browser session (HttpOnly), made by any page or /api/session/*",
        ))),
    );
    components.add_security_scheme(
        "csrfToken",
        header("X-CSRF-Token", "the session's CSRF token, on every write made with the session cookie"),
    );
    let open = SecurityRequirement::default;
    let session = || SecurityRequirement::new("sessionCookie", Vec::<String>::new());
    let session_csrf =
        || SecurityRequirement::new("sessionCookie", Vec::<String>::new()).add("csrfToken", Vec::<String>::new());
    rate_limit_headers(document);
    for item in document.paths.paths.values_mut() {
        if let Some(operation) = item.get.as_mut() {
            operation.security.get_or_insert_with(|| vec![open(), session()]);
        }
        for operation in [&mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            operation.security.get_or_insert_with(|| vec![session_csrf(), open()]);
        }
    }
}

/// Ingest answers that went through the rate limit carry its headers (`security::headers`), and
/// a refusal says when to retry: written here once rather than in each status of the handler's
/// annotation.
fn rate_limit_headers(document: &mut openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::Type;
    let header = |kind: Type, description: &str| {
        let schema = openapi::ObjectBuilder::new().schema_type(kind);
        RefOr::T(HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build())
    };
    let Some(ingest) = document.paths.paths.get_mut("/live/ingest").and_then(|item| item.post.as_mut()) else {
        return;
    };
    for (status, response) in ingest.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if !matches!(status.as_str(), "200" | "422" | "429") {
            continue;
        }
        let headers = &mut response.headers;
        headers.insert("X-RateLimit-Limit".into(), header(Type::Integer, "requests allowed per rolling minute"));
        headers.insert("X-RateLimit-Remaining".into(), header(Type::Integer, "requests left in the window"));
        headers.insert("X-RateLimit-Reset".into(), header(Type::Integer, "Unix time when the next request is allowed"));
        headers.insert("RateLimit-Policy".into(), header(Type::String, "IETF draft policy"));
        headers.insert("RateLimit".into(), header(Type::String, "IETF draft state"));
        if status == "429" {
            headers.insert(
                "Retry-After".into(),
                header(Type::Integer, "whole seconds until the next request is allowed (≥ 1)"),
            );
        }
    }
}
