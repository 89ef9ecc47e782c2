//! Typed PagerDuty REST v2 and v3 webhook models, and an HTTP client with retries and rate limits.
//!
//! - [`webhook`]: the v3 webhook envelope. Verify the signature over the raw bytes first (the
//!   `signing` crate), then parse with [`webhook::WebhookEnvelope::from_slice`]. Parsing never
//!   fails on unknown event types or unknown data types.
//! - [`rest`]: REST v2 request and response bodies (incidents, notes, users, escalation policies,
//!   on-calls, services, teams, webhook subscriptions, error bodies); [`schedule`]: schedules
//!   and the filters of `GET /oncalls`.
//! - [`PdClient`]: build once with [`PdClient::new`] from a [`Config`] (base URL, [`Auth`],
//!   timeout, rate limit, [`retry::RetryPolicy`]), clone freely, then call it. Every incident
//!   mutation takes the acting human's [`ids::Email`] and sends it as `From`; incidents are
//!   created with [`PdClient::create_incident`] (always with an `incident_key`).
//!
//! Invariants: every call waits for the local token bucket ([`ratelimit::TokenBucket`], 960/min
//! by default) before it is sent; failures go through the pure [`retry::decide`]; a 429 with
//! `ratelimit-reset` pauses every caller until the reset; "already acknowledged/resolved"
//! answers are successes with [`Updated::already`] set; errors say whether the request left
//! ([`Error::was_sent`]); tokens, secrets and bodies never reach `Debug`, logs or errors.
#![forbid(unsafe_code)]

mod auth;
mod client;
mod error;
pub mod ratelimit;
pub mod rest;
pub mod retry;
pub mod schedule;
pub mod webhook;

pub use auth::{Auth, PAGERDUTY_TOKEN_URL, Secret};
pub use client::{
    ACCEPT_V2, Config, Created, CurrentUser, DEDUP_KEY_CONFLICT, IncidentInclude, Listing,
    LogEntryPage, MAX_OFFSET, MAX_PAGE_SIZE, PAGERDUTY_API_URL, PdClient, ResponderTarget, Updated,
};
pub use error::Error;
