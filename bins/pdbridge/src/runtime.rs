//! The background loops that drive the [`Bridge`]: inbox processor, dispatcher, engine timers
//! and reconciler.
//!
//! - The inbox processor replays unprocessed webhooks in arrival order and resolves unprocessed
//!   Slack actions (identity and policy, which may call the APIs) before handing them to the
//!   engine; rows are marked processed in the same transaction as the engine's result, so a
//!   crash replays them.
//! - The dispatcher claims due outbox effects (the store keeps per-incident FIFO: the next
//!   effect of an incident is claimable only once the previous one completed), carries each out
//!   through the clients on its own task, and feeds the outcome back to the engine in the same
//!   transaction that completes the row. It is woken right after every commit. At most
//!   [`MAX_IN_FLIGHT`] effects run at once (the rest wait in the outbox, unclaimed), and a claim
//!   is never repeated sooner than the last one took, so a large backlog neither grows memory
//!   nor keeps the store busy.
//! - Webhooks are drained in batches queued at once ([`Bridge::apply_all`]), so they share the
//!   writer's group commits.
//! - The timer loop sends [`Input::Tick`] when the engine asks for it (retries, thread flushes).
//! - The reconciler lists open PagerDuty incidents every interval and feeds them to the engine,
//!   which repairs stale cards and posts missing ones (routed as `incident.triggered`, so
//!   routes with an `events` filter match them as they would have matched the trigger).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use identity::IncidentFacts;
use ids::{IncidentId, SlackUserId};
use pd_client::webhook::WebhookEnvelope;
use slack_client::api::{
    ConversationHistory, MessageMetadata, PostEphemeral, PostMessage, UpdateMessage,
};
use store::{ActionRow, AuditEntry, OutboxRow, WebhookRow};
use sync_core::{
    ActionKind, Effect, EngineConfig, EscalationLevels, IncidentState, Input, Mutation, Outcome,
    PdRead, SlackAction, Timestamp,
};
use tokio::sync::watch;

use crate::bridge::{Bridge, StoredAction, StoredKind};
use crate::http::Unavailable;
use crate::identity::{ActorRequest, KnownIncident, TargetError, Verdict};
use crate::{render, translate};

