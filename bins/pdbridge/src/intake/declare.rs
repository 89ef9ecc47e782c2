//! Declaring incidents from Slack: `/pd trigger`, the **Declare incident** message shortcut
//! and the declare modal's submission. A complete request is committed and answered; anything
//! else opens the modal first (the `trigger_id` dies 3 s after the user's action).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use slack_client::api::OpenView;
use slack_client::blocks::{ResponseAction, SelectOption};
use slack_client::interaction::{SlashCommand, ViewSubmission};

use crate::bridge::Bridge;
use crate::declare::form::{self, DeclareContext, Prefill};
use crate::declare::{Origin, declarations};
use crate::http::{SlackReply, Unavailable};
use crate::render;

/// The `callback_id` of the **Declare incident** message shortcut.
pub const SHORTCUT_DECLARE: &str = "pdbridge_declare";
/// The shortcut's name in Slack's message menu.
pub const SHORTCUT_NAME: &str = "Declare incident";

/// How long opening the modal may take before the request is answered anyway.
const OPEN_VIEW_TIMEOUT: Duration = Duration::from_millis(2000);
/// How long a service search may ask PagerDuty before the configured services are offered
/// alone (Slack waits 3 s for options).
const SEARCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// The most options one search answers with (Slack shows at most 100).
const SEARCH_LIMIT: u32 = 50;

/// The manifest entry of the message shortcut.
pub fn shortcut_manifest() -> Value {
    json!({
        "name": SHORTCUT_NAME,
        "type": "message",
        "callback_id": SHORTCUT_DECLARE,
        "description": "Declare a PagerDuty incident about this message"
    })
}

fn ephemeral(text: impl Into<String>) -> SlackReply {
    SlackReply::Json(json!({"response_type": "ephemeral", "text": text.into()}))
}

const NOT_SET_UP: &str = "Declaring incidents is not set up: ask a pdbridge admin to add a [declare] table to the configuration.";

/// A `message_action` payload (the message shortcut), as far as pdbridge reads it.
#[derive(Debug, Deserialize)]
struct MessageAction {
    callback_id: String,
    trigger_id: ids::TriggerId,
    response_url: Option<String>,
    user: slack_client::interaction::InteractionUser,
    team: Option<slack_client::interaction::Team>,
    channel: Option<IdOnly>,
    message: Option<ShortcutMessage>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: ids::ChannelId,
}

#[derive(Debug, Deserialize)]
struct ShortcutMessage {
    #[serde(default)]
    text: String,
    ts: Option<String>,
}

/// Why the declare modal did not open.
#[derive(Debug)]
enum OpenFailed {
    /// Slack refused `views.open` (an expired `trigger_id`, say).
    Slack(slack_client::Error),
    /// Slack did not answer within [`OPEN_VIEW_TIMEOUT`].
    Timeout,
}

impl std::fmt::Display for OpenFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Slack(err) => write!(f, "{err}"),
            Self::Timeout => f.write_str("Slack did not answer in time"),
        }
    }
}

/// A `block_suggestion` payload: what the user typed into an external select.
#[derive(Debug, Deserialize)]
struct Suggestion {
    action_id: String,
    #[serde(default)]
    value: String,
}

impl Bridge {
    /// Options for the declare modal's searchable service select (`declare.search_services`):
    /// the configured services whose name or id contains the query, then PagerDuty's services
    /// whose name does (`GET /services?query=`), disabled ones left out. When PagerDuty does not
    /// answer in time, the configured services alone.
    pub(super) async fn block_suggestion(&self, raw: Value) -> Result<SlackReply, Unavailable> {
        let empty = || SlackReply::Json(json!({"options": []}));
        let Ok(suggestion) = serde_json::from_value::<Suggestion>(raw) else {
            return Ok(empty());
        };
        let Some(config) = self.ctx.config.declare.clone() else {
            return Ok(empty());
        };
        if suggestion.action_id != form::SERVICE_INPUT || !config.search_services {
            return Ok(empty());
        }
        let query = suggestion.value.trim().to_lowercase();
        let mut options: Vec<SelectOption> = config
            .services
            .iter()
            .filter(|(name, id)| {
                name.to_lowercase().contains(&query) || id.as_str().to_lowercase().contains(&query)
            })
            .map(|(name, id)| SelectOption::new(&form::option_label(name, id), id.to_string()))
            .collect();
        let pd = self.ctx.pd.with_timeout(SEARCH_TIMEOUT);
        let search = pd.search_services(suggestion.value.trim(), SEARCH_LIMIT);
        match tokio::time::timeout(SEARCH_TIMEOUT, search).await {
            Ok(Ok(found)) => {
                for service in found {
                    let known = options.iter().any(|o| o.value == service.id.as_str());
                    if known || service.status.as_deref() == Some("disabled") {
                        continue;
                    }
                    let label = form::option_label(&service.name, &service.id);
                    options.push(SelectOption::new(&label, service.id.to_string()));
                }
            }
            Ok(Err(err)) => tracing::warn!(%err, "searching PagerDuty services failed"),
            Err(_) => tracing::warn!("searching PagerDuty services timed out"),
        }
        options.truncate(100);
        Ok(SlackReply::Json(json!({ "options": options })))
    }

