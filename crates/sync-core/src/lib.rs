//! The pure pdbridge state machine: handle(now, input) -> effects.
//!
//! This crate is filled in by its own issue; until then it exports nothing.
#![forbid(unsafe_code)]
