//! Typed PagerDuty REST v2 and v3 webhook models, and an HTTP client with retries and rate limits.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
