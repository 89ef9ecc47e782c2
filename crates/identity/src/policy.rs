//! The per-action authorization policy (`[policy]`) and its decisions.

use std::fmt;

use ids::{ChannelId, Email, PdUserId, SlackTeamId, SlackUserId};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::facts::IncidentFacts;
use crate::mapping::{MappedUser, MappingOutcome, MappingSource, Refusal};
use crate::trigger::TriggerRule;

/// A Slack-originated action on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Acknowledge.
    Ack,
    /// Add a note.
    Note,
    /// Reassign to another user.
    Reassign,
    /// Escalate to the next level.
    Escalate,
    /// Resolve.
    Resolve,
    /// Change the urgency.
    Urgency,
    /// Snooze.
    Snooze,
    /// Change the priority.
    Priority,
    /// Declare (trigger) a new incident from Slack; decided by [`Policy::authorize_trigger`]
    /// under `[policy] trigger`, and not one of [`Action::ALL`], the card's actions.
    Trigger,
}

impl Action {
    /// Every action, in card order.
    pub const ALL: [Action; 8] = [
        Action::Ack,
        Action::Escalate,
        Action::Reassign,
        Action::Note,
        Action::Resolve,
        Action::Urgency,
        Action::Snooze,
        Action::Priority,
    ];

    /// The config key and audit name (`ack`, `note`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Note => "note",
            Action::Reassign => "reassign",
            Action::Escalate => "escalate",
            Action::Resolve => "resolve",
            Action::Urgency => "urgency",
            Action::Snooze => "snooze",
            Action::Priority => "priority",
            Action::Trigger => "trigger",
        }
    }

    /// The verb used in messages ("acknowledge", "add a note to", …).
    pub fn verb(self) -> &'static str {
        match self {
            Action::Ack => "acknowledge",
            Action::Note => "add a note to",
            Action::Reassign => "reassign",
            Action::Escalate => "escalate",
            Action::Resolve => "resolve",
            Action::Urgency => "change the urgency of",
            Action::Snooze => "snooze",
            Action::Priority => "change the priority of",
            Action::Trigger => "declare",
        }
    }
}

impl From<ids::Verb> for Action {
    fn from(verb: ids::Verb) -> Self {
        match verb {
            ids::Verb::Acknowledge => Action::Ack,
            ids::Verb::AddNote => Action::Note,
            ids::Verb::Reassign => Action::Reassign,
            ids::Verb::Escalate => Action::Escalate,
            ids::Verb::Resolve => Action::Resolve,
            ids::Verb::ChangeUrgency => Action::Urgency,
            ids::Verb::Snooze => Action::Snooze,
            ids::Verb::ChangePriority => Action::Priority,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may perform an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Any Slack user mapped to an active PagerDuty user.
    AnyMapped,
    /// A member of one of the incident's teams, its service's teams or its escalation
    /// policy's teams. When the incident has no team anywhere (incident, service and escalation
    /// policy all teamless) there is no team boundary to protect, so any mapped user qualifies;
    /// an incident that has a team the user is not in ("another team's incident") is refused.
    TeamMember,
    /// An assignee of the incident, or a user on call on its escalation policy.
    Responder,
    /// Only users listed in `admins`.
    Admin,
}

impl Rule {
    /// The config spelling (`any_mapped`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::AnyMapped => "any_mapped",
            Rule::TeamMember => "team_member",
            Rule::Responder => "responder",
            Rule::Admin => "admin",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry of `admins`: a Slack user id (`U…`/`W…`), a PagerDuty user id (`P…`) or an email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AdminRef {
    /// A Slack user.
    Slack(SlackUserId),
    /// A PagerDuty user.
    Pd(PdUserId),
    /// A PagerDuty login email (case-insensitive).
    Email(Email),
}

impl AdminRef {
    /// Whether `user` is this admin.
    pub fn matches(&self, user: &MappedUser) -> bool {
        match self {
            AdminRef::Slack(id) => id == &user.slack_user,
            AdminRef::Pd(id) => id == &user.pd_user,
            AdminRef::Email(email) => email == &user.email,
        }
    }
}

impl TryFrom<String> for AdminRef {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        let upper_id = value.len() >= 2
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if value.contains('@') {
            Email::parse(&value)
                .filter(|e| e.as_str() == value)
                .map(AdminRef::Email)
                .ok_or_else(|| Error::InvalidPolicy {
                    field: "admins",
                    message: format!("{value:?} is not an email address"),
                })
        } else if upper_id && (value.starts_with('U') || value.starts_with('W')) {
            Ok(AdminRef::Slack(SlackUserId::new(value)))
        } else if upper_id && value.starts_with('P') {
            Ok(AdminRef::Pd(PdUserId::new(value)))
        } else {
            Err(Error::InvalidPolicy {
                field: "admins",
                message: format!(
                    "{value:?} is neither a Slack user id (U…/W…), a PagerDuty user id (P…) nor an email"
                ),
            })
        }
    }
}

impl From<AdminRef> for String {
    fn from(value: AdminRef) -> Self {
        match value {
            AdminRef::Slack(id) => id.into_string(),
            AdminRef::Pd(id) => id.into_string(),
            AdminRef::Email(email) => email.as_str().to_owned(),
        }
    }
}

/// Who may ask who is on call (`/pd oncall`): no incident detail is shown, so people without a
/// PagerDuty seat may ask by default.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AskRule {
    /// Anyone in the home workspace who is not a guest, bot or deactivated user, mapped to
    /// PagerDuty or not.
    #[default]
    WorkspaceMember,
    /// Only users mapped to an active PagerDuty user.
    AnyMapped,
    /// Only users listed in `admins`.
    Admin,
}

impl AskRule {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AskRule::WorkspaceMember => "workspace_member",
            AskRule::AnyMapped => "any_mapped",
            AskRule::Admin => "admin",
        }
    }
}

