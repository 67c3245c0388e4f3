//! RIPE Atlas results from the wild (`../shared/corpus/atlas/`: sagan's ping and traceroute
//! results across firmware 0 to 4720 as NDJSON, and 2019 built-in measurements from probes in
//! IR and BH as JSON arrays), read at test time: every result parses, and its hops, replies and
//! RTTs are the ones the JSON holds.

use residency::measure::atlas::{AtlasKind, read_results};
use serde_json::Value;

use crate::common;

const FILES: &[&str] = &[
    "atlas/sagan/ping-results.ndjson",
    "atlas/sagan/traceroute-results.ndjson",
    "atlas/v6-path-inflation/12089-msm1001.json",
    "atlas/v6-path-inflation/12089-msm2001.json",
    "atlas/v6-path-inflation/12089-msm5001.json",
    "atlas/v6-path-inflation/12089-msm6001.json",
    "atlas/v6-path-inflation/13964-msm5010.json",
];

/// The raw results of a file, as plain JSON values.
fn raw(text: &str) -> Vec<Value> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).expect("a JSON array")
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

/// A raw number, string or number.
fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

#[test]
fn every_real_atlas_result_parses_with_the_hops_and_rtts_it_holds() {
    let mut pings = 0;
    let mut traces = 0;
    for file in FILES {
        let text = std::fs::read_to_string(common::corpus(file)).expect("read");
        let (results, problems) = read_results(&text);
        assert!(problems.is_empty(), "{file}: {problems:?}");
        let raw = raw(&text);
        assert_eq!(results.len(), raw.len(), "{file}");
        for (r, v) in results.iter().zip(&raw) {
            assert_eq!(r.msm_id, v["msm_id"].as_u64(), "{file}");
            assert_eq!(r.prb_id, v["prb_id"].as_u64(), "{file}");
            assert!(r.dst_addr.is_some(), "{file}: {v}");
            match &r.kind {
                AtlasKind::Ping(p) => {
                    pings += 1;
                    let min = num(&v["min"]).filter(|m| *m >= 0.0);
                    assert_eq!(p.min_ms, min, "{file}: {v}");
                    assert_eq!(p.sent, num(&v["sent"]).map(|n| n as u64), "{file}");
                    let packets = v["result"].as_array().map_or(0, Vec::len);
                    assert_eq!(p.rtts.len(), packets, "{file}");
                    let measured: Vec<f64> = p.rtts.iter().flatten().copied().collect();
                    let want: Vec<f64> = v["result"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x["rtt"].as_f64())
                        .collect();
                    assert_eq!(measured, want, "{file}: {v}");
                }
                AtlasKind::Traceroute(t) => {
                    traces += 1;
                    let hops = v["result"].as_array().expect("hops");
                    assert_eq!(t.hops.len(), hops.len(), "{file}");
                    for (h, hv) in t.hops.iter().zip(hops) {
                        assert_eq!(u64::from(h.hop), hv["hop"].as_u64().unwrap_or(0), "{file}");
                        let replies = hv["result"].as_array().map_or(0, Vec::len);
                        assert_eq!(h.replies.len(), replies, "{file}: {hv}");
                        for (reply, rv) in h
                            .replies
                            .iter()
                            .zip(hv["result"].as_array().into_iter().flatten())
                        {
                            assert_eq!(reply.rtt_ms, rv["rtt"].as_f64(), "{file}: {rv}");
                            assert_eq!(
                                reply.from.map(|a| a.to_string()).is_some(),
                                rv["from"].is_string(),
                                "{rv}"
                            );
                            assert_eq!(reply.timed_out(), rv["x"] == "*", "{rv}");
                        }
                    }
                }
            }
        }
    }
    assert!(
        pings >= 20 && traces >= 10,
        "{pings} pings, {traces} traceroutes"
    );
}

#[test]
fn every_traceroute_field_the_format_has_is_read() {
    let text = std::fs::read_to_string(common::corpus("atlas/sagan/traceroute-results.ndjson"))
        .expect("read");
    let (results, _) = read_results(&text);
    let replies: Vec<_> = results
        .iter()
        .filter_map(|r| match &r.kind {
            AtlasKind::Traceroute(t) => Some(t),
            AtlasKind::Ping(_) => None,
        })
        .flat_map(|t| t.hops.iter())
        .flat_map(|h| h.replies.iter())
        .collect();
    assert!(
        replies.iter().any(|r| r.err.is_some()),
        "an ICMP unreachable"
    );
    assert!(replies.iter().any(|r| r.late.is_some()), "a late reply");
    assert!(replies.iter().any(|r| r.ittl.is_some()), "an inner TTL");
    assert!(replies.iter().any(|r| r.mtu.is_some()), "an MTU");
    assert!(
        replies.iter().any(|r| !r.mpls.is_empty()),
        "MPLS labels from icmpext"
    );
    assert!(replies.iter().any(|r| r.timed_out()), "a timeout");
    let hops: Vec<_> = results
        .iter()
        .filter_map(|r| match &r.kind {
            AtlasKind::Traceroute(t) => Some(t),
            AtlasKind::Ping(_) => None,
        })
        .flat_map(|t| t.hops.iter())
        .collect();
    assert!(hops.iter().any(|h| h.error.is_some()), "a hop-level error");
    assert!(hops.iter().any(|h| h.is_sentinel()), "the hop-255 sentinel");
    // Firmware 1 wrote `addr` for the destination: still read.
    let ping =
        std::fs::read_to_string(common::corpus("atlas/sagan/ping-results.ndjson")).expect("read");
    let (pings, _) = read_results(&ping);
    assert!(
        pings
            .iter()
            .filter(|p| p.fw == 1)
            .all(|p| p.dst_addr.is_some())
    );
}
