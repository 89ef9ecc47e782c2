//! Table-driven tests of the pure mapping decision and the override table.

use identity::{
    Error, MappedUser, MappingOutcome, MappingSource, OverrideEntry, OverrideTarget, Overrides,
    PdUserFacts, Refusal, SlackUserFacts, decide_mapping,
};
use ids::{Email, PdUserId, SlackTeamId, SlackUserId, TeamId};
use pretty_assertions::assert_eq;

const HOME: &str = "T0HOME";

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn slack(id: &str, mail: Option<&str>) -> SlackUserFacts {
    SlackUserFacts::member(
        SlackUserId::new(id),
        SlackTeamId::new(HOME),
        mail.map(email),
    )
}

fn pd(id: &str, mail: &str) -> PdUserFacts {
    PdUserFacts {
        id: PdUserId::new(id),
        email: email(mail),
        name: format!("User {id}"),
        role: Some("user".to_owned()),
        deactivated: false,
        teams: vec![TeamId::new("PTEAM1")],
    }
}

/// The PagerDuty account every case runs against. `PALICE2` has an email that merely contains
/// Alice's, the way `GET /users?query=` returns partial matches.
fn pd_users() -> Vec<PdUserFacts> {
    let mut gone = pd("PGONE", "gone@example.com");
    gone.deactivated = true;
    vec![
        pd("PALICE", "Alice@Example.com"),
        pd("PALICE2", "malice@example.com.evil"),
        pd("PBOB", "bob@example.com"),
        pd("PSHARED", "oncall-bot@example.com"),
        gone,
    ]
}

fn overrides() -> Overrides {
    Overrides::from_toml_str(
        r#"
[[identity]]
slack_user = "UGUEST"
pd_user = "PBOB"

[[identity]]
slack_user = "UCONNECT"
pd_email = "BOB@example.com"

[[identity]]
slack_user = "UOVERRIDE"
pd_user = "PBOB"

[[identity]]
slack_user = "UBADID"
pd_user = "PNOSUCH"

[[identity]]
slack_user = "UBADMAIL"
pd_email = "nobody@example.com"

[[identity]]
slack_user = "UTOGONE"
pd_user = "PGONE"

[[identity]]
slack_user = "UBOT"
pd_user = "PSHARED"
"#,
    )
    .unwrap()
}

