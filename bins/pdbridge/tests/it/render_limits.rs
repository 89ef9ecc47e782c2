//! Every rendered message and modal stays within Slack's documented Block Kit limits (checked by
//! the fake Slack's own validator, `fakes::block_kit`) and mentions, pings or links nobody the
//! renderer did not mean to, whatever the titles, notes and names PagerDuty sends.

use std::collections::BTreeSet;

use fakes::block_kit;
use ids::{ChannelId, IncidentId, MessageTs, PdUserId, SlackUserId};
use pdbridge::render::{self, Mentions, Message, ModalContext};
use proptest::prelude::*;
use serde_json::Value;
use sync_core::{
    ActionKind, CardView, DeclaredView, LineActor, LineKind, Named, PendingView, Status,
    TimelineLine, Urgency,
};

/// Text pieces that stress escaping, mentions, entities and grapheme clusters.
const PIECES: &[&str] = &[
    "a",
    "Database down ",
    "é",
    "e\u{301}",
    "\u{915}\u{94d}\u{937}",
    "👩\u{200d}👩\u{200d}👧",
    "🏳️\u{200d}🌈",
    "中文标题",
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<@W999|boss>",
    "<#C123>",
    "<https://evil.example|click me>",
    "|",
    "*bold*",
    " ",
    "\n",
    "  ",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => "\\PC{0,40}",
    ]
}

/// Arbitrary text from empty to several thousand characters (past every limit once escaped).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::collection::vec(piece(), 0..12).prop_map(|p| p.concat()),
        1 => (prop::collection::vec(piece(), 1..6), 1usize..700)
            .prop_map(|(p, times)| p.concat().repeat(times)),
    ]
}

fn slack_user() -> impl Strategy<Value = SlackUserId> {
    "U[A-Z0-9]{2,10}".prop_map(SlackUserId::new)
}

#[derive(Debug, Clone)]
struct Case {
    card: CardView,
    mentions: Mentions,
}

fn card_case() -> impl Strategy<Value = Case> {
    let people = prop::collection::vec((text(), prop::option::of(slack_user())), 0..8);
    let pending = prop::option::of((slack_user(), prop::option::of(text())));
    let url = prop_oneof![
        Just(None),
        Just(Some("https://acme.pagerduty.com/incidents/Q1".to_owned())),
        text().prop_map(Some),
        Just(Some("!channel".to_owned())),
        Just(Some("@U123".to_owned())),
    ];
    (
        (text(), text(), text(), text()),
        people,
        pending,
        prop::option::of(text()),
        url,
        (
            prop::option::of(1u64..100_000),
            0usize..3,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((title, service, priority, policy), people, pending, error, html_url, misc)| {
                let (number, status, urgent, minimal) = misc;
                let mut mentions = Mentions::new();
                let assignees = people
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, slack))| {
                        let id = PdUserId::new(format!("P{i}"));
                        if let Some(slack) = slack {
                            mentions.insert(id.clone(), slack);
                        }
                        Named::new(id, name)
                    })
                    .collect();
                let status = [Status::Triggered, Status::Acknowledged, Status::Resolved][status];
                let pending = pending.map(|(by, why)| {
                    // Built exactly as the engine builds it, with a PagerDuty error inside.
                    let mut text = format!("Acknowledging… requested by <@{by}>");
                    if let Some(why) = why {
                        text.push_str(&format!(" (retrying: {why})"));
                    }
                    PendingView {
                        kind: ActionKind::Acknowledge,
                        requested_by: by,
                        retry: 1,
                        text,
                    }
                });
                let card = CardView {
                    incident: IncidentId::new("Q1ABCDEF"),
                    number,
                    title,
                    html_url,
                    status,
                    urgency: Some(if urgent { Urgency::High } else { Urgency::Low }),
                    priority: Some(priority),
                    service: Some(service),
                    assignees,
                    escalation_policy: Some(policy),
                    escalation_level: Some(2),
                    last_level: (!urgent).then_some(3),
                    snoozed: None,
                    pending,
                    last_error: error.clone(),
                    declared: error.map(|text| DeclaredView {
                        by: SlackUserId::new("U1ALICE"),
                        text,
                    }),
                    resolved: status == Status::Resolved,
                    minimal,
                };
                Case { card, mentions }
            },
        )
}

