//! `combine`: each vantage point's latest run of a policy taken together, recorded as a run of
//! its own kind; and `import atlas`, which records RIPE Atlas probes' results as vantage runs.

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

/// `import atlas`: every probe's run recorded; problems in the files on stderr, with the file.
pub(super) fn import_atlas(args: &ImportAtlasArgs) -> Result<Exit, CliError> {
    let policy = crate::policy::load(&args.policy)?;
    let options = crate::run::MeasureOptions {
        registry: args.registry.overrides(),
        cloud_ranges: args.declared.cloud_ranges.clone(),
        ..crate::run::MeasureOptions::default()
    };
    let prepared = crate::run::prepare(policy, &options)?;
    let input = crate::run::import::read_atlas(&args.results, args.probes.as_deref())
        .map_err(crate::run::RunError::from)?;
    for f in &input.files {
        for p in &f.problems {
            errln!("warning: {}: {p}", f.file.display());
        }
    }
    let registry = options.registry.registry(&prepared.policy().registry)?;
    let mut history = History::open(&args.db.path())?;
    let runtime = super::measure_commands::runtime()?;
    let mut notes = Vec::new();
    let runs = crate::run::import::import_atlas(
        &mut history,
        &prepared,
        &input,
        registry,
        &runtime,
        &mut notes,
    )?;
    for n in &notes {
        errln!("warning: {n}");
    }
    let mut worst = crate::model::Verdict::Compliant;
    let mut json = Vec::new();
    for (doc, stored) in &runs {
        worst = worst.max(doc.verdict);
        match args.format {
            Format::Table => outln!(
                "{}: run #{} seq {} {} hash {} ({})",
                doc.measured_from.as_ref().map_or("?", |m| m.label.as_str()),
                stored.run_id,
                stored.seq,
                doc.verdict.as_str(),
                stored.hash,
                doc.vantage
                    .map_or_else(|| "no usable location".to_string(), |v| v.to_string())
            ),
            Format::Json => json.push(with_history(doc, stored)?),
        }
    }
    match args.format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&json)?),
        Format::Table => outln!(
            "{} vantage runs recorded; take them together with `residency combine {}`",
            runs.len(),
            prepared.policy().id
        ),
    }
    Ok(worst.into())
}
