//! `pdbridge-bench`: benchmarks and the fault harness for pdbridge.
//!
//! Every bench starts its servers as child processes of this same binary (hidden `__serve-*`
//! subcommands), drives them from this process with the drivers in [`load`], and prints a
//! [`report::Report`] as a table (and as JSON with `--json FILE`). Timing is reported, never
//! asserted; correctness checks (nothing lost, nothing written for a forged request) make the
//! process exit with status 1 when they fail. Short versions run in CI as this package's
//! integration tests; long ones through `cargo run -p pdbridge-bench --release -- <cmd>`.
#![forbid(unsafe_code)]
// Measuring wall time is the benchmark's point.
#![allow(clippy::disallowed_methods)]

mod badinput;
mod bench;
mod child;
mod cpu;
mod crash;
mod harness;
mod load;
mod payloads;
mod report;
mod scenarios;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::child::{Machine, Pinning};
use crate::report::Report;

/// Benchmarks and fault harness for pdbridge.
#[derive(Debug, Parser)]
#[command(name = "pdbridge-bench", about)]
struct Cli {
    /// Also write the report as JSON to this file (`-` for stdout instead of the table).
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Never pin the server to a core, even where `taskset` exists.
    #[arg(long, global = true)]
    no_pin: bool,
    /// What to run.
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every benchmark with its default (full-size) settings, then bad input, outage and crash.
    All,
    /// The bare hyper baseline alone: closed loop and open loop.
    Baseline(bench::BaselineArgs),
    /// Open-loop answer latency of webhooks and Slack clicks.
    Ack(scenarios::AckArgs),
    /// End to end: webhook to Slack post, click to PagerDuty PUT.
    E2e(scenarios::E2eArgs),
    /// Slack calls per lifecycle and in a 200-incident storm in one channel.
    Economy(scenarios::EconomyArgs),
    /// Memory idle, under load and with a large pending outbox; WAL size.
    Memory(scenarios::MemoryArgs),
    /// Slack down then up; PagerDuty down during clicks then up.
    Outage(scenarios::OutageArgs),
    /// The kill -9 fault harness under mixed load with failing fakes.
    Crash(crash::CrashArgs),
    /// Forged, stale, replayed, truncated, oversized and garbage requests: statuses and no writes.
    BadInput,
    /// Ingest throughput: pdbridge against the bare baseline, signed 2 KiB webhooks.
    Ingest(bench::IngestArgs),
    /// Runs pdbridge with this config until SIGTERM or SIGKILL (used by the bench itself).
    #[command(name = "__serve-pdbridge", hide = true)]
    ServePdbridge {
        /// The pdbridge TOML config; the environment overrides it as for `pdbridge serve`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Runs the bare baseline server until killed (used by the bench itself).
    #[command(name = "__serve-bare", hide = true)]
    ServeBare {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pdbridge-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The servers under test start before anything else, so restarts are timed fairly.
    match cli.command {
        Cmd::ServeBare { listen } => {
            runtime()?.block_on(serve::bare(listen))?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::ServePdbridge { config } => {
            pdbridge::app::runtime()?.block_on(serve::pdbridge(&config))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let pinning = if cli.no_pin {
        Pinning::none()
    } else {
        Pinning::detect()
    };
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let mut report = Report::new(
        format!("pdbridge-bench {command}"),
        Machine::detect(pinning),
    );
    match cli.command {
        Cmd::ServeBare { .. } | Cmd::ServePdbridge { .. } => {}
        Cmd::All => {
            child::pin_self_away(pinning);
            let rt = runtime()?;
            rt.block_on(bench::ingest(&defaults(), pinning, &mut report))?;
            rt.block_on(scenarios::ack(&defaults(), pinning, &mut report))?;
            rt.block_on(scenarios::e2e(&defaults(), pinning, &mut report))?;
            rt.block_on(scenarios::economy(&defaults(), pinning, &mut report))?;
            rt.block_on(scenarios::memory(&defaults(), pinning, &mut report))?;
            rt.block_on(scenarios::outage(&defaults(), pinning, &mut report))?;
            rt.block_on(bench::bad_input(pinning, &mut report))?;
            rt.block_on(crash::run(&defaults(), pinning, &mut report))?;
        }
        Cmd::Baseline(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(bench::baseline(&args, pinning, &mut report))?;
        }
        Cmd::Ack(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(scenarios::ack(&args, pinning, &mut report))?;
        }
        Cmd::E2e(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(scenarios::e2e(&args, pinning, &mut report))?;
        }
        Cmd::Economy(args) => {
            runtime()?.block_on(scenarios::economy(&args, pinning, &mut report))?;
        }
        Cmd::Memory(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(scenarios::memory(&args, pinning, &mut report))?;
        }
        Cmd::Outage(args) => {
            runtime()?.block_on(scenarios::outage(&args, pinning, &mut report))?;
        }
        Cmd::Crash(args) => {
            runtime()?.block_on(crash::run(&args, pinning, &mut report))?;
        }
        Cmd::BadInput => {
            runtime()?.block_on(bench::bad_input(pinning, &mut report))?;
        }
        Cmd::Ingest(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(bench::ingest(&args, pinning, &mut report))?;
        }
    }
    emit(&report, cli.json.as_deref())?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A subcommand's options with every default applied, as if given no flags.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&cmd.get_matches_from(["defaults"]))
        .expect("every option of a bench has a default")
}

fn emit(report: &Report, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    match json {
        Some(p) if p.as_os_str() == "-" => println!("{text}"),
        Some(p) => {
            std::fs::write(p, text)?;
            print!("{}", report.table());
        }
        None => print!("{}", report.table()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_full_size_runs() {
        let ingest: bench::IngestArgs = defaults();
        assert_eq!(ingest.conns, 50);
        let ack: scenarios::AckArgs = defaults();
        assert_eq!(ack.rates, vec![1000, 5000]);
        let crash: crash::CrashArgs = defaults();
        assert_eq!(crash.iterations, 10);
        let memory: scenarios::MemoryArgs = defaults();
        assert_eq!(memory.rows, 100_000);
    }

    #[test]
    fn cli_parses_every_command() {
        for args in [
            &["b", "all"][..],
            &["b", "ingest", "--duration", "1"],
            &["b", "crash", "--iterations", "100", "--timeout-faults"],
            &["b", "--json", "x.json", "bad-input"],
            &["b", "economy", "--storm", "10"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
    }
}
