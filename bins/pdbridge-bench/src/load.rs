//! Load generation: a closed-loop driver and an open-loop driver, both over keep-alive HTTP/1.1.
//!
//! The closed loop keeps `connections` requests in flight, one per connection, each sent as soon
//! as the previous answer arrived: it measures throughput. The open loop sends at a fixed rate on
//! a precomputed schedule and records every latency from the *scheduled* send time, so a stalled
//! server is charged for the requests it delayed (no coordinated omission): it measures latency.
//! Latencies are recorded in microseconds in HDR histograms, one per connection, merged at the
//! end.
//!
//! The generator must never be what limits a run, so it does as little as it can per request:
//! requests go out as pre-serialized HTTP/1.1 bytes over raw `TCP_NODELAY` sockets and answers
//! are read with `httparse`, without a client stack in between. The open loop builds every
//! request before its clock starts; the closed loop, whose request count is not known in
//! advance, fills a pre-serialized [`Template`] in place (the sequence number's digits and the
//! body's HMAC). Each connection's task owns its requests, its buffer and its share of the
//! schedule, so nothing on the send path is shared between connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use signing::PagerDutySecret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::cpu::{CpuMeter, CpuUse};

/// Builds the request with the given sequence number; open loops call it before their clock
/// starts, never inside the timed window.
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// How long one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How late (past the end of its schedule) an open loop may still send a queued request.
pub const LATE_GRACE: Duration = Duration::from_secs(5);

/// The largest latency a histogram records (60 s, in microseconds); longer ones are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Width of the sequence-number slots of a [`Template`]: fixed, so every request a template
/// makes has the same length.
pub const SEQ_DIGITS: usize = 16;

/// What a template's text holds where a sequence number goes.
pub const SEQ_MARK: &str = "################";

/// A new, empty latency histogram (1 µs to 60 s, three significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Records one latency, clamped into the histogram's range.
pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// One answered open-loop request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Its sequence number.
    pub seq: u64,
    /// When it was due, from the start of the schedule.
    pub scheduled: Duration,
    /// From when it was due until its answer was read.
    pub latency: Duration,
    /// When its first byte was written (wall clock, comparable with the fakes' records).
    pub sent_at: SystemTime,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests that got an HTTP answer.
    pub answered: u64,
    /// Requests that failed below HTTP (connect, reset, timeout).
    pub errors: u64,
    /// Open loop only: requests never sent because they were due more than [`LATE_GRACE`]
    /// before their connection was free (the server had fallen that far behind).
    pub dropped: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Wall time of the measured part of the run.
    pub elapsed: Duration,
    /// Latency of every answered request, in microseconds.
    pub latency: Histogram<u64>,
    /// Open loop only: every answered request, in no particular order.
    pub samples: Vec<Sample>,
    /// CPU use of the server and of this process over the measured part, when a server
    /// process was given.
    pub cpu: Option<CpuUse>,
    /// The first sequence number this run did not use (closed loop; a later run starts here).
    pub next_seq: u64,
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
        let per = |f: fn(&CpuUse, u64) -> Option<f64>| {
            self.cpu
                .as_ref()
                .and_then(|c| f(c, self.successes()))
                .map(|us| (us * 10.0).round() / 10.0)
        };
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
            cpu: self.cpu,
            server_cpu_us_per_2xx: per(CpuUse::server_us_per),
            generator_cpu_us_per_2xx: per(CpuUse::generator_us_per),
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
    /// CPU use of the server and of the bench over the measured part.
    pub cpu: Option<CpuUse>,
    /// Microseconds of server CPU per 2xx answer in the measured part.
    pub server_cpu_us_per_2xx: Option<f64>,
    /// Microseconds of the bench's own CPU (generator, and the fakes if any) per 2xx answer.
    pub generator_cpu_us_per_2xx: Option<f64>,
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

