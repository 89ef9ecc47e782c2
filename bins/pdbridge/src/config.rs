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
    /// `pagerduty.webhook_secrets` / `PAGERDUTY_WEBHOOK_SECRETS` (at least one).
    pub webhook_secrets: Vec<Secret>,
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
        if webhook_secrets.is_empty() {
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
        let signing_secret = e
            .secret(
                "SLACK_SIGNING_SECRET",
                "slack.signing_secret",
                raw.slack.signing_secret,
            )?
            .ok_or_else(|| missing("SLACK_SIGNING_SECRET", "slack.signing_secret"))?;

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
        if default_channel.is_none() && !raw.routes.iter().any(Route::is_catch_all) {
            return Err(ConfigError::key(
                "SLACK_DEFAULT_CHANNEL / slack.default_channel".to_owned(),
                "is required unless a [[route]] without filters catches every incident".to_owned(),
            ));
        }

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
            },
            slack: SlackConfig {
                api_url: slack_api,
                bot_token,
                signing_secret,
                default_channel,
                team_id,
                allow_any_workspace,
            },
            routes: raw.routes,
            identity: raw.identity,
            policy: raw.policy,
            identity_cache,
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

fn missing(env: &str, key: &str) -> ConfigError {
    ConfigError::key(
        key.to_owned(),
        format!("is required (set it in the file, or {env} / {env}_FILE)"),
    )
}

/// Exactly one of `pagerduty.token` or the OAuth client pair; the OAuth-only keys need the pair.
fn pd_credentials(e: &Env<'_>, raw: &RawPagerDuty) -> Result<PdCredentials, ConfigError> {
    let token = e.secret("PAGERDUTY_TOKEN", "pagerduty.token", raw.token.clone())?;
    let client_id = e
        .plain(
            "PAGERDUTY_OAUTH_CLIENT_ID",
            "pagerduty.oauth_client_id",
            raw.oauth_client_id.clone(),
        )
        .map(|(v, origin)| non_empty_id(v, origin))
        .transpose()?;
    let client_secret = e.secret(
        "PAGERDUTY_OAUTH_CLIENT_SECRET",
        "pagerduty.oauth_client_secret",
        raw.oauth_client_secret.clone(),
    )?;
    let scope = e.plain(
        "PAGERDUTY_OAUTH_SCOPE",
        "pagerduty.oauth_scope",
        raw.oauth_scope.clone(),
    );
    let token_url = e.plain(
        "PAGERDUTY_OAUTH_TOKEN_URL",
        "pagerduty.oauth_token_url",
        raw.oauth_token_url.clone(),
    );
    match (token, client_id, client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ConfigError::key(
            "pagerduty.token".to_owned(),
            "and pagerduty.oauth_client_id / pagerduty.oauth_client_secret are both set; use \
             either an API token or a scoped OAuth app, not both"
                .to_owned(),
        )),
        (Some(token), None, None) => {
            let stray = [
                scope.as_ref().map(|(_, o)| o),
                token_url.as_ref().map(|(_, o)| o),
            ];
            if let Some(origin) = stray.into_iter().flatten().next() {
                return Err(origin.error(
                    "only applies to a scoped OAuth app (pagerduty.oauth_client_id and \
                     pagerduty.oauth_client_secret), not to pagerduty.token"
                        .to_owned(),
                ));
            }
            Ok(PdCredentials::Token(token))
        }
        (None, None, None) => Err(ConfigError::key(
            "pagerduty.token".to_owned(),
            "is required (set it in the file, or PAGERDUTY_TOKEN / PAGERDUTY_TOKEN_FILE), or \
             configure a scoped OAuth app instead with pagerduty.oauth_client_id and \
             pagerduty.oauth_client_secret (PAGERDUTY_OAUTH_CLIENT_ID and \
             PAGERDUTY_OAUTH_CLIENT_SECRET / PAGERDUTY_OAUTH_CLIENT_SECRET_FILE)"
                .to_owned(),
        )),
        (None, Some(_), None) => Err(missing(
            "PAGERDUTY_OAUTH_CLIENT_SECRET",
            "pagerduty.oauth_client_secret",
        )),
        (None, None, Some(_)) => Err(ConfigError::key(
            "pagerduty.oauth_client_id".to_owned(),
            "is required with pagerduty.oauth_client_secret (set it in the file, or \
             PAGERDUTY_OAUTH_CLIENT_ID)"
                .to_owned(),
        )),
        (None, Some(client_id), Some(client_secret)) => {
            let scope = oauth_scope(scope)?;
            let token_url = parse_url(token_url.unwrap_or_else(|| {
                (
                    DEFAULT_PAGERDUTY_OAUTH_TOKEN_URL.to_owned(),
                    Origin::Default,
                )
            }))?;
            Ok(PdCredentials::OAuth {
                client_id,
                client_secret,
                scope,
                token_url,
            })
        }
    }
}

