//! Browser sessions and CSRF protection (SPEC §5, seed 004 with its defects fixed).
//!
//! - Sessions live server-side; the cookie carries a random secret plus its HMAC under
//!   `SECRET_KEY` (forged or foreign cookies are refused without a database lookup), and the
//!   database keeps only the secret's SHA-256.
//! - `session_id` in JSON is a separate public identifier.
//! - Idle timeout and absolute lifetime; `GET /api/session/info` does not count as activity.
//! - One CSRF token per session, checked by [`layer`] on every state-changing request.

pub mod login;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{CookieSecure, Settings};
use crate::security::random_hex;
use crate::store::model::{SessionRecord, iso};

pub const COOKIE: &str = "pump_session";
/// Bytes of randomness in a cookie secret and in a CSRF token.
const SECRET_BYTES: usize = 32;

/// Sessions minted for a client that has not yet presented one back, at most this many per
/// client address (SPEC §5: a flood of cookie-less requests stores at most a few hundred).
pub const UNCLAIMED_PER_CLIENT: usize = 200;
/// Client addresses followed at once; past it the longest-followed is forgotten (its sessions
/// then simply expire).
const UNCLAIMED_CLIENTS: usize = 10_000;

/// Follows the sessions each client address was given but never sent back. A browser sends its
/// cookie with its very next request, so a real user's session is claimed at once; a flood of
/// cookie-less requests (scripts, a hostile page's `fetch` without credentials) never claims
/// any, and its oldest sessions are evicted as it makes new ones. Sessions in use are never
/// evicted, even when the flood comes from the user's own browser and address.
#[derive(Default)]
pub struct Unclaimed {
    inner: std::sync::Mutex<UnclaimedInner>,
}

#[derive(Default)]
struct UnclaimedInner {
    /// Per client (its rate-limit key): secret hashes in minting order. Claimed ones are left in
    /// place and skipped when they reach the front.
    order: HashMap<IpAddr, VecDeque<String>>,
    /// Unclaimed secret hash → its client.
    owner: HashMap<String, IpAddr>,
    /// Clients in the order they were first followed.
    clients: VecDeque<IpAddr>,
}

impl Unclaimed {
    /// Records a session minted for `client`; returns the sessions to delete to keep that client
    /// within [`UNCLAIMED_PER_CLIENT`] unclaimed ones.
    pub fn minted(&self, client: IpAddr, secret_hash: &str) -> Vec<String> {
        let client = crate::security::client_ip::limit_key(client);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        if !inner.order.contains_key(&client) {
            if inner.clients.len() >= UNCLAIMED_CLIENTS
                && let Some(oldest) = inner.clients.pop_front()
                && let Some(hashes) = inner.order.remove(&oldest)
            {
                for hash in hashes {
                    inner.owner.remove(&hash);
                }
            }
            inner.clients.push_back(client);
        }
        let queue = inner.order.entry(client).or_default();
        queue.push_back(secret_hash.to_string());
        inner.owner.insert(secret_hash.to_string(), client);
        let mut evicted = Vec::new();
        while queue.len() > UNCLAIMED_PER_CLIENT {
            if let Some(hash) = queue.pop_front()
                && inner.owner.remove(&hash).is_some()
            {
                evicted.push(hash);
            }
        }
        evicted
    }

    /// A session came back with its cookie: it is in use and is never evicted.
    pub fn claimed(&self, secret_hash: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.owner.remove(secret_hash);
    }
}

/// HMAC-SHA256 keyed with `SECRET_KEY`, for cookie MACs.
type CookieMac = hmac::Hmac<Sha256>;

/// Session policy and the cookie key.
pub struct Sessions {
    /// Minted sessions not yet presented back, per client address.
    pub unclaimed: Unclaimed,
    key: CookieMac,
    /// Idle timeout, microseconds.
    pub timeout: i64,
    /// Absolute lifetime, microseconds.
    pub max_lifetime: i64,
    pub secure: CookieSecure,
}

