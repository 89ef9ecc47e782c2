//! A stateful, inspectable fake of the Slack Web API, `response_url`s and Slack's outbound
//! interactivity requests.
//!
//! Call order: [`FakeSlack::start`], seed it ([`FakeSlack::add_user`], [`FakeSlack::add_channel`]),
//! point the code under test at [`FakeSlack::api_url`] with [`FakeSlack::token`], drive it
//! (optionally with faults from [`FakeSlack::inject`], or signed requests to the app with
//! [`FakeSlack::click`], [`FakeSlack::submit_view`] and [`FakeSlack::slash_command`]), then
//! inspect ([`FakeSlack::messages`], [`FakeSlack::thread`], [`FakeSlack::ephemerals`],
//! [`FakeSlack::views`], [`FakeSlack::responses`], [`FakeSlack::requests`]).
//!
//! Invariants: every `/api/*` call must carry `Authorization: Bearer <token>`; message `ts`
//! values are strings that strictly increase; `chat.postMessage` allows one post per second per
//! channel after a burst of 3 and `chat.update` 50 per minute (Tier 3), answering 429 with
//! `Retry-After` beyond that; an injected fault applies to exactly one request of its method;
//! `response_url`s are served at `{url}/response/<n>` and accept 5 posts each; `auth.test`
//! reports the granted scopes in `x-oauth-scopes` ([`FakeSlack::set_scopes`]); a user moved to
//! another workspace with [`FakeSlack::set_user_team`] is a Slack Connect user everywhere;
//! messages (`chat.postMessage`, `chat.update`, `chat.postEphemeral`, `response_url`) and views
//! (`views.open`, `views.update`) that break a documented Block Kit limit ([`crate::block_kit`])
//! are refused whole, with `invalid_blocks` and `invalid_arguments` respectively; user groups
//! (`usergroups.users.*`) answer Slack's refusals (`usergroups` module).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ids::{ChannelId, Email, MessageTs, SlackTeamId, SlackUserId, TriggerId, ViewId};
use serde_json::{Map, Value, json};
use signing::SlackSigningSecret;

use crate::block_kit;
use crate::http::{RecordedRequest, Reply, Server};

pub mod socket;
mod usergroups;
pub use socket::FakeSocketMode;
pub use usergroups::FakeUserGroup;

/// The bot token the fake accepts unless [`FakeSlack::start_with_token`] chose another.
pub const DEFAULT_TOKEN: &str = "xoxb-fake-bot-token";

/// The scopes `auth.test` reports in `x-oauth-scopes` until [`FakeSlack::set_scopes`] changes
/// them: exactly pdbridge's bot scopes (`pdbridge::ops::manifest::BOT_SCOPES`, whose tests check
/// that the two lists are equal).
pub const DEFAULT_SCOPES: &[&str] = &[
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "groups:history",
    "groups:read",
    "users:read",
    "users:read.email",
];

/// A user known to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// The user id.
    pub id: SlackUserId,
    /// The handle.
    pub name: String,
    /// The profile email (`None` hides it, as without `users:read.email`).
    pub email: Option<Email>,
    /// A bot user.
    pub is_bot: bool,
    /// Deactivated.
    pub deleted: bool,
    /// A multi-channel guest.
    pub is_restricted: bool,
    /// A single-channel guest.
    pub is_ultra_restricted: bool,
    /// The user's own workspace when it is not the fake's (a Slack Connect user from another
    /// organisation); `None` for members of the fake workspace.
    pub team_id: Option<SlackTeamId>,
    /// The time zone name and its offset from UTC in seconds (`UTC`, 0 by default).
    pub tz: (String, i32),
}

impl FakeUser {
    /// A full member with an email.
    pub fn new(id: &str, name: &str, email: &str) -> Self {
        Self {
            id: SlackUserId::new(id),
            name: name.to_owned(),
            email: Some(Email::new(email)),
            is_bot: false,
            deleted: false,
            is_restricted: false,
            is_ultra_restricted: false,
            team_id: None,
            tz: ("UTC".to_owned(), 0),
        }
    }
}

/// A channel known to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeChannel {
    /// The channel id.
    pub id: ChannelId,
    /// The name.
    pub name: String,
    /// Archived channels refuse posts with `is_archived`.
    pub archived: bool,
    /// Private channel.
    pub private: bool,
    /// Whether the bot is a member (otherwise posts fail with `not_in_channel`).
    pub bot_is_member: bool,
    /// Human members (ephemerals to others fail with `user_not_in_channel`).
    pub members: BTreeSet<SlackUserId>,
}

impl FakeChannel {
    /// A public channel the bot has joined, with the given members.
    pub fn new(id: &str, name: &str, members: &[&str]) -> Self {
        Self {
            id: ChannelId::new(id),
            name: name.to_owned(),
            archived: false,
            private: false,
            bot_is_member: true,
            members: members.iter().map(|m| SlackUserId::new(*m)).collect(),
        }
    }
}

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    /// The channel.
    pub channel: ChannelId,
    /// The ts.
    pub ts: MessageTs,
    /// The thread parent, for replies.
    pub thread_ts: Option<MessageTs>,
    /// The current fallback text.
    pub text: String,
    /// The current blocks (a JSON array).
    pub blocks: Value,
    /// Previous `(text, blocks)` versions, oldest first; one per `chat.update`.
    pub edits: Vec<(String, Value)>,
    /// The message metadata (`{"event_type", "event_payload"}`) given to `chat.postMessage`.
    pub metadata: Option<Value>,
}

/// An ephemeral message.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeEphemeral {
    /// The channel.
    pub channel: ChannelId,
    /// The only user who sees it.
    pub user: SlackUserId,
    /// The ts returned as `message_ts`.
    pub ts: MessageTs,
    /// The thread, if any.
    pub thread_ts: Option<MessageTs>,
    /// The text.
    pub text: String,
    /// The blocks.
    pub blocks: Value,
}

