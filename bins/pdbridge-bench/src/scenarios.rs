//! The pdbridge benches beyond ingest: ack latency, end to end, Slack economy, memory, outage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use ids::{ChannelId, IncidentId};

use crate::bench::{WEBHOOK_BYTES, unique_webhooks};
use crate::child::{Pinning, ServerProcess};
use crate::harness::{Env, EnvOptions, metric_sum, service_for_channel};
use crate::load::{self, MakeRequest, Source};
use crate::payloads::{self, IncidentEvent, SLACK_SECRET, now_unix};
use crate::report::{Report, Run};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Options of `ack`.
#[derive(Debug, Clone, clap::Args)]
pub struct AckArgs {
    /// Open-loop rates in requests per second (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    pub rates: Vec<u32>,
    /// Seconds of each run.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Maximum concurrent requests.
    #[arg(long, default_value_t = 64)]
    pub conns: usize,
    /// Distinct incidents, new to the bridge, that the webhooks of the new-incidents shape
    /// concern (each with a channel of its own, so every one needs a card); 0 skips the shape.
    #[arg(long, default_value_t = 1000)]
    pub incidents: usize,
    /// Seconds of the closed-loop burst after the new-incidents run at the first rate; 0 skips
    /// the burst and the recovery run.
    #[arg(long, default_value_t = 5.0)]
    pub burst: f64,
    /// Connections of the burst.
    #[arg(long, default_value_t = 50)]
    pub burst_conns: usize,
    /// Seconds of the open loop right after the burst, at the first rate, reported per second.
    #[arg(long, default_value_t = 10.0)]
    pub recovery: f64,
    /// Seconds of the bare baseline's closed loop, which must prove server-bound; 0 skips the
    /// baseline (closed loop and open-loop noise floor).
    #[arg(long, default_value_t = 3.0)]
    pub baseline_duration: f64,
}

/// The p99 the ack figures are compared with, in microseconds.
const ACK_TARGET_P99_US: u64 = 2000;

/// Signed webhooks about `incidents` in turn: webhook `seq` concerns incident `seq mod n`, in
/// pass `seq / n`. Pass 0 triggers each incident (new to the bridge: it needs its card), odd
/// passes acknowledge it and later even passes unacknowledge it, each a second later than the
/// pass before, so every delivery changes the incident and its card.
fn lifecycle_webhooks(host: String, incidents: Vec<IncidentId>, tag: &'static str) -> MakeRequest {
    Arc::new(move |seq| {
        let n = incidents.len().max(1) as u64;
        let k = usize::try_from(seq % n).unwrap_or(0);
        let pass = seq / n;
        let (event_type, status) = match pass {
            0 => ("incident.triggered", "triggered"),
            p if p % 2 == 1 => ("incident.acknowledged", "acknowledged"),
            _ => ("incident.unacknowledged", "triggered"),
        };
        let occurred_at = format!(
            "2026-01-01T{:02}:{:02}:{:02}.000Z",
            (pass / 3600) % 24,
            (pass / 60) % 60,
            pass % 60
        );
        let event_id = format!("EN{tag}{seq:010}");
        let service = service_for_channel(k);
        let body = payloads::webhook_body(
            &IncidentEvent {
                event_id: &event_id,
                event_type,
                incident: incidents[k].as_str(),
                status,
                service: &service,
                agent: "PBENCH000",
                occurred_at: &occurred_at,
                title: "new incident",
            },
            WEBHOOK_BYTES,
        );
        payloads::pd_request(
            &host,
            body,
            Some(&format!("wh-n{tag}-{seq}")),
            payloads::PD_SECRET,
        )
    })
}

/// Reports what every ack shape reports besides its run: the share answered, server CPU per
/// accepted request and the server's peak RSS.
fn shape_figures(
    report: &mut Report,
    name: &str,
    r: &load::LoadResult,
    status: u16,
    expected: u64,
    peaks: crate::bench::SamplerPeaks,
) {
    report.figure(
        format!("{name}/answered_{status}_of_sent"),
        format!(
            "{} of {expected}",
            r.statuses.get(&status).copied().unwrap_or(0)
        ),
    );
    report.figure(
        format!("{name}/server_cpu_us_per_accepted"),
        r.summary().server_cpu_us_per_2xx,
    );
    report.figure(format!("{name}/peak_rss_kib"), peaks.max_rss_kib);
}

/// Starts sampling the running server's memory.
fn sample_memory(env: &Env) -> anyhow::Result<(u32, crate::bench::Sampler)> {
    let pid = env.server.as_ref().context("server")?.pid();
    Ok((
        pid,
        crate::bench::Sampler::start(pid, None, Duration::from_millis(50)),
    ))
}

