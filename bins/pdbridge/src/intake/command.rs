//! Slash commands: `/pd whoami`, `/pd status <incident id>`, `/pd oncall` (in `crate::oncall`)
//! and `/pd help`.

use std::sync::Arc;
use std::time::Duration;

use ids::IncidentId;
use slack_client::interaction::SlashCommand;
use sync_core::IncidentState;

use crate::bridge::Bridge;
use crate::http::SlackReply;
use crate::identity::{LookupError, ViewDenied};
use crate::render::{self};

/// How long `/pd whoami` waits for its lookup before answering through `response_url`.
const WHOAMI_INLINE: Duration = Duration::from_millis(1500);
/// How long a slash command waits for `auth.test` when the home workspace is not known yet.
const HOME_TEAM_INLINE: Duration = Duration::from_millis(1000);

impl Bridge {
    pub(super) async fn command(&self, cmd: SlashCommand) -> SlackReply {
        let text = cmd.text.trim();
        let mut words = text.split_whitespace();
        // Like actions, commands are only taken from the home workspace (unless
        // `slack.allow_any_workspace`); while it is unknown, from none.
        let home = tokio::time::timeout(HOME_TEAM_INLINE, self.ctx.identity.home_team()).await;
        let foreign = match home.unwrap_or(Err(LookupError::HomeNotYet)) {
            Ok(home) => home.filter(|home| *home != cmd.team_id).map(|home| {
                format!(
                    "This command came from Slack workspace {}, but pdbridge only accepts commands from {home}.",
                    cmd.team_id
                )
            }),
            Err(why) => Some(format!("{why}. Try again in a minute.")),
        };
        let reply = match (foreign, words.next().unwrap_or("help")) {
            (Some(refusal), _) => {
                tracing::warn!(team = %cmd.team_id, "slash command from another workspace refused");
                self.ctx
                    .metrics
                    .webhook_rejected("slack_command", "workspace");
                refusal
            }
            (None, "oncall") => {
                let rest: Vec<&str> = words.collect();
                return SlackReply::Json(self.oncall_command(&cmd, &rest).await);
            }
            (None, word) => match word {
                "trigger" => return self.trigger_command(&cmd).await,
                "whoami" => self.whoami(&cmd).await,
                "status" => match words.next() {
                    Some(id) => match self.may_view(&cmd).await {
                        Ok(()) => self.status_text(&IncidentId::new(id)).await,
                        Err(denied) => denied.to_string(),
                    },
                    None => "Usage: `/pd status <incident id>`".to_owned(),
                },
                _ => help_text(),
            },
        };
        SlackReply::Json(serde_json::json!({
            "response_type": "ephemeral",
            "text": reply,
        }))
    }

    /// Whether the command's user may read incident details (the policy's mapping checks: no
    /// guest, bot or unmapped user). The lookup runs in a task of its own, so one slower than
    /// [`WHOAMI_INLINE`] still completes (and is cached) while the command is answered with a
    /// request to ask again.
    async fn may_view(&self, cmd: &SlashCommand) -> Result<(), ViewDenied> {
        let identity = Arc::clone(&self.ctx.identity);
        let (user, team, now) = (cmd.user_id.clone(), cmd.team_id.clone(), self.now());
        let lookup = tokio::spawn(async move { identity.may_view(&user, &team, now).await });
        match tokio::time::timeout(WHOAMI_INLINE, lookup).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ViewDenied::LookupLost),
            Err(_) => Err(ViewDenied::Pending),
        }
    }

    /// `/pd whoami`: answered inline when the lookup is quick, else through `response_url`
    /// (the lookup may call Slack and PagerDuty, and the command must be answered within 3 s).
    async fn whoami(&self, cmd: &SlashCommand) -> String {
        let identity = Arc::clone(&self.ctx.identity);
        let slack = self.ctx.slack.clone();
        let (user, team, now) = (cmd.user_id.clone(), cmd.team_id.clone(), self.now());
        let response_url = cmd.response_url.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let text = identity.whoami(&user, Some(&team), now).await;
            if let Err(tx_back) = tx.send(text) {
                // The command was already answered: deliver the result through response_url.
                let msg = slack_client::api::ResponseUrlMessage::ephemeral(tx_back);
                if let Err(err) = slack.respond(&response_url, &msg).await {
                    tracing::warn!(%err, "answering /pd whoami through response_url failed");
                }
            }
        });
        match tokio::time::timeout(WHOAMI_INLINE, rx).await {
            Ok(Ok(text)) => text,
            _ => "Looking you up in Slack and PagerDuty; the answer follows here.".to_owned(),
        }
    }

    async fn status_text(&self, incident: &IncidentId) -> String {
        let in_memory = self.with_engine(|e| e.incident(incident).cloned());
        let state = match in_memory {
            Some(state) => Some(state),
            None => {
                let id = incident.clone();
                self.ctx
                    .blocking(move |store| store.read(|tx| tx.incident(&id)))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.state.decode::<IncidentState>().ok())
            }
        };
        match state.as_ref() {
            None => format!("pdbridge tracks no incident `{incident}`."),
            Some(state) => {
                let card = match (state.channel(), state.card_ts()) {
                    (Some(c), Some(_)) => format!("its card is in <#{c}>"),
                    (Some(c), None) => format!("its card for <#{c}> is not posted yet"),
                    _ => "it has no card".to_owned(),
                };
                match state.snapshot() {
                    Some(s) => format!(
                        "*{}* `{incident}` is *{}*; {card}.",
                        render::escape(&s.title),
                        s.status.label()
                    ),
                    None => format!("`{incident}` is known but not yet loaded; {card}."),
                }
            }
        }
    }
}

fn help_text() -> String {
    [
        "*pdbridge* drives PagerDuty incidents from their Slack cards.",
        "• `/pd whoami`: which PagerDuty user your clicks are made as, or why none.",
        "• `/pd status <incident id>`: what pdbridge knows about an incident.",
        "• `/pd oncall [<service|team|schedule> | @user] [public]`: who is on call.",
        "• `/pd trigger [<service> <severity> <title>]`: declare a PagerDuty incident (the form opens when anything is missing).",
        "• `/pd help`: this message.",
        "Use the card buttons Acknowledge, Escalate, Reassign, Add note and Resolve to act.",
    ]
    .join("\n")
}
