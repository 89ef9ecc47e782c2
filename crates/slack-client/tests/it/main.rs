//! The integration tests of `slack-client`, one module per former test binary, linked once.

mod against_fake;
mod blocks;
mod methods;
mod payloads;
