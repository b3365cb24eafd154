//! Rate limits (S9, S12, S15): GCRA over named keys.
//!
//! One limiter type for the whole application. GCRA keeps a single "theoretical arrival time" per
//! key, so the state fits in one value: in process (the default) or in Redis when
//! `BURNRATE_REDIS_URL` is set, where one Lua script reads and moves it atomically with the
//! server's clock — instances with skewed clocks still share one limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `burst` requests at once, refilled at one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub interval: Duration,
    pub burst: u32,
}

impl Quota {
    pub fn per_minute(rate: u32, burst: u32) -> Self {
        Self { interval: Duration::from_secs(60) / rate.max(1), burst: burst.max(1) }
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    local: Arc<Mutex<HashMap<String, Instant>>>,
    shared: Option<Shared>,
}

/// The limiter's state in Redis.
#[derive(Clone)]
struct Shared {
    connection: redis::aio::ConnectionManager,
    script: Arc<redis::Script>,
}

/// GCRA in one step. KEYS[1]: the key; ARGV[1]: interval (µs); ARGV[2]: burst. Returns 0 when
/// the request may go, else how many µs until it may.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local allowance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > allowance then
  return math.max(1, ahead - allowance)
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return 0
";

/// Keys in Redis are prefixed so that a shared server can hold other things too.
const PREFIX: &str = "burnrate:rate:";

/// Keys with no recent traffic are dropped once the table grows past this.
const PRUNE_AT: usize = 10_000;

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// A limiter whose state lives in this process.
    pub fn new() -> Self {
        Self { local: Arc::default(), shared: None }
    }

    /// A limiter shared by every instance using the Redis server at `url`
    /// (`redis://[:password@]host:port[/db]`, or `rediss://` for TLS).
    pub async fn redis(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("BURNRATE_REDIS_URL: {e}"))?;
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("BURNRATE_REDIS_URL: cannot reach Redis: {e}"))?;
        Ok(Self {
            local: Arc::default(),
            shared: Some(Shared { connection, script: Arc::new(redis::Script::new(GCRA)) }),
        })
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Counts one request against `key`; `Err(retry_after)` when over the quota. When Redis does
    /// not answer, this instance's own count decides (limits hold per instance, never vanish).
    pub async fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let checked = self.check_anywhere(key, quota).await;
        if checked.is_err() {
            // Named by the key's kind (`login-ip`, `api-key`, …), never by whom it counts.
            let limit = key.split_once(':').map_or("other", |(kind, _)| kind).to_owned();
            metrics::counter!("burnrate_rate_limit_refusals_total", "limit" => limit).increment(1);
        }
        checked
    }

    async fn check_anywhere(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let mut connection = shared.connection.clone();
            let answer: redis::RedisResult<i64> = shared
                .script
                .key(format!("{PREFIX}{key}"))
                .arg(quota.interval.as_micros() as i64)
                .arg(i64::from(quota.burst))
                .invoke_async(&mut connection)
                .await;
            match answer {
                Ok(0) => return Ok(()),
                Ok(wait_us) => return Err(Duration::from_micros(wait_us.unsigned_abs())),
                Err(e) => tracing::warn!(error = %e, "the shared rate limiter is unreachable; limiting per instance"),
            }
        }
        self.check_local(key, quota)
    }

    fn check_local(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.local.lock().expect("rate limiter lock");
        if state.len() >= PRUNE_AT {
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + quota.interval;
        let allowance = quota.interval * quota.burst;
        if new_tat - now > allowance {
            return Err(new_tat - now - allowance);
        }
        state.insert(key.to_owned(), new_tat);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new();
        let quota = Quota::per_minute(6, 3);
        for _ in 0..3 {
            assert!(limiter.check("k", quota).await.is_ok());
        }
        let wait = limiter.check("k", quota).await.unwrap_err();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10), "{wait:?}");
        assert!(limiter.check("other", quota).await.is_ok());
    }
}
