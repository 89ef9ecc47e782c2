//! `pdbridge check`: a connector test against the real APIs, one ✓ or ✗ line per fact.
//!
//! Call order: [`check_config`] loads the configuration exactly as `serve` does (a bad one is a
//! single ✗ and nothing else is tried), then [`check`] asks PagerDuty and Slack what they think
//! of the credentials and the names in the configuration. Every ✗ carries the fix. Nothing is
//! written anywhere: no message is posted, no subscription created, no incident touched.
//! Secrets never appear in the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use std::time::Duration;

use identity::{AdminRef, OverrideTarget};
use ids::{ChannelId, Email, PdUserId, ServiceId, TeamId};
use pd_client::webhook::EventType;
use pd_client::{CurrentUser, PdClient};

use super::manifest::PublicUrl;
use super::subscribe::CONSUMED_EVENTS;
use crate::config::{Config, PdCredentials};

mod declare;
mod oncall;
mod poll;
mod slack;

use self::slack::slack;

/// The verdict of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The fact holds.
    Pass,
    /// The fact does not hold; the line says how to fix it.
    Fail,
    /// Not checked (missing input, or only a real request can tell).
    Skip,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Pass => "✓",
            Mark::Fail => "✗",
            Mark::Skip => "–",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The verdict.
    pub mark: Mark,
    /// What was checked, such as `Slack scopes`.
    pub subject: String,
    /// What was found.
    pub detail: String,
    /// How to fix it (always set for [`Mark::Fail`]).
    pub fix: Option<String>,
}

impl Line {
    fn pass(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            mark: Mark::Pass,
            subject: subject.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(subject: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            mark: Mark::Fail,
            subject: subject.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skip(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            mark: Mark::Skip,
            subject: subject.into(),
            detail: detail.into(),
            fix: None,
        }
    }
}

/// The whole report, in check order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every line, grouped by section (`Configuration`, `PagerDuty`, `Slack`).
    pub sections: Vec<(String, Vec<Line>)>,
}

impl Report {
    /// Whether any line is a ✗.
    pub fn failed(&self) -> bool {
        self.lines().any(|l| l.mark == Mark::Fail)
    }

    /// Every line, in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.sections.iter().flat_map(|(_, lines)| lines.iter())
    }

    /// The line for `subject`, if checked.
    pub fn line(&self, subject: &str) -> Option<&Line> {
        self.lines().find(|l| l.subject == subject)
    }

    /// The printable report, ending with a one-line verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (title, lines) in &self.sections {
            let _ = writeln!(out, "{title}");
            for l in lines {
                let _ = writeln!(out, "  {} {}: {}", l.mark.symbol(), l.subject, l.detail);
                if let Some(fix) = &l.fix {
                    let _ = writeln!(out, "      fix: {fix}");
                }
            }
        }
        let failed = self.lines().filter(|l| l.mark == Mark::Fail).count();
        if failed == 0 {
            let _ = writeln!(out, "All checks passed.");
        } else {
            let _ = writeln!(out, "{failed} check(s) failed.");
        }
        out
    }

    fn section(&mut self, title: &str, lines: Vec<Line>) {
        self.sections.push((title.to_owned(), lines));
    }
}

/// What `check` needs besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The public base URL; when set, a PagerDuty subscription must deliver to it.
    pub public_url: Option<PublicUrl>,
    /// An email that must map to a PagerDuty user (for example the operator's own).
    pub from: Option<Email>,
}

