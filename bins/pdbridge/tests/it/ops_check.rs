//! `pdbridge check` against the in-process fake Slack and fake PagerDuty, on loopback only.
//!
//! The fakes serve everything `check` reads (PagerDuty's `GET /users/me` per token kind,
//! `GET /services/{id}`, `GET /teams/{id}`, scoped OAuth tokens; Slack's `x-oauth-scopes` header on
//! `auth.test`), so each ✗ is produced by changing the fakes' state, never by a stand-in server.

use std::collections::BTreeMap;
use std::time::Duration;

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeSlack};
use ids::PdUserId;
use pdbridge::config::Config;
use pdbridge::ops::check::{CheckOptions, Mark, Report, check, check_config};
use pdbridge::ops::manifest::{BOT_SCOPES, PublicUrl};
use pdbridge::world::WorldConfig;

struct World {
    pd: FakePagerDuty,
    slack: FakeSlack,
}

/// PagerDuty with two users, team PTEAM01 and service PSVC001 (on that team); Slack with two
/// channels and exactly the needed scopes.
async fn world() -> World {
    let pd = FakePagerDuty::start().await;
    pd.add_user("PALICE1", "Alice Ng", "alice@example.com");
    pd.add_user("PADMIN1", "Ada Admin", "ada@example.com");
    let team = pd.add_team("PTEAM01", "Payments");
    pd.add_service("PSVC001", "Payments API", &[team]);
    let slack = FakeSlack::start().await;
    slack.add_channel(FakeChannel::new("C0PAY", "payments-incidents", &[]));
    slack.add_channel(FakeChannel::new("C0ALL", "incidents", &[]));
    World { pd, slack }
}

impl World {
    fn toml(&self, extra: &str) -> String {
        let extra = format!(
            r#"
[[route]]
channel = "C0PAY"
services = ["PSVC001"]
teams = ["PTEAM01"]

[[identity]]
slack_user = "U0ALICE"
pd_email = "alice@example.com"

[policy]
admins = ["PADMIN1"]
{extra}"#
        );
        WorldConfig {
            team_id: None,
            extra: &extra,
            ..WorldConfig::for_fakes(&self.pd, &self.slack)
        }
        .toml()
    }

    /// The same configuration with a scoped OAuth app (scopes `scope`) instead of the token.
    fn oauth_toml(&self, scope: &str) -> String {
        self.pd
            .enable_oauth("check-app", "check-app-secret", Duration::from_secs(3600));
        self.pd.enforce_oauth_scopes(true);
        self.toml("").replace(
            "token = \"account-token\"",
            &format!(
                "oauth_client_id = \"check-app\"\noauth_client_secret = \"check-app-secret\"\n\
                 oauth_scope = \"{scope}\"\noauth_token_url = \"{}\"",
                self.pd.token_url()
            ),
        )
    }

    async fn run(&self, extra: &str, options: &CheckOptions) -> Report {
        self.run_text(&self.toml(extra), options).await
    }

    async fn run_text(&self, text: &str, options: &CheckOptions) -> Report {
        let config = Config::from_toml_str(text, &BTreeMap::new()).unwrap();
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
    let w = world().await;
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
    let w = world().await;
    let report = w.run("", &CheckOptions::default()).await;
    assert_eq!(mark(&report, "From user"), Mark::Skip);
    assert_eq!(mark(&report, "PagerDuty webhook subscription"), Mark::Skip);
    assert!(!report.failed(), "{}", report.render());
}

#[tokio::test]
async fn a_user_level_token_is_a_failure() {
    let w = world().await;
    w.pd.add_user_token("account-token", &PdUserId::new("PALICE1"));
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty token", "user-level token of Alice Ng");
}

#[tokio::test]
async fn a_scoped_oauth_app_passes_and_is_named() {
    let w = world().await;
    w.subscribe().await;
    let all = "as_account-us.fake incidents.read incidents.write users.read \
               escalation_policies.read oncalls.read services.read teams.read \
               webhook_subscriptions.read";
    let report = w.run_text(&w.oauth_toml(all), &options()).await;
    assert!(!report.failed(), "{}", report.render());
    let token = report.line("PagerDuty token").unwrap();
    assert!(
        token
            .detail
            .contains("scoped OAuth app token (client check-app"),
        "{token:?}"
    );
    assert!(w.pd.token_requests() >= 1);
    assert!(!report.render().contains("check-app-secret"));
}

#[tokio::test]
async fn refused_oauth_credentials_and_missing_scopes_fail_with_their_fix() {
    let w = world().await;
    w.subscribe().await;
    let text = w
        .oauth_toml("as_account-us.fake users.read services.read")
        .replace("check-app-secret", "wrong-secret");
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "PagerDuty token", "no OAuth token");
    assert!(report.line("From user").is_none());

