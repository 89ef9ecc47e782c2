//! The card's More actions menu end to end: Change urgency through its confirming modal, Snooze
//! and Change priority through theirs, with
//! the clicker's `From`, its own policy key, and no change on a resolved incident.

use fakes::pd::Status as PdStatus;
use fakes::slack::{FakeView, InputValue};
use ids::{IncidentId, MessageTs, SlackUserId};
use serde_json::Value;

use super::e2e_lifecycle::reqwest_free_get;
use super::e2e_lifecycle::{ALICE, BOB, Env, buttons};

/// The `(From, body)` of every urgency change PagerDuty received for `incident`.
fn urgency_puts(env: &Env, incident: &IncidentId) -> Vec<(String, Value)> {
    env.pd
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::PUT && r.path == format!("/incidents/{incident}"))
        .map(|r| (r.header("from").unwrap_or("").to_owned(), r.json()))
        .filter(|(_, body)| body.pointer("/incident/urgency").is_some())
        .collect()
}

/// Chooses a More actions item on the card as `user` and returns the modal it opened.
async fn choose(env: &Env, user: &str, ts: &MessageTs, value: &str) -> FakeView {
    let opened = env.slack.views().len();
    let reply = env
        .slack
        .choose(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(user),
            &env.channel(),
            ts,
            "pdbridge_more",
            value,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    env.wait("the modal opened", || env.slack.views().len() > opened)
        .await;
    env.slack.views().last().unwrap().clone()
}

async fn submit(env: &Env, user: &str, view: &FakeView) {
    submit_with(env, user, view, &[]).await;
}

async fn submit_with(env: &Env, user: &str, view: &FakeView, inputs: &[(&str, &str, InputValue)]) {
    let reply = env
        .slack
        .submit_view(
            &env.interactions(),
            &env.secret(),
            &SlackUserId::new(user),
            &view.id,
            inputs,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn overflow_values(env: &Env, ts: &MessageTs) -> Vec<String> {
    let card = env.slack.message(&env.channel(), ts).unwrap();
    card.blocks
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["type"] == "overflow")
        .flat_map(|e| e["options"].as_array().cloned().unwrap_or_default())
        .filter_map(|o| o["value"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_urgency_is_confirmed_sent_as_the_clicker_and_shown_once() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    assert_eq!(
        overflow_values(&env, &ts),
        ["urgency_low", "priority", "open"]
    );

    let view = choose(&env, ALICE, &ts, "urgency_low").await;
    assert_eq!(view.view["callback_id"], "pdbridge_urgency_low");
    assert!(
        urgency_puts(&env, &incident).is_empty(),
        "nothing before the confirm"
    );
    submit(&env, ALICE, &view).await;
    env.wait("PagerDuty has low urgency", || {
        env.pd.incident(&incident).unwrap().urgency == "low"
    })
    .await;
    let puts = urgency_puts(&env, &incident);
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].0, "alice@example.com");
    assert_eq!(puts[0].1.pointer("/incident/urgency"), Some(&"low".into()));
    env.thread_line(&ts, "changed urgency to low").await;
    env.settled(&ts).await;
    env.wait("the card shows low urgency", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.blocks.to_string().contains("*Urgency:*\\nLow"))
    })
    .await;
    // The menu now offers the way back.
    assert_eq!(
        overflow_values(&env, &ts),
        ["urgency_high", "priority", "open"]
    );
    let lines = env
        .slack
        .thread(&env.channel(), &ts)
        .iter()
        .filter(|m| m.text.contains("changed urgency"))
        .count();
    assert_eq!(lines, 1, "one thread line");
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(
        metrics.contains("pdbridge_actions_total{kind=\"change_urgency\",result=\"succeeded\"} 1"),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_urgency_has_its_own_policy_key() {
    let mut env = Env::new("[policy]\nurgency = \"admin\"\nadmins = [\"U1ALICE\"]\n").await;
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    let view = choose(&env, BOB, &ts, "urgency_low").await;
    submit(&env, BOB, &view).await;
    env.wait("Bob is told why", || env.told(BOB, "change urgency"))
        .await;
    assert!(urgency_puts(&env, &incident).is_empty());
    assert_eq!(env.pd.incident(&incident).unwrap().urgency, "high");
    // An account without priorities: Change priority says so and offers nothing to submit.
    let none = choose(&env, BOB, &ts, "priority").await;
    assert!(none.view["submit"].is_null(), "{}", none.view);
    assert!(none.view.to_string().contains("no priorities"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_urgency_on_a_resolved_incident_sends_nothing() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    // Alice opens the confirm, then the incident is resolved before she submits it.
    let view = choose(&env, ALICE, &ts, "urgency_low").await;
    env.click(ALICE, &ts, "pdbridge_resolve").await;
    env.wait("PagerDuty resolved", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Resolved
    })
    .await;
    env.wait("the card offers only Open in PagerDuty", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| buttons(&m) == ["Open in PagerDuty"])
    })
    .await;
    submit(&env, ALICE, &view).await;
    env.wait("Alice is told it is resolved", || {
        env.told(ALICE, "no more actions from Slack")
    })
    .await;
    assert!(urgency_puts(&env, &incident).is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snooze_is_offered_once_acknowledged_and_shows_who_and_until_when() {
    let mut env = Env::new("").await;
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    // Triggered: PagerDuty snoozes only acknowledged incidents, so the menu does not offer it.
    assert!(!overflow_values(&env, &ts).contains(&"snooze".to_owned()));
    env.click(ALICE, &ts, "pdbridge_ack").await;
    env.wait("PagerDuty acknowledged", || {
        env.pd.incident(&incident).unwrap().status == PdStatus::Acknowledged
    })
    .await;
    env.settled(&ts).await;
    env.wait("the acknowledged card offers Snooze", || {
        overflow_values(&env, &ts) == ["urgency_low", "snooze", "priority", "open"]
    })
    .await;
    let view = choose(&env, BOB, &ts, "snooze").await;
    assert_eq!(view.view["callback_id"], "pdbridge_snooze");
    submit_with(
        &env,
        BOB,
        &view,
        &[(
            "snooze_minutes",
            "snooze_minutes",
            InputValue::Option("60".into()),
        )],
    )
    .await;
    env.wait("PagerDuty snoozed", || {
        env.pd.incident(&incident).unwrap().snoozed_until.is_some()
    })
    .await;
    let posts: Vec<_> = env
        .pd
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/incidents/{incident}/snooze"))
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("from"), Some("bob@example.com"));
    assert_eq!(posts[0].json()["duration"], 3600);
    env.wait("the card says who snoozed it", || {
        env.slack.message(&env.channel(), &ts).is_some_and(|m| {
            m.blocks
                .to_string()
                .contains(":zzz: Snoozed by <@U2BOB> until <!date^")
        })
    })
    .await;
    env.thread_line(&ts, "snoozed the incident for 1 h").await;
    env.stop().await;
}

/// The `(From, body)` of every priority change PagerDuty received for `incident`.
fn priority_puts(env: &Env, incident: &IncidentId) -> Vec<(String, Value)> {
    env.pd
        .requests()
        .into_iter()
        .filter(|r| r.method == http::Method::PUT && r.path == format!("/incidents/{incident}"))
        .map(|r| (r.header("from").unwrap_or("").to_owned(), r.json()))
        .filter(|(_, body)| body.pointer("/incident/priority").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_priority_offers_the_accounts_priorities_and_is_sent_as_the_clicker() {
    let mut env = Env::new("").await;
    let ids = env.pd.set_priorities(&["P1", "P2", "P3"]);
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    let view = choose(&env, ALICE, &ts, "priority").await;
    assert_eq!(view.view["callback_id"], "pdbridge_priority");
    let offered = view.view.to_string();
    assert!(
        offered.contains("\"P1\"") && offered.contains("\"P3\""),
        "{offered}"
    );
    let p3 = || {
        (
            "priority_id",
            "priority_id",
            InputValue::Option(ids[2].to_string()),
        )
    };
    submit_with(&env, ALICE, &view, &[p3()]).await;
    env.thread_line(&ts, "set priority P3").await;
    env.settled(&ts).await;
    let view = choose(&env, ALICE, &ts, "priority").await;
    let p1 = (
        "priority_id",
        "priority_id",
        InputValue::Option(ids[0].to_string()),
    );
    submit_with(&env, ALICE, &view, &[p1]).await;
    env.thread_line(&ts, "changed priority P3 → P1").await;
    env.settled(&ts).await;
    let puts = priority_puts(&env, &incident);
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(puts.iter().all(|(from, _)| from == "alice@example.com"));
    env.wait("the card shows P1", || {
        env.slack
            .message(&env.channel(), &ts)
            .is_some_and(|m| m.blocks.to_string().contains("P1"))
    })
    .await;
    let lines = env
        .slack
        .thread(&env.channel(), &ts)
        .iter()
        .filter(|m| m.text.contains("priority"))
        .count();
    assert_eq!(lines, 2, "each change once, the echo webhooks add none");
    let metrics = reqwest_free_get(&format!("{}/metrics", env.base())).await;
    assert!(
        metrics.contains("pdbridge_actions_total{kind=\"change_priority\",result=\"succeeded\"} 2"),
        "{metrics}"
    );

    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_priority_has_its_own_policy_key() {
    let mut env = Env::new("[policy]\npriority = \"admin\"\nadmins = [\"U1ALICE\"]\n").await;
    let ids = env.pd.set_priorities(&["P1"]);
    let incident = env.pd.trigger_incident("Checkout DB down", &env.policy);
    let ts = env.card_posted("Checkout DB down").await.ts;
    let view = choose(&env, BOB, &ts, "priority").await;
    submit_with(
        &env,
        BOB,
        &view,
        &[(
            "priority_id",
            "priority_id",
            InputValue::Option(ids[0].to_string()),
        )],
    )
    .await;
    env.wait("Bob is told why", || env.told(BOB, "change the priority"))
        .await;
    assert!(priority_puts(&env, &incident).is_empty());
    env.stop().await;
}