/// The requested scopes: [`PAGERDUTY_OAUTH_SCOPES`] by default; a configured value is used as
/// given, except that one naming only the account (`as_account-us.acme`) gets those scopes added.
fn oauth_scope(configured: Option<(String, Origin)>) -> Result<String, ConfigError> {
    let defaults = PAGERDUTY_OAUTH_SCOPES.join(" ");
    let Some((text, origin)) = configured else {
        return Ok(defaults);
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(origin.error("must not be empty".to_owned()));
    }
    if words.iter().all(|w| w.starts_with("as_account-")) {
        return Ok(format!("{} {defaults}", words.join(" ")));
    }
    Ok(words.join(" "))
}

/// A positive whole number of seconds, or `default` when unset.
fn positive_secs(
    value: Option<(String, Origin)>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some((v, origin)) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(origin.error(format!("`{v}` is not a positive number of seconds"))),
        },
    }
}

fn non_empty_id(v: String, origin: Origin) -> Result<String, ConfigError> {
    let t = v.trim();
    if t.is_empty() {
        Err(origin.error("must not be empty".to_owned()))
    } else {
        Ok(t.to_owned())
    }
}

/// Parses `ip:port`, or `host:port` resolved to its first address (`localhost:8080`).
fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    let value = value.trim();
    match value.parse::<SocketAddr>() {
        Ok(addr) => Ok(addr),
        Err(err) => {
            use std::net::ToSocketAddrs;
            let has_port = value
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !has_port {
                return Err(err.to_string());
            }
            value
                .to_socket_addrs()
                .map_err(|e| e.to_string())?
                .next()
                .ok_or_else(|| "the host name has no address".to_owned())
        }
    }
}

