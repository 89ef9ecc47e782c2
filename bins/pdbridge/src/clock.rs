//! The binary's one clock: the only module that reads the system's wall-clock or monotonic
//! time. The workspace `clippy.toml` bans `SystemTime::now` and `Instant::now` everywhere else,
//! so every other module takes the time from here or from an injected [`Clock`].
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ids::Timestamp;

/// A source of the current wall-clock time, injectable so tests can pin it.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system's wall clock as a [`Clock`].
pub fn system() -> Clock {
    Arc::new(now)
}

/// The system's current wall-clock time (the Unix epoch if the clock is set before it).
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(millis)
}

/// The monotonic clock, for measuring how long something took.
pub fn instant() -> std::time::Instant {
    std::time::Instant::now()
}

/// Tokio's monotonic clock, for deadlines of tokio timers.
pub fn tokio_instant() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
