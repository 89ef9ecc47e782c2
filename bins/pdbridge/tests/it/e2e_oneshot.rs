//! The real service (real bridge, temporary SQLite) driven with `tower::ServiceExt::oneshot`,
//! with the published signature vectors and webhook fixtures. The clients point at a closed
//! port: nothing here needs Slack or PagerDuty to answer.

use crate::common;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use pdbridge::app::{Options, build};
use tower::ServiceExt;

const GO_PD_SECRET: &str = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
const TEST_SECRET: &str = "oneshot-secret";

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/signature-vectors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/pagerduty-webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn service(dir: &tempfile::TempDir) -> pdbridge::http::App<pdbridge::bridge::Bridge> {
    let config = common::offline_config(dir, &[GO_PD_SECRET, TEST_SECRET]);
    build(Arc::new(config), &Options::default())
        .await
        .unwrap()
        .0
}

fn pd(body: &[u8], signature: &str, webhook_id: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::post("/pagerduty/webhook")
        .header("content-type", "application/json")
        .header("x-pagerduty-signature", signature);
    if let Some(id) = webhook_id {
        req = req.header("x-webhook-id", id);
    }
    req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}

#[tokio::test]
async fn published_vectors_dedupe_and_fixtures_through_the_real_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let app = service(&dir).await;
    let v = vectors();
    let cases = v["pagerduty"].as_array().unwrap();
    for case in cases {
        let body = case["body"].as_str().unwrap().as_bytes();
        let sig = case["headers"]["X-PagerDuty-Signature"].as_str().unwrap();
        let secret_is_ours = case["secret"].as_str() == Some(GO_PD_SECRET);
        let resp = app
            .clone()
            .oneshot(pd(body, sig, Some("wh-1")))
            .await
            .unwrap();
        if case["valid"] == true && secret_is_ours {
            assert!(
                resp.status().is_success(),
                "{}: {}",
                case["id"],
                resp.status()
            );
        } else if case["valid"] == false {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{}", case["id"]);
        }
    }
    // The valid go-pagerduty delivery again: a duplicate, by X-Webhook-Id and by event.id.
    let valid = cases
        .iter()
        .find(|c| c["id"] == "go-pagerduty-webhookv3-valid")
        .unwrap();
    let body = valid["body"].as_str().unwrap().as_bytes();
    let sig = valid["headers"]["X-PagerDuty-Signature"].as_str().unwrap();
    let again = app
        .clone()
        .oneshot(pd(body, sig, Some("wh-1")))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again = app
        .clone()
        .oneshot(pd(body, sig, Some("wh-other")))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);

    // Every incident fixture, signed with our second secret: 202 once, 200 after.
    for name in [
        "incident.triggered.json",
        "incident.acknowledged.json",
        "incident.resolved.json",
        "incident.annotated.json",
        "incident.unsupported.json",
    ] {
        let body = fixture(name);
        let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(TEST_SECRET), &body);
        let first = app.clone().oneshot(pd(&body, &sig, None)).await.unwrap();
        assert!(first.status().is_success(), "{name}: {}", first.status());
        let second = app.clone().oneshot(pd(&body, &sig, None)).await.unwrap();
        assert_eq!(second.status(), StatusCode::OK, "{name} redelivered");
    }
    // The ping and a non-incident event are 2xx and stored nowhere.
    for name in ["pagey.ping.json", "service.updated.pagerduty-docs.json"] {
        let body = fixture(name);
        let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(TEST_SECRET), &body);
        let resp = app.clone().oneshot(pd(&body, &sig, None)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
    }
    // Slack's certificate check on the command URL, signed: 200.
    let body: &[u8] = b"ssl_check=1&token=legacy";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = signing::sign_slack(&signing::SlackSigningSecret::new("s"), now, body);
    let req = Request::post("/slack/commands")
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", sig)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let health = app
        .clone()
        .oneshot(
            Request::get("/healthz")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// A signed `/pd` command from workspace `team`.
fn command(team: &str, text: &str) -> Request<Full<Bytes>> {
    let body = serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", team),
        ("channel_id", "C1"),
        ("user_id", "U1"),
        ("user_name", "someone"),
        ("command", "/pd"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/T/1/x"),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = signing::sign_slack(&signing::SlackSigningSecret::new("s"), now, body.as_bytes());
    Request::post("/slack/commands")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", sig)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn command_text(app: &pdbridge::http::App<pdbridge::bridge::Bridge>, team: &str) -> String {
    use http_body_util::BodyExt;
    let resp = app.clone().oneshot(command(team, "help")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["response_type"], "ephemeral");
    json["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn slash_commands_from_another_workspace_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = service(&dir).await;
    // The configured workspace (T1) is answered.
    assert!(command_text(&app, "T1").await.contains("/pd whoami"));
    // Another workspace is told no, and nothing else.
    let refused = command_text(&app, "T2OTHER").await;
    assert!(
        refused.contains("T2OTHER") && refused.contains("only accepts commands from T1"),
        "{refused}"
    );
    assert!(!refused.contains("/pd whoami"), "{refused}");
}

#[tokio::test]
async fn a_signed_body_that_does_not_parse_is_kept_counted_and_answered_2xx() {
    use http_body_util::BodyExt;
    let dir = tempfile::tempdir().unwrap();
    let config = common::offline_config(&dir, &[TEST_SECRET]);
    let (app, bridge) = build(Arc::new(config), &Options::default()).await.unwrap();
    let garbage: &[u8] = b"\x00\xffnot json at all";
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(TEST_SECRET), garbage);
    let first = app
        .clone()
        .oneshot(pd(garbage, &sig, Some("wh-garbage")))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // PagerDuty's redelivery of the same X-Webhook-Id is a duplicate, not a second row.
    let again = app
        .clone()
        .oneshot(pd(garbage, &sig, Some("wh-garbage")))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let truncated = br#"{"event":{"id":"E1","event_type":"incident.trig"#;
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(TEST_SECRET), truncated);
    let resp = app
        .clone()
        .oneshot(pd(truncated, &sig, None))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let store = Arc::clone(bridge.store());
    let (summary, body) = tokio::task::spawn_blocking(move || {
        store.read(|tx| {
            let summary = tx.status(ids::Timestamp::EPOCH, 10)?;
            let body = tx.unparsed_webhook_body(summary.recent_unparsed[1].seq)?;
            Ok::<_, store::Error>((summary, body))
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.unparsed_webhooks, 2);
    assert_eq!(body.as_deref(), Some(garbage), "kept byte for byte");
    assert_eq!(summary.unprocessed_webhooks, 0, "never reaches the engine");

    let metrics = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let text = metrics.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("pdbridge_webhooks_unparsed_total 2"),
        "{text}"
    );
}

/// `GET path` on `addr` over a fresh connection: status and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "pdbridge")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_public_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::offline_config(&dir, &[TEST_SECRET]);
    config.server.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = pdbridge::app::start(config, listener, Options::default())
        .await
        .unwrap();
    let internal = running.metrics_addr.expect("a metrics listener");
    assert_ne!(internal, running.addr);
    assert_eq!(get(running.addr, "/metrics").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(running.addr, "/healthz").await.0, StatusCode::OK);
    let (status, text) = get(internal, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("pdbridge_webhooks_unparsed_total 0"),
        "{text}"
    );
    assert_eq!(
        get(internal, "/pagerduty/webhook").await.0,
        StatusCode::NOT_FOUND
    );
    running.abort().await;

    // Unset (the default), the one listener serves /metrics.
    let config = common::offline_config(&dir, &[TEST_SECRET]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = pdbridge::app::start(config, listener, Options::default())
        .await
        .unwrap();
    assert_eq!(running.metrics_addr, None);
    assert_eq!(get(running.addr, "/metrics").await.0, StatusCode::OK);
    running.abort().await;
}
