//! Cloud providers' published IP ranges: which region each prefix of AWS, Google Cloud, Azure
//! (public cloud), Oracle Cloud and Cloudflare belongs to, read from the providers' own files.
//!
//! Owns the five formats (AWS `ip-ranges.json`, Google `cloud.json`, Azure Service Tags,
//! Oracle `public_ip_ranges.json`, Cloudflare's `ips-v4`/`ips-v6` lists), the region table
//! (`data/cloud-regions.csv`: each region's country and city), longest-prefix lookup, and the
//! evidence a match gives. A prefix the provider lists as `GLOBAL` (AWS), `global` (Google),
//! without a region (Azure's global tags) or as anycast (all of Cloudflare) is recorded as
//! "anycast / no fixed location": never as a country, since the provider itself says it is
//! served from many places.
//!
//! **What this evidence means.** The operator of the machine declares where the prefix is
//! used; it is the operator's word (medium confidence), not a measurement, and physics checks
//! its city like any other claim. AWS Local Zones and Wavelength Zones (`network_border_group`
//! `af-south-1-los-1`: Lagos, not the parent region's Cape Town) are placed at the zone's own
//! city, read from the IATA code in the group's name.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use prefix_trie::PrefixMap;
use serde::Deserialize;

use crate::model::{Confidence, Coordinates, CountryCode, Evidence, SourceKind};
use crate::sources::ptr::Dictionary;

/// How far from a region's city its data centres may be: a region is a metro area of
/// buildings tens of kilometres apart (us-east-1 spans Loudoun and Prince William counties).
pub const REGION_ACCURACY_KM: u32 = 100;

const REGIONS_CSV: &str = include_str!("../../../data/cloud-regions.csv");

/// The region table's size in bytes, for `data status`.
pub const REGIONS_SIZE: usize = REGIONS_CSV.len();

/// A cloud provider whose published ranges are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Aws,
    Gcp,
    Azure,
    Oracle,
    Cloudflare,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Aws,
        Provider::Gcp,
        Provider::Azure,
        Provider::Oracle,
        Provider::Cloudflare,
    ];

    /// The key used in `data/cloud-regions.csv`, file names and the command line.
    pub fn key(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
            Provider::Oracle => "oracle",
            Provider::Cloudflare => "cloudflare",
        }
    }

    /// The evidence source name: the provider's file, as an auditor would ask for it.
    pub fn source(self) -> &'static str {
        match self {
            Provider::Aws => "aws-ip-ranges",
            Provider::Gcp => "gcp-cloud-ranges",
            Provider::Azure => "azure-service-tags",
            Provider::Oracle => "oracle-ip-ranges",
            Provider::Cloudflare => "cloudflare-ips",
        }
    }

    /// The provider's name in prose.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "AWS",
            Provider::Gcp => "Google Cloud",
            Provider::Azure => "Azure",
            Provider::Oracle => "Oracle Cloud",
            Provider::Cloudflare => "Cloudflare",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a provider's file says of one prefix (merged over the file's entries for it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Declared {
    /// The region, as the provider writes it; `None`: anycast / global, no fixed location.
    pub region: Option<String>,
    /// AWS's `network_border_group`, when it differs from the region (a Local or Wavelength Zone).
    pub border_group: Option<String>,
    /// Services (AWS, Google), tag names (Azure) or tags (Oracle) listing the prefix.
    pub services: BTreeSet<String>,
    /// Some entry for the prefix names no region (global, anycast, or Azure's region-less
    /// aggregate tags such as `AzureCloud`).
    pub global: bool,
    /// Other regions other entries give for the same prefix: the file contradicts itself.
    pub other_regions: BTreeSet<String>,
}

/// One provider's published ranges, as read from one file.
#[derive(Debug, Clone)]
pub struct RangeSet {
    pub provider: Provider,
    /// The file's own publication date or version (`createDate`, `creationTime`,
    /// `last_updated_timestamp`, Azure's `changeNumber`), as written.
    pub published: Option<String>,
    /// Where the file came from: `shipped`, the data directory, or a user's path.
    pub origin: String,
    v4: PrefixMap<Ipv4Network, Declared>,
    v6: PrefixMap<Ipv6Network, Declared>,
}

