//! End to end, identity: the workspace boundary and the authorization facts, with the real
//! server on loopback against the fake Slack and the fake PagerDuty.
//!
//! No `slack.team_id` is configured, so the home workspace is the bot's own as the fake
//! Slack's `auth.test` reports it. Eve is a Slack Connect user of another organisation whose
//! own admin set her email to Alice's.

use std::time::{Duration, Instant};

use fakes::pd::{FakePagerDuty, Status as PdStatus};
use fakes::slack::{FakeChannel, FakeSlack, FakeUser, Fault, send_interaction};
use ids::{
    ChannelId, EscalationPolicyId, IncidentId, MessageTs, PdUserId, SlackTeamId, SlackUserId,
};
use pdbridge::app::{Options, Running};
use pdbridge::world::{self, WorldConfig};
use signing::SlackSigningSecret;
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "identity-slack-signing-secret";
const WEBHOOK_SECRET: &str = "identity-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";
const ALICE: &str = "U1ALICE";
const EVE: &str = "U5EVE";
const OTHER_ORG: &str = "T0OTHERORG";

struct Env {
    pd: FakePagerDuty,
    slack: FakeSlack,
    running: Option<Running>,
    _dir: tempfile::TempDir,
    policy: EscalationPolicyId,
}

impl Env {
    async fn new(extra_toml: &str) -> Self {
        Self::with_auth_test_failures(extra_toml, 0).await
    }

