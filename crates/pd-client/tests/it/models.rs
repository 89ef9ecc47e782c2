//! Every PagerDuty fixture parses into the models with the values it really holds.

use ids::{Email, EscalationPolicyId, IncidentId, NoteId, PdUserId, SubscriptionId};
use pd_client::rest::{
    ErrorBody, EscalationPolicyEnvelope, IncidentEnvelope, IncidentList, IncidentStatus,
    IncidentUpdate, IncidentUpdateRequest, NoteEnvelope, NoteList, OnCallList, Urgency,
    UserEnvelope, UserList, UserRole, WebhookSubscriptionEnvelope, WebhookSubscriptionList,
};
use pd_client::webhook::{EventData, EventType, WebhookEnvelope};
use time::macros::datetime;

fn fixture(rel: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/{rel}",
        concat!(env!("CARGO_MANIFEST_DIR"))
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn webhook(name: &str) -> WebhookEnvelope {
    WebhookEnvelope::from_slice(&fixture(&format!("pagerduty-webhooks/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn incident_data(env: &WebhookEnvelope) -> &pd_client::webhook::WebhookIncident {
    match &env.event.data {
        EventData::Incident(i) => i,
        other => panic!("expected incident data, got {other:?}"),
    }
}

#[test]
fn triggered_2021_capture_without_newer_fields() {
    let env = webhook("incident.triggered.json");
    let e = &env.event;
    assert_eq!(e.id.as_str(), "01BZYIL05THJDFF2Y08X9SVMTU");
    assert_eq!(e.event_type, EventType::IncidentTriggered);
    assert_eq!(e.resource_type, "incident");
    assert_eq!(e.occurred_at, datetime!(2021-06-04 13:35:29.781 UTC));
    assert_eq!(e.agent_user_id(), Some(PdUserId::new("PJ0LVEB")));
    assert_eq!(e.client, None);
    let i = incident_data(&env);
    assert_eq!(i.id, IncidentId::new("PFQZPSY"));
    assert_eq!(i.number, 9);
    assert_eq!(i.status, IncidentStatus::Triggered);
    assert_eq!(i.title, "Test Incident 3");
    assert_eq!(i.incident_key, None);
    assert_eq!(i.created_at, None);
    assert_eq!(i.incident_type, None);
    assert_eq!(i.assignees[0].id, PdUserId::new("PJ0LVEB"));
    assert_eq!(i.assignees[0].summary.as_deref(), Some("PIG 208"));
    assert_eq!(
        i.escalation_policy.as_ref().unwrap().id,
        EscalationPolicyId::new("PY82TC6")
    );
    assert_eq!(i.service.as_ref().unwrap().id.as_str(), "PA2P440");
    assert_eq!(i.priority, None);
    assert_eq!(i.urgency, Some(Urgency::High));
    assert!(i.teams.is_empty());
}

#[test]
fn acknowledged_and_unacknowledged() {
    let ack = webhook("incident.acknowledged.json");
    assert_eq!(ack.event.event_type, EventType::IncidentAcknowledged);
    let i = incident_data(&ack);
    assert_eq!((i.id.as_str(), i.number), ("PQ1K5C8", 10));
    assert_eq!(i.status, IncidentStatus::Acknowledged);
    assert_eq!(ack.event.incident_id(), Some(&IncidentId::new("PQ1K5C8")));

    let unack = webhook("incident.unacknowledged.json");
    assert_eq!(unack.event.event_type, EventType::IncidentUnacknowledged);
    let i = incident_data(&unack);
    assert_eq!((i.id.as_str(), i.number), ("PQ1K5C8", 10));
    assert_eq!(i.status, IncidentStatus::Triggered);
    assert_eq!(
        unack.event.occurred_at,
        datetime!(2021-06-04 13:54:23.185 UTC)
    );
}

#[test]
fn resolved_has_no_assignees() {
    let env = webhook("incident.resolved.json");
    assert_eq!(env.event.event_type, EventType::IncidentResolved);
    let i = incident_data(&env);
    assert_eq!((i.id.as_str(), i.number), ("PCPZE64", 6));
    assert_eq!(i.status, IncidentStatus::Resolved);
    assert!(i.assignees.is_empty());
    assert_eq!(i.resolve_reason, None);
}

#[test]
fn escalated_and_delegated_2026_captures() {
    let esc = webhook("incident.escalated.json");
    assert_eq!(esc.event.event_type, EventType::IncidentEscalated);
    let i = incident_data(&esc);
    assert_eq!(i.id.as_str(), "Q3B15VLMF3ASBD");
    assert_eq!(i.number, 5);
    assert_eq!(
        i.incident_key.as_deref(),
        Some("d387d7bd2e0a4294a5307339dfe1669a")
    );
    assert_eq!(i.created_at, Some(datetime!(2026-04-01 02:07:30 UTC)));
    assert_eq!(i.reopened_at, None);
    assert_eq!(i.incident_type.as_ref().unwrap().name, "major_default");
    assert_eq!(i.escalation_policy.as_ref().unwrap().id.as_str(), "P1EUYO0");
    let prio = i.priority.as_ref().unwrap();
    assert_eq!(
        (prio.id.as_str(), prio.summary.as_deref()),
        ("P12CAYR", Some("P1"))
    );

    let del = webhook("incident.delegated.json");
    assert_eq!(del.event.event_type, EventType::IncidentDelegated);
    let i = incident_data(&del);
    assert_eq!(i.escalation_policy.as_ref().unwrap().id.as_str(), "P3RAX8S");
    assert_eq!(
        i.escalation_policy.as_ref().unwrap().summary.as_deref(),
        Some("APIs-ep")
    );
    assert_eq!(i.assignees[0].summary.as_deref(), Some("Harsh Santwani"));
}

#[test]
fn reopened_carries_reopened_at() {
    let env = webhook("incident.reopened.json");
    assert_eq!(env.event.event_type, EventType::IncidentReopened);
    let i = incident_data(&env);
    assert_eq!((i.id.as_str(), i.number), ("Q05XJA8GDXGOB3", 4));
    assert_eq!(i.reopened_at, Some(datetime!(2026-04-01 02:15:01 UTC)));
    assert_eq!(i.urgency, Some(Urgency::Low));
    assert_eq!(i.priority.as_ref().unwrap().summary.as_deref(), Some("P3"));
    assert_eq!(i.incident_type.as_ref().unwrap().name, "security_default");
}

#[test]
fn priority_updated_three_sources() {
    let zulip = webhook("incident.priority_updated.json");
    assert_eq!(zulip.event.event_type, EventType::IncidentPriorityUpdated);
    assert_eq!(
        incident_data(&zulip)
            .priority
            .as_ref()
            .unwrap()
            .summary
            .as_deref(),
        Some("P2")
    );

    let docs = webhook("incident.priority_updated.pagerduty-docs.json");
    assert_eq!(
        docs.event.id.as_str(),
        "5ac64822-4adc-4fda-ade0-410becf0de4f"
    );
    assert_eq!(
        docs.event.client.as_ref().unwrap().name.as_deref(),
        Some("PagerDuty")
    );
    let i = incident_data(&docs);
    assert_eq!(i.teams[0].id.as_str(), "PFCVPS0");
    assert_eq!(i.teams[0].summary.as_deref(), Some("Engineering"));
    assert_eq!(
        i.conference_bridge
            .as_ref()
            .unwrap()
            .conference_number
            .as_deref(),
        Some("+1 1234123412,,987654321#")
    );

    // The go-pagerduty body has a numeric conference_number.
    let signed = webhook("incident.priority_updated.go-pagerduty-signed.json");
    let i = incident_data(&signed);
    assert_eq!((i.id.as_str(), i.number), ("PGR0VU2", 2));
    let bridge = i.conference_bridge.as_ref().unwrap();
    assert_eq!(bridge.conference_number.as_deref(), Some("1000"));
    assert_eq!(
        bridge.conference_url.as_deref(),
        Some("https://example.com")
    );
    assert_eq!(signed.event.agent_user_id(), Some(PdUserId::new("PLH1HKV")));
}

#[test]
fn annotated_is_a_note() {
    let env = webhook("incident.annotated.json");
    assert_eq!(env.event.event_type, EventType::IncidentAnnotated);
    let EventData::IncidentNote(note) = &env.event.data else {
        panic!("expected a note: {:?}", env.event.data)
    };
    assert_eq!(note.id, NoteId::new("PEMJB6G"));
    assert_eq!(
        note.content,
        "Running KILL on long-running queries from the reporting-service."
    );
    assert!(!note.trimmed);
    assert_eq!(note.incident.id.as_str(), "Q3B15VLMF3ASBD");
    assert_eq!(
        note.incident.summary.as_deref(),
        Some("Critical: Checkout API High Latency")
    );
    assert_eq!(env.event.incident_id().unwrap().as_str(), "Q3B15VLMF3ASBD");
}

#[test]
fn responder_added_and_replied() {
    let added = webhook("incident.responder.added.json");
    assert_eq!(added.event.event_type, EventType::IncidentResponderAdded);
    let EventData::IncidentResponder(r) = &added.event.data else {
        panic!("expected responder")
    };
    assert_eq!(r.user.as_ref().unwrap().id.as_str(), "PXRUEF2");
    assert_eq!(r.escalation_policy.as_ref().unwrap().id.as_str(), "P3RAX8S");
    assert_eq!(r.state.as_deref(), Some("pending"));
    assert_eq!(
        r.message.as_deref(),
        Some("Please help with \"Critical: Checkout API High Latency\"")
    );

    let replied = webhook("incident.responder.replied.json");
    assert_eq!(
        replied.event.event_type,
        EventType::IncidentResponderReplied
    );
    let EventData::IncidentResponder(r) = &replied.event.data else {
        panic!("expected responder")
    };
    assert_eq!(r.escalation_policy, None);
    assert_eq!(r.state.as_deref(), Some("accepted"));
    assert!(r.message.as_deref().unwrap().starts_with("Checking now."));
}

#[test]
fn status_update_and_conference_bridge() {
    let su = webhook("incident.status_update_published.json");
    assert_eq!(
        su.event.event_type,
        EventType::IncidentStatusUpdatePublished
    );
    let EventData::IncidentStatusUpdate(u) = &su.event.data else {
        panic!("expected status update")
    };
    assert_eq!(u.id.as_deref(), Some("PE8VDWS"));
    assert!(u.message.starts_with("Investigating a P1 incident"));
    assert!(!u.trimmed);

    let cb = webhook("incident.conference_bridge.updated.json");
    assert_eq!(
        cb.event.event_type,
        EventType::IncidentConferenceBridgeUpdated
    );
    let EventData::IncidentConferenceBridge(b) = &cb.event.data else {
        panic!("expected bridge")
    };
    assert_eq!(b.conference_numbers, None);
    assert_eq!(
        b.conference_url.as_deref(),
        Some("https://example.com/123-456-789")
    );
    assert_eq!(b.incident.id.as_str(), "Q3B15VLMF3ASBD");
}

#[test]
fn workflow_started_with_numeric_event_id() {
    let env = webhook("incident.workflow.started.json");
    assert_eq!(
        env.event.id.as_str(),
        "32743190385439511823355034091750713370"
    );
    assert_eq!(env.event.event_type, EventType::IncidentWorkflowStarted);
    let EventData::IncidentWorkflowInstance(w) = &env.event.data else {
        panic!("expected workflow instance")
    };
    assert_eq!(w.id.as_deref(), Some("PU3WKIK"));
    assert_eq!(w.summary.as_deref(), Some("Manually Started"));
    assert_eq!(w.incident.id.as_str(), "Q3B15VLMF3ASBD");
    assert_eq!(w.service.as_ref().unwrap().id.as_str(), "P844A2S");
}

#[test]
fn unknown_event_type_is_explicit_not_an_error() {
    let env = webhook("incident.unsupported.json");
    assert_eq!(
        env.event.event_type,
        EventType::Unknown("incident.unsupported".to_owned())
    );
    assert_eq!(env.event.event_type.as_str(), "incident.unsupported");
    let i = incident_data(&env);
    assert_eq!((i.id.as_str(), i.number), ("PIQUG8X", 3));
    assert_eq!(i.assignees[0].id.as_str(), "PI9DT01");
}

#[test]
fn ping_and_service_events() {
    let ping = webhook("pagey.ping.json");
    assert_eq!(ping.event.event_type, EventType::PageyPing);
    assert_eq!(ping.event.resource_type, "pagey");
    let EventData::Ping(p) = &ping.event.data else {
        panic!("expected ping")
    };
    assert_eq!(p.message, "Hello from your friend Pagey!");
    // The ping's agent is a bare {id, type}.
    assert_eq!(ping.event.agent_user_id(), Some(PdUserId::new("PVE0ZR9")));
    assert_eq!(ping.event.incident_id(), None);

    let svc = webhook("service.updated.pagerduty-docs.json");
    assert_eq!(svc.event.event_type, EventType::ServiceUpdated);
    assert_eq!(svc.event.agent, None);
    let EventData::Service(s) = &svc.event.data else {
        panic!("expected service")
    };
    assert_eq!(s.id.as_str(), "PF9KMXH");
    assert_eq!(s.summary.as_deref(), Some("testing service updates"));
}

#[test]
fn every_documented_data_type_parses() {
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&fixture(
        "pagerduty-webhooks/_event-data-types.pagerduty-docs.json",
    ))
    .unwrap();
    assert_eq!(all.len(), 12);
    for (name, data) in &all {
        let parsed: EventData = serde_json::from_value(data.clone())
            .unwrap_or_else(|e| panic!("data type {name}: {e}"));
        let expected_type = data.get("type").and_then(|t| t.as_str()).unwrap();
        assert_eq!(parsed.type_name(), expected_type, "{name}");
        // Typed variants for what the bridge reads; the rest stays as JSON.
        let typed = !matches!(parsed, EventData::Other(_));
        let should_be_typed = matches!(
            name.as_str(),
            "incident"
                | "incident_note"
                | "incident_responder"
                | "incident_status_update"
                | "incident_conference_bridge"
                | "incident_workflow_instance"
                | "service"
        );
        assert_eq!(typed, should_be_typed, "{name}");
    }
    let EventData::IncidentConferenceBridge(b) =
        serde_json::from_value(all["incident_conference_bridge"].clone()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        b.conference_numbers.unwrap()[0].number,
        "+1-555-555-5555".to_owned()
    );
}

#[test]
fn every_webhook_fixture_round_trips_through_serde() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pagerduty-webhooks"
    );
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with('_') {
            continue;
        }
        let env = webhook(&name);
        let again: WebhookEnvelope =
            serde_json::from_value(serde_json::to_value(&env).unwrap()).unwrap();
        assert_eq!(again, env, "{name}");
        count += 1;
    }
    assert_eq!(count, 19);
}

