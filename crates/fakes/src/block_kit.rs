//! Slack's documented Block Kit limits, checked on the JSON the app sends, as the fake Slack
//! enforces them.
//!
//! The limits are those of docs.slack.dev/reference/block-kit (blocks, block elements,
//! composition objects, surfaces), tabulated in `protocol-notes.md` §3.6 (see
//! `fixtures/SOURCES.md`). Lengths are characters of the JSON string as sent (after the app's
//! `&amp;`/`&lt;`/`&gt;` escaping), counted as Unicode scalar values, as Slack's own SDKs do.
//! This is written against the JSON, independently of `slack-client`'s Block Kit types, so a
//! bug in those types cannot hide from it. A violation names its place as a JSON pointer, the
//! way Slack's `response_metadata.messages` do.

use serde_json::Value;

/// Blocks in one message.
pub const MESSAGE_BLOCKS: usize = 50;
/// Blocks in one modal or Home view.
pub const VIEW_BLOCKS: usize = 100;
/// A message's top-level `text` (`chat.update` documents `msg_too_long` past 4,000).
pub const MESSAGE_TEXT: usize = 4000;

type Check = Result<(), String>;

fn len(text: &str) -> usize {
    text.chars().count()
}

fn fail(at: &str, what: &str) -> Check {
    Err(format!("[ERROR] {what} [json-pointer:{at}]"))
}

fn max_str(value: &Value, at: &str, max: usize) -> Check {
    match value {
        Value::Null => Ok(()),
        Value::String(s) if len(s) <= max => Ok(()),
        Value::String(_) => fail(at, &format!("must be at most {max} characters")),
        _ => fail(at, "must be a string"),
    }
}

/// A text object: `plain_text` (or also `mrkdwn` unless `plain_only`), 1..=`max` characters.
fn text_object(value: &Value, at: &str, max: usize, plain_only: bool) -> Check {
    let kind = value["type"].as_str().unwrap_or_default();
    if kind != "plain_text" && (plain_only || kind != "mrkdwn") {
        let allowed = if plain_only {
            "plain_text"
        } else {
            "plain_text or mrkdwn"
        };
        return fail(&format!("{at}/type"), &format!("must be {allowed}"));
    }
    match value["text"].as_str() {
        None => fail(&format!("{at}/text"), "missing required field: text"),
        Some("") => fail(&format!("{at}/text"), "must be at least 1 character"),
        Some(t) if len(t) > max => fail(
            &format!("{at}/text"),
            &format!("must be at most {max} characters"),
        ),
        Some(_) => Ok(()),
    }
}

fn optional_text(value: &Value, at: &str, max: usize, plain_only: bool) -> Check {
    if value.is_null() {
        Ok(())
    } else {
        text_object(value, at, max, plain_only)
    }
}

fn id(value: &Value, at: &str) -> Check {
    max_str(value, at, 255)
}

fn items<'a>(value: &'a Value, at: &str, min: usize, max: usize) -> Result<&'a [Value], String> {
    let Some(list) = value.as_array() else {
        return Err(format!("[ERROR] must be an array [json-pointer:{at}]"));
    };
    if list.len() < min || list.len() > max {
        return Err(format!(
            "[ERROR] must hold {min} to {max} items [json-pointer:{at}]"
        ));
    }
    Ok(list)
}

/// An option of a select (`in_overflow` false) or of an overflow menu. Menus take only
/// `plain_text` options, and only an overflow menu's option may carry a `url` (at most 3000).
fn option(value: &Value, at: &str, in_overflow: bool) -> Check {
    text_object(&value["text"], &format!("{at}/text"), 75, true)?;
    max_str(&value["value"], &format!("{at}/value"), 150)?;
    if in_overflow {
        max_str(&value["url"], &format!("{at}/url"), 3000)?;
    } else if !value["url"].is_null() {
        return fail(
            &format!("{at}/url"),
            "url is only allowed in overflow menus",
        );
    }
    optional_text(
        &value["description"],
        &format!("{at}/description"),
        75,
        true,
    )
}

fn confirm(value: &Value, at: &str) -> Check {
    if value.is_null() {
        return Ok(());
    }
    text_object(&value["title"], &format!("{at}/title"), 100, true)?;
    text_object(&value["text"], &format!("{at}/text"), 300, false)?;
    optional_text(&value["confirm"], &format!("{at}/confirm"), 30, true)?;
    optional_text(&value["deny"], &format!("{at}/deny"), 30, true)
}

