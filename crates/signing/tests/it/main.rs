//! The integration tests of `signing`, one module per former test binary, linked once.

mod signing;
