//! `pdbridge slack-manifest`: the Slack app manifest (schema v1, HTTP mode) for a deployment.
//! With `--config`, a deployment that configures `[[oncall_group]]` also asks for
//! [`USERGROUPS_SCOPE`].
//!
//! [`manifest`] is pure: the same public URL always gives the same JSON. It requests exactly
//! [`BOT_SCOPES`] (each one is justified in `docs/operations.md`), subscribes to no Events API
//! events, points interactivity at `{url}/slack/interactions` and the `/pd` slash command at
//! `{url}/slack/commands`.

use serde_json::{Value, json};
use url::Url;

/// The bot token scopes pdbridge needs, and only those.
///
/// - `chat:write`: post the card (`chat.postMessage`), update it in place (`chat.update`) and
///   tell a clicker what went wrong (`chat.postEphemeral`).
/// - `commands`: the `/pd` slash command.
/// - `users:read`: `users.info` for the clicker (name, deleted, bot, restricted).
/// - `users:read.email`: the clicker's email, which is how a Slack user maps to a PagerDuty user
///   and what pdbridge sends in `From`.
/// - `channels:read`, `groups:read`: `conversations.info` on each routed public or private
///   channel, so `pdbridge check` can say whether the bot is a member without posting there.
/// - `channels:history`, `groups:history`: `conversations.history` in a card's channel, only
///   after a card post may have reached Slack without an answer, to find that card (by its
///   message metadata) instead of posting a second one.
pub const BOT_SCOPES: &[&str] = &[
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "groups:history",
    "groups:read",
    "users:read",
    "users:read.email",
];

/// The scope `[[oncall_group]]` needs (`usergroups.users.update`), asked for only when user
/// groups are configured.
pub const USERGROUPS_SCOPE: &str = "usergroups:write";

/// The bot scopes of a deployment: [`BOT_SCOPES`], plus [`USERGROUPS_SCOPE`] when it configures
/// `[[oncall_group]]`; sorted.
pub fn bot_scopes(with_groups: bool) -> Vec<&'static str> {
    let mut scopes = BOT_SCOPES.to_vec();
    if with_groups {
        scopes.push(USERGROUPS_SCOPE);
        scopes.sort_unstable();
    }
    scopes
}

/// Whether the TOML file at `path` configures `[[oncall_group]]` (so the bot needs
/// [`USERGROUPS_SCOPE`]).
pub fn configures_groups(path: &std::path::Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    Ok(table
        .get("oncall_group")
        .and_then(toml::Value::as_array)
        .is_some_and(|groups| !groups.is_empty()))
}

/// The path Slack posts button clicks and modal submissions to.
pub const INTERACTIONS_PATH: &str = "/slack/interactions";
/// The path Slack posts `/pd` slash commands to.
pub const COMMANDS_PATH: &str = "/slack/commands";
/// The path PagerDuty posts v3 webhooks to.
pub const WEBHOOK_PATH: &str = "/pagerduty/webhook";
/// The slash command pdbridge registers.
pub const SLASH_COMMAND: &str = "/pd";

/// Why a public URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrlError(pub String);

impl std::fmt::Display for PublicUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PublicUrlError {}