/// `ack`: open-loop answer latency of signed webhooks and signed Slack clicks, beside the bare
/// baseline (which must prove server-bound) and a burst followed by a recovery run.
pub async fn ack(args: &AckArgs, pinning: Pinning, report: &mut Report) -> anyhow::Result<()> {
    if args.baseline_duration > 0.0 {
        // The bare server: closed loop (the generator can saturate a server core on this
        // machine now), then the open loops' noise floor.
        let bare = crate::bench::spawn_bare(pinning)?;
        crate::bench::bare_closed(
            &bare,
            args.burst_conns,
            secs(args.baseline_duration.min(1.0)),
            secs(args.baseline_duration),
            "ack/baseline/bare-hyper",
            report,
        )
        .await?;
        for &rate in &args.rates {
            let source = Source::Template(unique_webhooks(&bare.addr.to_string(), "O")?);
            let r = load::open_loop(
                bare.addr,
                rate,
                secs(args.duration),
                args.conns,
                0,
                source,
                Some(bare.pid()),
            )
            .await?;
            report.runs.push(Run::open(
                format!("ack/bare-hyper@{rate}"),
                args.conns,
                rate,
                &r,
            ));
        }
        bare.kill9()?;
    }
    for (i, &rate) in args.rates.iter().enumerate() {
        let expected = (f64::from(rate) * args.duration).round() as u64;

        // Webhooks, each about an incident of its own in the default channel, on a fresh server.
        let mut env = Env::new(EnvOptions {
            slack_limits: false,
            pinning,
            ..EnvOptions::default()
        })
        .await?;
        env.start()?;
        let (pid, sampler) = sample_memory(&env)?;
        let source = Source::Template(unique_webhooks(&env.host(), &format!("A{rate}"))?);
        let r = load::open_loop(
            env.addr,
            rate,
            secs(args.duration),
            args.conns,
            0,
            source,
            Some(pid),
        )
        .await?;
        let name = format!("ack/webhook@{rate}");
        report.runs.push(Run::open(&name, args.conns, rate, &r));
        // Under overload some requests go unanswered in time: a number to report, not a failure.
        shape_figures(report, &name, &r, 202, expected, sampler.finish());
        env.kill9()?;

        if args.incidents > 0 {
            new_incidents(args, rate, i == 0, pinning, report).await?;
        }

        // Slack clicks on a real card, on a fresh server.
        let mut env = Env::new(EnvOptions {
            slack_limits: false,
            pinning,
            ..EnvOptions::default()
        })
        .await?;
        env.start()?;
        let incident = env.pd.trigger_incident("ack latency", &env.policy);
        let (channel, ts) = env
            .wait_card(&incident, Duration::from_secs(20))
            .await
            .context("the card never appeared")?;
        let host = env.host();
        let user = env.users[0].0.to_string();
        let team = env.slack.team_id().to_string();
        let response_url = env.slack.new_response_url();
        let make: MakeRequest = Arc::new(move |seq| {
            let mut payload = payloads::block_action(
                &user,
                &team,
                channel.as_str(),
                ts.as_str(),
                incident.as_str(),
                "pdbridge_ack",
                &response_url,
            );
            // Unique per click, as Slack's are.
            payload["trigger_id"] = format!("{seq}.{}.bench", now_unix()).into();
            payload["actions"][0]["action_ts"] = format!("{}.{seq:06}", now_unix()).into();
            let body = payloads::interaction_form(&payload);
            payloads::slack_request(&host, "/slack/interactions", body, SLACK_SECRET, now_unix())
        });
        let (pid, sampler) = sample_memory(&env)?;
        let r = load::open_loop(
            env.addr,
            rate,
            secs(args.duration),
            args.conns,
            0,
            Source::Make(make),
            Some(pid),
        )
        .await?;
        let name = format!("ack/slack-click@{rate}");
        report.runs.push(Run::open(&name, args.conns, rate, &r));
        shape_figures(report, &name, &r, 200, expected, sampler.finish());
        env.kill9()?;
    }
    report.figure("ack/target_p99_us_at_1000", ACK_TARGET_P99_US);
    Ok(())
}