/// The `mrkdwn` texts Slack parses for mentions and links: the top-level `text` and every
/// `mrkdwn` text object.
fn parsed_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn")
                && let Some(text) = map.get("text").and_then(Value::as_str)
            {
                out.push(text.to_owned());
            }
            map.values().for_each(|v| parsed_texts(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| parsed_texts(v, out)),
        _ => {}
    }
}

/// Fails unless every `<…>` span of `text` is a mention of a user in `allowed` or a web link,
/// every span is closed, and every `&` starts a whole entity (nothing was cut in half).
fn only_intended_markup(text: &str, allowed: &BTreeSet<String>) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after
            .find('>')
            .ok_or_else(|| format!("unclosed `<` in {text:?}"))?;
        let span = &after[..end];
        let ok = !span.contains('<')
            && (span
                .strip_prefix('@')
                .is_some_and(|id| allowed.contains(id))
                || span.starts_with("https://")
                || span.starts_with("http://"));
        if !ok {
            return Err(format!("unintended <{span}> in {text:?}"));
        }
        rest = &after[end + 1..];
    }
    if text.contains('>') && text.matches('>').count() != text.matches('<').count() {
        return Err(format!("stray `>` in {text:?}"));
    }
    for (i, _) in text.match_indices('&') {
        let tail = &text[i..];
        if !["&amp;", "&lt;", "&gt;"]
            .iter()
            .any(|e| tail.starts_with(e))
        {
            return Err(format!("split or raw entity at {i} in {text:?}"));
        }
    }
    Ok(())
}