/// How many rows one pass takes from the inbox or the outbox.
const BATCH: usize = 64;
/// The longest any loop sleeps without being woken.
const IDLE: Duration = Duration::from_secs(1);
/// How long a Slack action whose clicker could not be looked up (Slack or PagerDuty down) is
/// retried before it is refused.
const LOOKUP_RETRY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// The pause between two lookup retries of one action.
const LOOKUP_RETRY_PAUSE: Duration = Duration::from_secs(2);
/// The rate-limit pause when a 429 carries no hint (no `Retry-After` / `ratelimit-reset`).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a card waits for its assignees' Slack users before naming them instead.
const MENTIONS_TIMEOUT: Duration = Duration::from_secs(2);
/// The `event_type` of the metadata every card is posted with (its payload names the
/// incident), so a card whose post went unanswered can be found instead of posted again.
pub const CARD_EVENT_TYPE: &str = "pdbridge_incident_card";
/// How far before the first attempt a look for an earlier card or note starts: room for the
/// skew between the bridge's clock and Slack's or PagerDuty's.
const LOOK_BACK_MARGIN_MS: i64 = 10 * 60 * 1000;
/// The most `conversations.history` pages (of [`LOOK_PAGE_SIZE`] messages) read when looking
/// for an earlier card: past them, the card is taken as not posted.
const LOOK_PAGES: usize = 5;
/// The page size of that look.
const LOOK_PAGE_SIZE: u32 = 200;

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// A store read on the blocking pool; `None` (logged) when it fails.
async fn read<T, F>(bridge: &Bridge, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&store::Tx<'_>) -> Result<T, store::Error> + Send + 'static,
{
    match bridge.blocking(move |store| store.read(f)).await {
        Ok(v) => Some(v),
        Err(err) => {
            tracing::error!(err = %err.0, "store read failed");
            None
        }
    }
}

/// A store write on the blocking pool.
async fn write<T, F>(bridge: &Bridge, f: F) -> Result<T, Unavailable>
where
    T: Send + 'static,
    F: FnOnce(&mut store::Tx<'_>) -> Result<T, store::Error> + Send + 'static,
{
    bridge.blocking(move |store| store.write(f)).await
}

/// Processes the inbox until `shutdown` turns true.
pub async fn inbox_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    let in_flight: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let retry: Arc<Mutex<Retries>> = Arc::default();
    loop {
        let webhooks = read(&bridge, |tx| tx.unprocessed_webhooks(BATCH))
            .await
            .unwrap_or_default();
        // A full batch that made progress means more may wait: take the next one at once
        // instead of sleeping until a new delivery or the idle tick wakes the loop.
        let more_waiting = webhooks.len() == BATCH;
        let progressed = process_webhooks(&bridge, webhooks).await > 0;
        let actions = read(&bridge, |tx| tx.unprocessed_actions(BATCH))
            .await
            .unwrap_or_default();
        for row in actions {
            let waiting = retry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .not_before
                .get(&row.seq)
                .is_some_and(|at| *at > crate::clock::tokio_instant());
            if waiting {
                continue;
            }
            let fresh = in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(row.seq);
            if fresh {
                let bridge = Arc::clone(&bridge);
                let in_flight = Arc::clone(&in_flight);
                let retry = Arc::clone(&retry);
                let tell = !retry
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .told
                    .contains(&row.seq);
                tokio::spawn(async move {
                    let seq = row.seq;
                    let progress = process_action(&bridge, row, tell).await;
                    {
                        let mut retry = retry.lock().unwrap_or_else(PoisonError::into_inner);
                        match progress {
                            Progress::Done => {
                                retry.not_before.remove(&seq);
                                retry.told.remove(&seq);
                            }
                            Progress::RetryLater => {
                                retry.told.insert(seq);
                                retry.not_before.insert(
                                    seq,
                                    crate::clock::tokio_instant() + LOOKUP_RETRY_PAUSE,
                                );
                            }
                        }
                    }
                    in_flight
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&seq);
                    bridge.inbox_wake.notify_one();
                });
            }
        }
        if more_waiting && progressed {
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = bridge.inbox_wake.notified() => {}
            () = tokio::time::sleep(IDLE) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Lookup retries of Slack actions, by inbox sequence number.
#[derive(Debug, Default)]
struct Retries {
    /// Not to be tried again before this instant.
    not_before: std::collections::BTreeMap<i64, tokio::time::Instant>,
    /// Clickers already told that their action is being retried.
    told: BTreeSet<i64>,
}

/// What became of one pass over a stored action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Processed (or dropped); the row is marked processed.
    Done,
    /// Slack or PagerDuty could not be asked who the clicker is; try again shortly.
    RetryLater,
}

/// Feeds a batch of stored webhooks to the engine, in arrival order, as one queued group (so
/// they share a transaction); each row is marked processed with its engine result. Returns how
/// many rows were marked processed.
async fn process_webhooks(bridge: &Bridge, rows: Vec<WebhookRow>) -> usize {
    let mut processed = 0;
    let mut inputs: Vec<(Input, crate::bridge::Extra)> = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = row.seq;
        let event = WebhookEnvelope::from_slice(row.payload.as_bytes())
            .ok()
            .and_then(|env| translate::pd_event(&bridge.config, &env.event, row.webhook_id));
        let Some(event) = event else {
            // Not an event the engine takes: it is only marked processed.
            let now = bridge.now_ms();
            match write(bridge, move |tx| tx.mark_webhook_processed(seq, now)).await {
                Ok(()) => processed += 1,
                Err(err) => {
                    tracing::error!(err = %err.0, seq, "marking a webhook processed failed; it stays in the inbox");
                }
            }
            continue;
        };
        let extra: crate::bridge::Extra =
            Box::new(move |tx, now| tx.mark_webhook_processed(seq, now));
        inputs.push((Input::PdEvent(event), extra));
        seqs.push(seq);
    }
    for (seq, result) in seqs.into_iter().zip(bridge.apply_all(inputs).await) {
        match result {
            Ok(_) => processed += 1,
            Err(err) => {
                tracing::error!(%err, seq, "processing a webhook failed; it stays in the inbox");
            }
        }
    }
    processed
}

fn engine_kind(kind: &StoredKind) -> Option<ActionKind> {
    match kind {
        StoredKind::Acknowledge => Some(ActionKind::Acknowledge),
        StoredKind::Escalate => Some(ActionKind::Escalate),
        StoredKind::Resolve => Some(ActionKind::Resolve),
        StoredKind::Note { content } => Some(ActionKind::AddNote(content.clone())),
        StoredKind::Reassign { .. } => None,
    }
}

/// What the policy needs to know about an incident, from the engine's state; the teams of its
/// service and escalation policy are read by [`crate::identity::Identity::actor`].
fn known_incident(state: &IncidentState) -> KnownIncident {
    let mut facts = IncidentFacts::new(state.id().clone());
    let mut service = None;
    if let Some(s) = state.snapshot() {
        facts.teams = s.teams.iter().map(|t| t.id.clone()).collect();
        facts.escalation_policy = s.escalation_policy.as_ref().map(|e| e.id.clone());
        facts.assignees = s.assignees.iter().map(|a| a.id.clone()).collect();
        service = s.service.as_ref().map(|n| n.id.clone());
    }
    facts.card_channel = state.channel().cloned();
    KnownIncident { facts, service }
}

async fn process_action(bridge: &Bridge, row: ActionRow, tell: bool) -> Progress {
    let seq = row.seq;
    let received_at = row.received_at;
    let action: StoredAction = match serde_json::from_str(&row.payload) {
        Ok(a) => a,
        Err(err) => {
            tracing::error!(%err, seq, "undecodable stored action; dropping it");
            let now = bridge.now_ms();
            let _ = write(bridge, move |tx| tx.mark_action_processed(seq, now)).await;
            return Progress::Done;
        }
    };
    let now = bridge.now_ms();
    let may_retry = now - received_at < LOOKUP_RETRY_WINDOW_MS;
    let name = action.kind.name();
    let kind = match (&action.kind, engine_kind(&action.kind)) {
        (_, Some(kind)) => kind,
        (StoredKind::Reassign { to }, None) => {
            match bridge
                .identity
                .pd_user_for(to, action.team.as_ref(), now)
                .await
            {
                Ok(pd_user) => ActionKind::Reassign(pd_user),
                Err(TargetError::Lookup(why)) if may_retry => {
                    tracing::warn!(%why, seq, "reassignment target lookup failed; retrying");
                    if tell {
                        tell_retrying(bridge, &action).await;
                    }
                    return Progress::RetryLater;
                }
                Err(TargetError::Lookup(reason) | TargetError::Refused(reason)) => {
                    refuse_directly(bridge, &action, seq, &reason).await;
                    return Progress::Done;
                }
            }
        }
        (_, None) => return Progress::Done,
    };
    let mut known = bridge.with_engine(|e| e.incident(&action.incident).map(known_incident));
    if known.is_none() {
        // Idle incidents may be unloaded from memory; their stored state knows the same facts.
        let id = action.incident.clone();
        known = read(bridge, move |tx| tx.incident(&id))
            .await
            .flatten()
            .and_then(|r| r.state.decode::<IncidentState>().ok())
            .as_ref()
            .map(known_incident);
    }
    let resolved = bridge
        .identity
        .actor(ActorRequest {
            slack_user: &action.user,
            team: action.team.as_ref(),
            channel: action.channel.as_ref(),
            kind: &kind,
            incident: &action.incident,
            known,
            now_ms: now,
        })
        .await;
    if let Some(why) = &resolved.lookup_failed
        && may_retry
    {
        tracing::warn!(%why, seq, "could not look up the clicker; retrying");
        if tell {
            tell_retrying(bridge, &action).await;
        }
        return Progress::RetryLater;
    }
    if resolved.unmapped.is_some() {
        bridge.metrics.unmapped_user();
        bridge.metrics.action(name, "unmapped");
    } else if resolved.verdict == Verdict::Refused {
        bridge.metrics.action(name, "denied");
    }
    let audit = AuditEntry {
        at: now,
        slack_user: action.user.clone(),
        pd_user: resolved.pd_user.clone(),
        action: name.to_owned(),
        incident_id: Some(action.incident.clone()),
        decision: resolved.decision.clone(),
        pd_result: None,
    };
    let unmapped = resolved.unmapped.clone();
    let input = Input::SlackAction(SlackAction {
        key: action.key.clone(),
        actor: resolved.actor,
        incident: action.incident.clone(),
        kind,
        channel: action.channel.clone(),
    });
    let user = action.user.clone();
    let result = bridge
        .apply(input, move |tx, now| {
            tx.mark_action_processed(seq, now)?;
            tx.append_audit(&audit)?;
            if let Some(reason) = &unmapped {
                tx.note_unmapped(&user, reason, now)?;
            }
            Ok(())
        })
        .await;
    if let Err(err) = result {
        tracing::error!(%err, seq, "processing a Slack action failed; it stays in the inbox");
        return Progress::RetryLater;
    }
    Progress::Done
}

/// Tells the clicker that their action waits for Slack or PagerDuty to answer a lookup.
async fn tell_retrying(bridge: &Bridge, action: &StoredAction) {
    let Some(channel) = &action.channel else {
        return;
    };
    let text = format!(
        "pdbridge could not reach Slack or PagerDuty to check who you are; your {} will be retried for up to {} minutes.",
        action.kind.name().replace('_', " "),
        LOOKUP_RETRY_WINDOW_MS / 60_000
    );
    if let Err(err) = ephemeral(bridge, channel, &action.user, &text).await {
        tracing::warn!(%err, "telling the user about a retry failed");
    }
}

/// Refuses an action that cannot reach the engine (a reassignment target without a PagerDuty
/// user): audits it, marks it processed and tells the clicker.
async fn refuse_directly(bridge: &Bridge, action: &StoredAction, seq: i64, reason: &str) {
    let audit = AuditEntry {
        at: bridge.now_ms(),
        slack_user: action.user.clone(),
        pd_user: None,
        action: action.kind.name().to_owned(),
        incident_id: Some(action.incident.clone()),
        decision: Verdict::Refused.audit(reason),
        pd_result: None,
    };
    let now = bridge.now_ms();
    let result = write(bridge, move |tx| {
        tx.mark_action_processed(seq, now)?;
        tx.append_audit(&audit)
    })
    .await;
    if let Err(err) = result {
        tracing::error!(err = %err.0, seq, "recording a refused action failed");
        return;
    }
    bridge.metrics.action(action.kind.name(), "denied");
    if let Some(channel) = &action.channel {
        let msg = PostEphemeral {
            channel: channel.clone(),
            user: action.user.clone(),
            text: format!("Reassign failed: {reason}"),
            blocks: Vec::new(),
            thread_ts: None,
        };
        if let Err(err) = bridge.slack.post_ephemeral(&msg).await {
            tracing::warn!(%err, "telling the user about a refused reassignment failed");
        }
    }
}

/// The most effects carried out at once (each on its own task); further due effects stay in
/// the outbox, unclaimed, until one finishes.
pub const MAX_IN_FLIGHT: usize = 64;
/// How many of those slots PagerDuty calls have to themselves. Slack calls may wait a long
/// time for Slack's limits (`chat.update` allows 50 a minute per workspace), and without a
/// budget of their own, PagerDuty calls (clicks) would wait behind them for a free slot.
pub const PAGERDUTY_IN_FLIGHT: usize = 16;
/// How often, at most, the outbox depth and age metrics are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Claims and carries out due effects until `shutdown` turns true. At most [`MAX_IN_FLIGHT`]
/// effects run at once, an effect still running is never started a second time (even when its
/// lease ran out), and the store is not asked again sooner than its last claim took, so a large
/// backlog never keeps the store busy.
pub async fn dispatch_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    let pd_slots = Arc::new(tokio::sync::Semaphore::new(PAGERDUTY_IN_FLIGHT));
    let slack_slots = Arc::new(tokio::sync::Semaphore::new(
        MAX_IN_FLIGHT - PAGERDUTY_IN_FLIGHT,
    ));
    let running: Arc<Mutex<BTreeSet<store::EffectId>>> = Arc::default();
    let mut last_stats: Option<tokio::time::Instant> = None;
    loop {
        let now = bridge.now_ms();
        let pd_room = pd_slots.available_permits().min(BATCH);
        let slack_room = slack_slots.available_permits().min(BATCH);
        let mut wait = IDLE;
        if pd_room + slack_room > 0 {
            let started = crate::clock::tokio_instant();
            let claimed = write(&bridge, move |tx| {
                let pd = store::RateKey::new(crate::bridge::PAGERDUTY_RATE_KEY);
                let mut rows = Vec::new();
                let mut full = false;
                for (room, buckets) in [
                    (pd_room, store::Buckets::Only(&pd)),
                    (slack_room, store::Buckets::Except(&pd)),
                ] {
                    if room > 0 {
                        let claimed = tx.claim_due_in(now, room, buckets)?;
                        full |= claimed.len() >= room;
                        rows.extend(claimed);
                    }
                }
                // Read on the write connection in the same transaction: its page cache is
                // warm, where the read connection's is dropped after every commit.
                let next_due = if full { None } else { tx.next_due_at(now)? };
                Ok::<_, store::Error>((rows, full, next_due))
            })
            .await;
            let took = started.elapsed();
            match claimed {
                Ok((rows, full, next_due)) => {
                    for row in rows {
                        let fresh = running
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(row.id.clone());
                        if !fresh {
                            continue;
                        }
                        let slots = if row.rate_key.as_str() == crate::bridge::PAGERDUTY_RATE_KEY {
                            &pd_slots
                        } else {
                            &slack_slots
                        };
                        let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
                            running
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&row.id);
                            break;
                        };
                        let bridge = Arc::clone(&bridge);
                        let running = Arc::clone(&running);
                        tokio::spawn(async move {
                            let id = row.id.clone();
                            execute(&bridge, row).await;
                            running
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&id);
                            drop(slot);
                            bridge.dispatch_wake.notify_one();
                        });
                    }
                    if full {
                        // More may be due: go again once the store had its rest (below).
                        wait = Duration::ZERO;
                    } else {
                        wait = next_due
                            .map(|due| {
                                Duration::from_millis(u64::try_from(due - now).unwrap_or(0).max(5))
                            })
                            .unwrap_or(IDLE)
                            .min(IDLE);
                    }
                }
                Err(err) => tracing::error!(err = %err.0, "claiming outbox effects failed"),
            }
            // Never claim again sooner than the last claim took.
            let pause = took.min(Duration::from_millis(100));
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        if last_stats.is_none_or(|t| t.elapsed() >= STATS_EVERY) {
            last_stats = Some(crate::clock::tokio_instant());
            let stats = read(&bridge, move |tx| tx.outbox_backlog(now))
                .await
                .unwrap_or_default();
            bridge.metrics.set_outbox(
                stats.depth,
                stats.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
            );
        }
        tokio::select! {
            () = bridge.dispatch_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

async fn execute(bridge: &Bridge, row: OutboxRow) {
    let effect: Effect = match row.payload.decode() {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(%err, id = %row.id, "undecodable effect; abandoning it");
            let (id, now) = (row.id.clone(), bridge.now_ms());
            let _ = write(bridge, move |tx| tx.abandon(&id, now, "undecodable effect")).await;
            return;
        }
    };
    let Some(effect_id) = effect.id().cloned() else {
        let (id, now) = (row.id.clone(), bridge.now_ms());
        let _ = write(bridge, move |tx| tx.complete(&id, now)).await;
        return;
    };
    // A mutation the engine no longer awaits (its action completed through the echo, failed,
    // timed out or was refused because the incident resolved meanwhile) must not run late: it
    // could undo a newer change made in PagerDuty. Checked right before sending.
    if !bridge.with_engine(|e| mutation_may_go(e, &effect)) {
        tracing::info!(id = %effect_id, "skipping a mutation the engine no longer awaits");
        let (id, now) = (row.id.clone(), bridge.now_ms());
        let _ = write(bridge, move |tx| tx.complete(&id, now)).await;
        return;
    }
    let mut effect = effect;
    if row.attempts > 0 {
        // The engine's effects are completed after every attempt, so an earlier attempt that
        // never recorded its outcome was cut off (a restart, see `Tx::release_claims`, or a
        // failed commit): it may have reached Slack or PagerDuty.
        look_first_since(&mut effect, Timestamp::from_millis(row.created_at));
    }
    let outcome = perform(bridge, &effect).await;
    if matches!(effect, Effect::Ephemeral { .. }) {
        // Replies are not the engine's: the outbox row itself waits and retries.
        let (id, now) = (row.id.clone(), bridge.now_ms());
        let next = reply_retry(bridge.engine_config(), row.attempts, &outcome);
        let result = write(bridge, move |tx| match next {
            ReplyNext::Done => tx.complete(&id, now),
            ReplyNext::Retry { after, error } => {
                let due = now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
                tx.fail(&id, now, due, &error).map(|_| ())
            }
            ReplyNext::GiveUp { error } => tx.abandon(&id, now, &error),
        })
        .await;
        if let Err(err) = result {
            tracing::error!(err = %err.0, id = %row.id, "recording a reply's outcome failed; it will run again");
        }
        return;
    }
    if let (Effect::PostCard { card, .. }, Outcome::Permanent { .. }) = (&effect, &outcome) {
        // The engine answers a refused card with a minimal one; `pdbridge status` counts these
        // rows too (they are abandoned below).
        let kind = if card.minimal { "minimal" } else { "full" };
        bridge.metrics.card_post_failure(kind);
    }
    let audit = mutation_audit(bridge, &effect, &outcome);
    // The engine schedules retries itself (as new effects); the row records this attempt's
    // failure so `pdbridge status` can show it.
    let failure = match &outcome {
        Outcome::Retryable { error, .. } => Some((error.clone(), false)),
        Outcome::MaybeSent { error } => Some((format!("maybe sent: {error}"), false)),
        Outcome::RateLimited { retry_after } => {
            Some((format!("rate limited; retry after {retry_after:?}"), false))
        }
        Outcome::Permanent { error } => Some((error.clone(), true)),
        _ => None,
    };
    let id = row.id.clone();
    let result = bridge
        .apply(
            Input::EffectDone {
                id: effect_id,
                outcome,
            },
            move |tx, now| {
                match &failure {
                    Some((error, true)) => tx.abandon(&id, now, error)?,
                    Some((error, false)) => {
                        tx.fail(&id, now, now, error)?;
                        tx.complete(&id, now)?;
                    }
                    None => tx.complete(&id, now)?,
                }
                if let Some(a) = &audit {
                    tx.append_audit(a)?;
                }
                Ok(())
            },
        )
        .await;
    if let Err(err) = result {
        tracing::error!(%err, id = %row.id, "recording an effect's outcome failed; it will run again");
    }
}

