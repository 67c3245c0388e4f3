//! The history in PostgreSQL (`--db postgres://...`), so that checkers at several vantage points
//! (say in IN, US and SG) write to one shared history.
//!
//! This module owns the PostgreSQL [`Store`]: connecting, its schema and migrations (recorded in
//! `residency_schema`), and how each primitive runs here. The semantics are the SQLite store's:
//! the same tables and statements (`store.rs`, renumbered to `$n`), the same canonical text and
//! hash per run (computed in `chain.rs`, never here), the same chain head, index and append-only
//! triggers (in PL/pgSQL), and `verify` walks the chain with the same code.
//!
//! Concurrent writers cannot fork a chain: each append takes a transaction-scoped advisory lock
//! keyed by the policy id before reading the chain head, so appends of one policy queue up and
//! each sees the previous one's run. Runs also record the `vantage` of their document in a
//! column of its own (not hashed separately: the document, which is, already holds it).
//!
//! The `postgres` client is synchronous and runs its own small runtime, which must not be
//! started from a thread that is running tokio tasks; [`PgStore::with`] therefore moves each
//! call to a short-lived thread when called from async code. No TLS: connections are plain
//! text, fit for a loopback or unix-socket server, or a remote one reached through a tunnel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use postgres::types::{ToSql, Type};
use postgres::{Client, IsolationLevel, NoTls, Row};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::chain::{Chained, IndexRows, RawRow, canonical_json, document_text, next_link};
use super::digest::{changed_endpoints, digest_columns};
use super::store::*;
use super::{APPLICATION_ID, HistoryError, Link, NewRun, RunFilter, RunId, Seq};
use crate::model::Verdict;
use crate::policy::PolicyId;

