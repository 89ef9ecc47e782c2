//! The integration tests of `pd-client`, one module per former test binary, linked once.

mod client_fake;
mod models;
mod tracing_redaction;
