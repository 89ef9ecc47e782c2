//! The async resolver against an in-memory directory: caching, refresh, restart, reverse mapping.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use identity::{
    CacheEntry, CacheKey, CacheStore, CacheTtls, CacheValue, Directory, Error, MappingSource,
    MemoryCache, OverrideEntry, OverrideTarget, Overrides, PdUserFacts, Resolver, ResolverConfig,
    SlackUserFacts,
};
use ids::{Email, PdUserId, SlackTeamId, SlackUserId};
use pretty_assertions::assert_eq;

use crate::{T0, hours, minutes, seconds};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// A directory held in memory that counts every call and can be made to fail.
#[derive(Default)]
struct FakeDirectory {
    slack: Mutex<BTreeMap<SlackUserId, SlackUserFacts>>,
    pd: Mutex<Vec<PdUserFacts>>,
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

impl FakeDirectory {
    fn standard() -> Self {
        let dir = Self::default();
        dir.add_slack("UALICE", Some("alice@example.com"));
        dir.add_slack("UBOB", Some("Bob@Example.com"));
        dir.add_slack("UCAROL", Some("carol@example.com"));
        dir.add_pd("PALICE", "ALICE@example.com");
        dir.add_pd("PBOB", "bob@example.com");
        dir
    }

    fn add_slack(&self, id: &str, mail: Option<&str>) {
        let facts = SlackUserFacts::member(
            SlackUserId::new(id),
            SlackTeamId::new("THOME"),
            mail.map(email),
        );
        self.slack.lock().unwrap().insert(facts.id.clone(), facts);
    }

    fn add_pd(&self, id: &str, mail: &str) {
        self.pd.lock().unwrap().push(PdUserFacts {
            id: PdUserId::new(id),
            email: email(mail),
            name: id.to_owned(),
            role: None,
            deactivated: false,
            teams: vec![],
        });
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn tick(&self) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Directory {
                platform: "pagerduty",
                message: "HTTP 503".to_owned(),
            });
        }
        Ok(())
    }
}

impl Directory for FakeDirectory {
    async fn slack_user(&self, id: &SlackUserId) -> Result<Option<SlackUserFacts>, Error> {
        self.tick()?;
        Ok(self.slack.lock().unwrap().get(id).cloned())
    }

    async fn slack_user_by_email(&self, mail: &Email) -> Result<Option<SlackUserFacts>, Error> {
        self.tick()?;
        Ok(self
            .slack
            .lock()
            .unwrap()
            .values()
            .find(|u| u.email.as_ref() == Some(mail))
            .cloned())
    }

    async fn pd_user(&self, id: &PdUserId) -> Result<Option<PdUserFacts>, Error> {
        self.tick()?;
        Ok(self
            .pd
            .lock()
            .unwrap()
            .iter()
            .find(|u| &u.id == id)
            .cloned())
    }

    async fn pd_users_by_email(&self, mail: &Email) -> Result<Vec<PdUserFacts>, Error> {
        self.tick()?;
        // Like PagerDuty's `query`: a case-insensitive substring match on the email.
        let needle = mail.normalized();
        Ok(self
            .pd
            .lock()
            .unwrap()
            .iter()
            .filter(|u| {
                u.email.normalized().contains(&needle) || needle.contains(&u.email.normalized())
            })
            .cloned()
            .collect())
    }
}

fn config(overrides: Overrides) -> ResolverConfig {
    ResolverConfig {
        overrides,
        home_team: Some(SlackTeamId::new("THOME")),
        ttls: CacheTtls::default(),
    }
}

fn resolver(dir: FakeDirectory) -> Resolver<FakeDirectory, MemoryCache> {
    Resolver::new(dir, MemoryCache::new(), config(Overrides::new()))
}

fn u(id: &str) -> SlackUserId {
    SlackUserId::new(id)
}

