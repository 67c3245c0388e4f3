//! Reading one MaxMind-format (`.mmdb`) database and turning its records into [`Evidence`].
//!
//! Owns the knowledge of record shapes: the nested GeoIP2 shape (MaxMind GeoIP2/GeoLite2,
//! DB-IP) and the flat shape (IPinfo lite, ip-location-db). Everything a database says is
//! carried into the evidence detail in its own terms, including answers that are not countries.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

use super::{GeoError, Locate};
use crate::model::{Confidence, Coordinates, CountryCode, Evidence, SourceKind};

/// One opened `.mmdb` database.
///
/// The bytes are either owned (a file read at start-up) or borrowed from the binary (the shipped
/// database), so the embedded copy is never duplicated in memory.
pub struct MmdbDatabase {
    name: String,
    reader: Reader<Cow<'static, [u8]>>,
}

impl MmdbDatabase {
    /// Open the database at `path`; its file name becomes the evidence source name.
    pub fn open(path: &Path) -> Result<MmdbDatabase, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                GeoError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                GeoError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        // Errors name the full path, not just the file name, so the user can find the file.
        Self::from_cow(name, Cow::Owned(bytes)).map_err(|e| e.with_location(path))
    }

    /// Use a database already in memory; `name` is the evidence source name.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<MmdbDatabase, GeoError> {
        Self::from_cow(name, Cow::Owned(bytes))
    }

    /// Use a database compiled into the binary, without copying it.
    pub(crate) fn from_static(name: &str, bytes: &'static [u8]) -> Result<MmdbDatabase, GeoError> {
        Self::from_cow(name.to_string(), Cow::Borrowed(bytes))
    }

    fn from_cow(name: String, bytes: Cow<'static, [u8]>) -> Result<MmdbDatabase, GeoError> {
        match Reader::from_source(bytes) {
            Ok(reader) => Ok(MmdbDatabase { name, reader }),
            Err(source) => Err(GeoError::Invalid {
                location: name,
                source,
            }),
        }
    }

    /// Walk the whole database and check its structure.
    ///
    /// Opening only reads the metadata, so a file with a valid header and a damaged tree or data
    /// section opens fine and fails per lookup; this finds that up front. It reads every record,
    /// so it costs time proportional to the database size.
    ///
    /// It is stricter than lookups need: it also rejects metadata with an empty description,
    /// which real databases have (the shipped ip-location-db file fails it for that reason alone
    /// and answers lookups correctly), so it is a diagnostic, not a condition for use.
    pub fn verify(&self) -> Result<(), GeoError> {
        self.reader.verify().map_err(|source| GeoError::Invalid {
            location: self.name.clone(),
            source,
        })
    }

    /// The metadata `database_type`, e.g. `GeoLite2-City` or `country ipvAll`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, in seconds since the Unix epoch (metadata `build_epoch`).
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The build date as `YYYY-MM-DD` (UTC), or the raw epoch if it is out of range.
    pub fn build_date(&self) -> String {
        let epoch = self.build_epoch();
        i64::try_from(epoch)
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| format!("epoch {epoch}"))
    }

    /// The prefix of every detail line: which database, and how old its answer is.
    fn detail_prefix(&self) -> String {
        format!("{} (build {})", self.name, self.build_date())
    }

    fn evidence(&self, country: Option<CountryCode>, detail: String) -> Evidence {
        Evidence {
            source: self.name.clone(),
            kind: SourceKind::GeoDatabase,
            country,
            confidence: Confidence::Low,
            detail,
            city: None,
            coordinates: None,
            refuted: None,
        }
    }

    fn evidence_from_record(&self, ip: IpAddr, record: Record) -> Evidence {
        let prefix = self.detail_prefix();
        let answer = record.country_answer();
        let city = record.city_name();
        let coordinates = record.coordinates();

        let Some((said, origin)) = answer else {
            return self.evidence(
                None,
                format!("{prefix}: the record for {ip} has no country"),
            );
        };
        let country = match said.parse::<CountryCode>() {
            Ok(code) => code,
            Err(_) => {
                return self.evidence(
                    None,
                    format!(
                        "{prefix}: `{said}` for {ip}, which is not an ISO 3166-1 country \
                         (a registry pseudo-code or placeholder)"
                    ),
                );
            }
        };

        let mut detail = format!("{prefix}: {country}");
        if let Some(city) = &city {
            detail.push_str(&format!(", {city}"));
        }
        if let Some(c) = &coordinates {
            detail.push_str(&format!(" ({:.4}, {:.4}", c.latitude, c.longitude));
            if let Some(radius) = c.accuracy_km {
                detail.push_str(&format!(", accuracy radius {radius} km"));
            }
            detail.push(')');
        }
        if origin == Origin::RegisteredCountry {
            detail.push_str(
                " (registered country only: the record has no location country, \
                 this is where the block is registered)",
            );
        }
        // A country alone comes from registries and geofeeds (where the holder declares the
        // block); a city or coordinates mean the database claims to have placed the machine.
        let confidence = if city.is_some() || coordinates.is_some() {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        Evidence {
            confidence,
            city,
            coordinates,
            ..self.evidence(Some(country), detail)
        }
    }
}

