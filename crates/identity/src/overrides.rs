//! The admin fallback table: `[[identity]]` entries that pin a Slack user to a PagerDuty user.

use std::collections::BTreeMap;

use ids::{Email, PdUserId, SlackUserId};
use serde::{Deserialize, Serialize};

use crate::Error;

/// One `[[identity]]` entry exactly as written in the configuration file.
///
/// `slack_user` is required, and exactly one of `pd_user` / `pd_email` must be set.
/// Validation happens in [`Overrides::from_entries`] (and therefore when [`Overrides`] is
/// deserialized), so an invalid entry never reaches the resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideEntry {
    /// The Slack user id (`U…` or `W…`), not a display name.
    pub slack_user: SlackUserId,
    /// The PagerDuty user id (`P…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_user: Option<PdUserId>,
    /// The PagerDuty login email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_email: Option<Email>,
}

impl OverrideEntry {
    /// An entry for `slack_user` pointing at `target`.
    pub fn new(slack_user: SlackUserId, target: OverrideTarget) -> Self {
        let (pd_user, pd_email) = match target {
            OverrideTarget::PdUser(id) => (Some(id), None),
            OverrideTarget::PdEmail(email) => (None, Some(email)),
        };
        Self {
            slack_user,
            pd_user,
            pd_email,
        }
    }
}

/// Where an override points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideTarget {
    /// A PagerDuty user by id.
    PdUser(PdUserId),
    /// The PagerDuty user whose login email is exactly this one (case-insensitively).
    PdEmail(Email),
}

/// The validated fallback table, keyed by Slack user. Overrides beat email matching.
///
/// Deserializes from (and serializes to) the `[[identity]]` array, so the server's config
/// struct embeds it as `#[serde(default)] identity: Overrides`.
///
/// Each entry is validated as it is read, so a TOML error points at the line of the bad entry
/// and also names its index and key (`identity[1].pd_email …`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(into = "Vec<OverrideEntry>")]
pub struct Overrides {
    entries: BTreeMap<SlackUserId, OverrideTarget>,
}

impl Overrides {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates entries in file order; the error names the entry's index, key and value.
    pub fn from_entries(entries: Vec<OverrideEntry>) -> Result<Self, Error> {
        let mut table = Self::new();
        let mut first_index = BTreeMap::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let slack_user = entry.slack_user.clone();
            let target = validate_entry(index, entry)?;
            if let Some(previous) = first_index.insert(slack_user.clone(), index) {
                return Err(Error::InvalidOverride {
                    index,
                    slack_user: Some(slack_user.into_string()),
                    field: "slack_user",
                    message: format!("duplicates entry #{previous}; keep one entry per Slack user"),
                });
            }
            table.entries.insert(slack_user, target);
        }
        Ok(table)
    }

    /// Reads the `[[identity]]` array from a TOML document; other top-level keys are ignored.
    ///
    /// Errors carry the TOML line and column as well as the entry index and key.
    pub fn from_toml_str(source: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            identity: Overrides,
        }
        toml::from_str::<Document>(source)
            .map(|doc| doc.identity)
            .map_err(|e| Error::Toml(e.to_string()))
    }

    /// The override for `slack_user`, if any.
    pub fn get(&self, slack_user: &SlackUserId) -> Option<&OverrideTarget> {
        self.entries.get(slack_user)
    }

    /// Validates and adds (or replaces) one entry, returning the previous target.
    pub fn insert(&mut self, entry: OverrideEntry) -> Result<Option<OverrideTarget>, Error> {
        let slack_user = entry.slack_user.clone();
        let target = validate_entry(self.entries.len(), entry)?;
        Ok(self.entries.insert(slack_user, target))
    }

    /// Removes the entry for `slack_user`, returning its target.
    pub fn remove(&mut self, slack_user: &SlackUserId) -> Option<OverrideTarget> {
        self.entries.remove(slack_user)
    }

    /// All entries, ordered by Slack user id.
    pub fn iter(&self) -> impl Iterator<Item = (&SlackUserId, &OverrideTarget)> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written back to a configuration file, ordered by Slack user id.
    pub fn to_entries(&self) -> Vec<OverrideEntry> {
        self.iter()
            .map(|(user, target)| OverrideEntry::new(user.clone(), target.clone()))
            .collect()
    }

    /// The first Slack user (by id) pinned to `pd_user` by id or to `pd_email` by email.
    pub fn slack_user_for(
        &self,
        pd_user: &PdUserId,
        pd_email: Option<&Email>,
    ) -> Option<&SlackUserId> {
        self.iter()
            .find(|(_, target)| match target {
                OverrideTarget::PdUser(id) => id == pd_user,
                OverrideTarget::PdEmail(email) => Some(email) == pd_email,
            })
            .map(|(user, _)| user)
    }
}

