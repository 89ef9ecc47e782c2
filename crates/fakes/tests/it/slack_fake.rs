//! The fake Slack behaves like the Web API for pdbridge's purposes and can click buttons.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fakes::http::{Handler, RecordedRequest, Reply, Server};
use fakes::slack::{FakeChannel, FakeSlack, FakeUser, Fault, InputValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ids::{ChannelId, MessageTs, SlackUserId, ViewId};
use serde_json::{Value, json};
use signing::SlackSigningSecret;

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn call(slack: &FakeSlack, method: &str, token: Option<&str>, body: Value) -> Answer {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/{method}", slack.api_url()))
        .header("content-type", "application/json; charset=utf-8");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    send(request).await
}

async fn get(slack: &FakeSlack, method_and_query: &str) -> Answer {
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("{}/{method_and_query}", slack.api_url()))
        .header("authorization", format!("Bearer {}", slack.token()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(request).await
}

async fn send(request: Request<Full<Bytes>>) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn seeded() -> FakeSlack {
    let slack = FakeSlack::start().await;
    slack.add_user(FakeUser::new("U1", "alice", "Alice@Example.com"));
    slack.add_user(FakeUser {
        is_ultra_restricted: true,
        ..FakeUser::new("U2", "guest", "guest@example.com")
    });
    slack.add_channel(FakeChannel::new("C1", "incidents", &["U1"]));
    slack.add_channel(FakeChannel {
        bot_is_member: false,
        ..FakeChannel::new("C2", "elsewhere", &[])
    });
    slack
}

fn card(incident: &str) -> Value {
    json!([{"type": "actions", "block_id": format!("pd:{incident}"), "elements": [
        {"type": "button", "action_id": "pd_ack", "text": {"type": "plain_text", "text": "Ack"}, "value": incident},
        {"type": "users_select", "action_id": "pd_reassign"}
    ]}])
}

#[tokio::test]
async fn auth_is_checked() {
    let slack = seeded().await;
    let none = call(&slack, "auth.test", None, json!({})).await;
    assert_eq!(none.body, json!({"ok": false, "error": "not_authed"}));
    let wrong = call(&slack, "auth.test", Some("xoxb-wrong"), json!({})).await;
    assert_eq!(wrong.body["error"], "invalid_auth");
    let right = call(&slack, "auth.test", Some(&slack.token()), json!({})).await;
    assert_eq!(right.body["ok"], true);
    assert_eq!(right.body["team_id"], slack.team_id().as_str());
    assert_eq!(right.body["user_id"], slack.bot_user_id().as_str());
    assert_eq!(slack.requests().len(), 3);
}

#[tokio::test]
async fn messages_threads_and_edits_are_stored() {
    let slack = seeded().await;
    let token = slack.token();
    let c1 = ChannelId::new("C1");
    let first = call(
        &slack,
        "chat.postMessage",
        Some(&token),
        json!({"channel": "C1", "text": "card", "blocks": card("P1")}),
    )
    .await;
    assert_eq!(first.body["ok"], true);
    let ts = MessageTs::new(first.body["ts"].as_str().unwrap());
    let reply = call(
        &slack,
        "chat.postMessage",
        Some(&token),
        json!({"channel": "C1", "text": "note", "thread_ts": ts}),
    )
    .await;
    let reply_ts = reply.body["ts"].as_str().unwrap().to_owned();
    assert!(reply_ts.as_str() > ts.as_str(), "ts strictly increases");
    let upd = call(
        &slack,
        "chat.update",
        Some(&token),
        json!({"channel": "C1", "ts": ts, "text": "card v2", "blocks": []}),
    )
    .await;
    assert_eq!(upd.body["ok"], true);

    let top = slack.messages(&c1);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].text, "card v2");
    assert_eq!(top[0].edits.len(), 1);
    assert_eq!(top[0].edits[0].0, "card");
    let thread = slack.thread(&c1, &ts);
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].text, "note");

    let missing = call(
        &slack,
        "chat.update",
        Some(&token),
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;
    assert_eq!(missing.body["error"], "message_not_found");
    let link = get(
        &slack,
        &format!("chat.getPermalink?channel=C1&message_ts={ts}"),
    )
    .await;
    assert!(
        link.body["permalink"]
            .as_str()
            .unwrap()
            .contains("/archives/C1/p")
    );
}

