//! The declare modal and text form as pure functions: parsing `/pd trigger` text, the
//! shortcut's prefill, and a modal within Slack's limits for any configuration.

use std::collections::BTreeMap;

use ids::ServiceId;
use pdbridge::config::{Config, DeclareConfig};
use pdbridge::declare::form::{
    self, DeclareContext, Prefill, SERVICE_BLOCK, SEVERITY_BLOCK, TITLE_BLOCK,
};

fn config(extra: &str) -> DeclareConfig {
    let text = format!(
        "[pagerduty]\ntoken = \"t\"\nwebhook_secrets = [\"w\"]\n\
         [slack]\nbot_token = \"b\"\nsigning_secret = \"s\"\ndefault_channel = \"C1\"\n\
         [declare]\ndefault_service = \"api\"\n{extra}"
    );
    Config::from_toml_str(&text, &BTreeMap::new())
        .unwrap()
        .declare
        .unwrap()
}

fn services() -> &'static str {
    "services = { api = \"PAPI001\", db = \"PDAT001\" }\n"
}

#[test]
fn a_complete_text_request_is_read_case_insensitively() {
    let c = config(services());
    let r = form::parse_text(&c, "  DB sev-2   Database  performance issue ").unwrap();
    assert_eq!(r.services, [("db".to_owned(), ServiceId::new("PDAT001"))]);
    assert_eq!(r.severity, "SEV-2");
    assert_eq!(r.title, "Database  performance issue");
    assert_eq!(r.details, None);
}

#[test]
fn anything_missing_unknown_or_too_long_opens_the_modal_with_the_reason() {
    let c = config(services());
    let empty = form::parse_text(&c, "").unwrap_err();
    assert_eq!(empty.services, ["api"]);
    assert!(empty.reasons.is_empty());

    let only_service = form::parse_text(&c, "db").unwrap_err();
    assert_eq!(only_service.services, ["db"]);
    assert_eq!(only_service.reasons[SEVERITY_BLOCK], "Choose a severity.");
    assert_eq!(only_service.reasons[TITLE_BLOCK], "Write a title.");

    let long = format!("api SEV-1 {}", "é".repeat(256));
    let too_long = form::parse_text(&c, &long).unwrap_err();
    assert!(too_long.reasons[TITLE_BLOCK].contains("this one has 256"));
    assert_eq!(too_long.services, ["api"]);

    let unknown = form::parse_text(&c, "PNOPE01 SEV-1 Title").unwrap_err();
    assert!(unknown.reasons[SERVICE_BLOCK].contains("api, db"));
    assert!(!unknown.reasons[SERVICE_BLOCK].contains("search"));
}

#[test]
fn with_search_services_the_text_form_takes_a_service_id() {
    let c = config(&format!("{}search_services = true\n", services()));
    let r = form::parse_text(&c, "PPAY001 SEV-3 Refunds stuck").unwrap();
    assert_eq!(
        r.services,
        [("PPAY001".to_owned(), ServiceId::new("PPAY001"))]
    );
    let r = form::parse_text(&c, "PDAT001 SEV-3 Slow").unwrap();
    assert_eq!(r.services, [("db".to_owned(), ServiceId::new("PDAT001"))]);
    assert!(form::parse_text(&c, "lowercase SEV-3 Slow").is_err());
}

#[test]
fn the_shortcut_prefill_takes_the_first_line_and_the_permalink() {
    let c = config(services());
    let p = form::from_message(
        &c,
        "\n  Payments failing  \nsince 10:02",
        Some("https://acme.slack.com/archives/C1/p1"),
    );
    assert_eq!(p.title.as_deref(), Some("Payments failing"));
    let details = p.details.unwrap();
    assert!(details.starts_with("Payments failing"), "{details}");
    assert!(details.ends_with("From Slack: https://acme.slack.com/archives/C1/p1"));
    assert!(p.reasons.is_empty());
    let long = form::from_message(&c, &"x".repeat(300), None);
    assert!(long.reasons.contains_key(TITLE_BLOCK));
}

#[test]
fn the_modal_fits_slacks_limits_for_many_services_and_long_prefills() {
    let many: String = (0..150)
        .map(|n| format!("svc{n} = \"P{n:06}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let severities: String = (0..120)
        .map(|n| format!("{{ name = \"S{n}{}\", urgency = \"low\" }}", "x".repeat(80)))
        .collect::<Vec<_>>()
        .join(", ");
    let c = config(&format!(
        "services = {{ api = \"PAPI001\", {many} }}\nseverities = [{severities}]\n"
    ));
    let prefill = Prefill {
        services: vec!["api".to_owned()],
        title: Some("t".repeat(1000)),
        details: Some("d".repeat(5000)),
        reasons: [(TITLE_BLOCK, "r".repeat(5000))].into_iter().collect(),
        ..Prefill::default()
    };
    let ctx = DeclareContext {
        response_url: Some("https://hooks.slack.com/commands/T1/2/3".to_owned()),
        ..DeclareContext::default()
    };
    for search in [false, true] {
        let mut c = c.clone();
        c.search_services = search;
        let view = serde_json::to_value(form::modal(&c, &prefill, &ctx)).unwrap();
        fakes::block_kit::check_view(&view).unwrap();
    }
}
