//! The `check` pipeline: one policy, measured end to end, into one run document.
//!
//! Owns the order of work (resolve every endpoint through every resolver × client subnet ×
//! record type × repeat, locate every address, judge) and the shape of the result. The run
//! document is what the history stores and hashes and what `--format json` prints, so its
//! field names are a public contract: [`crate::record`] defines it (documented in README.md).

pub mod capture;
pub mod doctor;
pub mod locate;
pub mod remote;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use ipnetwork::IpNetwork;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::judge::fusion::{Fused, LastHop, fuse};
use crate::judge::verdict::{
    LocatedHop, Rules, fold, judge_address, judge_endpoint, judge_reachability, judge_run,
    judge_transit,
};
use crate::measure::integrity::{self, Integrity, Survey, SurveyPlan, Surveyor};
use crate::measure::resolve::{Query, RecordType, Resolution, Resolve, ResolveSettings};
use crate::measure::trace::{Trace, TraceStatus};
use crate::measure::vantage::MeasuredFrom;
use crate::model::{Confidence, Verdict};
use crate::policy::{Policy, Target};
use crate::record::{
    AddressResult, EndpointResult, PolicySnapshot, RunDocument, Summary, ToolInfo,
};
use crate::sources::evidence::{
    self, AddressEvidence, HttpPlan, PathEvidence, ProbeSettings, ReverseDns,
};
use crate::sources::geo::Geolocator;
use crate::sources::registry::Registry;

/// Default bound on queries in flight: enough to keep a 1,000-endpoint run short, small enough
/// that it never opens more sockets than a resolver (or a file-descriptor limit) tolerates.
pub const DEFAULT_CONCURRENCY: u16 = 64;

/// Default bound on traces in flight: each holds raw sockets and a thread for its rounds.
pub const DEFAULT_TRACE_CONCURRENCY: u16 = 32;

/// How a check is carried out, beyond what the policy says.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// The resolvers actually asked (the policy's, the command line's or the system's).
    pub resolvers: Vec<SocketAddr>,
    /// Most queries in flight at once.
    pub concurrency: usize,
    /// Most traces (and TCP RTT probes) in flight at once.
    pub trace_concurrency: usize,
    /// Timeouts of the policy's DNS queries (the DNS canaries wait one such try).
    pub dns: ResolveSettings,
    /// The device's captured traffic, when the run judges it too (`check --capture`): its
    /// destinations are already endpoints of the policy; this adds the `capture` section.
    pub capture: Option<Arc<capture::CapturedTraffic>>,
    /// Who measures: recorded in the document, so `combine` can tell vantage points apart.
    pub measured_from: MeasuredFrom,
}

/// Every query the policy asks for, in a stable order: endpoint, resolver, subnet (none first),
/// record type, repeat. The order is what the document lists, whatever order answers arrive in.
fn plan(policy: &Policy, settings: &CheckSettings) -> Vec<(usize, Query)> {
    let subnets: Vec<Option<IpNetwork>> = std::iter::once(None)
        .chain(policy.client_subnets.iter().copied().map(Some))
        .collect();
    let mut queries = Vec::new();
    for (index, endpoint) in policy.endpoints.iter().enumerate() {
        let Target::Host(host) = &endpoint.target else {
            continue;
        };
        for resolver in &settings.resolvers {
            for subnet in &subnets {
                for record_type in [RecordType::A, RecordType::Aaaa] {
                    for attempt in 1..=policy.repeat {
                        queries.push((
                            index,
                            Query {
                                host: host.clone(),
                                record_type,
                                resolver: *resolver,
                                client_subnet: *subnet,
                                attempt,
                            },
                        ));
                    }
                }
            }
        }
    }
    queries
}

