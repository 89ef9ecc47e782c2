//! Web API request bodies, the response envelope and the responses pdbridge uses.
//!
//! Every Web API response carries `ok`. When it is `false` (often with HTTP 200) the body names an
//! `error` code; [`classify_error`] says whether retrying can help. Successful responses are
//! decoded into the method's response type, ignoring fields pdbridge does not read.

use std::collections::BTreeSet;

use ids::{ChannelId, Email, MessageTs, SlackTeamId, SlackUserId, TriggerId, ViewId};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::blocks::{Block, View, ViewType};

/// `response_metadata` of a Web API response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseMetadata {
    /// Human-readable details, such as ``invalid `trigger_id` ``.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// Warning codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The pagination cursor (empty on the last page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The fields every Web API response shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiEnvelope {
    /// Whether the call succeeded.
    pub ok: bool,
    /// The error code when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A warning code, possibly with `ok: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// For `missing_scope`: the scope(s) needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<String>,
    /// For `missing_scope`: the scopes the token has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provided: Option<String>,
    /// Extra details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_metadata: Option<ResponseMetadata>,
}

impl ApiEnvelope {
    /// The `response_metadata.messages` joined with `; `, if any.
    pub fn messages(&self) -> Option<String> {
        let messages = &self.response_metadata.as_ref()?.messages;
        (!messages.is_empty()).then(|| messages.join("; "))
    }
}

/// Whether an `ok: false` error code is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying the same request cannot succeed (bad channel, auth, scope, arguments, …).
    Permanent,
    /// A transient condition on Slack's side or a rate limit: retry later.
    Retryable,
}

/// Error codes that are transient. Every other code is treated as permanent, because retrying an
/// unknown failure of a non-idempotent call (such as `chat.postMessage`) risks duplicates.
const RETRYABLE_CODES: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "message_limit_exceeded",
    "team_added_to_org",
    "external_channel_migrating",
];

/// Classifies a Web API `error` code.
pub fn classify_error(code: &str) -> ErrorClass {
    if RETRYABLE_CODES.contains(&code) {
        ErrorClass::Retryable
    } else {
        ErrorClass::Permanent
    }
}

/// `chat.postMessage` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostMessage {
    /// The channel.
    pub channel: ChannelId,
    /// Fallback text (notifications, screen readers); required alongside blocks.
    pub text: String,
    /// The blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Post as a reply in this thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
    /// Also show a thread reply in the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_broadcast: Option<bool>,
    /// Unfurl links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfurl_links: Option<bool>,
    /// Unfurl media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfurl_media: Option<bool>,
    /// App-defined metadata attached to the message, readable with `conversations.history`
    /// (`include_all_metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MessageMetadata>,
}

/// Message metadata: an app-defined event type and a JSON object payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageMetadata {
    /// The event type, such as `pdbridge_incident_card`.
    pub event_type: String,
    /// The payload (a JSON object).
    #[serde(default)]
    pub event_payload: serde_json::Value,
}

/// `conversations.history` arguments. Messages come newest first; replies in threads are not
/// included (only their parents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationHistory {
    /// The channel.
    pub channel: ChannelId,
    /// Only messages after this ts (exclusive unless `inclusive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<MessageTs>,
    /// Only messages before this ts (exclusive unless `inclusive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<MessageTs>,
    /// Include messages at exactly `oldest` or `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusive: Option<bool>,
    /// The page size (Slack's default is 100, at most 999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Return each message's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_all_metadata: Option<bool>,
}

impl ConversationHistory {
    /// The newest page of `channel`'s history, with Slack's defaults.
    pub fn new(channel: ChannelId) -> Self {
        Self {
            channel,
            oldest: None,
            latest: None,
            inclusive: None,
            limit: None,
            cursor: None,
            include_all_metadata: None,
        }
    }
}

/// One message of a `conversations.history` page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// The message ts.
    pub ts: MessageTs,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// The posting bot, for bot messages.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// The thread, for thread parents.
    #[serde(default)]
    pub thread_ts: Option<MessageTs>,
    /// The metadata, when asked for with `include_all_metadata`.
    #[serde(default)]
    pub metadata: Option<MessageMetadata>,
}

/// A `conversations.history` page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The messages, newest first.
    #[serde(default)]
    pub messages: Vec<HistoryMessage>,
    /// Whether older messages in the range follow.
    #[serde(default)]
    pub has_more: bool,
    /// `next_cursor` for the next page.
    #[serde(default)]
    pub response_metadata: Option<ResponseMetadata>,
}

impl HistoryPage {
    /// The cursor of the next page, if there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        self.response_metadata
            .as_ref()
            .and_then(|m| m.next_cursor.as_deref())
            .filter(|c| !c.is_empty())
    }
}

impl PostMessage {
    /// A message with text and blocks.
    pub fn new(channel: ChannelId, text: impl Into<String>, blocks: Vec<Block>) -> Self {
        Self {
            channel,
            text: text.into(),
            blocks,
            thread_ts: None,
            reply_broadcast: None,
            unfurl_links: None,
            unfurl_media: None,
            metadata: None,
        }
    }
}

/// `chat.update` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateMessage {
    /// The message's channel.
    pub channel: ChannelId,
    /// The message's ts.
    pub ts: MessageTs,
    /// New fallback text.
    pub text: String,
    /// New blocks (an empty list is sent as `[]`, which removes them).
    pub blocks: Vec<Block>,
}

/// `chat.postEphemeral` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostEphemeral {
    /// The channel.
    pub channel: ChannelId,
    /// The only user who sees it (must be in the channel).
    pub user: SlackUserId,
    /// Fallback text.
    pub text: String,
    /// The blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Show it in this thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
}

