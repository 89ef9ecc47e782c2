//! The durable core: verified requests in, engine inputs committed with their effects.
//!
//! [`Bridge`] owns the engine (behind a mutex that is never held across an `.await` nor across
//! SQLite work), the store and the clients. All writes but the loops' outbox bookkeeping go
//! through the single writer thread, which commits many jobs in ONE store transaction (group
//! commit):
//! - inbox records: a verified PagerDuty delivery or an accepted Slack action is queued by the
//!   request handler, inserted (with dedupe) in the next group, and the request is answered
//!   (202, or 200 for a duplicate) only after that group committed. A new delivery is also
//!   processed in that group (its engine input, states, effects and processed mark) when the
//!   group holds at most `INLINE_RECORDS_MAX` (8) records and no older delivery waits in the
//!   inbox; otherwise the inbox loop feeds it to the engine later, in arrival order;
//! - engine inputs ([`Bridge::apply`], [`Bridge::apply_all`]): run through the engine in order
//!   under the mutex, then committed with each input's bookkeeping (inbox row marked processed,
//!   outbox row completed, audit line), every touched incident's state and every new effect.
//!
//! Each group takes every waiting record but only as many engine inputs as fit about 2 ms, so a
//! request never waits long behind background work. Each caller is answered only after its
//! group committed; effects reach the dispatcher only through the committed outbox. When a
//! group fails to commit the engine is reloaded from the store and its jobs are retried one by
//! one, so a bad job fails alone and memory never stays ahead of disk. Between an input's
//! handling and its commit (milliseconds) readers of the engine may already see its state;
//! nothing is carried out before the commit, because effects are only taken from the committed
//! outbox. Async workers never wait on SQLite: other store work runs on the blocking pool, and
//! reads use the store's separate read connection. The background loops in [`crate::runtime`]
//! feed the bridge.
//!
//! # Bounds ([`Limits`])
//! - The writer's queues are bounded (records and engine inputs separately). A request that
//!   finds no room within [`Limits::ingest_wait`] is answered 503, which PagerDuty and Slack
//!   retry; loops wait for room. Overload slows answers down or refuses them; it never piles up
//!   threads or memory.
//! - The engine keeps at most about [`Limits::loaded_incidents`] incidents in memory: above that
//!   the writer unloads idle ones and ones without a timer (their state is in the store) and
//!   loads an incident back before the next input that names it. Incidents with a timer stay.
//! - Commits never checkpoint: every 64 WAL pages ([`store::Store::checkpoint_due`]), once it
//!   has answered a group, the writer asks the checkpointer thread for a passive checkpoint,
//!   which runs on a connection of its own beside later commits, so no answer waits on a
//!   checkpoint's copy and fsync. In a burst (a group of more than one delivery, or more
//!   waiting) the writer checkpoints itself between groups instead: requests gather into larger
//!   groups meanwhile, and the WAL restarts from its beginning, which a checkpoint beside
//!   back-to-back commits never lets it do. It also does once the WAL passed 256 pages
//!   ([`store::Store::checkpoint_if_behind`]). It truncates the WAL when idle, every 10 s at
//!   most and at least every minute ([`store::Store::checkpoint`]).
//!
//! Request-time work is bounded: a PagerDuty delivery is parsed and queued for the inbox
//! (dedupe on `X-Webhook-Id`, then `event.id`) and answered; a Slack click is queued as an
//! inbox action and answered, except that Add note and Reassign first open their modal with the
//! `trigger_id` (which dies after 3 s). Identity, policy and the engine run after the answer
//! (for a delivery, at most in its own group, as above).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use ids::{ChannelId, IncidentId, MessageTs, SlackTeamId, SlackUserId, WebhookId};
use pd_client::PdClient;
use pd_client::webhook::{EventType, WebhookEnvelope};
use serde::{Deserialize, Serialize};
use slack_client::SlackClient;
use slack_client::api::{OpenView, PostEphemeral};
use slack_client::blocks::ResponseAction;
use slack_client::interaction::{BlockActions, InteractionPayload, SlashCommand, ViewSubmission};
use store::{
    DedupeKey, IncidentRecord, InsertOutcome, NewAction, NewEffect, NewUnparsedWebhook, NewWebhook,
    OrderKey, RateKey, Store, UnixMillis,
};
use sync_core::{
    ActionKey, Effect, Engine, EngineConfig, EngineSnapshot, IncidentState, Input, Timestamp,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::clock::{self, Clock};
use crate::config::Config;
use crate::http::{self, SlackReply, Unavailable, WebhookAck};
use crate::metrics::Metrics;
use crate::render::{self, ModalContext};
use crate::translate;

/// How long `/pd whoami` waits for its lookup before answering through `response_url`.
const WHOAMI_INLINE: Duration = Duration::from_millis(1500);
/// How long a slash command waits for `auth.test` when the home workspace is not known yet.
const HOME_TEAM_INLINE: Duration = Duration::from_millis(1000);

/// How long opening a modal may take before the click is answered anyway.
const OPEN_VIEW_TIMEOUT: Duration = Duration::from_millis(2000);

/// The most jobs (engine inputs and inbox records) one group commit takes.
pub const GROUP_COMMIT_MAX: usize = 256;

/// The most inbox records a group may hold for its new PagerDuty deliveries to be processed in
/// it ([`Then::Process`]). A larger group means a burst: its deliveries are acknowledged first
/// and the inbox loop processes them after, so answers do not wait for engine work.
const INLINE_RECORDS_MAX: usize = 8;

/// The bounds of the bridge's in-memory state and queues (see [`Limits::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most jobs queued for (or being handled by) the writer thread at once. Background
    /// loops wait for room; an HTTP request that finds no room within `ingest_wait` is answered
    /// 503 (PagerDuty and Slack retry) instead of piling up.
    pub write_queue: usize,
    /// How long a request waits for room in the writer's queue before it is answered 503.
    pub ingest_wait: Duration,
    /// How many incidents the engine keeps in memory before it unloads the idle ones (they stay
    /// in the store and are loaded back when an input names them).
    pub loaded_incidents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            write_queue: 2048,
            ingest_wait: Duration::from_secs(1),
            loaded_incidents: 1024,
        }
    }
}

