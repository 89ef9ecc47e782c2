//! The retry vocabulary both API clients share: the limits ([`RetryPolicy`]), what a failed
//! attempt was ([`Failure`]), what to do next ([`RetryDecision`]) and who is told about a retry
//! ([`RetryObserver`]).
//!
//! Each client classifies its own error into a [`Failure`] and asks [`RetryPolicy::decide`];
//! the decision reads no clock and draws no randomness (the caller passes a uniform jitter
//! sample in `[0, 1)`), so every branch is unit-testable. The clients do not depend on each
//! other: they meet only here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Retry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first one (1 disables retries).
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles for every further attempt.
    pub base_delay: Duration,
    /// The largest backoff.
    pub max_delay: Duration,
    /// The longest server-requested wait worth honouring; a longer one gives up at once.
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

/// What a failed attempt was, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server said when to try again (`Retry-After`, `ratelimit-reset`).
    RetryAfter(Duration),
    /// A transient failure: the request was not sent, or the server failed or rate limited
    /// without saying for how long.
    Transient,
    /// The request may have taken effect (a timeout or a dropped connection after sending).
    MaybeSent,
    /// Repeating the request cannot help.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// The server said when: wait exactly this long, then retry.
    RetryAfter(Duration),
    /// Wait this exponential, jittered delay, then retry.
    Backoff(Duration),
    /// Stop and return the error to the caller.
    GiveUp,
}

impl RetryPolicy {
    /// Decides whether and when to retry after `attempt` (1-based) failed with `failure`.
    ///
    /// - No retry once `attempt` reaches `max_attempts`.
    /// - A [`Failure::RetryAfter`] waits exactly that long, or gives up when the wait exceeds
    ///   `max_retry_after`.
    /// - A [`Failure::Transient`] backs off.
    /// - A [`Failure::MaybeSent`] backs off only when the request is `idempotent`, since a
    ///   retry may apply a non-idempotent change (a post, a note) twice.
    /// - A [`Failure::Permanent`] gives up.
    ///
    /// Backoff is `min(max_delay, base_delay * 2^(attempt-1))` scaled by `0.5 + jitter / 2`
    /// ("equal jitter"), so it never drops below half the exponential value; a `jitter`
    /// outside `[0, 1]` is clamped, and one that is not finite counts as 0.
    pub fn decide(
        &self,
        failure: Failure,
        attempt: u32,
        idempotent: bool,
        jitter: f64,
    ) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        match failure {
            Failure::RetryAfter(wait) if wait <= self.max_retry_after => {
                RetryDecision::RetryAfter(wait)
            }
            Failure::Transient => RetryDecision::Backoff(self.backoff(attempt, jitter)),
            Failure::MaybeSent if idempotent => {
                RetryDecision::Backoff(self.backoff(attempt, jitter))
            }
            Failure::RetryAfter(_) | Failure::MaybeSent | Failure::Permanent => {
                RetryDecision::GiveUp
            }
        }
    }

    /// The jittered backoff after `attempt` (see [`RetryPolicy::decide`]).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full.mul_f64(0.5 + jitter / 2.0)
    }
}

/// Told about every failed attempt a client is about to retry, with its error `E`, so retries
/// and rate limits that the caller never sees (a later attempt succeeded) can be counted.
pub struct RetryObserver<E>(Arc<dyn Fn(&E) + Send + Sync>);

impl<E> RetryObserver<E> {
    /// Wraps `f`, which must be quick: it runs inside the client's retry loop.
    pub fn new(f: impl Fn(&E) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Reports a failed attempt that is about to be retried.
    pub fn retrying(&self, error: &E) {
        (self.0)(error);
    }
}

impl<E> Clone for RetryObserver<E> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<E> fmt::Debug for RetryObserver<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryObserver(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(30),
    };

    #[test]
    fn each_failure_gets_its_decision() {
        let seven = Duration::from_secs(7);
        let decide = |failure, idempotent| P.decide(failure, 1, idempotent, 1.0);
        assert_eq!(
            decide(Failure::RetryAfter(seven), false),
            RetryDecision::RetryAfter(seven)
        );
        let too_long = Failure::RetryAfter(Duration::from_secs(31));
        assert_eq!(decide(too_long, true), RetryDecision::GiveUp);
        let first = RetryDecision::Backoff(Duration::from_millis(100));
        assert_eq!(decide(Failure::Transient, false), first);
        assert_eq!(decide(Failure::MaybeSent, true), first);
        assert_eq!(decide(Failure::MaybeSent, false), RetryDecision::GiveUp);
        assert_eq!(decide(Failure::Permanent, true), RetryDecision::GiveUp);
        let last = P.decide(Failure::RetryAfter(seven), 5, true, 0.0);
        assert_eq!(last, RetryDecision::GiveUp);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        let ms = Duration::from_millis;
        assert_eq!(P.backoff(1, 0.0), ms(50));
        assert_eq!(P.backoff(3, 0.5), ms(300));
        assert_eq!(P.backoff(4, 1.0), ms(800));
        assert_eq!(P.backoff(40, 1.0), ms(1000));
        assert_eq!(P.backoff(1, f64::NAN), ms(50));
        assert_eq!(P.backoff(1, 7.0), ms(100));
    }

    #[test]
    fn observers_see_each_retry_and_print_nothing_of_it() {
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let observer = RetryObserver::new({
            let seen = Arc::clone(&seen);
            move |_: &String| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        observer.clone().retrying(&"boom".to_owned());
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(format!("{observer:?}"), "RetryObserver(..)");
    }
}
