//! Signed requests the bench sends: PagerDuty v3 webhooks and Slack interactions.
//!
//! Webhook bodies follow the shape of `fixtures/pagerduty-webhooks/incident.triggered.json`,
//! padded (in the incident title) to an exact size so the ingest bench sends what it claims.

use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::Full;
use serde_json::json;
use signing::{PagerDutySecret, SlackSigningSecret};

use crate::load::Template;

/// The PagerDuty webhook secret the bench configures and signs with.
pub const PD_SECRET: &str = "bench-pagerduty-webhook-secret";

/// The Slack signing secret the bench configures and signs with.
pub const SLACK_SECRET: &str = "bench-slack-signing-secret";

/// The current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One incident event as the bench describes it.
#[derive(Debug, Clone)]
pub struct IncidentEvent<'a> {
    /// The unique event id (`event.id`).
    pub event_id: &'a str,
    /// The event type, e.g. `incident.triggered`.
    pub event_type: &'a str,
    /// The incident id (`event.data.id`).
    pub incident: &'a str,
    /// The incident status after the event.
    pub status: &'a str,
    /// The service id (routes may match it).
    pub service: &'a str,
    /// The id of the user who caused the event.
    pub agent: &'a str,
    /// `occurred_at`, RFC 3339.
    pub occurred_at: &'a str,
    /// The incident title.
    pub title: &'a str,
}

/// A v3 webhook body for `ev`, padded to at least `min_len` bytes through the title.
pub fn webhook_body(ev: &IncidentEvent<'_>, min_len: usize) -> Bytes {
    let make = |title: &str| {
        json!({
            "event": {
                "id": ev.event_id,
                "event_type": ev.event_type,
                "resource_type": "incident",
                "occurred_at": ev.occurred_at,
                "agent": {
                    "html_url": format!("https://bench.pagerduty.com/users/{}", ev.agent),
                    "id": ev.agent,
                    "self": format!("https://api.pagerduty.com/users/{}", ev.agent),
                    "summary": "Bench User",
                    "type": "user_reference"
                },
                "client": null,
                "data": {
                    "id": ev.incident,
                    "type": "incident",
                    "self": format!("https://api.pagerduty.com/incidents/{}", ev.incident),
                    "html_url": format!("https://bench.pagerduty.com/incidents/{}", ev.incident),
                    "number": 1,
                    "status": ev.status,
                    "title": title,
                    "service": {
                        "html_url": format!("https://bench.pagerduty.com/services/{}", ev.service),
                        "id": ev.service,
                        "self": format!("https://api.pagerduty.com/services/{}", ev.service),
                        "summary": "bench service",
                        "type": "service_reference"
                    },
                    "assignees": [{
                        "html_url": format!("https://bench.pagerduty.com/users/{}", ev.agent),
                        "id": ev.agent,
                        "self": format!("https://api.pagerduty.com/users/{}", ev.agent),
                        "summary": "Bench User",
                        "type": "user_reference"
                    }],
                    "escalation_policy": {
                        "html_url": "https://bench.pagerduty.com/escalation_policies/PBENCHEP",
                        "id": "PBENCHEP",
                        "self": "https://api.pagerduty.com/escalation_policies/PBENCHEP",
                        "summary": "Default",
                        "type": "escalation_policy_reference"
                    },
                    "teams": [],
                    "priority": null,
                    "urgency": "high",
                    "conference_bridge": null,
                    "resolve_reason": null
                }
            }
        })
        .to_string()
    };
    let plain = make(ev.title);
    if plain.len() >= min_len {
        return Bytes::from(plain);
    }
    let pad = min_len - plain.len();
    let title = format!("{} {}", ev.title, "x".repeat(pad.saturating_sub(1)));
    Bytes::from(make(&title))
}

/// A signed `POST /pagerduty/webhook` request.
pub fn pd_request(
    host: &str,
    body: Bytes,
    webhook_id: Option<&str>,
    secret: &str,
) -> Request<Full<Bytes>> {
    let sig = signing::sign_pagerduty(&PagerDutySecret::new(secret), &body);
    let mut b = Request::post("/pagerduty/webhook")
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .header("user-agent", "PagerDuty-Webhook/V3.0")
        .header(signing::PAGERDUTY_SIGNATURE_HEADER, sig);
    if let Some(id) = webhook_id {
        b = b.header("x-webhook-id", id);
    }
    b.body(Full::new(body))
        .expect("static request parts are valid")
}

