//! The parts of a run document that only a combined run has (`residency combine`): the window
//! and the vantage runs it combines (top level), and for each address its anycast sites, the
//! countries where the disks overlap, and what each vantage measured and reaches (in the
//! address). A combined run is otherwise a run document like any other, so the history chains
//! it and every comparison and report reads it; the fields are absent from other runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::measure::vantage::{LocationKind, VantageKind};
use crate::model::{CountryCode, Verdict};
use crate::time::rfc3339;

/// The window the vantage runs were taken from: `since <= started_at < until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// As given, e.g. `1h`.
    pub duration: String,
    pub seconds: u64,
    #[serde(with = "rfc3339")]
    pub since: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub until: DateTime<Utc>,
}

/// One combined run of one vantage point, named by its id and hash in the history, so the
/// combined verdict can be traced to what each vantage measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinedVantage {
    /// The history's run id and seq of the vantage's run.
    pub run_id: i64,
    pub seq: i64,
    /// Its hash in the chain.
    pub hash: String,
    pub kind: VantageKind,
    pub label: String,
    pub country: Option<CountryCode>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// How the coordinates are known: declared by the host, or voted from databases.
    pub location: Option<LocationKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// The vantage run's own verdict.
    pub verdict: Verdict,
}

/// One site of an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// The one country the site can be in, when the disk holds only one.
    pub country: Option<CountryCode>,
    /// Every country within the site's disk.
    pub countries: Vec<CountryCode>,
    /// The vantage whose disk places the site.
    pub placed_by: String,
    /// The site's disk: its centre is that vantage.
    pub max_km: Option<f64>,
    /// Vantages whose disks overlap this site's and no other site's found: their traffic likely
    /// reaches it (it may reach a site no vantage placed).
    pub vantages: Vec<String>,
    pub verdict: Verdict,
}

/// One vantage's view of one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VantageMeasurement {
    pub vantage: String,
    pub verdict: Verdict,
    pub country: Option<CountryCode>,
    pub min_rtt_ms: Option<f64>,
    /// The disk's radius: `min_rtt_ms` × 100 km + slack.
    pub max_km: Option<f64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Indexes into `sites` of the sites this vantage may reach: one when its catchment is
    /// known, several when its disk overlaps more than one, none without a disk.
    pub sites: Vec<usize>,
}
