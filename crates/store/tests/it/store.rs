//! Behaviour of every store method, on temporary files and in memory.

use std::time::Duration;

use ids::{ChannelId, EventId, IncidentId, MessageTs, PdUserId, SlackUserId, Timestamp, WebhookId};
use serde_json::json;
use store::{
    ActionRow, AuditEntry, DedupeKey, Durability, EffectId, Error, IdentityEntry, IdentityKey,
    IncidentRecord, InsertOutcome, Json, NewAction, NewEffect, NewUnparsedWebhook, NewWebhook,
    OrderKey, RateKey, SEVEN_DAYS, Store, StoreOptions, Tx,
};

const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);

/// `ms` milliseconds after `T0`.
fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

/// `n` milliseconds.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pdbridge.db");
    (dir, path)
}

fn webhook<'a>(
    webhook_id: Option<&'a WebhookId>,
    event_id: &'a EventId,
    incident: Option<&'a IncidentId>,
    at: Timestamp,
) -> NewWebhook<'a> {
    NewWebhook {
        webhook_id,
        event_id,
        event_type: "incident.triggered",
        incident_id: incident,
        payload: r#"{"event":{"id":"E"}}"#,
        received_at: at,
    }
}

fn insert_webhook(store: &Store, wh: Option<&str>, ev: &str, at: Timestamp) -> InsertOutcome {
    let wh = wh.map(WebhookId::new);
    let ev = EventId::new(ev);
    store
        .write(|tx| tx.insert_webhook(&webhook(wh.as_ref(), &ev, None, at)))
        .unwrap()
}

fn enqueue(store: &Store, id: &str, key: &str, due_at: Timestamp) -> InsertOutcome {
    enqueue_rate(store, id, key, "slack", due_at)
}

fn enqueue_rate(
    store: &Store,
    id: &str,
    key: &str,
    rate: &str,
    due_at: Timestamp,
) -> InsertOutcome {
    let (id, key, rate) = (EffectId::new(id), OrderKey::new(key), RateKey::new(rate));
    let payload = Json::encode(&json!({ "effect": id.as_str() })).unwrap();
    store
        .write(|tx| {
            tx.enqueue(&NewEffect {
                id: &id,
                order_key: &key,
                rate_key: &rate,
                payload: &payload,
                due_at,
                created_at: due_at,
            })
        })
        .unwrap()
}

fn claim(store: &Store, now: Timestamp) -> Vec<String> {
    store
        .write(|tx| tx.claim_due(now, 100))
        .unwrap()
        .into_iter()
        .map(|r| r.id.as_str().to_owned())
        .collect()
}

fn incident(id: &str, channel: Option<&str>, ts: Option<&str>, resolved: bool) -> IncidentRecord {
    IncidentRecord {
        incident_id: IncidentId::new(id),
        channel: channel.map(ChannelId::new),
        card_ts: ts.map(MessageTs::new),
        resolved,
        state: Json::encode(
            &json!({ "id": id, "status": if resolved { "resolved" } else { "triggered" } }),
        )
        .unwrap(),
        updated_at: T0,
    }
}

// ---- opening and migrations ----

#[test]
fn opening_twice_is_idempotent_and_uses_wal() {
    let (_dir, path) = temp_db();
    let first = Store::open(&path).unwrap();
    assert_eq!(first.schema_version().unwrap(), 7);
    insert_webhook(&first, Some("W1"), "E1", T0);
    drop(first);
    let second = Store::open(&path).unwrap();
    assert_eq!(second.schema_version().unwrap(), 7);
    assert_eq!(
        second.read(|tx| tx.unprocessed_webhooks(10)).unwrap().len(),
        1
    );
    drop(second);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_version_is_refused() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, 7));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn options_are_accepted_and_full_durability_opens() {
    let (_dir, path) = temp_db();
    let options = StoreOptions {
        durability: Durability::Full,
        busy_timeout: Duration::from_millis(100),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&path, &options).unwrap();
    assert!(insert_webhook(&store, None, "E1", T0).is_inserted());
    assert_eq!(
        StoreOptions::default().retention,
        Duration::from_secs(7 * 24 * 3600)
    );
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

// ---- transactions ----

#[test]
fn a_failed_write_closure_commits_nothing() {
    let store = Store::open_in_memory().unwrap();
    let (wh, ev, inc) = (
        WebhookId::new("W1"),
        EventId::new("E1"),
        IncidentId::new("P1"),
    );
    let result: Result<(), Error> = store.write(|tx| {
        tx.insert_webhook(&webhook(Some(&wh), &ev, Some(&inc), T0))?;
        tx.put_incident(&incident("P1", Some("C1"), None, false))?;
        tx.enqueue(&NewEffect {
            id: &EffectId::new("post:P1"),
            order_key: &OrderKey::from(&inc),
            rate_key: &RateKey::new("slack"),
            payload: &Json::encode(&json!({})).unwrap(),
            due_at: T0,
            created_at: T0,
        })?;
        Err(Error::UnknownEffect(EffectId::new("abort")))
    });
    assert!(result.is_err());
    store
        .read(|tx| {
            assert!(tx.unprocessed_webhooks(10)?.is_empty());
            assert!(tx.incident(&inc)?.is_none());
            assert!(tx.pending_effects(10)?.is_empty());
            Ok::<_, Error>(())
        })
        .unwrap();
    // The same input commits on a second, successful attempt.
    assert!(insert_webhook(&store, Some("W1"), "E1", T0).is_inserted());
}

#[test]
fn a_panicking_write_closure_commits_nothing_and_the_store_stays_usable() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), Error> = store.write(|tx| {
            tx.put_incident(&incident("P1", None, None, false))?;
            panic!("engine bug");
        });
    }));
    assert!(outcome.is_err());
    assert!(store.read(|tx| tx.incidents()).unwrap().is_empty());
    store
        .write(|tx| tx.put_incident(&incident("P2", None, None, false)))
        .unwrap();
    assert_eq!(store.read(|tx| tx.incidents()).unwrap().len(), 1);
}

