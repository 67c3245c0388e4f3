//! The run document: the complete, self-contained result of one check of one policy, and the
//! contract everything downstream reads. The history stores and hashes it as written,
//! `--format json` prints it, reports and comparisons read it back, so its field names are a
//! public contract (documented in README.md). Fields added after the first release default when
//! absent, so every recorded run stays readable by later versions.
//!
//! [`view`] is the lenient reading of a stored document that the history's index and the
//! comparisons share.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::measure::integrity::Integrity;
use crate::measure::resolve::Resolution;
use crate::measure::trace::TraceSettings;
use crate::measure::vantage::MeasuredFrom;
use crate::model::{Confidence, CountryCode, Evidence, Verdict};
use crate::policy::{Claim, PolicyId};
use crate::sources::evidence::{PathEvidence, RttEvidence};
use crate::sources::physics::Vantage;
use crate::sources::registry::RegistryRecord;
use crate::time::rfc3339;

pub mod combined;
pub mod view;

pub use combined::{CombinedVantage, Site, VantageMeasurement, Window};

/// The tool that produced a run, so a report can say which version judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn current() -> ToolInfo {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The policy as it stood when the run was made (policies change; the history must not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub id: PolicyId,
    pub title: Option<String>,
    pub vendor: Option<String>,
    pub file: String,
    pub allow: Vec<CountryCode>,
    pub deny: Vec<CountryCode>,
    /// Countries no path may cross (`transit.deny`).
    #[serde(default)]
    pub transit_deny: Vec<CountryCode>,
    pub claims: Vec<Claim>,
    /// `require.min_confidence`: the weakest evidence a verdict may rest on (absent from runs
    /// recorded before it was kept: low, the default).
    #[serde(default, skip_serializing_if = "is_low")]
    pub min_confidence: Confidence,
}

fn is_low(c: &Confidence) -> bool {
    *c == Confidence::Low
}

/// Counts for a quick look.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub endpoints: usize,
    pub compliant: usize,
    pub inconclusive: usize,
    pub violation: usize,
    pub addresses: usize,
    pub queries: usize,
}

impl Summary {
    /// The counts of `endpoints` by verdict, with the run's distinct `addresses` and `queries`.
    pub fn of(endpoints: &[EndpointResult], addresses: usize, queries: usize) -> Summary {
        let count = |v: Verdict| endpoints.iter().filter(|e| e.verdict == v).count();
        Summary {
            endpoints: endpoints.len(),
            compliant: count(Verdict::Compliant),
            inconclusive: count(Verdict::Inconclusive),
            violation: count(Verdict::Violation),
            addresses,
            queries,
        }
    }
}

/// One address an endpoint resolved to (or a literal address endpoint), with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressResult {
    pub ip: IpAddr,
    /// The country every source agrees on, or null.
    pub country: Option<CountryCode>,
    /// Every country any source named.
    pub countries: Vec<CountryCode>,
    pub evidence: Vec<Evidence>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// How many queries returned this address (0 for a literal address endpoint).
    pub seen: usize,
    /// Which resolver (and client subnet) returned it, e.g. `127.0.0.1:53` or `127.0.0.1:53 ecs=192.0.2.0/24`.
    pub via: Vec<String>,
    /// Reverse DNS names of the address (their location hints are in `evidence`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The registry record of the address's block (RDAP or WHOIS), when one answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryRecord>,
    // Fields added after the first release default when absent, so every recorded run stays
    // readable by later versions: history is never lost to a schema change.
    /// Combined runs only: two vantages' RTT disks cannot overlap (or all share no point), so
    /// the address answers from more than one place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anycast: Option<bool>,
    /// Combined runs only: the sites found (for an anycast address a lower bound on its
    /// sites, one per pairwise-disjoint disk; else the one site every disk holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<Site>>,
    /// Combined runs only: the countries where every vantage's disk overlaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intersection: Option<Vec<CountryCode>>,
    /// Combined runs only: what each vantage measured, and the sites it may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measured_from: Vec<VantageMeasurement>,
    /// How much the evidence is worth together (see `fusion`).
    #[serde(default)]
    pub confidence: Confidence,
    /// The evidence that decided the location.
    #[serde(default)]
    pub decided_by: Vec<String>,
    /// Unrefuted sources that name different countries.
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// The traced path, every hop located; null when probing is off.
    pub path: Option<PathEvidence>,
    /// Round-trip times and what physics makes of them; null when probing is off.
    pub rtt: Option<RttEvidence>,
    /// The HTTPS probes of the address (certificate, edge headers); absent when none was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<crate::measure::http::HttpProbe>,
}

/// One endpoint of the policy, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointResult {
    pub host: String,
    pub purpose: Option<String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub resolutions: Vec<Resolution>,
    pub addresses: Vec<AddressResult>,
}

/// The complete, self-contained result of one check of one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDocument {
    pub policy: PolicySnapshot,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub tool: ToolInfo,
    pub resolvers: Vec<String>,
    pub client_subnets: Vec<IpNetwork>,
    pub repeat: u32,
    /// Where the check ran from, when declared.
    pub vantage: Option<Vantage>,
    /// Who measured it: this machine or a remote probe, by a label stable across runs (absent
    /// from runs recorded before it existed: those were all local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_from: Option<MeasuredFrom>,
    /// How paths were traced; null when probing was off.
    pub trace: Option<TraceSettings>,
    /// Names of the location sources consulted, in order.
    pub sources: Vec<String>,
    /// What the canaries and the DNS provenance check found about this vantage point's
    /// network (absent from runs recorded before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
    pub summary: Summary,
    pub endpoints: Vec<EndpointResult>,
    /// What the device was captured contacting (`check --capture`), judged in this run; absent
    /// from runs without captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureSection>,
    /// Combined runs only (`residency combine`): the window the vantage runs were taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Combined runs only: the vantage runs combined, one per vantage point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<CombinedVantage>,
}

impl RunDocument {
    /// Was this run combined from other runs (`residency combine`)?
    pub fn is_combined(&self) -> bool {
        self.window.is_some()
    }
}

/// A device's own traffic, judged: the files it came from (with their SHA-256, so the run
/// proves which capture it judged), each destination with its verdict and bytes, and where the
/// bytes went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSection {
    pub files: Vec<CapturedFile>,
    /// Most bytes sent first.
    pub destinations: Vec<CapturedDestination>,
    /// Bytes the device sent to destinations located in each country.
    pub bytes_sent_by_country: BTreeMap<CountryCode, u64>,
    /// Bytes the device sent to destinations no source could place.
    pub bytes_sent_unlocated: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedFile {
    pub file: String,
    pub sha256: String,
    /// `pcap`, `pcapng`, `har`, `zeek_tsv` or `zeek_json`.
    pub format: String,
    /// Packets, HAR entries or Zeek records read.
    pub packets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedDestination {
    pub ip: IpAddr,
    pub names: Vec<String>,
    pub ports: Vec<String>,
    pub flows: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Where the run located the address (null: nowhere agreed).
    pub country: Option<CountryCode>,
    /// The address's verdict in this run.
    pub verdict: Verdict,
}
