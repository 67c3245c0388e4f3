//! Properties that must hold for every input, not just the examples: canonical JSON (the text
//! run hashes are computed over) and great-circle distance (what physics refutes claims with).
//! The chain's tamper evidence and "unmeasured is never compliant" are properties too, beside
//! their examples in `history.rs` and `scenarios.rs`. And the one lenient view of a stored run
//! is never stricter than the index: whatever sits where the comparisons read, the run indexes.

use proptest::prelude::*;
use residency::history::canonical_json;
use residency::history::digest::RunDigest;
use residency::record::view::RunView;
use residency::sources::declared::RangeSet;
use residency::sources::declared::geofeed::Geofeed;
use residency::sources::physics::great_circle_km;
use serde_json::{Map, Value};

/// Any JSON value a run document could hold: finite numbers, any text, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// `value` rebuilt with every object's entries inserted in reverse order.
fn reinserted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reinserted).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter().rev() {
                out.insert(k.clone(), reinserted(v));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Whether every object in a JSON text has its keys in strictly increasing byte order, as
/// written (not as a parsed map would hold them, which sorts on its own).
struct KeysSorted(bool);

impl<'de> serde::Deserialize<'de> for KeysSorted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeysSortedVisitor).map(KeysSorted)
    }
}

struct KeysSortedVisitor;

impl<'de> serde::de::Visitor<'de> for KeysSortedVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut sorted = true;
        while let Some(KeysSorted(inner)) = seq.next_element()? {
            sorted &= inner;
        }
        Ok(sorted)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut sorted = true;
        let mut previous: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            let KeysSorted(inner) = map.next_value()?;
            sorted &= inner
                && previous
                    .as_ref()
                    .is_none_or(|p| p.as_bytes() < key.as_bytes());
            previous = Some(key);
        }
        Ok(sorted)
    }
}

/// Geofeed rows as the wild writes them: prefixes good and bad, codes, quoted and bare cities,
/// stray columns, comments and blank lines.
fn geofeed_row() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        (any::<u32>(), 8u8..=32).prop_map(|(a, l)| {
            let net = ipnetwork::Ipv4Network::new(std::net::Ipv4Addr::from(a), l)
                .map(|n| n.network())
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            format!("{net}/{l}")
        }),
        (any::<u128>(), 16u8..=128)
            .prop_map(|(a, l)| format!("{}/{l}", std::net::Ipv6Addr::from(a))),
        "[0-9./:a-f]{0,20}",
    ];
    let code = prop_oneof![Just("IN".to_string()), Just(String::new()), "[A-Za-z]{0,3}"];
    let field = prop_oneof![
        Just(String::new()),
        "[A-Za-z -]{0,12}",
        "\"[A-Za-z, ]{0,12}\"",
        "[,\"#]{0,3}"
    ];
    prop_oneof![
        8 => (prefix, code, field.clone(), field.clone(), field)
            .prop_map(|(p, c, r, city, extra)| format!("{p},{c},{r},{city},{extra}")),
        1 => Just("# a comment".to_string()),
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonical_json_does_not_depend_on_insertion_order(value in json()) {
        prop_assert_eq!(canonical_json(&value), canonical_json(&reinserted(&value)));
    }

    #[test]
    fn canonical_json_is_idempotent_and_parses_back_to_the_same_value(value in json()) {
        let text = canonical_json(&value);
        let back: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(canonical_json(&back), text.clone());
        // No whitespace outside strings: the text is as short as the value allows.
        prop_assert_eq!(text.len(), serde_json::to_string(&back).map_err(|e| TestCaseError::fail(e.to_string()))?.len());
        let KeysSorted(sorted) = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(sorted, "keys out of order in {}", text);
    }

    #[test]
    fn any_value_in_a_compared_field_leaves_the_run_indexable(
        policy in json(),
        verdict in json(),
        path in json(),
    ) {
        let doc = serde_json::json!({"policy": policy, "endpoints": [{"host": "api",
            "verdict": "violation", "addresses": [{"ip": "192.0.2.1", "country": "CN",
            "verdict": verdict, "path": path}]}]});
        let text = canonical_json(&doc);
        let digest = RunDigest::of_text(&text).map_err(TestCaseError::fail)?;
        prop_assert_eq!(digest.countries.get("CN"), Some(&1));
        let view = RunView::from_text(&text).map_err(TestCaseError::fail)?;
        // What cannot be read is named, never taken for absent.
        let verdict_readable = serde_json::from_value::<Option<residency::model::Verdict>>(
            doc["endpoints"][0]["addresses"][0]["verdict"].clone()).is_ok();
        prop_assert_eq!(
            view.problems().iter().any(|p| p.contains(": verdict: ")),
            !verdict_readable
        );
    }

    #[test]
    fn every_geofeed_row_is_read_or_reported_and_nothing_panics(
        rows in prop::collection::vec(geofeed_row(), 0..24),
    ) {
        let text = rows.join("\n");
        let feed = Geofeed::parse("prop.csv", None, &text);
        let data_rows = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count();
        // A row is read (a repeat is read and reported) or reported, never lost.
        prop_assert!(feed.len() + feed.problems.len() >= data_rows,
            "{} read + {} reported < {} rows:\n{}", feed.len(), feed.problems.len(), data_rows, text);
        for p in &feed.problems {
            prop_assert!(p.line >= 1 && p.line <= text.lines().count(), "line {} of {}", p.line, text);
        }
    }

    #[test]
    fn any_json_is_a_range_file_or_an_error_naming_the_file(value in json()) {
        let text = value.to_string();
        if let Err(e) = RangeSet::parse("prop.json", "prop", &text) {
            prop_assert!(e.to_string().starts_with("prop.json: "), "{}", e);
        }
    }

    #[test]
    fn great_circle_distance_is_a_metric_on_the_sphere(
        a in (-90.0f64..=90.0, -180.0f64..=180.0),
        b in (-90.0f64..=90.0, -180.0f64..=180.0),
        c in (-90.0f64..=90.0, -180.0f64..=180.0),
    ) {
        let (ab, ba) = (great_circle_km(a, b), great_circle_km(b, a));
        prop_assert!((ab - ba).abs() < 1e-6, "not symmetric: {} vs {}", ab, ba);
        prop_assert!(great_circle_km(a, a).abs() < 1e-6);
        prop_assert!(ab >= 0.0);
        // Never more than half the circumference (6,371 km × π).
        prop_assert!(ab <= 20_015.1, "{}", ab);
        let via = great_circle_km(a, c) + great_circle_km(c, b);
        prop_assert!(ab <= via + 1e-6, "triangle: {} > {} via {:?}", ab, via, c);
    }
}

#[test]
fn the_key_order_check_sees_the_text_not_a_sorted_map() {
    let check = |text: &str| serde_json::from_str::<KeysSorted>(text).map(|KeysSorted(s)| s);
    assert_eq!(
        check(r#"{"a":1,"b":{"c":[{"d":0,"e":0}]}}"#).ok(),
        Some(true)
    );
    assert_eq!(check(r#"{"b":1,"a":2}"#).ok(), Some(false));
    assert_eq!(check(r#"[{"a":{"z":1,"y":2}}]"#).ok(), Some(false));
}
