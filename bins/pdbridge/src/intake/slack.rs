//! Slack block actions (button clicks) and view submissions (modals): each accepted one is
//! stored in the inbox through the writer and answered; Add note and Reassign first open
//! their modal.

use std::time::Duration;

use ids::IncidentId;
use slack_client::api::{OpenView, PostEphemeral};
use slack_client::blocks::{ResponseAction, View};
use slack_client::interaction::{BlockActions, ViewSubmission};
use store::{DedupeKey, NewAction};
use sync_core::{ActionKey, Urgency};

use super::{StoredAction, StoredKind};
use crate::bridge::Bridge;
use crate::http::{SlackReply, Unavailable};
use crate::render::{self, ModalContext};
use crate::writer::Then;

/// Builds a modal from the card it was opened from and the incident's title.
type ModalFn = fn(&ModalContext, &str) -> View;

/// How long opening a modal may take before the click is answered anyway.
const OPEN_VIEW_TIMEOUT: Duration = Duration::from_millis(2000);

impl Bridge {
    /// Persists an accepted Slack action in the inbox and wakes the processor.
    pub(crate) async fn persist_action(&self, action: StoredAction) -> Result<(), Unavailable> {
        let payload = serde_json::to_string(&action)
            .map_err(|e| Unavailable(format!("encoding action: {e}")))?;
        let now = self.now();
        let name = action.kind.name();
        let outcome = self
            .writer()
            .record(
                Box::new(move |tx| {
                    tx.insert_action(&NewAction {
                        dedupe_key: &DedupeKey::new(action.key.as_str()),
                        slack_user: &action.user,
                        incident_id: Some(&action.incident),
                        kind: action.kind.name(),
                        payload: &payload,
                        received_at: now,
                    })
                }),
                Then::Nothing,
            )
            .await?;
        if outcome.is_inserted() {
            self.ctx.metrics.action(name, "accepted");
        } else {
            self.ctx.metrics.action(name, "duplicate");
        }
        Ok(())
    }

    fn incident_title(&self, incident: &IncidentId) -> String {
        self.with_engine(|e| {
            e.incident(incident)
                .and_then(|s| s.snapshot().map(|snap| snap.title.clone()))
        })
        .unwrap_or_else(|| incident.to_string())
    }

