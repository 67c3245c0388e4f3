//! `residency check` end to end: the real binary, a real DNS server (knotd on loopback, with
//! ECS answers from its geoip module), `.mmdb` fixtures built here, and the SQLite history.
//!
//! The lab's addresses are documentation ranges that exist only as DNS answers here, so the
//! policies in this file disable tracing and RTT probes (`trace: { enabled: false }`): the
//! network-namespace lab is where paths are measured.
//!
//! Lab geography (fixture database `lab.mmdb`): 192.0.2.0/25 IN, 192.0.2.128/25 SG,
//! 198.51.100.0/24 CN, 203.0.113.0/24 US, 2001:db8::/32 SG; 233.252.0.0/24 is in no record.

use crate::common;
use crate::common::cmd::Residency;
use crate::common::cmd::path_str;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dns::{GeoConfig, KnotServer, SilentServer, Zone};
use common::mmdb::write_country_db;
use serde_json::Value;

const ZONE: &str = "\
api 300 A 192.0.2.10
api 300 A 192.0.2.200
api 300 AAAA 2001:db8::10
tracker 300 A 198.51.100.7
nowhere 300 A 233.252.0.7
cdn 120 CNAME edge
edge 60 CNAME beijing-edge
beijing-edge 30 A 198.51.100.9
us 300 A 203.0.113.5
geo 300 A 192.0.2.61
geo 300 AAAA 2001:db8::61
";

struct Lab {
    dir: tempfile::TempDir,
    knot: KnotServer,
}

impl Lab {
    fn start() -> Lab {
        let geo = GeoConfig::new(20)
            // Users in "India" (10.1/16) are sent to India, users in "China" (10.2/16) to China.
            .rule("geo.vendor.test", "10.1.0.0/16", &["192.0.2.60"], &[])
            .rule("geo.vendor.test", "10.2.0.0/16", &["198.51.100.60"], &[]);
        let knot = KnotServer::start(&[Zone::new("vendor.test.", ZONE)], Some(&geo));
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(
            &dir.path().join("lab.mmdb"),
            &[
                ("192.0.2.0/25", "IN"),
                ("192.0.2.128/25", "SG"),
                ("198.51.100.0/24", "CN"),
                ("203.0.113.0/24", "US"),
                ("2001:db8::/32", "SG"),
            ],
        );
        Lab { dir, knot }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("history.sqlite")
    }

    /// Writes a policy asking the lab's server, located with the lab's database.
    fn policy(&self, name: &str, body: &str) -> PathBuf {
        self.policy_with(name, body, &[self.knot.addr()])
    }

    fn policy_with(&self, name: &str, body: &str, resolvers: &[SocketAddr]) -> PathBuf {
        let resolvers: Vec<String> = resolvers.iter().map(|r| format!("\"{r}\"")).collect();
        let text = format!(
            "id: {name}\nallow: [IN, US, SG]\ndeny: [CN]\nresolvers: [{}]\nrepeat: 2\n\
             dns: {{ timeout_ms: 400, tries: 1 }}\ntrace: {{ enabled: false }}\nregistry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n{body}",
            resolvers.join(", "),
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        residency(self.dir.path(), &self.db(), args)
    }

    /// `check --format json` on one policy: exit code and the document.
    fn check(&self, policy: &Path) -> (i32, Value) {
        let out = self.run(&["check", "--format", "json", path_str(policy)]);
        let code = out.status.code().unwrap_or(-1);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {code}\nstdout:\n{}\nstderr:\n{}\nknot log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.knot.log()
            )
        });
        (code, doc)
    }
}

fn residency(cwd: &Path, db: &Path, args: &[&str]) -> Output {
    Residency::new(cwd).db(db).args(args).output()
}

