//! Carrying out one effect: the client call it names and the [`Outcome`] the engine is fed.
//!
//! Every client call's result goes through `pd_call`/`slack_call` (or `count_pd`/`count_slack`),
//! which count it in `api_calls` once and turn an error into its outcome (`pd_error`,
//! `slack_error`, pure); the branches of [`perform`] never touch the metrics themselves.

use std::time::Duration;

use ids::{IncidentId, SlackUserId};
use slack_client::api::{
    ConversationHistory, MessageMetadata, PostEphemeral, PostMessage, UpdateMessage,
};
use sync_core::{Effect, EscalationLevels, IncidentState, Mutation, Outcome, PdRead, Timestamp};

use crate::bridge::Bridge;
use crate::{render, translate};

/// The rate-limit pause when a 429 carries no hint (no `Retry-After` / `ratelimit-reset`).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a card waits for its assignees' Slack users before naming them instead.
const MENTIONS_TIMEOUT: Duration = Duration::from_secs(2);
/// The `event_type` of the metadata every card is posted with (its payload names the
/// incident), so a card whose post went unanswered can be found instead of posted again.
pub const CARD_EVENT_TYPE: &str = "pdbridge_incident_card";
/// How far before the first attempt a look for an earlier card or note starts: room for the
/// skew between the bridge's clock and Slack's or PagerDuty's.
const LOOK_BACK_MARGIN_MS: i64 = 10 * 60 * 1000;
/// The most `conversations.history` pages (of [`LOOK_PAGE_SIZE`] messages) read when looking
/// for an earlier card: past them, the card is taken as not posted.
const LOOK_PAGES: usize = 5;
/// The page size of that look.
const LOOK_PAGE_SIZE: u32 = 200;

/// The `outcome` label a PagerDuty call is counted under in `api_calls`.
fn pd_label<T>(result: &Result<T, pd_client::Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(err) if err.status() == Some(429) => "rate_limited",
        Err(_) => "error",
    }
}

/// The `outcome` label a Slack call is counted under in `api_calls`.
fn slack_label<T>(result: &Result<T, slack_client::Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(slack_client::Error::RateLimitedLocally { .. }) => "rate_limited_locally",
        Err(err) if slack_rate_limited(err).is_some() => "rate_limited",
        Err(_) => "error",
    }
}

/// Counts one PagerDuty call's result: the one place PagerDuty calls reach the metrics.
pub(crate) fn count_pd<T>(bridge: &Bridge, result: &Result<T, pd_client::Error>) {
    bridge.ctx.metrics.api_call("pagerduty", pd_label(result));
}

/// Counts one Slack call's result: the one place Slack calls reach the metrics.
fn count_slack<T>(bridge: &Bridge, result: &Result<T, slack_client::Error>) {
    bridge.ctx.metrics.api_call("slack", slack_label(result));
}

/// Counts one PagerDuty call and turns its error into the outcome the engine is fed. (The large
/// `Err` is that outcome, returned once to the engine, like `find_card`'s.)
#[allow(clippy::result_large_err)]
fn pd_call<T>(bridge: &Bridge, result: Result<T, pd_client::Error>) -> Result<T, Outcome> {
    count_pd(bridge, &result);
    result.map_err(|err| pd_error(&err))
}

/// Counts one Slack call and turns its error into the outcome the engine is fed.
#[allow(clippy::result_large_err)]
fn slack_call<T>(bridge: &Bridge, result: Result<T, slack_client::Error>) -> Result<T, Outcome> {
    count_slack(bridge, &result);
    result.map_err(|err| slack_error(&err))
}

/// What a PagerDuty error means to the engine.
fn pd_error(err: &pd_client::Error) -> Outcome {
    if err.status() == Some(429) {
        return Outcome::RateLimited {
            retry_after: err.retry_after().unwrap_or(DEFAULT_RETRY_AFTER),
        };
    }
    if err.was_sent().is_none() {
        return Outcome::MaybeSent {
            error: err.to_string(),
        };
    }
    if err.is_retryable() {
        Outcome::Retryable {
            error: err.to_string(),
            retry_after: err.retry_after(),
        }
    } else {
        Outcome::Permanent {
            error: err.to_string(),
        }
    }
}

