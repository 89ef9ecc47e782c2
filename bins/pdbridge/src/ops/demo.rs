//! `pdbridge demo`: one incident's whole life, with no credentials and no network.
//!
//! [`run`] starts the fake PagerDuty and fake Slack from the `fakes` crate on loopback, the real
//! server ([`crate::app::start`]) on `127.0.0.1:0` with a temporary SQLite database, then drives
//! one incident through the real HTTP endpoints: PagerDuty's signed webhooks and Slack's signed
//! clicks and modal submissions. After each step it checks what each side actually recorded
//! (PagerDuty's requests and incident state, Slack's messages, threads, views and ephemerals)
//! and prints a timeline and a text rendering of the card.
//!
//! Invariant: nothing is asserted that was not observed. A step whose effect does not show up
//! within [`STEP_TIMEOUT`] is reported as failed with what was seen instead, and the demo exits
//! non-zero; later steps that depend on it are still attempted and judged on their own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use fakes::pd::{DeliveryAttempt, FakePagerDuty, Status as PdStatus};
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeUser, InputValue, InteractionReply};
use ids::{ChannelId, IncidentId, MessageTs, SlackUserId, ViewId};
use serde_json::Value;
use signing::{PagerDutySecret, SlackSigningSecret};
use tokio::net::TcpListener;

use crate::app::{Options, Running};
use crate::config::Config;
use crate::render::{
    ACTION_ACK, ACTION_ESCALATE, ACTION_NOTE, ACTION_REASSIGN, ACTION_RESOLVE, CALLBACK_NOTE,
    CALLBACK_REASSIGN, NOTE_BLOCK, NOTE_INPUT, REASSIGN_BLOCK, REASSIGN_INPUT,
};

/// How long one step may take to show its effect before it is reported as failed.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The thread-line coalescing window the demo runs the engine with (production: 2 s), so the
/// whole story takes seconds.
pub const DEMO_COALESCE: Duration = Duration::from_millis(250);

const CHANNEL: &str = "C0INCIDENTS";
const PD_WEBHOOK_SECRET: &str = "demo-pagerduty-webhook-secret";
const SLACK_SIGNING_SECRET: &str = "demo-slack-signing-secret";
const TITLE: &str = "Checkout API error rate above 5%";
const NOTE: &str = "Rolled back deploy 2026.11.24-3; error rate falling.";

/// A person in the demo.
#[derive(Debug, Clone)]
struct Person {
    name: &'static str,
    slack: &'static str,
    email: &'static str,
    pd: Option<&'static str>,
}

const ALICE: Person = Person {
    name: "Alice",
    slack: "U0ALICE",
    email: "alice@example.com",
    pd: Some("PALICE1"),
};
const BOB: Person = Person {
    name: "Bob",
    slack: "U0BOB",
    email: "bob@example.com",
    pd: Some("PBOB001"),
};
const CAROL: Person = Person {
    name: "Carol",
    slack: "U0CAROL",
    email: "carol@example.com",
    pd: Some("PCAROL1"),
};
const MALLORY: Person = Person {
    name: "Mallory",
    slack: "U0MALLORY",
    email: "mallory@example.com",
    pd: None,
};
const PEOPLE: [Person; 4] = [ALICE, BOB, CAROL, MALLORY];

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step's title, such as `Acknowledge by a mapped user`.
    pub title: String,
    /// Whether everything the step claims was observed.
    pub ok: bool,
    /// What was observed (or, for a failed step, what was missing).
    pub facts: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Everything printed.
    pub transcript: String,
}

impl Outcome {
    /// Whether every step was observed to work.
    pub fn ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }
}

/// How to run the demo.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// Print the timeline to stdout as it happens (the transcript is kept either way).
    pub live: bool,
    /// After the story, keep everything running and print the URLs until Ctrl-C.
    pub keep_running: bool,
}

/// Output that goes to stdout when live and always into the transcript.
struct Out {
    live: bool,
    text: String,
}

