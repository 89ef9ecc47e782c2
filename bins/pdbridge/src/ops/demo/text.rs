//! Slack messages made readable in a terminal.

use std::fmt::Write as _;

use fakes::slack::FakeMessage;
use serde_json::Value;

use super::*;

/// Slack mrkdwn made readable in a terminal: `<url|label>` → `label`, `<@U…>` → `@name`,
/// entities and the card's emoji codes decoded.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + len];
        if let Some(user) = inner.strip_prefix('@') {
            let name = PEOPLE
                .iter()
                .find(|p| p.slack == user)
                .map_or(user, |p| p.name);
            let _ = write!(out, "@{name}");
        } else if let Some((_, label)) = inner.split_once('|') {
            out.push_str(label);
        } else {
            out.push_str(inner);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out.replace(":red_circle:", "🔴")
        .replace(":large_yellow_circle:", "🟡")
        .replace(":white_check_mark:", "✅")
        .replace(":hourglass_flowing_sand:", "⏳")
        .replace(":warning:", "⚠")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub(super) fn text_of(v: &Value) -> String {
    plain(v.get("text").and_then(Value::as_str).unwrap_or_default())
}

/// A text rendering of a Block Kit card and its thread, as a box.
pub fn card_text(message: &FakeMessage, thread: &[String]) -> String {
    let mut lines = Vec::new();
    for block in message.blocks.as_array().into_iter().flatten() {
        match block.get("type").and_then(Value::as_str) {
            Some("header") => lines.push(text_of(&block["text"]).to_uppercase()),
            Some("section") => {
                if let Some(t) = block.get("text") {
                    lines.push(text_of(t));
                }
                let fields: Vec<String> = block
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|f| text_of(f).replace('*', "").replace('\n', " "))
                    .collect();
                if !fields.is_empty() {
                    lines.push(fields.join(" │ "));
                }
            }
            Some("context") => {
                let parts: Vec<String> = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(text_of)
                    .collect();
                lines.push(parts.join(" "));
            }
            Some("actions") => {
                let buttons: Vec<String> = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| format!("[{}]", text_of(&e["text"])))
                    .collect();
                lines.push(buttons.join(" "));
            }
            _ => {}
        }
    }
    for line in thread {
        lines.push(format!("  ↳ {line}"));
    }
    let lines: Vec<String> = lines.into_iter().map(|l| l.replace('*', "")).collect();
    let mut out = String::from("┌──────────────────────────────────────────────\n");
    for line in lines {
        let _ = writeln!(out, "│ {line}");
    }
    out.push_str("└──────────────────────────────────────────────\n");
    out
}