#[test]
fn write_accepts_the_callers_error_type() {
    #[derive(Debug)]
    enum AppError {
        Store,
        Rejected,
    }
    impl From<Error> for AppError {
        fn from(_: Error) -> Self {
            AppError::Store
        }
    }
    let store = Store::open_in_memory().unwrap();
    let result: Result<(), AppError> = store.write(|tx: &mut Tx<'_>| {
        tx.put_incident(&incident("P1", None, None, false))?;
        Err(AppError::Rejected)
    });
    assert!(matches!(result, Err(AppError::Rejected)));
    assert!(store.read(|tx| tx.incidents()).unwrap().is_empty());
}

// ---- PagerDuty inbox ----

#[test]
fn webhooks_dedupe_on_webhook_id_then_event_id() {
    let store = Store::open_in_memory().unwrap();
    let first = insert_webhook(&store, Some("W1"), "E1", T0);
    let InsertOutcome::Inserted(seq) = first else {
        panic!("{first:?}")
    };
    // Same X-Webhook-Id (a redelivery), whatever the body says.
    assert_eq!(
        insert_webhook(&store, Some("W1"), "E-other", t(1)),
        InsertOutcome::Duplicate(seq)
    );
    // Same event.id under another (or no) X-Webhook-Id.
    assert_eq!(
        insert_webhook(&store, Some("W2"), "E1", t(2)),
        InsertOutcome::Duplicate(seq)
    );
    assert_eq!(
        insert_webhook(&store, None, "E1", t(3)),
        InsertOutcome::Duplicate(seq)
    );
    // Without X-Webhook-Id, distinct events are distinct.
    assert!(insert_webhook(&store, None, "E2", t(4)).is_inserted());
    let third = insert_webhook(&store, None, "E3", t(5));
    assert!(third.is_inserted() && third.seq() > seq);
    // A refused duplicate may use up a sequence number; arrival order is all they promise.
    assert_eq!(
        insert_webhook(&store, None, "E3", t(6)),
        InsertOutcome::Duplicate(third.seq())
    );
    let rows = store.read(|tx| tx.unprocessed_webhooks(10)).unwrap();
    let events: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(events, ["E1", "E2", "E3"]);
}

#[test]
fn webhooks_list_in_arrival_order_and_mark_processed() {
    let store = Store::open_in_memory().unwrap();
    let inc = IncidentId::new("PGR0VU2");
    let (wh, ev) = (WebhookId::new("W9"), EventId::new("E9"));
    let seq9 = store
        .write(|tx| tx.insert_webhook(&webhook(Some(&wh), &ev, Some(&inc), T0)))
        .unwrap()
        .seq();
    let seq10 = insert_webhook(&store, None, "E10", t(1)).seq();
    let seq11 = insert_webhook(&store, None, "E11", t(2)).seq();
    assert!(seq9 < seq10 && seq10 < seq11);

    let row = store.read(|tx| tx.webhook(seq9)).unwrap().unwrap();
    assert_eq!(row.webhook_id, Some(wh));
    assert_eq!(row.incident_id, Some(inc));
    assert_eq!(row.event_type, "incident.triggered");
    assert_eq!(row.payload, r#"{"event":{"id":"E"}}"#);
    assert_eq!((row.received_at, row.processed_at), (T0, None));

    assert_eq!(
        store.read(|tx| tx.unprocessed_webhooks(2)).unwrap().len(),
        2
    );
    store
        .write(|tx| tx.mark_webhook_processed(seq10, t(10)))
        .unwrap();
    // Idempotent: the first processing time is kept.
    store
        .write(|tx| tx.mark_webhook_processed(seq10, t(99)))
        .unwrap();
    let left: Vec<i64> = store
        .read(|tx| tx.unprocessed_webhooks(10))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(left, [seq9, seq11]);
    let processed = store.read(|tx| tx.webhook(seq10)).unwrap().unwrap();
    assert_eq!(processed.processed_at, Some(t(10)));
    // A processed webhook still dedupes.
    assert_eq!(
        insert_webhook(&store, None, "E10", t(20)),
        InsertOutcome::Duplicate(seq10)
    );
    assert!(matches!(
        store.write(|tx| tx.mark_webhook_processed(999, T0)),
        Err(Error::UnknownInboxRow {
            inbox: "webhook",
            seq: 999
        })
    ));
}

// ---- Slack inbox ----

fn insert_action(store: &Store, key: &str, user: &str, at: Timestamp) -> InsertOutcome {
    let (key, user, inc) = (
        DedupeKey::new(key),
        SlackUserId::new(user),
        IncidentId::new("P1"),
    );
    store
        .write(|tx| {
            tx.insert_action(&NewAction {
                dedupe_key: &key,
                slack_user: &user,
                incident_id: Some(&inc),
                kind: "ack",
                payload: r#"{"type":"block_actions"}"#,
                received_at: at,
            })
        })
        .unwrap()
}

#[test]
fn slack_actions_dedupe_on_the_callers_key_and_mark_processed() {
    let store = Store::open_in_memory().unwrap();
    let a = insert_action(&store, "1548261231.000200:U1:ack", "U1", T0);
    assert!(a.is_inserted());
    assert_eq!(
        insert_action(&store, "1548261231.000200:U1:ack", "U1", t(5)),
        InsertOutcome::Duplicate(a.seq())
    );
    let b = insert_action(&store, "1548261232.000100:U2:ack", "U2", t(6));
    assert!(b.is_inserted());
    let rows = store.read(|tx| tx.unprocessed_actions(10)).unwrap();
    assert_eq!(
        rows[0],
        ActionRow {
            seq: a.seq(),
            dedupe_key: DedupeKey::new("1548261231.000200:U1:ack"),
            slack_user: SlackUserId::new("U1"),
            incident_id: Some(IncidentId::new("P1")),
            kind: "ack".into(),
            payload: r#"{"type":"block_actions"}"#.into(),
            received_at: T0,
            processed_at: None,
        }
    );
    assert_eq!(rows[1].seq, b.seq());
    store
        .write(|tx| tx.mark_action_processed(a.seq(), t(7)))
        .unwrap();
    let rows = store.read(|tx| tx.unprocessed_actions(10)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].slack_user, SlackUserId::new("U2"));
    assert_eq!(
        store
            .read(|tx| tx.action(a.seq()))
            .unwrap()
            .unwrap()
            .processed_at,
        Some(t(7))
    );
    assert!(matches!(
        store.write(|tx| tx.mark_action_processed(42, T0)),
        Err(Error::UnknownInboxRow {
            inbox: "action",
            seq: 42
        })
    ));
}

