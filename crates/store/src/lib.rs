//! SQLite persistence for pdbridge: inbox, engine state, outbox, identity cache and audit log.
//!
//! The store owns one SQLite database and knows nothing of HTTP, Slack or PagerDuty semantics:
//! payloads are opaque JSON (raw webhook bodies are kept byte for byte as text, engine state and
//! effects as [`Json`] text the caller encodes and decodes), so it does not depend on `sync-core`.
//!
//! # Call order
//! 1. [`Store::open`] (or [`Store::open_with`], [`Store::open_in_memory`]) applies the versioned
//!    migrations and the connection pragmas. Tools that only look (`pdbridge status`) use
//!    [`Store::open_read_only`], which never migrates.
//! 2. At server start, call `store.write(|tx| tx.release_claims())` so effects claimed by a
//!    crashed process become claimable at once (leases also expire on their own).
//! 3. Record an input in one [`Store::write`] ([`Tx::insert_webhook`], [`Tx::insert_action`]),
//!    then answer the request. Process it in one more `write`: [`Tx::put_incident`], one
//!    [`Tx::enqueue`] per effect, and `mark_*_processed`. Each closure commits entirely when it
//!    returns `Ok` and not at all when it returns `Err` or panics. Wake the dispatcher after it
//!    returns.
//! 4. The dispatcher loops on [`Tx::claim_due`] and reports each attempt with [`Tx::complete`],
//!    [`Tx::fail`] or [`Tx::abandon`]; [`Tx::next_due_at`] says how long it may sleep.
//! 5. Periodically call [`Tx::prune`]; read-only views (status, metrics) use [`Store::read`].
//! 6. An incident declared from Slack is stored with [`Tx::insert_declaration`] before
//!    PagerDuty is called, read back with [`Tx::due_declarations`], and moves on with
//!    [`Tx::retry_declaration`] or, once, [`Tx::finish_declaration`].
//!
//! ```
//! use ids::{EventId, IncidentId, Timestamp, WebhookId};
//! use serde_json::json;
//! use store::{EffectId, Json, NewEffect, NewWebhook, OrderKey, RateKey, Store};
//!
//! let store = Store::open_in_memory()?;
//! let now = Timestamp::from_millis(1_764_000_000_000);
//! let incident = IncidentId::new("PGR0VU2");
//! let (webhook_id, event_id) = (WebhookId::new("W1"), EventId::new("E1"));
//!
//! // The HTTP handler: store the verified body, then answer 202 (or 200 for a duplicate).
//! let outcome = store.write(|tx| {
//!     tx.insert_webhook(&NewWebhook {
//!         webhook_id: Some(&webhook_id),
//!         event_id: &event_id,
//!         event_type: "incident.triggered",
//!         incident_id: Some(&incident),
//!         payload: r#"{"event":{"id":"E1"}}"#,
//!         received_at: now,
//!     })
//! })?;
//! assert!(outcome.is_inserted());
//!
//! // The processor: engine state and effects commit together with "processed".
//! store.write(|tx| {
//!     for row in tx.unprocessed_webhooks(100)? {
//!         tx.enqueue(&NewEffect {
//!             id: &EffectId::new(format!("{incident}/post")),
//!             order_key: &OrderKey::from(&incident),
//!             rate_key: &RateKey::new("slack"),
//!             payload: &Json::encode(&json!({ "post_card": incident }))?,
//!             due_at: now,
//!             created_at: now,
//!         })?;
//!         tx.mark_webhook_processed(row.seq, now)?;
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//!
//! // The dispatcher: claim, execute, report.
//! let later = Timestamp::from_millis(now.as_millis() + 5);
//! for effect in store.write(|tx| tx.claim_due(now, 16))? {
//!     store.write(|tx| tx.complete(&effect.id, later))?;
//! }
//! assert_eq!(store.read(|tx| tx.outbox_stats(later))?.depth, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Invariants
//! - Time is always passed in as an [`ids::Timestamp`] (stored as `INTEGER` Unix milliseconds);
//!   nothing here reads a clock.
//! - A claimed outbox row is leased, never deleted: a crash at any point loses no effect. Rows
//!   leave the pending set only through `complete` or `abandon`, and finished rows are kept (for
//!   effect-id dedupe) until [`Tx::prune`] removes them after the retention period.
//! - Per ordering key the outbox is FIFO: only the oldest unfinished row of a key can be claimed,
//!   and not while it is leased or not yet due. Different keys never block each other.
//! - Inbox dedupe keys (PagerDuty `X-Webhook-Id` and `event.id`, Slack action keys) are kept for at
//!   least [`StoreOptions::retention`] (default 7 days) after arrival, and unprocessed rows are
//!   never pruned.
//! - The audit log is append-only: SQLite triggers refuse `UPDATE` and `DELETE` on it.
//! - No statement binds a bare `LIMIT ?N`: SQLite's planner reads a bound LIMIT's value, so
//!   every new binding expires the cached statement and the next step parses and plans it again.
//!   Bound limits are written `LIMIT +?N`, an expression the planner does not look into.
//!
//! # Durability
//! The database runs in WAL mode. With the default [`Durability::Normal`]
//! (`synchronous=NORMAL`) a committed transaction survives a process crash (`kill -9`), but the
//! newest commits can be lost on an OS crash or power loss. A webhook already answered 2xx is then
//! not redelivered by PagerDuty (the reconciler repairs its card later). [`Durability::Full`]
//! (`synchronous=FULL`, one fsync per commit) closes that gap at the cost of commit latency.
//!
//! # Threading
//! Every method is synchronous and short. [`Store`] is `Send + Sync`: a file database has one
//! write connection and one read connection, each behind a mutex, so [`Store::read`] never
//! waits for a write transaction (WAL); an in-memory database has a single connection. From
//! async code use an `Arc<Store>` and `tokio::task::spawn_blocking(move || store.write(...))`,
//! or a dedicated writer thread fed by a channel to batch many inputs into one transaction
//! (group commit), as pdbridge does.
//!
//! # WAL size
//! SQLite checkpoints on its own once the WAL holds 64 pages (256 KiB; SQLite's default is
//! 1000), and a reset WAL file is truncated back to 16 MiB. Small, frequent checkpoints keep
//! each one's copy and fsync short: with 1000 pages the fsync waited for megabytes of
//! writeback, and both ingest throughput and the commit latency tail were worse (measured in
//! `docs/benchmarks.md`). With [`StoreOptions::deferred_checkpoints`] a commit does not
//! checkpoint at all (below a 4096-page backstop); once it has answered whoever waited for the
//! commit, the committing thread asks [`Store::checkpoint_due`] and, when it is, either hands
//! the checkpoint to a thread of its own that runs it on a [`Checkpointer`], a connection of
//! its own (a passive checkpoint runs alongside new commits, so its copy and fsync delay
//! neither answers nor later commits), or runs it itself ([`Store::checkpoint_passive`]). A
//! checkpoint beside commits that follow each other without a gap never copies the newest
//! frames, so the WAL never restarts from its beginning: under a sustained load the committing
//! thread checkpoints itself, and [`Store::checkpoint_if_behind`] does so whenever the WAL
//! passed 256 pages. Readers can keep checkpoints from resetting the WAL, so the writer should
//! also call [`Store::checkpoint`] (`wal_checkpoint(TRUNCATE)`) now and then, best while idle.
#![forbid(unsafe_code)]

