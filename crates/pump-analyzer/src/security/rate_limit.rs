//! Per-client-IP rate limiting of the ingest routes (SPEC §2.4).
//!
//! Why our own: the spec needs an exact *rolling minute* (no more than N requests in any 60 s) and
//! headers that say when the next request will be allowed (`X-RateLimit-Reset`, `Retry-After`).
//! `tower_governor` cannot emit those headers, and GCRA refills one slot every 60/N seconds, which
//! lets almost 2N requests through in a minute. A sliding log per key gives the exact answer.
//!
//! Memory is bounded: at most `max_keys` keys are held (sharded maps, each with its own cap), a
//! key's log holds at most N timestamps, idle keys are swept by [`RateLimiter::sweep`], and when a
//! shard is full its least recently used quarter is evicted in one pass (amortised O(log n)).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SHARDS: usize = 32;

/// One shard: client IP → the times (ms since the limiter's epoch) of its counted requests.
type Shard = Mutex<HashMap<IpAddr, VecDeque<u64>>>;

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix time (whole seconds, rounded up) at which the next request will be allowed (when
    /// `remaining` is 0), or at which the oldest counted request leaves the window.
    pub reset_unix: u64,
    /// Whole seconds until `reset_unix`, at least 1 when refused.
    pub retry_after: u64,
    /// Seconds until the window frees a slot (for the IETF `RateLimit` header's `t`).
    pub reset_in: u64,
}

impl Decision {
    /// The answer for a window holding `count` requests whose next slot frees in `reset_in_ms`.
    pub fn new(allowed: bool, limit: u32, count: u32, reset_in_ms: u64, unix_now_ms: u64) -> Self {
        let reset_in = reset_in_ms.div_ceil(1000);
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(count),
            reset_unix: (unix_now_ms + reset_in_ms).div_ceil(1000),
            retry_after: reset_in.max(1),
            reset_in,
        }
    }
}

/// A sliding-log limiter: `limit` requests per `window` per key.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    max_keys_per_shard: usize,
    epoch: Instant,
    shards: Box<[Shard]>,
    hasher: std::hash::RandomState,
}

/// Default cap on distinct client IPs held at once. At 60 requests/min a key costs at most
/// ~600 bytes (a full log), typically ~100; 100,000 keys stay well under 64 MiB.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect::<Vec<_>>().into_boxed_slice();
        Self {
            limit,
            window,
            max_keys_per_shard: (max_keys / SHARDS).max(1),
            epoch: Instant::now(),
            shards,
            hasher: std::hash::RandomState::new(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn shard(&self, key: &IpAddr) -> &Shard {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        &self.shards[(std::hash::Hasher::finish(&h) as usize) % SHARDS]
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Counts a request from `key` if the window has room.
    pub fn check(&self, key: IpAddr) -> Decision {
        self.decide(key, true)
    }

    /// Reports the state for `key` without counting a request (used for responses that must not
    /// consume quota but still carry the headers, such as 401).
    pub fn peek(&self, key: IpAddr) -> Decision {
        self.decide(key, false)
    }

    /// Takes back the most recent request counted for `key` (a login attempt that succeeded).
    pub fn refund(&self, key: IpAddr) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(log) = shard.get_mut(&key) {
            log.pop_back();
            if log.is_empty() {
                shard.remove(&key);
            }
        }
    }

    fn decide(&self, key: IpAddr, consume: bool) -> Decision {
        let now = self.now_ms();
        let window_ms = self.window.as_millis() as u64;
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if consume && !shard.contains_key(&key) && shard.len() >= self.max_keys_per_shard {
            evict(&mut shard, now, window_ms, self.max_keys_per_shard);
        }
        let (count, oldest, allowed) = match (shard.get_mut(&key), consume) {
            (Some(log), _) => {
                while log.front().is_some_and(|&t| t + window_ms <= now) {
                    log.pop_front();
                }
                let allowed = (log.len() as u32) < self.limit;
                if allowed && consume {
                    log.push_back(now);
                }
                let result = (log.len() as u32, log.front().copied(), allowed);
                if log.is_empty() {
                    shard.remove(&key);
                }
                result
            }
            (None, true) => {
                if self.limit == 0 {
                    (0, None, false)
                } else {
                    let mut log = VecDeque::with_capacity(1);
                    log.push_back(now);
                    shard.insert(key, log);
                    (1, Some(now), true)
                }
            }
            (None, false) => (0, None, self.limit > 0),
        };
        drop(shard);
        // When the oldest counted request leaves the window a slot frees up; with no request
        // counted the window is empty and the reset is now.
        let reset_at_ms = oldest.map(|t| t + window_ms).unwrap_or(now);
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Decision::new(allowed, self.limit, count, reset_at_ms.saturating_sub(now), unix_now.as_millis() as u64)
    }

    /// Drops keys whose every request has left the window. Run on a timer.
    pub fn sweep(&self) {
        let now = self.now_ms();
        let window_ms = self.window.as_millis() as u64;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, log| log.back().is_some_and(|&t| t + window_ms > now));
            if shard.capacity() > 4 * shard.len().max(64) {
                shard.shrink_to_fit();
            }
        }
    }

    /// How many keys are held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: drop idle keys, and if that freed too little, the least recently
