//! Geolocation against offline `.mmdb` files: fixtures built in a temp dir, and the shipped
//! database. Nothing here touches the network.

use crate::common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::mmdb::{FIXTURE_BUILD_DATE, write_city_db, write_country_db, write_db};
use mmdb_writer::Value;
use residency::model::{Confidence, CountryCode, SourceKind};
use residency::sources::geo::{
    GeoError, Geolocator, Locate, MmdbDatabase, SHIPPED_DATABASE_NAME, default_database,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cc(s: &str) -> Option<CountryCode> {
    Some(s.parse().expect("test country code"))
}

fn country_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("country.mmdb");
    write_country_db(
        &path,
        &[
            ("192.0.2.0/24", "IN"),
            ("198.51.100.0/24", "CN"),
            ("2001:db8::/32", "SG"),
        ],
    );
    path
}

fn open(path: &Path) -> MmdbDatabase {
    MmdbDatabase::open(path).unwrap_or_else(|e| panic!("opening fixture: {e}"))
}

#[test]
fn flat_country_shape_answers_ipv4_and_ipv6_from_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&country_fixture(dir.path()));
    assert_eq!(db.name(), "country.mmdb");

    for (addr, want) in [
        ("192.0.2.7", "IN"),
        ("198.51.100.200", "CN"),
        ("2001:db8::1", "SG"),
    ] {
        let ev = db.locate(ip(addr));
        assert_eq!(ev.country, cc(want), "{addr}: {ev:?}");
        assert_eq!(ev.source, "country.mmdb");
        assert_eq!(ev.kind, SourceKind::GeoDatabase);
        // A country with nothing else is a registry/geofeed declaration, not a placement.
        assert_eq!(ev.confidence, Confidence::Low);
        assert_eq!(ev.city, None);
        assert_eq!(ev.coordinates, None);
        assert_eq!(
            ev.detail,
            format!("country.mmdb (build {FIXTURE_BUILD_DATE}): {want}")
        );
    }
}

#[test]
fn ipv4_mapped_ipv6_address_finds_the_ipv4_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&country_fixture(dir.path()));
    assert_eq!(db.locate(ip("::ffff:192.0.2.7")).country, cc("IN"));
}

#[test]
fn geoip2_city_shape_reads_country_city_coordinates_and_accuracy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("GeoLite2-City.mmdb");
    write_city_db(
        &path,
        &[
            ("192.0.2.0/24", "IN", "Mumbai", 19.0728, 72.8826, 50),
            ("2001:db8::/32", "SG", "Singapore", 1.2868, 103.8503, 10),
        ],
    );
    let db = open(&path);
    assert_eq!(db.database_type(), "GeoIP2-City");
    assert_eq!(db.build_date(), FIXTURE_BUILD_DATE);

    let ev = db.locate(ip("192.0.2.1"));
    assert_eq!(ev.country, cc("IN"));
    assert_eq!(ev.city.as_deref(), Some("Mumbai"));
    let c = ev.coordinates.expect("coordinates");
    assert_eq!(
        (c.latitude, c.longitude, c.accuracy_km),
        (19.0728, 72.8826, Some(50))
    );
    assert_eq!(ev.confidence, Confidence::Medium);
    assert_eq!(
        ev.detail,
        format!(
            "GeoLite2-City.mmdb (build {FIXTURE_BUILD_DATE}): IN, Mumbai (19.0728, 72.8826, \
             accuracy radius 50 km)"
        )
    );

    let ev = db.locate(ip("2001:db8:ffff::1"));
    assert_eq!(ev.country, cc("SG"));
    assert_eq!(ev.city.as_deref(), Some("Singapore"));
    assert_eq!(ev.coordinates.and_then(|c| c.accuracy_km), Some(10));
}

#[test]
fn ipinfo_lite_record_with_country_name_string_reads_country_code() {
    // IPinfo lite uses `country` for the *name*, which would clash with the GeoIP2 map.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ipinfo_lite.mmdb");
    let record = Value::map([
        ("asn", Value::from("AS64500")),
        ("as_name", Value::from("Example Networks")),
        ("continent", Value::from("Asia")),
        ("continent_code", Value::from("AS")),
        ("country", Value::from("India")),
        ("country_code", Value::from("IN")),
    ]);
    write_db(&path, "ipinfo lite.mmdb", vec![("192.0.2.0/24", record)]);
    let ev = open(&path).locate(ip("192.0.2.9"));
    assert_eq!(ev.country, cc("IN"), "{ev:?}");
    assert_eq!(ev.confidence, Confidence::Low);
}

