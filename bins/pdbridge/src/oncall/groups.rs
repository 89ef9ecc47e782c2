//! `[[oncall_group]]`: Slack user groups whose members are the mapped Slack users on call.
//!
//! Each pass computes the wanted members from the cache and calls `usergroups.users.update`
//! only when they differ from the members last set (kept in the store, so a restart does not
//! repeat an update). Nobody mapped on call leaves the last members in place (Slack cannot empty
//! a group through this method). A refusal (`paid_teams_only`, `missing_scope`, …) is logged with
//! its fix at most once an hour and not retried before then; the report under `group/<id>`
//! (members, unmapped on-call people, refusal, fix) is what `pdbridge status` shows.

use std::collections::BTreeSet;
use std::time::Duration;

use ids::{PdUserId, SlackUserId, Timestamp, UserGroupId};
use serde::{Deserialize, Serialize};

use crate::bridge::Bridge;
use crate::config::OnCallGroup;
use crate::http::Unavailable;

/// How long a refused group waits before it is tried (and reported) again.
pub const REFUSAL_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// The store key prefix of the reports.
const PREFIX: &str = "group/";

/// What is known about one user group, as `pdbridge status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The user group.
    pub usergroup: UserGroupId,
    /// The members pdbridge last set, if it set any.
    pub members: Option<Vec<SlackUserId>>,
    /// People on call for the group who map to no Slack user (id, name).
    pub unmapped: Vec<(PdUserId, String)>,
    /// Slack's refusal of the last update, if it refused.
    pub refusal: Option<String>,
    /// What to do about the refusal.
    pub fix: Option<String>,
    /// When this report was written.
    pub at: Timestamp,
}

/// On-call people who map to no Slack user: id and name.
pub(crate) type Unmapped = Vec<(PdUserId, String)>;

/// The loop's memory of one group.
#[derive(Debug, Clone)]
pub(crate) struct GroupState {
    report: GroupReport,
    retry_at: Option<Timestamp>,
    reported_at: Option<Timestamp>,
}

impl GroupState {
    /// Forgets when to try again and when a refusal was reported (the clock changed).
    pub(crate) fn forget_times(&mut self) {
        self.retry_at = None;
        self.reported_at = None;
    }

    fn new(usergroup: UserGroupId, at: Timestamp) -> Self {
        Self {
            report: GroupReport {
                usergroup,
                members: None,
                unmapped: Vec::new(),
                refusal: None,
                fix: None,
                at,
            },
            retry_at: None,
            reported_at: None,
        }
    }
}

/// What to do about a Slack refusal, in one sentence.
pub fn fix_for(code: &str) -> String {
    match code {
        "paid_teams_only" => "Slack user groups need a paid plan: upgrade the workspace or remove \
                              the [[oncall_group]] tables."
            .to_owned(),
        "missing_scope" | "not_allowed_token_type" => "Grant the bot the usergroups:write scope \
                                                       (pdbridge slack-manifest lists it when groups \
                                                       are configured) and reinstall the app."
            .to_owned(),
        "no_such_subteam" => "No such user group: check the usergroup id (S…) in [[oncall_group]]."
            .to_owned(),
        "permission_denied" => "Workspace settings restrict who may change user groups: let the \
                                app change them (Settings → Permissions → User Groups)."
            .to_owned(),
        "invalid_users" => "Slack refused one of the on-call users (deactivated or a bot): check \
                            the [[identity]] entries of the people on call."
            .to_owned(),
        other => format!("Slack refused the update ({other}); see Slack's documentation of usergroups.users.update."),
    }
}

/// The wanted members and the unmapped people of `group` at `now`: `None` before the first read.
pub(crate) fn wanted(
    shared: &super::Shared,
    group: &OnCallGroup,
    now: Timestamp,
) -> Option<(Vec<SlackUserId>, Unmapped)> {
    shared.cache.fetched_at()?;
    let people = shared.cache.on_call(
        now,
        &group.schedules,
        group.escalation_policy.as_ref(),
        &group.levels,
    );
    let mut members = BTreeSet::new();
    let mut unmapped = Vec::new();
    for person in people {
        match shared
            .slack_of
            .get(&person.id)
            .and_then(|m| m.slack.as_ref())
        {
            Some(slack) => {
                members.insert(slack.clone());
            }
            None => unmapped.push((person.id, person.name)),
        }
    }
    Some((members.into_iter().collect(), unmapped))
}

/// Reads the last reports from the store into the loop's memory.
pub(super) async fn restore(bridge: &Bridge) -> Result<(), Unavailable> {
    let reports = bridge
        .ctx
        .blocking(|store| {
            store.read(|tx| tx.oncall_values(PREFIX)).map(|values| {
                values
                    .into_iter()
                    .filter_map(|(_, v)| serde_json::from_value::<GroupReport>(v).ok())
                    .collect::<Vec<_>>()
            })
        })
        .await?;
    let mut shared = bridge.ctx.oncall.lock();
    for report in reports {
        let mut state = GroupState::new(report.usergroup.clone(), report.at);
        state.report = report;
        shared.groups.insert(state.report.usergroup.clone(), state);
    }
    Ok(())
}

