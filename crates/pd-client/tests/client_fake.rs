//! `PdClient` end to end against the fake PagerDuty: retries, timeouts, pagination, `From`,
//! OAuth refresh and the "already in that state" answers.
// Tests wait for servers with wall-clock deadlines and timestamp signed requests.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use fakes::pd::{FakePagerDuty, Fault, Status};
use ids::{Email, EscalationPolicyId, IncidentId, PdUserId};
use pd_client::rest::{IncidentStatus, NewWebhookSubscription, SubscriptionFilter};
use pd_client::retry::RetryPolicy;
use pd_client::webhook::{EventData, EventType, WebhookEnvelope};
use pd_client::{Auth, Config, Error, IncidentInclude, PdClient, Secret};

const FAST_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(50),
    max_retry_after: Duration::from_secs(5),
};

struct World {
    fake: FakePagerDuty,
    alice: Email,
    ep: EscalationPolicyId,
    bob: PdUserId,
    carol: PdUserId,
}

async fn world() -> World {
    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice Admin", "alice@example.com");
    let bob = fake.add_user("PBOB001", "Bob Builder", "bob@example.com");
    let carol = fake.add_user("PCAROL1", "Carol Chief", "carol@example.com");
    let ep = fake.add_escalation_policy(
        "PEP0001",
        "Checkout",
        vec![vec![alice.clone()], vec![bob.clone()], vec![carol.clone()]],
    );
    World {
        fake,
        alice: Email::new("Alice@Example.com"),
        ep,
        bob,
        carol,
    }
}

fn config(fake: &FakePagerDuty) -> Config {
    let mut config = Config::new(Auth::Token(Secret::new("test-token")));
    config.base_url = fake.url().parse().unwrap();
    config.timeout = Duration::from_secs(2);
    config.retry = FAST_RETRY;
    config
}

/// [`config`] with the fake's scoped OAuth app `client_id` / `secret` asking for `scope`.
fn oauth_config(fake: &FakePagerDuty, client_id: &str, secret: &str, scope: &str) -> Config {
    Config {
        auth: Auth::OAuth {
            client_id: client_id.into(),
            client_secret: Secret::new(secret),
            scope: scope.into(),
            token_url: fake.token_url().parse().unwrap(),
        },
        ..config(fake)
    }
}

fn client(fake: &FakePagerDuty) -> PdClient {
    PdClient::new(config(fake)).unwrap()
}

#[tokio::test]
async fn acknowledge_sends_from_and_headers_and_changes_state() {
    let w = world().await;
    let id = w.fake.add_incident("Checkout is down", &w.ep);
    let pd = client(&w.fake);
    let updated = pd.acknowledge(&id, &w.alice).await.unwrap();
    assert!(!updated.already);
    let incident = updated.incident.unwrap();
    assert_eq!(incident.status, IncidentStatus::Acknowledged);
    assert_eq!(incident.assignee_ids(), vec![PdUserId::new("PALICE1")]);
    assert_eq!(w.fake.incident(&id).unwrap().status, Status::Acknowledged);

    let req = w.fake.requests().pop().unwrap();
    assert_eq!(req.method, http::Method::PUT);
    assert_eq!(req.path, format!("/incidents/{id}"));
    assert_eq!(req.header("from"), Some("Alice@Example.com"));
    assert_eq!(
        req.header("accept"),
        Some("application/vnd.pagerduty+json;version=2")
    );
    assert_eq!(req.header("authorization"), Some("Token token=test-token"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        serde_json::json!({"incident": {"type": "incident_reference", "status": "acknowledged"}})
    );
}

#[tokio::test]
async fn from_is_present_on_every_mutation() {
    let w = world().await;
    let id = w.fake.add_incident("Disk full", &w.ep);
    let pd = client(&w.fake);
    pd.escalate(&id, &w.alice, 2).await.unwrap();
    assert_eq!(w.fake.incident(&id).unwrap().assignees, vec![w.bob.clone()]);
    assert_eq!(w.fake.incident(&id).unwrap().escalation_level, 2);
    pd.reassign(&id, &w.alice, std::slice::from_ref(&w.carol))
        .await
        .unwrap();
    assert_eq!(
        w.fake.incident(&id).unwrap().assignees,
        vec![w.carol.clone()]
    );
    let note = pd.add_note(&id, &w.alice, "Rolling back").await.unwrap();
    assert_eq!(note.content, "Rolling back");
    pd.acknowledge(&id, &w.alice).await.unwrap();
    pd.resolve(&id, &w.alice, Some("rolled back"))
        .await
        .unwrap();
    let state = w.fake.incident(&id).unwrap();
    assert_eq!(state.status, Status::Resolved);
    assert_eq!(state.resolution.as_deref(), Some("rolled back"));

    let mutations: Vec<_> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method != http::Method::GET)
        .collect();
    assert_eq!(mutations.len(), 5);
    for m in &mutations {
        assert_eq!(m.header("from"), Some("Alice@Example.com"), "{}", m.path);
    }
    let notes = pd.list_notes(&id).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].user.as_ref().unwrap().user_id(),
        Some(PdUserId::new("PALICE1"))
    );
}

