//! Table-driven tests of the authorization policy.

use identity::{
    Action, ActionContext, AdminRef, AskRule, Check, Decision, IncidentFacts, MappedUser,
    MappingOutcome, MappingSource, Policy, PolicyConfig, Refusal, Rule,
};
use ids::{
    ChannelId, Email, EscalationPolicyId, IncidentId, PdUserId, SlackTeamId, SlackUserId, TeamId,
};
use pretty_assertions::assert_eq;

fn user(pd: &str, teams: &[&str]) -> MappingOutcome {
    MappingOutcome::Mapped(MappedUser {
        slack_user: SlackUserId::new(format!("U{pd}")),
        pd_user: PdUserId::new(pd),
        email: Email::parse(&format!("{}@example.com", pd.to_lowercase())).unwrap(),
        name: pd.to_owned(),
        teams: teams.iter().map(|t| TeamId::new(*t)).collect(),
        role: None,
        source: MappingSource::VerifiedEmail,
    })
}

fn incident() -> IncidentFacts {
    let mut facts = IncidentFacts::new(IncidentId::new("Q1"));
    facts.teams = vec![TeamId::new("PINC")];
    facts.service_teams = vec![TeamId::new("PSVC")];
    facts.escalation_policy = Some(EscalationPolicyId::new("PEP"));
    facts.escalation_policy_teams = vec![TeamId::new("PEPT")];
    facts.assignees = vec![PdUserId::new("PASSIGNED")];
    facts.on_call = vec![PdUserId::new("PONCALL")];
    facts.card_channel = Some(ChannelId::new("CCARD"));
    facts
}

fn ctx(action: Action) -> ActionContext {
    ActionContext {
        action,
        slack_team: SlackTeamId::new("THOME"),
        channel: ChannelId::new("CCARD"),
    }
}

fn check(
    policy: &Policy,
    action: Action,
    who: &MappingOutcome,
    incident: &IncidentFacts,
) -> Decision {
    policy.authorize(&ctx(action), who, incident)
}

#[test]
fn default_rules() {
    let config = PolicyConfig::default();
    assert_eq!(config.rule(Action::Ack), Rule::AnyMapped);
    assert_eq!(config.rule(Action::Note), Rule::AnyMapped);
    assert_eq!(config.rule(Action::Reassign), Rule::TeamMember);
    assert_eq!(config.rule(Action::Escalate), Rule::TeamMember);
    assert_eq!(config.rule(Action::Resolve), Rule::TeamMember);
    assert_eq!(PolicyConfig::from_toml_str("").unwrap(), config);
    assert_eq!(PolicyConfig::from_toml_str("[policy]\n").unwrap(), config);
}

