//! Geolocation from offline MaxMind-format databases.
//!
//! Owns turning an IP address into [`Evidence`]: one piece per database, including a database
//! that had no record for the address, so disagreement and ignorance both stay visible.

use std::net::IpAddr;

use crate::model::Evidence;

/// A source of location evidence for an address. The real one is [`MmdbDatabase`].
pub trait Locate: Send + Sync {
    /// Name of the source as it appears in evidence and reports.
    fn name(&self) -> &str;
    /// What this source says about `ip`. A missing record is evidence with `country: None`.
    fn locate(&self, ip: IpAddr) -> Evidence;
}
