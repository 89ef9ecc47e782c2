//! `pdbridge pd-subscribe`: creates the PagerDuty v3 webhook subscription pdbridge needs.
//!
//! [`subscribe`] creates one subscription delivering exactly [`CONSUMED_EVENTS`] to
//! `{url}/pagerduty/webhook` for a service, a team or the whole account, optionally pings it, and
//! prints the signing secret once (PagerDuty never shows it again) with how to store it. The
//! PagerDuty token comes from `PAGERDUTY_TOKEN` or `PAGERDUTY_TOKEN_FILE`, never from the command
//! line, so it stays out of shell history and process listings.

use std::fmt::Write as _;

use ids::{ServiceId, SubscriptionId, TeamId};
use pd_client::PdClient;
use pd_client::rest::{NewWebhookSubscription, SubscriptionFilter, WebhookSubscription};
use pd_client::webhook::EventType;

use super::manifest::PublicUrl;

/// The webhook event types pdbridge acts on, and only those.
///
/// Every `incident.*` event whose `data` is the full incident updates the card (status,
/// assignees, priority, service); `annotated`, `responder.*` and `status_update_published` add
/// thread lines. Other types would be verified, stored and ignored, so subscribing to them only
/// costs deliveries.
pub const CONSUMED_EVENTS: &[EventType] = &[
    EventType::IncidentTriggered,
    EventType::IncidentAcknowledged,
    EventType::IncidentUnacknowledged,
    EventType::IncidentResolved,
    EventType::IncidentReopened,
    EventType::IncidentEscalated,
    EventType::IncidentReassigned,
    EventType::IncidentDelegated,
    EventType::IncidentPriorityUpdated,
    EventType::IncidentServiceUpdated,
    EventType::IncidentAnnotated,
    EventType::IncidentResponderAdded,
    EventType::IncidentResponderReplied,
    EventType::IncidentStatusUpdatePublished,
];

/// What a subscription covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One service's incidents.
    Service(ServiceId),
    /// The incidents of one team's services.
    Team(TeamId),
    /// Every incident in the account.
    Account,
}

impl Scope {
    /// The PagerDuty filter for this scope.
    pub fn filter(&self) -> SubscriptionFilter {
        match self {
            Scope::Service(id) => SubscriptionFilter {
                kind: "service_reference".to_owned(),
                id: Some(id.as_str().to_owned()),
            },
            Scope::Team(id) => SubscriptionFilter {
                kind: "team_reference".to_owned(),
                id: Some(id.as_str().to_owned()),
            },
            Scope::Account => SubscriptionFilter {
                kind: "account_reference".to_owned(),
                id: None,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Scope::Service(id) => format!("service {id}"),
            Scope::Team(id) => format!("team {id}"),
            Scope::Account => "the whole account".to_owned(),
        }
    }
}

/// Why `pd-subscribe` failed.
#[derive(Debug)]
pub enum SubscribeError {
    /// PagerDuty refused or could not be reached.
    Api(pd_client::Error),
    /// PagerDuty created the subscription but its answer had no signing secret.
    NoSecret(SubscriptionId),
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscribeError::Api(err) => write!(f, "{err}"),
            SubscribeError::NoSecret(id) => write!(
                f,
                "PagerDuty created subscription {id} but returned no signing secret; delete it \
                 in PagerDuty (Integrations → Generic Webhooks (v3)) and run pd-subscribe again"
            ),
        }
    }
}

impl std::error::Error for SubscribeError {}

/// What `pd-subscribe` did. Its `Debug` leaves out the report, which holds the secret.
pub struct Subscribed {
    /// The new subscription (its secret is redacted in `Debug`).
    pub subscription: WebhookSubscription,
    /// Other subscriptions that already deliver to the same URL.
    pub existing: Vec<SubscriptionId>,
    /// Whether a `pagey.ping` was requested.
    pub pinged: bool,
    /// The text for the operator, including the secret once.
    pub report: String,
}

impl std::fmt::Debug for Subscribed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribed")
            .field("subscription", &self.subscription)
            .field("existing", &self.existing)
            .field("pinged", &self.pinged)
            .finish_non_exhaustive()
    }
}

/// Creates the subscription for `scope` delivering to `url`, pings it when `ping` is set, and
/// returns the operator report.
pub async fn subscribe(
    client: &PdClient,
    url: &PublicUrl,
    scope: &Scope,
    ping: bool,
) -> Result<Subscribed, SubscribeError> {
    let target = url.webhook();
    let existing: Vec<SubscriptionId> = client
        .list_webhook_subscriptions()
        .await
        .map_err(SubscribeError::Api)?
        .into_iter()
        .filter(|s| s.delivery_method.url == target)
        .map(|s| s.id)
        .collect();
    let request = NewWebhookSubscription::new(
        target.clone(),
        format!("pdbridge ({})", url.as_str()),
        CONSUMED_EVENTS.to_vec(),
        scope.filter(),
    );
    let subscription = client
        .create_webhook_subscription(request)
        .await
        .map_err(SubscribeError::Api)?;
    let Some(secret) = subscription.delivery_method.secret.clone() else {
        return Err(SubscribeError::NoSecret(subscription.id));
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Created PagerDuty webhook subscription {}",
        subscription.id
    );
    let _ = writeln!(report, "  delivers to: {target}");
    let _ = writeln!(report, "  covers:      {}", scope.describe());
    let names: Vec<&str> = CONSUMED_EVENTS.iter().map(EventType::as_str).collect();
    let _ = writeln!(report, "  events:      {}", names.join(", "));
    if !existing.is_empty() {
        let ids: Vec<&str> = existing.iter().map(SubscriptionId::as_str).collect();
        let _ = writeln!(
            report,
            "  note:        {} already deliver(s) to this URL. Keep both secrets configured while \
             you rotate, then delete the old subscription; pdbridge drops the duplicate \
             deliveries by event id.",
            ids.join(", ")
        );
    }
    let _ = writeln!(report);
    let _ = writeln!(
        report,
        "Signing secret (PagerDuty shows it only now; it cannot be read again):"
    );
    let _ = writeln!(report);
    let _ = writeln!(report, "    {}", secret.expose());
    let _ = writeln!(report);
    let _ = writeln!(
        report,
        "Store it as one line of the file PAGERDUTY_WEBHOOK_SECRETS_FILE points at (keep any \
         older line until its subscription is deleted), for example:"
    );
    let _ = writeln!(
        report,
        "    install -m 600 /dev/null /etc/pdbridge/secrets/pagerduty_webhook_secrets  # once"
    );
    let _ = writeln!(
        report,
        "    cat >> /etc/pdbridge/secrets/pagerduty_webhook_secrets   # paste the secret, Enter, Ctrl-D"
    );
    let _ = writeln!(
        report,
        "or set pagerduty.webhook_secrets / PAGERDUTY_WEBHOOK_SECRETS (comma-separated). Then \
         restart pdbridge and run `pdbridge check`."
    );
    if ping {
        client
            .ping_webhook_subscription(&subscription.id)
            .await
            .map_err(SubscribeError::Api)?;
        let _ = writeln!(report);
        let _ = writeln!(
            report,
            "Ping requested: PagerDuty now delivers a pagey.ping to {target}. A running pdbridge \
             with this secret answers it 200 and counts it in \
             pdbridge_webhooks_received_total{{source=\"pagerduty\"}}; a 401 there means the \
             secret is not configured yet."
        );
    }
    Ok(Subscribed {
        subscription,
        existing,
        pinged: ping,
        report,
    })
}
