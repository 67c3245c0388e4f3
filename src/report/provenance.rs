//! Report provenance: which recorded runs a report shows, in a form a reader can check
//! against the history (`residency history verify --report FILE`).
//!
//! Owns the provenance marker and its check. A report carries its runs' ids, seqs and hashes
//! and the policy's chain head at the time it was made, twice: readable in the report, and as
//! one machine-readable marker line,
//!
//! ```text
//! residency-provenance:1;policy=ID;runs=ID.SEQ.HASH,ID.SEQ.HASH;head=SEQ.HASH
//! ```
//!
//! made only of letters, digits and `:;=,.-`, which HTML, XML (PDF metadata) and Markdown
//! escaping all leave as they are (minijinja's HTML escaping even escapes `/`), so it
//! survives every output format byte for byte and is found by scanning the file. The default
//! templates put it in HTML's `<script type="application/json" id="residency-provenance">` and
//! `<meta name="residency-provenance">`, in the PDF's metadata (its description, kept in the
//! uncompressed XMP stream) and in a Markdown comment. A report with two different markers is
//! refused: measured text could contain a look-alike, and the check must not guess.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::history::{History, RunFilter, RunSummary};
use crate::history::{Link, RunId, Seq};
use crate::policy::PolicyId;

use super::ReportError;

const PREFIX: &str = "residency-provenance:1;";

/// A run as provenance names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenanceRun {
    pub id: RunId,
    pub seq: Seq,
    pub hash: String,
}

/// What a report states about where its facts come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub policy_id: PolicyId,
    pub database: String,
    /// Every run the report covers.
    pub runs: Vec<ProvenanceRun>,
    /// The policy's last recorded run when the report was made.
    pub chain_head: ProvenanceRun,
    /// Whether the policy's chain was recomputed and found intact when the report was made;
    /// null when it was not checked.
    pub chain_verified: Option<bool>,
    /// How much of the chain was rehashed: every run, or the runs since a verified checkpoint.
    pub chain_check: Option<String>,
    /// The machine-readable line (see the module doc).
    pub marker: String,
    /// The command that checks this report, for the reader.
    pub verify_command: String,
}

impl Provenance {
    pub fn new(
        policy: &PolicyId,
        runs: &[RunSummary],
        head: &RunSummary,
        chain_verified: Option<bool>,
        db: &Path,
    ) -> Provenance {
        let runs: Vec<ProvenanceRun> = runs
            .iter()
            .map(|r| ProvenanceRun {
                id: r.id,
                seq: r.seq,
                hash: r.hash.clone(),
            })
            .collect();
        let chain_head = ProvenanceRun {
            id: head.id,
            seq: head.seq,
            hash: head.hash.clone(),
        };
        let marker = Marker {
            policy: policy.clone(),
            runs: runs.clone(),
            head: Link {
                seq: chain_head.seq,
                hash: chain_head.hash.clone(),
            },
        }
        .to_string();
        Provenance {
            policy_id: policy.clone(),
            database: db.display().to_string(),
            runs,
            chain_head,
            chain_verified,
            chain_check: None,
            marker,
            verify_command: format!(
                "residency history verify --report REPORT_FILE --db {}",
                db.display()
            ),
        }
    }
}

/// A parsed marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub policy: PolicyId,
    pub runs: Vec<ProvenanceRun>,
    pub head: Link,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}policy={};runs=", self.policy)?;
        for (i, r) in self.runs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}.{}.{}", r.id, r.seq, r.hash)?;
        }
        write!(f, ";head={}.{}", self.head.seq, self.head.hash)
    }
}

fn marker_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b';' | b'=' | b',' | b'.' | b'-')
}

