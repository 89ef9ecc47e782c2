//! The engine: inputs in, effects out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ids::{ChannelId, IncidentId, PdUserId, SlackUserId};

use crate::state::{CardSlot, ExpectedEcho, Job, PendingAction, Stage, ThreadSlot};
use crate::{
    ActionKey, ActionKind, Actor, CardView, DropReason, Effect, EffectId, EngineConfig,
    EngineSnapshot, Error, IncidentEventType, IncidentSnapshot, IncidentState, Input, LineActor,
    LineKind, Mutation, MutationActor, Outcome, PdEvent, PdEventKind, PdRead, PdUserRef,
    PendingView, SlackAction, Status, TimelineLine, TimerReason, Timestamp,
};

/// The pdbridge state machine. See the crate documentation for the call order and invariants.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    now: Timestamp,
    seen: BTreeMap<String, Timestamp>,
    seen_order: BTreeSet<(Timestamp, String)>,
    incidents: BTreeMap<IncidentId, IncidentState>,
    /// Every incident's earliest timer, ordered by time then id, so [`Engine::poll_timeout`]
    /// and [`Input::Tick`] cost O(log n) per incident with a timer, not a scan of all incidents.
    timers: BTreeSet<(Timestamp, IncidentId)>,
    /// The key of each incident's entry in `timers`.
    timer_of: BTreeMap<IncidentId, Timestamp>,
    owners: BTreeMap<EffectId, IncidentId>,
    /// The incidents whose state the last call to `handle` changed.
    changed: BTreeSet<IncidentId>,
}

