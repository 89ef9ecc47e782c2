//! Property tests: random sequences of webhooks (duplicated, reordered), clicks by mapped,
//! unmapped and unauthorized users, effect outcomes (including timeouts that did happen),
//! ticks and clock jitter, run against a small simulated PagerDuty and Slack.
//!
//! `PROPTEST_CASES` scales every property (the default run has 10,000+ cases in total).
//!
//! Where each behaviour of issue 4 is checked as a property:
//!
//! 1. PagerDuty is the system of record: after settling, every card shows PagerDuty's status
//!    and no pending action (`check_settled`).
//! 2. No echo loops: webhooks never cause mutations; Slack-attributed lines never outnumber
//!    the changes the bridge made; a note line never appears more often than the note exists.
//! 3. Idempotency and order: the shown status is never older than the newest delivered event
//!    (`check_not_stale`, `newest_event_wins`); redelivered webhooks are part of the mix.
//! 4. One card per incident: no second post, never two posts or two card calls in flight.
//! 5. Attribution: every mutation carries the one mapped, authorized actor.
//! 6. Race policy: status-changing mutations follow a fresh read that was not resolved and are
//!    never sent while the engine knows the incident resolved; a resubmitted action key yields
//!    exactly `Dropped(Duplicate)`.
//! 7. Escalation: exactly one above the level read (or last set), never past the top.
//! 8. Failures: permanent PagerDuty failures reach the actor; no input is a silent no-op;
//!    rate limits and retries still converge.
//! 9. Noise: one thread post in flight per incident, so bursts coalesce.
//!
//! And of issue 17: no acknowledge, escalate or reassign stays awaited once the engine knows
//! the incident is resolved, even when the resolve arrives between the fresh read and the
//! `PUT` (`check_no_reopening_mutation_awaited`); the bridge's clock runs up to 2 minutes
//! ahead of or behind PagerDuty's (`skew`); and lost answers take effect and come back as
//! `MaybeSent`, after which no card is posted and no note sent without looking first.
//!
//! And of issue 20: incidents the bridge declared for a Slack user (`Input::Declared`, with
//! or without the create answer, before or after their trigger webhook, repeated) get one
//! card that names who declared them (`check_settled`), and a declaration never causes a
//! mutation or a thread line (`check_effect`).
//!
//! Determinism and snapshot/restore equivalence are checked at every step (a twin engine is
//! persisted and restored, whole or per incident, and must emit the same effects).

use std::collections::BTreeMap;
use std::time::Duration;

use ids::{
    ChannelId, Email, EscalationPolicyId, EventId, IncidentId, MessageTs, PdUserId, SlackUserId,
};
use proptest::prelude::*;
use sync_core::{
    ActionKey, ActionKind, Actor, CardView, Effect, EffectId, Engine, EngineConfig,
    EscalationLevels, IncidentEventType, IncidentSnapshot, Input, LineActor, LineKind, Mutation,
    Named, Outcome, PdEvent, PdEventKind, PdRead, Refusal, SlackAction, Status, TimelineLine,
    Timestamp, Urgency,
};
use sync_core::{Declaration, Declared, Sibling, SlaConfig};

/// Cases for one property: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The configuration of one property: `cases` cases, failures saved to the committed
/// `proptest-regressions/properties.txt` (replayed first on every run).
fn prop_config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/properties.txt",
            ),
        )),
        ..ProptestConfig::default()
    }
}

const INCIDENTS: [&str; 2] = ["PQ1K5C8", "Q3B15VLMF3ASBD"];
const MAX_LEVEL: u32 = 3;
const CHANNEL: &str = "CBR2V3XEX";

fn config() -> EngineConfig {
    EngineConfig {
        retry_backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
        max_attempts: 3,
        coalesce_window: Duration::from_secs(2),
        pending_timeout: Duration::from_secs(120),
        echo_ttl: Duration::from_secs(3600),
        dedupe_ttl: Duration::from_secs(7 * 24 * 3600),
        dedupe_capacity: 32_768,
        action_dedupe_capacity: 64,
        sla: SlaConfig::default(),
    }
}

/// The one mapped, authorized Slack user and their PagerDuty identity.
const BRIDGE_SLACK: &str = "UA8RXUSPL";
const BRIDGE_PD: &str = "PJ0LVEB";
/// A PagerDuty user acting in the PagerDuty UI.
const UI_PD: &str = "PXRUEF2";

fn actor(choice: u8) -> Actor {
    match choice % 6 {
        0..=3 => Actor::Mapped {
            slack: SlackUserId::new(BRIDGE_SLACK),
            pd_user: PdUserId::new(BRIDGE_PD),
            email: Email::new("pig208@example.com"),
            authorized: Ok(()),
        },
        4 => Actor::Unmapped {
            slack: SlackUserId::new("U111"),
            reason: Refusal {
                reason: "No PagerDuty user has this email.".into(),
                how_to_fix: "Add an identity override.".into(),
            },
        },
        _ => Actor::Mapped {
            slack: SlackUserId::new("U12345678"),
            pd_user: PdUserId::new(UI_PD),
            email: Email::new("harsh@example.com"),
            authorized: Err(Refusal {
                reason: "Policy forbids it.".into(),
                how_to_fix: "Ask an admin.".into(),
            }),
        },
    }
}

