//! `GET /log_entries`: the account-wide log of incident changes, read by the poller.

use ids::{IncidentId, PdUserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AgentReference, Incident, Pagination, Reference};

/// One log entry. With `include[]=incidents`, `incident` is the full incident as it is now
/// (not as of the entry); without it, a reference whose fields other than `id` are absent.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LogEntry {
    /// The entry's id, unique across the account.
    pub id: String,
    /// The wire `type`, such as `acknowledge_log_entry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When PagerDuty recorded the change.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who made the change: a user, a service or an integration.
    #[serde(default)]
    pub agent: Option<AgentReference>,
    /// How the change was made; a note's text is its `summary` (`type` = `note`).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The incident, in full when included.
    pub incident: LogIncident,
    /// The users assigned by an `assign_log_entry` or `escalate_log_entry`.
    #[serde(default)]
    pub assignees: Vec<Reference<PdUserId>>,
    /// The entry's one-line description, such as "Acknowledged by Alice".
    #[serde(default)]
    pub summary: Option<String>,
}

/// A log entry's incident: the full incident when `include[]=incidents` was asked for, else
/// its reference.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LogIncident {
    /// `include[]=incidents`: the incident as it is now.
    Full(Box<Incident>),
    /// A plain reference.
    Reference(Reference<IncidentId>),
}

impl LogIncident {
    /// The incident's id.
    pub fn id(&self) -> &IncidentId {
        match self {
            Self::Full(i) => &i.id,
            Self::Reference(r) => &r.id,
        }
    }
}

/// How a change was made (`channel`); a note's content is its `summary`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Channel {
    /// The channel `type`, such as `api`, `website` or `note`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The note's text for a note channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// A page of `GET /log_entries`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntryList {
    /// The entries of this page, in PagerDuty's order.
    pub log_entries: Vec<LogEntry>,
    /// The page's position.
    #[serde(flatten)]
    pub page: Pagination,
}
