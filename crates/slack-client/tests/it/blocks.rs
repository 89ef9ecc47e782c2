//! Block Kit serializes exactly as Slack expects and round-trips through serde.

use std::collections::BTreeMap;

use ids::{ChannelId, MessageTs, SlackUserId, TriggerId};
use pretty_assertions::assert_eq;
use serde_json::json;
use slack_client::api::{OpenView, PostMessage, ResponseUrlMessage, UpdateMessage};
use slack_client::blocks::{
    Block, ButtonStyle, ConfirmDialog, Element, ResponseAction, Text, View, ViewType,
};

fn roundtrip<T>(value: &T) -> serde_json::Value
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, value);
    assert!(!json.to_string().contains("null"), "no nulls: {json}");
    json
}

fn incident_card() -> Vec<Block> {
    vec![
        Block::header("[#1234] Disk full on db-1"),
        Block::Section {
            block_id: Some("summary".into()),
            text: Some(Text::mrkdwn("*Status:* triggered")),
            fields: vec![
                Text::mrkdwn("*Service*\ndb"),
                Text::mrkdwn("*Urgency*\nhigh"),
            ],
            accessory: Some(Element::Button {
                action_id: "open".into(),
                text: Text::plain("Open in PagerDuty"),
                value: None,
                style: None,
                confirm: None,
                url: Some("https://acme.pagerduty.com/incidents/PQ1K5C8".into()),
            }),
        },
        Block::divider(),
        Block::Actions {
            block_id: Some("pd:PQ1K5C8".into()),
            elements: vec![
                Element::Button {
                    action_id: "pd_ack".into(),
                    text: Text::plain("Acknowledge"),
                    value: Some("PQ1K5C8".into()),
                    style: Some(ButtonStyle::Primary),
                    confirm: None,
                    url: None,
                },
                Element::Button {
                    action_id: "pd_resolve".into(),
                    text: Text::plain("Resolve"),
                    value: Some("PQ1K5C8".into()),
                    style: Some(ButtonStyle::Danger),
                    confirm: Some(ConfirmDialog {
                        title: Text::plain("Resolve incident?"),
                        text: Text::mrkdwn("This resolves *#1234* in PagerDuty."),
                        confirm: Some(Text::plain("Resolve")),
                        deny: Some(Text::plain("Cancel")),
                        style: Some(ButtonStyle::Danger),
                    }),
                    url: None,
                },
                Element::UsersSelect {
                    action_id: "pd_reassign".into(),
                    placeholder: Some(Text::plain("Reassign to…")),
                    initial_user: None,
                },
            ],
        },
        Block::context("Last update 12:00 UTC by <@U123>"),
    ]
}

