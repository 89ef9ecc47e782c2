//! The persistent identity cache: an opaque mapping entry per key, with an expiry.

use ids::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::types::{IdentityKey, Millis, from_json, to_json, ts};
use crate::{Error, Tx};

/// A cached identity decision (positive or negative; the store does not care which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityEntry {
    /// What the entry is about (a Slack user, or a PagerDuty user for reverse lookups).
    pub key: IdentityKey,
    /// The opaque entry written by the identity layer.
    pub entry: serde_json::Value,
    /// The entry is valid while `now < expires_at`.
    pub expires_at: Timestamp,
    /// When it was written.
    pub updated_at: Timestamp,
}

impl Tx<'_> {
    /// The entry of `key`, or `None` when absent or expired at `now` (`now >= expires_at`).
    pub fn identity(
        &self,
        key: &IdentityKey,
        now: Timestamp,
    ) -> Result<Option<IdentityEntry>, Error> {
        Ok(self
            .identity_including_expired(key)?
            .filter(|entry| now < entry.expires_at))
    }

    /// The entry of `key` whether or not it has expired (for callers that judge freshness
    /// themselves).
    pub fn identity_including_expired(
        &self,
        key: &IdentityKey,
    ) -> Result<Option<IdentityEntry>, Error> {
        let row: Option<(String, Timestamp, Timestamp)> = self
            .tx
            .query_row(
                "SELECT entry, expires_at, updated_at FROM identity_cache WHERE key = ?1",
                [key.as_str()],
                |r| Ok((r.get(0)?, ts(r, 1)?, ts(r, 2)?)),
            )
            .optional()?;
        row.map(|(text, expires_at, updated_at)| {
            Ok(IdentityEntry {
                key: key.clone(),
                entry: from_json("identity_cache", &text)?,
                expires_at,
                updated_at,
            })
        })
        .transpose()
    }

    /// Inserts or replaces the entry of `entry.key`.
    pub fn put_identity(&mut self, entry: &IdentityEntry) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO identity_cache (key, entry, expires_at, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET entry = excluded.entry,
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            params![
                entry.key.as_str(),
                to_json("identity_cache", &entry.entry)?,
                Millis(entry.expires_at),
                Millis(entry.updated_at),
            ],
        )?;
        Ok(())
    }

    /// Removes the entry of `key`; returns whether one existed.
    pub fn invalidate_identity(&mut self, key: &IdentityKey) -> Result<bool, Error> {
        let n = self
            .tx
            .execute("DELETE FROM identity_cache WHERE key = ?1", [key.as_str()])?;
        Ok(n > 0)
    }

    /// Removes every entry (an explicit "refresh all").
    pub fn clear_identities(&mut self) -> Result<u64, Error> {
        Ok(self.tx.execute("DELETE FROM identity_cache", [])? as u64)
    }

    /// Every entry, expired ones included, ordered by key.
    pub fn identities(&self) -> Result<Vec<IdentityEntry>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT key, entry, expires_at, updated_at FROM identity_cache ORDER BY key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                ts(r, 2)?,
                ts(r, 3)?,
            ))
        })?;
        rows.map(|row| {
            let (key, text, expires_at, updated_at) = row?;
            Ok(IdentityEntry {
                key: IdentityKey::new(key),
                entry: from_json("identity_cache", &text)?,
                expires_at,
                updated_at,
            })
        })
        .collect()
    }
}