// ---- engine state ----

#[test]
fn incident_state_put_get_list_and_lookup_by_card() {
    let store = Store::open_in_memory().unwrap();
    store
        .write(|tx| {
            tx.put_incident(&incident("P2", Some("C1"), Some("1.000200"), false))?;
            tx.put_incident(&incident("P1", Some("C1"), None, false))?;
            tx.put_incident(&incident("P3", Some("C2"), Some("2.000100"), true))
        })
        .unwrap();
    let p2 = store
        .read(|tx| tx.incident(&IncidentId::new("P2")))
        .unwrap()
        .unwrap();
    assert_eq!(p2, incident("P2", Some("C1"), Some("1.000200"), false));
    assert_eq!(
        p2.state.decode::<serde_json::Value>().unwrap()["status"],
        "triggered"
    );

    let ids = |records: Vec<IncidentRecord>| -> Vec<String> {
        records
            .into_iter()
            .map(|r| r.incident_id.into_string())
            .collect()
    };
    assert_eq!(
        ids(store.read(|tx| tx.incidents()).unwrap()),
        ["P1", "P2", "P3"]
    );
    assert_eq!(
        ids(store.read(|tx| tx.open_incidents()).unwrap()),
        ["P1", "P2"]
    );

    let by_card = store
        .read(|tx| tx.incident_by_card(&ChannelId::new("C1"), &MessageTs::new("1.000200")))
        .unwrap()
        .unwrap();
    assert_eq!(by_card.incident_id, IncidentId::new("P2"));
    assert!(
        store
            .read(|tx| tx.incident_by_card(&ChannelId::new("C2"), &MessageTs::new("1.000200")))
            .unwrap()
            .is_none()
    );

    // Put replaces: the card was posted and the state moved on.
    let mut p1 = incident("P1", Some("C1"), Some("3.000300"), false);
    p1.state = Json::encode(&json!({ "status": "acknowledged" })).unwrap();
    p1.updated_at = t(1);
    store.write(|tx| tx.put_incident(&p1)).unwrap();
    assert_eq!(
        store
            .read(|tx| tx.incident(&IncidentId::new("P1")))
            .unwrap(),
        Some(p1)
    );
    assert!(
        store
            .write(|tx| tx.delete_incident(&IncidentId::new("P1")))
            .unwrap()
    );
    assert!(
        !store
            .write(|tx| tx.delete_incident(&IncidentId::new("P1")))
            .unwrap()
    );
    assert!(
        store
            .read(|tx| tx.incident(&IncidentId::new("P1")))
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_global_slot_starts_empty_and_is_replaced() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.read(|tx| tx.global()).unwrap(), None);
    store
        .write(|tx| tx.put_global(&json!({"v": 1}), T0))
        .unwrap();
    store
        .write(|tx| tx.put_global(&json!({"v": 2}), T0))
        .unwrap();
    assert_eq!(store.read(|tx| tx.global()).unwrap(), Some(json!({"v": 2})));
}

// ---- outbox ----

#[test]
fn enqueueing_the_same_effect_id_twice_is_a_no_op_even_after_completion() {
    let store = Store::open_in_memory().unwrap();
    let first = enqueue(&store, "post:P1", "P1", T0);
    assert!(first.is_inserted());
    assert_eq!(
        enqueue(&store, "post:P1", "P1", t(5)),
        InsertOutcome::Duplicate(first.seq())
    );
    assert_eq!(store.read(|tx| tx.pending_effects(10)).unwrap().len(), 1);
    assert_eq!(claim(&store, T0), ["post:P1"]);
    let id = EffectId::new("post:P1");
    store.write(|tx| tx.complete(&id, t(1))).unwrap();
    assert!(store.read(|tx| tx.is_finished(&id)).unwrap());
    assert_eq!(
        enqueue(&store, "post:P1", "P1", t(5)),
        InsertOutcome::Duplicate(first.seq())
    );
    assert!(claim(&store, t(10)).is_empty());
}

