//! Verified checkpoints: after a full `verify` found a policy's chain intact, its head (seq and
//! hash) is written down, so the next verification of that policy rehashes only the runs from
//! there on. A report of a year of six-hourly runs then checks the newest runs, not all 1,460.
//!
//! The checkpoints live outside the history, in this user's state directory
//! (`$XDG_STATE_HOME/residency/checkpoints/`, one file per history, written atomically): whoever
//! can write the database cannot also move the checkpoint, and a run at a checkpoint that was
//! edited since is caught (its hash covers its `prev_hash`, so the chain before it is what was
//! verified). Someone who rewrites runs *before* a checkpoint consistently, chain head and all,
//! is caught only by a full verify (`--full-verify`, or `residency history verify`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Link, Seq};
use crate::policy::PolicyId;

/// One policy's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: Seq,
    pub hash: String,
    /// When the full verification that wrote it ran (RFC 3339).
    pub verified_at: String,
}

impl Checkpoint {
    pub fn link(&self) -> Link {
        Link {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// The history they are of, as residency names it (a PostgreSQL URL without password).
    database: String,
    policies: BTreeMap<String, Checkpoint>,
}

/// The checkpoints of one history.
#[derive(Debug)]
pub struct Checkpoints {
    path: Option<PathBuf>,
    file: File,
}

impl Checkpoints {
    /// The checkpoints of the history named `database`; none when there is no state directory
    /// or no file yet (an unreadable file is treated as none: the next verify is then full).
    pub fn load(database: &str) -> Checkpoints {
        let path = crate::sources::data::xdg_dir("XDG_STATE_HOME", ".local/state").map(|dir| {
            let digest = Sha256::digest(database.as_bytes());
            dir.join("residency")
                .join("checkpoints")
                .join(format!("{}.json", crate::text::hex(&digest[..12])))
        });
        let file = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<File>(&t).ok())
            .filter(|f| f.database == database)
            .unwrap_or_else(|| File {
                database: database.to_string(),
                policies: BTreeMap::new(),
            });
        Checkpoints { path, file }
    }

    pub fn get(&self, policy: &PolicyId) -> Option<&Checkpoint> {
        self.file.policies.get(policy.as_str())
    }

    /// Records `head` as verified for `policy` and writes the file atomically. A failure to
    /// write only means the next verification is full again.
    pub fn set(&mut self, policy: &PolicyId, head: &Link) {
        self.file.policies.insert(
            policy.to_string(),
            Checkpoint {
                seq: head.seq,
                hash: head.hash.clone(),
                verified_at: crate::time::seconds(&chrono::Utc::now()),
            },
        );
        let Some(path) = &self.path else { return };
        match serde_json::to_vec_pretty(&self.file) {
            Ok(bytes) => {
                if let Err(e) = crate::sources::data::write_atomically(path, &bytes) {
                    tracing::debug!(path = %path.display(), %e, "cannot write the verified checkpoint");
                }
            }
            Err(e) => tracing::debug!(%e, "cannot encode the verified checkpoints"),
        }
    }
}
