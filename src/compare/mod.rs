//! History comparisons: what changed between two runs of a policy (`diff`), how a policy's
//! verdicts and address geography moved over time (`timeline`), and whether each dated vendor
//! claim has held since it was announced (`claims`).
//!
//! This module owns reading recorded run documents back for comparison, choosing runs from a
//! user's `RUN|DATE` reference, the comparison rules below, and their table rendering. It never
//! writes to the history and never changes its schema.
//!
//! Documents are read through lenient views that take only the fields compared here (the
//! policy's claims; each endpoint's host and verdict; each address's ip, country, verdict and
//! path hop countries), so runs recorded by older releases stay comparable.
//!
//! # Choosing a run (`--from`, `--to`)
//!
//! A bare number is a run id, which must belong to the policy. `YYYY-MM-DD` means the last run of
//! the policy started on or before that day (UTC); an RFC 3339 time means the last run started at
//! or before that instant. Ties in `started_at` go to the higher run id.
//!
//! # Timelines
//!
//! A timeline reads the history's run index ([`crate::history::digest`]), never documents, so a year of
//! runs over a thousand endpoints stays fast. Address shares per run count each distinct
//! address once (see [`crate::history::digest`]); `share` is the count per country divided by the
//! located addresses, rounded to 4 decimals. Unlocated ones are counted separately so a falling
//! share is never mistaken for a move.
//!
//! Per day (`--per day`), a day's runs fold into one point: its verdict, and each endpoint's, is
//! the worst of the day (one violating run makes a violating day), and country counts are
//! summed over the day's runs, so shares are weighted by sightings.
//!
//! Endpoint verdicts are given as spans per endpoint: consecutive points with one verdict.

//! # The claim rule (`claims`)
//!
//! A claim dated `D` is in force from `D` 00:00 UTC: runs started before that instant are
//! *before* the claim, runs started at or after it are *after* it (a check made on the day of the
//! announcement tests it). Only `compliant` counts as holding; `inconclusive` does not, because a
//! claim that could not be verified has not been shown to hold. With the after-runs in time
//! order:
//!
//! * no run after `D`: **untested**;
//! * the latest is compliant: **holds since** the first run of the final unbroken compliant
//!   streak (every run from it on is compliant); the streak's runs are the evidence;
//! * the latest is not compliant but some run after `D` was: **broken**, `on` the date of the
//!   latest non-compliant run (the latest run), `since` the first run after the last compliant
//!   one; the non-compliant runs after the last compliant one are the evidence;
//! * no run after `D` was compliant: **never held**; every run after `D` is the evidence.
//!
//! `already_compliant` answers "was it already true before the announcement?": the verdict of the
//! last run before `D` was compliant (`null` when there was no run before `D`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::history::{History, HistoryError, IndexedRun, RunFilter, RunSummary};
use crate::model::Verdict;
use crate::time;

/// What stops a comparison; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error(
        "no runs of policy `{policy}` in {}: list recorded runs with `residency history`",
        db.display()
    )]
    UnknownPolicy { policy: String, db: PathBuf },
    #[error("no run with id {id} in {}: list runs with `residency history --policy POLICY_ID`", db.display())]
    NoSuchRun { id: i64, db: PathBuf },
    #[error(
        "run {id} belongs to policy `{actual}`, not `{wanted}`: list its runs with `residency history --policy {wanted}`"
    )]
    OtherPolicy {
        id: i64,
        actual: String,
        wanted: String,
    },
    #[error(
        "policy `{policy}` has no run started at or before {when}: its first run started at {first}; pick a later time"
    )]
    NothingBefore {
        policy: String,
        when: String,
        first: String,
    },
    #[error(
        "`{0}` is neither a run id nor a date: write a run id (e.g. 42), a date YYYY-MM-DD, or an RFC 3339 time such as 2026-11-27T06:00:00Z"
    )]
    BadReference(String),
    #[error(
        "`{0}` is not a date: write YYYY-MM-DD or an RFC 3339 time such as 2026-11-27T06:00:00Z"
    )]
    BadDate(String),
    #[error(
        "run {id} cannot be compared ({detail}); its full record is still there: `residency show {id} --format json`"
    )]
    Unreadable { id: i64, detail: String },
}

/// A user's reference to a run: `--from`/`--to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef {
    Id(i64),
    /// The last run started strictly before this instant (a day's end, or a time plus 1 µs).
    Before(DateTime<Utc>),
}

impl RunRef {
    pub fn parse(s: &str) -> Result<RunRef, CompareError> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(RunRef::Id)
                .map_err(|_| CompareError::BadReference(s.to_string()));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            // Stored times have microsecond precision; "at or before t" is "before t + 1 µs".
            return Ok(RunRef::Before(
                t.with_timezone(&Utc) + TimeDelta::microseconds(1),
            ));
        }
        parse_time(s, true)
            .map(RunRef::Before)
            .map_err(|_| CompareError::BadReference(s.to_string()))
    }
}

/// `YYYY-MM-DD` (UTC midnight, or the next midnight with `end_of_day`) or an RFC 3339 time.
pub fn parse_time(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, CompareError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| CompareError::BadDate(s.to_string()))?;
    let day = if end_of_day {
        day.succ_opt()
    } else {
        Some(day)
    };
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| CompareError::BadDate(s.to_string()))
}

// ---- Lenient views of the stored document -------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DocView {
    #[serde(default)]
    policy: PolicyView,
    #[serde(default)]
    endpoints: Vec<EndpointView>,
}

#[derive(Debug, Default, Deserialize)]
struct PolicyView {
    #[serde(default)]
    claims: Vec<ClaimView>,
}

