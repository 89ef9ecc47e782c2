//! WAL upkeep and the read connection: a checkpoint truncates the WAL, and a read never waits
//! for (nor sees) an open write transaction. No timing is asserted.

use std::sync::Arc;

use ids::{EventId, WebhookId};
use store::{NewWebhook, Store};

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
                received_at: 2,
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
fn with_manual_checkpoints_a_passive_checkpoint_on_another_thread_keeps_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = Arc::new(Store::open(&path).unwrap());
    store.manual_checkpoints().unwrap();
    // 2,000 rows of 2 KiB: well past SQLite's automatic threshold of 1,000 pages, which no
    // longer applies.
    for _ in 0..4 {
        insert(&store, 500);
    }
    let wal = dir.path().join("db.sqlite-wal");
    let before = std::fs::metadata(&wal).unwrap().len();
    assert!(
        before > 4 * 1024 * 1024,
        "the WAL kept every frame: {before}"
    );
    let checkpointer = Arc::clone(&store);
    let report = std::thread::spawn(move || checkpointer.checkpoint_passive().unwrap())
        .join()
        .unwrap();
    assert!(!report.busy, "{report:?}");
    assert_eq!(report.checkpointed, report.wal_frames);
    // The next write starts the WAL over, so it stops growing.
    insert(&store, 1);
    let after = std::fs::metadata(&wal).unwrap().len();
    assert!(after <= before, "{after} > {before}");
    assert_eq!(
        store.read(|tx| tx.webhook_count()).unwrap(),
        2001,
        "nothing was lost"
    );
}

/// Inserts `n` more 2 KiB rows with fresh ids.
fn insert(store: &Store, n: usize) {
    let start = store.read(|tx| tx.webhook_count()).unwrap() as usize;
    let payload = "x".repeat(2048);
    store
        .write(|tx| {
            for i in start..start + n {
                let event_id = EventId::new(format!("M{i}"));
                tx.insert_webhook(&NewWebhook {
                    webhook_id: None,
                    event_id: &event_id,
                    event_type: "incident.triggered",
                    incident_id: None,
                    payload: &payload,
                    received_at: 1,
                })?;
            }
            Ok::<_, store::Error>(())
        })
        .unwrap();
}
