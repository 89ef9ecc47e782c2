//! Firing an incident's due timers on a tick.

use crate::IncidentState;
use crate::cx::Cx;
use crate::state::initial_stage;
use crate::text;

impl Cx<'_> {
    /// Fires every timer of `st` that is due. Only [`Input::Tick`] fires timers, so an input
    /// never causes effects on behalf of another one.
    ///
    /// [`Input::Tick`]: crate::Input::Tick
    pub(crate) fn run_due(&mut self, st: &mut IncidentState) {
        let now = self.now;
        if st.card.retry_at.is_some_and(|at| at <= now) {
            st.card.retry_at = None;
        }
        if st
            .hydrate
            .as_ref()
            .and_then(|j| j.retry_at)
            .is_some_and(|at| at <= now)
        {
            self.send_hydrate(st);
        }
        if let Some(p) = &st.action {
            if p.deadline <= now {
                self.fail(st, text::not_confirmed(self.cfg.pending_timeout));
            } else if p.job.retry_at.is_some_and(|at| at <= now) {
                let restart = initial_stage(&p.kind);
                if let Some(p) = st.action.as_mut() {
                    p.stage = restart;
                }
                self.send_stage(st);
            }
        }
        self.run_reminders(st);
        self.sync_card(st);
        self.flush_thread(st);
    }
}