#[derive(Debug, Clone, Deserialize)]
struct ClaimView {
    date: NaiveDate,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    statement: String,
    #[serde(default)]
    locations: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct EndpointView {
    host: String,
    verdict: Verdict,
    #[serde(default)]
    addresses: Vec<AddressView>,
}

#[derive(Debug, Deserialize)]
struct AddressView {
    ip: String,
    #[serde(default)]
    country: Option<String>,
    verdict: Verdict,
    #[serde(default)]
    path: Option<PathView>,
}

#[derive(Debug, Default, Deserialize)]
struct PathView {
    #[serde(default)]
    hops: Vec<HopView>,
}

#[derive(Debug, Default, Deserialize)]
struct HopView {
    #[serde(default)]
    country: Option<String>,
}

impl DocView {
    /// Countries of every located hop of every traced path in the run.
    fn transit(&self) -> BTreeSet<String> {
        self.endpoints
            .iter()
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.path.as_ref())
            .flat_map(|p| &p.hops)
            .filter_map(|h| h.country.clone())
            .collect()
    }
}

// ---- Shared output pieces ------------------------------------------------------------------

/// A run as comparisons name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRefInfo {
    pub id: i64,
    pub seq: i64,
    pub started_at: String,
    pub verdict: Verdict,
}

impl From<&RunSummary> for RunRefInfo {
    fn from(r: &RunSummary) -> RunRefInfo {
        RunRefInfo {
            id: r.id,
            seq: r.seq,
            started_at: time::micros(&r.started_at),
            verdict: r.verdict,
        }
    }
}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

/// The policy's runs, oldest first; an error when it has none at all.
fn runs_of(
    history: &History,
    db: &Path,
    policy: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<RunSummary>, CompareError> {
    let all = history.list(&RunFilter {
        policy_id: Some(policy.to_string()),
        since: None,
        until: None,
    })?;
    if all.is_empty() {
        return Err(CompareError::UnknownPolicy {
            policy: policy.to_string(),
            db: db.to_path_buf(),
        });
    }
    Ok(all
        .into_iter()
        .filter(|r| since.is_none_or(|s| r.started_at >= s))
        .filter(|r| until.is_none_or(|u| r.started_at < u))
        .collect())
}

fn document(history: &History, db: &Path, id: i64) -> Result<DocView, CompareError> {
    let text = history
        .document_text(id)?
        .ok_or_else(|| CompareError::NoSuchRun {
            id,
            db: db.to_path_buf(),
        })?;
    serde_json::from_str(&text).map_err(|e| CompareError::Unreadable {
        id,
        detail: e.to_string(),
    })
}

fn pick(
    runs: &[RunSummary],
    policy: &str,
    db: &Path,
    r: RunRef,
    history: &History,
) -> Result<RunSummary, CompareError> {
    match r {
        RunRef::Id(id) => {
            if let Some(found) = runs.iter().find(|s| s.id == id) {
                return Ok(found.clone());
            }
            match history.get(id)? {
                Some(other) => Err(CompareError::OtherPolicy {
                    id,
                    actual: other.policy_id,
                    wanted: policy.to_string(),
                }),
                None => Err(CompareError::NoSuchRun {
                    id,
                    db: db.to_path_buf(),
                }),
            }
        }
        RunRef::Before(until) => runs
            .iter()
            .filter(|s| s.started_at < until)
            .max_by_key(|s| (s.started_at, s.id))
            .cloned()
            .ok_or_else(|| CompareError::NothingBefore {
                policy: policy.to_string(),
                when: time::micros(&(until - TimeDelta::microseconds(1))),
                first: runs
                    .first()
                    .map(|f| time::micros(&f.started_at))
                    .unwrap_or_default(),
            }),
    }
}

// ---- diff ----------------------------------------------------------------------------------

/// An address as a diff shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressState {
    pub ip: String,
    pub country: Option<String>,
    pub verdict: Verdict,
}

/// An endpoint present in only one of the two runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointState {
    pub host: String,
    pub verdict: Verdict,
    pub addresses: Vec<AddressState>,
}

/// An address present in both runs whose country or verdict changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressChange {
    pub ip: String,
    pub country: Option<Change<Option<String>>>,
    pub verdict: Option<Change<Verdict>>,
}

/// An endpoint present in both runs, with what changed (only endpoints that changed are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointDiff {
    pub host: String,
    pub verdict: Option<Change<Verdict>>,
    pub addresses_added: Vec<AddressState>,
    pub addresses_removed: Vec<AddressState>,
    pub addresses_changed: Vec<AddressChange>,
}

/// What changed from one run of a policy to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub policy_id: String,
    pub from: RunRefInfo,
    pub to: RunRefInfo,
    /// The run verdict, when it changed.
    pub verdict: Option<Change<Verdict>>,
    pub endpoints_added: Vec<EndpointState>,
    pub endpoints_removed: Vec<EndpointState>,
    pub endpoints_changed: Vec<EndpointDiff>,
    /// Countries of path hops in `to` but not in `from`, and the reverse.
    pub transit_added: Vec<String>,
    pub transit_removed: Vec<String>,
}

impl Diff {
    /// True when nothing compared here changed.
    pub fn is_empty(&self) -> bool {
        self.verdict.is_none()
            && self.endpoints_added.is_empty()
            && self.endpoints_removed.is_empty()
            && self.endpoints_changed.is_empty()
            && self.transit_added.is_empty()
            && self.transit_removed.is_empty()
    }
}

fn state(a: &AddressView) -> AddressState {
    AddressState {
        ip: a.ip.clone(),
        country: a.country.clone(),
        verdict: a.verdict,
    }
}

fn endpoint_state(e: &EndpointView) -> EndpointState {
    EndpointState {
        host: e.host.clone(),
        verdict: e.verdict,
        addresses: e.addresses.iter().map(state).collect(),
    }
}

