//! The crash harness: `kill -9` pdbridge at random moments under mixed load while the fakes
//! inject failures, restart it, let it drain, and compare sets.
//!
//! Each iteration restarts the server (timing how long until it listens), drives it for
//! `--load` seconds with new incidents (the fake PagerDuty delivers their signed webhooks and
//! retries them, as PagerDuty does) and clicks on the cards already posted (Acknowledge on
//! triggered cards, Resolve on acknowledged ones), injects a few 5xx, 429 and slow answers into
//! both fakes, and kills the server at a uniformly random moment of that window. After a kill
//! the database must pass `PRAGMA integrity_check`. After the last iteration the server restarts
//! without faults and drains; then:
//!
//! - every webhook delivery the server acknowledged (2xx) is in the inbox (0 lost), and the
//!   inbox is fully processed;
//! - every click the server accepted (200) reached PagerDuty (0 lost), and no incident changed
//!   state twice for one click (0 duplicate PagerDuty mutations: each incident gets at most one
//!   Acknowledge and one Resolve click, so more than one `incident.acknowledged` or
//!   `incident.resolved` event for it is a duplicate);
//! - every incident has a card, and duplicate cards are at most the `chat.postMessage` calls in
//!   flight at the kills (counted as posts the fake received in the `IN_FLIGHT_WINDOW` before each
//!   kill, an upper bound);
//! - the card the server tracks for each incident shows its final PagerDuty status (an orphan
//!   duplicate posted just before a kill is counted above, and is never updated).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fakes::pd::{DeliveryRetry, Fault as PdFault};
use fakes::slack::Fault as SlackFault;
use ids::IncidentId;
use serde::Serialize;
use signing::SlackSigningSecret;

use crate::child::Pinning;
use crate::harness::{Env, EnvOptions, metric_sum};
use crate::payloads::SLACK_SECRET;
use crate::report::Report;

/// How far before a kill a `chat.postMessage` counts as possibly in flight.
const IN_FLIGHT_WINDOW: Duration = Duration::from_secs(2);

