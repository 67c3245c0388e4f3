//! Tampering: every edit a tamperer could make to a history, by hand and as a property (any
//! single cell of runs, chain heads and the index, or one byte of a document), must be reported
//! by `verify`; plain edits are refused by the append-only guards.

use super::*;

both_stores!(tampering_is_detected_and_plain_edits_refused);

/// Runs `sql` on a raw connection to the store at `path`, outside residency: what someone with
/// write access to the file or the database can do.
fn raw_sql(path: &Path, sql: &str) -> Result<(), String> {
    match path.to_str().filter(|p| p.starts_with("postgres://")) {
        Some(url) => postgres::Client::connect(url, postgres::NoTls)
            .and_then(|mut c| c.batch_execute(sql))
            .map_err(|e| format!("{e}: {}", e.as_db_error().map_or("", |d| d.message()))),
        None => Connection::open(path)
            .and_then(|c| c.execute_batch(sql))
            .map_err(|e| e.to_string()),
    }
}

fn tampering_is_detected_and_plain_edits_refused(kind: Kind) -> TestResult {
    let s = seeded_in(kind)?;
    for edit in [
        format!(
            "UPDATE runs SET verdict = 'compliant' WHERE id = {}",
            s.india[0].id
        ),
        format!("DELETE FROM runs WHERE id = {}", s.eu[3].id),
        "DELETE FROM chain_head".to_string(),
        "UPDATE chain_head SET seq = 1".to_string(),
    ] {
        let refused = raw_sql(&s.path, &edit);
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("append-only")),
            "{edit}: {refused:?}"
        );
    }
    assert!(History::open(&s.path)?.verify(None)?.is_intact());

    let drop_guards = match kind {
        Kind::Sqlite => {
            "DROP TRIGGER runs_append_only_update; DROP TRIGGER runs_append_only_delete;"
        }
        Kind::Postgres => "ALTER TABLE runs DISABLE TRIGGER USER;",
    };
    raw_sql(&s.path, drop_guards)?;
    raw_sql(
        &s.path,
        &format!(
            "UPDATE runs SET verdict = 'compliant' WHERE id = {};
             DELETE FROM runs WHERE id = {};",
            s.eu[2].id, s.india[1].id
        ),
    )?;
    let report = History::open(&s.path)?.verify(None)?;
    assert!(!report.is_intact());
    let eu = report.policies[0].broken.as_ref().ok_or("eu intact")?;
    assert_eq!(
        (eu.id, &eu.problem),
        (Some(s.eu[2].id), &ChainProblem::HashMismatch)
    );
    let india = report.policies[1].broken.as_ref().ok_or("in intact")?;
    assert_eq!(
        india.problem,
        ChainProblem::MissingTail {
            first_missing: Seq(2),
            last_missing: Seq(2)
        }
    );
    Ok(())
}

#[test]
fn edited_verdict_is_reported_as_hash_mismatch_on_that_run() -> TestResult {
    let s = seeded()?;
    tamperer(&s.path)?.execute(
        "UPDATE runs SET verdict = 'compliant' WHERE id = ?1",
        [s.eu[2].id],
    )?;
    let report = History::open(&s.path)?.verify(None)?;
    assert!(!report.is_intact());
    let eu = &report.policies[0];
    let broken = eu.broken.as_ref().ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (Some(s.eu[2].id), Seq(3)));
    assert_eq!(broken.problem, ChainProblem::HashMismatch);
    assert_eq!(broken.message, "hash mismatch: row edited");
    assert_eq!(eu.runs_checked, 3);
    assert!(
        report.policies[1].broken.is_none(),
        "the other policy's chain is unaffected"
    );
    Ok(())
}

#[test]
fn deleted_middle_run_is_reported_as_a_seq_gap() -> TestResult {
    let s = seeded()?;
    tamperer(&s.path)?.execute("DELETE FROM runs WHERE id = ?1", [s.eu[1].id])?;
    let report = History::open(&s.path)?.verify(Some(&pid("eu")))?;
    let broken = report.policies[0]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (Some(s.eu[2].id), Seq(3)));
    assert_eq!(
        broken.problem,
        ChainProblem::SeqGap {
            missing_seq: Seq(2)
        }
    );
    assert_eq!(broken.message, "seq gap: run seq 2 missing");
    Ok(())
}