/// Runs every query with at most `concurrency` in flight; results come back in plan order.
async fn resolve_all<R: Resolve + 'static>(
    resolver: Arc<R>,
    queries: Vec<(usize, Query)>,
    concurrency: usize,
    progress: &ProgressBar,
) -> Vec<(usize, Resolution)> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (slot, (endpoint, query)) in queries.iter().cloned().enumerate() {
        let resolver = Arc::clone(&resolver);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            // The permit is taken before the query opens its socket, which is what bounds them.
            let _permit = permits.acquire_owned().await;
            let resolution = resolver.resolve(&query).await;
            (slot, endpoint, resolution)
        });
    }
    let mut done: Vec<Option<Resolution>> = vec![None; queries.len()];
    while let Some(joined) = tasks.join_next().await {
        progress.inc(1);
        if let Ok((slot, _, resolution)) = joined {
            done[slot] = Some(resolution);
        }
    }
    // A task that panicked is a bug in a resolver; its query is recorded as failed (so the
    // endpoint cannot come out compliant) rather than taking the whole run down.
    queries
        .into_iter()
        .zip(done)
        .map(|((endpoint, query), resolution)| {
            let resolution = resolution.unwrap_or_else(|| {
                Resolution::failed(&query, "the query task panicked (a bug: please report it)")
            });
            (endpoint, resolution)
        })
        .collect()
}

/// Where an endpoint's address was seen: first query (for a stable order), how often, via what.
#[derive(Default)]
struct Sighting {
    first: usize,
    count: usize,
    via: BTreeSet<String>,
}

/// What a check measures with. Each instrument is a trait with its real implementation beside
/// it ([`crate::measure::resolve::DnsResolver`], [`crate::measure::trace::TrippyTracer`],
/// [`crate::measure::integrity::Canaries`]), so a scenario can stand in for the network while
/// everything after the measurement runs as it does for real.
pub struct Instruments<R, T, S> {
    pub resolver: Arc<R>,
    /// `None`: no active probing at all (no traces, handshakes or canaries).
    pub tracer: Option<Arc<T>>,
    pub surveyor: S,
    /// Where to ask who holds each address (RDAP, WHOIS); `None`: not asked.
    pub registry: Option<Arc<Registry>>,
}

/// Checks one policy: measures, locates, judges. Never fails: what could not be measured is
/// recorded and judged inconclusive. Storing the result is the caller's business.
pub async fn check_policy<R: Resolve + 'static, T: Trace + 'static, S: Surveyor>(
    policy: &Policy,
    settings: &CheckSettings,
    instruments: Instruments<R, T, S>,
    geo: &Geolocator,
    progress: &ProgressBar,
) -> RunDocument {
    let Instruments {
        resolver,
        tracer,
        surveyor,
        registry,
    } = instruments;
    let started_at = Utc::now();
    let queries = plan(policy, settings);
    let planned = queries.len();
    progress.set_length(planned as u64);
    // The canaries go out while the names resolve: a survey takes about one probe timeout.
    let survey_plan = tracer.as_ref().and_then(|_| survey_plan(policy, settings));
    // Reply TTLs are watched from the first query to the last probe (with raw sockets only).
    let watcher = survey_plan.as_ref().and_then(|_| surveyor.watch());
    let (mut resolutions, survey) = tokio::join!(
        resolve_all(
            Arc::clone(&resolver),
            queries,
            settings.concurrency,
            progress,
        ),
        async {
            match &survey_plan {
                Some(plan) => surveyor.survey(plan).await,
                None => Survey::skipped(
                    "probing is off (`trace: { enabled: false }` or --no-trace): no canaries were sent",
                ),
            }
        }
    );
    let integrity = {
        let mut answers: Vec<&mut Resolution> = resolutions.iter_mut().map(|(_, r)| r).collect();
        survey.finish(&mut answers, watcher.as_ref())
    };

    let mut per_endpoint: Vec<Vec<Resolution>> = vec![Vec::new(); policy.endpoints.len()];
    for (index, resolution) in resolutions {
        if let Some(list) = per_endpoint.get_mut(index) {
            list.push(resolution);
        }
    }
    // PTR names are DNS answers too: from an intercepted resolver they would be the
    // interceptor's words.
    let reverse = settings
        .resolvers
        .first()
        .filter(|server| integrity.distrust(&server.to_string()).is_none())
        .map(|server| ReverseDns {
            resolver: Arc::clone(&resolver),
            server: *server,
        });
    let measured = Measured {
        started_at,
        per_endpoint,
        integrity,
        queries: planned,
    };
    let instruments = Located {
        tracer,
        reverse,
        registry,
        watcher,
    };
    judge_measured(policy, settings, measured, instruments, geo, progress).await
}

