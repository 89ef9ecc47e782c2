//! The PagerDuty poller (`pagerduty.mode = "poll"` or `"hybrid"`): reads `GET /log_entries`
//! every `pagerduty.poll_interval_secs` and feeds each entry to the engine as the input its
//! webhook would have produced ([`entry::log_entry_event`]), in PagerDuty's time order.
//!
//! The cursor (the newest entry time read, and the ids read within [`LOOKBACK`] of it) is
//! committed with each entry's engine input, so after a restart the next poll neither skips
//! nor repeats an entry. Each poll asks from [`LOOKBACK`] before the cursor, so an entry that
//! PagerDuty lists late, with an earlier time, is still read once. Every page waits for the
//! poller's own budget (`pagerduty.poll_share_percent` of the client's 960/min) and then, like
//! every request, for the client's token bucket.

use std::sync::Arc;
use std::time::Duration;

use pd_client::ratelimit::{PAGERDUTY_PER_MINUTE, TokenBucket};
use pd_client::rest::LogEntry;
use serde::{Deserialize, Serialize};
use sync_core::{Input, Timestamp};
use tokio::sync::watch;

use crate::bridge::Bridge;
use crate::clock;
use crate::runtime::{read, stopped, write};

mod entry;

pub use entry::{change_key, log_entry_event};

/// How far before the cursor each poll asks again, for entries PagerDuty lists late.
pub const LOOKBACK: Duration = Duration::from_secs(30);

/// How far the poller has read, as stored (`store::Tx::poll_cursor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The newest entry time read (PagerDuty's clock), or where polling started.
    pub newest: Timestamp,
    /// The ids read at or after `newest - LOOKBACK`, each with its time.
    pub seen: Vec<(String, Timestamp)>,
}

impl Cursor {
    /// The `since` of the next poll.
    pub fn since(&self) -> Timestamp {
        self.newest.saturating_sub(LOOKBACK)
    }

    fn has(&self, id: &str) -> bool {
        self.seen.iter().any(|(s, _)| s == id)
    }

    /// Records `id` read at `at`, forgetting ids too old to be listed again.
    fn add(&mut self, id: &str, at: Timestamp) {
        if at > self.newest {
            self.newest = at;
        }
        self.seen.push((id.to_owned(), at));
        let floor = self.since();
        self.seen.retain(|(_, t)| *t >= floor);
    }
}

/// The entries of one poll not read before, oldest first: PagerDuty lists the newest first, so
/// the listing is reversed, then sorted by time (stable, so entries of one second keep their
/// order), and an entry listed twice (pages shift while new entries arrive) is kept once.
pub fn new_entries(cursor: &Cursor, mut listed: Vec<LogEntry>) -> Vec<LogEntry> {
    listed.reverse();
    listed.sort_by_key(|e| e.created_at);
    let mut out: Vec<LogEntry> = Vec::new();
    for e in listed {
        if cursor.has(&e.id) || out.iter().any(|o| o.id == e.id) {
            continue;
        }
        out.push(e);
    }
    out
}

/// When a listing stopped at PagerDuty's offset limit with the newest entries first, the oldest
/// ones are missing: the `until` to ask again with (the oldest time listed), so the backlog is
/// read oldest first and the next polls read the rest. `None` when the listing is whole, when
/// it came oldest first (what is missing is newer and comes next), or when one second holds more
/// entries than the limit (what was listed is taken).
pub fn narrower_until(
    since: time::OffsetDateTime,
    listed: &[LogEntry],
    truncated: bool,
) -> Option<time::OffsetDateTime> {
    let (first, last) = (listed.first()?, listed.last()?);
    let newest_first = first.created_at >= last.created_at;
    let oldest = listed.iter().map(|e| e.created_at).min()?;
    (truncated && newest_first && oldest > since).then_some(oldest)
}

