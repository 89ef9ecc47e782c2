//! `POST /incidents/{id}/responder_requests` and the responders' answers. A request names its
//! requester in the body (`requester_id`, not `From`), a message and at least one target, each a
//! known user or escalation policy; every user asked (an escalation policy asks its first level)
//! gets an `incident.responder.added` webhook in state `pending`, and
//! [`FakePagerDuty::answer_responder_request`] sends `incident.responder.replied` (`accepted`
//! or `declined`), shaped like the recorded payloads in `fixtures/pagerduty-webhooks/`.

use std::collections::BTreeMap;

use http::StatusCode;
use ids::{EscalationPolicyId, IncidentId, PdUserId};
use serde_json::{Value, json};

use super::{
    FakePagerDuty, Outgoing, RecordedRequest, Reply, State, Status, bad_request, event,
    find_incident, incident_ref, not_found, now, policy_ref, rfc3339, user_ref,
};

/// The responders asked per incident: the user, the policy they were asked through, and the
/// message.
pub(super) type Asked = BTreeMap<(IncidentId, PdUserId), (Option<EscalationPolicyId>, String)>;

fn invalid(detail: &str) -> (Reply, Vec<Outgoing>) {
    (
        bad_request(2001, "Invalid Input Provided", &[detail]),
        Vec::new(),
    )
}

/// `POST /incidents/{id}/responder_requests`.
pub(super) fn request(
    state: &mut State,
    req: &RecordedRequest,
    key: &str,
) -> (Reply, Vec<Outgoing>) {
    let Some(incident) = find_incident(state, key).cloned() else {
        return (not_found(), Vec::new());
    };
    let body = req.json();
    let requester = body
        .get("requester_id")
        .and_then(Value::as_str)
        .map(PdUserId::new);
    let Some(requester) = requester.filter(|r| state.users.contains_key(r)) else {
        return invalid("requester_id must be a user of the account");
    };
    let Some(message) = body
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return invalid("message is required");
    };
    let targets = body
        .get("responder_request_targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if targets.is_empty() {
        return invalid("responder_request_targets must name at least one target");
    }
    if incident.status == Status::Resolved {
        return (
            bad_request(1001, "Incident Already Resolved", &[]),
            Vec::new(),
        );
    }
    // Each asked user with the policy they were asked through.
    let mut asked: Vec<(PdUserId, Option<EscalationPolicyId>)> = Vec::new();
    for target in &targets {
        let t = &target["responder_request_target"];
        let id = t["id"].as_str().unwrap_or_default();
        match t["type"].as_str() {
            Some("user_reference") if state.users.contains_key(&PdUserId::new(id)) => {
                asked.push((PdUserId::new(id), None));
            }
            Some("escalation_policy_reference") => {
                let policy = EscalationPolicyId::new(id);
                let Some(first) = state.policies.get(&policy).and_then(|p| p.levels.first()) else {
                    return invalid("an escalation policy target does not exist");
                };
                asked.extend(first.iter().map(|u| (u.clone(), Some(policy.clone()))));
            }
            _ => return invalid("a responder request target is not a known user or policy"),
        }
    }
    let mut outgoing = Vec::new();
    for (user, policy) in asked {
        state.responders.insert(
            (incident.id.clone(), user.clone()),
            (policy.clone(), message.clone()),
        );
        let data = responder_data(
            state,
            &incident.id,
            &user,
            policy.as_ref(),
            &message,
            "pending",
        );
        outgoing.extend(event(
            state,
            "incident.responder.added",
            Some(&requester),
            data,
            Some(&incident.id),
            None,
        ));
    }
    let reply = json!({"responder_request": {
        "incident": incident_ref(&incident),
        "requester": user_ref(state, &requester),
        "requested_at": rfc3339(now()),
        "message": message,
        "responder_request_targets": targets,
    }});
    (Reply::json(StatusCode::OK, &reply), outgoing)
}

/// The `data` of a responder webhook (`type: incident_responder`).
fn responder_data(
    state: &State,
    incident: &IncidentId,
    user: &PdUserId,
    policy: Option<&EscalationPolicyId>,
    message: &str,
    answer: &str,
) -> Value {
    let incident = state
        .incidents
        .get(incident)
        .map_or(Value::Null, incident_ref);
    json!({
        "incident": incident,
        "user": user_ref(state, user),
        "escalation_policy": policy.map(|p| policy_ref(state, p)),
        "message": message,
        "state": answer,
        "type": "incident_responder",
    })
}

impl FakePagerDuty {
    /// `user` answers the responder request they got on `incident`, as in PagerDuty's app:
    /// `incident.responder.replied` in state `accepted` or `declined`. Returns false when
    /// `user` was not asked.
    pub fn answer_responder_request(
        &self,
        incident: &IncidentId,
        user: &PdUserId,
        accepted: bool,
    ) -> bool {
        let outgoing = {
            let mut state = self.state();
            let Some((policy, message)) = state
                .responders
                .get(&(incident.clone(), user.clone()))
                .cloned()
            else {
                return false;
            };
            let answer = if accepted { "accepted" } else { "declined" };
            let data = responder_data(&state, incident, user, policy.as_ref(), &message, answer);
            event(
                &mut state,
                "incident.responder.replied",
                Some(user),
                data,
                Some(incident),
                None,
            )
        };
        self.shared.enqueue(outgoing);
        true
    }
}
