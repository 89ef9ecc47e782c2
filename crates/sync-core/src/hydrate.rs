//! Hydration: reading an incident the engine has no data for yet.

use crate::cx::{Cx, as_unsent};
use crate::{DropReason, Effect, EffectId, IncidentState, Outcome, PdRead};

impl Cx<'_> {
    pub(crate) fn send_hydrate(&mut self, st: &mut IncidentState) {
        let seq = st.next_seq();
        let id = EffectId::new(&st.id, format!("hydrate{seq}"));
        if let Some(job) = st.hydrate.as_mut() {
            job.start(id.clone(), self.now);
        }
        self.emit(Effect::PdRead {
            id,
            incident: st.id.clone(),
            read: PdRead::Incident,
        });
    }

    pub(crate) fn hydrate_done(
        &mut self,
        st: &mut IncidentState,
        outcome: Outcome,
    ) -> Option<DropReason> {
        let Some(job) = st.hydrate.as_mut() else {
            return Some(DropReason::UnknownEffect);
        };
        job.inflight = None;
        let sent_at = job.sent_at;
        // A read changes nothing in PagerDuty: repeating it is always safe.
        match as_unsent(outcome) {
            Outcome::PdIncident(fresh) => {
                st.hydrate = None;
                st.apply_read(fresh, sent_at);
                self.stop_if_resolved(st);
                self.sync_card(st);
                None
            }
            Outcome::RateLimited { retry_after } => {
                job.retry_at = Some(self.now.saturating_add(retry_after));
                None
            }
            Outcome::Retryable { retry_after, .. } if job.failures + 1 < self.cfg.max_attempts => {
                job.failures += 1;
                let delay = self.retry_delay(job.failures, retry_after);
                job.retry_at = Some(self.now.saturating_add(delay));
                None
            }
            _ => {
                st.hydrate = None;
                Some(DropReason::Failed)
            }
        }
    }
}
