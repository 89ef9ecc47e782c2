//! Slack user groups: `usergroups.users.update` and `usergroups.users.list`, with the errors
//! Slack answers: `paid_teams_only` on a free workspace, `missing_scope` without
//! `usergroups:write` (or `usergroups:read`), `no_such_subteam`, `invalid_users`,
//! `permission_denied` when workspace settings restrict who edits groups, and
//! `invalid_arguments` when `usergroup` or `users` is missing (a group cannot be emptied).

use std::collections::BTreeMap;

use ids::{SlackUserId, UserGroupId};
use serde_json::{Map, Value, json};

use super::{FakeSlack, State, fail, ok, str_arg};
use crate::http::Reply;

/// The fake's user groups and the workspace settings that govern them.
#[derive(Debug, Default)]
pub(super) struct Groups {
    groups: BTreeMap<UserGroupId, FakeUserGroup>,
    free_plan: bool,
    restricted: bool,
    updated: u64,
}

/// A user group known to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUserGroup {
    /// The id (`S…`).
    pub id: UserGroupId,
    /// The handle (`payments-oncall`).
    pub handle: String,
    /// The members, in the order last set.
    pub users: Vec<SlackUserId>,
}

impl FakeSlack {
    /// Adds a user group with these members.
    pub fn add_usergroup(&self, id: &str, handle: &str, users: &[&str]) -> UserGroupId {
        let group = FakeUserGroup {
            id: UserGroupId::new(id),
            handle: handle.to_owned(),
            users: users.iter().map(|u| SlackUserId::new(*u)).collect(),
        };
        self.state().groups.groups.insert(group.id.clone(), group);
        UserGroupId::new(id)
    }

    /// A copy of a user group.
    pub fn usergroup(&self, id: &UserGroupId) -> Option<FakeUserGroup> {
        self.state().groups.groups.get(id).cloned()
    }

    /// How many `usergroups.users.update` calls changed a group so far.
    pub fn usergroup_updates(&self) -> u64 {
        self.state().groups.updated
    }

    /// Makes the workspace a free one: user group methods answer `paid_teams_only`.
    pub fn set_free_plan(&self, free: bool) {
        self.state().groups.free_plan = free;
    }

    /// Restricts who may edit user groups: updates answer `permission_denied`.
    pub fn set_usergroups_restricted(&self, restricted: bool) {
        self.state().groups.restricted = restricted;
    }
}

fn missing_scope(state: &State, scope: &str) -> Option<Reply> {
    let granted = state.scopes.as_ref()?;
    if granted.iter().any(|s| s == scope) {
        return None;
    }
    Some(Reply::json(
        http::StatusCode::OK,
        &json!({"ok": false, "error": "missing_scope", "needed": scope, "provided": granted.join(",")}),
    ))
}

/// `usergroups.users.update`.
pub(super) fn update(state: &mut State, args: &Map<String, Value>) -> Reply {
    if let Some(reply) = missing_scope(state, "usergroups:write") {
        return reply;
    }
    if state.groups.free_plan {
        return fail("paid_teams_only");
    }
    let (Some(id), Some(users)) = (str_arg(args, "usergroup"), str_arg(args, "users")) else {
        return fail("invalid_arguments");
    };
    let users: Vec<SlackUserId> = users
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(SlackUserId::new)
        .collect();
    if users.is_empty() {
        return fail("invalid_arguments");
    }
    if users
        .iter()
        .any(|u| state.users.get(u).is_none_or(|u| u.deleted || u.is_bot))
    {
        return fail("invalid_users");
    }
    if state.groups.restricted {
        return fail("permission_denied");
    }
    let groups = &mut state.groups;
    let Some(group) = groups.groups.get_mut(&UserGroupId::new(id)) else {
        return fail("no_such_subteam");
    };
    group.users = users;
    groups.updated += 1;
    ok(json!({"usergroup": {
        "id": group.id, "handle": group.handle, "name": group.handle,
        "is_usergroup": true, "users": group.users, "user_count": group.users.len(),
    }}))
}

/// `usergroups.users.list`.
pub(super) fn list(state: &State, args: &Map<String, Value>) -> Reply {
    if let Some(reply) = missing_scope(state, "usergroups:read") {
        return reply;
    }
    if state.groups.free_plan {
        return fail("paid_teams_only");
    }
    let Some(id) = str_arg(args, "usergroup") else {
        return fail("invalid_arguments");
    };
    match state.groups.groups.get(&UserGroupId::new(id)) {
        Some(group) => ok(json!({"users": group.users})),
        None => fail("no_such_subteam"),
    }
}
