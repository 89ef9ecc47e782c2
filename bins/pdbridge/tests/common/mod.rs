//! Helpers shared by the `pdbridge` integration tests.

use std::process::Command;

/// The built `pdbridge` binary, with every `PDBRIDGE_*`, `PAGERDUTY_*` and `SLACK_*` variable of
/// the test's own environment removed, so that only what a test sets reaches the process.
pub fn pdbridge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdbridge"));
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("PDBRIDGE_")
            || name.starts_with("PAGERDUTY_")
            || name.starts_with("SLACK_")
        {
            cmd.env_remove(&var);
        }
    }
    cmd
}
