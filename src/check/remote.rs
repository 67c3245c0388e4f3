//! A check measured elsewhere: what one RIPE Atlas probe measured, judged against a policy as if
//! this machine had measured it. Its traceroutes and pings are played back through the check's
//! own tracer interface ([`RecordedTracer`]) and its names resolved on the probe become the
//! run's answers, so the evidence, physics and integrity rules are the ones every run meets.
//!
//! Two things differ, and the run says so: nothing can be asked of the probe's network (no
//! canaries, so its integrity is untested), and nothing is sent from here in its name (no
//! HTTPS probe; PTR names are not asked). Databases and registries are consulted from here,
//! as they say the same wherever they are asked.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;

use super::{CheckSettings, Located, Measured, judge_measured};
use crate::measure::atlas::recorded::{self, RecordedTracer};
use crate::measure::atlas::{AtlasKind, AtlasResult};
use crate::measure::integrity::Survey;
use crate::measure::resolve::{DnsResolver, RecordType, Resolution};
use crate::measure::trace::TraceSettings;
use crate::measure::vantage::MeasuredFrom;
use crate::policy::{Policy, Target};
use crate::record::RunDocument;
use crate::sources::geo::Geolocator;
use crate::sources::physics::Vantage;
use crate::sources::registry::Registry;

/// One probe, and where it is said to be.
#[derive(Debug, Clone)]
pub struct RemoteProbe {
    /// The probe's id in the results (`prb_id`).
    pub id: u64,
    /// How messages name it: `atlas probe 6001`, `globalping probe IN-Mumbai-AS55836`.
    pub name: String,
    pub measured_from: MeasuredFrom,
    /// `None`: its place is unknown (or not in its declared country), so its RTTs bound nothing.
    pub vantage: Option<Vantage>,
}

/// Addresses measured by address rather than by name, and the endpoint each belongs to (from a
/// run of this machine that resolved it), with where that came from for the reasons.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub hosts: BTreeMap<IpAddr, Vec<String>>,
    /// E.g. `run 12 (local:delhi)`.
    pub from: String,
}

/// The run `probe` made of `policy`, judged here.
pub async fn check_recorded(
    policy: &Policy,
    probe: &RemoteProbe,
    results: &[AtlasResult],
    attribution: &Attribution,
    geo: &Geolocator,
    registry: Option<Arc<Registry>>,
) -> RunDocument {
    let mine: Vec<&AtlasResult> = results
        .iter()
        .filter(|r| r.prb_id == Some(probe.id))
        .collect();
    let mut policy = policy.clone();
    policy.vantage = probe.vantage;
    // Probing is what the probe did; from here nothing is sent in its name.
    policy.trace.enabled = true;
    policy.http.enabled = false;
    policy.trace.settings = trace_settings(&mine, policy.trace.settings);
    let per_endpoint: Vec<Vec<Resolution>> = policy
        .endpoints
        .iter()
        .map(|e| match &e.target {
            Target::Host(host) => {
                let mut answers =
                    recorded::resolutions(probe.id, &probe.name, host, mine.iter().copied());
                answers.extend(attributed(&probe.name, host, &mine, attribution));
                answers
            }
            Target::Ip(_) => Vec::new(),
        })
        .collect();
    let queries = per_endpoint.iter().map(Vec::len).sum();
    let integrity = Survey::skipped(&format!(
        "measured by {}: no canaries can be sent from a probe, so whether its network \
         intercepts is untested",
        probe.name
    ))
    .finish(&mut [], None);
    let (started_at, finished_at) = span(&mine);
    let settings = CheckSettings {
        resolvers: Vec::new(),
        concurrency: 8,
        trace_concurrency: 8,
        dns: policy.dns,
        capture: None,
        measured_from: probe.measured_from.clone(),
    };
    let measured = Measured {
        started_at,
        per_endpoint,
        integrity,
        queries,
    };
    let instruments = Located::<DnsResolver, _> {
        tracer: Some(Arc::new(RecordedTracer::new(
            probe.id,
            &probe.name,
            mine.iter().copied(),
        ))),
        reverse: None,
        registry,
        watcher: None,
    };
    let mut doc = judge_measured(
        &policy,
        &settings,
        measured,
        instruments,
        geo,
        &ProgressBar::hidden(),
    )
    .await;
    doc.resolvers = vec![recorded::resolver_label(&probe.name)];
    doc.client_subnets = Vec::new();
    doc.finished_at = finished_at.max(doc.started_at);
    doc
}

/// Answers for `host` from results measured by address, where a run of this machine resolved
/// `host` to that address.
fn attributed(
    probe: &str,
    host: &str,
    mine: &[&AtlasResult],
    attribution: &Attribution,
) -> Vec<Resolution> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for r in mine {
        let Some(addr) = r.dst_addr else { continue };
        let by_name = r
            .dst_name
            .as_deref()
            .is_some_and(|n| n.parse::<IpAddr>().is_err());
        if !by_name
            && attribution
                .hosts
                .get(&addr)
                .is_some_and(|hosts| hosts.iter().any(|h| h == host))
            && !addrs.contains(&addr)
        {
            addrs.push(addr);
        }
    }
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| {
            recorded::probe_answer(
                format!(
                    "{probe}: measured by address, which {} resolved {host} to",
                    attribution.from
                ),
                if addr.is_ipv4() {
                    RecordType::A
                } else {
                    RecordType::Aaaa
                },
                u32::try_from(i + 1).unwrap_or(u32::MAX),
                Ok(addr),
            )
        })
        .collect()
}

/// How the probe traced, as the document's `trace` settings: the protocol of its traceroutes,
/// the deepest hop and the most packets per hop; Atlas's own 4 s wait per packet.
fn trace_settings(mine: &[&AtlasResult], base: TraceSettings) -> TraceSettings {
    let traces: Vec<_> = mine
        .iter()
        .filter_map(|r| match &r.kind {
            AtlasKind::Traceroute(t) => Some(t),
            AtlasKind::Ping(_) => None,
        })
        .collect();
    let Some(first) = traces.first() else {
        return base;
    };
    let protocol = recorded::protocol(first);
    let deepest = traces
        .iter()
        .flat_map(|t| t.hops.iter().filter(|h| !h.is_sentinel()).map(|h| h.hop))
        .max()
        .and_then(|h| u8::try_from(h).ok())
        .unwrap_or(base.max_hops);
    let rounds = traces
        .iter()
        .flat_map(|t| t.hops.iter().map(|h| h.replies.len()))
        .max()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(base.rounds);
    TraceSettings {
        protocol,
        max_hops: deepest.max(1),
        rounds,
        round_timeout: Duration::from_secs(4),
        ..base
    }
}

/// When the probe measured: its earliest and latest result (now, when none has a time).
fn span(mine: &[&AtlasResult]) -> (DateTime<Utc>, DateTime<Utc>) {
    let times: Vec<DateTime<Utc>> = mine
        .iter()
        .filter_map(|r| DateTime::from_timestamp(r.timestamp?, 0))
        .collect();
    let now = Utc::now();
    (
        times.iter().min().copied().unwrap_or(now),
        times.iter().max().copied().unwrap_or(now),
    )
}