impl Out {
    fn line(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        if self.live {
            println!("{line}");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }
}

/// The running world: fakes, server, and what the demo knows about them.
struct World {
    pd: FakePagerDuty,
    slack: FakeSlack,
    server: Option<Running>,
    base: String,
    channel: ChannelId,
    slack_secret: SlackSigningSecret,
    pd_secret: PagerDutySecret,
    _dir: tempfile::TempDir,
    database: std::path::PathBuf,
}

/// Runs the demo and returns what happened. Errors only when the world cannot be built.
pub async fn run(options: DemoOptions) -> anyhow::Result<Outcome> {
    let mut out = Out {
        live: options.live,
        text: String::new(),
    };
    let mut world = build_world().await?;
    out.line("pdbridge demo: one PagerDuty incident driven from Slack, end to end.");
    out.line("Nothing leaves this machine: fake PagerDuty and fake Slack run in-process on");
    out.line("loopback; pdbridge is the real server with a temporary SQLite database.");
    out.line(format!("  pdbridge        {}", world.base));
    out.line(format!("  fake PagerDuty  {}", world.pd.url()));
    out.line(format!("  fake Slack      {}", world.slack.url()));
    out.line(format!("  database        {}", world.database.display()));
    out.line("  people          Alice, Bob, Carol: Slack and PagerDuty, same email (mapped)");
    out.line("                  Mallory: Slack only (unmapped)");
    out.line(format!(
        "  engine          thread lines coalesce for {} ms (production: 2 s)",
        DEMO_COALESCE.as_millis()
    ));

    let mut steps = Vec::new();
    if let Some((incident, ts)) = trigger(&mut world, &mut out, &mut steps).await {
        let story = Story { incident, ts };
        acknowledge(&world, &story, &mut out, &mut steps).await;
        echo(&world, &story, &mut out, &mut steps).await;
        escalate(&world, &story, &mut out, &mut steps).await;
        reassign(&world, &story, &mut out, &mut steps).await;
        note(&world, &story, &mut out, &mut steps).await;
        stale(&world, &story, &mut out, &mut steps).await;
        unmapped(&world, &story, &mut out, &mut steps).await;
        resolve(&world, &story, &mut out, &mut steps).await;
    }

    out.line("");
    let passed = steps.iter().filter(|s| s.ok).count();
    if passed == steps.len() && !steps.is_empty() {
        out.line(format!("All {passed} steps observed working."));
    } else {
        out.line(format!(
            "{passed} of {} steps observed working; the others failed as shown above.",
            steps.len()
        ));
    }
    settle(&world).await;
    if let Some(server) = &world.server {
        let now = server.bridge.now_ms();
        if let Ok(summary) = server.bridge.store().read(|tx| tx.status(now, 5)) {
            out.line("");
            out.line("What `pdbridge status` says about the demo database:");
            for line in super::status::render(&summary, &world.database, now).lines() {
                out.line(format!("  {line}"));
            }
        }
    }

    if options.keep_running {
        out.line("");
        out.line("Still running (Ctrl-C to stop). Try:");
        out.line(format!("  curl {}/healthz", world.base));
        out.line(format!("  curl {}/metrics", world.base));
        out.line(format!(
            "  curl -X POST {}/pagerduty/webhook    # unsigned: answered 401",
            world.base
        ));
        out.line(format!(
            "  fake Slack API {}/api   fake PagerDuty API {}",
            world.slack.url(),
            world.pd.url()
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    if let Some(server) = world.server.take() {
        server
            .shutdown()
            .await
            .context("shutting the server down")?;
    }
    Ok(Outcome {
        steps,
        transcript: out.text,
    })
}

/// The incident the story follows and its card.
#[derive(Debug)]
struct Story {
    incident: IncidentId,
    ts: MessageTs,
}

async fn build_world() -> anyhow::Result<World> {
    let pd = FakePagerDuty::start().await;
    let slack = FakeSlack::start().await;
    for p in PEOPLE {
        if let Some(id) = p.pd {
            pd.add_user(id, p.name, p.email);
        }
        slack.add_user(FakeUser::new(p.slack, &p.name.to_lowercase(), p.email));
    }
    let members: Vec<&str> = PEOPLE.iter().map(|p| p.slack).collect();
    slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &members));

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let database = dir.path().join("pdbridge.db");
    let toml = format!(
        r#"
[server]
database = {database:?}

[pagerduty]
api_url = {pd:?}
token = "demo-pagerduty-token"
webhook_secrets = [{pd_secret:?}]

[slack]
api_url = {slack:?}
bot_token = {bot:?}
signing_secret = {signing:?}
default_channel = {CHANNEL:?}
team_id = {team:?}
"#,
        database = database.display().to_string(),
        pd = pd.url(),
        pd_secret = PD_WEBHOOK_SECRET,
        slack = slack.api_url(),
        bot = slack.token(),
        signing = SLACK_SIGNING_SECRET,
        team = slack.team_id().to_string(),
    );
    let config = Config::from_toml_str(&toml, &BTreeMap::new())
        .map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let mut opts = Options::default();
    opts.engine.coalesce_window = DEMO_COALESCE;
    opts.outbox_grace = Duration::from_secs(2);
    let server = crate::app::start(config, listener, opts)
        .await
        .context("starting the server")?;
    let base = format!("http://{}", server.addr);
    pd.set_webhook_target(&format!("{base}/pagerduty/webhook"), PD_WEBHOOK_SECRET);
    Ok(World {
        pd,
        slack,
        server: Some(server),
        base,
        channel: ChannelId::new(CHANNEL),
        slack_secret: SlackSigningSecret::new(SLACK_SIGNING_SECRET),
        pd_secret: PagerDutySecret::new(PD_WEBHOOK_SECRET),
        _dir: dir,
        database,
    })
}

/// Polls `probe` every 20 ms until it returns `Some` or [`STEP_TIMEOUT`] passes.
async fn wait_for<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = crate::clock::instant() + STEP_TIMEOUT;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if crate::clock::instant() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until pdbridge has nothing left to do: both inboxes processed, the outbox empty and no
/// engine timer due within 5 s, read as one moment ([`crate::bridge::Bridge::is_quiet`]); twice
/// in a row, 100 ms apart, for a webhook the fake PagerDuty may still be sending.
async fn settle(world: &World) {
    let Some(server) = &world.server else { return };
    let bridge = &server.bridge;
    let idle = || bridge.is_quiet(Duration::from_secs(5));
    let deadline = crate::clock::instant() + STEP_TIMEOUT;
    let mut streak = 0;
    while crate::clock::instant() < deadline {
        if idle() {
            streak += 1;
            if streak >= 2 {
                return;
            }
        } else {
            streak = 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn interactions_url(world: &World) -> String {
    format!("{}/slack/interactions", world.base)
}

fn card(world: &World, story: &Story) -> Option<FakeMessage> {
    world.slack.message(&world.channel, &story.ts)
}

fn thread_lines(world: &World, story: &Story) -> Vec<String> {
    world
        .slack
        .thread(&world.channel, &story.ts)
        .iter()
        .filter(|m| m.ts != story.ts)
        .flat_map(|m| m.text.lines().map(plain).collect::<Vec<_>>())
        .collect()
}

fn pd_requests(world: &World, method: &str, path: &str) -> Vec<(String, Value)> {
    world
        .pd
        .requests()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.path == path)
        .map(|r| (r.header("from").unwrap_or("").to_owned(), r.json()))
        .collect()
}

fn accepted_deliveries(world: &World, event_type: &str) -> Vec<DeliveryAttempt> {
    world
        .pd
        .deliveries()
        .into_iter()
        .filter(|d| d.event_type == event_type && d.accepted())
        .collect()
}

fn show_card(world: &World, story: &Story, out: &mut Out) {
    match card(world, story) {
        Some(message) => {
            let thread = thread_lines(world, story);
            for line in card_text(&message, &thread).lines() {
                out.line(format!("     {line}"));
            }
        }
        None => out.line("     (no card)"),
    }
}

fn finish(
    title: &str,
    ok: bool,
    facts: Vec<String>,
    world: &World,
    story: Option<&Story>,
    out: &mut Out,
    steps: &mut Vec<Step>,
) {
    for fact in &facts {
        out.line(format!("   {fact}"));
    }
    if let Some(story) = story {
        show_card(world, story, out);
    }
    out.line(format!(
        "   {} {}",
        if ok { "✓" } else { "✗" },
        if ok { "observed" } else { "NOT observed" }
    ));
    steps.push(Step {
        title: title.to_owned(),
        ok,
        facts,
    });
}

fn header(out: &mut Out, steps: &[Step], title: &str) {
    out.line("");
    out.line(format!("{}. {title}", steps.len() + 1));
}

async fn trigger(
    world: &mut World,
    out: &mut Out,
    steps: &mut Vec<Step>,
) -> Option<(IncidentId, MessageTs)> {
    const T: &str = "Trigger → one card";
    header(out, steps, T);
    let policy = world.pd.add_escalation_policy(
        "PEP0001",
        "Checkout on-call",
        vec![
            vec![ids::PdUserId::new(ALICE.pd.unwrap_or_default())],
            vec![ids::PdUserId::new(BOB.pd.unwrap_or_default())],
        ],
    );
    let incident = world.pd.trigger_incident(TITLE, &policy);
    let mut facts = vec![format!(
        "PagerDuty: incident {incident} \"{TITLE}\" triggered, assigned to Alice (level 1)"
    )];
    let delivered = wait_for(|| async {
        accepted_deliveries(world, "incident.triggered")
            .into_iter()
            .next()
    })
    .await;
    match &delivered {
        Some(d) => facts.push(format!(
            "PagerDuty → pdbridge: signed webhook incident.triggered (X-Webhook-Id {}) answered {}",
            d.webhook_id,
            d.status.unwrap_or(0)
        )),
        None => facts.push("PagerDuty → pdbridge: webhook NOT accepted".to_owned()),
    }
    let posted = wait_for(|| async {
        world
            .slack
            .messages(&world.channel)
            .into_iter()
            .find(|m| m.thread_ts.is_none() && m.text.contains(TITLE))
    })
    .await;
    settle(world).await;
    let Some(message) = posted else {
        facts.push("Slack: NO card was posted".to_owned());
        finish(T, false, facts, world, None, out, steps);
        return None;
    };
    let cards = world
        .slack
        .messages(&world.channel)
        .iter()
        .filter(|m| m.thread_ts.is_none())
        .count();
    facts.push(format!(
        "Slack: card posted in #incidents (ts {}); top-level messages in the channel: {cards}",
        message.ts
    ));
    let story = Story {
        incident: incident.clone(),
        ts: message.ts.clone(),
    };
    let ok = delivered.is_some() && cards == 1 && has_buttons(&message);
    finish(T, ok, facts, world, Some(&story), out, steps);
    Some((incident, message.ts))
}

fn has_buttons(message: &FakeMessage) -> bool {
    let text = message.blocks.to_string();
    ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
        .iter()
        .all(|label| text.contains(&format!("\"{label}\"")))
}

fn status_shown(message: &FakeMessage, status: &str) -> bool {
    message.text.contains(&format!("[{status}]"))
}

async fn click(
    world: &World,
    who: &Person,
    story: &Story,
    action: &str,
    facts: &mut Vec<String>,
) -> bool {
    let label = action_label(action);
    match world
        .slack
        .click(
            &interactions_url(world),
            &world.slack_secret,
            &SlackUserId::new(who.slack),
            &world.channel,
            &story.ts,
            action,
        )
        .await
    {
        Ok(reply) => {
            facts.push(format!(
                "Slack → pdbridge: {} clicks {label}; answered {} in {} ms",
                who.name,
                reply.status.as_u16(),
                reply.elapsed.as_millis()
            ));
            reply.status.is_success()
        }
        Err(err) => {
            facts.push(format!("Slack: {} cannot click {label}: {err}", who.name));
            false
        }
    }
}

fn action_label(action: &str) -> &'static str {
    match action {
        ACTION_ACK => "Acknowledge",
        ACTION_ESCALATE => "Escalate",
        ACTION_REASSIGN => "Reassign",
        ACTION_NOTE => "Add note",
        ACTION_RESOLVE => "Resolve",
        _ => "a button",
    }
}

/// Waits for a PagerDuty request `method path` beyond the first `before` ones and reports its
/// `From` header.
async fn pd_write(
    world: &World,
    method: &str,
    path: &str,
    before: usize,
    facts: &mut Vec<String>,
    what: &str,
) -> Option<(String, Value)> {
    let seen =
        wait_for(|| async { pd_requests(world, method, path).into_iter().nth(before) }).await;
    match &seen {
        Some((from, _)) => facts.push(format!(
            "pdbridge → PagerDuty: {method} {path} ({what}) with From: {}",
            if from.is_empty() { "(none)" } else { from }
        )),
        None => facts.push(format!("pdbridge → PagerDuty: NO {method} {path} ({what})")),
    }
    seen
}

async fn acknowledge(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Acknowledge by a mapped user, with `From` shown";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_ACK, &mut facts).await;
    let put = pd_write(
        world,
        "PUT",
        &path,
        before,
        &mut facts,
        "status=acknowledged",
    )
    .await;
    let acked = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.status == PdStatus::Acknowledged)
    })
    .await;
    let shown =
        wait_for(|| async { card(world, story).filter(|m| status_shown(m, "Acknowledged")) }).await;
    settle(world).await;
    if acked.is_some() {
        facts.push("PagerDuty: incident is acknowledged, acknowledger Alice".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/status") == Some(&Value::from("acknowledged"))
        })
        && acked
            .is_some_and(|i| i.acknowledgers == [ids::PdUserId::new(ALICE.pd.unwrap_or_default())])
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

async fn echo(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "The echo of our own acknowledgement renders once";
    header(out, steps, T);
    let mut facts = Vec::new();
    let echo = wait_for(|| async {
        accepted_deliveries(world, "incident.acknowledged")
            .into_iter()
            .next()
    })
    .await;
    settle(world).await;
    match &echo {
        Some(d) => facts.push(format!(
            "PagerDuty → pdbridge: incident.acknowledged (agent Alice: the echo of the click) \
             answered {}",
            d.status.unwrap_or(0)
        )),
        None => facts.push("PagerDuty → pdbridge: NO incident.acknowledged delivery".to_owned()),
    }
    let lines = thread_lines(world, story);
    let acks = lines
        .iter()
        .filter(|l| l.to_lowercase().contains("acknowledged"))
        .count();
    facts.push(format!(
        "Slack: the thread has {acks} acknowledgement line(s) (one expected, not two)"
    ));
    let ok = echo.is_some() && acks == 1;
    finish(T, ok, facts, world, Some(story), out, steps);
}

async fn escalate(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Escalate one level";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_ESCALATE, &mut facts).await;
    let put = pd_write(world, "PUT", &path, before, &mut facts, "escalation_level").await;
    let bob = ids::PdUserId::new(BOB.pd.unwrap_or_default());
    let escalated = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.escalation_level == 2 && i.assignees.contains(&bob))
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| plain(&m.blocks.to_string()).contains("Bob"))
    })
    .await;
    settle(world).await;
    if escalated.is_some() {
        facts.push("PagerDuty: escalation level 2, assigned to Bob".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/escalation_level") == Some(&Value::from(2))
        })
        && escalated.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

