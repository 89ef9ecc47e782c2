//! The integration tests of `identity`, one module per former test binary, linked once.

mod clients;
mod mapping;
mod policy;
mod resolver;
