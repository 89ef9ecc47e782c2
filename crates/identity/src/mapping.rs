//! The pure Slack → PagerDuty mapping decision.
//!
//! Two steps, because the second needs facts the first decides to fetch:
//! [`plan_mapping`] looks at the Slack user (and the override table) and says which PagerDuty
//! lookup to make; [`finish_mapping`] picks the PagerDuty user from what that lookup returned.

use std::fmt;

use ids::{Email, PdUserId, SlackTeamId, SlackUserId, TeamId};
use serde::{Deserialize, Serialize};

use crate::facts::{PdUserFacts, READ_ONLY_ROLES, SlackUserFacts};
use crate::overrides::{OverrideTarget, Overrides};

/// How a mapping was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    /// An `[[identity]]` entry.
    Override,
    /// The Slack user's verified profile email matched a PagerDuty login email exactly.
    VerifiedEmail,
}

/// A Slack user attributed to a PagerDuty user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedUser {
    /// The Slack user who acts.
    pub slack_user: SlackUserId,
    /// The PagerDuty user the action is attributed to.
    pub pd_user: PdUserId,
    /// The PagerDuty login email, spelled as PagerDuty has it: send it as `From`.
    pub email: Email,
    /// The PagerDuty display name.
    pub name: String,
    /// The PagerDuty user's teams (for the `team_member` rule).
    pub teams: Vec<TeamId>,
    /// The PagerDuty account role (`user`, `observer`, …), when PagerDuty said.
    #[serde(default)]
    pub role: Option<String>,
    /// Override or verified email.
    pub source: MappingSource,
}

impl MappedUser {
    /// Whether the PagerDuty role may not change incidents ([`READ_ONLY_ROLES`]).
    pub fn is_read_only(&self) -> bool {
        self.role
            .as_deref()
            .is_some_and(|role| READ_ONLY_ROLES.contains(&role))
    }
}

/// Why a Slack user cannot act as any PagerDuty user. Every variant has an actionable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// Slack does not know the user, or the bot cannot see them.
    SlackUserNotFound {
        /// The Slack user.
        slack_user: SlackUserId,
    },
    /// The Slack user is a bot or app.
    Bot {
        /// The Slack user.
        slack_user: SlackUserId,
    },
    /// The Slack user is deactivated.
    SlackUserDeleted {
        /// The Slack user.
        slack_user: SlackUserId,
    },
    /// The Slack user is a guest and has no override.
    Guest {
        /// The Slack user.
        slack_user: SlackUserId,
    },
    /// The Slack user belongs to another workspace (Slack Connect) and has no override.
    ForeignTeam {
        /// The Slack user.
        slack_user: SlackUserId,
        /// The user's workspace.
        user_team: SlackTeamId,
        /// Our workspace.
        home_team: SlackTeamId,
    },
    /// Slack returned no (verified) email for the user.
    NoEmail {
        /// The Slack user.
        slack_user: SlackUserId,
    },
    /// No PagerDuty user has exactly the Slack user's email.
    NoPdUserWithEmail {
        /// The Slack user.
        slack_user: SlackUserId,
        /// The email that matched nothing.
        email: Email,
    },
    /// More than one PagerDuty user has the email; pdbridge will not guess.
    AmbiguousPdEmail {
        /// The Slack user.
        slack_user: SlackUserId,
        /// The email that matched several users.
        email: Email,
        /// How many PagerDuty users matched.
        count: usize,
    },
    /// An override points at a PagerDuty user that does not exist.
    OverrideTargetNotFound {
        /// The Slack user.
        slack_user: SlackUserId,
        /// The override's target.
        target: OverrideTarget,
    },
    /// The PagerDuty user is deactivated.
    PdUserDeactivated {
        /// The Slack user.
        slack_user: SlackUserId,
        /// The PagerDuty user.
        pd_user: PdUserId,
    },
}

impl Refusal {
    /// A stable machine-readable code for metrics and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::SlackUserNotFound { .. } => "slack_user_not_found",
            Refusal::Bot { .. } => "bot",
            Refusal::SlackUserDeleted { .. } => "slack_user_deleted",
            Refusal::Guest { .. } => "guest",
            Refusal::ForeignTeam { .. } => "foreign_team",
            Refusal::NoEmail { .. } => "no_email",
            Refusal::NoPdUserWithEmail { .. } => "no_pd_user_with_email",
            Refusal::AmbiguousPdEmail { .. } => "ambiguous_pd_email",
            Refusal::OverrideTargetNotFound { .. } => "override_target_not_found",
            Refusal::PdUserDeactivated { .. } => "pd_user_deactivated",
        }
    }

    /// The Slack user the refusal is about.
    pub fn slack_user(&self) -> &SlackUserId {
        match self {
            Refusal::SlackUserNotFound { slack_user }
            | Refusal::Bot { slack_user }
            | Refusal::SlackUserDeleted { slack_user }
            | Refusal::Guest { slack_user }
            | Refusal::ForeignTeam { slack_user, .. }
            | Refusal::NoEmail { slack_user }
            | Refusal::NoPdUserWithEmail { slack_user, .. }
            | Refusal::AmbiguousPdEmail { slack_user, .. }
            | Refusal::OverrideTargetNotFound { slack_user, .. }
            | Refusal::PdUserDeactivated { slack_user, .. } => slack_user,
        }
    }
}

