//! The inbox processor: replays unprocessed webhooks in arrival order and resolves unprocessed
//! Slack actions (identity and policy, which may call the APIs) before handing them to the
//! engine through the writer; rows are marked processed in the same transaction as the engine's
//! result, so a crash replays them. Webhooks are drained in batches queued at once
//! ([`Bridge::apply_all`]), so they share the writer's group commits.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use identity::IncidentFacts;
use pd_client::webhook::WebhookEnvelope;
use slack_client::api::PostEphemeral;
use store::{ActionRow, AuditEntry, WebhookRow};
use sync_core::{ActionKind, IncidentState, Input, SlackAction};
use tokio::sync::watch;

use crate::bridge::Bridge;
use crate::identity::{ActorRequest, KnownIncident, TargetError, Verdict};
use crate::intake::{StoredAction, StoredKind};
use crate::perform::ephemeral;
use crate::runtime::{BATCH, IDLE, read, stopped, write};
use crate::translate;

/// How long a Slack action whose clicker could not be looked up (Slack or PagerDuty down) is
/// retried before it is refused.
const LOOKUP_RETRY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The pause between two lookup retries of one action.
const LOOKUP_RETRY_PAUSE: Duration = Duration::from_secs(2);

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
                    bridge.ctx.inbox_wake.notify_one();
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
            () = bridge.ctx.inbox_wake.notified() => {}
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
        // The request's own parse, when the writer kept it; the stored body otherwise.
        let input = bridge.writer().take_parsed(seq).or_else(|| {
            WebhookEnvelope::from_slice(row.payload.as_bytes())
                .ok()
                .and_then(|env| translate::pd_event(&bridge.ctx.config, &env.event, row.webhook_id))
                .map(Input::PdEvent)
        });
        let Some(input) = input else {
            // Not an event the engine takes: it is only marked processed.
            let now = bridge.now();
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
        inputs.push((input, extra));
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
        StoredKind::Urgency { to } => Some(ActionKind::ChangeUrgency(*to)),
        StoredKind::Snooze { minutes } => Some(ActionKind::Snooze(*minutes)),
        StoredKind::Priority { to } => Some(ActionKind::ChangePriority {
            to: to.clone(),
            from: None,
        }),
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
            let now = bridge.now();
            let _ = write(bridge, move |tx| tx.mark_action_processed(seq, now)).await;
            return Progress::Done;
        }
    };
    let now = bridge.now();
    let may_retry = now.duration_since(received_at) < LOOKUP_RETRY_WINDOW;
    let name = action.kind.name();
    let kind = match (&action.kind, engine_kind(&action.kind)) {
        (_, Some(kind)) => kind,
        (StoredKind::Reassign { to }, None) => {
            match bridge
                .ctx
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
        .ctx
        .identity
        .actor(ActorRequest {
            slack_user: &action.user,
            team: action.team.as_ref(),
            channel: action.channel.as_ref(),
            kind: &kind,
            incident: &action.incident,
            known,
            now,
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
        bridge.ctx.metrics.unmapped_user();
        bridge.ctx.metrics.action(name, "unmapped");
    } else if resolved.verdict == Verdict::Refused {
        bridge.ctx.metrics.action(name, "denied");
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
        LOOKUP_RETRY_WINDOW.as_secs() / 60
    );
    if let Err(err) = ephemeral(bridge, channel, &action.user, &text).await {
        tracing::warn!(%err, "telling the user about a retry failed");
    }
}

/// Refuses an action that cannot reach the engine (a reassignment target without a PagerDuty
/// user): audits it, marks it processed and tells the clicker.
async fn refuse_directly(bridge: &Bridge, action: &StoredAction, seq: i64, reason: &str) {
    let audit = AuditEntry {
        at: bridge.now(),
        slack_user: action.user.clone(),
        pd_user: None,
        action: action.kind.name().to_owned(),
        incident_id: Some(action.incident.clone()),
        decision: Verdict::Refused.audit(reason),
        pd_result: None,
    };
    let now = bridge.now();
    let result = write(bridge, move |tx| {
        tx.mark_action_processed(seq, now)?;
        tx.append_audit(&audit)
    })
    .await;
    if let Err(err) = result {
        tracing::error!(err = %err.0, seq, "recording a refused action failed");
        return;
    }
    bridge.ctx.metrics.action(action.kind.name(), "denied");
    if let Some(channel) = &action.channel {
        let msg = PostEphemeral {
            channel: channel.clone(),
            user: action.user.clone(),
            text: format!("Reassign failed: {reason}"),
            blocks: Vec::new(),
            thread_ts: None,
        };
        if let Err(err) = bridge.ctx.slack.post_ephemeral(&msg).await {
            tracing::warn!(%err, "telling the user about a refused reassignment failed");
        }
    }
}
