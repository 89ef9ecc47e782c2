//! End to end: the real server on loopback against the fake Slack and the fake PagerDuty.
//!
//! Each test starts both fakes, a server with a temporary database, and a webhook subscription
//! in the fake PagerDuty pointing at the server. Clicks are sent the way Slack sends them
//! (signed `block_actions` / `view_submission` built from the stored card), and webhooks the way
//! PagerDuty sends them (signed, in order per incident, retried on 5xx).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fakes::pd::{FakePagerDuty, Status as PdStatus};
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeUser, InputValue};
use ids::{ChannelId, EscalationPolicyId, IncidentId, MessageTs, SlackUserId};
use pdbridge::app::{self, Options, Running};
use pdbridge::config::Config;
use pdbridge::world::WorldConfig;
use signing::SlackSigningSecret;
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "e2e-slack-signing-secret";
const WEBHOOK_SECRET: &str = "e2e-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";
pub(super) const ALICE: &str = "U1ALICE";
pub(super) const BOB: &str = "U2BOB";
pub(super) const MALLORY: &str = "U3MALLORY";

pub(super) struct Env {
    pub(super) pd: FakePagerDuty,
    pub(super) slack: FakeSlack,
    running: Option<Running>,
    dir: tempfile::TempDir,
    pub(super) policy: EscalationPolicyId,
    extra_toml: String,
    /// When set, the server is pointed at this Slack API URL instead of the fake's.
    slack_api_override: Option<String>,
    /// The server's port, kept across restarts so the webhook subscription stays valid.
    port: u16,
    port_was_zero: bool,
    /// The fake PagerDuty's webhook subscription pointing at the server.
    subscription: Option<ids::SubscriptionId>,
}

fn fast_engine() -> EngineConfig {
    EngineConfig {
        retry_backoff: vec![Duration::from_millis(100), Duration::from_millis(200)],
        max_attempts: 5,
        coalesce_window: Duration::from_millis(50),
        pending_timeout: Duration::from_secs(60),
        ..EngineConfig::default()
    }
}

impl Env {
    pub(super) async fn new(extra_toml: &str) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
            )
            .with_test_writer()
            .try_init();
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        slack.add_user(FakeUser::new(ALICE, "alice", "alice@example.com"));
        slack.add_user(FakeUser::new(BOB, "bob", "bob@example.com"));
        slack.add_user(FakeUser::new(
            MALLORY,
            "mallory",
            "mallory@elsewhere.example",
        ));
        slack.add_channel(FakeChannel::new(
            CHANNEL,
            "incidents",
            &[ALICE, BOB, MALLORY],
        ));
        let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
        let bob = pd.add_user("PBOB", "Bob Example", "bob@example.com");
        let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice], vec![bob]]);
        let dir = tempfile::tempdir().unwrap();
        let mut env = Self {
            pd,
            slack,
            running: None,
            dir,
            policy,
            extra_toml: extra_toml.to_owned(),
            slack_api_override: None,
            port: 0,
            port_was_zero: true,
            subscription: None,
        };
        env.start_server().await;
        env
    }

    fn config(&self) -> Config {
        let db = self.dir.path().join("pdbridge.db");
        WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            pd_credentials: r#"token = "pd-token""#.to_owned(),
            webhook_secrets: &[WEBHOOK_SECRET],
            slack_api: self
                .slack_api_override
                .clone()
                .unwrap_or_else(|| self.slack.api_url()),
            signing_secret: SIGNING_SECRET,
            default_channel: CHANNEL,
            extra: &self.extra_toml,
            ..WorldConfig::for_fakes(&self.pd, &self.slack)
        }
        .config()
        .unwrap()
    }

    async fn start_server(&mut self) {
        self.port_was_zero = self.port == 0;
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let options = Options {
            engine: fast_engine(),
            outbox_grace: Duration::from_secs(2),
            ..Options::default()
        };
        let running = app::start(self.config(), listener, options).await.unwrap();
        if self.port_was_zero {
            self.subscription = Some(self.pd.set_webhook_target(
                &format!("http://{}/pagerduty/webhook", running.addr),
                WEBHOOK_SECRET,
            ));
        }
        self.running = Some(running);
    }

    pub(super) fn base(&self) -> String {
        format!("http://{}", self.running.as_ref().unwrap().addr)
    }

    pub(super) fn interactions(&self) -> String {
        format!("{}/slack/interactions", self.base())
    }

    pub(super) fn secret(&self) -> SlackSigningSecret {
        SlackSigningSecret::new(SIGNING_SECRET)
    }

    pub(super) fn channel(&self) -> ChannelId {
        ChannelId::new(CHANNEL)
    }

    /// The top-level messages (cards) in the channel.
    fn cards(&self) -> Vec<FakeMessage> {
        self.slack
            .messages(&self.channel())
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    fn card_for(&self, title: &str) -> Option<FakeMessage> {
        self.cards().into_iter().find(|m| m.text.contains(title))
    }

    /// Waits until the card of the incident titled `title` is posted, and returns it.
    pub(super) async fn card_posted(&self, title: &str) -> FakeMessage {
        self.wait("the card is posted", || self.card_for(title).is_some())
            .await;
        self.card_for(title).unwrap()
    }

    pub(super) async fn click(
        &self,
        user: &str,
        ts: &MessageTs,
        action: &str,
    ) -> fakes::slack::InteractionReply {
        let started = Instant::now();
        let reply = self
            .slack
            .click(
                &self.interactions(),
                &self.secret(),
                &SlackUserId::new(user),
                &self.channel(),
                ts,
                action,
            )
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "Slack needs an answer within 3 s"
        );
        assert_eq!(
            reply.status, 200,
            "click {action} answered {:?}",
            reply.body
        );
        reply
    }

    /// Whether `user` was sent an ephemeral message containing `needle`.
    pub(super) fn told(&self, user: &str, needle: &str) -> bool {
        self.slack
            .ephemerals()
            .iter()
            .any(|e| e.user == SlackUserId::new(user) && e.text.contains(needle))
    }

    /// Waits until the card shows no pending action (a click while one is pending is refused
    /// as busy, exactly as a person would see it).
    pub(super) async fn settled(&self, ts: &MessageTs) {
        self.wait("the card has no pending action", || {
            self.slack
                .message(&self.channel(), ts)
                .is_some_and(|m| !m.blocks.to_string().contains("hourglass"))
        })
        .await;
    }

    /// Waits until the card's thread has a line containing `needle` (the engine writes it when
    /// PagerDuty confirmed the action, which also ends the pending state).
    pub(super) async fn thread_line(&self, ts: &MessageTs, needle: &str) {
        self.wait(&format!("a thread line with {needle:?}"), || {
            self.slack
                .thread(&self.channel(), ts)
                .iter()
                .any(|m| m.thread_ts.is_some() && m.text.contains(needle))
        })
        .await;
    }

    /// Prints what both fakes saw, to debug a failed wait.
    fn dump(&self) {
        for r in self.pd.requests() {
            eprintln!("PD  {} {} from={:?}", r.method, r.path, r.header("from"));
        }
        for m in self.slack.messages(&self.channel()) {
            eprintln!("MSG {} thread={:?} {}", m.ts, m.thread_ts, m.text);
        }
        for r in self.slack.requests() {
            let body = String::from_utf8_lossy(&r.body);
            let cut: String = body.chars().take(300).collect();
            eprintln!("SLK {} {} {cut}", r.method, r.path);
        }
        for m in self.slack.messages(&self.channel()) {
            eprintln!("EDITS {} {}", m.ts, m.edits.len());
            for t in self.slack.thread(&self.channel(), &m.ts) {
                eprintln!("THREAD {} {}", t.ts, t.text);
            }
        }
        for e in self.slack.ephemerals() {
            eprintln!("EPH {} {}", e.user, e.text);
        }
    }

    pub(super) async fn wait(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.dump();
        panic!("timed out waiting for: {what}");
    }

    pub(super) async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
    }
}

