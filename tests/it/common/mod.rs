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