/// What a run measured before anything is located: each endpoint's answers (in the policy's
/// order) and what the survey found about the vantage point.
pub struct Measured {
    pub started_at: DateTime<Utc>,
    pub per_endpoint: Vec<Vec<Resolution>>,
    pub integrity: Integrity,
    /// How many queries were planned.
    pub queries: usize,
}

/// What locates the answered addresses: the tracer (its paths and RTTs are the run's), reverse
/// DNS, the registry, and the watcher of reply TTLs.
pub struct Located<R, T> {
    pub tracer: Option<Arc<T>>,
    pub reverse: Option<ReverseDns<R>>,
    pub registry: Option<Arc<Registry>>,
    pub watcher: Option<integrity::TtlWatcher>,
}

/// Locates and judges every address the answers gave, then the endpoints and the run: the
/// second half of [`check_policy`], also run on measurements made elsewhere (RIPE Atlas
/// probes), so they go through the same evidence, physics and integrity rules.
pub async fn judge_measured<R: Resolve + 'static, T: Trace + 'static>(
    policy: &Policy,
    settings: &CheckSettings,
    measured: Measured,
    instruments: Located<R, T>,
    geo: &Geolocator,
    progress: &ProgressBar,
) -> RunDocument {
    let Measured {
        started_at,
        per_endpoint,
        integrity,
        queries: planned,
    } = measured;
    let Located {
        tracer,
        reverse,
        registry,
        watcher,
    } = instruments;
    let rules = Rules {
        allow: &policy.allow,
        deny: &policy.deny,
    };
    let sightings: Vec<Vec<(IpAddr, Sighting)>> = policy
        .endpoints
        .iter()
        .zip(&per_endpoint)
        .map(|(endpoint, resolutions)| sightings(&endpoint.target, resolutions))
        .collect();
    let mut distinct: Vec<IpAddr> = Vec::new();
    let mut known: HashSet<IpAddr> = HashSet::new();
    for (ip, _) in sightings.iter().flatten() {
        if known.insert(*ip) {
            distinct.push(*ip);
        }
    }
    // Each address is asked over HTTPS by every name it was resolved for.
    let mut http_names: HashMap<IpAddr, BTreeSet<String>> = HashMap::new();
    for (endpoint, seen) in policy.endpoints.iter().zip(&sightings) {
        if let Target::Host(host) = &endpoint.target {
            for (ip, _) in seen {
                http_names.entry(*ip).or_default().insert(host.clone());
            }
        }
    }
    let probe = ProbeSettings {
        trace: policy.trace.enabled.then_some(policy.trace.settings),
        registry: registry.clone(),
        concurrency: settings.trace_concurrency,
        vantage: policy.vantage,
        http: (policy.trace.enabled && policy.http.enabled).then(|| {
            Arc::new(HttpPlan {
                settings: policy.http.settings(),
                names: http_names,
                default_name: None,
            })
        }),
        geofeeds: policy.geofeeds.clone(),
    };
    progress.set_message(format!(
        "{}: probing {} addresses",
        policy.id,
        distinct.len()
    ));
    let facts = evidence::gather(
        &distinct,
        geo,
        reverse,
        tracer,
        &probe,
        &integrity,
        watcher.as_ref(),
    )
    .await;
    drop(watcher);

    let mut endpoints = Vec::with_capacity(policy.endpoints.len());
    for ((endpoint, resolutions), ordered) in
        policy.endpoints.iter().zip(per_endpoint).zip(sightings)
    {
        let mut addresses = Vec::with_capacity(ordered.len());
        for (ip, Sighting { count, via, .. }) in ordered {
            let Some(f) = facts.get(&ip) else { continue };
            let (judgement, fused) = judge_facts(ip, f, &rules, policy);
            addresses.push(AddressResult {
                names: f.names.clone(),
                registry: f.registry.clone(),
                confidence: fused.confidence,
                decided_by: fused.decided_by,
                conflicts: fused.conflicts,
                ip,
                country: judgement.country,
                countries: judgement.countries.into_iter().collect(),
                evidence: f.evidence.clone(),
                verdict: judgement.verdict,
                reasons: judgement.reasons,
                seen: count,
                via: via.into_iter().collect(),
                path: f.path.clone(),
                rtt: f.rtt.clone(),
                http: f.http.clone(),
                anycast: None,
                sites: None,
                intersection: None,
                measured_from: Vec::new(),
            });
        }
        let verdicts: Vec<(IpAddr, Verdict)> =
            addresses.iter().map(|a| (a.ip, a.verdict)).collect();
        let (verdict, reasons) = judge_endpoint(&endpoint.host, &resolutions, &verdicts);
        endpoints.push(EndpointResult {
            host: endpoint.host.clone(),
            purpose: endpoint.purpose.clone(),
            verdict,
            reasons,
            resolutions,
            addresses,
        });
    }
    document(
        policy,
        settings,
        geo,
        started_at,
        (planned, distinct.len()),
        integrity,
        endpoints,
    )
}

