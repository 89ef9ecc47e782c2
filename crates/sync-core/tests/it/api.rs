//! Construction, configuration and the time model.

use std::time::Duration;

use pretty_assertions::assert_eq;
use sync_core::{
    DropReason, Effect, EffectId, Engine, EngineConfig, Error, Input, Outcome, Timestamp,
};

use crate::common::{config, fixture, msg_ts, pd_event};

#[test]
fn config_is_validated() {
    let empty = EngineConfig {
        retry_backoff: Vec::new(),
        ..EngineConfig::default()
    };
    assert!(matches!(Engine::new(empty), Err(Error::InvalidConfig(_))));
    let zero = EngineConfig {
        max_attempts: 0,
        ..EngineConfig::default()
    };
    assert!(matches!(Engine::new(zero), Err(Error::InvalidConfig(_))));
    let config = EngineConfig::default();
    assert_eq!(config.backoff(1), Duration::from_secs(1));
    assert_eq!(config.backoff(99), Duration::from_secs(600));
}

#[test]
fn time_is_clamped_monotonic() {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let _ = engine.handle(Timestamp::from_millis(5_000), Input::Tick);
    let effects = engine.handle(Timestamp::from_millis(1_000), Input::Tick);
    assert_eq!(engine.now(), Timestamp::from_millis(5_000));
    assert_eq!(
        effects,
        vec![Effect::Dropped {
            incident: None,
            reason: DropReason::NothingDue
        }]
    );
    assert_eq!(engine.poll_timeout(), None);
}

#[test]
fn timestamps_saturate() {
    let t = Timestamp::from_millis(i64::MAX - 1);
    assert_eq!(
        t.saturating_add(Duration::from_secs(1)).as_millis(),
        i64::MAX
    );
    let early = Timestamp::from_millis(10);
    assert_eq!(early.duration_since(t), Duration::ZERO);
    assert_eq!(
        t.duration_since(early),
        Duration::from_millis(u64::try_from(i64::MAX - 11).unwrap())
    );
}

#[test]
fn snapshots_round_trip_through_json() {
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let json = serde_json::to_string(&engine.snapshot()).unwrap();
    let restored = Engine::restore(
        EngineConfig::default(),
        serde_json::from_str(&json).unwrap(),
    );
    assert_eq!(restored.unwrap().snapshot(), engine.snapshot());
}

#[test]
fn inputs_effects_and_effect_ids_name_their_incident() {
    let triggered = fixture("incident.triggered.json");
    let mut ack = fixture("incident.acknowledged.json");
    ack["event"]["data"]["id"] = triggered["event"]["data"]["id"].clone();
    let event = pd_event(&triggered, Some("CBR2V3XEX"));
    let incident = event.incident.clone();
    let mut engine = Engine::new(config()).unwrap();
    let mut now = Timestamp::from_millis(1_622_815_000_000);
    let input = Input::PdEvent(event);
    assert_eq!(input.incident(), Some(incident.clone()));
    let effects = engine.handle(now, input);
    let post = effects
        .iter()
        .find_map(Effect::id)
        .expect("a card post")
        .clone();
    assert_eq!(post.incident(), Some(incident.clone()));
    let done = Input::EffectDone {
        id: post,
        outcome: Outcome::Posted {
            ts: msg_ts("1622815000.000100"),
        },
    };
    assert_eq!(done.incident(), Some(incident.clone()));
    let mut seen = effects;
    seen.extend(engine.handle(now, done));
    let ack = Input::PdEvent(pd_event(&ack, Some("CBR2V3XEX")));
    seen.extend(engine.handle(now, ack));
    // The acknowledgement's thread line goes out once the coalescing window has passed.
    while let Some((at, _)) = engine.poll_timeout() {
        now = now.max(at);
        seen.extend(engine.handle(now, Input::Tick));
    }
    assert!(seen.iter().any(|e| matches!(e, Effect::PostThread { .. })));
    for effect in &seen {
        assert_eq!(effect.incident(), Some(incident.clone()), "{effect:?}");
        if let Some(id) = effect.id() {
            assert_eq!(id.incident(), Some(incident.clone()), "{id:?}");
        }
    }
    assert_eq!(Input::Tick.incident(), None);
    assert_eq!(EffectId::from_stored("no-incident").incident(), None);
    let dropped = Effect::Dropped {
        incident: None,
        reason: DropReason::NothingDue,
    };
    assert_eq!(dropped.incident(), None);
}
