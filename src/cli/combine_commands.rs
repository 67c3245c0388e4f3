//! `combine`: each vantage point's latest run of a policy taken together, recorded as a run of
//! its own kind.

use chrono::Utc;

use crate::combine;
use crate::history::{History, NewRun, Stored};
use crate::record::Window;
use crate::report::table;
use crate::text;

use super::args::*;
use super::measure_commands::with_history;
use super::{CliError, Exit};

pub(super) fn combine(args: &CombineArgs) -> Result<Exit, CliError> {
    let until = Utc::now();
    let since = until - chrono::Duration::from_std(args.window).unwrap_or(chrono::Duration::MAX);
    let history_path = args.db.path();
    let mut history = History::open(&history_path)?;
    let runs = combine::select(&history, &args.policy_id, since, until)?;
    let window = Window {
        duration: humantime::format_duration(args.window).to_string(),
        seconds: args.window.as_secs(),
        since,
        until,
    };
    let doc = combine::combine(&runs, window).ok_or_else(|| combine::CombineError::NoRuns {
        policy: args.policy_id.clone(),
        since: crate::time::seconds(&since),
        until: crate::time::seconds(&until),
    })?;
    let stored = history.append(&NewRun {
        policy_id: doc.policy.id.clone(),
        started_at: doc.started_at,
        finished_at: doc.finished_at,
        verdict: doc.verdict,
        document: serde_json::to_value(&doc)?,
    })?;
    let stored = Stored {
        run_id: stored.id,
        seq: stored.seq,
        hash: stored.hash,
        database: history.path().display().to_string(),
    };
    match args.format {
        Format::Table => out!("{}", table::run_document(&doc, Some(&stored))),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&with_history(
            &doc, &stored,
        )?)?),
    }
    Ok(doc.verdict.into())
}
