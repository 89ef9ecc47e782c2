//! The writer: verified requests in, engine inputs committed with their effects.
//!
//! [`Writer`] owns the engine (behind a mutex that is never held across an `.await` nor across
//! SQLite work); the store and the clients are in the shared [`Context`]. All writes but the loops' outbox bookkeeping go
//! through the single writer thread, which commits many jobs in ONE store transaction (group
//! commit):
//! - inbox records: a verified PagerDuty delivery or an accepted Slack action is queued by the
//!   request handler, inserted (with dedupe) in the next group, and the request is answered
//!   (202, or 200 for a duplicate) only after that group committed. A new delivery is also
//!   processed in that group (its engine input, states, effects and processed mark) when the
//!   group holds at most `INLINE_RECORDS_MAX` (8) records and no older delivery waits in the
//!   inbox; otherwise the inbox loop feeds it to the engine later, in arrival order, with the
//!   input its request parsed when the writer kept it ([`Writer::take_parsed`]);
//! - engine inputs ([`Writer::apply`], [`Writer::apply_all`]): run through the engine in order
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
//! feed the writer.
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

mod commit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use ids::IncidentId;
use store::{IncidentRecord, InsertOutcome};
use sync_core::{Effect, Engine, EngineConfig, IncidentState, Input, Timestamp};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::commit::{load_engine, spawn_checkpointer, writer_loop};
use crate::clock;
use crate::context::Context;
use crate::http::Unavailable;

/// The most jobs (engine inputs and inbox records) one group commit takes.
pub const GROUP_COMMIT_MAX: usize = 256;

/// The most inbox records a group may hold for its new PagerDuty deliveries to be processed in
/// it ([`Then::Process`]). A larger group means a burst: its deliveries are acknowledged first
/// and the inbox loop processes them after, so answers do not wait for engine work.
const INLINE_RECORDS_MAX: usize = 8;

/// The most engine inputs of deliveries acknowledged in a burst that the writer keeps for the
/// inbox loop ([`Writer::take_parsed`]), so it need not parse their stored bodies again. Past
/// this the loop parses them.
const PARSED_MAX: usize = 2048;

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
pub type Extra = Box<dyn Fn(&mut store::Tx<'_>, Timestamp) -> Result<(), store::Error> + Send>;

/// An inbox insert run by the writer in a group transaction (run again if the group it was in
/// failed and it is retried alone).
pub(crate) type Record =
    Box<dyn Fn(&mut store::Tx<'_>) -> Result<InsertOutcome, store::Error> + Send>;

/// Why the writer answered a job without its result.
#[derive(Debug)]
pub(crate) enum WriteFailed {
    /// The engine step or the transaction failed; nothing of the job was committed.
    Commit(anyhow::Error),
    /// The transaction committed but a record's outcome went missing (a bug).
    LostOutcome,
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteFailed::Commit(err) => write!(f, "{err:#}"),
            WriteFailed::LostOutcome => f.write_str("a record lost its outcome"),
        }
    }
}

// The `Display` above already shows the whole chain, so no `source` is named.
impl std::error::Error for WriteFailed {}

/// One engine input waiting for the writer.
struct InputJob {
    input: Input,
    extra: Extra,
    done: tokio::sync::oneshot::Sender<Result<Vec<Effect>, WriteFailed>>,
    /// Its room in the writer's queue, given back once it is answered.
    _room: OwnedSemaphorePermit,
}