/// Slack's own rate limit (a 429 or `ratelimited`), with its `Retry-After` if any.
fn slack_rate_limited(err: &slack_client::Error) -> Option<Option<Duration>> {
    match err {
        slack_client::Error::Api {
            status,
            code,
            retry_after,
            ..
        } if *status == 429 || code.as_deref() == Some("ratelimited") => Some(*retry_after),
        _ => None,
    }
}

/// What a Slack error means to the engine.
fn slack_error(err: &slack_client::Error) -> Outcome {
    // Our own limiter refusing to queue longer is a delay, exactly like a 429: the engine waits
    // `wait` for this key instead of counting a failure and backing off for minutes.
    if let slack_client::Error::RateLimitedLocally { wait, .. } = err {
        return Outcome::RateLimited { retry_after: *wait };
    }
    if let Some(retry_after) = slack_rate_limited(err) {
        return Outcome::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        };
    }
    if matches!(err, slack_client::Error::MaybeSent { .. }) {
        return Outcome::MaybeSent {
            error: err.to_string(),
        };
    }
    if err.is_retryable() {
        Outcome::Retryable {
            error: err.to_string(),
            retry_after: None,
        }
    } else {
        Outcome::Permanent {
            error: err.to_string(),
        }
    }
}

/// The outcome of a PagerDuty mutation.
fn updated(bridge: &Bridge, result: Result<pd_client::Updated, pd_client::Error>) -> Outcome {
    match pd_call(bridge, result) {
        Ok(u) if u.already => Outcome::AlreadyInState,
        Ok(u) => match u.incident.as_ref().and_then(translate::rest_snapshot) {
            Some(snapshot) => Outcome::PdIncident(snapshot),
            None => Outcome::Done,
        },
        Err(outcome) => outcome,
    }
}

