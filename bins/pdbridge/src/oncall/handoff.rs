//! `[[handoff]]`: one message per handoff of the configured schedules, in the configured
//! channel: outgoing → incoming, and the outgoing person's open incidents, each with a
//! **Reassign to <incoming>** button.
//!
//! Exactly once, also across restarts: before posting, a marker `handoff/<channel>/<schedule>/<ms>`
//! is claimed in the store; the message carries that key in its metadata. A post whose answer was
//! lost leaves the marker at `posting`, and the next try first looks for the message in the
//! channel's history (`conversations.history` with metadata) before posting again. A post Slack
//! refused is tried again every [`RETRY_EVERY`] while the handoff is recent ([`LOOKBACK`]).
//!
//! The button goes through the same path as Reassign on the card: a stored action of kind
//! Reassign (to the incoming person's Slack user) for the card's channel and message, so the
//! policy, `From` and the card's pending and done states are those of the card's own button.

use ids::{ChannelId, IncidentId, MessageTs, SlackUserId, Timestamp};
use serde::{Deserialize, Serialize};
use slack_client::api::{ConversationHistory, MessageMetadata, PostMessage};
use slack_client::blocks::{Block, Element, Text, truncate_plain};
use slack_client::interaction::BlockActions;
use sync_core::{ActionKey, Status};

use super::cache::{Handoff, LOOKBACK, RETRY_EVERY};
use super::render::person;
use crate::bridge::Bridge;
use crate::http::{SlackReply, Unavailable};
use crate::intake::{StoredAction, StoredKind};
use crate::render::{Mentions, escape};

/// The `action_id` of a handoff message's Reassign button.
pub const ACTION_HANDOFF_REASSIGN: &str = "pdbridge_handoff_reassign";
/// The metadata `event_type` of handoff messages.
pub const HANDOFF_EVENT_TYPE: &str = "pdbridge_handoff";
/// The most incidents one message lists (Slack allows 50 blocks).
const MAX_INCIDENTS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    /// Claimed; a post may have reached Slack.
    Posting,
    /// Slack refused the post (it certainly did not post).
    Failed,
    /// Posted.
    Posted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    state: State,
    claimed_at: Timestamp,
    next_try: Timestamp,
    #[serde(default)]
    ts: Option<MessageTs>,
}

/// Announces every due handoff at `now` that has no message yet.
pub(super) async fn announce(bridge: &Bridge, now: Timestamp) {
    if bridge.ctx.config.handoffs.is_empty() {
        return;
    }
    let (cache, mentions) = {
        let shared = bridge.ctx.oncall.lock();
        (shared.cache.clone(), super::mentions(&shared))
    };
    for config in &bridge.ctx.config.handoffs {
        for handoff in cache.handoffs_due(now, &config.schedules) {
            let key = handoff.key(&config.channel);
            if bridge.ctx.oncall.lock().announced.contains(&key) {
                continue;
            }
            if let Err(err) = one(bridge, &config.channel, &handoff, &key, &mentions, now).await {
                tracing::warn!(err = %err.0, %key, "handoff message");
            }
        }
    }
}