/// What the random phase does.
#[derive(Clone, Debug)]
enum Op {
    /// A human changes the incident in the PagerDuty UI (or it is triggered).
    Ui { incident: u8, action: u8 },
    /// PagerDuty delivers one queued webhook, chosen among the first three (bounded reordering).
    Deliver { pick: u8 },
    /// PagerDuty delivers an already delivered webhook again.
    Redeliver { pick: u8 },
    /// Someone clicks on a card.
    Click {
        incident: u8,
        actor: u8,
        kind: u8,
        repeat_key: bool,
    },
    /// One outstanding effect is carried out, chosen among the first four.
    Execute { pick: u8, result: u8 },
    /// The timer fires.
    Tick,
    /// Time passes.
    Advance { millis: u32 },
    /// The reconciler reports one incident.
    Reconcile { incident: u8 },
    /// The engine is persisted and restored (whole, or per incident).
    Restore { per_incident: bool },
    /// The bridge declared an incident for the Slack user (creating it in PagerDuty first when
    /// it does not exist), through the opt-in account when `via`.
    Declare {
        incident: u8,
        with_snapshot: bool,
        via: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(incident, action)| Op::Ui { incident, action }),
        4 => any::<u8>().prop_map(|pick| Op::Deliver { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Redeliver { pick }),
        3 => (any::<u8>(), any::<u8>(), any::<u8>(), proptest::bool::weighted(0.2)).prop_map(
            |(incident, actor, kind, repeat_key)| Op::Click { incident, actor, kind, repeat_key }
        ),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(pick, result)| Op::Execute { pick, result }),
        2 => Just(Op::Tick),
        1 => (0u32..20_000).prop_map(|millis| Op::Advance { millis }),
        1 => any::<u8>().prop_map(|incident| Op::Reconcile { incident }),
        1 => any::<bool>().prop_map(|per_incident| Op::Restore { per_incident }),
        1 => (any::<u8>(), any::<bool>(), any::<bool>()).prop_map(
            |(incident, with_snapshot, via)| Op::Declare { incident, with_snapshot, via }
        ),
    ]
}

/// How an executed effect turns out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Result_ {
    Success,
    /// Failed before reaching the service.
    Retryable,
    /// Reached the service and took effect, but the answer was lost ("maybe sent").
    Timeout,
    /// Lost before the service processed it, but the caller cannot tell ("maybe sent").
    LostRequest,
    RateLimited,
    Permanent,
}

fn result_of(byte: u8) -> Result_ {
    match byte % 16 {
        0..=9 => Result_::Success,
        10 => Result_::Retryable,
        11 => Result_::LostRequest,
        12 => Result_::Timeout,
        13 | 14 => Result_::RateLimited,
        _ => Result_::Permanent,
    }
}

#[derive(Clone, Debug)]
struct WorldIncident {
    status: Status,
    level: u32,
    assignees: Vec<Named<PdUserId>>,
    /// Every status it had, with the time it started.
    history: Vec<(Timestamp, Status)>,
}

/// A simulated PagerDuty and Slack, plus the observations the properties check.
struct World {
    now: Timestamp,
    incidents: BTreeMap<IncidentId, WorldIncident>,
    queued: Vec<PdEvent>,
    delivered: Vec<PdEvent>,
    next_event: u32,
    outstanding: Vec<Effect>,
    next_key: u32,
    last_key: Option<ActionKey>,
    /// Slack: posted cards per incident, and each card's latest content.
    cards: BTreeMap<IncidentId, Vec<MessageTs>>,
    content: BTreeMap<MessageTs, CardView>,
    thread: BTreeMap<IncidentId, Vec<TimelineLine>>,
    next_ts: u32,
    /// How often a bridge mutation changed PagerDuty, by kind name (a retry after a lost
    /// answer can change it twice).
    applied: BTreeMap<&'static str, usize>,
    /// The latest incident answer a read gave, by action key prefix of the effect id.
    read_answers: BTreeMap<String, Status>,
    /// The newest `occurred_at` of a delivered incident event, per incident.
    newest_delivered: BTreeMap<IncidentId, Timestamp>,
    /// How often each note text was added in PagerDuty by the bridge.
    notes_applied: BTreeMap<String, usize>,
    /// Card posts sent after an earlier one may have reached Slack, and notes sent after an
    /// earlier attempt may have reached PagerDuty, each of which looked first.
    looked: usize,
    /// The current level a levels read reported, by action.
    levels_answers: BTreeMap<String, Option<u32>>,
    /// Action keys already handed to the engine, per incident.
    keys_seen: BTreeMap<IncidentId, Vec<ActionKey>>,
    /// The latest declaration handed to the engine, per incident.
    declared: BTreeMap<IncidentId, Declaration>,
}

impl World {
    fn new() -> Self {
        Self {
            now: Timestamp::from_millis(1_775_000_000_000),
            incidents: BTreeMap::new(),
            queued: Vec::new(),
            delivered: Vec::new(),
            next_event: 0,
            outstanding: Vec::new(),
            next_key: 0,
            last_key: None,
            cards: BTreeMap::new(),
            content: BTreeMap::new(),
            thread: BTreeMap::new(),
            next_ts: 0,
            applied: BTreeMap::new(),
            read_answers: BTreeMap::new(),
            newest_delivered: BTreeMap::new(),
            notes_applied: BTreeMap::new(),
            looked: 0,
            levels_answers: BTreeMap::new(),
            keys_seen: BTreeMap::new(),
            declared: BTreeMap::new(),
        }
    }

    fn snapshot(&self, id: &IncidentId) -> Option<IncidentSnapshot> {
        let w = self.incidents.get(id)?;
        Some(IncidentSnapshot {
            id: id.clone(),
            number: Some(10),
            title: "Test Incident".into(),
            html_url: Some(format!("https://pig208.pagerduty.com/incidents/{id}")),
            status: w.status,
            urgency: Some(Urgency::High),
            priority: None,
            service: Some(Named::new("PA2P440".into(), "pig208")),
            teams: Vec::new(),
            escalation_policy: Some(Named::new(EscalationPolicyId::new("PY82TC6"), "Default")),
            assignees: w.assignees.clone(),
            // Like `last_status_change_at`/`updated_at`: PagerDuty's time of the last change.
            as_of: w.history.last().map(|(at, _)| *at),
        })
    }

