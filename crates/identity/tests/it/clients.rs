//! The resolver over the real clients, against the in-process fake Slack and fake PagerDuty.

use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeSlack, FakeUser, Fault};
use identity::clients::ClientDirectory;
use identity::{Error, MappingSource, MemoryCache, Overrides, Resolver, ResolverConfig};
use ids::{PdUserId, SlackUserId};
use pd_client::{Auth, PdClient, Secret};
use slack_client::{BotToken, SlackClient, SlackConfig};
use url::Url;

use crate::{T0, minutes};

struct World {
    pd: FakePagerDuty,
    slack: FakeSlack,
    resolver: Resolver<ClientDirectory, MemoryCache>,
}

impl World {
    fn requests(&self) -> usize {
        self.pd.requests().len() + self.slack.requests().len()
    }
}

fn slack_user(id: &str, email: Option<&str>, edit: impl FnOnce(&mut FakeUser)) -> FakeUser {
    let mut user = FakeUser::new(id, &id.to_lowercase(), email.unwrap_or("x@example.com"));
    if email.is_none() {
        user.email = None;
    }
    edit(&mut user);
    user
}

async fn world(overrides: &str) -> World {
    let pd = FakePagerDuty::start().await;
    pd.add_user("PALICE", "Alice", "alice@example.com");
    pd.add_user("PBOB", "Bob", "bob@example.com");

    let slack = FakeSlack::start().await;
    for user in [
        slack_user("UALICE", Some("Alice@Example.COM"), |_| {}),
        slack_user("UBOB", Some("bob@example.com"), |_| {}),
        slack_user("UPARTIAL", Some("lice@example.com"), |_| {}),
        slack_user("UCAROL", Some("carol@example.com"), |_| {}),
        slack_user("UNOMAIL", None, |_| {}),
        slack_user("UBOT", Some("bob@example.com"), |u| u.is_bot = true),
        slack_user("UGONE", Some("bob@example.com"), |u| u.deleted = true),
        slack_user("UGUEST", Some("guest@example.com"), |u| {
            u.is_restricted = true
        }),
        slack_user("UGUEST2", Some("bob@example.com"), |u| {
            u.is_ultra_restricted = true
        }),
        slack_user("UBAD", Some("bad@example.com"), |_| {}),
    ] {
        slack.add_user(user);
    }

    let mut pd_config = pd_client::Config::new(Auth::Token(Secret::new("fake-pd-token")));
    pd_config.base_url = Url::parse(&pd.url()).unwrap();
    pd_config.retry.max_attempts = 1;
    let pd_client = PdClient::new(pd_config).unwrap();
    let mut slack_config = SlackConfig::new(BotToken::new(slack.token()), slack.team_id())
        .with_api_url(Url::parse(&slack.api_url()).unwrap());
    slack_config.retry.max_attempts = 1;
    let slack_client = SlackClient::new(slack_config).unwrap();

    let directory = ClientDirectory::new(pd_client, slack_client, slack.team_id());
    let config = ResolverConfig {
        overrides: Overrides::from_toml_str(overrides).unwrap(),
        home_team: Some(slack.team_id()),
        ..ResolverConfig::default()
    };
    let resolver = Resolver::new(directory, MemoryCache::new(), config);
    World {
        pd,
        slack,
        resolver,
    }
}

