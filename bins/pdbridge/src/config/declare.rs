//! The `[declare]` table: the services and severities `/pd trigger` offers, and the opt-in
//! account for requesters without a PagerDuty user.

use std::collections::BTreeMap;

use ids::{Email, ServiceId};
use serde::Deserialize;

use super::{ConfigError, Urgency};

/// The severities when `declare.severities` is absent: SEV-1 and SEV-2 high, SEV-3 and SEV-4 low.
pub const DEFAULT_SEVERITIES: &[(&str, Urgency)] = &[
    ("SEV-1", Urgency::High),
    ("SEV-2", Urgency::High),
    ("SEV-3", Urgency::Low),
    ("SEV-4", Urgency::Low),
];

/// The `[declare]` table, validated. Declaring is off when the table is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclareConfig {
    /// `declare.default_service`: the service preselected in the modal.
    pub default_service: Option<String>,
    /// `declare.services`: name (as typed in `/pd trigger <service>`) to PagerDuty service.
    pub services: BTreeMap<String, ServiceId>,
    /// `declare.severities`, in modal order.
    pub severities: Vec<Severity>,
    /// `declare.unmapped_from`: the account requesters without a PagerDuty user declare
    /// through; `None` refuses them.
    pub unmapped_from: Option<Email>,
    /// `declare.search_services`: offer every PagerDuty service in a searchable select.
    pub search_services: bool,
}

/// One entry of `declare.severities`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    /// The name, such as `SEV-2`.
    pub name: String,
    /// The urgency of incidents of this severity.
    pub urgency: Urgency,
    /// The PagerDuty priority name (such as `P2`), if the account has priorities.
    #[serde(default)]
    pub priority: Option<String>,
}

impl DeclareConfig {
    /// The service named `name` (case-insensitively).
    pub fn service(&self, name: &str) -> Option<(&str, &ServiceId)> {
        self.services
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, id)| (n.as_str(), id))
    }

    /// The service a user chose by `word`: a configured name (case-insensitively) or the id of
    /// a configured service, as `(name, id)`; with `search_services`, also any PagerDuty service
    /// id (`P` and upper-case letters or digits), named by its id.
    pub fn resolve_service(&self, word: &str) -> Option<(String, ServiceId)> {
        if let Some((name, id)) = self.service(word) {
            return Some((name.to_owned(), id.clone()));
        }
        if let Some((name, id)) = self.services.iter().find(|(_, id)| id.as_str() == word) {
            return Some((name.clone(), id.clone()));
        }
        let looks_like_id = word.len() >= 2
            && word.len() <= 20
            && word.starts_with('P')
            && word
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        (self.search_services && looks_like_id).then(|| (word.to_owned(), ServiceId::new(word)))
    }

    /// The severity named `name` (case-insensitively).
    pub fn severity(&self, name: &str) -> Option<&Severity> {
        self.severities
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// `[declare]` as parsed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeclare {
    default_service: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, String>,
    severities: Option<Vec<Severity>>,
    unmapped_from: Option<String>,
    #[serde(default)]
    search_services: bool,
}

fn bad(key: String, message: impl Into<String>) -> ConfigError {
    ConfigError::key(key, message.into())
}

/// A name that `/pd trigger <service> <severity> <title…>` can type: one word.
fn one_word(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace)
}

/// Validates `[declare]`; `trigger_services` are the service names `[policy] trigger` gives a
/// rule of their own, which must be declare services.
pub(super) fn validate<'a>(
    raw: Option<RawDeclare>,
    trigger_services: impl Iterator<Item = &'a str>,
) -> Result<Option<DeclareConfig>, ConfigError> {
    let Some(raw) = raw else {
        if let Some(name) = trigger_services.into_iter().next() {
            return Err(bad(
                format!("policy.trigger.{name}"),
                "names a service, but there is no [declare] table; add [declare] services",
            ));
        }
        return Ok(None);
    };
    let mut services = BTreeMap::new();
    for (name, id) in raw.services {
        let key = format!("declare.services.{name}");
        if !one_word(&name) {
            return Err(bad(key, "must be one word (it is typed after /pd trigger)"));
        }
        let id = id.trim();
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return Err(bad(
                key,
                "must be a PagerDuty service id such as \"PDAT001\"",
            ));
        }
        if services
            .keys()
            .any(|n: &String| n.eq_ignore_ascii_case(&name))
        {
            return Err(bad(key, "differs from another service name only by case"));
        }
        services.insert(name, ServiceId::new(id));
    }
    if services.is_empty() && !raw.search_services {
        return Err(bad(
            "declare.services".to_owned(),
            "must name at least one service (name = \"P…\"), or set search_services = true",
        ));
    }
    if let Some(default) = &raw.default_service
        && !services.contains_key(default)
    {
        let names: Vec<&str> = services.keys().map(String::as_str).collect();
        return Err(bad(
            "declare.default_service".to_owned(),
            format!(
                "`{default}` is not one of declare.services ({})",
                names.join(", ")
            ),
        ));
    }
    let severities = match raw.severities {
        None => DEFAULT_SEVERITIES
            .iter()
            .map(|(name, urgency)| Severity {
                name: (*name).to_owned(),
                urgency: *urgency,
                priority: None,
            })
            .collect(),
        Some(list) if list.is_empty() => {
            return Err(bad(
                "declare.severities".to_owned(),
                "must list at least one severity, or be left out for SEV-1…SEV-4",
            ));
        }
        Some(list) => list,
    };
    for (i, severity) in severities.iter().enumerate() {
        if !one_word(&severity.name) {
            return Err(bad(
                format!("declare.severities[{i}].name"),
                "must be one word such as \"SEV-2\"",
            ));
        }
        if severities[..i]
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&severity.name))
        {
            return Err(bad(
                format!("declare.severities[{i}].name"),
                format!("`{}` is listed twice", severity.name),
            ));
        }
        if severity
            .priority
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            return Err(bad(
                format!("declare.severities[{i}].priority"),
                "must be a PagerDuty priority name such as \"P2\", or be left out",
            ));
        }
    }
    let unmapped_from = match raw.unmapped_from {
        None => None,
        Some(text) => Some(Email::parse(&text).ok_or_else(|| {
            bad(
                "declare.unmapped_from".to_owned(),
                format!("`{text}` is not an email address"),
            )
        })?),
    };
    for name in trigger_services {
        if !services.contains_key(name) {
            return Err(bad(
                format!("policy.trigger.{name}"),
                "is not one of declare.services; use a declare service name or \"*\"",
            ));
        }
    }
    Ok(Some(DeclareConfig {
        default_service: raw.default_service,
        services,
        severities,
        unmapped_from,
        search_services: raw.search_services,
    }))
}