#[test]
fn incident_card_serializes_exactly() {
    let json = roundtrip(&incident_card());
    assert_eq!(
        json,
        json!([
            {"type": "header", "text": {"type": "plain_text", "text": "[#1234] Disk full on db-1"}},
            {"type": "section", "block_id": "summary",
             "text": {"type": "mrkdwn", "text": "*Status:* triggered"},
             "fields": [{"type": "mrkdwn", "text": "*Service*\ndb"}, {"type": "mrkdwn", "text": "*Urgency*\nhigh"}],
             "accessory": {"type": "button", "action_id": "open",
                           "text": {"type": "plain_text", "text": "Open in PagerDuty"},
                           "url": "https://acme.pagerduty.com/incidents/PQ1K5C8"}},
            {"type": "divider"},
            {"type": "actions", "block_id": "pd:PQ1K5C8", "elements": [
                {"type": "button", "action_id": "pd_ack", "text": {"type": "plain_text", "text": "Acknowledge"},
                 "value": "PQ1K5C8", "style": "primary"},
                {"type": "button", "action_id": "pd_resolve", "text": {"type": "plain_text", "text": "Resolve"},
                 "value": "PQ1K5C8", "style": "danger",
                 "confirm": {"title": {"type": "plain_text", "text": "Resolve incident?"},
                             "text": {"type": "mrkdwn", "text": "This resolves *#1234* in PagerDuty."},
                             "confirm": {"type": "plain_text", "text": "Resolve"},
                             "deny": {"type": "plain_text", "text": "Cancel"},
                             "style": "danger"}},
                {"type": "users_select", "action_id": "pd_reassign",
                 "placeholder": {"type": "plain_text", "text": "Reassign to…"}}
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Last update 12:00 UTC by <@U123>"}]}
        ])
    );
    insta::assert_json_snapshot!("incident_card", json);
}

fn note_modal() -> View {
    View {
        callback_id: Some("pd_note".into()),
        submit: Some(Text::plain("Add note")),
        close: Some(Text::plain("Cancel")),
        private_metadata: Some(r#"{"incident":"PQ1K5C8","channel":"C1","ts":"1.2"}"#.into()),
        blocks: vec![
            Block::Input {
                block_id: Some("note".into()),
                label: Text::plain("Note"),
                element: Element::PlainTextInput {
                    action_id: "text".into(),
                    multiline: Some(true),
                    max_length: Some(2000),
                    min_length: None,
                    placeholder: None,
                    initial_value: None,
                },
                optional: Some(false),
                hint: None,
            },
            Block::Input {
                block_id: Some("assignee".into()),
                label: Text::plain("Assignee"),
                element: Element::UsersSelect {
                    action_id: "user".into(),
                    placeholder: Some(Text::plain("Pick someone")),
                    initial_user: Some(SlackUserId::new("U1")),
                },
                optional: Some(true),
                hint: Some(Text::plain("Optional")),
            },
        ],
        ..View::modal("Add a note")
    }
}

#[test]
fn modal_view_and_open_request_serialize_exactly() {
    let open = OpenView {
        trigger_id: TriggerId::new("123.456.abc"),
        view: note_modal(),
    };
    let json = roundtrip(&open);
    assert_eq!(
        json,
        json!({
            "trigger_id": "123.456.abc",
            "view": {
                "type": "modal",
                "callback_id": "pd_note",
                "title": {"type": "plain_text", "text": "Add a note"},
                "submit": {"type": "plain_text", "text": "Add note"},
                "close": {"type": "plain_text", "text": "Cancel"},
                "private_metadata": "{\"incident\":\"PQ1K5C8\",\"channel\":\"C1\",\"ts\":\"1.2\"}",
                "blocks": [
                    {"type": "input", "block_id": "note", "label": {"type": "plain_text", "text": "Note"},
                     "element": {"type": "plain_text_input", "action_id": "text", "multiline": true, "max_length": 2000},
                     "optional": false},
                    {"type": "input", "block_id": "assignee", "label": {"type": "plain_text", "text": "Assignee"},
                     "element": {"type": "users_select", "action_id": "user",
                                 "placeholder": {"type": "plain_text", "text": "Pick someone"},
                                 "initial_user": "U1"},
                     "optional": true, "hint": {"type": "plain_text", "text": "Optional"}}
                ]
            }
        })
    );
}

#[test]
fn response_actions_serialize_exactly() {
    let mut errors = BTreeMap::new();
    errors.insert("note".to_owned(), "A note cannot be empty".to_owned());
    assert_eq!(
        roundtrip(&ResponseAction::Errors { errors }),
        json!({"response_action": "errors", "errors": {"note": "A note cannot be empty"}})
    );
    assert_eq!(
        roundtrip(&ResponseAction::Clear),
        json!({"response_action": "clear"})
    );
    let update = roundtrip(&ResponseAction::Update {
        view: View::modal("Done"),
    });
    assert_eq!(
        update,
        json!({"response_action": "update",
               "view": {"type": "modal", "title": {"type": "plain_text", "text": "Done"}, "blocks": []}})
    );
}

#[test]
fn message_requests_serialize_exactly() {
    let post = PostMessage {
        thread_ts: Some(MessageTs::new("1503435956.000247")),
        ..PostMessage::new(ChannelId::new("C1"), "hello", vec![Block::divider()])
    };
    assert_eq!(
        roundtrip(&post),
        json!({"channel": "C1", "text": "hello", "blocks": [{"type": "divider"}], "thread_ts": "1503435956.000247"})
    );
    let update = UpdateMessage {
        channel: ChannelId::new("C1"),
        ts: MessageTs::new("1503435956.000247"),
        text: "t".into(),
        blocks: vec![],
    };
    assert_eq!(
        roundtrip(&update),
        json!({"channel": "C1", "ts": "1503435956.000247", "text": "t", "blocks": []})
    );
    assert_eq!(
        roundtrip(&ResponseUrlMessage::ephemeral("Acknowledged")),
        json!({"text": "Acknowledged", "response_type": "ephemeral", "replace_original": false, "delete_original": false})
    );
    assert_eq!(
        roundtrip(&ResponseUrlMessage::replace("x", vec![])),
        json!({"text": "x", "replace_original": true, "delete_original": false})
    );
}

#[test]
fn slack_rendered_blocks_parse_into_our_types() {
    // Blocks exactly as Slack echoes them in views.open / views.update / socket-mode examples.
    let echoed = json!([
        {"type": "input", "block_id": "a_block_id", "label": {"type": "plain_text", "text": "A simple label", "emoji": true},
         "optional": false, "element": {"type": "plain_text_input", "action_id": "an_action_id"}},
        {"type": "section", "block_id": "s_block", "text": {"type": "plain_text", "text": "I am but an updated modal", "emoji": true},
         "accessory": {"type": "button", "action_id": "button_4", "text": {"type": "plain_text", "text": "Click me"}}},
        {"type": "actions", "block_id": "b", "elements": [{"type": "button", "action_id": "a",
         "text": {"type": "plain_text", "text": "Click Me!", "emoji": true}, "value": "underlying"}]}
    ]);
    let blocks: Vec<Block> = serde_json::from_value(echoed.clone()).unwrap();
    assert_eq!(blocks[0].block_id(), Some("a_block_id"));
    match &blocks[1] {
        Block::Section {
            accessory: Some(el),
            ..
        } => assert_eq!(el.action_id(), "button_4"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(serde_json::to_value(&blocks).unwrap(), echoed);
}

#[test]
fn view_type_and_text_helpers() {
    assert_eq!(serde_json::to_value(ViewType::Home).unwrap(), json!("home"));
    assert_eq!(Text::mrkdwn("*x*").text(), "*x*");
    let button = Element::button("pd_ack", "Acknowledge", "PQ1K5C8");
    assert_eq!(
        serde_json::to_value(&button).unwrap(),
        json!({"type": "button", "action_id": "pd_ack", "text": {"type": "plain_text", "text": "Acknowledge"}, "value": "PQ1K5C8"})
    );
}

#[test]
fn truncation_keeps_entities_mentions_and_graphemes_whole() {
    use slack_client::blocks::{char_len, split_mrkdwn, truncate_mrkdwn, truncate_plain};
    // Short texts are untouched.
    assert_eq!(truncate_mrkdwn("a &amp; b", 9), "a &amp; b");
    // Cutting inside `&amp;` drops the whole entity; the ellipsis counts.
    assert_eq!(truncate_mrkdwn("abc &amp; def", 8), "abc…");
    assert_eq!(truncate_mrkdwn("ab&lt;cd", 5), "ab…");
    // A mention or a link is kept whole or dropped.
    assert_eq!(truncate_mrkdwn("hi <@U123ABC> there", 10), "hi…");
    assert_eq!(
        truncate_mrkdwn("<https://x.example/a|link text> tail", 33),
        "<https://x.example/a|link text>…"
    );
    // A combining sequence and an emoji ZWJ sequence are not split.
    assert_eq!(truncate_mrkdwn("ae\u{301}e\u{301}", 3), "a…");
    let family = "👩\u{200d}👩\u{200d}👧";
    assert_eq!(truncate_plain(&format!("x{family}{family}"), 6), "x…");
    assert_eq!(char_len(&truncate_plain(&"é".repeat(200), 150)), 150);
    // Splitting loses nothing but whitespace at a break, and never splits a unit.
    let text = format!("{} <@U1> {}", "&amp;".repeat(5), "word ".repeat(10));
    let pieces = split_mrkdwn(&text, 12);
    assert!(pieces.iter().all(|p| char_len(p) <= 12), "{pieces:?}");
    assert!(
        pieces
            .iter()
            .all(|p| p.matches('&').count() == p.matches(';').count())
    );
    let joined: String = pieces.concat().split_whitespace().collect();
    assert_eq!(joined, text.split_whitespace().collect::<String>());
    assert!(split_mrkdwn("  \n", 10).is_empty());
}
