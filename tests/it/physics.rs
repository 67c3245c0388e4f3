//! Round-trip-time physics against the shipped Natural Earth shapes: distances, point in
//! country, nearest countries, and claim checks with their explanations.

use residency::model::{Coordinates, CountryCode};
use residency::sources::physics::{
    ClaimCheck, Countries, RttBound, SLACK_KM, Vantage, VantageError, check_country_claim,
    check_point_claim, great_circle_km,
};

const DELHI: (f64, f64) = (28.6139, 77.2090);
const MUMBAI: (f64, f64) = (19.0760, 72.8777);
const LONDON: (f64, f64) = (51.5074, -0.1278);
const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
const SINGAPORE: (f64, f64) = (1.3521, 103.8198);

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn countries() -> &'static Countries {
    Countries::shipped().unwrap_or_else(|e| panic!("{e}"))
}

fn delhi_vantage() -> Vantage {
    Vantage::new(cc("IN"), 28.61, 77.21).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual:.1}, expected {expected} ± {tolerance}"
    );
}

#[test]
fn great_circle_distances_match_known_values() {
    assert_near(great_circle_km(DELHI, MUMBAI), 1150.0, 11.5, "Delhi–Mumbai");
    assert_near(
        great_circle_km(LONDON, NEW_YORK),
        5570.0,
        55.7,
        "London–New York",
    );
    assert_eq!(great_circle_km(DELHI, DELHI), 0.0);
    // Symmetric, and across the antimeridian the short way: 1° of longitude at the equator.
    assert_eq!(
        great_circle_km(DELHI, MUMBAI),
        great_circle_km(MUMBAI, DELHI)
    );
    assert_near(
        great_circle_km((0.0, 179.5), (0.0, -179.5)),
        111.2,
        0.1,
        "across 180°",
    );
    // Half the circumference between antipodes.
    assert_near(
        great_circle_km((0.0, 0.0), (0.0, 180.0)),
        std::f64::consts::PI * 6371.0088,
        0.001,
        "antipodes",
    );
}

#[test]
fn embedded_data_parses_and_every_code_is_valid_with_polygons() {
    let c = countries();
    let codes: Vec<CountryCode> = c.codes().collect();
    // The 249 ISO 3166-1 codes plus XK (Kosovo): data/README.md explains each decision.
    assert_eq!(codes.len(), 250);
    for code in codes {
        // Round trip through the validating parser.
        assert_eq!(code.as_str().parse::<CountryCode>(), Ok(code));
        assert!(c.polygon_count(code).is_some_and(|n| n > 0), "{code}");
        assert!(c.name(code).is_some_and(|n| !n.is_empty()), "{code}");
        let point = c.representative_point(code).unwrap_or((f64::NAN, f64::NAN));
        assert!(
            c.contains(code, point),
            "{code}: representative point {point:?} not inside"
        );
        let bbox = c.bbox(code).unwrap_or([f64::NAN; 4]);
        assert!(bbox[1] <= bbox[3], "{code}: bbox {bbox:?}");
    }
    assert_eq!(c.name(cc("IN")), Some("India"));
    assert_eq!(c.name(cc("XK")), Some("Kosovo"));
}

#[test]
fn shipped_data_file_stays_small() {
    let size = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/data/countries.json"))
        .map(|m| m.len())
        .unwrap_or(u64::MAX);
    assert!(size < 1_500_000, "data/countries.json is {size} bytes");
}

