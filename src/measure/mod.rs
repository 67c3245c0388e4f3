//! Measure: what the network did when asked, with no country named anywhere in here.
//!
//! Owns what a check measures from this vantage point and the checks that tell which replies
//! came from the target at all: [`resolve`] (DNS through the configured resolvers,
//! with client subnets), [`trace`] (paths and round-trip times), and [`integrity`] (canaries,
//! per-target consistency and reply TTLs: whether the network in between answered instead);
//! [`http`] (one HEAD per address and name: the certificate and the headers that name a CDN
//! edge); [`capture`], what a device contacted on its own, read from its traffic;
//! [`atlas`], what RIPE Atlas probes measured elsewhere, read from their results;
//! [`globalping`], the same from Globalping's probes; and [`vantage`], who measured a run.
//! Where an address is, is for [`crate::sources`] to say.

pub mod atlas;
pub mod capture;
pub mod globalping;
pub mod http;
pub mod integrity;
pub mod remote_api;
pub mod resolve;
pub mod trace;
pub mod vantage;
