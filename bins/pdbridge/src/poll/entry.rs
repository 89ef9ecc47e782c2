//! One polled log entry to the engine input its webhook would have produced.
//!
//! The webhook and the entry of one change carry different ids, so both paths also name the
//! change itself ([`change_key`]: incident, webhook event type, the second it happened and, for
//! a note, its text); in `hybrid` mode the engine drops whichever arrives second. Log entries
//! carry whole seconds, webhooks milliseconds: the key uses the second.

use ids::{EventId, IncidentId, PdUserId};
use pd_client::rest::{LogEntry, LogIncident, Reference};
use sync_core::{IncidentEventType, Named, PdEvent, PdEventKind, Status, Timestamp};

use crate::config::Config;
use crate::translate::{rest_snapshot, route_channel, timestamp};

/// The key naming one change whichever path brought it.
pub fn change_key(
    incident: &IncidentId,
    event_type: &str,
    at: Timestamp,
    note: Option<&str>,
) -> String {
    let second = at.as_millis().div_euclid(1000);
    match note {
        Some(text) => format!("{incident}/{event_type}/{second}/{text}"),
        None => format!("{incident}/{event_type}/{second}"),
    }
}

/// What an entry type means: the webhook event type it stands for and the status it leaves.
fn meaning(kind: &str) -> Option<(IncidentEventType, Option<Status>)> {
    Some(match kind {
        "trigger_log_entry" => (IncidentEventType::Triggered, Some(Status::Triggered)),
        // The spec names the type both ways.
        "acknowledge_log_entry" | "acknowledgement_log_entry" => {
            (IncidentEventType::Acknowledged, Some(Status::Acknowledged))
        }
        "unacknowledge_log_entry" => (IncidentEventType::Unacknowledged, Some(Status::Triggered)),
        "resolve_log_entry" => (IncidentEventType::Resolved, Some(Status::Resolved)),
        "assign_log_entry" => (IncidentEventType::Reassigned, None),
        "escalate_log_entry" => (IncidentEventType::Escalated, None),
        "delegate_log_entry" => (IncidentEventType::Delegated, None),
        _ => return None,
    })
}

fn webhook_type(t: &IncidentEventType) -> &str {
    match t {
        IncidentEventType::Triggered => "incident.triggered",
        IncidentEventType::Acknowledged => "incident.acknowledged",
        IncidentEventType::Unacknowledged => "incident.unacknowledged",
        IncidentEventType::Resolved => "incident.resolved",
        IncidentEventType::Reopened => "incident.reopened",
        IncidentEventType::Escalated => "incident.escalated",
        IncidentEventType::Reassigned => "incident.reassigned",
        IncidentEventType::Delegated => "incident.delegated",
        IncidentEventType::PriorityUpdated => "incident.priority_updated",
        IncidentEventType::Other(t) => t,
    }
}

fn named<I: Clone>(r: &Reference<I>) -> Named<I> {
    Named::new(r.id.clone(), r.summary.clone().unwrap_or_default())
}

/// The engine input for `entry`, or `None` for entries no webhook stands for (notifications,
/// snoozes, urgency changes) and for an entry whose incident was not included.
pub fn log_entry_event(config: &Config, entry: &LogEntry) -> Option<PdEvent> {
    let incident_id = entry.incident.id().clone();
    let occurred_at = timestamp(entry.created_at);
    let agent = entry.agent.as_ref().and_then(|a| {
        a.user_id()
            .map(|id: PdUserId| Named::new(id, a.summary.clone().unwrap_or_default()))
    });
    let LogIncident::Full(incident) = &entry.incident else {
        return None;
    };
    let (kind, title, snapshot, event_type, note) = if entry.kind == "annotate_log_entry" {
        let content = entry.channel.as_ref()?.summary.clone()?;
        let kind = PdEventKind::Annotated {
            note: None,
            content: content.clone(),
        };
        (
            kind,
            Some(incident.title.clone()),
            None,
            "incident.annotated".to_owned(),
            Some(content),
        )
    } else {
        let (event_type, status) = meaning(&entry.kind)?;
        let mut data = rest_snapshot(incident)?;
        data.as_of = None;
        if let Some(status) = status {
            data.status = status;
        }
        if !entry.assignees.is_empty() {
            data.assignees = entry.assignees.iter().map(named).collect();
        }
        let name = webhook_type(&event_type).to_owned();
        let title = Some(data.title.clone());
        let kind = PdEventKind::Incident {
            event_type,
            data: data.clone(),
        };
        (kind, title, Some(data), name, None)
    };
    let target_channel = route_channel(config, snapshot.as_ref(), Some(&event_type));
    Some(PdEvent {
        event_id: EventId::new(format!("log_entry:{}", entry.id)),
        webhook_id: None,
        change_key: Some(change_key(
            &incident_id,
            &event_type,
            occurred_at,
            note.as_deref(),
        )),
        occurred_at,
        incident: incident_id,
        incident_title: title,
        agent,
        kind,
        target_channel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[pagerduty]\ntoken = \"t\"\nmode = \"poll\"\n[slack]\nbot_token = \"xoxb-1\"\n\
                    signing_secret = \"s\"\ndefault_channel = \"C0DEFAULT\"\n";
        Config::from_toml_str(text, &std::collections::BTreeMap::new()).expect("config")
    }

    #[test]
    fn the_recorded_sample_becomes_the_webhooks_input() {
        let text =
            include_str!("../../../../fixtures/pagerduty/log_entries.list.openapi-example.json");
        let page: pd_client::rest::LogEntryList = serde_json::from_str(text).expect("sample");
        let entry = &page.log_entries[0];
        assert_eq!(entry.kind, "trigger_log_entry");
        // The sample was fetched without `include[]=incidents`: nothing to render from.
        assert!(matches!(entry.incident, LogIncident::Reference(_)));
        assert_eq!(log_entry_event(&config(), entry), None);

        let mut full = serde_json::from_str::<serde_json::Value>(text).expect("json");
        full["log_entries"][0]["incident"] = serde_json::json!({
            "id": "PT4KHLK", "type": "incident", "incident_number": 1234,
            "title": "The server is on fire.", "status": "resolved",
            "assignments": [], "urgency": "high",
        });
        let page: pd_client::rest::LogEntryList = serde_json::from_value(full).expect("full");
        let event = log_entry_event(&config(), &page.log_entries[0]).expect("event");
        assert_eq!(event.event_id.as_str(), "log_entry:Q02JTSNZWHSEKV");
        assert_eq!(event.incident.as_str(), "PT4KHLK");
        assert_eq!(event.agent, None, "a service is no user");
        let PdEventKind::Incident { event_type, data } = &event.kind else {
            panic!("{event:?}");
        };
        assert_eq!(*event_type, IncidentEventType::Triggered);
        // The status the entry left, not the incident's status now.
        assert_eq!(data.status, Status::Triggered);
        assert_eq!(
            event.change_key.as_deref(),
            Some("PT4KHLK/incident.triggered/1446855260")
        );
        assert_eq!(
            event.target_channel.map(|c| c.to_string()).as_deref(),
            Some("C0DEFAULT")
        );
    }
}
