//! `residency check` and `locate` in the multi-hop lab: the real binary runs inside the client
//! namespace, resolves through a real knotd in a server namespace, traces through routers
//! joined by links with real delays, and judges paths and RTT physics. Needs root (network
//! namespaces, raw sockets): every test is `#[ignore]`d with that reason.
//!
//! ```text
//! client ── r1 (192.0.2.1, "IN") ──10 ms── r2 (198.51.100.129, "CN") ─┬─15 ms── a   203.0.113.10 ("SG"), DNS
//!             └──0.5 ms── near 203.0.113.20 (claimed "SG")            └─0 ms── drop 203.0.113.66 (drops all)
//! ```
//!
//! The vantage point is declared in Nagpur (IN). The lab database says 192.0.2.0/25 is IN,
//! 198.51.100.128/25 is CN and 203.0.113.0/24 is SG: the "near" server is therefore claimed to
//! be in Singapore, about 3,500 km away, while it answers in about a millisecond; server "a"
//! answers in 50 ms, which allows anywhere within 5,050 km, Singapore included.

use crate::common;
use crate::common::cmd::path_str;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::netns::addrs::{A, A_V6, DROP, NEAR, R1, R1_V6, R2, R2_V6};
use common::netns::{Lab, LabBuilder, Server};
use serde_json::Value;

/// Nagpur, in the middle of India: the nearest other country is some 650 km away, so a lab
/// RTT inflated by a loaded machine (a few ms) still reaches only India.
const VANTAGE: &str = "vantage: { country: IN, lat: 21.15, lon: 79.09 }";

fn addr(literal: &str) -> IpAddr {
    literal.parse().expect("an address literal")
}

fn topology() -> LabBuilder {
    LabBuilder::new()
        .router("r1", &[R1, R1_V6], Duration::ZERO)
        .router("r2", &[R2, R2_V6], Duration::from_millis(10))
        .server(Server::new("a", &[A, A_V6]).delay(Duration::from_millis(15)))
        .server(
            Server::new("near", &[NEAR])
                .behind("r1")
                .delay(Duration::from_micros(500)),
        )
        .server(Server::new("drop", &[DROP]).dropping())
}

/// The lab, its DNS server and a directory with the lab database and policies.
struct World {
    lab: Lab,
    _knot: KnotServer,
    dir: tempfile::TempDir,
}

impl World {
    fn start(lab: Lab) -> World {
        let zone = Zone::new(
            "vendor.test.",
            &format!("api A {A}\nnear A {NEAR}\nblackhole A {DROP}\n"),
        );
        // Reverse names: r2 is named after Beijing's airport, server "a" after Singapore's.
        let reverse_r2 = Zone::new(
            "100.51.198.in-addr.arpa.",
            "129 PTR ae-1.r02.pek01.example.net.\n",
        );
        let reverse_a = Zone::new(
            "113.0.203.in-addr.arpa.",
            "10 PTR web1.sin2.vendor-cdn.example.\n",
        );
        let knot = lab.spawn_knot("a", addr(A), &[zone, reverse_r2, reverse_a]);
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(
            &dir.path().join("lab.mmdb"),
            &[
                ("192.0.2.0/25", "IN"),
                ("198.51.100.128/25", "CN"),
                ("203.0.113.0/24", "SG"),
                ("2001:db8:1::/48", "IN"),
                ("2001:db8:2::/48", "CN"),
                ("2001:db8:a::/48", "SG"),
            ],
        );
        World {
            lab,
            _knot: knot,
            dir,
        }
    }

    fn policy(&self, name: &str, body: &str) -> PathBuf {
        let text = format!(
            "id: {name}\nresolvers: [\"{A}\"]\nrepeat: 1\ndns: {{ timeout_ms: 1000, tries: 2 }}\n\
             trace: {{ rounds: 2, timeout_ms: 500, max_hops: 6 }}\nregistry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n{body}",
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    /// Runs residency inside the client namespace, optionally as an unprivileged user.
    fn residency(&self, args: &[&str], unprivileged: bool) -> Output {
        self.lab
            .residency(self.dir.path(), unprivileged)
            .args(args)
            .output()
    }

    fn check(&self, policy: &Path) -> (i32, Value, String) {
        let out = self.residency(&["check", "--format", "json", path_str(policy)], false);
        parse(out)
    }
}

fn parse(out: Output) -> (i32, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): exit {:?}\n{}\n{stderr}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn address<'a>(doc: &'a Value, host: &str, ip: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["host"] == host)
        .and_then(|e| e["addresses"].as_array())
        .and_then(|a| a.iter().find(|a| a["ip"] == ip))
        .unwrap_or_else(|| panic!("no address {ip} for {host} in {doc:#}"))
}

