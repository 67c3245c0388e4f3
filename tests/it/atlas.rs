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

/// The 2019 built-in measurements: probe 12089 (IR) pings and traces K-root over IPv4 and
/// IPv6, probe 13964 (BH) traces B-root and never reaches it.
const V6_PATH_INFLATION: &[&str] = &[
    "atlas/v6-path-inflation/12089-msm1001.json",
    "atlas/v6-path-inflation/12089-msm2001.json",
    "atlas/v6-path-inflation/12089-msm5001.json",
    "atlas/v6-path-inflation/12089-msm6001.json",
    "atlas/v6-path-inflation/13964-msm5010.json",
];

/// A policy for the root servers those probes measured, judged as Iran's.
const ROOTS_POLICY: &str = "id: roots\nallow: [IR]\nresolvers: [\"127.0.0.1:9\"]\nregistry: { enabled: false }\nendpoints:\n  - host: 193.0.14.129\n  - host: 2001:7fd::1\n  - host: 192.228.79.201\n";

/// Where the probes' hosts put them (the corpus has no probe metadata, see its MANIFEST): the
/// API's own format, with each probe in its country's capital.
const PROBES: &str = r#"{"count": 2, "next": null, "previous": null, "results": [
  {"id": 12089, "asn_v4": 58224, "asn_v6": 58224, "country_code": "IR", "geometry": {"type": "Point", "coordinates": [51.39, 35.69]}, "status": {"id": 1, "name": "Connected", "since": "2019-04-01T00:00:00Z"}, "is_anchor": false},
  {"id": 13964, "asn_v4": 5416, "country_code": "BH", "geometry": {"type": "Point", "coordinates": [50.58, 26.22]}, "status": {"id": 1, "name": "Connected"}, "is_anchor": false}
]}"#;

/// The smallest RTT the file holds for `target`: ping minimums and the target's own replies.
fn smallest_rtt(files: &[&str], target: &str) -> f64 {
    let mut best = f64::INFINITY;
    for file in files {
        let text = std::fs::read_to_string(common::corpus(file)).expect("read");
        for v in raw(&text) {
            if v["dst_addr"] != target {
                continue;
            }
            if let Some(min) = num(&v["min"]).filter(|m| *m >= 0.0) {
                best = best.min(min);
            }
            for hop in v["result"].as_array().into_iter().flatten() {
                for reply in hop["result"].as_array().into_iter().flatten() {
                    if reply["from"] == target && reply["late"].is_null() {
                        best = best.min(num(&reply["rtt"]).unwrap_or(f64::INFINITY));
                    }
                }
            }
        }
    }
    best
}

