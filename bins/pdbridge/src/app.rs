//! Assembling and running the whole server: store, clients, bridge, loops and HTTP.
//!
//! [`start`] builds everything from a [`Config`] on an already-bound listener and returns a
//! [`Running`] handle; [`Running::shutdown`] stops accepting, finishes in-flight requests, gives
//! the outbox a bounded grace period to drain, then stops the loops. [`run`] is what
//! `pdbridge serve` calls: bind, start, wait for SIGTERM/SIGINT, shut down; on SIGHUP it
//! re-reads the configuration and applies its `[[identity]]` table ([`reload_identity`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ids::SlackTeamId;
use pd_client::PdClient;
use signing::{PagerDutySecret, SlackSigningSecret};
use slack_client::SlackClient;
use store::{Store, StoreOptions};
use sync_core::EngineConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bridge::{Bridge, BridgeParts, Limits};
use crate::clients::{self, HomeError};
use crate::clock::{self, Clock};
use crate::config::{Config, ConfigError};
use crate::http::{App, AppState, Listener, app};
use crate::metrics::Metrics;
use crate::{runtime, server};

/// How long in-flight HTTP requests get to finish at shutdown.
const HTTP_GRACE: Duration = Duration::from_secs(10);
/// How long the outbox gets to drain at shutdown.
const OUTBOX_GRACE: Duration = Duration::from_secs(10);
/// The most threads the runtime keeps for blocking work. Store work runs there on two
/// connections behind locks, so more threads would only wait on them, each with its own stack
/// (tokio's default of 512 let ~45 exist under the ingest bench).
pub const MAX_BLOCKING_THREADS: usize = 8;

