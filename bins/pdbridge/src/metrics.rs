//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! One [`Metrics`] is shared by the HTTP layer, the bridge and the dispatcher. Label values are
//! short fixed vocabularies (sources, reasons, kinds, platforms), never ids or user input.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// A histogram family whose buckets are [`RESPONSE_BUCKETS`].
type Responses = Family<Labels, Histogram, fn() -> Histogram>;

/// The buckets of the time-to-acknowledge and time-to-resolve histograms, in seconds: from
/// 30 s to a day.
pub const RESPONSE_BUCKETS: [f64; 12] = [
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];

fn response_histogram() -> Histogram {
    Histogram::new(RESPONSE_BUCKETS)
}

/// How long PagerDuty says an incident took to be acknowledged or resolved, from one event.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseTime {
    resolve: bool,
    service: String,
    urgency: &'static str,
    seconds: f64,
}

impl ResponseTime {
    /// The time from the incident's `created_at` to an `incident.acknowledged` or
    /// `incident.resolved` event's `occurred_at`, both PagerDuty's clock; `None` for other
    /// events and for payloads without `created_at`.
    pub fn of(event: &pd_client::webhook::WebhookEvent) -> Option<Self> {
        use pd_client::rest::Urgency;
        use pd_client::webhook::{EventData, EventType};
        let resolve = match event.event_type {
            EventType::IncidentAcknowledged => false,
            EventType::IncidentResolved => true,
            _ => return None,
        };
        let EventData::Incident(incident) = &event.data else {
            return None;
        };
        let seconds = (event.occurred_at - incident.created_at?).as_seconds_f64();
        let service = incident.service.as_ref().and_then(|s| s.summary.clone());
        Some(Self {
            resolve,
            service: service.unwrap_or_else(|| "unknown".to_owned()),
            urgency: match incident.urgency {
                Some(Urgency::High) => "high",
                Some(Urgency::Low) => "low",
                Some(Urgency::Unknown) | None => "unknown",
            },
            seconds: seconds.max(0.0),
        })
    }
}

