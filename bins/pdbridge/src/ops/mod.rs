//! Operator commands: everything `pdbridge` does besides `serve`.
//!
//! - [`demo`]: `demo [--keep-running]` runs one incident's whole life against in-process fakes.
//! - [`manifest`]: `slack-manifest --url URL` prints the Slack app manifest (pure).
//! - [`subscribe`]: `pd-subscribe --url URL (--service ID | --team ID | --account) [--ping]`
//!   creates the PagerDuty webhook subscription and prints its secret once.
//! - [`status`]: `status` summarises the database (read-only).
//! - [`check`]: `check [--config FILE] [--url URL] [--from EMAIL]` tests the configuration and
//!   credentials against the real APIs, one ✓/✗ line each, with the fix for every ✗.
//! - [`identity_cmd`]: `identity list|add|remove|resolve` edits and tests the `[[identity]]`
//!   overrides.
//!
//! Each command takes its clap arguments, writes human-readable output to stdout and returns the
//! process exit code. Nothing here prints a secret except `pd-subscribe`, which prints the new
//! webhook signing secret exactly once because PagerDuty shows it only once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use ids::{Email, ServiceId, TeamId};
use url::Url;

use crate::config::EnvSecretError;

pub mod check;
pub mod demo;
pub mod identity_cmd;
pub mod manifest;
pub mod status;
pub mod subscribe;

/// `EX_USAGE`-style status for bad command-line input or a configuration `serve` refuses to
/// start with: the one usage exit status of every command.
pub const EXIT_USAGE: u8 = 64;

/// Arguments of `pdbridge slack-manifest`.
#[derive(Debug, clap::Args)]
pub struct SlackManifestArgs {
    /// The public https base URL Slack reaches pdbridge at (for example `https://pd.example.com`).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "socket",
        conflicts_with = "socket"
    )]
    pub url: Option<String>,
    /// A Socket Mode app (`slack.mode = "socket"`): no request URLs, no public URL needed.
    #[arg(long)]
    pub socket: bool,
    /// The configuration file: when it has `[[oncall_group]]` tables, the manifest also asks
    /// for `usergroups:write`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Runs `pdbridge slack-manifest`: prints the manifest JSON on stdout.
