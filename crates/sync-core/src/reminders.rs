//! SLA timers and reminders: thread lines the engine adds on its own when an incident stays
//! unacknowledged or unresolved too long. They never call PagerDuty.

use std::time::Duration;

use crate::cx::Cx;
use crate::state::Reminders;
use crate::text;
use crate::{IncidentState, LineKind, Status, TimelineLine, Timestamp};

impl Cx<'_> {
    /// Brings the reminder timers in step with the incident's data after an input: an
    /// acknowledgement stops the ack reminders and starts the "still on it?" ones, a
    /// reassignment restarts them for the new owner, and a resolution stops them all.
    pub(crate) fn sync_reminders(&mut self, st: &mut IncidentState) {
        let sla = &self.cfg.sla;
        let Some(info) = st.info.as_ref() else {
            return;
        };
        if info.status == Status::Resolved || sla.is_off() {
            st.reminders = Reminders::default();
            return;
        }
        let target = sla
            .target(
                info.urgency,
                info.priority.as_ref().map(|p| p.name.as_str()),
            )
            .unwrap_or_default();
        let assignees: Vec<_> = info.assignees.iter().map(|a| a.id.clone()).collect();
        let now = self.now;
        let r = &mut st.reminders;
        let opened = *r.opened_at.get_or_insert(now);
        if r.status != Some(info.status) || r.assignees != assignees {
            r.status = Some(info.status);
            r.assignees = assignees;
            r.since = Some(now);
            r.ack_sent = 0;
            r.ack_at = None;
            r.still_at = None;
            match info.status {
                Status::Triggered => r.ack_at = target.ack.map(|d| now.saturating_add(d)),
                Status::Acknowledged => {
                    r.still_at = sla.reminders.still_on_it.map(|d| now.saturating_add(d));
                }
                Status::Resolved => {}
            }
        }
        if !r.resolve_done && r.resolve_at.is_none() {
            r.resolve_at = target.resolve.map(|d| opened.saturating_add(d));
        }
    }

    /// Adds the reminder lines that are due. Each due time moves on (or clears) as its line is
    /// added, so one breach never yields two lines, whatever the ticks.
    pub(crate) fn run_reminders(&mut self, st: &mut IncidentState) {
        let now = self.now;
        let due = |at: Option<Timestamp>| at.is_some_and(|at| at <= now);
        let Some(info) = st.info.as_ref() else {
            return;
        };
        let reminders = self.cfg.sla.reminders;
        let target = self
            .cfg
            .sla
            .target(
                info.urgency,
                info.priority.as_ref().map(|p| p.name.as_str()),
            )
            .unwrap_or_default();
        let since = st.reminders.since.unwrap_or(now);
        let mut lines = Vec::new();
        if due(st.reminders.ack_at) {
            let r = &mut st.reminders;
            r.ack_sent += 1;
            let every = reminders.escalate_channel_after;
            let channel_wide = every > 0 && r.ack_sent.is_multiple_of(every);
            r.ack_at = reminders.ack_repeat.map(|d| now.saturating_add(d));
            lines.push(TimelineLine {
                kind: LineKind::AckOverdue {
                    reminder: r.ack_sent,
                    channel_wide,
                    urgency: info.urgency,
                },
                actor: None,
                text: text::ack_overdue(
                    elapsed(since, now),
                    target.ack.unwrap_or_default(),
                    &info.assignees,
                ),
            });
        }
        if due(st.reminders.still_at) {
            st.reminders.still_at = reminders.still_on_it.map(|d| now.saturating_add(d));
            lines.push(TimelineLine {
                kind: LineKind::StillOnIt,
                actor: None,
                text: text::still_on_it(&info.assignees, elapsed(since, now)),
            });
        }
        if due(st.reminders.resolve_at) {
            st.reminders.resolve_at = None;
            st.reminders.resolve_done = true;
            let opened = st.reminders.opened_at.unwrap_or(now);
            lines.push(TimelineLine {
                kind: LineKind::ResolveOverdue {
                    urgency: info.urgency,
                },
                actor: None,
                text: text::resolve_overdue(
                    elapsed(opened, now),
                    target.resolve.unwrap_or_default(),
                ),
            });
        }
        for line in lines {
            self.add_line(st, line);
        }
    }
}

/// The time from `from` to `to`, zero if `to` is earlier.
fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    to.duration_since(from)
}
