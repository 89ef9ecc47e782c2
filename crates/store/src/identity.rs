//! The persistent identity cache: Slack user to an opaque mapping entry, with an expiry.

use ids::SlackUserId;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::types::{UnixMillis, from_json, to_json};
use crate::{Error, Tx};

/// A cached identity decision (positive or negative; the store does not care which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityEntry {
    /// The Slack user the entry is about.
    pub slack_user: SlackUserId,
    /// The opaque entry written by the identity layer.
    pub entry: serde_json::Value,
    /// The entry is valid while `now < expires_at`.
    pub expires_at: UnixMillis,
    /// When it was written.
    pub updated_at: UnixMillis,
}

impl Tx<'_> {
    /// The cached entry of `slack_user`, or `None` when absent or expired at `now`.
    pub fn identity(
        &self,
        slack_user: &SlackUserId,
        now: UnixMillis,
    ) -> Result<Option<IdentityEntry>, Error> {
        let row: Option<(String, UnixMillis, UnixMillis)> = self
            .tx
            .query_row(
                "SELECT entry, expires_at, updated_at FROM identity_cache
                 WHERE slack_user = ?1 AND expires_at > ?2",
                params![slack_user.as_str(), now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(text, expires_at, updated_at)| {
            Ok(IdentityEntry {
                slack_user: slack_user.clone(),
                entry: from_json("identity_cache", &text)?,
                expires_at,
                updated_at,
            })
        })
        .transpose()
    }

    /// Inserts or replaces the entry of `entry.slack_user`.
    pub fn put_identity(&mut self, entry: &IdentityEntry) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO identity_cache (slack_user, entry, expires_at, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (slack_user) DO UPDATE SET entry = excluded.entry,
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            params![
                entry.slack_user.as_str(),
                to_json("identity_cache", &entry.entry)?,
                entry.expires_at,
                entry.updated_at,
            ],
        )?;
        Ok(())
    }

    /// Removes the entry of `slack_user`; returns whether one existed.
    pub fn invalidate_identity(&mut self, slack_user: &SlackUserId) -> Result<bool, Error> {
        let n = self.tx.execute(
            "DELETE FROM identity_cache WHERE slack_user = ?1",
            [slack_user.as_str()],
        )?;
        Ok(n > 0)
    }

    /// Removes every entry (an explicit "refresh all").
    pub fn clear_identities(&mut self) -> Result<u64, Error> {
        Ok(self.tx.execute("DELETE FROM identity_cache", [])? as u64)
    }

    /// Every entry, expired ones included, ordered by Slack user id.
    pub fn identities(&self) -> Result<Vec<IdentityEntry>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT slack_user, entry, expires_at, updated_at FROM identity_cache
             ORDER BY slack_user",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })?;
        rows.map(|row| {
            let (user, text, expires_at, updated_at) = row?;
            Ok(IdentityEntry {
                slack_user: SlackUserId::new(user),
                entry: from_json("identity_cache", &text)?,
                expires_at,
                updated_at,
            })
        })
        .collect()
    }
}
