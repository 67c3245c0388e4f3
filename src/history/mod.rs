//! The compliance history: every `check` of a policy becomes one dated, hash-chained run record,
//! so a verdict given today can still be shown to a regulator next year.
//!
//! [`History`] is the one door: it validates what is recorded, writes timestamps in their one
//! stored form and turns stored text back into typed values, the same way for every store. Below
//! it, in pipeline order of a run's life:
//!
//! - `store.rs`: the primitives a database must offer ([`store::Store`]);
//! - `sqlite.rs`: the embedded file (the default) and its migrations;
//! - `postgres.rs`: a database shared by checkers at several vantage points, and its migrations;
//! - `chain.rs`: canonical JSON, the link from run to run, and verification, written once;
//! - `checkpoint.rs`: the verified checkpoints that let a report rehash only recent runs;
//! - `digest.rs`: the index kept beside each document, for timelines;
//! - `audit.rs`: the tables outside the chain (events, failed runs, alert deliveries).
//!
//! # Tamper evidence, and its limits
//!
//! [`History::verify`] detects rows that were edited, deleted or reordered *by something that
//! did not also recompute every later hash and the chain head* (see `chain.rs` for the record
//! each hash covers). It cannot detect a consistent rewrite: anyone with write access to the
//! database can rebuild the whole chain from scratch. The defence against that is outside the
//! database: the run hashes are printed in reports and on stdout, and those copies (in tickets,
//! emails, CI logs) are the anchors to compare against. The triggers created by the schemas only
//! stop accidents (an operator's stray `DELETE`); they can be dropped by anyone who can write.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::history::digest::RunDigest;
use crate::model::Verdict;
use crate::policy::PolicyId;
use store::{Prepared, Store};

mod audit;
pub mod checkpoint;
mod chain;
pub mod digest;
mod ids;
mod postgres;
mod sqlite;
mod store;

pub use audit::{AlertDelivery, AuditFilter, Event, EventKind, FailedRun};
pub use chain::{
    ChainBreak, ChainProblem, GENESIS_HASH, PolicyVerification, VerifyReport, canonical_json,
};
pub use ids::{Link, RunId, Seq, Stored};
pub use sqlite::SCHEMA_VERSION;
pub(crate) use store::{LockRow, LockTake};

/// Stamped into the file header (`PRAGMA application_id`, "RSDY") so that a residency history is
/// recognisable and another program's SQLite file is never mistaken for one; PostgreSQL keys its
/// chain lock on it.
const APPLICATION_ID: i64 = 0x5253_4459;

/// One finished `check` of one policy, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub policy_id: PolicyId,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    /// The run's full JSON result. Opaque here: stored (and hashed) in canonical form.
    pub document: Value,
}

/// A run as recorded. Timestamps are as stored: truncated to microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRun {
    pub id: RunId,
    pub policy_id: PolicyId,
    pub seq: Seq,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    /// Hash of the policy's previous run, or [`GENESIS_HASH`] for seq 1.
    pub prev_hash: String,
    /// Hex SHA-256 of the canonical record: the anchor worth copying somewhere else.
    pub hash: String,
    pub document: Value,
}

/// Which runs [`History::list`] returns. Time bounds apply to `started_at` and form a half-open
/// interval, `since <= started_at < until`, so consecutive windows never overlap or miss a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub policy_id: Option<PolicyId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A run and its index digest (see [`History::indexed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedRun {
    pub run: RunSummary,
    /// Distinct located addresses per country.
    pub countries: BTreeMap<String, u32>,
    /// Distinct addresses without a country.
    pub unlocated: u32,
    /// Why the document could not be digested (hand-made documents only); its endpoints are
    /// then unknown for this run.
    pub error: Option<String>,
}

/// An endpoint's verdict changed at run `seq` of its policy; `None`: the endpoint was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointChange {
    pub seq: Seq,
    pub host: String,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub id: RunId,
    pub policy_id: PolicyId,
    pub seq: Seq,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub hash: String,
}

pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
/// Everything that can go wrong with the history file. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot create directory {} for the history database: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not an SQLite database, so it cannot be a residency history: \
         point RESIDENCY_DB at the right file, or move this one away",
        path.display()
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{} is an SQLite database belonging to something else, not a residency history: \
         point RESIDENCY_DB at another file",
        path.display()
    )]
    ForeignDatabase { path: PathBuf },
    #[error(
        "{} has schema version {found}, this residency understands up to {supported}: upgrade residency",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{} stayed locked by another process for more than {}s: retry when the other \
         residency process has finished",
        path.display(),
        sqlite::BUSY_TIMEOUT.as_secs()
    )]
    Busy { path: PathBuf },
    #[error("{}: {context}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{}: run #{id} cannot be read back ({detail}): the file may have been edited outside \
         residency; run `residency history verify`",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        id: RunId,
        detail: String,
    },
    #[error(
        "cannot connect to the PostgreSQL history at {url}: {}: check that the server \
         is running and that the URL's host, port, user and database are right",
        postgres::describe(source)
    )]
    PostgresConnect {
        url: String,
        #[source]
        source: ::postgres::Error,
    },
    #[error("{}: {context}: {}", path.display(), postgres::describe(source))]
    Postgres {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: ::postgres::Error,
    },
    #[error(
        "{} is a PostgreSQL database with other tables named like residency's (runs, \
         chain_head, ...) but no residency schema version: point --db at a database of its own",
        path.display()
    )]
    ForeignPostgres { path: PathBuf },
    #[error("refusing to record run: {0}")]
    InvalidRun(String),
    #[error("invalid time filter: {0}")]
    InvalidFilter(String),
    #[error(
        "{}: row {id} of the {table} table cannot be read back ({detail}): the file may have \
         been edited outside residency",
        path.display()
    )]
    UnreadableRow {
        path: PathBuf,
        table: &'static str,
        id: i64,
        detail: String,
    },
}

/// Where the history lives unless the user says otherwise.
///
/// In order: `$RESIDENCY_DB` if set and non-empty; else `$XDG_DATA_HOME/residency/history.sqlite`;
/// else `$HOME/.local/share/residency/history.sqlite` (the XDG default); else
/// `./residency-history.sqlite` in the current directory, so there is always an answer.
pub fn default_path() -> PathBuf {
    default_path_from(|name| std::env::var_os(name))
}

// Environment access is injected so the precedence can be tested without mutating the
// process environment (which is `unsafe` and racy across test threads).
fn default_path_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(db) = set("RESIDENCY_DB") {
        return PathBuf::from(db);
    }
    if let Some(data) = set("XDG_DATA_HOME") {
        return PathBuf::from(data).join("residency").join("history.sqlite");
    }
    if let Some(home) = set("HOME") {
        return PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("residency")
            .join("history.sqlite");
    }
    PathBuf::from("residency-history.sqlite")
}

