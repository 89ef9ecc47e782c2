//! PagerDuty v3 webhook models: the envelope, the event types and the event data.
//!
//! Parse the raw body only after its signature was verified (see the `signing` crate). Parsing is
//! lenient: fields missing from older payloads (`incident_key`, `created_at`, `incident_type`) are
//! optional, unknown fields are ignored, an unknown `event_type` becomes
//! [`EventType::Unknown`] and unknown `data.type`s become [`EventData::Other`]; none is an error.
//! The webhook incident uses `number` and `assignees` (REST uses `incident_number` and
//! `assignments`).

use std::fmt;

use ids::{EscalationPolicyId, EventId, IncidentId, NoteId, PdUserId, ServiceId, TeamId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::rest::{
    AgentReference, ConferenceBridge, IncidentStatus, IncidentType, Reference, Urgency,
};

/// A webhook request body: `{"event": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEnvelope {
    /// The single event of this delivery (v3 never batches).
    pub event: WebhookEvent,
}

impl WebhookEnvelope {
    /// Parses a raw (already verified) webhook body.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// One v3 webhook event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The unique event id (opaque: ULID, UUID or a long number).
    pub id: EventId,
    /// What happened.
    pub event_type: EventType,
    /// The root resource type: `incident`, `service` or `pagey`.
    #[serde(default)]
    pub resource_type: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Who did it (null for automation). With an account token this is the `From` user.
    #[serde(default)]
    pub agent: Option<AgentReference>,
    /// Where the event was triggered, when PagerDuty says (usually null).
    #[serde(default)]
    pub client: Option<WebhookClient>,
    /// The event data, keyed by its `type`.
    pub data: EventData,
}

impl WebhookEvent {
    /// The incident this event is about, for every incident event.
    pub fn incident_id(&self) -> Option<&IncidentId> {
        self.data.incident_id()
    }

    /// The agent's user id when the agent is a user.
    pub fn agent_user_id(&self) -> Option<PdUserId> {
        self.agent.as_ref().and_then(Reference::user_id)
    }
}

/// The `client` of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookClient {
    /// The client name, such as `PagerDuty`.
    #[serde(default)]
    pub name: Option<String>,
}