    let text = w.oauth_toml("as_account-us.fake services.read teams.read");
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "PagerDuty token", "may not read users");
    let line = report.line("PagerDuty token").unwrap();
    assert!(
        line.fix
            .as_ref()
            .unwrap()
            .contains("add users.read to pagerduty.oauth_scope")
    );
    fails_with(
        &report,
        "PagerDuty webhook subscription",
        "cannot list subscriptions",
    );
    let line = report.line("PagerDuty webhook subscription").unwrap();
    assert!(
        line.fix
            .as_ref()
            .unwrap()
            .contains("webhook_subscriptions.read")
    );
}

#[tokio::test]
async fn a_refused_token_stops_the_pagerduty_checks() {
    let w = world().await;
    w.pd.set_api_tokens(&["some-other-token"]);
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty token", "401");
    assert!(report.line("From user").is_none());
    assert_eq!(mark(&report, "Slack bot token"), Mark::Pass);
}

#[tokio::test]
async fn unreachable_pagerduty_is_a_failure() {
    let w = world().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = w
        .toml("")
        .replace(&w.pd.url(), &format!("http://127.0.0.1:{port}"));
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "PagerDuty token", "unreachable");
}

#[tokio::test]
async fn unknown_people_services_and_unreadable_teams_fail_with_their_fix() {
    let w = world().await;
    w.subscribe().await;
    let text = w
        .oauth_toml("as_account-us.fake users.read services.read webhook_subscriptions.read")
        .replace("alice@example.com", "alicia@example.com")
        .replace("PADMIN1", "PNOBODY")
        .replace("PSVC001", "PSVC404");
    let nobody = CheckOptions {
        public_url: Some(public()),
        from: Some(ids::Email::new("nobody@example.com")),
    };
    let report = w.run_text(&text, &nobody).await;
    fails_with(&report, "From user", "nobody@example.com");
    fails_with(&report, "[[identity]] U0ALICE", "alicia@example.com");
    fails_with(&report, "[policy] admin", "PNOBODY");
    fails_with(&report, "[[route]] service PSVC404", "never matches");
    fails_with(&report, "[[route]] team PTEAM01", "403");
    let line = report.line("[[route]] team PTEAM01").unwrap();
    assert!(
        line.fix.as_ref().unwrap().contains("teams.read"),
        "{line:?}"
    );

    let text = w.toml("").replace("PTEAM01", "PTEAM404");
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "[[route]] team PTEAM404", "never matches");
    assert_eq!(mark(&report, "[[route]] service PSVC001"), Mark::Pass);
}

#[tokio::test]
async fn missing_disabled_and_incomplete_subscriptions_fail() {
    let w = world().await;
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
    let w = world().await;
    let text = w.toml("").replace(&w.slack.token(), "xoxb-wrong");
    let report = w.run_text(&text, &options()).await;
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
    let w = world().await;
    w.slack.set_scopes(Some(&partial));
    fails_with(
        &w.run("", &options()).await,
        "Slack scopes",
        "missing users:read.email",
    );

    w.slack.set_scopes(None);
    fails_with(
        &w.run("", &options()).await,
        "Slack scopes",
        "x-oauth-scopes",
    );

    let mut extra = BOT_SCOPES.to_vec();
    extra.push("im:history");
    w.slack.set_scopes(Some(&extra));
    let report = w.run("", &options()).await;
    assert_eq!(mark(&report, "Slack scopes"), Mark::Pass);
    assert!(
        report
            .line("Slack scopes")
            .unwrap()
            .detail
            .contains("im:history")
    );
}