impl fmt::Display for Refusal {
    /// The message shown to the Slack user: what is wrong and what to do about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ask = "ask a pdbridge admin to add an [[identity]] entry for";
        match self {
            Refusal::SlackUserNotFound { slack_user } => write!(
                f,
                "Slack user {slack_user} could not be looked up (not found or not visible to the bot); ask a pdbridge admin to check the bot's users:read scope."
            ),
            Refusal::Bot { slack_user } => write!(
                f,
                "{slack_user} is a bot or app; only people can act on PagerDuty incidents."
            ),
            Refusal::SlackUserDeleted { slack_user } => write!(
                f,
                "Slack account {slack_user} is deactivated and cannot act on PagerDuty incidents."
            ),
            Refusal::Guest { slack_user } => write!(
                f,
                "Slack guests cannot act on PagerDuty incidents unless mapped explicitly; {ask} {slack_user}."
            ),
            Refusal::ForeignTeam {
                slack_user,
                user_team,
                home_team,
            } => write!(
                f,
                "{slack_user} belongs to Slack workspace {user_team}, not {home_team}, and pdbridge does not trust another workspace's emails; users of other workspaces (Slack Connect) must be mapped explicitly: {ask} {slack_user} (or to set slack.allow_any_workspace = true)."
            ),
            Refusal::NoEmail { slack_user } => write!(
                f,
                "Slack did not return a verified email for {slack_user} (the bot needs users:read.email); {ask} {slack_user}."
            ),
            Refusal::NoPdUserWithEmail { slack_user, email } => write!(
                f,
                "No PagerDuty user has the email {email} (your Slack profile email); use the same email in both, or {ask} {slack_user}."
            ),
            Refusal::AmbiguousPdEmail {
                slack_user,
                email,
                count,
            } => write!(
                f,
                "{count} PagerDuty users have the email {email}; pdbridge will not guess: {ask} {slack_user} with pd_user."
            ),
            Refusal::OverrideTargetNotFound { slack_user, target } => {
                let target = match target {
                    OverrideTarget::PdUser(id) => format!("pd_user = \"{id}\""),
                    OverrideTarget::PdEmail(email) => format!("pd_email = \"{email}\""),
                };
                write!(
                    f,
                    "The [[identity]] entry for {slack_user} points at {target}, which is no PagerDuty user; ask a pdbridge admin to fix it."
                )
            }
            Refusal::PdUserDeactivated {
                slack_user,
                pd_user,
            } => write!(
                f,
                "PagerDuty user {pd_user} (mapped from {slack_user}) is deactivated; ask a PagerDuty admin to reactivate it or a pdbridge admin to map you to another user."
            ),
        }
    }
}

/// The result of mapping a Slack user: a PagerDuty user, or a refusal. Cacheable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MappingOutcome {
    /// The user may act as this PagerDuty user (subject to the authorization policy).
    Mapped(MappedUser),
    /// The user may not act at all.
    Refused(Refusal),
}

impl MappingOutcome {
    /// The mapped user, if any.
    pub fn mapped(&self) -> Option<&MappedUser> {
        match self {
            MappingOutcome::Mapped(user) => Some(user),
            MappingOutcome::Refused(_) => None,
        }
    }

    /// The refusal, if any.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            MappingOutcome::Mapped(_) => None,
            MappingOutcome::Refused(refusal) => Some(refusal),
        }
    }
}

/// Which PagerDuty lookup the mapping needs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdLookup {
    /// `GET /users/{id}`.
    ById(PdUserId),
    /// `GET /users?query=<email>`; results are then filtered on exact email.
    ByEmail(Email),
}

/// The first step's answer: the lookup to make and how the mapping would be established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingPlan {
    /// The PagerDuty lookup.
    pub lookup: PdLookup,
    /// Override or verified email.
    pub source: MappingSource,
}