/// Carries out one effect through the clients and says what happened.
pub async fn perform(bridge: &Bridge, effect: &Effect) -> Outcome {
    let slack_done = |r: Result<(), slack_client::Error>| match slack_call(bridge, r) {
        Ok(()) => Outcome::Done,
        Err(outcome) => outcome,
    };
    match effect {
        Effect::PostCard {
            channel,
            card,
            look_since,
            ..
        } => {
            if let Some(since) = look_since {
                match find_card(bridge, channel, &card.incident, *since).await {
                    Ok(Some(ts)) => {
                        tracing::info!(incident = %card.incident, %ts, "found the card an unanswered post made; not posting again");
                        return Outcome::Posted { ts };
                    }
                    Ok(None) => {}
                    Err(outcome) => return outcome,
                }
            }
            let m = render::card_with_mentions(card, &mentions(bridge, card).await);
            let mut post = PostMessage::new(channel.clone(), m.text, m.blocks);
            post.metadata = Some(card_metadata(&card.incident));
            match slack_call(bridge, bridge.ctx.slack.post_message(&post).await) {
                Ok(r) => Outcome::Posted { ts: r.ts },
                Err(outcome) => outcome,
            }
        }
        Effect::UpdateCard {
            channel, ts, card, ..
        } => {
            let m = render::card_with_mentions(card, &mentions(bridge, card).await);
            let req = UpdateMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                text: m.text,
                blocks: m.blocks,
            };
            slack_done(bridge.ctx.slack.update_message(&req).await.map(|_| ()))
        }
        Effect::PostThread {
            id,
            channel,
            thread_ts,
            lines,
        } => {
            // Lines past one section's limit go out as several messages, in order. A failed
            // part is retried by the engine with every line, so the parts before it may repeat.
            // A channel-wide line (an SLA breach) also goes to the channel, with the first part.
            let mut broadcast = lines.iter().any(|l| l.kind.channel_wide());
            let mut messages = render::thread(lines);
            if let (Some(last), Some(incident)) = (messages.last_mut(), id.incident()) {
                last.blocks
                    .extend(render::reminder_actions(&incident, lines));
            }
            for m in messages {
                let mut req = PostMessage::new(channel.clone(), m.text, m.blocks);
                req.thread_ts = Some(thread_ts.clone());
                req.reply_broadcast = std::mem::take(&mut broadcast).then_some(true);
                if let Err(outcome) = slack_call(bridge, bridge.ctx.slack.post_message(&req).await)
                {
                    return outcome;
                }
            }
            Outcome::Done
        }
        Effect::Ephemeral {
            channel,
            user,
            text,
            mentions,
            ..
        } => match channel {
            Some(channel) => {
                // Titles and PagerDuty error texts inside are escaped like channel text.
                let text = render::reply(text, mentions);
                slack_done(ephemeral(bridge, channel, user, &text).await)
            }
            None => {
                tracing::warn!(%user, "no channel to tell the user: {text}");
                Outcome::Done
            }
        },
        Effect::PdMutation {
            incident,
            actor,
            mutation,
            look_since,
            ..
        } => {
            let pd = &bridge.ctx.pd;
            let from = &actor.email;
            let checked = |r| from_checked(bridge, actor, r);
            match mutation {
                Mutation::Acknowledge => {
                    updated(bridge, checked(pd.acknowledge(incident, from).await).await)
                }
                Mutation::Resolve => updated(
                    bridge,
                    checked(pd.resolve(incident, from, None).await).await,
                ),
                Mutation::Escalate { level } => updated(
                    bridge,
                    checked(pd.escalate(incident, from, *level).await).await,
                ),
                Mutation::ChangeUrgency { urgency } => {
                    let urgency = match urgency {
                        sync_core::Urgency::High => pd_client::rest::Urgency::High,
                        sync_core::Urgency::Low => pd_client::rest::Urgency::Low,
                    };
                    updated(
                        bridge,
                        checked(pd.change_urgency(incident, from, urgency).await).await,
                    )
                }
                Mutation::Snooze { minutes } => {
                    let duration = std::time::Duration::from_secs(u64::from(*minutes) * 60);
                    updated(
                        bridge,
                        checked(pd.snooze(incident, from, duration).await).await,
                    )
                }
                Mutation::ChangePriority { priority } => updated(
                    bridge,
                    checked(pd.change_priority(incident, from, priority.clone()).await).await,
                ),
                Mutation::Reassign { to } => updated(
                    bridge,
                    checked(pd.reassign(incident, from, std::slice::from_ref(to)).await).await,
                ),
                Mutation::AddNote { content } => {
                    if let Some(since) = look_since {
                        match find_note(bridge, incident, &actor.pd_user, content, *since).await {
                            Ok(true) => {
                                tracing::info!(%incident, "found the note an unanswered request added; not adding it again");
                                return Outcome::Done;
                            }
                            Ok(false) => {}
                            Err(outcome) => return outcome,
                        }
                    }
                    let added =
                        from_checked(bridge, actor, pd.add_note(incident, from, content).await)
                            .await;
                    match pd_call(bridge, added) {
                        Ok(_) => Outcome::Done,
                        Err(outcome) => outcome,
                    }
                }
            }
        }
        Effect::PdRead {
            incident,
            read: PdRead::Incident,
            ..
        } => match pd_call(bridge, bridge.ctx.pd.get_incident(incident, &[]).await) {
            Ok(i) => match translate::rest_snapshot(&i) {
                Some(s) => Outcome::PdIncident(s),
                None => Outcome::Permanent {
                    error: "PagerDuty reported an unknown incident status".to_owned(),
                },
            },
            Err(outcome) => outcome,
        },
        Effect::PdRead {
            incident,
            read: PdRead::EscalationLevels { policy },
            ..
        } => escalation_levels(bridge, incident, policy).await,
        Effect::Dropped { .. } => Outcome::Done,
    }
}

/// Passes a mutation's result through, first dropping the actor's cached mapping when
/// PagerDuty rejected the `From` user ([`crate::identity::Identity::forget_if_rejected`]).
async fn from_checked<T>(
    bridge: &Bridge,
    actor: &sync_core::MutationActor,
    result: Result<T, pd_client::Error>,
) -> Result<T, pd_client::Error> {
    if let Err(err) = &result {
        bridge
            .ctx
            .identity
            .forget_if_rejected(&actor.slack, err)
            .await;
    }
    result
}

