//! PagerDuty REST API v2 models: the request and response bodies pdbridge sends and reads.
//!
//! Every model is lenient on input: unknown fields are ignored, and fields PagerDuty may omit are
//! `Option`s or default to empty lists. Identifiers are the newtypes of the `ids` crate. The REST
//! incident uses `incident_number` and `assignments[].assignee`; the webhook incident (see
//! [`crate::webhook`]) uses `number` and `assignees`.

use ids::{
    Email, EscalationPolicyId, IncidentId, NoteId, PdUserId, PriorityId, Secret, ServiceId,
    SubscriptionId, TeamId,
};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

mod create;
mod log_entry;

pub use create::{
    CreateIncidentRequest, IncidentBody, NewIncident, Priority, PriorityList, ServiceList,
};
pub use log_entry::{Channel, LogEntry, LogEntryList, LogIncident};

/// A PagerDuty resource reference such as `{"id": "PXPGF42", "type": "user_reference", ...}`.
///
/// The id type says which kind of resource is referenced; `kind` keeps the wire `type` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference<I> {
    /// The referenced resource's id.
    pub id: I,
    /// The wire `type`, such as `user_reference` or `service_reference`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// A short human-readable summary (a user's name, an incident's title, a priority's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The API URL of the resource.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
    /// The web UI URL of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
}

impl<I> Reference<I> {
    /// A bare reference with only an id and a wire `type`, as used in request bodies.
    pub fn new(id: I, kind: &str) -> Self {
        Self {
            id,
            kind: kind.to_owned(),
            summary: None,
            self_url: None,
            html_url: None,
        }
    }
}

/// A reference to whoever performed an action: a user, a service or an integration.
pub type AgentReference = Reference<String>;

impl Reference<String> {
    /// The user id when this reference points at a user (`user_reference` or `user`).
    pub fn user_id(&self) -> Option<PdUserId> {
        matches!(self.kind.as_str(), "user_reference" | "user").then(|| PdUserId::new(&*self.id))
    }
}

/// The status of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Open and not yet acknowledged.
    Triggered,
    /// Someone is working on it.
    Acknowledged,
    /// Closed.
    Resolved,
    /// A status this crate does not know.
    #[serde(other)]
    Unknown,
}

impl IncidentStatus {
    /// The wire spelling (`unknown` for [`IncidentStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Unknown => "unknown",
        }
    }
}

/// The urgency of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// High urgency.
    High,
    /// Low urgency.
    Low,
    /// An urgency this crate does not know.
    #[serde(other)]
    Unknown,
}

/// The incident type (`{"name": "major"}`), added to payloads in 2024-09.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentType {
    /// The incident type name, such as `incident_default`.
    pub name: String,
}

/// The conference bridge of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceBridge {
    /// The dial-in number. PagerDuty sends a string, but some payloads carry a bare number.
    #[serde(default, deserialize_with = "string_or_number")]
    pub conference_number: Option<String>,
    /// The meeting URL.
    #[serde(default)]
    pub conference_url: Option<String>,
}

fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(de)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// One assignment of an incident to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// When the assignment was made.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// The assigned user.
    pub assignee: Reference<PdUserId>,
}

/// One acknowledgement of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// When the acknowledgement happened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Who acknowledged (usually a user).
    pub acknowledger: AgentReference,
}

/// A REST v2 incident (`GET /incidents/{id}`, `PUT /incidents/{id}` response, `GET /incidents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The incident id.
    pub id: IncidentId,
    /// The per-account incident number.
    pub incident_number: u64,
    /// The title.
    #[serde(default)]
    pub title: String,
    /// A summary such as `[#1234] The server is on fire.`.
    #[serde(default)]
    pub summary: Option<String>,
    /// The current status.
    pub status: IncidentStatus,
    /// The urgency.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The de-duplication key.
    #[serde(default)]
    pub incident_key: Option<String>,
    /// When the incident was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the incident last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When the incident's status last changed (its `updated_at` while triggered).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_status_change_at: Option<OffsetDateTime>,
    /// When the incident was resolved, if it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// The service the incident belongs to.
    #[serde(default)]
    pub service: Option<Reference<ServiceId>>,
    /// Current assignments (empty when resolved).
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    /// Current acknowledgements (empty when triggered or resolved).
    #[serde(default)]
    pub acknowledgements: Vec<Acknowledgement>,
    /// Who last changed the status.
    #[serde(default)]
    pub last_status_change_by: Option<AgentReference>,
    /// The escalation policy in charge.
    #[serde(default)]
    pub escalation_policy: Option<Reference<EscalationPolicyId>>,
    /// The teams of the incident.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The priority (its `summary` is the name, such as `P2`), if any.
    #[serde(default)]
    pub priority: Option<Reference<PriorityId>>,
    /// The conference bridge, if any.
    #[serde(default)]
    pub conference_bridge: Option<ConferenceBridge>,
    /// The incident type, if the payload has one.
    #[serde(default)]
    pub incident_type: Option<IncidentType>,
    /// Not part of the payload: the `Date` header of the answer that carried this incident
    /// (PagerDuty's clock), set by the client for `GET`, `PUT` and listings.
    #[serde(skip)]
    pub served_at: Option<OffsetDateTime>,
}

