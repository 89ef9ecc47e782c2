//! Incident creation (`POST /incidents`), priorities (`GET /priorities`) and the service
//! listing (`GET /services`) of the fake PagerDuty.
//!
//! Behaviour follows PagerDuty where pdbridge depends on it:
//! - `POST /incidents` needs a `From` naming a known user who may change incidents (as every
//!   mutation), a `title`, and a `service` that exists and is not disabled
//!   ([`FakePagerDuty::disable_service`]). The incident follows the given escalation policy,
//!   or the service's ([`FakePagerDuty::set_service_policy`]); `assignments` and
//!   `escalation_policy` are exclusive. The answer is 201 and `incident.triggered` is sent with
//!   the `From` user as `agent`.
//! - A second create with the same `incident_key` on the same service while the first incident
//!   is open is refused (400, code 2001, "Open incident with matching dedup key already exists
//!   on this service"), as PagerDuty documents; the incident is found again with
//!   `GET /incidents?incident_key=…`.
//! - Priorities exist only once set ([`FakePagerDuty::set_priorities`]): without them
//!   `GET /priorities` is empty and a create naming a priority is refused (code 2001); an
//!   unknown priority id is refused with code 1020.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use ids::{EscalationPolicyId, IncidentId, PdUserId, PriorityId, ServiceId};
use serde_json::{Value, json};

use super::{
    API_BASE, FakePagerDuty, FakeService, Outgoing, RecordedRequest, Reply, State, Status, actor,
    bad_request, create_incident, event, page, page_params, paged_reply, query_pairs, query_values,
    rest_incident, service_json, webhook_incident,
};

/// What a create added to an incident beyond the fields of [`super::FakeIncident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCreation {
    /// The `From` user who created it.
    pub created_by: PdUserId,
    /// The priority, if one was given.
    pub priority: Option<PriorityId>,
    /// The `body.details` text, if given.
    pub details: Option<String>,
}

/// The creation-related state of the fake account.
#[derive(Debug, Default)]
pub(super) struct CreateState {
    priorities: Vec<(PriorityId, String)>,
    disabled: BTreeSet<ServiceId>,
    service_policies: BTreeMap<ServiceId, EscalationPolicyId>,
    created: BTreeMap<IncidentId, FakeCreation>,
    /// Priorities set by `PUT /incidents/{id}`, which win over the create's.
    updated: BTreeMap<IncidentId, PriorityId>,
}

impl FakePagerDuty {
    /// Enables priorities with these names, most severe first, and returns their ids.
    pub fn set_priorities(&self, names: &[&str]) -> Vec<PriorityId> {
        let mut state = self.state();
        let list: Vec<(PriorityId, String)> = names
            .iter()
            .map(|n| (PriorityId::new(state.next_id("PRI")), (*n).to_owned()))
            .collect();
        state.create.priorities.clone_from(&list);
        list.into_iter().map(|(id, _)| id).collect()
    }

    /// Disables `service`: creates on it are refused.
    pub fn disable_service(&self, service: &ServiceId) {
        self.state().create.disabled.insert(service.clone());
    }

    /// Makes `policy` the escalation policy of `service`, which a create without its own
    /// policy or assignees follows.
    pub fn set_service_policy(&self, service: &ServiceId, policy: &EscalationPolicyId) {
        self.state()
            .create
            .service_policies
            .insert(service.clone(), policy.clone());
    }

    /// What the create of incident `id` carried, if the incident was created through
    /// `POST /incidents`.
    pub fn creation(&self, id: &IncidentId) -> Option<FakeCreation> {
        self.state().create.created.get(id).cloned()
    }
}

/// The `priority` field of an incident: a reference, or null.
pub(super) fn priority_ref(state: &State, incident: &IncidentId) -> Value {
    let updated = state.create.updated.get(incident).cloned();
    let Some(id) = updated.or_else(|| {
        state
            .create
            .created
            .get(incident)
            .and_then(|c| c.priority.clone())
    }) else {
        return Value::Null;
    };
    let name = state
        .create
        .priorities
        .iter()
        .find(|(p, _)| *p == id)
        .map(|(_, n)| n.clone());
    json!({
        "id": id.as_str(),
        "type": "priority_reference",
        "summary": name,
        "self": format!("{API_BASE}/priorities/{id}"),
        "html_url": null,
    })
}

