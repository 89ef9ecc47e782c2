//! `slack.mode` / `SLACK_MODE` and the app-level token `slack.app_token` / `SLACK_APP_TOKEN`
//! (or `SLACK_APP_TOKEN_FILE`) of Slack's Socket Mode.

use super::values::Env;
use super::{ConfigError, Secret, missing};

/// How Slack reaches the bridge: `slack.mode` / `SLACK_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackMode {
    /// `http` (the default): signed requests to `/slack/interactions` and `/slack/commands`.
    Http,
    /// `socket`: Socket Mode, a WebSocket the bridge opens with the app-level token.
    Socket,
}

impl SlackMode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socket => "socket",
        }
    }
}

/// The validated mode and, in Socket Mode, the app-level token (`xapp-…`).
pub(super) fn slack_mode(
    e: &Env<'_>,
    mode: Option<String>,
    app_token: Option<String>,
) -> Result<(SlackMode, Option<Secret>), ConfigError> {
    let mode = match e.plain("SLACK_MODE", "slack.mode", mode) {
        None => SlackMode::Http,
        Some((v, origin)) => match v.trim() {
            "http" => SlackMode::Http,
            "socket" => SlackMode::Socket,
            _ => return Err(origin.error(format!("`{v}` is not one of `http` or `socket`"))),
        },
    };
    let token = e.secret("SLACK_APP_TOKEN", "slack.app_token", app_token)?;
    if let Some(token) = &token
        && !token.expose().starts_with("xapp-")
    {
        return Err(ConfigError::key(
            "slack.app_token".to_owned(),
            "is not an app-level token (they start with `xapp-`; a bot token `xoxb-…` is \
             slack.bot_token)"
                .to_owned(),
        ));
    }
    if mode == SlackMode::Socket && token.is_none() {
        return Err(missing("SLACK_APP_TOKEN", "slack.app_token"));
    }
    Ok((mode, token))
}

/// The Slack signing secret: required in HTTP mode; in Socket Mode, where Slack signs nothing,
/// a missing one is replaced by a random secret nobody knows, so every signed request to the
/// Slack routes is refused.
pub(super) fn signing_secret(
    mode: SlackMode,
    secret: Option<Secret>,
) -> Result<Secret, ConfigError> {
    match (secret, mode) {
        (Some(secret), _) => Ok(secret),
        (None, SlackMode::Http) => Err(missing("SLACK_SIGNING_SECRET", "slack.signing_secret")),
        (None, SlackMode::Socket) => {
            let mut key = [0u8; 32];
            rustls::crypto::ring::default_provider()
                .secure_random
                .fill(&mut key)
                .map_err(|_| {
                    ConfigError::key(
                        "slack.signing_secret".to_owned(),
                        "could not draw a random placeholder in Socket Mode".to_owned(),
                    )
                })?;
            Ok(Secret::new(hex_string(&key)))
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Config;
    use super::*;

    fn load(extra: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let text = format!(
            "[pagerduty]\ntoken = \"t\"\nwebhook_secrets = [\"s\"]\n[slack]\nbot_token = \"xoxb-1\"\n\
             signing_secret = \"sign\"\ndefault_channel = \"C0DEFAULT\"\n{extra}"
        );
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_toml_str(&text, &env)
    }

    #[test]
    fn socket_mode_needs_an_app_level_token_that_never_shows() {
        let c = load("", &[]).expect("defaults");
        assert_eq!(c.slack.mode, SlackMode::Http);
        assert!(c.slack.app_token.is_none());

        let c = load(
            "",
            &[
                ("SLACK_MODE", "socket"),
                ("SLACK_APP_TOKEN", "xapp-1-A-2-s3cr3t"),
            ],
        )
        .expect("socket mode from the environment");
        assert_eq!(c.slack.mode, SlackMode::Socket);
        assert_eq!(
            c.slack.app_token.as_ref().map(Secret::expose),
            Some("xapp-1-A-2-s3cr3t")
        );
        assert!(!format!("{:?}", c.slack).contains("s3cr3t"));

        let err = load("mode = \"socket\"\n", &[]).expect_err("no token");
        assert!(err.to_string().contains("SLACK_APP_TOKEN"), "{err}");
        let err = load("mode = \"socket\"\napp_token = \"xoxb-2\"\n", &[]).expect_err("bot token");
        assert!(err.to_string().contains("slack.app_token"), "{err}");
        assert!(!err.to_string().contains("xoxb-2"), "{err}");
        let err = load("mode = \"websocket\"\n", &[]).expect_err("bad mode");
        assert!(err.to_string().contains("slack.mode"), "{err}");
    }

    #[test]
    fn socket_mode_needs_no_signing_secret_and_http_mode_does() {
        let text = |extra: &str| {
            format!(
                "[pagerduty]\ntoken = \"t\"\nwebhook_secrets = [\"s\"]\n[slack]\n\
                 bot_token = \"xoxb-1\"\ndefault_channel = \"C0DEFAULT\"\n{extra}"
            )
        };
        let err = Config::from_toml_str(&text(""), &BTreeMap::new()).expect_err("http");
        assert!(err.to_string().contains("SLACK_SIGNING_SECRET"), "{err}");
        let socket = text("mode = \"socket\"\napp_token = \"xapp-1-x\"\n");
        let a = Config::from_toml_str(&socket, &BTreeMap::new()).expect("socket");
        let b = Config::from_toml_str(&socket, &BTreeMap::new()).expect("socket");
        // The placeholder is random: nobody can sign a request with it.
        assert_ne!(
            a.slack.signing_secret.expose(),
            b.slack.signing_secret.expose()
        );
        assert_eq!(a.slack.signing_secret.expose().len(), 64);
    }
}
