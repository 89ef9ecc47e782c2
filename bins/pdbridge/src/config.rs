//! Server configuration: a TOML file, overridden by environment variables, with secrets also
//! readable from `<NAME>_FILE`.
//!
//! [`Config::load`] reads the file (if any), applies the environment, validates every value and
//! returns either a complete [`Config`] or one [`ConfigError`] that names the offending key. The
//! environment is passed in as a map so tests never touch the process environment. Secrets are
//! held in [`Secret`], whose `Debug` and `Display` never show the value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ids::{ChannelId, ServiceId, SlackTeamId, TeamId};
use serde::Deserialize;
use url::Url;

use identity::{CacheTtls, Overrides, PolicyConfig};

mod declare;
mod oncall;
mod poll;
mod raw;
mod sla;
mod socket;
mod values;

pub use self::declare::{DEFAULT_SEVERITIES, DeclareConfig, Severity};
pub use self::oncall::{Handoff, OnCallGroup};
pub use self::poll::{DEFAULT_POLL_INTERVAL, DEFAULT_POLL_SHARE_PERCENT, PdMode, PollConfig};
use self::raw::*;
pub use self::sla::parse_duration;
pub use self::socket::SlackMode;
use self::values::*;
pub use self::values::{EnvSecret, EnvSecretError, env_secret};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default SQLite database path.
pub const DEFAULT_DATABASE: &str = "./pdbridge.db";
/// The default PagerDuty REST API base URL.
pub const DEFAULT_PAGERDUTY_API_URL: &str = "https://api.pagerduty.com";
/// The default Slack Web API base URL (methods are `{api_url}/chat.postMessage` and so on).
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// The default reconciler period, in seconds.
pub const DEFAULT_RECONCILE_INTERVAL_SECS: u64 = 300;
/// The default PagerDuty OAuth token endpoint.
pub const DEFAULT_PAGERDUTY_OAUTH_TOKEN_URL: &str = pd_client::PAGERDUTY_TOKEN_URL;
/// The scopes `serve` needs from a scoped OAuth app, and only those (`docs/operations.md`
/// justifies each). `check` additionally reads `teams.read` and `webhook_subscriptions.read`.
pub const PAGERDUTY_OAUTH_SCOPES: &[&str] = &[
    "incidents.read",
    "incidents.write",
    "users.read",
    "escalation_policies.read",
    "oncalls.read",
    "services.read",
];

pub use ids::Secret;

/// How log lines are formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The complete, validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `[server]` table.
    pub server: ServerConfig,
    /// The `[pagerduty]` table.
    pub pagerduty: PagerDutyConfig,
    /// The `[slack]` table.
    pub slack: SlackConfig,
    /// The `[[route]]` tables, in file order (first match wins).
    pub routes: Vec<Route>,
    /// The `[[identity]]` overrides.
    pub identity: Overrides,
    /// The `[policy]` table.
    pub policy: PolicyConfig,
    /// The `[identity_cache]` table; `facts_ttl_secs` also from
    /// `PDBRIDGE_IDENTITY_FACTS_TTL_SECS`.
    pub identity_cache: CacheTtls,
    /// The `[declare]` table; `None` turns `/pd trigger` off.
    pub declare: Option<DeclareConfig>,
    /// The `[[oncall_group]]` tables.
    pub oncall_groups: Vec<OnCallGroup>,
    /// The `[[handoff]]` tables.
    pub handoffs: Vec<Handoff>,
    /// The `[sla]` targets and `[reminders]` settings, passed to the engine.
    pub sla: sync_core::SlaConfig,
}

