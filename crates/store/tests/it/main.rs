//! The integration tests of `store`, one module per former test binary, linked once.

mod declarations;
mod outbox_model;
mod store;
mod wal;
