//! What the engine asks the caller to do, and the views it asks to show.

use ids::{
    ChannelId, Email, EscalationPolicyId, IncidentId, MessageTs, PdUserId, PriorityId, SlackUserId,
};
use serde::{Deserialize, Serialize};

use crate::{ActionKey, ActionKind, EffectId, PdUserRef, Status, Timestamp, Urgency};

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
    /// The number of levels of the escalation policy, when the incident is known to be on its
    /// last one: Escalate cannot succeed, so the card says so instead of offering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_level: Option<u32>,
    /// Who snoozed the acknowledged incident through the bridge, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed: Option<SnoozedView>,
    /// The action waiting for PagerDuty, if any.
    pub pending: Option<PendingView>,
    /// The last failure to show, such as `Acknowledge failed: …`.
    pub last_error: Option<String>,
    /// Who declared the incident from Slack, when the bridge created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<DeclaredView>,
    /// True once resolved: the card then offers no status-changing buttons.
    pub resolved: bool,
    /// True after Slack refused the full card permanently: render a minimal card (status,
    /// a hard-cut title and the buttons; no fields), which Slack cannot refuse for its content.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minimal: bool,
}

/// The card's line about who declared the incident from Slack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredView {
    /// The Slack user who declared it (the one mention the text may make).
    pub by: SlackUserId,
    /// The line, such as `Declared by <@U1> from Slack`.
    pub text: String,
}

/// A snooze the card shows: `Snoozed by @x until 14:30 (your time)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnoozedView {
    /// Who snoozed it.
    pub by: SlackUserId,
    /// Until when (the bridge's clock when PagerDuty accepted it, plus the duration).
    pub until: Timestamp,
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
    /// The urgency changed.
    Urgency,
    /// Snoozed.
    Snoozed,
    /// The priority changed.
    Priority,
    /// A status update was published.
    StatusUpdate,
    /// Resolved.
    Resolved,
    /// Reopened.
    Reopened,
    /// A reminder that the incident is past its ack SLA, naming the current assignees;
    /// `channel_wide` asks for the line to go to the channel as well (`reply_broadcast`).
    AckOverdue {
        /// The reminder's number since the breach, from 1: the first is the breach itself.
        reminder: u32,
        /// True for every `escalate_channel_after`-th reminder.
        channel_wide: bool,
        /// The incident's urgency, for the breach metric.
        urgency: Option<Urgency>,
    },
    /// The periodic question to the owner of an acknowledged, unresolved incident.
    StillOnIt,
    /// The incident is past its resolve SLA: one line, channel-wide.
    ResolveOverdue {
        /// The incident's urgency, for the breach metric.
        urgency: Option<Urgency>,
    },
}

impl LineKind {
    /// The SLA breach a line reports, as the `kind` label of `sla_breaches_total` with the
    /// incident's urgency: the first ack reminder (`ack`) and the resolve line (`resolve`).
    pub fn sla_breach(self) -> Option<(&'static str, Option<Urgency>)> {
        match self {
            LineKind::AckOverdue {
                reminder: 1,
                urgency,
                ..
            } => Some(("ack", urgency)),
            LineKind::ResolveOverdue { urgency } => Some(("resolve", urgency)),
            _ => None,
        }
    }

    /// True for a line that should also go to the channel (`reply_broadcast`).
    pub fn channel_wide(self) -> bool {
        matches!(
            self,
            LineKind::AckOverdue {
                channel_wide: true,
                ..
            } | LineKind::ResolveOverdue { .. }
        )
    }
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
    /// `PUT /incidents/{id}` with `urgency`.
    ChangeUrgency {
        /// The new urgency.
        urgency: Urgency,
    },
    /// `POST /incidents/{id}/snooze` with `duration` in seconds.
    Snooze {
        /// How long, in minutes (at most a week).
        minutes: u32,
    },
    /// `PUT /incidents/{id}` with `priority`.
    ChangePriority {
        /// The new priority.
        priority: PriorityId,
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
            Mutation::ChangeUrgency { .. } => ids::Verb::ChangeUrgency,
            Mutation::Snooze { .. } => ids::Verb::Snooze,
            Mutation::ChangePriority { .. } => ids::Verb::ChangePriority,
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
    ///
    /// [`Outcome::PdIncident`]: crate::Outcome::PdIncident
    Incident,
    /// The policy's levels and the incident's current level (`GET /escalation_policies/{id}`
    /// and `GET /oncalls`); answered with [`Outcome::Levels`].
    ///
    /// [`Outcome::Levels`]: crate::Outcome::Levels
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
    ///
    /// [`Outcome::Posted`]: crate::Outcome::Posted
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
        ///
        /// [`Outcome::Posted`]: crate::Outcome::Posted
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
    ///
    /// [`Outcome::PdIncident`]: crate::Outcome::PdIncident
    /// [`Outcome::Done`]: crate::Outcome::Done
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
        ///
        /// [`Outcome::Done`]: crate::Outcome::Done
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

    /// The incident the effect is about; `None` only for an [`Effect::Dropped`] that names none.
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            Effect::PostCard { card, .. } | Effect::UpdateCard { card, .. } => {
                Some(card.incident.clone())
            }
            Effect::Ephemeral { incident, .. }
            | Effect::PdMutation { incident, .. }
            | Effect::PdRead { incident, .. } => Some(incident.clone()),
            Effect::PostThread { id, .. } => id.incident(),
            Effect::Dropped { incident, .. } => incident.clone(),
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
    /// Post this incident's SLA reminder.
    Reminder(IncidentId),
}
