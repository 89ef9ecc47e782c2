//! The demo's modal steps: Reassign and Add note.

use fakes::slack::{InputValue, InteractionReply};
use ids::{SlackUserId, ViewId};
use serde_json::Value;

use crate::render::{
    ACTION_NOTE, ACTION_REASSIGN, CALLBACK_NOTE, CALLBACK_REASSIGN, NOTE_BLOCK, NOTE_INPUT,
    REASSIGN_BLOCK, REASSIGN_INPUT,
};

use super::*;

pub(super) fn newest_view(world: &World, callback: &str, after: usize) -> Option<ViewId> {
    world
        .slack
        .views()
        .into_iter()
        .skip(after)
        .find(|v| v.view.get("callback_id").and_then(Value::as_str) == Some(callback))
        .map(|v| v.id)
}

/// Alice submits the modal `view` with `inputs`, as Slack would.
pub(super) async fn alice_submits(
    world: &World,
    view: &ViewId,
    inputs: &[(&str, &str, InputValue)],
) -> std::io::Result<InteractionReply> {
    world
        .slack
        .submit_view(
            &interactions_url(world),
            &world.slack_secret,
            &SlackUserId::new(ALICE.slack),
            view,
            inputs,
        )
        .await
}

/// Records pdbridge's answer to a modal submission (`what` names it) and returns whether it was
/// a success.
pub(super) fn answered(
    reply: std::io::Result<InteractionReply>,
    what: &str,
    facts: &mut Vec<String>,
) -> bool {
    match reply {
        Ok(reply) => {
            facts.push(format!(
                "Slack → pdbridge: {what}; answered {}",
                reply.status.as_u16()
            ));
            reply.status.is_success()
        }
        Err(err) => {
            facts.push(format!("Slack: submitting the modal failed: {err}"));
            false
        }
    }
}

pub(super) async fn reassign(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Reassign through the modal";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}", story.incident);
    let before = pd_requests(world, "PUT", &path).len();
    let views_before = world.slack.views().len();
    let clicked = click(world, &ALICE, story, ACTION_REASSIGN, &mut facts).await;
    let view = wait_for(|| async { newest_view(world, CALLBACK_REASSIGN, views_before) }).await;
    let mut submitted = false;
    match &view {
        Some(id) => {
            facts.push(format!(
                "Slack: the Reassign modal opened for Alice (view {id})"
            ));
            let reply = alice_submits(
                world,
                id,
                &[(
                    REASSIGN_BLOCK,
                    REASSIGN_INPUT,
                    InputValue::User(SlackUserId::new(CAROL.slack)),
                )],
            )
            .await;
            submitted = answered(reply, "Alice picks Carol and submits", &mut facts);
        }
        None => facts.push("Slack: NO Reassign modal was opened".to_owned()),
    }
    let put = pd_write(world, "PUT", &path, before, &mut facts, "assignments").await;
    let carol = ids::PdUserId::new(CAROL.pd.unwrap_or_default());
    let reassigned = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.assignees == [carol.clone()])
    })
    .await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| plain(&m.blocks.to_string()).contains("Carol"))
    })
    .await;
    settle(world).await;
    if reassigned.is_some() {
        facts.push("PagerDuty: assigned to Carol".to_owned());
    }
    let ok = clicked
        && submitted
        && put.as_ref().is_some_and(|(from, _)| from == ALICE.email)
        && reassigned.is_some()
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}

pub(super) async fn note(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Add a note through the modal; its echo renders once";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}/notes", story.incident);
    let before = pd_requests(world, "POST", &path).len();
    let views_before = world.slack.views().len();
    let clicked = click(world, &ALICE, story, ACTION_NOTE, &mut facts).await;
    let view = wait_for(|| async { newest_view(world, CALLBACK_NOTE, views_before) }).await;
    let mut submitted = false;
    match &view {
        Some(id) => {
            facts.push(format!(
                "Slack: the Add note modal opened for Alice (view {id})"
            ));
            let empty = alice_submits(
                world,
                id,
                &[(NOTE_BLOCK, NOTE_INPUT, InputValue::Text("   ".to_owned()))],
            )
            .await;
            if let Ok(reply) = &empty {
                let action = reply.json();
                facts.push(format!(
                    "Slack → pdbridge: an empty note is refused in the modal (response_action: {})",
                    action
                        .get("response_action")
                        .and_then(Value::as_str)
                        .unwrap_or("none")
                ));
            }
            let reply = alice_submits(
                world,
                id,
                &[(NOTE_BLOCK, NOTE_INPUT, InputValue::Text(NOTE.to_owned()))],
            )
            .await;
            submitted = answered(reply, &format!("Alice submits \"{NOTE}\""), &mut facts);
        }
        None => facts.push("Slack: NO Add note modal was opened".to_owned()),
    }
    let post = pd_write(world, "POST", &path, before, &mut facts, "the note").await;
    let stored = wait_for(|| async {
        world
            .pd
            .incident(&story.incident)
            .filter(|i| i.notes.iter().any(|n| n.content == NOTE))
    })
    .await;
    let echo = wait_for(|| async {
        accepted_deliveries(world, "incident.annotated")
            .into_iter()
            .next()
    })
    .await;
    settle(world).await;
    if stored.is_some() {
        facts.push("PagerDuty: the note is on the incident, written by Alice".to_owned());
    }
    if let Some(d) = &echo {
        facts.push(format!(
            "PagerDuty → pdbridge: incident.annotated (the echo) answered {}",
            d.status.unwrap_or(0)
        ));
    }
    let shown = thread_lines(world, story)
        .iter()
        .filter(|l| l.contains(NOTE))
        .count();
    facts.push(format!(
        "Slack: the note appears {shown} time(s) in the thread (once expected)"
    ));
    let ok = clicked
        && submitted
        && post.as_ref().is_some_and(|(from, _)| from == ALICE.email)
        && stored.is_some()
        && echo.is_some()
        && shown == 1;
    finish(T, ok, facts, world, Some(story), out, steps);
}
