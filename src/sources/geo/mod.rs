//! Geolocation from offline MaxMind-format databases.
//!
//! Owns turning an IP address into [`Evidence`]: one piece per database, including a database
//! that had no record for the address, so disagreement and ignorance both stay visible. Also
//! owns the shipped database (registry/geofeed country data embedded in the binary) and the
//! errors for databases that cannot be used.

mod mmdb;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use mmdb::MmdbDatabase;

use crate::model::Evidence;

/// A source of location evidence for an address. The real one is [`MmdbDatabase`].
pub trait Locate: Send + Sync {
    /// Name of the source as it appears in evidence and reports.
    fn name(&self) -> &str;
    /// What this source says about `ip`. A missing record is evidence with `country: None`.
    fn locate(&self, ip: IpAddr) -> Evidence;
}

/// File name of the shipped database, used as its source name in evidence.
pub const SHIPPED_DATABASE_NAME: &str = "geo-whois-asn-country.mmdb";

/// The shipped database (ip-location-db geo-whois-asn-country; see `data/README.md` for its
/// provenance and licence). Embedded so the binary works from any directory without the repo.
static SHIPPED_DATABASE: &[u8] = include_bytes!("../../../data/geo-whois-asn-country.mmdb");

/// The shipped database's size in bytes, for `data status`.
pub const SHIPPED_DATABASE_SIZE: usize = SHIPPED_DATABASE.len();

/// The database shipped inside the binary: country of each block as declared in registry
/// (WHOIS/ASN) data and geofeeds, which is where the holder says it is, not where it is.
pub fn default_database() -> Result<MmdbDatabase, GeoError> {
    MmdbDatabase::from_static(SHIPPED_DATABASE_NAME, SHIPPED_DATABASE)
}

/// A database that cannot be used. Each message names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error(
        "database not found: {}; pass an existing .mmdb in the policy's geo.databases or remove \
         the key to use the shipped one",
        .path.display()
    )]
    NotFound { path: PathBuf },
    #[error(
        "cannot read database {}: {source}; check that it is a readable file, or remove it from \
         the policy's geo.databases",
        .path.display()
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `location` is the path for files and the given name for in-memory databases.
    #[error(
        "{location} is not a valid MaxMind DB (.mmdb): {source}; pass a MaxMind-format database \
         such as GeoLite2-Country.mmdb, dbip-country-lite.mmdb or an ip-location-db .mmdb"
    )]
    Invalid {
        location: String,
        #[source]
        source: maxminddb::MaxMindDbError,
    },
}

impl GeoError {
    /// Point an error about an in-memory database at the file it was read from.
    fn with_location(self, path: &Path) -> GeoError {
        match self {
            GeoError::Invalid { source, .. } => GeoError::Invalid {
                location: path.display().to_string(),
                source,
            },
            other => other,
        }
    }
}

/// Several sources asked in a fixed order; every source answers for every address.
#[derive(Default)]
pub struct Geolocator {
    sources: Vec<Box<dyn Locate>>,
}

impl Geolocator {
    /// A geolocator asking `sources` in the given order.
    pub fn new(sources: Vec<Box<dyn Locate>>) -> Geolocator {
        Geolocator { sources }
    }

    /// Only the shipped database.
    pub fn shipped() -> Result<Geolocator, GeoError> {
        Ok(Geolocator::new(vec![Box::new(default_database()?)]))
    }

    /// Open every database in `paths`, in order; the first unusable one is the error.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Geolocator, GeoError> {
        let mut sources: Vec<Box<dyn Locate>> = Vec::with_capacity(paths.len());
        for path in paths {
            sources.push(Box::new(MmdbDatabase::open(path.as_ref())?));
        }
        Ok(Geolocator::new(sources))
    }

    /// Add a source after the existing ones.
    pub fn push(&mut self, source: Box<dyn Locate>) {
        self.sources.push(source);
    }

    /// Source names, in the order they are asked.
    pub fn source_names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// One piece of evidence per source, in source order, whatever each one said; agreement is
    /// judged later, so nothing is merged or dropped here.
    ///
    /// An address of special-purpose space that many networks use at once (RFC 1918 private,
    /// shared CGN space, link-local, IPv6 unique-local) has no place: whatever a database says
    /// of it stays listed but is refuted, so a probe's home router is never "located" in the
    /// country some database assigned that range to. Loopback is left alone: it is this
    /// machine, which a lab database may place on purpose.
    pub fn locate_all(&self, ip: IpAddr) -> Vec<Evidence> {
        let mut evidence: Vec<Evidence> = self.sources.iter().map(|s| s.locate(ip)).collect();
        if let Some(space) = special_purpose(ip) {
            for e in evidence.iter_mut().filter(|e| e.country.is_some()) {
                e.refuted = Some(format!(
                    "{}: {ip} is {space}, used by many networks at once: no source can place it",
                    e.source
                ));
            }
        }
        evidence
    }
}

/// The special-purpose space `ip` is in, when it is space that no single place owns
/// (loopback is not: see [`Geolocator::locate_all`]).
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_private() {
                Some("private-use address space (RFC 1918)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared address space for carrier-grade NAT (RFC 6598)")
            } else if v4.is_link_local() {
                Some("link-local address space")
            } else if v4.is_unspecified() || v4.is_broadcast() {
                Some("not a host address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if let Some(v4) = v6.to_ipv4_mapped() {
                special_purpose(IpAddr::V4(v4))
            } else if v6.is_unspecified() {
                Some("not a host address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local address space (RFC 4193)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local address space")
            } else {
                None
            }
        }
    }
}

impl fmt::Debug for Geolocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Geolocator")
            .field("sources", &self.source_names())
            .finish()
    }
}
