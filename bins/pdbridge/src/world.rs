//! One description of a pdbridge world for the demo, the integration tests and the benchmarks:
//! the configuration of a server that talks to the in-process fakes (or to any loopback stub),
//! and starting that server in this process with the fake PagerDuty's webhooks pointed at it.
//!
//! Call order: [`WorldConfig::for_fakes`] (or [`WorldConfig::new`] for other endpoints), set the
//! fields that differ with struct update syntax, then [`WorldConfig::toml`] for a file a child
//! process reads or [`WorldConfig::config`] for [`start`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use fakes::pd::FakePagerDuty;
use fakes::slack::FakeSlack;
use tokio::net::TcpListener;

use crate::app::{Options, Running};
use crate::config::{Config, ConfigError};

/// The configuration of a server in a test world. Every field is one piece of the TOML text.
#[derive(Debug, Clone)]
pub struct WorldConfig<'a> {
    /// `[server] database`; no `[server]` section when `None`.
    pub database: Option<&'a Path>,
    /// More `[server]` lines (only with a database).
    pub server: &'a str,
    /// The PagerDuty API base URL.
    pub pd_url: String,
    /// The `[pagerduty]` credential lines.
    pub pd_credentials: String,
    /// The PagerDuty webhook secrets.
    pub webhook_secrets: &'a [&'a str],
    /// The Slack API base URL.
    pub slack_api: String,
    /// The Slack bot token.
    pub bot_token: String,
    /// The Slack signing secret.
    pub signing_secret: &'a str,
    /// `[slack] default_channel`.
    pub default_channel: &'a str,
    /// `[slack] team_id`; left out when `None`.
    pub team_id: Option<String>,
    /// Appended after the `[slack]` section (`[policy]`, `[[route]]`, `[[identity]]`…).
    pub extra: &'a str,
}

impl<'a> WorldConfig<'a> {
    /// A configuration for PagerDuty at `pd_url` and Slack at `slack_api`: an account token,
    /// `whsec` and `signsecret` as the secrets, `C0ALL` as the default channel, no workspace.
    pub fn new(pd_url: String, slack_api: String) -> Self {
        Self {
            database: None,
            server: "",
            pd_url,
            pd_credentials: r#"token = "account-token""#.to_owned(),
            webhook_secrets: &["whsec"],
            slack_api,
            bot_token: "xoxb-world".to_owned(),
            signing_secret: "signsecret",
            default_channel: "C0ALL",
            team_id: None,
            extra: "",
        }
    }

    /// [`WorldConfig::new`] for PagerDuty at `pd_url` and the fake Slack, with its bot token
    /// and workspace.
    pub fn with_slack(pd_url: String, slack: &FakeSlack) -> Self {
        Self {
            bot_token: slack.token(),
            team_id: Some(slack.team_id().as_str().to_owned()),
            ..Self::new(pd_url, slack.api_url())
        }
    }

    /// [`WorldConfig::with_slack`] for the fake PagerDuty `pd`.
    pub fn for_fakes(pd: &FakePagerDuty, slack: &FakeSlack) -> Self {
        Self::with_slack(pd.url(), slack)
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        let server = match self.database {
            Some(db) => format!(
                "[server]\ndatabase = {:?}\n{}\n",
                db.display().to_string(),
                self.server
            ),
            None => String::new(),
        };
        let team = match &self.team_id {
            Some(team) => format!("team_id = {team:?}\n"),
            None => String::new(),
        };
        let mut secrets = String::new();
        for (n, secret) in self.webhook_secrets.iter().enumerate() {
            let comma = if n == 0 { "" } else { ", " };
            let _ = write!(secrets, "{comma}{secret:?}");
        }
        format!(
            "{server}
[pagerduty]
api_url = {pd:?}
{credentials}
webhook_secrets = [{secrets}]

[slack]
api_url = {slack:?}
bot_token = {bot:?}
signing_secret = {signing:?}
default_channel = {channel:?}
{team}{extra}
",
            pd = self.pd_url,
            credentials = self.pd_credentials,
            slack = self.slack_api,
            bot = self.bot_token,
            signing = self.signing_secret,
            channel = self.default_channel,
            extra = self.extra,
        )
    }

    /// The parsed configuration (no environment).
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_toml_str(&self.toml(), &BTreeMap::new())
    }
}

/// Starts the server in this process on `listener` and points the fake PagerDuty's webhook
/// subscription at it, signed with `webhook_secret`.
pub async fn start(
    config: Config,
    listener: TcpListener,
    options: Options,
    pd: &FakePagerDuty,
    webhook_secret: &str,
) -> anyhow::Result<Running> {
    let running = crate::app::start(config, listener, options)
        .await
        .context("starting the server")?;
    pd.set_webhook_target(
        &format!("http://{}/pagerduty/webhook", running.addr),
        webhook_secret,
    );
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reaches_the_configuration() {
        let db = Path::new("/tmp/world.db");
        let config = WorldConfig {
            database: Some(db),
            server: "reconcile_interval_secs = 3600",
            webhook_secrets: &["one", "two"],
            team_id: Some("T0WORLD".to_owned()),
            extra: "[[route]]\nchannel = \"C0ROUTE\"\nservices = [\"PSVC\"]\n",
            ..WorldConfig::new(
                "http://127.0.0.1:1".to_owned(),
                "http://127.0.0.1:1/api".to_owned(),
            )
        }
        .config()
        .unwrap();
        assert_eq!(config.server.database, db);
        assert_eq!(config.server.reconcile_interval.as_secs(), 3600);
        assert_eq!(config.pagerduty.webhook_secrets.len(), 2);
        assert_eq!(config.pagerduty.api_url.as_str(), "http://127.0.0.1:1/");
        assert_eq!(config.slack.api_url.as_str(), "http://127.0.0.1:1/api");
        assert_eq!(
            config.slack.team_id.as_ref().map(|t| t.as_str()),
            Some("T0WORLD")
        );
        assert_eq!(config.routes.len(), 1);
        let no_server =
            WorldConfig::new("http://a.test".to_owned(), "http://b.test/api".to_owned());
        assert!(!no_server.toml().contains("[server]"));
        assert_eq!(no_server.config().unwrap().slack.team_id, None);
    }
}
