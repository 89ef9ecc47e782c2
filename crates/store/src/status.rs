//! Summary queries for `pdbridge status`, and retention pruning.

use ids::Timestamp;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::audit::UnmappedUser;
use crate::inbox::{UnparsedWebhook, limit_param};
use crate::outbox::OutboxStats;
use crate::types::{EffectId, Millis, OrderKey, opt_ts, ts};
use crate::{Error, Tx};

/// A failed effect attempt, for `pdbridge status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentFailure {
    /// The effect.
    pub effect_id: EffectId,
    /// Its FIFO lane (normally the incident id).
    pub order_key: OrderKey,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last error text.
    pub error: String,
    /// When the last error was recorded.
    pub at: Timestamp,
    /// Whether the effect was given up on (otherwise it is still being retried).
    pub abandoned: bool,
}

/// Everything `pdbridge status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSummary {
    /// Incident records stored.
    pub incidents_tracked: u64,
    /// Unresolved incidents whose card has been posted.
    pub open_cards: u64,
    /// Unresolved incidents whose card has not been posted (yet).
    pub cards_not_posted: u64,
    /// Outbox figures.
    pub outbox: OutboxStats,
    /// Arrival time of the newest stored webhook.
    pub last_webhook_at: Option<Timestamp>,
    /// Webhooks stored but not processed.
    pub unprocessed_webhooks: u64,
    /// Slack actions stored but not processed.
    pub unprocessed_actions: u64,
    /// Incidents declared from Slack that PagerDuty has not answered for good yet.
    #[serde(default)]
    pub pending_declarations: u64,
    /// Verified PagerDuty deliveries that did not parse, stored (until pruned).
    pub unparsed_webhooks: u64,
    /// The newest of them, newest first.
    pub recent_unparsed: Vec<UnparsedWebhook>,
    /// Card posts (`post_card` effects) that failed permanently and are still kept (within the
    /// retention): after a refused full card the engine posts a minimal one.
    #[serde(default)]
    pub card_posts_failed: u64,
    /// The newest effect failures, newest first.
    pub recent_failures: Vec<RecentFailure>,
    /// Unmapped Slack users, most recently seen first.
    pub unmapped_users: Vec<UnmappedUser>,
}

/// How many rows [`Tx::prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneReport {
    /// Processed webhooks older than the retention.
    pub webhooks: u64,
    /// Processed Slack actions older than the retention.
    pub actions: u64,
    /// Effects finished longer ago than the retention.
    pub effects: u64,
    /// Identity entries expired at `now`.
    pub identities: u64,
    /// Deliveries that did not parse, older than the retention.
    pub unparsed: u64,
    /// Declarations finished longer ago than the retention (pending ones are kept).
    pub declarations: u64,
}

impl Tx<'_> {
    /// The status summary at `now`, with at most `limit` failures and unmapped users.
    pub fn status(&self, now: Timestamp, limit: usize) -> Result<StatusSummary, Error> {
        let (incidents_tracked, open_cards, cards_not_posted) = self.tx.query_row(
            "SELECT count(*),
                    coalesce(sum(resolved = 0 AND card_ts IS NOT NULL), 0),
                    coalesce(sum(resolved = 0 AND card_ts IS NULL), 0)
             FROM incidents",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (last_webhook_at, unprocessed_webhooks) = self.tx.query_row(
            "SELECT max(received_at), coalesce(sum(processed_at IS NULL), 0) FROM pd_inbox",
            [],
            |r| Ok((opt_ts(r, 0)?, r.get(1)?)),
        )?;
        let unprocessed_actions = self.tx.query_row(
            "SELECT count(*) FROM slack_inbox WHERE processed_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(StatusSummary {
            incidents_tracked,
            open_cards,
            cards_not_posted,
            outbox: self.outbox_stats(now)?,
            last_webhook_at,
            unprocessed_webhooks,
            unprocessed_actions,
            pending_declarations: self.row(
                "SELECT count(*) FROM declarations WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?,
            unparsed_webhooks: self.row("SELECT count(*) FROM pd_unparsed", [], |r| r.get(0))?,
            recent_unparsed: self.unparsed_webhooks(limit)?,
            card_posts_failed: self.abandoned_effects("post_card")?,
            recent_failures: self.recent_failures(limit)?,
            unmapped_users: self.unmapped_users(limit)?,
        })
    }

    /// How many effects were given up on whose payload is a JSON object with the top-level key
    /// `kind` (an engine effect's kind, such as `post_card`), among the rows still kept.
    pub fn abandoned_effects(&self, kind: &str) -> Result<u64, Error> {
        let path = format!("$.{kind}");
        Ok(self.tx.query_row(
            "SELECT count(*) FROM outbox
             WHERE last_error_at IS NOT NULL AND abandoned = 1
               AND json_type(payload, ?1) IS NOT NULL",
            [path],
            |r| r.get(0),
        )?)
    }

    /// The newest `limit` effect failures (retrying or abandoned), newest first.
    pub fn recent_failures(&self, limit: usize) -> Result<Vec<RecentFailure>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT effect_id, order_key, attempts, last_error, last_error_at, abandoned
             FROM outbox WHERE last_error_at IS NOT NULL
             ORDER BY last_error_at DESC, seq DESC LIMIT +?1",
        )?;
        let rows = stmt.query_map([limit_param(limit)], |r| {
            Ok(RecentFailure {
                effect_id: EffectId::new(r.get::<_, String>(0)?),
                order_key: OrderKey::new(r.get::<_, String>(1)?),
                attempts: r.get(2)?,
                error: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                at: ts(r, 4)?,
                abandoned: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes what the retention allows: processed inbox rows that arrived before
    /// `now - retention`, effects finished before `now - retention`, and identity entries
    /// expired at `now`, and deliveries that did not parse that arrived before `now - retention`.
    /// Unprocessed inbox rows and unfinished effects are never deleted.
    pub fn prune(&mut self, now: Timestamp) -> Result<PruneReport, Error> {
        let cutoff = Millis(now.saturating_sub(self.settings.retention));
        let webhooks = self.tx.execute(
            "DELETE FROM pd_inbox WHERE processed_at IS NOT NULL AND received_at < ?1",
            [cutoff],
        )?;
        let actions = self.tx.execute(
            "DELETE FROM slack_inbox WHERE processed_at IS NOT NULL AND received_at < ?1",
            [cutoff],
        )?;
        let effects = self.tx.execute(
            "DELETE FROM outbox WHERE finished_at IS NOT NULL AND finished_at < ?1",
            [cutoff],
        )?;
        let identities = self.tx.execute(
            "DELETE FROM identity_cache WHERE expires_at <= ?1",
            params![Millis(now)],
        )?;
        let unparsed = self
            .tx
            .execute("DELETE FROM pd_unparsed WHERE received_at < ?1", [cutoff])?;
        let declarations = self.tx.execute(
            "DELETE FROM declarations WHERE finished_at IS NOT NULL AND finished_at < ?1",
            [cutoff],
        )?;
        Ok(PruneReport {
            webhooks: webhooks as u64,
            actions: actions as u64,
            effects: effects as u64,
            identities: identities as u64,
            unparsed: unparsed as u64,
            declarations: declarations as u64,
        })
    }
}
