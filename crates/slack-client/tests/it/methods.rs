//! The Web API examples in `fixtures/slack-methods/` decode into the typed responses, and every
//! documented error code is classified.

use ids::{ChannelId, Email, MessageTs, SlackTeamId, SlackUserId, ViewId};
use serde_json::Value;
use slack_client::api::{
    ApiEnvelope, AuthTestResponse, ConversationResponse, ErrorClass, PermalinkResponse,
    PostEphemeralResponse, PostMessageResponse, UpdateMessageResponse, UserResponse, ViewResponse,
    classify_error,
};
use slack_client::blocks::ViewType;

const METHODS: &[&str] = &[
    "apps.connections.open",
    "auth.test",
    "chat.delete",
    "chat.getPermalink",
    "chat.postEphemeral",
    "chat.postMessage",
    "chat.update",
    "conversations.info",
    "conversations.join",
    "users.info",
    "users.lookupByEmail",
    "views.open",
    "views.push",
    "views.update",
];

fn method(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/slack-methods/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn example<T: serde::de::DeserializeOwned>(name: &str, which: &str) -> (ApiEnvelope, T) {
    let v = method(name)["examples"][which]["example"].clone();
    let envelope: ApiEnvelope = serde_json::from_value(v.clone()).unwrap();
    assert!(envelope.ok, "{name} {which} is a success example");
    (envelope, serde_json::from_value(v).unwrap())
}

#[test]
fn chat_examples_decode() {
    let (_, post): (_, PostMessageResponse) = example("chat.postMessage", "success");
    assert_eq!(post.channel, ChannelId::new("C123ABC456"));
    assert_eq!(post.ts, MessageTs::new("1503435956.000247"));
    let message = post.message.unwrap();
    assert_eq!(message.ts, MessageTs::new("1503435956.000247"));
    assert_eq!(message.bot_id.as_deref(), Some("B123ABC456"));

    let (_, update): (_, UpdateMessageResponse) = example("chat.update", "success");
    assert_eq!(update.ts, MessageTs::new("1401383885.000061"));
    assert_eq!(
        update.text.as_deref(),
        Some("Updated text you carefully authored")
    );

    let (_, eph): (_, PostEphemeralResponse) = example("chat.postEphemeral", "success");
    assert_eq!(eph.message_ts, MessageTs::new("1502210682.580145"));

    let (_, link): (_, PermalinkResponse) = example("chat.getPermalink", "success_with_thread");
    assert_eq!(link.channel, ChannelId::new("C123ABC456"));
    assert_eq!(
        link.permalink.query(),
        Some("thread_ts=1358546515.000008&cid=C1H9RESGL")
    );
}

#[test]
fn views_examples_decode() {
    let (_, open): (_, ViewResponse) = example("views.open", "success");
    assert_eq!(open.view.id, ViewId::new("VMHU10V25"));
    assert_eq!(open.view.kind, ViewType::Modal);
    assert_eq!(open.view.callback_id, "identify_your_modals");
    assert_eq!(open.view.private_metadata, "Shh it is a secret");
    assert_eq!(open.view.hash.as_deref(), Some("156772938.1827394"));

    let (_, update): (_, ViewResponse) = example("views.update", "success");
    assert_eq!(update.view.id, ViewId::new("VNM522E2U"));
    assert_eq!(update.view.root_view_id, Some(ViewId::new("VNN729E3U")));
    assert_eq!(update.view.team_id, Some(SlackTeamId::new("T9M4RL1JM")));
}

#[test]
fn users_examples_decode() {
    for name in ["users.info", "users.lookupByEmail"] {
        let (_, r): (_, UserResponse) = example(name, "success");
        let u = r.user;
        assert_eq!(u.id, SlackUserId::new("W012A3CDE"));
        assert_eq!(u.team_id, Some(SlackTeamId::new("T012AB3C4")));
        assert_eq!(
            u.email(),
            Some(&Email::new("Spengler@Ghostbusters.example.com"))
        );
        assert_eq!(u.profile.display_name.as_deref(), Some("spengler"));
        assert!(!u.deleted && !u.is_bot && !u.is_restricted && !u.is_ultra_restricted);
        assert!(u.is_full_member());
    }
    let guest: UserResponse = serde_json::from_value(serde_json::json!({
        "ok": true, "user": {"id": "U9", "is_ultra_restricted": true, "profile": {}}
    }))
    .unwrap();
    assert!(!guest.user.is_full_member());
    assert_eq!(guest.user.email(), None);
}

#[test]
fn conversation_and_auth_examples_decode() {
    let (_, c): (_, ConversationResponse) = example("conversations.info", "success");
    assert_eq!(c.channel.id, ChannelId::new("C012AB3CD"));
    assert_eq!(c.channel.name.as_deref(), Some("general"));
    assert!(c.channel.is_channel && !c.channel.is_archived && !c.channel.is_private);
    let (_, im): (_, ConversationResponse) = example("conversations.info", "success_im");
    assert!(im.channel.is_im);
    assert_eq!(im.channel.name, None);

    let (_, bot): (_, AuthTestResponse) = example("auth.test", "success_with_bot_token");
    assert_eq!(bot.team_id, SlackTeamId::new("T0G9PQBBK"));
    assert_eq!(bot.user_id, SlackUserId::new("W23456789"));
    assert_eq!(bot.bot_id.as_deref(), Some("BZYBOTHED"));
    assert_eq!(bot.url.as_str(), "https://subarachnoid.slack.com/");
}

#[test]
fn error_examples_decode_as_envelopes() {
    let mut seen = 0;
    for name in METHODS {
        let examples = method(name)["examples"].clone();
        for (which, ex) in examples.as_object().unwrap() {
            let env: ApiEnvelope = serde_json::from_value(ex["example"].clone()).unwrap();
            if !env.ok {
                seen += 1;
                let code = env.error.as_deref().unwrap();
                assert!(!code.is_empty(), "{name} {which}");
            }
        }
    }
    assert!(seen >= 12, "saw {seen} error examples");
    let open_err: ApiEnvelope =
        serde_json::from_value(method("views.open")["examples"]["error"]["example"].clone())
            .unwrap();
    assert_eq!(open_err.error.as_deref(), Some("invalid_arguments"));
    assert_eq!(open_err.messages().as_deref(), Some("invalid `trigger_id`"));
    let scope: ApiEnvelope = serde_json::from_str(
        r#"{"ok":false,"error":"missing_scope","needed":"users:read.email","provided":"chat:write","warning":"superfluous_charset"}"#,
    )
    .unwrap();
    assert_eq!(scope.needed.as_deref(), Some("users:read.email"));
    assert_eq!(scope.provided.as_deref(), Some("chat:write"));
    assert_eq!(scope.warning.as_deref(), Some("superfluous_charset"));
}

#[test]
fn every_documented_error_code_is_classified() {
    let retryable = [
        "internal_error",
        "message_limit_exceeded",
        "rate_limited",
        "external_channel_migrating",
    ];
    let mut checked = 0;
    for name in METHODS {
        let errors = method(name)["errors"].clone();
        for code in errors.as_object().unwrap().keys() {
            let expected = if retryable.contains(&code.as_str()) {
                ErrorClass::Retryable
            } else {
                ErrorClass::Permanent
            };
            assert_eq!(classify_error(code), expected, "{name}: {code}");
            checked += 1;
        }
    }
    assert!(checked > 100, "checked {checked}");
    for permanent in [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "missing_scope",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "expired_trigger_id",
        "exchanged_trigger_id",
        "hash_conflict",
        "invalid_blocks",
        "user_not_found",
        "users_not_found",
    ] {
        assert_eq!(
            classify_error(permanent),
            ErrorClass::Permanent,
            "{permanent}"
        );
    }
    for transient in [
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
    ] {
        assert_eq!(
            classify_error(transient),
            ErrorClass::Retryable,
            "{transient}"
        );
    }
}