mod audit;
mod declare;
mod identity;
mod inbox;
mod oncall;
mod outbox;
mod poll;
mod schema;
mod state;
mod status;
mod types;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

pub use audit::{AuditEntry, AuditRecord, UnmappedUser};
pub use declare::{DeclarationRow, DeclarationStatus, NewDeclaration};
pub use identity::IdentityEntry;
pub use inbox::{
    ActionRow, NewAction, NewUnparsedWebhook, NewWebhook, UnparsedWebhook, WebhookRow,
};
pub use outbox::{Buckets, NewEffect, OutboxBacklog, OutboxRow, OutboxStats};
pub use state::IncidentRecord;
pub use status::{PruneReport, RecentFailure, StatusSummary};
pub use types::{DedupeKey, EffectId, IdentityKey, InsertOutcome, Json, OrderKey, RateKey};

/// Seven days, the default dedupe retention.
pub const SEVEN_DAYS: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer pdbridge whose schema this build does not know.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The `user_version` found in the database.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// A read-only open found a database that has not been migrated to this build's schema
    /// (start the server, or open it read-write once).
    #[error("database schema version {found} is older than this build's ({supported})")]
    SchemaTooOld {
        /// The `user_version` found in the database.
        found: i64,
        /// The version this build expects.
        supported: i64,
    },
    /// A JSON column could not be encoded or decoded.
    #[error("invalid JSON in {table}: {source}")]
    Json {
        /// The table holding the column.
        table: &'static str,
        /// The underlying serde error.
        source: serde_json::Error,
    },
    /// `complete`, `fail` or `abandon` named an effect that is not in the outbox.
    #[error("no outbox effect with id {0}")]
    UnknownEffect(EffectId),
    /// `mark_*_processed` named an inbox row that does not exist.
    #[error("no {inbox} inbox row with seq {seq}")]
    UnknownInboxRow {
        /// Which inbox (`"webhook"` or `"action"`).
        inbox: &'static str,
        /// The sequence number that was asked for.
        seq: i64,
    },
}

