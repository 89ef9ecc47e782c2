//! The declare loop: takes due declarations, creates their PagerDuty incidents, and tells the
//! requester the outcome.

use std::sync::Arc;
use std::time::Duration;

use identity::{MappingOutcome, Policy, Rule, ServiceFacts};
use ids::{Email, PdUserId, Timestamp};
use pd_client::rest::{Incident, NewIncident, Urgency};
use slack_client::api::{PostEphemeral, ResponseUrlMessage};
use store::{AuditEntry, DeclarationRow, DeclarationStatus};
use tokio::sync::watch;

use super::Declaration;
use super::created::created;
use crate::bridge::Bridge;
use crate::config::DeclareConfig;
use crate::render::{escape, link_target};
use crate::runtime::{BATCH, IDLE, read, stopped, write};

/// The first retry after PagerDuty failed; doubled per attempt up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const RETRY_MAX: Duration = Duration::from_secs(300);
/// How long a declaration is retried before the requester is told it failed.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs due declarations until shutdown; woken when one is stored.
pub async fn declare_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    loop {
        run_due(&bridge).await;
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            () = bridge.ctx.declare_wake.notified() => {}
            () = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// Runs every declaration due now, oldest first; returns how many were attempted.
pub async fn run_due(bridge: &Bridge) -> usize {
    let now = (bridge.ctx.clock)();
    let due = read(bridge, move |tx| tx.due_declarations(now, BATCH))
        .await
        .unwrap_or_default();
    let n = due.len();
    for row in due {
        run_one(bridge, row).await;
    }
    n
}

/// What became of one attempt.
enum Outcome {
    /// Created (or found already created): the incident, the account it was sent from when the
    /// requester has no PagerDuty user, and the requester's message.
    Created {
        incident: Box<Incident>,
        via: Option<Email>,
        message: String,
    },
    /// Refused for good: the requester's message.
    Refused(String),
    /// Try again later: why, and whether to tell the requester that it is pending.
    Later(String),
}

async fn run_one(bridge: &Bridge, row: DeclarationRow) {
    let key = row.incident_key.clone();
    let d: Declaration = match row.payload.decode() {
        Ok(d) => d,
        Err(err) => {
            tracing::error!(%err, key, "undecodable declaration; refusing it");
            finish(bridge, &key, DeclarationStatus::Refused, "undecodable").await;
            return;
        }
    };
    let Some(config) = bridge.ctx.config.declare.clone() else {
        finish(bridge, &key, DeclarationStatus::Refused, "declaring is off").await;
        tell(
            bridge,
            &d,
            "Declaring incidents is turned off in pdbridge's configuration.",
        )
        .await;
        return;
    };
    let (outcome, audit) = attempt(bridge, &config, &d, row.attempts > 0).await;
    let now = (bridge.ctx.clock)();
    if let Outcome::Created {
        incident,
        via,
        message,
    } = outcome
    {
        created(bridge, &d, *incident, via, audit).await;
        bridge.ctx.metrics.action("trigger", "succeeded");
        tell(bridge, &d, &message).await;
        return;
    }
    if let Some(entry) = audit {
        let _ = write(bridge, move |tx| tx.append_audit(&entry).map(|_| ())).await;
    }
    match outcome {
        Outcome::Created { .. } => {}
        Outcome::Refused(message) => {
            bridge.ctx.metrics.action("trigger", "failed");
            finish(bridge, &key, DeclarationStatus::Refused, &message).await;
            tell(bridge, &d, &message).await;
        }
        Outcome::Later(why) if now.duration_since(row.received_at) > GIVE_UP_AFTER => {
            let message = format!(
                "pdbridge gave up declaring *{}* on {} after a day of failures ({}). Declare it in PagerDuty directly.",
                escape(&d.title),
                d.service_name,
                escape(&why)
            );
            bridge.ctx.metrics.action("trigger", "failed");
            finish(bridge, &key, DeclarationStatus::Refused, &message).await;
            tell(bridge, &d, &message).await;
        }
        Outcome::Later(why) => {
            let wait = RETRY_BASE
                .saturating_mul(1u32 << row.attempts.min(16))
                .min(RETRY_MAX);
            let due = now.saturating_add(wait);
            let k = key.clone();
            let _ = write(bridge, move |tx| tx.retry_declaration(&k, due)).await;
            tracing::warn!(key, %why, attempts = row.attempts + 1, "declaration pending");
            if row.attempts == 0 {
                tell(
                    bridge,
                    &d,
                    &format!(
                        "Declaring *{}* on {} is pending: {}. pdbridge keeps the request and retries; you will be told here.",
                        escape(&d.title),
                        d.service_name,
                        escape(&why)
                    ),
                )
                .await;
            }
        }
    }
}

/// Who the incident is created `From`, and how the card and body name the requester.
struct Sender {
    from: Email,
    pd_user: Option<PdUserId>,
    /// Set when the requester has no PagerDuty user and the opt-in account sends instead.
    via: Option<String>,
}

async fn attempt(
    bridge: &Bridge,
    config: &DeclareConfig,
    d: &Declaration,
    resend: bool,
) -> (Outcome, Option<AuditEntry>) {
    let now = (bridge.ctx.clock)();
    let audit = |pd_user: Option<PdUserId>, decision: String, result: Option<String>| AuditEntry {
        at: now,
        slack_user: d.requester.clone(),
        pd_user,
        action: "trigger".to_owned(),
        incident_id: None,
        decision,
        pd_result: result,
    };
    let identity = &bridge.ctx.identity;
    let mapping = match identity.resolve(&d.requester, d.team.as_ref(), now).await {
        Ok((resolution, _)) => resolution.outcome,
        Err(err) => {
            return (
                Outcome::Later(format!("looking you up failed ({err})")),
                None,
            );
        }
    };
    let policy = Policy::new(bridge.ctx.config.policy.clone(), None);
    let rule = policy.config().trigger.rule_for(&d.service_name);
    let sender = match &mapping {
        MappingOutcome::Mapped(user) => {
            let facts = match service_facts(bridge, d, rule).await {
                Ok(f) => f,
                Err(err) => {
                    let why = format!(
                        "reading service {}'s teams or on-call failed ({err})",
                        d.service
                    );
                    return (Outcome::Later(why), None);
                }
            };
            let team = d
                .team
                .clone()
                .unwrap_or_else(|| ids::SlackTeamId::new("unknown"));
            let decision = policy.authorize_trigger(&team, &mapping, &facts);
            if !decision.allowed {
                let text = format!(
                    "pdbridge did not declare *{}* on {}: {}",
                    escape(&d.title),
                    d.service_name,
                    escape(&decision.reason)
                );
                let entry = audit(
                    Some(user.pd_user.clone()),
                    format!("refused: {}", decision.reason),
                    None,
                );
                return (Outcome::Refused(text), Some(entry));
            }
            Sender {
                from: user.email.clone(),
                pd_user: Some(user.pd_user.clone()),
                via: None,
            }
        }
        MappingOutcome::Refused(refusal) => match (&config.unmapped_from, rule) {
            (Some(account), Rule::AnyMapped) => Sender {
                from: account.clone(),
                pd_user: None,
                via: Some(account.to_string()),
            },
            _ => {
                let fix = if config.unmapped_from.is_some() {
                    "Only mapped PagerDuty users may declare on this service; ask a pdbridge admin to map your Slack account."
                } else {
                    "Ask a pdbridge admin to map your Slack account to your PagerDuty user."
                };
                let text = format!(
                    "pdbridge did not declare *{}*: {} {fix}",
                    escape(&d.title),
                    escape(&refusal.to_string())
                );
                let entry = audit(None, format!("refused: unmapped: {refusal}"), None);
                return (Outcome::Refused(text), Some(entry));
            }
        },
    };
    let mut new = NewIncident::new(d.title.clone(), d.service.clone(), d.incident_key.clone())
        .details(super::body(d, sender.via.as_deref()));
    if let Some(severity) = config.severity(&d.severity) {
        new = new.urgency(match severity.urgency {
            crate::config::Urgency::High => Urgency::High,
            crate::config::Urgency::Low => Urgency::Low,
        });
        if let Some(name) = &severity.priority {
            match bridge.ctx.pd.priority_id(name).await {
                Ok(Some(id)) => new = new.priority(id),
                Ok(None) => tracing::warn!(
                    priority = %name,
                    "PagerDuty has no such priority; declaring without one (run pdbridge check)"
                ),
                Err(err) => {
                    return (
                        Outcome::Later(format!("reading priorities failed ({err})")),
                        None,
                    );
                }
            }
        }
    }
    if let Some(target) = &d.assign_to {
        match identity.pd_user_for(target, d.team.as_ref(), now).await {
            Ok(user) => new = new.assign_to(&[user]),
            Err(crate::identity::TargetError::Refused(why)) => {
                let text = format!(
                    "pdbridge did not declare *{}*: it cannot be assigned to <@{}>: {}",
                    escape(&d.title),
                    escape(target.as_str()),
                    escape(&why)
                );
                return (Outcome::Refused(text), None);
            }
            Err(crate::identity::TargetError::Lookup(why)) => return (Outcome::Later(why), None),
        }
    }
    let decided = match &sender.via {
        Some(account) => format!("allowed: unmapped via {account}"),
        None => format!("allowed: {}", rule.as_str()),
    };
    // A create that may have reached PagerDuty (timeout, dropped connection, 5xx) is resent
    // with the same incident_key; that is safe ONLY because PagerDuty refuses a second open
    // incident with that key on the service, and the client then returns the first one. The
    // key protects nothing once that incident is resolved, so a resend looks for it first.
    let earlier = if resend {
        match bridge
            .ctx
            .pd
            .find_incident_by_key(&d.incident_key, &d.service)
            .await
        {
            Ok(found) => found,
            Err(err) => {
                let why = format!("looking for the earlier attempt failed ({err})");
                return (Outcome::Later(why), None);
            }
        }
    } else {
        None
    };
    let result = match earlier {
        Some(incident) => Ok(pd_client::Created {
            incident,
            existing: true,
        }),
        None => bridge.ctx.pd.create_incident(&sender.from, new).await,
    };
    match result {
        Ok(created) => {
            let incident = created.incident;
            if let Some(account) = &sender.via {
                first_note(
                    bridge,
                    &incident.id,
                    &sender.from,
                    d,
                    account,
                    created.existing,
                )
                .await;
            }
            let link = match incident.html_url.as_deref().and_then(link_target) {
                Some(url) => format!("<{url}|#{}>", incident.incident_number),
                None => format!("#{}", incident.incident_number),
            };
            let message = format!(
                "Declared {link} *{}* on {} ({}).",
                escape(&incident.title),
                d.service_name,
                d.severity
            );
            let result = if created.existing { "existing" } else { "201" };
            let mut entry = audit(sender.pd_user, decided, Some(result.to_owned()));
            entry.incident_id = Some(incident.id.clone());
            (
                Outcome::Created {
                    incident: Box::new(incident),
                    via: sender.via.as_ref().map(|_| sender.from.clone()),
                    message,
                },
                Some(entry),
            )
        }
        Err(err) if refused_for_good(&err) => {
            if err.code() == Some(1020) || err.to_string().contains("Priorit") {
                bridge.ctx.pd.forget_priorities().await;
            }
            let text = format!(
                "PagerDuty refused to declare *{}* on {}: {}. {}",
                escape(&d.title),
                d.service_name,
                escape(&err.to_string()),
                fix_for(&err, d, sender.via.is_some())
            );
            let entry = audit(sender.pd_user, decided, Some(format!("error: {err}")));
            (Outcome::Refused(text), Some(entry))
        }
        Err(err) => (
            Outcome::Later(format!("PagerDuty did not answer ({err})")),
            None,
        ),
    }
}

/// Whether PagerDuty's answer is final: a 4xx other than 408 and 429.
fn refused_for_good(err: &pd_client::Error) -> bool {
    err.status()
        .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429)
        || matches!(
            err,
            pd_client::Error::InvalidRequest(_) | pd_client::Error::Config(_)
        )
}

