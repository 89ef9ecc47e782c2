//! `pdbridge identity list|add|remove|resolve` against temp files, a temp database and the
//! in-process fake Slack and fake PagerDuty (loopback only); plus the README's configuration
//! example, parsed as the server parses it.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use clap::Parser as _;
use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeSlack, FakeUser};
use identity::{
    CacheEntry, CacheKey, CacheStore, CacheTtls, CacheValue, MappedUser, MappingBasis,
    MappingOutcome, MappingSource,
};
use ids::{Email, PdUserId, SlackUserId};
use pdbridge::cli::{Cli, Command as CliCommand};
use pdbridge::config::Config;
use pdbridge::identity::StoreCache;
use pdbridge::ops::identity_cmd::{Report, execute};
use pdbridge::world::WorldConfig;
use serde_json::Value;
use store::{IdentityKey, Store};
use time::OffsetDateTime;

const CONFIG: &str = r#"# pdbridge: production config (owned by the SRE team)
[server]
listen = "127.0.0.1:8080"  # behind the proxy

# People whose Slack email differs from their PagerDuty login.
[[identity]]
slack_user = "U0ALICE"
pd_user = "PALICE1"   # Alice, SRE

# Who may do what.
[policy]
resolve = "team_member"
"#;

struct Files {
    _dir: tempfile::TempDir,
    config: PathBuf,
    database: PathBuf,
}

impl Files {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pdbridge.toml");
        std::fs::write(&config, text).unwrap();
        let database = dir.path().join("pdbridge.db");
        Self {
            _dir: dir,
            config,
            database,
        }
    }

    fn config(&self) -> &str {
        self.config.to_str().unwrap()
    }

    fn database(&self) -> &str {
        self.database.to_str().unwrap()
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    /// Parses `pdbridge identity <command> --config <this file> <rest…>` with the real CLI and
    /// runs it in-process with an empty environment.
    async fn identity(&self, command: &str, rest: &[&str]) -> Report {
        let args = [
            &["pdbridge", "identity", command, "--config", self.config()][..],
            rest,
        ]
        .concat();
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let CliCommand::Identity(identity) = cli.command else {
            panic!("not an identity command: {args:?}");
        };
        execute(&identity, &BTreeMap::new()).await
    }
}

#[tokio::test]
async fn add_then_list_shows_the_entry_as_text_and_json() {
    let f = Files::new(CONFIG);
    let added = f
        .identity(
            "add",
            &[
                "--database",
                f.database(),
                "--slack-user",
                "W0BOB",
                "--pd-email",
                "bob@example.com",
            ],
        )
        .await;
    assert_eq!(added.exit, 0, "{added:?}");
    assert!(
        added.stdout.starts_with("Added an override to ")
            && added.stdout.contains("W0BOB → pd_email bob@example.com"),
        "{}",
        added.stdout
    );
    assert!(added.stdout.contains("kill -HUP"), "{}", added.stdout);

    let listed = f.identity("list", &[]).await;
    assert_eq!(listed.exit, 0, "{listed:?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", listed.stdout);
    assert!(lines[1].contains("slack_user") && lines[1].contains("target"));
    assert!(lines[2].contains("U0ALICE") && lines[2].contains("pd_user PALICE1"));
    assert!(lines[3].contains("W0BOB") && lines[3].contains("pd_email bob@example.com"));

    let json = f.identity("list", &["--json"]).await;
    assert_eq!(json.exit, 0, "{json:?}");
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["overrides"],
        serde_json::json!([
            {"slack_user": "U0ALICE", "pd_user": "PALICE1"},
            {"slack_user": "W0BOB", "pd_email": "bob@example.com"},
        ])
    );
    assert!(doc.get("cached").is_none());

    // The server's own loader sees the same table.
    let config = Config::from_toml_str(&f.text(), &secrets()).unwrap();
    assert_eq!(config.identity.len(), 2);
}

