//! Location hints in reverse-DNS names: `ae-1.r01.bom01.example.net` says "Mumbai".
//!
//! Owns reading a PTR name for the airport codes and city names operators put in router and
//! host names, the shipped dictionaries that give those tokens a country and a point
//! (`data/airports.csv`, `data/iata-metro.csv`, `data/city-tokens.csv`; see `data/README.md`),
//! and turning hints into [`Evidence`] of kind [`SourceKind::PtrHint`].
//!
//! A hint is weak evidence ([`Confidence::Low`]): operators name a router after the nearest
//! big airport, after where it was first installed (and keep the name when it moves), or after
//! the far end of a link; names are typed by hand and go stale. Its value is that it has
//! coordinates, so RTT physics ([`crate::sources::physics::check_point_claim`]) can refute it like any
//! database point, and a hint that survives says something the registries do not.
//!
//! Token rules (never substrings):
//! - The name is lower-cased and split into labels on `.`. The registered domain and its
//!   public suffix are not read (`example.net`, `example.co.uk`; see [`MULTI_PART_SUFFIXES`]):
//!   they name the operator, not the place. Reverse names (`….in-addr.arpa`) carry no hint.
//! - A label that looks like an address written out (`2001-db8-0-abc`: four or more hex
//!   groups, some with digits) is skipped: its hex would read as airport codes (`abc` is
//!   Albacete).
//! - Each label is split into tokens on `-`, `_`, any other non-alphanumeric character and
//!   every letter/digit boundary: `bom01` → `bom`, `01`; `ae-1` → `ae`, `1`.
//! - A whole 3-letter token is looked up as an IATA airport code, then as an IATA metro code
//!   (`lon`, `nyc`, `tyo`). `bombay` does not match `bom`, nor `xbom` or `bomx`.
//! - A whole token of any length, or two or three adjacent letter tokens joined (`new-york`,
//!   `hong-kong`, `rio-de-janeiro`), is looked up as a city token (`mumbai`, `frankfurt`).
//! - Tokens in [`STOPLIST`] are never read: interface names, router roles and network words
//!   that happen to be IATA codes (`cdn` is Camden, US; `acc` is Accra; the list says why
//!   each entry is there).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::model::{Confidence, Coordinates, CountryCode, Evidence, SourceKind};

/// The accuracy a hint's point vouches for: airports lie 10–50 km from the city they serve,
/// and metro points are means of airports up to 55 km apart (see `data/README.md`).
pub const HINT_ACCURACY_KM: u32 = 50;

/// The `source` of every hint's evidence.
pub const PTR_SOURCE: &str = "ptr";

const AIRPORTS_CSV: &str = include_str!("../../data/airports.csv");

/// The shipped airport dictionary's size in bytes, for `data status`.
pub const AIRPORTS_SIZE: usize = AIRPORTS_CSV.len();
const METROS_CSV: &str = include_str!("../../data/iata-metro.csv");
const CITIES_CSV: &str = include_str!("../../data/city-tokens.csv");

/// Public suffixes of two labels under which names are registered at the third level; the
/// registered domain is then three labels (`example.co.uk`). A short list of the suffixes
/// seen in carrier and hosting PTR names, not the Public Suffix List: a suffix missing here
/// only means one more label (e.g. `co` of `example.co.xy`) is read, and `co` reads nothing.
#[rustfmt::skip]
pub const MULTI_PART_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "net.uk", "ac.uk", "ltd.uk", "plc.uk", "com.cn", "net.cn", "org.cn",
    "com.hk", "net.hk", "com.tw", "net.tw", "com.sg", "net.sg", "com.my", "net.my", "co.id",
    "net.id", "co.in", "net.in", "com.au", "net.au", "org.au", "co.nz", "net.nz", "co.jp", "ne.jp",
    "or.jp", "ad.jp", "co.kr", "ne.kr", "or.kr", "com.br", "net.br", "com.ar", "com.mx", "net.mx",
    "co.za", "net.za", "com.tr", "net.tr", "com.pk", "net.pk", "net.il", "co.il", "com.ru",
    "net.ru", "com.ua", "net.ua",
];

