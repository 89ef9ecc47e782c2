//! Load generation: a closed-loop driver and an open-loop driver, both over keep-alive HTTP/1.1.
//!
//! The closed loop keeps `connections` requests in flight, one per connection, each sent as soon
//! as the previous answer arrived: it measures throughput. The open loop sends at a fixed rate on
//! a precomputed schedule and records every latency from the *scheduled* send time, so a stalled
//! server is charged for the requests it delayed (no coordinated omission): it measures latency.
//! Latencies are recorded in microseconds in HDR histograms, one per worker, merged at the end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

/// Builds the request with the given sequence number (unique within one run).
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Called with the sequence number, the status and the body of every answered request.
pub type OnResponse = Arc<dyn Fn(u64, u16, &Bytes) + Send + Sync>;

/// How long one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How late (past the end of its schedule) an open loop may still send a queued request.
pub const LATE_GRACE: Duration = Duration::from_secs(5);

/// The largest latency a histogram records (60 s, in microseconds); longer ones are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// A new, empty latency histogram (1 µs to 60 s, three significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Records one latency, clamped into the histogram's range.
pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests that got an HTTP answer.
    pub answered: u64,
    /// Requests that failed below HTTP (connect, reset, timeout).
    pub errors: u64,
    /// Open loop only: requests never sent because they were due more than [`LATE_GRACE`]
    /// before a worker was free (the server had fallen that far behind).
    pub dropped: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Wall time of the measured part of the run.
    pub elapsed: Duration,
    /// Latency of every answered request, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.answered as f64 / secs
        } else {
            0.0
        }
    }

    /// Answers whose status is in `200..300`.
    pub fn successes(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(code, _)| (200..300).contains(*code))
            .map(|(_, n)| n)
            .sum()
    }

    /// The serializable summary of this run.
    pub fn summary(&self) -> LoadSummary {
        LoadSummary {
            answered: self.answered,
            errors: self.errors,
            dropped: self.dropped,
            statuses: self
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            elapsed_s: self.elapsed.as_secs_f64(),
            req_per_s: self.rate(),
            latency_us: Percentiles::of(&self.latency),
        }
    }
}

/// A run as reported in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// Requests that got an HTTP answer.
    pub answered: u64,
    /// Requests that failed below HTTP.
    pub errors: u64,
    /// Open-loop requests never sent because the server had fallen too far behind.
    pub dropped: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Wall time of the measured part, in seconds.
    pub elapsed_s: f64,
    /// Answered requests per second.
    pub req_per_s: f64,
    /// Latency percentiles in microseconds.
    pub latency_us: Percentiles,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of a histogram (all zero when it is empty).
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        Self {
            count: hist.len(),
            p50: hist.value_at_quantile(0.50),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Sends one request on a fresh connection; returns the status and body.
pub async fn send_one(addr: SocketAddr, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    Conn::open(addr).await?.send(req).await
}

/// Per-worker tallies, merged into a [`LoadResult`].
struct Tally {
    answered: u64,
    errors: u64,
    dropped: u64,
    statuses: BTreeMap<u16, u64>,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            answered: 0,
            errors: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            latency: new_histogram(),
        }
    }

    fn merge(results: Vec<Tally>, elapsed: Duration) -> LoadResult {
        let mut out = LoadResult {
            answered: 0,
            errors: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            elapsed,
            latency: new_histogram(),
        };
        for t in results {
            out.answered += t.answered;
            out.errors += t.errors;
            out.dropped += t.dropped;
            for (code, n) in t.statuses {
                *out.statuses.entry(code).or_default() += n;
            }
            out.latency
                .add(&t.latency)
                .expect("histograms share their bounds");
        }
        out
    }
}

