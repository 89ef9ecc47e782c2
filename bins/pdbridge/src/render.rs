//! Block Kit rendering of the engine's [`CardView`], thread lines and modals.
//!
//! Rendering is pure and deterministic: the same view always gives the same JSON. The card's
//! `text` (the notification fallback) and its blocks both name the incident title and its status
//! (`Triggered`, `Acknowledged`, `Resolved`). An open incident's card carries the buttons
//! Acknowledge (while triggered: PagerDuty cannot un-acknowledge), Escalate (or, on the last
//! level, a struck-through Escalate with the reason), Reassign, Add note and Resolve; a
//! resolved incident's card keeps its details and offers only Open in PagerDuty. Assignees who map to a Slack user are mentioned (`<@U…>`)
//! through the [`Mentions`] the caller looked up; the others are named as PagerDuty names them.

use std::collections::BTreeMap;

use ids::{PdUserId, SlackUserId};
use serde::Serialize;
use slack_client::blocks::{
    Block, Text, char_len, escape_mrkdwn, limits, split_mrkdwn, truncate_mrkdwn, truncate_plain,
};
use sync_core::{CardView, LineActor, Status, TimelineLine, Urgency};

mod actions;
mod modal;
mod reminder;

use self::actions::{actions_or_resolved, button_url};

pub use self::modal::{
    CALLBACK_PRIORITY, MORE_PRIORITY, ModalContext, PRIORITY_INPUT, SNOOZE_CHOICES, note_modal,
    priority_modal, reassign_modal, snooze_modal, urgency_modal,
};
pub use self::reminder::reminder_actions;

/// `action_id` of the Acknowledge button.
pub const ACTION_ACK: &str = "pdbridge_ack";
/// `action_id` of the Escalate button.
pub const ACTION_ESCALATE: &str = "pdbridge_escalate";
/// `action_id` of the Reassign button (opens the reassign modal).
pub const ACTION_REASSIGN: &str = "pdbridge_reassign";
/// `action_id` of the Add note button (opens the note modal).
pub const ACTION_NOTE: &str = "pdbridge_note";
/// `action_id` of the Resolve button (asks for confirmation first).
pub const ACTION_RESOLVE: &str = "pdbridge_resolve";
/// `action_id` of the Open in PagerDuty link button (its click needs no answer but the 200).
pub const ACTION_OPEN: &str = "pdbridge_open";
/// `action_id` of the More actions overflow menu; the choice is its option's `value`.
pub const ACTION_MORE: &str = "pdbridge_more";
/// More actions `value`: change the urgency to high (opens the confirming modal).
pub const MORE_URGENCY_HIGH: &str = "urgency_high";
/// More actions `value`: change the urgency to low (opens the confirming modal).
pub const MORE_URGENCY_LOW: &str = "urgency_low";
/// More actions `value`: snooze (acknowledged only; opens the modal with the durations).
pub const MORE_SNOOZE: &str = "snooze";
/// `callback_id` of the snooze modal, and the `block_id` and `action_id` of its duration.
pub const CALLBACK_SNOOZE: &str = "pdbridge_snooze";
/// `block_id` of the snooze modal's duration select (its `action_id` is the same).
pub const SNOOZE_INPUT: &str = "snooze_minutes";
/// More actions `value` of Open in PagerDuty (a link: its choice needs no answer but the 200).
pub const MORE_OPEN: &str = "open";

/// `callback_id` of the note modal.
pub const CALLBACK_NOTE: &str = "pdbridge_note";
/// `callback_id` of the reassign modal.
pub const CALLBACK_REASSIGN: &str = "pdbridge_reassign";
/// `callback_id` of the modal confirming a change to high urgency.
pub const CALLBACK_URGENCY_HIGH: &str = "pdbridge_urgency_high";
/// `callback_id` of the modal confirming a change to low urgency.
pub const CALLBACK_URGENCY_LOW: &str = "pdbridge_urgency_low";
/// `block_id` of the note text input.
pub const NOTE_BLOCK: &str = "note";
/// `action_id` of the note text input.
pub const NOTE_INPUT: &str = "note_text";
/// `block_id` of the reassign user picker.
pub const REASSIGN_BLOCK: &str = "reassign_to";
/// `action_id` of the reassign user picker.
pub const REASSIGN_INPUT: &str = "reassign_user";

/// The longest note accepted (PagerDuty's note limit is larger; Slack's input max is 3000).
pub const NOTE_MAX_CHARS: u32 = 3000;

