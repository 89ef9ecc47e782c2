//! Inputs, effects and the data they carry.

use std::fmt;
use std::time::Duration;

use ids::{
    ChannelId, Email, EscalationPolicyId, EventId, IncidentId, MessageTs, NoteId, PdUserId,
    PriorityId, ServiceId, SlackUserId, TeamId, WebhookId,
};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A PagerDuty incident status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `triggered`.
    Triggered,
    /// `acknowledged`.
    Acknowledged,
    /// `resolved`.
    Resolved,
}

impl Status {
    /// The label shown on the card: `Triggered`, `Acknowledged` or `Resolved`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Triggered => "Triggered",
            Status::Acknowledged => "Acknowledged",
            Status::Resolved => "Resolved",
        }
    }
}

/// A PagerDuty incident urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// `high`.
    High,
    /// `low`.
    Low,
}

/// A reference to a PagerDuty object: its id and its human name (`summary`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Named<T> {
    /// The object's id.
    pub id: T,
    /// The object's human name, such as a user's name or a priority's `P1`.
    pub name: String,
}

impl<T> Named<T> {
    /// A reference from an id and a name.
    pub fn new(id: T, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// A PagerDuty user reference.
pub type PdUserRef = Named<PdUserId>;

/// Everything the card shows about an incident, as PagerDuty reports it in an incident webhook's
/// `data` or a `GET /incidents/{id}` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    /// The incident id.
    pub id: IncidentId,
    /// The incident number (`number` in webhooks, `incident_number` in REST).
    pub number: Option<u64>,
    /// The title.
    pub title: String,
    /// The incident's page in the PagerDuty web UI.
    pub html_url: Option<String>,
    /// The status.
    pub status: Status,
    /// The urgency, if known.
    pub urgency: Option<Urgency>,
    /// The priority, if set.
    pub priority: Option<Named<PriorityId>>,
    /// The service.
    pub service: Option<Named<ServiceId>>,
    /// The teams.
    pub teams: Vec<Named<TeamId>>,
    /// The escalation policy.
    pub escalation_policy: Option<Named<EscalationPolicyId>>,
    /// The assignees (empty once resolved).
    pub assignees: Vec<PdUserRef>,
    /// For data read from PagerDuty's REST API: PagerDuty's own time (its clock, not the
    /// caller's) up to which the data reflects every change, such as the newest of the
    /// incident's `updated_at`, `last_status_change_at` and the answer's `Date`. The engine
    /// orders a read by it against events' `occurred_at`; without it, by the caller's clock
    /// when the read was sent. `None` for webhook data, which is ordered by `occurred_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Timestamp>,
}

/// The kind of an incident event whose `data` is a full incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentEventType {
    /// `incident.triggered`.
    Triggered,
    /// `incident.acknowledged`.
    Acknowledged,
    /// `incident.unacknowledged`.
    Unacknowledged,
    /// `incident.resolved`.
    Resolved,
    /// `incident.reopened`.
    Reopened,
    /// `incident.escalated`.
    Escalated,
    /// `incident.reassigned`.
    Reassigned,
    /// `incident.delegated`.
    Delegated,
    /// `incident.priority_updated`.
    PriorityUpdated,
    /// Any other event whose `data` is a full incident (`incident.service_updated`,
    /// `incident.title_updated`, …), with its `event_type`.
    Other(String),
}

/// What a PagerDuty event says, already translated from wire JSON by the caller.
// Inputs are built once and moved; boxing the incident would only add noise for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdEventKind {
    /// An event whose `data` is the full incident.
    Incident {
        /// The event type.
        event_type: IncidentEventType,
        /// The incident as of `occurred_at`.
        data: IncidentSnapshot,
    },
    /// `incident.annotated`: a note was added. The engine never writes this back to PagerDuty.
    Annotated {
        /// The note id.
        note: Option<NoteId>,
        /// The note text.
        content: String,
    },
    /// `incident.responder.added`: someone was asked to help.
    ResponderAdded {
        /// The requested responder.
        responder: PdUserRef,
        /// The request message.
        message: Option<String>,
    },
    /// `incident.responder.replied`: a responder accepted or declined.
    ResponderReplied {
        /// The responder.
        responder: PdUserRef,
        /// The new state, such as `accepted` or `declined`.
        state: String,
    },
    /// `incident.status_update_published`.
    StatusUpdatePublished {
        /// The published message.
        message: String,
    },
    /// Any other event type; it is dropped with [`DropReason::Ignored`].
    Other {
        /// The `event_type`.
        event_type: String,
    },
}

