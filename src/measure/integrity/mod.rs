//! Integrity of the vantage point: which measurements came from their targets, and which from
//! a network that answers in their place.
//!
//! Owns three defences, all before a measurement may count as evidence:
//! - **canaries** ([`survey`]): once per run, a TCP connect, a DNS query (UDP and TCP) and an
//!   ICMP echo / traceroute-style probe to addresses where nothing can answer. Any answer means
//!   a transparent proxy, a DNS takeover or an ICMP responder sits on the path, and that method
//!   contributes nothing to this run;
//! - **per-target consistency** ([`consistency`]): a reply "from the target" that arrives sooner
//!   than a router on the path to it did not come from the target;
//! - **DNS provenance** ([`Survey::finish`]): every answer's NSID and round-trip time, compared
//!   with the path to the resolver's own address.
//!
//! Nothing here decides compliance: measurements are marked untrusted, with the rule and the
//! numbers, and stay in the run document. `check` judges what is left.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::measure::resolve::{Outcome, Resolution, ResolveSettings};
use crate::measure::trace::{Protocol, TraceSettings};

mod canary;
pub mod consistency;
pub mod ttl;

pub use canary::{Canaries, survey};
pub use ttl::TtlWatcher;

/// Default canaries, in order of preference: the benchmarking range (RFC 2544, never routed on
/// the Internet), the documentation ranges (RFC 5737) and for IPv6 the discard-only prefix
/// (RFC 6666) and the documentation prefix (RFC 3849). The first of each family that the policy
/// does not use is probed.
pub const DEFAULT_CANARIES: [&str; 7] = [
    "198.18.0.1",
    "198.19.255.254",
    "192.0.2.254",
    "198.51.100.254",
    "203.0.113.254",
    "100::1",
    "2001:db8:ffff:ffff::1",
];

/// The question a DNS canary asks. `.invalid` (RFC 6761) exists nowhere, but any response at
/// all, NXDOMAIN included, proves something answered for an address where nothing listens.
pub const CANARY_NAME: &str = "canary.residency.invalid";

/// What one measurement method looks like from this vantage point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MethodStatus {
    /// Every canary of the method went unanswered (what was probed is listed).
    Clean { probes: Vec<String> },
    /// Some canary was answered: the method is intercepted from this vantage.
    Intercepted { answers: Vec<CanaryAnswer> },
    /// Not probed, with why (no privilege, probing off, no canary configured).
    Untested { reason: String },
}

impl MethodStatus {
    /// A method's status from its canary probes (what was sent, and the answer if one came):
    /// clean when nothing answered, intercepted with every answer otherwise.
    pub fn from_probes(probes: Vec<(String, Option<CanaryAnswer>)>) -> MethodStatus {
        let answers: Vec<CanaryAnswer> = probes.iter().filter_map(|(_, a)| a.clone()).collect();
        if answers.is_empty() {
            MethodStatus::Clean {
                probes: probes.into_iter().map(|(p, _)| p).collect(),
            }
        } else {
            MethodStatus::Intercepted { answers }
        }
    }

    pub fn is_intercepted(&self) -> bool {
        matches!(self, MethodStatus::Intercepted { .. })
    }

    pub fn is_clean(&self) -> bool {
        matches!(self, MethodStatus::Clean { .. })
    }

    /// One line: `clean`, `intercepted: ...`, `untested: ...`.
    pub fn summary(&self) -> String {
        match self {
            MethodStatus::Clean { probes } => {
                format!("clean ({} canaries unanswered)", probes.len())
            }
            MethodStatus::Intercepted { answers } => format!(
                "intercepted: {}",
                answers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            MethodStatus::Untested { reason } => format!("untested: {reason}"),
        }
    }
}

/// A canary that answered: the probe, what answered, how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryAnswer {
    /// What was sent, e.g. `tcp connect 198.18.0.1:443`, `dns udp 198.18.0.1:53`.
    pub probe: String,
    pub canary: IpAddr,
    /// What came back, in the protocol's terms (a handshake, a DNS rcode and NSID, an echo
    /// reply at TTL n).
    pub answer: String,
    pub rtt_ms: Option<f64>,
}

impl fmt::Display for CanaryAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered ({})", self.probe, self.answer)?;
        if let Some(ms) = self.rtt_ms {
            write!(f, " in {ms:.2} ms")?;
        }
        Ok(())
    }
}

