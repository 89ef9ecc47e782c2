//! The pure on-call cache: refresh times, handoffs from the windows, views, and the PagerDuty
//! request budget, all on simulated time.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use ids::{EscalationPolicyId, PdUserId, ScheduleId, Timestamp};
use pd_client::rest::{OnCall, Reference};
use pdbridge::oncall::cache::{
    Cache, DETAILS_BATCH, DETAILS_EVERY, Details, PolicyInfo, REFRESH_EVERY, RETRY_EVERY,
    ReadFailed, date_time,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2026-12-07 09:00 UTC.
const T0: i64 = 1_796_634_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn oncall(
    policy: &str,
    level: u32,
    user: &str,
    schedule: Option<&str>,
    span: Option<(i64, i64)>,
) -> OnCall {
    let mut user_ref = Reference::new(PdUserId::new(user), "user_reference");
    user_ref.summary = Some(format!("Name of {user}"));
    let mut policy_ref = Reference::new(
        EscalationPolicyId::new(policy),
        "escalation_policy_reference",
    );
    policy_ref.summary = Some(format!("Policy {policy}"));
    OnCall {
        user: user_ref,
        schedule: schedule.map(|s| {
            let mut r = Reference::new(s.to_owned(), "schedule_reference");
            r.summary = Some(format!("Schedule {s}"));
            r
        }),
        escalation_policy: policy_ref,
        escalation_level: level,
        start: span.map(|(s, _)| date_time(at(s))),
        end: span.map(|(_, e)| date_time(at(e))),
    }
}

/// Ann (0–8 h), Ben (8–16 h), Ann (16–24 h) on `PSCHED01` at level 1; Cat always at level 2.
fn rota() -> Vec<OnCall> {
    vec![
        oncall("PEP1", 1, "PANN", Some("PSCHED01"), Some((0, 8 * HOUR))),
        oncall(
            "PEP1",
            1,
            "PBEN",
            Some("PSCHED01"),
            Some((8 * HOUR, 16 * HOUR)),
        ),
        oncall(
            "PEP1",
            1,
            "PANN",
            Some("PSCHED01"),
            Some((16 * HOUR, 24 * HOUR)),
        ),
        oncall("PEP1", 2, "PCAT", None, None),
    ]
}

#[test]
fn the_first_read_is_due_at_once_then_every_minute_and_at_each_boundary() {
    let mut cache = Cache::default();
    assert!(cache.refresh_due(at(0)));
    cache.record(at(2 * HOUR), Ok(rota()));
    assert_eq!(cache.next_refresh(), at(2 * HOUR + MIN), "every minute");
    assert!(!cache.refresh_due(at(2 * HOUR + MIN - 1)));
    cache.record(at(8 * HOUR - 30_000), Ok(rota()));
    assert_eq!(
        cache.next_refresh(),
        at(8 * HOUR),
        "the handoff comes first"
    );
    assert_eq!(REFRESH_EVERY, Duration::from_secs(60));
}

#[test]
fn a_failed_read_keeps_the_old_windows_and_retries_sooner() {
    let mut cache = Cache::default();
    cache.record(at(0), Ok(rota()));
    cache.record(
        at(4 * MIN),
        Err(ReadFailed("PagerDuty answered 503".to_owned())),
    );
    assert_eq!(cache.fetched_at(), Some(at(0)));
    assert_eq!(cache.failure(), Some("PagerDuty answered 503"));
    assert_eq!(cache.shifts().len(), 4);
    assert_eq!(
        cache.next_refresh(),
        Timestamp::from_millis(at(4 * MIN).as_millis() + RETRY_EVERY.as_millis() as i64)
    );
    cache.record(at(5 * MIN), Ok(rota()));
    assert_eq!(cache.failure(), None);
}

#[test]
fn handoffs_come_from_the_windows_and_are_due_once_they_happen() {
    let mut cache = Cache::default();
    cache.record(at(2 * HOUR), Ok(rota()));
    let handoffs = cache.handoffs();
    let times: Vec<Timestamp> = handoffs.iter().map(|h| h.at).collect();
    assert_eq!(times, vec![at(8 * HOUR), at(16 * HOUR)]);
    assert_eq!(handoffs[0].outgoing[0].id, PdUserId::new("PANN"));
    assert_eq!(handoffs[0].incoming[0].id, PdUserId::new("PBEN"));
    assert_eq!(handoffs[0].schedule_name, "Schedule PSCHED01");
    let schedules = [ScheduleId::new("PSCHED01")];
    assert!(cache.handoffs_due(at(8 * HOUR - 1), &schedules).is_empty());
    assert_eq!(cache.handoffs_due(at(8 * HOUR + 1), &schedules).len(), 1);
    assert!(
        cache
            .handoffs_due(at(8 * HOUR + 30 * MIN), &schedules)
            .is_empty(),
        "too old to announce"
    );
    assert!(
        cache
            .handoffs_due(at(8 * HOUR + 1), &[ScheduleId::new("POTHER")])
            .is_empty()
    );
}

#[test]
fn an_override_inside_a_turn_is_two_handoffs() {
    let mut cache = Cache::default();
    let mut windows = vec![
        oncall("PEP1", 1, "PANN", Some("PSCHED01"), Some((0, 3 * HOUR))),
        oncall(
            "PEP1",
            1,
            "PCAT",
            Some("PSCHED01"),
            Some((3 * HOUR, 4 * HOUR)),
        ),
        oncall(
            "PEP1",
            1,
            "PANN",
            Some("PSCHED01"),
            Some((4 * HOUR, 8 * HOUR)),
        ),
    ];
    windows.push(oncall(
        "PEP2",
        1,
        "PANN",
        Some("PSCHED01"),
        Some((0, 3 * HOUR)),
    ));
    cache.record(at(HOUR), Ok(windows));
    let h = cache.handoffs();
    assert_eq!(
        h.len(),
        2,
        "the schedule's periods count once, whatever policies use it"
    );
    assert_eq!(h[0].incoming[0].id, PdUserId::new("PCAT"));
    let group = cache.on_call(at(3 * HOUR + 1), &[ScheduleId::new("PSCHED01")], None, &[1]);
    assert_eq!(group.len(), 1);
    assert_eq!(group[0].id, PdUserId::new("PCAT"));
}

#[test]
fn the_policy_view_shows_now_next_and_the_escalation_delay() {
    let mut cache = Cache::default();
    cache.record(at(2 * HOUR), Ok(rota()));
    let mut details = Details::default();
    details.policies.insert(
        EscalationPolicyId::new("PEP1"),
        PolicyInfo {
            name: "Payments".to_owned(),
            delays: vec![15, 30],
            teams: Vec::new(),
        },
    );
    let asked = [EscalationPolicyId::new("PEP1")];
    cache.record_details(at(2 * HOUR), &asked, true, details);
    let view = cache.policy_view(&EscalationPolicyId::new("PEP1"), at(2 * HOUR));
    assert_eq!(view.name, "Payments");
    assert_eq!(view.levels.len(), 2);
    let l1 = &view.levels[0];
    assert_eq!(l1.now[0].0.id, PdUserId::new("PANN"));
    assert_eq!(l1.now[0].1, Some(at(8 * HOUR)));
    let (next, start) = l1.next.clone().unwrap();
    assert_eq!(
        (next[0].id.clone(), start),
        (PdUserId::new("PBEN"), at(8 * HOUR))
    );
    assert_eq!(l1.delay_minutes, Some(15));
    assert_eq!(view.levels[1].now[0].1, None, "permanent");
}

/// 20 schedules with 8-hour turns, staggered by 7 minutes, each on its own policy: over two
/// simulated hours, no minute costs more than 5% of PagerDuty's 960 requests per minute (48),
/// counting `GET /oncalls` pages (100 entries each) and every details read.
#[test]
fn twenty_schedules_stay_under_five_percent_of_the_request_budget() {
    let windows = |now: Timestamp| -> Vec<OnCall> {
        let mut out = Vec::new();
        for i in 0..20i64 {
            let offset = i * 7 * MIN;
            let first =
                ((now.as_millis() - T0 - offset - 10 * MIN).div_euclid(8 * HOUR)) * 8 * HOUR
                    + offset;
            let mut start = first;
            while T0 + start < now.as_millis() + 24 * HOUR {
                let user = if (start - offset).div_euclid(8 * HOUR) % 2 == 0 {
                    "PA"
                } else {
                    "PB"
                };
                out.push(oncall(
                    &format!("PEP{i:02}"),
                    1,
                    &format!("{user}{i:02}"),
                    Some(&format!("PS{i:02}")),
                    Some((start, start + 8 * HOUR)),
                ));
                start += 8 * HOUR;
            }
        }
        out
    };
    let mut cache = Cache::default();
    let mut sent: VecDeque<Timestamp> = VecDeque::new();
    let mut worst = 0;
    let mut total = 0;
    for second in 0..(2 * 3600) {
        let now = at(i64::from(second) * 1000);
        let mut requests = 0;
        if cache.refresh_due(now) {
            let list = windows(now);
            requests += list.len().div_ceil(100).max(1);
            cache.record(now, Ok(list));
        }
        if cache.details_due(now) {
            let asked = cache.policies_to_read(now, &BTreeSet::new());
            assert!(asked.len() <= DETAILS_BATCH);
            requests += asked.len();
            let mut details = Details::default();
            for p in &asked {
                details.policies.insert(p.clone(), PolicyInfo::default());
            }
            cache.record_details(now, &asked, cache.services_due(now), details);
        }
        for _ in 0..requests {
            sent.push_back(now);
        }
        total += requests;
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            sent.pop_front();
        }
        worst = worst.max(sent.len());
    }
    assert!(worst < 48, "{worst} requests in one minute");
    let per_minute = total as f64 / 120.0;
    assert!(
        per_minute < 48.0 * 0.25,
        "{per_minute:.1} requests per minute on average"
    );
    assert_eq!(DETAILS_EVERY, Duration::from_secs(900));
    assert!(
        worst <= 1 + DETAILS_BATCH + 1,
        "a minute holds at most a read, a batch and a boundary read"
    );
    println!("on-call cache: {total} requests in 2 h, at most {worst} in one minute");
}