/// False for a PagerDuty mutation that must not be sent now: the engine no longer awaits it,
/// or it would change (and so reopen) an incident the engine knows is resolved. Notes and
/// resolves may go to a resolved incident; every other effect may always go.
fn mutation_may_go(engine: &sync_core::Engine, effect: &Effect) -> bool {
    let Effect::PdMutation {
        id,
        incident,
        mutation,
        ..
    } = effect
    else {
        return true;
    };
    let resolved = engine
        .incident(incident)
        .is_some_and(IncidentState::is_resolved);
    let reopens = matches!(
        mutation,
        Mutation::Acknowledge | Mutation::Escalate { .. } | Mutation::Reassign { .. }
    );
    engine.awaits(id) && !(reopens && resolved)
}

/// What to do with an ephemeral reply's outbox row after an attempt.
#[derive(Debug, PartialEq, Eq)]
enum ReplyNext {
    Done,
    Retry { after: Duration, error: String },
    GiveUp { error: String },
}

/// The retry decision for an ephemeral reply whose row had failed `attempts` times before this
/// attempt: the engine's backoff and attempt limit; a rate limit always waits its turn.
fn reply_retry(config: &EngineConfig, attempts: u32, outcome: &Outcome) -> ReplyNext {
    match outcome {
        Outcome::RateLimited { retry_after } => ReplyNext::Retry {
            after: *retry_after,
            error: format!("rate limited; retry after {retry_after:?}"),
        },
        Outcome::MaybeSent { error } => reply_retry(
            config,
            attempts,
            &Outcome::Retryable {
                error: error.clone(),
                retry_after: None,
            },
        ),
        Outcome::Retryable { error, retry_after } => {
            let failures = attempts.saturating_add(1);
            if failures >= config.max_attempts {
                ReplyNext::GiveUp {
                    error: format!("{error} (gave up after {failures} attempts)"),
                }
            } else {
                ReplyNext::Retry {
                    after: config.retry_delay(failures, *retry_after),
                    error: error.clone(),
                }
            }
        }
        Outcome::Permanent { error } => ReplyNext::GiveUp {
            error: error.clone(),
        },
        _ => ReplyNext::Done,
    }
}