/// About how much engine (and commit) time one group spends on engine inputs, so inbox
/// records queued behind them wait at most about this long.
const GROUP_INPUT_BUDGET: Duration = Duration::from_millis(2);
/// How often the writer truncates the WAL (`wal_checkpoint(TRUNCATE)`) when it is idle.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// How often the writer truncates the WAL even when it never idles.
const CHECKPOINT_BUSY_EVERY: Duration = Duration::from_secs(60);
/// How long the writer must have had nothing to do to count as idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How often, at most, the writer looks for incidents to unload when over the limit.
const TRIM_EVERY: Duration = Duration::from_millis(500);

/// The bookkeeping committed with an input, in the same transaction (run again if the group it
/// was in failed and the input is retried alone).
pub type Extra = Box<dyn Fn(&mut store::Tx<'_>, UnixMillis) -> Result<(), store::Error> + Send>;

/// An inbox insert run by the writer in a group transaction (run again if the group it was in
/// failed and it is retried alone).
type Record = Box<dyn Fn(&mut store::Tx<'_>) -> Result<InsertOutcome, store::Error> + Send>;

/// One engine input waiting for the writer.
struct InputJob {
    input: Input,
    extra: Extra,
    done: tokio::sync::oneshot::Sender<Result<Vec<Effect>, String>>,
    /// Its room in the writer's queue, given back once it is answered.
    _room: OwnedSemaphorePermit,
}

/// What the writer does with a record it inserted, in the same transaction.
enum Then {
    /// Nothing: the inbox loop processes it (Slack actions).
    Nothing,
    /// A PagerDuty delivery: its engine input (if the event has one) runs and the row is marked
    /// processed, unless an older delivery still waits in the inbox; the inbox loop then feeds
    /// it, so deliveries reach the engine in arrival order.
    Process(Option<Box<Input>>),
}

/// One inbox record (a PagerDuty delivery or a Slack action) waiting for the writer.
struct RecordJob {
    record: Record,
    then: Then,
    done: tokio::sync::oneshot::Sender<Result<InsertOutcome, String>>,
    _room: OwnedSemaphorePermit,
}

/// Work for the writer thread.
enum Job {
    /// An engine input and its bookkeeping.
    Input(Box<InputJob>),
    /// An inbox insert.
    Record(RecordJob),
}

/// What the engine made of one input: its effects and the touched incidents' rows.
type Handled = (Vec<Effect>, Vec<IncidentRecord>);

/// What a stored Slack action asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StoredKind {
    /// Acknowledge.
    Acknowledge,
    /// Escalate one level.
    Escalate,
    /// Resolve (already confirmed in Slack's dialog).
    Resolve,
    /// Add a note with this text.
    Note {
        /// The note text (non-empty).
        content: String,
    },
    /// Reassign to this Slack user (mapped to PagerDuty when processed).
    Reassign {
        /// The chosen Slack user.
        to: SlackUserId,
    },
}

impl StoredKind {
    /// The verb without its payload.
    pub fn verb(&self) -> ids::Verb {
        match self {
            StoredKind::Acknowledge => ids::Verb::Acknowledge,
            StoredKind::Escalate => ids::Verb::Escalate,
            StoredKind::Resolve => ids::Verb::Resolve,
            StoredKind::Note { .. } => ids::Verb::AddNote,
            StoredKind::Reassign { .. } => ids::Verb::Reassign,
        }
    }

    /// The short name used in the inbox, the audit log and metrics.
    pub fn name(&self) -> &'static str {
        self.verb().as_str()
    }
}

/// A Slack action as persisted in the inbox before it is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAction {
    /// The idempotency key (double clicks share it).
    pub key: ActionKey,
    /// What was asked for.
    #[serde(flatten)]
    pub kind: StoredKind,
    /// The incident.
    pub incident: IncidentId,
    /// Who clicked.
    pub user: SlackUserId,
    /// The workspace the click came from.
    pub team: Option<SlackTeamId>,
    /// The channel of the card.
    pub channel: Option<ChannelId>,
    /// The card's message.
    pub message_ts: Option<MessageTs>,
}

/// The bridge. Build with [`Bridge::new`]; share as `Arc<Bridge>`.
pub struct Bridge {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<Store>,
    engine: Mutex<Engine>,
    engine_config: EngineConfig,
    pub(crate) pd: PdClient,
    pub(crate) slack: SlackClient,
    pub(crate) identity: Arc<crate::identity::Identity>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Clock,
    pub(crate) inbox_wake: Notify,
    pub(crate) dispatch_wake: Notify,
    pub(crate) timer_wake: Notify,
    writer: Mutex<mpsc::Sender<Job>>,
    /// Room in the writer's queue for inbox records (see [`Limits::write_queue`]).
    queue: Arc<Semaphore>,
    /// Room in the writer's queue for engine inputs (the same size, so background work never
    /// takes the room of requests).
    input_queue: Arc<Semaphore>,
    limits: Limits,
    commit_groups: AtomicU64,
    /// When the writer last looked for idle incidents to unload.
    last_trim: Mutex<std::time::Instant>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("pd", &self.pd)
            .field("slack", &self.slack)
            .finish_non_exhaustive()
    }
}