#[test]
fn points_are_located_in_their_countries() {
    let c = countries();
    let cases = [
        ("SG", SINGAPORE),
        ("IN", DELHI),
        ("IN", MUMBAI),
        ("US", (40.75, -73.6)), // Long Island (lower Manhattan is water at 1:50m)
        ("US", (41.8781, -87.6298)), // Chicago
        ("US", (39.7392, -104.9903)), // Denver
        ("US", (61.2181, -149.9003)), // Anchorage, Alaska
        ("US", (64.8378, -147.7164)), // Fairbanks, Alaska
        ("US", (21.3069, -157.8583)), // Honolulu, Hawaii
        ("US", (19.7, -155.5)), // Big Island, Hawaii
        ("CN", (39.9042, 116.4074)), // Beijing
        ("CN", (31.2304, 121.4737)), // Shanghai
        ("GB", LONDON),
        ("GB", (55.9533, -3.1883)), // Edinburgh
        ("FR", (48.8566, 2.3522)),  // Paris
        ("FR", (43.2965, 5.3698)),  // Marseille
        ("HK", (22.38, 114.13)),
        ("LU", (49.6116, 6.1319)),
        ("BH", (26.0667, 50.5577)),
        ("RU", (55.7558, 37.6173)),   // Moscow
        ("RU", (67.0, 178.0)),        // Chukotka, west of 180 (its ring is stitched across 180)
        ("RU", (66.0, -172.0)),       // Chukotka, east of 180
        ("FJ", (-17.7134, 178.0650)), // Suva, Fiji
        ("FJ", (-16.78, -179.95)),    // Taveuni, east of 180
        ("NZ", (-36.8485, 174.7633)), // Auckland
        ("AQ", (-90.0, 0.0)),         // the South Pole itself
        ("AQ", (-75.0, 120.0)),       // East Antarctic plateau
        ("AQ", (-85.0, -179.9)),      // near 180, in the ring closed through the pole
        ("ZA", (-26.2041, 28.0473)),  // Johannesburg
        ("LS", (-29.3151, 27.4869)),  // Maseru, a hole in South Africa
        ("SM", (43.9424, 12.4578)),   // San Marino, a hole in Italy
        ("GI", (36.14, -5.35)),       // Gibraltar, from 1:10m
        ("XK", (42.6629, 21.1655)),   // Pristina
        ("AE", (25.2048, 55.2708)),   // Dubai
        ("BR", (-23.5505, -46.6333)), // São Paulo
    ];
    for (code, point) in cases {
        assert!(
            c.contains(cc(code), point),
            "{code} should contain {point:?}"
        );
        assert_eq!(c.locate_point(point), Some(cc(code)), "{point:?}");
        assert_eq!(c.distance_km(point, cc(code)), Some(0.0), "{code}");
    }
    assert!(
        !c.contains(cc("ZA"), (-29.3151, 27.4869)),
        "Lesotho is a hole"
    );
    assert!(
        !c.contains(cc("IT"), (43.9424, 12.4578)),
        "San Marino is a hole"
    );
    assert!(!c.contains(cc("US"), LONDON));
}

#[test]
fn disputed_areas_follow_natural_earths_de_facto_lines() {
    // Not a position on any dispute: this records what the shipped shapes do, so a change of
    // data that moves one of these is noticed (and data/README.md updated).
    let c = countries();
    assert_eq!(
        c.locate_point((44.9521, 34.1024)),
        Some(cc("RU")),
        "Simferopol, Crimea"
    );
    assert_eq!(c.locate_point((35.0, 79.0)), Some(cc("CN")), "Aksai Chin");
    assert_eq!(c.locate_point((34.08, 74.80)), Some(cc("IN")), "Srinagar");
    assert_eq!(
        c.locate_point((34.37, 73.47)),
        Some(cc("PK")),
        "Muzaffarabad"
    );
    assert_eq!(c.locate_point((27.15, -13.2)), Some(cc("MA")), "Laayoune");
    assert_eq!(c.locate_point((25.03, 121.56)), Some(cc("TW")), "Taipei");
}

#[test]
fn french_guiana_is_in_france_and_in_gf() {
    // Natural Earth's France (numeric 250) includes its overseas departments; the data also
    // gives them their own codes, and locate_point prefers the more specific one.
    let c = countries();
    let cayenne = (4.9224, -52.3135);
    assert!(c.contains(cc("FR"), cayenne));
    assert!(c.contains(cc("GF"), cayenne));
    assert_eq!(c.locate_point(cayenne), Some(cc("GF")));
    let saint_denis = (-20.8821, 55.4507);
    assert!(c.contains(cc("FR"), saint_denis));
    assert_eq!(c.locate_point(saint_denis), Some(cc("RE")));
    // Metropolitan France is not GF.
    assert!(!c.contains(cc("GF"), (48.8566, 2.3522)));
}

#[test]
fn points_at_sea_are_in_no_country() {
    let c = countries();
    for point in [
        (0.0, -30.0),   // mid-Atlantic
        (-30.0, 80.0),  // Indian Ocean
        (30.0, -150.0), // North Pacific
        (0.0, 180.0),   // on the antimeridian
        (0.0, -180.0),
        (90.0, 0.0), // North Pole: sea ice is no country
    ] {
        assert_eq!(c.locate_point(point), None, "{point:?}");
    }
}

#[test]
fn distances_from_delhi_to_other_countries() {
    let c = countries();
    let to_cn = c.distance_km(DELHI, cc("CN")).unwrap_or(f64::NAN);
    assert!(
        (150.0..500.0).contains(&to_cn),
        "Delhi to China's nearest point: {to_cn:.0} km"
    );
    let to_sg = c.distance_km(DELHI, cc("SG")).unwrap_or(f64::NAN);
    assert_near(to_sg, 4130.0, 60.0, "Delhi to Singapore");
    // Edges, not just vertices: the nearest point of SG is within a few km of the centre-ish
    // point's distance minus SG's small radius.
    let centre = great_circle_km(DELHI, SINGAPORE);
    assert!(
        to_sg < centre && centre - to_sg < 30.0,
        "{to_sg} vs {centre}"
    );
    // Across the antimeridian: a point just east of 180 near Fiji's western islands.
    let fj = c.distance_km((-17.0, -179.0), cc("FJ")).unwrap_or(f64::NAN);
    assert!(fj < 150.0, "{fj}");
}

