//! On-call schedules (`GET /schedules`) and the filters of `GET /oncalls`.

use ids::{EscalationPolicyId, PdUserId, ScheduleId, TeamId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::rest::{Pagination, Reference};

/// PagerDuty renders on-calls at most this far ahead (`since`/`until` further out are refused).
pub const ONCALL_HORIZON_DAYS: i64 = 90;

/// The filters of `GET /oncalls`. Empty lists filter nothing; `since`/`until` default to
/// PagerDuty's "now" (the on-calls of this instant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnCallQuery {
    /// The start of the range: an on-call overlapping `[since, until]` is listed.
    pub since: Option<OffsetDateTime>,
    /// The end of the range.
    pub until: Option<OffsetDateTime>,
    /// Only the earliest on-call per escalation policy, level and user (`earliest=true`).
    pub earliest: bool,
    /// `schedule_ids[]`.
    pub schedule_ids: Vec<ScheduleId>,
    /// `escalation_policy_ids[]`.
    pub escalation_policy_ids: Vec<EscalationPolicyId>,
    /// `user_ids[]`.
    pub user_ids: Vec<PdUserId>,
}

impl OnCallQuery {
    /// The query string pairs, in a stable order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut pairs = Vec::new();
        if let Some(since) = self.since {
            pairs.push(("since", rfc3339(since)));
        }
        if let Some(until) = self.until {
            pairs.push(("until", rfc3339(until)));
        }
        if self.earliest {
            pairs.push(("earliest", "true".to_owned()));
        }
        for id in &self.schedule_ids {
            pairs.push(("schedule_ids[]", id.as_str().to_owned()));
        }
        for id in &self.escalation_policy_ids {
            pairs.push(("escalation_policy_ids[]", id.as_str().to_owned()));
        }
        for id in &self.user_ids {
            pairs.push(("user_ids[]", id.as_str().to_owned()));
        }
        pairs
    }
}

/// An on-call schedule (`GET /schedules`, without layers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The schedule id.
    pub id: ScheduleId,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The schedule's time zone (an ActiveSupport or IANA name).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The escalation policies that use the schedule.
    #[serde(default)]
    pub escalation_policies: Vec<Reference<EscalationPolicyId>>,
    /// The users on the schedule.
    #[serde(default)]
    pub users: Vec<Reference<PdUserId>>,
    /// The teams of the schedule.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A page of `GET /schedules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleList {
    /// The schedules.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

impl crate::rest::OnCall {
    /// The schedule that put the user on call; `None` for a user targeted directly by the policy.
    pub fn schedule_id(&self) -> Option<ScheduleId> {
        self.schedule
            .as_ref()
            .map(|s| ScheduleId::new(s.id.clone()))
    }
}
