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
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use identity::clients::ClientDirectory;
use identity::{
    CacheEntry, CacheKey, CacheStore, CacheValue, MappingOutcome, MappingSource, MemoryCache,
    OverrideEntry, OverrideTarget, Overrides, Resolution, Resolver, ResolverConfig,
};
use ids::{Email, PdUserId, SlackTeamId, SlackUserId, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use slack_client::SlackClient;
use store::{IdentityKey, Store, UnixMillis};

use super::EXIT_USAGE;
use crate::config::Config;
use crate::identity::StoreCache;

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

/// Reads and validates the `[[identity]]` table of a TOML document with the identity crate's
/// rules. The error is one line naming the source, the line and the entry (`identity[1].pd_email
/// (slack_user = "U1"): "x" is not an email address`).
pub fn parse_overrides(text: &str, source: &str) -> Result<Overrides, String> {
    #[derive(Deserialize)]
    struct Document {
        #[serde(default)]
        identity: Overrides,
    }
    toml::from_str::<Document>(text)
        .map(|doc| doc.identity)
        .map_err(|err| {
            let message = one_line(err.message());
            match err.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("invalid config: `identity` ({source} line {line}): {message}")
                }
                None => format!("invalid config: `identity` ({source}): {message}"),
            }
        })
}

/// The result of editing a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The whole document after the edit.
    pub text: String,
    /// The target the Slack user had before, if any.
    pub previous: Option<OverrideTarget>,
}

fn parse_document(text: &str, source: &str) -> Result<toml_edit::DocumentMut, String> {
    text.parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("invalid config: {source}: {}", one_line(&e.to_string())))
}

/// The `[[identity]]` array of a document, created empty (at the end) when `create` is set.
fn identity_tables<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    source: &str,
    create: bool,
) -> Result<Option<&'d mut toml_edit::ArrayOfTables>, String> {
    if doc.get("identity").is_none() {
        if !create {
            return Ok(None);
        }
        doc.insert(
            "identity",
            toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()),
        );
    }
    match doc.get_mut("identity") {
        Some(toml_edit::Item::ArrayOfTables(tables)) => Ok(Some(tables)),
        _ => Err(format!(
            "invalid config: `identity` in {source} is not written as [[identity]] tables; \
             rewrite it that way to edit it with `pdbridge identity`"
        )),
    }
}

fn slack_user_of(table: &toml_edit::Table) -> Option<&str> {
    table.get("slack_user").and_then(toml_edit::Item::as_str)
}

fn target_of(table: &toml_edit::Table) -> Option<OverrideTarget> {
    if let Some(id) = table.get("pd_user").and_then(toml_edit::Item::as_str) {
        return Some(OverrideTarget::PdUser(PdUserId::new(id)));
    }
    table
        .get("pd_email")
        .and_then(toml_edit::Item::as_str)
        .map(|email| OverrideTarget::PdEmail(Email::new(email)))
}

/// Adds `entry` to the document, or replaces the target of the Slack user's existing entry in
/// place. Only that entry changes; the result is validated before it is returned.
pub fn add_to_toml(text: &str, entry: &OverrideEntry, source: &str) -> Result<Edit, String> {
    parse_overrides(text, source)?;
    let mut doc = parse_document(text, source)?;
    let tables = identity_tables(&mut doc, source, true)?
        .ok_or_else(|| "the [[identity]] array could not be created".to_owned())?;
    let slack_user = entry.slack_user.as_str();
    let existing = tables
        .iter()
        .position(|t| slack_user_of(t) == Some(slack_user));
    let previous = match existing {
        Some(index) => {
            let table = tables
                .get_mut(index)
                .ok_or_else(|| "the [[identity]] entry vanished".to_owned())?;
            let previous = target_of(table);
            set_target(table, entry);
            previous
        }
        None => {
            let mut table = toml_edit::Table::new();
            table.decor_mut().set_prefix("\n");
            table.insert("slack_user", toml_edit::value(slack_user));
            set_target(&mut table, entry);
            tables.push(table);
            None
        }
    };
    let text = doc.to_string();
    parse_overrides(&text, source).map_err(|e| {
        format!(
            "refused, {source} is unchanged: {}",
            e.trim_start_matches("invalid config: ")
        )
    })?;
    Ok(Edit { text, previous })
}

fn set_target(table: &mut toml_edit::Table, entry: &OverrideEntry) {
    let targets = [
        ("pd_user", entry.pd_user.as_ref().map(PdUserId::as_str)),
        ("pd_email", entry.pd_email.as_ref().map(Email::as_str)),
    ];
    for (key, value) in targets {
        match (
            value,
            table.get_mut(key).and_then(toml_edit::Item::as_value_mut),
        ) {
            (None, _) => {
                table.remove(key);
            }
            (Some(value), Some(existing)) => {
                // Keep the comment after the value (`pd_user = "P1"   # Alice`).
                let decor = existing.decor().clone();
                *existing = toml_edit::Value::from(value);
                *existing.decor_mut() = decor;
            }
            (Some(value), None) => {
                table.insert(key, toml_edit::value(value));
            }
        }
    }
}

/// Removes the Slack user's entry (and the comment lines directly above it) from the document.
/// `Ok(None)` when the file has no entry for that user.
pub fn remove_from_toml(
    text: &str,
    slack_user: &SlackUserId,
    source: &str,
) -> Result<Option<Edit>, String> {
    parse_overrides(text, source)?;
    let mut doc = parse_document(text, source)?;
    let Some(tables) = identity_tables(&mut doc, source, false)? else {
        return Ok(None);
    };
    let Some(index) = tables
        .iter()
        .position(|t| slack_user_of(t) == Some(slack_user.as_str()))
    else {
        return Ok(None);
    };
    let removed = tables.remove(index);
    if tables.is_empty() {
        doc.remove("identity");
    }
    let text = doc.to_string();
    parse_overrides(&text, source)?;
    Ok(Some(Edit {
        text,
        previous: target_of(&removed),
    }))
}

