//! The compliance history: every `check` of a policy becomes one dated, hash-chained run record
//! in an SQLite file, so a verdict given today can still be shown to a regulator next year.
//!
//! This module owns the database file end to end: where it lives ([`default_path`]), its schema
//! and migrations, the canonical JSON form that run hashes are computed over
//! ([`canonical_json`]), appending runs, reading them back, and verifying the chain.
//!
//! The history can instead live in PostgreSQL (`--db postgres://...`, [`History::open_url`]),
//! shared by checkers at several vantage points; `pg` holds that store's schema and SQL, while
//! the record format, hashing, chain rules and verification walk stay here, shared by both.
//!
//! # Tamper evidence, and its limits
//!
//! Runs form one hash chain per policy. Each run's hash is the hex SHA-256 of the canonical JSON
//! of `{policy_id, seq, started_at, finished_at, verdict, prev_hash, document}`, where
//! `prev_hash` is the hash of the policy's previous run and, for the first run (`seq` 1),
//! [`GENESIS_HASH`] (64 zeros, never NULL, so every record has the same shape). A `chain_head`
//! table, updated in the same transaction as each append, remembers the last seq and hash per
//! policy, so deleting the newest run is detectable too, which the chain alone cannot show.
//!
//! [`History::verify`] detects rows that were edited, deleted or reordered *by something that
//! did not also recompute every later hash and the chain head*. It cannot detect a consistent
//! rewrite: anyone with write access to the file can rebuild the whole chain from scratch. The
//! defence against that is outside this file: the run hashes are printed in reports and on
//! stdout, and those copies (in tickets, emails, CI logs) are the anchors to compare against.
//! The triggers created by the schema only stop accidents (an operator's stray `DELETE`); they
//! can be dropped by anyone who can write the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::history::digest::RunDigest;
use crate::model::Verdict;

pub mod digest;
mod postgres;
pub(crate) use postgres::pg_err;

/// `prev_hash` of the first run of every policy.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How long to wait for another process holding the write lock before giving up. A `check`
/// appends one small row, so anything much longer than this means a stuck process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Stamped into the file header (`PRAGMA application_id`, "RSDY") so that a residency history is
/// recognisable and another program's SQLite file is never mistaken for one.
const APPLICATION_ID: i64 = 0x5253_4459;

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

/// One finished `check` of one policy, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub policy_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    /// The run's full JSON result. Opaque here: stored (and hashed) in canonical form.
    pub document: Value,
}

/// A run as recorded. Timestamps are as stored: truncated to microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRun {
    /// The run id users type (`RUN_ID`); never reused.
    pub id: i64,
    pub policy_id: String,
    /// Position in the policy's chain, from 1 with no gaps.
    pub seq: i64,
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
    pub policy_id: Option<String>,
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
    pub seq: i64,
    pub host: String,
    pub verdict: Option<Verdict>,
}

/// `base` (ending in a WHERE clause) narrowed by `filter`, ordered by start time, with its
/// arguments; `table` is the runs table's alias prefix (`r.`) or empty.
fn filtered(
    base: &str,
    filter: &RunFilter,
    table: &str,
) -> Result<(String, Vec<String>), HistoryError> {
    let (clause, args) = window_where(
        filter,
        &format!("{table}policy_id"),
        &format!("{table}started_at"),
    )?;
    Ok((
        format!("{base}{clause} ORDER BY {table}started_at, {table}id"),
        args,
    ))
}

/// A run without its document, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub policy_id: String,
    pub seq: i64,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub hash: String,
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The columns a run hash covers, in their stored text form.
struct Record<'a> {
    policy_id: &'a str,
    seq: i64,
    started_at: &'a str,
    finished_at: &'a str,
    verdict: &'a str,
    prev_hash: &'a str,
    /// Canonical JSON text, embedded verbatim: verification hashes the stored bytes, so any
    /// change to them, even one that parses to the same value, shows as a mismatch.
    document: &'a str,
}

impl Record<'_> {
    /// Canonical JSON of the record. Written by hand (keys already in sorted order) so the
    /// document text is embedded as stored rather than re-parsed; a unit test pins it to
    /// `canonical_json` of the same object.
    fn canonical_text(&self) -> String {
        let mut out = String::with_capacity(self.document.len() + 320);
        out.push_str("{\"document\":");
        out.push_str(self.document);
        out.push_str(",\"finished_at\":");
        push_json_string(self.finished_at, &mut out);
        out.push_str(",\"policy_id\":");
        push_json_string(self.policy_id, &mut out);
        out.push_str(",\"prev_hash\":");
        push_json_string(self.prev_hash, &mut out);
        let _ = write!(out, ",\"seq\":{}", self.seq);
        out.push_str(",\"started_at\":");
        push_json_string(self.started_at, &mut out);
        out.push_str(",\"verdict\":");
        push_json_string(self.verdict, &mut out);
        out.push('}');
        out
    }

    fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_text().as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// What [`History::verify`] found, one entry per policy (sorted by policy id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub policies: Vec<PolicyVerification>,
}

impl VerifyReport {
    /// True when no policy's chain is broken. Says nothing about a consistent rewrite of the
    /// whole file; compare [`PolicyVerification::head_hash`] with copies kept elsewhere for that.
    pub fn is_intact(&self) -> bool {
        self.policies.iter().all(|p| p.broken.is_none())
    }

    /// Total runs checked across policies.
    pub fn runs_checked(&self) -> u64 {
        self.policies.iter().map(|p| p.runs_checked).sum()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.policies.is_empty() {
            writeln!(f, "no runs recorded")?;
        }
        for p in &self.policies {
            match (&p.broken, &p.head_hash) {
                (Some(b), _) => writeln!(f, "{}: BROKEN at {b}", p.policy_id)?,
                (None, Some(head)) => writeln!(
                    f,
                    "{}: intact, {} runs, head seq {} hash {head}",
                    p.policy_id,
                    p.runs_checked,
                    p.head_seq.unwrap_or(0)
                )?,
                (None, None) => writeln!(f, "{}: no runs", p.policy_id)?,
            }
        }
        Ok(())
    }
}

/// The verification of one policy's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyVerification {
    pub policy_id: String,
    /// Runs whose hash, seq and link were checked: all of them when the chain is intact,
    /// otherwise up to and including the first broken one.
    pub runs_checked: u64,
    /// Seq and hash of the policy's last run, when the chain is intact and non-empty.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// The first problem found walking the chain from seq 1, if any.
    pub broken: Option<ChainBreak>,
}

/// The first place a policy's chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The run where the break shows; `None` when the problem is a run that no longer exists.
    pub id: Option<i64>,
    /// That run's seq, or the first missing seq.
    pub seq: i64,
    pub problem: ChainProblem,
    /// One line for humans, e.g. "hash mismatch: row edited".
    pub message: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "run #{id} (seq {}): {}", self.seq, self.message),
            None => write!(f, "seq {}: {}", self.seq, self.message),
        }
    }
}