#[tokio::test]
async fn workspace_mismatch_fails() {
    let w = world().await;
    let text = w.toml("").replace(
        "default_channel = \"C0ALL\"",
        "default_channel = \"C0ALL\"\nteam_id = \"T0OTHER\"",
    );
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "Slack workspace", "T0OTHER");
}

#[tokio::test]
async fn the_workspace_line_says_whose_users_are_mapped() {
    let w = world().await;
    let report = w.run("", &options()).await;
    let line = report.line("Slack workspace").expect("a workspace line");
    assert_eq!(line.mark, Mark::Pass);
    assert!(line.detail.contains(w.slack.team_id().as_str()), "{line:?}");
    assert!(line.detail.contains("auth.test"), "{line:?}");
    let text = w.toml("").replace(
        "default_channel = \"C0ALL\"",
        "default_channel = \"C0ALL\"\nallow_any_workspace = true",
    );
    let report = w.run_text(&text, &options()).await;
    let line = report.line("Slack workspace").expect("a workspace line");
    assert!(line.detail.contains("allow_any_workspace"), "{line:?}");
}

#[tokio::test]
async fn archived_unjoined_and_unknown_channels_fail() {
    let w = world().await;
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
    let report = w.run_text(&text, &options()).await;
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
    let w = world().await;
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
                "PAGERDUTY_OAUTH_CLIENT_ID",
                "PAGERDUTY_OAUTH_CLIENT_SECRET",
                "PAGERDUTY_OAUTH_CLIENT_SECRET_FILE",
                "PAGERDUTY_OAUTH_SCOPE",
                "PAGERDUTY_OAUTH_TOKEN_URL",
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

#[tokio::test]
async fn pagerduty_down_and_slack_unreachable_fail() {
    let w = world().await;
    w.pd.set_down(true);
    let report = w.run("", &options()).await;
    fails_with(&report, "PagerDuty token", "503");
    assert!(report.line("From user").is_none());

    w.pd.set_down(false);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = w
        .toml("")
        .replace(&w.slack.api_url(), &format!("http://127.0.0.1:{port}/api"));
    let report = w.run_text(&text, &options()).await;
    fails_with(&report, "Slack bot token", "unreachable");
    assert!(report.line("Slack scopes").is_none());
}

#[tokio::test]
async fn an_oncall_group_needs_usergroups_write_and_names_unmapped_on_call_people() {
    let w = world().await;
    let ann = w.pd.add_user("PANN001", "Ann Oncall", "ann@example.com");
    let cat = w.pd.add_user("PCAT001", "Cat Noslack", "cat@example.com");
    let ep =
        w.pd.add_escalation_policy("PEP0001", "Payments", vec![vec![]]);
    let now = time::OffsetDateTime::now_utc();
    let sched = w.pd.add_schedule(
        "PSCHED01",
        "Payments Primary",
        &[ann, cat],
        now - time::Duration::hours(1),
        Duration::from_secs(12 * 3600),
    );
    w.pd.add_schedule_target(&ep, 1, &sched);
    w.pd.add_schedule_target(&ep, 2, &sched);
    let group = "\n[[oncall_group]]\nusergroup = \"S0PAYONCALL\"\nschedules = [\"PSCHED01\"]\n";
    fails_with(
        &w.run(group, &options()).await,
        "Slack scopes",
        "missing usergroups:write",
    );
    let mut scopes = BOT_SCOPES.to_vec();
    scopes.push("usergroups:write");
    w.slack.set_scopes(Some(&scopes));
    w.slack.add_user(fakes::slack::FakeUser::new(
        "U0ANN",
        "ann",
        "ann@example.com",
    ));
    let report = w.run(group, &options()).await;
    assert_eq!(mark(&report, "Slack scopes"), Mark::Pass);
    assert_eq!(
        mark(&report, "on-call group S0PAYONCALL"),
        Mark::Pass,
        "{}",
        report.render()
    );
    w.pd.add_override(
        &sched,
        &PdUserId::new("PCAT001"),
        now - time::Duration::minutes(5),
        now + time::Duration::hours(1),
    );
    fails_with(
        &w.run(group, &options()).await,
        "on-call group S0PAYONCALL",
        "no Slack user for Cat Noslack (PCAT001, cat@example.com)",
    );
    assert!(
        w.run("", &options())
            .await
            .line("on-call group S0PAYONCALL")
            .is_none()
    );
}

#[tokio::test]
async fn declare_services_priorities_and_unmapped_from_are_checked_with_the_fix() {
    let w = world().await;
    w.pd.add_service("PDAT001", "Database", &[]);
    w.pd.disable_service(&w.pd.add_service("PWEB001", "Web", &[]));
    let declare = r#"
[declare]
services = { db = "PDAT001", web = "PWEB001", api = "PNOPE01" }
severities = [{ name = "SEV-1", urgency = "high", priority = "P1" }, { name = "SEV-3", urgency = "low" }]
unmapped_from = "nobody@example.com"
"#;
    let report = w.run(declare, &CheckOptions::default()).await;
    assert_eq!(
        report.line("[declare] service db = PDAT001").unwrap().mark,
        Mark::Pass
    );
    let web = report.line("[declare] service web = PWEB001").unwrap();
    assert_eq!(web.mark, Mark::Fail);
    assert!(
        web.fix.as_deref().unwrap().contains("declare.services"),
        "{web:?}"
    );
    let api = report.line("[declare] service api = PNOPE01").unwrap();
    assert!(
        api.fix.as_deref().unwrap().contains("declare.services.api"),
        "{api:?}"
    );
    let none = report.line("[declare] priorities").unwrap();
    assert_eq!(none.mark, Mark::Fail, "the account has no priorities");
    assert!(none.fix.as_deref().unwrap().contains("remove `priority`"));
    let from = report.line("[declare] unmapped_from").unwrap();
    assert_eq!(from.mark, Mark::Fail);
    assert!(
        from.fix
            .as_deref()
            .unwrap()
            .contains("declare.unmapped_from")
    );

    w.pd.set_priorities(&["P1", "P2"]);
    let report = w
        .run(
            &declare.replace("\"P1\" }, {", "\"P9\" }, {"),
            &CheckOptions::default(),
        )
        .await;
    let p9 = report.line("[declare] severities[0] priority P9").unwrap();
    assert_eq!(p9.mark, Mark::Fail);
    assert!(
        p9.fix.as_deref().unwrap().contains("one of P1, P2"),
        "{p9:?}"
    );
    let report = w.run(declare, &CheckOptions::default()).await;
    assert_eq!(
        report
            .line("[declare] severities[0] priority P1")
            .unwrap()
            .mark,
        Mark::Pass
    );
}

#[tokio::test]
async fn poll_mode_reports_its_share_of_the_budget_and_needs_no_subscription() {
    let w = world().await;
    let report = w.run("", &options()).await;
    assert_eq!(mark(&report, "PagerDuty polling"), Mark::Skip);

    let text = w.toml("").replace(
        "token = \"account-token\"",
        "token = \"account-token\"\nmode = \"poll\"\npoll_share_percent = 5",
    );
    let report = w.run_text(&text, &options()).await;
    let rendered = report.render();
    assert!(!report.failed(), "{rendered}");
    assert_eq!(mark(&report, "PagerDuty polling"), Mark::Pass, "{rendered}");
    let line = report.line("PagerDuty polling").unwrap();
    assert!(
        line.detail.contains("at most 48 of 960 requests/min (5%"),
        "{}",
        line.detail
    );
    assert!(
        report.line("PagerDuty webhook subscription").is_none(),
        "{rendered}"
    );
}