/// Everything [`Bridge::new`] needs.
#[derive(Debug)]
pub struct BridgeParts {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The opened store.
    pub store: Arc<Store>,
    /// The PagerDuty client.
    pub pd: PdClient,
    /// The Slack client.
    pub slack: SlackClient,
    /// The Slack workspace the bot lives in (`slack.team_id` or `auth.test`); `None` when
    /// `auth.test` failed at start, in which case identity asks again before mapping anyone.
    pub workspace: Option<SlackTeamId>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The engine's timing settings.
    pub engine: EngineConfig,
    /// The bounds of queues and in-memory state.
    pub limits: Limits,
}

impl Bridge {
    /// Builds the bridge, restoring the engine from the store and releasing stale claims.
    pub fn new(parts: BridgeParts, clock: Clock) -> anyhow::Result<Arc<Self>> {
        let now = clock().as_millis();
        parts
            .store
            .write(|tx| tx.release_claims().map(|_| ()))
            .context("releasing outbox claims")?;
        let engine = load_engine(&parts.store, &parts.engine, now)?;
        let identity = Arc::new(crate::identity::Identity::new(
            &parts.config,
            parts.pd.clone(),
            parts.slack.clone(),
            parts.workspace,
            Arc::clone(&parts.store),
        ));
        let (writer, jobs) = mpsc::channel();
        let bridge = Arc::new(Self {
            config: parts.config,
            store: parts.store,
            engine: Mutex::new(engine),
            engine_config: parts.engine,
            pd: parts.pd,
            slack: parts.slack,
            identity,
            metrics: parts.metrics,
            clock,
            inbox_wake: Notify::new(),
            dispatch_wake: Notify::new(),
            timer_wake: Notify::new(),
            writer: Mutex::new(writer),
            queue: Arc::new(Semaphore::new(parts.limits.write_queue.max(1))),
            input_queue: Arc::new(Semaphore::new(parts.limits.write_queue.max(1))),
            limits: parts.limits,
            commit_groups: AtomicU64::new(0),
            last_trim: Mutex::new(clock::instant()),
        });
        let checkpoints = spawn_checkpointer(&bridge.store)?;
        let weak = Arc::downgrade(&bridge);
        std::thread::Builder::new()
            .name("pdbridge-writer".to_owned())
            .spawn(move || writer_loop(&weak, &jobs, checkpoints.as_ref()))
            .context("starting the writer thread")?;
        let unloaded = bridge.unload_idle_resolved();
        tracing::debug!(unloaded, "resolved idle incidents left on disk");
        Ok(bridge)
    }

