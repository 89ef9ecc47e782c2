//! `pd-subscribe` against the in-process fake PagerDuty (loopback only).
// Tests wait for servers with wall-clock deadlines and timestamp signed requests.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use fakes::pd::FakePagerDuty;
use pdbridge::ops::manifest::PublicUrl;
use pdbridge::ops::pd_client;
use pdbridge::ops::subscribe::{CONSUMED_EVENTS, Scope, subscribe};
use serde_json::json;
use url::Url;

fn client(fake: &FakePagerDuty) -> pd_client::PdClient {
    pd_client(Url::parse(&fake.url()).unwrap(), "fake-token").unwrap()
}

#[tokio::test]
async fn creates_exactly_the_consumed_events_for_a_service_and_prints_the_secret_once() {
    let fake = FakePagerDuty::start().await;
    let url = PublicUrl::parse("https://pd.example.com/").unwrap();
    let scope = Scope::Service(ids::ServiceId::new("PSVC001"));
    let done = subscribe(&client(&fake), &url, &scope, false)
        .await
        .unwrap();

    let stored = fake.subscription(&done.subscription.id).unwrap();
    assert_eq!(stored.url, "https://pd.example.com/pagerduty/webhook");
    let wanted: Vec<&str> = CONSUMED_EVENTS.iter().map(|e| e.as_str()).collect();
    assert_eq!(stored.events, wanted);
    assert_eq!(
        stored.filter,
        json!({"type": "service_reference", "id": "PSVC001"})
    );
    assert!(stored.active);
    assert!(done.existing.is_empty());
    assert!(!done.pinged);
    assert_eq!(done.report.matches(stored.secret.as_str()).count(), 1);
    assert!(done.report.contains("PAGERDUTY_WEBHOOK_SECRETS"));
    assert!(
        !format!("{done:?}").contains(&stored.secret),
        "Debug leaks the secret"
    );
}

#[test]
fn consumed_events_are_known_unique_and_exclude_what_pdbridge_ignores() {
    let mut names: Vec<&str> = CONSUMED_EVENTS.iter().map(|e| e.as_str()).collect();
    assert!(
        CONSUMED_EVENTS
            .iter()
            .all(|e| pd_client::webhook::EventType::KNOWN.contains(e))
    );
    assert!(names.contains(&"incident.triggered") && names.contains(&"incident.annotated"));
    for ignored in ["pagey.ping", "service.updated", "incident.workflow.started"] {
        assert!(!names.contains(&ignored), "{ignored}");
    }
    let before = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), before);
}

#[tokio::test]
async fn team_and_account_filters_and_a_second_subscription_notes_the_first() {
    let fake = FakePagerDuty::start().await;
    let url = PublicUrl::parse("https://pd.example.com").unwrap();
    let c = client(&fake);
    let first = subscribe(&c, &url, &Scope::Team(ids::TeamId::new("PTEAM01")), false)
        .await
        .unwrap();
    assert_eq!(
        fake.subscription(&first.subscription.id).unwrap().filter,
        json!({"type": "team_reference", "id": "PTEAM01"})
    );
    let second = subscribe(&c, &url, &Scope::Account, false).await.unwrap();
    assert_eq!(
        fake.subscription(&second.subscription.id).unwrap().filter,
        json!({"type": "account_reference"})
    );
    assert_eq!(second.existing, vec![first.subscription.id.clone()]);
    assert!(second.report.contains(first.subscription.id.as_str()));
    assert!(second.report.contains("rotate"));
}

#[tokio::test]
async fn ping_asks_pagerduty_to_deliver_a_pagey_ping() {
    let fake = FakePagerDuty::start().await;
    // A loopback port with nobody listening: the fake's delivery fails, which is fine here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = PublicUrl::parse_allow_http(&format!("http://127.0.0.1:{port}")).unwrap();
    let done = subscribe(&client(&fake), &url, &Scope::Account, true)
        .await
        .unwrap();
    assert!(done.pinged);
    assert!(done.report.contains("pagey.ping"));
    let pinged = fake.requests().iter().any(|r| {
        r.method == http::Method::POST
            && r.path == format!("/webhook_subscriptions/{}/ping", done.subscription.id)
    });
    assert!(pinged);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !fake
        .deliveries()
        .iter()
        .any(|d| d.event_type == "pagey.ping")
    {
        assert!(tokio::time::Instant::now() < deadline, "no ping delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pagerduty_errors_are_reported_not_hidden() {
    let fake = FakePagerDuty::start().await;
    fake.set_api_tokens(&["the-right-token"]);
    let url = PublicUrl::parse("https://pd.example.com").unwrap();
    let err = subscribe(&client(&fake), &url, &Scope::Account, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_the_token_from_the_environment_only() {
    let fake = FakePagerDuty::start().await;
    let api = fake.url();
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "pd-subscribe",
                "--url",
                "https://pd.example.com",
                "--account",
            ])
            .env("PAGERDUTY_TOKEN", "fake-token")
            .env_remove("PAGERDUTY_TOKEN_FILE")
            .env("PAGERDUTY_API_URL", api)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("fake-secret-"), "{stdout}");

    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "pd-subscribe",
                "--url",
                "https://pd.example.com",
                "--account",
            ])
            .env_remove("PAGERDUTY_TOKEN")
            .env_remove("PAGERDUTY_TOKEN_FILE")
            .env("PAGERDUTY_API_URL", "http://127.0.0.1:9")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAGERDUTY_TOKEN"));
    // Exactly one scope is required.
    let args = [
        "pdbridge",
        "pd-subscribe",
        "--url",
        "https://x.example",
        "--account",
        "--team",
        "T",
    ];
    assert!(<pdbridge::cli::Cli as clap::Parser>::try_parse_from(args).is_err());
    let args = ["pdbridge", "pd-subscribe", "--url", "https://x.example"];
    assert!(<pdbridge::cli::Cli as clap::Parser>::try_parse_from(args).is_err());
}
