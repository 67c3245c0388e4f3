//! The commands that read the history: `history` (runs, events, failures, alerts), `show`,
//! `history verify` and `alerts resend`.

use std::path::{Path, PathBuf};

use crate::history::History;
use crate::history::RunId;
use crate::history::Stored;
use crate::policy::PolicyId;
use crate::record::RunDocument;
use crate::report::table;
use crate::run;
use crate::text;

use super::args::*;
use super::measure_commands::{load_all, runtime, tell};
use super::{CliError, Exit};

pub(super) fn list_runs(args: &HistoryListArgs) -> Result<Exit, CliError> {
    // The window is checked before the history is opened (or created).
    let filter = args.filter()?;
    let runs = History::open(&args.db.path())?.list(&filter)?;
    print_rows(&runs, args.format, table::runs)?;
    Ok(Exit::Ok)
}

/// Prints `rows` as JSON, or as the terminal table `table` makes of them.
pub(super) fn print_rows<T: serde::Serialize>(
    rows: &[T],
    format: Format,
    table: fn(&[T]) -> String,
) -> Result<(), CliError> {
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(rows)?),
        Format::Table => text::print_out(&table(rows)),
    }
    Ok(())
}

pub(super) fn list_events(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let events = History::open(&args.db.path())?.events(&filter)?;
    print_rows(&events, args.format, table::events)?;
    Ok(Exit::Ok)
}

pub(super) fn list_failures(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let failures = History::open(&args.db.path())?.failed_runs(&filter)?;
    print_rows(&failures, args.format, table::failures)?;
    Ok(Exit::Ok)
}

pub(super) fn list_alert_deliveries(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let deliveries = History::open(&args.db.path())?.alert_deliveries(&filter)?;
    print_rows(&deliveries, args.format, table::alert_deliveries)?;
    Ok(Exit::Ok)
}

/// `alerts resend`: one line per alert owed, on stdout when delivered, on stderr when not.
pub(super) fn resend(
    files: &[PathBuf],
    policy: Option<&PolicyId>,
    db: &Path,
) -> Result<Exit, CliError> {
    let policies = load_all(files)?;
    let mut history = History::open(db)?;
    let runtime = runtime()?;
    let resent = runtime.block_on(run::resend_alerts(
        &mut history,
        &policies,
        policy,
        &mut tell,
    ))?;
    if resent.is_empty() {
        outln!("no undelivered alerts");
        return Ok(Exit::Ok);
    }
    let mut all = true;
    for r in &resent {
        let what = format!(
            "the {} alert of run #{} of {}",
            r.event.as_str(),
            r.run_id,
            r.policy
        );
        match &r.result {
            Ok(tries) => outln!("{what}: delivered on try {tries}"),
            Err(e) => {
                all = false;
                errln!("{what}: {e}");
            }
        }
    }
    Ok(if all { Exit::Ok } else { Exit::Inconclusive })
}

pub(super) fn show(run_id: RunId, format: Format, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let run = history
        .get(run_id)?
        .ok_or_else(|| CliError::NoSuchRun(run_id, db.display().to_string()))?;
    let stored = Stored {
        run_id: run.id,
        seq: run.seq,
        hash: run.hash.clone(),
        database: db.display().to_string(),
    };
    match format {
        Format::Json => {
            let mut value = run.document.clone();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert(
                    "history".into(),
                    serde_json::json!({"run_id": run.id, "seq": run.seq, "hash": run.hash, "prev_hash": run.prev_hash, "database": stored.database}),
                );
            }
            text::print_json(&serde_json::to_string_pretty(&value)?);
        }
        Format::Table => {
            let doc: RunDocument = serde_json::from_value(run.document.clone())
                .map_err(|e| CliError::Unreadable(run.id, e.to_string()))?;
            out!("{}", table::run_document(&doc, Some(&stored)));
        }
    }
    Ok(Exit::Ok)
}

pub(super) fn verify(policy: Option<&PolicyId>, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let report = history.verify(policy)?;
    out!("{report}");
    Ok(if report.is_intact() {
        Exit::Ok
    } else {
        Exit::Violation
    })
}
