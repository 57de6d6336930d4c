//! Optional dashboard login (`DASHBOARD_PASSWORD`): the password is kept only as an Argon2id hash
//! in memory, compared on the blocking pool, and failed attempts are limited per client IP.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use subtle::ConstantTimeEq;

use crate::security::rate_limit::RateLimiter;
use crate::security::shared_limit::Limiter;

/// Failed login attempts allowed per client IP per minute.
pub const ATTEMPTS_PER_MINUTE: u32 = 5;

pub struct Login {
    salt: [u8; 16],
    hash: [u8; 32],
    /// One password check per core at most: each takes ~19 MiB and a core for ~10 ms, and a
    /// burst of logins must queue rather than take the machine's memory (SPEC §2.4).
    checks: tokio::sync::Semaphore,
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
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { hash: derive(password.as_bytes(), &salt), salt, attempts, checks: tokio::sync::Semaphore::new(cores) }
    }

    /// Compares a candidate password (slow by design: runs on the blocking pool, at most one
    /// check per core at a time).
    pub async fn verify(self: &Arc<Self>, candidate: String) -> bool {
        let Ok(_permit) = self.checks.acquire().await else { return false };
        let login = self.clone();
        tokio::task::spawn_blocking(move || login.matches(&candidate)).await.unwrap_or(false)
    }

    /// The comparison itself.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(derive(candidate.as_bytes(), &self.salt).ct_eq(&self.hash))
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
        assert!(login.matches("correct horse"));
        assert!(!login.matches("correct horse "));
        assert!(!login.matches(""));
    }
}
