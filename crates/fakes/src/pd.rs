//! A fake PagerDuty: REST v2 incidents, users (with `/users/me`), teams, services, escalation
//! policies, on-calls and schedules (the `oncall` module: rotations, overrides, a simulated
//! clock), webhook subscriptions and an OAuth token endpoint, plus signed v3 webhook delivery.
//!
//! Call order: [`FakePagerDuty::start`] inside a Tokio runtime, script state with
//! [`FakePagerDuty::add_user`], [`FakePagerDuty::add_escalation_policy`] and
//! [`FakePagerDuty::trigger_incident`] (teams and services: [`FakePagerDuty::add_team`],
//! [`FakePagerDuty::add_service`], [`FakePagerDuty::set_user_teams`],
//! [`FakePagerDuty::set_policy_teams`], [`FakePagerDuty::trigger_incident_on`]), point the code
//! under test at [`FakePagerDuty::url`],
//! then inspect [`FakePagerDuty::requests`], [`FakePagerDuty::incident`] and
//! [`FakePagerDuty::deliveries`].
//!
//! Behaviour follows PagerDuty where pdbridge depends on it:
//! - Incident mutations (`PUT /incidents/{id}`, `POST /incidents/{id}/notes`) need a `From`
//!   header naming a known user; otherwise 400 with PagerDuty's `{"error": {...}}` shape. A
//!   `From` user with a read-only role ([`READ_ONLY_ROLES`]) gets 403, code 2010.
//! - Acknowledging a resolved incident reopens it (PagerDuty behaviour since 2025-09);
//!   acknowledging an acknowledged one fails with code 1002, resolving a resolved one with 1001.
//! - Escalating sets the level and assigns that level's on-call users; reassigning sets the
//!   assignees; both put the incident back to `triggered`.
//! - Incidents belong to a service ([`DEFAULT_SERVICE`] unless created with
//!   [`FakePagerDuty::add_incident_on`] or [`FakePagerDuty::trigger_incident_on`]) and carry the
//!   teams of their escalation policy, as PagerDuty derives them.
//! - `GET /users/me` answers per token kind: the user of a user-level key
//!   ([`FakePagerDuty::add_user_token`]); 400 for account-level keys and OAuth app tokens.
//! - 960 requests per rolling minute (configurable) across the API; above that, 429 with
//!   `ratelimit-reset` and code 2020.
//! - Faults queued with [`FakePagerDuty::push_fault`] apply to the next API requests in order;
//!   [`FakePagerDuty::set_down`] answers 503 to everything.
//! - State changes emit v3 webhooks to every active subscription, signed with its secret
//!   (`X-PagerDuty-Signature: v1=<hex>`), with a stable `X-Webhook-Id` per delivery, `agent` set
//!   to the `From` user, delivered asynchronously in order per incident and retried on 5xx,
//!   429 and connection errors.
//! - `POST /incidents`, `GET /priorities` and `GET /services` (with `incident_key` dedupe,
//!   disabled services and accounts with or without priorities) are described in `create`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ids::{
    Email, EscalationPolicyId, EventId, IncidentId, NoteId, PdUserId, ServiceId, SubscriptionId,
    TeamId, WebhookId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::http::{Handler, RecordedRequest, Reply, Server};

mod create;
mod log_entries;
mod more;
mod oncall;
mod responders;
mod snooze;

pub use create::FakeCreation;
pub use oncall::{FakeOverride, FakeSchedule};

/// The fake's web UI host, used in `html_url` fields.
const HTML_BASE: &str = "https://fake.pagerduty.com";
/// The API host used in `self` fields (always the real one, like PagerDuty's payloads).
const API_BASE: &str = "https://api.pagerduty.com";
/// The service every fake account starts with; incidents belong to it unless told otherwise.
pub const DEFAULT_SERVICE: &str = "PFAKESV";

/// A fault to inject into the next API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the `{"error": {"code": 2020}}` body; with `ratelimit-reset` (seconds, decimals
    /// allowed) when `reset` is set, and with no headers and no body when it is not.
    RateLimited {
        /// The value for `ratelimit-reset`.
        reset: Option<Duration>,
    },
    /// An error status (such as 500 or 503) with PagerDuty's error body. Nothing changes.
    ServerError(u16),
    /// Handle the request normally (state changes happen) but answer only after this delay.
    Slow(Duration),
    /// Handle the request normally (state changes happen), then close the connection without
    /// answering, as a failing proxy or network would.
    HangUp,
}

/// The status of a fake incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Open, not acknowledged.
    Triggered,
    /// Acknowledged.
    Acknowledged,
    /// Resolved.
    Resolved,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

/// A user of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// The user id.
    pub id: PdUserId,
    /// The display name.
    pub name: String,
    /// The login email.
    pub email: Email,
    /// The teams the user is a member of.
    pub teams: Vec<TeamId>,
    /// The account role (`user`, `observer`, `read_only_user`, …), `user` by default.
    pub role: String,
}

/// The account roles that may not change incidents: PagerDuty refuses a mutation whose `From`
/// user has one of them with 403 (an observer, or a stakeholder license's roles).
pub const READ_ONLY_ROLES: &[&str] = &["observer", "read_only_user", "read_only_limited_user"];

/// A team of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTeam {
    /// The team id.
    pub id: TeamId,
    /// The name.
    pub name: String,
}

/// A service of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeService {
    /// The service id.
    pub id: ServiceId,
    /// The name.
    pub name: String,
    /// The teams the service belongs to.
    pub teams: Vec<TeamId>,
}

/// An escalation policy: `levels[n - 1]` are the users on call at level `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeEscalationPolicy {
    /// The policy id.
    pub id: EscalationPolicyId,
    /// The name.
    pub name: String,
    /// The on-call users per level (level 1 first).
    pub levels: Vec<Vec<PdUserId>>,
    /// How many times the policy repeats.
    pub num_loops: u32,
    /// The teams of the policy (incidents on it carry them).
    pub teams: Vec<TeamId>,
}

/// A note on a fake incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNote {
    /// The note id.
    pub id: NoteId,
    /// The author.
    pub user: PdUserId,
    /// The text.
    pub content: String,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// An incident of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIncident {
    /// The incident id.
    pub id: IncidentId,
    /// The incident number.
    pub number: u64,
    /// The title.
    pub title: String,
    /// The status.
    pub status: Status,
    /// `high` or `low`.
    pub urgency: String,
    /// The escalation policy.
    pub escalation_policy: EscalationPolicyId,
    /// The service the incident belongs to.
    pub service: ServiceId,
    /// The incident's teams (its escalation policy's teams when it was created).
    pub teams: Vec<TeamId>,
    /// The current 1-based escalation level (PagerDuty does not expose it; the fake tracks it).
    pub escalation_level: u32,
    /// The assigned users.
    pub assignees: Vec<PdUserId>,
    /// Who acknowledged (empty unless acknowledged).
    pub acknowledgers: Vec<PdUserId>,
    /// The notes, oldest first.
    pub notes: Vec<FakeNote>,
    /// The resolution text given on resolve.
    pub resolution: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last reopened.
    pub reopened_at: Option<OffsetDateTime>,
    /// When it last changed (REST `updated_at`; `last_status_change_at` is the same here,
    /// since every change the fake makes sets a status).
    pub updated_at: OffsetDateTime,
    /// The de-duplication key.
    pub incident_key: String,
    /// Until when a snooze suspends the acknowledgement (`POST /incidents/{id}/snooze`).
    pub snoozed_until: Option<OffsetDateTime>,
}