impl TryFrom<Vec<OverrideEntry>> for Overrides {
    type Error = Error;

    fn try_from(entries: Vec<OverrideEntry>) -> Result<Self, Error> {
        Self::from_entries(entries)
    }
}

/// Accumulates validated entries in file order, remembering where each Slack user first appeared.
#[derive(Default)]
struct Builder {
    table: Overrides,
    first_index: BTreeMap<SlackUserId, usize>,
    next_index: usize,
}

impl Builder {
    fn push(&mut self, entry: OverrideEntry) -> Result<(), Error> {
        let index = self.next_index;
        self.next_index += 1;
        let slack_user = entry.slack_user.clone();
        let target = validate_entry(index, entry)?;
        if let Some(previous) = self.first_index.insert(slack_user.clone(), index) {
            return Err(Error::InvalidOverride {
                index,
                slack_user: Some(slack_user.into_string()),
                field: "slack_user",
                message: format!("duplicates entry #{previous}; keep one entry per Slack user"),
            });
        }
        self.table.entries.insert(slack_user, target);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Overrides {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(OverridesVisitor)
    }
}

struct OverridesVisitor;

impl<'de> serde::de::Visitor<'de> for OverridesVisitor {
    type Value = Overrides;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of [[identity]] tables")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Overrides, A::Error> {
        let mut builder = Builder::default();
        while seq.next_element_seed(EntrySeed(&mut builder))?.is_some() {}
        Ok(builder.table)
    }
}

/// Deserializes and validates one entry inside the entry's own deserializer, so the format's
/// error (TOML: line and column) points at that entry.
struct EntrySeed<'a>(&'a mut Builder);

impl<'de> serde::de::DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        const FIELDS: &[&str] = &["slack_user", "pd_user", "pd_email"];
        deserializer.deserialize_struct("OverrideEntry", FIELDS, self)
    }
}

impl<'de> serde::de::Visitor<'de> for EntrySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an [[identity]] table with slack_user and pd_user or pd_email")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let entry = OverrideEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.0.push(entry).map_err(serde::de::Error::custom)
    }
}

impl From<Overrides> for Vec<OverrideEntry> {
    fn from(table: Overrides) -> Self {
        table.to_entries()
    }
}

fn is_id(value: &str, prefixes: &[char]) -> bool {
    value.len() >= 2
        && value.starts_with(prefixes)
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn validate_entry(index: usize, entry: OverrideEntry) -> Result<OverrideTarget, Error> {
    let slack_user = entry.slack_user.as_str().to_owned();
    let invalid = |field: &'static str, message: String| Error::InvalidOverride {
        index,
        slack_user: Some(slack_user.clone()),
        field,
        message,
    };
    if !is_id(entry.slack_user.as_str(), &['U', 'W']) {
        return Err(invalid(
            "slack_user",
            format!(
                "{:?} is not a Slack user id; use the member id such as \"U2CERLKJA\" (profile → ⋮ → Copy member ID), not a name",
                entry.slack_user.as_str()
            ),
        ));
    }
    match (entry.pd_user, entry.pd_email) {
        (Some(_), Some(_)) => Err(invalid(
            "pd_user",
            "both pd_user and pd_email are set; set exactly one".to_owned(),
        )),
        (None, None) => Err(invalid(
            "pd_user",
            "neither pd_user nor pd_email is set; set exactly one".to_owned(),
        )),
        (Some(id), None) => {
            if is_id(id.as_str(), &['P']) {
                Ok(OverrideTarget::PdUser(id))
            } else {
                Err(invalid(
                    "pd_user",
                    format!(
                        "{:?} is not a PagerDuty user id; use the id from the user's URL, such as \"PJ0LVEB\"",
                        id.as_str()
                    ),
                ))
            }
        }
        (None, Some(email)) => match Email::parse(email.as_str()) {
            Some(parsed) if parsed.as_str() == email.as_str() => {
                Ok(OverrideTarget::PdEmail(parsed))
            }
            _ => Err(invalid(
                "pd_email",
                format!("{:?} is not an email address", email.as_str()),
            )),
        },
    }
}
