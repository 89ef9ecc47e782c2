//! Tidy checks in the spirit of rust-analyzer's `xtask/src/tidy.rs`: they read the workspace's
//! manifests and sources and fail as soon as one of `docs/ARCHITECTURE.md`'s absences stops being
//! true, so the document and the code cannot drift apart silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most lines a file under `bins/pdbridge/src` may have.
const MAX_LINES: usize = 600;

/// Files over `MAX_LINES` today, each with its line count as a ceiling it may not exceed. The list
/// only shrinks: an entry must be removed once its file is split below the limit or deleted.
const OVERSIZE_ALLOWED: &[(&str, usize)] = &[];

/// The only files of the binary that may read the clock.
const CLOCK_MODULES: &[&str] = &["bins/pdbridge/src/clock.rs"];

const CLOCK_READS: &[&str] = &["SystemTime::now", "Instant::now", "OffsetDateTime::now_utc"];

struct Package {
    name: String,
    /// The directory relative to the workspace root, e.g. `crates/store`.
    dir: String,
    manifest: toml::Table,
}

impl Package {
    /// A library crate lives under `crates/`; everything under `bins/` is a binary.
    fn is_library(&self) -> bool {
        self.dir.starts_with("crates/")
    }

    /// The packages this one depends on outside tests: `[dependencies]` and
    /// `[build-dependencies]`, including target-specific ones, by package name.
    fn dependencies(&self) -> BTreeSet<String> {
        let mut tables = vec![&self.manifest];
        if let Some(targets) = self.manifest.get("target").and_then(toml::Value::as_table) {
            tables.extend(targets.values().filter_map(toml::Value::as_table));
        }
        let mut names = BTreeSet::new();
        for table in tables {
            for kind in ["dependencies", "build-dependencies"] {
                let Some(deps) = table.get(kind).and_then(toml::Value::as_table) else {
                    continue;
                };
                for (key, value) in deps {
                    let renamed = value.get("package").and_then(toml::Value::as_str);
                    names.insert(renamed.unwrap_or(key).to_owned());
                }
            }
        }
        names
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The workspace members, from the root manifest's `members` globs (each `dir/*`).
fn packages() -> Vec<Package> {
    let root = root();
    let manifest: toml::Table = toml::from_str(&read(&root.join("Cargo.toml"))).unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    let mut packages = Vec::new();
    for member in members {
        let pattern = member.as_str().unwrap();
        let parent = pattern
            .strip_suffix("/*")
            .unwrap_or_else(|| panic!("member pattern {pattern} is not `dir/*`"));
        let mut dirs: Vec<_> = std::fs::read_dir(root.join(parent))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let manifest: toml::Table = toml::from_str(&read(&dir.join("Cargo.toml"))).unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            let dir = format!("{parent}/{}", dir.file_name().unwrap().to_str().unwrap());
            packages.push(Package {
                name,
                dir,
                manifest,
            });
        }
    }
    assert!(
        packages.len() >= 10,
        "found only {} packages",
        packages.len()
    );
    packages
}

fn package<'a>(packages: &'a [Package], name: &str) -> &'a Package {
    packages
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

/// Every `.rs` file under `dir` (relative to the root), as root-relative paths with `/`.
fn rust_files(dir: &str) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.insert(relative.replace('\\', "/"), read(&path));
            }
        }
    }
    let root = root();
    let mut files = BTreeMap::new();
    walk(&root, &root.join(dir), &mut files);
    files
}

#[test]
fn sync_core_and_signing_depend_on_no_workspace_crate_but_ids() {
    let packages = packages();
    let workspace: BTreeSet<_> = packages.iter().map(|p| p.name.clone()).collect();
    for name in ["sync-core", "signing"] {
        let inside: Vec<_> = package(&packages, name)
            .dependencies()
            .into_iter()
            .filter(|dep| workspace.contains(dep) && dep != "ids")
            .collect();
        assert!(inside.is_empty(), "{name} depends on {inside:?}");
    }
}

#[test]
fn the_clients_depend_on_neither_each_other_nor_the_engine() {
    let packages = packages();
    for (client, other) in [("pd-client", "slack-client"), ("slack-client", "pd-client")] {
        let deps = package(&packages, client).dependencies();
        for banned in [other, "sync-core"] {
            assert!(!deps.contains(banned), "{client} depends on {banned}");
        }
    }
}

#[test]
fn sync_core_depends_on_no_runtime_database_or_randomness() {
    let packages = packages();
    let deps = package(&packages, "sync-core").dependencies();
    for banned in [
        "tokio",
        "hyper",
        "rusqlite",
        "fastrand",
        "rand",
        "getrandom",
    ] {
        assert!(!deps.contains(banned), "sync-core depends on {banned}");
    }
}

#[test]
fn only_store_and_the_binaries_use_rusqlite() {
    for p in packages() {
        if p.is_library() && p.name != "store" {
            assert!(
                !p.dependencies().contains("rusqlite"),
                "{} depends on rusqlite",
                p.name
            );
        }
    }
}

#[test]
fn no_library_crate_uses_anyhow() {
    for p in packages().iter().filter(|p| p.is_library()) {
        assert!(
            !p.dependencies().contains("anyhow"),
            "{} depends on anyhow",
            p.name
        );
    }
}

#[test]
fn no_library_crate_depends_on_tokio_and_rusqlite_together() {
    for p in packages().iter().filter(|p| p.is_library()) {
        let deps = p.dependencies();
        assert!(
            !(deps.contains("tokio") && deps.contains("rusqlite")),
            "{} depends on tokio and rusqlite",
            p.name
        );
    }
}