fn diff_endpoint(from: &EndpointView, to: &EndpointView) -> EndpointDiff {
    let old: BTreeMap<&str, &AddressView> =
        from.addresses.iter().map(|a| (a.ip.as_str(), a)).collect();
    let new: BTreeMap<&str, &AddressView> =
        to.addresses.iter().map(|a| (a.ip.as_str(), a)).collect();
    let mut d = EndpointDiff {
        host: to.host.clone(),
        verdict: change(&from.verdict, &to.verdict),
        addresses_added: Vec::new(),
        addresses_removed: Vec::new(),
        addresses_changed: Vec::new(),
    };
    // Document order of the newer run, so the list reads like `show` does.
    for a in &to.addresses {
        match old.get(a.ip.as_str()) {
            None => d.addresses_added.push(state(a)),
            Some(before) => {
                let country = change(&before.country, &a.country);
                let verdict = change(&before.verdict, &a.verdict);
                if country.is_some() || verdict.is_some() {
                    d.addresses_changed.push(AddressChange {
                        ip: a.ip.clone(),
                        country,
                        verdict,
                    });
                }
            }
        }
    }
    d.addresses_removed = from
        .addresses
        .iter()
        .filter(|a| !new.contains_key(a.ip.as_str()))
        .map(state)
        .collect();
    d
}

fn diff_documents(
    policy: &str,
    from: (&RunSummary, &DocView),
    to: (&RunSummary, &DocView),
) -> Diff {
    let (from_run, from_doc) = from;
    let (to_run, to_doc) = to;
    let old: BTreeMap<&str, &EndpointView> = from_doc
        .endpoints
        .iter()
        .map(|e| (e.host.as_str(), e))
        .collect();
    let new: BTreeMap<&str, &EndpointView> = to_doc
        .endpoints
        .iter()
        .map(|e| (e.host.as_str(), e))
        .collect();
    let mut endpoints_added = Vec::new();
    let mut endpoints_changed = Vec::new();
    for e in &to_doc.endpoints {
        match old.get(e.host.as_str()) {
            None => endpoints_added.push(endpoint_state(e)),
            Some(before) => {
                let d = diff_endpoint(before, e);
                if d.verdict.is_some()
                    || !d.addresses_added.is_empty()
                    || !d.addresses_removed.is_empty()
                    || !d.addresses_changed.is_empty()
                {
                    endpoints_changed.push(d);
                }
            }
        }
    }
    let endpoints_removed = from_doc
        .endpoints
        .iter()
        .filter(|e| !new.contains_key(e.host.as_str()))
        .map(endpoint_state)
        .collect();
    let (old_transit, new_transit) = (from_doc.transit(), to_doc.transit());
    Diff {
        policy_id: policy.to_string(),
        from: from_run.into(),
        to: to_run.into(),
        verdict: change(&from_run.verdict, &to_run.verdict),
        endpoints_added,
        endpoints_removed,
        endpoints_changed,
        transit_added: new_transit.difference(&old_transit).cloned().collect(),
        transit_removed: old_transit.difference(&new_transit).cloned().collect(),
    }
}

/// Compares the runs `from` and `to` pick out of `policy`'s history.
pub fn diff(
    history: &History,
    db: &Path,
    policy: &str,
    from: RunRef,
    to: RunRef,
) -> Result<Diff, CompareError> {
    let runs = runs_of(history, db, policy, None, None)?;
    let a = pick(&runs, policy, db, from, history)?;
    let b = pick(&runs, policy, db, to, history)?;
    let (da, db_) = (document(history, db, a.id)?, document(history, db, b.id)?);
    Ok(diff_documents(policy, (&a, &da), (&b, &db_)))
}

// ---- timeline ------------------------------------------------------------------------------

/// How a timeline folds runs into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One point per run.
    #[default]
    Run,
    /// One point per UTC day with runs; see the module doc for how a day's runs fold.
    Day,
}

/// Endpoints by verdict at one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct VerdictCounts {
    pub compliant: usize,
    pub inconclusive: usize,
    pub violation: usize,
}

/// Addresses in one country at one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryShare {
    pub count: usize,
    /// `count` / located addresses, rounded to 4 decimals.
    pub share: f64,
}

/// One point on the timeline: a run, or a day's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// The run's start time (per run), or the day `YYYY-MM-DD` (per day).
    pub at: String,
    /// The runs folded into this point, by id, oldest first.
    pub runs: Vec<i64>,
    /// The worst verdict of those runs.
    pub verdict: Verdict,
    /// How many endpoints had each verdict (each endpoint's worst of the point's runs).
    pub endpoints: VerdictCounts,
    /// Distinct addresses with a known country, and without one (summed over a day's runs).
    pub located: usize,
    pub unlocated: usize,
    pub countries: BTreeMap<String, CountryShare>,
}

/// A stretch of consecutive points over which an endpoint kept one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub verdict: Verdict,
    /// `at` of the first and last point of the stretch.
    pub from: String,
    pub to: String,
    /// Indexes of those points in [`Timeline::points`].
    pub first: usize,
    pub last: usize,
}

/// One endpoint's verdicts over the timeline, as spans; points where the endpoint was not
/// checked fall between spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointTrack {
    pub host: String,
    pub spans: Vec<Span>,
}

/// A policy's runs over time, oldest first, and each endpoint's verdicts along them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub policy_id: String,
    pub per: Per,
    pub points: Vec<TimelinePoint>,
    /// Every endpoint seen in the window, by host.
    pub endpoints: Vec<EndpointTrack>,
}

/// Verdict codes in a state vector: 0 is "not checked", then by severity, so `max` folds.
const VERDICTS: [Verdict; 3] = [
    Verdict::Compliant,
    Verdict::Inconclusive,
    Verdict::Violation,
];

