//! Transcript tests: a script of inputs and the exact effects, one per behaviour of issue 4,
//! with the real fixtures' values.

use std::time::Duration;

use crate::common::*;
use expect_test::expect;
use sync_core::{ActionKind, EscalationLevels, Input, Outcome, Urgency};

const CARD_TS: &str = "1548261231.000200";

/// Trigger PQ1K5C8 and post its card.
fn triggered_and_posted() -> Script {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd(
        "incident.triggered PQ1K5C8",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:50:00.000Z",
        ),
    );
    t.advance(300).done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.log.clear();
    t
}

#[test]
fn b1_pagerduty_is_the_system_of_record() {
    let mut t = triggered_and_posted();
    let ack = fixture("incident.acknowledged.json");
    t.advance(5_000).click(
        "Acknowledge by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.advance(200).done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "triggered",
            "x",
            "2021-06-04T13:50:00.000Z",
        ))),
    );
    t.done("card2", Outcome::Done);
    t.advance(300)
        .done("acknowledge2", Outcome::PdIncident(data_of(&ack)));
    t.done("card3", Outcome::Done);
    t.tick();
    expect![[r#"
        > Acknowledge by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2 From=pig208@example.com Acknowledge
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2: PdIncident(Acknowledged)
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card3: Done
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread4 under 1548261231.000200: ["<@UA8RXUSPL> acknowledged"]
    "#]]
    .assert_eq(&t.log);
}

#[test]
fn b2_echo_of_our_own_action_renders_once() {
    // PUT response first, then the echo webhook: one card update, one thread line.
    let mut t = triggered_and_posted();
    let ack = fixture("incident.acknowledged.json");
    t.click(
        "Acknowledge by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.done("card2", Outcome::Done);
    t.done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "triggered",
            "x",
            "2021-06-04T13:50:00.000Z",
        ))),
    );
    t.advance(400).done("acknowledge2", Outcome::Done);
    t.done("card3", Outcome::Done);
    t.advance(1_000)
        .pd("echo: incident.acknowledged by PJ0LVEB", &ack);
    t.tick();
    t.done("thread4", Outcome::Done);
    // The echo webhook first, then the PUT response: still one update and one line.
    t.advance(60_000).pd(
        "incident.unacknowledged (ack timed out)",
        &pq1k5c8(
            "incident.unacknowledged",
            "triggered",
            "01BZYK8N47UNACK00000000000",
            "2021-06-04T13:57:00.000Z",
        ),
    );
    t.done("card5", Outcome::Done);
    t.click(
        "Acknowledge again by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426999.000100",
        ),
    );
    t.done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "triggered",
            "x",
            "2021-06-04T13:57:00.000Z",
        ))),
    );
    t.done("card8", Outcome::Done);
    t.advance(500).pd(
        "echo first: incident.acknowledged by PJ0LVEB",
        &pq1k5c8(
            "incident.acknowledged",
            "acknowledged",
            "01BZYK8N47REACK00000000000",
            "2021-06-04T13:58:00.500Z",
        ),
    );
    t.done("card7", Outcome::Done);
    t.advance(100).input(
        "late PUT response",
        Input::EffectDone {
            id: sync_core::EffectId::from_stored(
                "PQ1K5C8/1548426999.000100:UA8RXUSPL:acknowledge/acknowledge2",
            ),
            outcome: Outcome::Done,
        },
    );
    t.tick();
    expect![[r#"
        > Acknowledge by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2 From=pig208@example.com Acknowledge
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2: Done
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card3: Done
        > echo: incident.acknowledged by PJ0LVEB
          Dropped PQ1K5C8 Echo
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread4 under 1548261231.000200: ["<@UA8RXUSPL> acknowledged"]
        > done PQ1K5C8/thread4: Done
        > incident.unacknowledged (ack timed out)
          UpdateCard PQ1K5C8/card5 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card5: Done
        > Acknowledge again by UA8RXUSPL
          PdRead PQ1K5C8/1548426999.000100:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card6 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426999.000100:UA8RXUSPL:acknowledge/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426999.000100:UA8RXUSPL:acknowledge/acknowledge2 From=pig208@example.com Acknowledge
        > done PQ1K5C8/card6: Done
        > echo first: incident.acknowledged by PJ0LVEB
          UpdateCard PQ1K5C8/card7 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card7: Done
        > late PUT response
          Dropped UnknownEffect
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread8 under 1548261231.000200: ["Acknowledgement timed out; the incident is triggered again", "<@UA8RXUSPL> acknowledged"]
    "#]].assert_eq(&t.log);
}

#[test]
fn b2_notes_from_slack_appear_once_and_annotated_never_writes_back() {
    let escalated = fixture("incident.escalated.json");
    let mut t = Script::new("2026-04-01T02:08:05.000Z");
    t.pd(
        "incident.escalated Q3B15VLMF3ASBD (unknown incident: new card)",
        &escalated,
    );
    t.done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.tick();
    t.done("thread2", Outcome::Done);
    let note = "Running KILL on long-running queries from the reporting-service.";
    t.advance(600_000).click(
        "Add note by U12345678 (PXRUEF2)",
        click(
            harsh(),
            "Q3B15VLMF3ASBD",
            ActionKind::AddNote(note.into()),
            "1775009900.000100",
        ),
    );
    t.done("card3", Outcome::Done);
    t.done("add_note1", Outcome::Done);
    t.pd(
        "echo: incident.annotated by PXRUEF2",
        &fixture("incident.annotated.json"),
    );
    t.tick();
    t.done("thread5", Outcome::Done);
    let mut other = fixture("incident.annotated.json");
    other["event"]["id"] = "01GI0KTE33OTHERNOTE0000000".into();
    other["event"]["data"]["content"] = "Reporting-service paused until 03:00.".into();
    t.advance(1_000)
        .pd("incident.annotated written in PagerDuty", &other);
    t.tick();
    expect![[r#"
        > incident.escalated Q3B15VLMF3ASBD (unknown incident: new card)
          PostCard Q3B15VLMF3ASBD/card1 in CBR2V3XEX: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default"
        > done Q3B15VLMF3ASBD/card1: Posted 1548261231.000200
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread2 under 1548261231.000200: ["Harsh Santwani escalated to Harsh Santwani"]
        > done Q3B15VLMF3ASBD/thread2: Done
        > Add note by U12345678 (PXRUEF2)
          PdMutation Q3B15VLMF3ASBD/1775009900.000100:U12345678:add_note/add_note1 From=harsh@example.com AddNote { content: "Running KILL on long-running queries from the reporting-service." }
          UpdateCard Q3B15VLMF3ASBD/card3 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default" pending="Adding note… requested by <@U12345678>"
        > done Q3B15VLMF3ASBD/card3: Done
        > done Q3B15VLMF3ASBD/1775009900.000100:U12345678:add_note/add_note1: Done
          UpdateCard Q3B15VLMF3ASBD/card4 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default"
        > echo: incident.annotated by PXRUEF2
          Dropped Q3B15VLMF3ASBD Echo
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread5 under 1548261231.000200: ["<@U12345678> added a note: Running KILL on long-running queries from the reporting-service."]
        > done Q3B15VLMF3ASBD/thread5: Done
        > incident.annotated written in PagerDuty
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread6 under 1548261231.000200: ["Harsh Santwani added a note: Reporting-service paused until 03:00."]
    "#]].assert_eq(&t.log);
}

#[test]
fn b3_duplicates_and_stale_events_change_nothing_but_reopen_does() {
    let mut t = triggered_and_posted();
    let ack = fixture("incident.acknowledged.json");
    t.pd("incident.acknowledged", &ack);
    t.done("card2", Outcome::Done);
    t.pd("same event again (PagerDuty retry)", &ack);
    let mut with_webhook = pq1k5c8(
        "incident.resolved",
        "resolved",
        "01BZYK8N47RESOLVED00000000",
        "2021-06-04T14:00:00.000Z",
    );
    let resolved = pd_event(&with_webhook, Some("CBR2V3XEX"));
    t.input(
        "incident.resolved (X-Webhook-Id wh-1)",
        Input::PdEvent(sync_core::PdEvent {
            webhook_id: Some(webhook("wh-1")),
            ..resolved.clone()
        }),
    );
    t.done("card4", Outcome::Done);
    with_webhook["event"]["id"] = "01BZYK8N47OTHERID000000000".into();
    let redelivery = pd_event(&with_webhook, Some("CBR2V3XEX"));
    t.input(
        "redelivery with the same X-Webhook-Id",
        Input::PdEvent(sync_core::PdEvent {
            webhook_id: Some(webhook("wh-1")),
            ..redelivery
        }),
    );
    t.pd(
        "stale incident.acknowledged (occurred before the resolve)",
        &pq1k5c8(
            "incident.acknowledged",
            "acknowledged",
            "01BZYK8N47STALEACK00000000",
            "2021-06-04T13:59:00.000Z",
        ),
    );
    t.advance(60_000).pd(
        "genuine incident.reopened",
        &pq1k5c8(
            "incident.reopened",
            "triggered",
            "01BZYK8N47REOPENED00000000",
            "2021-06-04T14:05:00.000Z",
        ),
    );
    t.tick();
    expect![[r#"
        > incident.acknowledged
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card2: Done
        > same event again (PagerDuty retry)
          Dropped PQ1K5C8 Duplicate
        > incident.resolved (X-Webhook-Id wh-1)
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
        > done PQ1K5C8/card3: Done
        > redelivery with the same X-Webhook-Id
          Dropped PQ1K5C8 Duplicate
        > stale incident.acknowledged (occurred before the resolve)
          Dropped PQ1K5C8 Stale
        > genuine incident.reopened
          UpdateCard PQ1K5C8/card4 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread5 under 1548261231.000200: ["PIG 208 acknowledged", "PIG 208 resolved", "PIG 208 reopened"]
    "#]].assert_eq(&t.log);
}

#[test]
fn b4_one_card_per_incident_and_updates_wait_for_the_post() {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    let trigger = pq1k5c8(
        "incident.triggered",
        "triggered",
        "01BZYK8N47TRIGGERED0000000",
        "2021-06-04T13:50:00.000Z",
    );
    t.input(
        "reconciler finds PQ1K5C8 first",
        Input::Reconcile {
            snapshot: data_of(&trigger),
            as_of: ts("2021-06-04T13:49:59.000Z"),
            target_channel: Some(ids::ChannelId::new("CBR2V3XEX")),
        },
    );
    t.pd("incident.triggered races it", &trigger);
    t.pd(
        "incident.acknowledged before the post returned",
        &fixture("incident.acknowledged.json"),
    );
    t.pd(
        "incident.resolved before the post returned",
        &pq1k5c8(
            "incident.resolved",
            "resolved",
            "01BZYK8N47RESOLVED00000000",
            "2021-06-04T14:00:00.000Z",
        ),
    );
    t.advance(2_500).done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.done("card2", Outcome::Done);
    t.tick();
    expect![[r#"
        > reconciler finds PQ1K5C8 first
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > incident.triggered races it
        > incident.acknowledged before the post returned
        > incident.resolved before the post returned
        > done PQ1K5C8/card1: Posted 1548261231.000200
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
          PostThread PQ1K5C8/thread3 under 1548261231.000200: ["PIG 208 acknowledged", "PIG 208 resolved"]
        > done PQ1K5C8/card2: Done
        > tick (no timer)
          Dropped NothingDue
    "#]].assert_eq(&t.log);
}

#[test]
fn b5_no_mutation_without_a_mapped_authorized_actor() {
    let mut t = triggered_and_posted();
    t.click(
        "Acknowledge by unmapped U111",
        click(
            unmapped(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1606455407.603639",
        ),
    );
    t.click(
        "Resolve by unauthorized U12345678",
        click(
            unauthorized(),
            "PQ1K5C8",
            ActionKind::Resolve,
            "1606455408.000100",
        ),
    );
    t.click(
        "Resolve on an incident the bridge never saw",
        click(
            pig208(),
            "PNOTKNOWN",
            ActionKind::Resolve,
            "1606455409.000100",
        ),
    );
    expect![[r#"
        > Acknowledge by unmapped U111
          Ephemeral PQ1K5C8/1606455407.603639:U111:acknowledge/reply2 to U111: "You can't acknowledge #10 Test Incident from Slack: No PagerDuty user has the email seratch@example.com. Ask an admin to add an [[identity]] override for you."
          Dropped PQ1K5C8 Unmapped
        > Resolve by unauthorized U12345678
          Ephemeral PQ1K5C8/1606455408.000100:U12345678:resolve/reply3 to U12345678: "You may not resolve #10 Test Incident: Only members of the team on call may resolve. Ask the on-call engineer, or an admin to change the [policy]."
          Dropped PQ1K5C8 Unauthorized
        > Resolve on an incident the bridge never saw
          Ephemeral PNOTKNOWN/1606455409.000100:UA8RXUSPL:resolve/unknown to UA8RXUSPL: "The bridge has no record of incident PNOTKNOWN, so it did nothing. Open the incident in PagerDuty to act on it."
          Dropped PNOTKNOWN UnknownIncident
    "#]].assert_eq(&t.log);
}

#[test]
fn b6_resolved_incidents_are_never_reopened_and_double_clicks_are_one() {
    let mut t = triggered_and_posted();
    t.click(
        "Acknowledge by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.click(
        "same click delivered twice",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.click(
        "double click (new action_ts)",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.990000",
        ),
    );
    t.done("card2", Outcome::Done);
    t.advance(200).done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "resolved",
            "x",
            "2021-06-04T13:50:00.000Z",
        ))),
    );
    t.done("card4", Outcome::Done);
    t.click(
        "Escalate on the resolved card",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Escalate,
            "1548426418.000100",
        ),
    );
    t.click(
        "Resolve on the resolved card",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Resolve,
            "1548426418.000200",
        ),
    );
    expect![[r##"
        > Acknowledge by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > same click delivered twice
          Dropped PQ1K5C8 Duplicate
        > double click (new action_ts)
          Dropped PQ1K5C8 Duplicate
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1: PdIncident(Resolved)
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/reply3 to UA8RXUSPL: "#10 Test Incident is resolved in PagerDuty, and acknowledge would reopen it, so the bridge did not send it."
          UpdateCard PQ1K5C8/card4 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
          Dropped PQ1K5C8 Resolved
        > done PQ1K5C8/card4: Done
        > Escalate on the resolved card
          Ephemeral PQ1K5C8/1548426418.000100:UA8RXUSPL:escalate/reply5 to UA8RXUSPL: "#10 Test Incident is resolved, and escalate would reopen it in PagerDuty, so the bridge did not send it. Reopen it in PagerDuty first if that is intended."
          Dropped PQ1K5C8 Resolved
        > Resolve on the resolved card
          Ephemeral PQ1K5C8/1548426418.000200:UA8RXUSPL:resolve/reply6 to UA8RXUSPL: "#10 Test Incident is already resolved."
          Dropped PQ1K5C8 AlreadyInState
    "##]].assert_eq(&t.log);
}

#[test]
fn b7_escalate_bumps_one_level_and_refuses_at_the_top() {
    let escalated = fixture("incident.escalated.json");
    let mut t = Script::new("2026-04-01T02:08:05.000Z");
    t.pd("incident.escalated Q3B15VLMF3ASBD", &escalated);
    t.done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.tick();
    t.done("thread2", Outcome::Done);
    t.log.clear();
    t.advance(1_000).click(
        "Escalate by U12345678",
        click(
            harsh(),
            "Q3B15VLMF3ASBD",
            ActionKind::Escalate,
            "1775009300.000100",
        ),
    );
    t.done("card3", Outcome::Done);
    t.done("read1", Outcome::PdIncident(data_of(&escalated)));
    t.done(
        "levels2",
        Outcome::Levels(EscalationLevels {
            current: Some(1),
            max: 2,
        }),
    );
    t.done("escalate3", Outcome::Done);
    t.done("card4", Outcome::Done);
    t.tick();
    t.done("thread5", Outcome::Done);
    t.advance(5_000).click(
        "Escalate again",
        click(
            harsh(),
            "Q3B15VLMF3ASBD",
            ActionKind::Escalate,
            "1775009400.000100",
        ),
    );
    t.done("card6", Outcome::Done);
    t.done("read1", Outcome::PdIncident(data_of(&escalated)));
    t.done(
        "levels2",
        Outcome::Levels(EscalationLevels {
            current: None,
            max: 2,
        }),
    );
    expect![[r##"
        > Escalate by U12345678
          PdRead Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/read1 Incident
          UpdateCard Q3B15VLMF3ASBD/card3 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default" pending="Escalating… requested by <@U12345678>"
        > done Q3B15VLMF3ASBD/card3: Done
        > done Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/read1: PdIncident(Triggered)
          PdRead Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/levels2 EscalationLevels { policy: EscalationPolicyId("P1EUYO0") }
        > done Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/levels2: Levels(EscalationLevels { current: Some(1), max: 2 })
          PdMutation Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/escalate3 From=harsh@example.com Escalate { level: 2 }
        > done Q3B15VLMF3ASBD/1775009300.000100:U12345678:escalate/escalate3: Done
          UpdateCard Q3B15VLMF3ASBD/card4 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default" level=2 last-level=2
        > done Q3B15VLMF3ASBD/card4: Done
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread5 under 1548261231.000200: ["<@U12345678> escalated to level 2"]
        > done Q3B15VLMF3ASBD/thread5: Done
        > Escalate again
          PdRead Q3B15VLMF3ASBD/1775009400.000100:U12345678:escalate/read1 Incident
          UpdateCard Q3B15VLMF3ASBD/card6 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default" level=2 last-level=2 pending="Escalating… requested by <@U12345678>"
        > done Q3B15VLMF3ASBD/card6: Done
        > done Q3B15VLMF3ASBD/1775009400.000100:U12345678:escalate/read1: PdIncident(Triggered)
          PdRead Q3B15VLMF3ASBD/1775009400.000100:U12345678:escalate/levels2 EscalationLevels { policy: EscalationPolicyId("P1EUYO0") }
        > done Q3B15VLMF3ASBD/1775009400.000100:U12345678:escalate/levels2: Levels(EscalationLevels { current: None, max: 2 })
          Ephemeral Q3B15VLMF3ASBD/1775009400.000100:U12345678:escalate/reply7 to U12345678: "#5 Critical: Checkout API High Latency is already at the top escalation level (2 of 2), so there is no level to escalate to."
          UpdateCard Q3B15VLMF3ASBD/card8 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default" level=2 last-level=2
          Dropped Q3B15VLMF3ASBD TopLevel
    "##]].assert_eq(&t.log);
}

#[test]
fn b8_failures_retry_with_backoff_are_shown_and_rate_limits_never_drop() {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd(
        "incident.triggered",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:50:00.000Z",
        ),
    );
    t.done(
        "card1",
        Outcome::RateLimited {
            retry_after: Duration::from_secs(30),
        },
    );
    t.tick();
    t.done(
        "card2",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.click(
        "Resolve by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Resolve,
            "1548426417.840180",
        ),
    );
    t.done("card3", Outcome::Done);
    t.done(
        "resolve1",
        Outcome::Retryable {
            error: "HTTP 503 from PagerDuty".into(),
            retry_after: None,
        },
    );
    t.done("card5", Outcome::Done);
    t.tick();
    t.done(
        "resolve2",
        Outcome::Permanent {
            error: "HTTP 403: Access Denied (2010)".into(),
        },
    );
    t.done(
        "card7",
        Outcome::RateLimited {
            retry_after: Duration::from_secs(10),
        },
    );
    t.tick();
    expect![[r#"
        > incident.triggered
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: RateLimited { retry_after: 30s }
        > tick Retry(IncidentId("PQ1K5C8"))
          PostCard PQ1K5C8/card2 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card2: Posted 1548261231.000200
        > Resolve by UA8RXUSPL
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/resolve1 From=pig208@example.com Resolve
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Resolving… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card3: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/resolve1: Retryable { error: "HTTP 503 from PagerDuty", retry_after: None }
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/reply4 to UA8RXUSPL: "PagerDuty did not accept resolve for #10 Test Incident yet (HTTP 503 from PagerDuty); the bridge is retrying and the card shows the result."
          UpdateCard PQ1K5C8/card5 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Resolving… requested by <@UA8RXUSPL> (retrying: HTTP 503 from PagerDuty)"
        > done PQ1K5C8/card5: Done
        > tick Retry(IncidentId("PQ1K5C8"))
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/resolve2 From=pig208@example.com Resolve
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/resolve2: Permanent { error: "HTTP 403: Access Denied (2010)" }
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:resolve/reply6 to UA8RXUSPL: "Could not resolve #10 Test Incident: HTTP 403: Access Denied (2010)"
          UpdateCard PQ1K5C8/card7 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" error="Resolve failed: HTTP 403: Access Denied (2010)"
        > done PQ1K5C8/card7: RateLimited { retry_after: 10s }
        > tick Retry(IncidentId("PQ1K5C8"))
          UpdateCard PQ1K5C8/card8 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" error="Resolve failed: HTTP 403: Access Denied (2010)"
    "#]].assert_eq(&t.log);
}

#[test]
fn b9_thread_gets_human_lines_and_bursts_coalesce() {
    let escalated = fixture("incident.escalated.json");
    let mut t = Script::new("2026-04-01T02:08:05.000Z");
    t.pd("incident.escalated (new card)", &escalated);
    t.done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.pd("incident.delegated", &fixture("incident.delegated.json"));
    let mut priority = fixture("incident.delegated.json");
    priority["event"]["event_type"] = "incident.priority_updated".into();
    priority["event"]["id"] = "01GI0JWUU2PRIORITY00000000".into();
    priority["event"]["occurred_at"] = "2026-04-01T02:14:00.000Z".into();
    priority["event"]["data"]["priority"]["summary"] = "P2".into();
    t.pd("incident.priority_updated (card only)", &priority);
    t.pd("incident.annotated", &fixture("incident.annotated.json"));
    t.pd(
        "incident.responder.added",
        &fixture("incident.responder.added.json"),
    );
    t.pd(
        "incident.workflow.started (ignored)",
        &fixture("incident.workflow.started.json"),
    );
    t.tick();
    t.done("card2", Outcome::Done);
    expect![[r#"
        > incident.escalated (new card)
          PostCard Q3B15VLMF3ASBD/card1 in CBR2V3XEX: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default"
        > done Q3B15VLMF3ASBD/card1: Posted 1548261231.000200
        > incident.delegated
          UpdateCard Q3B15VLMF3ASBD/card2 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="APIs-ep"
        > incident.priority_updated (card only)
        > incident.annotated
        > incident.responder.added
        > incident.workflow.started (ignored)
          Dropped Q3B15VLMF3ASBD Ignored
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread3 under 1548261231.000200: ["Harsh Santwani escalated to Harsh Santwani", "Harsh Santwani delegated to APIs-ep", "Harsh Santwani added a note: Running KILL on long-running queries from the reporting-service.", "Harsh Santwani requested Harsh Santwani as a responder: Please help with \"Critical: Checkout API High Latency\""]
        > done Q3B15VLMF3ASBD/card2: Done
          UpdateCard Q3B15VLMF3ASBD/card4 CBR2V3XEX/1548261231.000200: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P2 policy="APIs-ep"
    "#]].assert_eq(&t.log);
}

#[test]
fn b4_a_sub_event_for_an_unknown_incident_reads_it_before_posting() {
    let mut t = Script::new("2026-04-01T02:19:00.000Z");
    t.pd(
        "incident.annotated for an incident without a card",
        &fixture("incident.annotated.json"),
    );
    t.pd(
        "incident.responder.added, same incident",
        &fixture("incident.responder.added.json"),
    );
    t.done(
        "hydrate1",
        Outcome::PdIncident(data_of(&fixture("incident.escalated.json"))),
    );
    t.done(
        "card2",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.tick();
    expect![[r#"
        > incident.annotated for an incident without a card
          PdRead Q3B15VLMF3ASBD/hydrate1 Incident
        > incident.responder.added, same incident
        > done Q3B15VLMF3ASBD/hydrate1: PdIncident(Triggered)
          PostCard Q3B15VLMF3ASBD/card2 in CBR2V3XEX: "Critical: Checkout API High Latency" Triggered assignees=["Harsh Santwani"] priority=P1 policy="Default"
        > done Q3B15VLMF3ASBD/card2: Posted 1548261231.000200
        > tick ThreadFlush(IncidentId("Q3B15VLMF3ASBD"))
          PostThread Q3B15VLMF3ASBD/thread3 under 1548261231.000200: ["Harsh Santwani added a note: Running KILL on long-running queries from the reporting-service.", "Harsh Santwani requested Harsh Santwani as a responder: Please help with \"Critical: Checkout API High Latency\""]
    "#]].assert_eq(&t.log);
}

#[test]
fn b8_a_card_whose_post_failed_is_posted_again_by_the_reconciler() {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    let trigger = pq1k5c8(
        "incident.triggered",
        "triggered",
        "01BZYK8N47TRIGGERED0000000",
        "2021-06-04T13:50:00.000Z",
    );
    t.pd("incident.triggered", &trigger);
    for card in ["card1", "card2"] {
        t.done(
            card,
            Outcome::Permanent {
                error: "not_in_channel".into(),
            },
        );
    }
    t.advance(300_000).input(
        "reconciler lists PQ1K5C8",
        Input::Reconcile {
            snapshot: data_of(&trigger),
            as_of: ts("2021-06-04T13:55:00.000Z"),
            target_channel: Some(ids::ChannelId::new("CBR2V3XEX")),
        },
    );
    t.done(
        "card3",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    expect![[r#"
        > incident.triggered
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: Permanent { error: "not_in_channel" }
          PostCard PQ1K5C8/card2 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" (minimal)
          Dropped PQ1K5C8 Failed
        > done PQ1K5C8/card2: Permanent { error: "not_in_channel" }
          Dropped PQ1K5C8 Failed
        > reconciler lists PQ1K5C8
          PostCard PQ1K5C8/card3 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card3: Posted 1548261231.000200
    "#]].assert_eq(&t.log);
}

/// Slack refuses the full card for its content: the engine posts the minimal card at once, so
/// the incident is not silent in Slack, and keeps the card minimal for later updates.
#[test]
fn b9_a_card_slack_refuses_is_posted_minimal_and_stays_minimal() {
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    let trigger = pq1k5c8(
        "incident.triggered",
        "triggered",
        "01BZYK8N47TRIGGERED0000000",
        "2021-06-04T13:50:00.000Z",
    );
    t.pd("incident.triggered", &trigger);
    t.done(
        "card1",
        Outcome::Permanent {
            error: "slack chat.postMessage: invalid_blocks".into(),
        },
    );
    t.done(
        "card2",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.advance(60_000).pd(
        "incident.acknowledged",
        &pq1k5c8(
            "incident.acknowledged",
            "acknowledged",
            "01BZYK8N47ACKNOWLEDGED0000",
            "2021-06-04T13:51:00.000Z",
        ),
    );
    t.done("card3", Outcome::Done);
    let st = t.engine.incident(&ids::IncidentId::new("PQ1K5C8")).unwrap();
    assert!(st.view().unwrap().minimal);
    expect![[r#"
        > incident.triggered
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: Permanent { error: "slack chat.postMessage: invalid_blocks" }
          PostCard PQ1K5C8/card2 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" (minimal)
          Dropped PQ1K5C8 Failed
        > done PQ1K5C8/card2: Posted 1548261231.000200
        > incident.acknowledged
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default" (minimal)
        > done PQ1K5C8/card3: Done
    "#]].assert_eq(&t.log);
}

#[test]
fn resolved_webhook_between_the_read_and_the_put_stops_the_pending_acknowledge() {
    // Issue 17 item 5: the fresh read says triggered, the PUT is queued, then the resolved
    // webhook arrives. The acknowledge is refused (no longer awaited, so the dispatcher skips
    // it) and its clicker is told.
    let mut t = triggered_and_posted();
    t.click(
        "Acknowledge by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.done("card2", Outcome::Done);
    t.advance(200).done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "triggered",
            "x",
            "2021-06-04T13:50:00.000Z",
        ))),
    );
    let put = t.find("acknowledge2");
    t.advance(100).pd(
        "incident.resolved by someone in PagerDuty",
        &pq1k5c8(
            "incident.resolved",
            "resolved",
            "01BZYK8N47RESOLVED00000000",
            "2021-06-04T13:50:05.000Z",
        ),
    );
    assert!(!t.engine.awaits(&put), "the PUT is still awaited");
    t.input(
        "the dispatcher reports the PUT anyway",
        Input::EffectDone {
            id: put,
            outcome: Outcome::Done,
        },
    );
    // While the read is in flight: refused before anything is sent.
    t.advance(60_000).pd(
        "incident.reopened",
        &pq1k5c8(
            "incident.reopened",
            "triggered",
            "01BZYK8N47REOPENED00000000",
            "2021-06-04T13:51:10.000Z",
        ),
    );
    t.click(
        "Escalate by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Escalate,
            "1548426500.000100",
        ),
    );
    t.advance(100).pd(
        "incident.resolved again while the read is in flight",
        &pq1k5c8(
            "incident.resolved",
            "resolved",
            "01BZYK8N47RESOLVED00000001",
            "2021-06-04T13:51:20.000Z",
        ),
    );
    expect![[r##"
        > Acknowledge by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2 From=pig208@example.com Acknowledge
        > incident.resolved by someone in PagerDuty
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/reply3 to UA8RXUSPL: "#10 Test Incident was resolved in PagerDuty while your acknowledge was being sent, so the bridge stopped it; if it had already reached PagerDuty, check the incident there."
          UpdateCard PQ1K5C8/card4 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
          Dropped PQ1K5C8 Resolved
        > the dispatcher reports the PUT anyway
          Dropped UnknownEffect
        > incident.reopened
        > Escalate by UA8RXUSPL
          PdRead PQ1K5C8/1548426500.000100:UA8RXUSPL:escalate/read1 Incident
        > incident.resolved again while the read is in flight
          Ephemeral PQ1K5C8/1548426500.000100:UA8RXUSPL:escalate/reply5 to UA8RXUSPL: "#10 Test Incident was resolved in PagerDuty meanwhile, and escalate would reopen it, so the bridge did not send it."
          Dropped PQ1K5C8 Resolved
    "##]].assert_eq(&t.log);
}

/// PagerDuty's data `v` as a read answers it: reflecting every change up to `as_of`, on
/// PagerDuty's clock (the incident's `updated_at` or the answer's `Date`).
fn read_as_of(v: &serde_json::Value, as_of: &str) -> Outcome {
    let mut data = data_of(v);
    data.as_of = Some(ts(as_of));
    Outcome::PdIncident(data)
}

#[test]
fn a_webhook_is_not_dropped_when_the_bridges_clock_runs_two_minutes_ahead() {
    // Issue 17 item 6: the bridge's clock reads 13:52 when PagerDuty's reads 13:50. The read
    // after the click is ordered by PagerDuty's time, so the escalation that PagerDuty makes
    // 30 s later (13:50:30 on its clock, 13:52:30 on the bridge's) is not taken for stale.
    let mut t = Script::new("2021-06-04T13:52:00.000Z");
    t.pd(
        "incident.triggered PQ1K5C8 (occurred 13:50:00, PagerDuty's clock)",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:50:00.000Z",
        ),
    );
    t.advance(300).done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.advance(5_000).click(
        "Acknowledge by UA8RXUSPL (bridge 13:52:05)",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Acknowledge,
            "1548426417.840180",
        ),
    );
    t.done("card2", Outcome::Done);
    let triggered = pq1k5c8("x", "triggered", "x", "2021-06-04T13:50:00.000Z");
    t.advance(200)
        .done("read1", read_as_of(&triggered, "2021-06-04T13:50:05.000Z"));
    let acked = pq1k5c8("x", "acknowledged", "x", "2021-06-04T13:50:06.000Z");
    t.advance(300).done(
        "acknowledge2",
        read_as_of(&acked, "2021-06-04T13:50:06.000Z"),
    );
    t.done("card3", Outcome::Done);
    t.advance(24_000).pd(
        "incident.escalated at 13:50:30 on PagerDuty's clock",
        &pq1k5c8(
            "incident.escalated",
            "triggered",
            "01BZYK8N47ESCALATED0000000",
            "2021-06-04T13:50:30.000Z",
        ),
    );
    t.tick();
    expect![[r#"
        > incident.triggered PQ1K5C8 (occurred 13:50:00, PagerDuty's clock)
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: Posted 1548261231.000200
        > Acknowledge by UA8RXUSPL (bridge 13:52:05)
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Acknowledging… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2 From=pig208@example.com Acknowledge
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:acknowledge/acknowledge2: PdIncident(Acknowledged)
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card3: Done
        > incident.escalated at 13:50:30 on PagerDuty's clock
          UpdateCard PQ1K5C8/card4 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread5 under 1548261231.000200: ["<@UA8RXUSPL> acknowledged", "PIG 208 escalated to PIG 208"]
    "#]].assert_eq(&t.log);
}

#[test]
fn a_read_is_not_ignored_when_the_bridges_clock_runs_two_minutes_behind() {
    // Issue 17 item 6: the bridge's clock reads 13:50 when PagerDuty's reads 13:52. The read
    // showing the incident resolved (at 13:52:10 on PagerDuty's clock) is newer than the
    // acknowledgement webhook of 13:52:00, though the bridge sent it at 13:50:15.
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd(
        "incident.triggered PQ1K5C8 (occurred 13:51:50, PagerDuty's clock)",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:51:50.000Z",
        ),
    );
    t.advance(300).done(
        "card1",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.advance(2_000).pd(
        "incident.acknowledged (13:52:00, PagerDuty's clock)",
        &pq1k5c8(
            "incident.acknowledged",
            "acknowledged",
            "01BZYK8N47ACKNOWLEDGED0000",
            "2021-06-04T13:52:00.000Z",
        ),
    );
    t.done("card2", Outcome::Done);
    t.advance(12_700).click(
        "Escalate by UA8RXUSPL (bridge 13:50:15)",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Escalate,
            "1548426417.840180",
        ),
    );
    t.done("card3", Outcome::Done);
    let resolved = pq1k5c8("x", "resolved", "x", "2021-06-04T13:52:10.000Z");
    t.advance(200)
        .done("read1", read_as_of(&resolved, "2021-06-04T13:52:10.000Z"));
    expect![[r##"
        > incident.triggered PQ1K5C8 (occurred 13:51:50, PagerDuty's clock)
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: Posted 1548261231.000200
        > incident.acknowledged (13:52:00, PagerDuty's clock)
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card2: Done
        > Escalate by UA8RXUSPL (bridge 13:50:15)
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:escalate/read1 Incident
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default" pending="Escalating… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card3: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:escalate/read1: PdIncident(Resolved)
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:escalate/reply4 to UA8RXUSPL: "#10 Test Incident is resolved in PagerDuty, and escalate would reopen it, so the bridge did not send it."
          UpdateCard PQ1K5C8/card5 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
          Dropped PQ1K5C8 Resolved
    "##]].assert_eq(&t.log);
}

#[test]
fn a_post_or_note_that_may_have_been_sent_is_looked_for_before_it_is_sent_again() {
    // Issue 17 item 4: "maybe sent" is not "not sent". The card post's answer is lost, so the
    // next post first looks for it (since the first attempt); the same for a note.
    let mut t = Script::new("2021-06-04T13:50:00.000Z");
    t.pd(
        "incident.triggered PQ1K5C8",
        &pq1k5c8(
            "incident.triggered",
            "triggered",
            "01BZYK8N47TRIGGERED0000000",
            "2021-06-04T13:50:00.000Z",
        ),
    );
    t.advance(10_000).done(
        "card1",
        Outcome::MaybeSent {
            error: "no answer within 10000 ms".into(),
        },
    );
    t.tick();
    t.advance(300).done(
        "card2",
        Outcome::Posted {
            ts: msg_ts(CARD_TS),
        },
    );
    t.click(
        "Add note by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::AddNote("Rolling back.".into()),
            "1548426417.840180",
        ),
    );
    t.advance(10_000).done(
        "add_note1",
        Outcome::MaybeSent {
            error: "connection reset after the request was written".into(),
        },
    );
    t.tick();
    t.advance(200).done("add_note2", Outcome::Done);
    expect![[r#"
        > incident.triggered PQ1K5C8
          PostCard PQ1K5C8/card1 in CBR2V3XEX: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card1: MaybeSent { error: "no answer within 10000 ms" }
        > tick Retry(IncidentId("PQ1K5C8"))
          PostCard PQ1K5C8/card2 in CBR2V3XEX (first look for one posted since 1622814600000ms): "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card2: Posted 1548261231.000200
        > Add note by UA8RXUSPL
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:add_note/add_note1 From=pig208@example.com AddNote { content: "Rolling back." }
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Adding note… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:add_note/add_note1: MaybeSent { error: "connection reset after the request was written" }
          Ephemeral PQ1K5C8/1548426417.840180:UA8RXUSPL:add_note/reply4 to UA8RXUSPL: "PagerDuty did not accept add note for #10 Test Incident yet (connection reset after the request was written); the bridge is retrying and the card shows the result."
        > tick Retry(IncidentId("PQ1K5C8"))
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:add_note/add_note2 From=pig208@example.com (first look for it since 1622814611300ms) AddNote { content: "Rolling back." }
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:add_note/add_note2: Done
    "#]].assert_eq(&t.log);
}

#[test]
fn change_urgency_reads_first_is_sent_as_the_clicker_and_refused_once_resolved() {
    let mut t = triggered_and_posted();
    t.advance(5_000).click(
        "Change urgency to low by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::ChangeUrgency(Urgency::Low),
            "1548426417.840180",
        ),
    );
    t.advance(200).done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "triggered",
            "x",
            "2021-06-04T13:50:00.000Z",
        ))),
    );
    t.done("card2", Outcome::Done);
    // PagerDuty answers without the incident, and no webhook follows an urgency change.
    t.advance(300).done("change_urgency2", Outcome::Done);
    t.done("card3", Outcome::Done);
    t.tick();
    t.done("thread4", Outcome::Done);
    t.pd(
        "incident.resolved",
        &pq1k5c8(
            "incident.resolved",
            "resolved",
            "01BZYK8N47RESOLVED00000000",
            "2021-06-04T13:51:00.000Z",
        ),
    );
    t.advance(5_000).click(
        "Change urgency to high on the resolved incident",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::ChangeUrgency(Urgency::High),
            "1548426499.840180",
        ),
    );
    expect![[r##"
        > Change urgency to low by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:change_urgency/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Changing urgency… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:change_urgency/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:change_urgency/change_urgency2 From=pig208@example.com ChangeUrgency { urgency: Low }
        > done PQ1K5C8/card2: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:change_urgency/change_urgency2: Done
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" urgency=low
        > done PQ1K5C8/card3: Done
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread4 under 1548261231.000200: ["<@UA8RXUSPL> changed urgency to low"]
        > done PQ1K5C8/thread4: Done
        > incident.resolved
          UpdateCard PQ1K5C8/card5 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
        > Change urgency to high on the resolved incident
          Ephemeral PQ1K5C8/1548426499.840180:UA8RXUSPL:change_urgency/reply6 to UA8RXUSPL: "#10 Test Incident is resolved in PagerDuty, so the bridge did not send change urgency: a resolved incident takes no more actions from Slack."
          Dropped PQ1K5C8 Resolved
    "##]].assert_eq(&t.log);
}

#[test]
fn snooze_needs_an_acknowledged_incident_shows_who_and_ends_when_it_is_unacknowledged() {
    let mut t = triggered_and_posted();
    t.advance(1_000).click(
        "Snooze while triggered",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Snooze(60),
            "1548426400.000100",
        ),
    );
    t.pd(
        "incident.acknowledged",
        &pq1k5c8(
            "incident.acknowledged",
            "acknowledged",
            "01BZYK8N47ACKNOWLEDGED0000",
            "2021-06-04T13:50:02.000Z",
        ),
    );
    t.done("card2", Outcome::Done);
    t.tick();
    t.done("thread3", Outcome::Done);
    t.advance(5_000).click(
        "Snooze for 1 h",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::Snooze(60),
            "1548426417.840180",
        ),
    );
    t.done(
        "read1",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "acknowledged",
            "x",
            "2021-06-04T13:50:02.000Z",
        ))),
    );
    t.done("card4", Outcome::Done);
    t.done(
        "snooze2",
        Outcome::PdIncident(data_of(&pq1k5c8(
            "x",
            "acknowledged",
            "x",
            "2021-06-04T13:50:02.000Z",
        ))),
    );
    t.done("card5", Outcome::Done);
    t.tick();
    t.done("thread6", Outcome::Done);
    t.pd(
        "incident.unacknowledged",
        &pq1k5c8(
            "incident.unacknowledged",
            "triggered",
            "01BZYK8N47UNACKNOWLEDGED00",
            "2021-06-04T14:50:08.000Z",
        ),
    );
    expect![[r##"
        > Snooze while triggered
          Ephemeral PQ1K5C8/1548426400.000100:UA8RXUSPL:snooze/reply2 to UA8RXUSPL: "#10 Test Incident is not acknowledged, and PagerDuty snoozes only acknowledged incidents, so the bridge did not send it. Acknowledge it first."
          Dropped PQ1K5C8 AlreadyInState
        > incident.acknowledged
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default"
        > done PQ1K5C8/card3: Done
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread4 under 1548261231.000200: ["PIG 208 acknowledged"]
        > done PQ1K5C8/thread4: Done
        > Snooze for 1 h
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:snooze/read1 Incident
          UpdateCard PQ1K5C8/card5 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default" pending="Snoozing… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:snooze/read1: PdIncident(Acknowledged)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:snooze/snooze2 From=pig208@example.com Snooze { minutes: 60 }
        > done PQ1K5C8/card5: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:snooze/snooze2: PdIncident(Acknowledged)
          UpdateCard PQ1K5C8/card6 CBR2V3XEX/1548261231.000200: "Test Incident" Acknowledged assignees=["PIG 208"] policy="Default" snoozed-by=UA8RXUSPL until=1622818208300
        > done PQ1K5C8/card6: Done
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread7 under 1548261231.000200: ["<@UA8RXUSPL> snoozed the incident for 1 h"]
        > done PQ1K5C8/thread7: Done
        > incident.unacknowledged
          UpdateCard PQ1K5C8/card8 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default"
    "##]].assert_eq(&t.log);
}

#[test]
fn change_priority_reads_first_names_the_old_and_new_priority_and_is_refused_once_resolved() {
    let p1 = sync_core::Named::new(ids::PriorityId::new("PRI1"), "P1");
    let mut t = triggered_and_posted();
    t.advance(5_000).click(
        "Change priority to P1 by UA8RXUSPL",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::ChangePriority {
                to: p1.clone(),
                from: None,
            },
            "1548426417.840180",
        ),
    );
    let mut read = pq1k5c8("x", "triggered", "x", "2021-06-04T13:50:00.000Z");
    read["event"]["data"]["priority"] = serde_json::json!({
        "id": "PRI3", "type": "priority_reference", "summary": "P3",
        "self": "https://api.pagerduty.com/priorities/PRI3", "html_url": null,
    });
    t.advance(200)
        .done("read1", Outcome::PdIncident(data_of(&read)));
    t.done("card2", Outcome::Done).done("card3", Outcome::Done);
    // PagerDuty's answer confirms it; its incident.priority_updated webhook may come later.
    t.advance(300).done("change_priority2", Outcome::Done);
    t.done("card4", Outcome::Done);
    t.tick();
    t.done("thread5", Outcome::Done);
    t.pd(
        "incident.resolved",
        &pq1k5c8(
            "incident.resolved",
            "resolved",
            "01BZYK8N47RESOLVED00000000",
            "2021-06-04T13:51:00.000Z",
        ),
    );
    t.advance(5_000).click(
        "Change priority on the resolved incident",
        click(
            pig208(),
            "PQ1K5C8",
            ActionKind::ChangePriority { to: p1, from: None },
            "1548426499.840180",
        ),
    );
    expect![[r##"
        > Change priority to P1 by UA8RXUSPL
          PdRead PQ1K5C8/1548426417.840180:UA8RXUSPL:change_priority/read1 Incident
          UpdateCard PQ1K5C8/card2 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] policy="Default" pending="Changing priority… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:change_priority/read1: PdIncident(Triggered)
          PdMutation PQ1K5C8/1548426417.840180:UA8RXUSPL:change_priority/change_priority2 From=pig208@example.com ChangePriority { priority: PriorityId("PRI1") }
        > done PQ1K5C8/card2: Done
          UpdateCard PQ1K5C8/card3 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] priority=P3 policy="Default" pending="Changing priority… requested by <@UA8RXUSPL>"
        > done PQ1K5C8/card3: Done
        > done PQ1K5C8/1548426417.840180:UA8RXUSPL:change_priority/change_priority2: Done
          UpdateCard PQ1K5C8/card4 CBR2V3XEX/1548261231.000200: "Test Incident" Triggered assignees=["PIG 208"] priority=P1 policy="Default"
        > done PQ1K5C8/card4: Done
        > tick ThreadFlush(IncidentId("PQ1K5C8"))
          PostThread PQ1K5C8/thread5 under 1548261231.000200: ["<@UA8RXUSPL> changed priority P3 → P1"]
        > done PQ1K5C8/thread5: Done
        > incident.resolved
          UpdateCard PQ1K5C8/card6 CBR2V3XEX/1548261231.000200: "Test Incident" Resolved(no buttons) policy="Default"
        > Change priority on the resolved incident
          Ephemeral PQ1K5C8/1548426499.840180:UA8RXUSPL:change_priority/reply7 to UA8RXUSPL: "#10 Test Incident is resolved in PagerDuty, so the bridge did not send change priority: a resolved incident takes no more actions from Slack."
          Dropped PQ1K5C8 Resolved
    "##]].assert_eq(&t.log);
}
