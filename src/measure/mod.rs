//! Measure: what the network did when asked, with no country named anywhere in here.
//!
//! Owns the three measurements a check makes from this vantage point and the checks that tell
//! which replies came from the target at all: [`resolve`] (DNS through the configured resolvers,
//! with client subnets), [`trace`] (paths and round-trip times), and [`integrity`] (canaries,
//! per-target consistency and reply TTLs: whether the network in between answered instead);
//! [`http`] (one HEAD per address and name: the certificate and the headers that name a CDN
//! edge); and [`capture`], what a device contacted on its own, read from its traffic.
//! Where an address is, is for [`crate::sources`] to say.

pub mod capture;
pub mod http;
pub mod integrity;
pub mod resolve;
pub mod trace;
