//! On-call schedules of the fake PagerDuty: rotations, overrides, escalation levels that target
//! schedules, and `GET /oncalls` and `GET /schedules` computed from them.
//!
//! A schedule is one rotation layer: `users` take turns of `shift` from `start`, and overrides
//! replace whoever the rotation names during their window (the newest override wins). The time
//! `GET /oncalls` calls "now" is the fake's simulated on-call clock
//! ([`FakePagerDuty::set_oncall_now`]), so tests move through handoffs without waiting; it is
//! the wall clock until set. Like PagerDuty, contiguous periods of one user are one on-call,
//! `since`/`until` select the on-calls overlapping that range (at most 90 days, and `until` not
//! before `since`), `earliest=true` keeps the earliest on-call per policy, level and user, and a
//! user targeted directly by a level is on call permanently (`start`/`end` null).

use std::collections::BTreeMap;
use std::time::Duration;

use ids::{EscalationPolicyId, PdUserId, ScheduleId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    API_BASE, FakePagerDuty, HTML_BASE, State, bad_request, page, page_params, paged_reply,
    policy_ref, query_pairs, query_values, rfc3339_seconds, user_ref,
};
use crate::http::{RecordedRequest, Reply};

/// The longest `since`..`until` range PagerDuty accepts.
const MAX_RANGE: time::Duration = time::Duration::days(90);
/// How far around a query range periods are computed, so a period's `start` and `end` are its
/// own, not the range's.
const CONTEXT: time::Duration = time::Duration::days(14);

/// A schedule override: `user` is on call in `[start, end)` instead of the rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOverride {
    /// The override id.
    pub id: String,
    /// Who is on call instead.
    pub user: PdUserId,
    /// The start.
    pub start: OffsetDateTime,
    /// The end.
    pub end: OffsetDateTime,
}

/// An on-call schedule with one rotation layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSchedule {
    /// The schedule id.
    pub id: ScheduleId,
    /// The name.
    pub name: String,
    /// The users in rotation order.
    pub users: Vec<PdUserId>,
    /// When the first turn starts (nobody is on call before).
    pub start: OffsetDateTime,
    /// The length of one turn.
    pub shift: Duration,
    /// The overrides, oldest first.
    pub overrides: Vec<FakeOverride>,
}

/// The on-call part of the fake's state.
#[derive(Debug, Default)]
pub(super) struct OnCalls {
    schedules: BTreeMap<ScheduleId, FakeSchedule>,
    targets: BTreeMap<(EscalationPolicyId, u32), Vec<ScheduleId>>,
    now: Option<OffsetDateTime>,
    counter: u64,
}

impl OnCalls {
    /// The simulated "now" of on-call computations.
    fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(super::now)
    }
}

impl FakePagerDuty {
    /// Adds a schedule whose `users` take turns of `shift` from `start`.
    pub fn add_schedule(
        &self,
        id: &str,
        name: &str,
        users: &[PdUserId],
        start: OffsetDateTime,
        shift: Duration,
    ) -> ScheduleId {
        let schedule = FakeSchedule {
            id: ScheduleId::new(id),
            name: name.to_owned(),
            users: users.to_vec(),
            start,
            shift: shift.max(Duration::from_secs(60)),
            overrides: Vec::new(),
        };
        self.state()
            .oncall
            .schedules
            .insert(schedule.id.clone(), schedule);
        ScheduleId::new(id)
    }

    /// Makes `schedule` a target of `policy`'s 1-based `level` (adding empty levels up to it).
    pub fn add_schedule_target(
        &self,
        policy: &EscalationPolicyId,
        level: u32,
        schedule: &ScheduleId,
    ) {
        let mut state = self.state();
        if let Some(p) = state.policies.get_mut(policy) {
            while p.levels.len() < level as usize {
                p.levels.push(Vec::new());
            }
        }
        state
            .oncall
            .targets
            .entry((policy.clone(), level.max(1)))
            .or_default()
            .push(schedule.clone());
    }

