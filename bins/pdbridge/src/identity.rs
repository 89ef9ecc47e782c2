//! Identity resolution and policy for Slack actions, before they reach the engine.
//!
//! [`Identity::actor`] maps the clicking Slack user to a PagerDuty user (overrides first, then
//! the verified email; cached in SQLite) and asks the policy whether they may take the action on
//! this incident. Both answers become the engine's [`Actor`]; nothing here mutates PagerDuty.
//!
//! A mapping is reused for 24 h, but the PagerDuty facts that authorize it (email, role, teams)
//! only for `identity_cache.facts_ttl_secs` (5 min); a PagerDuty user with a read-only role is
//! refused before anything is sent, and a mapping whose `From` PagerDuty rejected is dropped
//! ([`Identity::forget_if_rejected`]).
//!
//! Only users of the home workspace are mapped by email: `slack.team_id`, else the bot's own
//! workspace as `auth.test` reports it. When `auth.test` failed at start, it is asked again
//! before each lookup and every click is refused as a lookup failure until Slack answers.
//! `slack.allow_any_workspace = true` trusts the workspace each request names instead.
//!
//! The `team_member` rule needs the teams of the incident's escalation policy (and of its
//! service), which PagerDuty's incident does not carry: they are read from the API once per
//! incident and reused for [`TEAM_FACTS_TTL`], so an action's lookup retries and a burst of
//! clicks on one card fetch them once. When they cannot be read the action is refused as a
//! lookup failure (retried, never allowed on missing facts).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use identity::clients::ClientDirectory;
use identity::{
    Action, ActionContext, CacheKey, Check, Decision, IncidentFacts, MappingOutcome, Overrides,
    Policy, PolicyConfig, Resolution, Resolver, ResolverConfig, Rule,
};
use ids::{
    EscalationPolicyId, IncidentId, PdUserId, ServiceId, SlackTeamId, SlackUserId, TeamId,
    Timestamp,
};
use pd_client::PdClient;
use slack_client::SlackClient;
use store::Store;
use sync_core::{ActionKind, Actor, Refusal};

use crate::config::Config;

mod cache;
mod denied;

pub use self::cache::StoreCache;
pub use self::denied::{LookupError, ViewDenied};

/// How long the teams of an incident's escalation policy and service are reused.
pub const TEAM_FACTS_TTL: Duration = Duration::from_secs(60);

/// The teams of an incident's escalation policy and service, as read from PagerDuty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TeamFacts {
    escalation_policy: Option<EscalationPolicyId>,
    service: Option<ServiceId>,
    escalation_policy_teams: Vec<TeamId>,
    service_teams: Vec<TeamId>,
    fetched_at: Timestamp,
}

/// How long a click waits for `auth.test` when the home workspace is not known yet.
const AUTH_TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Whose users may be mapped by their email.
#[derive(Debug)]
enum Boundary {
    /// `slack.allow_any_workspace = true`: the workspace each request names is trusted.
    AnyWorkspace,
    /// Only the home workspace's users; `None` until `auth.test` has named it.
    Home(Mutex<Option<SlackTeamId>>),
}

/// The identity and policy half of action processing.
#[derive(Debug)]
pub struct Identity {
    /// Read for every lookup; written when `serve` reloads `[[identity]]` on SIGHUP and once
    /// when a late `auth.test` names the home workspace.
    resolver: tokio::sync::RwLock<Resolver<ClientDirectory, StoreCache>>,
    pub(crate) policy: PolicyConfig,
    ttls: identity::CacheTtls,
    pd: PdClient,
    slack: SlackClient,
    store: Arc<Store>,
    boundary: Boundary,
    /// The bot's workspace as known at start (`"unknown"` when `auth.test` failed).
    workspace: SlackTeamId,
    team_facts: Mutex<BTreeMap<IncidentId, TeamFacts>>,
}

/// The identity action for an engine action.
pub fn policy_action(kind: &ActionKind) -> Action {
    Action::from(kind.verb())
}

/// What the caller knows about the incident from the engine.
#[derive(Debug, Clone)]
pub struct KnownIncident {
    /// Facts for the policy (teams, escalation policy, assignees, card channel).
    pub facts: IncidentFacts,
    /// The incident's service, whose teams count for `team_member`.
    pub service: Option<ServiceId>,
}

