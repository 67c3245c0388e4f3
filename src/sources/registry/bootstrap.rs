//! RDAP bootstrap (RFC 9224): which registry's RDAP server answers for an address or an AS
//! number, from IANA's bootstrap files shipped in `data/rdap/` (provenance in `data/README.md`).
//!
//! Owns parsing those files and the longest-prefix match. Never sends anything: the files are
//! embedded so a lookup needs no extra request, and a stale file only costs a redirect.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use reqwest::Url;
use serde::Deserialize;

use super::RegistryError;

static SHIPPED_IPV4: &str = include_str!("../../../data/rdap/ipv4.json");
static SHIPPED_IPV6: &str = include_str!("../../../data/rdap/ipv6.json");
static SHIPPED_ASN: &str = include_str!("../../../data/rdap/asn.json");

/// One bootstrap file as IANA publishes it: `services` is a list of `[[entries], [urls]]`.
#[derive(Debug, Deserialize)]
struct BootstrapFile {
    publication: String,
    services: Vec<(Vec<String>, Vec<String>)>,
}

/// The three bootstrap registries, parsed.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    ipv4: Vec<(IpNetwork, Url)>,
    ipv6: Vec<(IpNetwork, Url)>,
    asn: Vec<(u32, u32, Url)>,
    /// `publication` of the ipv4, ipv6 and asn files, to say how old an answer may be.
    pub publications: [String; 3],
}

impl Bootstrap {
    /// The files shipped in the binary.
    pub fn shipped() -> Result<Bootstrap, RegistryError> {
        Bootstrap::from_json(SHIPPED_IPV4, SHIPPED_IPV6, SHIPPED_ASN)
    }

    /// The files in use: the three that `data update` wrote into `data_dir/rdap/` when all
    /// three are there and parse, else the shipped ones.
    pub fn current(data_dir: Option<&Path>) -> Result<Bootstrap, RegistryError> {
        let read = |name: &str| std::fs::read_to_string(data_dir?.join("rdap").join(name)).ok();
        if let (Some(v4), Some(v6), Some(asn)) =
            (read("ipv4.json"), read("ipv6.json"), read("asn.json"))
        {
            match Bootstrap::from_json(&v4, &v6, &asn) {
                Ok(updated) => return Ok(updated),
                Err(e) => {
                    tracing::warn!(error = %e, "updated RDAP bootstrap unusable; using the shipped one")
                }
            }
        }
        Bootstrap::shipped()
    }

    /// The size of shipped file `i` (ipv4, ipv6, asn), for `data status`.
    pub fn shipped_size(i: usize) -> usize {
        [SHIPPED_IPV4, SHIPPED_IPV6, SHIPPED_ASN]
            .get(i)
            .map_or(0, |s| s.len())
    }

    /// Checks a fresh copy of bootstrap file `name` before it is installed: it parses, and
    /// names every registry (at least five services).
    pub fn check_file(name: &str, text: &str) -> Result<String, String> {
        let file = parse_file(name, text).map_err(|e| e.to_string())?;
        if name != "asn.json" {
            parse_ip_file(name, text).map_err(|e| e.to_string())?;
        }
        if file.services.len() < 5 {
            return Err(format!(
                "names {} registries where IANA's file names all five: not the whole file",
                file.services.len()
            ));
        }
        Ok(format!(
            "{} services, published {}",
            file.services.len(),
            file.publication
        ))
    }

    /// Parse bootstrap files given as JSON text (e.g. fresher copies from IANA).
    pub fn from_json(ipv4: &str, ipv6: &str, asn: &str) -> Result<Bootstrap, RegistryError> {
        let (ipv4, pub4) = parse_ip_file("ipv4.json", ipv4)?;
        let (ipv6, pub6) = parse_ip_file("ipv6.json", ipv6)?;
        let file: BootstrapFile = parse_file("asn.json", asn)?;
        let mut ranges = Vec::new();
        for (entries, urls) in &file.services {
            let Some(url) = preferred_url(urls) else {
                continue;
            };
            for entry in entries {
                let (low, high) = entry.split_once('-').unwrap_or((entry, entry));
                match (low.trim().parse::<u32>(), high.trim().parse::<u32>()) {
                    (Ok(low), Ok(high)) if low <= high => ranges.push((low, high, url.clone())),
                    _ => return Err(bad_entry("asn.json", entry)),
                }
            }
        }
        Ok(Bootstrap {
            ipv4,
            ipv6,
            asn: ranges,
            publications: [pub4, pub6, file.publication],
        })
    }

    /// Base URL of the RDAP server for `ip` (the most specific prefix wins), or `None` for
    /// space no registry holds (private, documentation, reserved, unallocated).
    pub fn rdap_base_for_ip(&self, ip: IpAddr) -> Option<&Url> {
        let table = if ip.is_ipv4() { &self.ipv4 } else { &self.ipv6 };
        table
            .iter()
            .filter(|(net, _)| net.contains(ip))
            .max_by_key(|(net, _)| net.prefix())
            .map(|(_, url)| url)
    }

    /// Base URL of the RDAP server for AS number `asn`.
    pub fn rdap_base_for_asn(&self, asn: u32) -> Option<&Url> {
        self.asn
            .iter()
            .find(|(low, high, _)| (*low..=*high).contains(&asn))
            .map(|(_, _, url)| url)
    }
}

fn parse_file(name: &str, text: &str) -> Result<BootstrapFile, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::Bootstrap {
        file: name.to_string(),
        reason: e.to_string(),
    })
}

fn parse_ip_file(name: &str, text: &str) -> Result<(Vec<(IpNetwork, Url)>, String), RegistryError> {
    let file = parse_file(name, text)?;
    let mut table = Vec::new();
    for (entries, urls) in &file.services {
        let Some(url) = preferred_url(urls) else {
            continue;
        };
        for entry in entries {
            let net = IpNetwork::from_str(entry).map_err(|_| bad_entry(name, entry))?;
            table.push((net, url.clone()));
        }
    }
    Ok((table, file.publication))
}

/// The first HTTPS URL (registries list an http:// twin after it), normalised to end in `/`
/// so that joining `ip/...` keeps the registry's path prefix.
fn preferred_url(urls: &[String]) -> Option<Url> {
    let chosen = urls
        .iter()
        .find(|u| u.starts_with("https://"))
        .or_else(|| urls.first())?;
    super::rdap::normalise_base(chosen).ok()
}

fn bad_entry(file: &str, entry: &str) -> RegistryError {
    RegistryError::Bootstrap {
        file: file.to_string(),
        reason: format!("entry `{entry}` is not a prefix or AS range"),
    }
}
