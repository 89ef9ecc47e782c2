//! The engine's timer loop and the reconciler, which lists open PagerDuty incidents every
//! interval and feeds them to the engine.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ids::IncidentId;
use sync_core::{Input, Timestamp};
use tokio::sync::watch;

use crate::bridge::Bridge;
use crate::perform::count_pd;
use crate::runtime::{read, stopped, write};
use crate::translate;

/// Sends [`Input::Tick`] whenever an engine timer comes due, until `shutdown` turns true.
pub async fn timer_loop(bridge: Arc<Bridge>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = bridge.now();
        let next = bridge.next_timer();
        if let Some(at) = next
            && at <= now
        {
            if let Err(err) = bridge.apply(Input::Tick, |_, _| Ok(())).await {
                tracing::error!(%err, "engine tick failed");
            }
            // Never spin: a timer that stays due is retried after a short pause.
            if bridge
                .next_timer()
                .is_some_and(|t: Timestamp| t <= bridge.now())
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        }
        let wait = next
            .map(|at| at.duration_since(now))
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            () = bridge.ctx.timer_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Reconciles (and prunes expired dedupe rows) at start and then every `interval`, until
/// `shutdown` turns true.
pub async fn reconcile_loop(
    bridge: Arc<Bridge>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        reconcile_once(&bridge).await;
        // Dedupe keys older than the retention (7 days) and finished outbox rows go; unprocessed
        // inbox rows and pending effects never do.
        let unloaded = bridge.unload_idle_resolved() + bridge.unload_idle_over_limit();
        tracing::debug!(unloaded, "unloaded idle incidents from memory");
        let now = bridge.now();
        match write(&bridge, move |tx| tx.prune(now)).await {
            Ok(report) => tracing::debug!(?report, "pruned the store"),
            Err(err) => tracing::warn!(err = %err.0, "pruning the store failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// One reconciliation pass: every open PagerDuty incident, plus every incident the engine or
/// the store still thinks needs it (open, or resolved with a card whose post failed
/// permanently, see [`sync_core::IncidentState::needs_reconcile`]), is read and fed to the engine as
/// [`Input::Reconcile`].
pub async fn reconcile_once(bridge: &Bridge) {
    let as_of = bridge.now();
    let listing = bridge.ctx.pd.list_open_incidents(100).await;
    count_pd(bridge, &listing);
    let listing = match listing {
        Ok(l) => l,
        Err(err) => {
            tracing::warn!(%err, "reconciler could not list open incidents");
            return;
        }
    };
    let mut seen = BTreeSet::new();
    for incident in &listing.items {
        seen.insert(incident.id.clone());
        feed_reconcile(bridge, incident, as_of).await;
    }
    let mut stale: BTreeSet<IncidentId> = bridge.with_engine(|e| {
        e.incidents()
            .filter(|s| {
                s.snapshot().is_some() && s.needs_reconcile(as_of) && !seen.contains(s.id())
            })
            .map(|s| s.id().clone())
            .collect()
    });
    // Idle incidents may be unloaded from memory: the store knows which ones still need it.
    let stored_open = read(bridge, |tx| tx.open_incident_ids())
        .await
        .unwrap_or_default();
    stale.extend(stored_open.into_iter().filter(|id| !seen.contains(id)));
    for id in stale {
        let as_of = bridge.now();
        let incident = bridge.ctx.pd.get_incident(&id, &[]).await;
        count_pd(bridge, &incident);
        match incident {
            Ok(incident) => feed_reconcile(bridge, &incident, as_of).await,
            Err(err) => {
                tracing::warn!(%err, incident = %id, "reconciler could not read an incident");
            }
        }
    }
}

async fn feed_reconcile(bridge: &Bridge, incident: &pd_client::rest::Incident, as_of: Timestamp) {
    let Some(snapshot) = translate::rest_snapshot(incident) else {
        return;
    };
    // Ordered against webhooks on PagerDuty's clock (`updated_at`, the answer's `Date`); the
    // bridge's send time stands in only when PagerDuty gave no time at all.
    let as_of = snapshot.as_of.unwrap_or(as_of);
    // A card the reconciler must (re)post goes where the incident's trigger would have sent it.
    let target_channel = translate::route_channel(
        &bridge.ctx.config,
        Some(&snapshot),
        Some(translate::RECONCILED_EVENT_TYPE),
    );
    let input = Input::Reconcile {
        snapshot,
        as_of,
        target_channel,
    };
    if let Err(err) = bridge.apply(input, |_, _| Ok(())).await {
        tracing::error!(%err, "feeding a reconciled incident failed");
    }
}
