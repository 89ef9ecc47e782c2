//! One incident's coordinator: routes an input or an outcome to the sub-machine it belongs to.

use ids::ChannelId;

use crate::action::EchoEvent;
use crate::cx::Cx;
use crate::state::Job;
use crate::text::{self, status_line};
use crate::{
    DropReason, EffectId, IncidentEventType, IncidentSnapshot, IncidentState, LineActor, LineKind,
    Outcome, PdEvent, PdEventKind, TimelineLine, Timestamp,
};

impl Cx<'_> {
    pub(crate) fn pd_event(
        &mut self,
        st: &mut IncidentState,
        event: PdEvent,
    ) -> Option<DropReason> {
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
                if matches!(
                    event_type,
                    IncidentEventType::Triggered
                        | IncidentEventType::Reopened
                        | IncidentEventType::Reassigned
                ) {
                    // The incident may have left the level last read: it is unknown again.
                    st.levels = None;
                }
                if st.status() != Some(crate::Status::Acknowledged)
                    || event_type == IncidentEventType::Unacknowledged
                {
                    // Un-acknowledged, re-triggered or resolved: the snooze is over.
                    st.snoozed = None;
                }
                let echo = self.take_echo(st, &EchoEvent::Status(&event_type), agent.as_ref());
                match echo {
                    Some(echo) => self.echo_seen(st, echo),
                    None => {
                        if let Some(line) = status_line(&event_type, st.info.as_ref(), agent) {
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
                                text: text::note_added(&content),
                            },
                        );
                        None
                    }
                }
            }
            PdEventKind::ResponderAdded { responder, message } => {
                let text = text::responder_requested(&responder.name, message);
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
                        text: text::responder_replied(&state),
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
                        text: text::status_update_published(&message),
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

    pub(crate) fn reconcile(
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

    pub(crate) fn effect_done(
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

    /// Forgets expired echoes and action keys, and the oldest action keys over the capacity.
    pub(crate) fn prune(&mut self, st: &mut IncidentState) {
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
