//! Verdict-change alerts end to end: the real binary, knotd on loopback, a loopback HTTP server
//! recording the webhook's POSTs. Probing and registries are disabled in every policy, so only
//! loopback DNS and loopback HTTP are used.
//!
//! The "zone change" that turns a compliant endpoint into a violation is two knotd servers
//! serving two versions of `vendor.test` (the endpoint in India, then in China); the policy's
//! resolver is switched between them. Every child process is waited on with a deadline.

use crate::common;
use crate::common::cmd::Residency;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::registry::{HttpServer, Reply};
use serde_json::Value;

const IN_ZONE: &str = "api 300 A 192.0.2.10\n";
const CN_ZONE: &str = "api 300 A 198.51.100.10\n";
const POLICY: &str = "alerting";
/// Longest a check may take here: DNS on loopback plus at most 10 s of alert delivery.
const CHECK_LIMIT: Duration = Duration::from_secs(40);

struct Lab {
    dir: tempfile::TempDir,
    india: KnotServer,
    china: KnotServer,
}

struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
    took: Duration,
}

impl Run {
    fn run_id(&self) -> i64 {
        self.json["history"]["run_id"].as_i64().expect("run id")
    }
}

impl Lab {
    fn start() -> Lab {
        let india = KnotServer::start(&[Zone::new("vendor.test.", IN_ZONE)], None);
        let china = KnotServer::start(&[Zone::new("vendor.test.", CN_ZONE)], None);
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(
            &dir.path().join("lab.mmdb"),
            &[("192.0.2.0/24", "IN"), ("198.51.100.0/24", "CN")],
        );
        Lab { dir, india, china }
    }