    /// The store (for read-only views such as `pdbridge status`, the demo and tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The current time in Unix milliseconds.
    pub fn now_ms(&self) -> UnixMillis {
        (self.clock)().as_millis()
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with read access to the engine (never across an `.await`).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.engine())
    }

    /// The engine's configuration (backoff and attempt limits).
    pub fn engine_config(&self) -> &EngineConfig {
        &self.engine_config
    }

    /// The next engine timer, if any.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.engine().poll_timeout().map(|(at, _)| at)
    }

    /// How many group transactions the writer has committed since start.
    pub fn commit_groups(&self) -> u64 {
        self.commit_groups.load(Ordering::Relaxed)
    }

    /// Whether the bridge has nothing left to do within `horizon`: every inbox row processed,
    /// the outbox empty (no effect waiting or in flight) and no engine timer due within
    /// `horizon` (a later one, such as a pending action's deadline, is not waited for).
    ///
    /// The engine changes before the writer commits what it emitted (see the module docs): a
    /// tick that turns a thread flush into a post leaves the timer gone from the engine while
    /// the post is not in the outbox yet. So the engine and the store count as one moment only
    /// if the writer held no job (queued or in hand) before and after both reads and committed
    /// nothing between them. Reads the store on the caller's thread (for the demo and tests).
    pub fn is_quiet(&self, horizon: Duration) -> bool {
        let Some(before) = self.writer_idle() else {
            return false;
        };
        let now = self.now_ms();
        let horizon = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
        let timer_soon = self
            .next_timer()
            .is_some_and(|t| t.as_millis() <= now.saturating_add(horizon));
        let drained = self.store.read(|tx| tx.status(now, 0)).is_ok_and(|s| {
            s.unprocessed_webhooks == 0 && s.unprocessed_actions == 0 && s.outbox.depth == 0
        });
        !timer_soon && drained && self.writer_idle() == Some(before)
    }

    /// How many groups the writer committed, if it holds no job (none queued, none in hand).
    /// A job keeps its room in the writer's queue until it is answered, after its commit.
    fn writer_idle(&self) -> Option<u64> {
        let room = self.limits.write_queue.max(1);
        let idle =
            self.queue.available_permits() >= room && self.input_queue.available_permits() >= room;
        idle.then(|| self.commit_groups())
    }

    /// Runs one input through the engine and commits the caller's bookkeeping `extra`, the
    /// touched incidents' states and the new effects in one transaction (shared with the other
    /// inputs queued at the same time); answers once that transaction committed.
    pub async fn apply<F>(&self, input: Input, extra: F) -> anyhow::Result<Vec<Effect>>
    where
        F: Fn(&mut store::Tx<'_>, UnixMillis) -> Result<(), store::Error> + Send + 'static,
    {
        let room = Arc::clone(&self.input_queue)
            .acquire_owned()
            .await
            .map_err(|_| anyhow::anyhow!("the writer queue is closed"))?;
        let (done, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Input(Box::new(InputJob {
            input,
            extra: Box::new(extra),
            done,
            _room: room,
        })))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the writer thread dropped the input"))?
            .map_err(anyhow::Error::msg)
    }

    /// Like [`Bridge::apply`] for several inputs at once: they are queued together, in order
    /// (so they usually share one transaction), and each result comes back in the same order.
    pub async fn apply_all(&self, inputs: Vec<(Input, Extra)>) -> Vec<anyhow::Result<Vec<Effect>>> {
        let n = inputs.len();
        if n == 0 {
            return Vec::new();
        }
        let wanted = u32::try_from(n.min(self.limits.write_queue.max(1))).unwrap_or(u32::MAX);
        let mut answers = Vec::with_capacity(n);
        let mut inputs = inputs.into_iter();
        while answers.len() < n {
            let Ok(mut room) = Arc::clone(&self.input_queue)
                .acquire_many_owned(wanted)
                .await
            else {
                answers.push(Err(anyhow::anyhow!("the writer queue is closed")));
                continue;
            };
            for _ in 0..wanted {
                let Some((input, extra)) = inputs.next() else {
                    break;
                };
                let (done, answer) = tokio::sync::oneshot::channel();
                let Some(one) = room.split(1) else {
                    break;
                };
                let sent = self.send(Job::Input(Box::new(InputJob {
                    input,
                    extra,
                    done,
                    _room: one,
                })));
                answers.push(sent.map(|()| answer));
            }
        }
        let mut results = Vec::with_capacity(n);
        for answer in answers {
            results.push(match answer {
                Ok(answer) => answer
                    .await
                    .map_err(|_| anyhow::anyhow!("the writer thread dropped the input"))
                    .and_then(|r| r.map_err(anyhow::Error::msg)),
                Err(err) => Err(err),
            });
        }
        results
    }

    /// Inserts an inbox record through the writer (group commit) and answers once it committed.
    /// Waits at most [`Limits::ingest_wait`] for room in the queue; a full queue is
    /// [`Unavailable`] (503), so overload slows answers down or refuses them, never piles up.
    async fn record(&self, record: Record, then: Then) -> Result<InsertOutcome, Unavailable> {
        let room = match Arc::clone(&self.queue).try_acquire_owned() {
            Ok(room) => room,
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(Unavailable("the writer queue is closed".to_owned()));
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let wait = Arc::clone(&self.queue).acquire_owned();
                match tokio::time::timeout(self.limits.ingest_wait, wait).await {
                    Ok(Ok(room)) => room,
                    Ok(Err(_)) => {
                        return Err(Unavailable("the writer queue is closed".to_owned()));
                    }
                    Err(_) => {
                        tracing::warn!("the write queue is full; answering 503");
                        return Err(Unavailable("the write queue is full".to_owned()));
                    }
                }
            }
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Record(RecordJob {
            record,
            then,
            done,
            _room: room,
        }))
        .map_err(|e| Unavailable(e.to_string()))?;
        answer
            .await
            .map_err(|_| Unavailable("the writer thread dropped the record".to_owned()))?
            .map_err(|e| Unavailable(format!("store: {e}")))
    }

    fn send(&self, job: Job) -> anyhow::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| anyhow::anyhow!("the writer thread has stopped"))
    }

    /// How many inbox records (requests) the writer's queue has room for right now.
    pub fn write_queue_room(&self) -> usize {
        self.queue.available_permits()
    }

    /// Unloads incidents when the engine holds more than [`Limits::loaded_incidents`], down to
    /// half that: first the idle ones (resolved or not), then those without a timer (for
    /// example a card waiting in the outbox for Slack's rate limit). Their state stays in the
    /// store; the writer loads an incident back before any input that names it (an effect's
    /// outcome included), and incidents with a timer (retries, pending actions, thread flushes)
    /// always stay in memory so the timer loop sees them. Returns how many were unloaded.
    pub fn unload_idle_over_limit(&self) -> usize {
        let limit = self.limits.loaded_incidents;
        let mut engine = self.engine();
        if engine.incidents().nth(limit).is_none() {
            return 0;
        }
        let excess = engine.incidents().count() - limit / 2;
        let idle = engine.incidents().filter(|s| s.is_idle());
        let timerless = engine
            .incidents()
            .filter(|s| !s.is_idle() && !s.has_timer());
        let victims: Vec<IncidentId> = idle
            .chain(timerless)
            .take(excess)
            .map(|s| s.id().clone())
            .collect();
        for id in &victims {
            engine.unload_incident(id);
        }
        victims.len()
    }

    /// The writer's periodic upkeep: unloads idle incidents over the limit and truncates the WAL,
    /// while `idle` every [`CHECKPOINT_EVERY`], or at least every [`CHECKPOINT_BUSY_EVERY`].
    /// Truncating waits for readers, so it is best done while no request waits on the writer;
    /// SQLite's own small checkpoints keep the WAL short in between.
    fn upkeep(&self, last_checkpoint: &mut std::time::Instant, idle: bool) {
        let trim = {
            let mut last = self
                .last_trim
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = last.elapsed() >= TRIM_EVERY;
            if due {
                *last = clock::instant();
            }
            due
        };
        if trim {
            let unloaded = self.unload_idle_over_limit();
            if unloaded > 0 {
                tracing::debug!(unloaded, "unloaded idle incidents over the in-memory limit");
            }
        }
        let since = last_checkpoint.elapsed();
        if (idle && since >= CHECKPOINT_EVERY) || since >= CHECKPOINT_BUSY_EVERY {
            *last_checkpoint = clock::instant();
            match self.store.checkpoint() {
                Ok(report) => tracing::debug!(?report, "WAL checkpoint"),
                Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
            }
        }
    }

    /// Handles a group of jobs and commits them together (the writer thread's work): inbox
    /// records are inserted and engine inputs handled in order, all in one transaction. With
    /// `inline`, new PagerDuty deliveries are processed in that transaction too
    /// ([`Then::Process`]). On a failure the engine is reloaded and a group of several is
    /// retried one job at a time, without `inline` (the inbox loop processes those deliveries).
    fn commit_group(&self, jobs: Vec<Job>, inline: bool) {
        let now = self.now_ms();
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
            None => self.store.write(|tx| {
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
                for job in jobs {
                    match job {
                        Job::Record(r) => {
                            let answer = outcomes
                                .next()
                                .ok_or_else(|| "a record lost its outcome".to_owned());
                            inserted += usize::from(answer.as_ref().is_ok_and(|o| o.is_inserted()));
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
                // Only rows this group left unprocessed need the inbox loop.
                if inserted > marked_inline {
                    self.inbox_wake.notify_one();
                }
                if had_inputs {
                    self.dispatch_wake.notify_one();
                    self.timer_wake.notify_one();
                }
            }
            Err(err) => {
                tracing::error!(%err, jobs = jobs.len(), "commit failed; reloading the engine from the store");
                if had_inputs {
                    match load_engine(&self.store, &self.engine_config, now) {
                        Ok(restored) => *self.engine() = restored,
                        Err(reload) => tracing::error!(%reload, "reloading the engine failed"),
                    }
                }
                if jobs.len() == 1 {
                    for job in jobs {
                        match job {
                            Job::Input(i) => {
                                let _ = i.done.send(Err(format!("{err:#}")));
                            }
                            Job::Record(r) => {
                                let _ = r.done.send(Err(format!("{err:#}")));
                            }
                        }
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
        now: UnixMillis,
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

    /// Runs store work on the blocking pool, never on an async worker.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Unavailable(format!("store task failed: {e}")))?
            .map_err(|e| Unavailable(format!("store: {e}")))
    }

    /// Persists an accepted Slack action in the inbox and wakes the processor.
    async fn persist_action(&self, action: StoredAction) -> Result<(), Unavailable> {
        let payload = serde_json::to_string(&action)
            .map_err(|e| Unavailable(format!("encoding action: {e}")))?;
        let now = self.now_ms();
        let name = action.kind.name();
        let outcome = self
            .record(
                Box::new(move |tx| {
                    tx.insert_action(&NewAction {
                        dedupe_key: &DedupeKey::new(action.key.as_str()),
                        slack_user: &action.user,
                        incident_id: Some(&action.incident),
                        kind: action.kind.name(),
                        payload: &payload,
                        received_at: now,
                    })
                }),
                Then::Nothing,
            )
            .await?;
        if outcome.is_inserted() {
            self.metrics.action(name, "accepted");
        } else {
            self.metrics.action(name, "duplicate");
        }
        Ok(())
    }

    fn incident_title(&self, incident: &IncidentId) -> String {
        self.with_engine(|e| {
            e.incident(incident)
                .and_then(|s| s.snapshot().map(|snap| snap.title.clone()))
        })
        .unwrap_or_else(|| incident.to_string())
    }

    async fn block_actions(&self, p: BlockActions) -> Result<SlackReply, Unavailable> {
        let Some(action) = p.actions.first() else {
            return Ok(SlackReply::Empty);
        };
        // The incident travels in the button's `value`, and in its block id as a fallback.
        let from_block = action
            .block_id
            .strip_prefix("pdbridge_actions:")
            .filter(|id| !id.is_empty());
        let Some(incident) = action
            .value
            .as_deref()
            .filter(|v| !v.is_empty())
            .or(from_block)
            .map(IncidentId::new)
        else {
            return Ok(SlackReply::Empty);
        };
        let (channel, ts) = match p.message_ref() {
            Some((c, t)) => (Some(c.clone()), Some(t.clone())),
            None => (p.channel.as_ref().map(|c| c.id.clone()), None),
        };
        let team = p
            .team
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| p.user.team_id.clone());
        let id = action.action_id.as_str();
        if id == render::ACTION_NOTE || id == render::ACTION_REASSIGN {
            let title = self.incident_title(&incident);
            let ctx = ModalContext {
                incident,
                channel,
                ts,
            };
            let view = if id == render::ACTION_NOTE {
                render::note_modal(&ctx, &title)
            } else {
                render::reassign_modal(&ctx, &title)
            };
            let Some(trigger_id) = p.trigger_id.clone() else {
                return Ok(SlackReply::Empty);
            };
            let req = OpenView { trigger_id, view };
            let failed =
                match tokio::time::timeout(OPEN_VIEW_TIMEOUT, self.slack.open_view(&req)).await {
                    Ok(Ok(_)) => {
                        self.metrics.api_call("slack", "ok");
                        None
                    }
                    Ok(Err(err)) => {
                        self.metrics.api_call("slack", "error");
                        tracing::warn!(%err, "views.open failed");
                        Some(err.to_string())
                    }
                    Err(_) => {
                        tracing::warn!("views.open timed out");
                        Some("Slack did not answer in time".to_owned())
                    }
                };
            // Tell the clicker after answering, so the 3 s budget is not spent on it.
            if let (Some(why), Some(channel)) = (failed, ctx.channel.clone()) {
                let slack = self.slack.clone();
                let user = p.user.id.clone();
                tokio::spawn(async move {
                    let req = PostEphemeral {
                        channel,
                        user,
                        text: format!(
                            "pdbridge could not open the form ({}). Click the button again.",
                            render::escape(&why)
                        ),
                        blocks: Vec::new(),
                        thread_ts: None,
                    };
                    if let Err(err) = slack.post_ephemeral(&req).await {
                        tracing::warn!(%err, "telling the user about views.open failed");
                    }
                });
            }
            return Ok(SlackReply::Empty);
        }
        let kind = match id {
            render::ACTION_ACK => StoredKind::Acknowledge,
            render::ACTION_ESCALATE => StoredKind::Escalate,
            render::ACTION_RESOLVE => StoredKind::Resolve,
            _ => return Ok(SlackReply::Empty),
        };
        let stamp = action
            .action_ts
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .or_else(|| p.trigger_id.as_ref().map(|t| t.as_str().to_owned()))
            .unwrap_or_default();
        let key = ActionKey::new(&stamp, &p.user.id, kind.name());
        self.persist_action(StoredAction {
            key,
            kind,
            incident,
            user: p.user.id.clone(),
            team,
            channel,
            message_ts: ts,
        })
        .await?;
        Ok(SlackReply::Empty)
    }

    async fn view_submission(&self, p: ViewSubmission) -> Result<SlackReply, Unavailable> {
        let Some(ctx) = ModalContext::decode(&p.view.private_metadata) else {
            return Ok(SlackReply::Empty);
        };
        let errors = |block: &str, message: &str| {
            let mut errors = std::collections::BTreeMap::new();
            errors.insert(block.to_owned(), message.to_owned());
            SlackReply::Json(
                serde_json::to_value(ResponseAction::Errors { errors }).unwrap_or_default(),
            )
        };
        let kind = match p.view.callback_id.as_str() {
            render::CALLBACK_NOTE => {
                let text = p
                    .view
                    .state
                    .text(render::NOTE_BLOCK, render::NOTE_INPUT)
                    .map(str::trim)
                    .unwrap_or("");
                if text.is_empty() {
                    return Ok(errors(
                        render::NOTE_BLOCK,
                        "Write a note before submitting.",
                    ));
                }
                StoredKind::Note {
                    content: text.to_owned(),
                }
            }
            render::CALLBACK_REASSIGN => {
                match p
                    .view
                    .state
                    .selected_user(render::REASSIGN_BLOCK, render::REASSIGN_INPUT)
                {
                    Some(user) => StoredKind::Reassign { to: user.clone() },
                    None => {
                        return Ok(errors(
                            render::REASSIGN_BLOCK,
                            "Choose who to reassign the incident to.",
                        ));
                    }
                }
            }
            _ => return Ok(SlackReply::Empty),
        };
        let team = p
            .team
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| p.user.team_id.clone());
        let key = ActionKey::new(p.view.id.as_str(), &p.user.id, kind.name());
        self.persist_action(StoredAction {
            key,
            kind,
            incident: ctx.incident,
            user: p.user.id.clone(),
            team,
            channel: ctx.channel,
            message_ts: ctx.ts,
        })
        .await?;
        Ok(SlackReply::Empty)
    }

    async fn command(&self, cmd: SlashCommand) -> SlackReply {
        let text = cmd.text.trim();
        let mut words = text.split_whitespace();
        // Like actions, commands are only taken from the home workspace (unless
        // `slack.allow_any_workspace`); while it is unknown, from none.
        let home = tokio::time::timeout(HOME_TEAM_INLINE, self.identity.home_team()).await;
        let foreign = match home.unwrap_or_else(|_| Err("Slack did not answer auth.test".into())) {
            Ok(home) => home.filter(|home| *home != cmd.team_id).map(|home| {
                format!(
                    "This command came from Slack workspace {}, but pdbridge only accepts commands from {home}.",
                    cmd.team_id
                )
            }),
            Err(why) => Some(format!("{why}. Try again in a minute.")),
        };
        let reply = match (foreign, words.next().unwrap_or("help")) {
            (Some(refusal), _) => {
                tracing::warn!(team = %cmd.team_id, "slash command from another workspace refused");
                self.metrics.webhook_rejected("slack_command", "workspace");
                refusal
            }
            (None, word) => match word {
                "whoami" => self.whoami(&cmd).await,
                "status" => match words.next() {
                    Some(id) => match self.may_view(&cmd).await {
                        Ok(()) => self.status_text(&IncidentId::new(id)).await,
                        Err(refusal) => refusal,
                    },
                    None => "Usage: `/pd status <incident id>`".to_owned(),
                },
                _ => help_text(),
            },
        };
        SlackReply::Json(serde_json::json!({
            "response_type": "ephemeral",
            "text": reply,
        }))
    }

    /// An incident's persisted state, when the store has one.
    fn stored_state(&self, id: &IncidentId) -> anyhow::Result<Option<IncidentState>> {
        let record = self
            .store
            .read(|tx| tx.incident(id))
            .context("reading an incident state")?;
        record
            .map(|r| r.state.decode().context("decoding an incident state"))
            .transpose()
    }

    /// Unloads resolved incidents that await nothing and need no reconciliation (a card whose
    /// post failed is not done) from memory; their state stays in the store and is loaded
    /// again by [`Bridge::apply`] when an input names them. Returns how many were unloaded.
    pub fn unload_idle_resolved(&self) -> usize {
        let now = Timestamp::from_millis(self.now_ms());
        let mut engine = self.engine();
        let idle: Vec<IncidentId> = engine
            .incidents()
            .filter(|s| !s.needs_reconcile(now) && s.is_idle())
            .map(|s| s.id().clone())
            .collect();
        for id in &idle {
            engine.unload_incident(id);
        }
        idle.len()
    }

    /// Whether the command's user may read incident details (the policy's mapping checks: no
    /// guest, bot or unmapped user). The lookup runs in a task of its own, so one slower than
    /// [`WHOAMI_INLINE`] still completes (and is cached) while the command is answered with a
    /// request to ask again.
    async fn may_view(&self, cmd: &SlashCommand) -> Result<(), String> {
        let identity = Arc::clone(&self.identity);
        let (user, team, now) = (cmd.user_id.clone(), cmd.team_id.clone(), self.now_ms());
        let lookup = tokio::spawn(async move { identity.may_view(&user, &team, now).await });
        match tokio::time::timeout(WHOAMI_INLINE, lookup).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("pdbridge could not look you up right now.".to_owned()),
            Err(_) => Err(
                "Looking you up in Slack and PagerDuty; run the command again in a few seconds."
                    .to_owned(),
            ),
        }
    }

    /// `/pd whoami`: answered inline when the lookup is quick, else through `response_url`
    /// (the lookup may call Slack and PagerDuty, and the command must be answered within 3 s).
    async fn whoami(&self, cmd: &SlashCommand) -> String {
        let identity = Arc::clone(&self.identity);
        let slack = self.slack.clone();
        let (user, team, now) = (cmd.user_id.clone(), cmd.team_id.clone(), self.now_ms());
        let response_url = cmd.response_url.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let text = identity.whoami(&user, Some(&team), now).await;
            if let Err(tx_back) = tx.send(text) {
                // The command was already answered: deliver the result through response_url.
                let msg = slack_client::api::ResponseUrlMessage::ephemeral(tx_back);
                if let Err(err) = slack.respond(&response_url, &msg).await {
                    tracing::warn!(%err, "answering /pd whoami through response_url failed");
                }
            }
        });
        match tokio::time::timeout(WHOAMI_INLINE, rx).await {
            Ok(Ok(text)) => text,
            _ => "Looking you up in Slack and PagerDuty; the answer follows here.".to_owned(),
        }
    }

    async fn status_text(&self, incident: &IncidentId) -> String {
        let in_memory = self.with_engine(|e| e.incident(incident).cloned());
        let state = match in_memory {
            Some(state) => Some(state),
            None => {
                let id = incident.clone();
                self.blocking(move |store| store.read(|tx| tx.incident(&id)))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.state.decode::<IncidentState>().ok())
            }
        };
        match state.as_ref() {
            None => format!("pdbridge tracks no incident `{incident}`."),
            Some(state) => {
                let card = match (state.channel(), state.card_ts()) {
                    (Some(c), Some(_)) => format!("its card is in <#{c}>"),
                    (Some(c), None) => format!("its card for <#{c}> is not posted yet"),
                    _ => "it has no card".to_owned(),
                };
                match state.snapshot() {
                    Some(s) => format!(
                        "*{}* `{incident}` is *{}*; {card}.",
                        render::escape(&s.title),
                        s.status.label()
                    ),
                    None => format!("`{incident}` is known but not yet loaded; {card}."),
                }
            }
        }
    }
}

