//! The HTTP layer: routing, body limits, signature verification and status codes.
//!
//! [`app`] turns an [`AppState`] into a `tower::Service` that any hyper server (or
//! `tower::ServiceExt::oneshot` in tests) can drive. Per request, in order: route on method and
//! path (404 / 405), refuse bodies over [`BODY_LIMIT`] (413, by `Content-Length` first and again
//! while reading) and bodies not complete within [`AppState::body_read_timeout`] (408, and the
//! connection is closed), verify the signature over the raw bytes (401; the body never reaches a parser
//! before this), then hand the verified bytes to the [`Handler`]. A handler failure is ours and
//! answers 503, never 4xx, so PagerDuty retries instead of counting a drop.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use ids::WebhookId;
use signing::{PagerDutySecret, SlackSigningSecret};

use crate::clock::Clock;
use crate::metrics::Metrics;

/// The largest request body accepted, in bytes (PagerDuty drops webhooks above 256 KB anyway).
pub const BODY_LIMIT: usize = 256 * 1024;

/// The default [`AppState::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a Slack request may take before we answer 503 ourselves (Slack gives up at 3 s).
pub const SLACK_DEADLINE: Duration = Duration::from_millis(2500);

/// How long a PagerDuty delivery may take before we answer 503 (PagerDuty gives up at 5 s).
pub const PAGERDUTY_DEADLINE: Duration = Duration::from_millis(4500);

/// The response body type of the service.
pub type ResponseBody = Full<Bytes>;

/// What became of a verified PagerDuty delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAck {
    /// Stored durably for processing: 202.
    Accepted,
    /// Already in the inbox (same `X-Webhook-Id` or `event.id`): 200.
    Duplicate,
    /// Verified but not something pdbridge acts on (unknown type, `pagey.ping`): 200.
    Ignored,
    /// Verified but the body did not parse: stored raw as unparsed for operators, 200.
    Unparsed,
}

/// The answer to a verified Slack request.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackReply {
    /// 200 with an empty body (acknowledges the interaction; closes a modal).
    Empty,
    /// 200 with a JSON body (`response_action`, or a slash-command message).
    Json(serde_json::Value),
    /// 400: the signed request is not a payload pdbridge understands.
    BadRequest(&'static str),
}

/// The bridge could not do its part (database down, queue full): answered with 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// What the HTTP layer hands verified requests to: [`crate::bridge::Bridge`] in the server
/// (see [`crate::intake`]), a scripted one in tests.
pub trait Handler: Send + Sync + 'static {
    /// Records a verified PagerDuty delivery (raw body) and says whether it was new.
    fn pagerduty_webhook(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
    ) -> impl Future<Output = Result<WebhookAck, Unavailable>> + Send;

    /// Handles a verified Slack interaction (raw form body with one `payload` field).
    fn slack_interaction(
        &self,
        body: Bytes,
    ) -> impl Future<Output = Result<SlackReply, Unavailable>> + Send;

    /// Handles a verified Slack slash command (raw form body).
    fn slack_command(
        &self,
        body: Bytes,
    ) -> impl Future<Output = Result<SlackReply, Unavailable>> + Send;

    /// Whether the bridge can serve (database reachable); backs `GET /healthz`.
    fn health(&self) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// Everything the HTTP layer needs.
pub struct AppState<B> {
    /// Where verified requests go (the bridge, in the server).
    pub bridge: Arc<B>,
    /// The Slack signing secret.
    pub slack_secret: SlackSigningSecret,
    /// The PagerDuty webhook secrets (any may match).
    pub pagerduty_secrets: Vec<PagerDutySecret>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The clock used for Slack's timestamp window.
    pub clock: Clock,
    /// How long a request body may take to arrive once its head was read.
    pub body_read_timeout: Duration,
}

impl<B> std::fmt::Debug for AppState<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("slack_secret", &self.slack_secret)
            .field("pagerduty_secrets", &self.pagerduty_secrets)
            .finish_non_exhaustive()
    }
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Everything (the default: one listener).
    All,
    /// Everything but `GET /metrics` (when `server.metrics_listen` is set).
    Public,
    /// `GET /metrics` and `GET /healthz` only (the `server.metrics_listen` listener).
    Internal,
}

