//! Inbound interactivity: `block_actions`, `view_submission`, slash commands and Socket Mode frames.
//!
//! HTTP-mode interactions arrive as `application/x-www-form-urlencoded` bodies with one field,
//! `payload=<url-encoded JSON>`; slash commands arrive as plain form fields. Verify the Slack
//! signature over the raw bytes first, then call [`InteractionPayload::from_form`] or
//! [`SlashCommand::from_form`]. The deprecated verification `token` field is never kept.

use std::collections::BTreeMap;

use ids::{ChannelId, MessageTs, SlackTeamId, SlackUserId, TriggerId, ViewId};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Error;

/// A parsed interactivity payload.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionPayload {
    /// A click or selection in a message, modal or App Home.
    BlockActions(Box<BlockActions>),
    /// A modal was submitted.
    ViewSubmission(Box<ViewSubmission>),
    /// Any other payload type (`view_closed`, `shortcut`, …), kept as JSON without its `token`.
    Other {
        /// The payload's `type`.
        kind: String,
        /// The payload JSON minus the `token` field.
        raw: serde_json::Value,
    },
}

#[derive(Deserialize)]
struct FormEnvelope {
    payload: String,
}

impl InteractionPayload {
    /// Parses a raw `payload=<json>` form body (already signature-checked).
    pub fn from_form(body: &[u8]) -> Result<Self, Error> {
        let envelope: FormEnvelope = serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::Payload(format!("interactivity form: {e}")))?;
        Self::from_json(&envelope.payload)
    }

    /// Parses the payload JSON itself.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::Payload(format!("interactivity JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Parses an already-decoded payload value (as found in a Socket Mode envelope).
    pub fn from_value(mut value: serde_json::Value) -> Result<Self, Error> {
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Error::Payload("interactivity payload has no `type`".into()))?
            .to_owned();
        match kind.as_str() {
            "block_actions" => serde_json::from_value(value)
                .map(|p| Self::BlockActions(Box::new(p)))
                .map_err(|e| Error::Payload(format!("block_actions: {e}"))),
            "view_submission" => serde_json::from_value(value)
                .map(|p| Self::ViewSubmission(Box::new(p)))
                .map_err(|e| Error::Payload(format!("view_submission: {e}"))),
            _ => {
                if let Some(map) = value.as_object_mut() {
                    map.remove("token");
                }
                Ok(Self::Other { kind, raw: value })
            }
        }
    }

    /// The user who interacted, when the payload has one.
    pub fn user(&self) -> Option<&InteractionUser> {
        match self {
            Self::BlockActions(p) => Some(&p.user),
            Self::ViewSubmission(p) => Some(&p.user),
            Self::Other { .. } => None,
        }
    }
}

/// The user who triggered an interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionUser {
    /// The user id.
    pub id: SlackUserId,
    /// The user's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<SlackTeamId>,
    /// The handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The legacy name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The workspace an interaction came from (`null` for some org-wide installs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// The workspace id.
    pub id: SlackTeamId,
    /// The workspace subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The Enterprise Grid id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
}

/// Where the interacted-with element lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `message`, `message_attachment` or `view`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message's ts (for messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ts: Option<MessageTs>,
    /// The message's channel (for messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<ChannelId>,
    /// Whether the message is ephemeral (then only `response_url` can change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_ephemeral: Option<bool>,
    /// The thread parent, for a message in a thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
    /// The view id (for views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_id: Option<ViewId>,
}

/// A channel reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    /// The channel id.
    pub id: ChannelId,
    /// The channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The message that holds the clicked element (absent for ephemeral sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMessage {
    /// The message ts.
    pub ts: MessageTs,
    /// The thread parent, if the message is a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
    /// The fallback text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The posting bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    /// The posting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SlackUserId>,
    /// The message blocks as sent by Slack (kept as JSON: Slack adds its own block types).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<serde_json::Value>,
}

/// An option of a select menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectedOption {
    /// The option's value.
    pub value: String,
    /// The option's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::blocks::Text>,
}