fn any_mapped() -> Rule {
    Rule::AnyMapped
}

fn team_member() -> Rule {
    Rule::TeamMember
}

/// The `[policy]` section: a rule per action and the admins list.
///
/// Defaults: `ack` and `note` are `any_mapped`; `reassign`, `escalate`, `resolve` and
/// `urgency` (and `snooze`, `priority`) are `team_member` (which any mapped user passes on an incident with no team
/// anywhere, and only members pass otherwise). Admins pass every rule. A rule of `admin` with an empty `admins` list is
/// rejected at load, because nobody could ever perform that action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicyConfig")]
pub struct PolicyConfig {
    /// Rule for Acknowledge.
    pub ack: Rule,
    /// Rule for Add note.
    pub note: Rule,
    /// Rule for Reassign.
    pub reassign: Rule,
    /// Rule for Escalate.
    pub escalate: Rule,
    /// Rule for Resolve.
    pub resolve: Rule,
    /// Rule for Change urgency (More actions).
    pub urgency: Rule,
    /// Rule for Snooze (More actions).
    pub snooze: Rule,
    /// Rule for Change priority (More actions).
    pub priority: Rule,
    /// Rule for declaring incidents (`trigger`, default `any_mapped`), per service if set so.
    pub trigger: TriggerRule,
    /// Users who pass every rule.
    pub admins: Vec<AdminRef>,
    /// Who may ask who is on call (`oncall`, default `workspace_member`).
    pub oncall: AskRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyConfig {
    #[serde(default = "any_mapped")]
    ack: Rule,
    #[serde(default = "any_mapped")]
    note: Rule,
    #[serde(default = "team_member")]
    reassign: Rule,
    #[serde(default = "team_member")]
    escalate: Rule,
    #[serde(default = "team_member")]
    resolve: Rule,
    #[serde(default = "team_member")]
    urgency: Rule,
    #[serde(default = "team_member")]
    snooze: Rule,
    #[serde(default = "team_member")]
    priority: Rule,
    #[serde(default)]
    trigger: TriggerRule,
    #[serde(default)]
    admins: Vec<AdminRef>,
    #[serde(default)]
    oncall: AskRule,
}

impl TryFrom<RawPolicyConfig> for PolicyConfig {
    type Error = Error;

    fn try_from(raw: RawPolicyConfig) -> Result<Self, Error> {
        let config = PolicyConfig {
            ack: raw.ack,
            note: raw.note,
            reassign: raw.reassign,
            escalate: raw.escalate,
            resolve: raw.resolve,
            urgency: raw.urgency,
            snooze: raw.snooze,
            priority: raw.priority,
            trigger: raw.trigger,
            admins: raw.admins,
            oncall: raw.oncall,
        };
        config.validate()?;
        Ok(config)
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            ack: Rule::AnyMapped,
            note: Rule::AnyMapped,
            reassign: Rule::TeamMember,
            escalate: Rule::TeamMember,
            resolve: Rule::TeamMember,
            urgency: Rule::TeamMember,
            snooze: Rule::TeamMember,
            priority: Rule::TeamMember,
            trigger: TriggerRule::default(),
            admins: Vec::new(),
            oncall: AskRule::WorkspaceMember,
        }
    }
}

