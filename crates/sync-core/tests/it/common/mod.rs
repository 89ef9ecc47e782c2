//! Shared test helpers: fixture translation and a transcript recorder.

use std::fmt::Write as _;
use std::time::Duration;

use ids::{
    ChannelId, Email, EscalationPolicyId, EventId, IncidentId, MessageTs, NoteId, PdUserId,
    PriorityId, ServiceId, SlackUserId, TeamId, WebhookId,
};
use serde_json::Value;
use sync_core::{
    ActionKey, ActionKind, Actor, CardView, Effect, EffectId, Engine, EngineConfig,
    IncidentEventType, IncidentSnapshot, Input, LineActor, Named, Outcome, PdEvent, PdEventKind,
    Refusal, SlaConfig, SlackAction, Status, TimelineLine, Timestamp, Urgency,
};

/// The directory of the real PagerDuty webhook captures.
pub const PD_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/pagerduty-webhooks/"
);

/// Reads one PagerDuty webhook fixture.
pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{PD_FIXTURES}{name}"))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Parses an RFC 3339 time into a timestamp.
pub fn ts(rfc3339: &str) -> Timestamp {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    Timestamp::from_millis(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap())
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn named<T: From<String>>(v: &Value) -> Option<Named<T>> {
    (!v.is_null()).then(|| Named::new(T::from(s(&v["id"])), s(&v["summary"])))
}

/// Translates a webhook fixture the way the server does.
pub fn pd_event(v: &Value, channel: Option<&str>) -> PdEvent {
    let e = &v["event"];
    let event_type = s(&e["event_type"]);
    let data = &e["data"];
    let agent = named::<PdUserId>(&e["agent"]);
    let (incident, title, kind) = if data["type"] == "incident" {
        let snapshot = snapshot(data);
        let t = match event_type.as_str() {
            "incident.triggered" => IncidentEventType::Triggered,
            "incident.acknowledged" => IncidentEventType::Acknowledged,
            "incident.unacknowledged" => IncidentEventType::Unacknowledged,
            "incident.resolved" => IncidentEventType::Resolved,
            "incident.reopened" => IncidentEventType::Reopened,
            "incident.escalated" => IncidentEventType::Escalated,
            "incident.reassigned" => IncidentEventType::Reassigned,
            "incident.delegated" => IncidentEventType::Delegated,
            "incident.priority_updated" => IncidentEventType::PriorityUpdated,
            other => IncidentEventType::Other(other.to_owned()),
        };
        (
            snapshot.id.clone(),
            None,
            PdEventKind::Incident {
                event_type: t,
                data: snapshot,
            },
        )
    } else {
        let inc = &data["incident"];
        let kind = match event_type.as_str() {
            "incident.annotated" => PdEventKind::Annotated {
                note: Some(NoteId::new(s(&data["id"]))),
                content: s(&data["content"]),
            },
            "incident.responder.added" => PdEventKind::ResponderAdded {
                responder: named(&data["user"]).expect("user"),
                message: data["message"].as_str().map(str::to_owned),
            },
            "incident.responder.replied" => PdEventKind::ResponderReplied {
                responder: named(&data["user"]).expect("user"),
                state: s(&data["state"]),
            },
            "incident.status_update_published" => PdEventKind::StatusUpdatePublished {
                message: s(&data["message"]),
            },
            other => PdEventKind::Other {
                event_type: other.to_owned(),
            },
        };
        (
            IncidentId::new(s(&inc["id"])),
            inc["summary"].as_str().map(str::to_owned),
            kind,
        )
    };
    PdEvent {
        event_id: EventId::new(s(&e["id"])),
        webhook_id: None,
        change_key: None,
        occurred_at: ts(e["occurred_at"].as_str().expect("occurred_at")),
        incident,
        incident_title: title,
        agent,
        kind,
        target_channel: channel.map(ChannelId::new),
    }
}

/// Translates the `data` of an incident event.
pub fn snapshot(data: &Value) -> IncidentSnapshot {
    IncidentSnapshot {
        id: IncidentId::new(s(&data["id"])),
        number: data["number"].as_u64(),
        title: s(&data["title"]),
        html_url: data["html_url"].as_str().map(str::to_owned),
        status: match data["status"].as_str() {
            Some("acknowledged") => Status::Acknowledged,
            Some("resolved") => Status::Resolved,
            _ => Status::Triggered,
        },
        urgency: match data["urgency"].as_str() {
            Some("low") => Some(Urgency::Low),
            Some("high") => Some(Urgency::High),
            _ => None,
        },
        priority: named::<PriorityId>(&data["priority"]),
        service: named::<ServiceId>(&data["service"]),
        teams: data["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(named::<TeamId>)
            .collect(),
        escalation_policy: named::<EscalationPolicyId>(&data["escalation_policy"]),
        assignees: data["assignees"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(named::<PdUserId>)
            .collect(),
        as_of: None,
    }
}

/// A variant of a webhook fixture: another event type, status, id and time.
pub fn variant(base: &Value, event_type: &str, status: &str, id: &str, at: &str) -> Value {
    let mut v = base.clone();
    v["event"]["event_type"] = event_type.into();
    v["event"]["id"] = id.into();
    v["event"]["occurred_at"] = at.into();
    v["event"]["data"]["status"] = status.into();
    if status == "resolved" {
        v["event"]["data"]["assignees"] = Value::Array(Vec::new());
    }
    v
}

/// The PagerDuty user of the fixtures (`PJ0LVEB`, "PIG 208").
pub fn pig208() -> Actor {
    Actor::Mapped {
        slack: SlackUserId::new("UA8RXUSPL"),
        pd_user: PdUserId::new("PJ0LVEB"),
        email: Email::new("pig208@example.com"),
        authorized: Ok(()),
    }
}

/// A Slack user who maps to no PagerDuty user.
pub fn unmapped() -> Actor {
    Actor::Unmapped {
        slack: SlackUserId::new("U111"),
        reason: Refusal {
            reason: "No PagerDuty user has the email seratch@example.com.".into(),
            how_to_fix: "Ask an admin to add an [[identity]] override for you.".into(),
        },
    }
}

/// A mapped Slack user whom policy refuses.
pub fn unauthorized() -> Actor {
    Actor::Mapped {
        slack: SlackUserId::new("U12345678"),
        pd_user: PdUserId::new("PXRUEF2"),
        email: Email::new("harsh@example.com"),
        authorized: Err(Refusal {
            reason: "Only members of the team on call may resolve.".into(),
            how_to_fix: "Ask the on-call engineer, or an admin to change the [policy].".into(),
        }),
    }
}

/// A Slack action with a key derived from `action_ts`.
pub fn click(actor: Actor, incident: &str, kind: ActionKind, action_ts: &str) -> SlackAction {
    SlackAction {
        key: ActionKey::new(action_ts, actor.slack(), kind.name()),
        actor,
        incident: IncidentId::new(incident),
        kind,
        channel: Some(ChannelId::new("CBR2V3XEX")),
    }
}

/// A test configuration with a 2 s coalescing window and short retries.
pub fn config() -> EngineConfig {
    EngineConfig {
        retry_backoff: vec![Duration::from_secs(1), Duration::from_secs(4)],
        max_attempts: 3,
        coalesce_window: Duration::from_secs(2),
        pending_timeout: Duration::from_secs(120),
        echo_ttl: Duration::from_secs(600),
        dedupe_ttl: Duration::from_secs(7 * 24 * 3600),
        dedupe_capacity: 32_768,
        action_dedupe_capacity: 64,
        sla: SlaConfig::default(),
    }
}

/// A one-line rendering of a card.
pub fn card_line(card: &CardView) -> String {
    let mut line = format!(
        "{:?} {}",
        card.title,
        if card.resolved {
            "Resolved(no buttons)"
        } else {
            card.status.label()
        }
    );
    if !card.assignees.is_empty() {
        let names: Vec<&str> = card.assignees.iter().map(|a| a.name.as_str()).collect();
        write!(line, " assignees={names:?}").unwrap();
    }
    if let Some(priority) = &card.priority {
        write!(line, " priority={priority}").unwrap();
    }
    if let Some(policy) = &card.escalation_policy {
        write!(line, " policy={policy:?}").unwrap();
    }
    if let Some(level) = card.escalation_level {
        write!(line, " level={level}").unwrap();
    }
    if card.urgency == Some(sync_core::Urgency::Low) {
        line.push_str(" urgency=low");
    }
    if let Some(snoozed) = &card.snoozed {
        write!(
            line,
            " snoozed-by={} until={}",
            snoozed.by,
            snoozed.until.as_millis()
        )
        .unwrap();
    }
    if let Some(levels) = card.last_level {
        write!(line, " last-level={levels}").unwrap();
    }
    if let Some(p) = &card.pending {
        write!(line, " pending={:?}", p.text).unwrap();
    }
    if let Some(e) = &card.last_error {
        write!(line, " error={e:?}").unwrap();
    }
    if card.minimal {
        line.push_str(" (minimal)");
    }
    line
}

/// A one-line rendering of a thread line.
pub fn timeline(line: &TimelineLine) -> String {
    match &line.actor {
        Some(LineActor::Slack(u)) => format!("<@{u}> {}", line.text),
        Some(LineActor::Pd(u)) => format!("{} {}", u.name, line.text),
        None => line.text.clone(),
    }
}

/// A one-line rendering of an effect.
pub fn effect_line(effect: &Effect) -> String {
    match effect {
        Effect::PostCard {
            id,
            channel,
            card,
            look_since,
        } => {
            let look = match look_since {
                Some(at) => format!(" (first look for one posted since {at})"),
                None => String::new(),
            };
            format!("PostCard {id} in {channel}{look}: {}", card_line(card))
        }
        Effect::UpdateCard {
            id,
            channel,
            ts,
            card,
        } => format!("UpdateCard {id} {channel}/{ts}: {}", card_line(card)),
        Effect::PostThread {
            id,
            thread_ts,
            lines,
            ..
        } => {
            let lines: Vec<String> = lines.iter().map(timeline).collect();
            format!("PostThread {id} under {thread_ts}: {lines:?}")
        }
        Effect::Ephemeral { id, user, text, .. } => {
            format!("Ephemeral {id} to {user}: {text:?}")
        }
        Effect::PdMutation {
            id,
            actor,
            mutation,
            look_since,
            ..
        } => {
            let look = match look_since {
                Some(at) => format!(" (first look for it since {at})"),
                None => String::new(),
            };
            format!("PdMutation {id} From={}{look} {mutation:?}", actor.email)
        }
        Effect::PdRead { id, read, .. } => format!("PdRead {id} {read:?}"),
        Effect::Dropped { incident, reason } => match incident {
            Some(i) => format!("Dropped {i} {reason:?}"),
            None => format!("Dropped {reason:?}"),
        },
    }
}

/// Drives an engine and records a readable transcript of inputs and effects.
pub struct Script {
    pub engine: Engine,
    pub now: Timestamp,
    pub log: String,
    pub last: Vec<Effect>,
}

impl Script {
    /// A script starting at `start`.
    pub fn new(start: &str) -> Self {
        Self {
            engine: Engine::new(config()).unwrap(),
            now: ts(start),
            log: String::new(),
            last: Vec::new(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, millis: i64) -> &mut Self {
        self.now = Timestamp::from_millis(self.now.as_millis() + millis);
        self
    }

    /// Handles one input, recording `label` and the effects.
    pub fn input(&mut self, label: &str, input: Input) -> &mut Self {
        let effects = self.engine.handle(self.now, input);
        writeln!(self.log, "> {label}").unwrap();
        for e in &effects {
            writeln!(self.log, "  {}", effect_line(e)).unwrap();
        }
        self.last = effects;
        self
    }

    /// Delivers a webhook.
    pub fn pd(&mut self, label: &str, v: &Value) -> &mut Self {
        let event = pd_event(v, Some("CBR2V3XEX"));
        self.input(label, Input::PdEvent(event))
    }

    /// Delivers a Slack action.
    pub fn click(&mut self, label: &str, action: SlackAction) -> &mut Self {
        self.input(label, Input::SlackAction(action))
    }

    /// Reports the outcome of the effect whose id ends with `suffix`.
    pub fn done(&mut self, suffix: &str, outcome: Outcome) -> &mut Self {
        let id = self.find(suffix);
        let label = format!("done {id}: {}", outcome_label(&outcome));
        self.input(&label, Input::EffectDone { id, outcome })
    }

    /// Ticks at the engine's next timeout.
    pub fn tick(&mut self) -> &mut Self {
        let label = match self.engine.poll_timeout() {
            Some((at, reason)) => {
                self.now = self.now.max(at);
                format!("tick {reason:?}")
            }
            None => "tick (no timer)".to_owned(),
        };
        self.input(&label, Input::Tick)
    }

    /// The id of the awaited effect whose last segment is `stem`, or else the only one whose
    /// last segment without its number is `stem` without its number (`card3` finds the card
    /// call in flight whatever its number).
    pub fn find(&self, stem: &str) -> EffectId {
        let exact = format!("/{stem}");
        if let Some(id) = self
            .engine
            .incidents()
            .flat_map(|st| st.awaited_effects())
            .find(|id| id.as_str().ends_with(&exact))
        {
            return id;
        }
        let stem = stem.trim_end_matches(|c: char| c.is_ascii_digit());
        let mut found: Vec<EffectId> = self
            .engine
            .incidents()
            .flat_map(|st| st.awaited_effects())
            .filter(|id| {
                let last = id.as_str().rsplit('/').next().unwrap_or_default();
                last.trim_end_matches(|c: char| c.is_ascii_digit()) == stem
            })
            .collect();
        assert!(
            found.len() <= 1,
            "several awaited effects match {stem}: {found:?}"
        );
        found
            .pop()
            .unwrap_or_else(|| panic!("no awaited effect matches {stem}"))
    }
}

/// A short label for an outcome.
pub fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Posted { ts } => format!("Posted {ts}"),
        Outcome::PdIncident(s) => format!("PdIncident({:?})", s.status),
        other => format!("{other:?}"),
    }
}

/// A Slack message ts for tests.
pub fn msg_ts(value: &str) -> MessageTs {
    MessageTs::new(value)
}

/// A webhook id for tests.
pub fn webhook(value: &str) -> WebhookId {
    WebhookId::new(value)
}

/// The Slack user mapped to the fixtures' `PXRUEF2` ("Harsh Santwani").
pub fn harsh() -> Actor {
    Actor::Mapped {
        slack: SlackUserId::new("U12345678"),
        pd_user: PdUserId::new("PXRUEF2"),
        email: Email::new("harsh@example.com"),
        authorized: Ok(()),
    }
}

/// `incident.acknowledged.json` (PQ1K5C8 "Test Incident", PJ0LVEB) turned into its trigger.
pub fn pq1k5c8(event_type: &str, status: &str, id: &str, at: &str) -> Value {
    variant(
        &fixture("incident.acknowledged.json"),
        event_type,
        status,
        id,
        at,
    )
}

/// The incident data of a webhook fixture value.
pub fn data_of(v: &Value) -> IncidentSnapshot {
    snapshot(&v["event"]["data"])
}