#[tokio::test]
async fn maps_by_email_case_insensitively_and_caches() {
    let r = resolver(FakeDirectory::standard());
    let first = r.resolve(&u("UALICE"), None, T0).await.unwrap();
    assert!(!first.cached);
    let user = first.outcome.mapped().unwrap();
    assert_eq!(user.pd_user.as_str(), "PALICE");
    assert_eq!(user.email.as_str(), "ALICE@example.com");
    assert_eq!(user.source, MappingSource::VerifiedEmail);
    let calls = r.directory().calls();
    assert_eq!(calls, 2, "users.info + users?query");

    let again = r
        .resolve(&u("UALICE"), None, T0.saturating_add(minutes(4)))
        .await
        .unwrap();
    assert!(again.cached);
    assert_eq!(again.outcome, first.outcome);
    assert_eq!(r.directory().calls(), calls);

    // The link lasts 24 h; only the PagerDuty user's facts are read again, by id.
    let later = r
        .resolve(&u("UALICE"), None, T0.saturating_add(hours(23)))
        .await
        .unwrap();
    assert!(!later.cached);
    assert_eq!(later.outcome, first.outcome);
    assert_eq!(r.directory().calls(), calls + 1, "GET /users/{{id}} only");

    let expired = r
        .resolve(&u("UALICE"), None, T0.saturating_add(hours(24)))
        .await
        .unwrap();
    assert!(!expired.cached);
    assert_eq!(r.directory().calls(), calls + 3);
}

