//! Translation of PagerDuty wire models into `sync-core` inputs.
//!
//! Pure functions: a verified webhook envelope becomes a [`PdEvent`] (or `None` when it is not
//! about an incident), a REST incident becomes an [`IncidentSnapshot`]. Routing (which channel a
//! new card goes to) is decided here from the configured routes. A route's `events` filter is
//! matched against the type of the webhook that brought the incident in; an incident found by
//! the reconciler came with no event, so it is routed as [`RECONCILED_EVENT_TYPE`]
//! (`incident.triggered`): the card it must (re)post goes where its trigger would have sent it.

use ids::{IncidentId, WebhookId};
use pd_client::rest::{Incident, IncidentStatus, Reference, Urgency as PdUrgency};
use pd_client::webhook::{EventData, EventType, WebhookEvent, WebhookIncident};
use sync_core::{
    IncidentEventType, IncidentSnapshot, Named, PdEvent, PdEventKind, Status, Timestamp, Urgency,
};

use crate::config::{Config, PdMode, RouteQuery, Urgency as RouteUrgency};

fn named<I: Clone>(r: &Reference<I>) -> Named<I> {
    Named::new(r.id.clone(), r.summary.clone().unwrap_or_default())
}

fn status(s: IncidentStatus) -> Option<Status> {
    match s {
        IncidentStatus::Triggered => Some(Status::Triggered),
        IncidentStatus::Acknowledged => Some(Status::Acknowledged),
        IncidentStatus::Resolved => Some(Status::Resolved),
        IncidentStatus::Unknown => None,
    }
}

fn urgency(u: Option<PdUrgency>) -> Option<Urgency> {
    match u {
        Some(PdUrgency::High) => Some(Urgency::High),
        Some(PdUrgency::Low) => Some(Urgency::Low),
        Some(PdUrgency::Unknown) | None => None,
    }
}

