//! The guard in front of every ingest route, in the order SPEC §2.4 fixes:
//! cross-site origin check (open ingest only) → ingest token (a 401 does not use quota) →
//! rate limit → the handler (whose validation failures do use quota). Every response that passed
//! the token check, and the 401s too, carries the rate-limit headers.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::http::AppState;
use crate::http::error::AppError;
use crate::security::audit;
use crate::security::client_ip::{ClientIp, ForwardedHttps};
use crate::security::cors::origin_allowed;
use crate::security::headers::write_rate_limit;

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = ClientIp::of(&request, state.settings.host);
    let path = request.uri().path().to_string();

    // Open ingest + a foreign Origin = a web page posting through the user's browser with a
    // no-preflight `text/plain` request (SPEC §2.3). Bots send no Origin.
    if !state.tokens.required()
        && let Some(origin) = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok())
    {
        let https = request.extensions().get::<ForwardedHttps>().is_some_and(|f| f.0);
        if !origin_allowed(origin, request.headers(), https, &state.settings) {
            audit::event(403, &format!("cross-site ingest refused from origin {origin}"), ip, &path);
            return AppError::Forbidden(format!(
                "Cross-site ingest refused: origin {origin} is not in API_CORS_ORIGINS (set INGEST_TOKEN to accept other clients)"
            ))
            .into_response();
        }
    }

    let presented = request.headers().get("x-ingest-token").map(|v| v.as_bytes());
    if let Err(e) = state.tokens.check(presented) {
        audit::event(401, &format!("ingest auth failed: {}", e.message()), ip, &path);
        let mut response = AppError::Unauthorized(e.message().to_string()).into_response();
        if let Some(limiter) = &state.limiter
            && let Ok(decision) = limiter.peek(ip).await
        {
            write_rate_limit(response.headers_mut(), &decision, limiter.window().as_secs());
        }
        return response;
    }

    let Some(limiter) = &state.limiter else { return next.run(request).await };
    let decision = match limiter.check(ip).await {
        Ok(decision) => decision,
        Err(e) => {
            // Without the shared counters the limit cannot be enforced: refuse rather than let
            // every instance accept unlimited traffic. Nothing is stored.
            tracing::error!(error = %e.0, "rate limiter unavailable; ingest refused");
            return AppError::ServiceUnavailable(
                "The shared rate limiter (Redis) is unavailable right now; nothing was stored, retry shortly".into(),
            )
            .into_response();
        }
    };
    let window = limiter.window().as_secs();
    if !decision.allowed {
        audit::event(429, "rate limit exceeded", ip, &path);
        let mut response = AppError::RateLimited(format!(
            "Rate limit exceeded. Maximum {} requests per minute allowed.",
            decision.limit
        ))
        .into_response();
        write_rate_limit(response.headers_mut(), &decision, window);
        return response;
    }
    let mut response = next.run(request).await;
    write_rate_limit(response.headers_mut(), &decision, window);
    response
}
