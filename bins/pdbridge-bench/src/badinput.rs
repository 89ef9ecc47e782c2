//! The bad-input table: forged, stale, replayed, truncated, oversized, wrong-content-type and
//! garbage requests to every endpoint, each with its expected status, and proof that nothing was
//! written for them (every table's row count unchanged, no call reached the fakes).
//!
//! Replays need an original: a valid signed request is sent first (it may write), then the
//! byte-identical replay must write nothing more.
//!
//! A signed body that does not parse is the one row that writes: exactly one `pd_unparsed` row.
//! Slow clients (slowloris) are rows too: connections that never finish their request head must
//! be closed by the server without an answer (status 0) while others are still served, and a
//! body that stops arriving is answered 408; neither writes anything.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::Full;
use serde::Serialize;

use crate::harness::{DEFAULT_CHANNEL, Env};
use crate::load::send_one;
use crate::payloads::{self, IncidentEvent, PD_SECRET, SLACK_SECRET, now_unix};
use crate::report::Report;

/// A body just over pdbridge's 256 KiB limit.
const OVERSIZED: usize = 256 * 1024 + 1;

/// One row of the table as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The endpoint.
    pub endpoint: &'static str,
    /// The case.
    pub case: &'static str,
    /// The status expected.
    pub expected: u16,
    /// The status received (0 when the request failed below HTTP).
    pub got: u16,
    /// Rows added per table by this request (empty when none).
    pub written: BTreeMap<String, i64>,
}

struct Case {
    endpoint: &'static str,
    name: &'static str,
    expected: u16,
    request: Request<Full<Bytes>>,
}

fn raw(
    host: &str,
    method: http::Method,
    path: &str,
    content_type: Option<&str>,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host);
    if let Some(ct) = content_type {
        b = b.header(CONTENT_TYPE, ct);
    }
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(body.into()))
        .expect("static request parts are valid")
}

fn webhook_for(incident: &str, event_id: &str) -> Bytes {
    payloads::webhook_body(
        &IncidentEvent {
            event_id,
            event_type: "incident.triggered",
            incident,
            status: "triggered",
            service: "PBADSVC",
            agent: "PBENCH000",
            occurred_at: "2026-01-01T00:00:00.000Z",
            title: "bad input",
        },
        0,
    )
}

fn pd_signed(
    host: &str,
    body: &[u8],
    signed_over: &[u8],
    ct: &str,
    id: &str,
) -> Request<Full<Bytes>> {
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(PD_SECRET), signed_over);
    raw(
        host,
        http::Method::POST,
        "/pagerduty/webhook",
        Some(ct),
        &[
            (signing::PAGERDUTY_SIGNATURE_HEADER, sig),
            ("x-webhook-id", id.to_owned()),
        ],
        Bytes::copy_from_slice(body),
    )
}

