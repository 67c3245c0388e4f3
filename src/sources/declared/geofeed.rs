//! RFC 8805 geofeeds: the CSV in which an operator says where each of its prefixes is used
//! (`prefix,country,region,city,postal`).
//!
//! Owns reading a feed strictly but tolerantly (comments anywhere, blank lines, missing region
//! or city, a trailing empty column; a bad row is reported with its line and skipped, never
//! fatal), the most-specific-prefix lookup, and RFC 9632 §5's rule that a feed found through a
//! registry record may only speak for prefixes inside that record's network: an entry outside
//! it is ignored, with the reason, since anyone can publish a feed naming anyone's prefixes.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use prefix_trie::PrefixMap;

use crate::model::{Confidence, CountryCode, Evidence, SourceKind};

/// One row of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub prefix: IpNetwork,
    /// `None`: the row leaves the country empty (RFC 8805 §2.1.1.2: "do not geolocate").
    pub country: Option<CountryCode>,
    /// ISO 3166-2 subdivision, e.g. `IN-MH`, as written.
    pub region: Option<String>,
    pub city: Option<String>,
    /// The row's line in the feed, for a report to cite.
    pub line: usize,
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// A feed, read.
#[derive(Debug, Clone)]
pub struct Geofeed {
    /// Where the feed came from (its URL or path), named in the evidence.
    pub origin: String,
    /// When it was fetched or read, as the evidence should state it.
    pub retrieved: Option<String>,
    pub problems: Vec<Problem>,
    v4: PrefixMap<Ipv4Network, Entry>,
    v6: PrefixMap<Ipv6Network, Entry>,
}

impl Geofeed {
    /// Reads `text`. Never fails: a feed with no usable row is empty, and says why row by row.
    pub fn parse(origin: &str, retrieved: Option<String>, text: &str) -> Geofeed {
        let mut feed = Geofeed {
            origin: origin.to_string(),
            retrieved,
            problems: Vec::new(),
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
        };
        for (n, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            let line_no = n + 1;
            let row = line.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            match parse_row(row, line_no) {
                Ok(entry) => {
                    if let Some(earlier) = feed.insert(entry) {
                        feed.problems.push(Problem {
                            line: line_no,
                            what: format!(
                                "{} is listed again (first on line {}); the later row is used",
                                earlier.prefix, earlier.line
                            ),
                        });
                    }
                }
                Err(what) => feed.problems.push(Problem {
                    line: line_no,
                    what,
                }),
            }
        }
        feed
    }

    fn insert(&mut self, entry: Entry) -> Option<Entry> {
        match entry.prefix {
            IpNetwork::V4(n) => self.v4.insert(n, entry),
            IpNetwork::V6(n) => self.v6.insert(n, entry),
        }
    }

    /// How many rows were read.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most specific row whose prefix holds `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Entry> {
        match ip {
            IpAddr::V4(v4) => self
                .v4
                .get_lpm(&Ipv4Network::new(v4, 32).ok()?)
                .map(|(_, e)| e),
            IpAddr::V6(v6) => self
                .v6
                .get_lpm(&Ipv6Network::new(v6, 128).ok()?)
                .map(|(_, e)| e),
        }
    }

    /// What the feed says of `ip`, if it lists it. `network`: the registry record's block the
    /// feed was found through; an entry outside all of it is ignored, with the reason (RFC
    /// 9632 §5). `None`: a feed the user listed, trusted as given.
    pub fn evidence(&self, ip: IpAddr, network: Option<&[IpNetwork]>) -> Option<Evidence> {
        let entry = self.lookup(ip)?;
        let source = format!("geofeed:{}", self.origin);
        let when = self
            .retrieved
            .as_deref()
            .map(|d| format!(", retrieved {d}"))
            .unwrap_or_default();
        let place = [
            entry.city.as_deref(),
            entry.region.as_deref(),
            entry.country.as_ref().map(CountryCode::as_str),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let inside = network.is_none_or(|nets| nets.iter().any(|n| contains(n, &entry.prefix)));
        let mut evidence = Evidence::unlocated(source, SourceKind::OperatorDeclared, String::new());
        if network.is_some_and(|n| n.is_empty()) {
            evidence.detail = format!(
                "geofeed {} lists {} as {place}, but the registry record it was found from \
                 gives no network to check it against (RFC 9632 §5): not used; `residency \
                 clear-cache rdap` refetches the record{when}",
                self.origin, entry.prefix
            );
            return Some(evidence);
        }
        if !inside {
            let nets: Vec<String> = network
                .unwrap_or_default()
                .iter()
                .map(|n| n.to_string())
                .collect();
            evidence.detail = format!(
                "geofeed {} (line {}) lists {} as {place}, but that prefix is not inside the \
                 registry's network {} it was found from: ignored (RFC 9632 §5){when}",
                self.origin,
                entry.line,
                entry.prefix,
                nets.join(", ")
            );
            return Some(evidence);
        }
        match entry.country {
            Some(country) => {
                evidence.country = Some(country);
                evidence.confidence = Confidence::Medium;
                evidence.city = entry.city.clone();
                let how = if network.is_some() {
                    "inside the registry's network it was found from"
                } else {
                    "a feed the policy lists, not checked against a registry record"
                };
                evidence.detail = format!(
                    "geofeed {} (line {}) lists {} as {place} ({how}){when}",
                    self.origin, entry.line, entry.prefix
                );
            }
            None => {
                evidence.detail = format!(
                    "geofeed {} (line {}) lists {} with no country (do not geolocate){when}",
                    self.origin, entry.line, entry.prefix
                );
            }
        }
        Some(evidence)
    }
}