/// A view opened with `views.open` (and possibly updated).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeView {
    /// The view id.
    pub id: ViewId,
    /// The trigger that opened it.
    pub trigger_id: TriggerId,
    /// The current view JSON as sent by the app.
    pub view: Value,
    /// The current hash.
    pub hash: String,
    /// How many times `views.update` replaced it.
    pub updates: u32,
}

/// A POST to a `response_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeResponse {
    /// The path, such as `/response/3`.
    pub path: String,
    /// The JSON body.
    pub body: Value,
}

/// A failure to inject into the next request of one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `error: ratelimited`, with or without a `Retry-After` header (seconds).
    RateLimited {
        /// The `Retry-After` value, if any.
        retry_after: Option<u64>,
    },
    /// An HTML error page with this 5xx status.
    ServerError(u16),
    /// Process the request normally but answer only after this delay.
    Slow(Duration),
    /// Process the request normally, then close the connection without answering, as a
    /// failing proxy or network would.
    HangUp,
    /// HTTP 200 with `ok: false` and this error (and `needed` for `missing_scope`).
    Api {
        /// The error code.
        error: String,
        /// The `needed` scope.
        needed: Option<String>,
    },
}

impl Fault {
    /// `ok: false` with the given code.
    pub fn error(code: &str) -> Self {
        Self::Api {
            error: code.to_owned(),
            needed: None,
        }
    }
}

/// The answer to an interaction the fake sent to an app.
#[derive(Debug, Clone)]
pub struct InteractionReply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (empty, or a `response_action` JSON for view submissions).
    pub body: Bytes,
    /// How long the app took to answer (Slack gives up after 3 s).
    pub elapsed: Duration,
}

impl InteractionReply {
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An input value for [`FakeSlack::submit_view`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputValue {
    /// A `plain_text_input` value.
    Text(String),
    /// A `users_select` choice.
    User(SlackUserId),
    /// A `static_select` choice (the option's value).
    Option(String),
    /// A `multi_static_select`'s choices (the options' values).
    Options(Vec<String>),
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    interval: Duration,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed / self.interval.as_secs_f64()).min(self.capacity);
        self.updated = self.updated.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.interval.mul_f64(1.0 - self.tokens))
        }
    }
}

#[derive(Debug)]
struct State {
    base_url: String,
    token: String,
    team_id: SlackTeamId,
    scopes: Option<Vec<String>>,
    bot_user: SlackUserId,
    users: BTreeMap<SlackUserId, FakeUser>,
    channels: BTreeMap<ChannelId, FakeChannel>,
    messages: BTreeMap<ChannelId, Vec<FakeMessage>>,
    ephemerals: Vec<FakeEphemeral>,
    views: Vec<FakeView>,
    responses: Vec<FakeResponse>,
    response_uses: BTreeMap<String, u32>,
    triggers_issued: BTreeMap<String, Instant>,
    triggers_used: BTreeSet<String>,
    faults: BTreeMap<String, VecDeque<Fault>>,
    limits_enabled: bool,
    buckets: BTreeMap<(String, Option<ChannelId>), Bucket>,
    last_ts_micros: u64,
    counter: u64,
    groups: usergroups::Groups,
}

impl State {
    fn next_ts(&mut self) -> MessageTs {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.last_ts_micros = now.max(self.last_ts_micros + 1);
        MessageTs::new(format!(
            "{}.{:06}",
            self.last_ts_micros / 1_000_000,
            self.last_ts_micros % 1_000_000
        ))
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn new_response_url(&mut self) -> String {
        let n = self.next_id();
        format!("{}/response/{n}", self.base_url)
    }

    fn new_trigger(&mut self) -> TriggerId {
        let n = self.next_id();
        let id = format!("{n}.{}.fake{n:08x}", 1000 + n);
        self.triggers_issued.insert(id.clone(), Instant::now());
        TriggerId::new(id)
    }

    fn find_message(&self, channel: &ChannelId, ts: &MessageTs) -> Option<&FakeMessage> {
        self.messages.get(channel)?.iter().find(|m| &m.ts == ts)
    }

    /// Applies the documented rate limits; `Err` carries the `Retry-After` seconds.
    fn rate_limit(&mut self, method: &str, channel: Option<&ChannelId>) -> Result<(), u64> {
        if !self.limits_enabled {
            return Ok(());
        }
        let (capacity, interval, channel) = match method {
            "chat.postMessage" => (3.0, Duration::from_secs(1), channel.cloned()),
            "chat.update" => (50.0, Duration::from_millis(1200), None),
            _ => return Ok(()),
        };
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry((method.to_owned(), channel))
            .or_insert(Bucket {
                capacity,
                interval,
                tokens: capacity,
                updated: now,
            });
        bucket
            .take(now)
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// The fake Slack server. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeSlack {
    server: Server,
    state: Arc<Mutex<State>>,
    socket: FakeSocketMode,
    _socket_accept: socket::AcceptGuard,
}

fn ok(mut body: Value) -> Reply {
    if let Some(map) = body.as_object_mut() {
        map.insert("ok".into(), Value::Bool(true));
    }
    Reply::json(StatusCode::OK, &body)
}

fn fail(error: &str) -> Reply {
    Reply::json(StatusCode::OK, &json!({"ok": false, "error": error}))
}

/// Arguments from the query string, a JSON body or a form body, merged.
fn args(req: &RecordedRequest) -> Map<String, Value> {
    let mut map = Map::new();
    let mut add_pairs = |raw: &[u8]| {
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw) {
            for (k, v) in pairs {
                let value = serde_json::from_str::<Value>(&v)
                    .ok()
                    .filter(|j| j.is_array() || j.is_object())
                    .unwrap_or(Value::String(v));
                map.insert(k, value);
            }
        }
    };
    if let Some(query) = &req.query {
        add_pairs(query.as_bytes());
    }
    let is_json = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) {
            map.extend(body);
        }
    } else if !req.body.is_empty() {
        add_pairs(&req.body);
    }
    map
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn user_json(team: &SlackTeamId, u: &FakeUser) -> Value {
    let team = u.team_id.as_ref().unwrap_or(team);
    let mut profile = json!({"display_name": u.name, "real_name": u.name});
    if let Some(email) = &u.email {
        profile["email"] = json!(email.as_str());
    }
    json!({
        "id": u.id, "team_id": team, "name": u.name, "real_name": u.name,
        "deleted": u.deleted, "is_bot": u.is_bot, "is_app_user": false,
        "is_restricted": u.is_restricted, "is_ultra_restricted": u.is_ultra_restricted,
        "tz": u.tz.0, "tz_offset": u.tz.1,
        "profile": profile,
    })
}

