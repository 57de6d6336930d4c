//! Live Streams on top of the store: the analyses players use, the verification of recorded bets
//! once a seed is revealed, and the demo feed.

pub mod analysis;
pub mod demo;
pub mod verifier;