/// Schema steps for PostgreSQL, applied in order, each in its own transaction; the highest
/// `residency_schema.version` is the number applied. Like the SQLite steps: only ever add.
/// Step 1 is the SQLite schema as of its step 4, all at once.
const MIGRATIONS: &[&str] = &[
    // 1: runs, chain heads, index, locks and audit tables, with append-only guards.
    r#"CREATE TABLE runs (
        id            BIGSERIAL PRIMARY KEY,
        policy_id     TEXT COLLATE "C" NOT NULL,
        seq           BIGINT NOT NULL CHECK (seq >= 1),
        started_at    TEXT COLLATE "C" NOT NULL,
        finished_at   TEXT COLLATE "C" NOT NULL,
        verdict       TEXT NOT NULL CHECK (verdict IN ('compliant', 'inconclusive', 'violation')),
        document      TEXT NOT NULL,
        document_zstd BYTEA,
        prev_hash     TEXT NOT NULL,
        hash          TEXT NOT NULL,
        vantage       TEXT,
        UNIQUE (policy_id, seq)
    );
    CREATE INDEX runs_policy_started ON runs (policy_id, started_at);
    CREATE INDEX runs_started ON runs (started_at, id);
    CREATE TABLE chain_head (
        policy_id TEXT COLLATE "C" PRIMARY KEY,
        seq       BIGINT NOT NULL CHECK (seq >= 1),
        hash      TEXT NOT NULL
    );
    CREATE TABLE run_digests (
        run_id    BIGINT PRIMARY KEY,
        policy_id TEXT COLLATE "C" NOT NULL,
        seq       BIGINT NOT NULL,
        countries TEXT NOT NULL,
        unlocated BIGINT NOT NULL,
        error     TEXT,
        UNIQUE (policy_id, seq)
    );
    CREATE TABLE endpoint_changes (
        policy_id TEXT COLLATE "C" NOT NULL,
        host      TEXT COLLATE "C" NOT NULL,
        seq       BIGINT NOT NULL,
        verdict   TEXT CHECK (verdict IS NULL OR verdict IN ('compliant', 'inconclusive', 'violation')),
        PRIMARY KEY (policy_id, host, seq)
    );
    CREATE INDEX endpoint_changes_seq ON endpoint_changes (policy_id, seq);
    CREATE TABLE locks (
        policy_id    TEXT COLLATE "C" PRIMARY KEY,
        holder       TEXT NOT NULL,
        acquired_at  TEXT COLLATE "C" NOT NULL,
        heartbeat_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE events (
        id        BIGSERIAL PRIMARY KEY,
        at        TEXT COLLATE "C" NOT NULL,
        policy_id TEXT COLLATE "C" NOT NULL,
        kind      TEXT NOT NULL CHECK (kind IN ('lock_takeover')),
        holder    TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE TABLE failed_runs (
        id         BIGSERIAL PRIMARY KEY,
        policy_id  TEXT COLLATE "C" NOT NULL,
        started_at TEXT COLLATE "C" NOT NULL,
        failed_at  TEXT COLLATE "C" NOT NULL,
        holder     TEXT NOT NULL,
        reason     TEXT NOT NULL
    );
    CREATE INDEX failed_runs_policy ON failed_runs (policy_id, started_at);
    CREATE TABLE alert_deliveries (
        id        BIGSERIAL PRIMARY KEY,
        run_id    BIGINT NOT NULL,
        policy_id TEXT COLLATE "C" NOT NULL,
        event     TEXT NOT NULL CHECK (event IN ('violation', 'recovered', 'inconclusive')),
        at        TEXT COLLATE "C" NOT NULL,
        delivered BOOLEAN NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX alert_deliveries_run ON alert_deliveries (run_id);
    CREATE FUNCTION residency_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'residency history is append-only: % cannot be %', TG_ARGV[0], TG_ARGV[1];
    END $$;
    CREATE FUNCTION residency_chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq <= OLD.seq OR NEW.policy_id IS DISTINCT FROM OLD.policy_id THEN
            RAISE EXCEPTION 'residency history is append-only: chain heads only move forward';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER chain_head_forward_only BEFORE UPDATE ON chain_head
        FOR EACH ROW EXECUTE FUNCTION residency_chain_head_forward_only();
    CREATE TRIGGER chain_head_no_delete BEFORE DELETE OR TRUNCATE ON chain_head
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('chain heads', 'deleted');
    CREATE TRIGGER runs_append_only_update BEFORE UPDATE ON runs
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('runs', 'edited');
    CREATE TRIGGER runs_append_only_delete BEFORE DELETE OR TRUNCATE ON runs
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('runs', 'deleted');
    CREATE TRIGGER run_digests_append_only_update BEFORE UPDATE ON run_digests
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('run digests', 'edited');
    CREATE TRIGGER run_digests_append_only_delete BEFORE DELETE OR TRUNCATE ON run_digests
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('run digests', 'deleted');
    CREATE TRIGGER endpoint_changes_append_only_update BEFORE UPDATE ON endpoint_changes
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('endpoint changes', 'edited');
    CREATE TRIGGER endpoint_changes_append_only_delete BEFORE DELETE OR TRUNCATE ON endpoint_changes
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('endpoint changes', 'deleted');
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('events', 'edited');
    CREATE TRIGGER events_append_only_delete BEFORE DELETE OR TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('events', 'deleted');
    CREATE TRIGGER failed_runs_append_only_update BEFORE UPDATE ON failed_runs
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('failed runs', 'edited');
    CREATE TRIGGER failed_runs_append_only_delete BEFORE DELETE OR TRUNCATE ON failed_runs
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('failed runs', 'deleted');
    CREATE TRIGGER alert_deliveries_append_only_update BEFORE UPDATE ON alert_deliveries
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('alert deliveries', 'edited');
    CREATE TRIGGER alert_deliveries_append_only_delete BEFORE DELETE OR TRUNCATE ON alert_deliveries
        FOR EACH STATEMENT EXECUTE FUNCTION residency_append_only('alert deliveries', 'deleted');"#,
];

/// The PostgreSQL schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// True for the `--db` values that name a PostgreSQL database rather than an SQLite file.
pub(crate) fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `sql` with SQLite's numbered placeholders (`?1`) in PostgreSQL's form (`$1`).
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A PostgreSQL error as one line: the server's message (and detail) when it sent one.
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        // The client's own text ("error connecting to server") leaves out the cause.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// `url` without its password, fit for messages and `history` output.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// Maps a PostgreSQL error to [`HistoryError::Postgres`].
pub(crate) fn pg_err(
    path: &Path,
    context: &'static str,
) -> impl FnOnce(postgres::Error) -> HistoryError {
    let path = path.to_path_buf();
    move |source| HistoryError::Postgres {
        path,
        context,
        source,
    }
}

/// Runs `f` where the synchronous client may block: on this thread, or on a scoped thread of
/// its own when this one is running tokio tasks (where the client's runtime would panic).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The advisory lock key of a policy's chain: the first 8 bytes of a SHA-256 of its id.
fn chain_lock_key(policy_id: &str) -> i64 {
    let digest = Sha256::digest(format!("residency chain {policy_id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

fn args_of(args: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// The `vantage` column of a run: where it was measured from, from its document's `vantage`
/// (`{country, latitude, longitude}`), as `IN (19.07,72.87)`; `None` without one.
fn vantage_of(document: &Value) -> Option<String> {
    let v = document.get("vantage")?;
    match (v.get("country"), v.get("latitude"), v.get("longitude")) {
        (Some(Value::String(cc)), Some(lat), Some(lon)) => Some(format!("{cc} ({lat},{lon})")),
        _ if v.is_null() => None,
        _ => Some(canonical_json(v)),
    }
}

/// A connection to a PostgreSQL history.
pub(crate) struct PgStore {
    /// `None` only while being dropped.
    client: Mutex<Option<Client>>,
    /// The URL without its password.
    path: PathBuf,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Closing the connection blocks on the client's runtime, like every other call.
        off_runtime(move || drop(client));
    }
}

impl PgStore {
    pub(crate) fn open(url: &str) -> Result<PgStore, HistoryError> {
        let display = redacted(url);
        let client = off_runtime(|| Client::connect(url, NoTls)).map_err(|source| {
            HistoryError::PostgresConnect {
                url: display.clone(),
                source,
            }
        })?;
        let store = PgStore {
            client: Mutex::new(Some(client)),
            path: PathBuf::from(display),
        };
        store.migrate()?;
        Ok(store)
    }

    pub(crate) fn display_url(&self) -> String {
        self.path.display().to_string()
    }

    /// Calls `f` with the client, off the tokio runtime if need be (see [`off_runtime`]).
    pub(crate) fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, HistoryError> + Send,
    ) -> Result<R, HistoryError> {
        let mut guard = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(client) = guard.as_mut() else {
            return Err(HistoryError::InvalidRun(
                "the PostgreSQL connection is closed".into(),
            ));
        };
        off_runtime(move || f(client))
    }

    fn migrate(&self) -> Result<(), HistoryError> {
        let path = self.path.clone();
        self.with(|client| {
            let e = |context| pg_err(&path, context);
            loop {
                let mut tx = client
                    .transaction()
                    .map_err(e("cannot start a schema migration"))?;
                // Two checkers opening a fresh database at once apply each step once.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLICATION_ID])
                    .map_err(e("cannot lock the schema for migration"))?;
                let row = tx
                    .query_one(
                        "SELECT to_regclass('residency_schema') IS NOT NULL,
                                to_regclass('runs') IS NOT NULL",
                        &[],
                    )
                    .map_err(e("cannot inspect the database"))?;
                let (versioned, has_runs): (bool, bool) = (row.get(0), row.get(1));
                if !versioned && has_runs {
                    return Err(HistoryError::ForeignPostgres { path: path.clone() });
                }
                tx.batch_execute("CREATE TABLE IF NOT EXISTS residency_schema (version BIGINT NOT NULL)")
                    .map_err(e("cannot create the schema version table"))?;
                let version: i64 = tx
                    .query_one("SELECT coalesce(max(version), 0) FROM residency_schema", &[])
                    .map_err(e("cannot read the schema version"))?
                    .get(0);
                if version > SCHEMA_VERSION {
                    return Err(HistoryError::SchemaTooNew {
                        path: path.clone(),
                        found: version,
                        supported: SCHEMA_VERSION,
                    });
                }
                if version == SCHEMA_VERSION {
                    tx.commit().map_err(e("cannot finish opening the history"))?;
                    return Ok(());
                }
                let step = usize::try_from(version).unwrap_or(usize::MAX);
                let sql = MIGRATIONS.get(step).copied().unwrap_or_default();
                tx.batch_execute(sql)
                    .map_err(e("schema migration failed (nothing was changed)"))?;
                tx.execute(
                    "INSERT INTO residency_schema (version) VALUES ($1)",
                    &[&(version + 1)],
                )
                .map_err(e("cannot record the schema version"))?;
                tx.commit()
                    .map_err(e("cannot commit the schema migration"))?;
                tracing::info!(path = %path.display(), version = version + 1, "history schema migrated");
            }
        })
    }

    fn err(&self, context: &'static str) -> impl FnOnce(postgres::Error) -> HistoryError {
        pg_err(&self.path, context)
    }

    /// Rows of `sql` (in SQLite's `?n` form) with text `args`.
    fn query(
        &self,
        sql: &str,
        args: &[String],
        context: &'static str,
    ) -> Result<Vec<Row>, HistoryError> {
        let path = &self.path;
        self.with(|client| {
            client
                .query(&placeholders(sql), &args_of(args))
                .map_err(pg_err(path, context))
        })
    }
}

/// A `runs` row from `SELECT id, policy_id, seq, started_at, finished_at, verdict, prev_hash,
/// hash ...`.
fn run_row(row: &Row) -> Result<RunRow, postgres::Error> {
    Ok(RunRow {
        id: RunId(row.try_get(0)?),
        policy_id: row.try_get(1)?,
        seq: Seq(row.try_get(2)?),
        started_at: row.try_get(3)?,
        finished_at: row.try_get(4)?,
        verdict: row.try_get(5)?,
        prev_hash: row.try_get(6)?,
        hash: row.try_get(7)?,
    })
}

/// One cell of an audit row, by its column's type.
fn cell(row: &Row, i: usize) -> Result<Cell, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?
            .map_or(Cell::Null, Cell::Int)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map_or(Cell::Null, |n| Cell::Int(n.into()))
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map_or(Cell::Null, Cell::Flag)
    } else {
        row.try_get::<_, Option<String>>(i)?
            .map_or(Cell::Null, Cell::Text)
    })
}

/// `policy_id`'s `run_digests` and `endpoint_changes` rows, for verification.
fn index_rows(
    tx: &mut postgres::Transaction<'_>,
    path: &Path,
    policy_id: &str,
) -> Result<IndexRows, HistoryError> {
    let e = || pg_err(path, "cannot read the run index to verify");
    let mut index = IndexRows::default();
    for row in tx
        .query(&placeholders(DIGESTS_SQL), &[&policy_id])
        .map_err(e())?
    {
        index.digests.insert(
            Seq(row.try_get(0).map_err(e())?),
            (
                row.try_get(1).map_err(e())?,
                row.try_get(2).map_err(e())?,
                row.try_get(3).map_err(e())?,
            ),
        );
    }
    for row in tx
        .query(&placeholders(ALL_CHANGES_SQL), &[&policy_id])
        .map_err(e())?
    {
        index
            .changes
            .entry(Seq(row.try_get(0).map_err(e())?))
            .or_default()
            .push((row.try_get(1).map_err(e())?, row.try_get(2).map_err(e())?));
    }
    Ok(index)
}

/// A run row for verification; `Err((id, seq, why))` when a column is not what was written.
fn raw_row(row: &Row) -> Result<Result<RawRow, (RunId, Seq, String)>, postgres::Error> {
    let (id, seq) = (RunId(row.try_get(0)?), Seq(row.try_get(1)?));
    Ok(document_text(row.try_get(5)?, row.try_get(8)?)
        .map(|document| -> Result<RawRow, postgres::Error> {
            Ok(RawRow {
                id,
                seq,
                started_at: row.try_get(2)?,
                finished_at: row.try_get(3)?,
                verdict: row.try_get(4)?,
                document,
                prev_hash: row.try_get(6)?,
                hash: row.try_get(7)?,
            })
        })
        .map_err(|detail| (id, seq, detail))
        .and_then(|r| r.map_err(|e| (id, seq, e.to_string()))))
}

impl Store for PgStore {
    // Appends of one policy queue on a transaction-scoped advisory lock keyed by its id, taken
    // before the chain head is read, so each reads the head the previous one wrote.
    fn append(
        &mut self,
        run: &NewRun,
        new: &Prepared<'_>,
    ) -> Result<(RunId, Chained), HistoryError> {
        let path = &self.path;
        let vantage = vantage_of(&run.document);
        let policy_id = run.policy_id.as_str();
        self.with(|client| {
            let e = |context| pg_err(path, context);
            let mut tx = client
                .transaction()
                .map_err(e("cannot start recording the run"))?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&chain_lock_key(policy_id)],
            )
            .map_err(e("cannot lock the policy's chain"))?;
            let link = |row: Row| Link {
                seq: Seq(row.get(0)),
                hash: row.get(1),
            };
            let head = tx
                .query_opt(&placeholders(HEAD_SQL), &[&policy_id])
                .map_err(e("cannot read the chain head"))?
                .map(link);
            let last = tx
                .query_opt(&placeholders(LAST_RUN_SQL), &[&policy_id])
                .map_err(e("cannot read the policy's last run"))?
                .map(link);
            let chained = next_link(path, run, new, head, last)?;
            let seq = chained.link.seq.0;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO runs (policy_id, seq, started_at, finished_at, verdict, document,
                                       document_zstd, prev_hash, hash, vantage)
                     VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9) RETURNING id",
                    &[
                        &policy_id,
                        &seq,
                        &new.started_at,
                        &new.finished_at,
                        &run.verdict.as_str(),
                        &new.compressed,
                        &chained.prev_hash,
                        &chained.link.hash,
                        &vantage,
                    ],
                )
                .map_err(e("cannot insert the run"))?
                .get(0);
            let (countries, unlocated, error) = digest_columns(new.digest);
            tx.execute(
                &placeholders(INSERT_DIGEST_SQL),
                &[
                    &id,
                    &policy_id,
                    &seq,
                    &countries,
                    &i64::from(unlocated),
                    &error,
                ],
            )
            .map_err(e("cannot index the run"))?;
            if let Ok(digest) = new.digest {
                let mut before = std::collections::BTreeMap::new();
                for row in tx
                    .query(
                        "SELECT DISTINCT ON (host) host, verdict FROM endpoint_changes
                         WHERE policy_id = $1 AND seq < $2 ORDER BY host, seq DESC",
                        &[&policy_id, &seq],
                    )
                    .map_err(e("cannot read the run index"))?
                {
                    let verdict: Option<String> = row.get(1);
                    if let Some(v) = verdict.and_then(|v| v.parse::<Verdict>().ok()) {
                        before.insert(row.get::<_, String>(0), v);
                    }
                }
                for (host, verdict) in changed_endpoints(&before, digest) {
                    tx.execute(
                        &placeholders(INSERT_CHANGE_SQL),
                        &[&policy_id, &host, &seq, &verdict],
                    )
                    .map_err(e("cannot index the run"))?;
                }
            }
            tx.execute(
                &placeholders(MOVE_HEAD_SQL),
                &[&policy_id, &seq, &chained.link.hash],
            )
            .map_err(e("cannot move the chain head"))?;
            tx.commit().map_err(e("cannot commit the run"))?;
            Ok((RunId(id), chained))
        })
    }

    fn insert_failure(
        &mut self,
        policy_id: &PolicyId,
        started_at: &str,
        failed_at: &str,
        holder: &str,
        reason: &str,
    ) -> Result<i64, HistoryError> {
        let path = &self.path;
        let policy_id = policy_id.as_str();
        self.with(|client| {
            Ok(client
                .query_one(
                    &format!("{} RETURNING id", placeholders(INSERT_FAILURE_SQL)),
                    &[&policy_id, &started_at, &failed_at, &holder, &reason],
                )
                .map_err(pg_err(path, "cannot record the failed run"))?
                .get(0))
        })
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
        let path = &self.path;
        let (run_id, policy_id) = (run_id.0, policy_id.as_str());
        self.with(|client| {
            Ok(client
                .query_one(
                    &format!("{} RETURNING id", placeholders(INSERT_ALERT_SQL)),
                    &[&run_id, &policy_id, &event, &at, &delivered, &detail],
                )
                .map_err(pg_err(path, "cannot record the alert delivery"))?
                .get(0))
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>, HistoryError> {
        let (sql, args) = filtered(RUNS_SQL, filter, "")?;
        self.query(&sql, &args, "cannot list runs")?
            .iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(self.err("cannot read a run"))
    }

    fn indexed(&self, filter: &RunFilter) -> Result<Vec<IndexedRow>, HistoryError> {
        let (sql, args) = filtered(INDEXED_SQL, filter, "r.")?;
        self.query(&sql, &args, "cannot read the run index")?
            .iter()
            .map(|row| {
                Ok(IndexedRow {
                    run: run_row(row)?,
                    countries: row.try_get(8)?,
                    unlocated: row.try_get(9)?,
                    error: row.try_get(10)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.err("cannot read the run index"))
    }

    fn endpoint_changes(
        &self,
        policy_id: &PolicyId,
        until_seq: Seq,
    ) -> Result<Vec<ChangeRow>, HistoryError> {
        let path = &self.path;
        let (policy_id, until_seq) = (policy_id.as_str(), until_seq.0);
        let rows = self.with(|client| {
            client
                .query(&placeholders(CHANGES_SQL), &[&policy_id, &until_seq])
                .map_err(pg_err(path, "cannot read the run index"))
        })?;
        rows.iter()
            .map(|row| {
                Ok(ChangeRow {
                    seq: Seq(row.try_get(0)?),
                    host: row.try_get(1)?,
                    verdict: row.try_get(2)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.err("cannot read the run index"))
    }

    fn fetch_run(
        &self,
        id: RunId,
    ) -> Result<Option<(RunRow, Result<String, String>)>, HistoryError> {
        let path = &self.path;
        let id = id.0;
        let row = self.with(|client| {
            client
                .query_opt(&placeholders(RUN_SQL), &[&id])
                .map_err(pg_err(path, "cannot read the run"))
        })?;
        row.map(|row| -> Result<_, postgres::Error> {
            Ok((
                run_row(&row)?,
                document_text(row.try_get(8)?, row.try_get(9)?),
            ))
        })
        .transpose()
        .map_err(self.err("cannot read the run"))
    }

    fn select(
        &self,
        sql: &str,
        args: &[String],
        context: &'static str,
    ) -> Result<Vec<Vec<Cell>>, HistoryError> {
        self.query(sql, args, context)?
            .iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect::<Result<_, _>>()
            .map_err(self.err(context))
    }

    // One repeatable-read transaction: a snapshot, so concurrent appends cannot make runs and
    // chain heads look inconsistent.
    fn read_chains(
        &self,
        policy_id: Option<&PolicyId>,
        from: &BTreeMap<PolicyId, Seq>,
        walk: &mut (dyn FnMut(ChainPart) -> bool + Send),
    ) -> Result<(), HistoryError> {
        let path = &self.path;
        self.with(|client| {
            let e = |context| pg_err(path, context);
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(e("cannot start verification"))?;
            let policies: Vec<String> = match policy_id {
                Some(policy) => vec![policy.to_string()],
                None => tx
                    .query(POLICIES_SQL, &[])
                    .map_err(e("cannot list policies"))?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()
                    .map_err(e("cannot list policies"))?,
            };
            'policies: for policy in policies {
                let index = index_rows(&mut tx, path, &policy)?;
                walk(ChainPart::Policy {
                    policy_id: PolicyId::from_stored(policy.clone()),
                    index,
                });
                let start = from
                    .get(&PolicyId::from_stored(policy.clone()))
                    .copied()
                    .unwrap_or(Seq::FIRST);
                let runs = tx
                    .query(&placeholders(CHAIN_SQL), &[&policy, &start.0])
                    .map_err(e("cannot read runs to verify"))?;
                for row in &runs {
                    let raw = raw_row(row).map_err(e("cannot read runs to verify"))?;
                    if !walk(ChainPart::Run(raw)) {
                        continue 'policies;
                    }
                }
                let head = tx
                    .query_opt(&placeholders(HEAD_SQL), &[&policy])
                    .map_err(e("cannot read the chain head"))?
                    .map(|r| -> Result<_, postgres::Error> {
                        Ok(Link {
                            seq: Seq(r.try_get(0)?),
                            hash: r.try_get(1)?,
                        })
                    })
                    .transpose()
                    .map_err(e("cannot read the chain head"))?;
                walk(ChainPart::Head(head));
            }
            tx.commit().map_err(e("cannot finish verification"))
        })
    }

    fn take_lock(
        &mut self,
        policy_id: &PolicyId,
        decide: &mut (dyn FnMut(Option<LockRow>) -> Option<LockTake> + Send),
    ) -> Result<(), HistoryError> {
        let path = &self.path;
        let policy_id = policy_id.as_str();
        self.with(|client| {
            let e = |context| pg_err(path, context);
            let mut tx = client
                .transaction()
                .map_err(e("cannot start taking the run lock"))?;
            // Rows of `locks` come and go, so lock the policy's name rather than a row.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('residency lock ' || $1, 0))",
                &[&policy_id],
            )
            .map_err(e("cannot take the run lock"))?;
            let row = tx
                .query_opt(&placeholders(LOCK_SQL), &[&policy_id])
                .map_err(e("cannot read the run lock"))?
                .map(|r| -> Result<LockRow, postgres::Error> {
                    Ok(LockRow {
                        holder: r.try_get(0)?,
                        heartbeat_at: r.try_get(1)?,
                    })
                })
                .transpose()
                .map_err(e("cannot read the run lock"))?;
            let Some(take) = decide(row) else {
                return tx
                    .rollback()
                    .map_err(e("cannot finish reading the run lock"));
            };
            tx.execute(
                &placeholders(TAKE_LOCK_SQL),
                &[&policy_id, &take.holder, &take.at],
            )
            .map_err(e("cannot take the run lock"))?;
            if let Some(detail) = &take.takeover {
                tx.execute(
                    &placeholders(TAKEOVER_SQL),
                    &[&take.at, &policy_id, &take.holder, detail],
                )
                .map_err(e("cannot record the lock takeover"))?;
            }
            tx.commit().map_err(e("cannot commit the run lock"))
        })
    }

    fn beat_lock(
        &mut self,
        policy_id: &PolicyId,
        holder: &str,
        at: &str,
    ) -> Result<bool, HistoryError> {
        let path = &self.path;
        let policy_id = policy_id.as_str();
        let changed = self.with(|client| {
            client
                .execute(&placeholders(BEAT_LOCK_SQL), &[&at, &policy_id, &holder])
                .map_err(pg_err(path, "cannot refresh the run lock"))
        })?;
        Ok(changed == 1)
    }

    fn drop_lock(&mut self, policy_id: &PolicyId, holder: &str) -> Result<(), HistoryError> {
        let path = &self.path;
        let policy_id = policy_id.as_str();
        self.with(|client| {
            client
                .execute(&placeholders(DROP_LOCK_SQL), &[&policy_id, &holder])
                .map_err(pg_err(path, "cannot release the run lock"))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_passwords_hidden() {
        assert!(is_url("postgres://u@localhost/db"));
        assert!(is_url("postgresql://u@localhost/db"));
        assert!(!is_url("/var/lib/residency/history.sqlite"));
        assert_eq!(
            redacted("postgres://u:secret@db.example:5432/h?sslmode=disable"),
            "postgres://u@db.example:5432/h?sslmode=disable"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn placeholders_are_renumbered_for_postgres() {
        assert_eq!(
            placeholders("a = ?1 AND b < ?12 AND c = '?'"),
            "a = $1 AND b < $12 AND c = '?'"
        );
    }

    #[test]
    fn vantage_is_shown_as_country_and_coordinates() {
        let doc = serde_json::json!({"vantage": {"country": "IN", "latitude": 19.07, "longitude": 72.87}});
        assert_eq!(vantage_of(&doc).as_deref(), Some("IN (19.07,72.87)"));
        assert_eq!(vantage_of(&serde_json::json!({"vantage": null})), None);
        assert_eq!(vantage_of(&serde_json::json!({})), None);
    }

    #[test]
    fn chain_lock_keys_differ_per_policy() {
        assert_ne!(chain_lock_key("eu"), chain_lock_key("in"));
        assert_eq!(chain_lock_key("eu"), chain_lock_key("eu"));
    }
}
