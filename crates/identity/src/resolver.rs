//! The async resolver: fetches facts through a [`Directory`], decides with the pure core, and
//! caches through a [`CacheStore`].

use std::future::Future;
use std::sync::Arc;

use ids::{Email, PdUserId, SlackTeamId, SlackUserId, Timestamp};

use crate::Error;
use crate::cache::{CacheEntry, CacheKey, CacheStore, CacheTtls, CacheValue, MappingBasis};
use crate::facts::{PdUserFacts, SlackUserFacts};
use crate::mapping::{
    MappedUser, MappingOutcome, MappingPlan, PdLookup, finish_mapping, plan_mapping,
};
use crate::overrides::Overrides;

/// Fetches identity facts from Slack and PagerDuty.
///
/// "Not found" is `Ok(None)` / an empty list; `Err` is reserved for failures (network, rate
/// limit, auth) and is never cached.
pub trait Directory {
    /// Slack `users.info`.
    fn slack_user(
        &self,
        id: &SlackUserId,
    ) -> impl Future<Output = Result<Option<SlackUserFacts>, Error>> + Send;
    /// Slack `users.lookupByEmail`.
    fn slack_user_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<SlackUserFacts>, Error>> + Send;
    /// PagerDuty `GET /users/{id}`.
    fn pd_user(
        &self,
        id: &PdUserId,
    ) -> impl Future<Output = Result<Option<PdUserFacts>, Error>> + Send;
    /// PagerDuty `GET /users?query=<email>`: may return extra users; the caller filters exactly.
    fn pd_users_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Vec<PdUserFacts>, Error>> + Send;
}

impl<T: Directory + Send + Sync> Directory for Arc<T> {
    fn slack_user(
        &self,
        id: &SlackUserId,
    ) -> impl Future<Output = Result<Option<SlackUserFacts>, Error>> + Send {
        (**self).slack_user(id)
    }

    fn slack_user_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<SlackUserFacts>, Error>> + Send {
        (**self).slack_user_by_email(email)
    }

    fn pd_user(
        &self,
        id: &PdUserId,
    ) -> impl Future<Output = Result<Option<PdUserFacts>, Error>> + Send {
        (**self).pd_user(id)
    }

    fn pd_users_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Vec<PdUserFacts>, Error>> + Send {
        (**self).pd_users_by_email(email)
    }
}

/// Settings of a [`Resolver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The `[[identity]]` table.
    pub overrides: Overrides,
    /// The home workspace: users of others are refused unless overridden. `None` trusts the
    /// workspace each request names (the explicit `slack.allow_any_workspace` opt-in).
    pub home_team: Option<SlackTeamId>,
    /// Cache lifetimes.
    pub ttls: CacheTtls,
}

/// A mapping and whether it came from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The mapping or refusal.
    pub outcome: MappingOutcome,
    /// `true` when no directory call was made.
    pub cached: bool,
}

/// Resolves Slack users to PagerDuty users and back, with caching.
///
/// A mapping (the Slack↔PagerDuty link) is reused for the positive TTL, but the PagerDuty
/// user's facts that authorize (email, role, teams) only for the facts TTL: after it they are
/// read again with `GET /users/{id}`, and a user PagerDuty no longer knows, or whose email
/// changed, is mapped again from scratch.
///
/// A cache read that fails (for example an entry written by an older version that no longer
/// decodes) counts as a miss, and the fresh answer overwrites it; a cache write that fails is
/// returned as [`Error::Cache`], so a broken store is noticed rather than hammering the APIs.
#[derive(Debug)]
pub struct Resolver<D, C> {
    directory: D,
    cache: C,
    config: ResolverConfig,
}

impl<D: Directory, C: CacheStore> Resolver<D, C> {
    /// A resolver over `directory` and `cache`.
    pub fn new(directory: D, cache: C, config: ResolverConfig) -> Self {
        Self {
            directory,
            cache,
            config,
        }
    }

    /// The directory.
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The cache store.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The override table.
    pub fn overrides(&self) -> &Overrides {
        &self.config.overrides
    }

    /// Replaces the override table; cached mappings whose override changed are recomputed.
    pub fn set_overrides(&mut self, overrides: Overrides) {
        self.config.overrides = overrides;
    }

    /// Maps `slack_user`, acting from workspace `acting_team` (the payload's `team.id`), using
    /// the cache when it holds a fresh answer computed from the same overrides. A mapping whose
    /// authorizing facts are older than the facts TTL has them read again first.
    pub async fn resolve(
        &self,
        slack_user: &SlackUserId,
        acting_team: Option<&SlackTeamId>,
        now: Timestamp,
    ) -> Result<Resolution, Error> {
        let basis = self.basis(slack_user, acting_team);
        let key = CacheKey::Slack(slack_user.clone());
        if let Ok(Some(entry)) = self.cache.get(&key).await
            && let Some(outcome) = entry.forward(&basis, now)
        {
            match outcome {
                MappingOutcome::Mapped(user) if !entry.facts_fresh(now) => {
                    if let Some(resolution) = self.refresh_facts(&entry, &basis, user, now).await? {
                        return Ok(resolution);
                    }
                }
                _ => {
                    return Ok(Resolution {
                        outcome: outcome.clone(),
                        cached: true,
                    });
                }
            }
        }
        self.fetch_and_store(slack_user, basis, now).await
    }

