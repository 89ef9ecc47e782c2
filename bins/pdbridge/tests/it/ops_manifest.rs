//! The generated Slack app manifest validates against Slack's published v1 schema.

use pdbridge::ops::manifest::{BOT_SCOPES, PublicUrl, manifest, manifest_text};
use serde_json::Value;

const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/slack-manifest/manifest.schema.1.0.0.json"
));

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    jsonschema::draft7::new(&schema).expect("the draft-07 schema compiles offline")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn manifest_validates_against_the_v1_schema() {
    let v = validator();
    for base in [
        "https://pd.example.com",
        "https://example.com/pdbridge/",
        "https://bridge.example.org:8443",
    ] {
        let m = manifest(&PublicUrl::parse(base).unwrap());
        assert_eq!(errors(&v, &m), Vec::<String>::new(), "for {base}");
    }
}

#[test]
fn the_validator_rejects_what_slack_would_reject() {
    // Guards the test above: a validator that accepts everything would prove nothing.
    let v = validator();
    let good = manifest(&PublicUrl::parse("https://pd.example.com").unwrap());
    let mut bad = good.clone();
    bad["display_information"]["name"] = Value::String("x".repeat(36));
    assert!(!errors(&v, &bad).is_empty(), "name longer than 35 chars");
    let mut bad = good.clone();
    bad["features"]["slash_commands"][0]["command"] = Value::String("pd".into());
    assert!(!errors(&v, &bad).is_empty(), "command without a slash");
    let mut bad = good.clone();
    bad["settings"]["unknown_setting"] = Value::Bool(true);
    assert!(!errors(&v, &bad).is_empty(), "unknown key");
    let mut bad = good;
    bad["settings"]["interactivity"]
        .as_object_mut()
        .unwrap()
        .remove("is_enabled");
    assert!(
        !errors(&v, &bad).is_empty(),
        "interactivity without is_enabled"
    );
}

#[test]
fn manifest_points_slack_at_the_server_endpoints_with_exactly_the_needed_scopes() {
    let m = manifest(&PublicUrl::parse("https://pd.example.com/").unwrap());
    assert_eq!(
        m["settings"]["interactivity"]["request_url"],
        "https://pd.example.com/slack/interactions"
    );
    assert_eq!(m["settings"]["interactivity"]["is_enabled"], true);
    assert_eq!(m["settings"]["socket_mode_enabled"], false);
    assert!(m["settings"].get("event_subscriptions").is_none());
    let cmd = &m["features"]["slash_commands"][0];
    assert_eq!(cmd["command"], "/pd");
    assert_eq!(cmd["url"], "https://pd.example.com/slack/commands");
    let scopes: Vec<&str> = m["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(scopes, BOT_SCOPES);
    assert_eq!(
        scopes,
        [
            "channels:history",
            "channels:read",
            "chat:write",
            "commands",
            "groups:history",
            "groups:read",
            "users:read",
            "users:read.email"
        ]
    );
    assert!(m["oauth_config"]["scopes"].get("user").is_none());
}

#[test]
fn manifest_text_is_deterministic_pretty_json() {
    let url = PublicUrl::parse("https://pd.example.com").unwrap();
    let a = manifest_text(&url);
    assert_eq!(a, manifest_text(&url));
    assert!(a.ends_with("}\n"));
    let parsed: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(parsed, manifest(&url));
}

#[test]
fn the_binary_prints_the_manifest_and_refuses_http() {
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let out = std::process::Command::new(bin)
        .args(["slack-manifest", "--url", "https://pd.example.com"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(errors(&validator(), &printed), Vec::<String>::new());
    let out = std::process::Command::new(bin)
        .args(["slack-manifest", "--url", "http://pd.example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

#[test]
fn usergroups_write_is_asked_for_only_when_groups_are_configured() {
    use pdbridge::ops::manifest::{USERGROUPS_SCOPE, manifest_for};
    let url = PublicUrl::parse("https://pd.example.com").unwrap();
    let scopes = |m: &Value| -> Vec<String> {
        m["oauth_config"]["scopes"]["bot"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!scopes(&manifest(&url)).contains(&USERGROUPS_SCOPE.to_owned()));
    let with = scopes(&manifest_for(&url, true));
    assert!(with.contains(&USERGROUPS_SCOPE.to_owned()));
    let mut sorted = with.clone();
    sorted.sort();
    assert_eq!(with, sorted);
    assert_eq!(
        errors(&validator(), &manifest_for(&url, true)),
        Vec::<String>::new()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pdbridge.toml");
    std::fs::write(
        &file,
        "[[oncall_group]]\nusergroup = \"S0PAYONCALL\"\nschedules = [\"PSCHED01\"]\n",
    )
    .unwrap();
    let out = crate::common::pdbridge()
        .args([
            "slack-manifest",
            "--url",
            "https://pd.example.com",
            "--config",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("usergroups:write"));
    std::fs::write(&file, "[server]\n").unwrap();
    let out = crate::common::pdbridge()
        .args([
            "slack-manifest",
            "--url",
            "https://pd.example.com",
            "--config",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("usergroups:write"));
}

#[test]
fn manifest_has_the_declare_shortcut_and_the_trigger_usage_hint() {
    let m = manifest(&PublicUrl::parse("https://pd.example.com/").unwrap());
    let shortcuts = m["features"]["shortcuts"].as_array().unwrap();
    assert_eq!(shortcuts.len(), 1);
    assert_eq!(shortcuts[0]["name"], "Declare incident");
    assert_eq!(shortcuts[0]["type"], "message");
    assert_eq!(
        shortcuts[0]["callback_id"],
        pdbridge::intake::declare::SHORTCUT_DECLARE
    );
    let hint = m["features"]["slash_commands"][0]["usage_hint"]
        .as_str()
        .unwrap();
    assert!(
        hint.contains("trigger [<service> <severity> <title>]"),
        "{hint}"
    );
    // The searchable service select (`declare.search_services`) loads its options there.
    assert_eq!(
        m["settings"]["interactivity"]["message_menu_options_url"],
        "https://pd.example.com/slack/interactions"
    );
}

#[test]
fn the_socket_mode_manifest_validates_and_has_no_request_url() {
    let v = validator();
    for with_groups in [false, true] {
        let m = pdbridge::ops::manifest::socket_manifest(with_groups);
        assert_eq!(errors(&v, &m), Vec::<String>::new());
        assert_eq!(m["settings"]["socket_mode_enabled"], Value::Bool(true));
        assert_eq!(
            m["settings"]["interactivity"]["is_enabled"],
            Value::Bool(true)
        );
        let text = m.to_string();
        assert!(!text.contains("url\""), "a request URL is left: {text}");
        assert!(!text.contains("https://"), "{text}");
        assert_eq!(m["features"]["slash_commands"][0]["command"], "/pd");
    }
    let bin = env!("CARGO_BIN_EXE_pdbridge");
    let out = std::process::Command::new(bin)
        .args(["slack-manifest", "--socket"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, pdbridge::ops::manifest::socket_manifest(false));
    // Without --url nor --socket, or with both, it is a usage error.
    for args in [
        &["slack-manifest"][..],
        &[
            "slack-manifest",
            "--socket",
            "--url",
            "https://pd.example.com",
        ],
    ] {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