fn slack_signed(
    host: &str,
    path: &str,
    body: &[u8],
    signed_over: &[u8],
    ct: &str,
    secret: &str,
    ts: i64,
) -> Request<Full<Bytes>> {
    let sig = signing::sign_slack(&signing::SlackSigningSecret::new(secret), ts, signed_over);
    raw(
        host,
        http::Method::POST,
        path,
        Some(ct),
        &[
            (signing::SLACK_TIMESTAMP_HEADER, ts.to_string()),
            (signing::SLACK_SIGNATURE_HEADER, sig),
        ],
        Bytes::copy_from_slice(body),
    )
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// The cases that must write nothing.
fn cases(host: &str) -> Vec<Case> {
    let body = webhook_for("PBAD0001", "EBAD0001");
    let now = now_unix();
    let click = payloads::interaction_form(&payloads::block_action(
        "UBENCH000",
        "T0FAKE001",
        DEFAULT_CHANNEL,
        "1700000000.000100",
        "PBAD0001",
        "pdbridge_ack",
        "http://127.0.0.1:9/response",
    ));
    let command = Bytes::from_static(
        b"command=%2Fpd&text=help&user_id=UBENCH000&team_id=T0FAKE001&channel_id=CBENCH0000\
          &response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr&trigger_id=1.2.3",
    );
    let tampered = String::from_utf8_lossy(&body)
        .replace("bad input", "bad inpuT")
        .into_bytes();
    let big_json = {
        let mut v = body.to_vec();
        v.resize(OVERSIZED, b' ');
        v
    };
    let big_form = {
        let mut v = click.to_vec();
        v.resize(OVERSIZED, b'x');
        v
    };
    let wrong = |path: &'static str| {
        let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new("not-the-secret"), &body);
        raw(
            host,
            http::Method::POST,
            path,
            Some(JSON),
            &[(signing::PAGERDUTY_SIGNATURE_HEADER, sig)],
            body.clone(),
        )
    };
    let pd = "/pagerduty/webhook";
    let si = "/slack/interactions";
    let sc = "/slack/commands";
    let mut out = vec![
        Case {
            endpoint: pd,
            name: "forged signature",
            expected: 401,
            request: wrong(pd),
        },
        Case {
            endpoint: pd,
            name: "missing signature",
            expected: 401,
            request: raw(
                host,
                http::Method::POST,
                pd,
                Some(JSON),
                &[("x-webhook-id", "wh-bad-1".into())],
                body.clone(),
            ),
        },
        Case {
            endpoint: pd,
            name: "malformed signature header",
            expected: 401,
            request: raw(
                host,
                http::Method::POST,
                pd,
                Some(JSON),
                &[(
                    signing::PAGERDUTY_SIGNATURE_HEADER,
                    "v1=not-hex,v2=,=".into(),
                )],
                body.clone(),
            ),
        },
        Case {
            endpoint: pd,
            name: "5,000 signature entries over a 256 KiB body (valid one last)",
            expected: 401,
            request: {
                let big = {
                    let mut v = body.to_vec();
                    v.resize(OVERSIZED - 1, b' ');
                    v
                };
                let good = signing::sign_pagerduty(&signing::PagerDutySecret::new(PD_SECRET), &big);
                let mut entries = vec![format!("v1={}", "0".repeat(64)); 4999];
                entries.push(good);
                raw(
                    host,
                    http::Method::POST,
                    pd,
                    Some(JSON),
                    &[
                        (signing::PAGERDUTY_SIGNATURE_HEADER, entries.join(",")),
                        ("x-webhook-id", "wh-bad-flood".into()),
                    ],
                    big,
                )
            },
        },
        Case {
            endpoint: pd,
            name: "body tampered after signing",
            expected: 401,
            request: pd_signed(host, &tampered, &body, JSON, "wh-bad-2"),
        },
        Case {
            endpoint: pd,
            name: "truncated body",
            expected: 401,
            request: pd_signed(host, &body[..body.len() / 2], &body, JSON, "wh-bad-3"),
        },
        Case {
            endpoint: pd,
            name: "oversized body (signed)",
            expected: 413,
            request: pd_signed(host, &big_json, &big_json, JSON, "wh-bad-4"),
        },
        Case {
            endpoint: pd,
            name: "pagey.ping (signed)",
            expected: 200,
            request: pd_signed(
                host,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../fixtures/pagerduty-webhooks/pagey.ping.json"
                )),
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../fixtures/pagerduty-webhooks/pagey.ping.json"
                )),
                JSON,
                "wh-bad-6",
            ),
        },
        Case {
            endpoint: pd,
            name: "GET instead of POST",
            expected: 405,
            request: raw(host, http::Method::GET, pd, None, &[], Bytes::new()),
        },
        Case {
            endpoint: "/nope",
            name: "unknown path",
            expected: 404,
            request: raw(
                host,
                http::Method::POST,
                "/nope",
                Some(JSON),
                &[],
                body.clone(),
            ),
        },
    ];
    for (path, good) in [(si, &click), (sc, &command)] {
        out.extend([
            Case {
                endpoint: path,
                name: "forged signature",
                expected: 401,
                request: slack_signed(host, path, good, good, FORM, "not-the-secret", now),
            },
            Case {
                endpoint: path,
                name: "stale timestamp (10 min old)",
                expected: 401,
                request: slack_signed(host, path, good, good, FORM, SLACK_SECRET, now - 600),
            },
            Case {
                endpoint: path,
                name: "timestamp 10 min in the future",
                expected: 401,
                request: slack_signed(host, path, good, good, FORM, SLACK_SECRET, now + 600),
            },
            Case {
                endpoint: path,
                name: "missing signature headers",
                expected: 401,
                request: raw(
                    host,
                    http::Method::POST,
                    path,
                    Some(FORM),
                    &[],
                    good.clone(),
                ),
            },
            Case {
                endpoint: path,
                name: "malformed timestamp",
                expected: 401,
                request: raw(
                    host,
                    http::Method::POST,
                    path,
                    Some(FORM),
                    &[
                        (signing::SLACK_TIMESTAMP_HEADER, "12abc".into()),
                        (signing::SLACK_SIGNATURE_HEADER, "v0=00".into()),
                    ],
                    good.clone(),
                ),
            },
            Case {
                endpoint: path,
                name: "truncated body",
                expected: 401,
                request: slack_signed(
                    host,
                    path,
                    &good[..good.len() / 2],
                    good,
                    FORM,
                    SLACK_SECRET,
                    now,
                ),
            },
            Case {
                endpoint: path,
                name: "oversized body (signed)",
                expected: 413,
                request: slack_signed(host, path, &big_form, &big_form, FORM, SLACK_SECRET, now),
            },
            Case {
                endpoint: path,
                name: "JSON body (signed), wrong content type",
                expected: 400,
                request: slack_signed(
                    host,
                    path,
                    br#"{"type":"block_actions"}"#,
                    br#"{"type":"block_actions"}"#,
                    JSON,
                    SLACK_SECRET,
                    now,
                ),
            },
            Case {
                endpoint: path,
                name: "garbage form (signed)",
                expected: 400,
                request: slack_signed(
                    host,
                    path,
                    b"payload=%7Bnot-json",
                    b"payload=%7Bnot-json",
                    FORM,
                    SLACK_SECRET,
                    now,
                ),
            },
            Case {
                endpoint: path,
                name: "empty body (signed)",
                expected: 400,
                request: slack_signed(host, path, b"", b"", FORM, SLACK_SECRET, now),
            },
        ]);
    }
    out
}

