//! Short CI versions of the pdbridge benches and the fault harness: correctness, never timing.
//!
//! Each test runs the bench binary (which starts pdbridge as a child process against the
//! in-process fakes) with tiny loads and fails when any of its correctness checks fails.

use crate::common;

#[test]
fn ingest_commits_every_accepted_webhook() {
    let (status, report) = common::run_bench(&[
        "ingest",
        "--no-pin",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--conns",
        "4",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    // A ratio is reported exactly when the baseline proved server-bound (which a tiny debug
    // run on a busy machine may not).
    let valid = report["figures"]["ingest/baseline_server_bound"]
        .as_bool()
        .expect("the baseline's validity is reported");
    assert_eq!(report["validity"][0]["valid"], valid);
    let ratio = &report["figures"]["ingest/ratio_pdbridge_to_bare"];
    assert_eq!(ratio.is_number(), valid, "{ratio}");
    assert_eq!(
        report["figures"]["ingest/ratio_withheld"].is_string(),
        !valid
    );
}

#[test]
fn bad_input_gets_expected_statuses_and_writes_nothing() {
    let (status, report) = common::run_bench(&["bad-input", "--no-pin"]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    let table = report["figures"]["bad_input/table"].as_array().unwrap();
    assert!(table.len() >= 30, "{table:#?}");
}

#[test]
fn crash_ten_kills_lose_nothing_and_duplicate_nothing() {
    let (status, report) = common::run_bench(&[
        "crash",
        "--no-pin",
        "--iterations",
        "10",
        "--load",
        "0.5",
        "--incidents",
        "1",
        "--drain-timeout",
        "60",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    assert_eq!(report["figures"]["crash/iterations"], 10);
}

#[test]
fn end_to_end_every_webhook_posts_and_every_click_puts() {
    let (status, report) =
        common::run_bench(&["e2e", "--no-pin", "--rate", "20", "--duration", "0.5"]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    assert_eq!(report["figures"]["e2e/webhook_to_post_us"]["count"], 10);
}

#[test]
fn economy_lifecycle_and_small_storm_end_in_final_states() {
    let (status, report) = common::run_bench(&[
        "economy", "--no-pin", "--storm", "5", "--window", "1", "--settle", "60",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    assert_eq!(report["figures"]["economy/storm_final_states_not_shown"], 0);
    assert!(
        report["figures"]["economy/lifecycle_slack_calls_total"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn memory_reports_rss_and_wal_with_a_backlog() {
    let (status, report) =
        common::run_bench(&["memory", "--no-pin", "--rows", "200", "--conns", "4"]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    assert!(
        report["figures"]["memory/with_pending_outbox_rss_kib"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn outage_of_slack_then_pagerduty_drops_nothing() {
    let (status, report) = common::run_bench(&[
        "outage",
        "--no-pin",
        "--incidents",
        "2",
        "--slack-failures",
        "3",
        "--pd-down",
        "15",
        "--recovery",
        "120",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success());
}

#[test]
fn ack_latency_runs_open_loops_for_webhooks_and_clicks() {
    let (status, report) = common::run_bench(&[
        "ack",
        "--no-pin",
        "--rates",
        "50",
        "--duration",
        "0.4",
        "--conns",
        "4",
        "--incidents",
        "5",
        "--burst",
        "0.3",
        "--burst-conns",
        "4",
        "--recovery",
        "1",
        "--baseline-duration",
        "0.3",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success());
    let runs = report["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "ack/baseline/bare-hyper",
            "ack/bare-hyper@50",
            "ack/webhook@50",
            "ack/webhook-new-incidents@50",
            "ack/burst@50",
            "ack/recovery@50",
            "ack/slack-click@50",
        ]
    );
    assert!(runs[0]["server_bound"].is_boolean());
    assert_eq!(report["validity"][0]["run"], "ack/baseline/bare-hyper");
    assert_eq!(runs[2]["answered"], 20);
    assert_eq!(runs[3]["statuses"]["202"], 20);
    let figures = &report["figures"];
    // Five incidents new to the bridge, each with a card of its own.
    assert_eq!(
        figures["ack/webhook-new-incidents@50/cards_posted_of_incidents"],
        "5 of 5"
    );
    for shape in ["webhook", "webhook-new-incidents", "slack-click"] {
        let cpu = &figures[format!("ack/{shape}@50/server_cpu_us_per_accepted").as_str()];
        assert!(cpu.is_number(), "{shape}: {cpu}");
        let rss = &figures[format!("ack/{shape}@50/peak_rss_kib").as_str()];
        assert!(rss.as_u64().unwrap_or(0) > 0, "{shape}: {rss}");
    }
    assert_eq!(
        figures["ack/recovery@50/p99_us_per_second"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
