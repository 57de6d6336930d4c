//! The ingest body path: bytes → JSON (bounded nesting) → single/batch split → validated messages.
//! Any input must end in a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pump_analyzer::http::extract::parse_json;
use pump_analyzer::ingest::message::{Body, describe, parse_message, split_body};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_json(data) else { return };
    match split_body(value) {
        Ok(Body::Single(item)) => check(&item),
        Ok(Body::Batch(items)) => items.iter().for_each(check),
        Err(e) => assert!(!e.message.is_empty()),
    }
});

fn check(item: &serde_json::Value) {
    match parse_message(item) {
        Ok(message) => {
            let (server, client) = message.seed_pair();
            assert!(!server.trim().is_empty() && !client.trim().is_empty());
            assert!(message.round_result().is_finite());
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(!describe(&errors).is_empty());
        }
    }
}
