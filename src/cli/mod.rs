//! The command-line surface, in two layers: `args.rs` is clap's definitions and the parsers that
//! turn text into typed values at the boundary; this file dispatches each parsed command to its
//! group (`measure_commands`, `discover_commands`, `history_commands`, `combine_commands`,
//! `compare_commands`, `manual_commands`).
//!
//! Owns nothing of the measurement itself. Each command returns an [`Exit`] code following
//! the monitoring-plugin convention, or a [`CliError`] that the binary prints and maps to 3.

use crate::compare;
use crate::history;
use crate::history::RunId;
use crate::measure::resolve;
use crate::model::Verdict;
use crate::policy::PolicyError;
use crate::run::RunError;
use crate::run::schedule::ScheduleError;
use crate::sources::geo;
use crate::sources::registry::RegistryError;

/// `print!` with hostile text made visible (see [`crate::text`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::text::print_out(&format!($($arg)*)) };
}

/// `println!` with hostile text made visible.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::text::print_out(&(format!($($arg)*) + "\n")) };
}

/// `eprintln!` with hostile text made visible.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::text::print_err(&(format!($($arg)*) + "\n")) };
}

/// Exit codes, as monitoring plugins (Nagios, Icinga) and schedulers read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Inconclusive = 1,
    Violation = 2,
    Error = 3,
}

impl From<Verdict> for Exit {
    fn from(v: Verdict) -> Exit {
        match v {
            Verdict::Compliant => Exit::Ok,
            Verdict::Inconclusive => Exit::Inconclusive,
            Verdict::Violation => Exit::Violation,
        }
    }
}

/// Everything that stops a command; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Data(#[from] crate::sources::data::DataError),
    #[error("data source {0}")]
    BadDataSource(String),
    #[error("cloud range file {0}")]
    CloudRanges(#[from] crate::sources::declared::RangeError),
    #[error(transparent)]
    Compare(#[from] compare::CompareError),
    #[error(transparent)]
    Combine(#[from] crate::combine::CombineError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Capture(#[from] crate::measure::capture::CaptureError),
    #[error(transparent)]
    Draft(#[from] crate::policy::draft::DraftError),
    #[error(
        "{} exists: pass --force to overwrite it, or give another --policy-out",
        .0.display()
    )]
    DraftExists(std::path::PathBuf),
    #[error("cannot write the draft policy {}: {source}: check the directory and its permissions", path.display())]
    DraftWrite {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "interrupted by a signal before the run of {0} was recorded; nothing was written, run `check` again"
    )]
    Interrupted(String),
    #[error("{0} of {1} policy files are invalid; nothing was checked")]
    InvalidPolicies(usize, usize),
    #[error("no run with id {0} in {1}: list runs with `residency history`")]
    NoSuchRun(RunId, String),
    #[error(
        "`{0}` is not a date: write YYYY-MM-DD or an RFC 3339 time such as 2026-11-27T06:00:00Z"
    )]
    BadDate(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot write the man pages to {}: {source}: pass a directory you can write to with --dir", dir.display())]
    ManPages {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "run {0} cannot be shown as a table ({1}); its full record is still there: `residency show {0} --format json`"
    )]
    Unreadable(RunId, String),
}

mod args;
mod combine_commands;
mod compare_commands;
mod discover_commands;
mod history_commands;
mod data_commands;
mod manual_commands;
mod measure_commands;

pub use args::*;
use compare_commands as compare_cmd;
use data_commands as data_cmd;
use discover_commands as discover_cmd;
use history_commands as history_cmd;
use measure_commands as measure_cmd;

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<Exit, CliError> {
    match cli.command {
        Command::Check(args) => measure_cmd::check(&args),
        Command::Watch(args) => measure_cmd::watch(&args),
        Command::Validate { files } => measure_cmd::validate(&files),
        Command::History {
            action:
                Some(HistoryAction::Verify {
                    report: Some(file),
                    db,
                    ..
                }),
            ..
        } => compare_cmd::verify_report(&file, &db.path()),
        Command::History {
            action: Some(HistoryAction::Verify { policy, db, .. }),
            ..
        } => history_cmd::verify(policy.as_ref(), &db.path()),
        Command::Report(args) => compare_cmd::report(&args),
        Command::History { action: None, list } => history_cmd::list_runs(&list),
        Command::History {
            action: Some(HistoryAction::Events(args)),
            ..
        } => history_cmd::list_events(&args),
        Command::History {
            action: Some(HistoryAction::Failures(args)),
            ..
        } => history_cmd::list_failures(&args),
        Command::History {
            action: Some(HistoryAction::Alerts(args)),
            ..
        } => history_cmd::list_alert_deliveries(&args),
        Command::Completions { shell } => manual_commands::completions(shell),
        Command::Man { dir } => manual_commands::man(&dir),
        Command::Show { run_id, format, db } => history_cmd::show(run_id, format, &db.path()),
        Command::Discover(args) => discover_cmd::discover(&args),
        Command::Locate(args) => measure_cmd::locate(&args),
        Command::Doctor(args) => measure_cmd::doctor(&args),
        Command::ClearCache { source } => measure_cmd::clear_cache(source),
        Command::Data { action } => data_cmd::data(&action),
        Command::Combine(args) => combine_commands::combine(&args),
        Command::Import {
            source: ImportSource::Atlas(args),
        } => combine_commands::import_atlas(&args),
        Command::Diff {
            policy_id,
            from,
            to,
            format,
            db,
        } => compare_cmd::diff(&policy_id, &from, &to, format, &db.path()),
        Command::Timeline {
            policy_id,
            since,
            until,
            per,
            format,
            db,
        } => compare_cmd::timeline(
            &policy_id,
            since.as_deref(),
            until.as_deref(),
            per.into(),
            format,
            &db.path(),
        ),
        Command::Claims {
            policy_id,
            format,
            db,
        } => compare_cmd::claims(&policy_id, format, &db.path()),
        Command::Alerts {
            action:
                AlertsAction::Resend {
                    policies,
                    policy,
                    db,
                },
        } => history_cmd::resend(&policies, policy.as_ref(), &db.path()),
    }
}
