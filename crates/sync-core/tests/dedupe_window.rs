//! The in-memory deduplication window is bounded by `dedupe_capacity`: past it the oldest ids
//! are forgotten first, while the newest are still recognized.

mod common;

use common::{config, fixture, pd_event};
use sync_core::{DropReason, Effect, Engine, EngineConfig, Input, Timestamp};

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