/// A range file that cannot be used; the message names the file, where, and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct RangeError {
    pub file: String,
    pub reason: String,
}

impl RangeSet {
    /// How many prefixes the file lists (IPv4, IPv6).
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Every distinct region the file names (for the region table's test, and `data status`).
    pub fn regions(&self) -> BTreeSet<String> {
        self.v4
            .iter()
            .map(|(_, d)| d)
            .chain(self.v6.iter().map(|(_, d)| d))
            .filter_map(|d| d.region.clone())
            .collect()
    }

    /// The most specific prefix holding `ip`, and what is declared of it.
    pub fn lookup(&self, ip: IpAddr) -> Option<(IpNetwork, &Declared)> {
        match ip {
            IpAddr::V4(v4) => {
                let host = Ipv4Network::new(v4, 32).ok()?;
                self.v4
                    .get_lpm(&host)
                    .map(|(net, d)| (IpNetwork::V4(net), d))
            }
            IpAddr::V6(v6) => {
                let host = Ipv6Network::new(v6, 128).ok()?;
                self.v6
                    .get_lpm(&host)
                    .map(|(net, d)| (IpNetwork::V6(net), d))
            }
        }
    }

    /// Reads a provider's file. `name` is used in errors and to tell Cloudflare's plain lists
    /// (which name no provider inside) from other text. The format is recognised from the
    /// content: the JSON files' top-level keys differ per provider.
    pub fn parse(name: &str, origin: &str, text: &str) -> Result<RangeSet, RangeError> {
        let err = |reason: String| RangeError {
            file: name.to_string(),
            reason,
        };
        let text = text.trim_start_matches('\u{feff}');
        let mut set = if text.trim_start().starts_with('{') {
            parse_json(text).map_err(err)?
        } else {
            parse_lines(name, text).map_err(err)?
        };
        set.origin = origin.to_string();
        if set.v4.len() + set.v6.len() == 0 {
            return Err(RangeError {
                file: name.to_string(),
                reason: format!(
                    "lists no prefixes: not a usable {} range file; fetch it again",
                    set.provider
                ),
            });
        }
        Ok(set)
    }

    fn new(provider: Provider, published: Option<String>) -> RangeSet {
        RangeSet {
            provider,
            published,
            origin: String::new(),
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
        }
    }

    /// Adds one entry; entries for the same prefix merge, and a regional entry wins over a
    /// global one (Azure lists a prefix in `AzureCloud` and in `AzureCloud.centralindia`).
    fn add(
        &mut self,
        prefix: &str,
        region: Option<&str>,
        border_group: Option<&str>,
        service: Option<&str>,
    ) -> Result<(), String> {
        let net: IpNetwork = prefix
            .trim()
            .parse()
            .map_err(|e| format!("`{prefix}` is not a prefix: {e}"))?;
        let region = region
            .map(str::trim)
            .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("global"));
        let merge = |d: &mut Declared| {
            match (d.region.as_deref(), region) {
                (_, None) => d.global = true,
                (None, Some(r)) => {
                    d.region = Some(r.to_string());
                    d.border_group = None;
                }
                (Some(have), Some(r)) if have != r => {
                    d.other_regions.insert(r.to_string());
                }
                _ => {}
            }
            if d.region.as_deref() == region
                && let Some(group) = border_group.map(str::trim)
                && Some(group) != region
                && !group.is_empty()
                && !group.eq_ignore_ascii_case("global")
            {
                d.border_group = Some(group.to_string());
            }
            if let Some(service) = service.map(str::trim).filter(|s| !s.is_empty()) {
                d.services.insert(service.to_string());
            }
        };
        match net {
            IpNetwork::V4(n) => {
                let key = Ipv4Network::new(n.network(), n.prefix()).map_err(|e| e.to_string())?;
                merge(self.v4.entry(key).or_default());
            }
            IpNetwork::V6(n) => {
                let key = Ipv6Network::new(n.network(), n.prefix()).map_err(|e| e.to_string())?;
                merge(self.v6.entry(key).or_default());
            }
        }
        Ok(())
    }
}

