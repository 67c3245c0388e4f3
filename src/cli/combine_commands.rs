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
    let stored = append(&mut history, &doc)?;
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

/// `check --atlas` / `--globalping`: the probes asked, their runs recorded, then combined with
/// this machine's.
pub(super) struct RemoteRound {
    atlas: Option<(
        crate::measure::atlas::api::AtlasApi,
        crate::run::remote::AtlasPlan,
    )>,
    globalping: Option<(
        crate::measure::globalping::GlobalpingApi,
        Vec<crate::measure::globalping::Location>,
        std::time::Duration,
    )>,
}

impl RemoteRound {
    /// `None` without `--atlas` or `--globalping`; an error when a key or a URL is wrong.
    pub(super) fn from_args(args: &AtlasArgs) -> Result<Option<RemoteRound>, CliError> {
        use crate::measure::atlas::api::{AtlasApi, AtlasKey};
        use crate::run::RunError;
        let timeout = std::time::Duration::from_secs(30);
        let atlas = match &args.atlas {
            Some(selection) => {
                let key = AtlasKey::load(args.atlas_key_file.as_deref()).map_err(RunError::from)?;
                let api = AtlasApi::new(&args.atlas_url, key, timeout).map_err(RunError::from)?;
                Some((
                    api,
                    crate::run::remote::AtlasPlan {
                        probes: selection.0.clone(),
                        max_credits: args.max_credits,
                        wait: args.atlas_wait,
                    },
                ))
            }
            None => None,
        };
        let globalping = match &args.globalping {
            Some(locations) => {
                let api = crate::measure::globalping::GlobalpingApi::new(
                    &args.globalping_url,
                    args.globalping_token_file.as_deref(),
                    timeout,
                )
                .map_err(RunError::from)?;
                Some((api, locations.0.clone(), args.globalping_wait))
            }
            None => None,
        };
        Ok((atlas.is_some() || globalping.is_some()).then_some(RemoteRound { atlas, globalping }))
    }

    /// Measures `local`'s endpoints from the probes, records one run per probe and the combined
    /// run of all of them with `local`.
    pub(super) fn round(
        &self,
        runtime: &tokio::runtime::Runtime,
        history: &mut History,
        prepared: &crate::run::Prepared,
        options: &crate::run::MeasureOptions,
        (local, stored): (&crate::record::RunDocument, &Stored),
    ) -> Result<(crate::record::RunDocument, Stored), CliError> {
        use crate::run::RunError;
        let mut notes = Vec::new();
        let definitions = crate::run::remote::definitions(local, &mut notes);
        let bar = indicatif::ProgressBar::new(0);
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let registry = options.registry.registry(&prepared.policy().registry)?;
        let mut runs = Vec::new();
        if let Some((api, plan)) = &self.atlas {
            let description = format!("residency {}", prepared.policy().id);
            let input = runtime
                .block_on(crate::run::remote::measure(
                    api,
                    plan,
                    &definitions,
                    &description,
                    &bar,
                    &mut notes,
                ))
                .map_err(RunError::from)?;
            for f in &input.files {
                for p in &f.problems {
                    errln!("warning: {}: {p}", f.file.display());
                }
            }
            if input.results.is_empty() {
                notes.push("no RIPE Atlas probe reported a result".into());
            } else {
                runs.extend(crate::run::import::import_atlas(
                    history,
                    prepared,
                    &input,
                    registry.clone(),
                    runtime,
                    &mut notes,
                )?);
            }
        }
        if let Some((api, locations, wait)) = &self.globalping {
            let bar = indicatif::ProgressBar::hidden();
            let (results, probes) = runtime
                .block_on(crate::run::remote::measure_globalping(
                    api,
                    locations,
                    &definitions,
                    *wait,
                    &bar,
                    &mut notes,
                ))
                .map_err(RunError::from)?;
            if results.is_empty() {
                notes.push("no Globalping probe reported a result".into());
            } else {
                runs.extend(crate::run::import::import_remote(
                    history,
                    prepared,
                    &results,
                    &probes,
                    registry.clone(),
                    runtime,
                )?);
            }
        }
        if runs.is_empty() {
            notes.push("only this machine's run is combined".into());
        }
        for n in &notes {
            errln!("{n}");
        }
        for (doc, at) in &runs {
            outln!(
                "{}: run #{} seq {} {} hash {}",
                doc.measured_from.as_ref().map_or("?", |m| m.label.as_str()),
                at.run_id,
                at.seq,
                doc.verdict.as_str(),
                at.hash
            );
        }
        let vantage_runs: Vec<combine::VantageRun> = std::iter::once((local, stored))
            .chain(runs.iter().map(|(d, s)| (d, s)))
            .map(|(doc, at)| combine::VantageRun {
                run_id: at.run_id,
                seq: at.seq,
                hash: at.hash.clone(),
                started_at: doc.started_at,
                document: doc.clone(),
            })
            .collect();
        record_combined(history, prepared, &vantage_runs)
    }
}

/// The combined run of `vantage_runs`, over the window from the first of them to now,
/// recorded.
fn record_combined(
    history: &mut History,
    prepared: &crate::run::Prepared,
    vantage_runs: &[combine::VantageRun],
) -> Result<(crate::record::RunDocument, Stored), CliError> {
    let until = Utc::now();
    let since = vantage_runs
        .iter()
        .map(|r| r.started_at)
        .min()
        .unwrap_or(until);
    let span = (until - since).to_std().unwrap_or_default();
    let window = Window {
        duration: humantime::format_duration(std::time::Duration::from_secs(span.as_secs()))
            .to_string(),
        seconds: span.as_secs(),
        since,
        until,
    };
    let doc =
        combine::combine(vantage_runs, window).ok_or_else(|| combine::CombineError::NoRuns {
            policy: prepared.policy().id.clone(),
            since: crate::time::seconds(&since),
            until: crate::time::seconds(&until),
        })?;
    let at = append(history, &doc)?;
    Ok((doc, at))
}

/// Records a combined run in its policy's chain.
fn append(history: &mut History, doc: &crate::record::RunDocument) -> Result<Stored, CliError> {
    let recorded = history.append(NewRun {
        policy_id: doc.policy.id.clone(),
        started_at: doc.started_at,
        finished_at: doc.finished_at,
        verdict: doc.verdict,
        document: serde_json::to_value(doc)?,
    })?;
    Ok(Stored {
        run_id: recorded.id,
        seq: recorded.seq,
        hash: recorded.hash,
        database: history.path().display().to_string(),
    })
}