/// A signed `POST /pagerduty/webhook` as a [`Template`]: the same headers as [`pd_request`], with
/// every [`crate::load::SEQ_MARK`] in `body` and `webhook_id` filled per request and the body
/// signed again each time.
pub fn pd_template(
    host: &str,
    body: &[u8],
    webhook_id: Option<&str>,
    secret: &str,
) -> anyhow::Result<Template> {
    let mut headers = vec![
        ("host", host.to_owned()),
        ("content-type", "application/json".to_owned()),
        ("user-agent", "PagerDuty-Webhook/V3.0".to_owned()),
    ];
    if let Some(id) = webhook_id {
        headers.push(("x-webhook-id", id.to_owned()));
    }
    Template::post(
        "/pagerduty/webhook",
        &headers,
        body,
        Some((signing::PAGERDUTY_SIGNATURE_HEADER, secret)),
    )
}

/// A Slack `block_actions` payload for a click on `action_id` of the card of `incident`.
pub fn block_action(
    user: &str,
    team: &str,
    channel: &str,
    message_ts: &str,
    incident: &str,
    action_id: &str,
    response_url: &str,
) -> serde_json::Value {
    json!({
        "type": "block_actions",
        "team": {"id": team, "domain": "bench"},
        "user": {"id": user, "username": "bench", "name": "bench", "team_id": team},
        "api_app_id": "ABENCH",
        "token": "legacy-verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": false
        },
        "trigger_id": format!("{}.{}.bench", now_unix(), fastrand::u64(..)),
        "channel": {"id": channel, "name": "bench"},
        "message": {"type": "message", "ts": message_ts, "text": "card"},
        "response_url": response_url,
        "actions": [{
            "action_id": action_id,
            "block_id": "actions",
            "text": {"type": "plain_text", "text": "button", "emoji": true},
            "value": incident,
            "type": "button",
            "action_ts": format!("{}.000100", now_unix())
        }]
    })
}

/// The form body Slack posts for an interaction: one `payload` field holding the JSON.
pub fn interaction_form(payload: &serde_json::Value) -> Bytes {
    let form = serde_urlencoded::to_string([("payload", payload.to_string())])
        .expect("a single string pair always encodes");
    Bytes::from(form)
}

/// A signed Slack request to `path` with a form body, signed at `timestamp`.
pub fn slack_request(
    host: &str,
    path: &str,
    body: Bytes,
    secret: &str,
    timestamp: i64,
) -> Request<Full<Bytes>> {
    let sig = signing::sign_slack(&SlackSigningSecret::new(secret), timestamp, &body);
    Request::post(path)
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(signing::SLACK_TIMESTAMP_HEADER, timestamp.to_string())
        .header(signing::SLACK_SIGNATURE_HEADER, sig)
        .body(Full::new(body))
        .expect("static request parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> IncidentEvent<'static> {
        IncidentEvent {
            event_id: "E1",
            event_type: "incident.triggered",
            incident: "PINC1",
            status: "triggered",
            service: "PSVC1",
            agent: "PUSER1",
            occurred_at: "2026-01-01T00:00:00.000Z",
            title: "Disk full",
        }
    }

    #[test]
    fn webhook_bodies_are_padded_to_size_and_valid_json() {
        let body = webhook_body(&ev(), 2048);
        assert!((2048..2060).contains(&body.len()), "{}", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["event"]["data"]["id"], "PINC1");
        assert!(webhook_body(&ev(), 0).len() < 2048);
    }

    #[test]
    fn signed_requests_verify() {
        let body = webhook_body(&ev(), 100);
        let req = pd_request("h", body.clone(), Some("wh"), PD_SECRET);
        let sig = req.headers()[signing::PAGERDUTY_SIGNATURE_HEADER]
            .to_str()
            .unwrap();
        signing::verify_pagerduty(&[PagerDutySecret::new(PD_SECRET)], Some(sig), &body).unwrap();

        let form = interaction_form(&json!({"a": "b c&d"}));
        assert_eq!(&form[..], b"payload=%7B%22a%22%3A%22b+c%26d%22%7D");
        let req = slack_request("h", "/slack/interactions", form.clone(), SLACK_SECRET, 1000);
        let h = |n: &str| req.headers()[n].to_str().ok();
        signing::verify_slack(
            &SlackSigningSecret::new(SLACK_SECRET),
            h(signing::SLACK_TIMESTAMP_HEADER),
            h(signing::SLACK_SIGNATURE_HEADER),
            &form,
            1000,
        )
        .unwrap();
    }
}
