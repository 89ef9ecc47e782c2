//! The facts behind the `team_member` rule: `Identity::actor` reads the teams of the incident's
//! escalation policy (and service) from PagerDuty, caches them per incident, and never allows
//! an action when they cannot be read. PagerDuty is a small loopback stub that answers only the
//! reads the rule makes and fails one escalation policy with a 500, so each test counts reads by
//! path; Slack is the fake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fakes::http::{RecordedRequest, Reply, Server};
use fakes::slack::{FakeSlack, FakeUser};
use http::StatusCode;
use identity::IncidentFacts;
use ids::{ChannelId, EscalationPolicyId, IncidentId, ServiceId, SlackUserId, TeamId};
use pd_client::PdClient;
use pdbridge::identity::{ActorRequest, Identity, KnownIncident, ResolvedActor};
use pdbridge::world::WorldConfig;
use serde_json::{Value, json};
use slack_client::SlackClient;
use store::Store;
use sync_core::{ActionKind, Actor};

const ALICE: &str = "U1ALICE";
const CHANNEL: &str = "C0INC";

fn team_refs(teams: &[&str]) -> Value {
    teams
        .iter()
        .map(|t| json!({"id": t, "type": "team_reference", "summary": t}))
        .collect()
}

/// A PagerDuty stub: Alice (`PALICE`, team `PTEAMA`), escalation policies `PEPA` (team
/// `PTEAMA`), `PEPB` (team `PTEAMB`) and `PEPNONE` (no team), services `PSVCA` (team
/// `PTEAMA`), `PSVCB` (team `PTEAMB`) and `PSVCNONE` (no team), no on-calls. `PEPDOWN`
/// answers 500.
fn stub(req: RecordedRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> {
    let ep = |id: &str, teams: &[&str]| {
        json!({"escalation_policy": {
            "id": id, "type": "escalation_policy", "name": id,
            "escalation_rules": [], "num_loops": 0, "teams": team_refs(teams), "services": []
        }})
    };
    let service = |id: &str, teams: &[&str]| {
        json!({"service": {
            "id": id, "type": "service", "name": id, "summary": id,
            "status": "active", "teams": team_refs(teams)
        }})
    };
    let ok = |v: Value| Reply::json(StatusCode::OK, &v);
    let reply = match req.path.as_str() {
        "/users/PALICE" => ok(json!({"user": {
            "id": "PALICE", "type": "user", "name": "Alice Example",
            "email": "alice@example.com", "teams": team_refs(&["PTEAMA"])
        }})),
        "/escalation_policies/PEPA" => ok(ep("PEPA", &["PTEAMA"])),
        "/escalation_policies/PEPB" => ok(ep("PEPB", &["PTEAMB"])),
        "/escalation_policies/PEPNONE" => ok(ep("PEPNONE", &[])),
        "/services/PSVCA" => ok(service("PSVCA", &["PTEAMA"])),
        "/services/PSVCB" => ok(service("PSVCB", &["PTEAMB"])),
        "/services/PSVCNONE" => ok(service("PSVCNONE", &[])),
        "/oncalls" => ok(json!({"oncalls": [], "limit": 100, "offset": 0, "more": false})),
        "/escalation_policies/PEPDOWN" => Reply::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": {"message": "boom", "code": 2001}}),
        ),
        _ => Reply::json(
            StatusCode::NOT_FOUND,
            &json!({"error": {"message": "Not Found", "code": 2100}}),
        ),
    };
    Box::pin(async move { reply })
}

struct Env {
    pd: Server,
    slack: FakeSlack,
    identity: Identity,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Self {
        let pd = Server::spawn(Arc::new(stub)).await.unwrap();
        let slack = FakeSlack::start().await;
        slack.add_user(FakeUser::new(ALICE, "alice", "alice@example.com"));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let identity = format!("[[identity]]\nslack_user = \"{ALICE}\"\npd_user = \"PALICE\"\n");
        let config = WorldConfig {
            database: Some(&db),
            pd_credentials: r#"token = "t""#.to_owned(),
            webhook_secrets: &["w"],
            signing_secret: "s",
            default_channel: CHANNEL,
            extra: &identity,
            ..WorldConfig::with_slack(pd.url(), &slack)
        }
        .config()
        .unwrap();
        let pd_client = PdClient::new(pdbridge::clients::pd_config(&config)).unwrap();
        let slack_config = pdbridge::clients::slack_config(&config, slack.team_id());
        let slack_client = SlackClient::new(slack_config).unwrap();
        let store = Arc::new(Store::open(&db).unwrap());
        let identity = Identity::new(
            &config,
            pd_client,
            slack_client,
            Some(slack.team_id()),
            store,
        );
        Self {
            pd,
            slack,
            identity,
            _dir: dir,
        }
    }

