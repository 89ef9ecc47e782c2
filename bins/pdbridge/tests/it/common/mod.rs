//! Helpers shared by the `pdbridge` integration tests.

use std::process::Command;

/// The built `pdbridge` binary, with every `PDBRIDGE_*`, `PAGERDUTY_*` and `SLACK_*` variable of
/// the test's own environment removed, so that only what a test sets reaches the process.
#[allow(dead_code)] // Not every test file that shares this module runs the binary.
pub fn pdbridge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdbridge"));
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("PDBRIDGE_")
            || name.starts_with("PAGERDUTY_")
            || name.starts_with("SLACK_")
        {
            cmd.env_remove(&var);
        }
    }
    cmd
}

/// A configuration for tests that never reach Slack or PagerDuty: both APIs point at a loopback
/// port nothing listens on, the database is `db.sqlite` in `dir`, and PagerDuty webhooks are
/// accepted when signed with one of `webhook_secrets`.
#[allow(dead_code)] // Not every test file that shares this module builds a server.
pub fn offline_config(
    dir: &tempfile::TempDir,
    webhook_secrets: &[&str],
) -> pdbridge::config::Config {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let secrets = webhook_secrets
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"
[server]
database = "{}"
[pagerduty]
api_url = "http://{dead}"
token = "t"
webhook_secrets = [{secrets}]
[slack]
api_url = "http://{dead}/api"
bot_token = "xoxb-t"
signing_secret = "s"
default_channel = "C1"
team_id = "T1"
"#,
        dir.path().join("db.sqlite").display()
    );
    pdbridge::config::Config::from_toml_str(&text, &std::collections::BTreeMap::new()).unwrap()
}

/// The configuration text of a server that talks to the in-process fakes. The defaults are what
/// most tests want; set a field for the rest, and put further sections in `extra`.
#[allow(dead_code)] // Not every test file that shares this module talks to the fakes.
pub struct FakesConfig<'a> {
    /// `[server] database`; no `[server]` section when `None`.
    pub database: Option<&'a std::path::Path>,
    /// More `[server]` lines (only with a database).
    pub server: &'a str,
    /// The fake PagerDuty's base URL.
    pub pd_url: String,
    /// The `[pagerduty]` credential lines.
    pub pd_credentials: String,
    /// The one PagerDuty webhook secret.
    pub webhook_secret: &'a str,
    /// The fake Slack's API base URL.
    pub slack_api: String,
    /// The Slack bot token.
    pub bot_token: String,
    /// The Slack signing secret.
    pub signing_secret: &'a str,
    /// `[slack] default_channel`.
    pub default_channel: &'a str,
    /// `[slack] team_id`; left out when `None`.
    pub team_id: Option<String>,
    /// Appended after the `[slack]` section.
    pub extra: &'a str,
}

#[allow(dead_code)]
impl<'a> FakesConfig<'a> {
    /// A configuration for the fakes `pd` and `slack` with an account token, `whsec` and
    /// `signsecret` as the secrets, `C0ALL` as the default channel and Slack's team id.
    pub fn new(pd: &fakes::pd::FakePagerDuty, slack: &fakes::slack::FakeSlack) -> Self {
        Self {
            database: None,
            server: "",
            pd_url: pd.url(),
            pd_credentials: r#"token = "account-token""#.to_owned(),
            webhook_secret: "whsec",
            slack_api: slack.api_url(),
            bot_token: slack.token(),
            signing_secret: "signsecret",
            default_channel: "C0ALL",
            team_id: Some(slack.team_id().as_str().to_owned()),
            extra: "",
        }
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        let server = match self.database {
            Some(db) => format!(
                "[server]\ndatabase = {:?}\n{}\n",
                db.display().to_string(),
                self.server
            ),
            None => String::new(),
        };
        let team = match &self.team_id {
            Some(team) => format!("team_id = {team:?}\n"),
            None => String::new(),
        };
        format!(
            "{server}
[pagerduty]
api_url = {pd:?}
{credentials}
webhook_secrets = [{secret:?}]

[slack]
api_url = {slack:?}
bot_token = {bot:?}
signing_secret = {signing:?}
default_channel = {channel:?}
{team}{extra}
",
            pd = self.pd_url,
            credentials = self.pd_credentials,
            secret = self.webhook_secret,
            slack = self.slack_api,
            bot = self.bot_token,
            signing = self.signing_secret,
            channel = self.default_channel,
            extra = self.extra,
        )
    }

    /// The parsed configuration (no environment).
    pub fn config(&self) -> pdbridge::config::Config {
        pdbridge::config::Config::from_toml_str(&self.toml(), &std::collections::BTreeMap::new())
            .unwrap()
    }
}

/// The body of a plain `GET` to `url`.
#[allow(dead_code)] // Not every test file that shares this module reads an endpoint.
pub async fn get(url: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}