    /// Changes an incident's status (or not) and queues the webhook PagerDuty would send.
    fn transition(
        &mut self,
        id: &IncidentId,
        event_type: IncidentEventType,
        status: Status,
        agent: &str,
    ) {
        let now = self.now;
        let w = self.incidents.get_mut(id).expect("exists");
        w.status = status;
        if status == Status::Resolved {
            w.assignees.clear();
        } else if w.assignees.is_empty() {
            w.assignees = vec![Named::new(PdUserId::new(UI_PD), "Harsh Santwani")];
        }
        w.history.push((now, status));
        let data = self.snapshot(id).expect("exists");
        self.queue(id, PdEventKind::Incident { event_type, data }, agent);
    }

    fn queue(&mut self, id: &IncidentId, kind: PdEventKind, agent: &str) {
        self.next_event += 1;
        let name = if agent == BRIDGE_PD {
            "PIG 208"
        } else {
            "Harsh Santwani"
        };
        self.queued.push(PdEvent {
            event_id: EventId::new(format!("01GI0EVENT{:06}", self.next_event)),
            webhook_id: None,
            change_key: None,
            occurred_at: self.now,
            incident: id.clone(),
            incident_title: Some("Test Incident".into()),
            agent: Some(Named::new(PdUserId::new(agent), name)),
            kind,
            target_channel: Some(ChannelId::new(CHANNEL)),
        });
    }

    fn ui(&mut self, incident: u8, action: u8) {
        let id = IncidentId::new(INCIDENTS[usize::from(incident) % INCIDENTS.len()]);
        let Some(w) = self.incidents.get(&id).cloned() else {
            self.incidents.insert(
                id.clone(),
                WorldIncident {
                    status: Status::Triggered,
                    level: 1,
                    assignees: Vec::new(),
                    history: Vec::new(),
                },
            );
            self.transition(&id, IncidentEventType::Triggered, Status::Triggered, UI_PD);
            return;
        };
        match (action % 5, w.status) {
            (4, _) => {
                // A note or a responder request from the PagerDuty UI: an event that carries
                // only an incident reference (the engine reads the incident if it has no card).
                self.next_event += 1;
                let kind = if self.next_event.is_multiple_of(2) {
                    PdEventKind::Annotated {
                        note: None,
                        content: format!("UI note {}", self.next_event),
                    }
                } else {
                    PdEventKind::ResponderAdded {
                        responder: Named::new(PdUserId::new(BRIDGE_PD), "PIG 208"),
                        message: None,
                    }
                };
                self.queue(&id, kind, UI_PD);
            }
            (0, Status::Triggered) => self.transition(
                &id,
                IncidentEventType::Acknowledged,
                Status::Acknowledged,
                UI_PD,
            ),
            (1, Status::Triggered | Status::Acknowledged) => {
                self.transition(&id, IncidentEventType::Resolved, Status::Resolved, UI_PD)
            }
            (2, Status::Resolved) => {
                self.incidents.get_mut(&id).expect("exists").level = 1;
                self.transition(&id, IncidentEventType::Reopened, Status::Triggered, UI_PD)
            }
            (3, Status::Triggered | Status::Acknowledged) if w.level < MAX_LEVEL => {
                self.incidents.get_mut(&id).expect("exists").level += 1;
                self.transition(&id, IncidentEventType::Escalated, Status::Triggered, UI_PD)
            }
            _ => {}
        }
    }

    /// Carries out a PagerDuty mutation; `Err` is PagerDuty's refusal.
    fn mutate(
        &mut self,
        id: &IncidentId,
        mutation: &Mutation,
        agent: &str,
    ) -> Result<bool, String> {
        let Some(w) = self.incidents.get(id).cloned() else {
            return Err("5001 Incident Not Found".into());
        };
        match mutation {
            Mutation::Acknowledge => {
                if w.status == Status::Acknowledged {
                    return Ok(false);
                }
                // Since 2025-09 acknowledging a resolved incident reopens it.
                self.incidents.get_mut(id).expect("exists").assignees =
                    vec![Named::new(PdUserId::new(agent), "PIG 208")];
                self.transition(
                    id,
                    IncidentEventType::Acknowledged,
                    Status::Acknowledged,
                    agent,
                );
            }
            Mutation::Resolve => {
                if w.status == Status::Resolved {
                    return Ok(false);
                }
                self.transition(id, IncidentEventType::Resolved, Status::Resolved, agent);
            }
            Mutation::Escalate { level } => {
                if *level > MAX_LEVEL || w.status == Status::Resolved {
                    return Err("1006 Cannot Escalate".into());
                }
                self.incidents.get_mut(id).expect("exists").level = *level;
                self.transition(id, IncidentEventType::Escalated, Status::Triggered, agent);
            }
            Mutation::Reassign { to } => {
                if w.status == Status::Resolved {
                    return Err("1011 Cannot process reassign action".into());
                }
                self.incidents.get_mut(id).expect("exists").assignees =
                    vec![Named::new(to.clone(), "Harsh Santwani")];
                self.transition(id, IncidentEventType::Reassigned, Status::Triggered, agent);
            }
            Mutation::AddNote { content } => {
                *self
                    .notes_applied
                    .entry(format!("added a note: {content}"))
                    .or_default() += 1;
                let kind = PdEventKind::Annotated {
                    note: None,
                    content: content.clone(),
                };
                self.queue(id, kind, agent);
            }
            Mutation::Snooze { .. } => {
                // No webhook follows a snooze; the clicks generated here never ask.
                if w.status != Status::Acknowledged {
                    return Err("2001 Incident must be acknowledged to be snoozed".into());
                }
            }
            Mutation::ChangeUrgency { .. } | Mutation::ChangePriority { .. } => {
                // The clicks generated here never ask for an urgency or priority change.
                if w.status == Status::Resolved {
                    return Err("1001 Incident Already Resolved".into());
                }
            }
        }
        Ok(true)
    }

