//! A pure Web API rate limiter keyed by (workspace, method[, channel]); the clock is passed in.
//!
//! Slack applies limits "per API method per workspace per app" in tiers (1+, 20+, 50+, 100+ per
//! minute) and lets `chat.postMessage` post about one message per second per channel. Each key
//! is a token bucket; a 429 blocks only its own key for exactly `Retry-After`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ids::{ChannelId, SlackTeamId};

/// A Slack rate-limit tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// 1+ per minute.
    Tier1,
    /// 20+ per minute.
    Tier2,
    /// 50+ per minute.
    Tier3,
    /// 100+ per minute.
    Tier4,
    /// One per second per channel with a small burst (`chat.postMessage`).
    PerChannel,
}

impl Tier {
    /// The documented minimum per minute for the numbered tiers (60 for `PerChannel`).
    pub fn per_minute(self) -> u32 {
        match self {
            Self::Tier1 => 1,
            Self::Tier2 => 20,
            Self::Tier3 => 50,
            Self::Tier4 => 100,
            Self::PerChannel => 60,
        }
    }
}

/// The tier of a Web API method (SLACK-REF). "Special" methods other than `chat.postMessage`
/// (`chat.getPermalink`, `auth.test`) and unknown methods get Tier 3, the conservative choice.
pub fn tier(method: &str) -> Tier {
    match method {
        "chat.postMessage" => Tier::PerChannel,
        "usergroups.users.update" | "usergroups.users.list" => Tier::Tier2,
        "chat.postEphemeral" | "views.open" | "views.update" | "views.push" | "users.info" => {
            Tier::Tier4
        }
        _ => Tier::Tier3,
    }
}

/// What a bucket is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LimitKey {
    /// The workspace.
    pub workspace: SlackTeamId,
    /// The Web API method.
    pub method: &'static str,
    /// The channel, only for per-channel methods.
    pub channel: Option<ChannelId>,
}

impl LimitKey {
    /// The key of a call; `channel` is kept only when the method is limited per channel.
    pub fn new(workspace: &SlackTeamId, method: &'static str, channel: Option<&ChannelId>) -> Self {
        let channel = match tier(method) {
            Tier::PerChannel => channel.cloned(),
            _ => None,
        };
        Self {
            workspace: workspace.clone(),
            method,
            channel,
        }
    }
}

/// Limiter settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterConfig {
    /// The interval between posts in one channel.
    pub per_channel_interval: Duration,
    /// How many posts one channel may take at once.
    pub per_channel_burst: u32,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            per_channel_interval: Duration::from_secs(1),
            per_channel_burst: 3,
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    interval: Duration,
    tokens: f64,
    updated: Instant,
    blocked_until: Option<Instant>,
}

/// Token buckets per key. Pure: every call takes `now`.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    config: LimiterConfig,
    buckets: BTreeMap<LimitKey, Bucket>,
}

impl RateLimiter {
    /// A limiter with the given settings.
    pub fn new(config: LimiterConfig) -> Self {
        Self {
            config,
            buckets: BTreeMap::new(),
        }
    }

    fn bucket(&mut self, key: &LimitKey, now: Instant) -> &mut Bucket {
        let config = &self.config;
        self.buckets.entry(key.clone()).or_insert_with(|| {
            let (capacity, interval) = match tier(key.method) {
                Tier::PerChannel => (
                    f64::from(config.per_channel_burst.max(1)),
                    config.per_channel_interval,
                ),
                t => (
                    f64::from(t.per_minute()),
                    Duration::from_secs(60) / t.per_minute(),
                ),
            };
            Bucket {
                capacity,
                interval,
                tokens: capacity,
                updated: now,
                blocked_until: None,
            }
        })
    }

