//! What one Atlas probe measured, played back as this crate's own measurements: its
//! traceroutes as [`TracePath`]s, its pings as an RTT sample, its names resolved on the probe
//! as [`Resolution`]s. A [`RecordedTracer`] stands in for the tracer of a check, so a probe's
//! results go through the same evidence, physics and integrity code as this machine's.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{AtlasKind, AtlasPing, AtlasResult, AtlasTraceroute};
use crate::measure::resolve::{Outcome, RecordType, Resolution};
use crate::measure::trace::{Hop, Protocol, RttSample, Trace, TracePath, TraceStatus};

/// The traceroute's probe protocol (`proto`; ICMP when it names none or another).
pub fn protocol(t: &AtlasTraceroute) -> Protocol {
    match t.proto.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("UDP") => Protocol::Udp,
        Some("TCP") => Protocol::Tcp,
        _ => Protocol::Icmp,
    }
}

/// The method of an Atlas ping's sample, as the run document lists it.
pub const PING_METHOD: &str = "atlas_ping";

/// How a probe's answer for a name appears in the run document's `resolver` fields: the
/// probe's own resolver, which neither Atlas nor Globalping names. `name` is the probe's, as
/// messages call it (`atlas probe 6001`).
pub fn resolver_label(name: &str) -> String {
    format!("{name} (its own resolver)")
}

/// The traceroute as a path: one hop per TTL, the sentinel hop 255 left out, late replies
/// (duplicates of earlier packets) not counted, and the path cut at the first hop where the
/// target answered.
pub fn trace_path(t: &AtlasTraceroute, target: IpAddr) -> TracePath {
    let protocol = protocol(t);
    let mut hops = Vec::new();
    let mut reached = false;
    for h in t.hops.iter().filter(|h| !h.is_sentinel()) {
        let Ok(ttl) = u8::try_from(h.hop) else {
            continue;
        };
        let answered: Vec<_> = h
            .replies
            .iter()
            .filter(|r| r.late.is_none() && !r.timed_out())
            .collect();
        let addrs: Vec<IpAddr> =
            answered
                .iter()
                .filter_map(|r| r.from)
                .fold(Vec::new(), |mut v, a| {
                    if !v.contains(&a) {
                        v.push(a);
                    }
                    v
                });
        let rtts: Vec<f64> = answered.iter().filter_map(|r| r.rtt_ms).collect();
        let sent = u32::try_from(h.replies.iter().filter(|r| r.late.is_none()).count())
            .unwrap_or(u32::MAX);
        hops.push(Hop {
            ttl,
            addr: addrs.first().copied(),
            other_addrs: addrs.iter().skip(1).copied().collect(),
            sent,
            received: u32::try_from(answered.len()).unwrap_or(u32::MAX),
            best_rtt_ms: rtts.iter().copied().reduce(f64::min),
            avg_rtt_ms: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
        });
        if addrs.contains(&target) {
            reached = true;
            // The target's replies are what `target_rtt` reads: keep only them at this hop.
            if let Some(last) = hops.last_mut() {
                let own: Vec<f64> = answered
                    .iter()
                    .filter(|r| r.from == Some(target))
                    .filter_map(|r| r.rtt_ms)
                    .collect();
                last.addr = Some(target);
                last.other_addrs.retain(|a| *a != target);
                last.best_rtt_ms = own.iter().copied().reduce(f64::min);
                last.avg_rtt_ms =
                    (!own.is_empty()).then(|| own.iter().sum::<f64>() / own.len() as f64);
            }
            break;
        }
    }
    // A traceroute that failed on the probe ("connect failed: Network is unreachable") or has
    // no hop at all measured nothing: it must not read as a path that crossed nothing.
    let failed = t.hops.iter().find_map(|h| h.error.clone());
    let answered = hops.iter().any(|h| h.addr.is_some());
    let status = match (failed, hops.is_empty(), answered) {
        (Some(error), _, false) => TraceStatus::NotMeasured(format!(
            "the probe's traceroute failed: {}",
            crate::text::visible(&error)
        )),
        (_, true, _) => TraceStatus::NotMeasured("the probe's traceroute has no hop".into()),
        _ => TraceStatus::Measured,
    };
    TracePath {
        target,
        protocol,
        port: None,
        status,
        reached,
        hops,
    }
}

