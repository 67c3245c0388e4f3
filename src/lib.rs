//! `residency`: verify where a vendor's services really are.
//!
//! The pipeline flows one way, and the modules below are listed in its order: a [`policy`] is
//! [`measure`]d, [`sources`] say where each address is, the [`judge`] weighs it against the
//! policy, [`check`] runs that end to end into one run document, [`run`] takes one run from its
//! lock to its record and alert (and schedules runs), [`history`] keeps the hash-chained record,
//! [`combine`] takes many vantage points' runs of a policy together into one, [`compare`] and
//! [`report`] read it back, and [`cli`] is the command-line surface. The [`record`] (the run document) sits between judging and checking: it is what `check` produces
//! and what everything after it reads.

/// Domain types shared by every stage: countries, verdicts, confidence, evidence, coordinates.
pub mod model;
/// Text measured from the network, made safe to show on a terminal, in logs, JSON and reports.
pub mod text;
/// One way to write timestamps, in the three precisions that hashes and stored text rely on.
pub mod time;

/// What the user asks: endpoints, claimed and allowed countries, resolvers, limits; loaded and
/// validated.
pub mod policy;

/// What the network did: DNS resolution, traces and RTTs, and whether the replies are genuine.
pub mod measure;

/// Who says where an address is: databases, registries, PTR hints, physics; gathered per address.
pub mod sources;

/// All the evidence taken together and held against the policy: compliant, violation, inconclusive.
pub mod judge;

/// The run document: the hashed JSON contract of one run, read by history, compare and report.
pub mod record;

/// The pipeline end to end (`check`), and its policy-less cousins `locate` and `doctor`.
pub mod check;

/// One run of a policy: its lock, its record, its alert; and the `watch` schedule.
pub mod run;

/// The tamper-evident, hash-chained history of runs, in SQLite or PostgreSQL.
pub mod history;

/// Many vantage points' runs of a policy taken together: multilateration, anycast sites,
/// catchments, one combined run.
pub mod combine;

/// Runs against runs: diff, timeline and claims over the history.
pub mod compare;

/// Reports (HTML, PDF, Markdown) and terminal tables of runs and periods.
pub mod report;

/// The command-line surface: arguments, dispatch, printing.
pub mod cli;