/// A lower bound on the round-trip time to an address, from a probe that is not intercepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathFloor {
    pub rtt_ms: f64,
    /// Where the bound comes from, e.g. `the address's own echo reply` or `hop 2 (198.51.100.129)`.
    pub from: String,
}

/// The provenance check of one resolver: its answers' times against the path to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolverCheck {
    pub resolver: String,
    /// `clean` | `intercepted` | `untested`.
    pub status: ResolverStatus,
    pub reason: String,
    /// The least RTT the path to the resolver's address allows, when it could be traced.
    pub path: Option<PathFloor>,
    /// The fastest answer it gave this run.
    pub fastest_answer_ms: Option<f64>,
    /// Every distinct NSID (RFC 5001) its answers carried.
    pub nsids: Vec<String>,
    /// The IP TTL its UDP answers arrived with (the largest, i.e. the nearest sender), where
    /// raw sockets could watch it (IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_ttl: Option<u8>,
    /// How many hops away that TTL says the answering server was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_hops: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolverStatus {
    Clean,
    Intercepted,
    Untested,
}

/// What this vantage point's network does to each method, as recorded in the run document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integrity {
    /// The addresses probed as canaries.
    pub canaries: Vec<IpAddr>,
    pub tcp: MethodStatus,
    pub dns: MethodStatus,
    pub icmp: MethodStatus,
    /// Per resolver: its answers against the path to it.
    #[serde(default)]
    pub resolvers: Vec<ResolverCheck>,
}

impl Integrity {
    /// Every method untested for one reason (probing off, say).
    pub fn untested(reason: &str) -> Integrity {
        let untested = || MethodStatus::Untested {
            reason: reason.to_string(),
        };
        Integrity {
            canaries: Vec::new(),
            tcp: untested(),
            dns: untested(),
            icmp: untested(),
            resolvers: Vec::new(),
        }
    }

    /// The status of the method whose replies a trace with `protocol` counts as the target's.
    /// ICMP and UDP traces are answered by ICMP (echo reply, port unreachable); TCP traces by a
    /// handshake.
    pub fn for_trace(&self, protocol: Protocol) -> &MethodStatus {
        match protocol {
            Protocol::Icmp | Protocol::Udp => &self.icmp,
            Protocol::Tcp => &self.tcp,
        }
    }

    /// Why answers from `resolver` (a socket address as the resolutions write it) cannot be
    /// used this run, if they cannot: DNS is intercepted, or that resolver is.
    pub fn distrust(&self, resolver: &str) -> Option<String> {
        if let MethodStatus::Intercepted { answers } = &self.dns {
            let first = answers.first().map(ToString::to_string).unwrap_or_default();
            return Some(format!(
                "DNS is intercepted from this vantage point: {first}; the resolver may never have been asked"
            ));
        }
        self.resolvers
            .iter()
            .find(|c| c.resolver == resolver && c.status == ResolverStatus::Intercepted)
            .map(|c| format!("answers from {} are intercepted: {}", c.resolver, c.reason))
    }

    /// Whether every method is clean (what `doctor` exits 0 on).
    pub fn all_clean(&self) -> bool {
        self.tcp.is_clean()
            && self.dns.is_clean()
            && self.icmp.is_clean()
            && self
                .resolvers
                .iter()
                .all(|r| r.status != ResolverStatus::Intercepted)
    }
}

/// How to survey a vantage point.
#[derive(Debug, Clone)]
pub struct SurveyPlan {
    pub canaries: Vec<IpAddr>,
    /// Ports for the TCP canaries: every port the run's TCP probes use.
    pub tcp_ports: Vec<u16>,
    /// The run's trace settings: the canaries' traceroute-style probe uses its protocol, port,
    /// `max_hops` and `round_timeout` (one round).
    pub trace: TraceSettings,
    /// The DNS canary waits one try of this timeout.
    pub dns: ResolveSettings,
    /// Resolvers whose path is traced for the provenance check.
    pub resolvers: Vec<SocketAddr>,
}

/// The traced path to a resolver's address, as far as the provenance check needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolverPath {
    pub resolver: SocketAddr,
    /// The least RTT the path allows, or why there is none.
    pub floor: Result<PathFloor, String>,
    /// The farthest router before the resolver that answered the trace: its TTL and address.
    pub last_router: Option<(u8, IpAddr)>,
}

