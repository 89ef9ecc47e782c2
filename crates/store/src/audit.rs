//! The append-only audit log of Slack-originated actions, and the unmapped-user tally.

use ids::{IncidentId, PdUserId, SlackUserId, Timestamp};
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::inbox::limit_param;
use crate::types::{Millis, ts};
use crate::{Error, Tx};

/// One audit line to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the decision was made.
    pub at: Timestamp,
    /// Who acted in Slack.
    pub slack_user: SlackUserId,
    /// The PagerDuty user the action was attributed to, when mapped.
    pub pd_user: Option<PdUserId>,
    /// What was attempted (for example `ack`, `resolve`).
    pub action: String,
    /// The incident, when known.
    pub incident_id: Option<IncidentId>,
    /// The decision and its reason (for example `allowed: team_member` or `refused: unmapped`).
    pub decision: String,
    /// PagerDuty's answer, once known (for example `200`, `error: 403 …`).
    pub pd_result: Option<String>,
}

/// A stored audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Append order (strictly increasing).
    pub seq: i64,
    /// The line as appended.
    pub entry: AuditEntry,
}

/// A Slack user seen acting without a usable mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmappedUser {
    /// The Slack user.
    pub slack_user: SlackUserId,
    /// The most recent refusal reason.
    pub reason: String,
    /// First time seen.
    pub first_seen: Timestamp,
    /// Last time seen.
    pub last_seen: Timestamp,
    /// How many times seen.
    pub times: u64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        entry: AuditEntry {
            at: ts(r, 1)?,
            slack_user: SlackUserId::new(r.get::<_, String>(2)?),
            pd_user: r.get::<_, Option<String>>(3)?.map(PdUserId::new),
            action: r.get(4)?,
            incident_id: r.get::<_, Option<String>>(5)?.map(IncidentId::new),
            decision: r.get(6)?,
            pd_result: r.get(7)?,
        },
    })
}

const COLUMNS: &str = "seq, at, slack_user, pd_user, action, incident_id, decision, pd_result";

impl Tx<'_> {
    /// Appends an audit line and returns its sequence number. Lines are never changed; record a
    /// later PagerDuty result as a new line.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, Error> {
        self.tx.execute(
            "INSERT INTO audit_log (at, slack_user, pd_user, action, incident_id, decision, pd_result)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                Millis(entry.at),
                entry.slack_user.as_str(),
                entry.pd_user.as_ref().map(PdUserId::as_str),
                entry.action,
                entry.incident_id.as_ref().map(IncidentId::as_str),
                entry.decision,
                entry.pd_result,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The newest `limit` audit lines, newest first.
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT +?1");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit_param(limit)], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The audit lines of one incident, oldest first.
    pub fn incident_audit(&self, incident_id: &IncidentId) -> Result<Vec<AuditRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE incident_id = ?1 ORDER BY seq");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([incident_id.as_str()], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `slack_user` acted without a usable mapping (for `pdbridge status`).
    pub fn note_unmapped(
        &mut self,
        slack_user: &SlackUserId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO unmapped_users (slack_user, reason, first_seen, last_seen, times)
             VALUES (?1, ?2, ?3, ?3, 1)
             ON CONFLICT (slack_user) DO UPDATE SET reason = excluded.reason,
                 last_seen = max(last_seen, excluded.last_seen), times = times + 1",
            params![slack_user.as_str(), reason, Millis(now)],
        )?;
        Ok(())
    }

    /// Forgets an unmapped user (for example once a mapping was added).
    pub fn clear_unmapped(&mut self, slack_user: &SlackUserId) -> Result<bool, Error> {
        let n = self.tx.execute(
            "DELETE FROM unmapped_users WHERE slack_user = ?1",
            [slack_user.as_str()],
        )?;
        Ok(n > 0)
    }

    /// Unmapped users, most recently seen first, at most `limit`.
    pub fn unmapped_users(&self, limit: usize) -> Result<Vec<UnmappedUser>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT slack_user, reason, first_seen, last_seen, times FROM unmapped_users
             ORDER BY last_seen DESC, slack_user LIMIT +?1",
        )?;
        let rows = stmt.query_map([limit_param(limit)], |r| {
            Ok(UnmappedUser {
                slack_user: SlackUserId::new(r.get::<_, String>(0)?),
                reason: r.get(1)?,
                first_seen: ts(r, 2)?,
                last_seen: ts(r, 3)?,
                times: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
