//! `pdbridge check` for PagerDuty polling: the mode, the interval and the configured share of
//! the request budget, and whether the credentials may read `GET /log_entries`.

use pd_client::PdClient;
use pd_client::ratelimit::PAGERDUTY_PER_MINUTE;

use super::{Line, grant};
use crate::config::Config;

/// The subject of the polling line.
pub const SUBJECT: &str = "PagerDuty polling";

/// The polling line: skipped in `webhooks` mode, else one read of the newest log entries.
pub(super) async fn polling(config: &Config, client: &PdClient) -> Line {
    let poll = &config.pagerduty.poll;
    if !poll.mode.polls() {
        return Line::skip(SUBJECT, "off (pagerduty.mode = \"webhooks\")");
    }
    let share = format!(
        "pagerduty.mode = \"{}\", every {} s, at most {} of {PAGERDUTY_PER_MINUTE} requests/min \
         ({}%, pagerduty.poll_share_percent)",
        poll.mode.as_str(),
        poll.interval.as_secs(),
        poll.requests_per_minute(PAGERDUTY_PER_MINUTE),
        poll.share_percent,
    );
    let since = time::OffsetDateTime::from_unix_timestamp(
        crate::clock::now().as_millis().div_euclid(1000) - 60,
    )
    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    match client.log_entries_page(since, None, 0).await {
        Ok(_) => Line::pass(SUBJECT, format!("GET /log_entries answers; {share}")),
        Err(err) => Line::fail(
            SUBJECT,
            format!("GET /log_entries failed: {err}; {share}"),
            grant(config, "incidents.read"),
        ),
    }
}
