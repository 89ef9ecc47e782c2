//! The crate's single error type.

use std::time::Duration;

use crate::api::{ErrorClass, classify_error};

/// Everything that can go wrong in this crate. Never contains a token or a request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An inbound payload (interaction, slash command, Socket Mode frame) could not be parsed.
    #[error("invalid Slack payload: {0}")]
    Payload(String),
    /// The client configuration is unusable.
    #[error("invalid slack-client configuration: {0}")]
    Config(String),
    /// The request certainly did not reach Slack (connect failure, bad request line).
    #[error("Slack {method} request was not sent: {reason}")]
    NotSent {
        /// The Web API method (or `response_url`).
        method: &'static str,
        /// What failed.
        reason: String,
    },
    /// The request was not sent because this client's own rate limiter would have made it wait
    /// longer than `max_queue_wait`. It is a delay, not a failure: retry after `wait`.
    #[error("Slack {method} request was not sent: rate limited locally for another {wait:?}")]
    RateLimitedLocally {
        /// The Web API method.
        method: &'static str,
        /// How long until the rate-limit key has room again.
        wait: Duration,
    },
    /// The request may have reached Slack (timeout, connection reset after writing).
    #[error("Slack {method} request may have been sent: {reason}")]
    MaybeSent {
        /// The Web API method.
        method: &'static str,
        /// What failed.
        reason: String,
    },
    /// Slack answered with a non-2xx status or `ok: false`.
    #[error(
        "Slack {method} failed with HTTP {status}: {}{}",
        code.as_deref().unwrap_or("no error code"),
        message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Api {
        /// The Web API method.
        method: &'static str,
        /// The HTTP status (often 200 for `ok: false`).
        status: u16,
        /// The `error` code, such as `channel_not_found`.
        code: Option<String>,
        /// `response_metadata.messages`, joined.
        message: Option<String>,
        /// The `Retry-After` delay of a 429.
        retry_after: Option<Duration>,
        /// For `missing_scope`: the scope(s) the token lacks.
        needed: Option<String>,
    },
    /// Slack answered but the body could not be decoded.
    #[error("Slack {method} answered HTTP {status} with an undecodable body: {reason}")]
    Decode {
        /// The Web API method.
        method: &'static str,
        /// The HTTP status.
        status: u16,
        /// The decoder's complaint.
        reason: String,
    },
}

impl Error {
    /// Whether the failure is transient: not sent, maybe sent, HTTP 429/5xx, or a retryable code.
    ///
    /// A `MaybeSent` retry may duplicate a non-idempotent call; [`crate::retry::decide`] accounts
    /// for that.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotSent { .. } | Self::MaybeSent { .. } | Self::RateLimitedLocally { .. } => true,
            Self::Api { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || code
                        .as_deref()
                        .is_some_and(|c| classify_error(c) == ErrorClass::Retryable)
            }
            Self::Payload(_) | Self::Config(_) | Self::Decode { .. } => false,
        }
    }

    /// Whether repeating the same request can never succeed (bad channel, auth, scope, input).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Payload(_) | Self::Config(_) => true,
            Self::Api { .. } => !self.is_retryable(),
            Self::NotSent { .. }
            | Self::MaybeSent { .. }
            | Self::RateLimitedLocally { .. }
            | Self::Decode { .. } => false,
        }
    }

    /// The delay Slack asked for with `Retry-After`, or the wait the local rate limiter needs.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::RateLimitedLocally { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// Whether the request may have reached Slack (false only when it certainly did not).
    pub fn was_sent(&self) -> bool {
        match self {
            Self::NotSent { .. }
            | Self::RateLimitedLocally { .. }
            | Self::Payload(_)
            | Self::Config(_) => false,
            Self::MaybeSent { .. } | Self::Api { .. } | Self::Decode { .. } => true,
        }
    }

    /// The Web API `error` code, if Slack sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