// --- The providers' formats: only the fields used. ---

#[derive(Deserialize)]
struct AwsFile {
    #[serde(rename = "createDate")]
    create_date: Option<String>,
    #[serde(default)]
    prefixes: Vec<AwsPrefix>,
    #[serde(default)]
    ipv6_prefixes: Vec<AwsPrefix>,
}

#[derive(Deserialize)]
struct AwsPrefix {
    #[serde(alias = "ipv6_prefix")]
    ip_prefix: String,
    region: Option<String>,
    service: Option<String>,
    network_border_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcpFile {
    creation_time: Option<String>,
    prefixes: Vec<GcpPrefix>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcpPrefix {
    ipv4_prefix: Option<String>,
    ipv6_prefix: Option<String>,
    service: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureFile {
    change_number: Option<u64>,
    cloud: Option<String>,
    values: Vec<AzureTag>,
}

#[derive(Deserialize)]
struct AzureTag {
    name: String,
    properties: AzureProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureProperties {
    region: Option<String>,
    #[serde(default)]
    address_prefixes: Vec<String>,
}

#[derive(Deserialize)]
struct OracleFile {
    last_updated_timestamp: Option<String>,
    regions: Vec<OracleRegion>,
}

#[derive(Deserialize)]
struct OracleRegion {
    region: String,
    cidrs: Vec<OracleCidr>,
}

#[derive(Deserialize)]
struct OracleCidr {
    cidr: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// Which provider's JSON this is, from its top-level keys.
fn parse_json(text: &str) -> Result<RangeSet, String> {
    let whole: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not JSON at line {}, column {}: {e}", e.line(), e.column()))?;
    let has = |k: &str| whole.get(k).is_some();
    let (aws, gcp) = (
        has("createDate") || has("ipv6_prefixes"),
        has("creationTime"),
    );
    let azure = has("values") && has("changeNumber");
    let oracle = has("regions") && has("last_updated_timestamp");
    let bad = |provider: Provider, e: serde_json::Error| {
        format!("not a {provider} range file: {e}; fetch the provider's file again")
    };
    if aws {
        let file: AwsFile = serde_json::from_value(whole).map_err(|e| bad(Provider::Aws, e))?;
        let mut set = RangeSet::new(Provider::Aws, file.create_date);
        for p in file.prefixes.iter().chain(&file.ipv6_prefixes) {
            set.add(
                &p.ip_prefix,
                p.region.as_deref(),
                p.network_border_group.as_deref(),
                p.service.as_deref(),
            )?;
        }
        Ok(set)
    } else if gcp {
        let file: GcpFile = serde_json::from_value(whole).map_err(|e| bad(Provider::Gcp, e))?;
        let mut set = RangeSet::new(Provider::Gcp, file.creation_time);
        for p in &file.prefixes {
            let Some(prefix) = p.ipv4_prefix.as_ref().or(p.ipv6_prefix.as_ref()) else {
                continue;
            };
            set.add(prefix, p.scope.as_deref(), None, p.service.as_deref())?;
        }
        Ok(set)
    } else if azure {
        let file: AzureFile = serde_json::from_value(whole).map_err(|e| bad(Provider::Azure, e))?;
        if let Some(cloud) = file
            .cloud
            .as_deref()
            .filter(|c| !c.eq_ignore_ascii_case("public"))
        {
            return Err(format!(
                "is the Azure `{cloud}` cloud's file; the region table covers the public cloud \
                 (ServiceTags_Public_*.json)"
            ));
        }
        let mut set = RangeSet::new(
            Provider::Azure,
            file.change_number.map(|n| format!("change {n}")),
        );
        for tag in &file.values {
            for prefix in &tag.properties.address_prefixes {
                set.add(
                    prefix,
                    tag.properties.region.as_deref(),
                    None,
                    Some(&tag.name),
                )?;
            }
        }
        Ok(set)
    } else if oracle {
        let file: OracleFile =
            serde_json::from_value(whole).map_err(|e| bad(Provider::Oracle, e))?;
        let mut set = RangeSet::new(Provider::Oracle, file.last_updated_timestamp);
        for region in &file.regions {
            for cidr in &region.cidrs {
                let tags = cidr.tags.join(",");
                set.add(&cidr.cidr, Some(&region.region), None, Some(&tags))?;
            }
        }
        Ok(set)
    } else {
        Err(
            "is JSON but none of the known range files (AWS ip-ranges.json, Google cloud.json, \
             Azure ServiceTags_Public_*.json, Oracle public_ip_ranges.json)"
                .into(),
        )
    }
}

/// Cloudflare's plain lists: one prefix per line, every one anycast.
fn parse_lines(name: &str, text: &str) -> Result<RangeSet, String> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    if !base.contains("cloudflare") && !base.starts_with("ips-v") {
        return Err(
            "is a plain list of prefixes, which names no provider; only Cloudflare publishes \
             its ranges so: name the file cloudflare-ips-v4.txt / cloudflare-ips-v6.txt"
                .into(),
        );
    }
    let mut set = RangeSet::new(Provider::Cloudflare, None);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        set.add(line, None, None, None)
            .map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(set)
}

/// Where a region is: its country and city, from `data/cloud-regions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub country: CountryCode,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// The shipped region table, keyed by (provider key, region); `None`: a region the provider
/// has not said the place of.
pub fn regions() -> Result<&'static RegionTable, String> {
    static TABLE: OnceLock<Result<RegionTable, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| parse_regions(REGIONS_CSV))
        .as_ref()
        .map_err(Clone::clone)
}

/// Regions by (provider key, region name).
pub type RegionTable = HashMap<(String, String), Option<Site>>;

fn parse_regions(text: &str) -> Result<RegionTable, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = |what: &str| format!("data/cloud-regions.csv line {}: {what}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [provider, region, country, city, lat, lon] = cols[..] else {
            return Err(bad("want provider,region,country,city,latitude,longitude"));
        };
        // A region whose place the provider has not published: known, deliberately unplaced.
        if country.is_empty() && city.is_empty() && lat.is_empty() && lon.is_empty() {
            out.insert((provider.to_string(), region.to_string()), None);
            continue;
        }
        let site = Site {
            country: country.parse().map_err(|e| bad(&format!("{e}")))?,
            city: city.to_string(),
            latitude: lat.parse().map_err(|_| bad("latitude is not a number"))?,
            longitude: lon.parse().map_err(|_| bad("longitude is not a number"))?,
        };
        out.insert((provider.to_string(), region.to_string()), Some(site));
    }
    Ok(out)
}