/// Waits until no table's row count changes for 300 ms (at most 5 s), so asynchronous work of
/// earlier requests is not charged to the next one; returns the settled counts.
async fn settled_counts(env: &Env) -> anyhow::Result<BTreeMap<String, i64>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut last = env.table_counts()?;
    let mut stable_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = env.table_counts()?;
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    Ok(last)
}

fn diff(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n - before.get(k).copied().unwrap_or(0);
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Runs the table against a started `env`; fills `report` with one check per case and the
/// table itself under `bad_input/table`.
pub async fn run(env: &Env, report: &mut Report) -> anyhow::Result<()> {
    let host = env.host();
    // Let start-up work (the first reconciliation) finish before counting calls.
    settled_counts(env).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slack_calls = env.slack.requests().len();
    let pd_calls = env.pd.requests().len();
    let mut table = Vec::new();
    for case in cases(&host) {
        let before = env.table_counts()?;
        let got = send_one(env.addr, case.request).await.map_or(0, |(s, _)| s);
        let after = env.table_counts()?;
        let written = diff(&before, &after);
        report.check(
            format!("bad input {} {}", case.endpoint, case.name),
            got == case.expected && written.is_empty(),
            format!(
                "expected {}, got {got}; rows written: {written:?}",
                case.expected
            ),
        );
        table.push(Outcome {
            endpoint: case.endpoint,
            case: case.name,
            expected: case.expected,
            got,
            written,
        });
    }
    unparsed(env, &host, report, &mut table).await?;
    slow_clients(env, &host, report, &mut table).await?;
    // Anything the server would do for a request happens right after it; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new_slack: Vec<String> = env.slack.requests()[slack_calls..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let new_pd: Vec<String> = env.pd.requests()[pd_calls..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    report.check(
        "bad input caused no call to Slack or PagerDuty",
        new_slack.is_empty() && new_pd.is_empty(),
        format!("Slack calls: {new_slack:?}; PagerDuty calls: {new_pd:?}"),
    );
    replays(env, &host, report, &mut table).await?;
    hostile_title(env, &host, report, &mut table).await?;
    report.figure("bad_input/table", &table);
    Ok(())
}

/// A signed body that is not JSON: answered 200 (PagerDuty must not count a drop) and kept raw
/// as unparsed for operators, so it writes exactly one `pd_unparsed` row and nothing else.
async fn unparsed(
    env: &Env,
    host: &str,
    report: &mut Report,
    table: &mut Vec<Outcome>,
) -> anyhow::Result<()> {
    let garbage: &[u8] = b"\x00\xffnot json at all";
    let before = env.table_counts()?;
    let request = pd_signed(host, garbage, garbage, "text/plain", "wh-bad-5");
    let got = send_one(env.addr, request).await.map_or(0, |(s, _)| s);
    let written = diff(&before, &env.table_counts()?);
    let want: BTreeMap<String, i64> = [("pd_unparsed".to_owned(), 1)].into();
    report.check(
        "bad input /pagerduty/webhook garbage body (signed), wrong content type",
        got == 200 && written == want,
        format!("expected 200 and one pd_unparsed row, got {got}; rows written: {written:?}"),
    );
    table.push(Outcome {
        endpoint: "/pagerduty/webhook",
        case: "garbage body (signed), wrong content type (kept raw in pd_unparsed only)",
        expected: 200,
        got,
        written,
    });
    Ok(())
}

