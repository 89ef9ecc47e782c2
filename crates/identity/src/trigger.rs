//! Who may declare (trigger) an incident from Slack: `[policy] trigger` and its decision.

use std::collections::BTreeMap;

use ids::{PdUserId, ServiceId, SlackTeamId, TeamId};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::mapping::{MappedUser, MappingOutcome};
use crate::policy::{Action, Check, Decision, Policy, Rule, ViewRefusal};

/// The key of [`TriggerRule::PerService`] that applies to services not listed.
pub const OTHER_SERVICES: &str = "*";

/// `[policy] trigger`: one rule for every service (`trigger = "any_mapped"`, the default), or a
/// rule per `[declare]` service name with `"*"` for the others
/// (`trigger = { db = "responder", "*" = "any_mapped" }`; without `"*"` the others are
/// `any_mapped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TriggerRule {
    /// The same rule for every service.
    All(Rule),
    /// A rule per service name.
    PerService(BTreeMap<String, Rule>),
}

impl Default for TriggerRule {
    fn default() -> Self {
        Self::All(Rule::AnyMapped)
    }
}

impl TriggerRule {
    /// The rule for the `[declare]` service named `service`.
    pub fn rule_for(&self, service: &str) -> Rule {
        match self {
            Self::All(rule) => *rule,
            Self::PerService(map) => map
                .get(service)
                .or_else(|| map.get(OTHER_SERVICES))
                .copied()
                .unwrap_or(Rule::AnyMapped),
        }
    }

    /// The service names given their own rule (not `"*"`).
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        let names: Vec<&str> = match self {
            Self::All(_) => Vec::new(),
            Self::PerService(map) => map
                .keys()
                .map(String::as_str)
                .filter(|k| *k != OTHER_SERVICES)
                .collect(),
        };
        names.into_iter()
    }

    /// Whether any service's rule is `admin`.
    pub fn uses_admin(&self) -> bool {
        match self {
            Self::All(rule) => *rule == Rule::Admin,
            Self::PerService(map) => map.values().any(|r| *r == Rule::Admin),
        }
    }

    pub(crate) fn validate(&self, admins_empty: bool) -> Result<(), Error> {
        if admins_empty && self.uses_admin() {
            return Err(Error::InvalidPolicy {
                field: "trigger",
                message: "rule is \"admin\" but the admins list is empty, so nobody could declare; add admins = [\"U…\"] or choose another rule".to_owned(),
            });
        }
        Ok(())
    }
}

/// What the trigger rules look at for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    /// The `[declare]` name of the service (`db`).
    pub name: String,
    /// The PagerDuty service.
    pub id: ServiceId,
    /// The service's teams.
    pub teams: Vec<TeamId>,
    /// The users on call on the service's escalation policy.
    pub on_call: Vec<PdUserId>,
}

impl Policy {
    /// Decides whether the user behind `mapping`, writing from workspace `slack_team`, may
    /// declare an incident on `service`: the workspace, mapping, role and admin checks of
    /// [`Policy::authorize`], then the service's trigger rule (`team_member`: a member of one
    /// of the service's teams, or anyone when it has none; `responder`: on call on its
    /// escalation policy).
    pub fn authorize_trigger(
        &self,
        slack_team: &SlackTeamId,
        mapping: &MappingOutcome,
        service: &ServiceFacts,
    ) -> Decision {
        let decide = |allowed: bool, check: Check, reason: String| Decision {
            action: Action::Trigger,
            allowed,
            check,
            reason,
        };
        if let Err(refusal) = self.authorize_view(slack_team, mapping) {
            let reason = match &refusal {
                ViewRefusal::OtherWorkspace { team, home } => format!(
                    "This request came from Slack workspace {team}, but pdbridge only accepts {home}."
                ),
                ViewRefusal::Unmapped(why) => why.to_string(),
            };
            return decide(false, refusal.check(), reason);
        }
        let Some(user) = mapping.mapped() else {
            return decide(false, Check::Mapping, "not mapped".to_owned());
        };
        if user.is_read_only() {
            return decide(
                false,
                Check::Role,
                format!(
                    "Your PagerDuty user {} has the {} role, which may not create incidents; ask a PagerDuty admin for a role that can (responder or above).",
                    user.pd_user,
                    user.role.as_deref().unwrap_or("read-only"),
                ),
            );
        }
        if self.config().admins.iter().any(|admin| admin.matches(user)) {
            return decide(
                true,
                Check::Admin,
                format!("{} is a pdbridge admin.", user.pd_user),
            );
        }
        let rule = self.config().trigger.rule_for(&service.name);
        let (allowed, reason) = trigger_rule(rule, user, service);
        decide(allowed, Check::Rule(rule), reason)
    }
}

fn trigger_rule(rule: Rule, user: &MappedUser, service: &ServiceFacts) -> (bool, String) {
    let name = &service.name;
    match rule {
        Rule::AnyMapped => (
            true,
            "Any mapped PagerDuty user may declare incidents.".to_owned(),
        ),
        Rule::Admin => (
            false,
            format!("Only pdbridge admins may declare incidents on {name}."),
        ),
        Rule::Responder if service.on_call.contains(&user.pd_user) => {
            (true, format!("{} is on call for {name}.", user.pd_user))
        }
        Rule::Responder => (
            false,
            format!(
                "Only users on call for {name} may declare incidents on it; {} is not.",
                user.pd_user
            ),
        ),
        Rule::TeamMember if service.teams.is_empty() => (
            true,
            format!("{name} has no team, so any mapped PagerDuty user may declare on it."),
        ),
        Rule::TeamMember => match service.teams.iter().find(|t| user.teams.contains(t)) {
            Some(team) => (
                true,
                format!("{} is on team {team} of {name}.", user.pd_user),
            ),
            None => {
                let names: Vec<String> = service.teams.iter().map(ToString::to_string).collect();
                (
                    false,
                    format!(
                        "Only members of {name}'s teams ({}) may declare incidents on it; {} is on none of them.",
                        names.join(", "),
                        user.pd_user
                    ),
                )
            }
        },
    }
}