/// A session as `/api/session/*` shows it (seed 004).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionInfo {
    /// A public identifier, unrelated to the cookie's secret.
    pub session_id: String,
    pub created_at: String,
    pub last_activity: String,
    pub elapsed_seconds: i64,
    /// Until the idle timeout or the maximum lifetime, whichever comes first.
    pub remaining_seconds: i64,
    pub is_active: bool,
    pub timeout_seconds: i64,
    pub max_lifetime_seconds: i64,
    /// Logged in with DASHBOARD_PASSWORD.
    pub authenticated: bool,
}

/// Where a session stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub elapsed_seconds: i64,
    pub remaining_seconds: i64,
    pub is_active: bool,
}

fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

impl Sessions {
    pub fn new(secret_key: &str, settings: &Settings) -> Self {
        Self {
            unclaimed: Unclaimed::default(),
            key: <CookieMac as hmac::KeyInit>::new_from_slice(secret_key.as_bytes())
                .expect("HMAC takes a key of any length"),
            timeout: settings.session_timeout as i64 * 1_000_000,
            max_lifetime: settings.session_max_lifetime as i64 * 1_000_000,
            secure: settings.session_cookie_secure,
        }
    }

    fn mac(&self, secret: &str) -> String {
        use hmac::Mac;
        let mut mac = self.key.clone();
        mac.update(secret.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A new session: the cookie value to send and the record to store.
    pub fn mint(&self, now: i64) -> (String, SessionRecord) {
        let secret = random_hex(SECRET_BYTES);
        let cookie = format!("{secret}.{}", self.mac(&secret));
        let record = SessionRecord {
            secret_hash: sha256_hex(&secret),
            public_id: random_hex(16),
            csrf_token: random_hex(SECRET_BYTES),
            created_at: now,
            last_activity: now,
            authenticated: false,
        };
        (cookie, record)
    }

    /// The stored key of a cookie value, when its MAC is right.
    pub fn verify_cookie(&self, value: &str) -> Option<String> {
        let (secret, mac) = value.split_once('.')?;
        if secret.len() != SECRET_BYTES * 2 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let expected = self.mac(secret);
        bool::from(expected.as_bytes().ct_eq(mac.as_bytes())).then(|| sha256_hex(secret))
    }

    pub fn timing(&self, record: &SessionRecord, now: i64) -> Timing {
        let idle_left = record.last_activity + self.timeout - now;
        let life_left = record.created_at + self.max_lifetime - now;
        let remaining = idle_left.min(life_left);
        Timing {
            elapsed_seconds: (now - record.created_at).max(0) / 1_000_000,
            // Rounded up: a session with 0.4 s left still has time, and a fresh one shows the full timeout.
            remaining_seconds: (remaining.max(0) + 999_999) / 1_000_000,
            is_active: remaining > 0,
        }
    }

    /// The seed's `session` object.
    pub fn info(&self, record: &SessionRecord, now: i64) -> SessionInfo {
        let t = self.timing(record, now);
        SessionInfo {
            session_id: record.public_id.clone(),
            created_at: iso(record.created_at),
            last_activity: iso(record.last_activity),
            elapsed_seconds: t.elapsed_seconds,
            remaining_seconds: t.remaining_seconds,
            is_active: t.is_active,
            timeout_seconds: self.timeout / 1_000_000,
            max_lifetime_seconds: self.max_lifetime / 1_000_000,
            authenticated: record.authenticated,
        }
    }

    fn secure_flag(&self, over_https: bool) -> &'static str {
        let secure = match self.secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => over_https,
        };
        if secure { "; Secure" } else { "" }
    }

