//! `POST /incidents/{id}/snooze`: only an acknowledged incident can be snoozed, for 1 second
//! to 7 days, as the `From` user; PagerDuty answers 201 with the incident.

use http::StatusCode;
use serde_json::{Value, json};

use super::{
    Outgoing, RecordedRequest, Reply, State, Status, actor, bad_request, find_incident, not_found,
    now, rest_incident,
};

/// The longest snooze PagerDuty accepts, in seconds.
const MAX_SECS: u64 = 604_800;

pub(super) fn snooze(
    state: &mut State,
    req: &RecordedRequest,
    key: &str,
) -> (Reply, Vec<Outgoing>) {
    if let Err(reply) = actor(state, req) {
        return (*reply, Vec::new());
    }
    let Some(id) = find_incident(state, key).map(|i| i.id.clone()) else {
        return (not_found(), Vec::new());
    };
    let secs = req.json().get("duration").and_then(Value::as_u64);
    let Some(secs @ 1..=MAX_SECS) = secs else {
        let detail = format!("duration must be an integer from 1 to {MAX_SECS}");
        return (
            bad_request(2001, "Invalid Input Provided", &[detail.as_str()]),
            Vec::new(),
        );
    };
    let incident = state
        .incidents
        .get_mut(&id)
        .expect("incident looked up above");
    if incident.status != Status::Acknowledged {
        return (
            bad_request(
                2001,
                "Invalid Input Provided",
                &["Incident must be acknowledged to be snoozed"],
            ),
            Vec::new(),
        );
    }
    let at = now();
    incident.snoozed_until = Some(at + time::Duration::seconds(secs as i64));
    incident.updated_at = at;
    let incident = incident.clone();
    (
        Reply::json(
            StatusCode::CREATED,
            &json!({"incident": rest_incident(state, &incident)}),
        ),
        Vec::new(),
    )
}
