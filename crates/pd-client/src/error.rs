//! The one error type of this crate.

use std::time::Duration;

/// Why a PagerDuty call failed, including whether the request may have reached PagerDuty.
///
/// No variant ever holds a token, a client secret, a webhook secret or a request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request never left this process (connection refused, DNS failure, OAuth token
    /// unavailable, local rate-limit wait too long). Safe to retry.
    #[error("request not sent: {reason}")]
    NotSent {
        /// What went wrong, without secrets.
        reason: String,
    },
    /// The request may have reached PagerDuty but no complete answer came back (timeout,
    /// connection reset after the write). A retry may apply the change twice.
    #[error("request may have been sent: {reason}")]
    MaybeSent {
        /// What went wrong, without secrets.
        reason: String,
    },
    /// PagerDuty answered with a non-success status.
    #[error("PagerDuty answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The PagerDuty error code (`error.code`), when the body had one.
        code: Option<u32>,
        /// The rendered error message and details.
        message: String,
        /// How long to wait before retrying (from `ratelimit-reset`), when PagerDuty said.
        retry_after: Option<Duration>,
    },
    /// PagerDuty answered with a success status but a body this crate could not read.
    #[error("could not decode the PagerDuty response (status {status}): {reason}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// The decoder's complaint.
        reason: String,
    },
    /// The call was refused locally because its arguments are invalid (for example a page size
    /// above 100 or an offset past 10,000); nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client could not be built (bad base URL, TLS setup).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same request could succeed (it may still be unsafe for
    /// non-idempotent calls when the error is [`Error::MaybeSent`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotSent { .. } | Self::MaybeSent { .. } => true,
            Self::Api { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Decode { .. } | Self::InvalidRequest(_) | Self::Config(_) => false,
        }
    }

    /// The wait PagerDuty asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the request reached PagerDuty: `Some(true)` when it answered, `Some(false)` when
    /// it certainly did not leave, `None` when nobody can tell ([`Error::MaybeSent`]).
    pub fn was_sent(&self) -> Option<bool> {
        match self {
            Self::NotSent { .. } | Self::InvalidRequest(_) | Self::Config(_) => Some(false),
            Self::MaybeSent { .. } => None,
            Self::Api { .. } | Self::Decode { .. } => Some(true),
        }
    }

    /// The HTTP status PagerDuty answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The PagerDuty error code, if the body had one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }
}
