//! Runs the bench binary with small parameters and reads its JSON report.

use std::process::Command;

/// Runs `pdbridge-bench <args> --json <tmp>`; returns the exit status and the parsed report.
pub fn run_bench(args: &[&str]) -> (std::process::ExitStatus, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pdbridge-bench"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running the bench binary");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no report; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    (out.status, report)
}

/// Panics with the failed checks' details unless every check in `report` passed.
pub fn assert_checks_pass(report: &serde_json::Value) {
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .filter(|c| c["passed"] != true)
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
}
