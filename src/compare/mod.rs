//! History comparisons: what changed between two runs of a policy (`diff`), how a policy's
//! verdicts and address geography moved over time (`timeline`), and whether each dated vendor
//! claim has held since it was announced (`claims`).
//!
//! This module owns reading recorded run documents back for comparison, choosing runs from a
//! user's `RUN|DATE` reference, and the comparison rules below, one file each (`diff.rs`,
//! `timeline.rs`, `claims.rs`); their tables are in [`crate::report::table`]. It never writes
//! to the history and never changes its schema.
//!
//! Documents are read through the history's one lenient view ([`crate::record::view`]): only
//! the fields compared here (the policy's claims; each endpoint's host and verdict; each
//! address's ip, country, verdict and path hop countries), so runs recorded by older releases
//! stay comparable. A run with a compared field present but unreadable is refused, naming it.
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
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use crate::history::{History, HistoryError, IndexedRun, RunFilter, RunSummary};
use crate::history::{RunId, Seq};
use crate::model::Verdict;
use crate::policy::PolicyId;
use crate::time;

/// What stops a comparison; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(
        "no runs of policy `{policy}` in {}: list recorded runs with `residency history`",
        db.display()
    )]
    UnknownPolicy { policy: PolicyId, db: PathBuf },
    #[error("no run with id {id} in {}: list runs with `residency history --policy POLICY_ID`", db.display())]
    NoSuchRun { id: RunId, db: PathBuf },
    #[error(
        "run {id} belongs to policy `{actual}`, not `{wanted}`: list its runs with `residency history --policy {wanted}`"
    )]
    OtherPolicy {
        id: RunId,
        actual: PolicyId,
        wanted: PolicyId,
    },
    #[error(
        "policy `{policy}` has no run started at or before {when}: its first run started at {first}; pick a later time"
    )]
    NothingBefore {
        policy: PolicyId,
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
    Unreadable { id: RunId, detail: String },
}

/// A user's reference to a run: `--from`/`--to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef {
    Id(RunId),
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

mod claims;
mod diff;
mod timeline;

pub use claims::*;
pub use diff::*;
pub use timeline::*;

use crate::record::view::{AddressView, ClaimView, EndpointView, RunView};

/// A run as comparisons name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRefInfo {
    pub id: RunId,
    pub seq: Seq,
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

pub(crate) fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

/// The policy's runs, oldest first; an error when it has none at all.
pub(crate) fn runs_of(
    history: &History,
    db: &Path,
    policy: &PolicyId,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<RunSummary>, CompareError> {
    let all = history.list(&RunFilter {
        policy_id: Some(policy.clone()),
        since: None,
        until: None,
    })?;
    if all.is_empty() {
        return Err(CompareError::UnknownPolicy {
            policy: policy.clone(),
            db: db.to_path_buf(),
        });
    }
    Ok(all
        .into_iter()
        .filter(|r| since.is_none_or(|s| r.started_at >= s))
        .filter(|r| until.is_none_or(|u| r.started_at < u))
        .collect())
}

pub(crate) fn document(history: &History, db: &Path, id: RunId) -> Result<RunView, CompareError> {
    let text = history
        .document_text(id)?
        .ok_or_else(|| CompareError::NoSuchRun {
            id,
            db: db.to_path_buf(),
        })?;
    let view =
        RunView::from_text(&text).map_err(|detail| CompareError::Unreadable { id, detail })?;
    let problems = view.problems();
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(CompareError::Unreadable {
            id,
            detail: format!("{first}{more}"),
        });
    }
    Ok(view)
}

