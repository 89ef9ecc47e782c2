//! The engine: inputs in, effects out.

use std::collections::{BTreeMap, BTreeSet};

use ids::{ChannelId, IncidentId};

use crate::cx::{Cx, dropped};
use crate::state::{awaited, next_timer, next_timer_at};
use crate::text;
use crate::{
    DropReason, Effect, EffectId, EngineConfig, EngineSnapshot, Error, IncidentState, Input,
    PdEvent, PdEventKind, SlackAction, TimerReason, Timestamp,
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
    #[must_use = "a PdMutation the engine no longer awaits must be skipped"]
    pub fn awaits(&self, id: &EffectId) -> bool {
        self.owners.contains_key(id)
    }

    /// The incidents whose state the last call to [`Engine::handle`] changed (created
    /// included), in id order: the rows a server that stores one row per incident must write.
    #[must_use = "persist these incidents with the effects, or a restart loses the change"]
    pub fn changed_incidents(&self) -> impl Iterator<Item = &IncidentId> {
        self.changed.iter()
    }

    /// The earliest time at which [`Input::Tick`] has work to do, and for what.
    ///
    /// Of several timers due at the same time, the one of the smallest incident id is returned.
    #[must_use = "tick at this time, or retries, flushes and timeouts never fire"]
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
    #[must_use = "the effects must be persisted and carried out"]
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
            Input::Declared(declared) => {
                let id = declared.incident.clone();
                if !self.ensure_incident(&id, declared.target_channel.as_ref()) {
                    out.push(dropped(&id, DropReason::NoChannel));
                    return out;
                }
                self.touch(&id, now, false, &mut out, |cx, st| {
                    cx.declared(st, declared)
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
        if let Some(change) = &event.change_key {
            keys.push(format!("change:{change}"));
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
                text: text::unknown_incident(&id),
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
        cx.sync_reminders(st);
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
