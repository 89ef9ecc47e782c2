//! The incident's Slack thread: lines buffer, coalesce and go out one post at a time.

use std::time::Duration;

use crate::cx::{Cx, as_unsent};
use crate::{DropReason, Effect, EffectId, IncidentState, Outcome, TimelineLine};

impl Cx<'_> {
    pub(crate) fn add_line(&mut self, st: &mut IncidentState, line: TimelineLine) {
        st.thread.buffer.push(line);
        if st.thread.flush_at.is_none() {
            st.thread.flush_at = Some(self.now.saturating_add(self.cfg.coalesce_window));
        }
    }

    pub(crate) fn flush_thread(&mut self, st: &mut IncidentState) {
        let (Some(channel), Some(thread_ts)) = (st.channel.clone(), st.card.ts.clone()) else {
            return;
        };
        if st.thread.inflight.is_some() || st.thread.flush_at.is_none_or(|at| at > self.now) {
            return;
        }
        st.thread.flush_at = None;
        if st.thread.buffer.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut st.thread.buffer);
        let seq = st.next_seq();
        let id = EffectId::new(&st.id, format!("thread{seq}"));
        st.thread.inflight = Some((id.clone(), lines.clone()));
        self.emit(Effect::PostThread {
            id,
            channel,
            thread_ts,
            lines,
        });
    }

    pub(crate) fn thread_done(
        &mut self,
        st: &mut IncidentState,
        outcome: Outcome,
    ) -> Option<DropReason> {
        let Some((_, lines)) = st.thread.inflight.take() else {
            return Some(DropReason::UnknownEffect);
        };
        // A thread message that may have been posted is posted again: its lines may then show
        // twice, which beats losing them.
        match as_unsent(outcome) {
            Outcome::RateLimited { retry_after } => {
                self.requeue_lines(st, lines, retry_after);
                None
            }
            Outcome::Retryable { retry_after, .. } => {
                st.thread.failures += 1;
                if st.thread.failures >= self.cfg.max_attempts {
                    st.thread.failures = 0;
                    return Some(DropReason::Failed);
                }
                let delay = self.retry_delay(st.thread.failures, retry_after);
                self.requeue_lines(st, lines, delay);
                None
            }
            Outcome::Permanent { .. } => {
                st.thread.failures = 0;
                Some(DropReason::Failed)
            }
            _ => {
                st.thread.failures = 0;
                None
            }
        }
    }

    pub(crate) fn requeue_lines(
        &mut self,
        st: &mut IncidentState,
        mut lines: Vec<TimelineLine>,
        delay: Duration,
    ) {
        lines.append(&mut st.thread.buffer);
        st.thread.buffer = lines;
        let at = self.now.saturating_add(delay);
        st.thread.flush_at = Some(st.thread.flush_at.map_or(at, |f| f.max(at)));
    }
}
