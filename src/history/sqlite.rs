//! The history in one SQLite file, the default store: its schema and migrations (`PRAGMA
//! user_version`), its connection settings, and the [`Store`] primitives in SQLite's SQL.
//!
//! The schema's triggers only stop accidents (an operator's stray `DELETE`); they can be dropped
//! by anyone who can write the file, which is why verification (in `chain.rs`) never relies on
//! them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::chain::{Chained, IndexRows, RawRow, document_text, next_link};
use super::digest::{RunDigest, changed_endpoints, digest_columns};
use super::store::*;
use super::{APPLICATION_ID, HistoryError, Link, NewRun, RunFilter, RunId, Seq};
use crate::model::Verdict;
use crate::policy::PolicyId;

/// How long to wait for another process holding the write lock before giving up. A `check`
/// appends one small row, so anything much longer than this means a stuck process.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, applied in order, each in its own transaction; the database's
/// `PRAGMA user_version` is the number of steps applied. Steps only ever add: history is never
/// dropped or rewritten by an upgrade. Append new steps at the end; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: runs, chain heads, and guards against accidental edits.
    "CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id   TEXT    NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        started_at  TEXT    NOT NULL,
        finished_at TEXT    NOT NULL,
        verdict     TEXT    NOT NULL CHECK (verdict IN ('compliant', 'inconclusive', 'violation')),
        document    TEXT    NOT NULL,
        prev_hash   TEXT    NOT NULL,
        hash        TEXT    NOT NULL,
        UNIQUE (policy_id, seq)
    );
    CREATE INDEX runs_policy_started ON runs (policy_id, started_at);
    CREATE INDEX runs_started ON runs (started_at, id);
    CREATE TABLE chain_head (
        policy_id TEXT    PRIMARY KEY NOT NULL,
        seq       INTEGER NOT NULL CHECK (seq >= 1),
        hash      TEXT    NOT NULL
    );
    CREATE TRIGGER runs_append_only_update BEFORE UPDATE ON runs
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: runs cannot be edited'); END;
    CREATE TRIGGER runs_append_only_delete BEFORE DELETE ON runs
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: runs cannot be deleted'); END;
    CREATE TRIGGER chain_head_no_delete BEFORE DELETE ON chain_head
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: chain heads cannot be deleted'); END;
    CREATE TRIGGER chain_head_forward_only BEFORE UPDATE ON chain_head
    WHEN NEW.seq <= OLD.seq OR NEW.policy_id IS NOT OLD.policy_id
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: chain heads only move forward'); END;",
    // 2: one-run-at-a-time locks (see `crate::run::lock`), an audit trail of lock takeovers, and
    // runs that failed before producing a verdict. Failed runs live outside `runs` on purpose:
    // they have no verdict or document to hash, and keeping them off the chain leaves
    // `history verify` exactly as it was; they are append-only like the chain itself.
    "CREATE TABLE locks (
        policy_id    TEXT PRIMARY KEY NOT NULL,
        holder       TEXT NOT NULL,
        acquired_at  TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    );
    CREATE TABLE events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        kind      TEXT NOT NULL CHECK (kind IN ('lock_takeover')),
        holder    TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE TABLE failed_runs (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id  TEXT NOT NULL,
        started_at TEXT NOT NULL,
        failed_at  TEXT NOT NULL,
        holder     TEXT NOT NULL,
        reason     TEXT NOT NULL
    );
    CREATE INDEX failed_runs_policy ON failed_runs (policy_id, started_at);
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: events cannot be edited'); END;
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: events cannot be deleted'); END;
    CREATE TRIGGER failed_runs_append_only_update BEFORE UPDATE ON failed_runs
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: failed runs cannot be edited'); END;
    CREATE TRIGGER failed_runs_append_only_delete BEFORE DELETE ON failed_runs
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: failed runs cannot be deleted'); END;",
    // 3: webhook alerts (see `crate::run::alert`), one row per alert delivered or given up on.
    // Outside the chain like failed runs, so `history verify` is unchanged; append-only.
    "CREATE TABLE alert_deliveries (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id    INTEGER NOT NULL,
        policy_id TEXT    NOT NULL,
        event     TEXT    NOT NULL CHECK (event IN ('violation', 'recovered', 'inconclusive')),
        at        TEXT    NOT NULL,
        delivered INTEGER NOT NULL CHECK (delivered IN (0, 1)),
        detail    TEXT    NOT NULL
    );
    CREATE INDEX alert_deliveries_run ON alert_deliveries (run_id);
    CREATE TRIGGER alert_deliveries_append_only_update BEFORE UPDATE ON alert_deliveries
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: alert deliveries cannot be edited'); END;
    CREATE TRIGGER alert_deliveries_append_only_delete BEFORE DELETE ON alert_deliveries
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: alert deliveries cannot be deleted'); END;",
    // 4: compressed documents and the run index (see `crate::history::digest`). New runs store their
    // canonical document zstd-compressed in `document_zstd` and leave `document` empty; the hash
    // is over the canonical text either way, so old and new rows verify alike. `run_digests`
    // and `endpoint_changes` are derived from the documents in the same transaction as each
    // append (and backfilled for older runs on open), so timelines never re-read documents;
    // `endpoint_changes` holds an endpoint's verdict only where it differs from the policy's
    // previous run (NULL: the endpoint was dropped). Append-only, and checked by `verify`.
    "ALTER TABLE runs ADD COLUMN document_zstd BLOB;
    CREATE TABLE run_digests (
        run_id    INTEGER PRIMARY KEY NOT NULL,
        policy_id TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        countries TEXT    NOT NULL,
        unlocated INTEGER NOT NULL,
        error     TEXT
    );
    CREATE UNIQUE INDEX run_digests_policy_seq ON run_digests (policy_id, seq);
    CREATE TABLE endpoint_changes (
        policy_id TEXT    NOT NULL,
        host      TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        verdict   TEXT CHECK (verdict IS NULL OR verdict IN ('compliant', 'inconclusive', 'violation')),
        PRIMARY KEY (policy_id, host, seq)
    ) WITHOUT ROWID;
    CREATE INDEX endpoint_changes_seq ON endpoint_changes (policy_id, seq);
    CREATE TRIGGER run_digests_append_only_update BEFORE UPDATE ON run_digests
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: run digests cannot be edited'); END;
    CREATE TRIGGER run_digests_append_only_delete BEFORE DELETE ON run_digests
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: run digests cannot be deleted'); END;
    CREATE TRIGGER endpoint_changes_append_only_update BEFORE UPDATE ON endpoint_changes
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: endpoint changes cannot be edited'); END;
    CREATE TRIGGER endpoint_changes_append_only_delete BEFORE DELETE ON endpoint_changes
    BEGIN SELECT RAISE(ABORT, 'residency history is append-only: endpoint changes cannot be deleted'); END;",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The history in one SQLite file.
pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing, with parent directories) the history at `path` and brings its
    /// schema up to date.
    ///
    /// The connection uses WAL journaling with `synchronous=FULL`, so a run that was appended
    /// survives a power loss, plus a busy timeout so concurrent processes queue up rather than
    /// fail.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, HistoryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| HistoryError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // No URI flag: the path is a file name, never interpreted as `file:` options.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)
            .map_err(sql_err(path, "cannot open the history database"))?;
        // Two processes opening a fresh file at the same instant (two watchers started
        // together) can get SQLITE_BUSY at once, without the busy handler being consulted:
        // switching to WAL and WAL recovery do not wait. Both steps are idempotent, so retry
        // them, for as long as the busy timeout would have waited.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match SqliteStore::configure(&conn, path)
                .and_then(|()| SqliteStore::migrate(&mut conn, path))
                .and_then(|()| backfill_index(&mut conn, path))
            {
                Err(HistoryError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                other => {
                    break other.map(|()| SqliteStore {
                        conn,
                        path: path.to_path_buf(),
                    });
                }
            }
        }
    }

    fn err(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> HistoryError {
        sql_err(&self.path, context)
    }

    fn run_rows(&self, sql: &str, args: &[String]) -> Result<Vec<RunRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(self.err("cannot list runs"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), run_row)
            .map_err(self.err("cannot list runs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("cannot read a run"))
    }

    fn configure(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
        // Set first: switching to WAL itself needs a lock another process may hold.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err(path, "cannot set the busy timeout"))?;
        // The first statement that reads the file header; a non-SQLite file fails here.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql_err(path, "cannot switch to WAL journaling"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still durable with synchronous=FULL, just less concurrent; not worth refusing.
            tracing::warn!(path = %path.display(), mode, "history database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err(path, "cannot set synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql_err(path, "cannot enable foreign keys"))?;
        Ok(())
    }

    fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
        let path = path.to_path_buf();
        loop {
            // IMMEDIATE, and the version re-read inside the transaction, so two processes opening
            // a fresh file at once cannot both apply the same step.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err(&path, "cannot start a schema migration"))?;
            let version: i64 = tx
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(sql_err(&path, "cannot read the schema version"))?;
            let app_id: i64 = tx
                .pragma_query_value(None, "application_id", |row| row.get(0))
                .map_err(sql_err(&path, "cannot read the application id"))?;
            if app_id != 0 && app_id != APPLICATION_ID {
                return Err(HistoryError::ForeignDatabase { path });
            }
            if version > SCHEMA_VERSION {
                return Err(HistoryError::SchemaTooNew {
                    path,
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if version == SCHEMA_VERSION {
                return Ok(());
            }
            if version == 0 {
                // Never add our tables to somebody else's database.
                let tables: i64 = tx
                    .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
                    .map_err(sql_err(&path, "cannot inspect the database"))?;
                if tables > 0 {
                    return Err(HistoryError::ForeignDatabase { path });
                }
                tx.pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(sql_err(&path, "cannot stamp the application id"))?;
            }
            let step = usize::try_from(version).unwrap_or(usize::MAX);
            let sql = MIGRATIONS.get(step).copied().unwrap_or_default();
            tx.execute_batch(sql).map_err(sql_err(
                &path,
                "schema migration failed (nothing was changed)",
            ))?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(sql_err(&path, "cannot record the schema version"))?;
            tx.commit()
                .map_err(sql_err(&path, "cannot commit the schema migration"))?;
            tracing::info!(path = %path.display(), version = version + 1, "history schema migrated");
        }
    }
}

/// A `runs` row from `SELECT id, policy_id, seq, started_at, finished_at, verdict, prev_hash,
/// hash ...`.
fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: row.get(0)?,
        policy_id: row.get(1)?,
        seq: row.get(2)?,
        started_at: row.get(3)?,
        finished_at: row.get(4)?,
        verdict: row.get(5)?,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

impl Store for SqliteStore {
    // Everything in one `BEGIN IMMEDIATE` transaction: concurrent writers (threads or
    // processes) queue on the write lock and each sees the previous one's run, so the chain
    // cannot fork; and a crash part-way leaves nothing behind.
    fn append(
        &mut self,
        run: &NewRun,
        new: &Prepared<'_>,
    ) -> Result<(RunId, Chained), HistoryError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "cannot start recording the run"))?;
        let head = tx
            .query_row(HEAD_SQL, [&run.policy_id], link_row)
            .optional()
            .map_err(sql_err(&path, "cannot read the chain head"))?;
        let last = tx
            .query_row(LAST_RUN_SQL, [&run.policy_id], link_row)
            .optional()
            .map_err(sql_err(&path, "cannot read the policy's last run"))?;
        let link = next_link(&path, run, new, head, last)?;
        tx.execute(
            "INSERT INTO runs (policy_id, seq, started_at, finished_at, verdict, document, document_zstd, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8)",
            params![
                run.policy_id,
                link.link.seq,
                new.started_at,
                new.finished_at,
                run.verdict.as_str(),
                new.compressed,
                link.prev_hash,
                link.link.hash
            ],
        )
        .map_err(sql_err(&path, "cannot insert the run"))?;
        let id = RunId(tx.last_insert_rowid());
        index_run(
            &tx,
            &path,
            run.policy_id.as_str(),
            id,
            link.link.seq,
            new.digest,
        )?;
        tx.execute(
            MOVE_HEAD_SQL,
            params![run.policy_id, link.link.seq, link.link.hash],
        )
        .map_err(sql_err(&path, "cannot move the chain head"))?;
        tx.commit()
            .map_err(sql_err(&path, "cannot commit the run"))?;
        Ok((id, link))
    }

    fn insert_failure(
        &mut self,
        policy_id: &PolicyId,
        started_at: &str,
        failed_at: &str,
        holder: &str,
        reason: &str,
    ) -> Result<i64, HistoryError> {
        self.conn
            .execute(
                INSERT_FAILURE_SQL,
                params![policy_id, started_at, failed_at, holder, reason],
            )
            .map_err(sql_err(&self.path, "cannot record the failed run"))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn insert_alert(
        &mut self,
        run_id: RunId,
        policy_id: &PolicyId,
        event: &str,
        at: &str,
        delivered: bool,
        detail: &str,
    ) -> Result<i64, HistoryError> {
        self.conn
            .execute(
                INSERT_ALERT_SQL,
                params![run_id, policy_id, event, at, delivered, detail],
            )
            .map_err(sql_err(&self.path, "cannot record the alert delivery"))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>, HistoryError> {
        let (sql, args) = filtered(RUNS_SQL, filter, "")?;
        self.run_rows(&sql, &args)
    }

    fn indexed(&self, filter: &RunFilter) -> Result<Vec<IndexedRow>, HistoryError> {
        let (sql, args) = filtered(INDEXED_SQL, filter, "r.")?;
        let e = || self.err("cannot read the run index");
        let mut stmt = self.conn.prepare(&sql).map_err(e())?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok(IndexedRow {
                    run: run_row(row)?,
                    countries: row.get(8)?,
                    unlocated: row.get(9)?,
                    error: row.get(10)?,
                })
            })
            .map_err(e())?;
        rows.collect::<Result<_, _>>().map_err(e())
    }

    fn endpoint_changes(
        &self,
        policy_id: &PolicyId,
        until_seq: Seq,
    ) -> Result<Vec<ChangeRow>, HistoryError> {
        let e = || self.err("cannot read the run index");
        let mut stmt = self.conn.prepare(CHANGES_SQL).map_err(e())?;
        let rows = stmt
            .query_map(params![policy_id, until_seq], |row| {
                Ok(ChangeRow {
                    seq: row.get(0)?,
                    host: row.get(1)?,
                    verdict: row.get(2)?,
                })
            })
            .map_err(e())?;
        rows.collect::<Result<_, _>>().map_err(e())
    }

    fn fetch_run(
        &self,
        id: RunId,
    ) -> Result<Option<(RunRow, Result<String, String>)>, HistoryError> {
        self.conn
            .query_row(RUN_SQL, [id], |row| {
                let document: String = row.get(8)?;
                let compressed: Option<Vec<u8>> = row.get(9)?;
                Ok((run_row(row)?, document_text(document, compressed)))
            })
            .optional()
            .map_err(self.err("cannot read the run"))
    }

    fn select(
        &self,
        sql: &str,
        args: &[String],
        context: &'static str,
    ) -> Result<Vec<Vec<Cell>>, HistoryError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.conn.prepare(sql).map_err(self.err(context))?;
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                (0..columns)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Null => Cell::Null,
                            ValueRef::Integer(n) => Cell::Int(n),
                            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into()),
                            ValueRef::Real(x) => Cell::Text(x.to_string()),
                            ValueRef::Blob(_) => Cell::Text("(blob)".into()),
                        })
                    })
                    .collect()
            })
            .map_err(self.err(context))?;
        rows.collect::<Result<_, _>>().map_err(self.err(context))
    }

    fn read_chains(
        &self,
        policy_id: Option<&PolicyId>,
        from: &BTreeMap<PolicyId, Seq>,
        walk: &mut (dyn FnMut(ChainPart) -> bool + Send),
    ) -> Result<(), HistoryError> {
        let path = &self.path;
        let e = |context| sql_err(path, context);
        // One read transaction: under WAL this is a snapshot, so a concurrent append cannot make
        // the runs and the chain heads look inconsistent.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(e("cannot start verification"))?;
        let policies: Vec<PolicyId> = match policy_id {
            Some(policy) => vec![policy.clone()],
            None => {
                let mut stmt = tx
                    .prepare(POLICIES_SQL)
                    .map_err(e("cannot list policies"))?;
                let rows = stmt
                    .query_map([], |row| row.get(0))
                    .map_err(e("cannot list policies"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(e("cannot list policies"))?
            }
        };
        'policies: for policy in policies {
            let index = index_rows(&tx, path, policy.as_str())?;
            walk(ChainPart::Policy {
                policy_id: policy.clone(),
                index,
            });
            let mut stmt = tx
                .prepare(CHAIN_SQL)
                .map_err(e("cannot read runs to verify"))?;
            let start = from.get(&policy).copied().unwrap_or(Seq::FIRST);
            let mut rows = stmt
                .query(rusqlite::params![policy.as_str(), start.0])
                .map_err(e("cannot read runs to verify"))?;
            while let Some(row) = rows.next().map_err(e("cannot read runs to verify"))? {
                let raw = read_raw_row(row).map_err(e("cannot read runs to verify"))?;
                if !walk(ChainPart::Run(raw)) {
                    continue 'policies;
                }
            }
            let head = tx
                .query_row(HEAD_SQL, [&policy], link_row)
                .optional()
                .map_err(e("cannot read the chain head"))?;
            walk(ChainPart::Head(head));
        }
        Ok(())
    }

    fn take_lock(
        &mut self,
        policy_id: &PolicyId,
        decide: &mut (dyn FnMut(Option<LockRow>) -> Option<LockTake> + Send),
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "cannot start taking the run lock"))?;
        let row = tx
            .query_row(LOCK_SQL, [policy_id], |row| {
                Ok(LockRow {
                    holder: row.get(0)?,
                    heartbeat_at: row.get(1)?,
                })
            })
            .optional()
            .map_err(sql_err(&path, "cannot read the run lock"))?;
        let Some(take) = decide(row) else {
            return Ok(());
        };
        tx.execute(TAKE_LOCK_SQL, params![policy_id, take.holder, take.at])
            .map_err(sql_err(&path, "cannot take the run lock"))?;
        if let Some(detail) = &take.takeover {
            tx.execute(
                TAKEOVER_SQL,
                params![take.at, policy_id, take.holder, detail],
            )
            .map_err(sql_err(&path, "cannot record the lock takeover"))?;
        }
        tx.commit()
            .map_err(sql_err(&path, "cannot commit the run lock"))
    }

    fn beat_lock(
        &mut self,
        policy_id: &PolicyId,
        holder: &str,
        at: &str,
    ) -> Result<bool, HistoryError> {
        let changed = self
            .conn
            .execute(BEAT_LOCK_SQL, params![at, policy_id, holder])
            .map_err(sql_err(&self.path, "cannot refresh the run lock"))?;
        Ok(changed == 1)
    }

    fn drop_lock(&mut self, policy_id: &PolicyId, holder: &str) -> Result<(), HistoryError> {
        self.conn
            .execute(DROP_LOCK_SQL, params![policy_id, holder])
            .map_err(sql_err(&self.path, "cannot release the run lock"))?;
        Ok(())
    }
}

