//! `GET /log_entries`, one page per call, so a poller can spend its request budget page by page.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Call, MAX_OFFSET, MAX_PAGE_SIZE, PdClient};
use crate::Error;
use crate::rest::{LogEntry, LogEntryList};
use http::Method;

/// One page of `GET /log_entries`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntryPage {
    /// The entries, in PagerDuty's order.
    pub entries: Vec<LogEntry>,
    /// The offset of the next page, when there is one within PagerDuty's offset limit.
    pub next_offset: Option<u32>,
    /// True when more entries exist past PagerDuty's offset limit (10,000): ask again with an
    /// earlier `until` for those.
    pub truncated: bool,
}

impl PdClient {
    /// `GET /log_entries?since=…[&until=…]&include[]=incidents&is_overview=false&limit=100&offset=…`:
    /// one page of the account's log entries created from `since` (to `until`), each with its
    /// full incident. One request, through the client's token bucket like every other.
    pub async fn log_entries_page(
        &self,
        since: OffsetDateTime,
        until: Option<OffsetDateTime>,
        offset: u32,
    ) -> Result<LogEntryPage, Error> {
        let format = |t: OffsetDateTime| {
            t.format(&Rfc3339)
                .map_err(|e| Error::InvalidRequest(format!("log entries time: {e}")))
        };
        let mut call = Call::new(Method::GET, "/log_entries", vec!["log_entries"]);
        call.query = vec![("since", format(since)?)];
        if let Some(until) = until {
            call.query.push(("until", format(until)?));
        }
        call.query.extend([
            ("include[]", "incidents".to_owned()),
            ("is_overview", "false".to_owned()),
            ("limit", MAX_PAGE_SIZE.to_string()),
            ("offset", offset.to_string()),
        ]);
        let list: LogEntryList = self.json_call(call).await?;
        let got = u32::try_from(list.log_entries.len()).unwrap_or(u32::MAX);
        let next = offset.saturating_add(got);
        let more = list.page.more && got > 0;
        let within = next.saturating_add(MAX_PAGE_SIZE) <= MAX_OFFSET;
        Ok(LogEntryPage {
            entries: list.log_entries,
            next_offset: (more && within).then_some(next),
            truncated: more && !within,
        })
    }
}