#[tokio::test]
async fn already_in_target_state_is_success_with_flag() {
    let w = world().await;
    let id = w.fake.add_incident("Flapping", &w.ep);
    let pd = client(&w.fake);
    assert!(!pd.acknowledge(&id, &w.alice).await.unwrap().already);
    let again = pd.acknowledge(&id, &w.alice).await.unwrap();
    assert!(again.already);
    assert_eq!(again.incident, None);
    assert!(!pd.resolve(&id, &w.alice, None).await.unwrap().already);
    assert!(pd.resolve(&id, &w.alice, None).await.unwrap().already);
    // Escalating a resolved incident is a real error, not "already".
    let err = pd.escalate(&id, &w.alice, 2).await.unwrap_err();
    assert_eq!(err.code(), Some(1001));
}

#[tokio::test]
async fn unknown_from_user_is_an_api_error_not_retried() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    let pd = client(&w.fake);
    let err = pd
        .acknowledge(&id, &Email::new("mallory@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some(1008));
    assert!(!err.is_retryable());
    assert_eq!(err.was_sent(), Some(true));
    assert_eq!(w.fake.requests().len(), 1);
}

#[tokio::test]
async fn rate_limited_with_reset_then_success() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    w.fake.push_fault(Fault::RateLimited {
        reset: Some(Duration::from_millis(200)),
    });
    let pd = client(&w.fake);
    let started = std::time::Instant::now();
    let incident = pd.get_incident(&id, &[]).await.unwrap();
    assert_eq!(incident.id, id);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited for ratelimit-reset"
    );
    assert_eq!(w.fake.requests().len(), 2);
}

#[tokio::test]
async fn rate_limited_without_headers_backs_off_then_success() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    w.fake.push_fault(Fault::RateLimited { reset: None });
    w.fake.push_fault(Fault::RateLimited { reset: None });
    let pd = client(&w.fake);
    let updated = pd.acknowledge(&id, &w.alice).await.unwrap();
    assert!(!updated.already);
    assert_eq!(w.fake.requests().len(), 3);
}

#[tokio::test]
async fn server_error_then_success() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    w.fake.push_fault(Fault::ServerError(503));
    w.fake.push_fault(Fault::ServerError(500));
    let pd = client(&w.fake);
    pd.resolve(&id, &w.alice, None).await.unwrap();
    assert_eq!(w.fake.requests().len(), 3);
    assert_eq!(w.fake.incident(&id).unwrap().status, Status::Resolved);
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_last_error() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    for _ in 0..4 {
        w.fake.push_fault(Fault::ServerError(502));
    }
    let err = client(&w.fake).get_incident(&id, &[]).await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.is_retryable());
    assert_eq!(w.fake.requests().len(), 4);
}

#[tokio::test]
async fn timeout_is_maybe_sent_and_a_note_is_not_retried() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    w.fake.push_fault(Fault::Slow(Duration::from_millis(800)));
    let mut cfg = config(&w.fake);
    cfg.timeout = Duration::from_millis(150);
    let pd = PdClient::new(cfg).unwrap();
    let err = pd.add_note(&id, &w.alice, "slow").await.unwrap_err();
    assert!(matches!(err, Error::MaybeSent { .. }), "{err:?}");
    assert_eq!(err.was_sent(), None);
    // The fake did apply it: exactly the ambiguity MaybeSent reports.
    assert_eq!(w.fake.incident(&id).unwrap().notes.len(), 1);
    assert_eq!(
        w.fake.requests().len(),
        1,
        "a non-idempotent call is not retried"
    );
}

