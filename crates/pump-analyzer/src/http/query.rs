//! Query-string parsing with our error format: each parameter is parsed once here and a bad one
//! gets a message naming it.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use http::request::Parts;

use super::error::AppError;

/// The raw query parameters of a request (last value wins).
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::bad_request("query", format!("Malformed query string: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

impl Params {
    /// A present, non-blank value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}
