//! The writer thread: engine inputs are committed in groups off the async workers, the engine
//! mutex is never held while SQLite works, each caller is answered after its own commit, and a
//! failing input fails alone.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ids::{ChannelId, EventId, IncidentId, MessageTs};
use pdbridge::app::{Options, build};
use pdbridge::bridge::Bridge;
use sync_core::{
    Effect, EngineConfig, IncidentEventType, IncidentSnapshot, Input, Outcome, PdEvent,
    PdEventKind, Status, Timestamp,
};

async fn bridge(dir: &tempfile::TempDir) -> Arc<Bridge> {
    let config = common::offline_config(dir, &["w"]);
    build(Arc::new(config), &Options::default())
        .await
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_stays_readable_while_a_commit_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = bridge(&dir).await;
    let slow = {
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            bridge
                .apply(Input::Tick, |_, _| {
                    // Stands in for a slow disk: the transaction takes 600 ms.
                    std::thread::sleep(Duration::from_millis(600));
                    Ok(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let count = bridge.with_engine(|e| e.incidents().count());
    assert_eq!(count, 0);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "reading the engine waited {:?} for a commit",
        started.elapsed()
    );
    slow.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_inputs_commit_together_and_a_failing_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = bridge(&dir).await;
    // Keep the writer busy so the next inputs queue up and form one group.
    let busy = {
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            bridge
                .apply(Input::Tick, |_, _| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let bridge = Arc::clone(&bridge);
        tasks.push(tokio::spawn(async move {
            bridge
                .apply(Input::Tick, move |tx, now| {
                    if n == 3 {
                        // This input's bookkeeping fails (as completing an unknown row would).
                        return Err(store::Error::UnknownEffect(store::EffectId::new("none")));
                    }
                    tx.put_identity(&store::IdentityEntry {
                        key: store::IdentityKey::new(format!("writer-test-{n}")),
                        entry: serde_json::json!({ "n": n }),
                        expires_at: now.saturating_add(Duration::from_secs(60)),
                        updated_at: now,
                    })
                })
                .await
        }));
    }
    busy.await.unwrap().unwrap();
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        assert_eq!(result.is_ok(), n != 3, "input {n}: {result:?}");
    }
    // Every successful input's bookkeeping is on disk once its caller was answered.
    let store = store::Store::open(dir.path().join("db.sqlite")).unwrap();
    for n in 0..8 {
        let key = store::IdentityKey::new(format!("writer-test-{n}"));
        let row = store
            .read(|tx| tx.identity_including_expired(&key))
            .unwrap();
        assert_eq!(row.is_some(), n != 3, "input {n}");
    }
    assert!(
        bridge.commit_groups() < 9,
        "the queued inputs shared transactions ({} groups)",
        bridge.commit_groups()
    );
}

/// Hands every awaited Slack effect in `effects` (and in what their outcomes emit) a success,
/// completing its outbox row as the dispatcher would.
async fn succeed_all(bridge: &Bridge, mut effects: Vec<Effect>) {
    while let Some(effect) = effects.pop() {
        let outcome = match &effect {
            Effect::PostCard { .. } => Outcome::Posted {
                ts: MessageTs::new("1700000000.000100"),
            },
            Effect::UpdateCard { .. } | Effect::PostThread { .. } => Outcome::Done,
            _ => continue,
        };
        let id = effect.id().unwrap().clone();
        let row = store::EffectId::new(id.as_str());
        let more = bridge
            .apply(Input::EffectDone { id, outcome }, move |tx, now| {
                tx.complete(&row, now)
            })
            .await
            .unwrap();
        effects.extend(more);
    }
}

/// Whether the bridge turns quiet within a few seconds (a caller is answered just before the
/// writer lets go of its job).
async fn quiet_soon(bridge: &Bridge, horizon: Duration) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bridge.is_quiet(horizon) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The demo's `settle` once returned with a thread line neither posted nor waiting: a tick had
/// turned the thread's flush timer into a post in the engine, and the writer had not committed
/// that post to the outbox yet, so the engine showed no timer and the store no effect. A
/// bridge is quiet only when the two are read as one moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_the_writer_has_not_committed_is_not_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::offline_config(&dir, &["w"]);
    let options = Options {
        engine: EngineConfig {
            coalesce_window: Duration::ZERO,
            ..EngineConfig::default()
        },
        ..Options::default()
    };
    let bridge = build(Arc::new(config), &options).await.unwrap().1;
    let horizon = Duration::from_secs(5);
    let incident = IncidentId::new("PQUIET1");
    let event = |n: u32, kind: PdEventKind| {
        Input::PdEvent(PdEvent {
            event_id: EventId::new(format!("E{n}")),
            webhook_id: None,
            change_key: None,
            occurred_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(n)),
            incident: incident.clone(),
            incident_title: None,
            agent: None,
            kind,
            target_channel: Some(ChannelId::new("C1")),
        })
    };
    let data = IncidentSnapshot {
        id: incident.clone(),
        number: Some(1),
        title: "Disk full".to_owned(),
        html_url: None,
        status: Status::Triggered,
        urgency: None,
        priority: None,
        service: None,
        teams: Vec::new(),
        escalation_policy: None,
        assignees: Vec::new(),
        as_of: None,
    };
    let trigger = PdEventKind::Incident {
        event_type: IncidentEventType::Triggered,
        data,
    };
    let posted = bridge
        .apply(event(1, trigger), |_, _| Ok(()))
        .await
        .unwrap();
    succeed_all(&bridge, posted).await;
    assert!(
        quiet_soon(&bridge, horizon).await,
        "the card is posted and nothing is due"
    );

    // A note from PagerDuty: one thread line, its flush due at once.
    let note = PdEventKind::Annotated {
        note: None,
        content: "checking the disk".to_owned(),
    };
    bridge.apply(event(2, note), |_, _| Ok(())).await.unwrap();
    assert!(!bridge.is_quiet(horizon), "the flush is due");

    // The tick that flushes it stays between the engine and its commit until released.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let tick = {
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            bridge
                .apply(Input::Tick, move |_, _| {
                    let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(30));
                    Ok(())
                })
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while bridge.next_timer().is_some() {
        assert!(
            Instant::now() < deadline,
            "the writer never handled the tick"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The post is in neither the engine's timers nor the committed outbox yet.
    let now = bridge.now();
    let depth = bridge
        .store()
        .read(|tx| tx.outbox_stats(now))
        .unwrap()
        .depth;
    assert_eq!(depth, 0);
    assert!(
        !bridge.is_quiet(horizon),
        "quiet while the thread post was not committed"
    );

    release.send(()).unwrap();
    let flushed = tick.await.unwrap().unwrap();
    assert!(
        flushed
            .iter()
            .any(|e| matches!(e, Effect::PostThread { .. })),
        "{flushed:?}"
    );
    assert!(!bridge.is_quiet(horizon), "the post waits in the outbox");
    succeed_all(&bridge, flushed).await;
    assert!(quiet_soon(&bridge, horizon).await, "the line is posted");
}