    pub fn set_cookie(&self, value: &str, over_https: bool) -> HeaderValue {
        let max_age = self.max_lifetime / 1_000_000;
        let header = format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.secure_flag(over_https)
        );
        HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn clear_cookie(&self, over_https: bool) -> HeaderValue {
        let header = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", self.secure_flag(over_https));
        HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Constant-time CSRF comparison.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The session cookie's value from the request's `Cookie` headers.
pub fn cookie_value(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn sessions() -> Sessions {
        let vars = [("SESSION_TIMEOUT", "60"), ("SESSION_MAX_LIFETIME", "300")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Sessions::new("secret", &Settings::from_vars(&vars, &Overrides::default()).unwrap())
    }

    #[test]
    fn cookies_verify_only_with_their_mac_and_never_reveal_the_public_id() {
        let s = sessions();
        let (cookie, record) = s.mint(0);
        assert_eq!(s.verify_cookie(&cookie), Some(record.secret_hash.clone()));
        assert!(!cookie.contains(&record.public_id));
        assert_ne!(record.csrf_token, record.public_id);
        assert_eq!(record.csrf_token.len(), 64);
        let (secret, _) = cookie.split_once('.').unwrap();
        assert_eq!(s.verify_cookie(&format!("{secret}.00000000000000000000000000000000")), None);
        assert_eq!(s.verify_cookie(secret), None);
        assert_eq!(s.verify_cookie("x.y"), None);
        let other = Sessions { key: <CookieMac as hmac::KeyInit>::new_from_slice(b"other").unwrap(), ..sessions() };
        assert_eq!(other.verify_cookie(&cookie), None, "a new SECRET_KEY invalidates old cookies");
        let (second, _) = s.mint(0);
        assert_ne!(cookie, second);
    }

    #[test]
    fn idle_timeout_and_absolute_lifetime_both_expire() {
        let s = sessions();
        let (_, mut r) = s.mint(0);
        let sec = 1_000_000;
        assert_eq!(s.timing(&r, 10 * sec), Timing { elapsed_seconds: 10, remaining_seconds: 50, is_active: true });
        assert!(!s.timing(&r, 61 * sec).is_active, "idle for longer than the timeout");
        r.last_activity = 290 * sec;
        assert_eq!(s.timing(&r, 295 * sec).remaining_seconds, 5, "capped by the absolute lifetime");
        assert!(!s.timing(&r, 301 * sec).is_active);
    }

    #[test]
    fn cookie_flags_follow_the_secure_setting() {
        let s = sessions();
        let header = s.set_cookie("v", false).to_str().unwrap().to_string();
        assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax") && header.contains("Path=/"));
        assert!(!header.contains("Secure"), "auto over plain HTTP");
        assert!(s.set_cookie("v", true).to_str().unwrap().ends_with("; Secure"));
        let always = Sessions { secure: CookieSecure::Always, ..sessions() };
        assert!(always.set_cookie("v", false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn csrf_comparison_rejects_empty_and_different_tokens() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", ""));
        assert!(!csrf_matches("abc", "abcd"));
    }

    #[test]
    fn a_client_keeps_at_most_its_cap_of_unclaimed_sessions_and_claimed_ones_are_never_evicted() {
        let unclaimed = Unclaimed::default();
        let client: IpAddr = "127.0.0.5".parse().unwrap();
        assert!(unclaimed.minted(client, "in-use").is_empty());
        unclaimed.claimed("in-use");
        let mut evicted = Vec::new();
        for n in 0..1000 {
            evicted.extend(unclaimed.minted(client, &format!("flood-{n}")));
        }
        assert_eq!(evicted.len(), 1000 - UNCLAIMED_PER_CLIENT, "200 unclaimed are kept");
        assert!(!evicted.contains(&"in-use".to_string()));
        assert_eq!(evicted[0], "flood-0", "oldest first");
        // 127.0.0.9 is the same client as 127.0.0.5.
        let more = unclaimed.minted("127.0.0.9".parse().unwrap(), "flood-1000");
        assert_eq!(more.len(), 1);
        let other = unclaimed.minted("203.0.113.1".parse().unwrap(), "elsewhere");
        assert!(other.is_empty(), "another client is not affected");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, HeaderValue::from_static("a=1; pump_session=xyz.abc; b=2"));
        assert_eq!(cookie_value(&headers).as_deref(), Some("xyz.abc"));
    }
}
