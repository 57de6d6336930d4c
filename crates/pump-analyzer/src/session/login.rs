//! Optional dashboard login (`DASHBOARD_PASSWORD`): the password is kept only as an Argon2id hash
//! in memory, compared on the blocking pool, and failed attempts are limited per client IP.

use std::net::IpAddr;
use std::time::Duration;

use argon2::Argon2;
use subtle::ConstantTimeEq;

use crate::security::rate_limit::{Decision, RateLimiter};
use crate::security::shared_limit::{Limiter, LimiterUnavailable};

/// Failed login attempts allowed per client IP per minute.
pub const ATTEMPTS_PER_MINUTE: u32 = 5;

pub struct Login {
    salt: [u8; 16],
    hash: [u8; 32],
    /// Failed attempts per client IP: in process, or in Redis shared by every instance.
    pub attempts: Limiter,
}

fn derive(password: &[u8], salt: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // Default parameters (Argon2id, 19 MiB, 2 passes) with a 16-byte salt cannot fail.
    let _ = Argon2::default().hash_password_into(password, salt, &mut out);
    out
}

impl Login {
    /// With `shared`, failed attempts are counted in Redis for the whole deployment.
    pub fn new(password: &str, shared: Option<&crate::security::shared_limit::RedisLimiter>) -> Self {
        let mut salt = [0u8; 16];
        let _ = getrandom::fill(&mut salt);
        let window = Duration::from_secs(60);
        let attempts = match shared {
            Some(redis) => Limiter::Redis(redis.sibling("login", ATTEMPTS_PER_MINUTE, window)),
            None => Limiter::Local(RateLimiter::new(ATTEMPTS_PER_MINUTE, window, 100_000)),
        };
        Self { hash: derive(password.as_bytes(), &salt), salt, attempts }
    }

    /// Compares a candidate password (slow by design: call it off the async executor).
    pub fn verify(&self, candidate: &str) -> bool {
        bool::from(derive(candidate.as_bytes(), &self.salt).ct_eq(&self.hash))
    }

    /// Whether `ip` may try again now (a failed attempt uses one slot).
    pub async fn peek(&self, ip: IpAddr) -> Result<Decision, LimiterUnavailable> {
        self.attempts.peek(ip).await
    }

    /// Paths reachable without logging in.
    pub fn open_path(&self, path: &str) -> bool {
        path == "/login" || path.starts_with("/api/session/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_password_verifies() {
        let login = Login::new("correct horse", None);
        assert!(login.verify("correct horse"));
        assert!(!login.verify("correct horse "));
        assert!(!login.verify(""));
    }
}
