//! One run of a policy at a time, across processes and hosts sharing a history file.
//!
//! This module owns the `locks` and `events` tables of the history database. A lock is a row
//! `(policy_id, holder, acquired_at, heartbeat_at)` where `holder` is `hostname:pid`. It lives in
//! the database rather than in a lock file because the database is the one thing every `check`
//! and `watch` writing the same history already shares (including over a network file system,
//! where advisory file locks are unreliable).
//!
//! Taking a lock is one `BEGIN IMMEDIATE` transaction: read the row, decide, write, commit, so
//! two processes can never both believe they hold it. A held lock is taken over when its holder
//! is gone: same host and its pid no longer alive (checked through `/proc/PID`), or, for any
//! host, its heartbeat is older than the stale limit (a holder on another machine cannot be
//! checked directly). Every takeover is recorded in `events` (kind `lock_takeover`) in the same
//! transaction, naming the previous holder and why it was considered gone.
//!
//! Limits: a pid reused by an unrelated process on the same host makes a dead holder look
//! alive until its heartbeat goes stale, so takeover then waits for the stale limit.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::history::{Backend, History, HistoryError, pg_err, sql_err};

/// How often a run in progress refreshes its lock's heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// A lock whose heartbeat is older than this is taken over even if its holder cannot be
/// checked (another host). Many heartbeats long, so a briefly stalled holder keeps its lock.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// How often a holder refreshes its heartbeat so that a lock taken with `stale_after` never
/// looks stale while its holder runs: every [`HEARTBEAT_EVERY`], or more often for a short limit
/// (four heartbeats per limit, so one or two late ones are not a takeover).
pub fn heartbeat_every(stale_after: Duration) -> Duration {
    HEARTBEAT_EVERY
        .min(stale_after / 4)
        .max(Duration::from_millis(10))
}

/// Who holds (or wants) a lock: this host and process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
}

impl Holder {
    /// This process.
    pub fn current() -> Holder {
        Holder {
            host: hostname(),
            pid: std::process::id(),
        }
    }

    fn parse(text: &str) -> Option<Holder> {
        let (host, pid) = text.rsplit_once(':')?;
        Some(Holder {
            host: host.to_string(),
            pid: pid.parse().ok()?,
        })
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.pid)
    }
}

fn hostname() -> String {
    // Read from the kernel rather than $HOSTNAME, which shells set but do not always export.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process of this host is alive. A zombie (killed, not yet reaped) is not.
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name, which is in parentheses and
        // may itself contain spaces or parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// The result of [`acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lock was free (or already ours).
    Free,
    /// The lock was held by a holder considered gone, and is now ours; recorded in `events`.
    TookOver { previous: String, reason: String },
    /// A live holder has it: skip this run.
    Held {
        holder: String,
        heartbeat_at: String,
    },
}

/// Everything that stops taking or keeping a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error(
        "the lock of policy {policy} in {} has a heartbeat `{heartbeat}` that is not a time: \
         the file was edited; delete that row of the `locks` table to release it",
        path.display()
    )]
    Unreadable {
        path: std::path::PathBuf,
        policy: String,
        heartbeat: String,
    },
}

fn time_text(t: DateTime<Utc>) -> Result<String, LockError> {
    crate::time::stored(t).map_err(|e| LockError::History(HistoryError::InvalidRun(e)))
}

/// Takes the lock of `policy_id` for `me`, taking over a gone holder's (see the module doc).
pub fn acquire(
    history: &mut History,
    policy_id: &str,
    me: &Holder,
    stale_after: Duration,
) -> Result<Acquired, LockError> {
    let path = history.path().to_path_buf();
    let now = Utc::now();
    let now_text = time_text(now)?;
    let mine = me.to_string();
    let decide =
        |row: Option<(String, String)>| decide(row, &path, policy_id, me, now, stale_after);
    let takeover = |outcome: &Acquired| match outcome {
        Acquired::TookOver { previous, reason } => {
            Some(format!("took over the lock from {previous}: {reason}"))
        }
        _ => None,
    };
    let pg = match history.connection() {
        Backend::Sqlite(conn) => conn,
        Backend::Postgres(pg) => {
            return pg
                .with(|client| {
                    let e = |context| pg_err(&path, context);
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
                        .query_opt(
                            "SELECT holder, heartbeat_at FROM locks WHERE policy_id = $1",
                            &[&policy_id],
                        )
                        .map_err(e("cannot read the run lock"))?
                        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
                    let outcome = match decide(row) {
                        Ok(outcome) => outcome,
                        Err(err) => return Ok(Err(err)),
                    };
                    if matches!(outcome, Acquired::Held { .. }) {
                        return Ok(Ok(outcome));
                    }
                    tx.execute(
                        "INSERT INTO locks (policy_id, holder, acquired_at, heartbeat_at)
                         VALUES ($1, $2, $3, $3)
                         ON CONFLICT (policy_id) DO UPDATE SET holder = excluded.holder,
                           acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
                        &[&policy_id, &mine, &now_text],
                    )
                    .map_err(e("cannot take the run lock"))?;
                    if let Some(detail) = takeover(&outcome) {
                        tx.execute(
                            "INSERT INTO events (at, policy_id, kind, holder, detail)
                             VALUES ($1, $2, 'lock_takeover', $3, $4)",
                            &[&now_text, &policy_id, &mine, &detail],
                        )
                        .map_err(e("cannot record the lock takeover"))?;
                    }
                    tx.commit().map_err(e("cannot commit the run lock"))?;
                    Ok(Ok(outcome))
                })?;
        }
    };
    let tx = pg
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err(&path, "cannot start taking the run lock"))?;
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT holder, heartbeat_at FROM locks WHERE policy_id = ?1",
            [policy_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql_err(&path, "cannot read the run lock"))?;
    let outcome = decide(row)?;
    if matches!(outcome, Acquired::Held { .. }) {
        return Ok(outcome);
    }
    tx.execute(
        "INSERT INTO locks (policy_id, holder, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (policy_id) DO UPDATE SET holder = excluded.holder,
           acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
        params![policy_id, mine, now_text],
    )
    .map_err(sql_err(&path, "cannot take the run lock"))?;
    if let Some(detail) = takeover(&outcome) {
        tx.execute(
            "INSERT INTO events (at, policy_id, kind, holder, detail)
             VALUES (?1, ?2, 'lock_takeover', ?3, ?4)",
            params![now_text, policy_id, mine, detail],
        )
        .map_err(sql_err(&path, "cannot record the lock takeover"))?;
    }
    tx.commit()
        .map_err(sql_err(&path, "cannot commit the run lock"))?;
    Ok(outcome)
}

