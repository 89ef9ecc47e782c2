//! On call, in Slack: `/pd oncall` answered from a cache of PagerDuty's on-call windows,
//! `[[oncall_group]]` user groups that follow the rotation, and `[[handoff]]` messages.
//!
//! [`oncall_loop`] drives it: each [`step`] reads the clock once and, with that `now`, refreshes
//! the pure [`cache::Cache`] when it says so, maps the on-call users to Slack users (through the
//! identity resolver and its store cache), brings each user group in step and announces due
//! handoffs. The loop idles until the first `/pd oncall` unless groups or handoffs are
//! configured, so a deployment that uses none of this makes no extra PagerDuty calls.
//!
//! Files: `cache.rs` (the pure cache and its views), `command.rs` (`/pd oncall`), `render.rs`
//! (its text), `groups.rs` (user groups), `handoff.rs` (handoff messages and their Reassign
//! buttons), `metrics.rs` (the `pdbridge_oncall_*` series).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ids::{PdUserId, SlackUserId, Timestamp, UserGroupId};
use tokio::sync::{Notify, watch};

use crate::bridge::Bridge;
use crate::clock::Clock;

pub mod cache;
mod command;
mod groups;
mod handoff;
mod metrics;
mod render;

use self::cache::Cache;
pub use self::groups::{GroupReport, group_reports, status_report};
pub use self::handoff::{ACTION_HANDOFF_REASSIGN, HANDOFF_EVENT_TYPE};
pub use self::metrics::OnCallMetrics;

/// How long a PagerDuty ↔ Slack mapping of an on-call user is used before it is looked up again.
const MAPPING_TTL: Duration = Duration::from_secs(15 * 60);
/// How soon a person without a Slack user is looked up again (the identity resolver's own
/// cache answers most of these without calling Slack).
const UNMAPPED_TTL: Duration = Duration::from_secs(60);

/// What the loop and `/pd oncall` share.
#[derive(Default)]
pub struct OnCall {
    state: Mutex<Shared>,
    wake: Notify,
    asked: AtomicBool,
    steps: AtomicU64,
    clock: Mutex<Option<Clock>>,
}

impl std::fmt::Debug for OnCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnCall")
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// One on-call person's Slack user, as far as known.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    /// The Slack user (`None`: none maps, or the lookup failed).
    pub(crate) slack: Option<SlackUserId>,
    /// When `slack` was last confirmed by a lookup.
    pub(crate) confirmed: Timestamp,
    /// When to look up again.
    pub(crate) next: Timestamp,
}

/// The loop's memory.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) cache: Cache,
    /// The Slack user of each on-call PagerDuty user, as last looked up.
    pub(crate) slack_of: BTreeMap<PdUserId, Mapping>,
    /// Each asker's time zone (name, offset in seconds), and when it was read.
    pub(crate) tz: BTreeMap<SlackUserId, (String, i32, Timestamp)>,
    pub(crate) groups: BTreeMap<UserGroupId, groups::GroupState>,
    /// The handoff messages known to be posted (their store markers say so too).
    pub(crate) announced: std::collections::BTreeSet<String>,
    /// Bumped when the clock is replaced: a pass begun before then records nothing.
    epoch: u64,
}

impl OnCall {
    /// The shared state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the cache as wanted (a `/pd oncall` arrived) and wakes the loop.
    pub(crate) fn wanted(&self) {
        self.asked.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Wakes the loop (tests moving the clock; a reload).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Gives the on-call features a clock of their own (tests and the demo simulate time with
    /// it); forgets the cache and every time kept, so the next pass reads at the new time.
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = Some(clock);
        {
            // Every time kept so far is on the old clock.
            let mut shared = self.lock();
            shared.epoch += 1;
            shared.cache = Cache::default();
            shared.slack_of.clear();
            shared.tz.clear();
            for group in shared.groups.values_mut() {
                group.forget_times();
            }
        }
        self.wake.notify_one();
    }

    /// The on-call features' time: their own clock when set, else `fallback` (the bridge's).
    pub(crate) fn now(&self, fallback: &Clock) -> Timestamp {
        let own = self
            .clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        own.map_or_else(|| fallback(), |clock| clock())
    }

    /// How many passes the loop has finished.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// A copy of the cache, for views.
    pub fn cache(&self) -> Cache {
        self.lock().cache.clone()
    }
}

/// Whether the loop has work: groups or handoffs are configured, or someone asked.
fn active(bridge: &Bridge) -> bool {
    let config = &bridge.ctx.config;
    !config.oncall_groups.is_empty()
        || !config.handoffs.is_empty()
        || bridge.ctx.oncall.asked.load(Ordering::Relaxed)
}

/// Runs [`step`] whenever something is due (at least every second) until `shutdown`.
pub async fn oncall_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    if let Err(err) = groups::restore(&bridge).await {
        tracing::warn!(err = %err.0, "could not read the user groups' last members");
    }
    loop {
        if active(&bridge) {
            // The epoch first: a clock replaced after it makes this pass record nothing.
            let epoch = bridge.ctx.oncall.lock().epoch;
            let now = bridge.ctx.oncall.now(&bridge.ctx.clock);
            step(&bridge, now, epoch).await;
            bridge.ctx.oncall.steps.fetch_add(1, Ordering::Relaxed);
        }
        tokio::select! {
            () = crate::runtime::stopped(&mut shutdown) => return,
            () = bridge.ctx.oncall.wake.notified() => {}
            () = tokio::time::sleep(crate::runtime::IDLE) => {}
        }
    }
}

