//! The history store through its public API, plus tampering through a raw SQLite connection on
//! the same file, the way someone with write access to the file would do it.
//!
//! The store tests run twice, against SQLite and against a throwaway PostgreSQL server
//! (`tests/it/common/pg.rs`; `name::sqlite` and `name::postgres`). Tampering tests go through a raw
//! connection of either kind.

use crate::common::{self, pid};

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use residency::history::{
    ChainProblem, GENESIS_HASH, History, HistoryError, NewRun, RunFilter, RunId, SCHEMA_VERSION,
    Seq, StoredRun, canonical_json,
};
use residency::model::Verdict;
use rusqlite::Connection;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T09:00:00.123456Z")
        .map(|t| t.with_timezone(&Utc))
        .expect("valid literal")
}

fn new_run(policy: &str, minute: i64, verdict: Verdict, document: Value) -> NewRun {
    let started_at = t0() + Duration::minutes(minute);
    NewRun {
        policy_id: pid(policy),
        started_at,
        finished_at: started_at + Duration::seconds(7),
        verdict,
        document,
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

/// An empty store of `kind`: `path` is the SQLite file or the PostgreSQL URL (which
/// `History::open` recognises), valid while the `Store` lives.
struct Store {
    _dir: TempDir,
    _server: Option<common::pg::Postgres>,
    path: PathBuf,
}

fn store(kind: Kind) -> Result<Store, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    Ok(match kind {
        Kind::Sqlite => Store {
            path: dir.path().join("history.sqlite"),
            _dir: dir,
            _server: None,
        },
        Kind::Postgres => {
            let server = common::pg::Postgres::start()?;
            let url = server.create_database("history")?;
            Store {
                _dir: dir,
                _server: Some(server),
                path: PathBuf::from(url),
            }
        }
    })
}

/// Runs each named `fn(Kind) -> TestResult` as two tests, `name::sqlite` and `name::postgres`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() -> super::TestResult {
                super::$name(super::Kind::Sqlite)
            }
            #[test]
            fn postgres() -> super::TestResult {
                super::$name(super::Kind::Postgres)
            }
        }
    )*};
}

both_stores!(
    append_numbers_runs_per_policy_and_links_each_to_the_previous,
    list_filters_by_policy_and_half_open_time_window,
    get_round_trips_the_document_and_stored_fields,
    verify_passes_on_an_untouched_history,
    concurrent_appends_from_two_handles_form_one_unbroken_chain,
    invalid_runs_are_refused_before_touching_the_store,
    run_locks_and_audit_tables_work_alike,
);

/// A history with two interleaved policies: eu seq 1..=4 and in seq 1..=2.
struct Seeded {
    _store: Store,
    path: PathBuf,
    eu: Vec<StoredRun>,
    india: Vec<StoredRun>,
}

fn seeded() -> Result<Seeded, Box<dyn std::error::Error>> {
    seeded_in(Kind::Sqlite)
}

fn seeded_in(kind: Kind) -> Result<Seeded, Box<dyn std::error::Error>> {
    let store = store(kind)?;
    let path = store.path.clone();
    let mut history = History::open(&path)?;
    let mut eu = Vec::new();
    let mut india = Vec::new();
    let doc = |n: i64| json!({"endpoints": [{"host": "api.example.com", "country": "DE"}], "n": n});
    eu.push(history.append(new_run("eu", 0, Verdict::Compliant, doc(1)))?);
    india.push(history.append(new_run("in", 1, Verdict::Violation, doc(2)))?);
    eu.push(history.append(new_run("eu", 2, Verdict::Compliant, doc(3)))?);
    eu.push(history.append(new_run("eu", 3, Verdict::Inconclusive, doc(4)))?);
    india.push(history.append(new_run("in", 4, Verdict::Compliant, doc(5)))?);
    eu.push(history.append(new_run("eu", 5, Verdict::Compliant, doc(6)))?);
    Ok(Seeded {
        _store: store,
        path,
        eu,
        india,
    })
}

