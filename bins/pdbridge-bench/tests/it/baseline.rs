//! The load drivers and the bare baseline, end to end through the binary (tiny loads).

use crate::common;

#[test]
fn baseline_runs_closed_and_open_loops_and_reports_json() {
    let (status, report) = common::run_bench(&[
        "baseline",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--conns",
        "4",
        "--rates",
        "200",
        "--open-duration",
        "0.5",
        "--open-conns",
        "4",
    ]);
    common::assert_checks_pass(&report);
    assert!(status.success(), "{report:#}");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["name"], "ingest/bare-hyper");
    assert!(runs[0]["answered"].as_u64().unwrap() > 0);
    // Whether the baseline was server-bound depends on the machine: only its reporting is
    // checked here, never its value.
    let valid = runs[0]["server_bound"]
        .as_bool()
        .expect("server_bound is reported");
    let validity = report["validity"].as_array().unwrap();
    assert_eq!(validity.len(), 1, "{validity:#?}");
    assert_eq!(validity[0]["run"], "ingest/bare-hyper");
    assert_eq!(validity[0]["valid"], valid);
    assert!(runs[0]["cpu"]["server_cpu_s"].is_number(), "{:#}", runs[0]);
    assert!(runs[1]["server_bound"].is_null());
    assert_eq!(runs[1]["mode"], "open");
    assert_eq!(runs[1]["answered"], 100);
    assert!(runs[1]["latency_us"]["p99"].as_u64().unwrap() > 0);
    assert!(report["machine"]["nproc"].as_u64().unwrap() >= 1);
}
