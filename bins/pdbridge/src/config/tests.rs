//! Unit tests of configuration loading and validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const MINIMAL: &str = r#"
[pagerduty]
token = "pd-token"
webhook_secrets = ["s1", "s2"]

[slack]
bot_token = "xoxb-1"
signing_secret = "sign"
default_channel = "C0DEFAULT"
"#;

#[test]
fn minimal_file_gets_pinned_defaults() {
    let c = Config::from_toml_str(MINIMAL, &env(&[])).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.database, PathBuf::from("./pdbridge.db"));
    assert_eq!(c.pagerduty.api_url.as_str(), "https://api.pagerduty.com/");
    assert_eq!(c.slack.api_url.as_str(), "https://slack.com/api");
    assert_eq!(c.pagerduty.webhook_secrets.len(), 2);
    assert_eq!(c.slack.team_id, None);
    assert_eq!(c.server.reconcile_interval, Duration::from_secs(300));
    assert_eq!(c.server.log_format, LogFormat::Pretty);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_connections, 4096);
    let text =
        format!("{MINIMAL}\n[server]\nheader_read_timeout_secs = 3\nbody_read_timeout_secs = 4\n");
    let e = env(&[("PDBRIDGE_MAX_CONNECTIONS", "64")]);
    let c = Config::from_toml_str(&text, &e).unwrap();
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(3));
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(4));
    assert_eq!(c.server.max_connections, 64);
    assert_eq!(c.server.metrics_listen, None);
    let text = format!("{MINIMAL}\n[server]\nmetrics_listen = \"127.0.0.1:9100\"\n");
    let c = Config::from_toml_str(&text, &env(&[])).unwrap();
    assert_eq!(
        c.server.metrics_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9100")
    );
    let e = env(&[("PDBRIDGE_METRICS_LISTEN", "127.0.0.1:8080")]);
    let err = Config::from_toml_str(MINIMAL, &e).unwrap_err();
    assert!(err.to_string().contains("PDBRIDGE_METRICS_LISTEN"), "{err}");
    let e = env(&[("PDBRIDGE_METRICS_LISTEN", "nope")]);
    assert!(Config::from_toml_str(MINIMAL, &e).is_err());
}