/// A raw connection with the append-only triggers dropped: what a deliberate tamperer does.
fn tamperer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "DROP TRIGGER runs_append_only_update; DROP TRIGGER runs_append_only_delete;
         DROP TRIGGER chain_head_no_delete; DROP TRIGGER chain_head_forward_only;
         DROP TRIGGER run_digests_append_only_update; DROP TRIGGER run_digests_append_only_delete;
         DROP TRIGGER endpoint_changes_append_only_update;
         DROP TRIGGER endpoint_changes_append_only_delete;",
    )?;
    Ok(conn)
}

/// A run's stored canonical document text, decompressed the way residency stores it.
fn stored_document(conn: &Connection, id: RunId) -> Result<String, Box<dyn std::error::Error>> {
    let blob: Vec<u8> =
        conn.query_row("SELECT document_zstd FROM runs WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    Ok(String::from_utf8(zstd::stream::decode_all(
        blob.as_slice(),
    )?)?)
}

/// Replaces a run's stored document the way a tamperer who knows the format would.
fn store_document(
    conn: &Connection,
    id: RunId,
    text: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    conn.execute(
        "UPDATE runs SET document_zstd = ?1 WHERE id = ?2",
        rusqlite::params![zstd::stream::encode_all(text.as_bytes(), 3)?, id],
    )?;
    Ok(())
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn append_numbers_runs_per_policy_and_links_each_to_the_previous(kind: Kind) -> TestResult {
    let s = seeded_in(kind)?;
    let seqs: Vec<i64> = s.eu.iter().map(|r| r.seq.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(s.india.iter().map(|r| r.seq.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(s.eu[0].prev_hash, GENESIS_HASH);
    assert_eq!(s.india[0].prev_hash, GENESIS_HASH);
    for pair in s.eu.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(s.india[1].prev_hash, s.india[0].hash);
    let ids: Vec<RunId> = s.eu.iter().chain(&s.india).map(|r| r.id).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "run ids are unique across policies"
    );
    assert!(s.eu[0].hash.len() == 64 && s.eu[0].hash.bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(())
}

fn list_filters_by_policy_and_half_open_time_window(kind: Kind) -> TestResult {
    let s = seeded_in(kind)?;
    let history = History::open(&s.path)?;

    let all = history.list(&RunFilter::default())?;
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2).all(|w| w[0].started_at <= w[1].started_at),
        "oldest first"
    );
    assert_eq!(all[1].id, s.india[0].id);

    let eu = history.list(&RunFilter {
        policy_id: Some(pid("eu")),
        ..Default::default()
    })?;
    assert_eq!(
        eu.iter().map(|r| r.id).collect::<Vec<_>>(),
        s.eu.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_eq!(eu[3].hash, s.eu[3].hash);
    assert_eq!(eu[2].verdict, Verdict::Inconclusive);

    // since is inclusive, until exclusive: minutes 2..4 are eu#2, eu#3 (and not in#2 at 4).
    let window = RunFilter {
        policy_id: None,
        since: Some(s.eu[1].started_at),
        until: Some(s.india[1].started_at),
    };
    let ids: Vec<RunId> = history.list(&window)?.iter().map(|r| r.id).collect();
    assert_eq!(ids, [s.eu[1].id, s.eu[2].id]);

    let india_since = RunFilter {
        policy_id: Some(pid("in")),
        since: Some(s.eu[1].started_at),
        until: None,
    };
    let ids: Vec<RunId> = history.list(&india_since)?.iter().map(|r| r.id).collect();
    assert_eq!(ids, [s.india[1].id]);

    let nobody = RunFilter {
        policy_id: Some(pid("nope")),
        ..Default::default()
    };
    assert!(history.list(&nobody)?.is_empty());
    Ok(())
}

fn get_round_trips_the_document_and_stored_fields(kind: Kind) -> TestResult {
    let store = store(kind)?;
    let mut history = History::open(&store.path)?;
    let document = json!({
        "z": {"nested": [1, 2.5, -3, null, true], "unicode": "Zürich ✓ \"quoted\"\n"},
        "a": [],
        "m": {}
    });
    let stored = history.append(new_run("ch", 0, Verdict::Violation, document.clone()))?;
    let fetched = history.get(stored.id)?.ok_or("run missing")?;
    assert_eq!(fetched, stored);
    assert_eq!(fetched.document, document);
    assert_eq!(
        fetched.started_at,
        t0(),
        "microsecond timestamps survive unchanged"
    );
    assert_eq!(history.get(RunId(stored.id.0 + 1000))?, None);

    let as_json = serde_json::to_value(&fetched)?;
    assert_eq!(as_json["started_at"], "2025-03-01T09:00:00.123456Z");
    assert_eq!(as_json["verdict"], "violation");
    Ok(())
}

fn verify_passes_on_an_untouched_history(kind: Kind) -> TestResult {
    let s = seeded_in(kind)?;
    let report = History::open(&s.path)?.verify(None)?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.runs_checked(), 6);
    let policies: Vec<&str> = report
        .policies
        .iter()
        .map(|p| p.policy_id.as_str())
        .collect();
    assert_eq!(policies, ["eu", "in"]);
    assert_eq!(report.policies[0].head.as_ref().map(|h| h.seq.0), Some(4));
    assert_eq!(
        report.policies[0].head.as_ref().map(|h| h.hash.as_str()),
        Some(s.eu[3].hash.as_str())
    );

    let one = History::open(&s.path)?.verify(Some(&pid("in")))?;
    assert_eq!(one.policies.len(), 1);
    assert_eq!(one.policies[0].runs_checked, 2);

    let unknown = History::open(&s.path)?.verify(Some(&pid("typo")))?;
    assert_eq!(
        unknown.policies[0].runs_checked, 0,
        "an unknown policy is visibly empty"
    );
    Ok(())
}

#[test]
fn plain_edits_are_refused_by_the_append_only_triggers() -> TestResult {
    let s = seeded()?;
    let conn = Connection::open(&s.path)?;
    let update = conn.execute(
        "UPDATE runs SET verdict = 'compliant' WHERE id = ?1",
        [s.india[0].id],
    );
    assert!(update.is_err_and(|e| e.to_string().contains("append-only")));
    let delete = conn.execute("DELETE FROM runs WHERE id = ?1", [s.eu[3].id]);
    assert!(delete.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(conn.execute("DELETE FROM chain_head", []).is_err());
    assert!(History::open(&s.path)?.verify(None)?.is_intact());
    Ok(())
}

/// Several checkers share one PostgreSQL history: each run keeps where it was measured from.
#[test]
fn postgres_runs_record_their_vantage_point() -> TestResult {
    let store = store(Kind::Postgres)?;
    let mut history = History::open(&store.path)?;
    let vantage = |cc: &str, lat: f64, lon: f64| json!({"vantage": {"country": cc, "latitude": lat, "longitude": lon}});
    let india = history.append(new_run(
        "p",
        0,
        Verdict::Compliant,
        vantage("IN", 19.07, 72.87),
    ))?;
    let us = history.append(new_run(
        "p",
        1,
        Verdict::Compliant,
        vantage("US", 37.4, -122.1),
    ))?;
    let none = history.append(new_run("p", 2, Verdict::Compliant, json!({})))?;
    let url = store.path.to_str().ok_or("url")?;
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let rows = client.query("SELECT id, vantage FROM runs ORDER BY id", &[])?;
    let got: Vec<(i64, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            (india.id.0, Some("IN (19.07,72.87)".to_string())),
            (us.id.0, Some("US (37.4,-122.1)".to_string())),
            (none.id.0, None)
        ]
    );
    assert!(history.verify(None)?.is_intact());
    Ok(())
}

/// Run locks (`crate::run::lock`) and the audit tables beside the chain: taken, refused to another
/// live holder, taken over (recorded in `events`), released; failed runs and alert deliveries
/// recorded and listed, the latest undelivered alert found.
fn run_locks_and_audit_tables_work_alike(kind: Kind) -> TestResult {
    use residency::history::{AuditFilter, EventKind};
    use residency::run::lock::{self, Acquired, Holder};
    let store = store(kind)?;
    let mut history = History::open(&store.path)?;
    let me = Holder::current();
    let other = Holder {
        host: "elsewhere".into(),
        pid: 1,
    };
    let stale = std::time::Duration::from_secs(300);
    assert_eq!(
        lock::acquire(&mut history, &pid("p"), &other, stale)?,
        Acquired::Free
    );
    assert!(matches!(
        lock::acquire(&mut history, &pid("p"), &me, stale)?,
        Acquired::Held { holder, .. } if holder == other.to_string()
    ));
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(matches!(
        lock::acquire(&mut history, &pid("p"), &me, std::time::Duration::ZERO)?,
        Acquired::TookOver { previous, .. } if previous == other.to_string()
    ));
    assert!(lock::heartbeat(&mut history, &pid("p"), &me)?);
    assert!(!lock::heartbeat(&mut history, &pid("p"), &other)?);
    lock::release(&mut history, &pid("p"), &me)?;
    assert_eq!(
        lock::acquire(&mut history, &pid("p"), &other, stale)?,
        Acquired::Free
    );
    let events = history.events(&AuditFilter::default())?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind, events[0].holder.as_str()),
        (EventKind::LockTakeover, me.to_string().as_str())
    );

    let failed =
        history.record_failure(&pid("p"), t0(), &me.to_string(), "resolver unreachable")?;
    let failures = history.failed_runs(&AuditFilter {
        policy_id: Some(pid("p")),
        ..AuditFilter::default()
    })?;
    assert_eq!(
        failures
            .iter()
            .map(|f| (f.id, f.reason.as_str(), f.started_at))
            .collect::<Vec<_>>(),
        [(failed, "resolver unreachable", t0())]
    );

    let run = history.append(new_run("p", 0, Verdict::Violation, json!({})))?;
    history.record_alert(
        run.id,
        &pid("p"),
        "violation",
        false,
        "HTTP 500 after 3 tries",
    )?;
    let owed = history.undelivered_alerts(Some(&pid("p")))?;
    assert_eq!(
        owed.iter()
            .map(|a| (a.run_id, a.delivered))
            .collect::<Vec<_>>(),
        [(run.id, false)]
    );
    history.record_alert(run.id, &pid("p"), "violation", true, "delivered on try 1")?;
    assert!(history.undelivered_alerts(None)?.is_empty());
    assert_eq!(history.alert_deliveries(&AuditFilter::default())?.len(), 2);
    Ok(())
}

