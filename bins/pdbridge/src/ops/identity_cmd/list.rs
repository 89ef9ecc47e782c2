//! `pdbridge identity list`: the overrides of the configuration file and, with `--cached`, the
//! mappings cached in the database.

use std::fmt::Write as _;
use std::path::Path;

use identity::{CacheEntry, CacheValue, MappingOutcome, MappingSource, OverrideTarget};
use ids::Timestamp;
use serde_json::{Value, json};
use store::Store;

use super::*;

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
    pub expires_at: Timestamp,
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

pub(super) fn source_name(source: MappingSource) -> &'static str {
    match source {
        MappingSource::Override => "override",
        MappingSource::VerifiedEmail => "verified email",
    }
}

pub(super) fn describe_cached(entry: Option<&CacheEntry>) -> String {
    match entry.map(|e| &e.value) {
        None => "(undecodable; treated as a miss)".to_owned(),
        Some(CacheValue::Forward { outcome, .. }) => describe_outcome(outcome),
        Some(CacheValue::Reverse { slack_user, .. }) => match slack_user {
            Some(user) => format!("mentions as {user}"),
            None => "no Slack user to mention".to_owned(),
        },
    }
}

pub(super) fn describe_outcome(outcome: &MappingOutcome) -> String {
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

pub(super) fn target_json(target: &OverrideTarget) -> Value {
    match target {
        OverrideTarget::PdUser(id) => json!({ "pd_user": id.as_str() }),
        OverrideTarget::PdEmail(email) => json!({ "pd_email": email.as_str() }),
    }
}

/// A table with left-aligned columns separated by two spaces.
pub(super) fn table(rows: &[Vec<String>]) -> String {
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

pub(super) fn list(args: &ListArgs) -> Report {
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
    let now = crate::clock::now();
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
                        "expires_at": crate::ops::status::rfc3339(row.expires_at),
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
                    crate::ops::status::rfc3339(row.expires_at)
                } else {
                    format!("{} (expired)", crate::ops::status::rfc3339(row.expires_at))
                };
                vec![row.key.clone(), expiry, describe_cached(row.entry.as_ref())]
            }));
            out.push_str(&table(&lines));
        }
    }
    Report::ok(out)
}