/// `views.open` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenView {
    /// The trigger from the interaction (3 seconds, once).
    pub trigger_id: TriggerId,
    /// The view.
    pub view: View,
}

/// `views.update` arguments (by `view_id` or `external_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateView {
    /// The view to replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_id: Option<ViewId>,
    /// Or its external id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The hash from the last known state; Slack answers `hash_conflict` if it moved on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The new view.
    pub view: View,
}

/// Whether a `response_url` reply is visible to everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// Posted to the channel.
    InChannel,
    /// Only the user sees it.
    Ephemeral,
}

/// A message posted to a `response_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseUrlMessage {
    /// Fallback text.
    pub text: String,
    /// The blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Visibility of a new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<ResponseType>,
    /// Replace the message that held the element.
    pub replace_original: bool,
    /// Delete the message that held the element (always sent explicitly).
    pub delete_original: bool,
    /// Post in this thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
}

impl ResponseUrlMessage {
    /// A new ephemeral message that leaves the original alone.
    pub fn ephemeral(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            blocks: Vec::new(),
            response_type: Some(ResponseType::Ephemeral),
            replace_original: false,
            delete_original: false,
            thread_ts: None,
        }
    }

    /// Replaces the original message (the only way to edit an ephemeral message).
    pub fn replace(text: impl Into<String>, blocks: Vec<Block>) -> Self {
        Self {
            text: text.into(),
            blocks,
            response_type: None,
            replace_original: true,
            delete_original: false,
            thread_ts: None,
        }
    }
}

/// A message as echoed by `chat.postMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedMessage {
    /// The ts.
    pub ts: MessageTs,
    /// The text as Slack stored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The posting bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    /// The thread parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<MessageTs>,
}

/// `chat.postMessage` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessageResponse {
    /// The channel id (normalized by Slack).
    pub channel: ChannelId,
    /// The new message's ts: the card's identity from now on.
    pub ts: MessageTs,
    /// The stored message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<PostedMessage>,
}

/// `chat.update` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMessageResponse {
    /// The channel.
    pub channel: ChannelId,
    /// The message ts (unchanged).
    pub ts: MessageTs,
    /// The new text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `chat.postEphemeral` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostEphemeralResponse {
    /// The ephemeral message's ts.
    pub message_ts: MessageTs,
}

/// `chat.getPermalink` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermalinkResponse {
    /// The channel.
    pub channel: ChannelId,
    /// The permanent link.
    pub permalink: Url,
}

/// A view as returned by `views.open` / `views.update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewInfo {
    /// The view id.
    pub id: ViewId,
    /// The workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<SlackTeamId>,
    /// The kind.
    #[serde(rename = "type")]
    pub kind: ViewType,
    /// The callback id.
    #[serde(default)]
    pub callback_id: String,
    /// The private metadata.
    #[serde(default)]
    pub private_metadata: String,
    /// The hash for the next `views.update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The root of the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_view_id: Option<ViewId>,
    /// The external id (empty when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// `views.open` / `views.update` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewResponse {
    /// The view.
    pub view: ViewInfo,
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserProfile {
    /// The email (present only with the `users:read.email` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The real name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
}

/// A Slack user (`users.info`, `users.lookupByEmail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id.
    pub id: SlackUserId,
    /// The home workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<SlackTeamId>,
    /// The handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The real name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    /// Deactivated.
    #[serde(default)]
    pub deleted: bool,
    /// A bot user.
    #[serde(default)]
    pub is_bot: bool,
    /// A multi-channel guest.
    #[serde(default)]
    pub is_restricted: bool,
    /// A single-channel guest.
    #[serde(default)]
    pub is_ultra_restricted: bool,
    /// An app user.
    #[serde(default)]
    pub is_app_user: bool,
    /// The user's time zone name, such as `America/Los_Angeles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// The time zone's current offset from UTC, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz_offset: Option<i32>,
    /// The profile.
    #[serde(default)]
    pub profile: UserProfile,
}

impl User {
    /// The profile email, if visible.
    pub fn email(&self) -> Option<&Email> {
        self.profile.email.as_ref()
    }

    /// A human who may act: not deleted, not a bot or app user, not a guest.
    pub fn is_full_member(&self) -> bool {
        !(self.deleted
            || self.is_bot
            || self.is_app_user
            || self.is_restricted
            || self.is_ultra_restricted)
    }
}

/// `users.info` / `users.lookupByEmail` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserResponse {
    /// The user.
    pub user: User,
}

/// A conversation (`conversations.info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The id.
    pub id: ChannelId,
    /// The name (absent for DMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A public or private channel.
    #[serde(default)]
    pub is_channel: bool,
    /// A private channel.
    #[serde(default)]
    pub is_private: bool,
    /// A direct message.
    #[serde(default)]
    pub is_im: bool,
    /// Archived: posting fails with `is_archived`.
    #[serde(default)]
    pub is_archived: bool,
    /// Whether the calling bot is a member (absent for DMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_member: Option<bool>,
}

/// `conversations.info` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationResponse {
    /// The conversation.
    pub channel: Conversation,
}

/// `auth.test` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthTestResponse {
    /// The workspace URL.
    pub url: Url,
    /// The workspace name.
    pub team: String,
    /// The token's user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The workspace id.
    pub team_id: SlackTeamId,
    /// The token's user id (the bot user for bot tokens).
    pub user_id: SlackUserId,
    /// The bot id (bot tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    /// The scopes granted to the token, from the `x-oauth-scopes` response header (not the
    /// body); `None` when the answer had no such header.
    #[serde(skip)]
    pub scopes: Option<BTreeSet<String>>,
}