/// The facts that authorize (PagerDuty role, teams, email) are reused for `facts_ttl_secs`
/// only, with time injected: a role or team change shows at the first lookup after it.
#[tokio::test]
async fn authorizing_facts_expire_after_the_facts_ttl_while_the_link_stays() {
    let r = resolver(FakeDirectory::standard());
    let ttl = seconds(CacheTtls::default().facts_ttl_secs);
    assert_eq!(ttl, minutes(5));
    let first = r.resolve(&u("UALICE"), None, T0).await.unwrap();
    assert_eq!(first.outcome.mapped().unwrap().role, None);
    let calls = r.directory().calls();
    {
        let mut pd = r.directory().pd.lock().unwrap();
        let alice = pd.iter_mut().find(|p| p.id.as_str() == "PALICE").unwrap();
        alice.role = Some("observer".to_owned());
        alice.teams = vec![ids::TeamId::new("PNEW")];
    }

    let just_before = r
        .resolve(&u("UALICE"), None, T0.saturating_add(ttl - seconds(1)))
        .await
        .unwrap();
    assert!(just_before.cached);
    assert_eq!(just_before.outcome.mapped().unwrap().role, None);

    let at_expiry = r
        .resolve(&u("UALICE"), None, T0.saturating_add(ttl))
        .await
        .unwrap();
    assert!(!at_expiry.cached);
    let user = at_expiry.outcome.mapped().unwrap();
    assert_eq!(user.role.as_deref(), Some("observer"));
    assert!(user.is_read_only());
    assert_eq!(user.teams, [ids::TeamId::new("PNEW")]);
    assert_eq!(
        r.directory().calls(),
        calls + 1,
        "one GET /users/{{id}}, no Slack call"
    );
    let entry = r
        .cache()
        .get(&CacheKey::Slack(u("UALICE")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.expires_at,
        T0.saturating_add(hours(24)),
        "the link keeps its expiry"
    );
    assert_eq!(entry.facts_expire_at, Some(T0.saturating_add(ttl * 2)));
    assert!(
        r.resolve(&u("UALICE"), None, T0.saturating_add(ttl))
            .await
            .unwrap()
            .cached
    );

    // An email change in PagerDuty breaks the link: the user is mapped again from scratch.
    r.directory().pd.lock().unwrap()[0].email = email("alice.new@example.com");
    let remapped = r
        .resolve(&u("UALICE"), None, T0.saturating_add(ttl * 2))
        .await
        .unwrap();
    assert_eq!(
        remapped.outcome.refusal().unwrap().code(),
        "no_pd_user_with_email"
    );
    assert_eq!(
        r.directory().calls(),
        calls + 4,
        "GET /users/{{id}}, users.info, users?query"
    );

    // A PagerDuty user that disappeared is not kept either.
    let r = resolver(FakeDirectory::standard());
    r.resolve(&u("UBOB"), None, T0).await.unwrap();
    r.directory()
        .pd
        .lock()
        .unwrap()
        .retain(|p| p.id.as_str() != "PBOB");
    let gone = r
        .resolve(&u("UBOB"), None, T0.saturating_add(ttl))
        .await
        .unwrap();
    assert_eq!(
        gone.outcome.refusal().unwrap().code(),
        "no_pd_user_with_email"
    );
}

#[tokio::test]
async fn misses_use_the_short_ttl_and_refresh_takes_effect_at_once() {
    let r = resolver(FakeDirectory::standard());
    let miss = r.resolve(&u("UCAROL"), None, T0).await.unwrap();
    assert_eq!(
        miss.outcome.refusal().unwrap().code(),
        "no_pd_user_with_email"
    );

    r.directory().add_pd("PCAROL", "carol@example.com");
    let still = r
        .resolve(&u("UCAROL"), None, T0.saturating_add(minutes(4)))
        .await
        .unwrap();
    assert!(still.cached);
    assert!(still.outcome.refusal().is_some());

    let after = r
        .resolve(&u("UCAROL"), None, T0.saturating_add(minutes(5)))
        .await
        .unwrap();
    assert_eq!(after.outcome.mapped().unwrap().pd_user.as_str(), "PCAROL");

    // An email change in Slack shows after an explicit refresh without waiting for the TTL.
    r.directory().add_slack("UCAROL", Some("bob@example.com"));
    let cached = r
        .resolve(&u("UCAROL"), None, T0.saturating_add(minutes(6)))
        .await
        .unwrap();
    assert_eq!(cached.outcome.mapped().unwrap().pd_user.as_str(), "PCAROL");
    let refreshed = r
        .refresh(&u("UCAROL"), None, T0.saturating_add(minutes(6)))
        .await
        .unwrap();
    assert!(!refreshed.cached);
    assert_eq!(refreshed.outcome.mapped().unwrap().pd_user.as_str(), "PBOB");
}

#[tokio::test]
async fn a_partial_email_match_from_pagerduty_query_is_not_taken() {
    let dir = FakeDirectory::standard();
    dir.add_slack("UAL", Some("alice@example.co"));
    let r = resolver(dir);
    let outcome = r.resolve(&u("UAL"), None, T0).await.unwrap().outcome;
    assert_eq!(outcome.refusal().unwrap().code(), "no_pd_user_with_email");
}

#[tokio::test]
async fn cached_mapping_survives_a_restart_without_directory_calls() {
    let r = resolver(FakeDirectory::standard());
    r.resolve(&u("UALICE"), None, T0).await.unwrap();
    r.resolve(&u("UCAROL"), None, T0).await.unwrap();
    r.slack_user_for(&PdUserId::new("PBOB"), T0).await.unwrap();

    // "Restart": persist the entries as JSON, drop everything, rebuild from the JSON.
    let stored: Vec<(String, String)> = r
        .cache()
        .entries()
        .iter()
        .map(|e| (e.key.storage_key(), serde_json::to_string(e).unwrap()))
        .collect();
    assert_eq!(
        stored.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["slack:UALICE", "slack:UCAROL", "pd:PBOB"]
    );
    drop(r);
    let entries = stored
        .iter()
        .map(|(_, json)| serde_json::from_str::<CacheEntry>(json).unwrap());
    let restarted = Resolver::new(
        FakeDirectory::default(),
        MemoryCache::from_entries(entries),
        config(Overrides::new()),
    );
    let later = T0.saturating_add(minutes(1));
    let alice = restarted.resolve(&u("UALICE"), None, later).await.unwrap();
    assert!(alice.cached);
    assert_eq!(alice.outcome.mapped().unwrap().pd_user.as_str(), "PALICE");
    let carol = restarted.resolve(&u("UCAROL"), None, later).await.unwrap();
    assert!(carol.cached);
    assert_eq!(
        restarted
            .slack_user_for(&PdUserId::new("PBOB"), later)
            .await
            .unwrap(),
        Some(u("UBOB"))
    );
    assert_eq!(restarted.directory().calls(), 0);
}

#[tokio::test]
async fn overrides_beat_email_and_a_new_override_applies_at_once() {
    let mut r = resolver(FakeDirectory::standard());
    let by_email = r.resolve(&u("UALICE"), None, T0).await.unwrap();
    assert_eq!(
        by_email.outcome.mapped().unwrap().pd_user.as_str(),
        "PALICE"
    );

    let mut table = Overrides::new();
    table
        .insert(OverrideEntry::new(
            u("UALICE"),
            OverrideTarget::PdUser(PdUserId::new("PBOB")),
        ))
        .unwrap();
    r.set_overrides(table);
    let overridden = r.resolve(&u("UALICE"), None, T0).await.unwrap();
    assert!(
        !overridden.cached,
        "a changed override must not reuse the cached mapping"
    );
    let user = overridden.outcome.mapped().unwrap();
    assert_eq!(user.pd_user.as_str(), "PBOB");
    assert_eq!(user.email.as_str(), "bob@example.com");
    assert_eq!(user.source, MappingSource::Override);
    assert!(r.resolve(&u("UALICE"), None, T0).await.unwrap().cached);
}

#[tokio::test]
async fn override_to_unknown_or_deactivated_pd_user_is_refused_clearly() {
    let dir = FakeDirectory::standard();
    dir.add_pd("PGONE", "gone@example.com");
    dir.pd.lock().unwrap().last_mut().unwrap().deactivated = true;
    let table = Overrides::from_toml_str(
        "[[identity]]\nslack_user = \"UALICE\"\npd_user = \"PNOSUCH\"\n[[identity]]\nslack_user = \"UBOB\"\npd_user = \"PGONE\"\n",
    )
    .unwrap();
    let r = Resolver::new(dir, MemoryCache::new(), config(table));
    let unknown = r.resolve(&u("UALICE"), None, T0).await.unwrap().outcome;
    assert_eq!(
        unknown.refusal().unwrap().to_string(),
        "The [[identity]] entry for UALICE points at pd_user = \"PNOSUCH\", which is no PagerDuty user; ask a pdbridge admin to fix it."
    );
    let gone = r.resolve(&u("UBOB"), None, T0).await.unwrap().outcome;
    assert_eq!(gone.refusal().unwrap().code(), "pd_user_deactivated");
}

#[tokio::test]
async fn directory_failures_are_errors_and_never_cached() {
    let r = resolver(FakeDirectory::standard());
    r.directory().fail.store(true, Ordering::SeqCst);
    let err = r.resolve(&u("UALICE"), None, T0).await.unwrap_err();
    assert_eq!(err.to_string(), "pagerduty lookup failed: HTTP 503");
    assert!(r.cache().entries().is_empty());
    r.directory().fail.store(false, Ordering::SeqCst);
    assert!(
        r.resolve(&u("UALICE"), None, T0)
            .await
            .unwrap()
            .outcome
            .mapped()
            .is_some()
    );
}

#[tokio::test]
async fn home_team_defaults_to_the_acting_workspace() {
    let dir = FakeDirectory::standard();
    let mut connect = SlackUserFacts::member(
        u("UEXT"),
        SlackTeamId::new("TPARTNER"),
        Some(email("bob@example.com")),
    );
    connect.is_bot = false;
    dir.slack.lock().unwrap().insert(u("UEXT"), connect);
    let r = Resolver::new(
        dir,
        MemoryCache::new(),
        ResolverConfig {
            home_team: None,
            ..ResolverConfig::default()
        },
    );
    let home = SlackTeamId::new("THOME");
    let refused = r
        .resolve(&u("UEXT"), Some(&home), T0)
        .await
        .unwrap()
        .outcome;
    assert_eq!(refused.refusal().unwrap().code(), "foreign_team");
    let own = r
        .resolve(&u("UALICE"), Some(&home), T0)
        .await
        .unwrap()
        .outcome;
    assert!(own.mapped().is_some());
}

#[tokio::test]
async fn reverse_mapping_prefers_overrides_then_exact_email() {
    let dir = FakeDirectory::standard();
    dir.add_pd("PNOSLACK", "nobody@example.com");
    let table = Overrides::from_toml_str(
        "[[identity]]\nslack_user = \"UPIN\"\npd_user = \"PALICE\"\n[[identity]]\nslack_user = \"UBYMAIL\"\npd_email = \"NOBODY@example.com\"\n",
    )
    .unwrap();
    let r = Resolver::new(dir, MemoryCache::new(), config(table));
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PALICE"), T0)
            .await
            .unwrap(),
        Some(u("UPIN"))
    );
    assert_eq!(r.directory().calls(), 0);
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PBOB"), T0).await.unwrap(),
        Some(u("UBOB"))
    );
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PNOSLACK"), T0)
            .await
            .unwrap(),
        Some(u("UBYMAIL"))
    );
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PUNKNOWN"), T0)
            .await
            .unwrap(),
        None
    );
    let calls = r.directory().calls();
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PUNKNOWN"), T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(r.directory().calls(), calls, "misses are cached too");
    let entry = r
        .cache()
        .get(&CacheKey::Pd(PdUserId::new("PUNKNOWN")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.expires_at, T0.saturating_add(minutes(5)));
    assert_eq!(
        entry.value,
        CacheValue::Reverse {
            pd_email: None,
            slack_user: None
        }
    );
    assert_eq!(
        r.refresh_slack_user_for(&PdUserId::new("PUNKNOWN"), T0)
            .await
            .unwrap(),
        None
    );
    assert!(r.directory().calls() > calls);
}