/// Indexes runs recorded before the index existed (schema 4), oldest first per policy, in
/// one transaction. Cheap when there is nothing to do, so it runs on every open.
fn backfill_index(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let path = path.to_path_buf();
    let e = || sql_err(&path, "cannot index older runs");
    const MISSING: &str = "FROM runs WHERE id NOT IN (SELECT run_id FROM run_digests)";
    let missing: bool = conn
        .query_row(&format!("SELECT EXISTS (SELECT 1 {MISSING})"), [], |r| {
            r.get(0)
        })
        .map_err(e())?;
    if !missing {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(e())?;
    let todo: Vec<(RunId, String, Seq)> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT id, policy_id, seq {MISSING} ORDER BY policy_id, seq"
            ))
            .map_err(e())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(e())?;
        rows.collect::<Result<_, _>>().map_err(e())?
    };
    for (id, policy_id, seq) in &todo {
        let (text, compressed): (String, Option<Vec<u8>>) = tx
            .query_row(
                "SELECT document, document_zstd FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(e())?;
        let digest = document_text(text, compressed).and_then(|t| RunDigest::of_text(&t));
        index_run(&tx, &path, policy_id, *id, *seq, &digest)?;
    }
    tx.commit().map_err(e())?;
    tracing::info!(path = %path.display(), runs = todo.len(), "indexed older runs");
    Ok(())
}