/// One action whose actor is to be resolved.
#[derive(Debug, Clone)]
pub struct ActorRequest<'a> {
    /// Who clicked.
    pub slack_user: &'a SlackUserId,
    /// The workspace the click came from.
    pub team: Option<&'a SlackTeamId>,
    /// The channel the click came from.
    pub channel: Option<&'a ids::ChannelId>,
    /// What was asked for.
    pub kind: &'a ActionKind,
    /// The incident.
    pub incident: &'a IncidentId,
    /// What the engine knows about the incident.
    pub known: Option<KnownIncident>,
    /// The current time.
    pub now: Timestamp,
}

/// Whether an action's actor may perform it, as recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The policy allows it.
    Allowed,
    /// The clicker is unmapped, could not be looked up, or the policy refuses.
    Refused,
}

impl Verdict {
    /// The audit decision text for this verdict and its reason, such as `refused: …`.
    pub fn audit(self, reason: &str) -> String {
        let name = match self {
            Verdict::Allowed => "allowed",
            Verdict::Refused => "refused",
        };
        format!("{name}: {reason}")
    }
}

/// The result of resolving one action's actor.
#[derive(Debug, Clone)]
pub struct ResolvedActor {
    /// The engine's actor.
    pub actor: Actor,
    /// The PagerDuty user, when mapped.
    pub pd_user: Option<PdUserId>,
    /// Whether the action may go ahead; the audit text starts with its name.
    pub verdict: Verdict,
    /// The audit decision text.
    pub decision: String,
    /// The unmapped reason, for the unmapped-user tally.
    pub unmapped: Option<String>,
    /// Set when the directories could not be asked (not a refusal: worth retrying).
    pub lookup_failed: Option<String>,
}

/// Why a reassignment target has no PagerDuty user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The target is refused (no account, guest, bot…): tell the clicker.
    Refused(String),
    /// Slack or PagerDuty could not be asked: worth retrying.
    Lookup(String),
}

impl Identity {
    /// Builds the resolver (overrides from `[[identity]]`) and the policy (`[policy]`).
    /// `workspace` is the bot's own workspace (`slack.team_id`, else `auth.test`'s answer), or
    /// `None` when `auth.test` failed: it is then asked again before anyone is mapped.
    pub fn new(
        config: &Config,
        pd: PdClient,
        slack: SlackClient,
        workspace: Option<SlackTeamId>,
        store: Arc<Store>,
    ) -> Self {
        let boundary = if config.slack.allow_any_workspace {
            Boundary::AnyWorkspace
        } else {
            Boundary::Home(Mutex::new(
                config.slack.team_id.clone().or_else(|| workspace.clone()),
            ))
        };
        let mut identity = Self {
            resolver: tokio::sync::RwLock::new(Resolver::new(
                ClientDirectory::new(pd.clone(), slack.clone(), SlackTeamId::new("unknown")),
                StoreCache(Arc::clone(&store)),
                ResolverConfig::default(),
            )),
            policy: config.policy.clone(),
            ttls: config.identity_cache,
            pd,
            slack,
            store,
            boundary,
            workspace: workspace.unwrap_or_else(|| SlackTeamId::new("unknown")),
            team_facts: Mutex::default(),
        };
        let home = identity.known_home();
        let resolver = identity.build_resolver(config.identity.clone(), home);
        identity.resolver = tokio::sync::RwLock::new(resolver);
        identity
    }

    /// A resolver over the clients and the store. Users of workspaces other than `home` are
    /// refused unless the boundary trusts any workspace; an unknown home refuses them all.
    fn build_resolver(
        &self,
        overrides: Overrides,
        home: Option<SlackTeamId>,
    ) -> Resolver<ClientDirectory, StoreCache> {
        let home_team = match &self.boundary {
            Boundary::AnyWorkspace => None,
            Boundary::Home(_) => Some(home.unwrap_or_else(|| SlackTeamId::new("unknown"))),
        };
        let fallback = home_team.clone().unwrap_or_else(|| self.workspace.clone());
        Resolver::new(
            ClientDirectory::new(self.pd.clone(), self.slack.clone(), fallback),
            StoreCache(Arc::clone(&self.store)),
            ResolverConfig {
                overrides,
                home_team,
                ttls: self.ttls,
            },
        )
    }

