//! `pdbridge identity list|add|remove|resolve`: the `[[identity]]` fallback table from the CLI.
//!
//! - `list` prints the overrides of the configuration file and, with `--cached`, the mappings
//!   the server has cached in its database, with their expiry.
//! - `add` and `remove` edit the configuration file in place with [`toml_edit`], so every other
//!   line, comment and blank keeps its formatting. The edited document is validated with the
//!   identity crate's own rules ([`Overrides`]) before anything is written, and written
//!   atomically (temporary file in the same directory, then rename). The Slack user's cached
//!   mapping is then dropped from the database, so the next click maps afresh.
//! - `resolve` runs the real resolver (clients, cache and overrides from the configuration) and
//!   prints the mapping or the refusal with its fix; `--refresh` ignores and then replaces the
//!   cached answer.
//!
//! A running server re-reads the overrides on SIGHUP; `add` and `remove` say so. A cached
//! mapping rewritten by `resolve --refresh` is used by the running server at once (it reads the
//! cache from the database on every lookup).
//!
//! Call order for embedders and tests: parse [`IdentityArgs`] with clap, then [`execute`]
//! returns a [`Report`] (stdout, stderr, exit status) without touching the process; [`main`]
//! prints it. Exit status: 0 done (or mapped), 1 failed (or refused, or absent), 64 bad
//! configuration or arguments. Secrets are never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use identity::clients::ClientDirectory;
use identity::{
    CacheKey, CacheStore, MappingOutcome, MappingSource, MemoryCache, OverrideEntry,
    OverrideTarget, Resolution, Resolver, ResolverConfig,
};
use ids::{Email, PdUserId, SlackTeamId, SlackUserId, Timestamp};
use slack_client::SlackClient;
use store::{IdentityKey, Store};

use super::EXIT_USAGE;
use crate::config::Config;
use crate::identity::StoreCache;

mod file;
mod list;

pub use self::file::{Edit, add_to_toml, parse_overrides, remove_from_toml, write_atomically};
use self::list::list;
pub use self::list::{CachedMapping, cached_mappings};

/// Exit status of a command that ran but failed (or was refused, or found nothing to remove).
pub const EXIT_FAILED: u8 = 1;

/// Arguments of `pdbridge identity`.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    /// What to do with the `[[identity]]` table.
    #[command(subcommand)]
    pub command: IdentityCommand,
}

/// A `pdbridge identity` subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Print the `[[identity]]` overrides (and with `--cached` the cached mappings).
    List(ListArgs),
    /// Add or replace the override of one Slack user in the configuration file.
    Add(AddArgs),
    /// Remove the override of one Slack user from the configuration file.
    Remove(RemoveArgs),
    /// Map one Slack user with the real resolver and print the mapping or the refusal.
    Resolve(ResolveArgs),
}

/// Where the table and the cache live.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// The server's TOML configuration file, which holds the `[[identity]]` entries.
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The server's SQLite database (default: `server.database` from the file, else
    /// `./pdbridge.db`).
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_DATABASE")]
    pub database: Option<PathBuf>,
}

/// Arguments of `pdbridge identity list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The configuration file and database.
    #[command(flatten)]
    pub files: FileArgs,
    /// Also list the mappings cached in the database, with their expiry.
    #[arg(long)]
    pub cached: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `pdbridge identity add`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pd_user", "pd_email"])))]
pub struct AddArgs {
    /// The configuration file and database.
    #[command(flatten)]
    pub files: FileArgs,
    /// The Slack member id (`U…` or `W…`).
    #[arg(long, value_name = "ID")]
    pub slack_user: String,
    /// The PagerDuty user id (`P…`).
    #[arg(long, value_name = "ID")]
    pub pd_user: Option<String>,
    /// The PagerDuty login email.
    #[arg(long, value_name = "EMAIL")]
    pub pd_email: Option<String>,
}

/// Arguments of `pdbridge identity remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The configuration file and database.
    #[command(flatten)]
    pub files: FileArgs,
    /// The Slack member id whose override goes.
    #[arg(long, value_name = "ID")]
    pub slack_user: String,
}

/// Arguments of `pdbridge identity resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The TOML configuration file `serve` uses; environment variables override it.
    #[arg(long, value_name = "FILE", env = "PDBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The Slack member id to map.
    #[arg(long, value_name = "ID")]
    pub slack_user: String,
    /// Ask Slack and PagerDuty even when a cached answer is fresh, and cache the new answer.
    #[arg(long)]
    pub refresh: bool,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The normal output.
    pub stdout: String,
    /// One line per error or note for the operator.
    pub stderr: String,
    /// The process exit status.
    pub exit: u8,
}

impl Report {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            stderr: String::new(),
            exit: 0,
        }
    }

    fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            stdout: String::new(),
            stderr: format!("pdbridge identity: {}\n", one_line(&message.to_string())),
            exit: EXIT_USAGE,
        }
    }

    fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            stdout: String::new(),
            stderr: format!("pdbridge identity: {}\n", one_line(&message.to_string())),
            exit: EXIT_FAILED,
        }
    }
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `pdbridge identity …` with the process environment and prints the report.
pub fn main(args: &IdentityArgs) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let report = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(execute(args, &env)),
        Err(err) => Report::failed(format!("cannot start the runtime: {err}")),
    };
    print!("{}", report.stdout);
    eprint!("{}", report.stderr);
    ExitCode::from(report.exit)
}

