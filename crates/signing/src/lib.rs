//! Slack v0 and PagerDuty v1 webhook signature verification; pure, with the clock passed in.
//!
//! Call order for an inbound request: read the raw body bytes, look the headers up (with
//! [`header`] or an `http::HeaderMap`), then call [`verify_slack`] or [`verify_pagerduty`]
//! *before* parsing the body. Both functions see only bytes and strings; nothing here reads a
//! clock, the network or the environment.
//!
//! Invariants:
//! - MACs are compared in constant time with [`ring::hmac::verify`].
//! - Secrets are held only as HMAC keys: their `Debug` is redacted and no [`Error`] ever carries
//!   a secret, a computed MAC or the received signature.
//! - Slack: the signed base string is `"v0:" + timestamp + ":" + body`, and a timestamp more than
//!   [`SLACK_MAX_SKEW_SECS`] away from `now` (in either direction) is refused before the MAC is
//!   checked. Exactly 300 s of skew is accepted.
//! - PagerDuty: the header holds comma-separated entries; every well-formed `v1=<64 hex>` entry is
//!   tried against every configured secret and one match is enough (secret rotation). Entries
//!   with another version prefix, and malformed `v1` entries, are ignored. With zero usable
//!   secrets configured every request is refused.
#![forbid(unsafe_code)]

use std::fmt;

use ring::hmac;

/// The Slack signature header name (lowercase; compare names case-insensitively).
pub const SLACK_SIGNATURE_HEADER: &str = "x-slack-signature";
/// The Slack request timestamp header name (lowercase; compare names case-insensitively).
pub const SLACK_TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The PagerDuty v3 webhook signature header name (lowercase; compare names case-insensitively).
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "x-pagerduty-signature";
/// The largest accepted distance, in seconds, between a Slack request timestamp and `now`.
pub const SLACK_MAX_SKEW_SECS: i64 = 300;

/// The length in bytes of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;

/// Why a request was refused. Never contains a secret, a computed MAC or the received signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The named header was absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The named header was present but empty or not in the expected format.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The Slack timestamp is too far from `now`; `skew_secs` is `now - timestamp`, so a negative
    /// value means the timestamp lies in the future.
    #[error("request timestamp is {skew_secs} s from now (limit {SLACK_MAX_SKEW_SECS} s)")]
    StaleTimestamp {
        /// `now - timestamp` in seconds (saturating).
        skew_secs: i64,
    },
    /// The signature is well-formed but matches no configured secret.
    #[error("signature does not match")]
    Mismatch,
    /// No non-empty PagerDuty webhook secret is configured, so nothing can be accepted.
    #[error("no PagerDuty webhook secret is configured")]
    NoSecretsConfigured,
    /// The Slack signing secret is empty, so nothing can be accepted.
    #[error("the Slack signing secret is empty")]
    EmptySecret,
}

impl Error {
    /// A short, stable, lowercase label for metrics and logs (for example `"stale_timestamp"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::MissingHeader(_) => "missing_header",
            Error::MalformedHeader(_) => "malformed_header",
            Error::StaleTimestamp { .. } => "stale_timestamp",
            Error::Mismatch => "mismatch",
            Error::NoSecretsConfigured => "no_secrets_configured",
            Error::EmptySecret => "empty_secret",
        }
    }
}

/// An HMAC-SHA256 key that remembers whether it was built from an empty secret.
#[derive(Clone)]
struct Secret {
    key: hmac::Key,
    empty: bool,
}

impl Secret {
    fn new(secret: String) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            empty: secret.is_empty(),
        }
    }
}

/// A Slack app signing secret. Only the derived HMAC key is kept; `Debug` is redacted.
#[derive(Clone)]
pub struct SlackSigningSecret(Secret);

impl SlackSigningSecret {
    /// Wraps a signing secret as shown in the Slack app settings ("Signing Secret").
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Secret::new(secret.into()))
    }

    /// Whether the secret is the empty string (which [`verify_slack`] always refuses).
    pub fn is_empty(&self) -> bool {
        self.0.empty
    }
}

impl fmt::Debug for SlackSigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlackSigningSecret(<redacted>)")
    }
}

/// A PagerDuty v3 webhook subscription secret. Only the derived HMAC key is kept; `Debug` is
/// redacted.
#[derive(Clone)]
pub struct PagerDutySecret(Secret);

impl PagerDutySecret {
    /// Wraps the `delivery_method.secret` returned when the subscription was created.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Secret::new(secret.into()))
    }

    /// Whether the secret is the empty string (which [`verify_pagerduty`] skips).
    pub fn is_empty(&self) -> bool {
        self.0.empty
    }
}

