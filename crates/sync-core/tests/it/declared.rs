//! An incident the bridge declared for a Slack user: one card that names the requester,
//! whether the trigger webhook (the echo of the creation) comes before or after the
//! declaration, and no thread line for it.

use ids::{ChannelId, Email, SlackUserId};
use pretty_assertions::assert_eq;
use sync_core::{
    Declaration, Declared, Effect, Engine, Input, Outcome, PdEvent, PdEventKind, Sibling, Timestamp,
};

use crate::common::{config, fixture, msg_ts, pd_event};

const CHANNEL: &str = "CBR2V3XEX";

fn declared(event: &PdEvent, via: Option<&str>) -> Input {
    let PdEventKind::Incident { data, .. } = &event.kind else {
        panic!("an incident event");
    };
    Input::Declared(Declared {
        incident: event.incident.clone(),
        declaration: Declaration {
            by: SlackUserId::new("U1ALICE"),
            via: via.map(Email::new),
            together: vec![Sibling {
                incident: ids::IncidentId::new("Q2OTHER"),
                number: Some(13),
            }],
        },
        snapshot: Some(data.clone()),
        as_of: event.occurred_at,
        target_channel: Some(ChannelId::new(CHANNEL)),
    })
}

/// Feeds `input`, answers every card call as posted, and fires timers until none is left.
fn settle(engine: &mut Engine, now: &mut Timestamp, input: Input) -> Vec<Effect> {
    let mut seen = engine.handle(*now, input);
    let mut i = 0;
    while i < seen.len() {
        if let Effect::PostCard { id, .. } | Effect::UpdateCard { id, .. } = &seen[i] {
            let outcome = match &seen[i] {
                Effect::PostCard { .. } => Outcome::Posted {
                    ts: msg_ts("1622815000.000100"),
                },
                _ => Outcome::Done,
            };
            let more = engine.handle(
                *now,
                Input::EffectDone {
                    id: id.clone(),
                    outcome,
                },
            );
            seen.extend(more);
        }
        i += 1;
    }
    while let Some((at, _)) = engine.poll_timeout() {
        *now = (*now).max(at);
        seen.extend(engine.handle(*now, Input::Tick));
    }
    seen
}

fn posts(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::PostCard { .. }))
        .count()
}

fn lines(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::PostThread { .. }))
        .count()
}

#[test]
fn declared_first_then_the_trigger_webhook_is_one_card_naming_the_requester() {
    let event = pd_event(&fixture("incident.triggered.json"), Some(CHANNEL));
    let mut engine = Engine::new(config()).unwrap();
    let mut now = event.occurred_at;
    let first = settle(&mut engine, &mut now, declared(&event, None));
    assert_eq!(posts(&first), 1);
    let Some(Effect::PostCard { card, .. }) =
        first.iter().find(|e| matches!(e, Effect::PostCard { .. }))
    else {
        unreachable!()
    };
    let line = card.declared.as_ref().unwrap();
    assert_eq!(line.by, SlackUserId::new("U1ALICE"));
    assert_eq!(
        line.text,
        "Declared by <@U1ALICE> from Slack; declared together with #13"
    );
    let echo = settle(&mut engine, &mut now, Input::PdEvent(event));
    assert_eq!(posts(&echo), 0, "no second card: {echo:?}");
    assert_eq!(
        lines(&echo),
        0,
        "no thread line for our own creation: {echo:?}"
    );
}

#[test]
fn the_trigger_webhook_first_then_the_declaration_updates_the_same_card() {
    let event = pd_event(&fixture("incident.triggered.json"), Some(CHANNEL));
    let mut engine = Engine::new(config()).unwrap();
    let mut now = event.occurred_at;
    let first = settle(&mut engine, &mut now, Input::PdEvent(event.clone()));
    assert_eq!(posts(&first), 1);
    let then = settle(
        &mut engine,
        &mut now,
        declared(&event, Some("ops@example.com")),
    );
    assert_eq!(posts(&then), 0);
    assert_eq!(lines(&then), 0);
    let Some(Effect::UpdateCard { card, .. }) =
        then.iter().find(|e| matches!(e, Effect::UpdateCard { .. }))
    else {
        panic!("the card is updated: {then:?}");
    };
    assert_eq!(
        card.declared.as_ref().unwrap().text,
        "Declared by <@U1ALICE> (no PagerDuty seat) via ops@example.com; declared together with #13"
    );
    // The same declaration again changes nothing.
    let again = engine.handle(now, declared(&event, Some("ops@example.com")));
    assert!(
        again.iter().all(|e| matches!(e, Effect::Dropped { .. })),
        "{again:?}"
    );
}
