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
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{self, ComponentsBuilder};

use super::AppState;

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
    components(schemas(super::error::ErrorBody, super::session_layer::Refusal))
)]
struct Base;

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
    for item in document.paths.paths.values_mut() {
        if let Some(operation) = item.get.as_mut() {
            operation.security.get_or_insert_with(|| vec![open(), session()]);
        }
        for operation in [&mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            operation.security.get_or_insert_with(|| vec![session_csrf(), open()]);
        }
    }
}
