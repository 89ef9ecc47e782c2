//! The mapping cache: pure freshness decisions, serializable entries, and the storage trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ids::{Email, PdUserId, SlackTeamId, SlackUserId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::mapping::MappingOutcome;
use crate::overrides::OverrideTarget;

/// What an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKey {
    /// Forward mapping of a Slack user.
    Slack(SlackUserId),
    /// Reverse mapping of a PagerDuty user (for mentions).
    Pd(PdUserId),
}

impl CacheKey {
    /// A flat string key for storage (`slack:U…` or `pd:P…`).
    pub fn storage_key(&self) -> String {
        match self {
            CacheKey::Slack(id) => format!("slack:{id}"),
            CacheKey::Pd(id) => format!("pd:{id}"),
        }
    }
}

/// The inputs besides the directories that a forward mapping depended on.
///
/// A cached mapping is only reused while these are unchanged, so a new or edited override
/// takes effect at once rather than after the TTL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingBasis {
    /// The override in force for the Slack user, if any.
    pub override_target: Option<OverrideTarget>,
    /// The workspace the user was checked against, if any.
    pub home_team: Option<SlackTeamId>,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CacheValue {
    /// Slack user → PagerDuty user (or refusal).
    Forward {
        /// What the mapping depended on.
        basis: MappingBasis,
        /// The mapping.
        outcome: MappingOutcome,
    },
    /// PagerDuty user → Slack user.
    Reverse {
        /// The PagerDuty user's email (`None` when PagerDuty does not know the user).
        pd_email: Option<Email>,
        /// The active Slack user with that email, if any.
        slack_user: Option<SlackUserId>,
    },
}

impl CacheValue {
    /// Whether this is a hit (kept for the positive TTL) rather than a miss or refusal.
    pub fn is_positive(&self) -> bool {
        match self {
            CacheValue::Forward { outcome, .. } => outcome.mapped().is_some(),
            CacheValue::Reverse { slack_user, .. } => slack_user.is_some(),
        }
    }
}

/// One cache entry, serializable so the server can persist it (e.g. as JSON in SQLite).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// What the entry is about.
    pub key: CacheKey,
    /// The answer.
    pub value: CacheValue,
    /// When the answer was fetched.
    #[serde(with = "rfc3339")]
    pub stored_at: Timestamp,
    /// When the answer stops being used.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
    /// For a mapping: when the PagerDuty user's facts that authorize (email, role, teams) must
    /// be read again, while the Slack↔PagerDuty link itself lasts until `expires_at`. `None`
    /// (also for entries written before this field existed) means they are stale.
    #[serde(default, with = "rfc3339::option")]
    pub facts_expire_at: Option<Timestamp>,
}

impl CacheEntry {
    /// Whether the entry may still be used at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// The cached forward outcome, if the entry is fresh, is a forward mapping and was computed
    /// from the same `basis`.
    pub fn forward(&self, basis: &MappingBasis, now: Timestamp) -> Option<&MappingOutcome> {
        match &self.value {
            CacheValue::Forward {
                basis: cached,
                outcome,
            } if cached == basis && self.is_fresh(now) => Some(outcome),
            _ => None,
        }
    }

    /// Whether the authorizing facts of a mapped user may still be used at `now`.
    pub fn facts_fresh(&self, now: Timestamp) -> bool {
        self.facts_expire_at.is_some_and(|at| now < at) && self.is_fresh(now)
    }

    /// The cached reverse answer `(pd_email, slack_user)`, if the entry is fresh and a reverse one.
    pub fn reverse(&self, now: Timestamp) -> Option<(Option<&Email>, Option<&SlackUserId>)> {
        match &self.value {
            CacheValue::Reverse {
                pd_email,
                slack_user,
            } if self.is_fresh(now) => Some((pd_email.as_ref(), slack_user.as_ref())),
            _ => None,
        }
    }
}

/// Cache lifetimes. Deserializable so the server can embed it (as `[identity_cache]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheTtls {
    /// Lifetime of a successful mapping (the Slack↔PagerDuty link), in seconds (default 24 h).
    pub positive_ttl_secs: u64,
    /// Lifetime of a refusal or miss, in seconds (default 5 min).
    pub negative_ttl_secs: u64,
    /// Lifetime of the facts that authorize a mapped user (PagerDuty email, role and teams), in
    /// seconds (default 5 min); after it they are read again with `GET /users/{id}`.
    pub facts_ttl_secs: u64,
}

