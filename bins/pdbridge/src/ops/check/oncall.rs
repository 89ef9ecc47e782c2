//! The on-call checks of `pdbridge check`: for each `[[oncall_group]]`, who is on call now and
//! whether each of them maps to a Slack user (an `[[identity]]` entry, else the PagerDuty email
//! through `users.lookupByEmail`), so unmapped on-call people are found before a handoff.

use ids::{ScheduleId, SlackUserId};
use pd_client::schedule::OnCallQuery;
use slack_client::SlackClient;

use super::{CHECK_TIMEOUT, Line};
use crate::config::Config;

/// One line per `[[oncall_group]]` (none when no group is configured).
pub(super) async fn oncall(config: &Config) -> Vec<Line> {
    if config.oncall_groups.is_empty() {
        return Vec::new();
    }
    let pd = match super::check_pd_client(config) {
        Ok(pd) => pd,
        Err(err) => return vec![Line::skip("on-call groups", err.to_string())],
    };
    let mut slack_config = crate::clients::slack_config(
        config,
        config
            .slack
            .team_id
            .clone()
            .unwrap_or_else(|| ids::SlackTeamId::new("unknown")),
    );
    slack_config.timeout = CHECK_TIMEOUT;
    let slack = match SlackClient::new(slack_config) {
        Ok(slack) => slack,
        Err(err) => return vec![Line::skip("on-call groups", err.to_string())],
    };
    let mut lines = Vec::new();
    for group in &config.oncall_groups {
        let subject = format!("on-call group {}", group.usergroup);
        let query = OnCallQuery {
            schedule_ids: group.schedules.clone(),
            escalation_policy_ids: group.escalation_policy.iter().cloned().collect(),
            ..OnCallQuery::default()
        };
        let oncalls = match pd.oncalls(&query).await {
            Ok(listing) => listing.items,
            Err(err) => {
                lines.push(Line::fail(
                    subject,
                    format!("GET /oncalls failed: {err}"),
                    "give the token oncalls.read, and check the schedule and policy ids",
                ));
                continue;
            }
        };
        let mut people: Vec<_> = oncalls
            .iter()
            .filter(|o| {
                o.schedule_id()
                    .is_some_and(|s: ScheduleId| group.schedules.contains(&s))
                    || (group.escalation_policy.as_ref() == Some(&o.escalation_policy.id)
                        && group.levels.contains(&o.escalation_level))
            })
            .map(|o| o.user.clone())
            .collect();
        people.sort_by(|a, b| a.id.cmp(&b.id));
        people.dedup_by(|a, b| a.id == b.id);
        let mut mapped: Vec<SlackUserId> = Vec::new();
        let mut unmapped: Vec<String> = Vec::new();
        for person in &people {
            let name = person
                .summary
                .clone()
                .unwrap_or_else(|| person.id.to_string());
            let email = pd.get_user(&person.id).await.ok().map(|u| u.email);
            if let Some(slack_user) = config.identity.slack_user_for(&person.id, email.as_ref()) {
                mapped.push(slack_user.clone());
                continue;
            }
            match &email {
                Some(email) => match slack.lookup_user_by_email(email).await {
                    Ok(user) => mapped.push(user.id),
                    Err(_) => unmapped.push(format!("{name} ({}, {email})", person.id)),
                },
                None => unmapped.push(format!("{name} ({})", person.id)),
            }
        }
        if unmapped.is_empty() {
            let detail = if people.is_empty() {
                "nobody on call now".to_owned()
            } else {
                format!("{} on call now, all mapped to Slack users", people.len())
            };
            lines.push(Line::pass(subject, detail));
        } else {
            lines.push(Line::fail(
                subject,
                format!(
                    "{} on call now; no Slack user for {}",
                    people.len(),
                    unmapped.join(", ")
                ),
                "add an [[identity]] entry for each, or make their Slack email their PagerDuty \
                 login email",
            ));
        }
    }
    lines
}
