//! `check --capture`: what a device was captured contacting, judged in the same run as the
//! policy's own endpoints. Every destination becomes a literal-address endpoint of the run (so
//! it is located, traced and judged like any other, and its verdict counts in the run's), and
//! the run document gains a `capture` section: the files with their SHA-256, each destination
//! with its verdict and bytes, and the bytes sent per country.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::measure::capture::{self, CaptureError, Discovery};
use crate::model::Verdict;
use crate::policy::{Endpoint, Policy, Target};
use crate::record::{CaptureSection, CapturedDestination, CapturedFile, EndpointResult};

/// Captures read once, for every policy of a `check`.
#[derive(Debug, Clone)]
pub struct CapturedTraffic {
    pub discovery: Discovery,
    files: Vec<CapturedFile>,
}

impl CapturedTraffic {
    /// Reads the captures, hashing each file as it is.
    pub fn read(paths: &[PathBuf]) -> Result<CapturedTraffic, CaptureError> {
        let discovery = capture::discover(paths)?;
        let mut files = Vec::with_capacity(paths.len());
        for (path, read) in paths.iter().zip(&discovery.captures) {
            files.push(CapturedFile {
                file: read.file.clone(),
                sha256: sha256(path)?,
                format: serde_json::to_value(read.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                packets: read.packets,
            });
        }
        Ok(CapturedTraffic { discovery, files })
    }

    /// `policy` with every captured destination it does not already list as an address.
    pub fn with_destinations(&self, mut policy: Policy) -> Policy {
        let listed: Vec<IpAddr> = policy
            .endpoints
            .iter()
            .filter_map(|e| match e.target {
                Target::Ip(ip) => Some(ip),
                Target::Host(_) => None,
            })
            .collect();
        for d in &self.discovery.destinations {
            if listed.contains(&d.ip) {
                continue;
            }
            let named = if d.names.is_empty() {
                String::new()
            } else {
                format!(" as {}", d.names.join(", "))
            };
            policy.endpoints.push(Endpoint {
                host: d.ip.to_string(),
                target: Target::Ip(d.ip),
                purpose: Some(format!(
                    "captured: {} bytes sent, {} received{named}",
                    d.bytes_sent, d.bytes_received
                )),
            });
        }
        policy
    }

    /// The run document's `capture` section, from the run's judged endpoints.
    pub fn section(&self, endpoints: &[EndpointResult]) -> CaptureSection {
        let judged: BTreeMap<IpAddr, (Option<crate::model::CountryCode>, Verdict)> = endpoints
            .iter()
            .flat_map(|e| &e.addresses)
            .map(|a| (a.ip, (a.country, a.verdict)))
            .collect();
        let mut by_country = BTreeMap::new();
        let mut unlocated = 0;
        let destinations = self
            .discovery
            .destinations
            .iter()
            .map(|d| {
                // An address the run could not measure is not compliant.
                let (country, verdict) = judged
                    .get(&d.ip)
                    .copied()
                    .unwrap_or((None, Verdict::Inconclusive));
                match country {
                    Some(c) => *by_country.entry(c).or_insert(0) += d.bytes_sent,
                    None => unlocated += d.bytes_sent,
                }
                CapturedDestination {
                    ip: d.ip,
                    names: d.names.clone(),
                    ports: d.ports.clone(),
                    flows: d.flows,
                    packets_sent: d.packets_sent,
                    packets_received: d.packets_received,
                    bytes_sent: d.bytes_sent,
                    bytes_received: d.bytes_received,
                    country,
                    verdict,
                }
            })
            .collect();
        CaptureSection {
            files: self.files.clone(),
            destinations,
            bytes_sent_by_country: by_country,
            bytes_sent_unlocated: unlocated,
        }
    }
}

fn sha256(path: &std::path::Path) -> Result<String, CaptureError> {
    let failed = |source| CaptureError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(failed)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(crate::text::hex(&hasher.finalize()))
}
