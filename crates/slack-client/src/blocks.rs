//! Block Kit blocks, elements, text objects, modal views and `response_action` bodies.
//!
//! Only what pdbridge renders is modelled. Absent optional fields are omitted on serialization
//! (Slack rejects many explicit `null`s), and every type round-trips through serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// Slack's documented Block Kit limits (docs.slack.dev/reference/block-kit; table in
/// `protocol-notes.md` §3.6). Slack refuses a whole message or view that breaks one of them
/// (`invalid_blocks`, or `invalid_arguments` for views). Lengths are characters of the text as
/// sent, after `&amp;`/`&lt;`/`&gt;` escaping, counted as Unicode scalar values ([`char_len`]).
pub mod limits {
    /// Blocks in one message.
    pub const MESSAGE_BLOCKS: usize = 50;
    /// Blocks in one modal or Home view.
    pub const VIEW_BLOCKS: usize = 100;
    /// A message's top-level `text` (`chat.update` answers `msg_too_long` past 4,000).
    pub const MESSAGE_TEXT: usize = 4000;
    /// Any text object (a section's or a context element's text).
    pub const TEXT: usize = 3000;
    /// A section's `text`.
    pub const SECTION_TEXT: usize = 3000;
    /// Fields in one section.
    pub const SECTION_FIELDS: usize = 10;
    /// One section field.
    pub const SECTION_FIELD: usize = 2000;
    /// A header's `plain_text`.
    pub const HEADER_TEXT: usize = 150;
    /// Elements in one context block.
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Elements in one actions block.
    pub const ACTIONS_ELEMENTS: usize = 25;
    /// A button's label.
    pub const BUTTON_TEXT: usize = 75;
    /// A button's `value`.
    pub const BUTTON_VALUE: usize = 2000;
    /// A button's `url`.
    pub const BUTTON_URL: usize = 3000;
    /// A confirm dialog's `title`.
    pub const CONFIRM_TITLE: usize = 100;
    /// A confirm dialog's `text`.
    pub const CONFIRM_TEXT: usize = 300;
    /// A confirm dialog's `confirm` and `deny` labels.
    pub const CONFIRM_BUTTON: usize = 30;
    /// An option's `text` (selects, overflow menus).
    pub const OPTION_TEXT: usize = 75;
    /// An option's `value`.
    pub const OPTION_VALUE: usize = 150;
    /// A view's `title`, `submit` and `close`.
    pub const VIEW_TITLE: usize = 24;
    /// A view's `private_metadata`.
    pub const PRIVATE_METADATA: usize = 3000;
    /// An input block's `label` and `hint`.
    pub const INPUT_LABEL: usize = 2000;
    /// A `plain_text_input`'s `max_length`.
    pub const INPUT_MAX_LENGTH: usize = 3000;
    /// Any `action_id`, `block_id` or `callback_id`.
    pub const ID: usize = 255;
}

/// The length of `text` as Slack's limits count it: Unicode scalar values.
pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Escapes the three characters `mrkdwn` treats as control characters (`&`, `<`, `>`), so that
/// outside data can neither mention anyone nor form a link.
pub fn escape_mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts already-escaped `mrkdwn` to at most `max` characters, ending with `…` when cut. An
/// entity (`&amp;`), a mention or link (`<@U…>`, `<#C…>`, `<!…>`, `<url|text>`) and a grapheme
/// cluster (a combining sequence, an emoji ZWJ sequence) are kept whole or dropped whole.
pub fn truncate_mrkdwn(text: &str, max: usize) -> String {
    truncate_units(text, max, mrkdwn_units(text))
}

/// Cuts `plain_text` to at most `max` characters, ending with `…` when cut, without splitting a
/// grapheme cluster.
pub fn truncate_plain(text: &str, max: usize) -> String {
    truncate_units(text, max, text.graphemes(true).collect())
}

/// Splits already-escaped `mrkdwn` into pieces of at most `max` characters without splitting an
/// entity, a mention, a link or a grapheme cluster (only a single one longer than `max`, which
/// is cut by characters), preferring a break at whitespace near the end of a piece. Nothing is
/// lost but the whitespace at a break; a blank text gives no piece.
pub fn split_mrkdwn(text: &str, max: usize) -> Vec<String> {
    /// How far back a break may move to land on whitespace.
    const SLACK: usize = 200;
    let max = max.max(1);
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut len = 0;
    // The byte offset and character count in `piece` before its last whitespace unit.
    let mut space: Option<(usize, usize)> = None;
    for unit in mrkdwn_units(text) {
        let n = char_len(unit);
        while len > 0 && len + n > max {
            match space.take() {
                Some((byte, chars)) if len - chars <= SLACK => {
                    let tail = piece.split_off(byte);
                    pieces.push(std::mem::take(&mut piece));
                    piece = tail.trim_start().to_owned();
                }
                _ => pieces.push(std::mem::take(&mut piece)),
            }
            len = char_len(&piece);
        }
        if n > max {
            let chars: Vec<char> = unit.chars().collect();
            for chunk in chars.chunks(max) {
                pieces.push(chunk.iter().collect());
            }
            continue;
        }
        if unit.trim().is_empty() {
            space = Some((piece.len(), len));
        }
        piece.push_str(unit);
        len += n;
    }
    pieces.push(piece);
    pieces.retain(|p| !p.trim().is_empty());
    pieces
}

