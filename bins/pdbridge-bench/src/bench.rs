//! The benchmarks: each starts its servers, drives them and fills a [`Report`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::child::{Pinning, ServerProcess};
use crate::harness::{Env, EnvOptions};
use crate::load::{self, Source, Template};
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

/// Signed 2 KiB webhooks, unique per sequence number in event id, incident id and
/// `X-Webhook-Id` (`E<run><seq>`, `P<run><seq>`, `wh-<run>-<seq>`, the sequence number in
/// [`load::SEQ_DIGITS`] digits), as a template the load drivers fill.
pub fn unique_webhooks(host: &str, run: &str) -> anyhow::Result<Arc<Template>> {
    let mark = load::SEQ_MARK;
    let event_id = format!("E{run}{mark}");
    let incident = format!("P{run}{mark}");
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
    let webhook_id = format!("wh-{run}-{mark}");
    Ok(Arc::new(payloads::pd_template(
        host,
        &body,
        Some(&webhook_id),
        payloads::PD_SECRET,
    )?))
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

/// Closed loop of signed webhooks against `server`: warm-up, then the measured run, over which
/// the server's and the bench's CPU time are sampled. Each webhook is unique unless `repeat`
/// (for the bare server, which does the same work for any request).
pub async fn ingest_closed(
    server: &ServerProcess,
    run: &str,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    repeat: bool,
) -> anyhow::Result<Ingest> {
    let addr = server.addr;
    let feed = load::Feed {
        template: unique_webhooks(&addr.to_string(), run)?,
        repeat,
    };
    let warm = if warmup.is_zero() {
        None
    } else {
        Some(load::closed_loop(addr, conns, warmup, 0, feed.clone(), None).await?)
    };
    let first = warm.as_ref().map_or(0, |w| w.next_seq);
    let measured =
        load::closed_loop(addr, conns, duration, first, feed, Some(server.pid())).await?;
    Ok(Ingest { warm, measured })
}

/// A warm-up and a measured closed loop.
#[derive(Debug)]
pub struct Ingest {
    /// The unmeasured warm-up, if any.
    pub warm: Option<load::LoadResult>,
    /// The measured run.
    pub measured: load::LoadResult,
}

impl Ingest {
    /// Answers with `status` over both runs.
    pub fn with_status(&self, status: u16) -> u64 {
        let of = |r: &load::LoadResult| r.statuses.get(&status).copied().unwrap_or(0);
        self.warm.as_ref().map_or(0, of) + of(&self.measured)
    }
}

/// Measures the bare server closed loop and adds it to `report` as a baseline that must be
/// server-bound (see [`Report::baseline`]); returns the run and whether it is valid.
pub async fn bare_closed(
    server: &ServerProcess,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    name: &str,
    report: &mut Report,
) -> anyhow::Result<(load::LoadResult, bool)> {
    let closed = ingest_closed(server, "B", conns, warmup, duration, true)
        .await?
        .measured;
    let valid = report.baseline(Run::closed(name, conns, &closed));
    Ok((closed, valid))
}

/// `baseline`: the bare hyper server alone, closed loop and open loop.
pub async fn baseline(
    args: &BaselineArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = spawn_bare(pinning)?;
    let (closed, _) = bare_closed(
        &server,
        args.conns,
        secs(args.warmup),
        secs(args.duration),
        "ingest/bare-hyper",
        report,
    )
    .await?;
    for &rate in &args.rates {
        let source = Source::Template(unique_webhooks(&server.addr.to_string(), "O")?);
        let open = load::open_loop(
            server.addr,
            rate,
            secs(args.open_duration),
            args.open_conns,
            0,
            source,
            Some(server.pid()),
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

/// Options of `ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Seconds of measured closed-loop load per server.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of unmeasured warm-up per server.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Closed-loop connections.
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
}

/// Samples a process's memory and a WAL's size in the background until dropped.
pub struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<SamplerPeaks>>,
}

/// The largest values a [`Sampler`] saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SamplerPeaks {
    /// Largest `VmRSS`, KiB.
    pub max_rss_kib: u64,
    /// Largest WAL size, bytes.
    pub max_wal_bytes: u64,
    /// Samples taken.
    pub samples: u64,
}

impl Sampler {
    /// Starts sampling `pid` (and `db`'s WAL, when given) every `every`.
    pub fn start(pid: u32, db: Option<std::path::PathBuf>, every: Duration) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut peaks = SamplerPeaks::default();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(m) = crate::child::Memory::of(pid) {
                    peaks.max_rss_kib = peaks.max_rss_kib.max(m.rss_kib);
                }
                if let Some(db) = &db {
                    peaks.max_wal_bytes = peaks.max_wal_bytes.max(crate::child::wal_size(db));
                }
                peaks.samples += 1;
                std::thread::sleep(every);
            }
            peaks
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and returns the peaks.
    pub fn finish(mut self) -> SamplerPeaks {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

/// `ingest`: signed 2 KiB webhooks with unique ids, closed loop, pdbridge against the bare
/// baseline in the same run.
pub async fn ingest(
    args: &IngestArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let warmup = secs(args.warmup);
    let duration = secs(args.duration);
    let bare = spawn_bare(pinning)?;
    let (base, base_valid) = bare_closed(
        &bare,
        args.conns,
        warmup,
        duration,
        "ingest/bare-hyper",
        report,
    )
    .await?;
    bare.kill9()?;

    let mut env = Env::new(EnvOptions {
        slack_limits: false,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    env.start()?;
    let server = env.server.as_ref().context("server")?;
    // Let the startup settle before reading idle memory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(m) = server.memory() {
        report.figure("memory/pdbridge/idle_rss_kib", m.rss_kib);
    }
    let sampler = Sampler::start(
        server.pid(),
        Some(env.db.clone()),
        Duration::from_millis(50),
    );
    let both = ingest_closed(server, "I", args.conns, warmup, duration, false).await?;
    let result = &both.measured;
    let peaks = sampler.finish();
    report
        .runs
        .push(Run::closed("ingest/pdbridge", args.conns, result));
    report.figure("memory/pdbridge/ingest_peak_rss_kib", peaks.max_rss_kib);
    report.figure("wal/pdbridge/ingest_peak_bytes", peaks.max_wal_bytes);
    report.figure("ingest/baseline_server_bound", base_valid);
    if base_valid && base.rate() > 0.0 {
        let ratio = result.rate() / base.rate();
        report.figure(
            "ingest/ratio_pdbridge_to_bare",
            (ratio * 1000.0).round() / 1000.0,
        );
    } else {
        // A generator-bound denominator makes any ratio meaningless: none is reported.
        report.figure("ingest/ratio_pdbridge_to_bare", serde_json::Value::Null);
        report.figure(
            "ingest/ratio_withheld",
            "the bare baseline was not server-bound in this run (see its validity line)",
        );
    }
    report.figure("ingest/target_ratio", 0.30);

    // Durability: every 202 is a committed row.
    let accepted = both.with_status(202);
    let committed = env.table_counts()?.get("pd_inbox").copied().unwrap_or(0);
    report.check(
        "ingest: every 202 was committed to the inbox",
        u64::try_from(committed).unwrap_or(0) >= accepted,
        format!("{accepted} answered 202 (incl. warm-up), {committed} inbox rows"),
    );
    let non_2xx: u64 = result
        .statuses
        .iter()
        .filter(|(c, _)| !(200..300).contains(*c))
        .map(|(_, n)| n)
        .sum();
    report.check(
        "ingest: pdbridge answered 2xx to every signed webhook",
        non_2xx == 0 && result.errors == 0 && result.answered > 0,
        format!(
            "{} answered, {non_2xx} non-2xx, {} transport errors",
            result.answered, result.errors
        ),
    );
    env.kill9()?;
    Ok(())
}

/// `bad-input`: the bad-input table against a fresh pdbridge.
pub async fn bad_input(pinning: Pinning, report: &mut Report) -> anyhow::Result<()> {
    let mut env = Env::new(EnvOptions {
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    env.start()?;
    crate::badinput::run(&env, report).await?;
    env.kill9()?;
    Ok(())
}
