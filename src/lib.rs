//! `residency`: verify where a vendor's services really are.
//!
//! The pipeline flows one way: [`policy`] → measurements ([`resolve`], [`geo`]) → [`verdict`]
//! → [`history`] → reports. [`check`] runs it end to end; [`run`] takes one run of a policy
//! from its lock to its record and alert; [`cli`] is the command-line surface.

pub mod alerts;
pub mod check;
pub mod cli;
pub mod compare;
pub mod digest;
pub mod doctor;
pub mod evidence;
pub mod fusion;
pub mod geo;
pub mod hints;
pub mod history;
pub mod integrity;
pub mod locate;
pub mod lock;
pub mod model;
pub mod physics;
pub mod policy;
pub mod registry;
pub mod report;
pub mod resolve;
pub mod run;
pub mod text;
pub mod trace;
pub mod verdict;
pub mod watch;