pub(crate) fn pick(
    runs: &[RunSummary],
    policy: &PolicyId,
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
                    wanted: policy.clone(),
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
                policy: policy.clone(),
                when: time::micros(&(until - TimeDelta::microseconds(1))),
                first: runs
                    .first()
                    .map(|f| time::micros(&f.started_at))
                    .unwrap_or_default(),
            }),
    }
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
    type Judged = (Value, Vec<RunId>, Option<bool>);

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
    ) -> Result<RunId, Box<dyn std::error::Error>> {
        let t = at(when)?;
        Ok(h.append(NewRun {
            policy_id: PolicyId::test("p"),
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
        assert_eq!(RunRef::parse("42")?, RunRef::Id(RunId(42)));
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
            &PolicyId::test("p"),
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

        let same = diff(
            &h,
            &path,
            &PolicyId::test("p"),
            RunRef::Id(second),
            RunRef::Id(second),
        )?;
        assert!(same.is_empty());
        assert!(crate::report::table::diff(&same).contains("no changes"));
        Ok(())
    }

    /// The index and `verify` accept any document with the fields every release wrote; a
    /// comparison refuses one whose compared fields are unreadable, naming them, and never reads
    /// them as absent.
    #[test]
    fn a_run_the_index_accepts_but_cannot_be_compared_is_refused_by_name() -> TestResult {
        let (_dir, path, mut h) = open()?;
        let addr = [("192.0.2.1", Some("IN"), "compliant", &[][..])];
        let good = append(
            &mut h,
            "2026-01-10T00:00:00Z",
            Verdict::Compliant,
            doc(json!([]), &[("api", "compliant", &addr)]),
        )?;
        let odd = json!({"policy": {"claims": "soon"}, "endpoints": [{"host": "api",
            "verdict": "compliant", "addresses": [{"ip": "192.0.2.1", "country": "IN",
            "verdict": "maybe"}]}]});
        let bad = append(&mut h, "2026-01-11T00:00:00Z", Verdict::Compliant, odd)?;
        assert!(h.verify(None)?.is_intact());
        let indexed = h.indexed(&crate::history::RunFilter::default())?;
        assert_eq!(indexed[1].error, None);
        assert_eq!(indexed[1].countries.get("IN"), Some(&1));

        let p = PolicyId::test("p");
        let e = diff(&h, &path, &p, RunRef::Id(good), RunRef::Id(bad)).map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains(&format!("run {bad} cannot be compared (policy: "))
                && m.contains("(and 1 more)")),
            "{e:?}"
        );
        // The timeline reads the index only, so it still has both runs.
        assert_eq!(
            timeline(&h, &path, &p, None, None, Per::Run)?.points.len(),
            2
        );
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
        let e = diff(
            &h,
            &path,
            &PolicyId::test("nope"),
            RunRef::Id(id),
            RunRef::Id(id),
        )
        .map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("no runs of policy `nope`")),
            "{e:?}"
        );
        let e = diff(
            &h,
            &path,
            &PolicyId::test("p"),
            RunRef::Id(RunId(999)),
            RunRef::Id(id),
        )
        .map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.contains("no run with id 999")),
            "{e:?}"
        );
        let e = diff(
            &h,
            &path,
            &PolicyId::test("p"),
            RunRef::parse("2026-01-09")?,
            RunRef::Id(id),
        )
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
            .append(NewRun {
                policy_id: PolicyId::test("q"),
                started_at: t,
                finished_at: t,
                verdict: Verdict::Compliant,
                document: doc(json!([]), &[]),
            })?
            .id;
        let e = diff(
            &h,
            &path,
            &PolicyId::test("p"),
            RunRef::Id(mine),
            RunRef::Id(other),
        )
        .map_err(|e| e.to_string());
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
        let t = serde_json::to_value(timeline(
            &h,
            &path,
            &PolicyId::test("p"),
            None,
            None,
            Per::Run,
        )?)?;
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
        let d = serde_json::to_value(timeline(
            &h,
            &path,
            &PolicyId::test("p"),
            None,
            None,
            Per::Day,
        )?)?;
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

        let window = timeline(
            &h,
            &path,
            &PolicyId::test("p"),
            Some(at("2026-01-02")?),
            None,
            Per::Run,
        )?;
        assert_eq!(window.points.len(), 2);
        // Replay starts from the beginning of the policy, not of the window.
        assert_eq!(window.endpoints[0].spans[0].verdict, Verdict::Violation);
        Ok(())
    }

    fn claim_status(h: &History, path: &Path) -> Result<Vec<Judged>, Box<dyn std::error::Error>> {
        let c = claims(h, path, &PolicyId::test("p"))?;
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
        assert!(
            crate::report::table::claims(&claims(&h, &path, &PolicyId::test("p"))?)
                .contains("never held; runs")
        );
        Ok(())
    }
}