/// A webhook subscription of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSubscription {
    /// The subscription id.
    pub id: SubscriptionId,
    /// The delivery URL.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// The subscribed event types (empty means all).
    pub events: Vec<String>,
    /// Whether deliveries happen.
    pub active: bool,
    /// The description.
    pub description: String,
    /// The filter as sent on creation.
    pub filter: Value,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The `X-Webhook-Id`, the same for every attempt of one delivery.
    pub webhook_id: WebhookId,
    /// The `event.id`.
    pub event_id: EventId,
    /// The `event.event_type`.
    pub event_type: String,
    /// The incident, for incident events.
    pub incident_id: Option<IncidentId>,
    /// The subscription delivered to.
    pub subscription: SubscriptionId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, or `None` when the connection failed.
    pub status: Option<u16>,
    /// The exact signed body.
    pub body: Bytes,
    /// The `X-PagerDuty-Signature` value sent.
    pub signature: String,
}

impl DeliveryAttempt {
    /// Whether the receiver accepted this attempt (any 2xx).
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRetry {
    /// Attempts per delivery, including the first.
    pub max_attempts: u32,
    /// The wait before the second attempt; doubles each time, capped at 1 s.
    pub base_delay: Duration,
}

impl Default for DeliveryRetry {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(20),
        }
    }
}

#[derive(Debug)]
struct OAuthConfig {
    client_id: String,
    client_secret: String,
    expires_in: u64,
}

#[derive(Debug)]
struct Issued {
    expires: Instant,
    scopes: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<PdUserId, FakeUser>,
    policies: BTreeMap<EscalationPolicyId, FakeEscalationPolicy>,
    teams: BTreeMap<TeamId, FakeTeam>,
    services: BTreeMap<ServiceId, FakeService>,
    incidents: BTreeMap<IncidentId, FakeIncident>,
    subscriptions: BTreeMap<SubscriptionId, FakeSubscription>,
    faults: VecDeque<Fault>,
    down: bool,
    rate_per_minute: u32,
    window: VecDeque<Instant>,
    api_tokens: Vec<String>,
    user_tokens: BTreeMap<String, PdUserId>,
    oauth: Option<OAuthConfig>,
    enforce_scopes: bool,
    issued: BTreeMap<String, Issued>,
    token_requests: u32,
    next_number: u64,
    counter: u64,
    delivery_retry: DeliveryRetry,
    oncall: oncall::OnCalls,
    create: create::CreateState,
    log: log_entries::Log,
    responders: responders::Asked,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:06}", self.counter)
    }
}

/// An event waiting to be delivered.
#[derive(Debug, Clone)]
struct Outgoing {
    subscription: SubscriptionId,
    url: String,
    secret: String,
    webhook_id: WebhookId,
    event_id: EventId,
    event_type: String,
    incident_id: Option<IncidentId>,
    body: Bytes,
}

type Queues = BTreeMap<(SubscriptionId, String), mpsc::UnboundedSender<Outgoing>>;

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    deliveries: Mutex<Vec<DeliveryAttempt>>,
    queues: Mutex<Queues>,
    http: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

/// A running fake PagerDuty on `127.0.0.1`. Dropping it stops the server.
#[derive(Debug)]
pub struct FakePagerDuty {
    server: Server,
    shared: Arc<Shared>,
}

