//! The retry decision: a pure function of the error, the attempt number and a jitter sample.
//! The vocabulary (`RetryPolicy`, `Failure`, `RetryDecision`, `RetryObserver`) is
//! [`ids::retry`]'s, shared with the PagerDuty client; this module only says which [`Failure`]
//! each Slack error is.

pub use ids::retry::{Failure, RetryDecision, RetryPolicy};

use crate::Error;

/// Told about every failed attempt the client is about to retry (see [`ids::retry::RetryObserver`]).
pub type RetryObserver = ids::retry::RetryObserver<Error>;

/// What a failed attempt was, as far as retrying goes: an error that is not
/// [retryable](Error::is_retryable) is [`Failure::Permanent`]; a `MaybeSent` is
/// [`Failure::MaybeSent`]; one that says when (`Retry-After`, or the client's own limiter) is
/// [`Failure::RetryAfter`]; any other is [`Failure::Transient`].
pub fn failure(error: &Error) -> Failure {
    if !error.is_retryable() {
        return Failure::Permanent;
    }
    if matches!(error, Error::MaybeSent { .. }) {
        return Failure::MaybeSent;
    }
    match error.retry_after() {
        Some(wait) => Failure::RetryAfter(wait),
        None => Failure::Transient,
    }
}

/// Decides whether and when to retry: the policy's [`RetryPolicy::decide`] for the error's
/// [`failure`].
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
    policy.decide(failure(error), attempt, idempotent, jitter)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
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
