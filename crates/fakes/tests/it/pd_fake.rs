//! The fake PagerDuty behaves like PagerDuty where pdbridge depends on it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fakes::http::{Reply, Server};
use fakes::pd::{DeliveryRetry, FakePagerDuty, Fault, Status};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ids::{EscalationPolicyId, PdUserId};
use serde_json::{Value, json};

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    pub(crate) body: Value,
    raw: Bytes,
}

pub(crate) async fn call(
    url: &str,
    method: Method,
    path: &str,
    from: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("authorization", "Token token=t")
        .header("accept", "application/vnd.pagerduty+json;version=2");
    if let Some(from) = from {
        req = req.header("from", from);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

struct World {
    fake: FakePagerDuty,
    ep: EscalationPolicyId,
    bob: PdUserId,
}

async fn world() -> World {
    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice", "alice@example.com");
    let bob = fake.add_user("PBOB001", "Bob", "bob@example.com");
    let ep = fake.add_escalation_policy("PEP0001", "EP", vec![vec![alice], vec![bob.clone()]]);
    World { fake, ep, bob }
}

fn ack() -> Value {
    json!({"incident": {"type": "incident_reference", "status": "acknowledged"}})
}

fn resolve() -> Value {
    json!({"incident": {"type": "incident_reference", "status": "resolved"}})
}

#[tokio::test]
async fn mutations_need_the_from_of_a_known_user() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    let path = format!("/incidents/{id}");
    let url = w.fake.url();
    let missing = call(&url, Method::PUT, &path, None, Some(ack())).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"]["code"], 2001);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"From\" header")
    );
    let malformed = call(&url, Method::PUT, &path, Some("alice"), Some(ack())).await;
    assert_eq!(malformed.body["error"]["code"], 1028);
    let unknown = call(
        &url,
        Method::PUT,
        &path,
        Some("eve@example.com"),
        Some(ack()),
    )
    .await;
    assert_eq!(unknown.body["error"]["code"], 1008);
    let note = call(
        &url,
        Method::POST,
        &format!("{path}/notes"),
        None,
        Some(json!({"note": {"content": "x"}})),
    )
    .await;
    assert_eq!(note.status, StatusCode::BAD_REQUEST);
    assert_eq!(w.fake.incident(&id).unwrap().status, Status::Triggered);
    assert!(w.fake.incident(&id).unwrap().notes.is_empty());
    // Case does not matter for the email.
    let ok = call(
        &url,
        Method::PUT,
        &path,
        Some("ALICE@example.com"),
        Some(ack()),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["incident"]["status"], "acknowledged");
    assert_eq!(
        ok.body["incident"]["assignments"][0]["assignee"]["id"],
        "PALICE1"
    );
}

#[tokio::test]
async fn transitions_follow_pagerduty() {
    let w = world().await;
    let url = w.fake.url();
    let id = w.fake.add_incident("X", &w.ep);
    let path = format!("/incidents/{id}");
    let from = Some("bob@example.com");
    assert_eq!(
        call(&url, Method::PUT, &path, from, Some(ack()))
            .await
            .status,
        StatusCode::OK
    );
    let again = call(&url, Method::PUT, &path, from, Some(ack())).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["error"]["code"], 1002);
    assert_eq!(
        call(&url, Method::PUT, &path, from, Some(resolve()))
            .await
            .status,
        StatusCode::OK
    );
    let twice = call(&url, Method::PUT, &path, from, Some(resolve())).await;
    assert_eq!(twice.body["error"]["code"], 1001);
    // A stale "Acknowledge" on a resolved incident reopens it.
    let reopened = call(&url, Method::PUT, &path, from, Some(ack())).await;
    assert_eq!(reopened.status, StatusCode::OK);
    let state = w.fake.incident(&id).unwrap();
    assert_eq!(state.status, Status::Acknowledged);
    assert!(state.reopened_at.is_some());
    assert_eq!(state.assignees, vec![w.bob.clone()]);

    let esc = call(
        &url,
        Method::PUT,
        &path,
        from,
        Some(json!({"incident": {"type": "incident_reference", "escalation_level": 2}})),
    )
    .await;
    assert_eq!(esc.status, StatusCode::OK);
    let state = w.fake.incident(&id).unwrap();
    assert_eq!(
        (state.escalation_level, state.status),
        (2, Status::Triggered)
    );
    assert_eq!(state.assignees, vec![w.bob.clone()]);
    let too_far = call(
        &url,
        Method::PUT,
        &path,
        from,
        Some(json!({"incident": {"type": "incident_reference", "escalation_level": 3}})),
    )
    .await;
    assert_eq!(too_far.body["error"]["code"], 1006);

    // Incident numbers work in place of ids.
    let by_number = call(&url, Method::GET, "/incidents/1", None, None).await;
    assert_eq!(by_number.body["incident"]["id"], id.as_str());
    assert_eq!(by_number.body["incident"]["incident_number"], 1);
}