fn mutation_audit(bridge: &Bridge, effect: &Effect, outcome: &Outcome) -> Option<AuditEntry> {
    let Effect::PdMutation {
        incident,
        actor,
        mutation,
        ..
    } = effect
    else {
        return None;
    };
    let (result, label) = match outcome {
        Outcome::PdIncident(_) | Outcome::Done => ("ok".to_owned(), "succeeded"),
        Outcome::AlreadyInState => ("already in that state".to_owned(), "succeeded"),
        Outcome::Retryable { error, .. } => (format!("retryable error: {error}"), "failed"),
        Outcome::MaybeSent { error } => (format!("maybe sent: {error}"), "failed"),
        Outcome::RateLimited { retry_after } => {
            (format!("rate limited for {retry_after:?}"), "failed")
        }
        Outcome::Permanent { error } => (format!("error: {error}"), "failed"),
        Outcome::Posted { .. } | Outcome::Levels(_) => ("ok".to_owned(), "succeeded"),
    };
    let name = mutation.verb().as_str();
    bridge.metrics.action(name, label);
    Some(AuditEntry {
        at: bridge.now_ms(),
        slack_user: actor.slack.clone(),
        pd_user: Some(actor.pd_user.clone()),
        action: name.to_owned(),
        incident_id: Some(incident.clone()),
        decision: "executed".to_owned(),
        pd_result: Some(result),
    })
}

