//! The PagerDuty REST v2 client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ids::{Email, EscalationPolicyId, IncidentId, PdUserId, ServiceId, SubscriptionId, TeamId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tracing::Instrument;
use url::Url;

use crate::Error;
use crate::auth::{Auth, CachedToken, TokenResponse};
use crate::ratelimit::TokenBucket;
use crate::rest::{
    CreateNoteRequest, CreateWebhookSubscriptionRequest, ErrorBody, EscalationPolicy,
    EscalationPolicyEnvelope, Incident, IncidentEnvelope, IncidentList, IncidentUpdate,
    IncidentUpdateRequest, NewNote, NewWebhookSubscription, Note, NoteEnvelope, NoteList, OnCall,
    OnCallList, Pagination, Service, ServiceEnvelope, Team, TeamEnvelope, User, UserEnvelope,
    UserList, WebhookSubscription, WebhookSubscriptionEnvelope, WebhookSubscriptionList,
};
use crate::retry::{self, RetryDecision, RetryPolicy};

mod create;
mod log_entries;
mod oncall;
mod responders;

pub use create::{Created, DEDUP_KEY_CONFLICT};
pub use log_entries::LogEntryPage;
pub use responders::ResponderTarget;

/// The PagerDuty REST API host.
pub const PAGERDUTY_API_URL: &str = "https://api.pagerduty.com";
/// The `Accept` header that pins REST API version 2.
pub const ACCEPT_V2: &str = "application/vnd.pagerduty+json;version=2";
/// The largest page size PagerDuty accepts.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Classic pagination refuses `offset + limit` above this.
pub const MAX_OFFSET: u32 = 10_000;

/// Client settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API base URL (`https://api.pagerduty.com`; tests point it at a loopback fake).
    pub base_url: Url,
    /// The credentials.
    pub auth: Auth,
    /// The deadline of one attempt, from sending the request to reading the whole body.
    pub timeout: Duration,
    /// The local request budget per minute (PagerDuty allows 960 per token).
    pub rate_per_minute: u32,
    /// The largest burst the local limiter lets through at once.
    pub burst: u32,
    /// The retry limits.
    pub retry: RetryPolicy,
    /// Told about each failed attempt before it is retried (for metrics).
    pub on_retry: Option<retry::RetryObserver>,
}

impl Config {
    /// Defaults for the real PagerDuty: production URL, 10 s timeout, 960 requests/minute.
    pub fn new(auth: Auth) -> Self {
        Self {
            base_url: Url::parse(PAGERDUTY_API_URL).expect("constant URL parses"),
            auth,
            timeout: Duration::from_secs(10),
            rate_per_minute: crate::ratelimit::PAGERDUTY_PER_MINUTE,
            burst: 60,
            retry: RetryPolicy::default(),
            on_retry: None,
        }
    }
}

/// The result of an incident mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The incident after the change; `None` when PagerDuty answered "already in that state"
    /// (no incident body comes with that answer).
    pub incident: Option<Incident>,
    /// True when the incident was already in the requested state (codes 1001/1002).
    pub already: bool,
}

/// A list that may have been cut at PagerDuty's offset limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The items, in PagerDuty's order.
    pub items: Vec<T>,
    /// True when more items exist past offset 10,000 and were not fetched.
    pub truncated: bool,
    /// The first page's `Date` header: PagerDuty's clock when it answered, so every item
    /// reflects at least every change made before that second.
    pub served_at: Option<OffsetDateTime>,
}

/// A successful answer: its status, body and `Date` header.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Bytes,
    date: Option<OffsetDateTime>,
}

/// The `Date` header (an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`), if valid.
fn http_date(headers: &HeaderMap) -> Option<OffsetDateTime> {
    let text = headers.get(header::DATE)?.to_str().ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Who PagerDuty says the token is (`GET /users/me`), which tells the token's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentUser {
    /// A user-level API key or a user's OAuth token: PagerDuty records every action as this
    /// user, whatever `From` says.
    User(Box<User>),
    /// PagerDuty cannot name a user for the token (it answered 400): an account-level API key
    /// or an app's scoped OAuth token, so `From` decides who each action is recorded for.
    NotAUser,
}