/// A handle on the history. One per process (or thread) is the intended use; several handles on
/// one store are safe: appends of a policy serialise in the store.
pub struct History {
    store: Box<dyn Store>,
    /// The SQLite file, or for PostgreSQL the server URL without its password.
    path: PathBuf,
    postgres: bool,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens the history at `path`: a PostgreSQL URL (see [`History::open_url`]), or an SQLite
    /// file, created if missing (with parent directories), its schema brought up to date.
    ///
    /// The SQLite connection uses WAL journaling with `synchronous=FULL`, so a run that `append`
    /// returned survives a power loss, plus a busy timeout so concurrent processes queue up
    /// rather than fail.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(url) = path.to_str().filter(|p| postgres::is_url(p)) {
            return History::open_url(url);
        }
        Ok(History {
            store: Box::new(sqlite::SqliteStore::open(path)?),
            path: path.to_path_buf(),
            postgres: false,
        })
    }

    /// Opens the history in the PostgreSQL database at `url` (`postgres://` or
    /// `postgresql://`), creating or upgrading its schema. Several checkers (say in IN, US and
    /// SG) can write to one such database at once; each policy's chain stays one chain.
    ///
    /// Connections are unencrypted (no TLS support is built in): use a server on loopback or a
    /// unix socket (`postgres://user@%2Frun%2Fpostgresql/db`), or an SSH/stunnel tunnel to a
    /// remote one.
    pub fn open_url(url: &str) -> Result<History, HistoryError> {
        let store = postgres::PgStore::open(url)?;
        let path = PathBuf::from(store.display_url());
        Ok(History {
            store: Box::new(store),
            path,
            postgres: true,
        })
    }

    /// True when the history lives in PostgreSQL rather than an SQLite file.
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// The file this history is stored in; for PostgreSQL, the server URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a run that ended without a verdict (an error before or while measuring, or a
    /// shutdown): in `failed_runs`, outside the hash chain, so `history verify` is unchanged.
    pub fn record_failure(
        &mut self,
        policy_id: &PolicyId,
        started_at: DateTime<Utc>,
        holder: &str,
        reason: &str,
    ) -> Result<i64, HistoryError> {
        let started = crate::time::stored(started_at).map_err(HistoryError::InvalidRun)?;
        let failed = crate::time::stored(Utc::now()).map_err(HistoryError::InvalidRun)?;
        self.store
            .insert_failure(policy_id, &started, &failed, holder, reason)
    }

    /// Records what became of the webhook alert for run `run_id`: `delivered`, and how (the
    /// try it succeeded on, or why it was given up), in `alert_deliveries`, outside the chain.
    pub fn record_alert(
        &mut self,
        run_id: RunId,
        policy_id: &PolicyId,
        event: &str,
        delivered: bool,
        detail: &str,
    ) -> Result<i64, HistoryError> {
        let at = crate::time::stored(Utc::now()).map_err(HistoryError::InvalidRun)?;
        self.store
            .insert_alert(run_id, policy_id, event, &at, delivered, detail)
    }

    /// Records a run at the end of its policy's chain and returns it as stored.
    ///
    /// The store reads the chain head, inserts the run and moves the head in one transaction
    /// that queues concurrent writers of the policy (threads, processes or, for PostgreSQL,
    /// other machines), so each sees the previous one's run and the chain cannot fork; and a
    /// crash part-way leaves nothing behind.
    ///
    /// It takes the run by value so that the returned [`StoredRun`] holds the same document,
    /// not a copy: a 10,000-endpoint document is tens of megabytes.
    pub fn append(&mut self, run: NewRun) -> Result<StoredRun, HistoryError> {
        if run.finished_at < run.started_at {
            return Err(HistoryError::InvalidRun(format!(
                "run of {} finished ({}) before it started ({})",
                run.policy_id, run.finished_at, run.started_at
            )));
        }
        let started_at = crate::time::stored(run.started_at).map_err(HistoryError::InvalidRun)?;
        let finished_at = crate::time::stored(run.finished_at).map_err(HistoryError::InvalidRun)?;
        let document = canonical_json(&run.document);
        let digest = RunDigest::of_text(&document);
        let compressed = chain::compress(&self.path, &document)?;
        let new = Prepared {
            started_at: &started_at,
            finished_at: &finished_at,
            document: &document,
            compressed: &compressed,
            digest: &digest,
        };
        let (id, link) = self.store.append(&run, &new)?;
        drop((document, compressed));
        Ok(StoredRun {
            id,
            policy_id: run.policy_id.clone(),
            seq: link.link.seq,
            started_at: self.time_column(id, &started_at)?,
            finished_at: self.time_column(id, &finished_at)?,
            verdict: run.verdict,
            prev_hash: link.prev_hash,
            hash: link.link.hash,
            document: run.document,
        })
    }

    /// Run summaries matching `filter`, oldest first (by `started_at`, then id).
    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, HistoryError> {
        self.store
            .runs(filter)?
            .into_iter()
            .map(|row| self.summary(row))
            .collect()
    }

    /// Runs matching `filter` with their index digests (see [`crate::history::digest`]), oldest
    /// first: what timelines read instead of documents.
    pub fn indexed(&self, filter: &RunFilter) -> Result<Vec<IndexedRun>, HistoryError> {
        self.store
            .indexed(filter)?
            .into_iter()
            .map(|row| {
                let id = row.run.id;
                let corrupt = |detail: &str| HistoryError::Corrupt {
                    path: self.path.clone(),
                    id,
                    detail: detail.into(),
                };
                Ok(IndexedRun {
                    countries: serde_json::from_str(&row.countries)
                        .map_err(|_| corrupt("its index row's countries are not JSON"))?,
                    unlocated: u32::try_from(row.unlocated)
                        .map_err(|_| corrupt("its index row's unlocated count is out of range"))?,
                    error: row.error,
                    run: self.summary(row.run)?,
                })
            })
            .collect()
    }

    /// The policy's endpoint verdict changes up to and including run `until_seq`, in seq order.
    /// Replaying them gives every endpoint's verdict at every run.
    pub fn endpoint_changes(
        &self,
        policy_id: &PolicyId,
        until_seq: Seq,
    ) -> Result<Vec<EndpointChange>, HistoryError> {
        self.store
            .endpoint_changes(policy_id, until_seq)?
            .into_iter()
            .map(|row| {
                let verdict = match row.verdict {
                    Some(v) => Some(v.parse().map_err(|detail| HistoryError::UnreadableRow {
                        path: self.path.clone(),
                        table: "endpoint_changes",
                        id: row.seq.0,
                        detail: format!("{policy_id} seq {} host {}: {detail}", row.seq, row.host),
                    })?),
                    None => None,
                };
                Ok(EndpointChange {
                    seq: row.seq,
                    host: row.host,
                    verdict,
                })
            })
            .collect()
    }

    /// The canonical JSON text of run `id`'s document, or `None` if there is no such run: for
    /// readers that parse only part of it, which is much faster than building the whole value.
    pub fn document_text(&self, id: RunId) -> Result<Option<String>, HistoryError> {
        self.store
            .fetch_run(id)?
            .map(|(_, document)| document.map_err(|detail| self.corrupt(id, detail)))
            .transpose()
    }

    /// The run with this id, document included, or `None` if there is no such run.
    pub fn get(&self, id: RunId) -> Result<Option<StoredRun>, HistoryError> {
        let Some((row, document)) = self.store.fetch_run(id)? else {
            return Ok(None);
        };
        let document = document.map_err(|detail| self.corrupt(id, detail))?;
        let document = serde_json::from_str(&document)
            .map_err(|e| self.corrupt(id, format!("document is not valid JSON: {e}")))?;
        Ok(Some(StoredRun {
            id,
            started_at: self.time_column(id, &row.started_at)?,
            finished_at: self.time_column(id, &row.finished_at)?,
            verdict: self.verdict_column(id, &row.verdict)?,
            policy_id: PolicyId::from_stored(row.policy_id),
            seq: row.seq,
            prev_hash: row.prev_hash,
            hash: row.hash,
            document,
        }))
    }

    /// Checks the hash chain of every policy (or only `policy_id`) and reports, per policy, the
    /// first break: a row whose hash does not match its columns (edited), a seq gap or a
    /// `prev_hash` that does not link to the previous run (deleted, replaced or reordered runs),
    /// or a chain head that disagrees with the last run (the newest runs deleted or replaced).
    ///
    /// Limit: this proves the store is *self-consistent*, not that it is *original*. Someone
    /// with write access can drop the triggers and rewrite every row, hash and chain head
    /// consistently. Keep the run hashes printed in reports and on stdout elsewhere; comparing
    /// them (or [`PolicyVerification::head_hash`]) with this store is what catches that.
    ///
    /// A `policy_id` with no runs yields an entry with `runs_checked == 0`, so a misspelt policy
    /// is visible rather than silently "intact".
    pub fn verify(&self, policy_id: Option<&PolicyId>) -> Result<VerifyReport, HistoryError> {
        chain::verify(&*self.store, policy_id, &BTreeMap::new())
    }

    /// Checks `policy_id`'s chain from its verified checkpoint when it has one and `full` is
    /// false (see [`checkpoint`]), else in full; when the chain is found intact its head
    /// becomes the checkpoint. The report's `from_seq` says which was done.
    pub fn verify_since_checkpoint(
        &self,
        policy_id: &PolicyId,
        full: bool,
    ) -> Result<VerifyReport, HistoryError> {
        let mut checkpoints = checkpoint::Checkpoints::load(&self.path.display().to_string());
        let start: BTreeMap<PolicyId, Link> = match checkpoints.get(policy_id) {
            Some(c) if !full => [(policy_id.clone(), c.link())].into(),
            _ => BTreeMap::new(),
        };
        let report = chain::verify(&*self.store, Some(policy_id), &start)?;
        if let Some(p) = report.policies.iter().find(|p| &p.policy_id == policy_id)
            && p.broken.is_none()
            && let Some(head) = &p.head
        {
            checkpoints.set(policy_id, head);
        }
        Ok(report)
    }

    /// In one transaction that queues other takers: reads `policy_id`'s run lock and writes the
    /// take `decide` returns, if any (for `crate::run::lock`, which owns the rules).
    pub(crate) fn lock_take(
        &mut self,
        policy_id: &PolicyId,
        decide: &mut (dyn FnMut(Option<LockRow>) -> Option<LockTake> + Send),
    ) -> Result<(), HistoryError> {
        self.store.take_lock(policy_id, decide)
    }

    /// Moves the heartbeat of `holder`'s lock; false when the lock is no longer theirs.
    pub(crate) fn lock_beat(
        &mut self,
        policy_id: &PolicyId,
        holder: &str,
        at: &str,
    ) -> Result<bool, HistoryError> {
        self.store.beat_lock(policy_id, holder, at)
    }

    /// Releases `holder`'s lock, if it is still theirs.
    pub(crate) fn lock_drop(
        &mut self,
        policy_id: &PolicyId,
        holder: &str,
    ) -> Result<(), HistoryError> {
        self.store.drop_lock(policy_id, holder)
    }

    fn summary(&self, row: store::RunRow) -> Result<RunSummary, HistoryError> {
        Ok(RunSummary {
            started_at: self.time_column(row.id, &row.started_at)?,
            finished_at: self.time_column(row.id, &row.finished_at)?,
            verdict: self.verdict_column(row.id, &row.verdict)?,
            id: row.id,
            policy_id: PolicyId::from_stored(row.policy_id),
            seq: row.seq,
            hash: row.hash,
        })
    }

    fn corrupt(&self, id: RunId, detail: String) -> HistoryError {
        HistoryError::Corrupt {
            path: self.path.clone(),
            id,
            detail,
        }
    }

    fn time_column(&self, id: RunId, text: &str) -> Result<DateTime<Utc>, HistoryError> {
        parse_timestamp(text)
            .ok_or_else(|| self.corrupt(id, format!("timestamp `{text}` does not parse")))
    }

    fn verdict_column(&self, id: RunId, text: &str) -> Result<Verdict, HistoryError> {
        text.parse().map_err(|detail| self.corrupt(id, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T09:30:00.123456789Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid literal");
        assert_eq!(
            crate::time::stored(t),
            Ok("2025-03-01T09:30:00.123456Z".to_string())
        );
        let whole = DateTime::from_timestamp(0, 0).expect("epoch");
        assert_eq!(
            crate::time::stored(whole),
            Ok("1970-01-01T00:00:00.000000Z".to_string())
        );
    }

    #[test]
    fn default_path_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let all = &[
            ("RESIDENCY_DB", "/x/h.db"),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(default_path_from(env(all)), PathBuf::from("/x/h.db"));
        let xdg = &[
            ("RESIDENCY_DB", ""),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            default_path_from(env(xdg)),
            PathBuf::from("/xdg/residency/history.sqlite")
        );
        let home = &[("HOME", "/home/u")];
        assert_eq!(
            default_path_from(env(home)),
            PathBuf::from("/home/u/.local/share/residency/history.sqlite")
        );
        assert_eq!(
            default_path_from(env(&[])),
            PathBuf::from("residency-history.sqlite")
        );
    }
}
