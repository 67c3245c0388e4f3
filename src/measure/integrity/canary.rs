//! Canaries: probes to addresses where nothing can answer, once per run and per method.
//!
//! Owns sending them with the real probes the run itself uses (the TCP connect timer, the DNS
//! resolver, trippy-core traces), so a middlebox that fools the run fools the canary the same
//! way, and tracing each resolver's own address for the DNS provenance check. Everything runs
//! at once; a survey costs about one `round_timeout` or one DNS timeout, whichever is longer.

use std::net::{IpAddr, SocketAddr};

use futures_util::future::join_all;

use super::consistency::{last_router, path_floor};
use super::{
    CANARY_NAME, CanaryAnswer, Integrity, MethodStatus, PathFloor, ResolverPath, Survey, SurveyPlan,
};
use crate::measure::resolve::{
    DnsResolver, Outcome, Query, RecordType, ResolveSettings, Transport,
};
use crate::measure::trace::{
    PRIVILEGE_HINT, Protocol, Trace, TracePath, TraceSettings, TrippyTracer, check_privilege,
    tcp_connect_rtt,
};

/// The real survey: canaries probed with the run's own probes, resolvers traced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Canaries;

impl super::Surveyor for Canaries {
    async fn survey(&self, plan: &SurveyPlan) -> Survey {
        survey(plan).await
    }

    fn watch(&self) -> Option<super::TtlWatcher> {
        super::TtlWatcher::start().ok()
    }
}

/// One probe's outcome: what was sent, and the answer if any came.
type Probed = (String, Option<CanaryAnswer>);

/// Probes every canary by every method, and traces every resolver's address. Never fails:
/// what could not be probed is `untested`, with why.
pub async fn survey(plan: &SurveyPlan) -> Survey {
    if plan.canaries.is_empty() {
        let mut survey = Survey::skipped(
            "no canaries configured (policy `integrity: { canaries: [] }`): interception was not looked for",
        );
        survey.resolver_paths = trace_resolvers(plan).await;
        return survey;
    }
    let privileged = check_privilege().map_err(|e| e.to_string());
    let (tcp, dns, traced, resolver_paths) = tokio::join!(
        tcp_canaries(plan),
        dns_canaries(plan),
        trace_canaries(plan, privileged.clone()),
        trace_resolvers(plan)
    );
    let (icmp, tcp_traced) = traced;
    let mut tcp_all = tcp;
    tcp_all.extend(tcp_traced);
    let icmp = match icmp {
        Ok(probes) => MethodStatus::from_probes(probes),
        Err(reason) => MethodStatus::Untested { reason },
    };
    let mut integrity = Integrity {
        canaries: plan.canaries.clone(),
        tcp: MethodStatus::from_probes(tcp_all),
        dns: MethodStatus::from_probes(dns),
        icmp,
        resolvers: Vec::new(),
    };
    if plan.tcp_ports.is_empty() {
        integrity.tcp = MethodStatus::Untested {
            reason: "the run makes no TCP probes".to_string(),
        };
    }
    Survey::found(integrity, resolver_paths)
}

/// A TCP connect to every canary on every port the run probes. A handshake (SYN-ACK) or a
/// reset are both answers: nothing at a canary may send either.
async fn tcp_canaries(plan: &SurveyPlan) -> Vec<Probed> {
    let timeout = plan.trace.round_timeout;
    let probes = plan.canaries.iter().flat_map(|canary| {
        plan.tcp_ports.iter().map(move |port| async move {
            let target = SocketAddr::new(*canary, *port);
            let sample = tcp_connect_rtt(target, 1, timeout).await;
            let probe = format!("tcp connect {target}");
            let answer = (sample.received > 0).then(|| CanaryAnswer {
                probe: probe.clone(),
                canary: *canary,
                answer: "a TCP handshake or reset for the canary's address".to_string(),
                rtt_ms: sample.min_rtt_ms,
            });
            (probe, answer)
        })
    });
    join_all(probes).await
}

/// A DNS query over UDP and over TCP to port 53 of every canary. Any response is an answer;
/// its rcode and NSID say who answered.
async fn dns_canaries(plan: &SurveyPlan) -> Vec<Probed> {
    let resolver = DnsResolver::new(ResolveSettings {
        timeout: plan.dns.timeout,
        tries: 1,
    });
    let probes = plan.canaries.iter().flat_map(|canary| {
        [Transport::Udp, Transport::Tcp].map(|transport| async move {
            let server = SocketAddr::new(*canary, 53);
            let query = Query {
                host: CANARY_NAME.to_string(),
                record_type: RecordType::A,
                resolver: server,
                client_subnet: None,
                attempt: 1,
            };
            let r = resolver.resolve_over(&query, transport).await;
            let name = match transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            };
            let probe = format!("dns {name} {server} ({CANARY_NAME} A)");
            let answered = !matches!(r.outcome, Outcome::Timeout | Outcome::Error);
            let answer = answered.then(|| CanaryAnswer {
                probe: probe.clone(),
                canary: *canary,
                answer: format!(
                    "{}{}{}",
                    r.rcode.as_deref().unwrap_or("a response"),
                    r.nsid
                        .as_ref()
                        .map(|n| format!(", NSID {n}"))
                        .unwrap_or_default(),
                    if r.addresses.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", addresses {}",
                            r.addresses
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    }
                ),
                rtt_ms: r.rtt_ms,
            });
            (probe, answer)
        })
    });
    join_all(probes).await
}