#[tokio::test]
async fn configurable_ttls() {
    let ttls: CacheTtls =
        toml::from_str("positive_ttl_secs = 60\nnegative_ttl_secs = 1\n").unwrap();
    let r = Resolver::new(
        FakeDirectory::standard(),
        MemoryCache::new(),
        ResolverConfig {
            ttls,
            ..config(Overrides::new())
        },
    );
    r.resolve(&u("UALICE"), None, T0).await.unwrap();
    r.resolve(&u("UCAROL"), None, T0).await.unwrap();
    let entries = r.cache().entries();
    assert_eq!(entries[0].expires_at, T0.saturating_add(seconds(60)));
    assert_eq!(entries[1].expires_at, T0.saturating_add(seconds(1)));
    assert!(toml::from_str::<CacheTtls>("positive_ttl = 1\n").is_err());
}

/// A cache whose reads fail until it is written, like an entry that no longer decodes.
#[derive(Default)]
struct UndecodableCache {
    inner: MemoryCache,
    broken: std::sync::atomic::AtomicBool,
    refuse_writes: std::sync::atomic::AtomicBool,
}

impl CacheStore for UndecodableCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, Error> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::Cache("entry does not decode".to_owned()));
        }
        self.inner.get(key).await
    }

    async fn put(&self, entry: CacheEntry) -> Result<(), Error> {
        if self.refuse_writes.load(Ordering::SeqCst) {
            return Err(Error::Cache("disk full".to_owned()));
        }
        self.broken.store(false, Ordering::SeqCst);
        self.inner.put(entry).await
    }

    async fn remove(&self, key: &CacheKey) -> Result<(), Error> {
        self.inner.remove(key).await
    }
}