impl FakePagerDuty {
    /// Starts the fake on `127.0.0.1:0` with an empty account. Must run inside a Tokio runtime.
    pub async fn start() -> Self {
        let mut state = State {
            rate_per_minute: 960,
            next_number: 1,
            ..State::default()
        };
        let default_service = ServiceId::new(DEFAULT_SERVICE);
        state.services.insert(
            default_service.clone(),
            FakeService {
                id: default_service,
                name: "Fake Service".to_owned(),
                teams: Vec::new(),
            },
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            deliveries: Mutex::new(Vec::new()),
            queues: Mutex::new(BTreeMap::new()),
            http: Client::builder(TokioExecutor::new()).build_http(),
            runtime: tokio::runtime::Handle::current(),
        });
        let for_handler = Arc::clone(&shared);
        let handler: Handler = Arc::new(move |req| {
            let shared = Arc::clone(&for_handler);
            Box::pin(async move { handle(&shared, req) })
        });
        let server = Server::spawn(handler)
            .await
            .expect("bind 127.0.0.1:0 for the fake PagerDuty");
        Self { server, shared }
    }

    /// The base URL, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The OAuth token endpoint URL of this fake.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.server.url())
    }

    /// Every request received so far (API and token endpoint), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("fake PagerDuty state lock")
    }

    /// Adds a user.
    pub fn add_user(&self, id: &str, name: &str, email: &str) -> PdUserId {
        let user = FakeUser {
            id: PdUserId::new(id),
            name: name.to_owned(),
            email: Email::new(email),
            teams: Vec::new(),
            role: "user".to_owned(),
        };
        self.state().users.insert(user.id.clone(), user);
        PdUserId::new(id)
    }

    /// Makes `token` a user-level API key of `user`: it authenticates like any key, and
    /// `GET /users/me` answers with that user (account-level keys get 400 there).
    pub fn add_user_token(&self, token: &str, user: &PdUserId) {
        self.state()
            .user_tokens
            .insert(token.to_owned(), user.clone());
    }

    /// Adds or replaces a team.
    pub fn add_team(&self, id: &str, name: &str) -> TeamId {
        let team = FakeTeam {
            id: TeamId::new(id),
            name: name.to_owned(),
        };
        self.state().teams.insert(team.id.clone(), team);
        TeamId::new(id)
    }

    /// Adds or replaces a service belonging to `teams`.
    pub fn add_service(&self, id: &str, name: &str, teams: &[TeamId]) -> ServiceId {
        let service = FakeService {
            id: ServiceId::new(id),
            name: name.to_owned(),
            teams: teams.to_vec(),
        };
        self.state().services.insert(service.id.clone(), service);
        ServiceId::new(id)
    }

    /// Sets the account role of `user` (`observer`, `read_only_user`, `admin`, …). Mutations
    /// `From` a user with one of [`READ_ONLY_ROLES`] are refused with 403 and code 2010.
    pub fn set_user_role(&self, user: &PdUserId, role: &str) {
        if let Some(u) = self.state().users.get_mut(user) {
            role.clone_into(&mut u.role);
        }
    }

    /// Changes the login email of `user`; `From` must then name the new address.
    pub fn set_user_email(&self, user: &PdUserId, email: &str) {
        if let Some(u) = self.state().users.get_mut(user) {
            u.email = Email::new(email);
        }
    }

    /// Sets the teams `user` is a member of (shown in `GET /users/{id}` and `/users`).
    pub fn set_user_teams(&self, user: &PdUserId, teams: &[TeamId]) {
        if let Some(u) = self.state().users.get_mut(user) {
            u.teams = teams.to_vec();
        }
    }

    /// Sets the teams of an escalation policy; incidents created on it afterwards carry them.
    pub fn set_policy_teams(&self, policy: &EscalationPolicyId, teams: &[TeamId]) {
        if let Some(p) = self.state().policies.get_mut(policy) {
            p.teams = teams.to_vec();
        }
    }

    /// Adds an escalation policy whose level `n` has the users `levels[n - 1]` on call.
    pub fn add_escalation_policy(
        &self,
        id: &str,
        name: &str,
        levels: Vec<Vec<PdUserId>>,
    ) -> EscalationPolicyId {
        let policy = FakeEscalationPolicy {
            id: EscalationPolicyId::new(id),
            name: name.to_owned(),
            levels,
            num_loops: 0,
            teams: Vec::new(),
        };
        self.state().policies.insert(policy.id.clone(), policy);
        EscalationPolicyId::new(id)
    }

    /// Creates a triggered incident at level 1 of `policy` (assigned to that level's on-call
    /// users) without emitting a webhook.
    pub fn add_incident(&self, title: &str, policy: &EscalationPolicyId) -> IncidentId {
        self.add_incident_on(title, policy, &ServiceId::new(DEFAULT_SERVICE))
    }

    /// Like [`FakePagerDuty::add_incident`], on `service`.
    pub fn add_incident_on(
        &self,
        title: &str,
        policy: &EscalationPolicyId,
        service: &ServiceId,
    ) -> IncidentId {
        let mut state = self.state();
        create_incident(&mut state, title, policy, service).id
    }

    /// Like [`FakePagerDuty::add_incident`], and emits `incident.triggered` (agent null).
    pub fn trigger_incident(&self, title: &str, policy: &EscalationPolicyId) -> IncidentId {
        self.trigger_incident_on(title, policy, &ServiceId::new(DEFAULT_SERVICE))
    }

    /// Like [`FakePagerDuty::trigger_incident`], on `service`.
    pub fn trigger_incident_on(
        &self,
        title: &str,
        policy: &EscalationPolicyId,
        service: &ServiceId,
    ) -> IncidentId {
        let (id, outgoing) = {
            let mut state = self.state();
            let incident = create_incident(&mut state, title, policy, service);
            let data = webhook_incident(&state, &incident);
            let outgoing = event(
                &mut state,
                "incident.triggered",
                None,
                data,
                Some(&incident.id),
                None,
            );
            (incident.id, outgoing)
        };
        self.shared.enqueue(outgoing);
        id
    }

    /// A copy of an incident's current state.
    pub fn incident(&self, id: &IncidentId) -> Option<FakeIncident> {
        self.state().incidents.get(id).cloned()
    }

    /// Every incident, ordered by id.
    pub fn incidents(&self) -> Vec<FakeIncident> {
        self.state().incidents.values().cloned().collect()
    }

    /// A copy of a subscription.
    pub fn subscription(&self, id: &SubscriptionId) -> Option<FakeSubscription> {
        self.state().subscriptions.get(id).cloned()
    }

    /// Adds an active subscription for every event type delivering to `url`, signed with
    /// `secret`.
    pub fn set_webhook_target(&self, url: &str, secret: &str) -> SubscriptionId {
        let mut state = self.state();
        let id = SubscriptionId::new(state.next_id("PSUB"));
        state.subscriptions.insert(
            id.clone(),
            FakeSubscription {
                id: id.clone(),
                url: url.to_owned(),
                secret: secret.to_owned(),
                events: Vec::new(),
                active: true,
                description: "fake target".to_owned(),
                filter: json!({"type": "account_reference"}),
            },
        );
        id
    }

    /// Temporarily disables a subscription, as PagerDuty does after repeated drops.
    pub fn disable_subscription(&self, id: &SubscriptionId) {
        if let Some(sub) = self.state().subscriptions.get_mut(id) {
            sub.active = false;
        }
    }

    /// Queues a fault for the next API request (faults apply in FIFO order, one per request).
    pub fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// In "down" mode every request gets a bare 503.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Changes the API budget per rolling minute (960 by default).
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.state().rate_per_minute = per_minute;
    }

    /// Accepts only these API tokens (`Token token=...`). By default any non-empty token works.
    pub fn set_api_tokens(&self, tokens: &[&str]) {
        self.state().api_tokens = tokens.iter().map(|t| (*t).to_owned()).collect();
    }

    /// Enables the OAuth client-credentials endpoint (`POST /oauth/token`) for this client,
    /// issuing bearer tokens that expire after `expires_in`.
    pub fn enable_oauth(&self, client_id: &str, client_secret: &str, expires_in: Duration) {
        self.state().oauth = Some(OAuthConfig {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            expires_in: expires_in.as_secs().max(1),
        });
    }

    /// When on, OAuth bearer tokens may only call what their requested scopes allow (403
    /// otherwise, as PagerDuty answers scoped app tokens); off by default.
    pub fn enforce_oauth_scopes(&self, on: bool) {
        self.state().enforce_scopes = on;
    }

    /// How many token requests succeeded.
    pub fn token_requests(&self) -> u32 {
        self.state().token_requests
    }

    /// Forgets every issued OAuth token, so the next API call with one gets 401.
    pub fn revoke_oauth_tokens(&self) {
        self.state().issued.clear();
    }

    /// Changes how webhook deliveries are retried.
    pub fn set_delivery_retry(&self, retry: DeliveryRetry) {
        self.state().delivery_retry = retry;
    }

    /// Every delivery attempt so far, in completion order.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.shared
            .deliveries
            .lock()
            .expect("deliveries lock")
            .clone()
    }

    /// Waits until at least `count` delivery attempts finished (whatever their outcome), or
    /// `timeout` passes, and returns every attempt.
    pub async fn wait_for_attempts(&self, count: usize, timeout: Duration) -> Vec<DeliveryAttempt> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempts = self.deliveries();
            if attempts.len() >= count || Instant::now() >= deadline {
                return attempts;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until at least `count` deliveries were accepted (2xx), or `timeout` passes, and
    /// returns the accepted ones.
    pub async fn wait_for_accepted(&self, count: usize, timeout: Duration) -> Vec<DeliveryAttempt> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted: Vec<_> = self
                .deliveries()
                .into_iter()
                .filter(DeliveryAttempt::accepted)
                .collect();
            if accepted.len() >= count || Instant::now() >= deadline {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Whole seconds, as PagerDuty's REST API writes `updated_at` and `last_status_change_at`.
fn rfc3339_seconds(t: OffsetDateTime) -> String {
    rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}

fn create_incident(
    state: &mut State,
    title: &str,
    policy: &EscalationPolicyId,
    service: &ServiceId,
) -> FakeIncident {
    let number = state.next_number;
    state.next_number += 1;
    let id = IncidentId::new(state.next_id("Q"));
    let assignees = oncall::level_users(state, policy, 1);
    let teams = state
        .policies
        .get(policy)
        .map(|p| p.teams.clone())
        .unwrap_or_default();
    let created_at = now();
    let incident = FakeIncident {
        id: id.clone(),
        number,
        title: title.to_owned(),
        status: Status::Triggered,
        urgency: "high".to_owned(),
        escalation_policy: policy.clone(),
        service: service.clone(),
        teams,
        escalation_level: 1,
        assignees,
        acknowledgers: Vec::new(),
        notes: Vec::new(),
        resolution: None,
        created_at,
        reopened_at: None,
        updated_at: created_at,
        incident_key: format!("fake-key-{number}"),
        snoozed_until: None,
    };
    state.incidents.insert(id, incident.clone());
    incident
}

fn user_ref(state: &State, id: &PdUserId) -> Value {
    let name = state.users.get(id).map(|u| u.name.clone());
    json!({
        "id": id.as_str(),
        "type": "user_reference",
        "summary": name,
        "self": format!("{API_BASE}/users/{id}"),
        "html_url": format!("{HTML_BASE}/users/{id}"),
    })
}

fn policy_ref(state: &State, id: &EscalationPolicyId) -> Value {
    let name = state.policies.get(id).map(|p| p.name.clone());
    json!({
        "id": id.as_str(),
        "type": "escalation_policy_reference",
        "summary": name,
        "self": format!("{API_BASE}/escalation_policies/{id}"),
        "html_url": format!("{HTML_BASE}/escalation_policies/{id}"),
    })
}

fn incident_ref(incident: &FakeIncident) -> Value {
    json!({
        "id": incident.id.as_str(),
        "type": "incident_reference",
        "summary": incident.title,
        "self": format!("{API_BASE}/incidents/{}", incident.id),
        "html_url": format!("{HTML_BASE}/incidents/{}", incident.id),
    })
}

fn service_ref(state: &State, id: &ServiceId) -> Value {
    let name = state.services.get(id).map(|s| s.name.clone());
    json!({
        "id": id.as_str(),
        "type": "service_reference",
        "summary": name,
        "self": format!("{API_BASE}/services/{id}"),
        "html_url": format!("{HTML_BASE}/service-directory/{id}"),
    })
}

fn team_ref(state: &State, id: &TeamId) -> Value {
    let name = state.teams.get(id).map(|t| t.name.clone());
    json!({
        "id": id.as_str(),
        "type": "team_reference",
        "summary": name,
        "self": format!("{API_BASE}/teams/{id}"),
        "html_url": format!("{HTML_BASE}/teams/{id}"),
    })
}

fn team_refs(state: &State, ids: &[TeamId]) -> Vec<Value> {
    ids.iter().map(|t| team_ref(state, t)).collect()
}

fn service_json(state: &State, s: &FakeService) -> Value {
    let policy = create::service_policy(state, &s.id)
        .and_then(|id| state.policies.get(&id))
        .or_else(|| {
            state.policies.values().find(|p| {
                state
                    .incidents
                    .values()
                    .any(|i| i.service == s.id && i.escalation_policy == p.id)
            })
        })
        .map(|p| policy_ref(state, &p.id));
    json!({
        "id": s.id.as_str(),
        "type": "service",
        "summary": s.name,
        "name": s.name,
        "description": null,
        "status": create::service_status(state, &s.id),
        "escalation_policy": policy,
        "teams": team_refs(state, &s.teams),
        "self": format!("{API_BASE}/services/{}", s.id),
        "html_url": format!("{HTML_BASE}/service-directory/{}", s.id),
    })
}

fn team_json(t: &FakeTeam) -> Value {
    json!({
        "id": t.id.as_str(),
        "type": "team",
        "summary": t.name,
        "name": t.name,
        "description": null,
        "parent": null,
        "self": format!("{API_BASE}/teams/{}", t.id),
        "html_url": format!("{HTML_BASE}/teams/{}", t.id),
    })
}

/// The REST v2 form of an incident (`incident_number`, `assignments`).
fn rest_incident(state: &State, i: &FakeIncident) -> Value {
    let at = rfc3339(i.created_at);
    json!({
        "id": i.id.as_str(),
        "type": "incident",
        "summary": format!("[#{}] {}", i.number, i.title),
        "self": format!("{API_BASE}/incidents/{}", i.id),
        "html_url": format!("{HTML_BASE}/incidents/{}", i.id),
        "incident_number": i.number,
        "title": i.title,
        "created_at": at,
        "updated_at": rfc3339_seconds(i.updated_at),
        "last_status_change_at": rfc3339_seconds(i.updated_at),
        "status": i.status.as_str(),
        "incident_key": i.incident_key,
        "service": service_ref(state, &i.service),
        "assignments": i.assignees.iter().map(|u| json!({"at": at, "assignee": user_ref(state, u)})).collect::<Vec<_>>(),
        "acknowledgements": i.acknowledgers.iter().map(|u| json!({"at": at, "acknowledger": user_ref(state, u)})).collect::<Vec<_>>(),
        "escalation_policy": policy_ref(state, &i.escalation_policy),
        "teams": team_refs(state, &i.teams),
        "priority": create::priority_ref(state, &i.id),
        "urgency": i.urgency,
        "conference_bridge": null,
        "incident_type": {"name": "incident_default"},
    })
}

/// The v3 webhook form of an incident (`number`, `assignees`).
fn webhook_incident(state: &State, i: &FakeIncident) -> Value {
    json!({
        "id": i.id.as_str(),
        "type": "incident",
        "self": format!("{API_BASE}/incidents/{}", i.id),
        "html_url": format!("{HTML_BASE}/incidents/{}", i.id),
        "number": i.number,
        "status": i.status.as_str(),
        "incident_key": i.incident_key,
        "created_at": rfc3339(i.created_at),
        "reopened_at": i.reopened_at.map(rfc3339),
        "title": i.title,
        "service": service_ref(state, &i.service),
        "assignees": i.assignees.iter().map(|u| user_ref(state, u)).collect::<Vec<_>>(),
        "escalation_policy": policy_ref(state, &i.escalation_policy),
        "teams": team_refs(state, &i.teams),
        "priority": create::priority_ref(state, &i.id),
        "urgency": i.urgency,
        "conference_bridge": null,
        "resolve_reason": null,
        "incident_type": {"name": "incident_default"},
    })
}

/// Builds the deliveries of one event for every matching active subscription, or only for
/// `only` (pings go to their subscription whatever its state).
fn event(
    state: &mut State,
    event_type: &str,
    agent: Option<&PdUserId>,
    data: Value,
    incident: Option<&IncidentId>,
    only: Option<&SubscriptionId>,
) -> Vec<Outgoing> {
    let event_id = EventId::new(state.next_id("01FAKEEVENT"));
    let agent = agent.map(|a| user_ref(state, a));
    let at = now();
    log_entries::record(state, event_type, agent.as_ref(), &data, incident, at);
    let resource_type = event_type
        .split('.')
        .next()
        .unwrap_or("incident")
        .to_owned();
    let body = json!({
        "event": {
            "id": event_id.as_str(),
            "event_type": event_type,
            "resource_type": resource_type,
            "occurred_at": rfc3339(at),
            "agent": agent,
            "client": null,
            "data": data,
        }
    });
    let body = Bytes::from(body.to_string());
    let targets: Vec<FakeSubscription> = state
        .subscriptions
        .values()
        .filter(|s| match only {
            Some(id) => s.id == *id,
            None => s.active && (s.events.is_empty() || s.events.iter().any(|e| e == event_type)),
        })
        .cloned()
        .collect();
    targets
        .into_iter()
        .map(|sub| Outgoing {
            subscription: sub.id.clone(),
            url: sub.url.clone(),
            secret: sub.secret.clone(),
            webhook_id: WebhookId::new(format!(
                "fake-webhook-{}",
                state.next_id("").trim_start_matches('0')
            )),
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            incident_id: incident.cloned(),
            body: body.clone(),
        })
        .collect()
}

impl Shared {
    /// Hands deliveries to their per-(subscription, incident) FIFO worker.
    fn enqueue(self: &Arc<Self>, outgoing: Vec<Outgoing>) {
        for item in outgoing {
            let key = (
                item.subscription.clone(),
                item.incident_id
                    .as_ref()
                    .map(|i| i.as_str().to_owned())
                    .unwrap_or_default(),
            );
            let mut queues = self.queues.lock().expect("delivery queues lock");
            let sender = queues.entry(key).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                // A weak handle: the worker ends once the fake is dropped.
                let shared = Arc::downgrade(self);
                self.runtime.spawn(deliver_in_order(shared, rx));
                tx
            });
            let _ = sender.send(item);
        }
    }
}

