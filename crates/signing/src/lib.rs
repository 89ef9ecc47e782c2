//! Slack v0 and PagerDuty v1 webhook signature verification; pure, with the clock passed in.
//!
//! Call order for an inbound request: read the raw body bytes, look the headers up (with
//! [`header`] or an `http::HeaderMap`), then call [`verify_slack`] or [`verify_pagerduty`]
//! *before* parsing the body. Both functions see only bytes and strings; nothing here reads a
//! clock, the network or the environment.
//!
//! Invariants:
//! - MACs are compared in constant time ([`subtle::ConstantTimeEq`] on ring's HMAC tags).
//! - No request costs more than one HMAC per configured secret: the headers are parsed and
//!   bounded first (at most [`PAGERDUTY_MAX_SIGNATURES`] entries in at most
//!   [`PAGERDUTY_MAX_SIGNATURE_HEADER_LEN`] bytes), then the MAC is computed once per non-empty
//!   secret and every candidate is compared against it. A malformed or oversized header costs
//!   no MAC at all. One MAC over a 256 KiB body (the binary's body limit) takes about 0.15 ms,
//!   little enough to run on the async worker.
//! - Secrets are held only as HMAC keys: their `Debug` is redacted and no [`Error`] ever carries
//!   a secret, a computed MAC or the received signature.
//! - Slack: the signed base string is `"v0:" + timestamp + ":" + body`, and a timestamp more than
//!   [`SLACK_MAX_SKEW_SECS`] away from `now` (in either direction) is refused before the MAC is
//!   checked. Exactly 300 s of skew is accepted.
//! - PagerDuty: the header holds comma-separated entries (one per active secret); every
//!   well-formed `v1=<64 hex>` entry is compared with every configured secret's MAC and one
//!   match is enough (secret rotation). Entries with another version prefix, and malformed `v1`
//!   entries, are ignored. A header with more than [`PAGERDUTY_MAX_SIGNATURES`] entries is
//!   refused with [`Error::TooManySignatures`]. With zero usable secrets configured every
//!   request is refused.
#![forbid(unsafe_code)]

use std::fmt;

use ring::hmac;
use subtle::ConstantTimeEq;

/// The Slack signature header name (lowercase; compare names case-insensitively).
pub const SLACK_SIGNATURE_HEADER: &str = "x-slack-signature";
/// The Slack request timestamp header name (lowercase; compare names case-insensitively).
pub const SLACK_TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The PagerDuty v3 webhook signature header name (lowercase; compare names case-insensitively).
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "x-pagerduty-signature";
/// The largest accepted distance, in seconds, between a Slack request timestamp and `now`.
pub const SLACK_MAX_SKEW_SECS: i64 = 300;

/// The most entries an `X-PagerDuty-Signature` header may hold. PagerDuty sends one `v1=` entry
/// per active secret of the subscription (two during a rotation).
pub const PAGERDUTY_MAX_SIGNATURES: usize = 8;
/// The longest `X-PagerDuty-Signature` header accepted, in bytes: room for
/// [`PAGERDUTY_MAX_SIGNATURES`] entries of a longer digest than today's with separators.
pub const PAGERDUTY_MAX_SIGNATURE_HEADER_LEN: usize = 2048;
/// The longest Slack signature or timestamp header accepted before trimming, in bytes.
const SLACK_MAX_HEADER_LEN: usize = 256;

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
    /// The PagerDuty signature header holds more than [`PAGERDUTY_MAX_SIGNATURES`] entries (or
    /// is longer than [`PAGERDUTY_MAX_SIGNATURE_HEADER_LEN`]); refused before any MAC.
    #[error("more than {PAGERDUTY_MAX_SIGNATURES} signatures in {PAGERDUTY_SIGNATURE_HEADER}")]
    TooManySignatures,
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
            Error::TooManySignatures => "too_many_signatures",
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

