//! The declare modal and the two ways in: the text of `/pd trigger <service> <severity>
//! <title…>` and the modal's submitted state. Pure: no I/O.

use std::collections::BTreeMap;

use ids::{ChannelId, ServiceId, SlackUserId};
use serde::{Deserialize, Serialize};
use slack_client::blocks::{
    Block, Element, SelectOption, Text, View, char_len, limits, truncate_plain,
};
use slack_client::interaction::State;

use crate::config::DeclareConfig;

/// The declare modal's `callback_id`.
pub const CALLBACK_DECLARE: &str = "pdbridge_declare";
/// The service input's block (its action id is [`SERVICE_INPUT`]).
pub const SERVICE_BLOCK: &str = "declare_service";
/// The service multi-select.
pub const SERVICE_INPUT: &str = "declare_service_select";
/// The severity input's block.
pub const SEVERITY_BLOCK: &str = "declare_severity";
/// The severity select.
pub const SEVERITY_INPUT: &str = "declare_severity_select";
/// The title input's block.
pub const TITLE_BLOCK: &str = "declare_title";
/// The title field.
pub const TITLE_INPUT: &str = "declare_title_text";
/// The details input's block.
pub const DETAILS_BLOCK: &str = "declare_details";
/// The details field.
pub const DETAILS_INPUT: &str = "declare_details_text";
/// The assignee input's block.
pub const ASSIGN_BLOCK: &str = "declare_assign";
/// The assignee picker.
pub const ASSIGN_INPUT: &str = "declare_assign_user";
/// The longest title, in characters after trimming.
pub const TITLE_MAX_CHARS: usize = 255;
/// The longest details text, in characters after trimming.
pub const DETAILS_MAX_CHARS: usize = 3000;

/// What the modal carries back in `private_metadata`: where to answer the requester.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclareContext {
    /// The channel the command or shortcut came from.
    pub channel: Option<ChannelId>,
    /// The `response_url` of the command or shortcut.
    pub response_url: Option<String>,
    /// The requester's Slack user name, for the incident body.
    pub requester_name: Option<String>,
}

impl DeclareContext {
    /// Encodes the context as `private_metadata`.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes `private_metadata`; `None` when it is not ours.
    pub fn decode(metadata: &str) -> Option<Self> {
        serde_json::from_str(metadata).ok()
    }
}

/// What the modal opens with, and why a field needs a look (shown under it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    /// Preselected service names.
    pub services: Vec<String>,
    /// The preselected severity.
    pub severity: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The details.
    pub details: Option<String>,
    /// Block id to the reason shown on that field.
    pub reasons: BTreeMap<&'static str, String>,
}

/// A complete declaration request from the text form or the modal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The chosen services as `(name, id)`, at least one: a `[declare]` name, or the id itself
    /// for a service found with `search_services`.
    pub services: Vec<(String, ServiceId)>,
    /// The severity name.
    pub severity: String,
    /// The title, trimmed, 1 to [`TITLE_MAX_CHARS`] characters.
    pub title: String,
    /// The details, trimmed, if any.
    pub details: Option<String>,
    /// Who to assign the incidents to instead of the escalation policy.
    pub assign_to: Option<SlackUserId>,
}

/// Why a title is refused; its `Display` is the message shown under the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TitleError {
    /// Empty after trimming.
    Empty,
    /// Longer than [`TITLE_MAX_CHARS`]: this many characters.
    TooLong(usize),
}

impl std::fmt::Display for TitleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Write a title."),
            Self::TooLong(n) => write!(
                f,
                "Titles are at most {TITLE_MAX_CHARS} characters; this one has {n}."
            ),
        }
    }
}

/// Checks a title: trimmed, not empty, at most [`TITLE_MAX_CHARS`] characters.
pub fn check_title(title: &str) -> Result<String, TitleError> {
    let title = title.trim();
    let n = char_len(title);
    if n == 0 {
        Err(TitleError::Empty)
    } else if n > TITLE_MAX_CHARS {
        Err(TitleError::TooLong(n))
    } else {
        Ok(title.to_owned())
    }
}

