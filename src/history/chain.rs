//! The tamper evidence of the history, written once for every store: the canonical JSON that run
//! hashes are computed over ([`canonical_json`]), the record each hash covers, the link from a
//! policy's previous run to the next ([`next_link`]), and the verification walk ([`verify`]) over
//! rows read exactly as stored.
//!
//! Runs form one hash chain per policy. Each run's hash is the hex SHA-256 of the canonical JSON
//! of `{policy_id, seq, started_at, finished_at, verdict, prev_hash, document}`, where
//! `prev_hash` is the hash of the policy's previous run and, for the first run (`seq` 1),
//! [`GENESIS_HASH`] (64 zeros, never NULL, so every record has the same shape). The store's
//! chain head, moved in the same transaction as each append, remembers the last seq and hash per
//! policy, so deleting the newest run is detectable too, which the chain alone cannot show.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::digest::RunDigest;
use super::store::{ChainPart, Prepared, Store};
use super::{HistoryError, Link, NewRun, RunId, Seq};
use crate::policy::PolicyId;

/// `prev_hash` of the first run of every policy.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The columns a run hash covers, in their stored text form.
pub(crate) struct Record<'a> {
    pub policy_id: &'a str,
    pub seq: Seq,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub verdict: &'a str,
    pub prev_hash: &'a str,
    /// Canonical JSON text, embedded verbatim: verification hashes the stored bytes, so any
    /// change to them, even one that parses to the same value, shows as a mismatch.
    pub document: &'a str,
}