#[tokio::test]
async fn add_preserves_comments_formatting_and_replaces_in_place() {
    let f = Files::new(CONFIG);
    let added = f
        .identity(
            "add",
            &[
                "--database",
                f.database(),
                "--slack-user",
                "W0BOB",
                "--pd-user",
                "PBOB001",
            ],
        )
        .await;
    assert_eq!(added.exit, 0, "{added:?}");
    assert_eq!(
        f.text(),
        CONFIG.replace(
            "pd_user = \"PALICE1\"   # Alice, SRE\n",
            "pd_user = \"PALICE1\"   # Alice, SRE\n\n[[identity]]\nslack_user = \"W0BOB\"\npd_user = \"PBOB001\"\n",
        )
    );

    // Replacing Alice's target keeps her line's comment and everything else byte for byte.
    let replaced = f
        .identity(
            "add",
            &[
                "--database",
                f.database(),
                "--slack-user",
                "U0ALICE",
                "--pd-user",
                "PALICE2",
            ],
        )
        .await;
    assert_eq!(replaced.exit, 0, "{replaced:?}");
    assert!(
        replaced.stdout.contains("(was pd_user PALICE1)"),
        "{}",
        replaced.stdout
    );
    let text = f.text();
    assert!(
        text.contains("pd_user = \"PALICE2\"   # Alice, SRE\n"),
        "{text}"
    );
    assert!(text.starts_with(
        "# pdbridge: production config (owned by the SRE team)\n[server]\nlisten = \"127.0.0.1:8080\"  # behind the proxy\n\n# People whose Slack email differs from their PagerDuty login.\n[[identity]]\n"
    ), "{text}");
    assert!(
        text.ends_with("# Who may do what.\n[policy]\nresolve = \"team_member\"\n"),
        "{text}"
    );
    // No temporary file is left next to the config.
    let leftovers: Vec<_> = std::fs::read_dir(f.config.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".pdbridge-identity-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn add_invalid_is_refused_naming_the_value_and_leaves_the_file_untouched() {
    let f = Files::new(CONFIG);
    for (args, value) in [
        (["--pd-email", "bob.example.com"], "bob.example.com"),
        (["--pd-user", "bob"], "\"bob\""),
    ] {
        let report = f
            .identity("add", &[&["--slack-user", "W0BOB"][..], &args].concat())
            .await;
        assert_eq!(report.exit, 64, "{report:?}");
        assert_eq!(report.stderr.lines().count(), 1, "{}", report.stderr);
        assert!(report.stderr.contains(value), "{}", report.stderr);
        assert!(report.stderr.contains("identity[1]"), "{}", report.stderr);
        assert!(report.stderr.contains("is unchanged"), "{}", report.stderr);
        assert_eq!(f.text(), CONFIG);
    }
    let report = f
        .identity("add", &["--slack-user", "alice", "--pd-user", "PALICE1"])
        .await;
    assert_eq!(report.exit, 64, "{report:?}");
    assert!(report.stderr.contains("\"alice\""), "{}", report.stderr);
    assert_eq!(f.text(), CONFIG);
    assert!(
        !f.database.exists(),
        "no database is created by a refused add"
    );
}

#[tokio::test]
async fn remove_drops_the_entry_and_an_absent_one_is_an_error() {
    let f = Files::new(CONFIG);
    let absent = f.identity("remove", &["--slack-user", "W0NOBODY"]).await;
    assert_eq!(absent.exit, 1, "{absent:?}");
    assert!(
        absent
            .stderr
            .contains("has no [[identity]] entry for W0NOBODY"),
        "{}",
        absent.stderr
    );
    assert_eq!(f.text(), CONFIG);

    let removed = f
        .identity(
            "remove",
            &["--database", f.database(), "--slack-user", "U0ALICE"],
        )
        .await;
    assert_eq!(removed.exit, 0, "{removed:?}");
    assert!(removed.stdout.contains("(was pd_user PALICE1)"));
    let text = f.text();
    assert!(!text.contains("identity"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:8080\"  # behind the proxy\n"));
    assert!(text.contains("# Who may do what.\n[policy]\n"));
    let listed = f.identity("list", &[]).await;
    assert!(
        listed.stdout.starts_with("No [[identity]] overrides"),
        "{listed:?}"
    );
}

/// Fake Slack and PagerDuty with Alice (emails match), Carol (no PagerDuty account) and a bot.
struct World {
    pd: FakePagerDuty,
    slack: FakeSlack,
}

async fn world() -> World {
    let pd = FakePagerDuty::start().await;
    pd.add_user("PALICE1", "Alice Ng", "alice@example.com");
    pd.add_user("PBOB001", "Bob Li", "bob@example.com");
    let slack = FakeSlack::start().await;
    slack.add_user(FakeUser::new("U0ALICE", "alice", "Alice@Example.com"));
    slack.add_user(FakeUser::new("U0CAROL", "carol", "carol@example.com"));
    slack.add_user(FakeUser::new("U0BOBBY", "bob", "bob.personal@example.net"));
    let mut bot = FakeUser::new("U0BOT", "deploybot", "bot@example.com");
    bot.is_bot = true;
    slack.add_user(bot);
    World { pd, slack }
}

impl World {
    /// A complete server configuration pointing at the fakes, with `extra` appended.
    fn config(&self, database: &Path, extra: &str) -> String {
        WorldConfig {
            database: Some(database),
            extra,
            ..WorldConfig::for_fakes(&self.pd, &self.slack)
        }
        .toml()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_maps_by_verified_email_and_by_override() {
    let w = world().await;
    let f = Files::new("");
    std::fs::write(
        &f.config,
        w.config(
            &f.database,
            "\n[[identity]]\nslack_user = \"U0BOBBY\"\npd_user = \"PBOB001\"\n",
        ),
    )
    .unwrap();
    let alice = f.identity("resolve", &["--slack-user", "U0ALICE"]).await;
    assert_eq!(alice.exit, 0, "{alice:?}");
    assert!(
        alice
            .stdout
            .starts_with("U0ALICE → PALICE1 Alice Ng <alice@example.com>\n"),
        "{}",
        alice.stdout
    );
    assert!(
        alice.stdout.contains("the verified Slack email"),
        "{}",
        alice.stdout
    );
    assert!(
        alice.stdout.contains("not cached (no database"),
        "{}",
        alice.stdout
    );

    let bob = f.identity("resolve", &["--slack-user", "U0BOBBY"]).await;
    assert_eq!(bob.exit, 0, "{bob:?}");
    assert!(
        bob.stdout.starts_with("U0BOBBY → PBOB001 Bob Li"),
        "{}",
        bob.stdout
    );
    assert!(
        bob.stdout.contains("an [[identity]] override"),
        "{}",
        bob.stdout
    );
    assert!(
        !f.database.exists(),
        "resolve does not create the server's database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_refusals_exit_1_with_the_fix() {
    let w = world().await;
    let f = Files::new("");
    std::fs::write(&f.config, w.config(&f.database, "")).unwrap();
    for (user, code, fix) in [
        (
            "U0CAROL",
            "no_pd_user_with_email",
            "No PagerDuty user has the email carol@example.com",
        ),
        ("U0BOT", "bot", "only people can act"),
        ("U0GHOST", "slack_user_not_found", "could not be looked up"),
    ] {
        let report = f.identity("resolve", &["--slack-user", user]).await;
        assert_eq!(report.exit, 1, "{user}: {report:?}");
        assert!(
            report
                .stdout
                .starts_with(&format!("{user} is refused ({code}): ")),
            "{}",
            report.stdout
        );
        assert!(report.stdout.contains(fix), "{}", report.stdout);
        assert!(report.stdout.contains("--refresh"), "{}", report.stdout);
    }
}

/// Writes a fresh forward mapping of U0ALICE to a PagerDuty user she no longer is, encoded
/// exactly as the server caches it.
async fn cache_stale_alice(w: &World, database: &Path) {
    let store = Arc::new(Store::open(database).unwrap());
    let value = CacheValue::Forward {
        basis: MappingBasis {
            override_target: None,
            home_team: Some(w.slack.team_id()),
        },
        outcome: MappingOutcome::Mapped(MappedUser {
            slack_user: SlackUserId::new("U0ALICE"),
            pd_user: PdUserId::new("PSTALE1"),
            email: Email::new("alice.old@example.com"),
            name: "Alice (old account)".to_owned(),
            teams: vec![],
            role: None,
            source: MappingSource::VerifiedEmail,
        }),
    };
    let entry = CacheTtls::default().entry(
        CacheKey::Slack(SlackUserId::new("U0ALICE")),
        value,
        pdbridge::clock::now(),
    );
    StoreCache(store).put(entry).await.unwrap();
}

async fn cached_alice(database: &Path) -> Option<CacheEntry> {
    let store = Arc::new(Store::open(database).unwrap());
    StoreCache(store)
        .get(&CacheKey::Slack(SlackUserId::new("U0ALICE")))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ignores_and_rewrites_a_stale_cached_mapping() {
    let w = world().await;
    let f = Files::new("");
    std::fs::write(&f.config, w.config(&f.database, "")).unwrap();
    cache_stale_alice(&w, &f.database).await;
    let args = ["--slack-user", "U0ALICE"];

    let cached = f.identity("resolve", &args).await;
    assert_eq!(cached.exit, 0, "{cached:?}");
    assert!(
        cached.stdout.starts_with("U0ALICE → PSTALE1"),
        "{}",
        cached.stdout
    );
    assert!(cached.stdout.contains("cached in "), "{}", cached.stdout);
    let asked = w.slack.requests_to("users.info").len();
    assert_eq!(asked, 0, "a fresh cached answer asks nobody");

    let refreshed = f
        .identity("resolve", &[&args[..], &["--refresh"]].concat())
        .await;
    assert_eq!(refreshed.exit, 0, "{refreshed:?}");
    assert!(
        refreshed
            .stdout
            .starts_with("U0ALICE → PALICE1 Alice Ng <alice@example.com>"),
        "{}",
        refreshed.stdout
    );
    assert!(
        refreshed
            .stdout
            .contains("asked Slack and PagerDuty; cached in"),
        "{}",
        refreshed.stdout
    );
    let entry = cached_alice(&f.database).await.unwrap();
    let CacheValue::Forward { outcome, .. } = entry.value else {
        panic!("not a forward entry");
    };
    assert_eq!(outcome.mapped().unwrap().pd_user, PdUserId::new("PALICE1"));

    // The next plain resolve uses the rewritten entry.
    let again = f.identity("resolve", &args).await;
    assert!(
        again.stdout.starts_with("U0ALICE → PALICE1"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("\n  via the verified Slack email; cached in ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_drop_the_cached_mapping_and_list_cached_shows_expiry() {
    let w = world().await;
    let f = Files::new("");
    std::fs::write(&f.config, w.config(&f.database, "")).unwrap();
    cache_stale_alice(&w, &f.database).await;

    let listed = f.identity("list", &["--cached"]).await;
    assert_eq!(listed.exit, 0, "{listed:?}");
    assert!(
        listed.stdout.starts_with("No [[identity]] overrides"),
        "{}",
        listed.stdout
    );
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("slack:U0ALICE"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(
        row.contains("PSTALE1 Alice (old account) <alice.old@example.com> (verified email)"),
        "{row}"
    );
    let year = OffsetDateTime::now_utc().year().to_string();
    assert!(row.contains(&year) && !row.contains("expired"), "{row}");

    let json = f.identity("list", &["--cached", "--json"]).await;
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["cached"][0]["key"], "slack:U0ALICE");
    assert_eq!(doc["cached"][0]["fresh"], true);
    assert_eq!(doc["cached"][0]["entry"]["key"]["slack"], "U0ALICE");

    // add: `server.database` comes from the file; the stale answer goes at once.
    let added = f
        .identity(
            "add",
            &["--slack-user", "U0ALICE", "--pd-email", "alice@example.com"],
        )
        .await;
    assert_eq!(added.exit, 0, "{added:?}");
    assert!(
        added
            .stdout
            .contains("Dropped the cached mapping of U0ALICE"),
        "{}",
        added.stdout
    );
    assert_eq!(cached_alice(&f.database).await, None);

    let resolved = f.identity("resolve", &["--slack-user", "U0ALICE"]).await;
    assert!(
        resolved.stdout.contains("an [[identity]] override"),
        "{resolved:?}"
    );

    cache_stale_alice(&w, &f.database).await;
    let removed = f.identity("remove", &["--slack-user", "U0ALICE"]).await;
    assert_eq!(removed.exit, 0, "{removed:?}");
    assert!(
        removed.stdout.contains("Dropped the cached mapping"),
        "{}",
        removed.stdout
    );
    assert_eq!(cached_alice(&f.database).await, None);
    let store = Store::open(&f.database).unwrap();
    let left = store
        .read(|tx| tx.identity_including_expired(&IdentityKey::new("slack:U0ALICE")))
        .unwrap();
    assert_eq!(left, None);
}

#[test]
fn the_binary_exits_64_on_bad_config_and_1_on_absent_entries() {
    let bad = Files::new(&CONFIG.replace("pd_user = \"PALICE1\"", "pd_email = \"alice\""));
    for sub in ["list", "resolve"] {
        let mut cmd = common::pdbridge();
        cmd.args(["identity", sub, "--config", bad.config()]);
        if sub == "resolve" {
            cmd.args(["--slack-user", "U0ALICE"]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{sub}: {out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("identity"), "{stderr}");
        assert!(stderr.contains("\"alice\""), "{stderr}");
    }

    // resolve loads the whole configuration like `serve`: missing secrets are a bad config.
    let good = Files::new(CONFIG);
    let out = common::pdbridge()
        .args([
            "identity",
            "resolve",
            "--config",
            good.config(),
            "--slack-user",
            "U0ALICE",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("pagerduty.token"), "{stderr}");

    let out = common::pdbridge()
        .args([
            "identity",
            "remove",
            "--config",
            good.config(),
            "--slack-user",
            "U0NOBODY",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(good.text(), CONFIG);

    let out = common::pdbridge()
        .args(["identity", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--config"), "{stderr}");
}

/// The required secrets, as the environment would give them.
fn secrets() -> BTreeMap<String, String> {
    [
        ("PAGERDUTY_TOKEN", "pd-token"),
        ("PAGERDUTY_WEBHOOK_SECRETS", "whsec-1"),
        ("SLACK_BOT_TOKEN", "xoxb-1"),
        ("SLACK_SIGNING_SECRET", "sign"),
        ("SLACK_DEFAULT_CHANNEL", "C0DEFAULT"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The first ```toml block after `marker` in `text`.
fn toml_block_after<'t>(text: &'t str, marker: &str) -> &'t str {
    let from = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not found"));
    let rest = &text[from..];
    let start = rest.find("```toml\n").expect("a ```toml block") + "```toml\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    &rest[start..start + len]
}

#[test]
fn readme_configuration_example_parses_as_the_server_parses_it() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let block = toml_block_after(readme, "The file also holds routes");
    let config = Config::from_toml_str(block, &secrets())
        .unwrap_or_else(|e| panic!("README's Configuration example: {e}\n{block}"));
    assert!(!config.routes.is_empty());
    assert_eq!(config.identity.len(), 2);
    // The identity commands read and edit it too.
    pdbridge::ops::identity_cmd::parse_overrides(block, "README.md").unwrap();
}

/// Kills the child on drop, so a failing test leaves no server behind.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `/pd whoami` answers for `user` (inline, or through `response_url` when slow).
async fn whoami(w: &World, addr: &str, user: &str) -> Option<String> {
    let before = w.slack.responses().len();
    let reply = w
        .slack
        .slash_command(
            &format!("http://{addr}/slack/commands"),
            &signing::SlackSigningSecret::new("signsecret"),
            &SlackUserId::new(user),
            &ids::ChannelId::new("C0ALL"),
            "/pd",
            "whoami",
        )
        .await
        .ok()?;
    let inline = reply.json()["text"].as_str().unwrap_or_default().to_owned();
    if inline.contains(user) {
        return Some(inline);
    }
    for _ in 0..100 {
        if let Some(later) = w.slack.responses().get(before) {
            return Some(format!("{later:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_an_added_override_on_sighup() {
    let w = world().await;
    let f = Files::new("");
    std::fs::write(&f.config, w.config(&f.database, "")).unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let child = common::pdbridge()
        .args(["serve", "--config", f.config()])
        .env("PDBRIDGE_LISTEN", &addr)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);

    // Bob's Slack email is not his PagerDuty login: refused until an override maps him.
    let mut answer = None;
    for _ in 0..400 {
        answer = whoami(&w, &addr, "U0BOBBY").await;
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let answer = answer.expect("the server never answered /pd whoami");
    assert!(answer.contains("cannot act through pdbridge"), "{answer}");

    let added = f
        .identity("add", &["--slack-user", "U0BOBBY", "--pd-user", "PBOB001"])
        .await;
    assert_eq!(added.exit, 0, "{added:?}");
    // Not applied before the reload: the server still holds the table it started with.
    let before = whoami(&w, &addr, "U0BOBBY").await.unwrap();
    assert!(before.contains("cannot act through pdbridge"), "{before}");

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut mapped = String::new();
    for _ in 0..200 {
        mapped = whoami(&w, &addr, "U0BOBBY").await.unwrap_or_default();
        if mapped.contains("PBOB001") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        mapped.contains("PBOB001") && mapped.contains("an [[identity]] override"),
        "{mapped}"
    );

    // A broken file on SIGHUP keeps the table in force and the server up.
    std::fs::write(&f.config, "[[identity]]\nslack_user = \"U0BOBBY\"\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let still = whoami(&w, &addr, "U0BOBBY").await.unwrap();
    assert!(still.contains("PBOB001"), "{still}");
    let mut server = server;
    assert_eq!(server.0.try_wait().unwrap(), None, "the server exited");
}
