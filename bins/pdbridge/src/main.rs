//! The `pdbridge` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use pdbridge::cli::{Cli, Command};
use pdbridge::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::SlackManifest(args) => pdbridge::ops::slack_manifest(&args),
        Command::PdSubscribe(args) => pdbridge::ops::pd_subscribe(&args),
        Command::Status(args) => pdbridge::ops::status(&args),
        Command::Check(args) => pdbridge::ops::check(&args),
        Command::Demo(args) => pdbridge::ops::demo(&args),
        Command::Identity(args) => pdbridge::ops::identity_cmd::main(&args),
        Command::Serve(args) => {
            let env: BTreeMap<String, String> = std::env::vars().collect();
            let config = match Config::load(args.config.as_deref(), &env) {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("pdbridge: {err}");
                    return ExitCode::from(pdbridge::ops::EXIT_USAGE);
                }
            };
            pdbridge::logging::init(config.server.log_format);
            let runtime = match pdbridge::app::runtime() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("pdbridge: cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(pdbridge::app::run(config, args.config.clone())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!("{err:#}");
                    eprintln!("pdbridge: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
