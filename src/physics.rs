//! Round-trip-time physics: how far away an address can possibly be.
//!
//! Owns the speed-of-light bound and the geometry behind it: great-circle distance, the
//! maximum distance a minimum RTT allows from the vantage point, and which countries lie
//! within that distance (from the shipped country shapes in `data/`).