#[test]
fn distance_follows_long_edges_between_far_apart_vertices() {
    // The US–Canada border along the 49th parallel has few vertices at 1:50m; a point 0.2°
    // north of it (in Canada) is about 22 km from the US, wherever it is along the edge.
    let c = countries();
    for lon in [-110.0, -105.3, -100.7] {
        let d = c.distance_km((49.2, lon), cc("US")).unwrap_or(f64::NAN);
        assert_near(d, 22.2, 3.0, &format!("49.2N {lon}"));
    }
}

#[test]
fn within_lists_nearby_countries_nearest_first() {
    let c = countries();
    let near_delhi = c.within(DELHI, 300.0);
    let codes: Vec<&str> = near_delhi.iter().map(|(code, _)| code.as_str()).collect();
    assert_eq!(codes.first(), Some(&"IN"), "{near_delhi:?}");
    assert_eq!(near_delhi[0].1, 0.0);
    assert!(
        !codes.contains(&"SG") && !codes.contains(&"US"),
        "{codes:?}"
    );
    assert!(near_delhi.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(near_delhi.iter().all(|&(_, d)| d <= 300.0));

    let near_singapore = c.within(SINGAPORE, 50.0);
    let codes: Vec<&str> = near_singapore
        .iter()
        .map(|(code, _)| code.as_str())
        .collect();
    assert_eq!(codes.first(), Some(&"SG"), "{near_singapore:?}");
    assert!(codes.contains(&"MY"), "{codes:?}");
    assert!(codes.contains(&"ID"), "{codes:?}");

    // Consistent with distance_km.
    for (code, d) in c.within(LONDON, 1000.0) {
        let direct = c.distance_km(LONDON, code).unwrap_or(f64::NAN);
        assert!((direct - d).abs() < 1e-9, "{code}: {d} vs {direct}");
    }
    let everything = c.within(LONDON, 25_000.0);
    assert_eq!(everything.len(), 250);
}

#[test]
fn within_is_fast_enough_to_call_for_every_address() {
    // Not a timed assertion: only to be sure 1,000 calls are not pathological.
    let c = countries();
    let points = [
        DELHI,
        SINGAPORE,
        LONDON,
        NEW_YORK,
        (-33.87, 151.21),
        (0.0, -30.0),
    ];
    let mut found = 0;
    for i in 0..1000 {
        let p = points[i % points.len()];
        found += c.within(p, 1000.0).len();
    }
    assert!(found > 1000);
}

#[test]
fn country_claims_are_refuted_only_beyond_the_bound() {
    let vantage = delhi_vantage();
    let far = check_country_claim(&vantage, &RttBound::from_rtt(20.0), cc("US"));
    match &far {
        ClaimCheck::Refuted {
            distance_km,
            max_km,
            explanation,
        } => {
            assert_eq!(*max_km, 2050.0);
            // The nearest US land from Delhi is the far end of the Aleutians, across 180°.
            assert!((7_000.0..9_000.0).contains(distance_km), "{distance_km}");
            assert!(
                explanation.starts_with("US is at least 7,")
                    && explanation.contains(" km from the vantage point (IN, 28.61, 77.21); 20.0 ms RTT allows at most 2,050 km"),
                "{explanation}"
            );
        }
        other => panic!("expected refuted, got {other:?}"),
    }
    // The vantage point's own country is always possible, at distance 0.
    assert_eq!(
        check_country_claim(&vantage, &RttBound::from_rtt(0.1), cc("IN")),
        ClaimCheck::Possible { distance_km: 0.0 }
    );
    // Pakistan is a few hundred km away: possible at 5 ms (550 km), refuted at 0.5 ms (100 km).
    assert!(matches!(
        check_country_claim(&vantage, &RttBound::from_rtt(5.0), cc("PK")),
        ClaimCheck::Possible { .. }
    ));
    assert!(check_country_claim(&vantage, &RttBound::from_rtt(0.5), cc("PK")).is_refuted());
}

#[test]
fn point_claims_account_for_the_database_accuracy() {
    let vantage = delhi_vantage();
    let mumbai = Coordinates {
        latitude: MUMBAI.0,
        longitude: MUMBAI.1,
        accuracy_km: None,
    };
    let check = check_point_claim(
        &vantage,
        &RttBound::from_rtt(0.4),
        &mumbai,
        "database says Mumbai",
    );
    match &check {
        ClaimCheck::Refuted { explanation, .. } => assert_eq!(
            explanation,
            "database says Mumbai, 1,148 km from the vantage point (IN, 28.61, 77.21); 0.4 ms RTT allows at most 90 km"
        ),
        other => panic!("expected refuted, got {other:?}"),
    }
    // 11 ms allows 1,150 km: Mumbai is possible.
    assert!(matches!(
        check_point_claim(&vantage, &RttBound::from_rtt(11.0), &mumbai, "Mumbai"),
        ClaimCheck::Possible { .. }
    ));
    // 10.5 ms allows 1,100 km: refuted without accuracy, possible with a 100 km radius.
    let bound = RttBound::from_rtt(10.5);
    assert!(check_point_claim(&vantage, &bound, &mumbai, "Mumbai").is_refuted());
    let vague = Coordinates {
        accuracy_km: Some(100),
        ..mumbai
    };
    assert!(matches!(
        check_point_claim(&vantage, &bound, &vague, "Mumbai"),
        ClaimCheck::Possible { .. }
    ));
    let vague = Coordinates {
        accuracy_km: Some(20),
        ..mumbai
    };
    match check_point_claim(
        &vantage,
        &RttBound::from_rtt(0.4),
        &vague,
        "database says Mumbai",
    ) {
        ClaimCheck::Refuted { explanation, .. } => assert_eq!(
            explanation,
            "database says Mumbai (accurate to 20 km), at least 1,128 km from the vantage point (IN, 28.61, 77.21); 0.4 ms RTT allows at most 90 km"
        ),
        other => panic!("expected refuted, got {other:?}"),
    }
    // Coordinates that are not on Earth are not checked.
    let broken = Coordinates {
        latitude: 123.0,
        longitude: 0.0,
        accuracy_km: None,
    };
    assert!(matches!(
        check_point_claim(&vantage, &bound, &broken, "x"),
        ClaimCheck::Unchecked { .. }
    ));
}

#[test]
fn slack_only_ever_widens_the_bound() {
    // Every bound is wider than the bare light-in-fibre distance, by exactly the slack.
    for rtt in [0.0, 0.4, 1.0, 20.0, 250.0] {
        let b = RttBound::from_rtt(rtt);
        assert!(b.max_km > rtt * 100.0);
        assert_eq!(b.max_km, rtt * 100.0 + SLACK_KM);
    }
}

#[test]
fn vantage_points_are_validated() {
    assert!(Vantage::new(cc("IN"), 28.61, 77.21).is_ok());
    assert!(Vantage::new(cc("US"), 21.3069, -157.8583).is_ok()); // Honolulu
    assert!(Vantage::new(cc("SG"), 1.29, 103.85).is_ok());
    // A coastal point just offshore is tolerated.
    assert!(Vantage::new(cc("SG"), 1.20, 103.85).is_ok());

    assert_eq!(
        Vantage::new(cc("IN"), 91.0, 77.0),
        Err(VantageError::Latitude(91.0))
    );
    assert_eq!(
        Vantage::new(cc("IN"), 28.0, 181.0),
        Err(VantageError::Longitude(181.0))
    );
    assert!(matches!(
        Vantage::new(cc("IN"), f64::NAN, 77.0),
        Err(VantageError::Latitude(_))
    ));

    let wrong = Vantage::new(cc("US"), 28.61, 77.21).err();
    let message = wrong.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        message.starts_with("vantage point (28.61, 77.21) is ")
            && message.contains(" km from US, not in it (at most 50 km is tolerated)"),
        "{message}"
    );
    // Latitude and longitude swapped: the message says so.
    let swapped = Vantage::new(cc("IN"), 77.21, 28.61)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(swapped.contains("check their order"), "{swapped}");
}

#[test]
fn vantage_deserialises_with_validation() {
    let ok: Result<Vantage, _> =
        serde_json::from_str(r#"{"country":"IN","latitude":28.61,"longitude":77.21}"#);
    assert_eq!(ok.ok().map(|v| v.country), Some(cc("IN")));
    let bad: Result<Vantage, _> =
        serde_json::from_str(r#"{"country":"SG","latitude":28.61,"longitude":77.21}"#);
    let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("km from SG, not in it"), "{message}");
    let json = serde_json::to_string(&delhi_vantage()).unwrap_or_default();
    assert_eq!(
        json,
        r#"{"country":"IN","latitude":28.61,"longitude":77.21}"#
    );
}

#[test]
fn claim_checks_serialise_with_a_tag() {
    let json =
        serde_json::to_string(&ClaimCheck::Possible { distance_km: 12.5 }).unwrap_or_default();
    assert_eq!(json, r#"{"result":"possible","distance_km":12.5}"#);
}
