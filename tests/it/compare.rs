//! `residency diff`, `timeline` and `claims` end to end: histories written by the real binary's
//! `check` against knotd on loopback with an `.mmdb` fixture, with the vendor's DNS moving
//! between runs, then compared through the real binary.
//!
//! Probing is off in every policy (`trace: { enabled: false }`, `registry: { enabled: false }`):
//! the lab's addresses exist only as DNS answers.
//!
//! Lab geography (`lab.mmdb`): 192.0.2.0/24 IN, 198.51.100.0/24 CN, 203.0.113.0/24 US.
//! Before the move, knotd #1 answers api → 192.0.2.10 (IN); after it, knotd #2 answers
//! api → 198.51.100.7 (CN) and the policy gains the endpoint cdn → 203.0.113.5 (US).

use crate::common;
use crate::common::cmd::Residency;
use crate::common::cmd::path_str;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use serde_json::{Value, json};

const BEFORE: &str = "api 300 A 192.0.2.10\n";
const AFTER: &str = "api 300 A 198.51.100.7\ncdn 300 A 203.0.113.5\n";

const CLAIMS: &str = "claims:\n  - date: 2000-01-01\n    statement: Indian users are served from India\n    locations: [IN]\n  - date: 2999-01-01\n    statement: A promise for later\n";

struct Lab {
    dir: tempfile::TempDir,
    /// The PostgreSQL history (`postgres://...`) and its server, instead of an SQLite file.
    postgres: Option<(String, common::pg::Postgres)>,
}

