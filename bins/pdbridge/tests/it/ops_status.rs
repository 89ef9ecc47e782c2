//! `pdbridge status` over a temporary database written through the store's own API.

use ids::{ChannelId, EventId, IncidentId, MessageTs, SlackUserId, WebhookId};
use pdbridge::ops::status::{read_summary, render};
use serde_json::json;
use store::{
    EffectId, IncidentRecord, NewEffect, NewUnparsedWebhook, NewWebhook, OrderKey, RateKey, Store,
};

const NOW: i64 = 1_764_000_000_000;

/// The time `ms` milliseconds after the Unix epoch.
fn at(ms: i64) -> ids::Timestamp {
    ids::Timestamp::from_millis(ms)
}

fn seed(path: &std::path::Path) {
    let store = Store::open(path).unwrap();
    store
        .write(|tx| {
            for (id, ts, resolved) in [
                ("PINC1", Some("1700000000.000100"), false),
                ("PINC2", None, false),
                ("PINC3", Some("1700000000.000200"), true),
            ] {
                tx.put_incident(&IncidentRecord {
                    incident_id: IncidentId::new(id),
                    channel: Some(ChannelId::new("C1")),
                    card_ts: ts.map(MessageTs::new),
                    resolved,
                    state: store::Json::encode(&json!({})).unwrap(),
                    updated_at: at(NOW - 60_000),
                })?;
            }
            tx.insert_webhook(&NewWebhook {
                webhook_id: Some(&WebhookId::new("W1")),
                event_id: &EventId::new("E1"),
                event_type: "incident.triggered",
                incident_id: Some(&IncidentId::new("PINC1")),
                payload: "{}",
                received_at: at(NOW - 180_000),
            })?;
            for (n, age) in [(1, 252_000), (2, 10_000)] {
                tx.enqueue(&NewEffect {
                    id: &EffectId::new(format!("PINC2/post-{n}")),
                    order_key: &OrderKey::new(format!("PINC2-{n}")),
                    rate_key: &RateKey::new("slack"),
                    payload: &store::Json::encode(&json!({})).unwrap(),
                    due_at: at(NOW - age),
                    created_at: at(NOW - age),
                })?;
            }
            // A card post Slack refused (given up on), and a thread post that failed for good:
            // only the first counts as a failed card post.
            for (id, kind) in [
                ("PINC1/card1", "post_card"),
                ("PINC1/thread2", "post_thread"),
            ] {
                tx.enqueue(&NewEffect {
                    id: &EffectId::new(id),
                    order_key: &OrderKey::new("PINC1"),
                    rate_key: &RateKey::new("slack"),
                    payload: &store::Json::encode(&json!({ kind: {"channel": "C1"} })).unwrap(),
                    due_at: at(NOW - 30_000),
                    created_at: at(NOW - 30_000),
                })?;
                tx.abandon(
                    &EffectId::new(id),
                    at(NOW - 20_000),
                    "slack chat.postMessage: invalid_blocks",
                )?;
            }
            tx.fail(
                &EffectId::new("PINC2/post-1"),
                at(NOW - 5_000),
                at(NOW + 5_000),
                "slack chat.postMessage: not_in_channel",
            )?;
            tx.insert_unparsed_webhook(&NewUnparsedWebhook {
                webhook_id: Some(&WebhookId::new("W-GARBAGE")),
                body: b"\x00\xffnot json",
                error: "expected value at line 1 column 1",
                received_at: at(NOW - 30_000),
            })?;
            tx.note_unmapped(
                &SlackUserId::new("U0BOB"),
                "no PagerDuty user has the email bob@example.com",
                at(NOW - 2_000),
            )?;
            Ok::<_, store::Error>(())
        })
        .unwrap();
}

#[test]
fn status_reports_every_figure_the_operator_needs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pdbridge.db");
    seed(&path);
    let summary = read_summary(&path, at(NOW), 10).unwrap();
    let text = render(&summary, &path, at(NOW));
    for want in [
        "incidents tracked   3",
        "open cards          1 (1 open incidents without a card yet)",
        "outbox depth        2 (0 in flight, 1 retrying), oldest 4m12s",
        "last webhook        2025-11-24T15:57:00Z (3m00s ago)",
        "not yet processed   1 webhooks, 0 Slack actions",
        "unparsed webhooks   1 (signed deliveries whose body did not parse, kept raw in pd_unparsed):",
        "2025-11-24T15:59:30Z  #1 X-Webhook-Id W-GARBAGE, 10 bytes: expected value at line 1 column 1",
        "failed card posts   1 (Slack refused a card; pdbridge then posts a minimal one: see below)",
        "PINC1/card1  attempt 0 (gave up): slack chat.postMessage: invalid_blocks",
        "PINC2/post-1  attempt 1 (retrying): slack chat.postMessage: not_in_channel",
        "U0BOB  1 time(s), last 2025-11-24T15:59:58Z: no PagerDuty user has the email bob@example.com",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(text, render(&summary, &path, at(NOW)), "deterministic");
}

#[test]
fn an_empty_database_says_so_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(Store::open(&path).unwrap());
    let text = render(&read_summary(&path, at(NOW), 10).unwrap(), &path, at(NOW));
    assert!(text.contains("last webhook        never"), "{text}");
    assert!(text.contains("recent failures     none"), "{text}");
    assert!(text.contains("unparsed webhooks   none"), "{text}");
    assert!(text.contains("unmapped users      none"), "{text}");
    assert!(text.contains("outbox depth        0\n"), "{text}");
    assert!(text.contains("failed card posts   0\n"), "{text}");
}

#[test]
fn the_binary_reads_the_database_from_flag_env_or_config_and_fails_clearly() {
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pdbridge.db");
    seed(&path);
    let out = std::process::Command::new(bin)
        .args(["status", "--database"])
        .arg(&path)
        .env_remove("PDBRIDGE_DATABASE")
        .env_remove("PDBRIDGE_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("incidents tracked   3"));

    let config = dir.path().join("pdbridge.toml");
    std::fs::write(
        &config,
        format!("[server]\ndatabase = {:?}\n", path.display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["status", "--json", "--config"])
        .arg(&config)
        .env_remove("PDBRIDGE_DATABASE")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["incidents_tracked"], 3);
    assert_eq!(v["unmapped_users"][0]["slack_user"], "U0BOB");
    assert_eq!(v["unparsed_webhooks"], 1);
    assert_eq!(v["recent_unparsed"][0]["webhook_id"], "W-GARBAGE");

    let out = std::process::Command::new(bin)
        .args(["status"])
        .env("PDBRIDGE_DATABASE", dir.path().join("missing.db"))
        .env_remove("PDBRIDGE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.db"));
}