async fn one(
    bridge: &Bridge,
    channel: &ChannelId,
    handoff: &Handoff,
    key: &str,
    mentions: &Mentions,
    now: Timestamp,
) -> Result<(), Unavailable> {
    let k = key.to_owned();
    let stored = bridge
        .ctx
        .blocking(move |s| s.read(|tx| tx.oncall_value(&k)))
        .await?;
    let marker: Option<Marker> = stored.and_then(|v| serde_json::from_value(v).ok());
    match &marker {
        Some(m) if m.state == State::Posted => {
            bridge.ctx.oncall.lock().announced.insert(key.to_owned());
            return Ok(());
        }
        Some(m) if now < m.next_try => return Ok(()),
        Some(m) if m.state == State::Posting => {
            match find(bridge, channel, key, m.claimed_at).await {
                Ok(Some(ts)) => {
                    bridge.ctx.metrics.oncall.handoff("found");
                    return save(bridge, key, posted(m.claimed_at, ts, now), now).await;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(%err, "looking for an unanswered handoff message");
                    let wait = Marker {
                        next_try: now.saturating_add(RETRY_EVERY),
                        ..m.clone()
                    };
                    return save(bridge, key, wait, now).await;
                }
            }
        }
        Some(_) => {}
        None => {
            let first = Marker {
                state: State::Posting,
                claimed_at: now,
                next_try: now,
                ts: None,
            };
            let value = serde_json::to_value(&first).unwrap_or_default();
            let k = key.to_owned();
            let claimed =
                crate::runtime::write(bridge, move |tx| tx.claim_oncall_key(&k, &value, now))
                    .await?;
            if !claimed {
                return Ok(());
            }
        }
    }
    let claimed_at = marker.as_ref().map_or(now, |m| m.claimed_at);
    let posting = Marker {
        state: State::Posting,
        claimed_at,
        next_try: now.saturating_add(RETRY_EVERY),
        ts: None,
    };
    save(bridge, key, posting, now).await?;
    let outgoing: Vec<_> = handoff.outgoing.iter().map(|p| p.id.clone()).collect();
    let incidents = open_incidents(bridge, &outgoing).await;
    let message = message(channel, handoff, key, mentions, incidents);
    match bridge.ctx.slack.post_message(&message).await {
        Ok(answer) => {
            bridge.ctx.metrics.api_call("slack", "ok");
            bridge.ctx.metrics.oncall.handoff("posted");
            save(bridge, key, posted(claimed_at, answer.ts, now), now).await
        }
        Err(err) => {
            bridge.ctx.metrics.api_call("slack", "error");
            bridge.ctx.metrics.oncall.handoff("error");
            tracing::warn!(%err, %channel, "posting a handoff message failed");
            if matches!(err, slack_client::Error::MaybeSent { .. }) {
                return Ok(());
            }
            let failed = Marker {
                state: State::Failed,
                claimed_at,
                next_try: now.saturating_add(RETRY_EVERY),
                ts: None,
            };
            save(bridge, key, failed, now).await
        }
    }
}

/// How long handoff markers are kept (far longer than [`LOOKBACK`], within which they matter).
const MARKER_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Drops handoff markers older than [`MARKER_TTL`].
pub(super) async fn prune(bridge: &Bridge, now: Timestamp) {
    let before = now.saturating_sub(MARKER_TTL);
    if let Err(err) =
        crate::runtime::write(bridge, move |tx| tx.prune_oncall_values("handoff/", before)).await
    {
        tracing::warn!(err = %err.0, "pruning handoff markers");
    }
}

fn posted(claimed_at: Timestamp, ts: MessageTs, now: Timestamp) -> Marker {
    Marker {
        state: State::Posted,
        claimed_at,
        next_try: now,
        ts: Some(ts),
    }
}

async fn save(
    bridge: &Bridge,
    key: &str,
    marker: Marker,
    now: Timestamp,
) -> Result<(), Unavailable> {
    let value = serde_json::to_value(&marker).unwrap_or_default();
    let key = key.to_owned();
    crate::runtime::write(bridge, move |tx| tx.put_oncall_value(&key, &value, now)).await
}

/// Looks for the message with `key` in `channel`'s history since shortly before `since`.
async fn find(
    bridge: &Bridge,
    channel: &ChannelId,
    key: &str,
    since: Timestamp,
) -> Result<Option<MessageTs>, slack_client::Error> {
    let start = since.saturating_sub(LOOKBACK).as_millis().max(0);
    let oldest = MessageTs::new(format!("{}.{:06}", start / 1000, (start % 1000) * 1000));
    let req = ConversationHistory {
        oldest: Some(oldest),
        limit: Some(200),
        include_all_metadata: Some(true),
        ..ConversationHistory::new(channel.clone())
    };
    let page = bridge.ctx.slack.conversation_history(&req).await?;
    Ok(page
        .messages
        .iter()
        .find(|m| {
            m.metadata.as_ref().is_some_and(|meta| {
                meta.event_type == HANDOFF_EVENT_TYPE
                    && meta.event_payload["key"].as_str() == Some(key)
            })
        })
        .map(|m| m.ts.clone()))
}

/// An open incident: id, number, title, link.
type Open = (IncidentId, Option<u64>, String, Option<String>);

