//! RIPE Atlas probe metadata, as `/api/v2/probes/` serves it (a page `{"results": [...]}`, a
//! bare array, or one probe): id, networks, the country and point its host declared, status.
//! The country stays the host's text here; turning it into a vantage point (and checking the
//! point is in the country) is the caller's, like any declared vantage.

use serde_json::Value;

use super::AtlasProblem;

/// One probe, as its host declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeInfo {
    pub id: u64,
    pub asn_v4: Option<u32>,
    pub asn_v6: Option<u32>,
    /// ISO 3166 code as Atlas lists it, unchecked.
    pub country_code: Option<String>,
    /// `(latitude, longitude)`: GeoJSON's `[longitude, latitude]` turned round, or v1's fields.
    pub point: Option<(f64, f64)>,
    pub description: Option<String>,
    pub is_anchor: bool,
    /// `Connected`, `Disconnected`, `Abandoned`, …
    pub status: Option<String>,
}

/// Every probe in `text`, and what could not be read (with its position). Never fails.
pub fn read_probes(text: &str) -> (Vec<ProbeInfo>, Vec<AtlasProblem>) {
    let text = text.trim_start_matches('\u{feff}');
    let mut problems = Vec::new();
    if text.trim_start().starts_with('<') {
        problems.push(AtlasProblem {
            at: "line 1".into(),
            what: "this is HTML, not probe metadata: fetch /api/v2/probes/?id__in=… as JSON".into(),
        });
        return (Vec::new(), problems);
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(AtlasProblem {
                at: format!("line {}, column {}", e.line(), e.column()),
                what: format!("not JSON probe metadata: {e}"),
            });
            return (Vec::new(), problems);
        }
    };
    let items: Vec<&Value> = match &value {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => match o.get("results").or_else(|| o.get("objects")) {
            Some(Value::Array(a)) => a.iter().collect(),
            _ => vec![&value],
        },
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("probe {} of the file", i + 1);
        let Some(id) = item.get("id").and_then(number_u64) else {
            problems.push(AtlasProblem {
                at,
                what: "no probe id: skipped".into(),
            });
            continue;
        };
        let point = geometry(item);
        if point.is_none() {
            problems.push(AtlasProblem {
                at: format!("{at} (id {id})"),
                what: "no coordinates: its RTTs bound nothing, the rest of its results are used"
                    .into(),
            });
        }
        out.push(ProbeInfo {
            id,
            asn_v4: item
                .get("asn_v4")
                .and_then(number_u64)
                .and_then(|n| u32::try_from(n).ok()),
            asn_v6: item
                .get("asn_v6")
                .and_then(number_u64)
                .and_then(|n| u32::try_from(n).ok()),
            country_code: item
                .get("country_code")
                .and_then(Value::as_str)
                .map(str::to_string),
            point,
            description: item
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            is_anchor: item
                .get("is_anchor")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            status: item
                .get("status")
                .and_then(|s| s.get("name").or(Some(s)))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    (out, problems)
}

fn number_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn number_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The probe's point: `geometry.coordinates` (`[lon, lat]`), or `latitude`/`longitude`.
fn geometry(item: &Value) -> Option<(f64, f64)> {
    let point = match item.get("geometry").and_then(|g| g.get("coordinates")) {
        Some(Value::Array(c)) if c.len() >= 2 => (number_f64(&c[1])?, number_f64(&c[0])?),
        _ => (
            number_f64(item.get("latitude")?)?,
            number_f64(item.get("longitude")?)?,
        ),
    };
    let ok = (-90.0..=90.0).contains(&point.0) && (-180.0..=180.0).contains(&point.1);
    ok.then_some(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_pages_bare_arrays_and_v1_fields_are_read() {
        let page = r#"{"count":2,"next":null,"results":[
            {"id":6001,"asn_v4":55836,"asn_v6":null,"country_code":"IN","geometry":{"type":"Point","coordinates":[77.21,28.61]},"status":{"id":1,"name":"Connected"},"is_anchor":false},
            {"id":6002,"country_code":"SG","geometry":null}]}"#;
        let (probes, problems) = read_probes(page);
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0].point, Some((28.61, 77.21)), "GeoJSON is lon, lat");
        assert_eq!(probes[0].asn_v4, Some(55836));
        assert_eq!(probes[0].status.as_deref(), Some("Connected"));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .to_string()
                .contains("probe 2 of the file (id 6002): no coordinates")
        );
        let (v1, _) = read_probes(r#"[{"id":"7","latitude":"1.35","longitude":"103.82"}]"#);
        assert_eq!(v1[0].point, Some((1.35, 103.82)));
        let (none, problems) = read_probes("<html>login</html>");
        assert!(none.is_empty() && problems[0].what.contains("HTML"));
        let (none, problems) = read_probes("{\"results\": [");
        assert!(none.is_empty() && problems[0].at.starts_with("line 1"));
    }
}
