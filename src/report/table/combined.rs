//! The parts of a run's table that only a combined run has: the vantage runs it combines, and
//! for each address its sites and what each vantage measured and reaches.

use std::fmt::Write;

use crate::record::{AddressResult, RunDocument};
use crate::sources::physics::format_km;

/// The window and one line per vantage run (label, kind, place, run id and hash).
pub(super) fn vantages(out: &mut String, doc: &RunDocument) {
    let Some(window) = &doc.window else { return };
    let _ = writeln!(
        out,
        "Combined {} vantage runs started in the {} before {}",
        doc.vantages.len(),
        window.duration,
        crate::time::rfc3339::format(&window.until)
    );
    for v in &doc.vantages {
        let place = match (v.country, v.latitude, v.longitude) {
            (Some(c), Some(lat), Some(lon)) => format!(
                "{c} {lat:.2},{lon:.2} ({})",
                v.location.map_or("unknown", |l| l.as_str())
            ),
            _ => "no declared location".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<10} {:<32} run {} {}  {}",
            v.label,
            v.kind.as_str(),
            place,
            v.run_id,
            v.hash.get(..12).unwrap_or(&v.hash),
            v.verdict.as_str()
        );
    }
}

/// An address's sites, then each vantage's RTT, disk and the sites it reaches.
pub(super) fn address(out: &mut String, a: &AddressResult, pad: &str) {
    if let Some(sites) = &a.sites {
        let kind = if a.anycast == Some(true) {
            "anycast"
        } else {
            "one site"
        };
        if let Some(common) = a.intersection.as_ref().filter(|c| !c.is_empty()) {
            let names: Vec<String> = common.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "{pad}{kind}; the disks overlap in {}",
                names.join(", ")
            );
        } else {
            let _ = writeln!(out, "{pad}{kind}");
        }
        for (n, s) in sites.iter().enumerate() {
            let countries: Vec<String> = s.countries.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "{pad}  site {}: {} (placed by {}{}), {}{}",
                n + 1,
                if countries.is_empty() {
                    "no country".to_string()
                } else {
                    countries.join(", ")
                },
                s.placed_by,
                s.max_km
                    .map(|km| format!(", within {} km", format_km(km)))
                    .unwrap_or_default(),
                s.verdict.as_str(),
                if s.vantages.is_empty() {
                    String::new()
                } else {
                    format!("; likely reached from {}", s.vantages.join(", "))
                }
            );
        }
    }
    for m in &a.measured_from {
        let rtt = match (m.min_rtt_ms, m.max_km) {
            (Some(ms), Some(km)) => format!("{ms:.2} ms, within {} km", format_km(km)),
            (Some(ms), None) => format!("{ms:.2} ms, no declared point"),
            _ => "no trusted RTT".to_string(),
        };
        let reaches = match m.sites.as_slice() {
            [] => String::new(),
            [one] => format!(", reaches site {}", one + 1),
            many => format!(
                ", reaches one of sites {}",
                many.iter()
                    .map(|s| (s + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let _ = writeln!(
            out,
            "{pad}  from {}: {rtt}; {} there{reaches}",
            m.vantage,
            m.verdict.as_str()
        );
    }
}
