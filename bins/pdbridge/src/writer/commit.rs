//! The writer thread: group commit, the engine's restore and the checkpointer.

use std::collections::BTreeSet;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use anyhow::Context as _;
use ids::IncidentId;
use store::{IncidentRecord, InsertOutcome, NewEffect, Store};
use sync_core::{Effect, Engine, EngineConfig, EngineSnapshot, IncidentState, Input, Timestamp};

use super::*;
use crate::clock;
use crate::dispatch::{order_key, rate_key};

impl Writer {
    /// Handles a group of jobs and commits them together (the writer thread's work): inbox
    /// records are inserted and engine inputs handled in order, all in one transaction. With
    /// `inline`, new PagerDuty deliveries are processed in that transaction too
    /// ([`Then::Process`]). On a failure the engine is reloaded and a group of several is
    /// retried one job at a time, without `inline` (the inbox loop processes those deliveries).
    fn commit_group(&self, jobs: Vec<Job>, inline: bool) {
        let now = self.ctx.now();
        let inputs: Vec<&InputJob> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Input(i) => Some(&**i),
                Job::Record(_) => None,
            })
            .collect();
        let mut handled: Vec<Handled> = Vec::with_capacity(inputs.len());
        // Idle incidents are unloaded from memory; read the ones these inputs name back from
        // the store (without the engine lock), so a late event still meets the state it must
        // not undo. Only this thread changes incident states, so nothing moves meanwhile.
        let mut failure = None;
        let mut reloaded = Vec::new();
        for job in &inputs {
            let Some(id) = job.input.incident() else {
                continue;
            };
            if self.with_engine(|e| e.incident(&id).is_some()) {
                continue;
            }
            match self.stored_state(&id) {
                Ok(Some(state)) => reloaded.push(state),
                Ok(None) => {}
                Err(err) => failure = Some(err),
            }
        }
        if failure.is_none() && !inputs.is_empty() {
            let mut engine = self.engine();
            for state in reloaded {
                if engine.incident(state.id()).is_none() {
                    engine.load_incident(state);
                }
            }
            for job in &inputs {
                match handle(&mut engine, job.input.clone(), now) {
                    Ok(h) => handled.push(h),
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
            }
        }
        let mut processed_inline = false;
        let mut marked_inline = 0;
        let result = match failure {
            Some(err) => Err(err),
            None => self.ctx.store.write(|tx| {
                let mut outcomes = Vec::new();
                for job in &jobs {
                    if let Job::Record(r) = job {
                        outcomes.push((r.record)(tx)?);
                    }
                }
                for (job, (effects, records)) in inputs.iter().zip(&handled) {
                    (job.extra)(tx, now)?;
                    for r in records {
                        tx.put_incident(r)?;
                    }
                    for effect in effects {
                        enqueue(tx, effect, now)?;
                    }
                }
                if inline {
                    marked_inline = self.process_new_webhooks(
                        tx,
                        &jobs,
                        &outcomes,
                        now,
                        &mut processed_inline,
                    )?;
                }
                Ok::<_, anyhow::Error>(outcomes)
            }),
        };
        let had_inputs = !inputs.is_empty() || processed_inline;
        drop(inputs);
        match result {
            Ok(outcomes) => {
                self.commit_groups.fetch_add(1, Ordering::Relaxed);
                let mut outcomes = outcomes.into_iter();
                let mut handled = handled.into_iter();
                let mut inserted = 0;
                let mut left = Vec::new();
                for job in jobs {
                    match job {
                        Job::Record(r) => {
                            let answer = outcomes.next().ok_or(WriteFailed::LostOutcome);
                            inserted += usize::from(answer.as_ref().is_ok_and(|o| o.is_inserted()));
                            // A delivery left to the inbox loop keeps its parsed input for it.
                            if let (Ok(InsertOutcome::Inserted(seq)), Then::Process(Some(input))) =
                                (&answer, r.then)
                                && marked_inline == 0
                            {
                                left.push((*seq, input));
                            }
                            let _ = r.done.send(answer);
                        }
                        Job::Input(i) => {
                            let (effects, _) = handled.next().unwrap_or_default();
                            for effect in &effects {
                                if let Effect::Dropped { incident, reason } = effect {
                                    tracing::debug!(?incident, ?reason, "input dropped");
                                }
                            }
                            let _ = i.done.send(Ok(effects));
                        }
                    }
                }
                if !left.is_empty() {
                    let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = PARSED_MAX.saturating_sub(parsed.len());
                    parsed.extend(left.into_iter().take(room));
                }
                // Only rows this group left unprocessed need the inbox loop.
                if inserted > marked_inline {
                    self.ctx.inbox_wake.notify_one();
                }
                if had_inputs {
                    self.ctx.dispatch_wake.notify_one();
                    self.ctx.timer_wake.notify_one();
                }
            }
            Err(err) => {
                tracing::error!(%err, jobs = jobs.len(), "commit failed; reloading the engine from the store");
                if had_inputs {
                    match load_engine(&self.ctx.store, &self.engine_config, now) {
                        Ok(restored) => *self.engine() = restored,
                        Err(reload) => tracing::error!(%reload, "reloading the engine failed"),
                    }
                }
                if jobs.len() == 1 {
                    let err = WriteFailed::Commit(err);
                    match jobs.into_iter().next() {
                        Some(Job::Input(i)) => {
                            let _ = i.done.send(Err(err));
                        }
                        Some(Job::Record(r)) => {
                            let _ = r.done.send(Err(err));
                        }
                        None => {}
                    }
                } else {
                    for job in jobs {
                        self.commit_group(vec![job], false);
                    }
                }
            }
        }
    }

    /// Processes the PagerDuty deliveries this group inserted ([`Then::Process`]) inside its
    /// transaction: each one's engine input runs and its effects, the touched incidents and the
    /// processed mark are written with the insert. Skipped while an older delivery waits in
    /// the inbox, so the engine sees deliveries in arrival order. Sets `ran` before the engine
    /// first changes, so a failed transaction reloads it. The engine lock is taken per input
    /// and never held across SQLite work. Returns how many rows it marked processed.
    fn process_new_webhooks(
        &self,
        tx: &mut store::Tx<'_>,
        jobs: &[Job],
        outcomes: &[InsertOutcome],
        now: Timestamp,
        ran: &mut bool,
    ) -> anyhow::Result<usize> {
        let records = jobs.iter().filter_map(|j| match j {
            Job::Record(r) => Some(r),
            Job::Input(_) => None,
        });
        let new: Vec<(i64, Option<&Input>)> = records
            .zip(outcomes)
            .filter_map(|(r, outcome)| match (&r.then, outcome) {
                (Then::Process(input), InsertOutcome::Inserted(seq)) => {
                    Some((*seq, input.as_deref()))
                }
                _ => None,
            })
            .collect();
        let Some(first) = new.first().map(|(seq, _)| *seq) else {
            return Ok(0);
        };
        if tx
            .oldest_unprocessed_webhook()?
            .is_some_and(|oldest| oldest < first)
        {
            return Ok(0);
        }
        let marked = new.len();
        for (seq, input) in new {
            if let Some(input) = input {
                if let Some(id) = input.incident()
                    && !self.with_engine(|e| e.incident(&id).is_some())
                    && let Some(stored) = tx.incident(&id)?
                {
                    let state: IncidentState = stored
                        .state
                        .decode()
                        .context("decoding an incident state")?;
                    *ran = true;
                    self.engine().load_incident(state);
                }
                *ran = true;
                let (effects, touched) = handle(&mut self.engine(), input.clone(), now)?;
                for r in &touched {
                    tx.put_incident(r)?;
                }
                for effect in &effects {
                    enqueue(tx, effect, now)?;
                }
            }
            tx.mark_webhook_processed(seq, now)?;
        }
        Ok(marked)
    }
}

