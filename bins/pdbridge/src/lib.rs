//! pdbridge: drive PagerDuty incidents from Slack.
//!
//! This library is the server half of the `pdbridge` binary. Call order: [`cli::Cli`] is parsed,
//! [`config::Config::load`] validates the configuration (a bad one exits with status 64 and one
//! line on stderr), then [`app::run`] opens the store, builds the clients, the [`bridge::Bridge`]
//! and the HTTP service ([`http::app`]), starts the background loops ([`runtime`]) and serves
//! until SIGTERM/SIGINT. The logic of the bridge lives in the workspace crates (`sync-core`
//! decides, `store` remembers, the clients talk); this crate only composes them.
//!
//! A request meets the modules in this order: [`server`] (connections), [`http`] (limits and
//! signatures), [`intake`] (the bridge's handlers), [`translate`] (wire to engine input),
//! [`writer`] (the engine and the group commit), [`inbox`] (stored inputs to the engine),
//! [`dispatch`] (claiming effects), [`perform`] (one effect, one client call, one outcome) and
//! [`reconcile`] (timers and the reconciler). [`context`] is what they all read.
//!
//! Invariants: signatures are verified over raw bytes before any parsing; an input, the state it
//! changes and the effects it emits commit in one transaction; our own failures answer 503,
//! never 4xx; secrets never reach `Debug`, logs or errors.
#![forbid(unsafe_code)]

pub mod app;
pub mod bridge;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod context;
pub mod declare;
pub mod dispatch;
pub mod http;
pub mod identity;
pub mod inbox;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod oncall;
pub mod ops;
pub mod perform;
pub mod poll;
pub mod reconcile;
pub mod render;
pub mod runtime;
pub mod server;
pub mod socket;
pub mod translate;
pub mod world;
pub mod writer;
