//! The integration tests of `pdbridge-bench`, one module per former test binary, linked once.

mod baseline;
mod common;
mod fuzz_parsers;
mod harness;
