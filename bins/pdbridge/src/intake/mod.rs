//! Intake: the HTTP handlers' side of the bridge ([`http::Handler`] for [`Bridge`]). A verified
//! PagerDuty delivery is queued for the writer here; Slack block actions and view submissions
//! are in `slack.rs`, slash commands in `command.rs`, and declaring incidents (`/pd trigger`,
//! the message shortcut, the declare modal and its service search) in `declare.rs`.
//!
//! Request-time work is bounded: a PagerDuty delivery is parsed and queued for the inbox
//! (dedupe on `X-Webhook-Id`, then `event.id`) and answered; a Slack click is queued as an
//! inbox action and answered, except that Add note and Reassign first open their modal with the
//! `trigger_id` (which dies after 3 s). Identity, policy and the engine run after the answer
//! (for a delivery, at most in the group that inserted it; see [`crate::writer`]).

mod command;
pub mod declare;
mod slack;

use bytes::Bytes;
use ids::{ChannelId, IncidentId, MessageTs, SlackTeamId, SlackUserId, WebhookId};
use pd_client::webhook::{EventType, WebhookEnvelope};
use serde::{Deserialize, Serialize};
use slack_client::interaction::{InteractionPayload, SlashCommand};
use store::{InsertOutcome, NewUnparsedWebhook, NewWebhook};
use sync_core::{ActionKey, Input};

use crate::bridge::Bridge;
use crate::http::{self, SlackReply, Unavailable, WebhookAck};
use crate::translate;
use crate::writer::Then;

/// What a stored Slack action asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StoredKind {
    /// Acknowledge.
    Acknowledge,
    /// Escalate one level.
    Escalate,
    /// Resolve (already confirmed in Slack's dialog).
    Resolve,
    /// Add a note with this text.
    Note {
        /// The note text (non-empty).
        content: String,
    },
    /// Reassign to this Slack user (mapped to PagerDuty when processed).
    Reassign {
        /// The chosen Slack user.
        to: SlackUserId,
    },
    /// Change the urgency, confirmed in its modal.
    Urgency {
        /// The new urgency.
        to: sync_core::Urgency,
    },
    /// Snooze for this many minutes, chosen in its modal.
    Snooze {
        /// Minutes, at most a week.
        minutes: u32,
    },
    /// Change the priority, chosen in its modal.
    Priority {
        /// The new priority.
        to: sync_core::Named<ids::PriorityId>,
    },
}

impl StoredKind {
    /// The verb without its payload.
    pub fn verb(&self) -> ids::Verb {
        match self {
            StoredKind::Acknowledge => ids::Verb::Acknowledge,
            StoredKind::Escalate => ids::Verb::Escalate,
            StoredKind::Resolve => ids::Verb::Resolve,
            StoredKind::Note { .. } => ids::Verb::AddNote,
            StoredKind::Reassign { .. } => ids::Verb::Reassign,
            StoredKind::Urgency { .. } => ids::Verb::ChangeUrgency,
            StoredKind::Snooze { .. } => ids::Verb::Snooze,
            StoredKind::Priority { .. } => ids::Verb::ChangePriority,
        }
    }

    /// The short name used in the inbox, the audit log and metrics.
    pub fn name(&self) -> &'static str {
        self.verb().as_str()
    }
}

/// A Slack action as persisted in the inbox before it is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAction {
    /// The idempotency key (double clicks share it).
    pub key: ActionKey,
    /// What was asked for.
    #[serde(flatten)]
    pub kind: StoredKind,
    /// The incident.
    pub incident: IncidentId,
    /// Who clicked.
    pub user: SlackUserId,
    /// The workspace the click came from.
    pub team: Option<SlackTeamId>,
    /// The channel of the card.
    pub channel: Option<ChannelId>,
    /// The card's message.
    pub message_ts: Option<MessageTs>,
}

impl Bridge {
    /// Keeps a verified delivery that did not parse (raw body and reason) for operators, so it
    /// is answered 2xx without being lost; a redelivery with the same `X-Webhook-Id` is a
    /// duplicate.
    async fn unparsed(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
        error: &str,
    ) -> Result<WebhookAck, Unavailable> {
        tracing::warn!(%error, bytes = body.len(), "signed PagerDuty body did not parse; stored as unparsed");
        let now = self.now();
        let error = error.to_owned();
        let outcome = self
            .writer()
            .record(
                Box::new(move |tx| {
                    tx.insert_unparsed_webhook(&NewUnparsedWebhook {
                        webhook_id: webhook_id.as_ref(),
                        body: &body,
                        error: &error,
                        received_at: now,
                    })
                }),
                Then::Nothing,
            )
            .await?;
        match outcome {
            InsertOutcome::Inserted(_) => Ok(WebhookAck::Unparsed),
            InsertOutcome::Duplicate(_) => Ok(WebhookAck::Duplicate),
        }
    }
}

