//! The context one input is handled in for one incident, shared by the sub-machines.

use std::time::Duration;

use ids::IncidentId;

use crate::{DropReason, Effect, EngineConfig, Outcome, Timestamp};

/// The context of one input's processing for one incident.
pub(crate) struct Cx<'a> {
    pub(crate) cfg: &'a EngineConfig,
    pub(crate) now: Timestamp,
    pub(crate) out: &'a mut Vec<Effect>,
}

impl Cx<'_> {
    pub(crate) fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    /// The wait before retrying after `failures` failed attempts: the configured backoff, but
    /// never sooner than the platform's `Retry-After`.
    pub(crate) fn retry_delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.cfg.retry_delay(failures, retry_after)
    }
}

pub(crate) fn dropped(id: &IncidentId, reason: DropReason) -> Effect {
    Effect::Dropped {
        incident: Some(id.clone()),
        reason,
    }
}

/// The outcome with "maybe sent" read as an ordinary retryable failure, for calls that are safe
/// to repeat or whose caller has already noted that the attempt may have taken effect.
pub(crate) fn as_unsent(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::MaybeSent { error } => Outcome::Retryable {
            error,
            retry_after: None,
        },
        other => other,
    }
}