impl PolicyConfig {
    /// The rule for `action`.
    pub fn rule(&self, action: Action) -> Rule {
        match action {
            Action::Ack => self.ack,
            Action::Note => self.note,
            Action::Reassign => self.reassign,
            Action::Escalate => self.escalate,
            Action::Resolve => self.resolve,
            Action::Urgency => self.urgency,
            Action::Snooze => self.snooze,
            Action::Priority => self.priority,
            Action::Trigger => self.trigger.rule_for(crate::trigger::OTHER_SERVICES),
        }
    }

    /// Checks cross-field constraints (deserialization already does this).
    pub fn validate(&self) -> Result<(), Error> {
        if self.admins.is_empty()
            && let Some(action) = Action::ALL
                .into_iter()
                .find(|a| self.rule(*a) == Rule::Admin)
        {
            return Err(Error::InvalidPolicy {
                    field: action.as_str(),
                    message: "rule is \"admin\" but the admins list is empty, so nobody could do this; add admins = [\"U…\"] or choose another rule".to_owned(),
                });
        }
        if self.admins.is_empty() && self.oncall == AskRule::Admin {
            return Err(Error::InvalidPolicy {
                field: "oncall",
                message: "rule is \"admin\" but the admins list is empty, so nobody could ask; add admins = [\"U…\"] or choose another rule".to_owned(),
            });
        }
        self.trigger.validate(self.admins.is_empty())
    }

    /// Reads the `[policy]` table from a TOML document (defaults when absent); other keys are ignored.
    pub fn from_toml_str(source: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            policy: PolicyConfig,
        }
        toml::from_str::<Document>(source)
            .map(|doc| doc.policy)
            .map_err(|e| Error::Toml(e.to_string()))
    }
}

/// Where an action came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionContext {
    /// The action.
    pub action: Action,
    /// The workspace of the interaction payload (`team.id`).
    pub slack_team: SlackTeamId,
    /// The channel of the interaction payload (`channel.id`, or the modal's stored channel).
    pub channel: ChannelId,
}

/// Which check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The action's workspace is not the configured one.
    Workspace,
    /// The action did not come from the channel of the incident's card.
    Channel,
    /// The Slack user is not mapped to a PagerDuty user.
    Mapping,
    /// The PagerDuty user's role may not change incidents.
    Role,
    /// The user is a configured admin.
    Admin,
    /// The action's rule.
    Rule(Rule),
}

/// An authorization decision, kept for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The action decided on.
    pub action: Action,
    /// Whether the action may proceed.
    pub allowed: bool,
    /// The check that decided.
    pub check: Check,
    /// Why, in words the Slack user can act on.
    pub reason: String,
}

/// Why [`Policy::authorize_view`] refuses to show a user incident details. Its `Display` is the
/// answer to show them, which names no incident detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewRefusal {
    /// The command came from a workspace other than the home one.
    OtherWorkspace {
        /// The workspace the command came from.
        team: SlackTeamId,
        /// The home workspace.
        home: SlackTeamId,
    },
    /// The Slack user is not mapped to a PagerDuty user.
    Unmapped(Refusal),
}

impl ViewRefusal {
    /// The check that refused.
    pub fn check(&self) -> Check {
        match self {
            ViewRefusal::OtherWorkspace { .. } => Check::Workspace,
            ViewRefusal::Unmapped(_) => Check::Mapping,
        }
    }
}

impl fmt::Display for ViewRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewRefusal::OtherWorkspace { team, home } => write!(
                f,
                "This command came from Slack workspace {team}, but pdbridge only answers {home}."
            ),
            ViewRefusal::Unmapped(refusal) => write!(
                f,
                "pdbridge shows incident details only to users mapped to PagerDuty: {refusal}"
            ),
        }
    }
}

/// Why [`Policy::authorize_oncall`] refuses to say who is on call. Its `Display` is the answer
/// to show the asker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskRefusal {
    /// The command came from a workspace other than the home one.
    OtherWorkspace {
        /// The workspace the command came from.
        team: SlackTeamId,
        /// The home workspace.
        home: SlackTeamId,
    },
    /// Not a member of the home workspace (guest, bot, deactivated, another workspace's user).
    NotMember(Refusal),
    /// The rule is `any_mapped` and the user is not mapped to a PagerDuty user.
    Unmapped(Refusal),
    /// The rule is `admin` and the user is not an admin.
    NotAdmin,
}

