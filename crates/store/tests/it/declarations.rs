//! Declarations: stored once per `incident_key`, due until finished, finished once.

use ids::{SlackUserId, Timestamp};
use serde_json::json;
use store::{DeclarationStatus, Json, NewDeclaration, Store};

const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

fn declare(store: &Store, key: &str, at: Timestamp) -> bool {
    let payload = Json::encode(&json!({"title": key})).unwrap();
    let user = SlackUserId::new("U0ALICE");
    store
        .write(|tx| {
            tx.insert_declaration(&NewDeclaration {
                incident_key: key,
                slack_user: &user,
                payload: &payload,
                received_at: at,
            })
        })
        .unwrap()
        .is_inserted()
}

#[test]
fn a_key_is_stored_once_and_due_until_finished() {
    let store = Store::open_in_memory().unwrap();
    assert!(declare(&store, "k1", T0));
    assert!(!declare(&store, "k1", T0), "a double submit stores one row");
    assert!(declare(
        &store,
        "k2",
        T0.saturating_add(std::time::Duration::from_secs(1))
    ));
    let due = store.write(|tx| tx.due_declarations(T0, 10)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].incident_key, "k1");
    assert_eq!(
        due[0].payload.decode::<serde_json::Value>().unwrap()["title"],
        "k1"
    );

    let later = T0.saturating_add(std::time::Duration::from_secs(30));
    store.write(|tx| tx.retry_declaration("k1", later)).unwrap();
    let due = store
        .write(|tx| tx.due_declarations(T0.saturating_add(std::time::Duration::from_secs(2)), 10))
        .unwrap();
    assert_eq!(
        due.iter()
            .map(|d| d.incident_key.as_str())
            .collect::<Vec<_>>(),
        ["k2"]
    );
    assert_eq!(
        store.write(|tx| tx.next_declaration_due()).unwrap(),
        Some(T0.saturating_add(std::time::Duration::from_secs(1)))
    );

    store
        .write(|tx| tx.finish_declaration("k2", DeclarationStatus::Created, "Q1", later))
        .unwrap();
    store
        .write(|tx| tx.finish_declaration("k2", DeclarationStatus::Refused, "late", later))
        .unwrap();
    let k2 = store.write(|tx| tx.declaration("k2")).unwrap().unwrap();
    assert_eq!(k2.status, DeclarationStatus::Created, "finished once");
    assert_eq!(k2.result.as_deref(), Some("Q1"));
    let k1 = store.write(|tx| tx.declaration("k1")).unwrap().unwrap();
    assert_eq!(
        (k1.status, k1.attempts, k1.due_at),
        (DeclarationStatus::Pending, 1, later)
    );
    assert_eq!(
        store.write(|tx| tx.next_declaration_due()).unwrap(),
        Some(later)
    );
}

#[test]
fn finished_declarations_are_pruned_after_the_retention_and_pending_ones_never() {
    let store = Store::open_in_memory().unwrap();
    assert!(declare(&store, "done", T0));
    assert!(declare(&store, "pending", T0));
    store
        .write(|tx| tx.finish_declaration("done", DeclarationStatus::Created, "Q1", T0))
        .unwrap();
    let later = T0.saturating_add(std::time::Duration::from_secs(8 * 24 * 3600));
    assert_eq!(
        store
            .read(|tx| tx.status(later, 5))
            .unwrap()
            .pending_declarations,
        1
    );
    let report = store.write(|tx| tx.prune(later)).unwrap();
    assert_eq!(report.declarations, 1);
    assert!(store.read(|tx| tx.declaration("done")).unwrap().is_none());
    assert!(
        store
            .read(|tx| tx.declaration("pending"))
            .unwrap()
            .is_some()
    );
}