/// Starts the checkpointer thread of a file database: it runs a passive checkpoint each time the
/// writer sends on the returned channel (requests that arrive while one runs are merged into the
/// next) and ends when the writer drops the sender. `None` for an in-memory database.
pub(super) fn spawn_checkpointer(store: &Store) -> anyhow::Result<Option<mpsc::SyncSender<()>>> {
    let Some(checkpointer) = store
        .checkpointer()
        .context("opening the checkpoint connection")?
    else {
        return Ok(None);
    };
    let (due, requests) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("pdbridge-checkpointer".to_owned())
        .spawn(move || {
            while requests.recv().is_ok() {
                match checkpointer.checkpoint() {
                    Ok(report) => tracing::trace!(?report, "WAL checkpoint"),
                    Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
                }
            }
        })
        .context("starting the checkpointer thread")?;
    Ok(Some(due))
}

/// The writer thread: takes every queued input (up to [`GROUP_COMMIT_MAX`]) and commits them as
/// one group, asking `checkpoints` for a checkpoint when one is due; ends when the writer is
/// dropped.
pub(super) fn writer_loop(
    writer: &Weak<Writer>,
    jobs: &mpsc::Receiver<Job>,
    checkpoints: Option<&mpsc::SyncSender<()>>,
) {
    let mut last_checkpoint = clock::instant();
    let mut records: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    let mut inputs: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    // The engine time one input took lately (microseconds, moving average).
    let mut input_cost_us: u64 = 50;
    loop {
        let mut idle = false;
        if records.is_empty() && inputs.is_empty() {
            match jobs.recv_timeout(IDLE_AFTER) {
                Ok(job) => sort_job(job, &mut records, &mut inputs),
                Err(mpsc::RecvTimeoutError::Timeout) => idle = true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            sort_job(job, &mut records, &mut inputs);
        }
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if !records.is_empty() || !inputs.is_empty() {
            // Every waiting record (a request waits for it), then only as many engine inputs
            // as fit the time budget, so requests never wait long behind background work.
            let budget = GROUP_INPUT_BUDGET.as_micros() as u64;
            let take_inputs = usize::try_from(budget / input_cost_us.max(1))
                .unwrap_or(usize::MAX)
                .clamp(1, GROUP_COMMIT_MAX);
            let n_records = records.len().min(GROUP_COMMIT_MAX);
            let mut group: Vec<Job> = records.drain(..n_records).collect();
            let n_inputs = inputs.len().min(take_inputs);
            group.extend(inputs.drain(..n_inputs));
            let started = clock::instant();
            writer.commit_group(group, n_records <= INLINE_RECORDS_MAX);
            // Everyone in the group has been answered. Under a light load the checkpoint runs
            // beside later commits; in a burst the writer runs it between groups, so requests
            // gather into larger groups meanwhile and the WAL restarts from its beginning.
            let burst = n_records > 1 || !records.is_empty();
            let checkpointed = match checkpoints {
                Some(checkpoints) if !burst => {
                    if writer.ctx.store.checkpoint_due() {
                        // Full means a request is already waiting: it will see these pages too.
                        let _ = checkpoints.try_send(());
                    }
                    writer.ctx.store.checkpoint_if_behind()
                }
                _ if writer.ctx.store.checkpoint_due() => {
                    writer.ctx.store.checkpoint_passive().map(Some)
                }
                _ => Ok(None),
            };
            if let Err(err) = checkpointed {
                tracing::warn!(%err, "WAL checkpoint failed");
            }
            if n_inputs > 0 {
                let per_input = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
                    / u64::try_from(n_inputs).unwrap_or(1);
                input_cost_us = (input_cost_us * 3 + per_input) / 4;
            }
        }
        writer.upkeep(&mut last_checkpoint, idle);
    }
}

/// Puts a job in the writer's local queue of its kind (each kept in arrival order).
fn sort_job(
    job: Job,
    records: &mut std::collections::VecDeque<Job>,
    inputs: &mut std::collections::VecDeque<Job>,
) {
    match job {
        Job::Record(_) => records.push_back(job),
        Job::Input(_) => inputs.push_back(job),
    }
}

/// Runs one input through the engine and serializes the incidents it touched.
fn handle(engine: &mut Engine, input: Input, now: Timestamp) -> anyhow::Result<Handled> {
    let effects = engine.handle(now, input);
    let touched: BTreeSet<IncidentId> = engine.changed_incidents().cloned().collect();
    let mut records = Vec::new();
    for id in &touched {
        if let Some(state) = engine.incident(id) {
            records.push(record(state, now)?);
        }
    }
    Ok((effects, records))
}

/// Adds one effect to the outbox, due now.
fn enqueue(tx: &mut store::Tx<'_>, effect: &Effect, now: Timestamp) -> Result<(), store::Error> {
    let Some(id) = effect.id() else {
        return Ok(());
    };
    let payload = store::Json::encode(effect).map_err(|source| store::Error::Json {
        table: "outbox",
        source,
    })?;
    tx.enqueue(&NewEffect {
        id: &store::EffectId::new(id.as_str()),
        order_key: &order_key(effect),
        rate_key: &rate_key(effect),
        payload: &payload,
        due_at: now,
        created_at: now,
    })
    .map(|_| ())
}

/// Rebuilds the engine from the stored incident states.
pub(super) fn load_engine(
    store: &Store,
    config: &EngineConfig,
    now: Timestamp,
) -> anyhow::Result<Engine> {
    let records = store
        .read(|tx| tx.incidents())
        .context("reading incident states")?;
    let mut incidents = Vec::with_capacity(records.len());
    for r in records {
        let state: IncidentState = r
            .state
            .decode()
            .with_context(|| format!("decoding the state of incident {}", r.incident_id))?;
        incidents.push(state);
    }
    let snapshot = EngineSnapshot {
        now,
        seen: Default::default(),
        incidents,
    };
    Engine::restore(config.clone(), snapshot).context("restoring the engine")
}

/// The stored record of `state` at `now`.
///
/// Its `resolved` flag means "resolved and nothing left to show": the reconciler reads the
/// incidents stored without it (`open_incident_ids`), so a resolved incident whose card post
/// failed permanently is stored as not resolved while [`IncidentState::needs_reconcile`] says
/// its final state may still be shown.
fn record(state: &IncidentState, now: Timestamp) -> anyhow::Result<IncidentRecord> {
    Ok(IncidentRecord {
        incident_id: state.id().clone(),
        channel: state.channel().cloned(),
        card_ts: state.card_ts().cloned(),
        resolved: !state.needs_reconcile(now),
        state: store::Json::encode(state).context("encoding incident state")?,
        updated_at: now,
    })
}