#[test]
fn env_overrides_file_and_alone_is_enough() {
    let e = env(&[
        ("PDBRIDGE_LISTEN", "0.0.0.0:9999"),
        ("PDBRIDGE_DATABASE", "/tmp/x.db"),
        ("PAGERDUTY_API_URL", "http://127.0.0.1:1234"),
        ("PAGERDUTY_TOKEN", "env-token"),
        ("PAGERDUTY_WEBHOOK_SECRETS", "a, b,,c"),
        ("SLACK_API_URL", "http://127.0.0.1:4321/api"),
        ("SLACK_BOT_TOKEN", "xoxb-env"),
        ("SLACK_SIGNING_SECRET", "env-sign"),
        ("SLACK_DEFAULT_CHANNEL", "C0ENV"),
        ("SLACK_TEAM_ID", "T0ENV"),
    ]);
    let c = Config::from_toml_str(MINIMAL, &e).unwrap();
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:9999");
    assert_eq!(
        c.pagerduty.credentials,
        PdCredentials::Token(Secret::new("env-token"))
    );
    let secrets: Vec<_> = c
        .pagerduty
        .webhook_secrets
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(secrets, ["a", "b", "c"]);
    assert_eq!(c.slack.default_channel, Some(ChannelId::new("C0ENV")));
    assert_eq!(c.slack.team_id, Some(SlackTeamId::new("T0ENV")));
    assert_eq!(c.slack.api_url.as_str(), "http://127.0.0.1:4321/api");
    let only_env = Config::load(None, &e).unwrap();
    assert_eq!(only_env.slack.bot_token.expose(), "xoxb-env");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok");
    std::fs::write(&tok, "from-file\n").unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, "one\ntwo\n").unwrap();
    let e = env(&[
        ("PAGERDUTY_TOKEN_FILE", tok.to_str().unwrap()),
        ("PAGERDUTY_WEBHOOK_SECRETS_FILE", secrets.to_str().unwrap()),
        ("SLACK_BOT_TOKEN_FILE", tok.to_str().unwrap()),
        ("SLACK_SIGNING_SECRET_FILE", tok.to_str().unwrap()),
    ]);
    let c = Config::from_toml_str(MINIMAL, &e).unwrap();
    assert_eq!(
        c.pagerduty.credentials,
        PdCredentials::Token(Secret::new("from-file"))
    );
    assert_eq!(c.slack.signing_secret.expose(), "from-file");
    assert_eq!(c.pagerduty.webhook_secrets.len(), 2);
    assert_eq!(c.pagerduty.webhook_secrets[1].expose(), "two");

    let err = Config::from_toml_str(
        MINIMAL,
        &env(&[("PAGERDUTY_TOKEN", "x"), ("PAGERDUTY_TOKEN_FILE", "/nope")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("PAGERDUTY_TOKEN"), "{err}");
    let err = Config::from_toml_str(MINIMAL, &env(&[("SLACK_BOT_TOKEN_FILE", "/nonexistent/x")]))
        .unwrap_err();
    assert!(err.to_string().contains("SLACK_BOT_TOKEN_FILE"), "{err}");
}

#[test]
fn secrets_never_show_in_debug() {
    let c = Config::from_toml_str(MINIMAL, &env(&[])).unwrap();
    let dbg = format!("{c:?}");
    for secret in ["pd-token", "xoxb-1", "sign\"", "s1", "s2"] {
        assert!(!dbg.contains(secret), "{secret} leaked into {dbg}");
    }
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let text = format!("{MINIMAL}\n[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    let line = err.to_string();
    assert!(line.contains("server.listen_port"), "{line}");
    assert!(line.contains("unknown field"), "{line}");
    assert!(!line.contains('\n'));

    let err = Config::from_toml_str("[bogus]\nx = 1\n", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");

    let text = format!("{MINIMAL}\n[[route]]\nchannel = \"C1\"\nservice = [\"P1\"]\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("route.service"), "{err}");
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisten = \"nope\"\n", "server.listen"),
        ("[server]\nlisten = 8080\n", "server.listen"),
        ("[server]\nlog_format = \"xml\"\n", "server.log_format"),
        (
            "[server]\nreconcile_interval_secs = 0\n",
            "server.reconcile_interval_secs",
        ),
        (
            "[server]\nheader_read_timeout_secs = 0\n",
            "server.header_read_timeout_secs",
        ),
        (
            "[server]\nbody_read_timeout_secs = 0\n",
            "server.body_read_timeout_secs",
        ),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        (
            "[[route]]\nchannel = \"C1\"\nurgencies = [\"medium\"]\n",
            "route.urgencies",
        ),
    ];
    for (extra, key) in cases {
        let text = format!("{MINIMAL}\n{extra}");
        let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    let err =
        Config::from_toml_str(MINIMAL, &env(&[("PAGERDUTY_API_URL", "ftp://x")])).unwrap_err();
    assert!(err.to_string().contains("PAGERDUTY_API_URL"), "{err}");
    let err = Config::from_toml_str(MINIMAL, &env(&[("PDBRIDGE_LISTEN", "x:y")])).unwrap_err();
    assert!(err.to_string().contains("PDBRIDGE_LISTEN"), "{err}");
    let err = Config::from_toml_str(MINIMAL, &env(&[("PDBRIDGE_LISTEN", "8080")])).unwrap_err();
    assert!(err.to_string().contains("PDBRIDGE_LISTEN"), "{err}");
    let why = "`8080` is not a socket address: invalid socket address syntax";
    assert!(err.to_string().contains(why), "{err}");
    let c = Config::from_toml_str(MINIMAL, &env(&[("PDBRIDGE_LISTEN", "localhost:9090")])).unwrap();
    assert_eq!(c.server.listen.port(), 9090);
    assert!(err.to_string().contains("PDBRIDGE_LISTEN"), "{err}");
}

#[test]
fn required_keys_are_named_when_missing() {
    let err = Config::from_toml_str("", &env(&[])).unwrap_err();
    assert!(err.to_string().contains("pagerduty.token"), "{err}");
    let text = MINIMAL.replace("webhook_secrets = [\"s1\", \"s2\"]", "webhook_secrets = []");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(
        err.to_string().contains("pagerduty.webhook_secrets"),
        "{err}"
    );
    let text = MINIMAL.replace("default_channel = \"C0DEFAULT\"", "");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("slack.default_channel"), "{err}");
    let with_catch_all = format!("{text}\n[[route]]\nchannel = \"C0ALL\"\n");
    let c = Config::from_toml_str(&with_catch_all, &env(&[])).unwrap();
    assert_eq!(c.slack.default_channel, None);
}

const OAUTH: &str = r#"
[pagerduty]
oauth_client_id = "client-1"
oauth_client_secret = "oauth-secret"
webhook_secrets = ["s1"]

[slack]
bot_token = "xoxb-1"
signing_secret = "sign"
default_channel = "C0DEFAULT"
"#;

#[test]
fn a_scoped_oauth_app_replaces_the_token_with_default_scopes_and_url() {
    let c = Config::from_toml_str(OAUTH, &env(&[])).unwrap();
    let PdCredentials::OAuth {
        client_id,
        client_secret,
        scope,
        token_url,
    } = &c.pagerduty.credentials
    else {
        panic!("expected OAuth, got {:?}", c.pagerduty.credentials);
    };
    assert_eq!(client_id, "client-1");
    assert_eq!(client_secret.expose(), "oauth-secret");
    assert_eq!(
        scope,
        "incidents.read incidents.write users.read escalation_policies.read oncalls.read \
             services.read"
    );
    assert_eq!(
        token_url.as_str(),
        "https://identity.pagerduty.com/oauth/token"
    );
    assert!(matches!(c.pagerduty.auth(), pd_client::Auth::OAuth { .. }));
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("oauth-secret"), "{dbg}");

    let account = OAUTH.replace(
        "oauth_client_secret",
        "oauth_scope = \"as_account-eu.acme\"\noauth_client_secret",
    );
    let c = Config::from_toml_str(&account, &env(&[])).unwrap();
    let PdCredentials::OAuth { scope, .. } = &c.pagerduty.credentials else {
        panic!("expected OAuth");
    };
    assert!(
        scope.starts_with("as_account-eu.acme incidents.read "),
        "{scope}"
    );
    assert!(scope.ends_with(" services.read"), "{scope}");
}

#[test]
fn oauth_keys_come_from_the_environment_and_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("oauth");
    std::fs::write(&secret, "file-secret\n").unwrap();
    let text = MINIMAL.replace("token = \"pd-token\"\n", "");
    let e = env(&[
        ("PAGERDUTY_OAUTH_CLIENT_ID", "env-client"),
        (
            "PAGERDUTY_OAUTH_CLIENT_SECRET_FILE",
            secret.to_str().unwrap(),
        ),
        ("PAGERDUTY_OAUTH_SCOPE", "as_account-us.acme incidents.read"),
        (
            "PAGERDUTY_OAUTH_TOKEN_URL",
            "http://127.0.0.1:9/oauth/token",
        ),
    ]);
    let c = Config::from_toml_str(&text, &e).unwrap();
    assert_eq!(
        c.pagerduty.credentials,
        PdCredentials::OAuth {
            client_id: "env-client".into(),
            client_secret: Secret::new("file-secret"),
            scope: "as_account-us.acme incidents.read".into(),
            token_url: Url::parse("http://127.0.0.1:9/oauth/token").unwrap(),
        }
    );
    let e = env(&[
        ("PAGERDUTY_OAUTH_CLIENT_ID", "env-client"),
        ("PAGERDUTY_OAUTH_CLIENT_SECRET", "s"),
    ]);
    assert!(Config::from_toml_str(&text, &e).is_ok());
}

