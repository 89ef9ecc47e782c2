//! The retry decision: a pure function of the error, the attempt number and a jitter sample.
//! Its names (`RetryPolicy`, `RetryDecision`, `decide`, `RetryObserver`) are the Slack client's.
//!
//! [`decide`] reads no clock and draws no randomness; the caller passes a uniform sample in
//! `[0, 1)` (the client draws it with `fastrand`). This keeps every branch unit-testable.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after exactly this long, because PagerDuty said so (`ratelimit-reset`).
    RetryAfter(Duration),
    /// Retry after this exponential backoff with jitter.
    Backoff(Duration),
    /// Stop and return the error.
    GiveUp,
}

/// Retry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first one (1 disables retries).
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles for every further attempt.
    pub base_delay: Duration,
    /// The largest backoff.
    pub max_delay: Duration,
    /// The longest server-requested wait worth honouring; longer waits give up instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Decides whether to retry after `attempt` (1-based) failed with `error`.
///
/// - Rate limited (429) with a `ratelimit-reset`: [`RetryDecision::RetryAfter`] that wait (give up if
///   it exceeds `max_retry_after`); without one: backoff.
/// - 408 and 5xx, and [`Error::NotSent`]: backoff.
/// - [`Error::MaybeSent`]: backoff only when the request is `idempotent`, since a retry may
///   apply a non-idempotent change (such as a note) twice.
/// - Any other status, decode errors and invalid requests: give up.
///
/// Backoff is `min(max_delay, base_delay * 2^(attempt-1))` scaled by `0.5 + jitter / 2`
/// ("equal jitter"), so it never drops below half the exponential value.
pub fn decide(
    error: &Error,
    attempt: u32,
    jitter: f64,
    idempotent: bool,
    policy: &RetryPolicy,
) -> RetryDecision {
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    let backoff = || {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = policy.base_delay.saturating_mul(1u32 << exp);
        let capped = raw.min(policy.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        RetryDecision::Backoff(capped.mul_f64(0.5 + jitter / 2.0))
    };
    match error {
        Error::Api {
            status: 429,
            retry_after: Some(wait),
            ..
        } => {
            if *wait > policy.max_retry_after {
                RetryDecision::GiveUp
            } else {
                RetryDecision::RetryAfter(*wait)
            }
        }
        Error::Api { status, .. } if *status == 429 || *status == 408 || *status >= 500 => {
            backoff()
        }
        Error::NotSent { .. } => backoff(),
        Error::MaybeSent { .. } if idempotent => backoff(),
        _ => RetryDecision::GiveUp,
    }
}

/// Told about every failed attempt the client is about to retry, with its error, so retries
/// and rate limits that the caller never sees (a later attempt succeeded) can be counted.
#[derive(Clone)]
pub struct RetryObserver(Arc<dyn Fn(&Error) + Send + Sync>);

impl RetryObserver {
    /// Wraps `f`, which must be quick: it runs inside the client's retry loop.
    pub fn new(f: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn retrying(&self, error: &Error) {
        (self.0)(error);
    }
}

impl std::fmt::Debug for RetryObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryObserver(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Api {
            status,
            code: None,
            message: String::new(),
            retry_after,
        }
    }

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(30),
    };

    #[test]
    fn rate_limit_with_reset_waits_exactly() {
        let e = api(429, Some(Duration::from_secs(7)));
        assert_eq!(
            decide(&e, 1, 0.9, false, &P),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        let too_long = api(429, Some(Duration::from_secs(31)));
        assert_eq!(decide(&too_long, 1, 0.0, true, &P), RetryDecision::GiveUp);
    }

    #[test]
    fn rate_limit_without_headers_backs_off_with_jitter() {
        let e = api(429, None);
        assert_eq!(
            decide(&e, 1, 0.0, false, &P),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        assert_eq!(
            decide(&e, 1, 1.0, false, &P),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
        assert_eq!(
            decide(&e, 3, 0.5, false, &P),
            RetryDecision::Backoff(Duration::from_millis(300))
        );
        assert_eq!(
            decide(&e, 4, 1.0, false, &P),
            RetryDecision::Backoff(Duration::from_millis(800))
        );
        // Capped at max_delay before jitter.
        let capped = RetryPolicy {
            max_delay: Duration::from_millis(500),
            ..P
        };
        assert_eq!(
            decide(&e, 4, 1.0, false, &capped),
            RetryDecision::Backoff(Duration::from_millis(500))
        );
        assert_eq!(
            decide(&e, 4, 0.0, false, &capped),
            RetryDecision::Backoff(Duration::from_millis(250))
        );
    }

    #[test]
    fn server_errors_and_not_sent_retry_client_errors_do_not() {
        for status in [500, 502, 503, 504, 408] {
            assert!(matches!(
                decide(&api(status, None), 1, 0.3, false, &P),
                RetryDecision::Backoff(_)
            ));
        }
        for status in [400, 401, 402, 403, 404, 409, 422] {
            assert_eq!(
                decide(&api(status, None), 1, 0.3, true, &P),
                RetryDecision::GiveUp
            );
        }
        let not_sent = Error::NotSent {
            reason: "refused".into(),
        };
        assert!(matches!(
            decide(&not_sent, 1, 0.3, false, &P),
            RetryDecision::Backoff(_)
        ));
        let decode = Error::Decode {
            status: 200,
            reason: "x".into(),
        };
        assert_eq!(decide(&decode, 1, 0.3, true, &P), RetryDecision::GiveUp);
    }

    #[test]
    fn maybe_sent_retries_only_idempotent_requests() {
        let e = Error::MaybeSent {
            reason: "timeout".into(),
        };
        assert!(matches!(
            decide(&e, 1, 0.3, true, &P),
            RetryDecision::Backoff(_)
        ));
        assert_eq!(decide(&e, 1, 0.3, false, &P), RetryDecision::GiveUp);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let e = api(503, None);
        assert!(matches!(
            decide(&e, 4, 0.3, true, &P),
            RetryDecision::Backoff(_)
        ));
        assert_eq!(decide(&e, 5, 0.3, true, &P), RetryDecision::GiveUp);
        let rl = api(429, Some(Duration::from_secs(1)));
        assert_eq!(decide(&rl, 5, 0.3, true, &P), RetryDecision::GiveUp);
    }

    #[test]
    fn odd_samples_are_clamped() {
        let e = api(500, None);
        assert_eq!(
            decide(&e, 1, f64::NAN, true, &P),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        assert_eq!(
            decide(&e, 1, 7.0, true, &P),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
    }
}
