//! Incident creation, priorities and the service listing.

use http::Method;
use ids::{Email, PriorityId};

use super::{Call, Listing, MAX_PAGE_SIZE, PdClient};
use crate::Error;
use crate::rest::{
    CreateIncidentRequest, Incident, IncidentEnvelope, IncidentList, NewIncident, Priority,
    PriorityList, Service, ServiceList,
};

/// The error detail PagerDuty answers a create with when an open incident on the same service
/// already has the same `incident_key`.
pub const DEDUP_KEY_CONFLICT: &str = "Open incident with matching dedup key already exists";

/// The result of [`PdClient::create_incident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The incident PagerDuty created, or the open one that already had the `incident_key`.
    pub incident: Incident,
    /// True when PagerDuty refused the create because an open incident on the service already
    /// had the same `incident_key` (an earlier attempt of the same request), and `incident` is
    /// that earlier incident.
    pub existing: bool,
}

impl PdClient {
    /// `POST /incidents` as `from`.
    ///
    /// The request must carry an `incident_key`: PagerDuty refuses a second create with the same
    /// key on the same service while the first incident is open. That refusal is answered here
    /// by reading the open incident with that key (`existing` is then set), so a resend of the
    /// same request returns the same incident. A 5xx or a request that never left is retried
    /// here; a timeout or a dropped connection is [`Error::MaybeSent`] and not retried, because
    /// the key stops protecting once the first incident is resolved: the caller first looks
    /// for it with [`PdClient::find_incident_by_key`], then resends.
    pub async fn create_incident(
        &self,
        from: &Email,
        incident: NewIncident,
    ) -> Result<Created, Error> {
        let Some(key) = incident.incident_key.clone().filter(|k| !k.is_empty()) else {
            return Err(Error::InvalidRequest(
                "an incident is only created with an incident_key".into(),
            ));
        };
        if incident.title.trim().is_empty() {
            return Err(Error::InvalidRequest("an incident needs a title".into()));
        }
        if incident.assignments.is_some() && incident.escalation_policy.is_some() {
            return Err(Error::InvalidRequest(
                "assignments and an escalation policy are exclusive".into(),
            ));
        }
        let service = incident.service.id.clone();
        let call = Call::new(Method::POST, "/incidents", vec!["incidents"])
            .json(&CreateIncidentRequest { incident })?
            .from(from);
        match self.dated_json_call::<IncidentEnvelope>(call).await {
            Ok((env, date)) => Ok(Created {
                incident: Incident {
                    served_at: date,
                    ..env.incident
                },
                existing: false,
            }),
            Err(err) if is_dedup_conflict(&err) => {
                match self.find_open_incident_by_key(&key, &service).await? {
                    Some(incident) => Ok(Created {
                        incident,
                        existing: true,
                    }),
                    None => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The open incident on `service` whose `incident_key` is `key`, if any
    /// (`GET /incidents?incident_key=…&service_ids[]=…`).
    pub async fn find_open_incident_by_key(
        &self,
        key: &str,
        service: &ids::ServiceId,
    ) -> Result<Option<Incident>, Error> {
        self.incident_by_key(key, service, &["triggered", "acknowledged"])
            .await
    }

    /// The incident on `service` whose `incident_key` is `key`, open or resolved, if any. Ask
    /// before resending a create that may have reached PagerDuty: the `incident_key` only
    /// refuses a duplicate while the first incident is open.
    pub async fn find_incident_by_key(
        &self,
        key: &str,
        service: &ids::ServiceId,
    ) -> Result<Option<Incident>, Error> {
        self.incident_by_key(key, service, &["triggered", "acknowledged", "resolved"])
            .await
    }

    async fn incident_by_key(
        &self,
        key: &str,
        service: &ids::ServiceId,
        statuses: &[&str],
    ) -> Result<Option<Incident>, Error> {
        let mut call = Call::new(Method::GET, "/incidents", vec!["incidents"]);
        call.query = vec![
            ("incident_key", key.to_owned()),
            ("service_ids[]", service.as_str().to_owned()),
        ];
        call.query
            .extend(statuses.iter().map(|s| ("statuses[]", (*s).to_owned())));
        let (list, date): (IncidentList, _) = self.dated_json_call(call).await?;
        Ok(list
            .incidents
            .into_iter()
            .find(|i| i.incident_key.as_deref() == Some(key))
            .map(|i| Incident {
                served_at: date,
                ..i
            }))
    }

    /// `GET /priorities`, every page, most severe first. Empty on accounts without priorities.
    pub async fn list_priorities(&self) -> Result<Vec<Priority>, Error> {
        let listing = self
            .paginate(
                "/priorities",
                vec!["priorities"],
                Vec::new(),
                MAX_PAGE_SIZE,
                |l: PriorityList| (l.priorities, l.page),
                |_| false,
            )
            .await?;
        Ok(listing.items)
    }

    /// The id of the priority named `name` (exactly), or `None` when the account has no such
    /// priority (or no priorities at all), from [`PdClient::priorities`].
    pub async fn priority_id(&self, name: &str) -> Result<Option<PriorityId>, Error> {
        Ok(self
            .priorities()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.id))
    }

    /// The account's priorities, most severe first (empty on accounts without priorities),
    /// read once per client and cached; [`PdClient::forget_priorities`] drops the cache.
    pub async fn priorities(&self) -> Result<Vec<Priority>, Error> {
        let mut cache = self.inner.priorities.lock().await;
        if cache.is_none() {
            *cache = Some(self.list_priorities().await?);
        }
        Ok(cache.clone().unwrap_or_default())
    }

    /// Drops the cached priority names (after PagerDuty refused a priority id, say).
    pub async fn forget_priorities(&self) {
        *self.inner.priorities.lock().await = None;
    }

    /// `GET /services?query=…`: the services whose name matches `query`, at most `limit`
    /// (1 to 100), in PagerDuty's order.
    pub async fn search_services(&self, query: &str, limit: u32) -> Result<Vec<Service>, Error> {
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "page size {limit} is outside 1..=100"
            )));
        }
        let mut call = Call::new(Method::GET, "/services", vec!["services"]);
        call.query = vec![
            ("query", query.to_owned()),
            ("limit", limit.to_string()),
            ("offset", "0".to_owned()),
        ];
        let list: ServiceList = self.json_call(call).await?;
        Ok(list.services)
    }

    /// `GET /services`, every page.
    pub async fn list_services(&self) -> Result<Listing<Service>, Error> {
        self.paginate(
            "/services",
            vec!["services"],
            Vec::new(),
            MAX_PAGE_SIZE,
            |l: ServiceList| (l.services, l.page),
            |_| false,
        )
        .await
    }
}

/// Whether `err` is PagerDuty refusing a create because of an open incident with the same key.
pub(crate) fn is_dedup_conflict(err: &Error) -> bool {
    matches!(err, Error::Api { status: 400, message, .. }
        if message.to_ascii_lowercase().contains(&DEDUP_KEY_CONFLICT.to_ascii_lowercase()))
}