/// Runs one `pdbridge identity` subcommand with the given environment.
pub async fn execute(args: &IdentityArgs, env: &BTreeMap<String, String>) -> Report {
    match &args.command {
        IdentityCommand::List(a) => list(a),
        IdentityCommand::Add(a) => add(a),
        IdentityCommand::Remove(a) => remove(a),
        IdentityCommand::Resolve(a) => resolve(a, env).await,
    }
}

fn config_file(files: &FileArgs) -> Result<&Path, Report> {
    files.config.as_deref().ok_or_else(|| {
        Report::usage("give the configuration file with --config FILE (or PDBRIDGE_CONFIG)")
    })
}

fn read_file(path: &Path) -> Result<String, Report> {
    std::fs::read_to_string(path).map_err(|e| {
        Report::usage(format!(
            "invalid config: cannot read config file {}: {e}",
            path.display()
        ))
    })
}

/// The database path for `files`, as `status` finds it.
fn database_path(files: &FileArgs) -> Result<PathBuf, Report> {
    super::status::database_path(files.database.as_deref(), files.config.as_deref())
        .map_err(|e| Report::usage(format!("invalid config: {e}")))
}

/// Drops the cached forward mapping of `slack_user` from the database at `database`.
/// Returns whether an entry existed; a missing database file caches nothing and returns false.
pub fn invalidate_cached(database: &Path, slack_user: &SlackUserId) -> Result<bool, String> {
    if !database.exists() {
        return Ok(false);
    }
    let store = Store::open(database).map_err(|e| e.to_string())?;
    let key = IdentityKey::new(CacheKey::Slack(slack_user.clone()).storage_key());
    store
        .write(|tx| tx.invalidate_identity(&key))
        .map_err(|e| e.to_string())
}

/// Finishes `add` or `remove` once the file is written: drops the cached mapping of
/// `slack_user` and says so after `out`, then tells how to apply the change to a running server.
/// When the cache cannot be changed, `out` is kept and the report fails with the fix.
fn after_edit(mut out: String, database: &Path, slack_user: &SlackUserId) -> Report {
    match invalidate_cached(database, slack_user) {
        Ok(true) => out.push_str(&format!(
            "Dropped the cached mapping of {slack_user} from {}.\n",
            database.display()
        )),
        Ok(false) => {}
        Err(err) => {
            return Report {
                stdout: out,
                ..Report::failed(format!(
                    "the file was changed, but the cached mapping of {slack_user} could not be \
                     dropped from {}: {err}; run `pdbridge identity resolve --slack-user \
                     {slack_user} --refresh`",
                    database.display()
                ))
            };
        }
    }
    // `serve` re-reads `[[identity]]` on SIGHUP (see `app::run`).
    out.push_str(
        "Apply it to a running server with `systemctl reload pdbridge` (or `kill -HUP <pid>`).\n",
    );
    Report::ok(out)
}

