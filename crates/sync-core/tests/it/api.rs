//! Construction, configuration and the time model.

use std::time::Duration;

use pretty_assertions::assert_eq;
use sync_core::{DropReason, Effect, Engine, EngineConfig, Error, Input, Timestamp};

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