/// An interactive or input element.
fn element(value: &Value, at: &str) -> Check {
    id(&value["action_id"], &format!("{at}/action_id"))?;
    let placeholder =
        |v: &Value| optional_text(&v["placeholder"], &format!("{at}/placeholder"), 150, true);
    match value["type"].as_str().unwrap_or_default() {
        "button" => {
            text_object(&value["text"], &format!("{at}/text"), 75, true)?;
            max_str(&value["value"], &format!("{at}/value"), 2000)?;
            max_str(&value["url"], &format!("{at}/url"), 3000)?;
            confirm(&value["confirm"], &format!("{at}/confirm"))
        }
        "users_select" | "conversations_select" | "channels_select" => {
            placeholder(value)?;
            confirm(&value["confirm"], &format!("{at}/confirm"))
        }
        "static_select" | "multi_static_select" => {
            placeholder(value)?;
            let options = items(&value["options"], &format!("{at}/options"), 1, 100)?;
            for (i, o) in options.iter().enumerate() {
                option(o, &format!("{at}/options/{i}"), false)?;
            }
            confirm(&value["confirm"], &format!("{at}/confirm"))
        }
        "multi_external_select" => {
            placeholder(value)?;
            if let Some(options) = value.get("initial_options") {
                let options = items(options, &format!("{at}/initial_options"), 1, 100)?;
                for (i, o) in options.iter().enumerate() {
                    option(o, &format!("{at}/initial_options/{i}"), false)?;
                }
            }
            confirm(&value["confirm"], &format!("{at}/confirm"))
        }
        "overflow" => {
            let options = items(&value["options"], &format!("{at}/options"), 2, 5)?;
            for (i, o) in options.iter().enumerate() {
                option(o, &format!("{at}/options/{i}"), true)?;
            }
            confirm(&value["confirm"], &format!("{at}/confirm"))
        }
        "plain_text_input" => {
            placeholder(value)?;
            for field in ["max_length", "min_length"] {
                if value[field].as_u64().is_some_and(|n| n > 3000) {
                    return fail(&format!("{at}/{field}"), "must be at most 3000");
                }
            }
            max_str(
                &value["initial_value"],
                &format!("{at}/initial_value"),
                3000,
            )
        }
        other => fail(
            &format!("{at}/type"),
            &format!("unsupported element type {other:?}"),
        ),
    }
}

/// One layout block of a message (`in_view` allows input blocks).
fn block(value: &Value, at: &str, in_view: bool) -> Check {
    id(&value["block_id"], &format!("{at}/block_id"))?;
    match value["type"].as_str().unwrap_or_default() {
        "section" => {
            let (text, fields) = (&value["text"], &value["fields"]);
            if text.is_null() && fields.is_null() {
                return fail(at, "a section needs text or fields");
            }
            optional_text(text, &format!("{at}/text"), 3000, false)?;
            if !fields.is_null() {
                let list = items(fields, &format!("{at}/fields"), 1, 10)?;
                for (i, f) in list.iter().enumerate() {
                    text_object(f, &format!("{at}/fields/{i}"), 2000, false)?;
                }
            }
            if !value["accessory"].is_null() {
                element(&value["accessory"], &format!("{at}/accessory"))?;
            }
            Ok(())
        }
        "header" => text_object(&value["text"], &format!("{at}/text"), 150, true),
        "context" => {
            let list = items(&value["elements"], &format!("{at}/elements"), 1, 10)?;
            for (i, e) in list.iter().enumerate() {
                if e["type"] != "image" {
                    text_object(e, &format!("{at}/elements/{i}"), 3000, false)?;
                }
            }
            Ok(())
        }
        "actions" => {
            let list = items(&value["elements"], &format!("{at}/elements"), 1, 25)?;
            for (i, e) in list.iter().enumerate() {
                element(e, &format!("{at}/elements/{i}"))?;
            }
            Ok(())
        }
        "divider" => Ok(()),
        "input" if in_view => {
            text_object(&value["label"], &format!("{at}/label"), 2000, true)?;
            optional_text(&value["hint"], &format!("{at}/hint"), 2000, true)?;
            element(&value["element"], &format!("{at}/element"))
        }
        other => fail(
            &format!("{at}/type"),
            &format!("unsupported block type {other:?}"),
        ),
    }
}

/// Checks a message's `blocks` (a JSON array, or absent) against the documented limits. `Err`
/// carries a Slack-style message; the caller answers `invalid_blocks`.
pub fn check_message(blocks: &Value) -> Check {
    if blocks.is_null() {
        return Ok(());
    }
    let list = items(blocks, "/blocks", 0, MESSAGE_BLOCKS)?;
    for (i, b) in list.iter().enumerate() {
        block(b, &format!("/blocks/{i}"), false)?;
    }
    Ok(())
}

/// Whether a message's top-level `text` is over [`MESSAGE_TEXT`].
pub fn text_too_long(text: &str) -> bool {
    len(text) > MESSAGE_TEXT
}

/// Checks a modal or Home view against the documented limits; the caller answers
/// `invalid_arguments` with the messages, as Slack does for views.
pub fn check_view(view: &Value) -> Check {
    text_object(&view["title"], "/view/title", 24, true)?;
    optional_text(&view["submit"], "/view/submit", 24, true)?;
    optional_text(&view["close"], "/view/close", 24, true)?;
    max_str(&view["private_metadata"], "/view/private_metadata", 3000)?;
    id(&view["callback_id"], "/view/callback_id")?;
    max_str(&view["external_id"], "/view/external_id", 255)?;
    let list = items(&view["blocks"], "/view/blocks", 0, VIEW_BLOCKS)?;
    let mut has_input = false;
    for (i, b) in list.iter().enumerate() {
        has_input |= b["type"] == "input";
        block(b, &format!("/view/blocks/{i}"), true)?;
    }
    if has_input && view["type"] == "modal" && view["submit"].is_null() {
        return fail("/view/submit", "a modal with input blocks needs submit");
    }
    Ok(())
}
