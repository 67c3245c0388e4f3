//! The fast tier: a simulated network, read from a scenario file (`tests/scenarios/*.yaml`),
//! that stands in for the instruments of a check, so verdict rules run in milliseconds on any
//! machine, without root, knotd or a network namespace.
//!
//! A scenario describes the *world*, not the verdict: what each name resolves to, what a trace
//! of each address shows, which addresses answer a TCP handshake and how fast, what each
//! geolocation database says, and what in the network intercepts. The fakes here only play
//! that world back through the pipeline's own traits ([`Resolve`], [`Trace`], [`Surveyor`],
//! [`Locate`]); everything after the measurement (integrity rules, physics, fusion, judging) is
//! the real code. A middlebox is modelled once and every instrument meets it: a transparent TCP
//! proxy answers the run's handshakes *and* the canaries', as it would on a real network.
//!
//! The real-lab tests (knotd, namespaces, trippy) stay the second tier: a scenario names the
//! lab test it mirrors in its `about`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnetwork::IpNetwork;
use residency::check::{CheckSettings, Instruments};
use residency::measure::integrity::{
    CanaryAnswer, Integrity, MethodStatus, ResolverPath, Survey, SurveyPlan, Surveyor, TtlWatcher,
};
use residency::measure::resolve::{
    CnameLink, Outcome, Query, RecordType, Resolution, Resolve, Transport,
};
use residency::measure::trace::{
    Hop, PRIVILEGE_HINT, Protocol, RttSample, Trace, TracePath, TraceSettings, TraceStatus,
};
use residency::model::{Confidence, Coordinates, CountryCode, Evidence, SourceKind};
use residency::policy::Policy;
use residency::record::RunDocument;
use residency::sources::geo::{Geolocator, Locate};
use serde::Deserialize;

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Which situation this is and which real-lab test covers it too.
    pub about: String,
    /// The policy, as a user would write it (parsed by the real parser).
    pub policy: String,
    #[serde(default)]
    pub world: World,
    /// Several vantage points, each with its own world: the runs are then combined
    /// (`residency combine`) and `expect` is about the combined run.
    #[serde(default)]
    pub vantages: Vec<VantageScenario>,
    pub expect: Expect,
}

/// One vantage point of a combined scenario: where it is, what it sees, and what its own run
/// must conclude.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VantageScenario {
    pub label: String,
    pub vantage: residency::sources::physics::Vantage,
    #[serde(default)]
    pub world: World,
    /// The verdict of this vantage's run alone.
    pub alone: String,
}

/// The simulated network and databases.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    #[serde(default)]
    pub dns: Vec<DnsRecord>,
    /// Resolvers that never answer.
    #[serde(default)]
    pub silent: Vec<SocketAddr>,
    /// RTT of every DNS answer that does not give its own.
    #[serde(default)]
    pub dns_rtt_ms: Option<f64>,
    /// Reverse names per address.
    #[serde(default)]
    pub ptr: BTreeMap<IpAddr, Vec<String>>,
    /// The path a trace of each address shows; an address not listed shows nothing.
    #[serde(default)]
    pub traces: BTreeMap<IpAddr, TraceRecord>,
    /// Addresses that complete a TCP handshake, and how fast.
    #[serde(default)]
    pub handshakes: BTreeMap<IpAddr, HandshakeRecord>,
    /// The checker has no raw-socket privilege: nothing can be traced.
    #[serde(default)]
    pub unprivileged: bool,
    #[serde(default)]
    pub databases: Vec<Database>,
    /// What in the network answers in the targets' place.
    #[serde(default)]
    pub intercept: Intercept,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    pub host: String,
    #[serde(default = "a", rename = "type")]
    pub record_type: RecordType,
    /// Answered only to queries with this client subnet (ECS); otherwise to any query.
    #[serde(default)]
    pub subnet: Option<IpNetwork>,
    /// How the query ends; `answer` (with addresses) or `no_data` (without) by default.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub cname: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

