//! `check --atlas` against a RIPE Atlas API that the test serves on loopback: the server
//! answers create, status, results, probes and credits requests, the results being the
//! corpus's real 2019 measurements of K-root from probe 12089. Covered: results that arrive
//! late and a 429 on create (both retried), a 403 for lack of credits, a measurement that
//! never completes (bounded by --atlas-wait), a price over --max-credits, and a missing key.
//! This machine's own run is made with probing off, so nothing leaves loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common;
use crate::common::cmd::Residency;
use crate::common::registry::{HttpServer, Reply, Request};

const KEY: &str = "test-key-9f1c";

const POLICY: &str = "id: kroot\nallow: [IR]\nresolvers: [\"127.0.0.1:9\"]\nregistry: { enabled: false }\nendpoints:\n  - host: 193.0.14.129\n";

const PROBES: &str = r#"{"count": 1, "next": null, "previous": null, "results": [
  {"id": 12089, "asn_v4": 58224, "country_code": "IR", "geometry": {"type": "Point", "coordinates": [51.39, 35.69]}, "status": {"id": 1, "name": "Connected"}, "is_anchor": false}]}"#;

/// How the fake API behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A 429 on the first create, results empty at first (late), then everything.
    Late,
    /// 403: not enough credits.
    NoCredits,
    /// The measurements never leave `Ongoing` and never report.
    Never,
}

fn json(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    }
}

/// The fake API, and every path it was asked, with whether the key came along.
/// Each request as `METHOD PATH`, and whether it carried the key.
type Calls = Arc<Mutex<Vec<(String, bool)>>>;

fn api(mode: Mode) -> (HttpServer, Calls) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let creates = Arc::new(AtomicUsize::new(0));
    let result_calls = Arc::new(AtomicUsize::new(0));
    let ping =
        std::fs::read_to_string(common::corpus("atlas/v6-path-inflation/12089-msm1001.json"))
            .expect("ping results");
    let trace =
        std::fs::read_to_string(common::corpus("atlas/v6-path-inflation/12089-msm5001.json"))
            .expect("traceroute results");
    let server = HttpServer::start(move |r: &Request| {
        let keyed = r.header("authorization") == Some(&format!("Key {KEY}"));
        log.lock()
            .expect("log")
            .push((format!("{} {}", r.method, r.path), keyed));
        if !keyed {
            return json(403, r#"{"error":{"status":403,"title":"Forbidden","detail":"Authentication credentials were not provided."}}"#.into());
        }
        let path = r.path.as_str();
        if r.method == "POST" && path == "/api/v2/measurements/" {
            if mode == Mode::NoCredits {
                return json(403, r#"{"error":{"status":403,"code":104,"title":"Forbidden","detail":"You do not have enough credits to schedule this measurement."}}"#.into());
            }
            if mode == Mode::Late && creates.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply {
                    status: 429,
                    headers: vec![("Retry-After".into(), "0".into())],
                    body: String::new(),
                };
            }
            return json(201, r#"{"measurements":[1001,5001]}"#.into());
        }
        if path == "/api/v2/credits/" {
            return json(200, r#"{"current_balance": 120000}"#.into());
        }
        if path.starts_with("/api/v2/probes/") {
            return json(200, PROBES.into());
        }
        for id in ["1001", "5001"] {
            if path == format!("/api/v2/measurements/{id}/") {
                let name = if mode == Mode::Never {
                    "Ongoing"
                } else {
                    "Stopped"
                };
                return json(
                    200,
                    format!(
                        r#"{{"id":{id},"status":{{"id":4,"name":"{name}"}},"participant_count":1}}"#
                    ),
                );
            }
            if path.starts_with(&format!("/api/v2/measurements/{id}/results/")) {
                let n = result_calls.fetch_add(1, Ordering::SeqCst);
                if mode == Mode::Never || (mode == Mode::Late && n < 2) {
                    return json(200, "[]".into());
                }
                return json(
                    200,
                    if id == "1001" {
                        ping.clone()
                    } else {
                        trace.clone()
                    },
                );
            }
        }
        json(
            404,
            r#"{"error":{"status":404,"detail":"Not found."}}"#.into(),
        )
    });
    (server, seen)
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("kroot.yaml"), POLICY).expect("policy");
    std::fs::write(dir.path().join("atlas.key"), format!("{KEY}\n")).expect("key");
    dir
}

fn check(dir: &std::path::Path, server: &HttpServer, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        "kroot.yaml",
        "--no-trace",
        "--no-registry",
        "--resolver",
        "127.0.0.1:9",
        "--vantage-label",
        "here",
        "--atlas",
        "countries=IR:1",
        "--atlas-key-file",
        "atlas.key",
        "--atlas-url",
    ];
    let url = server.base_url();
    args.push(&url);
    args.extend_from_slice(extra);
    Residency::new(dir).args(&args).output()
}