fn endpoint<'a>(doc: &'a Value, host: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .expect("endpoints array")
        .iter()
        .find(|e| e["host"] == host)
        .unwrap_or_else(|| panic!("no endpoint {host} in {doc:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn ips(endpoint: &Value) -> Vec<String> {
    endpoint["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a["ip"].as_str().expect("ip").to_string())
        .collect()
}

#[test]
fn compliant_vendor_with_full_evidence_and_documented_json() {
    let lab = Lab::start();
    let policy = lab.policy(
        "good-vendor",
        "endpoints:\n  - host: api.vendor.test\n    purpose: account\n  - host: 203.0.113.9\n",
    );
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["verdict"], "compliant");
    assert_eq!(doc["policy"]["id"], "good-vendor");
    for key in ["started_at", "finished_at"] {
        let t = doc[key].as_str().expect("timestamp");
        assert!(
            t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
            "{t}"
        );
    }

    let api = endpoint(&doc, "api.vendor.test");
    assert_eq!(api["verdict"], "compliant");
    assert_eq!(api["purpose"], "account");
    // 1 resolver × (no subnet) × {A, AAAA} × repeat 2.
    let resolutions = api["resolutions"].as_array().expect("resolutions");
    assert_eq!(resolutions.len(), 4);
    for r in resolutions {
        assert_eq!(r["resolver"], lab.knot.addr().to_string());
        assert_eq!(r["rcode"], "NOERROR");
        assert_eq!(r["ttl"], 300);
        assert!(r["client_subnet"].is_null());
        assert_eq!(r["cname_chain"], serde_json::json!([]));
    }
    assert_eq!(ips(api), ["192.0.2.10", "192.0.2.200", "2001:db8::10"]);
    let countries: Vec<&str> = api["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a["country"].as_str().expect("located"))
        .collect();
    assert_eq!(countries, ["IN", "SG", "SG"]);
    let first = &api["addresses"][0];
    assert_eq!(first["seen"], 2, "seen by both repeats");
    assert_eq!(first["evidence"][0]["source"], "lab.mmdb");
    assert_eq!(first["evidence"][0]["country"], "IN");
    assert!(
        first["evidence"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("IN")
    );
    assert!(strings(&first["reasons"])[0].contains("allowed country IN"));

    let literal = endpoint(&doc, "203.0.113.9");
    assert_eq!(literal["verdict"], "compliant");
    assert_eq!(literal["resolutions"], serde_json::json!([]));
    assert_eq!(literal["addresses"][0]["country"], "US");

    // The run is in the history, and the chain verifies.
    let run_id = doc["history"]["run_id"].as_i64().expect("run id");
    let listed = lab.run(&["history", "--format", "json"]);
    let runs: Value = serde_json::from_slice(&listed.stdout).expect("history json");
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["id"], run_id);
    assert_eq!(runs[0]["verdict"], "compliant");
    assert_eq!(runs[0]["hash"], doc["history"]["hash"]);
    let shown = lab.run(&["show", &run_id.to_string(), "--format", "json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("show json");
    assert_eq!(shown["endpoints"], doc["endpoints"]);
    let verify = lab.run(&["history", "verify"]);
    assert_eq!(verify.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("good-vendor: intact, 1 runs"));
}

#[test]
fn denied_country_is_a_violation_with_reasons_and_exit_2() {
    let lab = Lab::start();
    let policy = lab.policy(
        "bad-vendor",
        "endpoints:\n  - host: api.vendor.test\n  - host: tracker.vendor.test\n",
    );
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 2);
    assert_eq!(doc["verdict"], "violation");
    assert_eq!(endpoint(&doc, "api.vendor.test")["verdict"], "compliant");
    let tracker = endpoint(&doc, "tracker.vendor.test");
    assert_eq!(tracker["verdict"], "violation");
    let address = &tracker["addresses"][0];
    assert_eq!(address["ip"], "198.51.100.7");
    assert_eq!(address["country"], "CN");
    assert_eq!(address["verdict"], "violation");
    assert!(
        strings(&address["reasons"])[0].contains("denied country: CN (per lab.mmdb)"),
        "{address:#}"
    );
    assert_eq!(doc["summary"]["violation"], 1);
    assert_eq!(doc["summary"]["compliant"], 1);

    // The table names the violating endpoint and address too.
    let table = lab.run(&["check", path_str(&policy)]);
    assert_eq!(table.status.code(), Some(2));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("VIOLATION     tracker.vendor.test"), "{text}");
    assert!(text.contains("198.51.100.7"), "{text}");
}

#[test]
fn address_no_source_can_place_is_inconclusive() {
    let lab = Lab::start();
    let policy = lab.policy("unknown", "endpoints:\n  - host: nowhere.vendor.test\n");
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 1);
    let ep = endpoint(&doc, "nowhere.vendor.test");
    assert_eq!(ep["verdict"], "inconclusive");
    let address = &ep["addresses"][0];
    assert!(address["country"].is_null());
    assert!(address["evidence"][0]["country"].is_null());
    assert!(strings(&address["reasons"])[0].contains("its country is unknown"));
}

#[test]
fn nxdomain_is_inconclusive_never_compliant() {
    let lab = Lab::start();
    let policy = lab.policy("gone", "endpoints:\n  - host: gone.vendor.test\n");
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 1);
    let ep = endpoint(&doc, "gone.vendor.test");
    assert_eq!(ep["verdict"], "inconclusive");
    assert!(
        ep["resolutions"]
            .as_array()
            .expect("resolutions")
            .iter()
            .all(|r| r["rcode"] == "NXDOMAIN" && r["outcome"] == "nx_domain")
    );
    assert!(strings(&ep["reasons"])[0].contains("NXDOMAIN 4×"), "{ep:#}");
}

