//! The security layer of seed 003 and SPEC §2: ingest token, host and origin guards, rate limiting,
//! CORS, response hygiene headers and the security-event log.

pub mod audit;
pub mod client_ip;
pub mod cors;
pub mod headers;
pub mod host_guard;
pub mod ingest_token;
pub mod rate_limit;
pub mod shared_limit;

/// `n` random bytes from the OS generator, hex encoded (2n characters).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random generator is unavailable");
    hex::encode(bytes)
}