    /// Reads a linked PagerDuty user's facts again and keeps the link until its own expiry.
    /// `None` when the link no longer holds (PagerDuty does not know the user, or their email
    /// changed) and the user must be mapped from scratch.
    async fn refresh_facts(
        &self,
        entry: &CacheEntry,
        basis: &MappingBasis,
        user: &MappedUser,
        now: Timestamp,
    ) -> Result<Option<Resolution>, Error> {
        let Some(facts) = self.directory.pd_user(&user.pd_user).await? else {
            return Ok(None);
        };
        if facts.email != user.email {
            return Ok(None);
        }
        let plan = MappingPlan {
            lookup: PdLookup::ById(user.pd_user.clone()),
            source: user.source,
        };
        let outcome = finish_mapping(&self.config.overrides, &user.slack_user, &plan, &[facts]);
        let mut fresh = self.config.ttls.entry(
            entry.key.clone(),
            CacheValue::Forward {
                basis: basis.clone(),
                outcome: outcome.clone(),
            },
            now,
        );
        if outcome.mapped().is_some() {
            // The link keeps its own lifetime; only the facts are new.
            fresh.stored_at = entry.stored_at;
            fresh.expires_at = entry.expires_at;
        }
        self.cache.put(fresh).await?;
        Ok(Some(Resolution {
            outcome,
            cached: false,
        }))
    }

    /// Maps `slack_user` from the directories, ignoring and then replacing any cached answer.
    pub async fn refresh(
        &self,
        slack_user: &SlackUserId,
        acting_team: Option<&SlackTeamId>,
        now: Timestamp,
    ) -> Result<Resolution, Error> {
        let basis = self.basis(slack_user, acting_team);
        self.fetch_and_store(slack_user, basis, now).await
    }

    /// The Slack user to mention for `pd_user`: an override pointing at it, else the active
    /// Slack user whose email is exactly the PagerDuty user's email. `None` when there is none.
    pub async fn slack_user_for(
        &self,
        pd_user: &PdUserId,
        now: Timestamp,
    ) -> Result<Option<SlackUserId>, Error> {
        self.reverse(pd_user, now, false).await
    }

    /// Like [`Resolver::slack_user_for`], ignoring and then replacing any cached answer.
    pub async fn refresh_slack_user_for(
        &self,
        pd_user: &PdUserId,
        now: Timestamp,
    ) -> Result<Option<SlackUserId>, Error> {
        self.reverse(pd_user, now, true).await
    }

    /// Drops any cached answer for `key`.
    pub async fn invalidate(&self, key: &CacheKey) -> Result<(), Error> {
        self.cache.remove(key).await
    }

    /// The cache lifetimes.
    pub fn ttls(&self) -> CacheTtls {
        self.config.ttls
    }

    fn basis(&self, slack_user: &SlackUserId, acting_team: Option<&SlackTeamId>) -> MappingBasis {
        MappingBasis {
            override_target: self.config.overrides.get(slack_user).cloned(),
            home_team: self.config.home_team.as_ref().or(acting_team).cloned(),
        }
    }

    async fn fetch_and_store(
        &self,
        slack_user: &SlackUserId,
        basis: MappingBasis,
        now: Timestamp,
    ) -> Result<Resolution, Error> {
        let overrides = &self.config.overrides;
        let facts = self.directory.slack_user(slack_user).await?;
        let outcome = match plan_mapping(
            overrides,
            basis.home_team.as_ref(),
            slack_user,
            facts.as_ref(),
        ) {
            Err(refusal) => MappingOutcome::Refused(refusal),
            Ok(plan) => {
                let found = match &plan.lookup {
                    PdLookup::ById(id) => self.directory.pd_user(id).await?.into_iter().collect(),
                    PdLookup::ByEmail(email) => self.directory.pd_users_by_email(email).await?,
                };
                finish_mapping(overrides, slack_user, &plan, &found)
            }
        };
        let value = CacheValue::Forward {
            basis,
            outcome: outcome.clone(),
        };
        let entry = self
            .config
            .ttls
            .entry(CacheKey::Slack(slack_user.clone()), value, now);
        self.cache.put(entry).await?;
        Ok(Resolution {
            outcome,
            cached: false,
        })
    }

    async fn reverse(
        &self,
        pd_user: &PdUserId,
        now: Timestamp,
        refresh: bool,
    ) -> Result<Option<SlackUserId>, Error> {
        let overrides = &self.config.overrides;
        if let Some(slack_user) = overrides.slack_user_for(pd_user, None) {
            return Ok(Some(slack_user.clone()));
        }
        let key = CacheKey::Pd(pd_user.clone());
        let cached = if refresh {
            None
        } else {
            self.cache.get(&key).await.ok().flatten().and_then(|entry| {
                entry
                    .reverse(now)
                    .map(|(email, slack)| (email.cloned(), slack.cloned()))
            })
        };
        let (pd_email, slack_user) = match cached {
            Some(answer) => answer,
            None => {
                let pd_email = self
                    .directory
                    .pd_user(pd_user)
                    .await?
                    .map(|user| user.email);
                let slack_user = match &pd_email {
                    Some(email) => self
                        .directory
                        .slack_user_by_email(email)
                        .await?
                        .filter(|user| {
                            !user.deleted
                                && !user.is_bot
                                && user.email.as_ref().is_none_or(|e| e == email)
                        })
                        .map(|user| user.id),
                    None => None,
                };
                let value = CacheValue::Reverse {
                    pd_email: pd_email.clone(),
                    slack_user: slack_user.clone(),
                };
                self.cache
                    .put(self.config.ttls.entry(key, value, now))
                    .await?;
                (pd_email, slack_user)
            }
        };
        if let Some(email) = &pd_email
            && let Some(pinned) = overrides.slack_user_for(pd_user, Some(email))
        {
            return Ok(Some(pinned.clone()));
        }
        Ok(slack_user)
    }
}
