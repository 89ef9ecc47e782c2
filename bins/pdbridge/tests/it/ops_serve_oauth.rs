//! `serve` with a PagerDuty scoped OAuth app instead of an API token, against the fakes: the
//! server obtains a bearer token with the client-credentials grant (default scopes), sends
//! `Authorization: Bearer …` on its REST calls and never a `Token token=` header.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeSlack};
use ids::ChannelId;
use pdbridge::app::{self, Options};
use pdbridge::config::{Config, PAGERDUTY_OAUTH_SCOPES};
use pdbridge::world::WorldConfig;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_oauth_gets_a_token_and_sends_bearer() {
    let pd = FakePagerDuty::start().await;
    pd.enable_oauth("serve-app", "serve-app-secret", Duration::from_secs(3600));
    // The fake refuses app tokens calls outside their scopes: the defaults must be enough.
    pd.enforce_oauth_scopes(true);
    let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
    let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
    // An open incident with no card yet: the reconciler's first pass reads it and posts one.
    pd.add_incident("Disk full on db-1", &policy);
    let slack = FakeSlack::start().await;
    slack.add_channel(FakeChannel::new("C0INCIDENTS", "incidents", &[]));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pdbridge.db");
    let text = WorldConfig {
        database: Some(&db),
        server: "reconcile_interval_secs = 3600",
        pd_credentials: format!(
            "oauth_client_id = \"serve-app\"\noauth_token_url = {:?}",
            pd.token_url()
        ),
        default_channel: "C0INCIDENTS",
        ..WorldConfig::for_fakes(&pd, &slack)
    }
    .toml();
    let env: BTreeMap<String, String> = [(
        "PAGERDUTY_OAUTH_CLIENT_SECRET".to_owned(),
        "serve-app-secret".to_owned(),
    )]
    .into();
    let config = Config::from_toml_str(&text, &env).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let running = app::start(config, listener, Options::default())
        .await
        .unwrap();

    let channel = ChannelId::new("C0INCIDENTS");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !slack
        .messages(&channel)
        .iter()
        .any(|m| m.text.contains("Disk full on db-1"))
    {
        assert!(
            Instant::now() < deadline,
            "no card was posted; PagerDuty saw {:?}",
            pd.requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await.unwrap();

    assert!(pd.token_requests() >= 1);
    let requests = pd.requests();
    let token_request = requests
        .iter()
        .find(|r| r.path == "/oauth/token")
        .expect("a token request");
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&token_request.body)
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "serve-app");
    assert_eq!(form["scope"], PAGERDUTY_OAUTH_SCOPES.join(" "));
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.path != "/oauth/token")
        .collect();
    assert!(
        api.iter().any(|r| r.path == "/incidents"),
        "the reconciler listed incidents"
    );
    for r in api {
        let auth = r.header("authorization").unwrap_or_default();
        assert!(
            auth.starts_with("Bearer fake-bearer-"),
            "{} {} sent {auth:?}",
            r.method,
            r.path
        );
    }
}

#[test]
fn serve_without_token_or_oauth_exits_64_naming_both_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.toml");
    std::fs::write(
        &path,
        "[pagerduty]\nwebhook_secrets = [\"s\"]\n\n[slack]\nbot_token = \"xoxb-1\"\n\
         signing_secret = \"sign\"\ndefault_channel = \"C1\"\n",
    )
    .unwrap();
    let out = common::pdbridge()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for needle in [
        "pagerduty.token",
        "PAGERDUTY_TOKEN",
        "pagerduty.oauth_client_id",
        "pagerduty.oauth_client_secret",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}
