//! Three vantage points in one lab, their runs recorded in one history, then combined. Needs
//! root (network namespaces, raw sockets): every test is `#[ignore]`d with that reason.
//!
//! ```text
//! delhi ── r1 ──5 ms── r2 ┬─5 ms──── chennai (vantage, declared Chennai)
//! (client)  │             ├─25 ms─── sg (vantage, declared Singapore; holds 203.0.113.77 too)
//!           │             └─0.25 ms─ api 203.0.113.10 (no database knows it)
//!           └─0.5 ms── near 203.0.113.77 (the anycast address's site near Delhi)
//! ```
//!
//! The client is the Delhi vantage; `chennai` and `sg` are hosts of the lab that run residency
//! too (delays are one way). 203.0.113.77 is anycast: Delhi reaches the copy behind r1 in about
//! 1 ms, Chennai the same copy in about 21 ms, Singapore its own copy at once. 203.0.113.10
//! answers Delhi and Chennai in about 10.5 ms each: either disk alone (about 1,100 km) reaches
//! beyond India, the two together only India; Singapore's (about 5,100 km) holds both. The
//! delays are real (delay links), so every RTT here is measured, not given.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common;
use crate::common::cmd::{Residency, path_str};
use crate::common::mmdb::write_country_db;
use crate::common::netns::{Lab, LabBuilder, Server};

const ANYCAST: &str = "203.0.113.77";
const API: &str = "203.0.113.10";
const R1: &str = "192.0.2.1";

const DELHI: &str = "IN,28.61,77.21";
const CHENNAI: &str = "IN,13.08,80.27";
const SINGAPORE: &str = "SG,1.35,103.82";

fn topology() -> LabBuilder {
    LabBuilder::new()
        .router("r1", &[R1], Duration::ZERO)
        .router("r2", &["192.0.2.2"], Duration::from_millis(5))
        .server(
            Server::new("near", &[ANYCAST])
                .behind("r1")
                .delay(Duration::from_micros(500)),
        )
        .server(Server::new("chennai", &["198.51.100.30"]).delay(Duration::from_millis(5)))
        .server(Server::new("sg", &["198.51.100.40"]).delay(Duration::from_millis(25)))
        .server(Server::new("api", &[API]).delay(Duration::from_micros(250)))
}

fn policy(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "id: lab\nallow: [IN]\nresolvers: [\"{R1}:53\"]\nrepeat: 1\ntrace: {{ rounds: 3, timeout_ms: 500, max_hops: 6 }}\n\
         http: {{ enabled: false }}\nregistry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n\
         endpoints:\n  - host: {ANYCAST}\n    purpose: anycast front\n  - host: {API}\n    purpose: unlisted api\n",
        dir.join("lab.mmdb").display()
    );
    let path = dir.join("lab.yaml");
    std::fs::write(&path, text).expect("policy");
    path
}

