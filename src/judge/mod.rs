//! Judge: the evidence about each address, taken together and held against the policy.
//!
//! Owns the decision and its reasons: [`fusion`] decides where an address is (the located
//! countries, a confidence, the evidence that decided it), and [`verdict`] applies the policy's
//! allowed and denied countries to that, to an endpoint's resolutions and to a whole run.
//! Anything that was not measured can never come out `compliant`.

pub mod fusion;
pub mod verdict;
