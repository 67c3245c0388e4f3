//! Combine: the latest run of one policy from each vantage point, taken together into one
//! combined run (`residency combine`).
//!
//! Owns which runs are combined (per vantage label, the latest within the window; combined
//! runs are never combined again) and the combined document: every endpoint with the addresses
//! any vantage saw, each judged from all vantages at once ([`address`]: multilateration,
//! anycast sites, catchments). The result is a run document of its own kind, chained in the
//! policy's history like any run and listing the ids and hashes of the runs it combines.

mod address;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::history::{History, HistoryError, RunFilter, RunId, Seq};
use crate::judge::verdict::{Rules, judge_endpoint, judge_run};
use crate::measure::vantage::MeasuredFrom;
use crate::model::{CountryCode, Verdict};
use crate::policy::PolicyId;
use crate::record::{CombinedVantage, EndpointResult, RunDocument, Summary, ToolInfo, Window};

use self::address::{Judge, Seen, combine_address};

/// Why there is nothing to combine; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(
        "no run of {policy} started between {since} and {until}: run `residency check` from each \
         vantage point first, or widen --window"
    )]
    NoRuns {
        policy: PolicyId,
        since: String,
        until: String,
    },
    #[error(
        "run {id} of {policy} cannot be read as a run document ({detail}); `residency history verify` checks the store"
    )]
    Unreadable {
        policy: PolicyId,
        id: RunId,
        detail: String,
    },
}

/// One vantage's run, as the history holds it.
#[derive(Debug, Clone)]
pub struct VantageRun {
    pub run_id: RunId,
    pub seq: Seq,
    pub hash: String,
    pub started_at: DateTime<Utc>,
    pub document: RunDocument,
}

impl VantageRun {
    /// Who measured the run (runs older than vantage labels were all this machine's).
    pub fn measured_from(&self) -> MeasuredFrom {
        self.document
            .measured_from
            .clone()
            .unwrap_or_else(MeasuredFrom::legacy)
    }
}

