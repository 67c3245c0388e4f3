//! Disk cache of registry answers: one JSON file per query key and source, with the time it
//! was retrieved, so repeated checks do not hammer the registries (which rate-limit) and a
//! report can say how old an answer is.
//!
//! Owns the layout (`<dir>/rdap/<key>.json`, `<dir>/whois/<key>.json`), expiry and clearing.
//! The raw answer is stored, not our parse of it, so a better parser improves cached answers
//! too. Only successful answers are stored: a failure is retried next time. A cache that
//! cannot be read or written is a miss, never an error: the lookup still happens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether this process has warned that the cache cannot be written, or read (once each).
static WARNED_WRITE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static WARNED_READ: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Which source's answers a cache directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSource {
    Rdap,
    Whois,
    /// RFC 8805 geofeeds that registry records (or policies) point to.
    Geofeed,
}

impl CacheSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheSource::Rdap => "rdap",
            CacheSource::Whois => "whois",
            CacheSource::Geofeed => "geofeed",
        }
    }
}

/// One stored answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The query, e.g. `ip/192.0.2.1`.
    pub key: String,
    /// Where the answer came from: the RDAP URL that answered, or the WHOIS `host:port`.
    pub server: String,
    pub retrieved_at: DateTime<Utc>,
    /// The answer as received (RDAP JSON text, WHOIS text).
    pub body: String,
}

/// A cache directory with a time to live.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
    ttl: Duration,
}

impl DiskCache {
    pub fn new(dir: impl Into<PathBuf>, ttl: Duration) -> DiskCache {
        DiskCache {
            dir: dir.into(),
            ttl,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file an entry for `key` lives in.
    pub fn path(&self, source: CacheSource, key: &str) -> PathBuf {
        self.dir
            .join(source.as_str())
            .join(format!("{}.json", file_stem(key)))
    }

    /// The stored answer for `key` if there is one younger than the TTL.
    pub fn get(&self, source: CacheSource, key: &str) -> Option<CacheEntry> {
        let path = self.path(source, key);
        let text = std::fs::read_to_string(&path).ok()?;
        let entry: CacheEntry = match serde_json::from_str(&text) {
            Ok(entry) => entry,
            Err(error) => {
                // Once a process at warn: a damaged cache directory damages many entries.
                if !WARNED_READ.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(path = %path.display(), %error, "ignoring unreadable registry cache entries (`residency clear-cache` removes them; later ones are logged at debug)");
                } else {
                    tracing::debug!(path = %path.display(), %error, "ignoring unreadable cache entry");
                }
                return None;
            }
        };
        // A stem collision between two keys must not answer one with the other.
        if entry.key != key {
            return None;
        }
        let age = Utc::now().signed_duration_since(entry.retrieved_at);
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        // An entry from the future (clock moved back) is treated as expired.
        (age >= chrono::Duration::zero() && age < ttl).then_some(entry)
    }

    /// Store an answer; failures are logged (the first at warn) and otherwise ignored (see the
    /// module doc).
    pub fn put(&self, source: CacheSource, entry: &CacheEntry) {
        let path = self.path(source, &entry.key);
        if let Err(error) = write_atomically(&path, entry) {
            // One warning a process, not one per address: the cause (a full disk, a read-only
            // directory) is the same for all, and the run goes on without the cache.
            if !WARNED_WRITE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(path = %path.display(), %error, "cannot write registry cache entries (answers are not cached; later failures are logged at debug)");
            } else {
                tracing::debug!(path = %path.display(), %error, "cannot write registry cache entry");
            }
        }
    }

    /// Remove every stored answer of one source.
    pub fn clear(&self, source: CacheSource) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.dir.join(source.as_str())) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/residency/registry`, else
/// `~/.cache/residency/registry`; `None` when neither variable is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    Some(
        crate::sources::data::xdg_dir("XDG_CACHE_HOME", ".cache")?
            .join("residency")
            .join("registry"),
    )
}

/// Keys hold `/`, `:` and `.`; keep letters, digits, `.` and `-`, map the rest to `_`.
fn file_stem(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Write to a temporary file and rename, so a crash never leaves half an entry behind.
fn write_atomically(path: &Path, entry: &CacheEntry) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(entry).map_err(std::io::Error::other)?;
    crate::sources::data::write_atomically(path, text.as_bytes())
}
