//! Typed Slack interactivity, Block Kit and Web API models, and an HTTP client with rate limits.
//!
//! - [`interaction`]: parse inbound requests **after** verifying their signature over the raw
//!   bytes: [`interaction::InteractionPayload::from_form`] for `payload=<json>` bodies,
//!   [`interaction::SlashCommand::from_form`] for slash commands.
//! - [`blocks`]: Block Kit blocks, elements and modal views that serialize exactly as Slack
//!   expects (absent fields are omitted, never `null`).
//! - [`api`]: Web API request bodies, the `ok`/`error` envelope and typed responses.
//! - [`SlackClient`]: build it once from a [`SlackConfig`] (inside a Tokio runtime) and call the
//!   methods; each call waits for its rate-limit slot ([`ratelimit`]), sends one attempt under the
//!   configured timeout, turns `ok: false` into [`Error::Api`], and retries according to the pure
//!   [`retry::decide`].
//!
//! Invariants: identifiers are `ids` newtypes and a message `ts` is always a string; the
//! verification `token` of inbound payloads is never kept; errors, logs and `Debug` output never
//! contain the bot token, a `response_url` or a body; a 429 delays only its own rate-limit key;
//! calls that may post twice (`chat.postMessage`, `chat.postEphemeral`, `views.open`,
//! `response_url`) are not retried after an ambiguous failure (`MaybeSent`).
#![forbid(unsafe_code)]

pub mod api;
pub mod blocks;
mod client;
mod error;
pub mod interaction;
pub mod ratelimit;
pub mod retry;

pub use client::{BotToken, SlackClient, SlackConfig, UserGroup};
pub use error::Error;