/// The `[server]` table.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.listen` / `PDBRIDGE_LISTEN`.
    pub listen: SocketAddr,
    /// `server.database` / `PDBRIDGE_DATABASE`.
    pub database: PathBuf,
    /// `server.reconcile_interval_secs` / `PDBRIDGE_RECONCILE_INTERVAL_SECS`.
    pub reconcile_interval: Duration,
    /// `server.log_format` / `PDBRIDGE_LOG_FORMAT` (`pretty` or `json`).
    pub log_format: LogFormat,
    /// `server.header_read_timeout_secs` / `PDBRIDGE_HEADER_READ_TIMEOUT_SECS`: how long a
    /// connection may take to send a request head (also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// `server.body_read_timeout_secs` / `PDBRIDGE_BODY_READ_TIMEOUT_SECS`: how long a request
    /// body may take once its head arrived.
    pub body_read_timeout: Duration,
    /// `server.max_connections` / `PDBRIDGE_MAX_CONNECTIONS`: the most connections open at once.
    pub max_connections: usize,
    /// `server.metrics_listen` / `PDBRIDGE_METRICS_LISTEN`: a separate listener for
    /// `GET /metrics` (and `/healthz`); when set, the main listener no longer serves `/metrics`.
    /// `None` serves it on `listen`.
    pub metrics_listen: Option<SocketAddr>,
}

/// The `[pagerduty]` table.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// `pagerduty.api_url` / `PAGERDUTY_API_URL`.
    pub api_url: Url,
    /// How pdbridge authenticates: exactly one of an API token or a scoped OAuth app.
    pub credentials: PdCredentials,
    /// `pagerduty.webhook_secrets` / `PAGERDUTY_WEBHOOK_SECRETS` (at least one, unless
    /// `pagerduty.mode` is `poll`).
    pub webhook_secrets: Vec<Secret>,
    /// `pagerduty.mode` and the polling settings.
    pub poll: PollConfig,
}

/// PagerDuty REST credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdCredentials {
    /// `pagerduty.token` / `PAGERDUTY_TOKEN`: an account-level REST API key.
    Token(Secret),
    /// A scoped OAuth app using the client-credentials grant.
    OAuth {
        /// `pagerduty.oauth_client_id` / `PAGERDUTY_OAUTH_CLIENT_ID`.
        client_id: String,
        /// `pagerduty.oauth_client_secret` / `PAGERDUTY_OAUTH_CLIENT_SECRET`.
        client_secret: Secret,
        /// `pagerduty.oauth_scope` / `PAGERDUTY_OAUTH_SCOPE`, space-separated, with
        /// [`PAGERDUTY_OAUTH_SCOPES`] added when the configured value names only the account.
        scope: String,
        /// `pagerduty.oauth_token_url` / `PAGERDUTY_OAUTH_TOKEN_URL`.
        token_url: Url,
    },
}

impl PagerDutyConfig {
    /// The credentials as the PagerDuty client takes them.
    pub fn auth(&self) -> pd_client::Auth {
        match &self.credentials {
            PdCredentials::Token(token) => pd_client::Auth::Token(token.clone()),
            PdCredentials::OAuth {
                client_id,
                client_secret,
                scope,
                token_url,
            } => pd_client::Auth::OAuth {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                scope: scope.clone(),
                token_url: token_url.clone(),
            },
        }
    }
}

/// The `[slack]` table.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// `slack.api_url` / `SLACK_API_URL`.
    pub api_url: Url,
    /// `slack.bot_token` / `SLACK_BOT_TOKEN`.
    pub bot_token: Secret,
    /// `slack.signing_secret` / `SLACK_SIGNING_SECRET`.
    pub signing_secret: Secret,
    /// `slack.default_channel` / `SLACK_DEFAULT_CHANNEL`.
    pub default_channel: Option<ChannelId>,
    /// `slack.team_id` / `SLACK_TEAM_ID`: the home workspace. `None`: the bot's own workspace,
    /// as `auth.test` reports it (or any workspace with `allow_any_workspace`).
    pub team_id: Option<SlackTeamId>,
    /// `slack.allow_any_workspace` / `SLACK_ALLOW_ANY_WORKSPACE` (default `false`): trust the
    /// workspace each request names, so users of other workspaces (Slack Connect) are mapped by
    /// the email their own workspace reports. Excludes `team_id`.
    pub allow_any_workspace: bool,
    /// `slack.mode` / `SLACK_MODE` (default `http`).
    pub mode: SlackMode,
    /// `slack.app_token` / `SLACK_APP_TOKEN`: the app-level token (`xapp-…`), required in
    /// Socket Mode.
    pub app_token: Option<Secret>,
}