enum Want {
    Mapped(&'static str, MappingSource),
    Refused(&'static str),
}

#[test]
fn mapping_table() {
    let mut bot = slack("UBOT", Some("oncall-bot@example.com"));
    bot.is_bot = true;
    let mut deleted = slack("UDELETED", Some("bob@example.com"));
    deleted.deleted = true;
    let mut guest = slack("UGUEST", Some("bob@example.com"));
    guest.is_restricted = true;
    let mut guest_unmapped = slack("UGUEST2", Some("bob@example.com"));
    guest_unmapped.is_restricted = true;
    let mut single_guest = slack("UGUEST3", Some("bob@example.com"));
    single_guest.is_ultra_restricted = true;
    let mut connect = slack("UCONNECT", Some("bob@partner.example"));
    connect.team_id = SlackTeamId::new("T0OTHER");
    let mut connect_unmapped = slack("UCONNECT2", Some("bob@example.com"));
    connect_unmapped.team_id = SlackTeamId::new("T0OTHER");

    let cases: Vec<(&str, Option<SlackUserFacts>, Want)> = vec![
        (
            "verified email maps to the PD user with exactly that email",
            Some(slack("UALICE", Some("Alice@Example.com"))),
            Want::Mapped("PALICE", MappingSource::VerifiedEmail),
        ),
        (
            "an email differing only in case maps",
            Some(slack("UALICE", Some("aLiCe@eXaMpLe.CoM"))),
            Want::Mapped("PALICE", MappingSource::VerifiedEmail),
        ),
        (
            "a partial match does not map (prefix of another user's email)",
            Some(slack("UAL", Some("alice@example.co"))),
            Want::Refused("no_pd_user_with_email"),
        ),
        (
            "a partial match does not map (substring of another user's email)",
            Some(slack("UAL", Some("lice@example.com"))),
            Want::Refused("no_pd_user_with_email"),
        ),
        (
            "unknown Slack user",
            None,
            Want::Refused("slack_user_not_found"),
        ),
        ("bots are refused", Some(bot), Want::Refused("bot")),
        (
            "deleted users are refused",
            Some(deleted),
            Want::Refused("slack_user_deleted"),
        ),
        (
            "a mapped guest maps through the override",
            Some(guest),
            Want::Mapped("PBOB", MappingSource::Override),
        ),
        (
            "an unmapped multi-channel guest is refused",
            Some(guest_unmapped),
            Want::Refused("guest"),
        ),
        (
            "an unmapped single-channel guest is refused",
            Some(single_guest),
            Want::Refused("guest"),
        ),
        (
            "a mapped Slack Connect user maps through pd_email",
            Some(connect),
            Want::Mapped("PBOB", MappingSource::Override),
        ),
        (
            "an unmapped Slack Connect user is refused",
            Some(connect_unmapped),
            Want::Refused("foreign_team"),
        ),
        (
            "no verified email",
            Some(slack("UNOMAIL", None)),
            Want::Refused("no_email"),
        ),
        (
            "no PD user with that email",
            Some(slack("UCAROL", Some("carol@example.com"))),
            Want::Refused("no_pd_user_with_email"),
        ),
        (
            "deactivated PD user found by email",
            Some(slack("UGONE", Some("gone@example.com"))),
            Want::Refused("pd_user_deactivated"),
        ),
        (
            "override beats email",
            Some(slack("UOVERRIDE", Some("Alice@Example.com"))),
            Want::Mapped("PBOB", MappingSource::Override),
        ),
        (
            "override to an unknown PD user id",
            Some(slack("UBADID", Some("Alice@Example.com"))),
            Want::Refused("override_target_not_found"),
        ),
        (
            "override to an unknown PD email",
            Some(slack("UBADMAIL", Some("Alice@Example.com"))),
            Want::Refused("override_target_not_found"),
        ),
        (
            "override to a deactivated PD user",
            Some(slack("UTOGONE", Some("Alice@Example.com"))),
            Want::Refused("pd_user_deactivated"),
        ),
    ];

    let table = overrides();
    let home = SlackTeamId::new(HOME);
    for (name, facts, want) in cases {
        let id = facts
            .as_ref()
            .map_or(SlackUserId::new("UMISSING"), |f| f.id.clone());
        let outcome = decide_mapping(&table, Some(&home), &id, facts.as_ref(), &pd_users());
        match (want, &outcome) {
            (Want::Mapped(pd_user, source), MappingOutcome::Mapped(user)) => {
                assert_eq!(user.pd_user.as_str(), pd_user, "{name}");
                assert_eq!(user.source, source, "{name}");
                assert_eq!(user.slack_user, id, "{name}");
            }
            (Want::Refused(code), MappingOutcome::Refused(refusal)) => {
                assert_eq!(refusal.code(), code, "{name}: {refusal}");
                assert_eq!(refusal.slack_user(), &id, "{name}");
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn mapped_user_carries_pagerduty_spelling_of_email_for_from_header() {
    let outcome = decide_mapping(
        &Overrides::new(),
        None,
        &SlackUserId::new("UALICE"),
        Some(&slack("UALICE", Some("alice@example.com"))),
        &pd_users(),
    );
    assert_eq!(
        outcome,
        MappingOutcome::Mapped(MappedUser {
            slack_user: SlackUserId::new("UALICE"),
            pd_user: PdUserId::new("PALICE"),
            email: email("Alice@Example.com"),
            name: "User PALICE".to_owned(),
            teams: vec![TeamId::new("PTEAM1")],
            role: Some("user".to_owned()),
            source: MappingSource::VerifiedEmail,
        })
    );
    let MappingOutcome::Mapped(user) = outcome else {
        unreachable!()
    };
    assert_eq!(user.email.as_str(), "Alice@Example.com");
}

#[test]
fn workspace_check_skipped_when_no_home_team() {
    let mut connect = slack("UCONNECT2", Some("bob@example.com"));
    connect.team_id = SlackTeamId::new("T0OTHER");
    let outcome = decide_mapping(
        &Overrides::new(),
        None,
        &connect.id.clone(),
        Some(&connect),
        &pd_users(),
    );
    assert_eq!(outcome.mapped().unwrap().pd_user.as_str(), "PBOB");
}

#[test]
fn two_pd_users_with_one_email_are_refused_not_guessed() {
    let users = vec![pd("PONE", "dup@example.com"), pd("PTWO", "DUP@example.com")];
    let outcome = decide_mapping(
        &Overrides::new(),
        None,
        &SlackUserId::new("UDUP"),
        Some(&slack("UDUP", Some("dup@example.com"))),
        &users,
    );
    assert_eq!(outcome.refusal().unwrap().code(), "ambiguous_pd_email");
}

#[test]
fn refusal_messages_are_actionable() {
    let u = SlackUserId::new("U1");
    let cases = [
        (
            Refusal::Guest {
                slack_user: u.clone(),
            },
            "[[identity]] entry for U1",
        ),
        (
            Refusal::NoPdUserWithEmail {
                slack_user: u.clone(),
                email: email("a@b.c"),
            },
            "No PagerDuty user has the email a@b.c",
        ),
        (
            Refusal::OverrideTargetNotFound {
                slack_user: u.clone(),
                target: OverrideTarget::PdUser(PdUserId::new("PX")),
            },
            "points at pd_user = \"PX\"",
        ),
        (
            Refusal::PdUserDeactivated {
                slack_user: u.clone(),
                pd_user: PdUserId::new("PX"),
            },
            "PagerDuty user PX (mapped from U1) is deactivated",
        ),
        (
            Refusal::NoEmail {
                slack_user: u.clone(),
            },
            "users:read.email",
        ),
    ];
    for (refusal, needle) in cases {
        let text = refusal.to_string();
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}

#[test]
fn refusals_round_trip_through_json() {
    let refusal = Refusal::ForeignTeam {
        slack_user: SlackUserId::new("U1"),
        user_team: SlackTeamId::new("T2"),
        home_team: SlackTeamId::new("T1"),
    };
    let json = serde_json::to_string(&refusal).unwrap();
    assert_eq!(
        json,
        r#"{"code":"foreign_team","slack_user":"U1","user_team":"T2","home_team":"T1"}"#
    );
    assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), refusal);
}

#[test]
fn invalid_override_entries_are_rejected_naming_entry_field_and_value() {
    let cases = [
        (
            "[[identity]]\nslack_user = \"U1\"\npd_user = \"P1\"\n\n[[identity]]\nslack_user = \"U2\"\npd_user = \"P2\"\npd_email = \"b@example.com\"\n",
            &[
                "identity[1].pd_user",
                "slack_user = \"U2\"",
                "exactly one",
                "line 5",
            ][..],
        ),
        (
            "[[identity]]\nslack_user = \"U1\"\n",
            &["identity[0].pd_user", "neither", "line 1"][..],
        ),
        (
            "[[identity]]\nslack_user = \"U1\"\npd_email = \"not-an-email\"\n",
            &[
                "identity[0].pd_email",
                "\"not-an-email\" is not an email address",
            ][..],
        ),
        (
            "[[identity]]\nslack_user = \"alice\"\npd_user = \"P1\"\n",
            &["identity[0].slack_user", "\"alice\" is not a Slack user id"][..],
        ),
        (
            "[[identity]]\nslack_user = \"U1\"\npd_user = \"alice\"\n",
            &[
                "identity[0].pd_user",
                "\"alice\" is not a PagerDuty user id",
            ][..],
        ),
        (
            "[[identity]]\nslack_user = \"U1\"\npd_user = \"P1\"\n[[identity]]\nslack_user = \"U1\"\npd_user = \"P2\"\n",
            &["identity[1].slack_user", "duplicates entry #0"][..],
        ),
        (
            "[[identity]]\nslack_user = \"U1\"\npd_mail = \"a@b.c\"\n",
            &["pd_mail", "line 3"][..],
        ),
        ("[[identity]]\npd_user = \"P1\"\n", &["slack_user"][..]),
    ];
    for (source, needles) in cases {
        let err = Overrides::from_toml_str(source).unwrap_err();
        let text = err.to_string();
        for needle in needles {
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        }
    }
}

#[test]
fn overrides_from_entries_reports_structured_error() {
    let err = Overrides::from_entries(vec![
        OverrideEntry::new(
            SlackUserId::new("U1"),
            OverrideTarget::PdUser(PdUserId::new("P1")),
        ),
        OverrideEntry {
            slack_user: SlackUserId::new("U2"),
            pd_user: None,
            pd_email: Some(Email::new("nope")),
        },
    ])
    .unwrap_err();
    match err {
        Error::InvalidOverride {
            index,
            slack_user,
            field,
            ..
        } => {
            assert_eq!(index, 1);
            assert_eq!(slack_user.as_deref(), Some("U2"));
            assert_eq!(field, "pd_email");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn overrides_list_add_remove_and_round_trip() {
    let mut table = overrides();
    assert_eq!(table.len(), 7);
    let previous = table
        .insert(OverrideEntry::new(
            SlackUserId::new("UBOT"),
            OverrideTarget::PdEmail(email("bob@example.com")),
        ))
        .unwrap();
    assert_eq!(
        previous,
        Some(OverrideTarget::PdUser(PdUserId::new("PSHARED")))
    );
    assert!(
        table
            .insert(OverrideEntry::new(
                SlackUserId::new("bad"),
                OverrideTarget::PdUser(PdUserId::new("P1"))
            ))
            .is_err()
    );
    assert!(table.remove(&SlackUserId::new("UGUEST")).is_some());
    assert_eq!(table.len(), 6);

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Doc {
        identity: Overrides,
    }
    let text = toml::to_string(&Doc {
        identity: table.clone(),
    })
    .unwrap();
    assert_eq!(Overrides::from_toml_str(&text).unwrap(), table);
    let first = &table.to_entries()[0];
    assert_eq!(first.slack_user.as_str(), "UBADID");
}

#[test]
fn empty_document_means_no_overrides() {
    assert!(
        Overrides::from_toml_str("[server]\nlisten = \"x\"\n")
            .unwrap()
            .is_empty()
    );
}
