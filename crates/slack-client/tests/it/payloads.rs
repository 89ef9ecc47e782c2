//! Every fixture in `fixtures/slack-payloads/` parses into the typed models with real values.

use ids::{ChannelId, MessageTs, SlackTeamId, SlackUserId, TriggerId, ViewId};
use slack_client::blocks::ViewType;
use slack_client::interaction::{InteractionPayload, SlashCommand, SocketModeFrame};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/slack-payloads/",
            $name
        ))
    };
}

/// Encodes a JSON payload the way Slack does: `payload=<percent-encoded JSON>`.
fn form(json: &str) -> Vec<u8> {
    serde_urlencoded::to_string([("payload", json)])
        .unwrap()
        .into_bytes()
}

fn raw_body(wrapper: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(wrapper).unwrap();
    assert_eq!(v["content_type"], "application/x-www-form-urlencoded");
    v["raw_body"].as_str().unwrap().to_owned()
}

fn block_actions(json: &str) -> slack_client::interaction::BlockActions {
    match InteractionPayload::from_form(&form(json)).unwrap() {
        InteractionPayload::BlockActions(p) => *p,
        other => panic!("expected block_actions, got {other:?}"),
    }
}

#[test]
fn block_actions_docs_example() {
    let p = block_actions(fixture!("block_actions.docs-example.json"));
    assert_eq!(p.user.id, SlackUserId::new("UA8RXUSPL"));
    assert_eq!(p.user.team_id, Some(SlackTeamId::new("T9TK3CUKW")));
    assert_eq!(p.user.username.as_deref(), Some("jtorrance"));
    let team = p.team.as_ref().unwrap();
    assert_eq!(team.id, SlackTeamId::new("T9TK3CUKW"));
    assert_eq!(team.domain.as_deref(), Some("example"));
    assert_eq!(p.container.kind, "message_attachment");
    assert_eq!(
        p.message_ref(),
        Some((
            &ChannelId::new("CBR2V3XEX"),
            &MessageTs::new("1548261231.000200")
        ))
    );
    assert_eq!(p.container.is_ephemeral, Some(false));
    assert_eq!(
        p.trigger_id,
        Some(TriggerId::new(
            "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3"
        ))
    );
    assert_eq!(
        p.response_url.as_ref().unwrap().as_str(),
        "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209"
    );
    assert_eq!(
        p.channel.as_ref().unwrap().name.as_deref(),
        Some("review-updates")
    );
    assert_eq!(
        p.message.as_ref().unwrap().bot_id.as_deref(),
        Some("BAH5CA16Z")
    );
    assert_eq!(p.actions.len(), 1);
    let a = &p.actions[0];
    assert_eq!(a.action_id, "WaXA");
    assert_eq!(a.block_id, "=qXel");
    assert_eq!(a.value.as_deref(), Some("click_me_123"));
    assert_eq!(a.kind.as_deref(), Some("button"));
    assert_eq!(a.action_ts, Some(MessageTs::new("1548426417.840180")));
    assert_eq!(a.selected_user, None);
    // The deprecated verification token is never kept.
    assert!(!format!("{p:?}").contains("9s8d9as89d8as9d8as989"));
}

#[test]
fn block_actions_home_view_with_confirm() {
    let p = block_actions(fixture!("block_actions.home-view-with-confirm.json"));
    assert_eq!(p.user.id, SlackUserId::new("U12345678"));
    assert_eq!(p.container.kind, "view");
    assert_eq!(p.container.view_id, Some(ViewId::new("V12345678")));
    assert_eq!(p.message_ref(), None);
    assert_eq!(p.response_url, None);
    let view = p.view.as_ref().unwrap();
    assert_eq!(view.kind, ViewType::Home);
    assert_eq!(view.hash.as_deref(), Some("1574381430.230cf862"));
    assert_eq!(view.root_view_id, Some(ViewId::new("V12345678")));
    assert_eq!(view.previous_view_id, None);
    assert!(view.state.values.is_empty());
    assert_eq!(p.actions[0].action_id, "clear-settings-button");
    assert_eq!(p.actions[0].block_id, "lMr");
    assert_eq!(p.actions[0].value, None);
    assert_eq!(
        p.actions[0].action_ts,
        Some(MessageTs::new("1574383474.049185"))
    );
}

