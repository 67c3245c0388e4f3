//! Data sets: what residency ships inside the binary, what `data update` fetched since, and
//! how old each one is.
//!
//! Owns the user's data directory (`$RESIDENCY_DATA_DIR`, else `$XDG_DATA_HOME/residency`, else
//! `~/.local/share/residency`), the list of data sets with their dates, sources and sizes
//! (`data status`), and updating them (`data update`): every fresh copy is parsed and checked
//! against sanity counts *before* it replaces anything, and written atomically (a temporary
//! file renamed over the old one), so a truncated download or a corrupt file never leaves a
//! run without data. Updated copies take precedence over the shipped ones; evidence names the
//! copy and its date.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Url;

use crate::sources::declared::{RANGE_FILES, RangeFile, RangeSet};
use crate::sources::registry::Bootstrap;

/// A data set older than this is flagged by `data status`.
pub const STALE_AFTER_DAYS: i64 = 90;

/// The largest file `data update` downloads (Azure's Service Tags are about 4 MiB).
const MAX_DOWNLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// IANA's RDAP bootstrap files, updatable like the cloud ranges.
pub const BOOTSTRAP_FILES: [(&str, &str); 3] = [
    ("ipv4.json", "https://data.iana.org/rdap/ipv4.json"),
    ("ipv6.json", "https://data.iana.org/rdap/ipv6.json"),
    ("asn.json", "https://data.iana.org/rdap/asn.json"),
];

/// Where `residency data update` keeps fresh copies.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RESIDENCY_DATA_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    Some(xdg_dir("XDG_DATA_HOME", ".local/share")?.join("residency"))
}

/// An XDG base directory: `$var` when set, else `$HOME/fallback` (the data and cache
/// directories are found the same way).
pub(crate) fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(fallback))
        })
}

/// One data set as `data status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DataSet {
    pub name: String,
    /// `shipped`, `updated` (in the data directory) or `missing`.
    pub state: String,
    /// The data's own date, as its publisher writes it.
    pub date: Option<String>,
    pub source: String,
    /// Bytes (uncompressed), when present.
    pub size: Option<u64>,
    /// Why it needs attention, if it does: older than 90 days, or missing.
    pub warning: Option<String>,
}

/// Every data set, shipped or updated, with its date, source and size.
pub fn status(data_dir: Option<&Path>, now: DateTime<Utc>) -> Vec<DataSet> {
    let mut out = Vec::new();
    let shipped = |name: &str, date: &str, source: &str, size: usize| DataSet {
        name: name.to_string(),
        state: "shipped".into(),
        date: Some(date.to_string()),
        source: source.to_string(),
        size: Some(size as u64),
        warning: None,
    };
    let geo = crate::sources::geo::default_database()
        .ok()
        .map(|db| db.build_date());
    out.push(shipped(
        crate::sources::geo::SHIPPED_DATABASE_NAME,
        geo.as_deref().unwrap_or("unknown"),
        "ip-location-db geo-whois-asn-country (CC0-1.0), see data/README.md",
        crate::sources::geo::SHIPPED_DATABASE_SIZE,
    ));
    let bootstrap = Bootstrap::current(data_dir);
    for (i, (name, url)) in BOOTSTRAP_FILES.iter().enumerate() {
        let updated = data_dir
            .map(|d| d.join("rdap").join(name))
            .filter(|p| p.is_file());
        out.push(DataSet {
            name: format!("rdap/{name}"),
            state: if updated.is_some() {
                "updated"
            } else {
                "shipped"
            }
            .into(),
            date: bootstrap.as_ref().ok().map(|b| b.publications[i].clone()),
            source: format!("IANA, {url}"),
            size: updated
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .or_else(|| Some(Bootstrap::shipped_size(i) as u64)),
            warning: None,
        });
    }
    for file in RANGE_FILES {
        out.push(range_status(&file, data_dir));
    }
    out.push(shipped(
        "cloud-regions.csv",
        "2026-12-04",
        "providers' region documentation, compiled by hand (data/tools/cloud-regions.md)",
        crate::sources::declared::cloud::REGIONS_SIZE,
    ));
    out.push(shipped(
        "airports.csv",
        "2026-09-05",
        "airportsdata 20260905 (MIT), see data/README.md",
        crate::sources::ptr::AIRPORTS_SIZE,
    ));
    out.push(shipped(
        "countries.json",
        "2026-11-28",
        "Natural Earth 4.1.0 (public domain) via npm world-atlas 2.0.2",
        crate::sources::physics::COUNTRIES_SIZE,
    ));
    out.push(shipped(
        "country-names.csv",
        "2026-12-04",
        "Debian iso-codes 4.15.0-1 (ISO 3166-1 names)",
        crate::model::COUNTRY_NAMES_SIZE,
    ));
    for set in &mut out {
        if set.warning.is_none()
            && let Some(age) = set.date.as_deref().and_then(|d| age_days(d, now))
            && age > STALE_AFTER_DAYS
        {
            set.warning = Some(format!(
                "{age} days old (more than {STALE_AFTER_DAYS}): run `residency data update`"
            ));
        }
    }
    out
}

