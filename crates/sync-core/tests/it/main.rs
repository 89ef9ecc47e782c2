//! The integration tests of `sync-core`, linked into one binary (one module per former
//! test file). Filter by module: `cargo test -p sync-core --test it transcripts::`.

mod api;
mod common;
mod declared;
mod dedupe_window;
mod properties;
mod reconcile_window;
mod reminders;
mod same_millisecond;
mod transcripts;