    /// Resolves Alice's Resolve (default rule `team_member`) on `incident`.
    async fn resolve(
        &self,
        incident: &str,
        teams: &[&str],
        ep: Option<&str>,
        service: Option<&str>,
        now_ms: i64,
    ) -> ResolvedActor {
        let incident = IncidentId::new(incident);
        let mut facts = IncidentFacts::new(incident.clone());
        facts.teams = teams.iter().map(|t| TeamId::new(*t)).collect();
        facts.escalation_policy = ep.map(EscalationPolicyId::new);
        facts.card_channel = Some(ChannelId::new(CHANNEL));
        let team = self.slack.team_id();
        self.identity
            .actor(ActorRequest {
                slack_user: &SlackUserId::new(ALICE),
                team: Some(&team),
                channel: Some(&ChannelId::new(CHANNEL)),
                kind: &ActionKind::Resolve,
                incident: &incident,
                known: Some(KnownIncident {
                    facts,
                    service: service.map(ServiceId::new),
                }),
                now: ids::Timestamp::from_millis(now_ms),
            })
            .await
    }

    fn reads_of(&self, path: &str) -> usize {
        self.pd.requests().iter().filter(|r| r.path == path).count()
    }
}

fn allowed(r: &ResolvedActor) -> bool {
    matches!(&r.actor, Actor::Mapped { authorized, .. } if authorized.is_ok())
}

const NOW: i64 = 1_800_000_000_000;

#[tokio::test]
async fn team_member_counts_the_escalation_policy_team_and_caches_it_per_incident() {
    let env = Env::new().await;
    // The incident has no team of its own; its escalation policy belongs to Alice's team.
    let r = env.resolve("Q1", &[], Some("PEPA"), None, NOW).await;
    assert!(allowed(&r), "{}", r.decision);
    assert!(r.decision.contains("PTEAMA"), "{}", r.decision);
    // A second action on the same incident within the TTL reuses the teams.
    let r = env
        .resolve("Q1", &[], Some("PEPA"), None, NOW + 1_000)
        .await;
    assert!(allowed(&r), "{}", r.decision);
    assert_eq!(env.reads_of("/escalation_policies/PEPA"), 1);
    // After the TTL they are read again.
    let ttl = i64::try_from(pdbridge::identity::TEAM_FACTS_TTL.as_millis()).unwrap();
    let later = NOW + ttl + 1;
    env.resolve("Q1", &[], Some("PEPA"), None, later).await;
    assert_eq!(env.reads_of("/escalation_policies/PEPA"), 2);
}

#[tokio::test]
async fn another_teams_escalation_policy_is_refused() {
    let env = Env::new().await;
    let r = env.resolve("Q2", &[], Some("PEPB"), None, NOW).await;
    assert!(!allowed(&r), "{}", r.decision);
    assert!(r.decision.starts_with("refused") && r.decision.contains("PTEAMB"));
    assert!(r.lookup_failed.is_none());
}

#[tokio::test]
async fn a_member_of_the_incidents_own_team_needs_no_reads() {
    let env = Env::new().await;
    let r = env
        .resolve("Q3", &["PTEAMA"], Some("PEPB"), None, NOW)
        .await;
    assert!(allowed(&r), "{}", r.decision);
    assert_eq!(env.reads_of("/escalation_policies/PEPB"), 0);
}

#[tokio::test]
async fn unreadable_teams_are_a_lookup_failure_never_an_allow() {
    let env = Env::new().await;
    let r = env.resolve("Q4", &[], Some("PEPDOWN"), None, NOW).await;
    assert!(!allowed(&r), "{}", r.decision);
    assert!(r.lookup_failed.is_some(), "worth retrying: {}", r.decision);
}

#[tokio::test]
async fn team_member_counts_the_service_team() {
    let env = Env::new().await;
    // Neither the incident nor its policy has a team; its service belongs to Alice's team.
    let r = env
        .resolve("Q5", &[], Some("PEPNONE"), Some("PSVCA"), NOW)
        .await;
    assert!(allowed(&r), "{}", r.decision);
    assert!(r.decision.contains("PTEAMA"), "{}", r.decision);
    // Another team's service: refused.
    let r = env
        .resolve("Q6", &[], Some("PEPNONE"), Some("PSVCB"), NOW)
        .await;
    assert!(!allowed(&r), "{}", r.decision);
    assert!(r.decision.contains("PTEAMB"), "{}", r.decision);
    assert_eq!(env.reads_of("/services/PSVCA"), 1);
}

#[tokio::test]
async fn a_teamless_incident_may_be_resolved_by_any_mapped_user() {
    let env = Env::new().await;
    // No team on the incident, its policy or its service: Alice is no responder, yet allowed.
    let r = env
        .resolve("Q7", &[], Some("PEPNONE"), Some("PSVCNONE"), NOW)
        .await;
    assert!(allowed(&r), "{}", r.decision);
    assert!(r.decision.contains("has no team"), "{}", r.decision);
    // Another team's incident stays refused by default.
    let r = env.resolve("Q8", &["PTEAMB"], None, None, NOW).await;
    assert!(!allowed(&r), "{}", r.decision);
}