fn newest_view(world: &World, callback: &str, after: usize) -> Option<ViewId> {
    world
        .slack
        .views()
        .into_iter()
        .skip(after)
        .find(|v| v.view.get("callback_id").and_then(Value::as_str) == Some(callback))
        .map(|v| v.id)
}

/// Alice submits the modal `view` with `inputs`, as Slack would.
async fn alice_submits(
    world: &World,
    view: &ViewId,
    inputs: &[(&str, &str, InputValue)],
) -> std::io::Result<InteractionReply> {
    world
        .slack
        .submit_view(
            &interactions_url(world),
            &world.slack_secret,
            &SlackUserId::new(ALICE.slack),
            view,
            inputs,
        )
        .await
}

/// Records pdbridge's answer to a modal submission (`what` names it) and returns whether it was
/// a success.
fn answered(reply: std::io::Result<InteractionReply>, what: &str, facts: &mut Vec<String>) -> bool {
    match reply {
        Ok(reply) => {
            facts.push(format!(
                "Slack → pdbridge: {what}; answered {}",
                reply.status.as_u16()
            ));
            reply.status.is_success()
        }
        Err(err) => {
            facts.push(format!("Slack: submitting the modal failed: {err}"));
            false
        }
    }
}

async fn reassign(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Reassign through the modal";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let views_before = world.slack.views().len();
    let clicked = click(world, &ALICE, story, ACTION_REASSIGN, &mut facts).await;
    let view = wait_for(|| async { newest_view(world, CALLBACK_REASSIGN, views_before) }).await;
    let mut submitted = false;
    match &view {
        Some(id) => {
            facts.push(format!(
                "Slack: the Reassign modal opened for Alice (view {id})"
            ));
            let reply = alice_submits(
                world,
                id,
                &[(
                    REASSIGN_BLOCK,
                    REASSIGN_INPUT,
                    InputValue::User(SlackUserId::new(CAROL.slack)),
                )],
            )
            .await;
            submitted = answered(reply, "Alice picks Carol and submits", &mut facts);
        }
        None => facts.push("Slack: NO Reassign modal was opened".to_owned()),
    }
    let put = pd_write(world, "PUT", &path, before, &mut facts, "assignments").await;
    let carol = ids::PdUserId::new(CAROL.pd.unwrap_or_default());
    let reassigned = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.assignees == [carol.clone()])
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| plain(&m.blocks.to_string()).contains("Carol"))
    })
    .await;
    settle(world).await;
    if reassigned.is_some() {
        facts.push("PagerDuty: assigned to Carol".to_owned());
    }
    let ok = clicked
        && submitted
        && put.as_ref().is_some_and(|(from, _)| from == ALICE.email)
        && reassigned.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

