//! Runs an [`App`] on a TCP listener with hyper (HTTP/1.1) and shuts down gracefully.
//!
//! [`serve`] accepts connections until `shutdown` completes, then stops accepting, asks every open
//! connection to finish its in-flight request, and waits up to `grace` for them to close.
//!
//! Slow or stalled clients are cut before any signature check ([`ConnLimits`]): at most
//! `max_connections` are open at once (beyond that, new ones wait in the listen backlog), and a
//! connection that has not sent a complete request head within `header_read_timeout` of opening,
//! or of its previous response (an idle keep-alive connection), is closed by hyper's own timer.
//! The body deadline is the HTTP layer's ([`crate::http::AppState::body_read_timeout`]).
//! Only HTTP/1.1 is served: Slack and PagerDuty reach pdbridge through a proxy that speaks
//! HTTP/1.1, and hyper's protocol sniffing for cleartext HTTP/2 would wait without a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::Service;

use crate::http::{App, Handler};

/// The default [`ConnLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`ConnLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Per-listener connection bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// How long a connection may take to send a complete request head, counted from its
    /// opening or from its previous response; it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// The most connections open at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains connections for at most
/// `grace`.
pub async fn serve<B: Handler>(
    listener: TcpListener,
    app: App<B>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
    limits: ConnLimits,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // A slot is taken before accepting, so at the limit new connections wait in the backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Accept errors (EMFILE and the like) are transient; back off briefly.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // No part of an answer waits for the peer's delayed ACK (Nagle's algorithm;
                // up to 40 ms on Linux).
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %err, "cannot set TCP_NODELAY");
                }
                let app = app.clone();
                let mut stop = stop_rx.clone();
                let builder = builder.clone();
                connections.spawn(async move {
                    // The slot is released when the connection ends.
                    let _slot = slot;
                    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let mut app = app.clone();
                        app.call(req)
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    loop {
                        tokio::select! {
                            res = conn.as_mut() => {
                                if let Err(err) = res {
                                    tracing::debug!(%peer, %err, "connection ended with an error");
                                }
                                break;
                            }
                            changed = stop.changed() => {
                                conn.as_mut().graceful_shutdown();
                                if changed.is_err() {
                                    // The sender is gone; finish the connection without watching.
                                    let _ = conn.as_mut().await;
                                    break;
                                }
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "grace period over; closing remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
