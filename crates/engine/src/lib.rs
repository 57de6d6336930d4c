//! The Pump provably-fair engine (SPEC §4): pure computation, no I/O, no async runtime.
//!
//! - [`round`]: one nonce — HMAC stream, selection shuffle, result and permutation.
//! - [`tables`]: the payout tables, kept as data in one place.
//! - [`odds`]: exact probabilities and theoretical gaps.
//! - [`scan`]: parallel range scans with progress and cancellation.

mod difficulty;
pub mod hmac;
pub mod odds;
pub mod round;
pub mod scan;
pub mod tables;

pub use difficulty::{Difficulty, ParseDifficultyError};
pub use round::{RoundDeriver, RoundResult, Verification, verify};

/// Bumped whenever a change could alter any result; stored with every run.
pub const ENGINE_VERSION: &str = concat!("pump-engine/", env!("CARGO_PKG_VERSION"));
