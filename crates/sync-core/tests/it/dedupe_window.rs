//! The in-memory deduplication windows are bounded by `dedupe_capacity` (webhook and event ids)
//! and `action_dedupe_capacity` (Slack action keys per incident): past them the oldest are
//! forgotten first, while the newest are still recognized.

use crate::common::{click, config, fixture, pd_event, unmapped};
use sync_core::{ActionKind, DropReason, Effect, Engine, EngineConfig, Input, Timestamp};

fn delivery(event_id: &str) -> Input {
    let mut v = fixture("incident.annotated.json");
    v["event"]["id"] = serde_json::json!(event_id);
    let mut event = pd_event(&v, Some("CBR2V3XEX"));
    event.webhook_id = None;
    Input::PdEvent(event)
}

fn is_duplicate(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            Effect::Dropped {
                reason: DropReason::Duplicate,
                ..
            }
        )
    })
}

#[test]
fn past_the_capacity_the_oldest_ids_are_forgotten_first() {
    let mut engine = Engine::new(EngineConfig {
        dedupe_capacity: 2,
        ..config()
    })
    .unwrap();
    let now = Timestamp::from_millis(1_000);
    for id in ["E1", "E2", "E3"] {
        assert!(!is_duplicate(&engine.handle(now, delivery(id))));
    }
    // E2 and E3 are remembered...
    assert!(is_duplicate(&engine.handle(now, delivery("E3"))));
    assert!(is_duplicate(&engine.handle(now, delivery("E2"))));
    // ...E1, the oldest, was forgotten to make room.
    assert!(!is_duplicate(&engine.handle(now, delivery("E1"))));
}

#[test]
fn past_the_action_capacity_the_oldest_keys_of_the_incident_are_forgotten_first() {
    let mut engine = Engine::new(EngineConfig {
        action_dedupe_capacity: 2,
        ..config()
    })
    .unwrap();
    // The incident must exist for its clicks to be remembered.
    let _ = engine.handle(Timestamp::from_millis(1_000), delivery("E1"));
    let incident = pd_event(&fixture("incident.annotated.json"), None).incident;
    let press = |engine: &mut Engine, at: i64, action_ts: &str| {
        let action = click(
            unmapped(),
            incident.as_str(),
            ActionKind::Acknowledge,
            action_ts,
        );
        is_duplicate(&engine.handle(Timestamp::from_millis(at), Input::SlackAction(action)))
    };
    for (at, key) in [
        (2_000, "1.000001"),
        (3_000, "1.000002"),
        (4_000, "1.000003"),
    ] {
        assert!(!press(&mut engine, at, key));
    }
    // The two newest keys are remembered...
    assert!(press(&mut engine, 5_000, "1.000003"));
    assert!(press(&mut engine, 5_000, "1.000002"));
    // ...the oldest was forgotten to make room.
    assert!(!press(&mut engine, 5_000, "1.000001"));
}

#[test]
fn a_change_key_seen_before_drops_the_event_whatever_its_id() {
    let mut engine = Engine::new(config()).unwrap();
    let now = Timestamp::from_millis(1_000);
    let keyed = |id: &str, key: Option<&str>| {
        let Input::PdEvent(mut event) = delivery(id) else {
            unreachable!("delivery is a PagerDuty event");
        };
        event.change_key = key.map(str::to_owned);
        Input::PdEvent(event)
    };
    // The webhook and the polled log entry of one change carry different ids.
    assert!(!is_duplicate(
        &engine.handle(now, keyed("WEBHOOK1", Some("note-1")))
    ));
    assert!(is_duplicate(
        &engine.handle(now, keyed("log_entry:Q1", Some("note-1")))
    ));
    // Another change, or one with no key, is not held back by it.
    assert!(!is_duplicate(
        &engine.handle(now, keyed("log_entry:Q2", Some("note-2")))
    ));
    assert!(!is_duplicate(&engine.handle(now, keyed("WEBHOOK3", None))));
}