fn add(args: &AddArgs) -> Report {
    let path = match config_file(&args.files) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let text = match read_file(path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let source = path.display().to_string();
    let entry = OverrideEntry {
        slack_user: SlackUserId::new(args.slack_user.trim()),
        pd_user: args.pd_user.as_deref().map(|s| PdUserId::new(s.trim())),
        pd_email: args.pd_email.as_deref().map(|s| Email::new(s.trim())),
    };
    let target = match (&entry.pd_user, &entry.pd_email) {
        (Some(id), None) => OverrideTarget::PdUser(id.clone()),
        (None, Some(email)) => OverrideTarget::PdEmail(email.clone()),
        _ => return Report::usage("give exactly one of --pd-user and --pd-email"),
    };
    let edit = match add_to_toml(&text, &entry, &source) {
        Ok(edit) => edit,
        Err(err) => return Report::usage(err),
    };
    let database = match database_path(&args.files) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(err) = write_atomically(path, &edit.text) {
        return Report::failed(format!("cannot write {source}: {err}"));
    }
    let out = match &edit.previous {
        Some(previous) => format!(
            "Replaced the override of {} in {source}: {} (was {}).\n",
            entry.slack_user,
            describe_target(&target),
            describe_target(previous)
        ),
        None => format!(
            "Added an override to {source}: {} → {}.\n",
            entry.slack_user,
            describe_target(&target)
        ),
    };
    after_edit(out, &database, &entry.slack_user)
}

fn remove(args: &RemoveArgs) -> Report {
    let path = match config_file(&args.files) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let text = match read_file(path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let source = path.display().to_string();
    let slack_user = SlackUserId::new(args.slack_user.trim());
    let edit = match remove_from_toml(&text, &slack_user, &source) {
        Ok(Some(edit)) => edit,
        Ok(None) => {
            return Report::failed(format!(
                "{source} has no [[identity]] entry for {slack_user}; `pdbridge identity list` \
                 shows the ones it has"
            ));
        }
        Err(err) => return Report::usage(err),
    };
    let database = match database_path(&args.files) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(err) = write_atomically(path, &edit.text) {
        return Report::failed(format!("cannot write {source}: {err}"));
    }
    let out = format!(
        "Removed the override of {slack_user} from {source}{}.\n",
        edit.previous
            .as_ref()
            .map(|t| format!(" (was {})", describe_target(t)))
            .unwrap_or_default()
    );
    after_edit(out, &database, &slack_user)
}

fn describe_target(target: &OverrideTarget) -> String {
    match target {
        OverrideTarget::PdUser(id) => format!("pd_user {id}"),
        OverrideTarget::PdEmail(email) => format!("pd_email {email}"),
    }
}

/// The mapping `resolve` found, with where the cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The mapping or refusal, and whether it came from the cache.
    pub resolution: Resolution,
    /// The database the answer was read from and written to, or `None` when there is none yet
    /// (then nothing was cached).
    pub database: Option<PathBuf>,
}

/// Maps `slack_user` like the server does: overrides from `config`, the real Slack and
/// PagerDuty clients, and the server's database as the cache (a missing database is not
/// created; the answer is then not cached). `refresh` ignores and replaces a cached answer.
pub async fn resolve_user(
    config: &Config,
    slack_user: &SlackUserId,
    refresh: bool,
) -> Result<Resolved, String> {
    let mut pd_config = crate::clients::pd_config(config);
    pd_config.timeout = Duration::from_secs(10);
    let pd = pd_client::PdClient::new(pd_config).map_err(|e| e.to_string())?;
    let workspace = crate::clients::home_workspace(config, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let slack = SlackClient::new(crate::clients::slack_config(config, workspace.clone()))
        .map_err(|e| e.to_string())?;
    let directory = ClientDirectory::new(pd, slack, workspace.clone());
    let resolver_config = ResolverConfig {
        overrides: config.identity.clone(),
        home_team: config.slack.team_id.clone(),
        ttls: config.identity_cache,
    };
    let database = &config.server.database;
    let now = crate::clock::now();
    if database.exists() {
        let store = Store::open(database)
            .map_err(|e| format!("cannot open the database {}: {e}", database.display()))?;
        let resolver = Resolver::new(directory, StoreCache(Arc::new(store)), resolver_config);
        let resolution = run_resolver(&resolver, slack_user, &workspace, refresh, now).await?;
        Ok(Resolved {
            resolution,
            database: Some(database.clone()),
        })
    } else {
        let resolver = Resolver::new(directory, MemoryCache::new(), resolver_config);
        let resolution = run_resolver(&resolver, slack_user, &workspace, refresh, now).await?;
        Ok(Resolved {
            resolution,
            database: None,
        })
    }
}

async fn run_resolver<C: CacheStore>(
    resolver: &Resolver<ClientDirectory, C>,
    slack_user: &SlackUserId,
    workspace: &SlackTeamId,
    refresh: bool,
    now: Timestamp,
) -> Result<Resolution, String> {
    let answer = if refresh {
        resolver.refresh(slack_user, Some(workspace), now).await
    } else {
        resolver.resolve(slack_user, Some(workspace), now).await
    };
    answer.map_err(|e| e.to_string())
}

async fn resolve(args: &ResolveArgs, env: &BTreeMap<String, String>) -> Report {
    let config = match Config::load(args.config.as_deref(), env) {
        Ok(config) => config,
        Err(err) => return Report::usage(err),
    };
    let slack_user = SlackUserId::new(args.slack_user.trim());
    let resolved = match resolve_user(&config, &slack_user, args.refresh).await {
        Ok(r) => r,
        Err(err) => {
            return Report::failed(format!(
                "could not look {slack_user} up: {err} (`pdbridge check` tests the credentials)"
            ));
        }
    };
    let from = match (&resolved.database, resolved.resolution.cached) {
        (Some(db), true) => format!("cached in {}", db.display()),
        (Some(db), false) => format!("asked Slack and PagerDuty; cached in {}", db.display()),
        (None, _) => format!(
            "asked Slack and PagerDuty; not cached (no database at {})",
            config.server.database.display()
        ),
    };
    match &resolved.resolution.outcome {
        MappingOutcome::Mapped(user) => Report::ok(format!(
            "{slack_user} → {} {} <{}>\n  via {}; {from}\n  actions are sent to PagerDuty with From: {}\n",
            user.pd_user,
            user.name,
            user.email,
            match user.source {
                MappingSource::Override => "an [[identity]] override",
                MappingSource::VerifiedEmail => "the verified Slack email",
            },
            user.email,
        )),
        MappingOutcome::Refused(refusal) => Report {
            stdout: format!(
                "{slack_user} is refused ({}): {refusal}\n  {from}\n  fix, then: pdbridge identity resolve --slack-user {slack_user} --refresh\n",
                refusal.code()
            ),
            stderr: String::new(),
            exit: EXIT_FAILED,
        },
    }
}

#[cfg(test)]
mod tests;