macro_rules! event_types {
    ($($(#[$meta:meta])* $variant:ident => $wire:literal,)*) => {
        /// A webhook event type. Unknown types parse to [`EventType::Unknown`], never to an error.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType {
            $($(#[$meta])* $variant,)*
            /// An event type this crate does not know, with its wire spelling.
            Unknown(String),
        }

        impl EventType {
            /// Every known event type, in declaration order.
            pub const KNOWN: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The wire spelling, such as `incident.acknowledged`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Unknown(other) => other,
                }
            }

            /// Parses a wire spelling; unknown spellings become [`EventType::Unknown`].
            pub fn parse(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

event_types! {
    /// `incident.triggered`.
    IncidentTriggered => "incident.triggered",
    /// `incident.acknowledged`.
    IncidentAcknowledged => "incident.acknowledged",
    /// `incident.unacknowledged` (the acknowledgement timed out).
    IncidentUnacknowledged => "incident.unacknowledged",
    /// `incident.resolved`.
    IncidentResolved => "incident.resolved",
    /// `incident.reopened`.
    IncidentReopened => "incident.reopened",
    /// `incident.escalated` (to another user in the same level or the next level).
    IncidentEscalated => "incident.escalated",
    /// `incident.reassigned` (to other users).
    IncidentReassigned => "incident.reassigned",
    /// `incident.delegated` (to another escalation policy).
    IncidentDelegated => "incident.delegated",
    /// `incident.priority_updated`.
    IncidentPriorityUpdated => "incident.priority_updated",
    /// `incident.service_updated`.
    IncidentServiceUpdated => "incident.service_updated",
    /// `incident.incident_type.changed`.
    IncidentTypeChanged => "incident.incident_type.changed",
    /// `incident.title_updated` (undocumented, observed in 2026).
    IncidentTitleUpdated => "incident.title_updated",
    /// `incident.urgency_updated` (undocumented, observed in 2026).
    IncidentUrgencyUpdated => "incident.urgency_updated",
    /// `incident.annotated` (a note was added).
    IncidentAnnotated => "incident.annotated",
    /// `incident.responder.added`.
    IncidentResponderAdded => "incident.responder.added",
    /// `incident.responder.replied`.
    IncidentResponderReplied => "incident.responder.replied",
    /// `incident.status_update_published`.
    IncidentStatusUpdatePublished => "incident.status_update_published",
    /// `incident.conference_bridge.updated`.
    IncidentConferenceBridgeUpdated => "incident.conference_bridge.updated",
    /// `incident.custom_field_values.updated`.
    IncidentCustomFieldValuesUpdated => "incident.custom_field_values.updated",
    /// `incident.role.assigned`.
    IncidentRoleAssigned => "incident.role.assigned",
    /// `incident.task.created`.
    IncidentTaskCreated => "incident.task.created",
    /// `incident.task.updated`.
    IncidentTaskUpdated => "incident.task.updated",
    /// `incident.task.completed`.
    IncidentTaskCompleted => "incident.task.completed",
    /// `incident.action_invocation.created`.
    IncidentActionInvocationCreated => "incident.action_invocation.created",
    /// `incident.action_invocation.updated`.
    IncidentActionInvocationUpdated => "incident.action_invocation.updated",
    /// `incident.action_invocation.terminated`.
    IncidentActionInvocationTerminated => "incident.action_invocation.terminated",
    /// `incident.workflow.started`.
    IncidentWorkflowStarted => "incident.workflow.started",
    /// `incident.workflow.completed`.
    IncidentWorkflowCompleted => "incident.workflow.completed",
    /// `service.created`.
    ServiceCreated => "service.created",
    /// `service.updated`.
    ServiceUpdated => "service.updated",
    /// `service.deleted`.
    ServiceDeleted => "service.deleted",
    /// `service.custom_field_values.updated`.
    ServiceCustomFieldValuesUpdated => "service.custom_field_values.updated",
    /// `pagey.ping`, sent by `POST /webhook_subscriptions/{id}/ping`.
    PageyPing => "pagey.ping",
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(other) => write!(f, "Unknown({other:?})"),
            known => write!(f, "EventType({:?})", known.as_str()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        Ok(Self::parse(&value))
    }
}

/// The incident in `data` when `data.type == "incident"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookIncident {
    /// The incident id.
    pub id: IncidentId,
    /// The per-account incident number (REST calls it `incident_number`).
    pub number: u64,
    /// The status after the event.
    pub status: IncidentStatus,
    /// The title.
    #[serde(default)]
    pub title: String,
    /// The web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The de-duplication key (absent in 2021 payloads).
    #[serde(default)]
    pub incident_key: Option<String>,
    /// When the incident was created (absent in 2021 payloads).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the incident was last reopened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub reopened_at: Option<OffsetDateTime>,
    /// The incident type (added 2024-09).
    #[serde(default)]
    pub incident_type: Option<IncidentType>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference<ServiceId>>,
    /// The assigned users (REST calls them `assignments[].assignee`); empty on resolve.
    #[serde(default)]
    pub assignees: Vec<Reference<PdUserId>>,
    /// The escalation policy.
    #[serde(default)]
    pub escalation_policy: Option<Reference<EscalationPolicyId>>,
    /// The teams.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
    /// The priority; its `summary` is the name, such as `P1`.
    #[serde(default)]
    pub priority: Option<Reference<ids::PriorityId>>,
    /// The urgency.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// The conference bridge, if any.
    #[serde(default)]
    pub conference_bridge: Option<ConferenceBridge>,
    /// Why it was resolved (for example a merge), as PagerDuty sent it.
    #[serde(default)]
    pub resolve_reason: Option<serde_json::Value>,
}

/// `data` of `incident.annotated`: a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookNote {
    /// The incident, with its title as `summary`.
    pub incident: Reference<IncidentId>,
    /// The note id.
    pub id: NoteId,
    /// The note text (possibly trimmed).
    #[serde(default)]
    pub content: String,
    /// Whether `content` was cut short.
    #[serde(default)]
    pub trimmed: bool,
}

/// `data` of `incident.responder.added` and `incident.responder.replied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponder {
    /// The incident.
    pub incident: Reference<IncidentId>,
    /// The requested responder.
    #[serde(default)]
    pub user: Option<Reference<PdUserId>>,
    /// The escalation policy asked, if the request targeted one.
    #[serde(default)]
    pub escalation_policy: Option<Reference<EscalationPolicyId>>,
    /// The request message.
    #[serde(default)]
    pub message: Option<String>,
    /// `pending`, `accepted`, ...
    #[serde(default)]
    pub state: Option<String>,
}

/// `data` of `incident.status_update_published`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStatusUpdate {
    /// The incident.
    pub incident: Reference<IncidentId>,
    /// The status update id.
    #[serde(default)]
    pub id: Option<String>,
    /// The message (possibly trimmed).
    #[serde(default)]
    pub message: String,
    /// Whether `message` was cut short.
    #[serde(default)]
    pub trimmed: bool,
}

/// One dial-in number of a conference bridge event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceNumber {
    /// A label (may be empty).
    #[serde(default)]
    pub label: String,
    /// The number.
    #[serde(default)]
    pub number: String,
}