/// Makes a card post or a note look for an earlier attempt made since `since` before it is
/// sent (other effects are safe to repeat).
pub(crate) fn look_first_since(effect: &mut Effect, since: Timestamp) {
    match effect {
        Effect::PostCard { look_since, .. }
        | Effect::PdMutation {
            mutation: Mutation::AddNote { .. },
            look_since,
            ..
        } => {
            let at = look_since.map_or(since, |at| at.min(since));
            *look_since = Some(at);
        }
        _ => {}
    }
}

/// The metadata every card is posted with: [`CARD_EVENT_TYPE`] and the incident id.
fn card_metadata(incident: &IncidentId) -> MessageMetadata {
    MessageMetadata {
        event_type: CARD_EVENT_TYPE.to_owned(),
        event_payload: serde_json::json!({ "incident_id": incident.as_str() }),
    }
}

/// The start of a look for something first sent at `since` (the bridge's clock), as
/// milliseconds: [`LOOK_BACK_MARGIN_MS`] earlier.
fn look_start(since: Timestamp) -> i64 {
    since.as_millis().saturating_sub(LOOK_BACK_MARGIN_MS).max(0)
}

/// Looks for this incident's card in `channel` among the messages posted since shortly before
/// `since`, newest first, through at most [`LOOK_PAGES`] pages. An error is the outcome to
/// report: the post waits and looks again rather than risk a second card.
async fn find_card(
    bridge: &Bridge,
    channel: &ids::ChannelId,
    incident: &IncidentId,
    since: Timestamp,
) -> Result<Option<ids::MessageTs>, Outcome> {
    let start = look_start(since);
    let oldest = ids::MessageTs::new(format!("{}.{:06}", start / 1000, (start % 1000) * 1000));
    let mut cursor = None;
    for _ in 0..LOOK_PAGES {
        let req = ConversationHistory {
            oldest: Some(oldest.clone()),
            limit: Some(LOOK_PAGE_SIZE),
            cursor: cursor.take(),
            include_all_metadata: Some(true),
            ..ConversationHistory::new(channel.clone())
        };
        let page = bridge.ctx.slack.conversation_history(&req).await;
        count_slack(bridge, &page);
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                return Err(match slack_error(&err) {
                    limited @ Outcome::RateLimited { .. } => limited,
                    _ => Outcome::Retryable {
                        error: format!(
                            "could not look for a card an unanswered post may have made: {err}"
                        ),
                        retry_after: None,
                    },
                });
            }
        };
        let found = page.messages.iter().find(|m| {
            m.metadata.as_ref().is_some_and(|meta| {
                meta.event_type == CARD_EVENT_TYPE
                    && meta.event_payload["incident_id"].as_str() == Some(incident.as_str())
            })
        });
        if let Some(message) = found {
            return Ok(Some(message.ts.clone()));
        }
        match page.next_cursor() {
            Some(next) if page.has_more => cursor = Some(next.to_owned()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Whether `user` already added a note with `content` (trimmed) to the incident since shortly
/// before `since`. An error is the outcome to report: the note waits rather than risk a second.
async fn find_note(
    bridge: &Bridge,
    incident: &IncidentId,
    user: &ids::PdUserId,
    content: &str,
    since: Timestamp,
) -> Result<bool, Outcome> {
    let notes = pd_call(bridge, bridge.ctx.pd.list_notes(incident).await)?;
    let start = look_start(since);
    Ok(notes.iter().any(|note| {
        note.content.trim() == content.trim()
            && note
                .user
                .as_ref()
                .and_then(pd_client::rest::AgentReference::user_id)
                .is_some_and(|id| id == *user)
            && note
                .created_at
                .is_none_or(|at| translate::timestamp(at).as_millis() >= start)
    }))
}

/// The Slack users of the card's assignees (cached reverse mapping), or none when the lookup
/// takes longer than [`MENTIONS_TIMEOUT`]: the card then names them.
async fn mentions(bridge: &Bridge, card: &sync_core::CardView) -> render::Mentions {
    let users: Vec<ids::PdUserId> = card.assignees.iter().map(|a| a.id.clone()).collect();
    if users.is_empty() {
        return render::Mentions::new();
    }
    let lookup = bridge.ctx.identity.mentions(&users, bridge.now());
    tokio::time::timeout(MENTIONS_TIMEOUT, lookup)
        .await
        .unwrap_or_else(|_| {
            tracing::debug!("assignee mentions timed out; naming them instead");
            render::Mentions::new()
        })
}

pub(crate) async fn ephemeral(
    bridge: &Bridge,
    channel: &ids::ChannelId,
    user: &SlackUserId,
    text: &str,
) -> Result<(), slack_client::Error> {
    let req = PostEphemeral {
        channel: channel.clone(),
        user: user.clone(),
        text: text.to_owned(),
        blocks: Vec::new(),
        thread_ts: None,
    };
    bridge.ctx.slack.post_ephemeral(&req).await.map(|_| ())
}

async fn escalation_levels(
    bridge: &Bridge,
    incident: &IncidentId,
    policy: &ids::EscalationPolicyId,
) -> Outcome {
    // The two reads count as one call: the first one's success is not counted on its own.
    let pd = &bridge.ctx.pd;
    let both = async {
        let ep = pd.get_escalation_policy(policy).await?;
        let oncalls = pd.list_oncalls(policy).await?;
        Ok::<_, pd_client::Error>((ep, oncalls))
    };
    let (ep, oncalls) = match pd_call(bridge, both.await) {
        Ok(both) => both,
        Err(outcome) => return outcome,
    };
    let assignees: Vec<ids::PdUserId> = bridge.with_engine(|e| {
        e.incident(incident)
            .and_then(IncidentState::snapshot)
            .map(|s| s.assignees.iter().map(|a| a.id.clone()).collect())
            .unwrap_or_default()
    });
    let current = oncalls
        .iter()
        .filter(|o| assignees.contains(&o.user.id))
        .map(|o| o.escalation_level)
        .min();
    Outcome::Levels(EscalationLevels {
        current,
        max: u32::try_from(ep.escalation_rules.len()).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack_api(
        status: u16,
        code: Option<&str>,
        retry_after: Option<Duration>,
    ) -> slack_client::Error {
        slack_client::Error::Api {
            method: "chat.postMessage",
            status,
            code: code.map(str::to_owned),
            message: None,
            retry_after,
            needed: None,
        }
    }

    #[test]
    fn each_client_result_has_one_label_and_its_error_one_outcome() {
        let limited = pd_client::Error::Api {
            status: 429,
            code: None,
            message: "slow down".to_owned(),
            retry_after: None,
        };
        assert_eq!(pd_label(&Ok::<(), _>(())), "ok");
        assert_eq!(pd_label(&Err::<(), _>(limited.clone())), "rate_limited");
        assert_eq!(
            pd_error(&limited),
            Outcome::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            }
        );
        let maybe = pd_client::Error::MaybeSent {
            reason: "reset".to_owned(),
        };
        assert_eq!(pd_label(&Err::<(), _>(maybe.clone())), "error");
        assert!(matches!(pd_error(&maybe), Outcome::MaybeSent { .. }));

        let wait = Duration::from_millis(1500);
        let local = slack_client::Error::RateLimitedLocally {
            method: "chat.update",
            wait,
        };
        assert_eq!(slack_label(&Ok::<(), _>(())), "ok");
        assert_eq!(
            slack_error(&local),
            Outcome::RateLimited { retry_after: wait }
        );
        assert_eq!(slack_label(&Err::<(), _>(local)), "rate_limited_locally");
        let hinted = slack_api(429, None, Some(Duration::from_secs(7)));
        assert_eq!(
            slack_error(&hinted),
            Outcome::RateLimited {
                retry_after: Duration::from_secs(7)
            }
        );
        assert_eq!(slack_label(&Err::<(), _>(hinted)), "rate_limited");
        let coded = slack_api(200, Some("ratelimited"), None);
        assert_eq!(
            slack_error(&coded),
            Outcome::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            }
        );
        assert_eq!(slack_label(&Err::<(), _>(coded)), "rate_limited");
        let failed = slack_api(200, Some("channel_not_found"), None);
        assert!(matches!(slack_error(&failed), Outcome::Permanent { .. }));
        assert_eq!(slack_label(&Err::<(), _>(failed)), "error");
    }
}