/// Where a match is, as far as the provider's file and the tables say.
#[derive(Debug, Clone, PartialEq)]
pub enum Placed {
    /// In a region (or a zone of one) that the tables place.
    At(Site),
    /// The provider says the prefix has no fixed location.
    Anycast,
    /// The provider names a region whose place it has not published.
    Unplaced(String),
    /// The provider names a region the table does not know (newer than the table).
    Unmapped(String),
    /// The file lists the prefix in several places (two regions, or a region and global):
    /// which one serves an address is not declared.
    Conflict(String),
}

/// Places what `provider` declares of a prefix.
pub fn place(provider: Provider, declared: &Declared) -> Placed {
    let Some(region) = declared.region.as_deref() else {
        return Placed::Anycast;
    };
    if !declared.other_regions.is_empty() {
        let others: Vec<&str> = declared.other_regions.iter().map(String::as_str).collect();
        return Placed::Conflict(format!("in region {region} and in {}", others.join(", ")));
    }
    // Azure's region-less tags (AzureCloud, Storage ...) aggregate the regional ones; the
    // other providers' global entries are anycast, which a region does not override.
    if declared.global && provider != Provider::Azure {
        return Placed::Conflict(format!("in region {region} and as global (anycast)"));
    }
    if let Some(group) = declared.border_group.as_deref() {
        return match zone_site(group) {
            Some(site) => Placed::At(site),
            // A zone is elsewhere than its parent region (Lagos for af-south-1): unknown, not
            // the parent's place.
            None => Placed::Unplaced(format!("{region} (zone {group})")),
        };
    }
    let key = (provider.key().to_string(), region.to_string());
    match regions().ok().and_then(|t| t.get(&key)) {
        Some(Some(site)) => Placed::At(site.clone()),
        Some(None) => Placed::Unplaced(region.to_string()),
        None => Placed::Unmapped(region.to_string()),
    }
}