/// One action of a `block_actions` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The element's action id.
    pub action_id: String,
    /// The block holding the element.
    #[serde(default)]
    pub block_id: String,
    /// The element type (`button`, `users_select`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A button's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A `users_select` choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_user: Option<SlackUserId>,
    /// A static/external select choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_option: Option<SelectedOption>,
    /// When the action happened, as a Slack ts string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_ts: Option<MessageTs>,
}

/// One input's value in `state.values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateValue {
    /// The element type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A `plain_text_input` value (`null` when left empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A `users_select` choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_user: Option<SlackUserId>,
    /// A select choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_option: Option<SelectedOption>,
    /// A multi-select's choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_options: Option<Vec<SelectedOption>>,
    /// A `datepicker` choice (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_date: Option<String>,
}

/// Input state: `block_id` → `action_id` → value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    /// The values, ordered by block id then action id.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, StateValue>>,
}

impl State {
    /// The value of one input.
    pub fn get(&self, block_id: &str, action_id: &str) -> Option<&StateValue> {
        self.values.get(block_id)?.get(action_id)
    }

    /// The text of a `plain_text_input`, if non-empty.
    pub fn text(&self, block_id: &str, action_id: &str) -> Option<&str> {
        self.get(block_id, action_id)?
            .value
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// The user chosen in a `users_select`.
    pub fn selected_user(&self, block_id: &str, action_id: &str) -> Option<&SlackUserId> {
        self.get(block_id, action_id)?.selected_user.as_ref()
    }

    /// The value of the option chosen in a `static_select`.
    pub fn selected_value(&self, block_id: &str, action_id: &str) -> Option<&str> {
        self.get(block_id, action_id)?
            .selected_option
            .as_ref()
            .map(|o| o.value.as_str())
    }

    /// The values of the options chosen in a `multi_static_select`, in Slack's order.
    pub fn selected_values(&self, block_id: &str, action_id: &str) -> Vec<&str> {
        self.get(block_id, action_id)
            .and_then(|v| v.selected_options.as_ref())
            .map(|list| list.iter().map(|o| o.value.as_str()).collect())
            .unwrap_or_default()
    }
}

/// A view as it comes back in an interaction (with its id, hash and state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewPayload {
    /// The view id.
    pub id: ViewId,
    /// The workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<SlackTeamId>,
    /// `modal` or `home`.
    #[serde(rename = "type")]
    pub kind: crate::blocks::ViewType,
    /// The app's callback id (empty when unset).
    #[serde(default)]
    pub callback_id: String,
    /// The app's private metadata (empty when unset).
    #[serde(default)]
    pub private_metadata: String,
    /// The input state.
    #[serde(default)]
    pub state: State,
    /// The hash to pass to `views.update` to avoid races.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The root of the view stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_view_id: Option<ViewId>,
    /// The previous view in the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_view_id: Option<ViewId>,
    /// The app-chosen external id (empty when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<crate::blocks::Text>,
    /// The blocks as Slack echoes them (kept as JSON: they may use elements pdbridge never renders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<serde_json::Value>,
}

/// A `block_actions` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockActions {
    /// The clicking user.
    pub user: InteractionUser,
    /// The workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Team>,
    /// The app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_app_id: Option<String>,
    /// Where the element lives.
    pub container: Container,
    /// A trigger for `views.open`, valid for 3 seconds, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<TriggerId>,
    /// The channel (for messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelRef>,
    /// The source message (absent for ephemeral messages and views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<SourceMessage>,
    /// The source view (for modals and App Home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewPayload>,
    /// Input state of the message (for messages with inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// Where to post follow-ups (usable 5 times within 30 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<Url>,
    /// The actions (in practice exactly one).
    pub actions: Vec<Action>,
}

impl BlockActions {
    /// The channel and ts of the message holding the element, when it is a message.
    pub fn message_ref(&self) -> Option<(&ChannelId, &MessageTs)> {
        let channel = self
            .container
            .channel_id
            .as_ref()
            .or(self.channel.as_ref().map(|c| &c.id))?;
        let ts = self
            .container
            .message_ts
            .as_ref()
            .or(self.message.as_ref().map(|m| &m.ts))?;
        Some((channel, ts))
    }
}

