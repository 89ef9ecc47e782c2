//! The `pdbridge serve` binary: a bad config exits 64 with one line, and SIGTERM shuts down.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pdbridge;

#[test]
fn bad_config_exits_64_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\nlisen = 1\n").unwrap();
    let out = pdbridge()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.lisen"), "{stderr}");

    // Missing required settings, configured only through the environment.
    let out = pdbridge().arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("pagerduty.token"), "{stderr}");
}

#[test]
fn a_bad_declare_table_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declare.toml");
    std::fs::write(
        &path,
        "[pagerduty]\ntoken = \"t\"\nwebhook_secrets = [\"w\"]\n\
         [slack]\nbot_token = \"b\"\nsigning_secret = \"s\"\ndefault_channel = \"C1\"\n\
         [declare]\nservices = { db = \"PDAT001\" }\ndefault_service = \"api\"\n",
    )
    .unwrap();
    let out = pdbridge()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("declare.default_service"), "{stderr}");
}

#[test]
#[cfg(unix)]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // PagerDuty and Slack point at a closed port: the server still starts and serves.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = pdbridge()
        .arg("serve")
        .env("PDBRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("PDBRIDGE_DATABASE", dir.path().join("db.sqlite"))
        .env("PAGERDUTY_API_URL", format!("http://127.0.0.1:{dead}"))
        .env("PAGERDUTY_TOKEN", "t")
        .env("PAGERDUTY_WEBHOOK_SECRETS", "a,b")
        .env("SLACK_API_URL", format!("http://127.0.0.1:{dead}/api"))
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("SLACK_DEFAULT_CHANNEL", "C1")
        .env("SLACK_TEAM_ID", "T1")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut healthy = false;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                healthy = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(healthy, "the server never answered /healthz");
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
