//! Slack Socket Mode (`slack.mode = "socket"`): the bridge opens WebSockets to Slack with the
//! app-level token instead of receiving signed requests.
//!
//! [`socket_loop`] keeps [`CONNECTIONS`] connections open. Each envelope goes through the same
//! intake as the HTTP path ([`crate::http::Handler`]: identity, policy, dedupe, commit before the
//! answer), and its acknowledgement carries the answer the HTTP path would give (a view
//! submission's `response_action`, a slash command's message). An envelope the bridge could not
//! commit is not acknowledged, so Slack sends it again, as a 503 makes it retry over HTTP; a
//! redelivered envelope carries the same payload and is deduplicated like an HTTP retry. On
//! `disconnect` the next connection is opened before the old one closes; a lost connection is
//! reopened after a jittered backoff; a connection that answers no ping is dropped.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::bridge::Bridge;
use crate::http::{Handler, SlackReply};

/// How many connections the bridge keeps open (Slack allows up to 10).
pub const CONNECTIONS: usize = 2;

/// How often a connection is pinged; one that sent nothing over two intervals is dropped.
const PING_EVERY: Duration = Duration::from_secs(10);

/// How long a connection told to `disconnect` keeps serving while its replacement opens.
const DISCONNECT_GRACE: Duration = Duration::from_secs(30);

/// The reconnect backoff's first and largest delay.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The Socket Mode series, registered in the bridge's registry.
#[derive(Debug, Default)]
pub struct SocketMetrics {
    connected: Gauge,
    reconnects: Counter,
}

impl SocketMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "slack_sockets_connected",
            "Open Slack Socket Mode connections",
            m.connected.clone(),
        );
        registry.register(
            "slack_socket_reconnects",
            "Slack Socket Mode connections opened after the first ones (refreshes and losses)",
            m.reconnects.clone(),
        );
        m
    }

    /// How many Socket Mode connections are open.
    pub fn connected(&self) -> i64 {
        self.connected.get()
    }
}

/// How a connection ended.
enum Ended {
    /// Slack asked for a refresh; the replacement was already requested.
    Disconnected,
    /// The connection was lost (closed, failed, silent).
    Lost,
    /// The bridge is stopping.
    Stopped,
}

/// Keeps [`CONNECTIONS`] Socket Mode connections open until `stop` turns true.
pub async fn socket_loop(bridge: Arc<Bridge>, mut stop: watch::Receiver<bool>) {
    let (more_tx, mut more_rx) = mpsc::unbounded_channel::<()>();
    let mut slots = JoinSet::new();
    for _ in 0..CONNECTIONS {
        slots.spawn(slot(Arc::clone(&bridge), more_tx.clone(), stop.clone()));
    }
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            Some(()) = more_rx.recv() => {
                bridge.ctx.metrics.socket.reconnects.inc();
                slots.spawn(slot(Arc::clone(&bridge), more_tx.clone(), stop.clone()));
            }
            Some(_) = slots.join_next() => {}
        }
    }
    slots.shutdown().await;
}

/// A jittered delay between `d / 2` and `d`.
fn jittered(d: Duration) -> Duration {
    let r = RandomState::new().build_hasher().finish();
    let half = d / 2;
    half + Duration::from_nanos(r % (half.as_nanos() as u64).max(1))
}

