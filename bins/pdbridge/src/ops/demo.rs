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

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use fakes::pd::{DeliveryAttempt, FakePagerDuty};
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeUser};
use ids::{ChannelId, IncidentId, MessageTs};
use serde_json::Value;
use signing::{PagerDutySecret, SlackSigningSecret};
use tokio::net::TcpListener;

use crate::app::{Options, Running};

mod declare;
mod edges;
mod modals;
mod oncall;
mod snooze;
mod steps;
mod text;

use self::declare::*;
use self::edges::*;
use self::modals::*;
use self::snooze::snooze;
use self::steps::*;
pub use self::text::{card_text, plain};

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
        snooze(&world, &story, &mut out, &mut steps).await;
        escalate(&world, &story, &mut out, &mut steps).await;
        reassign(&world, &story, &mut out, &mut steps).await;
        note(&world, &story, &mut out, &mut steps).await;
        stale(&world, &story, &mut out, &mut steps).await;
        unmapped(&world, &story, &mut out, &mut steps).await;
        resolve(&world, &story, &mut out, &mut steps).await;
        oncall::ask(&world, &mut out, &mut steps).await;
    }
    declare(&world, &mut out, &mut steps).await;

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
        let now = server.bridge.now();
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
    let config = crate::world::WorldConfig {
        database: Some(&database),
        pd_credentials: r#"token = "demo-pagerduty-token""#.to_owned(),
        webhook_secrets: &[PD_WEBHOOK_SECRET],
        signing_secret: SLACK_SIGNING_SECRET,
        default_channel: CHANNEL,
        extra: DECLARE_TOML,
        ..crate::world::WorldConfig::for_fakes(&pd, &slack)
    }
    .config()
    .map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let mut opts = Options::default();
    opts.engine.coalesce_window = DEMO_COALESCE;
    opts.outbox_grace = Duration::from_secs(2);
    let server = crate::world::start(config, listener, opts, &pd, PD_WEBHOOK_SECRET).await?;
    let base = format!("http://{}", server.addr);
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
