//! Log setup: `tracing` with `RUST_LOG` filtering (default `info`), pretty or JSON lines.
//!
//! Secrets never reach a log line: they are held in [`ids::Secret`] (whose `Debug` prints
//! `<redacted>` and which has no `Display`) or in `signing`'s key types, which print the same.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
