//! Hostile text stays text: registry fields and PTR names written by whoever runs those servers
//! (possibly the vendor under audit) must not act on an auditor's terminal. A real RDAP server
//! and knotd on loopback answer with ESC sequences (`ESC[1A ESC[2K` erases the line above),
//! a bidi override (U+202E) and a zero-width space; `locate` and `check` tables, JSON output
//! and log lines must show them as visible text. Probing is off: only loopback is asked.

use crate::common;
use crate::common::cmd::Residency;

use std::path::Path;
use std::process::Output;

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::registry::{HttpServer, Reply};
use serde_json::Value;

const TARGET: &str = "127.0.0.77";
/// What the vendor's registry record says its holder is.
const HOLDER: &str = "Vendor\u{1b}[31m RED\u{1b}[0m\u{1b}[1A\u{1b}[2K \u{202E}exe.txt\u{200B}";

fn rdap() -> HttpServer {
    HttpServer::start(|request| {
        if request.path != format!("/ip/{TARGET}") {
            return Reply::status(404);
        }
        Reply::json(
            serde_json::json!({
                "objectClassName": "ip network",
                "handle": "NET-\u{1b}]0;owned\u{7}",
                "startAddress": "127.0.0.0",
                "endAddress": "127.0.0.255",
                "name": "LAB\u{9b}2J",
                "country": "IN",
                "entities": [{
                    "objectClassName": "entity",
                    "handle": "ORG-LAB",
                    "roles": ["registrant"],
                    "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", HOLDER]]],
                }],
            })
            .to_string(),
        )
    })
}

/// A reverse zone whose PTR name carries an escape sequence (`\027` is ESC in zone files).
fn knot() -> KnotServer {
    KnotServer::start(
        &[Zone::new(
            "0.0.127.in-addr.arpa.",
            "77 PTR evil\\027\\[2K\\027\\[1A.example.\n",
        )],
        None,
    )
}

fn residency(dir: &Path, args: &[&str]) -> Output {
    Residency::new(dir).log("debug").args(args).output()
}

/// Nothing in `text` may act on a terminal: no C0 control but newline and tab, no DEL or C1,
/// no bidi override, no zero-width character.
fn assert_inert(what: &str, text: &str) {
    let bad: Vec<String> = text
        .chars()
        .filter(|c| residency::text::hidden(*c))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?} raw:\n{text}");
}

#[test]
fn locate_shows_hostile_registry_and_ptr_text_as_text() {
    let rdap = rdap();
    let knot = knot();
    let dir = tempfile::tempdir().expect("temp dir");
    let resolver = knot.addr().to_string();
    let base = rdap.base_url();
    let args = [
        "locate",
        TARGET,
        "--no-trace",
        "--rdap",
        &base,
        "--whois",
        "127.0.0.1:9",
        "--resolver",
        &resolver,
    ];
    let out = residency(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_inert("locate's table", &stdout);
    assert_inert("locate's log", &stderr);
    // The hostile text is there, visibly.
    assert!(
        stdout.contains(
            "Vendor⟦U+001B⟧[31m RED⟦U+001B⟧[0m⟦U+001B⟧[1A⟦U+001B⟧[2K ⟦U+202E⟧exe.txt⟦U+200B⟧"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("evil"), "the PTR name is shown: {stdout}");

    // JSON keeps the data exact but writes it with escapes a terminal does not obey.
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let out = residency(dir.path(), &json_args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_inert("locate's JSON", &stdout);
    let doc: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["addresses"][0]["registry"]["holder"], HOLDER, "{doc:#}");
}

#[test]
fn check_tables_and_stored_runs_show_hostile_text_as_text() {
    let rdap = rdap();
    let knot = knot();
    let dir = tempfile::tempdir().expect("temp dir");
    let mmdb = dir.path().join("lab.mmdb");
    write_country_db(&mmdb, &[("127.0.0.0/8", "IN")]);
    let policy = dir.path().join("hostile.yaml");
    std::fs::write(
        &policy,
        format!(
            "id: hostile\nallow: [IN]\nresolvers: [\"{}\"]\nrepeat: 1\ntrace: {{ enabled: false }}\n\
             registry: {{ rdap: \"{}\", whois: \"127.0.0.1:9\" }}\ngeo:\n  databases: [{}]\n\
             endpoints:\n  - host: {TARGET}\n",
            knot.addr(),
            rdap.base_url(),
            mmdb.display()
        ),
    )
    .expect("write policy");
    let db = dir.path().join("h.sqlite");
    let db = db.to_str().expect("utf-8");
    let policy = policy.to_str().expect("utf-8");
    let out = residency(dir.path(), &["check", policy, "--db", db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_inert("check's table", &stdout);
    assert_inert("check's log", &stderr);
    assert!(stdout.contains("⟦U+202E⟧exe.txt"), "{stdout}");
    assert!(stdout.contains("COMPLIANT"), "{stdout}");

    // The stored run, shown again, is just as inert.
    let out = residency(dir.path(), &["show", "1", "--db", db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_inert("show's table", &stdout);
    assert!(stdout.contains("⟦U+001B⟧[2K"), "{stdout}");
    let out = residency(dir.path(), &["show", "1", "--format", "json", "--db", db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_inert("show's JSON", &stdout);
    let doc: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        doc["endpoints"][0]["addresses"][0]["registry"]["holder"],
        HOLDER
    );
}