#[test]
fn rule_table() {
    let config = PolicyConfig::from_toml_str(
        r#"
[policy]
ack = "any_mapped"
note = "responder"
reassign = "team_member"
escalate = "admin"
resolve = "team_member"
admins = ["UPBOSS", "PADMIN", "Root@Example.com"]
"#,
    )
    .unwrap();
    let policy = Policy::new(config, Some(SlackTeamId::new("THOME")));
    let outsider = user("POUT", &["POTHER"]);
    let inc_team = user("PIN", &["PINC"]);
    let svc_team = user("PSV", &["POTHER", "PSVC"]);
    let ep_team = user("PEPM", &["PEPT"]);
    let assigned = user("PASSIGNED", &[]);
    let on_call = user("PONCALL", &[]);
    let admin_by_slack = user("PBOSS", &[]);
    let admin_by_pd = user("PADMIN", &[]);
    let admin_by_email = user("ROOT", &[]);

    let cases: Vec<(&str, Action, &MappingOutcome, bool, Check)> = vec![
        (
            "any_mapped allows an outsider to ack",
            Action::Ack,
            &outsider,
            true,
            Check::Rule(Rule::AnyMapped),
        ),
        (
            "team_member: incident team",
            Action::Resolve,
            &inc_team,
            true,
            Check::Rule(Rule::TeamMember),
        ),
        (
            "team_member: service team",
            Action::Resolve,
            &svc_team,
            true,
            Check::Rule(Rule::TeamMember),
        ),
        (
            "team_member: escalation policy team",
            Action::Reassign,
            &ep_team,
            true,
            Check::Rule(Rule::TeamMember),
        ),
        (
            "team_member: another team's incident cannot be resolved",
            Action::Resolve,
            &outsider,
            false,
            Check::Rule(Rule::TeamMember),
        ),
        (
            "team_member: an assignee outside the teams is not a member",
            Action::Resolve,
            &assigned,
            false,
            Check::Rule(Rule::TeamMember),
        ),
        (
            "responder: assignee",
            Action::Note,
            &assigned,
            true,
            Check::Rule(Rule::Responder),
        ),
        (
            "responder: on call on the EP",
            Action::Note,
            &on_call,
            true,
            Check::Rule(Rule::Responder),
        ),
        (
            "responder: team member who is not a responder",
            Action::Note,
            &inc_team,
            false,
            Check::Rule(Rule::Responder),
        ),
        (
            "admin rule refuses non-admins",
            Action::Escalate,
            &inc_team,
            false,
            Check::Rule(Rule::Admin),
        ),
        (
            "admin by Slack id",
            Action::Escalate,
            &admin_by_slack,
            true,
            Check::Admin,
        ),
        (
            "admin by PD id",
            Action::Escalate,
            &admin_by_pd,
            true,
            Check::Admin,
        ),
        (
            "admin by email, case-insensitive",
            Action::Escalate,
            &admin_by_email,
            true,
            Check::Admin,
        ),
        (
            "admins pass other rules too",
            Action::Resolve,
            &admin_by_pd,
            true,
            Check::Admin,
        ),
    ];
    for (name, action, who, allowed, decided_by) in cases {
        let decision = check(&policy, action, who, &incident());
        assert_eq!(decision.allowed, allowed, "{name}: {decision:?}");
        assert_eq!(decision.check, decided_by, "{name}: {decision:?}");
        assert_eq!(decision.action, action, "{name}");
        assert!(!decision.reason.is_empty(), "{name}");
    }
}

#[test]
fn default_policy_refuses_resolving_another_teams_incident() {
    let policy = Policy::new(PolicyConfig::default(), None);
    let outsider = user("POUT", &["POTHER"]);
    let decision = check(&policy, Action::Resolve, &outsider, &incident());
    assert!(!decision.allowed);
    assert_eq!(
        decision.reason,
        "Only members of incident Q1's teams (PEPT, PINC, PSVC) may resolve it; POUT is on none of them."
    );
    assert!(check(&policy, Action::Ack, &outsider, &incident()).allowed);
    assert!(check(&policy, Action::Note, &outsider, &incident()).allowed);
    assert!(!check(&policy, Action::Escalate, &outsider, &incident()).allowed);
    assert!(!check(&policy, Action::Reassign, &outsider, &incident()).allowed);
}

#[test]
fn team_member_on_a_teamless_incident_allows_any_mapped_user() {
    let policy = Policy::new(PolicyConfig::default(), None);
    let mut facts = incident();
    facts.teams.clear();
    facts.service_teams.clear();
    facts.escalation_policy_teams.clear();
    // No team anywhere: no team boundary to protect, responder or not.
    for who in [user("PASSIGNED", &[]), user("POUT", &["POTHER"])] {
        let d = check(&policy, Action::Resolve, &who, &facts);
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.check, Check::Rule(Rule::TeamMember), "{d:?}");
        assert!(d.reason.contains("has no team"), "{d:?}");
    }
    // One team anywhere (here only the escalation policy's) restores the boundary.
    facts.escalation_policy_teams.push(TeamId::new("PEP"));
    let d = check(&policy, Action::Resolve, &user("POUT", &["POTHER"]), &facts);
    assert!(!d.allowed, "{d:?}");
    // The `responder` rule is unchanged by teamlessness.
    let responders = Policy::new(
        PolicyConfig::from_toml_str("[policy]\nresolve = \"responder\"\n").unwrap(),
        None,
    );
    facts.escalation_policy_teams.clear();
    let d = check(
        &responders,
        Action::Resolve,
        &user("POUT", &["POTHER"]),
        &facts,
    );
    assert!(!d.allowed, "{d:?}");
}

