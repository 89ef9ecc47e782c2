//! The demo's first steps: the trigger, and the clicks Acknowledge and Escalate with their
//! PagerDuty echo.

use fakes::pd::Status as PdStatus;
use fakes::slack::FakeMessage;
use ids::{IncidentId, MessageTs, SlackUserId};
use serde_json::Value;

use crate::render::{ACTION_ACK, ACTION_ESCALATE, ACTION_NOTE, ACTION_REASSIGN, ACTION_RESOLVE};

use super::*;

pub(super) async fn trigger(
    world: &mut World,
    out: &mut Out,
    steps: &mut Vec<Step>,
) -> Option<(IncidentId, MessageTs)> {
    const T: &str = "Trigger → one card";
    header(out, steps, T);
    let policy = world.pd.add_escalation_policy(
        "PEP0001",
        "Checkout on-call",
        vec![
            vec![ids::PdUserId::new(ALICE.pd.unwrap_or_default())],
            vec![ids::PdUserId::new(BOB.pd.unwrap_or_default())],
        ],
    );
    let incident = world.pd.trigger_incident(TITLE, &policy);
    let mut facts = vec![format!(
        "PagerDuty: incident {incident} \"{TITLE}\" triggered, assigned to Alice (level 1)"
    )];
    let delivered = wait_for(|| async {
        accepted_deliveries(world, "incident.triggered")
            .into_iter()
            .next()
    })
    .await;
    match &delivered {
        Some(d) => facts.push(format!(
            "PagerDuty → pdbridge: signed webhook incident.triggered (X-Webhook-Id {}) answered {}",
            d.webhook_id,
            d.status.unwrap_or(0)
        )),
        None => facts.push("PagerDuty → pdbridge: webhook NOT accepted".to_owned()),
    }
    let posted = wait_for(|| async {
        world
            .slack
            .messages(&world.channel)
            .into_iter()
            .find(|m| m.thread_ts.is_none() && m.text.contains(TITLE))
    })
    .await;
    settle(world).await;
    let Some(message) = posted else {
        facts.push("Slack: NO card was posted".to_owned());
        finish(T, false, facts, world, None, out, steps);
        return None;
    };
    let cards = world
        .slack
        .messages(&world.channel)
        .iter()
        .filter(|m| m.thread_ts.is_none())
        .count();
    facts.push(format!(
        "Slack: card posted in #incidents (ts {}); top-level messages in the channel: {cards}",
        message.ts
    ));
    let story = Story {
        incident: incident.clone(),
        ts: message.ts.clone(),
    };
    let ok = delivered.is_some() && cards == 1 && has_buttons(&message);
    finish(T, ok, facts, world, Some(&story), out, steps);
    Some((incident, message.ts))
}

pub(super) fn has_buttons(message: &FakeMessage) -> bool {
    let text = message.blocks.to_string();
    ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
        .iter()
        .all(|label| text.contains(&format!("\"{label}\"")))
}

pub(super) fn status_shown(message: &FakeMessage, status: &str) -> bool {
    message.text.contains(&format!("[{status}]"))
}

pub(super) async fn click(
    world: &World,
    who: &Person,
    story: &Story,
    action: &str,
    facts: &mut Vec<String>,
) -> bool {
    let label = action_label(action);
    match world
        .slack
        .click(
            &interactions_url(world),
            &world.slack_secret,
            &SlackUserId::new(who.slack),
            &world.channel,
            &story.ts,
            action,
        )
        .await
    {
        Ok(reply) => {
            facts.push(format!(
                "Slack → pdbridge: {} clicks {label}; answered {} in {} ms",
                who.name,
                reply.status.as_u16(),
                reply.elapsed.as_millis()
            ));
            reply.status.is_success()
        }
        Err(err) => {
            facts.push(format!("Slack: {} cannot click {label}: {err}", who.name));
            false
        }
    }
}

pub(super) fn action_label(action: &str) -> &'static str {
    match action {
        ACTION_ACK => "Acknowledge",
        ACTION_ESCALATE => "Escalate",
        ACTION_REASSIGN => "Reassign",
        ACTION_NOTE => "Add note",
        ACTION_RESOLVE => "Resolve",
        _ => "a button",
    }
}

/// Waits for a PagerDuty request `method path` beyond the first `before` ones and reports its
/// `From` header.
pub(super) async fn pd_write(
    world: &World,
    method: &str,
    path: &str,
    before: usize,
    facts: &mut Vec<String>,
    what: &str,
) -> Option<(String, Value)> {
    let seen =
        wait_for(|| async { pd_requests(world, method, path).into_iter().nth(before) }).await;
    match &seen {
        Some((from, _)) => facts.push(format!(
            "pdbridge → PagerDuty: {method} {path} ({what}) with From: {}",
            if from.is_empty() { "(none)" } else { from }
        )),
        None => facts.push(format!("pdbridge → PagerDuty: NO {method} {path} ({what})")),
    }
    seen
}

pub(super) async fn acknowledge(
    world: &World,
    story: &Story,
    out: &mut Out,
    steps: &mut Vec<Step>,
) {
    const T: &str = "Acknowledge by a mapped user, with `From` shown";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_ACK, &mut facts).await;
    let put = pd_write(
        world,
        "PUT",
        &path,
        before,
        &mut facts,
        "status=acknowledged",
    )
    .await;
    let acked = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.status == PdStatus::Acknowledged)
    })
    .await;
    let shown =
        wait_for(|| async { card(world, story).filter(|m| status_shown(m, "Acknowledged")) }).await;
    settle(world).await;
    if acked.is_some() {
        facts.push("PagerDuty: incident is acknowledged, acknowledger Alice".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/status") == Some(&Value::from("acknowledged"))
        })
        && acked
            .is_some_and(|i| i.acknowledgers == [ids::PdUserId::new(ALICE.pd.unwrap_or_default())])
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

pub(super) async fn echo(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "The echo of our own acknowledgement renders once";
    header(out, steps, T);
    let mut facts = Vec::new();
    let echo = wait_for(|| async {
        accepted_deliveries(world, "incident.acknowledged")
            .into_iter()
            .next()
    })
    .await;
    settle(world).await;
    match &echo {
        Some(d) => facts.push(format!(
            "PagerDuty → pdbridge: incident.acknowledged (agent Alice: the echo of the click) \
             answered {}",
            d.status.unwrap_or(0)
        )),
        None => facts.push("PagerDuty → pdbridge: NO incident.acknowledged delivery".to_owned()),
    }
    let lines = thread_lines(world, story);
    let acks = lines
        .iter()
        .filter(|l| l.to_lowercase().contains("acknowledged"))
        .count();
    facts.push(format!(
        "Slack: the thread has {acks} acknowledgement line(s) (one expected, not two)"
    ));
    let ok = echo.is_some() && acks == 1;
    finish(T, ok, facts, world, Some(story), out, steps);
}

pub(super) async fn escalate(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Escalate one level";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_ESCALATE, &mut facts).await;
    let put = pd_write(world, "PUT", &path, before, &mut facts, "escalation_level").await;
    let bob = ids::PdUserId::new(BOB.pd.unwrap_or_default());
    let escalated = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.escalation_level == 2 && i.assignees.contains(&bob))
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| plain(&m.blocks.to_string()).contains("Bob"))
    })
    .await;
    settle(world).await;
    if escalated.is_some() {
        facts.push("PagerDuty: escalation level 2, assigned to Bob".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/escalation_level") == Some(&Value::from(2))
        })
        && escalated.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}