/// The survey of this run's vantage point: the policy's canaries (or defaults it does not use),
/// its TCP probe port, its trace and DNS settings and its resolvers. `None` when probing is off.
fn survey_plan(policy: &Policy, settings: &CheckSettings) -> Option<SurveyPlan> {
    if !policy.trace.enabled {
        return None;
    }
    let mut used: Vec<IpNetwork> = policy.client_subnets.clone();
    used.extend(settings.resolvers.iter().map(|r| IpNetwork::from(r.ip())));
    used.extend(policy.endpoints.iter().filter_map(|e| match &e.target {
        Target::Ip(ip) => Some(IpNetwork::from(*ip)),
        Target::Host(_) => None,
    }));
    Some(SurveyPlan {
        canaries: integrity::choose_canaries(policy.canaries.as_deref(), &used),
        tcp_ports: vec![policy.trace.settings.port],
        trace: policy.trace.settings,
        dns: settings.dns,
        resolvers: settings.resolvers.clone(),
    })
}

/// Where each address of an endpoint was seen, in the order first seen.
fn sightings(target: &Target, resolutions: &[Resolution]) -> Vec<(IpAddr, Sighting)> {
    let mut seen: BTreeMap<IpAddr, Sighting> = BTreeMap::new();
    if let Target::Ip(ip) = target {
        seen.insert(*ip, Sighting::default());
    }
    // Untrusted answers stay in the document but none of their addresses is judged.
    for (order, r) in resolutions.iter().enumerate().filter(|(_, r)| r.trusted()) {
        let via = match r.client_subnet {
            Some(net) => format!("{} ecs={net}", r.resolver),
            None => r.resolver.clone(),
        };
        for ip in &r.addresses {
            let sighting = seen.entry(*ip).or_insert_with(|| Sighting {
                first: order,
                ..Sighting::default()
            });
            sighting.count += 1;
            sighting.via.insert(via.clone());
        }
    }
    let mut ordered: Vec<(IpAddr, Sighting)> = seen.into_iter().collect();
    ordered.sort_by_key(|(ip, s)| (s.first, *ip));
    ordered
}

/// Judges one address's measured facts: claims and physics, then transit, reachability and
/// the policy's demand on evidence strength.
fn judge_facts(
    ip: IpAddr,
    facts: &AddressEvidence,
    rules: &Rules<'_>,
    policy: &Policy,
) -> (crate::judge::verdict::AddressJudgement, Fused) {
    let last_hop = facts.path.as_ref().and_then(|p| {
        // The router before the target: the last hop that answered and is not the target.
        let hop = p
            .hops
            .iter()
            .rev()
            .find(|h| h.hop.addr.is_some_and(|a| a != ip))?;
        Some(LastHop {
            country: hop.country?,
            label: format!(
                "path: hop {} ({}) before it",
                hop.hop.ttl,
                hop.hop.addr.map(|a| a.to_string()).unwrap_or_default()
            ),
        })
    });
    let fused = fuse(&facts.evidence, facts.reach.as_ref(), last_hop.as_ref());
    let mut judgement = judge_address(ip, &fused, rules);
    // Weak evidence cannot carry a verdict either way, so this replaces rather than folds.
    if let Some((verdict, reasons)) =
        require_confidence(&fused, judgement.verdict, policy.min_confidence)
    {
        judgement.verdict = verdict;
        judgement.reasons.extend(reasons);
    }
    let Some(path) = &facts.path else {
        return (judgement, fused);
    };
    let hops = located_hops(path);
    let traced = path.status == TraceStatus::Measured;
    let rtt_measured = facts.rtt.as_ref().is_some_and(|r| r.min_rtt_ms.is_some());
    let shook = facts
        .rtt
        .iter()
        .flat_map(|r| &r.samples)
        .any(|s| s.method != "trace" && s.sent > 0);
    let probes: Vec<&str> = [(traced, "traceroute"), (shook, "TCP connect")]
        .into_iter()
        .filter_map(|(sent, name)| sent.then_some(name))
        .collect();
    let mut judgement = fold(
        judgement,
        [
            judge_transit(&policy.transit_deny, path.not_measured(), &hops),
            judge_reachability(ip, &probes, path.reached_trusted(), rtt_measured),
        ],
    );
    // Every discarded reply is named, with the rule and the numbers.
    judgement.reasons.extend(
        facts
            .rtt
            .iter()
            .flat_map(|r| &r.samples)
            .filter_map(|s| s.untrusted.as_ref())
            .map(|why| format!("discarded for physics: {why}")),
    );
    (judgement, fused)
}