    /// Writes the policy with `alerts` (YAML, or empty for none), asking `resolver`.
    fn policy(&self, resolver: SocketAddr, alerts: &str) -> PathBuf {
        let text = format!(
            "id: {POLICY}\nallow: [IN]\ndeny: [CN]\nresolvers: [\"{resolver}\"]\nrepeat: 1\n\
             dns: {{ timeout_ms: 2000, tries: 2 }}\ntrace: {{ enabled: false }}\n\
             registry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n\
             endpoints:\n  - host: api.vendor.test\n{alerts}",
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{POLICY}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Residency::new(self.dir.path()).args(args).command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// `check --format json` of the policy asking `resolver`, killed at [`CHECK_LIMIT`].
    fn check(&self, resolver: SocketAddr, alerts: &str) -> Run {
        let policy = self.policy(resolver, alerts);
        let started = Instant::now();
        let mut child = self
            .command(&[
                "check",
                policy.to_str().expect("utf-8 path"),
                "--format",
                "json",
            ])
            .spawn()
            .expect("spawn residency");
        let deadline = started + CHECK_LIMIT;
        while child.try_wait().expect("poll child").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = started.elapsed();
        let out = child.wait_with_output().expect("collect output");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "check printed no JSON ({e}): {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Run {
            code: out.status.code(),
            json,
            stderr,
            took,
        }
    }

    /// (run_id, event, delivered, detail) of every recorded alert delivery, in order.
    fn deliveries(&self) -> Vec<(i64, String, bool, String)> {
        let conn = rusqlite::Connection::open(self.dir.path().join("history.sqlite"))
            .expect("open history");
        let mut stmt = conn
            .prepare("SELECT run_id, event, delivered, detail FROM alert_deliveries ORDER BY id")
            .expect("query deliveries");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("read deliveries")
            .collect::<Result<_, _>>()
            .expect("deliveries")
    }

    fn validate(&self, text: &str) -> (Option<i32>, String) {
        let path = self.dir.path().join("bad.yaml");
        std::fs::write(&path, text).expect("write policy");
        let out = self
            .command(&["validate", path.to_str().expect("utf-8 path")])
            .output()
            .expect("run residency");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn alerts_to(server: &HttpServer, on: Option<&str>) -> String {
    let mut text = format!("alerts:\n  webhook: {}hook\n", server.base_url());
    if let Some(on) = on {
        text.push_str(&format!("  on: [{on}]\n"));
    }
    text
}

fn events(server: &HttpServer) -> Vec<Value> {
    server
        .posts()
        .iter()
        .map(|b| serde_json::from_str(b).expect("alert body is JSON"))
        .collect()
}

#[test]
fn a_violation_and_a_recovery_are_each_posted_once() {
    let lab = Lab::start();
    let server = HttpServer::start(|_| Reply::status(204));
    let alerts = alerts_to(&server, None);

    // First run: no previous verdict to change from, so no alert.
    let first = lab.check(lab.india.addr(), &alerts);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(server.posts().is_empty(), "{:?}", server.posts());

    // The zone now puts the endpoint in a denied country.
    let bad = lab.check(lab.china.addr(), &alerts);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    let sent = events(&server);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let e = &sent[0];
    assert_eq!(e["event"], "violation");
    assert_eq!(e["policy"], POLICY);
    assert_eq!(e["run_id"].as_i64(), Some(bad.run_id()));
    assert_eq!(e["seq"], bad.json["history"]["seq"]);
    assert_eq!(e["seq"].as_i64(), Some(2));
    assert_eq!(e["hash"], bad.json["history"]["hash"]);
    assert_eq!(e["verdict"], "violation");
    assert_eq!(e["previous_verdict"], "compliant");
    assert_eq!(e["previous_run_id"].as_i64(), Some(first.run_id()));
    assert_eq!(e["started_at"], bad.json["started_at"]);
    assert_eq!(
        e["endpoints"],
        serde_json::json!([{ "host": "api.vendor.test", "verdict": "violation" }])
    );
    assert!(!bad.stderr.contains("warning"), "{}", bad.stderr);

    // Still a violation: no change, no alert.
    let again = lab.check(lab.china.addr(), &alerts);
    assert_eq!(again.code, Some(2), "{}", again.stderr);
    assert_eq!(server.posts().len(), 1);

    // Back in India: recovered.
    let good = lab.check(lab.india.addr(), &alerts);
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    let sent = events(&server);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let e = &sent[1];
    assert_eq!(e["event"], "recovered");
    assert_eq!(e["verdict"], "compliant");
    assert_eq!(e["previous_verdict"], "violation");
    assert_eq!(e["previous_run_id"].as_i64(), Some(again.run_id()));
    assert_eq!(e["run_id"].as_i64(), Some(good.run_id()));

    let recorded = lab.deliveries();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(
        (recorded[0].0, recorded[0].1.as_str(), recorded[0].2),
        (bad.run_id(), "violation", true)
    );
    assert_eq!(
        (recorded[1].0, recorded[1].1.as_str(), recorded[1].2),
        (good.run_id(), "recovered", true)
    );
}

#[test]
fn only_the_changes_named_in_on_are_posted() {
    let lab = Lab::start();
    let server = HttpServer::start(|_| Reply::status(200));
    let alerts = alerts_to(&server, Some("recovered"));
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    assert_eq!(lab.check(lab.china.addr(), &alerts).code, Some(2));
    assert!(server.posts().is_empty(), "{:?}", server.posts());
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    let sent = events(&server);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["event"], "recovered");
}

#[test]
fn a_failing_webhook_is_retried_until_it_accepts() {
    let lab = Lab::start();
    let server = HttpServer::start(|r| Reply::status(if r.count <= 2 { 500 } else { 200 }));
    let alerts = alerts_to(&server, None);
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    let bad = lab.check(lab.china.addr(), &alerts);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    let sent = events(&server);
    assert_eq!(sent.len(), 3, "delivered on the third try: {sent:?}");
    assert!(sent.iter().all(|e| e == &sent[0]), "{sent:?}");
    assert_eq!(sent[0]["event"], "violation");
    assert!(!bad.stderr.contains("warning"), "{}", bad.stderr);
    // Backoff: 0.5 s then 1 s between the tries.
    assert!(bad.took >= Duration::from_millis(1500), "{:?}", bad.took);
    let recorded = lab.deliveries();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].2, "{recorded:?}");
    assert_eq!(recorded[0].3, "delivered on try 3");
}

#[test]
fn a_webhook_that_never_answers_does_not_change_the_verdict() {
    let lab = Lab::start();
    // Connections complete in the kernel's backlog but are never accepted nor answered.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/hook", silent.local_addr().expect("address"));
    let alerts = format!("alerts: {{ webhook: \"{url}\" }}\n");
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    let bad = lab.check(lab.china.addr(), &alerts);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(
        bad.took < Duration::from_secs(20),
        "delivery is bounded: {:?}",
        bad.took
    );
    assert!(
        bad.stderr.contains("warning") && bad.stderr.contains("not delivered"),
        "{}",
        bad.stderr
    );
    assert_eq!(bad.json["verdict"], "violation");
    let recorded = lab.deliveries();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        (recorded[0].0, recorded[0].1.as_str(), recorded[0].2),
        (bad.run_id(), "violation", false)
    );
    assert!(!recorded[0].3.contains("127.0.0.1"), "no URL: {recorded:?}");
    // The history's chain is untouched by the delivery record.
    let verify = lab
        .command(&["history", "verify"])
        .output()
        .expect("run residency");
    assert_eq!(verify.status.code(), Some(0));
    drop(silent);
}

