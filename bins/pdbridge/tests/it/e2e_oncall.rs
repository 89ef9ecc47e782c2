//! End to end, on call: `/pd oncall` from the cache (and stale when PagerDuty is down), a user
//! group that follows a handoff and an override, unmapped on-call people, the handoff message
//! exactly once across a restart, and its Reassign button. The on-call features run on a
//! simulated clock (`OnCall::set_clock`); the fake PagerDuty's rotation is fixed in time.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use fakes::pd::FakePagerDuty;
use fakes::slack::{DEFAULT_SCOPES, FakeChannel, FakeSlack, FakeUser};
use ids::{ChannelId, IncidentId, PdUserId, ServiceId, SlackUserId, Timestamp, UserGroupId};
use pdbridge::app::{Options, Running};
use pdbridge::world::{self, WorldConfig};
use serde_json::Value;
use signing::SlackSigningSecret;
use sync_core::EngineConfig;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "oncall-signing-secret";
const WEBHOOK_SECRET: &str = "oncall-webhook-secret";
const CHANNEL: &str = "C0PAY";
const ANN: &str = "U1ANN";
const BEN: &str = "U2BEN";
const ASKER: &str = "U3ASK";
const GUEST: &str = "U4GUEST";
const GROUP: &str = "S0PAYONCALL";
const T0: OffsetDateTime = datetime!(2026-12-07 09:00 UTC);
const HOUR: i64 = 3_600_000;

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

struct Env {
    pd: FakePagerDuty,
    slack: FakeSlack,
    running: Option<Running>,
    dir: tempfile::TempDir,
    now: Arc<AtomicI64>,
    service: ServiceId,
}

impl Env {
    async fn new() -> Self {
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        let mut scopes: Vec<&str> = DEFAULT_SCOPES.to_vec();
        scopes.push("usergroups:write");
        slack.set_scopes(Some(&scopes));
        slack.add_user(FakeUser::new(ANN, "ann", "ann@example.com"));
        slack.add_user(FakeUser::new(BEN, "ben", "ben@example.com"));
        slack.add_user(FakeUser {
            tz: ("Europe/Paris".to_owned(), 3600),
            ..FakeUser::new(ASKER, "asker", "asker@example.com")
        });
        slack.add_user(FakeUser {
            is_restricted: true,
            ..FakeUser::new(GUEST, "guest", "guest@example.com")
        });
        slack.add_channel(FakeChannel::new(
            CHANNEL,
            "payments",
            &[ANN, BEN, ASKER, GUEST],
        ));
        slack.add_usergroup(GROUP, "payments-oncall", &[BEN]);
        let ann = pd.add_user("PANN", "Ann Example", "ann@example.com");
        let ben = pd.add_user("PBEN", "Ben Example", "ben@example.com");
        let cat = pd.add_user("PCAT", "Cat NoSlack", "cat@example.com");
        let ep = pd.add_escalation_policy("PEP0001", "Payments", vec![vec![], vec![cat]]);
        let sched = pd.add_schedule(
            "PSCHED01",
            "Payments Primary",
            &[ann, ben],
            T0,
            Duration::from_secs(8 * 3600),
        );
        pd.add_schedule_target(&ep, 1, &sched);
        let service = pd.add_service("PSVC1", "Payments API", &[]);
        pd.set_service_policy(&service, &ep);
        pd.set_oncall_now(T0 + time::Duration::hours(2));
        let dir = tempfile::tempdir().unwrap();
        let env = Self {
            pd,
            slack,
            running: None,
            dir,
            now: Arc::new(AtomicI64::new(ms(T0) + 2 * HOUR)),
            service,
        };
        let mut env = env;
        env.start().await;
        env
    }

