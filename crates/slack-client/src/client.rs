//! The Web API client: HTTPS (rustls, ring, bundled web PKI roots) or plain HTTP for loopback.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ids::{ChannelId, Email, MessageTs, SlackTeamId, SlackUserId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::Error;
use crate::api::{
    ApiEnvelope, AuthTestResponse, Conversation, ConversationHistory, ConversationResponse,
    HistoryPage, OpenView, PermalinkResponse, PostEphemeral, PostEphemeralResponse, PostMessage,
    PostMessageResponse, ResponseUrlMessage, UpdateMessage, UpdateMessageResponse, UpdateView,
    User, UserResponse, ViewResponse,
};
use crate::ratelimit::{LimitKey, LimiterConfig, RateLimiter};
use crate::retry::{RetryDecision, RetryObserver, RetryPolicy, decide};

mod usergroups;
pub use usergroups::UserGroup;

/// A Slack bot token (`xoxb-…`). Its `Debug` is redacted and it is never logged.
#[derive(Clone, Debug)]
pub struct BotToken(ids::Secret);

impl BotToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(ids::Secret::new(token))
    }

    fn bearer(&self) -> Result<HeaderValue, Error> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0.expose()))
            .map_err(|_| Error::Config("the bot token is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// The Web API base, `https://slack.com/api` in production; methods are `{api_url}/{method}`.
    pub api_url: Url,
    /// The bot token.
    pub token: BotToken,
    /// The workspace the token belongs to (part of every rate-limit key).
    pub workspace: SlackTeamId,
    /// The timeout of one attempt (connect, send and read the whole body).
    pub timeout: Duration,
    /// Retry settings.
    pub retry: RetryPolicy,
    /// Rate-limit settings.
    pub limits: LimiterConfig,
    /// The longest a call waits for its rate-limit slot before failing with `RateLimitedLocally`.
    pub max_queue_wait: Duration,
    /// Told about each failed attempt before it is retried (for metrics).
    pub on_retry: Option<RetryObserver>,
}

impl SlackConfig {
    /// Production defaults: `https://slack.com/api`, 10 s timeout, 4 attempts.
    pub fn new(token: BotToken, workspace: SlackTeamId) -> Self {
        Self {
            api_url: Url::parse("https://slack.com/api").expect("static URL is valid"),
            token,
            workspace,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            limits: LimiterConfig::default(),
            max_queue_wait: Duration::from_secs(60),
            on_retry: None,
        }
    }

    /// The same settings against another base URL (a fake, a proxy).
    pub fn with_api_url(mut self, api_url: Url) -> Self {
        self.api_url = api_url;
        self
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A Slack Web API client. Cheap to clone; clones share the connection pool and rate limiter.
#[derive(Clone)]
pub struct SlackClient {
    http: HttpClient,
    config: Arc<SlackConfig>,
    limiter: Arc<Mutex<RateLimiter>>,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient")
            .field("api_url", &self.config.api_url.as_str())
            .field("workspace", &self.config.workspace)
            .finish_non_exhaustive()
    }
}

/// How a call is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// POST with a JSON body.
    Json,
    /// GET with query parameters.
    Query,
}

/// One call's fixed facts.
struct Call<'a> {
    method: &'static str,
    style: Style,
    idempotent: bool,
    channel: Option<&'a ChannelId>,
}