impl fmt::Debug for PagerDutySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PagerDutySecret(<redacted>)")
    }
}

/// Case-insensitive header lookup over any (name, value) pairs, for callers without an
/// `http::HeaderMap`. Returns the first match.
pub fn header<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    name: &str,
) -> Option<&'a str> {
    headers
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Decodes exactly 64 hex digits (either case) into a MAC, or `None`.
fn decode_mac(hex_digits: &str) -> Option<[u8; MAC_LEN]> {
    let mut out = [0u8; MAC_LEN];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

/// Parses a Slack timestamp: 1 to 18 ASCII digits, nothing else.
fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn slack_base_string(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut base = Vec::with_capacity(4 + timestamp.len() + body.len());
    base.extend_from_slice(b"v0:");
    base.extend_from_slice(timestamp.as_bytes());
    base.push(b':');
    base.extend_from_slice(body);
    base
}

/// Verifies a Slack request: `timestamp` and `signature` are the raw values of
/// [`SLACK_TIMESTAMP_HEADER`] and [`SLACK_SIGNATURE_HEADER`], `body` the raw request bytes and
/// `now_unix` the current time in Unix seconds.
///
/// Checks, in order: the secret is non-empty, both headers are present and well-formed, the
/// timestamp is within [`SLACK_MAX_SKEW_SECS`] of `now_unix`, and the MAC matches.
pub fn verify_slack(
    secret: &SlackSigningSecret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), Error> {
    if secret.is_empty() {
        return Err(Error::EmptySecret);
    }
    let timestamp = timestamp
        .ok_or(Error::MissingHeader(SLACK_TIMESTAMP_HEADER))?
        .trim();
    let signature = signature
        .ok_or(Error::MissingHeader(SLACK_SIGNATURE_HEADER))?
        .trim();
    let ts = parse_timestamp(timestamp).ok_or(Error::MalformedHeader(SLACK_TIMESTAMP_HEADER))?;
    let mac = signature
        .strip_prefix("v0=")
        .and_then(decode_mac)
        .ok_or(Error::MalformedHeader(SLACK_SIGNATURE_HEADER))?;
    let skew_secs = now_unix.saturating_sub(ts);
    if skew_secs.unsigned_abs() > SLACK_MAX_SKEW_SECS.unsigned_abs() {
        return Err(Error::StaleTimestamp { skew_secs });
    }
    hmac::verify(&secret.0.key, &slack_base_string(timestamp, body), &mac)
        .map_err(|_| Error::Mismatch)
}

/// Verifies a PagerDuty v3 webhook: `signature` is the raw value of
/// [`PAGERDUTY_SIGNATURE_HEADER`] and `body` the raw request bytes.
///
/// Accepts when any well-formed `v1=` entry matches any non-empty secret. Refuses everything with
/// [`Error::NoSecretsConfigured`] when no non-empty secret is given, and with
/// [`Error::MalformedHeader`] when the header holds no well-formed `v1=` entry.
pub fn verify_pagerduty(
    secrets: &[PagerDutySecret],
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Error> {
    let keys: Vec<&hmac::Key> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| &s.0.key)
        .collect();
    if keys.is_empty() {
        return Err(Error::NoSecretsConfigured);
    }
    let signature = signature.ok_or(Error::MissingHeader(PAGERDUTY_SIGNATURE_HEADER))?;
    let macs: Vec<[u8; MAC_LEN]> = signature
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("v1="))
        .filter_map(decode_mac)
        .collect();
    if macs.is_empty() {
        return Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER));
    }
    let matched = macs
        .iter()
        .any(|mac| keys.iter().any(|key| hmac::verify(key, body, mac).is_ok()));
    if matched {
        Ok(())
    } else {
        Err(Error::Mismatch)
    }
}

/// Computes the Slack `X-Slack-Signature` value (`"v0=<hex>"`) for tests and fakes.
pub fn sign_slack(secret: &SlackSigningSecret, timestamp: i64, body: &[u8]) -> String {
    let base = slack_base_string(&timestamp.to_string(), body);
    format!("v0={}", hex::encode(hmac::sign(&secret.0.key, &base)))
}

/// Computes one PagerDuty `X-PagerDuty-Signature` entry (`"v1=<hex>"`) for tests and fakes.
pub fn sign_pagerduty(secret: &PagerDutySecret, body: &[u8]) -> String {
    format!("v1={}", hex::encode(hmac::sign(&secret.0.key, body)))
}