#[test]
fn only_the_oldest_pending_effect_of_a_key_is_claimable() {
    let store = Store::open_in_memory().unwrap();
    enqueue(&store, "post:P1", "P1", T0);
    enqueue(&store, "update:P1:1", "P1", T0);
    enqueue(&store, "update:P1:2", "P1", T0);
    enqueue(&store, "post:P2", "P2", T0);
    // One head per key; P2 is not blocked by P1.
    assert_eq!(claim(&store, T0), ["post:P1", "post:P2"]);
    // Both heads are leased, so nothing else is claimable yet.
    assert!(claim(&store, t(1)).is_empty());
    store
        .write(|tx| tx.complete(&EffectId::new("post:P1"), t(2)))
        .unwrap();
    assert_eq!(claim(&store, t(2)), ["update:P1:1"]);
    store
        .write(|tx| tx.complete(&EffectId::new("update:P1:1"), t(3)))
        .unwrap();
    assert_eq!(claim(&store, t(3)), ["update:P1:2"]);
}

#[test]
fn claim_respects_due_time_limit_and_order() {
    let store = Store::open_in_memory().unwrap();
    enqueue(&store, "a", "K1", t(50));
    enqueue(&store, "b", "K2", t(10));
    enqueue(&store, "c", "K3", t(1000));
    assert!(claim(&store, T0).is_empty());
    assert_eq!(store.read(|tx| tx.next_due_at(T0)).unwrap(), Some(t(10)));
    let one = store.write(|tx| tx.claim_due(t(100), 1)).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, EffectId::new("b"));
    assert_eq!(one[0].payload.as_str(), r#"{"effect":"b"}"#);
    assert_eq!(claim(&store, t(100)), ["a"]);
    assert_eq!(
        store.read(|tx| tx.next_due_at(t(100))).unwrap(),
        Some(t(1000))
    );
}

#[test]
fn a_lease_expires_so_a_crashed_claim_is_retried() {
    let store = Store::open_with(
        ":memory:",
        &StoreOptions {
            claim_lease: Duration::from_secs(30),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    enqueue(&store, "post:P1", "P1", T0);
    assert_eq!(claim(&store, T0), ["post:P1"]);
    assert!(claim(&store, t(29_999)).is_empty());
    assert_eq!(claim(&store, t(30_000)), ["post:P1"]);
    assert_eq!(store.write(|tx| tx.release_claims()).unwrap(), 1);
    assert_eq!(claim(&store, t(30_001)), ["post:P1"]);
}

#[test]
fn a_claim_interrupted_by_a_restart_counts_as_an_attempt_that_may_have_taken_effect() {
    // Issue 17 item 4: after a crash between the API call and the commit, the row is claimed
    // again; the caller must be able to tell that the first attempt may have been sent.
    let store = Store::open_in_memory().unwrap();
    enqueue(&store, "post:P1", "P1", T0);
    enqueue(&store, "post:P2", "P2", T0);
    let first = store.write(|tx| tx.claim_due(T0, 100)).unwrap();
    assert!(first.iter().all(|r| r.attempts == 0));
    store
        .write(|tx| tx.complete(&EffectId::new("post:P2"), t(1)))
        .unwrap();
    // The process dies holding P1's claim; the next one starts.
    assert_eq!(store.write(|tx| tx.release_claims()).unwrap(), 1);
    let again = store.write(|tx| tx.claim_due(t(2), 100)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id.as_str(), "post:P1");
    assert_eq!(again[0].attempts, 1);
    assert!(
        again[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("interrupted"))
    );
    // A row that reports back normally is never counted as interrupted.
    enqueue(&store, "post:P3", "P3", t(3));
    let fresh = store.write(|tx| tx.claim_due(t(3), 100)).unwrap();
    assert_eq!(fresh.iter().map(|r| r.attempts).collect::<Vec<_>>(), [0]);
}

#[test]
fn fail_keeps_the_row_counts_attempts_and_blocks_only_its_key() {
    let store = Store::open_in_memory().unwrap();
    enqueue(&store, "post:P1", "P1", T0);
    enqueue(&store, "update:P1", "P1", T0);
    enqueue(&store, "post:P2", "P2", T0);
    assert_eq!(claim(&store, T0), ["post:P1", "post:P2"]);
    let id = EffectId::new("post:P1");
    assert_eq!(
        store
            .write(|tx| tx.fail(&id, t(1), t(5000), "slack 500"))
            .unwrap(),
        1
    );
    store
        .write(|tx| tx.complete(&EffectId::new("post:P2"), t(1)))
        .unwrap();
    // P1 waits for its retry; its second effect stays behind it.
    assert!(claim(&store, t(4999)).is_empty());
    let retried = store.write(|tx| tx.claim_due(t(5000), 10)).unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].id, id);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("slack 500"));
    assert_eq!(
        store
            .write(|tx| tx.fail(&id, t(5001), t(6000), "timeout"))
            .unwrap(),
        2
    );
    let row = store.read(|tx| tx.effect(&id)).unwrap().unwrap();
    assert_eq!((row.attempts, row.due_at), (2, t(6000)));
    assert_eq!(row.last_error.as_deref(), Some("timeout"));
    assert_eq!(claim(&store, t(6000)), ["post:P1"]);
    store.write(|tx| tx.complete(&id, t(6001))).unwrap();
    assert_eq!(claim(&store, t(6001)), ["update:P1"]);
}

