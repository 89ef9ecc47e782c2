//! The on-call cache: PagerDuty's `GET /oncalls` windows and when to read them again. Pure: every
//! time-dependent decision takes `now`, so tests walk through handoffs without waiting.
//!
//! One read lists every on-call period overlapping `[now - LOOKBACK, now + HORIZON]`. The cache
//! is read again [`REFRESH_EVERY`] and at each period boundary it knows of (a handoff, an
//! override starting or ending), and [`RETRY_EVERY`] while PagerDuty fails; the last good
//! answer stays in use meanwhile, with its age. Handoffs come from the windows themselves: at a
//! boundary of a schedule, who was on call just before differs from who is on call from then on.
//! Escalation policy, service and team details (names, escalation delays, teams) are read every
//! [`DETAILS_EVERY`], at most [`DETAILS_BATCH`] policies a minute, so a large account stays
//! within the request budget.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ids::{EscalationPolicyId, PdUserId, ScheduleId, ServiceId, TeamId, Timestamp};
use pd_client::rest::OnCall;
use pd_client::schedule::OnCallQuery;
use time::OffsetDateTime;

/// The longest the cache goes without a read.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The wait before reading again after a failed read.
pub const RETRY_EVERY: Duration = Duration::from_secs(15);
/// How far back a read reaches, so a handoff is still seen by a read shortly after it (a
/// restart, a slow read).
pub const LOOKBACK: Duration = Duration::from_secs(10 * 60);
/// How far ahead a read reaches (the "next" on-call of each level).
pub const HORIZON: Duration = Duration::from_secs(24 * 60 * 60);
/// How often policy, service and team details are read again.
pub const DETAILS_EVERY: Duration = Duration::from_secs(15 * 60);
/// The most escalation policies one details pass reads (passes are at least a minute apart).
pub const DETAILS_BATCH: usize = 10;

/// Why a read of the on-call windows failed (the client's error, as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailed(pub String);

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadFailed {}

/// A PagerDuty user as the on-call list names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Person {
    /// The PagerDuty user id.
    pub id: PdUserId,
    /// The name PagerDuty gave (the id when it gave none).
    pub name: String,
}

/// One on-call period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The escalation policy.
    pub policy: EscalationPolicyId,
    /// Its name.
    pub policy_name: String,
    /// The 1-based level.
    pub level: u32,
    /// Who is on call.
    pub person: Person,
    /// The schedule, unless the level targets the user directly.
    pub schedule: Option<ScheduleId>,
    /// The schedule's name.
    pub schedule_name: Option<String>,
    /// The start (`None`: permanent).
    pub start: Option<Timestamp>,
    /// The end (`None`: permanent).
    pub end: Option<Timestamp>,
}

fn stamp(t: OffsetDateTime) -> Timestamp {
    let millis = t.unix_timestamp_nanos() / 1_000_000;
    Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// A timestamp as the `time` crate's date-time (UTC).
pub fn date_time(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Shift {
    /// The cache's form of one `GET /oncalls` entry.
    pub fn from_wire(o: &OnCall) -> Self {
        Self {
            policy: o.escalation_policy.id.clone(),
            policy_name: o
                .escalation_policy
                .summary
                .clone()
                .unwrap_or_else(|| o.escalation_policy.id.to_string()),
            level: o.escalation_level.max(1),
            person: Person {
                id: o.user.id.clone(),
                name: o
                    .user
                    .summary
                    .clone()
                    .unwrap_or_else(|| o.user.id.to_string()),
            },
            schedule: o.schedule_id(),
            schedule_name: o.schedule.as_ref().and_then(|s| s.summary.clone()),
            start: o.start.map(stamp),
            end: o.end.map(stamp),
        }
    }

    /// Whether the period includes `t`.
    pub fn covers(&self, t: Timestamp) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// A handoff of one schedule: who was on call just before `at`, and who is from `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The schedule.
    pub schedule: ScheduleId,
    /// Its name.
    pub schedule_name: String,
    /// When it happens.
    pub at: Timestamp,
    /// Who hands over.
    pub outgoing: Vec<Person>,
    /// Who takes over.
    pub incoming: Vec<Person>,
}

impl Handoff {
    /// The key of its message: one per channel, schedule and time.
    pub fn key(&self, channel: &ids::ChannelId) -> String {
        format!(
            "handoff/{channel}/{}/{}",
            self.schedule,
            self.at.as_millis()
        )
    }
}

/// An escalation policy's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The name.
    pub name: String,
    /// Minutes before each level escalates to the next (level 1 first).
    pub delays: Vec<u32>,
    /// The policy's teams.
    pub teams: Vec<TeamId>,
}

/// A service's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The name.
    pub name: String,
    /// Its escalation policy.
    pub policy: Option<EscalationPolicyId>,
    /// Its teams.
    pub teams: Vec<TeamId>,
}

