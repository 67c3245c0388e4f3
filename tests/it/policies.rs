//! Every shipped policy must parse, and must be rejected once a bogus key is added; broken
//! policies must fail `residency validate` with file:line:column and exit 3.

use std::path::{Path, PathBuf};

use crate::common::cmd::Residency;

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("policies/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected the shipped policies in {dir:?}");
    files
}

#[test]
fn every_shipped_policy_parses() {
    for file in shipped() {
        if let Err(e) = residency::policy::load(&file) {
            panic!("{} does not parse:\n{e}", file.display());
        }
    }
}

#[test]
fn every_shipped_policy_rejects_a_bogus_key() {
    for file in shipped() {
        let text = std::fs::read_to_string(&file).expect("read policy");
        let bogus = format!("{text}\nbogus_key: 1\n");
        let err =
            residency::policy::parse(&bogus, &file).expect_err("a bogus key must be rejected");
        let msg = err.to_string();
        assert!(msg.contains("bogus_key"), "{}: {msg}", file.display());
        assert!(msg.starts_with(&format!("{}:", file.display())), "{msg}");
    }
}

fn validate(file: &str) -> (i32, String, String) {
    let home = tempfile::tempdir().expect("temp dir");
    let out = Residency::new(home.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", file])
        .output();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_the_shipped_policies() {
    let (code, stdout, stderr) = validate("policies/xiaomi-india.yaml");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (policy xiaomi-india, 7 endpoints)"),
        "{stdout}"
    );
}

#[test]
fn validate_reports_every_mistake_with_its_position() {
    let (code, _, stderr) = validate("tests/fixtures/every-mistake.yaml");
    assert_eq!(code, 3, "{stderr}");
    let expected = [
        ("tests/fixtures/every-mistake.yaml:1:5:", "id: Bad_Policy"),
        (
            "tests/fixtures/every-mistake.yaml:4:8:",
            "CN is in both `allow` and `deny`",
        ),
        (
            "tests/fixtures/every-mistake.yaml:5:12:",
            "`endpoints` is empty",
        ),
        (
            "tests/fixtures/every-mistake.yaml:6:18:",
            "host bits set: did you mean `117.192.0.0/16`?",
        ),
        (
            "tests/fixtures/every-mistake.yaml:6:",
            "`300.1.0.0/16` is not a network",
        ),
        (
            "tests/fixtures/every-mistake.yaml:7:",
            "`not-a-resolver` is not a resolver address",
        ),
        (
            "tests/fixtures/every-mistake.yaml:8:9:",
            "`repeat: 0` must be between 1 and 100",
        ),
    ];
    for (position, message) in expected {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(position) && l.contains(message)),
            "missing `{position} … {message}` in:\n{stderr}"
        );
    }
}

#[test]
fn validate_reports_unknown_keys_and_bad_countries() {
    let (code, _, stderr) = validate("tests/fixtures/unknown-key.yaml");
    assert_eq!(code, 3);
    assert!(
        stderr.contains("tests/fixtures/unknown-key.yaml:5:5: unknown field `purpse`"),
        "{stderr}"
    );
    let (code, _, stderr) = validate("tests/fixtures/bad-country.yaml");
    assert_eq!(code, 3);
    assert!(
        stderr.contains("tests/fixtures/bad-country.yaml:2:13: `UK` is not an assigned"),
        "{stderr}"
    );
    let (code, _, stderr) = validate("tests/fixtures/does-not-exist.yaml");
    assert_eq!(code, 3);
    assert!(
        stderr.contains("tests/fixtures/does-not-exist.yaml: cannot read policy file"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_3_not_2() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = Residency::new(home.path())
        .args(["check", "--no-such-flag"])
        .output();
    assert_eq!(out.status.code(), Some(3));
    let out = Residency::new(home.path()).arg("--help").output();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn registry_servers_are_checked_when_read_in_the_policy_and_on_the_command_line() {
    let file = Path::new("registry.yaml");
    let text = "id: r\nallow: [IN]\nendpoints:\n  - host: 192.0.2.1\nregistry:\n  rdap: ftp://rdap.example\n  whois: \"whois.example:99999\"\n";
    let msg = residency::policy::parse(text, file)
        .expect_err("both servers are malformed")
        .to_string();
    assert!(
        msg.contains("registry.yaml:6:") && msg.contains("must be an http(s):// URL"),
        "{msg}"
    );
    assert!(
        msg.contains("registry.yaml:7:") && msg.contains("is not HOST:PORT"),
        "{msg}"
    );
    let ok = "id: r\nallow: [IN]\nendpoints:\n  - host: 192.0.2.1\nregistry:\n  rdap: http://127.0.0.1:8080/\n  whois: whois.example\n";
    let policy = residency::policy::parse(ok, file).expect("well-formed servers");
    assert_eq!(
        policy.registry.whois.map(|w| w.to_string()).as_deref(),
        Some("whois.example:43"),
        "port 43 unless said"
    );

    let home = tempfile::tempdir().expect("temp dir");
    let out = Residency::new(home.path())
        .args([
            "locate",
            "192.0.2.1",
            "--no-trace",
            "--whois",
            "whois example:43",
        ])
        .output();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not HOST:PORT"),
        "{out:?}"
    );
}
