//! `pdbridge-bench`: benchmarks and the fault harness for pdbridge.
//!
//! Every bench starts its servers as child processes of this same binary (hidden `__serve-*`
//! subcommands), drives them from this process with the drivers in [`load`], and prints a
//! [`report::Report`] as a table (and as JSON with `--json FILE`). Timing is reported, never
//! asserted; correctness checks (nothing lost, nothing written for a forged request) make the
//! process exit with status 1 when they fail. Short versions run in CI as this package's
//! integration tests; long ones through `cargo run -p pdbridge-bench --release -- <cmd>`.
#![forbid(unsafe_code)]

mod badinput;
mod bench;
mod child;
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
    /// The bare hyper baseline alone: closed loop and open loop.
    Baseline(bench::BaselineArgs),
    /// Open-loop answer latency of webhooks and Slack clicks.
    Ack(scenarios::AckArgs),
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
        Cmd::ServeBare { listen } => {
            runtime()?.block_on(serve::bare(listen))?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::ServePdbridge { config } => {
            runtime()?.block_on(serve::pdbridge(&config))?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Baseline(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(bench::baseline(&args, pinning, &mut report))?;
        }
        Cmd::Ack(args) => {
            child::pin_self_away(pinning);
            runtime()?.block_on(scenarios::ack(&args, pinning, &mut report))?;
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