    fn known_home(&self) -> Option<SlackTeamId> {
        match &self.boundary {
            Boundary::AnyWorkspace => None,
            Boundary::Home(home) => home.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }

    /// The home workspace: `Ok(None)` when any workspace is trusted. When `auth.test` has not
    /// answered yet, asks it now; `Err` (nobody may be mapped) while Slack does not answer.
    pub async fn home_team(&self) -> Result<Option<SlackTeamId>, LookupError> {
        let Boundary::Home(known) = &self.boundary else {
            return Ok(None);
        };
        if let Some(home) = self.known_home() {
            return Ok(Some(home));
        }
        let team = match tokio::time::timeout(AUTH_TEST_TIMEOUT, self.slack.auth_test()).await {
            Ok(Ok(auth)) => auth.team_id,
            Ok(Err(err)) => return Err(LookupError::HomeUnknown(err)),
            Err(_) => return Err(LookupError::HomeTimedOut),
        };
        tracing::info!(team = %team, "auth.test named the home workspace");
        let mut resolver = self.resolver.write().await;
        *known.lock().unwrap_or_else(PoisonError::into_inner) = Some(team.clone());
        let overrides = resolver.overrides().clone();
        *resolver = self.build_resolver(overrides, Some(team.clone()));
        Ok(Some(team))
    }

    /// Drops `slack_user`'s cached mapping when PagerDuty refused a mutation because of its
    /// `From` user (see [`identity::clients::pd_rejected_from`]), so their next click is mapped
    /// and authorized from fresh facts. Returns whether it did.
    pub async fn forget_if_rejected(
        &self,
        slack_user: &SlackUserId,
        error: &pd_client::Error,
    ) -> bool {
        if !identity::clients::pd_rejected_from(error) {
            return false;
        }
        let key = CacheKey::Slack(slack_user.clone());
        match self.resolver().await.invalidate(&key).await {
            Ok(()) => {
                tracing::info!(%slack_user, %error, "PagerDuty rejected the From user; their cached mapping is dropped");
                true
            }
            Err(err) => {
                tracing::warn!(%slack_user, %err, "dropping a rejected mapping failed");
                false
            }
        }
    }

    /// Maps `slack_user` once the home workspace is known.
    pub(crate) async fn resolve(
        &self,
        slack_user: &SlackUserId,
        team: Option<&SlackTeamId>,
        now: Timestamp,
    ) -> Result<(Resolution, Option<SlackTeamId>), LookupError> {
        let home = self.home_team().await?;
        let resolution = self
            .resolver()
            .await
            .resolve(slack_user, team, now)
            .await
            .map_err(LookupError::Resolver)?;
        Ok((resolution, home))
    }

    /// Replaces the `[[identity]]` table (`serve` does on SIGHUP). Lookups under way finish with
    /// the old table first; a cached mapping made under another override for a user is
    /// recomputed at that user's next lookup.
    pub async fn set_overrides(&self, overrides: identity::Overrides) {
        self.resolver.write().await.set_overrides(overrides);
    }

    async fn resolver(
        &self,
    ) -> tokio::sync::RwLockReadGuard<'_, Resolver<ClientDirectory, StoreCache>> {
        self.resolver.read().await
    }

    /// Maps a Slack user to a PagerDuty user id for a reassignment target.
    pub async fn pd_user_for(
        &self,
        slack_user: &SlackUserId,
        team: Option<&SlackTeamId>,
        now: Timestamp,
    ) -> Result<PdUserId, TargetError> {
        match self.resolve(slack_user, team, now).await {
            Ok((r, _)) => match r.outcome {
                MappingOutcome::Mapped(user) => Ok(user.pd_user),
                MappingOutcome::Refused(refusal) => Err(TargetError::Refused(refusal.to_string())),
            },
            Err(err) => Err(TargetError::Lookup(format!(
                "pdbridge could not look up <@{slack_user}>: {err}"
            ))),
        }
    }