/// Loads the configuration like `serve`; the error becomes the single ✗ line of a report.
pub fn check_config(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<(Config, Line), Report> {
    let source = file.map_or_else(|| "environment".to_owned(), |p| p.display().to_string());
    match Config::load(file, env) {
        Ok(config) => {
            let mut detail = format!(
                "{source} is valid: {} route(s), default channel {}, {} identity override(s)",
                config.routes.len(),
                config
                    .slack
                    .default_channel
                    .as_ref()
                    .map_or("none", ChannelId::as_str),
                config.identity.len()
            );
            if let Some(team) = &config.slack.team_id {
                let _ = write!(detail, ", Slack workspace {team} only");
            }
            Ok((config, Line::pass("configuration", detail)))
        }
        Err(err) => {
            let mut report = Report::default();
            report.section(
                "Configuration",
                vec![Line::fail(
                    "configuration",
                    err.to_string(),
                    "fix the key named above (docs/operations.md lists every key and its \
                     environment variable)",
                )],
            );
            Err(report)
        }
    }
}

/// Runs every check against the APIs the configuration points at.
pub async fn check(config: &Config, config_line: Line, options: &CheckOptions) -> Report {
    let mut report = Report::default();
    let mut cfg_lines = vec![config_line];
    cfg_lines.push(Line::skip(
        "signing secrets",
        "the Slack signing secret and PagerDuty webhook secrets can only be proven by real \
         deliveries: run `/pd help` in Slack and `pdbridge pd-subscribe --ping`",
    ));
    report.section("Configuration", cfg_lines);
    report.section("PagerDuty", pagerduty(config, options).await);
    report.section("Slack", slack(config).await);
    let oncall = oncall::oncall(config).await;
    if !oncall.is_empty() {
        report.section("On call", oncall);
    }
    report
}

/// The deadline of one check request.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A PagerDuty client for `check`: the configured credentials, one attempt per request.
fn check_pd_client(config: &Config) -> Result<PdClient, pd_client::Error> {
    let mut pd = crate::clients::pd_config(config);
    pd.timeout = CHECK_TIMEOUT;
    pd.retry.max_attempts = 1;
    PdClient::new(pd)
}

/// Where the fix for a missing PagerDuty permission goes, by credential kind.
fn grant(config: &Config, scope: &str) -> String {
    match &config.pagerduty.credentials {
        PdCredentials::OAuth { .. } => format!(
            "add {scope} to pagerduty.oauth_scope (PAGERDUTY_OAUTH_SCOPE) and allow it for the \
             app in PagerDuty"
        ),
        PdCredentials::Token(_) => {
            format!("give the token {scope}, or use a read/write account-level key")
        }
    }
}

async fn pagerduty(config: &Config, options: &CheckOptions) -> Vec<Line> {
    let mut lines = Vec::new();
    const TOKEN: &str = "PagerDuty token";
    let client = match check_pd_client(config) {
        Ok(c) => c,
        Err(err) => {
            lines.push(Line::fail(
                "PagerDuty client",
                err.to_string(),
                "check PAGERDUTY_API_URL",
            ));
            return lines;
        }
    };
    let oauth = match &config.pagerduty.credentials {
        PdCredentials::OAuth {
            client_id, scope, ..
        } => Some((client_id.as_str(), scope.as_str())),
        PdCredentials::Token(_) => None,
    };
    match client.current_user().await {
        Ok(CurrentUser::User(user)) => lines.push(Line::fail(
            TOKEN,
            format!(
                "a user-level token of {} <{}>: PagerDuty records every action as that user, \
                 whatever `From` says",
                user.name, user.email
            ),
            "use an account-level REST API key (Integrations → API Access Keys) or a scoped \
             OAuth app so each click is attributed to the person who clicked",
        )),
        Ok(CurrentUser::NotAUser) => lines.push(Line::pass(
            TOKEN,
            match oauth {
                Some((client_id, scope)) => format!(
                    "a scoped OAuth app token (client {client_id}, scopes {scope}); `From` decides \
                     who each action is recorded for"
                ),
                None => "accepted; an account-level key (it cannot read /users/me), so `From` \
                         decides who each action is recorded for"
                    .to_owned(),
            },
        )),
        Err(pd_client::Error::Config(reason)) => {
            lines.push(Line::fail(
                TOKEN,
                format!("no OAuth token: {reason}"),
                "check pagerduty.oauth_client_id and PAGERDUTY_OAUTH_CLIENT_SECRET against the \
                 app's client credentials in PagerDuty (Integrations → App Registration)",
            ));
            return lines;
        }
        Err(err @ pd_client::Error::Api { status: 401, .. }) => {
            let _ = err;
            lines.push(Line::fail(
                TOKEN,
                "PagerDuty refused the token (401)",
                match oauth {
                    Some(_) => {
                        "the app's token was refused: check that the app is still \
                                installed and its client secret current"
                    }
                    None => {
                        "create a REST API key in PagerDuty (Integrations → API Access \
                             Keys, not read-only) and set PAGERDUTY_TOKEN or PAGERDUTY_TOKEN_FILE"
                    }
                },
            ));
            return lines;
        }
        Err(err @ pd_client::Error::Api { status: 403, .. }) => lines.push(Line::fail(
            TOKEN,
            format!("the token may not read users: {err}"),
            grant(config, "users.read"),
        )),
        Err(err) if err.status().is_some_and(|s| s >= 500) => {
            lines.push(Line::fail(
                TOKEN,
                err.to_string(),
                "retry later; see status.pagerduty.com",
            ));
            return lines;
        }
        Err(err) if err.status().is_none() => {
            lines.push(Line::fail(
                TOKEN,
                format!("PagerDuty is unreachable: {err}"),
                format!(
                    "check outbound HTTPS to {} (PAGERDUTY_API_URL / pagerduty.api_url, proxies, \
                     firewall)",
                    config.pagerduty.api_url
                ),
            ));
            return lines;
        }
        Err(err) => {
            lines.push(Line::fail(
                TOKEN,
                err.to_string(),
                "retry; if it persists, check the token in PagerDuty",
            ));
            return lines;
        }
    }

    match &options.from {
        Some(email) => lines.push(user_by_email(&client, "From user", email, "--from").await),
        None => lines.push(Line::skip(
            "From user",
            "pass --from YOUR_PAGERDUTY_EMAIL to check that your own clicks will map",
        )),
    }
    for (slack, target) in config.identity.iter() {
        let subject = format!("[[identity]] {slack}");
        lines.push(match target {
            OverrideTarget::PdEmail(email) => {
                user_by_email(&client, &subject, email, "pd_email").await
            }
            OverrideTarget::PdUser(id) => user_by_id(&client, &subject, id).await,
        });
    }
    for admin in &config.policy.admins {
        match admin {
            AdminRef::Slack(_) => {}
            AdminRef::Email(email) => {
                lines.push(user_by_email(&client, "[policy] admin", email, "admins").await);
            }
            AdminRef::Pd(id) => lines.push(user_by_id(&client, "[policy] admin", id).await),
        }
    }

    let services: BTreeSet<&ServiceId> = config
        .routes
        .iter()
        .flat_map(|r| r.services.iter())
        .collect();
    for id in services {
        let subject = format!("[[route]] service {id}");
        lines.push(match client.get_service(id).await {
            Ok(service) => Line::pass(subject, format!("exists: {}", service.name)),
            Err(err) => resource_failure(
                config,
                subject,
                "service",
                "services",
                id.as_str(),
                &err,
                "services.read",
                "the id is the last part of the service's URL in PagerDuty \
                 (…/service-directory/PXXXXXX)",
            ),
        });
    }
    let teams: BTreeSet<&TeamId> = config.routes.iter().flat_map(|r| r.teams.iter()).collect();
    for id in teams {
        let subject = format!("[[route]] team {id}");
        lines.push(match client.get_team(id).await {
            Ok(team) => Line::pass(subject, format!("exists: {}", team.name)),
            Err(err) => resource_failure(
                config,
                subject,
                "team",
                "teams",
                id.as_str(),
                &err,
                "teams.read",
                "the id is the last part of the team's URL in PagerDuty (…/teams/PXXXXXX)",
            ),
        });
    }

    lines.extend(declare::declare(config, &client).await);
    lines.push(poll::polling(config, &client).await);
    if config.pagerduty.poll.mode.webhooks() {
        lines.push(subscription(config, &client, options.public_url.as_ref()).await);
    }
    lines
}

#[allow(clippy::too_many_arguments)]
fn resource_failure(
    config: &Config,
    subject: String,
    what: &str,
    plural: &str,
    id: &str,
    err: &pd_client::Error,
    scope: &str,
    where_ids_are: &str,
) -> Line {
    match err.status() {
        Some(404) => Line::fail(
            subject,
            format!("PagerDuty has no {what} {id}, so this route never matches"),
            format!("fix the id in [[route]] {plural}: {where_ids_are}"),
        ),
        Some(403) => Line::fail(
            subject,
            format!("the token may not read {plural} (403)"),
            grant(config, scope),
        ),
        Some(_) => Line::fail(subject, err.to_string(), "retry later"),
        None => Line::fail(subject, err.to_string(), "check connectivity to PagerDuty"),
    }
}

async fn user_by_email(client: &PdClient, subject: &str, email: &Email, key: &str) -> Line {
    match client.find_user_by_email(email).await {
        Ok(Some(user)) => Line::pass(
            subject,
            format!("{email} is PagerDuty user {} ({})", user.id, user.name),
        ),
        Ok(None) => Line::fail(
            subject,
            format!("no PagerDuty user has the login email {email}"),
            format!(
                "fix `{key}`, or add the person to PagerDuty with that email; clicks from them \
                 are refused until then"
            ),
        ),
        Err(err) => Line::fail(
            subject,
            format!("cannot look up {email}: {err}"),
            "the token needs users.read",
        ),
    }
}

async fn user_by_id(client: &PdClient, subject: &str, id: &PdUserId) -> Line {
    match client.get_user(id).await {
        Ok(user) => Line::pass(
            subject,
            format!("PagerDuty user {id} is {} <{}>", user.name, user.email),
        ),
        Err(err) if err.status() == Some(404) => Line::fail(
            subject,
            format!("PagerDuty has no user {id}"),
            "use the id from the user's PagerDuty URL (…/users/PXXXXXX), or pd_email instead",
        ),
        Err(err) => Line::fail(
            subject,
            format!("cannot read user {id}: {err}"),
            "the token needs users.read",
        ),
    }
}

async fn subscription(config: &Config, client: &PdClient, public_url: Option<&PublicUrl>) -> Line {
    const SUBJECT: &str = "PagerDuty webhook subscription";
    let Some(url) = public_url else {
        return Line::skip(
            SUBJECT,
            "pass --url https://your.public.host to check that PagerDuty delivers to pdbridge",
        );
    };
    let target = url.webhook();
    let subs = match client.list_webhook_subscriptions().await {
        Ok(s) => s,
        Err(err) => {
            return Line::fail(
                SUBJECT,
                format!("cannot list subscriptions: {err}"),
                grant(config, "webhook_subscriptions.read"),
            );
        }
    };
    let ours: Vec<_> = subs
        .iter()
        .filter(|s| s.delivery_method.url == target)
        .collect();
    if ours.is_empty() {
        return Line::fail(
            SUBJECT,
            format!("no subscription delivers to {target}"),
            format!(
                "run `pdbridge pd-subscribe --url {} --service ID` (or --team / --account) and \
                 store the secret it prints",
                url.as_str()
            ),
        );
    }
    let active: Vec<_> = ours
        .iter()
        .filter(|s| s.active && s.delivery_method.temporarily_disabled != Some(true))
        .collect();
    let Some(best) = active.first() else {
        let ids: Vec<&str> = ours.iter().map(|s| s.id.as_str()).collect();
        return Line::fail(
            SUBJECT,
            format!(
                "{} deliver(s) to {target} but PagerDuty has disabled delivery (three rejected \
                 deliveries in a row pause it for 24 hours)",
                ids.join(", ")
            ),
            format!(
                "fix the cause (usually PAGERDUTY_WEBHOOK_SECRETS), then re-enable: POST \
                 /webhook_subscriptions/{}/enable or the PagerDuty UI",
                ids[0]
            ),
        );
    };
    let missing: Vec<&str> = CONSUMED_EVENTS
        .iter()
        .filter(|e| !best.events.is_empty() && !best.events.contains(e))
        .map(EventType::as_str)
        .collect();
    if !missing.is_empty() {
        return Line::fail(
            SUBJECT,
            format!(
                "{} delivers to {target} but without {}",
                best.id,
                missing.join(", ")
            ),
            "create a complete one with `pdbridge pd-subscribe`, add its secret, then delete \
             the old one",
        );
    }
    let filter = match best.filter.kind.as_str() {
        "account_reference" => "the whole account".to_owned(),
        kind => format!(
            "{} {}",
            kind.trim_end_matches("_reference"),
            best.filter.id.as_deref().unwrap_or("?")
        ),
    };
    Line::pass(
        SUBJECT,
        format!("{} delivers to {target} for {filter}", best.id),
    )
}
