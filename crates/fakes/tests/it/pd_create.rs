//! The fake PagerDuty's `POST /incidents`, `GET /priorities` and `GET /services` behave like
//! PagerDuty where pdbridge depends on them.

use std::time::Duration;

use fakes::pd::FakePagerDuty;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pd_fake::{call, receiver};

fn new_incident(title: &str, service: &str, key: &str) -> Value {
    json!({"incident": {
        "type": "incident",
        "title": title,
        "service": {"id": service, "type": "service_reference"},
        "incident_key": key,
    }})
}

async fn account() -> FakePagerDuty {
    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice", "alice@example.com");
    let ep = fake.add_escalation_policy("PEP0001", "EP", vec![vec![alice]]);
    let db = fake.add_service("PDAT001", "Database", &[]);
    fake.set_service_policy(&db, &ep);
    fake
}

#[tokio::test]
async fn create_needs_from_and_sends_a_signed_triggered_webhook_with_the_agent() {
    let fake = account().await;
    let url = fake.url();
    let target = receiver(0).await;
    fake.set_webhook_target(&format!("{}/hook", target.url()), "whsec");
    let body = new_incident("DB slow", "PDAT001", "k1");
    let refused = call(&url, Method::POST, "/incidents", None, Some(body.clone())).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("From")
    );
    let from = Some("alice@example.com");
    let created = call(&url, Method::POST, "/incidents", from, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["incident"]["incident_key"], "k1");
    assert_eq!(
        created.body["incident"]["assignments"][0]["assignee"]["id"],
        "PALICE1"
    );
    let accepted = fake.wait_for_accepted(1, Duration::from_secs(5)).await;
    let event: Value = serde_json::from_slice(&accepted[0].body).unwrap();
    assert_eq!(event["event"]["event_type"], "incident.triggered");
    assert_eq!(event["event"]["agent"]["id"], "PALICE1");
    assert_eq!(event["event"]["data"]["incident_key"], "k1");
    assert!(accepted[0].signature.starts_with("v1="));
}

#[tokio::test]
async fn an_open_incident_with_the_same_key_refuses_a_second_create_until_resolved() {
    let fake = account().await;
    let url = fake.url();
    let from = Some("alice@example.com");
    let body = new_incident("DB slow", "PDAT001", "dup");
    let first = call(&url, Method::POST, "/incidents", from, Some(body.clone())).await;
    let id = first.body["incident"]["id"].as_str().unwrap().to_owned();
    let second = call(&url, Method::POST, "/incidents", from, Some(body.clone())).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        second.body["error"]["errors"][0],
        "Open incident with matching dedup key already exists on this service"
    );
    let found = call(
        &url,
        Method::GET,
        "/incidents?incident_key=dup&service_ids%5B%5D=PDAT001",
        None,
        None,
    )
    .await;
    assert_eq!(found.body["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["incidents"][0]["id"], id.as_str());
    let resolve = json!({"incident": {"type": "incident_reference", "status": "resolved"}});
    call(
        &url,
        Method::PUT,
        &format!("/incidents/{id}"),
        from,
        Some(resolve),
    )
    .await;
    let third = call(&url, Method::POST, "/incidents", from, Some(body)).await;
    assert_eq!(third.status, StatusCode::CREATED);
    assert_eq!(fake.incidents().len(), 2);
}

#[tokio::test]
async fn services_must_exist_be_enabled_and_have_a_policy() {
    let fake = account().await;
    let url = fake.url();
    let from = Some("alice@example.com");
    let cases = [
        ("PNOPE01", "Service not found"),
        ("PFAKESV", "Service has no escalation policy"),
    ];
    for (service, why) in cases {
        let got = call(
            &url,
            Method::POST,
            "/incidents",
            from,
            Some(new_incident("T", service, "k")),
        )
        .await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST);
        assert_eq!(got.body["error"]["errors"][0], why);
    }
    fake.disable_service(&ids::ServiceId::new("PDAT001"));
    let got = call(
        &url,
        Method::POST,
        "/incidents",
        from,
        Some(new_incident("T", "PDAT001", "k")),
    )
    .await;
    assert_eq!(got.body["error"]["errors"][0], "Service is disabled");
    let svc = call(&url, Method::GET, "/services/PDAT001", None, None).await;
    assert_eq!(svc.body["service"]["status"], "disabled");
    assert!(fake.incidents().is_empty());
}

#[tokio::test]
async fn priorities_exist_only_where_enabled() {
    let fake = account().await;
    let url = fake.url();
    let from = Some("alice@example.com");
    let none = call(&url, Method::GET, "/priorities", None, None).await;
    assert_eq!(none.body["priorities"], json!([]));
    let mut body = new_incident("T", "PDAT001", "k");
    body["incident"]["priority"] = json!({"id": "PRI1", "type": "priority_reference"});
    let got = call(&url, Method::POST, "/incidents", from, Some(body.clone())).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    let ids = fake.set_priorities(&["P1", "P2"]);
    let got = call(&url, Method::POST, "/incidents", from, Some(body.clone())).await;
    assert_eq!(got.body["error"]["code"], 1020);
    body["incident"]["priority"]["id"] = json!(ids[1].as_str());
    let got = call(&url, Method::POST, "/incidents", from, Some(body)).await;
    assert_eq!(got.status, StatusCode::CREATED);
    assert_eq!(got.body["incident"]["priority"]["summary"], "P2");
    let list = call(&url, Method::GET, "/priorities", None, None).await;
    assert_eq!(list.body["priorities"][0]["name"], "P1");
}
