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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ids::ChannelId;

    use crate::config::Config;

    const MINIMAL: &str = r#"
[pagerduty]
token = "pd-token"
webhook_secrets = ["s1"]

[slack]
bot_token = "xoxb-1"
signing_secret = "sign"
default_channel = "C0DEFAULT"
"#;

    #[test]
    fn oncall_groups_and_handoffs_are_read_with_defaults_and_checked() {
        let text = format!(
            "{MINIMAL}
[[oncall_group]]
usergroup = \"S0PAYONCALL\"
schedules = [\"PSCHED01\"]
escalation_policy = \"PEP0001\"

[[oncall_group]]
usergroup = \"S0DBONCALL\"
escalation_policy = \"PEP0002\"
levels = [1, 2]

[[handoff]]
channel = \"C0PAYMENTS\"
schedules = [\"PSCHED01\"]
"
        );
        let c = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
        assert_eq!(c.oncall_groups.len(), 2);
        assert_eq!(c.oncall_groups[0].levels, vec![1], "default [1]");
        assert_eq!(c.oncall_groups[1].levels, vec![1, 2]);
        assert_eq!(c.handoffs[0].channel, ChannelId::new("C0PAYMENTS"));
        assert_eq!(c.policy.oncall, identity::AskRule::WorkspaceMember);

        let bad = |extra: &str| {
            Config::from_toml_str(&format!("{MINIMAL}\n{extra}"), &BTreeMap::new())
                .unwrap_err()
                .to_string()
        };
        let e = bad("[[oncall_group]]\nusergroup = \"S1\"\n");
        assert!(e.contains("oncall_group[0].schedules"), "{e}");
        let e = bad("[[oncall_group]]\nusergroup = \"S1\"\nschedules = [\"P\"]\nlevels = [0]\n");
        assert!(e.contains("oncall_group[0].levels"), "{e}");
        let e = bad(
            "[[oncall_group]]\nusergroup = \"S1\"\nschedules = [\"P\"]\n\
             [[oncall_group]]\nusergroup = \"S1\"\nschedules = [\"Q\"]\n",
        );
        assert!(e.contains("configured twice"), "{e}");
        let e = bad("[[handoff]]\nchannel = \"C1\"\nschedules = []\n");
        assert!(e.contains("handoff[0].schedules"), "{e}");
        let e = bad("[[handoff]]\nchannel = \"C1\"\nschedules = [\"P\"]\nextra = 1\n");
        assert!(e.contains("extra"), "{e}");
        let e = bad("[policy]\noncall = \"everyone\"\n");
        assert!(e.contains("policy"), "{e}");
    }
}