#[test]
fn no_unsafe_code_anywhere() {
    let root: toml::Table = toml::from_str(&read(&root().join("Cargo.toml"))).unwrap();
    let unsafe_code = root["workspace"]["lints"]["rust"]["unsafe_code"].as_str();
    assert_eq!(unsafe_code, Some("forbid"), "workspace lint unsafe_code");
    for p in packages() {
        let inherits = p
            .manifest
            .get("lints")
            .and_then(|lints| lints.get("workspace"))
            .and_then(toml::Value::as_bool);
        assert_eq!(
            inherits,
            Some(true),
            "{} must set `[lints] workspace = true`",
            p.name
        );
    }
}

#[test]
fn no_file_of_the_binary_exceeds_the_size_limit() {
    let files = rust_files("bins/pdbridge/src");
    let mut failures = Vec::new();
    for (path, text) in &files {
        let lines = text.lines().count();
        let ceiling = OVERSIZE_ALLOWED
            .iter()
            .find(|(allowed, _)| allowed == path)
            .map_or(MAX_LINES, |&(_, ceiling)| ceiling);
        if lines > ceiling {
            failures.push(format!("{path}: {lines} lines, at most {ceiling}"));
        }
    }
    for (path, _) in OVERSIZE_ALLOWED {
        match files.get(*path) {
            None => failures.push(format!("{path} is gone: remove it from OVERSIZE_ALLOWED")),
            Some(text) if text.lines().count() <= MAX_LINES => failures.push(format!(
                "{path} is within {MAX_LINES} lines now: remove it from OVERSIZE_ALLOWED"
            )),
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn no_clock_read_outside_the_clock() {
    let mut failures = Vec::new();
    for dir in ["crates/sync-core/src", "crates/signing/src"] {
        for (path, text) in rust_files(dir) {
            if CLOCK_READS.iter().any(|read| text.contains(read)) {
                failures.push(format!("{path} reads the clock: the caller passes `now`"));
            }
        }
    }
    let files = rust_files("bins/pdbridge/src");
    for (path, text) in &files {
        let reads = CLOCK_READS.iter().any(|read| text.contains(read));
        if reads && !CLOCK_MODULES.contains(&path.as_str()) {
            failures.push(format!("{path} reads the clock: take `now` from the clock"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// The `Result<…>` types in `text` whose error type is `String`.
fn string_error_results(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (start, _) in text.match_indices("Result<") {
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let inner = &text[start + "Result<".len()..];
        let (mut depth, mut last_comma, mut end) = (0usize, None, None);
        let mut previous = ' ';
        for (i, c) in inner.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if previous == '-' => {}
                '>' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '>' | ')' | ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => last_comma = Some(i),
                _ => {}
            }
            previous = c;
        }
        if let (Some(comma), Some(end)) = (last_comma, end)
            && inner[comma + 1..end].trim() == "String"
        {
            found.push(format!("Result<{}>", &inner[..end]));
        }
    }
    found
}

#[test]
fn no_internal_api_of_the_binary_returns_a_string_error() {
    assert_eq!(
        string_error_results("fn f(x: Box<dyn Fn() -> u8>) -> Result<Vec<u8>, String> {}"),
        ["Result<Vec<u8>, String>"]
    );
    let typed =
        "fn g(env: &BTreeMap<String, String>) -> Result<Self, ConfigError>; IoResult<u8, String>";
    assert!(string_error_results(typed).is_empty());
    let mut failures = Vec::new();
    for (path, text) in rust_files("bins/pdbridge/src") {
        // The operator commands print their errors at once and may keep them as text.
        if path.starts_with("bins/pdbridge/src/ops/") {
            continue;
        }
        for result in string_error_results(&text) {
            failures.push(format!("{path}: {result}"));
        }
    }
    assert!(
        failures.is_empty(),
        "use a typed error (or anyhow at the edge) instead:\n{}",
        failures.join("\n")
    );
}

#[test]
fn no_time_is_a_bare_integer_alias() {
    // Split so this file does not match itself.
    let alias = concat!("Unix", "Millis");
    let mut failures = Vec::new();
    for p in packages() {
        for (path, text) in rust_files(&p.dir) {
            if text.contains(alias) {
                failures.push(path);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "times are `ids::Timestamp`, ages `Duration`: {failures:?}"
    );
}

#[test]
fn no_test_reads_the_shared_reference_material() {
    // Split so this file does not match itself.
    let needles = [concat!("../", "shared"), concat!("/work/", "shared")];
    let mut failures = Vec::new();
    for p in packages() {
        for (path, text) in rust_files(&p.dir) {
            if needles.iter().any(|needle| text.contains(needle)) {
                failures.push(path);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "copy what tests need into fixtures/ instead: {failures:?}"
    );
}

#[test]
fn the_code_map_lists_every_workspace_crate() {
    let architecture = read(&root().join("docs/ARCHITECTURE.md"));
    for p in packages() {
        let row = format!("| `{}` |", p.dir);
        assert!(
            architecture.contains(&row),
            "docs/ARCHITECTURE.md's code map has no row {row}"
        );
    }
}

#[test]
fn the_code_map_lists_every_file_of_the_binary() {
    let architecture = read(&root().join("docs/ARCHITECTURE.md"));
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("bins/pdbridge/src")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let named = if entry.file_type().unwrap().is_dir() {
            format!("`{name}/")
        } else {
            format!("`{name}`")
        };
        if !architecture.contains(&named) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md's code map of the binary does not name {missing:?}"
    );
}