/// An ICMP echo (trippy's ICMP trace, one round) to every canary, and a traceroute-style probe
/// with the run's own protocol when that is UDP (answered by ICMP) or TCP (answered by a
/// handshake). Returns the ICMP method's probes (or why it is untested) and TCP traces' probes.
async fn trace_canaries(
    plan: &SurveyPlan,
    privileged: Result<(), String>,
) -> (Result<Vec<Probed>, String>, Vec<Probed>) {
    if let Err(why) = privileged {
        return (
            Err(format!(
                "ICMP canaries need raw sockets ({why}); {PRIVILEGE_HINT}"
            )),
            Vec::new(),
        );
    }
    let one_round = |protocol: Protocol| TraceSettings {
        protocol,
        rounds: 1,
        ..plan.trace
    };
    let echo = TrippyTracer::new(one_round(Protocol::Icmp));
    let own = (plan.trace.protocol != Protocol::Icmp)
        .then(|| TrippyTracer::new(one_round(plan.trace.protocol)));
    let echoes = join_all(
        plan.canaries
            .iter()
            .map(|c| canary_trace(&echo, *c, "icmp echo")),
    );
    let owns = async {
        match &own {
            Some(tracer) => {
                let what = format!("{} traceroute probe", plan.trace.protocol);
                join_all(
                    plan.canaries
                        .iter()
                        .map(|c| canary_trace(tracer, *c, &what)),
                )
                .await
            }
            None => Vec::new(),
        }
    };
    let (mut icmp, owns) = tokio::join!(echoes, owns);
    match plan.trace.protocol {
        Protocol::Udp => {
            icmp.extend(owns);
            (Ok(icmp), Vec::new())
        }
        _ => (Ok(icmp), owns),
    }
}

/// Traces one canary; reaching it is an answer.
async fn canary_trace(tracer: &TrippyTracer, canary: IpAddr, what: &str) -> Probed {
    let path = tracer.trace(canary).await;
    let probe = format!("{what} to {canary}");
    let answer = path.reached.then(|| {
        let hop = path.hops.last();
        CanaryAnswer {
            probe: probe.clone(),
            canary,
            answer: format!(
                "a reply from {} at TTL {}",
                hop.and_then(|h| h.addr)
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| canary.to_string()),
                hop.map(|h| h.ttl).unwrap_or(0)
            ),
            rtt_ms: hop.and_then(|h| h.best_rtt_ms),
        }
    });
    (probe, answer)
}

/// The path floor of every resolver's address: its own echo reply when it answered, else the
/// slowest router before it.
async fn trace_resolvers(plan: &SurveyPlan) -> Vec<ResolverPath> {
    if plan.resolvers.is_empty() {
        return Vec::new();
    }
    let tracer = TrippyTracer::new(TraceSettings {
        protocol: Protocol::Icmp,
        rounds: plan.trace.rounds.clamp(1, 3),
        ..plan.trace
    });
    if let Err(err) = tracer.privilege() {
        return plan
            .resolvers
            .iter()
            .map(|r| ResolverPath::untraced(*r, err))
            .collect();
    }
    let mut ips: Vec<IpAddr> = plan.resolvers.iter().map(SocketAddr::ip).collect();
    ips.sort();
    ips.dedup();
    let paths: Vec<TracePath> = join_all(ips.iter().map(|ip| tracer.trace(*ip))).await;
    plan.resolvers
        .iter()
        .map(|server| ResolverPath::traced(*server, paths.iter().find(|p| p.target == server.ip())))
        .collect()
}

impl ResolverPath {
    /// What the ICMP trace `path` of resolver `server`'s address says about reaching it
    /// (`None`: it was not traced).
    pub fn traced(server: SocketAddr, path: Option<&TracePath>) -> ResolverPath {
        ResolverPath {
            resolver: server,
            floor: path
                .ok_or_else(|| "not traced".to_string())
                .and_then(floor_of),
            last_router: path.and_then(|p| last_router(p.target, &p.hops)),
        }
    }

    /// Resolver `server`'s address could not be traced at all, for `why` (no privilege).
    pub fn untraced(server: SocketAddr, why: impl std::fmt::Display) -> ResolverPath {
        ResolverPath {
            resolver: server,
            floor: Err(format!("the path to the resolver was not traced: {why}")),
            last_router: None,
        }
    }
}

/// The least RTT a traced path allows to its target.
fn floor_of(path: &TracePath) -> Result<PathFloor, String> {
    let own = path.target_rtt().min_rtt_ms.map(|rtt| PathFloor {
        rtt_ms: rtt,
        from: format!("the echo reply of {}", path.target),
    });
    let routers = path_floor(path.target, &path.hops);
    match (own, routers) {
        (Some(own), Some(r)) if r.rtt_ms > own.rtt_ms => Ok(r),
        (Some(own), _) => Ok(own),
        (None, Some(r)) => Ok(r),
        (None, None) => Err(format!(
            "nothing on the path to {} answered a traceroute, so it cannot be timed",
            path.target
        )),
    }
}
