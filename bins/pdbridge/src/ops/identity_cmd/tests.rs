//! Unit tests of the identity command.

use super::*;

const FILE: &str = r#"# pdbridge config
[server]
listen = "127.0.0.1:8080"   # keep

# Overrides
[[identity]]
slack_user = "U1"
pd_user = "P1"   # Alice

[policy]
ack = "any_mapped"
"#;

fn entry(user: &str, target: OverrideTarget) -> OverrideEntry {
    OverrideEntry::new(SlackUserId::new(user), target)
}

#[test]
fn add_appends_after_the_last_entry_and_keeps_everything_else() {
    let edit = add_to_toml(
        FILE,
        &entry("U2", OverrideTarget::PdEmail(Email::new("bob@example.com"))),
        "f",
    )
    .unwrap();
    assert_eq!(edit.previous, None);
    assert_eq!(
            edit.text,
            FILE.replace(
                "pd_user = \"P1\"   # Alice\n",
                "pd_user = \"P1\"   # Alice\n\n[[identity]]\nslack_user = \"U2\"\npd_email = \"bob@example.com\"\n"
            )
        );
}

#[test]
fn add_replaces_in_place_and_switches_kind() {
    let edit = add_to_toml(
        FILE,
        &entry("U1", OverrideTarget::PdUser(PdUserId::new("P9"))),
        "f",
    )
    .unwrap();
    assert_eq!(
        edit.previous,
        Some(OverrideTarget::PdUser(PdUserId::new("P1")))
    );
    assert_eq!(edit.text, FILE.replace("\"P1\"", "\"P9\""));
    let edit = add_to_toml(
        FILE,
        &entry("U1", OverrideTarget::PdEmail(Email::new("a@example.com"))),
        "f",
    )
    .unwrap();
    assert!(
        edit.text
            .contains("slack_user = \"U1\"\npd_email = \"a@example.com\"\n")
    );
    assert!(!edit.text.contains("P1"));
}

#[test]
fn add_to_a_file_without_entries_appends_the_array() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n";
    let edit = add_to_toml(
        text,
        &entry("U1", OverrideTarget::PdUser(PdUserId::new("P1"))),
        "f",
    )
    .unwrap();
    assert_eq!(
        edit.text,
        "[server]\nlisten = \"127.0.0.1:1\"\n\n[[identity]]\nslack_user = \"U1\"\npd_user = \"P1\"\n"
    );
}

#[test]
fn remove_takes_only_that_entry() {
    let two = add_to_toml(
        FILE,
        &entry("U2", OverrideTarget::PdUser(PdUserId::new("P2"))),
        "f",
    )
    .unwrap()
    .text;
    let edit = remove_from_toml(&two, &SlackUserId::new("U2"), "f")
        .unwrap()
        .unwrap();
    assert_eq!(edit.text, FILE);
    assert_eq!(
        edit.previous,
        Some(OverrideTarget::PdUser(PdUserId::new("P2")))
    );
    assert_eq!(
        remove_from_toml(FILE, &SlackUserId::new("U7"), "f").unwrap(),
        None
    );
    let none = remove_from_toml(FILE, &SlackUserId::new("U1"), "f")
        .unwrap()
        .unwrap();
    assert!(!none.text.contains("identity"), "{}", none.text);
    assert!(none.text.contains("listen = \"127.0.0.1:8080\"   # keep"));
}

#[test]
fn invalid_entries_name_the_line_and_value() {
    let err = add_to_toml(
        FILE,
        &entry("U2", OverrideTarget::PdEmail(Email::new("nope"))),
        "f",
    )
    .unwrap_err();
    assert!(err.contains("\"nope\" is not an email address"), "{err}");
    assert!(err.contains("line 10"), "{err}");
    let bad = FILE.replace("pd_user = \"P1\"", "pd_user = \"alice\"");
    let err = parse_overrides(&bad, "f").unwrap_err();
    assert!(err.contains("f line 6"), "{err}");
    assert!(err.contains("identity[0].pd_user"), "{err}");
    assert!(!err.contains('\n'));
}