/// What is wrong at a [`ChainBreak`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainProblem {
    /// The stored hash is not the hash of the row's columns: the row was edited.
    HashMismatch,
    /// A column no longer has the type residency wrote: the row was edited.
    Unreadable { detail: String },
    /// Seqs jump: the runs in between were deleted.
    SeqGap { missing_seq: i64 },
    /// `prev_hash` is not the previous run's hash (`previous_id`), or for seq 1 not
    /// [`GENESIS_HASH`]: a run was deleted, replaced or reordered.
    PrevHashMismatch { previous_id: Option<i64> },
    /// The chain head remembers runs after the last one present: they were deleted.
    MissingTail {
        first_missing: i64,
        last_missing: i64,
    },
    /// Runs exist but the policy's chain head row is gone.
    HeadMissing,
    /// Runs exist beyond the chain head: they were inserted outside residency.
    HeadBehind { head_seq: i64 },
    /// The chain head's hash is not the last run's hash: the last run was replaced.
    HeadHashMismatch,
    /// The run's row in the index (`run_digests`, `endpoint_changes`) is not what its document
    /// says: the index was edited, so timelines read from it cannot be trusted.
    IndexMismatch { detail: String },
}

impl ChainProblem {
    fn message(&self) -> String {
        match self {
            ChainProblem::HashMismatch => "hash mismatch: row edited".into(),
            ChainProblem::Unreadable { detail } => format!("unreadable row ({detail}): row edited"),
            ChainProblem::SeqGap { missing_seq } => {
                format!("seq gap: run seq {missing_seq} missing")
            }
            ChainProblem::PrevHashMismatch {
                previous_id: Some(prev),
            } => {
                format!("prev_hash does not match run #{prev}: a run was deleted or reordered")
            }
            ChainProblem::PrevHashMismatch { previous_id: None } => {
                "prev_hash of seq 1 is not the genesis hash: a run was deleted or reordered".into()
            }
            ChainProblem::MissingTail {
                first_missing,
                last_missing,
            } if first_missing == last_missing => {
                format!("run seq {first_missing} is missing (deleted after it was recorded)")
            }
            ChainProblem::MissingTail {
                first_missing,
                last_missing,
            } => format!(
                "runs seq {first_missing} to {last_missing} are missing (deleted after they were recorded)"
            ),
            ChainProblem::HeadMissing => {
                "the chain head of this policy was deleted, so deletion of its \
                latest runs cannot be ruled out"
                    .into()
            }
            ChainProblem::HeadBehind { head_seq } => format!(
                "the chain head says the last run is seq {head_seq}: later runs were added outside residency"
            ),
            ChainProblem::HeadHashMismatch => {
                "the chain head's hash is not this run's hash: the latest run was replaced".into()
            }
            ChainProblem::IndexMismatch { detail } => format!(
                "the run index disagrees with the run's document ({detail}): the index was \
                 edited, so timelines of this policy cannot be trusted"
            ),
        }
    }

    fn at(self, id: Option<i64>, seq: i64) -> ChainBreak {
        let message = self.message();
        ChainBreak {
            id,
            seq,
            problem: self,
            message,
        }
    }
}

/// One `runs` row as verification reads it: every column exactly as stored.
struct RawRow {
    id: i64,
    seq: i64,
    started_at: String,
    finished_at: String,
    verdict: String,
    document: String,
    prev_hash: String,
    hash: String,
}

