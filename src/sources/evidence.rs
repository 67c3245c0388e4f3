//! Evidence: everything measured about a set of addresses, before any policy is applied.
//!
//! Owns gathering, per address: each database's claim, the traced path with every hop
//! located, the minimum round-trip time, and what physics makes of it (the countries within
//! reach of the vantage point, and which claims it refutes). `check` judges this against a
//! policy; `locate` shows it as it is. Nothing here decides compliance.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::measure::http::{self, HttpProbe, HttpSettings};
use crate::measure::integrity::{Integrity, MethodStatus, TtlWatcher, consistency, ttl};
use crate::measure::resolve::{Outcome, Query, RecordType, Resolve};
use crate::measure::trace::{
    Hop, Protocol, RttSample, Trace, TracePath, TraceSettings, TraceStatus, trace_all,
};
use crate::model::{CountryCode, Evidence, SourceKind};
use crate::sources::cdn;
use crate::sources::declared::geofeed::Geofeed;
use crate::sources::geo::Geolocator;
use crate::sources::physics::{self, ClaimCheck, Countries, Reach, RttBound, Vantage};
use crate::sources::ptr;
use crate::sources::registry::{Registry, RegistryRecord};

/// TCP connects per address when the trace did not reach it (or its method is intercepted): enough to catch the minimum
/// through a little queueing, few enough not to look like a scan.
const TCP_PROBES: u32 = 3;

/// Where to ask for reverse DNS (PTR) names of addresses and hops: a resolver and the server.
pub struct ReverseDns<R> {
    pub resolver: Arc<R>,
    pub server: SocketAddr,
}

/// How to probe. `trace: None` means no active probing at all (no trace, no TCP connect).
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub trace: Option<TraceSettings>,
    /// Where to ask who holds each address (RDAP, WHOIS); `None`: not asked.
    pub registry: Option<Arc<Registry>>,
    /// Most traces (and TCP probes) in flight at once.
    pub concurrency: usize,
    pub vantage: Option<Vantage>,
    /// One HTTPS HEAD per address and name, when probing is on; `None`: none.
    pub http: Option<Arc<HttpPlan>>,
    /// Geofeeds the policy lists, asked for every address: `https://` URLs (fetched with the
    /// registry client, so only when registry lookups are on) or files.
    pub geofeeds: Vec<String>,
}

/// What to ask each address over HTTP(S): the ports, and the names it was resolved for (its
/// SNI and `Host`); an address with no name (a literal endpoint) is asked by address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpPlan {
    pub settings: HttpSettings,
    pub names: HashMap<IpAddr, BTreeSet<String>>,
    /// The name for an address not in `names` (`locate`'s target), if any.
    pub default_name: Option<String>,
}

/// One hop of a path, with what the location sources say about its address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathHop {
    #[serde(flatten)]
    pub hop: Hop,
    /// The hop's reverse DNS names, when it has any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The country the hop's unrefuted evidence agrees on (or physics alone allows).
    pub country: Option<CountryCode>,
    pub evidence: Vec<Evidence>,
}

/// The measured path to an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathEvidence {
    pub protocol: Protocol,
    pub port: Option<u16>,
    #[serde(flatten)]
    pub status: TraceStatus,
    pub reached: bool,
    /// Why the target's own replies in this trace are not counted as the target's (the
    /// method is intercepted, or they came sooner than a router on the path), when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
    pub hops: Vec<PathHop>,
}

impl PathEvidence {
    /// Whether the target itself demonstrably answered the trace.
    pub fn reached_trusted(&self) -> bool {
        self.reached && self.untrusted.is_none()
    }

    /// Why there is no path, if there is none.
    pub fn not_measured(&self) -> Option<&str> {
        match &self.status {
            TraceStatus::Measured => None,
            TraceStatus::NotMeasured(why) => Some(why),
        }
    }
}

/// A country within reach of the vantage point, and how far its nearest point is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reachable {
    pub country: CountryCode,
    pub distance_km: f64,
}

/// Round-trip times to the address and what they physically allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttEvidence {
    pub samples: Vec<RttSample>,
    /// The smallest RTT any probe measured.
    pub min_rtt_ms: Option<f64>,
    pub vantage: Option<Vantage>,
    /// The farthest the address can be from the vantage point (`min_rtt_ms` × 100 km + slack).
    pub max_km: Option<f64>,
    /// Every country with territory within `max_km`, nearest first.
    pub reachable: Vec<Reachable>,
    /// Explanations of every claim physics refutes.
    pub refuted: Vec<String>,
    /// Why physics could not be applied, when it could not.
    pub note: Option<String>,
}