impl Record<'_> {
    /// Canonical JSON of the record. Written by hand (keys already in sorted order) so the
    /// document text is embedded as stored rather than re-parsed; a unit test pins it to
    /// `canonical_json` of the same object.
    pub(crate) fn canonical_text(&self) -> String {
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

    pub(crate) fn hash(&self) -> String {
        crate::text::hex(&Sha256::digest(self.canonical_text().as_bytes()))
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
            match (&p.broken, &p.head) {
                (Some(b), _) => writeln!(f, "{}: BROKEN at {b}", p.policy_id)?,
                (None, Some(head)) => writeln!(
                    f,
                    "{}: intact, {} runs, head seq {} hash {}",
                    p.policy_id, p.runs_checked, head.seq, head.hash
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
    pub policy_id: PolicyId,
    /// Runs whose hash, seq and link were checked: all of them when the chain is intact,
    /// otherwise up to and including the first broken one.
    pub runs_checked: u64,
    /// The link of the policy's last run, when the chain is intact and non-empty.
    pub head: Option<Link>,
    /// The first problem found walking the chain from seq 1 (or from `from_seq`), if any.
    pub broken: Option<ChainBreak>,
    /// Set when the walk started at a verified checkpoint instead of seq 1: the runs before
    /// it were not rehashed this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<Seq>,
}

/// The first place a policy's chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The run where the break shows; `None` when the problem is a run that no longer exists.
    pub id: Option<RunId>,
    /// That run's seq, or the first missing seq.
    pub seq: Seq,
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
    SeqGap { missing_seq: Seq },
    /// `prev_hash` is not the previous run's hash (`previous_id`), or for seq 1 not
    /// [`GENESIS_HASH`]: a run was deleted, replaced or reordered.
    PrevHashMismatch { previous_id: Option<RunId> },
    /// The chain head remembers runs after the last one present: they were deleted.
    MissingTail {
        first_missing: Seq,
        last_missing: Seq,
    },
    /// Runs exist but the policy's chain head row is gone.
    HeadMissing,
    /// Runs exist beyond the chain head: they were inserted outside residency.
    HeadBehind { head_seq: Seq },
    /// The chain head's hash is not the last run's hash: the last run was replaced.
    HeadHashMismatch,
    /// The run's row in the index (`run_digests`, `endpoint_changes`) is not what its document
    /// says: the index was edited, so timelines read from it cannot be trusted.
    IndexMismatch { detail: String },
    /// The run at a verified checkpoint is gone or not the one verified: the history was
    /// edited after that verification.
    CheckpointMismatch { checkpoint_seq: Seq },
}

impl ChainProblem {
    fn message(&self) -> String {
        match self {
            ChainProblem::CheckpointMismatch { checkpoint_seq } => format!(
                "the run at the verified checkpoint (seq {checkpoint_seq}) is gone or not the one \
                 verified: the history was edited since; run `residency history verify`"
            ),
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

    fn at(self, id: Option<RunId>, seq: Seq) -> ChainBreak {
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
pub(crate) struct RawRow {
    pub id: RunId,
    pub seq: Seq,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: String,
    pub document: String,
    pub prev_hash: String,
    pub hash: String,
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

pub(crate) fn push_json_string(s: &str, out: &mut String) {
    let _ = write!(out, "{}", Value::String(s.to_owned()));
}

/// The seq, `prev_hash` and hash of `run` appended after the policy's chain head `head` and
/// last stored run `last`, read inside the append transaction.
pub(crate) fn next_link(
    path: &Path,
    run: &NewRun,
    new: &Prepared<'_>,
    head: Option<Link>,
    last: Option<Link>,
) -> Result<Chained, HistoryError> {
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
    let previous = match (head, last) {
        (Some(head), Some(last)) if last.seq > head.seq => last,
        (Some(head), _) => head,
        (None, Some(last)) => last,
        (None, None) => Link {
            seq: Seq(0),
            hash: GENESIS_HASH.to_string(),
        },
    };
    let seq = previous.seq.0.checked_add(1).map(Seq).ok_or_else(|| {
        HistoryError::InvalidRun(format!("{} has no seq numbers left", run.policy_id))
    })?;
    let prev_hash = previous.hash;
    let hash = Record {
        policy_id: run.policy_id.as_str(),
        seq,
        started_at: new.started_at,
        finished_at: new.finished_at,
        verdict: run.verdict.as_str(),
        prev_hash: &prev_hash,
        document: new.document,
    }
    .hash();
    Ok(Chained {
        link: Link { seq, hash },
        prev_hash,
    })
}

/// Where an appended run sits in its policy's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chained {
    /// The run's own seq and hash.
    pub link: Link,
    /// The previous run's hash, or [`GENESIS_HASH`] for seq 1.
    pub prev_hash: String,
}

/// Checks the hash chain of every policy in `store` (or only `policy_id`): see
/// [`super::History::verify`].
pub(crate) fn verify(
    store: &dyn Store,
    policy_id: Option<&PolicyId>,
    checkpoints: &BTreeMap<PolicyId, Link>,
) -> Result<VerifyReport, HistoryError> {
    let mut report = VerifyReport {
        policies: Vec::new(),
    };
    let from: BTreeMap<PolicyId, Seq> = checkpoints
        .iter()
        .map(|(p, link)| (p.clone(), link.seq))
        .collect();
    let mut walk: Option<ChainWalk> = None;
    store.read_chains(policy_id, &from, &mut |part| match part {
        ChainPart::Policy { policy_id, index } => {
            if let Some(done) = walk.take() {
                report.policies.push(done.result);
            }
            let start = checkpoints.get(&policy_id).cloned();
            let mut index = IndexCheck::new(index);
            if let Some(start) = &start {
                index.skip_before(start.seq);
            }
            walk = Some(ChainWalk::new(policy_id, index, start));
            true
        }
        ChainPart::Run(raw) => walk
            .as_mut()
            .is_some_and(|w| w.result.broken.is_none() && w.step(raw)),
        ChainPart::Head(head) => {
            match walk.take() {
                Some(w) if w.result.broken.is_some() => report.policies.push(w.result),
                Some(w) => report.policies.push(w.finish(head)),
                None => {}
            }
            true
        }
    })?;
    // A policy whose walk stopped at a break gets no head part.
    if let Some(done) = walk.take() {
        report.policies.push(done.result);
    }
    Ok(report)
}

/// Walks one policy's runs in seq order during `verify`, for either store.
struct ChainWalk {
    result: PolicyVerification,
    /// The id and link of the last run that checked out.
    previous: Option<(RunId, Link)>,
    index: IndexCheck,
    /// The verified checkpoint the walk starts at, until its run is seen.
    start: Option<Link>,
}

impl ChainWalk {
    fn new(policy_id: PolicyId, index: IndexCheck, start: Option<Link>) -> ChainWalk {
        ChainWalk {
            result: PolicyVerification {
                policy_id,
                runs_checked: 0,
                head: None,
                broken: None,
                from_seq: start.as_ref().map(|l| l.seq),
            },
            previous: None,
            index,
            start,
        }
    }

    /// Checks the next run; false once the chain is broken (the walk is then over).
    fn step(&mut self, raw: Result<RawRow, (RunId, Seq, String)>) -> bool {
        self.result.runs_checked += 1;
        let raw = match raw {
            Ok(raw) => raw,
            Err((id, seq, detail)) => {
                self.result.broken = Some(ChainProblem::Unreadable { detail }.at(Some(id), seq));
                return false;
            }
        };
        let recomputed = Record {
            policy_id: self.result.policy_id.as_str(),
            seq: raw.seq,
            started_at: &raw.started_at,
            finished_at: &raw.finished_at,
            verdict: &raw.verdict,
            prev_hash: &raw.prev_hash,
            document: &raw.document,
        }
        .hash();
        // The first run of a walk from a checkpoint must be the checkpoint's run, unchanged:
        // its hash covers its prev_hash, so the chain up to it is as it was verified.
        if let Some(start) = self.start.take() {
            if raw.seq != start.seq || raw.hash != start.hash || recomputed != raw.hash {
                self.result.broken = Some(
                    ChainProblem::CheckpointMismatch {
                        checkpoint_seq: start.seq,
                    }
                    .at(Some(raw.id), raw.seq),
                );
                return false;
            }
            if let Err(detail) = self.index.check(raw.seq, &raw.document) {
                self.result.broken =
                    Some(ChainProblem::IndexMismatch { detail }.at(Some(raw.id), raw.seq));
                return false;
            }
            self.previous = Some((raw.id, start));
            return true;
        }
        let previous = &self.previous;
        // Order matters: an edited row is the most specific diagnosis, then a missing seq,
        // then a link that points elsewhere (a replaced or reordered run).
        let expected_seq = previous.as_ref().map_or(Seq::FIRST, |p| p.1.seq.next());
        let expected_prev = previous
            .as_ref()
            .map_or(GENESIS_HASH, |p| p.1.hash.as_str());
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
        self.previous = Some((
            raw.id,
            Link {
                seq: raw.seq,
                hash: raw.hash,
            },
        ));
        true
    }

    /// The verdict once every run was checked, given the policy's chain head.
    fn finish(self, head: Option<Link>) -> PolicyVerification {
        let ChainWalk {
            mut result,
            previous,
            start,
            ..
        } = self;
        // A checkpoint whose run never came: it was deleted (with everything after it).
        if let Some(start) = start {
            result.broken = Some(
                ChainProblem::CheckpointMismatch {
                    checkpoint_seq: start.seq,
                }
                .at(None, start.seq),
            );
            return result;
        }
        let last_seq = previous.as_ref().map_or(Seq(0), |p| p.1.seq);
        let last_id = previous.as_ref().map(|p| p.0);
        result.broken = match (&head, &previous) {
            (None, None) => None,
            (None, Some(_)) => Some(ChainProblem::HeadMissing.at(last_id, last_seq)),
            (Some(head), _) if head.seq > last_seq => Some(
                ChainProblem::MissingTail {
                    first_missing: last_seq.next(),
                    last_missing: head.seq,
                }
                .at(None, last_seq.next()),
            ),
            (Some(head), _) if head.seq < last_seq => {
                Some(ChainProblem::HeadBehind { head_seq: head.seq }.at(last_id, last_seq))
            }
            (Some(head), Some((_, last))) if head.hash != last.hash => {
                Some(ChainProblem::HeadHashMismatch.at(last_id, last_seq))
            }
            _ => None,
        };
        if result.broken.is_none() {
            result.head = previous.map(|(_, link)| link);
        }
        result
    }
}

/// Level 3 is zstd's default: run documents (repetitive JSON) shrink about tenfold at a few
/// milliseconds per megabyte; higher levels cost far more time for a few percent.
const ZSTD_LEVEL: i32 = 3;

pub(crate) fn compress(path: &Path, document: &str) -> Result<Vec<u8>, HistoryError> {
    zstd::bulk::compress(document.as_bytes(), ZSTD_LEVEL).map_err(|e| {
        HistoryError::InvalidRun(format!(
            "cannot compress the run document for {}: {e}",
            path.display()
        ))
    })
}

/// The canonical document text of a row: the `document` column of runs recorded before schema 4,
/// else `document_zstd` decompressed. Both filled in means the row was edited.
pub(crate) fn document_text(text: String, compressed: Option<Vec<u8>>) -> Result<String, String> {
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

/// A policy's index rows as stored: `run_digests` by seq `(countries, unlocated, error)`, and
/// `endpoint_changes` by seq `(host, verdict)`.
#[derive(Debug, Default)]
pub(crate) struct IndexRows {
    pub digests: BTreeMap<Seq, (String, i64, Option<String>)>,
    pub changes: BTreeMap<Seq, Vec<(String, Option<String>)>>,
}

/// Replays a policy's index beside its runs during `verify`.
struct IndexCheck {
    digests: BTreeMap<Seq, (String, i64, Option<String>)>,
    changes: BTreeMap<Seq, Vec<(String, Option<String>)>>,
    state: BTreeMap<String, String>,
}

impl IndexCheck {
    fn new(IndexRows { digests, changes }: IndexRows) -> IndexCheck {
        IndexCheck {
            digests,
            changes,
            state: BTreeMap::new(),
        }
    }

    /// Replays the endpoint changes of the runs before `seq` without checking them (they were
    /// checked when the checkpoint at `seq` was verified), so the walk can start there.
    fn skip_before(&mut self, seq: Seq) {
        let before: Vec<Seq> = self.changes.range(..seq).map(|(s, _)| *s).collect();
        for s in before {
            for (host, verdict) in self.changes.remove(&s).unwrap_or_default() {
                match verdict {
                    Some(v) => self.state.insert(host, v),
                    None => self.state.remove(&host),
                };
            }
        }
    }

    /// Checks the run at `seq` (runs come in seq order) against its canonical document.
    fn check(&mut self, seq: Seq, document: &str) -> Result<(), String> {
        let changes = self.changes.remove(&seq).unwrap_or_default();
        let changed = !changes.is_empty();
        for (host, verdict) in changes {
            match verdict {
                Some(v) => self.state.insert(host, v),
                None => self.state.remove(&host),
            };
        }
        let Some((countries, unlocated, error)) = self.digests.get(&seq) else {
            return Err("the run has no index row".into());
        };
        match RunDigest::of_text(document) {
            // An undigestible document is indexed as exactly that: no counts, no endpoint
            // changes, and why (whose wording may differ between releases, so not compared).
            Err(_) => match error {
                Some(_) if countries == "{}" && *unlocated == 0 && !changed => Ok(()),
                Some(_) => Err(
                    "the index has counts or endpoint changes for a document it could not digest"
                        .into(),
                ),
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
            seq: Seq(3),
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
}
