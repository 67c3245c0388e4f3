//! A network that lies: a transparent TCP proxy and a DNS takeover on the first router, in a
//! lab the test builds. The real binary runs in the client namespace; the router's nftables
//! `redirect` sends the client's TCP 443 (or DNS) to a listener (or a knotd) on the router
//! itself, as corporate proxies and ISPs do. Needs root: every test is `#[ignore]`d with that
//! reason.
//!
//! ```text
//! client ── r1 (192.0.2.1) ──30 ms── r2 (198.51.100.129) ─┬─ srv 203.0.113.200 (drops ICMP and UDP, TCP 443 open)
//!  (default route via r1)                                  └─ dns 203.0.113.53  (knotd, NSID "resolver-53")
//! ```
//!
//! The lab database says 203.0.113.128/25 is CN (so `srv` is claimed to be in Beijing) and the
//! rest IN. The vantage point is Nagpur (IN). The honest RTT to `srv` is about 60 ms, which keeps
//! Beijing (some 3,000 km away) within reach, so the CN claim stands: a violation. A proxy on r1
//! answers the handshake in a twentieth of a millisecond, which "allows" only India.

use crate::common;
use crate::common::cmd::path_str;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::netns::addrs::{R1, R2};
use common::netns::{Lab, LabBuilder, Server};
use serde_json::Value;

const SRV: &str = "203.0.113.200";
const DNS: &str = "203.0.113.53";
/// Where the interceptor's DNS says the vendor is: in India, allowed.
const FAKE: &str = "203.0.113.20";
const VANTAGE: &str = "vantage: { country: IN, lat: 21.15, lon: 79.09 }";
/// r1 sends the client's TCP 443 to its own stack, where a listener answers every handshake.
const TCP_PROXY: &str = "add table ip rsdproxy; \
     add chain ip rsdproxy pre { type nat hook prerouting priority -100; }; \
     add rule ip rsdproxy pre tcp dport 443 redirect";
/// r1 answers every DNS query passing through it (UDP and TCP) from its own knotd.
const DNS_TAKEOVER: &str = "add table ip rsddns; \
     add chain ip rsddns pre { type nat hook prerouting priority -100; }; \
     add rule ip rsddns pre meta l4proto { tcp, udp } th dport 53 redirect";

fn addr(literal: &str) -> IpAddr {
    literal.parse().expect("an address literal")
}

fn topology() -> LabBuilder {
    LabBuilder::new()
        .router("r1", &[R1], Duration::ZERO)
        .router("r2", &[R2], Duration::from_millis(30))
        .server(Server::new("srv", &[SRV]).tcp_only())
        .server(Server::new("dns", &[DNS]))
        .client_default_route()
}

struct World {
    lab: Lab,
    _knot: KnotServer,
    dir: tempfile::TempDir,
}

impl World {
    fn start(lab: Lab) -> World {
        let zone = Zone::new("vendor.test.", &format!("api A {SRV}\n"));
        let knot = lab.spawn_knot_named("dns", addr(DNS), &[zone], Some("resolver-53"));
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(
            &dir.path().join("lab.mmdb"),
            &[
                ("192.0.2.0/25", "IN"),
                ("198.51.100.128/25", "IN"),
                ("203.0.113.0/25", "IN"),
                ("203.0.113.128/25", "CN"),
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
            "id: {name}\nallow: [IN]\ndeny: [CN]\nresolvers: [\"{DNS}\"]\nrepeat: 1\n\
             dns: {{ timeout_ms: 1000, tries: 1 }}\n\
             trace: {{ rounds: 2, timeout_ms: 500, max_hops: 6 }}\nregistry: {{ enabled: false }}\n\
             geo:\n  databases: [{}]\n{VANTAGE}\n{body}",
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn residency(&self, args: &[&str], unprivileged: bool) -> Output {
        self.lab
            .residency(self.dir.path(), unprivileged)
            .args(args)
            .output()
    }

    fn check(&self, policy: &Path, unprivileged: bool) -> (i32, Value, String) {
        let out = self.residency(
            &["check", "--format", "json", path_str(policy)],
            unprivileged,
        );
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
}

fn endpoint<'a>(doc: &'a Value, host: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["host"] == host))
        .unwrap_or_else(|| panic!("no endpoint {host} in {doc:#}"))
}

fn first_address(doc: &Value, host: &str) -> Value {
    endpoint(doc, host)["addresses"][0].clone()
}

fn text_of(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn sample<'a>(address: &'a Value, method: &str) -> &'a Value {
    address["rtt"]["samples"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["method"] == method))
        .unwrap_or_else(|| panic!("no {method} sample in {address:#}"))
}

