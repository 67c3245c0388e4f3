//! The commands that compare runs and report on them: `diff`, `timeline`, `claims`, `report`
//! and `history verify --report`.

use std::path::Path;

use chrono::Utc;

use crate::compare::{self, RunRef};
use crate::history::History;
use crate::policy::PolicyId;
use crate::text;

use crate::report::table;

use super::args::*;
use super::{CliError, Exit};

pub(super) fn diff(
    policy: &PolicyId,
    from: &str,
    to: &str,
    format: Format,
    db: &Path,
) -> Result<Exit, CliError> {
    // Both references are checked before the database is opened (or created).
    let (from, to) = (RunRef::parse(from)?, RunRef::parse(to)?);
    let history = History::open(db)?;
    let d = compare::diff(&history, db, policy, from, to)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&d)?),
        Format::Table => out!("{}", table::diff(&d)),
    }
    Ok(Exit::Ok)
}

pub(super) fn timeline(
    policy: &PolicyId,
    since: Option<&str>,
    until: Option<&str>,
    per: compare::Per,
    format: Format,
    db: &Path,
) -> Result<Exit, CliError> {
    let since = since.map(|s| compare::parse_time(s, false)).transpose()?;
    let until = until.map(|s| compare::parse_time(s, true)).transpose()?;
    let history = History::open(db)?;
    let t = compare::timeline(&history, db, policy, since, until, per)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&t)?),
        Format::Table => out!("{}", table::timeline(&t)),
    }
    Ok(Exit::Ok)
}

pub(super) fn claims(policy: &PolicyId, format: Format, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let c = compare::claims(&history, db, policy)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&c)?),
        Format::Table => out!("{}", table::claims(&c)),
    }
    Ok(Exit::Ok)
}

/// `residency report`: build the context, render, write the file, say where it went.
pub(super) fn report(args: &ReportArgs) -> Result<Exit, CliError> {
    use crate::report::{context, render};
    // Everything the user typed is checked before the database is opened (or created).
    let format = render::OutputFormat::from_path(&args.out)?;
    let selection = match (&args.run, &args.since, &args.until) {
        (Some(run), _, _) => context::Selection::Run(Some(RunRef::parse(run)?)),
        (None, None, None) => context::Selection::Run(None),
        (None, since, until) => context::Selection::Period {
            since: since.as_deref().map(|s| parse_when(s, false)).transpose()?,
            until: until.as_deref().map(|s| parse_when(s, true)).transpose()?,
        },
    };
    let db = args.db.path();
    let history = History::open(&db)?;
    let options = context::Options {
        generated_at: Utc::now(),
        verify_chain: !args.no_verify,
        full_verify: args.full_verify,
    };
    let ctx = context::build(&history, &db, &args.policy_id, &selection, &options)?;
    let bytes = render::render(&ctx, format, args.template.as_deref())?;
    std::fs::write(&args.out, &bytes).map_err(|e| crate::report::ReportError::Write {
        path: args.out.clone(),
        source: e,
    })?;
    outln!(
        "{}: {} report of {} ({} run(s), latest {} {}), {} bytes",
        args.out.display(),
        format.as_str(),
        args.policy_id,
        ctx.runs.len(),
        ctx.run.id,
        ctx.run.verdict,
        bytes.len()
    );
    if ctx.provenance.chain_verified == Some(false) {
        errln!(
            "warning: the chain of {} is broken; the report says so. See `residency history verify --policy {}`",
            args.policy_id,
            args.policy_id
        );
    }
    Ok(Exit::Ok)
}

/// `residency history verify --report FILE`: exit 0 when the report matches the history, 2 when not.
pub(super) fn verify_report(file: &Path, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let check = crate::report::provenance::check_report(&history, file)?;
    out!("{check}");
    Ok(if check.matches {
        Exit::Ok
    } else {
        Exit::Violation
    })
}