fn concurrent_appends_from_two_handles_form_one_unbroken_chain(kind: Kind) -> TestResult {
    let store = store(kind)?;
    let path = store.path.clone();
    // Both threads open a fresh file at the same time: migration must not race either.
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let path = path.clone();
            std::thread::spawn(move || -> Result<Vec<i64>, HistoryError> {
                let mut history = History::open(&path)?;
                (0..20)
                    .map(|i| {
                        let run = new_run(
                            "shared",
                            i,
                            Verdict::Compliant,
                            json!({"worker": worker, "i": i}),
                        );
                        history.append(run).map(|stored| stored.seq.0)
                    })
                    .collect()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for worker in workers {
        seqs.extend(worker.join().map_err(|_| "worker panicked")??);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<i64>>());

    let history = History::open(&path)?;
    let report = history.verify(None)?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.policies[0].runs_checked, 40);
    assert_eq!(report.policies[0].head.as_ref().map(|h| h.seq.0), Some(40));
    Ok(())
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notes.txt");
    let text = "these are my notes, not a database\n".repeat(20);
    std::fs::write(&path, &text)?;
    let err = History::open(&path).expect_err("must refuse a text file");
    assert!(matches!(err, HistoryError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not an SQLite database"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path)?,
        text,
        "the file is untouched"
    );
    Ok(())
}

#[test]
fn another_programs_sqlite_database_is_not_adopted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("other.sqlite");
    Connection::open(&path)?.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")?;
    let err = History::open(&path).expect_err("must refuse a foreign database");
    assert!(
        matches!(err, HistoryError::ForeignDatabase { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
    Ok(())
}

#[test]
fn a_newer_schema_version_asks_for_an_upgrade() -> TestResult {
    let s = seeded()?;
    let future = SCHEMA_VERSION + 1;
    Connection::open(&s.path)?.pragma_update(None, "user_version", future)?;
    let err = History::open(&s.path).expect_err("must refuse a newer schema");
    assert_eq!(
        err.to_string(),
        format!(
            "{} has schema version {future}, this residency understands up to {SCHEMA_VERSION}: upgrade residency",
            s.path.display()
        )
    );
    Ok(())
}

#[test]
fn open_creates_parent_directories_uses_wal_and_keeps_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("a/b/c/history.sqlite");
    let stored = History::open(&path)?.append(new_run("p", 0, Verdict::Compliant, json!([1])))?;
    let reopened = History::open(&path)?;
    assert_eq!(reopened.path(), path);
    assert_eq!(reopened.get(stored.id)?, Some(stored));
    let conn = Connection::open(&path)?;
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    assert_eq!(mode, "wal");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    assert_eq!(version, SCHEMA_VERSION);
    Ok(())
}

#[test]
fn an_uncommitted_append_leaves_no_trace() -> TestResult {
    let s = seeded()?;
    let mut history = History::open(&s.path)?;
    let before = history.list(&RunFilter::default())?;
    {
        // The same statements append runs, in a transaction that never commits (a writer that
        // crashed or was killed mid-append).
        let mut raw = Connection::open(&s.path)?;
        let tx = raw.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO runs (policy_id, seq, started_at, finished_at, verdict, document, prev_hash, hash)
             VALUES ('eu', 5, '2025-03-01T10:00:00.000000Z', '2025-03-01T10:00:01.000000Z',
                     'compliant', '{}', ?1, ?2)",
            rusqlite::params![s.eu[3].hash, "f".repeat(64)],
        )?;
        tx.execute(
            "UPDATE chain_head SET seq = 5, hash = ?1 WHERE policy_id = 'eu'",
            [&"f".repeat(64)],
        )?;
        drop(tx);
    }
    assert_eq!(history.list(&RunFilter::default())?, before);
    assert!(history.verify(None)?.is_intact());
    let next = history.append(new_run("eu", 10, Verdict::Compliant, json!({})))?;
    assert_eq!(
        (next.seq, next.prev_hash.as_str()),
        (Seq(5), s.eu[3].hash.as_str())
    );
    Ok(())
}

fn invalid_runs_are_refused_before_touching_the_store(kind: Kind) -> TestResult {
    let store = store(kind)?;
    let mut history = History::open(&store.path)?;
    let mut backwards = new_run("p", 0, Verdict::Compliant, json!({}));
    backwards.finished_at = backwards.started_at - Duration::seconds(1);
    assert!(matches!(
        history.append(backwards),
        Err(HistoryError::InvalidRun(_))
    ));
    // A run without a policy id cannot even be built: `NewRun` takes a parsed `PolicyId`.
    assert!(residency::policy::PolicyId::parse(" ").is_err());
    assert!(history.list(&RunFilter::default())?.is_empty());
    Ok(())
}

/// Run documents recorded by earlier versions must stay readable: this one was recorded by the
/// first release (before paths, RTTs, registry records and confidence existed).
#[test]
fn a_run_document_from_the_first_release_still_reads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/run-first-release.json");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let doc: residency::record::RunDocument =
        serde_json::from_str(&text).expect("an old run document deserialises");
    assert_eq!(doc.policy.id.as_str(), "example-public-dns");
    assert_eq!(doc.endpoints.len(), 6);
    let first = &doc.endpoints[0].addresses[0];
    assert_eq!(first.confidence, residency::model::Confidence::Low);
    assert!(first.path.is_none() && first.rtt.is_none() && first.decided_by.is_empty());
    let table = residency::report::table::run_document(&doc, None);
    assert!(table.contains("VIOLATION"), "{table}");
}

/// A run document with real endpoint verdicts and located addresses, so the index has content.
fn judged(endpoints: &[(&str, &str, &str)]) -> Value {
    json!({"endpoints": endpoints.iter().map(|(host, verdict, country)| json!({
        "host": host, "verdict": verdict,
        "addresses": [{"ip": format!("192.0.2.{}", host.len()), "country": country}]
    })).collect::<Vec<_>>()})
}

fn judged_history() -> Result<(TempDir, PathBuf, Vec<StoredRun>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("history.sqlite");
    let mut history = History::open(&path)?;
    let runs = vec![
        history.append(new_run(
            "p",
            0,
            Verdict::Compliant,
            judged(&[
                ("a.test", "compliant", "IN"),
                ("bb.test", "compliant", "IN"),
            ]),
        ))?,
        history.append(new_run(
            "p",
            1,
            Verdict::Violation,
            judged(&[
                ("a.test", "violation", "CN"),
                ("bb.test", "compliant", "IN"),
            ]),
        ))?,
        history.append(new_run(
            "p",
            2,
            Verdict::Compliant,
            judged(&[("a.test", "compliant", "IN")]),
        ))?,
    ];
    Ok((dir, path, runs))
}

#[test]
fn documents_are_stored_compressed_and_read_back_whole() -> TestResult {
    let (_dir, path, runs) = judged_history()?;
    let conn = Connection::open(&path)?;
    let (text, blob): (String, Vec<u8>) = conn.query_row(
        "SELECT document, document_zstd FROM runs WHERE id = ?1",
        [runs[1].id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(text, "");
    assert_eq!(
        String::from_utf8(zstd::stream::decode_all(blob.as_slice())?)?,
        canonical_json(&runs[1].document)
    );
    let history = History::open(&path)?;
    assert_eq!(
        history.get(runs[1].id)?.map(|r| r.document),
        Some(runs[1].document.clone())
    );
    Ok(())
}

#[test]
fn runs_recorded_before_the_index_are_indexed_on_open() -> TestResult {
    let (_dir, path, runs) = judged_history()?;
    let expected = History::open(&path)?.verify(None)?;
    {
        // Put the file back the way schema 3 stored runs: text documents, no index.
        let conn = tamperer(&path)?;
        for run in &runs {
            let text = stored_document(&conn, run.id)?;
            conn.execute(
                "UPDATE runs SET document = ?1, document_zstd = NULL WHERE id = ?2",
                rusqlite::params![text, run.id],
            )?;
        }
        conn.execute_batch("DELETE FROM run_digests; DELETE FROM endpoint_changes;")?;
    }
    let history = History::open(&path)?;
    assert_eq!(history.verify(None)?, expected);
    let indexed = history.indexed(&RunFilter::default())?;
    assert_eq!(indexed.len(), 3);
    assert_eq!(indexed[1].countries.get("CN"), Some(&1));
    let changes = history.endpoint_changes(&pid("p"), Seq(3))?;
    let summary: Vec<(i64, &str, Option<Verdict>)> = changes
        .iter()
        .map(|c| (c.seq.0, c.host.as_str(), c.verdict))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "a.test", Some(Verdict::Compliant)),
            (1, "bb.test", Some(Verdict::Compliant)),
            (2, "a.test", Some(Verdict::Violation)),
            (3, "a.test", Some(Verdict::Compliant)),
            (3, "bb.test", None),
        ]
    );
    Ok(())
}

/// An unreachable PostgreSQL history is a clear error that hides the URL's password.
#[test]
fn an_unreachable_postgres_history_says_what_to_check_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = History::open(Path::new("postgres://checker:secret@127.0.0.1:1/history"))
        .expect_err("nothing listens on port 1");
    let message = err.to_string();
    assert!(
        matches!(err, HistoryError::PostgresConnect { .. }),
        "{err:?}"
    );
    assert!(
        message.contains("postgres://checker@127.0.0.1:1/history")
            && message.contains("check that the server is running")
            && !message.contains("secret"),
        "{message}"
    );
}

mod tamper;