/// How hard SQLite works to make a commit durable. See the crate docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a process crash; may lose the newest commits on power loss.
    #[default]
    Normal,
    /// `synchronous=FULL`: survives power loss; one fsync per commit.
    Full,
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The `synchronous` pragma.
    pub durability: Durability,
    /// How long a statement waits for a lock held by another connection before failing.
    pub busy_timeout: Duration,
    /// How long a row returned by [`Tx::claim_due`] stays invisible to later claims.
    pub claim_lease: Duration,
    /// How long processed inbox rows and finished outbox rows are kept (dedupe window).
    pub retention: Duration,
    /// When true, a commit never checkpoints on its own (up to a backstop of 4096 WAL pages):
    /// the caller asks [`Store::checkpoint_due`] after it has answered whoever waited for the
    /// commit and runs the checkpoint on another thread ([`Checkpointer`]) or itself
    /// ([`Store::checkpoint_passive`]), so no answer waits on a checkpoint's copy and fsync.
    /// When false (the default), the commit that crosses 64 WAL pages checkpoints before it
    /// returns.
    pub deferred_checkpoints: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            claim_lease: Duration::from_secs(60),
            retention: SEVEN_DAYS,
            deferred_checkpoints: false,
        }
    }
}

/// Settings the transaction methods need.
#[derive(Debug, Clone, Copy)]
struct TxSettings {
    claim_lease: Duration,
    retention: Duration,
    busy_timeout: Duration,
}

impl From<&StoreOptions> for TxSettings {
    fn from(options: &StoreOptions) -> Self {
        Self {
            claim_lease: options.claim_lease,
            retention: options.retention,
            busy_timeout: options.busy_timeout,
        }
    }
}

/// Pages of WAL after which SQLite checkpoints on its own after a commit (256 KiB).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 64;
/// WAL pages a writer adds between the checkpoints it hands to a [`Checkpointer`] (256 KiB).
const DEFERRED_CHECKPOINT_PAGES: i64 = 64;
/// WAL size in pages (1 MiB) at which [`Store::checkpoint_if_behind`] checkpoints on the
/// write connection, so that a WAL a [`Checkpointer`] cannot catch up with restarts.
const CATCH_UP_PAGES: i64 = 256;
/// The size a WAL file is truncated back to after a checkpoint resets it.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 16 * 1024 * 1024;
/// Prepared statements kept per connection (every hot statement fits).
const STATEMENT_CACHE: usize = 64;
/// WAL pages at which a commit checkpoints even with [`StoreOptions::deferred_checkpoints`],
/// so the WAL stays bounded if nobody checkpoints when [`Store::checkpoint_due`].
const DEFERRED_BACKSTOP_PAGES: i64 = 4096;

