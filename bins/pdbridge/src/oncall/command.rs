//! `/pd oncall [<service|team|schedule name> | @user] [public]`, answered from the cache within
//! Slack's 3 seconds: the policy check and the asker's time zone each get a bounded wait, and a
//! cache that PagerDuty stopped refreshing answers with its age.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use identity::{MappingOutcome, Policy};
use ids::{EscalationPolicyId, SlackUserId, Timestamp};
use serde_json::{Value, json};
use slack_client::interaction::SlashCommand;

use super::cache::{Cache, Details, HORIZON};
use super::render::{self, Tz};
use crate::bridge::Bridge;
use crate::render::escape;

/// How long the policy check may take before the asker is told to ask again.
const CHECK_INLINE: Duration = Duration::from_millis(1200);
/// How long the asker's time zone may take before UTC is used.
const TZ_INLINE: Duration = Duration::from_millis(600);
/// How long the very first ask waits for the first read of the on-call windows.
const FIRST_READ: Duration = Duration::from_millis(1000);
/// The whole answer's budget, inside Slack's 3 s: every wait is cut to what is left of it.
const BUDGET: Duration = Duration::from_millis(2500);
/// How long an asker's time zone is kept.
const TZ_TTL: Duration = Duration::from_secs(3600);
/// The most escalation policies one answer shows.
const MAX_POLICIES: usize = 10;

/// Why `/pd oncall` is not answered for the asker. Its `Display` is the answer to show.
#[derive(Debug)]
enum AskDenied {
    /// The `oncall` policy refuses them.
    Refused(identity::AskRefusal),
    /// They could not be looked up.
    Lookup(crate::identity::LookupError),
    /// The lookup ended without an answer.
    LookupLost,
    /// The lookup takes longer than the command may wait; it goes on, and its answer is cached.
    Pending,
}

impl std::fmt::Display for AskDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskDenied::Refused(refusal) => refusal.fmt(f),
            AskDenied::Lookup(err) => write!(f, "pdbridge could not look you up right now: {err}"),
            AskDenied::LookupLost => f.write_str("pdbridge could not look you up right now."),
            AskDenied::Pending => {
                f.write_str("Looking you up in Slack; run the command again in a few seconds.")
            }
        }
    }
}

/// What the asker named.
enum Subject {
    /// Nothing: the channel's routes, else everything configured.
    Default,
    /// A service, team, schedule or escalation policy name.
    Name(String),
    /// A Slack user (`<@U…>`).
    User(SlackUserId),
}

fn parse(words: &[&str]) -> (Subject, bool) {
    let public = words.iter().any(|w| w.eq_ignore_ascii_case("public"));
    let rest: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !w.eq_ignore_ascii_case("public"))
        .collect();
    let mention = rest.first().and_then(|w| {
        let inner = w.strip_prefix("<@")?.strip_suffix('>')?;
        let id = inner.split('|').next()?;
        (!id.is_empty()).then(|| SlackUserId::new(id))
    });
    let subject = match mention {
        Some(user) => Subject::User(user),
        None if rest.is_empty() => Subject::Default,
        None => Subject::Name(rest.join(" ")),
    };
    (subject, public)
}

impl Bridge {
    /// The `/pd oncall` answer as Slack's command response JSON.
    pub(crate) async fn oncall_command(&self, cmd: &SlashCommand, words: &[&str]) -> Value {
        let deadline = crate::clock::tokio_instant() + BUDGET;
        let (subject, public) = parse(words);
        self.ctx.oncall.wanted();
        let ephemeral = |text: String| json!({"response_type": "ephemeral", "text": text});
        let (allowed, tz) = tokio::join!(self.may_ask_oncall(cmd), self.asker_tz(&cmd.user_id));
        if let Err(refusal) = allowed {
            return ephemeral(refusal.to_string());
        }
        self.first_read(deadline).await;
        let now = self.ctx.oncall.now(&self.ctx.clock);
        let (cache, mentions) = {
            let shared = self.ctx.oncall.lock();
            (shared.cache.clone(), super::mentions(&shared))
        };
        let Some(fetched) = cache.fetched_at() else {
            return ephemeral(match cache.failure() {
                Some(_) => "PagerDuty is not answering and pdbridge has no earlier answer; try \
                            again in a minute."
                    .to_owned(),
                None => {
                    "Reading PagerDuty's on-call schedules; ask again in a few seconds.".to_owned()
                }
            });
        };
        let mut lines = Vec::new();
        if cache.failure().is_some() {
            lines.push(render::stale(now.duration_since(fetched)));
        }
        match subject {
            Subject::User(user) => {
                lines.push(self.user_answer(&cache, &user, now, &tz, deadline).await);
            }
            Subject::Default => {
                let policies = self.default_policies(&cache, cmd);
                lines.extend(policy_blocks(&cache, &policies, now, &tz, &mentions));
            }
            Subject::Name(name) => match find(&cache, &name) {
                Some(policies) => {
                    lines.extend(policy_blocks(&cache, &policies, now, &tz, &mentions));
                }
                None => lines.push(format!(
                    "No service, team, schedule or escalation policy named “{}” has anyone on \
                     call that pdbridge can see.",
                    escape(&name)
                )),
            },
        }
        let text = lines.join("\n");
        if public {
            json!({"response_type": "in_channel", "text": text})
        } else {
            ephemeral(text)
        }
    }