#[test]
fn event_type_spellings_round_trip() {
    for known in EventType::KNOWN {
        assert_eq!(&EventType::parse(known.as_str()), known);
    }
    assert_eq!(
        EventType::parse("incident.new_thing"),
        EventType::Unknown("incident.new_thing".into())
    );
}

fn rest<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_slice(&fixture(&format!("pagerduty/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn rest_incident_get_and_put() {
    let got: IncidentEnvelope = rest("incident.get.openapi-example.json");
    let i = &got.incident;
    assert_eq!(i.id.as_str(), "PT4KHLK");
    assert_eq!(i.incident_number, 1234);
    assert_eq!(i.status, IncidentStatus::Acknowledged);
    assert_eq!(i.assignee_ids(), vec![PdUserId::new("PXPGF42")]);
    assert_eq!(
        i.assignments[0].at,
        Some(datetime!(2015-11-10 00:31:52 UTC))
    );
    assert_eq!(
        i.acknowledgements[0].acknowledger.user_id(),
        Some(PdUserId::new("PXPGF42"))
    );
    assert_eq!(i.escalation_policy.as_ref().unwrap().id.as_str(), "PT20YPA");
    assert_eq!(i.teams[0].id.as_str(), "PQ9K7I8");
    assert_eq!(i.priority.as_ref().unwrap().summary.as_deref(), Some("P2"));
    assert_eq!(i.urgency, Some(Urgency::High));

    let put: IncidentEnvelope = rest("incident.put.openapi-example.json");
    assert_eq!(put.incident.status, IncidentStatus::Resolved);
    assert_eq!(
        put.incident.resolved_at,
        Some(datetime!(2015-10-06 21:38:23 UTC))
    );
    assert_eq!(put.incident.incident_type.unwrap().name, "major_incident");
}

#[test]
fn rest_incident_list_pagination() {
    let page: IncidentList = rest("incidents.list.openapi-example.json");
    assert_eq!(page.incidents.len(), 1);
    assert!(page.incidents[0].assignments.is_empty());
    assert_eq!(page.page.limit, Some(1));
    assert_eq!(page.page.offset, Some(0));
    assert!(page.page.more);
    assert_eq!(page.page.total, None);
}

#[test]
fn rest_update_bodies_match_the_spec() {
    let ack = serde_json::to_value(IncidentUpdateRequest {
        incident: IncidentUpdate::acknowledge(),
    })
    .unwrap();
    assert_eq!(
        ack,
        serde_json::json!({"incident": {"type": "incident_reference", "status": "acknowledged"}})
    );
    let resolve = serde_json::to_value(IncidentUpdate::resolve(Some("fixed".into()))).unwrap();
    assert_eq!(
        resolve,
        serde_json::json!({"type": "incident_reference", "status": "resolved", "resolution": "fixed"})
    );
    let esc = serde_json::to_value(IncidentUpdate::escalate(2)).unwrap();
    assert_eq!(
        esc,
        serde_json::json!({"type": "incident_reference", "escalation_level": 2})
    );
    let re = serde_json::to_value(IncidentUpdate::reassign(&[PdUserId::new("PXPGF42")])).unwrap();
    assert_eq!(
        re,
        serde_json::json!({"type": "incident_reference",
            "assignments": [{"assignee": {"id": "PXPGF42", "type": "user_reference"}}]})
    );
}

#[test]
fn rest_notes() {
    let one: NoteEnvelope = rest("notes.post.openapi-example.json");
    assert_eq!(one.note.id, NoteId::new("PWL7QXS"));
    assert_eq!(one.note.content, "Firefighters are on the scene.");
    assert_eq!(
        one.note.created_at,
        Some(datetime!(2013-03-06 15:28:51 -05:00))
    );
    let list: NoteList = rest("notes.list.openapi-example.json");
    assert_eq!(list.notes.len(), 2);
    assert_eq!(
        list.notes[1].user.as_ref().unwrap().kind,
        "bot_user_reference"
    );
    assert_eq!(list.notes[1].user.as_ref().unwrap().user_id(), None);
}

#[test]
fn rest_users() {
    let one: UserEnvelope = rest("user.get.openapi-example.json");
    let u = &one.user;
    assert_eq!(u.id.as_str(), "PXPGF42");
    assert_eq!(u.name, "Earline Greenholt");
    assert_eq!(
        u.email,
        Email::new("125.GREENHOLT.earline@graham.name"),
        "emails compare case-insensitively"
    );
    assert_eq!(u.role, Some(UserRole::Admin));
    assert_eq!(u.teams[0].id.as_str(), "PQ9K7I8");
    assert_eq!(u.time_zone.as_deref(), Some("America/Lima"));
    let list: UserList = rest("users.list.openapi-example.json");
    assert_eq!(list.users.len(), 2);
    assert_eq!(
        list.users[1].email.as_str(),
        "126_dvm_kyler_kuhn@beahan.name"
    );
    assert!(!list.page.more);
    assert_eq!(list.page.limit, Some(25));
}

#[test]
fn rest_escalation_policy_and_oncalls() {
    let ep: EscalationPolicyEnvelope = rest("escalation_policy.get.openapi-example.json");
    let ep = ep.escalation_policy;
    assert_eq!(ep.id.as_str(), "PT20YPA");
    assert_eq!(ep.num_loops, 2);
    assert_eq!(ep.levels(), 1);
    let rule = &ep.escalation_rules[0];
    assert_eq!(rule.escalation_delay_in_minutes, 30);
    assert_eq!(rule.targets.len(), 2);
    assert_eq!(rule.targets[1].kind, "schedule_reference");
    assert_eq!(rule.user_ids(), vec![PdUserId::new("PAM4FGS")]);
    assert_eq!(ep.teams[0].id.as_str(), "PQ9K7I8");

    let oncalls: OnCallList = rest("oncalls.list.openapi-example.json");
    let oc = &oncalls.oncalls[0];
    assert_eq!(oc.user.id.as_str(), "PT23IWX");
    assert_eq!(oc.escalation_level, 2);
    assert_eq!(oc.escalation_policy.id.as_str(), "PT20YPA");
    assert_eq!(oc.start, Some(datetime!(2015-03-06 15:28:51 -05:00)));
}

#[test]
fn rest_webhook_subscriptions() {
    let one: WebhookSubscriptionEnvelope = rest("webhook_subscription.get.openapi-example.json");
    let s = &one.webhook_subscription;
    assert_eq!(s.id, SubscriptionId::new("PY1OL64"));
    assert!(s.active);
    assert_eq!(
        s.delivery_method.url,
        "https://example.com/receive_a_pagerduty_webhook"
    );
    assert_eq!(s.delivery_method.secret, None);
    assert_eq!(s.delivery_method.temporarily_disabled, Some(false));
    assert_eq!(s.events.len(), 12);
    assert_eq!(s.events[0], EventType::IncidentAcknowledged);
    assert_eq!(s.filter.kind, "service_reference");
    assert_eq!(s.filter.id.as_deref(), Some("P393ZNQ"));
    let dbg = format!("{s:?}");
    assert!(
        !dbg.contains("-- redacted --"),
        "header values are redacted in Debug"
    );

    let list: WebhookSubscriptionList = rest("webhook_subscriptions.list.openapi-example.json");
    assert!(!list.webhook_subscriptions.is_empty());

    let create: pd_client::rest::CreateWebhookSubscriptionRequest =
        rest("pagerduty-webhook-subscription.create-request.pagerduty-docs.json");
    assert_eq!(create.webhook_subscription.events.len(), 13);
    assert_eq!(
        create.webhook_subscription.delivery_method.custom_headers[0].name,
        "your-header-name"
    );
}

#[test]
fn secret_is_redacted_in_debug() {
    let body = r#"{"webhook_subscription":{"id":"P1","active":true,"type":"webhook_subscription",
        "delivery_method":{"type":"http_delivery_method","url":"https://x","secret":"s3cr3t-value"},
        "filter":{"type":"account_reference"}}}"#;
    let s: WebhookSubscriptionEnvelope = serde_json::from_str(body).unwrap();
    let secret = s
        .webhook_subscription
        .delivery_method
        .secret
        .clone()
        .unwrap();
    assert_eq!(secret.expose(), "s3cr3t-value");
    assert!(!format!("{s:?}").contains("s3cr3t"));
}

