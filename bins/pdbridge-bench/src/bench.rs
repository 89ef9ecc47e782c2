//! The benchmarks: each starts its servers, drives them and fills a [`Report`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::child::{Pinning, ServerProcess};
use crate::load::{self, MakeRequest};
use crate::payloads::{self, IncidentEvent};
use crate::report::{Report, Run};

/// How long a child server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Size of the webhook bodies the ingest and latency benches send.
pub const WEBHOOK_BYTES: usize = 2048;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Options of `baseline`.
#[derive(Debug, Clone, clap::Args)]
pub struct BaselineArgs {
    /// Seconds of measured closed-loop load.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of unmeasured warm-up before each closed loop.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Closed-loop connections.
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    /// Open-loop rates in requests per second (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    pub rates: Vec<u32>,
    /// Seconds of each open-loop run.
    #[arg(long, default_value_t = 5.0)]
    pub open_duration: f64,
    /// Maximum concurrent requests of an open loop.
    #[arg(long, default_value_t = 64)]
    pub open_conns: usize,
}

/// A signed 2 KiB webhook for sequence number `seq`, unique in event id and `X-Webhook-Id`.
pub fn unique_webhook(
    host: &str,
    run: &str,
    seq: u64,
) -> http::Request<http_body_util::Full<Bytes>> {
    let event_id = format!("E{run}{seq:010}");
    let incident = format!("P{run}{seq:010}");
    let body = payloads::webhook_body(
        &IncidentEvent {
            event_id: &event_id,
            event_type: "incident.triggered",
            incident: &incident,
            status: "triggered",
            service: "PBENCHSVC",
            agent: "PBENCHUSER",
            occurred_at: "2026-01-01T00:00:00.000Z",
            title: "Bench incident",
        },
        WEBHOOK_BYTES,
    );
    let webhook_id = format!("wh-{run}-{seq}");
    payloads::pd_request(host, body, Some(&webhook_id), payloads::PD_SECRET)
}

/// Starts the bare hyper server as a child.
pub fn spawn_bare(pinning: Pinning) -> anyhow::Result<ServerProcess> {
    ServerProcess::spawn(
        &[
            "__serve-bare".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ],
        pinning,
        START_TIMEOUT,
    )
}

/// Closed loop of unique signed webhooks against `server`: warm-up, then the measured run.
pub async fn ingest_closed(
    server: &ServerProcess,
    run: &str,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<load::LoadResult> {
    let addr = server.addr;
    let host = addr.to_string();
    let run_id = run.to_owned();
    let make: MakeRequest = Arc::new(move |seq| unique_webhook(&host, &run_id, seq));
    if !warmup.is_zero() {
        load::closed_loop(addr, conns, warmup, 0, Arc::clone(&make), None).await?;
    }
    load::closed_loop(addr, conns, duration, 1 << 40, make, None).await
}

/// `baseline`: the bare hyper server alone, closed loop and open loop.
pub async fn baseline(
    args: &BaselineArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = spawn_bare(pinning)?;
    let closed = ingest_closed(
        &server,
        "B",
        args.conns,
        secs(args.warmup),
        secs(args.duration),
    )
    .await?;
    report
        .runs
        .push(Run::closed("ingest/bare-hyper", args.conns, &closed));
    for &rate in &args.rates {
        let host = server.addr.to_string();
        let make: MakeRequest = Arc::new(move |seq| unique_webhook(&host, "O", seq));
        let open = load::open_loop(
            server.addr,
            rate,
            secs(args.open_duration),
            args.open_conns,
            0,
            make,
            None,
        )
        .await?;
        report.runs.push(Run::open(
            format!("ack/bare-hyper@{rate}"),
            args.open_conns,
            rate,
            &open,
        ));
        let expected = (f64::from(rate) * args.open_duration).round() as u64;
        report.check(
            format!("baseline open loop @{rate} answered every request"),
            open.successes() == expected,
            format!("{} of {expected} answered 2xx", open.successes()),
        );
    }
    if let Some(mem) = server.memory() {
        report.figure("memory/bare-hyper/after_load", mem);
    }
    report.check(
        "baseline closed loop answered",
        closed.successes() > 0 && closed.errors == 0,
        format!(
            "{} answered 2xx, {} errors",
            closed.successes(),
            closed.errors
        ),
    );
    server.kill9()?;
    Ok(())
}