/// What the requester can do about a refusal.
fn fix_for(err: &pd_client::Error, d: &Declaration, via: bool) -> String {
    let text = err.to_string();
    if text.contains("Service is disabled") || text.contains("Service not found") {
        format!(
            "Choose another service, or ask a PagerDuty admin to enable {} (pdbridge check lists the declare services).",
            d.service
        )
    } else if err.code() == Some(1020) || text.contains("Priorit") {
        "Ask a pdbridge admin to fix the priority of this severity in [declare] severities (pdbridge check shows the valid names).".to_owned()
    } else if err.code() == Some(1008) || err.status() == Some(403) || text.contains("From") {
        if via {
            "Ask a pdbridge admin to check declare.unmapped_from: it must be a PagerDuty user who may create incidents.".to_owned()
        } else {
            "Your PagerDuty user may not create incidents on this service; ask a PagerDuty admin for a responder role or above.".to_owned()
        }
    } else {
        "Fix what PagerDuty names and declare again.".to_owned()
    }
}

/// The PagerDuty services' teams and on-call users, read only when the rule needs them.
async fn service_facts(
    bridge: &Bridge,
    d: &Declaration,
    rule: Rule,
) -> Result<ServiceFacts, pd_client::Error> {
    let mut facts = ServiceFacts {
        name: d.service_name.clone(),
        id: d.service.clone(),
        teams: Vec::new(),
        on_call: Vec::new(),
    };
    if matches!(rule, Rule::AnyMapped | Rule::Admin) {
        return Ok(facts);
    }
    let service = bridge.ctx.pd.get_service(&d.service).await?;
    facts.teams = service.team_ids();
    if rule == Rule::Responder
        && let Some(policy) = &service.escalation_policy
    {
        let oncalls = bridge.ctx.pd.list_oncalls(&policy.id).await?;
        facts.on_call = oncalls.into_iter().map(|o| o.user.id).collect();
    }
    Ok(facts)
}

