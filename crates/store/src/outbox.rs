//! The outbox of effects: per-key FIFO, leased claims, retries that keep the row.

use std::time::Duration;

use ids::Timestamp;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::inbox::limit_param;
use crate::types::{EffectId, InsertOutcome, Json, Millis, OrderKey, RateKey, opt_ts, ts};
use crate::{Error, Tx};

/// An effect to enqueue.
#[derive(Debug, Clone, Copy)]
pub struct NewEffect<'a> {
    /// The caller's deterministic effect id; enqueueing an id that is already stored is a no-op.
    pub id: &'a EffectId,
    /// The FIFO lane (normally the incident id).
    pub order_key: &'a OrderKey,
    /// The rate-limit bucket.
    pub rate_key: &'a RateKey,
    /// The opaque effect description.
    pub payload: &'a Json,
    /// The earliest time the effect may run.
    pub due_at: Timestamp,
    /// When it was enqueued.
    pub created_at: Timestamp,
}

/// A stored effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Enqueue order (strictly increasing).
    pub seq: i64,
    /// The caller's effect id.
    pub id: EffectId,
    /// The FIFO lane.
    pub order_key: OrderKey,
    /// The rate-limit bucket.
    pub rate_key: RateKey,
    /// The opaque effect description.
    pub payload: Json,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// The earliest time of the next attempt.
    pub due_at: Timestamp,
    /// How many attempts have failed so far.
    pub attempts: u32,
    /// The error text of the last failed attempt.
    pub last_error: Option<String>,
}

/// The outbox depth figures that are cheap to read at any depth ([`Tx::outbox_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboxBacklog {
    /// Unfinished effects (claimed or not).
    pub depth: u64,
    /// `now - created_at` of the oldest unfinished effect, if any (serialized as whole
    /// milliseconds, `oldest_age_ms`, the form `pdbridge status --json` prints).
    #[serde(rename = "oldest_age_ms", with = "crate::types::opt_millis", default)]
    pub oldest_age: Option<Duration>,
}

/// Outbox figures for metrics and `pdbridge status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboxStats {
    /// Unfinished effects (claimed or not).
    pub depth: u64,
    /// Unfinished effects currently leased by a claim.
    pub in_flight: u64,
    /// Unfinished effects whose last attempt failed.
    pub retrying: u64,
    /// `now - created_at` of the oldest unfinished effect, if any (serialized as whole
    /// milliseconds, `oldest_age_ms`, the form `pdbridge status --json` prints).
    #[serde(rename = "oldest_age_ms", with = "crate::types::opt_millis", default)]
    pub oldest_age: Option<Duration>,
}

const COLUMNS: &str =
    "seq, effect_id, order_key, rate_key, payload, created_at, due_at, attempts, last_error";

/// The due, unleased heads in run order (see [`Tx::claim_due`]).
const CLAIM_DUE: &str = "SELECT seq, effect_id, order_key, rate_key, payload, created_at, due_at,
        attempts, last_error
    FROM outbox
    WHERE head = 1 AND due_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1)
    ORDER BY due_at, seq
    LIMIT +?2";

/// The due, unleased heads of one rate-limit bucket in run order (see [`Tx::claim_due_in`]).
const CLAIM_DUE_ONLY: &str =
    "SELECT seq, effect_id, order_key, rate_key, payload, created_at, due_at,
        attempts, last_error
    FROM outbox
    WHERE head = 1 AND rate_key = ?3 AND due_at <= ?1
      AND (claimed_until IS NULL OR claimed_until <= ?1)
    ORDER BY due_at, seq
    LIMIT +?2";

/// The due, unleased heads of every bucket but one, in run order (see [`Tx::claim_due_in`]).
const CLAIM_DUE_EXCEPT: &str = "SELECT seq, effect_id, order_key, rate_key, payload, created_at,
        due_at, attempts, last_error
    FROM outbox
    WHERE head = 1 AND due_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1)
      AND rate_key <> ?3
    ORDER BY due_at, seq
    LIMIT +?2";

/// The error recorded for an attempt whose claim ended without an outcome.
pub const INTERRUPTED: &str = "interrupted: the attempt never reported back (restart or lost commit); it may have taken effect";

