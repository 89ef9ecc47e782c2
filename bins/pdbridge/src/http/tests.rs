//! The HTTP layer against a scripted handler: status codes, signatures, limits.

use std::sync::Mutex;

use super::*;
use tower::ServiceExt;

/// A handler standing in for the bridge: its answers are scripted and it records what it was given.
#[derive(Debug, Default)]
struct Scripted {
    fail: bool,
    duplicate: bool,
    seen: Mutex<Vec<(Option<WebhookId>, Bytes)>>,
}

impl Handler for Scripted {
    async fn pagerduty_webhook(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
    ) -> Result<WebhookAck, Unavailable> {
        self.seen.lock().unwrap().push((webhook_id, body));
        if self.fail {
            Err(Unavailable("db down".into()))
        } else if self.duplicate {
            Ok(WebhookAck::Duplicate)
        } else {
            Ok(WebhookAck::Accepted)
        }
    }

    async fn slack_interaction(&self, body: Bytes) -> Result<SlackReply, Unavailable> {
        self.seen.lock().unwrap().push((None, body));
        if self.fail {
            Err(Unavailable("db down".into()))
        } else {
            Ok(SlackReply::Empty)
        }
    }

    async fn slack_command(&self, _body: Bytes) -> Result<SlackReply, Unavailable> {
        Ok(SlackReply::Json(serde_json::json!({"text": "hi"})))
    }

    async fn health(&self) -> Result<(), Unavailable> {
        if self.fail {
            Err(Unavailable("db down".into()))
        } else {
            Ok(())
        }
    }
}

const NOW: i64 = 1_531_420_618;
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn make(bridge: Scripted) -> (App<Scripted>, Arc<Scripted>, Arc<Metrics>) {
    let bridge = Arc::new(bridge);
    let metrics = Arc::new(Metrics::new());
    let app = app(AppState {
        bridge: Arc::clone(&bridge),
        slack_secret: SlackSigningSecret::new(SLACK_SECRET),
        pagerduty_secrets: vec![PagerDutySecret::new("old"), PagerDutySecret::new("new")],
        metrics: Arc::clone(&metrics),
        clock: Arc::new(|| ids::Timestamp::from_millis(NOW * 1000)),
        body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
    });
    (app, bridge, metrics)
}

fn pd_request(body: &'static [u8], sig: Option<String>) -> Request<Full<Bytes>> {
    let mut b = Request::post("/pagerduty/webhook").header("x-webhook-id", "wh-1");
    if let Some(sig) = sig {
        b = b.header("X-PagerDuty-Signature", sig);
    }
    b.body(Full::new(Bytes::from_static(body))).unwrap()
}

