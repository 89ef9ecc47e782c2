//! The integration tests of `fakes`, one module per former test binary, linked once.

mod pd_fake;
mod slack_fake;