#[test]
fn abandon_unblocks_the_key_and_is_reported_as_a_failure() {
    let store = Store::open_in_memory().unwrap();
    enqueue(&store, "note:P1", "P1", T0);
    enqueue(&store, "update:P1", "P1", T0);
    let id = EffectId::new("note:P1");
    store.write(|tx| tx.fail(&id, T0, T0, "pd 503")).unwrap();
    store
        .write(|tx| tx.abandon(&id, t(1), "pd 400: invalid"))
        .unwrap();
    assert!(store.read(|tx| tx.is_finished(&id)).unwrap());
    assert_eq!(claim(&store, t(1)), ["update:P1"]);
    let failures = store.read(|tx| tx.recent_failures(10)).unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].effect_id, id);
    assert_eq!(failures[0].error, "pd 400: invalid");
    assert_eq!(failures[0].attempts, 1);
    assert!(failures[0].abandoned);
    // Failing a finished effect is an error; completing it again is not.
    assert!(matches!(
        store.write(|tx| tx.fail(&id, T0, T0, "x")),
        Err(Error::UnknownEffect(_))
    ));
    store.write(|tx| tx.complete(&id, t(2))).unwrap();
}

#[test]
fn unknown_effect_ids_are_errors() {
    let store = Store::open_in_memory().unwrap();
    let id = EffectId::new("nope");
    assert!(
        matches!(store.write(|tx| tx.complete(&id, T0)), Err(Error::UnknownEffect(e)) if e == id)
    );
    assert!(matches!(
        store.write(|tx| tx.abandon(&id, T0, "x")),
        Err(Error::UnknownEffect(_))
    ));
    assert!(matches!(
        store.write(|tx| tx.fail(&id, T0, T0, "x")),
        Err(Error::UnknownEffect(_))
    ));
    assert!(store.read(|tx| tx.effect(&id)).unwrap().is_none());
}

#[test]
fn postponing_a_rate_key_delays_only_that_bucket() {
    let store = Store::open_in_memory().unwrap();
    enqueue_rate(&store, "s1", "P1", "slack", T0);
    enqueue_rate(&store, "s2", "P2", "slack", T0);
    enqueue_rate(&store, "p3", "P3", "pagerduty", T0);
    enqueue_rate(&store, "s4", "P4", "slack", t(9000));
    assert_eq!(
        store
            .write(|tx| tx.postpone_rate_key(&RateKey::new("slack"), t(3000)))
            .unwrap(),
        2
    );
    assert_eq!(claim(&store, T0), ["p3"]);
    assert_eq!(claim(&store, t(3000)), ["s1", "s2"]);
    let s4 = store
        .read(|tx| tx.effect(&EffectId::new("s4")))
        .unwrap()
        .unwrap();
    assert_eq!((s4.due_at, s4.attempts), (t(9000), 0));
}

#[test]
fn outbox_stats_report_depth_in_flight_retrying_and_oldest_age() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.read(|tx| tx.outbox_stats(T0)).unwrap().depth, 0);
    assert_eq!(
        store.read(|tx| tx.outbox_stats(T0)).unwrap().oldest_age,
        None
    );
    enqueue(&store, "a", "K1", T0);
    enqueue(&store, "b", "K2", t(100));
    enqueue(&store, "c", "K2", t(200));
    assert_eq!(claim(&store, t(1000)), ["a", "b"]);
    store
        .write(|tx| tx.fail(&EffectId::new("a"), t(1000), t(2000), "boom"))
        .unwrap();
    let stats = store.read(|tx| tx.outbox_stats(t(1500))).unwrap();
    assert_eq!(stats.depth, 3);
    assert_eq!(stats.in_flight, 1);
    assert_eq!(stats.retrying, 1);
    assert_eq!(stats.oldest_age, Some(ms(1500)));
}

/// `pdbridge status --json` prints the summary as serialized: times and ages stay whole
/// milliseconds under their old names, whatever their Rust types.
#[test]
fn the_status_summary_serializes_times_and_ages_as_milliseconds() {
    let store = Store::open_in_memory().unwrap();
    insert_webhook(&store, Some("W1"), "E1", t(20));
    enqueue(&store, "a", "K1", T0);
    let summary = store.read(|tx| tx.status(t(1500), 10)).unwrap();
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["outbox"]["oldest_age_ms"], json!(1500));
    assert_eq!(json["last_webhook_at"], json!(1_764_000_000_020_i64));
    let back: store::StatusSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
    let empty = serde_json::to_value(store::OutboxStats::default()).unwrap();
    assert_eq!(empty["oldest_age_ms"], serde_json::Value::Null);
}

// ---- identity cache ----

#[test]
fn identity_cache_respects_expiry_and_can_be_invalidated() {
    let store = Store::open_in_memory().unwrap();
    let alice = IdentityKey::slack(&SlackUserId::new("U1"));
    let bob = IdentityKey::slack(&SlackUserId::new("U2"));
    let reverse = IdentityKey::pd(&PdUserId::new("PABC123"));
    assert_eq!(alice.as_str(), "slack:U1");
    assert_eq!(reverse.as_str(), "pd:PABC123");
    let entry = |key: &IdentityKey, expires_at| IdentityEntry {
        key: key.clone(),
        entry: json!({ "pd_user": "PABC123", "email": "alice@example.com" }),
        expires_at,
        updated_at: T0,
    };
    store
        .write(|tx| {
            tx.put_identity(&entry(&alice, t(1000)))?;
            tx.put_identity(&entry(&bob, t(10)))?;
            tx.put_identity(&entry(&reverse, t(10)))
        })
        .unwrap();
    assert_eq!(
        store.read(|tx| tx.identity(&alice, t(999))).unwrap(),
        Some(entry(&alice, t(1000)))
    );
    assert_eq!(store.read(|tx| tx.identity(&alice, t(1000))).unwrap(), None);
    assert_eq!(store.read(|tx| tx.identity(&bob, t(11))).unwrap(), None);
    // The raw lookup still sees the expired entry.
    assert_eq!(
        store
            .read(|tx| tx.identity_including_expired(&bob))
            .unwrap(),
        Some(entry(&bob, t(10)))
    );
    // A refresh replaces the entry.
    store
        .write(|tx| tx.put_identity(&entry(&bob, t(5000))))
        .unwrap();
    assert!(store.read(|tx| tx.identity(&bob, t(11))).unwrap().is_some());
    let listed: Vec<IdentityKey> = store
        .read(|tx| tx.identities())
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(listed, [reverse.clone(), alice.clone(), bob.clone()]);
    assert!(store.write(|tx| tx.invalidate_identity(&alice)).unwrap());
    assert!(!store.write(|tx| tx.invalidate_identity(&alice)).unwrap());
    assert_eq!(store.read(|tx| tx.identity(&alice, T0)).unwrap(), None);
    assert_eq!(store.write(|tx| tx.clear_identities()).unwrap(), 2);
    assert!(store.read(|tx| tx.identities()).unwrap().is_empty());
}