    /// Like [`Env::new`], with Slack's next `failures` answers to `auth.test` errors.
    async fn with_auth_test_failures(extra_toml: &str, failures: usize) -> Self {
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        for _ in 0..failures {
            slack.inject("auth.test", Fault::error("invalid_auth"));
        }
        slack.add_user(FakeUser::new(ALICE, "alice", "alice@example.com"));
        slack.add_user(FakeUser::new(EVE, "eve", "alice@example.com"));
        slack.set_user_team(&SlackUserId::new(EVE), Some(SlackTeamId::new(OTHER_ORG)));
        slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &[ALICE, EVE]));
        let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
        let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdbridge.db");
        let config = WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            webhook_secrets: &[WEBHOOK_SECRET],
            signing_secret: SIGNING_SECRET,
            default_channel: CHANNEL,
            team_id: None,
            extra: extra_toml,
            ..WorldConfig::for_fakes(&pd, &slack)
        }
        .config()
        .unwrap();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let options = Options {
            engine: EngineConfig {
                retry_backoff: vec![Duration::from_millis(100)],
                coalesce_window: Duration::from_millis(50),
                ..EngineConfig::default()
            },
            outbox_grace: Duration::from_secs(2),
            ..Options::default()
        };
        let running = world::start(config, listener, options, &pd, WEBHOOK_SECRET)
            .await
            .unwrap();
        Self {
            pd,
            slack,
            running: Some(running),
            _dir: dir,
            policy,
        }
    }

    /// Sends `user`'s click on `action`, with the payload's `team.id` set to `team` (Slack
    /// Connect payloads can name the clicker's own workspace).
    async fn click(&self, user: &str, team: Option<&str>, ts: &MessageTs, action: &str) {
        let mut payload = self
            .slack
            .block_actions_payload(
                &SlackUserId::new(user),
                &ChannelId::new(CHANNEL),
                ts,
                action,
                None,
            )
            .unwrap();
        if let Some(team) = team {
            payload["team"]["id"] = team.into();
        }
        let target = format!(
            "http://{}/slack/interactions",
            self.running.as_ref().unwrap().addr
        );
        let reply = send_interaction(&target, &SlackSigningSecret::new(SIGNING_SECRET), &payload)
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    async fn card(&self, title: &str) -> MessageTs {
        self.wait("the card is posted", || {
            self.slack
                .messages(&ChannelId::new(CHANNEL))
                .iter()
                .any(|m| m.thread_ts.is_none() && m.text.contains(title))
        })
        .await;
        self.slack
            .messages(&ChannelId::new(CHANNEL))
            .into_iter()
            .find(|m| m.thread_ts.is_none() && m.text.contains(title))
            .unwrap()
            .ts
    }

    /// The ephemeral messages `user` was sent, in order.
    fn told(&self, user: &str) -> Vec<String> {
        self.slack
            .ephemerals()
            .into_iter()
            .filter(|e| e.user == SlackUserId::new(user))
            .map(|e| e.text)
            .collect()
    }

    /// The `From` header of every incident mutation PagerDuty received.
    fn mutations(&self, incident: &IncidentId) -> Vec<String> {
        self.pd
            .requests()
            .into_iter()
            .filter(|r| {
                (r.method == http::Method::PUT || r.method == http::Method::POST)
                    && r.path.starts_with(&format!("/incidents/{incident}"))
            })
            .map(|r| r.header("from").unwrap_or("").to_owned())
            .collect()
    }

    async fn wait(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for e in self.slack.ephemerals() {
            eprintln!("EPH {} {}", e.user, e.text);
        }
        for r in self.pd.requests() {
            eprintln!("PD  {} {} from={:?}", r.method, r.path, r.header("from"));
        }
        panic!("timed out waiting for: {what}");
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_connect_user_is_refused_by_default_even_when_the_payload_names_their_workspace() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Disk full", &env.policy);
    let ts = env.card("Disk full").await;

    env.click(EVE, Some(OTHER_ORG), &ts, "pdbridge_ack").await;
    env.wait("Eve is told why", || !env.told(EVE).is_empty())
        .await;
    let told = env.told(EVE).join("\n");
    assert!(told.contains(OTHER_ORG), "{told}");
    assert!(told.contains(env.slack.team_id().as_str()), "{told}");
    assert!(
        told.contains("[[identity]]"),
        "the message says how to fix it: {told}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        env.mutations(&incident).is_empty(),
        "nothing reached PagerDuty as Alice"
    );
    assert_eq!(
        env.pd.incident(&incident).unwrap().status,
        PdStatus::Triggered
    );

    // A member of the home workspace with that email acts as usual.
    env.click(ALICE, None, &ts, "pdbridge_ack").await;
    env.wait("Alice's ack reaches PagerDuty", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(env.mutations(&incident), ["alice@example.com"]);
    env.stop().await;
}

/// `auth.test` fails at start and at the first click: the server still answers, the click is
/// held (the clicker is told it will be retried), and once Slack names the bot's workspace the
/// Slack Connect user is refused; at no point is anyone mapped against another workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_test_nobody_is_mapped_until_slack_names_the_home_workspace() {
    let mut env = Env::with_auth_test_failures("", 2).await;
    let incident = env.pd.trigger_incident("Disk full", &env.policy);
    let ts = env.card("Disk full").await;
    env.click(EVE, Some(OTHER_ORG), &ts, "pdbridge_ack").await;
    env.wait("Eve is told the click waits", || {
        env.told(EVE).iter().any(|t| t.contains("retried"))
    })
    .await;
    env.wait("Eve is refused once the home workspace is known", || {
        env.told(EVE).iter().any(|t| t.contains(OTHER_ORG))
    })
    .await;
    assert!(
        env.mutations(&incident).is_empty(),
        "nothing reached PagerDuty"
    );
    env.stop().await;
}

/// The fix the refusal names: an `[[identity]]` entry maps that one Slack Connect user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_entry_lets_one_slack_connect_user_act() {
    let mut env = Env::new(&format!(
        "\n[[identity]]\nslack_user = \"{EVE}\"\npd_user = \"PALICE\"\n"
    ))
    .await;
    let incident = env.pd.trigger_incident("Disk full", &env.policy);
    let ts = env.card("Disk full").await;
    env.click(EVE, Some(OTHER_ORG), &ts, "pdbridge_ack").await;
    env.wait("Eve's ack reaches PagerDuty", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(env.mutations(&incident), ["alice@example.com"]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_any_workspace_is_the_explicit_opt_in_for_slack_connect_users() {
    let mut env = Env::new("allow_any_workspace = true\n").await;
    let incident = env.pd.trigger_incident("Disk full", &env.policy);
    let ts = env.card("Disk full").await;
    env.click(EVE, Some(OTHER_ORG), &ts, "pdbridge_ack").await;
    env.wait("Eve's ack reaches PagerDuty", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(env.mutations(&incident), ["alice@example.com"]);
    env.stop().await;
}
/// Alice's mapping is cached with her role (`user`). PagerDuty then makes her an observer: the
/// next mutation is refused by PagerDuty (403), which drops her cached mapping, so her next click
/// is refused by pdbridge itself, with the reason, and never reaches PagerDuty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_from_user_pagerduty_rejects_is_forgotten_and_read_only_roles_are_refused() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Disk full", &env.policy);
    let ts = env.card("Disk full").await;
    env.click(ALICE, None, &ts, "pdbridge_ack").await;
    env.wait("Alice's ack reaches PagerDuty", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;

    env.pd.set_user_role(&PdUserId::new("PALICE"), "observer");
    env.wait("the card settles", || {
        !env.slack
            .message(&ChannelId::new(CHANNEL), &ts)
            .unwrap()
            .blocks
            .to_string()
            .contains("hourglass")
    })
    .await;
    env.click(ALICE, None, &ts, "pdbridge_resolve").await;
    env.wait("PagerDuty refuses the observer", || {
        env.mutations(&incident).len() == 2
    })
    .await;
    env.wait("Alice is told PagerDuty refused", || {
        !env.told(ALICE).is_empty()
    })
    .await;
    env.wait("the card settles", || {
        !env.slack
            .message(&ChannelId::new(CHANNEL), &ts)
            .unwrap()
            .blocks
            .to_string()
            .contains("hourglass")
    })
    .await;
    let before = env.told(ALICE).len();
    env.click(ALICE, None, &ts, "pdbridge_resolve").await;
    env.wait("Alice is told why", || env.told(ALICE).len() > before)
        .await;
    let told = env.told(ALICE).last().cloned().unwrap();
    assert!(told.contains("observer"), "{told}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        env.mutations(&incident).len(),
        2,
        "the refused click never reached PagerDuty"
    );
    assert_eq!(
        env.pd.incident(&incident).unwrap().status,
        PdStatus::Acknowledged
    );
    env.stop().await;
}