/// Converts a `time` timestamp into the engine's milliseconds.
pub fn timestamp(t: time::OffsetDateTime) -> Timestamp {
    let millis = t.unix_timestamp_nanos() / 1_000_000;
    Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// The snapshot carried by an incident webhook's `data`.
pub fn webhook_snapshot(i: &WebhookIncident) -> Option<IncidentSnapshot> {
    Some(IncidentSnapshot {
        id: i.id.clone(),
        number: Some(i.number),
        title: i.title.clone(),
        html_url: i.html_url.clone(),
        status: status(i.status)?,
        urgency: urgency(i.urgency),
        priority: i.priority.as_ref().map(named),
        service: i.service.as_ref().map(named),
        teams: i.teams.iter().map(named).collect(),
        escalation_policy: i.escalation_policy.as_ref().map(named),
        assignees: i.assignees.iter().map(named).collect(),
        as_of: None,
    })
}

/// The snapshot of a REST `GET /incidents/{id}` (or `PUT`) response.
pub fn rest_snapshot(i: &Incident) -> Option<IncidentSnapshot> {
    Some(IncidentSnapshot {
        id: i.id.clone(),
        number: Some(i.incident_number),
        title: i.title.clone(),
        html_url: i.html_url.clone(),
        status: status(i.status)?,
        urgency: urgency(i.urgency),
        priority: i.priority.as_ref().map(named),
        service: i.service.as_ref().map(named),
        teams: i.teams.iter().map(named).collect(),
        escalation_policy: i.escalation_policy.as_ref().map(named),
        assignees: i.assignments.iter().map(|a| named(&a.assignee)).collect(),
        as_of: rest_as_of(i),
    })
}

/// PagerDuty's time up to which a REST incident reflects every change: the newest of its
/// `updated_at`, `last_status_change_at` and the answer's `Date` (all on PagerDuty's clock, so
/// the bridge's own clock never orders a read against a webhook's `occurred_at`).
pub fn rest_as_of(i: &Incident) -> Option<Timestamp> {
    [i.updated_at, i.last_status_change_at, i.served_at]
        .into_iter()
        .flatten()
        .map(timestamp)
        .max()
}

/// The event type a reconciled incident is routed as: the reconciler (re)posts the card that its
/// `incident.triggered` webhook would have posted.
pub const RECONCILED_EVENT_TYPE: &str = "incident.triggered";

/// The routing query for a snapshot and the event type that brought it.
pub fn route_channel(
    config: &Config,
    snapshot: Option<&IncidentSnapshot>,
    event_type: Option<&str>,
) -> Option<ids::ChannelId> {
    let teams: Vec<ids::TeamId> = snapshot
        .map(|s| s.teams.iter().map(|t| t.id.clone()).collect())
        .unwrap_or_default();
    let q = RouteQuery {
        service: snapshot.and_then(|s| s.service.as_ref().map(|n| &n.id)),
        teams: &teams,
        urgency: snapshot.and_then(|s| match s.urgency {
            Some(Urgency::High) => Some(RouteUrgency::High),
            Some(Urgency::Low) => Some(RouteUrgency::Low),
            None => None,
        }),
        priority: snapshot.and_then(|s| s.priority.as_ref().map(|p| p.name.as_str())),
        event_type,
    };
    config.channel_for(&q).cloned()
}

fn incident_event_type(t: &EventType) -> IncidentEventType {
    match t {
        EventType::IncidentTriggered => IncidentEventType::Triggered,
        EventType::IncidentAcknowledged => IncidentEventType::Acknowledged,
        EventType::IncidentUnacknowledged => IncidentEventType::Unacknowledged,
        EventType::IncidentResolved => IncidentEventType::Resolved,
        EventType::IncidentReopened => IncidentEventType::Reopened,
        EventType::IncidentEscalated => IncidentEventType::Escalated,
        EventType::IncidentReassigned => IncidentEventType::Reassigned,
        EventType::IncidentDelegated => IncidentEventType::Delegated,
        EventType::IncidentPriorityUpdated => IncidentEventType::PriorityUpdated,
        other => IncidentEventType::Other(other.as_str().to_owned()),
    }
}

/// The incident an event is about, when it is about one.
pub fn event_incident(event: &WebhookEvent) -> Option<&IncidentId> {
    event.incident_id()
}

/// Translates a verified webhook event into an engine input; `None` when the event is not
/// about an incident (service events, `pagey.ping`) or carries an unknown status.
pub fn pd_event(
    config: &Config,
    event: &WebhookEvent,
    webhook_id: Option<WebhookId>,
) -> Option<PdEvent> {
    let incident = event.incident_id()?.clone();
    let agent = event.agent.as_ref().and_then(|a| {
        a.user_id()
            .map(|id| Named::new(id, a.summary.clone().unwrap_or_default()))
    });
    let event_type = event.event_type.as_str();
    let (kind, incident_title, snapshot) = match &event.data {
        EventData::Incident(data) => {
            let snapshot = webhook_snapshot(data)?;
            let title = Some(snapshot.title.clone());
            (
                PdEventKind::Incident {
                    event_type: incident_event_type(&event.event_type),
                    data: snapshot.clone(),
                },
                title,
                Some(snapshot),
            )
        }
        EventData::IncidentNote(note) => (
            PdEventKind::Annotated {
                note: Some(note.id.clone()),
                content: note.content.clone(),
            },
            note.incident.summary.clone(),
            None,
        ),
        EventData::IncidentResponder(r)
            if event.event_type == EventType::IncidentResponderAdded =>
        {
            match &r.user {
                Some(user) => (
                    PdEventKind::ResponderAdded {
                        responder: named(user),
                        message: r.message.clone(),
                    },
                    r.incident.summary.clone(),
                    None,
                ),
                None => (
                    PdEventKind::Other {
                        event_type: event_type.to_owned(),
                    },
                    r.incident.summary.clone(),
                    None,
                ),
            }
        }
        EventData::IncidentResponder(r) => match &r.user {
            Some(user) => (
                PdEventKind::ResponderReplied {
                    responder: named(user),
                    state: r.state.clone().unwrap_or_default(),
                },
                r.incident.summary.clone(),
                None,
            ),
            None => (
                PdEventKind::Other {
                    event_type: event_type.to_owned(),
                },
                r.incident.summary.clone(),
                None,
            ),
        },
        EventData::IncidentStatusUpdate(u) => (
            PdEventKind::StatusUpdatePublished {
                message: u.message.clone(),
            },
            u.incident.summary.clone(),
            None,
        ),
        _ => (
            PdEventKind::Other {
                event_type: event_type.to_owned(),
            },
            None,
            None,
        ),
    };
    let target_channel = route_channel(config, snapshot.as_ref(), Some(event_type));
    let occurred_at = timestamp(event.occurred_at);
    // In hybrid mode the poller may bring the same change: both name it alike.
    let change_key = (config.pagerduty.poll.mode == PdMode::Hybrid).then(|| {
        let note = match &kind {
            PdEventKind::Annotated { content, .. } => Some(content.as_str()),
            _ => None,
        };
        crate::poll::change_key(&incident, event_type, occurred_at, note)
    });
    Some(PdEvent {
        event_id: event.id.clone(),
        webhook_id,
        change_key,
        occurred_at,
        incident,
        incident_title,
        agent,
        kind,
        target_channel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_stamped_with_pagerdutys_newest_time_never_the_bridges() {
        let mut incident: Incident = serde_json::from_value(serde_json::json!({
            "id": "PT4KHLK",
            "incident_number": 1234,
            "title": "The server is on fire.",
            "status": "acknowledged",
            "updated_at": "2015-10-06T21:38:23Z",
            "last_status_change_at": "2015-10-06T21:40:00Z",
        }))
        .expect("incident");
        let at = |s: &str| {
            timestamp(
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .expect("time"),
            )
        };
        assert_eq!(rest_as_of(&incident), Some(at("2015-10-06T21:40:00Z")));
        let snapshot = rest_snapshot(&incident).expect("snapshot");
        assert_eq!(snapshot.as_of, Some(at("2015-10-06T21:40:00Z")));
        // The answer's `Date` is later still: everything before it is reflected.
        incident.served_at = Some(
            time::OffsetDateTime::parse(
                "2015-10-06T21:41:05Z",
                &time::format_description::well_known::Rfc3339,
            )
            .expect("time"),
        );
        assert_eq!(rest_as_of(&incident), Some(at("2015-10-06T21:41:05Z")));
        incident.updated_at = None;
        incident.last_status_change_at = None;
        incident.served_at = None;
        assert_eq!(rest_as_of(&incident), None);
    }
}
