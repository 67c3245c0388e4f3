//! What a database must do to hold a residency history: the primitives [`Store`] that the SQLite
//! file (`sqlite.rs`) and a shared PostgreSQL database (`postgres.rs`) each implement, with their
//! own schema and migrations.
//!
//! Everything that decides what is recorded lives above this trait, once: validation and
//! timestamp text in [`super::History`], the hash, the links and the verification walk in
//! [`super::chain`]. A store only moves rows: it reads the chain head and appends inside one
//! transaction that serialises writers of a policy, and it reads every row exactly as stored so
//! that verification sees edits instead of tripping over them.

use std::collections::BTreeMap;

use super::chain::{Chained, IndexRows, RawRow};
use super::digest::RunDigest;
use super::{HistoryError, Link, NewRun, RunFilter, RunId, Seq};
use crate::policy::PolicyId;

/// A run in the form both stores write: stored text, compressed document and index digest.
pub(crate) struct Prepared<'a> {
    pub started_at: &'a str,
    pub finished_at: &'a str,
    /// Canonical JSON text of the document: what the hash covers.
    pub document: &'a str,
    /// The same text, zstd-compressed: what is stored.
    pub compressed: &'a [u8],
    pub digest: &'a Result<RunDigest, String>,
}

/// A `runs` row without its document, every column as stored (parsed above the store, so both
/// stores report an edited column the same way).
pub(crate) struct RunRow {
    pub id: RunId,
    pub policy_id: String,
    pub seq: Seq,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A run and its `run_digests` row, as stored.
pub(crate) struct IndexedRow {
    pub run: RunRow,
    pub countries: String,
    pub unlocated: i64,
    pub error: Option<String>,
}

/// An `endpoint_changes` row, as stored.
pub(crate) struct ChangeRow {
    pub seq: Seq,
    pub host: String,
    pub verdict: Option<String>,
}

/// One cell of an audit table row (see [`Store::select`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Flag(bool),
}

/// The `locks` row of a policy: who holds it and when they last said so.
pub(crate) struct LockRow {
    pub holder: String,
    pub heartbeat_at: String,
}

/// Taking a lock: the new holder, the time (acquired and heartbeat), and the `events` detail to
/// record when it was taken over from somebody else.
pub(crate) struct LockTake {
    pub holder: String,
    pub at: String,
    pub takeover: Option<String>,
}

/// What [`Store::read_chains`] hands the verification walk, policy by policy, from one snapshot.
pub(crate) enum ChainPart {
    /// A policy begins, with its index rows.
    Policy {
        policy_id: PolicyId,
        index: IndexRows,
    },
    /// Its next run in seq order; `Err((id, seq, why))` when a column is not what was written.
    Run(Result<RawRow, (RunId, Seq, String)>),
    /// Its chain head, after its last run.
    Head(Option<Link>),
}

/// The primitives of a history database. Every method names the store in its errors.
pub(crate) trait Store: Send {
    /// Appends `run` at the end of its policy's chain in one transaction that queues concurrent
    /// writers of the policy: reads the chain head and the last run, asks
    /// [`super::chain::next_link`] for the link, inserts the run and its index rows, moves the
    /// head. Returns the new row id and the link.
    fn append(
        &mut self,
        run: &NewRun,
        new: &Prepared<'_>,
    ) -> Result<(RunId, Chained), HistoryError>;

    /// Inserts a `failed_runs` row; returns its id.
    fn insert_failure(
        &mut self,
        policy_id: &PolicyId,
        started_at: &str,
        failed_at: &str,
        holder: &str,
        reason: &str,
    ) -> Result<i64, HistoryError>;

    /// Inserts an `alert_deliveries` row; returns its id.
    fn insert_alert(
        &mut self,
        run_id: RunId,
        policy_id: &PolicyId,
        event: &str,
        at: &str,
        delivered: bool,
        detail: &str,
    ) -> Result<i64, HistoryError>;

    /// Runs matching `filter`, ordered by `started_at`, then id.
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>, HistoryError>;

    /// Runs matching `filter` with their digest rows, in the same order.
    fn indexed(&self, filter: &RunFilter) -> Result<Vec<IndexedRow>, HistoryError>;

    /// The policy's `endpoint_changes` rows up to `until_seq`, by seq then host.
    fn endpoint_changes(
        &self,
        policy_id: &PolicyId,
        until_seq: Seq,
    ) -> Result<Vec<ChangeRow>, HistoryError>;

    /// Run `id` and its canonical document text (decompressed), or `None` without such a run;
    /// `Err(why)` inside when the document columns were edited.
    #[allow(clippy::type_complexity)]
    fn fetch_run(
        &self,
        id: RunId,
    ) -> Result<Option<(RunRow, Result<String, String>)>, HistoryError>;

    /// The rows of an audit-table query (`?n` placeholders, text arguments), cell by cell.
    fn select(
        &self,
        sql: &str,
        args: &[String],
        context: &'static str,
    ) -> Result<Vec<Vec<Cell>>, HistoryError>;

    /// Reads, in one snapshot, every policy's chain (or only `policy_id`'s) for verification:
    /// for each policy a [`ChainPart::Policy`], its runs in seq order, then its head. When
    /// `walk` returns false the rest of that policy is skipped (its chain is already broken).
    /// Policies come sorted by id; a `policy_id` with no rows still gets its three parts.
    ///
    /// `from` starts a policy's runs at that seq (a verified checkpoint); others start at 1.
    fn read_chains(
        &self,
        policy_id: Option<&PolicyId>,
        from: &BTreeMap<PolicyId, Seq>,
        walk: &mut (dyn FnMut(ChainPart) -> bool + Send),
    ) -> Result<(), HistoryError>;

