//! The `[[identity]]` table of the configuration file: read, validated, edited in place with
//! `toml_edit` and written atomically.

use std::io::Write as _;
use std::path::Path;

use identity::{OverrideEntry, OverrideTarget, Overrides};
use ids::{Email, PdUserId, SlackUserId};
use serde::Deserialize;

use super::*;

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

pub(super) fn parse_document(text: &str, source: &str) -> Result<toml_edit::DocumentMut, String> {
    text.parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("invalid config: {source}: {}", one_line(&e.to_string())))
}

/// The `[[identity]]` array of a document, created empty (at the end) when `create` is set.
pub(super) fn identity_tables<'d>(
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

pub(super) fn slack_user_of(table: &toml_edit::Table) -> Option<&str> {
    table.get("slack_user").and_then(toml_edit::Item::as_str)
}

pub(super) fn target_of(table: &toml_edit::Table) -> Option<OverrideTarget> {
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

pub(super) fn set_target(table: &mut toml_edit::Table, entry: &OverrideEntry) {
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
