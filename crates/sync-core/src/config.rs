//! Engine configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, SlaConfig};

/// Timing and retry settings, fixed at construction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Delays before retry 1, 2, …; the last entry repeats. Must not be empty.
    pub retry_backoff: Vec<Duration>,
    /// Attempts of a PagerDuty call (reads and mutations) before the action fails; at least 1.
    /// Slack posts and card updates retry without limit (a first post or a final state is never
    /// dropped); thread lines give up after this many attempts, and so should the caller's
    /// retries of [`crate::Effect::Ephemeral`] replies, which the engine does not await.
    pub max_attempts: u32,
    /// Thread lines produced within this window after the first one are posted as one message.
    pub coalesce_window: Duration,
    /// A Slack action still waiting for PagerDuty after this long fails and its actor is told.
    pub pending_timeout: Duration,
    /// How long an expected echo of the bridge's own mutation is remembered.
    pub echo_ttl: Duration,
    /// How long webhook/event ids and action keys are remembered for deduplication.
    pub dedupe_ttl: Duration,
    /// The most webhook and event ids remembered at once; past it the oldest are forgotten
    /// first, so memory stays bounded whatever the traffic. A caller that deduplicates
    /// deliveries durably before they reach the engine (pdbridge's inbox does, for the whole
    /// `dedupe_ttl`) needs only a short window here.
    #[serde(default = "default_dedupe_capacity")]
    pub dedupe_capacity: usize,
    /// The most Slack action keys remembered per incident; past it the oldest are forgotten
    /// first, so a burst of clicks on one card never grows that incident's state (which is
    /// stored whole on every change). pdbridge's inbox deduplicates actions durably, so a
    /// small window suffices here.
    #[serde(default = "default_action_dedupe_capacity")]
    pub action_dedupe_capacity: usize,
    /// The SLA targets and reminders (`[sla]` and `[reminders]`); the default sets none.
    #[serde(default)]
    pub sla: SlaConfig,
}

fn default_dedupe_capacity() -> usize {
    EngineConfig::default().dedupe_capacity
}

fn default_action_dedupe_capacity() -> usize {
    EngineConfig::default().action_dedupe_capacity
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry_backoff: [1, 5, 30, 120, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 5,
            coalesce_window: Duration::from_secs(2),
            pending_timeout: Duration::from_secs(15 * 60),
            echo_ttl: Duration::from_secs(10 * 60),
            dedupe_ttl: Duration::from_secs(7 * 24 * 3600),
            dedupe_capacity: 32_768,
            action_dedupe_capacity: 64,
            sla: SlaConfig::default(),
        }
    }
}

impl EngineConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), Error> {
        if self.retry_backoff.is_empty() {
            return Err(Error::InvalidConfig(
                "retry_backoff must have at least one entry",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::InvalidConfig("max_attempts must be at least 1"));
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let index = usize::try_from(retry.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_backoff
            .get(index)
            .or(self.retry_backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    /// The wait before retrying after `failures` failed attempts: the configured backoff, but
    /// never sooner than the platform's `Retry-After`. The engine's own retries use it, and a
    /// caller retrying an [`crate::Effect::Ephemeral`] reply should too.
    pub fn retry_delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.backoff(failures).max(retry_after.unwrap_or_default())
    }
}