/// Tokens never read as a place, grouped by why. Two-letter tokens can match nothing today
/// (IATA codes are three letters, and no city token is that short) but are listed so that the
/// list documents the interface names a reader will meet. Every three-letter entry marked
/// "IATA" is an airport or metro code in the shipped data that would otherwise be read.
///
/// Not here on purpose, though they are English words too: `ams` (Amsterdam), `lax` (Los
/// Angeles), `sea` (Seattle), `mad` (Madrid), `par` (Paris), `chi` (Chicago), `den`
/// (Denver), `per` (Perth), `sin` (Singapore), `was` (Washington): operators use each of
/// them for that city, and no common router word collides.
#[rustfmt::skip]
pub const STOPLIST: &[&str] = &[
    // Interface names (Juniper ae/xe/ge/et, Cisco te/be/gi/fa/hu/po/lo, SONET so/pos) and
    // link words. IATA: gig (Rio Galeão: `gig0-0-1` is GigabitEthernet far more often; `rio`
    // and `riodejaneiro` still match), hge, irb (Iraan), bvi, pos (Port of Spain), atm, ser,
    // tun (Tunis), gre, ten; eth is not a code but is listed with its kind.
    "ae", "xe", "ge", "et", "te", "be", "so", "po", "lo", "gi", "fa", "hu", "fe", "vl", "eth",
    "gig", "hge", "tge", "xge", "irb", "bvi", "pos", "atm", "ser", "tun", "gre", "ten", "lag",
    "vlan", "bundle", "ether", "tengig", "hundredgig",
    // Router roles: core, border, aggregation, access, edge, gateway. IATA: cor (Córdoba),
    // bdr (Bridgeport), brd, bbr, acc (Accra), asr, crs, mxs, ncs, srx, bng, cpe, msc, mpr.
    "gw", "cr", "ar", "br", "pe", "ce", "rt", "rtr", "core", "edge", "agg", "acc", "cor",
    "bdr", "brd", "bbr", "asr", "crs", "mxs", "ncs", "srx", "bng", "cpe", "ont", "olt", "msc",
    "mpr", "cgn", "nat", "pat", "ras", "nas", "sbc", "fwl", "gate", "border", "access",
    // Services and host words. IATA: cdn (Camden), api, pop, nap, dns, isp, srv, sip, vps,
    // vip, hub, sub, res (Resistencia), ded, dia (Doha), noc, nms, mgt, sta, box, sys, tst,
    // stg, prd, inf, grp, ipt, pub, prv, cus, uni, usr, cli, clt, hsi, adm, ops, ptp, bus.
    "www", "mail", "cdn", "api", "pop", "ix", "nap", "dns", "ntp", "isp", "srv", "sip", "vps",
    "vip", "hub", "sub", "res", "ded", "dia", "noc", "nms", "mgt", "sta", "box", "sys", "tst",
    "stg", "prd", "inf", "grp", "ipt", "pub", "prv", "cus", "uni", "usr", "cli", "clt", "hsi",
    "adm", "ops", "ptp", "bus", "net", "static", "host", "client", "cust", "customer", "dyn",
    "dynamic", "pool", "dsl", "cable", "fiber", "fibre", "ftth", "broadband",
    // Generic words and domain words. IATA: com, org, gov, int, ext, lan, man (Manchester,
    // but far more often "metropolitan area network"; `manchester` still matches), tel, the,
    // and, for, new (New Orleans Lakefront; `new-york` still matches as a city), old, red,
    // hot, mob, gsm, cpu, tls, bbs, lst, aut, inv, bfd, bdi, ndc.
    "com", "org", "gov", "edu", "int", "ext", "lan", "wan", "man", "tel", "the", "and", "for",
    "new", "old", "red", "hot", "mob", "gsm", "cpu", "tls", "bbs", "lst", "aut", "inv", "bfd",
    "bdi", "ndc",
    // Carrier names used as labels. IATA: att, gtt, kpn, ntt, nte, ntl, twc, cox, tds.
    "att", "gtt", "kpn", "ntt", "nte", "ntl", "twc", "cox", "tds",
    // Router shorthand for a city whose IATA code is another place: `tor` (Toronto) is
    // Torrington, US; `ash` (Ashburn) is Nashua, US. Reading them would place the router
    // hundreds of km from where its operator meant; `toronto`, `ashburn` still match.
    "tor", "ash",
];