/// Details read besides the on-call list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Escalation policies.
    pub policies: BTreeMap<EscalationPolicyId, PolicyInfo>,
    /// Services.
    pub services: BTreeMap<ServiceId, ServiceInfo>,
    /// Team names.
    pub teams: BTreeMap<TeamId, String>,
}

/// The cache. Build with `Cache::default()`, ask [`Cache::refresh_due`], read with
/// [`Cache::query`], and hand the answer to [`Cache::record`].
#[derive(Debug, Clone, Default)]
pub struct Cache {
    shifts: Vec<Shift>,
    fetched_at: Option<Timestamp>,
    last_attempt: Option<Timestamp>,
    failure: Option<String>,
    details: Details,
    details_attempt: Option<Timestamp>,
    policy_read: BTreeMap<EscalationPolicyId, Timestamp>,
    services_read: Option<Timestamp>,
}

impl Cache {
    /// The read to make at `now`.
    pub fn query(now: Timestamp) -> OnCallQuery {
        OnCallQuery {
            since: Some(date_time(now.saturating_sub(LOOKBACK))),
            until: Some(date_time(now.saturating_add(HORIZON))),
            ..OnCallQuery::default()
        }
    }

    /// When the next read is due: at once before the first, [`RETRY_EVERY`] after a failure,
    /// else [`REFRESH_EVERY`] after the last read or at the first boundary after it, whichever
    /// comes first.
    pub fn next_refresh(&self) -> Timestamp {
        let Some(attempt) = self.last_attempt else {
            return Timestamp::EPOCH;
        };
        if self.failure.is_some() {
            return attempt.saturating_add(RETRY_EVERY);
        }
        let periodic = attempt.saturating_add(REFRESH_EVERY);
        match self.next_boundary_after(attempt) {
            Some(boundary) => boundary.min(periodic),
            None => periodic,
        }
    }

    /// Whether a read is due at `now`.
    pub fn refresh_due(&self, now: Timestamp) -> bool {
        now >= self.next_refresh()
    }

    /// The first period start or end after `t`.
    pub fn next_boundary_after(&self, t: Timestamp) -> Option<Timestamp> {
        self.shifts
            .iter()
            .flat_map(|s| [s.start, s.end])
            .flatten()
            .filter(|b| *b > t)
            .min()
    }

    /// Records a read made at `now`: the new windows, or why it failed (the old windows stay).
    pub fn record(&mut self, now: Timestamp, answer: Result<Vec<OnCall>, ReadFailed>) {
        self.last_attempt = Some(now);
        match answer {
            Ok(list) => {
                self.shifts = list.iter().map(Shift::from_wire).collect();
                self.fetched_at = Some(now);
                self.failure = None;
            }
            Err(why) => self.failure = Some(why.0),
        }
    }