async fn note(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Add a note through the modal; its echo renders once";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}/notes", story.incident);
    let before = pd_requests(world, "POST", &path).len();
    let views_before = world.slack.views().len();
    let clicked = click(world, &ALICE, story, ACTION_NOTE, &mut facts).await;
    let view = wait_for(|| async { newest_view(world, CALLBACK_NOTE, views_before) }).await;
    let mut submitted = false;
    match &view {
        Some(id) => {
            facts.push(format!(
                "Slack: the Add note modal opened for Alice (view {id})"
            ));
            let empty = alice_submits(
                world,
                id,
                &[(NOTE_BLOCK, NOTE_INPUT, InputValue::Text("   ".to_owned()))],
            )
            .await;
            if let Ok(reply) = &empty {
                let action = reply.json();
                facts.push(format!(
                    "Slack → pdbridge: an empty note is refused in the modal (response_action: {})",
                    action
                        .get("response_action")
                        .and_then(Value::as_str)
                        .unwrap_or("none")
                ));
            }
            let reply = alice_submits(
                world,
                id,
                &[(NOTE_BLOCK, NOTE_INPUT, InputValue::Text(NOTE.to_owned()))],
            )
            .await;
            submitted = answered(reply, &format!("Alice submits \"{NOTE}\""), &mut facts);
        }
        None => facts.push("Slack: NO Add note modal was opened".to_owned()),
    }
    let post = pd_write(world, "POST", &path, before, &mut facts, "the note").await;
    let stored = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.notes.iter().any(|n| n.content == NOTE))
    })
    .await;
    let echo = wait_for(|| async {
        accepted_deliveries(world, "incident.annotated")
            .into_iter()
            .next()
    })
    .await;
    settle(world).await;
    if stored.is_some() {
        facts.push("PagerDuty: the note is on the incident, written by Alice".to_owned());
    }
    if let Some(d) = &echo {
        facts.push(format!(
            "PagerDuty → pdbridge: incident.annotated (the echo) answered {}",
            d.status.unwrap_or(0)
        ));
    }
    let shown = thread_lines(world, story)
        .iter()
        .filter(|l| l.contains(NOTE))
        .count();
    facts.push(format!(
        "Slack: the note appears {shown} time(s) in the thread (once expected)"
    ));
    let ok = clicked
        && submitted
        && post.as_ref().is_some_and(|(from, _)| from == ALICE.email)
        && stored.is_some()
        && echo.is_some()
        && shown == 1;
    finish(T, ok, facts, world, Some(story), out, steps);
}