impl SlackClient {
    /// Builds a client. Fails only when the TLS configuration cannot be built.
    pub fn new(config: SlackConfig) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_all_versions()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(connector);
        let limiter = Arc::new(Mutex::new(RateLimiter::new(config.limits.clone())));
        Ok(Self {
            http,
            config: Arc::new(config),
            limiter,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &SlackConfig {
        &self.config
    }

    /// `chat.postMessage`. Not retried after a timeout (it could post twice).
    pub async fn post_message(&self, req: &PostMessage) -> Result<PostMessageResponse, Error> {
        let call = Call {
            method: "chat.postMessage",
            style: Style::Json,
            idempotent: false,
            channel: Some(&req.channel),
        };
        self.call(call, req).await
    }

    /// `chat.update`.
    pub async fn update_message(
        &self,
        req: &UpdateMessage,
    ) -> Result<UpdateMessageResponse, Error> {
        let call = Call {
            method: "chat.update",
            style: Style::Json,
            idempotent: true,
            channel: Some(&req.channel),
        };
        self.call(call, req).await
    }

    /// `chat.postEphemeral`.
    pub async fn post_ephemeral(
        &self,
        req: &PostEphemeral,
    ) -> Result<PostEphemeralResponse, Error> {
        let call = Call {
            method: "chat.postEphemeral",
            style: Style::Json,
            idempotent: false,
            channel: Some(&req.channel),
        };
        self.call(call, req).await
    }

    /// `chat.getPermalink`.
    pub async fn get_permalink(
        &self,
        channel: &ChannelId,
        message_ts: &MessageTs,
    ) -> Result<PermalinkResponse, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            channel: &'a ChannelId,
            message_ts: &'a MessageTs,
        }
        let call = Call {
            method: "chat.getPermalink",
            style: Style::Query,
            idempotent: true,
            channel: Some(channel),
        };
        self.call(
            call,
            &Args {
                channel,
                message_ts,
            },
        )
        .await
    }

    /// `views.open`. Not retried after a timeout (a `trigger_id` works once).
    pub async fn open_view(&self, req: &OpenView) -> Result<ViewResponse, Error> {
        let call = Call {
            method: "views.open",
            style: Style::Json,
            idempotent: false,
            channel: None,
        };
        self.call(call, req).await
    }

    /// `views.update`.
    pub async fn update_view(&self, req: &UpdateView) -> Result<ViewResponse, Error> {
        let call = Call {
            method: "views.update",
            style: Style::Json,
            idempotent: true,
            channel: None,
        };
        self.call(call, req).await
    }

