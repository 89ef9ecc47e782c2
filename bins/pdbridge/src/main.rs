//! The `pdbridge` binary: a thin composition of the library crates.
#![forbid(unsafe_code)]

use clap::Parser;

/// Drive PagerDuty incidents from Slack.
#[derive(Debug, Parser)]
#[command(name = "pdbridge", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