    /// Carries out one effect and returns its outcome (`None` when nothing reports back).
    fn execute(&mut self, effect: &Effect, result: Result_, answer_with_incident: bool) -> Outcome {
        let failure = match result {
            Result_::Retryable => Some(Outcome::Retryable {
                error: "HTTP 503".into(),
                retry_after: None,
            }),
            Result_::RateLimited => Some(Outcome::RateLimited {
                retry_after: Duration::from_secs(7),
            }),
            Result_::Permanent => Some(Outcome::Permanent {
                error: "HTTP 400".into(),
            }),
            Result_::LostRequest => Some(Outcome::MaybeSent {
                error: "connection reset".into(),
            }),
            Result_::Success | Result_::Timeout => None,
        };
        if let Some(failure) = failure {
            return failure;
        }
        let lost = Outcome::MaybeSent {
            error: "timed out".into(),
        };
        if result == Result_::Timeout && matches!(effect, Effect::PostThread { .. }) {
            // Thread messages are posted again after a lost answer (documented: a line may
            // then repeat), so their lost answers are modelled as requests that never arrived.
            return lost;
        }
        let outcome = match effect {
            Effect::PostCard {
                card,
                look_since: Some(_),
                ..
            } if self.cards.contains_key(&card.incident) => {
                // The dispatcher looked for the earlier post and found it.
                self.looked += 1;
                let ts = self.cards[&card.incident][0].clone();
                self.content.insert(ts.clone(), card.clone());
                Outcome::Posted { ts }
            }
            Effect::PdMutation {
                mutation: Mutation::AddNote { content },
                look_since: Some(_),
                ..
            } if self
                .notes_applied
                .contains_key(&format!("added a note: {content}")) =>
            {
                self.looked += 1;
                Outcome::Done
            }
            Effect::PostCard { card, .. } => {
                self.next_ts += 1;
                let ts = MessageTs::new(format!("1548261231.{:06}", self.next_ts));
                self.cards
                    .entry(card.incident.clone())
                    .or_default()
                    .push(ts.clone());
                self.content.insert(ts.clone(), card.clone());
                Outcome::Posted { ts }
            }
            Effect::UpdateCard { ts, card, .. } => {
                assert!(
                    self.cards
                        .get(&card.incident)
                        .is_some_and(|list| list.contains(ts)),
                    "update of a message that is not this incident's card"
                );
                self.content.insert(ts.clone(), card.clone());
                Outcome::Done
            }
            Effect::PostThread { id, lines, .. } => {
                let incident = IncidentId::new(id.as_str().split('/').next().unwrap_or_default());
                self.thread
                    .entry(incident)
                    .or_default()
                    .extend(lines.iter().cloned());
                Outcome::Done
            }
            Effect::Ephemeral { .. } => Outcome::Done,
            Effect::PdRead { id, incident, read } => match read {
                PdRead::Incident => match self.snapshot(incident) {
                    Some(s) => {
                        self.read_answers.insert(action_of(id), s.status);
                        Outcome::PdIncident(s)
                    }
                    None => Outcome::Permanent {
                        error: "5001 Incident Not Found".into(),
                    },
                },
                PdRead::EscalationLevels { .. } => {
                    let level = self.incidents.get(incident).map(|w| w.level);
                    let current = level.filter(|_| !answer_with_incident);
                    self.levels_answers.insert(action_of(id), current);
                    Outcome::Levels(EscalationLevels {
                        current,
                        max: MAX_LEVEL,
                    })
                }
            },
            Effect::PdMutation {
                incident,
                actor,
                mutation,
                ..
            } => match self.mutate(incident, mutation, actor.pd_user.as_str()) {
                Ok(changed) => {
                    if changed {
                        *self.applied.entry(mutation_name(mutation)).or_default() += 1;
                    }
                    if !changed {
                        Outcome::AlreadyInState
                    } else if answer_with_incident {
                        Outcome::PdIncident(self.snapshot(incident).expect("exists"))
                    } else {
                        Outcome::Done
                    }
                }
                Err(error) => Outcome::Permanent { error },
            },
            Effect::Dropped { .. } => unreachable!("never outstanding"),
        };
        if result == Result_::Timeout {
            lost
        } else {
            outcome
        }
    }
}

/// The incident and action key part of an effect id (`incident/key/tagN`).
fn action_of(id: &EffectId) -> String {
    let parts: Vec<&str> = id.as_str().split('/').collect();
    parts[..parts.len() - 1].join("/")
}

fn mutation_name(mutation: &Mutation) -> &'static str {
    match mutation {
        Mutation::Acknowledge => "acknowledge",
        Mutation::Resolve => "resolve",
        Mutation::Escalate { .. } => "escalate",
        Mutation::Reassign { .. } => "reassign",
        Mutation::AddNote { .. } => "add_note",
        Mutation::ChangeUrgency { .. } => "change_urgency",
        Mutation::Snooze { .. } => "snooze",
        Mutation::ChangePriority { .. } => "change_priority",
    }
}

/// The engine under test, a twin that is persisted and restored, and the world.
struct Harness {
    engine: Engine,
    twin: Engine,
    world: World,
    /// How far the bridge's clock runs ahead of PagerDuty's (negative: behind). The world's
    /// `now` is PagerDuty's clock; the engine is always fed `now + skew`.
    skew: i64,
    /// Every input and its effects, for the determinism check.
    trace: Vec<(Timestamp, Input, Vec<Effect>)>,
}

impl Harness {
    fn new(skew: i64) -> Self {
        Self {
            engine: Engine::new(config()).unwrap(),
            twin: Engine::new(config()).unwrap(),
            world: World::new(),
            skew,
            trace: Vec::new(),
        }
    }

    /// PagerDuty's time of an engine timer (the engine runs on the bridge's clock).
    fn world_time(&self, bridge: Timestamp) -> Timestamp {
        Timestamp::from_millis(bridge.as_millis() - self.skew)
    }