impl Bridge {
    /// Keeps a verified delivery that did not parse (raw body and reason) for operators, so it
    /// is answered 2xx without being lost; a redelivery with the same `X-Webhook-Id` is a
    /// duplicate.
    async fn unparsed(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
        error: &str,
    ) -> Result<WebhookAck, Unavailable> {
        tracing::warn!(%error, bytes = body.len(), "signed PagerDuty body did not parse; stored as unparsed");
        let now = self.now_ms();
        let error = error.to_owned();
        let outcome = self
            .record(
                Box::new(move |tx| {
                    tx.insert_unparsed_webhook(&NewUnparsedWebhook {
                        webhook_id: webhook_id.as_ref(),
                        body: &body,
                        error: &error,
                        received_at: now,
                    })
                }),
                Then::Nothing,
            )
            .await?;
        match outcome {
            InsertOutcome::Inserted(_) => Ok(WebhookAck::Unparsed),
            InsertOutcome::Duplicate(_) => Ok(WebhookAck::Duplicate),
        }
    }
}

fn help_text() -> String {
    [
        "*pdbridge* drives PagerDuty incidents from their Slack cards.",
        "• `/pd whoami`: which PagerDuty user your clicks are made as, or why none.",
        "• `/pd status <incident id>`: what pdbridge knows about an incident.",
        "• `/pd help`: this message.",
        "Use the card buttons Acknowledge, Escalate, Reassign, Add note and Resolve to act.",
    ]
    .join("\n")
}

