//! The fake Slack's Socket Mode: `apps.connections.open`, `hello`, envelopes, acknowledgements,
//! redelivery and `disconnect`.

use std::time::Duration;

use bytes::Bytes;
use fakes::slack::FakeSlack;
use fakes::slack::socket::APP_TOKEN;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn open(slack: &FakeSlack, token: &str) -> Value {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/apps.connections.open", slack.api_url()))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn connect(slack: &FakeSlack) -> Ws {
    let url = open(slack, APP_TOKEN).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn ack(ws: &mut Ws, envelope: &Value, payload: Option<Value>) {
    let mut frame = json!({"envelope_id": envelope["envelope_id"]});
    if let Some(p) = payload {
        frame["payload"] = p;
    }
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

#[tokio::test]
async fn connections_open_takes_only_the_app_token_and_its_url_is_single_use() {
    let slack = FakeSlack::start().await;
    assert_eq!(
        open(&slack, &slack.token()).await["error"],
        "not_allowed_token_type"
    );
    assert_eq!(open(&slack, "xapp-1-other").await["error"], "invalid_auth");
    let url = open(&slack, APP_TOKEN).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_ws, _) = tokio_tungstenite::connect_async(url.clone()).await.unwrap();
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    assert_eq!(slack.socket().opened(), 1);
}

#[tokio::test]
async fn envelopes_are_acknowledged_with_their_payload() {
    let slack = FakeSlack::start().await;
    let sock = slack.socket();
    let mut ws = connect(&slack).await;
    sock.wait_connections(1, WAIT).await.unwrap();
    let id = sock.send_interactive(json!({"type": "view_submission"}));
    let env = next_json(&mut ws).await;
    assert_eq!(env["envelope_id"], id.as_str());
    assert_eq!(env["type"], "interactive");
    assert_eq!(env["retry_attempt"], 0);
    assert_eq!(env["accepts_response_payload"], true);
    ack(&mut ws, &env, Some(json!({"response_action": "clear"}))).await;
    let got = sock.wait_ack(&id, WAIT).await.unwrap();
    assert_eq!(got.payload, Some(json!({"response_action": "clear"})));
    assert!(sock.unacked().is_empty());

    let id = sock.send_slash_command(&[("command", "/pd"), ("text", "help")]);
    let env = next_json(&mut ws).await;
    assert_eq!(env["type"], "slash_commands");
    assert_eq!(env["payload"]["text"], "help");
    ack(&mut ws, &env, None).await;
    assert_eq!(sock.wait_ack(&id, WAIT).await.unwrap().payload, None);
}

#[tokio::test]
async fn unacknowledged_envelopes_are_redelivered_with_a_higher_retry_attempt() {
    let slack = FakeSlack::start().await;
    let sock = slack.socket();
    let mut ws = connect(&slack).await;
    sock.wait_connections(1, WAIT).await.unwrap();
    let id = sock.send_interactive(json!({"type": "block_actions"}));
    assert_eq!(next_json(&mut ws).await["retry_attempt"], 0);
    assert_eq!(sock.redeliver_unacked(), 1);
    let again = next_json(&mut ws).await;
    assert_eq!(again["envelope_id"], id.as_str());
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    ack(&mut ws, &again, None).await;
    sock.wait_ack(&id, WAIT).await.unwrap();
    assert_eq!(sock.redeliver_unacked(), 0);
}

#[tokio::test]
async fn a_disconnecting_socket_gets_nothing_new_and_a_dropped_one_loses_nothing() {
    let slack = FakeSlack::start().await;
    let sock = slack.socket();
    let mut first = connect(&slack).await;
    let mut second = connect(&slack).await;
    let conns = sock.wait_connections(2, WAIT).await.unwrap();
    assert!(sock.disconnect(conns[0], "refresh_requested"));
    let frame = next_json(&mut first).await;
    assert_eq!(frame["type"], "disconnect");
    assert_eq!(frame["reason"], "refresh_requested");
    for _ in 0..3 {
        let id = sock.send_interactive(json!({"type": "block_actions"}));
        let env = next_json(&mut second).await;
        assert_eq!(env["envelope_id"], id.as_str());
        ack(&mut second, &env, None).await;
        sock.wait_ack(&id, WAIT).await.unwrap();
    }
    // An envelope unacknowledged on a dropped connection comes again on the next one.
    let id = sock.send_interactive(json!({"type": "block_actions"}));
    assert_eq!(next_json(&mut second).await["envelope_id"], id.as_str());
    sock.drop_connection(conns[1]);
    assert!(sock.wait_closed(conns[1], WAIT).await);
    sock.close(conns[0]);
    assert!(sock.wait_closed(conns[0], WAIT).await);
    let mut third = connect(&slack).await;
    let env = next_json(&mut third).await;
    assert_eq!(env["envelope_id"], id.as_str());
    assert_eq!(env["retry_attempt"], 1);
}
