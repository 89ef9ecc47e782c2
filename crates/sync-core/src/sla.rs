//! SLA targets and reminder settings: the vocabulary of the `reminders` sub-machine.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Urgency;

/// How long an incident may stay unacknowledged and unresolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTarget {
    /// The time allowed from trigger (or reassignment) to acknowledgement; `None` sets none.
    #[serde(default)]
    pub ack: Option<Duration>,
    /// The time allowed from trigger (or reopening) to resolution; `None` sets none.
    #[serde(default)]
    pub resolve: Option<Duration>,
}

/// How often reminders repeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderConfig {
    /// After the first ack breach, remind again this often; `None` reminds once.
    #[serde(default)]
    pub ack_repeat: Option<Duration>,
    /// Every this many ack reminders, one goes channel-wide; 0 never does.
    #[serde(default)]
    pub escalate_channel_after: u32,
    /// While acknowledged and unresolved, ask the owner this often; `None` never asks.
    #[serde(default)]
    pub still_on_it: Option<Duration>,
}

/// The `[sla]` targets and `[reminders]` settings. The default sets no target and no reminder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaConfig {
    /// Targets by PagerDuty priority name (such as `P1`), compared case-insensitively.
    #[serde(default)]
    pub by_priority: BTreeMap<String, SlaTarget>,
    /// Targets by urgency.
    #[serde(default)]
    pub by_urgency: BTreeMap<Urgency, SlaTarget>,
    /// The reminder settings.
    #[serde(default)]
    pub reminders: ReminderConfig,
}

impl SlaConfig {
    /// The target of an incident: the most specific match wins, its priority's over its
    /// urgency's.
    pub fn target(&self, urgency: Option<Urgency>, priority: Option<&str>) -> Option<SlaTarget> {
        let by_priority = priority.and_then(|p| {
            self.by_priority
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(p))
                .map(|(_, t)| *t)
        });
        by_priority.or_else(|| urgency.and_then(|u| self.by_urgency.get(&u).copied()))
    }

    /// True when no target and no reminder is set: the engine then keeps no reminder timer.
    pub fn is_off(&self) -> bool {
        self.by_priority.is_empty()
            && self.by_urgency.is_empty()
            && self.reminders.still_on_it.is_none()
    }
}