impl Engine {
    /// An engine with no state, whose clock starts at the epoch.
    pub fn new(config: EngineConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            now: Timestamp::EPOCH,
            seen: BTreeMap::new(),
            seen_order: BTreeSet::new(),
            incidents: BTreeMap::new(),
            timers: BTreeSet::new(),
            timer_of: BTreeMap::new(),
            owners: BTreeMap::new(),
            changed: BTreeSet::new(),
        })
    }

    /// An engine continuing from a snapshot taken with [`Engine::snapshot`].
    ///
    /// The restored engine behaves exactly as the engine the snapshot was taken from.
    pub fn restore(config: EngineConfig, snapshot: EngineSnapshot) -> Result<Self, Error> {
        let mut engine = Self::new(config)?;
        engine.now = snapshot.now;
        for (key, at) in snapshot.seen {
            engine.seen_order.insert((at, key.clone()));
            engine.seen.insert(key, at);
        }
        for state in snapshot.incidents {
            engine.load_incident(state);
        }
        Ok(engine)
    }

    /// The whole state, for persistence.
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            now: self.now,
            seen: self.seen.clone(),
            incidents: self.incidents.values().cloned().collect(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine's clamped current time: the latest `now` passed to [`Engine::handle`].
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// One incident's state, if known.
    pub fn incident(&self, id: &IncidentId) -> Option<&IncidentState> {
        self.incidents.get(id)
    }

    /// Every incident's state, ordered by id.
    pub fn incidents(&self) -> impl Iterator<Item = &IncidentState> {
        self.incidents.values()
    }

    /// Adds (or replaces) one incident's state, as persisted from [`Engine::incident`].
    ///
    /// A server that keeps only some incidents in memory must load an incident before handing
    /// the engine any input that names it; otherwise the engine treats it as new.
    pub fn load_incident(&mut self, state: IncidentState) {
        self.unload_incident(&state.id.clone());
        for id in awaited(&state) {
            self.owners.insert(id, state.id.clone());
        }
        let id = state.id.clone();
        self.incidents.insert(id.clone(), state);
        self.reindex_timer(&id);
    }

    /// Removes one incident's state from memory and returns it.
    pub fn unload_incident(&mut self, id: &IncidentId) -> Option<IncidentState> {
        let state = self.incidents.remove(id)?;
        for effect in awaited(&state) {
            self.owners.remove(&effect);
        }
        self.reindex_timer(id);
        Some(state)
    }

    /// Brings `timers` in step with incident `id`'s state (or its absence).
    fn reindex_timer(&mut self, id: &IncidentId) {
        let next = self
            .incidents
            .get(id)
            .and_then(next_timer_at)
            .map(|(at, _)| at);
        if self.timer_of.get(id).copied() == next {
            return;
        }
        if let Some(old) = self.timer_of.remove(id) {
            self.timers.remove(&(old, id.clone()));
        }
        if let Some(at) = next {
            self.timers.insert((at, id.clone()));
            self.timer_of.insert(id.clone(), at);
        }
    }

    /// True while the engine waits for the outcome of effect `id`.
    ///
    /// A dispatcher should skip a [`Effect::PdMutation`] the engine no longer awaits (its
    /// action already completed through the echo webhook, failed or timed out): carrying it out
    /// late could undo a newer change made in PagerDuty. Slack effects are safe either way;
    /// [`Effect::Ephemeral`] replies are never awaited.
    pub fn awaits(&self, id: &EffectId) -> bool {
        self.owners.contains_key(id)
    }

    /// The incidents whose state the last call to [`Engine::handle`] changed (created
    /// included), in id order: the rows a server that stores one row per incident must write.
    pub fn changed_incidents(&self) -> impl Iterator<Item = &IncidentId> {
        self.changed.iter()
    }

    /// The earliest time at which [`Input::Tick`] has work to do, and for what.
    ///
    /// Of several timers due at the same time, the one of the smallest incident id is returned.
    pub fn poll_timeout(&self) -> Option<(Timestamp, TimerReason)> {
        let next = self
            .timers
            .first()
            .and_then(|(_, id)| self.incidents.get(id))
            .and_then(next_timer);
        debug_assert_eq!(
            next,
            self.incidents
                .values()
                .filter_map(next_timer)
                .min_by_key(|(at, _)| *at),
            "the timer index is out of step with the incidents"
        );
        next
    }

    /// Handles one input at time `now` and returns what to do, in order.
    ///
    /// `now` is clamped to be monotonic: a `now` earlier than a previous one is treated as the
    /// previous one. Every input that changes nothing yields an [`Effect::Dropped`] saying why;
    /// an input that only changes state (for example an event while the card's post is in
    /// flight) may yield no effect at all.
    #[must_use]
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Effect> {
        let now = self.now.max(now);
        self.now = now;
        self.changed.clear();
        self.prune_seen(now);
        let mut out = Vec::new();
        match input {
            Input::PdEvent(event) => self.on_pd_event(now, event, &mut out),
            Input::SlackAction(action) => self.on_action(now, action, &mut out),
            Input::EffectDone { id, outcome } => match self.owners.get(&id).cloned() {
                Some(incident) => self.touch(&incident, now, false, &mut out, |cx, st| {
                    cx.effect_done(st, &id, outcome)
                }),
                None => out.push(Effect::Dropped {
                    incident: None,
                    reason: DropReason::UnknownEffect,
                }),
            },
            Input::Reconcile {
                snapshot,
                as_of,
                target_channel,
            } => {
                let id = snapshot.id.clone();
                if !self.ensure_incident(&id, target_channel.as_ref()) {
                    out.push(dropped(&id, DropReason::NoChannel));
                    return out;
                }
                self.touch(&id, now, false, &mut out, |cx, st| {
                    cx.reconcile(st, snapshot, as_of, target_channel)
                });
            }
            Input::Tick => {
                // Due incidents fire in id order, whatever their timers' order.
                let due: BTreeSet<IncidentId> = self
                    .timers
                    .iter()
                    .take_while(|(at, _)| *at <= now)
                    .map(|(_, id)| id.clone())
                    .collect();
                if due.is_empty() {
                    out.push(Effect::Dropped {
                        incident: None,
                        reason: DropReason::NothingDue,
                    });
                }
                for id in due {
                    self.touch(&id, now, true, &mut out, |_, _| None);
                }
            }
        }
        out
    }

    fn prune_seen(&mut self, now: Timestamp) {
        while let Some((at, key)) = self.seen_order.first().cloned() {
            if at.saturating_add(self.config.dedupe_ttl) > now {
                break;
            }
            self.seen_order.pop_first();
            self.seen.remove(&key);
        }
    }

    /// Creates the incident if it is unknown and a channel is given; false if it stays unknown.
    fn ensure_incident(&mut self, id: &IncidentId, channel: Option<&ChannelId>) -> bool {
        if self.incidents.contains_key(id) {
            return true;
        }
        let Some(channel) = channel else {
            return false;
        };
        self.incidents
            .insert(id.clone(), IncidentState::new(id.clone(), channel.clone()));
        self.changed.insert(id.clone());
        self.reindex_timer(id);
        true
    }

    fn on_pd_event(&mut self, now: Timestamp, event: PdEvent, out: &mut Vec<Effect>) {
        let id = event.incident.clone();
        let mut keys = vec![format!("event:{}", event.event_id)];
        if let Some(webhook) = &event.webhook_id {
            keys.push(format!("webhook:{webhook}"));
        }
        if keys.iter().any(|key| self.seen.contains_key(key)) {
            out.push(dropped(&id, DropReason::Duplicate));
            return;
        }
        for key in keys {
            self.seen_order.insert((now, key.clone()));
            self.seen.insert(key, now);
        }
        while self.seen.len() > self.config.dedupe_capacity {
            let Some((_, oldest)) = self.seen_order.pop_first() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        if matches!(event.kind, PdEventKind::Other { .. }) {
            out.push(dropped(&id, DropReason::Ignored));
            return;
        }
        if !self.ensure_incident(&id, event.target_channel.as_ref()) {
            out.push(dropped(&id, DropReason::NoChannel));
            return;
        }
        self.touch(&id, now, false, out, |cx, st| cx.pd_event(st, event));
    }

    fn on_action(&mut self, now: Timestamp, action: SlackAction, out: &mut Vec<Effect>) {
        let id = action.incident.clone();
        if !self.incidents.contains_key(&id) {
            out.push(Effect::Ephemeral {
                id: EffectId::new(&id, format!("{}/unknown", action.key)),
                incident: id.clone(),
                action: action.key.clone(),
                channel: action.channel.clone(),
                user: action.actor.slack().clone(),
                text: format!(
                    "The bridge has no record of incident {id}, so it did nothing. \
                     Open the incident in PagerDuty to act on it."
                ),
                mentions: Vec::new(),
            });
            out.push(dropped(&id, DropReason::UnknownIncident));
            return;
        }
        self.touch(&id, now, false, out, |cx, st| cx.action(st, action));
    }

    /// Runs `f` on one incident, then its due timers, then keeps the effect index in step.
    fn touch<F>(&mut self, id: &IncidentId, now: Timestamp, tick: bool, out: &mut Vec<Effect>, f: F)
    where
        F: FnOnce(&mut Cx<'_>, &mut IncidentState) -> Option<DropReason>,
    {
        let Some(st) = self.incidents.get_mut(id) else {
            out.push(dropped(id, DropReason::UnknownIncident));
            return;
        };
        let before_state = st.clone();
        let before: BTreeSet<EffectId> = awaited(st).into_iter().collect();
        let start = out.len();
        let mut cx = Cx {
            cfg: &self.config,
            now,
            out,
        };
        let reason = f(&mut cx, st);
        if tick {
            cx.run_due(st);
        }
        cx.prune(st);
        let changed = *st != before_state;
        if let Some(reason) = reason {
            out.push(dropped(id, reason));
        } else if out.len() == start && !changed {
            out.push(dropped(id, DropReason::Unchanged));
        }
        if changed {
            self.changed.insert(id.clone());
        }
        let after: BTreeSet<EffectId> = awaited(st).into_iter().collect();
        for gone in before.difference(&after) {
            self.owners.remove(gone);
        }
        for new in after.difference(&before) {
            self.owners.insert(new.clone(), id.clone());
        }
        self.reindex_timer(id);
    }
}

fn dropped(id: &IncidentId, reason: DropReason) -> Effect {
    Effect::Dropped {
        incident: Some(id.clone()),
        reason,
    }
}

impl IncidentState {
    fn new(id: IncidentId, channel: ChannelId) -> Self {
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
            last_error: None,
            actions_seen: BTreeMap::new(),
            seq: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn status(&self) -> Option<Status> {
        self.info.as_ref().map(|info| info.status)
    }

    /// Applies webhook data unless it is older than what was applied; returns whether it was.
    /// Two events of the same millisecond apply in arrival order: PagerDuty delivers each
    /// incident's events in the order they were generated, and duplicates never get here.
    fn apply_data(&mut self, data: IncidentSnapshot, at: Timestamp) -> bool {
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
    fn apply_read(&mut self, data: IncidentSnapshot, sent_at: Timestamp) -> bool {
        let at = data.as_of.unwrap_or(sent_at);
        self.apply_read_at(data, at)
    }

    /// Applies read data that reflects every change up to `at` (PagerDuty's clock).
    fn apply_read_at(&mut self, data: IncidentSnapshot, at: Timestamp) -> bool {
        if self.data_at.is_some_and(|applied| at < applied) {
            return false;
        }
        self.set_data(data, at);
        true
    }

    fn describe(&self) -> String {
        match &self.info {
            Some(info) => match info.number {
                Some(number) => format!("#{number} {}", info.title),
                None => info.title.clone(),
            },
            None => match &self.title_hint {
                Some(title) => title.clone(),
                None => self.id.to_string(),
            },
        }
    }
}

/// The card as it should look now.
pub(crate) fn view(st: &IncidentState) -> Option<CardView> {
    let info = st.info.as_ref()?;
    let pending = st.action.as_ref().map(|p| {
        let mut text = format!(
            "{}… requested by <@{}>",
            p.kind.progressive(),
            p.actor.slack
        );
        if p.job.failures > 0 || p.job.retry_at.is_some() {
            let why = p.job.last_error.as_deref().unwrap_or("PagerDuty is busy");
            text.push_str(&format!(" (retrying: {why})"));
        }
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
        pending,
        last_error: st.last_error.clone(),
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
enum TimerKind {
    Retry,
    ThreadFlush,
    PendingTimeout,
}

/// The earliest timer of one incident that can fire.
pub(crate) fn next_timer(st: &IncidentState) -> Option<(Timestamp, TimerReason)> {
    let (at, kind) = next_timer_at(st)?;
    let id = st.id.clone();
    let reason = match kind {
        TimerKind::Retry => TimerReason::Retry(id),
        TimerKind::ThreadFlush => TimerReason::ThreadFlush(id),
        TimerKind::PendingTimeout => TimerReason::PendingTimeout(id),
    };
    Some((at, reason))
}

/// True if the incident has a timer that can fire.
pub(crate) fn has_timer(st: &IncidentState) -> bool {
    next_timer_at(st).is_some()
}

/// [`next_timer`] without allocating: of equal times, the first candidate below wins.
fn next_timer_at(st: &IncidentState) -> Option<(Timestamp, TimerKind)> {
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
    ];
    candidates
        .into_iter()
        .filter_map(|(at, kind)| Some((at?, kind)))
        .min_by_key(|(at, _)| *at)
}

/// The context of one input's processing for one incident.
struct Cx<'a> {
    cfg: &'a EngineConfig,
    now: Timestamp,
    out: &'a mut Vec<Effect>,
}

/// The event type an echo of `kind` arrives as.
fn echo_matches(kind: &ActionKind, event: &EchoEvent<'_>) -> bool {
    match (kind, event) {
        (ActionKind::Acknowledge, EchoEvent::Status(IncidentEventType::Acknowledged))
        | (ActionKind::Resolve, EchoEvent::Status(IncidentEventType::Resolved)) => true,
        (
            ActionKind::Escalate | ActionKind::Reassign(_),
            EchoEvent::Status(IncidentEventType::Escalated | IncidentEventType::Reassigned),
        ) => true,
        (ActionKind::AddNote(text), EchoEvent::Note(content)) => text.trim() == content.trim(),
        _ => false,
    }
}

enum EchoEvent<'a> {
    Status(&'a IncidentEventType),
    Note(&'a str),
}

fn names(users: &[PdUserRef]) -> String {
    users
        .iter()
        .map(|u| u.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn secs(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

impl Cx<'_> {
    fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    // ---- PagerDuty events -------------------------------------------------------------------

    fn pd_event(&mut self, st: &mut IncidentState, event: PdEvent) -> Option<DropReason> {
        if st.channel.is_none() {
            st.channel = event.target_channel.clone();
        }
        if st.info.is_none() && st.title_hint.is_none() {
            st.title_hint = event.incident_title.clone();
        }
        let agent = event.agent.clone();
        let reason = match event.kind {
            PdEventKind::Incident { event_type, data } => {
                if !st.apply_data(data, event.occurred_at) {
                    return Some(DropReason::Stale);
                }
                if matches!(
                    event_type,
                    IncidentEventType::Triggered | IncidentEventType::Reopened
                ) {
                    st.bridge_level = None;
                }
                let echo = self.take_echo(st, &EchoEvent::Status(&event_type), agent.as_ref());
                match echo {
                    Some(echo) => self.echo_seen(st, echo),
                    None => {
                        if let Some(line) = status_line(&event_type, st, agent) {
                            self.add_line(st, line);
                        }
                        None
                    }
                }
            }
            PdEventKind::Annotated { content, .. } => {
                let echo = self.take_echo(st, &EchoEvent::Note(&content), agent.as_ref());
                match echo {
                    Some(echo) => self.echo_seen(st, echo),
                    None => {
                        self.add_line(
                            st,
                            TimelineLine {
                                kind: LineKind::Note,
                                actor: agent.map(LineActor::Pd),
                                text: format!("added a note: {content}"),
                            },
                        );
                        None
                    }
                }
            }
            PdEventKind::ResponderAdded { responder, message } => {
                let mut text = format!("requested {} as a responder", responder.name);
                if let Some(message) = message.filter(|m| !m.trim().is_empty()) {
                    text.push_str(&format!(": {message}"));
                }
                self.add_line(
                    st,
                    TimelineLine {
                        kind: LineKind::Responder,
                        actor: agent.map(LineActor::Pd),
                        text,
                    },
                );
                None
            }
            PdEventKind::ResponderReplied { responder, state } => {
                self.add_line(
                    st,
                    TimelineLine {
                        kind: LineKind::Responder,
                        actor: Some(LineActor::Pd(responder)),
                        text: format!("{state} the responder request"),
                    },
                );
                None
            }
            PdEventKind::StatusUpdatePublished { message } => {
                self.add_line(
                    st,
                    TimelineLine {
                        kind: LineKind::StatusUpdate,
                        actor: agent.map(LineActor::Pd),
                        text: format!("published a status update: {message}"),
                    },
                );
                None
            }
            PdEventKind::Other { .. } => Some(DropReason::Ignored),
        };
        self.stop_if_resolved(st);
        if st.info.is_none() && st.hydrate.is_none() {
            st.hydrate = Some(Job::idle());
            self.send_hydrate(st);
        }
        self.sync_card(st);
        reason
    }

    /// Removes and returns the live expected echo that `event` by `agent` matches.
    fn take_echo(
        &mut self,
        st: &mut IncidentState,
        event: &EchoEvent<'_>,
        agent: Option<&PdUserRef>,
    ) -> Option<ExpectedEcho> {
        let agent = agent?;
        let now = self.now;
        let index = st.echoes.iter().position(|echo| {
            echo.expires > now && echo.agent == agent.id && echo_matches(&echo.kind, event)
        })?;
        Some(st.echoes.remove(index))
    }

    /// The bridge's own mutation came back as a webhook.
    fn echo_seen(&mut self, st: &mut IncidentState, echo: ExpectedEcho) -> Option<DropReason> {
        if echo.line_done {
            return Some(DropReason::Echo);
        }
        // PagerDuty confirmed the action before its response came back: it is final now.
        let pending = st.action.take_if(|p| p.key == echo.key);
        let level = pending.as_ref().and_then(|p| p.level);
        if let Some(level) = level {
            st.bridge_level = Some(level);
        }
        if pending.is_some() {
            st.last_error = None;
        }
        let line = action_line(&echo.kind, &echo.slack, st, level);
        self.add_line(st, line);
        None
    }

    // ---- Reconciliation and hydration -------------------------------------------------------

    fn reconcile(
        &mut self,
        st: &mut IncidentState,
        snapshot: IncidentSnapshot,
        as_of: Timestamp,
        target_channel: Option<ChannelId>,
    ) -> Option<DropReason> {
        if st.channel.is_none() {
            st.channel = target_channel;
        }
        let applied = st.apply_read_at(snapshot, as_of);
        self.stop_if_resolved(st);
        // A resolved incident's failed card is posted again only within its retry window.
        let reposting = st.needs_reconcile(self.now) && st.card.post_failed.take().is_some();
        self.sync_card(st);
        (!applied && !reposting && self.out.is_empty()).then_some(DropReason::Stale)
    }

    fn send_hydrate(&mut self, st: &mut IncidentState) {
        let seq = st.next_seq();
        let id = EffectId::new(&st.id, format!("hydrate{seq}"));
        if let Some(job) = st.hydrate.as_mut() {
            job.start(id.clone(), self.now);
        }
        self.emit(Effect::PdRead {
            id,
            incident: st.id.clone(),
            read: PdRead::Incident,
        });
    }

    // ---- Slack actions ----------------------------------------------------------------------

    fn action(&mut self, st: &mut IncidentState, action: SlackAction) -> Option<DropReason> {
        if st.actions_seen.contains_key(&action.key) {
            return Some(DropReason::Duplicate);
        }
        st.actions_seen.insert(action.key.clone(), self.now);
        let what = action.kind.name().replace('_', " ");
        let incident = st.describe();
        let actor = match &action.actor {
            Actor::Unmapped { slack, reason } => {
                let text = format!(
                    "You can't {what} {incident} from Slack: {} {}",
                    reason.reason, reason.how_to_fix
                );
                self.reply(st, &action.key, action.channel.clone(), slack, text);
                return Some(DropReason::Unmapped);
            }
            Actor::Mapped {
                authorized: Err(refusal),
                slack,
                ..
            } => {
                let text = format!(
                    "You may not {what} {incident}: {} {}",
                    refusal.reason, refusal.how_to_fix
                );
                self.reply(st, &action.key, action.channel.clone(), slack, text);
                return Some(DropReason::Unauthorized);
            }
            Actor::Mapped {
                slack,
                pd_user,
                email,
                authorized: Ok(()),
            } => MutationActor {
                slack: slack.clone(),
                pd_user: pd_user.clone(),
                email: email.clone(),
            },
        };
        let slack = actor.slack.clone();
        match (&action.kind, st.status()) {
            (ActionKind::Resolve, Some(Status::Resolved)) => {
                let text = format!("{incident} is already resolved.");
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::AlreadyInState);
            }
            (ActionKind::AddNote(_), _) => {}
            (_, Some(Status::Resolved)) => {
                let text = format!(
                    "{incident} is resolved, and {what} would reopen it in PagerDuty, so the \
                     bridge did not send it. Reopen it in PagerDuty first if that is intended."
                );
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::Resolved);
            }
            (ActionKind::Acknowledge, Some(Status::Acknowledged)) => {
                let text = format!("{incident} is already acknowledged.");
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::AlreadyInState);
            }
            _ => {}
        }
        if let Some(pending) = &st.action {
            if pending.kind == action.kind && pending.actor.slack == slack {
                return Some(DropReason::Duplicate);
            }
            let text = format!(
                "{}… requested by <@{}> is still waiting for PagerDuty. Try again once it is done.",
                pending.kind.progressive(),
                pending.actor.slack
            );
            let mentions = vec![pending.actor.slack.clone()];
            self.reply_mentioning(
                st,
                &action.key,
                action.channel.clone(),
                &slack,
                text,
                mentions,
            );
            return Some(DropReason::Busy);
        }
        let stage = initial_stage(&action.kind);
        st.action = Some(PendingAction {
            key: action.key,
            kind: action.kind,
            actor,
            channel: action.channel,
            stage,
            job: Job::idle(),
            level: None,
            deadline: self.now.saturating_add(self.cfg.pending_timeout),
        });
        self.send_stage(st);
        self.sync_card(st);
        None
    }

    /// Sends the current stage of the pending action.
    fn send_stage(&mut self, st: &mut IncidentState) {
        let incident = st.id.clone();
        let policy = st
            .info
            .as_ref()
            .and_then(|info| info.escalation_policy.as_ref())
            .map(|p| p.id.clone());
        let Some(p) = st.action.as_mut() else {
            return;
        };
        p.job.sends += 1;
        let sends = p.job.sends;
        let key = p.key.clone();
        let effect = match p.stage {
            Stage::ReadIncident => {
                let id = EffectId::new(&incident, format!("{key}/read{sends}"));
                p.job.start(id.clone(), self.now);
                Effect::PdRead {
                    id,
                    incident,
                    read: PdRead::Incident,
                }
            }
            Stage::ReadLevels => {
                let Some(policy) = policy else {
                    self.fail(st, "the incident has no escalation policy".to_owned());
                    return;
                };
                let id = EffectId::new(&incident, format!("{key}/levels{sends}"));
                p.job.start(id.clone(), self.now);
                Effect::PdRead {
                    id,
                    incident,
                    read: PdRead::EscalationLevels { policy },
                }
            }
            Stage::Mutate => {
                let mutation = match &p.kind {
                    ActionKind::Acknowledge => Mutation::Acknowledge,
                    ActionKind::Resolve => Mutation::Resolve,
                    ActionKind::Escalate => Mutation::Escalate {
                        level: p.level.unwrap_or(2),
                    },
                    ActionKind::Reassign(to) => Mutation::Reassign { to: to.clone() },
                    ActionKind::AddNote(content) => Mutation::AddNote {
                        content: content.clone(),
                    },
                };
                let id = EffectId::new(&incident, format!("{key}/{}{sends}", p.kind.name()));
                p.job.start(id.clone(), self.now);
                let echo = ExpectedEcho {
                    key: key.clone(),
                    kind: p.kind.clone(),
                    agent: p.actor.pd_user.clone(),
                    slack: p.actor.slack.clone(),
                    expires: self.now.saturating_add(self.cfg.echo_ttl),
                    line_done: false,
                };
                let actor = p.actor.clone();
                let look_since = p
                    .job
                    .maybe_sent_since
                    .filter(|_| matches!(p.kind, ActionKind::AddNote(_)));
                st.echoes.retain(|e| e.key != key);
                st.echoes.push(echo);
                Effect::PdMutation {
                    id,
                    incident,
                    actor,
                    mutation,
                    look_since,
                }
            }
        };
        self.emit(effect);
    }

    /// The pending action failed: tell its actor and show it on the card.
    fn fail(&mut self, st: &mut IncidentState, error: String) {
        let Some(p) = st.action.take() else {
            return;
        };
        st.echoes.retain(|e| e.key != p.key);
        let what = p.kind.name().replace('_', " ");
        let text = format!("Could not {what} {}: {error}", st.describe());
        st.last_error = Some(format!("{} failed: {error}", capitalize(&what)));
        self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
        self.sync_card(st);
    }

    /// Refuses the pending acknowledge, escalate or reassign once the incident is known to be
    /// resolved: sent now, it would reopen or change a resolved incident. Its effect is no
    /// longer awaited, so a dispatcher that has not sent it yet skips it ([`Engine::awaits`]).
    /// Notes are still added, and a pending resolve completes through its echo or response.
    fn stop_if_resolved(&mut self, st: &mut IncidentState) {
        if st.status() != Some(Status::Resolved) {
            return;
        }
        let Some(p) = &st.action else {
            return;
        };
        if !matches!(
            p.kind,
            ActionKind::Acknowledge | ActionKind::Escalate | ActionKind::Reassign(_)
        ) {
            return;
        }
        let what = p.kind.name();
        let in_flight = p.stage == Stage::Mutate && p.job.inflight.is_some();
        let incident = st.describe();
        let text = if in_flight {
            format!(
                "{incident} was resolved in PagerDuty while your {what} was being sent, so the \
                 bridge stopped it; if it had already reached PagerDuty, check the incident there."
            )
        } else {
            format!(
                "{incident} was resolved in PagerDuty meanwhile, and {what} would reopen it, so \
                 the bridge did not send it."
            )
        };
        self.refuse(st, text);
        self.emit(dropped(&st.id, DropReason::Resolved));
    }

    /// The pending action was refused after a fresh read.
    fn refuse(&mut self, st: &mut IncidentState, text: String) {
        let Some(p) = st.action.take() else {
            return;
        };
        st.echoes.retain(|e| e.key != p.key);
        self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
        self.sync_card(st);
    }

    fn action_done(&mut self, st: &mut IncidentState, outcome: Outcome) -> Option<DropReason> {
        let Some(p) = st.action.as_mut() else {
            return Some(DropReason::UnknownEffect);
        };
        let sent_at = p.job.sent_at;
        if matches!(outcome, Outcome::MaybeSent { .. }) && p.stage == Stage::Mutate {
            // Retried below; a note is sent again only after looking for this attempt. Status
            // changes are retried from a fresh read, which shows whether this one took effect.
            p.job.maybe_sent_since.get_or_insert(sent_at);
        }
        let outcome = as_unsent(outcome);
        match outcome {
            Outcome::RateLimited { retry_after } => {
                p.job.inflight = None;
                p.job.last_error = Some("PagerDuty rate limit".to_owned());
                p.job.retry_at = Some(self.now.saturating_add(retry_after));
                self.sync_card(st);
                return None;
            }
            Outcome::Retryable { error, retry_after } => {
                p.job.inflight = None;
                p.job.failures += 1;
                if p.job.failures >= self.cfg.max_attempts {
                    let error = format!("{error} (gave up after {} attempts)", p.job.failures);
                    self.fail(st, error);
                    return None;
                }
                let delay = self.retry_delay(p.job.failures, retry_after);
                p.job.last_error = Some(error.clone());
                p.job.retry_at = Some(self.now.saturating_add(delay));
                if p.job.failures == 1 {
                    // Tell the actor once; the card shows every further retry.
                    let (key, channel, slack) =
                        (p.key.clone(), p.channel.clone(), p.actor.slack.clone());
                    let what = p.kind.name().replace('_', " ");
                    let text = format!(
                        "PagerDuty did not accept {what} for {} yet ({error}); the bridge is \
                         retrying and the card shows the result.",
                        st.describe()
                    );
                    self.reply(st, &key, channel, &slack, text);
                }
                self.sync_card(st);
                return None;
            }
            Outcome::Permanent { error } => {
                self.fail(st, error);
                return None;
            }
            _ => {}
        }
        let stage = p.stage.clone();
        let kind = p.kind.clone();
        p.job.inflight = None;
        match (stage, outcome) {
            (Stage::ReadIncident, Outcome::PdIncident(fresh)) => {
                let status = fresh.status;
                st.apply_read(fresh, sent_at);
                let incident = st.describe();
                if status == Status::Resolved || st.status() == Some(Status::Resolved) {
                    let what = kind.name();
                    self.refuse(
                        st,
                        format!(
                            "{incident} is resolved in PagerDuty, and {what} would reopen it, \
                             so the bridge did not send it."
                        ),
                    );
                    return Some(DropReason::Resolved);
                }
                if kind == ActionKind::Acknowledge && status == Status::Acknowledged {
                    self.refuse(st, format!("{incident} is already acknowledged."));
                    return Some(DropReason::AlreadyInState);
                }
                if let Some(p) = st.action.as_mut() {
                    p.stage = if kind == ActionKind::Escalate {
                        Stage::ReadLevels
                    } else {
                        Stage::Mutate
                    };
                }
                self.send_stage(st);
                self.sync_card(st);
                None
            }
            (Stage::ReadLevels, Outcome::Levels(_)) if st.status() == Some(Status::Resolved) => {
                let incident = st.describe();
                self.refuse(
                    st,
                    format!(
                        "{incident} was resolved meanwhile, and escalate would reopen it, so \
                         the bridge did not send it."
                    ),
                );
                Some(DropReason::Resolved)
            }
            (Stage::ReadLevels, Outcome::Levels(levels)) => {
                let current = levels.current.or(st.bridge_level).unwrap_or(1);
                let target = current + 1;
                if target > levels.max {
                    let incident = st.describe();
                    self.refuse(
                        st,
                        format!(
                            "{incident} is already at the top escalation level ({current} of {}), \
                             so there is no level to escalate to.",
                            levels.max
                        ),
                    );
                    return Some(DropReason::TopLevel);
                }
                if let Some(p) = st.action.as_mut() {
                    p.level = Some(target);
                    p.stage = Stage::Mutate;
                }
                self.send_stage(st);
                self.sync_card(st);
                None
            }
            (Stage::Mutate, outcome @ (Outcome::Done | Outcome::PdIncident(_))) => {
                self.succeed(st, outcome);
                None
            }
            (Stage::Mutate, Outcome::AlreadyInState) => {
                let p = st.action.take()?;
                st.echoes.retain(|e| e.key != p.key);
                if let Some(status) = target_status(&p.kind) {
                    synthesize_status(st, status, sent_at);
                }
                st.last_error = None;
                let text = format!(
                    "PagerDuty reports {} already in that state; nothing changed.",
                    st.describe()
                );
                self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
                self.sync_card(st);
                Some(DropReason::AlreadyInState)
            }
            (_, other) => {
                let error = format!(
                    "unexpected answer from PagerDuty ({})",
                    outcome_name(&other)
                );
                self.fail(st, error);
                None
            }
        }
    }

    /// PagerDuty accepted the pending mutation.
    fn succeed(&mut self, st: &mut IncidentState, outcome: Outcome) {
        let Some(p) = st.action.take() else {
            return;
        };
        let sent_at = p.job.sent_at;
        match outcome {
            Outcome::PdIncident(fresh) => {
                st.apply_read(fresh, sent_at);
            }
            _ => {
                if let Some(status) = target_status(&p.kind) {
                    synthesize_status(st, status, sent_at);
                }
            }
        }
        if let Some(level) = p.level {
            st.bridge_level = Some(level);
        }
        st.last_error = None;
        for echo in st.echoes.iter_mut().filter(|e| e.key == p.key) {
            echo.line_done = true;
        }
        let line = action_line(&p.kind, &p.actor.slack, st, p.level);
        self.add_line(st, line);
        self.sync_card(st);
    }

    // ---- Effect outcomes --------------------------------------------------------------------

    fn effect_done(
        &mut self,
        st: &mut IncidentState,
        id: &EffectId,
        outcome: Outcome,
    ) -> Option<DropReason> {
        if st.card.inflight.as_ref() == Some(id) {
            return self.card_done(st, outcome);
        }
        if st.thread.inflight.as_ref().is_some_and(|(t, _)| t == id) {
            return self.thread_done(st, outcome);
        }
        if st
            .action
            .as_ref()
            .is_some_and(|p| p.job.inflight.as_ref() == Some(id))
        {
            return self.action_done(st, outcome);
        }
        if st
            .hydrate
            .as_ref()
            .is_some_and(|j| j.inflight.as_ref() == Some(id))
        {
            return self.hydrate_done(st, outcome);
        }
        Some(DropReason::UnknownEffect)
    }

    fn card_done(&mut self, st: &mut IncidentState, outcome: Outcome) -> Option<DropReason> {
        st.card.inflight = None;
        let posting = st.card.ts.is_none();
        match outcome {
            Outcome::Posted { ts } if posting => {
                st.card.ts = Some(ts);
                st.card.failures = 0;
                st.card.first_post_at = None;
                st.card.maybe_posted = false;
                self.sync_card(st);
                // Lines that waited for the card go out now if their window has passed.
                self.flush_thread(st);
                return None;
            }
            Outcome::RateLimited { retry_after } => {
                st.card.shown = None;
                st.card.retry_at = Some(self.now.saturating_add(retry_after));
            }
            Outcome::Permanent { error } => {
                st.card.shown = None;
                if !st.card.minimal {
                    // Slack refused the card: show the minimal one at once, so the incident
                    // does not go silent (or stay stale) whatever in its content was refused.
                    st.card.minimal = true;
                    self.sync_card(st);
                    return Some(DropReason::Failed);
                }
                // The minimal card failed too, so the content was not the cause (a channel
                // the bot cannot post in): the next attempt shows the full card again.
                st.card.minimal = false;
                // Nothing is shown; the next change (or the reconciler) tries again.
                if posting {
                    st.card.post_failed = Some(error);
                }
                return Some(DropReason::Failed);
            }
            Outcome::Retryable { retry_after, .. } => {
                st.card.failures += 1;
                st.card.shown = None;
                let delay = self.retry_delay(st.card.failures, retry_after);
                st.card.retry_at = Some(self.now.saturating_add(delay));
            }
            Outcome::MaybeSent { .. } => {
                // The card may exist: the next post looks for it first. An update is idempotent.
                st.card.maybe_posted |= posting;
                st.card.failures += 1;
                st.card.shown = None;
                let delay = self.retry_delay(st.card.failures, None);
                st.card.retry_at = Some(self.now.saturating_add(delay));
            }
            _ if posting => {
                // A post that reports success without a `ts` may have posted a card the engine
                // cannot update; posting again could make a second one, so wait for the
                // reconciler instead.
                st.card.shown = None;
                st.card.post_failed = Some("the post returned no message ts".to_owned());
                return Some(DropReason::Failed);
            }
            _ => st.card.failures = 0,
        }
        self.sync_card(st);
        None
    }

    fn thread_done(&mut self, st: &mut IncidentState, outcome: Outcome) -> Option<DropReason> {
        let Some((_, lines)) = st.thread.inflight.take() else {
            return Some(DropReason::UnknownEffect);
        };
        // A thread message that may have been posted is posted again: its lines may then show
        // twice, which beats losing them.
        match as_unsent(outcome) {
            Outcome::RateLimited { retry_after } => {
                self.requeue_lines(st, lines, retry_after);
                None
            }
            Outcome::Retryable { retry_after, .. } => {
                st.thread.failures += 1;
                if st.thread.failures >= self.cfg.max_attempts {
                    st.thread.failures = 0;
                    return Some(DropReason::Failed);
                }
                let delay = self.retry_delay(st.thread.failures, retry_after);
                self.requeue_lines(st, lines, delay);
                None
            }
            Outcome::Permanent { .. } => {
                st.thread.failures = 0;
                Some(DropReason::Failed)
            }
            _ => {
                st.thread.failures = 0;
                None
            }
        }
    }

    /// The wait before retrying after `failures` failed attempts: the configured backoff, but
    /// never sooner than the platform's `Retry-After`.
    fn retry_delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.cfg.retry_delay(failures, retry_after)
    }

    fn requeue_lines(
        &mut self,
        st: &mut IncidentState,
        mut lines: Vec<TimelineLine>,
        delay: Duration,
    ) {
        lines.append(&mut st.thread.buffer);
        st.thread.buffer = lines;
        let at = self.now.saturating_add(delay);
        st.thread.flush_at = Some(st.thread.flush_at.map_or(at, |f| f.max(at)));
    }

    fn hydrate_done(&mut self, st: &mut IncidentState, outcome: Outcome) -> Option<DropReason> {
        let Some(job) = st.hydrate.as_mut() else {
            return Some(DropReason::UnknownEffect);
        };
        job.inflight = None;
        let sent_at = job.sent_at;
        // A read changes nothing in PagerDuty: repeating it is always safe.
        match as_unsent(outcome) {
            Outcome::PdIncident(fresh) => {
                st.hydrate = None;
                st.apply_read(fresh, sent_at);
                self.stop_if_resolved(st);
                self.sync_card(st);
                None
            }
            Outcome::RateLimited { retry_after } => {
                job.retry_at = Some(self.now.saturating_add(retry_after));
                None
            }
            Outcome::Retryable { retry_after, .. } if job.failures + 1 < self.cfg.max_attempts => {
                job.failures += 1;
                let delay = self.retry_delay(job.failures, retry_after);
                job.retry_at = Some(self.now.saturating_add(delay));
                None
            }
            _ => {
                st.hydrate = None;
                Some(DropReason::Failed)
            }
        }
    }

    // ---- Slack output -----------------------------------------------------------------------

    /// Posts the card, or updates it to the current view, unless a call is in flight or waiting.
    fn sync_card(&mut self, st: &mut IncidentState) {
        let Some(channel) = st.channel.clone() else {
            return;
        };
        let Some(card) = view(st) else {
            return;
        };
        if st.card.inflight.is_some() || st.card.retry_at.is_some() {
            return;
        }
        match st.card.ts.clone() {
            None => {
                if st.card.post_failed.is_some() {
                    return;
                }
                let seq = st.next_seq();
                let id = EffectId::new(&st.id, format!("card{seq}"));
                st.card.inflight = Some(id.clone());
                st.card.shown = Some(card.clone());
                let first = *st.card.first_post_at.get_or_insert(self.now);
                // A post that may have reached Slack is never repeated without looking for it.
                let look_since = st.card.maybe_posted.then_some(first);
                self.emit(Effect::PostCard {
                    id,
                    channel,
                    card,
                    look_since,
                });
            }
            Some(ts) => {
                if st.card.shown.as_ref() == Some(&card) {
                    return;
                }
                let seq = st.next_seq();
                let id = EffectId::new(&st.id, format!("card{seq}"));
                st.card.inflight = Some(id.clone());
                st.card.shown = Some(card.clone());
                self.emit(Effect::UpdateCard {
                    id,
                    channel,
                    ts,
                    card,
                });
            }
        }
    }

    fn add_line(&mut self, st: &mut IncidentState, line: TimelineLine) {
        st.thread.buffer.push(line);
        if st.thread.flush_at.is_none() {
            st.thread.flush_at = Some(self.now.saturating_add(self.cfg.coalesce_window));
        }
    }

    fn flush_thread(&mut self, st: &mut IncidentState) {
        let (Some(channel), Some(thread_ts)) = (st.channel.clone(), st.card.ts.clone()) else {
            return;
        };
        if st.thread.inflight.is_some() || st.thread.flush_at.is_none_or(|at| at > self.now) {
            return;
        }
        st.thread.flush_at = None;
        if st.thread.buffer.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut st.thread.buffer);
        let seq = st.next_seq();
        let id = EffectId::new(&st.id, format!("thread{seq}"));
        st.thread.inflight = Some((id.clone(), lines.clone()));
        self.emit(Effect::PostThread {
            id,
            channel,
            thread_ts,
            lines,
        });
    }

    /// Answers one click privately. The reply is fire-and-forget: the engine does not await
    /// its outcome, and the caller retries it on its own ([`EngineConfig::retry_delay`], up to
    /// [`EngineConfig::max_attempts`]), so replies never grow the incident's state.
    fn reply(
        &mut self,
        st: &mut IncidentState,
        action: &ActionKey,
        channel: Option<ChannelId>,
        user: &SlackUserId,
        text: String,
    ) {
        self.reply_mentioning(st, action, channel, user, text, Vec::new());
    }

    /// [`Cx::reply`] whose text mentions `mentions` on purpose (everything else in it is shown
    /// as written, never as a mention).
    fn reply_mentioning(
        &mut self,
        st: &mut IncidentState,
        action: &ActionKey,
        channel: Option<ChannelId>,
        user: &SlackUserId,
        text: String,
        mentions: Vec<SlackUserId>,
    ) {
        let seq = st.next_seq();
        let id = EffectId::new(&st.id, format!("{action}/reply{seq}"));
        self.emit(Effect::Ephemeral {
            id,
            incident: st.id.clone(),
            action: action.clone(),
            channel,
            user: user.clone(),
            text,
            mentions,
        });
    }

    // ---- Timers -----------------------------------------------------------------------------

    /// Fires every timer of `st` that is due. Only [`Input::Tick`] fires timers, so an input
    /// never causes effects on behalf of another one.
    fn run_due(&mut self, st: &mut IncidentState) {
        let now = self.now;
        if st.card.retry_at.is_some_and(|at| at <= now) {
            st.card.retry_at = None;
        }
        if st
            .hydrate
            .as_ref()
            .and_then(|j| j.retry_at)
            .is_some_and(|at| at <= now)
        {
            self.send_hydrate(st);
        }
        if let Some(p) = &st.action {
            if p.deadline <= now {
                let waited = secs(self.cfg.pending_timeout);
                self.fail(st, format!("PagerDuty did not confirm within {waited}"));
            } else if p.job.retry_at.is_some_and(|at| at <= now) {
                let restart = initial_stage(&p.kind);
                if let Some(p) = st.action.as_mut() {
                    p.stage = restart;
                }
                self.send_stage(st);
            }
        }
        self.sync_card(st);
        self.flush_thread(st);
    }

    /// Forgets expired echoes and action keys, and the oldest action keys over the capacity.
    fn prune(&mut self, st: &mut IncidentState) {
        let now = self.now;
        st.echoes.retain(|e| e.expires > now);
        let ttl = self.cfg.dedupe_ttl;
        st.actions_seen.retain(|_, at| at.saturating_add(ttl) > now);
        while st.actions_seen.len() > self.cfg.action_dedupe_capacity {
            let oldest = st
                .actions_seen
                .iter()
                .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => st.actions_seen.remove(&key),
                None => break,
            };
        }
    }
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

    fn start(&mut self, id: EffectId, now: Timestamp) {
        self.inflight = Some(id);
        self.sent_at = now;
        self.retry_at = None;
    }
}

fn initial_stage(kind: &ActionKind) -> Stage {
    match kind {
        ActionKind::Acknowledge | ActionKind::Escalate | ActionKind::Reassign(_) => {
            Stage::ReadIncident
        }
        ActionKind::AddNote(_) | ActionKind::Resolve => Stage::Mutate,
    }
}

fn target_status(kind: &ActionKind) -> Option<Status> {
    match kind {
        ActionKind::Acknowledge => Some(Status::Acknowledged),
        ActionKind::Resolve => Some(Status::Resolved),
        _ => None,
    }
}

/// Applies a status PagerDuty confirmed without returning the incident (so without a time on
/// PagerDuty's clock): as of the data already applied, so that the caller's clock, which may
/// run ahead of PagerDuty's, never makes later events look stale.
fn synthesize_status(st: &mut IncidentState, status: Status, sent_at: Timestamp) {
    if let Some(mut info) = st.info.clone() {
        info.status = status;
        info.as_of = None;
        if status == Status::Resolved {
            info.assignees.clear();
        }
        let at = st.data_at.unwrap_or(sent_at);
        st.apply_read_at(info, at);
    }
}

/// The outcome with "maybe sent" read as an ordinary retryable failure, for calls that are safe
/// to repeat or whose caller has already noted that the attempt may have taken effect.
fn as_unsent(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::MaybeSent { error } => Outcome::Retryable {
            error,
            retry_after: None,
        },
        other => other,
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Posted { .. } => "posted",
        Outcome::Done => "done",
        Outcome::PdIncident(_) => "incident",
        Outcome::Levels(_) => "levels",
        Outcome::Retryable { .. } => "retryable",
        Outcome::MaybeSent { .. } => "maybe sent",
        Outcome::RateLimited { .. } => "rate limited",
        Outcome::Permanent { .. } => "permanent",
        Outcome::AlreadyInState => "already in state",
    }
}

/// The thread line for an incident event by someone in PagerDuty, if it is worth a line.
fn status_line(
    event_type: &IncidentEventType,
    st: &IncidentState,
    agent: Option<PdUserRef>,
) -> Option<TimelineLine> {
    let assignees = st
        .info
        .as_ref()
        .map(|info| names(&info.assignees))
        .unwrap_or_default();
    let (kind, text) = match event_type {
        IncidentEventType::Acknowledged => (LineKind::Acknowledged, "acknowledged".to_owned()),
        IncidentEventType::Unacknowledged => (
            LineKind::Unacknowledged,
            "Acknowledgement timed out; the incident is triggered again".to_owned(),
        ),
        IncidentEventType::Resolved => (LineKind::Resolved, "resolved".to_owned()),
        IncidentEventType::Reopened => (LineKind::Reopened, "reopened".to_owned()),
        IncidentEventType::Escalated => (LineKind::Escalated, format!("escalated to {assignees}")),
        IncidentEventType::Reassigned => {
            (LineKind::Reassigned, format!("reassigned to {assignees}"))
        }
        IncidentEventType::Delegated => {
            let policy = st
                .info
                .as_ref()
                .and_then(|info| info.escalation_policy.as_ref())
                .map(|p| p.name.clone())
                .unwrap_or_default();
            (LineKind::Reassigned, format!("delegated to {policy}"))
        }
        IncidentEventType::Triggered
        | IncidentEventType::PriorityUpdated
        | IncidentEventType::Other(_) => return None,
    };
    // An acknowledgement timeout is PagerDuty's doing, whoever the event names.
    let agent = agent.filter(|_| kind != LineKind::Unacknowledged);
    Some(TimelineLine {
        kind,
        actor: agent.map(LineActor::Pd),
        text,
    })
}

/// The thread line for an action taken from Slack, attributed to the human who clicked.
fn action_line(
    kind: &ActionKind,
    slack: &SlackUserId,
    st: &IncidentState,
    level: Option<u32>,
) -> TimelineLine {
    let assignee_name = |to: &PdUserId| {
        st.info
            .as_ref()
            .and_then(|info| info.assignees.iter().find(|a| &a.id == to))
            .map_or_else(|| to.to_string(), |a| a.name.clone())
    };
    let (line_kind, text) = match kind {
        ActionKind::Acknowledge => (LineKind::Acknowledged, "acknowledged".to_owned()),
        ActionKind::Resolve => (LineKind::Resolved, "resolved".to_owned()),
        ActionKind::Escalate => (
            LineKind::Escalated,
            match level {
                Some(level) => format!("escalated to level {level}"),
                None => "escalated".to_owned(),
            },
        ),
        ActionKind::Reassign(to) => (
            LineKind::Reassigned,
            format!("reassigned to {}", assignee_name(to)),
        ),
        ActionKind::AddNote(content) => (LineKind::Note, format!("added a note: {content}")),
    };
    TimelineLine {
        kind: line_kind,
        actor: Some(LineActor::Slack(slack.clone())),
        text,
    }
}