fn code(v: Verdict) -> u8 {
    match v {
        Verdict::Compliant => 1,
        Verdict::Inconclusive => 2,
        Verdict::Violation => 3,
    }
}

/// The policy's runs started in `since <= started_at < until`, folded `per` run or day.
///
/// Reads only the history's run index, never documents, so a year of runs stays fast.
pub fn timeline(
    history: &History,
    db: &Path,
    policy: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    per: Per,
) -> Result<Timeline, CompareError> {
    let runs = history.indexed(&RunFilter {
        policy_id: Some(policy.to_string()),
        since,
        until,
    })?;
    if runs.is_empty() {
        // An empty window is an answer; a policy with no runs at all is a mistake.
        runs_of(history, db, policy, None, None)?;
    }
    let max_seq = runs.iter().map(|r| r.run.seq).max().unwrap_or(0);
    let changes = history.endpoint_changes(policy, max_seq)?;
    let hosts: BTreeMap<&str, usize> = changes
        .iter()
        .map(|c| c.host.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, h)| (h, i))
        .collect();

    // Replay the change log in seq order; each run's endpoint verdicts are the state at its seq.
    let mut by_seq: Vec<usize> = (0..runs.len()).collect();
    by_seq.sort_by_key(|&i| runs[i].run.seq);
    let mut states: Vec<Option<Vec<u8>>> = vec![None; runs.len()];
    let mut state = vec![0u8; hosts.len()];
    let mut next = 0;
    for i in by_seq {
        let seq = runs[i].run.seq;
        while let Some(c) = changes.get(next).filter(|c| c.seq <= seq) {
            if let Some(&h) = hosts.get(c.host.as_str()) {
                state[h] = c.verdict.map_or(0, code);
            }
            next += 1;
        }
        if runs[i].error.is_none() {
            states[i] = Some(state.clone());
        }
    }

    // Fold runs (already in start order) into points.
    let key = |r: &IndexedRun| match per {
        Per::Run => time::micros(&r.run.started_at),
        Per::Day => r.run.started_at.date_naive().to_string(),
    };
    let mut points = Vec::new();
    let mut point_states: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let at = key(&runs[i]);
        let mut j = i;
        while j < runs.len() && key(&runs[j]) == at {
            j += 1;
        }
        let group = &runs[i..j];
        let mut folded = vec![0u8; hosts.len()];
        for s in states[i..j].iter().flatten() {
            for (f, v) in folded.iter_mut().zip(s) {
                *f = (*f).max(*v);
            }
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut unlocated = 0;
        for r in group {
            for (c, n) in &r.countries {
                *counts.entry(c.clone()).or_default() += *n as usize;
            }
            unlocated += r.unlocated as usize;
        }
        let located: usize = counts.values().sum();
        let mut endpoints = VerdictCounts::default();
        for v in &folded {
            match v {
                1 => endpoints.compliant += 1,
                2 => endpoints.inconclusive += 1,
                3 => endpoints.violation += 1,
                _ => {}
            }
        }
        points.push(TimelinePoint {
            at,
            runs: group.iter().map(|r| r.run.id).collect(),
            verdict: group
                .iter()
                .map(|r| r.run.verdict)
                .max()
                .unwrap_or(Verdict::Inconclusive),
            endpoints,
            located,
            unlocated,
            countries: counts
                .into_iter()
                .map(|(c, count)| {
                    let share = (count as f64 / located as f64 * 10_000.0).round() / 10_000.0;
                    (c, CountryShare { count, share })
                })
                .collect(),
        });
        point_states.push(folded);
        i = j;
    }

    let mut endpoints = Vec::with_capacity(hosts.len());
    for (host, &h) in &hosts {
        let mut spans: Vec<Span> = Vec::new();
        for (p, folded) in point_states.iter().enumerate() {
            let Some(verdict) = folded[h].checked_sub(1).map(|c| VERDICTS[usize::from(c)]) else {
                continue;
            };
            match spans.last_mut() {
                Some(span) if span.verdict == verdict && span.last + 1 == p => {
                    span.last = p;
                    span.to.clone_from(&points[p].at);
                }
                _ => spans.push(Span {
                    verdict,
                    from: points[p].at.clone(),
                    to: points[p].at.clone(),
                    first: p,
                    last: p,
                }),
            }
        }
        if !spans.is_empty() {
            endpoints.push(EndpointTrack {
                host: (*host).to_string(),
                spans,
            });
        }
    }
    Ok(Timeline {
        policy_id: policy.to_string(),
        per,
        points,
        endpoints,
    })
}

// ---- claims --------------------------------------------------------------------------------

/// Whether a claim held after its date; see the module doc for the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ClaimStatus {
    Untested,
    Holds { since: String },
    Broken { on: String, since: String },
    NeverHeld,
}

/// A run id, date and verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunVerdict {
    pub id: i64,
    pub started_at: String,
    pub verdict: Verdict,
}

/// One claim, judged against the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimReport {
    pub date: NaiveDate,
    pub statement: String,
    pub source: Option<String>,
    pub locations: Vec<String>,
    #[serde(flatten)]
    pub status: ClaimStatus,
    /// The runs that show the status.
    pub evidence: Vec<i64>,
    /// The last run before the claim date was compliant; `null` with no run before it.
    pub already_compliant: Option<bool>,
    pub before: Vec<RunVerdict>,
    pub after: Vec<RunVerdict>,
}

/// Every claim of a policy (from its latest run's snapshot), judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub policy_id: String,
    /// The run whose policy snapshot the claims come from.
    pub claims_from_run: i64,
    pub claims: Vec<ClaimReport>,
}

fn run_verdict(r: &RunSummary) -> RunVerdict {
    RunVerdict {
        id: r.id,
        started_at: time::micros(&r.started_at),
        verdict: r.verdict,
    }
}

