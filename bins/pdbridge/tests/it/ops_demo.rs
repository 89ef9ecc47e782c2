//! `pdbridge demo` tells one incident's whole life and every step is observed, not assumed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pdbridge::ops::demo::{DemoOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_the_story_is_observed_on_both_sides() {
    let outcome = run(DemoOptions::default()).await.unwrap();
    let t = &outcome.transcript;
    let failed: Vec<_> = outcome.steps.iter().filter(|s| !s.ok).collect();
    assert!(failed.is_empty(), "failed steps {failed:#?}\n{t}");
    let titles: Vec<&str> = outcome.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Trigger → one card",
            "Acknowledge by a mapped user, with `From` shown",
            "The echo of our own acknowledgement renders once",
            "Snooze from More actions, with `From` shown",
            "Escalate one level",
            "Reassign through the modal",
            "Add a note through the modal; its echo renders once",
            "A retried delivery and a stale out-of-order webhook are ignored",
            "An unmapped user is refused",
            "Resolve (after Slack's confirm dialog): buttons gone",
            "`/pd oncall` from someone without a PagerDuty seat",
            "Declare from Slack: `/pd trigger` → one incident, one card",
        ]
    );
    assert!(outcome.ok());
    // What each side saw, as printed.
    for want in [
        "PUT /incidents/",
        "with From: alice@example.com",
        "the thread has 1 acknowledgement line(s)",
        "the note appears 1 time(s) in the thread",
        "answered 200",
        "Slack: the card did not change (still assigned to Carol: true)",
        "pdbridge → PagerDuty: 0 request(s) for Mallory's click",
        "All 12 steps observed working.",
        "POST /incidents/",
        "Snoozed by Alice until",
        "runs /pd oncall (no PagerDuty user)",
        "unmapped Slack users",
        "POST /incidents with From: alice@example.com, urgency high",
        "1 card(s) for it in #incidents",
        "Declared by @alice from Slack",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    // The final card: resolved, details kept, no buttons.
    let last_card = t
        .rsplit("10. Resolve")
        .next()
        .unwrap()
        .split("11. `/pd oncall`")
        .next()
        .unwrap();
    assert!(last_card.contains("✅ Resolved"), "{last_card}");
    assert!(last_card.contains("Assigned:"), "{last_card}");
    assert!(!last_card.contains("[Acknowledge]"), "{last_card}");
}

#[test]
fn the_binary_exits_zero_and_keep_running_serves_the_printed_url() {
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let out = Command::new(bin).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("All 12 steps observed working."),
        "{stdout}"
    );

    /// Kills the demo however the test ends, so no server outlives it.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        Command::new(bin)
            .args(["demo", "--keep-running"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("  pdbridge ") {
            base.get_or_insert_with(|| url.trim().to_owned());
        }
        if line.starts_with("Still running") {
            break;
        }
    }
    let base = base.expect("the server URL is printed");
    let addr = base.strip_prefix("http://").expect("an http URL");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    drop(child);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