/// Which rule read a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintRule {
    /// A whole three-letter token that is an IATA airport code (`bom` → Mumbai).
    Iata,
    /// A whole three-letter token that is an IATA multi-airport city code (`lon` → London).
    IataMetro,
    /// A city name as routers spell it (`frankfurt`, `new-york`).
    CityName,
}

impl fmt::Display for HintRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HintRule::Iata => "IATA",
            HintRule::IataMetro => "IATA metro code",
            HintRule::CityName => "city name",
        })
    }
}

/// One place a name points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hint {
    /// The token as read (lower case): `bom`, `lon`, `newyork` (joined from `new-york`).
    pub token: String,
    /// The city (or, for an airport without one in the data, `IATA XXX`).
    pub place: String,
    pub country: CountryCode,
    /// The airport's point (a metro code's: the mean of its airports), with
    /// [`HINT_ACCURACY_KM`].
    pub coordinates: Coordinates,
    pub rule: HintRule,
}

/// One entry of a dictionary.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub city: String,
    pub country: CountryCode,
    pub latitude: f64,
    pub longitude: f64,
}

/// The shipped dictionaries, keyed by lower-case token.
#[derive(Debug)]
pub struct Dictionary {
    airports: HashMap<String, Place>,
    metros: HashMap<String, Place>,
    cities: HashMap<String, Place>,
}