fn slack_request(path: &str, body: &'static [u8], ts: i64, secret: &str) -> Request<Full<Bytes>> {
    let sig = signing::sign_slack(&SlackSigningSecret::new(secret), ts, body);
    Request::post(path)
        .header("X-Slack-Request-Timestamp", ts.to_string())
        .header("X-Slack-Signature", sig)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

async fn status(app: &App<Scripted>, req: Request<Full<Bytes>>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const PD_BODY: &[u8] = br#"{"event":{"id":"E1","event_type":"incident.triggered"}}"#;

#[tokio::test]
async fn pagerduty_signed_with_either_secret_is_accepted_202() {
    let (app, bridge, metrics) = make(Scripted::default());
    let sig = format!(
        "v1=00,{}",
        signing::sign_pagerduty(&PagerDutySecret::new("new"), PD_BODY)
    );
    let (code, _) = status(&app, pd_request(PD_BODY, Some(sig))).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let seen = bridge.seen.lock().unwrap();
    assert_eq!(seen[0].0, Some(WebhookId::new("wh-1")));
    assert_eq!(seen[0].1.as_ref(), PD_BODY);
    assert!(
        metrics
            .render()
            .contains("pdbridge_webhooks_received_total{source=\"pagerduty\"} 1")
    );
}

#[tokio::test]
async fn plain_answers_keep_their_text_and_content_type() {
    let (app, _, _) = make(Scripted::default());
    let sig = signing::sign_pagerduty(&PagerDutySecret::new("old"), PD_BODY);
    let resp = app
        .clone()
        .oneshot(pd_request(PD_BODY, Some(sig)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.headers().get(CONTENT_TYPE).unwrap(),
        "text/plain; charset=utf-8"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), b"accepted\n");
}

#[tokio::test]
async fn pagerduty_duplicate_is_200() {
    let (app, _, metrics) = make(Scripted {
        duplicate: true,
        ..Scripted::default()
    });
    let sig = signing::sign_pagerduty(&PagerDutySecret::new("old"), PD_BODY);
    let (code, _) = status(&app, pd_request(PD_BODY, Some(sig))).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        metrics
            .render()
            .contains("pdbridge_webhooks_duplicate_total{source=\"pagerduty\"} 1")
    );
}

#[tokio::test]
async fn pagerduty_missing_or_forged_signature_is_401_and_never_reaches_the_bridge() {
    let (app, bridge, metrics) = make(Scripted::default());
    let (code, _) = status(&app, pd_request(PD_BODY, None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let forged = signing::sign_pagerduty(&PagerDutySecret::new("guess"), PD_BODY);
    let (code, _) = status(&app, pd_request(PD_BODY, Some(forged))).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = status(&app, pd_request(PD_BODY, Some("v1=zz".into()))).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(bridge.seen.lock().unwrap().is_empty());
    let text = metrics.render();
    assert!(text.contains("reason=\"missing_header\"} 1"), "{text}");
    assert!(text.contains("reason=\"mismatch\"} 1"), "{text}");
}

#[tokio::test]
async fn pagerduty_signature_flood_is_401_for_the_cap_and_never_reaches_the_bridge() {
    let (app, bridge, metrics) = make(Scripted::default());
    let body: &'static [u8] = Box::leak(vec![b'{'; BODY_LIMIT].into_boxed_slice());
    let good = signing::sign_pagerduty(&PagerDutySecret::new("new"), body);
    let mut entries = vec![format!("v1={}", "0".repeat(64)); 4999];
    entries.push(good.clone());
    let (code, _) = status(&app, pd_request(body, Some(entries.join(",")))).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(bridge.seen.lock().unwrap().is_empty());
    let text = metrics.render();
    assert!(text.contains("reason=\"too_many_signatures\"} 1"), "{text}");
    // The same valid entry alone is accepted.
    let (code, _) = status(&app, pd_request(body, Some(good))).await;
    assert_eq!(code, StatusCode::ACCEPTED);
}

/// A request body that never yields a frame (a stalled client).
struct Stalled;

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_with_408_before_any_signature_check() {
    let bridge = Arc::new(Scripted::default());
    let metrics = Arc::new(Metrics::new());
    let app = app(AppState {
        bridge: Arc::clone(&bridge),
        slack_secret: SlackSigningSecret::new(SLACK_SECRET),
        pagerduty_secrets: vec![PagerDutySecret::new("new")],
        metrics: Arc::clone(&metrics),
        clock: Arc::new(|| ids::Timestamp::from_millis(NOW * 1000)),
        body_read_timeout: Duration::from_millis(50),
    });
    let sig = signing::sign_pagerduty(&PagerDutySecret::new("new"), PD_BODY);
    let req = Request::post("/pagerduty/webhook")
        .header("X-PagerDuty-Signature", sig)
        .header(CONTENT_LENGTH, PD_BODY.len().to_string())
        .body(Stalled)
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), app.oneshot(req))
        .await
        .expect("the deadline answers")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(resp.headers()[CONNECTION], "close");
    assert!(bridge.seen.lock().unwrap().is_empty());
    let text = metrics.render();
    assert!(text.contains("reason=\"body_timeout\"} 1"), "{text}");
}

#[tokio::test]
async fn our_own_failure_is_503_never_4xx() {
    let (app, _, _) = make(Scripted {
        fail: true,
        ..Scripted::default()
    });
    let sig = signing::sign_pagerduty(&PagerDutySecret::new("old"), PD_BODY);
    let (code, _) = status(&app, pd_request(PD_BODY, Some(sig))).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let req = slack_request("/slack/interactions", b"payload=%7B%7D", NOW, SLACK_SECRET);
    assert_eq!(status(&app, req).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let req = Request::get("/healthz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(status(&app, req).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn slack_official_vector_verifies_and_stale_or_forged_is_401() {
    let body: &'static [u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let (app, _, _) = make(Scripted::default());
    let mut req = Request::post("/slack/commands")
        .header("X-Slack-Request-Timestamp", "1531420618")
        .header(
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        )
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let (code, text) = status(&app, req).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(text, r#"{"text":"hi"}"#);

    req = slack_request(
        "/slack/interactions",
        b"payload=%7B%7D",
        NOW - 301,
        SLACK_SECRET,
    );
    assert_eq!(status(&app, req).await.0, StatusCode::UNAUTHORIZED);
    req = slack_request("/slack/interactions", b"payload=%7B%7D", NOW, "wrong");
    assert_eq!(status(&app, req).await.0, StatusCode::UNAUTHORIZED);
    req = Request::post("/slack/interactions")
        .body(Full::new(Bytes::from_static(b"payload=%7B%7D")))
        .unwrap();
    assert_eq!(status(&app, req).await.0, StatusCode::UNAUTHORIZED);
    req = slack_request("/slack/interactions", b"payload=%7B%7D", NOW, SLACK_SECRET);
    let (code, text) = status(&app, req).await;
    assert_eq!((code, text.as_str()), (StatusCode::OK, ""));
}

#[tokio::test]
async fn oversized_bodies_are_413_by_header_and_while_reading() {
    let (app, bridge, _) = make(Scripted::default());
    let req = Request::post("/pagerduty/webhook")
        .header(CONTENT_LENGTH, (BODY_LIMIT + 1).to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(status(&app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let big = Bytes::from(vec![b'a'; BODY_LIMIT + 1]);
    let req = Request::post("/slack/interactions")
        .body(Full::new(big))
        .unwrap();
    assert_eq!(status(&app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let req = Request::post("/slack/commands")
        .header(CONTENT_LENGTH, "lots")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(status(&app, req).await.0, StatusCode::BAD_REQUEST);
    assert!(bridge.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_separate_metrics_listener_takes_metrics_off_the_public_one() {
    let (app, _, _) = make(Scripted::default());
    let get = |p: &str| Request::get(p).body(Full::new(Bytes::new())).unwrap();
    let public = app.for_listener(Listener::Public);
    let internal = app.for_listener(Listener::Internal);
    assert_eq!(
        status(&public, get("/metrics")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(&public, get("/healthz")).await.0, StatusCode::OK);
    let sig = signing::sign_pagerduty(&PagerDutySecret::new("old"), PD_BODY);
    let (code, _) = status(&public, pd_request(PD_BODY, Some(sig.clone()))).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let (code, text) = status(&internal, get("/metrics")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(text.contains("pdbridge_webhooks_received_total"), "{text}");
    assert_eq!(status(&internal, get("/healthz")).await.0, StatusCode::OK);
    let (code, _) = status(&internal, pd_request(PD_BODY, Some(sig))).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_metrics_404_and_405() {
    let (app, _, _) = make(Scripted::default());
    let get = |p: &str| Request::get(p).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(
        status(&app, get("/healthz")).await,
        (StatusCode::OK, "ok\n".into())
    );
    let (code, text) = status(&app, get("/metrics")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        text.contains("# TYPE pdbridge_webhooks_received counter"),
        "{text}"
    );
    assert_eq!(status(&app, get("/nope")).await.0, StatusCode::NOT_FOUND);
    let resp = app
        .clone()
        .oneshot(get("/pagerduty/webhook"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[ALLOW], "POST");
    let resp = app
        .clone()
        .oneshot(
            Request::delete("/metrics")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()[ALLOW], "GET, HEAD");
    let post = Request::post("/healthz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(status(&app, post).await.0, StatusCode::METHOD_NOT_ALLOWED);
}