/// Per vantage label, the latest run of `policy` started in `since <= started_at < until`;
/// combined runs are left out. Ordered by label.
pub fn select(
    history: &History,
    policy: &PolicyId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<VantageRun>, CombineError> {
    let filter = RunFilter {
        policy_id: Some(policy.clone()),
        since: Some(since),
        until: Some(until),
    };
    let mut latest: BTreeMap<String, VantageRun> = BTreeMap::new();
    for summary in history.list(&filter)? {
        let Some(stored) = history.get(summary.id)? else {
            continue;
        };
        let document: RunDocument =
            serde_json::from_value(stored.document).map_err(|e| CombineError::Unreadable {
                policy: policy.clone(),
                id: summary.id,
                detail: e.to_string(),
            })?;
        if document.is_combined() {
            continue;
        }
        let run = VantageRun {
            run_id: stored.id,
            seq: stored.seq,
            hash: stored.hash,
            started_at: stored.started_at,
            document,
        };
        // `list` is oldest first, so a later run of the same vantage replaces the earlier.
        latest.insert(run.measured_from().label, run);
    }
    if latest.is_empty() {
        return Err(CombineError::NoRuns {
            policy: policy.clone(),
            since: crate::time::seconds(&since),
            until: crate::time::seconds(&until),
        });
    }
    Ok(latest.into_values().collect())
}

/// The combined run of `runs` (one per vantage, as [`select`] returns them), or `None` when
/// there are none. The policy is as the newest run states it.
pub fn combine(runs: &[VantageRun], window: Window) -> Option<RunDocument> {
    let newest = &runs.iter().max_by_key(|r| r.started_at)?.document;
    let snapshot = newest.policy.clone();
    let allow: BTreeSet<CountryCode> = snapshot.allow.iter().copied().collect();
    let deny: BTreeSet<CountryCode> = snapshot.deny.iter().copied().collect();
    let transit_deny: BTreeSet<CountryCode> = snapshot.transit_deny.iter().copied().collect();
    let judge = Judge {
        rules: Rules {
            allow: &allow,
            deny: &deny,
        },
        snapshot: &snapshot,
        transit_deny: &transit_deny,
    };
    let labels: Vec<String> = runs.iter().map(|r| r.measured_from().label).collect();

    // Endpoints in the order the vantages list them, the newest policy's first.
    let mut hosts: Vec<(String, Option<String>)> = Vec::new();
    for doc in std::iter::once(newest).chain(runs.iter().map(|r| &r.document)) {
        for e in &doc.endpoints {
            if !hosts.iter().any(|(h, _)| *h == e.host) {
                hosts.push((e.host.clone(), e.purpose.clone()));
            }
        }
    }
    let mut endpoints = Vec::with_capacity(hosts.len());
    let mut distinct: BTreeSet<IpAddr> = BTreeSet::new();
    for (host, purpose) in hosts {
        let per_vantage: Vec<(&str, &EndpointResult)> = runs
            .iter()
            .zip(&labels)
            .filter_map(|(r, label)| {
                r.document
                    .endpoints
                    .iter()
                    .find(|e| e.host == host)
                    .map(|e| (label.as_str(), e))
            })
            .collect();
        let mut ips: Vec<IpAddr> = Vec::new();
        for (_, e) in &per_vantage {
            for a in &e.addresses {
                if !ips.contains(&a.ip) {
                    ips.push(a.ip);
                }
            }
        }
        let mut addresses = Vec::with_capacity(ips.len());
        for ip in ips {
            let seen: Vec<Seen<'_>> = per_vantage
                .iter()
                .filter_map(|(label, e)| {
                    e.addresses
                        .iter()
                        .find(|a| a.ip == ip)
                        .map(|result| Seen { label, result })
                })
                .collect();
            let mut result = combine_address(ip, &seen, &judge);
            result.seen = seen.iter().map(|s| s.result.seen).sum();
            result.via = seen
                .iter()
                .flat_map(|s| {
                    s.result
                        .via
                        .iter()
                        .map(move |v| format!("{}: {v}", s.label))
                })
                .collect();
            result.names = seen
                .iter()
                .flat_map(|s| s.result.names.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            result.registry = seen.iter().find_map(|s| s.result.registry.clone());
            distinct.insert(ip);
            addresses.push(result);
        }
        let resolutions: Vec<_> = per_vantage
            .iter()
            .flat_map(|(_, e)| e.resolutions.iter().cloned())
            .collect();
        let verdicts: Vec<(IpAddr, Verdict)> =
            addresses.iter().map(|a| (a.ip, a.verdict)).collect();
        let (mut verdict, mut reasons) = judge_endpoint(&host, &resolutions, &verdicts);
        let missing: Vec<&str> = labels
            .iter()
            .filter(|l| !per_vantage.iter().any(|(p, _)| p == l))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            verdict = verdict.max(Verdict::Inconclusive);
            reasons.push(format!(
                "not measured from {} (their runs' policy had no such endpoint)",
                missing.join(", ")
            ));
        }
        endpoints.push(EndpointResult {
            host,
            purpose,
            verdict,
            reasons,
            resolutions,
            addresses,
        });
    }
    let queries = endpoints.iter().map(|e| e.resolutions.len()).sum();
    let summary = Summary::of(&endpoints, distinct.len(), queries);
    let union = |f: &dyn Fn(&RunDocument) -> Vec<String>| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in runs {
            for item in f(&r.document) {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
        }
        out
    };
    let mut client_subnets = Vec::new();
    for r in runs {
        for net in &r.document.client_subnets {
            if !client_subnets.contains(net) {
                client_subnets.push(*net);
            }
        }
    }
    Some(RunDocument {
        started_at: runs
            .iter()
            .map(|r| r.document.started_at)
            .min()
            .unwrap_or_else(Utc::now),
        finished_at: Utc::now(),
        verdict: judge_run(endpoints.iter().map(|e| e.verdict)),
        tool: ToolInfo::current(),
        resolvers: union(&|d| d.resolvers.clone()),
        client_subnets,
        repeat: runs.iter().map(|r| r.document.repeat).max().unwrap_or(1),
        vantage: None,
        measured_from: None,
        trace: None,
        sources: union(&|d| d.sources.clone()),
        integrity: None,
        summary,
        endpoints,
        capture: None,
        window: Some(window),
        vantages: runs
            .iter()
            .map(|r| {
                let from = r.measured_from();
                let v = r.document.vantage;
                CombinedVantage {
                    run_id: r.run_id.0,
                    seq: r.seq.0,
                    hash: r.hash.clone(),
                    kind: from.kind,
                    label: from.label,
                    country: v.map(|v| v.country),
                    latitude: v.map(|v| v.latitude),
                    longitude: v.map(|v| v.longitude),
                    location: from
                        .location
                        .or(v.map(|_| crate::measure::vantage::LocationKind::Declared)),
                    asn: from.asn,
                    probe: from.probe,
                    city: from.city,
                    started_at: r.document.started_at,
                    verdict: r.document.verdict,
                }
            })
            .collect(),
        policy: snapshot,
    })
}