    /// The `oncall` policy check, bounded by [`CHECK_INLINE`] (the lookup finishes and is
    /// cached in the background when slower).
    async fn may_ask_oncall(&self, cmd: &SlashCommand) -> Result<(), AskDenied> {
        let identity = Arc::clone(&self.ctx.identity);
        let (user, team, now) = (cmd.user_id.clone(), cmd.team_id.clone(), self.now());
        let lookup = tokio::spawn(async move {
            let (resolution, home) = identity
                .resolve(&user, Some(&team), now)
                .await
                .map_err(AskDenied::Lookup)?;
            Policy::new(identity.policy.clone(), home)
                .authorize_oncall(&team, &resolution.outcome)
                .map_err(AskDenied::Refused)
        });
        match tokio::time::timeout(CHECK_INLINE, lookup).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(AskDenied::LookupLost),
            Err(_) => Err(AskDenied::Pending),
        }
    }

    /// The asker's time zone: cached, else `users.info` within [`TZ_INLINE`], else UTC.
    async fn asker_tz(&self, user: &SlackUserId) -> Tz {
        let now = self.ctx.oncall.now(&self.ctx.clock);
        if let Some((name, offset, at)) = self.ctx.oncall.lock().tz.get(user).cloned()
            && now.duration_since(at) < TZ_TTL
        {
            return Tz { name, offset };
        }
        let slack = self.ctx.slack.clone();
        let who = user.clone();
        let lookup = tokio::spawn(async move { slack.user_info(&who).await });
        match tokio::time::timeout(TZ_INLINE, lookup).await {
            Ok(Ok(Ok(info))) => {
                let tz = Tz {
                    name: info.tz.unwrap_or_else(|| "UTC".to_owned()),
                    offset: info.tz_offset.unwrap_or(0),
                };
                self.ctx
                    .oncall
                    .lock()
                    .tz
                    .insert(user.clone(), (tz.name.clone(), tz.offset, now));
                tz
            }
            _ => Tz::utc(),
        }
    }

    /// Before the first read has answered, waits up to [`FIRST_READ`] (and `budget`) for it.
    async fn first_read(&self, budget: tokio::time::Instant) {
        let deadline = (crate::clock::tokio_instant() + FIRST_READ).min(budget);
        loop {
            {
                let shared = self.ctx.oncall.lock();
                if shared.cache.fetched_at().is_some() || shared.cache.failure().is_some() {
                    return;
                }
            }
            if crate::clock::tokio_instant() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The policies of the channel's routes' services and teams; else of everything
    /// configured (routes, groups, handoffs); else every policy on call.
    fn default_policies(&self, cache: &Cache, cmd: &SlashCommand) -> Vec<EscalationPolicyId> {
        let config = &self.ctx.config;
        let details = cache.details();
        let here: Vec<_> = config
            .routes
            .iter()
            .filter(|r| r.channel == cmd.channel_id)
            .collect();
        let from_routes = |routes: &[&crate::config::Route]| -> BTreeSet<EscalationPolicyId> {
            let mut out = BTreeSet::new();
            for r in routes {
                for s in &r.services {
                    if let Some(p) = details.services.get(s).and_then(|s| s.policy.clone()) {
                        out.insert(p);
                    }
                }
                out.extend(policies_of_teams(details, &r.teams));
            }
            out
        };
        let chosen = from_routes(&here);
        if !chosen.is_empty() {
            return chosen.into_iter().collect();
        }
        let all_routes: Vec<_> = config.routes.iter().collect();
        let mut configured = from_routes(&all_routes);
        for g in &config.oncall_groups {
            configured.extend(g.escalation_policy.clone());
            configured.extend(policies_of_schedules(cache, &g.schedules));
        }
        for h in &config.handoffs {
            configured.extend(policies_of_schedules(cache, &h.schedules));
        }
        if configured.is_empty() {
            configured = cache.policies_seen();
        }
        configured.into_iter().collect()
    }

    /// `/pd oncall @user`: on call now and until when, or when next.
    async fn user_answer(
        &self,
        cache: &Cache,
        user: &SlackUserId,
        now: Timestamp,
        tz: &Tz,
        deadline: tokio::time::Instant,
    ) -> String {
        let identity = Arc::clone(&self.ctx.identity);
        let who = user.clone();
        let lookup = tokio::spawn(async move { identity.resolve(&who, None, now).await });
        let pd_user = match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(Ok((r, _)))) => match r.outcome {
                MappingOutcome::Mapped(m) => m.pd_user,
                MappingOutcome::Refused(refusal) => {
                    return format!("<@{user}> has no PagerDuty user pdbridge knows of: {refusal}");
                }
            },
            _ => return format!("pdbridge could not look up <@{user}> in time; ask again."),
        };
        let mine: Vec<_> = cache
            .shifts()
            .iter()
            .filter(|s| s.person.id == pd_user)
            .collect();
        let mut lines = Vec::new();
        for s in mine.iter().filter(|s| s.covers(now)) {
            let until = match s.end {
                Some(end) => format!("until {}", render::when(end, now, tz)),
                None => "always".to_owned(),
            };
            lines.push(format!(
                "<@{user}> is on call now for *{}*, level {}, {until}.",
                escape(&s.policy_name),
                s.level
            ));
        }
        let next = mine
            .iter()
            .filter(|s| s.start.is_some_and(|t| t > now))
            .min_by_key(|s| s.start);
        if let Some(s) = next
            && let Some(start) = s.start
        {
            lines.push(format!(
                "<@{user}> is next on call for *{}*, level {}, from {}.",
                escape(&s.policy_name),
                s.level,
                render::when(start, now, tz)
            ));
        }
        if lines.is_empty() {
            lines.push(format!(
                "<@{user}> is not on call now nor within the next {} hours.",
                HORIZON.as_secs() / 3600
            ));
        }
        lines.join("\n")
    }
}