    /// `users.info`.
    pub async fn user_info(&self, user: &SlackUserId) -> Result<User, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            user: &'a SlackUserId,
        }
        let call = Call {
            method: "users.info",
            style: Style::Query,
            idempotent: true,
            channel: None,
        };
        let r: UserResponse = self.call(call, &Args { user }).await?;
        Ok(r.user)
    }

    /// `users.lookupByEmail` (`users_not_found` when nobody has that address).
    pub async fn lookup_user_by_email(&self, email: &Email) -> Result<User, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            email: &'a str,
        }
        let call = Call {
            method: "users.lookupByEmail",
            style: Style::Query,
            idempotent: true,
            channel: None,
        };
        let r: UserResponse = self
            .call(
                call,
                &Args {
                    email: email.as_str(),
                },
            )
            .await?;
        Ok(r.user)
    }

    /// `conversations.history`: one page of a channel's messages, newest first. Needs
    /// `channels:history` (public channels) or `groups:history` (private ones).
    pub async fn conversation_history(
        &self,
        req: &ConversationHistory,
    ) -> Result<HistoryPage, Error> {
        let call = Call {
            method: "conversations.history",
            style: Style::Query,
            idempotent: true,
            channel: None,
        };
        self.call(call, req).await
    }

    /// `conversations.info`.
    pub async fn conversation_info(&self, channel: &ChannelId) -> Result<Conversation, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            channel: &'a ChannelId,
        }
        let call = Call {
            method: "conversations.info",
            style: Style::Query,
            idempotent: true,
            channel: None,
        };
        let r: ConversationResponse = self.call(call, &Args { channel }).await?;
        Ok(r.channel)
    }

    /// `auth.test`: checks the token and names its workspace and bot user, and the scopes
    /// granted to the token (from the `x-oauth-scopes` response header).
    pub async fn auth_test(&self) -> Result<AuthTestResponse, Error> {
        #[derive(Serialize)]
        struct Args {}
        let call = Call {
            method: "auth.test",
            style: Style::Json,
            idempotent: true,
            channel: None,
        };
        let (mut response, headers): (AuthTestResponse, _) =
            self.call_with_headers(call, &Args {}).await?;
        response.scopes = headers
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
        Ok(response)
    }

    /// Posts to an interaction's `response_url` (no token: the URL is the credential, and it is
    /// never logged). Usable 5 times within 30 minutes; a timeout is not retried.
    pub async fn respond(
        &self,
        response_url: &Url,
        message: &ResponseUrlMessage,
    ) -> Result<(), Error> {
        const METHOD: &str = "response_url";
        let body = serde_json::to_vec(message)
            .map_err(|e| Error::Config(format!("response_url body: {e}")))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = Request::builder()
                .method(Method::POST)
                .uri(response_url.as_str())
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|_| Error::Config("response_url is not a valid URI".into()))?;
            let result = self
                .send(METHOD, request)
                .await
                .and_then(|(status, headers, bytes)| {
                    if status.is_success() {
                        // Slack answers `ok` as text or `{"ok":true}`; only an explicit `ok:false` fails.
                        match serde_json::from_slice::<ApiEnvelope>(&bytes) {
                            Ok(env) if !env.ok => {
                                Err(api_error(METHOD, status, &headers, Some(env)))
                            }
                            _ => Ok(()),
                        }
                    } else {
                        let env = serde_json::from_slice::<ApiEnvelope>(&bytes).ok();
                        Err(api_error(METHOD, status, &headers, env))
                    }
                });
            match result {
                Ok(()) => return Ok(()),
                Err(e) => match decide(&e, attempt, false, &self.config.retry, fastrand::f64()) {
                    RetryDecision::GiveUp => return Err(e),
                    RetryDecision::RetryAfter(d) | RetryDecision::Backoff(d) => {
                        self.retrying(&e);
                        tokio::time::sleep(d).await;
                    }
                },
            }
        }
    }

    async fn call<A, T>(&self, call: Call<'_>, args: &A) -> Result<T, Error>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.call_with_headers(call, args)
            .await
            .map(|(value, _)| value)
    }

    /// Like `call`, also returning the response headers of the successful attempt.
    async fn call_with_headers<A, T>(
        &self,
        call: Call<'_>,
        args: &A,
    ) -> Result<(T, http::HeaderMap), Error>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let method = call.method;
        let key = LimitKey::new(&self.config.workspace, method, call.channel);
        let (uri, body) = self.encode(&call, args)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.acquire(&key, method).await?;
            let result = self.attempt::<T>(method, call.style, &uri, &body).await;
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if let Error::Api {
                status: 429,
                retry_after: Some(wait),
                ..
            } = &error
            {
                self.limiter.lock().expect("rate limiter lock").penalize(
                    &key,
                    monotonic_now(),
                    *wait,
                );
            }
            match decide(
                &error,
                attempt,
                call.idempotent,
                &self.config.retry,
                fastrand::f64(),
            ) {
                RetryDecision::GiveUp => return Err(error),
                // The limiter already blocks this key (and only this key) for `wait`.
                RetryDecision::RetryAfter(_) => self.retrying(&error),
                RetryDecision::Backoff(wait) => {
                    self.retrying(&error);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn retrying(&self, error: &Error) {
        if let Some(observer) = &self.config.on_retry {
            observer.retrying(error);
        }
    }

    fn encode<A: Serialize + ?Sized>(
        &self,
        call: &Call<'_>,
        args: &A,
    ) -> Result<(String, Bytes), Error> {
        let base = self.config.api_url.as_str().trim_end_matches('/');
        let mut uri = format!("{base}/{}", call.method);
        let body = match call.style {
            Style::Json => Bytes::from(
                serde_json::to_vec(args)
                    .map_err(|e| Error::Config(format!("{} arguments: {e}", call.method)))?,
            ),
            Style::Query => {
                let query = serde_urlencoded::to_string(args)
                    .map_err(|e| Error::Config(format!("{} arguments: {e}", call.method)))?;
                if !query.is_empty() {
                    uri.push('?');
                    uri.push_str(&query);
                }
                Bytes::new()
            }
        };
        Ok((uri, body))
    }

    async fn acquire(&self, key: &LimitKey, method: &'static str) -> Result<(), Error> {
        let started = monotonic_now();
        loop {
            let verdict = self
                .limiter
                .lock()
                .expect("rate limiter lock")
                .try_acquire(key, monotonic_now());
            match verdict {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    if started.elapsed() + wait > self.config.max_queue_wait {
                        return Err(Error::RateLimitedLocally { method, wait });
                    }
                    tracing::debug!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        "waiting for rate limit"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &'static str,
        style: Style,
        uri: &str,
        body: &Bytes,
    ) -> Result<(T, http::HeaderMap), Error> {
        let mut builder = Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, self.config.token.bearer()?);
        builder = match style {
            Style::Json => builder
                .method(Method::POST)
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8"),
            Style::Query => builder.method(Method::GET),
        };
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|_| Error::Config(format!("{method}: the API URL is not a valid URI")))?;
        let (status, headers, bytes) = self.send(method, request).await?;
        let envelope: Option<ApiEnvelope> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            return Err(api_error(method, status, &headers, envelope));
        }
        let Some(envelope) = envelope else {
            return Err(Error::Decode {
                method,
                status: status.as_u16(),
                reason: "the body is not a Web API JSON object".into(),
            });
        };
        if !envelope.ok {
            return Err(api_error(method, status, &headers, Some(envelope)));
        }
        if let Some(warning) = &envelope.warning {
            tracing::debug!(
                method,
                warning = warning.as_str(),
                "Slack returned a warning"
            );
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            method,
            status: status.as_u16(),
            reason: e.to_string(),
        })?;
        Ok((value, headers))
    }

    /// Sends one request under the timeout and a tracing span; reads the whole body.
    async fn send(
        &self,
        method: &'static str,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), Error> {
        let span = tracing::info_span!(
            "slack.call",
            method,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty
        );
        let started = monotonic_now();
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Error::NotSent {
                        method,
                        reason: format!("connect failed: {}", error_chain(&e)),
                    }
                } else {
                    Error::MaybeSent {
                        method,
                        reason: format!("connection failed: {}", error_chain(&e)),
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| Error::MaybeSent {
                    method,
                    reason: format!("reading the response failed: {e}"),
                })?
                .to_bytes();
            Ok((parts.status, parts.headers, bytes))
        };
        let result = match tokio::time::timeout(self.config.timeout, exchange)
            .instrument(span.clone())
            .await
        {
            Ok(result) => result,
            Err(_) => Err(Error::MaybeSent {
                method,
                reason: format!("timed out after {:?}", self.config.timeout),
            }),
        };
        let latency = started.elapsed();
        span.record("latency_ms", latency.as_millis() as u64);
        match &result {
            Ok((status, _, _)) => {
                span.record("status", status.as_u16());
                span.in_scope(|| tracing::debug!("Slack call finished"));
            }
            Err(e) => span.in_scope(|| tracing::warn!(error = %e, "Slack call failed")),
        }
        result
    }
}

/// Renders an error and its sources (hyper hides the cause behind the outer message).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn api_error(
    method: &'static str,
    status: StatusCode,
    headers: &http::HeaderMap,
    envelope: Option<ApiEnvelope>,
) -> Error {
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let (code, message, needed) = match envelope {
        Some(env) => {
            let message = env.messages();
            (env.error, message, env.needed)
        }
        None => (None, None, None),
    };
    let code =
        code.or_else(|| (status == StatusCode::TOO_MANY_REQUESTS).then(|| "ratelimited".into()));
    Error::Api {
        method,
        status: status.as_u16(),
        code,
        message,
        retry_after,
        needed,
    }
}

/// The monotonic time for the rate limiter, queue waits and attempt timings: this crate's one
/// clock read (the limiter and the retry decision take the time as an argument).
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}