    /// In one transaction that queues other takers of `policy_id`'s run lock: reads its row,
    /// and writes the take `decide` returns (with its takeover event), if any.
    fn take_lock(
        &mut self,
        policy_id: &PolicyId,
        decide: &mut (dyn FnMut(Option<LockRow>) -> Option<LockTake> + Send),
    ) -> Result<(), HistoryError>;

    /// Moves the heartbeat of `holder`'s lock on `policy_id`; false when it is not theirs.
    fn beat_lock(
        &mut self,
        policy_id: &PolicyId,
        holder: &str,
        at: &str,
    ) -> Result<bool, HistoryError>;

    /// Deletes `holder`'s lock on `policy_id`, if it is still theirs.
    fn drop_lock(&mut self, policy_id: &PolicyId, holder: &str) -> Result<(), HistoryError>;
}

// The statements both stores run as they are, in SQLite's `?n` form (the PostgreSQL store
// renumbers them to `$n`); each store's own SQL is beside its code.

/// Runs without documents; narrowed by [`filtered`].
pub(crate) const RUNS_SQL: &str =
    "SELECT id, policy_id, seq, started_at, finished_at, verdict, prev_hash, hash
     FROM runs WHERE 1 = 1";
/// Runs with their digest rows; narrowed by [`filtered`] with table prefix `r.`.
pub(crate) const INDEXED_SQL: &str =
    "SELECT r.id, r.policy_id, r.seq, r.started_at, r.finished_at, r.verdict, r.prev_hash,
            r.hash, d.countries, d.unlocated, d.error
     FROM runs r JOIN run_digests d ON d.run_id = r.id WHERE 1 = 1";
pub(crate) const CHANGES_SQL: &str = "SELECT seq, host, verdict FROM endpoint_changes
     WHERE policy_id = ?1 AND seq <= ?2 ORDER BY seq, host";
/// One run with both document columns.
pub(crate) const RUN_SQL: &str =
    "SELECT id, policy_id, seq, started_at, finished_at, verdict, prev_hash, hash,
            document, document_zstd
     FROM runs WHERE id = ?1";
pub(crate) const POLICIES_SQL: &str =
    "SELECT policy_id FROM runs UNION SELECT policy_id FROM chain_head ORDER BY 1";
/// A policy's runs for verification, every column the hash covers.
pub(crate) const CHAIN_SQL: &str =
    "SELECT id, seq, started_at, finished_at, verdict, document, prev_hash, hash, document_zstd
     FROM runs WHERE policy_id = ?1 AND seq >= ?2 ORDER BY seq, id";
pub(crate) const HEAD_SQL: &str = "SELECT seq, hash FROM chain_head WHERE policy_id = ?1";
pub(crate) const LAST_RUN_SQL: &str =
    "SELECT seq, hash FROM runs WHERE policy_id = ?1 ORDER BY seq DESC LIMIT 1";
pub(crate) const MOVE_HEAD_SQL: &str =
    "INSERT INTO chain_head (policy_id, seq, hash) VALUES (?1, ?2, ?3)
     ON CONFLICT (policy_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";
pub(crate) const DIGESTS_SQL: &str =
    "SELECT seq, countries, unlocated, error FROM run_digests WHERE policy_id = ?1";
pub(crate) const ALL_CHANGES_SQL: &str =
    "SELECT seq, host, verdict FROM endpoint_changes WHERE policy_id = ?1";
pub(crate) const INSERT_DIGEST_SQL: &str =
    "INSERT INTO run_digests (run_id, policy_id, seq, countries, unlocated, error)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const INSERT_CHANGE_SQL: &str =
    "INSERT INTO endpoint_changes (policy_id, host, seq, verdict) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const INSERT_FAILURE_SQL: &str =
    "INSERT INTO failed_runs (policy_id, started_at, failed_at, holder, reason)
     VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const INSERT_ALERT_SQL: &str =
    "INSERT INTO alert_deliveries (run_id, policy_id, event, at, delivered, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const LOCK_SQL: &str = "SELECT holder, heartbeat_at FROM locks WHERE policy_id = ?1";
pub(crate) const TAKE_LOCK_SQL: &str =
    "INSERT INTO locks (policy_id, holder, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?3)
     ON CONFLICT (policy_id) DO UPDATE SET holder = excluded.holder,
       acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at";
pub(crate) const TAKEOVER_SQL: &str = "INSERT INTO events (at, policy_id, kind, holder, detail)
     VALUES (?1, ?2, 'lock_takeover', ?3, ?4)";
pub(crate) const BEAT_LOCK_SQL: &str =
    "UPDATE locks SET heartbeat_at = ?1 WHERE policy_id = ?2 AND holder = ?3";
pub(crate) const DROP_LOCK_SQL: &str = "DELETE FROM locks WHERE policy_id = ?1 AND holder = ?2";

/// `base` (ending in a WHERE clause) narrowed by `filter`, ordered by start time, with its
/// arguments; `table` is the runs table's alias prefix (`r.`) or empty.
pub(crate) fn filtered(
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

/// ` AND {policy} = ?n AND {time} >= ?n AND {time} < ?n` for `filter`, and its arguments.
pub(crate) fn window_where(
    filter: &RunFilter,
    policy: &str,
    time: &str,
) -> Result<(String, Vec<String>), HistoryError> {
    use std::fmt::Write as _;
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(id) = &filter.policy_id {
        args.push(id.to_string());
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