#[test]
fn bad_alert_settings_are_reported_with_their_position() {
    let lab = Lab::start();
    let base = "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\n";

    let (code, stderr) = lab.validate(&format!("{base}alerts:\n  webhook: ftp://x.example/\n"));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("bad.yaml:6:12:"), "{stderr}");
    assert!(stderr.contains("http(s)://"), "{stderr}");

    let (code, stderr) = lab.validate(&format!(
        "{base}alerts:\n  webhook: https://x.example/\n  on: [violation, changed]\n"
    ));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("bad.yaml:7:"), "{stderr}");
    assert!(
        stderr.contains("`changed` is not an alert event"),
        "{stderr}"
    );

    let (code, stderr) = lab.validate(&format!("{base}alerts:\n  webhook: not a url\n"));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("bad.yaml:6:"), "{stderr}");
}

#[test]
fn watch_alerts_like_check() {
    let lab = Lab::start();
    let server = HttpServer::start(|_| Reply::status(200));
    let alerts = alerts_to(&server, None);
    let first = lab.check(lab.india.addr(), &alerts);
    assert_eq!(first.code, Some(0), "{}", first.stderr);

    let policy = lab.policy(lab.china.addr(), &alerts);
    let mut child = lab
        .command(&[
            "watch",
            policy.to_str().expect("utf-8 path"),
            "--every",
            "1h",
            "--max-runs",
            "1",
        ])
        .spawn()
        .expect("spawn residency");
    let deadline = Instant::now() + CHECK_LIMIT;
    while child.try_wait().expect("poll child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect output");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = events(&server);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["event"], "violation");
    assert_eq!(sent[0]["previous_run_id"].as_i64(), Some(first.run_id()));
    assert_eq!(sent[0]["seq"].as_i64(), Some(2));
}