/// Incident urgency as PagerDuty names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// `high`.
    High,
    /// `low`.
    Low,
}

/// One `[[route]]`: a channel and the filters an incident must pass to be posted there.
///
/// An empty filter list matches everything; a route with no filters is a catch-all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The Slack channel cards go to.
    pub channel: ChannelId,
    /// PagerDuty service ids; the incident's service must be one of them.
    #[serde(default)]
    pub services: Vec<ServiceId>,
    /// PagerDuty team ids; one of the incident's teams must be one of them.
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// Urgencies (`high`, `low`).
    #[serde(default)]
    pub urgencies: Vec<Urgency>,
    /// Priority names such as `P1` (compared case-insensitively).
    #[serde(default)]
    pub priorities: Vec<String>,
    /// Webhook event types such as `incident.triggered`.
    #[serde(default)]
    pub events: Vec<String>,
}

/// What routing looks at for one incident.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// The incident's service.
    pub service: Option<&'a ServiceId>,
    /// The incident's teams.
    pub teams: &'a [TeamId],
    /// The incident's urgency.
    pub urgency: Option<Urgency>,
    /// The incident's priority name (`P1`), if any.
    pub priority: Option<&'a str>,
    /// The webhook event type that first brought the incident in.
    pub event_type: Option<&'a str>,
}

impl Route {
    /// Whether this route's filters all pass for the incident.
    pub fn matches(&self, q: &RouteQuery<'_>) -> bool {
        let service_ok =
            self.services.is_empty() || q.service.is_some_and(|s| self.services.contains(s));
        let team_ok = self.teams.is_empty() || q.teams.iter().any(|t| self.teams.contains(t));
        let urgency_ok =
            self.urgencies.is_empty() || q.urgency.is_some_and(|u| self.urgencies.contains(&u));
        let priority_ok = self.priorities.is_empty()
            || q.priority.is_some_and(|p| {
                self.priorities
                    .iter()
                    .any(|want| want.eq_ignore_ascii_case(p))
            });
        let event_ok = self.events.is_empty()
            || q.event_type
                .is_some_and(|e| self.events.iter().any(|want| want == e));
        service_ok && team_ok && urgency_ok && priority_ok && event_ok
    }

    /// Whether the route has no filters and so matches every incident.
    pub fn is_catch_all(&self) -> bool {
        self.services.is_empty()
            && self.teams.is_empty()
            && self.urgencies.is_empty()
            && self.priorities.is_empty()
            && self.events.is_empty()
    }
}

impl Config {
    /// The channel for an incident: the first matching route, else the default channel.
    pub fn channel_for(&self, q: &RouteQuery<'_>) -> Option<&ChannelId> {
        self.routes
            .iter()
            .find(|r| r.matches(q))
            .map(|r| &r.channel)
            .or(self.slack.default_channel.as_ref())
    }