    /// The account's priorities as `(id, name)`, most severe first (cached by the client; empty
    /// when it has none or they could not be read), and the incident's current one.
    async fn priority_choices(
        &self,
        incident: &IncidentId,
    ) -> (Vec<(String, String)>, Option<String>) {
        let list = match self.ctx.pd.priorities().await {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(%err, "reading PagerDuty's priorities failed");
                Vec::new()
            }
        };
        let current = self.with_engine(|e| {
            e.incident(incident)
                .and_then(|s| s.snapshot().and_then(|snap| snap.priority.clone()))
                .map(|p| p.id.to_string())
        });
        let list = list
            .into_iter()
            .map(|p| (p.id.to_string(), p.name))
            .collect();
        (list, current)
    }

    pub(super) async fn block_actions(&self, p: BlockActions) -> Result<SlackReply, Unavailable> {
        let Some(action) = p.actions.first() else {
            return Ok(SlackReply::Empty);
        };
        if action.action_id == crate::oncall::ACTION_HANDOFF_REASSIGN {
            return self.handoff_reassign(&p).await;
        }
        // The incident travels in the button's `value`, and in its block id as a fallback.
        let from_block = action
            .block_id
            .strip_prefix("pdbridge_actions:")
            .filter(|id| !id.is_empty());
        let Some(incident) = action
            .value
            .as_deref()
            .filter(|v| !v.is_empty())
            .or(from_block)
            .map(IncidentId::new)
        else {
            return Ok(SlackReply::Empty);
        };
        let (channel, ts) = match p.message_ref() {
            Some((c, t)) => (Some(c.clone()), Some(t.clone())),
            None => (p.channel.as_ref().map(|c| c.id.clone()), None),
        };
        let team = p
            .team
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| p.user.team_id.clone());
        let id = action.action_id.as_str();
        let chosen = action.selected_option.as_ref().map(|o| o.value.as_str());
        let modal = match (id, chosen) {
            (render::ACTION_NOTE, _) => Some(render::note_modal as ModalFn),
            (render::ACTION_REASSIGN, _) => Some(render::reassign_modal as ModalFn),
            (render::ACTION_MORE, Some(render::MORE_URGENCY_HIGH)) => {
                Some((|c, t| render::urgency_modal(c, t, Urgency::High)) as ModalFn)
            }
            (render::ACTION_MORE, Some(render::MORE_SNOOZE)) => {
                Some(render::snooze_modal as ModalFn)
            }
            (render::ACTION_MORE, Some(render::MORE_URGENCY_LOW)) => {
                Some((|c, t| render::urgency_modal(c, t, Urgency::Low)) as ModalFn)
            }
            _ => None,
        };
        let priorities = if (id, chosen) == (render::ACTION_MORE, Some(render::MORE_PRIORITY)) {
            Some(self.priority_choices(&incident).await)
        } else {
            None
        };
        if modal.is_some() || priorities.is_some() {
            let title = self.incident_title(&incident);
            let ctx = ModalContext {
                incident,
                channel,
                ts,
            };
            let view = match (&priorities, modal) {
                (Some((list, current)), _) => {
                    render::priority_modal(&ctx, &title, list, current.as_deref())
                }
                (None, Some(modal)) => modal(&ctx, &title),
                (None, None) => return Ok(SlackReply::Empty),
            };
            let Some(trigger_id) = p.trigger_id.clone() else {
                return Ok(SlackReply::Empty);
            };
            let req = OpenView { trigger_id, view };
            let failed =
                match tokio::time::timeout(OPEN_VIEW_TIMEOUT, self.ctx.slack.open_view(&req)).await
                {
                    Ok(Ok(_)) => {
                        self.ctx.metrics.api_call("slack", "ok");
                        None
                    }
                    Ok(Err(err)) => {
                        self.ctx.metrics.api_call("slack", "error");
                        tracing::warn!(%err, "views.open failed");
                        Some(err.to_string())
                    }
                    Err(_) => {
                        tracing::warn!("views.open timed out");
                        Some("Slack did not answer in time".to_owned())
                    }
                };
            // Tell the clicker after answering, so the 3 s budget is not spent on it.
            if let (Some(why), Some(channel)) = (failed, ctx.channel.clone()) {
                let slack = self.ctx.slack.clone();
                let user = p.user.id.clone();
                tokio::spawn(async move {
                    let req = PostEphemeral {
                        channel,
                        user,
                        text: format!(
                            "pdbridge could not open the form ({}). Click the button again.",
                            render::escape(&why)
                        ),
                        blocks: Vec::new(),
                        thread_ts: None,
                    };
                    if let Err(err) = slack.post_ephemeral(&req).await {
                        tracing::warn!(%err, "telling the user about views.open failed");
                    }
                });
            }
            return Ok(SlackReply::Empty);
        }
        let kind = match id {
            render::ACTION_ACK => StoredKind::Acknowledge,
            render::ACTION_ESCALATE => StoredKind::Escalate,
            render::ACTION_RESOLVE => StoredKind::Resolve,
            _ => return Ok(SlackReply::Empty),
        };
        let stamp = action
            .action_ts
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .or_else(|| p.trigger_id.as_ref().map(|t| t.as_str().to_owned()))
            .unwrap_or_default();
        let key = ActionKey::new(&stamp, &p.user.id, kind.name());
        self.persist_action(StoredAction {
            key,
            kind,
            incident,
            user: p.user.id.clone(),
            team,
            channel,
            message_ts: ts,
        })
        .await?;
        Ok(SlackReply::Empty)
    }

    pub(super) async fn view_submission(
        &self,
        p: ViewSubmission,
    ) -> Result<SlackReply, Unavailable> {
        let Some(ctx) = ModalContext::decode(&p.view.private_metadata) else {
            return Ok(SlackReply::Empty);
        };
        let errors = |block: &str, message: &str| {
            let mut errors = std::collections::BTreeMap::new();
            errors.insert(block.to_owned(), message.to_owned());
            SlackReply::Json(
                serde_json::to_value(ResponseAction::Errors { errors }).unwrap_or_default(),
            )
        };
        let kind = match p.view.callback_id.as_str() {
            render::CALLBACK_NOTE => {
                let text = p
                    .view
                    .state
                    .text(render::NOTE_BLOCK, render::NOTE_INPUT)
                    .map(str::trim)
                    .unwrap_or("");
                if text.is_empty() {
                    return Ok(errors(
                        render::NOTE_BLOCK,
                        "Write a note before submitting.",
                    ));
                }
                StoredKind::Note {
                    content: text.to_owned(),
                }
            }
            render::CALLBACK_SNOOZE => {
                let chosen = p
                    .view
                    .state
                    .selected_value(render::SNOOZE_INPUT, render::SNOOZE_INPUT)
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|m| render::SNOOZE_CHOICES.iter().any(|(c, _)| c == m));
                match chosen {
                    Some(minutes) => StoredKind::Snooze { minutes },
                    None => {
                        return Ok(errors(render::SNOOZE_INPUT, "Choose how long to snooze."));
                    }
                }
            }
            render::CALLBACK_PRIORITY => {
                let chosen = p
                    .view
                    .state
                    .selected_value(render::PRIORITY_INPUT, render::PRIORITY_INPUT)
                    .map(str::to_owned);
                // The name comes from the cached list the modal was built from.
                let known = self.ctx.pd.priorities().await.unwrap_or_default();
                match chosen.and_then(|id| known.into_iter().find(|k| k.id.as_str() == id)) {
                    Some(k) => StoredKind::Priority {
                        to: sync_core::Named::new(k.id, k.name),
                    },
                    None => return Ok(errors(render::PRIORITY_INPUT, "Choose a priority.")),
                }
            }
            render::CALLBACK_URGENCY_HIGH => StoredKind::Urgency { to: Urgency::High },
            render::CALLBACK_URGENCY_LOW => StoredKind::Urgency { to: Urgency::Low },
            render::CALLBACK_REASSIGN => {
                match p
                    .view
                    .state
                    .selected_user(render::REASSIGN_BLOCK, render::REASSIGN_INPUT)
                {
                    Some(user) => StoredKind::Reassign { to: user.clone() },
                    None => {
                        return Ok(errors(
                            render::REASSIGN_BLOCK,
                            "Choose who to reassign the incident to.",
                        ));
                    }
                }
            }
            _ => return Ok(SlackReply::Empty),
        };
        let team = p
            .team
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| p.user.team_id.clone());
        let key = ActionKey::new(p.view.id.as_str(), &p.user.id, kind.name());
        self.persist_action(StoredAction {
            key,
            kind,
            incident: ctx.incident,
            user: p.user.id.clone(),
            team,
            channel: ctx.channel,
            message_ts: ctx.ts,
        })
        .await?;
        Ok(SlackReply::Empty)
    }
}