fn policies_of_teams(details: &Details, teams: &[ids::TeamId]) -> BTreeSet<EscalationPolicyId> {
    details
        .policies
        .iter()
        .filter(|(_, p)| p.teams.iter().any(|t| teams.contains(t)))
        .map(|(id, _)| id.clone())
        .collect()
}

fn policies_of_schedules(
    cache: &Cache,
    schedules: &[ids::ScheduleId],
) -> BTreeSet<EscalationPolicyId> {
    cache
        .shifts()
        .iter()
        .filter(|s| s.schedule.as_ref().is_some_and(|id| schedules.contains(id)))
        .map(|s| s.policy.clone())
        .collect()
}

/// The policies a name stands for: a service's, a team's, a schedule's, or a policy itself
/// (case-insensitive, whole name); `None` when nothing has that name.
fn find(cache: &Cache, name: &str) -> Option<Vec<EscalationPolicyId>> {
    let same = |a: &str| a.trim().eq_ignore_ascii_case(name.trim());
    let details = cache.details();
    let mut out = BTreeSet::new();
    for s in details.services.values().filter(|s| same(&s.name)) {
        out.extend(s.policy.clone());
    }
    let teams: Vec<_> = details
        .teams
        .iter()
        .filter(|(_, n)| same(n))
        .map(|(id, _)| id.clone())
        .collect();
    out.extend(policies_of_teams(details, &teams));
    for s in cache.shifts() {
        if s.schedule_name.as_deref().is_some_and(same) || same(&s.policy_name) {
            out.insert(s.policy.clone());
        }
    }
    for (id, p) in &details.policies {
        if same(&p.name) {
            out.insert(id.clone());
        }
    }
    (!out.is_empty()).then(|| out.into_iter().collect())
}

fn policy_blocks(
    cache: &Cache,
    policies: &[EscalationPolicyId],
    now: Timestamp,
    tz: &Tz,
    mentions: &crate::render::Mentions,
) -> Vec<String> {
    if policies.is_empty() {
        return vec!["Nobody is on call for anything pdbridge is configured for.".to_owned()];
    }
    let mut out: Vec<String> = policies
        .iter()
        .take(MAX_POLICIES)
        .map(|p| render::policy(&cache.policy_view(p, now), now, tz, mentions))
        .collect();
    if policies.len() > MAX_POLICIES {
        out.push(format!(
            "…and {} more; name a service, team or schedule: `/pd oncall <name>`.",
            policies.len() - MAX_POLICIES
        ));
    }
    out
}