/// Polls every `interval` until `shutdown` turns true.
pub async fn poll_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    let poll = bridge.ctx.config.pagerduty.poll.clone();
    let per_minute = poll.requests_per_minute(PAGERDUTY_PER_MINUTE);
    tracing::info!(
        interval_secs = poll.interval.as_secs(),
        per_minute,
        share_percent = poll.share_percent,
        mode = poll.mode.as_str(),
        "polling PagerDuty log entries"
    );
    let mut budget = TokenBucket::new(per_minute, per_minute.min(10), clock::instant());
    loop {
        if let Err(err) = poll_once(&bridge, &mut budget, &mut shutdown).await {
            tracing::warn!(%err, "polling PagerDuty log entries failed; retrying next interval");
        }
        tokio::select! {
            () = tokio::time::sleep(poll.interval) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// One poll: every page since the cursor, each entry fed to the engine with the cursor after
/// it. Returns how many entries were new.
pub async fn poll_once(
    bridge: &Bridge,
    budget: &mut TokenBucket,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<usize> {
    let stored = read(bridge, |tx| tx.poll_cursor())
        .await
        .ok_or_else(|| anyhow::anyhow!("reading the poll cursor failed"))?;
    let mut cursor = match stored {
        Some(v) => serde_json::from_value(v)?,
        // The first poll starts now (reading back only the lookback): older history is not
        // replayed.
        None => Cursor {
            newest: bridge.now(),
            seen: Vec::new(),
        },
    };
    let since = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(cursor.since().as_millis()) * 1_000_000,
    )?;
    let mut until = None;
    let listed = loop {
        let mut listed = Vec::new();
        let mut truncated = false;
        let mut offset = Some(0);
        while let Some(at) = offset {
            while let Err(wait) = budget.try_acquire(clock::instant()) {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stopped(shutdown) => return Ok(0),
                }
            }
            let page = bridge.ctx.pd.log_entries_page(since, until, at).await?;
            truncated |= page.truncated;
            listed.extend(page.entries);
            offset = page.next_offset;
        }
        match narrower_until(since, &listed, truncated) {
            Some(earlier) => until = Some(earlier),
            None => break listed,
        }
    };
    let fresh = new_entries(&cursor, listed);
    let count = fresh.len();
    // One entry at a time: a failure stops the poll before any later entry (or cursor) is
    // committed, so the next poll starts from the last committed one.
    for e in &fresh {
        cursor.add(&e.id, crate::translate::timestamp(e.created_at));
        let Some(event) = log_entry_event(&bridge.ctx.config, e) else {
            continue;
        };
        let value = serde_json::to_value(&cursor)?;
        bridge
            .apply(Input::PdEvent(event), move |tx, now| {
                tx.put_poll_cursor(&value, now)
            })
            .await?;
    }
    // Entries no webhook stands for still move the cursor; so does the first poll.
    let value = serde_json::to_value(&cursor)?;
    let now = bridge.now();
    write(bridge, move |tx| tx.put_poll_cursor(&value, now))
        .await
        .map_err(|e| anyhow::anyhow!("storing the poll cursor failed: {}", e.0))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, at: &str) -> LogEntry {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "type": "trigger_log_entry",
            "created_at": at,
            "incident": {"id": "PT4KHLK", "type": "incident_reference"},
        }))
        .expect("entry")
    }

    fn ms(at: &str) -> Timestamp {
        crate::translate::timestamp(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .expect("time"),
        )
    }

    #[test]
    fn entries_come_oldest_first_once_and_never_again_after_the_cursor_moved() {
        let mut cursor = Cursor {
            newest: ms("2026-01-01T00:00:00Z"),
            seen: vec![("Q0".to_owned(), ms("2026-01-01T00:00:00Z"))],
        };
        // Newest first, as PagerDuty lists them; Q2 listed twice as a page shifted.
        let listed = vec![
            entry("Q3", "2026-01-01T00:00:05Z"),
            entry("Q2", "2026-01-01T00:00:01Z"),
            entry("Q2", "2026-01-01T00:00:01Z"),
            entry("Q1", "2026-01-01T00:00:01Z"),
            entry("Q0", "2026-01-01T00:00:00Z"),
        ];
        let fresh = new_entries(&cursor, listed.clone());
        let ids: Vec<&str> = fresh.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["Q1", "Q2", "Q3"]);
        for e in &fresh {
            cursor.add(&e.id, crate::translate::timestamp(e.created_at));
        }
        assert_eq!(cursor.newest, ms("2026-01-01T00:00:05Z"));
        assert_eq!(cursor.since(), ms("2025-12-31T23:59:35Z"));
        // The same listing again (the next poll asks from the lookback): nothing is new.
        assert!(new_entries(&cursor, listed).is_empty());
        // A late entry with an earlier time, within the lookback, is still read once.
        let late = vec![entry("Q9", "2026-01-01T00:00:02Z")];
        assert_eq!(new_entries(&cursor, late).len(), 1);
        // Ids older than the lookback are forgotten.
        cursor.add("Q10", ms("2026-01-01T00:01:00Z"));
        assert_eq!(
            cursor.seen,
            vec![("Q10".to_owned(), ms("2026-01-01T00:01:00Z"))]
        );
    }

    #[test]
    fn a_listing_cut_at_the_offset_limit_is_read_again_up_to_its_oldest_entry() {
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .expect("time")
        };
        let since = at("2026-01-01T00:00:00Z");
        let newest_first = vec![
            entry("Q3", "2026-01-01T00:09:00Z"),
            entry("Q2", "2026-01-01T00:05:00Z"),
        ];
        assert_eq!(
            narrower_until(since, &newest_first, true),
            Some(at("2026-01-01T00:05:00Z"))
        );
        assert_eq!(narrower_until(since, &newest_first, false), None);
        let oldest_first: Vec<LogEntry> = newest_first.iter().rev().cloned().collect();
        assert_eq!(narrower_until(since, &oldest_first, true), None);
        let one_second = vec![entry("Q1", "2026-01-01T00:00:00Z")];
        assert_eq!(narrower_until(since, &one_second, true), None);
    }
}
