//! The Pump provably-fair engine (SPEC §4): pure computation, no I/O, no async runtime.

mod difficulty;

pub use difficulty::{Difficulty, ParseDifficultyError};