#[test]
fn imported_atlas_results_become_vantage_runs_with_physics_from_the_probes_place() {
    use crate::common::cmd::Residency;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("roots.yaml"), ROOTS_POLICY).expect("policy");
    std::fs::write(dir.path().join("probes.json"), PROBES).expect("probes");
    let mut args: Vec<String> = vec![
        "import".into(),
        "atlas".into(),
        "--policy".into(),
        "roots.yaml".into(),
        "--probes".into(),
        "probes.json".into(),
        "--no-registry".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(
        V6_PATH_INFLATION
            .iter()
            .map(|f| common::corpus(f).display().to_string()),
    );
    let out = Residency::new(dir.path()).args(&args).output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0..=2)), "{stderr}");
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON runs");
    assert_eq!(runs.len(), 2, "one run per probe");
    let (iran, bahrain) = (&runs[0], &runs[1]);
    assert_eq!(iran["measured_from"]["label"], "atlas:12089");
    assert_eq!(iran["measured_from"]["kind"], "atlas");
    assert_eq!(iran["measured_from"]["asn"], 58224);
    assert_eq!(iran["vantage"]["country"], "IR");
    assert_eq!(iran["integrity"]["tcp"]["status"], "untested");
    // The run is dated when the probe measured, not when it was imported.
    assert!(
        iran["started_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2019-04-24"))
    );

    let k_root = iran["endpoints"][0]["addresses"][0].clone();
    assert_eq!(k_root["ip"], "193.0.14.129");
    let want = smallest_rtt(V6_PATH_INFLATION, "193.0.14.129");
    let got = k_root["rtt"]["min_rtt_ms"].as_f64().expect("an RTT");
    assert!(
        (got - want).abs() < 1e-9,
        "min RTT {got}, the files hold {want}"
    );
    let max_km = k_root["rtt"]["max_km"].as_f64().expect("a bound");
    assert!((max_km - (want * 100.0 + 50.0)).abs() < 1e-6, "{max_km}");
    let methods: Vec<&str> = k_root["rtt"]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["method"].as_str())
        .collect();
    assert_eq!(methods, ["trace", "atlas_ping"]);
    // The traced path is the traceroute's, hop for hop.
    let hops = k_root["path"]["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 6);
    assert_eq!(hops[0]["addr"], "192.168.0.1");
    // The probe's home router is private space: the database's AU counts for nothing, and
    // physics (0.48 ms from Tehran) places it.
    assert_eq!(hops[0]["evidence"][0]["country"], "AU");
    assert!(
        hops[0]["evidence"][0]["refuted"]
            .as_str()
            .is_some_and(|r| r.contains("private-use address space (RFC 1918)")),
        "{}",
        hops[0]
    );
    assert_eq!(hops[0]["country"], "IR", "{}", hops[0]);
    assert_eq!(k_root["path"]["reached"], true);
    // K-root's block is registered in NL; 4.13 ms from Tehran refutes that.
    let refuted: Vec<&str> = k_root["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter(|e| !e["refuted"].is_null())
        .filter_map(|e| e["country"].as_str())
        .collect();
    assert_eq!(refuted, ["NL"], "{k_root}");
    assert!(
        k_root["reasons"]
            .to_string()
            .contains("within 463 km of the vantage point"),
        "physics from Tehran: {k_root}"
    );

    let b_root = &bahrain["endpoints"][2]["addresses"][0];
    assert_eq!(b_root["ip"], "192.228.79.201");
    assert_eq!(b_root["path"]["reached"], false);
    assert_ne!(b_root["verdict"], "compliant");
    assert!(
        b_root["reasons"].to_string().contains("answered no probe"),
        "{b_root}"
    );
    // Probe 13964 measured nothing of K-root: not measured from there, never compliant.
    let k_from_bahrain = &bahrain["endpoints"][0]["addresses"][0];
    assert_ne!(k_from_bahrain["verdict"], "compliant");
    assert!(
        k_from_bahrain["path"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("atlas probe 13964 has no traceroute of 193.0.14.129")),
        "{k_from_bahrain}"
    );

    // Both are vantage runs of the policy: combine takes them (the 2019 runs need a wide window).
    let combined = Residency::new(dir.path())
        .args(["combine", "roots", "--window", "3650d", "--format", "json"])
        .output();
    let doc: Value = serde_json::from_slice(&combined.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&combined.stderr)));
    let labels: Vec<&str> = doc["vantages"]
        .as_array()
        .expect("vantages")
        .iter()
        .filter_map(|v| v["label"].as_str())
        .collect();
    assert_eq!(labels, ["atlas:12089", "atlas:13964"]);
    assert_eq!(doc["vantages"][0]["kind"], "atlas");
    assert_eq!(doc["vantages"][0]["location"], "declared");
}

#[test]
fn bad_atlas_input_is_named_by_file_and_line_and_the_rest_is_used() {
    use crate::common::cmd::Residency;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("roots.yaml"), ROOTS_POLICY).expect("policy");
    // A saved login page, a download cut in the middle of its last line, a probe without a place.
    std::fs::write(
        dir.path().join("page.json"),
        "<!DOCTYPE html><html>Log in</html>",
    )
    .expect("html");
    let trace =
        std::fs::read_to_string(common::corpus("atlas/v6-path-inflation/12089-msm5001.json"))
            .expect("read");
    let lines: Vec<String> = raw(&trace).iter().map(Value::to_string).collect();
    let mut cut = lines.join("\n");
    cut.truncate(cut.len() - 40);
    std::fs::write(dir.path().join("cut.ndjson"), &cut).expect("cut");
    std::fs::write(
        dir.path().join("probes.json"),
        r#"{"results": [{"id": 12089, "country_code": "IR", "geometry": null}]}"#,
    )
    .expect("probes");
    let out = Residency::new(dir.path())
        .args([
            "import",
            "atlas",
            "--policy",
            "roots.yaml",
            "--probes",
            "probes.json",
            "--no-registry",
            "page.json",
            "cut.ndjson",
        ])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("page.json: line 1: this is HTML"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cut.ndjson: line 2: the line is cut off"),
        "{stderr}"
    );
    assert!(
        stderr.contains("probes.json: probe 1 of the file (id 12089): no coordinates"),
        "{stderr}"
    );
    assert!(
        stderr.contains("probe 12089: no declared country or coordinates"),
        "{stderr}"
    );
    // The first, whole line was still used: one run, for the probe it names.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("atlas:12089: run #1"), "{stdout}\n{stderr}");
    assert!(stdout.contains("no usable location"), "{stdout}");
    // Nothing readable at all is an error that says what to fetch.
    let none = Residency::new(dir.path())
        .args(["import", "atlas", "--policy", "roots.yaml", "page.json"])
        .output();
    assert_eq!(none.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("no RIPE Atlas result could be read from page.json"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}
