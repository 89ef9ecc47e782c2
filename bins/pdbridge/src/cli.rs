//! The command line: `pdbridge serve [--config FILE]` and the operator commands
//! (`slack-manifest`, `pd-subscribe`, `status`, `check`, `demo`, `identity`), whose arguments
//! live beside their code in [`crate::ops`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Drive PagerDuty incidents from Slack.
#[derive(Debug, Parser)]
#[command(name = "pdbridge", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `pdbridge` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: PagerDuty webhooks in, Slack cards and button clicks.
    Serve(ServeArgs),
    /// Print the Slack app manifest for a public URL.
    SlackManifest(crate::ops::SlackManifestArgs),
    /// Create the PagerDuty webhook subscription and print its secret once.
    PdSubscribe(crate::ops::PdSubscribeArgs),
    /// Summarise the database: incidents, cards, outbox, webhooks, failures, unmapped users.
    Status(crate::ops::StatusArgs),
    /// Test the configuration and credentials against Slack and PagerDuty (✓/✗ per line).
    Check(crate::ops::CheckArgs),
    /// Run one incident's whole life against in-process fake Slack and PagerDuty (no network).
    Demo(crate::ops::DemoArgs),
    /// List, add, remove and test the `[[identity]]` Slack → PagerDuty overrides.
    Identity(crate::ops::identity_cmd::IdentityArgs),
}

/// Arguments of `pdbridge serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML configuration file; environment variables override its keys.
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_an_optional_config_file() {
        let cli = Cli::try_parse_from(["pdbridge", "serve", "--config", "/etc/p.toml"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve");
        };
        assert_eq!(args.config, Some(PathBuf::from("/etc/p.toml")));
        assert!(Cli::try_parse_from(["pdbridge"]).is_err());
    }
}
