//! The writer thread: engine inputs are committed in groups off the async workers, the engine
//! mutex is never held while SQLite works, each caller is answered after its own commit, and a
//! failing input fails alone.
// Tests wait for servers with wall-clock deadlines and timestamp signed requests.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pdbridge::app::{Options, build};
use pdbridge::bridge::Bridge;
use sync_core::Input;

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
                        expires_at: now + 60_000,
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