/// Reads `/pd trigger <service> <severity> <title…>`: a complete request, or what the modal
/// should open with (and why) when anything is missing, unknown or too long.
pub fn parse_text(config: &DeclareConfig, text: &str) -> Result<Request, Prefill> {
    let mut prefill = Prefill::default();
    let text = text.trim();
    if text.is_empty() {
        prefill.services = default_services(config);
        return Err(prefill);
    }
    let (service, rest) = split_word(text);
    let (severity, title) = split_word(rest);
    let chosen = config.resolve_service(service);
    match &chosen {
        Some((name, id)) => prefill.services.push(option_value(config, name, id)),
        None => {
            let names: Vec<&str> = config.services.keys().map(String::as_str).collect();
            let or_search = if config.search_services {
                " or search for it"
            } else {
                ""
            };
            prefill.reasons.insert(
                SERVICE_BLOCK,
                format!(
                    "No service is called `{service}`; choose one of {}{or_search}.",
                    names.join(", ")
                ),
            );
        }
    }
    match config.severity(severity) {
        Some(s) => prefill.severity = Some(s.name.clone()),
        None if severity.is_empty() => {
            prefill
                .reasons
                .insert(SEVERITY_BLOCK, "Choose a severity.".to_owned());
        }
        None => {
            let names: Vec<&str> = config.severities.iter().map(|s| s.name.as_str()).collect();
            prefill.reasons.insert(
                SEVERITY_BLOCK,
                format!(
                    "No severity is called `{severity}`; choose one of {}.",
                    names.join(", ")
                ),
            );
        }
    }
    match check_title(title) {
        Ok(title) => prefill.title = Some(title),
        Err(why) => {
            if !title.trim().is_empty() {
                prefill.title = Some(title.trim().to_owned());
            }
            prefill.reasons.insert(TITLE_BLOCK, why.to_string());
        }
    }
    match (
        &prefill.severity,
        &prefill.title,
        chosen,
        prefill.reasons.is_empty(),
    ) {
        (Some(severity), Some(title), Some(chosen), true) => Ok(Request {
            services: vec![chosen],
            severity: severity.clone(),
            title: title.clone(),
            details: None,
            assign_to: None,
        }),
        _ => Err(prefill),
    }
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// Reads a submitted declare modal: the request, or `block_id` → message for
/// `response_action: errors`.
pub fn parse_submission(
    config: &DeclareConfig,
    state: &State,
) -> Result<Request, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut services: Vec<(String, ServiceId)> = Vec::new();
    for value in state.selected_values(SERVICE_BLOCK, SERVICE_INPUT) {
        match config.resolve_service(value) {
            Some(chosen) if !services.iter().any(|s| s.1 == chosen.1) => services.push(chosen),
            Some(_) => {}
            None => {
                errors.insert(
                    SERVICE_BLOCK.to_owned(),
                    format!("`{value}` is no longer configured; choose again."),
                );
            }
        }
    }
    if services.is_empty() && !errors.contains_key(SERVICE_BLOCK) {
        errors.insert(
            SERVICE_BLOCK.to_owned(),
            "Choose at least one service.".to_owned(),
        );
    }
    let severity = state
        .selected_value(SEVERITY_BLOCK, SEVERITY_INPUT)
        .and_then(|v| config.severity(v))
        .map(|s| s.name.clone());
    if severity.is_none() {
        errors.insert(SEVERITY_BLOCK.to_owned(), "Choose a severity.".to_owned());
    }
    let title = check_title(state.text(TITLE_BLOCK, TITLE_INPUT).unwrap_or(""))
        .map_err(|why| errors.insert(TITLE_BLOCK.to_owned(), why.to_string()))
        .ok();
    let details = state
        .text(DETAILS_BLOCK, DETAILS_INPUT)
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if let Some(d) = details
        && char_len(d) > DETAILS_MAX_CHARS
    {
        errors.insert(
            DETAILS_BLOCK.to_owned(),
            format!(
                "Details are at most {DETAILS_MAX_CHARS} characters; these have {}.",
                char_len(d)
            ),
        );
    }
    match (severity, title, errors.is_empty()) {
        (Some(severity), Some(title), true) => Ok(Request {
            services,
            severity,
            title,
            details: details.map(str::to_owned),
            assign_to: state.selected_user(ASSIGN_BLOCK, ASSIGN_INPUT).cloned(),
        }),
        _ => Err(errors),
    }
}

/// The prefill of the **Declare incident** message shortcut: the title is the message's first
/// line, the details its text and permalink.
pub fn from_message(config: &DeclareConfig, text: &str, permalink: Option<&str>) -> Prefill {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut details = text.trim().to_owned();
    if let Some(link) = permalink {
        details = format!("{details}\n\nFrom Slack: {link}");
    }
    let mut prefill = Prefill {
        services: default_services(config),
        title: Some(first.to_owned()).filter(|t| !t.is_empty()),
        details: Some(details).filter(|d| !d.is_empty()),
        ..Prefill::default()
    };
    if let Some(Err(why)) = prefill.title.as_deref().map(check_title) {
        prefill.reasons.insert(TITLE_BLOCK, why.to_string());
    }
    prefill
}

/// The value a service's option carries: its name in the static select, its id when
/// services are searched (the external select's options come from PagerDuty).
fn option_value(config: &DeclareConfig, name: &str, id: &ServiceId) -> String {
    if config.search_services {
        id.to_string()
    } else {
        name.to_owned()
    }
}

/// The label of a service's option: `name (id)`, or the id alone for a searched service.
pub fn option_label(name: &str, id: &ServiceId) -> String {
    if name == id.as_str() {
        name.to_owned()
    } else {
        format!("{name} ({id})")
    }
}

