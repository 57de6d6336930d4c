//! The HTTP surface: one router per resource, assembled here with the security layers.

pub mod csv;
mod demo;
pub mod error;
mod events;
pub mod extract;
mod health;
mod ingest;
pub mod ingest_guard;
pub mod openapi;
pub(crate) mod pages;
pub mod query;
pub mod runs;
pub mod seeds;
mod session;
pub mod session_layer;
pub mod simulations;
mod streams;
mod verify;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use http::header;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::security::ingest_token::IngestTokens;
use crate::security::shared_limit::Limiter;
use crate::security::{client_ip, cors, headers, host_guard};
use crate::store::Store;
use crate::store::hub::Hub;
use error::AppError;

/// Everything a handler needs. Cloning is one reference-count increment: every middleware layer
/// clones the state for every request, and profiling showed cloning the fields one by one (ten
/// atomic increments and decrements per layer) among the top costs of an ingest request.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct SharedState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub tokens: Arc<IngestTokens>,
    /// `None` when `INGEST_RATE_LIMIT=0`.
    pub limiter: Option<Arc<Limiter>>,
    /// Live events for SSE clients.
    pub hub: Hub,
    /// Scans in progress.
    pub runs: Arc<runs::RunRegistry>,
    /// Counters for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Browser-session policy and cookie key.
    pub sessions: Arc<crate::session::Sessions>,
    /// Present when `DASHBOARD_PASSWORD` is set.
    pub login: Option<Arc<crate::session::login::Login>>,
    /// Turns `true` when the server shuts down, so long-lived responses (SSE) end.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// One permit per live (SSE) subscriber, `SSE_MAX_CLIENTS` in all.
    pub sse_slots: Arc<tokio::sync::Semaphore>,
    /// Simulations running or waiting in this process.
    pub simulations: Arc<simulations::SimRegistry>,
    /// Demo feeds started in this process.
    pub demos: Arc<crate::live::demo::DemoRegistry>,
    /// Open HTTP connections and their cap.
    pub connections: crate::serve::ConnectionSlots,
}

impl SharedState {
    /// Live (SSE) subscribers connected now.
    pub fn sse_clients(&self) -> usize {
        self.settings.sse_max_clients - self.sse_slots.available_permits()
    }
}

/// The whole application router with its layers, outermost first:
/// edge (client IP, host guard, CORS audit, hygiene headers) → CORS → trace → body limit →
/// sessions → pages → routes.
///
/// The layers are composed into one service stack (`ServiceBuilder`) and added to the router
/// once. Added one by one with `Router::layer`, each would be boxed separately. And `from_fn`
/// clones its inner service on every request, that is every layer below it (the CORS layer's
/// lists included): hence one `edge` function for the four checks above CORS, not four layers.
/// What each saves: `docs/performance-history.md`.
pub fn router(state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(cors::layer(state.settings.clone()))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::HeaderName::from_static("x-ingest-token"),
            header::HeaderName::from_static("x-csrf-token"),
        ]))
        // Back to axum's body type, which CORS needs (it builds empty preflight responses).
        .map_response(IntoResponse::into_response)
        .layer(TraceLayer::new_for_http())
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        // Sessions, then pages: the session layer hands each request it lets through to
        // `pages::layer` itself (one `from_fn` hop fewer per request).
        .layer(middleware::from_fn_with_state(state.clone(), crate::http::session_layer::layer));
    // Routes registered through `routes!` bring their OpenAPI documentation with them.
    let (routes, document) = utoipa_axum::router::OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(ingest::router(state.clone()))
        .merge(verify::router())
        .merge(streams::router())
        .merge(events::router())
        .merge(seeds::router())
        .merge(demo::router())
        .merge(runs::router())
        .merge(simulations::router())
        .merge(session::router())
        .merge(pages::router())
        .split_for_parts();
    routes.merge(openapi::router(document)).fallback(not_found).layer(layers).with_state(state)
}

/// What every request goes through first: its client IP is decided, a foreign `Host` is
/// refused, a foreign `Origin` is logged (the CORS layer below then leaves its headers out),
/// and whatever the answer, it gets the hygiene headers.
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    client_ip::tag(&state.settings, &mut request);
    let mut response = match host_guard::refused_host(&state.settings, &request) {
        Some(host) => AppError::MisdirectedHost(format!(
            "Host {host:?} is not served here; add it to ALLOWED_HOSTS if you use this name on purpose"
        ))
        .into_response(),
        None => {
            cors::audit(&state.settings, &request);
            next.run(request).await
        }
    };
    headers::hygiene(response.headers_mut());
    response
}

async fn not_found(uri: http::Uri) -> AppError {
    AppError::NotFound(format!("No route for {}", uri.path()))
}