// Reads a row without trusting column types, since verification exists for files that were
// edited; a wrong type becomes a reported break, not an error that stops verification.
fn read_raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RawRow, (i64, i64, String)>> {
    use rusqlite::types::ValueRef;
    let id: i64 = row.get(0)?;
    let seq = match row.get_ref(1)? {
        ValueRef::Integer(seq) => seq,
        other => {
            return Ok(Err((
                id,
                0,
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
        BUSY_TIMEOUT.as_secs()
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
        id: i64,
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

/// Canonical JSON: object keys sorted by their UTF-8 bytes at every depth, no whitespace,
/// strings and numbers exactly as `serde_json` prints them.
///
/// Hashes are computed over this text, so it must not depend on how a map was built or on
/// whether some dependency switched on serde_json's `preserve_order` feature.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Leaves: serde_json's compact Display is the definition of "as serde_json prints them".
        leaf => {
            let _ = write!(out, "{leaf}");
        }
    }
}

fn push_json_string(s: &str, out: &mut String) {
    let _ = write!(out, "{}", Value::String(s.to_owned()));
}

/// A database handle on the history file. One per process (or thread) is the intended use;
/// several handles on one file are safe: appends serialise on SQLite's write lock.
pub struct History {
    store: Store,
    /// The SQLite file, or for PostgreSQL the server URL without its password.
    path: PathBuf,
}

/// Where the history lives: the embedded SQLite file, or a shared PostgreSQL database.
enum Store {
    Sqlite(Connection),
    Postgres(Box<postgres::PgStore>),
}

/// What [`History::connection`] gives the modules that own other tables of the store.
pub(crate) enum Backend<'a> {
    Sqlite(&'a mut Connection),
    Postgres(&'a mut postgres::PgStore),
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens (creating if missing, with parent directories) the history at `path` and brings its
    /// schema up to date.
    ///
    /// The connection uses WAL journaling with `synchronous=FULL`, so a run that `append`
    /// returned survives a power loss, plus a busy timeout so concurrent processes queue up
    /// rather than fail.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(url) = path.to_str().filter(|p| postgres::is_url(p)) {
            return History::open_url(url);
        }
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
            match History::configure(&conn, path)
                .and_then(|()| History::migrate(&mut conn, path))
                .and_then(|()| History::backfill_index(&mut conn, path))
            {
                Err(HistoryError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                other => {
                    break other.map(|()| History {
                        store: Store::Sqlite(conn),
                        path: path.to_path_buf(),
                    });
                }
            }
        }
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
            store: Store::Postgres(Box::new(store)),
            path,
        })
    }

    /// True when the history lives in PostgreSQL rather than an SQLite file.
    pub fn is_postgres(&self) -> bool {
        matches!(self.store, Store::Postgres(_))
    }

    /// The file this history is stored in; for PostgreSQL, the server URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the modules that own other tables of this file (`crate::run::lock`).
    pub(crate) fn connection(&mut self) -> Backend<'_> {
        match &mut self.store {
            Store::Sqlite(conn) => Backend::Sqlite(conn),
            Store::Postgres(pg) => Backend::Postgres(pg),
        }
    }

    /// Records a run that ended without a verdict (an error before or while measuring, or a
    /// shutdown): in `failed_runs`, outside the hash chain, so `history verify` is unchanged.
    pub fn record_failure(
        &mut self,
        policy_id: &str,
        started_at: DateTime<Utc>,
        holder: &str,
        reason: &str,
    ) -> Result<i64, HistoryError> {
        let conn = match &mut self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.record_failure(policy_id, started_at, holder, reason),
        };
        let started = crate::time::stored(started_at).map_err(HistoryError::InvalidRun)?;
        let failed = crate::time::stored(Utc::now()).map_err(HistoryError::InvalidRun)?;
        conn.execute(
            "INSERT INTO failed_runs (policy_id, started_at, failed_at, holder, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![policy_id, started, failed, holder, reason],
        )
        .map_err(sql_err(&self.path, "cannot record the failed run"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records what became of the webhook alert for run `run_id`: `delivered`, and how (the
    /// try it succeeded on, or why it was given up), in `alert_deliveries`, outside the chain.
    pub fn record_alert(
        &mut self,
        run_id: i64,
        policy_id: &str,
        event: &str,
        delivered: bool,
        detail: &str,
    ) -> Result<i64, HistoryError> {
        let conn = match &mut self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => {
                return pg.record_alert(run_id, policy_id, event, delivered, detail);
            }
        };
        let at = crate::time::stored(Utc::now()).map_err(HistoryError::InvalidRun)?;
        conn.execute(
            "INSERT INTO alert_deliveries (run_id, policy_id, event, at, delivered, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run_id, policy_id, event, at, delivered, detail],
        )
        .map_err(sql_err(&self.path, "cannot record the alert delivery"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Records a run at the end of its policy's chain and returns it as stored.
    ///
    /// Everything happens in one `BEGIN IMMEDIATE` transaction: reading the chain head, inserting
    /// the run and moving the head. Concurrent writers (threads or processes) therefore queue on
    /// the write lock and each sees the previous one's run, so the chain cannot fork; and a crash
    /// part-way leaves nothing behind.
    pub fn append(&mut self, run: &NewRun) -> Result<StoredRun, HistoryError> {
        if run.policy_id.trim().is_empty() {
            return Err(HistoryError::InvalidRun("the policy id is empty".into()));
        }
        if run.finished_at < run.started_at {
            return Err(HistoryError::InvalidRun(format!(
                "run of {} finished ({}) before it started ({})",
                run.policy_id, run.finished_at, run.started_at
            )));
        }
        let started_at = crate::time::stored(run.started_at).map_err(HistoryError::InvalidRun)?;
        let finished_at = crate::time::stored(run.finished_at).map_err(HistoryError::InvalidRun)?;
        let document = canonical_json(&run.document);
        let digest = RunDigest::of_document(&run.document);
        let path = self.path.clone();
        let compressed = compress(&path, &document)?;
        let new = Prepared {
            started_at: &started_at,
            finished_at: &finished_at,
            document: &document,
            compressed: &compressed,
            digest: &digest,
        };
        let conn = match &mut self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => {
                let (id, seq, prev_hash, hash) = pg.append(run, &new)?;
                return stored_run(
                    &path,
                    run,
                    id,
                    seq,
                    prev_hash,
                    hash,
                    &started_at,
                    &finished_at,
                );
            }
        };

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(&path, "cannot start recording the run"))?;
        let head: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM chain_head WHERE policy_id = ?1",
                [&run.policy_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql_err(&path, "cannot read the chain head"))?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM runs WHERE policy_id = ?1 ORDER BY seq DESC LIMIT 1",
                [&run.policy_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql_err(&path, "cannot read the policy's last run"))?;
        let (seq, prev_hash, hash) = next_link(&path, run, &new, head, last)?;
        let verdict = run.verdict.as_str();
        tx.execute(
            "INSERT INTO runs (policy_id, seq, started_at, finished_at, verdict, document, document_zstd, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8)",
            params![run.policy_id, seq, started_at, finished_at, verdict, compressed, prev_hash, hash],
        )
        .map_err(sql_err(&path, "cannot insert the run"))?;
        let id = tx.last_insert_rowid();
        index_run(&tx, &path, &run.policy_id, id, seq, &digest)?;
        tx.execute(
            "INSERT INTO chain_head (policy_id, seq, hash) VALUES (?1, ?2, ?3)
             ON CONFLICT (policy_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![run.policy_id, seq, hash],
        )
        .map_err(sql_err(&path, "cannot move the chain head"))?;
        tx.commit()
            .map_err(sql_err(&path, "cannot commit the run"))?;
        stored_run(
            &path,
            run,
            id,
            seq,
            prev_hash,
            hash,
            &started_at,
            &finished_at,
        )
    }
    /// Run summaries matching `filter`, oldest first (by `started_at`, then id).
    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.list(filter),
        };
        let (sql, args) = filtered(
            "SELECT id, policy_id, seq, started_at, finished_at, verdict, hash FROM runs WHERE 1 = 1",
            filter,
            "",
        )?;

        let path = &self.path;
        let mut stmt = conn
            .prepare(&sql)
            .map_err(sql_err(path, "cannot list runs"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })
            .map_err(sql_err(path, "cannot list runs"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, policy_id, seq, started_at, finished_at, verdict, hash) =
                row.map_err(sql_err(path, "cannot read a run"))?;
            out.push(RunSummary {
                id,
                policy_id,
                seq,
                started_at: self.time_column(id, &started_at)?,
                finished_at: self.time_column(id, &finished_at)?,
                verdict: self.verdict_column(id, &verdict)?,
                hash,
            });
        }
        Ok(out)
    }

    /// Runs matching `filter` with their index digests (see [`crate::history::digest`]), oldest first:
    /// what timelines read instead of documents.
    pub fn indexed(&self, filter: &RunFilter) -> Result<Vec<IndexedRun>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.indexed(filter),
        };
        let (sql, args) = filtered(
            "SELECT r.id, r.policy_id, r.seq, r.started_at, r.finished_at, r.verdict, r.hash,
                    d.countries, d.unlocated, d.error
             FROM runs r JOIN run_digests d ON d.run_id = r.id WHERE 1 = 1",
            filter,
            "r.",
        )?;
        let path = &self.path;
        let e = || sql_err(path, "cannot read the run index");
        let mut stmt = conn.prepare(&sql).map_err(e())?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(e())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(e())? {
            let id: i64 = row.get(0).map_err(e())?;
            let countries: String = row.get(7).map_err(e())?;
            let countries =
                serde_json::from_str(&countries).map_err(|_| HistoryError::Corrupt {
                    path: path.clone(),
                    id,
                    detail: "its index row's countries are not JSON".into(),
                })?;
            out.push(IndexedRun {
                run: RunSummary {
                    id,
                    policy_id: row.get(1).map_err(e())?,
                    seq: row.get(2).map_err(e())?,
                    started_at: self.time_column(id, &row.get::<_, String>(3).map_err(e())?)?,
                    finished_at: self.time_column(id, &row.get::<_, String>(4).map_err(e())?)?,
                    verdict: self.verdict_column(id, &row.get::<_, String>(5).map_err(e())?)?,
                    hash: row.get(6).map_err(e())?,
                },
                countries,
                unlocated: row.get(8).map_err(e())?,
                error: row.get(9).map_err(e())?,
            });
        }
        Ok(out)
    }

    /// The policy's endpoint verdict changes up to and including run `until_seq`, in seq order.
    /// Replaying them gives every endpoint's verdict at every run.
    pub fn endpoint_changes(
        &self,
        policy_id: &str,
        until_seq: i64,
    ) -> Result<Vec<EndpointChange>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.endpoint_changes(policy_id, until_seq),
        };
        let path = &self.path;
        let e = || sql_err(path, "cannot read the run index");
        let mut stmt = conn
            .prepare(
                "SELECT seq, host, verdict FROM endpoint_changes
                 WHERE policy_id = ?1 AND seq <= ?2 ORDER BY seq, host",
            )
            .map_err(e())?;
        let mut rows = stmt.query(params![policy_id, until_seq]).map_err(e())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(e())? {
            let verdict: Option<String> = row.get(2).map_err(e())?;
            out.push(EndpointChange {
                seq: row.get(0).map_err(e())?,
                host: row.get(1).map_err(e())?,
                verdict: match verdict {
                    Some(v) => Some(v.parse().map_err(|detail| HistoryError::Sqlite {
                        path: path.clone(),
                        context: "an endpoint change has an unknown verdict",
                        source: rusqlite::Error::InvalidColumnName(detail),
                    })?),
                    None => None,
                },
            });
        }
        Ok(out)
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
        let todo: Vec<(i64, String, i64)> = {
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

    /// The canonical JSON text of run `id`'s document, or `None` if there is no such run: for
    /// readers that parse only part of it, which is much faster than building the whole value.
    pub fn document_text(&self, id: i64) -> Result<Option<String>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.document_text(id),
        };
        let path = &self.path;
        let row: Option<(String, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT document, document_zstd FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql_err(path, "cannot read the run"))?;
        row.map(|(text, compressed)| {
            document_text(text, compressed).map_err(|detail| HistoryError::Corrupt {
                path: path.clone(),
                id,
                detail,
            })
        })
        .transpose()
    }

    /// The run with this id, document included, or `None` if there is no such run.
    pub fn get(&self, id: i64) -> Result<Option<StoredRun>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.get(id),
        };
        let path = &self.path;
        let row = conn
            .query_row(
                "SELECT policy_id, seq, started_at, finished_at, verdict, document, prev_hash, hash,
                        document_zstd
                 FROM runs WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        (
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                        ),
                        row.get::<_, String>(5)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, Option<Vec<u8>>>(8)?,
                    ))
                },
            )
            .optional()
            .map_err(sql_err(path, "cannot read the run"))?;
        let Some((
            (policy_id, seq, started_at, finished_at, verdict),
            text,
            prev_hash,
            hash,
            compressed,
        )) = row
        else {
            return Ok(None);
        };
        let document = document_text(text, compressed).map_err(|detail| HistoryError::Corrupt {
            path: path.clone(),
            id,
            detail,
        })?;
        let document = serde_json::from_str(&document).map_err(|e| HistoryError::Corrupt {
            path: path.clone(),
            id,
            detail: format!("document is not valid JSON: {e}"),
        })?;
        Ok(Some(StoredRun {
            id,
            policy_id,
            seq,
            started_at: self.time_column(id, &started_at)?,
            finished_at: self.time_column(id, &finished_at)?,
            verdict: self.verdict_column(id, &verdict)?,
            prev_hash,
            hash,
            document,
        }))
    }

    /// Checks the hash chain of every policy (or only `policy_id`) and reports, per policy, the
    /// first break: a row whose hash does not match its columns (edited), a seq gap or a
    /// `prev_hash` that does not link to the previous run (deleted, replaced or reordered runs),
    /// or a chain head that disagrees with the last run (the newest runs deleted or replaced).
    ///
    /// Limit: this proves the file is *self-consistent*, not that it is *original*. Someone with
    /// write access can drop the triggers and rewrite every row, hash and chain head
    /// consistently. Keep the run hashes printed in reports and on stdout elsewhere; comparing
    /// them (or [`PolicyVerification::head_hash`]) with this file is what catches that.
    ///
    /// A `policy_id` with no runs yields an entry with `runs_checked == 0`, so a misspelt policy
    /// is visible rather than silently "intact".
    pub fn verify(&self, policy_id: Option<&str>) -> Result<VerifyReport, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => return pg.verify(policy_id),
        };
        let path = &self.path;
        // One read transaction: under WAL this is a snapshot, so a concurrent append cannot make
        // the runs and the chain heads look inconsistent.
        let tx = conn
            .unchecked_transaction()
            .map_err(sql_err(path, "cannot start verification"))?;
        let policies: Vec<String> = match policy_id {
            Some(policy) => vec![policy.to_string()],
            None => {
                let mut stmt = tx
                    .prepare("SELECT policy_id FROM runs UNION SELECT policy_id FROM chain_head ORDER BY 1")
                    .map_err(sql_err(path, "cannot list policies"))?;
                let rows = stmt
                    .query_map([], |row| row.get(0))
                    .map_err(sql_err(path, "cannot list policies"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(sql_err(path, "cannot list policies"))?
            }
        };
        let mut report = VerifyReport {
            policies: Vec::with_capacity(policies.len()),
        };
        for policy in policies {
            report.policies.push(self.verify_policy(&tx, policy)?);
        }
        Ok(report)
    }

    fn verify_policy(
        &self,
        conn: &Connection,
        policy_id: String,
    ) -> Result<PolicyVerification, HistoryError> {
        let path = &self.path;
        let mut stmt = conn
            .prepare(
                "SELECT id, seq, started_at, finished_at, verdict, document, prev_hash, hash,
                        document_zstd
                 FROM runs WHERE policy_id = ?1 ORDER BY seq, id",
            )
            .map_err(sql_err(path, "cannot read runs to verify"))?;
        let mut rows = stmt
            .query([&policy_id])
            .map_err(sql_err(path, "cannot read runs to verify"))?;
        let index = IndexCheck::load(conn, path, &policy_id)?;
        let mut walk = ChainWalk::new(policy_id, index);
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot read runs to verify"))?
        {
            let raw = read_raw_row(row).map_err(sql_err(path, "cannot read runs to verify"))?;
            if !walk.step(raw) {
                return Ok(walk.result);
            }
        }
        let head: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, hash FROM chain_head WHERE policy_id = ?1",
                [&walk.result.policy_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql_err(path, "cannot read the chain head"))?;
        Ok(walk.finish(head))
    }

    fn time_column(&self, id: i64, text: &str) -> Result<DateTime<Utc>, HistoryError> {
        parse_timestamp(text).ok_or_else(|| HistoryError::Corrupt {
            path: self.path.clone(),
            id,
            detail: format!("timestamp `{text}` does not parse"),
        })
    }

    fn verdict_column(&self, id: i64, text: &str) -> Result<Verdict, HistoryError> {
        text.parse().map_err(|detail| HistoryError::Corrupt {
            path: self.path.clone(),
            id,
            detail,
        })
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

/// A run in the form both stores write: stored text, compressed document and index digest.
pub(crate) struct Prepared<'a> {
    started_at: &'a str,
    finished_at: &'a str,
    document: &'a str,
    compressed: &'a [u8],
    digest: &'a Result<RunDigest, String>,
}

/// The seq, `prev_hash` and hash of `run` appended after the policy's chain head `head` and
/// last stored run `last` (each `(seq, hash)`), read inside the append transaction.
fn next_link(
    path: &Path,
    run: &NewRun,
    new: &Prepared<'_>,
    head: Option<(i64, String)>,
    last: Option<(i64, String)>,
) -> Result<(i64, String, String), HistoryError> {
    // The two agree unless the store was edited. Chain from the furthest point either has
    // seen, so a deleted last run stays a visible gap instead of being papered over by the
    // next append; and record anyway, because losing today's verdict would not help.
    if head != last {
        tracing::warn!(
            path = %path.display(),
            policy = %run.policy_id,
            ?head,
            last_run = ?last,
            "chain head and runs disagree: the history was edited outside residency; run `residency history verify`"
        );
    }
    // On a tie the head wins: it is what residency itself recorded last.
    let (prev_seq, prev_hash) = match (head, last) {
        (Some(head), Some(last)) if last.0 > head.0 => last,
        (Some(head), _) => head,
        (None, Some(last)) => last,
        (None, None) => (0, GENESIS_HASH.to_string()),
    };
    let seq = prev_seq.checked_add(1).ok_or_else(|| {
        HistoryError::InvalidRun(format!("{} has no seq numbers left", run.policy_id))
    })?;
    let hash = Record {
        policy_id: &run.policy_id,
        seq,
        started_at: new.started_at,
        finished_at: new.finished_at,
        verdict: run.verdict.as_str(),
        prev_hash: &prev_hash,
        document: new.document,
    }
    .hash();
    Ok((seq, prev_hash, hash))
}

/// `run` as recorded with `id`, `seq` and its links.
#[allow(clippy::too_many_arguments)]
fn stored_run(
    path: &Path,
    run: &NewRun,
    id: i64,
    seq: i64,
    prev_hash: String,
    hash: String,
    started_at: &str,
    finished_at: &str,
) -> Result<StoredRun, HistoryError> {
    let stored_time = |text: &str| {
        parse_timestamp(text).ok_or_else(|| HistoryError::Corrupt {
            path: path.to_path_buf(),
            id,
            detail: format!("timestamp `{text}` does not parse"),
        })
    };
    Ok(StoredRun {
        id,
        policy_id: run.policy_id.clone(),
        seq,
        started_at: stored_time(started_at)?,
        finished_at: stored_time(finished_at)?,
        verdict: run.verdict,
        prev_hash,
        hash,
        document: run.document.clone(),
    })
}

/// Walks one policy's runs in seq order during `verify`, for either store.
struct ChainWalk {
    result: PolicyVerification,
    /// (id, seq, hash) of the last run that checked out.
    previous: Option<(i64, i64, String)>,
    index: IndexCheck,
}

impl ChainWalk {
    fn new(policy_id: String, index: IndexCheck) -> ChainWalk {
        ChainWalk {
            result: PolicyVerification {
                policy_id,
                runs_checked: 0,
                head_seq: None,
                head_hash: None,
                broken: None,
            },
            previous: None,
            index,
        }
    }

    /// Checks the next run; false once the chain is broken (the walk is then over).
    fn step(&mut self, raw: Result<RawRow, (i64, i64, String)>) -> bool {
        self.result.runs_checked += 1;
        let raw = match raw {
            Ok(raw) => raw,
            Err((id, seq, detail)) => {
                self.result.broken = Some(ChainProblem::Unreadable { detail }.at(Some(id), seq));
                return false;
            }
        };
        let recomputed = Record {
            policy_id: &self.result.policy_id,
            seq: raw.seq,
            started_at: &raw.started_at,
            finished_at: &raw.finished_at,
            verdict: &raw.verdict,
            prev_hash: &raw.prev_hash,
            document: &raw.document,
        }
        .hash();
        let previous = &self.previous;
        // Order matters: an edited row is the most specific diagnosis, then a missing seq,
        // then a link that points elsewhere (a replaced or reordered run).
        let expected_seq = previous.as_ref().map_or(1, |p| p.1 + 1);
        let expected_prev = previous.as_ref().map_or(GENESIS_HASH, |p| p.2.as_str());
        let problem = if recomputed != raw.hash {
            Some(ChainProblem::HashMismatch)
        } else if raw.seq != expected_seq {
            Some(ChainProblem::SeqGap {
                missing_seq: expected_seq,
            })
        } else if raw.prev_hash != expected_prev {
            Some(ChainProblem::PrevHashMismatch {
                previous_id: previous.as_ref().map(|p| p.0),
            })
        } else {
            self.index
                .check(raw.seq, &raw.document)
                .err()
                .map(|detail| ChainProblem::IndexMismatch { detail })
        };
        if let Some(problem) = problem {
            self.result.broken = Some(problem.at(Some(raw.id), raw.seq));
            return false;
        }
        self.previous = Some((raw.id, raw.seq, raw.hash));
        true
    }

    /// The verdict once every run was checked, given the policy's chain head `(seq, hash)`.
    fn finish(self, head: Option<(i64, String)>) -> PolicyVerification {
        let ChainWalk {
            mut result,
            previous,
            ..
        } = self;
        let last_seq = previous.as_ref().map_or(0, |p| p.1);
        let last_id = previous.as_ref().map(|p| p.0);
        result.broken = match (&head, &previous) {
            (None, None) => None,
            (None, Some(_)) => Some(ChainProblem::HeadMissing.at(last_id, last_seq)),
            (Some((head_seq, _)), _) if *head_seq > last_seq => Some(
                ChainProblem::MissingTail {
                    first_missing: last_seq + 1,
                    last_missing: *head_seq,
                }
                .at(None, last_seq + 1),
            ),
            (Some((head_seq, _)), _) if *head_seq < last_seq => Some(
                ChainProblem::HeadBehind {
                    head_seq: *head_seq,
                }
                .at(last_id, last_seq),
            ),
            (Some((_, head_hash)), Some((_, _, last_hash))) if head_hash != last_hash => {
                Some(ChainProblem::HeadHashMismatch.at(last_id, last_seq))
            }
            _ => None,
        };
        if result.broken.is_none()
            && let Some((_, seq, hash)) = previous
        {
            result.head_seq = Some(seq);
            result.head_hash = Some(hash);
        }
        result
    }
}

/// Level 3 is zstd's default: run documents (repetitive JSON) shrink about tenfold at a few
/// milliseconds per megabyte; higher levels cost far more time for a few percent.
const ZSTD_LEVEL: i32 = 3;

fn compress(path: &Path, document: &str) -> Result<Vec<u8>, HistoryError> {
    zstd::bulk::compress(document.as_bytes(), ZSTD_LEVEL).map_err(|e| {
        HistoryError::InvalidRun(format!(
            "cannot compress the run document for {}: {e}",
            path.display()
        ))
    })
}

/// The canonical document text of a row: the `document` column of runs recorded before schema 4,
/// else `document_zstd` decompressed. Both filled in means the row was edited.
fn document_text(text: String, compressed: Option<Vec<u8>>) -> Result<String, String> {
    let Some(bytes) = compressed else {
        return Ok(text);
    };
    if !text.is_empty() {
        return Err("both document columns are filled in".into());
    }
    let raw = zstd::stream::decode_all(bytes.as_slice())
        .map_err(|e| format!("document_zstd does not decompress: {e}"))?;
    String::from_utf8(raw).map_err(|_| "document_zstd is not UTF-8 text".into())
}

/// Writes run `id`'s index rows: its digest, and the endpoints whose verdict differs from the
/// policy's previous run (`seq` order), including those dropped since (verdict NULL).
fn index_run(
    conn: &Connection,
    path: &Path,
    policy_id: &str,
    id: i64,
    seq: i64,
    digest: &Result<RunDigest, String>,
) -> Result<(), HistoryError> {
    let (countries, unlocated, error) = digest_columns(digest);
    conn.execute(
        "INSERT INTO run_digests (run_id, policy_id, seq, countries, unlocated, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, policy_id, seq, countries, unlocated, error],
    )
    .map_err(sql_err(path, "cannot index the run"))?;
    // An unreadable document changes nothing: its endpoints are unknown, not gone.
    let Ok(digest) = digest else {
        return Ok(());
    };
    let before = endpoint_state(conn, path, policy_id, seq)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO endpoint_changes (policy_id, host, seq, verdict) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_err(path, "cannot index the run"))?;
    for (host, verdict) in changed_endpoints(&before, digest) {
        insert
            .execute(params![policy_id, host, seq, verdict])
            .map_err(sql_err(path, "cannot index the run"))?;
    }
    Ok(())
}