/// The preselected service: `declare.default_service`, as its option's value.
fn default_services(config: &DeclareConfig) -> Vec<String> {
    config
        .default_service
        .iter()
        .filter_map(|name| config.resolve_service(name))
        .map(|(name, id)| option_value(config, &name, &id))
        .collect()
}

/// The declare modal.
pub fn modal(config: &DeclareConfig, prefill: &Prefill, ctx: &DeclareContext) -> View {
    let mut view = View::modal("Declare incident");
    view.callback_id = Some(CALLBACK_DECLARE.to_owned());
    view.submit = Some(Text::plain("Declare"));
    view.close = Some(Text::plain("Cancel"));
    view.private_metadata = Some(ctx.encode());
    let hint = |block: &'static str, default: &str| {
        let text = prefill.reasons.get(block).map_or(default, String::as_str);
        Some(Text::plain(truncate_plain(text, limits::INPUT_LABEL)))
    };
    let service_options: Vec<SelectOption> = config
        .services
        .iter()
        .take(100)
        .map(|(name, id)| {
            SelectOption::new(&option_label(name, id), option_value(config, name, id))
        })
        .collect();
    let initial_services: Vec<SelectOption> = prefill
        .services
        .iter()
        .filter_map(|value| config.resolve_service(value))
        .map(|(name, id)| {
            SelectOption::new(&option_label(&name, &id), option_value(config, &name, &id))
        })
        .collect();
    let initial_services = Some(initial_services).filter(|o| !o.is_empty());
    let service_element = if config.search_services {
        Element::MultiExternalSelect {
            action_id: SERVICE_INPUT.to_owned(),
            placeholder: Some(Text::plain("Search PagerDuty services")),
            min_query_length: Some(1),
            initial_options: initial_services,
        }
    } else {
        Element::MultiStaticSelect {
            action_id: SERVICE_INPUT.to_owned(),
            placeholder: Some(Text::plain("Choose services")),
            options: service_options,
            initial_options: initial_services,
        }
    };
    let severity_options: Vec<SelectOption> = config
        .severities
        .iter()
        .take(100)
        .map(|s| {
            let urgency = match s.urgency {
                crate::config::Urgency::High => "high urgency",
                crate::config::Urgency::Low => "low urgency",
            };
            SelectOption::new(&format!("{} ({urgency})", s.name), s.name.clone())
        })
        .collect();
    let initial_severity = severity_options
        .iter()
        .find(|o| prefill.severity.as_deref() == Some(o.value.as_str()))
        .cloned();
    let title = prefill
        .title
        .as_deref()
        .map(|t| truncate_plain(t, TITLE_MAX_CHARS));
    let details = prefill
        .details
        .as_deref()
        .map(|d| truncate_plain(d, DETAILS_MAX_CHARS));
    view.blocks = vec![
        Block::Input {
            block_id: Some(SERVICE_BLOCK.to_owned()),
            label: Text::plain("Service"),
            element: service_element,
            optional: Some(false),
            hint: hint(
                SERVICE_BLOCK,
                "One incident per service; incidents declared together link each other.",
            ),
        },
        Block::Input {
            block_id: Some(SEVERITY_BLOCK.to_owned()),
            label: Text::plain("Severity"),
            element: Element::StaticSelect {
                action_id: SEVERITY_INPUT.to_owned(),
                placeholder: Some(Text::plain("Choose a severity")),
                options: severity_options,
                initial_option: initial_severity,
            },
            optional: Some(false),
            hint: hint(SEVERITY_BLOCK, "Sets the incident's urgency and priority."),
        },
        Block::Input {
            block_id: Some(TITLE_BLOCK.to_owned()),
            label: Text::plain("Title"),
            element: Element::PlainTextInput {
                action_id: TITLE_INPUT.to_owned(),
                multiline: Some(false),
                max_length: Some(TITLE_MAX_CHARS as u32),
                min_length: None,
                placeholder: Some(Text::plain("What is wrong?")),
                initial_value: title,
            },
            optional: Some(false),
            hint: hint(TITLE_BLOCK, "At most 255 characters."),
        },
        Block::Input {
            block_id: Some(DETAILS_BLOCK.to_owned()),
            label: Text::plain("Details"),
            element: Element::PlainTextInput {
                action_id: DETAILS_INPUT.to_owned(),
                multiline: Some(true),
                max_length: Some(DETAILS_MAX_CHARS as u32),
                min_length: None,
                placeholder: None,
                initial_value: details,
            },
            optional: Some(true),
            hint: hint(DETAILS_BLOCK, "Shown on the PagerDuty incident."),
        },
        Block::Input {
            block_id: Some(ASSIGN_BLOCK.to_owned()),
            label: Text::plain("Assign to"),
            element: Element::UsersSelect {
                action_id: ASSIGN_INPUT.to_owned(),
                placeholder: Some(Text::plain("The service's escalation policy")),
                initial_user: None,
            },
            optional: Some(true),
            hint: hint(
                ASSIGN_BLOCK,
                "Leave empty to page the service's escalation policy.",
            ),
        },
    ];
    view
}
