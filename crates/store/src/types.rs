//! Small value types shared by the store's tables.

use std::fmt;

use ids::Timestamp;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// How a [`Timestamp`] is bound to and read from SQL: the time columns are `INTEGER` Unix
/// milliseconds, and this is the one place that converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Millis(pub(crate) Timestamp);

impl ToSql for Millis {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_millis()))
    }
}

impl FromSql for Millis {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(|millis| Millis(Timestamp::from_millis(millis)))
    }
}

/// Serde for an optional `Duration` as whole milliseconds (or `null`).
pub(crate) mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

/// Reads column `index` of a row as a timestamp.
pub(crate) fn ts(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    Ok(row.get::<_, Millis>(index)?.0)
}

/// Reads column `index` of a row as an optional timestamp (SQL `NULL` is `None`).
pub(crate) fn opt_ts(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<Millis>>(index)?.map(|m| m.0))
}

macro_rules! key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this key.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The key as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
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
    };
}

key_type!(
    /// The caller-chosen unique id of an outbox effect (deterministic, so re-enqueueing after a
    /// replay is a no-op).
    EffectId
);
key_type!(
    /// The FIFO lane of an outbox effect, normally the incident id: effects with the same key run
    /// strictly one after another in enqueue order.
    OrderKey
);
key_type!(
    /// The rate-limit bucket of an outbox effect, such as `slack` or `slack:C0123456`.
    RateKey
);
key_type!(
    /// The caller-built dedupe key of an accepted Slack action, such as
    /// `action_ts + user + action_id`.
    DedupeKey
);

key_type!(
    /// The key of an identity cache entry: `slack:<Slack user id>` for a forward mapping or
    /// `pd:<PagerDuty user id>` for a reverse one (the identity crate's storage key).
    IdentityKey
);

impl IdentityKey {
    /// The key of the forward mapping of a Slack user (`slack:U…`).
    pub fn slack(user: &ids::SlackUserId) -> Self {
        Self(format!("slack:{user}"))
    }

    /// The key of the reverse mapping of a PagerDuty user (`pd:P…`).
    pub fn pd(user: &ids::PdUserId) -> Self {
        Self(format!("pd:{user}"))
    }
}

impl From<&ids::IncidentId> for OrderKey {
    fn from(id: &ids::IncidentId) -> Self {
        Self(id.as_str().to_owned())
    }
}

/// The result of an insert that dedupes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsertOutcome {
    /// A new row was written with this sequence number.
    Inserted(i64),
    /// An equal key was already stored; nothing was written. Carries the existing row's sequence.
    Duplicate(i64),
}

impl InsertOutcome {
    /// Whether a new row was written.
    pub fn is_inserted(self) -> bool {
        matches!(self, InsertOutcome::Inserted(_))
    }

    /// The sequence number of the new or the existing row.
    pub fn seq(self) -> i64 {
        match self {
            InsertOutcome::Inserted(seq) | InsertOutcome::Duplicate(seq) => seq,
        }
    }
}

pub(crate) fn to_json(
    table: &'static str,
    value: &serde_json::Value,
) -> Result<String, crate::Error> {
    serde_json::to_string(value).map_err(|source| crate::Error::Json { table, source })
}

pub(crate) fn from_json(
    table: &'static str,
    text: &str,
) -> Result<serde_json::Value, crate::Error> {
    serde_json::from_str(text).map_err(|source| crate::Error::Json { table, source })
}

/// An opaque JSON document as the store keeps it: text, checked to be JSON, never turned into a
/// `serde_json::Value` tree on the way in or out. Callers encode their own types into it and
/// decode them back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Json(Box<serde_json::value::RawValue>);

impl Json {
    /// Encodes `value` as JSON.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// Decodes the document as a `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The document's text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Reads column `index` of a `table` row, checking that it holds JSON.
    pub(crate) fn column(
        row: &rusqlite::Row<'_>,
        index: usize,
        table: &'static str,
    ) -> rusqlite::Result<Self> {
        serde_json::value::RawValue::from_string(row.get(index)?)
            .map(Self)
            .map_err(|source| {
                let err = crate::Error::Json { table, source };
                rusqlite::Error::FromSqlConversionFailure(
                    index,
                    rusqlite::types::Type::Text,
                    Box::new(err),
                )
            })
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Json {}
