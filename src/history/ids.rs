//! The names of things in a history: a run's id, its place in its policy's chain, and the link
//! (place and hash) that the next run points back to. Cheap newtypes, so a seq is never passed
//! where a run id was meant; each serialises as the bare number it always was, so JSON output
//! and stored columns are unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The run id users type (`RUN_ID`): the row id, unique across policies and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// A run's position in its policy's chain: from 1, with no gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub i64);

/// Where a chain stands after a run: its seq and hash. The chain head is the link of the last
/// run, and each run's `prev_hash` is the hash of the link before it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Link {
    pub seq: Seq,
    /// Hex SHA-256 of the run's canonical record (see `chain.rs`).
    pub hash: String,
}

/// Where a run was stored: what a report or terminal shows under it, so the reader can quote
/// the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub run_id: RunId,
    pub seq: Seq,
    pub hash: String,
    /// The SQLite file, or the PostgreSQL URL without its password.
    pub database: String,
}

impl Seq {
    /// The first run of every chain.
    pub const FIRST: Seq = Seq(1);

    /// The seq after this one.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// The seq before this one (`Seq(0)` before the first: no run).
    pub fn previous(self) -> Seq {
        Seq(self.0.saturating_sub(1))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = String;

    /// A run id as typed: a positive whole number.
    fn from_str(s: &str) -> Result<RunId, String> {
        match s.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(RunId(n)),
            _ => Err(format!(
                "`{}` is not a run id: give the positive number that `residency history list` shows",
                crate::text::visible(s)
            )),
        }
    }
}

impl FromStr for Seq {
    type Err = String;

    /// A seq as written in reports: a whole number, 0 or more.
    fn from_str(s: &str) -> Result<Seq, String> {
        match s.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Seq(n)),
            _ => Err(format!(
                "`{}` is not a seq: a run's seq is its position in its policy's chain, from 1",
                crate::text::visible(s)
            )),
        }
    }
}

// In SQLite the ids are stored as the integers and text they wrap (the PostgreSQL store binds
// the wrapped values itself).
impl rusqlite::ToSql for RunId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.into())
    }
}

impl rusqlite::types::FromSql for RunId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<RunId> {
        i64::column_result(v).map(RunId)
    }
}

impl rusqlite::ToSql for Seq {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.into())
    }
}

impl rusqlite::types::FromSql for Seq {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Seq> {
        i64::column_result(v).map(Seq)
    }
}

impl rusqlite::ToSql for crate::policy::PolicyId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for crate::policy::PolicyId {
    fn column_result(
        v: rusqlite::types::ValueRef<'_>,
    ) -> rusqlite::types::FromSqlResult<crate::policy::PolicyId> {
        String::column_result(v).map(crate::policy::PolicyId::from_stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_as_bare_numbers() {
        assert_eq!(serde_json::to_string(&RunId(7)).ok().as_deref(), Some("7"));
        assert_eq!(serde_json::to_string(&Seq(3)).ok().as_deref(), Some("3"));
        let link = Link {
            seq: Seq(2),
            hash: "ab".into(),
        };
        assert_eq!(
            serde_json::to_string(&link).ok().as_deref(),
            Some(r#"{"seq":2,"hash":"ab"}"#)
        );
    }

    #[test]
    fn run_ids_are_positive_numbers() {
        assert_eq!("42".parse::<RunId>(), Ok(RunId(42)));
        for bad in ["0", "-1", "x", "", "1.5"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
        assert_eq!(Seq::FIRST.next(), Seq(2));
        assert_eq!(Seq::FIRST.previous(), Seq(0));
    }
}
