//! The fake Slack's Socket Mode: `apps.connections.open` and the WebSocket server it points at.
//!
//! Call order: [`crate::slack::FakeSlack::socket`] gives the [`FakeSocketMode`] of a fake Slack;
//! point the code under test at the fake's API URL with [`APP_TOKEN`], wait for its connections
//! ([`FakeSocketMode::wait_connections`]), send envelopes ([`FakeSocketMode::send_interactive`],
//! [`FakeSocketMode::send_slash_command`]), then inspect the acknowledgements
//! ([`FakeSocketMode::acks`], [`FakeSocketMode::wait_ack`]).
//!
//! Invariants, as on Slack: `apps.connections.open` accepts only the app-level token (a bot
//! token is `not_allowed_token_type`) and answers a single-use `ws://` URL on loopback; every
//! connection starts with `hello`; an envelope goes to one open connection that has not been
//! told to disconnect; an envelope that is not acknowledged when its connection closes is sent
//! again on another connection with `retry_attempt` one higher (as is one the test redelivers
//! with [`FakeSocketMode::redeliver_unacked`]); `disconnect` (`refresh_requested`, `warning`)
//! stops new envelopes to that connection, which stays open until the client closes it or the
//! test does ([`FakeSocketMode::close`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use crate::http::{RecordedRequest, Reply};

/// The app-level token the fake Socket Mode accepts.
pub const APP_TOKEN: &str = "xapp-1-A0FAKE001-fake-app-token";

/// The app id `hello` names.
pub const APP_ID: &str = "A0FAKE001";

/// An acknowledgement the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeAck {
    /// The envelope it acknowledges.
    pub envelope_id: String,
    /// The response payload it carried, if any.
    pub payload: Option<Value>,
    /// The connection it came on.
    pub connection: u64,
}

#[derive(Debug)]
struct Pending {
    kind: &'static str,
    payload: Value,
    attempt: u32,
    connection: Option<u64>,
}

#[derive(Debug)]
struct Conn {
    tx: mpsc::UnboundedSender<Command>,
    disconnecting: bool,
}

#[derive(Debug)]
enum Command {
    Send(String),
    Close,
    Drop,
}

