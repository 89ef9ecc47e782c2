//! Builds the PagerDuty and Slack clients from the configuration: the one place the server,
//! `pdbridge check` and `pdbridge identity` (and `pd-subscribe`, from the environment) get theirs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ids::SlackTeamId;
use pd_client::PdClient;
use slack_client::{BotToken, SlackClient, SlackConfig};
use url::Url;

use crate::config::Config;
use crate::metrics::{Metrics, pd_retry_reason, slack_retry_reason};

/// The PagerDuty client settings of `config`: its credentials and API URL, the client's default
/// retries, rate limit and timeout.
pub fn pd_config(config: &Config) -> pd_client::Config {
    let mut pd = pd_client::Config::new(config.pagerduty.auth());
    pd.base_url = config.pagerduty.api_url.clone();
    pd
}

/// The server's PagerDuty client settings: [`pd_config`] with every retry counted in `metrics`.
pub fn pd_config_with_metrics(config: &Config, metrics: &Arc<Metrics>) -> pd_client::Config {
    let mut pd = pd_config(config);
    pd.on_retry = Some(pd_client::retry::RetryObserver::new({
        let metrics = Arc::clone(metrics);
        move |err| metrics.api_retry("pagerduty", pd_retry_reason(err))
    }));
    pd
}

/// A PagerDuty client for `base` authenticating with an API token, with the client's default
/// retries and rate limit and a 10 s timeout per attempt.
pub fn pd_client(base: Url, token: &str) -> Result<PdClient, pd_client::Error> {
    let mut config = pd_client::Config::new(pd_client::Auth::Token(pd_client::Secret::new(token)));
    config.base_url = base;
    config.timeout = Duration::from_secs(10);
    PdClient::new(config)
}

/// The Slack client settings of `config` for `workspace`: its bot token and API URL, the
/// client's default retries, limits and timeout.
pub fn slack_config(config: &Config, workspace: SlackTeamId) -> SlackConfig {
    SlackConfig::new(BotToken::new(config.slack.bot_token.expose()), workspace)
        .with_api_url(config.slack.api_url.clone())
}

/// The server's Slack client settings: [`slack_config`] with every retry counted in `metrics`.
pub fn slack_config_with_metrics(
    config: &Config,
    workspace: SlackTeamId,
    metrics: &Arc<Metrics>,
) -> SlackConfig {
    SlackConfig {
        on_retry: Some(slack_client::retry::RetryObserver::new({
            let metrics = Arc::clone(metrics);
            move |err| metrics.api_retry("slack", slack_retry_reason(err))
        })),
        ..slack_config(config, workspace)
    }
}

/// Why the bot's home workspace is not known.
#[derive(Debug)]
pub enum HomeError {
    /// The Slack client could not be built (nothing was sent).
    Client(slack_client::Error),
    /// `auth.test` failed.
    AuthTest(slack_client::Error),
    /// `auth.test` did not answer in time.
    TimedOut,
}

impl fmt::Display for HomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HomeError::Client(err) => write!(f, "{err}"),
            HomeError::AuthTest(err) => write!(f, "Slack auth.test failed: {err}"),
            HomeError::TimedOut => f.write_str("Slack auth.test timed out"),
        }
    }
}

/// The home workspace: `slack.team_id`, else the bot's own as `auth.test` names it within `wait`.
pub async fn home_workspace(config: &Config, wait: Duration) -> Result<SlackTeamId, HomeError> {
    if let Some(team) = &config.slack.team_id {
        return Ok(team.clone());
    }
    let probe = SlackClient::new(slack_config(config, SlackTeamId::new("unknown")))
        .map_err(HomeError::Client)?;
    match tokio::time::timeout(wait, probe.auth_test()).await {
        Ok(Ok(auth)) => Ok(auth.team_id),
        Ok(Err(err)) => Err(HomeError::AuthTest(err)),
        Err(_) => Err(HomeError::TimedOut),
    }
}