    /// Feeds one input, at PagerDuty's time `now` (shifted to the bridge's clock), to both
    /// engines and checks the per-step properties.
    fn feed(&mut self, now: Timestamp, input: Input) -> Result<(), TestCaseError> {
        let now = Timestamp::from_millis(now.as_millis() + self.skew);
        let before = self.engine.snapshot();
        let effects = self.engine.handle(now, input.clone());
        let twin = self.twin.handle(now, input.clone());
        prop_assert_eq!(&effects, &twin, "restored twin diverged on {:?}", input);
        // The engine names every incident whose state changed.
        let after = self.engine.snapshot();
        for state in &after.incidents {
            let old = before.incidents.iter().find(|s| s.id() == state.id());
            if old != Some(state) {
                prop_assert!(
                    self.engine.changed_incidents().any(|id| id == state.id()),
                    "{} changed but is not reported",
                    state.id()
                );
            }
        }
        // Every decision is visible: an input that changes nothing says why.
        if effects.is_empty() {
            prop_assert_ne!(
                &before,
                &self.engine.snapshot(),
                "silent no-op for {:?}",
                input
            );
        }
        for effect in &effects {
            self.check_effect(&input, effect)?;
        }
        if let Input::SlackAction(action) = &input
            && self.engine.incident(&action.incident).is_some()
        {
            let seen = self
                .world
                .keys_seen
                .entry(action.incident.clone())
                .or_default();
            if seen.contains(&action.key) {
                // A resubmitted action changes nothing.
                let expected = vec![Effect::Dropped {
                    incident: Some(action.incident.clone()),
                    reason: sync_core::DropReason::Duplicate,
                }];
                prop_assert_eq!(&effects, &expected);
            }
            seen.push(action.key.clone());
        }
        self.check_not_stale()?;
        for effect in &effects {
            if !matches!(effect, Effect::Dropped { .. }) {
                self.world.outstanding.push(effect.clone());
            }
        }
        self.check_no_reopening_mutation_awaited()?;
        self.trace.push((now, input, effects));
        Ok(())
    }

    /// No acknowledge, escalate or reassign is still awaited (so a dispatcher could send it)
    /// once the engine knows the incident is resolved: resolved data arriving between the
    /// fresh read and the `PUT` refuses the pending action.
    fn check_no_reopening_mutation_awaited(&self) -> Result<(), TestCaseError> {
        for effect in &self.world.outstanding {
            let Effect::PdMutation {
                id,
                incident,
                mutation,
                ..
            } = effect
            else {
                continue;
            };
            let reopens = matches!(
                mutation,
                Mutation::Acknowledge | Mutation::Escalate { .. } | Mutation::Reassign { .. }
            );
            let resolved = self
                .engine
                .incident(incident)
                .is_some_and(|s| s.is_resolved());
            prop_assert!(
                !(reopens && resolved && self.engine.awaits(id)),
                "{:?} still awaited for resolved {}",
                mutation,
                incident
            );
        }
        Ok(())
    }

    fn check_effect(&self, input: &Input, effect: &Effect) -> Result<(), TestCaseError> {
        match effect {
            Effect::PdMutation {
                id,
                incident,
                actor,
                mutation,
                ..
            } => {
                // No mutation without a mapped, authorized actor.
                prop_assert_eq!(actor.slack.as_str(), BRIDGE_SLACK);
                prop_assert_eq!(actor.pd_user.as_str(), BRIDGE_PD);
                // PagerDuty events and declarations never cause mutations (no echo loops).
                prop_assert!(
                    !matches!(input, Input::PdEvent(_) | Input::Declared(_)),
                    "{:?} caused {:?}",
                    input,
                    mutation
                );
                // Status-changing mutations follow a fresh read that was not resolved.
                if matches!(
                    mutation,
                    Mutation::Acknowledge | Mutation::Escalate { .. } | Mutation::Reassign { .. }
                ) {
                    let fresh = self.world.read_answers.get(&action_of(id)).copied();
                    prop_assert!(
                        matches!(fresh, Some(Status::Triggered | Status::Acknowledged)),
                        "{:?} without a fresh unresolved read ({:?})",
                        mutation,
                        fresh
                    );
                    prop_assert!(
                        matches!(input, Input::EffectDone { .. } | Input::Tick),
                        "{:?} straight from {:?}",
                        mutation,
                        input
                    );
                    if let Mutation::Escalate { level } = mutation {
                        // Exactly one level above the current one, never past the top.
                        let answered = self.world.levels_answers.get(&action_of(id)).copied();
                        prop_assert!(answered.is_some(), "escalation without a levels read");
                        let bridge = self
                            .engine
                            .incident(incident)
                            .and_then(|s| s.view())
                            .and_then(|v| v.escalation_level);
                        let current = answered.flatten().or(bridge).unwrap_or(1);
                        prop_assert_eq!(*level, current + 1);
                        prop_assert!(*level <= MAX_LEVEL, "escalation past the top level");
                    }
                    let known = self
                        .engine
                        .incident(incident)
                        .and_then(|s| s.snapshot())
                        .map(|s| s.status);
                    prop_assert_ne!(known, Some(Status::Resolved));
                }
            }
            Effect::UpdateCard { card, .. } => {
                // One card call in flight per incident: changes meanwhile coalesce.
                let busy = self.world.outstanding.iter().any(|e| {
                    matches!(e, Effect::UpdateCard { card: c, .. } | Effect::PostCard { card: c, .. }
                        if c.incident == card.incident)
                });
                prop_assert!(!busy, "two card calls in flight for {}", card.incident);
            }
            Effect::PostThread { id, .. } => {
                // A declaration only changes the card: its own trigger adds no line.
                prop_assert!(
                    !matches!(input, Input::Declared(_)),
                    "a declaration posted a line"
                );
                let incident = id.as_str().split('/').next().unwrap_or_default();
                let busy = self.world.outstanding.iter().any(|e| {
                    matches!(e, Effect::PostThread { id: other, .. }
                        if other.as_str().split('/').next() == Some(incident))
                });
                prop_assert!(!busy, "two thread posts in flight for {}", incident);
            }
            Effect::PostCard {
                card, look_since, ..
            } => {
                // At most one card per incident: a post after one that may have reached Slack
                // first looks for it.
                let posted = self.world.cards.get(&card.incident).map_or(0, Vec::len);
                prop_assert!(
                    posted == 0 || look_since.is_some(),
                    "second card for {} without looking for the first",
                    card.incident
                );
                let in_flight = self.world.outstanding.iter().any(
                    |e| matches!(e, Effect::PostCard { card: c, .. } if c.incident == card.incident),
                );
                prop_assert!(!in_flight, "two posts in flight for {}", card.incident);
            }
            _ => {}
        }
        Ok(())
    }

