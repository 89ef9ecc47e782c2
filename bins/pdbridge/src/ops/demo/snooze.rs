//! The demo's More actions step: Alice snoozes the acknowledged incident for an hour through
//! the menu's modal, and the card says who snoozed it and until when.

use fakes::slack::InputValue;
use ids::SlackUserId;

use crate::render::{ACTION_MORE, CALLBACK_SNOOZE, MORE_SNOOZE, SNOOZE_INPUT};

use super::*;

pub(super) async fn snooze(world: &World, story: &Story, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Snooze from More actions, with `From` shown";
    header(out, steps, T);
    let mut facts = Vec::new();
    let path = format!("/incidents/{}/snooze", story.incident);
    let before = pd_requests(world, "POST", &path).len();
    let views_before = world.slack.views().len();
    let chosen = world
        .slack
        .choose(
            &interactions_url(world),
            &world.slack_secret,
            &SlackUserId::new(ALICE.slack),
            &world.channel,
            &story.ts,
            ACTION_MORE,
            MORE_SNOOZE,
        )
        .await;
    let chose = match chosen {
        Ok(reply) => {
            facts.push(format!(
                "Slack → pdbridge: Alice chooses More actions → Snooze…; answered {}",
                reply.status.as_u16()
            ));
            reply.status.is_success()
        }
        Err(err) => {
            facts.push(format!("Slack: choosing Snooze failed: {err}"));
            false
        }
    };
    let view = wait_for(|| async { newest_view(world, CALLBACK_SNOOZE, views_before) }).await;
    let mut submitted = false;
    match &view {
        Some(id) => {
            facts.push(format!(
                "Slack: the Snooze modal opened for Alice (view {id})"
            ));
            let hour = InputValue::Option("60".to_owned());
            let reply = alice_submits(world, id, &[(SNOOZE_INPUT, SNOOZE_INPUT, hour)]).await;
            submitted = answered(reply, "Alice picks 1 hour and submits", &mut facts);
        }
        None => facts.push("Slack: NO Snooze modal was opened".to_owned()),
    }
    let post = pd_write(world, "POST", &path, before, &mut facts, "duration 3600").await;
    let shown = wait_for(|| async {
        card(world, story).filter(|m| m.blocks.to_string().contains(":zzz: Snoozed by"))
    })
    .await;
    settle(world).await;
    if shown.is_some() {
        facts.push("Slack: the card says Snoozed by Alice until … (each reader's time)".to_owned());
    }
    let ok = chose
        && submitted
        && post
            .as_ref()
            .is_some_and(|(from, body)| from == ALICE.email && body["duration"] == 3600)
        && shown.is_some();
    finish(T, ok, facts, world, Some(story), out, steps);
}