impl Default for CacheTtls {
    fn default() -> Self {
        Self {
            positive_ttl_secs: 24 * 60 * 60,
            negative_ttl_secs: 5 * 60,
            facts_ttl_secs: 5 * 60,
        }
    }
}

impl CacheTtls {
    /// An entry for `value` fetched at `now`, expiring after the positive or negative TTL.
    pub fn entry(&self, key: CacheKey, value: CacheValue, now: Timestamp) -> CacheEntry {
        let secs = if value.is_positive() {
            self.positive_ttl_secs
        } else {
            self.negative_ttl_secs
        };
        let facts_expire_at = match &value {
            CacheValue::Forward { outcome, .. } if outcome.mapped().is_some() => {
                Some(now.saturating_add(Duration::from_secs(self.facts_ttl_secs)))
            }
            _ => None,
        };
        CacheEntry {
            key,
            value,
            stored_at: now,
            expires_at: now.saturating_add(Duration::from_secs(secs)),
            facts_expire_at,
        }
    }
}

/// The entries' times as RFC 3339 strings, the form stored rows have always had.
///
/// Times outside the years 0000 to 9999 (which RFC 3339 cannot write) are written as the nearest
/// one inside.
mod rfc3339 {
    use ids::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;
    use time::macros::datetime;

    const MIN: OffsetDateTime = datetime!(0000-01-01 00:00 UTC);
    const MAX: OffsetDateTime = datetime!(9999-12-31 23:59:59.999 UTC);

    fn to_datetime(at: Timestamp) -> OffsetDateTime {
        let nanos = i128::from(at.as_millis()) * 1_000_000;
        let nanos = nanos.clamp(MIN.unix_timestamp_nanos(), MAX.unix_timestamp_nanos());
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn to_timestamp(at: OffsetDateTime) -> Timestamp {
        let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
        Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
    }

    pub fn serialize<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(&to_datetime(*at), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        time::serde::rfc3339::deserialize(deserializer).map(to_timestamp)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            at: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct Wrap(#[serde(with = "super")] Timestamp);
            at.map(Wrap).serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(with = "super")] Timestamp);
            Ok(Option::<Wrap>::deserialize(deserializer)?.map(|Wrap(at)| at))
        }
    }
}

/// Where cache entries live. The server implements it over its SQLite store.
///
/// Implementations store and return entries as given; freshness is decided by this crate.
pub trait CacheStore {
    /// The entry for `key`, fresh or not.
    fn get(&self, key: &CacheKey)
    -> impl Future<Output = Result<Option<CacheEntry>, Error>> + Send;
    /// Inserts or replaces the entry for `entry.key`.
    fn put(&self, entry: CacheEntry) -> impl Future<Output = Result<(), Error>> + Send;
    /// Removes the entry for `key`, if any.
    fn remove(&self, key: &CacheKey) -> impl Future<Output = Result<(), Error>> + Send;
}

impl<T: CacheStore + Send + Sync> CacheStore for Arc<T> {
    fn get(
        &self,
        key: &CacheKey,
    ) -> impl Future<Output = Result<Option<CacheEntry>, Error>> + Send {
        (**self).get(key)
    }

    fn put(&self, entry: CacheEntry) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).put(entry)
    }

    fn remove(&self, key: &CacheKey) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).remove(key)
    }
}

/// An in-memory [`CacheStore`], for tests and for running without persistence.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<BTreeMap<CacheKey, CacheEntry>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding `entries` (e.g. read back from storage after a restart).
    pub fn from_entries(entries: impl IntoIterator<Item = CacheEntry>) -> Self {
        let map = entries.into_iter().map(|e| (e.key.clone(), e)).collect();
        Self {
            entries: Mutex::new(map),
        }
    }

    /// Every entry, ordered by key.
    pub fn entries(&self) -> Vec<CacheEntry> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CacheKey, CacheEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CacheStore for MemoryCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, Error> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, entry: CacheEntry) -> Result<(), Error> {
        self.lock().insert(entry.key.clone(), entry);
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), Error> {
        self.lock().remove(key);
        Ok(())
    }
}
