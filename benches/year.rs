//! The benches' synthetic year: one real `residency check` of the 1,000-endpoint DNS lab policy
//! (knotd on 127.0.0.1) is the template of 1,460 six-hourly runs. The first `MOVED` endpoints
//! are located in CN (a violation) until `MOVE_DAY` and in IN after it, and every run a few
//! endpoints (a different few each time) come out inconclusive. Shared by `bench history` and
//! `bench report`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use residency::history::{History, NewRun, RunFilter};
use residency::model::{CountryCode, Verdict};
use residency::record::RunDocument;

use crate::dnslab::{ENDPOINTS, Lab};
use crate::util::run_bounded;

pub const RUNS_PER_DAY: u64 = 4;
pub const DAYS: u64 = 365;
/// Endpoints located in CN until `MOVE_DAY`, in IN after it.
pub const MOVED: usize = 100;
pub const MOVE_DAY: u64 = 120;
/// Endpoints that come out inconclusive in each run.
pub const FLAKY_PER_RUN: usize = 5;
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// Most appending the year may take; past it the bench fails rather than run on.
pub const FILL_BUDGET: Duration = Duration::from_secs(900);

pub fn residency_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_residency"))
}

/// One real `residency check` of the lab policy; its run document is the year's template.
pub fn template(lab: &Lab) -> Result<RunDocument, String> {
    let db = lab.dir.path().join("template.sqlite");
    let mut cmd = Command::new(residency_bin());
    cmd.arg("check")
        .arg(&lab.policy)
        .args(["--format", "json", "--db"])
        .arg(&db);
    let out = lab.dir.path().join("check.out");
    let err = lab.dir.path().join("check.err");
    let finished = run_bounded(cmd, &out, &err, RUN_DEADLINE)?
        .ok_or("the template `residency check` outlived its deadline")?;
    if finished.status.code().is_none_or(|c| c > 2) {
        return Err(format!(
            "the template check failed: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        ));
    }
    let history = History::open(&db).map_err(|e| e.to_string())?;
    let run = history
        .list(&RunFilter::default())
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the template check recorded no run")?;
    let stored = history
        .get(run.id)
        .map_err(|e| e.to_string())?
        .ok_or("the template run is gone")?;
    serde_json::from_value(stored.document).map_err(|e| e.to_string())
}

/// Run `k` of the year: the template with the vendor's state on that day.
pub fn synthetic(template: &RunDocument, start: DateTime<Utc>, k: u64) -> RunDocument {
    let mut doc = template.clone();
    let day = k / RUNS_PER_DAY;
    let duration = template.finished_at - template.started_at;
    doc.started_at = start + TimeDelta::hours(6 * k as i64);
    doc.finished_at = doc.started_at + duration;
    let cn: CountryCode = "CN"
        .parse()
        .unwrap_or_else(|_| unreachable!("CN is a country"));
    let india: CountryCode = "IN"
        .parse()
        .unwrap_or_else(|_| unreachable!("IN is a country"));
    let flaky_from = (k as usize * 7) % ENDPOINTS;
    for (i, e) in doc.endpoints.iter_mut().enumerate() {
        if i < MOVED {
            let (country, verdict) = if day < MOVE_DAY {
                (cn, Verdict::Violation)
            } else {
                (india, Verdict::Compliant)
            };
            for a in &mut e.addresses {
                a.country = Some(country);
                a.verdict = verdict;
            }
            e.verdict = verdict;
        }
        if (i + ENDPOINTS - flaky_from) % ENDPOINTS < FLAKY_PER_RUN {
            e.verdict = Verdict::Inconclusive;
        }
    }
    doc.verdict = doc
        .endpoints
        .iter()
        .map(|e| e.verdict)
        .max()
        .unwrap_or(Verdict::Inconclusive);
    doc
}

/// Appends `runs` synthetic runs from `start` through the real write path; returns how long
/// that took.
pub fn append_year(
    history: &mut History,
    template: &RunDocument,
    start: DateTime<Utc>,
    runs: u64,
) -> Result<Duration, String> {
    let fill_start = Instant::now();
    for k in 0..runs {
        if fill_start.elapsed() > FILL_BUDGET {
            return Err(format!("filling took over {FILL_BUDGET:?} at run {k}"));
        }
        let doc = synthetic(template, start, k);
        let run = NewRun {
            policy_id: doc.policy.id.clone(),
            started_at: doc.started_at,
            finished_at: doc.finished_at,
            verdict: doc.verdict,
            document: serde_json::to_value(&doc).map_err(|e| e.to_string())?,
        };
        history.append(run).map_err(|e| e.to_string())?;
    }
    Ok(fill_start.elapsed())
}
