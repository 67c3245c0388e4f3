//! `residency combine` on a real history: vantage runs (measured by the fast tier's fakes from
//! two declared points) are recorded, then the binary combines them, records the combined run
//! in the chain, verifies it, compares it and reports it.

use std::path::Path;
use std::sync::Arc;

use residency::history::{History, NewRun};
use residency::record::RunDocument;
use serde_json::Value;

use crate::common::cmd::Residency;
use crate::common::scenario;

/// Each vantage's run of a combined scenario, as `check` would have recorded it.
fn vantage_runs(name: &str) -> Vec<RunDocument> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name);
    let (s, policy) = scenario::load(&path).expect("the scenario loads");
    assert!(!s.vantages.is_empty(), "{name} has vantages");
    s.vantages
        .into_iter()
        .map(|v| {
            let mut policy = policy.clone();
            policy.vantage = Some(v.vantage);
            scenario::check_from(&Arc::new(v.world), &policy, &v.label).expect("the run")
        })
        .collect()
}

fn record(db: &Path, doc: &RunDocument) -> residency::history::StoredRun {
    let mut history = History::open(db).expect("the history opens");
    history
        .append(NewRun {
            policy_id: doc.policy.id.clone(),
            started_at: doc.started_at,
            finished_at: doc.finished_at,
            verdict: doc.verdict,
            document: serde_json::to_value(doc).expect("serialises"),
        })
        .expect("recorded")
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_combined_run_is_recorded_in_the_chain_verified_compared_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("history.sqlite");
    let stored: Vec<_> = vantage_runs("combine-multilateration.yaml")
        .iter()
        .map(|doc| record(&db, doc))
        .collect();
    assert!(stored.iter().all(|s| s.verdict.as_str() == "inconclusive"));

    let out = Residency::new(dir.path())
        .args(["combine", "lens", "--window", "1h", "--format", "json"])
        .output();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["verdict"], "compliant");
    assert_eq!(doc["window"]["seconds"], 3600);
    // The vantage runs are named by id and hash, in label order.
    let vantages = doc["vantages"].as_array().expect("vantages");
    let named: Vec<(i64, String, String)> = vantages
        .iter()
        .map(|v| {
            (
                v["run_id"].as_i64().expect("run id"),
                v["hash"].as_str().expect("hash").to_string(),
                v["label"].as_str().expect("label").to_string(),
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![
            (
                stored[1].id.0,
                stored[1].hash.clone(),
                "chennai".to_string()
            ),
            (stored[0].id.0, stored[0].hash.clone(), "delhi".to_string()),
        ]
    );
    let address = &doc["endpoints"][0]["addresses"][0];
    assert_eq!(address["intersection"], serde_json::json!(["IN"]));
    assert_eq!(address["anycast"], false);
    assert_eq!(doc["history"]["seq"], 3);

    // Chained like every run.
    crate::common::cmd::assert_chain_intact(dir.path(), "lens");

    // Combining again takes the vantage runs, never the combined one.
    let again = json(
        &Residency::new(dir.path())
            .args(["combine", "lens", "--format", "json"])
            .output(),
    );
    let ids: Vec<i64> = again["vantages"]
        .as_array()
        .expect("vantages")
        .iter()
        .filter_map(|v| v["run_id"].as_i64())
        .collect();
    assert_eq!(ids, vec![stored[1].id.0, stored[0].id.0]);

    // The table names the vantages and the overlap.
    let table = Residency::new(dir.path())
        .args(["combine", "lens"])
        .output();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("Combined 2 vantage runs started in the 1h before"),
        "{text}"
    );
    assert!(text.contains("one site; the disks overlap in IN"), "{text}");
    assert!(
        text.contains("from delhi: 10.50 ms, within 1,100 km; inconclusive there, reaches site 1"),
        "{text}"
    );

    // diff reads a combined run like any other: a single run against the combined one.
    let diff = Residency::new(dir.path())
        .args([
            "diff",
            "lens",
            "--from",
            &stored[0].id.0.to_string(),
            "--to",
            &doc["history"]["run_id"].to_string(),
            "--format",
            "json",
        ])
        .output();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let diff = json(&diff);
    assert!(diff.to_string().contains("compliant"), "{diff}");

    // The reports name the vantage runs and draw both vantages and their disks.
    let combined_id = doc["history"]["run_id"].to_string();
    for out in ["combined.html", "combined.md", "combined.pdf"] {
        let o = Residency::new(dir.path())
            .args(["report", "lens", "--run", &combined_id, "--out", out])
            .output();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{out}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let html = std::fs::read_to_string(dir.path().join("combined.html")).expect("html");
    assert!(
        html.contains("Vantage points combined"),
        "the vantage table"
    );
    for (stored, label) in [(&stored[0], "delhi"), (&stored[1], "chennai")] {
        assert!(
            html.contains(&stored.hash),
            "{label}'s run hash is in the report"
        );
        assert!(
            html.contains(&format!("vantage point {label}")),
            "{label}'s diamond"
        );
        assert!(
            html.contains(&format!(
                "203.0.113.10 from {label}: 10.50 ms, within 1100 km"
            )),
            "{label}'s disk"
        );
    }
    let md = std::fs::read_to_string(dir.path().join("combined.md")).expect("md");
    assert!(md.contains("combined from 2 vantage points"), "{md}");
    let pdf = std::process::Command::new("pdftotext")
        .args([dir.path().join("combined.pdf").as_os_str(), "-".as_ref()])
        .output();
    match pdf {
        Ok(p) if p.status.success() => {
            let text = String::from_utf8_lossy(&p.stdout);
            assert!(text.contains("Vantage points combined"), "{text}");
            assert!(text.contains("chennai") && text.contains("delhi"), "{text}");
        }
        _ => panic!("pdftotext (poppler-utils) is needed to read the PDF report: install it"),
    }
}

#[test]
fn combine_without_runs_in_the_window_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("history.sqlite");
    // A run from two hours ago is outside a one-hour window.
    let mut old = vantage_runs("combine-multilateration.yaml").remove(0);
    old.started_at -= chrono::Duration::hours(2);
    old.finished_at -= chrono::Duration::hours(2);
    record(&db, &old);
    let out = Residency::new(dir.path())
        .args(["combine", "lens", "--window", "1h"])
        .output();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no run of lens started between"), "{err}");
    assert!(err.contains("widen --window"), "{err}");
    // Wider, it is found, and one vantage alone stays what it was.
    let out = Residency::new(dir.path())
        .args(["combine", "lens", "--window", "3h", "--format", "json"])
        .output();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["verdict"], "inconclusive");
    let bad = Residency::new(dir.path())
        .args(["combine", "lens", "--window", "soon"])
        .output();
    assert_eq!(
        bad.status.code(),
        Some(3),
        "a bad window is refused before the history is read"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("soon"));
}