/// `data` of `incident.conference_bridge.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConferenceBridge {
    /// The incident.
    pub incident: Reference<IncidentId>,
    /// The dial-in numbers (null when none).
    #[serde(default)]
    pub conference_numbers: Option<Vec<ConferenceNumber>>,
    /// The meeting URL.
    #[serde(default)]
    pub conference_url: Option<String>,
}

/// `data` of `incident.workflow.started` and `.completed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookWorkflowInstance {
    /// The workflow instance id.
    #[serde(default)]
    pub id: Option<String>,
    /// A summary such as `Manually Started`.
    #[serde(default)]
    pub summary: Option<String>,
    /// The workflow.
    #[serde(default)]
    pub incident_workflow: Option<AgentReference>,
    /// The incident.
    pub incident: Reference<IncidentId>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference<ServiceId>>,
}

/// `data` of `service.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookService {
    /// The service id.
    pub id: ServiceId,
    /// The service name.
    #[serde(default)]
    pub summary: Option<String>,
    /// The teams.
    #[serde(default)]
    pub teams: Vec<Reference<TeamId>>,
}

/// `data` of `pagey.ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPing {
    /// `Hello from your friend Pagey!`.
    #[serde(default)]
    pub message: String,
}

/// The `data` of an event, chosen by its `type` field.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// `incident`.
    Incident(Box<WebhookIncident>),
    /// `incident_note`.
    IncidentNote(WebhookNote),
    /// `incident_responder`.
    IncidentResponder(WebhookResponder),
    /// `incident_status_update`.
    IncidentStatusUpdate(WebhookStatusUpdate),
    /// `incident_conference_bridge`.
    IncidentConferenceBridge(WebhookConferenceBridge),
    /// `incident_workflow_instance`.
    IncidentWorkflowInstance(WebhookWorkflowInstance),
    /// `service`.
    Service(WebhookService),
    /// `ping`.
    Ping(WebhookPing),
    /// Any other `type` (custom fields, tasks, roles, action invocations, future types), kept as
    /// the JSON PagerDuty sent.
    Other(serde_json::Value),
}

