//! Operator commands: everything `pdbridge` does besides `serve`.
//!
//! - [`manifest`]: `slack-manifest --url URL` prints the Slack app manifest (pure).
//!
//! Each command takes its clap arguments, writes human-readable output to stdout and returns the
//! process exit code. Nothing here prints a secret except `pd-subscribe`, which prints the new
//! webhook signing secret exactly once because PagerDuty shows it only once.

use std::process::ExitCode;

pub mod manifest;

/// `EX_USAGE`-style status for bad command-line input.
pub const EXIT_USAGE: u8 = 64;

/// Arguments of `pdbridge slack-manifest`.
#[derive(Debug, clap::Args)]
pub struct SlackManifestArgs {
    /// The public https base URL Slack reaches pdbridge at (for example `https://pd.example.com`).
    #[arg(long, value_name = "URL")]
    pub url: String,
}

/// Runs `pdbridge slack-manifest`: prints the manifest JSON on stdout.
pub fn slack_manifest(args: &SlackManifestArgs) -> ExitCode {
    match manifest::PublicUrl::parse(&args.url) {
        Ok(url) => {
            print!("{}", manifest::manifest_text(&url));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("pdbridge slack-manifest: --url {err}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