fn pd_outcome(bridge: &Bridge, err: &pd_client::Error) -> Outcome {
    if err.status() == Some(429) {
        bridge.metrics.api_call("pagerduty", "rate_limited");
        return Outcome::RateLimited {
            retry_after: err.retry_after().unwrap_or(DEFAULT_RETRY_AFTER),
        };
    }
    bridge.metrics.api_call("pagerduty", "error");
    if err.was_sent().is_none() {
        return Outcome::MaybeSent {
            error: err.to_string(),
        };
    }
    if err.is_retryable() {
        Outcome::Retryable {
            error: err.to_string(),
            retry_after: err.retry_after(),
        }
    } else {
        Outcome::Permanent {
            error: err.to_string(),
        }
    }
}

fn slack_outcome(bridge: &Bridge, err: &slack_client::Error) -> Outcome {
    // Our own limiter refusing to queue longer is a delay, exactly like a 429: the engine waits
    // `wait` for this key instead of counting a failure and backing off for minutes.
    if let slack_client::Error::RateLimitedLocally { wait, .. } = err {
        bridge.metrics.api_call("slack", "rate_limited_locally");
        return Outcome::RateLimited { retry_after: *wait };
    }
    if let slack_client::Error::Api {
        status,
        code,
        retry_after,
        ..
    } = err
        && (*status == 429 || code.as_deref() == Some("ratelimited"))
    {
        bridge.metrics.api_call("slack", "rate_limited");
        return Outcome::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        };
    }
    bridge.metrics.api_call("slack", "error");
    if matches!(err, slack_client::Error::MaybeSent { .. }) {
        return Outcome::MaybeSent {
            error: err.to_string(),
        };
    }
    if err.is_retryable() {
        Outcome::Retryable {
            error: err.to_string(),
            retry_after: None,
        }
    } else {
        Outcome::Permanent {
            error: err.to_string(),
        }
    }
}

fn updated(bridge: &Bridge, result: Result<pd_client::Updated, pd_client::Error>) -> Outcome {
    match result {
        Ok(u) if u.already => {
            bridge.metrics.api_call("pagerduty", "ok");
            Outcome::AlreadyInState
        }
        Ok(u) => {
            bridge.metrics.api_call("pagerduty", "ok");
            match u.incident.as_ref().and_then(translate::rest_snapshot) {
                Some(snapshot) => Outcome::PdIncident(snapshot),
                None => Outcome::Done,
            }
        }
        Err(err) => pd_outcome(bridge, &err),
    }
}