/// The pdbridge HTTP service (cheap to clone).
pub struct App<B> {
    state: Arc<AppState<B>>,
    listener: Listener,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
            listener: self.listener,
        }
    }
}

impl<B> std::fmt::Debug for App<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("state", &self.state)
            .field("listener", &self.listener)
            .finish()
    }
}

impl<B> App<B> {
    /// The same service (same state) restricted to the routes of `listener`.
    pub fn for_listener(&self, listener: Listener) -> Self {
        Self {
            state: Arc::clone(&self.state),
            listener,
        }
    }
}

/// Builds the service (serving every route).
pub fn app<B: Handler>(state: AppState<B>) -> App<B> {
    App {
        state: Arc::new(state),
        listener: Listener::All,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B, ReqBody> tower::Service<Request<ReqBody>> for App<B>
where
    B: Handler,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let state = Arc::clone(&self.state);
        let listener = self.listener;
        Box::pin(async move {
            // The request line is copied for the log only when the log line is wanted.
            if !tracing::enabled!(tracing::Level::INFO) {
                return Ok(handle(&state, listener, req).await);
            }
            let started = crate::clock::instant();
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let resp = handle(&state, listener, req).await;
            tracing::info!(
                %method,
                path,
                status = resp.status().as_u16(),
                ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "request"
            );
            Ok(resp)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    PagerDuty,
    SlackInteractions,
    SlackCommands,
    Healthz,
    Metrics,
}

impl Route {
    fn source(self) -> &'static str {
        match self {
            Route::PagerDuty => "pagerduty",
            Route::SlackInteractions => "slack_interaction",
            Route::SlackCommands => "slack_command",
            Route::Healthz | Route::Metrics => "internal",
        }
    }
}

async fn handle<B, ReqBody>(
    state: &AppState<B>,
    listener: Listener,
    req: Request<ReqBody>,
) -> Response<ResponseBody>
where
    B: Handler,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    let (route, allowed) = match req.uri().path() {
        "/pagerduty/webhook" => (Route::PagerDuty, &Method::POST),
        "/slack/interactions" => (Route::SlackInteractions, &Method::POST),
        "/slack/commands" => (Route::SlackCommands, &Method::POST),
        "/healthz" => (Route::Healthz, &Method::GET),
        "/metrics" => (Route::Metrics, &Method::GET),
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    let served = match listener {
        Listener::All => true,
        Listener::Public => route != Route::Metrics,
        Listener::Internal => matches!(route, Route::Metrics | Route::Healthz),
    };
    if !served {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let method_ok =
        req.method() == allowed || (allowed == Method::GET && req.method() == Method::HEAD);
    let allowed: &'static str = if allowed == Method::GET {
        "GET, HEAD"
    } else {
        "POST"
    };
    if !method_ok {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allowed));
        return resp;
    }
    match route {
        Route::Healthz => match state.bridge.health().await {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(Unavailable(why)) => {
                tracing::warn!(%why, "health check failed");
                text(StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
            }
        },
        Route::Metrics => {
            let mut resp = text(StatusCode::OK, state.metrics.render());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        Route::PagerDuty | Route::SlackInteractions | Route::SlackCommands => {
            let (parts, body) = req.into_parts();
            let source = route.source();
            let read =
                tokio::time::timeout(state.body_read_timeout, read_limited(&parts.headers, body));
            let body = match read.await {
                Ok(Ok(body)) => body,
                Err(_) => {
                    state.metrics.webhook_rejected(source, "body_timeout");
                    let mut resp = text(StatusCode::REQUEST_TIMEOUT, "request body too slow\n");
                    resp.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                    return resp;
                }
                Ok(Err(status)) => {
                    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                        "too_large"
                    } else {
                        "bad_body"
                    };
                    state.metrics.webhook_rejected(source, reason);
                    return text(status, "request body refused\n");
                }
            };
            if let Err(err) = verify(state, route, &parts.headers, &body) {
                state.metrics.webhook_rejected(source, err.kind());
                tracing::warn!(source, reason = err.kind(), "refused unsigned request");
                return text(StatusCode::UNAUTHORIZED, "invalid signature\n");
            }
            state.metrics.webhook_received(source);
            dispatch(state, route, &parts.headers, body).await
        }
    }
}

async fn dispatch<B: Handler>(
    state: &AppState<B>,
    route: Route,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<ResponseBody> {
    match route {
        Route::PagerDuty => {
            let webhook_id = headers
                .get("x-webhook-id")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(WebhookId::new);
            let fut = state.bridge.pagerduty_webhook(webhook_id, body);
            match tokio::time::timeout(PAGERDUTY_DEADLINE, fut).await {
                Ok(Ok(WebhookAck::Accepted)) => text(StatusCode::ACCEPTED, "accepted\n"),
                Ok(Ok(WebhookAck::Duplicate)) => {
                    state.metrics.webhook_duplicate("pagerduty");
                    text(StatusCode::OK, "duplicate\n")
                }
                Ok(Ok(WebhookAck::Ignored)) => text(StatusCode::OK, "ignored\n"),
                Ok(Ok(WebhookAck::Unparsed)) => {
                    state.metrics.webhook_unparsed();
                    text(StatusCode::OK, "stored unparsed\n")
                }
                Ok(Err(Unavailable(why))) => {
                    tracing::error!(%why, "could not record PagerDuty webhook");
                    text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
                }
                Err(_) => {
                    tracing::error!("recording a PagerDuty webhook timed out");
                    text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
                }
            }
        }
        Route::SlackInteractions | Route::SlackCommands => {
            let reply = if route == Route::SlackInteractions {
                tokio::time::timeout(SLACK_DEADLINE, state.bridge.slack_interaction(body)).await
            } else {
                tokio::time::timeout(SLACK_DEADLINE, state.bridge.slack_command(body)).await
            };
            match reply {
                Ok(Ok(SlackReply::Empty)) => Response::builder()
                    .status(StatusCode::OK)
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| internal()),
                Ok(Ok(SlackReply::Json(value))) => json(StatusCode::OK, &value),
                Ok(Ok(SlackReply::BadRequest(why))) => {
                    state
                        .metrics
                        .webhook_rejected(route.source(), "bad_payload");
                    text(StatusCode::BAD_REQUEST, format!("{why}\n"))
                }
                Ok(Err(Unavailable(why))) => {
                    tracing::error!(%why, "could not handle Slack request");
                    text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
                }
                Err(_) => {
                    tracing::error!("a Slack request missed its deadline");
                    text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
                }
            }
        }
        Route::Healthz | Route::Metrics => internal(),
    }
}

/// Verifies the signature on the async worker: at most one HMAC per configured secret over at
/// most [`BODY_LIMIT`] bytes (about 0.15 ms each) is short enough to run inline, and moving it
/// to the blocking pool would let unsigned floods queue on its 8 threads ahead of the store
/// work of signed requests.
fn verify<B>(
    state: &AppState<B>,
    route: Route,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), signing::Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match route {
        Route::PagerDuty => signing::verify_pagerduty(
            &state.pagerduty_secrets,
            header(signing::PAGERDUTY_SIGNATURE_HEADER),
            body,
        ),
        _ => signing::verify_slack(
            &state.slack_secret,
            header(signing::SLACK_TIMESTAMP_HEADER),
            header(signing::SLACK_SIGNATURE_HEADER),
            body,
            (state.clock)().as_millis().div_euclid(1000),
        ),
    }
}

/// Reads the whole body, refusing more than [`BODY_LIMIT`] bytes by header and while reading.
async fn read_limited<ReqBody>(headers: &HeaderMap, body: ReqBody) -> Result<Bytes, StatusCode>
where
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or(StatusCode::BAD_REQUEST)?;
        if len > BODY_LIMIT as u64 {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

/// A plain-text answer; a `&'static str` body and the header are used without copying.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_else(|_| internal())
}

fn internal() -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp
}

#[cfg(test)]
mod tests;
