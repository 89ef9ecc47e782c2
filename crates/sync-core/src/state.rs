//! Serializable engine state.

use std::collections::BTreeMap;
use std::time::Duration;

use ids::{ChannelId, EscalationPolicyId, IncidentId, MessageTs, PdUserId, SlackUserId};
use serde::{Deserialize, Serialize};

use crate::text;
use crate::{
    ActionKey, ActionKind, CardView, EffectId, IncidentSnapshot, MutationActor, PendingView,
    Status, TimelineLine, TimerReason, Timestamp,
};

/// Everything the engine knows about one incident. The server persists one per incident.
///
/// Its fields are private: build one only with [`crate::Engine`] and round-trip it with serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentState {
    pub(crate) id: IncidentId,
    /// The latest incident data applied, `None` until a snapshot or full event arrives.
    pub(crate) info: Option<IncidentSnapshot>,
    /// A title known from an incident reference before `info` arrives (cleared when it does).
    pub(crate) title_hint: Option<String>,
    /// How fresh `info` is, on PagerDuty's clock: the `occurred_at` of the event, or the
    /// read's [`IncidentSnapshot::as_of`] (the caller's send time only when PagerDuty gave none).
    pub(crate) data_at: Option<Timestamp>,
    /// The data time of the first data showing the incident resolved since it was last open.
    /// Unlike `data_at`, later reads of the resolved incident do not move it.
    #[serde(default)]
    pub(crate) resolved_since: Option<Timestamp>,
    /// The card's channel.
    pub(crate) channel: Option<ChannelId>,
    pub(crate) card: CardSlot,
    pub(crate) thread: ThreadSlot,
    pub(crate) action: Option<PendingAction>,
    pub(crate) echoes: Vec<ExpectedEcho>,
    /// A `GET /incidents/{id}` to learn the incident before posting its card.
    pub(crate) hydrate: Option<Job>,
    /// The escalation level the bridge last set.
    pub(crate) bridge_level: Option<u32>,
    /// The incident's level and its policy's number of levels, as last read for an escalation.
    #[serde(default)]
    pub(crate) levels: Option<KnownLevels>,
    /// The snooze the bridge made, shown while the incident stays acknowledged.
    #[serde(default)]
    pub(crate) snoozed: Option<crate::SnoozedView>,
    pub(crate) last_error: Option<String>,
    pub(crate) actions_seen: BTreeMap<ActionKey, Timestamp>,
    /// Counter for effect ids that are not derived from an input's identity.
    pub(crate) seq: u64,
    /// Who declared the incident from Slack, when the bridge created it.
    #[serde(default)]
    pub(crate) declared: Option<crate::Declaration>,
    /// The SLA and reminder timers.
    #[serde(default, skip_serializing_if = "Reminders::is_empty")]
    pub(crate) reminders: Reminders,
}

/// The SLA and reminder timers of one incident, on the bridge's clock (time passed in).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reminders {
    /// When the incident was first seen open since it was last resolved: the resolve SLA's start.
    pub(crate) opened_at: Option<Timestamp>,
    /// The status and assignees the timers run for; a change restarts them.
    pub(crate) status: Option<Status>,
    pub(crate) assignees: Vec<PdUserId>,
    /// When the current status and assignees were first seen.
    pub(crate) since: Option<Timestamp>,
    /// The next ack reminder, while unacknowledged.
    pub(crate) ack_at: Option<Timestamp>,
    /// Ack reminders posted since `since`.
    pub(crate) ack_sent: u32,
    /// The next "still on it?" question, while acknowledged.
    pub(crate) still_at: Option<Timestamp>,
    /// The resolve breach line, once per open period.
    pub(crate) resolve_at: Option<Timestamp>,
    /// True once the resolve breach line was added for this open period.
    pub(crate) resolve_done: bool,
}

impl Reminders {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The earliest reminder due.
    pub(crate) fn next_at(&self) -> Option<Timestamp> {
        [self.ack_at, self.still_at, self.resolve_at]
            .into_iter()
            .flatten()
            .min()
    }
}

impl IncidentState {
    /// How long after it resolved an incident whose card was never posted (the post failed
    /// permanently) still needs reconciliation: the reconciler tries to show its final state
    /// until then, and stops afterwards so a channel that stays unusable costs nothing forever.
    pub const RESOLVED_CARD_RETRY: Duration = Duration::from_secs(24 * 60 * 60);

    /// The incident id.
    pub fn id(&self) -> &IncidentId {
        &self.id
    }

    /// The card's channel, once routed.
    pub fn channel(&self) -> Option<&ChannelId> {
        self.channel.as_ref()
    }