/// Who surveys the vantage point. The real one ([`Canaries`]) probes the canaries and traces
/// the resolvers; a scenario can say what a survey would have found instead. What the survey's
/// findings do to answers ([`Survey::finish`]) is the same either way.
pub trait Surveyor: Send + Sync {
    /// Surveys the vantage point by `plan`. Never fails: what could not be probed is untested.
    fn survey(&self, plan: &SurveyPlan) -> impl std::future::Future<Output = Survey> + Send;

    /// Starts watching the IP TTL of replies for the rest of the run, where it can (raw
    /// sockets); `None` otherwise.
    fn watch(&self) -> Option<TtlWatcher>;
}

/// What the survey found before any answer was compared with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub integrity: Integrity,
    /// The path to each resolver's address.
    pub resolver_paths: Vec<ResolverPath>,
}

impl Survey {
    /// What a survey found: each method's canary status and the resolvers' traced paths.
    /// Resolvers are traced by ICMP, at the same time as the canaries, so an intercepted ICMP
    /// makes those paths' times worthless.
    pub fn found(integrity: Integrity, resolver_paths: Vec<ResolverPath>) -> Survey {
        let resolver_paths = if integrity.icmp.is_intercepted() {
            let why = "ICMP is intercepted from this vantage point, so the path to the resolver cannot be timed";
            resolver_paths
                .into_iter()
                .map(|p| ResolverPath {
                    floor: Err(why.to_string()),
                    last_router: None,
                    ..p
                })
                .collect()
        } else {
            resolver_paths
        };
        Survey {
            integrity,
            resolver_paths,
        }
    }

    /// A survey that did not happen, every method untested for `reason`.
    pub fn skipped(reason: &str) -> Survey {
        Survey {
            integrity: Integrity::untested(reason),
            resolver_paths: Vec::new(),
        }
    }

    /// Compares every answer with what the survey found, marks untrusted ones (with why) in
    /// `resolutions`, and returns the run's integrity record with each resolver's check.
    ///
    /// A resolver is intercepted when its fastest answer came sooner than the path to its
    /// address allows (less [`consistency::margin_ms`]): something nearer answered for it.
    /// A canary that turns out to share a /24 (/48) with an address the run resolved is not
    /// evidence of anything, so its methods become untested.
    ///
    /// With `ttls` (raw sockets), a resolver is also intercepted when its answers arrived with
    /// an IP TTL that puts their sender no farther away than a router the trace saw before it.
    pub fn finish(
        self,
        resolutions: &mut [&mut Resolution],
        ttls: Option<&TtlWatcher>,
    ) -> Integrity {
        let mut integrity = self.integrity;
        if let Some(watcher) = ttls {
            watcher.settle();
        }
        let resolved: Vec<IpAddr> = resolutions
            .iter()
            .flat_map(|r| r.addresses.iter().copied())
            .collect();
        if let Some((canary, used)) = integrity.canaries.iter().find_map(|c| {
            resolved
                .iter()
                .find(|ip| same_network(*c, **ip))
                .map(|ip| (*c, *ip))
        }) {
            let reason = format!(
                "canary {canary} is next to {used}, an address of this policy: choose canaries \
                 nothing in the policy uses (policy `integrity: {{ canaries: [...] }}`)"
            );
            for method in [&mut integrity.tcp, &mut integrity.dns, &mut integrity.icmp] {
                if !method.is_intercepted() {
                    *method = MethodStatus::Untested {
                        reason: reason.clone(),
                    };
                }
            }
        }
        for ResolverPath {
            resolver: server,
            floor,
            last_router,
        } in self.resolver_paths
        {
            let name = server.to_string();
            let answer_ttl = ttls.and_then(|w| {
                w.ttls(ttl::Kind::Udp, server.ip(), server.port())
                    .into_iter()
                    .max()
            });
            let answer_hops = answer_ttl.map(ttl::hops_away);
            let too_near = match (answer_ttl, answer_hops, last_router) {
                (Some(ttl), Some(hops), Some((router_ttl, router))) if hops <= router_ttl => {
                    Some(format!(
                        "its answers arrived with IP TTL {ttl}, so they were sent {hops} hop(s) \
                         away, but hop {router_ttl} ({router}) is farther on the path to {}: \
                         something nearer answered in its place",
                        server.ip()
                    ))
                }
                _ => None,
            };
            let answered: Vec<&&mut Resolution> = resolutions
                .iter()
                .filter(|r| r.resolver == name && responded(r.outcome))
                .collect();
            let fastest = answered
                .iter()
                .filter_map(|r| r.rtt_ms)
                .min_by(f64::total_cmp);
            let mut nsids: Vec<String> = answered.iter().filter_map(|r| r.nsid.clone()).collect();
            nsids.sort();
            nsids.dedup();
            let (status, reason, path) = match (floor, fastest) {
                (floor, _) if too_near.is_some() => (
                    ResolverStatus::Intercepted,
                    too_near.clone().unwrap_or_default(),
                    floor.ok(),
                ),
                (Err(why), _) => (ResolverStatus::Untested, why, None),
                (Ok(floor), None) => (
                    ResolverStatus::Untested,
                    "it gave no answer to compare with the path".to_string(),
                    Some(floor),
                ),
                (Ok(floor), Some(fastest)) => {
                    if consistency::sooner_than(fastest, floor.rtt_ms) {
                        (
                            ResolverStatus::Intercepted,
                            format!(
                                "it answered in {fastest:.2} ms, but the path to {} takes at least \
                                 {:.2} ms ({}): something nearer answered in its place",
                                server.ip(),
                                floor.rtt_ms,
                                floor.from
                            ),
                            Some(floor),
                        )
                    } else {
                        (
                            ResolverStatus::Clean,
                            format!(
                                "fastest answer {fastest:.2} ms, path at least {:.2} ms ({})",
                                floor.rtt_ms, floor.from
                            ),
                            Some(floor),
                        )
                    }
                }
            };
            integrity.resolvers.push(ResolverCheck {
                resolver: name,
                status,
                reason,
                path,
                fastest_answer_ms: fastest,
                nsids,
                answer_ttl,
                answer_hops,
            });
        }
        for r in resolutions.iter_mut() {
            if responded(r.outcome)
                && let Some(why) = integrity.distrust(&r.resolver)
            {
                r.untrusted = Some(why);
            }
        }
        integrity
    }
}

