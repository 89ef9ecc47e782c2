//! WAL upkeep and the read connection: a checkpoint truncates the WAL, and a read never waits
//! for (nor sees) an open write transaction. No timing is asserted.

use std::sync::Arc;

use ids::{EventId, IncidentId, WebhookId};
use store::{NewWebhook, Store};

fn insert(store: &Store, n: usize) {
    let payload = "x".repeat(2048);
    store
        .write(|tx| {
            for i in 0..n {
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
                    received_at: 1,
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
