//! What the on-call features keep across restarts: one JSON value per key (`oncall_state`),
//! such as a handoff message's marker or the last reported unmapped on-call users.

use ids::Timestamp;
use rusqlite::OptionalExtension;

use crate::{Error, Tx, types};

impl Tx<'_> {
    /// The value stored under `key`, if any.
    pub fn oncall_value(&self, key: &str) -> Result<Option<serde_json::Value>, Error> {
        let text: Option<String> = self
            .tx
            .query_row(
                "SELECT value FROM oncall_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        text.map(|t| types::from_json("oncall_state", &t))
            .transpose()
    }

    /// Stores `value` under `key`, replacing any earlier value.
    pub fn put_oncall_value(
        &mut self,
        key: &str,
        value: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO oncall_state (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            rusqlite::params![key, types::to_json("oncall_state", value)?, now.as_millis()],
        )?;
        Ok(())
    }

    /// Stores `value` under `key` only if the key is new: `true` when this call stored it.
    pub fn claim_oncall_key(
        &mut self,
        key: &str,
        value: &serde_json::Value,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let n = self.tx.execute(
            "INSERT INTO oncall_state (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO NOTHING",
            rusqlite::params![key, types::to_json("oncall_state", value)?, now.as_millis()],
        )?;
        Ok(n == 1)
    }

    /// The keys starting with `prefix` and their values, in key order.
    pub fn oncall_values(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT key, value FROM oncall_state WHERE key >= ?1 AND key < ?1 || char(1114111)
             ORDER BY key",
        )?;
        let rows = stmt.query_map([prefix], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, text) = row?;
            out.push((key, types::from_json("oncall_state", &text)?));
        }
        Ok(out)
    }

    /// Deletes the keys starting with `prefix` last written before `before`; returns how many.
    pub fn prune_oncall_values(&mut self, prefix: &str, before: Timestamp) -> Result<usize, Error> {
        Ok(self.tx.execute(
            "DELETE FROM oncall_state WHERE key >= ?1 AND key < ?1 || char(1114111)
             AND updated_at < ?2",
            rusqlite::params![prefix, before.as_millis()],
        )?)
    }
}