/// The new-incidents shape at `rate` on a fresh server: webhooks about `args.incidents`
/// incidents new to the bridge, each routed to a channel of its own, so each needs a card
/// posted while the webhooks keep coming. With `recovery`, the same server then takes a
/// closed-loop burst and an open loop at `rate` right after, reported per second.
async fn new_incidents(
    args: &AckArgs,
    rate: u32,
    recovery: bool,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = args.incidents;
    let expected = (f64::from(rate) * args.duration).round() as u64;
    let mut env = Env::new(EnvOptions {
        channels: n,
        slack_limits: false,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    start_reconciled(&mut env).await?;
    let incidents: Vec<IncidentId> = (0..n)
        .map(|k| {
            env.pd.add_incident_on(
                "new incident",
                &env.policy,
                &ids::ServiceId::new(service_for_channel(k)),
            )
        })
        .collect();
    let make = lifecycle_webhooks(env.host(), incidents, "A");
    let (pid, sampler) = sample_memory(&env)?;
    let posts_before = env.slack.requests_to("chat.postMessage").len();
    let whole = crate::cpu::CpuMeter::start(pid);
    let r = load::open_loop(
        env.addr,
        rate,
        secs(args.duration),
        args.conns,
        0,
        Source::Make(Arc::clone(&make)),
        Some(pid),
    )
    .await?;
    let name = format!("ack/webhook-new-incidents@{rate}");
    report.runs.push(Run::open(&name, args.conns, rate, &r));
    // Each incident's card, posted meanwhile or right after (at most 30 s more).
    let want = n.min(usize::try_from(r.successes()).unwrap_or(usize::MAX));
    let cards = |env: &Env| {
        env.slack
            .requests_to("chat.postMessage")
            .iter()
            .skip(posts_before)
            .filter(|req| req.json().get("thread_ts").is_none())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while cards(&env) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.figure(
        format!("{name}/cards_posted_of_incidents"),
        format!("{} of {want}", cards(&env)),
    );
    if let Some(c) = whole.finish() {
        report.figure(
            format!("{name}/server_cpu_us_per_accepted_incl_cards"),
            c.server_us_per(r.successes())
                .map(|us| (us * 10.0).round() / 10.0),
        );
    }

    if recovery && args.burst > 0.0 {
        let feed = load::Feed {
            template: unique_webhooks(&env.host(), "R")?,
            repeat: false,
        };
        let burst = load::closed_loop(
            env.addr,
            args.burst_conns,
            secs(args.burst),
            0,
            feed,
            Some(pid),
        )
        .await?;
        report.runs.push(Run::closed(
            format!("ack/burst@{rate}"),
            args.burst_conns,
            &burst,
        ));
        let after = load::open_loop(
            env.addr,
            rate,
            secs(args.recovery),
            args.conns,
            r.next_seq,
            Source::Make(make),
            Some(pid),
        )
        .await?;
        let rname = format!("ack/recovery@{rate}");
        report
            .runs
            .push(Run::open(&rname, args.conns, rate, &after));
        let seconds = args.recovery.ceil().max(1.0) as usize;
        let windows = load::per_window(&after.samples, Duration::from_secs(1), seconds);
        let p99s: Vec<u64> = windows.iter().map(|w| w.p99).collect();
        // The first second from which every later second's p99 is under the target.
        let recovered = (0..windows.len()).find(|&k| {
            windows[k..]
                .iter()
                .all(|w| w.count > 0 && w.p99 <= ACK_TARGET_P99_US)
        });
        report.figure(format!("{rname}/p99_us_per_second"), &p99s);
        report.figure(
            format!("{rname}/under_2ms_p99_from_second"),
            recovered.map(|k| k as u64),
        );
    }
    shape_figures(report, &name, &r, 202, expected, sampler.finish());
    env.kill9()?;
    Ok(())
}

/// Starts the server and waits until its start-up reconciliation listed PagerDuty's open
/// incidents (at most 5 s), so incidents created afterwards reach it only through webhooks and
/// clicks.
async fn start_reconciled(env: &mut Env) -> anyhow::Result<()> {
    let requests_before = env.pd.requests().len();
    env.start()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let listed = env
            .pd
            .requests()
            .iter()
            .skip(requests_before)
            .any(|r| r.method == http::Method::GET && r.path == "/incidents");
        if listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// Percentiles of latencies in microseconds.
fn percentiles(latencies: &[Duration]) -> load::Percentiles {
    let mut h = load::new_histogram();
    for l in latencies {
        load::record(&mut h, *l);
    }
    load::Percentiles::of(&h)
}

/// A mutation made directly in the fake PagerDuty (as a responder using PagerDuty's own UI).
async fn pd_set_status(env: &Env, incident: &IncidentId, status: &str) -> anyhow::Result<u16> {
    let email = "responder0@bench.example";
    let body = serde_json::json!({"incident": {"type": "incident_reference", "status": status}});
    let url = format!("{}/incidents/{incident}", env.pd.url());
    let uri: http::Uri = url.parse()?;
    let addr: std::net::SocketAddr = format!(
        "{}:{}",
        uri.host().unwrap_or("127.0.0.1"),
        uri.port_u16().unwrap_or(80)
    )
    .parse()?;
    let req = http::Request::put(uri.path())
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::ACCEPT,
            "application/vnd.pagerduty+json;version=2",
        )
        .header(
            http::header::AUTHORIZATION,
            "Token token=bench-pagerduty-token",
        )
        .header("from", email)
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))?;
    Ok(load::send_one(addr, req).await?.0)
}

/// The card text for a PagerDuty status.
fn status_label(status: &str) -> &'static str {
    match status {
        "triggered" => "Triggered",
        "acknowledged" => "Acknowledged",
        _ => "Resolved",
    }
}

