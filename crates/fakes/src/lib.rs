//! In-process fake Slack and PagerDuty HTTP servers for tests, benchmarks and the demo.
//!
//! Each fake listens on `127.0.0.1:0`, records every request it receives, keeps enough state to
//! behave like the real platform for pdbridge's purposes, and can be told to fail in the ways the
//! real platforms fail (429 with and without headers, 5xx, slow answers, `ok: false`).
//!
//! Call order: start a fake inside a Tokio runtime ([`slack::FakeSlack::start`],
//! [`pd::FakePagerDuty::start`]), seed its state, point the code under test at its URL, drive it,
//! then inspect what it recorded; each module's doc gives the details. [`http::Server`], the
//! loopback server both are built on, also serves a handler of a test's own as a small stub.
//!
//! Invariants: a fake listens on `127.0.0.1` only, and the fake PagerDuty sends webhooks only to
//! the targets a test gives it; every request is recorded before it is answered; inspection
//! returns copies, so a test never holds a fake's lock; a fake stops accepting connections when
//! it is dropped.
#![forbid(unsafe_code)]
// The fakes play the platforms, which keep their own clocks (Slack's request timestamps, token
// expiry, rate-limit windows), so they read the system time like the real services do.
#![allow(clippy::disallowed_methods)]

pub mod block_kit;
pub mod http;
pub mod pd;
pub mod slack;
