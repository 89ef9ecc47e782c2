//! Newtype identifiers shared by every pdbridge crate.
//!
//! Raw `String`s never cross a crate boundary: an incident id, a Slack user id and a message
//! timestamp are different types, so they cannot be swapped by accident. Every type here is
//! `#[serde(transparent)]`, so it serializes exactly like the string it wraps, and ordered, so it
//! can key a `BTreeMap` for deterministic output.
//!
//! Call order: wrap a value where it enters (`X::new`, [`Email::parse`] for user input, or
//! deserialization), pass the typed value around, and read the string back (`as_str`,
//! `Display`) only where it leaves for the wire or a log.
//!
//! Invariants: `new` keeps a value exactly as given, never trimmed or re-cased (only
//! [`Email::parse`] trims surrounding white space); [`Email`] compares, orders and hashes
//! case-insensitively (ASCII) but displays its original spelling.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod retry;
mod secret;
mod time;
mod verb;

pub use secret::Secret;
pub use time::Timestamp;
pub use verb::Verb;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this identifier.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the identifier into its string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A PagerDuty incident id such as `PQ1K5C8` or `Q3B15VLMF3ASBD` (opaque, any length).
    IncidentId
);
string_id!(
    /// A PagerDuty v3 webhook event id (`event.id`): opaque, ULID, UUID or a long number.
    EventId
);
string_id!(
    /// The `X-Webhook-Id` header of a PagerDuty delivery, stable across retries.
    WebhookId
);
string_id!(
    /// A PagerDuty user id such as `PJ0LVEB`.
    PdUserId
);
string_id!(
    /// A PagerDuty service id.
    ServiceId
);
string_id!(
    /// A PagerDuty team id.
    TeamId
);
string_id!(
    /// A PagerDuty escalation policy id.
    EscalationPolicyId
);
string_id!(
    /// A PagerDuty priority id (the human name, such as `P1`, travels separately).
    PriorityId
);
string_id!(
    /// A PagerDuty incident note id.
    NoteId
);
string_id!(
    /// A PagerDuty webhook subscription id.
    SubscriptionId
);
string_id!(
    /// A PagerDuty on-call schedule id such as `PI7DH85`.
    ScheduleId
);
string_id!(
    /// A Slack user group (subteam) id such as `S0614TZR7`.
    UserGroupId
);
string_id!(
    /// A Slack user id such as `U2CERLKJA` or `W012A3CDE`.
    SlackUserId
);
string_id!(
    /// A Slack workspace (team) id such as `T1DC2JH3J`.
    SlackTeamId
);
string_id!(
    /// A Slack conversation id such as `C0123456` or `G8PSS9T3V`.
    ChannelId
);
string_id!(
    /// A Slack message timestamp such as `1548261231.000200`. Always a string, never a float:
    /// a float loses the digits that make it unique.
    MessageTs
);
string_id!(
    /// A Slack modal view id.
    ViewId
);
string_id!(
    /// A Slack `trigger_id`, valid for 3 seconds and only once.
    TriggerId
);

/// An email address, compared case-insensitively (`Alice@Example.com` equals `alice@example.com`).
///
/// The original spelling is kept for display and for the PagerDuty `From` header; equality,
/// ordering and hashing use the ASCII-lowercased form. Matching is always exact: there is no
/// partial or fuzzy comparison.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Wraps an address. No validation beyond what [`Email::parse`] does.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Parses an address, accepting only `local@domain` with both parts non-empty and no spaces.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (local, domain) = value.split_once('@')?;
        let ok = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !value.chars().any(char::is_whitespace);
        ok.then(|| Self(value.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercased form used for comparison and as a cache key.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Email {}

impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Email {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.normalized().cmp(&other.normalized())
    }
}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_compares_case_insensitively_but_keeps_spelling() {
        let a = Email::parse("Alice@Example.com").unwrap();
        let b = Email::parse("alice@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Alice@Example.com");
        assert_eq!(a.normalized(), "alice@example.com");
    }

    #[test]
    fn email_parse_rejects_non_addresses() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?} should be rejected");
        }
        assert_ne!(
            Email::parse("alice@example.com"),
            Email::parse("alice@example.co")
        );
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let ts = MessageTs::new("1548261231.000200");
        assert_eq!(serde_json::to_string(&ts).unwrap(), "\"1548261231.000200\"");
        let back: MessageTs = serde_json::from_str("\"1548261231.000200\"").unwrap();
        assert_eq!(back, ts);
        assert_eq!(
            format!("{:?}", IncidentId::new("PQ1K5C8")),
            "IncidentId(\"PQ1K5C8\")"
        );
    }
}
