//! Typed Slack interactivity, Block Kit and Web API models, and an HTTP client with rate limits.
//!
//! - [`interaction`]: parse inbound requests **after** verifying their signature over the raw
//!   bytes: [`interaction::InteractionPayload::from_form`] for `payload=<json>` bodies,
//!   [`interaction::SlashCommand::from_form`] for slash commands.
//! - [`blocks`]: Block Kit blocks, elements and modal views that serialize exactly as Slack
//!   expects (absent fields are omitted, never `null`).
//! - [`api`]: Web API request bodies, the `ok`/`error` envelope and typed responses.
//!
//! Invariants: identifiers are `ids` newtypes and a message `ts` is always a string; the
//! verification `token` of inbound payloads is never kept; errors never contain tokens or bodies.
#![forbid(unsafe_code)]

pub mod api;
pub mod blocks;
mod error;
pub mod interaction;

pub use error::Error;
