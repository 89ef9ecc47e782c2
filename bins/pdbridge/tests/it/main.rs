//! The integration tests of `pdbridge`, one module per former test binary, linked once.
// Tests wait for servers with wall-clock deadlines, stamp signed requests and seed cache rows
// with the current time, so they read the clock directly.
#![allow(clippy::disallowed_methods)]

mod bounds;
mod common;
mod declare_form;
mod e2e_cli;
mod e2e_declare;
mod e2e_identity;
mod e2e_lifecycle;
mod e2e_more;
mod e2e_oncall;
mod e2e_oneshot;
mod e2e_poll;
mod e2e_reconcile_resolved;
mod e2e_socket;
mod oncall_cache;
mod ops_check;
mod ops_demo;
mod ops_identity;
mod ops_manifest;
mod ops_serve_oauth;
mod ops_status;
mod ops_subscribe;
mod policy_facts;
mod render_limits;
mod tidy;
mod writer;
