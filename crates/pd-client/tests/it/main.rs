//! The integration tests of `pd-client`, one module per former test binary, linked once.
// Tests wait for servers with wall-clock deadlines, stamp signed requests and seed cache rows
// with the current time, so they read the clock directly.
#![allow(clippy::disallowed_methods)]

mod client_fake;
mod create;
mod log_entries;
mod models;
mod oncall;
mod tracing_redaction;