fn range_status(file: &RangeFile, data_dir: Option<&Path>) -> DataSet {
    let source = match file.url {
        Some(url) => format!("{}, {url}", file.provider),
        None => format!(
            "{}, weekly ServiceTags_Public_*.json (give its URL)",
            file.provider
        ),
    };
    let updated = data_dir
        .map(|d| d.join("cloud").join(file.name))
        .filter(|p| p.is_file());
    let (state, text) = match &updated {
        Some(path) => ("updated", std::fs::read_to_string(path).ok()),
        None => match file.shipped() {
            Some(text) => ("shipped", text.ok()),
            None => ("missing", None),
        },
    };
    let parsed = text
        .as_deref()
        .and_then(|t| RangeSet::parse(file.name, state, t).ok());
    // Cloudflare's lists carry no date and Azure's only a change number: for those, when the
    // copy was fetched is what dates it.
    let fetched = updated
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok()?.modified().ok())
        .map(|t| crate::time::seconds(&DateTime::<Utc>::from(t)));
    let published = parsed.as_ref().and_then(|s| s.published.clone());
    let date = match (published, fetched) {
        (Some(p), _)
            if p.get(..4)
                .is_some_and(|y| y.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Some(p)
        }
        (Some(p), Some(f)) => Some(format!("{f} (fetched; {p})")),
        (None, Some(f)) => Some(format!("{f} (fetched)")),
        (p, None) => p,
    };
    DataSet {
        name: format!("cloud/{}", file.name),
        state: state.into(),
        date,
        source,
        size: text.as_ref().map(|t| t.len() as u64),
        warning: (state == "missing").then(|| {
            "not shipped (no package carries the provider's file): run `residency data update`"
                .to_string()
        }),
    }
}

/// Days since a publisher's date, in any of the forms the data sets use: `2025-10-31-07-08-41`
/// (AWS), RFC 3339 with or without zone, or a plain date.
fn age_days(date: &str, now: DateTime<Utc>) -> Option<i64> {
    let day = date.get(..10)?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((now.date_naive() - day).num_days())
}

/// Where fresh copies come from.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateSource {
    /// Each publisher's own URL (Azure's must be given).
    Publishers { azure: Option<Url> },
    /// Copies fetched elsewhere, by their file names, in a directory (offline machines).
    Dir(PathBuf),
    /// Copies by their file names under a base URL (a mirror).
    Mirror(Url),
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Updated {
    pub name: String,
    /// `updated`, `skipped` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// Why `data update` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "no data directory: set RESIDENCY_DATA_DIR or HOME so `data update` has somewhere to \
         write"
    )]
    NoDataDir,
    #[error("cannot set up the HTTP client: {0}; check the TLS setup of this system")]
    Http(String),
}