// Reads a row without trusting column types, since verification exists for files that were
// edited; a wrong type becomes a reported break, not an error that stops verification.
fn read_raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RawRow, (RunId, Seq, String)>> {
    use rusqlite::types::ValueRef;
    let id: RunId = row.get(0)?;
    let seq = match row.get_ref(1)? {
        ValueRef::Integer(seq) => Seq(seq),
        other => {
            return Ok(Err((
                id,
                Seq(0),
                format!("seq is {}, not an integer", other.data_type()),
            )));
        }
    };
    let mut texts = Vec::with_capacity(6);
    for (i, name) in [
        "started_at",
        "finished_at",
        "verdict",
        "document",
        "prev_hash",
        "hash",
    ]
    .into_iter()
    .enumerate()
    {
        match row.get_ref(i + 2)? {
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => texts.push(text.to_owned()),
                Err(_) => return Ok(Err((id, seq, format!("{name} is not UTF-8")))),
            },
            other => {
                return Ok(Err((
                    id,
                    seq,
                    format!("{name} is {}, not text", other.data_type()),
                )));
            }
        }
    }
    let compressed = match row.get_ref(8)? {
        ValueRef::Null => None,
        ValueRef::Blob(bytes) => Some(bytes.to_vec()),
        other => {
            return Ok(Err((
                id,
                seq,
                format!("document_zstd is {}, not a blob", other.data_type()),
            )));
        }
    };
    let mut texts = texts.into_iter();
    let mut next = || texts.next().unwrap_or_default();
    let (started_at, finished_at, verdict, text) = (next(), next(), next(), next());
    let document = match document_text(text, compressed) {
        Ok(document) => document,
        Err(detail) => return Ok(Err((id, seq, detail))),
    };
    Ok(Ok(RawRow {
        id,
        seq,
        started_at,
        finished_at,
        verdict,
        document,
        prev_hash: next(),
        hash: next(),
    }))
}