    /// The card's message timestamp, once posted.
    pub fn card_ts(&self) -> Option<&MessageTs> {
        self.card.ts.as_ref()
    }

    /// The latest incident data applied.
    pub fn snapshot(&self) -> Option<&IncidentSnapshot> {
        self.info.as_ref()
    }

    /// The card as it should look now, once the incident's data is known.
    pub fn view(&self) -> Option<CardView> {
        view(self)
    }

    /// The ids of the effects whose outcome this incident awaits.
    pub fn awaited_effects(&self) -> Vec<EffectId> {
        awaited(self)
    }

    /// True when the incident awaits no outcome and has no timer: a server may then unload it
    /// from memory (and load it again before the next input that names it).
    pub fn is_idle(&self) -> bool {
        self.awaited_effects().is_empty() && !self.has_timer()
    }

    /// True when the incident has a timer (a retry, a pending action's deadline, a thread
    /// flush or an SLA reminder): a server that unloads incidents must keep this one in memory.
    pub fn has_timer(&self) -> bool {
        has_timer(self)
    }

    /// True once PagerDuty reported the incident resolved.
    pub fn is_resolved(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|info| info.status == crate::Status::Resolved)
    }

    /// True while the reconciler should read the incident and feed it back at `now`: while it
    /// is not known to be resolved, and while it is resolved but its card was never posted
    /// because the post failed permanently, for [`IncidentState::RESOLVED_CARD_RETRY`] after
    /// the first data that showed it resolved.
    pub fn needs_reconcile(&self, now: Timestamp) -> bool {
        if !self.is_resolved() {
            return true;
        }
        let since = self.resolved_since.or(self.data_at);
        self.card.ts.is_none()
            && self.card.post_failed.is_some()
            && since.is_some_and(|at| now < at.saturating_add(Self::RESOLVED_CARD_RETRY))
    }

    /// Replaces the incident data with `data` as of `at`, keeping `resolved_since`.
    pub(crate) fn set_data(&mut self, data: IncidentSnapshot, at: Timestamp) {
        self.resolved_since = if data.status == crate::Status::Resolved {
            // A state saved before `resolved_since` existed falls back to its older data time.
            let earlier = if self.is_resolved() {
                self.resolved_since.or(self.data_at)
            } else {
                None
            };
            earlier.or(Some(at))
        } else {
            None
        };
        self.info = Some(data);
        // The hint only stands in for the title until the data arrives.
        self.title_hint = None;
        self.data_at = Some(at);
    }
}

/// A call that may be retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The effect in flight, if any.
    pub(crate) inflight: Option<EffectId>,
    /// When the in-flight effect was emitted.
    pub(crate) sent_at: Timestamp,
    /// Effects sent so far (numbers the effect ids).
    pub(crate) sends: u32,
    /// Failed attempts so far.
    pub(crate) failures: u32,
    /// When to try again, if waiting.
    pub(crate) retry_at: Option<Timestamp>,
    /// The last failure, shown while waiting to retry.
    pub(crate) last_error: Option<String>,
    /// When the first attempt that may have reached PagerDuty without an answer was sent: a
    /// note is sent again only after looking for it.
    #[serde(default)]
    pub(crate) maybe_sent_since: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardSlot {
    pub(crate) ts: Option<MessageTs>,
    /// The post or update in flight.
    pub(crate) inflight: Option<EffectId>,
    /// The last content sent (and not known to have failed).
    pub(crate) shown: Option<CardView>,
    pub(crate) failures: u32,
    pub(crate) retry_at: Option<Timestamp>,
    /// A permanent post failure; the reconciler may post again.
    pub(crate) post_failed: Option<String>,
    /// Slack refused the full card permanently: the card is shown minimal (no fields, title
    /// cut hard) from then on, so the incident does not go silent.
    #[serde(default)]
    pub(crate) minimal: bool,
    /// When the first post of the card was sent (cleared once it is posted).
    #[serde(default)]
    pub(crate) first_post_at: Option<Timestamp>,
    /// True once a post may have reached Slack without an answer: every later post looks for
    /// it first.
    #[serde(default)]
    pub(crate) maybe_posted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ThreadSlot {
    pub(crate) buffer: Vec<TimelineLine>,
    pub(crate) flush_at: Option<Timestamp>,
    pub(crate) inflight: Option<(EffectId, Vec<TimelineLine>)>,
    pub(crate) failures: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Stage {
    /// Reading the incident before a status-changing mutation.
    ReadIncident,
    /// Reading the escalation levels.
    ReadLevels,
    /// The mutation is in flight.
    Mutate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingAction {
    pub(crate) key: ActionKey,
    pub(crate) kind: ActionKind,
    pub(crate) actor: MutationActor,
    pub(crate) channel: Option<ChannelId>,
    pub(crate) stage: Stage,
    pub(crate) job: Job,
    /// The level chosen for an escalation.
    pub(crate) level: Option<u32>,
    pub(crate) deadline: Timestamp,
}

/// Where the incident stands in its escalation policy, as last read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KnownLevels {
    /// The policy the levels belong to: they stop counting once the incident's policy changes.
    pub(crate) policy: Option<EscalationPolicyId>,
    /// The current level (1-based).
    pub(crate) current: u32,
    /// The number of levels of the policy.
    pub(crate) max: u32,
}

impl KnownLevels {
    /// The number of levels, when the incident is known to be on the last one of `policy`.
    pub(crate) fn last_of(&self, policy: Option<&EscalationPolicyId>) -> Option<u32> {
        (self.policy.as_ref() == policy && self.current >= self.max).then_some(self.max)
    }
}

/// What an echo webhook of the bridge's own mutation looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExpectedEcho {
    pub(crate) key: ActionKey,
    pub(crate) kind: ActionKind,
    pub(crate) agent: PdUserId,
    pub(crate) slack: SlackUserId,
    pub(crate) expires: Timestamp,
    /// True once the action's thread line was added (from the PagerDuty response).
    pub(crate) line_done: bool,
}

/// The whole engine state: global dedupe data plus every incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// The clamped current time.
    pub now: Timestamp,
    /// Dedupe keys of handled webhooks and events, with the time first seen.
    pub seen: BTreeMap<String, Timestamp>,
    /// Every incident.
    pub incidents: Vec<IncidentState>,
}