/// The `(countries, unlocated, error)` columns of a run's `run_digests` row.
fn digest_columns(digest: &Result<RunDigest, String>) -> (String, u32, Option<&str>) {
    match digest {
        Ok(d) => (
            serde_json::to_string(&d.countries).unwrap_or_else(|_| "{}".into()),
            d.unlocated,
            None,
        ),
        Err(e) => ("{}".to_string(), 0, Some(e.as_str())),
    }
}

/// The `endpoint_changes` rows `(host, verdict)` of a run whose endpoints were `before` in the
/// policy's previous runs: endpoints whose verdict differs, and dropped ones (verdict `None`).
fn changed_endpoints<'a>(
    before: &'a BTreeMap<String, Verdict>,
    digest: &'a RunDigest,
) -> Vec<(&'a str, Option<&'static str>)> {
    let mut out: Vec<(&str, Option<&'static str>)> = digest
        .endpoints
        .iter()
        .filter(|(host, verdict)| before.get(*host) != Some(*verdict))
        .map(|(host, verdict)| (host.as_str(), Some(verdict.as_str())))
        .collect();
    out.extend(
        before
            .keys()
            .filter(|h| !digest.endpoints.contains_key(*h))
            .map(|h| (h.as_str(), None)),
    );
    out
}

/// Each endpoint's verdict as of the policy's runs before `seq`, from the change log.
fn endpoint_state(
    conn: &Connection,
    path: &Path,
    policy_id: &str,
    seq: i64,
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

/// Replays a policy's index beside its runs during `verify`.
struct IndexCheck {
    digests: BTreeMap<i64, (String, i64, Option<String>)>,
    changes: BTreeMap<i64, Vec<(String, Option<String>)>>,
    state: BTreeMap<String, String>,
}

impl IndexCheck {
    fn load(conn: &Connection, path: &Path, policy_id: &str) -> Result<IndexCheck, HistoryError> {
        let e = || sql_err(path, "cannot read the run index to verify");
        let mut digests = BTreeMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT seq, countries, unlocated, error FROM run_digests WHERE policy_id = ?1",
            )
            .map_err(e())?;
        let mut rows = stmt.query([policy_id]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            digests.insert(
                row.get::<_, i64>(0).map_err(e())?,
                (
                    row.get(1).map_err(e())?,
                    row.get(2).map_err(e())?,
                    row.get(3).map_err(e())?,
                ),
            );
        }
        let mut changes: BTreeMap<i64, Vec<(String, Option<String>)>> = BTreeMap::new();
        let mut stmt = conn
            .prepare("SELECT seq, host, verdict FROM endpoint_changes WHERE policy_id = ?1")
            .map_err(e())?;
        let mut rows = stmt.query([policy_id]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            changes
                .entry(row.get(0).map_err(e())?)
                .or_default()
                .push((row.get(1).map_err(e())?, row.get(2).map_err(e())?));
        }
        Ok(IndexCheck::new(digests, changes))
    }

    fn new(
        digests: BTreeMap<i64, (String, i64, Option<String>)>,
        changes: BTreeMap<i64, Vec<(String, Option<String>)>>,
    ) -> IndexCheck {
        IndexCheck {
            digests,
            changes,
            state: BTreeMap::new(),
        }
    }

    /// Checks the run at `seq` (runs come in seq order) against its canonical document.
    fn check(&mut self, seq: i64, document: &str) -> Result<(), String> {
        for (host, verdict) in self.changes.remove(&seq).unwrap_or_default() {
            match verdict {
                Some(v) => self.state.insert(host, v),
                None => self.state.remove(&host),
            };
        }
        let Some((countries, unlocated, error)) = self.digests.get(&seq) else {
            return Err("the run has no index row".into());
        };
        match RunDigest::of_text(document) {
            Err(_) => match error {
                Some(_) => Ok(()),
                None => Err("the index has a digest of an unreadable document".into()),
            },
            Ok(d) => {
                let stored: BTreeMap<String, u32> =
                    serde_json::from_str(countries).map_err(|_| "countries are not JSON")?;
                if stored != d.countries || *unlocated != i64::from(d.unlocated) || error.is_some()
                {
                    return Err("address countries differ".into());
                }
                let expected: BTreeMap<&str, &str> = d
                    .endpoints
                    .iter()
                    .map(|(h, v)| (h.as_str(), v.as_str()))
                    .collect();
                let indexed: BTreeMap<&str, &str> = self
                    .state
                    .iter()
                    .map(|(h, v)| (h.as_str(), v.as_str()))
                    .collect();
                if expected != indexed {
                    return Err("endpoint verdicts differ".into());
                }
                Ok(())
            }
        }
    }
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

// The audit tables kept beside the chain (`events`, `failed_runs`, `alert_deliveries`), read
// back for `residency history events|failures|alerts` and for re-sending alerts. They are
// written by `crate::run::lock`, `History::record_failure` and `History::record_alert`.

/// Which rows of an audit table to read: the same half-open window as for runs
/// (`since <= time < until`), over each table's own time column.
pub type AuditFilter = RunFilter;

/// What an `events` row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run took over the lock of a holder considered gone (see `crate::run::lock`).
    LockTakeover,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LockTakeover => "lock_takeover",
        }
    }
}