impl fmt::Display for AskRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskRefusal::OtherWorkspace { team, home } => write!(
                f,
                "This command came from Slack workspace {team}, but pdbridge only answers {home}."
            ),
            AskRefusal::NotMember(refusal) => write!(
                f,
                "pdbridge answers who is on call only to members of this workspace: {refusal}"
            ),
            AskRefusal::Unmapped(refusal) => write!(
                f,
                "pdbridge answers who is on call only to users mapped to PagerDuty: {refusal}"
            ),
            AskRefusal::NotAdmin => {
                f.write_str("Only pdbridge admins may ask who is on call here.")
            }
        }
    }
}

/// The authorization policy: a [`PolicyConfig`] plus the configured workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    config: PolicyConfig,
    workspace: Option<SlackTeamId>,
}

impl Policy {
    /// A policy; `workspace` is `slack.team_id` (`None` accepts any workspace).
    pub fn new(config: PolicyConfig, workspace: Option<SlackTeamId>) -> Self {
        Self { config, workspace }
    }

    /// The rules.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The configured workspace.
    pub fn workspace(&self) -> Option<&SlackTeamId> {
        self.workspace.as_ref()
    }

    /// Decides whether the user behind `mapping`, writing from workspace `slack_team`, may read
    /// an incident's details (`/pd status`): the workspace and mapping checks of
    /// [`Policy::authorize`], with no action rule. Guests, bots, deactivated users, other
    /// workspaces' users and unmapped users are refused (unless an `[[identity]]` override
    /// maps them); the refusal names no incident detail.
    pub fn authorize_view(
        &self,
        slack_team: &SlackTeamId,
        mapping: &MappingOutcome,
    ) -> Result<(), ViewRefusal> {
        if let Some(home) = &self.workspace
            && slack_team != home
            && !vouched_by_override(mapping)
        {
            return Err(ViewRefusal::OtherWorkspace {
                team: slack_team.clone(),
                home: home.clone(),
            });
        }
        match mapping {
            MappingOutcome::Mapped(_) => Ok(()),
            MappingOutcome::Refused(refusal) => Err(ViewRefusal::Unmapped(refusal.clone())),
        }
    }

    /// Decides whether the user behind `mapping`, writing from `slack_team`, may ask who is on
    /// call (`/pd oncall`), by the `oncall` rule. Under `workspace_member` a home-workspace
    /// member without a usable PagerDuty user may ask; guests, bots, deactivated users and other
    /// workspaces' users may not.
    pub fn authorize_oncall(
        &self,
        slack_team: &SlackTeamId,
        mapping: &MappingOutcome,
    ) -> Result<(), AskRefusal> {
        if let Some(home) = &self.workspace
            && slack_team != home
            && !vouched_by_override(mapping)
        {
            return Err(AskRefusal::OtherWorkspace {
                team: slack_team.clone(),
                home: home.clone(),
            });
        }
        let admin = mapping
            .mapped()
            .is_some_and(|user| self.config.admins.iter().any(|a| a.matches(user)));
        match (self.config.oncall, mapping) {
            (AskRule::Admin, _) if admin => Ok(()),
            (AskRule::Admin, _) => Err(AskRefusal::NotAdmin),
            (_, MappingOutcome::Mapped(_)) => Ok(()),
            (AskRule::AnyMapped, MappingOutcome::Refused(refusal)) => {
                Err(AskRefusal::Unmapped(refusal.clone()))
            }
            (AskRule::WorkspaceMember, MappingOutcome::Refused(refusal)) => match refusal {
                Refusal::NoEmail { .. }
                | Refusal::NoPdUserWithEmail { .. }
                | Refusal::AmbiguousPdEmail { .. }
                | Refusal::OverrideTargetNotFound { .. }
                | Refusal::PdUserDeactivated { .. } => Ok(()),
                Refusal::SlackUserNotFound { .. }
                | Refusal::Bot { .. }
                | Refusal::SlackUserDeleted { .. }
                | Refusal::Guest { .. }
                | Refusal::ForeignTeam { .. } => Err(AskRefusal::NotMember(refusal.clone())),
            },
        }
    }

