//! Two events of one incident in the same millisecond apply in arrival order (PagerDuty
//! delivers an incident's events in the order they were generated): an acknowledge and a resolve
//! that share a timestamp end resolved, not stuck on the acknowledge.

use crate::common::{config, fixture, pd_event};
use sync_core::{Engine, Input, Status, Timestamp};

#[test]
fn an_acknowledge_and_a_resolve_in_the_same_millisecond_end_resolved() {
    let at = "2021-06-04T13:55:30.394Z";
    let mut ack = fixture("incident.acknowledged.json");
    ack["event"]["occurred_at"] = serde_json::json!(at);
    let mut resolved = fixture("incident.resolved.json");
    resolved["event"]["occurred_at"] = serde_json::json!(at);
    resolved["event"]["data"]["id"] = ack["event"]["data"]["id"].clone();
    let incident = pd_event(&ack, Some("CBR2V3XEX")).incident;

    let mut engine = Engine::new(config()).unwrap();
    let now = Timestamp::from_millis(1_622_815_000_000);
    let _ = engine.handle(now, Input::PdEvent(pd_event(&ack, Some("CBR2V3XEX"))));
    let _ = engine.handle(now, Input::PdEvent(pd_event(&resolved, Some("CBR2V3XEX"))));
    let status = engine
        .incident(&incident)
        .and_then(|s| s.snapshot())
        .map(|s| s.status);
    assert_eq!(status, Some(Status::Resolved));
}