/// Incidents whose tracked card does not (yet) show the fake PagerDuty's status.
fn not_final(env: &Env, incidents: &[IncidentId]) -> anyhow::Result<Vec<IncidentId>> {
    let tracked = env.tracked_cards()?;
    let mut texts: BTreeMap<(ChannelId, ids::MessageTs), String> = BTreeMap::new();
    for (_, list) in env.cards() {
        for (c, t, text) in list {
            texts.insert((c, t), text);
        }
    }
    Ok(incidents
        .iter()
        .filter(|i| {
            let want = env
                .pd
                .incident(i)
                .map_or("?", |x| status_label(x.status.as_str()));
            !tracked
                .get(*i)
                .and_then(|k| texts.get(k))
                .is_some_and(|text| text.contains(want))
        })
        .cloned()
        .collect())
}

/// Options of `e2e`.
#[derive(Debug, Clone, clap::Args)]
pub struct E2eArgs {
    /// Events per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds of each phase; one channel per event.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
}

/// `e2e`: webhook received → fake Slack gets `chat.postMessage`; click received → fake PagerDuty
/// gets the `PUT`. Open loop at `rate`, each event in its own channel.
pub async fn e2e(args: &E2eArgs, pinning: Pinning, report: &mut Report) -> anyhow::Result<()> {
    let n = ((f64::from(args.rate) * args.duration).round() as usize).max(1);
    let mut env = Env::new(EnvOptions {
        channels: n,
        slack_limits: true,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    start_reconciled(&mut env).await?;
    let incidents: Vec<IncidentId> = (0..n)
        .map(|_| env.pd.add_incident("end to end", &env.policy))
        .collect();

    // Phase 1: webhooks to cards.
    let host = env.host();
    let ids = incidents.clone();
    let make: MakeRequest = Arc::new(move |seq| {
        let k = usize::try_from(seq).unwrap_or(0) % ids.len();
        let event_id = format!("EE2E{seq:08}");
        let service = service_for_channel(k);
        let body = payloads::webhook_body(
            &IncidentEvent {
                event_id: &event_id,
                event_type: "incident.triggered",
                incident: ids[k].as_str(),
                status: "triggered",
                service: &service,
                agent: "PBENCH000",
                occurred_at: "2026-01-01T00:00:00.000Z",
                title: "end to end",
            },
            WEBHOOK_BYTES,
        );
        payloads::pd_request(
            &host,
            body,
            Some(&format!("wh-e2e-{seq}")),
            payloads::PD_SECRET,
        )
    });
    let r = load::open_loop(
        env.addr,
        args.rate,
        secs(args.duration),
        16,
        0,
        Source::Make(make),
        env.server.as_ref().map(ServerProcess::pid),
    )
    .await?;
    report
        .runs
        .push(Run::open("e2e/webhook-ack", 16, args.rate, &r));
    let mut sent_at: Vec<Option<SystemTime>> = vec![None; n];
    for s in &r.samples {
        let k = usize::try_from(s.seq).unwrap_or(0) % n;
        sent_at[k] = Some(sent_at[k].map_or(s.sent_at, |t| t.min(s.sent_at)));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.slack.requests_to("chat.postMessage").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let channel_index: BTreeMap<String, usize> = env
        .channels
        .iter()
        .enumerate()
        .map(|(k, c)| (c.to_string(), k))
        .collect();
    let mut first_post: BTreeMap<usize, SystemTime> = BTreeMap::new();
    for req in env.slack.requests_to("chat.postMessage") {
        let body = req.json();
        let channel = body["channel"].as_str().unwrap_or_default().to_owned();
        if let Some(k) = channel_index.get(&channel) {
            first_post.entry(*k).or_insert(req.at);
        }
    }
    let post_latency: Vec<Duration> = first_post
        .iter()
        .filter_map(|(k, at)| sent_at[*k].and_then(|s| at.duration_since(s).ok()))
        .collect();
    report.figure("e2e/webhook_to_post_us", percentiles(&post_latency));
    report.check(
        "e2e: every webhook became a card in its own channel",
        first_post.len() == n,
        format!("{} of {n} channels got a post", first_post.len()),
    );

    // Phase 2: clicks to PagerDuty PUTs.
    let tracked = env.tracked_cards()?;
    let mut forms = Vec::with_capacity(n);
    for (k, incident) in incidents.iter().enumerate() {
        let Some((channel, ts)) = tracked.get(incident) else {
            continue;
        };
        let user = &env.users[k % env.users.len()].0;
        if let Ok(p) = env
            .slack
            .block_actions_payload(user, channel, ts, "pdbridge_ack", None)
        {
            forms.push((incident.clone(), payloads::interaction_form(&p)));
        }
    }
    anyhow::ensure!(!forms.is_empty(), "no card to click");
    let clicks = forms.len();
    let forms = Arc::new(forms);
    let host = env.host();
    let forms_m = Arc::clone(&forms);
    let make: MakeRequest = Arc::new(move |seq| {
        let k = usize::try_from(seq).unwrap_or(0) % forms_m.len();
        let (_, form) = &forms_m[k];
        payloads::slack_request(
            &host,
            "/slack/interactions",
            form.clone(),
            SLACK_SECRET,
            now_unix(),
        )
    });
    let click_secs = clicks as f64 / f64::from(args.rate.max(1));
    let r = load::open_loop(
        env.addr,
        args.rate,
        secs(click_secs),
        16,
        0,
        Source::Make(make),
        env.server.as_ref().map(ServerProcess::pid),
    )
    .await?;
    report
        .runs
        .push(Run::open("e2e/click-ack", 16, args.rate, &r));
    let mut click_sent: BTreeMap<IncidentId, SystemTime> = BTreeMap::new();
    for s in &r.samples {
        let (incident, _) = &forms[usize::try_from(s.seq).unwrap_or(0) % forms.len()];
        let first = click_sent.entry(incident.clone()).or_insert(s.sent_at);
        *first = (*first).min(s.sent_at);
    }
    // Each click costs a GET and a PUT against PagerDuty's 960 requests/minute budget, which
    // the client enforces; allow for that queue.
    let deadline =
        Instant::now() + Duration::from_secs(30) + Duration::from_millis(125) * clicks as u32;
    let puts = |env: &Env| -> BTreeMap<String, SystemTime> {
        let mut out = BTreeMap::new();
        for req in env.pd.requests() {
            if req.method == http::Method::PUT
                && let Some(id) = req.path.strip_prefix("/incidents/")
            {
                out.entry(id.to_owned()).or_insert(req.at);
            }
        }
        out
    };
    while puts(&env).len() < clicks && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let put_at = puts(&env);
    let put_latency: Vec<Duration> = click_sent
        .iter()
        .filter_map(|(i, s)| {
            put_at
                .get(i.as_str())
                .and_then(|at| at.duration_since(*s).ok())
        })
        .collect();
    report.figure("e2e/click_to_pd_put_us", percentiles(&put_latency));
    report.figure("e2e/target_p99_us", 5000);
    report.figure("e2e/pd_budget_requests_per_minute", 960);
    report.check(
        "e2e: every click reached PagerDuty as a PUT",
        put_latency.len() == clicks,
        format!("{} of {clicks} clicks", put_latency.len()),
    );
    env.kill9()?;
    Ok(())
}

/// Options of `economy`.
#[derive(Debug, Clone, clap::Args)]
pub struct EconomyArgs {
    /// Incidents in the storm (one channel).
    #[arg(long, default_value_t = 200)]
    pub storm: usize,
    /// Seconds within which every storm incident is acknowledged and resolved in PagerDuty.
    #[arg(long, default_value_t = 60.0)]
    pub window: f64,
    /// Seconds to wait, after the window, for every final state to show.
    #[arg(long, default_value_t = 1200.0)]
    pub settle: f64,
}

fn count_calls(requests: &[fakes::http::RecordedRequest]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for r in requests {
        let key = if let Some(m) = r.path.strip_prefix("/api/") {
            if m == "chat.postMessage" && r.json().get("thread_ts").is_some() {
                "chat.postMessage (thread reply)".to_owned()
            } else {
                m.to_owned()
            }
        } else if r.path.starts_with("/response") {
            "response_url".to_owned()
        } else {
            // Collapse ids: `GET /incidents/Q000001` → `GET /incidents/{id}`.
            let parts: Vec<&str> = r
                .path
                .split('/')
                .enumerate()
                .map(|(i, p)| if i == 2 { "{id}" } else { p })
                .collect();
            format!("{} {}", r.method, parts.join("/"))
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

/// `economy`: API calls per incident lifecycle, and a storm of incidents in one channel with the
/// fake enforcing Slack's limits.
pub async fn economy(
    args: &EconomyArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    // One lifecycle through Slack clicks.
    let mut env = Env::new(EnvOptions {
        slack_limits: true,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    env.start()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slack_before = env.slack.requests().len();
    let pd_before = env.pd.requests().len();
    let incident = env.pd.trigger_incident("lifecycle", &env.policy);
    let (channel, ts) = env
        .wait_card(&incident, Duration::from_secs(20))
        .await
        .context("the lifecycle card never appeared")?;
    let secret = signing::SlackSigningSecret::new(SLACK_SECRET);
    let user = env.users[0].0.clone();
    for (action, want) in [
        ("pdbridge_ack", "Acknowledged"),
        ("pdbridge_resolve", "Resolved"),
    ] {
        env.slack
            .click(
                &env.interactions_url(),
                &secret,
                &user,
                &channel,
                &ts,
                action,
            )
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && !env
                .slack
                .message(&channel, &ts)
                .is_some_and(|m| m.text.contains(want))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    env.drain(Duration::from_millis(500), Duration::from_secs(20))
        .await?;
    let slack_calls = count_calls(&env.slack.requests()[slack_before..]);
    let pd_calls = count_calls(&env.pd.requests()[pd_before..]);
    report.figure(
        "economy/lifecycle_slack_calls_total",
        slack_calls.values().sum::<u64>(),
    );
    report.figure("economy/lifecycle_slack_calls", &slack_calls);
    report.figure(
        "economy/lifecycle_pd_calls_total",
        pd_calls.values().sum::<u64>(),
    );
    report.figure("economy/lifecycle_pd_calls", &pd_calls);
    let final_ok = not_final(&env, std::slice::from_ref(&incident))?.is_empty();
    report.check(
        "economy: lifecycle card ends Resolved",
        final_ok,
        format!("card shows final state: {final_ok}"),
    );
    env.kill9()?;

    // The storm: every incident in the default channel, acked and resolved in PagerDuty.
    let mut env = Env::new(EnvOptions {
        slack_limits: true,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    env.start()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slack_before = env.slack.requests().len();
    let started = Instant::now();
    let window = secs(args.window);
    let mut plan: Vec<(Duration, IncidentId, &'static str)> = Vec::new();
    let mut storm = Vec::with_capacity(args.storm);
    for _ in 0..args.storm {
        let id = env.pd.trigger_incident("storm", &env.policy);
        let ack = window.mul_f64(fastrand::f64() * 0.5);
        let resolve = ack + window.mul_f64(fastrand::f64() * 0.5);
        plan.push((ack, id.clone(), "acknowledged"));
        plan.push((resolve, id.clone(), "resolved"));
        storm.push(id);
    }
    plan.sort();
    for (at, id, status) in plan {
        let wait = at.saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        pd_set_status(&env, &id, status).await?;
    }
    let deadline = Instant::now() + secs(args.settle);
    let mut last_final = None;
    loop {
        let pending = not_final(&env, &storm)?;
        if pending.is_empty() {
            last_final = Some(started.elapsed());
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = not_final(&env, &storm)?;
    let calls = count_calls(&env.slack.requests()[slack_before..]);
    let metrics = env.metrics().await;
    report.figure("economy/storm_incidents", args.storm);
    report.figure("economy/storm_window_s", args.window);
    report.figure(
        "economy/storm_posts",
        calls.get("chat.postMessage").copied().unwrap_or(0),
    );
    report.figure(
        "economy/storm_updates",
        calls.get("chat.update").copied().unwrap_or(0),
    );
    report.figure("economy/storm_slack_calls", &calls);
    report.figure(
        "economy/storm_429s_received",
        metric_sum(
            &metrics,
            "pdbridge_api_rate_limited_total",
            &["platform=\"slack\""],
        ),
    );
    report.figure("economy/storm_final_states_not_shown", missing.len());
    let tracked = env.tracked_cards()?;
    let detail: Vec<String> = missing
        .iter()
        .take(10)
        .map(|i| {
            let pd = env.pd.incident(i).map_or("?", |x| x.status.as_str());
            match tracked.get(i).and_then(|(c, t)| env.slack.message(c, t)) {
                Some(m) => format!("{i}: PD {pd}, card {:?}", m.text),
                None => format!("{i}: PD {pd}, no card"),
            }
        })
        .collect();
    report.figure("economy/storm_not_shown_first_10", &detail);
    report.figure(
        "economy/storm_time_to_last_final_state_s",
        last_final.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
    );
    report.check(
        "economy: every storm card ends showing its final state",
        missing.is_empty(),
        format!(
            "{} of {} not shown: {:?}",
            missing.len(),
            args.storm,
            missing.iter().take(5).collect::<Vec<_>>()
        ),
    );
    env.kill9()?;
    Ok(())
}

/// Options of `memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct MemoryArgs {
    /// Pending outbox rows to build up (cards waiting on Slack's one-post-per-second limit).
    #[arg(long, default_value_t = 100_000)]
    pub rows: i64,
    /// Closed-loop connections while building the backlog.
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    /// Give up building the backlog after this many seconds.
    #[arg(long, default_value_t = 900.0)]
    pub max_seconds: f64,
}

/// `memory`: RSS idle, under ingest load, and with a large pending outbox; WAL size throughout.
pub async fn memory(
    args: &MemoryArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut env = Env::new(EnvOptions {
        slack_limits: true,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    start_reconciled(&mut env).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = env.server.as_ref().context("server")?;
    let pid = server.pid();
    let idle = server.memory();
    report.figure("memory/idle_rss_kib", idle.map(|m| m.rss_kib));
    let sampler =
        crate::bench::Sampler::start(pid, Some(env.db.clone()), Duration::from_millis(50));
    let started = Instant::now();
    let host = env.host();
    let feed = load::Feed {
        template: unique_webhooks(&host, "M")?,
        repeat: false,
    };
    let mut seq = 0u64;
    let mut answered = 0u64;
    let mut errors = 0u64;
    let mut slowest_second = f64::INFINITY;
    // Ingest in one-second rounds while the backlog (processed or not) is short of `rows`, and
    // otherwise let the server turn its inbox into outbox rows, until `rows` effects are pending.
    // The cards wait on Slack's one-post-per-second limit, so the outbox shrinks by about one a
    // second.
    let built = loop {
        let pending = env.pending()?;
        if pending.outbox >= args.rows || started.elapsed() >= secs(args.max_seconds) {
            break pending;
        }
        if pending.outbox + pending.pd_inbox >= args.rows {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let r = load::closed_loop(
            env.addr,
            args.conns,
            Duration::from_secs(1),
            seq,
            feed.clone(),
            None,
        )
        .await?;
        seq = r.next_seq;
        answered += r.successes();
        errors += r.errors + (r.answered - r.successes());
        slowest_second = slowest_second.min(r.rate());
    };
    let under_load = sampler.finish();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = env.pending()?;
    let server = env.server.as_ref().context("server")?;
    let with_backlog = server.memory();
    report.figure("memory/webhooks_accepted", answered);
    report.figure("memory/webhooks_failed_or_timed_out", errors);
    report.figure(
        "memory/backlog_build_s",
        (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    report.figure(
        "memory/slowest_ingest_second_req_per_s",
        if slowest_second.is_finite() {
            slowest_second.round()
        } else {
            0.0
        },
    );
    report.figure("memory/under_load_peak_rss_kib", under_load.max_rss_kib);
    report.figure("memory/pending_outbox_rows", pending.outbox);
    report.figure("memory/unprocessed_inbox_rows", pending.pd_inbox);
    report.figure(
        "memory/with_pending_outbox_rss_kib",
        with_backlog.map(|m| m.rss_kib),
    );
    report.figure("memory/peak_hwm_kib", with_backlog.map(|m| m.hwm_kib));
    report.figure("wal/peak_bytes", under_load.max_wal_bytes);
    report.figure("wal/after_bytes", crate::child::wal_size(&env.db));
    report.figure("memory/target_idle_kib", 16 * 1024);
    report.figure("memory/target_loaded_kib", 64 * 1024);
    report.figure("wal/target_bytes", 64u64 * 1024 * 1024);
    report.check(
        "memory: backlog built",
        built.outbox >= args.rows,
        format!(
            "{} pending outbox rows (wanted {}), {} unprocessed webhooks",
            built.outbox, args.rows, built.pd_inbox
        ),
    );
    env.kill9()?;
    Ok(())
}

/// Options of `outage`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutageArgs {
    /// Incidents during each outage.
    #[arg(long, default_value_t = 5)]
    pub incidents: usize,
    /// Failed answers Slack gives per method while "down".
    #[arg(long, default_value_t = 10)]
    pub slack_failures: usize,
    /// At most this many seconds PagerDuty stays down after the clicks (it comes back as soon as
    /// every clicker was told).
    #[arg(long, default_value_t = 15.0)]
    pub pd_down: f64,
    /// Seconds to wait for recovery.
    #[arg(long, default_value_t = 120.0)]
    pub recovery: f64,
}

fn rank(text: &str) -> u8 {
    if text.contains("Resolved") {
        2
    } else if text.contains("Acknowledged") {
        1
    } else {
        0
    }
}

/// `outage`: Slack down then up; PagerDuty down during clicks then up.
pub async fn outage(
    args: &OutageArgs,
    pinning: Pinning,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut env = Env::new(EnvOptions {
        slack_limits: false,
        pinning,
        ..EnvOptions::default()
    })
    .await?;
    start_reconciled(&mut env).await?;

    // Slack down: every post and update fails for a while.
    for _ in 0..args.slack_failures {
        env.slack
            .inject("chat.postMessage", fakes::slack::Fault::ServerError(503));
        env.slack
            .inject("chat.update", fakes::slack::Fault::ServerError(502));
    }
    let incidents: Vec<IncidentId> = (0..args.incidents)
        .map(|_| env.pd.trigger_incident("slack outage", &env.policy))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = env.pending()?;
    for i in &incidents {
        pd_set_status(&env, i, "acknowledged").await?;
    }
    for i in &incidents {
        pd_set_status(&env, i, "resolved").await?;
    }
    let deadline = Instant::now() + secs(args.recovery);
    let started = Instant::now();
    while !not_final(&env, &incidents)?.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_after = started.elapsed();
    let missing = not_final(&env, &incidents)?;
    let pending = env
        .drain(Duration::from_millis(300), Duration::from_secs(10))
        .await?;
    let tracked = env.tracked_cards()?;
    let mut out_of_order = Vec::new();
    for i in &incidents {
        if let Some((c, t)) = tracked.get(i)
            && let Some(m) = env.slack.message(c, t)
        {
            let mut seen: Vec<u8> = m.edits.iter().map(|(text, _)| rank(text)).collect();
            seen.push(rank(&m.text));
            if seen.windows(2).any(|w| w[1] < w[0]) {
                out_of_order.push(format!("{i}: {seen:?}"));
            }
        }
    }
    report.figure("outage/slack_backlog_during", during);
    report.figure(
        "outage/slack_recovery_s",
        (recovered_after.as_secs_f64() * 10.0).round() / 10.0,
    );
    report.check(
        "outage: Slack down persisted a backlog",
        during.outbox > 0 || during.pd_inbox > 0,
        format!("{during:?}"),
    );
    report.check(
        "outage: after Slack came back every card shows its final state",
        missing.is_empty(),
        format!("not shown: {missing:?}"),
    );
    report.check(
        "outage: per-incident order kept on every card",
        out_of_order.is_empty(),
        format!("status sequences going backwards: {out_of_order:?}"),
    );
    report.check(
        "outage: Slack outage dropped nothing",
        pending.is_idle() && pending.abandoned == 0,
        format!("{pending:?}"),
    );

    // PagerDuty down during clicks.
    let clicked: Vec<IncidentId> = (0..args.incidents)
        .map(|_| env.pd.trigger_incident("pagerduty outage", &env.policy))
        .collect();
    let mut cards = Vec::new();
    for i in &clicked {
        cards.push(
            env.wait_card(i, Duration::from_secs(30))
                .await
                .context("card before the PagerDuty outage")?,
        );
    }
    let told_before = env.slack.ephemerals().len() + env.slack.responses().len();
    env.pd.set_down(true);
    let secret = signing::SlackSigningSecret::new(SLACK_SECRET);
    let mut accepted = 0;
    for (k, (channel, ts)) in cards.iter().enumerate() {
        let user = &env.users[k % env.users.len()].0;
        let reply = env
            .slack
            .click(
                &env.interactions_url(),
                &secret,
                user,
                channel,
                ts,
                "pdbridge_ack",
            )
            .await?;
        if reply.status.as_u16() == 200 {
            accepted += 1;
        }
    }
    // Stay down until every clicker was told, or at most `pd_down` seconds.
    let down_since = Instant::now();
    let told_count =
        |env: &Env| env.slack.ephemerals().len() + env.slack.responses().len() - told_before;
    while told_count(&env) < accepted && down_since.elapsed() < secs(args.pd_down) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let told = told_count(&env);
    report.figure(
        "outage/pd_down_s_until_users_told",
        (down_since.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    env.pd.set_down(false);
    let deadline = Instant::now() + secs(args.recovery);
    let applied = |env: &Env| {
        clicked
            .iter()
            .filter(|i| {
                env.pd
                    .incident(i)
                    .is_some_and(|x| x.status.as_str() == "acknowledged")
            })
            .count()
    };
    while (applied(&env) < accepted || !not_final(&env, &clicked)?.is_empty())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = env
        .drain(Duration::from_millis(300), Duration::from_secs(10))
        .await?;
    report.check(
        "outage: clicks during the PagerDuty outage were accepted",
        accepted == clicked.len(),
        format!("{accepted} of {} answered 200", clicked.len()),
    );
    report.check(
        "outage: users were told about the PagerDuty outage",
        told > 0,
        format!("{told} ephemeral or response_url messages while PagerDuty was down"),
    );
    report.check(
        "outage: every click applied after PagerDuty came back",
        applied(&env) == clicked.len(),
        format!(
            "{} of {} acknowledged in PagerDuty",
            applied(&env),
            clicked.len()
        ),
    );
    report.check(
        "outage: cards show the result after PagerDuty came back",
        not_final(&env, &clicked)?.is_empty(),
        format!("not shown: {:?}", not_final(&env, &clicked)?),
    );
    report.check(
        "outage: PagerDuty outage dropped nothing",
        pending.is_idle() && pending.abandoned == 0,
        format!("{pending:?}"),
    );
    env.kill9()?;
    Ok(())
}