thread_local! {
    /// The WAL's size in pages after this thread's last commit to a store with deferred
    /// checkpoints (see [`Store::checkpoint_due`]).
    static WAL_FRAMES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    /// The WAL size at which [`Store::checkpoint_due`] is next true on this thread.
    static DUE_AT: std::cell::Cell<i64> = const { std::cell::Cell::new(DEFERRED_CHECKPOINT_PAGES) };
}

/// The WAL hook of a store with deferred checkpoints: notes the WAL's size for
/// [`Store::checkpoint_due`], and checkpoints at once only past the backstop.
fn note_wal_frames(wal: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    let frames = i64::from(frames);
    WAL_FRAMES.set(frames);
    if frames >= DEFERRED_BACKSTOP_PAGES {
        // The commit has happened: an error here would only make it look failed. A checkpoint
        // kept back (a `Checkpointer` is running one) is tried again after the next commit.
        let _ = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE);
    }
    Ok(())
}

/// How long [`Store::checkpoint`] waits for readers before giving up for this time.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(100);

/// Locks `m`; what it guards stays consistent even if a holder panicked.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `PRAGMA wal_checkpoint(mode)`; a checkpoint kept back by a lock reports `busy`.
fn run_checkpoint(conn: &Connection, mode: &str) -> Result<CheckpointReport, Error> {
    let result = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok(CheckpointReport {
            busy: r.get::<_, i64>(0)? != 0,
            wal_frames: r.get(1)?,
            checkpointed: r.get(2)?,
        })
    });
    match result {
        Ok(report) => Ok(report),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(CheckpointReport {
                busy: true,
                ..CheckpointReport::default()
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The pdbridge database. Cheap to share as `Arc<Store>`; see the crate docs for call order.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection for [`Store::read`] on file databases, so reads never wait for a
    /// write transaction (WAL lets one writer and readers work at once).
    reader: Option<Mutex<Connection>>,
    /// The file of a file database, for [`Store::checkpointer`].
    path: Option<std::path::PathBuf>,
    /// Held by whoever checkpoints (this store or its [`Checkpointer`]): SQLite runs one
    /// checkpoint at a time and answers `busy` to a second instead of waiting for the first.
    checkpointing: Arc<Mutex<()>>,
    settings: TxSettings,
}

/// A connection of its own to a file database that only runs passive checkpoints
/// (`wal_checkpoint(PASSIVE)`), for a thread other than the writer's: in WAL mode a passive
/// checkpoint copies committed pages back into the database while new commits append to the
/// WAL, so neither waits for the other's fsync. See [`Store::checkpoint_due`].
#[derive(Debug)]
pub struct Checkpointer {
    conn: Connection,
    checkpointing: Arc<Mutex<()>>,
}

impl Checkpointer {
    /// Copies as much of the WAL back into the database as no reader still needs, without
    /// waiting for readers or writers; `busy` when another checkpoint was running.
    pub fn checkpoint(&self) -> Result<CheckpointReport, Error> {
        let _one_at_a_time = lock_ignoring_poison(&self.checkpointing);
        run_checkpoint(&self.conn, "PASSIVE")
    }
}

/// What one [`Store::checkpoint`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckpointReport {
    /// True when a reader kept the checkpoint from finishing (it is retried later).
    pub busy: bool,
    /// WAL frames present before the checkpoint (`-1` when the database is not in WAL mode).
    pub wal_frames: i64,
    /// WAL frames copied back into the database.
    pub checkpointed: i64,
}

impl Store {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, &StoreOptions::default())
    }

    /// Opens (creating if needed) the database at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        let mut store = Self::init(Connection::open(path)?, options)?;
        // Only a WAL file database can be read by a second connection (not `:memory:`).
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(store);
        }
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(options.busy_timeout)?;
        reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        store.reader = Some(Mutex::new(reader));
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// Opens an existing database for reading only: no migration, no write. Fails when the file
    /// does not exist or its schema is not exactly the one this build knows.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, Error> {
        let options = StoreOptions::default();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(options.busy_timeout)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = schema::latest_version();
        if found > supported {
            return Err(Error::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(Error::SchemaTooOld { found, supported });
        }
        Ok(Self {
            conn: Mutex::new(conn),
            reader: None,
            path: None,
            checkpointing: Arc::default(),
            settings: TxSettings::from(&options),
        })
    }

    /// Opens a private in-memory database (for tests); WAL does not apply.
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory()?, &StoreOptions::default())
    }

    fn init(mut conn: Connection, options: &StoreOptions) -> Result<Self, Error> {
        conn.busy_timeout(options.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Returns the resulting mode: "wal" for files, "memory" for in-memory databases.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        let sync = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Keep the WAL bounded: SQLite checkpoints after commits once it holds this many pages,
        // and a reset WAL file is truncated back to the limit (see also `Store::checkpoint`).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        if options.deferred_checkpoints {
            // Replaces the automatic checkpoint's hook (see `Store::checkpoint_if_due`).
            conn.wal_hook(Some(note_wal_frames));
        }
        let _limit: i64 = conn.query_row(
            &format!("PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}"),
            [],
            |r| r.get(0),
        )?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            reader: None,
            path: None,
            checkpointing: Arc::default(),
            settings: TxSettings::from(options),
        })
    }

    /// Locks the connection. A panic inside a closure rolls its transaction back before the
    /// guard is released, so a poisoned lock still guards a consistent connection.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        lock_ignoring_poison(&self.conn)
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`). Commits when `f` returns `Ok`;
    /// rolls everything back when it returns `Err` or panics. `f` must not call back into the
    /// same `Store` (the connection lock is not reentrant).
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::from)?;
        let mut tx = Tx {
            tx,
            settings: self.settings,
        };
        let value = f(&mut tx)?;
        tx.tx.commit().map_err(Error::from)?;
        Ok(value)
    }

    /// Runs `f` in a read transaction: every query inside sees one consistent snapshot of what
    /// was committed. On a file database it runs on a second connection, so it never waits for
    /// a write transaction (nor makes one wait).
    pub fn read<T, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut conn = match &self.reader {
            Some(reader) => lock_ignoring_poison(reader),
            None => self.lock(),
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(Error::from)?;
        let tx = Tx {
            tx,
            settings: self.settings,
        };
        f(&tx)
    }

    /// The schema version of the open database (read on the read connection when there is one).
    pub fn schema_version(&self) -> Result<i64, Error> {
        let conn = match &self.reader {
            Some(reader) => lock_ignoring_poison(reader),
            None => self.lock(),
        };
        Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Copies the WAL back into the database and truncates the WAL file
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting at most 100 ms for readers; call it
    /// periodically from the writer so the WAL stays bounded even when readers kept the automatic
    /// checkpoints from resetting it. A checkpoint kept back by a reader reports `busy` and is
    /// simply tried again next time.
    pub fn checkpoint(&self) -> Result<CheckpointReport, Error> {
        let _one_at_a_time = lock_ignoring_poison(&self.checkpointing);
        let conn = self.lock();
        conn.busy_timeout(CHECKPOINT_BUSY)?;
        let result = run_checkpoint(&conn, "TRUNCATE");
        conn.busy_timeout(self.settings.busy_timeout)?;
        result
    }

    /// With [`StoreOptions::deferred_checkpoints`], true when the calling thread's commits have
    /// added 64 WAL pages since it was last true (or since the WAL last restarted from its
    /// beginning, which a completed checkpoint lets the next commit do). Call it from the
    /// thread that commits, right after answering whoever waited for the commit, and when it is
    /// true have a [`Checkpointer`] run the checkpoint on another thread, or run
    /// [`Store::checkpoint_passive`]. The WAL size is kept per thread, so a thread committing
    /// to several such stores should call it after each commit.
    pub fn checkpoint_due(&self) -> bool {
        let frames = WAL_FRAMES.get();
        let mut due_at = DUE_AT.get();
        if frames + DEFERRED_CHECKPOINT_PAGES < due_at {
            // Fewer pages than when it was last due: the WAL restarted.
            due_at = DEFERRED_CHECKPOINT_PAGES;
        }
        let due = frames >= due_at;
        DUE_AT.set(if due {
            frames + DEFERRED_CHECKPOINT_PAGES
        } else {
            due_at
        });
        due
    }

    /// With [`StoreOptions::deferred_checkpoints`], runs [`Store::checkpoint_passive`] once the
    /// WAL holds 256 pages as of the calling thread's last commit; `None` when it holds fewer.
    /// A [`Checkpointer`] copies pages while commits go on, but the WAL restarts from its
    /// beginning only when a commit starts after a checkpoint copied every frame, which never
    /// happens while commits follow each other without a gap: call this from the committing
    /// thread between commits, so the WAL stays short under a sustained load too. It copies
    /// only what the checkpointer has not.
    pub fn checkpoint_if_behind(&self) -> Result<Option<CheckpointReport>, Error> {
        if WAL_FRAMES.get() < CATCH_UP_PAGES {
            return Ok(None);
        }
        self.checkpoint_passive().map(Some)
    }

    /// Runs a passive checkpoint (`wal_checkpoint(PASSIVE)`) on the write connection now,
    /// after the [`Checkpointer`]'s if one is running: copies what no reader still needs and
    /// lets the next commit restart the WAL from its beginning when that was everything.
    pub fn checkpoint_passive(&self) -> Result<CheckpointReport, Error> {
        let _one_at_a_time = lock_ignoring_poison(&self.checkpointing);
        let conn = self.lock();
        run_checkpoint(&conn, "PASSIVE")
    }

    /// Opens a [`Checkpointer`] on this file database; `None` for an in-memory one.
    pub fn checkpointer(&self) -> Result<Option<Checkpointer>, Error> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let conn = Connection::open(path)?;
        conn.busy_timeout(CHECKPOINT_BUSY)?;
        Ok(Some(Checkpointer {
            conn,
            checkpointing: Arc::clone(&self.checkpointing),
        }))
    }

    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`), which must not exist.
    /// Safe while the server runs.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<(), Error> {
        let dest = dest.as_ref().to_string_lossy().into_owned();
        self.lock().execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }
}

/// One open transaction. Read methods take `&self`, write methods `&mut self`, so the closure of
/// [`Store::read`] cannot write.
#[derive(Debug)]
pub struct Tx<'c> {
    tx: rusqlite::Transaction<'c>,
    settings: TxSettings,
}

impl Tx<'_> {
    /// Runs one statement through the connection's prepared-statement cache.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// Reads one row through the connection's prepared-statement cache.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, f)
    }

    /// The single global JSON slot (for engine-wide state), if set.
    pub fn global(&self) -> Result<Option<serde_json::Value>, Error> {
        let text: Option<String> = self
            .tx
            .query_row("SELECT value FROM global_state WHERE slot = 0", [], |r| {
                r.get(0)
            })
            .optional()?;
        text.map(|t| types::from_json("global_state", &t))
            .transpose()
    }

    /// Replaces the global JSON slot.
    pub fn put_global(
        &mut self,
        value: &serde_json::Value,
        now: ids::Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO global_state (slot, value, updated_at) VALUES (0, ?1, ?2)
             ON CONFLICT (slot) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            rusqlite::params![types::to_json("global_state", value)?, types::Millis(now)],
        )?;
        Ok(())
    }
}
