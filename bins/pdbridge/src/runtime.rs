//! The background loops that drive the [`Bridge`], each in the module of its pipeline stage, and
//! what they share:
//!
//! - [`crate::inbox`]: the inbox processor feeds stored deliveries and Slack actions to the
//!   engine.
//! - [`crate::dispatch`]: the dispatcher claims due effects and carries them out through
//!   [`crate::perform`].
//! - [`crate::reconcile`]: the timer loop sends [`sync_core::Input::Tick`] when the engine asks
//!   for it (retries, thread flushes); the reconciler lists open PagerDuty incidents every
//!   interval and feeds them to the engine, which repairs stale cards and posts missing ones
//!   (routed as `incident.triggered`, so routes with an `events` filter match them as they
//!   would have matched the trigger).

use std::time::Duration;

use tokio::sync::watch;

use crate::bridge::Bridge;
use crate::http::Unavailable;

pub use crate::dispatch::{MAX_IN_FLIGHT, PAGERDUTY_IN_FLIGHT, dispatch_loop};
pub use crate::inbox::inbox_loop;
pub use crate::perform::{CARD_EVENT_TYPE, perform};
pub use crate::reconcile::{reconcile_loop, reconcile_once, timer_loop};

/// How many rows one pass takes from the inbox or the outbox.
pub(crate) const BATCH: usize = 64;
/// The longest any loop sleeps without being woken.
pub(crate) const IDLE: Duration = Duration::from_secs(1);

pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// A store read on the blocking pool; `None` (logged) when it fails.
pub(crate) async fn read<T, F>(bridge: &Bridge, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&store::Tx<'_>) -> Result<T, store::Error> + Send + 'static,
{
    match bridge.ctx.blocking(move |store| store.read(f)).await {
        Ok(v) => Some(v),
        Err(err) => {
            tracing::error!(err = %err.0, "store read failed");
            None
        }
    }
}

/// A store write on the blocking pool.
pub(crate) async fn write<T, F>(bridge: &Bridge, f: F) -> Result<T, Unavailable>
where
    T: Send + 'static,
    F: FnOnce(&mut store::Tx<'_>) -> Result<T, store::Error> + Send + 'static,
{
    bridge.ctx.blocking(move |store| store.write(f)).await
}
