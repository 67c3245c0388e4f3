//! One run of a policy at a time, across processes and hosts sharing a history file.
//!
//! This module owns the rules of the run lock; the history's store keeps it in its `locks` table
//! and records takeovers in `events` (`History::lock_take`). A lock is a row
//! `(policy_id, holder, acquired_at, heartbeat_at)` where `holder` is `hostname:pid`. It lives in
//! the database rather than in a lock file because the database is the one thing every `check`
//! and `watch` writing the same history already shares (including over a network file system,
//! where advisory file locks are unreliable).
//!
//! Taking a lock is one transaction of the store that queues other takers (SQLite's `BEGIN
//! IMMEDIATE`, a PostgreSQL advisory lock on the policy's name): read the row, decide here,
//! write, commit, so two processes can never both believe they hold it. A held lock is taken over when its holder
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

use crate::history::{History, HistoryError, LockRow, LockTake};
use crate::policy::PolicyId;

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
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(
        "the lock of policy {policy} in {} has a heartbeat `{heartbeat}` that is not a time: \
         the file was edited; delete that row of the `locks` table to release it",
        path.display()
    )]
    Unreadable {
        path: std::path::PathBuf,
        policy: PolicyId,
        heartbeat: String,
    },
}

fn time_text(t: DateTime<Utc>) -> Result<String, LockError> {
    crate::time::stored(t).map_err(|e| LockError::History(HistoryError::InvalidRun(e)))
}

/// Takes the lock of `policy_id` for `me`, taking over a gone holder's (see the module doc).
pub fn acquire(
    history: &mut History,
    policy_id: &PolicyId,
    me: &Holder,
    stale_after: Duration,
) -> Result<Acquired, LockError> {
    let path = history.path().to_path_buf();
    let now = Utc::now();
    let at = time_text(now)?;
    // The store calls `decide` inside its transaction; the outcome (or why the row could not
    // be judged) is kept here, because the store only needs to know what to write.
    let mut outcome: Option<Result<Acquired, LockError>> = None;
    history.lock_take(policy_id, &mut |row| {
        let decided = decide(row, &path, policy_id, me, now, stale_after);
        let take = match &decided {
            Ok(Acquired::Held { .. }) | Err(_) => None,
            Ok(Acquired::Free) => Some(LockTake {
                holder: me.to_string(),
                at: at.clone(),
                takeover: None,
            }),
            Ok(Acquired::TookOver { previous, reason }) => Some(LockTake {
                holder: me.to_string(),
                at: at.clone(),
                takeover: Some(format!("took over the lock from {previous}: {reason}")),
            }),
        };
        outcome = Some(decided);
        take
    })?;
    outcome.unwrap_or_else(|| {
        Err(LockError::History(HistoryError::InvalidRun(format!(
            "the store did not read the lock of {policy_id}"
        ))))
    })
}

/// Whether `me` may take the lock whose row (`holder`, `heartbeat_at`) is `row`.
fn decide(
    row: Option<LockRow>,
    path: &Path,
    policy_id: &PolicyId,
    me: &Holder,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Result<Acquired, LockError> {
    let mine = me.to_string();
    let outcome = match row {
        None => Acquired::Free,
        Some(LockRow { holder, .. }) if holder == mine => Acquired::Free,
        Some(LockRow {
            holder,
            heartbeat_at,
        }) => {
            let beat = DateTime::parse_from_rfc3339(&heartbeat_at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| LockError::Unreadable {
                    path: path.to_path_buf(),
                    policy: policy_id.clone(),
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

/// Refreshes the heartbeat of `me`'s lock; false when it is no longer ours (taken over).
pub fn heartbeat(
    history: &mut History,
    policy_id: &PolicyId,
    me: &Holder,
) -> Result<bool, LockError> {
    let now = time_text(Utc::now())?;
    Ok(history.lock_beat(policy_id, &me.to_string(), &now)?)
}

/// Releases the lock if it is still ours; never someone else's that took it over.
pub fn release(history: &mut History, policy_id: &PolicyId, me: &Holder) -> Result<(), LockError> {
    Ok(history.lock_drop(policy_id, &me.to_string())?)
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
            acquire(&mut history, &PolicyId::test("p"), &live_other, STALE_AFTER)?,
            Acquired::Free
        );
        assert!(matches!(
            acquire(&mut history, &PolicyId::test("p"), &me, STALE_AFTER)?,
            Acquired::Held { .. }
        ));
        // Stale by heartbeat: a zero limit makes any heartbeat too old.
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            acquire(&mut history, &PolicyId::test("p"), &me, Duration::ZERO)?,
            Acquired::TookOver { .. }
        ));
        assert!(heartbeat(&mut history, &PolicyId::test("p"), &me)?);
        assert!(!heartbeat(&mut history, &PolicyId::test("p"), &live_other)?);
        release(&mut history, &PolicyId::test("p"), &me)?;
        assert_eq!(
            acquire(&mut history, &PolicyId::test("p"), &me, STALE_AFTER)?,
            Acquired::Free
        );
        Ok(())
    }
}
