//! Responder requests (`POST /incidents/{id}/responder_requests`).

use http::Method;
use ids::{EscalationPolicyId, IncidentId, PdUserId};
use serde_json::json;

use super::{Call, PdClient};
use crate::Error;

/// Who a responder request asks: a user, or an escalation policy (its first level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderTarget {
    /// A PagerDuty user.
    User(PdUserId),
    /// An escalation policy.
    Policy(EscalationPolicyId),
}

impl PdClient {
    /// `POST /incidents/{id}/responder_requests`: asks `targets` to help with `message`, on
    /// behalf of `requester` (PagerDuty takes the requester in the body, not in `From`). The
    /// responders' answers arrive as `incident.responder.added` / `.replied` webhooks.
    pub async fn request_responders(
        &self,
        id: &IncidentId,
        requester: &PdUserId,
        message: &str,
        targets: &[ResponderTarget],
    ) -> Result<(), Error> {
        if targets.is_empty() {
            return Err(Error::InvalidRequest(
                "a responder request needs at least one target".into(),
            ));
        }
        let targets: Vec<serde_json::Value> = targets
            .iter()
            .map(|t| {
                let (id, kind) = match t {
                    ResponderTarget::User(u) => (u.as_str(), "user_reference"),
                    ResponderTarget::Policy(p) => (p.as_str(), "escalation_policy_reference"),
                };
                json!({"responder_request_target": {"id": id, "type": kind}})
            })
            .collect();
        let call = Call::new(
            Method::POST,
            "/incidents/{id}/responder_requests",
            vec!["incidents", id.as_str(), "responder_requests"],
        )
        .json(&json!({
            "requester_id": requester.as_str(),
            "message": message,
            "responder_request_targets": targets,
        }))?;
        self.json_call::<serde::de::IgnoredAny>(call)
            .await
            .map(|_| ())
    }
}
