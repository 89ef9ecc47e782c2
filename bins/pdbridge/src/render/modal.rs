//! The Add note, Reassign, Change urgency, Snooze and Change priority modals, and the context they carry back.

use ids::{ChannelId, IncidentId, MessageTs};
use serde::{Deserialize, Serialize};
use slack_client::blocks::{Block, Element, SelectOption, Text, View, limits};

use super::*;

/// What a modal carries back in `private_metadata`: which card it was opened from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalContext {
    /// The incident.
    pub incident: IncidentId,
    /// The card's channel.
    pub channel: Option<ChannelId>,
    /// The card's message.
    pub ts: Option<MessageTs>,
}

impl ModalContext {
    /// Encodes the context as `private_metadata`.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes `private_metadata`; `None` when it is not ours.
    pub fn decode(metadata: &str) -> Option<Self> {
        serde_json::from_str(metadata).ok()
    }
}

/// The Add note modal: one multiline text input.
pub fn note_modal(ctx: &ModalContext, title: &str) -> View {
    let mut view = View::modal("Add note");
    view.callback_id = Some(CALLBACK_NOTE.to_owned());
    view.submit = Some(Text::plain("Add note"));
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    view.blocks = vec![
        Block::section(framed("Note on *", title, "*", limits::SECTION_TEXT)),
        Block::Input {
            block_id: Some(NOTE_BLOCK.to_owned()),
            label: Text::plain("Note"),
            element: Element::PlainTextInput {
                action_id: NOTE_INPUT.to_owned(),
                multiline: Some(true),
                max_length: Some(NOTE_MAX_CHARS),
                min_length: None,
                placeholder: Some(Text::plain("What should responders know?")),
                initial_value: None,
            },
            optional: Some(false),
            hint: Some(Text::plain("Posted to the PagerDuty incident as you.")),
        },
    ];
    view
}

/// The Reassign modal: one user picker.
pub fn reassign_modal(ctx: &ModalContext, title: &str) -> View {
    let mut view = View::modal("Reassign");
    view.callback_id = Some(CALLBACK_REASSIGN.to_owned());
    view.submit = Some(Text::plain("Reassign"));
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    view.blocks = vec![
        Block::section(framed("Reassign *", title, "*", limits::SECTION_TEXT)),
        Block::Input {
            block_id: Some(REASSIGN_BLOCK.to_owned()),
            label: Text::plain("Reassign to"),
            element: Element::UsersSelect {
                action_id: REASSIGN_INPUT.to_owned(),
                placeholder: Some(Text::plain("Reassign")),
                initial_user: None,
            },
            optional: Some(false),
            hint: Some(Text::plain(
                "The person must have a PagerDuty account with the same email.",
            )),
        },
    ];
    view
}

/// The modal that confirms Change urgency (More actions) to `to`: a question and a submit
/// button, no input; the target is in the `callback_id`.
pub fn urgency_modal(ctx: &ModalContext, title: &str, to: Urgency) -> View {
    let (callback, name) = match to {
        Urgency::High => (CALLBACK_URGENCY_HIGH, "high"),
        Urgency::Low => (CALLBACK_URGENCY_LOW, "low"),
    };
    let mut view = View::modal("Change urgency");
    view.callback_id = Some(callback.to_owned());
    view.submit = Some(Text::plain(format!("Make it {name}")));
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    view.blocks = vec![Block::section(framed(
        "Change the urgency of *",
        title,
        &format!(
            "* to *{name}* in PagerDuty? PagerDuty notifies responders by the new urgency's rules."
        ),
        limits::SECTION_TEXT,
    ))];
    view
}

/// The snooze choices: minutes and their labels (PagerDuty takes 1 second to 7 days).
pub const SNOOZE_CHOICES: [(u32, &str); 7] = [
    (30, "30 minutes"),
    (60, "1 hour"),
    (4 * 60, "4 hours"),
    (8 * 60, "8 hours"),
    (24 * 60, "24 hours"),
    (3 * 24 * 60, "3 days"),
    (7 * 24 * 60, "7 days"),
];

/// The Snooze modal (More actions, acknowledged incidents only): one duration select.
pub fn snooze_modal(ctx: &ModalContext, title: &str) -> View {
    let mut view = View::modal("Snooze");
    view.callback_id = Some(CALLBACK_SNOOZE.to_owned());
    view.submit = Some(Text::plain("Snooze"));
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    let options: Vec<SelectOption> = SNOOZE_CHOICES
        .iter()
        .map(|(minutes, label)| SelectOption::new(label, minutes.to_string()))
        .collect();
    view.blocks = vec![
        Block::section(framed("Snooze *", title, "*", limits::SECTION_TEXT)),
        Block::Input {
            block_id: Some(SNOOZE_INPUT.to_owned()),
            label: Text::plain("For"),
            element: Element::StaticSelect {
                action_id: SNOOZE_INPUT.to_owned(),
                placeholder: Some(Text::plain("How long")),
                initial_option: options.get(1).cloned(),
                options,
            },
            optional: Some(false),
            hint: Some(Text::plain(
                "PagerDuty holds the acknowledgement this long, then triggers the incident again.",
            )),
        },
    ];
    view
}

/// More actions `value`: change the priority (opens the modal with the account's priorities).
pub const MORE_PRIORITY: &str = "priority";
/// `callback_id` of the Change priority modal.
pub const CALLBACK_PRIORITY: &str = "pdbridge_priority";
/// `block_id` of the Change priority modal's select (its `action_id` is the same).
pub const PRIORITY_INPUT: &str = "priority_id";

/// The Change priority modal (More actions): a select of the account's priorities, most severe
/// first, as `(id, name)`, the current one preselected. An empty list (an account without
/// priorities) gets a modal that says so and cannot be submitted.
pub fn priority_modal(
    ctx: &ModalContext,
    title: &str,
    priorities: &[(String, String)],
    current: Option<&str>,
) -> View {
    let mut view = View::modal("Change priority");
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    if priorities.is_empty() {
        view.blocks = vec![Block::section(
            "PagerDuty lists no priorities for this account (or could not be read just now), so there is none to choose.",
        )];
        return view;
    }
    view.callback_id = Some(CALLBACK_PRIORITY.to_owned());
    view.submit = Some(Text::plain("Change priority"));
    // Slack allows 100 options in a select.
    let options: Vec<SelectOption> = priorities
        .iter()
        .take(100)
        .map(|(id, name)| SelectOption::new(name, id.clone()))
        .collect();
    let initial = current.and_then(|c| options.iter().find(|o| o.value == c).cloned());
    view.blocks = vec![
        Block::section(framed(
            "Change the priority of *",
            title,
            "*",
            limits::SECTION_TEXT,
        )),
        Block::Input {
            block_id: Some(PRIORITY_INPUT.to_owned()),
            label: Text::plain("Priority"),
            element: Element::StaticSelect {
                action_id: PRIORITY_INPUT.to_owned(),
                placeholder: Some(Text::plain("Choose a priority")),
                initial_option: initial,
                options,
            },
            optional: Some(false),
            hint: None,
        },
    ];
    view
}