#[test]
fn replaced_run_with_recomputed_hash_breaks_the_next_link() -> TestResult {
    let s = seeded()?;
    let conn = tamperer(&s.path)?;
    // A careful tamperer edits eu seq 2's document and recomputes that row's hash correctly.
    let victim = &s.eu[1];
    let forged_doc = json!({"endpoints": [{"host": "api.example.com", "country": "FR"}], "n": 3});
    let record = json!({
        "policy_id": "eu",
        "seq": victim.seq,
        "started_at": "2025-03-01T09:02:00.123456Z",
        "finished_at": "2025-03-01T09:02:07.123456Z",
        "verdict": "compliant",
        "prev_hash": victim.prev_hash,
        "document": forged_doc,
    });
    let forged_hash = sha256_hex(&canonical_json(&record));
    // Sanity: the same recipe reproduces the genuine hash, so the forgery is "valid" on its own.
    let mut genuine = record.clone();
    genuine["document"] = victim.document.clone();
    assert_eq!(sha256_hex(&canonical_json(&genuine)), victim.hash);
    // Stored the pre-compression way (text column), which residency still reads.
    conn.execute(
        "UPDATE runs SET document = ?1, document_zstd = NULL, hash = ?2 WHERE id = ?3",
        rusqlite::params![canonical_json(&forged_doc), forged_hash, victim.id],
    )?;

    let report = History::open(&s.path)?.verify(Some(&pid("eu")))?;
    let broken = report.policies[0]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (Some(s.eu[2].id), Seq(3)));
    assert_eq!(
        broken.problem,
        ChainProblem::PrevHashMismatch {
            previous_id: Some(victim.id)
        }
    );
    assert_eq!(
        broken.message,
        format!(
            "prev_hash does not match run #{}: a run was deleted or reordered",
            victim.id
        )
    );
    Ok(())
}

#[test]
fn deleted_last_run_is_detected_through_chain_head() -> TestResult {
    let s = seeded()?;
    tamperer(&s.path)?.execute("DELETE FROM runs WHERE id = ?1", [s.eu[3].id])?;
    let report = History::open(&s.path)?.verify(Some(&pid("eu")))?;
    let eu = &report.policies[0];
    let broken = eu.broken.as_ref().ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (None, Seq(4)));
    assert_eq!(
        broken.problem,
        ChainProblem::MissingTail {
            first_missing: Seq(4),
            last_missing: Seq(4)
        }
    );
    assert_eq!(
        broken.message,
        "run seq 4 is missing (deleted after it was recorded)"
    );
    assert_eq!(eu.runs_checked, 3);
    Ok(())
}

#[test]
fn appending_after_a_deleted_last_run_keeps_the_gap_visible() -> TestResult {
    let s = seeded()?;
    tamperer(&s.path)?.execute("DELETE FROM runs WHERE id = ?1", [s.eu[3].id])?;
    let mut history = History::open(&s.path)?;
    let next = history.append(new_run("eu", 9, Verdict::Compliant, json!({})))?;
    assert_eq!(
        next.seq.0, 5,
        "chains from the head, not from the surviving rows"
    );
    assert_eq!(next.prev_hash, s.eu[3].hash);
    let broken = history.verify(Some(&pid("eu")))?.policies[0]
        .broken
        .clone()
        .ok_or("break not found")?;
    assert_eq!(
        broken.problem,
        ChainProblem::SeqGap {
            missing_seq: Seq(4)
        }
    );
    Ok(())
}

#[test]
fn edited_document_content_is_a_hash_mismatch() -> TestResult {
    let s = seeded()?;
    let conn = tamperer(&s.path)?;
    let original = stored_document(&conn, s.india[0].id)?;
    assert!(
        !original.contains(' ') && original.contains("\"DE\""),
        "stored canonical: {original}"
    );
    let edited = original.replace("\"DE\"", "\"IN\"");
    store_document(&conn, s.india[0].id, &edited)?;
    let report = History::open(&s.path)?.verify(None)?;
    let broken = report.policies[1]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!(
        (broken.id, broken.problem.clone()),
        (Some(s.india[0].id), ChainProblem::HashMismatch)
    );
    Ok(())
}

#[test]
fn reformatted_document_is_a_hash_mismatch_even_if_equal_as_json() -> TestResult {
    let s = seeded()?;
    let conn = tamperer(&s.path)?;
    let original = stored_document(&conn, s.eu[0].id)?;
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&original)?)?;
    store_document(&conn, s.eu[0].id, &pretty)?;
    let report = History::open(&s.path)?.verify(Some(&pid("eu")))?;
    let broken = report.policies[0]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (Some(s.eu[0].id), Seq(1)));
    assert_eq!(broken.problem, ChainProblem::HashMismatch);
    Ok(())
}

