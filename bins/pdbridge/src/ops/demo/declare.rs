//! The demo's declare step: `/pd trigger` in Slack creates the PagerDuty incident, whose one
//! card says who declared it.

use ids::{PdUserId, SlackUserId};
use serde_json::Value;

use super::*;

/// The declared incident's title.
const DECLARED: &str = "Database performance issue";

/// The `[declare]` table of the demo's configuration.
pub(super) const DECLARE_TOML: &str = r#"
[declare]
services = { db = "PDAT001" }
severities = [
  { name = "SEV-1", urgency = "high", priority = "P1" },
  { name = "SEV-2", urgency = "high", priority = "P2" },
  { name = "SEV-3", urgency = "low" },
]
"#;

pub(super) async fn declare(world: &World, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "Declare from Slack: `/pd trigger` → one incident, one card";
    header(out, steps, T);
    let policy = world.pd.add_escalation_policy(
        "PEPDB01",
        "Database on-call",
        vec![vec![PdUserId::new(BOB.pd.unwrap_or_default())]],
    );
    let service = world.pd.add_service("PDAT001", "Database", &[]);
    world.pd.set_service_policy(&service, &policy);
    world.pd.set_priorities(&["P1", "P2", "P3"]);
    let responses_before = world.slack.responses().len();
    let text = format!("trigger db SEV-2 {DECLARED}");
    let mut facts = Vec::new();
    match world
        .slack
        .slash_command(
            &format!("{}/slack/commands", world.base),
            &world.slack_secret,
            &SlackUserId::new(ALICE.slack),
            &world.channel,
            "/pd",
            &text,
        )
        .await
    {
        Ok(reply) => facts.push(format!(
            "Slack → pdbridge: Alice types `/pd {text}`: answered {}",
            reply.status.as_u16()
        )),
        Err(err) => facts.push(format!("Slack → pdbridge: the command failed: {err}")),
    }
    let created = wait_for(|| async {
        pd_requests(world, "POST", "/incidents")
            .into_iter()
            .find(|(_, body)| body["incident"]["title"] == DECLARED)
    })
    .await;
    match &created {
        Some((from, body)) => facts.push(format!(
            "pdbridge → PagerDuty: POST /incidents with From: {from}, urgency {}, priority {}, incident_key {}",
            body["incident"]["urgency"].as_str().unwrap_or("-"),
            body["incident"]["priority"]["id"].as_str().unwrap_or("none"),
            body["incident"]["incident_key"].as_str().unwrap_or("-"),
        )),
        None => facts.push("pdbridge → PagerDuty: NO incident was created".to_owned()),
    }
    let declared_by = format!("Declared by <@{}> from Slack", ALICE.slack);
    let card = wait_for(|| async {
        world.slack.messages(&world.channel).into_iter().find(|m| {
            m.thread_ts.is_none()
                && m.text.contains(DECLARED)
                && m.blocks.to_string().contains(&declared_by)
        })
    })
    .await;
    let told = wait_for(|| async {
        world
            .slack
            .responses()
            .into_iter()
            .skip(responses_before)
            .filter_map(|r| {
                r.body
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .find(|t| t.starts_with("Declared"))
    })
    .await;
    settle(world).await;
    let cards = world
        .slack
        .messages(&world.channel)
        .iter()
        .filter(|m| m.thread_ts.is_none() && m.text.contains(DECLARED))
        .count();
    match &card {
        Some(m) => facts.push(format!(
            "Slack: {cards} card(s) for it in #incidents (ts {}), saying \"Declared by @alice from Slack\"",
            m.ts
        )),
        None => facts.push("Slack: NO card saying who declared it".to_owned()),
    }
    match &told {
        Some(text) => facts.push(format!("Slack: Alice alone is told: \"{}\"", plain(text))),
        None => facts.push("Slack: Alice was NOT told the link".to_owned()),
    }
    let story = card.as_ref().and_then(|m| {
        let incident = world
            .pd
            .incidents()
            .into_iter()
            .find(|i| i.title == DECLARED)?;
        Some(Story {
            incident: incident.id,
            ts: m.ts.clone(),
        })
    });
    let ok = created
        .as_ref()
        .is_some_and(|(from, _)| from == ALICE.email)
        && cards == 1
        && story.is_some()
        && told.is_some();
    finish(T, ok, facts, world, story.as_ref(), out, steps);
}
