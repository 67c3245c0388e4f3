//! Operator-declared evidence: what the operator of an address publishes about where it is
//! used, as opposed to what a database infers or a registry records of its holder.
//!
//! Owns [`cloud`] (the providers' published IP ranges with their regions), [`geofeed`] (RFC
//! 8805 feeds, and RFC 9632's rule on where they may speak), and where the range
//! files come from: copies shipped in the binary (`data/cloud/`), fresher copies that
//! `residency data update` wrote into the user's data directory (which take precedence), and
//! a user's own files (policy `geo.cloud_ranges`, `--cloud-ranges`). Such a claim is the
//! operator's word: [`Confidence::Medium`](crate::model::Confidence::Medium) alone, raised only
//! when physics confirms it (`judge::fusion`), and refutable by physics like any claim.

pub mod cloud;
pub mod geofeed;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use cloud::{CloudRanges, Provider, RangeError, RangeSet};

/// AWS's `ip-ranges.json`, shipped compressed (see `data/README.md` for its date and source).
static SHIPPED_AWS: &[u8] = include_bytes!("../../../data/cloud/aws-ip-ranges.json.zst");

/// One provider's file as kept in a data directory (and shipped, where it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeFile {
    pub provider: Provider,
    /// The file's name in the data directory's `cloud/` folder.
    pub name: &'static str,
    /// Where the provider publishes it; `None` where the address changes with each
    /// release (Azure's weekly `ServiceTags_Public_YYYYMMDD.json`), so it must be given.
    pub url: Option<&'static str>,
    /// Fewest prefixes a complete file has; an update with fewer is refused as truncated.
    pub min_prefixes: usize,
}

/// Every provider file, in the order they are asked.
pub const RANGE_FILES: [RangeFile; 6] = [
    RangeFile {
        provider: Provider::Aws,
        name: "aws-ip-ranges.json",
        url: Some("https://ip-ranges.amazonaws.com/ip-ranges.json"),
        min_prefixes: 5_000,
    },
    RangeFile {
        provider: Provider::Gcp,
        name: "gcp-cloud.json",
        url: Some("https://www.gstatic.com/ipranges/cloud.json"),
        min_prefixes: 500,
    },
    RangeFile {
        provider: Provider::Azure,
        name: "azure-service-tags.json",
        url: None,
        min_prefixes: 10_000,
    },
    RangeFile {
        provider: Provider::Oracle,
        name: "oracle-public_ip_ranges.json",
        url: Some("https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json"),
        min_prefixes: 300,
    },
    RangeFile {
        provider: Provider::Cloudflare,
        name: "cloudflare-ips-v4.txt",
        url: Some("https://www.cloudflare.com/ips-v4"),
        min_prefixes: 5,
    },
    RangeFile {
        provider: Provider::Cloudflare,
        name: "cloudflare-ips-v6.txt",
        url: Some("https://www.cloudflare.com/ips-v6"),
        min_prefixes: 3,
    },
];

impl RangeFile {
    /// The shipped copy, unpacked and read once per process: `watch` and a check of many
    /// policies load the ranges for every run, and the file never changes.
    pub fn shipped_set(&self) -> Option<Result<RangeSet, RangeError>> {
        static AWS: OnceLock<Result<RangeSet, RangeError>> = OnceLock::new();
        if self.name != "aws-ip-ranges.json" {
            return None;
        }
        let set = AWS.get_or_init(|| {
            let text = self.shipped().unwrap_or_else(|| Ok(String::new()))?;
            let name = format!("data/cloud/{} (shipped)", self.name);
            RangeSet::parse(&name, "shipped copy", &text)
        });
        Some(set.clone())
    }

    /// The copy shipped in the binary, decompressed, if this file is shipped.
    pub fn shipped(&self) -> Option<Result<String, RangeError>> {
        let packed = match self.name {
            "aws-ip-ranges.json" => SHIPPED_AWS,
            _ => return None,
        };
        let mut text = String::new();
        let read =
            zstd::stream::read::Decoder::new(packed).and_then(|mut d| d.read_to_string(&mut text));
        Some(read.map(|_| text).map_err(|e| RangeError {
            file: format!("data/cloud/{}.zst (shipped)", self.name),
            reason: format!("cannot be unpacked: {e}; rebuild residency"),
        }))
    }
}

/// The cloud ranges a run uses: for each provider file, the data directory's copy if there is
/// one, else the shipped copy; then `extra` (a user's own files), asked first.
pub fn load_cloud_ranges(
    data_dir: Option<&Path>,
    extra: &[PathBuf],
) -> Result<CloudRanges, RangeError> {
    let mut ranges = CloudRanges::default();
    for file in RANGE_FILES {
        let fresh = data_dir.map(|d| d.join("cloud").join(file.name));
        match fresh.filter(|p| p.is_file()) {
            Some(path) => {
                let text = read(&path)?;
                let origin = format!("updated copy {}", path.display());
                ranges.push(RangeSet::parse(
                    &path.display().to_string(),
                    &origin,
                    &text,
                )?);
            }
            None => {
                if let Some(set) = file.shipped_set() {
                    ranges.push(set?);
                }
            }
        }
    }
    for path in extra {
        let text = read(path)?;
        let origin = format!("user file {}", path.display());
        ranges.push(RangeSet::parse(
            &path.display().to_string(),
            &origin,
            &text,
        )?);
    }
    Ok(ranges)
}

fn read(path: &Path) -> Result<String, RangeError> {
    std::fs::read_to_string(path).map_err(|e| RangeError {
        file: path.display().to_string(),
        reason: format!("cannot be read: {e}; check the path, or run `residency data update`"),
    })
}
