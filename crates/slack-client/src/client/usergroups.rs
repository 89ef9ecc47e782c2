//! `usergroups.users.update` and `usergroups.users.list`.

use ids::{SlackUserId, UserGroupId};
use serde::{Deserialize, Serialize};

use super::{Call, SlackClient, Style};
use crate::Error;

/// A user group as `usergroups.users.update` returns it (the fields pdbridge reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroup {
    /// The group id (`S…`).
    pub id: UserGroupId,
    /// The handle people mention (`payments-oncall`).
    #[serde(default)]
    pub handle: Option<String>,
    /// The members after the change.
    #[serde(default)]
    pub users: Vec<SlackUserId>,
}

#[derive(Deserialize)]
struct UpdateResponse {
    usergroup: UserGroup,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    users: Vec<SlackUserId>,
}

impl SlackClient {
    /// `usergroups.users.update`: makes `users` the group's whole membership. Needs
    /// `usergroups:write`; Slack refuses an empty list (a group cannot be emptied this way).
    pub async fn update_usergroup_users(
        &self,
        usergroup: &UserGroupId,
        users: &[SlackUserId],
    ) -> Result<UserGroup, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            usergroup: &'a UserGroupId,
            users: String,
        }
        if users.is_empty() {
            return Err(Error::Config(
                "usergroups.users.update needs at least one user".to_owned(),
            ));
        }
        let call = Call {
            method: "usergroups.users.update",
            style: Style::Json,
            idempotent: true,
            channel: None,
        };
        let users = users
            .iter()
            .map(SlackUserId::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let r: UpdateResponse = self.call(call, &Args { usergroup, users }).await?;
        Ok(r.usergroup)
    }

    /// `usergroups.users.list`: the group's members. Needs `usergroups:read`.
    pub async fn usergroup_users(
        &self,
        usergroup: &UserGroupId,
    ) -> Result<Vec<SlackUserId>, Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            usergroup: &'a UserGroupId,
        }
        let call = Call {
            method: "usergroups.users.list",
            style: Style::Query,
            idempotent: true,
            channel: None,
        };
        let r: ListResponse = self.call(call, &Args { usergroup }).await?;
        Ok(r.users)
    }
}