#[test]
fn details_are_read_ten_policies_a_minute_those_that_matter_first_then_every_quarter_hour() {
    let mut cache = Cache::default();
    let many: Vec<OnCall> = (0..25)
        .map(|i| oncall(&format!("PEP{i:02}"), 1, "PANN", None, None))
        .collect();
    cache.record(at(0), Ok(many));
    let first: BTreeSet<EscalationPolicyId> = [EscalationPolicyId::new("PEP24")].into();
    assert!(cache.details_due(at(0)));
    let batch = cache.policies_to_read(at(0), &first);
    assert_eq!(batch.len(), DETAILS_BATCH);
    assert_eq!(
        batch[0],
        EscalationPolicyId::new("PEP24"),
        "a configured policy first"
    );
    cache.record_details(at(0), &batch, true, Details::default());
    assert!(!cache.details_due(at(30_000)), "at most one pass a minute");
    assert!(cache.details_due(at(MIN)), "15 policies still unread");
    for minute in 1..=2 {
        let batch = cache.policies_to_read(at(minute * MIN), &first);
        cache.record_details(at(minute * MIN), &batch, false, Details::default());
    }
    assert!(!cache.details_due(at(3 * MIN)), "all read, none stale");
    assert!(
        cache.details_due(at(16 * MIN)),
        "stale after a quarter hour"
    );
}