#[tokio::test]
async fn unreadable_cache_entries_are_misses_but_write_failures_are_errors() {
    let cache = UndecodableCache::default();
    cache.broken.store(true, Ordering::SeqCst);
    let r = Resolver::new(FakeDirectory::standard(), cache, config(Overrides::new()));
    let first = r.resolve(&u("UALICE"), None, T0).await.unwrap();
    assert!(!first.cached);
    assert!(r.resolve(&u("UALICE"), None, T0).await.unwrap().cached);

    r.cache().refuse_writes.store(true, Ordering::SeqCst);
    let err = r.resolve(&u("UBOB"), None, T0).await.unwrap_err();
    assert_eq!(err.to_string(), "identity cache failed: disk full");
}

#[test]
fn cache_entry_json_is_stable() {
    let entry = CacheTtls::default().entry(
        CacheKey::Slack(u("UALICE")),
        CacheValue::Forward {
            basis: identity::MappingBasis {
                override_target: None,
                home_team: Some(SlackTeamId::new("THOME")),
            },
            outcome: identity::MappingOutcome::Mapped(identity::MappedUser {
                slack_user: u("UALICE"),
                pd_user: PdUserId::new("PALICE"),
                email: email("alice@example.com"),
                name: "Alice".to_owned(),
                teams: vec![ids::TeamId::new("PTEAM")],
                role: Some("user".to_owned()),
                source: MappingSource::VerifiedEmail,
            }),
        },
        T0,
    );
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "key": {"slack": "UALICE"},
            "value": {
                "kind": "forward",
                "basis": {"override_target": null, "home_team": "THOME"},
                "outcome": {
                    "outcome": "mapped",
                    "slack_user": "UALICE",
                    "pd_user": "PALICE",
                    "email": "alice@example.com",
                    "name": "Alice",
                    "teams": ["PTEAM"],
                    "role": "user",
                    "source": "verified_email"
                }
            },
            "stored_at": "2026-11-24T12:00:00Z",
            "expires_at": "2026-11-25T12:00:00Z",
            "facts_expire_at": "2026-11-24T12:05:00Z"
        })
    );
    assert_eq!(
        serde_json::from_value::<CacheEntry>(json.clone()).unwrap(),
        entry
    );
    // An entry written before facts had a lifetime of their own reads back with stale facts.
    let mut old = json;
    old.as_object_mut().unwrap().remove("facts_expire_at");
    old["value"]["outcome"]
        .as_object_mut()
        .unwrap()
        .remove("role");
    let old: CacheEntry = serde_json::from_value(old).unwrap();
    assert_eq!(old.facts_expire_at, None);
    assert!(old.is_fresh(T0) && !old.facts_fresh(T0));
}

