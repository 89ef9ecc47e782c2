//! The incident data inputs carry, and the ids of effects.

use std::fmt;

use ids::{EscalationPolicyId, IncidentId, PdUserId, PriorityId, ServiceId, TeamId};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A PagerDuty incident status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `triggered`.
    Triggered,
    /// `acknowledged`.
    Acknowledged,
    /// `resolved`.
    Resolved,
}

impl Status {
    /// The label shown on the card: `Triggered`, `Acknowledged` or `Resolved`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Triggered => "Triggered",
            Status::Acknowledged => "Acknowledged",
            Status::Resolved => "Resolved",
        }
    }
}

/// A PagerDuty incident urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// `high`.
    High,
    /// `low`.
    Low,
}

/// A reference to a PagerDuty object: its id and its human name (`summary`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Named<T> {
    /// The object's id.
    pub id: T,
    /// The object's human name, such as a user's name or a priority's `P1`.
    pub name: String,
}

impl<T> Named<T> {
    /// A reference from an id and a name.
    pub fn new(id: T, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// A PagerDuty user reference.
pub type PdUserRef = Named<PdUserId>;

/// Everything the card shows about an incident, as PagerDuty reports it in an incident webhook's
/// `data` or a `GET /incidents/{id}` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    /// The incident id.
    pub id: IncidentId,
    /// The incident number (`number` in webhooks, `incident_number` in REST).
    pub number: Option<u64>,
    /// The title.
    pub title: String,
    /// The incident's page in the PagerDuty web UI.
    pub html_url: Option<String>,
    /// The status.
    pub status: Status,
    /// The urgency, if known.
    pub urgency: Option<Urgency>,
    /// The priority, if set.
    pub priority: Option<Named<PriorityId>>,
    /// The service.
    pub service: Option<Named<ServiceId>>,
    /// The teams.
    pub teams: Vec<Named<TeamId>>,
    /// The escalation policy.
    pub escalation_policy: Option<Named<EscalationPolicyId>>,
    /// The assignees (empty once resolved).
    pub assignees: Vec<PdUserRef>,
    /// For data read from PagerDuty's REST API: PagerDuty's own time (its clock, not the
    /// caller's) up to which the data reflects every change, such as the newest of the
    /// incident's `updated_at`, `last_status_change_at` and the answer's `Date`. The engine
    /// orders a read by it against events' `occurred_at`; without it, by the caller's clock
    /// when the read was sent. `None` for webhook data, which is ordered by `occurred_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Timestamp>,
}

/// The kind of an incident event whose `data` is a full incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentEventType {
    /// `incident.triggered`.
    Triggered,
    /// `incident.acknowledged`.
    Acknowledged,
    /// `incident.unacknowledged`.
    Unacknowledged,
    /// `incident.resolved`.
    Resolved,
    /// `incident.reopened`.
    Reopened,
    /// `incident.escalated`.
    Escalated,
    /// `incident.reassigned`.
    Reassigned,
    /// `incident.delegated`.
    Delegated,
    /// `incident.priority_updated`.
    PriorityUpdated,
    /// Any other event whose `data` is a full incident (`incident.service_updated`,
    /// `incident.title_updated`, …), with its `event_type`.
    Other(String),
}

/// The deterministic id of an effect, `"{incident}/{tag}"`. The outbox dedupes on it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectId(String);

impl EffectId {
    /// The id of effect `tag` of `incident`.
    pub(crate) fn new(incident: &IncidentId, tag: impl fmt::Display) -> Self {
        Self(format!("{incident}/{tag}"))
    }

    /// Wraps a stored id.
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The incident whose effect this is: the part before the first `/` (`None` for a stored
    /// string the engine did not make).
    pub fn incident(&self) -> Option<IncidentId> {
        self.0
            .split_once('/')
            .map(|(incident, _)| IncidentId::new(incident))
    }
}

impl fmt::Debug for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EffectId({:?})", self.0)
    }
}

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
