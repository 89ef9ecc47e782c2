//! `PdClient::create_incident`, priorities and services against the fake PagerDuty: `From`,
//! the body, `incident_key` dedupe across retries, and errors that say whether the request left.

use std::time::Duration;

use fakes::pd::{FakePagerDuty, Fault};
use ids::{Email, EscalationPolicyId, PdUserId, ServiceId};
use pd_client::rest::{IncidentStatus, NewIncident, Urgency};
use pd_client::retry::RetryPolicy;
use pd_client::{Auth, Config, Error, PdClient, Secret};

struct World {
    fake: FakePagerDuty,
    alice: Email,
    bob: PdUserId,
    db: ServiceId,
    ep: EscalationPolicyId,
}

async fn world() -> World {
    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice Admin", "alice@example.com");
    let bob = fake.add_user("PBOB001", "Bob Builder", "bob@example.com");
    let ep = fake.add_escalation_policy("PEPDB01", "Database", vec![vec![alice]]);
    let db = fake.add_service("PDAT001", "Database", &[]);
    fake.set_service_policy(&db, &ep);
    World {
        fake,
        alice: Email::new("alice@example.com"),
        bob,
        db,
        ep,
    }
}

fn client(fake: &FakePagerDuty) -> PdClient {
    let mut config = Config::new(Auth::Token(Secret::new("test-token")));
    config.base_url = fake.url().parse().unwrap();
    config.timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    PdClient::new(config).unwrap()
}

fn posts(fake: &FakePagerDuty) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == http::Method::POST && r.path == "/incidents")
        .count()
}

#[tokio::test]
async fn create_sends_from_urgency_priority_details_and_key() {
    let w = world().await;
    let ids = w.fake.set_priorities(&["P1", "P2"]);
    let pd = client(&w.fake);
    let p2 = pd.priority_id("P2").await.unwrap().unwrap();
    assert_eq!(p2, ids[1]);
    let new = NewIncident::new("Database performance issue", w.db.clone(), "slack-V1-0")
        .urgency(Urgency::High)
        .priority(p2.clone())
        .details("Declared by @alice from Slack");
    let created = pd.create_incident(&w.alice, new).await.unwrap();
    assert!(!created.existing);
    let incident = created.incident;
    assert_eq!(incident.status, IncidentStatus::Triggered);
    assert_eq!(incident.title, "Database performance issue");
    assert_eq!(incident.urgency, Some(Urgency::High));
    assert_eq!(incident.incident_key.as_deref(), Some("slack-V1-0"));
    assert_eq!(incident.priority.as_ref().map(|p| p.id.clone()), Some(p2));
    assert_eq!(incident.service.as_ref().map(|s| s.id.clone()), Some(w.db));
    assert_eq!(
        incident.escalation_policy.as_ref().map(|p| p.id.clone()),
        Some(w.ep)
    );
    let creation = w.fake.creation(&incident.id).unwrap();
    assert_eq!(creation.created_by, PdUserId::new("PALICE1"));
    assert_eq!(
        creation.details.as_deref(),
        Some("Declared by @alice from Slack")
    );
    let req = w.fake.requests().pop().unwrap();
    assert_eq!(req.header("from"), Some("alice@example.com"));
    assert_eq!(
        req.json()["incident"]["body"],
        serde_json::json!({"type": "incident_body", "details": "Declared by @alice from Slack"})
    );
}

#[tokio::test]
async fn priorities_are_read_once_and_absent_on_accounts_without_them() {
    let w = world().await;
    let pd = client(&w.fake);
    assert_eq!(pd.priority_id("P1").await.unwrap(), None);
    assert_eq!(pd.priority_id("P2").await.unwrap(), None);
    let reads = |fake: &FakePagerDuty| {
        fake.requests()
            .iter()
            .filter(|r| r.path == "/priorities")
            .count()
    };
    assert_eq!(reads(&w.fake), 1, "the empty list is cached too");
    w.fake.set_priorities(&["P1"]);
    assert_eq!(pd.priority_id("P1").await.unwrap(), None, "still cached");
    pd.forget_priorities().await;
    assert!(pd.priority_id("P1").await.unwrap().is_some());
    assert_eq!(reads(&w.fake), 2);
}

#[tokio::test]
async fn a_priority_on_an_account_without_priorities_is_refused_and_not_retried() {
    let w = world().await;
    let pd = client(&w.fake);
    let new = NewIncident::new("T", w.db.clone(), "k1").priority(ids::PriorityId::new("PNOPE"));
    let err = pd.create_incident(&w.alice, new).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.was_sent(), Some(true));
    assert!(!err.is_retryable());
    assert_eq!(posts(&w.fake), 1);
    assert!(w.fake.incidents().is_empty());
}

#[tokio::test]
async fn a_resend_of_the_same_key_returns_the_same_incident() {
    let w = world().await;
    let pd = client(&w.fake);
    let first = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "same-key"))
        .await
        .unwrap();
    let again = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "same-key"))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.incident.id, first.incident.id);
    assert_eq!(w.fake.incidents().len(), 1);
}

#[tokio::test]
async fn a_lost_answer_is_maybe_sent_and_a_resend_with_the_same_key_yields_one_incident() {
    let w = world().await;
    let pd = client(&w.fake);
    // PagerDuty creates the incident, then the connection drops before the answer.
    w.fake.push_fault(Fault::HangUp);
    let err = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "lost"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MaybeSent { .. }), "{err:?}");
    assert_eq!(err.was_sent(), None);
    assert_eq!(posts(&w.fake), 1, "not retried by the client");
    let found = pd.find_incident_by_key("lost", &w.db).await.unwrap();
    assert!(found.is_some(), "the caller looks first");
    let created = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "lost"))
        .await
        .unwrap();
    assert!(created.existing);
    assert_eq!(Some(created.incident.id), found.map(|i| i.id));
    assert_eq!(w.fake.incidents().len(), 1);
}

