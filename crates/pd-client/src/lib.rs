//! Typed PagerDuty REST v2 and v3 webhook models, and an HTTP client with retries and rate limits.
//!
//! - [`webhook`]: the v3 webhook envelope. Verify the signature over the raw bytes first (the
//!   `signing` crate), then parse with [`webhook::WebhookEnvelope::from_slice`]. Parsing never
//!   fails on unknown event types or unknown data types.
//! - [`rest`]: REST v2 request and response bodies (incidents, notes, users, escalation policies,
//!   on-calls, webhook subscriptions, error bodies).
#![forbid(unsafe_code)]

pub mod rest;
pub mod webhook;