#[derive(Debug, Default)]
struct SockState {
    ws_addr: String,
    next_ticket: u64,
    tickets: Vec<String>,
    next_conn: u64,
    conns: BTreeMap<u64, Conn>,
    next_envelope: u64,
    pending: BTreeMap<String, Pending>,
    acks: Vec<FakeAck>,
    sent: BTreeMap<String, (&'static str, Value)>,
    opened: u64,
    pings: u64,
    rr: u64,
}

/// Stops the WebSocket listener when dropped.
#[derive(Debug)]
pub(crate) struct AcceptGuard(tokio::task::AbortHandle);

impl Drop for AcceptGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Socket Mode side of a fake Slack. Cloning shares the same state.
#[derive(Debug, Clone, Default)]
pub struct FakeSocketMode {
    state: Arc<Mutex<SockState>>,
    changed: Arc<Notify>,
}

fn ok_json(body: Value) -> Reply {
    Reply::json(StatusCode::OK, &body)
}

impl FakeSocketMode {
    fn lock(&self) -> MutexGuard<'_, SockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds the WebSocket listener on `127.0.0.1:0` and starts accepting until the returned
    /// guard is dropped.
    pub(crate) async fn start() -> std::io::Result<(Self, AcceptGuard)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let this = Self::default();
        this.lock().ws_addr = format!("ws://{}", listener.local_addr()?);
        let server = this.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(stream));
            }
        });
        Ok((this, AcceptGuard(accept.abort_handle())))
    }

    /// Answers `apps.connections.open`.
    pub(crate) fn connections_open(&self, req: &RecordedRequest) -> Reply {
        let fail = |error: &str| ok_json(json!({"ok": false, "error": error}));
        match req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        {
            None => fail("not_authed"),
            Some(t) if t.starts_with("xoxb-") || t.starts_with("xoxp-") => {
                fail("not_allowed_token_type")
            }
            Some(t) if t != APP_TOKEN => fail("invalid_auth"),
            Some(_) => {
                let mut s = self.lock();
                s.next_ticket += 1;
                let ticket = format!("tk{:06}", s.next_ticket);
                s.tickets.push(ticket.clone());
                let url = format!("{}/link/?ticket={ticket}&app_id={APP_ID}", s.ws_addr);
                ok_json(json!({"ok": true, "url": url}))
            }
        }
    }

    async fn serve(self, stream: TcpStream) {
        let mut ticket_ok = false;
        // Tungstenite's callback signature fixes the error type.
        #[allow(clippy::result_large_err)]
        let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let query = req.uri().query().unwrap_or_default();
            let ticket = query
                .split('&')
                .find_map(|p| p.strip_prefix("ticket="))
                .unwrap_or_default();
            let mut s = self.lock();
            match s.tickets.iter().position(|t| t == ticket) {
                Some(i) => {
                    s.tickets.remove(i);
                    ticket_ok = true;
                    Ok(resp)
                }
                None => {
                    let mut refusal = ErrorResponse::new(Some("invalid ticket".to_owned()));
                    *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                    Err(refusal)
                }
            }
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
            return;
        };
        if !ticket_ok {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (id, hello) = {
            let mut s = self.lock();
            s.next_conn += 1;
            s.opened += 1;
            let id = s.next_conn;
            s.conns.insert(
                id,
                Conn {
                    tx,
                    disconnecting: false,
                },
            );
            let hello = json!({
                "type": "hello", "num_connections": s.conns.len(),
                "debug_info": {"host": format!("applink-fake-{id}"), "build_number": 1,
                               "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            });
            (id, hello)
        };
        self.changed.notify_waiters();
        let mut alive = ws.send(Message::text(hello.to_string())).await.is_ok();
        // Envelopes that found no connection go to this one.
        let waiting: Vec<String> = {
            let s = self.lock();
            s.pending
                .iter()
                .filter(|(_, p)| p.connection.is_none())
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in waiting {
            self.deliver(&id, "timeout");
        }
        while alive {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command::Send(text)) => alive = ws.send(Message::text(text)).await.is_ok(),
                    Some(Command::Close) => {
                        let _ = ws.close(None).await;
                        alive = false;
                    }
                    Some(Command::Drop) | None => alive = false,
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_text(id, &text),
                    Some(Ok(Message::Ping(_))) => {
                        self.lock().pings += 1;
                        // Tungstenite queued the pong; flushing sends it.
                        alive = ws.flush().await.is_ok();
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => alive = false,
                    Some(Ok(_)) => {}
                },
            }
        }
        self.lock().conns.remove(&id);
        self.requeue(id);
        self.changed.notify_waiters();
    }

    fn on_text(&self, conn: u64, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let Some(envelope_id) = v["envelope_id"].as_str() else {
            return;
        };
        {
            let mut s = self.lock();
            s.pending.remove(envelope_id);
            s.acks.push(FakeAck {
                envelope_id: envelope_id.to_owned(),
                payload: v.get("payload").cloned(),
                connection: conn,
            });
        }
        self.changed.notify_waiters();
    }

    /// Sends each unacknowledged envelope that was on `conn` again, elsewhere.
    fn requeue(&self, conn: u64) {
        let ids: Vec<String> = {
            let s = self.lock();
            s.pending
                .iter()
                .filter(|(_, p)| p.connection == Some(conn))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            self.deliver(&id, "timeout");
        }
    }

    /// Sends a pending envelope to the next open connection that is not disconnecting; without
    /// one it waits for the next connection.
    fn deliver(&self, envelope_id: &str, reason: &str) {
        let mut s = self.lock();
        let open: Vec<u64> = s
            .conns
            .iter()
            .filter(|(_, c)| !c.disconnecting)
            .map(|(id, _)| *id)
            .collect();
        let target = if open.is_empty() {
            None
        } else {
            s.rr += 1;
            Some(open[(s.rr as usize) % open.len()])
        };
        let Some(p) = s.pending.get_mut(envelope_id) else {
            return;
        };
        if p.connection.is_some() {
            p.attempt += 1;
        }
        p.connection = target;
        let (retry_attempt, retry_reason) = if p.attempt == 0 {
            (0, "")
        } else {
            (p.attempt, reason)
        };
        let frame = json!({
            "envelope_id": envelope_id, "type": p.kind, "payload": p.payload,
            "accepts_response_payload": p.kind != "events_api",
            "retry_attempt": retry_attempt, "retry_reason": retry_reason,
        });
        if let Some(conn) = target.and_then(|t| s.conns.get(&t)) {
            let _ = conn.tx.send(Command::Send(frame.to_string()));
        }
    }

    fn send_envelope(&self, kind: &'static str, payload: Value) -> String {
        let id = {
            let mut s = self.lock();
            s.next_envelope += 1;
            let id = format!("env-{:06}", s.next_envelope);
            s.sent.insert(id.clone(), (kind, payload.clone()));
            s.pending.insert(
                id.clone(),
                Pending {
                    kind,
                    payload,
                    attempt: 0,
                    connection: None,
                },
            );
            id
        };
        self.deliver(&id, "");
        id
    }

    /// Sends an `interactive` envelope (a block actions or view submission payload, the JSON the
    /// HTTP path gets in its `payload` field) and returns its `envelope_id`.
    pub fn send_interactive(&self, payload: Value) -> String {
        self.send_envelope("interactive", payload)
    }

    /// Sends a `slash_commands` envelope; the payload is the HTTP form's fields as a JSON object.
    pub fn send_slash_command<K: AsRef<str>, V: AsRef<str>>(&self, form: &[(K, V)]) -> String {
        let payload: serde_json::Map<String, Value> = form
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), json!(v.as_ref())))
            .collect();
        self.send_envelope("slash_commands", Value::Object(payload))
    }

    /// Sends every unacknowledged envelope again (`retry_attempt` one higher, `retry_reason`
    /// `timeout`), as Slack does when an acknowledgement is late. Returns how many.
    pub fn redeliver_unacked(&self) -> usize {
        let ids: Vec<String> = self.lock().pending.keys().cloned().collect();
        for id in &ids {
            self.deliver(id, "timeout");
        }
        ids.len()
    }

    /// Sends envelope `envelope_id` again even though it was acknowledged, as Slack does when
    /// the acknowledgement did not reach it in time (`retry_attempt` counts every sending).
    /// False if no such envelope was sent.
    pub fn resend(&self, envelope_id: &str) -> bool {
        {
            let mut s = self.lock();
            let Some((kind, payload)) = s.sent.get(envelope_id).cloned() else {
                return false;
            };
            let attempt = 1 + s
                .acks
                .iter()
                .filter(|a| a.envelope_id == envelope_id)
                .count() as u32;
            s.pending.insert(
                envelope_id.to_owned(),
                Pending {
                    kind,
                    payload,
                    attempt,
                    connection: None,
                },
            );
        }
        self.deliver(envelope_id, "timeout");
        true
    }

    /// Sends `disconnect` with `reason` (`refresh_requested`, `warning`, `too_many_websockets`)
    /// on connection `conn`; it gets no new envelopes after that. False if it is not open.
    pub fn disconnect(&self, conn: u64, reason: &str) -> bool {
        let mut s = self.lock();
        let Some(c) = s.conns.get_mut(&conn) else {
            return false;
        };
        c.disconnecting = true;
        let frame = json!({"type": "disconnect", "reason": reason,
                           "debug_info": {"host": format!("applink-fake-{conn}")}});
        c.tx.send(Command::Send(frame.to_string())).is_ok()
    }

    /// Closes connection `conn` with a close frame.
    pub fn close(&self, conn: u64) {
        if let Some(c) = self.lock().conns.get(&conn) {
            let _ = c.tx.send(Command::Close);
        }
    }

    /// Drops connection `conn` without a close frame, as a network failure would.
    pub fn drop_connection(&self, conn: u64) {
        if let Some(c) = self.lock().conns.get(&conn) {
            let _ = c.tx.send(Command::Drop);
        }
    }

    /// The ids of the open connections, oldest first.
    pub fn connections(&self) -> Vec<u64> {
        self.lock().conns.keys().copied().collect()
    }

    /// How many connections were ever opened.
    pub fn opened(&self) -> u64 {
        self.lock().opened
    }

    /// How many pings the fake answered.
    pub fn pings(&self) -> u64 {
        self.lock().pings
    }

    /// The acknowledgements received so far, in order.
    pub fn acks(&self) -> Vec<FakeAck> {
        self.lock().acks.clone()
    }

    /// The envelopes sent but not acknowledged.
    pub fn unacked(&self) -> Vec<String> {
        self.lock().pending.keys().cloned().collect()
    }

    async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&SockState) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            if let Some(t) = f(&self.lock()) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return f(&self.lock());
            }
        }
    }

    /// Waits up to `timeout` until at least `n` connections that are not disconnecting are open;
    /// returns their ids.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> Option<Vec<u64>> {
        self.wait_for(timeout, |s| {
            let open: Vec<u64> = s
                .conns
                .iter()
                .filter(|(_, c)| !c.disconnecting)
                .map(|(id, _)| *id)
                .collect();
            (open.len() >= n).then_some(open)
        })
        .await
    }

    /// Waits up to `timeout` for the first acknowledgement of `envelope_id`.
    pub async fn wait_ack(&self, envelope_id: &str, timeout: Duration) -> Option<FakeAck> {
        self.wait_for(timeout, |s| {
            s.acks
                .iter()
                .find(|a| a.envelope_id == envelope_id)
                .cloned()
        })
        .await
    }

    /// Waits up to `timeout` until connection `conn` is closed.
    pub async fn wait_closed(&self, conn: u64, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| (!s.conns.contains_key(&conn)).then_some(()))
            .await
            .is_some()
    }
}