// ---- audit log ----

fn audit(at: Timestamp, action: &str, decision: &str) -> AuditEntry {
    AuditEntry {
        at,
        slack_user: SlackUserId::new("U1"),
        pd_user: Some(PdUserId::new("PABC123")),
        action: action.into(),
        incident_id: Some(IncidentId::new("P1")),
        decision: decision.into(),
        pd_result: Some("200".into()),
    }
}

#[test]
fn the_audit_log_appends_lists_newest_first_and_refuses_changes() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let first = store
        .write(|tx| tx.append_audit(&audit(T0, "ack", "allowed: any_mapped")))
        .unwrap();
    let mut unmapped = audit(t(1), "resolve", "refused: unmapped");
    unmapped.pd_user = None;
    unmapped.pd_result = None;
    let second = store.write(|tx| tx.append_audit(&unmapped)).unwrap();
    let mut other = audit(t(2), "note", "allowed: any_mapped");
    other.incident_id = Some(IncidentId::new("P9"));
    store.write(|tx| tx.append_audit(&other)).unwrap();
    assert!(first < second);

    let recent = store.read(|tx| tx.recent_audit(2)).unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].entry, other);
    assert_eq!(recent[1].entry, unmapped);
    let p1 = store
        .read(|tx| tx.incident_audit(&IncidentId::new("P1")))
        .unwrap();
    let seqs: Vec<i64> = p1.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [first, second]);

    // Append-only is enforced by the database itself, even for raw SQL.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let update = conn.execute("UPDATE audit_log SET decision = 'allowed'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_log", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn unmapped_users_are_tallied() {
    let store = Store::open_in_memory().unwrap();
    let (u1, u2) = (SlackUserId::new("U1"), SlackUserId::new("U2"));
    store
        .write(|tx| {
            tx.note_unmapped(&u1, "no PagerDuty user with this email", T0)?;
            tx.note_unmapped(&u2, "guest account", t(1))?;
            tx.note_unmapped(&u1, "bot user", t(2))
        })
        .unwrap();
    let users = store.read(|tx| tx.unmapped_users(10)).unwrap();
    assert_eq!(users[0].slack_user, u1);
    assert_eq!(
        (users[0].times, users[0].first_seen, users[0].last_seen),
        (2, T0, t(2))
    );
    assert_eq!(users[0].reason, "bot user");
    assert_eq!(users[1].slack_user, u2);
    assert!(store.write(|tx| tx.clear_unmapped(&u1)).unwrap());
    assert_eq!(store.read(|tx| tx.unmapped_users(10)).unwrap().len(), 1);
}

// ---- status and pruning ----

#[test]
fn status_summarises_the_database() {
    let store = Store::open_in_memory().unwrap();
    let empty = store.read(|tx| tx.status(T0, 5)).unwrap();
    assert_eq!(empty.incidents_tracked, 0);
    assert_eq!(empty.last_webhook_at, None);
    assert!(empty.recent_failures.is_empty());

    store
        .write(|tx| {
            tx.put_incident(&incident("P1", Some("C1"), Some("1.1"), false))?;
            tx.put_incident(&incident("P2", Some("C1"), None, false))?;
            tx.put_incident(&incident("P3", Some("C1"), Some("1.3"), true))?;
            tx.note_unmapped(&SlackUserId::new("U9"), "guest", T0)
        })
        .unwrap();
    insert_webhook(&store, Some("W1"), "E1", t(10));
    let seq = insert_webhook(&store, Some("W2"), "E2", t(20)).seq();
    store
        .write(|tx| tx.mark_webhook_processed(seq, t(21)))
        .unwrap();
    insert_action(&store, "k1", "U1", t(30));
    enqueue(&store, "a", "P1", t(40));
    store
        .write(|tx| tx.fail(&EffectId::new("a"), t(50), t(90), "slack 429"))
        .unwrap();

    let status = store.read(|tx| tx.status(t(100), 5)).unwrap();
    assert_eq!(status.incidents_tracked, 3);
    assert_eq!(status.open_cards, 1);
    assert_eq!(status.cards_not_posted, 1);
    assert_eq!(status.last_webhook_at, Some(t(20)));
    assert_eq!(status.unprocessed_webhooks, 1);
    assert_eq!(status.unprocessed_actions, 1);
    assert_eq!(status.outbox.depth, 1);
    assert_eq!(status.outbox.oldest_age, Some(ms(60)));
    assert_eq!(status.recent_failures.len(), 1);
    assert_eq!(status.recent_failures[0].error, "slack 429");
    assert!(!status.recent_failures[0].abandoned);
    assert_eq!(status.unmapped_users[0].slack_user, SlackUserId::new("U9"));
    // Serializable for `pdbridge status --json`.
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["open_cards"], 1);
}