#[tokio::test]
async fn a_resolved_incident_is_found_by_its_key_but_no_longer_refuses_a_create() {
    let w = world().await;
    let pd = client(&w.fake);
    let first = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "k"))
        .await
        .unwrap()
        .incident;
    pd.resolve(&first.id, &w.alice, None).await.unwrap();
    assert_eq!(
        pd.find_open_incident_by_key("k", &w.db).await.unwrap(),
        None
    );
    let found = pd.find_incident_by_key("k", &w.db).await.unwrap().unwrap();
    assert_eq!(found.id, first.id);
    let second = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "k"))
        .await
        .unwrap();
    assert!(
        !second.existing,
        "PagerDuty's key only guards open incidents"
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_exhaustion_says_sent() {
    let w = world().await;
    let pd = client(&w.fake);
    w.fake.push_fault(Fault::ServerError(503));
    let created = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "k503"))
        .await
        .unwrap();
    assert!(!created.existing);
    assert_eq!(posts(&w.fake), 2);

    w.fake.set_down(true);
    let err = pd
        .create_incident(&w.alice, NewIncident::new("U", w.db.clone(), "down"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_pagerduty_is_not_sent() {
    let w = world().await;
    let mut config = Config::new(Auth::Token(Secret::new("t")));
    config.base_url = "http://127.0.0.1:9".parse().unwrap();
    config.retry.max_attempts = 1;
    let pd = PdClient::new(config).unwrap();
    let err = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "k"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSent { .. }), "{err:?}");
    assert_eq!(err.was_sent(), Some(false));
}

#[tokio::test]
async fn disabled_services_unknown_requesters_and_bad_bodies_are_refused() {
    let w = world().await;
    let pd = client(&w.fake);
    w.fake.disable_service(&w.db);
    let err = pd
        .create_incident(&w.alice, NewIncident::new("T", w.db.clone(), "k"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Service is disabled"), "{err}");

    let nobody = Email::new("nobody@example.com");
    let web = w.fake.add_service("PWEB001", "Web", &[]);
    w.fake.set_service_policy(&web, &w.ep);
    let err = pd
        .create_incident(&nobody, NewIncident::new("T", web.clone(), "k"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(1008));

    for bad in [
        NewIncident::new("  ", web.clone(), "k"),
        NewIncident::new("T", web.clone(), ""),
        NewIncident::new("T", web.clone(), "k")
            .assign_to(std::slice::from_ref(&w.bob))
            .escalation_policy(w.ep.clone()),
    ] {
        let err = pd.create_incident(&w.alice, bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    }
    assert_eq!(posts(&w.fake), 2);
}

#[tokio::test]
async fn assignments_go_to_the_given_user() {
    let w = world().await;
    let pd = client(&w.fake);
    let created = pd
        .create_incident(
            &w.alice,
            NewIncident::new("T", w.db.clone(), "k").assign_to(std::slice::from_ref(&w.bob)),
        )
        .await
        .unwrap();
    assert_eq!(created.incident.assignee_ids(), vec![w.bob]);
}

#[tokio::test]
async fn services_are_searched_by_name() {
    let w = world().await;
    let pd = client(&w.fake);
    w.fake.add_service("PWEB001", "Web frontend", &[]);
    let found = pd.search_services("data", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, w.db);
    let all = pd.list_services().await.unwrap();
    assert_eq!(all.items.len(), 3, "with the fake's default service");
    assert!(pd.search_services("x", 0).await.is_err());
}

/// Change priority and responder requests against the fake: the priorities in PagerDuty's
/// order from the cache, `PUT` with the priority as `From`, and a responder request with the
/// requester in the body; a request without targets is refused before anything is sent.
#[tokio::test]
async fn change_priority_and_request_responders() {
    let w = world().await;
    let ids = w.fake.set_priorities(&["SEV-2", "SEV-1"]);
    let pd = client(&w.fake);
    let names: Vec<String> = pd
        .priorities()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["SEV-2", "SEV-1"], "PagerDuty's order, not sorted");
    let incident = w.fake.trigger_incident("Checkout down", &w.ep);
    let updated = pd
        .change_priority(&incident, &w.alice, ids[1].clone())
        .await
        .unwrap();
    let priority = updated.incident.unwrap().priority.unwrap();
    assert_eq!(priority.id, ids[1]);

    let asked = [
        pd_client::ResponderTarget::User(w.bob.clone()),
        pd_client::ResponderTarget::Policy(w.ep.clone()),
    ];
    pd.request_responders(&incident, &PdUserId::new("PALICE1"), "Please join", &asked)
        .await
        .unwrap();
    let sent: Vec<_> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/responder_requests"))
        .collect();
    assert_eq!(sent.len(), 1);
    let body = sent[0].json();
    assert_eq!(body["requester_id"], "PALICE1");
    assert_eq!(
        body["responder_request_targets"][1]["responder_request_target"]["type"],
        "escalation_policy_reference"
    );
    let none = pd
        .request_responders(&incident, &PdUserId::new("PALICE1"), "x", &[])
        .await;
    assert!(matches!(none, Err(Error::InvalidRequest(_))), "{none:?}");
    assert_eq!(
        w.fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/responder_requests"))
            .count(),
        1
    );
}