#[test]
fn token_and_oauth_are_exclusive_and_the_pair_is_complete() {
    let both = MINIMAL.replace(
        "token = \"pd-token\"",
        "token = \"pd-token\"\noauth_client_id = \"c\"\noauth_client_secret = \"s\"",
    );
    let err = Config::from_toml_str(&both, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    let err =
        Config::from_toml_str(MINIMAL, &env(&[("PAGERDUTY_OAUTH_CLIENT_ID", "c")])).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");

    let no_secret = OAUTH.replace("oauth_client_secret = \"oauth-secret\"\n", "");
    let err = Config::from_toml_str(&no_secret, &env(&[])).unwrap_err();
    assert!(
        err.to_string().contains("pagerduty.oauth_client_secret"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("PAGERDUTY_OAUTH_CLIENT_SECRET_FILE"),
        "{err}"
    );
    let no_id = OAUTH.replace("oauth_client_id = \"client-1\"\n", "");
    let err = Config::from_toml_str(&no_id, &env(&[])).unwrap_err();
    assert!(
        err.to_string().contains("pagerduty.oauth_client_id"),
        "{err}"
    );

    let stray = MINIMAL.replace(
        "token = \"pd-token\"",
        "token = \"pd-token\"\noauth_scope = \"incidents.read\"",
    );
    let err = Config::from_toml_str(&stray, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("pagerduty.oauth_scope"), "{err}");
    let err = Config::from_toml_str(OAUTH, &env(&[("PAGERDUTY_OAUTH_SCOPE", " ")])).unwrap_err();
    assert!(err.to_string().contains("PAGERDUTY_OAUTH_SCOPE"), "{err}");
    let err =
        Config::from_toml_str(OAUTH, &env(&[("PAGERDUTY_OAUTH_TOKEN_URL", "nope")])).unwrap_err();
    assert!(
        err.to_string().contains("PAGERDUTY_OAUTH_TOKEN_URL"),
        "{err}"
    );
}

#[test]
fn neither_token_nor_oauth_names_both_options() {
    let text = MINIMAL.replace("token = \"pd-token\"\n", "");
    let err = Config::from_toml_str(&text, &env(&[]))
        .unwrap_err()
        .to_string();
    for needle in [
        "pagerduty.token",
        "PAGERDUTY_TOKEN",
        "pagerduty.oauth_client_id",
        "pagerduty.oauth_client_secret",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!err.contains('\n'));
}

#[test]
fn identity_and_policy_tables_use_the_identity_crate() {
    let text = format!(
        "{MINIMAL}
[[identity]]
slack_user = \"U1\"
pd_email = \"Alice@Example.com\"

[policy]
resolve = \"admin\"
admins = [\"U1\"]
"
    );
    let c = Config::from_toml_str(&text, &env(&[])).unwrap();
    assert!(c.identity.get(&ids::SlackUserId::new("U1")).is_some());
    assert_eq!(c.policy.resolve, identity::Rule::Admin);

    let text = format!("{MINIMAL}\n[[identity]]\nslack_user = \"U1\"\nemail = \"a@b.c\"\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("identity"), "{err}");
    let text = format!("{MINIMAL}\n[policy]\nresolve = \"admin\"\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("policy"), "{err}");
    let text = format!("{MINIMAL}\n[policy]\nsnooze = \"admin\"\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("policy.snooze"), "{err}");
}

#[test]
fn routes_first_match_wins_else_default() {
    let text = format!(
        "{MINIMAL}
[[route]]
channel = \"C0DB\"
services = [\"PSVC1\"]
urgencies = [\"high\"]

[[route]]
channel = \"C0TEAM\"
teams = [\"PTEAM\"]
priorities = [\"p1\"]

[[route]]
channel = \"C0ACK\"
events = [\"incident.acknowledged\"]
"
    );
    let c = Config::from_toml_str(&text, &env(&[])).unwrap();
    let svc = ServiceId::new("PSVC1");
    let team = [TeamId::new("PTEAM")];
    let q = RouteQuery {
        service: Some(&svc),
        teams: &team,
        urgency: Some(Urgency::High),
        priority: Some("P1"),
        event_type: Some("incident.triggered"),
    };
    assert_eq!(c.channel_for(&q).unwrap().as_str(), "C0DB");
    let low = RouteQuery {
        urgency: Some(Urgency::Low),
        ..q
    };
    assert_eq!(c.channel_for(&low).unwrap().as_str(), "C0TEAM");
    let no_prio = RouteQuery {
        priority: None,
        ..low
    };
    assert_eq!(c.channel_for(&no_prio).unwrap().as_str(), "C0DEFAULT");
    let ack = RouteQuery {
        event_type: Some("incident.acknowledged"),
        ..no_prio
    };
    assert_eq!(c.channel_for(&ack).unwrap().as_str(), "C0ACK");
}

#[test]
fn any_workspace_is_an_explicit_opt_in_that_excludes_team_id() {
    let c = Config::from_toml_str(MINIMAL, &env(&[])).unwrap();
    assert!(!c.slack.allow_any_workspace, "off by default");
    let text = format!("{MINIMAL}allow_any_workspace = true\n");
    assert!(
        Config::from_toml_str(&text, &env(&[]))
            .unwrap()
            .slack
            .allow_any_workspace
    );
    let c = Config::from_toml_str(MINIMAL, &env(&[("SLACK_ALLOW_ANY_WORKSPACE", "true")]));
    assert!(c.unwrap().slack.allow_any_workspace);
    let err =
        Config::from_toml_str(MINIMAL, &env(&[("SLACK_ALLOW_ANY_WORKSPACE", "yes")])).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("SLACK_ALLOW_ANY_WORKSPACE"));
    let both = format!("{MINIMAL}team_id = \"T1\"\nallow_any_workspace = true\n");
    let err = Config::from_toml_str(&both, &env(&[])).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("slack.allow_any_workspace"));
    assert!(err.message.contains("slack.team_id"), "{err}");
}

#[test]
fn authorization_facts_get_a_short_ttl_of_their_own() {
    let c = Config::from_toml_str(MINIMAL, &env(&[])).unwrap();
    assert_eq!(c.identity_cache.facts_ttl_secs, 300);
    assert_eq!(c.identity_cache.positive_ttl_secs, 24 * 60 * 60);
    let text = format!("{MINIMAL}\n[identity_cache]\nfacts_ttl_secs = 60\n");
    let c = Config::from_toml_str(&text, &env(&[])).unwrap();
    assert_eq!(c.identity_cache.facts_ttl_secs, 60);
    let c = Config::from_toml_str(&text, &env(&[("PDBRIDGE_IDENTITY_FACTS_TTL_SECS", "30")]));
    assert_eq!(c.unwrap().identity_cache.facts_ttl_secs, 30);
    let err = Config::from_toml_str(MINIMAL, &env(&[("PDBRIDGE_IDENTITY_FACTS_TTL_SECS", "5m")]))
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("PDBRIDGE_IDENTITY_FACTS_TTL_SECS"));
    let text = format!("{MINIMAL}\n[identity_cache]\nfacts_ttl = 60\n");
    let err = Config::from_toml_str(&text, &env(&[])).unwrap_err();
    assert!(err.to_string().contains("facts_ttl"), "{err}");
}

const DECLARE: &str = r#"
[declare]
default_service = "api"
services = { api = "PAPI001", db = "PDAT001", web = "PWEB001" }
severities = [
  { name = "SEV-1", urgency = "high", priority = "P1" },
  { name = "SEV-2", urgency = "high", priority = "P2" },
  { name = "SEV-3", urgency = "low" },
  { name = "SEV-4", urgency = "low" },
]
unmapped_from = "ops@example.com"
search_services = false
"#;

#[test]
fn declare_reads_the_issue_example_and_defaults_off() {
    assert!(
        Config::from_toml_str(MINIMAL, &env(&[]))
            .unwrap()
            .declare
            .is_none()
    );
    let c = Config::from_toml_str(&format!("{MINIMAL}{DECLARE}"), &env(&[])).unwrap();
    let d = c.declare.unwrap();
    assert_eq!(d.default_service.as_deref(), Some("api"));
    assert_eq!(d.service("DB").unwrap().1, &ServiceId::new("PDAT001"));
    assert_eq!(d.severity("sev-2").unwrap().priority.as_deref(), Some("P2"));
    assert_eq!(d.severities[2].urgency, Urgency::Low);
    assert_eq!(d.unmapped_from.unwrap().as_str(), "ops@example.com");
    let minimal = "[declare]\nservices = { db = \"PDAT001\" }\n";
    let c = Config::from_toml_str(&format!("{MINIMAL}{minimal}"), &env(&[])).unwrap();
    let names: Vec<_> = c
        .declare
        .unwrap()
        .severities
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["SEV-1", "SEV-2", "SEV-3", "SEV-4"]);
}

#[test]
fn bad_declare_values_name_their_key() {
    let cases = [
        ("[declare]\n", "declare.services"),
        (
            "[declare]\nservices = { \"two words\" = \"P1\" }\n",
            "declare.services.two words",
        ),
        (
            "[declare]\nservices = { db = \"\" }\n",
            "declare.services.db",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\ndefault_service = \"api\"\n",
            "declare.default_service",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\nseverities = []\n",
            "declare.severities",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\nseverities = [{ name = \"S 1\", urgency = \"low\" }]\n",
            "declare.severities[0].name",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\nseverities = [{ name = \"S1\", urgency = \"low\" }, { name = \"s1\", urgency = \"high\" }]\n",
            "declare.severities[1].name",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\nunmapped_from = \"ops\"\n",
            "declare.unmapped_from",
        ),
        (
            "[declare]\nservices = { db = \"P1\" }\ncolour = 1\n",
            "declare.colour",
        ),
        (
            "[policy]\ntrigger = { api = \"admin\" }\nadmins = [\"PBOSS\"]\n[declare]\nservices = { db = \"P1\" }\n",
            "policy.trigger.api",
        ),
    ];
    for (text, key) in cases {
        let err = Config::from_toml_str(&format!("{MINIMAL}{text}"), &env(&[])).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
    }
    let err = Config::from_toml_str(
        &format!("{MINIMAL}[declare]\nservices = {{ db = \"P1\" }}\nseverities = [{{ name = \"S\", urgency = \"medium\" }}]\n"),
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        err.key.as_deref().unwrap_or("").starts_with("declare"),
        "{err}"
    );
}
