//! The dispatcher: claims due outbox effects (the store keeps per-incident FIFO: the next effect
//! of an incident is claimable only once the previous one completed), carries each out through
//! [`crate::perform`] on its own task, and feeds the outcome back to the engine in the same
//! transaction that completes the row. It is woken right after every commit. At most
//! [`MAX_IN_FLIGHT`] effects run at once (the rest wait in the outbox, unclaimed), and a claim
//! is never repeated sooner than the last one took, so a large backlog neither grows memory nor
//! keeps the store busy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use store::{AuditEntry, OutboxRow};
use sync_core::{Effect, EngineConfig, IncidentState, Input, Mutation, Outcome};
use tokio::sync::watch;

use crate::bridge::Bridge;
use ids::ChannelId;
use store::{OrderKey, RateKey};

use crate::perform::{look_first_since, perform};
use crate::runtime::{BATCH, IDLE, read, stopped, write};

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
        let now = bridge.now();
        let pd_room = pd_slots.available_permits().min(BATCH);
        let slack_room = slack_slots.available_permits().min(BATCH);
        let mut wait = IDLE;
        if pd_room + slack_room > 0 {
            let started = crate::clock::tokio_instant();
            let claimed = write(&bridge, move |tx| {
                let pd = store::RateKey::new(PAGERDUTY_RATE_KEY);
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
                        let slots = if row.rate_key.as_str() == PAGERDUTY_RATE_KEY {
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
                            bridge.ctx.dispatch_wake.notify_one();
                        });
                    }
                    if full {
                        // More may be due: go again once the store had its rest (below).
                        wait = Duration::ZERO;
                    } else {
                        wait = next_due
                            .map(|due| due.duration_since(now).max(Duration::from_millis(5)))
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
            bridge.ctx.metrics.set_outbox(
                stats.depth,
                stats.oldest_age.unwrap_or_default().as_secs_f64(),
            );
        }
        tokio::select! {
            () = bridge.ctx.dispatch_wake.notified() => {}
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
            let (id, now) = (row.id.clone(), bridge.now());
            let _ = write(bridge, move |tx| tx.abandon(&id, now, "undecodable effect")).await;
            return;
        }
    };
    let Some(effect_id) = effect.id().cloned() else {
        let (id, now) = (row.id.clone(), bridge.now());
        let _ = write(bridge, move |tx| tx.complete(&id, now)).await;
        return;
    };
    // A mutation the engine no longer awaits (its action completed through the echo, failed,
    // timed out or was refused because the incident resolved meanwhile) must not run late: it
    // could undo a newer change made in PagerDuty. Checked right before sending.
    if !bridge.with_engine(|e| mutation_may_go(e, &effect)) {
        tracing::info!(id = %effect_id, "skipping a mutation the engine no longer awaits");
        let (id, now) = (row.id.clone(), bridge.now());
        let _ = write(bridge, move |tx| tx.complete(&id, now)).await;
        return;
    }
    let mut effect = effect;
    if row.attempts > 0 {
        // The engine's effects are completed after every attempt, so an earlier attempt that
        // never recorded its outcome was cut off (a restart, see `Tx::release_claims`, or a
        // failed commit): it may have reached Slack or PagerDuty.
        look_first_since(&mut effect, row.created_at);
    }
    let outcome = perform(bridge, &effect).await;
    if matches!(effect, Effect::Ephemeral { .. }) {
        // Replies are not the engine's: the outbox row itself waits and retries.
        let (id, now) = (row.id.clone(), bridge.now());
        let next = reply_retry(bridge.engine_config(), row.attempts, &outcome);
        let result = write(bridge, move |tx| match next {
            ReplyNext::Done => tx.complete(&id, now),
            ReplyNext::Retry { after, error } => {
                let due = now.saturating_add(after);
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
        bridge.ctx.metrics.card_post_failure(kind);
    }
    if let (Effect::PostThread { lines, .. }, Outcome::Done) = (&effect, &outcome) {
        // Counted once the breach line is in Slack, so a retried post is not counted twice.
        bridge.ctx.metrics.sla_breaches(lines);
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
    // These would reopen a resolved incident, or act on one that takes no more actions.
    let stale_once_resolved = matches!(
        mutation,
        Mutation::Acknowledge
            | Mutation::Escalate { .. }
            | Mutation::Reassign { .. }
            | Mutation::ChangeUrgency { .. }
            | Mutation::Snooze { .. }
            | Mutation::ChangePriority { .. }
    );
    engine.awaits(id) && !(stale_once_resolved && resolved)
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
    bridge.ctx.metrics.action(name, label);
    Some(AuditEntry {
        at: bridge.now(),
        slack_user: actor.slack.clone(),
        pd_user: Some(actor.pd_user.clone()),
        action: name.to_owned(),
        incident_id: Some(incident.clone()),
        decision: "executed".to_owned(),
        pd_result: Some(result),
    })
}

/// The FIFO lane of an effect: one per incident and platform. Slack effects of an incident
/// keep their order (post before update, updates in order) and PagerDuty calls keep theirs,
/// but a Slack 429 on a card never holds up that incident's PagerDuty call, nor the reverse;
/// the engine itself sequences what depends on an outcome. Ephemeral replies answer one click
/// and depend on nothing else, so each click's replies have a lane of their own: a burst of
/// clicks on one card is answered in parallel, never queued behind that card's updates.
pub(crate) fn order_key(effect: &Effect) -> OrderKey {
    let incident = effect
        .incident()
        .map(|i| i.as_str().to_owned())
        .unwrap_or_default();
    match effect {
        Effect::PdMutation { .. } | Effect::PdRead { .. } => {
            OrderKey::new(format!("{incident}/pagerduty"))
        }
        Effect::Ephemeral { action, .. } => {
            OrderKey::new(format!("{incident}/ephemeral/{}", action.as_str()))
        }
        _ => OrderKey::new(format!("{incident}/slack")),
    }
}

/// The rate-limit bucket of an effect: Slack per channel, PagerDuty per token.
/// The one rate-limit bucket of every PagerDuty call (the client keeps the account's budget).
pub(crate) const PAGERDUTY_RATE_KEY: &str = "pagerduty";

pub(crate) fn rate_key(effect: &Effect) -> RateKey {
    match effect {
        Effect::PostCard { channel, .. }
        | Effect::UpdateCard { channel, .. }
        | Effect::PostThread { channel, .. } => RateKey::new(format!("slack:{channel}")),
        Effect::Ephemeral { channel, .. } => RateKey::new(format!(
            "slack:{}",
            channel.as_ref().map_or("ephemeral", ChannelId::as_str)
        )),
        Effect::PdMutation { .. } | Effect::PdRead { .. } => RateKey::new(PAGERDUTY_RATE_KEY),
        Effect::Dropped { .. } => RateKey::new("none"),
    }
}

#[cfg(test)]
mod tests {
    use ids::{IncidentId, SlackUserId};
    use sync_core::{ActionKind, PdRead, SlackAction, Timestamp};

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
            change_key: None,
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
        // resolved webhook was applied before the dispatcher got to the PUT. The same holds
        // for the More actions' urgency change.
        for kind in [
            ActionKind::Acknowledge,
            ActionKind::ChangeUrgency(sync_core::Urgency::Low),
        ] {
            held_back_once_resolved(kind);
        }
    }

    fn held_back_once_resolved(kind: ActionKind) {
        let mut engine = sync_core::Engine::new(config()).unwrap();
        let _ = engine.handle(
            Timestamp::from_millis(1_000),
            event("E1", 1_000, sync_core::Status::Triggered),
        );
        let effects = engine.handle(
            Timestamp::from_millis(2_000),
            Input::SlackAction(SlackAction {
                key: sync_core::ActionKey::new("1.1", &SlackUserId::new("U1"), kind.name()),
                actor: sync_core::Actor::Mapped {
                    slack: SlackUserId::new("U1"),
                    pd_user: ids::PdUserId::new("P1"),
                    email: ids::Email::new("a@example.com"),
                    authorized: Ok(()),
                },
                incident: IncidentId::new("PQ1K5C8"),
                kind: kind.clone(),
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