    /// Decides whether the user behind `mapping` may perform `ctx.action` on `incident`.
    ///
    /// Checks run in order: workspace (skipped for a user mapped by an `[[identity]]` entry),
    /// card channel, mapping, PagerDuty role (every action is a
    /// mutation, which [`crate::READ_ONLY_ROLES`] may not make), admin, the action's rule. The
    /// first that decides is recorded in [`Decision::check`].
    pub fn authorize(
        &self,
        ctx: &ActionContext,
        mapping: &MappingOutcome,
        incident: &IncidentFacts,
    ) -> Decision {
        let action = ctx.action;
        let decide = |allowed: bool, check: Check, reason: String| Decision {
            action,
            allowed,
            check,
            reason,
        };
        if let Some(home) = &self.workspace
            && &ctx.slack_team != home
            && !vouched_by_override(mapping)
        {
            return decide(
                false,
                Check::Workspace,
                format!(
                    "This action came from Slack workspace {}, but pdbridge only accepts actions from {home} unless a pdbridge admin maps you with an [[identity]] entry.",
                    ctx.slack_team
                ),
            );
        }
        match &incident.card_channel {
            None => {
                return decide(
                    false,
                    Check::Channel,
                    format!(
                        "pdbridge has no card for incident {}; act on the incident's card.",
                        incident.id
                    ),
                );
            }
            Some(card) if card != &ctx.channel => {
                return decide(
                    false,
                    Check::Channel,
                    format!(
                        "Incident {}'s card lives in <#{card}>; act on it there, not in <#{}>.",
                        incident.id, ctx.channel
                    ),
                );
            }
            Some(_) => {}
        }
        let user = match mapping {
            MappingOutcome::Mapped(user) => user,
            MappingOutcome::Refused(refusal) => {
                return decide(false, Check::Mapping, refusal.to_string());
            }
        };
        if user.is_read_only() {
            return decide(
                false,
                Check::Role,
                format!(
                    "Your PagerDuty user {} has the {} role, which may not change incidents, so pdbridge will not {} incident {} as you; ask a PagerDuty admin for a role that can (responder or above).",
                    user.pd_user,
                    user.role.as_deref().unwrap_or("read-only"),
                    action.verb(),
                    incident.id
                ),
            );
        }
        if self.config.admins.iter().any(|admin| admin.matches(user)) {
            return decide(
                true,
                Check::Admin,
                format!("{} is a pdbridge admin.", user.pd_user),
            );
        }
        let rule = self.config.rule(action);
        let verb = action.verb();
        let (allowed, reason) = match rule {
            Rule::AnyMapped => (
                true,
                format!("Any mapped PagerDuty user may {verb} incidents."),
            ),
            Rule::Admin => (false, format!("Only pdbridge admins may {verb} incidents.")),
            Rule::Responder => responder(user, incident, verb),
            Rule::TeamMember => {
                let teams: Vec<_> = incident.all_teams().collect();
                if teams.is_empty() {
                    (
                        true,
                        format!(
                            "Incident {} has no team (nor do its service and escalation policy), so any mapped PagerDuty user may {verb} it.",
                            incident.id
                        ),
                    )
                } else if let Some(team) = teams.iter().find(|t| user.teams.contains(t)) {
                    (
                        true,
                        format!(
                            "{} is on team {team} of incident {}.",
                            user.pd_user, incident.id
                        ),
                    )
                } else {
                    let mut names: Vec<String> = teams.iter().map(|t| t.to_string()).collect();
                    names.sort();
                    names.dedup();
                    (
                        false,
                        format!(
                            "Only members of incident {}'s teams ({}) may {verb} it; {} is on none of them.",
                            incident.id,
                            names.join(", "),
                            user.pd_user
                        ),
                    )
                }
            }
        };
        decide(allowed, Check::Rule(rule), reason)
    }
}

fn responder(user: &MappedUser, incident: &IncidentFacts, verb: &str) -> (bool, String) {
    if incident.assignees.contains(&user.pd_user) {
        (
            true,
            format!("{} is assigned to incident {}.", user.pd_user, incident.id),
        )
    } else if incident.on_call.contains(&user.pd_user) {
        (
            true,
            format!(
                "{} is on call on incident {}'s escalation policy.",
                user.pd_user, incident.id
            ),
        )
    } else {
        (
            false,
            format!(
                "Only responders of incident {} (assignees and on-call users of its escalation policy) may {verb} it; {} is neither.",
                incident.id, user.pd_user
            ),
        )
    }
}

/// Whether an `[[identity]]` entry vouches for the user, whatever their workspace (Slack Connect).
fn vouched_by_override(mapping: &MappingOutcome) -> bool {
    mapping
        .mapped()
        .is_some_and(|user| user.source == MappingSource::Override)
}
