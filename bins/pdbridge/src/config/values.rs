//! Values from the environment and the file, checked: secrets from `VAR` / `VAR_FILE`, the
//! PagerDuty credentials, durations, addresses and URLs, each error naming where the value came
//! from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::*;

pub(super) fn missing(env: &str, key: &str) -> ConfigError {
    ConfigError::key(
        key.to_owned(),
        format!("is required (set it in the file, or {env} / {env}_FILE)"),
    )
}

/// Exactly one of `pagerduty.token` or the OAuth client pair; the OAuth-only keys need the pair.
pub(super) fn pd_credentials(
    e: &Env<'_>,
    raw: &RawPagerDuty,
) -> Result<PdCredentials, ConfigError> {
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
pub(super) fn oauth_scope(configured: Option<(String, Origin)>) -> Result<String, ConfigError> {
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
pub(super) fn positive_secs(
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

pub(super) fn non_empty_id(v: String, origin: Origin) -> Result<String, ConfigError> {
    let t = v.trim();
    if t.is_empty() {
        Err(origin.error("must not be empty".to_owned()))
    } else {
        Ok(t.to_owned())
    }
}

/// Parses `ip:port`, or `host:port` resolved to its first address (`localhost:8080`).
pub(super) fn parse_listen(value: &str) -> Result<SocketAddr, std::io::Error> {
    use std::io::{Error, ErrorKind};
    let value = value.trim();
    match value.parse::<SocketAddr>() {
        Ok(addr) => Ok(addr),
        Err(err) => {
            use std::net::ToSocketAddrs;
            let has_port = value
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !has_port {
                return Err(Error::new(ErrorKind::InvalidInput, err));
            }
            value
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "the host name has no address"))
        }
    }
}

pub(super) fn parse_url((v, origin): (String, Origin)) -> Result<Url, ConfigError> {
    let url = Url::parse(v.trim()).map_err(|e| origin.error(format!("`{v}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(origin.error(format!("`{v}` is not an http(s) URL")));
    }
    Ok(url)
}

/// Where a value came from, so an error can name it.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Default,
    File(&'static str),
    Env(String),
}

impl Origin {
    pub(super) fn error(&self, message: String) -> ConfigError {
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

pub(super) struct Env<'a>(pub(super) &'a BTreeMap<String, String>);

impl Env<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    /// A plain value: the env var wins over the file.
    pub(super) fn plain(
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
    pub(super) fn secret_text(
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

    pub(super) fn secret(
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
    pub(super) fn secret_list(
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
