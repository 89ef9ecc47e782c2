//! `GET /log_entries` against the fake PagerDuty: pages, order, `since`, and the full incident.

use std::time::Duration;

use fakes::pd::FakePagerDuty;
use pd_client::rest::LogIncident;
use pd_client::{Auth, Config, PdClient, Secret};
use time::OffsetDateTime;

fn client(fake: &FakePagerDuty) -> PdClient {
    let mut config = Config::new(Auth::Token(Secret::new("test-token")));
    config.base_url = fake.url().parse().unwrap();
    config.timeout = Duration::from_secs(2);
    PdClient::new(config).unwrap()
}

#[tokio::test]
async fn pages_list_the_newest_first_with_each_full_incident() {
    let fake = FakePagerDuty::start().await;
    let alice = fake.add_user("PALICE1", "Alice Admin", "alice@example.com");
    let ep = fake.add_escalation_policy("PEP0001", "Ops", vec![vec![alice]]);
    let since = OffsetDateTime::now_utc() - Duration::from_secs(5);
    let mut ids = Vec::new();
    for n in 0..130 {
        ids.push(fake.trigger_incident(&format!("Incident {n}"), &ep));
    }
    let pd = client(&fake);
    let first = pd.log_entries_page(since, None, 0).await.unwrap();
    assert_eq!(first.entries.len(), 100);
    assert_eq!(first.next_offset, Some(100));
    assert!(!first.truncated);
    let second = pd.log_entries_page(since, None, 100).await.unwrap();
    assert_eq!(second.entries.len(), 30);
    assert_eq!(second.next_offset, None);
    // Newest first: the last incident triggered is listed first, the first one last.
    let listed: Vec<_> = first.entries.iter().chain(&second.entries).collect();
    assert_eq!(listed[0].incident.id(), &ids[129]);
    assert_eq!(listed[129].incident.id(), &ids[0]);
    assert!(listed.iter().all(|e| e.kind == "trigger_log_entry"));
    let LogIncident::Full(incident) = &listed[0].incident else {
        panic!("include[]=incidents gives the whole incident");
    };
    assert_eq!(incident.title, "Incident 129");
    // Entries before `since` are not listed.
    let later = OffsetDateTime::now_utc() + Duration::from_secs(5);
    let none = pd.log_entries_page(later, None, 0).await.unwrap();
    assert!(none.entries.is_empty());
    let query = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/log_entries")
        .and_then(|r| r.query)
        .unwrap();
    assert!(query.contains("include%5B%5D=incidents"), "{query}");
}