#[tokio::test]
async fn channel_errors_are_permanent_slack_codes() {
    let slack = seeded().await;
    let token = slack.token();
    let post = |channel: &'static str| {
        let slack = &slack;
        let token = token.clone();
        async move {
            call(
                slack,
                "chat.postMessage",
                Some(&token),
                json!({"channel": channel, "text": "x"}),
            )
            .await
            .body["error"]
                .clone()
        }
    };
    assert_eq!(post("C404").await, "channel_not_found");
    assert_eq!(post("C2").await, "not_in_channel");
    slack.set_archived(&ChannelId::new("C1"), true);
    assert_eq!(post("C1").await, "is_archived");
    let eph = call(
        &slack,
        "chat.postEphemeral",
        Some(&token),
        json!({"channel": "C2", "user": "U1", "text": "x"}),
    )
    .await;
    assert_eq!(eph.body["error"], "not_in_channel");
}

#[tokio::test]
async fn users_ephemerals_and_conversations() {
    let slack = seeded().await;
    let token = slack.token();
    let info = get(&slack, "users.info?user=U2").await;
    assert_eq!(info.body["user"]["is_ultra_restricted"], true);
    let by_email = get(&slack, "users.lookupByEmail?email=alice%40example.com").await;
    assert_eq!(by_email.body["user"]["id"], "U1");
    assert_eq!(
        by_email.body["user"]["profile"]["email"],
        "Alice@Example.com"
    );
    assert_eq!(
        get(&slack, "users.lookupByEmail?email=nobody%40x.y")
            .await
            .body["error"],
        "users_not_found"
    );
    assert_eq!(
        get(&slack, "users.info?user=U404").await.body["error"],
        "user_not_found"
    );
    let conv = get(&slack, "conversations.info?channel=C2").await;
    assert_eq!(conv.body["channel"]["is_member"], false);

    let eph = call(
        &slack,
        "chat.postEphemeral",
        Some(&token),
        json!({"channel": "C1", "user": "U1", "text": "only you"}),
    )
    .await;
    assert!(eph.body["message_ts"].is_string());
    let not_member = call(
        &slack,
        "chat.postEphemeral",
        Some(&token),
        json!({"channel": "C1", "user": "U2", "text": "x"}),
    )
    .await;
    assert_eq!(not_member.body["error"], "user_not_in_channel");
    let ephemerals = slack.ephemerals();
    assert_eq!(ephemerals.len(), 1);
    assert_eq!(ephemerals[0].user, SlackUserId::new("U1"));
    assert_eq!(ephemerals[0].text, "only you");
}

#[tokio::test]
async fn views_open_once_and_update_with_hash() {
    let slack = seeded().await;
    let token = slack.token();
    let trigger = slack.new_trigger_id();
    let view = json!({"type": "modal", "callback_id": "pd_note", "private_metadata": "P1",
                      "title": {"type": "plain_text", "text": "Note"}, "blocks": []});
    let opened = call(
        &slack,
        "views.open",
        Some(&token),
        json!({"trigger_id": trigger, "view": view}),
    )
    .await;
    assert_eq!(opened.body["ok"], true);
    assert_eq!(opened.body["view"]["callback_id"], "pd_note");
    let id = opened.body["view"]["id"].as_str().unwrap().to_owned();
    let hash = opened.body["view"]["hash"].as_str().unwrap().to_owned();
    let again = call(
        &slack,
        "views.open",
        Some(&token),
        json!({"trigger_id": trigger, "view": view}),
    )
    .await;
    assert_eq!(again.body["error"], "exchanged_trigger_id");

    let updated = call(
        &slack,
        "views.update",
        Some(&token),
        json!({"view_id": id, "hash": hash, "view": view}),
    )
    .await;
    assert_eq!(updated.body["ok"], true);
    let stale = call(
        &slack,
        "views.update",
        Some(&token),
        json!({"view_id": id, "hash": hash, "view": view}),
    )
    .await;
    assert_eq!(stale.body["error"], "hash_conflict");
    let views = slack.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].updates, 1);
    assert_eq!(views[0].id, ViewId::new(id));
}