    /// Adds an override: `user` is on call for `schedule` in `[start, end)`. Returns its id.
    pub fn add_override(
        &self,
        schedule: &ScheduleId,
        user: &PdUserId,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> String {
        let mut state = self.state();
        state.oncall.counter += 1;
        let id = format!("POVR{:04}", state.oncall.counter);
        if let Some(s) = state.oncall.schedules.get_mut(schedule) {
            s.overrides.push(FakeOverride {
                id: id.clone(),
                user: user.clone(),
                start,
                end,
            });
        }
        id
    }

    /// Sets the simulated time `GET /oncalls` calls "now" (its default `since`/`until`).
    pub fn set_oncall_now(&self, now: OffsetDateTime) {
        self.state().oncall.now = Some(now);
    }

    /// A copy of a schedule.
    pub fn schedule(&self, id: &ScheduleId) -> Option<FakeSchedule> {
        self.state().oncall.schedules.get(id).cloned()
    }
}

/// One on-call period of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Period {
    user: PdUserId,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// The periods of `s` in `[from, to)`, overrides applied and contiguous turns of one user merged.
fn periods(s: &FakeSchedule, from: OffsetDateTime, to: OffsetDateTime) -> Vec<Period> {
    if s.users.is_empty() && s.overrides.is_empty() {
        return Vec::new();
    }
    let shift = time::Duration::try_from(s.shift).unwrap_or(time::Duration::HOUR);
    let from = from.max(s.start);
    let mut cuts = vec![from, to];
    if !s.users.is_empty() {
        let turns = ((from - s.start).whole_seconds() / shift.whole_seconds()).max(0);
        let mut at = s.start + shift * i32::try_from(turns).unwrap_or(i32::MAX);
        while at < to {
            if at > from {
                cuts.push(at);
            }
            at += shift;
        }
    }
    for o in &s.overrides {
        cuts.extend(
            [o.start, o.end]
                .into_iter()
                .filter(|t| *t > from && *t < to),
        );
    }
    cuts.sort();
    cuts.dedup();
    let mut out: Vec<Period> = Vec::new();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let overridden = s.overrides.iter().rev().find(|o| o.start <= a && a < o.end);
        let user = match overridden {
            Some(o) => o.user.clone(),
            None if s.users.is_empty() => continue,
            None => {
                let turn = (a - s.start).whole_seconds() / shift.whole_seconds();
                s.users[usize::try_from(turn).unwrap_or(0) % s.users.len()].clone()
            }
        };
        match out.last_mut() {
            Some(last) if last.user == user && last.end == a => last.end = b,
            _ => out.push(Period {
                user,
                start: a,
                end: b,
            }),
        }
    }
    out
}

/// Who is on call at `policy`'s `level` at the simulated now: its users and its schedules'.
pub(super) fn level_users(state: &State, policy: &EscalationPolicyId, level: u32) -> Vec<PdUserId> {
    let now = state.oncall.now();
    let mut users: Vec<PdUserId> = state
        .policies
        .get(policy)
        .and_then(|p| p.levels.get(level as usize - 1))
        .cloned()
        .unwrap_or_default();
    for id in state
        .oncall
        .targets
        .get(&(policy.clone(), level))
        .into_iter()
        .flatten()
    {
        if let Some(s) = state.oncall.schedules.get(id) {
            let end = now + time::Duration::SECOND;
            for p in periods(s, now, end) {
                if !users.contains(&p.user) {
                    users.push(p.user);
                }
            }
        }
    }
    users
}

/// The schedule targets of `policy`'s `level`, as escalation rule targets.
pub(super) fn schedule_targets(
    state: &State,
    policy: &EscalationPolicyId,
    level: u32,
) -> Vec<Value> {
    state
        .oncall
        .targets
        .get(&(policy.clone(), level))
        .into_iter()
        .flatten()
        .filter_map(|id| state.oncall.schedules.get(id))
        .map(schedule_ref)
        .collect()
}

fn schedule_ref(s: &FakeSchedule) -> Value {
    json!({
        "id": s.id.as_str(),
        "type": "schedule_reference",
        "summary": s.name,
        "self": format!("{API_BASE}/schedules/{}", s.id),
        "html_url": format!("{HTML_BASE}/schedules/{}", s.id),
    })
}

fn time_param(pairs: &[(String, String)], key: &str) -> Result<Option<OffsetDateTime>, Box<Reply>> {
    match query_values(pairs, key).first() {
        None => Ok(None),
        Some(v) => OffsetDateTime::parse(v, &Rfc3339).map(Some).map_err(|_| {
            Box::new(bad_request(
                2001,
                "Invalid Input Provided",
                &[&format!("{key} is not a valid date-time")],
            ))
        }),
    }
}