/// Every stored group report, by user group.
pub fn group_reports(store: &store::Store) -> Result<Vec<GroupReport>, store::Error> {
    let values = store.read(|tx| tx.oncall_values(PREFIX))?;
    Ok(values
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect())
}

/// The on-call part of `pdbridge status`: each user group's members, unmapped on-call people
/// and Slack's refusal with its fix (empty when no group was ever synced).
pub fn status_report(database: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let reports = store::Store::open_read_only(database)
        .and_then(|store| group_reports(&store))
        .unwrap_or_default();
    let mut out = String::new();
    for r in reports {
        let members = r.members.as_ref().map_or_else(
            || "not set yet".to_owned(),
            |m| {
                m.iter()
                    .map(SlackUserId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        let _ = writeln!(out, "  on-call group {}  members: {members}", r.usergroup);
        for (id, name) in &r.unmapped {
            let _ = writeln!(
                out,
                "    on call but no Slack user: {name} ({id}); add an [[identity]] entry or fix the email"
            );
        }
        if let (Some(code), Some(fix)) = (&r.refusal, &r.fix) {
            let _ = writeln!(out, "    Slack refused the update ({code}): {fix}");
        }
    }
    out
}

enum Plan {
    Keep,
    Update(Vec<SlackUserId>),
}

/// Brings every configured group in step at `now`.
pub(super) async fn sync(bridge: &Bridge, now: Timestamp) {
    let mut unmapped_total = 0;
    for group in &bridge.ctx.config.oncall_groups {
        let (plan, changed) = {
            let mut shared = bridge.ctx.oncall.lock();
            let Some((members, unmapped)) = wanted(&shared, group, now) else {
                return;
            };
            unmapped_total += unmapped.len();
            let state = shared
                .groups
                .entry(group.usergroup.clone())
                .or_insert_with(|| GroupState::new(group.usergroup.clone(), now));
            let changed = state.report.unmapped != unmapped;
            state.report.unmapped = unmapped;
            let waiting = state.retry_at.is_some_and(|at| now < at);
            let plan =
                if members.is_empty() || waiting || state.report.members.as_ref() == Some(&members)
                {
                    Plan::Keep
                } else {
                    Plan::Update(members)
                };
            (plan, changed)
        };
        let report = match plan {
            Plan::Keep if !changed => continue,
            Plan::Keep => bridge.ctx.oncall.lock().groups[&group.usergroup]
                .report
                .clone(),
            Plan::Update(members) => update(bridge, group, members, now).await,
        };
        save(bridge, report, now).await;
    }
    bridge.ctx.metrics.oncall.set_unmapped(unmapped_total);
}

async fn update(
    bridge: &Bridge,
    group: &OnCallGroup,
    members: Vec<SlackUserId>,
    now: Timestamp,
) -> GroupReport {
    let result = bridge
        .ctx
        .slack
        .update_usergroup_users(&group.usergroup, &members)
        .await;
    let mut shared = bridge.ctx.oncall.lock();
    let state = shared
        .groups
        .entry(group.usergroup.clone())
        .or_insert_with(|| GroupState::new(group.usergroup.clone(), now));
    match result {
        Ok(_) => {
            bridge.ctx.metrics.api_call("slack", "ok");
            bridge.ctx.metrics.oncall.group_update("ok");
            tracing::info!(usergroup = %group.usergroup, members = members.len(), "user group follows the rotation");
            state.report.members = Some(members);
            state.report.refusal = None;
            state.report.fix = None;
            state.retry_at = None;
        }
        Err(err) => {
            bridge.ctx.metrics.api_call("slack", "error");
            match &err {
                slack_client::Error::Api {
                    code: Some(code), ..
                } if !err.is_retryable() => {
                    bridge.ctx.metrics.oncall.group_update("refused");
                    let fix = fix_for(code);
                    let due = state
                        .reported_at
                        .is_none_or(|at| now.duration_since(at) >= REFUSAL_BACKOFF);
                    if due {
                        tracing::warn!(usergroup = %group.usergroup, code = %code, fix = %fix, "Slack refused to update the on-call user group; not retrying for an hour");
                        state.reported_at = Some(now);
                    }
                    state.report.refusal = Some(code.clone());
                    state.report.fix = Some(fix);
                    state.retry_at = Some(now.saturating_add(REFUSAL_BACKOFF));
                }
                _ => {
                    bridge.ctx.metrics.oncall.group_update("error");
                    tracing::warn!(usergroup = %group.usergroup, %err, "updating the on-call user group failed; trying again shortly");
                    state.retry_at = Some(now.saturating_add(super::cache::RETRY_EVERY));
                }
            }
        }
    }
    state.report.clone()
}

async fn save(bridge: &Bridge, mut report: GroupReport, now: Timestamp) {
    report.at = now;
    let key = format!("{PREFIX}{}", report.usergroup);
    let Ok(value) = serde_json::to_value(&report) else {
        return;
    };
    if let Err(err) =
        crate::runtime::write(bridge, move |tx| tx.put_oncall_value(&key, &value, now)).await
    {
        tracing::warn!(err = %err.0, "could not store the user group's report");
    }
}
