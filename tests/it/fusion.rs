//! Fusion end to end on loopback: a registry (real HTTP RDAP server started here) and a
//! database both say India, the reverse DNS name says Singapore, and the server answers in a
//! fraction of a millisecond from a vantage point declared in Singapore. Physics refutes India;
//! Singapore wins, and the run says which evidence decided it.
//!
//! Traffic stays on 127.0.0.0/8: the "server" is 127.0.0.77, and WHOIS (asked only if RDAP
//! failed) points at a closed loopback port. Without raw-socket privilege the
//! RTT comes from TCP connects (a refused connection is a round trip), so this runs unprivileged
//! too.

use crate::common;
use crate::common::cmd::Residency;
use crate::common::cmd::path_str;

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::registry::{HttpServer, Reply};
use serde_json::Value;

const SERVER: &str = "127.0.0.77";

fn rdap() -> HttpServer {
    HttpServer::start(|request| {
        if request.path != format!("/ip/{SERVER}") {
            return Reply::status(404);
        }
        let base = &request.base;
        Reply::json(
            serde_json::json!({
                "objectClassName": "ip network",
                "handle": "NET-LAB-77",
                "startAddress": "127.0.0.0",
                "endAddress": "127.0.0.255",
                "name": "LAB-MUMBAI",
                "country": "IN",
                "entities": [{
                    "objectClassName": "entity",
                    "handle": "ORG-LAB",
                    "roles": ["registrant"],
                    "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Mumbai Pvt Ltd"], ["adr", {"cc": "IN"}, "text", ["", "", "", "", "", "", ""]]]],
                }],
                "links": [{ "rel": "self", "href": format!("{base}ip/127.0.0.0") }],
            })
            .to_string(),
        )
    })
}

#[test]
fn physics_and_a_ptr_hint_overrule_registry_and_database_with_reasons() {
    let knot = KnotServer::start(
        &[
            Zone::new("vendor.test.", &format!("sg A {SERVER}\n")),
            Zone::new(
                "0.0.127.in-addr.arpa.",
                "77 PTR edge-1.sin3.vendor.example.\n",
            ),
        ],
        None,
    );
    let rdap = rdap();
    let dir = tempfile::tempdir().expect("temp dir");
    let mmdb = dir.path().join("lab.mmdb");
    write_country_db(&mmdb, &[("127.0.0.0/8", "IN")]);
    let policy = dir.path().join("fusion.yaml");
    std::fs::write(
        &policy,
        format!(
            "id: fusion\nallow: [SG]\ndeny: [CN]\nresolvers: [\"{}\"]\nrepeat: 1\n\
             vantage: {{ country: SG, lat: 1.29, lon: 103.85 }}\n\
             trace: {{ rounds: 2, timeout_ms: 300, max_hops: 4 }}\n\
             integrity: {{ canaries: [] }}\n\
             registry: {{ rdap: \"{}\", whois: \"127.0.0.1:9\" }}\ngeo:\n  databases: [{}]\n\
             endpoints:\n  - host: sg.vendor.test\n",
            knot.addr(),
            rdap.base_url(),
            mmdb.display()
        ),
    )
    .expect("write policy");
    let out = Residency::new(dir.path())
        .args(["check", "--format", "json", "--db"])
        .arg(dir.path().join("h.sqlite"))
        .arg(path_str(&policy))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    let a = &doc["endpoints"][0]["addresses"][0];
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{a:#}");
    assert_eq!(a["ip"], SERVER);
    assert_eq!(a["verdict"], "compliant");
    assert_eq!(a["country"], "SG", "{a:#}");

    // Every source is shown; India (database and registry) is refuted with the numbers.
    let by_kind = |kind: &str| -> &Value {
        a["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} evidence: {a:#}"))
    };
    for kind in ["geo_database", "registry"] {
        let e = by_kind(kind);
        assert_eq!(e["country"], "IN", "{e:#}");
        let why = e["refuted"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} not refuted: {e:#}"));
        assert!(
            why.contains("IN is at least") && why.contains("allows at most"),
            "{why}"
        );
    }
    let registry = by_kind("registry");
    assert!(
        registry["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("rdap:127.0.0.1:"))
    );
    assert_eq!(a["registry"]["holder"], "Example Mumbai Pvt Ltd");
    assert_eq!(a["registry"]["handle"], "NET-LAB-77");
    let ptr = by_kind("ptr_hint");
    assert_eq!(
        (&ptr["country"], &ptr["city"]),
        (&Value::from("SG"), &Value::from("Singapore"))
    );
    assert!(ptr["refuted"].is_null());
    assert_eq!(
        a["names"],
        serde_json::json!(["edge-1.sin3.vendor.example"])
    );

    // Which evidence decided it, and how sure.
    let decided: Vec<&str> = a["decided_by"]
        .as_array()
        .expect("decided_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(decided.contains(&"ptr"), "{decided:?}");
    assert!(
        decided.iter().any(|d| d.starts_with("rtt physics")),
        "{decided:?}"
    );
    assert!(
        a["conflicts"].as_array().is_some_and(Vec::is_empty),
        "refuted claims are no conflict"
    );
    let reasons: Vec<&str> = a["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("refuted by RTT physics")),
        "{reasons:?}"
    );
    assert!(rdap.requests() >= 1);

    // The answer was cached on disk, and `clear-cache` forgets it.
    let cached = dir.path().join("cache/residency/registry/rdap");
    assert!(
        std::fs::read_dir(&cached).is_ok_and(|mut d| d.next().is_some()),
        "{cached:?}"
    );
    let out = Residency::new(dir.path())
        .args(["clear-cache", "rdap"])
        .output();
    assert_eq!(out.status.code(), Some(0));
    assert!(!cached.exists(), "the RDAP cache is gone");
}