/// Applies `changes.priority` of `PUT /incidents/{id}` when present: `Ok(true)` when it changed
/// the incident (PagerDuty then sends `incident.priority_updated`). An account without
/// priorities answers 400 (2001), an unknown priority id 400 (1020), a resolved incident 400
/// (1001), like the real API.
pub(super) fn apply_priority(
    state: &mut State,
    incident: &IncidentId,
    status: Status,
    changes: &Value,
) -> Result<bool, Box<Reply>> {
    let Some(priority) = changes.get("priority") else {
        return Ok(false);
    };
    if state.create.priorities.is_empty() {
        return Err(Box::new(bad_request(
            2001,
            "Invalid Input Provided",
            &["Priorities are not enabled for this account"],
        )));
    }
    let Some(id) = priority.get("id").and_then(Value::as_str) else {
        return Err(Box::new(bad_request(
            2001,
            "Invalid Input Provided",
            &["priority must be a priority reference"],
        )));
    };
    let Some((id, _)) = state
        .create
        .priorities
        .iter()
        .find(|(p, _)| p.as_str() == id)
    else {
        return Err(Box::new(bad_request(1020, "Priority Not Found", &[])));
    };
    if status == Status::Resolved {
        return Err(Box::new(bad_request(
            1001,
            "Incident Already Resolved",
            &[],
        )));
    }
    let id = id.clone();
    let before = state.create.updated.insert(incident.clone(), id.clone());
    let created = state
        .create
        .created
        .get(incident)
        .and_then(|c| c.priority.as_ref());
    Ok(before.as_ref().or(created) != Some(&id))
}

/// The `status` of a service.
pub(super) fn service_status(state: &State, service: &ServiceId) -> &'static str {
    if state.create.disabled.contains(service) {
        "disabled"
    } else {
        "active"
    }
}

/// The escalation policy a service's incidents follow, if set.
pub(super) fn service_policy(state: &State, service: &ServiceId) -> Option<EscalationPolicyId> {
    state.create.service_policies.get(service).cloned()
}

fn invalid(errors: &[&str]) -> Reply {
    bad_request(2001, "Invalid Input Provided", errors)
}

/// `POST /incidents`.
pub(super) fn create(state: &mut State, req: &RecordedRequest) -> (Reply, Vec<Outgoing>) {
    match try_create(state, req) {
        Ok(ok) => ok,
        Err(reply) => (*reply, Vec::new()),
    }
}