/// Replaces `path`'s contents atomically: a temporary file in the same directory (with the
/// original's permissions) is written, synced and renamed over the target. A symlink is
/// followed, so the file it points at is the one replaced.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pdbridge-identity-")
        .suffix(".toml")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    let permissions = std::fs::metadata(&target)?.permissions();
    std::fs::set_permissions(tmp.path(), permissions)?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
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

/// One cached identity answer as `list --cached` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedMapping {
    /// The storage key (`slack:U…` or `pd:P…`).
    pub key: String,
    /// The decoded entry, or `None` when it does not decode (the server treats it as a miss).
    pub entry: Option<CacheEntry>,
    /// The raw stored entry.
    pub raw: Value,
    /// When the entry stops being used.
    pub expires_at: UnixMillis,
}

/// Every cached identity answer in the database, ordered by key. The database is opened
/// read-only; a missing file has no entries.
pub fn cached_mappings(database: &Path) -> Result<Vec<CachedMapping>, String> {
    if !database.exists() {
        return Ok(Vec::new());
    }
    let store = Store::open_read_only(database).map_err(|e| e.to_string())?;
    let rows = store
        .read(|tx| tx.identities())
        .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|row| CachedMapping {
            key: row.key.as_str().to_owned(),
            entry: serde_json::from_value(row.entry.clone()).ok(),
            raw: row.entry,
            expires_at: row.expires_at,
        })
        .collect())
}

fn source_name(source: MappingSource) -> &'static str {
    match source {
        MappingSource::Override => "override",
        MappingSource::VerifiedEmail => "verified email",
    }
}

fn describe_cached(entry: Option<&CacheEntry>) -> String {
    match entry.map(|e| &e.value) {
        None => "(undecodable; treated as a miss)".to_owned(),
        Some(CacheValue::Forward { outcome, .. }) => describe_outcome(outcome),
        Some(CacheValue::Reverse { slack_user, .. }) => match slack_user {
            Some(user) => format!("mentions as {user}"),
            None => "no Slack user to mention".to_owned(),
        },
    }
}

fn describe_outcome(outcome: &MappingOutcome) -> String {
    match outcome {
        MappingOutcome::Mapped(user) => format!(
            "{} {} <{}> ({})",
            user.pd_user,
            user.name,
            user.email,
            source_name(user.source)
        ),
        MappingOutcome::Refused(refusal) => format!("refused: {}", refusal.code()),
    }
}

fn target_json(target: &OverrideTarget) -> Value {
    match target {
        OverrideTarget::PdUser(id) => json!({ "pd_user": id.as_str() }),
        OverrideTarget::PdEmail(email) => json!({ "pd_email": email.as_str() }),
    }
}

/// A table with left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn list(args: &ListArgs) -> Report {
    let path = match config_file(&args.files) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let text = match read_file(path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let source = path.display().to_string();
    let overrides = match parse_overrides(&text, &source) {
        Ok(o) => o,
        Err(err) => return Report::usage(err),
    };
    let cached = if args.cached {
        let database = match database_path(&args.files) {
            Ok(d) => d,
            Err(r) => return r,
        };
        match cached_mappings(&database) {
            Ok(rows) => Some((database, rows)),
            Err(err) => {
                return Report::failed(format!("cannot read {}: {err}", database.display()));
            }
        }
    } else {
        None
    };
    let now = super::status::now_millis();
    if args.json {
        let mut doc = json!({
            "config": source,
            "overrides": overrides
                .iter()
                .map(|(user, target)| {
                    let mut v = json!({ "slack_user": user.as_str() });
                    if let (Some(obj), Value::Object(t)) = (v.as_object_mut(), target_json(target)) {
                        obj.extend(t);
                    }
                    v
                })
                .collect::<Vec<_>>(),
        });
        if let Some((database, rows)) = &cached {
            doc["database"] = json!(database.display().to_string());
            doc["cached"] = rows
                .iter()
                .map(|row| {
                    json!({
                        "key": row.key,
                        "expires_at": super::status::rfc3339(row.expires_at),
                        "fresh": now < row.expires_at,
                        "entry": row.raw,
                    })
                })
                .collect();
        }
        return Report::ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    }
    let mut out = String::new();
    if overrides.is_empty() {
        let _ = writeln!(out, "No [[identity]] overrides in {source}.");
    } else {
        let _ = writeln!(out, "[[identity]] overrides in {source}:");
        let mut rows = vec![vec!["slack_user".to_owned(), "target".to_owned()]];
        rows.extend(
            overrides
                .iter()
                .map(|(user, target)| vec![user.to_string(), describe_target(target)]),
        );
        out.push_str(&table(&rows));
    }
    if let Some((database, rows)) = cached {
        if rows.is_empty() {
            let _ = writeln!(out, "No cached mappings in {}.", database.display());
        } else {
            let _ = writeln!(out, "Cached mappings in {}:", database.display());
            let mut lines = vec![vec![
                "key".to_owned(),
                "expires".to_owned(),
                "answer".to_owned(),
            ]];
            lines.extend(rows.iter().map(|row| {
                let expiry = if now < row.expires_at {
                    super::status::rfc3339(row.expires_at)
                } else {
                    format!("{} (expired)", super::status::rfc3339(row.expires_at))
                };
                vec![row.key.clone(), expiry, describe_cached(row.entry.as_ref())]
            }));
            out.push_str(&table(&lines));
        }
    }
    Report::ok(out)
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
