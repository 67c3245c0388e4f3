//! The audit tables kept beside the chain (`events`, `failed_runs`, `alert_deliveries`), read
//! back for `residency history events|failures|alerts` and for re-sending alerts. They are
//! written by `crate::run::lock`, [`History::record_failure`] and [`History::record_alert`],
//! outside the hash chain: they have no verdict to hash, and `history verify` stays as it was.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::{Cell, window_where};
use super::{History, HistoryError, RunFilter, RunId};
use crate::policy::PolicyId;
use crate::policy::alerts::AlertEvent;

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
    pub policy_id: PolicyId,
    pub kind: EventKind,
    /// The process the event happened to (for a takeover: the new holder).
    pub holder: String,
    pub detail: String,
}

/// One row of `failed_runs`: a run that ended without a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRun {
    pub id: i64,
    pub policy_id: PolicyId,
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
    pub run_id: RunId,
    pub policy_id: PolicyId,
    pub event: AlertEvent,
    #[serde(serialize_with = "crate::time::serialize_micros")]
    pub at: DateTime<Utc>,
    pub delivered: bool,
    /// The try it was delivered on, or why it was given up.
    pub detail: String,
}

/// The cells of one audit row, read in column order; a cell of the wrong type names the row.
struct Cells<'a> {
    history: &'a History,
    table: &'static str,
    id: i64,
    cells: std::vec::IntoIter<Cell>,
}

impl<'a> Cells<'a> {
    fn new(
        history: &'a History,
        table: &'static str,
        row: Vec<Cell>,
    ) -> Result<Self, HistoryError> {
        let mut cells = Cells {
            history,
            table,
            id: 0,
            cells: row.into_iter(),
        };
        cells.id = cells.int()?;
        Ok(cells)
    }

    fn wrong(&self, what: &str, found: &Cell) -> HistoryError {
        self.history.unreadable(
            self.table,
            self.id,
            format!("expected {what}, found {found:?}"),
        )
    }

    fn int(&mut self) -> Result<i64, HistoryError> {
        match self.cells.next().unwrap_or(Cell::Null) {
            Cell::Int(n) => Ok(n),
            other => Err(self.wrong("an integer", &other)),
        }
    }

    fn text(&mut self) -> Result<String, HistoryError> {
        match self.cells.next().unwrap_or(Cell::Null) {
            Cell::Text(t) => Ok(t),
            other => Err(self.wrong("text", &other)),
        }
    }

    fn flag(&mut self) -> Result<bool, HistoryError> {
        // SQLite keeps booleans as 0 and 1.
        match self.cells.next().unwrap_or(Cell::Null) {
            Cell::Flag(b) => Ok(b),
            Cell::Int(n @ (0 | 1)) => Ok(n == 1),
            other => Err(self.wrong("a flag", &other)),
        }
    }

    fn policy(&mut self) -> Result<PolicyId, HistoryError> {
        self.text().map(PolicyId::from_stored)
    }

    fn time(&mut self) -> Result<DateTime<Utc>, HistoryError> {
        let text = self.text()?;
        super::parse_timestamp(&text).ok_or_else(|| {
            self.history.unreadable(
                self.table,
                self.id,
                format!("timestamp `{text}` does not parse"),
            )
        })
    }
}

const DELIVERY_COLUMNS: &str = "id, run_id, policy_id, event, at, delivered, detail";

impl History {
    /// `events` rows matching `filter` (by `at`), oldest first.
    pub fn events(&self, filter: &AuditFilter) -> Result<Vec<Event>, HistoryError> {
        let (clause, args) = window_where(filter, "policy_id", "at")?;
        let sql = format!(
            "SELECT id, at, policy_id, kind, holder, detail FROM events WHERE 1 = 1{clause}
             ORDER BY at, id"
        );
        let rows = self
            .store
            .select(&sql, &args, "cannot read the events table")?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(self, "events", row)?;
                let at = c.time()?;
                let policy_id = c.policy()?;
                let kind = match c.text()?.as_str() {
                    "lock_takeover" => EventKind::LockTakeover,
                    other => {
                        return Err(self.unreadable(
                            "events",
                            c.id,
                            format!("unknown kind `{other}`"),
                        ));
                    }
                };
                Ok(Event {
                    id: c.id,
                    at,
                    policy_id,
                    kind,
                    holder: c.text()?,
                    detail: c.text()?,
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
        let rows = self
            .store
            .select(&sql, &args, "cannot read the failed_runs table")?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(self, "failed_runs", row)?;
                Ok(FailedRun {
                    policy_id: c.policy()?,
                    started_at: c.time()?,
                    failed_at: c.time()?,
                    holder: c.text()?,
                    reason: c.text()?,
                    id: c.id,
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
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE 1 = 1{clause} ORDER BY at, id"
        );
        self.deliveries(&sql, &args)
    }

    /// For every run whose latest delivery row says not delivered (of `policy_id` only, if
    /// given), that row, oldest run first: the alerts still owed to a webhook.
    pub fn undelivered_alerts(
        &self,
        policy_id: Option<&PolicyId>,
    ) -> Result<Vec<AlertDelivery>, HistoryError> {
        let filter = AuditFilter {
            policy_id: policy_id.cloned(),
            ..AuditFilter::default()
        };
        let (clause, args) = window_where(&filter, "policy_id", "at")?;
        // Append-only: a later row for the same run supersedes the earlier ones, and ids grow.
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d
             WHERE id = (SELECT max(id) FROM alert_deliveries WHERE run_id = d.run_id)
               AND NOT delivered{clause}
             ORDER BY run_id"
        );
        self.deliveries(&sql, &args)
    }

    fn deliveries(&self, sql: &str, args: &[String]) -> Result<Vec<AlertDelivery>, HistoryError> {
        let rows = self
            .store
            .select(sql, args, "cannot read the alert_deliveries table")?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(self, "alert_deliveries", row)?;
                let run_id = RunId(c.int()?);
                let policy_id = c.policy()?;
                let event = c.text()?;
                let event = AlertEvent::parse(&event).ok_or_else(|| {
                    self.unreadable("alert_deliveries", c.id, format!("unknown event `{event}`"))
                })?;
                Ok(AlertDelivery {
                    run_id,
                    policy_id,
                    event,
                    at: c.time()?,
                    delivered: c.flag()?,
                    detail: c.text()?,
                    id: c.id,
                })
            })
            .collect()
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