/// Knobs the tests and the demo turn; production uses [`Options::default`].
#[derive(Clone)]
pub struct Options {
    /// The engine's timing settings.
    pub engine: EngineConfig,
    /// The clock of the bridge and the HTTP layer.
    pub clock: Clock,
    /// How long the outbox may take to drain at shutdown.
    pub outbox_grace: Duration,
    /// The bounds of the bridge's queues and in-memory state.
    pub limits: Limits,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("engine", &self.engine)
            .field("outbox_grace", &self.outbox_grace)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            clock: clock::system(),
            outbox_grace: OUTBOX_GRACE,
            limits: Limits::default(),
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The address of the separate `/metrics` listener (`server.metrics_listen`), when set.
    pub metrics_addr: Option<SocketAddr>,
    /// The bridge (for tests and the demo to inspect).
    pub bridge: Arc<Bridge>,
    http_stop: watch::Sender<bool>,
    loops_stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    metrics_http: Option<JoinHandle<std::io::Result<()>>>,
    loops: Vec<JoinHandle<()>>,
    outbox_grace: Duration,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, drains the outbox for a bounded time and
    /// stops the background loops.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.http_stop.send(true);
        self.http.await.context("joining the HTTP server")??;
        if let Some(metrics) = self.metrics_http {
            metrics.await.context("joining the metrics listener")??;
        }
        let deadline = clock::tokio_instant() + self.outbox_grace;
        loop {
            let now = self.bridge.now();
            let store = Arc::clone(&self.bridge.ctx.store);
            let depth =
                tokio::task::spawn_blocking(move || store.read(|tx| tx.outbox_backlog(now)))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map_or(0, |s| s.depth);
            if depth == 0 || clock::tokio_instant() >= deadline {
                if depth > 0 {
                    tracing::warn!(
                        depth,
                        "outbox not drained at shutdown; it resumes at next start"
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.loops_stop.send(true);
        for task in self.loops {
            let _ = task.await;
        }
        Ok(())
    }

    /// Stops without draining the outbox (a crash stand-in for restart tests).
    pub async fn abort(self) {
        let _ = self.http_stop.send(true);
        let _ = self.loops_stop.send(true);
        self.http.abort();
        let _ = self.http.await;
        if let Some(metrics) = self.metrics_http {
            metrics.abort();
            let _ = metrics.await;
        }
        for task in self.loops {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Opens the store, builds the clients and the bridge, and returns the HTTP service over it.
/// No loop runs and nothing listens: [`start`] does that; tests drive the service with
/// `tower::ServiceExt::oneshot`.
pub async fn build(
    config: Arc<Config>,
    options: &Options,
) -> anyhow::Result<(App<Bridge>, Arc<Bridge>)> {
    let store_options = StoreOptions {
        claim_lease: Duration::from_secs(300),
        // The writer checkpoints after answering each group, never inside a commit.
        deferred_checkpoints: true,
        ..StoreOptions::default()
    };
    let store = Arc::new(
        Store::open_with(&config.server.database, &store_options).with_context(|| {
            format!("opening the database {}", config.server.database.display())
        })?,
    );
    let metrics = Arc::new(Metrics::new());
    let pd = PdClient::new(clients::pd_config_with_metrics(&config, &metrics))
        .context("building the PagerDuty client")?;

    // The home workspace: `slack.team_id`, else the bot's own from `auth.test`. When Slack does
    // not answer, the server still starts (PagerDuty's deliveries must keep being answered) and
    // identity asks again at the next click, refusing clicks until it knows.
    let home = match clients::home_workspace(&config, Duration::from_secs(5)).await {
        Ok(team) => Some(team),
        Err(HomeError::Client(err)) => {
            return Err(anyhow::Error::new(err).context("building the Slack client"));
        }
        Err(HomeError::AuthTest(err)) => {
            tracing::error!(%err, "auth.test failed: clicks are refused until Slack names the bot's workspace; set SLACK_TEAM_ID to skip it");
            None
        }
        Err(HomeError::TimedOut) => {
            tracing::error!(
                "auth.test timed out: clicks are refused until Slack names the bot's workspace; set SLACK_TEAM_ID to skip it"
            );
            None
        }
    };
    let workspace = home.clone().unwrap_or_else(|| SlackTeamId::new("unknown"));
    let slack = SlackClient::new(clients::slack_config_with_metrics(
        &config,
        workspace.clone(),
        &metrics,
    ))
    .context("building the Slack client")?;

    let bridge = Bridge::new(
        BridgeParts {
            config: Arc::clone(&config),
            store,
            pd,
            slack,
            workspace: home,
            metrics: Arc::clone(&metrics),
            engine: sync_core::EngineConfig {
                sla: config.sla.clone(),
                ..options.engine.clone()
            },
            limits: options.limits.clone(),
        },
        options.clock.clone(),
    )?;

    let service = app(AppState {
        bridge: Arc::clone(&bridge),
        slack_secret: SlackSigningSecret::new(config.slack.signing_secret.expose()),
        pagerduty_secrets: config
            .pagerduty
            .webhook_secrets
            .iter()
            .map(|s| PagerDutySecret::new(s.expose()))
            .collect(),
        metrics,
        clock: options.clock.clone(),
        body_read_timeout: config.server.body_read_timeout,
    });
    Ok((service, bridge))
}

/// Builds everything with [`build`] and starts the loops and serving on `listener`.
pub async fn start(
    config: Config,
    listener: TcpListener,
    options: Options,
) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let (service, bridge) = build(Arc::clone(&config), &options).await?;
    let metrics_listener = match config.server.metrics_listen {
        None => None,
        Some(at) => {
            let bound = TcpListener::bind(at)
                .await
                .with_context(|| format!("binding server.metrics_listen {at}"))?;
            let addr = bound
                .local_addr()
                .context("reading the metrics listen address")?;
            Some((bound, addr))
        }
    };
    let (loops_stop, loops_rx) = watch::channel(false);
    let mut loops = vec![
        tokio::spawn(runtime::inbox_loop(Arc::clone(&bridge), loops_rx.clone())),
        tokio::spawn(runtime::dispatch_loop(
            Arc::clone(&bridge),
            loops_rx.clone(),
        )),
        tokio::spawn(runtime::timer_loop(Arc::clone(&bridge), loops_rx.clone())),
        tokio::spawn(crate::oncall::oncall_loop(
            Arc::clone(&bridge),
            loops_rx.clone(),
        )),
        tokio::spawn(crate::declare::declare_loop(
            Arc::clone(&bridge),
            loops_rx.clone(),
        )),
        tokio::spawn(runtime::reconcile_loop(
            Arc::clone(&bridge),
            config.server.reconcile_interval,
            loops_rx.clone(),
        )),
    ];
    if config.slack.mode == crate::config::SlackMode::Socket {
        loops.push(tokio::spawn(crate::socket::socket_loop(
            Arc::clone(&bridge),
            loops_rx.clone(),
        )));
    }
    if config.pagerduty.poll.mode.polls() {
        loops.push(tokio::spawn(crate::poll::poll_loop(
            Arc::clone(&bridge),
            loops_rx,
        )));
    }
    let (http_stop, http_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    let limits = server::ConnLimits {
        header_read_timeout: config.server.header_read_timeout,
        max_connections: config.server.max_connections,
    };
    // With a separate metrics listener, the main one no longer serves /metrics.
    let (public, metrics_http, metrics_addr) = match metrics_listener {
        None => (service, None, None),
        Some((metrics_listener, metrics_addr)) => {
            let task = tokio::spawn(server::serve(
                metrics_listener,
                service.for_listener(Listener::Internal),
                stopped(http_rx.clone()),
                HTTP_GRACE,
                limits,
            ));
            tracing::info!(addr = %metrics_addr, "pdbridge metrics listening");
            (
                service.for_listener(Listener::Public),
                Some(task),
                Some(metrics_addr),
            )
        }
    };
    let http = tokio::spawn(server::serve(
        listener,
        public,
        stopped(http_rx),
        HTTP_GRACE,
        limits,
    ));
    tracing::info!(%addr, "pdbridge listening");
    Ok(Running {
        addr,
        metrics_addr,
        bridge,
        http_stop,
        loops_stop,
        http,
        metrics_http,
        loops,
        outbox_grace: options.outbox_grace,
    })
}

/// The multi-threaded runtime `pdbridge serve` runs on: all drivers enabled, and at most
/// [`MAX_BLOCKING_THREADS`] blocking threads. No blocking task waits for another one, so a
/// bounded pool only queues work.
///
/// # Errors
///
/// When the operating system refuses the runtime's threads or its I/O driver.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

/// `pdbridge serve`: binds the configured address, serves until SIGTERM/SIGINT, shuts down.
/// Each SIGHUP reloads `[[identity]]` from `config_file` and the environment.
pub async fn run(config: Config, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|err| tracing::error!(%err, "cannot listen for SIGHUP; restart to apply [[identity]] edits"))
        .ok();
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let running = start(config, listener, Options::default()).await?;
    #[cfg(unix)]
    let reloader = hangups.map(|mut hangups| {
        let bridge = Arc::clone(&running.bridge);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let env: BTreeMap<String, String> = std::env::vars().collect();
                match reload_identity(&bridge, config_file.as_deref(), &env).await {
                    Ok(n) => tracing::info!(
                        overrides = n,
                        "SIGHUP: [[identity]] reloaded; other settings apply at the next restart"
                    ),
                    Err(err) => tracing::error!(
                        %err,
                        "SIGHUP: configuration refused; the previous [[identity]] table stays"
                    ),
                }
            }
        })
    });
    server::shutdown_signal().await;
    #[cfg(unix)]
    if let Some(task) = reloader {
        task.abort();
    }
    running.shutdown().await
}

/// Loads the configuration as at start (file, then environment; every key validated) and
/// replaces the bridge's `[[identity]]` overrides with its table, returning how many entries it
/// has. Other settings are not applied. On error nothing changes.
pub async fn reload_identity(
    bridge: &Bridge,
    config_file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<usize, ConfigError> {
    let config = Config::load(config_file, env)?;
    let entries = config.identity.len();
    bridge.ctx.identity.set_overrides(config.identity).await;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::{MAX_BLOCKING_THREADS, runtime};

    #[test]
    fn runtime_runs_at_most_max_blocking_threads_at_once() {
        let rt = runtime().expect("runtime");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = rt.block_on(async {
            let tasks: Vec<_> = (0..MAX_BLOCKING_THREADS * 3)
                .map(|_| {
                    let running = Arc::clone(&running);
                    let most = Arc::clone(&most);
                    tokio::task::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let mut done = 0;
            for task in tasks {
                task.await.expect("blocking task");
                done += 1;
            }
            done
        });
        assert_eq!(done, MAX_BLOCKING_THREADS * 3, "every queued task ran");
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= MAX_BLOCKING_THREADS,
            "{most} blocking tasks ran at once, more than {MAX_BLOCKING_THREADS}"
        );
        assert!(most > 1, "the pool ran blocking tasks in parallel ({most})");
    }
}