fn reasons(v: &Value) -> String {
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_path_through_a_denied_country_is_a_transit_violation_naming_the_hop() {
    let world = World::start(common::netns::Lab::require(topology()));
    let policy = world.policy(
        "transit",
        &format!("allow: [SG, IN]\ndeny: [CN]\ntransit: {{ deny: [CN] }}\n{VANTAGE}\nendpoints:\n  - host: api.vendor.test\n"),
    );
    let (code, doc, stderr) = world.check(&policy);
    let a = address(&doc, "api.vendor.test", A);
    assert_eq!(code, 2, "{stderr}\n{a:#}");
    assert_eq!(a["verdict"], "violation");
    let why = reasons(a);
    assert!(
        why.contains(&format!(
            "the path crosses a transit-denied country: hop 2 ({R2}) in CN (per lab.mmdb)"
        )),
        "{why}"
    );
    // The path itself: r1, r2, then the server, each located, with RTTs from the real delays.
    let hops = a["path"]["hops"].as_array().expect("hops");
    let seen: Vec<(&str, &str)> = hops
        .iter()
        .map(|h| {
            (
                h["addr"].as_str().unwrap_or("*"),
                h["country"].as_str().unwrap_or("??"),
            )
        })
        .collect();
    assert_eq!(seen, [(R1, "IN"), (R2, "CN"), (A, "SG")], "{a:#}");
    let r2_rtt = hops[1]["best_rtt_ms"].as_f64().expect("r2 answered");
    assert!(r2_rtt >= 20.0, "a 10 ms link each way: {r2_rtt} ms");
    assert_eq!(a["path"]["reached"], true);
    let min = a["rtt"]["min_rtt_ms"]
        .as_f64()
        .expect("an RTT to the server");
    assert!(min >= 50.0, "10 + 15 ms each way: {min} ms");
    // 50 ms reaches Singapore from Delhi: the claim stands, only the transit rule is broken.
    assert!(a["evidence"][0]["refuted"].is_null(), "{a:#}");
    assert_eq!(a["country"], "SG");
    // A clean lab raises no alarm: every canary unanswered, the resolver's answers no sooner
    // than the path to it, and no sample discarded.
    for method in ["tcp", "dns", "icmp"] {
        assert_eq!(
            doc["integrity"][method]["status"], "clean",
            "{method}: {:#}",
            doc["integrity"]
        );
    }
    assert_eq!(
        doc["integrity"]["resolvers"][0]["status"], "clean",
        "{:#}",
        doc["integrity"]
    );
    assert!(a["path"]["untrusted"].is_null(), "{a:#}");
    for s in a["rtt"]["samples"].as_array().expect("samples") {
        assert!(s["untrusted"].is_null(), "{s:#}");
    }
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn an_impossible_database_claim_is_refuted_and_the_verdict_follows_physics() {
    let world = World::start(common::netns::Lab::require(topology()));
    // SG is allowed, and the database says SG; but the server answers in ~1 ms from Delhi.
    let policy = world.policy(
        "physics",
        &format!(
            "allow: [SG, US]\ndeny: [CN]\n{VANTAGE}\nendpoints:\n  - host: near.vendor.test\n"
        ),
    );
    let (code, doc, stderr) = world.check(&policy);
    let near = address(&doc, "near.vendor.test", NEAR);
    assert_eq!(code, 2, "{stderr}\n{near:#}");
    assert_eq!(near["verdict"], "violation");
    let min = near["rtt"]["min_rtt_ms"].as_f64().expect("an RTT");
    assert!((1.0..20.0).contains(&min), "0.5 ms each way: {min} ms");
    // The SG claim is kept as evidence, marked refuted with the numbers.
    let claim = &near["evidence"][0];
    assert_eq!(claim["country"], "SG");
    let refuted = claim["refuted"].as_str().expect("the SG claim is refuted");
    assert!(
        refuted.contains("SG is at least") && refuted.contains("allows at most"),
        "{refuted}"
    );
    assert_eq!(near["rtt"]["refuted"][0], refuted);
    // Only India is within reach, and India is not allowed.
    let reachable: Vec<&str> = near["rtt"]["reachable"]
        .as_array()
        .expect("reachable")
        .iter()
        .filter_map(|r| r["country"].as_str())
        .collect();
    assert_eq!(reachable, ["IN"], "{near:#}");
    assert_eq!(near["country"], "IN");
    let why = reasons(near);
    assert!(
        why.contains("where no country is allowed (only IN)"),
        "{why}"
    );
    assert!(why.contains("refuted by RTT physics"), "{why}");

    // With India allowed, the same measurements make it compliant, whatever the database said.
    let allowed = world.policy(
        "physics-in",
        &format!("allow: [IN]\n{VANTAGE}\nendpoints:\n  - host: near.vendor.test\n"),
    );
    let (code, doc, _) = world.check(&allowed);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        address(&doc, "near.vendor.test", NEAR)["verdict"],
        "compliant"
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn an_address_that_drops_every_probe_is_inconclusive() {
    let world = World::start(common::netns::Lab::require(topology()));
    let policy = world.policy(
        "silent",
        &format!("allow: [SG]\n{VANTAGE}\nendpoints:\n  - host: blackhole.vendor.test\n"),
    );
    let (code, doc, stderr) = world.check(&policy);
    let drop = address(&doc, "blackhole.vendor.test", DROP);
    assert_eq!(code, 1, "{stderr}\n{drop:#}");
    assert_eq!(
        drop["verdict"], "inconclusive",
        "the database says SG (allowed), but nothing answered"
    );
    assert_eq!(drop["path"]["reached"], false);
    assert!(drop["rtt"]["min_rtt_ms"].is_null());
    let methods: Vec<&str> = drop["rtt"]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["method"].as_str())
        .collect();
    assert_eq!(
        methods,
        ["trace", "tcp_connect:443"],
        "TCP was tried where ICMP got nothing"
    );
    assert!(reasons(drop).contains("answered no probe"), "{drop:#}");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn without_raw_socket_privilege_it_says_so_once_and_goes_on() {
    let world = World::start(common::netns::Lab::require(topology()));
    let policy = world.policy(
        "unprivileged",
        &format!(
            "allow: [SG, IN]\ndeny: [CN]\ntransit: {{ deny: [CN] }}\n{VANTAGE}\nendpoints:\n  - host: api.vendor.test\n  - host: near.vendor.test\n"
        ),
    );
    let out = world.residency(&["check", "--format", "json", path_str(&policy)], true);
    let (code, doc, stderr) = parse(out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr
            .matches("warning: traceroute is not possible here")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
    // The transit rule cannot be checked: inconclusive, not compliant.
    assert_eq!(code, 1, "{doc:#}");
    let a = address(&doc, "api.vendor.test", A);
    assert_eq!(a["path"]["status"], "not_measured");
    assert_eq!(a["verdict"], "inconclusive");
    assert!(reasons(a).contains("the path was not measured"), "{a:#}");
    // RTT still comes from TCP connects (no privilege needed): the server's closed port answers
    // with a reset, which is a round trip.
    assert!(
        a["rtt"]["min_rtt_ms"].as_f64().is_some_and(|m| m >= 30.0),
        "{a:#}"
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn locate_shows_every_piece_of_evidence_for_one_server() {
    let world = World::start(common::netns::Lab::require(topology()));
    let geo = world.dir.path().join("lab.mmdb");
    let out = world.residency(
        &[
            "locate",
            "near.vendor.test",
            "--no-registry",
            "--resolver",
            A,
            "--vantage",
            "IN,21.15,79.09",
            "--geo-db",
            path_str(&geo),
            "--rounds",
            "2",
            "--timeout-ms",
            "500",
            "--format",
            "json",
        ],
        false,
    );
    let (code, report, stderr) = parse(out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["resolutions"][0]["addresses"][0], NEAR);
    let near = &report["addresses"][0];
    assert_eq!(near["ip"], NEAR);
    assert_eq!(
        near["claimed"],
        serde_json::json!([]),
        "the SG claim is refuted"
    );
    assert_eq!(near["possible"], serde_json::json!(["IN"]));
    assert_eq!(near["path"]["hops"][0]["addr"], R1);
    assert_eq!(near["path"]["hops"][0]["country"], "IN");
    assert!(near["evidence"][0]["refuted"].as_str().is_some());

    let table = world.residency(
        &[
            "locate",
            NEAR,
            "--vantage",
            "IN,21.15,79.09",
            "--geo-db",
            path_str(&geo),
        ],
        false,
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("REFUTED: lab.mmdb: SG is at least"), "{text}");
    assert!(text.contains("physically possible: IN"), "{text}");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn tcp_traces_and_ipv6_paths_are_judged_the_same_way() {
    let world = World::start(common::netns::Lab::require(topology()));
    // TCP to the DNS port of server "a" (knotd listens there on IPv4; on IPv6 the closed port's
    // reset is the target's answer), through r2 in CN either way.
    let policy = world.policy(
        "tcp-v6",
        &format!(
            "allow: [SG, IN]\ndeny: [CN]\ntransit: {{ deny: [CN] }}\n{VANTAGE}\nendpoints:\n  - host: {A}\n  - host: {A_V6}\n"
        ),
    );
    let text = std::fs::read_to_string(&policy).expect("policy").replace(
        "trace: { rounds: 2",
        "trace: { protocol: tcp, port: 53, rounds: 2",
    );
    std::fs::write(&policy, text).expect("policy");
    let (code, doc, stderr) = world.check(&policy);
    assert_eq!(code, 2, "{stderr}\n{doc:#}");
    for (ip, r2) in [(A, R2), (A_V6, R2_V6)] {
        let a = address(&doc, ip, ip);
        assert_eq!(a["path"]["protocol"], "tcp");
        assert_eq!(a["path"]["port"], 53);
        assert_eq!(a["path"]["reached"], true, "{a:#}");
        let hops: Vec<&str> = a["path"]["hops"]
            .as_array()
            .expect("hops")
            .iter()
            .map(|h| h["addr"].as_str().unwrap_or("*"))
            .collect();
        assert_eq!(hops.get(1), Some(&r2), "{a:#}");
        assert!(reasons(a).contains(&format!("hop 2 ({r2}) in CN")), "{a:#}");
        assert_eq!(a["verdict"], "violation");
    }
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn ptr_hints_are_recorded_checked_against_physics_and_weighed() {
    let world = World::start(common::netns::Lab::require(topology()));
    let policy = world.policy(
        "ptr",
        &format!("allow: [SG, IN]\ndeny: [CN]\n{VANTAGE}\nendpoints:\n  - host: api.vendor.test\n"),
    );
    let (code, doc, stderr) = world.check(&policy);
    let a = address(&doc, "api.vendor.test", A);
    assert_eq!(code, 0, "{stderr}\n{a:#}");
    // The hop named after Beijing ("pek"): the hint is recorded, and refuted, because r2
    // answers in ~20 ms from Nagpur and Beijing is ~3,500 km away.
    let r2 = a["path"]["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .find(|h| h["addr"] == R2)
        .unwrap_or_else(|| panic!("r2 is on the path: {a:#}"));
    assert_eq!(
        r2["names"],
        serde_json::json!(["ae-1.r02.pek01.example.net"]),
        "{stderr}\n{a:#}"
    );
    let hint = r2["evidence"]
        .as_array()
        .expect("hop evidence")
        .iter()
        .find(|e| e["kind"] == "ptr_hint")
        .expect("a PTR hint for r2");
    assert_eq!(hint["country"], "CN");
    assert_eq!(hint["city"], "Beijing");
    assert!(
        hint["refuted"]
            .as_str()
            .is_some_and(|r| r.contains("says Beijing")),
        "{hint:#}"
    );
    // The server named after Singapore ("sin"): the hint survives (50 ms reaches Singapore)
    // and agrees with the database, two independent kinds: medium confidence.
    assert_eq!(
        a["names"],
        serde_json::json!(["web1.sin2.vendor-cdn.example"])
    );
    assert_eq!(a["country"], "SG");
    assert_eq!(a["confidence"], "medium", "{a:#}");
    let decided: Vec<&str> = a["decided_by"]
        .as_array()
        .expect("decided_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        decided.contains(&"lab.mmdb") && decided.contains(&"ptr"),
        "{decided:?}"
    );
}