/// The percentiles of the samples due in each consecutive `width` of the schedule (`windows`
/// of them; empty windows give zeros).
pub fn per_window(samples: &[Sample], width: Duration, windows: usize) -> Vec<Percentiles> {
    let mut hists: Vec<Histogram<u64>> = (0..windows).map(|_| new_histogram()).collect();
    let width = width.as_secs_f64().max(f64::MIN_POSITIVE);
    for s in samples {
        let k = (s.scheduled.as_secs_f64() / width) as usize;
        if let Some(h) = hists.get_mut(k) {
            record(h, s.latency);
        }
    }
    hists.iter().map(Percentiles::of).collect()
}

/// Writes an HTTP/1.1 request with a `content-length` (any given one is dropped).
fn write_wire<'a>(
    method: &str,
    target: &str,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 512);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// `req` as the bytes an HTTP/1.1 client writes.
pub async fn to_wire(req: Request<Full<Bytes>>) -> Bytes {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    Bytes::from(write_wire(parts.method.as_str(), target, headers, &body))
}

/// A pre-serialized request with sequence-number slots and, optionally, a PagerDuty signature
/// over its body, filled in place for each request.
pub struct Template {
    wire: Vec<u8>,
    body: Range<usize>,
    slots: Vec<usize>,
    signature: Option<(usize, PagerDutySecret)>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("len", &self.wire.len())
            .field("slots", &self.slots.len())
            .field("signed", &self.signature.is_some())
            .finish_non_exhaustive()
    }
}

impl Template {
    /// A `POST` to `path` with `headers` and `body`, where every [`SEQ_MARK`] in the header
    /// values and the body is a sequence-number slot; with `sign`, the header of that name
    /// carries the PagerDuty `v1=` signature of the filled body.
    pub fn post(
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        sign: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        const SIG_MARK: &str =
            "v1=SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS";
        let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        if let Some((name, _)) = sign {
            all.push((name, SIG_MARK.as_bytes()));
        }
        let wire = write_wire("POST", path, all.into_iter(), body);
        let body = wire.len() - body.len()..wire.len();
        let find_all = |needle: &[u8]| -> Vec<usize> {
            wire.windows(needle.len())
                .enumerate()
                .filter(|(_, w)| *w == needle)
                .map(|(i, _)| i)
                .collect()
        };
        let slots = find_all(SEQ_MARK.as_bytes());
        anyhow::ensure!(!slots.is_empty(), "a template needs a sequence-number slot");
        let signature = match sign {
            Some((_, secret)) => {
                let at = find_all(SIG_MARK.as_bytes());
                anyhow::ensure!(at.len() == 1, "the signature placeholder must be unique");
                Some((at[0], PagerDutySecret::new(secret)))
            }
            None => None,
        };
        Ok(Self {
            wire,
            body,
            slots,
            signature,
        })
    }

    /// Writes the request for `seq` into `buf`, which is empty or was last filled by this
    /// template: only the slots and the signature change.
    pub fn fill(&self, seq: u64, buf: &mut Vec<u8>) {
        if buf.len() != self.wire.len() {
            buf.clear();
            buf.extend_from_slice(&self.wire);
        }
        let mut digits = [b'0'; SEQ_DIGITS];
        let mut n = seq;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for &at in &self.slots {
            buf[at..at + SEQ_DIGITS].copy_from_slice(&digits);
        }
        if let Some((at, secret)) = &self.signature {
            let sig = signing::sign_pagerduty(secret, &buf[self.body.clone()]);
            buf[*at..*at + sig.len()].copy_from_slice(sig.as_bytes());
        }
    }

    /// The length of every request this template makes.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// The request for `seq`, as its own buffer.
    pub fn build(&self, seq: u64) -> Bytes {
        let mut buf = Vec::with_capacity(self.wire.len());
        self.fill(seq, &mut buf);
        Bytes::from(buf)
    }
}

/// Where an open loop's requests come from; every one is built before the clock starts.
#[derive(Clone)]
pub enum Source {
    /// A template filled with each sequence number.
    Template(Arc<Template>),
    /// Any request, built by a function of the sequence number.
    Make(MakeRequest),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Template(t) => f.debug_tuple("Template").field(t).finish(),
            Self::Make(_) => f.write_str("Make(..)"),
        }
    }
}

