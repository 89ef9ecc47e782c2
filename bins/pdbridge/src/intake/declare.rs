//! Declaring incidents from Slack: `/pd trigger`, the **Declare incident** message shortcut
//! and the declare modal's submission.

use serde_json::{Value, json};

/// The `callback_id` of the **Declare incident** message shortcut.
pub const SHORTCUT_DECLARE: &str = "pdbridge_declare";
/// The shortcut's name in Slack's message menu.
pub const SHORTCUT_NAME: &str = "Declare incident";

/// The manifest entry of the message shortcut.
pub fn shortcut_manifest() -> Value {
    json!({
        "name": SHORTCUT_NAME,
        "type": "message",
        "callback_id": SHORTCUT_DECLARE,
        "description": "Declare a PagerDuty incident about this message"
    })
}