#[test]
fn prune_keeps_dedupe_keys_for_seven_days_and_never_drops_pending_rows() {
    let store = Store::open_in_memory().unwrap();
    let old = T0;
    let now = T0.saturating_add(SEVEN_DAYS).saturating_add(ms(1));
    let processed = insert_webhook(&store, Some("W-old"), "E-old", old).seq();
    store
        .write(|tx| tx.mark_webhook_processed(processed, old.saturating_add(ms(1))))
        .unwrap();
    insert_webhook(&store, Some("W-pending"), "E-pending", old);
    let recent = insert_webhook(
        &store,
        Some("W-recent"),
        "E-recent",
        now.saturating_sub(ms(1000)),
    )
    .seq();
    store
        .write(|tx| tx.mark_webhook_processed(recent, now.saturating_sub(ms(900))))
        .unwrap();
    let action = insert_action(&store, "k-old", "U1", old).seq();
    store
        .write(|tx| tx.mark_action_processed(action, old.saturating_add(ms(1))))
        .unwrap();
    enqueue(&store, "done-old", "K1", old);
    store
        .write(|tx| tx.complete(&EffectId::new("done-old"), old.saturating_add(ms(1))))
        .unwrap();
    enqueue(&store, "pending-old", "K2", old);
    store
        .write(|tx| {
            tx.put_identity(&IdentityEntry {
                key: IdentityKey::slack(&SlackUserId::new("U1")),
                entry: json!(null),
                expires_at: now,
                updated_at: old,
            })
        })
        .unwrap();

    // Just inside the window, nothing goes.
    let inside = store
        .write(|tx| tx.prune(old.saturating_add(SEVEN_DAYS)))
        .unwrap();
    assert_eq!((inside.webhooks, inside.actions, inside.effects), (0, 0, 0));
    assert_eq!(
        insert_webhook(&store, None, "E-old", now),
        InsertOutcome::Duplicate(processed)
    );

    let report = store
        .write(|tx| tx.prune(now.saturating_add(ms(1))))
        .unwrap();
    assert_eq!(
        (
            report.webhooks,
            report.actions,
            report.effects,
            report.identities
        ),
        (1, 1, 1, 1)
    );
    let events: Vec<String> = store
        .read(|tx| tx.unprocessed_webhooks(10))
        .unwrap()
        .into_iter()
        .map(|r| r.event_id.into_string())
        .collect();
    assert_eq!(events, ["E-pending"]);
    assert!(store.read(|tx| tx.webhook(recent)).unwrap().is_some());
    assert_eq!(claim(&store, now.saturating_add(ms(1))), ["pending-old"]);
}

#[test]
fn unparsed_deliveries_are_kept_byte_for_byte_counted_in_status_and_pruned() {
    let store = Store::open_in_memory().unwrap();
    let id = WebhookId::new("W-garbage");
    let body: &[u8] = b"\x00\xffnot json at all";
    let insert = |webhook_id: Option<&WebhookId>, at: Timestamp| {
        store
            .write(|tx| {
                tx.insert_unparsed_webhook(&NewUnparsedWebhook {
                    webhook_id,
                    body,
                    error: "expected value at line 1 column 1",
                    received_at: at,
                })
            })
            .unwrap()
    };
    let first = insert(Some(&id), T0);
    assert!(first.is_inserted());
    // A redelivery with the same X-Webhook-Id is stored once; without an id every one is.
    assert_eq!(
        insert(Some(&id), t(1)),
        InsertOutcome::Duplicate(first.seq())
    );
    insert(None, t(2));
    let status = store.read(|tx| tx.status(t(3), 10)).unwrap();
    assert_eq!(status.unparsed_webhooks, 2);
    assert_eq!(status.recent_unparsed.len(), 2);
    let oldest = &status.recent_unparsed[1];
    assert_eq!(oldest.webhook_id, Some(id.clone()));
    assert_eq!(oldest.bytes, body.len() as u64);
    assert_eq!(oldest.error, "expected value at line 1 column 1");
    assert_eq!(
        store
            .read(|tx| tx.unparsed_webhook_body(first.seq()))
            .unwrap()
            .as_deref(),
        Some(body)
    );
    // Neither inbox sees them: they are never processed.
    assert_eq!(store.read(|tx| tx.webhook_count()).unwrap(), 0);
    let report = store
        .write(|tx| tx.prune(t(1).saturating_add(SEVEN_DAYS).saturating_add(ms(1))))
        .unwrap();
    assert_eq!(report.unparsed, 1);
    assert_eq!(
        store
            .read(|tx| tx.status(T0, 10))
            .unwrap()
            .unparsed_webhooks,
        1
    );
}

// ---- restarts ----