fn check_message(m: &Message, allowed: &BTreeSet<String>) -> Result<(), TestCaseError> {
    let json = serde_json::to_value(m).unwrap();
    block_kit::check_message(&json["blocks"]).map_err(TestCaseError::fail)?;
    prop_assert!(!block_kit::text_too_long(&m.text), "text too long");
    prop_assert!(!m.text.is_empty());
    let mut texts = vec![m.text.clone()];
    parsed_texts(&json["blocks"], &mut texts);
    for t in texts {
        only_intended_markup(&t, allowed).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

fn allowed_of(case: &Case) -> BTreeSet<String> {
    let mut allowed: BTreeSet<String> = case
        .mentions
        .values()
        .map(|u| u.as_str().to_owned())
        .collect();
    if let Some(p) = &case.card.pending {
        allowed.insert(p.requested_by.as_str().to_owned());
    }
    if let Some(d) = &case.card.declared {
        allowed.insert(d.by.as_str().to_owned());
    }
    allowed
}

fn line_strategy() -> impl Strategy<Value = TimelineLine> {
    let actor = prop_oneof![
        Just(None),
        slack_user().prop_map(|u| Some(LineActor::Slack(u))),
        text().prop_map(|n| Some(LineActor::Pd(Named::new(PdUserId::new("PX"), n)))),
    ];
    (actor, text()).prop_map(|(actor, text)| TimelineLine {
        kind: LineKind::Note,
        actor,
        text: format!("added a note: {text}"),
    })
}

/// What a line shows, whitespace removed (a split may drop whitespace at its break only).
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cards_fit_slack_and_mention_only_whom_they_mean(case in card_case()) {
        let allowed = allowed_of(&case);
        check_message(&render::card_with_mentions(&case.card, &case.mentions), &allowed)?;
        check_message(&render::card(&case.card), &allowed)?;
    }

    #[test]
    fn modals_fit_slack(title in text()) {
        let ctx = ModalContext {
            incident: IncidentId::new("Q1ABCDEF"),
            channel: Some(ChannelId::new("C0INC")),
            ts: Some(MessageTs::new("1700000000.000100")),
        };
        for view in [render::note_modal(&ctx, &title), render::reassign_modal(&ctx, &title)] {
            let json = serde_json::json!({ "view": serde_json::to_value(&view).unwrap() });
            block_kit::check_view(&json["view"]).map_err(TestCaseError::fail)?;
            let mut texts = Vec::new();
            parsed_texts(&json, &mut texts);
            for t in texts {
                only_intended_markup(&t, &BTreeSet::new()).map_err(TestCaseError::fail)?;
            }
        }
    }

    #[test]
    fn thread_lines_fit_slack_and_none_is_lost(lines in prop::collection::vec(line_strategy(), 1..6)) {
        let allowed: BTreeSet<String> = lines
            .iter()
            .filter_map(|l| match &l.actor {
                Some(LineActor::Slack(u)) => Some(u.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let messages = render::thread(&lines);
        for m in &messages {
            check_message(m, &allowed)?;
        }
        let expected: String = lines
            .iter()
            .map(|l| {
                let who = match &l.actor {
                    Some(LineActor::Slack(u)) => format!("<@{u}> "),
                    Some(LineActor::Pd(n)) => format!("{} ", render::escape(&n.name)),
                    None => String::new(),
                };
                squeezed(&format!("{who}{}", render::escape(&l.text)))
            })
            .collect();
        let got: String = messages.iter().map(|m| squeezed(&m.text)).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn engine_texts_mention_only_whom_the_engine_means(
        title in text(), error in text(), other in slack_user()
    ) {
        let raw = format!(
            "Acknowledging… requested by <@{other}> is still waiting for {title}: {error}"
        );
        let text = render::engine_text(&raw, std::slice::from_ref(&other));
        let allowed = BTreeSet::from([other.as_str().to_owned()]);
        only_intended_markup(&text, &allowed).map_err(TestCaseError::fail)?;
        let mention = format!("<@{other}>");
        prop_assert!(text.contains(&mention));
        let quiet = render::engine_text(&raw, &[]);
        only_intended_markup(&quiet, &BTreeSet::new()).map_err(TestCaseError::fail)?;
    }
}

/// The examples the issue names, spelled out: a title that escapes to five times its length,
/// an empty title, and a note far past one message.
#[test]
fn named_over_limit_inputs_render_within_limits() {
    let mut case = Case {
        card: CardView {
            incident: IncidentId::new("Q1ABCDEF"),
            number: Some(1234),
            title: "<".repeat(2000),
            html_url: Some("https://acme.pagerduty.com/incidents/Q1ABCDEF".to_owned()),
            status: Status::Triggered,
            urgency: Some(Urgency::High),
            priority: None,
            service: Some("&".repeat(5000)),
            assignees: Vec::new(),
            escalation_policy: None,
            escalation_level: None,
            last_level: None,
            snoozed: None,
            pending: None,
            last_error: Some("<!channel> ".repeat(500)),
            declared: Some(DeclaredView {
                by: SlackUserId::new("U1ALICE"),
                text: format!(
                    "Declared by <@U1ALICE> from Slack; declared together with {}",
                    "#12, <!here> ".repeat(400)
                ),
            }),
            resolved: false,
            minimal: false,
        },
        mentions: Mentions::new(),
    };
    let m = render::card(&case.card);
    check_message(&m, &allowed_of(&case)).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("Resolve #1234 *&lt;"), "{json}");
    assert!(json.contains('…'));

    case.card.title = "  \n ".to_owned();
    let m = render::card(&case.card);
    check_message(&m, &allowed_of(&case)).unwrap();
    let header = serde_json::to_value(&m).unwrap()["blocks"][0]["text"]["text"].clone();
    assert_eq!(header, "Incident #1234");

    let note = TimelineLine {
        kind: LineKind::Note,
        actor: Some(LineActor::Slack(SlackUserId::new("U1ALICE"))),
        text: format!("added a note: {}", "x&y ".repeat(1500)),
    };
    let short = TimelineLine {
        kind: LineKind::Acknowledged,
        actor: None,
        text: "acknowledged".to_owned(),
    };
    let messages = render::thread(&[short.clone(), note, short]);
    assert!(messages.len() >= 3, "{}", messages.len());
    assert_eq!(messages[0].text, "acknowledged");
    assert!(
        messages[1]
            .text
            .starts_with("<@U1ALICE> added a note: x&amp;y")
    );
    assert!(messages.last().unwrap().text.ends_with("acknowledged"));
}