/// One vantage's check, recorded in the shared history.
fn check(lab: &Lab, node: &str, dir: &Path, vantage: &str, label: &str) -> Value {
    let policy = dir.join("lab.yaml");
    let out = Residency::through(dir, &lab.prefix(node))
        .args([
            "check",
            path_str(&policy),
            "--vantage",
            vantage,
            "--vantage-label",
            label,
            "--format",
            "json",
        ])
        .output();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{label}: not JSON ({e}): exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn address<'a>(doc: &'a Value, ip: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
        .find(|a| a["ip"] == ip)
        .unwrap_or_else(|| panic!("no address {ip} in {doc:#}"))
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn three_vantages_find_two_anycast_sites_and_multilaterate_an_unlisted_address() {
    let lab = Lab::require(topology());
    // The Singapore host holds a copy of the anycast address on its own loopback.
    let out = lab
        .exec(
            "sg",
            "ip",
            ["addr", "add", &format!("{ANYCAST}/32"), "dev", "lo"],
        )
        .output()
        .expect("ip addr add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The vantage hosts speak from their own addresses, which every router can route back to
    // (their link addresses are known only to the router next to them).
    for (node, own) in [("chennai", "198.51.100.30"), ("sg", "198.51.100.40")] {
        let out = lab
            .exec(node, "ip", ["-4", "route", "show", "default"])
            .output()
            .expect("ip route");
        let default = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut args: Vec<&str> = vec!["route", "replace"];
        args.extend(default.split_whitespace());
        args.extend(["src", own]);
        let out = lab
            .exec(node, "ip", &args)
            .output()
            .expect("ip route replace");
        assert!(
            out.status.success(),
            "{node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The database knows the router and nothing about either target.
    write_country_db(&dir.path().join("lab.mmdb"), &[("192.0.2.0/25", "IN")]);
    policy(dir.path());

    let delhi = check(&lab, common::netns::CLIENT, dir.path(), DELHI, "delhi");
    let chennai = check(&lab, "chennai", dir.path(), CHENNAI, "chennai");
    let singapore = check(&lab, "sg", dir.path(), SINGAPORE, "singapore");

    // Alone: Delhi finds the anycast address in India (its copy is 1 ms away) and cannot
    // place the API; Chennai and Singapore cannot place it either.
    assert_eq!(
        address(&delhi, ANYCAST)["verdict"],
        "compliant",
        "{:#}",
        address(&delhi, ANYCAST)
    );
    for (name, doc) in [
        ("delhi", &delhi),
        ("chennai", &chennai),
        ("singapore", &singapore),
    ] {
        let api = address(doc, API);
        assert_eq!(api["verdict"], "inconclusive", "{name}: {api:#}");
        let ms = api["rtt"]["min_rtt_ms"].as_f64().expect("an RTT");
        let floor = if name == "singapore" { 50.0 } else { 10.0 };
        assert!(ms >= floor, "{name}: {ms} ms is below the lab's {floor} ms");
    }

    let out = Residency::new(dir.path())
        .args(["combine", "lab", "--window", "1h", "--format", "json"])
        .output();
    let combined: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let labels: Vec<&str> = combined["vantages"]
        .as_array()
        .expect("vantages")
        .iter()
        .filter_map(|v| v["label"].as_str())
        .collect();
    assert_eq!(labels, ["chennai", "delhi", "singapore"]);

    // The anycast address: two disjoint disks, two sites, one outside India.
    let any = address(&combined, ANYCAST);
    assert_eq!(any["anycast"], true, "{any:#}");
    let sites = any["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 2, "{any:#}");
    let placed: Vec<&str> = sites
        .iter()
        .filter_map(|s| s["placed_by"].as_str())
        .collect();
    assert_eq!(placed, ["singapore", "delhi"], "smallest disk first");
    assert_eq!(sites[1]["country"], "IN");
    assert!(
        sites[0]["countries"]
            .as_array()
            .is_some_and(|c| c.contains(&Value::from("SG")))
    );
    assert_eq!(any["verdict"], "violation", "{any:#}");
    // Catchments: Delhi reaches the Indian site, Singapore its own.
    let reach = |label: &str| -> Vec<u64> {
        any["measured_from"]
            .as_array()
            .expect("per vantage")
            .iter()
            .find(|m| m["vantage"] == label)
            .and_then(|m| m["sites"].as_array())
            .map(|s| s.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    assert_eq!(reach("delhi"), [1]);
    assert_eq!(reach("singapore"), [0]);
    // Chennai's 21 ms disk overlaps only the Delhi site's: that is where its users go.
    assert_eq!(reach("chennai"), [1]);

    // The unlisted API: the disks from Delhi and Chennai overlap only in India.
    let api = address(&combined, API);
    assert_eq!(api["anycast"], false, "{api:#}");
    assert_eq!(api["intersection"], serde_json::json!(["IN"]), "{api:#}");
    assert_eq!(api["verdict"], "compliant", "{api:#}");
    assert!(
        api["decided_by"].to_string().contains("multilateration"),
        "{api:#}"
    );

    // Recorded and chained; and reported with the vantages on the map.
    crate::common::cmd::assert_chain_intact(dir.path(), "lab");
    let id = combined["history"]["run_id"].to_string();
    let report = Residency::new(dir.path())
        .args(["report", "lab", "--run", &id, "--out", "lab.html"])
        .output();
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let html = std::fs::read_to_string(dir.path().join("lab.html")).expect("report");
    for label in ["delhi", "chennai", "singapore"] {
        assert!(
            html.contains(&format!("vantage point {label}")),
            "{label} on the map"
        );
    }
    assert!(
        html.contains(&format!("{API} from chennai")),
        "chennai's disk for the API"
    );
    // How combining changed the verdicts, for the record (shown with --nocapture).
    eprintln!(
        "address          delhi                chennai              singapore            combined"
    );
    for ip in [ANYCAST, API] {
        let cell = |doc: &Value| {
            let a = address(doc, ip);
            format!(
                "{} {:.1} ms",
                a["verdict"].as_str().unwrap_or("?"),
                a["rtt"]["min_rtt_ms"].as_f64().unwrap_or(f64::NAN)
            )
        };
        let c = address(&combined, ip);
        eprintln!(
            "{ip:<16} {:<20} {:<20} {:<20} {} ({})",
            cell(&delhi),
            cell(&chennai),
            cell(&singapore),
            c["verdict"].as_str().unwrap_or("?"),
            c["decided_by"][0].as_str().unwrap_or("")
        );
    }
    let _: IpAddr = ANYCAST.parse().expect("address");
}