/// An `include[]` value for `GET /incidents/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentInclude {
    /// `acknowledgers`.
    Acknowledgers,
    /// `agents`.
    Agents,
    /// `assignees`.
    Assignees,
    /// `conference_bridge`.
    ConferenceBridge,
    /// `escalation_policies`.
    EscalationPolicies,
    /// `first_trigger_log_entries`.
    FirstTriggerLogEntries,
    /// `priorities`.
    Priorities,
    /// `services`.
    Services,
    /// `teams`.
    Teams,
    /// `users`.
    Users,
}

impl IncidentInclude {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledgers => "acknowledgers",
            Self::Agents => "agents",
            Self::Assignees => "assignees",
            Self::ConferenceBridge => "conference_bridge",
            Self::EscalationPolicies => "escalation_policies",
            Self::FirstTriggerLogEntries => "first_trigger_log_entries",
            Self::Priorities => "priorities",
            Self::Services => "services",
            Self::Teams => "teams",
            Self::Users => "users",
        }
    }
}

type Https = HttpsConnector<HttpConnector>;

/// A PagerDuty REST v2 client. Cheap to clone; clones share the connection pool, the rate
/// limiter and the OAuth token.
#[derive(Debug, Clone)]
pub struct PdClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Client<Https, Full<Bytes>>,
    config: Config,
    bucket: Arc<Mutex<TokenBucket>>,
    token: Arc<tokio::sync::Mutex<Option<CachedToken>>>,
    /// The account's priorities, most severe first, read once (`PdClient::priorities`).
    priorities: Arc<tokio::sync::Mutex<Option<Vec<crate::rest::Priority>>>>,
}

/// One logical call, possibly sent several times.
struct Call<'a> {
    method: Method,
    template: &'static str,
    segments: Vec<&'a str>,
    query: Vec<(&'static str, String)>,
    body: Option<Bytes>,
    from: Option<&'a Email>,
    idempotent: bool,
}

impl<'a> Call<'a> {
    fn new(method: Method, template: &'static str, segments: Vec<&'a str>) -> Self {
        let idempotent = method != Method::POST;
        Self {
            method,
            template,
            segments,
            query: Vec::new(),
            body: None,
            from: None,
            idempotent,
        }
    }

    fn json<T: Serialize>(mut self, body: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidRequest(format!("cannot encode body: {e}")))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    fn from(mut self, from: &'a Email) -> Self {
        self.from = Some(from);
        self
    }
}