impl Incident {
    /// The ids of the users currently assigned, in PagerDuty's order.
    pub fn assignee_ids(&self) -> Vec<PdUserId> {
        self.assignments
            .iter()
            .map(|a| a.assignee.id.clone())
            .collect()
    }
}

/// `{"incident": {...}}`, the body of `GET` and `PUT /incidents/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEnvelope {
    /// The incident.
    pub incident: Incident,
}

/// Classic pagination fields of a list response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// The page size PagerDuty used.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The offset of this page.
    #[serde(default)]
    pub offset: Option<u32>,
    /// Whether more results follow.
    #[serde(default)]
    pub more: bool,
    /// The total count, only when `total=true` was asked for.
    #[serde(default)]
    pub total: Option<u64>,
}

/// A page of `GET /incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentList {
    /// The incidents of this page.
    #[serde(default)]
    pub incidents: Vec<Incident>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

/// The body of `PUT /incidents/{id}`: `{"incident": {"type": "incident_reference", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdateRequest {
    /// The changes.
    pub incident: IncidentUpdate,
}

/// The changes of one incident update; unset fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// Always `incident_reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The new status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IncidentStatus>,
    /// The resolution text (with `status: resolved` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The 1-based escalation level to escalate to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_level: Option<u32>,
    /// The new assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Vec<AssignmentRequest>>,
    /// The new urgency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// The new priority, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Reference<PriorityId>>,
}

/// One assignment in an update request: `{"assignee": {"id", "type": "user_reference"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRequest {
    /// The user to assign.
    pub assignee: Reference<PdUserId>,
}

impl IncidentUpdate {
    fn empty() -> Self {
        Self {
            kind: "incident_reference".to_owned(),
            status: None,
            resolution: None,
            escalation_level: None,
            assignments: None,
            urgency: None,
            priority: None,
        }
    }

    /// Change the urgency.
    pub fn urgency(urgency: Urgency) -> Self {
        Self {
            urgency: Some(urgency),
            ..Self::empty()
        }
    }

    /// Change the priority.
    pub fn priority(priority: PriorityId) -> Self {
        Self {
            priority: Some(Reference::new(priority, "priority_reference")),
            ..Self::empty()
        }
    }

    /// Acknowledge the incident.
    pub fn acknowledge() -> Self {
        Self {
            status: Some(IncidentStatus::Acknowledged),
            ..Self::empty()
        }
    }

    /// Resolve the incident, optionally with a resolution text.
    pub fn resolve(resolution: Option<String>) -> Self {
        Self {
            status: Some(IncidentStatus::Resolved),
            resolution,
            ..Self::empty()
        }
    }

    /// Escalate to the given 1-based level.
    pub fn escalate(level: u32) -> Self {
        Self {
            escalation_level: Some(level),
            ..Self::empty()
        }
    }

    /// Reassign to the given users.
    pub fn reassign(users: &[PdUserId]) -> Self {
        Self {
            assignments: Some(
                users
                    .iter()
                    .map(|id| AssignmentRequest {
                        assignee: Reference::new(id.clone(), "user_reference"),
                    })
                    .collect(),
            ),
            ..Self::empty()
        }
    }
}

/// An incident note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The note id.
    pub id: NoteId,
    /// The author (a user, or a bot user for event rules).
    #[serde(default)]
    pub user: Option<AgentReference>,
    /// The text.
    pub content: String,
    /// When the note was written.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// `{"note": {...}}`, the response of `POST /incidents/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteEnvelope {
    /// The note.
    pub note: Note,
}

