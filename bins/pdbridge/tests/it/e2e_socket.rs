//! End to end: Slack Socket Mode (`slack.mode = "socket"`). The real server opens its
//! connections to the fake Slack's Socket Mode server and takes each envelope through the same
//! intake as the HTTP path; PagerDuty reaches it by webhook as usual.

use std::time::{Duration, Instant};

use fakes::pd::{FakePagerDuty, Status as PdStatus};
use fakes::slack::socket::APP_TOKEN;
use fakes::slack::{FakeChannel, FakeMessage, FakeSlack, FakeSocketMode, FakeUser};
use ids::{ChannelId, EscalationPolicyId, IncidentId, SlackUserId};
use pdbridge::app::{Options, Running};
use pdbridge::world::{self, WorldConfig};
use sync_core::EngineConfig;
use tokio::net::TcpListener;

const WEBHOOK_SECRET: &str = "e2e-pd-webhook-secret";
const CHANNEL: &str = "C0INCIDENTS";
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    pd: FakePagerDuty,
    slack: FakeSlack,
    _dir: tempfile::TempDir,
    policy: EscalationPolicyId,
    running: Running,
}

impl Env {
    async fn new() -> Self {
        let pd = FakePagerDuty::start().await;
        let slack = FakeSlack::start().await;
        slack.add_user(FakeUser::new("U1ALICE", "alice", "alice@example.com"));
        slack.add_channel(FakeChannel::new(CHANNEL, "incidents", &["U1ALICE"]));
        let alice = pd.add_user("PALICE", "Alice Example", "alice@example.com");
        let policy = pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice]]);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdbridge.db");
        let extra = format!("mode = \"socket\"\napp_token = \"{APP_TOKEN}\"\n");
        let config = WorldConfig {
            database: Some(&db),
            server: "reconcile_interval_secs = 3600",
            webhook_secrets: &[WEBHOOK_SECRET],
            default_channel: CHANNEL,
            extra: &extra,
            ..WorldConfig::for_fakes(&pd, &slack)
        }
        .config()
        .unwrap();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let options = Options {
            engine: EngineConfig {
                retry_backoff: vec![Duration::from_millis(100), Duration::from_millis(200)],
                coalesce_window: Duration::from_millis(50),
                ..EngineConfig::default()
            },
            ..Options::default()
        };
        let running = world::start(config, listener, options, &pd, WEBHOOK_SECRET)
            .await
            .unwrap();
        Self {
            pd,
            slack,
            _dir: dir,
            policy,
            running,
        }
    }

    fn sock(&self) -> &FakeSocketMode {
        self.slack.socket()
    }

    async fn card(&self, title: &str) -> FakeMessage {
        let mut found = None;
        wait("the card", || {
            found = self
                .slack
                .messages(&ChannelId::new(CHANNEL))
                .into_iter()
                .find(|m| m.thread_ts.is_none() && m.text.contains(title));
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    /// Sends a click on `action_id` of `card` over the socket and returns its envelope id.
    fn click(&self, card: &FakeMessage, action_id: &str) -> String {
        let payload = self
            .slack
            .block_actions_payload(
                &SlackUserId::new("U1ALICE"),
                &ChannelId::new(CHANNEL),
                &card.ts,
                action_id,
                None,
            )
            .unwrap();
        self.sock().send_interactive(payload)
    }

    fn mutations(&self, incident: &IncidentId) -> usize {
        self.pd
            .requests()
            .into_iter()
            .filter(|r| {
                (r.method == http::Method::PUT || r.method == http::Method::POST)
                    && r.path.starts_with(&format!("/incidents/{incident}"))
            })
            .count()
    }

    async fn healthz(&self) -> String {
        let url = format!("http://{}/healthz", self.running.addr);
        let (status, _) = get(&url).await;
        status.to_string()
    }
}

async fn get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_click_over_the_socket_acts_as_over_http() {
    let env = Env::new().await;
    let conns = env
        .sock()
        .wait_connections(2, WAIT)
        .await
        .expect("two connections");
    assert_eq!(conns.len(), 2);
    assert_eq!(env.healthz().await, "200");
    let incident = env.pd.trigger_incident("Socket: disk full", &env.policy);
    let card = env.card("Socket: disk full").await;

    let envelope = env.click(&card, "pdbridge_ack");
    env.sock()
        .wait_ack(&envelope, WAIT)
        .await
        .expect("the click is acknowledged");
    wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(env.mutations(&incident), 1);

    // The ack of a button click carries no payload, as the HTTP answer has an empty body.
    let ack = env.sock().wait_ack(&envelope, WAIT).await.unwrap();
    assert_eq!(ack.payload, None);
    let from: Vec<String> = env
        .pd
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::PUT)
        .filter_map(|r| r.header("from").map(str::to_owned))
        .collect();
    assert_eq!(from, ["alice@example.com"]);
    env.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unacknowledged_envelope_redelivered_is_acted_on_once() {
    let env = Env::new().await;
    let conns = env.sock().wait_connections(2, WAIT).await.unwrap();
    let incident = env.pd.trigger_incident("Socket: redelivery", &env.policy);
    let card = env.card("Socket: redelivery").await;
    let envelope = env.click(&card, "pdbridge_ack");
    env.sock().wait_ack(&envelope, WAIT).await.unwrap();
    // The same envelope again, as Slack resends one whose ack it did not see.
    assert!(env.sock().resend(&envelope));
    wait("two acks of the envelope", || {
        env.sock()
            .acks()
            .iter()
            .filter(|a| a.envelope_id == envelope)
            .count()
            == 2
    })
    .await;
    wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.mutations(&incident),
        1,
        "the redelivered click acted twice"
    );
    assert_eq!(conns.len(), 2);
    env.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_mid_stream_loses_nothing_and_repeats_nothing() {
    let env = Env::new().await;
    let conns = env.sock().wait_connections(2, WAIT).await.unwrap();
    let incident = env.pd.trigger_incident("Socket: refresh", &env.policy);
    let card = env.card("Socket: refresh").await;
    let mut sent = vec![env.sock().send_slash_command(&help(&env))];
    assert!(env.sock().disconnect(conns[0], "refresh_requested"));
    // The next connection opens while the old one is still open.
    let now = env
        .sock()
        .wait_connections(2, WAIT)
        .await
        .expect("a replacement");
    assert!(!now.contains(&conns[0]));
    assert!(env.sock().connections().contains(&conns[0]) || env.sock().opened() >= 3);
    sent.push(env.click(&card, "pdbridge_ack"));
    sent.push(env.sock().send_slash_command(&help(&env)));
    for id in &sent {
        env.sock()
            .wait_ack(id, WAIT)
            .await
            .expect("every envelope acknowledged");
    }
    wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    env.sock().close(conns[0]);
    assert!(env.sock().wait_closed(conns[0], WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.mutations(&incident), 1);
    for id in &sent {
        let n = env
            .sock()
            .acks()
            .iter()
            .filter(|a| &a.envelope_id == id)
            .count();
        assert_eq!(n, 1, "{id} acknowledged {n} times");
    }
    // The slash command's answer travels in the ack, as over HTTP in the response body.
    let ack = env.sock().wait_ack(&sent[0], WAIT).await.unwrap();
    assert!(ack.payload.is_some(), "{ack:?}");
    // Still two connections after the old one closed.
    assert_eq!(env.sock().wait_connections(2, WAIT).await.unwrap().len(), 2);
    env.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_socket_is_reopened_and_healthz_says_so() {
    let env = Env::new().await;
    let conns = env.sock().wait_connections(2, WAIT).await.unwrap();
    for c in &conns {
        env.sock().drop_connection(*c);
    }
    for c in &conns {
        assert!(env.sock().wait_closed(*c, WAIT).await);
    }
    // An envelope sent while no connection is open waits for the next one.
    let incident = env.pd.trigger_incident("Socket: dropped", &env.policy);
    let card = env.card("Socket: dropped").await;
    let envelope = env.click(&card, "pdbridge_ack");
    let reopened = env
        .sock()
        .wait_connections(2, WAIT)
        .await
        .expect("reconnected");
    assert!(reopened.iter().all(|c| !conns.contains(c)));
    env.sock().wait_ack(&envelope, WAIT).await.unwrap();
    wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    assert_eq!(env.healthz().await, "200");
    let (_, metrics) = get(&format!("http://{}/metrics", env.running.addr)).await;
    assert!(
        metrics.contains("pdbridge_slack_sockets_connected 2"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("pdbridge_slack_socket_reconnects_total 0"),
        "{metrics}"
    );
    env.running.shutdown().await.unwrap();
}

fn help(env: &Env) -> Vec<(String, String)> {
    let form = env.slack.slash_command_form(
        &SlackUserId::new("U1ALICE"),
        &ChannelId::new(CHANNEL),
        "/pd",
        "help",
    );
    serde_urlencoded::from_bytes(&form).unwrap()
}
