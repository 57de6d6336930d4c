//! The one error type of the HTTP layer. 4xx bodies are safe to show; 5xx causes are logged inside
//! the request span and the client gets an opaque message. Body shape (SPEC §8):
//! `{"error": {"code", "message", "field"}, "detail": message}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ingest::message::{FieldError, describe};
use crate::store::StoreError;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum AppError {
    /// 400: the request could not be read (not JSON, bad query parameter).
    BadRequest { message: String, field: Option<String> },
    /// 401: ingest token missing or wrong.
    Unauthorized(String),
    /// 403: refused by a security rule (cross-site ingest).
    Forbidden(String),
    /// 404: no such resource.
    NotFound(String),
    /// 408: the client stopped sending its body (SPEC §2.7).
    RequestTimeout(String),
    /// 409: the request conflicts with the current state (duplicate run id, cancelled run).
    Conflict(String),
    /// 413: body over the size limit, or a range over `MAX_NONCES`.
    PayloadTooLarge(String),
    /// 421: `Host` not served here (DNS rebinding defence).
    MisdirectedHost(String),
    /// 422: the request was read but breaks a rule; names every offending field.
    Validation(Vec<FieldError>),
    /// 429: rate limit exceeded (headers are added by the ingest guard).
    RateLimited(String),
    /// 503: a backing service cannot take the request now.
    Unavailable(String),
    /// A shared service other than the database is unreachable: 503 with this public message.
    ServiceUnavailable(String),
    /// 500: a bug or an unexpected failure; never detailed to the client.
    Internal(String),
}

impl AppError {
    pub fn bad_request(field: impl Into<Option<&'static str>>, message: impl Into<String>) -> Self {
        AppError::BadRequest { message: message.into(), field: field.into().map(str::to_string) }
    }

    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError { field, message: message.into() }])
    }
}

/// Every error answer of the API (SPEC §8).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
    /// The message again, where FastAPI-style clients look for it.
    pub detail: &'a str,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// A stable code: `VALIDATION_ERROR`, `NOT_FOUND`, `RATE_LIMITED`, …
    pub code: &'a str,
    pub message: &'a str,
    /// The first offending field, when one is to blame.
    #[schema(required = true)]
    pub field: Option<&'a str>,
    /// Every offending field (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem<'a>>>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldProblem<'a> {
    pub field: &'a str,
    pub message: &'a str,
}

fn body<'a>(
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
    errors: Option<Vec<FieldProblem<'a>>>,
) -> ErrorBody<'a> {
    ErrorBody { error: ErrorDetail { code, message, field, errors }, detail: message }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, value) = match &self {
            AppError::BadRequest { message, field } => {
                (StatusCode::BAD_REQUEST, body("BAD_REQUEST", message, field.as_deref(), None))
            }
            AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, body("UNAUTHORIZED", m, None, None)),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, body("FORBIDDEN", m, None, None)),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, body("NOT_FOUND", m, None, None)),
            AppError::RequestTimeout(m) => {
                let mut response =
                    (StatusCode::REQUEST_TIMEOUT, Json(body("REQUEST_TIMEOUT", m, None, None))).into_response();
                // The rest of the body may still be on its way: the connection cannot be reused.
                response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                return response;
            }
            AppError::Conflict(m) => (StatusCode::CONFLICT, body("CONFLICT", m, None, None)),
            AppError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, body("PAYLOAD_TOO_LARGE", m, None, None)),
            AppError::MisdirectedHost(m) => (StatusCode::MISDIRECTED_REQUEST, body("HOST_NOT_ALLOWED", m, None, None)),
            AppError::Validation(errors) => {
                let message = describe(errors);
                let list = errors.iter().map(|e| FieldProblem { field: e.field, message: &e.message }).collect();
                let first = errors.first().map(|e| e.field);
                let answer = body("VALIDATION_ERROR", &message, first, Some(list));
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response();
            }
            AppError::RateLimited(m) => (StatusCode::TOO_MANY_REQUESTS, body("RATE_LIMITED", m, None, None)),
            AppError::Unavailable(m) => {
                tracing::warn!(cause = %m, "service unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body("SERVICE_UNAVAILABLE", "The database is unavailable right now; retry shortly", None, None),
                )
            }
            AppError::ServiceUnavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, body("SERVICE_UNAVAILABLE", m, None, None))
            }
            AppError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, body("INTERNAL_ERROR", "Internal server error", None, None))
            }
        };
        (status, Json(value)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Internal(m) => AppError::Internal(m),
        }
    }
}