/// Whether `outer` holds all of `inner`.
fn contains(outer: &IpNetwork, inner: &IpNetwork) -> bool {
    outer.prefix() <= inner.prefix() && outer.contains(inner.network())
}

/// One row: `prefix,country,region,city[,postal]`, later columns optional. A trailing empty
/// column (a sixth, from a stray comma) is tolerated; more text than the five columns is not.
fn parse_row(row: &str, line: usize) -> Result<Entry, String> {
    // RFC 8805 rows are RFC 4180 CSV: a city may be quoted and hold a comma. Rows are read
    // one at a time (for their line numbers, and so one stray quote cannot swallow the rest
    // of the feed), and only a row with a quote needs a CSV reader.
    let quoted;
    let cols: Vec<&str> = if row.contains('"') {
        quoted = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(row.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| format!("not a CSV row: {e}: skipped"))?
            .unwrap_or_default();
        quoted.iter().map(str::trim).collect()
    } else {
        row.split(',').map(str::trim).collect()
    };
    if cols.is_empty() {
        return Err("an empty row: skipped".into());
    }
    if cols.len() > 5 && cols[5..].iter().any(|c| !c.is_empty()) {
        return Err(format!(
            "{} columns where RFC 8805 has at most 5 (prefix,country,region,city,postal): \
             skipped",
            cols.len()
        ));
    }
    let text = cols[0];
    let prefix: IpNetwork = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IP prefix: skipped"))?;
    if prefix.network() != prefix.ip() {
        return Err(format!(
            "`{text}` has host bits set (did you mean {}/{}?): skipped",
            prefix.network(),
            prefix.prefix()
        ));
    }
    let prefix = IpNetwork::new(prefix.network(), prefix.prefix()).map_err(|e| e.to_string())?;
    let country = match cols.get(1).copied().unwrap_or_default() {
        "" => None,
        code => Some(
            code.parse::<CountryCode>()
                .map_err(|e| format!("{e}: skipped"))?,
        ),
    };
    let region = cols.get(2).copied().filter(|r| !r.is_empty());
    if let (Some(region), Some(country)) = (region, country)
        && !region
            .get(..3)
            .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{country}-")))
    {
        return Err(format!(
            "region `{region}` is not an ISO 3166-2 code of {country} (e.g. {country}-XX): skipped"
        ));
    }
    Ok(Entry {
        prefix,
        country,
        region: region.map(str::to_string),
        city: cols
            .get(3)
            .copied()
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "# prefix,country,region,city,postal\n\
        192.0.2.0/24,IN,IN-MH,Mumbai,\n\
        \n\
        192.0.2.128/25,IN,IN-KA,Bengaluru,560001\n\
        # a comment in the middle\n\
        198.51.100.0/24,,,,\n\
        203.0.113.0/24,SG,,,\n\
        2001:db8::/32,IN,IN-DL,New Delhi,,\n\
        not-a-prefix,IN,,,\n\
        203.0.113.7/32,AT,AT-6,AT-9,Wien,1160,\n\
        203.0.113.64/26,US,US-DC,\"Washington, D.C.\",20001\n\
        192.0.2.1/24,IN,,,\n\
        198.51.100.0/25,IN,MH,Mumbai,\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn rows_are_read_tolerantly_and_bad_ones_reported_with_their_line() {
        let feed = Geofeed::parse("https://example.net/feed.csv", None, FEED);
        assert_eq!(feed.len(), 6);
        let lines: Vec<usize> = feed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [9, 10, 12, 13], "{:?}", feed.problems);
        let quoted = feed.evidence(ip("203.0.113.70"), None).expect("listed");
        assert_eq!(
            quoted.city.as_deref(),
            Some("Washington, D.C."),
            "{}",
            quoted.detail
        );
        assert!(
            feed.problems[1].what.contains("7 columns"),
            "{}",
            feed.problems[1]
        );
        assert!(
            feed.problems[2].what.contains("host bits"),
            "{}",
            feed.problems[2]
        );
        let e = feed.evidence(ip("192.0.2.200"), None).expect("listed");
        assert_eq!(
            (e.country, e.city.as_deref()),
            ("IN".parse().ok(), Some("Bengaluru"))
        );
        assert!(e.detail.contains("line 4"), "{}", e.detail);
        let e = feed.evidence(ip("192.0.2.10"), None).expect("listed");
        assert_eq!(e.city.as_deref(), Some("Mumbai"));
        let e = feed.evidence(ip("198.51.100.9"), None).expect("listed");
        assert_eq!(e.country, None, "an empty country is not a location");
        assert_eq!(
            feed.evidence(ip("2001:db8::1"), None)
                .and_then(|e| e.city)
                .as_deref(),
            Some("New Delhi")
        );
        assert!(feed.evidence(ip("192.168.0.1"), None).is_none());
    }

    #[test]
    fn a_prefix_outside_the_registry_network_is_ignored_with_the_reason() {
        let feed = Geofeed::parse("feed.csv", Some("2026-12-04".into()), FEED);
        // Found from the record of 192.0.2.128/25: its own row counts, the wider /24 does not.
        let network: Vec<IpNetwork> = vec!["192.0.2.128/25".parse().expect("net")];
        let inside = feed
            .evidence(ip("192.0.2.200"), Some(&network))
            .expect("listed");
        assert_eq!(inside.city.as_deref(), Some("Bengaluru"));
        let outside = feed
            .evidence(ip("192.0.2.10"), Some(&network))
            .expect("listed");
        assert_eq!(outside.country, None);
        assert!(outside.detail.contains("RFC 9632"), "{}", outside.detail);
        assert!(
            outside.detail.contains("retrieved 2026-12-04"),
            "{}",
            outside.detail
        );
    }
}
