//! `pdbridge status`: what the database says, without touching Slack or PagerDuty.
//!
//! The database is opened read-only ([`store::Store::open_read_only`]), so `status` is safe while
//! the server runs and never migrates. [`render`] is pure: the same summary and `now` give the
//! same text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ids::Timestamp;
use store::StatusSummary;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where the database is: `--database` / `PDBRIDGE_DATABASE`, else `server.database` from the
/// config file, else the server's default.
pub fn database_path(database: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(db) = database {
        return Ok(db.to_path_buf());
    }
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        if let Some(db) = table
            .get("server")
            .and_then(|s| s.get("database"))
            .and_then(toml::Value::as_str)
        {
            return Ok(PathBuf::from(db));
        }
    }
    Ok(PathBuf::from(crate::config::DEFAULT_DATABASE))
}

/// A duration as `3d4h`, `4m12s`, `850ms`.
pub fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// A time as RFC 3339 UTC (seconds precision).
pub fn rfc3339(at: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(at.as_millis().div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

fn ago(now: Timestamp, at: Timestamp) -> String {
    format!(
        "{} ({} ago)",
        rfc3339(at),
        human_duration(now.duration_since(at))
    )
}

/// The human-readable status report.
pub fn render(summary: &StatusSummary, database: &Path, now: Timestamp) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pdbridge status: {} at {}",
        database.display(),
        rfc3339(now)
    );
    let _ = writeln!(out, "  incidents tracked   {}", summary.incidents_tracked);
    let mut cards = format!("{}", summary.open_cards);
    if summary.cards_not_posted > 0 {
        let _ = write!(
            cards,
            " ({} open incidents without a card yet)",
            summary.cards_not_posted
        );
    }
    let _ = writeln!(out, "  open cards          {cards}");
    let o = &summary.outbox;
    let mut outbox = format!("{}", o.depth);
    if o.depth > 0 {
        let _ = write!(
            outbox,
            " ({} in flight, {} retrying)",
            o.in_flight, o.retrying
        );
    }
    if let Some(age) = o.oldest_age {
        let _ = write!(outbox, ", oldest {}", human_duration(age));
    }
    let _ = writeln!(out, "  outbox depth        {outbox}");
    let last = summary
        .last_webhook_at
        .map_or_else(|| "never".to_owned(), |at| ago(now, at));
    let _ = writeln!(out, "  last webhook        {last}");
    let _ = writeln!(
        out,
        "  not yet processed   {} webhooks, {} Slack actions",
        summary.unprocessed_webhooks, summary.unprocessed_actions
    );
    if summary.pending_declarations > 0 {
        let _ = writeln!(
            out,
            "  declarations        {} pending (PagerDuty down or unreachable; retried with the same incident_key)",
            summary.pending_declarations
        );
    }
    if summary.unparsed_webhooks == 0 {
        let _ = writeln!(out, "  unparsed webhooks   none");
    } else {
        let _ = writeln!(
            out,
            "  unparsed webhooks   {} (signed deliveries whose body did not parse, kept raw in pd_unparsed):",
            summary.unparsed_webhooks
        );
        for u in &summary.recent_unparsed {
            let _ = writeln!(
                out,
                "    {}  #{} {}, {} bytes: {}",
                rfc3339(u.received_at),
                u.seq,
                u.webhook_id.as_ref().map_or_else(
                    || "no X-Webhook-Id".to_owned(),
                    |id| format!("X-Webhook-Id {id}")
                ),
                u.bytes,
                u.error
            );
        }
    }
    let mut refused = format!("{}", summary.card_posts_failed);
    if summary.card_posts_failed > 0 {
        refused.push_str(" (Slack refused a card; pdbridge then posts a minimal one: see below)");
    }
    let _ = writeln!(out, "  failed card posts   {refused}");
    if summary.recent_failures.is_empty() {
        let _ = writeln!(out, "  recent failures     none");
    } else {
        let _ = writeln!(out, "  recent failures:");
        for f in &summary.recent_failures {
            let state = if f.abandoned { "gave up" } else { "retrying" };
            let _ = writeln!(
                out,
                "    {}  {}  attempt {} ({state}): {}",
                rfc3339(f.at),
                f.effect_id,
                f.attempts,
                f.error
            );
        }
    }
    if summary.unmapped_users.is_empty() {
        let _ = writeln!(out, "  unmapped users      none");
    } else {
        let _ = writeln!(
            out,
            "  unmapped Slack users (add an [[identity]] entry or fix the email):"
        );
        for u in &summary.unmapped_users {
            let _ = writeln!(
                out,
                "    {}  {} time(s), last {}: {}",
                u.slack_user,
                u.times,
                rfc3339(u.last_seen),
                u.reason
            );
        }
    }
    out
}

/// Reads the summary from the database at `path`, opened read-only.
pub fn read_summary(
    path: &Path,
    now: Timestamp,
    limit: usize,
) -> Result<StatusSummary, store::Error> {
    let store = store::Store::open_read_only(path)?;
    store.read(|tx| tx.status(now, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(human_duration(ms(850)), "850ms");
        assert_eq!(human_duration(ms(42_000)), "42s");
        assert_eq!(human_duration(ms(252_000)), "4m12s");
        assert_eq!(human_duration(ms(3_600_000 * 5 + 60_000 * 7)), "5h07m");
        assert_eq!(human_duration(ms(86_400_000 * 3 + 3_600_000 * 4)), "3d04h");
        let at = Timestamp::from_millis(1_764_000_000_000);
        assert_eq!(rfc3339(at), "2025-11-24T16:00:00Z");
    }
}