/// Options of `crash`.
#[derive(Debug, Clone, clap::Args)]
pub struct CrashArgs {
    /// How many kill/restart cycles.
    #[arg(long, default_value_t = 10)]
    pub iterations: u32,
    /// Seconds of load per iteration; the kill lands uniformly within it.
    #[arg(long, default_value_t = 1.0)]
    pub load: f64,
    /// New incidents triggered per iteration.
    #[arg(long, default_value_t = 2)]
    pub incidents: u32,
    /// Also inject answers slower than the clients' 10 s timeout (slow runs only).
    #[arg(long)]
    pub timeout_faults: bool,
    /// Seconds the final drain may take.
    #[arg(long, default_value_t = 120.0)]
    pub drain_timeout: f64,
    /// Seed for the random kill moments and faults (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
enum Click {
    Ack,
    Resolve,
}

#[derive(Debug, Default)]
struct Clicks {
    /// Clicks the server answered 200, by incident.
    accepted: BTreeMap<IncidentId, BTreeSet<Click>>,
    /// Clicks sent (answered or not), by incident.
    sent: BTreeMap<IncidentId, BTreeSet<Click>>,
}

/// Per-iteration facts.
#[derive(Debug, Clone, Serialize)]
struct Iteration {
    restart_ms: f64,
    killed_after_ms: f64,
    integrity: String,
}

/// Sends one round of clicks: Acknowledge on triggered cards, Resolve on acknowledged ones, at
/// most one of each per incident ever.
async fn click_round(env: &Env, clicks: &Mutex<Clicks>) {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let url = env.interactions_url();
    let tracked = env.tracked_cards().unwrap_or_default();
    for (incident, cards) in env.cards() {
        // The card the server owns; an orphan duplicate left by a crash is never clicked.
        let own = tracked.get(&incident);
        let Some((channel, ts, text)) = cards
            .iter()
            .find(|(c, t, _)| own.is_some_and(|(oc, ot)| oc == c && ot == t))
            .cloned()
        else {
            continue;
        };
        let already = clicks
            .lock()
            .map(|c| c.sent.get(&incident).cloned().unwrap_or_default())
            .unwrap_or_default();
        let click = if !already.contains(&Click::Ack) && text.contains("Triggered") {
            Click::Ack
        } else if already.contains(&Click::Ack)
            && !already.contains(&Click::Resolve)
            && text.contains("Acknowledged")
        {
            Click::Resolve
        } else {
            continue;
        };
        let action = match click {
            Click::Ack => "pdbridge_ack",
            Click::Resolve => "pdbridge_resolve",
        };
        let user = &env.users[fastrand::usize(..env.users.len())].0;
        let Ok(payload) = env
            .slack
            .block_actions_payload(user, &channel, &ts, action, None)
        else {
            continue;
        };
        if let Ok(mut c) = clicks.lock() {
            c.sent.entry(incident.clone()).or_default().insert(click);
        }
        let reply = tokio::time::timeout(
            Duration::from_secs(4),
            fakes::slack::send_interaction(&url, &secret, &payload),
        )
        .await;
        if let Ok(Ok(reply)) = reply
            && reply.status.as_u16() == 200
            && let Ok(mut c) = clicks.lock()
        {
            c.accepted.entry(incident).or_default().insert(click);
        }
    }
}

fn inject_faults(env: &Env, timeouts: bool) {
    let slack_methods = [
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "response_url",
    ];
    for _ in 0..3 {
        let method = slack_methods[fastrand::usize(..slack_methods.len())];
        let fault = match fastrand::u8(..4) {
            0 => SlackFault::ServerError(500),
            1 => SlackFault::RateLimited {
                retry_after: Some(1),
            },
            2 => SlackFault::ServerError(503),
            _ => SlackFault::Slow(Duration::from_millis(fastrand::u64(200..1500))),
        };
        env.slack.inject(method, fault);
        let fault = match fastrand::u8(..4) {
            0 => PdFault::ServerError(500),
            1 => PdFault::RateLimited {
                reset: Some(Duration::from_millis(300)),
            },
            2 => PdFault::RateLimited { reset: None },
            _ => PdFault::Slow(Duration::from_millis(fastrand::u64(200..1500))),
        };
        env.pd.push_fault(fault);
    }
    if timeouts {
        env.slack
            .inject("chat.update", SlackFault::Slow(Duration::from_secs(11)));
        env.pd.push_fault(PdFault::Slow(Duration::from_secs(11)));
    }
}

/// `crash`: the kill -9 harness.
pub async fn run(args: &CrashArgs, pinning: Pinning, report: &mut Report) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    fastrand::seed(seed);
    report.figure("crash/seed", seed);
    let mut env = Env::new(EnvOptions {
        users: 3,
        channels: 0,
        slack_limits: false,
        pinning,
    })
    .await?;
    env.pd.set_delivery_retry(DeliveryRetry {
        max_attempts: 1000,
        base_delay: Duration::from_millis(20),
    });
    let clicks = Arc::new(Mutex::new(Clicks::default()));
    let mut iterations = Vec::new();
    let mut kills: Vec<SystemTime> = Vec::new();
    let mut triggered: Vec<IncidentId> = Vec::new();
    let load = Duration::from_secs_f64(args.load.max(0.05));

    for _ in 0..args.iterations {
        let restart = env.start()?;
        inject_faults(&env, args.timeout_faults);
        let kill_at = load.mul_f64(fastrand::f64());
        let started = Instant::now();
        // Load: new incidents spread over the window, and click rounds.
        let gap = load / (args.incidents + 1);
        let mut next_incident = Instant::now();
        let mut made = 0;
        let mut killed = false;
        let mut killed_after = Duration::ZERO;
        while started.elapsed() < load {
            if made < args.incidents && Instant::now() >= next_incident {
                triggered.push(env.pd.trigger_incident("crash harness", &env.policy));
                made += 1;
                next_incident += gap;
            }
            if !killed && started.elapsed() >= kill_at {
                env.kill9()?;
                kills.push(SystemTime::now());
                killed = true;
                killed_after = started.elapsed();
            }
            if !killed {
                // A bounded round so the kill moment stays close to its schedule.
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), click_round(&env, &clicks))
                        .await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while made < args.incidents {
            triggered.push(env.pd.trigger_incident("crash harness", &env.policy));
            made += 1;
        }
        if !killed {
            env.kill9()?;
            kills.push(SystemTime::now());
            killed_after = started.elapsed();
        }
        iterations.push(Iteration {
            restart_ms: restart.as_secs_f64() * 1000.0,
            killed_after_ms: killed_after.as_secs_f64() * 1000.0,
            integrity: env.integrity_check()?,
        });
    }