#[tokio::test]
async fn pagination_limits_are_enforced() {
    let w = world().await;
    let url = w.fake.url();
    for n in 0..3 {
        w.fake.add_incident(&format!("i{n}"), &w.ep);
    }
    let page = call(&url, Method::GET, "/incidents?limit=2&offset=0", None, None).await;
    assert_eq!(page.body["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["more"], true);
    let last = call(&url, Method::GET, "/incidents?limit=2&offset=2", None, None).await;
    assert_eq!(last.body["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(last.body["more"], false);
    let big = call(&url, Method::GET, "/incidents?limit=101", None, None).await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST);
    let far = call(
        &url,
        Method::GET,
        "/incidents?limit=100&offset=9901",
        None,
        None,
    )
    .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rate_limit_and_faults() {
    let w = world().await;
    let url = w.fake.url();
    w.fake.set_rate_limit(2);
    for _ in 0..2 {
        assert_eq!(
            call(&url, Method::GET, "/users/PBOB001", None, None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let limited = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["error"]["code"], 2020);
    let reset: u64 = limited.headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset));
    w.fake.set_rate_limit(960);

    w.fake.push_fault(Fault::RateLimited { reset: None });
    w.fake.push_fault(Fault::RateLimited {
        reset: Some(Duration::from_millis(1500)),
    });
    w.fake.push_fault(Fault::ServerError(502));
    w.fake.push_fault(Fault::Slow(Duration::from_millis(300)));
    let bare = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(bare.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(bare.raw.is_empty());
    assert!(bare.headers.get("ratelimit-reset").is_none());
    let with_reset = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(with_reset.headers["ratelimit-reset"], "1.500");
    let bad_gateway = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(bad_gateway.status, StatusCode::BAD_GATEWAY);
    let started = Instant::now();
    let slow = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(slow.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.body["user"]["email"], "bob@example.com");

    w.fake.set_down(true);
    let down = call(&url, Method::GET, "/users/PBOB001", None, None).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    w.fake.set_down(false);
    assert_eq!(
        call(&url, Method::GET, "/users/PBOB001", None, None)
            .await
            .status,
        StatusCode::OK
    );
}

/// A receiver that fails the first `failures` requests with 500, then accepts.
pub(crate) async fn receiver(failures: usize) -> Server {
    let seen = Arc::new(Mutex::new(0usize));
    Server::spawn(Arc::new(move |_req| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            let mut n = seen.lock().unwrap();
            *n += 1;
            let status = if *n <= failures {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::ACCEPTED
            };
            Reply::json(status, &json!({}))
        })
    }))
    .await
    .unwrap()
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_ordered_per_incident() {
    let w = world().await;
    let url = w.fake.url();
    let target = receiver(2).await;
    w.fake.set_delivery_retry(DeliveryRetry {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
    });
    w.fake
        .set_webhook_target(&format!("{}/hook", target.url()), "whsec-test");
    let id = w.fake.trigger_incident("Checkout down", &w.ep);
    let path = format!("/incidents/{id}");
    let from = Some("bob@example.com");
    call(&url, Method::PUT, &path, from, Some(ack())).await;
    call(
        &url,
        Method::POST,
        &format!("{path}/notes"),
        from,
        Some(json!({"note": {"content": "looking"}})),
    )
    .await;
    call(&url, Method::PUT, &path, from, Some(resolve())).await;

    let accepted = w.fake.wait_for_accepted(4, Duration::from_secs(5)).await;
    assert_eq!(accepted.len(), 4);
    let types: Vec<&str> = accepted.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "incident.triggered",
            "incident.acknowledged",
            "incident.annotated",
            "incident.resolved"
        ]
    );
    // The first delivery failed twice, then succeeded with the same X-Webhook-Id.
    let all = w.fake.deliveries();
    let first: Vec<_> = all
        .iter()
        .filter(|a| a.webhook_id == accepted[0].webhook_id)
        .collect();
    assert_eq!(
        first.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(500), Some(500), Some(202)]
    );
    let received = target.requests();
    assert_eq!(received.len(), 6);
    assert_eq!(
        received[0].header("x-webhook-id"),
        received[2].header("x-webhook-id")
    );
    for req in &received {
        signing::verify_pagerduty(
            &[signing::PagerDutySecret::new("whsec-test")],
            req.header("x-pagerduty-signature"),
            &req.body,
        )
        .unwrap();
        assert_eq!(req.header("content-type"), Some("application/json"));
    }
    let ack_event = received
        .iter()
        .map(|r| r.json())
        .find(|e| e["event"]["event_type"] == "incident.acknowledged")
        .unwrap();
    assert_eq!(ack_event["event"]["agent"]["id"], "PBOB001");
    assert_eq!(ack_event["event"]["data"]["number"], 1);
    assert_eq!(ack_event["event"]["data"]["assignees"][0]["id"], "PBOB001");
    let triggered = received[0].json();
    assert_eq!(triggered["event"]["agent"], Value::Null);
    assert_eq!(triggered["event"]["data"]["status"], "triggered");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_disabled_subscriptions_get_nothing() {
    let w = world().await;
    let target = Server::spawn(Arc::new(|_req| {
        Box::pin(async { Reply::json(StatusCode::FORBIDDEN, &json!({})) })
    }))
    .await
    .unwrap();
    let sub = w.fake.set_webhook_target(&target.url(), "s");
    w.fake.trigger_incident("A", &w.ep);
    let attempts = w.fake.wait_for_attempts(1, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 1);
    // A 4xx is final: no second attempt follows.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.fake.deliveries().len(), 1);
    assert_eq!(w.fake.deliveries()[0].status, Some(403));
    w.fake.disable_subscription(&sub);
    w.fake.trigger_incident("B", &w.ep);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.fake.deliveries().len(), 1);
}

