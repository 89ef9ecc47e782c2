//! SLA timers and reminders with simulated time: transcripts of every reminder path, and a
//! property over random schedules (no reminder after resolve, none twice for one breach, the
//! same reminders across a restart snapshot).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use expect_test::expect;
use proptest::prelude::*;
use serde_json::json;
use sync_core::{
    Effect, Engine, EngineConfig, Input, LineKind, Outcome, ReminderConfig, SlaConfig, SlaTarget,
    Urgency,
};

const CARD_TS: &str = "1548261231.000200";
const MIN: i64 = 60_000;

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// The issue's example: high 5m/2h, low 30m/24h, P1 2m/1h; repeat every 10 min, every 2nd
/// reminder channel-wide, "still on it?" every 30 min.
fn sla_config() -> EngineConfig {
    EngineConfig {
        sla: SlaConfig {
            by_priority: BTreeMap::from([(
                "P1".to_owned(),
                SlaTarget {
                    ack: Some(mins(2)),
                    resolve: Some(mins(60)),
                },
            )]),
            by_urgency: BTreeMap::from([
                (
                    Urgency::High,
                    SlaTarget {
                        ack: Some(mins(5)),
                        resolve: Some(mins(120)),
                    },
                ),
                (
                    Urgency::Low,
                    SlaTarget {
                        ack: Some(mins(30)),
                        resolve: Some(mins(24 * 60)),
                    },
                ),
            ]),
            reminders: ReminderConfig {
                ack_repeat: Some(mins(10)),
                escalate_channel_after: 2,
                still_on_it: Some(mins(30)),
            },
        },
        ..config()
    }
}

/// The RFC 3339 time `minute` minutes after 13:00.
fn at(minute: i64) -> String {
    format!(
        "2021-06-04T{:02}:{:02}:00.000Z",
        13 + minute / 60,
        minute % 60
    )
}

/// PQ1K5C8 (high urgency, assigned to PIG 208) as event `event_type` at minute `minute`.
fn event(event_type: &str, status: &str, minute: i64) -> serde_json::Value {
    pq1k5c8(
        event_type,
        status,
        &format!("01REMINDER{event_type}{minute:05}"),
        &at(minute),
    )
}

/// A script with the SLA configuration whose incident was triggered at 13:00 and whose card
/// is posted.
fn started(cfg: EngineConfig, data: serde_json::Value) -> Script {
    let mut t = Script::new(&at(0));
    t.engine = Engine::new(cfg).unwrap();
    t.pd("triggered", &data);
    t.advance(300).done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.log.clear();
    t
}

/// Ticks every timer due up to `minute` minutes after 13:00, answering each thread post and
/// card update with `Done`, and returns the kinds of the thread lines posted.
fn run_until(t: &mut Script, minute: i64) -> Vec<LineKind> {
    let end = ts(&at(0)).as_millis() + minute * MIN;
    let mut kinds = Vec::new();
    while let Some((due, _)) = t.engine.poll_timeout() {
        if due.as_millis() > end {
            break;
        }
        t.tick();
        answer(t, &mut kinds);
    }
    t.now = sync_core::Timestamp::from_millis(t.now.as_millis().max(end));
    kinds
}

/// Answers the effects of the last input with `Done`, collecting thread line kinds.
fn answer(t: &mut Script, kinds: &mut Vec<LineKind>) {
    let last = std::mem::take(&mut t.last);
    for effect in last {
        match effect {
            Effect::PostThread { id, lines, .. } => {
                kinds.extend(lines.iter().map(|l| l.kind));
                t.input(
                    &format!("done {id}"),
                    Input::EffectDone {
                        id,
                        outcome: Outcome::Done,
                    },
                );
            }
            Effect::UpdateCard { id, .. } => {
                t.input(
                    &format!("done {id}"),
                    Input::EffectDone {
                        id,
                        outcome: Outcome::Done,
                    },
                );
            }
            _ => {}
        }
    }
}

