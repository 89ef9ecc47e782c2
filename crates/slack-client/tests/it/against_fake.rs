//! `SlackClient` end to end against `fakes::slack::FakeSlack` on loopback.

use std::time::{Duration, Instant};

use fakes::slack::{FakeChannel, FakeSlack, FakeUser, Fault};
use ids::{ChannelId, Email, SlackUserId};
use slack_client::api::{
    OpenView, PostEphemeral, PostMessage, ResponseUrlMessage, UpdateMessage, UpdateView,
};
use slack_client::blocks::{Block, Element, View};
use slack_client::retry::RetryPolicy;
use slack_client::{BotToken, Error, SlackClient, SlackConfig};
use url::Url;

async fn fake() -> FakeSlack {
    let slack = FakeSlack::start().await;
    slack.add_user(FakeUser::new("U1", "alice", "alice@example.com"));
    slack.add_channel(FakeChannel::new("C1", "incidents", &["U1"]));
    slack.add_channel(FakeChannel::new("C2", "other", &["U1"]));
    slack
}

fn config(slack: &FakeSlack) -> SlackConfig {
    SlackConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        },
        ..SlackConfig::new(BotToken::new(slack.token()), slack.team_id())
            .with_api_url(Url::parse(&slack.api_url()).unwrap())
    }
}

fn client(slack: &FakeSlack) -> SlackClient {
    SlackClient::new(config(slack)).unwrap()
}

fn post(channel: &str) -> PostMessage {
    PostMessage::new(
        ChannelId::new(channel),
        "PQ1K5C8 triggered",
        vec![Block::Actions {
            block_id: Some("pd:PQ1K5C8".into()),
            elements: vec![Element::button("pd_ack", "Acknowledge", "PQ1K5C8")],
        }],
    )
}

#[tokio::test]
async fn every_call_works_against_the_fake() {
    let slack = fake().await;
    let c = client(&slack);
    let c1 = ChannelId::new("C1");

    let me = c.auth_test().await.unwrap();
    assert_eq!(me.team_id, slack.team_id());
    assert_eq!(me.user_id, slack.bot_user_id());

    let posted = c.post_message(&post("C1")).await.unwrap();
    assert_eq!(posted.channel, c1);
    let stored = slack.message(&c1, &posted.ts).unwrap();
    assert_eq!(stored.text, "PQ1K5C8 triggered");
    assert_eq!(stored.blocks[0]["elements"][0]["value"], "PQ1K5C8");

    let reply = c
        .post_message(&PostMessage {
            thread_ts: Some(posted.ts.clone()),
            ..PostMessage::new(c1.clone(), "Acknowledged by alice", vec![])
        })
        .await
        .unwrap();
    assert!(reply.ts > posted.ts);
    assert_eq!(slack.thread(&c1, &posted.ts).len(), 1);

    let updated = c
        .update_message(&UpdateMessage {
            channel: c1.clone(),
            ts: posted.ts.clone(),
            text: "PQ1K5C8 acknowledged".into(),
            blocks: vec![Block::section("*Acknowledged*")],
        })
        .await
        .unwrap();
    assert_eq!(updated.ts, posted.ts);
    assert_eq!(slack.message(&c1, &posted.ts).unwrap().edits.len(), 1);

    let link = c.get_permalink(&c1, &posted.ts).await.unwrap();
    assert!(link.permalink.path().starts_with("/archives/C1/p"));

    let eph = c
        .post_ephemeral(&PostEphemeral {
            channel: c1.clone(),
            user: SlackUserId::new("U1"),
            text: "only you".into(),
            blocks: vec![],
            thread_ts: None,
        })
        .await
        .unwrap();
    assert_eq!(slack.ephemerals()[0].ts, eph.message_ts);

    let user = c.user_info(&SlackUserId::new("U1")).await.unwrap();
    assert_eq!(user.email(), Some(&Email::new("alice@example.com")));
    let found = c
        .lookup_user_by_email(&Email::new("ALICE@example.com"))
        .await
        .unwrap();
    assert_eq!(found.id, SlackUserId::new("U1"));
    let conv = c.conversation_info(&c1).await.unwrap();
    assert_eq!(conv.name.as_deref(), Some("incidents"));
    assert!(!conv.is_archived);

    let modal = View {
        callback_id: Some("pd_note".into()),
        private_metadata: Some("PQ1K5C8".into()),
        ..View::modal("Add a note")
    };
    let opened = c
        .open_view(&OpenView {
            trigger_id: slack.new_trigger_id(),
            view: modal.clone(),
        })
        .await
        .unwrap();
    assert_eq!(opened.view.callback_id, "pd_note");
    let again = c
        .update_view(&UpdateView {
            view_id: Some(opened.view.id.clone()),
            external_id: None,
            hash: opened.view.hash.clone(),
            view: modal,
        })
        .await
        .unwrap();
    assert_eq!(again.view.id, opened.view.id);
    assert_eq!(slack.views()[0].updates, 1);

    let url = Url::parse(&slack.new_response_url()).unwrap();
    c.respond(&url, &ResponseUrlMessage::ephemeral("done"))
        .await
        .unwrap();
    assert_eq!(slack.responses()[0].body["delete_original"], false);

    // Wire details: bearer auth everywhere on /api, JSON POSTs, GET with query parameters.
    for r in slack
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
    {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {}", slack.token()).as_str())
        );
    }
    let info = &slack.requests_to("users.info")[0];
    assert_eq!(info.method, http::Method::GET);
    assert_eq!(info.query.as_deref(), Some("user=U1"));
    let lookup = &slack.requests_to("users.lookupByEmail")[0];
    assert_eq!(lookup.query.as_deref(), Some("email=ALICE%40example.com"));
    let p = &slack.requests_to("chat.postMessage")[0];
    assert_eq!(p.method, http::Method::POST);
    assert_eq!(
        p.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(p.json()["channel"], "C1");
    let respond = slack
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/response/"))
        .unwrap();
    assert_eq!(
        respond.header("authorization"),
        None,
        "response_url needs no token"
    );
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let slack = fake().await;
    slack.inject(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after: Some(1),
        },
    );
    let started = Instant::now();
    let posted = client(&slack).post_message(&post("C1")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(slack.requests_to("chat.postMessage").len(), 2);
    assert_eq!(slack.messages(&ChannelId::new("C1"))[0].ts, posted.ts);
}

