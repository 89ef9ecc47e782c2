//! No-panic fuzzing (proptest) of everything that reads attacker-controlled bytes: the
//! PagerDuty webhook parser, the Slack interaction, slash-command and Socket Mode parsers, and the
//! signature header parsers of both platforms.
//!
//! Inputs are arbitrary bytes, arbitrary strings, and real fixtures with random mutations
//! (byte flips, truncation, insertion, deletion), so the parsers are driven past the first
//! syntax error into their typed layers. Set `PROPTEST_CASES` for longer runs.

use pd_client::webhook::{EventType, WebhookEnvelope};
use proptest::prelude::*;
use signing::{PagerDutySecret, SlackSigningSecret};
use slack_client::interaction::{InteractionPayload, SlashCommand, SocketModeFrame};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/",
            $path
        ))
        .as_slice()
    };
}

const WEBHOOKS: &[&[u8]] = &[
    fixture!("pagerduty-webhooks/incident.triggered.json"),
    fixture!("pagerduty-webhooks/incident.acknowledged.json"),
    fixture!("pagerduty-webhooks/incident.annotated.json"),
    fixture!("pagerduty-webhooks/incident.delegated.json"),
    fixture!("pagerduty-webhooks/incident.escalated.json"),
    fixture!("pagerduty-webhooks/incident.priority_updated.json"),
    fixture!("pagerduty-webhooks/incident.reopened.json"),
    fixture!("pagerduty-webhooks/incident.resolved.json"),
    fixture!("pagerduty-webhooks/incident.responder.added.json"),
    fixture!("pagerduty-webhooks/incident.responder.replied.json"),
    fixture!("pagerduty-webhooks/incident.status_update_published.json"),
    fixture!("pagerduty-webhooks/incident.conference_bridge.updated.json"),
    fixture!("pagerduty-webhooks/incident.workflow.started.json"),
    fixture!("pagerduty-webhooks/incident.unacknowledged.json"),
    fixture!("pagerduty-webhooks/incident.unsupported.json"),
    fixture!("pagerduty-webhooks/pagey.ping.json"),
    fixture!("pagerduty-webhooks/service.updated.pagerduty-docs.json"),
];

const SLACK_JSON: &[&[u8]] = &[
    fixture!("slack-payloads/block_actions.docs-example.json"),
    fixture!("slack-payloads/block_actions.home-view-with-confirm.json"),
    fixture!("slack-payloads/block_actions.message-with-state.json"),
    fixture!("slack-payloads/view_submission.json"),
];

const SOCKET_FRAMES: &[&[u8]] = &[
    fixture!("slack-payloads/socket_mode.disconnect.json"),
    fixture!("slack-payloads/socket_mode.events_api.json"),
    fixture!("slack-payloads/socket_mode.hello.json"),
    fixture!("slack-payloads/socket_mode.interactive.block_actions.json"),
    fixture!("slack-payloads/socket_mode.slash_commands.json"),
];