/// A normalized PagerDuty v3 webhook event about one incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdEvent {
    /// `event.id`.
    pub event_id: EventId,
    /// The delivery's `X-Webhook-Id`, if any.
    pub webhook_id: Option<WebhookId>,
    /// `event.occurred_at`.
    pub occurred_at: Timestamp,
    /// The incident the event is about (`data.id` or `data.incident.id`).
    pub incident: IncidentId,
    /// The incident's title when only a reference is given (`data.incident.summary`).
    pub incident_title: Option<String>,
    /// `event.agent` when it is a user.
    pub agent: Option<PdUserRef>,
    /// What happened.
    pub kind: PdEventKind,
    /// The channel a new card for this incident goes to, as the caller's routes decide. `None`
    /// means no route matched: an event for an incident without a card is then dropped.
    pub target_channel: Option<ChannelId>,
}

/// Why an actor may not act, and how to fix it. Decided outside the engine (identity, policy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why, as a full sentence, such as "No PagerDuty user has the email alice@example.com.".
    pub reason: String,
    /// How to fix it, as a full sentence.
    pub how_to_fix: String,
}

/// The Slack user who clicked, with the identity and authorization the caller resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The Slack user maps to a PagerDuty user.
    Mapped {
        /// The Slack user.
        slack: SlackUserId,
        /// The PagerDuty user.
        pd_user: PdUserId,
        /// The PagerDuty user's email, sent in the `From` header.
        email: Email,
        /// Whether policy allows this actor this action on this incident.
        authorized: Result<(), Refusal>,
    },
    /// The Slack user maps to no PagerDuty user.
    Unmapped {
        /// The Slack user.
        slack: SlackUserId,
        /// Why, and how to fix it.
        reason: Refusal,
    },
}

impl Actor {
    /// The Slack user.
    pub fn slack(&self) -> &SlackUserId {
        match self {
            Actor::Mapped { slack, .. } | Actor::Unmapped { slack, .. } => slack,
        }
    }
}

/// What a Slack user asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Acknowledge the incident.
    Acknowledge,
    /// Escalate one level above the current one.
    Escalate,
    /// Reassign to a PagerDuty user.
    Reassign(PdUserId),
    /// Add a note with this text.
    AddNote(String),
    /// Resolve the incident.
    Resolve,
}

impl ActionKind {
    /// The verb without its payload.
    pub fn verb(&self) -> ids::Verb {
        match self {
            ActionKind::Acknowledge => ids::Verb::Acknowledge,
            ActionKind::Escalate => ids::Verb::Escalate,
            ActionKind::Reassign(_) => ids::Verb::Reassign,
            ActionKind::AddNote(_) => ids::Verb::AddNote,
            ActionKind::Resolve => ids::Verb::Resolve,
        }
    }

    /// A short stable name: `acknowledge`, `escalate`, `reassign`, `add_note`, `resolve`.
    pub fn name(&self) -> &'static str {
        self.verb().as_str()
    }

    /// The progressive verb shown on the card while pending, such as `Acknowledging`.
    pub fn progressive(&self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "Acknowledging",
            ActionKind::Escalate => "Escalating",
            ActionKind::Reassign(_) => "Reassigning",
            ActionKind::AddNote(_) => "Adding note",
            ActionKind::Resolve => "Resolving",
        }
    }
}

/// The idempotency key of one Slack interaction. Two inputs with the same key are one action.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionKey(String);