/// The public base URL of a deployment, as Slack and PagerDuty reach it.
///
/// It is `https` (both platforms refuse plain http for request URLs), has a host, no query, no
/// fragment and no credentials; a path prefix (for a reverse proxy mounting pdbridge under
/// `/pdbridge`) is kept, with any trailing slash removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Parses and checks a public base URL.
    pub fn parse(text: &str) -> Result<Self, PublicUrlError> {
        Self::parse_with(text, false)
    }

    /// Like [`PublicUrl::parse`], but also accepts `http` (for loopback tests and the demo).
    pub fn parse_allow_http(text: &str) -> Result<Self, PublicUrlError> {
        Self::parse_with(text, true)
    }

    fn parse_with(text: &str, allow_http: bool) -> Result<Self, PublicUrlError> {
        let url = Url::parse(text.trim())
            .map_err(|e| PublicUrlError(format!("`{text}` is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            other => {
                return Err(PublicUrlError(format!(
                    "`{text}` uses `{other}`; Slack and PagerDuty deliver only to https URLs"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PublicUrlError(format!("`{text}` has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PublicUrlError(format!(
                "`{text}` must not have a query or a fragment"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PublicUrlError(format!(
                "`{text}` must not carry credentials"
            )));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(base))
    }

    /// The base URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{base}{path}`, where `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// Where Slack posts interactions.
    pub fn interactions(&self) -> String {
        self.join(INTERACTIONS_PATH)
    }

    /// Where Slack posts slash commands.
    pub fn commands(&self) -> String {
        self.join(COMMANDS_PATH)
    }

    /// Where PagerDuty posts webhooks.
    pub fn webhook(&self) -> String {
        self.join(WEBHOOK_PATH)
    }
}

/// The Slack app manifest (schema v1, HTTP mode) for a deployment reachable at `url`.
pub fn manifest(url: &PublicUrl) -> Value {
    manifest_for(url, false)
}

/// [`manifest`] for a deployment that configures `[[oncall_group]]` (`with_groups`) or not.
pub fn manifest_for(url: &PublicUrl, with_groups: bool) -> Value {
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": "pdbridge",
            "description": "Acknowledge, escalate, reassign, annotate and resolve PagerDuty incidents from Slack.",
            "background_color": "#06ac38"
        },
        "features": {
            "bot_user": { "display_name": "pdbridge", "always_online": true },
            "slash_commands": [{
                "command": SLASH_COMMAND,
                "url": url.commands(),
                "description": "PagerDuty bridge: help, whoami, status <incident>, trigger, oncall",
                "usage_hint": "help | whoami | status <incident> | trigger [<service> <severity> <title>] | oncall [name | @user] [public]",
                "should_escape": false
            }],
            "shortcuts": [crate::intake::declare::shortcut_manifest()]
        },
        "oauth_config": {
            "scopes": { "bot": bot_scopes(with_groups) }
        },
        "settings": {
            "interactivity": {
                "is_enabled": true,
                "request_url": url.interactions(),
                "message_menu_options_url": url.interactions()
            },
            "org_deploy_enabled": false,
            "socket_mode_enabled": false,
            "token_rotation_enabled": false
        }
    })
}

/// The manifest as pretty-printed JSON with a trailing newline, ready to paste into Slack.
/// The Socket Mode manifest: [`manifest_for`] with `socket_mode_enabled` and no request URL
/// (Slack sends interactions and `/pd` over the WebSocket the bridge opens).
pub fn socket_manifest(with_groups: bool) -> Value {
    let mut m = manifest_for(&PublicUrl("https://unused.invalid".to_owned()), with_groups);
    m["features"]["slash_commands"][0]
        .as_object_mut()
        .map(|c| c.remove("url"));
    m["settings"]["interactivity"] = json!({ "is_enabled": true });
    m["settings"]["socket_mode_enabled"] = json!(true);
    m
}

/// [`socket_manifest`] as pretty JSON with a final newline.
pub fn socket_manifest_text(with_groups: bool) -> String {
    let mut text = serde_json::to_string_pretty(&socket_manifest(with_groups)).unwrap_or_default();
    text.push('\n');
    text
}

pub fn manifest_text(url: &PublicUrl) -> String {
    manifest_text_for(url, false)
}

/// [`manifest_text`] with [`manifest_for`]'s `with_groups`.
pub fn manifest_text_for(url: &PublicUrl, with_groups: bool) -> String {
    let mut text =
        serde_json::to_string_pretty(&manifest_for(url, with_groups)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_normalises_and_refuses_what_platforms_refuse() {
        let u = PublicUrl::parse("https://bridge.example.com/").unwrap();
        assert_eq!(
            u.interactions(),
            "https://bridge.example.com/slack/interactions"
        );
        let u = PublicUrl::parse("https://example.com/pdbridge/").unwrap();
        assert_eq!(
            u.webhook(),
            "https://example.com/pdbridge/pagerduty/webhook"
        );
        assert!(PublicUrl::parse("http://example.com").is_err());
        assert!(PublicUrl::parse_allow_http("http://127.0.0.1:8080").is_ok());
        assert!(PublicUrl::parse("https://example.com/?a=b").is_err());
        assert!(PublicUrl::parse("https://u:p@example.com").is_err());
        assert!(PublicUrl::parse("example.com").is_err());
    }

    #[test]
    fn scopes_are_sorted_and_unique() {
        let mut sorted = BOT_SCOPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, BOT_SCOPES);
    }

    #[test]
    fn the_fake_slack_grants_exactly_these_scopes() {
        // The fake cannot depend on pdbridge, so it keeps its own copy; this keeps the two equal.
        assert_eq!(fakes::slack::DEFAULT_SCOPES, BOT_SCOPES);
    }
}
