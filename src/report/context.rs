//! The report context: everything a report template may show, built from the history.
//!
//! Owns the shape templates see. It is serialised with serde, so the same value reaches
//! minijinja (HTML and Markdown templates) and typst (PDF templates, as the JSON file
//! `/residency/context.json`). Its fields are a public contract for users' own templates,
//! documented field by field in `reports/README.md`; add fields, never rename or remove them.
//!
//! Every fact comes from the history: the runs' stored documents, their hashes, and the
//! comparisons of [`crate::compare`] (`diff`, `timeline`, `claims`). Nothing is measured here.
//!
//! Measured text (PTR names, CNAME targets, registry fields) is attacker-controlled. Templates
//! escape it for their output language; on top of that, [`visible_controls`] replaces control,
//! bidirectional-override and zero-width characters in every string by a visible
//! `⟦U+202E⟧`, so a hostile name can neither reorder the text around it nor hide in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::compare::{self, Claims, CompareError, Diff, Per, RunRef, Timeline, TimelinePoint};
use crate::history::{History, RunFilter, RunSummary};
use crate::history::{RunId, Seq};
use crate::measure::resolve::Outcome;
use crate::model::{Confidence, CountryCode, Evidence, Verdict};
use crate::policy::PolicyId;
use crate::record::{PolicySnapshot, RunDocument, Summary, ToolInfo};
use crate::sources::physics::Countries;
use crate::sources::registry::RegistryRecord;
use crate::time;

use super::ReportError;
use super::provenance::Provenance;
use super::svg::{self, MapPoint};

/// Which runs a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One run (`--run`), or the policy's latest run when `None`.
    Run(Option<RunRef>),
    /// Every run started in `since <= started_at < until` (`--since`, `--until`).
    Period {
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    },
}

/// The two kinds of report; each has its default templates in `reports/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Run,
    Period,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Run => "run",
            ReportKind::Period => "period",
        }
    }
}

/// Everything a template sees. See `reports/README.md` for each field.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub kind: ReportKind,
    pub title: String,
    pub generated_at: String,
    /// The residency that rendered the report (each run also names the one that measured it).
    pub tool: ToolInfo,
    pub database: String,
    pub policy: PolicySnapshot,
    pub period: Option<Period>,
    /// The run shown in full: the selected run, or the latest run of the period.
    pub run: RunDetail,
    /// Every run the report covers, oldest first (one for a run report).
    pub runs: Vec<RunRow>,
    pub totals: Totals,
    /// Run report: the policy's previous run → this run. Period: first → last run of the period.
    pub diff: Option<Diff>,
    /// One point per run: run report, every run up to this one; period report, the
    /// period's runs (see `compare::TimelinePoint`).
    pub timeline: Vec<TimelinePoint>,
    /// Each endpoint over the timeline's runs.
    pub endpoint_history: Vec<EndpointHistory>,
    pub claims: Claims,
    /// Where the shown run's addresses were located, most addresses first.
    pub countries: Vec<CountryRow>,
    /// What the device was captured sending, when the shown run judged a capture
    /// (`check --capture`); null otherwise.
    pub capture: Option<CaptureReport>,
    pub charts: Charts,
    pub provenance: Provenance,
}

/// The window of a period report, as given (RFC 3339, `until` exclusive); null when open.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub since: Option<String>,
    pub until: Option<String>,
    /// First and last run started in it.
    pub first: String,
    pub last: String,
}

/// A run in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: RunId,
    pub seq: Seq,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: Verdict,
    pub hash: String,
}

impl From<&RunSummary> for RunRow {
    fn from(r: &RunSummary) -> RunRow {
        RunRow {
            id: r.id,
            seq: r.seq,
            started_at: time::micros(&r.started_at),
            finished_at: time::micros(&r.finished_at),
            verdict: r.verdict,
            hash: r.hash.clone(),
        }
    }
}

/// Counts over the runs a report covers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub runs: usize,
    pub compliant: usize,
    pub inconclusive: usize,
    pub violation: usize,
    /// `compliant / runs`, 4 decimals (0 with no runs).
    pub compliant_share: f64,
    /// Runs whose verdict differs from the run before them in the report.
    pub verdict_changes: Vec<RunRow>,
}

