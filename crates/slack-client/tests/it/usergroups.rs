//! `usergroups.users.update` / `usergroups.users.list` against the fake Slack, and its refusals.

use std::time::Duration;

use fakes::slack::{FakeSlack, FakeUser};
use ids::{SlackUserId, UserGroupId};
use slack_client::retry::RetryPolicy;
use slack_client::{BotToken, Error, SlackClient, SlackConfig};
use url::Url;

const SCOPES: &[&str] = &["chat:write", "usergroups:write", "usergroups:read"];

async fn world() -> (FakeSlack, SlackClient, UserGroupId) {
    let slack = FakeSlack::start().await;
    slack.add_user(FakeUser::new("U1", "ann", "ann@example.com"));
    slack.add_user(FakeUser::new("U2", "ben", "ben@example.com"));
    slack.set_scopes(Some(SCOPES));
    let group = slack.add_usergroup("S0PAYONCALL", "payments-oncall", &["U1"]);
    let config = SlackConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(1),
        },
        ..SlackConfig::new(BotToken::new(slack.token()), slack.team_id())
            .with_api_url(Url::parse(&slack.api_url()).unwrap())
    };
    let client = SlackClient::new(config).unwrap();
    (slack, client, group)
}

fn code(err: &Error) -> Option<&str> {
    match err {
        Error::Api { code, .. } => code.as_deref(),
        _ => None,
    }
}

#[tokio::test]
async fn update_replaces_the_members_and_list_reads_them() {
    let (slack, c, group) = world().await;
    let users = [SlackUserId::new("U2"), SlackUserId::new("U1")];
    let updated = c.update_usergroup_users(&group, &users).await.unwrap();
    assert_eq!(updated.users, users.to_vec());
    assert_eq!(c.usergroup_users(&group).await.unwrap(), users.to_vec());
    assert_eq!(slack.usergroup(&group).unwrap().users, users.to_vec());
    let sent = slack.requests_to("usergroups.users.update");
    assert!(String::from_utf8_lossy(&sent[0].body).contains("U2,U1"));
}

#[tokio::test]
async fn slack_refusals_come_back_as_their_codes() {
    let (slack, c, group) = world().await;
    let ann = [SlackUserId::new("U1")];
    let err = c
        .update_usergroup_users(&UserGroupId::new("S0NOPE"), &ann)
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some("no_such_subteam"));
    let err = c
        .update_usergroup_users(&group, &[SlackUserId::new("U404")])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some("invalid_users"));
    slack.set_scopes(Some(&["chat:write"]));
    let err = c.update_usergroup_users(&group, &ann).await.unwrap_err();
    assert_eq!(code(&err), Some("missing_scope"));
    assert!(matches!(&err, Error::Api { needed: Some(n), .. } if n == "usergroups:write"));
    slack.set_scopes(Some(SCOPES));
    slack.set_free_plan(true);
    let err = c.update_usergroup_users(&group, &ann).await.unwrap_err();
    assert_eq!(code(&err), Some("paid_teams_only"));
    slack.set_free_plan(false);
    slack.set_usergroups_restricted(true);
    let err = c.update_usergroup_users(&group, &ann).await.unwrap_err();
    assert_eq!(code(&err), Some("permission_denied"));
    assert_eq!(slack.usergroup_updates(), 0);
    assert!(
        c.update_usergroup_users(&group, &[]).await.is_err(),
        "a group cannot be emptied"
    );
}