/// Did a server respond at all (whatever it said)?
fn responded(outcome: Outcome) -> bool {
    !matches!(outcome, Outcome::Timeout | Outcome::Error)
}

/// Same /24 (IPv4) or /48 (IPv6): close enough that a canary may be routed like the address.
fn same_network(a: IpAddr, b: IpAddr) -> bool {
    let prefix = if a.is_ipv4() { 24 } else { 48 };
    match (IpNetwork::new(a, prefix), b.is_ipv4() == a.is_ipv4()) {
        (Ok(net), true) => IpNetwork::new(net.network(), prefix).is_ok_and(|n| n.contains(b)),
        _ => false,
    }
}

/// The canaries to probe: `configured` when the policy lists them (possibly none), else the
/// first default of each family outside every network in `used` (and not next to any address
/// in it).
pub fn choose_canaries(configured: Option<&[IpAddr]>, used: &[IpNetwork]) -> Vec<IpAddr> {
    if let Some(list) = configured {
        return list.to_vec();
    }
    let free = |c: &IpAddr| {
        !used
            .iter()
            .any(|net| net.contains(*c) || (net.prefix() >= 24 && same_network(*c, net.ip())))
    };
    let candidates: Vec<IpAddr> = DEFAULT_CANARIES
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let v4 = candidates.iter().copied().find(|c| c.is_ipv4() && free(c));
    let v6 = candidates.iter().copied().find(|c| c.is_ipv6() && free(c));
    v4.into_iter().chain(v6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().expect("network")
    }

    #[test]
    fn default_canaries_avoid_what_the_policy_uses() {
        assert_eq!(
            choose_canaries(None, &[]),
            vec![ip("198.18.0.1"), ip("100::1")]
        );
        assert_eq!(
            choose_canaries(None, &[net("198.18.0.0/15"), net("100::/64")]),
            vec![ip("192.0.2.254"), ip("2001:db8:ffff:ffff::1")]
        );
        // An address next to a canary pushes it aside too.
        assert_eq!(
            choose_canaries(None, &[net("198.18.0.77/32")])[0],
            ip("198.19.255.254")
        );
        assert!(choose_canaries(Some(&[]), &[]).is_empty());
        assert_eq!(
            choose_canaries(Some(&[ip("10.9.9.9")]), &[]),
            vec![ip("10.9.9.9")]
        );
    }

    #[test]
    fn neighbours_share_a_slash_24_or_48() {
        assert!(same_network(ip("198.18.0.1"), ip("198.18.0.200")));
        assert!(!same_network(ip("198.18.0.1"), ip("198.18.1.1")));
        assert!(same_network(ip("100::1"), ip("100::ffff")));
        assert!(!same_network(ip("100::1"), ip("198.18.0.1")));
    }
}