#[test]
fn flat_city_shape_reads_city_and_coordinates() {
    // ip-location-db city databases: flat `city`, `latitude`, `longitude` (floats).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dbip-city-ipv4.mmdb");
    let record = Value::map([
        ("city", Value::from("Frankfurt am Main")),
        ("country_code", Value::from("DE")),
        ("latitude", Value::from(50.1109_f32)),
        ("longitude", Value::from(8.6821_f32)),
        ("postcode", Value::from("60311")),
        ("state1", Value::from("Hesse")),
    ]);
    write_db(&path, "dbip-city", vec![("198.51.100.0/24", record)]);
    let ev = open(&path).locate(ip("198.51.100.1"));
    assert_eq!(ev.country, cc("DE"));
    assert_eq!(ev.city.as_deref(), Some("Frankfurt am Main"));
    let c = ev.coordinates.expect("coordinates");
    assert!(
        (c.latitude - 50.1109).abs() < 1e-4 && (c.longitude - 8.6821).abs() < 1e-4,
        "{c:?}"
    );
    assert_eq!(c.accuracy_km, None);
    assert_eq!(ev.confidence, Confidence::Medium);
}

#[test]
fn address_without_record_is_evidence_with_no_country() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&country_fixture(dir.path()));
    for addr in ["203.0.113.5", "2001:db9::1"] {
        let ev = db.locate(ip(addr));
        assert_eq!(ev.country, None);
        assert_eq!(ev.source, "country.mmdb");
        assert_eq!(ev.confidence, Confidence::Low);
        assert_eq!(
            ev.detail,
            format!("country.mmdb (build {FIXTURE_BUILD_DATE}): no record for {addr}")
        );
    }
}

#[test]
fn invalid_country_codes_are_no_country_with_what_the_database_said() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flat = dir.path().join("flat.mmdb");
    write_country_db(&flat, &[("192.0.2.0/24", "EU"), ("198.51.100.0/24", "ZZ")]);
    let db = open(&flat);
    for (addr, said) in [("192.0.2.1", "EU"), ("198.51.100.1", "ZZ")] {
        let ev = db.locate(ip(addr));
        assert_eq!(ev.country, None, "{ev:?}");
        assert!(ev.detail.contains(&format!("`{said}`")), "{}", ev.detail);
        assert!(
            ev.detail.contains("not an ISO 3166-1 country"),
            "{}",
            ev.detail
        );
    }

    let geoip2 = dir.path().join("geoip2.mmdb");
    write_city_db(
        &geoip2,
        &[("2001:db8::/32", "AP", "Nowhere", 35.0, 105.0, 1000)],
    );
    let ev = open(&geoip2).locate(ip("2001:db8::1"));
    assert_eq!(ev.country, None);
    assert_eq!(ev.confidence, Confidence::Low);
    assert!(ev.detail.contains("`AP`"), "{}", ev.detail);
}

#[test]
fn registered_country_is_used_only_when_alone_and_the_detail_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("GeoLite2-Country.mmdb");
    let registered_only = Value::map([(
        "registered_country",
        Value::map([("iso_code", Value::from("US"))]),
    )]);
    let both = Value::map([
        ("country", Value::map([("iso_code", Value::from("IE"))])),
        (
            "registered_country",
            Value::map([("iso_code", Value::from("US"))]),
        ),
    ]);
    write_db(
        &path,
        "GeoLite2-Country",
        vec![("192.0.2.0/24", registered_only), ("198.51.100.0/24", both)],
    );
    let db = open(&path);

    let ev = db.locate(ip("192.0.2.1"));
    assert_eq!(ev.country, cc("US"));
    assert_eq!(ev.confidence, Confidence::Low);
    assert!(
        ev.detail.contains("registered country only"),
        "{}",
        ev.detail
    );

    let ev = db.locate(ip("198.51.100.1"));
    assert_eq!(ev.country, cc("IE"));
    assert!(!ev.detail.contains("registered"), "{}", ev.detail);
}

