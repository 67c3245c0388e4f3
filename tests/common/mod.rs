//! Helpers shared by the integration tests (temporary: the lead owns this file).

pub mod dns;
