//! `GET /oncalls` with every filter, and `GET /schedules`.

use super::{Listing, MAX_PAGE_SIZE, PdClient};
use crate::Error;
use crate::rest::{OnCall, OnCallList};
use crate::schedule::{OnCallQuery, Schedule, ScheduleList};

impl PdClient {
    /// `GET /oncalls` with `query`'s filters, every page of 100. Each entry is one contiguous
    /// on-call period (a permanent one, from a user targeted directly, has no `start`/`end`).
    pub async fn oncalls(&self, query: &OnCallQuery) -> Result<Listing<OnCall>, Error> {
        if let (Some(since), Some(until)) = (query.since, query.until)
            && until < since
        {
            return Err(Error::InvalidRequest(
                "on-call range ends before it starts".to_owned(),
            ));
        }
        self.paginate(
            "/oncalls",
            vec!["oncalls"],
            query.pairs(),
            MAX_PAGE_SIZE,
            |l: OnCallList| (l.oncalls, l.page),
            |_| false,
        )
        .await
    }

    /// `GET /schedules`, every page; `name` filters on PagerDuty's side by name (`query`).
    pub async fn list_schedules(&self, name: Option<&str>) -> Result<Vec<Schedule>, Error> {
        let query = name
            .map(|n| vec![("query", n.to_owned())])
            .unwrap_or_default();
        let listing = self
            .paginate(
                "/schedules",
                vec!["schedules"],
                query,
                MAX_PAGE_SIZE,
                |l: ScheduleList| (l.schedules, l.page),
                |_| false,
            )
            .await?;
        Ok(listing.items)
    }
}
