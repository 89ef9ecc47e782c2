//! End to end: an incident whose card post failed permanently and that resolved meanwhile still
//! gets its card, showing the final state, from the next reconciliation pass, and only one.
//!
//! The real server runs on loopback against the fake Slack and the fake PagerDuty; the test
//! calls `reconcile_once` itself (the server's own reconciler runs once at start and then waits
//! an hour).

use std::time::{Duration, Instant};

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeUser, Fault};
use ids::{ChannelId, Email};
use pdbridge::app::{Options, Running};
use pdbridge::world::{self, WorldConfig};
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "e2e-slack-signing-secret";
const WEBHOOK_SECRET: &str = "e2e-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";
const ALICE: &str = "U1ALICE";
const TITLE: &str = "Card never posted";

async fn start(pd: &FakePagerDuty, slack: &FakeSlack, dir: &tempfile::TempDir) -> Running {
    let db = dir.path().join("pdbridge.db");
    let config = WorldConfig {
        database: Some(&db),
        server: "reconcile_interval_secs = 3600",
        pd_credentials: r#"token = "pd-token""#.to_owned(),
        webhook_secrets: &[WEBHOOK_SECRET],
        signing_secret: SIGNING_SECRET,
        default_channel: CHANNEL,
        ..WorldConfig::for_fakes(pd, slack)
    }
    .config()
    .unwrap();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let options = Options {
        engine: EngineConfig {
            retry_backoff: vec![Duration::from_millis(100), Duration::from_millis(200)],
            coalesce_window: Duration::from_millis(50),
            ..EngineConfig::default()
        },
        outbox_grace: Duration::from_secs(2),
        ..Options::default()
    };
    world::start(config, listener, options, pd, WEBHOOK_SECRET)
        .await
        .unwrap()
}

async fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn cards(slack: &FakeSlack) -> Vec<FakeMessage> {
    slack
        .messages(&ChannelId::new(CHANNEL))
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && m.text.contains(TITLE))
        .collect()
}

/// The `chat.postMessage` requests that post a card (not a thread reply).
fn card_posts(slack: &FakeSlack) -> usize {
    slack
        .requests_to("chat.postMessage")
        .iter()
        .filter(|r| r.json().get("thread_ts").is_none())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_whose_post_failed_is_posted_resolved_by_the_next_reconciliation() {
    let pd = FakePagerDuty::start().await;
    let slack = FakeSlack::start().await;
    slack.add_user(FakeUser::new(ALICE, "alice", "alice@example.com"));
    slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &[ALICE]));
    let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
    let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
    let dir = tempfile::tempdir().unwrap();
    let running = start(&pd, &slack, &dir).await;
    let bridge = &running.bridge;

    // The card's first post fails permanently (`channel_not_found` is not a retryable code), and
    // so does the minimal card the engine then tries, as with a real missing channel.
    slack.inject("chat.postMessage", Fault::error("channel_not_found"));
    slack.inject("chat.postMessage", Fault::error("channel_not_found"));
    let incident = pd.trigger_incident(TITLE, &policy);
    let engine_state = |check: &dyn Fn(&sync_core::IncidentState) -> bool| {
        bridge.with_engine(|e| e.incident(&incident).is_some_and(check))
    };
    wait("the failed post's outcome is handled", || {
        slack.requests_to("chat.postMessage").len() == 2
            && engine_state(&|s| s.card_ts().is_none() && s.is_idle())
    })
    .await;

    // The incident is resolved in PagerDuty; its `incident.resolved` webhook arrives.
    // A client of the test's own stands in for a person in PagerDuty's web UI: the engine
    // awaits no echo, so the webhook is an outside change.
    let mut config =
        pd_client::Config::new(pd_client::Auth::Token(pd_client::Secret::new("pd-token")));
    config.base_url = pd.url().parse().unwrap();
    pd_client::PdClient::new(config)
        .unwrap()
        .resolve(&incident, &Email::new("alice@example.com"), None)
        .await
        .unwrap();
    wait("the resolve webhook is applied", || {
        engine_state(&|s| s.is_resolved())
    })
    .await;
    let now = bridge.now();
    assert!(engine_state(&|s| s.needs_reconcile(now)));
    // The store keeps it among the incidents to reconcile, and it is not unloaded as done.
    let stored_open = bridge.store().read(|tx| tx.open_incident_ids()).unwrap();
    assert!(stored_open.contains(&incident), "{stored_open:?}");
    bridge.unload_idle_resolved();
    assert!(bridge.with_engine(|e| e.incident(&incident).is_some()));
    assert!(cards(&slack).is_empty());
    assert_eq!(slack.requests_to("chat.postMessage").len(), 2);

    // One pass posts the card, showing the resolved state.
    pdbridge::runtime::reconcile_once(bridge).await;
    wait("the reconciler posted the card", || {
        engine_state(&|s| s.card_ts().is_some() && s.is_idle())
    })
    .await;
    let posted = cards(&slack);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0].text.contains("Resolved"), "{}", posted[0].text);
    assert!(
        !posted[0].blocks.to_string().contains("pdbridge_resolve"),
        "a resolved card offers no buttons: {}",
        posted[0].blocks
    );
    let stored_open = bridge.store().read(|tx| tx.open_incident_ids()).unwrap();
    assert!(!stored_open.contains(&incident), "{stored_open:?}");

    // Three card posts reached Slack (the failed full and minimal ones, and this one, full
    // again); thread lines are replies.
    assert_eq!(card_posts(&slack), 3);
    assert!(posted[0].blocks.to_string().contains("fields"));

    // A second pass posts nothing more.
    let posts = slack.requests_to("chat.postMessage").len();
    pdbridge::runtime::reconcile_once(bridge).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.requests_to("chat.postMessage").len(), posts);
    assert_eq!(card_posts(&slack), 3);
    assert_eq!(cards(&slack).len(), 1);
    running.shutdown().await.unwrap();
}