impl Source {
    async fn build(&self, seq: u64) -> Bytes {
        match self {
            Self::Template(t) => t.build(seq),
            Self::Make(make) => to_wire(make(seq)).await,
        }
    }
}

/// One keep-alive HTTP/1.1 connection driven with raw bytes.
struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How the body of an answer is delimited.
enum BodyLength {
    Exactly(usize),
    Chunked,
    UntilClose,
}

/// An answer's status and whether its connection may carry the next request.
struct Answer {
    status: u16,
    reusable: bool,
}

impl RawConn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    /// Whether the peer has closed the connection (or sent something unasked) while it was idle.
    fn is_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Reads more of the answer; fails when the peer closed first.
    async fn read_more(&mut self) -> anyhow::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8192);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        Ok(n)
    }

    /// Writes `req` and reads its whole answer.
    async fn exchange(&mut self, req: &[u8]) -> anyhow::Result<Answer> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        let (status, head, length, mut reusable) = loop {
            if self.read_more().await? == 0 {
                bail!("connection closed before the answer");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp.parse(&self.buf)? {
                let status = resp.code.unwrap_or(0);
                let mut reusable = resp.version == Some(1);
                let mut length = BodyLength::UntilClose;
                for h in resp.headers.iter() {
                    let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = BodyLength::Exactly(value.parse().context("content-length")?);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                        && value.to_ascii_lowercase().contains("chunked")
                    {
                        length = BodyLength::Chunked;
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        reusable = !value.eq_ignore_ascii_case("close");
                    }
                }
                if (100..200).contains(&status) || status == 204 || status == 304 {
                    length = BodyLength::Exactly(0);
                }
                break (status, head, length, reusable);
            }
        };
        match length {
            BodyLength::Exactly(n) => {
                while self.buf.len() < head + n {
                    if self.read_more().await? == 0 {
                        bail!("connection closed inside the body");
                    }
                }
            }
            BodyLength::Chunked => {
                let mut at = head;
                loop {
                    match httparse::parse_chunk_size(&self.buf[at..]) {
                        Ok(httparse::Status::Complete((used, 0))) => {
                            // The last chunk; then trailers (if any) and an empty line.
                            let tail = at + used;
                            let done = self.buf[tail..].starts_with(b"\r\n")
                                || self.buf[tail..].windows(4).any(|w| w == b"\r\n\r\n");
                            if done {
                                break;
                            }
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            let end = at + used + usize::try_from(size)? + 2;
                            if self.buf.len() >= end {
                                at = end;
                                continue;
                            }
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => bail!("bad chunked body"),
                    }
                    if self.read_more().await? == 0 {
                        bail!("connection closed inside a chunked body");
                    }
                }
            }
            BodyLength::UntilClose => {
                while self.read_more().await? > 0 {}
                reusable = false;
            }
        }
        Ok(Answer { status, reusable })
    }
}

/// One keep-alive HTTP/1.1 connection through hyper's client (for single requests).
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

/// Per-connection tallies, merged into a [`LoadResult`].
struct Tally {
    answered: u64,
    errors: u64,
    dropped: u64,
    statuses: BTreeMap<u16, u64>,
    /// Latencies in microseconds, appended in order (cheaper per request than a histogram,
    /// whose counts spread over many cache lines); merged into one histogram at the end.
    latency_us: Vec<u32>,
    samples: Vec<Sample>,
    next_seq: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            answered: 0,
            errors: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            latency_us: Vec::new(),
            samples: Vec::new(),
            next_seq: 0,
        }
    }

    fn merge(results: Vec<Tally>, elapsed: Duration, cpu: Option<CpuUse>) -> LoadResult {
        let mut out = LoadResult {
            answered: 0,
            errors: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            elapsed,
            latency: new_histogram(),
            samples: Vec::new(),
            cpu,
            next_seq: 0,
        };
        for mut t in results {
            out.answered += t.answered;
            out.errors += t.errors;
            out.dropped += t.dropped;
            out.next_seq = out.next_seq.max(t.next_seq);
            for (code, n) in t.statuses {
                *out.statuses.entry(code).or_default() += n;
            }
            for us in t.latency_us {
                out.latency
                    .saturating_record(u64::from(us).clamp(1, MAX_LATENCY_US));
            }
            out.samples.append(&mut t.samples);
        }
        out
    }
}