    /// Resolves and authorizes the actor of one action.
    pub async fn actor(&self, req: ActorRequest<'_>) -> ResolvedActor {
        let ActorRequest {
            slack_user,
            team,
            channel,
            kind,
            incident,
            known,
            now,
        } = req;
        let unmapped = |reason: String, how: &str| ResolvedActor {
            actor: Actor::Unmapped {
                slack: slack_user.clone(),
                reason: Refusal {
                    reason: reason.clone(),
                    how_to_fix: how.to_owned(),
                },
            },
            pd_user: None,
            verdict: Verdict::Refused,
            decision: Verdict::Refused.audit(&reason),
            unmapped: Some(reason),
            lookup_failed: None,
        };
        let (resolution, home) = match self.resolve(slack_user, team, now).await {
            Ok(r) => r,
            Err(err) => {
                let mut r = unmapped(
                    format!("pdbridge could not look up your PagerDuty account ({err})."),
                    "Try again in a minute; if it keeps failing, ask an admin to run `pdbridge check`.",
                );
                r.unmapped = None;
                r.lookup_failed = Some(err.to_string());
                return r;
            }
        };
        let user = match resolution.outcome {
            MappingOutcome::Refused(refusal) => {
                return unmapped(
                    refusal.to_string(),
                    "Ask a pdbridge admin to map your Slack account to your PagerDuty user.",
                );
            }
            MappingOutcome::Mapped(user) => user,
        };
        let action = policy_action(kind);
        let (mut facts, service) = match known {
            Some(k) => (k.facts, k.service),
            None => (IncidentFacts::new(incident.clone()), None),
        };
        let rule = self.policy.rule(action);
        // A member of one of the incident's own teams passes without further reads.
        if rule == Rule::TeamMember && !facts.teams.iter().any(|t| user.teams.contains(t)) {
            match self.teams_of(&facts, service.as_ref(), now).await {
                Ok(teams) => {
                    facts.escalation_policy_teams = teams.escalation_policy_teams;
                    facts.service_teams = teams.service_teams;
                }
                Err(err) => {
                    let reason = format!(
                        "pdbridge could not read the teams of incident {incident}'s escalation policy and service ({err})."
                    );
                    return ResolvedActor {
                        actor: Actor::Mapped {
                            slack: slack_user.clone(),
                            pd_user: user.pd_user.clone(),
                            email: user.email.clone(),
                            authorized: Err(Refusal {
                                reason: reason.clone(),
                                how_to_fix: "Try again in a minute.".to_owned(),
                            }),
                        },
                        pd_user: Some(user.pd_user),
                        verdict: Verdict::Refused,
                        decision: Verdict::Refused.audit(&reason),
                        unmapped: None,
                        lookup_failed: Some(err.to_string()),
                    };
                }
            }
        }
        if rule == Rule::Responder
            && let Some(ep) = facts.escalation_policy.clone()
        {
            match self.pd.list_oncalls(&ep).await {
                Ok(oncalls) => facts.on_call = oncalls.into_iter().map(|o| o.user.id).collect(),
                Err(err) => tracing::warn!(%err, "listing on-calls for the policy check failed"),
            }
        }
        let ctx = ActionContext {
            action,
            slack_team: team
                .or(home.as_ref())
                .cloned()
                .unwrap_or_else(|| self.workspace.clone()),
            channel: channel
                .cloned()
                .or_else(|| facts.card_channel.clone())
                .unwrap_or_else(|| ids::ChannelId::new("")),
        };
        let decision: Decision = Policy::new(self.policy.clone(), home).authorize(
            &ctx,
            &MappingOutcome::Mapped(user.clone()),
            &facts,
        );
        let authorized = if decision.allowed {
            Ok(())
        } else {
            let how_to_fix = if decision.check == Check::Role {
                "Ask a PagerDuty admin to change your role; pdbridge sees the change within a few minutes."
            } else {
                "Ask a pdbridge admin if you should be allowed to do this."
            };
            Err(Refusal {
                reason: decision.reason.clone(),
                how_to_fix: how_to_fix.to_owned(),
            })
        };
        let verdict = if decision.allowed {
            Verdict::Allowed
        } else {
            Verdict::Refused
        };
        ResolvedActor {
            actor: Actor::Mapped {
                slack: slack_user.clone(),
                pd_user: user.pd_user.clone(),
                email: user.email.clone(),
                authorized,
            },
            pd_user: Some(user.pd_user),
            verdict,
            decision: verdict.audit(&decision.reason),
            unmapped: None,
            lookup_failed: None,
        }
    }