/// All pdbridge metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    webhooks_received: Family<Labels, Counter>,
    webhooks_duplicate: Family<Labels, Counter>,
    webhooks_rejected: Family<Labels, Counter>,
    webhooks_unparsed: Counter,
    actions: Family<Labels, Counter>,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    api_calls: Family<Labels, Counter>,
    api_rate_limited: Family<Labels, Counter>,
    api_retries: Family<Labels, Counter>,
    unmapped_users: Counter,
    card_post_failures: Family<Labels, Counter>,
    sla_breaches: Family<Labels, Counter>,
    time_to_ack: Responses,
    time_to_resolve: Responses,
    /// The on-call series (`pdbridge_oncall_*`, `pdbridge_handoff_messages`).
    pub(crate) oncall: crate::oncall::OnCallMetrics,
    /// The Socket Mode series (`pdbridge_slack_sockets_connected`, `pdbridge_slack_socket_reconnects_total`).
    pub(crate) socket: crate::socket::SocketMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `pdbridge` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pdbridge");
        let webhooks_received = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks_received",
            "Inbound requests whose signature verified, by source",
            webhooks_received.clone(),
        );
        let webhooks_duplicate = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks_duplicate",
            "PagerDuty deliveries already in the inbox, by source",
            webhooks_duplicate.clone(),
        );
        let webhooks_rejected = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks_rejected",
            "Inbound requests refused before processing, by source and reason",
            webhooks_rejected.clone(),
        );
        let webhooks_unparsed = Counter::default();
        registry.register(
            "webhooks_unparsed",
            "Verified PagerDuty deliveries whose body did not parse, stored raw for operators",
            webhooks_unparsed.clone(),
        );
        let actions = Family::<Labels, Counter>::default();
        registry.register(
            "actions",
            "Slack-originated actions, by kind and result",
            actions.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Effects waiting in the outbox",
            outbox_depth.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest effect waiting in the outbox",
            outbox_oldest_age.clone(),
        );
        let api_calls = Family::<Labels, Counter>::default();
        registry.register(
            "api_calls",
            "Outbound API calls, by platform and outcome",
            api_calls.clone(),
        );
        let api_rate_limited = Family::<Labels, Counter>::default();
        registry.register(
            "api_rate_limited",
            "Outbound API calls answered 429 (retried by the client or not), by platform",
            api_rate_limited.clone(),
        );
        let api_retries = Family::<Labels, Counter>::default();
        registry.register(
            "api_retries",
            "Failed attempts of outbound API calls that the client retried, by platform and reason",
            api_retries.clone(),
        );
        let unmapped_users = Counter::default();
        registry.register(
            "unmapped_users",
            "Slack clicks refused because the user maps to no PagerDuty user",
            unmapped_users.clone(),
        );
        let card_post_failures = Family::<Labels, Counter>::default();
        registry.register(
            "card_post_failures",
            "Card posts Slack refused permanently, by card (full, then minimal)",
            card_post_failures.clone(),
        );
        let sla_breaches = Family::<Labels, Counter>::default();
        registry.register(
            "sla_breaches",
            "Incidents past their ack or resolve SLA, by kind (ack, resolve) and urgency",
            sla_breaches.clone(),
        );
        let time_to_ack = Responses::new_with_constructor(response_histogram);
        registry.register(
            "incident_time_to_ack_seconds",
            "PagerDuty's time from an incident's creation to its acknowledgement, by service and urgency",
            time_to_ack.clone(),
        );
        let time_to_resolve = Responses::new_with_constructor(response_histogram);
        registry.register(
            "incident_time_to_resolve_seconds",
            "PagerDuty's time from an incident's creation to its resolution, by service and urgency",
            time_to_resolve.clone(),
        );
        let oncall = crate::oncall::OnCallMetrics::register(&mut registry);
        let socket = crate::socket::SocketMetrics::register(&mut registry);
        // Create the main series at zero so dashboards and alerts see them before any traffic.
        for source in ["pagerduty", "slack_interaction", "slack_command"] {
            let _ = webhooks_received.get_or_create(&vec![("source", source.to_owned())]);
            let _ = webhooks_rejected.get_or_create(&vec![
                ("source", source.to_owned()),
                ("reason", "mismatch".to_owned()),
            ]);
        }
        let _ = webhooks_duplicate.get_or_create(&vec![("source", "pagerduty".to_owned())]);
        for platform in ["pagerduty", "slack"] {
            let _ = api_rate_limited.get_or_create(&vec![("platform", platform.to_owned())]);
        }
        for card in ["full", "minimal"] {
            let _ = card_post_failures.get_or_create(&vec![("card", card.to_owned())]);
        }
        Self {
            registry,
            webhooks_received,
            webhooks_duplicate,
            webhooks_rejected,
            webhooks_unparsed,
            actions,
            outbox_depth,
            outbox_oldest_age,
            api_calls,
            api_rate_limited,
            api_retries,
            unmapped_users,
            card_post_failures,
            sla_breaches,
            time_to_ack,
            time_to_resolve,
            oncall,
            socket,
        }
    }

    /// Counts a verified inbound request (`pagerduty`, `slack_interaction`, `slack_command`).
    pub fn webhook_received(&self, source: &'static str) {
        self.webhooks_received
            .get_or_create(&vec![("source", source.to_owned())])
            .inc();
    }

    /// Counts a duplicate delivery.
    pub fn webhook_duplicate(&self, source: &'static str) {
        self.webhooks_duplicate
            .get_or_create(&vec![("source", source.to_owned())])
            .inc();
    }

    /// Counts a refused request (`reason` such as `mismatch`, `too_large`).
    pub fn webhook_rejected(&self, source: &'static str, reason: &'static str) {
        self.webhooks_rejected
            .get_or_create(&vec![
                ("source", source.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// Counts a verified PagerDuty delivery stored as unparsed.
    pub fn webhook_unparsed(&self) {
        self.webhooks_unparsed.inc();
    }

    /// Counts a Slack-originated action outcome (`kind` such as `acknowledge`, `result` such as
    /// `accepted`, `unmapped`, `denied`, `succeeded`, `failed`).
    pub fn action(&self, kind: &'static str, result: &'static str) {
        self.actions
            .get_or_create(&vec![
                ("kind", kind.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    /// Sets the outbox depth and the age of its oldest entry.
    pub fn set_outbox(&self, depth: u64, oldest_age_secs: f64) {
        self.outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.outbox_oldest_age.set(oldest_age_secs);
    }

    /// Counts an outbound API call (`platform` is `pagerduty` or `slack`; `outcome` such as `ok`,
    /// `error`, `rate_limited`). A `rate_limited` outcome also counts as a 429.
    pub fn api_call(&self, platform: &'static str, outcome: &'static str) {
        self.api_calls
            .get_or_create(&vec![
                ("platform", platform.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
        if outcome == "rate_limited" {
            self.rate_limited(platform);
        }
    }

    /// Counts a failed attempt the `platform`'s client retries (`reason` such as
    /// `rate_limited`, `server_error`, `not_sent`, `maybe_sent`, `api_error`). A `rate_limited`
    /// retry also counts as a 429.
    pub fn api_retry(&self, platform: &'static str, reason: &'static str) {
        self.api_retries
            .get_or_create(&vec![
                ("platform", platform.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
        if reason == "rate_limited" {
            self.rate_limited(platform);
        }
    }

    /// Counts a 429 from `platform`.
    fn rate_limited(&self, platform: &'static str) {
        self.api_rate_limited
            .get_or_create(&vec![("platform", platform.to_owned())])
            .inc();
    }

    /// Counts a click from a Slack user who maps to no PagerDuty user.
    pub fn unmapped_user(&self) {
        self.unmapped_users.inc();
    }

    /// Counts a card post that failed permanently (`card` is `full`, after which the engine
    /// posts a minimal card, or `minimal`).
    pub fn card_post_failure(&self, card: &'static str) {
        self.card_post_failures
            .get_or_create(&vec![("card", card.to_owned())])
            .inc();
    }

    /// Observes a new delivery's time to acknowledge or resolve.
    pub fn response_time(&self, r: &ResponseTime) {
        let family = if r.resolve {
            &self.time_to_resolve
        } else {
            &self.time_to_ack
        };
        family
            .get_or_create(&vec![
                ("service", r.service.clone()),
                ("urgency", r.urgency.to_owned()),
            ])
            .observe(r.seconds);
    }

    /// Counts the SLA breaches the lines of a posted thread message report.
    pub fn sla_breaches(&self, lines: &[sync_core::TimelineLine]) {
        for (kind, urgency) in lines.iter().filter_map(|l| l.kind.sla_breach()) {
            let urgency = match urgency {
                Some(sync_core::Urgency::High) => "high",
                Some(sync_core::Urgency::Low) => "low",
                None => "unknown",
            };
            self.sla_breaches
                .get_or_create(&vec![
                    ("kind", kind.to_owned()),
                    ("urgency", urgency.to_owned()),
                ])
                .inc();
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The `reason` label of a PagerDuty attempt the client retries.
pub fn pd_retry_reason(err: &pd_client::Error) -> &'static str {
    match (err.status(), err.was_sent()) {
        (Some(429), _) => "rate_limited",
        (Some(status), _) if status >= 500 => "server_error",
        (_, Some(false)) => "not_sent",
        (_, None) => "maybe_sent",
        _ => "api_error",
    }
}

/// The `reason` label of a Slack attempt the client retries.
pub fn slack_retry_reason(err: &slack_client::Error) -> &'static str {
    match err {
        slack_client::Error::Api { status: 429, .. }
        | slack_client::Error::RateLimitedLocally { .. } => "rate_limited",
        slack_client::Error::Api { status, .. } if *status >= 500 => "server_error",
        slack_client::Error::NotSent { .. } => "not_sent",
        slack_client::Error::MaybeSent { .. } => "maybe_sent",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.webhook_received("pagerduty");
        m.webhook_rejected("slack_interaction", "mismatch");
        m.api_call("slack", "rate_limited");
        m.api_retry("slack", "rate_limited");
        m.api_retry("pagerduty", "server_error");
        m.set_outbox(3, 1.5);
        let text = m.render();
        assert!(
            text.contains("pdbridge_webhooks_received_total{source=\"pagerduty\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "pdbridge_webhooks_rejected_total{source=\"slack_interaction\",reason=\"mismatch\"} 1"
        ));
        assert!(text.contains("pdbridge_api_rate_limited_total{platform=\"slack\"} 2"));
        assert!(text.contains(
            "pdbridge_api_retries_total{platform=\"pagerduty\",reason=\"server_error\"} 1"
        ));
        assert!(text.contains("pdbridge_outbox_depth 3"));
        assert!(text.contains("pdbridge_unmapped_users_total 0"));
        assert!(text.contains("pdbridge_card_post_failures_total{card=\"minimal\"} 0"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn response_times_come_from_pagerdutys_times() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/pagerduty-webhooks/incident.reopened.json"
        );
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let event = |v: &serde_json::Value| {
            pd_client::webhook::WebhookEnvelope::from_slice(v.to_string().as_bytes())
                .unwrap()
                .event
        };
        assert_eq!(ResponseTime::of(&event(&v)), None, "a reopen is neither");
        // Created 13:37:07, acknowledged five minutes later (PagerDuty's clock).
        v["event"]["event_type"] = "incident.acknowledged".into();
        v["event"]["occurred_at"] = "2026-03-30T13:42:07Z".into();
        let ack = ResponseTime::of(&event(&v)).unwrap();
        v["event"]["event_type"] = "incident.resolved".into();
        v["event"]["occurred_at"] = "2026-03-30T14:37:07Z".into();
        let resolve = ResponseTime::of(&event(&v)).unwrap();
        let m = Metrics::new();
        m.response_time(&ack);
        m.response_time(&resolve);
        let text = m.render();
        for series in [
            "pdbridge_incident_time_to_ack_seconds_sum{service=\"Default Service\",urgency=\"low\"} 300.0",
            "pdbridge_incident_time_to_ack_seconds_bucket{le=\"120.0\",service=\"Default Service\",urgency=\"low\"} 0",
            "pdbridge_incident_time_to_ack_seconds_bucket{le=\"300.0\",service=\"Default Service\",urgency=\"low\"} 1",
            "pdbridge_incident_time_to_resolve_seconds_sum{service=\"Default Service\",urgency=\"low\"} 3600.0",
        ] {
            assert!(text.contains(series), "{series} in\n{text}");
        }
    }

    #[test]
    fn counts_each_breach_line_once_by_kind_and_urgency() {
        use sync_core::{LineKind, TimelineLine, Urgency};
        let line = |kind| TimelineLine {
            kind,
            actor: None,
            text: String::new(),
        };
        let ack = |reminder| LineKind::AckOverdue {
            reminder,
            channel_wide: false,
            urgency: Some(Urgency::High),
        };
        let m = Metrics::new();
        m.sla_breaches(&[
            line(ack(1)),
            line(ack(2)),
            line(LineKind::StillOnIt),
            line(LineKind::ResolveOverdue { urgency: None }),
        ]);
        let text = m.render();
        assert!(
            text.contains("pdbridge_sla_breaches_total{kind=\"ack\",urgency=\"high\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pdbridge_sla_breaches_total{kind=\"resolve\",urgency=\"unknown\"} 1")
        );
    }
}