/// The PagerDuty user and mapping source, or the refusal code.
type Want = Result<(&'static str, MappingSource), &'static str>;

const OVERRIDES: &str = r#"
[[identity]]
slack_user = "UGUEST"
pd_user = "PBOB"

[[identity]]
slack_user = "UNOMAIL"
pd_email = "BOB@example.com"

[[identity]]
slack_user = "UBAD"
pd_user = "PNOSUCH"

[[identity]]
slack_user = "UBOB"
pd_user = "PALICE"
"#;

#[tokio::test]
async fn every_rule_against_the_fakes() {
    let w = world(OVERRIDES).await;
    let cases: [(&str, Want); 11] = [
        ("UALICE", Ok(("PALICE", MappingSource::VerifiedEmail))),
        ("UBOB", Ok(("PALICE", MappingSource::Override))),
        ("UGUEST", Ok(("PBOB", MappingSource::Override))),
        ("UNOMAIL", Ok(("PBOB", MappingSource::Override))),
        ("UPARTIAL", Err("no_pd_user_with_email")),
        ("UCAROL", Err("no_pd_user_with_email")),
        ("UBOT", Err("bot")),
        ("UGONE", Err("slack_user_deleted")),
        ("UGUEST2", Err("guest")),
        ("UBAD", Err("override_target_not_found")),
        ("UNOBODY", Err("slack_user_not_found")),
    ];
    for (slack_id, want) in cases {
        let got = w
            .resolver
            .resolve(&SlackUserId::new(slack_id), None, T0)
            .await
            .unwrap_or_else(|e| panic!("{slack_id}: {e}"));
        assert!(!got.cached, "{slack_id}");
        match (want, &got.outcome) {
            (Ok((pd_user, source)), identity::MappingOutcome::Mapped(user)) => {
                assert_eq!(user.pd_user.as_str(), pd_user, "{slack_id}");
                assert_eq!(user.source, source, "{slack_id}");
            }
            (Err(code), identity::MappingOutcome::Refused(refusal)) => {
                assert_eq!(refusal.code(), code, "{slack_id}: {refusal}");
            }
            (want, got) => panic!("{slack_id}: wanted {want:?}, got {got:?}"),
        }
    }
    let alice = w
        .resolver
        .resolve(&SlackUserId::new("UALICE"), None, T0)
        .await
        .unwrap();
    assert!(alice.cached);
    assert_eq!(
        alice.outcome.mapped().unwrap().email.as_str(),
        "alice@example.com",
        "From uses PagerDuty's spelling"
    );
}

#[tokio::test]
async fn cached_answers_make_no_api_calls() {
    let w = world("").await;
    let user = SlackUserId::new("UALICE");
    w.resolver.resolve(&user, None, T0).await.unwrap();
    w.resolver
        .resolve(&SlackUserId::new("UCAROL"), None, T0)
        .await
        .unwrap();
    let before = w.requests();
    assert!(before >= 4);
    let later = T0.saturating_add(minutes(1));
    assert!(w.resolver.resolve(&user, None, later).await.unwrap().cached);
    assert!(
        w.resolver
            .resolve(&SlackUserId::new("UCAROL"), None, later)
            .await
            .unwrap()
            .cached
    );
    assert_eq!(w.requests(), before);
    w.resolver.refresh(&user, None, later).await.unwrap();
    assert!(w.requests() > before);
}

#[tokio::test]
async fn reverse_mapping_for_mentions() {
    let w = world(OVERRIDES).await;
    let r = &w.resolver;
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PALICE"), T0)
            .await
            .unwrap(),
        Some(SlackUserId::new("UBOB")),
        "an override pinning a Slack user to PALICE wins"
    );
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PBOB"), T0).await.unwrap(),
        Some(SlackUserId::new("UGUEST")),
        "overrides are consulted before users.lookupByEmail"
    );
    w.pd.add_user("PCAROL", "Carol", "CAROL@example.com");
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PCAROL"), T0)
            .await
            .unwrap(),
        Some(SlackUserId::new("UCAROL")),
        "lookupByEmail matches case-insensitively"
    );
    assert_eq!(
        r.slack_user_for(&PdUserId::new("PUNKNOWN"), T0)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn api_failures_are_errors_and_not_cached() {
    let w = world("").await;
    w.slack.inject("users.info", Fault::error("invalid_auth"));
    let user = SlackUserId::new("UALICE");
    match w.resolver.resolve(&user, None, T0).await {
        Err(Error::Directory { platform, message }) => {
            assert_eq!(platform, "slack");
            assert!(message.contains("invalid_auth"), "{message}");
            assert!(!message.contains(&w.slack.token()), "no token in errors");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(w.resolver.cache().entries().is_empty());
    let ok = w.resolver.resolve(&user, None, T0).await.unwrap();
    assert_eq!(ok.outcome.mapped().unwrap().pd_user.as_str(), "PALICE");
}

/// The fake PagerDuty refuses a read-only `From` user like PagerDuty (403), the resolver maps
/// that user with their role, and [`identity::clients::pd_rejected_from`] tells a rejection of
/// the `From` user from other failures.
#[tokio::test]
async fn read_only_roles_are_mapped_with_their_role_and_their_mutations_rejected() {
    use identity::clients::pd_rejected_from;
    let w = world("").await;
    let alice = PdUserId::new("PALICE");
    w.pd.set_user_role(&alice, "observer");
    let user = w
        .resolver
        .resolve(&SlackUserId::new("UALICE"), None, T0)
        .await
        .unwrap()
        .outcome;
    let user = user.mapped().unwrap();
    assert_eq!(user.role.as_deref(), Some("observer"));
    assert!(user.is_read_only());

    let policy =
        w.pd.add_escalation_policy("PEP1", "Ops", vec![vec![alice.clone()]]);
    let incident = w.pd.trigger_incident("Disk full", &policy);
    let mut config = pd_client::Config::new(Auth::Token(Secret::new("fake-pd-token")));
    config.base_url = Url::parse(&w.pd.url()).unwrap();
    config.retry.max_attempts = 1;
    let pd = PdClient::new(config).unwrap();

    let observer = pd.acknowledge(&incident, &user.email).await.unwrap_err();
    assert_eq!(observer.status(), Some(403), "{observer}");
    assert!(pd_rejected_from(&observer), "{observer}");
    let stranger = ids::Email::new("nobody@example.com");
    let unknown = pd.acknowledge(&incident, &stranger).await.unwrap_err();
    assert_eq!((unknown.status(), unknown.code()), (Some(400), Some(1008)));
    assert!(pd_rejected_from(&unknown), "{unknown}");
    let bob = ids::Email::new("bob@example.com");
    let missing = pd
        .acknowledge(&ids::IncidentId::new("PNOSUCH"), &bob)
        .await
        .unwrap_err();
    assert!(!pd_rejected_from(&missing), "{missing}");
    assert!(
        pd.acknowledge(&incident, &bob).await.is_ok(),
        "a responder may act"
    );
    for (error, rejected) in [
        (
            pd_client::Error::Api {
                status: 400,
                code: Some(2001),
                message: "You must specify a user's email address in the \"From\" header".into(),
                retry_after: None,
            },
            true,
        ),
        (
            pd_client::Error::Api {
                status: 400,
                code: Some(2001),
                message: "Invalid Input Provided: assignments is invalid".into(),
                retry_after: None,
            },
            false,
        ),
        (
            pd_client::Error::Api {
                status: 500,
                code: None,
                message: "boom".into(),
                retry_after: None,
            },
            false,
        ),
        (
            pd_client::Error::MaybeSent {
                reason: "timeout".into(),
            },
            false,
        ),
    ] {
        assert_eq!(pd_rejected_from(&error), rejected, "{error}");
    }
}