/// Writes run `id`'s index rows: its digest, and the endpoints whose verdict differs from the
/// policy's previous run (`seq` order), including those dropped since (verdict NULL).
fn index_run(
    conn: &Connection,
    path: &Path,
    policy_id: &str,
    id: RunId,
    seq: Seq,
    digest: &Result<RunDigest, String>,
) -> Result<(), HistoryError> {
    let (countries, unlocated, error) = digest_columns(digest);
    conn.execute(
        INSERT_DIGEST_SQL,
        params![id, policy_id, seq, countries, unlocated, error],
    )
    .map_err(sql_err(path, "cannot index the run"))?;
    // An unreadable document changes nothing: its endpoints are unknown, not gone.
    let Ok(digest) = digest else {
        return Ok(());
    };
    let before = endpoint_state(conn, path, policy_id, seq)?;
    let mut insert = conn
        .prepare_cached(INSERT_CHANGE_SQL)
        .map_err(sql_err(path, "cannot index the run"))?;
    for (host, verdict) in changed_endpoints(&before, digest) {
        insert
            .execute(params![policy_id, host, seq, verdict])
            .map_err(sql_err(path, "cannot index the run"))?;
    }
    Ok(())
}

/// Each endpoint's verdict as of the policy's runs before `seq`, from the change log.
fn endpoint_state(
    conn: &Connection,
    path: &Path,
    policy_id: &str,
    seq: Seq,
) -> Result<BTreeMap<String, Verdict>, HistoryError> {
    // SQLite takes the bare columns of an aggregate query from the row holding MAX(seq).
    let mut stmt = conn
        .prepare_cached(
            "SELECT host, verdict, MAX(seq) FROM endpoint_changes
             WHERE policy_id = ?1 AND seq < ?2 GROUP BY host",
        )
        .map_err(sql_err(path, "cannot read the run index"))?;
    let rows = stmt
        .query_map(params![policy_id, seq], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .map_err(sql_err(path, "cannot read the run index"))?;
    let mut state = BTreeMap::new();
    for row in rows {
        let (host, verdict) = row.map_err(sql_err(path, "cannot read the run index"))?;
        if let Some(v) = verdict.and_then(|v| v.parse::<Verdict>().ok()) {
            state.insert(host, v);
        }
    }
    Ok(state)
}

/// A policy's index rows, for verification.
fn index_rows(conn: &Connection, path: &Path, policy_id: &str) -> Result<IndexRows, HistoryError> {
    let e = || sql_err(path, "cannot read the run index to verify");
    let mut digests = BTreeMap::new();
    let mut stmt = conn.prepare(DIGESTS_SQL).map_err(e())?;
    let mut rows = stmt.query([policy_id]).map_err(e())?;
    while let Some(row) = rows.next().map_err(e())? {
        digests.insert(
            row.get::<_, Seq>(0).map_err(e())?,
            (
                row.get(1).map_err(e())?,
                row.get(2).map_err(e())?,
                row.get(3).map_err(e())?,
            ),
        );
    }
    let mut changes: BTreeMap<Seq, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut stmt = conn.prepare(ALL_CHANGES_SQL).map_err(e())?;
    let mut rows = stmt.query([policy_id]).map_err(e())?;
    while let Some(row) = rows.next().map_err(e())? {
        changes
            .entry(row.get(0).map_err(e())?)
            .or_default()
            .push((row.get(1).map_err(e())?, row.get(2).map_err(e())?));
    }
    Ok(IndexRows { digests, changes })
}

/// A `(seq, hash)` row.
fn link_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        seq: row.get(0)?,
        hash: row.get(1)?,
    })
}