/// A rendered message: the notification fallback `text` and the blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The fallback text (notifications, screen readers).
    pub text: String,
    /// The Block Kit blocks.
    pub blocks: Vec<Block>,
}

fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Triggered => ":red_circle:",
        Status::Acknowledged => ":large_yellow_circle:",
        Status::Resolved => ":white_check_mark:",
    }
}

fn urgency_label(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::High => "High",
        Urgency::Low => "Low",
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
pub fn escape(text: &str) -> String {
    escape_mrkdwn(text)
}

/// Renders text the engine wrote (a pending action, a reply) as `mrkdwn`: everything is escaped
/// like outside data, except the mentions `<@U…>` of the users in `mentions`, which the engine
/// itself put there. Titles and PagerDuty error texts inside it can thus neither mention,
/// ping nor link.
pub fn engine_text(text: &str, mentions: &[SlackUserId]) -> String {
    let mut out = escape(text);
    for user in mentions {
        let escaped = format!("&lt;@{}&gt;", escape(user.as_str()));
        if user.as_str().chars().all(|c| c.is_ascii_alphanumeric()) {
            out = out.replace(&escaped, &format!("<@{user}>"));
        }
    }
    out
}

/// An engine reply ([`sync_core::Effect::Ephemeral`]) as `mrkdwn` within Slack's limits:
/// escaped but for the mentions the engine meant ([`engine_text`]).
pub fn reply(text: &str, mentions: &[SlackUserId]) -> String {
    truncate_mrkdwn(&engine_text(text, mentions), limits::SECTION_TEXT)
}

/// `mrkdwn` built from a fixed `prefix`, escaped outside data and a fixed `suffix`, within `max`
/// characters: only the outside data is cut, so the markup around it stays balanced.
fn framed(prefix: &str, data: &str, suffix: &str, max: usize) -> String {
    let room = max.saturating_sub(char_len(prefix) + char_len(suffix));
    let text = format!("{prefix}{}{suffix}", truncate_mrkdwn(&escape(data), room));
    truncate_mrkdwn(&text, max)
}

fn incident_label(card: &CardView) -> String {
    match card.number {
        Some(n) => format!("#{n}"),
        None => card.incident.to_string(),
    }
}

/// The title to show: PagerDuty's, or `Incident #1234` when it is empty or blank.
fn display_title(card: &CardView) -> String {
    if card.title.trim().is_empty() {
        format!("Incident {}", incident_label(card))
    } else {
        card.title.clone()
    }
}

/// The incident's page as a link target, when it is a web address: anything else (such as
/// `!channel` or `@U123`) would turn the link into a mention.
pub(crate) fn link_target(url: &str) -> Option<String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    let target = escape(url).replace('|', "%7C");
    (web && char_len(&target) <= 1000 && !target.chars().any(char::is_whitespace)).then_some(target)
}

/// The Slack user of each PagerDuty user that has one, for mentions on the card.
pub type Mentions = BTreeMap<PdUserId, SlackUserId>;

/// Renders the incident card, naming every assignee by their PagerDuty name.
pub fn card(card: &CardView) -> Message {
    card_with_mentions(card, &Mentions::new())
}