    /// `/pd trigger [<service> <severity> <title…>]`.
    pub(super) async fn trigger_command(&self, cmd: &SlashCommand) -> SlackReply {
        let Some(config) = self.ctx.config.declare.clone() else {
            return ephemeral(NOT_SET_UP);
        };
        let rest = cmd
            .text
            .trim_start()
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest);
        let ctx = DeclareContext {
            channel: Some(cmd.channel_id.clone()),
            response_url: Some(cmd.response_url.to_string()),
            requester_name: cmd.user_name.clone(),
        };
        match form::parse_text(&config, rest) {
            Ok(request) => {
                let origin = Origin {
                    request_id: cmd.trigger_id.as_str().to_owned(),
                    requester: cmd.user_id.clone(),
                    requester_name: cmd.user_name.clone(),
                    team: Some(cmd.team_id.clone()),
                    channel: ctx.channel.clone(),
                    response_url: ctx.response_url.clone(),
                };
                let list = declarations(&request, &origin);
                match self.store_declarations(list).await {
                    Ok(_) => ephemeral(format!(
                        "Declaring *{}* on {} ({}); the link follows here.",
                        render::escape(&request.title),
                        request
                            .services
                            .iter()
                            .map(|(name, _)| name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        request.severity
                    )),
                    Err(Unavailable(why)) => ephemeral(format!(
                        "pdbridge could not take the request ({}); try again.",
                        render::escape(&why.to_string())
                    )),
                }
            }
            Err(prefill) => {
                match self
                    .open_declare_modal(&config, &prefill, &ctx, cmd.trigger_id.clone())
                    .await
                {
                    Ok(()) => SlackReply::Empty,
                    Err(why) => ephemeral(format!(
                        "pdbridge could not open the declare form ({}). Try again, or type `/pd trigger <service> <severity> <title>`.",
                        render::escape(&why.to_string())
                    )),
                }
            }
        }
    }

    async fn open_declare_modal(
        &self,
        config: &crate::config::DeclareConfig,
        prefill: &Prefill,
        ctx: &DeclareContext,
        trigger_id: ids::TriggerId,
    ) -> Result<(), OpenFailed> {
        let req = OpenView {
            trigger_id,
            view: form::modal(config, prefill, ctx),
        };
        match tokio::time::timeout(OPEN_VIEW_TIMEOUT, self.ctx.slack.open_view(&req)).await {
            Ok(Ok(_)) => {
                self.ctx.metrics.api_call("slack", "ok");
                Ok(())
            }
            Ok(Err(err)) => {
                self.ctx.metrics.api_call("slack", "error");
                tracing::warn!(%err, "views.open for the declare modal failed");
                Err(OpenFailed::Slack(err))
            }
            Err(_) => Err(OpenFailed::Timeout),
        }
    }

    /// The **Declare incident** message shortcut: the modal, prefilled from the message.
    pub(super) async fn message_shortcut(&self, raw: Value) -> Result<SlackReply, Unavailable> {
        let action: MessageAction = match serde_json::from_value(raw) {
            Ok(a) => a,
            Err(err) => {
                tracing::warn!(%err, "unreadable message_action payload");
                return Ok(SlackReply::Empty);
            }
        };
        if action.callback_id != SHORTCUT_DECLARE {
            return Ok(SlackReply::Empty);
        }
        let channel = action.channel.map(|c| c.id);
        let response_url = action.response_url.clone();
        let tell = |text: String| {
            let slack = self.ctx.slack.clone();
            let url = response_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok());
            tokio::spawn(async move {
                if let Some(url) = url {
                    let msg = slack_client::api::ResponseUrlMessage::ephemeral(text);
                    if let Err(err) = slack.respond(&url, &msg).await {
                        tracing::warn!(%err, "answering the declare shortcut failed");
                    }
                }
            });
        };
        let Some(config) = self.ctx.config.declare.clone() else {
            tell(NOT_SET_UP.to_owned());
            return Ok(SlackReply::Empty);
        };
        let message = action.message.unwrap_or(ShortcutMessage {
            text: String::new(),
            ts: None,
        });
        let domain = action.team.as_ref().and_then(|t| t.domain.as_deref());
        let permalink = match (domain, &channel, message.ts.as_deref()) {
            (Some(domain), Some(channel), Some(ts)) => Some(format!(
                "https://{domain}.slack.com/archives/{channel}/p{}",
                ts.replace('.', "")
            )),
            _ => None,
        };
        let prefill = form::from_message(&config, &message.text, permalink.as_deref());
        let ctx = DeclareContext {
            channel,
            response_url: response_url.clone(),
            requester_name: action.user.username.clone().or(action.user.name.clone()),
        };
        if let Err(why) = self
            .open_declare_modal(&config, &prefill, &ctx, action.trigger_id)
            .await
        {
            tell(format!(
                "pdbridge could not open the declare form ({}). Try the shortcut again.",
                render::escape(&why.to_string())
            ));
        }
        Ok(SlackReply::Empty)
    }

    /// A submitted declare modal: `response_action: errors` for bad fields, else one stored
    /// declaration per service (a double submit of the same view stores nothing new).
    pub(super) async fn declare_submission(
        &self,
        p: ViewSubmission,
    ) -> Result<SlackReply, Unavailable> {
        let Some(config) = self.ctx.config.declare.clone() else {
            return Ok(SlackReply::Empty);
        };
        let ctx = DeclareContext::decode(&p.view.private_metadata).unwrap_or_default();
        let request = match form::parse_submission(&config, &p.view.state) {
            Ok(r) => r,
            Err(errors) => {
                return Ok(SlackReply::Json(
                    serde_json::to_value(ResponseAction::Errors { errors }).unwrap_or_default(),
                ));
            }
        };
        let origin = Origin {
            request_id: p.view.id.as_str().to_owned(),
            requester: p.user.id.clone(),
            requester_name: ctx
                .requester_name
                .clone()
                .or(p.user.username.clone())
                .or(p.user.name.clone()),
            team: p
                .team
                .as_ref()
                .map(|t| t.id.clone())
                .or_else(|| p.user.team_id.clone()),
            channel: ctx.channel.clone(),
            response_url: ctx.response_url.clone(),
        };
        self.store_declarations(declarations(&request, &origin))
            .await?;
        Ok(SlackReply::Empty)
    }
}
