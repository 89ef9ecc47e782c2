//! Facts fetched from Slack and PagerDuty that the pure decisions are made from.

use ids::{
    ChannelId, Email, EscalationPolicyId, IncidentId, PdUserId, SlackTeamId, SlackUserId, TeamId,
};
use serde::{Deserialize, Serialize};

/// What Slack's `users.info` says about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackUserFacts {
    /// The user id (`U…` or `W…`).
    pub id: SlackUserId,
    /// The workspace the user belongs to (differs from ours for Slack Connect users).
    pub team_id: SlackTeamId,
    /// `is_bot` (apps and bot users).
    pub is_bot: bool,
    /// `deleted` (deactivated in Slack).
    pub deleted: bool,
    /// `is_restricted` (multi-channel guest).
    pub is_restricted: bool,
    /// `is_ultra_restricted` (single-channel guest).
    pub is_ultra_restricted: bool,
    /// `profile.email`: Slack only returns it for a verified address and with `users:read.email`.
    pub email: Option<Email>,
}

impl SlackUserFacts {
    /// A regular, active, non-guest member of `team_id` with the given verified email.
    pub fn member(id: SlackUserId, team_id: SlackTeamId, email: Option<Email>) -> Self {
        Self {
            id,
            team_id,
            is_bot: false,
            deleted: false,
            is_restricted: false,
            is_ultra_restricted: false,
            email,
        }
    }

    /// Whether the user is a guest of either kind.
    pub fn is_guest(&self) -> bool {
        self.is_restricted || self.is_ultra_restricted
    }
}

/// The PagerDuty account roles that may not change incidents: `observer`, and the stakeholder
/// license's `read_only_user` ("Full Stakeholder") and `read_only_limited_user` ("Limited
/// Stakeholder"). PagerDuty refuses their mutations; pdbridge refuses them before asking.
/// `restricted_access` users act within what their teams grant, so PagerDuty decides for them.
pub const READ_ONLY_ROLES: &[&str] = &["observer", "read_only_user", "read_only_limited_user"];

/// What PagerDuty's `GET /users/{id}` (or `GET /users?query=`) says about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdUserFacts {
    /// The user id (`P…`).
    pub id: PdUserId,
    /// The login email, sent as `From` on mutations.
    pub email: Email,
    /// The display name.
    pub name: String,
    /// The PagerDuty role (`user`, `admin`, `observer`, …), when known; [`READ_ONLY_ROLES`] may
    /// not act.
    #[serde(default)]
    pub role: Option<String>,
    /// Whether the account is deactivated or otherwise unable to act.
    #[serde(default)]
    pub deactivated: bool,
    /// The teams the user belongs to.
    #[serde(default)]
    pub teams: Vec<TeamId>,
}

/// What the authorization policy needs to know about an incident and its card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFacts {
    /// The incident.
    pub id: IncidentId,
    /// The incident's own teams (`teams[]`).
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// The teams of the incident's service.
    #[serde(default)]
    pub service_teams: Vec<TeamId>,
    /// The incident's escalation policy.
    #[serde(default)]
    pub escalation_policy: Option<EscalationPolicyId>,
    /// The teams of the escalation policy.
    #[serde(default)]
    pub escalation_policy_teams: Vec<TeamId>,
    /// Users currently assigned to the incident.
    #[serde(default)]
    pub assignees: Vec<PdUserId>,
    /// Users currently on call on the incident's escalation policy (any level).
    #[serde(default)]
    pub on_call: Vec<PdUserId>,
    /// The channel where the incident's card lives; `None` when no card was posted.
    #[serde(default)]
    pub card_channel: Option<ChannelId>,
}

impl IncidentFacts {
    /// An incident with no teams, responders or card; fill in the fields that apply.
    pub fn new(id: IncidentId) -> Self {
        Self {
            id,
            teams: Vec::new(),
            service_teams: Vec::new(),
            escalation_policy: None,
            escalation_policy_teams: Vec::new(),
            assignees: Vec::new(),
            on_call: Vec::new(),
            card_channel: None,
        }
    }

    /// Every team the incident belongs to: its own, its service's and its escalation policy's.
    pub fn all_teams(&self) -> impl Iterator<Item = &TeamId> {
        self.teams
            .iter()
            .chain(&self.service_teams)
            .chain(&self.escalation_policy_teams)
    }

    /// Whether `user` is assigned to the incident or on call on its escalation policy.
    pub fn is_responder(&self, user: &PdUserId) -> bool {
        self.assignees.contains(user) || self.on_call.contains(user)
    }
}