/// One endpoint across the timeline's runs.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointHistory {
    pub host: String,
    pub runs: usize,
    pub compliant: usize,
    pub inconclusive: usize,
    pub violation: usize,
    /// Its verdict in the last run that had it.
    pub last: Verdict,
    /// Start of its first run that was not compliant, if any.
    pub first_non_compliant: Option<String>,
}

/// The shown run in full.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub id: RunId,
    pub seq: Seq,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: Verdict,
    pub hash: String,
    pub prev_hash: String,
    /// The residency that measured the run.
    pub tool: ToolInfo,
    pub vantage: Option<VantageRow>,
    /// A combined run's window and vantage runs; null for a run measured from one place.
    pub combined: Option<CombinedRow>,
    pub resolvers: Vec<String>,
    pub client_subnets: Vec<String>,
    pub repeat: u32,
    pub sources: Vec<String>,
    /// Trace protocol and settings, or null when probing was off.
    pub trace: Option<Value>,
    pub summary: Summary,
    pub endpoints: Vec<EndpointRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VantageRow {
    pub country: CountryCode,
    pub country_name: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
}

/// What a combined run combines, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct CombinedRow {
    /// As given, e.g. `1h`.
    pub window: String,
    pub since: String,
    pub until: String,
    pub vantages: Vec<crate::record::CombinedVantage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointRow {
    pub host: String,
    pub purpose: Option<String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// Every CNAME target seen, in order of first appearance.
    pub cnames: Vec<String>,
    pub queries: usize,
    /// Queries that got no usable answer (timeout, SERVFAIL, REFUSED, transport error).
    pub failed_queries: usize,
    pub addresses: Vec<AddressRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressRow {
    pub ip: String,
    pub country: Option<CountryCode>,
    pub country_name: Option<String>,
    pub countries: Vec<CountryCode>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub confidence: Confidence,
    pub decided_by: Vec<String>,
    pub conflicts: Vec<String>,
    /// Reverse DNS (PTR) names.
    pub names: Vec<String>,
    pub registry: Option<RegistryRecord>,
    pub evidence: Vec<Evidence>,
    /// Which resolvers (and client subnets) returned it.
    pub via: Vec<String>,
    pub seen: usize,
    /// Countries of the located hops of its traced path, in path order, without repeats.
    pub transit: Vec<CountryCode>,
    pub min_rtt_ms: Option<f64>,
}

/// Addresses of the shown run in one country.
#[derive(Debug, Clone, Serialize)]
pub struct CountryRow {
    pub code: CountryCode,
    pub name: Option<String>,
    /// `allowed`, `denied` or `other` under the run's policy.
    pub status: &'static str,
    pub addresses: usize,
    pub endpoints: usize,
    /// The worst verdict among those addresses.
    pub verdict: Verdict,
}

/// The charts as standalone SVG documents (see [`svg`]).
#[derive(Debug, Clone, Serialize)]
pub struct Charts {
    /// Run verdict ribbon and share of endpoints per verdict over time.
    pub compliance: String,
    /// One row per endpoint (the least compliant first), one cell per run or bucket of runs.
    pub endpoints: String,
    /// Share of distinct addresses per country over time.
    pub countries: String,
    /// The world map of the shown run.
    pub map: String,
    /// Bytes the device sent per country (empty without a capture).
    pub capture: String,
}

/// The shown run's captured traffic: its files, and the bytes sent per country.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub files: Vec<crate::record::CapturedFile>,
    /// Most bytes first; `code` null for the bytes sent to unlocated destinations.
    pub by_country: Vec<CaptureBytes>,
    pub bytes_sent: u64,
    pub destinations: Vec<crate::record::CapturedDestination>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureBytes {
    pub code: Option<CountryCode>,
    pub name: Option<String>,
    /// `allowed`, `denied`, `other` or `unlocated`.
    pub status: &'static str,
    pub bytes: u64,
    /// Percent of all bytes sent, one decimal.
    pub share: f64,
}

/// What a caller can set about a report besides the runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub generated_at: DateTime<Utc>,
    /// Recompute the policy's hash chain before reporting (`provenance.chain_verified`).
    pub verify_chain: bool,
    /// Recompute all of it, not only the runs since its verified checkpoint.
    pub full_verify: bool,
}

