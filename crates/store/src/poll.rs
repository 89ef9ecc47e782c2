//! The PagerDuty poller's cursor (`pd_poll_cursor`): how far `GET /log_entries` has been read.
//! It is written in the transaction that feeds the entries to the engine, so a restart neither
//! skips nor repeats an entry.

use ids::Timestamp;
use rusqlite::OptionalExtension;

use crate::{Error, Tx, types};

impl Tx<'_> {
    /// The poller's cursor (an opaque JSON value the poller defines), if it has polled before.
    pub fn poll_cursor(&self) -> Result<Option<serde_json::Value>, Error> {
        let text: Option<String> = self
            .tx
            .query_row("SELECT value FROM pd_poll_cursor WHERE slot = 0", [], |r| {
                r.get(0)
            })
            .optional()?;
        text.map(|t| types::from_json("pd_poll_cursor", &t))
            .transpose()
    }

    /// Replaces the poller's cursor.
    pub fn put_poll_cursor(
        &mut self,
        value: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.tx.execute(
            "INSERT INTO pd_poll_cursor (slot, value, updated_at) VALUES (0, ?1, ?2)
             ON CONFLICT (slot) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            rusqlite::params![types::to_json("pd_poll_cursor", value)?, types::Millis(now)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn the_cursor_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("p.db");
        let now = ids::Timestamp::from_millis(1_000);
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.read(|tx| tx.poll_cursor()).expect("read"), None);
            store
                .write(|tx| tx.put_poll_cursor(&serde_json::json!({"since": 1}), now))
                .expect("write");
            store
                .write(|tx| tx.put_poll_cursor(&serde_json::json!({"since": 2}), now))
                .expect("write");
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.read(|tx| tx.poll_cursor()).expect("read"),
            Some(serde_json::json!({"since": 2}))
        );
    }
}