fn parse_url((v, origin): (String, Origin)) -> Result<Url, ConfigError> {
    let url = Url::parse(v.trim()).map_err(|e| origin.error(format!("`{v}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(origin.error(format!("`{v}` is not an http(s) URL")));
    }
    Ok(url)
}

/// Where a value came from, so an error can name it.
#[derive(Debug, Clone)]
enum Origin {
    Default,
    File(&'static str),
    Env(String),
}

impl Origin {
    fn error(&self, message: String) -> ConfigError {
        match self {
            Origin::Default => ConfigError {
                key: None,
                message: format!("built-in default {message}"),
            },
            Origin::File(key) => ConfigError::key((*key).to_owned(), message),
            Origin::Env(var) => ConfigError::key(var.clone(), message),
        }
    }
}

/// A secret's raw text as read from the environment, and the variable it came from.
#[derive(Debug)]
pub struct EnvSecret {
    /// The text, untrimmed.
    pub text: String,
    /// `VAR`, or `VAR_FILE` when the text was read from that file.
    pub from: String,
}

/// Why `VAR` / `VAR_FILE` gave no secret.
#[derive(Debug)]
pub enum EnvSecretError {
    /// Both forms are set.
    Both {
        /// The name of the `VAR_FILE` variable.
        file_var: String,
    },
    /// The file `VAR_FILE` names cannot be read.
    Unreadable {
        /// The name of the `VAR_FILE` variable.
        file_var: String,
        /// The path it names.
        path: String,
        /// The read error.
        err: std::io::Error,
    },
}

/// Reads a secret's raw text from `VAR` or the file named by `VAR_FILE` (never both); `None` when
/// neither is set. The one place both forms are read, for the server's configuration and the
/// commands that take a token from the environment.
pub fn env_secret(
    env: &BTreeMap<String, String>,
    var: &str,
) -> Result<Option<EnvSecret>, EnvSecretError> {
    let file_var = format!("{var}_FILE");
    match (env.get(var), env.get(&file_var)) {
        (Some(_), Some(_)) => Err(EnvSecretError::Both { file_var }),
        (Some(v), None) => Ok(Some(EnvSecret {
            text: v.clone(),
            from: var.to_owned(),
        })),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(EnvSecret {
                text,
                from: file_var,
            })),
            Err(err) => Err(EnvSecretError::Unreadable {
                file_var,
                path: path.clone(),
                err,
            }),
        },
        (None, None) => Ok(None),
    }
}

struct Env<'a>(&'a BTreeMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    /// A plain value: the env var wins over the file.
    fn plain(
        &self,
        var: &str,
        key: &'static str,
        file: Option<String>,
    ) -> Option<(String, Origin)> {
        match self.get(var) {
            Some(v) => Some((v.clone(), Origin::Env(var.to_owned()))),
            None => file.map(|v| (v, Origin::File(key))),
        }
    }

    /// The raw text of a secret: `VAR`, then `VAR_FILE`, then the file key.
    fn secret_text(
        &self,
        var: &str,
        key: &'static str,
        file: Option<String>,
    ) -> Result<Option<(String, Origin)>, ConfigError> {
        match env_secret(self.0, var) {
            Err(EnvSecretError::Both { file_var }) => Err(ConfigError::key(
                var.to_owned(),
                format!("and {file_var} are both set; set only one"),
            )),
            Err(EnvSecretError::Unreadable {
                file_var,
                path,
                err,
            }) => Err(ConfigError::key(
                file_var,
                format!("cannot read `{path}`: {err}"),
            )),
            Ok(Some(secret)) => Ok(Some((secret.text, Origin::Env(secret.from)))),
            Ok(None) => Ok(file.map(|v| (v, Origin::File(key)))),
        }
    }

    fn secret(
        &self,
        var: &str,
        key: &'static str,
        file: Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        match self.secret_text(var, key, file)? {
            None => Ok(None),
            Some((text, origin)) => {
                let t = text.trim();
                if t.is_empty() {
                    Err(origin.error("must not be empty".to_owned()))
                } else {
                    Ok(Some(Secret::new(t)))
                }
            }
        }
    }

    /// A list of secrets: comma- or newline-separated in the env (or its file), an array in TOML.
    fn secret_list(
        &self,
        var: &str,
        key: &'static str,
        file: Option<Vec<String>>,
    ) -> Result<Vec<Secret>, ConfigError> {
        let file_var = format!("{var}_FILE");
        let from_env = self.get(var).is_some() || self.get(&file_var).is_some();
        let items: Vec<(String, Origin)> = if from_env {
            let (text, origin) = self
                .secret_text(var, key, None)?
                .expect("one of the env vars is set");
            text.split([',', '\n'])
                .map(|s| (s.to_owned(), origin.clone()))
                .collect()
        } else {
            file.unwrap_or_default()
                .into_iter()
                .map(|s| (s, Origin::File(key)))
                .collect()
        };
        let mut out = Vec::new();
        for (text, origin) in items {
            let t = text.trim();
            if t.is_empty() {
                if from_env {
                    continue;
                }
                return Err(origin.error("must not contain an empty secret".to_owned()));
            }
            out.push(Secret::new(t));
        }
        Ok(out)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    pagerduty: RawPagerDuty,
    #[serde(default)]
    slack: RawSlack,
    #[serde(default, rename = "route")]
    routes: Vec<Route>,
    #[serde(default)]
    identity: Overrides,
    #[serde(default)]
    policy: PolicyConfig,
    #[serde(default)]
    identity_cache: CacheTtls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    database: Option<String>,
    reconcile_interval_secs: Option<u64>,
    log_format: Option<String>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    max_connections: Option<u64>,
    metrics_listen: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPagerDuty {
    api_url: Option<String>,
    token: Option<String>,
    webhook_secrets: Option<Vec<String>>,
    oauth_client_id: Option<String>,
    oauth_client_secret: Option<String>,
    oauth_scope: Option<String>,
    oauth_token_url: Option<String>,
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
struct RawSlack {
    api_url: Option<String>,
    bot_token: Option<String>,
    signing_secret: Option<String>,
    default_channel: Option<String>,
    team_id: Option<String>,
    allow_any_workspace: Option<bool>,
}

impl fmt::Debug for RawSlack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSlack")
            .field("api_url", &self.api_url)
            .field("default_channel", &self.default_channel)
            .field("team_id", &self.team_id)
            .field("allow_any_workspace", &self.allow_any_workspace)
            .finish_non_exhaustive()
    }
}

/// Parses TOML, turning a syntax or type error into one line with the file, line and dotted key.
fn parse_toml(text: &str, source: &str) -> Result<RawConfig, ConfigError> {
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
fn key_at(text: &str, offset: usize) -> Option<String> {
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

#[cfg(test)]
mod tests;
