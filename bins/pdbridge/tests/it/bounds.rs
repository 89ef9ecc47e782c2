//! The server's bounds: a full write queue answers 503 (never 4xx, never a pile-up), the engine
//! keeps only a bounded number of incidents in memory and loads the others back on demand, and
//! inbox records share the writer's group commit, in which a new delivery is also processed
//! unless an older one waits. Slow and stalled connections are cut (header and body deadlines,
//! idle keep-alive) and capped in number, and PagerDuty's deliveries are answered meanwhile. No
//! timing is asserted beyond generous bounds.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use pdbridge::app::{Options, build};
use pdbridge::bridge::{Bridge, Limits};
use pdbridge::http::App;
use sync_core::Input;
use tower::ServiceExt;

const SECRET: &str = "bounds-secret";

async fn service(dir: &tempfile::TempDir, limits: Limits) -> (App<Bridge>, Arc<Bridge>) {
    let config = common::offline_config(dir, &[SECRET]);
    let options = Options {
        limits,
        ..Options::default()
    };
    build(Arc::new(config), &options).await.unwrap()
}

/// A signed `incident.triggered` delivery for incident `incident`, event `event`.
fn triggered(incident: &str, event: &str) -> Request<Full<Bytes>> {
    let body = triggered_body(incident, event);
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(SECRET), &body);
    Request::post("/pagerduty/webhook")
        .header("content-type", "application/json")
        .header("x-pagerduty-signature", sig)
        .header("x-webhook-id", format!("wh-{event}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The recorded `incident.triggered` envelope with its event and incident ids replaced.
fn triggered_body(incident: &str, event: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pagerduty-webhooks/incident.triggered.json"
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["event"]["id"] = serde_json::json!(event);
    v["event"]["data"]["id"] = serde_json::json!(incident);
    serde_json::to_vec(&v).unwrap()
}

async fn unprocessed(bridge: &Bridge) -> usize {
    let store = Arc::clone(bridge.store());
    tokio::task::spawn_blocking(move || store.read(|tx| tx.unprocessed_webhooks(1000)))
        .await
        .unwrap()
        .unwrap()
        .len()
}

/// How many deliveries the inbox holds, processed or not (new ones are usually processed in
/// the transaction that stores them).
async fn stored(bridge: &Bridge) -> u64 {
    let store = Arc::clone(bridge.store());
    tokio::task::spawn_blocking(move || store.read(|tx| tx.webhook_count()))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_answers_503_not_4xx_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        write_queue: 1,
        ingest_wait: Duration::ZERO,
        ..Limits::default()
    };
    let (app, bridge) = service(&dir, limits).await;
    // Hold the writer: an input whose transaction waits for the test.
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new((entered_tx, release_rx)));
    let busy = {
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            bridge
                .apply(Input::Tick, move |_, _| {
                    let gate = gate.lock().unwrap();
                    let _ = gate.0.send(());
                    let _ = gate.1.recv();
                    Ok(())
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // A first delivery takes the only room in the queue and waits for the writer...
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.oneshot(triggered("PFULL00", "EFULL00")).await.unwrap() })
    };
    while bridge.write_queue_room() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...so the next one finds the queue full: 503, which PagerDuty retries.
    let resp = app
        .clone()
        .oneshot(triggered("PFULL01", "EFULL01"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    release_tx.send(()).unwrap();
    busy.await.unwrap().unwrap();
    assert_eq!(first.await.unwrap().status(), StatusCode::ACCEPTED);
    // Nothing was written for the refused delivery.
    assert_eq!(stored(&bridge).await, 1);
    // With room again, PagerDuty's retry of the same delivery is accepted, then deduplicated.
    let resp = app
        .clone()
        .oneshot(triggered("PFULL01", "EFULL01"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = app
        .clone()
        .oneshot(triggered("PFULL01", "EFULL01"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(stored(&bridge).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_share_group_commits_and_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (app, bridge) = service(&dir, Limits::default()).await;
    let before = bridge.commit_groups();
    let mut tasks = Vec::new();
    for n in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.oneshot(triggered(&format!("PGRP{n:04}"), &format!("EGRP{n:04}")))
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::ACCEPTED);
    }
    // Every acknowledged delivery is committed, in at most one transaction each.
    assert_eq!(stored(&bridge).await, 200);
    assert!(bridge.commit_groups() - before <= 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_a_bounded_number_of_incidents_and_loads_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        loaded_incidents: 4,
        ..Limits::default()
    };
    let (app, bridge) = service(&dir, limits).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let inbox = tokio::spawn(pdbridge::runtime::inbox_loop(Arc::clone(&bridge), stop_rx));
    for n in 0..12 {
        let resp = app
            .clone()
            .oneshot(triggered(&format!("PMEM{n:04}"), &format!("EMEM{n:04}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    while unprocessed(&bridge).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each new incident waits for its card post (Slack is down here): no timer, so it may
    // leave memory; its state and its post stay in the store.
    bridge.unload_idle_over_limit();
    let loaded = bridge.with_engine(|e| e.incidents().count());
    assert!(loaded <= 4, "{loaded} incidents loaded");
    let store = Arc::clone(bridge.store());
    let (stored, pending) = tokio::task::spawn_blocking(move || {
        store.read(|tx| {
            Ok::<_, store::Error>((tx.incidents()?.len(), tx.pending_effects(1000)?.len()))
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stored, 12);
    assert_eq!(pending, 12, "one card post per incident");
    // A redelivery of an unloaded incident's trigger meets its stored state: no second post.
    let unloaded = (0..12)
        .map(|n| ids::IncidentId::new(format!("PMEM{n:04}")))
        .find(|id| bridge.with_engine(|e| e.incident(id).is_none()))
        .expect("some incident was unloaded");
    let resp = app
        .clone()
        .oneshot(triggered(unloaded.as_str(), "EMEMREDELIVERED"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    while unprocessed(&bridge).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = Arc::clone(bridge.store());
    let pending = tokio::task::spawn_blocking(move || {
        store.read(|tx| tx.pending_effects(1000).map(|p| p.len()))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pending, 12, "the redelivery must not post a second card");
    let _ = stop_tx.send(true);
    inbox.await.unwrap();
}

/// The effects waiting in the outbox.
async fn pending_effects(bridge: &Bridge) -> Vec<store::OutboxRow> {
    let store = Arc::clone(bridge.store());
    tokio::task::spawn_blocking(move || store.read(|tx| tx.pending_effects(1000)))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_delivery_is_processed_in_the_transaction_that_stores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (app, bridge) = service(&dir, Limits::default()).await;
    // No inbox loop runs here: whatever is processed was processed by the writer.
    let resp = app
        .clone()
        .oneshot(triggered("PINLINE0", "EINLINE0"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(stored(&bridge).await, 1);
    assert_eq!(unprocessed(&bridge).await, 0);
    let id = ids::IncidentId::new("PINLINE0");
    assert!(bridge.with_engine(|e| e.incident(&id).is_some()));
    let pending = pending_effects(&bridge).await;
    assert_eq!(
        pending.len(),
        1,
        "the card post is committed with the delivery"
    );
    assert!(pending[0].id.as_str().starts_with("PINLINE0/"));
    assert!(pending[0].payload.as_str().starts_with(r#"{"post_card":"#));
}

/// Stores an older delivery left unprocessed (say, by a crash before the inbox loop reached it).
async fn store_older_unprocessed(bridge: &Bridge) {
    let store = Arc::clone(bridge.store());
    tokio::task::spawn_blocking(move || {
        store.write(|tx| {
            tx.insert_webhook(&store::NewWebhook {
                webhook_id: None,
                event_id: &ids::EventId::new("EOLDER"),
                event_type: "incident.triggered",
                incident_id: Some(&ids::IncidentId::new("POLDER")),
                payload: "{}",
                received_at: ids::Timestamp::from_millis(1),
            })
        })
    })
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_delivery_waits_behind_an_older_unprocessed_one() {
    let dir = tempfile::tempdir().unwrap();
    let (app, bridge) = service(&dir, Limits::default()).await;
    store_older_unprocessed(&bridge).await;
    let resp = app
        .clone()
        .oneshot(triggered("PNEWER", "ENEWER"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Both wait for the inbox loop, which feeds them to the engine in arrival order.
    assert_eq!(unprocessed(&bridge).await, 2);
    let id = ids::IncidentId::new("PNEWER");
    assert!(bridge.with_engine(|e| e.incident(&id).is_none()));
    assert!(pending_effects(&bridge).await.is_empty());
}

/// A delivery acknowledged without being processed (here behind an older one) keeps the input
/// its request parsed for the inbox loop, which does not parse the stored body again (issue
/// 18): with that body spoiled after the answer, the incident still reaches the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_loop_takes_the_input_the_request_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let (app, bridge) = service(&dir, Limits::default()).await;
    store_older_unprocessed(&bridge).await;
    let resp = app
        .clone()
        .oneshot(triggered("PKEPT", "EKEPT"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let db = rusqlite::Connection::open(dir.path().join("db.sqlite")).unwrap();
    let spoiled = db
        .execute(
            "UPDATE pd_inbox SET payload = 'spoiled' WHERE event_id = 'EKEPT'",
            [],
        )
        .unwrap();
    assert_eq!(spoiled, 1);
    drop(db);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let inbox = tokio::spawn(pdbridge::runtime::inbox_loop(Arc::clone(&bridge), stopped));
    let started = std::time::Instant::now();
    while unprocessed(&bridge).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the inbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    inbox.await.unwrap();
    let id = ids::IncidentId::new("PKEPT");
    assert!(bridge.with_engine(|e| e.incident(&id).is_some()));
}

/// A backlog of many inbox batches (left by a crash, an outage or a burst answered before it was
/// processed) drains batch after batch: the inbox loop takes the next full batch at once instead
/// of sleeping until a new delivery or its one-second idle tick wakes it (at 64 rows a second, a
/// 100k backlog took 26 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_many_batches_drains_without_waiting_for_idle_ticks() {
    const ROWS: usize = 10 * 64 + 1;
    let dir = tempfile::tempdir().unwrap();
    let (_app, bridge) = service(&dir, Limits::default()).await;
    let store = Arc::clone(bridge.store());
    tokio::task::spawn_blocking(move || {
        store.write(|tx| {
            for n in 0..ROWS {
                let body = triggered_body(&format!("PBACKLOG{n}"), &format!("EBACKLOG{n}"));
                let body = String::from_utf8(body).unwrap();
                tx.insert_webhook(&store::NewWebhook {
                    webhook_id: Some(&ids::WebhookId::new(format!("wh-backlog-{n}"))),
                    event_id: &ids::EventId::new(format!("EBACKLOG{n}")),
                    event_type: "incident.triggered",
                    incident_id: Some(&ids::IncidentId::new(format!("PBACKLOG{n}"))),
                    payload: &body,
                    received_at: ids::Timestamp::from_millis(1),
                })?;
            }
            Ok::<_, store::Error>(())
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(unprocessed(&bridge).await, ROWS);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let inbox = tokio::spawn(pdbridge::runtime::inbox_loop(Arc::clone(&bridge), stopped));
    // Ten full batches: waiting for the idle tick between them would take at least 10 s.
    while unprocessed(&bridge).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} of {ROWS} rows still unprocessed after {:?}",
            unprocessed(&bridge).await,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{ROWS} rows processed in {:?}", started.elapsed());
    stop.send(true).unwrap();
    inbox.await.unwrap();
}

/// Starts a real server on loopback with the given connection bounds; the loops run too.
async fn listening(
    dir: &tempfile::TempDir,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
) -> pdbridge::app::Running {
    let mut config = common::offline_config(dir, &[SECRET]);
    config.server.header_read_timeout = header_read_timeout;
    config.server.body_read_timeout = body_read_timeout;
    config.server.max_connections = max_connections;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    pdbridge::app::start(config, listener, Options::default())
        .await
        .unwrap()
}

/// A connection that sent part of a request head and then stalls.
async fn stalled(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /pagerduty/webhook HTTP/1.1\r\nHost: pdbridge\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection (EOF or reset); panics after `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes a stalled connection");
}

/// Sends a signed delivery on a fresh keep-alive connection; returns its status and the
/// connection's driver, which ends when the server closes the connection.
async fn deliver(
    addr: std::net::SocketAddr,
    incident: &str,
    event: &str,
) -> (StatusCode, tokio::task::JoinHandle<()>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = triggered(incident, event);
    req.headers_mut()
        .insert(http::header::HOST, "pdbridge".parse().unwrap());
    let resp = sender.send_request(req).await.unwrap();
    (resp.status(), driver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_connections_are_cut_and_pagerduty_is_answered_meanwhile() {
    // Each stalled connection costs two descriptors here (client and server side).
    let limit = rlimit::increase_nofile_limit(8192).unwrap_or(1024);
    let n = usize::try_from(limit.saturating_sub(256) / 2)
        .unwrap_or(usize::MAX)
        .min(1000);
    if n < 1000 {
        eprintln!("RLIMIT_NOFILE is {limit}: opening {n} stalled connections instead of 1000");
    }
    let dir = tempfile::tempdir().unwrap();
    let header_timeout = Duration::from_secs(5);
    let running = listening(
        &dir,
        header_timeout,
        Duration::from_secs(10),
        pdbridge::server::DEFAULT_MAX_CONNECTIONS,
    )
    .await;
    let mut slow = Vec::with_capacity(n);
    for _ in 0..n {
        slow.push(stalled(running.addr).await);
    }
    // PagerDuty's delivery is answered while they are open, well within its 5 s.
    let (status, idle) = tokio::time::timeout(
        Duration::from_millis(4500),
        deliver(running.addr, "PSLOW01", "ESLOW01"),
    )
    .await
    .expect("a delivery is answered while stalled connections are open");
    assert_eq!(status, StatusCode::ACCEPTED);
    // Every stalled connection is closed by the header deadline, and so is the delivery's
    // connection once it has been idle that long.
    for stream in &mut slow {
        closed_by_server(stream, Duration::from_secs(60)).await;
    }
    tokio::time::timeout(Duration::from_secs(60), idle)
        .await
        .expect("an idle keep-alive connection is closed")
        .unwrap();
    running.abort().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_limit_waits_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let running = listening(&dir, Duration::from_secs(120), Duration::from_secs(120), 2).await;
    let first = stalled(running.addr).await;
    let _second = stalled(running.addr).await;
    let third = tokio::spawn(deliver(running.addr, "PLIMIT1", "ELIMIT1"));
    // Both slots are held: the delivery is not served...
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served over the limit of 2"
    );
    // ...until a slot frees.
    drop(first);
    let (status, _) = tokio::time::timeout(Duration::from_secs(30), third)
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    running.abort().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_answered_408_and_nothing_is_stored() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let running = listening(&dir, Duration::from_secs(120), Duration::from_secs(1), 16).await;
    let body = triggered_body("PBODY01", "EBODY01");
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(SECRET), &body);
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "POST /pagerduty/webhook HTTP/1.1\r\nHost: pdbridge\r\nContent-Type: application/json\r\n\
         X-PagerDuty-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the body deadline answers and closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(stored(&running.bridge).await, 0);
    running.abort().await;
}
