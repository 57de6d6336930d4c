//! The rate limiter as the ingest guard sees it: in process, or in Redis so that every instance
//! of a deployment counts against the same per-IP limit (SPEC §2.4 "With `REDIS_URL`, counters
//! are shared by all instances").
//!
//! The Redis limiter is the same exact sliding log as the in-process one: one sorted set per
//! client IP whose scores are request times, trimmed, counted and extended by one Lua script, so
//! the check and the increment are atomic across instances. Times come from the Redis server's
//! clock (`TIME`), so instances with skewed clocks still agree.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use super::client_ip::limit_key;
use super::rate_limit::{Decision, RateLimiter};

/// Longest a limit check may wait for Redis before the request is refused with a 503.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Trims the log to the window, counts it, records this request when there is room (and
/// `ARGV[3]` is 1), and answers `{allowed, count, oldest score or -1, now}` in milliseconds.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  allowed = 1
  if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
    count = count + 1
  end
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local oldest_ms = -1
if oldest[2] then oldest_ms = tonumber(oldest[2]) end
return {allowed, count, oldest_ms, now}
";

/// Why a limit could not be checked: the request gets a 503 with this message.
#[derive(Debug, Clone)]
pub struct LimiterUnavailable(pub String);

pub enum Limiter {
    Local(RateLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    pub fn limit(&self) -> u32 {
        match self {
            Limiter::Local(l) => l.limit(),
            Limiter::Redis(r) => r.limit,
        }
    }

    pub fn window(&self) -> Duration {
        match self {
            Limiter::Local(l) => l.window(),
            Limiter::Redis(r) => r.window,
        }
    }

    /// Counts a request from `ip` if the window has room.
    pub async fn check(&self, ip: IpAddr) -> Result<Decision, LimiterUnavailable> {
        let ip = limit_key(ip);
        match self {
            Limiter::Local(l) => Ok(l.check(ip)),
            Limiter::Redis(r) => r.decide(ip, true).await,
        }
    }

    /// The state for `ip` without counting a request.
    pub async fn peek(&self, ip: IpAddr) -> Result<Decision, LimiterUnavailable> {
        let ip = limit_key(ip);
        match self {
            Limiter::Local(l) => Ok(l.peek(ip)),
            Limiter::Redis(r) => r.decide(ip, false).await,
        }
    }

    /// Takes back the most recent request counted for `ip`.
    pub async fn refund(&self, ip: IpAddr) -> Result<(), LimiterUnavailable> {
        let ip = limit_key(ip);
        match self {
            Limiter::Local(l) => {
                l.refund(ip);
                Ok(())
            }
            Limiter::Redis(r) => r.refund(ip).await,
        }
    }

    /// Frees idle in-process keys (Redis expires its own).
    pub fn sweep(&self) {
        if let Limiter::Local(l) = self {
            l.sweep();
        }
    }
}

pub struct RedisLimiter {
    connection: ConnectionManager,
    /// What is limited (`ingest`, `login`): part of every key.
    scope: &'static str,
    script: redis::Script,
    prefix: String,
    limit: u32,
    window: Duration,
    /// Makes each log entry unique (two requests in the same millisecond are two entries).
    sequence: AtomicU64,
    instance: String,
}

impl RedisLimiter {
    /// Connects to Redis; fails when it does not answer, so a misconfigured deployment stops at
    /// start-up instead of refusing every request.
    pub async fn connect(url: &str, prefix: &str, limit: u32, window: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL is not usable: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection =
            tokio::time::timeout(REDIS_TIMEOUT * 2, redis::aio::ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| "Redis did not answer in time".to_string())?
                .map_err(|e| format!("cannot connect to Redis: {e}"))?;
        Ok(Self {
            connection,
            scope: "ratelimit",
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_string(),
            limit,
            window,
            sequence: AtomicU64::new(0),
            instance: crate::security::random_hex(6),
        })
    }

    /// Another limit on the same connection, with its own keys (`scope`).
    pub fn sibling(&self, scope: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            connection: self.connection.clone(),
            scope,
            script: self.script.clone(),
            prefix: self.prefix.clone(),
            limit,
            window,
            sequence: AtomicU64::new(0),
            instance: self.instance.clone(),
        }
    }

    fn key(&self, ip: IpAddr) -> String {
        format!("{}{}:{ip}", self.prefix, self.scope)
    }

    /// Removes the latest entry of `ip`'s log.
    async fn refund(&self, ip: IpAddr) -> Result<(), LimiterUnavailable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("ZPOPMAX").arg(self.key(ip)).clone();
        tokio::time::timeout(REDIS_TIMEOUT, command.query_async::<redis::Value>(&mut connection))
            .await
            .map_err(|_| LimiterUnavailable("Redis did not answer in time".into()))?
            .map_err(|e| LimiterUnavailable(format!("Redis: {e}")))?;
        Ok(())
    }

    async fn decide(&self, ip: IpAddr, consume: bool) -> Result<Decision, LimiterUnavailable> {
        let key = self.key(ip);
        let member = format!("{}-{}", self.instance, self.sequence.fetch_add(1, Ordering::Relaxed));
        let window_ms = self.window.as_millis() as u64;
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(&key);
        invocation.arg(self.limit).arg(window_ms).arg(u8::from(consume)).arg(&member);
        let answer =
            tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async::<(i64, i64, i64, i64)>(&mut connection))
                .await
                .map_err(|_| LimiterUnavailable("Redis did not answer in time".into()))?
                .map_err(|e| LimiterUnavailable(format!("Redis: {e}")))?;
        let (allowed, count, oldest, now) = answer;
        let now = now.max(0) as u64;
        // A slot frees when the oldest counted request leaves the window; none counted: now.
        let reset_at = if oldest >= 0 { oldest as u64 + window_ms } else { now };
        let unix_now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        Ok(Decision::new(allowed == 1, self.limit, count.max(0) as u32, reset_at.saturating_sub(now), unix_now_ms))
    }
}
