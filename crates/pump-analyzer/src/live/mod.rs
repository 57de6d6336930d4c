//! Live Streams: the ingest message contract, the fan-out of live events, the analyses, and the
//! verification of recorded bets once a seed is revealed.

pub mod analysis;
pub mod demo;
pub mod hub;
pub mod message;
pub mod verifier;
