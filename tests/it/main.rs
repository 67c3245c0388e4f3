//! The integration tests, one binary (one link of the crate, not one per file).
//!
//! Two tiers. The fast one, `scenarios` (worlds in `tests/scenarios/*.yaml` played through the
//! real pipeline by in-process fakes) and `properties`, needs nothing and sends nothing.
//! Everything else talks only to loopback or to network namespaces a test builds.
//! Tests that need root (network namespaces, raw sockets) are `#[ignore]`d with the reason and
//! run with `cargo test -- --include-ignored` as root, as `.ci/run` does; included without
//! root they fail and say why, they never pass by skipping.
//!
//! Modules follow the pipeline: policy, measure (discover, resolve, trace, lab), sources (geo, registry,
//! ptr, physics), judge (fusion), check and run (check, hostile, interception, netlab, alerts,
//! watch), history, compare, report, and the README's own promises.

mod common;

mod policies;

mod atlas;
mod atlas_api;
mod discover;
mod discover_lab;
mod http_lab;
mod lab;
mod resolve;
mod trace;

mod geo;
mod physics;
mod ptr;
mod registry;
mod registry_corpus;

mod declared;
mod data;

mod fusion;

mod alerts;
mod check;
mod hostile;
mod interception;
mod multi_vantage;
mod netlab;
mod scenarios;
mod watch;

mod history;

mod combine;
mod compare;

mod properties;

mod report;

mod cli;
mod layout;
mod readme;
