//! The two inboxes: signed PagerDuty webhooks and accepted Slack actions.

use ids::{EventId, IncidentId, SlackUserId, Timestamp, WebhookId};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::types::{DedupeKey, InsertOutcome, Millis, opt_ts, ts};
use crate::{Error, Tx};

/// A verified PagerDuty webhook to store.
#[derive(Debug, Clone, Copy)]
pub struct NewWebhook<'a> {
    /// The `X-Webhook-Id` header, when present (stable across redeliveries).
    pub webhook_id: Option<&'a WebhookId>,
    /// The envelope's `event.id`.
    pub event_id: &'a EventId,
    /// The envelope's `event.event_type`, as sent (unknown types included).
    pub event_type: &'a str,
    /// The incident the event is about, when it is an incident event.
    pub incident_id: Option<&'a IncidentId>,
    /// The raw request body, exactly as verified.
    pub payload: &'a str,
    /// When the request arrived.
    pub received_at: Timestamp,
}

/// A stored PagerDuty webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    /// Arrival order (strictly increasing; a refused duplicate may skip a number).
    pub seq: i64,
    /// The `X-Webhook-Id` header, when it was present.
    pub webhook_id: Option<WebhookId>,
    /// The envelope's `event.id`.
    pub event_id: EventId,
    /// The envelope's `event.event_type`.
    pub event_type: String,
    /// The incident, when known.
    pub incident_id: Option<IncidentId>,
    /// The raw body as received.
    pub payload: String,
    /// When the request arrived.
    pub received_at: Timestamp,
    /// When it was processed, if it was.
    pub processed_at: Option<Timestamp>,
}

impl WebhookRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            webhook_id: r.get::<_, Option<String>>(1)?.map(WebhookId::new),
            event_id: EventId::new(r.get::<_, String>(2)?),
            event_type: r.get(3)?,
            incident_id: r.get::<_, Option<String>>(4)?.map(IncidentId::new),
            payload: r.get(5)?,
            received_at: ts(r, 6)?,
            processed_at: opt_ts(r, 7)?,
        })
    }
}

const WEBHOOK_COLUMNS: &str =
    "seq, webhook_id, event_id, event_type, incident_id, payload, received_at, processed_at";

/// A verified PagerDuty delivery whose body did not parse, to keep for operators.
#[derive(Debug, Clone, Copy)]
pub struct NewUnparsedWebhook<'a> {
    /// The `X-Webhook-Id` header, when present (a redelivery is stored once).
    pub webhook_id: Option<&'a WebhookId>,
    /// The raw request body, exactly as verified (not necessarily UTF-8).
    pub body: &'a [u8],
    /// Why it did not parse.
    pub error: &'a str,
    /// When the request arrived.
    pub received_at: Timestamp,
}

/// A stored delivery that did not parse, without its body (see [`Tx::unparsed_webhook_body`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnparsedWebhook {
    /// Arrival order (strictly increasing).
    pub seq: i64,
    /// The `X-Webhook-Id` header, when it was present.
    pub webhook_id: Option<WebhookId>,
    /// The body's length in bytes.
    pub bytes: u64,
    /// Why it did not parse.
    pub error: String,
    /// When the request arrived.
    pub received_at: Timestamp,
}

/// An accepted Slack action to store.
#[derive(Debug, Clone, Copy)]
pub struct NewAction<'a> {
    /// The caller-built dedupe key (for example `action_ts + user + action_id`).
    pub dedupe_key: &'a DedupeKey,
    /// Who clicked or submitted.
    pub slack_user: &'a SlackUserId,
    /// The incident the action targets, when known.
    pub incident_id: Option<&'a IncidentId>,
    /// A short action name such as `ack` or `note`.
    pub kind: &'a str,
    /// The decoded interaction payload (JSON text).
    pub payload: &'a str,
    /// When the request arrived.
    pub received_at: Timestamp,
}

