//! The retry decision: a pure function of the error, the attempt number and a jitter sample.
//! Its names (`RetryPolicy`, `RetryDecision`, `decide`, `RetryObserver`) are the PagerDuty client's.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// How persistently the client retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 disables retries).
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles per attempt.
    pub base_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` worth waiting for; a longer one gives up at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Slack said when: wait exactly this long (only the rate-limited key waits).
    RetryAfter(Duration),
    /// Wait this exponential, jittered delay, then retry.
    Backoff(Duration),
    /// Return the error to the caller.
    GiveUp,
}

/// Decides whether and when to retry.
///
/// `attempt` counts the attempts made so far (1 after the first failure). `idempotent` says
/// whether repeating the call is harmless even if the first one took effect; a `MaybeSent`
/// failure of a non-idempotent call (such as `chat.postMessage`) is never retried, because it
/// could post twice. `jitter` is a sample in `[0, 1)`; the backoff is scaled into
/// `[½·d, d)` with it (equal jitter).
pub fn decide(
    error: &Error,
    attempt: u32,
    idempotent: bool,
    policy: &RetryPolicy,
    jitter: f64,
) -> RetryDecision {
    if attempt >= policy.max_attempts || !error.is_retryable() {
        return RetryDecision::GiveUp;
    }
    if matches!(error, Error::MaybeSent { .. }) && !idempotent {
        return RetryDecision::GiveUp;
    }
    if let Some(wait) = error.retry_after() {
        return if wait <= policy.max_retry_after {
            RetryDecision::RetryAfter(wait)
        } else {
            RetryDecision::GiveUp
        };
    }
    let exponent = attempt.saturating_sub(1).min(20);
    let full = policy
        .base_backoff
        .saturating_mul(1 << exponent)
        .min(policy.max_backoff);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    RetryDecision::Backoff(full.mul_f64(0.5 + jitter / 2.0))
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

    fn api(status: u16, code: Option<&str>, retry_after: Option<u64>) -> Error {
        Error::Api {
            method: "chat.postMessage",
            status,
            code: code.map(str::to_owned),
            message: None,
            retry_after: retry_after.map(Duration::from_secs),
            needed: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let e = api(429, Some("ratelimited"), Some(7));
        assert_eq!(
            decide(&e, 1, false, &policy(), 0.9),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            decide(&api(429, None, Some(31)), 1, true, &policy(), 0.0),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn missing_retry_after_backs_off_exponentially_with_jitter() {
        let e = api(429, None, None);
        let p = policy();
        assert_eq!(
            decide(&e, 1, false, &p, 0.0),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        assert_eq!(
            decide(&e, 2, false, &p, 0.0),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
        assert_eq!(
            decide(&e, 3, false, &p, 0.5),
            RetryDecision::Backoff(Duration::from_millis(300))
        );
        let big = RetryPolicy {
            max_attempts: 40,
            ..p
        };
        assert_eq!(
            decide(&e, 30, false, &big, 0.999_999),
            RetryDecision::Backoff(Duration::from_millis(1000).mul_f64(0.5 + 0.999_999 / 2.0))
        );
        assert_eq!(
            decide(&e, 2, false, &big, f64::NAN),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
    }

    #[test]
    fn server_errors_and_transient_codes_retry() {
        let p = policy();
        for e in [
            api(500, None, None),
            api(503, Some("service_unavailable"), None),
            api(200, Some("internal_error"), None),
            api(200, Some("ratelimited"), None),
        ] {
            assert!(
                matches!(decide(&e, 1, false, &p, 0.0), RetryDecision::Backoff(_)),
                "{e}"
            );
        }
    }

    #[test]
    fn permanent_errors_give_up_immediately() {
        let p = policy();
        for code in [
            "channel_not_found",
            "not_in_channel",
            "is_archived",
            "invalid_auth",
            "missing_scope",
            "expired_trigger_id",
        ] {
            let e = api(200, Some(code), None);
            assert!(e.is_permanent() && !e.is_retryable(), "{code}");
            assert_eq!(
                decide(&e, 1, true, &p, 0.0),
                RetryDecision::GiveUp,
                "{code}"
            );
        }
        let decode = Error::Decode {
            method: "auth.test",
            status: 200,
            reason: "bad".into(),
        };
        assert_eq!(decide(&decode, 1, true, &p, 0.0), RetryDecision::GiveUp);
    }

    #[test]
    fn attempts_are_bounded() {
        let e = api(500, None, None);
        assert_eq!(decide(&e, 4, true, &policy(), 0.0), RetryDecision::GiveUp);
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(decide(&e, 1, true, &once, 0.0), RetryDecision::GiveUp);
    }

    #[test]
    fn maybe_sent_retries_only_idempotent_calls() {
        let e = Error::MaybeSent {
            method: "chat.postMessage",
            reason: "timed out".into(),
        };
        assert!(e.was_sent());
        assert_eq!(decide(&e, 1, false, &policy(), 0.0), RetryDecision::GiveUp);
        assert_eq!(
            decide(&e, 1, true, &policy(), 0.0),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        let not_sent = Error::NotSent {
            method: "chat.postMessage",
            reason: "connection refused".into(),
        };
        assert!(!not_sent.was_sent());
        assert_eq!(
            decide(&not_sent, 1, false, &policy(), 0.0),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
    }
}