impl Dictionary {
    /// The dictionaries embedded in the binary, parsed once.
    pub fn shipped() -> Result<&'static Dictionary, String> {
        static SHIPPED: OnceLock<Result<Dictionary, String>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| {
                Ok(Dictionary {
                    airports: parse_places("data/airports.csv", AIRPORTS_CSV, 0)?,
                    metros: parse_places("data/iata-metro.csv", METROS_CSV, 0)?,
                    cities: parse_places("data/city-tokens.csv", CITIES_CSV, 1)?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The airport with IATA code `code` (any case).
    pub fn airport(&self, code: &str) -> Option<&Place> {
        self.airports.get(&code.to_ascii_lowercase())
    }

    /// The IATA metro code `code` (any case), e.g. `LON`.
    pub fn metro(&self, code: &str) -> Option<&Place> {
        self.metros.get(&code.to_ascii_lowercase())
    }

    /// The city token `token` (lower case ASCII, no spaces: `newyork`).
    pub fn city(&self, token: &str) -> Option<&Place> {
        self.cities.get(token)
    }

    /// How many IATA airport codes are known.
    pub fn airport_count(&self) -> usize {
        self.airports.len()
    }

    /// How many city tokens are known.
    pub fn city_count(&self) -> usize {
        self.cities.len()
    }
}

/// Parses `key,[skipped columns,]city,country,lat,lon` rows. The city may be quoted (it can
/// hold a comma: `"Arnavutköy, Istanbul"`), so the other fields are taken from both ends.
fn parse_places(file: &str, text: &str, skipped: usize) -> Result<HashMap<String, Place>, String> {
    let mut places = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let bad = |what: &str| format!("{file} line {}: {what}: {line}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let mut right = line.rsplitn(4, ',');
        let (Some(lon), Some(lat), Some(country), Some(rest)) =
            (right.next(), right.next(), right.next(), right.next())
        else {
            return Err(bad("too few fields"));
        };
        let mut left = rest.splitn(2 + skipped, ',');
        let key = left.next().unwrap_or_default().trim().to_ascii_lowercase();
        let city = left.nth(skipped).ok_or_else(|| bad("no city field"))?;
        let city = match city.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => city.to_string(),
        };
        let country: CountryCode = country.parse().map_err(|e| bad(&format!("{e}")))?;
        let latitude: f64 = lat.parse().map_err(|_| bad("latitude"))?;
        let longitude: f64 = lon.parse().map_err(|_| bad("longitude"))?;
        if key.is_empty() || !(-90.0..=90.0).contains(&latitude) {
            return Err(bad("empty key or latitude out of range"));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(bad("longitude out of range"));
        }
        let place = Place {
            city,
            country,
            latitude,
            longitude,
        };
        if places.insert(key, place).is_some() {
            return Err(bad("duplicate key"));
        }
    }
    Ok(places)
}

/// Every location hint in `name`, in the order its tokens appear, each (rule, token) once.
/// Empty when the name carries none, or if the shipped dictionaries could not be read
/// (logged: that is a build defect, not a property of the name).
pub fn hints_from_name(name: &str) -> Vec<Hint> {
    match Dictionary::shipped() {
        Ok(dictionary) => hints_with(dictionary, name),
        Err(error) => {
            tracing::warn!(%error, "location dictionaries unreadable; no PTR hints");
            Vec::new()
        }
    }
}

/// [`hints_from_name`] with a given dictionary.
pub fn hints_with(dictionary: &Dictionary, name: &str) -> Vec<Hint> {
    let mut hints: Vec<Hint> = Vec::new();
    for label in readable_labels(name) {
        for run in letter_runs(&label) {
            let mut i = 0;
            while i < run.len() {
                let (used, hint) = match_at(dictionary, &run[i..]);
                if let Some(hint) = hint
                    && !hints
                        .iter()
                        .any(|h| h.rule == hint.rule && h.token == hint.token)
                {
                    hints.push(hint);
                }
                i += used.max(1);
            }
        }
    }
    hints
}

/// The labels of `name` that may carry a place: lower case, without the registered domain
/// and its suffix, and without labels that are addresses written out.
fn readable_labels(name: &str) -> Vec<String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').filter(|l| !l.is_empty()).collect();
    if lower.ends_with(".in-addr.arpa") || lower.ends_with(".ip6.arpa") {
        return Vec::new();
    }
    let suffix_labels = match labels.as_slice() {
        [.., second, last]
            if MULTI_PART_SUFFIXES.contains(&format!("{second}.{last}").as_str()) =>
        {
            3
        }
        _ => 2,
    };
    let keep = labels.len().saturating_sub(suffix_labels);
    labels[..keep]
        .iter()
        .filter(|label| !looks_like_address(label))
        .map(|label| label.to_string())
        .collect()
}

/// An address written into a label: four or more groups of at most four hex digits (empty
/// groups allowed, for a `::` written as `--`), at least one with a digit in it
/// (`2001-db8-0-abc`, `192-0-2-1`), or eight or more hex digits, some of them digits, without
/// separators (`c0000201`, `20010db8…0abc`). Such a label is an address, and its letters (`abc`,
/// `bad`, `fed`, all IATA codes) are hex, not airports. Three groups are not enough
/// (`dac-1-2`, Dhaka, stays readable); `dac-1-2-3` is the price.
fn looks_like_address(label: &str) -> bool {
    let hex = |g: &str| g.chars().all(|c| c.is_ascii_hexdigit());
    let has_digit = |g: &str| g.chars().any(|c| c.is_ascii_digit());
    let groups: Vec<&str> = label.split(['-', '_']).collect();
    let grouped = groups.len() >= 4
        && groups.iter().all(|g| g.len() <= 4 && hex(g))
        && groups.iter().any(|g| has_digit(g));
    let packed = label.len() >= 8 && hex(label) && has_digit(label);
    grouped || packed
}

/// Splits a label into runs of letter tokens: a run is broken by digits (and anything not
/// alphanumeric other than `-` and `_`), so `new-york` is one run of two tokens but `bom01`
/// and `new1york` are runs of one.
fn letter_runs(label: &str) -> Vec<Vec<String>> {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let mut token = String::new();
    for c in label.chars() {
        if c.is_ascii_alphabetic() {
            token.push(c);
            continue;
        }
        if !token.is_empty() {
            run.push(std::mem::take(&mut token));
        }
        // `-` and `_` separate tokens within a run; a digit or anything else ends the run.
        if c != '-' && c != '_' && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !token.is_empty() {
        run.push(token);
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The hint starting at `tokens[0]`, and how many tokens it used: the longest city name
/// joined from up to three tokens, else the first token on its own.
fn match_at(dictionary: &Dictionary, tokens: &[String]) -> (usize, Option<Hint>) {
    for len in (2..=tokens.len().min(3)).rev() {
        let joined: String = tokens[..len].concat();
        if let Some(place) = dictionary.city(&joined) {
            return (len, Some(hint(joined, place, HintRule::CityName)));
        }
    }
    let Some(token) = tokens.first() else {
        return (1, None);
    };
    if STOPLIST.contains(&token.as_str()) {
        return (1, None);
    }
    let found = if token.len() == 3 {
        dictionary
            .airport(token)
            .map(|p| (p, HintRule::Iata))
            .or_else(|| dictionary.metro(token).map(|p| (p, HintRule::IataMetro)))
    } else {
        None
    };
    let found = found.or_else(|| dictionary.city(token).map(|p| (p, HintRule::CityName)));
    (
        1,
        found.map(|(place, rule)| hint(token.clone(), place, rule)),
    )
}

fn hint(token: String, place: &Place, rule: HintRule) -> Hint {
    let city = if place.city.is_empty() {
        format!("IATA {}", token.to_ascii_uppercase())
    } else {
        place.city.clone()
    };
    Hint {
        token,
        place: city,
        country: place.country,
        coordinates: Coordinates {
            latitude: place.latitude,
            longitude: place.longitude,
            accuracy_km: Some(HINT_ACCURACY_KM),
        },
        rule,
    }
}

/// Evidence from the PTR names of `ip` (named in the log only: the evidence is filed under
/// the address already): one [`Evidence`] per hint of each name, kind
/// [`SourceKind::PtrHint`], source [`PTR_SOURCE`], [`Confidence::Low`], with the hint's
/// country, city and point.
///
/// A name without a hint, and an address without names, give **no** evidence: unlike a
/// database that was asked and knew nothing, most PTR names carry no place by design
/// (`host-192-0-2-12.static.example.net`), and a `country: None` entry per hop would bury the
/// hints that matter. The PTR names themselves are in the resolution that fetched them.
pub fn ptr_evidence(ip: IpAddr, names: &[String]) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    tracing::debug!(%ip, ?names, "reading PTR names for location hints");
    for name in names {
        for hint in hints_from_name(name) {
            evidence.push(Evidence {
                source: PTR_SOURCE.to_string(),
                kind: SourceKind::PtrHint,
                country: Some(hint.country),
                confidence: Confidence::Low,
                detail: format!(
                    "PTR {name}: \"{}\" = {}, {} ({})",
                    hint.token, hint.place, hint.country, hint.rule
                ),
                city: Some(hint.place),
                coordinates: Some(hint.coordinates),
                refuted: None,
            });
        }
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(token, place, country, rule)` of each hint, for compact assertions.
    fn read(name: &str) -> Vec<(String, String, String, HintRule)> {
        hints_from_name(name)
            .into_iter()
            .map(|h| (h.token, h.place, h.country.to_string(), h.rule))
            .collect()
    }

    fn tokens(name: &str) -> Vec<String> {
        hints_from_name(name).into_iter().map(|h| h.token).collect()
    }

    fn one(
        token: &str,
        place: &str,
        country: &str,
        rule: HintRule,
    ) -> (String, String, String, HintRule) {
        (token.into(), place.into(), country.into(), rule)
    }

    #[test]
    fn the_dictionary_loads_with_the_big_airports() {
        let dictionary = Dictionary::shipped().expect("shipped dictionaries parse");
        assert!(
            dictionary.airport_count() > 5_000,
            "{}",
            dictionary.airport_count()
        );
        for code in ["BOM", "PEK", "SIN", "IAD", "FRA", "LHR", "bom"] {
            assert!(dictionary.airport(code).is_some(), "{code} missing");
        }
        let bom = dictionary.airport("BOM").expect("BOM");
        assert_eq!((bom.city.as_str(), bom.country.as_str()), ("Mumbai", "IN"));
        assert!((bom.latitude - 19.0887).abs() < 1e-3 && (bom.longitude - 72.8679).abs() < 1e-3);
        // A city whose name holds a comma survives the CSV quoting.
        let ist = dictionary.airport("IST").expect("IST");
        assert_eq!(ist.city, "Arnavutköy, Istanbul");
        assert_eq!(
            dictionary.metro("LON").map(|p| p.country.as_str()),
            Some("GB")
        );
        assert!(dictionary.city_count() >= 100);
    }

    #[test]
    fn whole_iata_tokens_match_with_country_and_point() {
        let hints = hints_from_name("ae-1.r01.bom01.example.net");
        assert_eq!(hints.len(), 1, "{hints:?}");
        let bom = &hints[0];
        assert_eq!(bom.token, "bom");
        assert_eq!(bom.place, "Mumbai");
        assert_eq!(bom.country.as_str(), "IN");
        assert_eq!(bom.rule, HintRule::Iata);
        assert!((bom.coordinates.latitude - 19.0887).abs() < 1e-3);
        assert!((bom.coordinates.longitude - 72.8679).abs() < 1e-3);
        assert_eq!(bom.coordinates.accuracy_km, Some(HINT_ACCURACY_KM));

        assert_eq!(
            read("xe-0-0-1.cr1.FRA1.Example.NET."),
            [one("fra", "Frankfurt am Main", "DE", HintRule::Iata)]
        );
        assert_eq!(
            read("be-12.pek-core_2.example.com"),
            [one("pek", "Beijing", "CN", HintRule::Iata)]
        );
        assert_eq!(
            read("sin2-edge.example.net"),
            [one("sin", "Singapore", "SG", HintRule::Iata)]
        );
        assert_eq!(
            read("100ge.iad.example.net"),
            [one("iad", "Washington", "US", HintRule::Iata)]
        );
        assert_eq!(
            read("ams-ix.example.net"),
            [one("ams", "Amsterdam", "NL", HintRule::Iata)]
        );
        assert_eq!(
            read("lon1.example.net"),
            [one("lon", "London", "GB", HintRule::IataMetro)]
        );
        assert_eq!(
            read("r1.nyc3.example.net"),
            [one("nyc", "New York", "US", HintRule::IataMetro)]
        );
    }

    #[test]
    fn substrings_and_joined_letters_do_not_match() {
        for name in [
            "bombay.example.net",      // `bom` inside a longer token
            "xbom1.example.net",       // letters before it
            "bomx1.example.net",       // letters after it
            "pekingduck.example.net",  // `pek` prefix
            "rfra1.example.net",       // no boundary between r and fra
            "frankfurtam.example.net", // a city token inside a longer token
        ] {
            assert_eq!(tokens(name), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn the_stoplist_and_two_letter_tokens_read_nothing() {
        for name in [
            "ae-1.xe-2.ge-0-0-0.et-1.te0-1.be10.so-1.po1.lo0.gw.example.net",
            "cdn.api.pop.www.mail.static.example.net",
            "core1.edge2.agg3.acc4.cor5.bdr6.example.net",
            "gig0-1.pos1.atm2.tun0.gre1.irb.bvi1.example.net",
            "man-res-bus.dia.isp.example.net",
            "new.old.red.hot.the.and.for.example.net",
            "tor1.ash2.att.ntt.example.net",
        ] {
            assert_eq!(tokens(name), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn the_registered_domain_and_its_suffix_are_not_read() {
        // `lax.com`: the operator's domain, not a place; `bom.co.uk` likewise.
        assert!(tokens("host1.lax.com").is_empty());
        assert!(tokens("lax.com").is_empty());
        assert!(tokens("r1.bom.co.uk").is_empty());
        assert_eq!(tokens("r1.fra.bom.co.uk"), ["fra"]);
        assert_eq!(tokens("sin1.lax.com"), ["sin"]);
        // Reverse names are not host names.
        assert!(tokens("10.2.0.192.in-addr.arpa").is_empty());
        assert!(tokens("").is_empty() && tokens(".").is_empty());
    }

    #[test]
    fn addresses_written_in_a_label_are_not_read_as_hex_words() {
        // `abc` (Albacete), `bad` and `fed` are IATA codes; here they are hex groups.
        assert!(tokens("2001-db8-abc-0-0-0-bad-fed.ip6.example.net").is_empty());
        assert!(tokens("host-192-0-2-12.static.example.net").is_empty());
        assert!(tokens("2001-db8--abc.example.net").is_empty());
        assert!(tokens("20010db80000000000000000000abc.example.net").is_empty());
        // A real token beside an address label is still read, and a hex-only code is still a
        // code when the label is not an address.
        assert_eq!(tokens("2001-db8-abc-1.fra2.example.net"), ["fra"]);
        assert_eq!(tokens("dac-1-2.example.net"), ["dac"]);
    }

    #[test]
    fn city_names_match_whole_and_joined() {
        assert_eq!(
            read("mumbai-gw1.example.net"),
            [one("mumbai", "Mumbai", "IN", HintRule::CityName)]
        );
        assert_eq!(
            read("Frankfurt-Edge.example.net"),
            [one(
                "frankfurt",
                "Frankfurt am Main",
                "DE",
                HintRule::CityName
            )]
        );
        assert_eq!(
            read("new-york-7.example.net"),
            [one("newyork", "New York", "US", HintRule::CityName)]
        );
        assert_eq!(
            read("hong_kong1.example.com.hk"),
            [one("hongkong", "Hong Kong", "HK", HintRule::CityName)]
        );
        assert_eq!(
            read("newyork.example.net"),
            [one("newyork", "New York", "US", HintRule::CityName)]
        );
        // A digit breaks a run: `new1york` is two tokens, `new` stopped, `york` no city.
        assert!(tokens("new1york.example.net").is_empty());
    }

    #[test]
    fn every_hint_is_returned_once_in_name_order() {
        assert_eq!(
            tokens("sin-bom-link.bom2.lhr1.singapore.example.net"),
            ["sin", "bom", "lhr", "singapore"]
        );
    }

    #[test]
    fn evidence_is_low_confidence_ptr_hints_with_points() {
        let ip: IpAddr = "192.0.2.10".parse().expect("ip");
        let names = vec![
            "ae-1.r01.bom01.example.net".to_string(),
            "host-192-0-2-10.static.example.net".to_string(),
        ];
        let evidence = ptr_evidence(ip, &names);
        assert_eq!(evidence.len(), 1, "{evidence:?}");
        let e = &evidence[0];
        assert_eq!(e.kind, SourceKind::PtrHint);
        assert_eq!(e.source, "ptr");
        assert_eq!(e.country.map(|c| c.to_string()).as_deref(), Some("IN"));
        assert_eq!(e.confidence, Confidence::Low);
        assert_eq!(e.city.as_deref(), Some("Mumbai"));
        assert_eq!(e.coordinates.and_then(|c| c.accuracy_km), Some(50));
        assert_eq!(
            e.detail,
            "PTR ae-1.r01.bom01.example.net: \"bom\" = Mumbai, IN (IATA)"
        );
        assert!(e.refuted.is_none());
        // No name, or no hint in any name: no evidence.
        assert!(ptr_evidence(ip, &[]).is_empty());
        assert!(ptr_evidence(ip, &names[1..]).is_empty());
        let json = serde_json::to_value(e).expect("serialises");
        assert_eq!(json["kind"], "ptr_hint");
    }
}
