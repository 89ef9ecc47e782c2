//! pdbridge: drive PagerDuty incidents from Slack.
//!
//! This library is the server half of the `pdbridge` binary. Call order: [`cli::Cli`] is parsed,
//! [`config::Config::load`] validates the configuration (a bad one exits with status 64 and one
//! line on stderr), then [`serve`] builds the service with [`http::app`] and runs it. The logic of
//! the bridge lives in the workspace crates; this crate only composes them.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod server;