/// `{"notes": [...]}`, the response of `GET /incidents/{id}/notes` (not paginated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteList {
    /// The notes, oldest first as PagerDuty returns them.
    #[serde(default)]
    pub notes: Vec<Note>,
}

/// The body of `POST /incidents/{id}/notes`: `{"note": {"content": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateNoteRequest {
    /// The note to create.
    pub note: NewNote,
}

/// The content of a note to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNote {
    /// The text.
    pub content: String,
}

/// A PagerDuty user role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Account administrator.
    Admin,
    /// Limited user.
    LimitedUser,
    /// Observer.
    Observer,
    /// Account owner.
    Owner,
    /// Read-only user.
    ReadOnlyUser,
    /// Restricted access.
    RestrictedAccess,
    /// Read-only limited user.
    ReadOnlyLimitedUser,
    /// Regular user.
    User,
    /// A role this crate does not know.
    #[serde(other)]
    Unknown,
}

/// A PagerDuty user (`GET /users/{id}`, `GET /users`).
///
/// The REST API has no "deactivated" flag: deleted users disappear from `GET /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id.
    pub id: PdUserId,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The login email (compare case-insensitively).
    pub email: Email,
    /// The IANA time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The role, if present.
    #[serde(default)]
    pub role: Option<UserRole>,
    /// The job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Whether an invitation is outstanding (the user never logged in).
    #[serde(default)]
    pub invitation_sent: Option<bool>,
    /// The teams the user belongs to.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// `{"user": {...}}`, the response of `GET /users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnvelope {
    /// The user.
    pub user: User,
}

/// A page of `GET /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    /// The users of this page.
    #[serde(default)]
    pub users: Vec<User>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRule {
    /// The rule id.
    #[serde(default)]
    pub id: Option<String>,
    /// Minutes before the incident escalates past this level.
    #[serde(default)]
    pub escalation_delay_in_minutes: u32,
    /// The users and schedules notified at this level.
    #[serde(default)]
    pub targets: Vec<AgentReference>,
}

impl EscalationRule {
    /// The ids of the users targeted directly (schedules are not expanded).
    pub fn user_ids(&self) -> Vec<PdUserId> {
        self.targets.iter().filter_map(Reference::user_id).collect()
    }
}

/// An escalation policy (`GET /escalation_policies/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    /// The policy id.
    pub id: EscalationPolicyId,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The levels in order: level `n` (1-based) is `escalation_rules[n - 1]`.
    #[serde(default)]
    pub escalation_rules: Vec<EscalationRule>,
    /// How many times the policy repeats after the last level.
    #[serde(default)]
    pub num_loops: u32,
    /// The teams of the policy.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The services using the policy.
    #[serde(default)]
    pub services: Vec<Reference<ServiceId>>,
}

impl EscalationPolicy {
    /// The number of levels.
    pub fn levels(&self) -> u32 {
        u32::try_from(self.escalation_rules.len()).unwrap_or(u32::MAX)
    }
}

/// `{"escalation_policy": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicyEnvelope {
    /// The policy.
    pub escalation_policy: EscalationPolicy,
}

/// One on-call entry of `GET /oncalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    /// The on-call user.
    pub user: Reference<PdUserId>,
    /// The schedule that put the user on call, if any.
    #[serde(default)]
    pub schedule: Option<AgentReference>,
    /// The escalation policy.
    pub escalation_policy: Reference<EscalationPolicyId>,
    /// The 1-based escalation level.
    pub escalation_level: u32,
    /// Start of the shift (null for permanent on-calls).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<OffsetDateTime>,
    /// End of the shift (null for permanent on-calls).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub end: Option<OffsetDateTime>,
}

/// A page of `GET /oncalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallList {
    /// The on-call entries.
    #[serde(default)]
    pub oncalls: Vec<OnCall>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

/// A service (`GET /services/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service id.
    pub id: ServiceId,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// `active`, `warning`, `critical`, `maintenance` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// The escalation policy incidents of this service follow.
    #[serde(default)]
    pub escalation_policy: Option<Reference<EscalationPolicyId>>,
    /// The teams the service belongs to.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
}

impl Service {
    /// The ids of the service's teams, in PagerDuty's order.
    pub fn team_ids(&self) -> Vec<TeamId> {
        self.teams.iter().map(|t| t.id.clone()).collect()
    }
}

/// `{"service": {...}}`, the response of `GET /services/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEnvelope {
    /// The service.
    pub service: Service,
}