    /// The engine never shows a status older than the newest delivered event.
    fn check_not_stale(&self) -> Result<(), TestCaseError> {
        for (id, newest) in &self.world.newest_delivered {
            let Some(shown) = self
                .engine
                .incident(id)
                .and_then(|s| s.snapshot())
                .map(|s| s.status)
            else {
                continue;
            };
            let history = &self.world.incidents[id].history;
            let start = history
                .iter()
                .rposition(|(at, _)| at <= newest)
                .unwrap_or(0);
            let possible: Vec<Status> = history[start..].iter().map(|(_, s)| *s).collect();
            prop_assert!(
                possible.contains(&shown),
                "{} shows {:?}, older than the event of {:?} (could be {:?})",
                id,
                shown,
                newest,
                possible
            );
        }
        Ok(())
    }

    fn deliver(&mut self, index: usize, jitter: i64) -> Result<(), TestCaseError> {
        let event = self.world.queued.remove(index);
        self.note_delivered(&event);
        self.world.delivered.push(event.clone());
        let now = Timestamp::from_millis(self.world.now.as_millis() - jitter);
        self.feed(now, Input::PdEvent(event))
    }

    fn note_delivered(&mut self, event: &PdEvent) {
        if matches!(event.kind, PdEventKind::Incident { .. }) {
            let newest = self
                .world
                .newest_delivered
                .entry(event.incident.clone())
                .or_insert(event.occurred_at);
            *newest = (*newest).max(event.occurred_at);
        }
    }

    fn execute(&mut self, index: usize, result: Result_, flag: bool) -> Result<(), TestCaseError> {
        let effect = self.world.outstanding.remove(index);
        if let Effect::PdMutation { id, .. } = &effect
            && !self.engine.awaits(id)
        {
            // The dispatcher skips mutations the engine gave up on or saw confirmed.
            return Ok(());
        }
        let outcome = self.world.execute(&effect, result, flag);
        let id = effect.id().expect("not dropped").clone();
        let awaited = self.engine.awaits(&id);
        if matches!(effect, Effect::Ephemeral { .. }) {
            // Replies are fire-and-forget: the caller retries them and feeds nothing back.
            prop_assert!(!awaited, "the engine awaits reply {}", id);
            return Ok(());
        }
        let permanent = matches!(outcome, Outcome::Permanent { .. });
        let now = self.world.now;
        self.feed(now, Input::EffectDone { id, outcome })?;
        if let Effect::PdMutation { actor, .. } = &effect
            && awaited
            && permanent
        {
            // A permanent PagerDuty failure is shown to the human who clicked.
            let effects = &self.trace.last().expect("fed").2;
            let told = effects
                .iter()
                .any(|e| matches!(e, Effect::Ephemeral { user, .. } if *user == actor.slack));
            prop_assert!(told, "permanent failure not shown: {:?}", effects);
        }
        Ok(())
    }

