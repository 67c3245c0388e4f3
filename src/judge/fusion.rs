//! Fusion: what all the evidence for one address says, taken together.
//!
//! Owns the one decision of where an address is: the located country set (what unrefuted
//! sources name, and what physics allows), its confidence, the evidence that decided it, and
//! where sources conflict. `verdict` then only applies the policy to it. The rules, in order:
//!
//! 1. Physics refutes: a claim the minimum RTT makes impossible does not count (it is marked
//!    `refuted` by `evidence`), and when the countries within reach of the vantage point are all
//!    on one side of the policy, physics decides alone, with high confidence.
//! 2. Independent agreeing sources raise confidence. Sources are grouped by kind (geolocation
//!    databases, registry records, reverse-DNS hints, the path's last router); several
//!    databases count as one kind, because they are mostly built from the same registry data.
//!    One kind: low (medium if that source itself locates to a city); two kinds: medium; three,
//!    or two confirmed by physics within a few countries' reach: high.
//! 3. Registry country alone is low: it is where the holder is registered, not where the machine is.
//!    What the operator declares (a cloud region, a geofeed) is medium alone and high when
//!    physics confirms it; a CDN's edge header is medium (it speaks for one response).
//! 4. Sources naming different countries are conflicts; the location's confidence is then low
//!    and each conflict is listed. Whether a conflict crosses the policy line is the verdict's
//!    business (`verdict::judge_address`), which then says `inconclusive` with both sides.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Confidence, CountryCode, Evidence, SourceKind};
pub use crate::sources::physics::Reach;

/// Physics "confirms" a claim when the reach is this small: the address is pinned to a
/// handful of neighbouring countries, one of which is the claimed one.
const CONFIRMING_REACH: usize = 3;

/// The fused location of one address: what the verdict is judged on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fused {
    /// The country the evidence settles on, if it settles.
    pub country: Option<CountryCode>,
    pub confidence: Confidence,
    /// The evidence that decided it (source names, or `rtt physics`).
    pub decided_by: Vec<String>,
    /// Unrefuted sources naming different countries, one line per country.
    pub conflicts: Vec<String>,
    /// The located country set: every country an unrefuted source names, with those sources.
    pub claims: BTreeMap<CountryCode, Vec<String>>,
    /// What physics allows, when there is a vantage point and an RTT.
    pub reach: Option<Reach>,
    /// Why each refuted claim was refuted.
    pub refuted: Vec<String>,
    /// Sources that were asked and had no answer.
    pub silent: Vec<String>,
    /// Every source asked, in order.
    pub asked: Vec<String>,
}

/// The router just before the target on its path, located: independent of the databases'
/// claim about the target, since it is where the packets really went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastHop {
    pub country: CountryCode,
    pub label: String,
}

fn family(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::GeoDatabase => "geolocation databases",
        SourceKind::RttPhysics => "rtt physics",
        SourceKind::PtrHint => "reverse dns hints",
        SourceKind::Registry => "registry records",
        SourceKind::OperatorDeclared => "operator declarations",
        SourceKind::CdnEdge => "cdn edge headers",
    }
}

