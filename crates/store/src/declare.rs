//! Declarations: incident creation requests from Slack, stored before PagerDuty is called and
//! kept until PagerDuty has answered for good.
//!
//! A declaration is keyed by its `incident_key`, so a double submit stores one row. It stays
//! `pending` while PagerDuty is down or unreachable ([`Tx::retry_declaration`] moves its due
//! time) and leaves that state once, through [`Tx::finish_declaration`].

use ids::{SlackUserId, Timestamp};
use rusqlite::{OptionalExtension, Row, params};

use crate::inbox::limit_param;
use crate::types::{InsertOutcome, Json};
use crate::{Error, Tx};

/// Where a declaration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclarationStatus {
    /// Not yet answered for good by PagerDuty: due for an attempt at `due_at`.
    Pending,
    /// PagerDuty created the incident (or had it already).
    Created,
    /// Refused, by the policy or by PagerDuty (a 4xx): never retried.
    Refused,
}

impl DeclarationStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Created => "created",
            Self::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "created" => Self::Created,
            "refused" => Self::Refused,
            _ => Self::Pending,
        }
    }
}

/// A declaration to store.
#[derive(Debug, Clone, Copy)]
pub struct NewDeclaration<'a> {
    /// The `incident_key` PagerDuty de-duplicates the create on.
    pub incident_key: &'a str,
    /// Who asked.
    pub slack_user: &'a SlackUserId,
    /// The request, encoded by the caller.
    pub payload: &'a Json,
    /// When it arrived (also its first due time).
    pub received_at: Timestamp,
}

/// A stored declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationRow {
    /// Insertion order.
    pub seq: i64,
    /// The `incident_key`.
    pub incident_key: String,
    /// Who asked.
    pub slack_user: SlackUserId,
    /// The request as stored.
    pub payload: Json,
    /// Where it stands.
    pub status: DeclarationStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub due_at: Timestamp,
    /// When it arrived.
    pub received_at: Timestamp,
    /// The outcome text once finished (the incident id, or why it was refused).
    pub result: Option<String>,
}

const COLUMNS: &str =
    "seq, incident_key, slack_user, payload, status, attempts, due_at, received_at, result";

fn from_row(r: &Row<'_>) -> rusqlite::Result<DeclarationRow> {
    Ok(DeclarationRow {
        seq: r.get(0)?,
        incident_key: r.get(1)?,
        slack_user: SlackUserId::new(r.get::<_, String>(2)?),
        payload: Json::column(r, 3, "declarations")?,
        status: DeclarationStatus::parse(&r.get::<_, String>(4)?),
        attempts: r.get(5)?,
        due_at: Timestamp::from_millis(r.get(6)?),
        received_at: Timestamp::from_millis(r.get(7)?),
        result: r.get(8)?,
    })
}

impl Tx<'_> {
    /// Stores a declaration, due at once; one with the same `incident_key` is a duplicate.
    pub fn insert_declaration(&mut self, new: &NewDeclaration<'_>) -> Result<InsertOutcome, Error> {
        let inserted = self.tx.execute(
            "INSERT INTO declarations (incident_key, slack_user, payload, status, attempts, due_at, received_at)
             VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)
             ON CONFLICT (incident_key) DO NOTHING",
            params![
                new.incident_key,
                new.slack_user.as_str(),
                new.payload.as_str(),
                new.received_at.as_millis(),
            ],
        )?;
        let seq: i64 = self.tx.query_row(
            "SELECT seq FROM declarations WHERE incident_key = ?1",
            [new.incident_key],
            |r| r.get(0),
        )?;
        Ok(if inserted == 1 {
            InsertOutcome::Inserted(seq)
        } else {
            InsertOutcome::Duplicate(seq)
        })
    }

    /// The pending declarations due at `now`, oldest first, at most `limit`.
    pub fn due_declarations(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<DeclarationRow>, Error> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM declarations
             WHERE status = 'pending' AND due_at <= ?1 ORDER BY due_at, seq LIMIT +?2"
        ))?;
        let rows = stmt.query_map(params![now.as_millis(), limit_param(limit)], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next pending declaration is due, if any.
    pub fn next_declaration_due(&self) -> Result<Option<Timestamp>, Error> {
        let due: Option<i64> = self.tx.query_row(
            "SELECT min(due_at) FROM declarations WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(due.map(Timestamp::from_millis))
    }

    /// The declaration with this `incident_key`.
    pub fn declaration(&self, incident_key: &str) -> Result<Option<DeclarationRow>, Error> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM declarations WHERE incident_key = ?1"),
                [incident_key],
                from_row,
            )
            .optional()?)
    }

    /// Counts one more attempt of a pending declaration and makes it due again at `due_at`.
    pub fn retry_declaration(
        &mut self,
        incident_key: &str,
        due_at: Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "UPDATE declarations SET attempts = attempts + 1, due_at = ?2
             WHERE incident_key = ?1 AND status = 'pending'",
            params![incident_key, due_at.as_millis()],
        )?;
        Ok(())
    }

    /// Finishes a pending declaration as `status` with its outcome text; a finished one is
    /// left as it is.
    pub fn finish_declaration(
        &mut self,
        incident_key: &str,
        status: DeclarationStatus,
        result: &str,
        at: Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "UPDATE declarations SET status = ?2, result = ?3, finished_at = ?4,
                    attempts = attempts + 1
             WHERE incident_key = ?1 AND status = 'pending'",
            params![incident_key, status.as_str(), result, at.as_millis()],
        )?;
        Ok(())
    }
}
