//! The bridge: the read-only [`Context`] every stage shares and the [`Writer`] that owns the
//! engine, built together at start. Requests reach it through [`crate::intake`] (the HTTP
//! handlers), the background loops ([`crate::runtime`]) through the same `Arc<Bridge>`; each
//! reads the context and changes state only through the writer's API.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ids::SlackTeamId;
use pd_client::PdClient;
use slack_client::SlackClient;
use store::Store;
use sync_core::{Effect, Engine, EngineConfig, Input, Timestamp};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::context::Context;
use crate::metrics::Metrics;
use crate::writer::Writer;

pub use crate::writer::{Extra, GROUP_COMMIT_MAX, Limits};

/// The bridge. Build with [`Bridge::new`]; share as `Arc<Bridge>`.
pub struct Bridge {
    /// What every stage reads.
    pub(crate) ctx: Arc<Context>,
    writer: Arc<Writer>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("pd", &self.ctx.pd)
            .field("slack", &self.ctx.slack)
            .finish_non_exhaustive()
    }
}

/// Everything [`Bridge::new`] needs.
#[derive(Debug)]
pub struct BridgeParts {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The opened store.
    pub store: Arc<Store>,
    /// The PagerDuty client.
    pub pd: PdClient,
    /// The Slack client.
    pub slack: SlackClient,
    /// The Slack workspace the bot lives in (`slack.team_id` or `auth.test`); `None` when
    /// `auth.test` failed at start, in which case identity asks again before mapping anyone.
    pub workspace: Option<SlackTeamId>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The engine's timing settings.
    pub engine: EngineConfig,
    /// The bounds of queues and in-memory state.
    pub limits: Limits,
}

impl Bridge {
    /// Builds the bridge, restoring the engine from the store and releasing stale claims.
    pub fn new(parts: BridgeParts, clock: Clock) -> anyhow::Result<Arc<Self>> {
        parts
            .store
            .write(|tx| tx.release_claims().map(|_| ()))
            .context("releasing outbox claims")?;
        let identity = Arc::new(crate::identity::Identity::new(
            &parts.config,
            parts.pd.clone(),
            parts.slack.clone(),
            parts.workspace,
            Arc::clone(&parts.store),
        ));
        let ctx = Arc::new(Context {
            config: parts.config,
            store: parts.store,
            pd: parts.pd,
            slack: parts.slack,
            identity,
            metrics: parts.metrics,
            clock,
            inbox_wake: Notify::new(),
            dispatch_wake: Notify::new(),
            timer_wake: Notify::new(),
            oncall: crate::oncall::OnCall::default(),
            declare_wake: Notify::new(),
        });
        let writer = Writer::start(Arc::clone(&ctx), parts.engine, parts.limits)?;
        let bridge = Arc::new(Self { ctx, writer });
        let unloaded = bridge.unload_idle_resolved();
        tracing::debug!(unloaded, "resolved idle incidents left on disk");
        Ok(bridge)
    }

    /// The writer, for the request handlers' inbox records.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The store (for read-only views such as `pdbridge status`, the demo and tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.ctx.store
    }

    /// The on-call cache and its loop's state.
    pub fn oncall(&self) -> &crate::oncall::OnCall {
        &self.ctx.oncall
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.ctx.now()
    }

    /// See [`Writer::with_engine`].
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        self.writer.with_engine(f)
    }

    /// See [`Writer::engine_config`].
    pub fn engine_config(&self) -> &EngineConfig {
        self.writer.engine_config()
    }

    /// See [`Writer::next_timer`].
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.writer.next_timer()
    }

    /// See [`Writer::commit_groups`].
    pub fn commit_groups(&self) -> u64 {
        self.writer.commit_groups()
    }

    /// See [`Writer::is_quiet`].
    pub fn is_quiet(&self, horizon: Duration) -> bool {
        self.writer.is_quiet(horizon)
    }

    /// See [`Writer::apply`].
    pub async fn apply<F>(&self, input: Input, extra: F) -> anyhow::Result<Vec<Effect>>
    where
        F: Fn(&mut store::Tx<'_>, Timestamp) -> Result<(), store::Error> + Send + 'static,
    {
        self.writer.apply(input, extra).await
    }

    /// See [`Writer::apply_all`].
    pub async fn apply_all(&self, inputs: Vec<(Input, Extra)>) -> Vec<anyhow::Result<Vec<Effect>>> {
        self.writer.apply_all(inputs).await
    }

    /// See [`Writer::write_queue_room`].
    pub fn write_queue_room(&self) -> usize {
        self.writer.write_queue_room()
    }

    /// See [`Writer::unload_idle_over_limit`].
    pub fn unload_idle_over_limit(&self) -> usize {
        self.writer.unload_idle_over_limit()
    }

    /// See [`Writer::unload_idle_resolved`].
    pub fn unload_idle_resolved(&self) -> usize {
        self.writer.unload_idle_resolved()
    }
}
