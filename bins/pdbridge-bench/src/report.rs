//! The result of one bench invocation: JSON for machines and a table for people.
//!
//! Timing figures are reported, never asserted. [`Check`]s are correctness results (nothing lost,
//! nothing written for a forged request); a failed check makes the process exit non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::child::Machine;
use crate::cpu::{CpuUse, SERVER_BOUND_SHARE};
use crate::load::{LoadResult, LoadSummary};

/// One load run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// What was measured, e.g. `ingest/pdbridge`.
    pub name: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Connections (closed loop) or maximum concurrent workers (open loop).
    pub connections: usize,
    /// Target rate for an open loop, requests per second.
    pub rate: Option<u32>,
    /// For a baseline whose figures other runs are compared with: whether its server used at
    /// least 90% of one core over the run (`None` for other runs, or when `/proc` was
    /// unreadable, which counts as not proven).
    pub server_bound: Option<bool>,
    /// The measurements.
    #[serde(flatten)]
    pub summary: LoadSummary,
}

impl Run {
    /// A closed-loop run.
    pub fn closed(name: impl Into<String>, connections: usize, result: &LoadResult) -> Self {
        Self {
            name: name.into(),
            mode: "closed",
            connections,
            rate: None,
            server_bound: None,
            summary: result.summary(),
        }
    }

    /// An open-loop run.
    pub fn open(
        name: impl Into<String>,
        connections: usize,
        rate: u32,
        result: &LoadResult,
    ) -> Self {
        Self {
            name: name.into(),
            mode: "open",
            connections,
            rate: Some(rate),
            server_bound: None,
            summary: result.summary(),
        }
    }
}

/// Whether a baseline proved to be server-bound (reported, never a failure of the run).
#[derive(Debug, Clone, Serialize)]
pub struct Validity {
    /// The baseline run it is about.
    pub run: String,
    /// Whether its server used at least 90% of one core.
    pub valid: bool,
    /// The CPU figures behind it.
    pub detail: String,
}

/// A correctness result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The evidence (counts, the first mismatch).
    pub detail: String,
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// Load runs, in the order they ran.
    pub runs: Vec<Run>,
    /// Other named figures (ratios, memory, call counts), sorted by name.
    pub figures: BTreeMap<String, serde_json::Value>,
    /// Baseline validity lines, in the order they ran.
    pub validity: Vec<Validity>,
    /// Correctness checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty report.
    pub fn new(command: String, machine: Machine) -> Self {
        Self {
            command,
            machine,
            runs: Vec::new(),
            figures: BTreeMap::new(),
            validity: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// Records a named figure.
    pub fn figure(&mut self, name: impl Into<String>, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.figures.insert(name.into(), value);
    }

    /// Adds `run` as a baseline that must be server-bound: marks the run, adds its validity
    /// line and returns whether it is valid.
    pub fn baseline(&mut self, mut run: Run) -> bool {
        let valid = run.summary.cpu.as_ref().is_some_and(CpuUse::server_bound);
        run.server_bound = Some(valid);
        let detail = match &run.summary.cpu {
            Some(c) => format!(
                "server {:.0}% of one core (valid at ≥ {:.0}%), generator {:.0}% ({} µs of generator CPU per request); {:.0} req/s",
                c.server_cores * 100.0,
                SERVER_BOUND_SHARE * 100.0,
                c.generator_cores * 100.0,
                run.summary
                    .generator_cpu_us_per_2xx
                    .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}")),
                run.summary.req_per_s,
            ),
            None => "server CPU time unreadable (no /proc): not proven server-bound".to_owned(),
        };
        self.validity.push(Validity {
            run: run.name.clone(),
            valid,
            detail,
        });
        self.runs.push(run);
        valid
    }

    /// Records a check.
    pub fn check(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        });
    }

    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The readable form.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "machine: {} x {} ({} build, server core {})",
            m.nproc,
            m.cpu_model,
            if m.release_build { "release" } else { "debug" },
            m.pinning
                .server_core
                .map_or_else(|| "unpinned".to_owned(), |c| c.to_string()),
        );
        let _ = writeln!(out, "command: {}", self.command);
        if !self.runs.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<40} {:>6} {:>5} {:>6} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>6} {:>6} {:>8} {:>7}",
                "run",
                "mode",
                "conns",
                "rate",
                "req/s",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "max µs",
                "non2xx",
                "errors",
                "dropped",
                "srv%",
                "gen%",
                "srv µs/2xx",
                "valid"
            );
            for r in &self.runs {
                let s = &r.summary;
                let non2xx: u64 = s
                    .statuses
                    .iter()
                    .filter(|(k, _)| !k.starts_with('2'))
                    .map(|(_, v)| v)
                    .sum();
                let pct = |f: fn(&CpuUse) -> f64| {
                    s.cpu
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |c| format!("{:.0}", f(c) * 100.0))
                };
                let _ = writeln!(
                    out,
                    "{:<40} {:>6} {:>5} {:>6} {:>11.0} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>6} {:>6} {:>8} {:>7}",
                    r.name,
                    r.mode,
                    r.connections,
                    r.rate.map_or_else(|| "-".to_owned(), |x| x.to_string()),
                    s.req_per_s,
                    s.latency_us.p50,
                    s.latency_us.p99,
                    s.latency_us.p999,
                    s.latency_us.max,
                    non2xx,
                    s.errors,
                    s.dropped,
                    pct(|c| c.server_cores),
                    pct(|c| c.generator_cores),
                    s.server_cpu_us_per_2xx
                        .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}")),
                    match r.server_bound {
                        Some(true) => "yes",
                        Some(false) => "INVALID",
                        None => "-",
                    },
                );
            }
        }
        if !self.validity.is_empty() {
            let _ = writeln!(out);
            for v in &self.validity {
                let verdict = if v.valid { "valid  " } else { "INVALID" };
                let _ = writeln!(out, "[{verdict}] baseline {:<30} {}", v.run, v.detail);
            }
        }
        if !self.figures.is_empty() {
            let _ = writeln!(out);
            for (k, v) in &self.figures {
                let text = v.to_string();
                if text.len() <= 160 {
                    let _ = writeln!(out, "{k:<48} {text}");
                } else {
                    let _ = writeln!(out, "{k:<48} (see the JSON report)");
                }
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out);
            for c in &self.checks {
                let verdict = if c.passed { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "[{verdict}] {:<44} {}", c.name, c.detail);
            }
        }
        out
    }
}
