//! `pdbridge check` against the in-process fake Slack and fake PagerDuty, on loopback only.
//!
//! The fakes do not serve three things `check` reads (PagerDuty's `GET /users/me`,
//! `GET /services/{id}`, `GET /teams/{id}`, and Slack's `x-oauth-scopes` header), so each test
//! puts a small loopback "front" before a fake: it answers those few requests itself, as the real
//! platform would, and forwards everything else to the fake unchanged.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use fakes::http::{RecordedRequest, Reply, Server};
use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeSlack};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pdbridge::config::Config;
use pdbridge::ops::check::{CheckOptions, Mark, Report, check, check_config};
use pdbridge::ops::manifest::{BOT_SCOPES, PublicUrl};
use serde_json::{Value, json};

/// What a front does with one request.
enum Front {
    /// Answer it here.
    Answer(Reply),
    /// Forward it upstream and add these headers to the answer.
    Forward(Vec<(&'static str, String)>),
}

type Rule = Arc<dyn Fn(&RecordedRequest) -> Front + Send + Sync>;

async fn front(upstream: String, rule: Rule) -> Server {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let handler: fakes::http::Handler = Arc::new(move |req: RecordedRequest| {
        let rule = Arc::clone(&rule);
        let client = client.clone();
        let upstream = upstream.clone();
        Box::pin(async move {
            let extra = match rule(&req) {
                Front::Answer(reply) => return reply,
                Front::Forward(extra) => extra,
            };
            let uri = match &req.query {
                Some(q) => format!("{upstream}{}?{q}", req.path),
                None => format!("{upstream}{}", req.path),
            };
            let mut out = http::Request::builder().method(req.method.clone()).uri(uri);
            for (name, value) in &req.headers {
                if name != http::header::HOST {
                    out = out.header(name, value);
                }
            }
            let out = out.body(Full::new(req.body.clone())).unwrap();
            let resp = client.request(out).await.unwrap();
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let mut reply = Reply {
                response: http::Response::from_parts(parts, Full::new(bytes)),
                delay: None,
            };
            for (name, value) in extra {
                reply = reply.with_header(name, value);
            }
            reply
        }) as Pin<Box<dyn Future<Output = Reply> + Send>>
    });
    Server::spawn(handler).await.unwrap()
}

/// The PagerDuty side: account-level token, one service and one team, unless told otherwise.
fn pd_rule(user_me: Option<Value>, team_status: u16) -> Rule {
    Arc::new(move |req: &RecordedRequest| match req.path.as_str() {
        "/users/me" => match &user_me {
            Some(user) => Front::Answer(Reply::json(StatusCode::OK, &json!({ "user": user }))),
            None => Front::Forward(Vec::new()),
        },
        "/services/PSVC001" => Front::Answer(Reply::json(
            StatusCode::OK,
            &json!({"service": {"id": "PSVC001", "name": "Payments API"}}),
        )),
        p if p.starts_with("/services/") => Front::Answer(Reply::json(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": 2100, "message": "Not Found"}}),
        )),
        "/teams/PTEAM01" => Front::Answer(Reply::json(
            StatusCode::from_u16(team_status).unwrap(),
            &json!({"team": {"id": "PTEAM01", "name": "Payments"}}),
        )),
        _ => Front::Forward(Vec::new()),
    })
}

/// The Slack side: `auth.test` gains the `x-oauth-scopes` header with `scopes`.
fn slack_rule(scopes: Option<String>) -> Rule {
    Arc::new(move |req: &RecordedRequest| match &scopes {
        Some(s) if req.path == "/api/auth.test" => {
            Front::Forward(vec![("x-oauth-scopes", s.clone())])
        }
        _ => Front::Forward(Vec::new()),
    })
}

struct World {
    pd: FakePagerDuty,
    slack: FakeSlack,
    pd_front: Server,
    slack_front: Server,
}

async fn world(user_me: Option<Value>, team_status: u16, scopes: Option<String>) -> World {
    let pd = FakePagerDuty::start().await;
    pd.add_user("PALICE1", "Alice Ng", "alice@example.com");
    pd.add_user("PADMIN1", "Ada Admin", "ada@example.com");
    let slack = FakeSlack::start().await;
    slack.add_channel(FakeChannel::new("C0PAY", "payments-incidents", &[]));
    slack.add_channel(FakeChannel::new("C0ALL", "incidents", &[]));
    let pd_front = front(pd.url(), pd_rule(user_me, team_status)).await;
    let slack_front = front(slack.url(), slack_rule(scopes)).await;
    World {
        pd,
        slack,
        pd_front,
        slack_front,
    }
}

fn all_scopes() -> Option<String> {
    Some(BOT_SCOPES.join(","))
}

impl World {
    fn toml(&self, extra: &str) -> String {
        format!(
            r#"
[pagerduty]
api_url = "{pd}"
token = "account-token"
webhook_secrets = ["whsec"]

[slack]
api_url = "{slack}/api"
bot_token = "{token}"
signing_secret = "signsecret"
default_channel = "C0ALL"

[[route]]
channel = "C0PAY"
services = ["PSVC001"]
teams = ["PTEAM01"]

[[identity]]
slack_user = "U0ALICE"
pd_email = "alice@example.com"

[policy]
admins = ["PADMIN1"]
{extra}
"#,
            pd = self.pd_front.url(),
            slack = self.slack_front.url(),
            token = self.slack.token(),
        )
    }

    fn config(&self, extra: &str) -> Config {
        Config::from_toml_str(&self.toml(extra), &BTreeMap::new()).unwrap()
    }

    async fn run(&self, extra: &str, options: &CheckOptions) -> Report {
        let config = self.config(extra);
        let (config, line) = check_config_from(&config);
        check(&config, line, options).await
    }

    async fn subscribe(&self) {
        let client =
            pdbridge::ops::pd_client(url::Url::parse(&self.pd.url()).unwrap(), "account-token")
                .unwrap();
        pdbridge::ops::subscribe::subscribe(
            &client,
            &public(),
            &pdbridge::ops::subscribe::Scope::Account,
            false,
        )
        .await
        .unwrap();
    }
}

fn check_config_from(config: &Config) -> (Config, pdbridge::ops::check::Line) {
    (
        config.clone(),
        pdbridge::ops::check::Line {
            mark: Mark::Pass,
            subject: "configuration".to_owned(),
            detail: "test".to_owned(),
            fix: None,
        },
    )
}

fn public() -> PublicUrl {
    PublicUrl::parse("https://pd.example.com").unwrap()
}

fn options() -> CheckOptions {
    CheckOptions {
        public_url: Some(public()),
        from: Some(ids::Email::new("alice@example.com")),
    }
}

fn mark(report: &Report, subject: &str) -> Mark {
    report
        .line(subject)
        .unwrap_or_else(|| panic!("no line {subject:?} in\n{}", report.render()))
        .mark
}

fn fails_with(report: &Report, subject: &str, needle: &str) {
    let line = report
        .line(subject)
        .unwrap_or_else(|| panic!("no line {subject:?} in\n{}", report.render()));
    assert_eq!(line.mark, Mark::Fail, "{}", report.render());
    assert!(
        line.detail.contains(needle),
        "{subject}: {:?} lacks {needle:?}",
        line.detail
    );
    assert!(line.fix.as_ref().is_some_and(|f| !f.is_empty()));
    assert!(report.failed());
    assert!(report.render().contains("fix: "));
}

#[tokio::test]
async fn a_correct_setup_passes_every_line() {
    let w = world(None, 200, all_scopes()).await;
    w.subscribe().await;
    let report = w.run("", &options()).await;
    let text = report.render();
    assert!(!report.failed(), "{text}");
    for subject in [
        "PagerDuty token",
        "From user",
        "[[identity]] U0ALICE",
        "[policy] admin",
        "[[route]] service PSVC001",
        "[[route]] team PTEAM01",
        "PagerDuty webhook subscription",
        "Slack bot token",
        "Slack scopes",
        "channel C0PAY",
        "channel C0ALL",
    ] {
        assert_eq!(mark(&report, subject), Mark::Pass, "{subject}\n{text}");
    }
    assert!(
        text.contains("✓ channel C0PAY: #payments-incidents"),
        "{text}"
    );
    assert!(text.ends_with("All checks passed.\n"), "{text}");
    for secret in [
        "account-token",
        "whsec",
        "signsecret",
        w.slack.token().as_str(),
    ] {
        assert!(!text.contains(secret), "the report shows a secret");
    }
}

#[tokio::test]
async fn without_url_and_from_those_lines_are_skipped_not_failed() {
    let w = world(None, 200, all_scopes()).await;
    let report = w.run("", &CheckOptions::default()).await;
    assert_eq!(mark(&report, "From user"), Mark::Skip);
    assert_eq!(mark(&report, "PagerDuty webhook subscription"), Mark::Skip);
    assert!(!report.failed(), "{}", report.render());
}

#[tokio::test]
async fn a_user_level_token_is_a_failure() {
    let me = json!({"id": "PALICE1", "name": "Alice Ng", "email": "alice@example.com"});
    let w = world(Some(me), 200, all_scopes()).await;
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty token", "user-level token of Alice Ng");
}

#[tokio::test]
async fn a_refused_token_stops_the_pagerduty_checks() {
    let w = world(None, 200, all_scopes()).await;
    w.pd.set_api_tokens(&["some-other-token"]);
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty token", "401");
    assert!(report.line("From user").is_none());
    assert_eq!(mark(&report, "Slack bot token"), Mark::Pass);
}

#[tokio::test]
async fn unreachable_pagerduty_is_a_failure() {
    let w = world(None, 200, all_scopes()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = w
        .toml("")
        .replace(&w.pd_front.url(), &format!("http://127.0.0.1:{port}"));
    let config = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
    let (config, line) = check_config_from(&config);
    let report = check(&config, line, &options()).await;
    fails_with(&report, "PagerDuty token", "unreachable");
}

#[tokio::test]
async fn unknown_people_services_and_unreadable_teams_fail_with_their_fix() {
    let w = world(None, 403, all_scopes()).await;
    w.subscribe().await;
    let text = w
        .toml("")
        .replace("alice@example.com", "alicia@example.com")
        .replace("PADMIN1", "PNOBODY")
        .replace("PSVC001", "PSVC404");
    let config = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
    let (config, line) = check_config_from(&config);
    let options = CheckOptions {
        public_url: Some(public()),
        from: Some(ids::Email::new("nobody@example.com")),
    };
    let report = check(&config, line, &options).await;
    fails_with(&report, "From user", "nobody@example.com");
    fails_with(&report, "[[identity]] U0ALICE", "alicia@example.com");
    fails_with(&report, "[policy] admin", "PNOBODY");
    fails_with(&report, "[[route]] service PSVC404", "never matches");
    fails_with(&report, "[[route]] team PTEAM01", "403");
}

#[tokio::test]
async fn missing_disabled_and_incomplete_subscriptions_fail() {
    let w = world(None, 200, all_scopes()).await;
    let report = w.run("", &options()).await;
    fails_with(
        &report,
        "PagerDuty webhook subscription",
        "no subscription delivers to https://pd.example.com/pagerduty/webhook",
    );

    let id =
        w.pd.set_webhook_target("https://pd.example.com/pagerduty/webhook", "s");
    w.pd.disable_subscription(&id);
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty webhook subscription", "disabled");

    let client =
        pdbridge::ops::pd_client(url::Url::parse(&w.pd.url()).unwrap(), "account-token").unwrap();
    client
        .create_webhook_subscription(pd_client::rest::NewWebhookSubscription::new(
            "https://pd.example.com/pagerduty/webhook",
            "partial",
            vec![pd_client::webhook::EventType::IncidentTriggered],
            pd_client::rest::SubscriptionFilter {
                kind: "account_reference".to_owned(),
                id: None,
            },
        ))
        .await
        .unwrap();
    let report = w.run("", &options()).await;
    fails_with(
        &report,
        "PagerDuty webhook subscription",
        "without incident.acknowledged",
    );
}

#[tokio::test]
async fn a_wrong_slack_token_stops_the_slack_checks() {
    let w = world(None, 200, all_scopes()).await;
    let text = w.toml("").replace(&w.slack.token(), "xoxb-wrong");
    let config = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
    let (config, line) = check_config_from(&config);
    let report = check(&config, line, &options()).await;
    fails_with(&report, "Slack bot token", "invalid_auth");
    assert!(report.line("Slack scopes").is_none());
}

#[tokio::test]
async fn missing_or_unreported_scopes_fail_and_extra_scopes_are_named() {
    let partial: Vec<&str> = BOT_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "users:read.email")
        .collect();
    let w = world(None, 200, Some(partial.join(","))).await;
    fails_with(
        &w.run("", &options()).await,
        "Slack scopes",
        "missing users:read.email",
    );

    let w = world(None, 200, None).await;
    fails_with(
        &w.run("", &options()).await,
        "Slack scopes",
        "x-oauth-scopes",
    );

    let w = world(
        None,
        200,
        Some(format!("{},channels:history", BOT_SCOPES.join(","))),
    )
    .await;
    let report = w.run("", &options()).await;
    assert_eq!(mark(&report, "Slack scopes"), Mark::Pass);
    assert!(
        report
            .line("Slack scopes")
            .unwrap()
            .detail
            .contains("channels:history")
    );
}

#[tokio::test]
async fn workspace_mismatch_fails() {
    let w = world(None, 200, all_scopes()).await;
    let text = w.toml("").replace(
        "default_channel = \"C0ALL\"",
        "default_channel = \"C0ALL\"\nteam_id = \"T0OTHER\"",
    );
    let config = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
    let (config, line) = check_config_from(&config);
    let report = check(&config, line, &options()).await;
    fails_with(&report, "Slack workspace", "T0OTHER");
}

#[tokio::test]
async fn archived_unjoined_and_unknown_channels_fail() {
    let w = world(None, 200, all_scopes()).await;
    w.slack.set_archived(&ids::ChannelId::new("C0PAY"), true);
    let mut private = FakeChannel::new("C0ALL", "incidents", &[]);
    private.bot_is_member = false;
    w.slack.add_channel(private);
    let report = w.run("", &options()).await;
    fails_with(&report, "channel C0PAY", "archived");
    fails_with(&report, "channel C0ALL", "not a member");
    assert!(
        report
            .line("channel C0ALL")
            .unwrap()
            .fix
            .as_ref()
            .unwrap()
            .contains("/invite @pdbridge")
    );

    let text = w.toml("").replace("\"C0PAY\"", "\"C0GONE\"");
    let config = Config::from_toml_str(&text, &BTreeMap::new()).unwrap();
    let (config, line) = check_config_from(&config);
    let report = check(&config, line, &options()).await;
    fails_with(&report, "channel C0GONE", "no such channel");
}

#[test]
fn an_invalid_configuration_is_one_failure_naming_the_key() {
    let env = BTreeMap::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten_port = 1\n").unwrap();
    let report = check_config(Some(&path), &env).unwrap_err();
    assert_eq!(report.lines().count(), 1);
    fails_with(&report, "configuration", "server.listen_port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_zero_when_all_pass_and_one_on_any_failure() {
    let w = world(None, 200, all_scopes()).await;
    w.subscribe().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, w.toml("")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, w.toml("").replace("PSVC001", "PSVC404")).unwrap();
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let run = |config: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(bin);
            cmd.args([
                "check",
                "--url",
                "https://pd.example.com",
                "--from",
                "alice@example.com",
            ])
            .arg("--config")
            .arg(config);
            for var in [
                "PDBRIDGE_CONFIG",
                "PAGERDUTY_API_URL",
                "PAGERDUTY_TOKEN",
                "PAGERDUTY_TOKEN_FILE",
                "PAGERDUTY_WEBHOOK_SECRETS",
                "PAGERDUTY_WEBHOOK_SECRETS_FILE",
                "SLACK_API_URL",
                "SLACK_BOT_TOKEN",
                "SLACK_BOT_TOKEN_FILE",
                "SLACK_SIGNING_SECRET",
                "SLACK_SIGNING_SECRET_FILE",
                "SLACK_DEFAULT_CHANNEL",
                "SLACK_TEAM_ID",
            ] {
                cmd.env_remove(var);
            }
            cmd.output().unwrap()
        })
    };
    let out = run(good).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✓ PagerDuty token"), "{stdout}");
    let out = run(bad).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✗ [[route]] service PSVC404"), "{stdout}");
}