/// The open incidents assigned to any of `who`, from the store (the engine's committed state,
/// incidents unloaded from memory included), else from the engine's memory.
async fn open_incidents(bridge: &Bridge, who: &[ids::PdUserId]) -> Vec<Open> {
    let pick = |s: &sync_core::IncidentSnapshot| -> Option<Open> {
        (s.status != Status::Resolved && s.assignees.iter().any(|a| who.contains(&a.id)))
            .then(|| (s.id.clone(), s.number, s.title.clone(), s.html_url.clone()))
    };
    let stored = bridge
        .ctx
        .blocking(|store| store.read(|tx| tx.open_incidents()))
        .await;
    match stored {
        Ok(records) => records
            .iter()
            .filter_map(|r| r.state.decode::<sync_core::IncidentState>().ok())
            .filter_map(|state| state.snapshot().and_then(pick))
            .collect(),
        Err(err) => {
            tracing::warn!(err = %err.0, "reading open incidents for a handoff; using memory");
            bridge.with_engine(|e| {
                e.incidents()
                    .filter_map(|state| state.snapshot().and_then(pick))
                    .collect()
            })
        }
    }
}

fn message(
    channel: &ChannelId,
    handoff: &Handoff,
    key: &str,
    mentions: &Mentions,
    mut incidents: Vec<Open>,
) -> PostMessage {
    let names = |list: &[super::cache::Person]| {
        list.iter()
            .map(|p| person(p, mentions))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (outgoing, incoming) = (names(&handoff.outgoing), names(&handoff.incoming));
    let headline = format!(
        "*Handoff* of *{}*: {outgoing} → {incoming}",
        escape(&handoff.schedule_name)
    );
    let headline = slack_client::blocks::truncate_mrkdwn(&headline, 3000);
    let mut blocks = vec![Block::section(headline.clone())];
    incidents.sort();
    let target = handoff
        .incoming
        .iter()
        .find_map(|p| mentions.get(&p.id).map(|s| (s.clone(), p.name.clone())));
    if incidents.is_empty() {
        blocks.push(Block::context(format!(
            "No open incidents are assigned to {outgoing}."
        )));
    } else {
        blocks.push(Block::context(format!(
            "Open incidents still assigned to {outgoing}:"
        )));
    }
    for (id, number, title, url) in incidents.iter().take(MAX_INCIDENTS) {
        let label = match number {
            Some(n) => format!("#{n} {}", escape(title)),
            None => escape(title),
        };
        let text = match url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            Some(u) => format!("<{u}|{label}>"),
            None => label,
        };
        let accessory = target.as_ref().map(|(slack, name)| {
            Element::button(
                ACTION_HANDOFF_REASSIGN,
                truncate_plain(&format!("Reassign to {name}"), 75),
                format!("{id} {slack}"),
            )
        });
        blocks.push(Block::Section {
            block_id: None,
            text: Some(Text::mrkdwn(slack_client::blocks::truncate_mrkdwn(
                &text, 3000,
            ))),
            fields: Vec::new(),
            accessory,
        });
    }
    if incidents.len() > MAX_INCIDENTS {
        blocks.push(Block::context(format!(
            "…and {} more on their cards.",
            incidents.len() - MAX_INCIDENTS
        )));
    }
    let mut post = PostMessage::new(channel.clone(), headline, blocks);
    post.metadata = Some(MessageMetadata {
        event_type: HANDOFF_EVENT_TYPE.to_owned(),
        event_payload: serde_json::json!({ "key": key }),
    });
    post
}

impl Bridge {
    /// A click on a handoff message's Reassign button: the card's Reassign, stored as an action
    /// for the incident's card (channel and message), to the incoming person.
    pub(crate) async fn handoff_reassign(
        &self,
        p: &BlockActions,
    ) -> Result<SlackReply, Unavailable> {
        let Some(action) = p.actions.first() else {
            return Ok(SlackReply::Empty);
        };
        let value = action.value.as_deref().unwrap_or("");
        let Some((incident, to)) = value.split_once(' ') else {
            return Ok(SlackReply::Empty);
        };
        let incident = IncidentId::new(incident);
        let (channel, ts) = self.with_engine(|e| {
            e.incident(&incident)
                .map(|s| (s.channel().cloned(), s.card_ts().cloned()))
                .unwrap_or_default()
        });
        let team = p
            .team
            .as_ref()
            .map(|t| t.id.clone())
            .or_else(|| p.user.team_id.clone());
        let stamp = action
            .action_ts
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .or_else(|| p.trigger_id.as_ref().map(|t| t.as_str().to_owned()))
            .unwrap_or_default();
        let kind = StoredKind::Reassign {
            to: SlackUserId::new(to),
        };
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
}
