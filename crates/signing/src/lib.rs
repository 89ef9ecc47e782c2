//! Slack v0 and PagerDuty v1 webhook signature verification; pure, with the clock passed in.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
