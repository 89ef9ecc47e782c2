//! The integration tests of `fakes`, one module per former test binary, linked once.
// Tests wait for servers with wall-clock deadlines, stamp signed requests and seed cache rows
// with the current time, so they read the clock directly.
#![allow(clippy::disallowed_methods)]

mod pd_create;
mod pd_fake;
mod slack_fake;
mod slack_socket;