impl IncidentState {
    pub(crate) fn new(id: IncidentId, channel: ChannelId) -> Self {
        Self {
            id,
            info: None,
            title_hint: None,
            data_at: None,
            resolved_since: None,
            channel: Some(channel),
            card: CardSlot::default(),
            thread: ThreadSlot::default(),
            action: None,
            echoes: Vec::new(),
            hydrate: None,
            bridge_level: None,
            levels: None,
            snoozed: None,
            last_error: None,
            actions_seen: BTreeMap::new(),
            seq: 0,
            declared: None,
            reminders: Reminders::default(),
        }
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn status(&self) -> Option<Status> {
        self.info.as_ref().map(|info| info.status)
    }

    /// Applies webhook data unless it is older than what was applied; returns whether it was.
    /// Two events of the same millisecond apply in arrival order: PagerDuty delivers each
    /// incident's events in the order they were generated, and duplicates never get here.
    pub(crate) fn apply_data(&mut self, data: IncidentSnapshot, at: Timestamp) -> bool {
        if self.data_at.is_some_and(|applied| at < applied) {
            return false;
        }
        self.set_data(data, at);
        true
    }

    /// Applies data PagerDuty returned for a request sent at `sent_at`. It reflects every change
    /// up to its [`IncidentSnapshot::as_of`] (PagerDuty's clock, comparable with events'
    /// `occurred_at`), so it also wins a tie with an event of the same millisecond. Only when
    /// PagerDuty gave no time does the caller's send time stand in for it.
    pub(crate) fn apply_read(&mut self, data: IncidentSnapshot, sent_at: Timestamp) -> bool {
        let at = data.as_of.unwrap_or(sent_at);
        self.apply_read_at(data, at)
    }

    /// Applies read data that reflects every change up to `at` (PagerDuty's clock).
    pub(crate) fn apply_read_at(&mut self, data: IncidentSnapshot, at: Timestamp) -> bool {
        if self.data_at.is_some_and(|applied| at < applied) {
            return false;
        }
        self.set_data(data, at);
        true
    }

    /// How replies name the incident.
    pub(crate) fn describe(&self) -> String {
        text::describe(self.info.as_ref(), self.title_hint.as_deref(), &self.id)
    }
}

/// The card as it should look now.
pub(crate) fn view(st: &IncidentState) -> Option<CardView> {
    let info = st.info.as_ref()?;
    let pending = st.action.as_ref().map(|p| {
        let retrying = p.job.failures > 0 || p.job.retry_at.is_some();
        let text = text::pending(
            &p.kind,
            &p.actor.slack,
            retrying,
            p.job.last_error.as_deref(),
        );
        PendingView {
            kind: p.kind.clone(),
            requested_by: p.actor.slack.clone(),
            retry: p.job.failures,
            text,
        }
    });
    Some(CardView {
        incident: info.id.clone(),
        number: info.number,
        title: info.title.clone(),
        html_url: info.html_url.clone(),
        status: info.status,
        urgency: info.urgency,
        priority: info.priority.as_ref().map(|p| p.name.clone()),
        service: info.service.as_ref().map(|s| s.name.clone()),
        assignees: info.assignees.clone(),
        escalation_policy: info.escalation_policy.as_ref().map(|e| e.name.clone()),
        escalation_level: st.bridge_level,
        last_level: st
            .levels
            .as_ref()
            .filter(|_| info.status != Status::Resolved)
            .and_then(|l| l.last_of(info.escalation_policy.as_ref().map(|e| &e.id))),
        snoozed: st
            .snoozed
            .clone()
            .filter(|_| info.status == Status::Acknowledged),
        pending,
        last_error: st.last_error.clone(),
        declared: st.declared.as_ref().map(|d| crate::DeclaredView {
            by: d.by.clone(),
            text: text::declared_by(d),
        }),
        resolved: info.status == Status::Resolved,
        minimal: st.card.minimal,
    })
}

/// The effects whose outcome `st` waits for.
pub(crate) fn awaited(st: &IncidentState) -> Vec<EffectId> {
    let mut ids = Vec::new();
    ids.extend(st.card.inflight.clone());
    ids.extend(st.thread.inflight.as_ref().map(|(id, _)| id.clone()));
    ids.extend(st.action.as_ref().and_then(|p| p.job.inflight.clone()));
    ids.extend(st.hydrate.as_ref().and_then(|j| j.inflight.clone()));
    ids
}

/// What kind of timer [`next_timer_at`] found.
#[derive(Clone, Copy)]
pub(crate) enum TimerKind {
    Retry,
    ThreadFlush,
    PendingTimeout,
    Reminder,
}

/// The earliest timer of one incident that can fire.
pub(crate) fn next_timer(st: &IncidentState) -> Option<(Timestamp, TimerReason)> {
    let (at, kind) = next_timer_at(st)?;
    let id = st.id.clone();
    let reason = match kind {
        TimerKind::Retry => TimerReason::Retry(id),
        TimerKind::ThreadFlush => TimerReason::ThreadFlush(id),
        TimerKind::PendingTimeout => TimerReason::PendingTimeout(id),
        TimerKind::Reminder => TimerReason::Reminder(id),
    };
    Some((at, reason))
}

/// True if the incident has a timer that can fire.
pub(crate) fn has_timer(st: &IncidentState) -> bool {
    next_timer_at(st).is_some()
}

/// [`next_timer`] without allocating: of equal times, the first candidate below wins.
pub(crate) fn next_timer_at(st: &IncidentState) -> Option<(Timestamp, TimerKind)> {
    let action = st.action.as_ref();
    let flush = st
        .thread
        .flush_at
        .filter(|_| st.card.ts.is_some() && st.thread.inflight.is_none());
    let candidates = [
        (st.card.retry_at, TimerKind::Retry),
        (
            st.hydrate.as_ref().and_then(|j| j.retry_at),
            TimerKind::Retry,
        ),
        (action.and_then(|p| p.job.retry_at), TimerKind::Retry),
        (action.map(|p| p.deadline), TimerKind::PendingTimeout),
        (flush, TimerKind::ThreadFlush),
        (st.reminders.next_at(), TimerKind::Reminder),
    ];
    candidates
        .into_iter()
        .filter_map(|(at, kind)| Some((at?, kind)))
        .min_by_key(|(at, _)| *at)
}

impl Job {
    pub(crate) fn idle() -> Self {
        Self {
            inflight: None,
            sent_at: Timestamp::EPOCH,
            sends: 0,
            failures: 0,
            retry_at: None,
            last_error: None,
            maybe_sent_since: None,
        }
    }

    pub(crate) fn start(&mut self, id: EffectId, now: Timestamp) {
        self.inflight = Some(id);
        self.sent_at = now;
        self.retry_at = None;
    }
}

pub(crate) fn initial_stage(kind: &ActionKind) -> Stage {
    match kind {
        ActionKind::Acknowledge
        | ActionKind::Escalate
        | ActionKind::Reassign(_)
        | ActionKind::ChangeUrgency(_)
        | ActionKind::Snooze(_)
        | ActionKind::ChangePriority { .. } => Stage::ReadIncident,
        ActionKind::AddNote(_) | ActionKind::Resolve => Stage::Mutate,
    }
}
