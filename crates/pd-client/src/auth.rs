//! Credentials: API tokens and scoped OAuth client credentials.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

pub use ids::Secret;

/// How the client authenticates to the REST API.
#[derive(Debug, Clone)]
pub enum Auth {
    /// An account or user API token: `Authorization: Token token=<secret>`.
    Token(Secret),
    /// A scoped OAuth app: the client obtains a bearer token with the client-credentials grant
    /// and requests a new one shortly before `expires_in` runs out.
    OAuth {
        /// The app's client id.
        client_id: String,
        /// The app's client secret.
        client_secret: Secret,
        /// The requested scopes, such as `as_account-us.acme incidents.write users.read`.
        scope: String,
        /// The token endpoint, normally `https://identity.pagerduty.com/oauth/token`.
        token_url: Url,
    },
}

/// The PagerDuty OAuth token endpoint.
pub const PAGERDUTY_TOKEN_URL: &str = "https://identity.pagerduty.com/oauth/token";

/// The answer of the token endpoint.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// A bearer token and when to replace it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) token: Secret,
    pub(crate) refresh_at: Instant,
}

impl CachedToken {
    /// Caches `token` obtained at `now`, to be refreshed a margin before it expires: a tenth of
    /// its lifetime, at most five minutes. Tokens without `expires_in` are kept for an hour.
    pub(crate) fn new(token: String, expires_in: Option<u64>, now: Instant) -> Self {
        let lifetime = Duration::from_secs(expires_in.unwrap_or(3600));
        let margin = (lifetime / 10).min(Duration::from_secs(300));
        Self {
            token: Secret::new(token),
            refresh_at: now + lifetime.saturating_sub(margin),
        }
    }

    /// Whether the token is still good at `now`.
    pub(crate) fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[cfg(test)]
// The tests need a real `Instant` as the base of their simulated time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_before_expiry() {
        let t0 = Instant::now();
        let day = CachedToken::new("a".into(), Some(86_400), t0);
        assert!(day.fresh(t0 + Duration::from_secs(86_400 - 301)));
        assert!(!day.fresh(t0 + Duration::from_secs(86_400 - 300)));
        let short = CachedToken::new("b".into(), Some(10), t0);
        assert!(short.fresh(t0 + Duration::from_secs(8)));
        assert!(!short.fresh(t0 + Duration::from_secs(9)));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let auth = Auth::OAuth {
            client_id: "cid".into(),
            client_secret: Secret::new("very-secret"),
            scope: "incidents.write".into(),
            token_url: Url::parse(PAGERDUTY_TOKEN_URL).unwrap(),
        };
        let text = format!("{auth:?} {:?}", Auth::Token(Secret::new("tok-123")));
        assert!(!text.contains("very-secret") && !text.contains("tok-123"));
    }
}