    // Final run: no more faults queued beyond what is left, keep clicking until every incident
    // got its clicks, then drain.
    let restart = env.start()?;
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    loop {
        click_round(&env, &clicks).await;
        let done = {
            let c = clicks.lock().map_err(|_| anyhow::anyhow!("clicks lock"))?;
            triggered
                .iter()
                .all(|i| c.sent.get(i).is_some_and(|s| s.contains(&Click::Resolve)))
        };
        let pending = env.pending()?;
        if (done && pending.is_idle()) || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = env
        .drain(
            Duration::from_millis(500),
            drain_deadline.saturating_duration_since(Instant::now()),
        )
        .await?;
    // Webhooks emitted by the last mutations must reach the server too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending_after = env
        .drain(Duration::from_millis(300), Duration::from_secs(10))
        .await?;

    compare(&env, &clicks, &triggered, &kills, report, pending_after)?;
    let restarts: Vec<f64> = iterations
        .iter()
        .map(|i| i.restart_ms)
        .chain([restart.as_secs_f64() * 1000.0])
        .collect();
    let max_restart = restarts.iter().copied().fold(0.0, f64::max);
    report.figure("crash/iterations", iterations.len());
    report.figure(
        "crash/restart_to_listening_ms_max",
        (max_restart * 10.0).round() / 10.0,
    );
    report.figure("crash/pending_after_first_drain", pending);
    report.figure("crash/per_iteration", &iterations);
    let bad_integrity: Vec<&Iteration> =
        iterations.iter().filter(|i| i.integrity != "ok").collect();
    report.check(
        "crash: PRAGMA integrity_check ok after every kill",
        bad_integrity.is_empty(),
        format!("{} kills, {} not ok", iterations.len(), bad_integrity.len()),
    );
    if !cfg!(debug_assertions) {
        report.check(
            "crash: listening again within 1 s of every restart",
            max_restart <= 1000.0,
            format!("slowest restart {max_restart:.1} ms"),
        );
    }
    let metrics = env.metrics().await;
    for platform in ["slack", "pagerduty"] {
        let label = format!("platform=\"{platform}\"");
        report.figure(
            format!("crash/{platform}_api_calls_since_last_restart"),
            metric_sum(&metrics, "pdbridge_api_calls_total", &[&label]),
        );
        report.figure(
            format!("crash/{platform}_429s_since_last_restart"),
            metric_sum(&metrics, "pdbridge_api_rate_limited_total", &[&label]),
        );
    }
    env.stop(Duration::from_secs(15))?;
    Ok(())
}

fn compare(
    env: &Env,
    clicks: &Mutex<Clicks>,
    triggered: &[IncidentId],
    kills: &[SystemTime],
    report: &mut Report,
    pending: crate::harness::Pending,
) -> anyhow::Result<()> {
    // Webhooks: acknowledged by the server ⊆ committed.
    let deliveries = env.pd.deliveries();
    let acked: BTreeSet<String> = deliveries
        .iter()
        .filter(|d| d.accepted())
        .map(|d| d.webhook_id.to_string())
        .collect();
    let committed = env.committed_webhook_ids()?;
    let lost: Vec<&String> = acked.difference(&committed).collect();
    report.check(
        "crash: 0 acknowledged webhooks lost",
        lost.is_empty(),
        format!(
            "{} acknowledged, {} committed, lost: {:?}",
            acked.len(),
            committed.len(),
            lost.iter().take(5).collect::<Vec<_>>()
        ),
    );
    let undelivered = deliveries
        .iter()
        .map(|d| d.webhook_id.to_string())
        .collect::<BTreeSet<_>>()
        .difference(&acked)
        .count();
    report.figure("crash/webhooks_never_acknowledged", undelivered);
    report.check(
        "crash: drained (inboxes processed, outbox empty)",
        pending.is_idle(),
        format!("{pending:?}"),
    );

    // Clicks: accepted ⇒ effect, and never twice.
    let c = clicks.lock().map_err(|_| anyhow::anyhow!("clicks lock"))?;
    let mut events: BTreeMap<(IncidentId, String), BTreeSet<String>> = BTreeMap::new();
    for d in &deliveries {
        if let Some(i) = &d.incident_id {
            events
                .entry((i.clone(), d.event_type.clone()))
                .or_default()
                .insert(d.event_id.to_string());
        }
    }
    let count = |i: &IncidentId, t: &str| {
        events
            .get(&(i.clone(), t.to_owned()))
            .map_or(0, BTreeSet::len)
    };
    let mut lost_clicks = Vec::new();
    let mut duplicates = Vec::new();
    let mut accepted_total = 0;
    for (incident, set) in &c.accepted {
        accepted_total += set.len();
        let status = env
            .pd
            .incident(incident)
            .map(|i| i.status.as_str().to_owned())
            .unwrap_or_default();
        if set.contains(&Click::Ack) && count(incident, "incident.acknowledged") == 0 {
            lost_clicks.push(format!("{incident} ack"));
        }
        if set.contains(&Click::Resolve) && status != "resolved" {
            lost_clicks.push(format!("{incident} resolve (status {status})"));
        }
    }
    for incident in triggered {
        for t in ["incident.acknowledged", "incident.resolved"] {
            let n = count(incident, t);
            if n > 1 {
                duplicates.push(format!("{incident} {t} x{n}"));
            }
        }
    }
    report.figure("crash/clicks_accepted", accepted_total);
    report.figure(
        "crash/clicks_sent",
        c.sent.values().map(BTreeSet::len).sum::<usize>(),
    );
    report.check(
        "crash: 0 accepted clicks lost",
        lost_clicks.is_empty(),
        format!("{accepted_total} accepted; lost: {lost_clicks:?}"),
    );
    report.check(
        "crash: 0 duplicate PagerDuty mutations",
        duplicates.is_empty(),
        format!("{duplicates:?}"),
    );

    // Cards: one per incident (duplicates bounded by posts in flight), final state shown.
    let cards = env.cards();
    let tracked = env.tracked_cards()?;
    let posts = env.slack.requests_to("chat.postMessage");
    let in_flight: usize = kills
        .iter()
        .map(|k| {
            posts
                .iter()
                .filter(|p| {
                    p.at <= *k && k.duration_since(p.at).is_ok_and(|d| d <= IN_FLIGHT_WINDOW)
                })
                .count()
        })
        .sum();
    let mut missing = Vec::new();
    let mut duplicate_cards = 0;
    let mut stale = Vec::new();
    for incident in triggered {
        let Some(list) = cards.get(incident) else {
            missing.push(incident.to_string());
            continue;
        };
        duplicate_cards += list.len() - 1;
        let status = env
            .pd
            .incident(incident)
            .map(|i| i.status.as_str().to_owned())
            .unwrap_or_default();
        let want = match status.as_str() {
            "triggered" => "Triggered",
            "acknowledged" => "Acknowledged",
            _ => "Resolved",
        };
        let own = tracked.get(incident);
        let shows_final = list.iter().any(|(c, t, text)| {
            own.is_some_and(|(oc, ot)| oc == c && ot == t) && text.contains(want)
        });
        if !shows_final {
            let shown: Vec<&str> = list.iter().map(|(_, _, t)| t.as_str()).collect();
            stale.push(format!("{incident}: PD {status}, card {shown:?}"));
        }
    }
    report.figure("crash/incidents", triggered.len());
    report.figure("crash/duplicate_cards", duplicate_cards);
    report.figure("crash/post_calls_in_flight_bound", in_flight);
    let first_missing: Vec<String> = missing
        .iter()
        .take(3)
        .map(|i| format!("{i}: {}", env.incident_debug(&IncidentId::new(i.as_str()))))
        .collect();
    report.check(
        "crash: every incident has a card",
        missing.is_empty(),
        format!(
            "{} incidents, missing: {missing:?}; first in the database: {first_missing:?}",
            triggered.len()
        ),
    );
    report.check(
        "crash: duplicate Slack posts <= posts in flight at the kills",
        duplicate_cards <= in_flight,
        format!("{duplicate_cards} duplicates, bound {in_flight}"),
    );
    report.check(
        "crash: every tracked card shows the final PagerDuty status",
        stale.is_empty(),
        format!("stale: {stale:?}"),
    );
    Ok(())
}