/// Fetches, checks and installs every updatable data set. A file that cannot be fetched or
/// fails its checks is reported and the copy in use stays; the others still update.
pub async fn update(data_dir: &Path, from: &UpdateSource) -> Result<Vec<Updated>, DataError> {
    let mut client = reqwest::Client::builder()
        .user_agent(concat!("residency/", env!("CARGO_PKG_VERSION")))
        .timeout(DOWNLOAD_TIMEOUT);
    if let UpdateSource::Mirror(base) = from
        && crate::sources::registry::is_loopback_url(base)
    {
        client = client.no_proxy();
    }
    let client = client.build().map_err(|e| DataError::Http(e.to_string()))?;
    let mut out = Vec::new();
    for file in RANGE_FILES {
        let url = match from {
            UpdateSource::Publishers { azure } => match file.url {
                Some(url) => Url::parse(url).ok(),
                None => azure.clone(),
            },
            UpdateSource::Mirror(base) => base.join(file.name).ok(),
            UpdateSource::Dir(_) => None,
        };
        let fetched = fetch(&client, from, file.name, url.as_ref()).await;
        let check = |text: &str| check_ranges(&file, text);
        out.push(install(data_dir, "cloud", file.name, fetched, check));
    }
    for (name, url) in BOOTSTRAP_FILES {
        let url = match from {
            UpdateSource::Publishers { .. } => Url::parse(url).ok(),
            UpdateSource::Mirror(base) => base.join(name).ok(),
            UpdateSource::Dir(_) => None,
        };
        let fetched = fetch(&client, from, name, url.as_ref()).await;
        out.push(install(data_dir, "rdap", name, fetched, |t| {
            Bootstrap::check_file(name, t)
        }));
    }
    Ok(out)
}

/// The text of `name`: from the directory, or downloaded. `Ok(None)`: not offered there.
async fn fetch(
    client: &reqwest::Client,
    from: &UpdateSource,
    name: &str,
    url: Option<&Url>,
) -> Result<Option<(String, String)>, String> {
    if let UpdateSource::Dir(dir) = from {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        return std::fs::read_to_string(&path)
            .map(|t| Some((t, path.display().to_string())))
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    let Some(url) = url else {
        return Ok(None);
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    crate::sources::registry::read_bounded(response, MAX_DOWNLOAD_BYTES)
        .await
        .map(|t| Some((t, url.to_string())))
        .map_err(|e| format!("{url}: {e}"))
}

/// A range file is installed only if it parses as its provider's format and is about as
/// large as a complete file is.
fn check_ranges(file: &RangeFile, text: &str) -> Result<String, String> {
    let set = RangeSet::parse(file.name, "update", text).map_err(|e| e.reason)?;
    if set.provider != file.provider {
        return Err(format!(
            "is {}'s format, not {}'s",
            set.provider, file.provider
        ));
    }
    let (v4, v6) = set.counts();
    if v4 + v6 < file.min_prefixes {
        return Err(format!(
            "lists {} prefixes where a complete file has at least {}: truncated or not the \
             whole file",
            v4 + v6,
            file.min_prefixes
        ));
    }
    let date = set
        .published
        .map(|d| format!(" of {d}"))
        .unwrap_or_default();
    Ok(format!("{v4} IPv4 and {v6} IPv6 prefixes{date}"))
}

fn install(
    data_dir: &Path,
    folder: &str,
    name: &str,
    fetched: Result<Option<(String, String)>, String>,
    check: impl Fn(&str) -> Result<String, String>,
) -> Updated {
    let result = |outcome: &str, detail: String| Updated {
        name: format!("{folder}/{name}"),
        outcome: outcome.to_string(),
        detail,
    };
    let (text, from) = match fetched {
        Ok(Some(found)) => found,
        Ok(None) if name == "azure-service-tags.json" => {
            return result(
                "skipped",
                "Microsoft renames the file weekly: give --azure-url (the https:// URL of this \
                 week's ServiceTags_Public_*.json), or --from a directory holding it"
                    .into(),
            );
        }
        Ok(None) => return result("skipped", "not offered by this source".into()),
        Err(e) => return result("failed", format!("{e}; the copy in use is kept")),
    };
    let summary = match check(&text) {
        Ok(summary) => summary,
        Err(e) => {
            return result("failed", format!("{from} {e}; the copy in use is kept"));
        }
    };
    let target = data_dir.join(folder).join(name);
    match write_atomically(&target, text.as_bytes()) {
        Ok(()) => result("updated", format!("{summary}, from {from}")),
        Err(e) => result(
            "failed",
            format!(
                "cannot write {}: {e}; the copy in use is kept",
                target.display()
            ),
        ),
    }
}

/// Writes `bytes` to a temporary file beside `target` and renames it over `target`, so a
/// reader sees the old file or the new one, never half of one. Also the registry cache's.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("data"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_from_every_date_form() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(age_days("2025-10-31-07-08-41", now), Some(399));
        assert_eq!(age_days("2026-11-28T10:00:00Z", now), Some(6));
        assert_eq!(age_days("2026-12-04", now), Some(0));
        assert_eq!(age_days("change 398", now), None);
    }
}