impl ActionKey {
    /// The key of a block action or view submission: Slack's `action_ts` (or the view id for a
    /// submission), the clicking user and the action name.
    pub fn new(action_ts: &str, user: &SlackUserId, action: &str) -> Self {
        Self(format!("{action_ts}:{user}:{action}"))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionKey({:?})", self.0)
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Slack button click or modal submission, already verified and decoded by the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackAction {
    /// The idempotency key (double clicks and resubmissions share it).
    pub key: ActionKey,
    /// Who clicked.
    pub actor: Actor,
    /// The incident the card is about.
    pub incident: IncidentId,
    /// What was asked for.
    pub kind: ActionKind,
    /// The channel the click came from, for ephemeral replies.
    pub channel: Option<ChannelId>,
}

/// The current escalation level and the number of levels, as read from PagerDuty.
///
/// The engine escalates to one above `current`, else one above the level it last set itself,
/// else to level 2; it refuses when that exceeds `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationLevels {
    /// The current level (1-based) inferred from on-calls and assignees, if it could be.
    pub current: Option<u32>,
    /// The number of levels (escalation rules) of the policy.
    pub max: u32,
}

/// The result of carrying out one effect, fed back with [`Input::EffectDone`].
// Outcomes are built once and moved; boxing the incident would only add noise for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A Slack message was posted with this `ts`.
    Posted {
        /// The message timestamp.
        ts: MessageTs,
    },
    /// The effect succeeded and returned nothing the engine needs.
    Done,
    /// A PagerDuty call returned this incident (a `GET`, or a `PUT` response).
    PdIncident(IncidentSnapshot),
    /// A [`PdRead::EscalationLevels`] result.
    Levels(EscalationLevels),
    /// The request may have reached the service, but no answer came back (a timeout, or the
    /// connection dropped after the request was written). It is retried like
    /// [`Outcome::Retryable`], except that a card post or a note is sent again only after
    /// looking for the earlier attempt's result (see the `look_since` of [`Effect::PostCard`]
    /// and [`Effect::PdMutation`]).
    MaybeSent {
        /// What went wrong, human-readable.
        error: String,
    },
    /// A failure worth retrying that certainly did not take effect (not sent, 5xx, 429 aside).
    Retryable {
        /// What went wrong, human-readable.
        error: String,
        /// The server's hint, if any.
        retry_after: Option<Duration>,
    },
    /// A rate limit (HTTP 429): try again later, never drop.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A failure that retrying cannot fix (4xx other than 429).
    Permanent {
        /// What went wrong, human-readable.
        error: String,
    },
    /// PagerDuty answered that the incident already is in the requested state.
    AlreadyInState,
}

/// One input to the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// A PagerDuty webhook event.
    PdEvent(PdEvent),
    /// A Slack interaction.
    SlackAction(SlackAction),
    /// The outcome of an effect the engine emitted.
    EffectDone {
        /// The effect's id.
        id: EffectId,
        /// What happened.
        outcome: Outcome,
    },
    /// A fresh incident from the reconciler's PagerDuty listing.
    Reconcile {
        /// The incident as PagerDuty reports it.
        snapshot: IncidentSnapshot,
        /// PagerDuty's time (its clock) up to which the snapshot reflects every change, as in
        /// [`IncidentSnapshot::as_of`]; it is compared with events' `occurred_at`, so it must
        /// not come from the caller's clock unless PagerDuty gave no time at all.
        as_of: Timestamp,
        /// The channel a card goes to if the incident has none yet.
        target_channel: Option<ChannelId>,
    },
    /// The time returned by [`crate::Engine::poll_timeout`] has come.
    Tick,
}

/// The deterministic id of an effect, `"{incident}/{tag}"`. The outbox dedupes on it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectId(String);

impl EffectId {
    /// The id of effect `tag` of `incident`.
    pub(crate) fn new(incident: &IncidentId, tag: impl fmt::Display) -> Self {
        Self(format!("{incident}/{tag}"))
    }

    /// Wraps a stored id.
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EffectId({:?})", self.0)
    }
}

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The action waiting for PagerDuty, as the card shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    /// What was asked for.
    pub kind: ActionKind,
    /// Who asked.
    pub requested_by: SlackUserId,
    /// The retry number once a retry is scheduled (1 for the first retry).
    pub retry: u32,
    /// The text to show, such as `Acknowledging… requested by <@U2CERLKJA>`: plain text, which
    /// the renderer escapes except the mention of `requested_by`.
    pub text: String,
}

