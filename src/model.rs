//! Domain types shared by every pipeline stage: countries, verdicts, evidence.
//!
//! These are the words the rest of the crate speaks. They are validated once, at the edge
//! (policy parsing, database answers), so later stages never re-check bare strings.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every code officially assigned in ISO 3166-1 alpha-2 (249 codes, as published by the ISO 3166
/// Maintenance Agency). `XK` (Kosovo) is user-assigned but used by every registry and database,
/// so it is accepted too; `EU`/`AP` pseudo-codes from old registry data are not countries.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK \
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW \
MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG \
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI \
VN VU WF WS YE YT ZA ZM ZW XK";

const COUNTRY_NAMES_CSV: &str = include_str!("../data/country-names.csv");

/// The name table's size in bytes, for `data status`.
pub const COUNTRY_NAMES_SIZE: usize = COUNTRY_NAMES_CSV.len();

/// An ISO 3166-1 alpha-2 country code, always upper case and always an assigned code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

/// Why a string is not a country code; the message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    #[error(
        "`{0}` is not a country code: use two letters from ISO 3166-1 alpha-2, e.g. IN, US, SG"
    )]
    Malformed(String),
    #[error(
        "`{0}` is not an assigned ISO 3166-1 alpha-2 code (check the spelling, e.g. GB not UK)"
    )]
    Unassigned(String),
}

impl CountryCode {
    /// The code as a two-letter upper-case string.
    pub fn as_str(&self) -> &str {
        // Constructed only from validated ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The code for an English country name, as registries write them in addresses ("United
    /// States", "The Netherlands", "Korea, Republic of", "SPAIN"): ISO 3166-1's names, official
    /// and common names, and a few aliases (`data/country-names.csv`). Case, a leading "The "
    /// and surrounding punctuation do not matter; anything else that is not a name is `None`.
    pub fn from_name(name: &str) -> Option<CountryCode> {
        static NAMES: OnceLock<HashMap<String, CountryCode>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            COUNTRY_NAMES_CSV
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let (name, code) = line.rsplit_once(',')?;
                    Some((name_key(name.trim_matches('"')), code.parse().ok()?))
                })
                .collect()
        });
        names.get(&name_key(name)).copied()
    }
}

/// How names are compared: case-folded, single spaces, without a leading "the" or the
/// punctuation an address line puts around a name.
fn name_key(name: &str) -> String {
    let folded = name
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';'))
        .to_lowercase();
    let words: Vec<&str> = folded.split_whitespace().collect();
    let words = match words.split_first() {
        Some((&"the", rest)) if !rest.is_empty() => rest,
        _ => &words[..],
    };
    words.join(" ")
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CountryCodeError::Malformed(s.to_string()));
        }
        let code = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let text =
            std::str::from_utf8(&code).map_err(|_| CountryCodeError::Malformed(s.to_string()))?;
        if !ISO_3166_ALPHA2.split_ascii_whitespace().any(|c| c == text) {
            return Err(CountryCodeError::Unassigned(s.to_string()));
        }
        Ok(CountryCode(code))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The judgement on an address, an endpoint or a whole run.
///
/// Ordered by severity so that "the worst of" is `max()`: a single violating address makes
/// its endpoint a violation, and anything not measured keeps a run from being compliant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compliant,
    Inconclusive,
    Violation,
}

impl Verdict {
    /// Monitoring-plugin exit code (Nagios/Icinga): 0 OK, 1 WARNING, 2 CRITICAL.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Compliant => 0,
            Verdict::Inconclusive => 1,
            Verdict::Violation => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Violation => "violation",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "compliant" => Ok(Verdict::Compliant),
            "inconclusive" => Ok(Verdict::Inconclusive),
            "violation" => Ok(Verdict::Violation),
            other => Err(format!(
                "unknown verdict `{other}`: expected compliant, inconclusive or violation"
            )),
        }
    }
}

/// How much weight a piece of evidence carries on its own.
///
/// A geolocation database built from registry data says where the block is *registered*, which
/// is what the vendor declares, so it is `Low`; later sources (RTT physics) can be `High`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    #[default]
    Low,
    Medium,
    High,
}

/// What kind of measurement a piece of evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An offline MaxMind-format geolocation database.
    GeoDatabase,
    /// The speed of light: which countries a measured round-trip time can reach.
    RttPhysics,
    /// A place named in the address's reverse-DNS (PTR) name, e.g. `bom` in
    /// `ae-1.r01.bom01.example.net`: weak, operator-chosen, and refutable by physics.
    PtrHint,
    /// A Regional Internet Registry's record (RDAP or WHOIS): where the holder of the block
    /// is registered, not where the machine is.
    Registry,
    /// What the operator of the machine publishes about where the prefix is used: a cloud
    /// provider's region list, an RFC 8805 geofeed. The operator's word, not a measurement.
    OperatorDeclared,
    /// The edge a CDN names in a response's headers (`cf-ray: …-BOM`): where that one
    /// response was served, by the server's own say.
    CdnEdge,
}