/// The ping as one RTT sample (method [`PING_METHOD`]).
pub fn ping_sample(p: &AtlasPing) -> RttSample {
    let answered: Vec<f64> = p.rtts.iter().flatten().copied().collect();
    let min = p
        .min_ms
        .filter(|m| *m >= 0.0)
        .or_else(|| answered.iter().copied().reduce(f64::min));
    RttSample {
        method: PING_METHOD.to_string(),
        sent: p
            .sent
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(u32::try_from(p.rtts.len()).unwrap_or(u32::MAX)),
        received: p
            .rcvd
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(u32::try_from(answered.len()).unwrap_or(u32::MAX)),
        min_rtt_ms: min,
        untrusted: None,
        reply_ttl: None,
        hops_away: None,
    }
}

/// One probe's results as a tracer: `trace` returns its traceroute of the target, `pings` its
/// pings, and `handshake` sends nothing (Atlas made none).
#[derive(Debug, Default)]
pub struct RecordedTracer {
    name: String,
    paths: HashMap<IpAddr, TracePath>,
    pings: HashMap<IpAddr, RttSample>,
}

impl RecordedTracer {
    /// The tracer of probe `probe`'s results (results of other probes are ignored). Several
    /// traceroutes of one target are merged hop by hop ([`merge_paths`]), so each router's
    /// best reply is over all their rounds; several pings add up into one sample with the
    /// smallest RTT.
    pub fn new<'a>(
        probe: u64,
        name: &str,
        results: impl IntoIterator<Item = &'a AtlasResult>,
    ) -> Self {
        let mut tracer = RecordedTracer {
            name: name.to_string(),
            ..RecordedTracer::default()
        };
        for r in results.into_iter().filter(|r| r.prb_id == Some(probe)) {
            let Some(target) = r.dst_addr else { continue };
            match &r.kind {
                AtlasKind::Traceroute(t) => {
                    let path = trace_path(t, target);
                    let merged = match tracer.paths.remove(&target) {
                        None => path,
                        Some(old) => merge_paths(old, path),
                    };
                    tracer.paths.insert(target, merged);
                }
                AtlasKind::Ping(p) => {
                    let sample = ping_sample(p);
                    tracer
                        .pings
                        .entry(target)
                        .and_modify(|s| {
                            s.sent = s.sent.saturating_add(sample.sent);
                            s.received = s.received.saturating_add(sample.received);
                            s.min_rtt_ms = match (s.min_rtt_ms, sample.min_rtt_ms) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                        })
                        .or_insert(sample);
                }
            }
        }
        tracer
    }

    /// Every address this probe measured.
    pub fn targets(&self) -> BTreeSet<IpAddr> {
        self.paths
            .keys()
            .chain(self.pings.keys())
            .copied()
            .collect()
    }
}