#[tokio::test]
async fn per_request_timeout_overrides_the_default() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    let pd = client(&w.fake);
    w.fake.push_fault(Fault::Slow(Duration::from_millis(600)));
    let tight = pd.with_timeout(Duration::from_millis(100));
    // The first attempt timed out after PagerDuty applied it; resolve is idempotent, so it was
    // retried, and the retry's "already resolved" answer is a success.
    let updated = tight.resolve(&id, &w.alice, None).await.unwrap();
    assert!(updated.already);
    assert_eq!(w.fake.requests().len(), 2);
    assert_eq!(w.fake.incident(&id).unwrap().status, Status::Resolved);
    // The original client keeps its own timeout.
    w.fake.push_fault(Fault::Slow(Duration::from_millis(300)));
    pd.get_incident(&id, &[]).await.unwrap();
    assert_eq!(w.fake.requests().len(), 3);
}

#[tokio::test]
async fn timeout_on_an_idempotent_call_is_retried() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    w.fake.push_fault(Fault::Slow(Duration::from_millis(800)));
    let mut cfg = config(&w.fake);
    cfg.timeout = Duration::from_millis(150);
    let incident = PdClient::new(cfg)
        .unwrap()
        .get_incident(&id, &[IncidentInclude::Users, IncidentInclude::Assignees])
        .await
        .unwrap();
    assert_eq!(incident.id, id);
    let reqs = w.fake.requests();
    assert_eq!(reqs.len(), 2);
    let query = reqs[1].query.clone().unwrap();
    assert_eq!(query, "include%5B%5D=users&include%5B%5D=assignees");
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    let w = world().await;
    let mut cfg = config(&w.fake);
    // Nothing listens on port 9 of loopback.
    cfg.base_url = "http://127.0.0.1:9".parse().unwrap();
    cfg.retry.max_attempts = 2;
    let err = PdClient::new(cfg)
        .unwrap()
        .get_user(&PdUserId::new("P1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSent { .. }), "{err:?}");
    assert_eq!(err.was_sent(), Some(false));
}

#[tokio::test]
async fn down_mode_is_a_retryable_503() {
    let w = world().await;
    w.fake.set_down(true);
    let mut cfg = config(&w.fake);
    cfg.retry.max_attempts = 2;
    let err = PdClient::new(cfg)
        .unwrap()
        .get_user(&w.bob)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(w.fake.requests().len(), 2);
}

#[tokio::test]
async fn open_incidents_paginate_across_pages() {
    let w = world().await;
    let mut ids: Vec<IncidentId> = (0..7)
        .map(|n| w.fake.add_incident(&format!("incident {n}"), &w.ep))
        .collect();
    let pd = client(&w.fake);
    // One resolved incident is left out by the statuses[] filter.
    pd.resolve(&ids.remove(3), &w.alice, None).await.unwrap();
    let listing = pd.list_open_incidents(2).await.unwrap();
    assert!(!listing.truncated);
    let got: Vec<IncidentId> = listing.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(got, ids);
    let pages: Vec<String> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::GET)
        .map(|r| r.query.unwrap())
        .collect();
    assert_eq!(pages.len(), 3);
    assert!(pages[0].ends_with("&limit=2&offset=0"), "{}", pages[0]);
    assert!(pages[2].ends_with("&limit=2&offset=4"), "{}", pages[2]);
    assert!(pages[0].starts_with("statuses%5B%5D=triggered&statuses%5B%5D=acknowledged"));
    assert!(matches!(
        pd.list_open_incidents(101).await,
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn users_by_email_match_exactly_and_case_insensitively() {
    let w = world().await;
    w.fake
        .add_user("PBOB002", "Bobby Tables", "bob@example.com.evil");
    let pd = client(&w.fake);
    let bob = pd
        .find_user_by_email(&Email::new("BOB@example.COM"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.id, w.bob);
    assert_eq!(bob.name, "Bob Builder");
    assert_eq!(
        pd.find_user_by_email(&Email::new("bob@example"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(pd.get_user(&w.carol).await.unwrap().name, "Carol Chief");
}

#[tokio::test]
async fn escalation_policy_and_oncalls() {
    let w = world().await;
    let pd = client(&w.fake);
    let ep = pd.get_escalation_policy(&w.ep).await.unwrap();
    assert_eq!(ep.levels(), 3);
    assert_eq!(ep.escalation_rules[1].user_ids(), vec![w.bob.clone()]);
    let oncalls = pd.list_oncalls(&w.ep).await.unwrap();
    let levels: Vec<(u32, String)> = oncalls
        .iter()
        .map(|o| (o.escalation_level, o.user.id.to_string()))
        .collect();
    assert_eq!(
        levels,
        vec![
            (1, "PALICE1".to_owned()),
            (2, "PBOB001".to_owned()),
            (3, "PCAROL1".to_owned())
        ]
    );
    let req = w.fake.requests().pop().unwrap();
    assert!(
        req.query
            .unwrap()
            .starts_with("escalation_policy_ids%5B%5D=PEP0001")
    );
    let err = pd
        .escalate(&w.fake.add_incident("x", &w.ep), &w.alice, 4)
        .await;
    assert_eq!(err.unwrap_err().code(), Some(1006));
}

#[tokio::test]
async fn oauth_token_is_fetched_cached_and_refreshed_before_expiry() {
    let w = world().await;
    w.fake
        .enable_oauth("client-1", "client-secret-1", Duration::from_secs(1));
    let cfg = oauth_config(
        &w.fake,
        "client-1",
        "client-secret-1",
        "as_account-us.fake incidents.write users.read",
    );
    let pd = PdClient::new(cfg).unwrap();
    pd.get_user(&w.bob).await.unwrap();
    pd.get_user(&w.bob).await.unwrap();
    assert_eq!(w.fake.token_requests(), 1, "the token is cached");
    // Refreshed at 90% of its 1 s lifetime, before the fake would reject it.
    tokio::time::sleep(Duration::from_millis(950)).await;
    pd.get_user(&w.bob).await.unwrap();
    assert_eq!(w.fake.token_requests(), 2);

    let reqs = w.fake.requests();
    let token_req = &reqs[0];
    assert_eq!(token_req.path, "/oauth/token");
    let form = String::from_utf8(token_req.body.to_vec()).unwrap();
    assert!(form.contains("grant_type=client_credentials"));
    assert!(form.contains("scope=as_account-us.fake+incidents.write+users.read"));
    let bearers: Vec<String> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/users"))
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(bearers.len(), 3);
    assert!(bearers.iter().all(|b| b.starts_with("Bearer fake-bearer-")));
    assert_eq!(bearers[0], bearers[1]);
    assert_ne!(bearers[1], bearers[2]);
}

#[tokio::test]
async fn oauth_bad_credentials_are_a_config_error() {
    let w = world().await;
    w.fake
        .enable_oauth("client-1", "right", Duration::from_secs(60));
    let cfg = oauth_config(&w.fake, "client-1", "wrong-secret-value", "incidents.read");
    let err = PdClient::new(cfg)
        .unwrap()
        .get_user(&w.bob)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong-secret-value"));
}

#[tokio::test]
async fn wrong_api_token_is_401() {
    let w = world().await;
    w.fake.set_api_tokens(&["the-right-one"]);
    let err = client(&w.fake).get_user(&w.bob).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    assert!(!format!("{err:?} {err}").contains("test-token"));
}

#[tokio::test]
async fn local_limiter_spaces_calls_and_fake_enforces_its_budget() {
    let w = world().await;
    w.fake.set_rate_limit(3);
    let mut cfg = config(&w.fake);
    cfg.retry.max_attempts = 1;
    let pd = PdClient::new(cfg).unwrap();
    for _ in 0..3 {
        pd.get_user(&w.bob).await.unwrap();
    }
    let err = pd.get_user(&w.bob).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(
        err.retry_after()
            .is_some_and(|d| d <= Duration::from_secs(60))
    );

    // A client limited to 120/min with a burst of 2 spaces the third call by ~0.5 s.
    let w = world().await;
    let mut cfg = config(&w.fake);
    cfg.rate_per_minute = 120;
    cfg.burst = 2;
    let pd = PdClient::new(cfg).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        pd.get_user(&w.bob).await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn webhook_subscriptions_create_list_enable_ping() {
    let w = world().await;
    let receiver = fakes::http::Server::spawn(std::sync::Arc::new(|_req| {
        Box::pin(async {
            fakes::http::Reply::json(http::StatusCode::ACCEPTED, &serde_json::json!({}))
        })
    }))
    .await
    .unwrap();
    let pd = client(&w.fake);
    let created = pd
        .create_webhook_subscription(NewWebhookSubscription::new(
            format!("{}/pagerduty", receiver.url()),
            "pdbridge",
            vec![
                EventType::IncidentAcknowledged,
                EventType::IncidentAnnotated,
            ],
            SubscriptionFilter {
                kind: "account_reference".into(),
                id: None,
            },
        ))
        .await
        .unwrap();
    let secret = created
        .delivery_method
        .secret
        .clone()
        .expect("secret on create");
    assert!(!format!("{created:?}").contains(secret.expose()));
    let listed = pd.list_webhook_subscriptions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].delivery_method.secret, None);
    assert_eq!(listed[0].events.len(), 2);

    w.fake.disable_subscription(&created.id);
    let enabled = pd.enable_webhook_subscription(&created.id).await.unwrap();
    assert!(enabled.active);

    pd.ping_webhook_subscription(&created.id).await.unwrap();
    let id = w.fake.add_incident("Webhook me", &w.ep);
    pd.acknowledge(&id, &w.alice).await.unwrap();
    pd.add_note(&id, &w.alice, "on it").await.unwrap();
    // Resolved is not subscribed: no delivery.
    pd.resolve(&id, &w.alice, None).await.unwrap();

    let accepted = w.fake.wait_for_accepted(3, Duration::from_secs(5)).await;
    assert_eq!(accepted.len(), 3);
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    let mut types = Vec::new();
    for req in &got {
        signing::verify_pagerduty(
            &[signing::PagerDutySecret::new(secret.expose())],
            req.header("x-pagerduty-signature"),
            &req.body,
        )
        .expect("signed with the subscription secret");
        let env = WebhookEnvelope::from_slice(&req.body).unwrap();
        types.push(env.event.event_type.clone());
        if env.event.event_type != EventType::PageyPing {
            assert_eq!(env.event.agent_user_id(), Some(PdUserId::new("PALICE1")));
            assert_eq!(env.event.incident_id(), Some(&id));
        }
    }
    assert!(types.contains(&EventType::PageyPing));
    let incident_types: Vec<_> = types
        .iter()
        .filter(|t| **t != EventType::PageyPing)
        .cloned()
        .collect();
    assert_eq!(
        incident_types,
        vec![
            EventType::IncidentAcknowledged,
            EventType::IncidentAnnotated
        ]
    );
    let env = WebhookEnvelope::from_slice(
        &got.iter()
            .find(|r| r.json()["event"]["event_type"] == "incident.annotated")
            .unwrap()
            .body,
    )
    .unwrap();
    let EventData::IncidentNote(note) = env.event.data else {
        panic!("note data")
    };
    assert_eq!(note.content, "on it");
}

#[tokio::test]
async fn oauth_token_rejected_early_is_replaced_once() {
    let w = world().await;
    w.fake.enable_oauth("c", "s", Duration::from_secs(3600));
    let cfg = oauth_config(&w.fake, "c", "s", "users.read");
    let pd = PdClient::new(cfg).unwrap();
    pd.get_user(&w.bob).await.unwrap();
    w.fake.revoke_oauth_tokens();
    pd.get_user(&w.bob).await.unwrap();
    assert_eq!(w.fake.token_requests(), 2);
    let statuses: Vec<_> = w.fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        statuses,
        vec![
            "/oauth/token",
            "/users/PBOB001",
            "/users/PBOB001",
            "/oauth/token",
            "/users/PBOB001"
        ]
    );
}

#[tokio::test]
async fn open_incidents_stop_at_offset_ten_thousand() {
    let w = world().await;
    for n in 0..10_050 {
        w.fake.add_incident(&format!("bulk {n}"), &w.ep);
    }
    w.fake.set_rate_limit(100_000);
    let mut cfg = config(&w.fake);
    cfg.rate_per_minute = 1_000_000;
    cfg.burst = 1_000;
    let listing = PdClient::new(cfg)
        .unwrap()
        .list_open_incidents(100)
        .await
        .unwrap();
    assert!(listing.truncated);
    assert_eq!(listing.items.len(), 10_000);
    assert_eq!(listing.items[9_999].incident_number, 10_000);
    let last = w.fake.requests().pop().unwrap();
    assert!(last.query.unwrap().ends_with("limit=100&offset=9900"));
}

#[tokio::test]
async fn current_user_tells_user_tokens_from_account_and_app_tokens() {
    use pd_client::CurrentUser;
    let w = world().await;
    let c = client(&w.fake);
    assert_eq!(c.current_user().await.unwrap(), CurrentUser::NotAUser);

    w.fake
        .add_user_token("alice-personal", &PdUserId::new("PALICE1"));
    let mut cfg = config(&w.fake);
    cfg.auth = Auth::Token(Secret::new("alice-personal"));
    match PdClient::new(cfg).unwrap().current_user().await.unwrap() {
        CurrentUser::User(user) => {
            assert_eq!(user.id, PdUserId::new("PALICE1"));
            assert_eq!(user.email, Email::new("alice@example.com"));
        }
        other => panic!("expected a user, got {other:?}"),
    }

    w.fake
        .enable_oauth("app", "app-secret", Duration::from_secs(3600));
    let cfg = oauth_config(
        &w.fake,
        "app",
        "app-secret",
        "as_account-us.fake users.read",
    );
    assert_eq!(
        PdClient::new(cfg).unwrap().current_user().await.unwrap(),
        CurrentUser::NotAUser
    );

    w.fake.set_api_tokens(&["another"]);
    let err = c.current_user().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn services_and_teams_are_read_with_their_teams() {
    use ids::{ServiceId, TeamId};
    let w = world().await;
    let payments = w.fake.add_team("PTEAM01", "Payments");
    let sre = w.fake.add_team("PTEAM02", "SRE");
    let svc = w
        .fake
        .add_service("PSVC001", "Checkout API", &[payments.clone(), sre.clone()]);
    w.fake
        .set_policy_teams(&w.ep, std::slice::from_ref(&payments));
    w.fake
        .set_user_teams(&PdUserId::new("PBOB001"), std::slice::from_ref(&sre));
    let incident = w.fake.add_incident_on("Checkout down", &w.ep, &svc);
    let c = client(&w.fake);

    let service = c.get_service(&svc).await.unwrap();
    assert_eq!(service.name, "Checkout API");
    assert_eq!(service.team_ids(), vec![payments.clone(), sre.clone()]);
    assert_eq!(service.escalation_policy.unwrap().id, w.ep);
    let team = c.get_team(&sre).await.unwrap();
    assert_eq!((team.id, team.name.as_str()), (sre.clone(), "SRE"));

    let i = c.get_incident(&incident, &[]).await.unwrap();
    assert_eq!(i.service.unwrap().id, svc);
    assert_eq!(
        i.teams.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![payments.clone()]
    );
    let ep = c.get_escalation_policy(&w.ep).await.unwrap();
    assert_eq!(ep.teams[0].id, payments);
    assert_eq!(ep.services[0].id, svc);
    let bob = c.get_user(&w.bob).await.unwrap();
    assert_eq!(bob.teams[0].id, sre);

    let err = c.get_service(&ServiceId::new("PNOPE01")).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = c.get_team(&TeamId::new("PNOPE02")).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    // Incidents without a named service belong to the fake's default one.
    let other = w.fake.add_incident("Other", &w.ep);
    let i = c.get_incident(&other, &[]).await.unwrap();
    assert_eq!(i.service.unwrap().id.as_str(), fakes::pd::DEFAULT_SERVICE);
}

#[tokio::test]
async fn app_tokens_without_the_scope_get_403_when_scopes_are_enforced() {
    use ids::TeamId;
    let w = world().await;
    w.fake.add_team("PTEAM01", "Payments");
    w.fake
        .enable_oauth("app", "app-secret", Duration::from_secs(3600));
    w.fake.enforce_oauth_scopes(true);
    let cfg = oauth_config(
        &w.fake,
        "app",
        "app-secret",
        "as_account-us.fake users.read",
    );
    let c = PdClient::new(cfg).unwrap();
    assert!(c.get_user(&w.bob).await.is_ok());
    let err = c.get_team(&TeamId::new("PTEAM01")).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("teams.read"), "{err}");
}

#[tokio::test]
async fn reads_carry_pagerdutys_clock_from_the_date_header_and_updated_at() {
    let w = world().await;
    let id = w.fake.add_incident("X", &w.ep);
    let pd = client(&w.fake);
    let incident = pd.get_incident(&id, &[]).await.unwrap();
    let served = incident.served_at.expect("the answer's Date header");
    let updated = incident.updated_at.expect("updated_at");
    assert!(updated <= served + Duration::from_secs(1));
    assert!(incident.last_status_change_at.is_some());
    let listing = pd.list_open_incidents(100).await.unwrap();
    assert!(listing.served_at.is_some());
    assert!(
        listing
            .items
            .iter()
            .all(|i| i.served_at == listing.served_at)
    );
    let changed = pd.acknowledge(&id, &w.alice).await.unwrap();
    assert!(changed.incident.and_then(|i| i.served_at).is_some());
}
