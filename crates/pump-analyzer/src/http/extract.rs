//! Our own body extractor: reads at most [`MAX_BODY`] bytes and parses JSON *whatever the
//! `Content-Type`* (Antebot scripts and the seed's curl loop send `text/plain` or form types), so
//! malformed bodies get our error format instead of axum's plain-text rejections.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::AppError;

/// Largest accepted request body (SPEC §2.7).
pub const MAX_BODY: usize = 1024 * 1024;

/// A request body parsed as JSON: into a `Value` unless a type is named.
pub struct JsonBody<T = Value>(pub T);

/// A body that sends nothing for this long is abandoned (SPEC §2.7: a client that stops sending
/// its body is closed after 10 s).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// However steadily it trickles, a body must be complete within this time (1 MiB in 30 s is
/// ~35 KB/s, far below any link a bot or browser posts over).
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the whole body within the size limit and the time limits.
pub async fn read_limited(body: Body) -> Result<axum::body::Bytes, AppError> {
    let too_large = || AppError::PayloadTooLarge(format!("Request body exceeds the {MAX_BODY}-byte limit (1 MiB)"));
    let mut stream = body.into_data_stream();
    // A body that arrives in one chunk, as most do, is handed on without a copy.
    let mut first: Option<axum::body::Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + BODY_TOTAL_TIMEOUT;
    loop {
        let idle = tokio::time::Instant::now() + BODY_IDLE_TIMEOUT;
        let next = match tokio::time::timeout_at(idle.min(deadline), stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(AppError::RequestTimeout(format!(
                    "Request body not received in time: nothing arrived for {} s, or the whole body took over {} s",
                    BODY_IDLE_TIMEOUT.as_secs(),
                    BODY_TOTAL_TIMEOUT.as_secs()
                )));
            }
        };
        match next {
            None if rest.is_empty() => return Ok(first.unwrap_or_default()),
            None => return Ok(rest.into()),
            Some(Ok(chunk)) => {
                let held = first.as_ref().map_or(0, |f| f.len()) + rest.len();
                if held + chunk.len() > MAX_BODY {
                    return Err(too_large());
                }
                match first.take() {
                    None if rest.is_empty() => first = Some(chunk),
                    Some(f) => {
                        rest.extend_from_slice(&f);
                        rest.extend_from_slice(&chunk);
                    }
                    None => rest.extend_from_slice(&chunk),
                }
            }
            // The body limit layer reports an oversized body as an error of its stream.
            Some(Err(e)) if is_length_limit(&e) => return Err(too_large()),
            Some(Err(e)) => return Err(AppError::bad_request("body", format!("Request body could not be read: {e}"))),
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Parses bytes as JSON with a clear 400 for each kind of malformed input.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request("body", "Request body is empty; expected JSON"));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(AppError::bad_request("body", "Request body is not valid UTF-8; expected JSON"));
    };
    // From the checked text: parsing bytes would check each string's UTF-8 again (~15% of the
    // parse of a batch of bets).
    serde_json::from_str(text).map_err(|e| AppError::bad_request("body", format!("Invalid JSON: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(len) = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > MAX_BODY as u64
        {
            return Err(AppError::PayloadTooLarge(format!(
                "Request body of {len} bytes exceeds the {MAX_BODY}-byte limit (1 MiB)"
            )));
        }
        let bytes = read_limited(request.into_body()).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"\xff\xfe", "UTF-8"),
            (b"{\"id\": ", "Invalid JSON"),
            (b"id=1&nonce=2", "Invalid JSON"),
        ];
        for (raw, fragment) in cases {
            match parse_json::<Value>(raw) {
                Err(AppError::BadRequest { message, .. }) => assert!(message.contains(fragment), "{message}"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(parse_json::<Value>(deep.as_bytes()), Err(AppError::BadRequest { .. })));
    }
}