fn judge_claim(claim: &ClaimView, runs: &[RunSummary]) -> ClaimReport {
    let start = claim
        .date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let (before, after): (Vec<&RunSummary>, Vec<&RunSummary>) =
        runs.iter().partition(|r| r.started_at < start);
    let compliant = |r: &&RunSummary| r.verdict == Verdict::Compliant;
    let last_compliant = after.iter().rposition(compliant);
    let (status, evidence): (ClaimStatus, Vec<&RunSummary>) = match (after.last(), last_compliant) {
        (None, _) => (ClaimStatus::Untested, Vec::new()),
        (Some(_), None) => (ClaimStatus::NeverHeld, after.clone()),
        (Some(latest), Some(i)) if i + 1 == after.len() => {
            // Walk back to the start of the final compliant streak.
            let streak_start = after
                .iter()
                .rposition(|r| !compliant(r))
                .map_or(0, |j| j + 1);
            let streak = after[streak_start..].to_vec();
            let since = streak.first().copied().unwrap_or(latest);
            (
                ClaimStatus::Holds {
                    since: time::micros(&since.started_at),
                },
                streak,
            )
        }
        (Some(latest), Some(i)) => {
            let broken = after[i + 1..].to_vec();
            let since = broken.first().copied().unwrap_or(latest);
            (
                ClaimStatus::Broken {
                    on: time::micros(&latest.started_at),
                    since: time::micros(&since.started_at),
                },
                broken,
            )
        }
    };
    ClaimReport {
        date: claim.date,
        statement: claim.statement.clone(),
        source: claim.source.clone(),
        locations: claim.locations.clone(),
        status,
        evidence: evidence.iter().map(|r| r.id).collect(),
        already_compliant: before.last().map(|r| r.verdict == Verdict::Compliant),
        before: before.iter().copied().map(run_verdict).collect(),
        after: after.iter().copied().map(run_verdict).collect(),
    }
}

/// Judges every claim in the latest run's policy snapshot against all of the policy's runs.
pub fn claims(history: &History, db: &Path, policy: &str) -> Result<Claims, CompareError> {
    let runs = runs_of(history, db, policy, None, None)?;
    let latest = runs
        .iter()
        .max_by_key(|r| (r.started_at, r.id))
        .ok_or_else(|| CompareError::UnknownPolicy {
            policy: policy.to_string(),
            db: db.to_path_buf(),
        })?;
    let doc = document(history, db, latest.id)?;
    Ok(Claims {
        policy_id: policy.to_string(),
        claims_from_run: latest.id,
        claims: doc
            .policy
            .claims
            .iter()
            .map(|c| judge_claim(c, &runs))
            .collect(),
    })
}

// ---- tables --------------------------------------------------------------------------------

fn country(c: &Option<String>) -> &str {
    c.as_deref().unwrap_or("unlocated")
}

fn run_line(r: &RunRefInfo) -> String {
    format!(
        "run {} (seq {}, {}, {})",
        r.id, r.seq, r.started_at, r.verdict
    )
}

/// `diff` for people.
pub fn diff_table(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy {}", d.policy_id);
    let _ = writeln!(out, "from   {}", run_line(&d.from));
    let _ = writeln!(out, "to     {}", run_line(&d.to));
    if d.is_empty() {
        let _ = writeln!(out, "no changes");
        return out;
    }
    if let Some(v) = &d.verdict {
        let _ = writeln!(out, "verdict: {} -> {}", v.from, v.to);
    }
    for e in &d.endpoints_added {
        let _ = writeln!(out, "+ endpoint {} ({})", e.host, e.verdict);
        for a in &e.addresses {
            let _ = writeln!(out, "    {} {} {}", a.ip, country(&a.country), a.verdict);
        }
    }
    for e in &d.endpoints_removed {
        let _ = writeln!(out, "- endpoint {} ({})", e.host, e.verdict);
    }
    for e in &d.endpoints_changed {
        let _ = writeln!(out, "~ endpoint {}", e.host);
        if let Some(v) = &e.verdict {
            let _ = writeln!(out, "    verdict: {} -> {}", v.from, v.to);
        }
        for a in &e.addresses_added {
            let _ = writeln!(out, "    + {} {} {}", a.ip, country(&a.country), a.verdict);
        }
        for a in &e.addresses_removed {
            let _ = writeln!(out, "    - {} {} {}", a.ip, country(&a.country), a.verdict);
        }
        for a in &e.addresses_changed {
            let mut parts = Vec::new();
            if let Some(c) = &a.country {
                parts.push(format!(
                    "country {} -> {}",
                    country(&c.from),
                    country(&c.to)
                ));
            }
            if let Some(v) = &a.verdict {
                parts.push(format!("verdict {} -> {}", v.from, v.to));
            }
            let _ = writeln!(out, "    ~ {} {}", a.ip, parts.join(", "));
        }
    }
    if !d.transit_added.is_empty() {
        let _ = writeln!(out, "+ transit {}", d.transit_added.join(", "));
    }
    if !d.transit_removed.is_empty() {
        let _ = writeln!(out, "- transit {}", d.transit_removed.join(", "));
    }
    out
}

