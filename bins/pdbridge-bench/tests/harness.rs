//! Short CI versions of the pdbridge benches and the fault harness: correctness, never timing.
//!
//! Each test runs the bench binary (which starts pdbridge as a child process against the
//! in-process fakes) with tiny loads and fails when any of its correctness checks fails.

mod common;

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
    assert!(report["figures"]["ingest/ratio_pdbridge_to_bare"].is_number());
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