impl http::Bridge for Bridge {
    async fn pagerduty_webhook(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
    ) -> Result<WebhookAck, Unavailable> {
        let envelope = match WebhookEnvelope::from_slice(&body) {
            Ok(envelope) if std::str::from_utf8(&body).is_ok() => envelope,
            Ok(_) => {
                return self
                    .unparsed(webhook_id, body, "the body is not UTF-8")
                    .await;
            }
            Err(err) => return self.unparsed(webhook_id, body, &err.to_string()).await,
        };
        let event = envelope.event;
        let Some(incident) = event.incident_id().cloned() else {
            if event.event_type == EventType::PageyPing {
                tracing::info!("pagey.ping received");
            }
            return Ok(WebhookAck::Ignored);
        };
        let Ok(payload) = String::from_utf8(body.into()) else {
            return Ok(WebhookAck::Ignored);
        };
        let now = self.now_ms();
        let input = translate::pd_event(&self.config, &event, webhook_id.clone())
            .map(|e| Box::new(Input::PdEvent(e)));
        let event_type = event.event_type.as_str().to_owned();
        let event_id = event.id;
        let outcome = self
            .record(
                Box::new(move |tx| {
                    tx.insert_webhook(&NewWebhook {
                        webhook_id: webhook_id.as_ref(),
                        event_id: &event_id,
                        event_type: &event_type,
                        incident_id: Some(&incident),
                        payload: &payload,
                        received_at: now,
                    })
                }),
                Then::Process(input),
            )
            .await?;
        match outcome {
            InsertOutcome::Inserted(_) => Ok(WebhookAck::Accepted),
            InsertOutcome::Duplicate(_) => Ok(WebhookAck::Duplicate),
        }
    }