/// An AWS Local or Wavelength Zone's city, from the IATA code in its border group's name
/// (`us-east-1-bos-1`, `us-east-1-wl1-bos-wlz-1`).
fn zone_site(group: &str) -> Option<Site> {
    let dictionary = Dictionary::shipped().ok()?;
    group
        .split('-')
        .skip(3)
        .filter(|t| t.len() == 3 && t.chars().all(|c| c.is_ascii_alphabetic()) && *t != "wlz")
        // A metro code (BUE, CHI, NYC, WAS) or an airport (BOS, LOS).
        .find_map(|code| dictionary.metro(code).or_else(|| dictionary.airport(code)))
        .map(|p| Site {
            country: p.country,
            city: p.city.clone(),
            latitude: p.latitude,
            longitude: p.longitude,
        })
}

/// Every provider's ranges loaded, asked as one source.
#[derive(Debug, Clone, Default)]
pub struct CloudRanges {
    sets: Vec<RangeSet>,
}

/// The source name of the cloud ranges together, for an address none of them lists.
pub const CLOUD_RANGES: &str = "cloud-ranges";

impl CloudRanges {
    pub fn new(sets: Vec<RangeSet>) -> CloudRanges {
        CloudRanges { sets }
    }

    pub fn sets(&self) -> &[RangeSet] {
        &self.sets
    }

    /// Adds a set; a later set for the same provider is asked before an earlier one.
    pub fn push(&mut self, set: RangeSet) {
        self.sets.push(set);
    }