/// What the writer does with a record it inserted, in the same transaction.
pub(crate) enum Then {
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
    done: tokio::sync::oneshot::Sender<Result<InsertOutcome, WriteFailed>>,
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

/// The only owner of the engine and of the store's write transactions (through the writer
/// thread, see the module docs). Built by `Writer::start`; [`crate::bridge::Bridge`] holds it.
pub struct Writer {
    ctx: Arc<Context>,
    engine: Mutex<Engine>,
    engine_config: EngineConfig,
    sender: Mutex<mpsc::Sender<Job>>,
    /// Room in the writer's queue for inbox records (see [`Limits::write_queue`]).
    queue: Arc<Semaphore>,
    /// Room in the writer's queue for engine inputs (the same size, so background work never
    /// takes the room of requests).
    input_queue: Arc<Semaphore>,
    limits: Limits,
    commit_groups: AtomicU64,
    /// When the writer last looked for idle incidents to unload.
    last_trim: Mutex<std::time::Instant>,
    /// The engine inputs of committed deliveries left to the inbox loop, by inbox sequence
    /// number, as their requests parsed them (at most [`PARSED_MAX`]).
    parsed: Mutex<std::collections::BTreeMap<i64, Box<Input>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Restores the engine from the store and starts the writer and checkpointer threads. The
    /// threads end when the returned writer is dropped.
    pub(crate) fn start(
        ctx: Arc<Context>,
        engine_config: EngineConfig,
        limits: Limits,
    ) -> anyhow::Result<Arc<Self>> {
        let now = ctx.now();
        let engine = load_engine(&ctx.store, &engine_config, now)?;
        let (sender, jobs) = mpsc::channel();
        let writer = Arc::new(Self {
            ctx,
            engine: Mutex::new(engine),
            engine_config,
            sender: Mutex::new(sender),
            queue: Arc::new(Semaphore::new(limits.write_queue.max(1))),
            input_queue: Arc::new(Semaphore::new(limits.write_queue.max(1))),
            limits,
            commit_groups: AtomicU64::new(0),
            last_trim: Mutex::new(clock::instant()),
            parsed: Mutex::default(),
        });
        let checkpoints = spawn_checkpointer(&writer.ctx.store)?;
        let weak = Arc::downgrade(&writer);
        std::thread::Builder::new()
            .name("pdbridge-writer".to_owned())
            .spawn(move || writer_loop(&weak, &jobs, checkpoints.as_ref()))
            .context("starting the writer thread")?;
        Ok(writer)
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
        let now = self.ctx.now();
        let timer_soon = self
            .next_timer()
            .is_some_and(|t| t <= now.saturating_add(horizon));
        let drained = self.ctx.store.read(|tx| tx.status(now, 0)).is_ok_and(|s| {
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
        F: Fn(&mut store::Tx<'_>, Timestamp) -> Result<(), store::Error> + Send + 'static,
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
            .map_err(anyhow::Error::new)
    }

    /// Like [`Writer::apply`] for several inputs at once: they are queued together, in order
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
                    .and_then(|r| r.map_err(anyhow::Error::new)),
                Err(err) => Err(err),
            });
        }
        results
    }

    /// Inserts an inbox record through the writer (group commit) and answers once it committed.
    /// Waits at most [`Limits::ingest_wait`] for room in the queue; a full queue is
    /// [`Unavailable`] (503), so overload slows answers down or refuses them, never piles up.
    pub(crate) async fn record(
        &self,
        record: Record,
        then: Then,
    ) -> Result<InsertOutcome, Unavailable> {
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
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| anyhow::anyhow!("the writer thread has stopped"))
    }

    /// The engine input of the stored delivery `seq` as its request parsed it, when the writer
    /// kept it (a delivery acknowledged in a burst, see [`PARSED_MAX`]); the inbox loop parses
    /// the stored body otherwise. Parsing the same body again gives the same input. The loop
    /// asks in arrival order, so inputs of older deliveries (ones it parsed because it read
    /// their rows before the writer kept their inputs) are dropped here.
    pub fn take_parsed(&self, seq: i64) -> Option<Input> {
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut newer = parsed.split_off(&seq);
        std::mem::swap(&mut *parsed, &mut newer);
        parsed.remove(&seq).map(|input| *input)
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
            match self.ctx.store.checkpoint() {
                Ok(report) => tracing::debug!(?report, "WAL checkpoint"),
                Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
            }
        }
    }

    /// An incident's persisted state, when the store has one.
    fn stored_state(&self, id: &IncidentId) -> anyhow::Result<Option<IncidentState>> {
        let record = self
            .ctx
            .store
            .read(|tx| tx.incident(id))
            .context("reading an incident state")?;
        record
            .map(|r| r.state.decode().context("decoding an incident state"))
            .transpose()
    }

    /// Unloads resolved incidents that await nothing and need no reconciliation (a card whose
    /// post failed is not done) from memory; their state stays in the store and is loaded
    /// again by [`Writer::apply`] when an input names them. Returns how many were unloaded.
    pub fn unload_idle_resolved(&self) -> usize {
        let now = self.ctx.now();
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
}