/// used quarter.
fn evict(shard: &mut HashMap<IpAddr, VecDeque<u64>>, now: u64, window_ms: u64, cap: usize) {
    shard.retain(|_, log| log.back().is_some_and(|&t| t + window_ms > now));
    if shard.len() < cap {
        return;
    }
    let mut last_seen: Vec<(u64, IpAddr)> =
        shard.iter().map(|(k, log)| (log.back().copied().unwrap_or(0), *k)).collect();
    let drop_count = (cap / 4).max(1);
    last_seen.select_nth_unstable(drop_count - 1);
    for (_, key) in &last_seen[..drop_count] {
        shard.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn allows_exactly_the_limit_then_refuses_with_a_retry_time() {
        let limiter = RateLimiter::new(60, Duration::from_secs(60), 1000);
        for i in 0..60 {
            let d = limiter.check(ip(1));
            assert!(d.allowed, "request {i} must pass");
            assert_eq!(d.remaining, 59 - i);
        }
        let refused = limiter.check(ip(1));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!((59..=60).contains(&refused.retry_after), "{refused:?}");
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(refused.reset_unix >= unix_now + 59 && refused.reset_unix <= unix_now + 61);
        // Another client is not affected.
        assert!(limiter.check(ip(2)).allowed);
    }

    #[test]
    fn refused_requests_do_not_extend_the_window_and_slots_free_after_it() {
        let limiter = RateLimiter::new(2, Duration::from_millis(300), 1000);
        assert!(limiter.check(ip(1)).allowed);
        assert!(limiter.check(ip(1)).allowed);
        assert!(!limiter.check(ip(1)).allowed);
        std::thread::sleep(Duration::from_millis(320));
        assert!(limiter.check(ip(1)).allowed);
    }

    #[test]
    fn peek_does_not_consume() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60), 1000);
        assert_eq!(limiter.peek(ip(7)).remaining, 1);
        assert!(limiter.check(ip(7)).allowed);
        assert!(!limiter.peek(ip(7)).allowed);
    }

    #[test]
    fn a_refund_gives_the_slot_back() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60), 1000);
        assert!(limiter.check(ip(3)).allowed);
        assert!(limiter.check(ip(3)).allowed);
        limiter.refund(ip(3));
        assert_eq!(limiter.peek(ip(3)).remaining, 1);
        assert!(limiter.check(ip(3)).allowed);
        assert!(!limiter.check(ip(3)).allowed);
        limiter.refund(ip(9));
        assert!(limiter.peek(ip(9)).allowed, "refunding an unknown key changes nothing");
    }

    #[test]
    fn key_count_stays_within_the_cap_under_an_address_spray() {
        let cap = 3200;
        let limiter = RateLimiter::new(60, Duration::from_secs(60), cap);
        for n in 0..200_000 {
            limiter.check(ip(n));
        }
        assert!(limiter.len() <= cap, "{} keys held", limiter.len());
    }

    #[test]
    fn sweep_drops_idle_keys() {
        let limiter = RateLimiter::new(5, Duration::from_millis(50), 1000);
        for n in 0..100 {
            limiter.check(ip(n));
        }
        assert_eq!(limiter.len(), 100);
        std::thread::sleep(Duration::from_millis(60));
        limiter.sweep();
        assert!(limiter.is_empty());
    }
}
