//! The things a Slack user can do to an incident, as one field-less enum.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the incident verbs. Every richer verb enum (the engine's action with its payload,
/// the stored action, the PagerDuty mutation, the identity policy's action) maps to this one, and
/// [`Verb::as_str`] is the only table of their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Acknowledge the incident.
    Acknowledge,
    /// Escalate one level.
    Escalate,
    /// Reassign to another user.
    Reassign,
    /// Add a note.
    AddNote,
    /// Resolve the incident.
    Resolve,
    /// Change the urgency (high ↔ low), from the card's More actions menu.
    ChangeUrgency,
    /// Snooze an acknowledged incident, from the card's More actions menu.
    Snooze,
    /// Change the priority, from the card's More actions menu.
    ChangePriority,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 8] = [
        Verb::Acknowledge,
        Verb::Escalate,
        Verb::Reassign,
        Verb::AddNote,
        Verb::Resolve,
        Verb::ChangeUrgency,
        Verb::Snooze,
        Verb::ChangePriority,
    ];

    /// The stable name used in the inbox, the audit log and metrics: `acknowledge`, `escalate`,
    /// `reassign`, `add_note`, `resolve`, `change_urgency`, `snooze` or `change_priority`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Acknowledge => "acknowledge",
            Verb::Escalate => "escalate",
            Verb::Reassign => "reassign",
            Verb::AddNote => "add_note",
            Verb::Resolve => "resolve",
            Verb::ChangeUrgency => "change_urgency",
            Verb::Snooze => "snooze",
            Verb::ChangePriority => "change_priority",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for verb in Verb::ALL {
            let json = serde_json::to_string(&verb).unwrap();
            assert_eq!(json, format!("\"{}\"", verb.as_str()));
        }
    }
}
