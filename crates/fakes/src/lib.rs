//! In-process fake Slack and PagerDuty HTTP servers for tests, benchmarks and the demo.
//!
//! Each fake listens on `127.0.0.1:0`, records every request it receives, keeps enough state to
//! behave like the real platform for pdbridge's purposes, and can be told to fail in the ways the
//! real platforms fail (429 with and without headers, 5xx, slow answers, `ok: false`).
#![forbid(unsafe_code)]

pub mod http;
pub mod pd;
pub mod slack;