#[tokio::test]
async fn rate_limited_without_retry_after_backs_off() {
    let slack = fake().await;
    slack.inject("chat.update", Fault::RateLimited { retry_after: None });
    let c = client(&slack);
    let posted = c.post_message(&post("C1")).await.unwrap();
    let started = Instant::now();
    c.update_message(&UpdateMessage {
        channel: ChannelId::new("C1"),
        ts: posted.ts,
        text: "x".into(),
        blocks: vec![],
    })
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(slack.requests_to("chat.update").len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let slack = fake().await;
    slack.inject("chat.postMessage", Fault::ServerError(503));
    slack.inject("chat.postMessage", Fault::ServerError(500));
    let c = client(&slack);
    c.post_message(&post("C1")).await.unwrap();
    assert_eq!(slack.requests_to("chat.postMessage").len(), 3);
    assert_eq!(slack.messages(&ChannelId::new("C1")).len(), 1);

    // Three 5xx in a row exhaust the three attempts.
    for _ in 0..3 {
        slack.inject("users.info", Fault::ServerError(502));
    }
    let err = c.user_info(&SlackUserId::new("U1")).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 502, .. }), "{err:?}");
    assert!(err.is_retryable() && !err.is_permanent());
}

#[tokio::test]
async fn timeout_is_maybe_sent_and_not_retried_for_posts() {
    let slack = fake().await;
    let c = SlackClient::new(SlackConfig {
        timeout: Duration::from_millis(200),
        ..config(&slack)
    })
    .unwrap();
    slack.inject("chat.postMessage", Fault::Slow(Duration::from_millis(800)));
    let err = c.post_message(&post("C1")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::MaybeSent {
                method: "chat.postMessage",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.was_sent());
    assert_eq!(
        slack.requests_to("chat.postMessage").len(),
        1,
        "a post is never retried blind"
    );
    // The fake did process it: this is exactly why it must not be retried.
    assert_eq!(slack.messages(&ChannelId::new("C1")).len(), 1);

    // An idempotent call is retried after a timeout.
    slack.inject(
        "conversations.info",
        Fault::Slow(Duration::from_millis(800)),
    );
    let conv = c.conversation_info(&ChannelId::new("C1")).await.unwrap();
    assert_eq!(conv.id, ChannelId::new("C1"));
    assert_eq!(slack.requests_to("conversations.info").len(), 2);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let slack = fake().await;
    slack.set_archived(&ChannelId::new("C2"), true);
    let c = client(&slack);
    for (channel, code) in [("C404", "channel_not_found"), ("C2", "is_archived")] {
        let err = c.post_message(&post(channel)).await.unwrap_err();
        assert_eq!(err.code(), Some(code));
        assert!(err.is_permanent() && !err.is_retryable());
        assert!(matches!(err, Error::Api { status: 200, .. }));
    }
    assert_eq!(slack.requests_to("chat.postMessage").len(), 2);

    slack.inject(
        "users.lookupByEmail",
        Fault::Api {
            error: "missing_scope".into(),
            needed: Some("users:read.email".into()),
        },
    );
    let err = c
        .lookup_user_by_email(&Email::new("alice@example.com"))
        .await
        .unwrap_err();
    match &err {
        Error::Api { code, needed, .. } => {
            assert_eq!(code.as_deref(), Some("missing_scope"));
            assert_eq!(needed.as_deref(), Some("users:read.email"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(slack.requests_to("users.lookupByEmail").len(), 1);

    let wrong = SlackClient::new(SlackConfig {
        token: BotToken::new("xoxb-wrong"),
        ..config(&slack)
    })
    .unwrap();
    let err = wrong.auth_test().await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_auth"));
    assert!(err.is_permanent());
    assert!(
        !format!("{err} {err:?}").contains("xoxb-wrong"),
        "no token in errors"
    );
    assert!(
        !format!("{:?}", wrong).contains("xoxb-wrong"),
        "no token in Debug"
    );
    assert!(!format!("{:?}", config(&slack)).contains(&slack.token()));
}

#[tokio::test]
async fn a_429_on_one_key_does_not_block_another() {
    let slack = fake().await;
    let c = client(&slack);
    slack.inject(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after: Some(2),
        },
    );
    let blocked = {
        let c = c.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            c.post_message(&post("C1")).await.unwrap();
            started.elapsed()
        })
    };
    // Wait until the first post has been answered with the 429.
    while slack.requests_to("chat.postMessage").is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    c.post_message(&post("C2")).await.unwrap();
    let c2_took = started.elapsed();
    c.conversation_info(&ChannelId::new("C1")).await.unwrap();
    let other_method_took = started.elapsed();
    // Another post to C1 queues behind C1's Retry-After instead of hammering Slack.
    c.post_message(&post("C1")).await.unwrap();
    let second_c1_took = started.elapsed();
    let blocked = blocked.await.unwrap();
    assert!(blocked >= Duration::from_secs(2), "C1 waited {blocked:?}");
    assert!(c2_took < Duration::from_millis(500), "C2 took {c2_took:?}");
    assert!(
        other_method_took < Duration::from_millis(500),
        "{other_method_took:?}"
    );
    assert!(
        second_c1_took >= Duration::from_secs(1),
        "{second_c1_took:?}"
    );
    let requests = slack.requests_to("chat.postMessage");
    assert_eq!(
        requests[1].json()["channel"],
        "C2",
        "C2 went out while C1 was blocked"
    );
    assert!(
        requests[1].at.duration_since(requests[0].at).unwrap() < Duration::from_millis(500),
        "C2 was not delayed by C1's 429"
    );
}

#[tokio::test]
async fn unreachable_server_is_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let slack = fake().await;
    let c = SlackClient::new(SlackConfig {
        api_url: Url::parse(&format!("http://127.0.0.1:{port}/api")).unwrap(),
        ..config(&slack)
    })
    .unwrap();
    let err = c.post_message(&post("C1")).await.unwrap_err();
    assert!(matches!(err, Error::NotSent { .. }), "{err:?}");
    assert!(!err.was_sent() && err.is_retryable());
}

#[tokio::test]
async fn auth_test_reports_the_granted_scopes_from_the_header() {
    let slack = fake().await;
    let c = client(&slack);
    let me = c.auth_test().await.unwrap();
    let scopes = me.scopes.expect("the fake sends x-oauth-scopes");
    assert!(scopes.contains("chat:write") && scopes.contains("users:read.email"));
    assert_eq!(scopes.len(), fakes::slack::DEFAULT_SCOPES.len());

    slack.set_scopes(Some(&["chat:write", " commands ", ""]));
    let scopes = c.auth_test().await.unwrap().scopes.unwrap();
    assert_eq!(
        scopes.into_iter().collect::<Vec<_>>(),
        vec!["chat:write".to_owned(), "commands".to_owned()]
    );

    slack.set_scopes(None);
    assert_eq!(c.auth_test().await.unwrap().scopes, None);
}

#[tokio::test]
async fn slack_connect_users_name_their_own_workspace() {
    let slack = fake().await;
    let c = client(&slack);
    let alice = SlackUserId::new("U1");
    assert_eq!(
        c.user_info(&alice).await.unwrap().team_id,
        Some(slack.team_id())
    );
    slack.set_user_team(&alice, Some(ids::SlackTeamId::new("T0OTHERORG")));
    let info = c.user_info(&alice).await.unwrap();
    assert_eq!(info.team_id, Some(ids::SlackTeamId::new("T0OTHERORG")));
    let payload = slack
        .block_actions_payload(
            &alice,
            &ChannelId::new("C1"),
            &c.post_message(&post("C1")).await.unwrap().ts,
            "pd_ack",
            None,
        )
        .unwrap();
    assert_eq!(payload["user"]["team_id"], "T0OTHERORG");
    assert_eq!(payload["team"]["id"], slack.team_id().as_str());
}

#[tokio::test]
async fn a_refused_local_queue_wait_is_a_rate_limit_with_its_wait_not_a_failure() {
    let slack = fake().await;
    let c = SlackClient::new(SlackConfig {
        max_queue_wait: Duration::ZERO,
        ..config(&slack)
    })
    .unwrap();
    // The per-channel limiter allows a small burst; past it, a zero queue wait refuses locally.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(err) = c.post_message(&post("C1")).await {
            refused = Some(err);
            break;
        }
    }
    let err = refused.expect("the local limiter refuses once the burst is spent");
    assert!(
        matches!(
            err,
            Error::RateLimitedLocally {
                method: "chat.postMessage",
                ..
            }
        ),
        "{err:?}"
    );
    let wait = err.retry_after().expect("the refusal carries its wait");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(!err.was_sent() && err.is_retryable() && !err.is_permanent());
    // Another channel's key still has room.
    c.post_message(&post("C2"))
        .await
        .expect("other keys keep flowing");
}

