//! Shared helpers for the integration tests: the lab's real DNS server and `.mmdb` fixtures.
#![allow(dead_code)]

pub mod dns;
pub mod mmdb;