    fn step(&mut self, op: &Op, jitter: i64) -> Result<(), TestCaseError> {
        self.world.now = Timestamp::from_millis(self.world.now.as_millis() + 1 + jitter.abs() % 3);
        match *op {
            Op::Ui { incident, action } => self.world.ui(incident, action),
            Op::Deliver { pick } => {
                if !self.world.queued.is_empty() {
                    let index = usize::from(pick) % self.world.queued.len().min(3);
                    self.deliver(index, jitter)?;
                }
            }
            Op::Redeliver { pick } => {
                if !self.world.delivered.is_empty() {
                    let index = usize::from(pick) % self.world.delivered.len();
                    let event = self.world.delivered[index].clone();
                    let now = self.world.now;
                    self.feed(now, Input::PdEvent(event))?;
                }
            }
            Op::Click {
                incident,
                actor: who,
                kind,
                repeat_key,
            } => {
                let id = IncidentId::new(INCIDENTS[usize::from(incident) % INCIDENTS.len()]);
                self.world.next_key += 1;
                let n = self.world.next_key;
                let kind = match kind % 5 {
                    0 => ActionKind::Acknowledge,
                    1 => ActionKind::Escalate,
                    2 => ActionKind::Reassign(PdUserId::new(UI_PD)),
                    3 => ActionKind::AddNote(format!("note {n}")),
                    _ => ActionKind::Resolve,
                };
                let actor = actor(who);
                let key = match (&self.world.last_key, repeat_key) {
                    (Some(key), true) => key.clone(),
                    _ => ActionKey::new(&format!("1548426417.{n:06}"), actor.slack(), kind.name()),
                };
                self.world.last_key = Some(key.clone());
                let action = SlackAction {
                    key,
                    actor,
                    incident: id,
                    kind,
                    channel: Some(ChannelId::new(CHANNEL)),
                };
                let now = Timestamp::from_millis(self.world.now.as_millis() - jitter);
                self.feed(now, Input::SlackAction(action))?;
            }
            Op::Execute { pick, result } => {
                if !self.world.outstanding.is_empty() {
                    let index = usize::from(pick) % self.world.outstanding.len().min(4);
                    self.execute(index, result_of(result), pick % 2 == 0)?;
                }
            }
            Op::Tick => {
                if let Some((at, _)) = self.engine.poll_timeout() {
                    self.world.now = self.world.now.max(self.world_time(at));
                }
                let now = self.world.now;
                self.feed(now, Input::Tick)?;
            }
            Op::Advance { millis } => {
                self.world.now =
                    Timestamp::from_millis(self.world.now.as_millis() + i64::from(millis));
            }
            Op::Reconcile { incident } => {
                let id = IncidentId::new(INCIDENTS[usize::from(incident) % INCIDENTS.len()]);
                if let Some(snapshot) = self.world.snapshot(&id) {
                    let now = self.world.now;
                    let input = Input::Reconcile {
                        // The listing answer's `Date`: PagerDuty's clock.
                        as_of: now,
                        snapshot,
                        target_channel: Some(ChannelId::new(CHANNEL)),
                    };
                    self.feed(now, input)?;
                }
            }
            Op::Declare {
                incident,
                with_snapshot,
                via,
            } => {
                let n = usize::from(incident);
                let id = IncidentId::new(INCIDENTS[n % INCIDENTS.len()]);
                if !self.world.incidents.contains_key(&id) {
                    // Created in PagerDuty From the declaring user, whose trigger webhook follows.
                    self.world.incidents.insert(
                        id.clone(),
                        WorldIncident {
                            status: Status::Triggered,
                            level: 1,
                            assignees: Vec::new(),
                            history: Vec::new(),
                        },
                    );
                    self.world.transition(
                        &id,
                        IncidentEventType::Triggered,
                        Status::Triggered,
                        BRIDGE_PD,
                    );
                }
                let declaration = Declaration {
                    by: SlackUserId::new(BRIDGE_SLACK),
                    via: via.then(|| Email::new("ops@example.com")),
                    together: vec![Sibling {
                        incident: IncidentId::new(INCIDENTS[(n + 1) % INCIDENTS.len()]),
                        number: Some(11),
                    }],
                };
                self.world.declared.insert(id.clone(), declaration.clone());
                let now = self.world.now;
                let input = Input::Declared(Declared {
                    snapshot: with_snapshot.then(|| self.world.snapshot(&id)).flatten(),
                    incident: id,
                    declaration,
                    // The create answer's `Date`: PagerDuty's clock.
                    as_of: now,
                    target_channel: Some(ChannelId::new(CHANNEL)),
                });
                self.feed(now, input)?;
            }
            Op::Restore { per_incident } => {
                let restored = if per_incident {
                    // One row per incident, as the server stores it.
                    let mut snapshot = self.twin.snapshot();
                    let rows: Vec<String> = snapshot
                        .incidents
                        .drain(..)
                        .map(|st| serde_json::to_string(&st).unwrap())
                        .collect();
                    let mut engine = Engine::restore(config(), snapshot).unwrap();
                    for row in rows {
                        engine.load_incident(serde_json::from_str(&row).unwrap());
                    }
                    engine
                } else {
                    let json = serde_json::to_string(&self.twin.snapshot()).unwrap();
                    Engine::restore(config(), serde_json::from_str(&json).unwrap()).unwrap()
                };
                prop_assert_eq!(restored.snapshot(), self.engine.snapshot());
                prop_assert_eq!(restored.poll_timeout(), self.engine.poll_timeout());
                self.twin = restored;
            }
        }
        Ok(())
    }

    /// Lets everything settle: all webhooks delivered in order, every effect succeeds, timers
    /// fire, then the reconciler visits every incident once and everything settles again.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for round in 0..2 {
            if round == 1 {
                let ids: Vec<IncidentId> = self.world.incidents.keys().cloned().collect();
                for id in ids {
                    self.world.now = Timestamp::from_millis(self.world.now.as_millis() + 1);
                    let snapshot = self.world.snapshot(&id).expect("exists");
                    let now = self.world.now;
                    self.feed(
                        now,
                        Input::Reconcile {
                            snapshot,
                            as_of: now,
                            target_channel: Some(ChannelId::new(CHANNEL)),
                        },
                    )?;
                }
            }
            let mut steps = 0;
            loop {
                steps += 1;
                prop_assert!(steps < 2_000, "no quiescence");
                self.world.now = Timestamp::from_millis(self.world.now.as_millis() + 1);
                if !self.world.queued.is_empty() {
                    self.deliver(0, 0)?;
                } else if !self.world.outstanding.is_empty() {
                    self.execute(0, Result_::Success, steps % 2 == 0)?;
                } else if let Some((at, _)) = self.engine.poll_timeout() {
                    self.world.now = self.world.now.max(self.world_time(at));
                    let now = self.world.now;
                    self.feed(now, Input::Tick)?;
                } else {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Convergence and once-only rendering after settling.
    fn check_settled(&self) -> Result<(), TestCaseError> {
        for (id, w) in &self.world.incidents {
            let st = self.engine.incident(id).expect("every incident has state");
            let view = st.view().expect("known");
            prop_assert_eq!(view.status, w.status, "{} engine state", id);
            prop_assert_eq!(view.pending.as_ref(), None);
            let cards = &self.world.cards[id];
            prop_assert_eq!(cards.len(), 1, "{} cards", id);
            let shown = &self.world.content[&cards[0]];
            prop_assert_eq!(shown, &view, "{} card shows the engine's view", id);
            prop_assert_eq!(shown.resolved, w.status == Status::Resolved);
            // A declared incident's one card names who declared it, and how.
            match self.world.declared.get(id) {
                Some(d) => {
                    let line = view.declared.as_ref().expect("declared line");
                    prop_assert_eq!(&line.by, &d.by);
                    let start = format!("Declared by <@{}>", d.by);
                    prop_assert!(line.text.starts_with(&start), "{}", line.text);
                    prop_assert_eq!(
                        line.text
                            .contains("(no PagerDuty seat) via ops@example.com"),
                        d.via.is_some()
                    );
                    prop_assert!(line.text.contains("declared together with #11"));
                }
                None => prop_assert_eq!(view.declared.as_ref(), None),
            }
            prop_assert!(st.awaited_effects().is_empty());
        }
        // A Slack action's line appears at most once (PUT response or echo, never both), and
        // a note written from Slack never comes back as a second line.
        let mut slack_lines: BTreeMap<LineKind, usize> = BTreeMap::new();
        let mut notes: BTreeMap<String, usize> = BTreeMap::new();
        for line in self.world.thread.values().flatten() {
            if let Some(LineActor::Slack(_)) = line.actor {
                *slack_lines.entry(line.kind).or_default() += 1;
            }
            if line.kind == LineKind::Note {
                *notes.entry(line.text.clone()).or_default() += 1;
            }
        }
        for (kind, name) in [
            (LineKind::Acknowledged, "acknowledge"),
            (LineKind::Resolved, "resolve"),
            (LineKind::Note, "add_note"),
        ] {
            let applied = self.world.applied.get(name).copied().unwrap_or(0);
            let lines = slack_lines.get(&kind).copied().unwrap_or(0);
            prop_assert!(
                lines <= applied,
                "{} Slack lines of {:?} for {} applied",
                lines,
                kind,
                applied
            );
        }
        // A note whose answer was lost is sent again only after looking for it: never twice.
        for (text, applied) in &self.world.notes_applied {
            prop_assert!(*applied <= 1, "{:?} added {} times", text, applied);
        }
        for (text, count) in notes {
            let applied = self
                .world
                .notes_applied
                .get(&text)
                .copied()
                .unwrap_or(0)
                .max(1);
            prop_assert!(
                count <= applied,
                "note line {:?} appears {} times",
                text,
                count
            );
        }
        Ok(())
    }
}

fn run(ops: &[(Op, i64)], skew: i64) -> Result<Harness, TestCaseError> {
    let mut h = Harness::new(skew);
    for (op, jitter) in ops {
        h.step(op, *jitter)?;
    }
    h.settle()?;
    h.check_settled()?;
    Ok(h)
}

fn jitter() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => 0i64..3_000]
}