#[tokio::test]
async fn history_finds_a_post_by_its_metadata_only_when_asked_and_pages_newest_first() {
    use slack_client::api::{ConversationHistory, MessageMetadata};
    let slack = fake().await;
    let c = client(&slack);
    let c1 = ChannelId::new("C1");
    let before = c.post_message(&post("C1")).await.unwrap();
    let card = PostMessage {
        metadata: Some(MessageMetadata {
            event_type: "pdbridge_incident_card".into(),
            event_payload: serde_json::json!({"incident_id": "PQ1K5C8"}),
        }),
        ..post("C1")
    };
    let posted = c.post_message(&card).await.unwrap();
    let mut reply = post("C1");
    reply.thread_ts = Some(posted.ts.clone());
    c.post_message(&reply).await.unwrap();
    for _ in 0..3 {
        c.post_message(&post("C1")).await.unwrap();
    }
    // Without include_all_metadata, no metadata; thread replies are never listed.
    let page = c
        .conversation_history(&ConversationHistory::new(c1.clone()))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 5);
    assert!(page.messages.iter().all(|m| m.metadata.is_none()));
    assert!(page.messages.windows(2).all(|w| w[0].ts > w[1].ts));
    // Bounded by `oldest` (exclusive), two per page, with metadata.
    let mut req = ConversationHistory {
        oldest: Some(before.ts.clone()),
        limit: Some(2),
        include_all_metadata: Some(true),
        ..ConversationHistory::new(c1.clone())
    };
    let mut seen = Vec::new();
    loop {
        let page = c.conversation_history(&req).await.unwrap();
        seen.extend(page.messages.clone());
        match page.next_cursor() {
            Some(next) if page.has_more => req.cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 4, "the message at `oldest` is excluded");
    let found: Vec<_> = seen.iter().filter(|m| m.metadata.is_some()).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ts, posted.ts);
    assert_eq!(
        found[0].metadata.as_ref().unwrap().event_payload["incident_id"],
        "PQ1K5C8"
    );
    // The scope is enforced as Slack does.
    slack.set_scopes(Some(&["chat:write"]));
    let err = c
        .conversation_history(&ConversationHistory::new(c1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("missing_scope"));
}