impl Lab {
    /// `residency ARGS` with a deadline: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut child = self.command(args).spawn().expect("spawn residency");
        let deadline = Instant::now() + CHECK_LIMIT;
        while child.try_wait().expect("poll child").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("collect output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `history alerts --format json`, with `args` added.
    fn listed(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["history", "alerts", "--format", "json"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = self.run(&all);
        assert_eq!(code, Some(0), "{stderr}");
        let rows: Value = serde_json::from_str(&stdout).expect("a JSON listing");
        rows.as_array().cloned().expect("a JSON array")
    }
}

#[test]
fn history_alerts_lists_failed_and_delivered_alerts_in_both_formats() {
    let lab = Lab::start();
    // The violation's three tries get 500s; the recovery after it is accepted at once.
    let server = HttpServer::start(|r| Reply::status(if r.count <= 3 { 500 } else { 200 }));
    let alerts = alerts_to(&server, None);
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    let bad = lab.check(lab.china.addr(), &alerts);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    let good = lab.check(lab.india.addr(), &alerts);
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    assert_eq!(server.posts().len(), 4);

    let rows = lab.listed(&[]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["run_id"].as_i64(), Some(bad.run_id()));
    assert_eq!(rows[0]["policy_id"], POLICY);
    assert_eq!(rows[0]["event"], "violation");
    assert_eq!(rows[0]["delivered"], false);
    assert_eq!(rows[0]["detail"], "gave up after 3 tries: HTTP 500");
    assert_eq!(rows[1]["run_id"].as_i64(), Some(good.run_id()));
    assert_eq!(rows[1]["event"], "recovered");
    assert_eq!(rows[1]["delivered"], true);
    assert_eq!(rows[1]["detail"], "delivered on try 1");
    let at = |row: &Value| {
        chrono::DateTime::parse_from_rfc3339(row["at"].as_str().expect("at")).expect("rfc 3339")
    };
    assert!(at(&rows[0]) <= at(&rows[1]));

    let (code, stdout, stderr) = lab.run(&["history", "alerts"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].contains("DELIVERED"), "{stdout}");
    for (line, run, event, delivered, detail) in [
        (
            lines[1],
            bad.run_id(),
            "violation",
            "no",
            "gave up after 3 tries: HTTP 500",
        ),
        (
            lines[2],
            good.run_id(),
            "recovered",
            "yes",
            "delivered on try 1",
        ),
    ] {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[2], run.to_string(), "{line}");
        assert_eq!(&words[3..6], &[POLICY, event, delivered], "{line}");
        assert!(line.ends_with(detail), "{line}");
    }

    // Filters: by policy and by time.
    assert!(lab.listed(&["--policy", "other"]).is_empty());
    let after = rows[1]["at"].as_str().expect("at");
    assert_eq!(lab.listed(&["--until", after]).len(), 1);
    assert_eq!(lab.listed(&["--since", after]).len(), 1);
    let (_, stdout, _) = lab.run(&["history", "alerts", "--policy", "other"]);
    assert!(stdout.ends_with("(no alerts)\n"), "{stdout}");
}

#[test]
fn alerts_resend_delivers_what_failed_once_and_then_sends_nothing() {
    let lab = Lab::start();
    let down = HttpServer::start(|_| Reply::status(500));
    let alerts = alerts_to(&down, None);
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    let bad = lab.check(lab.china.addr(), &alerts);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert_eq!(down.posts().len(), 3, "given up after three tries");
    let first_body: Value = serde_json::from_str(&down.posts()[0]).expect("JSON");

    // Nothing owed for another policy.
    let (code, stdout, stderr) = lab.run(&["alerts", "resend", "--policy", "other"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "no undelivered alerts\n");
    assert_eq!(down.posts().len(), 3);

    // Without policy files, the webhook comes from the policy file the run recorded: still down.
    let (code, stdout, stderr) = lab.run(&["alerts", "resend"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "the violation alert of run #{} of {POLICY}: not delivered: gave up after 3 tries: HTTP 500",
            bad.run_id()
        )),
        "{stderr}"
    );
    assert_eq!(down.posts().len(), 6);
    let rows = lab.listed(&[]);
    assert_eq!(
        rows.len(),
        2,
        "append-only: a new row per attempt: {rows:?}"
    );
    assert!(rows.iter().all(|r| r["delivered"] == false), "{rows:?}");

    // The webhook moved: the policy file given says where, and it accepts.
    let up = HttpServer::start(|_| Reply::status(204));
    let moved = lab.policy(lab.india.addr(), &alerts_to(&up, None));
    let moved = moved.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = lab.run(&["alerts", "resend", moved]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        format!(
            "the violation alert of run #{} of {POLICY}: delivered on try 1\n",
            bad.run_id()
        )
    );
    let resent = events(&up);
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(
        resent[0], first_body,
        "the same event, rebuilt from the history"
    );
    assert_eq!(down.posts().len(), 6);
    let rows = lab.listed(&[]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2]["run_id"].as_i64(), Some(bad.run_id()));
    assert_eq!(rows[2]["event"], "violation");
    assert_eq!(rows[2]["delivered"], true);
    assert_eq!(rows[2]["detail"], "delivered on try 1");

    // Everything owed was delivered: a second resend sends nothing.
    let (code, stdout, stderr) = lab.run(&["alerts", "resend", moved]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "no undelivered alerts\n");
    assert_eq!((up.posts().len(), down.posts().len()), (1, 6));
    assert_eq!(lab.listed(&[]).len(), 3);
}

#[test]
fn alerts_resend_without_a_webhook_says_how_to_give_one() {
    let lab = Lab::start();
    let down = HttpServer::start(|_| Reply::status(404));
    let alerts = alerts_to(&down, None);
    assert_eq!(lab.check(lab.india.addr(), &alerts).code, Some(0));
    assert_eq!(lab.check(lab.china.addr(), &alerts).code, Some(2));
    assert_eq!(down.posts().len(), 1, "a 404 is not retried");

    // The policy file the run recorded no longer exists.
    let recorded = lab.dir.path().join(format!("{POLICY}.yaml"));
    std::fs::remove_file(&recorded).expect("remove the policy file");
    let (code, _, stderr) = lab.run(&["alerts", "resend"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the policy file {}",
            recorded.display()
        )) && stderr.contains("residency alerts resend POLICY.yaml"),
        "{stderr}"
    );

    // A policy file without `alerts` cannot say where to send it.
    let without = lab.policy(lab.india.addr(), "");
    let (code, _, stderr) = lab.run(&["alerts", "resend", without.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("has no `alerts.webhook` any more"),
        "{stderr}"
    );
    assert_eq!(down.posts().len(), 1);
    assert_eq!(
        lab.listed(&[]).len(),
        1,
        "nothing was tried, nothing recorded"
    );
}