/// Everything a card shows, independent of Block Kit. The server renders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardView {
    /// The incident id.
    pub incident: IncidentId,
    /// The incident number.
    pub number: Option<u64>,
    /// The title.
    pub title: String,
    /// The incident's page in PagerDuty.
    pub html_url: Option<String>,
    /// The status PagerDuty reports.
    pub status: Status,
    /// The urgency.
    pub urgency: Option<Urgency>,
    /// The priority's name, such as `P1`.
    pub priority: Option<String>,
    /// The service's name.
    pub service: Option<String>,
    /// The assignees.
    pub assignees: Vec<PdUserRef>,
    /// The escalation policy's name.
    pub escalation_policy: Option<String>,
    /// The escalation level the bridge last set, if any.
    pub escalation_level: Option<u32>,
    /// The action waiting for PagerDuty, if any.
    pub pending: Option<PendingView>,
    /// The last failure to show, such as `Acknowledge failed: …`.
    pub last_error: Option<String>,
    /// True once resolved: the card then offers no status-changing buttons.
    pub resolved: bool,
    /// True after Slack refused the full card permanently: render a minimal card (status,
    /// a hard-cut title and the buttons; no fields), which Slack cannot refuse for its content.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minimal: bool,
}

/// The kind of a thread line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// The incident was triggered.
    Triggered,
    /// Acknowledged.
    Acknowledged,
    /// Unacknowledged (the acknowledgement timed out).
    Unacknowledged,
    /// Escalated.
    Escalated,
    /// Reassigned or delegated.
    Reassigned,
    /// A note was added.
    Note,
    /// A responder was requested or replied.
    Responder,
    /// A status update was published.
    StatusUpdate,
    /// Resolved.
    Resolved,
    /// Reopened.
    Reopened,
}

/// Who a thread line is attributed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineActor {
    /// A Slack user who acted through the bridge.
    Slack(SlackUserId),
    /// A PagerDuty user who acted in PagerDuty.
    Pd(PdUserRef),
}

/// One human-meaningful line in the card's thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineLine {
    /// What happened.
    pub kind: LineKind,
    /// Who did it, if known.
    pub actor: Option<LineActor>,
    /// The line text without the actor, such as `acknowledged` or `added a note: …`.
    pub text: String,
}

/// A PagerDuty write, always made on behalf of a mapped, authorized human.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mutation {
    /// `PUT /incidents/{id}` with `status: acknowledged`.
    Acknowledge,
    /// `PUT /incidents/{id}` with `status: resolved`.
    Resolve,
    /// `PUT /incidents/{id}` with `escalation_level` (1-based).
    Escalate {
        /// The target level.
        level: u32,
    },
    /// `PUT /incidents/{id}` with `assignments` to this user.
    Reassign {
        /// The new assignee.
        to: PdUserId,
    },
    /// `POST /incidents/{id}/notes`.
    AddNote {
        /// The note text.
        content: String,
    },
}

impl Mutation {
    /// The verb this call performs.
    pub fn verb(&self) -> ids::Verb {
        match self {
            Mutation::Acknowledge => ids::Verb::Acknowledge,
            Mutation::Resolve => ids::Verb::Resolve,
            Mutation::Escalate { .. } => ids::Verb::Escalate,
            Mutation::Reassign { .. } => ids::Verb::Reassign,
            Mutation::AddNote { .. } => ids::Verb::AddNote,
        }
    }
}

/// The human a PagerDuty mutation is made for: their email goes in the `From` header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationActor {
    /// The Slack user who asked.
    pub slack: SlackUserId,
    /// Their PagerDuty user.
    pub pd_user: PdUserId,
    /// Their PagerDuty email, for `From`.
    pub email: Email,
}

/// A PagerDuty read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdRead {
    /// `GET /incidents/{id}`; answered with [`Outcome::PdIncident`].
    Incident,
    /// The policy's levels and the incident's current level (`GET /escalation_policies/{id}`
    /// and `GET /oncalls`); answered with [`Outcome::Levels`].
    EscalationLevels {
        /// The incident's escalation policy.
        policy: EscalationPolicyId,
    },
}

/// Why an input changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The webhook or event id, or the action key, was already handled.
    Duplicate,
    /// The event is not newer than the state already applied.
    Stale,
    /// The event is the echo of the bridge's own action and was already shown.
    Echo,
    /// The actor maps to no PagerDuty user.
    Unmapped,
    /// Policy refused the actor.
    Unauthorized,
    /// The incident already is in the requested state.
    AlreadyInState,
    /// The incident is resolved, so the action could reopen it.
    Resolved,
    /// The escalation policy has no level above the current one.
    TopLevel,
    /// Another action on this incident is still waiting for PagerDuty.
    Busy,
    /// The engine knows no such incident.
    UnknownIncident,
    /// No route gives the incident a channel.
    NoChannel,
    /// The event type is not one the bridge shows.
    Ignored,
    /// The effect id is not (or no longer) awaited.
    UnknownEffect,
    /// The effect failed permanently or ran out of attempts.
    Failed,
    /// Nothing was due.
    NothingDue,
    /// The input was valid but changed nothing (for example a reconciliation with known data).
    Unchanged,
}