    /// Takes a slot for `key` at `now`, or says how long to wait before asking again.
    pub fn try_acquire(&mut self, key: &LimitKey, now: Instant) -> Result<(), Duration> {
        let bucket = self.bucket(key, now);
        if let Some(until) = bucket.blocked_until {
            if until > now {
                return Err(until - now);
            }
            bucket.blocked_until = None;
        }
        let elapsed = now.saturating_duration_since(bucket.updated);
        if !bucket.interval.is_zero() {
            bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() / bucket.interval.as_secs_f64())
                .min(bucket.capacity);
        } else {
            bucket.tokens = bucket.capacity;
        }
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(bucket.interval.mul_f64(1.0 - bucket.tokens))
        }
    }

    /// Blocks `key` (and only `key`) for exactly `retry_after` from `now`, after a 429.
    pub fn penalize(&mut self, key: &LimitKey, now: Instant, retry_after: Duration) {
        let bucket = self.bucket(key, now);
        let until = now + retry_after;
        bucket.blocked_until = Some(bucket.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
// The tests need a real `Instant` as the base of their simulated time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn key(method: &'static str, channel: &str) -> LimitKey {
        LimitKey::new(
            &SlackTeamId::new("T1"),
            method,
            Some(&ChannelId::new(channel)),
        )
    }

    #[test]
    fn tiers_follow_slack_reference() {
        assert_eq!(tier("chat.postMessage"), Tier::PerChannel);
        assert_eq!(tier("chat.update"), Tier::Tier3);
        assert_eq!(tier("chat.postEphemeral"), Tier::Tier4);
        assert_eq!(tier("users.info"), Tier::Tier4);
        assert_eq!(tier("users.lookupByEmail"), Tier::Tier3);
        assert_eq!(tier("conversations.info"), Tier::Tier3);
        assert_eq!(tier("views.open"), Tier::Tier4);
        assert_eq!(key("chat.update", "C1").channel, None);
        assert_eq!(
            key("chat.postMessage", "C1").channel,
            Some(ChannelId::new("C1"))
        );
    }

    #[test]
    fn post_message_is_one_per_second_per_channel_after_a_burst() {
        let mut l = RateLimiter::new(LimiterConfig::default());
        let t0 = Instant::now();
        let a = key("chat.postMessage", "CA");
        for _ in 0..3 {
            assert_eq!(l.try_acquire(&a, t0), Ok(()));
        }
        assert_eq!(l.try_acquire(&a, t0), Err(Duration::from_secs(1)));
        // Another channel is independent.
        assert_eq!(l.try_acquire(&key("chat.postMessage", "CB"), t0), Ok(()));
        assert_eq!(
            l.try_acquire(&a, t0 + Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );
        assert_eq!(l.try_acquire(&a, t0 + Duration::from_secs(1)), Ok(()));
        assert!(l.try_acquire(&a, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn tier3_allows_fifty_per_minute() {
        let mut l = RateLimiter::new(LimiterConfig::default());
        let t0 = Instant::now();
        let k = key("chat.update", "ignored");
        for _ in 0..50 {
            assert_eq!(l.try_acquire(&k, t0), Ok(()));
        }
        assert_eq!(l.try_acquire(&k, t0), Err(Duration::from_millis(1200)));
        assert_eq!(l.try_acquire(&k, t0 + Duration::from_millis(1200)), Ok(()));
        // Other methods and workspaces keep flowing.
        assert_eq!(l.try_acquire(&key("users.info", "x"), t0), Ok(()));
        let other = LimitKey::new(&SlackTeamId::new("T2"), "chat.update", None);
        assert_eq!(l.try_acquire(&other, t0), Ok(()));
    }

    #[test]
    fn penalty_blocks_exactly_that_key_for_retry_after() {
        let mut l = RateLimiter::new(LimiterConfig::default());
        let t0 = Instant::now();
        let a = key("chat.postMessage", "CA");
        let b = key("chat.postMessage", "CB");
        l.penalize(&a, t0, Duration::from_secs(5));
        assert_eq!(l.try_acquire(&a, t0), Err(Duration::from_secs(5)));
        assert_eq!(
            l.try_acquire(&a, t0 + Duration::from_millis(4999)),
            Err(Duration::from_millis(1))
        );
        assert_eq!(l.try_acquire(&b, t0), Ok(()));
        assert_eq!(l.try_acquire(&a, t0 + Duration::from_secs(5)), Ok(()));
        // A shorter later penalty never shortens a longer one.
        l.penalize(&b, t0, Duration::from_secs(10));
        l.penalize(&b, t0, Duration::from_secs(1));
        assert_eq!(l.try_acquire(&b, t0), Err(Duration::from_secs(10)));
    }
}
