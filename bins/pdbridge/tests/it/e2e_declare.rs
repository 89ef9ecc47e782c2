//! End to end, declaring incidents from Slack: `/pd trigger` (text and modal), the message
//! shortcut, several services, double submits, unmapped requesters, PagerDuty down then up,
//! PagerDuty 4xx, with the real server on loopback against the fake Slack and PagerDuty.

use std::time::{Duration, Instant};

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeSlack, FakeUser, InputValue, send_interaction};
use ids::{ChannelId, ServiceId, SlackUserId, ViewId};
use pdbridge::app::{self, Options, Running};
use pdbridge::world::WorldConfig;
use serde_json::{Value, json};
use signing::SlackSigningSecret;
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const SIGNING_SECRET: &str = "declare-slack-signing-secret";
const WEBHOOK_SECRET: &str = "declare-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";
const ALICE: &str = "U1ALICE";
const BOB: &str = "U2BOB";

const DECLARE: &str = r#"
[declare]
default_service = "api"
services = { api = "PAPI001", db = "PDAT001" }
severities = [
  { name = "SEV-1", urgency = "high", priority = "P1" },
  { name = "SEV-2", urgency = "high", priority = "P2" },
  { name = "SEV-3", urgency = "low" },
]
"#;

struct Env {
    pd: FakePagerDuty,
    slack: FakeSlack,
    running: Option<Running>,
    config: pdbridge::config::Config,
    _dir: tempfile::TempDir,
}

fn options() -> Options {
    Options {
        engine: EngineConfig {
            retry_backoff: vec![Duration::from_millis(100)],
            coalesce_window: Duration::from_millis(50),
            ..EngineConfig::default()
        },
        outbox_grace: Duration::from_secs(2),
        ..Options::default()
    }
}

