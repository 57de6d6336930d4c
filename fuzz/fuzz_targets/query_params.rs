//! Query-string parsing and every typed parameter reader: arbitrary query strings give a value or
//! a 400 naming the parameter, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pump_analyzer::http::error::AppError;
use pump_analyzer::http::query::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Ok(uri) = format!("/x?{query}").parse::<http::Uri>() else { return };
    let Ok(axum::extract::Query(pairs)) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri) else {
        return;
    };
    let params = Params(pairs.into_iter().collect());
    let named = |r: Result<(), AppError>, name: &str| {
        if let Err(AppError::BadRequest { message, field }) = r {
            assert_eq!(field.as_deref(), Some(name));
            assert!(message.contains(name));
        }
    };
    named(params.int("limit", 50, 1, 100).map(|v| assert!((1..=100).contains(&v))), "limit");
    named(params.opt_int("since_id", 0, i64::MAX).map(|v| assert!(v.is_none_or(|v| v >= 0))), "since_id");
    named(params.opt_number("min_multiplier", 0.0).map(|v| assert!(v.is_none_or(|v| v.is_finite() && v >= 0.0))), "min_multiplier");
    named(params.numbers("tiers", 20).map(|v| assert!(v.is_none_or(|v| !v.is_empty() && v.len() <= 20))), "tiers");
    named(params.difficulty("difficulty").map(|_| ()), "difficulty");
});