#[tokio::test]
async fn faults_apply_once_each_in_order() {
    let slack = seeded().await;
    let token = slack.token();
    slack.inject(
        "auth.test",
        Fault::RateLimited {
            retry_after: Some(7),
        },
    );
    slack.inject("auth.test", Fault::RateLimited { retry_after: None });
    slack.inject("auth.test", Fault::ServerError(503));
    slack.inject(
        "auth.test",
        Fault::Api {
            error: "missing_scope".into(),
            needed: Some("users:read.email".into()),
        },
    );
    slack.inject("auth.test", Fault::Slow(Duration::from_millis(300)));
    let a = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert_eq!(
        (a.status, a.retry_after.as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("7"))
    );
    assert_eq!(a.body["error"], "ratelimited");
    let b = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert_eq!(
        (b.status, b.retry_after),
        (StatusCode::TOO_MANY_REQUESTS, None)
    );
    let c = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(c.body, Value::Null, "5xx bodies are HTML");
    let d = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert_eq!(d.body["needed"], "users:read.email");
    let started = std::time::Instant::now();
    let e = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.body["ok"], true);
    let f = call(&slack, "auth.test", Some(&token), json!({})).await;
    assert_eq!(f.body["ok"], true);
}

#[tokio::test]
async fn post_message_rate_limit_is_per_channel() {
    let slack = seeded().await;
    slack.add_channel(FakeChannel::new("C3", "other", &[]));
    let token = slack.token();
    let mut accepted = 0;
    let limited = loop {
        let r = call(
            &slack,
            "chat.postMessage",
            Some(&token),
            json!({"channel": "C1", "text": "x"}),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        accepted += 1;
        assert!(accepted < 6, "per-channel limit never applied");
    };
    assert!((3..6).contains(&accepted), "burst of 3, got {accepted}");
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    let other = call(
        &slack,
        "chat.postMessage",
        Some(&token),
        json!({"channel": "C3", "text": "x"}),
    )
    .await;
    assert_eq!(other.body["ok"], true);
    assert_eq!(slack.messages(&ChannelId::new("C1")).len(), accepted);
}

#[tokio::test]
async fn chat_update_is_tier_3() {
    let slack = seeded().await;
    let token = slack.token();
    let posted = call(
        &slack,
        "chat.postMessage",
        Some(&token),
        json!({"channel": "C1", "text": "x"}),
    )
    .await;
    let ts = posted.body["ts"].clone();
    // 50 per minute with a burst of 50: the first 429 comes after at least 50 updates (a few
    // more only if the machine is slow enough for the bucket to refill meanwhile).
    let mut accepted = 0;
    let limited = loop {
        let r = call(
            &slack,
            "chat.update",
            Some(&token),
            json!({"channel": "C1", "ts": ts, "text": format!("v{accepted}")}),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        assert_eq!(r.body["ok"], true, "update {accepted}");
        accepted += 1;
        assert!(accepted < 60, "Tier 3 limit never applied");
    };
    assert!(accepted >= 50, "only {accepted} accepted");
    assert_eq!(limited.body["error"], "ratelimited");
    let retry_after: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    slack.set_rate_limits(false);
    let free = call(
        &slack,
        "chat.update",
        Some(&token),
        json!({"channel": "C1", "ts": ts, "text": "y"}),
    )
    .await;
    assert_eq!(free.body["ok"], true);
}

#[tokio::test]
async fn response_urls_are_recorded_and_limited_to_five_uses() {
    let slack = seeded().await;
    let url = slack.new_response_url();
    assert!(url.starts_with(&format!("{}/response/", slack.url())));
    for i in 0..6 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({"text": format!("r{i}"), "replace_original": true}).to_string(),
            )))
            .unwrap();
        let answer = send(request).await;
        if i < 5 {
            assert_eq!(answer.body["ok"], true);
        } else {
            assert_eq!(answer.status, StatusCode::NOT_FOUND);
            assert_eq!(answer.body["error"], "used_url");
        }
    }
    let responses = slack.responses();
    assert_eq!(responses.len(), 5);
    assert_eq!(responses[0].body["text"], "r0");
}

/// A stand-in app that verifies Slack signatures and records what it got.
async fn app(secret: SlackSigningSecret) -> (Server, Arc<Mutex<Vec<(bool, Value)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let handler: Handler = Arc::new(move |req: RecordedRequest| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let verified = signing::verify_slack(
            &secret,
            req.header("x-slack-request-timestamp"),
            req.header("x-slack-signature"),
            &req.body,
            now,
        )
        .is_ok();
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body).unwrap();
        let payload: Value = serde_json::from_str(&form[0].1).unwrap();
        seen.lock().unwrap().push((verified, payload));
        Box::pin(async move { Reply::json(StatusCode::OK, &json!({"response_action": "clear"})) })
    });
    (Server::spawn(handler).await.unwrap(), got)
}