/// One edit applied to a fixture.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                // Structural characters and JSON tokens reach deeper than random bytes.
                prop::sample::select(vec![
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"[".to_vec(),
                    b"]".to_vec(),
                    b"\"".to_vec(),
                    b"null".to_vec(),
                    b"1e999".to_vec(),
                    b"-0".to_vec(),
                    b"\\u0000".to_vec(),
                    b"\\ud800".to_vec(),
                    b",".to_vec(),
                    b":".to_vec(),
                ]),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(base: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut out = base.to_vec();
    for edit in edits {
        let n = out.len().max(1);
        match edit {
            Mutation::Flip { at, byte } => {
                if !out.is_empty() {
                    let i = at % out.len();
                    out[i] = *byte;
                }
            }
            Mutation::Truncate { at } => out.truncate(at % n),
            Mutation::Insert { at, bytes } => {
                let i = at % (out.len() + 1);
                out.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete { at, len } => {
                if !out.is_empty() {
                    let i = at % out.len();
                    let end = (i + len).min(out.len());
                    out.drain(i..end);
                }
            }
        }
    }
    out
}

fn mutated(corpus: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (0..corpus.len(), proptest::collection::vec(mutation(), 0..6))
        .prop_map(move |(i, edits)| apply(corpus[i], &edits))
}

/// Exercises every accessor of a parsed webhook, so lazily computed parts run too.
fn touch_webhook(body: &[u8]) {
    if let Ok(env) = WebhookEnvelope::from_slice(body) {
        let ev = &env.event;
        let _ = ev.incident_id();
        let _ = ev.agent_user_id();
        let _ = ev.data.type_name();
        let _ = EventType::parse(ev.event_type.as_str());
        let _ = serde_json::to_vec(&env);
    }
}

fn touch_interaction_json(json: &str) {
    if let Ok(p) = InteractionPayload::from_json(json) {
        let _ = p.user();
        if let InteractionPayload::BlockActions(b) = &p {
            let _ = b.message_ref();
        }
    }
}

fn touch_form(body: &[u8]) {
    if let Ok(p) = InteractionPayload::from_form(body) {
        let _ = p.user();
    }
    let _ = SlashCommand::from_form(body);
}

fn touch_socket(json: &str) {
    if let Ok(SocketModeFrame::Envelope(env)) = SocketModeFrame::from_json(json) {
        let _ = env.interaction();
        let _ = env.slash_command();
    }
}

proptest! {
    #[test]
    fn webhook_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        touch_webhook(&body);
    }

    #[test]
    fn webhook_parser_never_panics_on_mutated_fixtures(body in mutated(WEBHOOKS)) {
        touch_webhook(&body);
    }

    #[test]
    fn event_type_parse_round_trips(s in ".{0,64}") {
        let parsed = EventType::parse(&s);
        prop_assert_eq!(parsed.as_str(), s.as_str());
    }

    #[test]
    fn slack_parsers_never_panic_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        touch_form(&body);
        let text = String::from_utf8_lossy(&body);
        touch_interaction_json(&text);
        touch_socket(&text);
    }

    #[test]
    fn slack_interaction_parser_never_panics_on_mutated_fixtures(
        json in mutated(SLACK_JSON),
        pos in any::<usize>(),
    ) {
        let text = String::from_utf8_lossy(&json).into_owned();
        touch_interaction_json(&text);
        // The same JSON as Slack sends it over HTTP: form-encoded in `payload`.
        let form = serde_urlencoded::to_string([("payload", text.as_str())]).unwrap();
        touch_form(form.as_bytes());
        // And with the encoding itself mutated.
        let mut raw = form.into_bytes();
        if raw.len() > 10 {
            let i = 8 + pos % (raw.len() - 8);
            raw[i] = b'%';
        }
        touch_form(&raw);
    }

    #[test]
    fn socket_mode_parser_never_panics_on_mutated_fixtures(json in mutated(SOCKET_FRAMES)) {
        touch_socket(&String::from_utf8_lossy(&json));
    }

    #[test]
    fn pagerduty_signature_header_never_panics_and_never_verifies_garbage(
        header in ".{0,300}",
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let secrets = [PagerDutySecret::new("s1"), PagerDutySecret::new("s2")];
        prop_assert!(signing::verify_pagerduty(&secrets, Some(&header), &body).is_err());
        let raw = String::from_utf8_lossy(&raw);
        prop_assert!(signing::verify_pagerduty(&secrets, Some(&raw), &body).is_err());
        // A valid entry buried among garbage entries still verifies.
        let good = signing::sign_pagerduty(&secrets[1], &body);
        let mixed = format!("{header},{good}");
        prop_assert!(signing::verify_pagerduty(&secrets, Some(&mixed), &body).is_ok());
    }

    #[test]
    fn slack_signature_headers_never_panic_and_never_verify_garbage(
        timestamp in ".{0,40}",
        signature in ".{0,120}",
        now in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let secret = SlackSigningSecret::new("bench");
        prop_assert!(signing::verify_slack(&secret, Some(&timestamp), Some(&signature), &body, now).is_err());
        // A correct signature with a timestamp at any distance from `now` never panics.
        let ts = now.rem_euclid(100_000_000_000);
        let sig = signing::sign_slack(&secret, ts, &body);
        let _ = signing::verify_slack(&secret, Some(&ts.to_string()), Some(&sig), &body, now);
        let verified = signing::verify_slack(&secret, Some(&ts.to_string()), Some(&sig), &body, ts);
        prop_assert!(verified.is_ok());
    }
}