/// A `response_urls[]` entry of a `view_submission` (only with `response_url_enabled` inputs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUrlTarget {
    /// The input block that asked for it.
    #[serde(default)]
    pub block_id: String,
    /// The action id.
    #[serde(default)]
    pub action_id: String,
    /// The conversation the user picked.
    pub channel_id: ChannelId,
    /// The URL.
    pub response_url: Url,
}

/// A `view_submission` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewSubmission {
    /// The submitting user.
    pub user: InteractionUser,
    /// The workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Team>,
    /// The app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_app_id: Option<String>,
    /// A trigger (for `views.push` style follow-ups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<TriggerId>,
    /// The submitted view with `callback_id`, `private_metadata` and `state.values`.
    pub view: ViewPayload,
    /// Response URLs (empty unless an input asked for one).
    #[serde(default)]
    pub response_urls: Vec<ResponseUrlTarget>,
}

/// A slash command invocation (form fields in HTTP mode, JSON in Socket Mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashCommand {
    /// The workspace.
    pub team_id: SlackTeamId,
    /// The workspace subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_domain: Option<String>,
    /// The Enterprise Grid id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    /// The Enterprise Grid name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_name: Option<String>,
    /// The channel it was typed in.
    pub channel_id: ChannelId,
    /// The channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    /// The invoking user.
    pub user_id: SlackUserId,
    /// The invoking user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The command, such as `/pd`.
    pub command: String,
    /// Everything after the command.
    #[serde(default)]
    pub text: String,
    /// The app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_app_id: Option<String>,
    /// Where to post the answer.
    pub response_url: Url,
    /// A trigger for `views.open`.
    pub trigger_id: TriggerId,
}

impl SlashCommand {
    /// Parses a raw form body (already signature-checked); `%`-encoded or not.
    pub fn from_form(body: &[u8]) -> Result<Self, Error> {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::Payload(format!("slash command form: {e}")))
    }
}

/// A Socket Mode WebSocket frame.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketModeFrame {
    /// The connection is ready.
    Hello {
        /// How many connections the app has open.
        num_connections: u32,
    },
    /// Slack asks the app to reconnect with a fresh URL.
    Disconnect {
        /// Why, such as `too_many_websockets` or `refresh_requested`.
        reason: String,
    },
    /// A request to acknowledge with `{"envelope_id": …}`.
    Envelope(SocketModeEnvelope),
}

/// A Socket Mode request envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketModeEnvelope {
    /// The id to acknowledge.
    pub envelope_id: String,
    /// `events_api`, `interactive` or `slash_commands`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The same JSON an HTTP-mode request would carry.
    pub payload: serde_json::Value,
    /// Whether the ack may carry a response payload.
    #[serde(default)]
    pub accepts_response_payload: bool,
    /// The retry count (Events API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempt: Option<u32>,
    /// The retry reason (Events API only; empty on first delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_reason: Option<String>,
}

impl SocketModeEnvelope {
    /// The payload of an `interactive` envelope.
    pub fn interaction(&self) -> Result<InteractionPayload, Error> {
        InteractionPayload::from_value(self.payload.clone())
    }

    /// The payload of a `slash_commands` envelope.
    pub fn slash_command(&self) -> Result<SlashCommand, Error> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| Error::Payload(format!("socket mode slash command: {e}")))
    }
}

impl SocketModeFrame {
    /// Parses one text frame.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::Payload(format!("socket mode frame: {e}")))?;
        match value.get("type").and_then(serde_json::Value::as_str) {
            Some("hello") => Ok(Self::Hello {
                num_connections: value
                    .get("num_connections")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
            }),
            Some("disconnect") => Ok(Self::Disconnect {
                reason: value
                    .get("reason")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            _ => serde_json::from_value(value)
                .map(Self::Envelope)
                .map_err(|e| Error::Payload(format!("socket mode envelope: {e}"))),
        }
    }
}
