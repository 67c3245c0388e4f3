//! Builders for small `.mmdb` files, so geolocation tests run offline against known answers.
//!
//! Databases are IPv6 trees (the writer's default), which store IPv4 networks in the IPv4
//! subtree: one file answers both families, like the real databases do. Every file has a
//! description and a fixed build date ([`FIXTURE_BUILD_EPOCH`], 2026-01-15), so output is
//! reproducible and `maxminddb`'s `verify` accepts it.

#![allow(dead_code)] // each integration test crate uses a different subset

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;
use mmdb_writer::{Value, Writer};

/// 2026-01-15T00:00:00Z, the build date written into every fixture.
pub const FIXTURE_BUILD_EPOCH: u64 = 1_768_435_200;
/// [`FIXTURE_BUILD_EPOCH`] as the date shown in evidence details.
pub const FIXTURE_BUILD_DATE: &str = "2026-01-15";

/// Write a database of arbitrary records, one per network (`"192.0.2.0/24"`, `"2001:db8::/32"`).
pub fn write_db(path: &Path, database_type: &str, records: Vec<(&str, Value)>) {
    let mut writer = Writer::builder(database_type)
        .description(&[("en", "residency test fixture")])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(FIXTURE_BUILD_EPOCH))
        .build();
    for (network, value) in records {
        let net: IpNet = network
            .parse()
            .unwrap_or_else(|e| panic!("fixture network {network:?}: {e}"));
        writer
            .insert_value(net, value)
            .unwrap_or_else(|e| panic!("inserting {network} into fixture: {e}"));
    }
    let bytes = writer.to_bytes().expect("serialising fixture database");
    std::fs::write(path, bytes)
        .unwrap_or_else(|e| panic!("writing fixture {}: {e}", path.display()));
}

/// The flat shape of ip-location-db and IPinfo lite: `{ "country_code": "IN" }`.
pub fn write_country_db(path: &Path, entries: &[(&str, &str)]) {
    let records = entries
        .iter()
        .map(|&(net, code)| (net, Value::map([("country_code", Value::from(code))])))
        .collect();
    write_db(path, "ipinfo-style country_code", records);
}

/// The nested GeoIP2 City shape, as MaxMind and DB-IP write it:
/// `(network, iso_code, city, latitude, longitude, accuracy_radius_km)`.
pub fn write_city_db(path: &Path, entries: &[(&str, &str, &str, f64, f64, u16)]) {
    let records = entries
        .iter()
        .map(|&(net, iso, city, lat, lon, radius)| {
            (net, geoip2_city_record(iso, city, lat, lon, radius))
        })
        .collect();
    write_db(path, "GeoIP2-City", records);
}

/// One GeoIP2 City record with the fields real databases carry (names, geoname ids,
/// registered country), so the reader is tested against the full shape.
pub fn geoip2_city_record(iso: &str, city: &str, lat: f64, lon: f64, radius: u16) -> Value {
    Value::map([
        (
            "city",
            Value::map([
                ("geoname_id", Value::from(1_u32)),
                (
                    "names",
                    Value::map([("en", Value::from(city)), ("de", Value::from(city))]),
                ),
            ]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(2_u32)),
                ("iso_code", Value::from(iso)),
                ("names", Value::map([("en", Value::from(iso))])),
            ]),
        ),
        (
            "registered_country",
            Value::map([("iso_code", Value::from(iso))]),
        ),
        (
            "location",
            Value::map([
                ("accuracy_radius", Value::from(radius)),
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
                ("time_zone", Value::from("Etc/UTC")),
            ]),
        ),
    ])
}