/// One row of `events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub at: DateTime<Utc>,
    pub policy_id: String,
    pub kind: EventKind,
    /// The process the event happened to (for a takeover: the new holder).
    pub holder: String,
    pub detail: String,
}

/// One row of `failed_runs`: a run that ended without a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRun {
    pub id: i64,
    pub policy_id: String,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub failed_at: DateTime<Utc>,
    pub holder: String,
    pub reason: String,
}

/// One row of `alert_deliveries`: one attempt (with its retries) to deliver a run's alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertDelivery {
    pub id: i64,
    pub run_id: i64,
    pub policy_id: String,
    pub event: crate::policy::alerts::AlertEvent,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub at: DateTime<Utc>,
    pub delivered: bool,
    /// The try it was delivered on, or why it was given up.
    pub detail: String,
}

/// ` AND {policy} = ?n AND {time} >= ?n AND {time} < ?n` for `filter`, and its arguments.
fn window_where(
    filter: &RunFilter,
    policy: &str,
    time: &str,
) -> Result<(String, Vec<String>), HistoryError> {
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(id) = &filter.policy_id {
        args.push(id.clone());
        let _ = write!(sql, " AND {policy} = ?{}", args.len());
    }
    if let Some(since) = filter.since {
        args.push(crate::time::stored(since).map_err(HistoryError::InvalidFilter)?);
        let _ = write!(sql, " AND {time} >= ?{}", args.len());
    }
    if let Some(until) = filter.until {
        args.push(crate::time::stored(until).map_err(HistoryError::InvalidFilter)?);
        let _ = write!(sql, " AND {time} < ?{}", args.len());
    }
    Ok((sql, args))
}