    /// The teams of the incident's escalation policy and service: from the per-incident cache
    /// when fresh and about the same policy and service, else read from PagerDuty.
    async fn teams_of(
        &self,
        facts: &IncidentFacts,
        service: Option<&ServiceId>,
        now: Timestamp,
    ) -> Result<TeamFacts, LookupError> {
        let fresh = |t: &TeamFacts| {
            now.duration_since(t.fetched_at) < TEAM_FACTS_TTL
                && t.escalation_policy == facts.escalation_policy
                && t.service.as_ref() == service
        };
        if let Some(cached) = self.team_cache().get(&facts.id).filter(|t| fresh(t)) {
            return Ok(cached.clone());
        }
        let escalation_policy_teams = match &facts.escalation_policy {
            Some(ep) => self
                .pd
                .get_escalation_policy(ep)
                .await
                .map_err(|e| LookupError::EscalationPolicy(ep.clone(), e))?
                .teams
                .into_iter()
                .map(|t| t.id)
                .collect(),
            None => Vec::new(),
        };
        let service_teams = match service {
            Some(id) => self
                .pd
                .get_service(id)
                .await
                .map_err(|e| LookupError::Service(id.clone(), e))?
                .team_ids(),
            None => Vec::new(),
        };
        let teams = TeamFacts {
            escalation_policy: facts.escalation_policy.clone(),
            service: service.cloned(),
            escalation_policy_teams,
            service_teams,
            fetched_at: now,
        };
        let mut cache = self.team_cache();
        cache.retain(|_, t| now.duration_since(t.fetched_at) < TEAM_FACTS_TTL);
        cache.insert(facts.id.clone(), teams.clone());
        Ok(teams)
    }

    fn team_cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<IncidentId, TeamFacts>> {
        self.team_facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The Slack user of each of `users` that maps to one (PagerDuty email to Slack's
    /// `users.lookupByEmail`, or a pinned `[[identity]]` entry), for mentions on the card. The
    /// resolver caches answers (hits and misses) in the store; a user whose lookup fails is left
    /// out and named instead.
    pub async fn mentions(&self, users: &[PdUserId], now: Timestamp) -> crate::render::Mentions {
        let mut mentions = crate::render::Mentions::new();
        for user in users {
            match self.resolver().await.slack_user_for(user, now).await {
                Ok(Some(slack)) => {
                    mentions.insert(user.clone(), slack);
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(%err, %user, "no mention for an assignee"),
            }
        }
        mentions
    }

    /// Whether `slack_user`, writing from `team`, may read incident details (`/pd status`):
    /// `Err` says why not, in a text that names no incident detail.
    pub async fn may_view(
        &self,
        slack_user: &SlackUserId,
        team: &SlackTeamId,
        now: Timestamp,
    ) -> Result<(), ViewDenied> {
        let (r, home) = self
            .resolve(slack_user, Some(team), now)
            .await
            .map_err(ViewDenied::Lookup)?;
        Policy::new(self.policy.clone(), home)
            .authorize_view(team, &r.outcome)
            .map_err(ViewDenied::Refused)
    }

    /// The `/pd whoami` answer.
    pub async fn whoami(
        &self,
        slack_user: &SlackUserId,
        team: Option<&SlackTeamId>,
        now: Timestamp,
    ) -> String {
        match self.resolve(slack_user, team, now).await {
            Ok((r, _)) => match r.outcome {
                MappingOutcome::Mapped(user) => format!(
                    "<@{slack_user}> acts in PagerDuty as *{}* ({}, `{}`), mapped by {}.",
                    crate::render::escape(&user.name),
                    user.email,
                    user.pd_user,
                    match user.source {
                        identity::MappingSource::Override => "an [[identity]] override",
                        identity::MappingSource::VerifiedEmail => "your verified Slack email",
                    }
                ),
                MappingOutcome::Refused(refusal) => {
                    format!("<@{slack_user}> cannot act through pdbridge: {refusal}")
                }
            },
            Err(err) => format!("pdbridge could not look you up right now: {err}"),
        }
    }
}
