//! Block Kit blocks, elements, text objects, modal views and `response_action` bodies.
//!
//! Only what pdbridge renders is modelled. Absent optional fields are omitted on serialization
//! (Slack rejects many explicit `null`s), and every type round-trips through serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Block Kit text object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Text {
    /// Plain text, optionally with emoji shortcodes rendered.
    PlainText {
        /// The text.
        text: String,
        /// Whether `:emoji:` codes are rendered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<bool>,
    },
    /// Slack `mrkdwn` text.
    Mrkdwn {
        /// The text.
        text: String,
        /// When true, links and mentions are not auto-parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verbatim: Option<bool>,
    },
}

impl Text {
    /// Plain text with emoji rendering left to Slack's default.
    pub fn plain(text: impl Into<String>) -> Self {
        Self::PlainText {
            text: text.into(),
            emoji: None,
        }
    }

    /// `mrkdwn` text.
    pub fn mrkdwn(text: impl Into<String>) -> Self {
        Self::Mrkdwn {
            text: text.into(),
            verbatim: None,
        }
    }

    /// The text content regardless of its kind.
    pub fn text(&self) -> &str {
        match self {
            Self::PlainText { text, .. } | Self::Mrkdwn { text, .. } => text,
        }
    }
}

/// A layout block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A section: text and/or fields, with an optional accessory element.
    Section {
        /// The block id (echoed back in interactions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
        /// The main text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Text>,
        /// Up to 10 short texts rendered in two columns.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text>,
        /// An element shown to the right of the text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accessory: Option<Element>,
    },
    /// Small, muted text.
    Context {
        /// The block id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
        /// The texts shown.
        elements: Vec<Text>,
    },
    /// A row of interactive elements.
    Actions {
        /// The block id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
        /// The elements (buttons, selects).
        elements: Vec<Element>,
    },
    /// A horizontal rule.
    Divider {
        /// The block id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
    },
    /// A large plain-text heading.
    Header {
        /// The block id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
        /// The heading, which must be `plain_text`.
        text: Text,
    },
    /// A labelled input in a modal; its value arrives in `view.state.values[block_id][action_id]`.
    Input {
        /// The block id, the first key of `state.values`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_id: Option<String>,
        /// The label, which must be `plain_text`.
        label: Text,
        /// The input element.
        element: Element,
        /// Whether the input may be left empty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        optional: Option<bool>,
        /// Help text under the input.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<Text>,
    },
}

impl Block {
    /// A section with `mrkdwn` text.
    pub fn section(text: impl Into<String>) -> Self {
        Self::Section {
            block_id: None,
            text: Some(Text::mrkdwn(text)),
            fields: Vec::new(),
            accessory: None,
        }
    }

    /// A context block with one `mrkdwn` text.
    pub fn context(text: impl Into<String>) -> Self {
        Self::Context {
            block_id: None,
            elements: vec![Text::mrkdwn(text)],
        }
    }

    /// A divider.
    pub fn divider() -> Self {
        Self::Divider { block_id: None }
    }

    /// A header with plain text.
    pub fn header(text: impl Into<String>) -> Self {
        Self::Header {
            block_id: None,
            text: Text::plain(text),
        }
    }

    /// The block id, if set.
    pub fn block_id(&self) -> Option<&str> {
        match self {
            Self::Section { block_id, .. }
            | Self::Context { block_id, .. }
            | Self::Actions { block_id, .. }
            | Self::Divider { block_id }
            | Self::Header { block_id, .. }
            | Self::Input { block_id, .. } => block_id.as_deref(),
        }
    }
}

/// The colour of a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    /// Green.
    Primary,
    /// Red.
    Danger,
}

/// A confirmation dialog shown before a button's action is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmDialog {
    /// The dialog title (`plain_text`).
    pub title: Text,
    /// The explanatory text.
    pub text: Text,
    /// The confirm button label (`plain_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Text>,
    /// The cancel button label (`plain_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Text>,
    /// The confirm button colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ButtonStyle>,
}

/// An interactive or input element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Element {
    /// A button; a click arrives as a `block_actions` action with its `action_id` and `value`.
    Button {
        /// The action id.
        action_id: String,
        /// The label (`plain_text`).
        text: Text,
        /// The value sent back on click (at most 2000 characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        /// The colour.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        style: Option<ButtonStyle>,
        /// A dialog to confirm the click.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm: Option<ConfirmDialog>,
        /// A link opened on click.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// A user picker; the choice arrives as `selected_user`.
    UsersSelect {
        /// The action id.
        action_id: String,
        /// The placeholder (`plain_text`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<Text>,
        /// The user selected initially.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_user: Option<ids::SlackUserId>,
    },
    /// A text field; the text arrives as `value`.
    PlainTextInput {
        /// The action id.
        action_id: String,
        /// Whether the field spans several lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multiline: Option<bool>,
        /// The maximum length in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length: Option<u32>,
        /// The minimum length in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_length: Option<u32>,
        /// The placeholder (`plain_text`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<Text>,
        /// The initial text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_value: Option<String>,
    },
}

impl Element {
    /// A button with a value.
    pub fn button(
        action_id: impl Into<String>,
        label: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self::Button {
            action_id: action_id.into(),
            text: Text::plain(label),
            value: Some(value.into()),
            style: None,
            confirm: None,
            url: None,
        }
    }

    /// The action id.
    pub fn action_id(&self) -> &str {
        match self {
            Self::Button { action_id, .. }
            | Self::UsersSelect { action_id, .. }
            | Self::PlainTextInput { action_id, .. } => action_id,
        }
    }
}

/// The kind of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewType {
    /// A modal dialog.
    Modal,
    /// The App Home tab.
    Home,
}

/// A view as sent to `views.open` / `views.update` or in a `response_action: update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The kind of view.
    #[serde(rename = "type")]
    pub kind: ViewType,
    /// The id that comes back in `view_submission.view.callback_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_id: Option<String>,
    /// The title (`plain_text`, at most 24 characters).
    pub title: Text,
    /// The submit button label (`plain_text`); required when the view has input blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<Text>,
    /// The close button label (`plain_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<Text>,
    /// Opaque data echoed back in `view_submission` (at most 3000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<String>,
    /// An app-chosen id unique per workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The blocks.
    pub blocks: Vec<Block>,
}

impl View {
    /// An empty modal with a title.
    pub fn modal(title: impl Into<String>) -> Self {
        Self {
            kind: ViewType::Modal,
            callback_id: None,
            title: Text::plain(title),
            submit: None,
            close: None,
            private_metadata: None,
            external_id: None,
            blocks: Vec::new(),
        }
    }
}

/// The body of an HTTP 200 answer to a `view_submission` (an empty body simply closes the modal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response_action", rename_all = "snake_case")]
pub enum ResponseAction {
    /// Keep the modal open and show a message under each listed input block.
    Errors {
        /// `block_id` → message.
        errors: BTreeMap<String, String>,
    },
    /// Replace the current view.
    Update {
        /// The new view.
        view: View,
    },
    /// Push a view on top of the current one.
    Push {
        /// The pushed view.
        view: View,
    },
    /// Close every view in the stack.
    Clear,
}
