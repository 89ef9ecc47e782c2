//! The card's buttons, which follow the incident's state: Acknowledge only while triggered,
//! Escalate unless on the last level, and on a resolved incident only Open in PagerDuty.

use slack_client::blocks::{
    Block, ButtonStyle, ConfirmDialog, Element, MenuOption, Text, char_len, limits, truncate_plain,
};
use sync_core::{CardView, Status, Urgency};

use super::{
    ACTION_ACK, ACTION_ESCALATE, ACTION_MORE, ACTION_NOTE, ACTION_OPEN, ACTION_REASSIGN,
    ACTION_RESOLVE, MORE_OPEN, MORE_SNOOZE, MORE_URGENCY_HIGH, MORE_URGENCY_LOW, framed,
};

/// The incident's page as a button's `url` (not `mrkdwn`, so not escaped): a web address
/// within Slack's limit, else none.
pub(super) fn button_url(url: &str) -> Option<String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    (web && char_len(url) <= limits::BUTTON_URL && !url.chars().any(char::is_whitespace))
        .then(|| url.to_owned())
}

/// The buttons of the card: on an open incident Acknowledge (while triggered), Escalate
/// (unless on the last level, [`escalate_unavailable`]), Reassign, Add note and Resolve; on a
/// resolved one only Open in PagerDuty (a link, when `url` is one).
pub(super) fn actions_or_resolved(
    card: &CardView,
    label_text: &str,
    title: &str,
    url: Option<String>,
) -> Vec<Block> {
    let block_id = Some(truncate_plain(
        &format!("pdbridge_actions:{}", card.incident),
        limits::ID,
    ));
    if card.resolved || card.status == Status::Resolved {
        let mut blocks = vec![Block::context(
            "Resolved: no further actions from Slack. Open the incident in PagerDuty to reopen it."
                .to_owned(),
        )];
        if let Some(url) = url {
            blocks.push(Block::Actions {
                block_id,
                elements: vec![open_button(url)],
            });
        }
        return blocks;
    }
    let value = truncate_plain(card.incident.as_str(), limits::BUTTON_VALUE);
    let mut elements = Vec::with_capacity(5);
    // PagerDuty cannot un-acknowledge through its REST API: an acknowledged card offers none.
    if card.status == Status::Triggered {
        let mut ack = Element::button(ACTION_ACK, "Acknowledge", value.clone());
        if let Element::Button { style, .. } = &mut ack {
            *style = Some(ButtonStyle::Primary);
        }
        elements.push(ack);
    }
    if card.last_level.is_none() {
        elements.push(Element::button(ACTION_ESCALATE, "Escalate", value.clone()));
    }
    let mut resolve = Element::button(ACTION_RESOLVE, "Resolve", value.clone());
    if let Element::Button { style, confirm, .. } = &mut resolve {
        *style = Some(ButtonStyle::Danger);
        *confirm = Some(ConfirmDialog {
            title: Text::plain("Resolve incident?"),
            text: Text::mrkdwn(framed(
                &format!("Resolve {label_text} *"),
                title,
                "* in PagerDuty?",
                limits::CONFIRM_TEXT,
            )),
            confirm: Some(Text::plain("Resolve")),
            deny: Some(Text::plain("Cancel")),
            style: Some(ButtonStyle::Danger),
        });
    }
    elements.extend([
        Element::button(ACTION_REASSIGN, "Reassign", value.clone()),
        Element::button(ACTION_NOTE, "Add note", value),
        resolve,
    ]);
    elements.extend(more_actions(card, url));
    let mut blocks = Vec::with_capacity(2);
    if let Some(levels) = card.last_level {
        blocks.push(escalate_unavailable(levels));
    }
    blocks.push(Block::Actions { block_id, elements });
    blocks
}

/// Stands in for the Escalate button on the last level: Slack has no disabled buttons, so the
/// card shows the verb struck through with the reason, instead of a button that would fail.
fn escalate_unavailable(levels: u32) -> Block {
    Block::context(format!(
        ":no_entry_sign: ~Escalate~ · the incident is on the last level ({levels} of {levels}) \
         of its escalation policy; reassign it instead."
    ))
}

/// The More actions overflow menu of an open incident: Change urgency (to the other one),
/// Snooze, Change priority and Open in PagerDuty (a link), when there are at least the two options Slack requires.
fn more_actions(card: &CardView, url: Option<String>) -> Option<Element> {
    let item = |label: &str, value: &str| MenuOption {
        text: Text::plain(label),
        value: Some(value.to_owned()),
        url: None,
    };
    let mut options = Vec::with_capacity(2);
    match card.urgency {
        Some(Urgency::High) => options.push(item("Change urgency to low", MORE_URGENCY_LOW)),
        Some(Urgency::Low) => options.push(item("Change urgency to high", MORE_URGENCY_HIGH)),
        None => {}
    }
    if card.status == Status::Acknowledged && card.pending.is_none() {
        options.push(item("Snooze…", MORE_SNOOZE));
    }
    if card.pending.is_none() {
        options.push(item("Change priority…", super::MORE_PRIORITY));
    }
    if let Some(url) = url {
        options.push(MenuOption {
            url: Some(url),
            ..item("Open in PagerDuty", MORE_OPEN)
        });
    }
    (options.len() >= 2).then(|| Element::Overflow {
        action_id: ACTION_MORE.to_owned(),
        options,
    })
}

