//! WAL upkeep and the read connection: a checkpoint truncates the WAL, deferred checkpoints run
//! only when the caller asks (on a connection and thread of their own), and a read never waits
//! for (nor sees) an open write transaction.
//! No timing is asserted.

use std::sync::Arc;

use ids::{EventId, IncidentId, Timestamp, WebhookId};
use store::{NewWebhook, Store, StoreOptions};

fn insert(store: &Store, n: usize) {
    insert_from(store, 0, n);
}

fn insert_from(store: &Store, first: usize, n: usize) {
    let payload = "x".repeat(2048);
    store
        .write(|tx| {
            for i in first..first + n {
                let (webhook_id, event_id) = (
                    WebhookId::new(format!("W{i}")),
                    EventId::new(format!("E{i}")),
                );
                tx.insert_webhook(&NewWebhook {
                    webhook_id: Some(&webhook_id),
                    event_id: &event_id,
                    event_type: "incident.triggered",
                    incident_id: Some(&IncidentId::new("P1")),
                    payload: &payload,
                    received_at: Timestamp::from_millis(1),
                })?;
            }
            Ok::<_, store::Error>(())
        })
        .unwrap();
}

#[test]
fn a_checkpoint_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = Store::open(&path).unwrap();
    insert(&store, 500);
    let wal = dir.path().join("db.sqlite-wal");
    let report = store.checkpoint().unwrap();
    assert!(!report.busy, "{report:?}");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    // Everything is still there, read through the read connection.
    let rows = store.read(|tx| tx.unprocessed_webhooks(1000)).unwrap();
    assert_eq!(rows.len(), 500);
}

#[test]
fn a_read_neither_waits_for_nor_sees_an_open_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("db.sqlite")).unwrap());
    insert(&store, 1);
    let seen = store
        .write(|tx| {
            let (webhook_id, event_id) = (WebhookId::new("W-open"), EventId::new("E-open"));
            tx.insert_webhook(&NewWebhook {
                webhook_id: Some(&webhook_id),
                event_id: &event_id,
                event_type: "incident.triggered",
                incident_id: None,
                payload: "{}",
                received_at: Timestamp::from_millis(2),
            })?;
            // While this transaction is open, another thread reads.
            let reader = Arc::clone(&store);
            let seen = std::thread::spawn(move || {
                reader.read(|tx| tx.unprocessed_webhooks(10)).unwrap().len()
            })
            .join()
            .unwrap();
            Ok::<_, store::Error>(seen)
        })
        .unwrap();
    assert_eq!(seen, 1, "the read sees only committed rows");
    assert_eq!(
        store.read(|tx| tx.unprocessed_webhooks(10)).unwrap().len(),
        2
    );
}

#[test]
fn an_in_memory_path_reads_what_it_wrote() {
    let store = Store::open(":memory:").unwrap();
    insert(&store, 3);
    assert_eq!(
        store.read(|tx| tx.unprocessed_webhooks(10)).unwrap().len(),
        3
    );
}

#[test]
fn with_deferred_checkpoints_commits_leave_the_wal_to_a_checkpointer() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        deferred_checkpoints: true,
        ..StoreOptions::default()
    };
    let store = Store::open_with(dir.path().join("db.sqlite"), &options).unwrap();
    let checkpointer = store.checkpointer().unwrap().expect("a file database");
    // One small commit: well under 64 pages, so nothing is due.
    insert_from(&store, 0, 1);
    assert!(!store.checkpoint_due());
    // 200 rows of 2 KiB: past 64 pages, and the commit itself did not checkpoint.
    insert_from(&store, 1, 200);
    assert!(store.checkpoint_due());
    // Asked once: not due again until 64 more pages.
    assert!(!store.checkpoint_due());
    insert_from(&store, 1000, 1);
    assert!(!store.checkpoint_due());
    // The checkpointer runs on a thread of its own, as pdbridge's writer hands it over.
    let report = std::thread::spawn(move || checkpointer.checkpoint().unwrap())
        .join()
        .unwrap();
    assert!(!report.busy, "{report:?}");
    assert!(report.wal_frames >= 64, "{report:?}");
    assert_eq!(report.checkpointed, report.wal_frames, "{report:?}");
    // The next commit restarts the WAL from its beginning: nothing is due.
    insert_from(&store, 201, 1);
    assert!(!store.checkpoint_due());
    assert_eq!(
        store
            .read(|tx| tx.unprocessed_webhooks(1000))
            .unwrap()
            .len(),
        203
    );
}

#[test]
fn a_wal_past_256_pages_is_checkpointed_by_the_writer_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        deferred_checkpoints: true,
        ..StoreOptions::default()
    };
    let store = Store::open_with(dir.path().join("db.sqlite"), &options).unwrap();
    insert_from(&store, 0, 10);
    assert_eq!(store.checkpoint_if_behind().unwrap(), None);
    // 600 rows of 2 KiB: past 256 pages, which no commit checkpointed.
    insert_from(&store, 10, 600);
    let report = store
        .checkpoint_if_behind()
        .unwrap()
        .expect("the WAL is behind");
    assert!(!report.busy, "{report:?}");
    assert!(report.wal_frames >= 256, "{report:?}");
    assert_eq!(report.checkpointed, report.wal_frames, "{report:?}");
    // Every frame was copied, so the next commit writes from the WAL's beginning.
    insert_from(&store, 610, 1);
    assert_eq!(store.checkpoint_if_behind().unwrap(), None);
    let report = store.checkpoint_passive().unwrap();
    assert!(report.wal_frames < 64, "{report:?}");
}

#[test]
fn a_checkpointer_runs_while_the_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        deferred_checkpoints: true,
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open_with(dir.path().join("db.sqlite"), &options).unwrap());
    let checkpointer = store.checkpointer().unwrap().expect("a file database");
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for batch in 0..50 {
                insert_from(&store, batch * 20, 20);
            }
        })
    };
    let mut checkpointed = 0;
    while !writer.is_finished() {
        checkpointed += checkpointer.checkpoint().unwrap().checkpointed.max(0);
    }
    writer.join().unwrap();
    checkpointed += checkpointer.checkpoint().unwrap().checkpointed.max(0);
    assert!(checkpointed > 0);
    assert_eq!(
        store
            .read(|tx| tx.unprocessed_webhooks(2000))
            .unwrap()
            .len(),
        1000
    );
    assert!(
        Store::open_in_memory()
            .unwrap()
            .checkpointer()
            .unwrap()
            .is_none()
    );
}

#[test]
fn without_deferred_checkpoints_the_commit_checkpoints_and_none_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.sqlite")).unwrap();
    insert_from(&store, 0, 200);
    assert!(!store.checkpoint_due());
}