    async fn slack_interaction(&self, body: Bytes) -> Result<SlackReply, Unavailable> {
        let payload = match InteractionPayload::from_form(&body) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "signed Slack body is not an interaction payload");
                return Ok(SlackReply::BadRequest("not an interaction payload"));
            }
        };
        match payload {
            InteractionPayload::BlockActions(p) => self.block_actions(*p).await,
            InteractionPayload::ViewSubmission(p) => self.view_submission(*p).await,
            InteractionPayload::Other { .. } => Ok(SlackReply::Empty),
        }
    }

    async fn slack_command(&self, body: Bytes) -> Result<SlackReply, Unavailable> {
        // Slack checks the certificate of command URLs with `ssl_check=1`; it wants a 200.
        let ssl_check = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "ssl_check" && v == "1"));
        if ssl_check {
            return Ok(SlackReply::Empty);
        }
        match SlashCommand::from_form(&body) {
            Ok(cmd) => Ok(self.command(cmd).await),
            Err(err) => {
                tracing::warn!(%err, "signed Slack body is not a slash command");
                Ok(SlackReply::BadRequest("not a slash command"))
            }
        }
    }

    async fn health(&self) -> Result<(), Unavailable> {
        self.blocking(|store| store.schema_version().map(|_| ()))
            .await
    }
}