#[test]
fn rest_error_bodies_array_and_map() {
    let classic: ErrorBody = rest("error.classic.openapi-example.json");
    assert_eq!(classic.error.code, Some(2100));
    assert_eq!(classic.error.render(), "Not Found (code 2100)");

    let map: ErrorBody = rest("error.v3-map.openapi-example.json");
    assert_eq!(map.error.code, Some(2001));
    assert_eq!(
        map.error.details(),
        vec!["event.effective_since: Date cannot be more than 12 months in the future"]
    );
    assert_eq!(
        map.error.render(),
        "Invalid Request (code 2001): event.effective_since: Date cannot be more than 12 months in the future"
    );

    // The classic validation shape from PagerDuty's errors guide, with `errors` as an array.
    let array: ErrorBody = serde_json::from_str(
        r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Status is invalid","Level must be positive"]}}"#,
    )
    .unwrap();
    assert_eq!(
        array.error.render(),
        "Invalid Input Provided (code 2001): Status is invalid; Level must be positive"
    );
}

#[test]
fn service_team_and_current_user_fixtures_parse() {
    use ids::{ServiceId, TeamId};
    use pd_client::rest::{ServiceEnvelope, TeamEnvelope};

    let s: ServiceEnvelope =
        serde_json::from_slice(&fixture("pagerduty/service.get.openapi-example.json")).unwrap();
    assert_eq!(s.service.id, ServiceId::new("PIJ90N7"));
    assert_eq!(s.service.name, "My Application Service");
    assert_eq!(s.service.status.as_deref(), Some("active"));
    assert_eq!(
        s.service.escalation_policy.as_ref().unwrap().id,
        EscalationPolicyId::new("PT20YPA")
    );
    assert_eq!(s.service.team_ids(), vec![TeamId::new("PQ9K7I8")]);
    assert_eq!(s.service.teams[0].summary.as_deref(), Some("Engineering"));

    let t: TeamEnvelope =
        serde_json::from_slice(&fixture("pagerduty/team.get.openapi-example.json")).unwrap();
    assert_eq!(t.team.id, TeamId::new("PQ9K7I8"));
    assert_eq!(t.team.name, "Engineering");
    assert_eq!(t.team.description.as_deref(), Some("All engineering"));
    assert_eq!(t.team.parent, None);

    let me: UserEnvelope =
        serde_json::from_slice(&fixture("pagerduty/user.me.openapi-example.json")).unwrap();
    assert_eq!(me.user.id, PdUserId::new("PXPGF42"));
    assert_eq!(
        me.user.email,
        Email::new("125.greenholt.earline@graham.name")
    );
    assert_eq!(me.user.teams[0].id, TeamId::new("PQ9K7I8"));
}