#[tokio::test]
async fn incidents_carry_their_service_and_policy_teams_in_rest_and_webhooks() {
    let w = world().await;
    let url = w.fake.url();
    let team = w.fake.add_team("PTEAM01", "Payments");
    let svc = w
        .fake
        .add_service("PSVC001", "Checkout", std::slice::from_ref(&team));
    w.fake.set_policy_teams(&w.ep, std::slice::from_ref(&team));
    w.fake.set_user_teams(&w.bob, std::slice::from_ref(&team));
    let target = receiver(0).await;
    w.fake
        .set_webhook_target(&format!("{}/hook", target.url()), "s");
    let id = w.fake.trigger_incident_on("Checkout down", &w.ep, &svc);

    let got = call(&url, Method::GET, &format!("/incidents/{id}"), None, None).await;
    assert_eq!(got.body["incident"]["service"]["id"], "PSVC001");
    assert_eq!(got.body["incident"]["service"]["summary"], "Checkout");
    assert_eq!(got.body["incident"]["teams"][0]["id"], "PTEAM01");
    assert_eq!(got.body["incident"]["teams"][0]["summary"], "Payments");
    let accepted = w.fake.wait_for_accepted(1, Duration::from_secs(5)).await;
    let event: Value = serde_json::from_slice(&accepted[0].body).unwrap();
    assert_eq!(event["event"]["data"]["service"]["id"], "PSVC001");
    assert_eq!(event["event"]["data"]["teams"][0]["id"], "PTEAM01");

    let svc_json = call(&url, Method::GET, "/services/PSVC001", None, None).await;
    assert_eq!(svc_json.body["service"]["teams"][0]["id"], "PTEAM01");
    let team_json = call(&url, Method::GET, "/teams/PTEAM01", None, None).await;
    assert_eq!(team_json.body["team"]["name"], "Payments");
    let user = call(&url, Method::GET, &format!("/users/{}", w.bob), None, None).await;
    assert_eq!(user.body["user"]["teams"][0]["id"], "PTEAM01");
    let me = call(&url, Method::GET, "/users/me", None, None).await;
    assert_eq!(me.status, StatusCode::BAD_REQUEST);
    w.fake.add_user_token("t", &w.bob);
    let me = call(&url, Method::GET, "/users/me", None, None).await;
    assert_eq!(me.body["user"]["id"], w.bob.as_str());
    let missing = call(&url, Method::GET, "/teams/PNOPE", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// More actions: a snooze needs an acknowledged incident, a duration of 1 s to 7 days and a
/// `From`; an urgency change is high or low, on an open incident.
#[tokio::test]
async fn snooze_and_urgency_follow_pagerduty() {
    let w = world().await;
    let url = w.fake.url();
    let id = w.fake.add_incident("X", &w.ep);
    let path = format!("/incidents/{id}");
    let snooze = format!("/incidents/{id}/snooze");
    let from = Some("bob@example.com");
    let hour = Some(json!({"duration": 3600}));
    let triggered = call(&url, Method::POST, &snooze, from, hour.clone()).await;
    assert_eq!(
        triggered.status,
        StatusCode::BAD_REQUEST,
        "{}",
        triggered.body
    );
    assert!(w.fake.incident(&id).unwrap().snoozed_until.is_none());
    call(&url, Method::PUT, &path, from, Some(ack())).await;
    let no_from = call(&url, Method::POST, &snooze, None, hour.clone()).await;
    assert_eq!(no_from.status, StatusCode::BAD_REQUEST);
    for bad in [
        json!({"duration": 0}),
        json!({"duration": 604_801}),
        json!({}),
    ] {
        let answer = call(&url, Method::POST, &snooze, from, Some(bad.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let ok = call(&url, Method::POST, &snooze, from, hour).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["incident"]["status"], "acknowledged");
    assert!(w.fake.incident(&id).unwrap().snoozed_until.is_some());

    let urgency = |u: &str| Some(json!({"incident": {"type": "incident_reference", "urgency": u}}));
    let answer = call(&url, Method::PUT, &path, from, urgency("low")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["incident"]["urgency"], "low");
    let answer = call(&url, Method::PUT, &path, from, urgency("medium")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    call(&url, Method::PUT, &path, from, Some(resolve())).await;
    let answer = call(&url, Method::PUT, &path, from, urgency("high")).await;
    assert_eq!(answer.body["error"]["code"], 1001);
    assert_eq!(w.fake.incident(&id).unwrap().urgency, "low");
}

/// More actions: a priority change names one of the account's priorities, is refused on an
/// account without priorities and on a resolved incident, and shows in the incident's answer.
#[tokio::test]
async fn priority_changes_follow_pagerduty() {
    let w = world().await;
    let url = w.fake.url();
    let id = w.fake.add_incident("X", &w.ep);
    let path = format!("/incidents/{id}");
    let from = Some("bob@example.com");
    let priority = |p: &str| {
        Some(json!({"incident": {"type": "incident_reference",
            "priority": {"id": p, "type": "priority_reference"}}}))
    };
    let disabled = call(&url, Method::PUT, &path, from, priority("PRI1")).await;
    assert_eq!(
        disabled.status,
        StatusCode::BAD_REQUEST,
        "{}",
        disabled.body
    );
    assert_eq!(disabled.body["error"]["code"], 2001);
    let ids = w.fake.set_priorities(&["P1", "P2", "P3"]);
    let unknown = call(&url, Method::PUT, &path, from, priority("PNOPE")).await;
    assert_eq!(unknown.body["error"]["code"], 1020);
    let ok = call(&url, Method::PUT, &path, from, priority(ids[0].as_str())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["incident"]["priority"]["summary"], "P1");
    call(&url, Method::PUT, &path, from, Some(resolve())).await;
    let resolved = call(&url, Method::PUT, &path, from, priority(ids[1].as_str())).await;
    assert_eq!(resolved.body["error"]["code"], 1001);
}

/// Responder requests name their requester in the body and known targets; each user asked (a
/// policy asks its first level) gets `incident.responder.added`, and their answer
/// `incident.responder.replied`, shaped like the recorded payloads.
#[tokio::test]
async fn responder_requests_send_added_and_replied_webhooks() {
    let w = world().await;
    let url = w.fake.url();
    let target = receiver(0).await;
    w.fake
        .set_webhook_target(&format!("{}/hook", target.url()), "whsec-test");
    let id = w.fake.trigger_incident("Checkout down", &w.ep);
    let path = format!("/incidents/{id}/responder_requests");
    let body = |requester: &str, targets: Value| {
        Some(json!({"requester_id": requester, "message": "Please join",
            "responder_request_targets": targets}))
    };
    let user =
        |id: &str| json!([{"responder_request_target": {"id": id, "type": "user_reference"}}]);
    let unknown = call(
        &url,
        Method::POST,
        &path,
        None,
        body("PNOBODY", user("PBOB001")),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let empty = call(&url, Method::POST, &path, None, body("PALICE1", json!([]))).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let ok = call(
        &url,
        Method::POST,
        &path,
        None,
        body("PALICE1", user("PBOB001")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["responder_request"]["requester"]["id"], "PALICE1");
    assert!(w.fake.answer_responder_request(&id, &w.bob, false));
    assert!(
        !w.fake
            .answer_responder_request(&id, &PdUserId::new("PALICE1"), true)
    );
    let accepted = w.fake.wait_for_accepted(3, Duration::from_secs(5)).await;
    let types: Vec<&str> = accepted.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "incident.triggered",
            "incident.responder.added",
            "incident.responder.replied"
        ]
    );
    let added: Value = serde_json::from_slice(&accepted[1].body).unwrap();
    assert_eq!(added["event"]["agent"]["id"], "PALICE1");
    assert_eq!(added["event"]["data"]["type"], "incident_responder");
    assert_eq!(added["event"]["data"]["user"]["id"], "PBOB001");
    assert_eq!(added["event"]["data"]["state"], "pending");
    let replied: Value = serde_json::from_slice(&accepted[2].body).unwrap();
    assert_eq!(replied["event"]["data"]["state"], "declined");
    assert_eq!(replied["event"]["agent"]["id"], "PBOB001");
}
