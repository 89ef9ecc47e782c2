//! Every user-visible English string the engine writes: replies, card text and thread lines.

use std::time::Duration;

use ids::{PdUserId, SlackUserId};

use crate::{
    ActionKind, IncidentEventType, IncidentState, LineActor, LineKind, Outcome, PdUserRef,
    TimelineLine,
};

pub(crate) fn names(users: &[PdUserRef]) -> String {
    users
        .iter()
        .map(|u| u.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn secs(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

pub(crate) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(crate) fn outcome_name(outcome: &Outcome) -> &'static str {
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
pub(crate) fn status_line(
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
pub(crate) fn action_line(
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