/// Two traceroutes of one target from one probe as one path with more rounds: TTL by TTL, the
/// first answering address stays the hop (others join `other_addrs`), packets add up, and the
/// best RTT is the least over the replies of that address. Routers' ICMP slow path makes their
/// best reply of three packets late by milliseconds; over more rounds it comes down to the
/// propagation the path-floor rule needs. A path that was not measured gives way to one that
/// was; the merged path is cut where either reached the target.
pub fn merge_paths(a: TracePath, b: TracePath) -> TracePath {
    match (&a.status, &b.status) {
        (TraceStatus::NotMeasured(_), _) => return b,
        (_, TraceStatus::NotMeasured(_)) => return a,
        _ => {}
    }
    let target = a.target;
    let mut hops: Vec<Hop> = Vec::new();
    let deepest = a.hops.len().max(b.hops.len());
    for i in 0..deepest {
        let (x, y) = (a.hops.get(i), b.hops.get(i));
        let hop = match (x, y) {
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (Some(x), Some(y)) => {
                let (first, second) = if x.addr.is_some() { (x, y) } else { (y, x) };
                let mut h = first.clone();
                h.sent = x.sent.saturating_add(y.sent);
                h.received = x.received.saturating_add(y.received);
                if second.addr.is_some() && second.addr == first.addr {
                    h.best_rtt_ms = match (first.best_rtt_ms, second.best_rtt_ms) {
                        (Some(p), Some(q)) => Some(p.min(q)),
                        (p, q) => p.or(q),
                    };
                    h.avg_rtt_ms = match (first.avg_rtt_ms, second.avg_rtt_ms) {
                        (Some(p), Some(q)) => Some((p + q) / 2.0),
                        (p, q) => p.or(q),
                    };
                }
                for other in second.addr.iter().chain(&second.other_addrs) {
                    if Some(*other) != h.addr && !h.other_addrs.contains(other) {
                        h.other_addrs.push(*other);
                    }
                }
                h
            }
            (None, None) => break,
        };
        let at_target = hop.addr == Some(target);
        hops.push(hop);
        if at_target {
            break;
        }
    }
    TracePath {
        reached: hops.last().is_some_and(|h| h.addr == Some(target)),
        hops,
        ..a
    }
}

impl Trace for RecordedTracer {
    fn trace(&self, target: IpAddr) -> impl std::future::Future<Output = TracePath> + Send {
        let path = self
            .paths
            .get(&target)
            .cloned()
            .unwrap_or_else(|| TracePath {
                target,
                protocol: Protocol::default(),
                port: None,
                status: TraceStatus::NotMeasured(format!(
                    "{} has no traceroute of {target} in the results",
                    self.name
                )),
                reached: false,
                hops: Vec::new(),
            });
        std::future::ready(path)
    }

    fn handshake(
        &self,
        target: SocketAddr,
        _probes: u32,
        _timeout: Duration,
    ) -> impl std::future::Future<Output = RttSample> + Send {
        std::future::ready(RttSample {
            method: format!("tcp_connect:{}", target.port()),
            sent: 0,
            received: 0,
            min_rtt_ms: None,
            untrusted: None,
            reply_ttl: None,
            hops_away: None,
        })
    }

    fn pings(&self, target: IpAddr) -> impl std::future::Future<Output = Option<RttSample>> + Send {
        std::future::ready(self.pings.get(&target).cloned())
    }
}

/// What the probe's resolver answered for `host`: one answer per result that resolved it on
/// the probe (`dst_name` is the host, `dst_addr` what it resolved to).
pub fn resolutions<'a>(
    probe: u64,
    name: &str,
    host: &str,
    results: impl IntoIterator<Item = &'a AtlasResult>,
) -> Vec<Resolution> {
    let wanted = host.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for r in results.into_iter().filter(|r| r.prb_id == Some(probe)) {
        let Some(dst) = &r.dst_name else { continue };
        if dst.trim_end_matches('.').to_ascii_lowercase() != wanted {
            continue;
        }
        let Some(addr) = r.dst_addr else {
            // The probe could not resolve the name: a failed lookup, which the endpoint's
            // verdict must count.
            let record_type = if r.af == Some(6) {
                RecordType::Aaaa
            } else {
                RecordType::A
            };
            let attempt = u32::try_from(out.len() + 1).unwrap_or(u32::MAX);
            out.push(probe_answer(
                resolver_label(name),
                record_type,
                attempt,
                Err("the probe did not resolve the name (no dst_addr in its result)".into()),
            ));
            continue;
        };
        let attempt = u32::try_from(out.len() + 1).unwrap_or(u32::MAX);
        let record_type = if addr.is_ipv4() {
            RecordType::A
        } else {
            RecordType::Aaaa
        };
        out.push(probe_answer(
            resolver_label(name),
            record_type,
            attempt,
            Ok(addr),
        ));
    }
    out
}