/// Everything measured about one address.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressEvidence {
    /// One entry per location source, claims refuted by physics marked as such.
    pub evidence: Vec<Evidence>,
    /// The address's reverse DNS names (their location hints are in `evidence`).
    pub names: Vec<String>,
    /// The registry record of the address's block, when a registry answered.
    pub registry: Option<RegistryRecord>,
    pub path: Option<PathEvidence>,
    pub rtt: Option<RttEvidence>,
    /// What physics allows, for the verdict.
    pub reach: Option<Reach>,
    /// The HTTP(S) probes of the address: certificate and edge headers.
    pub http: Vec<HttpProbe>,
}

/// Gathers evidence for every address: databases always; trace, RTT and physics when probing is
/// on. Never fails: what could not be measured is recorded as such.
///
/// `integrity` is what the run's canaries found: replies by an intercepted method, and replies
/// sooner than a router on the path, are kept but marked untrusted, and physics ignores them.
pub async fn gather<R: Resolve + 'static, T: Trace + 'static>(
    ips: &[IpAddr],
    geo: &Geolocator,
    reverse: Option<ReverseDns<R>>,
    tracer: Option<Arc<T>>,
    settings: &ProbeSettings,
    integrity: &Integrity,
    ttls: Option<&TtlWatcher>,
) -> BTreeMap<IpAddr, AddressEvidence> {
    let (paths, mut samples) = match (&settings.trace, tracer) {
        (Some(trace), Some(tracer)) => {
            let intercepted = integrity.for_trace(trace.protocol).is_intercepted();
            probe(ips, tracer, trace, settings.concurrency, intercepted).await
        }
        _ => (HashMap::new(), HashMap::new()),
    };
    let mut distrusted: HashMap<IpAddr, String> = HashMap::new();
    let port = settings.trace.map(|t| t.port);
    if let Some(watcher) = ttls {
        watcher.settle();
    }
    for (ip, list) in samples.iter_mut() {
        if let (Some(watcher), Some(port)) = (ttls, port) {
            for s in list
                .iter_mut()
                .filter(|s| s.method != "trace" && s.received > 0)
            {
                s.reply_ttl = watcher.ttls(ttl::Kind::Tcp, *ip, port).into_iter().max();
                s.hops_away = s.reply_ttl.map(ttl::hops_away);
            }
        }
        if let Some(why) = distrust_samples(*ip, paths.get(ip), list, integrity) {
            distrusted.insert(*ip, why);
        }
    }
    // Routers' time-exceeded replies are ICMP: an ICMP responder could fake those too.
    let hop_physics = !integrity.icmp.is_intercepted();
    let (names, ptr_failures) = match reverse {
        Some(reverse) => {
            let mut wanted: Vec<IpAddr> = ips.to_vec();
            wanted.extend(
                paths
                    .values()
                    .flat_map(|p| p.hops.iter().filter_map(|h| h.addr)),
            );
            ptr_names(wanted, reverse, settings.concurrency).await
        }
        None => (HashMap::new(), HashMap::new()),
    };
    let mut registered = match &settings.registry {
        Some(registry) => registry_records(ips, registry, settings.concurrency).await,
        None => HashMap::new(),
    };
    let user_feeds = load_feeds(&settings.geofeeds, settings.registry.as_deref()).await;
    let mut http = match (&settings.http, &settings.trace) {
        (Some(plan), Some(_)) => http_probes(ips, plan, settings.concurrency, integrity).await,
        _ => HashMap::new(),
    };
    let names_of = |ip: &IpAddr| names.get(ip).cloned().unwrap_or_default();
    // Every source that speaks about an address: the databases, then its PTR names' hints.
    // A PTR lookup that failed is recorded as such, not logged: the run says it, once per
    // address, where the evidence is read.
    let locate = |ip: IpAddr| {
        let mut evidence = geo.locate_all(ip);
        evidence.extend(ptr::ptr_evidence(ip, &names_of(&ip)));
        if let Some(why) = ptr_failures.get(&ip) {
            evidence.push(Evidence::unlocated(
                "ptr",
                SourceKind::PtrHint,
                format!("PTR lookup failed: {why}"),
            ));
        }
        evidence
    };
    let mut hop_evidence: HashMap<IpAddr, Vec<Evidence>> = HashMap::new();
    let mut out = BTreeMap::new();
    for ip in ips {
        let mut evidence = locate(*ip);
        let (registry_evidence, registry, feed) = match registered.remove(ip) {
            Some((e, record, feed)) => (Some(e), record, feed),
            None => (None, None, None),
        };
        evidence.extend(registry_evidence);
        evidence.extend(feed);
        for (origin, feed) in &user_feeds {
            evidence.extend(match feed {
                Ok(feed) => feed.evidence(*ip, None),
                Err(reason) => Some(declared_failure(origin, reason)),
            });
        }
        let probes = http.remove(ip).unwrap_or_default();
        for probe in probes.iter().filter(|p| p.failed.is_none()) {
            evidence.extend(cdn::edge_evidence(*ip, probe));
        }
        let path = paths.get(ip).map(|p| {
            let hops = p
                .hops
                .iter()
                .map(|hop| {
                    let mut evidence = hop
                        .addr
                        .map(|a| hop_evidence.entry(a).or_insert_with(|| locate(a)).clone())
                        .unwrap_or_default();
                    let reach = hop.best_rtt_ms.filter(|_| hop_physics).and_then(|rtt| {
                        apply_physics(settings.vantage.as_ref(), rtt, &mut evidence).ok()
                    });
                    PathHop {
                        country: agreed_country(&evidence, reach.as_ref()),
                        names: hop.addr.map(|a| names_of(&a)).unwrap_or_default(),
                        hop: hop.clone(),
                        evidence,
                    }
                })
                .collect();
            PathEvidence {
                protocol: p.protocol,
                port: p.port,
                status: p.status.clone(),
                reached: p.reached,
                untrusted: distrusted.get(ip).filter(|_| p.reached).cloned(),
                hops,
            }
        });
        let (rtt, reach) = match samples.get(ip) {
            Some(samples) => {
                let (rtt, reach) = rtt_evidence(samples.clone(), settings.vantage, &mut evidence);
                (Some(rtt), reach)
            }
            None => (None, None),
        };
        out.insert(
            *ip,
            AddressEvidence {
                evidence,
                names: names_of(ip),
                registry,
                path,
                rtt,
                reach,
                http: probes,
            },
        );
    }
    out
}