async fn deliver_in_order(
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(item) = rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let retry = shared
            .state
            .lock()
            .expect("fake PagerDuty state lock")
            .delivery_retry;
        let signature = signing::sign_pagerduty(
            &signing::PagerDutySecret::new(item.secret.clone()),
            &item.body,
        );
        for attempt in 1..=retry.max_attempts.max(1) {
            let status = post_once(&shared, &item, &signature).await;
            shared
                .deliveries
                .lock()
                .expect("deliveries lock")
                .push(DeliveryAttempt {
                    webhook_id: item.webhook_id.clone(),
                    event_id: item.event_id.clone(),
                    event_type: item.event_type.clone(),
                    incident_id: item.incident_id.clone(),
                    subscription: item.subscription.clone(),
                    attempt,
                    status,
                    body: item.body.clone(),
                    signature: signature.clone(),
                });
            let retryable = match status {
                None => true,
                Some(s) => s == 429 || s >= 500,
            };
            if !retryable {
                break;
            }
            let exp = (attempt - 1).min(16);
            let wait = retry
                .base_delay
                .saturating_mul(1u32 << exp)
                .min(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
        }
    }
}

async fn post_once(shared: &Shared, item: &Outgoing, signature: &str) -> Option<u16> {
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(&item.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "PagerDuty-Webhook/V3.0")
        .header("x-pagerduty-signature", signature)
        .header("x-webhook-id", item.webhook_id.as_str())
        .header("x-webhook-subscription", item.subscription.as_str())
        .body(Full::new(item.body.clone()))
        .ok()?;
    let exchange = async {
        let response = shared.http.request(request).await.ok()?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Some(status)
    };
    // PagerDuty gives receivers 5 seconds.
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

fn error_reply(status: StatusCode, code: u32, message: &str, errors: &[&str]) -> Reply {
    let mut error = json!({"message": message, "code": code});
    if !errors.is_empty() {
        error["errors"] = json!(errors);
    }
    Reply::json(status, &json!({ "error": error }))
}

fn bad_request(code: u32, message: &str, errors: &[&str]) -> Reply {
    error_reply(StatusCode::BAD_REQUEST, code, message, errors)
}

fn not_found() -> Reply {
    error_reply(StatusCode::NOT_FOUND, 2100, "Not Found", &[])
}

fn query_pairs(req: &RecordedRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Parses `limit`/`offset` like PagerDuty: limit ≤ 100 (default 25), offset + limit ≤ 10,000.
fn page_params(pairs: &[(String, String)]) -> Result<(usize, usize), Box<Reply>> {
    let parse = |key: &str, default: usize| -> Result<usize, Box<Reply>> {
        match query_values(pairs, key).first() {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Box::new(bad_request(
                    2001,
                    "Invalid Input Provided",
                    &["Invalid limit or offset"],
                ))
            }),
        }
    };
    let limit = parse("limit", 25)?;
    let offset = parse("offset", 0)?;
    if limit == 0 || limit > 100 {
        return Err(Box::new(bad_request(
            2001,
            "Invalid Input Provided",
            &["Limit must be between 1 and 100"],
        )));
    }
    if offset + limit > 10_000 {
        return Err(Box::new(bad_request(
            2001,
            "Invalid Input Provided",
            &["Offset must be less than 10000"],
        )));
    }
    Ok((limit, offset))
}

