//! Rate limits (S9, S12, S15): GCRA over named keys.
//!
//! One limiter type for the whole application; today it keeps its state in process. GCRA keeps a
//! single "theoretical arrival time" per key, which a shared backend can hold in one value too.

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

#[derive(Clone, Default)]
pub struct RateLimiter {
    state: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Keys with no recent traffic are dropped once the table grows past this.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request against `key`; `Err(retry_after)` when over the quota.
    pub fn check(&self, key: &str, quota: Quota) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("rate limiter lock");
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

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new();
        let quota = Quota::per_minute(6, 3);
        for _ in 0..3 {
            assert!(limiter.check("k", quota).is_ok());
        }
        let wait = limiter.check("k", quota).unwrap_err();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10), "{wait:?}");
        assert!(limiter.check("other", quota).is_ok());
    }
}
