//! Models of incident creation (`POST /incidents`), priorities (`GET /priorities`) and the
//! service listing (`GET /services`).

use ids::{EscalationPolicyId, PdUserId, PriorityId, ServiceId};
use serde::{Deserialize, Serialize};

use super::{AssignmentRequest, Pagination, Reference, Service, Urgency};

/// The body of `POST /incidents`: `{"incident": {"type": "incident", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIncidentRequest {
    /// The incident to create.
    pub incident: NewIncident,
}

/// An incident to create. Build it with [`NewIncident::new`] and the setters; unset fields are
/// left out of the JSON, so PagerDuty applies the service's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIncident {
    /// Always `incident`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The title.
    pub title: String,
    /// The service the incident is opened on.
    pub service: Reference<ServiceId>,
    /// The urgency; the service's urgency rule applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// The priority, by id (only on accounts with priorities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Reference<PriorityId>>,
    /// The details shown on the incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<IncidentBody>,
    /// The de-duplication key: PagerDuty refuses a second create with the same key on the same
    /// service while the first incident is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_key: Option<String>,
    /// The escalation policy, instead of the service's (exclusive with `assignments`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<Reference<EscalationPolicyId>>,
    /// Direct assignees, instead of an escalation policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Vec<AssignmentRequest>>,
}

impl NewIncident {
    /// An incident titled `title` on `service`, de-duplicated by `incident_key`.
    pub fn new(
        title: impl Into<String>,
        service: ServiceId,
        incident_key: impl Into<String>,
    ) -> Self {
        Self {
            kind: "incident".to_owned(),
            title: title.into(),
            service: Reference::new(service, "service_reference"),
            urgency: None,
            priority: None,
            body: None,
            incident_key: Some(incident_key.into()),
            escalation_policy: None,
            assignments: None,
        }
    }

    /// Sets the urgency.
    pub fn urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = Some(urgency);
        self
    }

    /// Sets the priority by id.
    pub fn priority(mut self, priority: PriorityId) -> Self {
        self.priority = Some(Reference::new(priority, "priority_reference"));
        self
    }

    /// Sets the details (`body.details`).
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.body = Some(IncidentBody {
            kind: "incident_body".to_owned(),
            details: details.into(),
        });
        self
    }

    /// Assigns the incident to `users` directly.
    pub fn assign_to(mut self, users: &[PdUserId]) -> Self {
        self.assignments = Some(
            users
                .iter()
                .map(|id| AssignmentRequest {
                    assignee: Reference::new(id.clone(), "user_reference"),
                })
                .collect(),
        );
        self
    }

    /// Routes the incident through `policy` instead of the service's escalation policy.
    pub fn escalation_policy(mut self, policy: EscalationPolicyId) -> Self {
        self.escalation_policy = Some(Reference::new(policy, "escalation_policy_reference"));
        self
    }
}

/// The `body` of a new incident: `{"type": "incident_body", "details": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentBody {
    /// Always `incident_body`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text shown as the incident's details.
    pub details: String,
}

/// A priority of the account (`GET /priorities`), most severe first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priority {
    /// The priority id.
    pub id: PriorityId,
    /// The name, such as `P1`.
    #[serde(default)]
    pub name: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A page of `GET /priorities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityList {
    /// The priorities of this page (empty on accounts without priorities).
    #[serde(default)]
    pub priorities: Vec<Priority>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

/// A page of `GET /services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// The services of this page.
    #[serde(default)]
    pub services: Vec<Service>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}
