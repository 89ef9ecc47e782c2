//! Slack user to PagerDuty user mapping and per-action authorization policy.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