/// A team (`GET /teams/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// The team id.
    pub id: TeamId,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The parent team, for sub-teams.
    #[serde(default)]
    pub parent: Option<Reference<TeamId>>,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// `{"team": {...}}`, the response of `GET /teams/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamEnvelope {
    /// The team.
    pub team: Team,
}

/// A custom header PagerDuty adds to every delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeader {
    /// The header name.
    pub name: String,
    /// The header value (may be a credential).
    pub value: Secret,
}

/// How a subscription delivers webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMethod {
    /// Always `http_delivery_method`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The target URL.
    pub url: String,
    /// The delivery method id (responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The signing secret: present only in the create response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// True while PagerDuty has paused delivery after repeated failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporarily_disabled: Option<bool>,
    /// Extra headers sent with every delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_headers: Vec<CustomHeader>,
}

/// Which resources a subscription covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    /// `service_reference`, `team_reference` or `account_reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service or team id (absent for `account_reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A webhook subscription (`/webhook_subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscription {
    /// The subscription id.
    pub id: SubscriptionId,
    /// Whether the subscription is active.
    #[serde(default)]
    pub active: bool,
    /// The delivery method.
    pub delivery_method: DeliveryMethod,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The subscribed event types.
    #[serde(default)]
    pub events: Vec<crate::webhook::EventType>,
    /// The filter.
    pub filter: SubscriptionFilter,
}

/// `{"webhook_subscription": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscriptionEnvelope {
    /// The subscription.
    pub webhook_subscription: WebhookSubscription,
}

/// A page of `GET /webhook_subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscriptionList {
    /// The subscriptions.
    #[serde(default)]
    pub webhook_subscriptions: Vec<WebhookSubscription>,
    /// The pagination fields.
    #[serde(flatten)]
    pub page: Pagination,
}

/// The body of `POST /webhook_subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWebhookSubscriptionRequest {
    /// The subscription to create.
    pub webhook_subscription: NewWebhookSubscription,
}

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhookSubscription {
    /// Always `webhook_subscription`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where and how to deliver.
    pub delivery_method: DeliveryMethod,
    /// A description.
    pub description: String,
    /// The event types (at least one, unique).
    pub events: Vec<crate::webhook::EventType>,
    /// The filter.
    pub filter: SubscriptionFilter,
}

impl NewWebhookSubscription {
    /// A subscription delivering `events` to `url` for everything `filter` covers.
    pub fn new(
        url: impl Into<String>,
        description: impl Into<String>,
        events: Vec<crate::webhook::EventType>,
        filter: SubscriptionFilter,
    ) -> Self {
        Self {
            kind: "webhook_subscription".to_owned(),
            delivery_method: DeliveryMethod {
                kind: "http_delivery_method".to_owned(),
                url: url.into(),
                id: None,
                secret: None,
                temporarily_disabled: None,
                custom_headers: Vec::new(),
            },
            description: description.into(),
            events,
            filter,
        }
    }
}

/// A PagerDuty error body: `{"error": {"code": 2001, "message": "...", "errors": [...]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The content of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The PagerDuty error code, such as 2001 or 1002.
    #[serde(default)]
    pub code: Option<u32>,
    /// The top-level message.
    #[serde(default)]
    pub message: Option<String>,
    /// Details: an array of strings (classic) or a map of field path to messages (V3 errors).
    #[serde(default)]
    pub errors: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// The detail messages in a stable order: array items as given, map entries as
    /// `field: message` sorted by field.
    pub fn details(&self) -> Vec<String> {
        fn flatten(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
                serde_json::Value::Null => {}
                other => out.push(other.to_string()),
            }
        }
        let mut out = Vec::new();
        match &self.errors {
            Some(serde_json::Value::Object(map)) => {
                let sorted: std::collections::BTreeMap<_, _> = map.iter().collect();
                for (field, value) in sorted {
                    let mut msgs = Vec::new();
                    flatten(value, &mut msgs);
                    out.extend(msgs.into_iter().map(|m| format!("{field}: {m}")));
                }
            }
            Some(other) => flatten(other, &mut out),
            None => {}
        }
        out
    }

    /// One line for humans: `message (code N): detail; detail`.
    pub fn render(&self) -> String {
        let mut text = self.message.clone().unwrap_or_else(|| "error".to_owned());
        if let Some(code) = self.code {
            text.push_str(&format!(" (code {code})"));
        }
        let details = self.details();
        if !details.is_empty() {
            text.push_str(": ");
            text.push_str(&details.join("; "));
        }
        text
    }
}