/// `timeline` for people: one line per point, then each endpoint's verdict spans.
pub fn timeline_table(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<27}  {:>5}  {:<12}  {:<20}  COUNTRIES",
        match t.per {
            Per::Run => "STARTED",
            Per::Day => "DAY",
        },
        "RUNS",
        "VERDICT",
        "ENDPOINTS C/I/V"
    );
    for p in &t.points {
        let mut countries: Vec<String> = p
            .countries
            .iter()
            .map(|(c, s)| format!("{c} {}/{} ({:.0}%)", s.count, p.located, s.share * 100.0))
            .collect();
        if p.unlocated > 0 {
            countries.push(format!("{} unlocated", p.unlocated));
        }
        let runs = match p.runs.as_slice() {
            [one] => one.to_string(),
            many => format!("{}x", many.len()),
        };
        let e = p.endpoints;
        let _ = writeln!(
            out,
            "{:<27}  {:>5}  {:<12}  {:<20}  {}",
            p.at,
            runs,
            p.verdict.as_str(),
            format!("{}/{}/{}", e.compliant, e.inconclusive, e.violation),
            countries.join(", ")
        );
    }
    if t.points.is_empty() {
        let _ = writeln!(out, "(no runs in this window)");
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "ENDPOINT VERDICTS");
    for track in &t.endpoints {
        let spans: Vec<String> = track
            .spans
            .iter()
            .map(|s| {
                if s.first == s.last {
                    format!("{} at {}", s.verdict, s.from)
                } else {
                    format!("{} {} .. {}", s.verdict, s.from, s.to)
                }
            })
            .collect();
        let _ = writeln!(out, "{}: {}", track.host, spans.join("; "));
    }
    out
}