impl Lab {
    /// A lab whose history lives in a fresh PostgreSQL database.
    fn with_postgres() -> Lab {
        let server = common::pg::Postgres::start().unwrap_or_else(|e| panic!("{e}"));
        let url = server
            .create_database("history")
            .unwrap_or_else(|e| panic!("{e}"));
        Lab {
            postgres: Some((url, server)),
            ..Lab::new()
        }
    }

    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(
            &dir.path().join("lab.mmdb"),
            &[
                ("192.0.2.0/24", "IN"),
                ("198.51.100.0/24", "CN"),
                ("203.0.113.0/24", "US"),
            ],
        );
        Lab {
            dir,
            postgres: None,
        }
    }

    /// Policy `vendor` asking `resolver` about `hosts` (in `vendor.test.`), written to `file`.
    fn policy(&self, file: &str, resolver: SocketAddr, hosts: &[&str]) -> PathBuf {
        let endpoints: String = hosts
            .iter()
            .map(|h| format!("  - host: {h}.vendor.test\n"))
            .collect();
        let text = format!(
            "id: vendor\nallow: [IN, US, SG]\ndeny: [CN]\nresolvers: [\"{resolver}\"]\nrepeat: 1\n\
             dns: {{ timeout_ms: 400, tries: 1 }}\ntrace: {{ enabled: false }}\nregistry: {{ enabled: false }}\n\
             geo:\n  databases: [{}]\n{CLAIMS}endpoints:\n{endpoints}",
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn db(&self) -> PathBuf {
        match &self.postgres {
            Some((url, _)) => PathBuf::from(url),
            None => self.dir.path().join("history.sqlite"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Residency::new(self.dir.path())
            .db(self.db())
            .args(args)
            .output()
    }

    /// Runs a command that must succeed with JSON on stdout.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    fn check(&self, policy: &Path, expected_exit: i32) {
        let out = self.run(&["check", "--format", "json", path_str(policy)]);
        assert_eq!(
            out.status.code(),
            Some(expected_exit),
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Three runs through the real write path: two before the move, one after it.
/// Returns the lab and the runs as `history --format json` lists them (oldest first).
fn moved_vendor(lab: Lab) -> (Lab, Vec<Value>) {
    let before = KnotServer::start(&[Zone::new("vendor.test.", BEFORE)], None);
    let after = KnotServer::start(&[Zone::new("vendor.test.", AFTER)], None);
    let v1 = lab.policy("v1.yaml", before.addr(), &["api"]);
    let v2 = lab.policy("v2.yaml", after.addr(), &["api", "cdn"]);
    lab.check(&v1, 0);
    lab.check(&v1, 0);
    lab.check(&v2, 2);
    let runs = lab.json(&["history", "--policy", "vendor", "--format", "json"]);
    let runs = runs.as_array().expect("runs").clone();
    assert_eq!(runs.len(), 3);
    (lab, runs)
}

fn run_info(run: &Value) -> Value {
    json!({"id": run["id"], "seq": run["seq"], "started_at": run["started_at"], "verdict": run["verdict"]})
}

#[test]
fn diff_timeline_and_claims_follow_a_vendor_move() {
    follow_a_vendor_move(Lab::new());
}

/// The same over a history in PostgreSQL (`--db postgres://...`, here via `RESIDENCY_DB`).
#[test]
fn diff_timeline_and_claims_follow_a_vendor_move_in_postgres() {
    let lab = Lab::with_postgres();
    let db = lab.db();
    let (lab, runs) = follow_a_vendor_move(lab);
    let listed = lab.json(&["history", "--format", "json", "--db", path_str(&db)]);
    assert_eq!(listed.as_array().map(Vec::len), Some(runs.len()));
    let verify = lab.run(&["history", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

fn follow_a_vendor_move(lab: Lab) -> (Lab, Vec<Value>) {
    let (lab, runs) = moved_vendor(lab);
    let ids: Vec<String> = runs.iter().map(|r| r["id"].to_string()).collect();
    let at = |i: usize| runs[i]["started_at"].as_str().expect("time").to_string();

    // diff by run ids.
    let diff = lab.json(&[
        "diff", "vendor", "--from", &ids[0], "--to", &ids[2], "--format", "json",
    ]);
    let expected = json!({
        "policy_id": "vendor",
        "from": run_info(&runs[0]),
        "to": run_info(&runs[2]),
        "verdict": {"from": "compliant", "to": "violation"},
        "endpoints_added": [{
            "host": "cdn.vendor.test",
            "verdict": "compliant",
            "addresses": [{"ip": "203.0.113.5", "country": "US", "verdict": "compliant"}]
        }],
        "endpoints_removed": [],
        "endpoints_changed": [{
            "host": "api.vendor.test",
            "verdict": {"from": "compliant", "to": "violation"},
            "addresses_added": [{"ip": "198.51.100.7", "country": "CN", "verdict": "violation"}],
            "addresses_removed": [{"ip": "192.0.2.10", "country": "IN", "verdict": "compliant"}],
            "addresses_changed": []
        }],
        "transit_added": [],
        "transit_removed": []
    });
    assert_eq!(diff, expected, "{diff:#}");

    // diff by time: "at or before the second run's start" is the second run; a far-future day
    // is the latest run.
    let by_time = lab.json(&[
        "diff",
        "vendor",
        "--from",
        &at(1),
        "--to",
        "2999-12-31",
        "--format",
        "json",
    ]);
    assert_eq!(by_time["from"], run_info(&runs[1]));
    assert_eq!(by_time["to"], run_info(&runs[2]));
    assert_eq!(by_time["endpoints_changed"], expected["endpoints_changed"]);

    // Two runs with the same answers: nothing changed.
    let same = lab.json(&[
        "diff", "vendor", "--from", &ids[0], "--to", &ids[1], "--format", "json",
    ]);
    assert_eq!(same["endpoints_changed"], json!([]));
    assert_eq!(same["verdict"], Value::Null);

    let timeline = lab.json(&["timeline", "vendor", "--format", "json"]);
    let india = |i: usize| {
        json!({"at": at(i), "runs": [runs[i]["id"]], "verdict": "compliant",
               "endpoints": {"compliant": 1, "inconclusive": 0, "violation": 0},
               "located": 1, "unlocated": 0,
               "countries": {"IN": {"count": 1, "share": 1.0}}})
    };
    let span = |verdict: &str, first: usize, last: usize| json!({"verdict": verdict, "from": at(first), "to": at(last), "first": first, "last": last});
    assert_eq!(
        timeline,
        json!({"policy_id": "vendor", "per": "run", "points": [india(0), india(1), {
            "at": at(2), "runs": [runs[2]["id"]], "verdict": "violation",
            "endpoints": {"compliant": 1, "inconclusive": 0, "violation": 1},
            "located": 2, "unlocated": 0,
            "countries": {"CN": {"count": 1, "share": 0.5}, "US": {"count": 1, "share": 0.5}}
        }], "endpoints": [
            {"host": "api.vendor.test", "spans": [span("compliant", 0, 1), span("violation", 2, 2)]},
            {"host": "cdn.vendor.test", "spans": [span("compliant", 2, 2)]}
        ]}),
        "{timeline:#}"
    );
    let window = lab.json(&["timeline", "vendor", "--since", &at(2), "--format", "json"]);
    assert_eq!(window["points"].as_array().map(Vec::len), Some(1));
    let by_day = lab.json(&["timeline", "vendor", "--per", "day", "--format", "json"]);
    let days = by_day["points"].as_array().map(Vec::len).unwrap_or(0);
    assert!((1..=3).contains(&days), "{by_day:#}");
    assert_eq!(by_day["points"][days - 1]["verdict"], "violation");

    let claims = lab.json(&["claims", "vendor", "--format", "json"]);
    let verdicts = |range: std::ops::Range<usize>| -> Vec<Value> {
        range
            .map(|i| json!({"id": runs[i]["id"], "started_at": at(i), "verdict": runs[i]["verdict"]}))
            .collect()
    };
    assert_eq!(
        claims,
        json!({
            "policy_id": "vendor",
            "claims_from_run": runs[2]["id"],
            "claims": [{
                "date": "2000-01-01",
                "statement": "Indian users are served from India",
                "source": null,
                "locations": ["IN"],
                "status": "broken",
                "on": at(2),
                "since": at(2),
                "evidence": [runs[2]["id"]],
                "already_compliant": null,
                "before": [],
                "after": verdicts(0..3)
            }, {
                "date": "2999-01-01",
                "statement": "A promise for later",
                "source": null,
                "locations": [],
                "status": "untested",
                "evidence": [],
                "already_compliant": false,
                "before": verdicts(0..3),
                "after": []
            }]
        }),
        "{claims:#}"
    );

    // The tables say the same for people.
    let table = lab.run(&["diff", "vendor", "--from", &ids[0], "--to", &ids[2]]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("verdict: compliant -> violation"), "{text}");
    assert!(
        text.contains("+ endpoint cdn.vendor.test (compliant)"),
        "{text}"
    );
    assert!(text.contains("    + 198.51.100.7 CN violation"), "{text}");
    assert!(text.contains("    - 192.0.2.10 IN compliant"), "{text}");
    let table = lab.run(&["claims", "vendor"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&format!("broken on {} (since {})", at(2), at(2))),
        "{text}"
    );
    let table = lab.run(&["timeline", "vendor"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("CN 1/2 (50%), US 1/2 (50%)"), "{text}");
    assert!(
        text.contains(&format!(
            "api.vendor.test: compliant {} .. {}; violation at {}",
            at(0),
            at(1),
            at(2)
        )),
        "{text}"
    );
    (lab, runs)
}

#[test]
fn comparison_errors_exit_3_and_say_what_to_do() {
    let (lab, runs) = moved_vendor(Lab::new());
    let id = runs[0]["id"].to_string();
    let cases: [(&[&str], &str); 5] = [
        (
            &["diff", "nobody", "--from", "1", "--to", "2"],
            "no runs of policy `nobody`",
        ),
        (
            &["diff", "vendor", "--from", &id, "--to", "99999"],
            "no run with id 99999",
        ),
        (
            &["diff", "vendor", "--from", "yesterday", "--to", &id],
            "write a run id (e.g. 42), a date YYYY-MM-DD, or an RFC 3339 time",
        ),
        (
            &["diff", "vendor", "--from", "1999-01-01", "--to", &id],
            "no run started at or before 1999-01-01T23:59:59.999999Z",
        ),
        (
            &["timeline", "vendor", "--since", "03/04/2026"],
            "write YYYY-MM-DD or an RFC 3339 time",
        ),
    ];
    for (args, message) in cases {
        let out = lab.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = lab.run(&["claims", "nobody"]);
    assert_eq!(out.status.code(), Some(3));
}
