//! Each call gets a span with method, path template, status and latency, and nothing logged
//! contains the token or a body.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fakes::pd::{FakePagerDuty, Fault};
use ids::Email;
use pd_client::{Auth, Config, PdClient, Secret};
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn spans_carry_call_facts_but_no_secrets_or_bodies() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice", "alice@example.com");
    let ep = fake.add_escalation_policy("PEP1", "EP", vec![vec![alice]]);
    let id = fake.add_incident("Secret project", &ep);
    fake.push_fault(Fault::ServerError(500));
    let mut config = Config::new(Auth::Token(Secret::new("token-value-do-not-log")));
    config.base_url = fake.url().parse().unwrap();
    config.retry.base_delay = Duration::from_millis(1);
    let pd = PdClient::new(config).unwrap();
    pd.add_note(
        &id,
        &Email::new("alice@example.com"),
        "note-body-do-not-log",
    )
    .await
    .unwrap();

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("pagerduty.call"), "{text}");
    assert!(text.contains("path=\"/incidents/{id}/notes\""), "{text}");
    assert!(text.contains("method=POST"), "{text}");
    assert!(text.contains("status=500"), "{text}");
    assert!(text.contains("status=200"), "{text}");
    assert!(text.contains("latency_ms="), "{text}");
    assert!(!text.contains("token-value-do-not-log"), "{text}");
    assert!(!text.contains("note-body-do-not-log"), "{text}");
    assert!(!text.contains("alice@example.com"), "{text}");
}
