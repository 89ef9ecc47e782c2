//! Typed Slack interactivity, Block Kit and Web API models, and an HTTP client with rate limits.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