    async fn start(&mut self) {
        let db = self.dir.path().join("pdbridge.db");
        let extra = format!(
            r#"
[[route]]
channel = "{CHANNEL}"
services = ["PSVC1"]

[[oncall_group]]
usergroup = "{GROUP}"
schedules = ["PSCHED01"]

[[handoff]]
channel = "{CHANNEL}"
schedules = ["PSCHED01"]
"#
        );
        let config = WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            webhook_secrets: &[WEBHOOK_SECRET],
            signing_secret: SIGNING_SECRET,
            default_channel: CHANNEL,
            extra: &extra,
            ..WorldConfig::for_fakes(&self.pd, &self.slack)
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
        let running = world::start(config, listener, options, &self.pd, WEBHOOK_SECRET)
            .await
            .unwrap();
        let now = Arc::clone(&self.now);
        running.bridge.oncall().set_clock(Arc::new(move || {
            Timestamp::from_millis(now.load(Ordering::SeqCst))
        }));
        self.running = Some(running);
    }

    /// Sets the simulated time for the next start.
    fn set_time_before_start(&self, offset_ms: i64) {
        self.now.store(ms(T0) + offset_ms, Ordering::SeqCst);
        self.pd
            .set_oncall_now(T0 + time::Duration::milliseconds(offset_ms));
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Moves the simulated on-call clock to `T0 + offset` and wakes the loop.
    fn set_time(&self, offset_ms: i64) {
        self.now.store(ms(T0) + offset_ms, Ordering::SeqCst);
        self.pd
            .set_oncall_now(T0 + time::Duration::milliseconds(offset_ms));
        self.running().bridge.oncall().wake();
    }

    async fn ask(&self, user: &str, text: &str) -> Value {
        let target = format!("http://{}/slack/commands", self.running().addr);
        let reply = self
            .slack
            .slash_command(
                &target,
                &SlackSigningSecret::new(SIGNING_SECRET),
                &SlackUserId::new(user),
                &ChannelId::new(CHANNEL),
                "/pd",
                text,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            reply.elapsed < Duration::from_secs(3),
            "{:?}",
            reply.elapsed
        );
        reply.json()
    }

    fn members(&self) -> Vec<SlackUserId> {
        self.slack
            .usergroup(&UserGroupId::new(GROUP))
            .unwrap()
            .users
    }

    fn handoff_messages(&self) -> Vec<fakes::slack::FakeMessage> {
        self.slack
            .messages(&ChannelId::new(CHANNEL))
            .into_iter()
            .filter(|m| {
                m.metadata
                    .as_ref()
                    .is_some_and(|meta| meta["event_type"] == "pdbridge_handoff")
            })
            .collect()
    }

    fn oncall_reads(&self) -> usize {
        self.pd
            .requests()
            .iter()
            .filter(|r| r.path == "/oncalls")
            .count()
    }

    /// Waits until the loop has finished `n` more passes.
    async fn passes(&self, n: u64) {
        let start = self.running().bridge.oncall().steps();
        self.wait("on-call passes", || {
            self.running().bridge.oncall().steps() >= start + n
        })
        .await;
    }

    async fn wait(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
    }
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_answers_from_the_cache_in_the_askers_zone_and_stale_with_its_age_when_pagerduty_is_down()
 {
    let mut env = Env::new().await;
    env.wait("the group follows the rotation", || {
        env.members() == [SlackUserId::new(ANN)]
    })
    .await;
    env.passes(1).await;
    let reads = env.oncall_reads();
    let reply = env.ask(ASKER, "oncall").await;
    let answer = text(&reply);
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(answer.contains("*Payments*"), "{answer}");
    assert!(answer.contains("<@U1ANN> until"), "{answer}");
    assert!(answer.contains("|18:00>"), "17:00 UTC in Paris: {answer}");
    assert!(answer.contains("next <@U2BEN> from"), "{answer}");
    assert!(answer.contains("after 30 min → level 2"), "{answer}");
    assert!(answer.contains("Cat NoSlack (always)"), "{answer}");
    assert_eq!(env.oncall_reads(), reads, "answered from the cache");

    let by_name = text(&env.ask(ASKER, "oncall payments primary public").await);
    assert!(by_name.contains("<@U1ANN>"), "{by_name}");
    let public = env.ask(ASKER, "oncall Payments API public").await;
    assert_eq!(public["response_type"], "in_channel");
    let unknown = text(&env.ask(ASKER, "oncall nothing-like-it").await);
    assert!(unknown.contains("No service, team, schedule"), "{unknown}");
    let ben = text(&env.ask(ASKER, "oncall <@U2BEN|ben>").await);
    assert!(
        ben.contains("<@U2BEN> is next on call for *Payments*, level 1, from"),
        "{ben}"
    );

    let refused = text(&env.ask(GUEST, "oncall").await);
    assert!(refused.contains("guest"), "{refused}");

    env.pd.set_down(true);
    env.set_time(2 * HOUR + 4 * 60_000);
    env.wait("the failed read", || {
        env.running().bridge.oncall().cache().failure().is_some()
    })
    .await;
    let stale = text(&env.ask(ASKER, "oncall").await);
    assert!(
        stale.starts_with("_as of 4 min ago; PagerDuty is not answering_"),
        "{stale}"
    );
    assert!(stale.contains("<@U1ANN> until"), "{stale}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_moves_the_group_and_posts_one_message_whose_button_reassigns_also_across_a_restart()
 {
    let mut env = Env::new().await;
    env.wait("Ann's group", || env.members() == [SlackUserId::new(ANN)])
        .await;
    let incident: IncidentId =
        env.pd
            .trigger_incident_on("Checkout fails", &"PEP0001".into(), &env.service);
    env.wait("the card", || {
        env.slack
            .messages(&ChannelId::new(CHANNEL))
            .iter()
            .any(|m| m.text.contains("Checkout fails"))
    })
    .await;
    let updates = env.slack.usergroup_updates();
    env.passes(2).await;
    assert_eq!(
        env.slack.usergroup_updates(),
        updates,
        "no update while the set is unchanged"
    );

    env.set_time(8 * HOUR + 30_000);
    env.wait("Ben's group within 60 s of the handoff", || {
        env.members() == [SlackUserId::new(BEN)]
    })
    .await;
    env.wait("the handoff message", || env.handoff_messages().len() == 1)
        .await;
    let message = env.handoff_messages().remove(0);
    assert!(
        message.text.contains("<@U1ANN> → <@U2BEN>"),
        "{}",
        message.text
    );
    let blocks = message.blocks.to_string();
    assert!(blocks.contains("Reassign to Ben Example"), "{blocks}");
    assert!(blocks.contains("Checkout fails"), "{blocks}");

    let target = format!("http://{}/slack/interactions", env.running().addr);
    // A guest's click is refused like a click on the card: told why, nothing sent.
    let reply = env
        .slack
        .click(
            &target,
            &SlackSigningSecret::new(SIGNING_SECRET),
            &SlackUserId::new(GUEST),
            &ChannelId::new(CHANNEL),
            &message.ts,
            "pdbridge_handoff_reassign",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.wait("the guest told why", || {
        env.slack
            .ephemerals()
            .iter()
            .any(|e| e.user == SlackUserId::new(GUEST) && e.text.contains("guest"))
    })
    .await;
    let puts = |env: &Env| {
        env.pd
            .requests()
            .iter()
            .filter(|r| r.method == http::Method::PUT)
            .count()
    };
    assert_eq!(puts(&env), 0);
    let reply = env
        .slack
        .click(
            &target,
            &SlackSigningSecret::new(SIGNING_SECRET),
            &SlackUserId::new(ANN),
            &ChannelId::new(CHANNEL),
            &message.ts,
            "pdbridge_handoff_reassign",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    env.wait("the reassignment in PagerDuty", || {
        env.pd
            .incident(&incident)
            .is_some_and(|i| i.assignees == [PdUserId::new("PBEN")])
    })
    .await;
    let from: Vec<String> = env
        .pd
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::PUT)
        .filter_map(|r| r.header("from").map(str::to_owned))
        .collect();
    assert_eq!(from, vec!["ann@example.com".to_owned()]);

    env.stop().await;
    env.set_time_before_start(8 * HOUR + 90_000);
    env.start().await;
    env.passes(3).await;
    assert_eq!(
        env.handoff_messages().len(),
        1,
        "one message per handoff, across restarts"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_moves_the_group_and_unmapped_or_refused_states_are_reported() {
    let mut env = Env::new().await;
    env.wait("Ann's group", || env.members() == [SlackUserId::new(ANN)])
        .await;
    let sched = "PSCHED01".into();
    env.pd.add_override(
        &sched,
        &PdUserId::new("PBEN"),
        T0 + time::Duration::minutes(121),
        T0 + time::Duration::hours(4),
    );
    env.set_time(2 * HOUR + 61_000);
    env.wait("the override reaches the group within a minute", || {
        env.members() == [SlackUserId::new(BEN)]
    })
    .await;

    env.pd.add_override(
        &sched,
        &PdUserId::new("PCAT"),
        T0 + time::Duration::hours(4),
        T0 + time::Duration::hours(5),
    );
    env.set_time(3 * HOUR);
    env.passes(2).await;
    env.set_time(4 * HOUR + 1_000);
    env.wait("Cat reported unmapped", || {
        pdbridge::oncall::group_reports(env.running().bridge.store())
            .unwrap()
            .iter()
            .any(|r| r.unmapped.iter().any(|(id, _)| id.as_str() == "PCAT"))
    })
    .await;
    assert_eq!(
        env.members(),
        [SlackUserId::new(BEN)],
        "nobody mapped: members kept"
    );
    let metrics = common::get(&format!("http://{}/metrics", env.running().addr)).await;
    assert!(
        metrics.contains("pdbridge_oncall_unmapped_users 1"),
        "{metrics}"
    );
    let status = pdbridge::oncall::status_report(&env.dir.path().join("pdbridge.db"));
    assert!(
        status.contains("on call but no Slack user: Cat NoSlack (PCAT)"),
        "{status}"
    );

    env.slack.set_free_plan(true);
    env.set_time(5 * HOUR + 1_000);
    env.wait("the refusal", || {
        pdbridge::oncall::group_reports(env.running().bridge.store())
            .unwrap()
            .iter()
            .any(|r| r.refusal.as_deref() == Some("paid_teams_only"))
    })
    .await;
    let attempts = env.slack.requests_to("usergroups.users.update").len();
    env.set_time(5 * HOUR + 30 * 60_000);
    env.passes(3).await;
    assert_eq!(
        env.slack.requests_to("usergroups.users.update").len(),
        attempts,
        "not retried within the hour"
    );
    let status = pdbridge::oncall::status_report(&env.dir.path().join("pdbridge.db"));
    assert!(status.contains("paid_teams_only"), "{status}");
    assert!(status.contains("paid plan"), "{status}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_post_whose_answer_is_lost_is_looked_for_not_posted_twice() {
    let mut env = Env::new().await;
    env.wait("Ann's group", || env.members() == [SlackUserId::new(ANN)])
        .await;
    env.slack
        .inject("chat.postMessage", fakes::slack::Fault::HangUp);
    env.set_time(8 * HOUR + 1_000);
    env.wait("the message Slack stored", || {
        env.handoff_messages().len() == 1
    })
    .await;
    env.passes(2).await;
    assert!(env.slack.requests_to("conversations.history").is_empty());
    env.set_time(8 * HOUR + 20_000);
    env.wait("the look in the channel's history", || {
        !env.slack.requests_to("conversations.history").is_empty()
    })
    .await;
    env.set_time(8 * HOUR + 60_000);
    env.passes(3).await;
    assert_eq!(env.handoff_messages().len(), 1, "found, not posted again");
    env.stop().await;
}
