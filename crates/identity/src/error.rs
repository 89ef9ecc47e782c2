//! The crate's single error type.

/// Everything that can go wrong in this crate.
///
/// Refusals ("this Slack user may not act") are not errors: they are data
/// ([`crate::Refusal`], [`crate::Decision`]). An `Error` means the answer could not be
/// computed (bad configuration, a directory or cache that failed) and is never cached.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `[[identity]]` override entry is invalid. `index` is 0-based in file order.
    #[error("identity[{index}].{field}{}: {message}", slack_user.as_deref().map(|u| format!(" (slack_user = {u:?})")).unwrap_or_default())]
    InvalidOverride {
        /// Position of the entry in the `[[identity]]` array, 0-based.
        index: usize,
        /// The Slack user of the entry, when it could be read.
        slack_user: Option<String>,
        /// The offending key.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A `[policy]` value is invalid.
    #[error("policy.{field}: {message}")]
    InvalidPolicy {
        /// The offending key.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A TOML document could not be parsed; the message names the line and key.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A directory (Slack or PagerDuty API) lookup failed for a reason other than "not found".
    #[error("{platform} lookup failed: {message}")]
    Directory {
        /// `"slack"` or `"pagerduty"`.
        platform: &'static str,
        /// What failed, without secrets.
        message: String,
    },
    /// The persistent cache failed.
    #[error("identity cache failed: {0}")]
    Cache(String),
}
