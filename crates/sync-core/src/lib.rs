//! The pure pdbridge state machine: `handle(now, input) -> effects`.
//!
//! `sync-core` keeps one Slack card per PagerDuty incident in step with PagerDuty, and turns
//! Slack clicks into PagerDuty changes made on behalf of the clicking human. It does no I/O,
//! reads no clock, draws no random numbers and never sees wire JSON: the caller translates
//! webhooks and Slack payloads into [`Input`]s, carries out the [`Effect`]s, and feeds each
//! effect's result back as [`Input::EffectDone`]. PagerDuty is the system of record; the card
//! shows PagerDuty's state, plus a "pending" note while a Slack action awaits confirmation.
//!
//! # Call order
//!
//! Modelled on `quinn-proto`'s `Connection`:
//!
//! 1. Build the engine with [`Engine::new`], or continue from persisted state with
//!    [`Engine::restore`] / [`Engine::load_incident`].
//! 2. For every input, call [`Engine::handle`] with the current time. Carry out the returned
//!    effects in order (per incident), persisting the state change and the effects together
//!    (for example per incident from [`Engine::incident`]).
//! 3. When an effect finishes, call `handle` with [`Input::EffectDone`] and its [`EffectId`].
//!    Each awaited effect gets exactly one outcome; an outcome for an id the engine no longer
//!    awaits is answered with [`DropReason::UnknownEffect`]. [`Effect::Ephemeral`] replies are
//!    never awaited: retry them yourself ([`EngineConfig::retry_delay`]) and feed nothing back.
//!    Report a call that may have reached the service without an answer as
//!    [`Outcome::MaybeSent`], never as [`Outcome::Retryable`]; honour the `look_since` of the
//!    [`Effect::PostCard`] and [`Effect::PdMutation`] that follow it.
//! 4. After every call, ask [`Engine::poll_timeout`] and call `handle` with [`Input::Tick`] once
//!    that time has come (earlier or spurious ticks are harmless). Only a tick fires timers:
//!    retries with backoff, rate-limit waits, thread-line flushes and pending-action timeouts.
//! 5. Persist what changed: [`Engine::changed_incidents`] names the incidents whose state the
//!    last call changed. Before carrying out a [`Effect::PdMutation`] (for example after a
//!    restart), skip it if [`Engine::awaits`] is false for its id.
//!
//! # Run loop
//!
//! The contract, in the manner of `str0m`'s `Rtc` loop: every [`Engine::handle`] is followed
//! by persisting what it changed ([`Engine::changed_incidents`]) together with the effects it
//! returned, in one transaction; each outcome goes back in as an input of its own; and the
//! loop waits for the next input no longer than [`Engine::poll_timeout`], then ticks.
//!
//! ```no_run
//! use std::collections::VecDeque;
//!
//! use sync_core::{Effect, Engine, EngineConfig, IncidentState, Input, Outcome, Timestamp};
//!
//! /// The caller's side: a clock, a transactional store and the two platforms.
//! trait Io {
//!     fn now(&mut self) -> Timestamp;
//!     /// The next webhook or click, or `None` once `deadline` has passed.
//!     fn wait_for_input(&mut self, deadline: Option<Timestamp>) -> Option<Input>;
//!     /// Writes the changed incidents and the new effects in one transaction.
//!     fn persist(&mut self, incidents: &[&IncidentState], effects: &[Effect]);
//!     /// Carries out one effect: `MaybeSent` if the call may have arrived unanswered.
//!     fn perform(&mut self, effect: &Effect) -> Outcome;
//! }
//!
//! fn run(io: &mut impl Io) -> Result<(), sync_core::Error> {
//!     let mut engine = Engine::new(EngineConfig::default())?;
//!     let mut inputs = VecDeque::new();
//!     loop {
//!         let input = match inputs.pop_front() {
//!             Some(input) => input,
//!             None => {
//!                 let deadline = engine.poll_timeout().map(|(at, _reason)| at);
//!                 io.wait_for_input(deadline).unwrap_or(Input::Tick)
//!             }
//!         };
//!         let effects = engine.handle(io.now(), input);
//!         let changed: Vec<&IncidentState> = engine
//!             .changed_incidents()
//!             .filter_map(|id| engine.incident(id))
//!             .collect();
//!         io.persist(&changed, &effects);
//!         for effect in effects {
//!             match &effect {
//!                 Effect::Dropped { .. } => {}
//!                 // Replies are never awaited: retry them yourself, feed nothing back.
//!                 Effect::Ephemeral { .. } => {
//!                     let _ = io.perform(&effect);
//!                 }
//!                 // A mutation the engine stopped awaiting must not be sent late.
//!                 Effect::PdMutation { id, .. } if !engine.awaits(id) => {}
//!                 _ => {
//!                     let outcome = io.perform(&effect);
//!                     if let Some(id) = effect.id() {
//!                         inputs.push_back(Input::EffectDone { id: id.clone(), outcome });
//!                     }
//!                 }
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! # Invariants
//!
//! - **Time is monotonic.** `now` is clamped: a `now` earlier than one already seen is treated
//!   as the latest one seen. `now` drives timers only: incident data is ordered on PagerDuty's
//!   clock alone, events by their `occurred_at`, reads (and a mutation's response) by their
//!   [`IncidentSnapshot::as_of`] and reconciliations by their `as_of`, so a skew between the
//!   caller's clock and PagerDuty's never drops an event or ignores a read. The caller's send
//!   time stands in only for a read that carries no PagerDuty time.
//! - **Every decision is visible.** An input that changes nothing yields
//!   [`Effect::Dropped`] with a [`DropReason`]; refusals also yield it beside their ephemeral.
//! - **Deterministic.** The same state and the same inputs give the same effects, with the same
//!   [`EffectId`]s (derived from the incident, the input's identity or a per-incident counter).
//! - **Restorable.** [`Engine::snapshot`] followed by [`Engine::restore`] (or per incident,
//!   [`Engine::incident`] followed by [`Engine::load_incident`]) gives the same future behaviour.
//! - **One card per incident.** At most one post or update is in flight per card; changes made
//!   meanwhile coalesce into one update to the latest state once it returns. After a post that
//!   may have reached Slack ([`Outcome::MaybeSent`]), every later post of that card asks the
//!   caller to look for it first; the same holds for a note.
//! - **Newer wins.** Incident data is applied only when newer than the data already applied
//!   (event `occurred_at`, or a read's PagerDuty time), so a stale `acknowledged` never
//!   un-resolves a card while a genuine later `reopened` does.
//! - **Attributed mutations only.** A [`Effect::PdMutation`] always carries a mapped, authorized
//!   actor; status-changing actions are preceded by a fresh [`PdRead::Incident`] and never sent
//!   for a resolved incident: resolved data applied while an acknowledge, escalate or reassign
//!   is pending (even after its fresh read) refuses it, so its effect is no longer awaited.
//!   PagerDuty events never cause a mutation (no note echo loops).
//! - **Bounded memory.** Webhook/event ids and action keys are forgotten after
//!   [`EngineConfig::dedupe_ttl`], expected echoes after [`EngineConfig::echo_ttl`]. Incidents
//!   stay until the caller unloads them ([`Engine::unload_incident`], for example once
//!   [`IncidentState::is_idle`] and resolved).
//!
//! # Module order
//!
//! Each module uses only the modules before it in this list, never one after it:
//!
//! 1. `types` (incident data, effect ids), `input`, `effect`, `sla`, `config`: the vocabulary
//!    (`Timestamp` comes from `ids`).
//! 2. `text`: every user-visible string (replies, card text, thread lines), from data alone.
//! 3. `state`: [`IncidentState`] and what is derived from it without changing it (the card
//!    view, the awaited effects, the next timer).
//! 4. `cx`: the context one input is handled in for one incident.
//! 5. The per-incident sub-machines, each owning its transitions: `thread` (lines, coalesced),
//!    `card` (post, then updates), `action` (a click through fresh read, mutation and echo),
//!    `hydrate` (reading an incident the engine has no data for), `reminders` (SLA timers and
//!    reminder lines), `timers` (what a tick fires), `declared` (an incident the bridge created
//!    for a Slack user: [`Input::Declared`]).
//! 6. `incident`: routes an event, reconciliation or outcome to the sub-machine it concerns.
//! 7. `engine`: [`Engine`] keeps dedupe, effect ownership, the timer index and `handle`.
#![forbid(unsafe_code)]

mod action;
mod card;
mod config;
mod cx;
mod declared;
mod effect;
mod engine;
mod hydrate;
mod incident;
mod input;
mod reminders;
mod sla;
mod state;
mod text;
mod thread;
mod timers;
mod types;

pub use config::EngineConfig;
pub use effect::*;
pub use engine::Engine;
pub use ids::Timestamp;
pub use input::*;
pub use sla::{ReminderConfig, SlaConfig, SlaTarget};
pub use state::{EngineSnapshot, IncidentState};
pub use types::*;

/// The errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(&'static str),
}