/// Builds the context of a report on `policy` from the history at `db`.
pub fn build(
    history: &History,
    db: &Path,
    policy: &PolicyId,
    selection: &Selection,
    options: &Options,
) -> Result<ReportContext, ReportError> {
    let all = history.list(&RunFilter {
        policy_id: Some(policy.clone()),
        since: None,
        until: None,
    })?;
    if all.is_empty() {
        return Err(CompareError::UnknownPolicy {
            policy: policy.clone(),
            db: db.to_path_buf(),
        }
        .into());
    }
    let (kind, scope, focus, timeline_window, period) = match selection {
        Selection::Run(r) => {
            let focus = match r {
                Some(r) => pick(history, db, policy, &all, *r)?,
                None => latest(&all).clone(),
            };
            // The history leading up to the run, so its charts show how it came about.
            let until = focus.started_at + TimeDelta::microseconds(1);
            (
                ReportKind::Run,
                vec![focus.clone()],
                focus,
                (None, Some(until)),
                None,
            )
        }
        Selection::Period { since, until } => {
            let scope: Vec<RunSummary> = all
                .iter()
                .filter(|r| since.is_none_or(|s| r.started_at >= s))
                .filter(|r| until.is_none_or(|u| r.started_at < u))
                .cloned()
                .collect();
            let Some(focus) = scope.iter().max_by_key(|r| (r.started_at, r.id)).cloned() else {
                return Err(ReportError::EmptyPeriod {
                    policy: policy.clone(),
                    since: since.as_ref().map(time::micros),
                    until: until.as_ref().map(time::micros),
                });
            };
            let period = Period {
                since: since.as_ref().map(time::micros),
                until: until.as_ref().map(time::micros),
                first: scope
                    .first()
                    .map(|r| time::micros(&r.started_at))
                    .unwrap_or_default(),
                last: time::micros(&focus.started_at),
            };
            (
                ReportKind::Period,
                scope,
                focus,
                (*since, *until),
                Some(period),
            )
        }
    };

    let stored = history
        .get(focus.id)?
        .ok_or_else(|| CompareError::NoSuchRun {
            id: focus.id,
            db: db.to_path_buf(),
        })?;
    let doc: RunDocument =
        serde_json::from_value(stored.document).map_err(|e| ReportError::Unreadable {
            id: focus.id,
            detail: e.to_string(),
        })?;

    let timeline = compare::timeline(
        history,
        db,
        policy,
        timeline_window.0,
        timeline_window.1,
        Per::Run,
    )?;
    let diff = match kind {
        ReportKind::Run => all
            .iter()
            .filter(|r| r.seq < focus.seq)
            .max_by_key(|r| r.seq)
            .map(|prev| {
                compare::diff(
                    history,
                    db,
                    policy,
                    RunRef::Id(prev.id),
                    RunRef::Id(focus.id),
                )
            })
            .transpose()?,
        ReportKind::Period => match (scope.first(), scope.len() > 1) {
            (Some(first), true) => Some(compare::diff(
                history,
                db,
                policy,
                RunRef::Id(first.id),
                RunRef::Id(focus.id),
            )?),
            _ => None,
        },
    };
    let claims = compare::claims(history, db, policy)?;

    let countries = Countries::shipped().ok();
    let name_of = |cc: CountryCode| countries.and_then(|c| c.name(cc)).map(str::to_string);
    let run = detail(&focus, &stored.prev_hash, &doc, &name_of);
    let country_rows = country_rows(&doc, &name_of);
    let map_points: Vec<MapPoint> = country_rows
        .iter()
        .map(|c| MapPoint {
            country: c.code,
            addresses: c.addresses,
            verdict: c.verdict,
        })
        .collect();
    let capture = doc
        .capture
        .as_ref()
        .map(|c| capture_report(c, &doc, &name_of));
    let charts = Charts {
        capture: capture
            .as_ref()
            .map_or_else(String::new, |c| svg::capture_chart(&c.by_country)),
        compliance: svg::compliance_chart(&timeline),
        endpoints: svg::endpoint_chart(&timeline),
        countries: svg::country_chart(&timeline),
        map: svg::world_map(
            &map_points,
            &doc.policy.allow,
            &doc.policy.deny,
            &svg::map_vantages(&doc),
            &svg::map_disks(&doc),
        ),
    };

    let (chain_verified, chain_check) = if options.verify_chain {
        let report = history.verify_since_checkpoint(policy, options.full_verify)?;
        let from = report
            .policies
            .iter()
            .find(|p| &p.policy_id == policy)
            .and_then(|p| p.from_seq);
        let check = match from {
            Some(seq) => format!(
                "The runs from seq {seq} on were rehashed; those before were verified in full \
                 earlier (a verified checkpoint; `--full-verify` rehashes every run)."
            ),
            None => "Every run of the chain was rehashed.".to_string(),
        };
        (Some(report.is_intact()), Some(check))
    } else {
        (None, None)
    };
    let head = latest_seq(&all);
    // Shown in the report: for PostgreSQL the URL without its password.
    let mut provenance = Provenance::new(policy, &scope, head, chain_verified, history.path());
    provenance.chain_check = chain_check;

    let title = format!(
        "{} — {}",
        doc.policy
            .title
            .as_deref()
            .unwrap_or(doc.policy.id.as_str()),
        match kind {
            ReportKind::Run => format!(
                "run {} ({})",
                focus.id,
                day(&time::micros(&focus.started_at))
            ),
            ReportKind::Period => format!(
                "{} runs, {} to {}",
                scope.len(),
                scope
                    .first()
                    .map(|r| day(&time::micros(&r.started_at)).to_string())
                    .unwrap_or_default(),
                day(&time::micros(&focus.started_at))
            ),
        }
    );

    Ok(ReportContext {
        kind,
        title,
        generated_at: crate::time::seconds(&options.generated_at),
        tool: ToolInfo::current(),
        database: history.path().display().to_string(),
        policy: doc.policy.clone(),
        period,
        run,
        totals: totals(&scope),
        runs: scope.iter().map(RunRow::from).collect(),
        diff,
        endpoint_history: endpoint_history(&timeline),
        timeline: timeline.points.clone(),
        claims,
        countries: country_rows,
        capture,
        charts,
        provenance,
    })
}

fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

fn latest(all: &[RunSummary]) -> &RunSummary {
    // `all` is non-empty (checked by the caller); max_by_key on it cannot be None.
    all.iter()
        .max_by_key(|r| (r.started_at, r.id))
        .unwrap_or(&all[0])
}

fn latest_seq(all: &[RunSummary]) -> &RunSummary {
    all.iter().max_by_key(|r| r.seq).unwrap_or(&all[0])
}

fn pick(
    history: &History,
    db: &Path,
    policy: &PolicyId,
    all: &[RunSummary],
    r: RunRef,
) -> Result<RunSummary, ReportError> {
    match r {
        RunRef::Id(id) => {
            if let Some(found) = all.iter().find(|s| s.id == id) {
                return Ok(found.clone());
            }
            Err(match history.get(id)? {
                Some(other) => CompareError::OtherPolicy {
                    id,
                    actual: other.policy_id,
                    wanted: policy.clone(),
                },
                None => CompareError::NoSuchRun {
                    id,
                    db: db.to_path_buf(),
                },
            }
            .into())
        }
        RunRef::Before(until) => all
            .iter()
            .filter(|s| s.started_at < until)
            .max_by_key(|s| (s.started_at, s.id))
            .cloned()
            .ok_or_else(|| {
                CompareError::NothingBefore {
                    policy: policy.clone(),
                    when: time::micros(&(until - TimeDelta::microseconds(1))),
                    first: all
                        .iter()
                        .map(|r| r.started_at)
                        .min()
                        .map(|t| time::micros(&t))
                        .unwrap_or_default(),
                }
                .into()
            }),
    }
}

fn totals(scope: &[RunSummary]) -> Totals {
    let mut t = Totals {
        runs: scope.len(),
        ..Totals::default()
    };
    let mut previous: Option<Verdict> = None;
    for r in scope {
        match r.verdict {
            Verdict::Compliant => t.compliant += 1,
            Verdict::Inconclusive => t.inconclusive += 1,
            Verdict::Violation => t.violation += 1,
        }
        if previous.is_some_and(|p| p != r.verdict) {
            t.verdict_changes.push(RunRow::from(r));
        }
        previous = Some(r.verdict);
    }
    if t.runs > 0 {
        t.compliant_share = (t.compliant as f64 / t.runs as f64 * 10_000.0).round() / 10_000.0;
    }
    t
}

