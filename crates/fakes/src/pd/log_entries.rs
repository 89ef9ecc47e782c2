//! `GET /log_entries` of the fake PagerDuty: every incident event the fake sends as a webhook is
//! also logged as the log entry PagerDuty would list, at the same time (in whole seconds, as
//! PagerDuty's REST API writes times).
//!
//! Behaviour follows PagerDuty where pdbridge depends on it: entries are listed newest first,
//! paginated with `limit`/`offset` (limit ≤ 100, offset + limit ≤ 10,000); `since` and `until`
//! must be RFC 3339 times and bound `created_at` (inclusive); `include[]` accepts only
//! `incidents`, `services`, `channels` and `teams`, and with `incidents` each entry's incident is
//! the full incident as it is now, else a reference; `is_overview` must be `true` or `false`
//! (`true` keeps only status changes and notes).

use ids::IncidentId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    API_BASE, HTML_BASE, State, bad_request, find_incident, incident_ref, page, page_params,
    paged_reply, query_pairs, query_values, rest_incident, rfc3339_seconds,
};
use crate::http::{RecordedRequest, Reply};

/// One logged change.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    id: String,
    kind: &'static str,
    created_at: OffsetDateTime,
    agent: Option<Value>,
    incident: IncidentId,
    assignees: Vec<Value>,
    note: Option<String>,
}

/// The log, oldest first.
#[derive(Debug, Default)]
pub(super) struct Log {
    entries: Vec<Entry>,
}

/// The entry type PagerDuty logs for a webhook event type, if it logs one.
fn kind(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "incident.triggered" => "trigger_log_entry",
        "incident.acknowledged" => "acknowledge_log_entry",
        "incident.unacknowledged" => "unacknowledge_log_entry",
        "incident.resolved" => "resolve_log_entry",
        "incident.reassigned" => "assign_log_entry",
        "incident.escalated" => "escalate_log_entry",
        "incident.delegated" => "delegate_log_entry",
        "incident.annotated" => "annotate_log_entry",
        _ => return None,
    })
}

/// Logs the event the fake is about to send (its `data` in webhook form) at `at`.
pub(super) fn record(
    state: &mut State,
    event_type: &str,
    agent: Option<&Value>,
    data: &Value,
    incident: Option<&IncidentId>,
    at: OffsetDateTime,
) {
    let (Some(kind), Some(incident)) = (kind(event_type), incident) else {
        return;
    };
    let id = state.next_id("QFAKELOG");
    let assignees = match kind {
        "assign_log_entry" | "escalate_log_entry" => {
            data["assignees"].as_array().cloned().unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let note = (kind == "annotate_log_entry")
        .then(|| data["content"].as_str().map(str::to_owned))
        .flatten();
    state.log.entries.push(Entry {
        id,
        kind,
        created_at: at,
        agent: agent.cloned(),
        incident: incident.clone(),
        assignees,
        note,
    });
}

fn time_param(pairs: &[(String, String)], key: &str) -> Result<Option<OffsetDateTime>, Box<Reply>> {
    match query_values(pairs, key).first() {
        None => Ok(None),
        Some(v) => OffsetDateTime::parse(v, &Rfc3339).map(Some).map_err(|_| {
            let message = format!("Invalid {key}");
            Box::new(bad_request(2001, "Invalid Input Provided", &[&message]))
        }),
    }
}

/// `GET /log_entries`.
pub(super) fn list(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let (since, until) = match (time_param(&pairs, "since"), time_param(&pairs, "until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(reply), _) | (_, Err(reply)) => return *reply,
    };
    let includes = query_values(&pairs, "include[]");
    if includes
        .iter()
        .any(|i| !matches!(i.as_str(), "incidents" | "services" | "channels" | "teams"))
    {
        return bad_request(2001, "Invalid Input Provided", &["Invalid include"]);
    }
    let overview = match query_values(&pairs, "is_overview")
        .first()
        .map(String::as_str)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return bad_request(2001, "Invalid Input Provided", &["Invalid is_overview"]),
    };
    let second = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap_or(t);
    let listed: Vec<&Entry> = state
        .log
        .entries
        .iter()
        .rev()
        .filter(|e| since.is_none_or(|s| second(e.created_at) >= s))
        .filter(|e| until.is_none_or(|u| second(e.created_at) <= u))
        .filter(|e| !overview || !matches!(e.kind, "assign_log_entry" | "escalate_log_entry"))
        .collect();
    let (items, meta) = page(&listed, limit, offset);
    let with_incident = includes.iter().any(|i| i == "incidents");
    let items = items
        .into_iter()
        .map(|e| entry_json(state, e, with_incident))
        .collect();
    paged_reply("log_entries", items, meta)
}

fn entry_json(state: &State, e: &Entry, with_incident: bool) -> Value {
    let incident = find_incident(state, e.incident.as_str());
    let incident = match (incident, with_incident) {
        (Some(i), true) => rest_incident(state, i),
        (Some(i), false) => incident_ref(i),
        (None, _) => json!({"id": e.incident.as_str(), "type": "incident_reference"}),
    };
    let channel = match &e.note {
        Some(text) => json!({"type": "note", "summary": text}),
        None => json!({"type": if e.agent.is_some() { "website" } else { "api" }}),
    };
    json!({
        "id": e.id,
        "type": e.kind,
        "summary": e.kind.trim_end_matches("_log_entry"),
        "self": format!("{API_BASE}/log_entries/{}", e.id),
        "html_url": format!("{HTML_BASE}/incidents/{}/log_entries/{}", e.incident, e.id),
        "created_at": rfc3339_seconds(e.created_at),
        "agent": e.agent,
        "channel": channel,
        "incident": incident,
        "assignees": e.assignees,
        "teams": [],
        "contexts": [],
    })
}