/// How many connections the slowloris row holds open at once.
const SLOW_CONNECTIONS: usize = 200;
/// How long the server may take to cut a stalled client: its 10 s deadlines plus slack.
const SLOW_CUT_WITHIN: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection; returns the bytes it answered, or `None` when
/// it stayed open past [`SLOW_CUT_WITHIN`].
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(SLOW_CUT_WITHIN, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| answer)
}

/// The status of a raw HTTP/1.1 answer (0 when there is none).
fn status_of(answer: &[u8]) -> u16 {
    answer
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Slowloris rows: [`SLOW_CONNECTIONS`] connections that stall inside their request head, and
/// one signed delivery whose body stops halfway. Both run at once; `/healthz` must be answered
/// while they are open, the stalled heads must be closed without an answer and the stalled body
/// answered 408, and nothing may be written.
async fn slow_clients(
    env: &Env,
    host: &str,
    report: &mut Report,
    table: &mut Vec<Outcome>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let before = env.table_counts()?;
    let mut heads = Vec::with_capacity(SLOW_CONNECTIONS);
    for _ in 0..SLOW_CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(env.addr).await?;
        stream
            .write_all(
                format!("POST /pagerduty/webhook HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").as_bytes(),
            )
            .await?;
        heads.push(stream);
    }
    let body = webhook_for("PSLOW0001", "ESLOW0001");
    let sig = signing::sign_pagerduty(&signing::PagerDutySecret::new(PD_SECRET), &body);
    let mut slow_body = tokio::net::TcpStream::connect(env.addr).await?;
    slow_body
        .write_all(
            format!(
                "POST /pagerduty/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: {JSON}\r\n\
                 {}: {sig}\r\nX-Webhook-Id: wh-bad-slow-body\r\nContent-Length: {}\r\n\r\n",
                signing::PAGERDUTY_SIGNATURE_HEADER,
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    slow_body.write_all(&body[..body.len() / 2]).await?;
    let healthz = raw(host, http::Method::GET, "/healthz", None, &[], Bytes::new());
    let served = tokio::time::timeout(Duration::from_secs(5), send_one(env.addr, healthz))
        .await
        .ok()
        .and_then(Result::ok)
        .map_or(0, |(s, _)| s);
    report.check(
        format!(
            "bad input /healthz answered while {SLOW_CONNECTIONS} stalled connections are open"
        ),
        served == 200,
        format!("expected 200 within 5 s, got {served}"),
    );
    let body_answer = until_closed(&mut slow_body).await;
    let mut cut = 0;
    let mut answered = 0;
    for stream in &mut heads {
        match until_closed(stream).await {
            Some(answer) if answer.is_empty() => cut += 1,
            Some(_) => answered += 1,
            None => {}
        }
    }
    let written = diff(&before, &settled_counts(env).await?);
    // 0 is the expected "closed without an answer"; 1 stands for any other ending (detailed in
    // the check), since no single status describes it.
    let head_got = if cut == SLOW_CONNECTIONS { 0 } else { 1 };
    report.check(
        "bad input /pagerduty/webhook slowloris: request head never completed",
        head_got == 0 && written.is_empty(),
        format!(
            "{cut} of {SLOW_CONNECTIONS} stalled connections closed without an answer, {answered} answered, \
             the rest still open after {SLOW_CUT_WITHIN:?}; rows written: {written:?}"
        ),
    );
    table.push(Outcome {
        endpoint: "/pagerduty/webhook",
        case: "slowloris: 200 connections stall inside the request head (closed, no answer)",
        expected: 0,
        got: head_got,
        written: written.clone(),
    });
    let body_got = body_answer.as_deref().map_or(0, status_of);
    report.check(
        "bad input /pagerduty/webhook signed body that stops halfway",
        body_got == 408 && written.is_empty(),
        format!("expected 408, got {body_got}; rows written: {written:?}"),
    );
    table.push(Outcome {
        endpoint: "/pagerduty/webhook",
        case: "signed body that stops halfway (body deadline)",
        expected: 408,
        got: body_got,
        written,
    });
    Ok(())
}

/// Byte-identical replays of a valid webhook and of a valid click: the original may write, the
/// replay must not. They run after the no-call check, since originals legitimately cause calls.
async fn replays(
    env: &Env,
    host: &str,
    report: &mut Report,
    table: &mut Vec<Outcome>,
) -> anyhow::Result<()> {
    let body = webhook_for("PREPLAY01", "EREPLAY01");
    let original = pd_signed(host, &body, &body, JSON, "wh-replay-1");
    let replay = pd_signed(host, &body, &body, JSON, "wh-replay-1");
    let first = send_one(env.addr, original).await.map_or(0, |(s, _)| s);
    let before = settled_counts(env).await?;
    let got = send_one(env.addr, replay).await.map_or(0, |(s, _)| s);
    let written = diff(&before, &settled_counts(env).await?);
    report.check(
        "bad input /pagerduty/webhook replayed delivery",
        first == 202 && got == 200 && written.is_empty(),
        format!("original {first} (expected 202), replay {got} (expected 200); rows written by the replay: {written:?}"),
    );
    table.push(Outcome {
        endpoint: "/pagerduty/webhook",
        case: "replayed delivery (same X-Webhook-Id and body)",
        expected: 200,
        got,
        written,
    });

    // A click replayed with its original signature and timestamp.
    let ts = now_unix();
    let form = payloads::interaction_form(&payloads::block_action(
        env.users[0].0.as_str(),
        env.slack.team_id().as_str(),
        DEFAULT_CHANNEL,
        "1700000000.000200",
        "PREPLAY01",
        "pdbridge_ack",
        &env.slack.new_response_url(),
    ));
    let si = "/slack/interactions";
    let first = send_one(
        env.addr,
        slack_signed(host, si, &form, &form, FORM, SLACK_SECRET, ts),
    )
    .await
    .map_or(0, |(s, _)| s);
    let before = settled_counts(env).await?;
    let got = send_one(
        env.addr,
        slack_signed(host, si, &form, &form, FORM, SLACK_SECRET, ts),
    )
    .await
    .map_or(0, |(s, _)| s);
    let written = diff(&before, &settled_counts(env).await?);
    report.check(
        "bad input /slack/interactions replayed click",
        first == 200 && got == 200 && written.is_empty(),
        format!("original {first}, replay {got} (expected 200 both); rows written by the replay: {written:?}"),
    );
    table.push(Outcome {
        endpoint: si,
        case: "replayed click (same signature and timestamp)",
        expected: 200,
        got,
        written,
    });
    Ok(())
}

/// A valid delivery whose title breaks every Block Kit limit once escaped (Slack markup that
/// would ping the channel, `&` that escapes to five characters, an emoji ZWJ sequence): it is
/// accepted, and its card is posted in full (the fake Slack refuses anything over a limit, so a
/// posted full card proves it fits) with the markup escaped; the minimal fallback card, which
/// only a refusal brings, must not appear. It writes, as any valid delivery does.
async fn hostile_title(
    env: &Env,
    host: &str,
    report: &mut Report,
    table: &mut Vec<Outcome>,
) -> anyhow::Result<()> {
    let title = format!(
        "{}{}{}",
        "<!channel> <@U0BOSS> ".repeat(200),
        "&".repeat(3000),
        "👩\u{200d}👩\u{200d}👧".repeat(100)
    );
    let body = payloads::webhook_body(
        &IncidentEvent {
            event_id: "EHOSTILE01",
            event_type: "incident.triggered",
            incident: "PHOSTILE01",
            status: "triggered",
            service: "PBADSVC",
            agent: "PBENCH000",
            occurred_at: "2026-01-01T00:00:00.000Z",
            title: &title,
        },
        0,
    );
    let before = settled_counts(env).await?;
    let request = pd_signed(host, &body, &body, JSON, "wh-hostile-1");
    let got = send_one(env.addr, request).await.map_or(0, |(s, _)| s);
    let channel = ids::ChannelId::new(DEFAULT_CHANNEL);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let card = loop {
        let card = env
            .slack
            .messages(&channel)
            .into_iter()
            .find(|m| m.text.contains("&lt;!channel&gt; &lt;@U0BOSS&gt;"));
        if card.is_some() || std::time::Instant::now() > deadline {
            break card;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let written = diff(&before, &settled_counts(env).await?);
    let blocks = card
        .as_ref()
        .map(|c| c.blocks.to_string())
        .unwrap_or_default();
    let full = card.is_some() && !blocks.contains("Slack refused") && blocks.contains("fields");
    let mrkdwn_clean = card.as_ref().is_some_and(|c| {
        c.blocks
            .as_array()
            .into_iter()
            .flatten()
            .all(|b| b["type"] == "header" || !b.to_string().contains("<!channel>"))
    });
    report.check(
        "bad input /pagerduty/webhook title over every Slack limit",
        got == 202 && full && mrkdwn_clean,
        format!(
            "status {got} (expected 202); full card posted within limits: {full}; \
             markup escaped outside plain text: {mrkdwn_clean}"
        ),
    );
    table.push(Outcome {
        endpoint: "/pagerduty/webhook",
        case: "title over every Slack limit (valid delivery; its card must still post in full)",
        expected: 202,
        got,
        written,
    });
    Ok(())
}