#[test]
fn origin_and_mapping_refusals() {
    let policy = Policy::new(
        PolicyConfig::from_toml_str("[policy]\nadmins = [\"PADMIN\"]\n").unwrap(),
        Some(SlackTeamId::new("THOME")),
    );
    let admin = user("PADMIN", &["PINC"]);

    let mut wrong_team = ctx(Action::Ack);
    wrong_team.slack_team = SlackTeamId::new("TOTHER");
    let d = policy.authorize(&wrong_team, &admin, &incident());
    assert_eq!((d.allowed, d.check), (false, Check::Workspace), "{d:?}");
    assert!(d.reason.contains("TOTHER"), "{d:?}");

    let mut wrong_channel = ctx(Action::Ack);
    wrong_channel.channel = ChannelId::new("CELSE");
    let d = policy.authorize(&wrong_channel, &admin, &incident());
    assert_eq!((d.allowed, d.check), (false, Check::Channel), "{d:?}");
    assert!(d.reason.contains("<#CCARD>"), "{d:?}");

    let mut no_card = incident();
    no_card.card_channel = None;
    let d = policy.authorize(&ctx(Action::Ack), &admin, &no_card);
    assert_eq!((d.allowed, d.check), (false, Check::Channel), "{d:?}");

    let unmapped = MappingOutcome::Refused(Refusal::Guest {
        slack_user: SlackUserId::new("UG"),
    });
    let d = policy.authorize(&ctx(Action::Ack), &unmapped, &incident());
    assert_eq!((d.allowed, d.check), (false, Check::Mapping), "{d:?}");
    assert_eq!(
        d.reason,
        Refusal::Guest {
            slack_user: SlackUserId::new("UG")
        }
        .to_string()
    );

    let mut vouched = user("PCONNECT", &["PINC"]);
    if let MappingOutcome::Mapped(u) = &mut vouched {
        u.source = MappingSource::Override;
    }
    let d = policy.authorize(&wrong_team, &vouched, &incident());
    assert!(
        d.allowed,
        "an [[identity]] entry vouches for a Slack Connect user: {d:?}"
    );

    let any_workspace = Policy::new(PolicyConfig::default(), None);
    assert!(
        any_workspace
            .authorize(&wrong_team, &admin, &incident())
            .allowed
    );
}

#[test]
fn decisions_serialize_for_the_audit_log() {
    let policy = Policy::new(PolicyConfig::default(), None);
    let d = check(
        &policy,
        Action::Resolve,
        &user("PIN", &["PINC"]),
        &incident(),
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "action": "resolve",
            "allowed": true,
            "check": {"rule": "team_member"},
            "reason": "PIN is on team PINC of incident Q1."
        })
    );
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
}

#[test]
fn invalid_policy_values_name_the_key() {
    let cases = [
        (
            "[policy]\nresolve = \"everyone\"\n",
            &["resolve", "everyone", "line 2"][..],
        ),
        ("[policy]\nsnooze = \"admin\"\n", &["snooze"][..]),
        (
            "[policy]\nresolve = \"admin\"\n",
            &["policy.resolve", "admins list is empty"][..],
        ),
        (
            "[policy]\nadmins = [\"alice\"]\n",
            &["policy.admins", "\"alice\""][..],
        ),
        (
            "[policy]\nadmins = [\"a@\"]\n",
            &["policy.admins", "not an email"][..],
        ),
    ];
    for (source, needles) in cases {
        let text = PolicyConfig::from_toml_str(source).unwrap_err().to_string();
        for needle in needles {
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        }
    }
}

#[test]
fn admin_refs_parse_each_form() {
    let parse = |s: &str| AdminRef::try_from(s.to_owned()).unwrap();
    assert_eq!(parse("U123"), AdminRef::Slack(SlackUserId::new("U123")));
    assert_eq!(parse("W123"), AdminRef::Slack(SlackUserId::new("W123")));
    assert_eq!(parse("P123"), AdminRef::Pd(PdUserId::new("P123")));
    assert_eq!(
        parse("a@b.c"),
        AdminRef::Email(Email::parse("a@b.c").unwrap())
    );
}

