//! `[[oncall_group]]` (Slack user groups that follow the rotation) and `[[handoff]]` (a message
//! at each shift handoff): their shapes and checks.

use ids::{ChannelId, EscalationPolicyId, ScheduleId, UserGroupId};
use serde::Deserialize;

use super::ConfigError;

fn first_level() -> Vec<u32> {
    vec![1]
}

/// One `[[oncall_group]]`: the Slack user group whose members are the mapped Slack users on call
/// for its schedules and for its escalation policy's `levels`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallGroup {
    /// The Slack user group id (`S…`).
    pub usergroup: UserGroupId,
    /// PagerDuty schedules whose on-call users belong in the group.
    #[serde(default)]
    pub schedules: Vec<ScheduleId>,
    /// A PagerDuty escalation policy whose on-call users at `levels` belong in the group.
    #[serde(default)]
    pub escalation_policy: Option<EscalationPolicyId>,
    /// The escalation levels that count (1-based; default `[1]`).
    #[serde(default = "first_level")]
    pub levels: Vec<u32>,
}

/// One `[[handoff]]`: at each handoff of `schedules`, a message in `channel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The Slack channel.
    pub channel: ChannelId,
    /// The PagerDuty schedules whose handoffs are announced.
    pub schedules: Vec<ScheduleId>,
}

/// Checks what serde cannot: a group names something to follow, levels are 1-based, a user
/// group is configured once, a handoff names a channel and a schedule.
pub(super) fn validate(groups: &[OnCallGroup], handoffs: &[Handoff]) -> Result<(), ConfigError> {
    for (i, g) in groups.iter().enumerate() {
        let key = |field: &str| format!("oncall_group[{i}].{field}");
        if g.usergroup.as_str().trim().is_empty() {
            return Err(ConfigError::key(
                key("usergroup"),
                "must not be empty".to_owned(),
            ));
        }
        if g.schedules.is_empty() && g.escalation_policy.is_none() {
            return Err(ConfigError::key(
                key("schedules"),
                "is empty and no escalation_policy is set: name what the group follows".to_owned(),
            ));
        }
        if g.levels.is_empty() || g.levels.contains(&0) {
            return Err(ConfigError::key(
                key("levels"),
                "must list escalation levels from 1 up".to_owned(),
            ));
        }
        if groups[..i].iter().any(|o| o.usergroup == g.usergroup) {
            return Err(ConfigError::key(
                key("usergroup"),
                format!("`{}` is configured twice", g.usergroup),
            ));
        }
    }
    for (i, h) in handoffs.iter().enumerate() {
        if h.channel.as_str().trim().is_empty() {
            return Err(ConfigError::key(
                format!("handoff[{i}].channel"),
                "must not be empty".to_owned(),
            ));
        }
        if h.schedules.is_empty() {
            return Err(ConfigError::key(
                format!("handoff[{i}].schedules"),
                "must name at least one schedule".to_owned(),
            ));
        }
    }
    Ok(())
}