/// A row of either store, read by column index: lets each audit table's columns be listed once
/// for both stores.
trait Cells {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

impl Cells for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
}

impl Cells for ::postgres::Row {
    type Error = ::postgres::Error;
    fn int(&self, i: usize) -> Result<i64, ::postgres::Error> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, ::postgres::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, ::postgres::Error> {
        self.try_get(i)
    }
}

type SixCells = (i64, String, String, String, String, String);

/// An id then five text columns: the shape of `events` and `failed_runs` rows.
fn id_and_texts<R: Cells>(row: &R) -> Result<SixCells, R::Error> {
    Ok((
        row.int(0)?,
        row.text(1)?,
        row.text(2)?,
        row.text(3)?,
        row.text(4)?,
        row.text(5)?,
    ))
}

type DeliveryCells = (i64, i64, String, String, String, bool, String);

fn delivery_cells<R: Cells>(row: &R) -> Result<DeliveryCells, R::Error> {
    Ok((
        row.int(0)?,
        row.int(1)?,
        row.text(2)?,
        row.text(3)?,
        row.text(4)?,
        row.flag(5)?,
        row.text(6)?,
    ))
}

impl History {
    /// `events` rows matching `filter` (by `at`), oldest first.
    pub fn events(&self, filter: &AuditFilter) -> Result<Vec<Event>, HistoryError> {
        let (clause, args) = window_where(filter, "policy_id", "at")?;
        let sql = format!(
            "SELECT id, at, policy_id, kind, holder, detail FROM events WHERE 1 = 1{clause}
             ORDER BY at, id"
        );
        let rows = self.audit_rows(
            &sql,
            &args,
            "cannot read the events table",
            |row| id_and_texts(row),
            id_and_texts,
        )?;
        rows.into_iter()
            .map(|(id, at, policy_id, kind, holder, detail)| {
                let kind = match kind.as_str() {
                    "lock_takeover" => EventKind::LockTakeover,
                    other => {
                        return Err(self.unreadable(
                            "events",
                            id,
                            format!("unknown kind `{other}`"),
                        ));
                    }
                };
                Ok(Event {
                    id,
                    at: self.audit_time("events", id, &at)?,
                    policy_id,
                    kind,
                    holder,
                    detail,
                })
            })
            .collect()
    }

