//! What the caller feeds the engine: PagerDuty events, Slack actions and effect outcomes.

use std::fmt;
use std::time::Duration;

use ids::{
    ChannelId, Email, EventId, IncidentId, MessageTs, NoteId, PdUserId, PriorityId, SlackUserId,
    WebhookId,
};
use serde::{Deserialize, Serialize};

use crate::{EffectId, IncidentEventType, IncidentSnapshot, Named, PdUserRef, Timestamp, Urgency};

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
    ///
    /// [`DropReason::Ignored`]: crate::DropReason::Ignored
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
    /// A name for the change itself, the same whichever path brought it (a webhook or a polled
    /// log entry), deduplicated like `event_id`; `None` when only one path is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_key: Option<String>,
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
    /// Change the urgency to this one.
    ChangeUrgency(Urgency),
    /// Snooze the acknowledged incident for this many minutes (at most a week).
    Snooze(u32),
    /// Change the priority to `to`; `from` is the priority PagerDuty showed when the action
    /// read the incident (filled in by the engine, for the thread line).
    ChangePriority {
        /// The new priority.
        to: Named<PriorityId>,
        /// The priority's name before the change, once read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
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
            ActionKind::ChangeUrgency(_) => ids::Verb::ChangeUrgency,
            ActionKind::Snooze(_) => ids::Verb::Snooze,
            ActionKind::ChangePriority { .. } => ids::Verb::ChangePriority,
        }
    }

    /// A short stable name ([`ids::Verb::as_str`]).
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
            ActionKind::ChangeUrgency(_) => "Changing urgency",
            ActionKind::Snooze(_) => "Snoozing",
            ActionKind::ChangePriority { .. } => "Changing priority",
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

/// Another incident declared in the same request from Slack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    /// The incident.
    pub incident: IncidentId,
    /// Its number, when known.
    pub number: Option<u64>,
}

/// Who declared an incident from Slack, as the card shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The Slack user who declared it.
    pub by: SlackUserId,
    /// The opt-in account (`declare.unmapped_from`) PagerDuty recorded, when the Slack user
    /// has no PagerDuty user.
    pub via: Option<Email>,
    /// The incidents declared together with it (one per other service).
    pub together: Vec<Sibling>,
}

/// The bridge created an incident in PagerDuty for a Slack user. Its trigger webhook is then
/// the echo of that creation: the same card, shown with who declared it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    /// The incident PagerDuty created.
    pub incident: IncidentId,
    /// Who declared it.
    pub declaration: Declaration,
    /// The incident as PagerDuty's create answer described it, if it could be read.
    pub snapshot: Option<IncidentSnapshot>,
    /// PagerDuty's time of that answer (see [`IncidentSnapshot::as_of`]).
    pub as_of: Timestamp,
    /// The channel the card goes to if the incident has none yet.
    pub target_channel: Option<ChannelId>,
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
    ///
    /// [`PdRead::EscalationLevels`]: crate::PdRead::EscalationLevels
    Levels(EscalationLevels),
    /// The request may have reached the service, but no answer came back (a timeout, or the
    /// connection dropped after the request was written). It is retried like
    /// [`Outcome::Retryable`], except that a card post or a note is sent again only after
    /// looking for the earlier attempt's result (see the `look_since` of [`Effect::PostCard`]
    /// and [`Effect::PdMutation`]).
    ///
    /// [`Effect::PostCard`]: crate::Effect::PostCard
    /// [`Effect::PdMutation`]: crate::Effect::PdMutation
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
    /// The bridge created this incident for a Slack user (see [`Declared`]).
    Declared(Declared),
}

impl Input {
    /// The incident the input is about; `None` for [`Input::Tick`].
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            Input::PdEvent(event) => Some(event.incident.clone()),
            Input::SlackAction(action) => Some(action.incident.clone()),
            Input::Reconcile { snapshot, .. } => Some(snapshot.id.clone()),
            Input::EffectDone { id, .. } => id.incident(),
            Input::Declared(d) => Some(d.incident.clone()),
            Input::Tick => None,
        }
    }
}
