//! [`Directory`] over the real PagerDuty and Slack clients.

use ids::{Email, PdUserId, SlackTeamId, SlackUserId};
use pd_client::PdClient;
use pd_client::rest::{User as PdUser, UserRole};
use slack_client::SlackClient;
use slack_client::api::User as SlackUser;

use crate::Error;
use crate::facts::{PdUserFacts, SlackUserFacts};
use crate::resolver::Directory;

/// Looks identity facts up with `users.info`, `users.lookupByEmail`, `GET /users/{id}` and
/// `GET /users?query=`. "Not found" answers become `Ok(None)`; every other failure is an
/// [`Error::Directory`] carrying the client's (secret-free) message.
#[derive(Debug, Clone)]
pub struct ClientDirectory {
    pd: PdClient,
    slack: SlackClient,
    workspace: SlackTeamId,
}

impl ClientDirectory {
    /// A directory over both clients. `workspace` is the bot's own workspace, assumed for a
    /// Slack user whose `team_id` Slack omits.
    pub fn new(pd: PdClient, slack: SlackClient, workspace: SlackTeamId) -> Self {
        Self {
            pd,
            slack,
            workspace,
        }
    }

    fn slack_facts(&self, user: SlackUser) -> SlackUserFacts {
        let email = user.email().cloned();
        SlackUserFacts {
            id: user.id,
            team_id: user.team_id.unwrap_or_else(|| self.workspace.clone()),
            is_bot: user.is_bot || user.is_app_user,
            deleted: user.deleted,
            is_restricted: user.is_restricted,
            is_ultra_restricted: user.is_ultra_restricted,
            email,
        }
    }
}

/// PagerDuty's REST API has no "deactivated" flag (removed users disappear), so a user it
/// returns is active.
fn pd_facts(user: PdUser) -> PdUserFacts {
    PdUserFacts {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role.map(|role| role_name(role).to_owned()),
        deactivated: false,
        teams: user.teams.into_iter().map(|team| team.id).collect(),
    }
}

fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Admin => "admin",
        UserRole::LimitedUser => "limited_user",
        UserRole::Observer => "observer",
        UserRole::Owner => "owner",
        UserRole::ReadOnlyUser => "read_only_user",
        UserRole::RestrictedAccess => "restricted_access",
        UserRole::ReadOnlyLimitedUser => "read_only_limited_user",
        UserRole::User => "user",
        UserRole::Unknown => "unknown",
    }
}

/// Whether PagerDuty refused a mutation because of its `From` user, so the mapping that chose
/// that user must not be reused: 403 (the user may not do this, e.g. an observer), or 400 with
/// code 1008 "Requester User Not Found", 1028 "Malformed From header" or a 2001 message about
/// `From`.
pub fn pd_rejected_from(error: &pd_client::Error) -> bool {
    let pd_client::Error::Api {
        status,
        code,
        message,
        ..
    } = error
    else {
        return false;
    };
    match (*status, *code) {
        (403, _) | (400, Some(1008 | 1028)) => true,
        (400, Some(2001)) => message.contains("From"),
        _ => false,
    }
}

fn slack_not_found(error: &slack_client::Error, codes: &[&str]) -> bool {
    matches!(error, slack_client::Error::Api { code: Some(code), .. } if codes.contains(&code.as_str()))
}

fn slack_error(error: slack_client::Error) -> Error {
    Error::Directory {
        platform: "slack",
        message: error.to_string(),
    }
}

fn pd_error(error: pd_client::Error) -> Error {
    Error::Directory {
        platform: "pagerduty",
        message: error.to_string(),
    }
}

impl Directory for ClientDirectory {
    async fn slack_user(&self, id: &SlackUserId) -> Result<Option<SlackUserFacts>, Error> {
        match self.slack.user_info(id).await {
            Ok(user) => Ok(Some(self.slack_facts(user))),
            Err(e) if slack_not_found(&e, &["user_not_found", "user_not_visible"]) => Ok(None),
            Err(e) => Err(slack_error(e)),
        }
    }

    async fn slack_user_by_email(&self, email: &Email) -> Result<Option<SlackUserFacts>, Error> {
        match self.slack.lookup_user_by_email(email).await {
            Ok(user) => Ok(Some(self.slack_facts(user))),
            Err(e) if slack_not_found(&e, &["users_not_found", "user_not_found"]) => Ok(None),
            Err(e) => Err(slack_error(e)),
        }
    }

    async fn pd_user(&self, id: &PdUserId) -> Result<Option<PdUserFacts>, Error> {
        match self.pd.get_user(id).await {
            Ok(user) => Ok(Some(pd_facts(user))),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(pd_error(e)),
        }
    }

    async fn pd_users_by_email(&self, email: &Email) -> Result<Vec<PdUserFacts>, Error> {
        let found = self.pd.find_user_by_email(email).await.map_err(pd_error)?;
        Ok(found.into_iter().map(pd_facts).collect())
    }
}