#[test]
fn an_edited_index_is_reported_by_verify() -> TestResult {
    let (_dir, path, runs) = judged_history()?;
    assert!(History::open(&path)?.verify(None)?.is_intact());
    // Someone makes the violation disappear from timelines by editing the index only.
    tamperer(&path)?.execute(
        "UPDATE endpoint_changes SET verdict = 'compliant' WHERE seq = 2 AND host = 'a.test'",
        [],
    )?;
    let report = History::open(&path)?.verify(Some(&pid("p")))?;
    let broken = report.policies[0]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!((broken.id, broken.seq), (Some(runs[1].id), Seq(2)));
    assert!(
        matches!(&broken.problem, ChainProblem::IndexMismatch { detail } if detail.contains("endpoint verdicts")),
        "{broken:?}"
    );
    assert!(
        broken
            .message
            .contains("timelines of this policy cannot be trusted"),
        "{}",
        broken.message
    );

    // Editing a digest's countries is caught as well.
    let (_dir, path, runs) = judged_history()?;
    tamperer(&path)?.execute(
        "UPDATE run_digests SET countries = '{\"IN\":2}' WHERE run_id = ?1",
        [runs[1].id],
    )?;
    let report = History::open(&path)?.verify(Some(&pid("p")))?;
    let broken = report.policies[0]
        .broken
        .as_ref()
        .ok_or("break not found")?;
    assert_eq!(broken.id, Some(runs[1].id));
    Ok(())
}

/// The cells of a history a tamperer could edit, each with the SQL that edits one (`{id}` is
/// the run's id, `{salt}` any short text, `{delta}` a small positive number).
const CELL_EDITS: &[(&str, &str)] = &[
    (
        "runs.policy_id",
        "UPDATE runs SET policy_id = policy_id || '{salt}' WHERE id = {id}",
    ),
    (
        "runs.seq",
        "UPDATE runs SET seq = seq + 100 + {delta} WHERE id = {id}",
    ),
    (
        "runs.started_at",
        "UPDATE runs SET started_at = '1999-12-31T23:59:59.000000Z' WHERE id = {id}",
    ),
    (
        "runs.finished_at",
        "UPDATE runs SET finished_at = '1999-12-31T23:59:59.000000Z' WHERE id = {id}",
    ),
    (
        "runs.verdict",
        "UPDATE runs SET verdict = CASE verdict WHEN 'compliant' THEN 'violation' ELSE 'compliant' END WHERE id = {id}",
    ),
    (
        "runs.prev_hash",
        "UPDATE runs SET prev_hash = CASE substr(prev_hash, {delta}, 1) WHEN 'a' THEN 'b' ELSE 'a' END || substr(prev_hash, {delta} + 1) WHERE id = {id}",
    ),
    (
        "runs.hash",
        "UPDATE runs SET hash = CASE substr(hash, {delta}, 1) WHEN 'a' THEN 'b' ELSE 'a' END || substr(hash, {delta} + 1) WHERE id = {id}",
    ),
    (
        "chain_head.seq",
        "UPDATE chain_head SET seq = seq + {delta} WHERE policy_id = (SELECT policy_id FROM runs WHERE id = {id})",
    ),
    (
        "chain_head.hash",
        "UPDATE chain_head SET hash = hash || '{salt}' WHERE policy_id = (SELECT policy_id FROM runs WHERE id = {id})",
    ),
    (
        "run_digests.countries",
        "UPDATE run_digests SET countries = '{\"ZZ\":{delta}}' WHERE run_id = {id}",
    ),
    (
        "run_digests.unlocated",
        "UPDATE run_digests SET unlocated = unlocated + {delta} WHERE run_id = {id}",
    ),
    // The document is edited where it is stored: see below.
    ("runs.document_zstd", ""),
];

mod tamper_property {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        // Each case writes a fresh history file (six durable appends): few cases, every cell.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_single_cell_edit_is_caught_by_verify(
            run in 0usize..6,
            cell in 0usize..CELL_EDITS.len(),
            salt in "[a-z0-9]{1,6}",
            delta in 1i64..4,
            at in any::<prop::sample::Index>(),
        ) {
            let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
            let s = seeded().map_err(|e| fail(&e))?;
            let mut runs: Vec<&StoredRun> = s.eu.iter().chain(&s.india).collect();
            runs.sort_by_key(|r| r.id);
            let id = runs[run].id;
            let (name, sql) = CELL_EDITS[cell];
            let conn = tamperer(&s.path).map_err(|e| fail(&e))?;
            if sql.is_empty() {
                // One character more, anywhere in the stored text: inside a string it changes a
                // value, outside one only the formatting; both must break the hash.
                let mut text = stored_document(&conn, id).map_err(|e| fail(&e))?;
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.insert(cut, ' ');
                store_document(&conn, id, &text).map_err(|e| fail(&e))?;
            } else {
                let sql = sql
                    .replace("{id}", &id.to_string())
                    .replace("{salt}", &salt)
                    .replace("{delta}", &delta.to_string());
                let changed = conn.execute(&sql, []).map_err(|e| fail(&format!("{sql}: {e}")))?;
                prop_assert_eq!(changed, 1, "{} changed no row", sql);
            }
            drop(conn);
            let report = History::open(&s.path).map_err(|e| fail(&e))?.verify(None).map_err(|e| fail(&e))?;
            prop_assert!(!report.is_intact(), "editing {} of run {} went unnoticed:\n{}", name, id, report);
        }
    }
}