/// A point on Earth with the radius its source vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
    /// The source's own accuracy radius, when it gives one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accuracy_km: Option<u32>,
}

/// One source's answer about where an address is.
///
/// A source that had no answer is evidence too (`country: None`), so a report shows that a
/// database was asked and knew nothing, rather than silently leaving it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Name of the source, e.g. the database file name.
    pub source: String,
    pub kind: SourceKind,
    pub country: Option<CountryCode>,
    pub confidence: Confidence,
    /// Human-readable detail: what the source said, in its own terms.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coordinates: Option<Coordinates>,
    /// Set when a measurement proves this claim physically impossible, with the numbers.
    /// A refuted claim stays in the evidence (a report shows what was claimed and why it
    /// was rejected) but no longer counts towards the verdict.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refuted: Option<String>,
}

impl Evidence {
    /// A source's answer that places nothing (it had no record, or what it said does not
    /// count), with why in `detail`: low confidence, no country, city or point.
    pub fn unlocated(
        source: impl Into<String>,
        kind: SourceKind,
        detail: impl Into<String>,
    ) -> Evidence {
        Evidence {
            source: source.into(),
            kind,
            country: None,
            confidence: Confidence::Low,
            detail: detail.into(),
            city: None,
            coordinates: None,
            refuted: None,
        }
    }
}

/// A server as `HOST:PORT` (`[IPv6]:PORT` for IPv6 literals; the port may be left off where a
/// default applies), checked when it is read, not when it is first dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `text`, with `default_port` when it names no port.
    pub fn parse(text: &str, default_port: u16) -> Result<HostPort, String> {
        let bad = || {
            format!(
                "`{text}` is not HOST:PORT (e.g. whois.apnic.net:43, 192.0.2.1:43 or [2001:db8::1]:43)"
            )
        };
        if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
            return match addr.port() {
                0 => Err(bad()),
                port => Ok(HostPort {
                    host: addr.ip().to_string(),
                    port,
                }),
            };
        }
        if let Ok(ip) = text.parse::<std::net::IpAddr>() {
            return Ok(HostPort {
                host: ip.to_string(),
                port: default_port,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(bad)?,
            ),
            None => (text, default_port),
        };
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if host.is_empty() || !host.chars().all(name_char) {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_names_as_registries_write_them_are_codes() {
        let code = |n: &str| CountryCode::from_name(n).map(|c| c.to_string());
        for (name, want) in [
            ("United States", "US"),
            ("UNITED STATES", "US"),
            ("United States of America", "US"),
            ("The Netherlands", "NL"),
            ("NETHERLANDS", "NL"),
            ("Korea, Republic of", "KR"),
            ("South Africa", "ZA"),
            ("Japan.", "JP"),
            ("Viet Nam", "VN"),
            ("Vietnam", "VN"),
            ("Czechia", "CZ"),
            ("Cote d'Ivoire", "CI"),
        ] {
            assert_eq!(code(name).as_deref(), Some(want), "{name}");
        }
        for not_a_name in [
            "",
            "The",
            "London GB",
            "QLD 4101",
            "EU",
            "Korea",
            "Georgia on my mind",
        ] {
            assert_eq!(code(not_a_name), None, "{not_a_name}");
        }
    }

    #[test]
    fn host_port_is_checked_when_read() {
        let hp = |t: &str| HostPort::parse(t, 43).map(|h| h.to_string());
        assert_eq!(hp("whois.apnic.net"), Ok("whois.apnic.net:43".into()));
        assert_eq!(hp("WHOIS.example:4343"), Ok("whois.example:4343".into()));
        assert_eq!(hp("192.0.2.1"), Ok("192.0.2.1:43".into()));
        assert_eq!(hp("[2001:db8::1]:4343"), Ok("[2001:db8::1]:4343".into()));
        assert_eq!(hp("2001:db8::1"), Ok("[2001:db8::1]:43".into()));
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "ho st:43",
            "h/x:43",
            ":43",
        ] {
            assert!(
                hp(bad).is_err_and(|e| e.contains("is not HOST:PORT")),
                "{bad}"
            );
        }
    }

    #[test]
    fn country_codes_are_validated_and_normalised() {
        assert_eq!(
            "in".parse::<CountryCode>().map(|c| c.to_string()),
            Ok("IN".into())
        );
        assert!(matches!(
            "UK".parse::<CountryCode>(),
            Err(CountryCodeError::Unassigned(_))
        ));
        assert!(matches!(
            "IND".parse::<CountryCode>(),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            "1N".parse::<CountryCode>(),
            Err(CountryCodeError::Malformed(_))
        ));
        assert_eq!(ISO_3166_ALPHA2.split_ascii_whitespace().count(), 250);
    }

    #[test]
    fn verdicts_order_by_severity() {
        let worst = [
            Verdict::Compliant,
            Verdict::Violation,
            Verdict::Inconclusive,
        ]
        .into_iter()
        .max();
        assert_eq!(worst, Some(Verdict::Violation));
        assert!(Verdict::Inconclusive > Verdict::Compliant);
        assert_eq!(Verdict::Violation.exit_code(), 2);
    }
}