    /// Whether a details pass is due: at most once a minute, when a policy the windows name
    /// has no details or details older than [`DETAILS_EVERY`], or the services' and teams'
    /// details are that old.
    pub fn details_due(&self, now: Timestamp) -> bool {
        match self.details_attempt {
            None => true,
            Some(at) if now < at.saturating_add(REFRESH_EVERY) => false,
            Some(_) => {
                self.services_due(now) || !self.policies_to_read(now, &BTreeSet::new()).is_empty()
            }
        }
    }

    /// Whether the services' and teams' details are due (every [`DETAILS_EVERY`]).
    pub fn services_due(&self, now: Timestamp) -> bool {
        self.services_read
            .is_none_or(|at| now >= at.saturating_add(DETAILS_EVERY))
    }

    /// The policies whose details to read in this pass, at most [`DETAILS_BATCH`]: those never
    /// read first (`first` among them before the rest), then the stalest.
    pub fn policies_to_read(
        &self,
        now: Timestamp,
        first: &BTreeSet<EscalationPolicyId>,
    ) -> Vec<EscalationPolicyId> {
        let mut wanted: Vec<(u8, Timestamp, EscalationPolicyId)> = self
            .policies_seen()
            .into_iter()
            .chain(first.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|p| match self.policy_read.get(&p) {
                None => Some((u8::from(!first.contains(&p)), Timestamp::EPOCH, p)),
                Some(at) if now >= at.saturating_add(DETAILS_EVERY) => Some((2, *at, p)),
                Some(_) => None,
            })
            .collect();
        wanted.sort();
        wanted
            .into_iter()
            .take(DETAILS_BATCH)
            .map(|(.., p)| p)
            .collect()
    }

    /// Records a details pass made at `now`: the policies asked for (read or not), and the
    /// services and teams when `with_services`.
    pub fn record_details(
        &mut self,
        now: Timestamp,
        asked: &[EscalationPolicyId],
        with_services: bool,
        details: Details,
    ) {
        self.details_attempt = Some(now);
        for p in asked {
            self.policy_read.insert(p.clone(), now);
        }
        if with_services {
            self.services_read = Some(now);
        }
        self.details.policies.extend(details.policies);
        self.details.services.extend(details.services);
        self.details.teams.extend(details.teams);
    }

    /// The details read so far.
    pub fn details(&self) -> &Details {
        &self.details
    }

    /// The escalation policies the windows name.
    pub fn policies_seen(&self) -> BTreeSet<EscalationPolicyId> {
        self.shifts.iter().map(|s| s.policy.clone()).collect()
    }

    /// When the windows in use were read.
    pub fn fetched_at(&self) -> Option<Timestamp> {
        self.fetched_at
    }

