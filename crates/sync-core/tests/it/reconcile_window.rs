//! A card whose post failed permanently is still shown for an incident that resolved
//! meanwhile: [`IncidentState::needs_reconcile`] keeps such an incident in the reconciler's set
//! for [`IncidentState::RESOLVED_CARD_RETRY`] after it resolved, and no longer.

use crate::common::*;
use expect_test::expect;
use ids::{ChannelId, IncidentId};
use pretty_assertions::assert_eq;
use sync_core::{EngineSnapshot, IncidentState, Input, Outcome, Timestamp};

const RESOLVED_AT: &str = "2021-06-04T14:00:00.000Z";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn state(t: &Script) -> &IncidentState {
    t.engine.incident(&IncidentId::new("PQ1K5C8")).unwrap()
}

fn resolved() -> serde_json::Value {
    pq1k5c8(
        "incident.resolved",
        "resolved",
        "01BZYK8N47RESOLVED00000000",
        RESOLVED_AT,
    )
}

fn reconcile(t: &mut Script, label: &str) {
    let as_of = t.now;
    t.input(
        label,
        Input::Reconcile {
            snapshot: data_of(&resolved()),
            as_of,
            target_channel: Some(ChannelId::new("CBR2V3XEX")),
        },
    );
}

/// Fails the full card post `full` and the minimal one the engine posts next, as a channel the
/// bot cannot post in does.
fn fail_both(t: &mut Script, full: &str, minimal: &str) {
    for id in [full, minimal] {
        t.done(
            id,
            Outcome::Permanent {
                error: "channel_not_found".into(),
            },
        );
    }
}

/// Triggers PQ1K5C8, fails its card post permanently and resolves it 10 minutes later.
fn failed_then_resolved() -> Script {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd(
        "incident.triggered",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:50:00.000Z",
        ),
    );
    fail_both(&mut t, "card1", "card2");
    assert!(state(&t).needs_reconcile(t.now), "an open incident");
    t.advance(600_000).pd("incident.resolved", &resolved());
    assert!(state(&t).is_resolved());
    assert_eq!(state(&t).card_ts(), None);
    t
}

#[test]
fn a_resolved_incident_without_a_card_is_reconciled_within_the_window_only() {
    let mut t = failed_then_resolved();
    let resolved_at = ts(RESOLVED_AT);
    assert!(state(&t).needs_reconcile(t.now));
    t.advance(300_000);
    reconcile(&mut t, "reconciler reads PQ1K5C8, 5 min after it resolved");
    fail_both(&mut t, "card3", "card4");
    // Reads of the resolved incident move its data time but not the window.
    t.now = Timestamp::from_millis(resolved_at.as_millis() + DAY_MS - 1);
    assert!(state(&t).needs_reconcile(t.now));
    reconcile(
        &mut t,
        "reconciler reads PQ1K5C8, 1 ms before the window ends",
    );
    fail_both(&mut t, "card5", "card6");
    t.now = Timestamp::from_millis(resolved_at.as_millis() + DAY_MS);
    assert!(!state(&t).needs_reconcile(t.now));
    reconcile(&mut t, "reconciler reads PQ1K5C8 as the window ends");
    assert!(!state(&t).needs_reconcile(t.now));
    expect![[r#"
        > incident.triggered
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: Permanent { error: "channel_not_found" }
          PostCard PQ1K5C8/card2 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" (minimal)
          Dropped PQ1K5C8 Failed
        > done PQ1K5C8/card2: Permanent { error: "channel_not_found" }
          Dropped PQ1K5C8 Failed
        > incident.resolved
        > reconciler reads PQ1K5C8, 5 min after it resolved
          PostCard PQ1K5C8/card3 in CBR2V3XEX: "Test Incident" Resolved(no buttons) policy="Default"
        > done PQ1K5C8/card3: Permanent { error: "channel_not_found" }
          PostCard PQ1K5C8/card4 in CBR2V3XEX: "Test Incident" Resolved(no buttons) policy="Default" (minimal)
          Dropped PQ1K5C8 Failed
        > done PQ1K5C8/card4: Permanent { error: "channel_not_found" }
          Dropped PQ1K5C8 Failed
        > reconciler reads PQ1K5C8, 1 ms before the window ends
          PostCard PQ1K5C8/card5 in CBR2V3XEX: "Test Incident" Resolved(no buttons) policy="Default"
        > done PQ1K5C8/card5: Permanent { error: "channel_not_found" }
          PostCard PQ1K5C8/card6 in CBR2V3XEX: "Test Incident" Resolved(no buttons) policy="Default" (minimal)
          Dropped PQ1K5C8 Failed
        > done PQ1K5C8/card6: Permanent { error: "channel_not_found" }
          Dropped PQ1K5C8 Failed
        > reconciler reads PQ1K5C8 as the window ends
    "#]]
    .assert_eq(&t.log);
}

#[test]
fn a_reposted_card_ends_the_need() {
    let mut t = failed_then_resolved();
    t.advance(300_000);
    reconcile(&mut t, "reconciler reads PQ1K5C8");
    t.done(
        "card3",
        Outcome::Posted {
            ts: msg_ts("1548261231.000200"),
        },
    );
    assert!(!state(&t).needs_reconcile(t.now));
    assert!(state(&t).view().is_some_and(|card| card.resolved));
}

#[test]
fn a_resolved_incident_with_its_card_posted_needs_nothing() {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd("incident.resolved", &resolved());
    t.done(
        "card1",
        Outcome::Posted {
            ts: msg_ts("1548261231.000200"),
        },
    );
    assert!(!state(&t).needs_reconcile(t.now));
}

#[test]
fn a_state_saved_before_the_window_existed_counts_from_its_data_time() {
    let t = failed_then_resolved();
    let mut json = serde_json::to_value(t.engine.snapshot()).unwrap();
    for incident in json["incidents"].as_array_mut().unwrap() {
        incident.as_object_mut().unwrap().remove("resolved_since");
    }
    let snapshot: EngineSnapshot = serde_json::from_value(json).unwrap();
    let engine = sync_core::Engine::restore(config(), snapshot).unwrap();
    let st = engine.incident(&IncidentId::new("PQ1K5C8")).unwrap();
    let end = ts(RESOLVED_AT).as_millis() + DAY_MS;
    assert!(st.needs_reconcile(Timestamp::from_millis(end - 1)));
    assert!(!st.needs_reconcile(Timestamp::from_millis(end)));
    assert_eq!(
        IncidentState::RESOLVED_CARD_RETRY,
        std::time::Duration::from_millis(u64::try_from(DAY_MS).unwrap())
    );
}
