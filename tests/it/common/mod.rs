//! Shared helpers for the integration tests: the lab's real DNS server, `.mmdb` fixtures and the
//! network lab of namespaces, routers and delay links.
#![allow(dead_code)]

pub mod cmd;
pub mod dns;
pub mod mmdb;
pub mod netns;
pub mod pg;
pub mod registry;
pub mod rundoc;
pub mod scenario;

/// A policy id written in a test; panics on a typo in the test itself.
pub fn pid(s: &str) -> residency::policy::PolicyId {
    residency::policy::PolicyId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}