#[test]
fn ack_reminders_repeat_go_channel_wide_and_stop_at_ack() {
    let mut t = started(sla_config(), event("incident.triggered", "triggered", 0));
    let kinds = run_until(&mut t, 26);
    assert_eq!(
        kinds,
        vec![
            LineKind::AckOverdue {
                reminder: 1,
                channel_wide: false,
                urgency: Some(Urgency::High),
            },
            LineKind::AckOverdue {
                reminder: 2,
                channel_wide: true,
                urgency: Some(Urgency::High),
            },
            LineKind::AckOverdue {
                reminder: 3,
                channel_wide: false,
                urgency: Some(Urgency::High),
            },
        ]
    );
    expect![[r#"
        > tick Reminder(IncidentId("PQ1K5C8"))
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread2 under 1548261231.000200: ["Not acknowledged after 5 min (SLA 5 min). Assigned to PIG 208"]
        > done PQ1K5C8/thread2
        > tick Reminder(IncidentId("PQ1K5C8"))
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread3 under 1548261231.000200: ["Not acknowledged after 15 min (SLA 5 min). Assigned to PIG 208"]
        > done PQ1K5C8/thread3
        > tick Reminder(IncidentId("PQ1K5C8"))
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread4 under 1548261231.000200: ["Not acknowledged after 25 min (SLA 5 min). Assigned to PIG 208"]
        > done PQ1K5C8/thread4
    "#]]
    .assert_eq(&t.log);

    // The acknowledgement stops the ack reminders; the owner is asked every 30 minutes, and
    // the resolve SLA (2 h from the trigger) breaches once, channel-wide.
    t.pd(
        "acknowledged",
        &event("incident.acknowledged", "acknowledged", 26),
    );
    let mut kinds = Vec::new();
    answer(&mut t, &mut kinds);
    kinds.extend(run_until(&mut t, 130));
    assert_eq!(
        kinds,
        vec![
            LineKind::Acknowledged,
            LineKind::StillOnIt,
            LineKind::StillOnIt,
            LineKind::StillOnIt,
            LineKind::ResolveOverdue {
                urgency: Some(Urgency::High)
            },
        ]
    );
    let resolve = LineKind::ResolveOverdue {
        urgency: Some(Urgency::High),
    };
    assert!(resolve.channel_wide());
    assert_eq!(resolve.sla_breach(), Some(("resolve", Some(Urgency::High))));
    assert_eq!(
        kinds_first_ack().sla_breach(),
        Some(("ack", Some(Urgency::High)))
    );
    let second = LineKind::AckOverdue {
        reminder: 2,
        channel_wide: true,
        urgency: Some(Urgency::High),
    };
    assert!(second.channel_wide());
    assert_eq!(second.sla_breach(), None);
    assert!(
        t.log
            .contains(r#"["PIG 208: still on it? Acknowledged 30 min ago"]"#)
    );
    assert!(
        t.log
            .contains(r#"["Not resolved after 120 min (SLA 120 min)"]"#)
    );

    // Reminders stop at resolve: no timer is left once the line is out.
    t.pd("resolved", &event("incident.resolved", "resolved", 131));
    let mut kinds = Vec::new();
    answer(&mut t, &mut kinds);
    kinds.extend(run_until(&mut t, 24 * 60));
    assert_eq!(kinds, vec![LineKind::Resolved]);
    assert_eq!(t.engine.poll_timeout(), None);
}

fn kinds_first_ack() -> LineKind {
    LineKind::AckOverdue {
        reminder: 1,
        channel_wide: false,
        urgency: Some(Urgency::High),
    }
}

#[test]
fn a_reassign_restarts_the_ack_sla_for_the_new_owner() {
    let mut t = started(sla_config(), event("incident.triggered", "triggered", 0));
    run_until(&mut t, 4);
    let mut reassigned = event("incident.reassigned", "triggered", 4);
    reassigned["event"]["data"]["assignees"] = json!([
        {"id": "PXRUEF2", "summary": "Harsh Santwani", "type": "user_reference"}
    ]);
    t.pd("reassigned", &reassigned);
    let mut kinds = Vec::new();
    answer(&mut t, &mut kinds);
    t.log.clear();
    // Not at 13:05 (the old owner's breach) but at 13:09.
    kinds.extend(run_until(&mut t, 8));
    assert_eq!(kinds, vec![LineKind::Reassigned]);
    kinds.extend(run_until(&mut t, 10));
    assert_eq!(
        kinds,
        vec![
            LineKind::Reassigned,
            LineKind::AckOverdue {
                reminder: 1,
                channel_wide: false,
                urgency: Some(Urgency::High),
            }
        ]
    );
    assert!(
        t.log
            .contains("Not acknowledged after 5 min (SLA 5 min). Assigned to Harsh Santwani"),
        "{}",
        t.log
    );
}

#[test]
fn the_priority_target_wins_over_the_urgency_target() {
    let mut data = event("incident.triggered", "triggered", 0);
    data["event"]["data"]["priority"] =
        json!({"id": "PSO75BM", "summary": "P1", "type": "priority_reference"});
    let mut t = started(sla_config(), data);
    let kinds = run_until(&mut t, 3);
    assert_eq!(
        kinds,
        vec![LineKind::AckOverdue {
            reminder: 1,
            channel_wide: false,
            urgency: Some(Urgency::High),
        }]
    );
    assert!(t.log.contains("(SLA 2 min)"), "{}", t.log);
}

#[test]
fn no_sla_no_reminder_timer() {
    let mut t = started(config(), event("incident.triggered", "triggered", 0));
    assert_eq!(run_until(&mut t, 48 * 60), Vec::<LineKind>::new());
    assert_eq!(t.engine.poll_timeout(), None);
}

#[test]
fn ack_repeat_zero_reminds_once() {
    let mut cfg = sla_config();
    cfg.sla.reminders.ack_repeat = None;
    let mut t = started(cfg, event("incident.triggered", "triggered", 0));
    let kinds = run_until(&mut t, 100);
    assert_eq!(
        kinds,
        vec![LineKind::AckOverdue {
            reminder: 1,
            channel_wide: false,
            urgency: Some(Urgency::High),
        }]
    );
}

/// One step of a generated schedule.
#[derive(Clone, Debug)]
enum Step {
    Advance(i64),
    Tick,
    Event(&'static str, &'static str),
    Reassign,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1i64..40).prop_map(Step::Advance),
        3 => Just(Step::Tick),
        1 => Just(Step::Event("incident.acknowledged", "acknowledged")),
        1 => Just(Step::Event("incident.unacknowledged", "triggered")),
        1 => Just(Step::Event("incident.resolved", "resolved")),
        1 => Just(Step::Event("incident.reopened", "triggered")),
        1 => Just(Step::Reassign),
        1 => Just(Step::Restart),
    ]
}

/// Runs a schedule, restarting from a snapshot at `Restart` steps when `restarts` is set, and
/// returns every thread line posted with the minute it was posted at.
fn run_schedule(steps: &[Step], restarts: bool) -> Vec<(i64, LineKind, String)> {
    let mut t = started(sla_config(), event("incident.triggered", "triggered", 0));
    let mut minute = 0;
    let mut posted = Vec::new();
    let mut seq = 0;
    for s in steps {
        seq += 1;
        match s {
            Step::Advance(m) => {
                minute += m;
                let mut kinds = Vec::new();
                let end = ts(&at(0)).as_millis() + minute * MIN;
                while let Some((due, _)) = t.engine.poll_timeout() {
                    if due.as_millis() > end {
                        break;
                    }
                    t.tick();
                    collect(&t.last, minute, &mut posted);
                    answer(&mut t, &mut kinds);
                }
                t.now = sync_core::Timestamp::from_millis(t.now.as_millis().max(end));
            }
            Step::Tick => {
                t.input("tick", Input::Tick);
                collect(&t.last, minute, &mut posted);
                answer(&mut t, &mut Vec::new());
            }
            Step::Event(kind, status) => {
                let mut v = event(kind, status, minute);
                v["event"]["id"] = format!("01SCHEDULE{seq:05}").into();
                t.pd(kind, &v);
                collect(&t.last, minute, &mut posted);
                answer(&mut t, &mut Vec::new());
            }
            Step::Reassign => {
                let mut v = event("incident.reassigned", "triggered", minute);
                v["event"]["id"] = format!("01SCHEDULE{seq:05}").into();
                let who = if seq % 2 == 0 { "PXRUEF2" } else { "PJ0LVEB" };
                v["event"]["data"]["assignees"] =
                    json!([{"id": who, "summary": who, "type": "user_reference"}]);
                t.pd("reassigned", &v);
                collect(&t.last, minute, &mut posted);
                answer(&mut t, &mut Vec::new());
            }
            Step::Restart if restarts => {
                let snapshot = t.engine.snapshot();
                let json = serde_json::to_string(&snapshot).unwrap();
                t.engine =
                    Engine::restore(sla_config(), serde_json::from_str(&json).unwrap()).unwrap();
            }
            Step::Restart => {}
        }
    }
    posted
}

fn collect(effects: &[Effect], minute: i64, posted: &mut Vec<(i64, LineKind, String)>) {
    for effect in effects {
        if let Effect::PostThread { lines, .. } = effect {
            posted.extend(lines.iter().map(|l| (minute, l.kind, l.text.clone())));
        }
    }
}

fn is_reminder(kind: LineKind) -> bool {
    matches!(
        kind,
        LineKind::AckOverdue { .. } | LineKind::StillOnIt | LineKind::ResolveOverdue { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reminders_follow_the_incident(steps in proptest::collection::vec(step(), 1..40)) {
        let posted = run_schedule(&steps, true);
        // A restart snapshot changes nothing: no duplicate and no missed reminder.
        prop_assert_eq!(&posted, &run_schedule(&steps, false));
        let mut open = true;
        let mut resolve_breaches = 0;
        let mut last_ack: Option<u32> = None;
        for (_, kind, _) in &posted {
            match kind {
                LineKind::Resolved => {
                    open = false;
                    resolve_breaches = 0;
                    last_ack = None;
                }
                // The schedule may send any status after a resolve; PagerDuty's data wins.
                LineKind::Reopened
                | LineKind::Acknowledged
                | LineKind::Unacknowledged
                | LineKind::Reassigned => open = true,
                LineKind::AckOverdue { reminder, .. } => {
                    // Reminders of one breach count up by one (a restart begins at 1 again):
                    // none twice.
                    prop_assert!(
                        *reminder == 1 || Some(*reminder - 1) == last_ack,
                        "ack reminder {reminder} after {last_ack:?}"
                    );
                    last_ack = Some(*reminder);
                }
                LineKind::ResolveOverdue { .. } => {
                    resolve_breaches += 1;
                    prop_assert!(resolve_breaches <= 1, "two resolve breaches in one period");
                }
                _ => {}
            }
            // No reminder after resolve (until reopened).
            prop_assert!(open || !is_reminder(*kind), "{kind:?} after resolve: {posted:?}");
        }
    }
}