/// Starts the checkpointer thread of a file database: it runs a passive checkpoint each time the
/// writer sends on the returned channel (requests that arrive while one runs are merged into the
/// next) and ends when the writer drops the sender. `None` for an in-memory database.
fn spawn_checkpointer(store: &Store) -> anyhow::Result<Option<mpsc::SyncSender<()>>> {
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
/// one group, asking `checkpoints` for a checkpoint when one is due; ends when the bridge is
/// dropped.
fn writer_loop(
    bridge: &Weak<Bridge>,
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
        let Some(bridge) = bridge.upgrade() else {
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
            bridge.commit_group(group, n_records <= INLINE_RECORDS_MAX);
            // Everyone in the group has been answered. Under a light load the checkpoint runs
            // beside later commits; in a burst the writer runs it between groups, so requests
            // gather into larger groups meanwhile and the WAL restarts from its beginning.
            let burst = n_records > 1 || !records.is_empty();
            let checkpointed = match checkpoints {
                Some(checkpoints) if !burst => {
                    if bridge.store.checkpoint_due() {
                        // Full means a request is already waiting: it will see these pages too.
                        let _ = checkpoints.try_send(());
                    }
                    bridge.store.checkpoint_if_behind()
                }
                _ if bridge.store.checkpoint_due() => bridge.store.checkpoint_passive().map(Some),
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
        bridge.upkeep(&mut last_checkpoint, idle);
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
fn handle(engine: &mut Engine, input: Input, now: UnixMillis) -> anyhow::Result<Handled> {
    let effects = engine.handle(Timestamp::from_millis(now), input);
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
fn enqueue(tx: &mut store::Tx<'_>, effect: &Effect, now: UnixMillis) -> Result<(), store::Error> {
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
fn load_engine(store: &Store, config: &EngineConfig, now: UnixMillis) -> anyhow::Result<Engine> {
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
        now: Timestamp::from_millis(now),
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
fn record(state: &IncidentState, now: UnixMillis) -> anyhow::Result<IncidentRecord> {
    Ok(IncidentRecord {
        incident_id: state.id().clone(),
        channel: state.channel().cloned(),
        card_ts: state.card_ts().cloned(),
        resolved: !state.needs_reconcile(Timestamp::from_millis(now)),
        state: store::Json::encode(state).context("encoding incident state")?,
        updated_at: now,
    })
}

/// The FIFO lane of an effect: one per incident and platform. Slack effects of an incident
/// keep their order (post before update, updates in order) and PagerDuty calls keep theirs,
/// but a Slack 429 on a card never holds up that incident's PagerDuty call, nor the reverse;
/// the engine itself sequences what depends on an outcome. Ephemeral replies answer one click
/// and depend on nothing else, so each click's replies have a lane of their own: a burst of
/// clicks on one card is answered in parallel, never queued behind that card's updates.
fn order_key(effect: &Effect) -> OrderKey {
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

fn rate_key(effect: &Effect) -> RateKey {
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
