//! Slack user to PagerDuty user mapping and per-action authorization policy.
//!
//! An action clicked in Slack must be attributed to the right PagerDuty user, every time, and
//! only allowed when the policy says so. This crate decides both, as data.
//!
//! # Call order
//!
//! 1. At startup, deserialize the `[[identity]]` array as [`Overrides`] and the `[policy]`
//!    table as [`PolicyConfig`] (both validate at load; errors name the entry and key), and
//!    optionally [`CacheTtls`].
//! 2. Build a [`Resolver`] over a [`Directory`] (Slack and PagerDuty lookups; in production
//!    [`clients::ClientDirectory`]) and a
//!    [`CacheStore`] (the server's SQLite store, or
//!    [`MemoryCache`]), and a [`Policy`] with the configured workspace.
//! 3. Per Slack action: [`Resolver::resolve`] the clicking user into a [`MappingOutcome`],
//!    then [`Policy::authorize`] it against the incident's [`IncidentFacts`]; audit the
//!    returned [`Decision`] and proceed only when `allowed`, sending [`MappedUser::email`] as
//!    PagerDuty's `From`.
//! 4. For mentions on the card, [`Resolver::slack_user_for`] maps a PagerDuty user back.
//! 5. Per incident declared from Slack, [`Policy::authorize_trigger`] decides under
//!    `[policy] trigger` ([`TriggerRule`]) with the service's [`ServiceFacts`].
//!
//! # Invariants
//!
//! - Overrides win over email; email matching is exact and case-insensitive, never partial or
//!   by name; there is never a shared or bot fallback account.
//! - Bots and deleted Slack users are always refused; guests and users of another workspace
//!   only pass through an override; deactivated PagerDuty users are refused.
//! - The pure core ([`plan_mapping`], [`finish_mapping`], [`Policy::authorize`], cache
//!   freshness on [`CacheEntry`]) does no I/O and takes `now` as an argument.
//! - PagerDuty users with a read-only role ([`READ_ONLY_ROLES`]) are refused for every action.
//! - The facts that authorize a mapped user (PagerDuty email, role, teams) are reused for the
//!   facts TTL only, after which they are read again by id; the link itself lasts the positive
//!   TTL unless the user disappears or their email changes.
//! - Refusals are cached for the negative TTL, mappings for the positive TTL; directory
//!   failures and cache write failures are returned as [`Error`] and never cached, while an
//!   unreadable cache entry counts as a miss. A changed override for a user invalidates that
//!   user's cached mapping at once.
#![forbid(unsafe_code)]

mod cache;
pub mod clients;
mod error;
mod facts;
mod mapping;
mod overrides;
mod policy;
mod resolver;
mod trigger;

pub use cache::{
    CacheEntry, CacheKey, CacheStore, CacheTtls, CacheValue, MappingBasis, MemoryCache,
};
pub use error::Error;
pub use facts::{IncidentFacts, PdUserFacts, READ_ONLY_ROLES, SlackUserFacts};
pub use mapping::{
    MappedUser, MappingOutcome, MappingPlan, MappingSource, PdLookup, Refusal, decide_mapping,
    finish_mapping, plan_mapping,
};
pub use overrides::{OverrideEntry, OverrideTarget, Overrides};
pub use policy::{
    Action, ActionContext, AdminRef, AskRefusal, AskRule, Check, Decision, Policy, PolicyConfig,
    Rule, ViewRefusal,
};
pub use resolver::{Directory, Resolution, Resolver, ResolverConfig};
pub use trigger::{OTHER_SERVICES, ServiceFacts, TriggerRule};