/// Every distinct marker in a file's bytes.
pub fn find_markers(bytes: &[u8]) -> BTreeSet<String> {
    let prefix = PREFIX.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + prefix.len() <= bytes.len() {
        if &bytes[i..i + prefix.len()] == prefix {
            let body = i + prefix.len();
            let end = bytes[body..]
                .iter()
                .position(|b| !marker_char(*b))
                .map_or(bytes.len(), |n| body + n);
            found.insert(String::from_utf8_lossy(&bytes[i..end]).into_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Marker {
    pub fn parse(text: &str) -> Option<Marker> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut parts = rest.split(';');
        let policy = PolicyId::parse(parts.next()?.strip_prefix("policy=")?).ok()?;
        let runs_text = parts.next()?.strip_prefix("runs=")?;
        let head_text = parts.next()?.strip_prefix("head=")?;
        if parts.next().is_some() {
            return None;
        }
        let mut runs = Vec::new();
        for r in runs_text.split(',').filter(|r| !r.is_empty()) {
            let mut f = r.split('.');
            let (id, seq, hash) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || !hex64(hash) {
                return None;
            }
            runs.push(ProvenanceRun {
                id: id.parse().ok()?,
                seq: seq.parse().ok()?,
                hash: hash.to_string(),
            });
        }
        let (seq, hash) = head_text.split_once('.')?;
        if !hex64(hash) {
            return None;
        }
        Some(Marker {
            policy,
            runs,
            head: Link {
                seq: seq.parse().ok()?,
                hash: hash.to_string(),
            },
        })
    }
}

/// The outcome of checking a report against a history: one line per finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceCheck {
    pub lines: Vec<String>,
    pub matches: bool,
}

impl fmt::Display for ProvenanceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Reads the marker of the report at `file` and checks it against `history`: every run must
/// be recorded with the seq and hash the report states, the report's chain head must still be
/// in the chain, and the policy's chain must verify intact now.
pub fn check_report(history: &History, file: &Path) -> Result<ProvenanceCheck, ReportError> {
    let bytes = std::fs::read(file).map_err(|e| ReportError::Read {
        path: file.to_path_buf(),
        source: e,
    })?;
    let markers = find_markers(&bytes);
    let text = match markers.len() {
        0 => {
            return Err(ReportError::NoProvenance(file.to_path_buf()));
        }
        1 => markers.into_iter().next().unwrap_or_default(),
        n => {
            return Err(ReportError::AmbiguousProvenance {
                path: file.to_path_buf(),
                count: n,
            });
        }
    };
    let marker =
        Marker::parse(&text).ok_or_else(|| ReportError::BadProvenance(file.to_path_buf()))?;
    let mut lines = Vec::new();
    let mut matches = true;
    for r in &marker.runs {
        match history.get(r.id)? {
            None => {
                matches = false;
                lines.push(format!("run {}: NOT IN THE HISTORY", r.id));
            }
            Some(s) if s.policy_id != marker.policy || s.seq != r.seq || s.hash != r.hash => {
                matches = false;
                lines.push(format!(
                    "run {}: MISMATCH: the report says policy {} seq {} hash {}, the history has policy {} seq {} hash {}",
                    r.id, marker.policy, r.seq, r.hash, s.policy_id, s.seq, s.hash
                ));
            }
            Some(_) => {}
        }
    }
    if matches {
        lines.push(format!(
            "{} run(s) of {}: ids, seqs and hashes match the history",
            marker.runs.len(),
            marker.policy
        ));
    }
    let all: Vec<RunSummary> = history.list(&RunFilter {
        policy_id: Some(marker.policy.clone()),
        since: None,
        until: None,
    })?;
    match all.iter().find(|r| r.seq == marker.head.seq) {
        Some(r) if r.hash == marker.head.hash => lines.push(format!(
            "chain head when the report was made: seq {} (run {}) matches",
            r.seq, r.id
        )),
        Some(r) => {
            matches = false;
            lines.push(format!(
                "chain head MISMATCH: the report says seq {} hash {}, the history has {}",
                marker.head.seq, marker.head.hash, r.hash
            ));
        }
        None => {
            matches = false;
            lines.push(format!(
                "chain head MISSING: the report's head seq {} is not in the history",
                marker.head.seq
            ));
        }
    }
    let verify = history.verify(Some(&marker.policy))?;
    for p in &verify.policies {
        match (&p.broken, &p.head) {
            (Some(b), _) => {
                matches = false;
                lines.push(format!("chain of {}: BROKEN at {b}", p.policy_id));
            }
            (None, Some(head)) => lines.push(format!(
                "chain of {}: intact, {} runs, now at seq {} hash {}",
                p.policy_id, p.runs_checked, head.seq, head.hash
            )),
            (None, None) => {}
        }
    }
    lines.push(if matches {
        "report provenance: OK".to_string()
    } else {
        "report provenance: DOES NOT MATCH".to_string()
    });
    Ok(ProvenanceCheck { lines, matches })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_are_found_in_any_surrounding() {
        let h = "ab".repeat(32);
        let m = Marker {
            policy: PolicyId::test("xiaomi-india"),
            runs: vec![ProvenanceRun {
                id: RunId(12),
                seq: Seq(3),
                hash: h.clone(),
            }],
            head: Link {
                seq: Seq(4),
                hash: h.clone(),
            },
        };
        let text = m.to_string();
        assert_eq!(Marker::parse(&text), Some(m));
        let html = format!("<meta content=\"{text}\"><p>x</p>{{\"marker\":\"{text}\"}}");
        assert_eq!(find_markers(html.as_bytes()).len(), 1);
        assert!(Marker::parse("residency-provenance:1;policy=x;runs=1.1.zz;head=1.00").is_none());
    }
}
