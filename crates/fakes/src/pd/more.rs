//! The More actions part of `PUT /incidents/{id}`: `urgency`.

use serde_json::Value;

use super::{FakeIncident, Reply, Status, bad_request};

/// Applies `changes.urgency` when present: `Ok(true)` when it changed the incident. An urgency
/// other than `high` or `low` answers 400 (2001), as does a resolved incident (1001).
pub(super) fn apply_urgency(
    incident: &mut FakeIncident,
    changes: &Value,
) -> Result<bool, Box<Reply>> {
    let Some(urgency) = changes.get("urgency") else {
        return Ok(false);
    };
    let Some(urgency @ ("high" | "low")) = urgency.as_str() else {
        return Err(Box::new(bad_request(
            2001,
            "Invalid Input Provided",
            &["urgency must be high or low"],
        )));
    };
    if incident.status == Status::Resolved {
        return Err(Box::new(bad_request(
            1001,
            "Incident Already Resolved",
            &[],
        )));
    }
    incident.urgency = urgency.to_owned();
    Ok(true)
}
