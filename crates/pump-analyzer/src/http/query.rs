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

impl Params {
    /// An integer parameter within `min..=max`, `default` when absent; 400 naming it otherwise.
    pub fn int(&self, name: &'static str, default: i64, min: i64, max: i64) -> Result<i64, AppError> {
        Ok(self.opt_int(name, min, max)?.unwrap_or(default))
    }

    /// An optional integer parameter within `min..=max`.
    pub fn opt_int(&self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, AppError> {
        let Some(raw) = self.text(name) else { return Ok(None) };
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ if max == i64::MAX => {
                Err(AppError::bad_request(name, format!("{name} must be an integer ≥ {min} (got {})", shorten(raw))))
            }
            _ => Err(AppError::bad_request(
                name,
                format!("{name} must be an integer between {min} and {max} (got {})", shorten(raw)),
            )),
        }
    }

    /// An optional finite number ≥ `min`.
    pub fn opt_number(&self, name: &'static str, min: f64) -> Result<Option<f64>, AppError> {
        let Some(raw) = self.text(name) else { return Ok(None) };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= min => Ok(Some(v)),
            _ => Err(AppError::bad_request(name, format!("{name} must be a number ≥ {min} (got {})", shorten(raw)))),
        }
    }

    /// A comma-separated list of positive finite numbers (at most `max_items`).
    pub fn numbers(&self, name: &'static str, max_items: usize) -> Result<Option<Vec<f64>>, AppError> {
        let Some(raw) = self.text(name) else { return Ok(None) };
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v < 1e12 => out.push(v),
                _ => {
                    return Err(AppError::bad_request(
                        name,
                        format!(
                            "{name} must be a comma-separated list of positive numbers (bad item {})",
                            shorten(part)
                        ),
                    ));
                }
            }
        }
        if out.is_empty() {
            return Err(AppError::bad_request(name, format!("{name} must list at least one number")));
        }
        if out.len() > max_items {
            return Err(AppError::bad_request(name, format!("{name} may list at most {max_items} numbers")));
        }
        Ok(Some(out))
    }

    /// An optional difficulty name.
    pub fn difficulty(&self, name: &'static str) -> Result<Option<pump_engine::Difficulty>, AppError> {
        let Some(raw) = self.text(name) else { return Ok(None) };
        raw.trim().to_ascii_lowercase().parse().map(Some).map_err(|_| {
            AppError::bad_request(
                name,
                format!("{name} must be one of easy, medium, hard, expert (got {})", shorten(raw)),
            )
        })
    }
}

/// A client value quoted in an error message, cut to a readable length.
pub fn shorten(raw: &str) -> String {
    const MAX: usize = 40;
    if raw.chars().count() <= MAX {
        format!("{raw:?}")
    } else {
        format!("{:?}…", raw.chars().take(MAX).collect::<String>())
    }
}

/// The single `{id}` (or `{*path}`) segment of a route, with our error format when it cannot be
/// decoded (invalid percent-encoded UTF-8).
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| PathId(id))
            .map_err(|e| AppError::validation("id", format!("Malformed id in the path: {e}")))
    }
}
