//! Per-incident engine state, with the card's location in separate columns.

use ids::{ChannelId, IncidentId, MessageTs, Timestamp};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::types::{Json, Millis, ts};
use crate::{Error, Tx};

/// The stored state of one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// The incident.
    pub incident_id: IncidentId,
    /// The channel of its card, once routed.
    pub channel: Option<ChannelId>,
    /// The card's message `ts`, once posted.
    pub card_ts: Option<MessageTs>,
    /// Whether the incident is resolved (a resolved card is no longer "open").
    pub resolved: bool,
    /// The engine's opaque per-incident snapshot.
    pub state: Json,
    /// When the record was last written.
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "incident_id, channel_id, card_ts, resolved, state, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<IncidentRecord> {
    Ok(IncidentRecord {
        incident_id: IncidentId::new(r.get::<_, String>(0)?),
        channel: r.get::<_, Option<String>>(1)?.map(ChannelId::new),
        card_ts: r.get::<_, Option<String>>(2)?.map(MessageTs::new),
        resolved: r.get(3)?,
        state: Json::column(r, 4, "incidents")?,
        updated_at: ts(r, 5)?,
    })
}

impl Tx<'_> {
    /// Inserts or replaces the record of `record.incident_id`.
    pub fn put_incident(&mut self, record: &IncidentRecord) -> Result<(), Error> {
        self.exec(
            "INSERT INTO incidents (incident_id, channel_id, card_ts, resolved, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (incident_id) DO UPDATE SET
                 channel_id = excluded.channel_id, card_ts = excluded.card_ts,
                 resolved = excluded.resolved, state = excluded.state,
                 updated_at = excluded.updated_at",
            params![
                record.incident_id.as_str(),
                record.channel.as_ref().map(ChannelId::as_str),
                record.card_ts.as_ref().map(MessageTs::as_str),
                record.resolved,
                record.state.as_str(),
                Millis(record.updated_at),
            ],
        )?;
        Ok(())
    }

    /// The record of one incident.
    pub fn incident(&self, incident_id: &IncidentId) -> Result<Option<IncidentRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE incident_id = ?1");
        Ok(self
            .row(&sql, [incident_id.as_str()], from_row)
            .optional()?)
    }

    /// The incident whose card is the message `card_ts` in `channel`.
    pub fn incident_by_card(
        &self,
        channel: &ChannelId,
        card_ts: &MessageTs,
    ) -> Result<Option<IncidentRecord>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE channel_id = ?1 AND card_ts = ?2
             ORDER BY incident_id LIMIT 1"
        );
        Ok(self
            .row(&sql, [channel.as_str(), card_ts.as_str()], from_row)
            .optional()?)
    }

    /// Every incident record, ordered by incident id.
    pub fn incidents(&self) -> Result<Vec<IncidentRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM incidents ORDER BY incident_id");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Unresolved incident records, ordered by incident id (for the reconciler).
    pub fn open_incidents(&self) -> Result<Vec<IncidentRecord>, Error> {
        let sql =
            format!("SELECT {COLUMNS} FROM incidents WHERE resolved = 0 ORDER BY incident_id");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of the unresolved incidents, ordered (cheaper than [`Tx::open_incidents`] when
    /// only the ids are needed, for example to reconcile incidents that are not in memory).
    pub fn open_incident_ids(&self) -> Result<Vec<IncidentId>, Error> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT incident_id FROM incidents WHERE resolved = 0 ORDER BY incident_id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows
            .map(|r| r.map(IncidentId::new))
            .collect::<Result<_, _>>()?)
    }

    /// Deletes an incident record; returns whether one existed.
    pub fn delete_incident(&mut self, incident_id: &IncidentId) -> Result<bool, Error> {
        let n = self.exec(
            "DELETE FROM incidents WHERE incident_id = ?1",
            [incident_id.as_str()],
        )?;
        Ok(n > 0)
    }
}