#[test]
fn block_actions_message_with_state() {
    let p = block_actions(fixture!("block_actions.message-with-state.json"));
    assert_eq!(p.container.is_ephemeral, Some(true));
    assert!(p.message.is_none(), "ephemeral sources carry no message");
    assert_eq!(
        p.message_ref(),
        Some((
            &ChannelId::new("C111"),
            &MessageTs::new("1606455372.001200")
        ))
    );
    let state = p.state.as_ref().unwrap();
    let v = state.get("block_1", "action_1").unwrap();
    assert_eq!(v.kind.as_deref(), Some("external_select"));
    assert_eq!(v.selected_option.as_ref().unwrap().value, "schedule");
    assert_eq!(
        v.selected_option
            .as_ref()
            .unwrap()
            .text
            .as_ref()
            .unwrap()
            .text(),
        "Schedule"
    );
    assert_eq!(p.actions[0].action_id, "save");
    assert_eq!(p.actions[0].value.as_deref(), Some("1"));
}

#[test]
fn view_submission_state_and_metadata() {
    let json = fixture!("view_submission.json");
    let InteractionPayload::ViewSubmission(p) = InteractionPayload::from_form(&form(json)).unwrap()
    else {
        panic!("expected view_submission");
    };
    assert_eq!(p.user.id, SlackUserId::new("U12345678"));
    assert_eq!(
        p.team.as_ref().unwrap().domain.as_deref(),
        Some("domain-name")
    );
    assert_eq!(
        p.trigger_id,
        Some(TriggerId::new(
            "768915595217.771150964790.bbc12e4f1483ce782cd891edf9dca94c"
        ))
    );
    assert_eq!(p.view.id, ViewId::new("V12345678"));
    assert_eq!(p.view.kind, ViewType::Modal);
    assert_eq!(p.view.callback_id, "modal-callback-id");
    assert_eq!(p.view.private_metadata, "");
    assert_eq!(p.view.hash.as_deref(), Some("1569562184.10297bc3"));
    assert_eq!(p.view.title.as_ref().unwrap().text(), "title string");
    assert_eq!(p.view.blocks.len(), 3);
    assert!(p.response_urls.is_empty());
    let state = &p.view.state;
    assert_eq!(
        state.text("comment", "single_action"),
        Some("Just amazing!")
    );
    assert_eq!(
        state
            .get("date-of-visit", "single_action")
            .unwrap()
            .selected_date
            .as_deref(),
        Some("2019-09-23")
    );
    assert_eq!(
        state
            .get("rating", "single_action")
            .unwrap()
            .selected_option
            .as_ref()
            .unwrap()
            .value,
        "3"
    );
    assert_eq!(state.selected_user("comment", "single_action"), None);
    // BTreeMap keeps block ids ordered.
    let keys: Vec<_> = state.values.keys().map(String::as_str).collect();
    assert_eq!(keys, ["comment", "date-of-visit", "rating"]);
}

#[test]
fn view_submission_with_selected_user_and_metadata() {
    let json = serde_json::json!({
        "type": "view_submission",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": "U1", "team_id": "T1"},
        "view": {
            "id": "V1", "type": "modal", "callback_id": "pd_reassign",
            "private_metadata": "{\"incident\":\"PQ1K5C8\"}",
            "state": {"values": {
                "assignee": {"user": {"type": "users_select", "selected_user": "U777"}},
                "note": {"text": {"type": "plain_text_input", "value": null}}
            }}
        },
        "response_urls": []
    });
    let InteractionPayload::ViewSubmission(p) =
        InteractionPayload::from_json(&json.to_string()).unwrap()
    else {
        panic!("expected view_submission");
    };
    assert_eq!(p.view.private_metadata, "{\"incident\":\"PQ1K5C8\"}");
    assert_eq!(
        p.view.state.selected_user("assignee", "user"),
        Some(&SlackUserId::new("U777"))
    );
    assert_eq!(p.view.state.text("note", "text"), None);
}

#[test]
fn unknown_payload_type_is_other_without_token() {
    let json =
        r#"{"type":"view_closed","token":"secret-ish","user":{"id":"U1"},"view":{"id":"V1"}}"#;
    match InteractionPayload::from_form(&form(json)).unwrap() {
        InteractionPayload::Other { kind, raw } => {
            assert_eq!(kind, "view_closed");
            assert_eq!(raw["user"]["id"], "U1");
            assert!(raw.get("token").is_none());
        }
        other => panic!("expected Other, got {other:?}"),
    }
}