/// One connection slot: opens a connection and reopens it after a loss, with backoff; ends when
/// Slack asked it to disconnect (its replacement is another slot) or the bridge stops.
async fn slot(bridge: Arc<Bridge>, more: mpsc::UnboundedSender<()>, stop: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_MIN;
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        if !first {
            bridge.ctx.metrics.socket.reconnects.inc();
        }
        first = false;
        match connect(&bridge).await {
            Ok(ws) => {
                backoff = BACKOFF_MIN;
                bridge.ctx.metrics.socket.connected.inc();
                let ended = serve(&bridge, ws, &more, stop.clone()).await;
                bridge.ctx.metrics.socket.connected.dec();
                match ended {
                    Ended::Disconnected | Ended::Stopped => return,
                    Ended::Lost => {
                        tracing::warn!("Slack Socket Mode connection lost; reconnecting")
                    }
                }
            }
            Err(err) => {
                tracing::warn!(err = %format!("{err:#}"), "opening a Slack Socket Mode connection failed")
            }
        }
        let mut stop = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(jittered(backoff)) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Asks `apps.connections.open` for a URL and connects to it (the request carries the app-level
/// token; no envelope is lost by a failure here, Slack keeps them for the other connection).
async fn connect(bridge: &Bridge) -> anyhow::Result<Ws> {
    let token = bridge
        .ctx
        .config
        .slack
        .app_token
        .as_ref()
        .context("no app-level token (slack.app_token)")?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .context("TLS setup")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let base = bridge
        .ctx
        .config
        .slack
        .api_url
        .as_str()
        .trim_end_matches('/');
    let request = http::Request::post(format!("{base}/apps.connections.open"))
        .header("authorization", format!("Bearer {}", token.expose()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::new()))
        .context("building apps.connections.open")?;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let response = client.request(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(serde_json::from_slice::<Value>(&bytes)?)
    })
    .await
    .context("apps.connections.open timed out")?
    .context("apps.connections.open")?;
    let Some(url) = answer["url"].as_str().filter(|_| answer["ok"] == true) else {
        anyhow::bail!(
            "apps.connections.open refused: {}",
            answer["error"].as_str().unwrap_or("no url")
        );
    };
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .context("the Socket Mode handshake timed out")?
    .context("the Socket Mode handshake")?;
    Ok(ws)
}

/// Serves one open connection until it ends.
async fn serve(
    bridge: &Arc<Bridge>,
    mut ws: Ws,
    more: &mpsc::UnboundedSender<()>,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<String>();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = true;
    let mut silent_pings = 0u32;
    let mut disconnecting = false;
    let grace = tokio::time::sleep(DISCONNECT_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                let _ = ws.close(None).await;
                return Ended::Stopped;
            },
            Some(ack) = ack_rx.recv() => {
                if ws.send(Message::text(ack)).await.is_err() {
                    return if disconnecting { Ended::Disconnected } else { Ended::Lost };
                }
            }
            _ = ping.tick() => {
                silent_pings = if heard { 0 } else { silent_pings + 1 };
                heard = false;
                if silent_pings >= 2 {
                    tracing::warn!("Slack Socket Mode connection answered no ping; dropping it");
                    return if disconnecting { Ended::Disconnected } else { Ended::Lost };
                }
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return if disconnecting { Ended::Disconnected } else { Ended::Lost };
                }
            }
            () = &mut grace, if disconnecting => {
                let _ = ws.close(None).await;
                return Ended::Disconnected;
            }
            frame = ws.next() => {
                heard = true;
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                        match v["type"].as_str() {
                            Some("hello") => tracing::info!("Slack Socket Mode connected"),
                            Some("disconnect") if !disconnecting => {
                                tracing::info!(reason = v["reason"].as_str().unwrap_or(""), "Slack asked to disconnect; opening the next connection");
                                disconnecting = true;
                                let _ = more.send(());
                                grace.as_mut().reset(tokio::time::Instant::from_std(
                                    crate::clock::instant() + DISCONNECT_GRACE,
                                ));
                            }
                            Some("interactive" | "slash_commands") => {
                                let bridge = Arc::clone(bridge);
                                let ack_tx = ack_tx.clone();
                                tokio::spawn(async move {
                                    if let Some(ack) = envelope(&bridge, &v).await {
                                        let _ = ack_tx.send(ack);
                                    }
                                });
                            }
                            Some("events_api") => {
                                // pdbridge subscribes to no events; acknowledge so Slack stops.
                                if let Some(id) = v["envelope_id"].as_str() {
                                    let _ = ack_tx.send(json!({"envelope_id": id}).to_string());
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        return if disconnecting { Ended::Disconnected } else { Ended::Lost };
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}

/// The form body the HTTP path would have received for an envelope's payload.
pub fn form_body(kind: &str, payload: &Value) -> Option<Bytes> {
    let form = match kind {
        "interactive" => serde_urlencoded::to_string([("payload", payload.to_string())]).ok()?,
        "slash_commands" => {
            let pairs: Vec<(&str, String)> = payload
                .as_object()?
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.as_str(), v)
                })
                .collect();
            serde_urlencoded::to_string(pairs).ok()?
        }
        _ => return None,
    };
    Some(Bytes::from(form))
}

/// Takes one envelope through the intake and returns its acknowledgement, or `None` when it must
/// not be acknowledged (the bridge could not commit it; Slack will send it again).
async fn envelope(bridge: &Bridge, v: &Value) -> Option<String> {
    let id = v["envelope_id"].as_str()?;
    let kind = v["type"].as_str()?;
    let Some(body) = form_body(kind, &v["payload"]) else {
        return Some(json!({"envelope_id": id}).to_string());
    };
    let reply = if kind == "interactive" {
        bridge.slack_interaction(body).await
    } else {
        bridge.slack_command(body).await
    };
    match reply {
        Ok(SlackReply::Json(payload)) if v["accepts_response_payload"] == true => {
            Some(json!({"envelope_id": id, "payload": payload}).to_string())
        }
        Ok(SlackReply::BadRequest(why)) => {
            tracing::warn!(why, "Slack Socket Mode envelope not understood");
            Some(json!({"envelope_id": id}).to_string())
        }
        Ok(_) => Some(json!({"envelope_id": id}).to_string()),
        Err(err) => {
            tracing::warn!(why = %err.0, "Slack Socket Mode envelope not committed; Slack will resend it");
            None
        }
    }
}

/// `/healthz`'s Socket Mode part: in Socket Mode, unavailable while no connection is open.
pub(crate) fn health(ctx: &crate::context::Context) -> Result<(), crate::http::Unavailable> {
    if ctx.config.slack.mode == crate::config::SlackMode::Socket
        && ctx.metrics.socket.connected() == 0
    {
        return Err(crate::http::Unavailable(
            "no Slack Socket Mode connection is open".to_owned(),
        ));
    }
    Ok(())
}