/// Step one: decide from the Slack facts and overrides which PagerDuty lookup to make.
///
/// `slack` is `None` when Slack does not know the user. `home_team` is our workspace; when it
/// is `None` the workspace check is skipped. Bots and deleted users are refused even when an
/// override exists; guests and other workspaces' users are accepted only through an override.
pub fn plan_mapping(
    overrides: &Overrides,
    home_team: Option<&SlackTeamId>,
    slack_user: &SlackUserId,
    slack: Option<&SlackUserFacts>,
) -> Result<MappingPlan, Refusal> {
    let slack_user = slack_user.clone();
    let Some(facts) = slack else {
        return Err(Refusal::SlackUserNotFound { slack_user });
    };
    if facts.is_bot {
        return Err(Refusal::Bot { slack_user });
    }
    if facts.deleted {
        return Err(Refusal::SlackUserDeleted { slack_user });
    }
    if let Some(target) = overrides.get(&slack_user) {
        let lookup = match target {
            OverrideTarget::PdUser(id) => PdLookup::ById(id.clone()),
            OverrideTarget::PdEmail(email) => PdLookup::ByEmail(email.clone()),
        };
        return Ok(MappingPlan {
            lookup,
            source: MappingSource::Override,
        });
    }
    if facts.is_guest() {
        return Err(Refusal::Guest { slack_user });
    }
    if let Some(home) = home_team
        && &facts.team_id != home
    {
        return Err(Refusal::ForeignTeam {
            slack_user,
            user_team: facts.team_id.clone(),
            home_team: home.clone(),
        });
    }
    match &facts.email {
        Some(email) => Ok(MappingPlan {
            lookup: PdLookup::ByEmail(email.clone()),
            source: MappingSource::VerifiedEmail,
        }),
        None => Err(Refusal::NoEmail { slack_user }),
    }
}

/// Step two: pick the PagerDuty user from what the lookup returned.
///
/// `found` may contain unrelated users (PagerDuty's `query` also matches names and
/// substrings): only a user with exactly the requested id, or exactly the requested email
/// compared case-insensitively, is taken. Never a partial match, never a fallback account.
pub fn finish_mapping(
    overrides: &Overrides,
    slack_user: &SlackUserId,
    plan: &MappingPlan,
    found: &[PdUserFacts],
) -> MappingOutcome {
    let slack_user = slack_user.clone();
    let matches: Vec<&PdUserFacts> = match &plan.lookup {
        PdLookup::ById(id) => found.iter().filter(|u| &u.id == id).collect(),
        PdLookup::ByEmail(email) => found.iter().filter(|u| &u.email == email).collect(),
    };
    let user = match (matches.as_slice(), plan.source) {
        ([user], _) => *user,
        ([], source) => {
            return MappingOutcome::Refused(match (&plan.lookup, source) {
                (PdLookup::ByEmail(email), MappingSource::VerifiedEmail) => {
                    Refusal::NoPdUserWithEmail {
                        slack_user,
                        email: email.clone(),
                    }
                }
                (lookup, _) => {
                    let target =
                        overrides
                            .get(&slack_user)
                            .cloned()
                            .unwrap_or_else(|| match lookup {
                                PdLookup::ById(id) => OverrideTarget::PdUser(id.clone()),
                                PdLookup::ByEmail(email) => OverrideTarget::PdEmail(email.clone()),
                            });
                    Refusal::OverrideTargetNotFound { slack_user, target }
                }
            });
        }
        (many, _) => {
            let email = match &plan.lookup {
                PdLookup::ByEmail(email) => email.clone(),
                PdLookup::ById(_) => many[0].email.clone(),
            };
            return MappingOutcome::Refused(Refusal::AmbiguousPdEmail {
                slack_user,
                email,
                count: many.len(),
            });
        }
    };
    if user.deactivated {
        return MappingOutcome::Refused(Refusal::PdUserDeactivated {
            slack_user,
            pd_user: user.id.clone(),
        });
    }
    MappingOutcome::Mapped(MappedUser {
        slack_user,
        pd_user: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        teams: user.teams.clone(),
        role: user.role.clone(),
        source: plan.source,
    })
}

/// Both steps at once, for callers that already hold every candidate PagerDuty user.
pub fn decide_mapping(
    overrides: &Overrides,
    home_team: Option<&SlackTeamId>,
    slack_user: &SlackUserId,
    slack: Option<&SlackUserFacts>,
    pd_users: &[PdUserFacts],
) -> MappingOutcome {
    match plan_mapping(overrides, home_team, slack_user, slack) {
        Ok(plan) => finish_mapping(overrides, slack_user, &plan, pd_users),
        Err(refusal) => MappingOutcome::Refused(refusal),
    }
}