fn endpoint_history(t: &Timeline) -> Vec<EndpointHistory> {
    let mut out: Vec<EndpointHistory> = t
        .endpoints
        .iter()
        .map(|e| {
            let mut row = EndpointHistory {
                host: e.host.clone(),
                runs: 0,
                compliant: 0,
                inconclusive: 0,
                violation: 0,
                last: e.spans.last().map_or(Verdict::Inconclusive, |s| s.verdict),
                first_non_compliant: e
                    .spans
                    .iter()
                    .find(|s| s.verdict != Verdict::Compliant)
                    .map(|s| s.from.clone()),
            };
            for s in &e.spans {
                // One point per run (`Per::Run`), so a span's length is its runs.
                let n = s.last + 1 - s.first;
                row.runs += n;
                match s.verdict {
                    Verdict::Compliant => row.compliant += n,
                    Verdict::Inconclusive => row.inconclusive += n,
                    Verdict::Violation => row.violation += n,
                }
            }
            row
        })
        .collect();
    // The least compliant first: that is what a reader looks for.
    out.sort_by(|a, b| {
        (b.violation + b.inconclusive)
            .cmp(&(a.violation + a.inconclusive))
            .then_with(|| a.host.cmp(&b.host))
    });
    out
}

fn detail(
    run: &RunSummary,
    prev_hash: &str,
    doc: &RunDocument,
    name_of: &dyn Fn(CountryCode) -> Option<String>,
) -> RunDetail {
    let endpoints = doc
        .endpoints
        .iter()
        .map(|e| {
            let mut cnames: Vec<String> = Vec::new();
            let mut failed = 0;
            for r in &e.resolutions {
                for link in &r.cname_chain {
                    if !cnames.contains(&link.target) {
                        cnames.push(link.target.clone());
                    }
                }
                if !matches!(
                    r.outcome,
                    Outcome::Answer | Outcome::NoData | Outcome::NxDomain
                ) {
                    failed += 1;
                }
            }
            EndpointRow {
                host: e.host.clone(),
                purpose: e.purpose.clone(),
                verdict: e.verdict,
                reasons: e.reasons.clone(),
                cnames,
                queries: e.resolutions.len(),
                failed_queries: failed,
                addresses: e
                    .addresses
                    .iter()
                    .map(|a| {
                        let mut transit: Vec<CountryCode> = Vec::new();
                        if let Some(path) = &a.path {
                            for c in path.hops.iter().filter_map(|h| h.country) {
                                if transit.last() != Some(&c) {
                                    transit.push(c);
                                }
                            }
                        }
                        AddressRow {
                            ip: a.ip.to_string(),
                            country: a.country,
                            country_name: a.country.and_then(name_of),
                            countries: a.countries.clone(),
                            verdict: a.verdict,
                            reasons: a.reasons.clone(),
                            confidence: a.confidence,
                            decided_by: a.decided_by.clone(),
                            conflicts: a.conflicts.clone(),
                            names: a.names.clone(),
                            registry: a.registry.clone(),
                            evidence: a.evidence.clone(),
                            via: a.via.clone(),
                            seen: a.seen,
                            transit,
                            min_rtt_ms: a.rtt.as_ref().and_then(|r| r.min_rtt_ms),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    RunDetail {
        id: run.id,
        seq: run.seq,
        started_at: time::micros(&run.started_at),
        finished_at: time::micros(&run.finished_at),
        verdict: run.verdict,
        hash: run.hash.clone(),
        prev_hash: prev_hash.to_string(),
        tool: doc.tool.clone(),
        vantage: doc.vantage.as_ref().map(|v| VantageRow {
            country: v.country,
            country_name: name_of(v.country),
            latitude: v.latitude,
            longitude: v.longitude,
        }),
        combined: doc.window.as_ref().map(|w| CombinedRow {
            window: w.duration.clone(),
            since: time::micros(&w.since),
            until: time::micros(&w.until),
            vantages: doc.vantages.clone(),
        }),
        resolvers: doc.resolvers.clone(),
        client_subnets: doc.client_subnets.iter().map(|n| n.to_string()).collect(),
        repeat: doc.repeat,
        sources: doc.sources.clone(),
        trace: doc
            .trace
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok()),
        summary: doc.summary.clone(),
        endpoints,
    }
}

fn capture_report(
    c: &crate::record::CaptureSection,
    doc: &RunDocument,
    name_of: &dyn Fn(CountryCode) -> Option<String>,
) -> CaptureReport {
    let total = c.bytes_sent_by_country.values().sum::<u64>() + c.bytes_sent_unlocated;
    let share = |n: u64| {
        if total == 0 {
            0.0
        } else {
            (n as f64 * 1000.0 / total as f64).round() / 10.0
        }
    };
    let mut rows: Vec<CaptureBytes> = c
        .bytes_sent_by_country
        .iter()
        .map(|(code, bytes)| CaptureBytes {
            code: Some(*code),
            name: name_of(*code),
            status: status_of(doc, *code),
            bytes: *bytes,
            share: share(*bytes),
        })
        .collect();
    if c.bytes_sent_unlocated > 0 {
        rows.push(CaptureBytes {
            code: None,
            name: None,
            status: "unlocated",
            bytes: c.bytes_sent_unlocated,
            share: share(c.bytes_sent_unlocated),
        });
    }
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.code.cmp(&b.code)));
    CaptureReport {
        files: c.files.clone(),
        by_country: rows,
        bytes_sent: total,
        destinations: c.destinations.clone(),
    }
}

fn status_of(doc: &RunDocument, code: CountryCode) -> &'static str {
    if doc.policy.deny.contains(&code) {
        "denied"
    } else if doc.policy.allow.contains(&code) {
        "allowed"
    } else {
        "other"
    }
}

fn country_rows(
    doc: &RunDocument,
    name_of: &dyn Fn(CountryCode) -> Option<String>,
) -> Vec<CountryRow> {
    // One server, one count: an address returned for several endpoints counts once.
    let mut by_country: BTreeMap<CountryCode, (BTreeSet<String>, BTreeSet<&str>, Verdict)> =
        BTreeMap::new();
    for e in &doc.endpoints {
        for a in &e.addresses {
            if let Some(c) = a.country {
                let slot = by_country
                    .entry(c)
                    .or_insert_with(|| (BTreeSet::new(), BTreeSet::new(), a.verdict));
                slot.0.insert(a.ip.to_string());
                slot.1.insert(e.host.as_str());
                slot.2 = slot.2.max(a.verdict);
            }
        }
    }
    let mut rows: Vec<CountryRow> = by_country
        .into_iter()
        .map(|(code, (ips, hosts, verdict))| CountryRow {
            code,
            name: name_of(code),
            status: status_of(doc, code),
            addresses: ips.len(),
            endpoints: hosts.len(),
            verdict,
        })
        .collect();
    rows.sort_by(|a, b| b.addresses.cmp(&a.addresses).then(a.code.cmp(&b.code)));
    rows
}

/// Replaces every control, bidirectional-formatting and zero-width character in the strings of
/// `value` by a visible `⟦U+XXXX⟧`, so measured text shows exactly what it contains.
pub fn visible_controls(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(shown) = crate::text::visible(s) {
                *s = shown;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(visible_controls),
        Value::Object(map) => map.values_mut().for_each(visible_controls),
        _ => {}
    }
}

impl ReportContext {
    /// The context as templates get it: JSON values, with hidden characters made visible.
    pub fn to_value(&self) -> Result<Value, ReportError> {
        let mut value = serde_json::to_value(self).map_err(|e| ReportError::Json(e.to_string()))?;
        visible_controls(&mut value);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_become_visible_and_the_rest_stays() {
        let mut v = serde_json::json!({
            "a": ["x\u{202E}gnp.exe", "tab\tnew\nline"],
            "b": "zero\u{200B}width\u{0007}"
        });
        visible_controls(&mut v);
        assert_eq!(v["a"][0], "x⟦U+202E⟧gnp.exe");
        assert_eq!(v["a"][1], "tab\tnew\nline");
        assert_eq!(v["b"], "zero⟦U+200B⟧width⟦U+0007⟧");
    }
}