impl PdClient {
    /// Builds a client. TLS uses rustls with the ring provider (installed on this client only,
    /// not process-wide) and the bundled webpki roots; plain `http://` works for loopback.
    pub fn new(config: Config) -> Result<Self, Error> {
        if config.base_url.cannot_be_a_base() {
            return Err(Error::Config("base URL cannot be a base".into()));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_all_versions()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        let bucket = TokenBucket::new(config.rate_per_minute, config.burst, monotonic_now());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                bucket: Arc::new(Mutex::new(bucket)),
                token: Arc::new(tokio::sync::Mutex::new(None)),
                priorities: Arc::new(tokio::sync::Mutex::new(None)),
            }),
        })
    }

    /// A client with another per-attempt timeout that shares this one's connection pool, rate
    /// limiter and OAuth token (for calls on a tight budget, such as inside a Slack click).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        let mut config = self.inner.config.clone();
        config.timeout = timeout;
        Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                config,
                bucket: Arc::clone(&self.inner.bucket),
                token: Arc::clone(&self.inner.token),
                priorities: Arc::clone(&self.inner.priorities),
            }),
        }
    }

    /// `GET /incidents/{id}` with optional `include[]` values.
    pub async fn get_incident(
        &self,
        id: &IncidentId,
        include: &[IncidentInclude],
    ) -> Result<Incident, Error> {
        let mut call = Call::new(
            Method::GET,
            "/incidents/{id}",
            vec!["incidents", id.as_str()],
        );
        call.query = include
            .iter()
            .map(|i| ("include[]", i.as_str().to_owned()))
            .collect();
        let (env, date): (IncidentEnvelope, _) = self.dated_json_call(call).await?;
        let mut incident = env.incident;
        incident.served_at = date;
        Ok(incident)
    }

    /// Acknowledges as `from`. "Already acknowledged" (1002) is success with `already`.
    ///
    /// PagerDuty reopens a resolved incident that is acknowledged; check the status first.
    pub async fn acknowledge(&self, id: &IncidentId, from: &Email) -> Result<Updated, Error> {
        self.update(id, from, IncidentUpdate::acknowledge()).await
    }

    /// Resolves as `from`, with an optional resolution text. "Already resolved" (1001) is
    /// success with `already`.
    pub async fn resolve(
        &self,
        id: &IncidentId,
        from: &Email,
        resolution: Option<&str>,
    ) -> Result<Updated, Error> {
        self.update(
            id,
            from,
            IncidentUpdate::resolve(resolution.map(str::to_owned)),
        )
        .await
    }

    /// Escalates to the 1-based `level` as `from`.
    pub async fn escalate(
        &self,
        id: &IncidentId,
        from: &Email,
        level: u32,
    ) -> Result<Updated, Error> {
        if level == 0 {
            return Err(Error::InvalidRequest("escalation levels start at 1".into()));
        }
        self.update(id, from, IncidentUpdate::escalate(level)).await
    }

    /// Changes the urgency to `urgency` as `from`.
    pub async fn change_urgency(
        &self,
        id: &IncidentId,
        from: &Email,
        urgency: crate::rest::Urgency,
    ) -> Result<Updated, Error> {
        self.update(id, from, IncidentUpdate::urgency(urgency))
            .await
    }

    /// `POST /incidents/{id}/snooze` as `from`: PagerDuty suspends the acknowledgement
    /// timeout for `duration` (1 s to 7 days) and triggers the incident again afterwards. It
    /// answers 400 for an incident that is not acknowledged.
    pub async fn snooze(
        &self,
        id: &IncidentId,
        from: &Email,
        duration: std::time::Duration,
    ) -> Result<Updated, Error> {
        let secs = duration.as_secs();
        if !(1..=604_800).contains(&secs) {
            return Err(Error::InvalidRequest(
                "a snooze lasts 1 second to 7 days".into(),
            ));
        }
        let call = Call::new(
            Method::POST,
            "/incidents/{id}/snooze",
            vec!["incidents", id.as_str(), "snooze"],
        )
        .json(&serde_json::json!({ "duration": secs }))?
        .from(from);
        let (env, date) = self.dated_json_call::<IncidentEnvelope>(call).await?;
        Ok(Updated {
            incident: Some(Incident {
                served_at: date,
                ..env.incident
            }),
            already: false,
        })
    }

    /// Changes the priority to `priority` (an id of [`PdClient::list_priorities`]) as `from`.
    pub async fn change_priority(
        &self,
        id: &IncidentId,
        from: &Email,
        priority: ids::PriorityId,
    ) -> Result<Updated, Error> {
        self.update(id, from, IncidentUpdate::priority(priority))
            .await
    }

    /// Reassigns to `users` as `from`.
    pub async fn reassign(
        &self,
        id: &IncidentId,
        from: &Email,
        users: &[PdUserId],
    ) -> Result<Updated, Error> {
        if users.is_empty() {
            return Err(Error::InvalidRequest(
                "reassign needs at least one user".into(),
            ));
        }
        self.update(id, from, IncidentUpdate::reassign(users)).await
    }

    async fn update(
        &self,
        id: &IncidentId,
        from: &Email,
        update: IncidentUpdate,
    ) -> Result<Updated, Error> {
        let already_codes: &[u32] = match update.status {
            Some(crate::rest::IncidentStatus::Acknowledged) => &[1002],
            Some(crate::rest::IncidentStatus::Resolved) => &[1001],
            _ => &[],
        };
        let call = Call::new(
            Method::PUT,
            "/incidents/{id}",
            vec!["incidents", id.as_str()],
        )
        .json(&IncidentUpdateRequest { incident: update })?
        .from(from);
        match self.dated_json_call::<IncidentEnvelope>(call).await {
            Ok((env, date)) => Ok(Updated {
                incident: Some(Incident {
                    served_at: date,
                    ..env.incident
                }),
                already: false,
            }),
            Err(err) if is_already(&err, already_codes) => Ok(Updated {
                incident: None,
                already: true,
            }),
            Err(err) => Err(err),
        }
    }

    /// `POST /incidents/{id}/notes` as `from`. Not retried after a timeout, since a retry
    /// could add the note twice.
    pub async fn add_note(
        &self,
        id: &IncidentId,
        from: &Email,
        content: &str,
    ) -> Result<Note, Error> {
        let call = Call::new(
            Method::POST,
            "/incidents/{id}/notes",
            vec!["incidents", id.as_str(), "notes"],
        )
        .json(&CreateNoteRequest {
            note: NewNote {
                content: content.to_owned(),
            },
        })?
        .from(from);
        let env: NoteEnvelope = self.json_call(call).await?;
        Ok(env.note)
    }

    /// `GET /incidents/{id}/notes`.
    pub async fn list_notes(&self, id: &IncidentId) -> Result<Vec<Note>, Error> {
        let call = Call::new(
            Method::GET,
            "/incidents/{id}/notes",
            vec!["incidents", id.as_str(), "notes"],
        );
        let list: NoteList = self.json_call(call).await?;
        Ok(list.notes)
    }

    /// `GET /users/{id}`.
    pub async fn get_user(&self, id: &PdUserId) -> Result<User, Error> {
        let call = Call::new(Method::GET, "/users/{id}", vec!["users", id.as_str()]);
        let env: UserEnvelope = self.json_call(call).await?;
        Ok(env.user)
    }

    /// Finds the user whose email equals `email` exactly (case-insensitively) with
    /// `GET /users?query=<email>`, filtering client-side because `query` also matches names.
    pub async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, Error> {
        let query = vec![("query", email.as_str().to_owned())];
        let listing = self
            .paginate(
                "/users",
                vec!["users"],
                query,
                MAX_PAGE_SIZE,
                |l: UserList| (l.users, l.page),
                |u: &User| u.email == *email,
            )
            .await?;
        Ok(listing.items.into_iter().find(|u| u.email == *email))
    }

    /// `GET /users/me`. Account-level keys and app tokens cannot read it: PagerDuty answers
    /// 400, which becomes [`CurrentUser::NotAUser`]; every other failure is an error.
    pub async fn current_user(&self) -> Result<CurrentUser, Error> {
        let call = Call::new(Method::GET, "/users/me", vec!["users", "me"]);
        match self.json_call::<UserEnvelope>(call).await {
            Ok(env) => Ok(CurrentUser::User(Box::new(env.user))),
            Err(Error::Api { status: 400, .. }) => Ok(CurrentUser::NotAUser),
            Err(err) => Err(err),
        }
    }

    /// `GET /services/{id}`, with the service's teams.
    pub async fn get_service(&self, id: &ServiceId) -> Result<Service, Error> {
        let call = Call::new(Method::GET, "/services/{id}", vec!["services", id.as_str()]);
        let env: ServiceEnvelope = self.json_call(call).await?;
        Ok(env.service)
    }

    /// `GET /teams/{id}`.
    pub async fn get_team(&self, id: &TeamId) -> Result<Team, Error> {
        let call = Call::new(Method::GET, "/teams/{id}", vec!["teams", id.as_str()]);
        let env: TeamEnvelope = self.json_call(call).await?;
        Ok(env.team)
    }

    /// `GET /escalation_policies/{id}`.
    pub async fn get_escalation_policy(
        &self,
        id: &EscalationPolicyId,
    ) -> Result<EscalationPolicy, Error> {
        let call = Call::new(
            Method::GET,
            "/escalation_policies/{id}",
            vec!["escalation_policies", id.as_str()],
        );
        let env: EscalationPolicyEnvelope = self.json_call(call).await?;
        Ok(env.escalation_policy)
    }

    /// `GET /oncalls?escalation_policy_ids[]=<id>`: who is on call at each level now.
    pub async fn list_oncalls(&self, policy: &EscalationPolicyId) -> Result<Vec<OnCall>, Error> {
        let query = vec![("escalation_policy_ids[]", policy.as_str().to_owned())];
        let listing = self
            .paginate(
                "/oncalls",
                vec!["oncalls"],
                query,
                MAX_PAGE_SIZE,
                |l: OnCallList| (l.oncalls, l.page),
                |_| false,
            )
            .await?;
        Ok(listing.items)
    }

    /// `GET /incidents?statuses[]=triggered&statuses[]=acknowledged`, every page of
    /// `page_size` (1 to 100), stopping before `offset + limit` passes 10,000.
    pub async fn list_open_incidents(&self, page_size: u32) -> Result<Listing<Incident>, Error> {
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::InvalidRequest(format!(
                "page size {page_size} is outside 1..=100"
            )));
        }
        let query = vec![
            ("statuses[]", "triggered".to_owned()),
            ("statuses[]", "acknowledged".to_owned()),
        ];
        self.paginate(
            "/incidents",
            vec!["incidents"],
            query,
            page_size,
            |l: IncidentList| (l.incidents, l.page),
            |_| false,
        )
        .await
        .map(|mut listing| {
            for incident in &mut listing.items {
                incident.served_at = listing.served_at;
            }
            listing
        })
    }

    /// `POST /webhook_subscriptions`. The answer holds the signing secret, once.
    pub async fn create_webhook_subscription(
        &self,
        subscription: NewWebhookSubscription,
    ) -> Result<WebhookSubscription, Error> {
        let call = Call::new(
            Method::POST,
            "/webhook_subscriptions",
            vec!["webhook_subscriptions"],
        )
        .json(&CreateWebhookSubscriptionRequest {
            webhook_subscription: subscription,
        })?;
        let env: WebhookSubscriptionEnvelope = self.json_call(call).await?;
        Ok(env.webhook_subscription)
    }

    /// `GET /webhook_subscriptions`, every page.
    pub async fn list_webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>, Error> {
        let listing = self
            .paginate(
                "/webhook_subscriptions",
                vec!["webhook_subscriptions"],
                Vec::new(),
                MAX_PAGE_SIZE,
                |l: WebhookSubscriptionList| (l.webhook_subscriptions, l.page),
                |_| false,
            )
            .await?;
        Ok(listing.items)
    }

    /// `POST /webhook_subscriptions/{id}/enable`: re-enables a temporarily disabled one.
    pub async fn enable_webhook_subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<WebhookSubscription, Error> {
        let mut call = Call::new(
            Method::POST,
            "/webhook_subscriptions/{id}/enable",
            vec!["webhook_subscriptions", id.as_str(), "enable"],
        );
        call.idempotent = true;
        let env: WebhookSubscriptionEnvelope = self.json_call(call).await?;
        Ok(env.webhook_subscription)
    }

    /// `POST /webhook_subscriptions/{id}/ping`: PagerDuty then delivers a `pagey.ping`.
    pub async fn ping_webhook_subscription(&self, id: &SubscriptionId) -> Result<(), Error> {
        let call = Call::new(
            Method::POST,
            "/webhook_subscriptions/{id}/ping",
            vec!["webhook_subscriptions", id.as_str(), "ping"],
        );
        self.execute(&call).await.map(|_| ())
    }

    async fn paginate<T, L: DeserializeOwned>(
        &self,
        template: &'static str,
        segments: Vec<&str>,
        query: Vec<(&'static str, String)>,
        limit: u32,
        split: impl Fn(L) -> (Vec<T>, Pagination),
        stop_at: impl Fn(&T) -> bool,
    ) -> Result<Listing<T>, Error> {
        let mut items = Vec::new();
        let mut offset = 0u32;
        let mut served_at = None;
        loop {
            let mut call = Call::new(Method::GET, template, segments.clone());
            call.query = query.clone();
            call.query.push(("limit", limit.to_string()));
            call.query.push(("offset", offset.to_string()));
            let (body, date) = self.dated_json_call(call).await?;
            // The first page's answer is the earliest: every page reflects at least that time.
            served_at = served_at.or(date);
            let (page, pagination) = split(body);
            let got = u32::try_from(page.len()).unwrap_or(u32::MAX);
            let found = page.iter().any(&stop_at);
            items.extend(page);
            if found || !pagination.more || got == 0 {
                return Ok(Listing {
                    items,
                    truncated: false,
                    served_at,
                });
            }
            offset = offset.saturating_add(got);
            if offset.saturating_add(limit) > MAX_OFFSET {
                tracing::warn!(
                    path = template,
                    offset,
                    "stopping pagination at PagerDuty's offset limit"
                );
                return Ok(Listing {
                    items,
                    truncated: true,
                    served_at,
                });
            }
        }
    }

    async fn json_call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        self.dated_json_call(call).await.map(|(value, _)| value)
    }

    /// [`PdClient::json_call`] plus the answer's `Date` header (PagerDuty's clock).
    async fn dated_json_call<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<(T, Option<OffsetDateTime>), Error> {
        let answer = self.execute(&call).await?;
        let value = serde_json::from_slice(&answer.body).map_err(|e| Error::Decode {
            status: answer.status.as_u16(),
            reason: e.to_string(),
        })?;
        Ok((value, answer.date))
    }

    /// Sends `call`, waiting for the rate limiter and retrying as [`retry::decide`] says.
    async fn execute(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let config = &self.inner.config;
        let mut attempt = 0u32;
        let mut refreshed_token = false;
        loop {
            attempt += 1;
            self.wait_for_budget().await;
            let err = match self.attempt(call, attempt).await {
                Ok(ok) => return Ok(ok),
                Err(err) => err,
            };
            if let (Error::Api { status: 401, .. }, Auth::OAuth { .. }, false) =
                (&err, &config.auth, refreshed_token)
            {
                // The token may have been revoked or expired early: fetch a new one once.
                refreshed_token = true;
                *self.inner.token.lock().await = None;
                attempt -= 1;
                continue;
            }
            if let Error::Api {
                status: 429,
                retry_after: Some(wait),
                ..
            } = &err
            {
                self.inner
                    .bucket
                    .lock()
                    .expect("rate limiter lock")
                    .block_for(monotonic_now(), *wait);
            }
            match retry::decide(
                &err,
                attempt,
                call.idempotent,
                &config.retry,
                fastrand::f64(),
            ) {
                RetryDecision::RetryAfter(wait) | RetryDecision::Backoff(wait) => {
                    if let Some(observer) = &config.on_retry {
                        observer.retrying(&err);
                    }
                    tracing::debug!(
                        path = call.template,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %err,
                        "retrying PagerDuty call"
                    );
                    tokio::time::sleep(wait).await;
                }
                RetryDecision::GiveUp => return Err(err),
            }
        }
    }

    async fn wait_for_budget(&self) {
        loop {
            let wait = self
                .inner
                .bucket
                .lock()
                .expect("rate limiter lock")
                .try_acquire(monotonic_now());
            match wait {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn attempt(&self, call: &Call<'_>, attempt: u32) -> Result<Answer, Error> {
        let span = tracing::info_span!(
            "pagerduty.call",
            method = %call.method,
            path = call.template,
            attempt,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        async {
            let started = monotonic_now();
            let result = self.send_once(call).await;
            let span = tracing::Span::current();
            span.record("latency_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(answer) => {
                    span.record("status", answer.status.as_u16());
                }
                Err(err) => {
                    if let Some(status) = err.status() {
                        span.record("status", status);
                    }
                    tracing::info!(error = %err, "PagerDuty call failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let config = &self.inner.config;
        let authorization = self.authorization().await?;
        let mut url = config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("base URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(&call.segments);
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(url.as_str())
            .header(header::ACCEPT, ACCEPT_V2)
            .header(header::AUTHORIZATION, authorization)
            .header(
                header::USER_AGENT,
                concat!("pdbridge-pd-client/", env!("CARGO_PKG_VERSION")),
            );
        if call.body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(from) = call.from {
            let value = HeaderValue::from_str(from.as_str())
                .map_err(|_| Error::InvalidRequest("From email is not a valid header".into()))?;
            builder = builder.header("from", value);
        }
        let request = builder
            .body(Full::new(call.body.clone().unwrap_or_default()))
            .map_err(|e| Error::InvalidRequest(format!("cannot build request: {e}")))?;

        let exchange = async {
            let response = self.inner.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Error::NotSent {
                        reason: format!("connect: {}", error_chain(&e)),
                    }
                } else {
                    Error::MaybeSent {
                        reason: format!("transport: {}", error_chain(&e)),
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| Error::MaybeSent {
                    reason: format!("reading the response body: {e}"),
                })?
                .to_bytes();
            Ok::<_, Error>((parts.status, parts.headers, bytes))
        };
        let (status, headers, body) = tokio::time::timeout(config.timeout, exchange)
            .await
            .map_err(|_| Error::MaybeSent {
                reason: format!("no answer within {} ms", config.timeout.as_millis()),
            })??;
        if status.is_success() {
            return Ok(Answer {
                status,
                body,
                date: http_date(&headers),
            });
        }
        Err(api_error(status, &headers, &body))
    }

    /// The `Authorization` header value, fetching or refreshing the OAuth token when needed.
    async fn authorization(&self) -> Result<HeaderValue, Error> {
        let text = match &self.inner.config.auth {
            Auth::Token(secret) => format!("Token token={}", secret.expose()),
            Auth::OAuth {
                client_id,
                client_secret,
                scope,
                token_url,
            } => {
                let mut cached = self.inner.token.lock().await;
                let now = monotonic_now();
                match cached.as_ref() {
                    Some(token) if token.fresh(now) => {
                        format!("Bearer {}", token.token.expose())
                    }
                    _ => {
                        let fresh = self
                            .fetch_token(token_url, client_id, client_secret.expose(), scope)
                            .await?;
                        let text = format!("Bearer {}", fresh.token.expose());
                        *cached = Some(fresh);
                        text
                    }
                }
            }
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| Error::Config("credential is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        token_url: &Url,
        client_id: &str,
        client_secret: &str,
        scope: &str,
    ) -> Result<CachedToken, Error> {
        let span = tracing::info_span!("pagerduty.oauth_token", status = tracing::field::Empty);
        async {
            let form = serde_urlencoded::to_string([
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("scope", scope),
            ])
            .map_err(|e| Error::Config(format!("cannot encode the token request: {e}")))?;
            let request = Request::builder()
                .method(Method::POST)
                .uri(token_url.as_str())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Full::new(Bytes::from(form)))
                .map_err(|e| Error::Config(format!("bad token URL: {e}")))?;
            let exchange = async {
                let response =
                    self.inner
                        .http
                        .request(request)
                        .await
                        .map_err(|e| Error::NotSent {
                            reason: format!("OAuth token request: {}", error_chain(&e)),
                        })?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| Error::NotSent {
                        reason: format!("OAuth token response: {e}"),
                    })?
                    .to_bytes();
                Ok::<_, Error>((status, body))
            };
            let (status, body) = tokio::time::timeout(self.inner.config.timeout, exchange)
                .await
                .map_err(|_| Error::NotSent {
                    reason: "OAuth token request timed out".into(),
                })??;
            tracing::Span::current().record("status", status.as_u16());
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                return Err(Error::Config(format!(
                    "the OAuth token endpoint refused the client credentials ({status})"
                )));
            }
            if !status.is_success() {
                return Err(Error::NotSent {
                    reason: format!("the OAuth token endpoint answered {status}"),
                });
            }
            let token: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| Error::NotSent {
                    reason: format!("unreadable OAuth token response: {e}"),
                })?;
            Ok(CachedToken::new(
                token.access_token,
                token.expires_in,
                monotonic_now(),
            ))
        }
        .instrument(span)
        .await
    }
}

fn is_already(err: &Error, codes: &[u32]) -> bool {
    let Error::Api { code, message, .. } = err else {
        return false;
    };
    if code.is_some_and(|c| codes.contains(&c)) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    (codes.contains(&1002) && message.contains("already acknowledged"))
        || (codes.contains(&1001) && message.contains("already resolved"))
}

fn api_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match parsed {
        Some(b) => (b.error.code, b.error.render()),
        None => (
            None,
            status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned(),
        ),
    };
    let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| ratelimit_reset(headers))
        .flatten();
    Error::Api {
        status: status.as_u16(),
        code,
        message,
        retry_after,
    }
}

/// Reads `ratelimit-reset` (seconds until the window resets; integer or decimal).
fn ratelimit_reset(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("ratelimit-reset")?.to_str().ok()?;
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The monotonic time for the rate limiter, token refresh and attempt timings: this crate's one
/// clock read (the limiter and the retry decision take the time as an argument).
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_header_is_read_as_pagerdutys_clock() {
        let mut h = HeaderMap::new();
        assert_eq!(http_date(&h), None);
        h.insert(
            header::DATE,
            HeaderValue::from_static("Mon, 07 Dec 2026 19:40:05 GMT"),
        );
        let at = http_date(&h).expect("parsed");
        assert_eq!(at.unix_timestamp(), 1_796_672_405);
        h.insert(header::DATE, HeaderValue::from_static("yesterday"));
        assert_eq!(http_date(&h), None);
    }

    #[test]
    fn ratelimit_reset_parses_integers_and_decimals() {
        let mut h = HeaderMap::new();
        assert_eq!(ratelimit_reset(&h), None);
        h.insert("ratelimit-reset", HeaderValue::from_static("3"));
        assert_eq!(ratelimit_reset(&h), Some(Duration::from_secs(3)));
        h.insert("ratelimit-reset", HeaderValue::from_static("0.25"));
        assert_eq!(ratelimit_reset(&h), Some(Duration::from_millis(250)));
        h.insert("ratelimit-reset", HeaderValue::from_static("soon"));
        assert_eq!(ratelimit_reset(&h), None);
    }

    #[test]
    fn api_error_reads_code_message_and_reset() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("2"));
        let err = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            br#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#,
        );
        assert_eq!(
            err,
            Error::Api {
                status: 429,
                code: Some(2020),
                message: "Rate Limit Exceeded (code 2020)".into(),
                retry_after: Some(Duration::from_secs(2)),
            }
        );
        let bare = api_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>");
        assert_eq!(bare.code(), None);
        assert_eq!(bare.status(), Some(502));
        assert!(bare.is_retryable());
    }

    #[test]
    fn already_states_are_recognised() {
        let api = |code, message: &str| Error::Api {
            status: 400,
            code,
            message: message.into(),
            retry_after: None,
        };
        assert!(is_already(&api(Some(1002), "x"), &[1002]));
        assert!(!is_already(&api(Some(1002), "x"), &[1001]));
        assert!(is_already(&api(None, "Incident Already Resolved"), &[1001]));
        assert!(!is_already(&api(Some(2001), "Invalid"), &[1001]));
    }
}