#[test]
fn a_resolver_that_times_out_is_recorded_and_keeps_the_endpoint_from_compliant() {
    let lab = Lab::start();
    let silent = SilentServer::start();
    let policy = lab.policy_with(
        "half-measured",
        "endpoints:\n  - host: api.vendor.test\n",
        &[lab.knot.addr(), silent.addr()],
    );
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 1, "{doc:#}");
    let ep = endpoint(&doc, "api.vendor.test");
    assert_eq!(ep["verdict"], "inconclusive");
    let timeouts: Vec<&Value> = ep["resolutions"]
        .as_array()
        .expect("resolutions")
        .iter()
        .filter(|r| r["outcome"] == "timeout")
        .collect();
    assert_eq!(
        timeouts.len(),
        4,
        "A and AAAA, 2 repeats, to the silent resolver"
    );
    assert!(
        timeouts
            .iter()
            .all(|r| r["resolver"] == silent.addr().to_string())
    );
    assert_eq!(silent.received(), 4, "each repeat was really sent");
    let reasons = strings(&ep["reasons"]).join("\n");
    assert!(
        reasons.contains(&format!("timeout from {} (4×)", silent.addr())),
        "{reasons}"
    );
    // The addresses the working resolver gave are still located and judged.
    assert_eq!(ips(ep), ["192.0.2.10", "192.0.2.200", "2001:db8::10"]);

    // Only the silent resolver: no address at all, inconclusive, and no hang.
    let only_silent = lab.policy_with(
        "offline",
        "endpoints:\n  - host: api.vendor.test\n",
        &[silent.addr()],
    );
    let (code, doc) = lab.check(&only_silent);
    assert_eq!(code, 1);
    let reasons = strings(&endpoint(&doc, "api.vendor.test")["reasons"]).join("\n");
    assert!(
        reasons.contains("resolved to no address in 4 queries"),
        "{reasons}"
    );
}

#[test]
fn cname_chain_ending_in_a_denied_country_is_recorded_and_a_violation() {
    let lab = Lab::start();
    let policy = lab.policy("cdn", "endpoints:\n  - host: cdn.vendor.test\n");
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 2);
    let ep = endpoint(&doc, "cdn.vendor.test");
    assert_eq!(ep["verdict"], "violation");
    let a = ep["resolutions"]
        .as_array()
        .expect("resolutions")
        .iter()
        .find(|r| r["record_type"] == "A")
        .expect("an A resolution");
    assert_eq!(
        a["cname_chain"],
        serde_json::json!([
            {"name": "cdn.vendor.test", "target": "edge.vendor.test", "ttl": 120},
            {"name": "edge.vendor.test", "target": "beijing-edge.vendor.test", "ttl": 60},
        ])
    );
    assert_eq!(a["addresses"], serde_json::json!(["198.51.100.9"]));
    assert_eq!(a["ttl"], 30);
    assert_eq!(ep["addresses"][0]["country"], "CN");

    let table = lab.run(&["check", path_str(&policy)]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("CNAME cdn.vendor.test -> edge.vendor.test -> beijing-edge.vendor.test"),
        "{text}"
    );
}