fn page<T: Clone>(items: &[T], limit: usize, offset: usize) -> (Vec<T>, Value) {
    let slice: Vec<T> = items.iter().skip(offset).take(limit).cloned().collect();
    let more = offset + slice.len() < items.len();
    (
        slice,
        json!({"limit": limit, "offset": offset, "more": more, "total": null}),
    )
}

fn paged_reply(key: &str, items: Vec<Value>, meta: Value) -> Reply {
    let mut body = meta;
    body[key] = Value::Array(items);
    Reply::json(StatusCode::OK, &body)
}

/// The whole request pipeline: down mode, faults, rate limit, auth, routing.
fn handle(shared: &Arc<Shared>, req: RecordedRequest) -> Reply {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut state = shared.state.lock().expect("fake PagerDuty state lock");
    if state.down {
        return Reply {
            response: http::Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Full::new(Bytes::from_static(b"service unavailable")))
                .expect("static response"),
            delay: None,
        };
    }
    if req.method == Method::POST && segs == ["oauth", "token"] {
        return oauth_token(&mut state, &req);
    }
    let mut delay = None;
    let mut hang_up = false;
    match state.faults.pop_front() {
        Some(Fault::RateLimited { reset: Some(reset) }) => {
            return error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                2020,
                "Rate Limit Exceeded",
                &[],
            )
            .with_header("ratelimit-limit", "960")
            .with_header("ratelimit-remaining", "0")
            .with_header("ratelimit-reset", format_secs(reset));
        }
        Some(Fault::RateLimited { reset: None }) => {
            return Reply {
                response: http::Response::builder()
                    .status(StatusCode::TOO_MANY_REQUESTS)
                    .body(Full::new(Bytes::new()))
                    .expect("static response"),
                delay: None,
            };
        }
        Some(Fault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_reply(status, 2000, "Internal Server Error", &[]);
        }
        Some(Fault::Slow(wait)) => delay = Some(wait),
        Some(Fault::HangUp) => hang_up = true,
        None => {}
    }
    // Rolling one-minute budget.
    let now_instant = Instant::now();
    while state
        .window
        .front()
        .is_some_and(|t| now_instant.duration_since(*t) >= Duration::from_secs(60))
    {
        state.window.pop_front();
    }
    if state.window.len() >= state.rate_per_minute as usize {
        let oldest = *state.window.front().expect("non-empty window");
        let reset = Duration::from_secs(60).saturating_sub(now_instant.duration_since(oldest));
        let limit = state.rate_per_minute.to_string();
        return error_reply(
            StatusCode::TOO_MANY_REQUESTS,
            2020,
            "Rate Limit Exceeded",
            &[],
        )
        .with_header("ratelimit-limit", limit)
        .with_header("ratelimit-remaining", "0")
        .with_header("ratelimit-reset", reset.as_secs().max(1).to_string());
    }
    state.window.push_back(now_instant);
    let caller = match check_auth(&mut state, &req) {
        Ok(caller) => caller,
        Err(reply) => return *reply,
    };
    let (reply, outgoing) = route(&mut state, &req, &segs, &caller);
    drop(state);
    shared.enqueue(outgoing);
    let reply = match delay {
        Some(wait) => reply.delayed(wait),
        None => reply,
    };
    if hang_up { reply.hang_up() } else { reply }
}

