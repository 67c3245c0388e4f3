//! Sources: who says where an address is, one module per kind of source.
//!
//! Owns the location evidence about an address: [`geo`] (geolocation databases), [`registry`]
//! (RDAP and WHOIS records of the address's holder), [`ptr`] (location hints in reverse-DNS
//! names), [`declared`] (what operators publish: cloud regions, geofeeds), [`cdn`] (the edge a
//! response names), [`physics`] (what the round-trip time allows, from the vantage point's position), and
//! [`evidence`], which gathers all of them, with the measured path and RTTs, for each address.
//! Nothing here knows the policy; [`crate::judge`] weighs what these say against it.

pub mod data;
pub mod cdn;
pub mod declared;
pub mod evidence;
pub mod geo;
pub mod physics;
pub mod ptr;
pub mod registry;