/// One pass at `now`: refresh, details, mappings, groups, handoffs. `epoch` is the one read
/// before `now`; when the clock has been replaced since, the cache records nothing of this pass.
async fn step(bridge: &Bridge, now: Timestamp, epoch: u64) {
    refresh(bridge, now, epoch).await;
    details(bridge, now, epoch).await;
    map_people(bridge, now, epoch).await;
    if bridge.ctx.oncall.lock().epoch != epoch {
        return;
    }
    groups::sync(bridge, now).await;
    handoff::announce(bridge, now).await;
    let shared = bridge.ctx.oncall.lock();
    let age = shared
        .cache
        .fetched_at()
        .map(|at| now.duration_since(at).as_secs_f64());
    bridge.ctx.metrics.oncall.set_age(age);
}

async fn refresh(bridge: &Bridge, now: Timestamp, epoch: u64) {
    if !bridge.ctx.oncall.lock().cache.refresh_due(now) {
        return;
    }
    let answer = bridge.ctx.pd.oncalls(&Cache::query(now)).await;
    let outcome = if answer.is_ok() { "ok" } else { "error" };
    bridge.ctx.metrics.api_call("pagerduty", outcome);
    bridge.ctx.metrics.oncall.read(outcome);
    let answer = answer.map(|l| l.items).map_err(|err| {
        tracing::warn!(%err, "reading PagerDuty's on-calls failed; answering from the last read");
        cache::ReadFailed(err.to_string())
    });
    let mut shared = bridge.ctx.oncall.lock();
    if shared.epoch == epoch {
        shared.cache.record(now, answer);
    }
}

async fn details(bridge: &Bridge, now: Timestamp, epoch: u64) {
    let config = &bridge.ctx.config;
    let first: std::collections::BTreeSet<_> = config
        .oncall_groups
        .iter()
        .filter_map(|g| g.escalation_policy.clone())
        .collect();
    let (policies, with_services) = {
        let shared = bridge.ctx.oncall.lock();
        if !shared.cache.details_due(now) {
            return;
        }
        (
            shared.cache.policies_to_read(now, &first),
            shared.cache.services_due(now),
        )
    };
    let pd = &bridge.ctx.pd;
    let mut found = cache::Details::default();
    for id in &policies {
        match pd.get_escalation_policy(id).await {
            Ok(p) => {
                found.policies.insert(
                    id.clone(),
                    cache::PolicyInfo {
                        name: p.name,
                        delays: p
                            .escalation_rules
                            .iter()
                            .map(|r| r.escalation_delay_in_minutes)
                            .collect(),
                        teams: p.teams.into_iter().map(|t| t.id).collect(),
                    },
                );
            }
            Err(err) => tracing::debug!(%err, policy = %id, "escalation policy details"),
        }
    }
    if with_services {
        let services: std::collections::BTreeSet<_> = config
            .routes
            .iter()
            .flat_map(|r| r.services.iter().cloned())
            .collect();
        let teams: std::collections::BTreeSet<_> = config
            .routes
            .iter()
            .flat_map(|r| r.teams.iter().cloned())
            .collect();
        for id in services {
            if let Ok(s) = pd.get_service(&id).await {
                found.services.insert(
                    id,
                    cache::ServiceInfo {
                        name: s.name.clone(),
                        policy: s.escalation_policy.as_ref().map(|p| p.id.clone()),
                        teams: s.team_ids(),
                    },
                );
            }
        }
        for id in teams {
            if let Ok(t) = pd.get_team(&id).await {
                found.teams.insert(id, t.name);
            }
        }
        handoff::prune(bridge, now).await;
    }
    let mut shared = bridge.ctx.oncall.lock();
    if shared.epoch == epoch {
        shared
            .cache
            .record_details(now, &policies, with_services, found);
    }
}

/// Looks up the Slack user of each person on call now or next whose mapping is unknown or older
/// than [`MAPPING_TTL`].
async fn map_people(bridge: &Bridge, now: Timestamp, epoch: u64) {
    let wanted: Vec<PdUserId> = {
        let shared = bridge.ctx.oncall.lock();
        let mut ids: Vec<PdUserId> = shared
            .cache
            .shifts()
            .iter()
            .map(|s| s.person.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids.retain(|id| shared.slack_of.get(id).is_none_or(|m| now >= m.next));
        ids
    };
    if wanted.is_empty() {
        return;
    }
    let found = bridge.ctx.identity.mentions(&wanted, now).await;
    let mut shared = bridge.ctx.oncall.lock();
    if shared.epoch != epoch {
        return;
    }
    for id in wanted {
        // A lookup that found nothing may have failed: a mapping confirmed within two TTLs is
        // kept (and looked up again a minute later), so a Slack hiccup does not empty a group.
        let again = now.saturating_add(UNMAPPED_TTL);
        let entry = match (found.get(&id), shared.slack_of.get(&id)) {
            (Some(slack), _) => Mapping {
                slack: Some(slack.clone()),
                confirmed: now,
                next: now.saturating_add(MAPPING_TTL),
            },
            (None, Some(old))
                if old.slack.is_some() && now.duration_since(old.confirmed) < 2 * MAPPING_TTL =>
            {
                Mapping {
                    next: again,
                    ..old.clone()
                }
            }
            (None, _) => Mapping {
                slack: None,
                confirmed: now,
                next: again,
            },
        };
        shared.slack_of.insert(id, entry);
    }
}

/// The Slack user of each PagerDuty user, as far as known.
pub(crate) fn mentions(shared: &Shared) -> crate::render::Mentions {
    shared
        .slack_of
        .iter()
        .filter_map(|(pd, m)| m.slack.clone().map(|s| (pd.clone(), s)))
        .collect()
}
