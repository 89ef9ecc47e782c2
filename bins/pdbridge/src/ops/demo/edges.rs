//! The demo's last steps: a stale delivery, an unmapped clicker, and Resolve.

use fakes::pd::Status as PdStatus;
use serde_json::Value;

use crate::render::{ACTION_ACK, ACTION_RESOLVE};

use super::*;

pub(super) async fn post_webhook(
    world: &World,
    webhook_id: &str,
    body: &[u8],
) -> Result<u16, String> {
    let signature = signing::sign_pagerduty(&world.pd_secret, body);
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(format!("{}/pagerduty/webhook", world.base))
        .header("content-type", "application/json")
        .header("x-pagerduty-signature", signature)
        .header("x-webhook-id", webhook_id)
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            body,
        )))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

pub(super) async fn stale(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "A retried delivery and a stale out-of-order webhook are ignored";
    header(out, steps, T);
    let mut facts = Vec::new();
    let (Some(acked), Some(old)) = (
        accepted_deliveries(world, "incident.acknowledged")
            .into_iter()
            .next(),
        accepted_deliveries(world, "incident.triggered")
            .into_iter()
            .next(),
    ) else {
        facts.push("no earlier deliveries to replay".to_owned());
        finish(T, false, facts, world, Some(story), out, steps);
        return;
    };
    let before = card(world, story);
    // 1. PagerDuty retries a delivery we already stored (same X-Webhook-Id, same event).
    let retried = post_webhook(world, acked.webhook_id.as_str(), &acked.body).await;
    facts.push(format!(
        "PagerDuty → pdbridge: the incident.acknowledged delivery again (same X-Webhook-Id {}) \
         answered {}",
        acked.webhook_id,
        show_status(&retried)
    ));
    // 2. The oldest state arrives late as a new event: new ids, the original occurred_at, the
    //    incident as it was then (triggered, level 1, assigned to Alice). Neither a duplicate
    //    nor an echo, so only its age can keep it off the card.
    let mut envelope: Value = serde_json::from_slice(&old.body).unwrap_or(Value::Null);
    let occurred = envelope
        .pointer("/event/occurred_at")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    if let Some(event) = envelope.get_mut("event") {
        event["id"] = Value::from("01DEMOSTALEEVENT0000000000");
    }
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    let late = post_webhook(world, "demo-stale-delivery", &body).await;
    facts.push(format!(
        "PagerDuty → pdbridge: a late incident.triggered (new event id, occurred_at {occurred}, \
         level 1, assigned to Alice) answered {}",
        show_status(&late)
    ));
    settle(world).await;
    let after = card(world, story);
    let unchanged = before.as_ref().map(|m| (&m.text, &m.blocks))
        == after.as_ref().map(|m| (&m.text, &m.blocks));
    let still_carol = after
        .as_ref()
        .is_some_and(|m| plain(&m.blocks.to_string()).contains("Carol"));
    facts.push(format!(
        "Slack: the card {} (still assigned to Carol: {still_carol})",
        if unchanged {
            "did not change"
        } else {
            "CHANGED"
        }
    ));
    let ok = retried == Ok(200)
        && late.as_ref().is_ok_and(|s| (200..300).contains(s))
        && unchanged
        && still_carol;
    finish(T, ok, facts, world, Some(story), out, steps);
}

pub(super) fn show_status(status: &Result<u16, String>) -> String {
    match status {
        Ok(code) => code.to_string(),
        Err(err) => format!("nothing ({err})"),
    }
}

pub(super) async fn unmapped(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "An unmapped user is refused";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let puts_before = pd_requests(world, "PUT", &path).len();
    let ephemerals_before = world.slack.ephemerals().len();
    let responses_before = world.slack.responses().len();
    let clicked = click(world, &MALLORY, story, ACTION_ACK, &mut facts).await;
    let told = wait_for(|| async {
        let eph = world
            .slack
            .ephemerals()
            .into_iter()
            .skip(ephemerals_before)
            .find(|e| e.user.as_str() == MALLORY.slack)
            .map(|e| e.text);
        eph.or_else(|| {
            world
                .slack
                .responses()
                .into_iter()
                .nth(responses_before)
                .and_then(|r| {
                    r.body
                        .get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        })
    })
    .await;
    settle(world).await;
    match &told {
        Some(text) => facts.push(format!("Slack: Mallory alone is told: \"{}\"", plain(text))),
        None => facts.push("Slack: Mallory was NOT told anything".to_owned()),
    }
    let puts = pd_requests(world, "PUT", &path).len() - puts_before;
    facts.push(format!(
        "pdbridge → PagerDuty: {puts} request(s) for Mallory's click"
    ));
    let ok = clicked && told.is_some() && puts == 0;
    finish(T, ok, facts, world, Some(story), out, steps);
}

pub(super) async fn resolve(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Resolve (after Slack's confirm dialog): buttons gone";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let clicked = click(world, &ALICE, story, ACTION_RESOLVE, &mut facts).await;
    let put = pd_write(world, "PUT", &path, before, &mut facts, "status=resolved").await;
    let resolved = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.status == PdStatus::Resolved)
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| {
            status_shown(m, "Resolved") && !m.blocks.to_string().contains(ACTION_RESOLVE)
        })
    })
    .await;
    settle(world).await;
    if resolved.is_some() {
        facts.push("PagerDuty: incident is resolved".to_owned());
    }
    let ok = clicked
        && put.as_ref().is_some_and(|(from, body)| {
            from == ALICE.email
                && body.pointer("/incident/status") == Some(&Value::from("resolved"))
        })
        && resolved.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}