/// One answer a probe got for a name: the address, or why there was none.
pub fn probe_answer(
    resolver: String,
    record_type: RecordType,
    attempt: u32,
    answer: Result<IpAddr, String>,
) -> Resolution {
    let (outcome, addresses, error) = match answer {
        Ok(addr) => (Outcome::Answer, vec![addr], None),
        Err(why) => (Outcome::Error, Vec::new(), Some(why)),
    };
    Resolution {
        resolver,
        client_subnet: None,
        scope_prefix: None,
        record_type,
        attempt,
        outcome,
        rcode: None,
        cname_chain: Vec::new(),
        addresses,
        names: Vec::new(),
        ttl: None,
        transport: None,
        elapsed_ms: 0,
        error,
        rtt_ms: None,
        nsid: None,
        untrusted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_results;
    use super::*;

    const TRACE: &str = r#"{"fw":5020,"prb_id":6001,"msm_id":1,"type":"traceroute","dst_addr":"192.0.2.10","dst_name":"api.vendor.test","proto":"ICMP","result":[
        {"hop":1,"result":[{"from":"10.0.0.1","rtt":0.9,"ttl":64},{"from":"10.0.0.1","rtt":0.7,"ttl":64},{"x":"*"}]},
        {"hop":2,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]},
        {"hop":3,"result":[{"from":"192.0.2.10","rtt":12.5,"ttl":60},{"from":"192.0.2.10","rtt":12.1,"ttl":60},{"from":"192.0.2.10","rtt":30.0,"late":1}]},
        {"hop":255,"result":[{"x":"*"}]}]}"#;

    #[test]
    fn a_traceroute_becomes_a_path_cut_at_the_target() {
        let (results, problems) = read_results(TRACE);
        assert!(problems.is_empty(), "{problems:?}");
        let AtlasKind::Traceroute(t) = &results[0].kind else {
            panic!("a traceroute")
        };
        let target: IpAddr = "192.0.2.10".parse().expect("ip");
        let path = trace_path(t, target);
        assert!(path.reached);
        assert_eq!(path.hops.len(), 3, "the sentinel is not a hop");
        assert_eq!((path.hops[0].sent, path.hops[0].received), (3, 2));
        assert_eq!(path.hops[0].best_rtt_ms, Some(0.7));
        assert_eq!(path.hops[1].addr, None);
        // The late duplicate is neither sent nor received.
        assert_eq!((path.hops[2].sent, path.hops[2].received), (2, 2));
        assert_eq!(path.target_rtt().min_rtt_ms, Some(12.1));
        let names = resolutions(6001, "atlas probe 6001", "API.vendor.test.", &results);
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].addresses, vec![target]);
        assert_eq!(
            resolutions(6002, "atlas probe 6002", "api.vendor.test", &results).len(),
            0
        );
    }

    #[test]
    fn pings_of_a_target_add_up_to_one_sample() {
        let text = r#"[{"fw":4790,"prb_id":7,"type":"ping","dst_addr":"192.0.2.10","sent":3,"rcvd":2,"min":15.2,"result":[{"rtt":15.2},{"rtt":16.0},{"x":"*"}]},
                      {"fw":4790,"prb_id":7,"type":"ping","dst_addr":"192.0.2.10","sent":3,"rcvd":3,"min":14.8,"result":[{"rtt":14.8},{"rtt":15.0},{"rtt":15.1}]},
                      {"fw":4790,"prb_id":8,"type":"ping","dst_addr":"192.0.2.10","sent":3,"rcvd":3,"min":1.0}]"#;
        let (results, _) = read_results(text);
        let tracer = RecordedTracer::new(7, "atlas probe 7", &results);
        let target: IpAddr = "192.0.2.10".parse().expect("ip");
        let sample = futures_ping(&tracer, target).expect("a sample");
        assert_eq!((sample.sent, sample.received), (6, 5));
        assert_eq!(
            sample.min_rtt_ms,
            Some(14.8),
            "probe 8's ping is not probe 7's"
        );
        assert_eq!(sample.method, PING_METHOD);
    }

    fn futures_ping(tracer: &RecordedTracer, target: IpAddr) -> Option<RttSample> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(tracer.pings(target))
    }
}