/// Sends `req` on `conn` (reconnecting first if the last attempt broke it) and tallies the
/// result with latency measured from `since`; returns that latency when answered.
async fn exchange(
    addr: SocketAddr,
    conn: &mut Option<RawConn>,
    req: &[u8],
    since: Instant,
    tally: &mut Tally,
) -> Option<Duration> {
    // pdbridge closes a keep-alive connection idle past its header deadline (10 s); a slow
    // open loop opens a new one instead of counting an error for a request never sent.
    if conn.as_ref().is_some_and(RawConn::is_closed) {
        *conn = None;
    }
    if conn.is_none() {
        match RawConn::open(addr).await {
            Ok(c) => *conn = Some(c),
            Err(_) => {
                tally.errors += 1;
                // Do not spin on a server that is not listening.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return None;
            }
        }
    }
    let c = conn.as_mut()?;
    match tokio::time::timeout(REQUEST_TIMEOUT, c.exchange(req)).await {
        Ok(Ok(answer)) => {
            let latency = since.elapsed();
            let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
            tally.latency_us.push(us);
            tally.answered += 1;
            *tally.statuses.entry(answer.status).or_default() += 1;
            if !answer.reusable {
                *conn = None;
            }
            Some(latency)
        }
        Ok(Err(_)) | Err(_) => {
            tally.errors += 1;
            *conn = None;
            None
        }
    }
}

/// Opens `n` connections before a clock starts (a failed one is retried on first use).
async fn open_all(addr: SocketAddr, n: usize) -> Vec<Option<RawConn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(RawConn::open(addr).await.ok());
    }
    conns
}

/// Requests each connection of a repeating closed loop builds before the clock starts and then
/// sends in turn: few, so that all connections' requests stay in the generator core's cache.
const REPEAT_BANK: usize = 4;

/// What a closed loop sends.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The request, with sequence-number slots.
    pub template: Arc<Template>,
    /// Whether requests may repeat: true for a server that does the same work for any request
    /// (the bare baseline), false where each must be unique (pdbridge deduplicates).
    pub repeat: bool,
}

/// Closed loop: `connections` connections send back to back for `duration`. With
/// `server_pid`, the server's and this process's CPU time over the measured part are sampled.
///
/// Connection `i` of `n` uses sequence numbers `first_seq + i`, `first_seq + i + n`, … so they
/// are unique across connections; [`LoadResult::next_seq`] is the first one left unused. With
/// [`Feed::repeat`] each connection builds 4 requests before the clock starts and sends them in
/// turn, so the timed window does no building at all (this is what lets one core saturate the
/// bare server on another); otherwise each fills its own copy of the template in place per
/// request (the digits and the body's HMAC, a few microseconds, against the hundred or so that
/// pdbridge spends on a durable webhook).
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    first_seq: u64,
    feed: Feed,
    server_pid: Option<u32>,
) -> anyhow::Result<LoadResult> {
    let n = connections.max(1);
    let stride = n as u64;
    let len = feed.template.wire_len().max(1);
    let per_conn = if feed.repeat { REPEAT_BANK } else { 0 };
    let mut banks = Vec::with_capacity(n);
    for i in 0..n {
        let mut bank = Vec::with_capacity(per_conn * len);
        let mut buf = Vec::with_capacity(len);
        for k in 0..per_conn {
            feed.template
                .fill(first_seq + i as u64 + k as u64 * stride, &mut buf);
            bank.extend_from_slice(&buf);
        }
        banks.push(bank);
    }
    let conns = open_all(addr, n).await;
    let meter = server_pid.map(CpuMeter::start);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(n);
    for ((i, mut conn), bank) in conns.into_iter().enumerate().zip(banks) {
        let template = Arc::clone(&feed.template);
        let repeat = feed.repeat;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut buf = Vec::new();
            let mut k = 0usize;
            while Instant::now() < deadline {
                let req: &[u8] = if repeat {
                    let at = (k % per_conn) * len;
                    &bank[at..at + len]
                } else {
                    template.fill(first_seq + i as u64 + k as u64 * stride, &mut buf);
                    &buf
                };
                k += 1;
                let t0 = Instant::now();
                exchange(addr, &mut conn, req, t0, &mut tally).await;
            }
            tally.next_seq = first_seq + i as u64 + k as u64 * stride;
            tally
        }));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await.context("load connection task panicked")?);
    }
    let elapsed = start.elapsed();
    let cpu = meter.and_then(|m| m.finish());
    let mut out = Tally::merge(tallies, elapsed, cpu);
    out.next_seq = out.next_seq.max(first_seq);
    Ok(out)
}

