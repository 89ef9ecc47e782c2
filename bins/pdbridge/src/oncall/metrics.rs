//! The `pdbridge_oncall_*` series.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The on-call metrics, registered in the bridge's registry.
#[derive(Debug, Default)]
pub struct OnCallMetrics {
    reads: Family<Labels, Counter>,
    age: Gauge<f64, AtomicU64>,
    unmapped: Gauge,
    group_updates: Family<Labels, Counter>,
    handoffs: Family<Labels, Counter>,
}

impl OnCallMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "oncall_reads",
            "Reads of PagerDuty's on-call windows (GET /oncalls), by outcome",
            m.reads.clone(),
        );
        registry.register(
            "oncall_cache_age_seconds",
            "Age of the on-call windows /pd oncall answers from",
            m.age.clone(),
        );
        registry.register(
            "oncall_unmapped_users",
            "People on call for a configured user group who map to no Slack user",
            m.unmapped.clone(),
        );
        registry.register(
            "oncall_group_updates",
            "usergroups.users.update calls, by outcome (ok, refused, error)",
            m.group_updates.clone(),
        );
        registry.register(
            "handoff_messages",
            "Shift handoff messages, by outcome (posted, found, error)",
            m.handoffs.clone(),
        );
        for outcome in ["ok", "error"] {
            let _ = m
                .reads
                .get_or_create(&vec![("outcome", outcome.to_owned())]);
        }
        m
    }

    pub(crate) fn read(&self, outcome: &'static str) {
        self.reads
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub(crate) fn set_age(&self, seconds: Option<f64>) {
        self.age.set(seconds.unwrap_or(0.0));
    }

    pub(crate) fn set_unmapped(&self, count: usize) {
        self.unmapped.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn group_update(&self, outcome: &'static str) {
        self.group_updates
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub(crate) fn handoff(&self, outcome: &'static str) {
        self.handoffs
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }
}