/// Decodes `%XX` escapes of one path segment (invalid escapes are kept as they are).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn format_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// The scope PagerDuty requires of an app token for a request (`x-pd-requires-scope`).
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let first = path.split('/').find(|s| !s.is_empty())?;
    let read = *method == Method::GET;
    Some(match (first, read) {
        ("incidents", true) => "incidents.read",
        ("incidents", false) => "incidents.write",
        ("log_entries", _) => "incidents.read",
        ("users", _) => "users.read",
        ("teams", _) => "teams.read",
        ("services", _) => "services.read",
        ("priorities", _) => "priorities.read",
        ("escalation_policies", _) => "escalation_policies.read",
        ("oncalls", _) => "oncalls.read",
        ("schedules", _) => "schedules.read",
        ("webhook_subscriptions", true) => "webhook_subscriptions.read",
        ("webhook_subscriptions", false) => "webhook_subscriptions.write",
        _ => return None,
    })
}

/// Who an authenticated request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// An account-level API key.
    Account,
    /// A user-level API key of this user.
    User(PdUserId),
    /// An OAuth app's bearer token.
    App,
}

fn check_auth(state: &mut State, req: &RecordedRequest) -> Result<Caller, Box<Reply>> {
    let unauthorized = || {
        Box::new(error_reply(
            StatusCode::UNAUTHORIZED,
            2006,
            "Unauthorized",
            &[],
        ))
    };
    let header = req.header("authorization").unwrap_or("");
    if let Some(token) = header.strip_prefix("Token token=") {
        if let Some(user) = state.user_tokens.get(token) {
            return Ok(Caller::User(user.clone()));
        }
        if token.is_empty()
            || (!state.api_tokens.is_empty() && !state.api_tokens.iter().any(|t| t == token))
        {
            return Err(unauthorized());
        }
        return Ok(Caller::Account);
    }
    if let Some(token) = header.strip_prefix("Bearer ") {
        let now = Instant::now();
        let issued = match state.issued.get(token) {
            Some(issued) if issued.expires > now => issued,
            _ => return Err(unauthorized()),
        };
        if state.enforce_scopes
            && let Some(needed) = required_scope(&req.method, &req.path)
            && !issued.scopes.iter().any(|s| s == needed)
        {
            return Err(Box::new(error_reply(
                StatusCode::FORBIDDEN,
                2010,
                "Access Denied",
                &[&format!("The token lacks the {needed} scope")],
            )));
        }
        return Ok(Caller::App);
    }
    Err(unauthorized())
}

fn oauth_token(state: &mut State, req: &RecordedRequest) -> Reply {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(oauth) = &state.oauth else {
        return Reply::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id") == Some(&oauth.client_id)
        && form.get("client_secret") == Some(&oauth.client_secret);
    if !ok {
        return Reply::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client"}),
        );
    }
    let expires_in = oauth.expires_in;
    let scope = form.get("scope").cloned().unwrap_or_default();
    state.token_requests += 1;
    let token = format!("fake-bearer-{}", state.next_id(""));
    state.issued.insert(
        token.clone(),
        Issued {
            expires: Instant::now() + Duration::from_secs(expires_in),
            scopes: scope.split_whitespace().map(str::to_owned).collect(),
        },
    );
    Reply::json(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": scope}),
    )
}

/// Resolves `From` to a known user, or answers like PagerDuty.
fn actor(state: &State, req: &RecordedRequest) -> Result<PdUserId, Box<Reply>> {
    let Some(from) = req.header("from") else {
        return Err(Box::new(bad_request(
            2001,
            "You must specify a user's email address in the \"From\" header to perform this action",
            &[],
        )));
    };
    let Some(email) = Email::parse(from) else {
        return Err(Box::new(bad_request(
            1028,
            "Malformed \"From\" header",
            &[],
        )));
    };
    let user = state
        .users
        .values()
        .find(|u| u.email == email)
        .ok_or_else(|| Box::new(bad_request(1008, "Requester User Not Found", &[])))?;
    if READ_ONLY_ROLES.contains(&user.role.as_str()) {
        return Err(Box::new(error_reply(
            StatusCode::FORBIDDEN,
            2010,
            "Access Denied",
            &[&format!(
                "The user in the From header ({}) has the {} role and may not change incidents",
                user.email, user.role
            )],
        )));
    }
    Ok(user.id.clone())
}

fn find_incident<'a>(state: &'a State, key: &str) -> Option<&'a FakeIncident> {
    state.incidents.get(&IncidentId::new(key)).or_else(|| {
        key.parse::<u64>()
            .ok()
            .and_then(|n| state.incidents.values().find(|i| i.number == n))
    })
}

