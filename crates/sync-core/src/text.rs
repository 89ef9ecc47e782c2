//! Every user-visible English string the engine writes: replies, card text and thread lines.

use std::time::Duration;

use ids::{IncidentId, PdUserId, SlackUserId};

use crate::{
    ActionKind, Declaration, IncidentEventType, IncidentSnapshot, LineActor, LineKind, Outcome,
    PdUserRef, TimelineLine, Urgency,
};

/// The display names of `users`, comma-separated.
pub(crate) fn names(users: &[PdUserRef]) -> String {
    users
        .iter()
        .map(|u| u.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The card's line for an incident declared from Slack: `Declared by <@U…> from Slack`, or
/// `Declared by <@U…> (no PagerDuty seat) via ops@example.com`, and the incidents declared with it.
pub(crate) fn declared_by(d: &Declaration) -> String {
    let mut text = match &d.via {
        Some(account) => format!("Declared by <@{}> (no PagerDuty seat) via {account}", d.by),
        None => format!("Declared by <@{}> from Slack", d.by),
    };
    if !d.together.is_empty() {
        let list: Vec<String> = d
            .together
            .iter()
            .map(|s| match s.number {
                Some(n) => format!("#{n}"),
                None => s.incident.to_string(),
            })
            .collect();
        text.push_str(&format!("; declared together with {}", list.join(", ")));
    }
    text
}

/// A duration as whole minutes when it is one, else as seconds.
pub(crate) fn secs(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// `text` with its first letter in upper case.
pub(crate) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An outcome's name in an error message.
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
    info: Option<&IncidentSnapshot>,
    agent: Option<PdUserRef>,
) -> Option<TimelineLine> {
    let assignees = info.map(|info| names(&info.assignees)).unwrap_or_default();
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
            let policy = info
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
    info: Option<&IncidentSnapshot>,
    level: Option<u32>,
) -> TimelineLine {
    let assignee_name = |to: &PdUserId| {
        info.and_then(|info| info.assignees.iter().find(|a| &a.id == to))
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
        ActionKind::AddNote(content) => (LineKind::Note, note_added(content)),
        ActionKind::ChangeUrgency(urgency) => (LineKind::Urgency, urgency_changed(*urgency)),
        ActionKind::Snooze(minutes) => (
            LineKind::Snoozed,
            format!("snoozed the incident for {}", duration(*minutes)),
        ),
        ActionKind::ChangePriority { to, from } => (
            LineKind::Priority,
            match from {
                Some(from) => format!("changed priority {from} → {}", to.name),
                None => format!("set priority {}", to.name),
            },
        ),
    };
    TimelineLine {
        kind: line_kind,
        actor: Some(LineActor::Slack(slack.clone())),
        text,
    }
}

/// The thread line of an urgency change, after the actor: `changed urgency to low`.
pub(crate) fn urgency_changed(urgency: Urgency) -> String {
    let name = match urgency {
        Urgency::High => "high",
        Urgency::Low => "low",
    };
    format!("changed urgency to {name}")
}

/// A snooze duration as people say it: `30 min`, `4 h`, `3 days`.
pub(crate) fn duration(minutes: u32) -> String {
    match minutes {
        m if m % (24 * 60) == 0 && m >= 48 * 60 => format!("{} days", m / (24 * 60)),
        m if m % 60 == 0 => format!("{} h", m / 60),
        m => format!("{m} min"),
    }
}

/// The reply to Snooze on an incident that is not acknowledged.
pub(crate) fn snooze_needs_ack(incident: &str) -> String {
    format!(
        "{incident} is not acknowledged, and PagerDuty snoozes only acknowledged incidents, so \
         the bridge did not send it. Acknowledge it first."
    )
}

/// How replies name an incident: `#number title`, else its title, else its id.
pub(crate) fn describe(
    info: Option<&IncidentSnapshot>,
    title_hint: Option<&str>,
    id: &IncidentId,
) -> String {
    match info {
        Some(info) => match info.number {
            Some(number) => format!("#{number} {}", info.title),
            None => info.title.clone(),
        },
        None => match title_hint {
            Some(title) => title.to_owned(),
            None => id.to_string(),
        },
    }
}

/// The card's line for a pending action; `retrying` adds why it is being retried.
pub(crate) fn pending(
    kind: &ActionKind,
    by: &SlackUserId,
    retrying: bool,
    last_error: Option<&str>,
) -> String {
    let mut text = format!("{}… requested by <@{}>", kind.progressive(), by);
    if retrying {
        let why = last_error.unwrap_or("PagerDuty is busy");
        text.push_str(&format!(" (retrying: {why})"));
    }
    text
}

// ---- Thread lines for PagerDuty events ------------------------------------------------------

/// The thread text of a note.
pub(crate) fn note_added(content: &str) -> String {
    format!("added a note: {content}")
}

/// The thread text of a responder request.
pub(crate) fn responder_requested(responder: &str, message: Option<String>) -> String {
    let mut text = format!("requested {responder} as a responder");
    if let Some(message) = message.filter(|m| !m.trim().is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    text
}

/// The thread text of a responder's answer.
pub(crate) fn responder_replied(state: &str) -> String {
    format!("{state} the responder request")
}

/// The thread text of a published status update.
pub(crate) fn status_update_published(message: &str) -> String {
    format!("published a status update: {message}")
}

// ---- Replies to the clicking user and errors shown on the card -------------------------------

/// An action's verb as replies write it (`add note`).
pub(crate) fn verb(kind: &ActionKind) -> String {
    kind.name().replace('_', " ")
}

/// The reply when the bridge has no state for the clicked incident.
pub(crate) fn unknown_incident(id: &IncidentId) -> String {
    format!(
        "The bridge has no record of incident {id}, so it did nothing. \
         Open the incident in PagerDuty to act on it."
    )
}

/// The reply to a Slack user with no PagerDuty user.
pub(crate) fn unmapped(what: &str, incident: &str, reason: &str, how_to_fix: &str) -> String {
    format!("You can't {what} {incident} from Slack: {reason} {how_to_fix}")
}

/// The reply to a user who may not take the action.
pub(crate) fn unauthorized(what: &str, incident: &str, reason: &str, how_to_fix: &str) -> String {
    format!("You may not {what} {incident}: {reason} {how_to_fix}")
}

/// The reply to a resolve of a resolved incident.
pub(crate) fn already_resolved(incident: &str) -> String {
    format!("{incident} is already resolved.")
}

/// The reply to an acknowledge of an acknowledged incident.
pub(crate) fn already_acknowledged(incident: &str) -> String {
    format!("{incident} is already acknowledged.")
}

/// The reply to an action that would reopen an incident the engine knows is resolved.
pub(crate) fn would_reopen(incident: &str, what: &str) -> String {
    format!(
        "{incident} is resolved, and {what} would reopen it in PagerDuty, so the \
         bridge did not send it. Reopen it in PagerDuty first if that is intended."
    )
}

/// The reply to a More actions item (which would not reopen the incident) on a resolved one.
pub(crate) fn resolved_no_more_actions(incident: &str, what: &str) -> String {
    format!(
        "{incident} is resolved in PagerDuty, so the bridge did not send {what}: a resolved \
         incident takes no more actions from Slack."
    )
}

/// The reply to an action while another one is pending.
pub(crate) fn busy(pending: &ActionKind, by: &SlackUserId) -> String {
    format!(
        "{}… requested by <@{}> is still waiting for PagerDuty. Try again once it is done.",
        pending.progressive(),
        by
    )
}

/// The error of an escalation without a policy.
pub(crate) fn no_escalation_policy() -> String {
    "the incident has no escalation policy".to_owned()
}

/// The reply when an action failed.
pub(crate) fn could_not(what: &str, incident: &str, error: &str) -> String {
    format!("Could not {what} {incident}: {error}")
}

/// The card's error line when an action failed.
pub(crate) fn failed(what: &str, error: &str) -> String {
    format!("{} failed: {error}", capitalize(what))
}

/// The reply when a resolve stopped an action whose mutation was in flight.
pub(crate) fn resolved_while_sending(incident: &str, what: &str) -> String {
    format!(
        "{incident} was resolved in PagerDuty while your {what} was being sent, so the \
         bridge stopped it; if it had already reached PagerDuty, check the incident there."
    )
}

/// The reply when a resolve stopped an action before its mutation was sent.
pub(crate) fn resolved_meanwhile(incident: &str, what: &str) -> String {
    format!(
        "{incident} was resolved in PagerDuty meanwhile, and {what} would reopen it, so \
         the bridge did not send it."
    )
}

/// The error shown while PagerDuty rate-limits an action.
pub(crate) fn rate_limited() -> String {
    "PagerDuty rate limit".to_owned()
}

/// The error of an action that ran out of attempts.
pub(crate) fn gave_up(error: &str, attempts: u32) -> String {
    format!("{error} (gave up after {attempts} attempts)")
}

/// The one reply after an action's first failed attempt.
pub(crate) fn retrying(what: &str, incident: &str, error: &str) -> String {
    format!(
        "PagerDuty did not accept {what} for {incident} yet ({error}); the bridge is \
         retrying and the card shows the result."
    )
}

/// The reply when the fresh read shows the incident resolved.
pub(crate) fn resolved_in_pagerduty(incident: &str, what: &str) -> String {
    format!(
        "{incident} is resolved in PagerDuty, and {what} would reopen it, \
         so the bridge did not send it."
    )
}

/// The reply when the incident was resolved while the escalation levels were read.
pub(crate) fn resolved_before_escalate(incident: &str) -> String {
    format!(
        "{incident} was resolved meanwhile, and escalate would reopen it, so \
         the bridge did not send it."
    )
}

/// The reply to an escalation at the top level.
pub(crate) fn top_level(incident: &str, current: u32, max: u32) -> String {
    format!(
        "{incident} is already at the top escalation level ({current} of {max}), \
         so there is no level to escalate to."
    )
}

/// The reply when PagerDuty reports the incident already in the requested state.
pub(crate) fn already_in_state(incident: &str) -> String {
    format!("PagerDuty reports {incident} already in that state; nothing changed.")
}

/// The error of an answer that does not fit the request.
pub(crate) fn unexpected_answer(outcome: &Outcome) -> String {
    format!(
        "unexpected answer from PagerDuty ({})",
        outcome_name(outcome)
    )
}

/// The error of a pending action PagerDuty did not confirm in time.
pub(crate) fn not_confirmed(timeout: Duration) -> String {
    format!("PagerDuty did not confirm within {}", secs(timeout))
}

/// Why a card post that reported success without a `ts` is not repeated.
pub(crate) fn post_without_ts() -> String {
    "the post returned no message ts".to_owned()
}

/// An ack reminder: `Not acknowledged after 5 min (SLA 5 min). Assigned to Alice, Bob`.
pub(crate) fn ack_overdue(waited: Duration, sla: Duration, assignees: &[PdUserRef]) -> String {
    let who = if assignees.is_empty() {
        "nobody".to_owned()
    } else {
        names(assignees)
    };
    format!(
        "Not acknowledged after {} (SLA {}). Assigned to {who}",
        secs(waited),
        secs(sla)
    )
}

/// The question to the owner of an acknowledged incident: `Alice: still on it? Acknowledged 30 min ago`.
pub(crate) fn still_on_it(owners: &[PdUserRef], since: Duration) -> String {
    let who = if owners.is_empty() {
        "Owner".to_owned()
    } else {
        names(owners)
    };
    format!("{who}: still on it? Acknowledged {} ago", secs(since))
}

/// The resolve breach line: `Not resolved after 2 h (SLA 2 h)`.
pub(crate) fn resolve_overdue(waited: Duration, sla: Duration) -> String {
    format!("Not resolved after {} (SLA {})", secs(waited), secs(sla))
}
