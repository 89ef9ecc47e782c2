//! The demo's `/pd oncall` step: someone without a PagerDuty seat asks who is on call.

use ids::SlackUserId;

use super::*;

/// Mallory, who has no PagerDuty user, asks `/pd oncall` in the incident channel.
pub(super) async fn ask(world: &World, out: &mut Out, steps: &mut Vec<Step>) {
    const T: &str = "`/pd oncall` from someone without a PagerDuty seat";
    header(out, steps, T);
    let mut facts = vec![format!(
        "Slack → pdbridge: {} runs /pd oncall (no PagerDuty user)",
        MALLORY.name
    )];
    let target = format!("{}/slack/commands", world.base);
    let reply = world
        .slack
        .slash_command(
            &target,
            &world.slack_secret,
            &SlackUserId::new(MALLORY.slack),
            &world.channel,
            "/pd",
            "oncall",
        )
        .await;
    let text = match &reply {
        Ok(r) => {
            facts.push(format!(
                "pdbridge → Slack: answered {} in {} ms (Slack allows 3 s)",
                r.status.as_u16(),
                r.elapsed.as_millis()
            ));
            r.json()["text"].as_str().unwrap_or_default().to_owned()
        }
        Err(err) => {
            facts.push(format!("pdbridge did not answer: {err}"));
            String::new()
        }
    };
    for line in text.lines() {
        facts.push(format!("  {line}"));
    }
    let ok = text.contains("*Level 1*") && (text.contains("Alice") || text.contains(ALICE.slack));
    finish(T, ok, facts, world, None, out, steps);
}
