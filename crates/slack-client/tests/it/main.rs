//! The integration tests of `slack-client`, one module per former test binary, linked once.
// Tests wait for servers with wall-clock deadlines, stamp signed requests and seed cache rows
// with the current time, so they read the clock directly.
#![allow(clippy::disallowed_methods)]

mod against_fake;
mod blocks;
mod methods;
mod payloads;
mod usergroups;