impl EventData {
    /// The wire `type` of this data.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Incident(_) => "incident",
            Self::IncidentNote(_) => "incident_note",
            Self::IncidentResponder(_) => "incident_responder",
            Self::IncidentStatusUpdate(_) => "incident_status_update",
            Self::IncidentConferenceBridge(_) => "incident_conference_bridge",
            Self::IncidentWorkflowInstance(_) => "incident_workflow_instance",
            Self::Service(_) => "service",
            Self::Ping(_) => "ping",
            Self::Other(value) => value.get("type").and_then(|t| t.as_str()).unwrap_or(""),
        }
    }

    /// The incident this data is about, when it is about one.
    pub fn incident_id(&self) -> Option<&IncidentId> {
        match self {
            Self::Incident(i) => Some(&i.id),
            Self::IncidentNote(d) => Some(&d.incident.id),
            Self::IncidentResponder(d) => Some(&d.incident.id),
            Self::IncidentStatusUpdate(d) => Some(&d.incident.id),
            Self::IncidentConferenceBridge(d) => Some(&d.incident.id),
            Self::IncidentWorkflowInstance(d) => Some(&d.incident.id),
            Self::Service(_) | Self::Ping(_) | Self::Other(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // The data is kept as raw JSON text and parsed once into the struct its `type` names,
        // without first building a `serde_json::Value` tree of every field. Anything that
        // parses differently that way (data that is not an object, a duplicate key) takes the
        // `Value` path, so the result is the same either way.
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        let text = raw.get();
        let typed = match serde_json::from_str::<DataType<'_>>(text) {
            Ok(DataType { kind: Some(kind) }) => match kind.as_ref() {
                "incident" => serde_json::from_str(text)
                    .map(|i| Some(Self::Incident(Box::new(i))))
                    .ok(),
                "incident_note" => serde_json::from_str(text)
                    .map(|d| Some(Self::IncidentNote(d)))
                    .ok(),
                "incident_responder" => serde_json::from_str(text)
                    .map(|d| Some(Self::IncidentResponder(d)))
                    .ok(),
                "incident_status_update" => serde_json::from_str(text)
                    .map(|d| Some(Self::IncidentStatusUpdate(d)))
                    .ok(),
                "incident_conference_bridge" => serde_json::from_str(text)
                    .map(|d| Some(Self::IncidentConferenceBridge(d)))
                    .ok(),
                "incident_workflow_instance" => serde_json::from_str(text)
                    .map(|d| Some(Self::IncidentWorkflowInstance(d)))
                    .ok(),
                "service" => serde_json::from_str(text)
                    .map(|d| Some(Self::Service(d)))
                    .ok(),
                "ping" => serde_json::from_str(text).map(|d| Some(Self::Ping(d))).ok(),
                _ => None,
            },
            Ok(DataType { kind: None }) | Err(_) => None,
        };
        if let Some(Some(data)) = typed {
            return Ok(data);
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(D::Error::custom)?;
        Self::from_value(value).map_err(D::Error::custom)
    }
}

/// The `type` of event data, read without the rest.
#[derive(Deserialize)]
struct DataType<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

impl EventData {
    /// Event data from its JSON value, chosen by its `type` (any other type is [`Self::Other`]).
    fn from_value(value: serde_json::Value) -> Result<Self, String> {
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned();
        let parsed = match kind.as_str() {
            "incident" => serde_json::from_value(value).map(|i| Self::Incident(Box::new(i))),
            "incident_note" => serde_json::from_value(value).map(Self::IncidentNote),
            "incident_responder" => serde_json::from_value(value).map(Self::IncidentResponder),
            "incident_status_update" => {
                serde_json::from_value(value).map(Self::IncidentStatusUpdate)
            }
            "incident_conference_bridge" => {
                serde_json::from_value(value).map(Self::IncidentConferenceBridge)
            }
            "incident_workflow_instance" => {
                serde_json::from_value(value).map(Self::IncidentWorkflowInstance)
            }
            "service" => serde_json::from_value(value).map(Self::Service),
            "ping" => serde_json::from_value(value).map(Self::Ping),
            _ => return Ok(Self::Other(value)),
        };
        parsed.map_err(|e| format!("event data of type {kind:?}: {e}"))
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let value = match self {
            Self::Incident(d) => serde_json::to_value(d),
            Self::IncidentNote(d) => serde_json::to_value(d),
            Self::IncidentResponder(d) => serde_json::to_value(d),
            Self::IncidentStatusUpdate(d) => serde_json::to_value(d),
            Self::IncidentConferenceBridge(d) => serde_json::to_value(d),
            Self::IncidentWorkflowInstance(d) => serde_json::to_value(d),
            Self::Service(d) => serde_json::to_value(d),
            Self::Ping(d) => serde_json::to_value(d),
            Self::Other(v) => return v.serialize(s),
        };
        let mut value = value.map_err(S::Error::custom)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                "type".to_owned(),
                serde_json::Value::String(self.type_name().to_owned()),
            );
        }
        value.serialize(s)
    }
}
