//! Unit tests of the demo.

use super::*;
use serde_json::json;

#[test]
fn mrkdwn_reads_plainly() {
    assert_eq!(
        plain(":red_circle: *Triggered* · <https://x/incidents/Q1|#1> · a &lt;b&gt; &amp; c"),
        "🔴 *Triggered* · #1 · a <b> & c"
    );
    assert_eq!(plain("<@U0ALICE> acknowledged"), "@Alice acknowledged");
    assert_eq!(plain("<@U0NOBODY> hi"), "@U0NOBODY hi");
    assert_eq!(plain("unclosed <tag"), "unclosed <tag");
}

#[test]
fn a_card_renders_as_a_box_with_buttons_and_thread() {
    let message = FakeMessage {
        channel: ChannelId::new("C1"),
        ts: MessageTs::new("1.1"),
        thread_ts: None,
        text: "[Triggered] #1 Disk full".to_owned(),
        blocks: json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Disk full"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Triggered*"},
             "fields": [{"type": "mrkdwn", "text": "*Status:*\nTriggered"},
                        {"type": "mrkdwn", "text": "*Assigned:*\nAlice"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": ":warning: late"}]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}},
                {"type": "button", "text": {"type": "plain_text", "text": "Resolve"}}]}
        ]),
        edits: Vec::new(),
        metadata: None,
    };
    let text = card_text(&message, &["@Alice acknowledged".to_owned()]);
    let body: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        body,
        [
            "│ DISK FULL",
            "│ Triggered",
            "│ Status: Triggered │ Assigned: Alice",
            "│ ⚠ late",
            "│ [Acknowledge] [Resolve]",
            "│   ↳ @Alice acknowledged",
            "└──────────────────────────────────────────────",
        ]
    );
}