/// Every action is a PagerDuty mutation, which observers and stakeholders may not make:
/// refused with the role named and how to fix it, even for a pdbridge admin.
#[test]
fn read_only_pagerduty_roles_are_refused_for_every_action() {
    let config = PolicyConfig::from_toml_str("[policy]\nadmins = [\"PBOSS\"]\n").unwrap();
    let policy = Policy::new(config, Some(SlackTeamId::new("THOME")));
    let with_role = |pd: &str, role: Option<&str>| {
        let mut who = user(pd, &["PINC"]);
        if let MappingOutcome::Mapped(u) = &mut who {
            u.role = role.map(str::to_owned);
        }
        who
    };
    for role in identity::READ_ONLY_ROLES {
        for pd in ["PMEMBER", "PBOSS"] {
            for action in Action::ALL {
                let d = check(&policy, action, &with_role(pd, Some(role)), &incident());
                assert!(!d.allowed, "{role} {pd} {action}");
                assert_eq!(d.check, Check::Role);
                assert!(d.reason.contains(role), "{}", d.reason);
                assert!(d.reason.contains("ask a PagerDuty admin"), "{}", d.reason);
            }
        }
    }
    for role in [
        None,
        Some("user"),
        Some("limited_user"),
        Some("restricted_access"),
    ] {
        let d = check(
            &policy,
            Action::Resolve,
            &with_role("PMEMBER", role),
            &incident(),
        );
        assert!(d.allowed, "{role:?}: {}", d.reason);
    }
}

#[test]
fn only_mapped_users_of_the_home_workspace_may_read_incident_details() {
    let policy = Policy::new(PolicyConfig::default(), Some(SlackTeamId::new("THOME")));
    let home = SlackTeamId::new("THOME");
    assert_eq!(policy.authorize_view(&home, &user("PIN", &[])), Ok(()));
    let guest = MappingOutcome::Refused(Refusal::Guest {
        slack_user: SlackUserId::new("UG"),
    });
    let why = policy
        .authorize_view(&home, &guest)
        .unwrap_err()
        .to_string();
    assert!(why.contains("guest"), "{why}");
    let other = policy
        .authorize_view(&SlackTeamId::new("TOTHER"), &user("PIN", &[]))
        .unwrap_err()
        .to_string();
    assert!(
        other.contains("TOTHER") && other.contains("THOME"),
        "{other}"
    );
    assert_eq!(
        other,
        "This command came from Slack workspace TOTHER, but pdbridge only answers THOME."
    );
    let any_workspace = Policy::new(PolicyConfig::default(), None);
    assert_eq!(
        any_workspace.authorize_view(&SlackTeamId::new("TOTHER"), &user("PIN", &[])),
        Ok(())
    );
}

#[test]
fn workspace_members_without_a_pagerduty_seat_may_ask_who_is_on_call_but_guests_may_not() {
    let home = SlackTeamId::new("THOME");
    let policy = Policy::new(PolicyConfig::default(), Some(home.clone()));
    assert_eq!(PolicyConfig::default().oncall, AskRule::WorkspaceMember);
    let no_seat = MappingOutcome::Refused(Refusal::NoPdUserWithEmail {
        slack_user: SlackUserId::new("UNOSEAT"),
        email: Email::parse("nos@example.com").unwrap(),
    });
    assert_eq!(policy.authorize_oncall(&home, &no_seat), Ok(()));
    assert_eq!(policy.authorize_oncall(&home, &user("PIN", &[])), Ok(()));
    let guest = MappingOutcome::Refused(Refusal::Guest {
        slack_user: SlackUserId::new("UG"),
    });
    let why = policy
        .authorize_oncall(&home, &guest)
        .unwrap_err()
        .to_string();
    assert!(why.contains("guest"), "{why}");
    let bot = MappingOutcome::Refused(Refusal::Bot {
        slack_user: SlackUserId::new("UB"),
    });
    assert!(policy.authorize_oncall(&home, &bot).is_err());
    assert!(
        policy
            .authorize_oncall(&SlackTeamId::new("TOTHER"), &no_seat)
            .is_err()
    );

    let mapped_only = Policy::new(
        PolicyConfig::from_toml_str("[policy]\noncall = \"any_mapped\"\n").unwrap(),
        Some(home.clone()),
    );
    assert!(mapped_only.authorize_oncall(&home, &no_seat).is_err());
    assert_eq!(
        mapped_only.authorize_oncall(&home, &user("PIN", &[])),
        Ok(())
    );
    assert!(PolicyConfig::from_toml_str("[policy]\noncall = \"admin\"\n").is_err());
    assert!(PolicyConfig::from_toml_str("[policy]\noncall = \"everyone\"\n").is_err());
}
