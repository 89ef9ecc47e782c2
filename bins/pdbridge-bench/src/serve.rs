//! The servers the bench runs in a child process (hidden `__serve-*` subcommands).
//!
//! The bare baseline is the least a hyper server can do with a request: read the whole body and
//! answer 200. It is built with the same hyper, runtime and connection builder as pdbridge, so the
//! ratio between the two measures what pdbridge adds (verification, the durable commit, routing).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::child::LISTENING;

/// Announces the bound address to the parent on stdout.
pub fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{LISTENING}{addr}")?;
    out.flush()?;
    Ok(())
}

/// Runs the bare baseline server on `listen` until killed.
pub async fn bare(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    announce(listener.local_addr()?)?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(pair) => pair,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let _ = req.into_body().collect().await;
                let resp = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                Ok::<_, Infallible>(resp)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs pdbridge from `config` exactly as `pdbridge serve` does, on the configured address, until
/// SIGTERM/SIGINT (graceful shutdown) or SIGKILL.
pub async fn pdbridge(config: &std::path::Path) -> anyhow::Result<()> {
    if std::env::var_os("PDBRIDGE_BENCH_SERVER_LOGS").is_some() {
        pdbridge::logging::init(pdbridge::config::LogFormat::Pretty);
    }
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let config = pdbridge::config::Config::load(Some(config), &env)
        .map_err(|e| anyhow::anyhow!("bad config: {e}"))?;
    let listener = TcpListener::bind(config.server.listen).await?;
    let running = pdbridge::app::start(config, listener, pdbridge::app::Options::default()).await?;
    announce(running.addr)?;
    pdbridge::server::shutdown_signal().await;
    running.shutdown().await
}
