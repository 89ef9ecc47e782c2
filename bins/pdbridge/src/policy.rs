//! The `[[identity]]` and `[policy]` configuration tables.
//!
//! `[[identity]]` pins a Slack user to a PagerDuty user (by email or id) ahead of the automatic
//! email lookup. `[policy]` restricts each action to listed Slack users and/or PagerDuty teams;
//! an action with no rule is open to every mapped user. Unmapped users are always refused.

use std::collections::BTreeMap;

use ids::{Email, PdUserId, SlackUserId, TeamId};
use serde::Deserialize;

use crate::config::ConfigError;

/// One `[[identity]]` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOverride {
    /// The Slack user.
    pub slack_user: SlackUserId,
    /// The PagerDuty user's email, sent as `From`.
    pub email: Email,
    /// The PagerDuty user id, when known.
    pub pd_user: Option<PdUserId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    slack_user: SlackUserId,
    email: String,
    #[serde(default)]
    pd_user: Option<PdUserId>,
}

impl RawIdentity {
    pub(crate) fn validate(self, index: usize) -> Result<IdentityOverride, ConfigError> {
        let email = Email::parse(&self.email).ok_or_else(|| {
            ConfigError::key(
                format!("identity[{index}].email"),
                format!("`{}` is not an email address", self.email),
            )
        })?;
        if self.slack_user.as_str().trim().is_empty() {
            return Err(ConfigError::key(
                format!("identity[{index}].slack_user"),
                "must not be empty".to_owned(),
            ));
        }
        Ok(IdentityOverride {
            slack_user: self.slack_user,
            email,
            pd_user: self.pd_user,
        })
    }
}

/// An action a Slack user can take on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Acknowledge.
    Acknowledge,
    /// Escalate one level.
    Escalate,
    /// Reassign to another user.
    Reassign,
    /// Add a note.
    Note,
    /// Resolve.
    Resolve,
}

impl ActionKind {
    /// Every action, in card order.
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Acknowledge,
        ActionKind::Escalate,
        ActionKind::Reassign,
        ActionKind::Note,
        ActionKind::Resolve,
    ];

    /// The lowercase name used in config, metrics and `action_id`s.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "acknowledge",
            ActionKind::Escalate => "escalate",
            ActionKind::Reassign => "reassign",
            ActionKind::Note => "note",
            ActionKind::Resolve => "resolve",
        }
    }
}

/// Who may take one action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRule {
    /// Slack users allowed.
    #[serde(default)]
    pub users: Vec<SlackUserId>,
    /// Members of these PagerDuty teams are allowed.
    #[serde(default)]
    pub teams: Vec<TeamId>,
}

/// The `[policy]` table: per-action rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Rules by action; an action without a rule is open to every mapped user.
    pub rules: BTreeMap<ActionKind, ActionRule>,
}

impl PolicyConfig {
    /// Whether a mapped user (with their PD teams) may take the action.
    pub fn allows(&self, action: ActionKind, user: &SlackUserId, teams: &[TeamId]) -> bool {
        match self.rules.get(&action) {
            None => true,
            Some(rule) => rule.users.contains(user) || teams.iter().any(|t| rule.teams.contains(t)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    acknowledge: Option<ActionRule>,
    #[serde(default)]
    escalate: Option<ActionRule>,
    #[serde(default)]
    reassign: Option<ActionRule>,
    #[serde(default)]
    note: Option<ActionRule>,
    #[serde(default)]
    resolve: Option<ActionRule>,
}

impl RawPolicy {
    pub(crate) fn validate(self) -> Result<PolicyConfig, ConfigError> {
        let mut rules = BTreeMap::new();
        for (kind, rule) in [
            (ActionKind::Acknowledge, self.acknowledge),
            (ActionKind::Escalate, self.escalate),
            (ActionKind::Reassign, self.reassign),
            (ActionKind::Note, self.note),
            (ActionKind::Resolve, self.resolve),
        ] {
            if let Some(rule) = rule {
                if rule.users.is_empty() && rule.teams.is_empty() {
                    return Err(ConfigError::key(
                        format!("policy.{}", kind.as_str()),
                        "needs `users` or `teams` (omit the table to allow every mapped user)"
                            .to_owned(),
                    ));
                }
                rules.insert(kind, rule);
            }
        }
        Ok(PolicyConfig { rules })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Config;

    const BASE: &str = r#"
[pagerduty]
token = "t"
webhook_secrets = ["s"]
[slack]
bot_token = "b"
signing_secret = "x"
default_channel = "C1"
"#;

    #[test]
    fn identity_and_policy_parse_and_apply() {
        let text = format!(
            "{BASE}
[[identity]]
slack_user = \"U1\"
email = \"Alice@Example.com\"

[policy.resolve]
users = [\"U1\"]
teams = [\"PT1\"]
"
        );
        let c = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
        assert_eq!(c.identity.len(), 1);
        assert_eq!(
            c.identity[0].email,
            Email::parse("alice@example.com").unwrap()
        );
        let u1 = SlackUserId::new("U1");
        let u2 = SlackUserId::new("U2");
        assert!(c.policy.allows(ActionKind::Resolve, &u1, &[]));
        assert!(!c.policy.allows(ActionKind::Resolve, &u2, &[]));
        assert!(
            c.policy
                .allows(ActionKind::Resolve, &u2, &[TeamId::new("PT1")])
        );
        assert!(c.policy.allows(ActionKind::Acknowledge, &u2, &[]));
    }

    #[test]
    fn bad_identity_and_policy_name_the_key() {
        let text = format!("{BASE}\n[[identity]]\nslack_user = \"U1\"\nemail = \"nope\"\n");
        let err = Config::from_toml_str(&text, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("identity[0].email"), "{err}");
        let text = format!("{BASE}\n[policy.resolve]\n");
        let err = Config::from_toml_str(&text, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("policy.resolve"), "{err}");
        let text = format!("{BASE}\n[policy]\nsnooze = {{ users = [\"U1\"] }}\n");
        let err = Config::from_toml_str(&text, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("snooze"), "{err}");
    }
}