#[tokio::test]
async fn click_sends_signed_block_actions_like_slack() {
    let slack = seeded().await;
    let secret = SlackSigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
    let (target, got) = app(secret.clone()).await;
    let posted = call(
        &slack,
        "chat.postMessage",
        Some(&slack.token()),
        json!({"channel": "C1", "text": "card", "blocks": card("PQ1K5C8")}),
    )
    .await;
    let ts = MessageTs::new(posted.body["ts"].as_str().unwrap());
    let reply = slack
        .click(
            &target.url(),
            &secret,
            &SlackUserId::new("U1"),
            &ChannelId::new("C1"),
            &ts,
            "pd_ack",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let (verified, payload) = got.lock().unwrap()[0].clone();
    assert!(verified, "signature verifies with the shared secret");
    assert_eq!(payload["type"], "block_actions");
    assert_eq!(payload["user"]["id"], "U1");
    assert_eq!(payload["container"]["channel_id"], "C1");
    assert_eq!(payload["container"]["message_ts"], ts.as_str());
    assert_eq!(payload["actions"][0]["action_id"], "pd_ack");
    assert_eq!(payload["actions"][0]["block_id"], "pd:PQ1K5C8");
    assert_eq!(payload["actions"][0]["value"], "PQ1K5C8");
    assert!(
        payload["response_url"]
            .as_str()
            .unwrap()
            .starts_with(&slack.url())
    );
    assert!(payload["trigger_id"].is_string());

    let missing = slack
        .click(
            &target.url(),
            &secret,
            &SlackUserId::new("U1"),
            &ChannelId::new("C1"),
            &ts,
            "nope",
        )
        .await;
    assert!(missing.is_err());
    let select = slack
        .block_actions_payload(
            &SlackUserId::new("U1"),
            &ChannelId::new("C1"),
            &ts,
            "pd_reassign",
            Some(&SlackUserId::new("U2")),
        )
        .unwrap();
    assert_eq!(select["actions"][0]["type"], "users_select");
    assert_eq!(select["actions"][0]["selected_user"], "U2");
}

#[tokio::test]
async fn submit_view_sends_signed_view_submission() {
    let slack = seeded().await;
    let secret = SlackSigningSecret::new("s3cret");
    let (target, got) = app(secret.clone()).await;
    let trigger = slack.new_trigger_id();
    let opened = call(
        &slack,
        "views.open",
        Some(&slack.token()),
        json!({"trigger_id": trigger, "view": {
        "type": "modal", "callback_id": "pd_reassign", "private_metadata": "{\"incident\":\"P1\"}",
        "title": {"type": "plain_text", "text": "Reassign"}, "blocks": []}}),
    )
    .await;
    let view_id = ViewId::new(opened.body["view"]["id"].as_str().unwrap());
    let reply = slack
        .submit_view(
            &target.url(),
            &secret,
            &SlackUserId::new("U1"),
            &view_id,
            &[
                ("assignee", "user", InputValue::User(SlackUserId::new("U2"))),
                ("note", "text", InputValue::Text("handing over".into())),
            ],
        )
        .await
        .unwrap();
    assert_eq!(reply.json(), json!({"response_action": "clear"}));
    let (verified, payload) = got.lock().unwrap()[0].clone();
    assert!(verified);
    assert_eq!(payload["type"], "view_submission");
    assert_eq!(payload["view"]["id"], view_id.as_str());
    assert_eq!(payload["view"]["callback_id"], "pd_reassign");
    assert_eq!(payload["view"]["private_metadata"], "{\"incident\":\"P1\"}");
    assert_eq!(
        payload["view"]["state"]["values"]["assignee"]["user"]["selected_user"],
        "U2"
    );
    assert_eq!(
        payload["view"]["state"]["values"]["note"]["text"]["value"],
        "handing over"
    );
}

#[tokio::test]
async fn slash_command_is_signed_and_percent_encoded() {
    let slack = seeded().await;
    let secret = SlackSigningSecret::new("s3cret");
    let body = slack.slash_command_form(
        &SlackUserId::new("U1"),
        &ChannelId::new("C1"),
        "/pd",
        "ack PQ1K5C8",
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("command=%2Fpd"), "{text}");
    assert!(text.contains("text=ack+PQ1K5C8"), "{text}");
    assert!(
        text.contains("response_url=http%3A%2F%2F127.0.0.1"),
        "{text}"
    );
    let got = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&got);
    let verify_secret = secret.clone();
    let handler: Handler = Arc::new(move |req: RecordedRequest| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let ok = signing::verify_slack(
            &verify_secret,
            req.header("x-slack-request-timestamp"),
            req.header("x-slack-signature"),
            &req.body,
            now,
        )
        .is_ok();
        *seen.lock().unwrap() = Some((ok, req.body.clone()));
        Box::pin(async move { Reply::json(StatusCode::OK, &json!({"text": "ok"})) })
    });
    let target = Server::spawn(handler).await.unwrap();
    let reply = slack
        .slash_command(
            &target.url(),
            &secret,
            &SlackUserId::new("U1"),
            &ChannelId::new("C1"),
            "/pd",
            "help",
        )
        .await
        .unwrap();
    assert_eq!(reply.json()["text"], "ok");
    let (verified, body) = got.lock().unwrap().clone().unwrap();
    assert!(verified);
    let fields: std::collections::BTreeMap<String, String> =
        serde_urlencoded::from_bytes(&body).unwrap();
    assert_eq!(fields["command"], "/pd");
    assert_eq!(fields["user_id"], "U1");
    assert_eq!(fields["channel_name"], "incidents");
}

