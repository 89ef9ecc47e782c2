//! The Slack half of `pdbridge check`: the bot token, its workspace and scopes, and each
//! configured channel.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ids::ChannelId;
use slack_client::{SlackClient, SlackConfig};

use super::*;
use crate::config::Config;
use crate::ops::manifest::bot_scopes;

/// The Slack lines of the report.
pub(super) async fn slack(config: &Config) -> Vec<Line> {
    let mut lines = Vec::new();
    const TOKEN: &str = "Slack bot token";
    let workspace = config
        .slack
        .team_id
        .clone()
        .unwrap_or_else(|| ids::SlackTeamId::new("unknown"));
    let slack_config = SlackConfig {
        timeout: CHECK_TIMEOUT,
        retry: slack_client::retry::RetryPolicy {
            max_attempts: 1,
            ..slack_client::retry::RetryPolicy::default()
        },
        ..crate::clients::slack_config(config, workspace)
    };
    let client = match SlackClient::new(slack_config) {
        Ok(c) => c,
        Err(err) => {
            lines.push(Line::fail(
                "Slack client",
                err.to_string(),
                "check SLACK_API_URL",
            ));
            return lines;
        }
    };
    let auth = match client.auth_test().await {
        Ok(auth) => auth,
        Err(
            err @ (slack_client::Error::NotSent { .. } | slack_client::Error::MaybeSent { .. }),
        ) => {
            lines.push(Line::fail(
                TOKEN,
                format!("Slack is unreachable: {err}"),
                format!(
                    "check outbound HTTPS to {} (SLACK_API_URL / slack.api_url, proxies, firewall)",
                    config.slack.api_url
                ),
            ));
            return lines;
        }
        Err(err) => {
            let detail = match &err {
                slack_client::Error::Api {
                    status,
                    code: Some(code),
                    ..
                } => format!("auth.test failed (HTTP {status}): {code}"),
                other => format!("auth.test failed: {other}"),
            };
            lines.push(Line::fail(
                TOKEN,
                detail,
                "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from the app's OAuth & \
                 Permissions page; reinstall the app if it was revoked",
            ));
            return lines;
        }
    };
    let user = auth.user.clone().unwrap_or_else(|| "?".to_owned());
    let (team, team_id, user_id) = (&auth.team, &auth.team_id, &auth.user_id);
    if auth.bot_id.is_none() {
        lines.push(Line::fail(
            TOKEN,
            format!("a user token of {user} ({user_id}), not a bot token"),
            "use the Bot User OAuth Token (xoxb-…), not a user token (xoxp-…)",
        ));
    } else {
        lines.push(Line::pass(
            TOKEN,
            format!("bot @{user} ({user_id}) in workspace {team} ({team_id})"),
        ));
    }
    if let Some(want) = config
        .slack
        .team_id
        .as_ref()
        .filter(|want| *want != team_id)
    {
        lines.push(Line::fail(
            "Slack workspace",
            format!("SLACK_TEAM_ID is {want} but the token belongs to {team_id}"),
            "set SLACK_TEAM_ID to the workspace the app is installed in, or use that \
             workspace's token",
        ));
    } else if config.slack.allow_any_workspace {
        lines.push(Line::pass(
            "Slack workspace",
            "slack.allow_any_workspace = true: users of any workspace (Slack Connect) are mapped \
             by the email their own workspace reports",
        ));
    } else {
        let source = if config.slack.team_id.is_some() {
            "slack.team_id"
        } else {
            "the bot's own, from auth.test"
        };
        lines.push(Line::pass(
            "Slack workspace",
            format!(
                "only users of {team_id} ({source}) are mapped by email; users of other \
                 workspaces need an [[identity]] entry (or slack.allow_any_workspace = true)"
            ),
        ));
    }

    lines.push(scopes_line(
        auth.scopes.as_ref(),
        &bot_scopes(!config.oncall_groups.is_empty()),
    ));

    let mut channels: BTreeSet<&ChannelId> = config.routes.iter().map(|r| &r.channel).collect();
    if let Some(default) = &config.slack.default_channel {
        channels.insert(default);
    }
    for channel in channels {
        lines.push(channel_line(&client, channel, &user).await);
    }
    lines
}

/// The scopes line from `auth.test`'s `x-oauth-scopes` header.
fn scopes_line(granted: Option<&BTreeSet<String>>, needed: &[&str]) -> Line {
    const SUBJECT: &str = "Slack scopes";
    let Some(granted) = granted else {
        return Line::fail(
            SUBJECT,
            "Slack did not report the token's scopes (no x-oauth-scopes header on auth.test)",
            "make sure SLACK_API_URL is Slack itself (https://slack.com/api), not a proxy that \
             drops headers",
        );
    };
    let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|s| !granted.contains(s))
        .collect();
    let extra: Vec<&str> = granted
        .iter()
        .copied()
        .filter(|s| !needed.contains(s))
        .collect();
    if !missing.is_empty() {
        return Line::fail(
            SUBJECT,
            format!("missing {}", missing.join(", ")),
            "update the app from `pdbridge slack-manifest --url …` (App Manifest page) and \
             reinstall it to the workspace",
        );
    }
    let mut detail = format!("all {} needed scopes granted", needed.len());
    if !extra.is_empty() {
        let _ = write!(
            detail,
            "; also granted, not needed: {} (remove them for least privilege)",
            extra.join(", ")
        );
    }
    Line::pass(SUBJECT, detail)
}

async fn channel_line(client: &SlackClient, channel: &ChannelId, bot: &str) -> Line {
    let subject = format!("channel {channel}");
    match client.conversation_info(channel).await {
        Ok(c) => {
            let name = c.name.clone().unwrap_or_else(|| channel.to_string());
            if c.is_archived {
                Line::fail(
                    subject,
                    format!("#{name} is archived: cards cannot be posted there"),
                    "unarchive it, or route to another channel",
                )
            } else if c.is_member == Some(false) {
                Line::fail(
                    subject,
                    format!("the bot is not a member of #{name}: posts fail with not_in_channel"),
                    format!("type `/invite @{bot}` in #{name}"),
                )
            } else {
                Line::pass(
                    subject,
                    format!("#{name}: the bot is a member and can post"),
                )
            }
        }
        Err(slack_client::Error::Api {
            code: Some(code), ..
        }) if code == "channel_not_found" => Line::fail(
            subject,
            "Slack knows no such channel, or it is private and the bot is not in it",
            "use the channel id (C…/G…, from the channel's About tab), and for a private \
                 channel `/invite` the bot first",
        ),
        Err(slack_client::Error::Api {
            code: Some(code), ..
        }) if code == "missing_scope" => Line::fail(
            subject,
            "the token may not read channel details (missing_scope)",
            "grant channels:read and groups:read (see `pdbridge slack-manifest`) and \
                 reinstall",
        ),
        Err(err) => Line::fail(subject, err.to_string(), "retry; check Slack's status page"),
    }
}
