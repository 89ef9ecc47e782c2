//! The configuration file as parsed, before validation, and TOML errors as one line.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use identity::{CacheTtls, Overrides, PolicyConfig};

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) pagerduty: RawPagerDuty,
    #[serde(default)]
    pub(super) slack: RawSlack,
    #[serde(default, rename = "route")]
    pub(super) routes: Vec<Route>,
    #[serde(default)]
    pub(super) identity: Overrides,
    #[serde(default)]
    pub(super) policy: PolicyConfig,
    #[serde(default)]
    pub(super) identity_cache: CacheTtls,
    #[serde(default, rename = "oncall_group")]
    pub(super) oncall_groups: Vec<OnCallGroup>,
    #[serde(default, rename = "handoff")]
    pub(super) handoffs: Vec<Handoff>,
    pub(super) declare: Option<declare::RawDeclare>,
    #[serde(default)]
    pub(super) sla: BTreeMap<String, sla::RawTarget>,
    pub(super) reminders: Option<sla::RawReminders>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<String>,
    pub(super) database: Option<String>,
    pub(super) reconcile_interval_secs: Option<u64>,
    pub(super) log_format: Option<String>,
    pub(super) header_read_timeout_secs: Option<u64>,
    pub(super) body_read_timeout_secs: Option<u64>,
    pub(super) max_connections: Option<u64>,
    pub(super) metrics_listen: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPagerDuty {
    pub(super) api_url: Option<String>,
    pub(super) token: Option<String>,
    pub(super) webhook_secrets: Option<Vec<String>>,
    pub(super) oauth_client_id: Option<String>,
    pub(super) oauth_client_secret: Option<String>,
    pub(super) oauth_scope: Option<String>,
    pub(super) oauth_token_url: Option<String>,
    pub(super) mode: Option<String>,
    pub(super) poll_interval_secs: Option<u64>,
    pub(super) poll_share_percent: Option<u64>,
}

impl fmt::Debug for RawPagerDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPagerDuty")
            .field("api_url", &self.api_url)
            .field("oauth_client_id", &self.oauth_client_id)
            .field("oauth_scope", &self.oauth_scope)
            .field("oauth_token_url", &self.oauth_token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    pub(super) api_url: Option<String>,
    pub(super) bot_token: Option<String>,
    pub(super) signing_secret: Option<String>,
    pub(super) default_channel: Option<String>,
    pub(super) team_id: Option<String>,
    pub(super) allow_any_workspace: Option<bool>,
    pub(super) mode: Option<String>,
    pub(super) app_token: Option<String>,
}

impl fmt::Debug for RawSlack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSlack")
            .field("api_url", &self.api_url)
            .field("default_channel", &self.default_channel)
            .field("team_id", &self.team_id)
            .field("allow_any_workspace", &self.allow_any_workspace)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Parses TOML, turning a syntax or type error into one line with the file, line and dotted key.
pub(super) fn parse_toml(text: &str, source: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str::<RawConfig>(text).map_err(|err| {
        let message = err.message().trim().replace('\n', " ");
        match err.span() {
            Some(span) => {
                let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
                let key = key_at(text, span.start);
                ConfigError {
                    key,
                    message: format!("({source} line {line_no}): {message}"),
                }
            }
            None => ConfigError {
                key: None,
                message: format!("{source}: {message}"),
            },
        }
    })
}

/// The dotted key at a byte offset: the last `[table]` header before it plus the `key =` on its line.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let mut table = None;
    for l in text[..line_start].lines() {
        let l = l.trim();
        if l.starts_with('[') {
            table = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        }
    }
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = line.split_once('=').map(|(k, _)| k.trim().to_owned());
    match (table, key) {
        (Some(t), Some(k)) if !k.is_empty() => Some(format!("{t}.{k}")),
        (None, Some(k)) if !k.is_empty() => Some(k),
        (t, _) => t,
    }
}
