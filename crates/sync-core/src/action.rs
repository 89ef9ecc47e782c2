//! The action pipeline: one Slack action from click through fresh read, mutation and echo.

use ids::{ChannelId, PriorityId, SlackUserId};

use crate::cx::{Cx, as_unsent, dropped};
use crate::state::{ExpectedEcho, Job, KnownLevels, PendingAction, Stage, initial_stage};
use crate::text::{self, action_line};
use crate::{
    ActionKey, ActionKind, Actor, DropReason, Effect, EffectId, IncidentEventType, IncidentState,
    Mutation, MutationActor, Named, Outcome, PdRead, PdUserRef, SlackAction, Status, Timestamp,
    Urgency,
};

impl Cx<'_> {
    pub(crate) fn action(
        &mut self,
        st: &mut IncidentState,
        action: SlackAction,
    ) -> Option<DropReason> {
        if st.actions_seen.contains_key(&action.key) {
            return Some(DropReason::Duplicate);
        }
        st.actions_seen.insert(action.key.clone(), self.now);
        let what = text::verb(&action.kind);
        let incident = st.describe();
        let actor = match &action.actor {
            Actor::Unmapped { slack, reason } => {
                let text = text::unmapped(&what, &incident, &reason.reason, &reason.how_to_fix);
                self.reply(st, &action.key, action.channel.clone(), slack, text);
                return Some(DropReason::Unmapped);
            }
            Actor::Mapped {
                authorized: Err(refusal),
                slack,
                ..
            } => {
                let text =
                    text::unauthorized(&what, &incident, &refusal.reason, &refusal.how_to_fix);
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
                let text = text::already_resolved(&incident);
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::AlreadyInState);
            }
            (ActionKind::AddNote(_), _) => {}
            (ActionKind::Snooze(_), Some(Status::Triggered)) => {
                let text = text::snooze_needs_ack(&incident);
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::AlreadyInState);
            }
            (
                ActionKind::ChangeUrgency(_)
                | ActionKind::Snooze(_)
                | ActionKind::ChangePriority { .. },
                Some(Status::Resolved),
            ) => {
                let text = text::resolved_no_more_actions(&incident, &what);
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::Resolved);
            }
            (_, Some(Status::Resolved)) => {
                let text = text::would_reopen(&incident, &what);
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::Resolved);
            }
            (ActionKind::Acknowledge, Some(Status::Acknowledged)) => {
                let text = text::already_acknowledged(&incident);
                self.reply(st, &action.key, action.channel.clone(), &slack, text);
                return Some(DropReason::AlreadyInState);
            }
            _ => {}
        }
        if let Some(pending) = &st.action {
            if pending.kind == action.kind && pending.actor.slack == slack {
                return Some(DropReason::Duplicate);
            }
            let text = text::busy(&pending.kind, &pending.actor.slack);
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
    pub(crate) fn send_stage(&mut self, st: &mut IncidentState) {
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
                    self.fail(st, text::no_escalation_policy());
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
                    ActionKind::ChangeUrgency(urgency) => {
                        Mutation::ChangeUrgency { urgency: *urgency }
                    }
                    ActionKind::Snooze(minutes) => Mutation::Snooze { minutes: *minutes },
                    ActionKind::ChangePriority { to, .. } => Mutation::ChangePriority {
                        priority: to.id.clone(),
                    },
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
    pub(crate) fn fail(&mut self, st: &mut IncidentState, error: String) {
        let Some(p) = st.action.take() else {
            return;
        };
        st.echoes.retain(|e| e.key != p.key);
        let what = text::verb(&p.kind);
        let text = text::could_not(&what, &st.describe(), &error);
        st.last_error = Some(text::failed(&what, &error));
        self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
        self.sync_card(st);
    }

    /// Refuses the pending acknowledge, escalate or reassign once the incident is known to be
    /// resolved: sent now, it would reopen or change a resolved incident. Its effect is no
    /// longer awaited, so a dispatcher that has not sent it yet skips it ([`Engine::awaits`]).
    /// Notes are still added, and a pending resolve completes through its echo or response.
    ///
    /// [`Engine::awaits`]: crate::Engine::awaits
    pub(crate) fn stop_if_resolved(&mut self, st: &mut IncidentState) {
        if st.status() != Some(Status::Resolved) {
            return;
        }
        let Some(p) = &st.action else {
            return;
        };
        if !matches!(
            p.kind,
            ActionKind::Acknowledge
                | ActionKind::Escalate
                | ActionKind::Reassign(_)
                | ActionKind::ChangeUrgency(_)
                | ActionKind::Snooze(_)
                | ActionKind::ChangePriority { .. }
        ) {
            return;
        }
        let what = p.kind.name();
        let in_flight = p.stage == Stage::Mutate && p.job.inflight.is_some();
        let incident = st.describe();
        let text = if in_flight {
            text::resolved_while_sending(&incident, what)
        } else {
            text::resolved_meanwhile(&incident, what)
        };
        self.refuse(st, text);
        self.emit(dropped(&st.id, DropReason::Resolved));
    }

    /// The pending action was refused after a fresh read.
    pub(crate) fn refuse(&mut self, st: &mut IncidentState, text: String) {
        let Some(p) = st.action.take() else {
            return;
        };
        st.echoes.retain(|e| e.key != p.key);
        self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
        self.sync_card(st);
    }

    pub(crate) fn action_done(
        &mut self,
        st: &mut IncidentState,
        outcome: Outcome,
    ) -> Option<DropReason> {
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
                p.job.last_error = Some(text::rate_limited());
                p.job.retry_at = Some(self.now.saturating_add(retry_after));
                self.sync_card(st);
                return None;
            }
            Outcome::Retryable { error, retry_after } => {
                p.job.inflight = None;
                p.job.failures += 1;
                if p.job.failures >= self.cfg.max_attempts {
                    let error = text::gave_up(&error, p.job.failures);
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
                    let what = text::verb(&p.kind);
                    let text = text::retrying(&what, &st.describe(), &error);
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
                    let text = if matches!(
                        kind,
                        ActionKind::ChangeUrgency(_)
                            | ActionKind::Snooze(_)
                            | ActionKind::ChangePriority { .. }
                    ) {
                        text::resolved_no_more_actions(&incident, what)
                    } else {
                        text::resolved_in_pagerduty(&incident, what)
                    };
                    self.refuse(st, text);
                    return Some(DropReason::Resolved);
                }
                if matches!(kind, ActionKind::Snooze(_)) && status != Status::Acknowledged {
                    self.refuse(st, text::snooze_needs_ack(&incident));
                    return Some(DropReason::AlreadyInState);
                }
                if kind == ActionKind::Acknowledge && status == Status::Acknowledged {
                    self.refuse(st, text::already_acknowledged(&incident));
                    return Some(DropReason::AlreadyInState);
                }
                let current = st.info.as_ref().and_then(|i| i.priority.clone());
                if let Some(p) = st.action.as_mut()
                    && let ActionKind::ChangePriority { from, .. } = &mut p.kind
                {
                    // The thread line names the priority the change replaced.
                    *from = current.map(|c| c.name);
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
                self.refuse(st, text::resolved_before_escalate(&incident));
                Some(DropReason::Resolved)
            }
            (Stage::ReadLevels, Outcome::Levels(levels)) => {
                let current = levels.current.or(st.bridge_level).unwrap_or(1);
                let target = current + 1;
                st.levels = Some(KnownLevels {
                    policy: st
                        .info
                        .as_ref()
                        .and_then(|i| i.escalation_policy.as_ref())
                        .map(|e| e.id.clone()),
                    current,
                    max: levels.max,
                });
                if target > levels.max {
                    let incident = st.describe();
                    self.refuse(st, text::top_level(&incident, current, levels.max));
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
                let text = text::already_in_state(&st.describe());
                self.reply(st, &p.key, p.channel.clone(), &p.actor.slack, text);
                self.sync_card(st);
                Some(DropReason::AlreadyInState)
            }
            (_, other) => {
                let error = text::unexpected_answer(&other);
                self.fail(st, error);
                None
            }
        }
    }

    /// PagerDuty accepted the pending mutation.
    pub(crate) fn succeed(&mut self, st: &mut IncidentState, outcome: Outcome) {
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
        if let ActionKind::ChangeUrgency(urgency) = p.kind {
            synthesize_urgency(st, urgency, sent_at);
        }
        if let ActionKind::ChangePriority { to, .. } = &p.kind {
            synthesize_priority(st, to, sent_at);
        }
        if let ActionKind::Snooze(minutes) = p.kind {
            let until = self
                .now
                .saturating_add(std::time::Duration::from_secs(u64::from(minutes) * 60));
            st.snoozed = Some(crate::SnoozedView {
                by: p.actor.slack.clone(),
                until,
            });
        }
        if let Some(level) = p.level {
            st.bridge_level = Some(level);
            if let Some(known) = st.levels.as_mut() {
                known.current = level;
            }
        }
        if matches!(p.kind, ActionKind::Reassign(_)) {
            // A reassignment may leave the escalation path: the level is unknown again.
            st.levels = None;
        }
        st.last_error = None;
        for echo in st.echoes.iter_mut().filter(|e| e.key == p.key) {
            echo.line_done = true;
        }
        let line = action_line(&p.kind, &p.actor.slack, st.info.as_ref(), p.level);
        self.add_line(st, line);
        self.sync_card(st);
    }

    /// Removes and returns the live expected echo that `event` by `agent` matches.
    pub(crate) fn take_echo(
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
    pub(crate) fn echo_seen(
        &mut self,
        st: &mut IncidentState,
        echo: ExpectedEcho,
    ) -> Option<DropReason> {
        if echo.line_done {
            return Some(DropReason::Echo);
        }
        // PagerDuty confirmed the action before its response came back: it is final now.
        let pending = st.action.take_if(|p| p.key == echo.key);
        let level = pending.as_ref().and_then(|p| p.level);
        if let Some(level) = level {
            st.bridge_level = Some(level);
            if let Some(known) = st.levels.as_mut() {
                known.current = level;
            }
        }
        if pending.is_some() {
            st.last_error = None;
        }
        let line = action_line(&echo.kind, &echo.slack, st.info.as_ref(), level);
        self.add_line(st, line);
        None
    }

    /// Answers one click privately. The reply is fire-and-forget: the engine does not await
    /// its outcome, and the caller retries it on its own ([`EngineConfig::retry_delay`], up to
    /// [`EngineConfig::max_attempts`]), so replies never grow the incident's state.
    ///
    /// [`EngineConfig::retry_delay`]: crate::EngineConfig::retry_delay
    /// [`EngineConfig::max_attempts`]: crate::EngineConfig::max_attempts
    pub(crate) fn reply(
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
    pub(crate) fn reply_mentioning(
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
}

pub(crate) enum EchoEvent<'a> {
    Status(&'a IncidentEventType),
    Note(&'a str),
}

/// The event type an echo of `kind` arrives as.
pub(crate) fn echo_matches(kind: &ActionKind, event: &EchoEvent<'_>) -> bool {
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

pub(crate) fn target_status(kind: &ActionKind) -> Option<Status> {
    match kind {
        ActionKind::Acknowledge => Some(Status::Acknowledged),
        ActionKind::Resolve => Some(Status::Resolved),
        _ => None,
    }
}

/// Shows an urgency PagerDuty confirmed, when the data applied does not show it yet (no
/// webhook follows an urgency change, and its answer may not be newer than the last event on
/// PagerDuty's whole-second clock): as of the data already applied, like [`synthesize_status`].
fn synthesize_urgency(st: &mut IncidentState, urgency: Urgency, sent_at: Timestamp) {
    if let Some(mut info) = st.info.clone().filter(|i| i.urgency != Some(urgency)) {
        info.urgency = Some(urgency);
        info.as_of = None;
        let at = st.data_at.unwrap_or(sent_at);
        st.apply_read_at(info, at);
    }
}

/// Shows a priority PagerDuty confirmed before its `incident.priority_updated` webhook
/// arrives, as of the data already applied, like [`synthesize_urgency`].
fn synthesize_priority(st: &mut IncidentState, to: &Named<PriorityId>, sent_at: Timestamp) {
    if let Some(mut info) = st
        .info
        .clone()
        .filter(|i| i.priority.as_ref().map(|p| &p.id) != Some(&to.id))
    {
        info.priority = Some(to.clone());
        info.as_of = None;
        let at = st.data_at.unwrap_or(sent_at);
        st.apply_read_at(info, at);
    }
}

/// Applies a status PagerDuty confirmed without returning the incident (so without a time on
/// PagerDuty's clock): as of the data already applied, so that the caller's clock, which may
/// run ahead of PagerDuty's, never makes later events look stale.
pub(crate) fn synthesize_status(st: &mut IncidentState, status: Status, sent_at: Timestamp) {
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