impl Locate for MmdbDatabase {
    fn name(&self) -> &str {
        &self.name
    }

    fn locate(&self, ip: IpAddr) -> Evidence {
        let found = self
            .reader
            .lookup(ip)
            .and_then(|result| result.decode::<Record>());
        match found {
            Ok(Some(record)) => self.evidence_from_record(ip, record),
            Ok(None) => self.evidence(
                None,
                format!("{}: no record for {ip}", self.detail_prefix()),
            ),
            // A damaged record is the database failing to answer, not an answer; keep it visible.
            Err(e) => self.evidence(
                None,
                format!(
                    "{}: could not read the record for {ip}: {e}",
                    self.detail_prefix()
                ),
            ),
        }
    }
}

impl fmt::Debug for MmdbDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmdbDatabase")
            .field("name", &self.name)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .finish_non_exhaustive()
    }
}

/// Which field a country answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// GeoIP2 `country.iso_code` or flat `country_code`.
    Country,
    /// GeoIP2 `registered_country.iso_code`, used only when nothing better is there.
    RegisteredCountry,
}

/// The union of the fields both record shapes use; everything is optional because each database
/// fills a different subset, and unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record {
    /// GeoIP2: `{ "iso_code": "IN", "names": {..} }`; IPinfo lite: the country *name*.
    country: Option<CountryField>,
    registered_country: Option<GeoIp2Country>,
    /// GeoIP2 only.
    location: Option<GeoIp2Location>,
    /// GeoIP2: `{ "names": { "en": .. } }`; ip-location-db city databases: a plain string.
    city: Option<CityField>,
    /// Flat shape (IPinfo lite, ip-location-db).
    country_code: Option<String>,
    latitude: Option<Number>,
    longitude: Option<Number>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CountryField {
    GeoIp2(GeoIp2Country),
    Name(#[allow(dead_code)] String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GeoIp2Country {
    iso_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GeoIp2Location {
    latitude: Option<Number>,
    longitude: Option<Number>,
    accuracy_radius: Option<Number>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CityField {
    GeoIp2 {
        #[serde(default)]
        names: BTreeMap<String, String>,
    },
    Name(String),
}

/// Any numeric field. maxminddb decodes typed fields strictly (an `f64` field rejects a stored
/// `float`, a `u32` field a stored `uint16`), and flat-shape databases converted from CSV may
/// store numbers as strings, so numbers are taken in whatever form the database wrote them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Float(f64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<f64> {
        match self {
            Number::Float(v) => Some(*v),
            Number::Text(s) => s.trim().parse().ok(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Record {
    fn country_answer(&self) -> Option<(String, Origin)> {
        let geoip2 = match &self.country {
            Some(CountryField::GeoIp2(c)) => c.iso_code.as_deref().and_then(non_empty),
            _ => None,
        };
        let flat = self.country_code.as_deref().and_then(non_empty);
        let registered = self
            .registered_country
            .as_ref()
            .and_then(|c| c.iso_code.as_deref())
            .and_then(non_empty);
        geoip2
            .or(flat)
            .map(|code| (code, Origin::Country))
            .or_else(|| registered.map(|code| (code, Origin::RegisteredCountry)))
    }

    fn city_name(&self) -> Option<String> {
        match self.city.as_ref()? {
            CityField::GeoIp2 { names } => names.get("en").and_then(|n| non_empty(n)),
            CityField::Name(name) => non_empty(name),
        }
    }

    fn coordinates(&self) -> Option<Coordinates> {
        let geoip2 = self.location.as_ref().and_then(|l| {
            let radius = l.accuracy_radius.as_ref().and_then(Number::value);
            let accuracy_km = radius
                .filter(|r| r.is_finite() && *r >= 0.0 && *r <= f64::from(u32::MAX))
                .map(|r| r.round() as u32);
            Some((
                l.latitude.as_ref()?.value()?,
                l.longitude.as_ref()?.value()?,
                accuracy_km,
            ))
        });
        let (latitude, longitude, accuracy_km) = match geoip2 {
            Some(found) => found,
            None => (
                self.latitude.as_ref()?.value()?,
                self.longitude.as_ref()?.value()?,
                None,
            ),
        };
        // Out-of-range values are placeholders or garbage; a wrong point is worse than none.
        let valid = (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude);
        valid.then_some(Coordinates {
            latitude,
            longitude,
            accuracy_km,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmdb_writer::{Value, Writer};

    fn db_with(records: Vec<(&str, Value)>) -> MmdbDatabase {
        let mut writer = Writer::builder("unit")
            .description(&[("en", "unit test")])
            .build_epoch(std::time::UNIX_EPOCH)
            .build();
        for (net, value) in records {
            let net: ipnet::IpNet = net.parse().expect("network");
            writer.insert_value(net, value).expect("insert");
        }
        let bytes = writer.to_bytes().expect("serialise");
        MmdbDatabase::from_bytes("unit.mmdb".into(), bytes).expect("valid database")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn numbers_are_read_in_any_stored_type() {
        // GeoIP2 stores accuracy_radius as uint16 and coordinates as double; other writers use
        // uint32 and float, and CSV conversions use strings. All must be read.
        let db = db_with(vec![
            (
                "192.0.2.0/24",
                Value::map([
                    ("country", Value::map([("iso_code", Value::from("IN"))])),
                    (
                        "location",
                        Value::map([
                            ("latitude", Value::from(19.5_f32)),
                            ("longitude", Value::from(72_u32)),
                            ("accuracy_radius", Value::from(100_u32)),
                        ]),
                    ),
                ]),
            ),
            (
                "198.51.100.0/24",
                Value::map([
                    ("country_code", Value::from("SG")),
                    ("latitude", Value::from(" 1.25 ")),
                    ("longitude", Value::from("103.75")),
                ]),
            ),
        ]);
        let c = db.locate(ip("192.0.2.1")).coordinates.expect("coordinates");
        assert_eq!(
            (c.latitude, c.longitude, c.accuracy_km),
            (19.5, 72.0, Some(100))
        );
        let c = db
            .locate(ip("198.51.100.1"))
            .coordinates
            .expect("coordinates");
        assert_eq!(
            (c.latitude, c.longitude, c.accuracy_km),
            (1.25, 103.75, None)
        );
    }

    #[test]
    fn impossible_coordinates_and_empty_strings_are_dropped() {
        let db = db_with(vec![(
            "192.0.2.0/24",
            Value::map([
                ("country_code", Value::from("IN")),
                ("city", Value::from("  ")),
                ("latitude", Value::from(91.0)),
                ("longitude", Value::from(10.0)),
            ]),
        )]);
        let ev = db.locate(ip("192.0.2.1"));
        assert_eq!(ev.country.map(|c| c.to_string()).as_deref(), Some("IN"));
        assert_eq!((ev.city, ev.coordinates), (None, None));
        assert_eq!(ev.confidence, Confidence::Low);
    }

    #[test]
    fn record_without_any_country_field_says_so() {
        let db = db_with(vec![(
            "192.0.2.0/24",
            Value::map([("asn", Value::from(64_500_u32))]),
        )]);
        let ev = db.locate(ip("192.0.2.1"));
        assert_eq!(ev.country, None);
        assert_eq!(
            ev.detail,
            "unit.mmdb (build 1970-01-01): the record for 192.0.2.1 has no country"
        );
    }

    #[test]
    fn non_map_record_is_reported_not_panicked_on() {
        let db = db_with(vec![("192.0.2.0/24", Value::from("IN"))]);
        let ev = db.locate(ip("192.0.2.1"));
        assert_eq!(ev.country, None);
        assert!(
            ev.detail
                .contains("could not read the record for 192.0.2.1"),
            "{}",
            ev.detail
        );
    }

    #[test]
    fn metadata_is_exposed() {
        let db = db_with(vec![]);
        assert_eq!(db.database_type(), "unit");
        assert_eq!(db.build_epoch(), 0);
        assert_eq!(db.build_date(), "1970-01-01");
        assert!(format!("{db:?}").contains("unit.mmdb"));
    }
}
