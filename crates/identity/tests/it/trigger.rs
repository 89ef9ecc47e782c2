//! `[policy] trigger`: who may declare an incident, per service.

use identity::{
    Action, Check, MappedUser, MappingOutcome, MappingSource, Policy, PolicyConfig, Refusal, Rule,
    ServiceFacts, TriggerRule,
};
use ids::{Email, PdUserId, ServiceId, SlackTeamId, SlackUserId, TeamId};

fn user(pd: &str, teams: &[&str], role: Option<&str>) -> MappingOutcome {
    MappingOutcome::Mapped(MappedUser {
        slack_user: SlackUserId::new(format!("U{pd}")),
        pd_user: PdUserId::new(pd),
        email: Email::parse(&format!("{}@example.com", pd.to_lowercase())).unwrap(),
        name: pd.to_owned(),
        teams: teams.iter().map(|t| TeamId::new(*t)).collect(),
        role: role.map(str::to_owned),
        source: MappingSource::VerifiedEmail,
    })
}

fn service(name: &str, teams: &[&str], on_call: &[&str]) -> ServiceFacts {
    ServiceFacts {
        name: name.to_owned(),
        id: ServiceId::new(format!("P{}", name.to_uppercase())),
        teams: teams.iter().map(|t| TeamId::new(*t)).collect(),
        on_call: on_call.iter().map(|u| PdUserId::new(*u)).collect(),
    }
}

fn policy(toml: &str) -> Policy {
    Policy::new(
        PolicyConfig::from_toml_str(toml).unwrap(),
        Some(SlackTeamId::new("THOME")),
    )
}

#[test]
fn the_default_lets_any_mapped_user_declare_and_refuses_the_rest() {
    let policy = policy("");
    assert_eq!(policy.config().trigger, TriggerRule::All(Rule::AnyMapped));
    let home = SlackTeamId::new("THOME");
    let d = policy.authorize_trigger(&home, &user("PA", &[], None), &service("db", &["PT"], &[]));
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.action, Action::Trigger);

    let unmapped = MappingOutcome::Refused(Refusal::Bot {
        slack_user: SlackUserId::new("UBOT"),
    });
    let d = policy.authorize_trigger(&home, &unmapped, &service("db", &[], &[]));
    assert!(!d.allowed);
    assert_eq!(d.check, Check::Mapping);

    let observer = user("PO", &[], Some("observer"));
    let d = policy.authorize_trigger(&home, &observer, &service("db", &[], &[]));
    assert_eq!(d.check, Check::Role);

    let d = policy.authorize_trigger(
        &SlackTeamId::new("TOTHER"),
        &user("PA", &[], None),
        &service("db", &[], &[]),
    );
    assert_eq!(d.check, Check::Workspace);
}

#[test]
fn per_service_rules_apply_with_a_fallback() {
    let policy = policy(
        "[policy]\ntrigger = { db = \"responder\", web = \"team_member\", \"*\" = \"admin\" }\nadmins = [\"PBOSS\"]\n",
    );
    let home = SlackTeamId::new("THOME");
    let alice = user("PA", &["PWEBT"], None);
    let db = service("db", &[], &["PONCALL"]);
    assert!(!policy.authorize_trigger(&home, &alice, &db).allowed);
    assert!(
        policy
            .authorize_trigger(&home, &user("PONCALL", &[], None), &db)
            .allowed
    );
    let web = service("web", &["PWEBT"], &[]);
    assert!(policy.authorize_trigger(&home, &alice, &web).allowed);
    let d = policy.authorize_trigger(&home, &alice, &service("api", &[], &[]));
    assert!(!d.allowed);
    assert_eq!(d.check, Check::Rule(Rule::Admin));
    let d = policy.authorize_trigger(&home, &user("PBOSS", &[], None), &service("api", &[], &[]));
    assert_eq!(d.check, Check::Admin);
    let names: Vec<&str> = policy.config().trigger.service_names().collect();
    assert_eq!(names, ["db", "web"]);
}

#[test]
fn an_admin_trigger_rule_needs_admins() {
    let err = PolicyConfig::from_toml_str("[policy]\ntrigger = \"admin\"\n").unwrap_err();
    assert!(err.to_string().contains("trigger"), "{err}");
    assert!(PolicyConfig::from_toml_str("[policy]\ntrigger = \"sometimes\"\n").is_err());
}
