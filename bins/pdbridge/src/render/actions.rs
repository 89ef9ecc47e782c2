//! The card's buttons, which follow the incident's state: Acknowledge only while triggered,
//! Escalate unless on the last level, and on a resolved incident only Open in PagerDuty.

use slack_client::blocks::{
    Block, ButtonStyle, ConfirmDialog, Element, Text, char_len, limits, truncate_plain,
};
use sync_core::{CardView, Status};

use super::{
    ACTION_ACK, ACTION_ESCALATE, ACTION_NOTE, ACTION_OPEN, ACTION_REASSIGN, ACTION_RESOLVE, framed,
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