async fn post_webhook(world: &World, webhook_id: &str, body: &[u8]) -> Result<u16, String> {
    let signature = signing::sign_pagerduty(&world.pd_secret, body);
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(format!("{}/pagerduty/webhook", world.base))
        .header("content-type", "application/json")
        .header("x-pagerduty-signature", signature)
        .header("x-webhook-id", webhook_id)
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            body,
        )))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

async fn stale(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "A retried delivery and a stale out-of-order webhook are ignored";
    header(out, steps, T);
    let mut facts = Vec::new();
    let (Some(acked), Some(old)) = (
        accepted_deliveries(world, "incident.acknowledged")
            .into_iter()
            .next(),
        accepted_deliveries(world, "incident.triggered")
            .into_iter()
            .next(),
    ) else {
        facts.push("no earlier deliveries to replay".to_owned());
        finish(T, false, facts, world, Some(story), out, steps);
        return;
    };
    let before = card(world, story);
    // 1. PagerDuty retries a delivery we already stored (same X-Webhook-Id, same event).
    let retried = post_webhook(world, acked.webhook_id.as_str(), &acked.body).await;
    facts.push(format!(
        "PagerDuty → pdbridge: the incident.acknowledged delivery again (same X-Webhook-Id {}) \
         answered {}",
        acked.webhook_id,
        show_status(&retried)
    ));
    // 2. The oldest state arrives late as a new event: new ids, the original occurred_at, the
    //    incident as it was then (triggered, level 1, assigned to Alice). Neither a duplicate
    //    nor an echo, so only its age can keep it off the card.
    let mut envelope: Value = serde_json::from_slice(&old.body).unwrap_or(Value::Null);
    let occurred = envelope
        .pointer("/event/occurred_at")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    if let Some(event) = envelope.get_mut("event") {
        event["id"] = Value::from("01DEMOSTALEEVENT0000000000");
    }
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    let late = post_webhook(world, "demo-stale-delivery", &body).await;
    facts.push(format!(
        "PagerDuty → pdbridge: a late incident.triggered (new event id, occurred_at {occurred}, \
         level 1, assigned to Alice) answered {}",
        show_status(&late)
    ));
    settle(world).await;
    let after = card(world, story);
    let unchanged = before.as_ref().map(|m| (&m.text, &m.blocks))
        == after.as_ref().map(|m| (&m.text, &m.blocks));
    let still_carol = after
        .as_ref()
        .is_some_and(|m| plain(&m.blocks.to_string()).contains("Carol"));
    facts.push(format!(
        "Slack: the card {} (still assigned to Carol: {still_carol})",
        if unchanged {
            "did not change"
        } else {
            "CHANGED"
        }
    ));
    let ok = retried == Ok(200)
        && late.as_ref().is_ok_and(|s| (200..300).contains(s))
        && unchanged
        && still_carol;
    finish(T, ok, facts, world, Some(story), out, steps);
}

