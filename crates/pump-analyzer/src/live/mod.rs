//! Live Streams: the ingest message contract and (later) the live fan-out and analysis.

pub mod message;