    /// What the providers' files say of `ip`: the most specific listing across providers (a
    /// user's own copy first), as one piece of evidence.
    pub fn evidence(&self, ip: IpAddr) -> Evidence {
        // Later sets (a user's own files) first; of equally specific prefixes the first wins.
        let best = self
            .sets
            .iter()
            .rev()
            .filter_map(|set| set.lookup(ip).map(|(net, d)| (set, net, d)))
            .fold(
                None,
                |best: Option<(&RangeSet, IpNetwork, &Declared)>, found| match best {
                    Some(b) if b.1.prefix() >= found.1.prefix() => Some(b),
                    _ => Some(found),
                },
            );
        let Some((set, net, declared)) = best else {
            let asked: Vec<String> = self.sets.iter().map(describe_set).collect();
            return Evidence::unlocated(
                CLOUD_RANGES,
                SourceKind::OperatorDeclared,
                if asked.is_empty() {
                    "no cloud range file is loaded (`residency data status` lists them)".into()
                } else {
                    format!("in no published cloud range ({})", asked.join("; "))
                },
            );
        };
        let provider = set.provider;
        let services = if declared.services.is_empty() {
            String::new()
        } else {
            let list: Vec<&str> = declared
                .services
                .iter()
                .take(6)
                .map(String::as_str)
                .collect();
            let more = declared.services.len().saturating_sub(list.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(", for {}{more}", list.join(", "))
        };
        let file = describe_set(set);
        let mut evidence = Evidence::unlocated(
            provider.source(),
            SourceKind::OperatorDeclared,
            String::new(),
        );
        match place(provider, declared) {
            Placed::At(site) => {
                let zone = match &declared.border_group {
                    Some(group) => format!(" (zone {group})"),
                    None => String::new(),
                };
                evidence.detail = format!(
                    "{provider} lists {net} in region {}{zone}: {}, {}{services}; {file}",
                    declared.region.as_deref().unwrap_or_default(),
                    site.city,
                    site.country
                );
                evidence.country = Some(site.country);
                evidence.confidence = Confidence::Medium;
                evidence.coordinates = Some(Coordinates {
                    latitude: site.latitude,
                    longitude: site.longitude,
                    accuracy_km: Some(REGION_ACCURACY_KM),
                });
                evidence.city = Some(site.city);
            }
            Placed::Anycast => {
                evidence.detail = format!(
                    "{provider} lists {net} as global: anycast / no fixed location{services}; \
                     {file}"
                );
            }
            Placed::Conflict(why) => {
                evidence.detail = format!(
                    "{provider} lists {net} {why}: its file does not say which serves this \
                     address{services}; {file}"
                );
            }
            Placed::Unplaced(region) => {
                evidence.detail = format!(
                    "{provider} lists {net} in region {region}, but has not published where \
                     that region is{services}; {file}"
                );
            }
            Placed::Unmapped(region) => {
                evidence.detail = format!(
                    "{provider} lists {net} in region {region}, which is newer than \
                     residency's region table{services}; {file}"
                );
            }
        }
        evidence
    }
}

fn describe_set(set: &RangeSet) -> String {
    match &set.published {
        Some(date) => format!("{} of {date}, {}", set.provider.source(), set.origin),
        None => format!("{}, {}", set.provider.source(), set.origin),
    }
}

impl crate::sources::geo::Locate for CloudRanges {
    fn name(&self) -> &str {
        CLOUD_RANGES
    }

    fn locate(&self, ip: IpAddr) -> Evidence {
        self.evidence(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = r#"{"syncToken":"1","createDate":"2025-10-31-07-08-41","prefixes":[
        {"ip_prefix":"13.232.0.0/14","region":"ap-south-1","service":"AMAZON","network_border_group":"ap-south-1"},
        {"ip_prefix":"13.232.0.0/14","region":"ap-south-1","service":"EC2","network_border_group":"ap-south-1"},
        {"ip_prefix":"13.232.4.0/24","region":"af-south-1","service":"EC2","network_border_group":"af-south-1-los-1"},
        {"ip_prefix":"52.94.0.0/16","region":"GLOBAL","service":"AMAZON","network_border_group":"GLOBAL"}],
        "ipv6_prefixes":[{"ipv6_prefix":"2406:da1a::/36","region":"ap-south-1","service":"AMAZON","network_border_group":"ap-south-1"}]}"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_most_specific_prefix_decides_and_zones_are_placed_at_their_city() {
        let set = RangeSet::parse("ip-ranges.json", "test", AWS).expect("parses");
        assert_eq!(set.counts(), (3, 1));
        assert_eq!(set.published.as_deref(), Some("2025-10-31-07-08-41"));
        let ranges = CloudRanges::new(vec![set]);
        let mumbai = ranges.evidence(ip("13.233.1.1"));
        assert_eq!(mumbai.country, "IN".parse().ok());
        assert_eq!(mumbai.confidence, Confidence::Medium);
        assert_eq!(mumbai.kind, SourceKind::OperatorDeclared);
        assert!(
            mumbai.detail.contains("13.232.0.0/14 in region ap-south-1"),
            "{}",
            mumbai.detail
        );
        assert!(mumbai.detail.contains("AMAZON, EC2"), "{}", mumbai.detail);
        let lagos = ranges.evidence(ip("13.232.4.9"));
        assert_eq!(lagos.country, "NG".parse().ok(), "{}", lagos.detail);
        let global = ranges.evidence(ip("52.94.1.1"));
        assert_eq!(global.country, None);
        assert!(
            global.detail.contains("anycast / no fixed location"),
            "{}",
            global.detail
        );
        assert_eq!(
            ranges.evidence(ip("2406:da1a::1")).country,
            "IN".parse().ok()
        );
        let outside = ranges.evidence(ip("192.0.2.1"));
        assert_eq!(
            (outside.country, outside.source.as_str()),
            (None, CLOUD_RANGES)
        );
    }

