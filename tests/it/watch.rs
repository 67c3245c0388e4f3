//! `residency watch` and the run lock end to end: the real binary, knotd on loopback, the
//! SQLite history. Probing is disabled in every policy (`trace`/`registry`), so only loopback
//! DNS is used. Every wait is bounded by a deadline; children still running at a deadline are
//! killed so a hung binary fails the test instead of hanging it.

use crate::common;
use crate::common::cmd::Residency;
use crate::common::cmd::path_str;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::dns::{KnotServer, SilentServer, Zone};
use common::mmdb::write_country_db;
use rusqlite::Connection;
use serde_json::Value;

const ZONE: &str = "api 300 A 192.0.2.10\n";

struct Lab {
    dir: tempfile::TempDir,
    knot: KnotServer,
}

impl Lab {
    fn start() -> Lab {
        let knot = KnotServer::start(&[Zone::new("vendor.test.", ZONE)], None);
        let dir = tempfile::tempdir().expect("temp dir");
        write_country_db(&dir.path().join("lab.mmdb"), &[("192.0.2.0/24", "IN")]);
        Lab { dir, knot }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("history.sqlite")
    }

    /// A policy `name` asking `resolvers` with this DNS timeout; one endpoint in India.
    fn policy(&self, name: &str, resolvers: &[SocketAddr], timeout_ms: u64) -> PathBuf {
        let resolvers: Vec<String> = resolvers.iter().map(|r| format!("\"{r}\"")).collect();
        let text = format!(
            "id: {name}\nallow: [IN]\nresolvers: [{}]\nrepeat: 1\n\
             dns: {{ timeout_ms: {timeout_ms}, tries: 1 }}\ntrace: {{ enabled: false }}\n\
             registry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n\
             endpoints:\n  - host: api.vendor.test\n",
            resolvers.join(", "),
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        Residency::new(self.dir.path())
            .db(self.db())
            .args(args)
            .command()
    }

    fn run(&self, args: &[&str]) -> Output {
        common::cmd::wait_bounded(self.spawn(args), common::cmd::DEADLINE)
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn residency")
    }

    fn runs(&self, policy: &str) -> Vec<Value> {
        let out = self.run(&["history", "--policy", policy, "--format", "json"]);
        let runs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "history is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        runs.as_array().cloned().unwrap_or_default()
    }

    fn sql_count(&self, sql: &str) -> i64 {
        Connection::open(self.db())
            .expect("open history")
            .query_row(sql, [], |r| r.get(0))
            .expect("count")
    }

    fn assert_verified(&self) {
        let out = self.run(&["history", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Waits for a child to exit, killing it at the deadline: (exit code, stdout, stderr).
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(_status) = child.try_wait().expect("poll child") {
            break;
        }
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

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn time(run: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(run[key].as_str().expect("timestamp"))
        .expect("rfc 3339")
        .with_timezone(&Utc)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn every_second_for_three_runs_records_three_runs_in_order() {
    let lab = Lab::start();
    let policy = lab.policy("every", &[lab.knot.addr()], 400);
    let child = lab.spawn(&[
        "watch",
        "--every",
        "1s",
        "--max-runs",
        "3",
        path_str(&policy),
    ]);
    let (code, stdout, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("every: run #1 seq 1 compliant"), "{stdout}");

    let runs = lab.runs("every");
    assert_eq!(runs.len(), 3);
    for pair in runs.windows(2) {
        let gap = time(&pair[1], "started_at") - time(&pair[0], "started_at");
        assert!(gap >= chrono::Duration::milliseconds(900), "{gap}");
    }
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    lab.assert_verified();

    // A watched run is recorded exactly like a checked one: same document shape.
    let out = lab.run(&["check", "--format", "json", path_str(&policy)]);
    assert_eq!(out.status.code(), Some(0));
    let checked: Value = serde_json::from_slice(&out.stdout).expect("json");
    let watched = lab.run(&["show", "1", "--format", "json"]);
    let watched: Value = serde_json::from_slice(&watched.stdout).expect("json");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&checked), keys(&watched));
}

#[test]
fn racing_watchers_never_overlap_and_report_skips() {
    let lab = Lab::start();
    // The silent resolver makes each run last about a second, so the watchers collide.
    let silent = SilentServer::start();
    let policy = lab.policy("race", &[lab.knot.addr(), silent.addr()], 1200);
    let args = [
        "watch",
        "--every",
        "1s",
        "--max-runs",
        "3",
        path_str(&policy),
    ];
    // Both start on a fresh file: creating the history at the same instant must work too.
    let (a, b) = (lab.spawn(&args), lab.spawn(&args));
    let (a, b) = (
        finish(a, Duration::from_secs(60)),
        finish(b, Duration::from_secs(60)),
    );
    assert_eq!((a.0, b.0), (Some(0), Some(0)), "{a:?}\n{b:?}");

    let runs = lab.runs("race");
    let skipped =
        a.2.matches("skipped: policy race").count() + b.2.matches("skipped: policy race").count();
    assert_eq!(runs.len() + skipped, 6, "{a:?}\n{b:?}");
    assert!(
        skipped > 0,
        "the watchers collided at least once: {a:?}\n{b:?}"
    );
    let mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
        .iter()
        .map(|r| (time(r, "started_at"), time(r, "finished_at")))
        .collect();
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
    assert_eq!(lab.sql_count("SELECT count(*) FROM failed_runs"), 0);
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    lab.assert_verified();
}

#[test]
fn sigterm_during_a_run_exits_0_with_the_history_intact_and_the_lock_released() {
    let lab = Lab::start();
    let quick = lab.policy("term", &[lab.knot.addr()], 400);
    assert_eq!(lab.run(&["check", path_str(&quick)]).status.code(), Some(0));

    let silent = SilentServer::start();
    let slow = lab.policy("term", &[silent.addr()], 10_000);
    let child = lab.spawn(&["watch", "--every", "1h", path_str(&slow)]);
    wait_for("the run to query", Duration::from_secs(10), || {
        silent.received() > 0
    });
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 1);
    signal(&child, "TERM");
    let (code, stdout, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");

    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    assert_eq!(lab.runs("term").len(), 1, "the abandoned run wrote no run");
    assert_eq!(
        lab.sql_count("SELECT count(*) FROM failed_runs WHERE reason LIKE 'abandoned%'"),
        1
    );
    lab.assert_verified();
}

#[test]
fn a_killed_watchers_lock_is_taken_over_by_the_next_check_and_recorded() {
    let lab = Lab::start();
    let silent = SilentServer::start();
    let slow = lab.policy("stale", &[silent.addr()], 10_000);
    let mut child = lab.spawn(&["watch", "--every", "1h", path_str(&slow)]);
    let pid = child.id();
    wait_for("the run to query", Duration::from_secs(10), || {
        silent.received() > 0
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        lab.sql_count("SELECT count(*) FROM locks"),
        1,
        "left behind"
    );

    let quick = lab.policy("stale", &[lab.knot.addr()], 400);
    let out = lab.run(&["check", path_str(&quick)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("took the lock over"), "{stderr}");
    assert!(
        stderr.contains(&format!(":{pid}, which is gone")),
        "{stderr}"
    );

    let detail: String = Connection::open(lab.db())
        .expect("open")
        .query_row(
            "SELECT detail FROM events WHERE kind = 'lock_takeover' AND policy_id = 'stale'",
            [],
            |r| r.get(0),
        )
        .expect("one takeover event");
    assert!(
        detail.contains(&format!(":{pid}: process {pid} is no longer running")),
        "{detail}"
    );
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    assert_eq!(lab.runs("stale").len(), 1);
    lab.assert_verified();
}

#[test]
fn a_check_finding_a_live_holder_skips_with_exit_1() {
    let lab = Lab::start();
    let silent = SilentServer::start();
    let slow = lab.policy("busy", &[silent.addr()], 10_000);
    let child = lab.spawn(&["watch", "--every", "1h", path_str(&slow)]);
    wait_for("the run to query", Duration::from_secs(10), || {
        silent.received() > 0
    });
    let quick = lab.policy("busy", &[lab.knot.addr()], 400);
    let out = lab.run(&["check", path_str(&quick)]);
    signal(&child, "INT");
    let (code, _, _) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("skipped: policy busy is being checked by"),
        "{stderr}"
    );
    assert!(lab.runs("busy").is_empty());
}

#[test]
fn a_failing_run_is_recorded_and_the_watch_goes_on() {
    let lab = Lab::start();
    let policy = lab.policy("fails", &[lab.knot.addr()], 400);
    let mut child = lab.spawn(&[
        "watch",
        "--every",
        "1s",
        "--max-runs",
        "3",
        path_str(&policy),
    ]);
    // After the first run, the geolocation database disappears: later runs cannot locate.
    let stdout = child.stdout.take().expect("stdout");
    // The reader lives to the end of the test: closing the pipe would fail the watch's output.
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("first line");
    assert!(first.contains("run #1"), "{first}");
    std::fs::remove_file(lab.dir.path().join("lab.mmdb")).expect("remove mmdb");
    let (code, _, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr.matches("run of fails failed").count(), 2, "{stderr}");
    assert_eq!(lab.runs("fails").len(), 1);
    assert_eq!(
        lab.sql_count("SELECT count(*) FROM failed_runs WHERE policy_id = 'fails'"),
        2
    );
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    lab.assert_verified();
    drop(reader);
}

#[test]
fn bad_schedules_are_exit_3_with_a_message() {
    let lab = Lab::start();
    let policy = lab.policy("sched", &[lab.knot.addr()], 400);
    let p = path_str(&policy);
    for (args, message) in [
        (
            vec!["watch", "--every", "6 hours-ish", p],
            "is not a duration",
        ),
        (vec!["watch", "--every", "10ms", p], "at least one second"),
        (
            vec!["watch", "--cron", "61 * * * *", p],
            "is not a cron pattern",
        ),
        (vec!["watch", "--cron", "0 0 30 2 *", p], "never fires"),
        (vec!["watch", p], "--every DURATION or --cron PATTERN"),
        (
            vec!["watch", "--every", "1s", "--jitter", "lots", p],
            "is not a duration",
        ),
    ] {
        let out = lab.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(lab.runs("sched").is_empty());
}

/// `residency history ARGS --format json` as a JSON array.
fn listed(lab: &Lab, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = lab.run(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{all:?} is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    rows.as_array().cloned().expect("a JSON array")
}

/// `residency history ARGS` as a table: its lines.
fn table(lab: &Lab, args: &[&str]) -> Vec<String> {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    let out = lab.run(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[test]
fn history_events_and_failures_list_takeovers_and_failed_runs_in_both_formats() {
    let lab = Lab::start();
    let silent = SilentServer::start();
    let slow = lab.policy("audit", &[silent.addr()], 10_000);
    let before = Utc::now();

    // A takeover: a watcher killed mid-run leaves its lock, the next check takes it over.
    let mut killed = lab.spawn(&["watch", "--every", "1h", path_str(&slow)]);
    let killed_pid = killed.id();
    wait_for("the first run to query", Duration::from_secs(10), || {
        silent.received() > 0
    });
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reap");
    let quick = lab.policy("audit", &[lab.knot.addr()], 400);
    assert_eq!(lab.run(&["check", path_str(&quick)]).status.code(), Some(0));

    // A failed run: a watcher stopped by SIGTERM mid-run records its run as abandoned.
    let slow = lab.policy("audit", &[silent.addr()], 10_000);
    let queried = silent.received();
    let stopped = lab.spawn(&["watch", "--every", "1h", path_str(&slow)]);
    let stopped_pid = stopped.id();
    wait_for("the second run to query", Duration::from_secs(10), || {
        silent.received() > queried
    });
    signal(&stopped, "TERM");
    let (code, stdout, stderr) = finish(stopped, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let after = Utc::now();

    let events = listed(&lab, &["events"]);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["kind"], "lock_takeover");
    assert_eq!(e["policy_id"], "audit");
    let detail = e["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!(
            ":{killed_pid}: process {killed_pid} is no longer running"
        )),
        "{detail}"
    );
    let at = time(e, "at");
    assert!(before <= at && at <= after, "{at}");
    let holder = e["holder"].as_str().expect("holder");
    assert!(!holder.ends_with(&format!(":{killed_pid}")), "{holder}");

    let lines = table(&lab, &["events"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("KIND") && lines[0].contains("DETAIL"));
    assert!(
        lines[1].contains("audit") && lines[1].contains("lock_takeover"),
        "{lines:?}"
    );
    assert!(lines[1].ends_with(detail), "{lines:?}");

    let failures = listed(&lab, &["failures"]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f["policy_id"], "audit");
    assert_eq!(
        f["reason"],
        "abandoned: a shutdown signal arrived while measuring"
    );
    assert!(
        f["holder"]
            .as_str()
            .expect("holder")
            .ends_with(&format!(":{stopped_pid}")),
        "{f:?}"
    );
    assert!(time(f, "started_at") <= time(f, "failed_at"));
    let lines = table(&lab, &["failures"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("REASON"), "{lines:?}");
    assert!(
        lines[1].contains("audit")
            && lines[1].ends_with("abandoned: a shutdown signal arrived while measuring"),
        "{lines:?}"
    );

    // Filters: the policy, and a window that ends before or starts after everything.
    let since_after = rfc3339(after + chrono::Duration::seconds(1));
    let until_before = rfc3339(before - chrono::Duration::seconds(1));
    let (since_before, until_after) = (rfc3339(before), rfc3339(after));
    for what in ["events", "failures"] {
        assert!(listed(&lab, &[what, "--policy", "other"]).is_empty());
        assert!(listed(&lab, &[what, "--since", &since_after]).is_empty());
        assert!(listed(&lab, &[what, "--until", &until_before]).is_empty());
        let all = listed(
            &lab,
            &[
                what,
                "--policy",
                "audit",
                "--since",
                &since_before,
                "--until",
                &until_after,
            ],
        );
        assert_eq!(all.len(), 1, "{what}: {all:?}");
    }
    assert_eq!(
        table(&lab, &["events", "--policy", "other"])[1],
        "(no events)"
    );
    assert_eq!(
        table(&lab, &["failures", "--policy", "other"])[1],
        "(no failed runs)"
    );

    let bad = lab.run(&["history", "events", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("`yesterday` is not a date"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    lab.assert_verified();
}

#[test]
fn a_stopped_holders_stale_heartbeat_lets_a_check_take_over_and_is_listed() {
    let lab = Lab::start();
    let silent = SilentServer::start();
    // The holder's run waits 30 s on a resolver that never answers: it holds the lock all along.
    let slow = lab.policy("beat", &[silent.addr()], 30_000);
    let holder = lab.spawn(&[
        "watch",
        "--every",
        "1h",
        "--stale-after",
        "3s",
        path_str(&slow),
    ]);
    let pid = holder.id();
    wait_for("the holder's run to query", Duration::from_secs(10), || {
        silent.received() > 0
    });
    let quick = lab.policy("beat", &[lab.knot.addr()], 400);
    let check = || lab.run(&["check", "--stale-after", "3s", path_str(&quick)]);

    // Alive and heartbeating: past the limit since it took the lock, but never taken over.
    std::thread::sleep(Duration::from_secs(4));
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "skipped: policy beat is being checked by {}",
            hostname_pid(pid)
        )),
        "{stderr}"
    );

    // Stopped: still a live process, but its heartbeat ages past the limit.
    signal(&holder, "STOP");
    std::thread::sleep(Duration::from_secs(4));
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the check's own verdict: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "was locked by {}, which is gone (heartbeat ",
            hostname_pid(pid)
        )) && stderr.contains("is older than 3s); took the lock over"),
        "{stderr}"
    );
    assert_eq!(lab.runs("beat").len(), 1);

    let events = listed(&lab, &["events", "--policy", "beat"]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "lock_takeover");
    let detail = events[0]["detail"].as_str().expect("detail");
    let prefix = format!("took over the lock from {}: heartbeat ", hostname_pid(pid));
    assert!(
        detail.starts_with(&prefix) && detail.ends_with(" is older than 3s"),
        "{detail}"
    );
    // The heartbeat named is the holder's last, from before it was stopped.
    let beat = detail
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" is older than 3s"))
        .expect("the heartbeat time");
    let beat = DateTime::parse_from_rfc3339(beat).expect("rfc 3339");
    assert!(time(&events[0], "at") - beat.with_timezone(&Utc) > chrono::Duration::seconds(3));
    let lines = table(&lab, &["events", "--policy", "beat"]);
    assert!(
        lines.len() == 2 && lines[1].contains("lock_takeover") && lines[1].ends_with(detail),
        "{lines:?}"
    );

    // Woken up, the old holder finds its lock gone; stopped, it leaves nothing behind.
    signal(&holder, "CONT");
    signal(&holder, "TERM");
    let (code, stdout, stderr) = finish(holder, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(lab.sql_count("SELECT count(*) FROM locks"), 0);
    assert_eq!(lab.runs("beat").len(), 1);
    lab.assert_verified();
}

/// How `residency` names process `pid` of this host in locks and events.
fn hostname_pid(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    format!("{}:{pid}", host.trim())
}