/// Renders the incident card, mentioning assignees found in `mentions` (`<@U…>`) and naming the
/// others by their PagerDuty name.
pub fn card_with_mentions(card: &CardView, mentions: &Mentions) -> Message {
    if card.minimal {
        return minimal_card(card);
    }
    let status = card.status.label();
    let label = incident_label(card);
    let title = display_title(card);
    let text = framed(
        &format!("[{status}] {} ", escape(&label)),
        &title,
        "",
        limits::SECTION_TEXT,
    );

    let mut blocks = Vec::new();
    blocks.push(Block::header(truncate_plain(&title, limits::HEADER_TEXT)));

    // The label is short (a number or an id); the link is kept only when it fits with it.
    let label_text = truncate_mrkdwn(&escape(&label), 200);
    let link = match card.html_url.as_deref().and_then(link_target) {
        Some(url) => format!("<{url}|{label_text}>"),
        None => label_text.clone(),
    };
    let field = |name: &str, value: &str| {
        Text::mrkdwn(framed(
            &format!("*{name}:*\n"),
            value,
            "",
            limits::SECTION_FIELD,
        ))
    };
    let mut fields = vec![Text::mrkdwn(format!(
        "*Status:*\n{} {status}",
        status_emoji(card.status)
    ))];
    if let Some(urgency) = card.urgency {
        fields.push(Text::mrkdwn(format!(
            "*Urgency:*\n{}",
            urgency_label(urgency)
        )));
    }
    if let Some(priority) = &card.priority {
        fields.push(field("Priority", priority));
    }
    if let Some(service) = &card.service {
        fields.push(field("Service", service));
    }
    let assignees = if card.assignees.is_empty() {
        "—".to_owned()
    } else {
        card.assignees
            .iter()
            .map(|a| match mentions.get(&a.id) {
                Some(slack) => format!("<@{slack}>"),
                None => escape(&a.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    fields.push(Text::mrkdwn(truncate_mrkdwn(
        &format!("*Assigned:*\n{assignees}"),
        limits::SECTION_FIELD,
    )));
    if let Some(ep) = &card.escalation_policy {
        let level = card
            .escalation_level
            .map(|l| format!(" (level {l})"))
            .unwrap_or_default();
        fields.push(Text::mrkdwn(framed(
            "*Escalation policy:*\n",
            ep,
            &level,
            limits::SECTION_FIELD,
        )));
    }
    let summary = format!("{} *{status}* · {link} · ", status_emoji(card.status));
    blocks.push(Block::Section {
        block_id: Some("pdbridge_summary".to_owned()),
        text: Some(Text::mrkdwn(framed(
            &summary,
            &title,
            "",
            limits::SECTION_TEXT,
        ))),
        fields,
        accessory: None,
    });

    if let Some(declared) = &card.declared {
        let text = engine_text(&declared.text, std::slice::from_ref(&declared.by));
        blocks.push(Block::context(truncate_mrkdwn(
            &format!(":loudspeaker: {text}"),
            limits::TEXT,
        )));
    }
    if let Some(pending) = &card.pending {
        let text = engine_text(&pending.text, std::slice::from_ref(&pending.requested_by));
        blocks.push(Block::context(truncate_mrkdwn(
            &format!(":hourglass_flowing_sand: {text}"),
            limits::TEXT,
        )));
    }
    blocks.extend(actions::snoozed_line(card));
    if let Some(error) = &card.last_error {
        blocks.push(Block::context(framed(
            ":warning: ",
            error,
            "",
            limits::TEXT,
        )));
    }

    let url = card.html_url.as_deref().and_then(button_url);
    blocks.extend(actions_or_resolved(card, &label_text, &title, url));
    Message { text, blocks }
}

/// How much of the title a minimal card keeps.
const MINIMAL_TITLE: usize = 100;

/// The card shown after Slack refused the full one ([`CardView::minimal`]): the status, the
/// incident number and a hard-cut title, the buttons, and no fields, mentions or links.
fn minimal_card(card: &CardView) -> Message {
    let status = card.status.label();
    let label_text = truncate_mrkdwn(&escape(&incident_label(card)), 40);
    let title = truncate_plain(&display_title(card), MINIMAL_TITLE);
    let text = framed(
        &format!("[{status}] {label_text} "),
        &title,
        "",
        limits::SECTION_TEXT,
    );
    let summary = format!("{} *{status}* · {label_text} · ", status_emoji(card.status));
    let mut blocks = vec![
        Block::Section {
            block_id: Some("pdbridge_summary".to_owned()),
            text: Some(Text::mrkdwn(framed(
                &summary,
                &title,
                "",
                limits::SECTION_TEXT,
            ))),
            fields: Vec::new(),
            accessory: None,
        },
        Block::context(
            ":warning: Slack refused this incident's full card, so pdbridge shows this short one. \
             Open the incident in PagerDuty for its details."
                .to_owned(),
        ),
    ];
    // No link either: the minimal card carries nothing Slack could refuse.
    blocks.extend(actions_or_resolved(card, &label_text, &title, None));
    Message { text, blocks }
}

fn line_text(line: &TimelineLine) -> String {
    let who = match &line.actor {
        Some(LineActor::Slack(user)) => format!("<@{user}> "),
        Some(LineActor::Pd(user)) => format!("{} ", escape(&user.name)),
        None => String::new(),
    };
    format!("{who}{}", escape(&line.text))
}

/// Renders thread lines, one line each, oldest first, as one message, or as several when they
/// do not fit in one section: no line is dropped, and a line too long for a message of its
/// own is split between messages without splitting an entity, a mention or a character.
pub fn thread(lines: &[TimelineLine]) -> Vec<Message> {
    let max = limits::SECTION_TEXT;
    let mut bodies: Vec<String> = Vec::new();
    let mut body = String::new();
    for line in lines {
        for piece in split_mrkdwn(&line_text(line), max) {
            if !body.is_empty() && char_len(&body) + 1 + char_len(&piece) > max {
                bodies.push(std::mem::take(&mut body));
            }
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&piece);
        }
    }
    if !body.is_empty() {
        bodies.push(body);
    }
    bodies
        .into_iter()
        .map(|text| Message {
            blocks: vec![Block::section(text.clone())],
            text,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ids::{ChannelId, IncidentId, MessageTs, PdUserId, SlackUserId};
    use sync_core::{ActionKind, LineKind, Named, PendingView};

    use super::*;

    fn base() -> CardView {
        CardView {
            incident: IncidentId::new("Q1ABCDEF"),
            number: Some(42),
            title: "Database <primary> down & out".to_owned(),
            html_url: Some("https://example.pagerduty.com/incidents/Q1ABCDEF".to_owned()),
            status: Status::Triggered,
            urgency: Some(Urgency::High),
            priority: Some("P1".to_owned()),
            service: Some("Checkout".to_owned()),
            assignees: vec![Named::new(PdUserId::new("PALICE"), "Alice Example")],
            escalation_policy: Some("Ops".to_owned()),
            escalation_level: None,
            last_level: None,
            snoozed: None,
            pending: None,
            last_error: None,
            declared: None,
            resolved: false,
            minimal: false,
        }
    }

    fn json(m: &Message) -> serde_json::Value {
        serde_json::to_value(m).unwrap()
    }

    fn buttons(m: &Message) -> Vec<String> {
        let v = json(m);
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .filter_map(|e| e["text"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn triggered_card_has_the_five_buttons_and_names_title_and_status() {
        // Alice maps to a Slack user and is mentioned; Bob does not and is named.
        let mut v = base();
        v.assignees
            .push(Named::new(PdUserId::new("PBOB"), "Bob <ops> Example"));
        let mentions = Mentions::from([(PdUserId::new("PALICE"), SlackUserId::new("U1ALICE"))]);
        let m = card_with_mentions(&v, &mentions);
        let blocks = json(&m)["blocks"].to_string();
        assert!(
            blocks.contains("*Assigned:*\\n<@U1ALICE>, Bob &lt;ops&gt; Example"),
            "{blocks}"
        );
        assert!(!card(&v).blocks.is_empty());
        assert!(
            json(&card(&v))["blocks"]
                .to_string()
                .contains("Alice Example, Bob")
        );
        assert_eq!(
            buttons(&m),
            ["Acknowledge", "Escalate", "Reassign", "Add note", "Resolve"]
        );
        assert!(m.text.contains("Triggered") && m.text.contains("Database &lt;primary&gt; down"));
        let blocks = json(&m)["blocks"].to_string();
        assert!(blocks.contains("Triggered") && blocks.contains("Database &lt;primary&gt;"));
        insta::assert_json_snapshot!("card_triggered", json(&m));
    }

    #[test]
    fn acknowledged_card_with_pending_action() {
        let mut v = base();
        v.status = Status::Acknowledged;
        v.escalation_level = Some(2);
        v.pending = Some(PendingView {
            kind: ActionKind::Resolve,
            requested_by: SlackUserId::new("U1ALICE"),
            retry: 0,
            text: "Resolving… requested by <@U1ALICE>".to_owned(),
        });
        let m = card(&v);
        assert!(m.text.contains("Acknowledged"));
        // PagerDuty cannot un-acknowledge: no Acknowledge on an acknowledged card.
        assert_eq!(buttons(&m), ["Escalate", "Reassign", "Add note", "Resolve"]);
        insta::assert_json_snapshot!("card_acknowledged_pending", json(&m));
    }

    #[test]
    fn pending_and_error_texts_are_escaped_but_the_requester_stays_mentioned() {
        let mut v = base();
        v.pending = Some(PendingView {
            kind: ActionKind::Acknowledge,
            requested_by: SlackUserId::new("U1ALICE"),
            retry: 1,
            text: "Acknowledging… requested by <@U1ALICE> (retrying: PagerDuty said \
                   <!channel> <@U9EVE> & <https://evil.example|here>)"
                .to_owned(),
        });
        v.last_error = Some("Resolve failed: <!here> & <@U9EVE>".to_owned());
        let blocks = json(&card(&v))["blocks"].to_string();
        assert!(blocks.contains("requested by <@U1ALICE> (retrying: PagerDuty said &lt;!channel&gt; &lt;@U9EVE&gt; &amp; &lt;https://evil.example|here&gt;)"), "{blocks}");
        assert!(blocks.contains(":warning: Resolve failed: &lt;!here&gt; &amp; &lt;@U9EVE&gt;"));
        for forbidden in ["<!channel>", "<!here>", "<@U9EVE>", "<https://evil"] {
            assert!(!blocks.contains(forbidden), "{forbidden} in {blocks}");
        }
        // A reply mentions only the users the engine named.
        let text =
            "Acknowledging… requested by <@U1ALICE> is still waiting: DB <!channel> <@U1ALICE>";
        assert_eq!(
            reply(text, &[SlackUserId::new("U1ALICE")]),
            "Acknowledging… requested by <@U1ALICE> is still waiting: DB &lt;!channel&gt; <@U1ALICE>"
        );
        assert!(!reply(text, &[]).contains('<'));
    }

    #[test]
    fn card_with_last_error() {
        let mut v = base();
        v.last_error = Some("Acknowledge failed: PagerDuty answered 503".to_owned());
        v.urgency = Some(Urgency::Low);
        v.priority = None;
        v.html_url = None;
        v.number = None;
        v.assignees.clear();
        insta::assert_json_snapshot!("card_triggered_error_minimal", json(&card(&v)));
    }

    #[test]
    fn resolved_card_keeps_details_and_offers_no_buttons() {
        let mut v = base();
        v.status = Status::Resolved;
        v.resolved = true;
        v.assignees.clear();
        let m = card(&v);
        assert_eq!(buttons(&m), ["Open in PagerDuty"]);
        let blocks = json(&m)["blocks"].to_string();
        assert!(blocks.contains("\"url\":\"https://example.pagerduty.com/incidents/Q1ABCDEF\""));
        assert!(blocks.contains("*Priority:*") && blocks.contains("*Service:*"));
        assert!(m.text.contains("Resolved") && m.text.contains("Database"));
        insta::assert_json_snapshot!("card_resolved", json(&m));
        // Without a web address there is nothing to open, and no action at all.
        v.html_url = Some("javascript:alert(1)".to_owned());
        assert!(buttons(&card(&v)).is_empty());
        v.html_url = Some("https://example.pagerduty.com/incidents/Q1?a=1&b=2".to_owned());
        let blocks = json(&card(&v))["blocks"].to_string();
        assert!(blocks.contains("incidents/Q1?a=1&b=2\""), "{blocks}");
    }

    #[test]
    fn last_level_shows_escalate_struck_through_with_the_reason() {
        let mut v = base();
        v.status = Status::Acknowledged;
        v.escalation_level = Some(3);
        v.last_level = Some(3);
        let m = card(&v);
        assert_eq!(buttons(&m), ["Reassign", "Add note", "Resolve"]);
        let blocks = json(&m)["blocks"].to_string();
        assert!(blocks.contains("~Escalate~"), "{blocks}");
        assert!(blocks.contains("last level (3 of 3)"), "{blocks}");
        insta::assert_json_snapshot!("card_acknowledged_last_level", json(&m));
        // Triggered on the last level: Acknowledge stays, Escalate does not.
        v.status = Status::Triggered;
        assert_eq!(
            buttons(&card(&v)),
            ["Acknowledge", "Reassign", "Add note", "Resolve"]
        );
    }

    #[test]
    fn thread_lines_name_the_actor() {
        let lines = vec![
            TimelineLine {
                kind: LineKind::Acknowledged,
                actor: Some(LineActor::Slack(SlackUserId::new("U1ALICE"))),
                text: "acknowledged".to_owned(),
            },
            TimelineLine {
                kind: LineKind::Note,
                actor: Some(LineActor::Pd(Named::new(PdUserId::new("PBOB"), "Bob"))),
                text: "added a note: <b>ok</b>".to_owned(),
            },
            TimelineLine {
                kind: LineKind::Escalated,
                actor: None,
                text: "escalated to level 2".to_owned(),
            },
        ];
        let messages = thread(&lines);
        assert_eq!(messages.len(), 1);
        insta::assert_json_snapshot!("thread_lines", json(&messages[0]));
    }

    #[test]
    fn modals_round_trip_their_context() {
        let ctx = ModalContext {
            incident: IncidentId::new("Q1ABCDEF"),
            channel: Some(ChannelId::new("C0INC")),
            ts: Some(MessageTs::new("1700000000.000100")),
        };
        let note = note_modal(&ctx, "DB down");
        let reassign = reassign_modal(&ctx, "DB down");
        assert_eq!(
            ModalContext::decode(note.private_metadata.as_deref().unwrap()),
            Some(ctx.clone())
        );
        assert_eq!(ModalContext::decode("not json"), None);
        insta::assert_json_snapshot!("modal_note", note);
        insta::assert_json_snapshot!("modal_reassign", reassign);
    }
}