/// A path's hops as the transit rule reads them: each with its country and the sources that
/// placed it there.
pub fn located_hops(path: &PathEvidence) -> Vec<LocatedHop> {
    path.hops
        .iter()
        .map(|h| LocatedHop {
            ttl: h.hop.ttl,
            addr: h.hop.addr,
            country: h.country,
            sources: h
                .evidence
                .iter()
                .filter(|e| e.refuted.is_none() && e.country == h.country)
                .map(|e| e.source.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// `require.min_confidence`: a verdict resting on weaker evidence is not a verdict.
pub fn require_confidence(
    fused: &Fused,
    verdict: Verdict,
    min: Confidence,
) -> Option<(Verdict, Vec<String>)> {
    (verdict != Verdict::Inconclusive && fused.confidence < min).then(|| {
        (
            Verdict::Inconclusive,
            vec![format!(
                "the evidence is {} confidence (decided by {}); the policy requires at least {}",
                confidence_word(fused.confidence),
                if fused.decided_by.is_empty() {
                    "nothing".to_string()
                } else {
                    fused.decided_by.join(", ")
                },
                confidence_word(min)
            )],
        )
    })
}

fn confidence_word(c: Confidence) -> &'static str {
    match c {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
    }
}

/// Assembles the run document from the judged endpoints.
fn document(
    policy: &Policy,
    settings: &CheckSettings,
    geo: &Geolocator,
    started_at: DateTime<Utc>,
    (queries, addresses): (usize, usize),
    integrity: Integrity,
    endpoints: Vec<EndpointResult>,
) -> RunDocument {
    let verdict = judge_run(endpoints.iter().map(|e| e.verdict));
    let summary = Summary::of(&endpoints, addresses, queries);
    RunDocument {
        policy: PolicySnapshot {
            id: policy.id.clone(),
            title: policy.title.clone(),
            vendor: policy.vendor.clone(),
            file: policy.source.display().to_string(),
            allow: policy.allow.iter().copied().collect(),
            deny: policy.deny.iter().copied().collect(),
            transit_deny: policy.transit_deny.iter().copied().collect(),
            claims: policy.claims.clone(),
            min_confidence: policy.min_confidence,
        },
        started_at,
        finished_at: Utc::now(),
        verdict,
        tool: ToolInfo::current(),
        resolvers: settings.resolvers.iter().map(ToString::to_string).collect(),
        client_subnets: policy.client_subnets.clone(),
        repeat: policy.repeat,
        vantage: policy.vantage,
        // A remote probe says how its place is known (Globalping's is voted); a declared
        // vantage of this machine is declared.
        measured_from: Some(MeasuredFrom {
            location: settings.measured_from.location.or(policy
                .vantage
                .map(|_| crate::measure::vantage::LocationKind::Declared)),
            ..settings.measured_from.clone()
        }),
        trace: policy.trace.enabled.then_some(policy.trace.settings),
        sources: geo.source_names().into_iter().map(str::to_string).collect(),
        integrity: Some(integrity),
        summary,
        capture: settings.capture.as_ref().map(|t| t.section(&endpoints)),
        endpoints,
        window: None,
        vantages: Vec::new(),
    }
}