#[test]
fn disagreeing_databases_both_answer_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.mmdb");
    let b = dir.path().join("b.mmdb");
    let c = dir.path().join("c.mmdb");
    write_country_db(&a, &[("192.0.2.0/24", "IN")]);
    write_city_db(&b, &[("192.0.2.0/24", "SG", "Singapore", 1.29, 103.85, 20)]);
    write_country_db(&c, &[("198.51.100.0/24", "CN")]);

    let geo = Geolocator::open(&[&a, &b, &c]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(geo.source_names(), ["a.mmdb", "b.mmdb", "c.mmdb"]);

    let evidence = geo.locate_all(ip("192.0.2.77"));
    let answers: Vec<_> = evidence
        .iter()
        .map(|e| (e.source.as_str(), e.country))
        .collect();
    assert_eq!(
        answers,
        [("a.mmdb", cc("IN")), ("b.mmdb", cc("SG")), ("c.mmdb", None)],
        "a database with no record still answers, in its place"
    );
    assert_eq!(evidence[0].confidence, Confidence::Low);
    assert_eq!(evidence[1].confidence, Confidence::Medium);
}

#[test]
fn missing_file_error_names_the_path_and_the_remedy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope").join("GeoLite2-City.mmdb");
    let err = MmdbDatabase::open(&path).expect_err("missing file must fail");
    assert!(matches!(err, GeoError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("geo.databases"), "{msg}");

    let err = Geolocator::open(std::slice::from_ref(&path)).expect_err("geolocator must fail too");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn directory_instead_of_file_is_unreadable_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = MmdbDatabase::open(dir.path()).expect_err("a directory is not a database");
    assert!(matches!(err, GeoError::Unreadable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn corrupt_files_are_rejected_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let random = dir.path().join("random.mmdb");
    // Deterministic noise (a xorshift stream) rather than a rand dependency.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&random, noise).expect("write");

    let text = dir.path().join("notes.mmdb");
    std::fs::write(&text, "this is a text file, not a database\n").expect("write");

    let empty = dir.path().join("empty.mmdb");
    std::fs::write(&empty, b"").expect("write");

    // A real database cut short loses its metadata, which lives at the end.
    let truncated = dir.path().join("truncated.mmdb");
    let full = country_fixture(dir.path());
    let bytes = std::fs::read(&full).expect("read fixture");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");

    for path in [random, text, empty, truncated] {
        let err = MmdbDatabase::open(&path).expect_err("corrupt file must fail");
        assert!(
            matches!(err, GeoError::Invalid { .. }),
            "{}: {err:?}",
            path.display()
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "{} is not a valid MaxMind DB (.mmdb): ",
                path.display()
            )),
            "{msg}"
        );
    }
}

#[test]
fn from_bytes_errors_name_the_given_name() {
    let err = MmdbDatabase::from_bytes("upload.mmdb".into(), b"garbage".to_vec())
        .expect_err("garbage is not a database");
    assert!(
        err.to_string()
            .starts_with("upload.mmdb is not a valid MaxMind DB"),
        "{err}"
    );
}

#[test]
fn fixtures_are_valid_databases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let city = dir.path().join("city.mmdb");
    write_city_db(&city, &[("192.0.2.0/24", "IN", "Pune", 18.52, 73.86, 20)]);
    for path in [country_fixture(dir.path()), city] {
        open(&path).verify().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn shipped_database_knows_well_known_addresses() {
    let db = default_database().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(db.name(), SHIPPED_DATABASE_NAME);
    assert_eq!(db.name(), "geo-whois-asn-country.mmdb");
    assert_eq!(db.database_type(), "country ipvAll");
    assert_eq!(db.build_date(), "2026-06-17");

    // Each checked with `mmdblookup --file data/geo-whois-asn-country.mmdb --ip ...`.
    for (addr, want) in [
        ("8.8.8.8", "US"),              // Google Public DNS
        ("2001:4860:4860::8888", "US"), // Google Public DNS, IPv6
        ("193.0.6.139", "NL"),          // RIPE NCC, Amsterdam
    ] {
        let ev = db.locate(ip(addr));
        assert_eq!(ev.country, cc(want), "{addr}: {}", ev.detail);
        assert_eq!(ev.source, "geo-whois-asn-country.mmdb");
        assert_eq!(ev.confidence, Confidence::Low);
        assert_eq!(
            ev.detail,
            format!("geo-whois-asn-country.mmdb (build 2026-06-17): {want}")
        );
    }
    assert_eq!(
        db.locate(ip("10.0.0.1")).country,
        None,
        "private space has no record"
    );

    let geo = Geolocator::shipped().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(geo.source_names(), ["geo-whois-asn-country.mmdb"]);
}