/// One HEAD per address, port and name, at most `concurrency` at once. From a vantage whose
/// TCP is intercepted nothing is sent: whatever answered would be the interceptor, so each
/// probe is recorded as not made, with the reason.
async fn http_probes(
    ips: &[IpAddr],
    plan: &Arc<HttpPlan>,
    concurrency: usize,
    integrity: &Integrity,
) -> HashMap<IpAddr, Vec<HttpProbe>> {
    let mut asks: Vec<(IpAddr, u16, Option<String>)> = Vec::new();
    for ip in ips {
        let names: Vec<Option<String>> = match plan.names.get(ip) {
            Some(names) if !names.is_empty() => names.iter().cloned().map(Some).collect(),
            _ => vec![plan.default_name.clone()],
        };
        for port in &plan.settings.ports {
            for name in &names {
                asks.push((*ip, *port, name.clone()));
            }
        }
    }
    let mut out: HashMap<IpAddr, Vec<HttpProbe>> = HashMap::new();
    if let MethodStatus::Intercepted { .. } = &integrity.tcp {
        for (ip, port, name) in asks {
            out.entry(ip).or_default().push(HttpProbe {
                failed: Some(
                    "not probed: TCP from this vantage is intercepted (see integrity), so an \
                     answer would not be the server's"
                        .into(),
                ),
                ..HttpProbe::unanswered(port, name)
            });
        }
        return out;
    }
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, (ip, port, name)) in asks.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let plan = Arc::clone(plan);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (
                i,
                ip,
                http::probe(ip, port, name.as_deref(), &plan.settings).await,
            )
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(result) = joined {
            done.push(result);
        }
    }
    // In the order asked, whatever order they finished in.
    done.sort_by_key(|(i, _, _)| *i);
    for (_, ip, probe) in done {
        out.entry(ip).or_default().push(probe);
    }
    out
}