/// `GET /oncalls`.
pub(super) fn list_oncalls(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let now = state.oncall.now();
    let (since, until) = match (time_param(&pairs, "since"), time_param(&pairs, "until")) {
        (Ok(s), Ok(u)) => (s.unwrap_or(now), u.unwrap_or(now)),
        (Err(reply), _) | (_, Err(reply)) => return *reply,
    };
    if until < since {
        return bad_request(
            2001,
            "Invalid Input Provided",
            &["until cannot be before since"],
        );
    }
    if until - since > MAX_RANGE {
        return bad_request(
            2001,
            "Invalid Input Provided",
            &["The time range cannot exceed 90 days"],
        );
    }
    let overlaps = |p: &Period| {
        if since == until {
            p.start <= since && since < p.end
        } else {
            p.start < until && p.end > since
        }
    };
    let policies = query_values(&pairs, "escalation_policy_ids[]");
    let schedules = query_values(&pairs, "schedule_ids[]");
    let users = query_values(&pairs, "user_ids[]");
    let earliest = query_values(&pairs, "earliest")
        .first()
        .is_some_and(|v| v == "true");
    let wanted = |list: &[String], id: &str| list.is_empty() || list.iter().any(|w| w == id);
    let mut all: Vec<(String, u32, String, Option<OffsetDateTime>, Value)> = Vec::new();
    for p in state.policies.values() {
        if !wanted(&policies, p.id.as_str()) {
            continue;
        }
        for level in 1..=u32::try_from(p.levels.len()).unwrap_or(0) {
            let entry = |user: &PdUserId, schedule: Value, start: Value, end: Value| {
                json!({
                    "user": user_ref(state, user),
                    "schedule": schedule,
                    "escalation_policy": policy_ref(state, &p.id),
                    "escalation_level": level,
                    "start": start,
                    "end": end,
                })
            };
            if schedules.is_empty() || schedules.iter().any(|s| s == "null") {
                for u in &p.levels[level as usize - 1] {
                    if wanted(&users, u.as_str()) {
                        let e = entry(u, Value::Null, Value::Null, Value::Null);
                        all.push((p.id.to_string(), level, u.to_string(), None, e));
                    }
                }
            }
            let targets = state.oncall.targets.get(&(p.id.clone(), level));
            for s in targets
                .into_iter()
                .flatten()
                .filter_map(|id| state.oncall.schedules.get(id))
            {
                if !schedules.is_empty() && !schedules.iter().any(|w| w == s.id.as_str()) {
                    continue;
                }
                for period in periods(s, since - CONTEXT, until + CONTEXT) {
                    if !overlaps(&period) || !wanted(&users, period.user.as_str()) {
                        continue;
                    }
                    let e = entry(
                        &period.user,
                        schedule_ref(s),
                        json!(rfc3339_seconds(period.start)),
                        json!(rfc3339_seconds(period.end)),
                    );
                    all.push((
                        p.id.to_string(),
                        level,
                        period.user.to_string(),
                        Some(period.start),
                        e,
                    ));
                }
            }
        }
    }
    all.sort_by(|a, b| (&a.0, a.1, a.3).cmp(&(&b.0, b.1, b.3)));
    if earliest {
        let mut seen = std::collections::BTreeSet::new();
        all.retain(|(p, level, user, _, _)| seen.insert((p.clone(), *level, user.clone())));
    }
    let items: Vec<Value> = all.into_iter().map(|(.., e)| e).collect();
    let (items, meta) = page(&items, limit, offset);
    paged_reply("oncalls", items, meta)
}

/// `GET /schedules` (`query` matches names case-insensitively).
pub(super) fn list_schedules(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let query = query_values(&pairs, "query")
        .first()
        .map(|q| q.to_lowercase());
    let items: Vec<Value> = state
        .oncall
        .schedules
        .values()
        .filter(|s| {
            query
                .as_ref()
                .is_none_or(|q| s.name.to_lowercase().contains(q))
        })
        .map(|s| {
            let policies: Vec<Value> = state
                .oncall
                .targets
                .iter()
                .filter(|(_, ids)| ids.contains(&s.id))
                .map(|((p, _), _)| policy_ref(state, p))
                .collect();
            let mut users: Vec<&PdUserId> = s.users.iter().collect();
            users.extend(s.overrides.iter().map(|o| &o.user));
            users.sort();
            users.dedup();
            json!({
                "id": s.id.as_str(),
                "type": "schedule",
                "summary": s.name,
                "name": s.name,
                "time_zone": "UTC",
                "description": null,
                "escalation_policies": policies,
                "users": users.into_iter().map(|u| user_ref(state, u)).collect::<Vec<_>>(),
                "teams": [],
                "self": format!("{API_BASE}/schedules/{}", s.id),
                "html_url": format!("{HTML_BASE}/schedules/{}", s.id),
            })
        })
        .collect();
    let (items, meta) = page(&items, limit, offset);
    paged_reply("schedules", items, meta)
}

/// `GET /schedules/{id}/overrides?since&until`.
pub(super) fn list_overrides(state: &State, req: &RecordedRequest, id: &str) -> Reply {
    let Some(s) = state.oncall.schedules.get(&ScheduleId::new(id)) else {
        return super::not_found();
    };
    let pairs = query_pairs(req);
    let (since, until) = match (time_param(&pairs, "since"), time_param(&pairs, "until")) {
        (Ok(Some(s)), Ok(Some(u))) => (s, u),
        (Err(reply), _) | (_, Err(reply)) => return *reply,
        _ => {
            return bad_request(
                2001,
                "Invalid Input Provided",
                &["since and until are required"],
            );
        }
    };
    let overrides: Vec<Value> = s
        .overrides
        .iter()
        .filter(|o| o.start < until && o.end > since)
        .map(|o| {
            json!({
                "id": o.id,
                "start": rfc3339_seconds(o.start),
                "end": rfc3339_seconds(o.end),
                "user": user_ref(state, &o.user),
            })
        })
        .collect();
    Reply::json(http::StatusCode::OK, &json!({ "overrides": overrides }))
}