fn route(
    state: &mut State,
    req: &RecordedRequest,
    segs: &[&str],
    caller: &Caller,
) -> (Reply, Vec<Outgoing>) {
    let none = Vec::new;
    match (req.method.clone(), segs) {
        (Method::GET, ["users", "me"]) => match caller {
            Caller::User(id) => match state.users.get(id) {
                Some(u) => (
                    Reply::json(StatusCode::OK, &json!({"user": user_json(state, u)})),
                    none(),
                ),
                None => (not_found(), none()),
            },
            Caller::Account | Caller::App => (
                bad_request(
                    2001,
                    "Invalid Input Provided",
                    &[
                        "Because this request was made using an account-level access token, we \
                       were unable to determine the user's identity. Please use a user-level \
                       token.",
                    ],
                ),
                none(),
            ),
        },
        (Method::GET, ["services", id]) => match state.services.get(&ServiceId::new(*id)) {
            Some(s) => (
                Reply::json(StatusCode::OK, &json!({"service": service_json(state, s)})),
                none(),
            ),
            None => (not_found(), none()),
        },
        (Method::GET, ["teams", id]) => match state.teams.get(&TeamId::new(*id)) {
            Some(t) => (
                Reply::json(StatusCode::OK, &json!({"team": team_json(t)})),
                none(),
            ),
            None => (not_found(), none()),
        },
        (Method::GET, ["incidents"]) => (list_incidents(state, req), none()),
        (Method::GET, ["incidents", id]) => match find_incident(state, id) {
            Some(i) => (
                Reply::json(
                    StatusCode::OK,
                    &json!({"incident": rest_incident(state, i)}),
                ),
                none(),
            ),
            None => (not_found(), none()),
        },
        (Method::PUT, ["incidents", id]) => update_incident(state, req, id),
        (Method::POST, ["incidents"]) => create::create(state, req),
        (Method::GET, ["priorities"]) => (create::list_priorities(state, req), none()),
        (Method::GET, ["services"]) => (create::list_services(state, req), none()),
        (Method::GET, ["incidents", id, "notes"]) => match find_incident(state, id) {
            Some(i) => {
                let notes: Vec<Value> = i.notes.iter().map(|n| note_json(state, n)).collect();
                (
                    Reply::json(StatusCode::OK, &json!({"notes": notes})),
                    none(),
                )
            }
            None => (not_found(), none()),
        },
        (Method::POST, ["incidents", id, "notes"]) => add_note(state, req, id),
        (Method::POST, ["incidents", id, "snooze"]) => snooze::snooze(state, req, id),
        (Method::POST, ["incidents", id, "responder_requests"]) => {
            responders::request(state, req, id)
        }
        (Method::GET, ["users", id]) => match state.users.get(&PdUserId::new(*id)) {
            Some(u) => (
                Reply::json(StatusCode::OK, &json!({"user": user_json(state, u)})),
                none(),
            ),
            None => (not_found(), none()),
        },
        (Method::GET, ["users"]) => (list_users(state, req), none()),
        (Method::GET, ["escalation_policies", id]) => {
            match state.policies.get(&EscalationPolicyId::new(*id)) {
                Some(p) => (
                    Reply::json(
                        StatusCode::OK,
                        &json!({"escalation_policy": policy_json(state, p)}),
                    ),
                    none(),
                ),
                None => (not_found(), none()),
            }
        }
        (Method::GET, ["log_entries"]) => (log_entries::list(state, req), none()),
        (Method::GET, ["oncalls"]) => (oncall::list_oncalls(state, req), none()),
        (Method::GET, ["schedules"]) => (oncall::list_schedules(state, req), none()),
        (Method::GET, ["schedules", id, "overrides"]) => {
            (oncall::list_overrides(state, req, id), none())
        }
        (Method::POST, ["webhook_subscriptions"]) => (create_subscription(state, req), none()),
        (Method::GET, ["webhook_subscriptions"]) => {
            let pairs = query_pairs(req);
            match page_params(&pairs) {
                Ok((limit, offset)) => {
                    let all: Vec<Value> = state
                        .subscriptions
                        .values()
                        .map(|s| subscription_json(s, false))
                        .collect();
                    let (items, meta) = page(&all, limit, offset);
                    (paged_reply("webhook_subscriptions", items, meta), none())
                }
                Err(reply) => (*reply, none()),
            }
        }
        (Method::POST, ["webhook_subscriptions", id, "enable"]) => {
            match state.subscriptions.get_mut(&SubscriptionId::new(*id)) {
                Some(sub) => {
                    sub.active = true;
                    (
                        Reply::json(
                            StatusCode::OK,
                            &json!({"webhook_subscription": subscription_json(sub, false)}),
                        ),
                        none(),
                    )
                }
                None => (not_found(), none()),
            }
        }
        (Method::POST, ["webhook_subscriptions", id, "ping"]) => {
            let id = SubscriptionId::new(*id);
            if !state.subscriptions.contains_key(&id) {
                return (not_found(), none());
            }
            let outgoing = event(
                state,
                "pagey.ping",
                None,
                json!({"message": "Hello from your friend Pagey!", "type": "ping"}),
                None,
                Some(&id),
            );
            (Reply::json(StatusCode::ACCEPTED, &json!({})), outgoing)
        }
        _ => (not_found(), none()),
    }
}

fn list_incidents(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let statuses = query_values(&pairs, "statuses[]");
    let mut all: Vec<&FakeIncident> = state
        .incidents
        .values()
        .filter(|i| statuses.is_empty() || statuses.iter().any(|s| s == i.status.as_str()))
        .filter(|i| create::list_filter(&pairs, i))
        .collect();
    all.sort_by_key(|i| i.number);
    let (items, meta) = page(&all, limit, offset);
    let items = items.into_iter().map(|i| rest_incident(state, i)).collect();
    paged_reply("incidents", items, meta)
}

fn update_incident(state: &mut State, req: &RecordedRequest, key: &str) -> (Reply, Vec<Outgoing>) {
    let actor = match actor(state, req) {
        Ok(a) => a,
        Err(reply) => return (*reply, Vec::new()),
    };
    let Some(mut incident) = find_incident(state, key).cloned() else {
        return (not_found(), Vec::new());
    };
    let body = req.json();
    let Some(changes) = body.get("incident").filter(|c| c.is_object()) else {
        return (
            bad_request(2001, "Invalid Input Provided", &["incident is required"]),
            Vec::new(),
        );
    };
    let mut events: Vec<&'static str> = Vec::new();
    if let Some(status) = changes.get("status").and_then(Value::as_str) {
        match (status, incident.status) {
            ("acknowledged", Status::Acknowledged) => {
                return (
                    bad_request(1002, "Incident Already Acknowledged", &[]),
                    Vec::new(),
                );
            }
            ("resolved", Status::Resolved) => {
                return (
                    bad_request(1001, "Incident Already Resolved", &[]),
                    Vec::new(),
                );
            }
            ("acknowledged", previous) => {
                if previous == Status::Resolved {
                    // Since 2025-09 acknowledging a resolved incident reopens it.
                    incident.reopened_at = Some(now());
                    events.push("incident.reopened");
                }
                incident.status = Status::Acknowledged;
                incident.acknowledgers = vec![actor.clone()];
                incident.assignees = vec![actor.clone()];
                events.push("incident.acknowledged");
            }
            ("resolved", _) => {
                incident.status = Status::Resolved;
                incident.resolution = changes
                    .get("resolution")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                incident.assignees.clear();
                incident.acknowledgers.clear();
                events.push("incident.resolved");
            }
            (other, _) => {
                let detail = format!("Status {other:?} is not valid");
                return (
                    bad_request(1003, "Invalid Status Provided", &[detail.as_str()]),
                    Vec::new(),
                );
            }
        }
    }
    if let Some(level) = changes.get("escalation_level") {
        if incident.status == Status::Resolved {
            return (
                bad_request(1001, "Incident Already Resolved", &[]),
                Vec::new(),
            );
        }
        let policy = state.policies.get(&incident.escalation_policy);
        let levels = policy.map_or(0, |p| p.levels.len()) as u64;
        // PagerDuty treats 0 like 1.
        let level = level.as_u64().map(|l| l.max(1));
        match level {
            Some(l) if l <= levels => {
                let users = policy
                    .and_then(|p| p.levels.get(l as usize - 1))
                    .cloned()
                    .unwrap_or_default();
                if users.is_empty() {
                    return (
                        bad_request(1015, "Escalation Policy Has No User On Call", &[]),
                        Vec::new(),
                    );
                }
                incident.escalation_level = l as u32;
                incident.assignees = users;
                incident.acknowledgers.clear();
                incident.status = Status::Triggered;
                events.push("incident.escalated");
            }
            _ => return (bad_request(1006, "Cannot Escalate", &[]), Vec::new()),
        }
    }
    if let Some(assignments) = changes.get("assignments") {
        if incident.status == Status::Resolved {
            return (
                bad_request(1001, "Incident Already Resolved", &[]),
                Vec::new(),
            );
        }
        let ids: Option<Vec<PdUserId>> = assignments.as_array().map(|list| {
            list.iter()
                .filter_map(|a| a.pointer("/assignee/id").and_then(Value::as_str))
                .map(PdUserId::new)
                .collect()
        });
        match ids {
            Some(ids) if !ids.is_empty() => {
                if ids.iter().any(|id| !state.users.contains_key(id)) {
                    return (
                        bad_request(1007, "Assigned To User Not Found", &[]),
                        Vec::new(),
                    );
                }
                incident.assignees = ids;
                incident.acknowledgers.clear();
                incident.status = Status::Triggered;
                events.push("incident.reassigned");
            }
            _ => {
                return (
                    bad_request(2001, "Invalid Input Provided", &["assignments is invalid"]),
                    Vec::new(),
                );
            }
        }
    }
    let urgency_changed = match more::apply_urgency(&mut incident, changes) {
        Ok(changed) => changed,
        Err(reply) => return (*reply, Vec::new()),
    };
    match create::apply_priority(state, &incident.id, incident.status, changes) {
        Ok(true) => events.push("incident.priority_updated"),
        Ok(false) => {}
        Err(reply) => return (*reply, Vec::new()),
    }
    if events.is_empty() && !urgency_changed {
        return (
            bad_request(2001, "Invalid Input Provided", &["no change requested"]),
            Vec::new(),
        );
    }
    incident.updated_at = now();
    state
        .incidents
        .insert(incident.id.clone(), incident.clone());
    let mut outgoing = Vec::new();
    for event_type in events {
        let data = webhook_incident(state, &incident);
        outgoing.extend(event(
            state,
            event_type,
            Some(&actor),
            data,
            Some(&incident.id),
            None,
        ));
    }
    (
        Reply::json(
            StatusCode::OK,
            &json!({"incident": rest_incident(state, &incident)}),
        ),
        outgoing,
    )
}