/// Who holds each address, per the registries (at most `concurrency` lookups at once).
async fn registry_records(
    ips: &[IpAddr],
    registry: &Arc<Registry>,
    concurrency: usize,
) -> HashMap<IpAddr, (Evidence, Option<RegistryRecord>, Option<Evidence>)> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for ip in ips.iter().copied() {
        let registry = Arc::clone(registry);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let (evidence, record) = registry.lookup(ip).await;
            let feed = match &record {
                Some(record) => linked_geofeed(&registry, ip, record).await,
                None => None,
            };
            (ip, (evidence, record, feed))
        });
    }
    let mut out = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((ip, answer)) = joined {
            out.insert(ip, answer);
        }
    }
    out
}

/// The policy's geofeeds, each read or fetched once for the whole run.
async fn load_feeds(
    feeds: &[String],
    registry: Option<&Registry>,
) -> Vec<(String, Result<Arc<Geofeed>, String>)> {
    let mut out = Vec::with_capacity(feeds.len());
    for origin in feeds {
        let feed = if origin.starts_with("https://") || origin.starts_with("http://") {
            match registry {
                Some(registry) => registry.geofeed(origin).await,
                None => Err(
                    "not fetched: registry lookups are off (registry.enabled: false or \
                     --no-registry), and geofeeds are fetched with the registry client"
                        .to_string(),
                ),
            }
        } else {
            match std::fs::read_to_string(origin) {
                Ok(text) => {
                    let when = std::fs::metadata(origin)
                        .and_then(|m| m.modified())
                        .map(|t| format!("file of {}", crate::time::seconds(&t.into())))
                        .ok();
                    Ok(Arc::new(Geofeed::parse(origin, when, &text)))
                }
                Err(e) => Err(format!("cannot read {origin}: {e}")),
            }
        };
        out.push((origin.clone(), feed));
    }
    out
}

fn declared_failure(origin: &str, reason: &str) -> Evidence {
    Evidence::unlocated(
        format!("geofeed:{origin}"),
        SourceKind::OperatorDeclared,
        format!("geofeed {origin} could not be used: {reason}"),
    )
}

/// What the geofeed a registry record links to (RFC 9632) says of `ip`: only rows inside the
/// record's own network count. A feed that cannot be fetched is evidence that says so.
async fn linked_geofeed(
    registry: &Registry,
    ip: IpAddr,
    record: &RegistryRecord,
) -> Option<Evidence> {
    let url = record.geofeed.as_deref()?;
    match registry.geofeed(url).await {
        Ok(feed) => Some(feed.evidence(ip, Some(&record.cidrs)).unwrap_or_else(|| {
            Evidence::unlocated(
                format!("geofeed:{url}"),
                SourceKind::OperatorDeclared,
                format!(
                    "geofeed {url} (linked from {}) lists no prefix holding {ip}",
                    record.url.as_deref().unwrap_or(&record.source)
                ),
            )
        })),
        Err(reason) => Some(declared_failure(url, &reason)),
    }
}

/// Reverse DNS names of every address (one PTR query each, at most `concurrency` at once), and
/// why the lookup failed for the addresses whose lookup did (timeout, SERVFAIL, …).
async fn ptr_names<R: Resolve + 'static>(
    mut ips: Vec<IpAddr>,
    reverse: ReverseDns<R>,
    concurrency: usize,
) -> (HashMap<IpAddr, Vec<String>>, HashMap<IpAddr, String>) {
    ips.sort();
    ips.dedup();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for ip in ips {
        let resolver = Arc::clone(&reverse.resolver);
        let permits = Arc::clone(&permits);
        let query = Query {
            host: ip.to_string(),
            record_type: RecordType::Ptr,
            resolver: reverse.server,
            client_subnet: None,
            attempt: 1,
        };
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let answer = resolver.resolve(&query).await;
            // Not evidence either way: an observation of the run, recorded with the address
            // (a hop without its name loses a hint), never a warning for the user to act on.
            let failed = (!matches!(
                answer.outcome,
                Outcome::Answer | Outcome::NoData | Outcome::NxDomain
            ))
            .then(|| {
                tracing::debug!(%ip, outcome = ?answer.outcome, error = ?answer.error, "PTR lookup failed");
                match (&answer.rcode, &answer.error) {
                    (Some(rcode), _) => format!("{rcode} from {}", answer.resolver),
                    (None, Some(error)) => format!("{error} ({})", answer.resolver),
                    (None, None) => format!("no answer from {}", answer.resolver),
                }
            });
            (ip, answer.names, failed)
        });
    }
    let mut names = HashMap::new();
    let mut failures = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((ip, found, failed)) = joined {
            if !found.is_empty() {
                names.insert(ip, found);
            }
            if let Some(why) = failed {
                failures.insert(ip, why);
            }
        }
    }
    (names, failures)
}

