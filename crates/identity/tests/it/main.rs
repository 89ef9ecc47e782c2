//! The integration tests of `identity`, one module per former test binary, linked once.

mod clients;
mod mapping;
mod policy;
mod resolver;
mod trigger;

use std::time::Duration;

use ids::Timestamp;
use time::macros::datetime;

/// The tests' starting time, 2026-11-24 12:00 UTC.
const T0: Timestamp =
    Timestamp::from_millis(datetime!(2026-11-24 12:00 UTC).unix_timestamp() * 1000);

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn minutes(n: u64) -> Duration {
    seconds(n * 60)
}

fn hours(n: u64) -> Duration {
    minutes(n * 60)
}
