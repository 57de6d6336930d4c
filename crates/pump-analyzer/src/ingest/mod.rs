//! The ingest contract (SPEC §3.1): what a bot may send, parsed once at the edge into validated
//! bets and heartbeats. The store takes these types; nothing here depends on the store.

pub mod message;
pub mod wire;