/// Sends `req` on `conn` (reconnecting first if the last attempt broke it) and tallies the result
/// with latency measured from `since`.
async fn exchange(
    addr: SocketAddr,
    conn: &mut Option<Conn>,
    req: Request<Full<Bytes>>,
    since: Instant,
    seq: u64,
    tally: &mut Tally,
    on_response: Option<&OnResponse>,
) {
    // pdbridge closes a keep-alive connection idle past its header deadline (10 s); a slow
    // open loop opens a new one instead of counting an error for a request never sent.
    if conn.as_ref().is_some_and(|c| c.sender.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        match Conn::open(addr).await {
            Ok(c) => *conn = Some(c),
            Err(_) => {
                tally.errors += 1;
                // Do not spin on a server that is not listening.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return;
            }
        }
    }
    let Some(c) = conn.as_mut() else { return };
    match tokio::time::timeout(REQUEST_TIMEOUT, c.send(req)).await {
        Ok(Ok((status, body))) => {
            record(&mut tally.latency, since.elapsed());
            tally.answered += 1;
            *tally.statuses.entry(status).or_default() += 1;
            if let Some(f) = on_response {
                f(seq, status, &body);
            }
        }
        Ok(Err(_)) | Err(_) => {
            tally.errors += 1;
            *conn = None;
        }
    }
}

/// Closed loop: `connections` workers send back to back for `duration`.
///
/// Sequence numbers start at `first_seq` and are unique across workers.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    first_seq: u64,
    make: MakeRequest,
    on_response: Option<OnResponse>,
) -> anyhow::Result<LoadResult> {
    let seq = Arc::new(AtomicU64::new(first_seq));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let seq = Arc::clone(&seq);
        let make = Arc::clone(&make);
        let on_response = on_response.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut conn = Conn::open(addr).await.ok();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let req = make(n);
                let t0 = Instant::now();
                exchange(
                    addr,
                    &mut conn,
                    req,
                    t0,
                    n,
                    &mut tally,
                    on_response.as_ref(),
                )
                .await;
            }
            tally
        }));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await.context("load worker panicked")?);
    }
    Ok(Tally::merge(tallies, start.elapsed()))
}

/// Open loop: `rate` requests per second for `duration`, on a fixed schedule, served by up to
/// `connections` workers; latency counts from each request's scheduled send time.
///
/// A dedicated OS thread releases each request at its scheduled instant (sleeping for long gaps,
/// spinning for the last stretch, so the tokio timer's millisecond granularity does not add
/// latency); idle workers pick released requests up in order. When every worker is busy, released
/// requests queue and their wait is part of their latency, as it would be for a real sender.
pub async fn open_loop(
    addr: SocketAddr,
    rate: u32,
    duration: Duration,
    connections: usize,
    first_seq: u64,
    make: MakeRequest,
    on_response: Option<OnResponse>,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(rate > 0, "the open-loop rate must be positive");
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let rx = Arc::new(Mutex::new(rx));

    // Open the connections before the clock starts.
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        conns.push(Conn::open(addr).await.ok());
    }
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + duration;
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + period.mul_f64(i as f64);
            loop {
                let now = Instant::now();
                if now >= at {
                    break;
                }
                let left = at - now;
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(150));
                } else {
                    std::hint::spin_loop();
                }
            }
            if tx.send((first_seq + i, at)).is_err() {
                break;
            }
        }
    });

    let mut tasks = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let rx = Arc::clone(&rx);
        let make = Arc::clone(&make);
        let on_response = on_response.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            loop {
                let next = rx.lock().await.recv().await;
                let Some((seq, at)) = next else { break };
                if Instant::now() > end + LATE_GRACE {
                    tally.dropped += 1;
                    continue;
                }
                let req = make(seq);
                exchange(
                    addr,
                    &mut conn,
                    req,
                    at,
                    seq,
                    &mut tally,
                    on_response.as_ref(),
                )
                .await;
            }
            tally
        }));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await.context("load worker panicked")?);
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("pacer thread panicked"))?;
    Ok(Tally::merge(tallies, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_empty_and_known_histograms() {
        let empty = new_histogram();
        assert_eq!(Percentiles::of(&empty).count, 0);
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((499..=501).contains(&p.p50), "{p:?}");
        assert!((989..=991).contains(&p.p99), "{p:?}");
        assert!(p.max >= 999 && p.max <= 1001, "{p:?}");
    }

    #[test]
    fn latencies_are_clamped_into_range() {
        let mut h = new_histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_LATENCY_US);
    }
}