/// A stored Slack action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRow {
    /// Arrival order (strictly increasing).
    pub seq: i64,
    /// The dedupe key it was stored under.
    pub dedupe_key: DedupeKey,
    /// Who clicked or submitted.
    pub slack_user: SlackUserId,
    /// The incident, when known.
    pub incident_id: Option<IncidentId>,
    /// The action name.
    pub kind: String,
    /// The payload as stored.
    pub payload: String,
    /// When the request arrived.
    pub received_at: Timestamp,
    /// When it was processed, if it was.
    pub processed_at: Option<Timestamp>,
}

impl ActionRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            dedupe_key: DedupeKey::new(r.get::<_, String>(1)?),
            slack_user: SlackUserId::new(r.get::<_, String>(2)?),
            incident_id: r.get::<_, Option<String>>(3)?.map(IncidentId::new),
            kind: r.get(4)?,
            payload: r.get(5)?,
            received_at: ts(r, 6)?,
            processed_at: opt_ts(r, 7)?,
        })
    }
}

const ACTION_COLUMNS: &str =
    "seq, dedupe_key, slack_user, incident_id, kind, payload, received_at, processed_at";

impl Tx<'_> {
    /// Stores a webhook unless one with the same `X-Webhook-Id` (when given) or the same
    /// `event.id` is already stored.
    pub fn insert_webhook(&mut self, webhook: &NewWebhook<'_>) -> Result<InsertOutcome, Error> {
        // The unique indexes on `webhook_id` and `event_id` are the dedupe check: a new
        // delivery costs one insert, and only a duplicate costs the lookup of the earlier row.
        let inserted = self.exec(
            "INSERT INTO pd_inbox (webhook_id, event_id, event_type, incident_id, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                webhook.webhook_id.map(WebhookId::as_str),
                webhook.event_id.as_str(),
                webhook.event_type,
                webhook.incident_id.map(IncidentId::as_str),
                webhook.payload,
                Millis(webhook.received_at),
            ],
        )?;
        if inserted == 1 {
            return Ok(InsertOutcome::Inserted(self.tx.last_insert_rowid()));
        }
        let seq = self.row(
            "SELECT seq FROM pd_inbox WHERE webhook_id = ?1 OR event_id = ?2
             ORDER BY seq LIMIT 1",
            params![
                webhook.webhook_id.map(WebhookId::as_str),
                webhook.event_id.as_str()
            ],
            |r| r.get(0),
        )?;
        Ok(InsertOutcome::Duplicate(seq))
    }

    /// Unprocessed webhooks in arrival order, at most `limit`.
    pub fn unprocessed_webhooks(&self, limit: usize) -> Result<Vec<WebhookRow>, Error> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM pd_inbox WHERE processed_at IS NULL ORDER BY seq LIMIT +?1"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit_param(limit)], WebhookRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One stored webhook by sequence number.
    pub fn webhook(&self, seq: i64) -> Result<Option<WebhookRow>, Error> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM pd_inbox WHERE seq = ?1");
        Ok(self.row(&sql, [seq], WebhookRow::from_row).optional()?)
    }

    /// How many webhooks are stored, processed or not (until pruned).
    pub fn webhook_count(&self) -> Result<u64, Error> {
        Ok(self.row("SELECT count(*) FROM pd_inbox", [], |r| r.get(0))?)
    }

    /// The arrival number of the oldest unprocessed webhook, if any (reads the unprocessed index
    /// only).
    pub fn oldest_unprocessed_webhook(&self) -> Result<Option<i64>, Error> {
        Ok(self
            .row(
                "SELECT seq FROM pd_inbox WHERE processed_at IS NULL ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Marks a webhook processed (idempotent: the first time wins).
    pub fn mark_webhook_processed(&mut self, seq: i64, now: Timestamp) -> Result<(), Error> {
        let n = self.exec(
            "UPDATE pd_inbox SET processed_at = coalesce(processed_at, ?2) WHERE seq = ?1",
            params![seq, Millis(now)],
        )?;
        if n == 0 {
            return Err(Error::UnknownInboxRow {
                inbox: "webhook",
                seq,
            });
        }
        Ok(())
    }

    /// Stores a verified delivery that did not parse, unless one with the same `X-Webhook-Id`
    /// is already stored there. Such rows are never processed; [`Tx::prune`] removes them after
    /// the retention period.
    pub fn insert_unparsed_webhook(
        &mut self,
        webhook: &NewUnparsedWebhook<'_>,
    ) -> Result<InsertOutcome, Error> {
        if let Some(id) = webhook.webhook_id {
            let existing: Option<i64> = self
                .row(
                    "SELECT seq FROM pd_unparsed WHERE webhook_id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(seq) = existing {
                return Ok(InsertOutcome::Duplicate(seq));
            }
        }
        self.exec(
            "INSERT INTO pd_unparsed (webhook_id, body, error, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                webhook.webhook_id.map(WebhookId::as_str),
                webhook.body,
                webhook.error,
                Millis(webhook.received_at),
            ],
        )?;
        Ok(InsertOutcome::Inserted(self.tx.last_insert_rowid()))
    }

    /// The newest stored deliveries that did not parse, newest first, at most `limit`.
    pub fn unparsed_webhooks(&self, limit: usize) -> Result<Vec<UnparsedWebhook>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT seq, webhook_id, length(body), error, received_at FROM pd_unparsed
             ORDER BY seq DESC LIMIT +?1",
        )?;
        let rows = stmt.query_map([limit_param(limit)], |r| {
            Ok(UnparsedWebhook {
                seq: r.get(0)?,
                webhook_id: r.get::<_, Option<String>>(1)?.map(WebhookId::new),
                bytes: r.get(2)?,
                error: r.get(3)?,
                received_at: ts(r, 4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The raw body of a stored delivery that did not parse.
    pub fn unparsed_webhook_body(&self, seq: i64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .row("SELECT body FROM pd_unparsed WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores an accepted Slack action unless its dedupe key is already stored.
    pub fn insert_action(&mut self, action: &NewAction<'_>) -> Result<InsertOutcome, Error> {
        let existing: Option<i64> = self
            .row(
                "SELECT seq FROM slack_inbox WHERE dedupe_key = ?1",
                [action.dedupe_key.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(seq) = existing {
            return Ok(InsertOutcome::Duplicate(seq));
        }
        self.exec(
            "INSERT INTO slack_inbox (dedupe_key, slack_user, incident_id, kind, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                action.dedupe_key.as_str(),
                action.slack_user.as_str(),
                action.incident_id.map(IncidentId::as_str),
                action.kind,
                action.payload,
                Millis(action.received_at),
            ],
        )?;
        Ok(InsertOutcome::Inserted(self.tx.last_insert_rowid()))
    }

    /// Unprocessed Slack actions in arrival order, at most `limit`.
    pub fn unprocessed_actions(&self, limit: usize) -> Result<Vec<ActionRow>, Error> {
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM slack_inbox WHERE processed_at IS NULL ORDER BY seq LIMIT +?1"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit_param(limit)], ActionRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One stored Slack action by sequence number.
    pub fn action(&self, seq: i64) -> Result<Option<ActionRow>, Error> {
        let sql = format!("SELECT {ACTION_COLUMNS} FROM slack_inbox WHERE seq = ?1");
        Ok(self.row(&sql, [seq], ActionRow::from_row).optional()?)
    }

    /// Marks a Slack action processed (idempotent: the first time wins).
    pub fn mark_action_processed(&mut self, seq: i64, now: Timestamp) -> Result<(), Error> {
        let n = self.exec(
            "UPDATE slack_inbox SET processed_at = coalesce(processed_at, ?2) WHERE seq = ?1",
            params![seq, Millis(now)],
        )?;
        if n == 0 {
            return Err(Error::UnknownInboxRow {
                inbox: "action",
                seq,
            });
        }
        Ok(())
    }
}

/// Converts a `usize` limit into an SQLite integer (saturating).
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