/// Maps an SQLite error to the variant that tells the user what to do about it.
pub(crate) fn sql_err(
    path: &Path,
    context: &'static str,
) -> impl FnOnce(rusqlite::Error) -> HistoryError {
    let path = path.to_path_buf();
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => HistoryError::NotADatabase { path },
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            HistoryError::Busy { path }
        }
        _ => HistoryError::Sqlite {
            path,
            context,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::json;

    use super::*;
    use crate::history::{ChainProblem, History};

    fn run(policy: &str, verdict: Verdict) -> NewRun {
        let at = DateTime::from_timestamp(1_740_000_000, 0).unwrap_or_default();
        NewRun {
            policy_id: PolicyId::test(policy),
            started_at: at,
            finished_at: at,
            verdict,
            document: json!({"k": "v"}),
        }
    }

    /// Runs `sql` on a second connection to the history file, as an operator with the sqlite3
    /// shell would.
    fn outside(path: &Path, sql: &str) -> Result<(), HistoryError> {
        Connection::open(path)
            .and_then(|conn| conn.execute_batch(sql))
            .map_err(sql_err(path, "test tampering"))
    }

    #[test]
    fn append_is_all_or_nothing_when_its_last_statement_fails() -> Result<(), HistoryError> {
        let dir = tempfile::tempdir().map_err(|e| HistoryError::InvalidRun(e.to_string()))?;
        let path = dir.path().join("h.sqlite");
        let mut history = History::open(&path)?;
        let first = history.append(run("p", Verdict::Compliant))?;
        // Make the chain-head update, the step after the run insert, fail: the insert before it
        // must be rolled back with it.
        outside(
            &path,
            "CREATE TRIGGER fail_head BEFORE UPDATE ON chain_head
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )?;
        let failed = history.append(run("p", Verdict::Violation));
        assert!(
            matches!(&failed, Err(HistoryError::Sqlite { context, .. }) if context.contains("chain head")),
            "{failed:?}"
        );
        assert_eq!(
            history.list(&RunFilter::default())?.len(),
            1,
            "no half-recorded run"
        );
        assert!(history.verify(None)?.is_intact());

        outside(&path, "DROP TRIGGER fail_head;")?;
        let second = history.append(run("p", Verdict::Violation))?;
        assert_eq!(
            (second.seq, second.prev_hash.as_str()),
            (Seq(2), first.hash.as_str())
        );
        assert!(history.verify(None)?.is_intact());
        Ok(())
    }

    #[test]
    fn verify_reports_a_retyped_column_instead_of_failing() -> Result<(), HistoryError> {
        let dir = tempfile::tempdir().map_err(|e| HistoryError::InvalidRun(e.to_string()))?;
        let path = dir.path().join("h.sqlite");
        let mut history = History::open(&path)?;
        let stored = history.append(run("p", Verdict::Compliant))?;
        outside(
            &path,
            "DROP TRIGGER runs_append_only_update;
             UPDATE runs SET document = CAST(document AS BLOB);",
        )?;
        let report = history.verify(None)?;
        let broken = report.policies[0].broken.clone();
        assert_eq!(
            broken.as_ref().map(|b| (b.id, b.seq)),
            Some((Some(stored.id), Seq(1)))
        );
        assert!(matches!(
            broken.map(|b| b.problem),
            Some(ChainProblem::Unreadable { .. })
        ));
        Ok(())
    }
}