/// The Slack MAC over `"v0:" + timestamp + ":" + body`, without copying the body.
fn slack_mac(key: &hmac::Key, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"v0:");
    ctx.update(timestamp.as_bytes());
    ctx.update(b":");
    ctx.update(body);
    ctx.sign()
}

/// Whether `tag` equals `mac`, compared in constant time.
fn tag_matches(tag: &hmac::Tag, mac: &[u8; MAC_LEN]) -> bool {
    tag.as_ref().ct_eq(mac.as_slice()).into()
}

/// Verifies a Slack request: `timestamp` and `signature` are the raw values of
/// [`SLACK_TIMESTAMP_HEADER`] and [`SLACK_SIGNATURE_HEADER`], `body` the raw request bytes and
/// `now_unix` the current time in Unix seconds.
///
/// Checks, in order: the secret is non-empty, both headers are present, short and well-formed,
/// the timestamp is within [`SLACK_MAX_SKEW_SECS`] of `now_unix`, and the MAC (computed once)
/// matches.
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
    let timestamp = timestamp.ok_or(Error::MissingHeader(SLACK_TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(Error::MissingHeader(SLACK_SIGNATURE_HEADER))?;
    if timestamp.len() > SLACK_MAX_HEADER_LEN {
        return Err(Error::MalformedHeader(SLACK_TIMESTAMP_HEADER));
    }
    if signature.len() > SLACK_MAX_HEADER_LEN {
        return Err(Error::MalformedHeader(SLACK_SIGNATURE_HEADER));
    }
    let (timestamp, signature) = (timestamp.trim(), signature.trim());
    let ts = parse_timestamp(timestamp).ok_or(Error::MalformedHeader(SLACK_TIMESTAMP_HEADER))?;
    let mac = signature
        .strip_prefix("v0=")
        .and_then(decode_mac)
        .ok_or(Error::MalformedHeader(SLACK_SIGNATURE_HEADER))?;
    let skew_secs = now_unix.saturating_sub(ts);
    if skew_secs.unsigned_abs() > SLACK_MAX_SKEW_SECS.unsigned_abs() {
        return Err(Error::StaleTimestamp { skew_secs });
    }
    if tag_matches(&slack_mac(&secret.0.key, timestamp, body), &mac) {
        Ok(())
    } else {
        Err(Error::Mismatch)
    }
}

/// Reads the well-formed `v1=` MACs of a PagerDuty signature header, refusing a header of more
/// than [`PAGERDUTY_MAX_SIGNATURE_HEADER_LEN`] bytes or [`PAGERDUTY_MAX_SIGNATURES`] entries
/// before looking further. Computes no MAC.
fn pagerduty_candidates(signature: &str) -> Result<Vec<[u8; MAC_LEN]>, Error> {
    if signature.len() > PAGERDUTY_MAX_SIGNATURE_HEADER_LEN {
        return Err(Error::TooManySignatures);
    }
    let mut macs = Vec::new();
    for (i, entry) in signature.split(',').enumerate() {
        if i >= PAGERDUTY_MAX_SIGNATURES {
            return Err(Error::TooManySignatures);
        }
        if let Some(mac) = entry.trim().strip_prefix("v1=").and_then(decode_mac) {
            macs.push(mac);
        }
    }
    if macs.is_empty() {
        return Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER));
    }
    Ok(macs)
}

