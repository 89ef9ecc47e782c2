//! SQLite persistence for pdbridge: inbox, engine state, outbox, identity cache and audit log.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
