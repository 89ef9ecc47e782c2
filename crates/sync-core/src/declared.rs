//! An incident the bridge declared for a Slack user: the card shows who, and the incident's
//! trigger webhook (the echo of the creation) lands on the same card.

use crate::cx::Cx;
use crate::state::Job;
use crate::{Declared, DropReason, IncidentState};

impl Cx<'_> {
    pub(crate) fn declared(&mut self, st: &mut IncidentState, d: Declared) -> Option<DropReason> {
        if st.channel.is_none() {
            st.channel = d.target_channel;
        }
        st.declared = Some(d.declaration);
        if let Some(snapshot) = d.snapshot {
            st.apply_read_at(snapshot, d.as_of);
        }
        self.stop_if_resolved(st);
        if st.info.is_none() && st.hydrate.is_none() {
            st.hydrate = Some(Job::idle());
            self.send_hydrate(st);
        }
        self.sync_card(st);
        None
    }
}