/// Open loop: `rate` requests per second for `duration`, on a fixed schedule, over up to
/// `connections` connections; latency counts from each request's scheduled send time. With
/// `server_pid`, CPU time is sampled over the schedule as in [`closed_loop`].
///
/// Every request is built before the clock starts, and request `k` belongs to connection
/// `k mod connections`: each connection's task owns its requests and receives only "send your
/// next one now" from a dedicated pacer thread, on a channel of its own. The pacer releases
/// each request at its scheduled instant (sleeping for long gaps, spinning for the last stretch,
/// so the tokio timer's millisecond granularity does not add latency). A request released while
/// its connection still waits for an earlier answer queues behind it, and that wait is part of
/// its latency, as it would be for a real sender with this many connections.
pub async fn open_loop(
    addr: SocketAddr,
    rate: u32,
    duration: Duration,
    connections: usize,
    first_seq: u64,
    source: Source,
    server_pid: Option<u32>,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(rate > 0, "the open-loop rate must be positive");
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let n = connections.max(1);

    // Build every request and open the connections before the clock starts.
    let mut shares: Vec<Vec<(u64, Bytes)>> = (0..n)
        .map(|_| Vec::with_capacity(usize::try_from(total).unwrap_or(0) / n + 1))
        .collect();
    for k in 0..total {
        let seq = first_seq + k;
        let wire = source.build(seq).await;
        shares[usize::try_from(k).unwrap_or(0) % n].push((seq, wire));
    }
    let conns = open_all(addr, n).await;
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        receivers.push(rx);
    }

    let meter = server_pid.map(CpuMeter::start);
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + duration;
    let pacer = std::thread::spawn(move || {
        for k in 0..total {
            let at = start + period.mul_f64(k as f64);
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
            let to = &senders[usize::try_from(k).unwrap_or(0) % senders.len()];
            if to.send(at).is_err() {
                break;
            }
        }
    });

    let mut tasks = Vec::with_capacity(n);
    for ((mut conn, share), mut rx) in conns.into_iter().zip(shares).zip(receivers) {
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            tally.samples.reserve(share.len());
            let mut next = share.iter();
            while let Some(at) = rx.recv().await {
                let Some((seq, wire)) = next.next() else {
                    break;
                };
                if Instant::now() > end + LATE_GRACE {
                    tally.dropped += 1;
                    continue;
                }
                let sent_at = SystemTime::now();
                if let Some(latency) = exchange(addr, &mut conn, wire, at, &mut tally).await {
                    tally.samples.push(Sample {
                        seq: *seq,
                        scheduled: at.saturating_duration_since(start),
                        latency,
                        sent_at,
                    });
                }
            }
            tally
        }));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for t in tasks {
        tallies.push(t.await.context("load connection task panicked")?);
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("pacer thread panicked"))?;
    let elapsed = start.elapsed();
    let cpu = meter.and_then(|m| m.finish());
    let mut out = Tally::merge(tallies, elapsed, cpu);
    out.next_seq = first_seq + total;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    #[test]
    fn per_window_splits_by_schedule() {
        let sample = |scheduled_ms: u64, latency_us: u64| Sample {
            seq: 0,
            scheduled: Duration::from_millis(scheduled_ms),
            latency: Duration::from_micros(latency_us),
            sent_at: SystemTime::UNIX_EPOCH,
        };
        let samples = [
            sample(10, 100),
            sample(900, 300),
            sample(1500, 5000),
            sample(9000, 1),
        ];
        let w = per_window(&samples, Duration::from_secs(1), 3);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].count, 2);
        assert!((299..=301).contains(&w[0].max), "{w:?}");
        assert_eq!(w[1].count, 1);
        assert_eq!(w[2].count, 0);
    }

    #[test]
    fn template_fills_slots_and_signs_the_body() {
        let body = format!("{{\"id\":\"E{SEQ_MARK}\",\"x\":\"P{SEQ_MARK}\"}}");
        let headers = [
            ("host", "h".to_owned()),
            ("x-webhook-id", format!("wh-{SEQ_MARK}")),
        ];
        let t = Template::post(
            "/pagerduty/webhook",
            &headers,
            body.as_bytes(),
            Some((signing::PAGERDUTY_SIGNATURE_HEADER, "secret")),
        )
        .unwrap();
        let mut buf = Vec::new();
        for seq in [7u64, 1234567890123] {
            t.fill(seq, &mut buf);
            assert_eq!(buf.as_slice(), &t.build(seq)[..]);
            let text = String::from_utf8(buf.clone()).unwrap();
            let digits = format!("{seq:016}");
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with("POST /pagerduty/webhook HTTP/1.1\r\n"),
                "{head}"
            );
            assert!(
                head.contains(&format!("x-webhook-id: wh-{digits}\r\n")),
                "{head}"
            );
            assert!(head.ends_with(&format!("\r\ncontent-length: {}", body.len())));
            assert_eq!(
                body,
                format!("{{\"id\":\"E{digits}\",\"x\":\"P{digits}\"}}")
            );
            let sig = head
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{}: ", signing::PAGERDUTY_SIGNATURE_HEADER)))
                .unwrap();
            signing::verify_pagerduty(
                &[PagerDutySecret::new("secret")],
                Some(sig),
                body.as_bytes(),
            )
            .unwrap();
        }
        assert!(Template::post("/", &[], b"no slot", None).is_err());
    }

    #[tokio::test]
    async fn to_wire_serializes_an_http_request() {
        let req = Request::post("/slack/interactions?x=1")
            .header("host", "h")
            .header("content-length", "999")
            .body(Full::new(Bytes::from_static(b"a=b")))
            .unwrap();
        let wire = to_wire(req).await;
        assert_eq!(
            &wire[..],
            b"POST /slack/interactions?x=1 HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\na=b"
        );
    }

    /// A one-shot server that answers each request on a connection with `answer`.
    async fn answering(answer: &'static [u8]) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        // Each test request fits one read and ends its head with a blank line.
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                if s.write_all(answer).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn raw_connection_reads_length_chunked_and_close_delimited_answers() {
        let req = b"GET / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n";
        for (answer, status, reusable) in [
            (&b"HTTP/1.1 202 Accepted\r\ncontent-length: 3\r\n\r\nok\n"[..], 202, true),
            (
                &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
                200,
                true,
            ),
            (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], 204, true),
            (
                &b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"[..],
                413,
                false,
            ),
        ] {
            let addr = answering(answer).await;
            let mut c = RawConn::open(addr).await.unwrap();
            for _ in 0..3 {
                let a = c.exchange(req).await.unwrap();
                assert_eq!((a.status, a.reusable), (status, reusable));
                if !reusable {
                    break;
                }
            }
        }
    }
}
