//! The retry decision: a pure function of the error, the attempt number and a jitter sample.
//! The vocabulary (`RetryPolicy`, `Failure`, `RetryDecision`, `RetryObserver`) is
//! [`ids::retry`]'s, shared with the Slack client; this module only says which [`Failure`]
//! each PagerDuty error is.
//!
//! [`decide`] reads no clock and draws no randomness; the caller passes a uniform sample in
//! `[0, 1)` (the client draws it with `fastrand`). This keeps every branch unit-testable.

pub use ids::retry::{Failure, RetryDecision, RetryPolicy};

use crate::Error;

/// Told about every failed attempt the client is about to retry (see [`ids::retry::RetryObserver`]).
pub type RetryObserver = ids::retry::RetryObserver<Error>;

/// What a failed attempt was, as far as retrying goes.
///
/// - Rate limited (429) with a `ratelimit-reset` is a [`Failure::RetryAfter`] of that wait.
/// - Rate limited without one, 408 and 5xx, and [`Error::NotSent`] are transient.
/// - [`Error::MaybeSent`] is [`Failure::MaybeSent`].
/// - Any other status, decode errors and invalid requests are permanent.
pub fn failure(error: &Error) -> Failure {
    match error {
        Error::Api {
            status: 429,
            retry_after: Some(wait),
            ..
        } => Failure::RetryAfter(*wait),
        Error::Api { status, .. } if *status == 429 || *status == 408 || *status >= 500 => {
            Failure::Transient
        }
        Error::NotSent { .. } => Failure::Transient,
        Error::MaybeSent { .. } => Failure::MaybeSent,
        _ => Failure::Permanent,
    }
}

/// Decides whether to retry after `attempt` (1-based) failed with `error`: the policy's
/// [`RetryPolicy::decide`] for the error's [`failure`]. A [`Error::MaybeSent`] is retried only
/// when the request is `idempotent`, since a retry may apply a non-idempotent change (such as
/// a note) twice.
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
            decide(&e, 1, false, &P, 0.9),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        let too_long = api(429, Some(Duration::from_secs(31)));
        assert_eq!(decide(&too_long, 1, true, &P, 0.0), RetryDecision::GiveUp);
    }

    #[test]
    fn rate_limit_without_headers_backs_off_with_jitter() {
        let e = api(429, None);
        assert_eq!(
            decide(&e, 1, false, &P, 0.0),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        assert_eq!(
            decide(&e, 1, false, &P, 1.0),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
        assert_eq!(
            decide(&e, 3, false, &P, 0.5),
            RetryDecision::Backoff(Duration::from_millis(300))
        );
        assert_eq!(
            decide(&e, 4, false, &P, 1.0),
            RetryDecision::Backoff(Duration::from_millis(800))
        );
        // Capped at max_delay before jitter.
        let capped = RetryPolicy {
            max_delay: Duration::from_millis(500),
            ..P
        };
        assert_eq!(
            decide(&e, 4, false, &capped, 1.0),
            RetryDecision::Backoff(Duration::from_millis(500))
        );
        assert_eq!(
            decide(&e, 4, false, &capped, 0.0),
            RetryDecision::Backoff(Duration::from_millis(250))
        );
    }

    #[test]
    fn server_errors_and_not_sent_retry_client_errors_do_not() {
        for status in [500, 502, 503, 504, 408] {
            assert!(matches!(
                decide(&api(status, None), 1, false, &P, 0.3),
                RetryDecision::Backoff(_)
            ));
        }
        for status in [400, 401, 402, 403, 404, 409, 422] {
            assert_eq!(
                decide(&api(status, None), 1, true, &P, 0.3),
                RetryDecision::GiveUp
            );
        }
        let not_sent = Error::NotSent {
            reason: "refused".into(),
        };
        assert!(matches!(
            decide(&not_sent, 1, false, &P, 0.3),
            RetryDecision::Backoff(_)
        ));
        let decode = Error::Decode {
            status: 200,
            reason: "x".into(),
        };
        assert_eq!(decide(&decode, 1, true, &P, 0.3), RetryDecision::GiveUp);
    }

    #[test]
    fn maybe_sent_retries_only_idempotent_requests() {
        let e = Error::MaybeSent {
            reason: "timeout".into(),
        };
        assert!(matches!(
            decide(&e, 1, true, &P, 0.3),
            RetryDecision::Backoff(_)
        ));
        assert_eq!(decide(&e, 1, false, &P, 0.3), RetryDecision::GiveUp);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let e = api(503, None);
        assert!(matches!(
            decide(&e, 4, true, &P, 0.3),
            RetryDecision::Backoff(_)
        ));
        assert_eq!(decide(&e, 5, true, &P, 0.3), RetryDecision::GiveUp);
        let rl = api(429, Some(Duration::from_secs(1)));
        assert_eq!(decide(&rl, 5, true, &P, 0.3), RetryDecision::GiveUp);
    }

    #[test]
    fn odd_samples_are_clamped() {
        let e = api(500, None);
        assert_eq!(
            decide(&e, 1, true, &P, f64::NAN),
            RetryDecision::Backoff(Duration::from_millis(50))
        );
        assert_eq!(
            decide(&e, 1, true, &P, 7.0),
            RetryDecision::Backoff(Duration::from_millis(100))
        );
    }
}