/// The bridge's clock against PagerDuty's: equal, two minutes ahead or behind, or anything
/// between.
fn skew() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0i64),
        1 => Just(120_000i64),
        1 => Just(-120_000i64),
        1 => -120_000i64..=120_000,
    ]
}

proptest! {
    #![proptest_config(prop_config(6_000))]

    /// Convergence to PagerDuty's final state, one card per incident, echoes render once, stale
    /// never overwrites newer, no mutation without a mapped authorized actor and never on a
    /// resolved incident, no panic, snapshot/restore equivalence (checked at every step).
    #[test]
    fn engine_tracks_the_world(
        ops in proptest::collection::vec((op(), jitter()), 1..80),
        skew in skew(),
    ) {
        run(&ops, skew)?;
    }
}

proptest! {
    #![proptest_config(prop_config(2_000))]

    /// Determinism: the same inputs give the same effects, from a fresh engine.
    #[test]
    fn same_inputs_same_effects(
        ops in proptest::collection::vec((op(), jitter()), 1..80),
        skew in skew(),
    ) {
        let h = run(&ops, skew)?;
        let mut again = Engine::new(config()).unwrap();
        for (now, input, effects) in &h.trace {
            prop_assert_eq!(&again.handle(*now, input.clone()), effects);
        }
        prop_assert_eq!(again.snapshot(), h.engine.snapshot());
    }
}

/// Webhook-only histories: shuffled, duplicated deliveries of one incident's events.
fn shuffled_events() -> impl Strategy<Value = (Vec<(u8, i64)>, Vec<usize>)> {
    (
        proptest::collection::vec((any::<u8>(), 1i64..100_000), 1..12),
        proptest::collection::vec(any::<usize>(), 1..30),
    )
}

proptest! {
    #![proptest_config(prop_config(3_000))]

    /// Stale never overwrites newer: whatever the delivery order and duplicates, the card shows
    /// the status of the newest event delivered so far, and after all of them PagerDuty's.
    #[test]
    fn newest_event_wins((steps, order) in shuffled_events()) {
        let id = IncidentId::new("PQ1K5C8");
        let mut at = 1_622_814_929_781i64;
        let mut events = Vec::new();
        for (i, (status, gap)) in steps.iter().enumerate() {
            at += gap;
            let status = [Status::Triggered, Status::Acknowledged, Status::Resolved][usize::from(*status) % 3];
            let event_type = match status {
                Status::Triggered => IncidentEventType::Reopened,
                Status::Acknowledged => IncidentEventType::Acknowledged,
                Status::Resolved => IncidentEventType::Resolved,
            };
            let mut data = World::new();
            data.incidents.insert(id.clone(), WorldIncident { status, level: 1, assignees: Vec::new(), history: Vec::new() });
            events.push(PdEvent {
                event_id: EventId::new(format!("01BZYK8N47N5JG55J1EEE{i:05}")),
                webhook_id: None,
                change_key: None,
                occurred_at: Timestamp::from_millis(at),
                incident: id.clone(),
                incident_title: None,
                agent: Some(Named::new(PdUserId::new("PJ0LVEB"), "PIG 208")),
                kind: PdEventKind::Incident { event_type, data: data.snapshot(&id).unwrap() },
                target_channel: Some(ChannelId::new(CHANNEL)),
            });
        }
        let mut engine = Engine::new(config()).unwrap();
        let mut newest: Option<&PdEvent> = None;
        let mut deliveries: Vec<usize> = order.iter().map(|i| i % events.len()).collect();
        deliveries.extend(0..events.len());
        for (step, index) in deliveries.into_iter().enumerate() {
            let event = &events[index];
            let now = Timestamp::from_millis(at + i64::try_from(step).unwrap());
            let effects = engine.handle(now, Input::PdEvent(event.clone()));
            let mutates = effects.iter().any(|e| matches!(e, Effect::PdMutation { .. }));
            prop_assert!(!mutates, "a webhook caused a mutation");
            if newest.is_none_or(|n| n.occurred_at < event.occurred_at) {
                newest = Some(event);
            }
            let shown = engine.incident(&id).and_then(|s| s.snapshot()).map(|s| s.status);
            let expected = newest.and_then(|n| match &n.kind {
                PdEventKind::Incident { data, .. } => Some(data.status),
                _ => None,
            });
            prop_assert_eq!(shown, expected);
        }
    }
}