/// Carries out one effect through the clients and says what happened.
pub async fn perform(bridge: &Bridge, effect: &Effect) -> Outcome {
    let slack_done = |r: Result<(), slack_client::Error>| match r {
        Ok(()) => {
            bridge.metrics.api_call("slack", "ok");
            Outcome::Done
        }
        Err(err) => slack_outcome(bridge, &err),
    };
    match effect {
        Effect::PostCard {
            channel,
            card,
            look_since,
            ..
        } => {
            if let Some(since) = look_since {
                match find_card(bridge, channel, &card.incident, *since).await {
                    Ok(Some(ts)) => {
                        tracing::info!(incident = %card.incident, %ts, "found the card an unanswered post made; not posting again");
                        return Outcome::Posted { ts };
                    }
                    Ok(None) => {}
                    Err(outcome) => return outcome,
                }
            }
            let m = render::card_with_mentions(card, &mentions(bridge, card).await);
            let mut post = PostMessage::new(channel.clone(), m.text, m.blocks);
            post.metadata = Some(card_metadata(&card.incident));
            match bridge.slack.post_message(&post).await {
                Ok(r) => {
                    bridge.metrics.api_call("slack", "ok");
                    Outcome::Posted { ts: r.ts }
                }
                Err(err) => slack_outcome(bridge, &err),
            }
        }
        Effect::UpdateCard {
            channel, ts, card, ..
        } => {
            let m = render::card_with_mentions(card, &mentions(bridge, card).await);
            let req = UpdateMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                text: m.text,
                blocks: m.blocks,
            };
            slack_done(bridge.slack.update_message(&req).await.map(|_| ()))
        }
        Effect::PostThread {
            channel,
            thread_ts,
            lines,
            ..
        } => {
            // Lines past one section's limit go out as several messages, in order. A failed
            // part is retried by the engine with every line, so the parts before it may repeat.
            for m in render::thread(lines) {
                let mut req = PostMessage::new(channel.clone(), m.text, m.blocks);
                req.thread_ts = Some(thread_ts.clone());
                if let Err(err) = bridge.slack.post_message(&req).await {
                    return slack_outcome(bridge, &err);
                }
                bridge.metrics.api_call("slack", "ok");
            }
            Outcome::Done
        }
        Effect::Ephemeral {
            channel,
            user,
            text,
            mentions,
            ..
        } => match channel {
            Some(channel) => {
                // Titles and PagerDuty error texts inside are escaped like channel text.
                let text = render::reply(text, mentions);
                slack_done(ephemeral(bridge, channel, user, &text).await)
            }
            None => {
                tracing::warn!(%user, "no channel to tell the user: {text}");
                Outcome::Done
            }
        },
        Effect::PdMutation {
            incident,
            actor,
            mutation,
            look_since,
            ..
        } => {
            let pd = &bridge.pd;
            let from = &actor.email;
            let checked = |r| from_checked(bridge, actor, r);
            match mutation {
                Mutation::Acknowledge => {
                    updated(bridge, checked(pd.acknowledge(incident, from).await).await)
                }
                Mutation::Resolve => updated(
                    bridge,
                    checked(pd.resolve(incident, from, None).await).await,
                ),
                Mutation::Escalate { level } => updated(
                    bridge,
                    checked(pd.escalate(incident, from, *level).await).await,
                ),
                Mutation::Reassign { to } => updated(
                    bridge,
                    checked(pd.reassign(incident, from, std::slice::from_ref(to)).await).await,
                ),
                Mutation::AddNote { content } => {
                    if let Some(since) = look_since {
                        match find_note(bridge, incident, &actor.pd_user, content, *since).await {
                            Ok(true) => {
                                tracing::info!(%incident, "found the note an unanswered request added; not adding it again");
                                return Outcome::Done;
                            }
                            Ok(false) => {}
                            Err(outcome) => return outcome,
                        }
                    }
                    match from_checked(bridge, actor, pd.add_note(incident, from, content).await)
                        .await
                    {
                        Ok(_) => {
                            bridge.metrics.api_call("pagerduty", "ok");
                            Outcome::Done
                        }
                        Err(err) => pd_outcome(bridge, &err),
                    }
                }
            }
        }
        Effect::PdRead {
            incident,
            read: PdRead::Incident,
            ..
        } => match bridge.pd.get_incident(incident, &[]).await {
            Ok(i) => {
                bridge.metrics.api_call("pagerduty", "ok");
                match translate::rest_snapshot(&i) {
                    Some(s) => Outcome::PdIncident(s),
                    None => Outcome::Permanent {
                        error: "PagerDuty reported an unknown incident status".to_owned(),
                    },
                }
            }
            Err(err) => pd_outcome(bridge, &err),
        },
        Effect::PdRead {
            incident,
            read: PdRead::EscalationLevels { policy },
            ..
        } => escalation_levels(bridge, incident, policy).await,
        Effect::Dropped { .. } => Outcome::Done,
    }
}

/// Passes a mutation's result through, first dropping the actor's cached mapping when
/// PagerDuty rejected the `From` user ([`crate::identity::Identity::forget_if_rejected`]).
async fn from_checked<T>(
    bridge: &Bridge,
    actor: &sync_core::MutationActor,
    result: Result<T, pd_client::Error>,
) -> Result<T, pd_client::Error> {
    if let Err(err) = &result {
        bridge.identity.forget_if_rejected(&actor.slack, err).await;
    }
    result
}

/// Makes a card post or a note look for an earlier attempt made since `since` before it is
/// sent (other effects are safe to repeat).
fn look_first_since(effect: &mut Effect, since: Timestamp) {
    match effect {
        Effect::PostCard { look_since, .. }
        | Effect::PdMutation {
            mutation: Mutation::AddNote { .. },
            look_since,
            ..
        } => {
            let at = look_since.map_or(since, |at| at.min(since));
            *look_since = Some(at);
        }
        _ => {}
    }
}

/// The metadata every card is posted with: [`CARD_EVENT_TYPE`] and the incident id.
fn card_metadata(incident: &IncidentId) -> MessageMetadata {
    MessageMetadata {
        event_type: CARD_EVENT_TYPE.to_owned(),
        event_payload: serde_json::json!({ "incident_id": incident.as_str() }),
    }
}

/// The start of a look for something first sent at `since` (the bridge's clock), as
/// milliseconds: [`LOOK_BACK_MARGIN_MS`] earlier.
fn look_start(since: Timestamp) -> i64 {
    since.as_millis().saturating_sub(LOOK_BACK_MARGIN_MS).max(0)
}