/// Verifies a PagerDuty v3 webhook: `signature` is the raw value of
/// [`PAGERDUTY_SIGNATURE_HEADER`] and `body` the raw request bytes.
///
/// Accepts when any well-formed `v1=` entry matches any non-empty secret. Refuses everything with
/// [`Error::NoSecretsConfigured`] when no non-empty secret is given, with
/// [`Error::TooManySignatures`] when the header holds more than [`PAGERDUTY_MAX_SIGNATURES`]
/// entries, and with [`Error::MalformedHeader`] when it holds no well-formed `v1=` entry. Costs
/// at most one HMAC over `body` per non-empty secret, and none when the header is refused.
pub fn verify_pagerduty(
    secrets: &[PagerDutySecret],
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Error> {
    verify_pagerduty_counted(secrets, signature, body).0
}

/// [`verify_pagerduty`], also returning how many MACs it computed (the cost tests check).
fn verify_pagerduty_counted(
    secrets: &[PagerDutySecret],
    signature: Option<&str>,
    body: &[u8],
) -> (Result<(), Error>, usize) {
    let keys: Vec<&hmac::Key> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| &s.0.key)
        .collect();
    if keys.is_empty() {
        return (Err(Error::NoSecretsConfigured), 0);
    }
    let Some(signature) = signature else {
        return (Err(Error::MissingHeader(PAGERDUTY_SIGNATURE_HEADER)), 0);
    };
    let macs = match pagerduty_candidates(signature) {
        Ok(macs) => macs,
        Err(err) => return (Err(err), 0),
    };
    let tags: Vec<hmac::Tag> = keys.iter().map(|key| hmac::sign(key, body)).collect();
    // Every pair is compared, so the time taken does not depend on which entry matched.
    let matched = macs.iter().fold(false, |found, mac| {
        tags.iter()
            .fold(found, |found, tag| tag_matches(tag, mac) | found)
    });
    let outcome = if matched {
        Ok(())
    } else {
        Err(Error::Mismatch)
    };
    (outcome, tags.len())
}

/// Computes the Slack `X-Slack-Signature` value (`"v0=<hex>"`) for tests and fakes.
pub fn sign_slack(secret: &SlackSigningSecret, timestamp: i64, body: &[u8]) -> String {
    let mac = slack_mac(&secret.0.key, &timestamp.to_string(), body);
    format!("v0={}", hex::encode(mac))
}

/// Computes one PagerDuty `X-PagerDuty-Signature` entry (`"v1=<hex>"`) for tests and fakes.
pub fn sign_pagerduty(secret: &PagerDutySecret, body: &[u8]) -> String {
    format!("v1={}", hex::encode(hmac::sign(&secret.0.key, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<PagerDutySecret> {
        vec![
            PagerDutySecret::new("old"),
            PagerDutySecret::new(""),
            PagerDutySecret::new("new"),
        ]
    }

    #[test]
    fn a_refused_header_costs_no_mac_and_any_other_one_mac_per_secret() {
        let body = vec![b'x'; 256 * 1024];
        let bogus = format!("v1={}", "ab".repeat(MAC_LEN));
        let flood = vec![bogus.as_str(); 5000].join(",");
        assert_eq!(
            verify_pagerduty_counted(&secrets(), Some(&flood), &body),
            (Err(Error::TooManySignatures), 0)
        );
        // Within the byte cap but over the entry cap.
        let short_flood = ["v0=1"; PAGERDUTY_MAX_SIGNATURES + 1].join(",");
        assert!(short_flood.len() < PAGERDUTY_MAX_SIGNATURE_HEADER_LEN);
        assert_eq!(
            verify_pagerduty_counted(&secrets(), Some(&short_flood), &body),
            (Err(Error::TooManySignatures), 0)
        );
        assert_eq!(
            verify_pagerduty_counted(&secrets(), Some("v1=zz,v2=00"), &body),
            (Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER)), 0)
        );
        // The most entries allowed, none matching: one MAC per non-empty secret, not 8 x 2.
        let eight = [bogus.as_str(); PAGERDUTY_MAX_SIGNATURES].join(", ");
        assert_eq!(
            verify_pagerduty_counted(&secrets(), Some(&eight), &body),
            (Err(Error::Mismatch), 2)
        );
        let good = sign_pagerduty(&PagerDutySecret::new("new"), &body);
        let mut entries = vec![bogus.as_str(); PAGERDUTY_MAX_SIGNATURES - 1];
        entries.push(&good);
        assert_eq!(
            verify_pagerduty_counted(&secrets(), Some(&entries.join(",")), &body),
            (Ok(()), 2)
        );
    }
}