/// Traces every address, then TCP-connects to those the trace did not reach (servers often
/// filter ICMP and UDP but must answer on their service port).
async fn probe<T: Trace + 'static>(
    ips: &[IpAddr],
    tracer: Arc<T>,
    settings: &TraceSettings,
    concurrency: usize,
    trace_intercepted: bool,
) -> (HashMap<IpAddr, TracePath>, HashMap<IpAddr, Vec<RttSample>>) {
    let paths = trace_all(Arc::clone(&tracer), ips.to_vec(), concurrency).await;
    let mut samples: HashMap<IpAddr, Vec<RttSample>> = HashMap::new();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for path in &paths {
        let from_trace = path.target_rtt();
        let pinged = tracer.pings(path.target).await;
        let reached = from_trace.min_rtt_ms.is_some()
            || pinged.as_ref().is_some_and(|p| p.min_rtt_ms.is_some());
        samples.entry(path.target).or_default().push(from_trace);
        samples.entry(path.target).or_default().extend(pinged);
        // Where the trace's own method is intercepted, its replies will not count, so the
        // handshake is the address's only chance of an RTT.
        if !reached || trace_intercepted {
            let target = SocketAddr::new(path.target, settings.port);
            let timeout = settings.round_timeout;
            let permits = Arc::clone(&permits);
            let tracer = Arc::clone(&tracer);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (
                    target.ip(),
                    tracer.handshake(target, TCP_PROBES, timeout).await,
                )
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        // A tracer that cannot make handshakes (measurements made elsewhere) sends none:
        // nothing was measured, so nothing is recorded.
        if let Ok((ip, sample)) = joined
            && sample.sent > 0
        {
            samples.entry(ip).or_default().push(sample);
        }
    }
    let paths = paths.into_iter().map(|p| (p.target, p)).collect();
    (paths, samples)
}

/// Marks the samples of `ip` that did not come from it, and returns why its trace's own
/// replies are untrusted, if they are. Two rules: a method the canaries found intercepted
/// counts for nothing; a reply sooner than a router on the path to `ip` is not `ip`'s.
fn distrust_samples(
    ip: IpAddr,
    path: Option<&TracePath>,
    samples: &mut [RttSample],
    integrity: &Integrity,
) -> Option<String> {
    let floor = path.and_then(|p| consistency::path_floor(ip, &p.hops));
    let router = path.and_then(|p| consistency::last_router(ip, &p.hops));
    let mut trace_untrusted = None;
    for sample in samples.iter_mut() {
        let Some(rtt) = sample.min_rtt_ms else {
            continue;
        };
        let method = if sample.method == "trace" {
            path.map(|p| integrity.for_trace(p.protocol))
        } else {
            Some(&integrity.tcp)
        };
        let why = match method {
            Some(MethodStatus::Intercepted { answers }) => Some(format!(
                "{} is intercepted from this vantage point ({}): its {rtt:.2} ms reply counts for nothing",
                sample.method,
                answers.first().map(ToString::to_string).unwrap_or_default()
            )),
            _ => floor
                .as_ref()
                .and_then(|f| consistency::impossible_reply(ip, &sample.method, rtt, f))
                .or_else(|| {
                    let what = format!("the {} handshake reply", sample.method);
                    sample
                        .reply_ttl
                        .zip(router)
                        .and_then(|(ttl, r)| consistency::too_near(ip, &what, ttl, r))
                }),
        };
        if sample.method == "trace" && why.is_some() {
            trace_untrusted = why.clone();
        }
        sample.untrusted = why;
    }
    trace_untrusted
}

/// Builds the RTT evidence of an address and marks the claims physics refutes. Only trusted
/// samples count: an address whose every sample was discarded is judged as if none was taken.
fn rtt_evidence(
    samples: Vec<RttSample>,
    vantage: Option<Vantage>,
    evidence: &mut [Evidence],
) -> (RttEvidence, Option<Reach>) {
    let min_rtt_ms = samples
        .iter()
        .filter_map(RttSample::trusted_rtt_ms)
        .min_by(|a, b| a.total_cmp(b));
    let discarded = samples
        .iter()
        .filter(|s| s.min_rtt_ms.is_some() && s.untrusted.is_some())
        .count();
    let mut rtt = RttEvidence {
        samples,
        min_rtt_ms,
        vantage,
        max_km: None,
        reachable: Vec::new(),
        refuted: Vec::new(),
        note: None,
    };
    let Some(min) = min_rtt_ms else {
        rtt.note = Some(if discarded > 0 {
            format!(
                "every answered probe ({discarded}) was discarded as untrusted, so there is no round-trip time"
            )
        } else {
            "no probe was answered, so there is no round-trip time".to_string()
        });
        return (rtt, None);
    };
    match apply_physics(vantage.as_ref(), min, evidence) {
        Ok(reach) => {
            rtt.max_km = Some(reach.max_km);
            if let (Some(v), Ok(countries)) = (vantage, Countries::shipped()) {
                rtt.reachable = countries
                    .within(v.point(), reach.max_km)
                    .into_iter()
                    .map(|(country, distance_km)| Reachable {
                        country,
                        distance_km: (distance_km * 10.0).round() / 10.0,
                    })
                    .collect();
            }
            rtt.refuted = evidence.iter().filter_map(|e| e.refuted.clone()).collect();
            (rtt, Some(reach))
        }
        Err(why) => {
            rtt.note = Some(why);
            (rtt, None)
        }
    }
}

/// Checks every claim in `evidence` against the bound `min_rtt_ms` sets from the vantage point,
/// marking refuted ones, and returns what physics allows. Errs (with why) when it cannot apply.
fn apply_physics(
    vantage: Option<&Vantage>,
    min_rtt_ms: f64,
    evidence: &mut [Evidence],
) -> Result<Reach, String> {
    let Some(vantage) = vantage else {
        return Err(
            "no vantage point declared (policy `vantage:` or `--vantage`), so the RTT cannot be turned into a distance"
                .to_string(),
        );
    };
    let countries = Countries::shipped().map_err(|e| e.to_string())?;
    let mut bound = RttBound::from_rtt(min_rtt_ms);
    // A vantage placed by a vote rather than declared may be elsewhere: its bounds grow.
    bound.max_km += vantage.uncertainty_km;
    // A claim refuted already (special-purpose space) keeps the first reason.
    for e in evidence.iter_mut().filter(|e| e.refuted.is_none()) {
        let check = match (&e.coordinates, e.country) {
            (Some(coords), _) => {
                let label = match (&e.city, e.country) {
                    (Some(city), _) => format!("{} says {city}", e.source),
                    (None, Some(c)) => format!("{} says {c}", e.source),
                    (None, None) => format!(
                        "{} says ({}, {})",
                        e.source, coords.latitude, coords.longitude
                    ),
                };
                physics::check_point_claim(vantage, &bound, coords, &label)
            }
            (None, Some(cc)) => countries.check_country_claim(vantage, &bound, cc),
            (None, None) => continue,
        };
        if let ClaimCheck::Refuted { explanation, .. } = check {
            e.refuted = Some(format!("{}: {explanation}", e.source));
        }
    }
    let reachable: BTreeSet<CountryCode> = countries
        .within(vantage.point(), bound.max_km)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    Ok(Reach {
        min_rtt_ms,
        max_km: bound.max_km,
        countries: reachable,
        basis: None,
    })
}

/// The one country unrefuted evidence agrees on, or the only country physics allows.
fn agreed_country(evidence: &[Evidence], reach: Option<&Reach>) -> Option<CountryCode> {
    if let Some(reach) = reach
        && reach.countries.len() == 1
    {
        return reach.countries.iter().next().copied();
    }
    let named: BTreeSet<CountryCode> = evidence
        .iter()
        .filter(|e| e.refuted.is_none())
        .filter_map(|e| e.country)
        .collect();
    (named.len() == 1)
        .then(|| named.into_iter().next())
        .flatten()
}