impl Env {
    async fn new(extra_toml: &str) -> Self {
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        slack.add_user(FakeUser::new(ALICE, "alice", "alice@example.com"));
        slack.add_user(FakeUser::new(BOB, "bob", "bob@example.com"));
        slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &[ALICE, BOB]));
        let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
        pd.add_user("POPS001", "Ops Account", "ops@example.com");
        let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
        for (id, name) in [("PAPI001", "API"), ("PDAT001", "Database")] {
            let service = pd.add_service(id, name, &[]);
            pd.set_service_policy(&service, &policy);
        }
        pd.set_priorities(&["P1", "P2", "P3"]);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdbridge.db");
        let extra = format!("{DECLARE}{extra_toml}");
        let config = WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            webhook_secrets: &[WEBHOOK_SECRET],
            signing_secret: SIGNING_SECRET,
            default_channel: CHANNEL,
            extra: &extra,
            ..WorldConfig::for_fakes(&pd, &slack)
        }
        .config()
        .unwrap();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let running = app::start(config.clone(), listener, options())
            .await
            .unwrap();
        pd.set_webhook_target(
            &format!("http://{}/pagerduty/webhook", running.addr),
            WEBHOOK_SECRET,
        );
        Self {
            pd,
            slack,
            running: Some(running),
            config,
            _dir: dir,
        }
    }

    /// Stops the server and starts a new one on the same database.
    async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let running = app::start(self.config.clone(), listener, options())
            .await
            .unwrap();
        self.pd.set_webhook_target(
            &format!("http://{}/pagerduty/webhook", running.addr),
            WEBHOOK_SECRET,
        );
        self.running = Some(running);
    }

    fn addr(&self) -> String {
        self.running.as_ref().unwrap().addr.to_string()
    }

    async fn command(&self, user: &str, text: &str) -> Value {
        let reply = self
            .slack
            .slash_command(
                &format!("http://{}/slack/commands", self.addr()),
                &SlackSigningSecret::new(SIGNING_SECRET),
                &SlackUserId::new(user),
                &ChannelId::new(CHANNEL),
                "/pd",
                text,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
    }

    async fn submit(
        &self,
        user: &str,
        view: &ViewId,
        inputs: &[(&str, &str, InputValue)],
    ) -> Value {
        let reply = self
            .slack
            .submit_view(
                &format!("http://{}/slack/interactions", self.addr()),
                &SlackSigningSecret::new(SIGNING_SECRET),
                &SlackUserId::new(user),
                view,
                inputs,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
    }

    /// The texts posted to response URLs, in order.
    fn answers(&self) -> Vec<String> {
        self.slack
            .responses()
            .into_iter()
            .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn creates(&self) -> Vec<fakes::http::RecordedRequest> {
        self.pd
            .requests()
            .into_iter()
            .filter(|r| r.method == http::Method::POST && r.path == "/incidents")
            .collect()
    }

    /// The current blocks of the card whose text mentions `title`, as JSON text.
    fn card_blocks(&self, title: &str) -> String {
        self.slack
            .messages(&ChannelId::new(CHANNEL))
            .into_iter()
            .find(|m| m.thread_ts.is_none() && m.text.contains(title))
            .map(|m| m.blocks.to_string())
            .unwrap_or_default()
    }

    fn cards(&self, title: &str) -> usize {
        self.slack
            .messages(&ChannelId::new(CHANNEL))
            .iter()
            .filter(|m| m.thread_ts.is_none() && m.text.contains(title))
            .count()
    }

    async fn wait(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for a in self.answers() {
            eprintln!("ANSWER {a}");
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

fn block<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_form_declares_at_once_and_the_card_appears_once() {
    let mut env = Env::new("").await;
    let reply = env
        .command(ALICE, "trigger db SEV-2 Database performance issue")
        .await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"].as_str().unwrap().contains("Declaring"),
        "{reply}"
    );
    assert!(
        env.slack.views().is_empty(),
        "no modal for a complete request"
    );
    env.wait("the requester gets the link", || {
        env.answers().iter().any(|a| a.starts_with("Declared <"))
    })
    .await;
    let creates = env.creates();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].header("from"), Some("alice@example.com"));
    let body = creates[0].json();
    assert_eq!(body["incident"]["urgency"], "high");
    assert_eq!(body["incident"]["service"]["id"], "PDAT001");
    assert!(body["incident"]["priority"]["id"].is_string(), "{body}");
    let key = body["incident"]["incident_key"].as_str().unwrap();
    assert!(key.starts_with("pdbridge-declare-"), "{key}");
    let details = body["incident"]["body"]["details"].as_str().unwrap();
    assert!(
        details.contains("Declared from Slack by alice"),
        "{details}"
    );
    let incident = &env.pd.incidents()[0];
    assert_eq!(incident.service, ServiceId::new("PDAT001"));
    let priority = env.pd.creation(&incident.id).unwrap().priority;
    assert!(priority.is_some());
    env.wait("the card is posted", || {
        env.cards("Database performance issue") == 1
    })
    .await;
    env.wait("the card names the requester", || {
        env.card_blocks("Database performance issue")
            .contains("Declared by <@U1ALICE> from Slack")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.cards("Database performance issue"), 1, "one card");
    let thread_lines = env
        .slack
        .messages(&ChannelId::new(CHANNEL))
        .into_iter()
        .filter(|m| m.thread_ts.is_some())
        .count();
    assert_eq!(
        thread_lines, 0,
        "the trigger of our own creation adds no line"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_fields_open_the_modal_which_validates_and_declares_once_per_service() {
    let mut env = Env::new("").await;
    // Nothing typed: the modal opens at once, with the default service chosen.
    assert_eq!(env.command(ALICE, "trigger").await, Value::Null);
    // Unknown service: the modal opens prefilled, the reason under the field.
    env.command(ALICE, "trigger nosuch SEV-9 Disk is full")
        .await;
    let views = env.slack.views();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].view["callback_id"], "pdbridge_declare");
    let api = &block(&views[0].view, "declare_service")["element"]["initial_options"][0];
    assert_eq!(api["value"], "api");
    let second = &views[1].view;
    let hint = block(second, "declare_service")["hint"]["text"]
        .as_str()
        .unwrap();
    assert!(hint.contains("No service is called `nosuch`"), "{hint}");
    let hint = block(second, "declare_severity")["hint"]["text"]
        .as_str()
        .unwrap();
    assert!(hint.contains("SEV-9"), "{hint}");
    assert_eq!(
        block(second, "declare_title")["element"]["initial_value"],
        "Disk is full"
    );

    // Empty and oversize fields are refused on the field, and nothing is created.
    let view = views[1].id.clone();
    let services = || InputValue::Options(vec!["api".to_owned(), "db".to_owned()]);
    let severity = || InputValue::Option("SEV-1".to_owned());
    let errors = env
        .submit(
            ALICE,
            &view,
            &[
                ("declare_service", "declare_service_select", services()),
                ("declare_severity", "declare_severity_select", severity()),
                (
                    "declare_title",
                    "declare_title_text",
                    InputValue::Text("x".repeat(256)),
                ),
            ],
        )
        .await;
    assert_eq!(errors["response_action"], "errors");
    assert!(
        errors["errors"]["declare_title"]
            .as_str()
            .unwrap()
            .contains("255")
    );
    let errors = env
        .submit(
            ALICE,
            &view,
            &[(
                "declare_title",
                "declare_title_text",
                InputValue::Text("  ".into()),
            )],
        )
        .await;
    assert!(errors["errors"]["declare_service"].is_string());
    assert!(errors["errors"]["declare_severity"].is_string());
    assert!(errors["errors"]["declare_title"].is_string());

    // Two services: one incident each, naming the other; a double submit adds nothing.
    let inputs = [
        ("declare_service", "declare_service_select", services()),
        ("declare_severity", "declare_severity_select", severity()),
        (
            "declare_title",
            "declare_title_text",
            InputValue::Text("Checkout down".into()),
        ),
        (
            "declare_details",
            "declare_details_text",
            InputValue::Text("Since 10:02".into()),
        ),
    ];
    assert_eq!(env.submit(ALICE, &view, &inputs).await, Value::Null);
    assert_eq!(env.submit(ALICE, &view, &inputs).await, Value::Null);
    env.wait("both incidents are declared", || {
        env.answers()
            .iter()
            .filter(|a| a.starts_with("Declared <"))
            .count()
            == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let incidents = env.pd.incidents();
    assert_eq!(incidents.len(), 2, "one incident per service, once");
    for i in &incidents {
        let details = env.pd.creation(&i.id).unwrap().details.unwrap();
        assert!(
            details.contains("Declared together with the services"),
            "{details}"
        );
        assert!(details.contains("Since 10:02"), "{details}");
    }
    let numbers: Vec<u64> = incidents.iter().map(|i| i.number).collect();
    env.wait("each card links the other", || {
        let blocks: Vec<String> = env
            .slack
            .messages(&ChannelId::new(CHANNEL))
            .into_iter()
            .filter(|m| m.thread_ts.is_none() && m.text.contains("Checkout down"))
            .map(|m| m.blocks.to_string())
            .collect();
        blocks.len() == 2
            && blocks.iter().all(|b| {
                numbers
                    .iter()
                    .any(|n| b.contains(&format!("declared together with #{n}")))
            })
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_shortcut_prefills_the_modal_from_the_message() {
    let mut env = Env::new("").await;
    let payload = json!({
        "type": "message_action",
        "callback_id": "pdbridge_declare",
        "trigger_id": env.slack.new_trigger_id(),
        "response_url": env.slack.new_response_url(),
        "action_ts": "1764000000.000100",
        "team": {"id": env.slack.team_id(), "domain": "acme"},
        "user": {"id": ALICE, "username": "alice", "name": "alice", "team_id": env.slack.team_id()},
        "channel": {"id": CHANNEL, "name": "incidents"},
        "message_ts": "1764000000.000200",
        "message": {"type": "message", "user": BOB, "ts": "1764000000.000200",
                    "text": "Payments are failing\nSince the deploy at 10:02"},
    });
    let reply = send_interaction(
        &format!("http://{}/slack/interactions", env.addr()),
        &SlackSigningSecret::new(SIGNING_SECRET),
        &payload,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    let views = env.slack.views();
    assert_eq!(views.len(), 1);
    let view = &views[0].view;
    assert_eq!(
        block(view, "declare_title")["element"]["initial_value"],
        "Payments are failing"
    );
    let details = block(view, "declare_details")["element"]["initial_value"]
        .as_str()
        .unwrap();
    assert!(details.contains("Since the deploy at 10:02"), "{details}");
    assert!(
        details.contains("https://acme.slack.com/archives/C0INCIDENTS/p1764000000000200"),
        "{details}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_requester_is_refused_with_the_fix() {
    let mut env = Env::new("").await;
    env.command(BOB, "trigger api SEV-3 Search <!channel> is slow")
        .await;
    env.wait("Bob is told why", || !env.answers().is_empty())
        .await;
    let told = env.answers().join("\n");
    assert!(told.contains("Search &lt;!channel&gt; is slow"), "{told}");
    assert!(
        !told.contains("<!channel>"),
        "outside text never pings: {told}"
    );
    assert!(told.contains("did not declare"), "{told}");
    assert!(told.contains("map your Slack account"), "{told}");
    assert!(env.creates().is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_requester_declares_through_the_opt_in_account_and_is_recorded() {
    let mut env = Env::new("unmapped_from = \"ops@example.com\"\n").await;
    env.command(BOB, "trigger api SEV-3 Search is slow").await;
    env.wait("Bob gets the link", || {
        env.answers().iter().any(|a| a.starts_with("Declared <"))
    })
    .await;
    let creates = env.creates();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].header("from"), Some("ops@example.com"));
    let incident = &env.pd.incidents()[0];
    let details = env.pd.creation(&incident.id).unwrap().details.unwrap();
    assert!(details.contains("bob"), "{details}");
    assert!(details.contains("no PagerDuty seat"), "{details}");
    assert!(details.contains("via ops@example.com"), "{details}");
    env.wait("the first note names Bob", || {
        env.pd
            .incident(&incident.id)
            .is_some_and(|i| !i.notes.is_empty())
    })
    .await;
    let note = &env.pd.incident(&incident.id).unwrap().notes[0];
    assert!(note.content.contains("U2BOB"), "{}", note.content);
    env.wait("the card names Bob and the account", || {
        env.card_blocks("Search is slow")
            .contains("Declared by <@U2BOB> (no PagerDuty seat) via ops@example.com")
    })
    .await;
    let audit = env
        .running
        .as_ref()
        .unwrap()
        .bridge
        .store()
        .read(|tx| tx.recent_audit(10))
        .unwrap();
    assert!(
        audit.iter().any(|r| r.entry.action == "trigger"
            && r.entry.slack_user == SlackUserId::new(BOB)
            && r.entry.decision.contains("via ops@example.com")),
        "{audit:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_down_keeps_the_request_and_retries_it_with_the_same_key() {
    let mut env = Env::new("").await;
    // A first declaration reads the priorities and maps Alice, so the next one only creates.
    env.command(ALICE, "trigger api SEV-1 Warm up").await;
    env.wait("the first incident is declared", || {
        env.pd.incidents().len() == 1
    })
    .await;
    env.pd.set_down(true);
    env.command(ALICE, "trigger db SEV-1 Replica lag").await;
    env.wait("the requester is told it is pending", || {
        env.answers().iter().any(|a| a.contains("is pending"))
    })
    .await;
    assert_eq!(env.pd.incidents().len(), 1);
    env.pd.set_down(false);
    env.wait("the incident is declared", || {
        env.answers()
            .iter()
            .filter(|a| a.starts_with("Declared <"))
            .count()
            == 2
    })
    .await;
    assert_eq!(env.pd.incidents().len(), 2);
    let lag: Vec<_> = env
        .creates()
        .into_iter()
        .filter(|r| r.json()["incident"]["title"] == "Replica lag")
        .collect();
    let keys: std::collections::BTreeSet<String> = lag
        .iter()
        .map(|r| {
            r.json()["incident"]["incident_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 1, "every attempt carried the same incident_key");
    assert!(lag.len() >= 2, "retried after PagerDuty came back");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagerduty_refusal_is_told_with_the_fix_and_never_retried() {
    let mut env = Env::new("").await;
    env.pd.disable_service(&ServiceId::new("PDAT001"));
    env.command(ALICE, "trigger db SEV-2 Database performance issue")
        .await;
    env.wait("the requester is told", || {
        env.answers()
            .iter()
            .any(|a| a.contains("PagerDuty refused"))
    })
    .await;
    let told = env.answers().join("\n");
    assert!(told.contains("Service is disabled"), "{told}");
    assert!(told.contains("Choose another service"), "{told}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.creates().len(), 1, "a 4xx is never retried");
    let metrics = get(&format!("http://{}/metrics", env.addr())).await;
    assert!(
        metrics.contains(r#"pdbridge_actions_total{kind="trigger",result="failed"} 1"#),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_declaration_survives_a_restart_and_creates_one_incident() {
    let mut env = Env::new("").await;
    env.pd.set_down(true);
    env.command(ALICE, "trigger db SEV-3 Disk filling up").await;
    env.wait("the requester is told it is pending", || {
        env.answers().iter().any(|a| a.contains("is pending"))
    })
    .await;
    env.restart().await;
    env.pd.set_down(false);
    env.wait("the incident is declared after the restart", || {
        env.answers().iter().any(|a| a.starts_with("Declared <"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.pd.incidents().len(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modal_assigns_to_the_chosen_users_pagerduty_user_and_without_declare_says_so() {
    let mut env = Env::new("").await;
    env.pd.add_user("PBOB001", "Bob Example", "bob@example.com");
    env.command(ALICE, "trigger").await;
    let view = env.slack.views()[0].id.clone();
    let inputs = [
        (
            "declare_service",
            "declare_service_select",
            InputValue::Options(vec!["db".to_owned()]),
        ),
        (
            "declare_severity",
            "declare_severity_select",
            InputValue::Option("SEV-3".to_owned()),
        ),
        (
            "declare_title",
            "declare_title_text",
            InputValue::Text("Backups late".into()),
        ),
        (
            "declare_assign",
            "declare_assign_user",
            InputValue::User(SlackUserId::new(BOB)),
        ),
    ];
    assert_eq!(env.submit(ALICE, &view, &inputs).await, Value::Null);
    env.wait("the incident is declared", || env.pd.incidents().len() == 1)
        .await;
    let create = &env.creates()[0].json()["incident"];
    assert_eq!(create["assignments"][0]["assignee"]["id"], "PBOB001");
    assert!(create.get("escalation_policy").is_none());
    assert_eq!(create["urgency"], "low");
    assert!(create.get("priority").is_none(), "SEV-3 names no priority");
    env.stop().await;

    let mut off = Env::new("").await;
    off.config.declare = None;
    off.restart().await;
    let reply = off.command(ALICE, "trigger db SEV-2 Anything").await;
    assert!(
        reply["text"].as_str().unwrap().contains("not set up"),
        "{reply}"
    );
    off.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_services_offers_pagerduty_services_as_the_user_types() {
    let mut env = Env::new("search_services = true\n").await;
    let policy = ids::EscalationPolicyId::new("PEP1");
    let pay = env.pd.add_service("PPAY001", "Payments API", &[]);
    env.pd.set_service_policy(&pay, &policy);
    let old = env.pd.add_service("PPAY002", "Payments (old)", &[]);
    env.pd.disable_service(&old);

    env.command(ALICE, "trigger").await;
    let views = env.slack.views();
    let element = &block(&views[0].view, "declare_service")["element"];
    assert_eq!(element["type"], "multi_external_select");
    assert_eq!(element["initial_options"][0]["value"], "PAPI001");

    let suggestion = json!({
        "type": "block_suggestion",
        "user": {"id": ALICE, "username": "alice", "team_id": env.slack.team_id()},
        "team": {"id": env.slack.team_id(), "domain": "fake"},
        "api_app_id": "A0FAKE001",
        "action_id": "declare_service_select",
        "block_id": "declare_service",
        "value": "pay",
        "view": {"id": views[0].id, "type": "modal"},
    });
    let reply = send_interaction(
        &format!("http://{}/slack/interactions", env.addr()),
        &SlackSigningSecret::new(SIGNING_SECRET),
        &suggestion,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    let options: Value = serde_json::from_slice(&reply.body).unwrap();
    let values: Vec<&str> = options["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["PPAY001"], "{options}");
    assert_eq!(
        options["options"][0]["text"]["text"],
        "Payments API (PPAY001)"
    );

    let inputs = [
        (
            "declare_service",
            "declare_service_select",
            InputValue::Options(vec!["PPAY001".to_owned(), "PDAT001".to_owned()]),
        ),
        (
            "declare_severity",
            "declare_severity_select",
            InputValue::Option("SEV-3".to_owned()),
        ),
        (
            "declare_title",
            "declare_title_text",
            InputValue::Text("Card payments failing".into()),
        ),
    ];
    assert_eq!(env.submit(ALICE, &views[0].id, &inputs).await, Value::Null);
    env.wait("both incidents are declared", || {
        env.pd.incidents().len() == 2
    })
    .await;
    let services: std::collections::BTreeSet<String> = env
        .pd
        .incidents()
        .iter()
        .map(|i| i.service.to_string())
        .collect();
    assert_eq!(
        services,
        ["PDAT001".to_owned(), "PPAY001".to_owned()].into()
    );

    // The text form takes a service id too.
    env.command(ALICE, "trigger PPAY001 SEV-3 Refunds stuck")
        .await;
    env.wait("the text form declares on the id", || {
        env.pd.incidents().len() == 3
    })
    .await;
    env.stop().await;
}

async fn get(url: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_response_url_falls_back_to_an_ephemeral_in_the_channel() {
    let mut env = Env::new("").await;
    env.slack
        .inject("response_url", fakes::slack::Fault::error("expired_url"));
    env.command(BOB, "trigger api SEV-3 Search is slow").await;
    env.wait("Bob is told in the channel", || {
        env.slack
            .ephemerals()
            .iter()
            .any(|e| e.user == SlackUserId::new(BOB) && e.text.contains("did not declare"))
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_looked_for_before_the_resend_even_once_resolved() {
    let mut env = Env::new("").await;
    env.command(ALICE, "trigger api SEV-3 Warm up").await;
    env.wait("the first incident is declared", || {
        env.answers().iter().any(|a| a.starts_with("Declared <"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // PagerDuty creates the next incident but the answer is lost.
    env.pd.push_fault(fakes::pd::Fault::HangUp);
    env.command(ALICE, "trigger db SEV-3 Lost answer").await;
    env.wait("the requester is told it is pending", || {
        env.answers().iter().any(|a| a.contains("is pending"))
    })
    .await;
    // Someone resolves it before the retry: its incident_key no longer refuses a create.
    let lost = env
        .pd
        .incidents()
        .into_iter()
        .find(|i| i.title == "Lost answer")
        .expect("PagerDuty created it");
    let pd = pd_client::PdClient::new({
        let mut c = pd_client::Config::new(pd_client::Auth::Token(pd_client::Secret::new("t")));
        c.base_url = env.pd.url().parse().unwrap();
        c
    })
    .unwrap();
    pd.resolve(&lost.id, &ids::Email::new("alice@example.com"), None)
        .await
        .unwrap();
    env.wait("the requester gets the earlier incident", || {
        env.answers()
            .iter()
            .any(|a| a.starts_with("Declared <") && a.contains("Lost answer"))
    })
    .await;
    let posts = env
        .creates()
        .iter()
        .filter(|r| r.json()["incident"]["title"] == "Lost answer")
        .count();
    assert_eq!(
        posts, 1,
        "the resend found the incident instead of creating another"
    );
    assert_eq!(env.pd.incidents().len(), 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_policy_applies_per_service() {
    let mut env =
        Env::new("\n[policy]\ntrigger = { db = \"admin\" }\nadmins = [\"PBOSS01\"]\n").await;
    env.command(ALICE, "trigger db SEV-3 Replica lag").await;
    env.wait("Alice is refused on db", || {
        env.answers()
            .iter()
            .any(|a| a.contains("Only pdbridge admins may declare incidents on db"))
    })
    .await;
    env.command(ALICE, "trigger api SEV-3 Search is slow").await;
    env.wait("Alice declares on api", || {
        env.answers().iter().any(|a| a.starts_with("Declared <"))
    })
    .await;
    assert_eq!(env.pd.incidents().len(), 1);
    assert_eq!(env.pd.incidents()[0].service, ServiceId::new("PAPI001"));
    env.stop().await;
}