#[test]
fn malformed_interaction_bodies_are_errors() {
    assert!(InteractionPayload::from_form(b"nopayload=1").is_err());
    assert!(InteractionPayload::from_form(&form("{not json")).is_err());
    assert!(InteractionPayload::from_form(&form(r#"{"no":"type"}"#)).is_err());
    assert!(InteractionPayload::from_form(&form(r#"{"type":"block_actions"}"#)).is_err());
}

#[test]
fn slash_command_percent_encoded() {
    let body = raw_body(fixture!("slash_command.json"));
    let c = SlashCommand::from_form(body.as_bytes()).unwrap();
    assert_eq!(c.command, "/hello");
    assert_eq!(c.text, "");
    assert_eq!(c.team_id, SlackTeamId::new("T111"));
    assert_eq!(c.user_id, SlackUserId::new("W111"));
    assert_eq!(c.channel_id, ChannelId::new("C111"));
    assert_eq!(c.enterprise_name.as_deref(), Some("Sandbox Org"));
    assert_eq!(
        c.response_url.as_str(),
        "https://hooks.slack.com/commands/T111/111/xxx"
    );
    assert_eq!(c.trigger_id, TriggerId::new("111.222.xxx"));
    assert!(!format!("{c:?}").contains("token"));
}

#[test]
fn slash_command_docs_example_not_encoded() {
    let body = raw_body(fixture!("slash_command.docs-example.json"));
    let c = SlashCommand::from_form(body.as_bytes()).unwrap();
    assert_eq!(c.command, "/weather");
    assert_eq!(c.text, "94070");
    assert_eq!(c.enterprise_id.as_deref(), Some("E0001"));
    assert_eq!(c.enterprise_name.as_deref(), Some("Globular Construct Inc"));
    assert_eq!(c.user_name.as_deref(), Some("Steve"));
    assert_eq!(c.channel_id, ChannelId::new("C2147483705"));
    assert_eq!(
        c.response_url.as_str(),
        "https://hooks.slack.com/commands/1234/5678"
    );
    assert_eq!(c.api_app_id.as_deref(), Some("A123456"));
}

#[test]
fn slash_command_signing_docs_example() {
    let body = raw_body(fixture!("slash_command.signing-docs-example.json"));
    let c = SlashCommand::from_form(body.as_bytes()).unwrap();
    assert_eq!(c.command, "/webhook-collect");
    assert_eq!(c.team_id, SlackTeamId::new("T1DC2JH3J"));
    assert_eq!(c.channel_id, ChannelId::new("G8PSS9T3V"));
    assert_eq!(c.user_id, SlackUserId::new("U2CERLKJA"));
    assert_eq!(c.user_name.as_deref(), Some("roadrunner"));
    assert_eq!(
        c.response_url.as_str(),
        "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
    );
    assert_eq!(
        c.trigger_id,
        TriggerId::new("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    );
}

#[test]
fn socket_mode_hello_and_disconnect() {
    assert_eq!(
        SocketModeFrame::from_json(fixture!("socket_mode.hello.json")).unwrap(),
        SocketModeFrame::Hello { num_connections: 1 }
    );
    assert_eq!(
        SocketModeFrame::from_json(fixture!("socket_mode.disconnect.json")).unwrap(),
        SocketModeFrame::Disconnect {
            reason: "too_many_websockets".into()
        }
    );
}

#[test]
fn socket_mode_interactive_block_actions() {
    let SocketModeFrame::Envelope(env) =
        SocketModeFrame::from_json(fixture!("socket_mode.interactive.block_actions.json")).unwrap()
    else {
        panic!("expected envelope");
    };
    assert_eq!(env.envelope_id, "xxx-11-222-yyy-zzz");
    assert_eq!(env.kind, "interactive");
    assert!(!env.accepts_response_payload);
    let InteractionPayload::BlockActions(p) = env.interaction().unwrap() else {
        panic!("expected block_actions");
    };
    assert_eq!(
        p.message_ref(),
        Some((
            &ChannelId::new("C111"),
            &MessageTs::new("1605853634.000400")
        ))
    );
    assert_eq!(p.actions[0].value.as_deref(), Some("underlying"));
    assert_eq!(p.message.as_ref().unwrap().blocks.len(), 1);
}

#[test]
fn socket_mode_slash_commands() {
    let SocketModeFrame::Envelope(env) =
        SocketModeFrame::from_json(fixture!("socket_mode.slash_commands.json")).unwrap()
    else {
        panic!("expected envelope");
    };
    assert_eq!(env.kind, "slash_commands");
    assert!(env.accepts_response_payload);
    let c = env.slash_command().unwrap();
    assert_eq!(c.command, "/hi-socket-mode");
    assert_eq!(c.user_id, SlackUserId::new("U111"));
}

#[test]
fn socket_mode_events_api_envelope() {
    let SocketModeFrame::Envelope(env) =
        SocketModeFrame::from_json(fixture!("socket_mode.events_api.json")).unwrap()
    else {
        panic!("expected envelope");
    };
    assert_eq!(env.kind, "events_api");
    assert_eq!(env.retry_attempt, Some(0));
    assert_eq!(env.retry_reason.as_deref(), Some(""));
    assert_eq!(env.payload["event_id"], "Ev01ERKCFKK9");
    assert_eq!(env.payload["event"]["ts"], "1605853844.000800");
}