/// Records the real requester as the incident's first note when the opt-in account sent it;
/// for an incident an earlier attempt created, only when that note is not there yet.
async fn first_note(
    bridge: &Bridge,
    incident: &ids::IncidentId,
    from: &Email,
    d: &Declaration,
    account: &str,
    existing: bool,
) {
    let text = format!(
        "Declared from Slack by {} (Slack user {}), who has no PagerDuty seat, via {account}.",
        d.requester_name.as_deref().unwrap_or("a Slack user"),
        d.requester
    );
    if existing {
        match bridge.ctx.pd.list_notes(incident).await {
            Ok(notes) if notes.iter().any(|n| n.content == text) => return,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, %incident, "reading notes failed; the body names the requester");
                return;
            }
        }
    }
    if let Err(err) = bridge.ctx.pd.add_note(incident, from, &text).await {
        tracing::warn!(%err, %incident, "adding the requester note failed; the body names them");
    }
}

async fn finish(bridge: &Bridge, key: &str, status: DeclarationStatus, result: &str) {
    let now: Timestamp = (bridge.ctx.clock)();
    let (k, r) = (key.to_owned(), result.to_owned());
    if let Err(err) = write(bridge, move |tx| tx.finish_declaration(&k, status, &r, now)).await {
        tracing::error!(err = %err.0, key, "recording a finished declaration failed");
    }
}

/// Answers the requester ephemerally: through the request's `response_url` (valid 30 minutes),
/// else, or when that fails, with `chat.postEphemeral` in the request's channel.
async fn tell(bridge: &Bridge, d: &Declaration, text: &str) {
    if let Some(url) = d
        .response_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
    {
        let msg = ResponseUrlMessage::ephemeral(text);
        match bridge.ctx.slack.respond(&url, &msg).await {
            Ok(()) => return,
            Err(err) => tracing::info!(%err, key = d.incident_key, "response_url failed; posting"),
        }
    }
    let Some(channel) = d.channel.clone() else {
        tracing::warn!(key = d.incident_key, "no way to answer the requester");
        return;
    };
    let req = PostEphemeral {
        channel,
        user: d.requester.clone(),
        text: text.to_owned(),
        blocks: Vec::new(),
        thread_ts: None,
    };
    if let Err(err) = bridge.ctx.slack.post_ephemeral(&req).await {
        tracing::warn!(%err, key = d.incident_key, "answering the requester failed");
    }
}