pub fn slack_manifest(args: &SlackManifestArgs) -> ExitCode {
    let with_groups = match args.config.as_deref().map(manifest::configures_groups) {
        None => false,
        Some(Ok(groups)) => groups,
        Some(Err(err)) => {
            eprintln!("pdbridge slack-manifest: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some(url) = args.url.as_deref() else {
        print!("{}", manifest::socket_manifest_text(with_groups));
        return ExitCode::SUCCESS;
    };
    match manifest::PublicUrl::parse(url) {
        Ok(url) => {
            print!("{}", manifest::manifest_text_for(&url, with_groups));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("pdbridge slack-manifest: --url {err}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Arguments of `pdbridge pd-subscribe`.
///
/// The PagerDuty token is read from `PAGERDUTY_TOKEN` or `PAGERDUTY_TOKEN_FILE`, never from the
/// command line. It needs `webhook_subscriptions.write`; the server itself never does.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["service", "team", "account"])))]
pub struct PdSubscribeArgs {
    /// The public https base URL PagerDuty reaches pdbridge at (webhooks go to
    /// `{url}/pagerduty/webhook`).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Subscribe to one service's incidents.
    #[arg(long, value_name = "ID")]
    pub service: Option<String>,
    /// Subscribe to the incidents of one team's services.
    #[arg(long, value_name = "ID")]
    pub team: Option<String>,
    /// Subscribe to every incident in the account.
    #[arg(long)]
    pub account: bool,
    /// Ask PagerDuty to send a `pagey.ping` to the new subscription.
    #[arg(long)]
    pub ping: bool,
    /// The PagerDuty REST API base URL.
    #[arg(
        long,
        value_name = "URL",
        env = "PAGERDUTY_API_URL",
        default_value = crate::config::DEFAULT_PAGERDUTY_API_URL
    )]
    pub api_url: String,
}

/// Runs `pdbridge pd-subscribe` with the process environment.
pub fn pd_subscribe(args: &PdSubscribeArgs) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let url = match manifest::PublicUrl::parse(&args.url) {
        Ok(url) => url,
        Err(err) => {
            eprintln!("pdbridge pd-subscribe: --url {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let scope = match (&args.service, &args.team, args.account) {
        (Some(id), None, false) => subscribe::Scope::Service(ServiceId::new(id.trim())),
        (None, Some(id), false) => subscribe::Scope::Team(TeamId::new(id.trim())),
        (None, None, true) => subscribe::Scope::Account,
        _ => {
            eprintln!("pdbridge pd-subscribe: give exactly one of --service, --team, --account");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let client = match pd_client_from_env(&args.api_url, &env) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("pdbridge pd-subscribe: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("pdbridge pd-subscribe: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(subscribe::subscribe(&client, &url, &scope, args.ping)) {
        Ok(done) => {
            print!("{}", done.report);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("pdbridge pd-subscribe: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a secret from `VAR` or the file named by `VAR_FILE` (trimmed; never both), with the
/// commands' error wording.
pub fn secret_from_env(var: &str, env: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let text = match crate::config::env_secret(env, var) {
        Err(EnvSecretError::Both { file_var }) => {
            anyhow::bail!("{var} and {file_var} are both set; set one");
        }
        Err(EnvSecretError::Unreadable {
            file_var,
            path,
            err,
        }) => anyhow::bail!("{file_var}: cannot read `{path}`: {err}"),
        Ok(Some(secret)) => secret.text,
        Ok(None) => anyhow::bail!("set {var} or {var}_FILE"),
    };
    let text = text.trim();
    if text.is_empty() {
        anyhow::bail!("{var} is empty");
    }
    Ok(text.to_owned())
}

/// A PagerDuty client for `api_url` with the token from `PAGERDUTY_TOKEN(_FILE)`.
pub fn pd_client_from_env(
    api_url: &str,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<pd_client::PdClient> {
    let token = secret_from_env("PAGERDUTY_TOKEN", env)?;
    let base =
        Url::parse(api_url).map_err(|e| anyhow::anyhow!("PAGERDUTY_API_URL `{api_url}`: {e}"))?;
    Ok(pd_client(base, &token)?)
}

pub use crate::clients::pd_client;

/// Arguments of `pdbridge status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The SQLite database (default: `server.database` from `--config`, else `./pdbridge.db`).
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_DATABASE")]
    pub database: Option<PathBuf>,
    /// The server's TOML configuration file, read only for `server.database`.
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// How many recent failures and unmapped users to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: usize,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pdbridge status`: exit 0 with the report, 1 when the database cannot be read.
pub fn status(args: &StatusArgs) -> ExitCode {
    let path = match status::database_path(args.database.as_deref(), args.config.as_deref()) {
        Ok(path) => path,
        Err(err) => {
            eprintln!("pdbridge status: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let now = crate::clock::now();
    match status::read_summary(&path, now, args.limit) {
        Ok(summary) if args.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            print!("{}", status::render(&summary, &path, now));
            print!("{}", crate::oncall::status_report(&path));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "pdbridge status: cannot read {}: {err} (is this the server's database? start                  `pdbridge serve` once to create it)",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Arguments of `pdbridge check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The TOML configuration file `serve` uses; environment variables override it.
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The public https base URL; checks that a PagerDuty subscription delivers to it.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// A PagerDuty login email that must exist (for example your own).
    #[arg(long, value_name = "EMAIL")]
    pub from: Option<String>,
}

/// Runs `pdbridge check`: exit 0 when every line is ✓ (or –), 1 when any is ✗, 64 for bad
/// arguments.
pub fn check(args: &CheckArgs) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut options = check::CheckOptions::default();
    if let Some(url) = &args.url {
        match manifest::PublicUrl::parse(url) {
            Ok(url) => options.public_url = Some(url),
            Err(err) => {
                eprintln!("pdbridge check: --url {err}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if let Some(from) = &args.from {
        match Email::parse(from) {
            Some(email) => options.from = Some(email),
            None => {
                eprintln!("pdbridge check: --from `{from}` is not an email address");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let report = match check::check_config(args.config.as_deref(), &env) {
        Err(report) => report,
        Ok((config, line)) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("pdbridge check: cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(check::check(&config, line, &options))
        }
    };
    print!("{}", report.render());
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Arguments of `pdbridge demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the fakes and the server running after the story and print their URLs.
    #[arg(long)]
    pub keep_running: bool,
}

/// Runs `pdbridge demo`: exit 0 only when every step was observed working.
pub fn demo(args: &DemoArgs) -> ExitCode {
    demo::main(args.keep_running)
}
