//! The incident's Slack card: one post, then updates to the latest view, one call in flight.

use crate::cx::Cx;
use crate::state::view;
use crate::text;
use crate::{DropReason, Effect, EffectId, IncidentState, Outcome};

impl Cx<'_> {
    /// Posts the card, or updates it to the current view, unless a call is in flight or waiting.
    pub(crate) fn sync_card(&mut self, st: &mut IncidentState) {
        let Some(channel) = st.channel.clone() else {
            return;
        };
        let Some(card) = view(st) else {
            return;
        };
        if st.card.inflight.is_some() || st.card.retry_at.is_some() {
            return;
        }
        match st.card.ts.clone() {
            None => {
                if st.card.post_failed.is_some() {
                    return;
                }
                let seq = st.next_seq();
                let id = EffectId::new(&st.id, format!("card{seq}"));
                st.card.inflight = Some(id.clone());
                st.card.shown = Some(card.clone());
                let first = *st.card.first_post_at.get_or_insert(self.now);
                // A post that may have reached Slack is never repeated without looking for it.
                let look_since = st.card.maybe_posted.then_some(first);
                self.emit(Effect::PostCard {
                    id,
                    channel,
                    card,
                    look_since,
                });
            }
            Some(ts) => {
                if st.card.shown.as_ref() == Some(&card) {
                    return;
                }
                let seq = st.next_seq();
                let id = EffectId::new(&st.id, format!("card{seq}"));
                st.card.inflight = Some(id.clone());
                st.card.shown = Some(card.clone());
                self.emit(Effect::UpdateCard {
                    id,
                    channel,
                    ts,
                    card,
                });
            }
        }
    }

    pub(crate) fn card_done(
        &mut self,
        st: &mut IncidentState,
        outcome: Outcome,
    ) -> Option<DropReason> {
        st.card.inflight = None;
        let posting = st.card.ts.is_none();
        match outcome {
            Outcome::Posted { ts } if posting => {
                st.card.ts = Some(ts);
                st.card.failures = 0;
                st.card.first_post_at = None;
                st.card.maybe_posted = false;
                self.sync_card(st);
                // Lines that waited for the card go out now if their window has passed.
                self.flush_thread(st);
                return None;
            }
            Outcome::RateLimited { retry_after } => {
                st.card.shown = None;
                st.card.retry_at = Some(self.now.saturating_add(retry_after));
            }
            Outcome::Permanent { error } => {
                st.card.shown = None;
                if !st.card.minimal {
                    // Slack refused the card: show the minimal one at once, so the incident
                    // does not go silent (or stay stale) whatever in its content was refused.
                    st.card.minimal = true;
                    self.sync_card(st);
                    return Some(DropReason::Failed);
                }
                // The minimal card failed too, so the content was not the cause (a channel
                // the bot cannot post in): the next attempt shows the full card again.
                st.card.minimal = false;
                // Nothing is shown; the next change (or the reconciler) tries again.
                if posting {
                    st.card.post_failed = Some(error);
                }
                return Some(DropReason::Failed);
            }
            Outcome::Retryable { retry_after, .. } => {
                st.card.failures += 1;
                st.card.shown = None;
                let delay = self.retry_delay(st.card.failures, retry_after);
                st.card.retry_at = Some(self.now.saturating_add(delay));
            }
            Outcome::MaybeSent { .. } => {
                // The card may exist: the next post looks for it first. An update is idempotent.
                st.card.maybe_posted |= posting;
                st.card.failures += 1;
                st.card.shown = None;
                let delay = self.retry_delay(st.card.failures, None);
                st.card.retry_at = Some(self.now.saturating_add(delay));
            }
            _ if posting => {
                // A post that reports success without a `ts` may have posted a card the engine
                // cannot update; posting again could make a second one, so wait for the
                // reconciler instead.
                st.card.shown = None;
                st.card.post_failed = Some(text::post_without_ts());
                return Some(DropReason::Failed);
            }
            _ => st.card.failures = 0,
        }
        self.sync_card(st);
        None
    }
}