impl http::Handler for Bridge {
    async fn pagerduty_webhook(
        &self,
        webhook_id: Option<WebhookId>,
        body: Bytes,
    ) -> Result<WebhookAck, Unavailable> {
        let envelope = match WebhookEnvelope::from_slice(&body) {
            Ok(envelope) if std::str::from_utf8(&body).is_ok() => envelope,
            Ok(_) => {
                return self
                    .unparsed(webhook_id, body, "the body is not UTF-8")
                    .await;
            }
            Err(err) => return self.unparsed(webhook_id, body, &err.to_string()).await,
        };
        let event = envelope.event;
        let Some(incident) = event.incident_id().cloned() else {
            if event.event_type == EventType::PageyPing {
                tracing::info!("pagey.ping received");
            }
            return Ok(WebhookAck::Ignored);
        };
        let Ok(payload) = String::from_utf8(body.into()) else {
            return Ok(WebhookAck::Ignored);
        };
        let now = self.now();
        let input = translate::pd_event(&self.ctx.config, &event, webhook_id.clone())
            .map(|e| Box::new(Input::PdEvent(e)));
        let response = crate::metrics::ResponseTime::of(&event);
        let event_type = event.event_type.as_str().to_owned();
        let event_id = event.id;
        let outcome = self
            .writer()
            .record(
                Box::new(move |tx| {
                    tx.insert_webhook(&NewWebhook {
                        webhook_id: webhook_id.as_ref(),
                        event_id: &event_id,
                        event_type: &event_type,
                        incident_id: Some(&incident),
                        payload: &payload,
                        received_at: now,
                    })
                }),
                Then::Process(input),
            )
            .await?;
        match outcome {
            InsertOutcome::Inserted(_) => {
                // Observed once per delivery: a duplicate is not inserted.
                if let Some(r) = &response {
                    self.ctx.metrics.response_time(r);
                }
                Ok(WebhookAck::Accepted)
            }
            InsertOutcome::Duplicate(_) => Ok(WebhookAck::Duplicate),
        }
    }

    async fn slack_interaction(&self, body: Bytes) -> Result<SlackReply, Unavailable> {
        let payload = match InteractionPayload::from_form(&body) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "signed Slack body is not an interaction payload");
                return Ok(SlackReply::BadRequest("not an interaction payload"));
            }
        };
        match payload {
            InteractionPayload::BlockActions(p) => self.block_actions(*p).await,
            InteractionPayload::ViewSubmission(p)
                if p.view.callback_id == crate::declare::form::CALLBACK_DECLARE =>
            {
                self.declare_submission(*p).await
            }
            InteractionPayload::ViewSubmission(p) => self.view_submission(*p).await,
            InteractionPayload::Other { kind, raw } if kind == "message_action" => {
                self.message_shortcut(raw).await
            }
            InteractionPayload::Other { kind, raw } if kind == "block_suggestion" => {
                self.block_suggestion(raw).await
            }
            InteractionPayload::Other { .. } => Ok(SlackReply::Empty),
        }
    }

    async fn slack_command(&self, body: Bytes) -> Result<SlackReply, Unavailable> {
        // Slack checks the certificate of command URLs with `ssl_check=1`; it wants a 200.
        let ssl_check = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "ssl_check" && v == "1"));
        if ssl_check {
            return Ok(SlackReply::Empty);
        }
        match SlashCommand::from_form(&body) {
            Ok(cmd) => Ok(self.command(cmd).await),
            Err(err) => {
                tracing::warn!(%err, "signed Slack body is not a slash command");
                Ok(SlackReply::BadRequest("not a slash command"))
            }
        }
    }

    async fn health(&self) -> Result<(), Unavailable> {
        self.ctx
            .blocking(|store| store.schema_version().map(|_| ()))
            .await?;
        crate::socket::health(&self.ctx)
    }
}