/// Fuses an address's evidence (claims already checked by physics) into a located country
/// with a confidence, the evidence that decided it and the conflicts.
pub fn fuse(evidence: &[Evidence], reach: Option<&Reach>, last_hop: Option<&LastHop>) -> Fused {
    let mut by_country: BTreeMap<CountryCode, Vec<&Evidence>> = BTreeMap::new();
    for e in evidence.iter().filter(|e| e.refuted.is_none()) {
        if let Some(c) = e.country {
            by_country.entry(c).or_default().push(e);
        }
    }
    let base = Fused {
        claims: by_country
            .iter()
            .map(|(c, es)| (*c, es.iter().map(|e| e.source.clone()).collect()))
            .collect(),
        reach: reach.cloned(),
        refuted: evidence.iter().filter_map(|e| e.refuted.clone()).collect(),
        silent: evidence
            .iter()
            .filter(|e| e.country.is_none())
            .map(|e| e.source.clone())
            .collect(),
        asked: evidence.iter().map(|e| e.source.clone()).collect(),
        ..Fused::default()
    };
    if let Some(reach) = reach
        && reach.countries.len() == 1
    {
        let only = reach.countries.iter().next().copied();
        let only_text = only.map(|c| c.to_string()).unwrap_or_default();
        let decided = match &reach.basis {
            Some(basis) => format!("rtt physics (only {only_text} {basis})"),
            None => format!(
                "rtt physics ({:.1} ms: only {only_text} lies within {:.0} km)",
                reach.min_rtt_ms, reach.max_km
            ),
        };
        return Fused {
            country: only,
            confidence: Confidence::High,
            decided_by: vec![decided],
            ..base
        };
    }
    let conflicts: Vec<String> = if by_country.len() > 1 {
        by_country
            .iter()
            .map(|(c, es)| {
                let names: Vec<&str> = es.iter().map(|e| e.source.as_str()).collect();
                format!("{c} per {}", names.join(", "))
            })
            .collect()
    } else {
        Vec::new()
    };
    let Some((&country, supporters)) = by_country.iter().next().filter(|_| by_country.len() == 1)
    else {
        return Fused {
            confidence: Confidence::Low,
            conflicts,
            ..base
        };
    };

    let mut families: BTreeSet<&str> = supporters.iter().map(|e| family(e.kind)).collect();
    let mut decided_by: Vec<String> = supporters.iter().map(|e| e.source.clone()).collect();
    if let Some(hop) = last_hop.filter(|h| h.country == country) {
        families.insert("path");
        decided_by.push(hop.label.clone());
    }
    let physics_confirms = reach
        .is_some_and(|r| r.countries.contains(&country) && r.countries.len() <= CONFIRMING_REACH);
    if physics_confirms {
        decided_by.push("rtt physics (consistent)".to_string());
    }
    let city_level = supporters
        .iter()
        .any(|e| e.confidence >= Confidence::Medium);
    let declared = supporters
        .iter()
        .any(|e| e.kind == SourceKind::OperatorDeclared);
    // What was measured from here: the path's last router, or the RTT bearing the claim out.
    // Without one, sources agree only in what they were told (the shipped database is itself
    // built from registry records and geofeeds), so at most medium.
    let measured = physics_confirms || families.contains("path");
    let confidence = match (families.len(), physics_confirms) {
        (n, _) if n >= 3 && measured => Confidence::High,
        (n, _) if n >= 3 => Confidence::Medium,
        (2, true) => Confidence::High,
        // The operator's own word, which the speed of light bears out.
        (_, true) if declared => Confidence::High,
        (2, false) => Confidence::Medium,
        (_, true) => Confidence::Medium,
        _ if city_level => Confidence::Medium,
        _ => Confidence::Low,
    };
    Fused {
        country: Some(country),
        confidence,
        decided_by,
        conflicts,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        s.parse().expect("country")
    }

    fn ev(source: &str, country: &str, confidence: Confidence) -> Evidence {
        Evidence {
            source: source.into(),
            kind: SourceKind::GeoDatabase,
            country: Some(cc(country)),
            confidence,
            detail: String::new(),
            city: None,
            coordinates: None,
            refuted: None,
        }
    }

    fn reach(cs: &[&str]) -> Reach {
        Reach {
            min_rtt_ms: 1.0,
            max_km: 150.0,
            countries: cs.iter().map(|c| cc(c)).collect(),
            basis: None,
        }
    }

    #[test]
    fn physics_pinning_one_country_is_high_confidence() {
        let f = fuse(
            &[ev("db", "SG", Confidence::Low)],
            Some(&reach(&["IN"])),
            None,
        );
        assert_eq!(
            (f.country, f.confidence),
            (Some(cc("IN")), Confidence::High)
        );
        assert!(f.decided_by[0].starts_with("rtt physics"), "{f:?}");
    }

    #[test]
    fn one_database_is_low_and_several_databases_are_one_kind() {
        let f = fuse(&[ev("a.mmdb", "IN", Confidence::Low)], None, None);
        assert_eq!((f.country, f.confidence), (Some(cc("IN")), Confidence::Low));
        let f = fuse(
            &[
                ev("a.mmdb", "IN", Confidence::Low),
                ev("b.mmdb", "IN", Confidence::Low),
            ],
            None,
            None,
        );
        assert_eq!(
            f.confidence,
            Confidence::Low,
            "two databases are not independent"
        );
        assert_eq!(f.decided_by, ["a.mmdb", "b.mmdb"]);
        let f = fuse(&[ev("city.mmdb", "IN", Confidence::Medium)], None, None);
        assert_eq!(f.confidence, Confidence::Medium, "a city-level answer");
    }

    #[test]
    fn independent_agreement_and_physics_raise_confidence() {
        let hop = LastHop {
            country: cc("IN"),
            label: "hop 3 (192.0.2.1)".into(),
        };
        let db = [ev("a.mmdb", "IN", Confidence::Low)];
        let f = fuse(&db, None, Some(&hop));
        assert_eq!(f.confidence, Confidence::Medium);
        assert_eq!(f.decided_by, ["a.mmdb", "hop 3 (192.0.2.1)"]);
        let f = fuse(&db, Some(&reach(&["IN", "PK"])), Some(&hop));
        assert_eq!(f.confidence, Confidence::High);
        let f = fuse(
            &db,
            Some(&reach(&["IN", "PK", "NP", "CN", "BD"])),
            Some(&hop),
        );
        assert_eq!(
            f.confidence,
            Confidence::Medium,
            "a wide reach confirms nothing"
        );
    }

    #[test]
    fn conflicts_are_listed_with_low_confidence() {
        let f = fuse(
            &[
                ev("a.mmdb", "IN", Confidence::Low),
                ev("b.mmdb", "CN", Confidence::Medium),
            ],
            None,
            None,
        );
        assert_eq!((f.country, f.confidence), (None, Confidence::Low));
        assert_eq!(f.conflicts, ["CN per b.mmdb", "IN per a.mmdb"]);
        let mut refuted = ev("b.mmdb", "CN", Confidence::Medium);
        refuted.refuted = Some("too far".into());
        let f = fuse(&[ev("a.mmdb", "IN", Confidence::Low), refuted], None, None);
        assert!(f.conflicts.is_empty(), "a refuted claim is no conflict");
    }
}