fn try_create(
    state: &mut State,
    req: &RecordedRequest,
) -> Result<(Reply, Vec<Outgoing>), Box<Reply>> {
    let actor = actor(state, req)?;
    let body = req.json();
    let Some(new) = body.get("incident").filter(|c| c.is_object()) else {
        return Err(Box::new(invalid(&["incident is required"])));
    };
    if new.get("type").and_then(Value::as_str) != Some("incident") {
        return Err(Box::new(invalid(&["incident.type must be incident"])));
    }
    let title = new.get("title").and_then(Value::as_str).unwrap_or("");
    if title.trim().is_empty() {
        return Err(Box::new(invalid(&["Incident title cannot be empty"])));
    }
    let Some(service) = new.pointer("/service/id").and_then(Value::as_str) else {
        return Err(Box::new(invalid(&["Incident service is required"])));
    };
    let service = ServiceId::new(service);
    if !state.services.contains_key(&service) {
        return Err(Box::new(invalid(&["Service not found"])));
    }
    if state.create.disabled.contains(&service) {
        return Err(Box::new(invalid(&["Service is disabled"])));
    }
    let urgency = match new.get("urgency") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if u == "high" || u == "low" => Some(u.clone()),
        Some(_) => return Err(Box::new(invalid(&["Urgency must be high or low"]))),
    };
    let priority = match new.get("priority") {
        None | Some(Value::Null) => None,
        Some(p) => {
            if state.create.priorities.is_empty() {
                return Err(Box::new(invalid(&[
                    "Priorities are not enabled for this account",
                ])));
            }
            let id = p.get("id").and_then(Value::as_str).unwrap_or("");
            match state
                .create
                .priorities
                .iter()
                .find(|(p, _)| p.as_str() == id)
            {
                Some((id, _)) => Some(id.clone()),
                None => return Err(Box::new(bad_request(1020, "Invalid Priority", &[]))),
            }
        }
    };
    let details = new
        .pointer("/body/details")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let key = new
        .get("incident_key")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(key) = &key {
        let open_twin = state.incidents.values().any(|i| {
            i.service == service && i.incident_key == *key && i.status != Status::Resolved
        });
        if open_twin {
            return Err(Box::new(invalid(&[
                "Open incident with matching dedup key already exists on this service",
            ])));
        }
    }
    let assignees: Option<Vec<PdUserId>> =
        new.get("assignments")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|a| a.pointer("/assignee/id").and_then(Value::as_str))
                    .map(PdUserId::new)
                    .collect()
            });
    let explicit_policy = new
        .pointer("/escalation_policy/id")
        .and_then(Value::as_str)
        .map(EscalationPolicyId::new);
    if assignees.is_some() && explicit_policy.is_some() {
        return Err(Box::new(invalid(&[
            "Cannot specify both assignments and an escalation policy",
        ])));
    }
    if let Some(list) = &assignees
        && (list.is_empty() || list.iter().any(|u| !state.users.contains_key(u)))
    {
        return Err(Box::new(bad_request(
            1007,
            "Assigned To User Not Found",
            &[],
        )));
    }
    let policy = match explicit_policy.or_else(|| service_policy(state, &service)) {
        Some(p) if state.policies.contains_key(&p) => p,
        Some(_) => {
            return Err(Box::new(bad_request(
                1014,
                "Escalation Policy Not Found",
                &[],
            )));
        }
        None => return Err(Box::new(invalid(&["Service has no escalation policy"]))),
    };
    let mut incident = create_incident(state, title, &policy, &service);
    if let Some(urgency) = urgency {
        incident.urgency = urgency;
    }
    if let Some(key) = key {
        incident.incident_key = key;
    }
    if let Some(list) = assignees {
        incident.assignees = list;
    }
    state
        .incidents
        .insert(incident.id.clone(), incident.clone());
    state.create.created.insert(
        incident.id.clone(),
        FakeCreation {
            created_by: actor.clone(),
            priority,
            details,
        },
    );
    let data = webhook_incident(state, &incident);
    let outgoing = event(
        state,
        "incident.triggered",
        Some(&actor),
        data,
        Some(&incident.id),
        None,
    );
    let reply = Reply::json(
        StatusCode::CREATED,
        &json!({"incident": rest_incident(state, &incident)}),
    );
    Ok((reply, outgoing))
}

/// `GET /priorities`.
pub(super) fn list_priorities(state: &State, req: &RecordedRequest) -> Reply {
    let (limit, offset) = match page_params(&query_pairs(req)) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let (items, meta) = page(&state.create.priorities, limit, offset);
    let items = items
        .into_iter()
        .map(|(id, name)| {
            json!({
                "id": id.as_str(),
                "type": "priority",
                "summary": name,
                "name": name,
                "description": format!("Priority {name}"),
                "self": format!("{API_BASE}/priorities/{id}"),
                "html_url": null,
            })
        })
        .collect();
    paged_reply("priorities", items, meta)
}

/// `GET /services`, filtered by `query` (a case-insensitive substring of the name).
pub(super) fn list_services(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let query = query_values(&pairs, "query")
        .first()
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let all: Vec<&FakeService> = state
        .services
        .values()
        .filter(|s| s.name.to_lowercase().contains(&query))
        .collect();
    let (items, meta) = page(&all, limit, offset);
    let items = items.into_iter().map(|s| service_json(state, s)).collect();
    paged_reply("services", items, meta)
}

/// Whether incident `i` passes the `incident_key` and `service_ids[]` filters of
/// `GET /incidents`.
pub(super) fn list_filter(pairs: &[(String, String)], i: &super::FakeIncident) -> bool {
    let keys = query_values(pairs, "incident_key");
    let services = query_values(pairs, "service_ids[]");
    (keys.is_empty() || keys.contains(&i.incident_key))
        && (services.is_empty() || services.iter().any(|s| s == i.service.as_str()))
}
