//! End to end: PagerDuty polling (`pagerduty.mode = "poll"` and `"hybrid"`). The real server
//! runs on loopback against the fake Slack and the fake PagerDuty, whose `GET /log_entries`
//! lists every incident event it would send as a webhook.

use std::time::{Duration, Instant};

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeUser};
use ids::{ChannelId, Email, EscalationPolicyId, IncidentId};
use pd_client::{Auth, PdClient, Secret};
use pdbridge::app::{Options, Running};
use pdbridge::world::{self, WorldConfig};
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "e2e-slack-signing-secret";
const WEBHOOK_SECRET: &str = "e2e-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";

struct Env {
    pd: FakePagerDuty,
    slack: FakeSlack,
    dir: tempfile::TempDir,
    policy: EscalationPolicyId,
}

impl Env {
    async fn new() -> Self {
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        slack.add_user(FakeUser::new("U1ALICE", "alice", "alice@example.com"));
        slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &["U1ALICE"]));
        let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
        let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
        Self {
            pd,
            slack,
            dir: tempfile::tempdir().unwrap(),
            policy,
        }
    }

    /// Starts the server in `mode`, polling every second; webhooks reach it only in hybrid mode.
    async fn start(&self, mode: &str) -> Running {
        let db = self.dir.path().join("pdbridge.db");
        let secrets: &[&str] = if mode == "poll" {
            &[]
        } else {
            &[WEBHOOK_SECRET]
        };
        let config = WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            pd_credentials: format!(
                "token = \"pd-token\"\nmode = \"{mode}\"\npoll_interval_secs = 1"
            ),
            webhook_secrets: secrets,
            signing_secret: SIGNING_SECRET,
            default_channel: CHANNEL,
            ..WorldConfig::for_fakes(&self.pd, &self.slack)
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
            ..Options::default()
        };
        if mode == "poll" {
            pdbridge::app::start(config, listener, options)
                .await
                .unwrap()
        } else {
            world::start(config, listener, options, &self.pd, WEBHOOK_SECRET)
                .await
                .unwrap()
        }
    }

    /// A client acting in PagerDuty's web UI, as Alice.
    fn pd_client(&self) -> PdClient {
        let mut config = pd_client::Config::new(Auth::Token(Secret::new("pd-token".to_owned())));
        config.base_url = url::Url::parse(&self.pd.url()).unwrap();
        PdClient::new(config).unwrap()
    }

    fn messages(&self) -> Vec<FakeMessage> {
        self.slack.messages(&ChannelId::new(CHANNEL))
    }

    fn cards(&self, title: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m.thread_ts.is_none() && m.text.contains(title))
            .count()
    }

    /// The thread lines (of every card) containing `needle`.
    fn lines(&self, needle: &str) -> usize {
        let channel = ChannelId::new(CHANNEL);
        self.messages()
            .iter()
            .filter(|m| m.thread_ts.is_none())
            .flat_map(|card| self.slack.thread(&channel, &card.ts))
            .filter(|m| m.thread_ts.is_some() && m.text.to_lowercase().contains(needle))
            .count()
    }

    fn polls(&self) -> usize {
        self.pd
            .requests()
            .iter()
            .filter(|r| r.path == "/log_entries")
            .count()
    }

    /// Waits until the server has polled twice more than now, so every entry logged before this
    /// call has been read.
    async fn two_more_polls(&self) {
        let from = self.polls();
        wait("two more polls", || self.polls() >= from + 2).await;
    }
}

async fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn alice() -> Email {
    Email::new("alice@example.com")
}

async fn acknowledge(env: &Env, incident: &IncidentId) {
    env.pd_client()
        .acknowledge(incident, &alice())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_mode_follows_an_incident_with_no_webhook_and_a_restart_repeats_nothing() {
    let env = Env::new().await;
    let running = env.start("poll").await;
    let incident = env.pd.trigger_incident("Poll: disk full", &env.policy);
    wait("the card", || env.cards("Poll: disk full") == 1).await;
    acknowledge(&env, &incident).await;
    wait("the acknowledged line", || env.lines("acknowledged") == 1).await;
    assert!(env.pd.deliveries().is_empty(), "poll mode needs no webhook");
    running.shutdown().await.unwrap();

    // While the bridge is down the incident is resolved; the restarted bridge catches up from
    // its stored cursor: the resolve once, nothing before it again.
    env.pd_client()
        .resolve(&incident, &alice(), None)
        .await
        .unwrap();
    let running = env.start("poll").await;
    wait("the resolved line", || env.lines("resolved") == 1).await;
    env.two_more_polls().await;
    assert_eq!(env.cards("Poll: disk full"), 1);
    assert_eq!(env.lines("acknowledged"), 1);
    assert_eq!(env.lines("resolved"), 1);
    let card = env
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .unwrap();
    assert!(
        card.text.to_lowercase().contains("resolved"),
        "{}",
        card.text
    );
    // Every poll asked as the real API expects it.
    let request = env
        .pd
        .requests()
        .into_iter()
        .find(|r| r.path == "/log_entries")
        .unwrap();
    let query = request.query.unwrap_or_default();
    for part in [
        "since=",
        "include%5B%5D=incidents",
        "is_overview=false",
        "limit=100",
    ] {
        assert!(query.contains(part), "{query}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hybrid_mode_renders_a_change_seen_by_both_paths_once() {
    let env = Env::new().await;
    let running = env.start("hybrid").await;
    let incident = env
        .pd
        .trigger_incident("Hybrid: queue backlog", &env.policy);
    wait("the card", || env.cards("Hybrid: queue backlog") == 1).await;
    acknowledge(&env, &incident).await;
    wait("the acknowledged line", || env.lines("acknowledged") == 1).await;
    env.pd_client()
        .add_note(&incident, &alice(), "looking into it")
        .await
        .unwrap();
    wait("the note line", || env.lines("looking into it") == 1).await;
    // Both webhooks were delivered and both entries polled; each change shows once.
    env.pd.wait_for_accepted(3, Duration::from_secs(20)).await;
    env.two_more_polls().await;
    assert_eq!(env.cards("Hybrid: queue backlog"), 1);
    assert_eq!(env.lines("acknowledged"), 1);
    assert_eq!(env.lines("looking into it"), 1);
    running.shutdown().await.unwrap();
}