pub(super) fn buttons(m: &FakeMessage) -> Vec<String> {
    m.blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["text"]["text"].as_str().map(str::to_owned))
        .collect()
}

fn puts_from(env: &Env, incident: &IncidentId) -> Vec<String> {
    env.pd
        .requests()
        .into_iter()
        .filter(|r| {
            (r.method == http::Method::PUT || r.method == http::Method::POST)
                && r.path.starts_with(&format!("/incidents/{incident}"))
        })
        .map(|r| r.header("from").unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_lifecycle_trigger_ack_escalate_reassign_note_resolve() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);

    // Trigger → one card naming the title and the status, with the five buttons.
    let card = env.card_posted("Checkout DB down").await;
    assert!(card.text.contains("Triggered"), "{}", card.text);
    assert_eq!(
        buttons(&card),
        ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
    );
    // The assignee (PagerDuty's Alice) is mentioned as her Slack user, not named.
    assert!(
        card.blocks.to_string().contains("<@U1ALICE>"),
        "{}",
        card.blocks
    );
    let ts = card.ts.clone();

    // Acknowledge → PUT with Alice's From → echo webhook → card acknowledged, one thread line.
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(puts_from(&env, &incident), ["alice@example.com"]);
    env.wait("the card shows Acknowledged", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.text.contains("Acknowledged"))
    })
    .await;
    env.wait("one thread line for the ack", || {
        env.slack
            .thread(&env.channel(), &ts)
            .iter()
            .filter(|m| m.thread_ts.is_some() && m.text.to_lowercase().contains("acknowledged"))
            .count()
            == 1
    })
    .await;
    // The echo webhook arrives and is accepted, but renders no second line.
    env.pd.wait_for_accepted(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ack_lines = env
        .slack
        .thread(&env.channel(), &ts)
        .iter()
        .filter(|m| m.thread_ts.is_some() && m.text.to_lowercase().contains("acknowledged"))
        .count();
    assert_eq!(ack_lines, 1, "the echo must not add a second line");

    // Escalate → level 2.
    env.settled(&ts).await;
    env.click(ALICE, &ts, "pdbridge_escalate").await;
    env.wait("PagerDuty escalated to level 2", || {
        env.pd.incident(&incident).unwrap().escalation_level == 2
    })
    .await;
    // Level 2 is the policy's last: the card says so instead of offering Escalate (the
    // escalation triggered the incident again, so Acknowledge is back).
    env.wait(
        "the card shows Escalate unavailable on the last level",
        || {
            env.slack.message(&env.channel(), &ts).is_some_and(|m| {
                buttons(&m) == ["Acknowledge", "Reassign", "Add note", "Resolve"]
                    && m.blocks.to_string().contains("last level (2 of 2)")
            })
        },
    )
    .await;

    // Reassign via the modal → Bob.
    env.thread_line(&ts, "escalated").await;
    env.settled(&ts).await;
    env.click(ALICE, &ts, "pdbridge_reassign").await;
    env.wait("the reassign modal opened", || {
        !env.slack.views().is_empty()
    })
    .await;
    let view = env.slack.views().last().unwrap().clone();
    let reply = env
        .slack
        .submit_view(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(ALICE),
            &view.id,
            &[(
                "reassign_to",
                "reassign_user",
                InputValue::User(SlackUserId::new(BOB)),
            )],
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.wait("PagerDuty reassigned to Bob", || {
        env.pd.incident(&incident).unwrap().assignees == [ids::PdUserId::new("PBOB")]
    })
    .await;
    env.wait("the card mentions Bob", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.blocks.to_string().contains("<@U2BOB>"))
    })
    .await;

    // Add note via the modal: an empty note is refused in the modal, a real one reaches PD.
    env.thread_line(&ts, "reassigned").await;
    env.settled(&ts).await;
    env.click(ALICE, &ts, "pdbridge_note").await;
    env.wait("the note modal opened", || env.slack.views().len() == 2)
        .await;
    let view = env.slack.views().last().unwrap().clone();
    let reply = env
        .slack
        .submit_view(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(ALICE),
            &view.id,
            &[("note", "note_text", InputValue::Text("   ".into()))],
        )
        .await
        .unwrap();
    assert_eq!(reply.json()["response_action"], "errors");
    assert!(reply.json()["errors"]["note"].is_string());
    let reply = env
        .slack
        .submit_view(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(ALICE),
            &view.id,
            &[(
                "note",
                "note_text",
                InputValue::Text("Rolled back the deploy".into()),
            )],
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.wait("the note reached PagerDuty", || {
        env.pd
            .incident(&incident)
            .unwrap()
            .notes
            .iter()
            .any(|n| n.content == "Rolled back the deploy")
    })
    .await;

    // Resolve → card resolved, buttons gone but Open in PagerDuty, details kept.
    env.thread_line(&ts, "note").await;
    env.settled(&ts).await;
    // After the reassignment the level is unknown again: Escalate is offered once more.
    env.wait("Escalate is offered again", || {
        env.slack.message(&env.channel(), &ts).is_some_and(|m| {
            buttons(&m) == ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
        })
    })
    .await;
    env.click(ALICE, &ts, "pdbridge_resolve").await;
    env.wait("PagerDuty resolved", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Resolved
    })
    .await;
    env.wait("the card shows Resolved without buttons", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.text.contains("Resolved") && buttons(&m) == ["Open in PagerDuty"])
    })
    .await;
    let card = env.slack.message(&env.channel(), &ts).unwrap();
    assert!(card.text.contains("Checkout DB down"));
    assert_eq!(env.cards().len(), 1, "exactly one card per incident");
    // Every mutation was made as Alice.
    assert!(
        puts_from(&env, &incident)
            .iter()
            .all(|f| f == "alice@example.com")
    );
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    for line in [
        "pdbridge_actions_total{kind=\"acknowledge\",result=\"succeeded\"} 1",
        "pdbridge_actions_total{kind=\"resolve\",result=\"succeeded\"} 1",
        "pdbridge_actions_total{kind=\"add_note\",result=\"succeeded\"} 1",
        "pdbridge_webhooks_rejected_total{source=\"pagerduty\",reason=\"mismatch\"} 0",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("pdbridge_webhooks_received_total{source=\"pagerduty\"}"));
    assert!(metrics.contains("pdbridge_api_calls_total{platform=\"pagerduty\",outcome=\"ok\"}"));
    assert!(metrics.contains("pdbridge_outbox_depth"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unmapped_and_unauthorized_clickers_are_refused_and_told() {
    let mut env = Env::new("[policy]\nresolve = \"admin\"\nadmins = [\"U9BOSS\"]\n").await;
    let incident = env.pd.trigger_incident("Queue backlog", &env.policy);
    let ts = env.card_posted("Queue backlog").await.ts;

    // Mallory has no PagerDuty account: refused, told, nothing sent to PD.
    env.click(MALLORY, &ts, "pdbridge_ack").await;
    env.wait("Mallory is told", || env.told(MALLORY, "")).await;
    // Alice is mapped but the policy reserves Resolve to admins.
    env.click(ALICE, &ts, "pdbridge_resolve").await;
    env.wait("Alice is told", || env.told(ALICE, "")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        puts_from(&env, &incident).is_empty(),
        "no mutation for refused clicks"
    );
    assert_eq!(
        env.pd.incident(&incident).unwrap().status,
        PdStatus::Triggered
    );
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(
        metrics.contains("pdbridge_unmapped_users_total 1"),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_teams_incident_cannot_be_resolved_by_default() {
    let mut env = Env::new("").await;
    let ops = env.pd.add_team("PTEAMOPS", "Ops");
    let payments = env.pd.add_team("PTEAMPAY", "Payments");
    env.pd
        .set_user_teams(&ids::PdUserId::new("PALICE"), std::slice::from_ref(&ops));
    env.pd
        .set_user_teams(&ids::PdUserId::new("PBOB"), std::slice::from_ref(&payments));
    // The incident belongs to Payments through its service; Alice (Ops) is its assignee.
    let service = env.pd.add_service("PSVCPAY", "Payments API", &[payments]);
    let incident = env
        .pd
        .trigger_incident_on("Payments latency", &env.policy, &service);
    let ts = env.card_posted("Payments latency").await.ts;
    env.click(ALICE, &ts, "pdbridge_resolve").await;
    env.wait("Alice is told she may not resolve it", || {
        env.told(ALICE, "PTEAMPAY")
    })
    .await;
    assert!(
        puts_from(&env, &incident).is_empty(),
        "nothing reached PagerDuty"
    );
    // Bob is on Payments: his Resolve goes through, as him.
    env.settled(&ts).await;
    env.click(BOB, &ts, "pdbridge_resolve").await;
    env.wait("PagerDuty resolved", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Resolved
    })
    .await;
    assert_eq!(puts_from(&env, &incident), ["bob@example.com"]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pd_down_during_a_click_tells_the_user_and_retries() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Cache misses", &env.policy);
    let ts = env.card_posted("Cache misses").await.ts;
    env.pd.set_down(true);
    env.click(ALICE, &ts, "pdbridge_ack").await;
    // While PagerDuty is down the clicker sees that the action is being retried.
    env.wait("the user is told about the retry", || {
        env.told(ALICE, "")
            || env
                .slack
                .message(&env.channel(), &ts)
                .is_some_and(|m| m.blocks.to_string().contains("retrying"))
    })
    .await;
    env.pd.set_down(false);
    env.wait("the retry acknowledged the incident", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_and_forged_webhooks() {
    let mut env = Env::new("").await;
    env.pd.trigger_incident("Disk full", &env.policy);
    let attempts = env.pd.wait_for_accepted(1, Duration::from_secs(5)).await;
    let first = attempts.first().unwrap().clone();
    env.card_posted("Disk full").await;

    let url = format!("{}/pagerduty/webhook", env.base());
    // The same delivery again → 200 (duplicate), still one card.
    let status = post(
        &url,
        &first.body,
        &[
            ("x-pagerduty-signature", first.signature.as_str()),
            ("x-webhook-id", first.webhook_id.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // A forged signature and a missing one → 401.
    let forged = signing::sign_pagerduty(&signing::PagerDutySecret::new("guess"), &first.body);
    assert_eq!(
        post(
            &url,
            &first.body,
            &[("x-pagerduty-signature", forged.as_str())]
        )
        .await,
        401
    );
    assert_eq!(post(&url, &first.body, &[]).await, 401);
    // A forged Slack click → 401.
    let status = post(
        &env.interactions(),
        b"payload=%7B%7D",
        &[
            ("x-slack-request-timestamp", "1"),
            ("x-slack-signature", "v0=00"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    // A forged slash command → 401.
    let status = post(&format!("{}/slack/commands", env.base()), b"text=help", &[]).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.cards().len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_with_a_non_empty_outbox_posts_exactly_once() {
    let mut env = Env::new("").await;
    // Restart against an unreachable Slack, so the card cannot be posted and stays pending.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/api", dead.local_addr().unwrap());
    drop(dead);
    env.running.take().unwrap().abort().await;
    env.slack_api_override = Some(dead_url);
    env.start_server().await;
    env.pd.trigger_incident("Payments slow", &env.policy);
    env.pd.wait_for_accepted(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.card_for("Payments slow").is_none());
    let bridge = Arc::clone(&env.running.as_ref().unwrap().bridge);
    env.wait("a failed attempt is recorded for `pdbridge status`", || {
        !bridge
            .store()
            .read(|tx| tx.recent_failures(10))
            .unwrap()
            .is_empty()
    })
    .await;
    drop(bridge);
    // The process dies with the card still owed; a new one on the same database finishes it.
    env.running.take().unwrap().abort().await;
    env.slack_api_override = None;
    env.start_server().await;
    env.wait("the card is posted after restart", || {
        env.card_for("Payments slow").is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.cards().len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_429_storm_drops_nothing() {
    let mut env = Env::new("").await;
    // 429s with and without Retry-After on posts and on updates, on top of the fake's own
    // per-channel limit (a burst of 3, then 1 per second).
    for i in 0..6 {
        let retry_after = if i % 2 == 0 { Some(1) } else { None };
        env.slack.inject(
            "chat.postMessage",
            fakes::slack::Fault::RateLimited { retry_after },
        );
    }
    for i in 0..4 {
        let retry_after = if i % 2 == 0 { None } else { Some(1) };
        env.slack.inject(
            "chat.update",
            fakes::slack::Fault::RateLimited { retry_after },
        );
    }
    let titles: Vec<String> = (0..4).map(|i| format!("Storm incident {i}")).collect();
    let mut incidents = Vec::new();
    for t in &titles {
        incidents.push(env.pd.trigger_incident(t, &env.policy));
    }
    for t in &titles {
        env.wait("every card is posted despite 429s", || {
            env.card_for(t).is_some()
        })
        .await;
    }
    // An update under the storm still lands on the one card.
    let ts = env.card_for(&titles[0]).unwrap().ts;
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("the card shows Acknowledged despite 429s", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.text.contains("Acknowledged"))
    })
    .await;
    assert_eq!(env.cards().len(), 4, "no card dropped, none doubled");
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(metrics.contains("pdbridge_api_rate_limited_total{platform=\"slack\"}"));
    let _ = incidents;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slash_command_help_whoami_status() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("API errors", &env.policy);
    env.card_posted("API errors").await;
    // A guest whose email PagerDuty knows: mapped by email were it not a guest.
    let mut guest = FakeUser::new("U4GUEST", "guest", "guest@example.com");
    guest.is_restricted = true;
    env.slack.add_user(guest);
    env.pd
        .add_user("PGUEST", "Guest Example", "guest@example.com");
    let url = format!("{}/slack/commands", env.base());
    let run_as = |user: &str, text: &str| {
        let (user, text) = (user.to_owned(), text.to_owned());
        let url = url.clone();
        let env = &env;
        async move {
            env.slack
                .slash_command(
                    &url,
                    &env.secret(),
                    &SlackUserId::new(user),
                    &env.channel(),
                    "/pd",
                    &text,
                )
                .await
                .unwrap()
                .json()["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let run = |text: &str| run_as(ALICE, text);
    assert!(run("help").await.contains("/pd whoami"));
    assert!(run("whoami").await.contains("alice@example.com"));
    let status = run(&format!("status {incident}")).await;
    assert!(
        status.contains("API errors") && status.contains("Triggered"),
        "{status}"
    );
    // Guests and unmapped users get no details, only why.
    for who in ["U4GUEST", MALLORY] {
        let refused = run_as(who, &format!("status {incident}")).await;
        assert!(
            !refused.contains("API errors") && !refused.contains("Triggered"),
            "{who}: {refused}"
        );
        assert!(refused.contains("only to users mapped"), "{who}: {refused}");
    }
    env.stop().await;
}

async fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> u16 {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    client.request(req).await.unwrap().status().as_u16()
}

pub(super) async fn reqwest_free_get(url: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Re-signs `body` with the test subscription's secret after `edit` changed its JSON.
fn resigned(body: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> (Vec<u8>, String) {
    let mut value: serde_json::Value = serde_json::from_slice(body).unwrap();
    edit(&mut value);
    let body = serde_json::to_vec(&value).unwrap();
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(WEBHOOK_SECRET), &body);
    (body, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_out_of_order_webhook_never_reopens_a_resolved_card() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Late events", &env.policy);
    let ts = env.card_posted("Late events").await.ts;
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.thread_line(&ts, "acknowledged").await;
    env.settled(&ts).await;
    env.click(ALICE, &ts, "pdbridge_resolve").await;
    env.wait("the card shows Resolved", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.text.contains("Resolved"))
    })
    .await;
    // Once idle, the resolved incident leaves memory; the late event must load it back.
    let bridge = Arc::clone(&env.running.as_ref().unwrap().bridge);
    let mut unloaded = 0;
    env.wait("the resolved incident is unloaded", || {
        unloaded += bridge.unload_idle_resolved();
        unloaded > 0
    })
    .await;
    drop(bridge);
    // PagerDuty redelivers the old `incident.acknowledged` late, as a new delivery.
    let ack = env
        .pd
        .deliveries()
        .into_iter()
        .find(|d| {
            d.event_type == "incident.acknowledged" && d.incident_id.as_ref() == Some(&incident)
        })
        .expect("the echo of the ack was delivered");
    let (body, sig) = resigned(&ack.body, |v| {
        v["event"]["id"] = serde_json::json!("01LATEREDELIVERY0000000000");
    });
    let url = format!("{}/pagerduty/webhook", env.base());
    let status = post(
        &url,
        &body,
        &[
            ("x-pagerduty-signature", sig.as_str()),
            ("x-webhook-id", "late-delivery-1"),
        ],
    )
    .await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let card = env.slack.message(&env.channel(), &ts).unwrap();
    assert!(card.text.contains("Resolved"), "{}", card.text);
    assert_eq!(buttons(&card), ["Open in PagerDuty"]);
    assert_eq!(
        env.cards().len(),
        1,
        "the late event must not post a second card"
    );
    // A genuinely newer event (a reopen) updates the same card in place, even after unloading.
    let bridge = Arc::clone(&env.running.as_ref().unwrap().bridge);
    env.wait("the resolved incident is unloaded again", || {
        bridge.unload_idle_resolved() > 0 || bridge.with_engine(|e| e.incident(&incident).is_none())
    })
    .await;
    drop(bridge);
    let (body, sig) = resigned(&ack.body, |v| {
        v["event"]["id"] = serde_json::json!("01REOPENED0000000000000000");
        v["event"]["event_type"] = serde_json::json!("incident.reopened");
        v["event"]["occurred_at"] = serde_json::json!("2099-01-01T00:00:00.000Z");
        v["event"]["data"]["status"] = serde_json::json!("triggered");
    });
    let status = post(
        &url,
        &body,
        &[
            ("x-pagerduty-signature", sig.as_str()),
            ("x-webhook-id", "reopen-1"),
        ],
    )
    .await;
    assert_eq!(status, 202);
    env.wait("the same card shows the reopened incident", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.text.contains("Triggered"))
    })
    .await;
    assert_eq!(env.cards().len(), 1, "a reopen updates the card in place");
    assert_eq!(
        env.pd.incident(&incident).unwrap().status,
        PdStatus::Resolved
    );
    // Unknown event types and the ping are answered 2xx and change nothing.
    let (body, sig) = resigned(&ack.body, |v| {
        v["event"]["id"] = serde_json::json!("01UNKNOWNTYPE0000000000000");
        v["event"]["event_type"] = serde_json::json!("incident.something_new");
    });
    let status = post(&url, &body, &[("x-pagerduty-signature", sig.as_str())]).await;
    assert!((200..300).contains(&status), "{status}");
    let ping = br#"{"event":{"id":"01PING","event_type":"pagey.ping","resource_type":"pagey","occurred_at":"2026-11-24T00:00:00.000Z","agent":null,"client":null,"data":{"message":"Hello from your friend Pagey!","type":"ping"}}}"#;
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(WEBHOOK_SECRET), ping);
    let status = post(&url, ping, &[("x-pagerduty-signature", sig.as_str())]).await;
    assert!((200..300).contains(&status), "{status}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciler_posts_a_card_that_was_never_posted() {
    let mut env = Env::new("").await;
    // An incident PagerDuty never told us about (no webhook).
    env.pd.add_incident("Silent incident", &env.policy);
    pdbridge::runtime::reconcile_once(&env.running.as_ref().unwrap().bridge).await;
    env.wait("the reconciler posted the card", || {
        env.card_for("Silent incident").is_some()
    })
    .await;
    pdbridge::runtime::reconcile_once(&env.running.as_ref().unwrap().bridge).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.cards().len(), 1, "a second pass posts nothing new");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciled_cards_follow_routes_filtered_on_incident_triggered() {
    let mut env =
        Env::new("[[route]]\nchannel = \"C0TRIGGERS\"\nevents = [\"incident.triggered\"]\n").await;
    env.slack
        .add_channel(FakeChannel::new("C0TRIGGERS", "triggers", &[ALICE]));
    env.pd.add_incident("Unannounced incident", &env.policy);
    pdbridge::runtime::reconcile_once(&env.running.as_ref().unwrap().bridge).await;
    let routed = ChannelId::new("C0TRIGGERS");
    env.wait(
        "the reconciler posted the card in the routed channel",
        || {
            env.slack
                .messages(&routed)
                .iter()
                .any(|m| m.text.contains("Unannounced incident"))
        },
    )
    .await;
    assert!(env.card_for("Unannounced incident").is_none());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_with_an_accepted_click_acts_exactly_once() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Crashy worker", &env.policy);
    let ts = env.card_posted("Crashy worker").await.ts;
    // The click is accepted (answered 200) while PagerDuty is down, then the process dies.
    env.pd.set_down(true);
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("the user is told the click is retried", || {
        env.told(ALICE, "")
    })
    .await;
    env.running.take().unwrap().abort().await;
    env.pd.set_down(false);
    env.start_server().await;
    env.wait("the click was carried out after the restart", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let puts = env
        .pd
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::PUT)
        .count();
    assert_eq!(puts, 1, "exactly one acknowledge reached PagerDuty");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_modal_that_cannot_open_is_reported_to_the_clicker() {
    let mut env = Env::new("").await;
    env.pd.trigger_incident("Modal trouble", &env.policy);
    let ts = env.card_posted("Modal trouble").await.ts;
    env.slack.inject(
        "views.open",
        fakes::slack::Fault::error("expired_trigger_id"),
    );
    env.click(ALICE, &ts, "pdbridge_note").await;
    env.wait("the clicker is told the form did not open", || {
        env.told(ALICE, "could not open")
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_whoami_is_answered_at_once_and_completed_through_response_url() {
    let mut env = Env::new("").await;
    env.slack.inject(
        "users.info",
        fakes::slack::Fault::Slow(Duration::from_millis(2500)),
    );
    let started = Instant::now();
    let reply = env
        .slack
        .slash_command(
            &format!("{}/slack/commands", env.base()),
            &env.secret(),
            &SlackUserId::new(ALICE),
            &env.channel(),
            "/pd",
            "whoami",
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(reply.status, 200);
    assert!(
        reply.json()["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Looking you up")
    );
    env.wait("the answer arrives through response_url", || {
        env.slack
            .responses()
            .iter()
            .any(|r| r.body.to_string().contains("alice@example.com"))
    })
    .await;
    env.stop().await;
}

/// The value of the metric line that starts with `series` (labels included), if any.
fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_inside_the_clients_are_counted_in_metrics() {
    let mut env = Env::new("").await;
    // The card's post is answered 429 once; the Slack client waits and retries it itself.
    env.slack.inject(
        "chat.postMessage",
        fakes::slack::Fault::RateLimited {
            retry_after: Some(1),
        },
    );
    let incident = env.pd.trigger_incident("Retried post", &env.policy);
    let ts = env.card_posted("Retried post").await.ts;
    // PagerDuty fails the next API request once; the PagerDuty client retries it.
    env.pd.push_fault(fakes::pd::Fault::ServerError(503));
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("the acknowledgement reaches PagerDuty", || {
        !puts_from(&env, &incident).is_empty()
    })
    .await;
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    for (series, at_least) in [
        (
            "pdbridge_api_retries_total{platform=\"slack\",reason=\"rate_limited\"}",
            1.0,
        ),
        ("pdbridge_api_rate_limited_total{platform=\"slack\"}", 1.0),
        (
            "pdbridge_api_retries_total{platform=\"pagerduty\",reason=\"server_error\"}",
            1.0,
        ),
    ] {
        let value = metric_value(&metrics, series);
        assert!(
            value.is_some_and(|v| v >= at_least),
            "{series} is {value:?} in\n{metrics}"
        );
    }
    env.stop().await;
}

/// Outside text never mentions, pings or links from the bridge's messages: a title full of
/// Slack markup shows escaped on the card and in the private replies that quote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn titles_with_slack_markup_are_escaped_in_cards_and_replies() {
    let mut env = Env::new("").await;
    let title = "Deploy <!channel> & <@U2BOB> <https://evil.example|login>";
    let incident = env.pd.trigger_incident(title, &env.policy);
    let card = env.card_posted("Deploy &lt;!channel&gt;").await;
    let ts = card.ts.clone();
    // Bob's Slack still shows the triggered card (the acknowledged one offers no Acknowledge):
    // his click is built from it and arrives after Alice's acknowledgement.
    let bob_click = env
        .slack
        .block_actions_payload(
            &SlackUserId::new(BOB),
            &env.channel(),
            &ts,
            "pdbridge_ack",
            None,
        )
        .unwrap();
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    env.settled(&ts).await;
    env.wait("the acknowledged card offers no Acknowledge", || {
        env.slack.message(&env.channel(), &ts).is_some_and(|m| {
            m.text.contains("Acknowledged") && !buttons(&m).contains(&"Acknowledge".to_owned())
        })
    })
    .await;
    let reply = fakes::slack::send_interaction(&env.interactions(), &env.secret(), &bob_click)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.wait("Bob is told it is already acknowledged", || {
        env.told(BOB, "already acknowledged")
    })
    .await;
    let reply = env
        .slack
        .ephemerals()
        .into_iter()
        .find(|e| e.text.contains("already acknowledged"))
        .unwrap();
    assert!(
        reply.text.contains(
            "Deploy &lt;!channel&gt; &amp; &lt;@U2BOB&gt; &lt;https://evil.example|login&gt;"
        ),
        "{}",
        reply.text
    );
    let card = env.slack.message(&env.channel(), &ts).unwrap();
    let mut parsed = vec![card.text.clone(), reply.text.clone()];
    for b in card.blocks.as_array().unwrap() {
        if b["type"] != "header" {
            parsed.push(b.to_string());
        }
    }
    for text in parsed {
        for forbidden in ["<!channel>", "<@U2BOB>", "<https://evil"] {
            assert!(!text.contains(forbidden), "{forbidden} in {text}");
        }
    }
    env.stop().await;
}

/// Slack refusing a card (`invalid_blocks`) does not leave the incident silent: the bridge posts
/// a minimal card with the buttons at once, counts the refusal in `/metrics`, and `pdbridge
/// status` shows it; later changes update the minimal card.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_slack_refuses_is_replaced_by_a_minimal_card_and_counted() {
    let mut env = Env::new("").await;
    env.slack.inject(
        "chat.postMessage",
        fakes::slack::Fault::error("invalid_blocks"),
    );
    let incident = env.pd.trigger_incident("Payments queue stuck", &env.policy);
    let card = env.card_posted("Payments queue stuck").await;
    let blocks = card.blocks.to_string();
    assert!(
        blocks.contains("Slack refused this incident's full card"),
        "{blocks}"
    );
    assert!(!blocks.contains("fields"), "{blocks}");
    assert_eq!(
        buttons(&card),
        ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
    );
    assert_eq!(env.cards().len(), 1);
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(
        metrics.contains("pdbridge_card_post_failures_total{card=\"full\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pdbridge_card_post_failures_total{card=\"minimal\"} 0"));

    // The buttons work, and the minimal card follows the incident.
    env.click(ALICE, &card.ts, "pdbridge_ack").await;
    env.wait("the minimal card shows Acknowledged", || {
        env.slack
            .message(&env.channel(), &card.ts)
            .is_some_and(|m| m.text.contains("Acknowledged"))
    })
    .await;
    assert_eq!(
        env.pd.incident(&incident).unwrap().status,
        PdStatus::Acknowledged
    );
    env.stop().await;
    let db = env.dir.path().join("pdbridge.db");
    let summary =
        pdbridge::ops::status::read_summary(&db, ids::Timestamp::from_millis(i64::MAX / 2), 10)
            .unwrap();
    let text = pdbridge::ops::status::render(&summary, &db, ids::Timestamp::EPOCH);
    assert!(text.contains("failed card posts   1 ("), "{text}");
    assert!(text.contains("invalid_blocks"), "{text}");
}

/// Issue 17 item 4: how often the bridge asked Slack for a channel's history.
fn history_reads(env: &Env) -> usize {
    env.slack
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/conversations.history"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_post_whose_answer_is_lost_is_found_not_posted_twice() {
    let mut env = Env::new("").await;
    // Slack posts the card, then the connection drops before the answer ("maybe sent").
    env.slack
        .inject("chat.postMessage", fakes::slack::Fault::HangUp);
    let incident = env.pd.trigger_incident("Search latency", &env.policy);
    let card = env.card_posted("Search latency").await;
    let bridge = Arc::clone(&env.running.as_ref().unwrap().bridge);
    let card_ts =
        || bridge.with_engine(|e| e.incident(&incident).and_then(|s| s.card_ts().cloned()));
    env.wait("the engine knows its card", || card_ts().is_some())
        .await;
    assert_eq!(env.cards().len(), 1, "a second card was posted");
    assert_eq!(
        card_ts(),
        Some(card.ts.clone()),
        "the card found is adopted"
    );
    assert!(history_reads(&env) >= 1, "the retry did not look first");
    drop(bridge);
    // The card it found is the one that is updated.
    env.click(ALICE, &card.ts, "pdbridge_ack").await;
    env.wait("the card shows Acknowledged", || {
        env.slack
            .message(&env.channel(), &card.ts)
            .is_some_and(|m| m.text.contains("Acknowledged"))
    })
    .await;
    assert_eq!(env.cards().len(), 1, "a second card was posted");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_note_whose_answer_is_lost_is_found_not_added_twice() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Queue backlog", &env.policy);
    let ts = env.card_posted("Queue backlog").await.ts;
    // An acknowledgement first, so the clicker's identity is known and nothing else is due.
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.thread_line(&ts, "acknowledged").await;
    env.settled(&ts).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No echo webhook either, so only the bridge's own retry can complete the note.
    env.pd
        .disable_subscription(env.subscription.as_ref().unwrap());
    env.click(ALICE, &ts, "pdbridge_note").await;
    env.wait("the note modal opened", || !env.slack.views().is_empty())
        .await;
    let view = env.slack.views().last().unwrap().clone();
    // PagerDuty adds the note, then the connection drops before the answer.
    env.pd.push_fault(fakes::pd::Fault::HangUp);
    let reply = env
        .slack
        .submit_view(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(ALICE),
            &view.id,
            &[(
                "note",
                "note_text",
                InputValue::Text("Draining the queue".into()),
            )],
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.thread_line(&ts, "Draining the queue").await;
    env.settled(&ts).await;
    let notes = env.pd.incident(&incident).unwrap().notes;
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.content == "Draining the queue")
            .count(),
        1,
        "the note was added twice"
    );
    let note_posts = env
        .pd
        .requests()
        .iter()
        .filter(|r| r.method == http::Method::POST && r.path.ends_with("/notes"))
        .count();
    let note_reads = env
        .pd
        .requests()
        .iter()
        .filter(|r| r.method == http::Method::GET && r.path.ends_with("/notes"))
        .count();
    // The lost answer was followed by a look at the notes, not by a second POST.
    assert_eq!(
        (note_posts, note_reads >= 1),
        (1, true),
        "{note_reads} reads"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_the_card_post_and_its_commit_never_posts_a_second_card() {
    let mut env = Env::new("").await;
    // Slack posts the card but answers only after 30 s; the bridge dies meanwhile, before it
    // could record the post.
    env.slack.inject(
        "chat.postMessage",
        fakes::slack::Fault::Slow(Duration::from_secs(30)),
    );
    let incident = env.pd.trigger_incident("Login errors", &env.policy);
    let card = env.card_posted("Login errors").await;
    env.running.take().unwrap().abort().await;
    assert_eq!(history_reads(&env), 0);
    // A new process on the same database finds the post it owes in the outbox, claimed but
    // never completed: it looks for the card before posting.
    env.start_server().await;
    let bridge = Arc::clone(&env.running.as_ref().unwrap().bridge);
    let card_ts =
        || bridge.with_engine(|e| e.incident(&incident).and_then(|s| s.card_ts().cloned()));
    env.wait("the restarted engine knows its card", || {
        card_ts().is_some()
    })
    .await;
    assert_eq!(env.cards().len(), 1, "a second card was posted");
    assert_eq!(
        card_ts(),
        Some(card.ts.clone()),
        "the card found is adopted"
    );
    assert!(
        history_reads(&env) >= 1,
        "the restarted bridge did not look first"
    );
    drop(bridge);
    env.click(ALICE, &card.ts, "pdbridge_ack").await;
    env.wait("the card found is the one updated", || {
        env.slack
            .message(&env.channel(), &card.ts)
            .is_some_and(|m| m.text.contains("Acknowledged"))
    })
    .await;
    assert_eq!(env.cards().len(), 1, "a second card was posted");
    env.stop().await;
}

/// An incident past its ack SLA gets a reminder thread line, channel-wide when configured,
/// counted once as a breach, whose Escalate button escalates; the acknowledgement is observed
/// in the time-to-ack histogram.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unacknowledged_incident_past_its_sla_is_reminded_in_its_thread() {
    let mut env = Env::new(
        "[sla]\nhigh = { ack = \"1s\" }\nlow = { ack = \"1s\" }\n\
         [reminders]\nack_repeat = \"0\"\nescalate_channel_after = 1\n",
    )
    .await;
    let incident = env.pd.trigger_incident("Checkout latency", &env.policy);
    let ts = env.card_posted("Checkout latency").await.ts;
    env.thread_line(
        &ts,
        "Not acknowledged after 1 s (SLA 1 s). Assigned to Alice Example",
    )
    .await;
    let broadcast = env.slack.requests().iter().any(|r| {
        r.path.ends_with("chat.postMessage")
            && String::from_utf8_lossy(&r.body).contains("\"reply_broadcast\":true")
    });
    assert!(broadcast, "the reminder was not broadcast to the channel");
    // The reminder carries an Escalate button that works like the card's.
    let reminder = env
        .slack
        .thread(&env.channel(), &ts)
        .into_iter()
        .find(|m| m.text.contains("Not acknowledged"))
        .unwrap();
    assert_eq!(buttons(&reminder), ["Escalate"]);
    env.click(ALICE, &reminder.ts, "pdbridge_escalate").await;
    env.wait("PagerDuty escalated to level 2", || {
        env.pd.incident(&incident).unwrap().escalation_level == 2
    })
    .await;
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("pdbridge_sla_breaches_total{kind=\"ack\"") && l.ends_with(" 1")
        ),
        "{metrics}"
    );
    // The acknowledgement's webhook is observed in the time-to-ack histogram, from PagerDuty's
    // own times.
    env.settled(&ts).await;
    env.click(BOB, &ts, "pdbridge_ack").await;
    let series = "pdbridge_incident_time_to_ack_seconds_count{";
    let mut observed = false;
    for _ in 0..1000 {
        let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
        if metrics
            .lines()
            .any(|l| l.starts_with(series) && l.ends_with(" 1"))
        {
            observed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(observed, "{series} never reached 1");
    env.stop().await;
}