/// Looks for this incident's card in `channel` among the messages posted since shortly before
/// `since`, newest first, through at most [`LOOK_PAGES`] pages. An error is the outcome to
/// report: the post waits and looks again rather than risk a second card.
async fn find_card(
    bridge: &Bridge,
    channel: &ids::ChannelId,
    incident: &IncidentId,
    since: Timestamp,
) -> Result<Option<ids::MessageTs>, Outcome> {
    let start = look_start(since);
    let oldest = ids::MessageTs::new(format!("{}.{:06}", start / 1000, (start % 1000) * 1000));
    let mut cursor = None;
    for _ in 0..LOOK_PAGES {
        let req = ConversationHistory {
            oldest: Some(oldest.clone()),
            limit: Some(LOOK_PAGE_SIZE),
            cursor: cursor.take(),
            include_all_metadata: Some(true),
            ..ConversationHistory::new(channel.clone())
        };
        let page = match bridge.slack.conversation_history(&req).await {
            Ok(page) => page,
            Err(err) => {
                return Err(match slack_outcome(bridge, &err) {
                    limited @ Outcome::RateLimited { .. } => limited,
                    _ => Outcome::Retryable {
                        error: format!(
                            "could not look for a card an unanswered post may have made: {err}"
                        ),
                        retry_after: None,
                    },
                });
            }
        };
        bridge.metrics.api_call("slack", "ok");
        let found = page.messages.iter().find(|m| {
            m.metadata.as_ref().is_some_and(|meta| {
                meta.event_type == CARD_EVENT_TYPE
                    && meta.event_payload["incident_id"].as_str() == Some(incident.as_str())
            })
        });
        if let Some(message) = found {
            return Ok(Some(message.ts.clone()));
        }
        match page.next_cursor() {
            Some(next) if page.has_more => cursor = Some(next.to_owned()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Whether `user` already added a note with `content` (trimmed) to the incident since shortly
/// before `since`. An error is the outcome to report: the note waits rather than risk a second.
async fn find_note(
    bridge: &Bridge,
    incident: &IncidentId,
    user: &ids::PdUserId,
    content: &str,
    since: Timestamp,
) -> Result<bool, Outcome> {
    let notes = match bridge.pd.list_notes(incident).await {
        Ok(notes) => notes,
        Err(err) => return Err(pd_outcome(bridge, &err)),
    };
    bridge.metrics.api_call("pagerduty", "ok");
    let start = look_start(since);
    Ok(notes.iter().any(|note| {
        note.content.trim() == content.trim()
            && note
                .user
                .as_ref()
                .and_then(pd_client::rest::AgentReference::user_id)
                .is_some_and(|id| id == *user)
            && note
                .created_at
                .is_none_or(|at| translate::timestamp(at).as_millis() >= start)
    }))
}

/// The Slack users of the card's assignees (cached reverse mapping), or none when the lookup
/// takes longer than [`MENTIONS_TIMEOUT`]: the card then names them.
async fn mentions(bridge: &Bridge, card: &sync_core::CardView) -> render::Mentions {
    let users: Vec<ids::PdUserId> = card.assignees.iter().map(|a| a.id.clone()).collect();
    if users.is_empty() {
        return render::Mentions::new();
    }
    let lookup = bridge.identity.mentions(&users, bridge.now_ms());
    tokio::time::timeout(MENTIONS_TIMEOUT, lookup)
        .await
        .unwrap_or_else(|_| {
            tracing::debug!("assignee mentions timed out; naming them instead");
            render::Mentions::new()
        })
}

async fn ephemeral(
    bridge: &Bridge,
    channel: &ids::ChannelId,
    user: &SlackUserId,
    text: &str,
) -> Result<(), slack_client::Error> {
    let req = PostEphemeral {
        channel: channel.clone(),
        user: user.clone(),
        text: text.to_owned(),
        blocks: Vec::new(),
        thread_ts: None,
    };
    bridge.slack.post_ephemeral(&req).await.map(|_| ())
}

async fn escalation_levels(
    bridge: &Bridge,
    incident: &IncidentId,
    policy: &ids::EscalationPolicyId,
) -> Outcome {
    let ep = match bridge.pd.get_escalation_policy(policy).await {
        Ok(ep) => ep,
        Err(err) => return pd_outcome(bridge, &err),
    };
    let oncalls = match bridge.pd.list_oncalls(policy).await {
        Ok(o) => o,
        Err(err) => return pd_outcome(bridge, &err),
    };
    bridge.metrics.api_call("pagerduty", "ok");
    let assignees: Vec<ids::PdUserId> = bridge.with_engine(|e| {
        e.incident(incident)
            .and_then(IncidentState::snapshot)
            .map(|s| s.assignees.iter().map(|a| a.id.clone()).collect())
            .unwrap_or_default()
    });
    let current = oncalls
        .iter()
        .filter(|o| assignees.contains(&o.user.id))
        .map(|o| o.escalation_level)
        .min();
    Outcome::Levels(EscalationLevels {
        current,
        max: u32::try_from(ep.escalation_rules.len()).unwrap_or(u32::MAX),
    })
}

/// Sends [`Input::Tick`] whenever an engine timer comes due, until `shutdown` turns true.
pub async fn timer_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = bridge.now_ms();
        let next = bridge.next_timer();
        if let Some(at) = next
            && at.as_millis() <= now
        {
            if let Err(err) = bridge.apply(Input::Tick, |_, _| Ok(())).await {
                tracing::error!(%err, "engine tick failed");
            }
            // Never spin: a timer that stays due is retried after a short pause.
            if bridge
                .next_timer()
                .is_some_and(|t: Timestamp| t.as_millis() <= bridge.now_ms())
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        }
        let wait = next
            .map(|at| Duration::from_millis(u64::try_from(at.as_millis() - now).unwrap_or(0)))
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            () = bridge.timer_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Reconciles (and prunes expired dedupe rows) at start and then every `interval`, until
/// `shutdown` turns true.
pub async fn reconcile_loop(
    bridge: Arc<Bridge>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        reconcile_once(&bridge).await;
        // Dedupe keys older than the retention (7 days) and finished outbox rows go; unprocessed
        // inbox rows and pending effects never do.
        let unloaded = bridge.unload_idle_resolved() + bridge.unload_idle_over_limit();
        tracing::debug!(unloaded, "unloaded idle incidents from memory");
        let now = bridge.now_ms();
        match write(&bridge, move |tx| tx.prune(now)).await {
            Ok(report) => tracing::debug!(?report, "pruned the store"),
            Err(err) => tracing::warn!(err = %err.0, "pruning the store failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// One reconciliation pass: every open PagerDuty incident, plus every incident the engine or
/// the store still thinks needs it (open, or resolved with a card whose post failed
/// permanently, see [`IncidentState::needs_reconcile`]), is read and fed to the engine as
/// [`Input::Reconcile`].
pub async fn reconcile_once(bridge: &Bridge) {
    let as_of = Timestamp::from_millis(bridge.now_ms());
    let listing = match bridge.pd.list_open_incidents(100).await {
        Ok(l) => l,
        Err(err) => {
            pd_outcome(bridge, &err);
            tracing::warn!(%err, "reconciler could not list open incidents");
            return;
        }
    };
    bridge.metrics.api_call("pagerduty", "ok");
    let mut seen = BTreeSet::new();
    for incident in &listing.items {
        seen.insert(incident.id.clone());
        feed_reconcile(bridge, incident, as_of).await;
    }
    let mut stale: BTreeSet<IncidentId> = bridge.with_engine(|e| {
        e.incidents()
            .filter(|s| {
                s.snapshot().is_some() && s.needs_reconcile(as_of) && !seen.contains(s.id())
            })
            .map(|s| s.id().clone())
            .collect()
    });
    // Idle incidents may be unloaded from memory: the store knows which ones still need it.
    let stored_open = read(bridge, |tx| tx.open_incident_ids())
        .await
        .unwrap_or_default();
    stale.extend(stored_open.into_iter().filter(|id| !seen.contains(id)));
    for id in stale {
        let as_of = Timestamp::from_millis(bridge.now_ms());
        match bridge.pd.get_incident(&id, &[]).await {
            Ok(incident) => {
                bridge.metrics.api_call("pagerduty", "ok");
                feed_reconcile(bridge, &incident, as_of).await;
            }
            Err(err) => {
                pd_outcome(bridge, &err);
                tracing::warn!(%err, incident = %id, "reconciler could not read an incident");
            }
        }
    }
}

async fn feed_reconcile(bridge: &Bridge, incident: &pd_client::rest::Incident, as_of: Timestamp) {
    let Some(snapshot) = translate::rest_snapshot(incident) else {
        return;
    };
    // Ordered against webhooks on PagerDuty's clock (`updated_at`, the answer's `Date`); the
    // bridge's send time stands in only when PagerDuty gave no time at all.
    let as_of = snapshot.as_of.unwrap_or(as_of);
    // A card the reconciler must (re)post goes where the incident's trigger would have sent it.
    let target_channel = translate::route_channel(
        &bridge.config,
        Some(&snapshot),
        Some(translate::RECONCILED_EVENT_TYPE),
    );
    let input = Input::Reconcile {
        snapshot,
        as_of,
        target_channel,
    };
    if let Err(err) = bridge.apply(input, |_, _| Ok(())).await {
        tracing::error!(%err, "feeding a reconciled incident failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EngineConfig {
        EngineConfig {
            retry_backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            max_attempts: 3,
            ..EngineConfig::default()
        }
    }

    fn retryable(retry_after: Option<Duration>) -> Outcome {
        Outcome::Retryable {
            error: "HTTP 503".into(),
            retry_after,
        }
    }

    /// An incident snapshot with `status`.
    fn incident(status: sync_core::Status) -> sync_core::IncidentSnapshot {
        sync_core::IncidentSnapshot {
            id: IncidentId::new("PQ1K5C8"),
            number: Some(1),
            title: "Disk full".into(),
            html_url: None,
            status,
            urgency: None,
            priority: None,
            service: None,
            teams: Vec::new(),
            escalation_policy: None,
            assignees: Vec::new(),
            as_of: None,
        }
    }

    fn event(id: &str, at: i64, status: sync_core::Status) -> Input {
        let event_type = match status {
            sync_core::Status::Resolved => sync_core::IncidentEventType::Resolved,
            _ => sync_core::IncidentEventType::Triggered,
        };
        Input::PdEvent(sync_core::PdEvent {
            event_id: ids::EventId::new(id),
            webhook_id: None,
            occurred_at: Timestamp::from_millis(at),
            incident: IncidentId::new("PQ1K5C8"),
            incident_title: None,
            agent: None,
            kind: sync_core::PdEventKind::Incident {
                event_type,
                data: incident(status),
            },
            target_channel: Some(ids::ChannelId::new("C1")),
        })
    }

    #[test]
    fn a_put_queued_before_a_resolve_is_not_sent_after_it() {
        // Issue 17 item 5, at the dispatcher: the acknowledge passed its fresh read, then the
        // resolved webhook was applied before the dispatcher got to the PUT.
        let mut engine = sync_core::Engine::new(config()).unwrap();
        let _ = engine.handle(
            Timestamp::from_millis(1_000),
            event("E1", 1_000, sync_core::Status::Triggered),
        );
        let effects = engine.handle(
            Timestamp::from_millis(2_000),
            Input::SlackAction(SlackAction {
                key: sync_core::ActionKey::new("1.1", &SlackUserId::new("U1"), "acknowledge"),
                actor: sync_core::Actor::Mapped {
                    slack: SlackUserId::new("U1"),
                    pd_user: ids::PdUserId::new("P1"),
                    email: ids::Email::new("a@example.com"),
                    authorized: Ok(()),
                },
                incident: IncidentId::new("PQ1K5C8"),
                kind: ActionKind::Acknowledge,
                channel: Some(ids::ChannelId::new("C1")),
            }),
        );
        let read = effects
            .iter()
            .find(|e| matches!(e, Effect::PdRead { .. }))
            .and_then(Effect::id)
            .cloned()
            .expect("a fresh read");
        let effects = engine.handle(
            Timestamp::from_millis(2_100),
            Input::EffectDone {
                id: read,
                outcome: Outcome::PdIncident(incident(sync_core::Status::Triggered)),
            },
        );
        let put = effects
            .into_iter()
            .find(|e| matches!(e, Effect::PdMutation { .. }))
            .expect("the PUT");
        assert!(mutation_may_go(&engine, &put));
        let _ = engine.handle(
            Timestamp::from_millis(2_200),
            event("E2", 2_150, sync_core::Status::Resolved),
        );
        assert!(!mutation_may_go(&engine, &put), "the PUT would reopen it");
        // Other effects are never held back.
        let read = Effect::PdRead {
            id: sync_core::EffectId::from_stored("PQ1K5C8/x"),
            incident: IncidentId::new("PQ1K5C8"),
            read: PdRead::Incident,
        };
        assert!(mutation_may_go(&engine, &read));
    }

    #[test]
    fn a_reply_retries_with_backoff_then_gives_up_after_the_attempt_limit() {
        let cfg = config();
        assert_eq!(reply_retry(&cfg, 0, &Outcome::Done), ReplyNext::Done);
        let retry = |after: u64| ReplyNext::Retry {
            after: Duration::from_secs(after),
            error: "HTTP 503".into(),
        };
        assert_eq!(reply_retry(&cfg, 0, &retryable(None)), retry(1));
        assert_eq!(reply_retry(&cfg, 1, &retryable(None)), retry(5));
        // Slack's Retry-After wins over a shorter backoff.
        let after = Some(Duration::from_secs(30));
        assert_eq!(reply_retry(&cfg, 0, &retryable(after)), retry(30));
        assert_eq!(
            reply_retry(&cfg, 2, &retryable(None)),
            ReplyNext::GiveUp {
                error: "HTTP 503 (gave up after 3 attempts)".into()
            }
        );
    }

    #[test]
    fn a_rate_limited_reply_waits_without_giving_up_and_a_permanent_error_ends_it() {
        let cfg = config();
        let limited = Outcome::RateLimited {
            retry_after: Duration::from_secs(7),
        };
        assert!(matches!(
            reply_retry(&cfg, 10, &limited),
            ReplyNext::Retry { after, .. } if after == Duration::from_secs(7)
        ));
        let permanent = Outcome::Permanent {
            error: "channel_not_found".into(),
        };
        assert_eq!(
            reply_retry(&cfg, 0, &permanent),
            ReplyNext::GiveUp {
                error: "channel_not_found".into()
            }
        );
    }
}
