//! A created declaration: recorded and handed to the engine in one transaction, and linked
//! with the incidents declared together with it.

use ids::{Email, IncidentId};
use pd_client::rest::Incident;
use store::{AuditEntry, DeclarationStatus};
use sync_core::{Declaration as EngineDeclaration, Declared, Input, Sibling};

use super::Declaration;
use crate::bridge::Bridge;
use crate::runtime::read;
use crate::translate;

/// What a created declaration stores as its result: the incident and its number.
#[derive(serde::Serialize, serde::Deserialize)]
struct CreatedResult {
    id: IncidentId,
    number: u64,
}

/// Records a created declaration and hands the incident to the engine in one transaction, so
/// its trigger webhook lands on the card that names the requester; then tells the incidents
/// declared with it, already created, about this one.
pub(super) async fn created(
    bridge: &Bridge,
    d: &Declaration,
    incident: Incident,
    via: Option<Email>,
    audit: Option<AuditEntry>,
) {
    let now = (bridge.ctx.clock)();
    let siblings = sibling_results(bridge, d).await;
    let snapshot = translate::rest_snapshot(&incident);
    let target_channel = translate::route_channel(
        &bridge.ctx.config,
        snapshot.as_ref(),
        Some("incident.triggered"),
    );
    let this = Sibling {
        incident: incident.id.clone(),
        number: Some(incident.incident_number),
    };
    let input = Input::Declared(Declared {
        incident: incident.id.clone(),
        declaration: EngineDeclaration {
            by: d.requester.clone(),
            via: via.clone(),
            together: siblings.clone(),
        },
        snapshot,
        as_of: translate::rest_as_of(&incident).unwrap_or(now),
        target_channel,
    });
    let key = d.incident_key.clone();
    let result = serde_json::to_string(&CreatedResult {
        id: incident.id.clone(),
        number: incident.incident_number,
    })
    .unwrap_or_default();
    let applied = bridge
        .apply(input, move |tx, at| {
            tx.finish_declaration(&key, DeclarationStatus::Created, &result, at)?;
            if let Some(entry) = &audit {
                tx.append_audit(entry)?;
            }
            Ok(())
        })
        .await;
    if let Err(err) = applied {
        // The row stays pending: the next attempt finds the incident by its key.
        tracing::error!(%err, key = d.incident_key, "recording a declared incident failed");
        return;
    }
    for sibling in &siblings {
        let together = siblings
            .iter()
            .filter(|s| s.incident != sibling.incident)
            .cloned()
            .chain([this.clone()])
            .collect();
        let input = Input::Declared(Declared {
            incident: sibling.incident.clone(),
            declaration: EngineDeclaration {
                by: d.requester.clone(),
                via: via.clone(),
                together,
            },
            snapshot: None,
            as_of: now,
            target_channel: None,
        });
        if let Err(err) = bridge.apply(input, |_, _| Ok(())).await {
            tracing::warn!(%err, "linking a declared incident to its sibling failed");
        }
    }
}

/// The incidents already created for the other services of the same request.
async fn sibling_results(bridge: &Bridge, d: &Declaration) -> Vec<Sibling> {
    let keys: Vec<String> = d
        .together
        .iter()
        .map(|service| super::incident_key(&d.request_id, service))
        .collect();
    let rows = read(bridge, move |tx| {
        keys.iter()
            .map(|k| tx.declaration(k))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .unwrap_or_default();
    rows.into_iter()
        .flatten()
        .filter(|r| r.status == DeclarationStatus::Created)
        .filter_map(|r| serde_json::from_str::<CreatedResult>(r.result.as_deref()?).ok())
        .map(|c| Sibling {
            incident: c.id,
            number: Some(c.number),
        })
        .collect()
}