/// Which rate-limit buckets a claim takes effects from ([`Tx::claim_due_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets<'a> {
    /// Every bucket.
    All,
    /// Only this bucket.
    Only(&'a RateKey),
    /// Every bucket but this one.
    Except(&'a RateKey),
}

/// The earliest due time among unleased heads (see [`Tx::next_due_at`]).
const NEXT_DUE: &str = "SELECT due_at FROM outbox
    WHERE head = 1 AND (claimed_until IS NULL OR claimed_until <= ?1)
    ORDER BY due_at, seq LIMIT 1";

fn from_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.get(0)?,
        id: EffectId::new(r.get::<_, String>(1)?),
        order_key: OrderKey::new(r.get::<_, String>(2)?),
        rate_key: RateKey::new(r.get::<_, String>(3)?),
        payload: Json::column(r, 4, "outbox")?,
        created_at: ts(r, 5)?,
        due_at: ts(r, 6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
    })
}

impl Tx<'_> {
    /// Enqueues an effect; a second enqueue of the same id (pending or finished) changes nothing.
    pub fn enqueue(&mut self, effect: &NewEffect<'_>) -> Result<InsertOutcome, Error> {
        let existing: Option<i64> = self
            .row(
                "SELECT seq FROM outbox WHERE effect_id = ?1",
                [effect.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(seq) = existing {
            return Ok(InsertOutcome::Duplicate(seq));
        }
        // The new row heads its key when no older row of the key is unfinished.
        self.exec(
            "INSERT INTO outbox (effect_id, order_key, rate_key, payload, created_at, due_at, head)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                     NOT EXISTS (SELECT 1 FROM outbox WHERE order_key = ?2 AND finished_at IS NULL))",
            params![
                effect.id.as_str(),
                effect.order_key.as_str(),
                effect.rate_key.as_str(),
                effect.payload.as_str(),
                Millis(effect.created_at),
                Millis(effect.due_at),
            ],
        )?;
        Ok(InsertOutcome::Inserted(self.tx.last_insert_rowid()))
    }

    /// Claims up to `limit` runnable effects: for each ordering key, its oldest unfinished row,
    /// if that row is due and not leased. Each returned row is leased for the store's
    /// `claim_lease`; it stays in the outbox until `complete` or `abandon`. Ordered by due time,
    /// then enqueue order. It reads the heads index from the earliest due time on, so its cost
    /// follows the rows it returns (plus leased heads), not the depth of the outbox.
    pub fn claim_due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRow>, Error> {
        self.claim_due_in(now, limit, Buckets::All)
    }

    /// [`Tx::claim_due`] limited to some rate-limit buckets, so a caller can keep separate
    /// in-flight budgets (say, effects waiting on Slack's limits never take every slot from
    /// PagerDuty calls). `Only` reads just that bucket's heads; `Except` skips the excluded
    /// bucket's heads as it reads.
    pub fn claim_due_in(
        &mut self,
        now: Timestamp,
        limit: usize,
        buckets: Buckets<'_>,
    ) -> Result<Vec<OutboxRow>, Error> {
        let limit = limit_param(limit);
        let (sql, key) = match buckets {
            Buckets::All => (CLAIM_DUE, None),
            Buckets::Only(key) => (CLAIM_DUE_ONLY, Some(key.as_str())),
            Buckets::Except(key) => (CLAIM_DUE_EXCEPT, Some(key.as_str())),
        };
        let rows: Vec<OutboxRow> = {
            let mut stmt = self.tx.prepare_cached(sql)?;
            let rows = match key {
                None => stmt.query_map(params![Millis(now), limit], from_row)?,
                Some(key) => stmt.query_map(params![Millis(now), limit, key], from_row)?,
            };
            rows.collect::<Result<_, _>>()?
        };
        let lease_until = Millis(now.saturating_add(self.settings.claim_lease));
        // A row still holding an (expired) lease was claimed before and its attempt never
        // reported back (a crash, or an outcome that could not be committed): that attempt
        // counts, so the caller can tell it may have taken effect.
        let mut stmt = self.tx.prepare_cached(
            "UPDATE outbox SET
                 attempts = attempts + (claimed_until IS NOT NULL),
                 last_error = CASE WHEN claimed_until IS NOT NULL THEN ?3 ELSE last_error END,
                 claimed_until = ?2
             WHERE seq = ?1
             RETURNING attempts, last_error",
        )?;
        let mut rows = rows;
        for row in &mut rows {
            let (attempts, last_error) = stmt
                .query_row(params![row.seq, lease_until, INTERRUPTED], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            row.attempts = attempts;
            row.last_error = last_error;
        }
        Ok(rows)
    }

    /// Expires every lease, making claimed rows claimable again. Call once at startup: leases
    /// held by a crashed process would otherwise block their keys until they expire. The next
    /// claim of such a row counts its interrupted attempt in [`OutboxRow::attempts`].
    pub fn release_claims(&mut self) -> Result<u64, Error> {
        let n = self.exec(
            "UPDATE outbox SET claimed_until = 0
             WHERE finished_at IS NULL AND claimed_until IS NOT NULL AND claimed_until > 0",
            [],
        )?;
        Ok(n as u64)
    }

    /// Records success: the row leaves the pending set (and unblocks its key) but is kept for
    /// effect-id dedupe until pruned. Idempotent for a finished row.
    pub fn complete(&mut self, id: &EffectId, now: Timestamp) -> Result<(), Error> {
        self.finish(id, now, None)
    }

    /// Records a failed attempt: increments `attempts`, stores the error, releases the lease
    /// and makes the row due again at `next_due_at`. The row keeps its place at the head of its
    /// key. Returns the new attempt count.
    pub fn fail(
        &mut self,
        id: &EffectId,
        now: Timestamp,
        next_due_at: Timestamp,
        error: &str,
    ) -> Result<u32, Error> {
        let attempts: Option<u32> = self
            .row(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, last_error_at = ?3,
                     due_at = ?4, claimed_until = NULL
                 WHERE effect_id = ?1 AND finished_at IS NULL
                 RETURNING attempts",
                params![id.as_str(), error, Millis(now), Millis(next_due_at)],
                |r| r.get(0),
            )
            .optional()?;
        attempts.ok_or_else(|| Error::UnknownEffect(id.clone()))
    }

    /// Gives up on an effect: the row leaves the pending set like `complete`, but is recorded as
    /// a failure (with `error`) for `pdbridge status`.
    pub fn abandon(&mut self, id: &EffectId, now: Timestamp, error: &str) -> Result<(), Error> {
        self.finish(id, now, Some(error))
    }

    fn finish(&mut self, id: &EffectId, now: Timestamp, error: Option<&str>) -> Result<(), Error> {
        let order_key: Option<String> = self
            .row(
                "UPDATE outbox SET finished_at = ?2, claimed_until = NULL, head = 0,
                     abandoned = ?3 IS NOT NULL,
                     last_error = coalesce(?3, last_error),
                     last_error_at = CASE WHEN ?3 IS NULL THEN last_error_at ELSE ?2 END
                 WHERE effect_id = ?1 AND finished_at IS NULL
                 RETURNING order_key",
                params![id.as_str(), Millis(now), error],
                |r| r.get(0),
            )
            .optional()?;
        let Some(order_key) = order_key else {
            if self.effect(id)?.is_none() {
                return Err(Error::UnknownEffect(id.clone()));
            }
            return Ok(());
        };
        // The key's next unfinished row, if any, becomes its head.
        self.exec(
            "UPDATE outbox SET head = 1
             WHERE seq = (SELECT min(seq) FROM outbox WHERE order_key = ?1 AND finished_at IS NULL)
               AND head = 0",
            [order_key],
        )?;
        Ok(())
    }

    /// Postpones every unfinished effect of a rate-limit bucket to at least `until` (after a
    /// 429), without counting an attempt.
    pub fn postpone_rate_key(
        &mut self,
        rate_key: &RateKey,
        until: Timestamp,
    ) -> Result<u64, Error> {
        let n = self.exec(
            "UPDATE outbox SET due_at = ?2
             WHERE rate_key = ?1 AND finished_at IS NULL AND due_at < ?2",
            params![rate_key.as_str(), Millis(until)],
        )?;
        Ok(n as u64)
    }

    /// One effect by id, finished or not. Finished effects report `None` only once pruned.
    pub fn effect(&self, id: &EffectId) -> Result<Option<OutboxRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE effect_id = ?1");
        Ok(self.row(&sql, [id.as_str()], from_row).optional()?)
    }

    /// Whether an effect is stored and finished (completed or abandoned).
    pub fn is_finished(&self, id: &EffectId) -> Result<bool, Error> {
        let finished: Option<bool> = self
            .row(
                "SELECT finished_at IS NOT NULL FROM outbox WHERE effect_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(finished.unwrap_or(false))
    }

    /// Unfinished effects in enqueue order, at most `limit` (for inspection and tests).
    pub fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE finished_at IS NULL ORDER BY seq LIMIT +?1"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit_param(limit)], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The earliest `due_at` among heads of keys that are not leased, so the dispatcher can sleep
    /// exactly until the next effect is runnable. `None` when nothing is waiting.
    pub fn next_due_at(&self, now: Timestamp) -> Result<Option<Timestamp>, Error> {
        Ok(self.row(NEXT_DUE, [Millis(now)], |r| ts(r, 0)).optional()?)
    }

    /// Depth and oldest age of the unfinished effects, from the pending index only: cheap
    /// enough to refresh a gauge every second with a deep outbox (see [`Tx::outbox_stats`]
    /// for the in-flight and retrying counts, which read every pending row).
    pub fn outbox_backlog(&self, now: Timestamp) -> Result<OutboxBacklog, Error> {
        let (depth, oldest_seq): (u64, Option<i64>) = self.row(
            "SELECT count(*), min(seq) FROM outbox WHERE finished_at IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let oldest: Option<Timestamp> = match oldest_seq {
            Some(seq) => self
                .row("SELECT created_at FROM outbox WHERE seq = ?1", [seq], |r| {
                    ts(r, 0)
                })
                .optional()?,
            None => None,
        };
        Ok(OutboxBacklog {
            depth,
            oldest_age: oldest.map(|t| now.duration_since(t)),
        })
    }

    /// Depth, in-flight count, retrying count and oldest age of the unfinished effects.
    pub fn outbox_stats(&self, now: Timestamp) -> Result<OutboxStats, Error> {
        Ok(self.row(
            "SELECT count(*),
                    coalesce(sum(claimed_until IS NOT NULL AND claimed_until > ?1), 0),
                    coalesce(sum(attempts > 0), 0),
                    min(created_at)
             FROM outbox WHERE finished_at IS NULL",
            [Millis(now)],
            |r| {
                let oldest = opt_ts(r, 3)?;
                Ok(OutboxStats {
                    depth: r.get(0)?,
                    in_flight: r.get(1)?,
                    retrying: r.get(2)?,
                    oldest_age: oldest.map(|t| now.duration_since(t)),
                })
            },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::{CLAIM_DUE, CLAIM_DUE_EXCEPT, CLAIM_DUE_ONLY, NEXT_DUE};

    /// The dispatcher's hot queries walk the heads index in order and never sort or scan the
    /// table, so their cost does not grow with the depth of the outbox.
    #[test]
    fn claims_read_the_heads_index_in_order() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for (sql, index) in [
            (CLAIM_DUE, "outbox_heads"),
            (NEXT_DUE, "outbox_heads"),
            (CLAIM_DUE_EXCEPT, "outbox_heads"),
            (CLAIM_DUE_ONLY, "outbox_heads_by_rate"),
        ] {
            let plan: Vec<String> = {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let params = vec![1_i64; stmt.parameter_count()];
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            };
            let plan = plan.join("; ");
            let uses = plan.contains("USING INDEX") && plan.split([' ', ';']).any(|w| w == index);
            assert!(uses, "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    /// A new limit binds without expiring the cached statement (see the crate's invariants):
    /// the dispatcher's claims run thousands of times a second with varying room.
    #[test]
    fn claims_with_varying_limits_are_not_prepared_again() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        for sql in [CLAIM_DUE, CLAIM_DUE_EXCEPT, CLAIM_DUE_ONLY] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            for limit in 1..=5_i64 {
                let params: Vec<rusqlite::types::Value> = (1..=stmt.parameter_count())
                    .map(|i| match i {
                        2 => limit.into(),
                        3 => "k".to_owned().into(),
                        _ => 1_i64.into(),
                    })
                    .collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
                while rows.next().unwrap().is_some() {}
            }
            let reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(reprepared, 0, "{sql}");
        }
    }
}