impl FakeSlack {
    /// Starts the fake on `127.0.0.1:0` with [`DEFAULT_TOKEN`]. Panics if it cannot bind.
    pub async fn start() -> Self {
        Self::start_with_token(DEFAULT_TOKEN)
            .await
            .expect("bind the fake Slack on 127.0.0.1:0")
    }

    /// Starts the fake accepting the given bot token.
    pub async fn start_with_token(token: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            token: token.to_owned(),
            team_id: SlackTeamId::new("T0FAKE001"),
            scopes: Some(DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
            bot_user: SlackUserId::new("UBOT00001"),
            users: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: BTreeMap::new(),
            ephemerals: Vec::new(),
            views: Vec::new(),
            responses: Vec::new(),
            response_uses: BTreeMap::new(),
            triggers_issued: BTreeMap::new(),
            triggers_used: BTreeSet::new(),
            faults: BTreeMap::new(),
            limits_enabled: true,
            buckets: BTreeMap::new(),
            last_ts_micros: 0,
            counter: 0,
            groups: usergroups::Groups::default(),
        }));
        let handler_state = Arc::clone(&state);
        let (socket, _socket_accept) = FakeSocketMode::start().await?;
        let handler_socket = socket.clone();
        let handler: crate::http::Handler = Arc::new(move |req| {
            let state = Arc::clone(&handler_state);
            let socket = handler_socket.clone();
            Box::pin(async move {
                if req.path == "/api/apps.connections.open" {
                    return socket.connections_open(&req);
                }
                handle(&state, req)
            })
        });
        let server = Server::spawn(handler).await?;
        lock(&state).base_url = server.url();
        Ok(Self {
            server,
            state,
            socket,
            _socket_accept,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The Socket Mode side: `apps.connections.open` and its WebSocket server.
    pub fn socket(&self) -> &FakeSocketMode {
        &self.socket
    }

    /// The base URL, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The Web API base to configure clients with: `{url}/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.url())
    }

    /// The accepted bot token.
    pub fn token(&self) -> String {
        self.state().token.clone()
    }

    /// The workspace id.
    pub fn team_id(&self) -> SlackTeamId {
        self.state().team_id.clone()
    }

    /// The bot's own user id (as `auth.test` reports it).
    pub fn bot_user_id(&self) -> SlackUserId {
        self.state().bot_user.clone()
    }

    /// Sets the scopes `auth.test` reports in its `x-oauth-scopes` header (comma-separated, in
    /// this order); `None` sends no such header. Defaults to [`DEFAULT_SCOPES`].
    pub fn set_scopes(&self, scopes: Option<&[&str]>) {
        self.state().scopes = scopes.map(|list| list.iter().map(|s| (*s).to_owned()).collect());
    }

    /// Makes `user` a Slack Connect user from the workspace `team` (`None`: back to a member of
    /// the fake workspace). `users.info`, `users.lookupByEmail` and the interaction payloads'
    /// `user.team_id` then name that workspace.
    pub fn set_user_team(&self, user: &SlackUserId, team: Option<SlackTeamId>) {
        if let Some(u) = self.state().users.get_mut(user) {
            u.team_id = team;
        }
    }

    /// Adds or replaces a user.
    pub fn add_user(&self, user: FakeUser) {
        self.state().users.insert(user.id.clone(), user);
    }

    /// Adds or replaces a channel.
    pub fn add_channel(&self, channel: FakeChannel) {
        self.state().channels.insert(channel.id.clone(), channel);
    }

    /// Archives or unarchives a channel.
    pub fn set_archived(&self, channel: &ChannelId, archived: bool) {
        if let Some(c) = self.state().channels.get_mut(channel) {
            c.archived = archived;
        }
    }

    /// Turns rate-limit enforcement on (the default) or off (for benchmarks).
    pub fn set_rate_limits(&self, enabled: bool) {
        let mut state = self.state();
        state.limits_enabled = enabled;
        state.buckets.clear();
    }

    /// Makes the next request to `method` (such as `chat.postMessage`, or `response_url`) fail.
    /// Several injections for one method apply in order, one request each.
    pub fn inject(&self, method: &str, fault: Fault) {
        self.state()
            .faults
            .entry(method.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Top-level messages of a channel, oldest first.
    pub fn messages(&self, channel: &ChannelId) -> Vec<FakeMessage> {
        self.state()
            .messages
            .get(channel)
            .map(|all| {
                all.iter()
                    .filter(|m| m.thread_ts.is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replies in the thread under `ts`, oldest first.
    pub fn thread(&self, channel: &ChannelId, ts: &MessageTs) -> Vec<FakeMessage> {
        self.state()
            .messages
            .get(channel)
            .map(|all| {
                all.iter()
                    .filter(|m| m.thread_ts.as_ref() == Some(ts))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One message (top-level or reply).
    pub fn message(&self, channel: &ChannelId, ts: &MessageTs) -> Option<FakeMessage> {
        self.state().find_message(channel, ts).cloned()
    }

    /// Every ephemeral message, in order.
    pub fn ephemerals(&self) -> Vec<FakeEphemeral> {
        self.state().ephemerals.clone()
    }

    /// Every opened view, in order.
    pub fn views(&self) -> Vec<FakeView> {
        self.state().views.clone()
    }

    /// Every `response_url` post, in order.
    pub fn responses(&self) -> Vec<FakeResponse> {
        self.state().responses.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// The requests to one Web API method.
    pub fn requests_to(&self, method: &str) -> Vec<RecordedRequest> {
        let path = format!("/api/{method}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// A fresh `response_url` served by this fake.
    pub fn new_response_url(&self) -> String {
        self.state().new_response_url()
    }

    /// A fresh `trigger_id` (valid for 3 seconds, once).
    pub fn new_trigger_id(&self) -> TriggerId {
        self.state().new_trigger()
    }

    /// Builds the `block_actions` payload Slack sends when `user` clicks the element with
    /// `action_id` in the stored message `(channel, ts)`. `selected_user` answers a
    /// `users_select`. Fails if the message or element does not exist.
    pub fn block_actions_payload(
        &self,
        user: &SlackUserId,
        channel: &ChannelId,
        ts: &MessageTs,
        action_id: &str,
        selected_user: Option<&SlackUserId>,
    ) -> std::io::Result<Value> {
        let mut state = self.state();
        let message = state
            .find_message(channel, ts)
            .cloned()
            .ok_or_else(|| not_found(format!("no message {ts} in {channel}")))?;
        let (block_id, element) = find_element(&message.blocks, action_id)
            .ok_or_else(|| not_found(format!("no element {action_id:?} in message {ts}")))?;
        let kind = element["type"].as_str().unwrap_or("button").to_owned();
        let mut action = json!({
            "action_id": action_id, "block_id": block_id, "type": kind,
            "action_ts": state.next_ts(),
        });
        if let Some(text) = element.get("text") {
            action["text"] = text.clone();
        }
        if let Some(value) = element.get("value") {
            action["value"] = value.clone();
        }
        if let Some(u) = selected_user {
            action["selected_user"] = json!(u);
        }
        let (user_json, team) = interaction_user(&state, user);
        let channel_name = state.channels.get(channel).map(|c| c.name.clone());
        let response_url = state.new_response_url();
        let trigger_id = state.new_trigger();
        let mut msg = json!({
            "type": "message", "ts": message.ts, "text": message.text,
            "bot_id": "B0FAKE001", "user": state.bot_user, "blocks": message.blocks,
        });
        if let Some(thread_ts) = &message.thread_ts {
            msg["thread_ts"] = json!(thread_ts);
        }
        let mut container = json!({
            "type": "message", "message_ts": message.ts, "channel_id": channel,
            "is_ephemeral": false,
        });
        if let Some(thread_ts) = &message.thread_ts {
            container["thread_ts"] = json!(thread_ts);
        }
        Ok(json!({
            "type": "block_actions",
            "user": user_json,
            "api_app_id": "A0FAKE001",
            "token": "fake-verification-token",
            "container": container,
            "trigger_id": trigger_id,
            "team": team,
            "channel": {"id": channel, "name": channel_name},
            "message": msg,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }))
    }

    /// Builds the `view_submission` payload Slack sends when `user` submits the opened view
    /// `view_id` with the given `(block_id, action_id, value)` inputs.
    pub fn view_submission_payload(
        &self,
        user: &SlackUserId,
        view_id: &ViewId,
        inputs: &[(&str, &str, InputValue)],
    ) -> std::io::Result<Value> {
        let mut state = self.state();
        let view = state
            .views
            .iter()
            .find(|v| &v.id == view_id)
            .cloned()
            .ok_or_else(|| not_found(format!("no opened view {view_id}")))?;
        let mut values: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (block_id, action_id, value) in inputs {
            let entry = match value {
                InputValue::Text(text) => json!({"type": "plain_text_input", "value": text}),
                InputValue::User(u) => json!({"type": "users_select", "selected_user": u}),
                InputValue::Option(v) => {
                    json!({"type": "static_select", "selected_option": {"value": v}})
                }
                InputValue::Options(vs) => json!({
                    "type": "multi_static_select",
                    "selected_options": vs.iter().map(|v| json!({"value": v})).collect::<Vec<_>>(),
                }),
            };
            values
                .entry((*block_id).to_owned())
                .or_default()
                .insert((*action_id).to_owned(), entry);
        }
        let (user_json, team) = interaction_user(&state, user);
        let mut submitted = view.view.clone();
        if let Some(map) = submitted.as_object_mut() {
            map.insert("id".into(), json!(view.id));
            map.insert("team_id".into(), json!(state.team_id));
            map.insert("hash".into(), json!(view.hash));
            map.insert("root_view_id".into(), json!(view.id));
            map.insert("previous_view_id".into(), Value::Null);
            map.insert("state".into(), json!({ "values": values }));
            map.entry("private_metadata").or_insert(json!(""));
            map.entry("callback_id").or_insert(json!(""));
        }
        let trigger_id = state.new_trigger();
        Ok(json!({
            "type": "view_submission",
            "team": team,
            "user": user_json,
            "api_app_id": "A0FAKE001",
            "token": "fake-verification-token",
            "trigger_id": trigger_id,
            "view": submitted,
            "response_urls": [],
        }))
    }

    /// Builds the form body Slack sends for a slash command typed by `user` in `channel`
    /// (percent-encoded, with a fresh `response_url` and `trigger_id`).
    pub fn slash_command_form(
        &self,
        user: &SlackUserId,
        channel: &ChannelId,
        command: &str,
        text: &str,
    ) -> Vec<u8> {
        let mut state = self.state();
        let user_name = state
            .users
            .get(user)
            .map_or_else(|| user.to_string(), |u| u.name.clone());
        let channel_name = state
            .channels
            .get(channel)
            .map_or_else(|| channel.to_string(), |c| c.name.clone());
        let response_url = state.new_response_url();
        let trigger_id = state.new_trigger();
        let fields = [
            ("token", "fake-verification-token".to_owned()),
            ("team_id", state.team_id.to_string()),
            ("team_domain", "fake".to_owned()),
            ("channel_id", channel.to_string()),
            ("channel_name", channel_name),
            ("user_id", user.to_string()),
            ("user_name", user_name),
            ("command", command.to_owned()),
            ("text", text.to_owned()),
            ("api_app_id", "A0FAKE001".to_owned()),
            ("response_url", response_url),
            ("trigger_id", trigger_id.into_string()),
        ];
        serde_urlencoded::to_string(fields)
            .expect("string pairs always encode")
            .into_bytes()
    }

    /// Sends a signed slash command to `target` (the app's command URL).
    pub async fn slash_command(
        &self,
        target: &str,
        secret: &SlackSigningSecret,
        user: &SlackUserId,
        channel: &ChannelId,
        command: &str,
        text: &str,
    ) -> std::io::Result<InteractionReply> {
        let body = self.slash_command_form(user, channel, command, text);
        send_signed_form(target, secret, body).await
    }

    /// Clicks an element of a stored message: builds the `block_actions` payload and sends it,
    /// signed, to `target` (the app's interactivity URL).
    pub async fn click(
        &self,
        target: &str,
        secret: &SlackSigningSecret,
        user: &SlackUserId,
        channel: &ChannelId,
        ts: &MessageTs,
        action_id: &str,
    ) -> std::io::Result<InteractionReply> {
        let payload = self.block_actions_payload(user, channel, ts, action_id, None)?;
        send_interaction(target, secret, &payload).await
    }

    /// Chooses the option `value` of the overflow menu `action_id` of a stored message, as a
    /// user does: the `block_actions` payload carries the option as `selected_option`. An
    /// option that is not in the menu is an error, like a menu item nobody can see.
    #[allow(clippy::too_many_arguments)]
    pub async fn choose(
        &self,
        target: &str,
        secret: &SlackSigningSecret,
        user: &SlackUserId,
        channel: &ChannelId,
        ts: &MessageTs,
        action_id: &str,
        value: &str,
    ) -> std::io::Result<InteractionReply> {
        let mut payload = self.block_actions_payload(user, channel, ts, action_id, None)?;
        let message = &payload["message"]["blocks"];
        let option = find_element(message, action_id)
            .and_then(|(_, e)| {
                let options = e["options"].as_array()?.clone();
                options.into_iter().find(|o| o["value"] == value)
            })
            .ok_or_else(|| not_found(format!("no option {value:?} in {action_id:?}")))?;
        payload["actions"][0]["selected_option"] =
            json!({"text": option["text"], "value": option["value"]});
        send_interaction(target, secret, &payload).await
    }

    /// Submits an opened view with the given inputs, signed, to `target`.
    pub async fn submit_view(
        &self,
        target: &str,
        secret: &SlackSigningSecret,
        user: &SlackUserId,
        view_id: &ViewId,
        inputs: &[(&str, &str, InputValue)],
    ) -> std::io::Result<InteractionReply> {
        let payload = self.view_submission_payload(user, view_id, inputs)?;
        send_interaction(target, secret, &payload).await
    }
}

fn interaction_user(state: &State, user: &SlackUserId) -> (Value, Value) {
    let user_team = state
        .users
        .get(user)
        .and_then(|u| u.team_id.clone())
        .unwrap_or_else(|| state.team_id.clone());
    let name = state
        .users
        .get(user)
        .map_or_else(|| user.to_string(), |u| u.name.clone());
    (
        json!({"id": user, "username": name, "name": name, "team_id": user_team}),
        json!({"id": state.team_id, "domain": "fake"}),
    )
}

fn not_found(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, message)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Finds an element by `action_id` in `actions` blocks and section accessories.
fn find_element(blocks: &Value, action_id: &str) -> Option<(String, Value)> {
    for block in blocks.as_array()? {
        let block_id = block["block_id"].as_str().unwrap_or_default().to_owned();
        let candidates = block["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(block.get("accessory"));
        for element in candidates {
            if element["action_id"].as_str() == Some(action_id) {
                return Some((block_id, element.clone()));
            }
        }
    }
    None
}

/// Sends an interactivity request the way Slack does: `payload=<json>` form body, signed with
/// `X-Slack-Signature` and `X-Slack-Request-Timestamp` (now).
pub async fn send_interaction(
    target: &str,
    secret: &SlackSigningSecret,
    payload: &Value,
) -> std::io::Result<InteractionReply> {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())])
        .map_err(std::io::Error::other)?;
    send_signed_form(target, secret, body.into_bytes()).await
}

/// Sends a raw form body signed like Slack (for slash commands and malformed-body tests).
pub async fn send_signed_form(
    target: &str,
    secret: &SlackSigningSecret,
    body: Vec<u8>,
) -> std::io::Result<InteractionReply> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let signature = signing::sign_slack(secret, timestamp, &body);
    let request = Request::builder()
        .method(Method::POST)
        .uri(target)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .header("user-agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
        .body(Full::new(Bytes::from(body)))
        .map_err(std::io::Error::other)?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let response = client
        .request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(InteractionReply {
        status,
        body,
        elapsed: started.elapsed(),
    })
}

fn html_error(status: u16) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let response = Response::builder()
        .status(status)
        .header("content-type", "text/html")
        .body(Full::new(Bytes::from_static(
            b"<html><body>Slack is having trouble</body></html>",
        )))
        .expect("static response parts are valid");
    Reply {
        response,
        delay: None,
    }
}

fn ratelimited(retry_after: Option<u64>) -> Reply {
    let reply = Reply::json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"ok": false, "error": "ratelimited"}),
    );
    match retry_after {
        Some(secs) => reply.with_header("retry-after", secs.to_string()),
        None => reply,
    }
}

fn handle(state: &Mutex<State>, req: RecordedRequest) -> Reply {
    let mut state = lock(state);
    let (method, is_api) = if let Some(m) = req.path.strip_prefix("/api/") {
        (m.to_owned(), true)
    } else if req.path.starts_with("/response/") {
        ("response_url".to_owned(), false)
    } else {
        return Reply::json(
            StatusCode::NOT_FOUND,
            &json!({"ok": false, "error": "not_found"}),
        );
    };
    let mut delay = None;
    let mut hang_up = false;
    if let Some(fault) = state.faults.get_mut(&method).and_then(VecDeque::pop_front) {
        match fault {
            Fault::RateLimited { retry_after } => return ratelimited(retry_after),
            Fault::ServerError(status) => return html_error(status),
            Fault::Api { error, needed } => {
                let mut body = json!({"ok": false, "error": error});
                if let Some(needed) = needed {
                    body["needed"] = json!(needed);
                    body["provided"] = json!("chat:write");
                }
                return Reply::json(StatusCode::OK, &body);
            }
            Fault::Slow(d) => delay = Some(d),
            Fault::HangUp => hang_up = true,
        }
    }
    let reply = if is_api {
        api(&mut state, &method, &req)
    } else {
        response_url(&mut state, &req)
    };
    let reply = match delay {
        Some(d) => reply.delayed(d),
        None => reply,
    };
    if hang_up { reply.hang_up() } else { reply }
}

fn response_url(state: &mut State, req: &RecordedRequest) -> Reply {
    let uses = state.response_uses.entry(req.path.clone()).or_insert(0);
    *uses += 1;
    if *uses > 5 {
        return Reply::json(
            StatusCode::NOT_FOUND,
            &json!({"ok": false, "error": "used_url"}),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Reply::json(
            StatusCode::BAD_REQUEST,
            &json!({"ok": false, "error": "invalid_payload"}),
        );
    };
    if let Err(message) = block_kit::check_message(&body["blocks"]) {
        return fail_with("invalid_blocks", &message);
    }
    if body["text"].as_str().is_some_and(block_kit::text_too_long) {
        return fail("msg_too_long");
    }
    state.responses.push(FakeResponse {
        path: req.path.clone(),
        body,
    });
    ok(json!({}))
}

fn api(state: &mut State, method: &str, req: &RecordedRequest) -> Reply {
    let expected = format!("Bearer {}", state.token);
    match req.header("authorization") {
        None => return fail("not_authed"),
        Some(given) if given != expected => return fail("invalid_auth"),
        Some(_) => {}
    }
    let args = args(req);
    let channel_arg = str_arg(&args, "channel").map(ChannelId::new);
    if let Err(retry_after) = state.rate_limit(method, channel_arg.as_ref()) {
        return ratelimited(Some(retry_after));
    }
    match method {
        "auth.test" => {
            let reply = ok(json!({
                "url": "https://fake.slack.test/", "team": "Fake Workspace", "user": "pdbridge",
                "team_id": state.team_id, "user_id": state.bot_user, "bot_id": "B0FAKE001",
            }));
            match &state.scopes {
                Some(scopes) => reply.with_header("x-oauth-scopes", scopes.join(",")),
                None => reply,
            }
        }
        "chat.postMessage" => post_message(state, &args),
        "chat.update" => update_message(state, &args),
        "chat.postEphemeral" => post_ephemeral(state, &args),
        "chat.getPermalink" => {
            let (Some(channel), Some(ts)) = (channel_arg, str_arg(&args, "message_ts")) else {
                return fail("invalid_arguments");
            };
            if state.find_message(&channel, &MessageTs::new(ts)).is_none() {
                return fail("message_not_found");
            }
            ok(json!({
                "channel": channel,
                "permalink": format!("https://fake.slack.test/archives/{channel}/p{}", ts.replace('.', "")),
            }))
        }
        "views.open" => open_view(state, &args),
        "views.update" => update_view(state, &args),
        "users.info" => {
            let user = str_arg(&args, "user").map(SlackUserId::new);
            match user.and_then(|u| state.users.get(&u)) {
                Some(u) => ok(json!({"user": user_json(&state.team_id, u)})),
                None => fail("user_not_found"),
            }
        }
        "users.lookupByEmail" => {
            let email = str_arg(&args, "email").map(Email::new);
            let found = state
                .users
                .values()
                .find(|u| email.is_some() && u.email == email && !u.deleted);
            match found {
                Some(u) => ok(json!({"user": user_json(&state.team_id, u)})),
                None => fail("users_not_found"),
            }
        }
        "usergroups.users.update" => usergroups::update(state, &args),
        "usergroups.users.list" => usergroups::list(state, &args),
        "conversations.history" => conversation_history(state, &args),
        "conversations.info" => match channel_arg.and_then(|c| state.channels.get(&c)) {
            Some(c) => ok(json!({"channel": {
                "id": c.id, "name": c.name, "is_channel": true, "is_private": c.private,
                "is_im": false, "is_archived": c.archived, "is_member": c.bot_is_member,
            }})),
            None => fail("channel_not_found"),
        },
        _ => fail("unknown_method"),
    }
}

/// Checks that the bot may post in `channel`.
fn postable(state: &State, channel: Option<&ChannelId>) -> Result<ChannelId, &'static str> {
    let channel = channel.ok_or("channel_not_found")?;
    let c = state.channels.get(channel).ok_or("channel_not_found")?;
    if c.archived {
        return Err("is_archived");
    }
    if !c.bot_is_member {
        return Err("not_in_channel");
    }
    Ok(channel.clone())
}

/// `ok: false` with `error` and Slack's `response_metadata.messages`.
fn fail_with(error: &str, message: &str) -> Reply {
    Reply::json(
        StatusCode::OK,
        &json!({"ok": false, "error": error, "response_metadata": {"messages": [message]}}),
    )
}

/// A message's `text` and `blocks`, refused as Slack does when the blocks break a documented
/// Block Kit limit ([`crate::block_kit`]) or, when `text_limit` (`chat.update`,
/// `chat.postEphemeral`), the text is too long.
fn text_and_blocks(
    args: &Map<String, Value>,
    text_limit: bool,
) -> Result<(String, Value), Box<Reply>> {
    let text = str_arg(args, "text").unwrap_or_default().to_owned();
    let blocks = args.get("blocks").cloned().unwrap_or_else(|| json!([]));
    if !blocks.is_array() {
        return Err(Box::new(fail("invalid_blocks_format")));
    }
    if text.is_empty() && blocks.as_array().is_none_or(Vec::is_empty) {
        return Err(Box::new(fail("no_text")));
    }
    if let Err(message) = block_kit::check_message(&blocks) {
        return Err(Box::new(fail_with("invalid_blocks", &message)));
    }
    if text_limit && block_kit::text_too_long(&text) {
        return Err(Box::new(fail("msg_too_long")));
    }
    Ok((text, blocks))
}

fn post_message(state: &mut State, args: &Map<String, Value>) -> Reply {
    let channel = match postable(state, str_arg(args, "channel").map(ChannelId::new).as_ref()) {
        Ok(c) => c,
        Err(code) => return fail(code),
    };
    let (text, blocks) = match text_and_blocks(args, false) {
        Ok(tb) => tb,
        Err(reply) => return *reply,
    };
    let thread_ts = str_arg(args, "thread_ts").map(MessageTs::new);
    let metadata = match args.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m) => {
            let valid = m
                .get("event_type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
                && m.get("event_payload").is_none_or(Value::is_object);
            if !valid {
                return fail("invalid_metadata_format");
            }
            Some(m.clone())
        }
    };
    let ts = state.next_ts();
    let mut message = json!({"type": "message", "ts": ts, "text": text, "bot_id": "B0FAKE001"});
    if let Some(t) = &thread_ts {
        message["thread_ts"] = json!(t);
    }
    state
        .messages
        .entry(channel.clone())
        .or_default()
        .push(FakeMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            thread_ts,
            text,
            blocks,
            edits: Vec::new(),
            metadata,
        });
    ok(json!({"channel": channel, "ts": ts, "message": message}))
}

/// A message ts (`"1700000000.000100"`, or whole seconds) as microseconds.
fn ts_micros(ts: &str) -> Option<u128> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if frac.len() > 6 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: u128 = secs.parse().ok()?;
    let frac: u128 = format!("{frac:0<6}").parse().ok()?;
    Some(secs * 1_000_000 + frac)
}

/// `conversations.history` as Slack documents it: channel messages (thread replies excluded),
/// newest first, within `oldest`/`latest` (exclusive unless `inclusive`), `limit` per page
/// (default 100, at most 999), cursor pagination, and metadata only with
/// `include_all_metadata`. Needs `channels:history` (or `groups:history` for a private channel).
fn conversation_history(state: &State, args: &Map<String, Value>) -> Reply {
    let Some(channel) = str_arg(args, "channel").map(ChannelId::new) else {
        return fail("channel_not_found");
    };
    let Some(c) = state.channels.get(&channel) else {
        return fail("channel_not_found");
    };
    let scope = if c.private {
        "groups:history"
    } else {
        "channels:history"
    };
    if let Some(scopes) = &state.scopes
        && !scopes.iter().any(|s| s == scope)
    {
        return Reply::json(
            StatusCode::OK,
            &json!({"ok": false, "error": "missing_scope", "needed": scope, "provided": scopes.join(",")}),
        );
    }
    if !c.bot_is_member {
        return fail("not_in_channel");
    }
    let flag = |name: &str| {
        args.get(name)
            .is_some_and(|v| v == &json!(true) || v == "true" || v == "1")
    };
    // A bound that is present but not a ts: its error code.
    let bound = |name: &'static str| -> Result<Option<u128>, &'static str> {
        match args.get(name) {
            None => Ok(None),
            Some(v) => {
                let text = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                let code = if name == "oldest" {
                    "invalid_ts_oldest"
                } else {
                    "invalid_ts_latest"
                };
                ts_micros(&text).map(Some).ok_or(code)
            }
        }
    };
    let (oldest, latest) = match (bound("oldest"), bound("latest")) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(code), _) | (_, Err(code)) => return fail(code),
    };
    let inclusive = flag("inclusive");
    let limit = match args.get("limit") {
        None => 100,
        Some(v) => match v.as_str().map_or_else(|| v.as_u64(), |s| s.parse().ok()) {
            Some(n) => n.clamp(1, 999) as usize,
            None => return fail("invalid_limit"),
        },
    };
    let before = match str_arg(args, "cursor") {
        None => None,
        Some(cursor) => match cursor.strip_prefix("next_ts:").and_then(ts_micros) {
            Some(at) => Some(at),
            None => return fail("invalid_cursor"),
        },
    };
    let metadata = flag("include_all_metadata");
    let mut found: Vec<(u128, &FakeMessage)> = state
        .messages
        .get(&channel)
        .into_iter()
        .flatten()
        .filter(|m| m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
        .filter_map(|m| Some((ts_micros(m.ts.as_str())?, m)))
        .filter(|(at, _)| match oldest {
            Some(o) if inclusive => *at >= o,
            Some(o) => *at > o,
            None => true,
        })
        .filter(|(at, _)| match latest {
            Some(l) if inclusive => *at <= l,
            Some(l) => *at < l,
            None => true,
        })
        .filter(|(at, _)| before.is_none_or(|b| *at < b))
        .collect();
    found.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let has_more = found.len() > limit;
    found.truncate(limit);
    let messages: Vec<Value> = found
        .iter()
        .map(|(_, m)| {
            let mut json =
                json!({"type": "message", "ts": m.ts, "text": m.text, "bot_id": "B0FAKE001"});
            if let Some(t) = &m.thread_ts {
                json["thread_ts"] = json!(t);
            }
            if let (true, Some(meta)) = (metadata, &m.metadata) {
                json["metadata"] = meta.clone();
            }
            json
        })
        .collect();
    let next_cursor = match (has_more, found.last()) {
        (true, Some((_, m))) => format!("next_ts:{}", m.ts),
        _ => String::new(),
    };
    ok(json!({
        "messages": messages,
        "has_more": has_more,
        "pin_count": 0,
        "channel_actions_ts": null,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }))
}

fn update_message(state: &mut State, args: &Map<String, Value>) -> Reply {
    let channel = match postable(state, str_arg(args, "channel").map(ChannelId::new).as_ref()) {
        Ok(c) => c,
        Err(code) => return fail(code),
    };
    let Some(ts) = str_arg(args, "ts").map(MessageTs::new) else {
        return fail("message_not_found");
    };
    let (text, blocks) = match text_and_blocks(args, true) {
        Ok(tb) => tb,
        Err(reply) => return *reply,
    };
    let Some(message) = state
        .messages
        .get_mut(&channel)
        .and_then(|all| all.iter_mut().find(|m| m.ts == ts))
    else {
        return fail("message_not_found");
    };
    let old_text = std::mem::replace(&mut message.text, text.clone());
    let old_blocks = std::mem::replace(&mut message.blocks, blocks);
    message.edits.push((old_text, old_blocks));
    ok(json!({"channel": channel, "ts": ts, "text": text, "message": {"text": text}}))
}

fn post_ephemeral(state: &mut State, args: &Map<String, Value>) -> Reply {
    let channel = match postable(state, str_arg(args, "channel").map(ChannelId::new).as_ref()) {
        Ok(c) => c,
        Err(code) => return fail(code),
    };
    let Some(user) = str_arg(args, "user").map(SlackUserId::new) else {
        return fail("user_not_in_channel");
    };
    if !state
        .channels
        .get(&channel)
        .is_some_and(|c| c.members.contains(&user))
    {
        return fail("user_not_in_channel");
    }
    let (text, blocks) = match text_and_blocks(args, true) {
        Ok(tb) => tb,
        Err(reply) => return *reply,
    };
    let ts = state.next_ts();
    state.ephemerals.push(FakeEphemeral {
        channel,
        user,
        ts: ts.clone(),
        thread_ts: str_arg(args, "thread_ts").map(MessageTs::new),
        text,
        blocks,
    });
    ok(json!({"message_ts": ts}))
}

fn view_json(state: &State, v: &FakeView) -> Value {
    let mut view = v.view.clone();
    if let Some(map) = view.as_object_mut() {
        map.insert("id".into(), json!(v.id));
        map.insert("team_id".into(), json!(state.team_id));
        map.insert("hash".into(), json!(v.hash));
        map.insert("root_view_id".into(), json!(v.id));
        map.insert("state".into(), json!({"values": {}}));
        map.entry("private_metadata").or_insert(json!(""));
        map.entry("callback_id").or_insert(json!(""));
        map.entry("external_id").or_insert(json!(""));
    }
    view
}

fn valid_view(args: &Map<String, Value>) -> Option<Value> {
    let view = args.get("view")?;
    let ok = view["type"].is_string() && view["title"].is_object() && view["blocks"].is_array();
    ok.then(|| view.clone())
}

/// Refuses a view that breaks a documented Block Kit limit, as Slack does for views:
/// `invalid_arguments` with the violation in `response_metadata.messages`.
fn check_view(view: &Value) -> Result<(), Box<Reply>> {
    block_kit::check_view(view)
        .map_err(|message| Box::new(fail_with("invalid_arguments", &message)))
}

fn open_view(state: &mut State, args: &Map<String, Value>) -> Reply {
    let Some(trigger) = str_arg(args, "trigger_id").map(str::to_owned) else {
        return fail("invalid_trigger_id");
    };
    if state.triggers_used.contains(&trigger) {
        return fail("exchanged_trigger_id");
    }
    if state
        .triggers_issued
        .get(&trigger)
        .is_some_and(|at| at.elapsed() > Duration::from_secs(3))
    {
        return fail("expired_trigger_id");
    }
    let Some(view) = valid_view(args) else {
        return Reply::json(
            StatusCode::OK,
            &json!({"ok": false, "error": "invalid_arguments",
                    "response_metadata": {"messages": ["[ERROR] missing required field: view"]}}),
        );
    };
    if let Err(reply) = check_view(&view) {
        return *reply;
    }
    state.triggers_used.insert(trigger.clone());
    let n = state.next_id();
    let fake = FakeView {
        id: ViewId::new(format!("V{n:08}")),
        trigger_id: TriggerId::new(trigger),
        view,
        hash: format!("{n}.{:08x}", n.wrapping_mul(2_654_435_761)),
        updates: 0,
    };
    let body = json!({"view": view_json(state, &fake)});
    state.views.push(fake);
    ok(body)
}

fn update_view(state: &mut State, args: &Map<String, Value>) -> Reply {
    let Some(view) = valid_view(args) else {
        return fail("invalid_arguments");
    };
    if let Err(reply) = check_view(&view) {
        return *reply;
    }
    let view_id = str_arg(args, "view_id");
    let external_id = str_arg(args, "external_id");
    let hash = str_arg(args, "hash").map(str::to_owned);
    let n = state.next_id();
    let Some(existing) = state.views.iter_mut().find(|v| {
        view_id.is_some_and(|id| v.id.as_str() == id)
            || external_id.is_some_and(|e| v.view["external_id"].as_str() == Some(e))
    }) else {
        return fail("not_found");
    };
    if hash.is_some_and(|h| h != existing.hash) {
        return fail("hash_conflict");
    }
    existing.view = view;
    existing.updates += 1;
    existing.hash = format!("{n}.{:08x}", n.wrapping_mul(2_654_435_761));
    let snapshot = existing.clone();
    ok(json!({"view": view_json(state, &snapshot)}))
}