/// Every documented Block Kit limit is enforced on every method that takes blocks: one
/// character over is refused whole (`invalid_blocks`, `invalid_arguments` for views), exactly
/// the limit is accepted, and characters count as Unicode scalar values after escaping.
#[tokio::test]
async fn block_kit_limits_are_enforced_like_slack() {
    let slack = seeded().await;
    slack.set_rate_limits(false);
    let token = slack.token();
    let plain = |text: String| json!({"type": "plain_text", "text": text});
    let mrkdwn = |text: String| json!({"type": "mrkdwn", "text": text});
    let section = |text: String| json!({"type": "section", "text": mrkdwn(text)});
    let button = |label: String, value: String| {
        json!({"type": "actions", "elements": [{"type": "button", "action_id": "a",
               "text": plain(label), "value": value}]})
    };
    let confirm = |text: String| {
        json!({"type": "actions", "elements": [{"type": "button", "action_id": "a",
               "text": plain("Resolve".into()), "confirm": {"title": plain("Sure?".into()),
               "text": mrkdwn(text), "confirm": plain("Yes".into()), "deny": plain("No".into())}}]})
    };
    let field = |text: String| json!({"type": "section", "fields": [mrkdwn(text)]});
    let header = |text: String| json!({"type": "header", "text": plain(text)});
    let option = |text: String| {
        json!({"type": "actions", "elements": [{"type": "static_select", "action_id": "s",
               "options": [{"text": plain(text), "value": "v"}]}]})
    };
    // An overflow menu: 2 to 5 options, `plain_text` only; only its options may carry a `url`.
    let overflow = |options: Vec<Value>| {
        json!({"type": "actions", "elements": [{"type": "overflow", "action_id": "o",
               "options": options}]})
    };
    let item = |text: &str| json!({"text": plain(text.into()), "value": text});
    let link = |url: String| json!({"text": plain("Open".into()), "url": url});
    let mrkdwn_item = json!({"text": mrkdwn("*Snooze*".into()), "value": "snooze"});
    let select_link = json!({"type": "actions", "elements": [{"type": "static_select",
        "action_id": "s", "options": [link("https://x".into())]}]});
    let x = |n: usize| "x".repeat(n);
    // An emoji ZWJ sequence is 3 scalar values; `&amp;` is 5 characters as sent.
    let family = "👩\u{200d}👧";
    let cases: Vec<(&str, Value, Value)> = vec![
        ("section text", section(x(3000)), section(x(3001))),
        (
            "section text (entities)",
            section("&amp;".repeat(600)),
            section(format!("{}x", "&amp;".repeat(600))),
        ),
        (
            "section text (emoji)",
            section(family.repeat(1000)),
            section(format!("{}x", family.repeat(1000))),
        ),
        ("field", field(x(2000)), field(x(2001))),
        ("header", header(x(150)), header(x(151))),
        ("empty header", header(x(1)), header(String::new())),
        ("button text", button(x(75), x(1)), button(x(76), x(1))),
        ("button value", button(x(1), x(2000)), button(x(1), x(2001))),
        ("confirm text", confirm(x(300)), confirm(x(301))),
        ("option text", option(x(75)), option(x(76))),
        (
            "overflow options",
            overflow((0..5).map(|i| item(&i.to_string())).collect()),
            overflow((0..6).map(|i| item(&i.to_string())).collect()),
        ),
        (
            "overflow of one",
            overflow(vec![item("a"), item("b")]),
            overflow(vec![item("a")]),
        ),
        (
            "overflow option url",
            overflow(vec![item("a"), link(x(3000))]),
            overflow(vec![item("a"), link(x(3001))]),
        ),
        (
            "overflow option mrkdwn",
            overflow(vec![item("a"), item("b")]),
            overflow(vec![item("a"), mrkdwn_item.clone()]),
        ),
        ("select option url", option(x(1)), select_link.clone()),
    ];
    for (what, fits, over) in cases {
        for (blocks, ok) in [(json!([fits]), true), (json!([over]), false)] {
            for method in ["chat.postMessage", "chat.postEphemeral"] {
                let answer = call(
                    &slack,
                    method,
                    Some(&token),
                    json!({"channel": "C1", "user": "U1", "text": "t", "blocks": blocks}),
                )
                .await;
                assert_eq!(
                    answer.body["ok"], ok,
                    "{what} via {method}: {}",
                    answer.body
                );
                if !ok {
                    assert_eq!(answer.body["error"], "invalid_blocks", "{what}");
                    assert!(
                        answer.body["response_metadata"]["messages"][0]
                            .as_str()
                            .unwrap()
                            .contains("json-pointer:/blocks/0"),
                        "{what}: {}",
                        answer.body
                    );
                }
            }
        }
    }
    // 50 blocks per message; chat.update and response_url are checked the same way.
    let many = |n: usize| Value::Array((0..n).map(|_| section("x".into())).collect());
    let posted = call(
        &slack,
        "chat.postMessage",
        Some(&token),
        json!({"channel": "C1", "text": "t", "blocks": many(50)}),
    )
    .await;
    assert_eq!(posted.body["ok"], true, "{}", posted.body);
    let ts = posted.body["ts"].as_str().unwrap().to_owned();
    let update = call(
        &slack,
        "chat.update",
        Some(&token),
        json!({"channel": "C1", "ts": ts, "text": "t", "blocks": many(51)}),
    )
    .await;
    assert_eq!(update.body["error"], "invalid_blocks");
    let too_long = call(
        &slack,
        "chat.update",
        Some(&token),
        json!({"channel": "C1", "ts": ts, "text": x(4001)}),
    )
    .await;
    assert_eq!(too_long.body["error"], "msg_too_long");
    let request = Request::builder()
        .method(Method::POST)
        .uri(slack.new_response_url())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({"text": "t", "blocks": [header(x(151))]}).to_string(),
        )))
        .unwrap();
    assert_eq!(send(request).await.body["error"], "invalid_blocks");
    assert!(slack.responses().is_empty());
    // Views: a title of 24 characters fits, 25 does not; 100 blocks fit, 101 do not.
    let view = |title: String, blocks: usize| json!({"type": "modal", "title": plain(title), "blocks": many(blocks)});
    for (v, ok) in [
        (view(x(24), 100), true),
        (view(x(25), 1), false),
        (view(x(3), 101), false),
    ] {
        let trigger = slack.new_trigger_id();
        let opened = call(
            &slack,
            "views.open",
            Some(&token),
            json!({"trigger_id": trigger, "view": v}),
        )
        .await;
        assert_eq!(opened.body["ok"], ok, "{}", opened.body);
        if !ok {
            assert_eq!(opened.body["error"], "invalid_arguments");
        }
    }
    let id = slack.views()[0].id.clone();
    let updated = call(
        &slack,
        "views.update",
        Some(&token),
        json!({"view_id": id, "view": view(x(25), 1)}),
    )
    .await;
    assert_eq!(updated.body["error"], "invalid_arguments");
    assert_eq!(slack.views()[0].updates, 0);
}