    /// Loads the configuration from an optional TOML file and the given environment.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    key: None,
                    message: format!("cannot read config file {}: {e}", path.display()),
                })?;
                parse_toml(&text, &path.display().to_string())?
            }
            None => RawConfig::default(),
        };
        Self::from_raw(raw, env)
    }

    /// Parses a TOML document (no file) and applies the given environment; used by tests.
    pub fn from_toml_str(text: &str, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_raw(parse_toml(text, "config")?, env)
    }

    fn from_raw(raw: RawConfig, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let e = Env(env);

        let listen = e
            .plain("PDBRIDGE_LISTEN", "server.listen", raw.server.listen)
            .unwrap_or_else(|| (DEFAULT_LISTEN.to_owned(), Origin::Default));
        let listen = parse_listen(&listen.0).map_err(|err| {
            listen
                .1
                .error(format!("`{}` is not a socket address: {err}", listen.0))
        })?;

        let database = e
            .plain("PDBRIDGE_DATABASE", "server.database", raw.server.database)
            .map(|(v, _)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE));

        let reconcile_interval = match e.plain(
            "PDBRIDGE_RECONCILE_INTERVAL_SECS",
            "server.reconcile_interval_secs",
            raw.server.reconcile_interval_secs.map(|n| n.to_string()),
        ) {
            None => Duration::from_secs(DEFAULT_RECONCILE_INTERVAL_SECS),
            Some((v, origin)) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_secs(n),
                _ => return Err(origin.error(format!("`{v}` is not a positive number of seconds"))),
            },
        };

        let log_format = match e.plain(
            "PDBRIDGE_LOG_FORMAT",
            "server.log_format",
            raw.server.log_format,
        ) {
            None => LogFormat::Pretty,
            Some((v, origin)) => match v.as_str() {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                _ => return Err(origin.error(format!("`{v}` is not `pretty` or `json`"))),
            },
        };

        let header_read_timeout = positive_secs(
            e.plain(
                "PDBRIDGE_HEADER_READ_TIMEOUT_SECS",
                "server.header_read_timeout_secs",
                raw.server.header_read_timeout_secs.map(|n| n.to_string()),
            ),
            crate::server::DEFAULT_HEADER_READ_TIMEOUT,
        )?;
        let body_read_timeout = positive_secs(
            e.plain(
                "PDBRIDGE_BODY_READ_TIMEOUT_SECS",
                "server.body_read_timeout_secs",
                raw.server.body_read_timeout_secs.map(|n| n.to_string()),
            ),
            crate::http::DEFAULT_BODY_READ_TIMEOUT,
        )?;
        let max_connections = match e.plain(
            "PDBRIDGE_MAX_CONNECTIONS",
            "server.max_connections",
            raw.server.max_connections.map(|n| n.to_string()),
        ) {
            None => crate::server::DEFAULT_MAX_CONNECTIONS,
            Some((v, origin)) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(origin.error(format!("`{v}` is not a positive number"))),
            },
        };

        let metrics_listen = match e.plain(
            "PDBRIDGE_METRICS_LISTEN",
            "server.metrics_listen",
            raw.server.metrics_listen,
        ) {
            None => None,
            Some((v, origin)) => {
                let addr = parse_listen(&v)
                    .map_err(|err| origin.error(format!("`{v}` is not a socket address: {err}")))?;
                if addr == listen && addr.port() != 0 {
                    return Err(origin.error(format!(
                        "`{v}` is server.listen itself; leave it unset to serve /metrics there"
                    )));
                }
                Some(addr)
            }
        };

        let pd_api = e
            .plain(
                "PAGERDUTY_API_URL",
                "pagerduty.api_url",
                raw.pagerduty.api_url.clone(),
            )
            .unwrap_or_else(|| (DEFAULT_PAGERDUTY_API_URL.to_owned(), Origin::Default));
        let pd_api = parse_url(pd_api)?;

        let credentials = pd_credentials(&e, &raw.pagerduty)?;

        let webhook_secrets = e.secret_list(
            "PAGERDUTY_WEBHOOK_SECRETS",
            "pagerduty.webhook_secrets",
            raw.pagerduty.webhook_secrets,
        )?;
        let poll = poll::poll_config(
            &e,
            raw.pagerduty.mode,
            raw.pagerduty.poll_interval_secs,
            raw.pagerduty.poll_share_percent,
        )?;
        if webhook_secrets.is_empty() && poll.mode.webhooks() {
            return Err(missing(
                "PAGERDUTY_WEBHOOK_SECRETS",
                "pagerduty.webhook_secrets",
            ));
        }

        let slack_api = e
            .plain("SLACK_API_URL", "slack.api_url", raw.slack.api_url)
            .unwrap_or_else(|| (DEFAULT_SLACK_API_URL.to_owned(), Origin::Default));
        let slack_api = parse_url(slack_api)?;

        let bot_token = e
            .secret("SLACK_BOT_TOKEN", "slack.bot_token", raw.slack.bot_token)?
            .ok_or_else(|| missing("SLACK_BOT_TOKEN", "slack.bot_token"))?;
        let (slack_mode, app_token) = socket::slack_mode(&e, raw.slack.mode, raw.slack.app_token)?;
        let signing_secret = e.secret(
            "SLACK_SIGNING_SECRET",
            "slack.signing_secret",
            raw.slack.signing_secret,
        )?;
        let signing_secret = socket::signing_secret(slack_mode, signing_secret)?;

        let default_channel = e
            .plain(
                "SLACK_DEFAULT_CHANNEL",
                "slack.default_channel",
                raw.slack.default_channel,
            )
            .map(|(v, origin)| non_empty_id(v, origin).map(ChannelId::new))
            .transpose()?;
        let team_id = e
            .plain("SLACK_TEAM_ID", "slack.team_id", raw.slack.team_id)
            .map(|(v, origin)| non_empty_id(v, origin).map(SlackTeamId::new))
            .transpose()?;
        let allow_any_workspace = match e.plain(
            "SLACK_ALLOW_ANY_WORKSPACE",
            "slack.allow_any_workspace",
            raw.slack.allow_any_workspace.map(|b| b.to_string()),
        ) {
            None => false,
            Some((v, origin)) => match v.trim() {
                "true" => {
                    if team_id.is_some() {
                        return Err(origin.error(
                            "and slack.team_id (SLACK_TEAM_ID) are both set; set team_id to \
                             accept one workspace, or allow_any_workspace = true to accept \
                             every workspace, not both"
                                .to_owned(),
                        ));
                    }
                    true
                }
                "false" => false,
                _ => return Err(origin.error(format!("`{v}` is not `true` or `false`"))),
            },
        };

        let mut identity_cache = raw.identity_cache;
        if let Some((v, origin)) = e.plain(
            "PDBRIDGE_IDENTITY_FACTS_TTL_SECS",
            "identity_cache.facts_ttl_secs",
            None,
        ) {
            identity_cache.facts_ttl_secs = v
                .trim()
                .parse::<u64>()
                .map_err(|_| origin.error(format!("`{v}` is not a number of seconds")))?;
        }

        for (i, route) in raw.routes.iter().enumerate() {
            if route.channel.as_str().trim().is_empty() {
                return Err(ConfigError::key(
                    format!("route[{i}].channel"),
                    "must not be empty".to_owned(),
                ));
            }
        }
        oncall::validate(&raw.oncall_groups, &raw.handoffs)?;
        if default_channel.is_none() && !raw.routes.iter().any(Route::is_catch_all) {
            return Err(ConfigError::key(
                "SLACK_DEFAULT_CHANNEL / slack.default_channel".to_owned(),
                "is required unless a [[route]] without filters catches every incident".to_owned(),
            ));
        }

        let declare = declare::validate(raw.declare, raw.policy.trigger.service_names())?;
        let sla = sla::validate(raw.sla, raw.reminders)?;
        Ok(Config {
            server: ServerConfig {
                listen,
                database,
                reconcile_interval,
                log_format,
                header_read_timeout,
                body_read_timeout,
                max_connections,
                metrics_listen,
            },
            pagerduty: PagerDutyConfig {
                api_url: pd_api,
                credentials,
                webhook_secrets,
                poll,
            },
            slack: SlackConfig {
                api_url: slack_api,
                bot_token,
                signing_secret,
                default_channel,
                team_id,
                allow_any_workspace,
                mode: slack_mode,
                app_token,
            },
            routes: raw.routes,
            identity: raw.identity,
            policy: raw.policy,
            identity_cache,
            declare,
            oncall_groups: raw.oncall_groups,
            handoffs: raw.handoffs,
            sla,
        })
    }
}

/// A configuration error: one line naming the key (or env var) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The TOML key or environment variable at fault, when one is known.
    pub key: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about a specific key.
    pub fn key(key: String, message: String) -> Self {
        Self {
            key: Some(key),
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.replace('\n', " ");
        match &self.key {
            Some(key) => write!(f, "invalid config: `{key}` {message}"),
            None => write!(f, "invalid config: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests;
