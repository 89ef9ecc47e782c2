//! A token bucket for PagerDuty's per-token request limit; pure, with `now` passed in.
//!
//! PagerDuty allows 960 requests per minute per token. The bucket refills at `per_minute / 60`
//! tokens per second up to `burst` tokens. After a 429, [`TokenBucket::block_for`] stops every
//! caller until the `ratelimit-reset` instant, not just the one that was refused.

use std::time::{Duration, Instant};

/// PagerDuty's documented limit per token.
pub const PAGERDUTY_PER_MINUTE: u32 = 960;

/// A token bucket. It never reads the clock: every method takes `now`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket allowing `per_minute` requests per minute with bursts of up to `burst`
    /// (both at least 1).
    pub fn new(per_minute: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            tokens: burst,
            last: now,
            blocked_until: None,
        }
    }

    /// PagerDuty's default: 960/min with bursts of 60.
    pub fn pagerduty(now: Instant) -> Self {
        Self::new(PAGERDUTY_PER_MINUTE, 60, now)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if now > self.last {
            self.last = now;
        }
    }

    /// Takes one token, or says how long to wait before asking again.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }

    /// Blocks every acquisition for `wait` from `now` (after a 429) and empties the bucket.
    pub fn block_for(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
        self.refill(now);
        self.tokens = 0.0;
    }

    /// Tokens currently available (after refilling to `now`).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }
}

#[cfg(test)]
// The tests need a real `Instant` as the base of their simulated time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_waits_for_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(60, 3, t0);
        for _ in 0..3 {
            assert_eq!(b.try_acquire(t0), Ok(()));
        }
        let wait = b.try_acquire(t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(b.try_acquire(t0 + Duration::from_millis(500)).is_err());
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn sustained_rate_is_per_minute() {
        let t0 = Instant::now();
        let mut b = TokenBucket::pagerduty(t0);
        let mut granted = 0;
        // Ask every 10 ms for two minutes.
        for step in 0..12_000u64 {
            if b.try_acquire(t0 + Duration::from_millis(step * 10)).is_ok() {
                granted += 1;
            }
        }
        // 60 burst + 960/min * 2 min (give or take the last partial token).
        assert!((1979..=1980).contains(&granted), "{granted}");
    }

    #[test]
    fn block_for_stops_everyone_until_reset() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(960, 60, t0);
        b.block_for(t0, Duration::from_secs(5));
        assert_eq!(
            b.try_acquire(t0 + Duration::from_secs(2)),
            Err(Duration::from_secs(3))
        );
        // A shorter block does not shorten the longer one.
        b.block_for(t0, Duration::from_secs(1));
        assert!(b.try_acquire(t0 + Duration::from_secs(4)).is_err());
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(6)), Ok(()));
    }

    #[test]
    fn never_exceeds_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(960, 10, t0);
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 10.0);
    }
}