#[test]
fn client_subnets_get_different_answers_and_both_are_recorded() {
    let lab = Lab::start();
    let policy = lab.policy(
        "by-subnet",
        "client_subnets: [10.1.0.0/16, 10.2.0.0/16]\nendpoints:\n  - host: geo.vendor.test\n",
    );
    let (code, doc) = lab.check(&policy);
    let ep = endpoint(&doc, "geo.vendor.test");
    let a_for = |subnet: Option<&str>| -> Vec<&Value> {
        ep["resolutions"]
            .as_array()
            .expect("resolutions")
            .iter()
            .filter(|r| r["record_type"] == "A" && r["client_subnet"].as_str() == subnet)
            .collect()
    };
    // Three views (no ECS, India, China), each asked `repeat` times.
    for (subnet, expected) in [
        (None, "192.0.2.61"),
        (Some("10.1.0.0/16"), "192.0.2.60"),
        (Some("10.2.0.0/16"), "198.51.100.60"),
    ] {
        let answers = a_for(subnet);
        assert_eq!(answers.len(), 2, "{subnet:?}");
        for r in answers {
            assert_eq!(
                r["addresses"],
                serde_json::json!([expected]),
                "{subnet:?}: {r:#}"
            );
            if subnet.is_some() {
                assert_eq!(r["scope_prefix"], 16, "{r:#}");
            } else {
                assert!(r["scope_prefix"].is_null());
            }
        }
    }
    // The China-only answer is located and makes the endpoint a violation.
    let china = ep["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .find(|a| a["ip"] == "198.51.100.60")
        .expect("the ECS-only address is listed");
    assert_eq!(china["country"], "CN");
    assert!(
        strings(&china["via"])[0].ends_with("ecs=10.2.0.0/16"),
        "{china:#}"
    );
    assert_eq!(ep["verdict"], "violation");
    assert_eq!(code, 2);
}

#[test]
fn databases_disagreeing_across_the_policy_line_are_inconclusive_and_both_shown() {
    let lab = Lab::start();
    let second = lab.dir.path().join("second.mmdb");
    write_country_db(&second, &[("203.0.113.0/24", "CN")]);
    let policy = lab.policy("disagree", "endpoints:\n  - host: us.vendor.test\n");
    let text = std::fs::read_to_string(&policy).expect("policy");
    let text = text.replace(
        "databases: [",
        &format!("databases: [{}, ", second.display()),
    );
    std::fs::write(&policy, text).expect("rewrite policy");
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 1);
    let address = &endpoint(&doc, "us.vendor.test")["addresses"][0];
    assert!(address["country"].is_null());
    assert_eq!(address["countries"], serde_json::json!(["CN", "US"]));
    let evidence: Vec<(&str, &str)> = address["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter(|e| e["kind"] == "geo_database")
        .map(|e| {
            (
                e["source"].as_str().expect("source"),
                e["country"].as_str().expect("country"),
            )
        })
        .collect();
    assert_eq!(evidence, [("second.mmdb", "CN"), ("lab.mmdb", "US")]);
    // The cloud ranges were asked too, and list no documentation address.
    assert!(
        address["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e["source"] == "cloud-ranges" && e["country"].is_null()),
        "{}",
        address["evidence"]
    );
    assert!(strings(&address["reasons"])[0].contains("sources disagree across the policy line"));
}

#[test]
fn the_shipped_example_gives_verdicts_offline_without_hanging() {
    // Offline: the only resolver never answers. Literal addresses are still located with the
    // shipped database; the host name is inconclusive; 114.114.114.114 (CN) is a violation.
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = residency(
        root,
        &dir.path().join("h.sqlite"),
        &[
            "check",
            "policies/example.yaml",
            // Tracing would probe the public addresses: tests talk to loopback only.
            "--no-trace",
            "--no-registry",
            "--resolver",
            &silent.addr().to_string(),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(endpoint(&doc, "8.8.8.8")["addresses"][0]["country"], "US");
    assert_eq!(endpoint(&doc, "8.8.8.8")["verdict"], "compliant");
    assert_eq!(
        endpoint(&doc, "8.8.8.8")["addresses"][0]["evidence"][0]["source"],
        "geo-whois-asn-country.mmdb"
    );
    assert_eq!(endpoint(&doc, "114.114.114.114")["verdict"], "violation");
    assert_eq!(endpoint(&doc, "www.ripe.net")["verdict"], "inconclusive");
    assert!(silent.received() > 0);
}

/// `residency show 1 | head -1`: the reader is gone before the first write. Every command ends
/// quietly with status 0 (no panic, no message), and what it measured is still recorded.
#[test]
fn a_closed_stdout_ends_quietly_with_status_0() {
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = dir.path().join("h.sqlite");
    let resolver = silent.addr().to_string();
    let check = [
        "check",
        "policies/example.yaml",
        "--no-trace",
        "--no-registry",
        "--resolver",
        &resolver,
    ];
    let closed = |args: &[&str]| {
        let mut child = Residency::new(dir.path())
            .current_dir(root)
            .db(&db)
            .args(args)
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn residency");
        drop(child.stdout.take());
        let out = common::cmd::wait_bounded(child, common::cmd::DEADLINE);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    // Open: the example is a violation (exit 2), shown in full.
    let out = residency(root, &db, &check);
    assert_eq!(out.status.code(), Some(2));
    for args in [
        &check[..],
        &["show", "1"],
        &["show", "1", "--format", "json"],
        &["history"],
        &[
            "check",
            "policies/example.yaml",
            "--no-trace",
            "--no-registry",
            "--resolver",
            &resolver,
            "--format",
            "json",
        ],
    ] {
        let (code, stderr) = closed(args);
        assert_eq!(code, Some(0), "{args:?} with stdout closed: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
    // The two checks made with stdout closed were recorded like the first.
    let out = residency(root, &db, &["history", "--format", "json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).expect("history json");
    assert_eq!(runs.as_array().map(Vec::len), Some(3), "{runs:#}");
}

#[test]
fn a_tampered_history_row_is_named_by_history_verify() {
    let lab = Lab::start();
    let policy = lab.policy("audited", "endpoints:\n  - host: api.vendor.test\n");
    let mut run_ids = Vec::new();
    for _ in 0..3 {
        let (code, doc) = lab.check(&policy);
        assert_eq!(code, 0);
        run_ids.push(doc["history"]["run_id"].as_i64().expect("run id"));
    }
    assert_eq!(lab.run(&["history", "verify"]).status.code(), Some(0));

    // Someone with write access drops the guards and turns the middle run into a violation.
    let conn = rusqlite::Connection::open(lab.db()).expect("open history");
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("list triggers");
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{t}\""))
            .expect("drop trigger");
    }
    conn.execute(
        "UPDATE runs SET verdict = 'violation' WHERE id = ?1",
        [run_ids[1]],
    )
    .expect("tamper");
    drop(conn);

    let out = lab.run(&["history", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "audited: BROKEN at run #{} (seq 2): hash mismatch",
            run_ids[1]
        )),
        "{text}"
    );
}

#[test]
fn killing_a_run_leaves_the_history_intact() {
    let lab = Lab::start();
    let good = lab.policy("killed", "endpoints:\n  - host: api.vendor.test\n");
    for _ in 0..2 {
        assert_eq!(lab.check(&good).0, 0);
    }

    // A run stuck on a silent resolver is killed in the middle of its measurements.
    let silent = SilentServer::start();
    let slow = lab.policy_with(
        "killed",
        "endpoints:\n  - host: api.vendor.test\n",
        &[silent.addr()],
    );
    let slow_text = std::fs::read_to_string(&slow)
        .expect("policy")
        .replace("timeout_ms: 400", "timeout_ms: 10000");
    std::fs::write(&slow, slow_text).expect("policy");
    let mut child = Residency::new(lab.dir.path())
        .db(lab.db())
        .args(["check", path_str(&slow)])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while silent.received() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(silent.received() > 0, "the run reached its measurements");
    child.kill().expect("kill");
    child.wait().expect("reap");

    // Runs killed at arbitrary moments, some during the write: never a half-written record.
    let quick = lab.policy("killed-quick", "endpoints:\n  - host: 192.0.2.1\n");
    let mut completed = 0;
    for i in 0..16u64 {
        let mut child = Residency::new(lab.dir.path())
            .db(lab.db())
            .args(["check", path_str(&quick)])
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(i * 3));
        let _ = child.kill();
        if child.wait().expect("reap").code() == Some(0) {
            completed += 1;
        }
    }

    let out = lab.run(&["history", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("killed: intact, 2 runs"), "{text}");
    let runs: Value = serde_json::from_slice(
        &lab.run(&["history", "--policy", "killed-quick", "--format", "json"])
            .stdout,
    )
    .expect("history json");
    let recorded = runs.as_array().map(Vec::len).unwrap_or(0);
    assert!(
        recorded >= completed && recorded <= 16,
        "{recorded} runs recorded, {completed} completed"
    );
}

#[test]
fn history_lists_by_policy_and_date() {
    let lab = Lab::start();
    let a = lab.policy("alpha", "endpoints:\n  - host: 192.0.2.1\n");
    let b = lab.policy("beta", "endpoints:\n  - host: 198.51.100.1\n");
    assert_eq!(lab.check(&a).0, 0);
    assert_eq!(lab.check(&b).0, 2);
    let list = |args: &[&str]| -> Value {
        let mut all = vec!["history", "--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_slice(&lab.run(&all).stdout).expect("history json")
    };
    assert_eq!(list(&[]).as_array().map(Vec::len), Some(2));
    let beta = list(&["--policy", "beta"]);
    assert_eq!(beta.as_array().map(Vec::len), Some(1));
    assert_eq!(beta[0]["verdict"], "violation");
    assert_eq!(list(&["--since", "2999-01-01"]), serde_json::json!([]));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(list(&["--until", &today]).as_array().map(Vec::len), Some(2));
    let table = lab.run(&["history"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("alpha") && text.contains("beta") && text.contains("violation"),
        "{text}"
    );
    let bad = lab.run(&["history", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`yesterday` is not a date"));
}

#[test]
fn queries_in_flight_are_bounded_by_concurrency() {
    // 20 endpoints × {A, AAAA} = 40 queries to a resolver that never answers, 5 at a time,
    // each timing out after 300 ms: no query can finish before 300 ms, so until then at most
    // 5 can have been sent, and each later 300 ms window adds at most 5 more.
    let silent = SilentServer::start();
    let mut body = String::from("endpoints:\n");
    for i in 0..20 {
        body.push_str(&format!("  - host: h{i}.vendor.test\n"));
    }
    let text = format!(
        "id: bounded\nallow: [IN]\nresolvers: [\"{}\"]\nrepeat: 1\ndns: {{ timeout_ms: 300, tries: 1 }}\ntrace: {{ enabled: false }}\nregistry: {{ enabled: false }}\n{body}",
        silent.addr()
    );
    let policy = residency::policy::parse(&text, Path::new("bounded.yaml")).expect("policy");
    let settings = residency::check::CheckSettings {
        resolvers: vec![silent.addr()],
        concurrency: 5,
        trace_concurrency: 5,
        dns: policy.dns,
        capture: None,
        measured_from: residency::measure::vantage::MeasuredFrom::local(Some("test")),
    };
    let resolver = Arc::new(residency::measure::resolve::DnsResolver::new(policy.dns));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let start = Instant::now();
    let mut worst_excess = 0i64;
    let hidden = indicatif::ProgressBar::hidden();
    let no_sources = residency::sources::geo::Geolocator::default();
    let doc = runtime.block_on(async {
        let instruments = residency::check::Instruments {
            resolver,
            tracer: None::<Arc<residency::measure::trace::TrippyTracer>>,
            surveyor: residency::measure::integrity::Canaries,
            registry: None,
        };
        let run =
            residency::check::check_policy(&policy, &settings, instruments, &no_sources, &hidden);
        tokio::pin!(run);
        loop {
            tokio::select! {
                doc = &mut run => break doc,
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    let windows = start.elapsed().as_millis() / 300 + 1;
                    let allowed = (windows * 5) as i64;
                    worst_excess = worst_excess.max(silent.received() as i64 - allowed);
                }
            }
        }
    });
    assert!(
        worst_excess <= 0,
        "more than 5 queries in flight (excess {worst_excess})"
    );
    assert_eq!(silent.received(), 40, "every query was sent in the end");
    assert_eq!(doc.summary.queries, 40);
    assert_eq!(doc.verdict, residency::model::Verdict::Inconclusive);
}

#[test]
fn unreadable_inputs_are_errors_naming_the_file_with_exit_3() {
    let lab = Lab::start();
    let policy = lab.policy("broken-db", "endpoints:\n  - host: 192.0.2.1\n");
    let text = std::fs::read_to_string(&policy).expect("policy");
    let missing = lab.dir.path().join("missing.mmdb");
    std::fs::write(
        &policy,
        text.replace(
            &lab.dir.path().join("lab.mmdb").display().to_string(),
            &missing.display().to_string(),
        ),
    )
    .expect("rewrite policy");
    let out = lab.run(&["check", path_str(&policy)]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(
        !lab.db().exists(),
        "nothing is measured or recorded when an input is bad"
    );

    let garbage = lab.dir.path().join("not-a-db.sqlite");
    std::fs::write(&garbage, "this is not SQLite\n".repeat(100)).expect("write garbage");
    let good = lab.policy("fine", "endpoints:\n  - host: 192.0.2.1\n");
    let out = lab.run(&["check", path_str(&good), "--db", path_str(&garbage)]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not-a-db.sqlite"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&garbage).expect("garbage"),
        "this is not SQLite\n".repeat(100),
        "a file that is not our history is left alone"
    );
}

#[test]
fn several_policies_in_one_check_each_get_a_run_and_the_worst_exit_code() {
    let lab = Lab::start();
    let good = lab.policy("one", "endpoints:\n  - host: api.vendor.test\n");
    let bad = lab.policy("two", "endpoints:\n  - host: tracker.vendor.test\n");
    let out = lab.run(&["check", "--format", "json", path_str(&good), path_str(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    let docs: Value = serde_json::from_slice(&out.stdout).expect("json array");
    let verdicts: Vec<(&str, &str)> = docs
        .as_array()
        .expect("one document per policy")
        .iter()
        .map(|d| {
            (
                d["policy"]["id"].as_str().expect("id"),
                d["verdict"].as_str().expect("verdict"),
            )
        })
        .collect();
    assert_eq!(verdicts, [("one", "compliant"), ("two", "violation")]);
    let verify = lab.run(&["history", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        text.contains("one: intact, 1 runs") && text.contains("two: intact, 1 runs"),
        "{text}"
    );
}

#[test]
fn min_confidence_makes_weak_evidence_inconclusive_either_way() {
    let lab = Lab::start();
    let body = "require: { min_confidence: medium }\nendpoints:\n  - host: api.vendor.test\n  - host: tracker.vendor.test\n";
    let policy = lab.policy("strict", body);
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 1, "{doc:#}");
    for host in ["api.vendor.test", "tracker.vendor.test"] {
        let ep = endpoint(&doc, host);
        assert_eq!(ep["verdict"], "inconclusive", "{ep:#}");
        let a = &ep["addresses"][0];
        assert_eq!(a["confidence"], "low");
        assert_eq!(a["decided_by"], serde_json::json!(["lab.mmdb"]));
        assert!(
            strings(&a["reasons"]).join("\n").contains(
                "the evidence is low confidence (decided by lab.mmdb); the policy requires at least medium"
            ),
            "{a:#}"
        );
    }

    // A city-level database is medium confidence on its own: the verdicts stand again.
    let city = lab.dir.path().join("city.mmdb");
    common::mmdb::write_city_db(
        &city,
        &[
            ("192.0.2.0/25", "IN", "Mumbai", 19.07, 72.88, 50),
            ("192.0.2.128/25", "SG", "Singapore", 1.35, 103.82, 20),
            ("198.51.100.0/24", "CN", "Beijing", 39.9, 116.4, 50),
            ("2001:db8::/32", "SG", "Singapore", 1.35, 103.82, 20),
        ],
    );
    let text = std::fs::read_to_string(&policy).expect("policy").replace(
        &lab.dir.path().join("lab.mmdb").display().to_string(),
        &city.display().to_string(),
    );
    std::fs::write(&policy, text).expect("policy");
    let (code, doc) = lab.check(&policy);
    assert_eq!(code, 2, "{doc:#}");
    assert_eq!(endpoint(&doc, "api.vendor.test")["verdict"], "compliant");
    let tracker = &endpoint(&doc, "tracker.vendor.test")["addresses"][0];
    assert_eq!(tracker["confidence"], "medium");
    assert_eq!(tracker["verdict"], "violation");
}

/// A PTR lookup that fails (the resolver is silent, or answers SERVFAIL) is an observation of
/// the run, recorded with the address, not a warning: a run over many addresses must not print
/// a line per address.
#[test]
fn failed_ptr_lookups_are_recorded_not_warned() {
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "id: ptr-quiet\nallow: [IN]\nresolvers: [\"{}\"]\nrepeat: 1\ndns: {{ timeout_ms: 100, tries: 1 }}\ntrace: {{ enabled: false }}\nregistry: {{ enabled: false }}\nendpoints:\n  - host: 192.0.2.10\n  - host: 192.0.2.11\n  - host: 192.0.2.12\n",
            silent.addr()
        ),
    )
    .expect("policy");
    let out = Residency::new(dir.path())
        .args(["check", path_str(&policy), "--format", "json"])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    for e in doc["endpoints"].as_array().expect("endpoints") {
        let evidence = e["addresses"][0]["evidence"].to_string();
        assert!(evidence.contains("PTR lookup failed"), "{evidence}");
    }
}