fn truncate_units(text: &str, max: usize, units: Vec<&str>) -> String {
    if char_len(text) <= max {
        return text.to_owned();
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for unit in units {
        let n = char_len(unit);
        if used + n > budget {
            break;
        }
        out.push_str(unit);
        used += n;
    }
    out.truncate(out.trim_end().len());
    if max > 0 {
        out.push('…');
    }
    out
}

/// Splits escaped `mrkdwn` into the pieces a cut may not split: `<…>` spans, `&…;` entities and
/// the grapheme clusters between them.
fn mrkdwn_units(text: &str) -> Vec<&str> {
    let mut units = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let markup = if rest.starts_with('<') {
            rest.find('>').map(|end| end + 1)
        } else if rest.starts_with('&') {
            rest.char_indices()
                .skip(1)
                .take(10)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
                .filter(|&(_, c)| c == ';')
                .map(|(i, _)| i + 1)
        } else {
            None
        };
        if let Some(end) = markup {
            units.push(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        // Plain text up to the next markup character (never an empty run: `rest` starts with a
        // character that opens no markup here).
        let first = rest.chars().next().map_or(0, char::len_utf8);
        let end = rest[first..]
            .find(['<', '&'])
            .map_or(rest.len(), |i| i + first);
        units.extend(rest[..end].graphemes(true));
        rest = &rest[end..];
    }
    units
}

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
    /// An overflow menu (the `⋯` button) of 2 to 5 options; a choice arrives as a
    /// `block_actions` action with its `selected_option`.
    Overflow {
        /// The action id.
        action_id: String,
        /// The options (`plain_text` only).
        options: Vec<MenuOption>,
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
    /// A single choice among fixed options; the choice arrives as `selected_option`.
    StaticSelect {
        /// The action id.
        action_id: String,
        /// The placeholder (`plain_text`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<Text>,
        /// The options (1 to 100).
        options: Vec<SelectOption>,
        /// The option selected initially (one of `options`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_option: Option<SelectOption>,
    },
    /// Several choices among fixed options; the choices arrive as `selected_options`.
    MultiStaticSelect {
        /// The action id.
        action_id: String,
        /// The placeholder (`plain_text`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<Text>,
        /// The options (1 to 100).
        options: Vec<SelectOption>,
        /// The options selected initially (each one of `options`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_options: Option<Vec<SelectOption>>,
    },
    /// Several choices among options the app serves as the user types (a `block_suggestion`
    /// to the options load URL); the choices arrive as `selected_options`.
    MultiExternalSelect {
        /// The action id.
        action_id: String,
        /// The placeholder (`plain_text`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        placeholder: Option<Text>,
        /// How many characters the user types before Slack asks for options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_query_length: Option<u32>,
        /// The options selected initially.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_options: Option<Vec<SelectOption>>,
    },
}

/// An option of a select menu: a `plain_text` label (at most [`limits::OPTION_TEXT`]) and the
/// value sent back (at most [`limits::OPTION_VALUE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// The label.
    pub text: Text,
    /// The value.
    pub value: String,
}

impl SelectOption {
    /// An option whose label is `label`, cut to Slack's limit, and whose value is `value`.
    pub fn new(label: &str, value: impl Into<String>) -> Self {
        Self {
            text: Text::plain(truncate_plain(label, limits::OPTION_TEXT)),
            value: value.into(),
        }
    }
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
            | Self::Overflow { action_id, .. }
            | Self::UsersSelect { action_id, .. }
            | Self::PlainTextInput { action_id, .. }
            | Self::StaticSelect { action_id, .. }
            | Self::MultiStaticSelect { action_id, .. }
            | Self::MultiExternalSelect { action_id, .. } => action_id,
        }
    }
}

/// An option of a menu: a `plain_text` label and the value sent back, or (overflow menus
/// only) a link opened on choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuOption {
    /// The label (`plain_text`, at most 75 characters).
    pub text: Text,
    /// The value sent back (at most 150 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A link opened on choice (overflow menus only, at most 3000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
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