/// `Snoozed by @x until 14:30 (your time)`: Slack shows the time in each reader's zone.
pub(super) fn snoozed_line(card: &CardView) -> Option<Block> {
    let snoozed = card.snoozed.as_ref()?;
    let secs = snoozed.until.as_millis().div_euclid(1000);
    let fallback = time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| format!("{:02}:{:02} UTC", t.hour(), t.minute()))
        .unwrap_or_else(|_| "later".to_owned());
    let by = super::engine_text(
        &format!("<@{}>", snoozed.by),
        std::slice::from_ref(&snoozed.by),
    );
    Some(Block::context(format!(
        ":zzz: Snoozed by {by} until <!date^{secs}^{{time}}|{fallback}> (your time)"
    )))
}

/// The link button to the incident's page.
fn open_button(url: String) -> Element {
    Element::Button {
        action_id: ACTION_OPEN.to_owned(),
        text: Text::plain("Open in PagerDuty"),
        value: None,
        style: None,
        confirm: None,
        url: Some(url),
    }
}

#[cfg(test)]
mod tests {
    use ids::{ChannelId, IncidentId, MessageTs, PdUserId};
    use sync_core::{CardView, Named, Status, Urgency};

    use super::super::{CALLBACK_URGENCY_LOW, ModalContext, card, urgency_modal};
    use super::*;

    fn base() -> CardView {
        CardView {
            incident: IncidentId::new("Q1ABCDEF"),
            number: Some(42),
            title: "Database down".to_owned(),
            html_url: Some("https://example.pagerduty.com/incidents/Q1ABCDEF".to_owned()),
            status: Status::Triggered,
            urgency: Some(Urgency::High),
            priority: None,
            service: None,
            assignees: vec![Named::new(PdUserId::new("PALICE"), "Alice Example")],
            escalation_policy: None,
            escalation_level: None,
            last_level: None,
            snoozed: None,
            pending: None,
            last_error: None,
            resolved: false,
            minimal: false,
            declared: None,
        }
    }

    #[test]
    fn more_actions_offer_the_other_urgency_and_the_link() {
        let overflow = |v: &CardView| {
            serde_json::to_value(card(v)).unwrap()["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
                .find(|e| e["type"] == "overflow")
        };
        let mut v = base();
        let menu = overflow(&v).unwrap();
        assert_eq!(menu["action_id"], ACTION_MORE);
        assert_eq!(menu["options"][0]["value"], MORE_URGENCY_LOW);
        assert_eq!(menu["options"][1]["value"], super::super::MORE_PRIORITY);
        assert_eq!(
            menu["options"][2]["url"],
            "https://example.pagerduty.com/incidents/Q1ABCDEF"
        );
        v.urgency = Some(Urgency::Low);
        assert_eq!(
            overflow(&v).unwrap()["options"][0]["value"],
            MORE_URGENCY_HIGH
        );
        // Slack requires two options: with one left there is no menu.
        v.html_url = None;
        v.urgency = None;
        assert!(overflow(&v).is_none());
        let ctx = ModalContext {
            incident: IncidentId::new("Q1ABCDEF"),
            channel: Some(ChannelId::new("C0INC")),
            ts: Some(MessageTs::new("1700000000.000100")),
        };
        let modal = urgency_modal(&ctx, "DB <down>", Urgency::Low);
        assert_eq!(modal.callback_id.as_deref(), Some(CALLBACK_URGENCY_LOW));
        insta::assert_json_snapshot!("modal_urgency_low", modal);
    }

    #[test]
    fn an_acknowledged_card_offers_snooze_and_a_snoozed_one_says_by_whom_until_when() {
        let mut v = base();
        v.status = Status::Acknowledged;
        v.snoozed = Some(sync_core::SnoozedView {
            by: ids::SlackUserId::new("U1ALICE"),
            until: ids::Timestamp::from_millis(1_700_005_400_000),
        });
        let m = card(&v);
        let value = serde_json::to_value(&m).unwrap();
        let blocks = value["blocks"].to_string();
        assert!(
            blocks.contains(
                ":zzz: Snoozed by <@U1ALICE> until <!date^1700005400^{time}|23:43 UTC> (your time)"
            ),
            "{blocks}"
        );
        assert!(blocks.contains("\"value\":\"snooze\""), "{blocks}");
        insta::assert_json_snapshot!("card_acknowledged_snoozed", value);
        let ctx = ModalContext {
            incident: IncidentId::new("Q1ABCDEF"),
            channel: Some(ChannelId::new("C0INC")),
            ts: Some(MessageTs::new("1700000000.000100")),
        };
        insta::assert_json_snapshot!("modal_snooze", super::super::snooze_modal(&ctx, "DB down"));
    }

    #[test]
    fn the_priority_modal_lists_the_priorities_with_the_current_one_chosen() {
        let ctx = ModalContext {
            incident: IncidentId::new("Q1ABCDEF"),
            channel: Some(ChannelId::new("C0INC")),
            ts: Some(MessageTs::new("1700000000.000100")),
        };
        let list: Vec<(String, String)> = ["P1", "P2", "P3"]
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("PRI{i}"), (*n).to_owned()))
            .collect();
        let modal = super::super::priority_modal(&ctx, "DB down", &list, Some("PRI2"));
        assert_eq!(
            modal.callback_id.as_deref(),
            Some(super::super::CALLBACK_PRIORITY)
        );
        insta::assert_json_snapshot!("modal_priority", modal);
        // Without priorities there is nothing to submit.
        let none = super::super::priority_modal(&ctx, "DB down", &[], None);
        assert!(none.submit.is_none() && none.callback_id.is_none());
        insta::assert_json_snapshot!("modal_priority_none", none);
    }
}