    /// `failed_runs` rows matching `filter` (by `started_at`, like runs), oldest first.
    pub fn failed_runs(&self, filter: &AuditFilter) -> Result<Vec<FailedRun>, HistoryError> {
        let (clause, args) = window_where(filter, "policy_id", "started_at")?;
        let sql = format!(
            "SELECT id, policy_id, started_at, failed_at, holder, reason FROM failed_runs
             WHERE 1 = 1{clause} ORDER BY started_at, id"
        );
        let rows = self.audit_rows(
            &sql,
            &args,
            "cannot read the failed_runs table",
            |row| id_and_texts(row),
            id_and_texts,
        )?;
        rows.into_iter()
            .map(|(id, policy_id, started_at, failed_at, holder, reason)| {
                Ok(FailedRun {
                    id,
                    policy_id,
                    started_at: self.audit_time("failed_runs", id, &started_at)?,
                    failed_at: self.audit_time("failed_runs", id, &failed_at)?,
                    holder,
                    reason,
                })
            })
            .collect()
    }

    /// `alert_deliveries` rows matching `filter` (by `at`), oldest first.
    pub fn alert_deliveries(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AlertDelivery>, HistoryError> {
        let (clause, args) = window_where(filter, "policy_id", "at")?;
        let sql = format!(
            "SELECT id, run_id, policy_id, event, at, delivered, detail FROM alert_deliveries
             WHERE 1 = 1{clause} ORDER BY at, id"
        );
        self.deliveries(&sql, &args)
    }

    /// For every run whose latest delivery row says not delivered (of `policy_id` only, if
    /// given), that row, oldest run first: the alerts still owed to a webhook.
    pub fn undelivered_alerts(
        &self,
        policy_id: Option<&str>,
    ) -> Result<Vec<AlertDelivery>, HistoryError> {
        let filter = AuditFilter {
            policy_id: policy_id.map(str::to_string),
            ..AuditFilter::default()
        };
        let (clause, args) = window_where(&filter, "policy_id", "at")?;
        // Append-only: a later row for the same run supersedes the earlier ones, and ids grow.
        let sql = format!(
            "SELECT id, run_id, policy_id, event, at, delivered, detail FROM alert_deliveries d
             WHERE id = (SELECT max(id) FROM alert_deliveries WHERE run_id = d.run_id)
               AND NOT delivered{clause}
             ORDER BY run_id"
        );
        self.deliveries(&sql, &args)
    }

    fn deliveries(&self, sql: &str, args: &[String]) -> Result<Vec<AlertDelivery>, HistoryError> {
        let rows = self.audit_rows(
            sql,
            args,
            "cannot read the alert_deliveries table",
            |row| delivery_cells(row),
            delivery_cells,
        )?;
        rows.into_iter()
            .map(|(id, run_id, policy_id, event, at, delivered, detail)| {
                let event = crate::policy::alerts::AlertEvent::parse(&event).ok_or_else(|| {
                    self.unreadable("alert_deliveries", id, format!("unknown event `{event}`"))
                })?;
                Ok(AlertDelivery {
                    id,
                    run_id,
                    policy_id,
                    event,
                    at: self.audit_time("alert_deliveries", id, &at)?,
                    delivered,
                    detail,
                })
            })
            .collect()
    }

    fn audit_rows<T>(
        &self,
        sql: &str,
        args: &[String],
        context: &'static str,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        read_pg: impl FnMut(&::postgres::Row) -> Result<T, ::postgres::Error>,
    ) -> Result<Vec<T>, HistoryError> {
        let conn = match &self.store {
            Store::Sqlite(conn) => conn,
            Store::Postgres(pg) => {
                return pg.rows(&postgres::placeholders(sql), args, context, read_pg);
            }
        };
        let mut stmt = conn.prepare(sql).map_err(sql_err(&self.path, context))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), read)
            .map_err(sql_err(&self.path, context))?;
        rows.collect::<Result<Vec<T>, _>>()
            .map_err(sql_err(&self.path, context))
    }

    fn audit_time(
        &self,
        table: &'static str,
        id: i64,
        text: &str,
    ) -> Result<DateTime<Utc>, HistoryError> {
        parse_timestamp(text)
            .ok_or_else(|| self.unreadable(table, id, format!("timestamp `{text}` does not parse")))
    }

    fn unreadable(&self, table: &'static str, id: i64, detail: String) -> HistoryError {
        HistoryError::UnreadableRow {
            path: self.path.clone(),
            table,
            id,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_ignores_key_insertion_order() {
        let mut a = serde_json::Map::new();
        a.insert("zeta".into(), json!(1));
        a.insert(
            "alpha".into(),
            json!({"y": [3, {"b": true, "a": null}], "x": "é\n"}),
        );
        let mut b = serde_json::Map::new();
        b.insert(
            "alpha".into(),
            json!({"x": "é\n", "y": [3, {"a": null, "b": true}]}),
        );
        b.insert("zeta".into(), json!(1));
        let (a, b) = (
            canonical_json(&Value::Object(a)),
            canonical_json(&Value::Object(b)),
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            r#"{"alpha":{"x":"é\n","y":[3,{"a":null,"b":true}]},"zeta":1}"#
        );
    }

    #[test]
    fn canonical_json_keeps_numbers_and_array_order() {
        let v = json!({"n": [1.5, -0, 10, 1e300, 18446744073709551615u64], "s": "\"q\""});
        assert_eq!(
            canonical_json(&v),
            r#"{"n":[1.5,0,10,1e+300,18446744073709551615],"s":"\"q\""}"#
        );
    }

    #[test]
    fn record_text_is_the_canonical_json_of_the_record() {
        let document = json!({"b": [1, 2], "a": {"z": "ü", "y": null}});
        let doc_text = canonical_json(&document);
        let record = Record {
            policy_id: "eu-\"only\"",
            seq: 3,
            started_at: "2025-01-02T03:04:05.000006Z",
            finished_at: "2025-01-02T03:04:06.000000Z",
            verdict: "violation",
            prev_hash: GENESIS_HASH,
            document: &doc_text,
        };
        let expected = canonical_json(&json!({
            "verdict": "violation",
            "started_at": "2025-01-02T03:04:05.000006Z",
            "seq": 3,
            "prev_hash": GENESIS_HASH,
            "policy_id": "eu-\"only\"",
            "finished_at": "2025-01-02T03:04:06.000000Z",
            "document": document,
        }));
        assert_eq!(record.canonical_text(), expected);
        assert_eq!(record.hash().len(), 64);
    }

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

    fn sqlite(history: &History) -> Result<&Connection, HistoryError> {
        match &history.store {
            Store::Sqlite(conn) => Ok(conn),
            Store::Postgres(_) => Err(HistoryError::InvalidRun("not an SQLite history".into())),
        }
    }

    fn run(policy: &str, verdict: Verdict) -> NewRun {
        let at = DateTime::from_timestamp(1_740_000_000, 0).unwrap_or_default();
        NewRun {
            policy_id: policy.into(),
            started_at: at,
            finished_at: at,
            verdict,
            document: json!({"k": "v"}),
        }
    }

    #[test]
    fn append_is_all_or_nothing_when_its_last_statement_fails() -> Result<(), HistoryError> {
        let dir = tempfile::tempdir().map_err(|e| HistoryError::InvalidRun(e.to_string()))?;
        let mut history = History::open(&dir.path().join("h.sqlite"))?;
        let first = history.append(&run("p", Verdict::Compliant))?;
        // Make the chain-head update, the step after the run insert, fail on this connection
        // only: the insert before it must be rolled back with it.
        sqlite(&history)?
            .execute_batch(
                "CREATE TEMP TRIGGER fail_head BEFORE UPDATE ON main.chain_head
                 BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
            )
            .map_err(sql_err(&history.path, "test setup"))?;
        let failed = history.append(&run("p", Verdict::Violation));
        assert!(
            matches!(&failed, Err(HistoryError::Sqlite { context, .. }) if context.contains("chain head"))
        );
        assert_eq!(
            history.list(&RunFilter::default())?.len(),
            1,
            "no half-recorded run"
        );
        assert!(history.verify(None)?.is_intact());

        sqlite(&history)?
            .execute_batch("DROP TRIGGER temp.fail_head;")
            .map_err(sql_err(&history.path, "test cleanup"))?;
        let second = history.append(&run("p", Verdict::Violation))?;
        assert_eq!(
            (second.seq, second.prev_hash.as_str()),
            (2, first.hash.as_str())
        );
        assert!(history.verify(None)?.is_intact());
        Ok(())
    }

    #[test]
    fn verify_reports_a_retyped_column_instead_of_failing() -> Result<(), HistoryError> {
        let dir = tempfile::tempdir().map_err(|e| HistoryError::InvalidRun(e.to_string()))?;
        let mut history = History::open(&dir.path().join("h.sqlite"))?;
        let stored = history.append(&run("p", Verdict::Compliant))?;
        sqlite(&history)?
            .execute_batch(
                "DROP TRIGGER runs_append_only_update;
                 UPDATE runs SET document = CAST(document AS BLOB);",
            )
            .map_err(sql_err(&history.path, "test tampering"))?;
        let report = history.verify(None)?;
        let broken = report.policies[0].broken.clone();
        assert_eq!(
            broken.as_ref().map(|b| (b.id, b.seq)),
            Some((Some(stored.id), 1))
        );
        assert!(matches!(
            broken.map(|b| b.problem),
            Some(ChainProblem::Unreadable { .. })
        ));
        Ok(())
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