/// Event data parsed straight from the body (raw text into the struct its `type` names) is the
/// same as data parsed through a `serde_json::Value`, for every webhook fixture and for the
/// shapes the direct parse hands to the `Value` path (duplicate keys, a `null` or missing type,
/// data that is not an object).
#[test]
fn event_data_parses_the_same_directly_and_through_a_value() {
    let dir = format!(
        "{}/../../fixtures/pagerduty-webhooks",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| std::fs::read(entry.expect("entry").path()).expect("read"))
        .collect();
    assert!(bodies.len() > 5, "fixtures found in {dir}");
    let event = |data: &str| {
        format!(
            r#"{{"event":{{"id":"E1","event_type":"incident.acknowledged","occurred_at":"2026-01-01T00:00:00Z","data":{data}}}}}"#
        )
        .into_bytes()
    };
    bodies.push(event(
        r#"{"type":"incident","type":"incident","id":"P1","number":1,"status":"acknowledged"}"#,
    ));
    bodies.push(event(
        r#"{"type":"incident","id":"P1","id":"P2","number":1,"status":"acknowledged"}"#,
    ));
    bodies.push(event(r#"{"type":null,"id":"P1"}"#));
    bodies.push(event(r#"{"id":"P1"}"#));
    bodies.push(event(r#"[1,2]"#));
    bodies.push(event(r#""text""#));
    bodies.push(event(
        r#"{"type":"incident","id":"P1","status":"acknowledged"}"#,
    ));
    bodies.push(event(r#"{"type":"custom_thing","x":{"y":[1,2.5,"z"]}}"#));
    for body in &bodies {
        let direct = WebhookEnvelope::from_slice(body);
        let via_value = serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::from_value::<WebhookEnvelope>(v).map_err(|e| e.to_string()));
        match (direct, via_value) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(body)),
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "{}: direct {a:?}, through a value {b:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}
