//! The read-only context every stage shares: configuration, store, clients, identity, metrics,
//! clock and the loops' wake-ups.

use std::sync::Arc;

use ids::Timestamp;
use pd_client::PdClient;
use slack_client::SlackClient;
use store::Store;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::Unavailable;
use crate::metrics::Metrics;

/// What the request handlers, the writer and the background loops share. Nothing in it changes
/// after start but through its own interior (the store, the identity cache, the metrics).
pub struct Context {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<Store>,
    pub(crate) pd: PdClient,
    pub(crate) slack: SlackClient,
    pub(crate) identity: Arc<crate::identity::Identity>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Clock,
    pub(crate) inbox_wake: Notify,
    pub(crate) dispatch_wake: Notify,
    pub(crate) timer_wake: Notify,
    pub(crate) oncall: crate::oncall::OnCall,
    /// Wakes the declare loop when a declaration was stored.
    pub(crate) declare_wake: Notify,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pd", &self.pd)
            .field("slack", &self.slack)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Runs store work on the blocking pool, never on an async worker.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Unavailable(format!("store task failed: {e}")))?
            .map_err(|e| Unavailable(format!("store: {e}")))
    }
}