/// Whether `me` may take the lock whose row (`holder`, `heartbeat_at`) is `row`.
fn decide(
    row: Option<(String, String)>,
    path: &Path,
    policy_id: &str,
    me: &Holder,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Result<Acquired, LockError> {
    let mine = me.to_string();
    let outcome = match row {
        None => Acquired::Free,
        Some((holder, _)) if holder == mine => Acquired::Free,
        Some((holder, heartbeat_at)) => {
            let beat = DateTime::parse_from_rfc3339(&heartbeat_at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| LockError::Unreadable {
                    path: path.to_path_buf(),
                    policy: policy_id.to_string(),
                    heartbeat: heartbeat_at.clone(),
                })?;
            let age = (now - beat).to_std().unwrap_or_default();
            let dead = Holder::parse(&holder).filter(|h| h.host == me.host && !pid_alive(h.pid));
            if let Some(dead) = dead {
                Acquired::TookOver {
                    previous: holder,
                    reason: format!("process {} is no longer running", dead.pid),
                }
            } else if age > stale_after {
                Acquired::TookOver {
                    previous: holder,
                    reason: format!(
                        "heartbeat {heartbeat_at} is older than {}s",
                        stale_after.as_secs()
                    ),
                }
            } else {
                Acquired::Held {
                    holder,
                    heartbeat_at,
                }
            }
        }
    };
    Ok(outcome)
}

pub fn heartbeat(history: &mut History, policy_id: &str, me: &Holder) -> Result<bool, LockError> {
    let path = history.path().to_path_buf();
    let now = time_text(Utc::now())?;
    let conn = match history.connection() {
        Backend::Sqlite(conn) => conn,
        Backend::Postgres(pg) => {
            return Ok(pg.with(|client| {
                client
                    .execute(
                        "UPDATE locks SET heartbeat_at = $1 WHERE policy_id = $2 AND holder = $3",
                        &[&now, &policy_id, &me.to_string()],
                    )
                    .map_err(pg_err(&path, "cannot refresh the run lock"))
            })? == 1);
        }
    };
    let changed = conn
        .execute(
            "UPDATE locks SET heartbeat_at = ?1 WHERE policy_id = ?2 AND holder = ?3",
            params![now, policy_id, me.to_string()],
        )
        .map_err(sql_err(&path, "cannot refresh the run lock"))?;
    Ok(changed == 1)
}

/// Releases the lock if it is still ours; never someone else's that took it over.
pub fn release(history: &mut History, policy_id: &str, me: &Holder) -> Result<(), LockError> {
    let path = history.path().to_path_buf();
    let conn = match history.connection() {
        Backend::Sqlite(conn) => conn,
        Backend::Postgres(pg) => {
            pg.with(|client| {
                client
                    .execute(
                        "DELETE FROM locks WHERE policy_id = $1 AND holder = $2",
                        &[&policy_id, &me.to_string()],
                    )
                    .map_err(pg_err(&path, "cannot release the run lock"))
            })?;
            return Ok(());
        }
    };
    conn.execute(
        "DELETE FROM locks WHERE policy_id = ?1 AND holder = ?2",
        params![policy_id, me.to_string()],
    )
    .map_err(sql_err(&path, "cannot release the run lock"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_and_this_process_is_alive() {
        let me = Holder::current();
        assert_eq!(Holder::parse(&me.to_string()), Some(me.clone()));
        assert!(pid_alive(me.pid));
        assert_eq!(Holder::parse("no-pid"), None);
    }

    #[test]
    fn a_second_holder_is_refused_and_a_dead_one_taken_over() -> Result<(), LockError> {
        let dir = tempfile::tempdir().map_err(|e| HistoryError::InvalidRun(e.to_string()))?;
        let mut history = History::open(&dir.path().join("h.sqlite"))?;
        let me = Holder::current();
        let live_other = Holder {
            host: me.host.clone(),
            pid: 1,
        };
        assert_eq!(
            acquire(&mut history, "p", &live_other, STALE_AFTER)?,
            Acquired::Free
        );
        assert!(matches!(
            acquire(&mut history, "p", &me, STALE_AFTER)?,
            Acquired::Held { .. }
        ));
        // Stale by heartbeat: a zero limit makes any heartbeat too old.
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            acquire(&mut history, "p", &me, Duration::ZERO)?,
            Acquired::TookOver { .. }
        ));
        assert!(heartbeat(&mut history, "p", &me)?);
        assert!(!heartbeat(&mut history, "p", &live_other)?);
        release(&mut history, "p", &me)?;
        assert_eq!(
            acquire(&mut history, "p", &me, STALE_AFTER)?,
            Acquired::Free
        );
        Ok(())
    }
}