fn db_claim(address: &Value) -> &Value {
    address["evidence"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["source"] == "lab.mmdb"))
        .unwrap_or_else(|| panic!("no lab.mmdb evidence in {address:#}"))
}

fn proxy_on_r1(lab: &Lab) -> common::netns::TcpService {
    let listener = lab.listen_tcp("r1", SocketAddr::new(addr("0.0.0.0"), 443));
    lab.nft("r1", TCP_PROXY);
    listener
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_transparent_tcp_proxy_cannot_make_a_far_server_in_a_denied_country_compliant() {
    let world = World::start(common::netns::Lab::require(topology()));
    let _server = world.lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let policy = world.policy("proxied", &format!("endpoints:\n  - host: {SRV}\n"));

    // The honest network first: the handshake takes the real 60 ms, Beijing stays within
    // reach, the CN claim stands, and no canary is answered.
    let (code, doc, stderr) = world.check(&policy, false);
    let a = first_address(&doc, SRV);
    assert_eq!(code, 2, "{stderr}\n{a:#}");
    assert_eq!(a["verdict"], "violation", "{a:#}");
    for method in ["tcp", "dns", "icmp"] {
        assert_eq!(
            doc["integrity"][method]["status"], "clean",
            "{method}: {:#}",
            doc["integrity"]
        );
    }
    let honest = sample(&a, "tcp_connect:443");
    assert!(
        honest["min_rtt_ms"].as_f64().is_some_and(|ms| ms >= 60.0),
        "{honest:#}"
    );
    assert!(honest["untrusted"].is_null(), "{honest:#}");
    // Its SYN-ACK crossed r2 and r1: IP TTL 62, three hops.
    assert_eq!(honest["reply_ttl"], 62, "{honest:#}");
    assert_eq!(honest["hops_away"], 3, "{honest:#}");

    // Now r1 answers every handshake itself.
    let _proxy = proxy_on_r1(&world.lab);
    let (code, doc, stderr) = world.check(&policy, false);
    let a = first_address(&doc, SRV);
    assert_eq!(code, 2, "{stderr}\n{a:#}");
    assert_eq!(a["verdict"], "violation", "{a:#}");
    assert_eq!(a["country"], "CN", "{a:#}");
    // The database's claim is not refuted by the proxy's handshake.
    let claim = db_claim(&a);
    assert_eq!(claim["country"], "CN");
    assert!(claim["refuted"].is_null(), "{claim:#}");
    // The run says TCP is intercepted, with what answered and how fast.
    let tcp = &doc["integrity"]["tcp"];
    assert_eq!(tcp["status"], "intercepted", "{tcp:#}");
    let answer = &tcp["answers"][0];
    assert!(
        answer["probe"]
            .as_str()
            .is_some_and(|p| p.contains("198.18.0.1:443")),
        "{answer:#}"
    );
    assert!(
        answer["rtt_ms"].as_f64().is_some_and(|ms| ms < 20.0),
        "{answer:#}"
    );
    assert_eq!(doc["integrity"]["icmp"]["status"], "clean");
    // The proxy's handshake is kept, marked untrusted, and physics had nothing to work with.
    let fake = sample(&a, "tcp_connect:443");
    assert!(
        fake["min_rtt_ms"].as_f64().is_some_and(|ms| ms < 20.0),
        "{fake:#}"
    );
    assert!(
        fake["untrusted"]
            .as_str()
            .is_some_and(|w| w.contains("intercepted")),
        "{fake:#}"
    );
    // r1's own stack sent the SYN-ACK: IP TTL 64, one hop.
    assert_eq!(fake["reply_ttl"], 64, "{fake:#}");
    assert_eq!(fake["hops_away"], 1, "{fake:#}");
    assert!(a["rtt"]["min_rtt_ms"].is_null(), "{:#}", a["rtt"]);
    assert!(
        a["rtt"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("discarded as untrusted")),
        "{:#}",
        a["rtt"]
    );
    let why = text_of(&a["reasons"]);
    assert!(why.contains("discarded for physics"), "{why}");
    // No HTTPS probe is sent through an intercepting path: whatever answered would be the
    // proxy, so no certificate or edge header is taken from it.
    let http = &a["http"][0];
    assert!(
        http["failed"]
            .as_str()
            .is_some_and(|f| f.contains("TCP from this vantage is intercepted")),
        "{a:#}"
    );
    assert!(
        http["certificate"].is_null() && http["headers"].is_null(),
        "{http:#}"
    );
    assert!(
        !a["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e["kind"] == "cdn_edge"),
        "{a:#}"
    );

    // The table says so too.
    let out = world.residency(&["check", path_str(&policy)], false);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("tcp   INTERCEPTED"), "{table}");
    assert!(table.contains("UNTRUSTED tcp_connect:443"), "{table}");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn without_canaries_a_handshake_sooner_than_a_router_on_the_path_is_still_discarded() {
    let world = World::start(common::netns::Lab::require(topology()));
    let _server = world.lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let _proxy = proxy_on_r1(&world.lab);
    let policy = world.policy(
        "nocanary",
        &format!("integrity: {{ canaries: [] }}\nendpoints:\n  - host: {SRV}\n"),
    );
    let (code, doc, stderr) = world.check(&policy, false);
    let a = first_address(&doc, SRV);
    assert_eq!(code, 2, "{stderr}\n{a:#}");
    assert_eq!(a["verdict"], "violation", "{a:#}");
    assert!(db_claim(&a)["refuted"].is_null(), "{a:#}");
    assert_eq!(doc["integrity"]["tcp"]["status"], "untested");
    let fake = sample(&a, "tcp_connect:443");
    let why = fake["untrusted"].as_str().unwrap_or_default();
    // The rule and the numbers: sooner than r2, hop 2, on the path.
    assert!(
        why.contains(&format!("sooner than hop 2 ({R2})")) && why.contains("did not come from"),
        "{fake:#}"
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn where_the_rtt_cannot_tell_the_reply_ttl_gives_a_proxy_away() {
    // Every link without delay: the proxy's handshake is no faster than the server's would
    // be, so only the IP TTL (64: sent one hop away, before r2) shows who answered.
    let lab = common::netns::Lab::require(
        LabBuilder::new()
            .router("r1", &[R1], Duration::ZERO)
            .router("r2", &[R2], Duration::ZERO)
            .server(Server::new("srv", &[SRV]).tcp_only())
            .server(Server::new("dns", &[DNS]))
            .client_default_route(),
    );
    let world = World::start(lab);
    let _server = world.lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let _proxy = proxy_on_r1(&world.lab);
    let policy = world.policy(
        "ttl",
        &format!("integrity: {{ canaries: [] }}\nendpoints:\n  - host: {SRV}\n"),
    );
    let (code, doc, stderr) = world.check(&policy, false);
    let a = first_address(&doc, SRV);
    assert_eq!(code, 2, "{stderr}\n{a:#}");
    let fake = sample(&a, "tcp_connect:443");
    let why = fake["untrusted"].as_str().unwrap_or_default();
    assert!(
        why.contains("IP TTL 64") && why.contains(&format!("hop 2 ({R2})")),
        "{fake:#}"
    );
    assert!(db_claim(&a)["refuted"].is_null(), "{a:#}");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_dns_takeover_is_not_taken_for_the_resolvers_answer() {
    let world = World::start(common::netns::Lab::require(topology()));
    let _server = world.lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let policy = world.policy("dnsjack", "endpoints:\n  - host: api.vendor.test\n");

    // Honest: the resolver says the vendor is in CN, its NSID is recorded, its answers come no
    // sooner than the 60 ms path to it.
    let (code, doc, stderr) = world.check(&policy, false);
    let e = endpoint(&doc, "api.vendor.test");
    assert_eq!(code, 2, "{stderr}\n{e:#}");
    assert_eq!(e["verdict"], "violation", "{e:#}");
    assert_eq!(doc["integrity"]["dns"]["status"], "clean");
    let resolver = &doc["integrity"]["resolvers"][0];
    assert_eq!(resolver["status"], "clean", "{resolver:#}");
    assert_eq!(resolver["nsids"][0], "resolver-53", "{resolver:#}");
    assert_eq!(e["resolutions"][0]["nsid"], "resolver-53");
    assert_eq!(resolver["answer_ttl"], 62, "{resolver:#}");

    // r1 answers every DNS query passing through it, saying the vendor is in India.
    let fake_zone = Zone::new("vendor.test.", &format!("api A {FAKE}\n"));
    let _interceptor =
        world
            .lab
            .spawn_knot_named("r1", addr(R1), &[fake_zone], Some("interceptor-r1"));
    world.lab.nft("r1", DNS_TAKEOVER);
    let (code, doc, stderr) = world.check(&policy, false);
    let e = endpoint(&doc, "api.vendor.test");
    assert_eq!(code, 1, "{stderr}\n{e:#}");
    assert_eq!(e["verdict"], "inconclusive", "{e:#}");
    // The interceptor's answers are kept, marked untrusted, and not judged.
    let resolutions = e["resolutions"].as_array().expect("resolutions");
    assert!(!resolutions.is_empty());
    for r in resolutions {
        assert!(r["untrusted"].is_string(), "{r:#}");
        assert_eq!(r["nsid"], "interceptor-r1", "{r:#}");
    }
    assert!(
        e["addresses"].as_array().is_some_and(Vec::is_empty),
        "{e:#}"
    );
    let why = text_of(&e["reasons"]);
    assert!(
        why.contains("untrusted answers") && why.contains("DNS is intercepted"),
        "{why}"
    );
    let dns = &doc["integrity"]["dns"];
    assert_eq!(dns["status"], "intercepted", "{dns:#}");
    assert!(
        dns["answers"][0]["answer"]
            .as_str()
            .is_some_and(|a| a.contains("interceptor-r1")),
        "{dns:#}"
    );
    // And the resolver's answers came sooner than the path to it allows.
    let resolver = &doc["integrity"]["resolvers"][0];
    assert_eq!(resolver["status"], "intercepted", "{resolver:#}");
    assert!(
        resolver["reason"]
            .as_str()
            .is_some_and(|r| r.contains("something nearer answered")),
        "{resolver:#}"
    );
    assert_eq!(resolver["answer_ttl"], 64, "{resolver:#}");
    assert_eq!(resolver["answer_hops"], 1, "{resolver:#}");

    // Without canaries, the answer times alone give the takeover away.
    let quiet = world.policy(
        "dnsjack-nocanary",
        "integrity: { canaries: [] }\nendpoints:\n  - host: api.vendor.test\n",
    );
    let (code, doc, stderr) = world.check(&quiet, false);
    let e = endpoint(&doc, "api.vendor.test");
    assert_eq!(code, 1, "{stderr}\n{e:#}");
    assert_eq!(e["verdict"], "inconclusive", "{e:#}");
    assert_eq!(doc["integrity"]["resolvers"][0]["status"], "intercepted");
    assert!(text_of(&e["reasons"]).contains("are intercepted"), "{e:#}");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn unprivileged_runs_still_work_and_say_what_is_untested() {
    let world = World::start(common::netns::Lab::require(topology()));
    let _server = world.lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let policy = world.policy("nobody", &format!("endpoints:\n  - host: {SRV}\n"));
    let (code, doc, stderr) = world.check(&policy, true);
    assert_eq!(code, 2, "{stderr}\n{doc:#}");
    let integrity = &doc["integrity"];
    assert_eq!(integrity["tcp"]["status"], "clean", "{integrity:#}");
    assert_eq!(integrity["dns"]["status"], "clean", "{integrity:#}");
    assert_eq!(integrity["icmp"]["status"], "untested", "{integrity:#}");
    assert!(
        integrity["icmp"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("setcap cap_net_raw+ep")),
        "{integrity:#}"
    );
    assert_eq!(integrity["resolvers"][0]["status"], "untested");
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn doctor_reports_each_method_and_exits_by_whether_all_are_clean() {
    let world = World::start(common::netns::Lab::require(topology()));
    let doctor = |world: &World| {
        let out = world
            .lab
            .residency(world.dir.path(), false)
            .args([
                "doctor",
                "--resolver",
                DNS,
                "--timeout-ms",
                "500",
                "--format",
                "json",
            ])
            .output();
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), doc)
    };
    let (code, doc) = doctor(&world);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["privilege"]["raw_sockets"], true);
    assert_eq!(
        doc["integrity"]["resolvers"][0]["status"], "clean",
        "{doc:#}"
    );
    assert_eq!(doc["integrity"]["resolvers"][0]["nsids"][0], "resolver-53");
    assert!(doc["clock"]["utc"].is_string());

    let _proxy = proxy_on_r1(&world.lab);
    let (code, doc) = doctor(&world);
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(doc["integrity"]["tcp"]["status"], "intercepted", "{doc:#}");
}