fn show_status(status: &Result<u16, String>) -> String {
    match status {
        Ok(code) => code.to_string(),
        Err(err) => format!("nothing ({err})"),
    }
}

async fn unmapped(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "An unmapped user is refused";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let puts_before = pd_requests(world, "PUT", &path).len();
    let ephemerals_before = world.slack.ephemerals().len();
    let responses_before = world.slack.responses().len();
    let clicked = click(world, &MALLORY, story, ACTION_ACK, &mut facts).await;
    let told = wait_for(|| async {
        let eph = world
            .slack
            .ephemerals()
            .into_iter()
            .skip(ephemerals_before)
            .find(|e| e.user.as_str() == MALLORY.slack)
            .map(|e| e.text);
        eph.or_else(|| {
            world
                .slack
                .responses()
                .into_iter()
                .nth(responses_before)
                .and_then(|r| {
                    r.body
                        .get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        })
    })
    .await;
    settle(world).await;
    match &told {
        Some(text) => facts.push(format!("Slack: Mallory alone is told: \"{}\"", plain(text))),
        None => facts.push("Slack: Mallory was NOT told anything".to_owned()),
    }
    let puts = pd_requests(world, "PUT", &path).len() - puts_before;
    facts.push(format!(
        "pdbridge → PagerDuty: {puts} request(s) for Mallory's click"
    ));
    let ok = clicked && told.is_some() && puts == 0;
    finish(T, ok, facts, world, Some(story), out, steps);
}

async fn resolve(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Resolve (after Slack's confirm dialog): buttons gone";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_RESOLVE, &mut facts).await;
    let put = pd_write(world, "PUT", &path, before, &mut facts, "status=resolved").await;
    let resolved = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.status == PdStatus::Resolved)
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| {
            status_shown(m, "Resolved") && !m.blocks.to_string().contains("\"actions\"")
        })
    })
    .await;
    settle(world).await;
    if resolved.is_some() {
        facts.push("PagerDuty: incident is resolved".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/status") == Some(&Value::from("resolved"))
        })
        && resolved.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