    /// Why the last read failed, while it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Every period in the cache.
    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }

    /// The periods that include `t`.
    pub fn at(&self, t: Timestamp) -> impl Iterator<Item = &Shift> {
        self.shifts.iter().filter(move |s| s.covers(t))
    }

    /// Who is on call at `now` for any of `schedules`, or for `policy` at one of `levels`,
    /// each person once, by id.
    pub fn on_call(
        &self,
        now: Timestamp,
        schedules: &[ScheduleId],
        policy: Option<&EscalationPolicyId>,
        levels: &[u32],
    ) -> Vec<Person> {
        let people: BTreeSet<Person> = self
            .at(now)
            .filter(|s| {
                s.schedule.as_ref().is_some_and(|id| schedules.contains(id))
                    || (policy == Some(&s.policy) && levels.contains(&s.level))
            })
            .map(|s| s.person.clone())
            .collect();
        people.into_iter().collect()
    }

    /// Every handoff the windows show, by schedule and time.
    pub fn handoffs(&self) -> Vec<Handoff> {
        let mut by_schedule: BTreeMap<&ScheduleId, Vec<&Shift>> = BTreeMap::new();
        for s in &self.shifts {
            if let Some(id) = &s.schedule {
                by_schedule.entry(id).or_default().push(s);
            }
        }
        let mut out = Vec::new();
        for (schedule, shifts) in by_schedule {
            let bounds: BTreeSet<Timestamp> = shifts
                .iter()
                .flat_map(|s| [s.start, s.end])
                .flatten()
                .collect();
            let who = |t: Timestamp| -> Vec<Person> {
                let set: BTreeSet<Person> = shifts
                    .iter()
                    .filter(|s| s.covers(t))
                    .map(|s| s.person.clone())
                    .collect();
                set.into_iter().collect()
            };
            for at in bounds {
                let outgoing = who(Timestamp::from_millis(at.as_millis() - 1));
                let incoming = who(at);
                if !outgoing.is_empty() && !incoming.is_empty() && outgoing != incoming {
                    let schedule_name = shifts
                        .iter()
                        .find_map(|s| s.schedule_name.clone())
                        .unwrap_or_else(|| schedule.to_string());
                    out.push(Handoff {
                        schedule: schedule.clone(),
                        schedule_name,
                        at,
                        outgoing,
                        incoming,
                    });
                }
            }
        }
        out
    }

    /// The handoffs of `schedules` that have happened by `now` and not longer than
    /// [`LOOKBACK`] ago: those to announce (the caller remembers which it announced).
    pub fn handoffs_due(&self, now: Timestamp, schedules: &[ScheduleId]) -> Vec<Handoff> {
        self.handoffs()
            .into_iter()
            .filter(|h| schedules.contains(&h.schedule))
            .filter(|h| h.at <= now && now.duration_since(h.at) < LOOKBACK)
            .collect()
    }
}

/// What `/pd oncall` shows for one escalation level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelView {
    /// The 1-based level.
    pub level: u32,
    /// Who is on call now and until when (`None`: permanent).
    pub now: Vec<(Person, Option<Timestamp>)>,
    /// Who comes next and when they start, within the horizon.
    pub next: Option<(Vec<Person>, Timestamp)>,
    /// Minutes before an incident escalates past this level, when known.
    pub delay_minutes: Option<u32>,
}

/// What `/pd oncall` shows for one escalation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// The policy.
    pub policy: EscalationPolicyId,
    /// Its name.
    pub name: String,
    /// Its levels, level 1 first.
    pub levels: Vec<LevelView>,
}

impl Cache {
    /// The view of `policy` at `now`.
    pub fn policy_view(&self, policy: &EscalationPolicyId, now: Timestamp) -> PolicyView {
        let info = self.details.policies.get(policy);
        let shifts: Vec<&Shift> = self.shifts.iter().filter(|s| &s.policy == policy).collect();
        let name = info
            .map(|i| i.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| shifts.first().map(|s| s.policy_name.clone()))
            .unwrap_or_else(|| policy.to_string());
        let top = shifts
            .iter()
            .map(|s| s.level)
            .chain(info.map(|i| u32::try_from(i.delays.len()).unwrap_or(0)))
            .max()
            .unwrap_or(0);
        let levels = (1..=top)
            .map(|level| {
                let here: Vec<&&Shift> = shifts.iter().filter(|s| s.level == level).collect();
                let mut current: Vec<(Person, Option<Timestamp>)> = Vec::new();
                for s in here.iter().filter(|s| s.covers(now)) {
                    if !current.iter().any(|(p, _)| p == &s.person) {
                        current.push((s.person.clone(), s.end));
                    }
                }
                let next_start = here
                    .iter()
                    .filter_map(|s| s.start)
                    .filter(|start| *start > now)
                    .min();
                let next = next_start.map(|at| {
                    let people: BTreeSet<Person> = here
                        .iter()
                        .filter(|s| s.start == Some(at))
                        .map(|s| s.person.clone())
                        .collect();
                    (people.into_iter().collect(), at)
                });
                LevelView {
                    level,
                    now: current,
                    next,
                    delay_minutes: info.and_then(|i| i.delays.get(level as usize - 1)).copied(),
                }
            })
            .collect();
        PolicyView {
            policy: policy.clone(),
            name,
            levels,
        }
    }
}