fn note_json(state: &State, note: &FakeNote) -> Value {
    json!({
        "id": note.id.as_str(),
        "user": user_ref(state, &note.user),
        "channel": {"summary": "The PagerDuty website or APIs"},
        "content": note.content,
        "created_at": rfc3339(note.created_at),
    })
}

fn add_note(state: &mut State, req: &RecordedRequest, key: &str) -> (Reply, Vec<Outgoing>) {
    let actor = match actor(state, req) {
        Ok(a) => a,
        Err(reply) => return (*reply, Vec::new()),
    };
    let Some(incident_id) = find_incident(state, key).map(|i| i.id.clone()) else {
        return (not_found(), Vec::new());
    };
    let body = req.json();
    let Some(content) = body.pointer("/note/content").and_then(Value::as_str) else {
        return (
            bad_request(
                2001,
                "Invalid Input Provided",
                &["note.content is required"],
            ),
            Vec::new(),
        );
    };
    let note = FakeNote {
        id: NoteId::new(state.next_id("PN")),
        user: actor.clone(),
        content: content.to_owned(),
        created_at: now(),
    };
    let incident = state
        .incidents
        .get_mut(&incident_id)
        .expect("incident looked up above");
    incident.notes.push(note.clone());
    let incident = incident.clone();
    let data = json!({
        "incident": incident_ref(&incident),
        "id": note.id.as_str(),
        "content": note.content,
        "trimmed": false,
        "type": "incident_note",
    });
    let outgoing = event(
        state,
        "incident.annotated",
        Some(&actor),
        data,
        Some(&incident.id),
        None,
    );
    (
        Reply::json(StatusCode::OK, &json!({"note": note_json(state, &note)})),
        outgoing,
    )
}

fn user_json(state: &State, u: &FakeUser) -> Value {
    json!({
        "id": u.id.as_str(),
        "type": "user",
        "summary": u.name,
        "name": u.name,
        "email": u.email.as_str(),
        "time_zone": "Etc/UTC",
        "role": u.role,
        "teams": team_refs(state, &u.teams),
        "self": format!("{API_BASE}/users/{}", u.id),
        "html_url": format!("{HTML_BASE}/users/{}", u.id),
    })
}

fn list_users(state: &State, req: &RecordedRequest) -> Reply {
    let pairs = query_pairs(req);
    let (limit, offset) = match page_params(&pairs) {
        Ok(p) => p,
        Err(reply) => return *reply,
    };
    let query = query_values(&pairs, "query")
        .first()
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    // Like PagerDuty's search: substring of the name or the email, case-insensitive.
    let all: Vec<Value> = state
        .users
        .values()
        .filter(|u| {
            query.is_empty()
                || u.name.to_lowercase().contains(&query)
                || u.email.normalized().contains(&query)
        })
        .map(|u| user_json(state, u))
        .collect();
    let (items, meta) = page(&all, limit, offset);
    paged_reply("users", items, meta)
}

fn policy_json(state: &State, p: &FakeEscalationPolicy) -> Value {
    let mut services: Vec<&ServiceId> = state
        .incidents
        .values()
        .filter(|i| i.escalation_policy == p.id)
        .map(|i| &i.service)
        .collect();
    services.sort();
    services.dedup();
    let services: Vec<Value> = services
        .into_iter()
        .map(|s| service_ref(state, s))
        .collect();
    let rules: Vec<Value> = p
        .levels
        .iter()
        .enumerate()
        .map(|(n, users)| {
            json!({
                "id": format!("PRULE{:02}", n + 1),
                "escalation_delay_in_minutes": 30,
                "targets": users.iter().map(|u| user_ref(state, u))
                    .chain(oncall::schedule_targets(state, &p.id, n as u32 + 1))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": p.id.as_str(),
        "type": "escalation_policy",
        "summary": p.name,
        "name": p.name,
        "escalation_rules": rules,
        "num_loops": p.num_loops,
        "teams": team_refs(state, &p.teams),
        "services": services,
        "self": format!("{API_BASE}/escalation_policies/{}", p.id),
        "html_url": format!("{HTML_BASE}/escalation_policies/{}", p.id),
    })
}

fn subscription_json(s: &FakeSubscription, with_secret: bool) -> Value {
    json!({
        "id": s.id.as_str(),
        "type": "webhook_subscription",
        "active": s.active,
        "description": s.description,
        "events": s.events,
        "filter": s.filter,
        "delivery_method": {
            "id": format!("D{}", s.id),
            "type": "http_delivery_method",
            "url": s.url,
            "secret": if with_secret { Value::String(s.secret.clone()) } else { Value::Null },
            "temporarily_disabled": !s.active,
            "custom_headers": [],
        },
    })
}

fn create_subscription(state: &mut State, req: &RecordedRequest) -> Reply {
    let body = req.json();
    let sub = body.get("webhook_subscription");
    let url = sub
        .and_then(|s| s.pointer("/delivery_method/url"))
        .and_then(Value::as_str);
    let events: Option<Vec<String>> = sub.and_then(|s| s.get("events")).and_then(|e| {
        e.as_array().map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    });
    let filter = sub.and_then(|s| s.get("filter")).cloned();
    let (Some(url), Some(events), Some(filter)) = (url, events, filter) else {
        return bad_request(
            2001,
            "Invalid Input Provided",
            &["delivery_method.url, events and filter are required"],
        );
    };
    if events.is_empty() {
        return bad_request(
            2001,
            "Invalid Input Provided",
            &["events must not be empty"],
        );
    }
    let id = SubscriptionId::new(state.next_id("PSUB"));
    let secret = format!("fake-secret-{}", state.next_id(""));
    let created = FakeSubscription {
        id: id.clone(),
        url: url.to_owned(),
        secret,
        events,
        active: true,
        description: sub
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        filter,
    };
    let json = subscription_json(&created, true);
    state.subscriptions.insert(id, created);
    Reply::json(StatusCode::OK, &json!({"webhook_subscription": json}))
}