/// Rows written before `Timestamp` (RFC 3339 with any offset and sub-millisecond digits) still
/// load, and an entry is written back in exactly the old form.
#[test]
fn cache_entry_times_keep_their_rfc3339_form() {
    let old = r#"{"key":{"pd":"PALICE"},"value":{"kind":"reverse","pd_email":null,"slack_user":null},"stored_at":"2026-11-24T13:00:00.123456789+01:00","expires_at":"2026-11-24T12:05:00.5Z"}"#;
    let entry: CacheEntry = serde_json::from_str(old).unwrap();
    assert_eq!(
        entry.stored_at,
        ids::Timestamp::from_millis(T0.as_millis() + 123)
    );
    assert_eq!(
        entry.expires_at,
        T0.saturating_add(minutes(5) + seconds(1) / 2)
    );
    assert_eq!(entry.facts_expire_at, None);
    assert!(entry.is_fresh(T0.saturating_add(minutes(5))));
    assert!(!entry.is_fresh(entry.expires_at));

    let written = serde_json::to_string(&entry).unwrap();
    assert_eq!(
        written,
        r#"{"key":{"pd":"PALICE"},"value":{"kind":"reverse","pd_email":null,"slack_user":null},"stored_at":"2026-11-24T12:00:00.123Z","expires_at":"2026-11-24T12:05:00.5Z","facts_expire_at":null}"#
    );
    assert_eq!(serde_json::from_str::<CacheEntry>(&written).unwrap(), entry);

    // A lifetime past what RFC 3339 can write is written as its last millisecond.
    let ttls = CacheTtls {
        negative_ttl_secs: u64::MAX,
        ..CacheTtls::default()
    };
    let forever = ttls.entry(
        CacheKey::Pd(PdUserId::new("PALICE")),
        CacheValue::Reverse {
            pd_email: None,
            slack_user: None,
        },
        T0,
    );
    let json = serde_json::to_value(&forever).unwrap();
    assert_eq!(json["expires_at"], "9999-12-31T23:59:59.999Z");
    let read: CacheEntry = serde_json::from_value(json).unwrap();
    assert!(read.is_fresh(T0.saturating_add(hours(24 * 365 * 1000))));
}