#[test]
fn late_results_and_a_429_are_waited_for_and_the_probe_run_is_combined() {
    let dir = setup();
    let (server, seen) = api(Mode::Late);
    let out = check(
        dir.path(),
        &server,
        &["--atlas-wait", "20s", "--format", "json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key is never printed"
    );
    assert!(matches!(out.status.code(), Some(0..=2)), "{stderr}");
    assert!(
        stderr.contains("at most 66 credits of the 120000"),
        "{stderr}"
    );
    // The JSON is the combined run: this machine and the probe.
    let start = stdout.find("\n{").map_or(0, |i| i + 1);
    let doc: Value =
        serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let labels: Vec<&str> = doc["vantages"]
        .as_array()
        .expect("a combined run")
        .iter()
        .filter_map(|v| v["label"].as_str())
        .collect();
    assert_eq!(labels, ["here", "atlas:12089"]);
    let k = &doc["endpoints"][0]["addresses"][0];
    assert_eq!(k["ip"], "193.0.14.129");
    let from_probe = k["measured_from"]
        .as_array()
        .expect("per vantage")
        .iter()
        .find(|m| m["vantage"] == "atlas:12089")
        .expect("the probe's view")
        .clone();
    assert!(
        from_probe["min_rtt_ms"]
            .as_f64()
            .is_some_and(|ms| (ms - 4.13035).abs() < 1e-9),
        "{from_probe}"
    );
    // Every call carried the key; create was retried after the 429; results were asked again.
    let calls = seen.lock().expect("log").clone();
    assert!(calls.iter().all(|(_, keyed)| *keyed), "{calls:?}");
    let creates = calls
        .iter()
        .filter(|(c, _)| c == "POST /api/v2/measurements/")
        .count();
    assert_eq!(creates, 2, "{calls:?}");
    let posted: Value = serde_json::from_str(&server.posts()[1]).expect("the create body");
    assert_eq!(posted["is_oneoff"], true);
    assert_eq!(
        posted["probes"][0],
        serde_json::json!({"type": "country", "value": "IR", "requested": 1})
    );
    let kinds: Vec<&str> = posted["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .filter_map(|d| d["type"].as_str())
        .collect();
    assert_eq!(kinds, ["ping", "traceroute"]);
    // Three runs in the chain: this machine's, the probe's and the combined one; all verify.
    crate::common::cmd::assert_chain_intact(dir.path(), "kroot");
    assert_eq!(doc["history"]["seq"], 3);
}

#[test]
fn a_403_for_credits_says_so_and_records_only_this_machines_run() {
    let dir = setup();
    let (server, _) = api(Mode::NoCredits);
    let out = check(dir.path(), &server, &["--atlas-wait", "5s"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RIPE Atlas refused the request (403): You do not have enough credits"),
        "{stderr}"
    );
    assert!(stderr.contains("lacks credits"), "{stderr}");
    assert!(!stderr.contains(KEY));
    let list = Residency::new(dir.path())
        .args(["history", "--policy", "kroot", "--format", "json"])
        .output();
    let runs: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
}

#[test]
fn a_measurement_that_never_completes_is_given_up_at_the_bound() {
    let dir = setup();
    let (server, _) = api(Mode::Never);
    let started = std::time::Instant::now();
    let out = check(dir.path(), &server, &["--atlas-wait", "2s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded"
    );
    assert!(
        stderr.contains("RIPE Atlas measurement 1001 had not finished after 2s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no RIPE Atlas probe reported a result"),
        "{stderr}"
    );
    // Still combined, from this machine alone, which measured nothing: never compliant.
    assert!(matches!(out.status.code(), Some(1 | 2)), "{stderr}");
}

#[test]
fn a_price_over_max_credits_and_a_missing_key_stop_before_anything_is_created() {
    let dir = setup();
    let (server, seen) = api(Mode::Late);
    let out = check(dir.path(), &server, &["--max-credits", "50"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("about 66 RIPE Atlas credits, more than --max-credits 50"),
        "{stderr}"
    );
    assert!(
        !seen
            .lock()
            .expect("log")
            .iter()
            .any(|(c, _)| c.starts_with("POST")),
        "nothing created"
    );

    let url = server.base_url();
    let none = Residency::new(dir.path())
        .args([
            "check",
            "kroot.yaml",
            "--no-trace",
            "--atlas",
            "countries=IR:1",
            "--atlas-url",
            &url,
        ])
        .output();
    assert_eq!(none.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(stderr.contains("no RIPE Atlas API key"), "{stderr}");
    assert!(stderr.contains("--atlas-key-file"), "{stderr}");
    // The plain-http public URL is refused too.
    let http = Residency::new(dir.path())
        .args([
            "check",
            "kroot.yaml",
            "--no-trace",
            "--atlas",
            "countries=IR:1",
            "--atlas-key-file",
            "atlas.key",
            "--atlas-url",
            "http://atlas.example/",
        ])
        .output();
    assert!(String::from_utf8_lossy(&http.stderr).contains("use https"));
}

/// A Globalping API on loopback. Its answers carry the RTTs of the corpus's real K-root
/// measurements from probe 12089 (Globalping publishes no results file to read), in
/// Globalping's own shape: a ping's `stats` and `timings`, a traceroute's `hops`.
fn globalping(always_429: bool) -> (HttpServer, Calls) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let creates = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    let ping: Value = serde_json::from_str(
        &std::fs::read_to_string(common::corpus("atlas/v6-path-inflation/12089-msm1001.json"))
            .expect("ping results"),
    )
    .expect("json");
    let trace: Value = serde_json::from_str(
        &std::fs::read_to_string(common::corpus("atlas/v6-path-inflation/12089-msm5001.json"))
            .expect("traceroute results"),
    )
    .expect("json");
    let best_ping = ping.as_array().expect("results")[8].clone();
    let timings: Vec<Value> = best_ping["result"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| serde_json::json!({"ttl": 58, "rtt": p["rtt"]}))
        .collect();
    // One Globalping traceroute with both real traceroutes' replies at each hop (six packets a
    // hop): what Globalping's own probe would have answered over more rounds.
    let both: Vec<&Value> = trace.as_array().expect("traceroutes").iter().collect();
    let deepest = both
        .iter()
        .map(|t| t["result"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let hops: Vec<Value> = (0..deepest)
        .map(|i| {
            let replies: Vec<Value> = both
                .iter()
                .filter_map(|t| t["result"].get(i))
                .flat_map(|h| h["result"].as_array().cloned().unwrap_or_default())
                .collect();
            let from = replies.iter().find_map(|r| r["from"].as_str()).unwrap_or("*");
            let timings: Vec<Value> = replies
                .iter()
                .filter(|r| r["rtt"].is_number() && r["from"].as_str() == Some(from))
                .map(|r| serde_json::json!({"rtt": r["rtt"]}))
                .collect();
            serde_json::json!({"resolvedAddress": from, "resolvedHostname": from, "timings": timings})
        })
        .collect();
    let probe = serde_json::json!({"continent": "AS", "region": "Southern Asia", "country": "IR", "city": "Tehran", "asn": 58224, "network": "TCI", "latitude": 35.69, "longitude": 51.39, "tags": [], "resolvers": []});
    let server = HttpServer::start(move |r: &Request| {
        log.lock().expect("log").push((
            format!("{} {}", r.method, r.path),
            r.header("authorization") == Some("Bearer gp-token-77"),
        ));
        if r.method == "POST" && r.path == "/v1/measurements" {
            let n = creates.fetch_add(1, Ordering::SeqCst);
            if always_429 || n == 0 {
                return Reply {
                    status: 429,
                    headers: vec![("Retry-After".into(), "0".into())],
                    body: r#"{"error":{"type":"rate_limit_exceeded","message":"API rate limit exceeded."}}"#.into(),
                };
            }
            return json(202, format!(r#"{{"id":"gp{n}","probesCount":1}}"#));
        }
        if let Some(id) = r.path.strip_prefix("/v1/measurements/") {
            let done = polls.fetch_add(1, Ordering::SeqCst) >= 1;
            let status = if done { "finished" } else { "in-progress" };
            let (kind, result) = if id == "gp1" {
                (
                    "ping",
                    serde_json::json!({"status": "finished", "resolvedAddress": "193.0.14.129", "timings": timings, "stats": {"min": best_ping["min"], "avg": best_ping["avg"], "max": best_ping["max"], "total": 3, "rcv": 3, "drop": 0, "loss": 0}}),
                )
            } else {
                (
                    "traceroute",
                    serde_json::json!({"status": "finished", "resolvedAddress": "193.0.14.129", "hops": hops}),
                )
            };
            let body = serde_json::json!({"id": id, "type": kind, "status": status, "target": "193.0.14.129", "updatedAt": "2026-12-04T10:00:00.000Z", "probesCount": 1, "results": if done { serde_json::json!([{"probe": probe, "result": result}]) } else { serde_json::json!([]) }});
            return json(200, body.to_string());
        }
        json(404, r#"{"error":{"message":"not found"}}"#.into())
    });
    (server, seen)
}

#[test]
fn globalping_probes_are_reused_rate_limits_waited_for_and_their_runs_combined() {
    let dir = setup();
    std::fs::write(dir.path().join("gp.token"), "gp-token-77\n").expect("token");
    let (server, seen) = globalping(false);
    let url = server.base_url();
    let out = Residency::new(dir.path())
        .args([
            "check",
            "kroot.yaml",
            "--no-trace",
            "--no-registry",
            "--resolver",
            "127.0.0.1:9",
            "--vantage-label",
            "here",
            "--globalping",
            "country=IR:1",
            "--globalping-url",
            &url,
            "--globalping-token-file",
            "gp.token",
            "--globalping-wait",
            "20s",
            "--format",
            "json",
        ])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("gp-token-77") && !stderr.contains("gp-token-77"));
    let start = stdout.find("\n{").map_or(0, |i| i + 1);
    let doc: Value = serde_json::from_str(&stdout[start..])
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let vantages = doc["vantages"].as_array().expect("combined");
    assert_eq!(vantages.len(), 2, "{stderr}");
    assert_eq!(vantages[1]["label"], "globalping:IR-Tehran-AS58224");
    assert_eq!(vantages[1]["kind"], "globalping");
    assert_eq!(
        vantages[1]["location"], "voted",
        "Globalping's places are voted, not declared"
    );
    let k = &doc["endpoints"][0]["addresses"][0];
    let from_probe = k["measured_from"]
        .as_array()
        .expect("per vantage")
        .iter()
        .find(|m| m["vantage"] == "globalping:IR-Tehran-AS58224")
        .expect("the probe")
        .clone();
    // A voted place is uncertain: its disk is 250 km wider than the RTT alone allows.
    let (ms, km) = (
        from_probe["min_rtt_ms"].as_f64().expect("rtt"),
        from_probe["max_km"].as_f64().expect("disk"),
    );
    assert!(
        (km - (ms * 100.0 + 50.0 + 250.0)).abs() < 1e-6,
        "{from_probe}"
    );
    // The 429 was waited for; the second measurement reused the first one's probes; every call
    // carried the token.
    let calls = seen.lock().expect("log").clone();
    assert!(calls.iter().all(|(_, t)| *t), "{calls:?}");
    let posts = server.posts();
    assert_eq!(posts.len(), 3, "one 429, then two creates");
    let second: Value = serde_json::from_str(&posts[2]).expect("body");
    assert_eq!(second["locations"], "gp1");
    let first: Value = serde_json::from_str(&posts[1]).expect("body");
    assert_eq!(
        first["locations"],
        serde_json::json!([{"country": "IR", "limit": 1}])
    );
}

#[test]
fn globalping_that_stays_rate_limited_says_what_to_do() {
    let dir = setup();
    let (server, _) = globalping(true);
    let url = server.base_url();
    let out = Residency::new(dir.path())
        .args([
            "check",
            "kroot.yaml",
            "--no-trace",
            "--no-registry",
            "--resolver",
            "127.0.0.1:9",
            "--globalping",
            "country=IR:1",
            "--globalping-url",
            &url,
        ])
        .output();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Globalping kept answering 429"), "{stderr}");
    assert!(stderr.contains("--globalping-token-file"), "{stderr}");
    assert_eq!(server.posts().len(), 4, "bounded retries");
}