/// Slack mrkdwn made readable in a terminal: `<url|label>` → `label`, `<@U…>` → `@name`,
/// entities and the card's emoji codes decoded.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + len];
        if let Some(user) = inner.strip_prefix('@') {
            let name = PEOPLE
                .iter()
                .find(|p| p.slack == user)
                .map_or(user, |p| p.name);
            let _ = write!(out, "@{name}");
        } else if let Some((_, label)) = inner.split_once('|') {
            out.push_str(label);
        } else {
            out.push_str(inner);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out.replace(":red_circle:", "🔴")
        .replace(":large_yellow_circle:", "🟡")
        .replace(":white_check_mark:", "✅")
        .replace(":hourglass_flowing_sand:", "⏳")
        .replace(":warning:", "⚠")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn text_of(v: &Value) -> String {
    plain(v.get("text").and_then(Value::as_str).unwrap_or_default())
}

/// A text rendering of a Block Kit card and its thread, as a box.
pub fn card_text(message: &FakeMessage, thread: &[String]) -> String {
    let mut lines = Vec::new();
    for block in message.blocks.as_array().into_iter().flatten() {
        match block.get("type").and_then(Value::as_str) {
            Some("header") => lines.push(text_of(&block["text"]).to_uppercase()),
            Some("section") => {
                if let Some(t) = block.get("text") {
                    lines.push(text_of(t));
                }
                let fields: Vec<String> = block
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|f| text_of(f).replace('*', "").replace('\n', " "))
                    .collect();
                if !fields.is_empty() {
                    lines.push(fields.join(" │ "));
                }
            }
            Some("context") => {
                let parts: Vec<String> = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(text_of)
                    .collect();
                lines.push(parts.join(" "));
            }
            Some("actions") => {
                let buttons: Vec<String> = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| format!("[{}]", text_of(&e["text"])))
                    .collect();
                lines.push(buttons.join(" "));
            }
            _ => {}
        }
    }
    for line in thread {
        lines.push(format!("  ↳ {line}"));
    }
    let lines: Vec<String> = lines.into_iter().map(|l| l.replace('*', "")).collect();
    let mut out = String::from("┌──────────────────────────────────────────────\n");
    for line in lines {
        let _ = writeln!(out, "│ {line}");
    }
    out.push_str("└──────────────────────────────────────────────\n");
    out
}

/// Runs the demo as the `pdbridge demo` command does: live output, exit status from the outcome.
pub fn main(keep_running: bool) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("pdbridge demo: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(DemoOptions {
        live: true,
        keep_running,
    })) {
        Ok(outcome) if outcome.ok() => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("pdbridge demo: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