fn a() -> RecordType {
    RecordType::A
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    /// Hop by hop from TTL 1; `addr: null` is a hop that did not answer.
    pub hops: Vec<HopRecord>,
    /// Whether the last hop is the target answering.
    #[serde(default)]
    pub reached: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopRecord {
    pub addr: Option<IpAddr>,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeRecord {
    pub rtt_ms: f64,
    /// The IP TTL the SYN-ACK arrived with, where the run watched it.
    #[serde(default)]
    pub reply_ttl: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    /// Prefix to what the database says; the longest matching prefix answers.
    pub records: BTreeMap<IpNetwork, GeoRecord>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GeoRecord {
    Country(CountryCode),
    Place {
        country: CountryCode,
        #[serde(default)]
        city: Option<String>,
        #[serde(default)]
        lat: Option<f64>,
        #[serde(default)]
        lon: Option<f64>,
        #[serde(default)]
        accuracy_km: Option<u32>,
    },
}

/// Middleboxes. Each answers for every address, so the canaries meet it too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intercept {
    /// A transparent proxy completing every TCP handshake itself.
    #[serde(default)]
    pub tcp: Option<HandshakeRecord>,
    /// Something answering every DNS query itself (with these addresses, if given, else
    /// the true ones), wherever it was sent.
    #[serde(default)]
    pub dns: Option<DnsIntercept>,
    /// Something answering every ICMP echo itself, as the target.
    #[serde(default)]
    pub icmp: Option<HandshakeRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsIntercept {
    pub rtt_ms: f64,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// What the run document must show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub verdict: String,
    #[serde(default)]
    pub endpoints: Vec<ExpectEndpoint>,
    /// Method (`tcp`, `dns`, `icmp`) to status (`clean`, `intercepted`, `untested`).
    #[serde(default)]
    pub integrity: BTreeMap<String, String>,
    /// Status of each resolver's provenance check, in order.
    #[serde(default)]
    pub resolvers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEndpoint {
    pub host: String,
    pub verdict: String,
    /// Each must be part of one of the endpoint's reasons.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Addresses judged, exactly these when given.
    #[serde(default)]
    pub ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub addresses: Vec<ExpectAddress>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectAddress {
    pub ip: IpAddr,
    pub verdict: String,
    /// The country it was placed in; `null` for none.
    #[serde(default)]
    pub country: Option<Option<CountryCode>>,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Each must be part of none of the address's reasons.
    #[serde(default)]
    pub not_reasons: Vec<String>,
    /// Countries whose claims physics refuted, exactly.
    #[serde(default)]
    pub refuted: Option<Vec<CountryCode>>,
    /// RTT sample methods discarded as not the address's own, exactly.
    #[serde(default)]
    pub untrusted: Option<Vec<String>>,
    /// Combined runs: whether it is anycast, how many sites, where the disks overlap, and
    /// what each must be part of one of `decided_by`.
    #[serde(default)]
    pub anycast: Option<bool>,
    #[serde(default)]
    pub sites: Option<Vec<Option<CountryCode>>>,
    #[serde(default)]
    pub intersection: Option<Vec<CountryCode>>,
    #[serde(default)]
    pub decided_by: Vec<String>,
    /// Combined runs: per vantage label, the site numbers (from 1) its traffic may reach.
    #[serde(default)]
    pub catchments: BTreeMap<String, Vec<usize>>,
}

/// A scenario file read and its policy parsed; errors name the file.
pub fn load(path: &Path) -> Result<(Scenario, Policy), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let scenario: Scenario =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let policy = residency::policy::parse(&scenario.policy, path)
        .map_err(|e| format!("{}: its policy: {e}", path.display()))?;
    Ok((scenario, policy))
}

/// Runs the real `check` pipeline in `world`; never touches the network.
pub fn check(world: &Arc<World>, policy: &Policy) -> Result<RunDocument, String> {
    check_from(world, policy, "test")
}

/// [`check`], recorded as measured from the vantage labelled `label`.
pub fn check_from(world: &Arc<World>, policy: &Policy, label: &str) -> Result<RunDocument, String> {
    let resolvers = policy
        .resolvers
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or("the scenario's policy must list its resolvers (the fakes answer for them)")?;
    let settings = CheckSettings {
        resolvers,
        concurrency: 8,
        trace_concurrency: 8,
        dns: policy.dns,
        capture: None,
        measured_from: residency::measure::vantage::MeasuredFrom::local(Some(label)),
    };
    let trace = policy.trace.settings;
    let instruments = Instruments {
        resolver: Arc::new(FakeResolver(Arc::clone(world))),
        tracer: Some(Arc::new(FakeTracer {
            world: Arc::clone(world),
            settings: trace,
        })),
        surveyor: FakeSurveyor(Arc::clone(world)),
        registry: None,
    };
    let geo = Geolocator::new(
        world
            .databases
            .iter()
            .map(|d| Box::new(FakeDatabase(d.clone())) as Box<dyn Locate>)
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let progress = indicatif::ProgressBar::hidden();
    Ok(runtime.block_on(residency::check::check_policy(
        policy,
        &settings,
        instruments,
        &geo,
        &progress,
    )))
}

fn normal(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Answers from the world's records, or the DNS interceptor's.
pub struct FakeResolver(pub Arc<World>);

impl Resolve for FakeResolver {
    async fn resolve(&self, query: &Query) -> Resolution {
        let world = &self.0;
        let mut r = Resolution::unanswered(query);
        if world.silent.contains(&query.resolver) {
            r.outcome = Outcome::Timeout;
            r.error = Some(format!("no answer from {} (scenario)", query.resolver));
            return r;
        }
        r.rcode = Some("NOERROR".into());
        r.transport = Some(Transport::Udp);
        r.ttl = Some(300);
        r.rtt_ms = Some(world.dns_rtt_ms.unwrap_or(1.0));
        if query.record_type == RecordType::Ptr {
            let names = query
                .host
                .parse::<IpAddr>()
                .ok()
                .and_then(|ip| world.ptr.get(&ip));
            match names {
                Some(names) => {
                    r.outcome = Outcome::Answer;
                    r.names = names.iter().map(|n| normal(n)).collect();
                }
                None => {
                    r.outcome = Outcome::NxDomain;
                    r.rcode = Some("NXDOMAIN".into());
                }
            }
            return r;
        }
        let host = normal(&query.host);
        let of_host: Vec<&DnsRecord> = world
            .dns
            .iter()
            .filter(|d| normal(&d.host) == host)
            .collect();
        let found = of_host.iter().find(|d| {
            d.record_type == query.record_type
                && d.subnet.is_none_or(|s| query.client_subnet == Some(s))
        });
        if let Some(hijack) = &world.intercept.dns {
            r.rtt_ms = Some(hijack.rtt_ms);
            if !hijack.addresses.is_empty() {
                let family = |ip: &&IpAddr| match query.record_type {
                    RecordType::Aaaa => ip.is_ipv6(),
                    _ => ip.is_ipv4(),
                };
                r.addresses = hijack.addresses.iter().filter(family).copied().collect();
                r.outcome = if r.addresses.is_empty() {
                    Outcome::NoData
                } else {
                    Outcome::Answer
                };
                return r;
            }
        }
        let Some(record) = found else {
            // A name the world knows has no record of this type; an unknown name does not exist.
            if of_host.is_empty() {
                r.outcome = Outcome::NxDomain;
                r.rcode = Some("NXDOMAIN".into());
            } else {
                r.outcome = Outcome::NoData;
            }
            return r;
        };
        if world.intercept.dns.is_none()
            && let Some(rtt) = record.rtt_ms
        {
            r.rtt_ms = Some(rtt);
        }
        r.scope_prefix = query.client_subnet.and(record.subnet).map(|s| s.prefix());
        let mut name = host.clone();
        for target in &record.cname {
            r.cname_chain.push(CnameLink {
                name: name.clone(),
                target: normal(target),
                ttl: 300,
            });
            name = normal(target);
        }
        r.addresses = record.addresses.clone();
        r.outcome = record.outcome.unwrap_or(if r.addresses.is_empty() {
            Outcome::NoData
        } else {
            Outcome::Answer
        });
        match r.outcome {
            Outcome::Answer | Outcome::NoData => {}
            Outcome::NxDomain => r.rcode = Some("NXDOMAIN".into()),
            Outcome::ServFail => r.rcode = Some("SERVFAIL".into()),
            Outcome::Refused => r.rcode = Some("REFUSED".into()),
            Outcome::Timeout | Outcome::Error | Outcome::OtherRcode => {
                r.rcode = None;
                r.rtt_ms = None;
                r.transport = None;
                r.error = Some("no answer (scenario)".into());
            }
        }
        if r.outcome != Outcome::Answer {
            r.addresses.clear();
        }
        r
    }
}

/// Plays back the world's traces and handshakes.
pub struct FakeTracer {
    pub world: Arc<World>,
    pub settings: TraceSettings,
}

fn traced(world: &World, target: IpAddr, settings: &TraceSettings) -> TracePath {
    let port = match settings.protocol {
        Protocol::Icmp => None,
        Protocol::Udp | Protocol::Tcp => Some(settings.port),
    };
    if world.unprivileged {
        return TracePath {
            target,
            protocol: settings.protocol,
            port,
            status: TraceStatus::NotMeasured(PRIVILEGE_HINT.to_string()),
            reached: false,
            hops: Vec::new(),
        };
    }
    let rounds = settings.rounds;
    let hop = |ttl: usize, addr: Option<IpAddr>, rtt: Option<f64>| Hop {
        ttl: u8::try_from(ttl + 1).unwrap_or(u8::MAX),
        addr,
        other_addrs: Vec::new(),
        sent: rounds,
        received: if addr.is_some() { rounds } else { 0 },
        best_rtt_ms: addr.and(rtt),
        avg_rtt_ms: addr.and(rtt),
    };
    let (mut hops, mut reached) = match world.traces.get(&target) {
        Some(t) => (
            t.hops
                .iter()
                .enumerate()
                .map(|(i, h)| hop(i, h.addr, h.rtt_ms))
                .collect::<Vec<_>>(),
            t.reached,
        ),
        None => (Vec::new(), false),
    };
    // An ICMP responder answers the echo in the target's place, sooner than any router.
    if settings.protocol == Protocol::Icmp
        && let Some(responder) = &world.intercept.icmp
    {
        if reached {
            hops.pop();
        }
        hops.push(hop(hops.len(), Some(target), Some(responder.rtt_ms)));
        reached = true;
    }
    TracePath {
        target,
        protocol: settings.protocol,
        port,
        status: TraceStatus::Measured,
        reached,
        hops,
    }
}

fn handshake(world: &World, target: SocketAddr, probes: u32) -> RttSample {
    let answer = world
        .intercept
        .tcp
        .as_ref()
        .or_else(|| world.handshakes.get(&target.ip()));
    RttSample {
        method: format!("tcp_connect:{}", target.port()),
        sent: probes,
        received: if answer.is_some() { probes } else { 0 },
        min_rtt_ms: answer.map(|a| a.rtt_ms),
        untrusted: None,
        reply_ttl: answer.and_then(|a| a.reply_ttl),
        hops_away: None,
    }
}

impl Trace for FakeTracer {
    async fn trace(&self, target: IpAddr) -> TracePath {
        traced(&self.world, target, &self.settings)
    }

    async fn handshake(&self, target: SocketAddr, probes: u32, _timeout: Duration) -> RttSample {
        handshake(&self.world, target, probes)
    }
}

/// Sends the canaries into the world: whatever intercepts there answers them.
pub struct FakeSurveyor(pub Arc<World>);

impl Surveyor for FakeSurveyor {
    async fn survey(&self, plan: &SurveyPlan) -> Survey {
        let world = &self.0;
        let icmp_trace = TraceSettings {
            protocol: Protocol::Icmp,
            ..plan.trace
        };
        let resolver_paths: Vec<ResolverPath> = plan
            .resolvers
            .iter()
            .map(|server| {
                if world.unprivileged {
                    return ResolverPath::untraced(*server, PRIVILEGE_HINT);
                }
                let path = traced(world, server.ip(), &icmp_trace);
                ResolverPath::traced(*server, Some(&path))
            })
            .collect();
        if plan.canaries.is_empty() {
            let mut survey = Survey::skipped("no canaries configured (scenario)");
            survey.resolver_paths = resolver_paths;
            return survey;
        }
        let status = MethodStatus::from_probes;
        let tcp = status(
            plan.canaries
                .iter()
                .flat_map(|c| plan.tcp_ports.iter().map(move |p| SocketAddr::new(*c, *p)))
                .map(|target| {
                    let probe = format!("tcp connect {target}");
                    let sample = handshake(world, target, 1);
                    let answer = sample.min_rtt_ms.map(|rtt| CanaryAnswer {
                        probe: probe.clone(),
                        canary: target.ip(),
                        answer: "handshake completed".into(),
                        rtt_ms: Some(rtt),
                    });
                    (probe, answer)
                })
                .collect(),
        );
        let dns = status(
            plan.canaries
                .iter()
                .map(|c| {
                    let probe = format!("dns udp {}", SocketAddr::new(*c, 53));
                    let answer = world.intercept.dns.as_ref().map(|d| CanaryAnswer {
                        probe: probe.clone(),
                        canary: *c,
                        answer: "NOERROR".into(),
                        rtt_ms: Some(d.rtt_ms),
                    });
                    (probe, answer)
                })
                .collect(),
        );
        let icmp = if world.unprivileged {
            MethodStatus::Untested {
                reason: PRIVILEGE_HINT.to_string(),
            }
        } else {
            status(
                plan.canaries
                    .iter()
                    .map(|c| {
                        let probe = format!("icmp echo {c}");
                        let path = traced(world, *c, &icmp_trace);
                        let answer = path.target_rtt().min_rtt_ms.map(|rtt| CanaryAnswer {
                            probe: probe.clone(),
                            canary: *c,
                            answer: "echo reply".into(),
                            rtt_ms: Some(rtt),
                        });
                        (probe, answer)
                    })
                    .collect(),
            )
        };
        Survey::found(
            Integrity {
                canaries: plan.canaries.clone(),
                tcp,
                dns,
                icmp,
                resolvers: Vec::new(),
            },
            resolver_paths,
        )
    }

    fn watch(&self) -> Option<TtlWatcher> {
        // Reply TTLs are part of the world (`reply_ttl`), not watched on a socket.
        None
    }
}

/// A geolocation database answering from the world's records.
pub struct FakeDatabase(pub Database);

impl Locate for FakeDatabase {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn locate(&self, ip: IpAddr) -> Evidence {
        let name = &self.0.name;
        let found = self
            .0
            .records
            .iter()
            .filter(|(net, _)| net.contains(ip))
            .max_by_key(|(net, _)| net.prefix())
            .map(|(_, r)| r);
        let mut evidence = Evidence {
            source: name.clone(),
            kind: SourceKind::GeoDatabase,
            country: None,
            confidence: Confidence::Low,
            detail: format!("{name}: no record for {ip}"),
            city: None,
            coordinates: None,
            refuted: None,
        };
        match found {
            None => {}
            Some(GeoRecord::Country(country)) => {
                evidence.country = Some(*country);
                evidence.detail = format!("{name}: {country}");
            }
            Some(GeoRecord::Place {
                country,
                city,
                lat,
                lon,
                accuracy_km,
            }) => {
                evidence.country = Some(*country);
                evidence.city = city.clone();
                evidence.coordinates = lat.zip(*lon).map(|(latitude, longitude)| Coordinates {
                    latitude,
                    longitude,
                    accuracy_km: *accuracy_km,
                });
                // As the real databases: a place, not just a country, is a medium claim.
                evidence.confidence = Confidence::Medium;
                evidence.detail = format!("{name}: {country}, {}", city.as_deref().unwrap_or("?"));
            }
        }
        evidence
    }
}

/// The scenario files, sorted.
pub fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
