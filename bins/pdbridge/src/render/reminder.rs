//! The buttons of an SLA reminder in a card's thread.

use ids::IncidentId;
use slack_client::blocks::{Block, Element, limits, truncate_plain};
use sync_core::{LineKind, TimelineLine};

use super::{ACTION_ESCALATE, ACTION_REASSIGN};

/// The buttons a thread message with reminder lines carries: **Escalate** under an overdue
/// acknowledgement and **Hand off** (the Reassign modal) under a "still on it?" question. They
/// carry the incident in their value, as the card's buttons do, so a click is handled alike.
pub fn reminder_actions(incident: &IncidentId, lines: &[TimelineLine]) -> Option<Block> {
    let value = truncate_plain(incident.as_str(), limits::BUTTON_VALUE);
    let mut elements = Vec::new();
    if lines
        .iter()
        .any(|l| matches!(l.kind, LineKind::AckOverdue { .. }))
    {
        elements.push(Element::button(ACTION_ESCALATE, "Escalate", value.clone()));
    }
    if lines.iter().any(|l| l.kind == LineKind::StillOnIt) {
        elements.push(Element::button(ACTION_REASSIGN, "Hand off", value));
    }
    if elements.is_empty() {
        return None;
    }
    Some(Block::Actions {
        block_id: Some(truncate_plain(
            &format!("pdbridge_reminder:{incident}"),
            limits::ID,
        )),
        elements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: LineKind) -> TimelineLine {
        TimelineLine {
            kind,
            actor: None,
            text: String::new(),
        }
    }

    fn labels(block: Option<Block>) -> String {
        block
            .map(|b| serde_json::to_string(&b).unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn reminders_carry_their_buttons_and_other_lines_none() {
        let id = IncidentId::new("PQ1K5C8");
        let ack = line(LineKind::AckOverdue {
            reminder: 1,
            channel_wide: false,
            urgency: None,
        });
        let json = labels(reminder_actions(&id, &[line(LineKind::Note), ack]));
        assert!(
            json.contains("\"action_id\":\"pdbridge_escalate\""),
            "{json}"
        );
        assert!(json.contains("\"value\":\"PQ1K5C8\""), "{json}");
        assert!(!json.contains("Hand off"), "{json}");
        let json = labels(reminder_actions(&id, &[line(LineKind::StillOnIt)]));
        assert!(
            json.contains("\"action_id\":\"pdbridge_reassign\""),
            "{json}"
        );
        assert!(json.contains("Hand off"), "{json}");
        assert_eq!(reminder_actions(&id, &[line(LineKind::Note)]), None);
    }
}
