//! Declaring incidents from Slack: the stored request, the modal and text form
//! (`declare/form.rs`) and the loop that creates the PagerDuty incidents (`declare/run.rs`).
//!
//! A request is committed (one row per service, keyed by its `incident_key`) before it is
//! answered, and only then sent to PagerDuty, from the requester's mapped email (or the opt-in
//! `declare.unmapped_from` account). PagerDuty refusing it (a 4xx) is final and told to the
//! requester with the fix; PagerDuty down or unreachable keeps it pending and retries it with
//! the same `incident_key`, which PagerDuty de-duplicates, so a retry never opens a second
//! incident.

use ids::{ChannelId, ServiceId, SlackTeamId, SlackUserId};
use serde::{Deserialize, Serialize};
use store::{InsertOutcome, Json, NewDeclaration};

use crate::http::Unavailable;
use crate::writer::Then;

mod created;
pub mod form;
mod run;

pub use self::run::{declare_loop, run_due};

/// One incident to create, as stored before PagerDuty is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The `incident_key` sent to PagerDuty (and the store's key).
    pub incident_key: String,
    /// The request's id (see [`Origin::request_id`]): with a sibling's service name it makes
    /// that sibling's `incident_key`.
    pub request_id: String,
    /// Who asked.
    pub requester: SlackUserId,
    /// The requester's Slack name, when Slack sent it.
    pub requester_name: Option<String>,
    /// The workspace the request came from.
    pub team: Option<SlackTeamId>,
    /// The `[declare]` service name.
    pub service_name: String,
    /// The PagerDuty service.
    pub service: ServiceId,
    /// The severity name.
    pub severity: String,
    /// The title.
    pub title: String,
    /// The details.
    pub details: Option<String>,
    /// Who to assign it to instead of the service's escalation policy.
    pub assign_to: Option<SlackUserId>,
    /// The other services declared with it.
    pub together: Vec<String>,
    /// The channel the request came from.
    pub channel: Option<ChannelId>,
    /// Where to answer the requester.
    pub response_url: Option<String>,
}

/// Where a request came from and where to answer.
#[derive(Debug, Clone)]
pub struct Origin {
    /// A stable id of the request (the view id, or the command's `trigger_id`): with the
    /// service name it makes the `incident_key`, so a double submit is one incident.
    pub request_id: String,
    /// Who asked.
    pub requester: SlackUserId,
    /// The requester's Slack name.
    pub requester_name: Option<String>,
    /// The workspace.
    pub team: Option<SlackTeamId>,
    /// The channel.
    pub channel: Option<ChannelId>,
    /// Where to answer.
    pub response_url: Option<String>,
}

/// The `incident_key` of the declaration of `service` in request `request_id`.
pub fn incident_key(request_id: &str, service: &str) -> String {
    format!("pdbridge-declare-{request_id}-{service}")
}

/// The declarations of one request: one per service, each naming the others.
pub fn declarations(request: &form::Request, origin: &Origin) -> Vec<Declaration> {
    request
        .services
        .iter()
        .map(|(name, id)| Declaration {
            incident_key: incident_key(&origin.request_id, name),
            request_id: origin.request_id.clone(),
            requester: origin.requester.clone(),
            requester_name: origin.requester_name.clone(),
            team: origin.team.clone(),
            service_name: name.to_owned(),
            service: id.clone(),
            severity: request.severity.clone(),
            title: request.title.clone(),
            details: request.details.clone(),
            assign_to: request.assign_to.clone(),
            together: request
                .services
                .iter()
                .filter(|(other, _)| other != name)
                .map(|(other, _)| other.clone())
                .collect(),
            channel: origin.channel.clone(),
            response_url: origin.response_url.clone(),
        })
        .collect()
}

impl crate::bridge::Bridge {
    /// Commits the declarations of one request (a double submit stores nothing new) and
    /// wakes the declare loop. Returns whether anything new was stored.
    pub(crate) async fn store_declarations(
        &self,
        list: Vec<Declaration>,
    ) -> Result<bool, Unavailable> {
        let mut rows = Vec::with_capacity(list.len());
        for d in list {
            let payload =
                Json::encode(&d).map_err(|e| Unavailable(format!("encoding declaration: {e}")))?;
            rows.push((d.incident_key, d.requester, payload));
        }
        let now = (self.ctx.clock)();
        let outcome = self
            .writer()
            .record(
                Box::new(move |tx| {
                    let mut first = None;
                    for (key, user, payload) in &rows {
                        let outcome = tx.insert_declaration(&NewDeclaration {
                            incident_key: key,
                            slack_user: user,
                            payload,
                            received_at: now,
                        })?;
                        if outcome.is_inserted() || first.is_none() {
                            first = Some(outcome);
                        }
                    }
                    Ok(first.unwrap_or(InsertOutcome::Duplicate(0)))
                }),
                Then::Nothing,
            )
            .await?;
        self.ctx.declare_wake.notify_one();
        let result = if outcome.is_inserted() {
            "accepted"
        } else {
            "duplicate"
        };
        self.ctx.metrics.action("trigger", result);
        Ok(outcome.is_inserted())
    }
}

/// The incident's `body.details`: who declared it from Slack (and through which account when
/// they have no PagerDuty user), then the details.
pub fn body(d: &Declaration, via: Option<&str>) -> String {
    let who = d.requester_name.as_deref().unwrap_or("a Slack user");
    let mut text = match via {
        Some(account) => format!(
            "Declared from Slack by {who} (Slack user {}), who has no PagerDuty seat, via {account}.",
            d.requester
        ),
        None => format!("Declared from Slack by {who} (Slack user {}).", d.requester),
    };
    text.push_str(&format!(" Severity: {}.", d.severity));
    if !d.together.is_empty() {
        text.push_str(&format!(
            " Declared together with the services {}.",
            d.together.join(", ")
        ));
    }
    if let Some(details) = &d.details {
        text.push_str("\n\n");
        text.push_str(details);
    }
    text
}