/// `claims` for people.
pub fn claims_table(c: &Claims) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy {} (claims from run {})",
        c.policy_id, c.claims_from_run
    );
    if c.claims.is_empty() {
        let _ = writeln!(out, "(the policy makes no claims)");
    }
    for claim in &c.claims {
        let _ = writeln!(out, "{}: {}", claim.date, claim.statement);
        if !claim.locations.is_empty() {
            let _ = writeln!(out, "  locations: {}", claim.locations.join(", "));
        }
        let status = match &claim.status {
            ClaimStatus::Untested => "untested: no run since the claim date".to_string(),
            ClaimStatus::Holds { since } => format!("holds since {since}"),
            ClaimStatus::Broken { on, since } => format!("broken on {on} (since {since})"),
            ClaimStatus::NeverHeld => "never held".to_string(),
        };
        let ids: Vec<String> = claim.evidence.iter().map(i64::to_string).collect();
        let _ = writeln!(out, "  {status}; runs {}", ids.join(", "));
        let before = match claim.already_compliant {
            None => "no run before the claim date".to_string(),
            Some(true) => "already compliant before the claim date".to_string(),
            Some(false) => "not compliant before the claim date".to_string(),
        };
        let verdicts: Vec<String> = claim
            .before
            .iter()
            .map(|r| format!("{}={}", r.id, r.verdict))
            .collect();
        if verdicts.is_empty() {
            let _ = writeln!(out, "  {before}");
        } else {
            let _ = writeln!(out, "  {before} ({})", verdicts.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewRun;
    use serde_json::{Value, json};

    type TestResult = Result<(), Box<dyn std::error::Error>>;
    /// (ip, country, verdict, countries of its path hops)
    type Addr<'a> = (&'a str, Option<&'a str>, &'a str, &'a [&'a str]);
    /// (host, verdict, addresses)
    type Endpoint<'a> = (&'a str, &'a str, &'a [Addr<'a>]);
    /// (status with since/on, evidence run ids, already_compliant)
    type Judged = (Value, Vec<i64>, Option<bool>);

    fn at(s: &str) -> Result<DateTime<Utc>, CompareError> {
        parse_time(s, false)
    }

    /// A minimal document: endpoints as (host, verdict, [(ip, country, verdict, hop countries)]).
    fn doc(claims: Value, endpoints: &[Endpoint<'_>]) -> Value {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(host, verdict, addresses)| {
                let addresses: Vec<Value> = addresses
                    .iter()
                    .map(|(ip, country, verdict, hops)| {
                        let hops: Vec<Value> =
                            hops.iter().map(|c| json!({"ttl": 1, "country": c})).collect();
                        json!({"ip": ip, "country": country, "verdict": verdict,
                               "path": if hops.is_empty() { Value::Null } else { json!({"hops": hops}) }})
                    })
                    .collect();
                json!({"host": host, "verdict": verdict, "addresses": addresses})
            })
            .collect();
        json!({"policy": {"id": "p", "claims": claims}, "endpoints": endpoints})
    }

    fn append(
        h: &mut History,
        when: &str,
        verdict: Verdict,
        document: Value,
    ) -> Result<i64, Box<dyn std::error::Error>> {
        let t = at(when)?;
        Ok(h.append(&NewRun {
            policy_id: "p".into(),
            started_at: t,
            finished_at: t,
            verdict,
            document,
        })?
        .id)
    }

    fn open() -> Result<(tempfile::TempDir, PathBuf, History), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("h.sqlite");
        let history = History::open(&path)?;
        Ok((dir, path, history))
    }

    #[test]
    fn run_references_parse_ids_dates_and_times() -> TestResult {
        assert_eq!(RunRef::parse("42")?, RunRef::Id(42));
        assert_eq!(
            RunRef::parse("2026-03-01")?,
            RunRef::Before(at("2026-03-02T00:00:00Z")?)
        );
        assert_eq!(
            RunRef::parse("2026-03-01T10:00:00+02:00")?,
            RunRef::Before(at("2026-03-01T08:00:00.000001Z")?)
        );
        let bad = RunRef::parse("last tuesday").map_err(|e| e.to_string());
        assert!(
            matches!(&bad, Err(m) if m.contains("YYYY-MM-DD") && m.contains("run id")),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn diff_reports_every_kind_of_change() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let first = append(
            &mut h,
            "2026-01-01T00:00:00Z",
            Verdict::Compliant,
            doc(
                json!([]),
                &[
                    (
                        "api",
                        "compliant",
                        &[
                            ("192.0.2.1", Some("IN"), "compliant", &["IN"]),
                            ("192.0.2.2", Some("IN"), "compliant", &[]),
                        ],
                    ),
                    (
                        "old",
                        "compliant",
                        &[("203.0.113.1", Some("US"), "compliant", &["US"])],
                    ),
                ],
            ),
        )?;
        let second = append(
            &mut h,
            "2026-02-01T00:00:00Z",
            Verdict::Violation,
            doc(
                json!([]),
                &[
                    (
                        "api",
                        "violation",
                        &[
                            ("192.0.2.1", Some("CN"), "violation", &["IN", "CN"]),
                            ("192.0.2.3", None, "inconclusive", &[]),
                        ],
                    ),
                    (
                        "new",
                        "compliant",
                        &[("203.0.113.2", Some("US"), "compliant", &[])],
                    ),
                ],
            ),
        )?;
        // By date: the last run on or before 2026-01-15 is the first one.
        let d = diff(
            &h,
            &path,
            "p",
            RunRef::parse("2026-01-15")?,
            RunRef::Id(second),
        )?;
        assert_eq!(d.from.id, first);
        let got = serde_json::to_value(&d)?;
        assert_eq!(
            got["verdict"],
            json!({"from": "compliant", "to": "violation"})
        );
        assert_eq!(
            got["endpoints_added"],
            json!([{"host": "new", "verdict": "compliant",
            "addresses": [{"ip": "203.0.113.2", "country": "US", "verdict": "compliant"}]}])
        );
        assert_eq!(got["endpoints_removed"][0]["host"], "old");
        assert_eq!(
            got["endpoints_changed"],
            json!([{
                "host": "api",
                "verdict": {"from": "compliant", "to": "violation"},
                "addresses_added": [{"ip": "192.0.2.3", "country": null, "verdict": "inconclusive"}],
                "addresses_removed": [{"ip": "192.0.2.2", "country": "IN", "verdict": "compliant"}],
                "addresses_changed": [{"ip": "192.0.2.1",
                    "country": {"from": "IN", "to": "CN"},
                    "verdict": {"from": "compliant", "to": "violation"}}]
            }])
        );
        assert_eq!(got["transit_added"], json!(["CN"]));
        assert_eq!(got["transit_removed"], json!(["US"]));

        let same = diff(&h, &path, "p", RunRef::Id(second), RunRef::Id(second))?;
        assert!(same.is_empty());
        assert!(diff_table(&same).contains("no changes"));
        Ok(())
    }

    #[test]
    fn diff_errors_say_what_to_do() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let id = append(
            &mut h,
            "2026-01-10T00:00:00Z",
            Verdict::Compliant,
            doc(json!([]), &[]),
        )?;
        let e = diff(&h, &path, "nope", RunRef::Id(id), RunRef::Id(id)).map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("no runs of policy `nope`")),
            "{e:?}"
        );
        let e = diff(&h, &path, "p", RunRef::Id(999), RunRef::Id(id)).map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("no run with id 999")),
            "{e:?}"
        );
        let e = diff(&h, &path, "p", RunRef::parse("2026-01-09")?, RunRef::Id(id))
            .map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("no run started at or before 2026-01-09T23:59:59.999999Z")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn a_run_of_another_policy_is_refused_by_name() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let mine = append(
            &mut h,
            "2026-01-10T00:00:00Z",
            Verdict::Compliant,
            doc(json!([]), &[]),
        )?;
        let t = at("2026-01-11T00:00:00Z")?;
        let other = h
            .append(&NewRun {
                policy_id: "q".into(),
                started_at: t,
                finished_at: t,
                verdict: Verdict::Compliant,
                document: doc(json!([]), &[]),
            })?
            .id;
        let e =
            diff(&h, &path, "p", RunRef::Id(mine), RunRef::Id(other)).map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains(&format!("run {other} belongs to policy `q`, not `p`"))),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn timeline_counts_each_address_once_and_shares_located_ones() -> TestResult {
        let (_dir, path, mut h) = open()?;
        append(
            &mut h,
            "2026-01-01T00:00:00Z",
            Verdict::Compliant,
            doc(
                json!([]),
                &[
                    (
                        "a",
                        "compliant",
                        &[
                            ("192.0.2.1", Some("IN"), "compliant", &[]),
                            ("192.0.2.2", Some("SG"), "compliant", &[]),
                        ],
                    ),
                    (
                        "b",
                        "compliant",
                        &[("192.0.2.1", Some("IN"), "compliant", &[])],
                    ),
                ],
            ),
        )?;
        append(
            &mut h,
            "2026-01-02T00:00:00Z",
            Verdict::Violation,
            doc(
                json!([]),
                &[
                    (
                        "a",
                        "violation",
                        &[
                            ("192.0.2.1", Some("IN"), "compliant", &[]),
                            ("198.51.100.1", Some("CN"), "violation", &[]),
                            ("192.0.2.9", Some("IN"), "compliant", &[]),
                        ],
                    ),
                    (
                        "b",
                        "inconclusive",
                        &[("233.252.0.1", None, "inconclusive", &[])],
                    ),
                ],
            ),
        )?;
        append(
            &mut h,
            "2026-01-02T12:00:00Z",
            Verdict::Compliant,
            doc(
                json!([]),
                &[(
                    "a",
                    "compliant",
                    &[("192.0.2.1", Some("IN"), "compliant", &[])],
                )],
            ),
        )?;
        let t = serde_json::to_value(timeline(&h, &path, "p", None, None, Per::Run)?)?;
        assert_eq!(
            t["points"][0]["countries"],
            json!({"IN": {"count": 1, "share": 0.5}, "SG": {"count": 1, "share": 0.5}})
        );
        assert_eq!(
            t["points"][0]["endpoints"],
            json!({"compliant": 2, "inconclusive": 0, "violation": 0})
        );
        assert_eq!(
            t["points"][1]["countries"],
            json!({"CN": {"count": 1, "share": 0.3333}, "IN": {"count": 2, "share": 0.6667}})
        );
        assert_eq!(
            (
                t["points"][1]["located"].clone(),
                t["points"][1]["unlocated"].clone()
            ),
            (json!(3), json!(1))
        );
        let spans = |t: &Value, host: usize| -> Vec<(String, u64, u64)> {
            t["endpoints"][host]["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    (
                        s["verdict"].as_str().unwrap_or_default().to_string(),
                        s["first"].as_u64().unwrap_or(99),
                        s["last"].as_u64().unwrap_or(99),
                    )
                })
                .collect()
        };
        let v = |s: &str, a: u64, b: u64| (s.to_string(), a, b);
        assert_eq!(t["endpoints"][0]["host"], "a");
        assert_eq!(
            spans(&t, 0),
            [
                v("compliant", 0, 0),
                v("violation", 1, 1),
                v("compliant", 2, 2)
            ]
        );
        // b was dropped by the third run: its track ends.
        assert_eq!(
            spans(&t, 1),
            [v("compliant", 0, 0), v("inconclusive", 1, 1)]
        );

        // Per day: the second day's two runs fold into their worst, and their addresses add up.
        let d = serde_json::to_value(timeline(&h, &path, "p", None, None, Per::Day)?)?;
        assert_eq!(d["points"].as_array().map(Vec::len), Some(2));
        assert_eq!(d["points"][1]["at"], "2026-01-02");
        assert_eq!(d["points"][1]["runs"].as_array().map(Vec::len), Some(2));
        assert_eq!(d["points"][1]["verdict"], "violation");
        assert_eq!(
            d["points"][1]["endpoints"],
            json!({"compliant": 0, "inconclusive": 1, "violation": 1})
        );
        assert_eq!(
            d["points"][1]["countries"],
            json!({"CN": {"count": 1, "share": 0.25}, "IN": {"count": 3, "share": 0.75}})
        );
        assert_eq!(spans(&d, 0), [v("compliant", 0, 0), v("violation", 1, 1)]);

        let window = timeline(&h, &path, "p", Some(at("2026-01-02")?), None, Per::Run)?;
        assert_eq!(window.points.len(), 2);
        // Replay starts from the beginning of the policy, not of the window.
        assert_eq!(window.endpoints[0].spans[0].verdict, Verdict::Violation);
        Ok(())
    }

    fn claim_status(h: &History, path: &Path) -> Result<Vec<Judged>, Box<dyn std::error::Error>> {
        let c = claims(h, path, "p")?;
        Ok(c.claims
            .into_iter()
            .map(|c| {
                let status = serde_json::to_value(&c).unwrap_or_default();
                (
                    json!({"status": status["status"], "since": status.get("since"), "on": status.get("on")}),
                    c.evidence,
                    c.already_compliant,
                )
            })
            .collect())
    }

    #[test]
    fn claims_follow_the_documented_rule() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let claims_json = json!([
            {"date": "2026-01-01", "statement": "all in India", "locations": ["IN"]},
            {"date": "2026-03-01", "statement": "later promise", "locations": ["IN"]},
            {"date": "2027-01-01", "statement": "future promise", "locations": []}
        ]);
        let d = || doc(claims_json.clone(), &[]);
        let r1 = append(&mut h, "2025-12-01T00:00:00Z", Verdict::Violation, d())?;
        let r2 = append(&mut h, "2026-01-01T00:00:00Z", Verdict::Compliant, d())?;
        let r3 = append(&mut h, "2026-02-01T00:00:00Z", Verdict::Inconclusive, d())?;
        let r4 = append(&mut h, "2026-02-15T00:00:00Z", Verdict::Compliant, d())?;
        let r5 = append(&mut h, "2026-03-05T00:00:00Z", Verdict::Compliant, d())?;
        let got = claim_status(&h, &path)?;
        // Claim 1: a run on the claim day counts as after it; the inconclusive r3 restarts the streak.
        assert_eq!(
            got[0],
            (
                json!({"status": "holds", "since": "2026-02-15T00:00:00.000000Z", "on": null}),
                vec![r4, r5],
                Some(false)
            )
        );
        assert_eq!(
            got[1],
            (
                json!({"status": "holds", "since": "2026-03-05T00:00:00.000000Z", "on": null}),
                vec![r5],
                Some(true)
            )
        );
        assert_eq!(
            got[2],
            (
                json!({"status": "untested", "since": null, "on": null}),
                vec![],
                Some(true)
            )
        );

        let r6 = append(&mut h, "2026-04-01T00:00:00Z", Verdict::Violation, d())?;
        let r7 = append(&mut h, "2026-04-02T00:00:00Z", Verdict::Inconclusive, d())?;
        let got = claim_status(&h, &path)?;
        assert_eq!(
            got[0],
            (
                json!({"status": "broken", "since": "2026-04-01T00:00:00.000000Z", "on": "2026-04-02T00:00:00.000000Z"}),
                vec![r6, r7],
                Some(false)
            )
        );
        let _ = (r1, r2, r3);
        Ok(())
    }

    #[test]
    fn a_claim_never_held_lists_every_run_after_it() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let d = || doc(json!([{"date": "2026-01-01", "statement": "s"}]), &[]);
        let r1 = append(&mut h, "2026-01-05T00:00:00Z", Verdict::Violation, d())?;
        let r2 = append(&mut h, "2026-01-06T00:00:00Z", Verdict::Inconclusive, d())?;
        let got = claim_status(&h, &path)?;
        assert_eq!(
            got[0],
            (
                json!({"status": "never_held", "since": null, "on": null}),
                vec![r1, r2],
                None
            )
        );
        assert!(claims_table(&claims(&h, &path, "p")?).contains("never held; runs"));
        Ok(())
    }
}