    #[test]
    fn contradictions_and_unknown_zones_are_not_placed() {
        let text = r#"{"createDate":"2025-10-31-07-08-41","prefixes":[
            {"ip_prefix":"198.51.100.0/24","region":"ap-south-1","service":"EC2","network_border_group":"ap-south-1"},
            {"ip_prefix":"198.51.100.0/24","region":"GLOBAL","service":"CLOUDFRONT","network_border_group":"GLOBAL"},
            {"ip_prefix":"203.0.113.0/24","region":"ap-south-1","service":"EC2","network_border_group":"ap-south-1"},
            {"ip_prefix":"203.0.113.0/24","region":"eu-west-1","service":"EC2","network_border_group":"eu-west-1"},
            {"ip_prefix":"192.0.2.0/24","region":"us-east-1","service":"EC2","network_border_group":"us-east-1-bue-1"},
            {"ip_prefix":"192.0.2.128/25","region":"us-east-1","service":"EC2","network_border_group":"us-east-1-zzq-1"}],
            "ipv6_prefixes":[]}"#;
        let ranges = CloudRanges::new(vec![RangeSet::parse("x.json", "t", text).expect("parses")]);
        let both = ranges.evidence(ip("198.51.100.1"));
        assert_eq!(both.country, None, "{}", both.detail);
        assert!(both.detail.contains("as global"), "{}", both.detail);
        let two = ranges.evidence(ip("203.0.113.1"));
        assert_eq!(two.country, None, "{}", two.detail);
        assert!(two.detail.contains("eu-west-1"), "{}", two.detail);
        let buenos_aires = ranges.evidence(ip("192.0.2.1"));
        assert_eq!(
            buenos_aires.country,
            "AR".parse().ok(),
            "{}",
            buenos_aires.detail
        );
        let unknown = ranges.evidence(ip("192.0.2.200"));
        assert_eq!(
            unknown.country, None,
            "a zone elsewhere is not its parent region: {}",
            unknown.detail
        );
    }

    #[test]
    fn a_user_copy_wins_a_tie_with_the_shipped_one() {
        let shipped = RangeSet::parse("a.json", "shipped copy", AWS).expect("parses");
        let own = RangeSet::parse(
            "b.json",
            "user file",
            r#"{"createDate":"2026-12-01-00-00-00","prefixes":[{"ip_prefix":"13.232.0.0/14","region":"ap-south-2","service":"EC2","network_border_group":"ap-south-2"}],"ipv6_prefixes":[]}"#,
        )
        .expect("parses");
        let ranges = CloudRanges::new(vec![shipped, own]);
        let e = ranges.evidence(ip("13.233.0.1"));
        assert_eq!(e.city.as_deref(), Some("Hyderabad"), "{}", e.detail);
    }

    #[test]
    fn bad_files_are_errors_naming_the_file_and_what_is_wrong() {
        let e = RangeSet::parse("x.json", "t", "{\"createDate\": 5").expect_err("truncated");
        assert!(
            e.to_string().starts_with("x.json: not JSON at line 1"),
            "{e}"
        );
        let e = RangeSet::parse("x.json", "t", r#"{"a":1}"#).expect_err("unknown");
        assert!(
            e.to_string().contains("none of the known range files"),
            "{e}"
        );
        let e = RangeSet::parse("list.txt", "t", "192.0.2.0/24\n").expect_err("no provider");
        assert!(e.to_string().contains("names no provider"), "{e}");
        let e = RangeSet::parse("ips-v4", "t", "192.0.2.0/24\nnonsense\n").expect_err("bad line");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = RangeSet::parse("ips-v4", "t", "\n# nothing\n").expect_err("empty");
        assert!(e.to_string().contains("lists no prefixes"), "{e}");
    }
}
