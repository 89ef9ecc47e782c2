//! `GET /oncalls` (every filter) and `GET /schedules` against the fake PagerDuty's rotations.

use std::time::Duration;

use fakes::pd::FakePagerDuty;
use ids::{EscalationPolicyId, PdUserId, ScheduleId};
use pd_client::schedule::{OnCallQuery, ScheduleList};
use pd_client::{Auth, Config, Error, PdClient, Secret};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-07 09:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

struct Rota {
    fake: FakePagerDuty,
    pd: PdClient,
    ann: PdUserId,
    ben: PdUserId,
    cat: PdUserId,
    ep: EscalationPolicyId,
    sched: ScheduleId,
}

/// Ann and Ben take 8-hour turns from `T0` at level 1 of `PEP0001`; Cat is level 2 directly.
async fn rota() -> Rota {
    let fake = FakePagerDuty::start().await;
    let ann = fake.add_user("PANN001", "Ann", "ann@example.com");
    let ben = fake.add_user("PBEN001", "Ben", "ben@example.com");
    let cat = fake.add_user("PCAT001", "Cat", "cat@example.com");
    let ep = fake.add_escalation_policy("PEP0001", "Payments", vec![vec![], vec![cat.clone()]]);
    let sched = fake.add_schedule(
        "PSCHED01",
        "Payments Primary",
        &[ann.clone(), ben.clone()],
        T0,
        8 * HOUR,
    );
    fake.add_schedule_target(&ep, 1, &sched);
    fake.set_oncall_now(T0 + 2 * HOUR);
    let mut config = Config::new(Auth::Token(Secret::new("test-token")));
    config.base_url = fake.url().parse().unwrap();
    let pd = PdClient::new(config).unwrap();
    Rota {
        fake,
        pd,
        ann,
        ben,
        cat,
        ep,
        sched,
    }
}

fn summary(oncalls: &[pd_client::rest::OnCall]) -> Vec<(u32, String, Option<String>)> {
    oncalls
        .iter()
        .map(|o| {
            (
                o.escalation_level,
                o.user.id.to_string(),
                o.start.map(|s| s.time().to_string()),
            )
        })
        .collect()
}

#[tokio::test]
async fn oncalls_now_list_the_rotation_and_the_permanent_level() {
    let r = rota().await;
    let now = r.pd.oncalls(&OnCallQuery::default()).await.unwrap().items;
    assert_eq!(
        summary(&now),
        vec![
            (1, "PANN001".to_owned(), Some("9:00:00.0".to_owned())),
            (2, "PCAT001".to_owned(), None),
        ]
    );
    assert_eq!(now[0].schedule_id(), Some(r.sched.clone()));
    assert_eq!(now[0].end, Some(T0 + 8 * HOUR));
    assert_eq!(now[1].schedule_id(), None);
}

#[tokio::test]
async fn a_range_lists_every_overlapping_turn_and_the_query_carries_each_filter() {
    let r = rota().await;
    let query = OnCallQuery {
        since: Some(T0 + 2 * HOUR),
        until: Some(T0 + 20 * HOUR),
        schedule_ids: vec![r.sched.clone()],
        escalation_policy_ids: vec![r.ep.clone()],
        ..OnCallQuery::default()
    };
    let turns = r.pd.oncalls(&query).await.unwrap().items;
    let users: Vec<&PdUserId> = turns.iter().map(|o| &o.user.id).collect();
    assert_eq!(users, vec![&r.ann, &r.ben, &r.ann]);
    assert_eq!(turns[1].start, Some(T0 + 8 * HOUR));
    let sent = r.fake.requests().pop().unwrap().query.unwrap();
    for key in [
        "since=",
        "until=",
        "schedule_ids%5B%5D=PSCHED01",
        "escalation_policy_ids%5B%5D=PEP0001",
    ] {
        assert!(sent.contains(key), "{key} missing from {sent}");
    }
}

#[tokio::test]
async fn earliest_keeps_one_turn_per_policy_level_and_user() {
    let r = rota().await;
    let query = OnCallQuery {
        since: Some(T0),
        until: Some(T0 + 48 * HOUR),
        earliest: true,
        user_ids: vec![r.ben.clone()],
        ..OnCallQuery::default()
    };
    let next = r.pd.oncalls(&query).await.unwrap().items;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].start, Some(T0 + 8 * HOUR), "Ben's next turn");
}

#[tokio::test]
async fn an_override_replaces_the_rotation_for_its_window() {
    let r = rota().await;
    r.fake
        .add_override(&r.sched, &r.cat, T0 + HOUR, T0 + 3 * HOUR);
    let now = r.pd.oncalls(&OnCallQuery::default()).await.unwrap().items;
    assert_eq!(now[0].user.id, r.cat);
    assert_eq!(
        (now[0].start, now[0].end),
        (Some(T0 + HOUR), Some(T0 + 3 * HOUR))
    );
    r.fake.set_oncall_now(T0 + 3 * HOUR);
    let later = r.pd.oncalls(&OnCallQuery::default()).await.unwrap().items;
    assert_eq!(later[0].user.id, r.ann, "back to the rotation");
    assert_eq!(later[0].start, Some(T0 + 3 * HOUR));
}

#[tokio::test]
async fn many_turns_are_paginated() {
    let r = rota().await;
    let short = r.fake.add_schedule(
        "PSHORT1",
        "Hourly",
        &[r.ann.clone(), r.ben.clone()],
        T0,
        HOUR,
    );
    r.fake.add_schedule_target(&r.ep, 1, &short);
    let query = OnCallQuery {
        since: Some(T0),
        until: Some(T0 + 150 * HOUR),
        schedule_ids: vec![short],
        ..OnCallQuery::default()
    };
    let listing = r.pd.oncalls(&query).await.unwrap();
    assert_eq!(listing.items.len(), 150);
    let pages = r
        .fake
        .requests()
        .iter()
        .filter(|q| q.path == "/oncalls")
        .count();
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn bad_ranges_are_refused() {
    let r = rota().await;
    let backwards = OnCallQuery {
        since: Some(T0 + HOUR),
        until: Some(T0),
        ..OnCallQuery::default()
    };
    assert!(matches!(
        r.pd.oncalls(&backwards).await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(r.fake.requests().is_empty(), "refused before sending");
    let too_long = OnCallQuery {
        since: Some(T0),
        until: Some(T0 + 91 * 24 * HOUR),
        ..OnCallQuery::default()
    };
    let err = r.pd.oncalls(&too_long).await.unwrap_err();
    assert!(err.to_string().contains("90 days"), "{err}");
}

#[tokio::test]
async fn schedules_are_listed_and_filtered_by_name() {
    let r = rota().await;
    let all = r.pd.list_schedules(None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "Payments Primary");
    assert_eq!(all[0].escalation_policies[0].id, r.ep);
    assert_eq!(all[0].users.len(), 2);
    assert!(
        r.pd.list_schedules(Some("nothing"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r.pd.list_schedules(Some("payments")).await.unwrap().len(),
        1
    );
}

#[test]
fn the_documented_schedule_list_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pagerduty/schedules.list.openapi-example.json"
    ))
    .unwrap();
    let list: ScheduleList = serde_json::from_str(&text).unwrap();
    let s = &list.schedules[0];
    assert_eq!(s.id, ScheduleId::new("PI7DH85"));
    assert_eq!(s.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(s.escalation_policies[0].id.as_str(), "PT20YPA");
    assert_eq!(s.users[0].id.as_str(), "PEYSGVF");
}
