//! `pdbridge check` for `[declare]`: every service exists and is enabled, every severity's
//! priority exists, and the `unmapped_from` account is a PagerDuty user.

use pd_client::PdClient;

use super::{Line, grant, user_by_email};
use crate::config::Config;

/// Where a service id is found in PagerDuty.
const SERVICE_IDS: &str =
    "the id is the last part of the service's URL in PagerDuty (…/service-directory/PXXXXXX)";

/// The `[declare]` lines (none when declaring is off).
pub(super) async fn declare(config: &Config, client: &PdClient) -> Vec<Line> {
    let Some(declare) = &config.declare else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for (name, id) in &declare.services {
        let subject = format!("[declare] service {name} = {id}");
        lines.push(match client.get_service(id).await {
            Ok(service) if service.status.as_deref() == Some("disabled") => Line::fail(
                subject,
                format!(
                    "{} is disabled in PagerDuty, so it refuses new incidents",
                    service.name
                ),
                format!(
                    "enable the service in PagerDuty, or remove `{name}` from declare.services"
                ),
            ),
            Ok(service) => Line::pass(subject, format!("exists: {}", service.name)),
            Err(err) => match err.status() {
                Some(404) => Line::fail(
                    subject,
                    format!("PagerDuty has no service {id}, so `/pd trigger {name}` would fail"),
                    format!("fix declare.services.{name}: {SERVICE_IDS}"),
                ),
                Some(403) => Line::fail(
                    subject,
                    "the token may not read services (403)",
                    grant(config, "services.read"),
                ),
                _ => Line::fail(subject, err.to_string(), "retry later"),
            },
        });
    }
    let wanted: Vec<(usize, &str)> = declare
        .severities
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.priority.as_deref().map(|p| (i, p)))
        .collect();
    if !wanted.is_empty() {
        lines.extend(priorities(config, client, &wanted).await);
    }
    if let Some(email) = &declare.unmapped_from {
        lines.push(
            user_by_email(
                client,
                "[declare] unmapped_from",
                email,
                "declare.unmapped_from",
            )
            .await,
        );
    }
    lines
}

async fn priorities(config: &Config, client: &PdClient, wanted: &[(usize, &str)]) -> Vec<Line> {
    const SUBJECT: &str = "[declare] priorities";
    let known = match client.list_priorities().await {
        Ok(list) => list,
        Err(err) if err.status() == Some(403) => {
            return vec![Line::fail(
                SUBJECT,
                "the token may not read priorities (403)",
                grant(config, "priorities.read"),
            )];
        }
        Err(err) => return vec![Line::fail(SUBJECT, err.to_string(), "retry later")],
    };
    if known.is_empty() {
        return vec![Line::fail(
            SUBJECT,
            "the PagerDuty account has no priorities, so PagerDuty refuses incidents that name one",
            "remove `priority` from declare.severities, or turn on incident priorities in \
             PagerDuty (Incidents → Incident Priority Settings)",
        )];
    }
    let names: Vec<&str> = known.iter().map(|p| p.name.as_str()).collect();
    wanted
        .iter()
        .map(|(i, name)| {
            let subject = format!("[declare] severities[{i}] priority {name}");
            match known.iter().find(|p| p.name == *name) {
                Some(p) => Line::pass(subject, format!("exists: {}", p.id)),
                None => Line::fail(
                    subject,
                    format!(
                        "PagerDuty has no priority {name} (it has {})",
                        names.join(", ")
                    ),
                    format!(
                        "set declare.severities[{i}].priority to one of {}",
                        names.join(", ")
                    ),
                ),
            }
        })
        .collect()
}