/// One thing for the caller to do (or a record that nothing is done, and why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Post the incident card (`chat.postMessage`, with the incident id in the message's
    /// metadata); answer with [`Outcome::Posted`].
    PostCard {
        /// The effect id.
        id: EffectId,
        /// The channel.
        channel: ChannelId,
        /// The content.
        card: CardView,
        /// Set when an earlier post of this card may have reached Slack: the caller's time when
        /// the first post was sent. Before posting, look for this incident's card posted since
        /// then (allowing for clock skew) and answer [`Outcome::Posted`] with its `ts` if found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        look_since: Option<Timestamp>,
    },
    /// Replace the card's content (`chat.update`).
    UpdateCard {
        /// The effect id.
        id: EffectId,
        /// The channel.
        channel: ChannelId,
        /// The card's message.
        ts: MessageTs,
        /// The content.
        card: CardView,
    },
    /// Post lines in the card's thread (one message).
    PostThread {
        /// The effect id.
        id: EffectId,
        /// The channel.
        channel: ChannelId,
        /// The card's message (the thread root).
        thread_ts: MessageTs,
        /// The lines, oldest first.
        lines: Vec<TimelineLine>,
    },
    /// Show a message to one user only (`response_url` or `chat.postEphemeral`). The engine
    /// does not await it: the caller retries it itself and feeds back no outcome (one fed back
    /// is answered with [`DropReason::UnknownEffect`]).
    Ephemeral {
        /// The effect id.
        id: EffectId,
        /// The incident concerned.
        incident: IncidentId,
        /// The action being answered, so the caller can find its `response_url`.
        action: ActionKey,
        /// The channel, if known.
        channel: Option<ChannelId>,
        /// The user.
        user: SlackUserId,
        /// The message: plain text, which the caller escapes for `mrkdwn` except the mentions
        /// `<@U…>` of the users in `mentions`, which the engine wrote itself.
        text: String,
        /// The users `text` mentions on purpose.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<SlackUserId>,
    },
    /// Change the incident in PagerDuty; answer with [`Outcome::PdIncident`] or [`Outcome::Done`].
    PdMutation {
        /// The effect id.
        id: EffectId,
        /// The incident.
        incident: IncidentId,
        /// The human whose email goes in `From`.
        actor: MutationActor,
        /// The change.
        mutation: Mutation,
        /// Set when an earlier attempt of this note may have reached PagerDuty: the caller's
        /// time when it was first sent. Before sending, look for the same note by the same user
        /// written since then (allowing for clock skew) and answer [`Outcome::Done`] if found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        look_since: Option<Timestamp>,
    },
    /// Read from PagerDuty.
    PdRead {
        /// The effect id.
        id: EffectId,
        /// The incident.
        incident: IncidentId,
        /// What to read.
        read: PdRead,
    },
    /// The input changed nothing.
    Dropped {
        /// The incident concerned, if any.
        incident: Option<IncidentId>,
        /// Why.
        reason: DropReason,
    },
}

impl Effect {
    /// The effect's id; `None` for [`Effect::Dropped`], which the caller does not carry out.
    pub fn id(&self) -> Option<&EffectId> {
        match self {
            Effect::PostCard { id, .. }
            | Effect::UpdateCard { id, .. }
            | Effect::PostThread { id, .. }
            | Effect::Ephemeral { id, .. }
            | Effect::PdMutation { id, .. }
            | Effect::PdRead { id, .. } => Some(id),
            Effect::Dropped { .. } => None,
        }
    }
}

/// What a timer returned by [`crate::Engine::poll_timeout`] is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerReason {
    /// Retry a failed effect of this incident.
    Retry(IncidentId),
    /// Flush this incident's coalesced thread lines.
    ThreadFlush(IncidentId),
    /// Give up on this incident's pending action.
    PendingTimeout(IncidentId),
}