#[test]
fn everything_survives_a_close_and_reopen() {
    let (_dir, path) = temp_db();
    {
        let store = Store::open(&path).unwrap();
        insert_webhook(&store, Some("W1"), "E1", T0);
        insert_action(&store, "k1", "U1", T0);
        store
            .write(|tx| {
                tx.put_incident(&incident("P1", Some("C1"), Some("1.1"), false))?;
                tx.put_global(&json!({"engine": 1}), T0)?;
                tx.put_identity(&IdentityEntry {
                    key: IdentityKey::slack(&SlackUserId::new("U1")),
                    entry: json!({"pd_user": "PABC123"}),
                    expires_at: t(86_400_000),
                    updated_at: T0,
                })?;
                tx.append_audit(&audit(T0, "ack", "allowed"))
            })
            .unwrap();
        enqueue(&store, "post:P1", "P1", T0);
        enqueue(&store, "update:P1", "P1", T0);
        // Claimed but never completed: the process dies mid-call.
        assert_eq!(claim(&store, T0), ["post:P1"]);
    }
    let store = Store::open(&path).unwrap();
    store
        .read(|tx| {
            assert_eq!(tx.unprocessed_webhooks(10)?.len(), 1);
            assert_eq!(tx.unprocessed_actions(10)?.len(), 1);
            let p1 = tx.incident(&IncidentId::new("P1"))?.unwrap();
            assert_eq!(p1.card_ts, Some(MessageTs::new("1.1")));
            assert_eq!(tx.global()?, Some(json!({"engine": 1})));
            assert!(
                tx.identity(&IdentityKey::slack(&SlackUserId::new("U1")), t(1))?
                    .is_some()
            );
            assert_eq!(tx.recent_audit(10)?.len(), 1);
            assert_eq!(tx.pending_effects(10)?.len(), 2);
            Ok::<_, Error>(())
        })
        .unwrap();
    // Dedupe keys survived too.
    assert!(!insert_webhook(&store, Some("W1"), "E1", t(1)).is_inserted());
    assert!(!enqueue(&store, "post:P1", "P1", T0).is_inserted());
    // The lost claim is recovered at startup and the key's order is intact.
    assert_eq!(store.write(|tx| tx.release_claims()).unwrap(), 1);
    assert_eq!(claim(&store, t(1)), ["post:P1"]);
}

#[test]
fn committed_writes_are_visible_without_a_clean_shutdown() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    insert_webhook(&store, Some("W1"), "E1", T0);
    enqueue(&store, "post:P1", "P1", T0);
    // Never closed: the connection (and its WAL) is abandoned as a killed process would.
    std::mem::forget(store);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(
        reopened
            .read(|tx| tx.unprocessed_webhooks(10))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(claim(&reopened, T0), ["post:P1"]);
}

#[test]
fn backup_writes_a_consistent_copy() {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .write(|tx| tx.put_incident(&incident("P1", None, None, false)))
        .unwrap();
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy).unwrap();
    let restored = Store::open(&copy).unwrap();
    assert_eq!(restored.read(|tx| tx.incidents()).unwrap().len(), 1);
}

#[test]
fn read_only_open_reads_but_never_migrates_or_writes() {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    insert_webhook(&store, Some("W1"), "E1", T0);
    // While the server still has the database open.
    let viewer = Store::open_read_only(&path).unwrap();
    assert_eq!(
        viewer
            .read(|tx| tx.status(T0, 5))
            .unwrap()
            .unprocessed_webhooks,
        1
    );
    assert!(
        viewer
            .write(|tx| tx.put_incident(&incident("P1", None, None, false)))
            .is_err()
    );
    // And after the server closed it (no -wal or -shm file left).
    drop((store, viewer));
    let viewer = Store::open_read_only(&path).unwrap();
    assert_eq!(
        viewer
            .read(|tx| tx.status(T0, 5))
            .unwrap()
            .unprocessed_webhooks,
        1
    );
    // A missing file is an error, not a new empty database.
    let missing = dir.path().join("missing.db");
    assert!(Store::open_read_only(&missing).is_err());
    assert!(!missing.exists());
    // An unmigrated database is refused.
    let blank = dir.path().join("blank.db");
    drop(rusqlite::Connection::open(&blank).unwrap());
    assert!(matches!(
        Store::open_read_only(&blank),
        Err(Error::SchemaTooOld {
            found: 0,
            supported: 7
        })
    ));
}

#[test]
fn threads_and_a_second_connection_share_the_database() {
    let (_dir, path) = temp_db();
    let store = std::sync::Arc::new(Store::open(&path).unwrap());
    let second = Store::open(&path).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    enqueue(&store, &format!("e{t}-{i}"), &format!("K{t}"), T0);
                }
            })
        })
        .collect();
    // Another process-like connection writes at the same time (busy_timeout absorbs the locks).
    for i in 0..25 {
        enqueue(&second, &format!("s-{i}"), "KS", T0);
    }
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(store.read(|tx| tx.outbox_stats(T0)).unwrap().depth, 125);
    // Per-key FIFO held under concurrency: the heads are the first of each key.
    let mut heads = claim(&second, T0);
    heads.sort();
    assert_eq!(heads, ["e0-0", "e1-0", "e2-0", "e3-0", "s-0"]);
}

#[test]
fn oncall_values_are_kept_claimed_once_listed_by_prefix_and_pruned() {
    use ids::Timestamp;
    let store = Store::open_in_memory().unwrap();
    let t = Timestamp::from_millis(1_000);
    let v = serde_json::json!({"state": "posting"});
    let claimed = store
        .write(|tx| {
            let first = tx.claim_oncall_key("handoff/C1/PS/1", &v, t)?;
            let again = tx.claim_oncall_key("handoff/C1/PS/1", &v, t)?;
            tx.put_oncall_value("unmapped", &serde_json::json!(["PX"]), t)?;
            tx.put_oncall_value("handoff/C1/PS/2", &v, Timestamp::from_millis(5_000))?;
            Ok::<_, store::Error>((first, again))
        })
        .unwrap();
    assert_eq!(claimed, (true, false));
    let listed = store.read(|tx| tx.oncall_values("handoff/")).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        store.read(|tx| tx.oncall_value("unmapped")).unwrap(),
        Some(serde_json::json!(["PX"]))
    );
    let pruned = store
        .write(|tx| tx.prune_oncall_values("handoff/", Timestamp::from_millis(2_000)))
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(
        store.read(|tx| tx.oncall_values("handoff/")).unwrap().len(),
        1
    );
}
