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
    let db = dir.path().join("db.sqlite");
    pdbridge::world::WorldConfig {
        database: Some(&db),
        pd_credentials: r#"token = "t""#.to_owned(),
        webhook_secrets,
        bot_token: "xoxb-t".to_owned(),
        signing_secret: "s",
        default_channel: "C1",
        team_id: Some("T1".to_owned()),
        ..pdbridge::world::WorldConfig::new(format!("http://{dead}"), format!("http://{dead}/api"))
    }
    .config()
    .unwrap()
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
