//! Versioned migrations, tracked in `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` upgrades the schema from version `i` to `i + 1`. Steps are only ever appended;
//! a released step is never edited.

use rusqlite::Connection;

use crate::Error;

/// The ordered migration steps.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE pd_inbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id   TEXT UNIQUE,
        event_id     TEXT NOT NULL UNIQUE,
        event_type   TEXT NOT NULL,
        incident_id  TEXT,
        payload      TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        processed_at INTEGER
    ) STRICT;
    CREATE INDEX pd_inbox_unprocessed ON pd_inbox (seq) WHERE processed_at IS NULL;
    CREATE INDEX pd_inbox_received ON pd_inbox (received_at);

    CREATE TABLE slack_inbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        dedupe_key   TEXT NOT NULL UNIQUE,
        slack_user   TEXT NOT NULL,
        incident_id  TEXT,
        kind         TEXT NOT NULL,
        payload      TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        processed_at INTEGER
    ) STRICT;
    CREATE INDEX slack_inbox_unprocessed ON slack_inbox (seq) WHERE processed_at IS NULL;

    CREATE TABLE incidents (
        incident_id TEXT PRIMARY KEY,
        channel_id  TEXT,
        card_ts     TEXT,
        resolved    INTEGER NOT NULL DEFAULT 0,
        state       TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX incidents_card ON incidents (channel_id, card_ts);

    CREATE TABLE global_state (
        slot       INTEGER PRIMARY KEY CHECK (slot = 0),
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE outbox (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        effect_id     TEXT NOT NULL UNIQUE,
        order_key     TEXT NOT NULL,
        rate_key      TEXT NOT NULL,
        payload       TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        due_at        INTEGER NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        last_error_at INTEGER,
        claimed_until INTEGER,
        finished_at   INTEGER,
        abandoned     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX outbox_pending ON outbox (order_key, seq) WHERE finished_at IS NULL;
    CREATE INDEX outbox_errors ON outbox (last_error_at) WHERE last_error_at IS NOT NULL;

    CREATE TABLE identity_cache (
        key        TEXT PRIMARY KEY,
        entry      TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE audit_log (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        slack_user TEXT NOT NULL,
        pd_user    TEXT,
        action     TEXT NOT NULL,
        incident_id TEXT,
        decision   TEXT NOT NULL,
        pd_result  TEXT
    ) STRICT;
    CREATE INDEX audit_log_incident ON audit_log (incident_id, seq);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

    CREATE TABLE unmapped_users (
        slack_user TEXT PRIMARY KEY,
        reason     TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        times      INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2: the dispatcher's claims and the reconciler's listing read indexes only, so their cost
    // follows what they return, not how many effects or incidents are stored. `head` is 1
    // exactly for the oldest unfinished row of each ordering key.
    r#"
    ALTER TABLE outbox ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET head = 1
        WHERE finished_at IS NULL
          AND seq = (SELECT min(h.seq) FROM outbox AS h
                     WHERE h.order_key = outbox.order_key AND h.finished_at IS NULL);
    CREATE INDEX outbox_heads ON outbox (due_at, seq) WHERE head = 1;
    CREATE INDEX incidents_open ON incidents (resolved) WHERE resolved = 0;
    "#,
    // 3: claims limited to one rate-limit bucket read only that bucket's due heads.
    r#"
    CREATE INDEX outbox_heads_by_rate ON outbox (rate_key, due_at, seq) WHERE head = 1;
    "#,
    // 4: verified PagerDuty deliveries that did not parse, kept byte for byte for operators.
    r#"
    CREATE TABLE pd_unparsed (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id  TEXT UNIQUE,
        body        BLOB NOT NULL,
        error       TEXT NOT NULL,
        received_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX pd_unparsed_received ON pd_unparsed (received_at);
    "#,
    // 5: incident declarations from Slack, stored before PagerDuty is called.
    r#"
    CREATE TABLE declarations (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_key TEXT NOT NULL UNIQUE,
        slack_user   TEXT NOT NULL,
        payload      TEXT NOT NULL,
        status       TEXT NOT NULL,
        attempts     INTEGER NOT NULL,
        due_at       INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        finished_at  INTEGER,
        result       TEXT
    ) STRICT;
    CREATE INDEX declarations_due ON declarations (due_at, seq) WHERE status = 'pending';
    "#,
    // 6: what the on-call features keep across restarts (handoff markers, user group reports).
    r#"
    CREATE TABLE oncall_state (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 7: how far the PagerDuty poller has read `GET /log_entries`.
    r#"
    CREATE TABLE pd_poll_cursor (
        slot       INTEGER PRIMARY KEY CHECK (slot = 0),
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    "#,
];

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the database to [`latest_version`], one transaction per step. Refuses a database
/// written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let supported = latest_version();
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > supported {
        return Err(Error::SchemaTooNew { found, supported });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for (index, step) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and this lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let target = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if now >= target {
            continue;
        }
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{MIGRATIONS, latest_version, migrate};

    /// Migration 2 marks the oldest unfinished row of each key as its head, and nothing else.
    #[test]
    fn migration_2_marks_the_head_of_every_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let rows = [
            (1, "a", Some(5)),
            (2, "a", None),
            (3, "a", None),
            (4, "b", None),
            (5, "c", Some(5)),
        ];
        for (seq, key, finished) in rows {
            conn.execute(
                "INSERT INTO outbox (seq, effect_id, order_key, rate_key, payload, created_at,
                     due_at, finished_at)
                 VALUES (?1, ?1, ?2, 'r', '{}', 0, 0, ?3)",
                rusqlite::params![seq, key, finished],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
        let heads: Vec<i64> = conn
            .prepare("SELECT seq FROM outbox WHERE head = 1 ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(heads, [2, 4]);
    }
}
